//! What the switch counts: per-port traffic and drops by reason, and
//! switch-wide learning and flooding events.

use std::collections::BTreeMap;
use wire::ether::EtherError;

/// Why a frame (or one copy of it) was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// Shorter than an Ethernet header (or its 802.1Q tag).
    Truncated,
    /// EtherType 1501..=1535: neither a length nor a type.
    BadEtherType,
    /// Source address is multicast, broadcast or all-zero.
    InvalidSource,
    /// Longer than the port's MTU allows and not a GSO super-frame.
    Oversize,
    /// The frame's VLAN is not carried by the port.
    VlanNotAllowed,
    /// The destination is on the port the frame came from.
    Filtered,
    /// No other port carries the frame's VLAN.
    NoEgress,
    /// The ingress port does not exist.
    NoSuchPort,
    /// An IPv6 router advertisement or redirect from a host's port (RA
    /// guard).
    RaGuard,
}

impl DropReason {
    pub const ALL: [DropReason; 9] = [
        DropReason::Truncated,
        DropReason::BadEtherType,
        DropReason::InvalidSource,
        DropReason::Oversize,
        DropReason::VlanNotAllowed,
        DropReason::Filtered,
        DropReason::NoEgress,
        DropReason::NoSuchPort,
        DropReason::RaGuard,
    ];

    /// The name used in counters and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadEtherType => "bad-ethertype",
            DropReason::InvalidSource => "invalid-source",
            DropReason::Oversize => "oversize",
            DropReason::VlanNotAllowed => "vlan-not-allowed",
            DropReason::Filtered => "filtered",
            DropReason::NoEgress => "no-egress",
            DropReason::NoSuchPort => "no-such-port",
            DropReason::RaGuard => "ra-guard",
        }
    }

    fn index(self) -> usize {
        DropReason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl From<EtherError> for DropReason {
    fn from(e: EtherError) -> DropReason {
        match e {
            EtherError::BadEtherType(_) => DropReason::BadEtherType,
            _ => DropReason::Truncated,
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Traffic through one port. Drops are counted on the port where the
/// decision was taken: ingress problems on the ingress port, an egress
/// that cannot carry a copy on that egress port.
#[derive(Debug, Clone, Default)]
pub struct PortCounters {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    drops: [u64; DropReason::ALL.len()],
}

impl PortCounters {
    pub(crate) fn count_rx(&mut self, len: usize) {
        self.rx_frames += 1;
        self.rx_bytes += len as u64;
    }

    pub(crate) fn count_tx(&mut self, len: usize) {
        self.tx_frames += 1;
        self.tx_bytes += len as u64;
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// The non-zero drop counts by reason name.
    pub fn drop_map(&self) -> BTreeMap<&'static str, u64> {
        DropReason::ALL
            .iter()
            .filter(|r| self.drops(**r) > 0)
            .map(|r| (r.as_str(), self.drops(*r)))
            .collect()
    }
}

/// Switch-wide events.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SwitchCounters {
    /// Addresses learned for the first time (or again after ageing out).
    pub learned: u64,
    /// Addresses seen on a different port than the one learned.
    pub moves: u64,
    /// Addresses not learned because the table was full.
    pub table_full: u64,
    /// Addresses forgotten by ageing.
    pub aged_out: u64,
    /// Unicast frames flooded because the destination was unknown.
    pub unknown_unicast_floods: u64,
    /// Broadcast and multicast frames flooded.
    pub multicast_floods: u64,
}
