//! TAP and TUN devices: the kernel edges of fabric ports.
//!
//! A [`Device`] is opened in the calling thread's network namespace:
//! scratchnet opens a host's TAP from a thread inside the host's namespace,
//! named `eth0` there, so that it need not be moved (a move costs the
//! kernel an RCU grace period, about 20 ms). The descriptor works from
//! any thread. With offload on, it is opened with IFF_VNET_HDR and
//! TUNSETOFFLOAD (checksum, TSO4/6, USO where the kernel has it), so the
//! kernel may hand over 64 KiB GSO super-frames behind a virtio-net header
//! ([`wire::VnetHdr`]) instead of one syscall per 1500-byte frame;
//! DESIGN.md measured that as a six-fold gain. A TAP carries Ethernet
//! frames, a TUN carries IP packets.
//!
//! A device joins the tokio reactor of the first task that waits on it,
//! not the one it was opened under: the fabric reads each port from the
//! thread of its segment (fabric's runtime, "shards"), and a descriptor
//! registered there wakes that thread alone.
//!
//! The ioctls themselves are tun-rs's; the crate's only unsafe code hands
//! batched writes to io_uring ([`WriteBatch`]).
//! Non-persistent devices vanish when their descriptor closes, so a crashed
//! scratchnet leaves no device behind.

mod batch;

pub use batch::{WriteBatch, SLOTS, SLOT_SIZE};
use std::fs::File;
use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tun_rs::{DeviceBuilder, Layer, SyncDevice};
use wire::Mac;

/// Ethernet (TAP) or IP (TUN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tap,
    Tun,
}

/// How to open a device.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    pub kind: Kind,
    /// Open with IFF_VNET_HDR and TSO/checksum offload.
    pub offload: bool,
    pub mtu: u16,
    /// The interface's MAC address (TAP only).
    pub mac: Option<Mac>,
    pub txqueuelen: u32,
    /// The interface's name; `None` lets the kernel choose (`tapN`).
    pub name: Option<String>,
}

/// An open TAP or TUN device, non-blocking.
pub struct Device {
    /// A copy of the descriptor, registered for reading with the reactor
    /// of the first task that waited on it. It goes first, with the
    /// device: the interface lives while any descriptor of it is open.
    ready: OnceLock<AsyncFd<File>>,
    dev: SyncDevice,
    name: String,
    offload: bool,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("name", &self.name)
            .field("offload", &self.offload)
            .finish()
    }
}

impl Device {
    /// Creates a device, down, in the calling thread's namespace, named as
    /// asked or by the kernel (`tapN`, `tunN`).
    pub fn open(options: &DeviceOptions) -> io::Result<Device> {
        let mut builder = DeviceBuilder::new()
            .layer(match options.kind {
                Kind::Tap => Layer::L2,
                Kind::Tun => Layer::L3,
            })
            .offload(options.offload)
            .mtu(options.mtu)
            .tx_queue_len(options.txqueuelen)
            .enable(false);
        if let Some(mac) = options.mac {
            builder = builder.mac_addr(mac.0);
        }
        if let Some(name) = &options.name {
            builder = builder.name(name);
        }
        let dev = builder.build_sync()?;
        dev.set_nonblocking(true)?;
        let name = dev.name()?;
        Ok(Device {
            ready: OnceLock::new(),
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

    /// Waits until a frame can be read. The first call registers the
    /// device with the calling task's reactor (see the module's comment).
    /// A device that reports an error alone (its interface was deleted)
    /// is an error here, so that its reader counts it and waits before it
    /// asks again rather than spin. Must be called inside a tokio runtime.
    pub async fn readable(&self) -> io::Result<()> {
        let ready = match self.ready.get() {
            Some(r) => r,
            None => {
                let copy = File::from(self.dev.as_fd().try_clone_to_owned()?);
                // tokio deprecated `with_interest` because an `AsyncFd` over
                // a borrowed descriptor could outlive it; this one owns its
                // copy, which lives exactly as long as the registration.
                #[allow(deprecated)]
                let registered =
                    AsyncFd::with_interest(copy, Interest::READABLE | Interest::ERROR)?;
                self.ready.get_or_init(|| registered)
            }
        };
        let guard = ready.ready(Interest::READABLE | Interest::ERROR).await?;
        let ready = guard.ready();
        if ready.is_error() && !ready.is_readable() {
            return Err(io::Error::other(
                "the device reports an error: is its interface gone?",
            ));
        }
        Ok(())
    }

    /// Reads one frame (behind its virtio-net header when offloading), or
    /// fails with `WouldBlock` when none is queued; that clears the
    /// readiness [`Device::readable`] waits for.
    ///
    /// It reads even when the reactor has not yet seen the device become
    /// readable: a frame written to a TAP is answered by the namespace's
    /// kernel inside the write, so the fabric asks for the answer at once
    /// (`drain_and_follow` in fabric's runtime), long before the reactor
    /// of the port's thread has woken for it. tokio's own `try_io` would
    /// call that `WouldBlock` without asking the kernel.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(ready) = self.ready.get() else {
            return self.dev.recv(buf);
        };
        // Polled once with a waker that does nothing: ready means the
        // reactor saw an edge, whose readiness a `WouldBlock` must clear.
        let mut seen = std::pin::pin!(ready.ready(Interest::READABLE));
        let mut cx = Context::from_waker(Waker::noop());
        match seen.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(mut guard)) => guard
                .try_io(|_| self.dev.recv(buf))
                .unwrap_or_else(|_| Err(io::ErrorKind::WouldBlock.into())),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => self.dev.recv(buf),
        }
    }

    /// The descriptor, for writes made in a [`WriteBatch`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dev.as_fd()
    }

    /// Writes one frame from pieces, without joining them first.
    pub fn try_send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.dev.send_vectored(bufs)
    }
}
