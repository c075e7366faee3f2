//! Which frames a trace follows: the part of tcpdump's filter language
//! people type most (`host`, `net`, `port`, with `src`/`dst`; `tcp`,
//! `udp`, `icmp`, `arp`, `ip`; `and`, `or`, `not`, parentheses), and the
//! few header fields it needs, read once per frame.

use ipnet::Ipv4Net;
use smoltcp::wire::{ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet};
use std::net::Ipv4Addr;

/// The header fields of a frame that filters and summaries look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headers {
    pub arp: bool,
    /// For ARP: a reply rather than a request.
    pub arp_reply: bool,
    pub ip: Option<(Ipv4Addr, Ipv4Addr)>,
    /// IP protocol number.
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
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return h;
        };
        let (mut ethertype, mut payload) = (eth.ethertype(), eth.payload());
        while ethertype == EthernetProtocol::Unknown(0x8100) && payload.len() >= 4 {
            ethertype = u16::from_be_bytes([payload[2], payload[3]]).into();
            payload = &payload[4..];
        }
        match ethertype {
            EthernetProtocol::Arp => {
                h.arp = true;
                if let Ok(ArpRepr::EthernetIpv4 {
                    operation,
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                }) = ArpPacket::new_checked(payload).and_then(|p| ArpRepr::parse(&p))
                {
                    h.ip = Some((source_protocol_addr, target_protocol_addr));
                    h.arp_reply = operation == smoltcp::wire::ArpOperation::Reply;
                }
            }
            EthernetProtocol::Ipv4 => h.read_ipv4(payload),
            _ => {}
        }
        h
    }

    /// Reads an IP packet without a link header (a TUN port's).
    pub fn of_ip(packet: &[u8]) -> Headers {
        let mut h = Headers::default();
        h.read_ipv4(packet);
        h
    }

    fn read_ipv4(&mut self, packet: &[u8]) {
        let Ok(ip) = Ipv4Packet::new_checked(packet) else {
            return;
        };
        self.ip = Some((ip.src_addr(), ip.dst_addr()));
        let proto = u8::from(ip.next_header());
        self.proto = Some(proto);
        let l4 = ip.payload();
        let first = ip.frag_offset() == 0;
        let word = |i: usize| l4.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        match ip.next_header() {
            IpProtocol::Tcp | IpProtocol::Udp if first => {
                self.ports = word(0).zip(word(2));
                if proto == 6 {
                    self.tcp_flags = l4.get(13).copied();
                }
            }
            IpProtocol::Icmp if first => {
                self.icmp = l4.first().copied().zip(l4.get(1).copied());
            }
            _ => {}
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
        match (self.proto, self.ports, self.icmp) {
            (Some(6), Some((sp, dp)), _) => {
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
                format!("TCP {src}:{sp} > {dst}:{dp} [{names}]")
            }
            (Some(17), Some((sp, dp)), _) => format!("UDP {src}:{sp} > {dst}:{dp}"),
            (Some(1), _, Some((t, c))) => format!("ICMP {src} > {dst} type {t} code {c}"),
            (Some(p), _, _) => format!("IP {src} > {dst} proto {p}"),
            _ => format!("IP {src} > {dst}"),
        }
    }
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    All,
    Host(Dir, Ipv4Addr),
    Net(Dir, Ipv4Net),
    Port(Dir, u16),
    Proto(u8),
    Arp,
    Ip,
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
            Filter::Ip => h.proto.is_some(),
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
                    .map_err(|_| FilterError(format!("`{v}` is not an IPv4 address")))
            }
            Some("net") => {
                let v = value(self, "net")?;
                v.parse::<Ipv4Net>()
                    .map(|n| Filter::Net(dir, n.trunc()))
                    .map_err(|_| FilterError(format!("`{v}` is not a network like 10.0.0.0/8")))
            }
            Some("port") => {
                let v = value(self, "port")?;
                v.parse()
                    .map(|p| Filter::Port(dir, p))
                    .map_err(|_| FilterError(format!("`{v}` is not a port")))
            }
            Some("tcp") if dir == Dir::Either => Ok(Filter::Proto(6)),
            Some("udp") if dir == Dir::Either => Ok(Filter::Proto(17)),
            Some("icmp") if dir == Dir::Either => Ok(Filter::Proto(1)),
            Some("arp") if dir == Dir::Either => Ok(Filter::Arp),
            Some("ip") if dir == Dir::Either => Ok(Filter::Ip),
            Some(w) => Err(FilterError(format!(
                "`{w}` is not understood: use host, net, port (with src or dst), tcp, udp, icmp, arp, ip, and, or, not"
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
    fn bad_expressions_say_what_is_wrong() {
        for (expr, says) in [
            ("host", "needs a value"),
            ("host 300.1.1.1", "not an IPv4 address"),
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
