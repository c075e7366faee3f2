//! The IPv6 "simple security" of a customer router (RFC 6092): no NAT,
//! but what the inside did not ask for stays out.
//!
//! * Outbound traffic passes and opens a session (TCP, UDP, ICMPv6 echo),
//!   tracked by the same machinery and timeouts as the NAT
//!   ([`crate::conntrack`]); a session's key holds both ends, so only the
//!   remote endpoint the inside talked to may answer (address- and
//!   port-dependent filtering, RFC 6092 REC-11).
//! * Inbound traffic passes only as part of a session, or through a
//!   pinhole (a static rule, like a port forward without translation);
//!   the rest is dropped and counted: an unsolicited TCP SYN is dropped
//!   silently (RFC 6092 REC-33), as is unsolicited UDP.
//! * Echo requests pass both ways, as RFC 4890 4.3.1 recommends and
//!   OpenWrt's default firewall does: ping -6 and traceroute's last hop
//!   work, and nothing but an echo reply can answer them. They open no
//!   session.
//! * ICMPv6 that path-MTU discovery needs (Packet Too Big) always passes
//!   (RFC 4890); other ICMPv6 errors pass when the packet they quote
//!   belongs to a session.
//! * A later fragment passes inbound when a session joins its two
//!   addresses (it carries no ports to match).
//! * The table is bounded, and so is each inside station's share of it
//!   (a station is its source MAC, as for the NAT); a new session past a
//!   bound is refused and counted, and the router answers "administratively
//!   prohibited".

use crate::conntrack::{advance_tcp, Proto, Session, TcpState, Timeouts, ACK, SYN};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr, SocketAddrV6};
use std::time::Duration;
use wire::ip::{Fragment, IpView, Transport, PROTO_TCP, PROTO_UDP};
use wire::{Instant, Mac};

/// How often expired sessions are swept.
const SWEEP: Duration = Duration::from_secs(5);

/// A hole in the firewall: `proto` to `to` port `port` is let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinhole {
    pub proto: Proto,
    pub port: u16,
    pub to: Ipv6Addr,
}

#[derive(Debug, Clone)]
pub struct FirewallConfig {
    /// Sessions at most.
    pub max_entries: usize,
    /// Sessions one inside station may hold at most.
    pub max_entries_per_host: usize,
    pub timeouts: Timeouts,
    pub pinholes: Vec<Pinhole>,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        FirewallConfig {
            max_entries: 65536,
            max_entries_per_host: 16384,
            timeouts: Timeouts::default(),
            pinholes: Vec::new(),
        }
    }
}

/// What the firewall says of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Part of a session (or opening one, outbound).
    Pass(&'static str),
    /// Let in by a pinhole.
    Pinhole,
    /// A new outbound session past a bound.
    Refused,
    /// Not asked for from inside: dropped.
    Dropped(&'static str),
}

/// The firewall's counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FirewallCounters {
    pub sessions_created: u64,
    pub sessions_expired: u64,
    pub passed_out: u64,
    pub passed_in: u64,
    pub pinholed: u64,
    /// Inbound packets no session or pinhole let in.
    pub dropped_unsolicited: u64,
    /// Inbound ICMPv6 errors quoting no session.
    pub dropped_icmp_unknown_flow: u64,
    pub refused_table_full: u64,
    pub refused_host_share: u64,
}

/// A session as `scratchnet status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FirewallRow {
    pub protocol: Proto,
    pub inside: SocketAddrV6,
    pub remote: SocketAddrV6,
    pub state: &'static str,
    pub age_secs: u64,
    pub expires_in_secs: u64,
}

/// A session: protocol, inside endpoint, remote endpoint. An echo's
/// identifier is the inside "port"; the remote has none.
type Key = (Proto, (Ipv6Addr, u16), (Ipv6Addr, u16));

#[derive(Debug, Clone)]
struct Tracked {
    session: Session,
    /// Whose share it counts against; `None` for a pinhole's.
    owner: Option<Mac>,
}

/// The firewall of one outside interface. See the module documentation.
#[derive(Debug, Clone)]
pub struct Firewall {
    config: FirewallConfig,
    sessions: HashMap<Key, Tracked>,
    per_host: HashMap<Mac, usize>,
    /// Sessions by (inside, remote) address: what a later fragment, which
    /// has no ports, is matched against in one lookup.
    pairs: HashMap<(Ipv6Addr, Ipv6Addr), usize>,
    counters: FirewallCounters,
    last_sweep: Instant,
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// The session key of a packet leaving (`outbound`) or entering.
fn key_of(view: &IpView, outbound: bool) -> Option<(Key, u8)> {
    let (src, dst) = (v6(view.src), v6(view.dst));
    let (proto, sport, dport, flags) = match view.transport {
        Transport::Ports { src, dst, flags } if view.proto == PROTO_TCP => {
            (Proto::Tcp, src, dst, flags)
        }
        Transport::Ports { src, dst, .. } if view.proto == PROTO_UDP => (Proto::Udp, src, dst, 0),
        // The inside's echo requests open sessions; their replies
        // belong to them.
        Transport::Icmp {
            ty: 128,
            ident: Some(id),
            ..
        } if outbound => (Proto::Icmp, id, 0, 0),
        Transport::Icmp {
            ty: 129,
            ident: Some(id),
            ..
        } if !outbound => (Proto::Icmp, 0, id, 0),
        _ => return None,
    };
    let key = if outbound {
        (proto, (src, sport), (dst, dport))
    } else {
        (proto, (dst, dport), (src, sport))
    };
    Some((key, flags))
}

impl Firewall {
    pub fn new(config: FirewallConfig) -> Firewall {
        Firewall {
            config,
            sessions: HashMap::new(),
            per_host: HashMap::new(),
            pairs: HashMap::new(),
            counters: FirewallCounters::default(),
            last_sweep: Instant::ZERO,
        }
    }

    pub fn counters(&self) -> &FirewallCounters {
        &self.counters
    }

    /// A packet from the inside leaving by the outside interface, sent by
    /// station `from`.
    pub fn outbound(&mut self, now: Instant, view: &IpView, from: Mac) -> Verdict {
        let Some((key, flags)) = key_of(view, true).filter(|_| view.fragment == Fragment::Whole)
        else {
            // Fragments and untracked protocols leave as they are: the
            // inside's traffic out is never filtered (RFC 6092 3.2).
            self.counters.passed_out += 1;
            return Verdict::Pass("outbound, untracked");
        };
        let timeouts = self.config.timeouts;
        let created = match self.sessions.get_mut(&key) {
            Some(t) => {
                t.session.tcp = advance_tcp(key.0, t.session.tcp, flags, true);
                t.session.expires = now + timeouts.of(key.0, t.session.tcp);
                false
            }
            None => {
                if self.sessions.len() >= self.config.max_entries {
                    self.counters.refused_table_full += 1;
                    return Verdict::Refused;
                }
                let held = self.per_host.get(&from).copied().unwrap_or(0);
                if held >= self.config.max_entries_per_host {
                    self.counters.refused_host_share += 1;
                    return Verdict::Refused;
                }
                *self.per_host.entry(from).or_default() += 1;
                self.open(now, key, flags, Some(from));
                true
            }
        };
        self.counters.passed_out += 1;
        Verdict::Pass(if created { "new session" } else { "session" })
    }

    /// A packet arriving on the outside interface for the inside; `data`
    /// holds it (for the packet an ICMPv6 error quotes).
    pub fn inbound(&mut self, now: Instant, view: &IpView, data: &[u8]) -> Verdict {
        let timeouts = self.config.timeouts;
        if let Transport::Icmp { ty, .. } = view.transport {
            if ty == 2 {
                // Packet Too Big: path-MTU discovery must work.
                self.counters.passed_in += 1;
                return Verdict::Pass("packet too big");
            }
            if view.is_icmp_error() {
                return self.icmp_error(view, data);
            }
            if ty == 128 {
                self.counters.passed_in += 1;
                return Verdict::Pass("echo request");
            }
        }
        if let Fragment::Later { .. } = view.fragment {
            let (src, dst) = (v6(view.src), v6(view.dst));
            if self.pairs.contains_key(&(dst, src)) {
                self.counters.passed_in += 1;
                return Verdict::Pass("fragment of a session");
            }
            self.counters.dropped_unsolicited += 1;
            return Verdict::Dropped("not established");
        }
        let Some((key, flags)) = key_of(view, false) else {
            self.counters.dropped_unsolicited += 1;
            return Verdict::Dropped("not established");
        };
        if let Some(t) = self.sessions.get_mut(&key) {
            t.session.tcp = advance_tcp(key.0, t.session.tcp, flags, false);
            // Inbound refreshes TCP only, as the NAT does.
            if key.0 == Proto::Tcp || t.session.expires <= now {
                t.session.expires = now + timeouts.of(key.0, t.session.tcp);
            }
            self.counters.passed_in += 1;
            return Verdict::Pass("session");
        }
        let (proto, inside) = (key.0, key.1);
        let holed = self
            .config
            .pinholes
            .iter()
            .any(|p| p.proto == proto && p.port == inside.1 && p.to == inside.0);
        let opening = proto != Proto::Tcp || (flags & SYN != 0 && flags & ACK == 0);
        if holed && opening && self.sessions.len() < self.config.max_entries {
            self.open(now, key, flags, None);
            self.counters.pinholed += 1;
            return Verdict::Pinhole;
        }
        self.counters.dropped_unsolicited += 1;
        Verdict::Dropped("not established")
    }

    /// Opens a session with its first packet's flags: from the inside
    /// station `owner`, or (`None`) through a pinhole from outside.
    fn open(&mut self, now: Instant, key: Key, flags: u8, owner: Option<Mac>) {
        let tcp = advance_tcp(key.0, None, flags, owner.is_some());
        let timeouts = self.config.timeouts;
        *self.pairs.entry((key.1 .0, key.2 .0)).or_default() += 1;
        self.sessions.insert(
            key,
            Tracked {
                session: Session {
                    tcp,
                    created: now,
                    expires: now + timeouts.of(key.0, tcp),
                },
                owner,
            },
        );
        self.counters.sessions_created += 1;
    }

    /// An ICMPv6 error from outside: it passes if the packet it quotes
    /// (one that left from inside) belongs to a session.
    fn icmp_error(&mut self, view: &IpView, data: &[u8]) -> Verdict {
        let quoted = IpView::parse_quote(&data[..view.end.min(data.len())], view.l4 + 8).ok();
        let known = quoted
            .filter(|q| !matches!(q.fragment, Fragment::Later { .. }))
            .and_then(|q| key_of(&q, true))
            .is_some_and(|(key, _)| self.sessions.contains_key(&key));
        if known {
            self.counters.passed_in += 1;
            Verdict::Pass("error about a session")
        } else {
            self.counters.dropped_icmp_unknown_flow += 1;
            Verdict::Dropped("error about no session")
        }
    }

    /// When the firewall next wants [`Firewall::on_timer`].
    pub fn poll_at(&self) -> Option<Instant> {
        (!self.sessions.is_empty()).then(|| self.last_sweep + SWEEP)
    }

    /// Forgets expired sessions.
    pub fn on_timer(&mut self, now: Instant) {
        self.last_sweep = now;
        let before = self.sessions.len();
        let (per_host, pairs) = (&mut self.per_host, &mut self.pairs);
        self.sessions.retain(|key, t| {
            let live = t.session.expires > now;
            if !live {
                if let Some(h) = t.owner.and_then(|o| per_host.get_mut(&o)) {
                    *h = h.saturating_sub(1);
                }
                if let Some(n) = pairs.get_mut(&(key.1 .0, key.2 .0)) {
                    *n = n.saturating_sub(1);
                }
            }
            live
        });
        self.per_host.retain(|_, n| *n > 0);
        self.pairs.retain(|_, n| *n > 0);
        self.counters.sessions_expired += (before - self.sessions.len()) as u64;
    }

    pub fn rows(&self, now: Instant) -> Vec<FirewallRow> {
        let sorted: BTreeMap<_, _> = self.sessions.iter().collect();
        sorted
            .into_iter()
            .map(|(&(protocol, inside, remote), t)| FirewallRow {
                protocol,
                inside: SocketAddrV6::new(inside.0, inside.1, 0, 0),
                remote: SocketAddrV6::new(remote.0, remote.1, 0, 0),
                state: t.session.tcp.map_or(
                    if t.owner.is_none() {
                        "pinhole"
                    } else {
                        "active"
                    },
                    TcpState::as_str,
                ),
                age_secs: now.saturating_since(t.session.created).as_secs(),
                expires_in_secs: t.session.expires.saturating_since(now).as_secs(),
            })
            .collect()
    }
}
