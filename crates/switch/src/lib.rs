//! A learning Ethernet switch (IEEE 802.1D bridging with 802.1Q VLANs) as a
//! sans-IO state machine.
//!
//! [`Switch::process`] takes the time, the ingress port and a frame, and
//! says which ports the frame leaves by and how each must tag it; it never
//! touches a buffer it was not given, a socket or a clock. The caller (the
//! fabric, or the simulator) owns frames and I/O, and calls
//! [`Switch::on_timer`] when [`Switch::poll_at`] says.
//!
//! Behaviour, as a network engineer expects of a bridge:
//! * learns source addresses per VLAN, moves them when a station changes
//!   port, forgets them after the ageing time (300 s by default);
//! * floods broadcast, multicast and unknown unicast within the VLAN,
//!   but for IP multicast to hosts' ports, which snooping constrains to
//!   the groups each host reported (RFC 4541, [`snoop`](SnoopConfig)), with a
//!   querier that keeps the reports coming;
//! * never sends a frame back out of the port it came in by;
//! * has a bounded MAC table: when full it stops learning (and floods what
//!   it cannot learn), and counts it;
//! * guards host ports against rogue IPv6 router advertisements and
//!   redirects (RA guard, RFC 6105), finding the ICMPv6 header behind any
//!   extension headers, and dropping what hides it (RFC 7113);
//! * counts every frame it drops, per port, with the reason.

mod counters;
mod snoop;
mod table;
mod vlan;

pub use counters::{DropReason, PortCounters, SwitchCounters};
pub use snoop::{GroupEntry, SnoopConfig, SnoopCounters};
pub use table::{Learn, MacEntry};
pub use vlan::{PortMode, VlanSet};

use snoop::{Reach, Snooper};
use std::time::Duration;
use table::MacTable;
use wire::ether::{EthernetHeader, VlanEdit, ETHERTYPE_IPV4, ETHERTYPE_IPV6, HEADER_LEN, TAG_LEN};
use wire::ip::{IpError, IpView, Transport, PROTO_ICMPV6};
use wire::Instant;

/// Switch-wide settings.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    /// How long an address stays learned without being seen.
    pub ageing: Duration,
    /// How many (VLAN, MAC) entries the table holds at most.
    pub max_macs: usize,
    /// IGMP and MLD snooping, and its querier.
    pub snooping: SnoopConfig,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            ageing: Duration::from_secs(300),
            max_macs: 8192,
            snooping: SnoopConfig::default(),
        }
    }
}

/// A port's settings.
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub mode: PortMode,
    /// The largest IP packet (L3 MTU) the port carries; longer frames that
    /// are not GSO super-frames are dropped as oversize.
    pub mtu: u16,
    /// RA guard (RFC 6105): a host's port, where an IPv6 router
    /// advertisement (or redirect) is a rogue and is dropped.
    pub ra_guard: bool,
    /// A host's port whose IP multicast snooping constrains to the groups
    /// its host reports. Any other port (a router's, a tunnel, a service
    /// host's) gets every multicast frame.
    pub snooped: bool,
}

impl PortConfig {
    /// An access port in the VLAN with the standard 1500-byte MTU.
    pub fn access(vlan: u16) -> PortConfig {
        PortConfig {
            mode: PortMode::Access { vlan },
            mtu: 1500,
            ra_guard: false,
            snooped: false,
        }
    }
}

/// The index of a port on one switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PortNo(pub u32);

/// What the switch did with a frame it forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarding {
    /// The frame's VLAN.
    pub vlan: u16,
    /// What learning its source address did.
    pub learned: Learn,
    /// Sent to every port of the VLAN: broadcast, multicast that snooping
    /// does not constrain, or an unknown destination.
    pub flooded: bool,
}

/// One copy of a frame leaving the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    pub port: PortNo,
    /// How the frame's 802.1Q tag must change on the way out.
    pub edit: VlanEdit,
}

#[derive(Debug, Clone)]
struct Port {
    config: PortConfig,
    counters: PortCounters,
}

/// The switch state machine. See the crate documentation.
#[derive(Debug, Clone)]
pub struct Switch {
    config: SwitchConfig,
    ports: Vec<Port>,
    table: MacTable,
    counters: SwitchCounters,
    snoop: Snooper,
    /// How many ports are snooped: the querier works only if some are.
    snooped_ports: usize,
    /// Queries the querier has to send, by VLAN.
    queries: Vec<(u16, Vec<u8>)>,
}

impl Switch {
    pub fn new(config: SwitchConfig) -> Switch {
        Switch {
            table: MacTable::new(config.max_macs, config.ageing),
            snoop: Snooper::new(config.snooping.clone()),
            config,
            ports: Vec::new(),
            counters: SwitchCounters::default(),
            snooped_ports: 0,
            queries: Vec::new(),
        }
    }

    pub fn config(&self) -> &SwitchConfig {
        &self.config
    }

    /// Adds a port and returns its number.
    pub fn add_port(&mut self, config: PortConfig) -> PortNo {
        self.snooped_ports += usize::from(config.snooped);
        self.ports.push(Port {
            config,
            counters: PortCounters::default(),
        });
        PortNo(self.ports.len() as u32 - 1)
    }

    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    pub fn port_config(&self, port: PortNo) -> Option<&PortConfig> {
        self.port(port).map(|p| &p.config)
    }

    pub fn port_counters(&self, port: PortNo) -> Option<&PortCounters> {
        self.port(port).map(|p| &p.counters)
    }

    pub fn counters(&self) -> &SwitchCounters {
        &self.counters
    }

    pub fn snoop_counters(&self) -> &SnoopCounters {
        self.snoop.counters()
    }

    /// The multicast groups hosts' ports have joined, sorted by VLAN and
    /// group.
    pub fn groups(&self, now: Instant) -> Vec<GroupEntry> {
        self.snoop.groups(now)
    }

    /// The learned addresses that have not aged out, sorted by VLAN and MAC.
    pub fn mac_table(&self, now: Instant) -> Vec<MacEntry> {
        self.table.entries(now)
    }

    fn port(&self, port: PortNo) -> Option<&Port> {
        self.ports.get(port.0 as usize)
    }

    /// Switches one frame that arrived on `ingress`.
    ///
    /// `gso` says the frame is a GSO super-frame, which may exceed the MTU.
    /// The copies to send are appended to `out` (cleared first); a frame that
    /// goes nowhere returns the reason, already counted.
    pub fn process(
        &mut self,
        now: Instant,
        ingress: PortNo,
        frame: &[u8],
        gso: bool,
        out: &mut Vec<Egress>,
    ) -> Result<Forwarding, DropReason> {
        out.clear();
        let Some(port) = self.ports.get_mut(ingress.0 as usize) else {
            return Err(DropReason::NoSuchPort);
        };
        port.counters.count_rx(frame.len());
        let verdict = classify(&port.config, frame, gso);
        let (eth, vlan) = match verdict {
            Ok(ok) => ok,
            Err(reason) => {
                port.counters.count_drop(reason);
                return Err(reason);
            }
        };
        let ingress_tagged = eth.tag.is_some_and(|t| t.vid != 0);

        let learned = self.table.learn(now, vlan, eth.src, ingress);
        match learned {
            Learn::New => self.counters.learned += 1,
            Learn::Moved => self.counters.moves += 1,
            Learn::Refreshed => {}
            Learn::TableFull => self.counters.table_full += 1,
        }

        let known = if eth.dst.is_multicast() {
            None
        } else {
            self.table.lookup(now, vlan, eth.dst)
        };
        let reach = match eth.ethertype {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6
                if eth.dst.is_multicast() && !eth.dst.is_broadcast() && self.snoop.enabled() =>
            {
                let snooped = self.ports[ingress.0 as usize].config.snooped;
                self.snoop
                    .inspect(now, vlan, ingress, snooped, frame, eth.payload_offset)
            }
            _ => Reach::Flood,
        };
        let flooded = known.is_none() && reach == Reach::Flood;
        let mut skipped = false;
        match known {
            Some(port) if port == ingress => {
                // The destination lives on the segment the frame came from.
                self.ports[ingress.0 as usize]
                    .counters
                    .count_drop(DropReason::Filtered);
                return Err(DropReason::Filtered);
            }
            Some(p) => {
                if let Some(port) = self.ports.get_mut(p.0 as usize) {
                    push_egress(port, p, vlan, ingress_tagged, frame.len(), gso, out);
                }
            }
            None => {
                if eth.dst.is_multicast() {
                    self.counters.multicast_floods += u64::from(flooded);
                } else {
                    self.counters.unknown_unicast_floods += 1;
                }
                let audience = self.snoop.audience(now, vlan, reach);
                for (p, port) in (0..).map(PortNo).zip(&mut self.ports) {
                    if p == ingress || !port.config.mode.carries(vlan) {
                        continue;
                    }
                    if !audience.wants(p, port.config.snooped) {
                        skipped = true;
                        continue;
                    }
                    push_egress(port, p, vlan, ingress_tagged, frame.len(), gso, out);
                }
                if skipped {
                    self.snoop.count_constrained();
                }
            }
        }
        // A report on a switch with no router port, or a group nobody
        // here joined, goes nowhere by design: snooping's filtering, not
        // a drop.
        if out.is_empty() && !skipped {
            self.ports[ingress.0 as usize]
                .counters
                .count_drop(DropReason::NoEgress);
            return Err(DropReason::NoEgress);
        }
        Ok(Forwarding {
            vlan,
            learned,
            flooded,
        })
    }

    /// When the switch next wants [`Switch::on_timer`] called.
    pub fn poll_at(&self) -> Option<Instant> {
        let snoop = self.snoop.poll_at(self.snooped_ports > 0);
        self.table.poll_at().into_iter().chain(snoop).min()
    }

    /// Ages out addresses not seen for the ageing time and memberships
    /// not reported for the membership interval; at the querier's time,
    /// queues a general query (IGMPv3 and MLDv2) for every VLAN of a
    /// snooped port where no outside querier is heard, for
    /// [`Switch::poll_transmit`].
    pub fn on_timer(&mut self, now: Instant) {
        self.counters.aged_out += self.table.on_timer(now) as u64;
        if !self.snoop.on_timer(now, self.snooped_ports > 0) {
            return;
        }
        let mut vlans = VlanSet::empty();
        for p in self.ports.iter().filter(|p| p.config.snooped) {
            match &p.config.mode {
                PortMode::Access { vlan } => vlans.insert(*vlan),
                PortMode::Trunk { native, allowed } => {
                    native.iter().for_each(|v| vlans.insert(*v));
                    (1..=4094)
                        .filter(|v| allowed.contains(*v))
                        .for_each(|v| vlans.insert(v));
                }
            }
        }
        for vlan in (1..=4094).filter(|v| vlans.contains(*v)) {
            if !self.snoop.outside_querier(now, vlan) {
                for q in self.snoop.queries() {
                    self.queries.push((vlan, q));
                }
            }
        }
    }

    /// A frame the switch sends itself (a query), with the copies to send
    /// in `out`, or `None` when there is nothing more to send.
    pub fn poll_transmit(&mut self, out: &mut Vec<Egress>) -> Option<Vec<u8>> {
        out.clear();
        let (vlan, frame) = self.queries.pop()?;
        for (p, port) in (0..).map(PortNo).zip(&mut self.ports) {
            if port.config.snooped && port.config.mode.carries(vlan) {
                push_egress(port, p, vlan, false, frame.len(), false, out);
            }
        }
        Some(frame)
    }
}

/// Adds the copy for `port` (number `no`) unless it cannot carry the
/// frame, counting it.
fn push_egress(
    port: &mut Port,
    no: PortNo,
    vlan: u16,
    ingress_tagged: bool,
    len: usize,
    gso: bool,
    out: &mut Vec<Egress>,
) {
    let egress_tagged = port.config.mode.tags(vlan);
    let edit = match (ingress_tagged, egress_tagged) {
        (false, true) => VlanEdit::Push(vlan),
        (true, false) => VlanEdit::Strip,
        _ => VlanEdit::Keep,
    };
    let out_len = len.saturating_add_signed(edit.len_delta());
    if !gso && out_len > max_frame(port.config.mtu, egress_tagged) {
        port.counters.count_drop(DropReason::Oversize);
        return;
    }
    port.counters.count_tx(out_len);
    out.push(Egress { port: no, edit });
}

/// The longest frame a port carries without offload: header, optional tag
/// and an MTU-sized payload.
fn max_frame(mtu: u16, tagged: bool) -> usize {
    HEADER_LEN + usize::from(mtu) + if tagged { TAG_LEN } else { 0 }
}

/// Checks a frame on ingress and decides its VLAN.
fn classify(
    config: &PortConfig,
    frame: &[u8],
    gso: bool,
) -> Result<(EthernetHeader, u16), DropReason> {
    let eth = EthernetHeader::parse(frame).map_err(DropReason::from)?;
    if !eth.src.is_unicast() {
        return Err(DropReason::InvalidSource);
    }
    let vid = eth.tag.map_or(0, |t| t.vid);
    let vlan = config
        .mode
        .ingress_vlan(vid)
        .ok_or(DropReason::VlanNotAllowed)?;
    if !gso && frame.len() > max_frame(config.mtu, eth.tag.is_some()) {
        return Err(DropReason::Oversize);
    }
    if config.ra_guard
        && eth.ethertype == ETHERTYPE_IPV6
        && is_router_message(frame, eth.payload_offset)
    {
        return Err(DropReason::RaGuard);
    }
    Ok((eth, vlan))
}

/// Whether the IPv6 packet at `l3` is a router advertisement or redirect,
/// or hides what it is behind an extension-header chain a switch cannot
/// follow to its end (RFC 7113: such packets are dropped on guarded
/// ports).
fn is_router_message(frame: &[u8], l3: usize) -> bool {
    match IpView::parse(frame, l3) {
        Ok(v) => {
            matches!(
                v.transport,
                Transport::Icmp {
                    ty: ROUTER_ADVERTISEMENT | REDIRECT,
                    ..
                }
            ) && v.proto == PROTO_ICMPV6
        }
        Err(IpError::ExtensionChain | IpError::IncompleteChain) => true,
        Err(_) => false,
    }
}

const ROUTER_ADVERTISEMENT: u8 = 134;
const REDIRECT: u8 = 137;

#[cfg(test)]
mod tests;
