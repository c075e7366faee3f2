//! Ethernet II and 802.1Q headers: a checked parse of the first bytes of a
//! frame, and the tag edits a switch applies on egress.
//!
//! Only the header is looked at; payloads belong to the layers above.

use crate::Mac;

pub const HEADER_LEN: usize = 14;
pub const TAG_LEN: usize = 4;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Why the first bytes of a frame are not a usable Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EtherError {
    #[error("frame of {0} bytes is shorter than its Ethernet header")]
    Truncated(usize),
    /// 1501..=1535 is neither an 802.3 length nor an Ethernet II type.
    #[error("EtherType {0:#06x} is undefined")]
    BadEtherType(u16),
}

/// An 802.1Q tag control field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    pub pcp: u8,
    pub dei: bool,
    /// 0 means priority-tagged only (no VLAN).
    pub vid: u16,
}

/// The parsed Ethernet header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    pub dst: Mac,
    pub src: Mac,
    /// The outer 802.1Q tag, if the frame carries one.
    pub tag: Option<VlanTag>,
    /// The EtherType (or 802.3 length) after any tag.
    pub ethertype: u16,
    /// Offset of the payload (14, or 18 when tagged).
    pub payload_offset: usize,
}

impl EthernetHeader {
    /// Parses the header, checking lengths before reading anything.
    pub fn parse(frame: &[u8]) -> Result<EthernetHeader, EtherError> {
        let (Some(dst), Some(src), Some(&[t0, t1])) = (
            frame.get(0..6).and_then(Mac::from_slice),
            frame.get(6..12).and_then(Mac::from_slice),
            frame.get(12..14),
        ) else {
            return Err(EtherError::Truncated(frame.len()));
        };
        let outer = u16::from_be_bytes([t0, t1]);
        let (tag, ethertype, payload_offset) = if outer == ETHERTYPE_VLAN {
            let Some(&[c0, c1, e0, e1]) = frame.get(14..18) else {
                return Err(EtherError::Truncated(frame.len()));
            };
            let tci = u16::from_be_bytes([c0, c1]);
            let tag = VlanTag {
                pcp: (tci >> 13) as u8,
                dei: tci & 0x1000 != 0,
                vid: tci & 0x0fff,
            };
            (
                Some(tag),
                u16::from_be_bytes([e0, e1]),
                HEADER_LEN + TAG_LEN,
            )
        } else {
            (None, outer, HEADER_LEN)
        };
        if (1501..0x0600).contains(&ethertype) {
            return Err(EtherError::BadEtherType(ethertype));
        }
        Ok(EthernetHeader {
            dst,
            src,
            tag,
            ethertype,
            payload_offset,
        })
    }
}

/// What a switch does to the 802.1Q tag of a frame as it leaves a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VlanEdit {
    /// Leave the frame as it arrived.
    Keep,
    /// Remove the outer tag (tagged in, access port out).
    Strip,
    /// Insert a tag with this VLAN id (untagged in, trunk port out).
    Push(u16),
}

impl VlanEdit {
    /// How many bytes the edit adds to the frame (negative: removes).
    pub fn len_delta(self) -> isize {
        match self {
            VlanEdit::Keep => 0,
            VlanEdit::Strip => -(TAG_LEN as isize),
            VlanEdit::Push(_) => TAG_LEN as isize,
        }
    }

    /// The edited frame as two pieces to be sent back to back, without
    /// copying the payload. `scratch` holds a rebuilt header when needed.
    ///
    /// The caller has parsed `frame` (so it holds at least a full header,
    /// and a tag when the edit is `Strip`); a frame too short for the edit
    /// is passed through unchanged.
    pub fn apply<'a>(self, frame: &'a [u8], scratch: &'a mut [u8; 16]) -> (&'a [u8], &'a [u8]) {
        match self {
            VlanEdit::Keep => (frame, &[]),
            VlanEdit::Strip => match (frame.get(..12), frame.get(16..)) {
                (Some(addrs), Some(rest)) => (addrs, rest),
                _ => (frame, &[]),
            },
            VlanEdit::Push(vid) => match (frame.get(..12), frame.get(12..)) {
                (Some(addrs), Some(rest)) => {
                    scratch[..12].copy_from_slice(addrs);
                    scratch[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
                    scratch[14..16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
                    (&scratch[..], rest)
                }
                _ => (frame, &[]),
            },
        }
    }
}

/// Builds an untagged Ethernet II frame (test and simulator helper).
pub fn build_frame(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER_LEN + payload.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Builds an 802.1Q-tagged Ethernet frame (test and simulator helper).
pub fn build_tagged_frame(dst: Mac, src: Mac, vid: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut scratch = [0u8; 16];
    let plain = build_frame(dst, src, ethertype, payload);
    let (head, tail) = VlanEdit::Push(vid).apply(&plain, &mut scratch);
    [head, tail].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const B: Mac = Mac([2, 0, 0, 0, 0, 2]);

    #[test]
    fn parses_untagged_and_tagged() {
        let f = build_frame(B, A, ETHERTYPE_IPV4, &[1, 2, 3]);
        let h = EthernetHeader::parse(&f).expect("valid");
        assert_eq!(
            (h.dst, h.src, h.ethertype, h.tag, h.payload_offset),
            (B, A, 0x0800, None, 14)
        );

        let t = build_tagged_frame(B, A, 42, ETHERTYPE_ARP, &[9; 28]);
        let h = EthernetHeader::parse(&t).expect("valid");
        assert_eq!(h.tag.map(|t| t.vid), Some(42));
        assert_eq!((h.ethertype, h.payload_offset), (ETHERTYPE_ARP, 18));
    }

    #[test]
    fn rejects_short_and_undefined() {
        assert_eq!(
            EthernetHeader::parse(&[0; 13]),
            Err(EtherError::Truncated(13))
        );
        let mut t = build_tagged_frame(B, A, 1, ETHERTYPE_IPV4, &[]);
        t.truncate(16);
        assert_eq!(EthernetHeader::parse(&t), Err(EtherError::Truncated(16)));
        let f = build_frame(B, A, 1520, &[0; 50]);
        assert_eq!(
            EthernetHeader::parse(&f),
            Err(EtherError::BadEtherType(1520))
        );
        // An 802.3 length field is fine.
        assert!(EthernetHeader::parse(&build_frame(B, A, 46, &[0; 46])).is_ok());
    }

    #[test]
    fn edits_round_trip() {
        let plain = build_frame(B, A, ETHERTYPE_IPV4, &[7; 20]);
        let mut s = [0u8; 16];
        let (h, t) = VlanEdit::Push(300).apply(&plain, &mut s);
        let tagged = [h, t].concat();
        assert_eq!(
            tagged.len() as isize,
            plain.len() as isize + VlanEdit::Push(1).len_delta()
        );
        assert_eq!(
            EthernetHeader::parse(&tagged)
                .expect("valid")
                .tag
                .map(|t| t.vid),
            Some(300)
        );
        let mut s2 = [0u8; 16];
        let (h, t) = VlanEdit::Strip.apply(&tagged, &mut s2);
        assert_eq!([h, t].concat(), plain);
        let (h, t) = VlanEdit::Keep.apply(&plain, &mut s2);
        assert_eq!((h, t.len()), (&plain[..], 0));
    }
}
