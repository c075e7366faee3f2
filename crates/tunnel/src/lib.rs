//! VXLAN tunnel ports (RFC 7348): a fabric port whose frames travel in UDP
//! datagrams to a peer — another scratchnet, or a Linux `vxlan` device —
//! so that one switch spans processes, containers or machines.
//!
//! A [`VxlanPort`] is a [`fabric::PortIo`]: the runtime reads and writes
//! it as it does a TAP. Each frame goes out behind the 8-byte VXLAN header
//! in one `sendmsg` (header and frame as separate pieces, no copy). A
//! datagram that is not from the peer (its address and port), not VXLAN,
//! or of another VNI is dropped and counted by reason (`status` shows
//! them on the port), and counts against the reader's budget.
//!
//! To a Linux peer frames cross as plain Ethernet, so the fabric cuts
//! super-frames to wire size before they leave. To a peer configured as
//! scratchnet (`offload`), each frame crosses behind its virtio-net
//! header (wire::vxlan's extension flag): a 64 KiB TCP super-frame is one
//! datagram, not 45. Either way a datagram with the flag is read with its
//! header, one without it as a plain frame.

use fabric::{PortCaps, PortIo, Readable};
use nix::sys::socket::{sendmsg, MsgFlags, SockaddrStorage};
use std::io::{self, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use wire::vxlan::{self, Refusal};
use wire::{VnetHdr, VNET_HDR_LEN};

/// Where a tunnel listens and whom it talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelConfig {
    /// The local address and UDP port to receive on (and send from).
    pub local: SocketAddr,
    /// The peer's address and UDP port.
    pub remote: SocketAddr,
    pub vni: u32,
    /// The peer is scratchnet: send offload metadata.
    pub offload: bool,
}

/// Refused datagrams one read takes at most before it yields.
const REFUSED_PER_READ: usize = fabric::READ_BUDGET;

/// Socket buffers, each way: room for a burst of super-frames.
const SOCKET_BUFFER: usize = 8 << 20;

/// Why a datagram from the peer carries no frame for this port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Header(Refusal),
    /// A virtio-net header for a port that takes none: the peer believes
    /// this end is scratchnet with `offload` on.
    UnexpectedOffload,
}

/// What a datagram of `n` bytes at the start of `buf` becomes: its frame,
/// moved to the start of `buf` (behind a virtio-net header when the port
/// takes offloads: the peer's, or a plain one for a plain frame), and its
/// length. Sans-IO, so that it is fuzzed.
pub fn unwrap(buf: &mut [u8], n: usize, vni: u32, offload: bool) -> Result<usize, Refused> {
    let n = n.min(buf.len());
    let vnet = vxlan::check(&buf[..n], vni).map_err(Refused::Header)?;
    let payload = vxlan::HEADER_LEN..n;
    match (vnet, offload) {
        (true, true) | (false, false) => {
            buf.copy_within(payload, 0);
            Ok(n - vxlan::HEADER_LEN)
        }
        (false, true) => {
            let len = n - vxlan::HEADER_LEN + VNET_HDR_LEN;
            if len > buf.len() {
                // No room for the header in front: the datagram filled
                // the buffer, which a port's buffers never let happen.
                return Err(Refused::Header(Refusal::Truncated));
            }
            buf.copy_within(payload, VNET_HDR_LEN);
            buf[..VNET_HDR_LEN].copy_from_slice(&VnetHdr::PLAIN.encode());
            Ok(len)
        }
        (true, false) => Err(Refused::UnexpectedOffload),
    }
}

/// Datagrams refused, by reason.
#[derive(Debug, Default)]
struct Drops {
    truncated: AtomicU64,
    bad_header: AtomicU64,
    wrong_vni: AtomicU64,
    unknown_peer: AtomicU64,
    unexpected_offload: AtomicU64,
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
        use nix::sys::socket::{setsockopt, sockopt};
        // As root the limits of net.core.[rw]mem_max do not apply; if they
        // do, the kernel's defaults stay (slower under bursts, not wrong).
        let _ = setsockopt(&socket, sockopt::RcvBufForce, &SOCKET_BUFFER);
        let _ = setsockopt(&socket, sockopt::SndBufForce, &SOCKET_BUFFER);
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
        if self.config.offload {
            PortCaps {
                offload: true,
                max_frame: vxlan::MAX_OFFLOAD_FRAME,
            }
        } else {
            PortCaps::PLAIN
        }
    }

    fn readable(&self) -> Readable<'_> {
        Box::pin(self.socket.readable())
    }

    /// The next frame from the peer: the datagram is read into `buf` and
    /// the frame moved to its start (behind a virtio-net header when the
    /// port takes offloads: the peer's, or a plain one). Refused datagrams
    /// are counted and skipped.
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        for _ in 0..REFUSED_PER_READ {
            let (n, from) = self.socket.try_recv_from(buf)?;
            // The peer is its address and port: any local user can send
            // from the address of a loopback peer, but not from its bound
            // port. (A Linux peer must send from its port: `srcport P P+1`.)
            if from != self.config.remote {
                self.drops.unknown_peer.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            match unwrap(buf, n, self.config.vni, self.config.offload) {
                Ok(len) => return Ok(len),
                Err(Refused::UnexpectedOffload) => {
                    self.drops
                        .unexpected_offload
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(Refused::Header(why)) => self.refuse(why),
            }
        }
        // A flood of refused datagrams costs the reader its budget, as
        // frames would: the other ports get their turn before more are
        // read (the socket stays readable, so the reader comes back).
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn try_send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let header = vxlan::header(self.config.vni, self.config.offload);
        let mut iov = [IoSlice::new(&[]); 4];
        iov[0] = IoSlice::new(&header);
        // The egress path writes a frame in three pieces at most.
        let n = bufs.len();
        if n > 3 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a frame in more than three pieces",
            ));
        }
        iov[1..=n].copy_from_slice(bufs);
        // Straight to the (non-blocking) socket: the fabric never waits
        // to write, so tokio's readiness, which starts out unknown, would
        // only turn the first frames away. A full socket buffer says
        // EAGAIN, and the frame is lost and counted, as on a busy link.
        sendmsg(
            self.socket.as_raw_fd(),
            &iov[..=n],
            &[],
            MsgFlags::empty(),
            Some(&self.peer),
        )
        .map_err(io::Error::from)
    }

    fn drops(&self) -> Vec<(&'static str, u64)> {
        let d = &self.drops;
        [
            (Refusal::Truncated.as_str(), &d.truncated),
            (Refusal::NoVni.as_str(), &d.bad_header),
            (Refusal::WrongVni(0).as_str(), &d.wrong_vni),
            ("vxlan-unknown-peer", &d.unknown_peer),
            ("vxlan-unexpected-offload", &d.unexpected_offload),
        ]
        .into_iter()
        .map(|(k, c)| (k, c.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use wire::GsoType;

    fn port(offload: bool) -> VxlanPort {
        port_at("127.0.0.1", offload)
    }

    fn port_at(ip: &str, offload: bool) -> VxlanPort {
        let any: SocketAddr = format!("{ip}:0").parse().unwrap();
        VxlanPort::bind(TunnelConfig {
            local: any,
            remote: any,
            vni: 7,
            offload,
        })
        .unwrap()
    }

    /// Points `a` at `b`'s address.
    fn aim(a: &mut VxlanPort, b: &VxlanPort) {
        a.config.remote = b.local_addr().unwrap();
        a.peer = SockaddrStorage::from(a.config.remote);
    }

    async fn recv(p: &VxlanPort) -> Vec<u8> {
        let mut buf = vec![0u8; 70_000];
        loop {
            p.readable().await.unwrap();
            match p.try_recv(&mut buf) {
                Ok(n) => return buf[..n].to_vec(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[tokio::test]
    async fn super_frames_cross_whole_between_scratchnets_and_plain_ones_get_a_header() {
        let (mut a, mut b) = (port(true), port(true));
        aim(&mut a, &b);
        aim(&mut b, &a);
        let hdr = VnetHdr::partial_checksum(34, 16).with_gso(GsoType::TcpV4, 1448, 54);
        let frame = vec![0x42u8; 60_000];
        let sent = a
            .try_send_vectored(&[IoSlice::new(&hdr.encode()), IoSlice::new(&frame)])
            .unwrap();
        assert_eq!(sent, vxlan::HEADER_LEN + VNET_HDR_LEN + frame.len());
        let got = recv(&b).await;
        assert_eq!(VnetHdr::parse(&got), Some(hdr));
        assert_eq!(&got[VNET_HDR_LEN..], &frame[..]);
        assert!(a.caps().max_frame < 65_507);

        // A Linux peer's plain frame reaches an offload port behind a
        // plain header; the other way round it is counted, not misread.
        let mut linux = port(false);
        aim(&mut linux, &b);
        aim(&mut b, &linux);
        linux
            .try_send_vectored(&[IoSlice::new(&frame[..100])])
            .unwrap();
        let got = recv(&b).await;
        assert_eq!(VnetHdr::parse(&got), Some(VnetHdr::PLAIN));
        assert_eq!(&got[VNET_HDR_LEN..], &frame[..100]);
        aim(&mut linux, &b);
        b.try_send_vectored(&[
            IoSlice::new(&VnetHdr::PLAIN.encode()),
            IoSlice::new(&frame[..100]),
        ])
        .unwrap();
        b.try_send_vectored(&[
            IoSlice::new(&VnetHdr::PLAIN.encode()),
            IoSlice::new(&frame[..100]),
        ])
        .unwrap();
        // Both are refused; a third, from a stranger, too (a peer is
        // known by its address and port).
        let mut s = port_at("127.0.0.3", false);
        aim(&mut s, &linux);
        s.try_send_vectored(&[IoSlice::new(&frame[..100])]).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut buf = vec![0u8; 70_000];
        assert_eq!(
            linux.try_recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let drops = linux.drops();
        assert!(
            drops.contains(&("vxlan-unexpected-offload", 2)),
            "{drops:?}"
        );
        assert!(drops.contains(&("vxlan-unknown-peer", 1)), "{drops:?}");
    }

    #[tokio::test]
    async fn the_peer_is_its_address_and_port_and_a_flood_of_strangers_costs_one_budget() {
        let (mut a, mut b) = (port(false), port(false));
        aim(&mut a, &b);
        aim(&mut b, &a);
        // From a's address, but another port: any local user could.
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut datagram = vxlan::header(7, false).to_vec();
        datagram.extend_from_slice(&[0x42; 60]);
        for _ in 0..REFUSED_PER_READ + 10 {
            stranger
                .send_to(&datagram, b.local_addr().unwrap())
                .unwrap();
        }
        a.try_send_vectored(&[IoSlice::new(&[0x42; 60])]).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // One read refuses a budget's worth and yields...
        let mut buf = vec![0u8; 70_000];
        let first = b.try_recv(&mut buf).unwrap_err();
        assert_eq!(first.kind(), io::ErrorKind::WouldBlock);
        // ... and the next gets past the rest to the peer's frame.
        assert_eq!(b.try_recv(&mut buf).unwrap(), 60);
        let refused = REFUSED_PER_READ as u64 + 10;
        assert_eq!(b.drops(), vec![("vxlan-unknown-peer", refused)]);
    }
}
