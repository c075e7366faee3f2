//! The one path by which a delivered frame becomes bytes on a port.
//!
//! Shared by the runtime and the simulator so that both treat offloads the
//! same way: a port that takes offloads gets the super-frame as it is, its
//! virtio-net header shifted by any tag edit; a port that does not gets
//! wire-sized frames with complete checksums. Buffers are reused, so the
//! steady state does not allocate.

use crate::port::PortCaps;
use wire::ether::VlanEdit;
use wire::offload::{OffloadError, Segmenter};
use wire::VnetHdr;

/// Scratch state for preparing frames for ports, one per driving task.
#[derive(Debug, Default)]
pub struct EgressPath {
    tag: [u8; 16],
    joined: Vec<u8>,
    segmenter: Segmenter,
}

impl EgressPath {
    pub fn new() -> EgressPath {
        EgressPath::default()
    }

    /// Calls `write` with the pieces of each frame to put on a port that
    /// can take `caps`: with the encoded virtio-net header first when it
    /// takes offloads. Returns how many frames were written.
    pub fn emit(
        &mut self,
        caps: PortCaps,
        hdr: &VnetHdr,
        edit: VlanEdit,
        frame: &[u8],
        mut write: impl FnMut(&[&[u8]]),
    ) -> Result<usize, OffloadError> {
        let hdr = hdr.shifted(edit.len_delta());
        let (head, tail) = edit.apply(frame, &mut self.tag);
        let len = head.len() + tail.len();
        if caps.offload && len <= caps.max_frame {
            write(&[&hdr.encode(), head, tail]);
            return Ok(1);
        }
        if !hdr.needs_work() {
            let plain = VnetHdr::PLAIN.encode();
            let pieces: &[&[u8]] = if caps.offload {
                &[&plain, head, tail]
            } else {
                &[head, tail]
            };
            write(pieces);
            return Ok(1);
        }
        self.joined.clear();
        self.joined.extend_from_slice(head);
        self.joined.extend_from_slice(tail);
        if caps.offload {
            let plain = VnetHdr::PLAIN.encode();
            return self
                .segmenter
                .emit(&self.joined, &hdr, |seg| write(&[&plain, seg]));
        }
        self.segmenter.emit(&self.joined, &hdr, |seg| write(&[seg]))
    }
}
