//! ICMP and ICMPv6 as RFC 792, RFC 1812 and RFC 4443 want them from a
//! router: which errors may be sent, what they quote, how fast, and echo
//! replies.

use smoltcp::wire::{IpProtocol, Ipv4Packet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use wire::checksum;
use wire::ether::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use wire::ip::{Family, Fragment, IpView, Side, PROTO_ICMPV6};
use wire::ratelimit::RateLimiter;
use wire::{Frame, FramePool, Instant};

pub const ECHO_REPLY: u8 = 0;
pub const DEST_UNREACHABLE: u8 = 3;
pub const ECHO_REQUEST: u8 = 8;
pub const TIME_EXCEEDED: u8 = 11;
pub const ECHO_REQUEST_V6: u8 = 128;
pub const ECHO_REPLY_V6: u8 = 129;

/// An ICMP error a router sends, named for what happened; each family
/// has its own type and code for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    NetUnreachable,
    HostUnreachable,
    ProtocolUnreachable,
    PortUnreachable,
    /// Too big for the next hop (IPv4: fragmentation needed and DF set,
    /// RFC 1191; IPv6: Packet Too Big, RFC 8201), with its MTU.
    FragmentationNeeded {
        mtu: u16,
    },
    TtlExceeded,
    /// Communication administratively prohibited: a NAT that cannot take
    /// a new flow because its table or port range is full, a firewall.
    AdminProhibited,
    /// IPv6 only: a link-local source leaving its link (RFC 4443 3.1).
    BeyondScope,
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
            IcmpError::BeyondScope => "beyond scope of source address",
        }
    }

    /// ICMP (RFC 792) type and code.
    pub fn type_code(self) -> (u8, u8) {
        match self {
            IcmpError::NetUnreachable => (DEST_UNREACHABLE, 0),
            IcmpError::HostUnreachable => (DEST_UNREACHABLE, 1),
            IcmpError::ProtocolUnreachable => (DEST_UNREACHABLE, 2),
            IcmpError::PortUnreachable => (DEST_UNREACHABLE, 3),
            IcmpError::FragmentationNeeded { .. } => (DEST_UNREACHABLE, 4),
            IcmpError::TtlExceeded => (TIME_EXCEEDED, 0),
            IcmpError::AdminProhibited | IcmpError::BeyondScope => (DEST_UNREACHABLE, 13),
        }
    }

    /// ICMPv6 (RFC 4443) type and code. A protocol nobody handles is a
    /// Parameter Problem, "unrecognized Next Header".
    pub fn type_code_v6(self) -> (u8, u8) {
        match self {
            IcmpError::NetUnreachable => (1, 0),
            IcmpError::AdminProhibited => (1, 1),
            IcmpError::BeyondScope => (1, 2),
            IcmpError::HostUnreachable => (1, 3),
            IcmpError::PortUnreachable => (1, 4),
            IcmpError::FragmentationNeeded { .. } => (2, 0),
            IcmpError::TtlExceeded => (3, 0),
            IcmpError::ProtocolUnreachable => (4, 1),
        }
    }

    /// The second 32-bit word of the message, given the quoted packet.
    fn rest(self, about: &IpView) -> u32 {
        match (self, about.family) {
            (IcmpError::FragmentationNeeded { mtu }, _) => u32::from(mtu),
            (IcmpError::ProtocolUnreachable, Family::V6) => (about.proto_at - about.l3) as u32,
            _ => 0,
        }
    }
}

fn bad_source(src: IpAddr) -> bool {
    match src {
        IpAddr::V4(a) => {
            a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback()
        }
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast() || a.is_loopback(),
    }
}

/// Whether an error about `about` may be sent: never about an ICMP
/// error, a packet sent to a link-layer or IP broadcast or multicast, or
/// a packet whose source does not name a single host (RFC 1812 4.3.2.7,
/// RFC 4443 2.4(e)); for IPv4 also never about a non-first fragment.
pub fn error_allowed(about: &IpView, l2_multicast: bool) -> bool {
    if l2_multicast || bad_source(about.src) || about.is_icmp_error() {
        return false;
    }
    match about.dst {
        IpAddr::V4(d) => {
            !d.is_broadcast()
                && !d.is_multicast()
                && !matches!(about.fragment, Fragment::Later { .. })
        }
        IpAddr::V6(d) => !d.is_multicast(),
    }
}

/// IPv6's minimum MTU: an ICMPv6 error fits in it (RFC 4443 2.4(c)).
const IPV6_MIN_MTU: usize = 1280;

/// Builds an error from `src` about the packet `about` in `data` (an
/// Ethernet frame's bytes): an Ethernet frame whose link-layer addresses
/// the caller fills in on output. Quotes as much of the original as fits
/// in 576 bytes (IPv4, RFC 1812 4.3.2.3) or 1280 (IPv6).
pub fn build_error(
    pool: &mut FramePool,
    err: IcmpError,
    src: IpAddr,
    ident: u16,
    data: &[u8],
    about: &IpView,
) -> Option<Frame> {
    let original = about.packet(data);
    let (ethertype, header_len, limit, (ty, code)) = match about.family {
        Family::V4 => (ETHERTYPE_IPV4, 20, 576, err.type_code()),
        Family::V6 => (ETHERTYPE_IPV6, 40, IPV6_MIN_MTU, err.type_code_v6()),
    };
    let quote = &original[..original.len().min(limit - header_len - 8)];
    let mut icmp = [0u8; 8];
    icmp[0] = ty;
    icmp[1] = code;
    icmp[4..8].copy_from_slice(&err.rest(about).to_be_bytes());
    let mut frame = pool.get();
    frame.extend_from_slice(&[0u8; 12]);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    let to = about.src;
    match (src, to) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let c = checksum::finish(checksum::sum(checksum::sum(0, &icmp), quote));
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            frame.extend_from_slice(&ipv4_header(
                s,
                d,
                IpProtocol::Icmp,
                (8 + quote.len()) as u16,
                ident,
                0xc0,
            ));
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = 8 + quote.len();
            let pseudo =
                checksum::pseudo_header(&s.octets(), &d.octets(), PROTO_ICMPV6, len as u32);
            let c = checksum::finish(checksum::sum(checksum::sum(pseudo, &icmp), quote));
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            frame.extend_from_slice(&ipv6_header(s, d, PROTO_ICMPV6, len as u16, 64));
        }
        _ => return None,
    }
    frame.extend_from_slice(&icmp);
    frame.extend_from_slice(quote);
    Some(frame)
}

/// A 40-byte IPv6 header, traffic class and flow label zero.
pub fn ipv6_header(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    payload_len: u16,
    hop_limit: u8,
) -> [u8; 40] {
    let mut h = [0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&payload_len.to_be_bytes());
    h[6] = next;
    h[7] = hop_limit;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    h
}

/// An Ethernet frame (link-layer addresses left for output) holding an
/// ICMPv6 message from `src` to `dst` with the given hop limit, its
/// checksum filled in.
pub fn icmpv6_frame(
    pool: &mut FramePool,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    message: &[u8],
) -> Frame {
    let mut frame = pool.get();
    frame.extend_from_slice(&[0u8; 12]);
    frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    frame.extend_from_slice(&ipv6_header(
        src,
        dst,
        PROTO_ICMPV6,
        message.len() as u16,
        hop_limit,
    ));
    let at = frame.len();
    frame.extend_from_slice(message);
    let c = wire::ip::transport_checksum(IpAddr::V6(src), IpAddr::V6(dst), PROTO_ICMPV6, message);
    frame.data_mut()[at + 2..at + 4].copy_from_slice(&c.to_be_bytes());
    frame
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

/// Turns an echo request into its reply in place: addresses swapped
/// (the reply comes from `me`), type echo reply, TTL or hop limit 64,
/// checksums updated incrementally. Returns the address to send it to.
pub fn echo_reply_in_place(frame: &mut Frame, view: &mut IpView, me: IpAddr) -> Option<IpAddr> {
    let peer = view.src;
    let data = frame.data_mut();
    let (request, reply) = match view.family {
        Family::V4 => (ECHO_REQUEST, ECHO_REPLY),
        Family::V6 => (ECHO_REQUEST_V6, ECHO_REPLY_V6),
    };
    if data.get(view.l4 + 7).is_none() || data[view.l4] != request {
        return None;
    }
    if !view.set_addr(data, Side::Dst, peer, false) || !view.set_addr(data, Side::Src, me, false) {
        return None;
    }
    view.set_hop_limit(data, 64);
    let l4 = view.l4;
    let old = u16::from_be_bytes([data[l4], data[l4 + 1]]);
    data[l4] = reply;
    let new = u16::from_be_bytes([data[l4], data[l4 + 1]]);
    let c = checksum::update(u16::from_be_bytes([data[l4 + 2], data[l4 + 3]]), old, new);
    data[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
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
            IcmpError::AdminProhibited | IcmpError::BeyondScope => 5,
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
