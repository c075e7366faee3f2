//! Which frames a trace follows: the part of tcpdump's filter language
//! people type most (`host`, `net`, `port`, with `src`/`dst`; `tcp`,
//! `udp`, `icmp`, `icmp6`, `arp`, `ip`, `ip6`; `and`, `or`, `not`,
//! parentheses), and the few header fields it needs, read once per frame
//! through the one IP parser ([`IpView`]).

use ipnet::IpNet;
use smoltcp::wire::{ArpPacket, ArpRepr};
use std::net::IpAddr;
use wire::ether::{EthernetHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use wire::ip::{Family, IpView, Transport, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// The header fields of a frame that filters and summaries look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headers {
    pub arp: bool,
    /// For ARP: a reply rather than a request.
    pub arp_reply: bool,
    /// IPv4 or IPv6 (`None` for ARP and other frames).
    pub family: Option<Family>,
    pub ip: Option<(IpAddr, IpAddr)>,
    /// IP protocol number (after any IPv6 extension headers).
    pub proto: Option<u8>,
    pub ports: Option<(u16, u16)>,
    pub tcp_flags: Option<u8>,
    pub icmp: Option<(u8, u8)>,
}

impl Headers {
    /// Reads an Ethernet frame (802.1Q tags skipped); what it cannot read
    /// stays empty.
    pub fn of(frame: &[u8]) -> Headers {
        let mut h = Headers::default();
        let Ok(eth) = EthernetHeader::parse(frame) else {
            return h;
        };
        let payload = &frame[eth.payload_offset..];
        match eth.ethertype {
            ETHERTYPE_ARP => {
                h.arp = true;
                if let Ok(ArpRepr::EthernetIpv4 {
                    operation,
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                }) = ArpPacket::new_checked(payload).and_then(|p| ArpRepr::parse(&p))
                {
                    h.ip = Some((source_protocol_addr.into(), target_protocol_addr.into()));
                    h.arp_reply = operation == smoltcp::wire::ArpOperation::Reply;
                }
            }
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => h.read_ip(frame, eth.payload_offset),
            _ => {}
        }
        h
    }

    /// Reads an IP packet without a link header (a TUN port's).
    pub fn of_ip(packet: &[u8]) -> Headers {
        let mut h = Headers::default();
        h.read_ip(packet, 0);
        h
    }

    fn read_ip(&mut self, data: &[u8], l3: usize) {
        // A trace shows what a port carried, damaged or not: a packet cut
        // short is read as far as it goes, as a quote would be.
        let Ok(v) = IpView::parse_quote(data, l3) else {
            return;
        };
        self.family = Some(v.family);
        self.ip = Some((v.src, v.dst));
        self.proto = Some(v.proto);
        match v.transport {
            Transport::Ports { src, dst, flags } => {
                self.ports = Some((src, dst));
                if v.proto == PROTO_TCP {
                    self.tcp_flags = data.get(v.l4 + 13).map(|_| flags);
                }
            }
            Transport::Icmp { ty, code, .. } => self.icmp = Some((ty, code)),
            Transport::None => {}
        }
    }

    /// A one-line description, as tcpdump would put it.
    pub fn summary(&self, len: usize) -> String {
        if self.arp {
            return match (self.ip, self.arp_reply) {
                (Some((s, t)), false) => format!("ARP who-has {t} tell {s}"),
                (Some((s, t)), true) => format!("ARP reply {s} to {t}"),
                (None, _) => "ARP (unreadable)".into(),
            };
        }
        let Some((src, dst)) = self.ip else {
            return format!("non-IP frame, {len} bytes");
        };
        let end = |a: IpAddr, port: u16| match a {
            IpAddr::V4(a) => format!("{a}:{port}"),
            IpAddr::V6(a) => format!("[{a}]:{port}"),
        };
        let ip = if self.family == Some(Family::V6) {
            "IP6"
        } else {
            "IP"
        };
        match (self.proto, self.ports, self.icmp) {
            (Some(PROTO_TCP), Some((sp, dp)), _) => {
                let flags = self.tcp_flags.unwrap_or(0);
                let names: String = [
                    (0x02, 'S'),
                    (0x01, 'F'),
                    (0x04, 'R'),
                    (0x08, 'P'),
                    (0x10, '.'),
                ]
                .iter()
                .filter(|(bit, _)| flags & bit != 0)
                .map(|(_, c)| *c)
                .collect();
                format!("TCP {} > {} [{names}]", end(src, sp), end(dst, dp))
            }
            (Some(PROTO_UDP), Some((sp, dp)), _) => {
                format!("UDP {} > {}", end(src, sp), end(dst, dp))
            }
            (Some(PROTO_ICMP), _, Some((t, c))) => format!("ICMP {src} > {dst} type {t} code {c}"),
            (Some(PROTO_ICMPV6), _, Some((t, c))) => match icmpv6_name(t) {
                Some(name) => format!("ICMP6 {src} > {dst} {name}"),
                None => format!("ICMP6 {src} > {dst} type {t} code {c}"),
            },
            (Some(p), _, _) => format!("{ip} {src} > {dst} proto {p}"),
            _ => format!("{ip} {src} > {dst}"),
        }
    }
}

/// What tcpdump calls the ICMPv6 messages people see most.
fn icmpv6_name(t: u8) -> Option<&'static str> {
    Some(match t {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbor solicitation",
        136 => "neighbor advertisement",
        137 => "redirect",
        143 => "multicast listener report v2",
        _ => return None,
    })
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    All,
    Host(Dir, IpAddr),
    Net(Dir, IpNet),
    Port(Dir, u16),
    Proto(u8),
    Arp,
    /// IPv4 (tcpdump's `ip`).
    Ip,
    Ip6,
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

/// Which end of a packet a primitive looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
    Either,
}

impl Dir {
    fn test<T: Copy>(self, pair: Option<(T, T)>, f: impl Fn(T) -> bool) -> bool {
        match (self, pair) {
            (_, None) => false,
            (Dir::Src, Some((s, _))) => f(s),
            (Dir::Dst, Some((_, d))) => f(d),
            (Dir::Either, Some((s, d))) => f(s) || f(d),
        }
    }
}

/// What is wrong with a filter expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter: {0}")]
pub struct FilterError(pub String);

impl Filter {
    pub fn matches(&self, h: &Headers) -> bool {
        match self {
            Filter::All => true,
            Filter::Host(d, a) => d.test(h.ip, |x| x == *a),
            Filter::Net(d, n) => d.test(h.ip, |x| n.contains(&x)),
            Filter::Port(d, p) => d.test(h.ports, |x| x == *p),
            Filter::Proto(p) => h.proto == Some(*p),
            Filter::Arp => h.arp,
            Filter::Ip => h.family == Some(Family::V4),
            Filter::Ip6 => h.family == Some(Family::V6),
            Filter::Not(f) => !f.matches(h),
            Filter::And(a, b) => a.matches(h) && b.matches(h),
            Filter::Or(a, b) => a.matches(h) || b.matches(h),
        }
    }

    /// Parses an expression; the empty one matches everything.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let spaced = text.replace('(', " ( ").replace(')', " ) ");
        let words: Vec<&str> = spaced.split_whitespace().collect();
        if words.is_empty() {
            return Ok(Filter::All);
        }
        if words.len() > MAX_WORDS {
            return Err(FilterError(format!(
                "longer than {MAX_WORDS} words: a filter says what it selects in fewer"
            )));
        }
        let mut p = Parser {
            words,
            at: 0,
            depth: 0,
        };
        let f = p.or()?;
        match p.peek() {
            None => Ok(f),
            Some(w) => Err(FilterError(format!("unexpected `{w}`"))),
        }
    }
}

/// Words a filter may have: a chain of `and`s is a tree as deep as it is
/// long, which matching and dropping walk recursively.
const MAX_WORDS: usize = 256;
/// How deep `not` and parentheses may nest.
const MAX_DEPTH: usize = 32;

struct Parser<'a> {
    words: Vec<&'a str>,
    at: usize,
    /// `not`s and parentheses open around the word being read.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.words.get(self.at).copied()
    }

    fn next(&mut self) -> Option<&'a str> {
        let w = self.peek();
        self.at += 1;
        w
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut f = self.and()?;
        while matches!(self.peek(), Some("or" | "||")) {
            self.at += 1;
            f = Filter::Or(Box::new(f), Box::new(self.and()?));
        }
        Ok(f)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut f = self.unary()?;
        loop {
            match self.peek() {
                Some("and" | "&&") => self.at += 1,
                // Juxtaposition is `and`, as in tcpdump.
                Some(w) if w != "or" && w != "||" && w != ")" => {}
                _ => return Ok(f),
            }
            f = Filter::And(Box::new(f), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError(format!(
                "nested deeper than {MAX_DEPTH} `not`s and parentheses"
            )));
        }
        let f = self.unary_inner();
        self.depth -= 1;
        f
    }

    fn unary_inner(&mut self) -> Result<Filter, FilterError> {
        match self.next() {
            Some("not" | "!") => Ok(Filter::Not(Box::new(self.unary()?))),
            Some("(") => {
                let f = self.or()?;
                match self.next() {
                    Some(")") => Ok(f),
                    _ => Err(FilterError("missing `)`".into())),
                }
            }
            Some(w) => self.primitive(w),
            None => Err(FilterError("the expression ends too early".into())),
        }
    }

    fn primitive(&mut self, first: &'a str) -> Result<Filter, FilterError> {
        let (dir, word) = match first {
            "src" => (Dir::Src, self.next()),
            "dst" => (Dir::Dst, self.next()),
            w => (Dir::Either, Some(w)),
        };
        let value = |p: &mut Self, what: &str| {
            p.next()
                .ok_or_else(|| FilterError(format!("`{what}` needs a value")))
        };
        match word {
            Some("host") => {
                let v = value(self, "host")?;
                v.parse()
                    .map(|a| Filter::Host(dir, a))
                    .map_err(|_| FilterError(format!("`{v}` is not an IP address")))
            }
            Some("net") => {
                let v = value(self, "net")?;
                v.parse::<IpNet>()
                    .map(|n| Filter::Net(dir, n.trunc()))
                    .map_err(|_| {
                        FilterError(format!(
                            "`{v}` is not a network like 10.0.0.0/8 or 2001:db8::/32"
                        ))
                    })
            }
            Some("port") => {
                let v = value(self, "port")?;
                v.parse()
                    .map(|p| Filter::Port(dir, p))
                    .map_err(|_| FilterError(format!("`{v}` is not a port")))
            }
            Some("tcp") if dir == Dir::Either => Ok(Filter::Proto(6)),
            Some("udp") if dir == Dir::Either => Ok(Filter::Proto(17)),
            Some("icmp") if dir == Dir::Either => Ok(Filter::Proto(PROTO_ICMP)),
            Some("icmp6") if dir == Dir::Either => Ok(Filter::Proto(PROTO_ICMPV6)),
            Some("arp") if dir == Dir::Either => Ok(Filter::Arp),
            Some("ip") if dir == Dir::Either => Ok(Filter::Ip),
            Some("ip6") if dir == Dir::Either => Ok(Filter::Ip6),
            Some(w) => Err(FilterError(format!(
                "`{w}` is not understood: use host, net, port (with src or dst), tcp, udp, icmp, icmp6, arp, ip, ip6, and, or, not"
            ))),
            None => Err(FilterError(format!("`{first}` needs host, net or port after it"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Headers {
        Headers {
            family: Some(Family::V4),
            ip: Some((src.into(), dst.into())),
            proto: Some(6),
            ports: Some((sport, dport)),
            tcp_flags: Some(0x02),
            ..Headers::default()
        }
    }

    #[test]
    fn tcpdump_expressions_select_what_they_say() {
        let h = tcp([192, 168, 1, 10], 40112, [203, 0, 113, 11], 80);
        for (expr, expected) in [
            ("", true),
            ("tcp", true),
            ("udp", false),
            ("host 203.0.113.11", true),
            ("src host 203.0.113.11", false),
            ("dst host 203.0.113.11 and port 80", true),
            ("tcp port 80", true),
            ("net 192.168.0.0/16 and not port 22", true),
            ("udp or (tcp and dst port 80)", true),
            ("not (tcp or udp)", false),
            ("arp or icmp", false),
            ("src port 40112 && dst net 203.0.113.0/24", true),
        ] {
            let f = Filter::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(f.matches(&h), expected, "{expr}");
        }
        assert_eq!(
            h.summary(60),
            "TCP 192.168.1.10:40112 > 203.0.113.11:80 [S]"
        );
    }

    #[test]
    fn ipv6_frames_are_read_and_selected() {
        let mut p = vec![0x60, 0, 0, 0, 0, 8, 58, 255];
        p.extend_from_slice(
            &"fe80::1"
                .parse::<std::net::Ipv6Addr>()
                .expect("ip")
                .octets(),
        );
        p.extend_from_slice(
            &"ff02::1"
                .parse::<std::net::Ipv6Addr>()
                .expect("ip")
                .octets(),
        );
        p.extend_from_slice(&[134, 0, 0, 0, 64, 0, 7, 8]);
        let frame = wire::ether::build_frame(
            wire::Mac([0x33, 0x33, 0, 0, 0, 1]),
            wire::Mac([2, 0, 0, 0, 0, 1]),
            ETHERTYPE_IPV6,
            &p,
        );
        let h = Headers::of(&frame);
        assert_eq!(
            h.summary(frame.len()),
            "ICMP6 fe80::1 > ff02::1 router advertisement"
        );
        for (expr, expected) in [
            ("ip6", true),
            ("ip", false),
            ("icmp6", true),
            ("icmp", false),
            ("host fe80::1", true),
            ("dst net ff02::/16 and icmp6", true),
            ("src net 2001:db8::/32", false),
        ] {
            let f = Filter::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(f.matches(&h), expected, "{expr}");
        }
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        for (expr, says) in [
            ("host", "needs a value"),
            ("host 300.1.1.1", "not an IP address"),
            ("port http", "not a port"),
            ("(tcp", "missing `)`"),
            ("tcp and", "ends too early"),
            ("frob", "not understood"),
            ("tcp )", "unexpected `)`"),
            (&"( ".repeat(100_000), "longer than 256 words"),
            (&"( ".repeat(40), "nested deeper than 32"),
            (&"not ".repeat(40), "nested deeper than 32"),
            (&vec!["tcp"; 300].join(" and "), "longer than 256 words"),
        ] {
            let shown = &expr[..expr.len().min(40)];
            let e = Filter::parse(expr).expect_err(shown);
            assert!(e.0.contains(says), "{shown}: {e}");
        }
    }
}
