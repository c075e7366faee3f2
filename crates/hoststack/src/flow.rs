//! Reading just enough of a received frame to find the socket it is for.
//!
//! smoltcp offers every packet to every socket of the set it is given. A
//! service host keeps each socket in a set of its own and looks the flow
//! up here first, so the cost of a packet does not grow with the number of
//! connections. And the frames the stack writes itself rather than
//! smoltcp: an ARP request, an IPv6 neighbour solicitation.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr, NdiscRepr, RawHardwareAddress,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use wire::checksum;
use wire::ether::{EthernetHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use wire::ip::{self, Family, Fragment, IpView, Transport, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// ICMPv6 neighbour solicitation and advertisement (RFC 4861).
pub(crate) const ND_SOLICIT: u8 = 135;
pub(crate) const ND_ADVERT: u8 = 136;

/// A TCP connection as this host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// The parts of a TCP segment that dispatch and TIME-WAIT look at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpSeen {
    pub key: FlowKey,
    pub syn: bool,
    pub ack: bool,
    pub rst: bool,
    pub seq: u32,
    pub ack_no: u32,
    /// Sequence space the segment takes (payload, SYN and FIN).
    pub seg_len: u32,
    /// Whether the TCP checksum is right.
    pub checksum_ok: bool,
    /// A SYN's maximum segment size option.
    pub mss: Option<u16>,
}

/// Where a received frame goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seen {
    Tcp(TcpSeen),
    Udp {
        local: SocketAddr,
        /// The datagram's payload length, from its header.
        payload: u16,
    },
    /// ARP, or an IPv6 neighbour solicitation or advertisement: for the
    /// interface, and what it tells of a neighbour for the stack.
    Neighbour,
    /// A fragment of an IPv4 packet: reassembled before anything else.
    Fragment,
    /// ICMP and other protocols: for the interface alone. So are IPv6
    /// fragments, which the interface drops (IPv6 senders find the path
    /// MTU instead; DNS keeps its answers under 1,232 bytes).
    Other,
}

/// Where a frame goes, read through the one IP parser ([`IpView`]): the
/// header checked once here, where the frame enters the host.
pub(crate) fn classify(frame: &[u8]) -> Seen {
    let Ok(eth) = EthernetHeader::parse(frame) else {
        return Seen::Other;
    };
    match eth.ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {}
        ETHERTYPE_ARP => return Seen::Neighbour,
        _ => return Seen::Other,
    }
    let Ok(v) = IpView::parse(frame, eth.payload_offset) else {
        return Seen::Other;
    };
    match (v.family, v.fragment) {
        (_, Fragment::Whole) => {}
        (Family::V4, _) => return Seen::Fragment,
        (Family::V6, _) => return Seen::Other,
    }
    let l4 = v.payload(frame);
    match (v.proto, v.transport) {
        (
            PROTO_TCP,
            Transport::Ports {
                src: sp,
                dst: dp,
                flags,
            },
        ) => {
            let header = l4.get(12).map_or(0, |b| usize::from(b >> 4) * 4);
            if header < 20 || header > l4.len() {
                return Seen::Other;
            }
            let word = |at: usize| u32::from_be_bytes([l4[at], l4[at + 1], l4[at + 2], l4[at + 3]]);
            let pseudo = checksum::pseudo_header(
                &ip::octets(v.src),
                &ip::octets(v.dst),
                PROTO_TCP,
                l4.len() as u32,
            );
            let (syn, fin) = (flags & 0x02 != 0, flags & 0x01 != 0);
            Seen::Tcp(TcpSeen {
                key: FlowKey {
                    local: SocketAddr::new(v.dst, dp),
                    remote: SocketAddr::new(v.src, sp),
                },
                syn,
                ack: flags & 0x10 != 0,
                rst: flags & 0x04 != 0,
                seq: word(4),
                ack_no: word(8),
                seg_len: (l4.len() - header) as u32 + u32::from(syn) + u32::from(fin),
                checksum_ok: checksum::fold(checksum::sum(pseudo, l4)) == 0xffff,
                mss: syn
                    .then(|| mss_at(&l4[..header]))
                    .flatten()
                    .map(|at| u16::from_be_bytes([l4[at], l4[at + 1]])),
            })
        }
        (PROTO_UDP, Transport::Ports { dst: dp, .. }) if l4.len() >= 8 => Seen::Udp {
            local: SocketAddr::new(v.dst, dp),
            payload: u16::from_be_bytes([l4[4], l4[5]]).saturating_sub(8),
        },
        (PROTO_ICMPV6, Transport::Icmp { ty, .. }) if ty == ND_SOLICIT || ty == ND_ADVERT => {
            Seen::Neighbour
        }
        _ => Seen::Other,
    }
}

/// Where the value of the maximum segment size option lies in a TCP
/// header (`header`: the header with its options), if it has one.
pub(crate) fn mss_at(header: &[u8]) -> Option<usize> {
    let mut at = 20;
    while let Some(&kind) = header.get(at) {
        match kind {
            0 => return None,
            1 => at += 1,
            _ => {
                let len = usize::from(*header.get(at + 1)?);
                if len < 2 || at + len > header.len() {
                    return None;
                }
                if kind == 2 && len == 4 {
                    return Some(at + 2);
                }
                at += len;
            }
        }
    }
    None
}

/// The length of an Ethernet frame holding an ARP request.
pub(crate) const ARP_REQUEST_LEN: usize = 14 + 28;
/// The length of one holding a neighbour solicitation with the source's
/// link-layer address.
pub(crate) const SOLICITATION_LEN: usize = 14 + 40 + 32;

/// Writes into `buf` ([`ARP_REQUEST_LEN`] bytes, a recycled buffer's
/// old bytes overwritten) a broadcast ARP request from `mac`/`ip` for
/// `target`.
pub(crate) fn arp_request(buf: &mut [u8], mac: wire::Mac, ip: Ipv4Addr, target: Ipv4Addr) {
    buf.fill(0);
    let Ok(mut eth) = EthernetFrame::new_checked(&mut buf[..]) else {
        return;
    };
    eth.set_dst_addr(EthernetAddress::BROADCAST);
    eth.set_src_addr(EthernetAddress(mac.0));
    eth.set_ethertype(EthernetProtocol::Arp);
    // Unchecked: a checked packet reads its lengths from the bytes it is
    // about to be written over.
    let mut arp = ArpPacket::new_unchecked(eth.payload_mut());
    ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(mac.0),
        source_protocol_addr: ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    }
    .emit(&mut arp);
}

/// Writes into `buf` ([`SOLICITATION_LEN`] bytes, overwritten as in
/// [`arp_request`]) a neighbour solicitation (RFC 4861 7.2.2) from
/// `mac`/`ip` for `target`, to the target's solicited-node group.
pub(crate) fn solicitation(buf: &mut [u8], mac: wire::Mac, ip: Ipv6Addr, target: Ipv6Addr) {
    buf.fill(0);
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let g = group.octets();
    let Ok(mut eth) = EthernetFrame::new_checked(&mut buf[..]) else {
        return;
    };
    eth.set_dst_addr(EthernetAddress([0x33, 0x33, g[12], g[13], g[14], g[15]]));
    eth.set_src_addr(EthernetAddress(mac.0));
    eth.set_ethertype(EthernetProtocol::Ipv6);
    let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from_bytes(&mac.0)),
    });
    let repr = Ipv6Repr {
        src_addr: ip,
        dst_addr: group,
        next_header: IpProtocol::Icmpv6,
        payload_len: ns.buffer_len(),
        hop_limit: 255,
    };
    let mut packet = Ipv6Packet::new_unchecked(eth.payload_mut());
    repr.emit(&mut packet);
    ns.emit(
        &ip,
        &group,
        &mut Icmpv6Packet::new_unchecked(packet.payload_mut()),
        &ChecksumCapabilities::default(),
    );
}

/// The parsed IP packet of a frame the host built.
fn view(frame: &[u8]) -> Option<IpView> {
    let eth = EthernetHeader::parse(frame).ok()?;
    match eth.ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => IpView::parse(frame, eth.payload_offset).ok(),
        _ => None,
    }
}

/// Whether a frame the host sends starts a UDP datagram (a whole one, or
/// its first fragment).
pub(crate) fn is_datagram(frame: &[u8]) -> bool {
    view(frame)
        .is_some_and(|v| v.proto == PROTO_UDP && !matches!(v.fragment, Fragment::Later { .. }))
}

/// The address a frame the host sends asks for, if it is an ARP request
/// or a neighbour solicitation.
pub(crate) fn solicited(frame: &[u8]) -> Option<IpAddr> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() == EthernetProtocol::Arp {
        return match ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()? {
            ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                target_protocol_addr,
                ..
            } => Some(IpAddr::V4(target_protocol_addr)),
            _ => None,
        };
    }
    let v = view(frame)?;
    match v.transport {
        Transport::Icmp { ty: ND_SOLICIT, .. } if v.proto == PROTO_ICMPV6 => {
            let target: [u8; 16] = frame.get(v.l4 + 8..v.l4 + 24)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(target)))
        }
        _ => None,
    }
}

/// Copies a TCP segment into `scratch` as a bare ACK at sequence number
/// `seq`: no payload, no FIN, its ACK number and window kept. A receiver
/// that advertised a zero window must still act on those (RFC 9293
/// 3.10.7.4), which smoltcp only does for a segment it finds acceptable.
/// False if the frame is not a TCP segment.
pub(crate) fn ack_only(frame: &[u8], seq: u32, scratch: &mut Vec<u8>) -> bool {
    let Some(v) = view(frame).filter(|v| v.proto == PROTO_TCP) else {
        return false;
    };
    let tcp_len = frame.get(v.l4 + 12).map_or(0, |b| usize::from(b >> 4) * 4);
    if tcp_len < 20 || v.l4 + tcp_len > v.end {
        return false;
    }
    scratch.clear();
    scratch.extend_from_slice(&frame[..v.l4 + tcp_len]);
    let ip_len = (v.l4 + tcp_len - v.l3) as u16;
    match v.family {
        Family::V4 => {
            scratch[v.l3 + 2..v.l3 + 4].copy_from_slice(&ip_len.to_be_bytes());
            scratch[v.l3 + 10..v.l3 + 12].fill(0);
            let c = checksum::finish(checksum::sum(0, &scratch[v.l3..v.l4]));
            scratch[v.l3 + 10..v.l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        Family::V6 => {
            scratch[v.l3 + 4..v.l3 + 6].copy_from_slice(&(ip_len - 40).to_be_bytes());
        }
    }
    let tcp = &mut scratch[v.l4..];
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[13] &= !0x09; // FIN and PSH
    tcp[16..18].fill(0);
    let c = ip::transport_checksum(v.src, v.dst, PROTO_TCP, tcp);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    true
}

/// The ACK number and raw window of a TCP segment this host sent.
pub(crate) fn advertised(frame: &[u8]) -> Option<(u32, u16)> {
    let v = view(frame).filter(|v| v.proto == PROTO_TCP)?;
    let tcp = frame.get(v.l4..v.l4 + 20)?;
    let ack = tcp[13] & 0x10 != 0;
    ack.then(|| {
        (
            u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
            u16::from_be_bytes([tcp[14], tcp[15]]),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_written_over_a_recycled_buffer_are_whole() {
        // A pooled buffer holds the last frame's bytes; what lengths they
        // claim must not stop the new frame being written.
        let mac = wire::Mac([2, 0, 0, 0, 0, 1]);
        let mut buf = vec![0xff; ARP_REQUEST_LEN];
        arp_request(
            &mut buf,
            mac,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        let eth = EthernetFrame::new_checked(&buf[..]).expect("eth");
        let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).expect("arp"));
        assert!(arp.is_ok(), "{arp:?}");
        let mut buf = vec![0xff; SOLICITATION_LEN];
        let (ip, target) = (
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
        );
        solicitation(&mut buf, mac, ip, target);
        assert_eq!(solicited(&buf), Some(IpAddr::V6(target)));
        let v = view(&buf).expect("a valid packet");
        let icmp = &buf[v.l4..v.end];
        assert_eq!(ip::transport_checksum(v.src, v.dst, PROTO_ICMPV6, icmp), 0);
    }
}
