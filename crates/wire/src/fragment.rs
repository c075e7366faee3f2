//! Cutting an IPv4 packet into fragments (RFC 791): what a router does for
//! a smaller next link, and a host for a datagram larger than its own.

use crate::ip::{Fragment, IpView};
use crate::{checksum, Frame, FramePool};

/// `mtu` leaves no room for a header and 8 bytes of payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom;

/// Cuts the IPv4 packet `view` reads in `frame` into fragments of at most
/// `mtu` bytes of IP, appended to `out` (frames from `pool`, each with
/// `frame`'s link header and trace id); returns how many. Options with the
/// copy flag go into every fragment, the rest only into the first. A
/// fragment cut again keeps its place: offsets count from its own, and
/// its last piece keeps its More Fragments bit. `frame` must carry no
/// partial checksum (a receiver checks the reassembled packet).
pub fn ipv4(
    frame: &Frame,
    view: &IpView,
    mtu: usize,
    pool: &mut FramePool,
    out: &mut Vec<Frame>,
) -> Result<usize, NoRoom> {
    let data = frame.data();
    let l3 = view.l3;
    let (base, last_more) = match view.fragment {
        Fragment::Whole => (0, false),
        Fragment::First => (0, true),
        Fragment::Later { offset } => (usize::from(offset), data[l3 + 6] & 0x20 != 0),
    };
    let header = &data[l3..view.l4];
    let payload = &data[view.l4..view.end];
    let later = copied_options_header(header);
    if mtu < header.len().max(later.len()) + 8 {
        return Err(NoRoom);
    }
    let mut offset = 0;
    let mut pieces = 0;
    while offset < payload.len() {
        let h: &[u8] = if offset == 0 { header } else { &later };
        let len = ((mtu - h.len()) / 8 * 8).min(payload.len() - offset);
        let more = offset + len < payload.len() || last_more;
        let mut f = pool.get();
        f.extend_from_slice(&data[..l3]);
        f.extend_from_slice(h);
        f.extend_from_slice(&payload[offset..offset + len]);
        let ip = &mut f.data_mut()[l3..];
        ip[0] = 0x40 | (h.len() / 4) as u8;
        ip[2..4].copy_from_slice(&((h.len() + len) as u16).to_be_bytes());
        let flags = (u16::from(more) << 13) | ((base + offset) / 8) as u16;
        ip[6..8].copy_from_slice(&flags.to_be_bytes());
        ip[10..12].fill(0);
        let sum = checksum::finish(checksum::sum(0, &ip[..h.len()]));
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.trace = frame.trace;
        out.push(f);
        pieces += 1;
        offset += len;
    }
    Ok(pieces)
}

/// The header of a later fragment: the base header and the options whose
/// copy flag is set, padded to a multiple of four bytes.
fn copied_options_header(header: &[u8]) -> Vec<u8> {
    let mut h = header[..20].to_vec();
    let mut opts = &header[20..];
    while let Some(&kind) = opts.first() {
        match kind {
            0 => break,
            1 => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1).unwrap_or(&0));
                if len < 2 || len > opts.len() {
                    break;
                }
                if kind & 0x80 != 0 {
                    h.extend_from_slice(&opts[..len]);
                }
                opts = &opts[len..];
            }
        }
    }
    while !h.len().is_multiple_of(4) {
        h.push(0);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame holding an IPv4 UDP packet with a copied option
    /// (type 0x94, router alert) and an uncopied one (type 0x07, record
    /// route), `payload` bytes after the header.
    fn packet(payload: usize) -> Frame {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let options = [0x94, 4, 0, 0, 0x07, 7, 4, 0, 0, 0, 0, 1];
        let header = 20 + options.len();
        let mut ip = vec![
            0x40 | (header / 4) as u8,
            0,
            0,
            0,
            0x12,
            0x34,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ];
        ip.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 7]);
        ip.extend_from_slice(&options);
        ip[2..4].copy_from_slice(&((header + payload) as u16).to_be_bytes());
        let sum = checksum::finish(checksum::sum(0, &ip));
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend((0..payload).map(|i| i as u8));
        Frame::from_slice(&f)
    }

    #[test]
    fn fragments_carry_the_payload_in_order_with_the_copied_options_only_after_the_first() {
        let whole = packet(3000);
        let view = IpView::parse(whole.data(), 14).unwrap();
        let mut pool = FramePool::new(2048, 8);
        let mut out = Vec::new();
        assert_eq!(ipv4(&whole, &view, 1400, &mut pool, &mut out), Ok(3));
        let mut payload = Vec::new();
        for (i, f) in out.iter().enumerate() {
            let v = IpView::parse(f.data(), 14).unwrap();
            let ip = &f.data()[14..];
            assert!(f.len() - 14 <= 1400);
            assert_eq!(checksum::finish(checksum::sum(0, &ip[..v.l4 - 14])), 0);
            assert_eq!(ip[4..6], [0x12, 0x34], "the identification is kept");
            assert_eq!(ip[6] & 0x40, 0, "DF is clear");
            let header = if i == 0 { 32 } else { 24 };
            assert_eq!(v.l4 - 14, header);
            let flags = u16::from_be_bytes([ip[6], ip[7]]);
            assert_eq!(usize::from(flags & 0x1fff) * 8, payload.len());
            assert_eq!(
                flags & 0x2000 != 0,
                i < 2,
                "More Fragments on all but the last"
            );
            payload.extend_from_slice(&f.data()[v.l4..v.end]);
        }
        assert_eq!(payload, whole.data()[14 + 32..]);
    }

    #[test]
    fn an_mtu_without_room_for_eight_bytes_is_refused() {
        let whole = packet(100);
        let view = IpView::parse(whole.data(), 14).unwrap();
        let mut pool = FramePool::new(2048, 8);
        let mut out = Vec::new();
        assert_eq!(ipv4(&whole, &view, 39, &mut pool, &mut out), Err(NoRoom));
        assert!(out.is_empty());
    }
}
