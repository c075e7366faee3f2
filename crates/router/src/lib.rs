//! A dual-stack router as a sans-IO state machine (RFC 1812, RFC 8504).
//!
//! [`Router::receive`] takes the time, the interface and an owned Ethernet
//! [`Frame`], and hands frames to send, by interface, to the caller's
//! outbox. It never reads a clock or touches a socket; [`Router::poll_at`]
//! says when [`Router::on_timer`] is next due (ARP and ND retries, router
//! advertisements, lease expiry).
//!
//! A frame's IP packet is parsed once, where the frame enters
//! ([`wire::ip::IpView`]), and the view goes with the frame through every
//! decision. The family-specific work lives in two modules over the
//! shared routing, neighbour and ICMP-error code here:
//! * `v4`: ARP, RFC 1812 forwarding with fragmentation, the NAT, DHCP;
//! * `v6`: neighbour discovery (RFC 4861) and router advertisements for
//!   SLAAC (RFC 4862, RDNSS/DNSSL per RFC 8106), forwarding without
//!   fragmentation (Packet Too Big instead), ICMPv6 (RFC 4443).
//!
//! Point-to-point interfaces (a TUN link) carry frames with a placeholder
//! Ethernet header that the fabric adds and removes, so that every
//! interface speaks one framing.
//!
//! What it does, as a network engineer expects of a router: answers ARP
//! and neighbour solicitations for its addresses, resolves next hops with
//! a bounded queue, and gives up after three unanswered requests with
//! Host (Address) Unreachable; forwards by longest prefix, decrementing
//! TTL or hop limit; sends ICMP errors rate-limited, never about an ICMP
//! error, a broadcast or multicast; answers echo requests; drops and
//! counts martians; forwards GSO super-frames whole.

mod conntrack;
mod counters;
mod decision;
mod dhcp;
mod dhcp6;
mod firewall;
mod icmp;
mod nat;
mod nat64;
pub mod nd;
mod neigh;
mod routes;
#[cfg(test)]
mod tests;
mod v4;
mod v6;

pub use conntrack::{Proto, Timeouts};
pub use counters::{Counters, Drop};
pub use decision::Decision;
pub use dhcp::{DhcpConfig, DhcpCounters, DhcpStatus, LeaseRow};
pub use dhcp6::{Dhcp6Config, Dhcp6Counters, Dhcp6Status, Lease6Row};
pub use firewall::{FirewallConfig, FirewallCounters, FirewallRow, Pinhole};
pub use icmp::IcmpError;
pub use nat::{Filtering, NatConfig, NatCounters, NatRow, PortForward};
pub use nat64::{Nat64Config, Nat64Counters, Nat64Row};
pub use nd::RaConfig;
pub use neigh::{NeighbourLimits, NeighbourRow};
pub use routes::{Route, RouteKind, RouteTable};

use dhcp::DhcpServer;
use icmp::ErrorLimits;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use nat::Nat;
use neigh::{Lookup, Neighbours, Queued};
use std::net::{IpAddr, Ipv6Addr};
use wire::ether::{EthernetHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, HEADER_LEN};
use wire::ip::{Family, IpError, IpView};
use wire::{Frame, FramePool, GsoType, Instant, Mac};

/// An interface of one router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct IfaceId(pub u32);

/// What an interface is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A switch port: ARP, neighbour discovery, MAC addresses.
    Ethernet { mac: Mac },
    /// A TUN link: no link-layer addresses.
    PointToPoint,
}

#[derive(Debug, Clone)]
pub struct IfaceConfig {
    pub name: String,
    pub link: Link,
    pub addr: Ipv4Net,
    /// The interface's global IPv6 address and prefix; with it the
    /// interface speaks IPv6 (and has a link-local address too).
    pub addr6: Option<Ipv6Net>,
    pub mtu: u16,
    pub dhcp: Option<DhcpConfig>,
    /// Router advertisements on this interface.
    pub ra: Option<RaConfig>,
    /// A DHCPv6 server on this interface (it needs `addr6`).
    pub dhcp6: Option<Dhcp6Config>,
}

/// Why a route cannot be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreachableNextHop(pub IpAddr);

impl std::fmt::Display for UnreachableNextHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "next hop {} is not on any interface's subnet", self.0)
    }
}

impl std::error::Error for UnreachableNextHop {}

#[derive(Clone)]
struct Iface {
    config: IfaceConfig,
    dhcp: Option<DhcpServer>,
    dhcp6: Option<dhcp6::Dhcp6Server>,
    /// The IPv6 link-local address (fe80::/64 by EUI-64), when the
    /// interface speaks IPv6.
    link_local: Option<Ipv6Addr>,
    /// When the next unsolicited router advertisement is due, and when
    /// the last one was sent (solicited ones are spaced, RFC 4861 6.2.6).
    next_ra: Option<Instant>,
    last_ra: Option<Instant>,
}

impl Iface {
    /// Whether `a` is one of this interface's addresses.
    fn owns(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => self.config.addr.addr() == a,
            IpAddr::V6(a) => {
                self.link_local == Some(a) || self.config.addr6.is_some_and(|n| n.addr() == a)
            }
        }
    }
}

/// Frames to send, by interface.
pub type Outbox = Vec<(IfaceId, Frame)>;

/// What every step of handling one frame needs besides the router: the
/// time, the frame pool, and where frames to send go.
pub(crate) struct Io<'a> {
    now: Instant,
    pool: &'a mut FramePool,
    out: &'a mut Outbox,
}

/// The bounds of a router's tables and rates (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterLimits {
    pub neighbours: NeighbourLimits,
    /// ICMP errors of each kind per second (Fragmentation Needed and
    /// Packet Too Big are not limited), in bursts of a tenth of that.
    pub icmp_errors_per_sec: u32,
}

impl Default for RouterLimits {
    fn default() -> Self {
        RouterLimits {
            neighbours: NeighbourLimits::default(),
            icmp_errors_per_sec: 1000,
        }
    }
}

/// The router. See the crate documentation. A clone is a what-if copy:
/// the same tables, changed independently.
#[derive(Clone)]
pub struct Router {
    limits: RouterLimits,
    name: String,
    ifaces: Vec<Iface>,
    routes: RouteTable,
    neigh: Neighbours,
    icmp_limit: ErrorLimits,
    counters: Counters,
    ident: u16,
    /// The NAT on the outside interface, if any (IPv4 only).
    nat: Option<(IfaceId, Nat)>,
    /// The IPv6 firewall on the outside interface, if any.
    firewall: Option<(IfaceId, firewall::Firewall)>,
    /// NAT64 to the IPv4 side, if any.
    nat64: Option<nat64::Nat64>,
    /// Decisions taken on the current frame, while a trace asks for them.
    decisions: Option<Vec<Decision>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("name", &self.name)
            .field("ifaces", &self.ifaces.len())
            .finish()
    }
}

/// A snapshot for `scratchnet status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouterStatus {
    pub name: String,
    pub interfaces: Vec<IfaceRow>,
    pub routes: Vec<RouteRow>,
    /// The neighbour cache of both families: ARP and NDP entries.
    pub arp: Vec<NeighbourRow>,
    pub arp_table: TableUse,
    pub leases: Vec<LeaseRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dhcp: Vec<DhcpStatus>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leases6: Vec<Lease6Row>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dhcp6: Vec<Dhcp6Status>,
    pub counters: Counters,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat: Option<NatStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<FirewallStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat64: Option<Nat64Status>,
}

/// The NAT64's sessions and counters.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Nat64Status {
    pub table: Vec<Nat64Row>,
    pub counters: Nat64Counters,
}

/// The IPv6 firewall's sessions and counters.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FirewallStatus {
    pub table: Vec<FirewallRow>,
    pub counters: FirewallCounters,
}

/// The NAT table (inside, outside, remote, protocol, state, age,
/// expires-in) and counters.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NatStatus {
    pub table: Vec<NatRow>,
    pub counters: NatCounters,
}

/// How full the neighbour tables are, against their bounds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableUse {
    pub entries: usize,
    pub max_entries: usize,
    pub evicted: u64,
    pub queued_bytes: usize,
    pub max_queued_bytes: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct IfaceRow {
    pub name: String,
    pub address: Ipv4Net,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Net>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_local: Option<Ipv6Addr>,
    /// What the interface's router advertisements offer, if it sends them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ra: Option<String>,
    pub mac: Option<Mac>,
    pub mtu: u16,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteRow {
    pub dest: IpNet,
    pub via: Option<IpAddr>,
    pub iface: String,
    pub kind: RouteKind,
}

impl Router {
    pub fn new(name: &str) -> Router {
        Router::with_limits(name, RouterLimits::default())
    }

    pub fn with_limits(name: &str, limits: RouterLimits) -> Router {
        let rate = limits.icmp_errors_per_sec.max(1);
        Router {
            limits,
            name: name.to_owned(),
            ifaces: Vec::new(),
            routes: RouteTable::default(),
            neigh: Neighbours::new(limits.neighbours),
            icmp_limit: ErrorLimits::new(rate, (rate / 10).max(1)),
            counters: Counters::default(),
            ident: 1,
            nat: None,
            firewall: None,
            nat64: None,
            decisions: None,
        }
    }

    /// Starts (or stops) recording [`Decision`]s about the frames it is
    /// given; [`Router::take_decisions`] collects them.
    pub fn set_tracing(&mut self, on: bool) {
        self.decisions = on.then(Vec::new);
    }

    /// The decisions recorded since the last call.
    pub fn take_decisions(&mut self) -> Vec<Decision> {
        self.decisions
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Records a decision, built only while a trace is on.
    fn note(&mut self, decision: impl FnOnce(&Router) -> Decision) {
        if self.decisions.is_some() {
            let d = decision(self);
            if let Some(all) = &mut self.decisions {
                all.push(d);
            }
        }
    }

    /// Masquerades what leaves by `outside` (see the `nat` module).
    pub fn set_nat(&mut self, outside: IfaceId, config: NatConfig) {
        self.nat = Some((outside, Nat::new(config)));
    }

    /// Translates IPv6 to `config.prefix` into IPv4 from the pool address
    /// and back (see the `nat64` module).
    pub fn set_nat64(&mut self, config: Nat64Config) {
        self.nat64 = Some(nat64::Nat64::new(config));
    }

    /// Lets IPv6 in by `outside` only as answers to the inside, or
    /// through pinholes (see the `firewall` module).
    pub fn set_firewall(&mut self, outside: IfaceId, config: FirewallConfig) {
        self.firewall = Some((outside, firewall::Firewall::new(config)));
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds an interface and its connected routes.
    pub fn add_iface(&mut self, config: IfaceConfig) -> IfaceId {
        let id = IfaceId(self.ifaces.len() as u32);
        self.routes.add(Route {
            dest: IpNet::V4(config.addr.trunc()),
            via: None,
            iface: id,
            kind: RouteKind::Connected,
        });
        if let Some(a6) = config.addr6 {
            self.routes.add(Route {
                dest: IpNet::V6(a6.trunc()),
                via: None,
                iface: id,
                kind: RouteKind::Connected,
            });
        }
        let link_local = match (config.addr6, config.link) {
            (Some(_), Link::Ethernet { mac }) => Some(nd::link_local(mac)),
            _ => None,
        };
        let dhcp = config.dhcp.clone().map(|d| DhcpServer::new(d, config.addr));
        let dhcp6 = match (config.dhcp6.clone(), config.link, config.addr6) {
            (Some(d), Link::Ethernet { mac }, Some(prefix)) => {
                Some(dhcp6::Dhcp6Server::new(d, mac, prefix))
            }
            _ => None,
        };
        let next_ra = config.ra.as_ref().map(|_| Instant::ZERO);
        self.ifaces.push(Iface {
            config,
            dhcp,
            dhcp6,
            link_local,
            next_ra,
            last_ra: None,
        });
        id
    }

    /// Adds a static route through a next hop on a connected subnet (of
    /// the destination's family; an IPv6 next hop may be link-local only
    /// on a point-to-point link, so it must be on a connected prefix).
    pub fn add_route(&mut self, dest: IpNet, via: IpAddr) -> Result<(), UnreachableNextHop> {
        let iface = self
            .routes
            .routes()
            .find(|r| r.kind == RouteKind::Connected && r.dest.contains(&via))
            .map(|r| r.iface)
            .filter(|_| {
                matches!(
                    (dest, via),
                    (IpNet::V4(_), IpAddr::V4(_)) | (IpNet::V6(_), IpAddr::V6(_))
                )
            })
            .ok_or(UnreachableNextHop(via))?;
        self.routes.add(Route {
            dest: dest.trunc(),
            via: Some(via),
            iface,
            kind: RouteKind::Static,
        });
        Ok(())
    }

    pub fn iface_name(&self, iface: IfaceId) -> Option<&str> {
        self.ifaces
            .get(iface.0 as usize)
            .map(|i| i.config.name.as_str())
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    pub fn iface_mac(&self, iface: IfaceId) -> Option<Mac> {
        match self.ifaces.get(iface.0 as usize)?.config.link {
            Link::Ethernet { mac } => Some(mac),
            Link::PointToPoint => None,
        }
    }

    fn iface(&self, iface: IfaceId) -> &Iface {
        &self.ifaces[iface.0 as usize]
    }

    /// The interface's address of `family` that errors and replies come
    /// from: for IPv6 the global one, else the link-local one.
    fn addr_of(&self, iface: IfaceId, family: Family) -> Option<IpAddr> {
        let i = self.iface(iface);
        match family {
            Family::V4 => Some(IpAddr::V4(i.config.addr.addr())),
            Family::V6 => i
                .config
                .addr6
                .map(|n| n.addr())
                .or(i.link_local)
                .map(IpAddr::V6),
        }
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    fn discard(&mut self, io: &mut Io, frame: Frame, reason: Drop) {
        self.counters.drop(reason);
        self.note(|_| Decision::Drop {
            reason: reason.as_str(),
        });
        io.pool.put(frame);
    }

    /// Handles one frame that arrived on `iface`.
    pub fn receive(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mut frame: Frame,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        let io = &mut Io { now, pool, out };
        self.counters.received += 1;
        let Some(ifc) = self.ifaces.get(iface.0 as usize) else {
            io.pool.put(frame);
            return;
        };
        let eth = match EthernetHeader::parse(frame.data()) {
            Ok(e) if e.tag.is_none() => e,
            _ => return self.discard(io, frame, Drop::Malformed),
        };
        let l2_multicast = eth.dst.is_multicast();
        if let Link::Ethernet { mac } = ifc.config.link {
            if !l2_multicast && eth.dst != mac {
                return self.discard(io, frame, Drop::NotForUs);
            }
        }
        let family = match eth.ethertype {
            ETHERTYPE_ARP => return self.arp_input(io, iface, frame),
            ETHERTYPE_IPV4 => Family::V4,
            ETHERTYPE_IPV6 if ifc.config.addr6.is_some() => Family::V6,
            _ => return self.discard(io, frame, Drop::UnsupportedProtocol),
        };
        let view = match IpView::parse(frame.data(), HEADER_LEN) {
            Ok(v) if v.family == family => v,
            Ok(_) => return self.discard(io, frame, Drop::Malformed),
            Err(e) => return self.discard(io, frame, Drop::from(e)),
        };
        frame.truncate(view.end); // Ethernet padding
        match family {
            Family::V4 => self.ip4_input(io, iface, frame, view, l2_multicast),
            Family::V6 => self.ip6_input(io, iface, frame, view, l2_multicast),
        }
    }

    /// Sends an ICMP or ICMPv6 error from `src` about the packet `about`
    /// in `frame`, if the RFCs allow one and the rate limit has room.
    fn icmp_error(
        &mut self,
        io: &mut Io,
        err: IcmpError,
        src: IpAddr,
        frame: &Frame,
        about: &IpView,
    ) {
        let l2_multicast = Mac::from_slice(frame.data()).is_some_and(|m| m.is_multicast());
        if !icmp::error_allowed(about, l2_multicast) {
            return;
        }
        let to = about.src;
        let sent = self.icmp_limit.allow(io.now, err);
        self.note(|_| Decision::IcmpError {
            error: err.name(),
            to,
            sent,
        });
        if !sent {
            self.counters.icmp_errors_rate_limited += 1;
            return;
        }
        let ident = self.next_ident();
        if let Some(reply) = icmp::build_error(io.pool, err, src, ident, frame.data(), about) {
            self.counters.icmp_errors_sent += 1;
            self.send_local(io, reply, to);
        }
    }

    /// Routes a packet the router itself originates. One to an IPv6
    /// link-local address leaves by the interface its source belongs to.
    fn send_local(&mut self, io: &mut Io, frame: Frame, dst: IpAddr) {
        let on_link = match dst {
            IpAddr::V6(d) if d.is_unicast_link_local() => frame
                .data()
                .get(HEADER_LEN + 8..HEADER_LEN + 24)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .and_then(|src| {
                    let src = IpAddr::V6(Ipv6Addr::from(src));
                    self.ifaces.iter().position(|i| i.owns(src))
                })
                .map(|n| (IfaceId(n as u32), dst)),
            _ => None,
        };
        match on_link.or_else(|| {
            self.routes
                .lookup(dst)
                .map(|r| (r.iface, r.via.unwrap_or(dst)))
        }) {
            Some((oif, nh)) => self.output(io, oif, nh, frame),
            None => self.discard(io, frame, Drop::NoRoute),
        }
    }

    /// The size of each packet a frame becomes on the wire: the super-frame's
    /// segments, or the packet itself.
    fn wire_size(frame: &Frame, view: &IpView) -> usize {
        let hdr = frame.hdr;
        let total = view.len();
        let l4 = usize::from(hdr.csum_start).saturating_sub(HEADER_LEN);
        match hdr.gso_type() {
            GsoType::TcpV4 | GsoType::TcpV6 => {
                let doff = frame
                    .data()
                    .get(usize::from(hdr.csum_start) + 12)
                    .map_or(20, |b| usize::from(b >> 4) * 4);
                (l4 + doff + usize::from(hdr.gso_size)).min(total)
            }
            GsoType::UdpL4 => (l4 + 8 + usize::from(hdr.gso_size)).min(total),
            _ => total,
        }
    }

    /// The first steps of forwarding, the same in both families: the hop
    /// limit checked (Time Exceeded from `in_addr`), the route looked up
    /// (Net Unreachable), the decision noted. The frame back with its way
    /// out (interface, next hop, that interface's MTU), or `None` when the
    /// packet ended here.
    fn route_forward(
        &mut self,
        io: &mut Io,
        frame: Frame,
        view: &IpView,
        in_addr: IpAddr,
    ) -> Option<(Frame, IfaceId, IpAddr, usize)> {
        if view.hop_limit <= 1 {
            self.icmp_error(io, IcmpError::TtlExceeded, in_addr, &frame, view);
            self.discard(io, frame, Drop::TtlExpired);
            return None;
        }
        let Some((oif, nh, dest, via)) = self
            .routes
            .lookup(view.dst)
            .map(|r| (r.iface, r.via.unwrap_or(view.dst), r.dest, r.via))
        else {
            self.icmp_error(io, IcmpError::NetUnreachable, in_addr, &frame, view);
            self.discard(io, frame, Drop::NoRoute);
            return None;
        };
        let ttl = view.hop_limit - 1;
        self.note(|r| Decision::Route {
            dest,
            via,
            iface: r.iface_name(oif).unwrap_or("?").to_owned(),
            ttl,
        });
        let mtu = usize::from(self.iface(oif).config.mtu);
        Some((frame, oif, nh, mtu))
    }

    /// The last step of forwarding in both families: the hop limit taken
    /// down one, the packet counted.
    fn pass_on(&mut self, frame: &mut Frame, view: &mut IpView) {
        view.decrement_hop_limit(frame.data_mut());
        self.counters.forwarded += 1;
        if frame.hdr.is_gso() {
            self.counters.forwarded_gso += 1;
        }
        if view.extended {
            self.counters.forwarded_with_options += 1;
        }
    }

    /// Sends a packet to a next hop on `oif`, resolving its link-layer
    /// address (ARP or neighbour discovery).
    fn output(&mut self, io: &mut Io, oif: IfaceId, nh: IpAddr, mut frame: Frame) {
        let Link::Ethernet { mac } = self.iface(oif).config.link else {
            io.out.push((oif, frame));
            return;
        };
        let ethertype = match nh {
            IpAddr::V4(_) => ETHERTYPE_IPV4,
            IpAddr::V6(_) => ETHERTYPE_IPV6,
        };
        match self.neigh.lookup(io.now, oif, nh) {
            Lookup::Found(to) => {
                set_ethernet(&mut frame, to, mac, ethertype);
                io.out.push((oif, frame));
            }
            Lookup::FoundRefresh(to) => {
                set_ethernet(&mut frame, to, mac, ethertype);
                io.out.push((oif, frame));
                self.solicit(io, oif, nh, Some(to));
            }
            Lookup::Missing => {
                self.note(|r| Decision::ArpWait {
                    next_hop: nh,
                    iface: r.iface_name(oif).unwrap_or("?").to_owned(),
                });
                let waiting = frame.compact();
                io.pool.put(frame);
                match self.neigh.enqueue(io.now, oif, nh, waiting) {
                    Queued::Yes { first, pushed_out } => {
                        if let Some(old) = pushed_out {
                            self.counters.drop(Drop::ArpQueueFull);
                            drop(old);
                        }
                        if first {
                            self.solicit(io, oif, nh, None);
                        }
                    }
                    Queued::OverBudget => self.counters.drop(Drop::ArpQueueFull),
                }
            }
        }
    }

    /// Asks for `target`'s link-layer address: by broadcast (or its
    /// solicited-node group), or unicast to `known` to confirm it.
    fn solicit(&mut self, io: &mut Io, iface: IfaceId, target: IpAddr, known: Option<Mac>) {
        match target {
            IpAddr::V4(t) => self.send_arp_request(io, iface, t, known.unwrap_or(Mac::BROADCAST)),
            IpAddr::V6(t) => self.send_solicitation(io, iface, t, known),
        }
    }

    /// Confirms a neighbour and sends the packets that waited for it.
    fn neighbour_confirmed(&mut self, io: &mut Io, iface: IfaceId, ip: IpAddr, at: Mac) {
        let Link::Ethernet { mac } = self.iface(iface).config.link else {
            return;
        };
        let ethertype = match ip {
            IpAddr::V4(_) => ETHERTYPE_IPV4,
            IpAddr::V6(_) => ETHERTYPE_IPV6,
        };
        for mut waiting in self.neigh.confirm(io.now, iface, ip, at) {
            set_ethernet(&mut waiting, at, mac, ethertype);
            io.out.push((iface, waiting));
        }
    }

    /// When [`Router::on_timer`] is next due.
    pub fn poll_at(&self) -> Option<Instant> {
        let nat = self.nat.as_ref().and_then(|(_, n)| n.poll_at());
        let fw = self.firewall.as_ref().and_then(|(_, f)| f.poll_at());
        let nat64 = self.nat64.as_ref().and_then(|n| n.poll_at());
        let ra = self.ifaces.iter().filter_map(|i| i.next_ra).min();
        [self.neigh.poll_at(), nat, fw, nat64, ra]
            .into_iter()
            .flatten()
            .min()
    }

    /// Retries ARP and ND, gives up on silent next hops, sends router
    /// advertisements, ages leases and NAT sessions.
    pub fn on_timer(&mut self, now: Instant, pool: &mut FramePool, out: &mut Outbox) {
        let io = &mut Io { now, pool, out };
        let mut retry = Vec::new();
        let mut expired = Vec::new();
        self.neigh.on_timer(now, &mut retry, &mut expired);
        for (iface, ip) in retry {
            self.solicit(io, iface, ip, None);
        }
        for (_, _, frame) in expired {
            // The error goes back out of the interface towards the sender,
            // from that interface's address.
            if let Ok(about) = IpView::parse(frame.data(), HEADER_LEN) {
                let src = self
                    .routes
                    .lookup(about.src)
                    .and_then(|r| self.addr_of(r.iface, about.family));
                if let Some(src) = src {
                    self.icmp_error(io, IcmpError::HostUnreachable, src, &frame, &about);
                }
            }
            self.discard(io, frame, Drop::HostUnreachable);
        }
        for n in 0..self.ifaces.len() {
            if self.ifaces[n].next_ra.is_some_and(|t| t <= now) {
                self.send_router_advertisement(io, IfaceId(n as u32));
            }
        }
        for i in &mut self.ifaces {
            if let Some(d) = &mut i.dhcp {
                d.on_timer(now);
            }
            if let Some(d) = &mut i.dhcp6 {
                d.on_timer(now);
            }
        }
        if let Some((_, nat)) = &mut self.nat {
            if nat.poll_at().is_some_and(|t| t <= now) {
                nat.on_timer(now);
            }
        }
        if let Some((_, fw)) = &mut self.firewall {
            if fw.poll_at().is_some_and(|t| t <= now) {
                fw.on_timer(now);
            }
        }
        if let Some(n) = &mut self.nat64 {
            if n.poll_at().is_some_and(|t| t <= now) {
                n.on_timer(now);
            }
        }
    }

    /// Routes a packet NAT64 made (an IP packet of the other family) as a
    /// forwarded one: a frame around it, out by the route to `dst`. Too
    /// big for the next hop: the error goes to the sender of `about`.
    fn send_translated(
        &mut self,
        io: &mut Io,
        packet: Vec<u8>,
        dst: IpAddr,
        in_addr: IpAddr,
        frame: Frame,
        about: &IpView,
    ) {
        let Some((oif, nh)) = self
            .routes
            .lookup(dst)
            .map(|r| (r.iface, r.via.unwrap_or(dst)))
        else {
            self.icmp_error(io, IcmpError::NetUnreachable, in_addr, &frame, about);
            return self.discard(io, frame, Drop::NoRoute);
        };
        let mtu = usize::from(self.iface(oif).config.mtu);
        if packet.len() > mtu {
            // The sender's family's header is 20 bytes longer (IPv6) or
            // shorter (IPv4) than the next hop's (RFC 7915 4.2, 5.2).
            let theirs = if dst.is_ipv4() {
                mtu + 20
            } else {
                mtu.saturating_sub(20)
            };
            let err = IcmpError::FragmentationNeeded {
                mtu: theirs.min(usize::from(u16::MAX)) as u16,
            };
            self.icmp_error(io, err, in_addr, &frame, about);
            return self.discard(io, frame, Drop::FragmentationNeeded);
        }
        let mut out = io.pool.get();
        out.extend_from_slice(&[0u8; HEADER_LEN]);
        out.extend_from_slice(&packet);
        out.trace = frame.trace;
        io.pool.put(frame);
        self.counters.forwarded += 1;
        self.output(io, oif, nh, out);
    }

    /// The NAT's table and counters, if the router has a NAT.
    pub fn nat_status(&self, now: Instant) -> Option<(Vec<NatRow>, NatCounters)> {
        self.nat
            .as_ref()
            .map(|(_, n)| (n.rows(now), n.counters().clone()))
    }

    pub fn status(&self, now: Instant) -> RouterStatus {
        let name = |i: IfaceId| {
            self.ifaces
                .get(i.0 as usize)
                .map_or("?".to_owned(), |f| f.config.name.clone())
        };
        RouterStatus {
            name: self.name.clone(),
            interfaces: self
                .ifaces
                .iter()
                .map(|i| IfaceRow {
                    name: i.config.name.clone(),
                    address: i.config.addr,
                    address6: i.config.addr6,
                    link_local: i.link_local,
                    ra: i.config.ra.as_ref().map(v6::describe_ra),
                    mac: match i.config.link {
                        Link::Ethernet { mac } => Some(mac),
                        Link::PointToPoint => None,
                    },
                    mtu: i.config.mtu,
                })
                .collect(),
            routes: self
                .routes
                .routes()
                .map(|r| RouteRow {
                    dest: r.dest,
                    via: r.via,
                    iface: name(r.iface),
                    kind: r.kind,
                })
                .collect(),
            arp: self.neigh.rows(now),
            arp_table: TableUse {
                entries: self.neigh.len(),
                max_entries: self.limits.neighbours.max_entries,
                evicted: self.neigh.evicted,
                queued_bytes: self.neigh.queued_bytes(),
                max_queued_bytes: self.limits.neighbours.queue_bytes,
            },
            leases: self
                .ifaces
                .iter()
                .filter_map(|i| i.dhcp.as_ref())
                .flat_map(|d| d.leases(now))
                .collect(),
            dhcp: self
                .ifaces
                .iter()
                .filter_map(|i| i.dhcp.as_ref())
                .map(|d| d.status(now))
                .collect(),
            leases6: self
                .ifaces
                .iter()
                .filter_map(|i| i.dhcp6.as_ref())
                .flat_map(|d| d.leases(now))
                .collect(),
            dhcp6: self
                .ifaces
                .iter()
                .filter_map(|i| i.dhcp6.as_ref())
                .map(|d| d.status(now))
                .collect(),
            counters: self.counters.clone(),
            nat: self
                .nat_status(now)
                .map(|(table, counters)| NatStatus { table, counters }),
            firewall: self.firewall.as_ref().map(|(_, f)| FirewallStatus {
                table: f.rows(now),
                counters: f.counters().clone(),
            }),
            nat64: self.nat64.as_ref().map(|n| Nat64Status {
                table: n.rows(now),
                counters: n.counters().clone(),
            }),
        }
    }
}

impl From<IpError> for Drop {
    fn from(e: IpError) -> Drop {
        match e {
            IpError::BadChecksum => Drop::BadChecksum,
            IpError::ExtensionChain | IpError::IncompleteChain => Drop::ExtensionHeaders,
            IpError::Truncated | IpError::Malformed => Drop::Malformed,
        }
    }
}

/// Writes the Ethernet header of a frame.
fn set_ethernet(frame: &mut Frame, dst: Mac, src: Mac, ethertype: u16) {
    let d = frame.data_mut();
    if d.len() >= HEADER_LEN {
        d[0..6].copy_from_slice(&dst.0);
        d[6..12].copy_from_slice(&src.0);
        d[12..14].copy_from_slice(&ethertype.to_be_bytes());
    }
}
