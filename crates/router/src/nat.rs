//! Network address translation for a router's outside interface, with
//! connection tracking, as RFC 4787 (UDP), RFC 5382 (TCP) and RFC 5508
//! (ICMP) ask of a NAT. Sans-IO: the router calls it with `now`, a frame
//! and the frame's parsed [`IpView`], and it rewrites the frame in place
//! through the view's setters, which keep the view true.
//!
//! * Mapping is endpoint-independent (REQ-1): an inside (address, port)
//!   keeps one external port whatever it talks to; the inside port is kept
//!   when free (port preservation), and an external port never serves two
//!   inside endpoints (no port overloading).
//! * Filtering of inbound packets is endpoint-independent,
//!   address-dependent or address-and-port-dependent (REQ-8; the default).
//! * Hairpinning: an inside host reaches another through the external
//!   address and port, and is seen from its own mapping (REQ-9).
//! * Timeouts: UDP 300 s, TCP established 7440 s, TCP transitory 240 s,
//!   ICMP 60 s by default (the RFC minimums are 120 s, 2 h 4 min, 4 min and
//!   60 s); outbound packets refresh, inbound ones refresh TCP only, ICMP
//!   errors never.
//! * ICMP errors about a tracked flow are translated, embedded header and
//!   checksums included, so traceroute works through the NAT.
//! * An unsolicited inbound TCP SYN is dropped silently (no reply, so
//!   simultaneous open can still succeed: RFC 5382 REQ-4).
//! * Port forwards are static mappings that anyone may reach.
//! * The table is bounded, and so is each inside host's share of it and of
//!   the port range (a host is its source MAC: addresses it makes up share
//!   its budget); when a bound is reached new flows are refused (the
//!   router answers ICMP 3/13) and counted, and existing flows are
//!   untouched. A free port is found in a bitmap, never by probing the
//!   range port by port.
//! * What the NAT cannot track never leaves with an inside address: other
//!   protocols, ICMP queries other than echo, and ICMP errors that quote no
//!   tracked flow are dropped and counted.
//! * GSO super-frames are translated as they are; a partial (offloaded)
//!   transport checksum is updated for the new addresses only.
//! * Fragments are not translated (there is no reassembly, so RFC 4787
//!   REQ-14 is not met): dropped and counted, as are truncated transport
//!   headers and ICMP errors that quote no tracked flow.

use crate::conntrack::{advance_tcp, Proto, Session, TcpState, Timeouts, ACK, SYN};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::time::Duration;
use wire::checksum;
use wire::ip::{Fragment, IpView, Side, Transport, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use wire::{Frame, Instant};

/// Which inbound packets a mapping lets in (RFC 4787 REQ-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtering {
    EndpointIndependent,
    AddressDependent,
    AddressAndPortDependent,
}

/// A port forward: `proto` to the external address's `port` goes to `to`.
#[derive(Debug, Clone, Copy)]
pub struct PortForward {
    pub proto: Proto,
    pub port: u16,
    pub to: SocketAddrV4,
}

#[derive(Debug, Clone)]
pub struct NatConfig {
    /// The address inside sources are translated to.
    pub external: Ipv4Addr,
    pub ports: RangeInclusive<u16>,
    pub filtering: Filtering,
    /// Tracked sessions at most.
    pub max_entries: usize,
    /// Sessions one inside host may hold at most.
    pub max_entries_per_host: usize,
    /// External ports (mappings) one inside host may hold, per protocol.
    pub max_ports_per_host: usize,
    pub timeouts: Timeouts,
    pub forwards: Vec<PortForward>,
}

impl NatConfig {
    pub fn masquerade(external: Ipv4Addr) -> NatConfig {
        NatConfig {
            external,
            ports: 1024..=65535,
            filtering: Filtering::AddressAndPortDependent,
            max_entries: 65536,
            max_entries_per_host: 16384,
            max_ports_per_host: 16384,
            timeouts: Timeouts::default(),
            forwards: Vec::new(),
        }
    }
}

/// What became of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten; forward it.
    Translated,
    /// Not the NAT's business (inbound: no mapping, so perhaps the
    /// router's own; outbound: not from the inside).
    Untouched,
    /// A new flow the NAT cannot take: table full or no free port. The
    /// router answers ICMP 3/13.
    Refused,
    /// Dropped and counted.
    Dropped,
}

#[derive(Debug, Clone)]
struct Mapping {
    inside: (Ipv4Addr, u16),
    /// Whose share its sessions count against.
    owner: Owner,
    /// Sessions by remote endpoint.
    sessions: HashMap<(Ipv4Addr, u16), Session>,
    /// A port forward: never expires, lets anyone in.
    forward: bool,
}

/// Whose share of the table a mapping uses: the inside station as the
/// router can tell it (the source MAC of its frames, so that made-up
/// source addresses sent by one host share one budget: the reverse-path
/// check only asks that they be inside the subnet), or a port forward's
/// inside address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Owner {
    Station(wire::Mac),
    Forward(Ipv4Addr),
}

/// A row of `scratchnet status`'s NAT table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NatRow {
    pub protocol: Proto,
    pub inside: SocketAddrV4,
    pub outside: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub state: &'static str,
    pub age_secs: u64,
    pub expires_in_secs: u64,
}

/// The NAT's counters.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NatCounters {
    pub translated_out: u64,
    pub translated_in: u64,
    pub hairpinned: u64,
    pub icmp_errors_translated: u64,
    pub sessions_created: u64,
    pub sessions_expired: u64,
    pub refused_table_full: u64,
    pub refused_ports_exhausted: u64,
    /// New flows refused because the inside host used up its share.
    pub refused_host_share: u64,
    pub dropped_unsolicited: u64,
    pub dropped_filtered: u64,
    pub dropped_fragments: u64,
    pub dropped_truncated: u64,
    pub dropped_icmp_unknown_flow: u64,
    /// Outbound packets the NAT cannot track (other protocols, ICMP
    /// queries other than echo).
    pub dropped_untrackable: u64,
}

/// External ports in use for one protocol, as a bitmap: finding a free
/// one is a pass over at most 1,024 words, never a probe per port.
#[derive(Debug, Clone)]
struct PortSet {
    words: Box<[u64; 1024]>,
}

impl PortSet {
    fn new() -> PortSet {
        PortSet {
            words: Box::new([0; 1024]),
        }
    }

    fn contains(&self, p: u16) -> bool {
        self.words[usize::from(p / 64)] & (1 << (p % 64)) != 0
    }

    fn insert(&mut self, p: u16) {
        self.words[usize::from(p / 64)] |= 1 << (p % 64);
    }

    fn remove(&mut self, p: u16) {
        self.words[usize::from(p / 64)] &= !(1 << (p % 64));
    }

    /// The lowest free port in `lo..=hi`.
    fn free_in(&self, lo: u16, hi: u16) -> Option<u16> {
        let (mut p, hi) = (u32::from(lo), u32::from(hi));
        while p <= hi {
            let free = !self.words[(p / 64) as usize] >> (p % 64);
            if free != 0 {
                let found = p + free.trailing_zeros();
                return (found <= hi).then_some(found as u16);
            }
            p = (p / 64 + 1) * 64;
        }
        None
    }
}

/// What one inside host holds of the NAT's table.
#[derive(Debug, Default, Clone, Copy)]
struct HostUse {
    sessions: usize,
    mappings: usize,
}

/// The transport view of an IPv4 packet that the NAT needs.
#[derive(Debug, Clone, Copy)]
struct Flow {
    proto: Proto,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    tcp_flags: u8,
}

/// Why a packet cannot be looked at.
enum Unreadable {
    Fragment,
    Truncated,
    /// Not TCP, UDP or an ICMP query/error.
    Other,
}

/// The flow of a parsed packet. `whole`: its transport header must be
/// there in full (a quote in an ICMP error needs only its first 8 bytes,
/// RFC 792).
fn flow_of(view: &IpView, whole: bool) -> Result<Flow, Unreadable> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (view.src, view.dst) else {
        return Err(Unreadable::Other);
    };
    if view.fragment != Fragment::Whole {
        return Err(Unreadable::Fragment);
    }
    let have = view.end.saturating_sub(view.l4);
    let need = match view.proto {
        PROTO_TCP if whole => 20,
        PROTO_TCP | PROTO_UDP | PROTO_ICMP => 8,
        _ => return Err(Unreadable::Other),
    };
    if have < need {
        return Err(Unreadable::Truncated);
    }
    let (proto, sport, dport, flags) = match view.transport {
        Transport::Ports { src, dst, flags } if view.proto == PROTO_TCP => {
            (Proto::Tcp, src, dst, flags)
        }
        Transport::Ports { src, dst, .. } => (Proto::Udp, src, dst, 0),
        // The identifier is the requester's "port"; the other end has none.
        Transport::Icmp {
            ty: 8,
            ident: Some(id),
            ..
        } => (Proto::Icmp, id, 0, 0),
        Transport::Icmp {
            ty: 0,
            ident: Some(id),
            ..
        } => (Proto::Icmp, 0, id, 0),
        Transport::Icmp { .. } => return Err(Unreadable::Other),
        Transport::None => return Err(Unreadable::Truncated),
    };
    Ok(Flow {
        proto,
        src: (src, sport),
        dst: (dst, dport),
        tcp_flags: flags,
    })
}

/// Rewrites the source or destination address and port of the packet
/// `view` describes, every checksum kept right by the view's setters (an
/// ICMP echo's identifier stands for the port, whichever side).
fn rewrite(data: &mut [u8], view: &mut IpView, side: Side, to: (Ipv4Addr, u16), partial: bool) {
    view.set_addr(data, side, IpAddr::V4(to.0), partial);
    view.set_port(data, side, to.1, partial);
}

/// The NAT of one outside interface. See the module documentation.
#[derive(Debug, Clone)]
pub struct Nat {
    config: NatConfig,
    /// Mappings by (protocol, external port).
    by_external: HashMap<(Proto, u16), Mapping>,
    /// External port by (protocol, inside address, inside port).
    by_inside: HashMap<(Proto, Ipv4Addr, u16), u16>,
    /// Ports in use, by protocol (TCP, UDP, ICMP).
    ports: [PortSet; 3],
    /// Each inside host's share in use.
    hosts: HashMap<Owner, HostUse>,
    sessions: usize,
    cursor: u16,
    last_sweep: Instant,
    counters: NatCounters,
}

/// How often expired sessions are swept.
const SWEEP: Duration = Duration::from_secs(1);

impl Nat {
    pub fn new(config: NatConfig) -> Nat {
        let mut nat = Nat {
            cursor: *config.ports.start(),
            config,
            by_external: HashMap::new(),
            by_inside: HashMap::new(),
            ports: [PortSet::new(), PortSet::new(), PortSet::new()],
            hosts: HashMap::new(),
            sessions: 0,
            last_sweep: Instant::ZERO,
            counters: NatCounters::default(),
        };
        for f in nat.config.forwards.clone() {
            let inside = (*f.to.ip(), f.to.port());
            nat.by_external.insert(
                (f.proto, f.port),
                Mapping {
                    inside,
                    owner: Owner::Forward(inside.0),
                    sessions: HashMap::new(),
                    forward: true,
                },
            );
            nat.by_inside.insert((f.proto, inside.0, inside.1), f.port);
            nat.ports[f.proto.index()].insert(f.port);
        }
        nat
    }

    pub fn external(&self) -> Ipv4Addr {
        self.config.external
    }

    pub fn counters(&self) -> &NatCounters {
        &self.counters
    }

    /// A free external port for a new mapping: the inside port when free
    /// (port preservation), else the next free one in the range after the
    /// last one given.
    fn allocate(&mut self, proto: Proto, inside_port: u16) -> Option<u16> {
        let (lo, hi) = (*self.config.ports.start(), *self.config.ports.end());
        let used = &self.ports[proto.index()];
        let p = if (lo..=hi).contains(&inside_port) && !used.contains(inside_port) {
            inside_port
        } else {
            let from = self.cursor.clamp(lo, hi);
            let wrapped = || {
                from.checked_sub(1)
                    .and_then(|to| used.free_in(lo, to.max(lo)))
            };
            used.free_in(from, hi).or_else(wrapped)?
        };
        self.cursor = p.saturating_add(1);
        self.ports[proto.index()].insert(p);
        Some(p)
    }

    /// The session with `remote` on the mapping at `key` (whose share is
    /// `owner`'s), created if the table and the share have room; `None`,
    /// counted, if not.
    fn session(
        &mut self,
        now: Instant,
        key: (Proto, u16),
        remote: (Ipv4Addr, u16),
        owner: Owner,
    ) -> Option<&mut Session> {
        let is_new = !self.by_external.get(&key)?.sessions.contains_key(&remote);
        if is_new {
            if self.sessions >= self.config.max_entries {
                self.counters.refused_table_full += 1;
                return None;
            }
            let host = self.hosts.entry(owner).or_default();
            if host.sessions >= self.config.max_entries_per_host {
                self.counters.refused_host_share += 1;
                return None;
            }
            host.sessions += 1;
            self.sessions += 1;
            self.counters.sessions_created += 1;
        }
        let m = self.by_external.get_mut(&key)?;
        Some(m.sessions.entry(remote).or_insert(Session {
            tcp: None,
            created: now,
            expires: now,
        }))
    }

    /// A packet from the inside leaving by the outside interface:
    /// translates its source.
    pub fn outbound(&mut self, now: Instant, frame: &mut Frame, view: &mut IpView) -> Verdict {
        let partial = frame.hdr.needs_csum();
        let data = frame.data_mut();
        if let Some(v) = self.icmp_error(data, view, true) {
            return v;
        }
        let flow = match flow_of(view, true) {
            Ok(x) => x,
            Err(Unreadable::Other) => {
                self.counters.dropped_untrackable += 1;
                return Verdict::Dropped;
            }
            Err(e) => return self.unreadable(e),
        };
        if flow.src.0 == self.config.external {
            return Verdict::Untouched; // the router's own traffic
        }
        // The frame holds its Ethernet header: the view was parsed after it.
        let station = Owner::Station(wire::Mac::from_slice(&data[6..]).unwrap_or_default());
        let key = (flow.proto, flow.src.0, flow.src.1);
        let ext_port = match self.by_inside.get(&key) {
            Some(p) => *p,
            None => {
                if self.sessions >= self.config.max_entries {
                    self.counters.refused_table_full += 1;
                    return Verdict::Refused;
                }
                let host = self.hosts.get(&station).copied().unwrap_or_default();
                if host.mappings >= self.config.max_ports_per_host
                    || host.sessions >= self.config.max_entries_per_host
                {
                    self.counters.refused_host_share += 1;
                    return Verdict::Refused;
                }
                let Some(p) = self.allocate(flow.proto, flow.src.1) else {
                    self.counters.refused_ports_exhausted += 1;
                    return Verdict::Refused;
                };
                self.hosts.entry(station).or_default().mappings += 1;
                self.by_inside.insert(key, p);
                self.by_external.insert(
                    (flow.proto, p),
                    Mapping {
                        inside: flow.src,
                        owner: station,
                        sessions: HashMap::new(),
                        forward: false,
                    },
                );
                p
            }
        };
        let remote = flow.dst;
        let Some(m) = self.by_external.get_mut(&(flow.proto, ext_port)) else {
            return Verdict::Dropped;
        };
        let (owner, timeouts) = (m.owner, self.config.timeouts);
        let Some(session) = self.session(now, (flow.proto, ext_port), remote, owner) else {
            return Verdict::Refused;
        };
        session.tcp = advance_tcp(flow.proto, session.tcp, flow.tcp_flags, true);
        session.expires = now + timeouts.of(flow.proto, session.tcp);
        rewrite(
            data,
            view,
            Side::Src,
            (self.config.external, ext_port),
            partial,
        );
        self.counters.translated_out += 1;
        Verdict::Translated
    }

    /// A packet arriving on the outside interface for the external address:
    /// translates its destination if a mapping lets it in.
    pub fn inbound(&mut self, now: Instant, frame: &mut Frame, view: &mut IpView) -> Verdict {
        let partial = frame.hdr.needs_csum();
        let data = frame.data_mut();
        if let Some(v) = self.icmp_error(data, view, false) {
            return v;
        }
        let flow = match flow_of(view, true) {
            Ok(x) => x,
            Err(Unreadable::Other) => return Verdict::Untouched,
            Err(e) => return self.unreadable(e),
        };
        let key = (flow.proto, flow.dst.1);
        let remote = flow.src;
        let filtering = self.config.filtering;
        let Some(m) = self.by_external.get_mut(&key) else {
            if flow.proto == Proto::Tcp && flow.tcp_flags & SYN != 0 && flow.tcp_flags & ACK == 0 {
                // RFC 5382 REQ-4: no reply to an unsolicited SYN for at
                // least 6 s; this NAT never replies.
                self.counters.dropped_unsolicited += 1;
                return Verdict::Dropped;
            }
            return Verdict::Untouched;
        };
        let allowed = m.forward
            || match filtering {
                Filtering::EndpointIndependent => true,
                Filtering::AddressDependent => m.sessions.keys().any(|(ip, _)| *ip == remote.0),
                Filtering::AddressAndPortDependent => m.sessions.contains_key(&remote),
            };
        if !allowed {
            if flow.proto == Proto::Tcp && flow.tcp_flags & SYN != 0 {
                self.counters.dropped_unsolicited += 1;
            } else {
                self.counters.dropped_filtered += 1;
            }
            return Verdict::Dropped;
        }
        let (inside, owner) = (m.inside, m.owner);
        let timeouts = self.config.timeouts;
        let Some(s) = self.session(now, key, remote, owner) else {
            return Verdict::Dropped;
        };
        s.tcp = advance_tcp(flow.proto, s.tcp, flow.tcp_flags, false);
        // Inbound refreshes TCP only (RFC 4787 REQ-6 asks for outbound).
        if flow.proto == Proto::Tcp || s.expires <= now {
            s.expires = now + timeouts.of(flow.proto, s.tcp);
        }
        rewrite(data, view, Side::Dst, inside, partial);
        self.counters.translated_in += 1;
        Verdict::Translated
    }

    /// A packet from the inside to the external address (hairpinning):
    /// translated as it leaves, then as it comes back in.
    pub fn hairpin(&mut self, now: Instant, frame: &mut Frame, view: &mut IpView) -> Verdict {
        let Ok(flow) = flow_of(view, true) else {
            return Verdict::Untouched;
        };
        if !self.by_external.contains_key(&(flow.proto, flow.dst.1)) {
            return Verdict::Untouched;
        }
        match self.outbound(now, frame, view) {
            Verdict::Translated => {}
            other => return other,
        }
        let v = self.inbound(now, frame, view);
        if v == Verdict::Translated {
            self.counters.hairpinned += 1;
        }
        v
    }

    fn unreadable(&mut self, e: Unreadable) -> Verdict {
        match e {
            Unreadable::Fragment => self.counters.dropped_fragments += 1,
            Unreadable::Truncated => self.counters.dropped_truncated += 1,
            Unreadable::Other => return Verdict::Untouched,
        }
        Verdict::Dropped
    }

    /// Translates an ICMP error (RFC 5508): the quoted packet is one this
    /// NAT translated (inbound: it quotes our external endpoint as its
    /// source; outbound: an inside host quotes a packet to it). `None` if
    /// the packet is not an ICMP error.
    fn icmp_error(
        &mut self,
        data: &mut [u8],
        view: &mut IpView,
        outbound: bool,
    ) -> Option<Verdict> {
        if view.proto != PROTO_ICMP || view.fragment != Fragment::Whole || !view.is_icmp_error() {
            return None;
        }
        let (icmp_at, end) = (view.l4, view.end);
        let quote = IpView::parse_quote(&data[..end], icmp_at + 8).ok();
        let Some((q, mut qv)) = quote.and_then(|qv| flow_of(&qv, false).ok().map(|q| (q, qv)))
        else {
            self.counters.dropped_icmp_unknown_flow += 1;
            return Some(Verdict::Dropped);
        };
        // Inbound: the quote is our packet out, its source our external
        // endpoint. Outbound: an inside host quotes a packet we delivered
        // to it, its destination the inside endpoint.
        let (key, inner_src) = if outbound {
            match self.by_inside.get(&(q.proto, q.dst.0, q.dst.1)) {
                Some(p) => ((q.proto, *p), false),
                None => {
                    // It would leave quoting an inside address.
                    self.counters.dropped_icmp_unknown_flow += 1;
                    return Some(Verdict::Dropped);
                }
            }
        } else {
            if q.src.0 != self.config.external {
                return Some(Verdict::Untouched);
            }
            ((q.proto, q.src.1), true)
        };
        let Some(m) = self.by_external.get(&key) else {
            self.counters.dropped_icmp_unknown_flow += 1;
            return Some(Verdict::Dropped);
        };
        let inside = m.inside;
        let external = (self.config.external, key.1);
        let (inner_to, outer_to) = if outbound {
            (external, self.config.external)
        } else {
            (inside, inside.0)
        };
        // The quoted packet, its own header and transport checksums kept
        // right; then the outer header: source when leaving, destination
        // when entering.
        let inner_side = if inner_src { Side::Src } else { Side::Dst };
        rewrite(&mut data[..end], &mut qv, inner_side, inner_to, false);
        let outer_side = if outbound { Side::Src } else { Side::Dst };
        view.set_addr(data, outer_side, IpAddr::V4(outer_to), false);
        // The ICMP checksum covers the whole message: recompute it.
        data[icmp_at + 2..icmp_at + 4].fill(0);
        let c = checksum::finish(checksum::sum(0, &data[icmp_at..end]));
        data[icmp_at + 2..icmp_at + 4].copy_from_slice(&c.to_be_bytes());
        self.counters.icmp_errors_translated += 1;
        Some(Verdict::Translated)
    }

    /// When the NAT next wants [`Nat::on_timer`].
    pub fn poll_at(&self) -> Option<Instant> {
        (self.sessions > 0).then(|| self.last_sweep + SWEEP)
    }

    /// Forgets expired sessions, and mappings left without sessions.
    pub fn on_timer(&mut self, now: Instant) {
        self.last_sweep = now;
        let mut expired = 0;
        let mut gone = Vec::new();
        for (key, m) in &mut self.by_external {
            let before = m.sessions.len();
            m.sessions.retain(|_, s| s.expires > now);
            let n = before - m.sessions.len();
            expired += n;
            if n > 0 {
                if let Some(h) = self.hosts.get_mut(&m.owner) {
                    h.sessions = h.sessions.saturating_sub(n);
                }
            }
            if m.sessions.is_empty() && !m.forward {
                gone.push((*key, m.inside, m.owner));
            }
        }
        for (key, inside, owner) in gone {
            self.by_external.remove(&key);
            self.by_inside.remove(&(key.0, inside.0, inside.1));
            self.ports[key.0.index()].remove(key.1);
            if let Some(h) = self.hosts.get_mut(&owner) {
                h.mappings = h.mappings.saturating_sub(1);
            }
        }
        self.hosts.retain(|_, h| h.sessions > 0 || h.mappings > 0);
        self.sessions -= expired;
        self.counters.sessions_expired += expired as u64;
    }

    pub fn rows(&self, now: Instant) -> Vec<NatRow> {
        let mut rows = Vec::new();
        let by_key: BTreeMap<_, _> = self.by_external.iter().collect();
        for (&(proto, port), m) in by_key {
            for (remote, s) in &m.sessions {
                rows.push(NatRow {
                    protocol: proto,
                    inside: SocketAddrV4::new(m.inside.0, m.inside.1),
                    outside: SocketAddrV4::new(self.config.external, port),
                    remote: SocketAddrV4::new(remote.0, remote.1),
                    state: s.tcp.map_or(
                        if m.forward { "forward" } else { "active" },
                        TcpState::as_str,
                    ),
                    age_secs: now.saturating_since(s.created).as_secs(),
                    expires_in_secs: s.expires.saturating_since(now).as_secs(),
                });
            }
        }
        rows
    }
}
