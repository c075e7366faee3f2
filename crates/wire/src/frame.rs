//! Owned frame buffers with headroom, recycled through a pool.
//!
//! A frame is read from a device into a pooled buffer and then moves by
//! ownership: through a switch, into a router that rewrites it in place,
//! out to a device. Headroom lets a header be put in front (an 802.1Q
//! tag, an Ethernet header around a packet from a TUN) without copying the
//! payload. Nothing here allocates once the pool is warm.

use crate::ether::{VlanEdit, TAG_LEN};
use crate::VnetHdr;

/// Bytes kept free in front of the data.
pub const HEADROOM: usize = 64;

/// A frame: bytes `buf[start..end]` and their offload metadata.
#[derive(Clone)]
pub struct Frame {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Offload state (GSO, partial checksum), offsets relative to `data()`.
    pub hdr: VnetHdr,
    /// The frame's id in an active trace; 0 when it is not traced. A copy
    /// or a fragment of a frame keeps it; a frame a node makes afresh
    /// starts at 0, which tells the tracer it was made in answer.
    pub trace: u64,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("len", &self.len())
            .field("hdr", &self.hdr)
            .finish()
    }
}

impl Frame {
    /// An empty frame able to hold `capacity` bytes after the headroom.
    pub fn with_capacity(capacity: usize) -> Frame {
        Frame {
            buf: vec![0; HEADROOM + capacity],
            start: HEADROOM,
            end: HEADROOM,
            hdr: VnetHdr::PLAIN,
            trace: 0,
        }
    }

    /// A frame holding a copy of `bytes` (tests, slow paths).
    pub fn from_slice(bytes: &[u8]) -> Frame {
        let mut f = Frame::with_capacity(bytes.len());
        f.read_area()[..bytes.len()].copy_from_slice(bytes);
        f.set_len(bytes.len());
        f
    }

    /// A copy sized to the data, offload state kept: what a frame that
    /// must wait (for ARP, say) is kept as, so that it pins no more
    /// memory than it holds.
    pub fn compact(&self) -> Frame {
        let mut f = Frame::from_slice(self.data());
        f.hdr = self.hdr;
        f.trace = self.trace;
        f
    }

    /// The memory the frame holds, headroom included.
    pub fn footprint(&self) -> usize {
        self.buf.len()
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Empties the frame, restoring the headroom.
    pub fn clear(&mut self) {
        self.start = HEADROOM;
        self.end = HEADROOM;
        self.hdr = VnetHdr::PLAIN;
        self.trace = 0;
    }

    /// All the room after the headroom, to read a device into; follow with
    /// [`Frame::set_len`].
    pub fn read_area(&mut self) -> &mut [u8] {
        self.start = HEADROOM;
        &mut self.buf[HEADROOM..]
    }

    /// Sets the data to the first `len` bytes after the headroom.
    pub fn set_len(&mut self, len: usize) {
        self.start = HEADROOM;
        self.end = (HEADROOM + len).min(self.buf.len());
    }

    /// Sets the data to the first `len` bytes after the headroom, growing
    /// the buffer if it is too small (once; a pooled frame keeps its size).
    pub fn resize(&mut self, len: usize) {
        if HEADROOM + len > self.buf.len() {
            self.buf.resize(HEADROOM + len, 0);
        }
        self.set_len(len);
    }

    /// Shortens the data to `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        self.end = self.end.min(self.start + len);
    }

    /// Grows the data by `n` bytes at the front, from the headroom, and
    /// returns them. `None` if the headroom is used up.
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = self.start.checked_sub(n)?;
        self.start = start;
        Some(&mut self.buf[start..start + n])
    }

    /// Drops `n` bytes from the front (at most all of them).
    pub fn pull_front(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Appends bytes, growing the buffer if needed (slow paths only).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let need = self.end + bytes.len();
        if need > self.buf.len() {
            self.buf.resize(need, 0);
        }
        self.buf[self.end..need].copy_from_slice(bytes);
        self.end = need;
    }

    /// Applies an 802.1Q edit in place (moving only the 12 address bytes)
    /// and shifts the offload offsets to match.
    pub fn apply_vlan_edit(&mut self, edit: VlanEdit) {
        match edit {
            VlanEdit::Keep => return,
            VlanEdit::Strip => {
                if self.len() < 12 + TAG_LEN {
                    return;
                }
                self.buf
                    .copy_within(self.start..self.start + 12, self.start + TAG_LEN);
                self.start += TAG_LEN;
            }
            VlanEdit::Push(vid) => {
                if self.len() < 12 || self.push_front(TAG_LEN).is_none() {
                    return;
                }
                let s = self.start;
                self.buf.copy_within(s + TAG_LEN..s + TAG_LEN + 12, s);
                self.buf[s + 12..s + 14]
                    .copy_from_slice(&crate::ether::ETHERTYPE_VLAN.to_be_bytes());
                self.buf[s + 14..s + 16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
            }
        }
        self.hdr = self.hdr.shifted(edit.len_delta());
    }
}

/// Frames ready for reuse.
#[derive(Debug)]
pub struct FramePool {
    free: Vec<Frame>,
    capacity: usize,
    keep: usize,
}

impl FramePool {
    /// A pool of frames that hold `capacity` bytes, keeping at most `keep`
    /// spare frames.
    pub fn new(capacity: usize, keep: usize) -> FramePool {
        FramePool {
            free: Vec::new(),
            capacity,
            keep,
        }
    }

    /// An empty frame: a recycled one when there is one.
    pub fn get(&mut self) -> Frame {
        match self.free.pop() {
            Some(mut f) => {
                f.clear();
                f
            }
            None => Frame::with_capacity(self.capacity),
        }
    }

    /// Returns a frame for reuse; one too small to read a device into (a
    /// compact copy) is freed instead.
    pub fn put(&mut self, frame: Frame) {
        if self.free.len() < self.keep && frame.buf.len() >= HEADROOM + self.capacity {
            self.free.push(frame);
        }
    }

    /// A pooled frame holding a copy of `bytes`.
    pub fn copy_of(&mut self, bytes: &[u8], hdr: VnetHdr) -> Frame {
        let mut f = self.get();
        f.extend_from_slice(bytes);
        f.hdr = hdr;
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ether::{build_frame, EthernetHeader, ETHERTYPE_IPV4};
    use crate::Mac;

    #[test]
    fn vlan_edits_in_place_round_trip() {
        let plain = build_frame(
            Mac([2, 0, 0, 0, 0, 2]),
            Mac([2, 0, 0, 0, 0, 1]),
            ETHERTYPE_IPV4,
            &[9; 30],
        );
        let mut f = Frame::from_slice(&plain);
        f.apply_vlan_edit(VlanEdit::Push(42));
        assert_eq!(
            EthernetHeader::parse(f.data())
                .expect("tagged")
                .tag
                .map(|t| t.vid),
            Some(42)
        );
        assert_eq!(f.len(), plain.len() + 4);
        f.apply_vlan_edit(VlanEdit::Strip);
        assert_eq!(f.data(), &plain[..]);
    }

    #[test]
    fn headroom_and_pool() {
        let mut pool = FramePool::new(128, 2);
        let mut f = pool.get();
        f.extend_from_slice(&[1, 2, 3]);
        f.push_front(2).expect("headroom").copy_from_slice(&[8, 9]);
        assert_eq!(f.data(), &[8, 9, 1, 2, 3]);
        f.pull_front(3);
        assert_eq!(f.data(), &[2, 3]);
        assert!(f.push_front(HEADROOM + 10).is_none());
        pool.put(f);
        let g = pool.get();
        assert!(g.is_empty(), "recycled frames come back empty");
        let area = pool.get().read_area().len();
        assert_eq!(area, 128);
    }
}
