//! Software offload: what the kernel does in `skb_checksum_help` and
//! `skb_segment` for a device that cannot take a frame as it is.
//!
//! A TAP opened with offloads hands scratchnet TCP super-frames of up to
//! 64 KiB with a partial checksum. Ports that can take them pass them on
//! untouched; a port that cannot (a TAP without offload, an in-process host,
//! a tunnel) gets wire-sized frames from a [`Segmenter`]: each segment with
//! fixed IP lengths, IDs, sequence numbers, flags and full checksums.

use crate::checksum;
use crate::ether::{EthernetHeader, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::vnet::{GsoType, VnetHdr};

/// Why a frame's offload request cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffloadError {
    #[error("checksum offset {start}+{offset} lies beyond the {len}-byte frame")]
    ChecksumOutOfFrame { start: u16, offset: u16, len: usize },
    #[error("GSO type {0:?} is not supported")]
    UnsupportedGso(GsoType),
    #[error("GSO super-frame with segment size 0")]
    ZeroSegmentSize,
    #[error("GSO super-frame headers are malformed: {0}")]
    MalformedHeaders(&'static str),
}

/// Finishes a partial (NEEDS_CSUM) transport checksum in place.
pub fn complete_checksum(frame: &mut [u8], hdr: &VnetHdr) -> Result<(), OffloadError> {
    let start = usize::from(hdr.csum_start);
    let at = start + usize::from(hdr.csum_offset);
    let out_of_frame = || OffloadError::ChecksumOutOfFrame {
        start: hdr.csum_start,
        offset: hdr.csum_offset,
        len: frame.len(),
    };
    if at + 2 > frame.len() {
        return Err(out_of_frame());
    }
    let value = mangle_zero(checksum::finish(checksum::sum(0, &frame[start..])));
    frame[at..at + 2].copy_from_slice(&value.to_be_bytes());
    Ok(())
}

/// A zero result is sent as 0xffff (the same value in one's complement), as
/// the kernel does: for UDP a zero would mean "no checksum".
fn mangle_zero(c: u16) -> u16 {
    if c == 0 {
        0xffff
    } else {
        c
    }
}

/// Cuts super-frames into wire-sized frames, reusing one scratch buffer so
/// that steady-state segmentation does not allocate.
#[derive(Debug, Default)]
pub struct Segmenter {
    scratch: Vec<u8>,
}

impl Segmenter {
    pub fn new() -> Segmenter {
        Segmenter::default()
    }

    /// Hands `emit` the frame ready for a port without offloads: the frame
    /// itself when it needs nothing, with its checksum completed, or each
    /// segment of a super-frame. Returns how many frames were emitted.
    pub fn emit(
        &mut self,
        frame: &[u8],
        hdr: &VnetHdr,
        mut emit: impl FnMut(&[u8]),
    ) -> Result<usize, OffloadError> {
        if !hdr.needs_work() {
            emit(frame);
            return Ok(1);
        }
        if !hdr.is_gso() {
            self.scratch.clear();
            self.scratch.extend_from_slice(frame);
            complete_checksum(&mut self.scratch, hdr)?;
            emit(&self.scratch);
            return Ok(1);
        }
        let layout = Layout::of(frame, hdr)?;
        let mss = usize::from(hdr.gso_size);
        let payload = &frame[layout.headers_len..];
        let count = payload.len().div_ceil(mss);
        for (i, chunk) in payload.chunks(mss).enumerate() {
            self.scratch.clear();
            self.scratch.extend_from_slice(&frame[..layout.headers_len]);
            self.scratch.extend_from_slice(chunk);
            layout.fix_segment(&mut self.scratch, i, i + 1 == count, i * mss);
            emit(&self.scratch);
        }
        Ok(count)
    }
}

/// Where the headers of a super-frame are.
struct Layout {
    l3: usize,
    l4: usize,
    headers_len: usize,
    ipv4: bool,
    tcp: bool,
}

const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

impl Layout {
    fn of(frame: &[u8], hdr: &VnetHdr) -> Result<Layout, OffloadError> {
        let malformed = OffloadError::MalformedHeaders;
        if hdr.gso_size == 0 {
            return Err(OffloadError::ZeroSegmentSize);
        }
        let tcp = match hdr.gso_type() {
            GsoType::TcpV4 | GsoType::TcpV6 => true,
            GsoType::UdpL4 => false,
            other => return Err(OffloadError::UnsupportedGso(other)),
        };
        let eth = EthernetHeader::parse(frame).map_err(|_| malformed("short Ethernet header"))?;
        let ipv4 = match eth.ethertype {
            ETHERTYPE_IPV4 => true,
            ETHERTYPE_IPV6 => false,
            _ => return Err(malformed("not IP")),
        };
        let l3 = eth.payload_offset;
        let l4 = usize::from(hdr.csum_start);
        let min_l3 = if ipv4 { 20 } else { 40 };
        if l4 < l3 + min_l3 {
            return Err(malformed("transport header inside the IP header"));
        }
        if ipv4 {
            // The segments' header checksums are computed over the IHL the
            // packet claims: it must be where csum_start says the IP
            // header ends.
            let ihl = frame.get(l3).map_or(0, |b| usize::from(b & 0x0f) * 4);
            if l3 + ihl != l4 {
                return Err(malformed("IPv4 header length disagrees with csum_start"));
            }
        }
        let l4_len = if tcp {
            let off = *frame.get(l4 + 12).ok_or(malformed("short TCP header"))?;
            usize::from(off >> 4) * 4
        } else {
            8
        };
        if l4_len < if tcp { 20 } else { 8 } || l4 + l4_len > frame.len() {
            return Err(malformed("transport header beyond the frame"));
        }
        Ok(Layout {
            l3,
            l4,
            headers_len: l4 + l4_len,
            ipv4,
            tcp,
        })
    }

    /// Rewrites the copied headers of segment `index` (payload starting at
    /// `offset` bytes into the super-frame's payload) and its checksums.
    fn fix_segment(&self, seg: &mut [u8], index: usize, last: bool, offset: usize) {
        let (l3, l4) = (self.l3, self.l4);
        let l4_total = (seg.len() - l4) as u32;
        if self.ipv4 {
            let total = (seg.len() - l3) as u16;
            seg[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
            let id = u16::from_be_bytes([seg[l3 + 4], seg[l3 + 5]]).wrapping_add(index as u16);
            seg[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
            let ihl = usize::from(seg[l3] & 0x0f) * 4;
            seg[l3 + 10..l3 + 12].fill(0);
            let c = checksum::finish(checksum::sum(0, &seg[l3..l3 + ihl]));
            seg[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            let payload_len = (seg.len() - l3 - 40) as u16;
            seg[l3 + 4..l3 + 6].copy_from_slice(&payload_len.to_be_bytes());
        }
        let (check_at, proto) = if self.tcp {
            let seq = u32::from_be_bytes([seg[l4 + 4], seg[l4 + 5], seg[l4 + 6], seg[l4 + 7]]);
            let seq = seq.wrapping_add(offset as u32);
            seg[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
            if !last {
                seg[l4 + 13] &= !(TCP_FIN | TCP_PSH);
            }
            if index > 0 {
                seg[l4 + 13] &= !TCP_CWR;
            }
            (l4 + 16, 6)
        } else {
            seg[l4 + 4..l4 + 6].copy_from_slice(&(l4_total as u16).to_be_bytes());
            (l4 + 6, 17)
        };
        seg[check_at..check_at + 2].fill(0);
        let (src, dst) = if self.ipv4 {
            (l3 + 12..l3 + 16, l3 + 16..l3 + 20)
        } else {
            (l3 + 8..l3 + 24, l3 + 24..l3 + 40)
        };
        let pseudo = checksum::pseudo_header(&seg[src], &seg[dst], proto, l4_total);
        let c = mangle_zero(checksum::finish(checksum::sum(pseudo, &seg[l4..])));
        seg[check_at..check_at + 2].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ether::build_frame;
    use crate::Mac;

    fn ipv4_tcp_superframe(payload_len: usize, flags: u8) -> (Vec<u8>, VnetHdr) {
        let mut ip = vec![
            0x45, 0, 0, 0, 0x10, 0x00, 0x40, 0x00, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let total = (20 + 20 + payload_len) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&5001u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&40000u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        // The partial checksum a sender leaves: the pseudo-header sum only.
        let pseudo =
            checksum::pseudo_header(&ip[12..16], &ip[16..20], 6, (20 + payload_len) as u32);
        tcp[16..18].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        let payload: Vec<u8> = (0..payload_len).map(|i| (i % 251) as u8).collect();
        let body = [ip, tcp, payload].concat();
        let frame = build_frame(
            Mac([2, 0, 0, 0, 0, 2]),
            Mac([2, 0, 0, 0, 0, 1]),
            ETHERTYPE_IPV4,
            &body,
        );
        let mut raw = [0u8; 10];
        raw[0] = 1; // NEEDS_CSUM
        raw[1] = 1; // TCPV4
        raw[2..4].copy_from_slice(&54u16.to_ne_bytes());
        raw[4..6].copy_from_slice(&1448u16.to_ne_bytes());
        raw[6..8].copy_from_slice(&34u16.to_ne_bytes());
        raw[8..10].copy_from_slice(&16u16.to_ne_bytes());
        (frame, VnetHdr::parse(&raw).expect("10 bytes"))
    }

    fn transport_checksum_ok(seg: &[u8]) -> bool {
        let l4_len = (seg.len() - 34) as u32;
        let pseudo = checksum::pseudo_header(&seg[26..30], &seg[30..34], seg[23], l4_len);
        checksum::fold(checksum::sum(pseudo, &seg[34..])) == 0xffff
    }

    #[test]
    fn tcp_superframe_is_cut_like_the_kernel_does() {
        let (frame, hdr) = ipv4_tcp_superframe(4000, 0x18 | TCP_FIN); // PSH|ACK|FIN
        let mut segs = Vec::new();
        let n = Segmenter::new()
            .emit(&frame, &hdr, |s| segs.push(s.to_vec()))
            .expect("segmentable");
        assert_eq!(n, 3);
        let mut reassembled = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert!(s.len() <= 14 + 20 + 20 + 1448);
            assert_eq!(
                usize::from(u16::from_be_bytes([s[16], s[17]])),
                s.len() - 14
            );
            assert_eq!(
                checksum::fold(checksum::sum(0, &s[14..34])),
                0xffff,
                "IP checksum"
            );
            assert!(transport_checksum_ok(s), "TCP checksum of segment {i}");
            assert_eq!(u16::from_be_bytes([s[18], s[19]]), 0x1000 + i as u16);
            let seq = u32::from_be_bytes([s[38], s[39], s[40], s[41]]);
            assert_eq!(seq, 1000 + 1448 * i as u32);
            let last = i == 2;
            assert_eq!(
                s[47] & (TCP_FIN | TCP_PSH) != 0,
                last,
                "FIN/PSH only on the last"
            );
            reassembled.extend_from_slice(&s[54..]);
        }
        assert_eq!(reassembled, &frame[54..]);
    }

    #[test]
    fn partial_checksum_is_completed() {
        let (frame, mut hdr) = ipv4_tcp_superframe(100, 0x18);
        hdr.set_gso_type(GsoType::None);
        let mut out = Vec::new();
        Segmenter::new()
            .emit(&frame, &hdr, |s| out.push(s.to_vec()))
            .expect("valid");
        assert_eq!(out.len(), 1);
        assert!(transport_checksum_ok(&out[0]));
    }

    #[test]
    fn plain_frames_pass_through_and_bad_requests_are_errors() {
        let (frame, hdr) = ipv4_tcp_superframe(10, 0x10);
        let mut seen = 0;
        Segmenter::new()
            .emit(&frame, &VnetHdr::PLAIN, |s| {
                assert_eq!(s, &frame[..]);
                seen += 1;
            })
            .expect("plain");
        assert_eq!(seen, 1);

        let mut bad = hdr;
        bad.csum_start = 60_000;
        assert!(Segmenter::new().emit(&frame, &bad, |_| {}).is_err());
        let mut bad = hdr;
        bad.gso_size = 0;
        assert_eq!(
            Segmenter::new().emit(&frame, &bad, |_| {}),
            Err(OffloadError::ZeroSegmentSize)
        );
        let mut bad = hdr;
        bad.csum_start = 20;
        assert!(Segmenter::new().emit(&frame, &bad, |_| {}).is_err());
        // A header length that lies about where the transport header is,
        // for every IHL, with csum_start at the real transport header.
        for ihl in 0..16u8 {
            let mut lying = frame.clone();
            lying[14] = 0x40 | ihl;
            let r = Segmenter::new().emit(&lying, &hdr, |_| {});
            assert_eq!(r.is_ok(), ihl == 5, "IHL {ihl}");
        }
        assert!(Segmenter::new().emit(&frame[..40], &hdr, |_| {}).is_err());
    }
}
