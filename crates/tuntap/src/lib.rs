//! TAP devices: the kernel edge of a fabric port.
//!
//! A [`Tap`] is opened in the caller's network namespace (scratchnet then
//! moves the interface into the host's namespace; the file descriptor stays
//! attached to it). With offload on, the device is opened with
//! IFF_VNET_HDR and TUNSETOFFLOAD (checksum, TSO4/6, USO where the kernel
//! has it), so the kernel may hand over 64 KiB GSO super-frames behind a
//! virtio-net header ([`wire::VnetHdr`]) instead of one syscall per
//! 1500-byte frame; DESIGN.md measured that as a six-fold gain.
//!
//! The ioctls themselves are tun-rs's; this crate holds no unsafe code.
//! Non-persistent TAPs vanish when their descriptor closes, so a crashed
//! scratchnet leaves no device behind.

use std::io::{self, IoSlice};
use tun_rs::{AsyncDevice, DeviceBuilder, Layer};
use wire::Mac;

/// How to open a TAP.
#[derive(Debug, Clone)]
pub struct TapOptions {
    /// Open with IFF_VNET_HDR and TSO/checksum offload.
    pub offload: bool,
    pub mtu: u16,
    pub mac: Mac,
    pub txqueuelen: u32,
}

/// An open TAP device, registered with the tokio reactor.
pub struct Tap {
    dev: AsyncDevice,
    name: String,
    offload: bool,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("name", &self.name)
            .field("offload", &self.offload)
            .finish()
    }
}

impl Tap {
    /// Creates a TAP with a kernel-chosen name (`tapN`), down, in the
    /// current namespace. Must be called inside a tokio runtime.
    pub fn open(options: &TapOptions) -> io::Result<Tap> {
        let dev = DeviceBuilder::new()
            .layer(Layer::L2)
            .offload(options.offload)
            .mtu(options.mtu)
            .mac_addr(options.mac.0)
            .tx_queue_len(options.txqueuelen)
            .enable(false)
            .build_async()?;
        let name = dev.name()?;
        Ok(Tap {
            dev,
            name,
            offload: options.offload,
        })
    }

    /// The interface name the kernel gave the device.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether each frame read or written carries a virtio-net header.
    pub fn offload(&self) -> bool {
        self.offload
    }

    /// Waits until a frame can be read.
    pub async fn readable(&self) -> io::Result<()> {
        self.dev.readable().await
    }

    /// Reads one frame (behind its virtio-net header when offloading), or
    /// fails with `WouldBlock` when none is queued.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev.try_recv(buf)
    }

    /// Writes one frame from pieces, without joining them first.
    pub fn try_send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.dev.try_send_vectored(bufs)
    }
}
