//! An IPv4 router as a sans-IO state machine (RFC 1812).
//!
//! [`Router::receive`] takes the time, the interface and an owned Ethernet
//! [`Frame`], and hands frames to send, by interface, to the caller's
//! outbox. It never reads a clock or touches a socket; [`Router::poll_at`]
//! says when [`Router::on_timer`] is next due (ARP retries, lease expiry).
//!
//! Point-to-point interfaces (a TUN link) carry frames with a placeholder
//! Ethernet header that the fabric adds and removes, so that every
//! interface speaks one framing.
//!
//! What it does, as a network engineer expects of a router:
//! * answers ARP for the address of the interface asked on, resolves next
//!   hops with a bounded queue per next hop, and gives up after three
//!   unanswered requests with ICMP Host Unreachable;
//! * forwards by longest prefix, validating the header and decrementing
//!   TTL with an incremental checksum update (RFC 1624);
//! * sends ICMP Time Exceeded, Destination Unreachable (net, host,
//!   protocol, port) and Fragmentation Needed, rate-limited, never about
//!   an ICMP error, a broadcast or multicast, or a non-first fragment;
//! * fragments when DF is clear, answers echo requests to its addresses;
//! * drops and counts martians;
//! * forwards GSO super-frames whole, offload metadata kept;
//! * serves DHCP on interfaces configured for it.

mod counters;
mod decision;
mod dhcp;
mod icmp;
mod nat;
mod neigh;
mod routes;
#[cfg(test)]
mod tests;

pub use counters::{Counters, Drop};
pub use decision::Decision;
pub use dhcp::{DhcpConfig, DhcpCounters, DhcpStatus, LeaseRow};
pub use icmp::IcmpError;
pub use nat::{Filtering, NatConfig, NatCounters, NatRow, PortForward, Proto, Timeouts};
pub use neigh::{NeighbourLimits, NeighbourRow};
pub use routes::{Route, RouteKind, RouteTable};

use dhcp::DhcpServer;
use dhcproto::Encodable;
use icmp::ErrorLimits;
use ipnet::Ipv4Net;
use nat::{Nat, Verdict};
use neigh::{Lookup, Neighbours, Queued};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket,
};
use std::net::{Ipv4Addr, SocketAddrV4};
use wire::ether::{EthernetHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4, HEADER_LEN};
use wire::{checksum, Frame, FramePool, GsoType, Instant, Mac};

/// An interface of one router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct IfaceId(pub u32);

/// What an interface is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A switch port: ARP, MAC addresses.
    Ethernet { mac: Mac },
    /// A TUN link: no link-layer addresses.
    PointToPoint,
}

#[derive(Debug, Clone)]
pub struct IfaceConfig {
    pub name: String,
    pub link: Link,
    pub addr: Ipv4Net,
    pub mtu: u16,
    pub dhcp: Option<DhcpConfig>,
}

/// Why a route cannot be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreachableNextHop(pub Ipv4Addr);

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
}

/// Frames to send, by interface.
pub type Outbox = Vec<(IfaceId, Frame)>;

/// The bounds of a router's tables and rates (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterLimits {
    pub neighbours: NeighbourLimits,
    /// ICMP errors of each kind per second (Fragmentation Needed is not
    /// limited), in bursts of a tenth of that.
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
    /// The NAT on the outside interface, if any.
    nat: Option<(IfaceId, Nat)>,
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
    pub arp: Vec<NeighbourRow>,
    pub arp_table: TableUse,
    pub leases: Vec<LeaseRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dhcp: Vec<DhcpStatus>,
    pub counters: Counters,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat: Option<NatStatus>,
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
    pub mac: Option<Mac>,
    pub mtu: u16,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteRow {
    pub dest: Ipv4Net,
    pub via: Option<Ipv4Addr>,
    pub iface: String,
    pub kind: RouteKind,
}

fn martian_source(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 0 || o[0] == 127 || (o[0] == 169 && o[1] == 254) || a.is_multicast() || o[0] >= 240
}

fn martian_destination(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 0 || o[0] == 127 || (o[0] >= 240 && !a.is_broadcast())
}

/// The IPv4 packet in a frame, with its lengths checked: version 4, a
/// header of at least 20 bytes (smoltcp's check does not insist on that),
/// total length within the frame.
fn ipv4_of(frame: &Frame) -> Option<Ipv4Packet<&[u8]>> {
    Ipv4Packet::new_checked(frame.data().get(HEADER_LEN..)?)
        .ok()
        .filter(|p| p.version() == 4 && p.header_len() >= 20)
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

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds an interface and its connected route.
    pub fn add_iface(&mut self, config: IfaceConfig) -> IfaceId {
        let id = IfaceId(self.ifaces.len() as u32);
        self.routes.add(Route {
            dest: config.addr.trunc(),
            via: None,
            iface: id,
            kind: RouteKind::Connected,
        });
        let dhcp = config.dhcp.clone().map(|d| DhcpServer::new(d, config.addr));
        self.ifaces.push(Iface { config, dhcp });
        id
    }

    /// Adds a static route through a next hop on a connected subnet.
    pub fn add_route(&mut self, dest: Ipv4Net, via: Ipv4Addr) -> Result<(), UnreachableNextHop> {
        let iface = self
            .routes
            .routes()
            .iter()
            .find(|r| r.kind == RouteKind::Connected && r.dest.contains(&via))
            .map(|r| r.iface)
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

    fn addr(&self, iface: IfaceId) -> Ipv4Addr {
        self.ifaces[iface.0 as usize].config.addr.addr()
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    fn discard(&mut self, pool: &mut FramePool, frame: Frame, reason: Drop) {
        self.counters.drop(reason);
        self.note(|_| Decision::Drop {
            reason: reason.as_str(),
        });
        pool.put(frame);
    }

    /// Handles one frame that arrived on `iface`.
    pub fn receive(
        &mut self,
        now: Instant,
        iface: IfaceId,
        frame: Frame,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        self.counters.received += 1;
        let Some(ifc) = self.ifaces.get(iface.0 as usize) else {
            pool.put(frame);
            return;
        };
        let eth = match EthernetHeader::parse(frame.data()) {
            Ok(e) if e.tag.is_none() => e,
            _ => return self.discard(pool, frame, Drop::Malformed),
        };
        let l2_multicast = eth.dst.is_multicast();
        if let Link::Ethernet { mac } = ifc.config.link {
            if !l2_multicast && eth.dst != mac {
                return self.discard(pool, frame, Drop::NotForUs);
            }
        }
        match eth.ethertype {
            ETHERTYPE_ARP => self.arp_input(now, iface, frame, pool, out),
            ETHERTYPE_IPV4 => self.ip_input(now, iface, frame, l2_multicast, pool, out),
            _ => self.discard(pool, frame, Drop::UnsupportedProtocol),
        }
    }

    fn arp_input(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mut frame: Frame,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        let Link::Ethernet { mac } = self.ifaces[iface.0 as usize].config.link else {
            return self.discard(pool, frame, Drop::UnsupportedProtocol);
        };
        let repr =
            ArpPacket::new_checked(&frame.data()[HEADER_LEN..]).and_then(|p| ArpRepr::parse(&p));
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr: spa,
            target_protocol_addr: tpa,
            ..
        }) = repr
        else {
            return self.discard(pool, frame, Drop::Malformed);
        };
        let sha = Mac(source_hardware_addr.0);
        let subnet = self.ifaces[iface.0 as usize].config.addr;
        if !spa.is_unspecified() && !subnet.contains(&spa) {
            return self.discard(pool, frame, Drop::ArpOffSubnet);
        }
        let me = self.addr(iface);
        let for_me = tpa == me;
        // RFC 826: update a known sender (gratuitous ARP included); learn a
        // new one only when it is talking to us. Probes (sender 0.0.0.0)
        // teach nothing.
        if !spa.is_unspecified() && sha.is_unicast() && (for_me || self.neigh.knows(iface, spa)) {
            for mut waiting in self.neigh.confirm(now, iface, spa, sha) {
                set_ethernet(&mut waiting, sha, mac, ETHERTYPE_IPV4);
                out.push((iface, waiting));
            }
        }
        if operation == ArpOperation::Request && for_me {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: EthernetAddress(mac.0),
                source_protocol_addr: me,
                target_hardware_addr: source_hardware_addr,
                target_protocol_addr: spa,
            };
            frame.truncate(HEADER_LEN + reply.buffer_len());
            reply.emit(&mut ArpPacket::new_unchecked(
                &mut frame.data_mut()[HEADER_LEN..],
            ));
            set_ethernet(&mut frame, sha, mac, ETHERTYPE_ARP);
            self.counters.arp_replies_sent += 1;
            self.note(|_| Decision::ArpReply { to: spa });
            out.push((iface, frame));
        } else {
            pool.put(frame);
        }
    }

    fn send_arp_request(
        &mut self,
        iface: IfaceId,
        target: Ipv4Addr,
        to: Mac,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        let Link::Ethernet { mac } = self.ifaces[iface.0 as usize].config.link else {
            return;
        };
        let req = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress(mac.0),
            source_protocol_addr: self.addr(iface),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target,
        };
        let mut frame = pool.get();
        frame.extend_from_slice(&[0u8; HEADER_LEN + 28]);
        req.emit(&mut ArpPacket::new_unchecked(
            &mut frame.data_mut()[HEADER_LEN..],
        ));
        set_ethernet(&mut frame, to, mac, ETHERTYPE_ARP);
        self.counters.arp_requests_sent += 1;
        out.push((iface, frame));
    }

    fn is_local(&self, dst: Ipv4Addr) -> bool {
        self.ifaces.iter().any(|i| i.config.addr.addr() == dst)
    }

    fn ip_input(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mut frame: Frame,
        l2_multicast: bool,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        let Some(ip) = ipv4_of(&frame) else {
            return self.discard(pool, frame, Drop::Malformed);
        };
        if !ip.verify_checksum() {
            return self.discard(pool, frame, Drop::BadChecksum);
        }
        let (src, dst, total) = (ip.src_addr(), ip.dst_addr(), usize::from(ip.total_len()));
        let udp_to_67 = ip.next_header() == IpProtocol::Udp
            && UdpPacket::new_checked(ip.payload()).is_ok_and(|u| u.dst_port() == 67);
        frame.truncate(HEADER_LEN + total); // Ethernet padding
        let subnet = self.ifaces[iface.0 as usize].config.addr;
        let broadcast =
            dst.is_broadcast() || (subnet.prefix_len() < 31 && dst == subnet.broadcast());
        if broadcast || dst.is_multicast() || l2_multicast {
            if broadcast && udp_to_67 && self.ifaces[iface.0 as usize].dhcp.is_some() {
                return self.dhcp_input(now, iface, frame, pool, out);
            }
            // Routers forward neither broadcasts nor multicast, nor unicast
            // packets that came as link-layer broadcast (RFC 1812 5.3.4).
            return self.discard(pool, frame, Drop::Broadcast);
        }
        if martian_source(src) || martian_destination(dst) {
            return self.discard(pool, frame, Drop::Martian);
        }
        if let Some((outside, nat)) = self.nat.as_mut().filter(|(_, n)| n.external() == dst) {
            let before = self
                .decisions
                .is_some()
                .then(|| (endpoints(&frame), nat.counters().sessions_created));
            let verdict = if iface == *outside {
                nat.inbound(now, &mut frame)
            } else {
                nat.hairpin(now, &mut frame)
            };
            match verdict {
                Verdict::Translated => {
                    self.note_nat(before, &frame, false);
                    return self.forward(now, iface, frame, true, pool, out);
                }
                Verdict::Untouched => {}
                Verdict::Refused => {
                    self.icmp_error(
                        now,
                        IcmpError::AdminProhibited,
                        self.addr(iface),
                        &frame,
                        pool,
                        out,
                    );
                    return self.discard(pool, frame, Drop::Nat);
                }
                Verdict::Dropped => return self.discard(pool, frame, Drop::Nat),
            }
        }
        if self.is_local(dst) {
            self.local_input(now, iface, frame, udp_to_67, pool, out);
        } else {
            self.forward(now, iface, frame, false, pool, out);
        }
    }

    /// Errors about a packet for the router itself come from the address
    /// it was sent to, as Linux does, so that traceroute's last hop names
    /// the destination.
    fn local_input(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mut frame: Frame,
        udp_to_67: bool,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        let Some(ip) = ipv4_of(&frame) else {
            return pool.put(frame);
        };
        if ip.more_frags() || ip.frag_offset() != 0 {
            return self.discard(pool, frame, Drop::FragmentToSelf);
        }
        let dst = ip.dst_addr();
        let proto = ip.next_header();
        let is_echo =
            proto == IpProtocol::Icmp && ip.payload().first() == Some(&icmp::ECHO_REQUEST);
        match proto {
            IpProtocol::Icmp => {
                self.counters.delivered += 1;
                if !is_echo {
                    return pool.put(frame);
                }
                if frame.hdr.needs_csum() {
                    let hdr = frame.hdr;
                    if wire::offload::complete_checksum(frame.data_mut(), &hdr).is_err() {
                        return self.discard(pool, frame, Drop::BadOffload);
                    }
                    frame.hdr = wire::VnetHdr::PLAIN;
                }
                match icmp::echo_reply_in_place(&mut frame, dst) {
                    Some(peer) => {
                        self.counters.echo_replies_sent += 1;
                        self.note(|_| Decision::EchoReply { to: peer });
                        self.send_local(now, frame, peer, pool, out);
                    }
                    None => self.discard(pool, frame, Drop::Malformed),
                }
            }
            IpProtocol::Udp if udp_to_67 && self.ifaces[iface.0 as usize].dhcp.is_some() => {
                self.dhcp_input(now, iface, frame, pool, out)
            }
            IpProtocol::Udp | IpProtocol::Tcp => {
                self.icmp_error(now, IcmpError::PortUnreachable, dst, &frame, pool, out);
                self.discard(pool, frame, Drop::Unreachable);
            }
            _ => {
                self.icmp_error(now, IcmpError::ProtocolUnreachable, dst, &frame, pool, out);
                self.discard(pool, frame, Drop::Unreachable);
            }
        }
    }

    /// Sends an ICMP error from `src` about the packet in `about`, if RFC
    /// 1812 allows one and the rate limit has room.
    fn icmp_error(
        &mut self,
        now: Instant,
        err: IcmpError,
        src: Ipv4Addr,
        about: &Frame,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        let Some(ip) = ipv4_of(about) else { return };
        let l2_multicast = Mac::from_slice(about.data()).is_some_and(|m| m.is_multicast());
        if !icmp::error_allowed(&ip, l2_multicast) {
            return;
        }
        let to = ip.src_addr();
        let sent = self.icmp_limit.allow(now, err);
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
        if let Some(frame) = icmp::build_error(pool, err, src, ident, &about.data()[HEADER_LEN..]) {
            self.counters.icmp_errors_sent += 1;
            self.send_local(now, frame, to, pool, out);
        }
    }

    /// Routes a packet the router itself originates.
    fn send_local(
        &mut self,
        now: Instant,
        frame: Frame,
        dst: Ipv4Addr,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        match self
            .routes
            .lookup(dst)
            .map(|r| (r.iface, r.via.unwrap_or(dst)))
        {
            Some((oif, nh)) => self.output(now, oif, nh, frame, pool, out),
            None => self.discard(pool, frame, Drop::NoRoute),
        }
    }

    /// The size of each packet a frame becomes on the wire: the super-frame's
    /// segments, or the packet itself.
    fn wire_size(frame: &Frame, total: usize) -> usize {
        let hdr = frame.hdr;
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

    /// Forwards a packet that came in on `iface`; `translated`: the NAT
    /// has just let it in.
    fn forward(
        &mut self,
        now: Instant,
        iface: IfaceId,
        mut frame: Frame,
        translated: bool,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        let Some(ip) = ipv4_of(&frame) else {
            return pool.put(frame);
        };
        let (src, dst, ttl, df, total, ihl) = (
            ip.src_addr(),
            ip.dst_addr(),
            ip.hop_limit(),
            ip.dont_frag(),
            usize::from(ip.total_len()),
            usize::from(ip.header_len()),
        );
        let in_addr = self.addr(iface);
        if ttl <= 1 {
            self.icmp_error(now, IcmpError::TtlExceeded, in_addr, &frame, pool, out);
            return self.discard(pool, frame, Drop::TtlExpired);
        }
        let Some((oif, nh, dest, via)) = self
            .routes
            .lookup(dst)
            .map(|r| (r.iface, r.via.unwrap_or(dst), r.dest, r.via))
        else {
            self.icmp_error(now, IcmpError::NetUnreachable, in_addr, &frame, pool, out);
            return self.discard(pool, frame, Drop::NoRoute);
        };
        self.note(|r| Decision::Route {
            dest,
            via,
            iface: r.iface_name(oif).unwrap_or("?").to_owned(),
            ttl: ttl - 1,
        });
        let mtu = usize::from(self.ifaces[oif.0 as usize].config.mtu);
        let too_big = Self::wire_size(&frame, total) > mtu;
        if too_big && (df || frame.hdr.is_gso()) {
            if df {
                self.icmp_error(
                    now,
                    IcmpError::FragmentationNeeded { mtu: mtu as u16 },
                    in_addr,
                    &frame,
                    pool,
                    out,
                );
                return self.discard(pool, frame, Drop::FragmentationNeeded);
            }
            return self.discard(pool, frame, Drop::BadOffload);
        }
        if let Some(outside) = self.nat.as_ref().map(|(o, _)| *o) {
            if iface == outside && oif != outside && !translated {
                // Only what the NAT lets in reaches the inside.
                return self.discard(pool, frame, Drop::NatInbound);
            }
            if oif == outside && iface != outside {
                // Strict reverse-path check: a source the router would not
                // reach through `iface` is spoofed, and must not leave
                // with a mapping (or its inside address).
                if self.routes.lookup(src).map(|r| r.iface) != Some(iface) {
                    return self.discard(pool, frame, Drop::SpoofedSource);
                }
                let Some((_, nat)) = self.nat.as_mut() else {
                    return pool.put(frame);
                };
                let before = self
                    .decisions
                    .is_some()
                    .then(|| (endpoints(&frame), nat.counters().sessions_created));
                match nat.outbound(now, &mut frame) {
                    Verdict::Translated => self.note_nat(before, &frame, true),
                    Verdict::Untouched => {}
                    Verdict::Refused => {
                        self.icmp_error(
                            now,
                            IcmpError::AdminProhibited,
                            in_addr,
                            &frame,
                            pool,
                            out,
                        );
                        return self.discard(pool, frame, Drop::Nat);
                    }
                    Verdict::Dropped => return self.discard(pool, frame, Drop::Nat),
                }
            }
        }
        decrement_ttl(&mut frame);
        self.counters.forwarded += 1;
        if frame.hdr.is_gso() {
            self.counters.forwarded_gso += 1;
        }
        if ihl > 20 {
            self.counters.forwarded_with_options += 1;
        }
        if too_big {
            if frame.hdr.needs_csum() {
                // Fragments cannot carry a partial checksum: the receiver
                // checks the reassembled packet, so finish it first.
                let hdr = frame.hdr;
                if wire::offload::complete_checksum(frame.data_mut(), &hdr).is_err() {
                    return self.discard(pool, frame, Drop::BadOffload);
                }
                frame.hdr = wire::VnetHdr::PLAIN;
            }
            return self.fragment(now, oif, nh, frame, mtu, pool, out);
        }
        self.output(now, oif, nh, frame, pool, out);
    }

    /// Cuts a packet (DF clear) into fragments that fit `mtu` (RFC 791):
    /// options with the copy flag go into every fragment, the rest only
    /// into the first.
    #[allow(clippy::too_many_arguments)]
    fn fragment(
        &mut self,
        now: Instant,
        oif: IfaceId,
        nh: Ipv4Addr,
        frame: Frame,
        mtu: usize,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        let data = frame.data();
        let Some(ip) = ipv4_of(&frame) else {
            return pool.put(frame);
        };
        let ihl = usize::from(ip.header_len());
        let total = usize::from(ip.total_len());
        let (base_offset, last_has_mf) = (usize::from(ip.frag_offset()), ip.more_frags());
        let (Some(header), Some(payload)) = (
            data.get(HEADER_LEN..HEADER_LEN + ihl),
            data.get(HEADER_LEN + ihl..HEADER_LEN + total),
        ) else {
            return self.discard(pool, frame, Drop::Malformed);
        };
        let later_header = copied_options_header(header);
        if mtu < ihl.max(later_header.len()) + 8 {
            // No room for even 8 bytes of payload (interface MTUs are at
            // least 68, which always has room: RFC 791).
            return self.discard(pool, frame, Drop::FragmentationNeeded);
        }
        let mut offset = 0;
        let mut pieces = Vec::new();
        while offset < payload.len() {
            let h: &[u8] = if offset == 0 { header } else { &later_header };
            let room = (mtu - h.len()) / 8 * 8;
            let len = room.min(payload.len() - offset);
            let last = offset + len == payload.len();
            let mut f = pool.get();
            f.extend_from_slice(&data[..HEADER_LEN]);
            f.extend_from_slice(h);
            f.extend_from_slice(&payload[offset..offset + len]);
            let mut p = Ipv4Packet::new_unchecked(&mut f.data_mut()[HEADER_LEN..]);
            p.set_header_len(h.len() as u8);
            p.set_total_len((h.len() + len) as u16);
            p.set_more_frags(!last || last_has_mf);
            p.set_frag_offset((base_offset + offset) as u16);
            p.fill_checksum();
            f.trace = frame.trace;
            pieces.push(f);
            offset += len;
        }
        self.counters.fragmented += 1;
        self.counters.fragments_sent += pieces.len() as u64;
        let fragments = pieces.len();
        self.note(|_| Decision::Fragmented { fragments, mtu });
        pool.put(frame);
        for f in pieces {
            self.output(now, oif, nh, f, pool, out);
        }
    }

    /// Sends a packet to a next hop on `oif`, resolving its MAC address.
    fn output(
        &mut self,
        now: Instant,
        oif: IfaceId,
        nh: Ipv4Addr,
        mut frame: Frame,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        let Link::Ethernet { mac } = self.ifaces[oif.0 as usize].config.link else {
            out.push((oif, frame));
            return;
        };
        match self.neigh.lookup(now, oif, nh) {
            Lookup::Found(to) => {
                set_ethernet(&mut frame, to, mac, ETHERTYPE_IPV4);
                out.push((oif, frame));
            }
            Lookup::FoundRefresh(to) => {
                set_ethernet(&mut frame, to, mac, ETHERTYPE_IPV4);
                out.push((oif, frame));
                self.send_arp_request(oif, nh, to, pool, out);
            }
            Lookup::Missing => {
                self.note(|r| Decision::ArpWait {
                    next_hop: nh,
                    iface: r.iface_name(oif).unwrap_or("?").to_owned(),
                });
                let waiting = frame.compact();
                pool.put(frame);
                match self.neigh.enqueue(now, oif, nh, waiting) {
                    Queued::Yes { first, pushed_out } => {
                        if let Some(old) = pushed_out {
                            self.counters.drop(Drop::ArpQueueFull);
                            drop(old);
                        }
                        if first {
                            self.send_arp_request(oif, nh, Mac::BROADCAST, pool, out);
                        }
                    }
                    Queued::OverBudget => self.counters.drop(Drop::ArpQueueFull),
                }
            }
        }
    }

    fn dhcp_input(
        &mut self,
        now: Instant,
        iface: IfaceId,
        frame: Frame,
        pool: &mut FramePool,
        out: &mut Outbox,
    ) {
        let src_mac = EthernetHeader::parse(frame.data()).map(|e| e.src).ok();
        let message = ipv4_of(&frame).and_then(|ip| {
            UdpPacket::new_checked(ip.payload())
                .ok()
                .and_then(|u| dhcp::decode(u.payload()))
        });
        pool.put(frame);
        let (Some(message), Some(src_mac)) = (message, src_mac) else {
            self.counters.drop(Drop::Malformed);
            return;
        };
        self.counters.delivered += 1;
        let me = self.addr(iface);
        let ifc = &mut self.ifaces[iface.0 as usize];
        let (Some(server), Link::Ethernet { mac }) = (ifc.dhcp.as_mut(), ifc.config.link) else {
            return;
        };
        let Some(reply) = server.handle(now, src_mac, &message) else {
            return;
        };
        let Ok(payload) = reply.message.to_vec() else {
            return;
        };
        let udp_len = 8 + payload.len();
        let mut udp = [0u8; 8];
        udp[0..2].copy_from_slice(&67u16.to_be_bytes());
        udp[2..4].copy_from_slice(&68u16.to_be_bytes());
        udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        let pseudo =
            checksum::pseudo_header(&me.octets(), &reply.ip_dst.octets(), 17, udp_len as u32);
        let c = checksum::finish(checksum::sum(checksum::sum(pseudo, &udp), &payload));
        udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
        let ident = self.next_ident();
        let mut f = pool.get();
        f.extend_from_slice(&[0u8; HEADER_LEN]);
        f.extend_from_slice(&icmp::ipv4_header(
            me,
            reply.ip_dst,
            IpProtocol::Udp,
            udp_len as u16,
            ident,
            0,
        ));
        f.extend_from_slice(&udp);
        f.extend_from_slice(&payload);
        set_ethernet(&mut f, reply.mac_dst, mac, ETHERTYPE_IPV4);
        self.counters.dhcp_replies_sent += 1;
        let kind = reply.message.opts().msg_type();
        self.note(|_| Decision::Dhcp {
            reply: kind.map_or("reply".to_owned(), |k| format!("{k:?}").to_lowercase()),
            address: reply.message.yiaddr(),
        });
        out.push((iface, f));
    }

    /// When [`Router::on_timer`] is next due.
    pub fn poll_at(&self) -> Option<Instant> {
        let nat = self.nat.as_ref().and_then(|(_, n)| n.poll_at());
        [self.neigh.poll_at(), nat].into_iter().flatten().min()
    }

    /// Retries ARP, gives up on silent next hops, ages leases.
    pub fn on_timer(&mut self, now: Instant, pool: &mut FramePool, out: &mut Outbox) {
        let mut retry = Vec::new();
        let mut expired = Vec::new();
        self.neigh.on_timer(now, &mut retry, &mut expired);
        for (iface, ip) in retry {
            self.send_arp_request(iface, ip, Mac::BROADCAST, pool, out);
        }
        for (_, _, frame) in expired {
            // The error goes back out of the interface towards the sender,
            // from that interface's address.
            let src = ipv4_of(&frame)
                .and_then(|ip| self.routes.lookup(ip.src_addr()).map(|r| r.iface))
                .map(|i| self.addr(i));
            if let Some(src) = src {
                self.icmp_error(now, IcmpError::HostUnreachable, src, &frame, pool, out);
            }
            self.discard(pool, frame, Drop::HostUnreachable);
        }
        for i in &mut self.ifaces {
            if let Some(d) = &mut i.dhcp {
                d.on_timer(now);
            }
        }
        if let Some((_, nat)) = &mut self.nat {
            if nat.poll_at().is_some_and(|t| t <= now) {
                nat.on_timer(now);
            }
        }
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
                .iter()
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
            counters: self.counters.clone(),
            nat: self
                .nat_status(now)
                .map(|(table, counters)| NatStatus { table, counters }),
        }
    }
}

impl Router {
    /// Records what the NAT just did to `frame`, given its endpoints and
    /// the session count before (`None` when no trace is on).
    fn note_nat(
        &mut self,
        before: Option<(Option<Endpoints>, u64)>,
        frame: &Frame,
        outbound: bool,
    ) {
        let Some((Some(b), created)) = before else {
            return;
        };
        let Some(a) = endpoints(frame) else { return };
        let new_mapping = self
            .nat
            .as_ref()
            .is_some_and(|(_, n)| n.counters().sessions_created > created);
        let (from, to) = if outbound {
            (b.src, a.src)
        } else {
            (b.dst, a.dst)
        };
        self.note(|_| Decision::Nat {
            outbound,
            proto: a.proto,
            from,
            to,
            new_mapping,
        });
    }
}

/// The transport endpoints of the IPv4 packet in a frame (an ICMP echo's
/// identifier stands for the port), for traces.
struct Endpoints {
    proto: Proto,
    src: SocketAddrV4,
    dst: SocketAddrV4,
}

fn endpoints(frame: &Frame) -> Option<Endpoints> {
    let ip = ipv4_of(frame)?;
    let (proto, sport, dport) = match ip.next_header() {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(ip.payload()).ok()?;
            (Proto::Tcp, t.src_port(), t.dst_port())
        }
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(ip.payload()).ok()?;
            (Proto::Udp, u.src_port(), u.dst_port())
        }
        IpProtocol::Icmp => {
            let id = ip
                .payload()
                .get(4..6)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))?;
            (Proto::Icmp, id, id)
        }
        _ => return None,
    };
    Some(Endpoints {
        proto,
        src: SocketAddrV4::new(ip.src_addr(), sport),
        dst: SocketAddrV4::new(ip.dst_addr(), dport),
    })
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

/// TTL minus one, checksum updated incrementally (RFC 1624).
fn decrement_ttl(frame: &mut Frame) {
    let d = &mut frame.data_mut()[HEADER_LEN..];
    let old = u16::from_be_bytes([d[8], d[9]]);
    d[8] -= 1;
    let new = u16::from_be_bytes([d[8], d[9]]);
    let c = checksum::update(u16::from_be_bytes([d[10], d[11]]), old, new);
    d[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The header of a non-first fragment: the base header plus the options
/// whose copy flag is set, padded to a multiple of four bytes.
fn copied_options_header(header: &[u8]) -> Vec<u8> {
    let mut h = header[..20].to_vec();
    let mut opts = &header[20..];
    while let Some(&kind) = opts.first() {
        match kind {
            0 => break,
            1 => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1).unwrap_or(&0));
                if len < 2 || len > opts.len() {
                    break;
                }
                if kind & 0x80 != 0 {
                    h.extend_from_slice(&opts[..len]);
                }
                opts = &opts[len..];
            }
        }
    }
    while !h.len().is_multiple_of(4) {
        h.push(0);
    }
    h
}
