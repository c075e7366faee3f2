//! What the router decided about a frame, for `scratchnet trace`.
//!
//! Recorded only while the fabric asks for it ([`crate::Router::set_tracing`]):
//! with no trace active, each decision point costs one branch.

use crate::conntrack::Proto;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

/// One decision, in the order the router took them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Forwarded by this route, out of `iface`; `ttl` after the decrement.
    Route {
        dest: IpNet,
        via: Option<IpAddr>,
        iface: String,
        ttl: u8,
    },
    /// The NAT rewrote the source (`outbound`) or the destination.
    Nat {
        outbound: bool,
        proto: Proto,
        from: SocketAddrV4,
        to: SocketAddrV4,
        new_mapping: bool,
    },
    /// The next hop's MAC is not known: the packet waits for ARP (or
    /// neighbour discovery).
    ArpWait { next_hop: IpAddr, iface: String },
    /// An ARP request for the router's own address, answered.
    ArpReply { to: Ipv4Addr },
    /// For the router itself, answered with an echo reply.
    EchoReply { to: IpAddr },
    /// A neighbour solicitation for the router's own address, answered.
    NeighbourAdvert { to: IpAddr },
    /// An ICMP error sent about the packet (`sent` false: rate-limited).
    IcmpError {
        error: &'static str,
        to: IpAddr,
        sent: bool,
    },
    /// What the IPv6 firewall made of the packet.
    Firewall { outcome: &'static str },
    /// NAT64 translated the packet into the other family.
    Nat64 { from: IpAddr, to: IpAddr },
    /// Cut into fragments for the next hop's MTU.
    Fragmented { fragments: usize, mtu: usize },
    /// A DHCP or DHCPv6 message answered (the address it hands out, or
    /// the unspecified address).
    Dhcp { reply: String, address: IpAddr },
    /// Dropped, and why (the router's drop reason).
    Drop { reason: &'static str },
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Route {
                dest,
                via,
                iface,
                ttl,
            } => {
                let via = via.map_or("connected".to_owned(), |v| format!("via {v}"));
                write!(f, "route {dest} {via} ({iface}); ttl {}->{ttl}", ttl + 1)
            }
            Decision::Nat {
                outbound,
                from,
                to,
                new_mapping,
                ..
            } => {
                let which = if *outbound { "src" } else { "dst" };
                let new = if *new_mapping { " (new mapping)" } else { "" };
                write!(f, "{which} {from} -> {to}{new}")
            }
            Decision::ArpWait { next_hop, iface } => {
                let how = if next_hop.is_ipv4() { "ARP" } else { "ND" };
                write!(f, "waits for {how}: who has {next_hop} ({iface})")
            }
            Decision::NeighbourAdvert { to } => write!(f, "neighbour advertisement to {to}"),
            Decision::ArpReply { to } => write!(f, "ARP reply to {to}"),
            Decision::EchoReply { to } => write!(f, "echo reply to {to}"),
            Decision::IcmpError { error, to, sent } => {
                let limited = if *sent {
                    ""
                } else {
                    " (rate-limited, not sent)"
                };
                write!(f, "ICMP {error} to {to}{limited}")
            }
            Decision::Fragmented { fragments, mtu } => {
                write!(f, "fragmented into {fragments} for MTU {mtu}")
            }
            Decision::Dhcp { reply, address } => write!(f, "DHCP {reply} {address}"),
            Decision::Firewall { outcome } => write!(f, "firewall: {outcome}"),
            Decision::Nat64 { from, to } => write!(f, "nat64: {from} -> {to}"),
            Decision::Drop { reason } => write!(f, "drop: {reason}"),
        }
    }
}
