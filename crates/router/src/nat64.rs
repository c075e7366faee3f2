//! Stateful NAT64 (RFC 6146) with IP/ICMP translation (RFC 7915): an
//! IPv6-only network reaches IPv4 servers at `64:ff9b::a.b.c.d` (the
//! well-known prefix of RFC 6052, or another /96), translated to and from
//! the router's IPv4 pool address.
//!
//! * A TCP or UDP flow (or an ICMPv6 echo) from the inside gets an
//!   external port (its identifier, for an echo) on the pool address,
//!   endpoint-independent as RFC 6146 asks; an answer comes back only from
//!   the IPv4 endpoint the inside talked to (address- and port-dependent
//!   filtering). Sessions live by the conntrack timeouts; the table is
//!   bounded and counted.
//! * Headers are translated, not tunnelled: traffic class and TTL carry
//!   over (the hop limit is decremented once, as forwarding does),
//!   extension headers are left behind, the upper-layer checksum is made
//!   anew over the other family's pseudo-header, ICMPv6 echo becomes
//!   ICMPv4 echo and back.
//! * ICMPv4 errors about a session (time exceeded, unreachable,
//!   fragmentation needed) become ICMPv6 errors with the packet they quote
//!   translated too, so traceroute -6 and path-MTU discovery work across
//!   (the MTU grows by the 20 bytes the IPv6 header adds).
//! * What cannot be translated (fragments, other protocols, ICMPv6 errors
//!   from the inside) is dropped and counted.

use crate::conntrack::{advance_tcp, Proto, Session, TcpState, Timeouts};
use ipnet::Ipv6Net;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use wire::checksum;
use wire::ip::{
    transport_checksum, Fragment, IpView, Transport, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
};
use wire::Instant;

/// How often expired sessions are swept.
const SWEEP: Duration = Duration::from_secs(5);
/// The ports (identifiers) the pool hands out.
const PORTS: std::ops::RangeInclusive<u16> = 1024..=65535;

#[derive(Debug, Clone)]
pub struct Nat64Config {
    /// The /96 IPv4 servers are reached at (RFC 6052).
    pub prefix: Ipv6Net,
    /// The IPv4 address translated flows leave from.
    pub pool: Ipv4Addr,
    pub max_entries: usize,
    pub timeouts: Timeouts,
}

/// The counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Nat64Counters {
    pub translated_6to4: u64,
    pub translated_4to6: u64,
    pub errors_translated: u64,
    pub sessions_created: u64,
    pub sessions_expired: u64,
    /// Fragments, other protocols, ICMPv6 errors from inside, ICMPv4
    /// errors of a kind IPv6 has no word for.
    pub dropped_untranslatable: u64,
    /// IPv4 packets for a binding from an endpoint it never talked to.
    pub dropped_unsolicited: u64,
    pub refused_table_full: u64,
    pub refused_ports_exhausted: u64,
}

/// A session, as `scratchnet status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Nat64Row {
    pub protocol: Proto,
    pub inside: String,
    pub outside: String,
    pub remote: String,
    pub state: &'static str,
    pub age_secs: u64,
    pub expires_in_secs: u64,
}

#[derive(Debug, Clone)]
struct Binding {
    inside: (Ipv6Addr, u16),
    /// Sessions by IPv4 remote endpoint.
    sessions: HashMap<(Ipv4Addr, u16), Session>,
}

/// What became of a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not part of a session: the pool address's own traffic (a ping to
    /// the router, say).
    Untouched,
    /// The translated packet (an IP packet of the other family, no link
    /// header) and the address to route it to.
    Translated(Vec<u8>, IpAddr),
    Dropped(&'static str),
    /// A new flow past a bound.
    Refused,
}

#[derive(Debug, Clone)]
pub struct Nat64 {
    config: Nat64Config,
    /// External port by (protocol, inside endpoint).
    by_inside: HashMap<(Proto, Ipv6Addr, u16), u16>,
    /// Bindings by (protocol, external port).
    by_external: BTreeMap<(Proto, u16), Binding>,
    sessions: usize,
    next_port: u16,
    counters: Nat64Counters,
    last_sweep: Instant,
}

fn v4_in(prefix: Ipv6Net, a: Ipv6Addr) -> Option<Ipv4Addr> {
    prefix.contains(&a).then(|| {
        let o = a.octets();
        Ipv4Addr::new(o[12], o[13], o[14], o[15])
    })
}

fn v6_of(prefix: Ipv6Net, a: Ipv4Addr) -> Ipv6Addr {
    let mut o = prefix.network().octets();
    o[12..16].copy_from_slice(&a.octets());
    Ipv6Addr::from(o)
}

/// The flow of a packet: protocol, source port and destination port (an
/// echo's identifier on the querier's side, 0 on the other), TCP flags.
fn flow(view: &IpView, echo_request: u8, echo_reply: u8) -> Option<(Proto, u16, u16, u8)> {
    match view.transport {
        Transport::Ports { src, dst, flags } if view.proto == PROTO_TCP => {
            Some((Proto::Tcp, src, dst, flags))
        }
        Transport::Ports { src, dst, .. } if view.proto == PROTO_UDP => {
            Some((Proto::Udp, src, dst, 0))
        }
        Transport::Icmp {
            ty,
            ident: Some(id),
            ..
        } if ty == echo_request => Some((Proto::Icmp, id, 0, 0)),
        Transport::Icmp {
            ty,
            ident: Some(id),
            ..
        } if ty == echo_reply => Some((Proto::Icmp, 0, id, 0)),
        _ => None,
    }
}

/// An IPv4 header (no options, DF set, identification 0: RFC 7915 5.1).
fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, tos: u8, ttl: u8, len: usize) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[1] = tos;
    h[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
    h[6] = 0x40;
    h[8] = ttl;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum::finish(checksum::sum(0, &h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, next: u8, tc: u8, hop: u8, len: usize) -> [u8; 40] {
    let mut h = [0u8; 40];
    h[0] = 0x60 | (tc >> 4);
    h[1] = tc << 4;
    h[4..6].copy_from_slice(&(len as u16).to_be_bytes());
    h[6] = next;
    h[7] = hop;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    h
}

/// The traffic class of an IPv6 header.
fn traffic_class(p: &[u8]) -> u8 {
    (p[0] << 4) | (p[1] >> 4)
}

/// The upper-layer bytes with the ports (or echo identifier and type)
/// rewritten and the checksum made anew for the new pseudo-header.
fn translate_l4(
    l4: &[u8],
    proto: u8,
    (src, dst): (IpAddr, IpAddr),
    ports: (Option<u16>, Option<u16>),
) -> Vec<u8> {
    let mut out = l4.to_vec();
    let check_at = match proto {
        PROTO_TCP => 16,
        PROTO_UDP => 6,
        _ => 2,
    };
    match proto {
        PROTO_TCP | PROTO_UDP => {
            if let Some(p) = ports.0 {
                out[0..2].copy_from_slice(&p.to_be_bytes());
            }
            if let Some(p) = ports.1 {
                out[2..4].copy_from_slice(&p.to_be_bytes());
            }
        }
        _ => {
            // Echo: the type changes family, the identifier may move.
            out[0] = match out[0] {
                128 => 8,
                129 => 0,
                8 => 128,
                _ => 129,
            };
            if let Some(id) = ports.0.or(ports.1) {
                out[4..6].copy_from_slice(&id.to_be_bytes());
            }
        }
    }
    if out.len() < check_at + 2 {
        return out;
    }
    out[check_at..check_at + 2].fill(0);
    let c = match (proto, src) {
        (PROTO_ICMP | PROTO_ICMPV6, IpAddr::V4(_)) => checksum::finish(checksum::sum(0, &out)),
        (PROTO_ICMP | PROTO_ICMPV6, IpAddr::V6(_)) => {
            transport_checksum(src, dst, PROTO_ICMPV6, &out)
        }
        _ => transport_checksum(src, dst, proto, &out),
    };
    let c = if proto == PROTO_UDP && c == 0 {
        0xffff
    } else {
        c
    };
    out[check_at..check_at + 2].copy_from_slice(&c.to_be_bytes());
    out
}

impl Nat64 {
    pub fn new(config: Nat64Config) -> Nat64 {
        Nat64 {
            config,
            by_inside: HashMap::new(),
            by_external: BTreeMap::new(),
            sessions: 0,
            next_port: *PORTS.start(),
            counters: Nat64Counters::default(),
            last_sweep: Instant::ZERO,
        }
    }

    pub fn counters(&self) -> &Nat64Counters {
        &self.counters
    }

    /// Whether an IPv6 destination is an IPv4 server behind the prefix.
    pub fn translates(&self, dst: IpAddr) -> bool {
        matches!(dst, IpAddr::V6(d) if self.config.prefix.contains(&d))
    }

    /// Whether an IPv4 packet is for the pool address.
    pub fn owns(&self, dst: IpAddr) -> bool {
        dst == IpAddr::V4(self.config.pool)
    }

    fn allocate(&mut self, proto: Proto, wanted: u16) -> Option<u16> {
        if wanted >= *PORTS.start() && !self.by_external.contains_key(&(proto, wanted)) {
            return Some(wanted);
        }
        let span = u32::from(PORTS.end() - PORTS.start()) + 1;
        for _ in 0..span {
            let p = self.next_port;
            self.next_port = if p == *PORTS.end() {
                *PORTS.start()
            } else {
                p + 1
            };
            if !self.by_external.contains_key(&(proto, p)) {
                return Some(p);
            }
        }
        None
    }

    /// An IPv6 packet from the inside to `prefix::v4`: its IPv4
    /// translation, from the pool.
    pub fn outbound(&mut self, now: Instant, data: &[u8], view: &IpView) -> Outcome {
        let (IpAddr::V6(src), IpAddr::V6(dst)) = (view.src, view.dst) else {
            return Outcome::Dropped("not IPv6");
        };
        let Some(server) = v4_in(self.config.prefix, dst) else {
            return Outcome::Dropped("not in the prefix");
        };
        let flow = flow(view, 128, 129).filter(|_| view.fragment == Fragment::Whole);
        let Some((proto, sport, dport, flags)) = flow else {
            self.counters.dropped_untranslatable += 1;
            return Outcome::Dropped("cannot translate");
        };
        let key = (proto, src, sport);
        let ext = match self.by_inside.get(&key) {
            Some(p) => *p,
            None => {
                if self.sessions >= self.config.max_entries {
                    self.counters.refused_table_full += 1;
                    return Outcome::Refused;
                }
                let Some(p) = self.allocate(proto, sport) else {
                    self.counters.refused_ports_exhausted += 1;
                    return Outcome::Refused;
                };
                self.by_inside.insert(key, p);
                self.by_external.insert(
                    (proto, p),
                    Binding {
                        inside: (src, sport),
                        sessions: HashMap::new(),
                    },
                );
                p
            }
        };
        let timeouts = self.config.timeouts;
        if let Some(b) = self.by_external.get_mut(&(proto, ext)) {
            let fresh = !b.sessions.contains_key(&(server, dport));
            let s = b.sessions.entry((server, dport)).or_insert(Session {
                tcp: None,
                created: now,
                expires: now,
            });
            s.tcp = advance_tcp(proto, s.tcp, flags, true);
            s.expires = now + timeouts.of(proto, s.tcp);
            if fresh {
                self.sessions += 1;
                self.counters.sessions_created += 1;
            }
        }
        let pool = self.config.pool;
        let l4_proto = if proto == Proto::Icmp {
            PROTO_ICMP
        } else {
            view.proto
        };
        let l4 = translate_l4(
            view.payload(data),
            view.proto,
            (IpAddr::V4(pool), IpAddr::V4(server)),
            (Some(ext), None),
        );
        let tc = traffic_class(&data[view.l3..]);
        let mut out = ipv4_header(
            pool,
            server,
            l4_proto,
            tc,
            view.hop_limit.saturating_sub(1),
            l4.len(),
        )
        .to_vec();
        out.extend_from_slice(&l4);
        self.counters.translated_6to4 += 1;
        Outcome::Translated(out, IpAddr::V4(server))
    }

    /// An IPv4 packet to the pool address: its IPv6 translation, if a
    /// session lets it in (an ICMP error about one included).
    pub fn inbound(&mut self, now: Instant, data: &[u8], view: &IpView) -> Outcome {
        let IpAddr::V4(remote) = view.src else {
            return Outcome::Dropped("not IPv4");
        };
        if view.is_icmp_error() {
            return self.inbound_error(data, view);
        }
        let Some((proto, sport, dport, flags)) =
            flow(view, 8, 0).filter(|_| view.fragment == Fragment::Whole)
        else {
            return Outcome::Untouched;
        };
        let timeouts = self.config.timeouts;
        let Some(b) = self.by_external.get_mut(&(proto, dport)) else {
            return Outcome::Untouched;
        };
        let Some(s) = b.sessions.get_mut(&(remote, sport)) else {
            self.counters.dropped_unsolicited += 1;
            return Outcome::Dropped("not from the endpoint the session talks to");
        };
        s.tcp = advance_tcp(proto, s.tcp, flags, false);
        if proto == Proto::Tcp || s.expires <= now {
            s.expires = now + timeouts.of(proto, s.tcp);
        }
        let inside = b.inside;
        let from = v6_of(self.config.prefix, remote);
        let next = if proto == Proto::Icmp {
            PROTO_ICMPV6
        } else {
            view.proto
        };
        let l4 = translate_l4(
            view.payload(data),
            view.proto,
            (IpAddr::V6(from), IpAddr::V6(inside.0)),
            (None, Some(inside.1)),
        );
        let tos = data[view.l3 + 1];
        let mut out = ipv6_header(
            from,
            inside.0,
            next,
            tos,
            view.hop_limit.saturating_sub(1),
            l4.len(),
        )
        .to_vec();
        out.extend_from_slice(&l4);
        self.counters.translated_4to6 += 1;
        Outcome::Translated(out, IpAddr::V6(inside.0))
    }

    /// An ICMPv4 error about a translated flow, as an ICMPv6 error whose
    /// quote is the flow's IPv6 packet (RFC 7915 4.2, 4.3).
    fn inbound_error(&mut self, data: &[u8], view: &IpView) -> Outcome {
        let IpAddr::V4(reporter) = view.src else {
            return Outcome::Dropped("not IPv4");
        };
        let Transport::Icmp { ty, code, .. } = view.transport else {
            return Outcome::Dropped("not ICMP");
        };
        let icmp = view.payload(data);
        let quote_at = view.l4 + 8;
        let Some(q) = IpView::parse_quote(&data[..view.end], quote_at).ok() else {
            return Outcome::Untouched;
        };
        // The quote is our packet out: from the pool, to the server.
        let (IpAddr::V4(server), Some((proto, _, qdport, _))) = (q.dst, flow(&q, 8, 0)) else {
            return Outcome::Untouched;
        };
        let ext = match (proto, q.transport) {
            (
                Proto::Icmp,
                Transport::Icmp {
                    ident: Some(id), ..
                },
            ) => id,
            (_, Transport::Ports { src, .. }) => src,
            _ => return Outcome::Untouched,
        };
        let Some(b) = self
            .by_external
            .get(&(proto, ext))
            .filter(|b| b.sessions.contains_key(&(server, qdport)))
        else {
            return Outcome::Untouched;
        };
        let inside = b.inside;
        // RFC 7915 4.2: the type and code in IPv6 terms.
        let rest = u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]);
        let (ty6, code6, rest6) = match (ty, code) {
            (11, c) => (3, c, 0),
            (3, 4) => (2, 0, (rest & 0xffff).max(1260) + 20),
            (3, 2) => (4, 1, 6),
            (3, 3) => (1, 4, 0),
            (3, 9 | 10 | 13) => (1, 1, 0),
            (3, _) => (1, 0, 0),
            _ => {
                self.counters.dropped_untranslatable += 1;
                return Outcome::Dropped("untranslatable error");
            }
        };
        let prefix = self.config.prefix;
        let server6 = v6_of(prefix, server);
        let q_l4 = &data[q.l4.min(view.end)..view.end];
        let q_next = if proto == Proto::Icmp {
            PROTO_ICMPV6
        } else {
            q.proto
        };
        // The quoted upper layer keeps its bytes but gets the inside's port
        // back (its checksum cannot be checked against a cut quote).
        let mut inner_l4 = q_l4.to_vec();
        match proto {
            Proto::Icmp if inner_l4.len() >= 6 => {
                inner_l4[0] = 128;
                inner_l4[4..6].copy_from_slice(&inside.1.to_be_bytes());
            }
            Proto::Tcp | Proto::Udp if inner_l4.len() >= 2 => {
                inner_l4[0..2].copy_from_slice(&inside.1.to_be_bytes());
            }
            _ => {}
        }
        let inner_len = (q.end - q.l4).max(inner_l4.len());
        let tos = data[q.l3 + 1];
        let mut quote =
            ipv6_header(inside.0, server6, q_next, tos, q.hop_limit, inner_len).to_vec();
        quote.extend_from_slice(&inner_l4);
        quote.truncate(1280 - 40 - 8);
        let mut msg = vec![ty6, code6, 0, 0];
        msg.extend_from_slice(&rest6.to_be_bytes());
        msg.extend_from_slice(&quote);
        let from = v6_of(prefix, reporter);
        let c = transport_checksum(IpAddr::V6(from), IpAddr::V6(inside.0), PROTO_ICMPV6, &msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        let mut out = ipv6_header(
            from,
            inside.0,
            PROTO_ICMPV6,
            0,
            view.hop_limit.saturating_sub(1),
            msg.len(),
        )
        .to_vec();
        out.extend_from_slice(&msg);
        self.counters.errors_translated += 1;
        Outcome::Translated(out, IpAddr::V6(inside.0))
    }

    pub fn poll_at(&self) -> Option<Instant> {
        (self.sessions > 0).then(|| self.last_sweep + SWEEP)
    }

    /// Forgets expired sessions, and bindings left without any.
    pub fn on_timer(&mut self, now: Instant) {
        self.last_sweep = now;
        let mut expired = 0;
        let mut gone = Vec::new();
        for (key, b) in &mut self.by_external {
            let before = b.sessions.len();
            b.sessions.retain(|_, s| s.expires > now);
            expired += before - b.sessions.len();
            if b.sessions.is_empty() {
                gone.push((*key, b.inside));
            }
        }
        for ((proto, port), inside) in gone {
            self.by_external.remove(&(proto, port));
            self.by_inside.remove(&(proto, inside.0, inside.1));
        }
        self.sessions -= expired;
        self.counters.sessions_expired += expired as u64;
    }

    pub fn rows(&self, now: Instant) -> Vec<Nat64Row> {
        let mut rows = Vec::new();
        for (&(protocol, port), b) in &self.by_external {
            for (remote, s) in &b.sessions {
                rows.push(Nat64Row {
                    protocol,
                    inside: format!("[{}]:{}", b.inside.0, b.inside.1),
                    outside: format!("{}:{port}", self.config.pool),
                    remote: format!("{}:{}", remote.0, remote.1),
                    state: s.tcp.map_or("active", TcpState::as_str),
                    age_secs: now.saturating_since(s.created).as_secs(),
                    expires_in_secs: s.expires.saturating_since(now).as_secs(),
                });
            }
        }
        rows
    }
}
