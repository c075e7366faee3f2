//! The one path by which a delivered frame becomes bytes on a port.
//!
//! Shared by the runtime and the simulator so that both treat offloads the
//! same way: a port that takes offloads gets the super-frame as it is, its
//! virtio-net header shifted by any tag edit; a port that does not gets
//! wire-sized frames with complete checksums. Buffers are reused, so the
//! steady state does not allocate.

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

    /// Calls `write` with the pieces of each frame to put on a port: with
    /// the encoded virtio-net header first when `offload` is on. Returns how
    /// many frames were written.
    pub fn emit(
        &mut self,
        offload: bool,
        hdr: &VnetHdr,
        edit: VlanEdit,
        frame: &[u8],
        mut write: impl FnMut(&[&[u8]]),
    ) -> Result<usize, OffloadError> {
        let hdr = hdr.shifted(edit.len_delta());
        let (head, tail) = edit.apply(frame, &mut self.tag);
        if offload {
            write(&[&hdr.encode(), head, tail]);
            return Ok(1);
        }
        if !hdr.needs_work() {
            write(&[head, tail]);
            return Ok(1);
        }
        self.joined.clear();
        self.joined.extend_from_slice(head);
        self.joined.extend_from_slice(tail);
        self.segmenter.emit(&self.joined, &hdr, |seg| write(&[seg]))
    }
}
