//! IPv6 TCP segments a socket sent in one go, joined into one GSO
//! super-frame.
//!
//! smoltcp 0.14 segments IPv6 TCP itself (its IPv6 path drops a packet
//! larger than the MTU, segmentation metadata or not), so a burst of a
//! connection's data leaves as dozens of MSS-sized frames, each a pass
//! through the fabric and a write to a TAP. What IPv4 gets from TSO is won
//! back here the other way round: consecutive segments of the burst that
//! differ only in their sequence number become one super-frame with the
//! segment size in its virtio-net header (a partial checksum, `TcpV6`), as
//! Linux's GRO would merge them on the way in. A port that takes offloads
//! gets it whole; every other port gets the very segments back from the
//! fabric's segmenter. The segments arrive with their checksums deferred,
//! so a joined segment's bytes are summed once, by whoever completes the
//! super-frame (often the kernel's offload, never here).

use wire::ether::{EthernetHeader, ETHERTYPE_IPV6};
use wire::ip::PROTO_TCP;
use wire::{checksum, Frame, FramePool, GsoType, VnetHdr};

/// The largest frame a super-frame may grow to (what one VXLAN datagram
/// carries, as for IPv4 TSO).
const MAX_FRAME: usize = wire::vxlan::MAX_OFFLOAD_FRAME;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

/// An IPv6 TCP segment without extension headers, as smoltcp builds them.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Offset of the TCP header, and its length.
    l4: usize,
    header: usize,
    seq: u32,
    flags: u8,
    payload: usize,
}

fn segment(f: &Frame) -> Option<Segment> {
    let data = f.data();
    let eth = EthernetHeader::parse(data).ok()?;
    let l3 = eth.payload_offset;
    if eth.ethertype != ETHERTYPE_IPV6 || f.hdr.is_gso() || data.get(l3 + 6) != Some(&PROTO_TCP) {
        return None;
    }
    let l4 = l3 + 40;
    let ip_payload = usize::from(u16::from_be_bytes([data[l3 + 4], data[l3 + 5]]));
    let header = usize::from(*data.get(l4 + 12)? >> 4) * 4;
    if header < 20 || ip_payload < header || l4 + ip_payload != data.len() {
        return None;
    }
    Some(Segment {
        l4,
        header,
        seq: u32::from_be_bytes([data[l4 + 4], data[l4 + 5], data[l4 + 6], data[l4 + 7]]),
        flags: data[l4 + 13],
        payload: ip_payload - header,
    })
}

/// Whether `next` may follow `run` (its first segment `first`, `count`
/// segments so far) in one super-frame: the same headers but for length,
/// sequence number, checksum and a PSH or FIN it may end with; contiguous;
/// no larger than the first; and room left.
fn follows(run: &Frame, first: &Segment, count: usize, next: &Frame, seg: &Segment) -> bool {
    let (a, b) = (run.data(), next.data());
    let l4 = first.l4;
    let same = |from: usize, to: usize| a.get(from..to) == b.get(from..to);
    let mss = first.payload;
    seg.l4 == l4
        && seg.header == first.header
        && seg.flags & !(PSH | FIN) == ACK
        && seg.payload > 0
        && seg.payload <= mss
        && seg.seq == first.seq.wrapping_add((count * mss) as u32)
        && same(0, l4 - 36) // Ethernet; IPv6 version, class and flow label
        && same(l4 - 34, l4 + 4) // next header, hop limit, addresses, ports
        && same(l4 + 8, l4 + 13) // ACK number, data offset
        && same(l4 + 14, l4 + 16) // window
        && same(l4 + 18, l4 + first.header) // urgent pointer, options
        && a.len() + seg.payload <= MAX_FRAME
        && a.len() - l4 + seg.payload <= usize::from(u16::MAX)
}

/// Joins runs of mergeable segments in `out[start..]` (frames one socket
/// just sent, in order) into super-frames; the frames merged away go back
/// to `pool`; `burst` is room the caller keeps, so that joining allocates
/// nothing.
pub(crate) fn tcp6(
    out: &mut Vec<Frame>,
    start: usize,
    pool: &mut FramePool,
    burst: &mut Vec<Frame>,
) {
    // A socket's frames are all of its family: an IPv4 burst (TSO's
    // already) costs one comparison here.
    let ipv6 = out
        .get(start)
        .is_some_and(|f| f.data().get(12..14) == Some(&ETHERTYPE_IPV6.to_be_bytes()[..]));
    if !ipv6 {
        return;
    }
    if out.len() - start < 2 {
        out[start..].iter_mut().for_each(complete);
        return;
    }
    burst.clear();
    burst.extend(out.drain(start..));
    // The run being built: its frame, first segment and segment count.
    let mut run: Option<(Frame, Segment, usize)> = None;
    for f in burst.drain(..) {
        let seg = segment(&f);
        if let (Some((r, first, count)), Some(seg)) = (run.as_mut(), seg) {
            let mergeable = first.flags == ACK && first.payload > 0;
            if mergeable && follows(r, first, *count, &f, &seg) {
                r.extend_from_slice(&f.data()[seg.l4 + seg.header..]);
                // The last segment's flags (a PSH, a FIN) end the run.
                r.data_mut()[first.l4 + 13] = seg.flags;
                first.flags = seg.flags;
                *count += 1;
                pool.put(f);
                continue;
            }
        }
        if let Some(done) = run.take() {
            out.push(finish(done));
        }
        match seg {
            Some(seg) => run = Some((f, seg, 1)),
            None => {
                let mut f = f;
                complete(&mut f);
                out.push(f);
            }
        }
    }
    if let Some(done) = run {
        out.push(finish(done));
    }
}

/// A run of one segment as it was; of several, a super-frame: the IPv6
/// length for the whole, the pseudo-header sum in the checksum field and
/// the segment size in its virtio-net header.
fn finish((mut f, first, count): (Frame, Segment, usize)) -> Frame {
    if count < 2 {
        complete(&mut f);
        return f;
    }
    let l4 = first.l4;
    let l4_len = f.len() - l4;
    let data = f.data_mut();
    data[l4 - 36..l4 - 34].copy_from_slice(&(l4_len as u16).to_be_bytes());
    let src: [u8; 16] = data[l4 - 32..l4 - 16].try_into().unwrap_or([0; 16]);
    let dst: [u8; 16] = data[l4 - 16..l4].try_into().unwrap_or([0; 16]);
    let pseudo = checksum::pseudo_header(&src, &dst, PROTO_TCP, l4_len as u32);
    data[l4 + 16..l4 + 18].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
    f.hdr = VnetHdr::partial_checksum(l4 as u16, 16).with_gso(
        GsoType::TcpV6,
        first.payload as u16,
        (l4 + first.header) as u16,
    );
    f
}

/// A segment left alone gets the checksum its sender deferred (see
/// `crate::device`), so that only super-frames leave partial.
fn complete(f: &mut Frame) {
    if f.hdr.needs_csum() && !f.hdr.is_gso() {
        let hdr = f.hdr;
        if wire::offload::complete_checksum(f.data_mut(), &hdr).is_ok() {
            f.hdr = VnetHdr::PLAIN;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv6Addr};
    use wire::offload::Segmenter;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x20);

    /// A complete IPv6 TCP segment: timestamps option, `payload` bytes.
    fn seg(seq: u32, flags: u8, payload: &[u8]) -> Frame {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd];
        let tcp_len = 32 + payload.len();
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        f.extend_from_slice(&[PROTO_TCP, 64]);
        f.extend_from_slice(&SRC.octets());
        f.extend_from_slice(&DST.octets());
        let mut tcp = vec![0, 80, 0xc3, 0x50];
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&77u32.to_be_bytes());
        tcp.extend_from_slice(&[8 << 4, flags, 0x10, 0, 0, 0, 0, 0]);
        tcp.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7]);
        tcp.extend_from_slice(payload);
        let c = ip::transport_checksum(IpAddr::V6(SRC), IpAddr::V6(DST), PROTO_TCP, &tcp);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&tcp);
        Frame::from_slice(&f)
    }

    use wire::ip;

    /// `f` as the device leaves a data segment: the checksum deferred.
    fn deferred(f: &Frame) -> Frame {
        let mut d = Frame::from_slice(f.data());
        let len = d.len() - 54;
        let pseudo = checksum::pseudo_header(&SRC.octets(), &DST.octets(), PROTO_TCP, len as u32);
        d.data_mut()[54 + 16..54 + 18].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        d.hdr = VnetHdr::partial_checksum(54, 16);
        d
    }

    #[test]
    fn a_burst_becomes_one_super_frame_that_cuts_back_into_the_same_segments() {
        let body: Vec<u8> = (0..2500u32).map(|i| (i * 7) as u8).collect();
        let sent = vec![
            seg(1000, ACK, &body[..1000]),
            seg(2000, ACK, &body[1000..2000]),
            seg(3000, ACK | PSH, &body[2000..]),
        ];
        let mut out: Vec<Frame> = sent.iter().map(deferred).collect();
        let mut pool = FramePool::new(1514, 8);
        tcp6(&mut out, 0, &mut pool, &mut Vec::new());
        assert_eq!(out.len(), 1);
        let hdr = out[0].hdr;
        assert_eq!((hdr.gso_type(), hdr.gso_size), (GsoType::TcpV6, 1000));
        let mut again = Vec::new();
        let n = Segmenter::new()
            .emit(out[0].data(), &hdr, |s| again.push(s.to_vec()))
            .expect("cut");
        assert_eq!(n, 3);
        for (cut, orig) in again.iter().zip(&sent) {
            assert_eq!(cut.as_slice(), orig.data());
        }
    }

    #[test]
    fn only_contiguous_plain_segments_join() {
        let body = [5u8; 1000];
        let v4 = Frame::from_slice(&[0u8; 60]);
        let mut out = vec![
            seg(1000, ACK, &body),
            seg(2000, ACK, &body),
            seg(5000, ACK, &body), // a gap: a retransmission, say
            seg(6000, ACK | FIN, &body[..10]),
            v4,
            seg(7000, ACK, &body),
        ];
        let mut pool = FramePool::new(1514, 8);
        tcp6(&mut out, 0, &mut pool, &mut Vec::new());
        let sizes: Vec<(usize, bool)> = out.iter().map(|f| (f.len(), f.hdr.is_gso())).collect();
        assert_eq!(
            sizes,
            [
                (86 + 2000, true),
                (86 + 1010, true),
                (60, false),
                (1086, false)
            ]
        );
        assert_eq!(out[1].data()[54 + 13], ACK | FIN);
    }

    #[test]
    fn a_segment_left_alone_leaves_with_its_checksum_complete() {
        let body = [9u8; 700];
        let alone = seg(1000, ACK | PSH, &body);
        let gap = seg(9000, ACK, &body);
        for burst in [vec![&alone], vec![&alone, &gap]] {
            let mut out: Vec<Frame> = burst.iter().map(|f| deferred(f)).collect();
            tcp6(&mut out, 0, &mut FramePool::new(1514, 8), &mut Vec::new());
            for (f, orig) in out.iter().zip(&burst) {
                assert!(!f.hdr.needs_work());
                assert_eq!(f.data(), orig.data());
            }
        }
    }
}
