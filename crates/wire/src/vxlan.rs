//! VXLAN (RFC 7348): Ethernet frames inside UDP, so that one switch can
//! span machines. The header is 8 bytes: flags (the I bit, 0x08, says the
//! VNI is valid), 24 reserved bits, the 24-bit VXLAN Network Identifier
//! and 8 more reserved bits. Reserved bits are sent as zero and ignored
//! on receipt, as the RFC says; a header without the I bit is refused.
//!
//! Between two scratchnets a tunnel may carry offload metadata: flag bit
//! 0x04 (reserved in RFC 7348) says that a virtio-net header (see
//! [`crate::VnetHdr`]) precedes the frame, so a 64 KiB TCP super-frame
//! crosses in one datagram. It is only ever sent to a peer configured as
//! scratchnet; a Linux peer would take the header for the frame.

/// The IANA port for VXLAN.
pub const PORT: u16 = 4789;

/// Bytes of the VXLAN header.
pub const HEADER_LEN: usize = 8;

/// Bytes a VXLAN tunnel puts around a frame on an IPv4 path: outer IPv4
/// (20), UDP (8) and VXLAN (8) headers, and the outer Ethernet header
/// (14) of the underlay. A 1500-byte underlay carries 1450-byte frames.
pub const OVERHEAD: usize = 20 + 8 + HEADER_LEN + 14;

/// The largest frame one datagram carries to a scratchnet peer, behind
/// the VXLAN and virtio-net headers (the UDP payload limit is 65,507).
/// Super-frames are made no larger, so that they cross a tunnel whole.
pub const MAX_OFFLOAD_FRAME: usize = 65_507 - HEADER_LEN - crate::VNET_HDR_LEN;

/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

const FLAG_VNI: u8 = 0x08;
const FLAG_VNET: u8 = 0x04;

/// The header for `vni`; `vnet`: a virtio-net header follows it.
pub fn header(vni: u32, vnet: bool) -> [u8; HEADER_LEN] {
    let v = (vni & MAX_VNI).to_be_bytes();
    let flags = if vnet { FLAG_VNI | FLAG_VNET } else { FLAG_VNI };
    [flags, 0, 0, 0, v[1], v[2], v[3], 0]
}

/// Why a datagram is not a VXLAN frame for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Shorter than a header and an Ethernet header.
    Truncated,
    /// The I flag is clear: no valid VNI.
    NoVni,
    /// Another network's frame.
    WrongVni(u32),
}

impl Refusal {
    /// The counter a refusal is counted under.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Truncated => "vxlan-truncated",
            Refusal::NoVni => "vxlan-bad-header",
            Refusal::WrongVni(_) => "vxlan-wrong-vni",
        }
    }
}

/// Checks a datagram's header for `vni`. Accepted, what follows the
/// header is a frame, or (`Ok(true)`) a virtio-net header and a frame.
pub fn check(datagram: &[u8], vni: u32) -> Result<bool, Refusal> {
    if datagram.len() < HEADER_LEN + crate::ether::HEADER_LEN {
        return Err(Refusal::Truncated);
    }
    if datagram[0] & FLAG_VNI == 0 {
        return Err(Refusal::NoVni);
    }
    let got = u32::from_be_bytes([0, datagram[4], datagram[5], datagram[6]]);
    if got != vni {
        return Err(Refusal::WrongVni(got));
    }
    let vnet = datagram[0] & FLAG_VNET != 0;
    if vnet && datagram.len() < HEADER_LEN + crate::VNET_HDR_LEN + crate::ether::HEADER_LEN {
        return Err(Refusal::Truncated);
    }
    Ok(vnet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bad_ones_are_refused() {
        let mut d = header(0x12_3456, false).to_vec();
        assert_eq!(d, [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        d.extend_from_slice(&[0u8; 14]);
        assert_eq!(check(&d, 0x12_3456), Ok(false));
        assert_eq!(check(&d, 7), Err(Refusal::WrongVni(0x12_3456)));
        assert_eq!(check(&d[..20], 0x12_3456), Err(Refusal::Truncated));
        // Reserved bits are ignored; the I flag is not.
        d[1] = 0xff;
        d[7] = 0xff;
        assert_eq!(check(&d, 0x12_3456), Ok(false));
        // The virtio-net extension needs room for its header.
        d[0] = 0x0c;
        assert_eq!(check(&d, 0x12_3456), Err(Refusal::Truncated));
        d.extend_from_slice(&[0u8; 12]);
        assert_eq!(check(&d, 0x12_3456), Ok(true));
        d[0] = 0;
        assert_eq!(check(&d, 0x12_3456), Err(Refusal::NoVni));
    }
}
