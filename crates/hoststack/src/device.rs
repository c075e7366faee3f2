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
//! may hand over segments of up to 64 KiB with the peer's MSS attached;
//! they go out as GSO super-frames with a partial checksum, which an
//! offloading TAP takes whole and every other port gets cut by the
//! fabric's egress path. Other TCP segments get their checksum here, so
//! that frames that need no offload are plain.

use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};
use std::num::NonZeroUsize;
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
    let Ok(eth) = EthernetFrame::new_checked(&mut data[..]) else {
        return;
    };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return;
    }
    let l3 = 14;
    let Ok(ip) = Ipv4Packet::new_checked(&data[l3..]) else {
        return;
    };
    if ip.next_header() != IpProtocol::Tcp {
        return;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let l4 = l3 + usize::from(ip.header_len());
    let l4_len = usize::from(ip.total_len()) - usize::from(ip.header_len());
    let Ok(mut tcp) = TcpPacket::new_checked(&mut data[l4..l4 + l4_len]) else {
        return;
    };
    let payload = tcp.payload_mut().len();
    let header = l4_len - payload;
    match mss {
        Some(mss) if payload > usize::from(mss) => {
            let pseudo = checksum::pseudo_header(&src.octets(), &dst.octets(), 6, l4_len as u32);
            tcp.set_checksum(checksum::fold(pseudo));
            frame.hdr = VnetHdr::partial_checksum(l4 as u16, 16).with_gso(
                GsoType::TcpV4,
                mss,
                (l4 + header) as u16,
            );
        }
        _ => tcp.fill_checksum(&src.into(), &dst.into()),
    }
}
