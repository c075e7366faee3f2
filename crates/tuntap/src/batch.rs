//! Writes to several devices in one system call, through io_uring.
//!
//! A TAP takes one frame per `write(2)`, and each write runs the receiving
//! namespace's stack and wakes whoever waits there, who may take the CPU
//! back before the writer goes on. A reader that forwarded a burst queues
//! what it wrote here (each frame copied into a slot of its own) and sends
//! it all with one `io_uring_enter`: one kernel entry, one chance to be
//! preempted, for up to [`SLOTS`] frames.
//!
//! The writes are issued in the order they were queued, each with
//! RWF_NOWAIT: the kernel runs them inline or fails them, never parks one
//! for later, so frames to one port keep their order and a flush never
//! waits.

use io_uring::{opcode, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Frames one batch holds.
pub const SLOTS: usize = 64;

/// The largest frame (virtio-net header included) a slot holds: a
/// 1500-byte MTU frame with room to spare. Larger ones are written
/// directly.
pub const SLOT_SIZE: usize = 2048;

/// Frames waiting to be written together.
pub struct WriteBatch {
    /// None once the kernel failed a submission: writes are then made one
    /// by one.
    ring: Option<IoUring>,
    slots: Box<[u8]>,
    /// For each queued frame: the device's tag and the frame's length.
    queued: Vec<(u32, usize)>,
}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch")
            .field("queued", &self.queued.len())
            .finish()
    }
}

impl WriteBatch {
    /// Fails where io_uring is not to be had (an old kernel, a seccomp
    /// profile that forbids it); writes are then made one by one.
    pub fn new() -> io::Result<WriteBatch> {
        Ok(WriteBatch {
            ring: Some(IoUring::new(SLOTS as u32)?),
            slots: vec![0; SLOTS * SLOT_SIZE].into_boxed_slice(),
            queued: Vec::with_capacity(SLOTS),
        })
    }

    /// Queues a frame, given in pieces, for the device tagged `tag`.
    /// Returns false, queuing nothing, if the frame is larger than a slot
    /// or every slot is taken (flush, then write it or queue it again).
    pub fn push(&mut self, tag: u32, pieces: &[&[u8]]) -> bool {
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        if len > SLOT_SIZE || self.queued.len() == SLOTS || self.ring.is_none() {
            return false;
        }
        let start = self.queued.len() * SLOT_SIZE;
        let mut at = start;
        for p in pieces {
            self.slots[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        self.queued.push((tag, len));
        true
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Writes every queued frame to the device `fd_of` names for its tag,
    /// and returns when all are done; `failed` hears of each frame that
    /// could not be written (its device gone, a short write).
    pub fn flush<'fd>(
        &mut self,
        fd_of: impl Fn(u32) -> Option<BorrowedFd<'fd>>,
        mut failed: impl FnMut(u32, io::Error),
    ) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        let mut in_flight = 0;
        for (i, &(tag, len)) in self.queued.iter().enumerate() {
            let Some(fd) = fd_of(tag) else {
                failed(tag, io::Error::from(io::ErrorKind::NotFound));
                continue;
            };
            let buf = self.slots[i * SLOT_SIZE..].as_ptr();
            let write = opcode::Write::new(types::Fd(fd.as_raw_fd()), buf, len as u32)
                // A write that cannot be made at once fails with EAGAIN
                // instead of waiting in the kernel (`pwritev2(2)`), as the
                // non-blocking write it stands for would.
                .rw_flags(libc::RWF_NOWAIT)
                .build()
                .user_data(i as u64);
            // SAFETY: the entry points into `self.slots`, which is neither
            // moved, freed nor written until this call returns, and to a
            // descriptor borrowed for at least as long; this call returns
            // only after the completion of every entry it submitted. The
            // queue has room: it holds SLOTS entries and this loop pushes
            // at most SLOTS.
            #[allow(unsafe_code)]
            let pushed = unsafe { ring.submission().push(&write) };
            if pushed.is_err() {
                failed(tag, io::Error::from(io::ErrorKind::OutOfMemory));
                continue;
            }
            in_flight += 1;
        }
        while in_flight > 0 {
            match ring.submit_and_wait(in_flight) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The kernel refused the entries, and some may still be
                    // in flight: their buffers and the ring are given up
                    // (leaked, never reused), and writes go one by one.
                    if let Some(ring) = self.ring.take() {
                        let slots = std::mem::take(&mut self.slots);
                        Box::leak(Box::new((ring, slots)));
                    }
                    for &(tag, _) in &self.queued {
                        failed(tag, io::Error::new(e.kind(), e.to_string()));
                    }
                    self.queued.clear();
                    return;
                }
            }
            for done in ring.completion() {
                in_flight -= 1;
                let (tag, len) = self.queued[done.user_data() as usize];
                match done.result() {
                    n if n < 0 => failed(tag, io::Error::from_raw_os_error(-n)),
                    n if n as usize != len => {
                        failed(tag, io::Error::from(io::ErrorKind::WriteZero))
                    }
                    _ => {}
                }
            }
        }
        self.queued.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;

    /// A datagram socket pair keeps frame boundaries, as a TAP does.
    fn pair() -> (UnixDatagram, UnixDatagram) {
        let (a, b) = UnixDatagram::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    fn frames(rx: &UnixDatagram) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = rx.recv(&mut buf) {
            out.push(buf[..n].to_vec());
        }
        out
    }

    #[test]
    fn frames_to_several_devices_arrive_whole_and_in_order() {
        let (a_tx, a_rx) = pair();
        let (b_tx, b_rx) = pair();
        let mut w = WriteBatch::new().unwrap();
        for i in 0..SLOTS as u8 {
            let tag = u32::from(i % 2);
            assert!(w.push(tag, &[&[i; 12], &[i; 50], &[0xee; 3]]));
        }
        assert!(!w.push(0, &[b"one too many"]), "a full batch takes no more");
        let mut failures = 0;
        w.flush(
            |tag| Some([a_tx.as_fd(), b_tx.as_fd()][tag as usize]),
            |_, _| failures += 1,
        );
        assert_eq!(failures, 0);
        assert!(w.is_empty());
        for (rx, first) in [(&a_rx, 0u8), (&b_rx, 1)] {
            let got = frames(rx);
            assert_eq!(got.len(), SLOTS / 2);
            for (k, f) in got.iter().enumerate() {
                let i = first + 2 * k as u8;
                assert_eq!(f.len(), 65);
                assert_eq!(&f[..62], &[i; 62][..], "frame {k} out of order");
                assert_eq!(&f[62..], &[0xee; 3]);
            }
        }
        // The batch is used again after a flush.
        assert!(w.push(1, &[b"again"]));
        w.flush(|_| Some(b_tx.as_fd()), |_, _| failures += 1);
        assert_eq!(frames(&b_rx), vec![b"again".to_vec()]);
    }

    #[test]
    fn a_frame_larger_than_a_slot_is_refused_for_a_direct_write() {
        let mut w = WriteBatch::new().unwrap();
        assert!(w.push(0, &[&[0; SLOT_SIZE]]));
        assert!(!w.push(0, &[&[0; SLOT_SIZE], &[0]]));
    }

    #[test]
    fn writes_that_fail_are_reported_one_by_one() {
        let (tx, rx) = pair();
        tx.set_nonblocking(true).unwrap();
        let mut w = WriteBatch::new().unwrap();
        // A device that is no longer there, and one whose queue is full.
        assert!(w.push(7, &[b"to nowhere"]));
        let mut sent = 0;
        while tx.send(&[0; 1024]).is_ok() {
            sent += 1;
        }
        assert!(w.push(1, &[b"no room"]));
        let mut failed = Vec::new();
        w.flush(
            |tag| (tag == 1).then(|| tx.as_fd()),
            |tag, e| failed.push((tag, e.kind())),
        );
        assert_eq!(
            failed,
            vec![(7, io::ErrorKind::NotFound), (1, io::ErrorKind::WouldBlock)]
        );
        // The receiver went away while frames were queued for it.
        assert_eq!(frames(&rx).len(), sent);
        assert!(w.push(1, &[b"peer gone"]));
        drop(rx);
        w.flush(|_| Some(tx.as_fd()), |tag, e| failed.push((tag, e.kind())));
        assert_eq!(failed.len(), 3);
        assert!(w.is_empty());
    }
}
