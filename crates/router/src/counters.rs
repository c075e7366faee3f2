//! What the router counts: packets it drops, by reason, and what it does.

use std::collections::BTreeMap;

/// Why a packet was not forwarded or delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Drop {
    /// Not a well-formed Ethernet, ARP, IPv4 or IPv6 header (version,
    /// header length, lengths).
    Malformed,
    /// IPv4 header checksum (or an ICMPv6 checksum) does not verify.
    BadChecksum,
    /// Source or destination that must never be routed (0/8, 127/8,
    /// 169.254/16, multicast or broadcast source, class E).
    Martian,
    /// An Ethernet frame addressed to another station.
    NotForUs,
    /// Not IPv4, ARP or IPv6 (or IPv6 on an interface without it).
    UnsupportedProtocol,
    /// Broadcast or multicast IP that a router does not forward.
    Broadcast,
    /// TTL would reach zero (ICMP Time Exceeded sent when allowed).
    TtlExpired,
    /// No route to the destination (ICMP Net Unreachable).
    NoRoute,
    /// The next hop never answered ARP (ICMP Host Unreachable).
    HostUnreachable,
    /// The packets waiting for a next hop's ARP answer were too many.
    ArpQueueFull,
    /// Larger than the next hop's MTU with DF set (ICMP Fragmentation Needed).
    FragmentationNeeded,
    /// A fragment addressed to the router itself: it does not reassemble.
    FragmentToSelf,
    /// For the router itself, but no service there (ICMP Port/Protocol Unreachable).
    Unreachable,
    /// A GSO super-frame with an offload request that cannot be honoured.
    BadOffload,
    /// Refused or dropped by the NAT (its own counters say why).
    Nat,
    /// An ARP packet from a sender outside the interface's subnet: not
    /// learned, not answered.
    ArpOffSubnet,
    /// A packet to be NATed whose source is not reachable back through
    /// the interface it came in on (a spoofed inside source).
    SpoofedSource,
    /// A packet from outside the NAT to an inside address: not routed in.
    NatInbound,
    /// An IPv6 extension-header chain too long, out of order, or not
    /// whole in a first fragment (RFC 8200, RFC 7112).
    ExtensionHeaders,
    /// A neighbour discovery message that is not valid (hop limit below
    /// 255, a bad option, a multicast target: RFC 4861 7.1).
    InvalidNd,
    /// Another station advertised one of the router's own addresses.
    AddressConflict,
    /// IPv6 from outside that no session or pinhole lets in, or a new
    /// session past the firewall's bounds (its own counters say which).
    Firewall,
    /// What NAT64 cannot translate, or a new flow past its bounds (its
    /// own counters say which).
    Nat64,
}

impl Drop {
    pub const ALL: [Drop; 23] = [
        Drop::Malformed,
        Drop::BadChecksum,
        Drop::Martian,
        Drop::NotForUs,
        Drop::UnsupportedProtocol,
        Drop::Broadcast,
        Drop::TtlExpired,
        Drop::NoRoute,
        Drop::HostUnreachable,
        Drop::ArpQueueFull,
        Drop::FragmentationNeeded,
        Drop::FragmentToSelf,
        Drop::Unreachable,
        Drop::BadOffload,
        Drop::Nat,
        Drop::ArpOffSubnet,
        Drop::SpoofedSource,
        Drop::NatInbound,
        Drop::ExtensionHeaders,
        Drop::InvalidNd,
        Drop::AddressConflict,
        Drop::Firewall,
        Drop::Nat64,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Drop::Malformed => "malformed",
            Drop::BadChecksum => "bad-checksum",
            Drop::Martian => "martian",
            Drop::NotForUs => "not-for-us",
            Drop::UnsupportedProtocol => "unsupported-protocol",
            Drop::Broadcast => "broadcast",
            Drop::TtlExpired => "ttl-expired",
            Drop::NoRoute => "no-route",
            Drop::HostUnreachable => "host-unreachable",
            Drop::ArpQueueFull => "arp-queue-full",
            Drop::FragmentationNeeded => "fragmentation-needed",
            Drop::FragmentToSelf => "fragment-to-self",
            Drop::Unreachable => "unreachable",
            Drop::BadOffload => "bad-offload",
            Drop::Nat => "nat",
            Drop::ArpOffSubnet => "arp-off-subnet",
            Drop::SpoofedSource => "spoofed-source",
            Drop::NatInbound => "nat-inbound",
            Drop::ExtensionHeaders => "extension-headers",
            Drop::InvalidNd => "invalid-nd",
            Drop::AddressConflict => "address-conflict",
            Drop::Firewall => "firewall",
            Drop::Nat64 => "nat64",
        }
    }

    fn index(self) -> usize {
        Drop::ALL.iter().position(|d| *d == self).unwrap_or(0)
    }
}

/// The router's counters, as `scratchnet status` shows them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counters {
    /// By reason name, the non-zero ones.
    #[serde(serialize_with = "drops_by_name")]
    drops: [u64; Drop::ALL.len()],
    pub received: u64,
    pub forwarded: u64,
    /// Forwarded packets that were GSO super-frames (kept whole).
    pub forwarded_gso: u64,
    /// Packets cut into fragments, and the fragments made.
    pub fragmented: u64,
    pub fragments_sent: u64,
    /// Packets for the router itself (echo, DHCP, ...).
    pub delivered: u64,
    pub icmp_errors_sent: u64,
    pub icmp_errors_rate_limited: u64,
    pub echo_replies_sent: u64,
    pub arp_requests_sent: u64,
    pub arp_replies_sent: u64,
    /// Forwarded packets carrying IP options (passed on, not processed).
    pub forwarded_with_options: u64,
    pub dhcp_replies_sent: u64,
    pub dhcp6_replies_sent: u64,
    pub nd_solicitations_sent: u64,
    pub nd_adverts_sent: u64,
    pub router_adverts_sent: u64,
}

impl Counters {
    pub(crate) fn drop(&mut self, reason: Drop) {
        self.drops[reason.index()] += 1;
    }

    pub fn drops(&self, reason: Drop) -> u64 {
        self.drops[reason.index()]
    }

    /// Non-zero drops by reason name.
    pub fn drop_map(&self) -> BTreeMap<&'static str, u64> {
        Drop::ALL
            .iter()
            .filter(|d| self.drops(**d) > 0)
            .map(|d| (d.as_str(), self.drops(*d)))
            .collect()
    }
}

fn drops_by_name<S: serde::Serializer>(
    drops: &[u64; Drop::ALL.len()],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(
        Drop::ALL
            .iter()
            .zip(drops)
            .filter(|(_, n)| **n > 0)
            .map(|(d, n)| (d.as_str(), n)),
    )
}
