//! The virtio-net header (`struct virtio_net_hdr`, 10 bytes) that a TAP or
//! TUN device opened with IFF_VNET_HDR puts in front of every frame.
//!
//! It carries the offload state of a frame: whether its transport checksum
//! is still partial (NEEDS_CSUM, with where to finish it) and whether it is a
//! GSO super-frame (type and segment size). The kernel uses the host's byte
//! order for it, as virtio 1.0 does on little-endian hosts.

/// Size of the header in front of each frame.
pub const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at csum_start+csum_offset
/// holds only the pseudo-header sum; the rest must still be added.
const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified by the sender.
const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_ECN`: ORed into gso_type when ECN CWR may be set.
const GSO_ECN: u8 = 0x80;

/// The kind of segmentation a super-frame asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoType {
    None,
    TcpV4,
    TcpV6,
    /// UDP segmentation offload (`GSO_UDP_L4`), Linux 6.2+.
    UdpL4,
    /// A type scratchnet does not know (for example the legacy UFO).
    Other(u8),
}

impl GsoType {
    fn from_raw(raw: u8) -> GsoType {
        match raw & !GSO_ECN {
            0 => GsoType::None,
            1 => GsoType::TcpV4,
            4 => GsoType::TcpV6,
            5 => GsoType::UdpL4,
            other => GsoType::Other(other),
        }
    }

    fn to_raw(self) -> u8 {
        match self {
            GsoType::None => 0,
            GsoType::TcpV4 => 1,
            GsoType::TcpV6 => 4,
            GsoType::UdpL4 => 5,
            GsoType::Other(raw) => raw,
        }
    }
}

/// A decoded virtio-net header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    pub flags: u8,
    gso_raw: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// The header of a plain frame: complete checksum, no segmentation.
    pub const PLAIN: VnetHdr = VnetHdr {
        flags: 0,
        gso_raw: 0,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// A frame whose checksum at `start + offset` holds only the
    /// pseudo-header sum, to be completed over the bytes from `start`.
    pub fn partial_checksum(start: u16, offset: u16) -> VnetHdr {
        VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: start,
            csum_offset: offset,
            ..VnetHdr::PLAIN
        }
    }

    /// This header, for a super-frame to be cut into `size`-byte segments
    /// behind `hdr_len` bytes of headers.
    pub fn with_gso(mut self, gso: GsoType, size: u16, hdr_len: u16) -> VnetHdr {
        self.set_gso_type(gso);
        self.gso_size = size;
        self.hdr_len = hdr_len;
        self
    }

    /// Decodes the first [`VNET_HDR_LEN`] bytes, if there are that many.
    pub fn parse(buf: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = buf.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_raw: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    pub fn encode(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_raw;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    pub fn gso_type(&self) -> GsoType {
        GsoType::from_raw(self.gso_raw)
    }

    pub fn set_gso_type(&mut self, gso: GsoType) {
        self.gso_raw = gso.to_raw() | (self.gso_raw & GSO_ECN);
    }

    /// A GSO super-frame, to be cut into `gso_size` segments on the wire.
    pub fn is_gso(&self) -> bool {
        self.gso_type() != GsoType::None
    }

    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }

    pub fn data_valid(&self) -> bool {
        self.flags & F_DATA_VALID != 0
    }

    /// Whether a port that cannot take offloads must first fix this frame.
    pub fn needs_work(&self) -> bool {
        self.is_gso() || self.needs_csum()
    }

    /// The header after the frame's first `at` bytes grew by `delta` bytes
    /// (an 802.1Q tag pushed or popped in front of the checksummed part).
    pub fn shifted(mut self, delta: isize) -> VnetHdr {
        if delta != 0 {
            let shift = |v: u16| u16::try_from(v as isize + delta).unwrap_or(v);
            if self.needs_csum() {
                self.csum_start = shift(self.csum_start);
            }
            if self.hdr_len != 0 {
                self.hdr_len = shift(self.hdr_len);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let raw = [1u8, 0x81, 66, 0, 0xb4, 0x05, 34, 0, 16, 0];
        let h = VnetHdr::parse(&raw).expect("10 bytes");
        assert!(h.needs_csum() && h.is_gso());
        assert_eq!(h.gso_type(), GsoType::TcpV4);
        assert_eq!(
            (h.hdr_len, h.gso_size, h.csum_start, h.csum_offset),
            (66, 1460, 34, 16)
        );
        assert_eq!(h.encode(), raw);
        assert!(VnetHdr::parse(&raw[..9]).is_none());
    }

    #[test]
    fn shift_moves_checksum_start() {
        let raw = [1u8, 0, 0, 0, 0, 0, 34, 0, 16, 0];
        let h = VnetHdr::parse(&raw).expect("10 bytes").shifted(4);
        assert_eq!(h.csum_start, 38);
        assert_eq!(VnetHdr::PLAIN.shifted(-4), VnetHdr::PLAIN);
    }
}
