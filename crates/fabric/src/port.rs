//! What a fabric port reads and writes: a TAP or TUN device, a VXLAN
//! tunnel — anything that can say when a frame may be read, read one
//! without blocking, and write one from pieces. The runtime is written
//! against [`PortIo`] alone; [`PortCaps`] says what the I/O can take.

use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;
use std::pin::Pin;

/// What a port's I/O can take, as smoltcp's `DeviceCapabilities` says
/// it for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortCaps {
    /// Frames carry a virtio-net header both ways: GSO super-frames and
    /// partial checksums pass as they are. Without it, the egress path
    /// cuts and completes them in software.
    pub offload: bool,
    /// The largest frame the I/O takes in one piece with offload (a UDP
    /// datagram's limit, for a tunnel); a larger super-frame is cut into
    /// wire-size frames, each still behind a (plain) virtio-net header.
    pub max_frame: usize,
}

impl PortCaps {
    /// Wire-size frames with complete checksums.
    pub const PLAIN: PortCaps = PortCaps {
        offload: false,
        max_frame: usize::MAX,
    };

    /// Offloads, frames of any size.
    pub const OFFLOAD: PortCaps = PortCaps {
        offload: true,
        max_frame: usize::MAX,
    };
}

/// A readiness wait, boxed so that the trait stays object-safe (one box
/// per wake-up, not per frame).
pub type Readable<'a> = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>>;

/// The I/O behind a fabric port.
pub trait PortIo: Send + Sync {
    fn caps(&self) -> PortCaps;

    /// Waits until a frame may be read (it may still be a false alarm:
    /// `try_recv` then says `WouldBlock`).
    fn readable(&self) -> Readable<'_>;

    /// Reads one frame (behind its virtio-net header with offload), or
    /// fails with `WouldBlock` when none is waiting.
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes one frame from pieces (the virtio-net header first, with
    /// offload).
    fn try_send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// The descriptor a frame is written to whole with `write(2)` (a TAP
    /// or TUN), so that a reader may write several at once through a
    /// [`tuntap::WriteBatch`]; `None` where a write is more than that.
    fn batch_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// What the I/O itself refused, by reason (a tunnel's datagrams from
    /// an unknown peer, say), for `status`.
    fn drops(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

impl PortIo for tuntap::Device {
    fn caps(&self) -> PortCaps {
        if self.offload() {
            PortCaps::OFFLOAD
        } else {
            PortCaps::PLAIN
        }
    }

    fn readable(&self) -> Readable<'_> {
        Box::pin(tuntap::Device::readable(self))
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        tuntap::Device::try_recv(self, buf)
    }

    fn try_send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        tuntap::Device::try_send_vectored(self, bufs)
    }

    fn batch_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd())
    }
}
