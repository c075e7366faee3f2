//! The smoltcp `Device` of a service host: one received frame in, sent
//! frames out into a reused list, buffers from a pool.
//!
//! A traced frame's id rides with the datagram it carries (smoltcp's
//! `PacketMeta`), so that a service can send its answer as the answer to
//! that frame.
//!
//! The interface never sees the fabric directly. The stack hands it one
//! frame at a time (already cut to wire size with complete checksums by the
//! fabric's egress path) together with the socket set that frame belongs
//! to, and collects what it sends.
//!
//! TCP leaves with segmentation offload, as from a NIC with TSO: smoltcp
//! hands over segments of up to 64 KiB, which go out as GSO super-frames
//! with a partial checksum; an offloading TAP takes them whole and every
//! other port gets them cut by the fabric's egress path. smoltcp 0.14 only
//! lets IPv4 have that (its IPv6 path drops a packet larger than the MTU,
//! segmentation metadata or not, and never passes the metadata on), so the
//! device tells smoltcp its MTU is a super-frame's and keeps the link's
//! own here, as a driver would:
//!
//! * a SYN's MSS option is set from the link's MTU (RFC 6691), so peers
//!   see what they would from any host on the link;
//! * a segment is cut at the MSS smoltcp would have used with the real
//!   MTU: the peer's MSS (which the stack learns from its SYN), at most
//!   the link's, less the segment's options;
//! * an IPv4 datagram larger than the link leaves in fragments
//!   (`wire::fragment`), as smoltcp's own fragmentation would send it; an
//!   IPv6 one is dropped and counted, as smoltcp would drop it.
//!
//! Every other frame leaves with its checksums complete.

use crate::flow::mss_at;
use crate::stack::HostCounters;
use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;
use std::num::NonZeroUsize;
use wire::ether::{EthernetHeader, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use wire::ip::{self, Family, IpView, PROTO_TCP};
use wire::GsoType;
use wire::{checksum, Frame, FramePool, VnetHdr};

/// The largest frame smoltcp may hand over for segmentation: what one
/// VXLAN datagram carries to a scratchnet peer (a little under a 64 KiB
/// IP packet and its Ethernet header), so that a service host's
/// super-frames cross a tunnel whole. It is also the MTU smoltcp is told.
const SUPER_FRAME: usize = wire::vxlan::MAX_OFFLOAD_FRAME;

/// A device offering at most one frame and collecting transmissions.
pub(crate) struct Port<'a> {
    pub rx: Option<&'a [u8]>,
    /// The trace id of the frame in `rx` (0 if untraced): smoltcp keeps it
    /// with the datagram it carries.
    pub rx_trace: u32,
    pub tx: &'a mut Vec<Frame>,
    pub pool: &'a mut FramePool,
    pub link: Link,
    pub counters: &'a mut HostCounters,
}

/// What the device knows that smoltcp is not told.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    /// The largest Ethernet frame on the link, without FCS.
    pub max_frame: usize,
    /// The MSS the peer of the TCP socket being served announced.
    pub peer_mss: Option<u16>,
}

impl Link {
    /// The MSS a host on this link announces for `family`: the MTU less
    /// the IP and TCP headers (RFC 6691).
    fn mss(&self, family: Family) -> usize {
        let ip = match family {
            Family::V4 => 20,
            Family::V6 => 40,
        };
        self.max_frame.saturating_sub(14 + ip + 20)
    }
}

impl phy::Device for Port<'_> {
    type RxToken<'b>
        = RxToken<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = TxToken<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let frame = self.rx.take()?;
        let mut meta = PacketMeta::default();
        meta.id = self.rx_trace;
        Some((RxToken(frame, meta), self.tx_token()))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(self.tx_token())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        // See the module's comment: the link's MTU is kept here.
        caps.max_transmission_unit = SUPER_FRAME;
        // TCP checksums are verified by smoltcp and filled in here.
        caps.checksum.tcp = Checksum::Rx;
        caps.segmentation.tcpv4 = NonZeroUsize::new(SUPER_FRAME);
        caps.segmentation.tcpv6 = NonZeroUsize::new(SUPER_FRAME);
        caps
    }
}

impl Port<'_> {
    fn tx_token(&mut self) -> TxToken<'_> {
        TxToken {
            tx: self.tx,
            pool: self.pool,
            link: self.link,
            counters: self.counters,
            meta: PacketMeta::default(),
        }
    }
}

pub(crate) struct RxToken<'a>(&'a [u8], PacketMeta);

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }

    fn meta(&self) -> PacketMeta {
        self.1
    }
}

pub(crate) struct TxToken<'a> {
    tx: &'a mut Vec<Frame>,
    pool: &'a mut FramePool,
    link: Link,
    counters: &'a mut HostCounters,
    meta: PacketMeta,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = self.pool.get();
        frame.resize(len);
        let r = f(frame.data_mut());
        // A datagram sent in answer to a traced one names it (see
        // `wire::Frame::trace`).
        frame.trace = u64::from(self.meta.id);
        self.send(frame);
        r
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.meta = meta;
    }
}

impl TxToken<'_> {
    /// Sends what smoltcp wrote: a TCP segment finished, a datagram larger
    /// than the link cut into fragments or dropped.
    fn send(self, mut frame: Frame) {
        let view = EthernetHeader::parse(frame.data())
            .ok()
            .filter(|eth| matches!(eth.ethertype, ETHERTYPE_IPV4 | ETHERTYPE_IPV6))
            .and_then(|eth| IpView::parse(frame.data(), eth.payload_offset).ok());
        let Some(v) = view else {
            return self.tx.push(frame);
        };
        if v.proto == PROTO_TCP {
            let mss = self.meta.segmentation_offload_size.map(|m| m.get());
            finish_tcp(&mut frame, &v, self.link, mss);
            return self.tx.push(frame);
        }
        if frame.len() <= self.link.max_frame {
            return self.tx.push(frame);
        }
        let mtu = self.link.max_frame - v.l3;
        let cut = match v.family {
            Family::V4 => wire::fragment::ipv4(&frame, &v, mtu, self.pool, self.tx).is_ok(),
            Family::V6 => false,
        };
        if cut {
            self.counters.fragmented += 1;
        } else {
            self.counters.too_big += 1;
        }
        self.pool.put(frame);
    }
}

const SYN: u8 = 0x02;

/// Completes a TCP segment smoltcp left without a checksum: its MSS
/// option set from the link, and its checksum in full or, for a segment
/// larger than the segment size (`meta_mss`, smoltcp's, caps it), as a GSO
/// super-frame with the pseudo-header sum the segmenting side completes.
fn finish_tcp(frame: &mut Frame, v: &IpView, link: Link, meta_mss: Option<u16>) {
    let data = frame.data_mut();
    let header = data.get(v.l4 + 12).map_or(0, |b| usize::from(b >> 4) * 4);
    if header < 20 || v.l4 + header > v.end {
        return;
    }
    let link_mss = link.mss(v.family);
    if data[v.l4 + 13] & SYN != 0 {
        if let Some(at) = mss_at(&data[v.l4..v.l4 + header]) {
            let mss = link_mss.min(usize::from(u16::MAX)) as u16;
            data[v.l4 + at..v.l4 + at + 2].copy_from_slice(&mss.to_be_bytes());
        }
    }
    let l4_len = v.end - v.l4;
    let payload = l4_len - header;
    // The segment size smoltcp would have chosen on the link itself.
    let peer = link.peer_mss.map_or(link_mss, usize::from);
    let mut segment = link_mss.min(peer).saturating_sub(header - 20);
    if let Some(m) = meta_mss {
        segment = segment.min(usize::from(m));
    }
    data[v.l4 + 16..v.l4 + 18].fill(0);
    if payload <= segment || segment == 0 {
        let c = ip::transport_checksum(v.src, v.dst, PROTO_TCP, &data[v.l4..v.end]);
        data[v.l4 + 16..v.l4 + 18].copy_from_slice(&c.to_be_bytes());
        return;
    }
    let pseudo = checksum::pseudo_header(
        &ip::octets(v.src),
        &ip::octets(v.dst),
        PROTO_TCP,
        l4_len as u32,
    );
    data[v.l4 + 16..v.l4 + 18].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
    let gso = match v.family {
        Family::V4 => GsoType::TcpV4,
        Family::V6 => GsoType::TcpV6,
    };
    frame.hdr = VnetHdr::partial_checksum(v.l4 as u16, 16).with_gso(
        gso,
        segment.min(usize::from(u16::MAX)) as u16,
        (v.l4 + header) as u16,
    );
}
