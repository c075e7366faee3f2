//! ICMP as RFC 792 and RFC 1812 want it from a router: which errors may be
//! sent, what they quote, how fast, and echo replies.

use smoltcp::wire::{IpProtocol, Ipv4Packet};
use std::net::Ipv4Addr;
use wire::checksum;
use wire::ether::{ETHERTYPE_IPV4, HEADER_LEN};
use wire::ratelimit::RateLimiter;
use wire::{Frame, FramePool, Instant};

pub const ECHO_REPLY: u8 = 0;
pub const DEST_UNREACHABLE: u8 = 3;
pub const ECHO_REQUEST: u8 = 8;
pub const TIME_EXCEEDED: u8 = 11;

/// An ICMP error a router sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    NetUnreachable,
    HostUnreachable,
    ProtocolUnreachable,
    PortUnreachable,
    /// Fragmentation needed and DF set, with the next hop's MTU (RFC 1191).
    FragmentationNeeded {
        mtu: u16,
    },
    TtlExceeded,
    /// Communication administratively prohibited: a NAT that cannot take
    /// a new flow because its table or port range is full.
    AdminProhibited,
}

impl IcmpError {
    /// How traces and people name it.
    pub fn name(self) -> &'static str {
        match self {
            IcmpError::NetUnreachable => "net unreachable",
            IcmpError::HostUnreachable => "host unreachable",
            IcmpError::ProtocolUnreachable => "protocol unreachable",
            IcmpError::PortUnreachable => "port unreachable",
            IcmpError::FragmentationNeeded { .. } => "fragmentation needed",
            IcmpError::TtlExceeded => "time exceeded",
            IcmpError::AdminProhibited => "administratively prohibited",
        }
    }

    pub fn type_code(self) -> (u8, u8) {
        match self {
            IcmpError::NetUnreachable => (DEST_UNREACHABLE, 0),
            IcmpError::HostUnreachable => (DEST_UNREACHABLE, 1),
            IcmpError::ProtocolUnreachable => (DEST_UNREACHABLE, 2),
            IcmpError::PortUnreachable => (DEST_UNREACHABLE, 3),
            IcmpError::FragmentationNeeded { .. } => (DEST_UNREACHABLE, 4),
            IcmpError::TtlExceeded => (TIME_EXCEEDED, 0),
            IcmpError::AdminProhibited => (DEST_UNREACHABLE, 13),
        }
    }

    /// The second 32-bit word of the message.
    fn rest(self) -> u32 {
        match self {
            IcmpError::FragmentationNeeded { mtu } => u32::from(mtu),
            _ => 0,
        }
    }
}

/// ICMP types that are queries (or their replies), not errors.
fn is_query(icmp_type: u8) -> bool {
    matches!(icmp_type, 0 | 8 | 13..=18)
}

fn bad_source(src: Ipv4Addr) -> bool {
    src.is_unspecified() || src.is_multicast() || src.is_broadcast() || src.is_loopback()
}

/// RFC 1812 4.3.2.7: no ICMP error about an ICMP error, a packet sent to
/// a link-layer or IP broadcast or multicast, a non-first fragment, or a
/// packet whose source does not name a single host.
pub fn error_allowed(ip: &Ipv4Packet<&[u8]>, l2_multicast: bool) -> bool {
    if l2_multicast || ip.frag_offset() != 0 || bad_source(ip.src_addr()) {
        return false;
    }
    let dst = ip.dst_addr();
    if dst.is_broadcast() || dst.is_multicast() {
        return false;
    }
    if ip.next_header() == IpProtocol::Icmp {
        return ip.payload().first().is_some_and(|t| is_query(*t));
    }
    true
}

/// Builds an error from `src` about the packet `original` (an IPv4 packet):
/// an Ethernet frame whose addresses the caller fills in on output.
/// Quotes as much of the original as fits in 576 bytes (RFC 1812 4.3.2.3).
pub fn build_error(
    pool: &mut FramePool,
    err: IcmpError,
    src: Ipv4Addr,
    ident: u16,
    original: &[u8],
) -> Option<Frame> {
    let orig = Ipv4Packet::new_checked(original).ok()?;
    let quote_len = usize::from(orig.total_len())
        .min(original.len())
        .min(576 - 20 - 8);
    let quote = &original[..quote_len];
    let (ty, code) = err.type_code();
    let mut icmp = [0u8; 8];
    icmp[0] = ty;
    icmp[1] = code;
    icmp[4..8].copy_from_slice(&err.rest().to_be_bytes());
    let c = checksum::finish(checksum::sum(checksum::sum(0, &icmp), quote));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut frame = pool.get();
    frame.extend_from_slice(&[0u8; 12]);
    frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    frame.extend_from_slice(&ipv4_header(
        src,
        orig.src_addr(),
        IpProtocol::Icmp,
        (8 + quote_len) as u16,
        ident,
        0xc0,
    ));
    frame.extend_from_slice(&icmp);
    frame.extend_from_slice(quote);
    Some(frame)
}

/// A 20-byte IPv4 header with its checksum, TTL 64, DF clear.
pub fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpProtocol,
    payload_len: u16,
    ident: u16,
    tos: u8,
) -> [u8; 20] {
    let mut h = [0u8; 20];
    {
        let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_dscp(tos >> 2);
        p.set_total_len(20 + payload_len);
        p.set_ident(ident);
        p.clear_flags();
        p.set_hop_limit(64);
        p.set_next_header(proto);
        p.set_src_addr(src);
        p.set_dst_addr(dst);
        p.fill_checksum();
    }
    h
}

/// Turns an echo request (an Ethernet frame) into its reply in place:
/// addresses swapped, type 0, TTL 64, checksums updated. Returns the
/// address to send it to.
pub fn echo_reply_in_place(frame: &mut Frame, me: Ipv4Addr) -> Option<Ipv4Addr> {
    let data = frame.data_mut().get_mut(HEADER_LEN..)?;
    let mut ip = Ipv4Packet::new_checked(data).ok()?;
    let peer = ip.src_addr();
    ip.set_src_addr(me);
    ip.set_dst_addr(peer);
    ip.set_hop_limit(64);
    ip.fill_checksum();
    let icmp = ip.payload_mut();
    if icmp.len() < 8 || icmp[0] != ECHO_REQUEST {
        return None;
    }
    let old = u16::from_be_bytes([icmp[0], icmp[1]]);
    icmp[0] = ECHO_REPLY;
    let new = u16::from_be_bytes([icmp[0], icmp[1]]);
    let c = checksum::update(u16::from_be_bytes([icmp[2], icmp[3]]), old, new);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    Some(peer)
}

/// Token buckets for the ICMP errors a router sends, one per kind, so that
/// a flood that draws one kind (TTL expiries, say) cannot use up the
/// others. Fragmentation Needed is never limited, as in Linux: dropping it
/// would black-hole path-MTU discovery.
#[derive(Debug, Clone)]
pub struct ErrorLimits {
    buckets: [RateLimiter; 6],
}

impl ErrorLimits {
    pub fn new(rate: u32, burst: u32) -> ErrorLimits {
        ErrorLimits {
            buckets: std::array::from_fn(|_| RateLimiter::new(rate, burst)),
        }
    }

    /// Whether an error of this kind may be sent now.
    pub fn allow(&mut self, now: Instant, err: IcmpError) -> bool {
        let slot = match err {
            IcmpError::FragmentationNeeded { .. } => return true,
            IcmpError::NetUnreachable => 0,
            IcmpError::HostUnreachable => 1,
            IcmpError::ProtocolUnreachable => 2,
            IcmpError::PortUnreachable => 3,
            IcmpError::TtlExceeded => 4,
            IcmpError::AdminProhibited => 5,
        };
        self.buckets[slot].allow(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_flood_leaves_other_errors_and_pmtu_discovery_alone() {
        let mut l = ErrorLimits::new(10, 3);
        let t = Instant::from_secs(5);
        assert_eq!(
            (0..100)
                .filter(|_| l.allow(t, IcmpError::TtlExceeded))
                .count(),
            3
        );
        assert!(l.allow(t, IcmpError::PortUnreachable));
        assert!((0..100).all(|_| l.allow(t, IcmpError::FragmentationNeeded { mtu: 1400 })));
    }
}
