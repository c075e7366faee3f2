//! Makes an arbitrary frame's checksums valid, whatever else is wrong with
//! it, so that a fuzzer's input gets past the checksum checks to the
//! parsers behind them (DHCP, NAT, ICMP quotes, the segmenter).
//!
//! Lengths and header fields are left as the input has them: only the
//! IPv4 header checksum and the TCP, UDP, ICMP or IGMP checksum over the bytes
//! that are there are written, and, for an ICMP error, those of the packet
//! it quotes. For IPv6 ([`fix_ipv6`]) the payload length is set to the
//! bytes there are, and the upper-layer checksum behind any extension
//! headers (TCP, UDP, ICMPv6, an ICMPv6 error's quote first) is written.

use wire::checksum;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;

/// Where the IP packet starts in an Ethernet frame (after any 802.1Q tags).
pub fn ip_offset(frame: &[u8]) -> Option<usize> {
    let mut at = 12;
    loop {
        let t = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
        match t {
            ETHERTYPE_VLAN => at += 4,
            ETHERTYPE_IPV4 => return Some(at + 2),
            _ => return None,
        }
    }
}

/// Fixes the checksums of the IPv4 packet in an Ethernet frame, if any.
pub fn fix_frame(frame: &mut [u8]) {
    if let Some(at) = ip_offset(frame) {
        fix_ipv4(&mut frame[at..]);
    }
}

/// Fixes the checksums of an IPv4 packet (and of what it carries).
pub fn fix_ipv4(p: &mut [u8]) {
    let Some(&first) = p.first() else { return };
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || p.len() < ihl {
        return;
    }
    let total = usize::from(u16::from_be_bytes([p[2], p[3]])).clamp(ihl, p.len());
    let fragment = u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0;
    if !fragment {
        let (src, dst) = ([p[12], p[13], p[14], p[15]], [p[16], p[17], p[18], p[19]]);
        let proto = p[9];
        fix_transport(proto, &src, &dst, &mut p[ihl..total]);
    }
    p[10..12].fill(0);
    let c = checksum::finish(checksum::sum(0, &p[..ihl]));
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

fn fix_transport(proto: u8, src: &[u8; 4], dst: &[u8; 4], l4: &mut [u8]) {
    let at = match proto {
        6 => 16,
        17 => 6,
        1 | 2 => 2, // ICMP, IGMP
        _ => return,
    };
    if l4.len() < at + 2 {
        return;
    }
    if proto == 1 && l4.len() >= 8 && matches!(l4[0], 3 | 4 | 5 | 11 | 12) {
        fix_ipv4(&mut l4[8..]); // the quoted packet first
    }
    l4[at..at + 2].fill(0);
    let start = if proto == 1 || proto == 2 {
        0
    } else {
        checksum::pseudo_header(src, dst, proto, l4.len() as u32)
    };
    let c = checksum::finish(checksum::sum(start, l4));
    let c = if proto == 17 && c == 0 { 0xffff } else { c };
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Fixes an IPv6 packet: its payload length, and the checksum of what it
/// carries behind its extension headers (first the packet an ICMPv6 error
/// quotes).
pub fn fix_ipv6(p: &mut [u8]) {
    if p.len() < 40 || p[0] >> 4 != 6 {
        return;
    }
    let payload = ((p.len() - 40).min(65535) as u16).to_be_bytes();
    p[4..6].copy_from_slice(&payload);
    let Ok(v) = wire::ip::IpView::parse_quote(p, 0) else {
        return;
    };
    if matches!(v.fragment, wire::ip::Fragment::Later { .. }) {
        return;
    }
    let at = match v.proto {
        6 => 16,
        17 => 6,
        58 => 2,
        _ => return,
    };
    let (l4, end) = (v.l4, v.end.min(p.len()));
    if end < l4 + at + 2 {
        return;
    }
    if v.proto == 58 && end >= l4 + 48 && p[l4] < 128 {
        fix_ipv6(&mut p[l4 + 8..end]); // the quoted packet first
    }
    let (src, dst) = (&p[8..24].to_vec(), &p[24..40].to_vec());
    p[l4 + at..l4 + at + 2].fill(0);
    let pseudo = checksum::pseudo_header(src, dst, v.proto, (end - l4) as u32);
    let c = checksum::finish(checksum::sum(pseudo, &p[l4..end]));
    let c = if v.proto == 17 && c == 0 { 0xffff } else { c };
    p[l4 + at..l4 + at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_packets_verify() {
        let mut p = vec![0x45, 0, 0, 36, 0, 0, 0, 0, 64, 17, 0xde, 0xad];
        p.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(&[0, 68, 0, 67, 0, 16, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8]);
        fix_ipv4(&mut p);
        assert_eq!(checksum::fold(checksum::sum(0, &p[..20])), 0xffff);
        let pseudo = checksum::pseudo_header(&p[12..16], &p[16..20], 17, 16);
        assert_eq!(checksum::fold(checksum::sum(pseudo, &p[20..])), 0xffff);
    }

    #[test]
    fn fixed_ipv6_packets_verify() {
        // Destination options, then UDP.
        let mut p = vec![0x60, 0, 0, 0, 0, 0, 60, 64];
        p.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]);
        p.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]);
        p.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&[0, 1, 0, 2, 0, 12, 0xbe, 0xef, 1, 2, 3, 4]);
        fix_ipv6(&mut p);
        let v = wire::ip::IpView::parse(&p, 0).expect("valid");
        let pseudo = checksum::pseudo_header(&p[8..24], &p[24..40], 17, 12);
        assert_eq!(checksum::fold(checksum::sum(pseudo, v.payload(&p))), 0xffff);
    }
}
