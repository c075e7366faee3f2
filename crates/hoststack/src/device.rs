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
//! TCP over IPv4 leaves with segmentation offload, as from a NIC with TSO: smoltcp
//! may hand over segments of up to 64 KiB with the peer's MSS attached;
//! they go out as GSO super-frames with a partial checksum, which an
//! offloading TAP takes whole and every other port gets cut by the
//! fabric's egress path. An IPv6 segment carrying data leaves with its
//! checksum partial for crate::coalesce, which completes it only for a
//! segment it cannot join; other TCP segments get their checksum here, so
//! that frames that need no offload are plain.

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
/// super-frames cross a tunnel whole.
const SUPER_FRAME: usize = wire::vxlan::MAX_OFFLOAD_FRAME;

/// A device offering at most one frame and collecting transmissions.
pub(crate) struct Port<'a> {
    pub rx: Option<&'a [u8]>,
    /// The trace id of the frame in `rx` (0 if untraced): smoltcp keeps it
    /// with the datagram it carries.
    pub rx_trace: u32,
    pub tx: &'a mut Vec<Frame>,
    pub pool: &'a mut FramePool,
    /// The largest Ethernet frame on the link, without FCS.
    pub max_frame: usize,
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
        caps.max_transmission_unit = self.max_frame;
        // TCP checksums are verified by smoltcp and filled in here.
        caps.checksum.tcp = Checksum::Rx;
        // IPv4 only: smoltcp 0.14 drops an IPv6 packet larger than the
        // MTU even when it carries segmentation metadata (its IPv6 dispatch
        // never looks at it), so IPv6 TCP leaves in MSS-sized segments,
        // which crate::coalesce joins into super-frames afterwards.
        caps.segmentation.tcpv4 = NonZeroUsize::new(SUPER_FRAME);
        caps
    }
}

impl Port<'_> {
    fn tx_token(&mut self) -> TxToken<'_> {
        TxToken {
            tx: self.tx,
            pool: self.pool,
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
    meta: PacketMeta,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = self.pool.get();
        frame.resize(len);
        let r = f(frame.data_mut());
        let mss = self.meta.segmentation_offload_size.map(|m| m.get());
        finish_tcp(&mut frame, mss);
        // A datagram sent in answer to a traced one names it (see
        // `wire::Frame::trace`).
        frame.trace = u64::from(self.meta.id);
        self.tx.push(frame);
        r
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.meta = meta;
    }
}

/// Completes a TCP segment smoltcp left without a checksum: in full, or,
/// for a segment to be cut at `mss`, as a GSO super-frame with the
/// pseudo-header sum the segmenting side completes.
fn finish_tcp(frame: &mut Frame, mss: Option<u16>) {
    let data = frame.data_mut();
    let Ok(eth) = EthernetHeader::parse(data) else {
        return;
    };
    if !matches!(eth.ethertype, ETHERTYPE_IPV4 | ETHERTYPE_IPV6) {
        return;
    }
    let Ok(v) = IpView::parse(data, eth.payload_offset) else {
        return;
    };
    let header = data.get(v.l4 + 12).map_or(0, |b| usize::from(b >> 4) * 4);
    if v.proto != PROTO_TCP || header < 20 || v.l4 + header > v.end {
        return;
    }
    let l4_len = v.end - v.l4;
    let payload = l4_len - header;
    data[v.l4 + 16..v.l4 + 18].fill(0);
    // An IPv6 segment with data is one crate::coalesce may join to the
    // next: its checksum is left partial, completed there once for a
    // segment left alone and never for one joined into a super-frame.
    let joinable = v.family == Family::V6 && payload > 0;
    let cut_at = mss.filter(|&m| payload > usize::from(m));
    if cut_at.is_none() && !joinable {
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
    frame.hdr = VnetHdr::partial_checksum(v.l4 as u16, 16);
    if let Some(mss) = cut_at {
        let gso = match v.family {
            Family::V4 => GsoType::TcpV4,
            Family::V6 => GsoType::TcpV6,
        };
        frame.hdr = frame.hdr.with_gso(gso, mss, (v.l4 + header) as u16);
    }
}
