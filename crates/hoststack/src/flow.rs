//! Reading just enough of a received frame to find the socket it is for.
//!
//! smoltcp offers every packet to every socket of the set it is given. A
//! service host keeps each socket in a set of its own and looks the flow
//! up here first, so the cost of a packet does not grow with the number of
//! connections. And the one frame the stack writes itself rather than
//! smoltcp: an ARP request.

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress,
    IpProtocol, Ipv4Packet, TcpPacket,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use wire::checksum;
use wire::ether::{EthernetHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4};
use wire::ip::{Fragment, IpView, Transport, PROTO_TCP, PROTO_UDP};

/// A TCP connection as this host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
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
}

/// Where a received frame goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seen {
    Tcp(TcpSeen),
    Udp {
        local: SocketAddrV4,
    },
    Arp,
    /// A fragment of an IPv4 packet: reassembled before anything else.
    Fragment,
    /// ICMP and other protocols: for the interface alone.
    Other,
}

/// Where a frame goes, read through the one IP parser ([`IpView`]): the
/// header checked once here, where the frame enters the host. IPv6 is the
/// interface's (neighbour discovery, echo, errors) until the services
/// speak it.
pub(crate) fn classify(frame: &[u8]) -> Seen {
    let Ok(eth) = EthernetHeader::parse(frame) else {
        return Seen::Other;
    };
    match eth.ethertype {
        ETHERTYPE_IPV4 => {}
        ETHERTYPE_ARP => return Seen::Arp,
        _ => return Seen::Other,
    }
    let Ok(v) = IpView::parse(frame, eth.payload_offset) else {
        return Seen::Other;
    };
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (v.src, v.dst) else {
        return Seen::Other;
    };
    if v.fragment != Fragment::Whole {
        return Seen::Fragment;
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
            let pseudo =
                checksum::pseudo_header(&src.octets(), &dst.octets(), PROTO_TCP, l4.len() as u32);
            let (syn, fin) = (flags & 0x02 != 0, flags & 0x01 != 0);
            Seen::Tcp(TcpSeen {
                key: FlowKey {
                    local: SocketAddrV4::new(dst, dp),
                    remote: SocketAddrV4::new(src, sp),
                },
                syn,
                ack: flags & 0x10 != 0,
                rst: flags & 0x04 != 0,
                seq: word(4),
                ack_no: word(8),
                seg_len: (l4.len() - header) as u32 + u32::from(syn) + u32::from(fin),
                checksum_ok: checksum::fold(checksum::sum(pseudo, l4)) == 0xffff,
            })
        }
        (PROTO_UDP, Transport::Ports { dst: dp, .. }) if l4.len() >= 8 => Seen::Udp {
            local: SocketAddrV4::new(dst, dp),
        },
        _ => Seen::Other,
    }
}

/// The length of an Ethernet frame holding an ARP request.
pub(crate) const ARP_REQUEST_LEN: usize = 14 + 28;

/// Writes into `buf` ([`ARP_REQUEST_LEN`] bytes) a broadcast ARP request
/// from `mac`/`ip` for `target`.
pub(crate) fn arp_request(buf: &mut [u8], mac: wire::Mac, ip: Ipv4Addr, target: Ipv4Addr) {
    let Ok(mut eth) = EthernetFrame::new_checked(&mut buf[..]) else {
        return;
    };
    eth.set_dst_addr(EthernetAddress::BROADCAST);
    eth.set_src_addr(EthernetAddress(mac.0));
    eth.set_ethertype(EthernetProtocol::Arp);
    let Ok(mut arp) = ArpPacket::new_checked(eth.payload_mut()) else {
        return;
    };
    ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(mac.0),
        source_protocol_addr: ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    }
    .emit(&mut arp);
}

/// Whether a frame the host sends starts a UDP datagram (a whole one, or
/// its first fragment).
pub(crate) fn is_datagram(frame: &[u8]) -> bool {
    EthernetFrame::new_checked(frame)
        .ok()
        .filter(|e| e.ethertype() == EthernetProtocol::Ipv4)
        .and_then(|e| {
            let ip = Ipv4Packet::new_checked(e.payload()).ok()?;
            Some(ip.next_header() == IpProtocol::Udp && ip.frag_offset() == 0)
        })
        .unwrap_or(false)
}

/// The address a frame the host sends asks for, if it is an ARP request.
pub(crate) fn arp_target(frame: &[u8]) -> Option<Ipv4Addr> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Arp {
        return None;
    }
    match ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()? {
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            target_protocol_addr,
            ..
        } => Some(target_protocol_addr),
        _ => None,
    }
}

/// Copies a TCP segment into `scratch` as a bare ACK at sequence number
/// `seq`: no payload, no FIN, its ACK number and window kept. A receiver
/// that advertised a zero window must still act on those (RFC 9293
/// 3.10.7.4), which smoltcp only does for a segment it finds acceptable.
/// False if the frame is not an IPv4 TCP segment.
pub(crate) fn ack_only(frame: &[u8], seq: u32, scratch: &mut Vec<u8>) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return false;
    };
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
        return false;
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let ip_len = usize::from(ip.header_len());
    let tcp_len = usize::from(tcp.header_len());
    scratch.clear();
    scratch.extend_from_slice(&frame[..14 + ip_len + tcp_len]);
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut scratch[14..]) else {
        return false;
    };
    ip.set_total_len((ip_len + tcp_len) as u16);
    ip.fill_checksum();
    let Ok(mut tcp) = TcpPacket::new_checked(&mut scratch[14 + ip_len..]) else {
        return false;
    };
    tcp.set_seq_number(smoltcp::wire::TcpSeqNumber(seq as i32));
    tcp.set_fin(false);
    tcp.set_psh(false);
    tcp.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
    true
}

/// The ACK number and raw window of a TCP segment this host sent.
pub(crate) fn advertised(frame: &[u8]) -> Option<(u32, u16)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_unchecked(ip.payload());
    (ip.payload().len() >= 20 && tcp.ack()).then(|| (tcp.ack_number().0 as u32, tcp.window_len()))
}
