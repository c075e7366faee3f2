//! VXLAN tunnel ports (RFC 7348): a fabric port whose frames travel in UDP
//! datagrams to a peer — another scratchnet, or a Linux `vxlan` device —
//! so that one switch spans processes, containers or machines.
//!
//! A [`VxlanPort`] is a [`fabric::PortIo`]: the runtime reads and writes
//! it as it does a TAP. Each frame goes out behind the 8-byte VXLAN header
//! in one `sendmsg` (header and frame as separate pieces, no copy). A
//! datagram that is not from the peer, not VXLAN, or of another VNI is
//! dropped and counted by reason (`status` shows them on the port).
//! Frames cross as plain Ethernet, so the fabric cuts super-frames to wire
//! size before they leave, as a Linux peer needs.

use fabric::{PortCaps, PortIo, Readable};
use nix::sys::socket::{sendmsg, MsgFlags, SockaddrStorage};
use std::io::{self, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::Interest;
use wire::vxlan::{self, Refusal};

/// Where a tunnel listens and whom it talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelConfig {
    /// The local address and UDP port to receive on (and send from).
    pub local: SocketAddr,
    /// The peer's address and UDP port.
    pub remote: SocketAddr,
    pub vni: u32,
}

/// Datagrams refused, by reason.
#[derive(Debug, Default)]
struct Drops {
    truncated: AtomicU64,
    bad_header: AtomicU64,
    wrong_vni: AtomicU64,
    unknown_peer: AtomicU64,
}

/// A VXLAN tunnel to one peer.
#[derive(Debug)]
pub struct VxlanPort {
    socket: tokio::net::UdpSocket,
    config: TunnelConfig,
    peer: SockaddrStorage,
    drops: Drops,
}

impl VxlanPort {
    /// Binds the tunnel's socket. Must be called inside a tokio runtime.
    pub fn bind(config: TunnelConfig) -> io::Result<VxlanPort> {
        let socket = UdpSocket::bind(config.local)?;
        socket.set_nonblocking(true)?;
        Ok(VxlanPort {
            socket: tokio::net::UdpSocket::from_std(socket)?,
            peer: SockaddrStorage::from(config.remote),
            config,
            drops: Drops::default(),
        })
    }

    /// The address the socket is bound to (its port, when 0 was asked).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn refuse(&self, why: Refusal) {
        let counter = match why {
            Refusal::Truncated => &self.drops.truncated,
            Refusal::NoVni => &self.drops.bad_header,
            Refusal::WrongVni(_) => &self.drops.wrong_vni,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl PortIo for VxlanPort {
    fn caps(&self) -> PortCaps {
        PortCaps { offload: false }
    }

    fn readable(&self) -> Readable<'_> {
        Box::pin(self.socket.readable())
    }

    /// The next frame from the peer: the datagram is read into `buf` and
    /// the frame moved to its start. Refused datagrams are counted and
    /// skipped.
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let (n, from) = self.socket.try_recv_from(buf)?;
            // A Linux peer sends from a port of its choosing (a hash of
            // the inner flow): only the address identifies it.
            if from.ip() != self.config.remote.ip() {
                self.drops.unknown_peer.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            match vxlan::check(&buf[..n], self.config.vni) {
                Ok(()) => {
                    buf.copy_within(vxlan::HEADER_LEN..n, 0);
                    return Ok(n - vxlan::HEADER_LEN);
                }
                Err(why) => self.refuse(why),
            }
        }
    }

    fn try_send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let header = vxlan::header(self.config.vni);
        let mut iov = [IoSlice::new(&[]); 4];
        iov[0] = IoSlice::new(&header);
        let n = bufs.len().min(3);
        iov[1..=n].copy_from_slice(&bufs[..n]);
        let fd = self.socket.as_raw_fd();
        self.socket.try_io(Interest::WRITABLE, || {
            sendmsg(fd, &iov[..=n], &[], MsgFlags::empty(), Some(&self.peer))
                .map_err(io::Error::from)
        })
    }

    fn drops(&self) -> Vec<(&'static str, u64)> {
        let d = &self.drops;
        [
            (Refusal::Truncated.as_str(), &d.truncated),
            (Refusal::NoVni.as_str(), &d.bad_header),
            (Refusal::WrongVni(0).as_str(), &d.wrong_vni),
            ("vxlan-unknown-peer", &d.unknown_peer),
        ]
        .into_iter()
        .map(|(k, c)| (k, c.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}
