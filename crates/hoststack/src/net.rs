//! The tokio face of a service host.
//!
//! [`Host`] owns a [`Stack`] behind a lock. Frames from the fabric are
//! queued by [`Host::deliver`]; the host's driver ([`Host::run`]) feeds
//! them to the stack, lets sockets send, and hands what they send to the
//! fabric. The sockets ([`TcpListener`], [`TcpStream`], [`UdpSocket`]) take
//! the lock for each call and register wakers with smoltcp, so hyper,
//! tokio-util codecs and the like run on them unchanged.

use crate::config::HostConfig;
use crate::decision::Decision;
use crate::flow::FlowKey;
use crate::stack::{HostStatus, SockId, Stack};
use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use wire::{Frame, FramePool, Instant};

/// Rounds the driver runs back to back before it lets other tasks in.
const ROUNDS_PER_TURN: usize = 16;

/// Received frames one round takes into the stack: the sockets' readers
/// get their turn between rounds, as they would between a kernel's NAPI
/// polls, instead of finding their buffers overrun by a whole queue at
/// once (the fabric's threads fill the queue in parallel with the driver).
const RX_PER_ROUND: usize = 64;

/// The frames a host's rounds reuse: those received, those sent.
#[derive(Debug, Default)]
pub struct Rounds {
    rx: Vec<Frame>,
    out: Vec<Frame>,
}

/// Where a host's frames go, and what it decided about the frames a trace
/// follows.
pub trait Link {
    fn send(&mut self, frames: &[Frame]);

    /// The host's decisions about traced frame `trace`.
    fn traced(&mut self, trace: u64, decisions: Vec<Decision>) {
        let _ = (trace, decisions);
    }
}

impl<F: FnMut(&[Frame])> Link for F {
    fn send(&mut self, frames: &[Frame]) {
        self(frames)
    }
}

/// A service host: cheap to clone, all clones are the same host.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.inner.name)
            .finish()
    }
}

struct Inner {
    name: String,
    stack: Mutex<Stack>,
    rx: Mutex<RxQueue>,
    rx_limit: usize,
    /// Wakes the driver: frames arrived or a socket has something to send.
    wake: Notify,
    stopping: AtomicBool,
    /// Whether a traced frame ever reached the host: until one does, no
    /// connection has a trace to note a decision on, and a service's
    /// notes cost nothing (no lock of the stack per request).
    traced: AtomicBool,
    epoch: std::time::Instant,
}

struct RxQueue {
    frames: Vec<Frame>,
    pool: FramePool,
}

impl Inner {
    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn stack(&self) -> MutexGuard<'_, Stack> {
        self.stack.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn rx(&self) -> MutexGuard<'_, RxQueue> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a socket call under the lock and wakes the driver if the call
    /// gave a socket something to send.
    fn with_stack<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        let (r, kick) = {
            let mut stack = self.stack();
            let r = f(&mut stack);
            (r, stack.take_kick())
        };
        if kick {
            self.wake.notify_one();
        }
        r
    }
}

impl Host {
    pub fn new(config: HostConfig) -> Host {
        let epoch = std::time::Instant::now();
        let frame_size = usize::from(config.mtu) + 18;
        Host {
            inner: Arc::new(Inner {
                name: config.name.clone(),
                rx_limit: config.rx_queue,
                stack: Mutex::new(Stack::new(config, Instant::ZERO)),
                rx: Mutex::new(RxQueue {
                    frames: Vec::new(),
                    pool: FramePool::new(frame_size, 1024),
                }),
                wake: Notify::new(),
                stopping: AtomicBool::new(false),
                traced: AtomicBool::new(false),
                epoch,
            }),
        }
    }

    /// Queues a frame from the fabric (given in pieces) for the driver;
    /// `trace` is its id in a trace (0 if none follows it).
    pub fn deliver(&self, pieces: &[&[u8]], trace: u64) {
        if trace != 0 {
            self.inner.traced.store(true, Ordering::Relaxed);
        }
        {
            let mut q = self.inner.rx();
            if q.frames.len() >= self.inner.rx_limit {
                drop(q);
                self.inner.stack().count_rx_queue_full();
                return;
            }
            let mut f = q.pool.get();
            for p in pieces {
                f.extend_from_slice(p);
            }
            f.trace = trace;
            q.frames.push(f);
        }
        self.inner.wake.notify_one();
    }

    /// One round of the host's work at `now`: the frames delivered since
    /// the last round into the stack, what the sockets send and the timers
    /// due out through `transmit`. Returns whether there is more to do at
    /// once, and when the stack next wants a round. [`Host::run`] calls it
    /// on the wall clock; a simulator calls it on its own.
    pub fn round(
        &self,
        buffers: &mut Rounds,
        now: Instant,
        link: &mut impl Link,
    ) -> (bool, Option<Instant>) {
        let inner = &self.inner;
        let stopping = inner.stopping.load(Ordering::Acquire);
        let Rounds { rx, out } = buffers;
        {
            let mut q = inner.rx();
            for f in rx.drain(..) {
                q.pool.put(f);
            }
            if q.frames.len() <= RX_PER_ROUND {
                std::mem::swap(rx, &mut q.frames);
            } else {
                rx.extend(q.frames.drain(..RX_PER_ROUND));
            }
        }
        let (busy, next) = {
            let mut stack = inner.stack();
            for f in out.drain(..) {
                stack.frame_pool().put(f);
            }
            for f in rx.iter() {
                stack.set_trace(f.trace);
                // A panic on one frame costs that frame, not the host.
                let one = AssertUnwindSafe(|| stack.ingress(now, f.data(), out));
                if std::panic::catch_unwind(one).is_err() {
                    stack.count_internal_error();
                }
                if f.trace != 0 {
                    let decisions = stack.take_decisions();
                    stack.set_trace(0);
                    link.traced(f.trace, decisions);
                }
            }
            let mut notes = stack.take_notes().into_iter().peekable();
            while let Some((trace, first)) = notes.next() {
                let mut decisions = vec![first];
                while let Some((_, d)) = notes.next_if(|(t, _)| *t == trace) {
                    decisions.push(d);
                }
                link.traced(trace, decisions);
            }
            if stopping {
                stack.close_all();
            }
            stack.poll(now, out);
            (stack.busy(), stack.poll_at())
        };
        if !out.is_empty() {
            link.send(out);
        }
        (busy || !inner.rx().frames.is_empty(), next)
    }

    /// Whether [`Host::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Acquire)
    }

    /// Drives the host until [`Host::stop`]: received frames into the
    /// stack, sockets' output and timers out through `transmit`.
    pub async fn run(&self, mut link: impl Link) {
        let inner = &self.inner;
        let mut buffers = Rounds::default();
        let mut rounds = 0;
        loop {
            let stopping = self.is_stopping();
            let (more, next) = self.round(&mut buffers, inner.now(), &mut link);
            if stopping {
                return;
            }
            rounds += 1;
            if more && rounds < ROUNDS_PER_TURN {
                continue;
            }
            rounds = 0;
            if more {
                tokio::task::yield_now().await;
                continue;
            }
            match next {
                Some(t) => {
                    let at = inner.epoch + std::time::Duration::from_micros(t.micros());
                    tokio::select! {
                        _ = inner.wake.notified() => {}
                        _ = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => inner.wake.notified().await,
            }
        }
    }

    /// Makes the driver close every connection (a FIN, or a RST where data
    /// was left unread, as a kernel does for an exiting process), send
    /// that, and return.
    pub fn stop(&self) {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Adds what a service decided (`name` for tools, `text` for people)
    /// about the data traced frame `trace` brought to that frame's trace
    /// (a no-op for 0, an untraced frame).
    pub fn trace_note(&self, trace: u64, name: &'static str, text: String) {
        if trace != 0 {
            self.inner
                .with_stack(|s| s.note_traced(trace, Decision::Service { name, text }));
        }
    }

    /// The host's first address of each family.
    pub fn addresses(&self) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
        self.inner.with_stack(|s| s.addresses())
    }

    pub fn status(&self) -> HostStatus {
        self.inner.stack().status()
    }

    /// Listens on a TCP port of every address of the host.
    pub fn listen(&self, port: u16, backlog: usize) -> io::Result<TcpListener> {
        self.inner.with_stack(|s| s.tcp_listen(port, backlog))?;
        Ok(TcpListener {
            host: self.clone(),
            port,
        })
    }

    pub async fn connect(&self, remote: SocketAddr) -> io::Result<TcpStream> {
        let id = self.inner.with_stack(|s| s.tcp_connect(remote))?;
        // Owned from here, so that a connect abandoned half way (a
        // timeout) releases its socket; its local address is known once
        // connected.
        let unbound = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0);
        let mut stream = TcpStream {
            host: self.clone(),
            id,
            key: FlowKey {
                local: unbound,
                remote,
            },
        };
        poll_fn(|cx| self.inner.with_stack(|s| s.poll_connected(id, cx))).await?;
        stream.key = self
            .inner
            .stack()
            .tcp_addrs(id)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        Ok(stream)
    }

    /// A server's UDP socket on `port` (0: an ephemeral one).
    pub fn bind_udp(&self, port: u16) -> io::Result<UdpSocket> {
        self.bind_udp_sized(port, crate::stack::UDP_SERVER_BYTES)
    }

    /// A UDP socket holding `bytes` each way (a resolver's query, a
    /// balancer's flow need less than a server): a larger datagram is
    /// dropped as it arrives.
    pub fn bind_udp_sized(&self, port: u16, bytes: usize) -> io::Result<UdpSocket> {
        let (id, port) = self.inner.with_stack(|s| s.udp_bind_sized(port, bytes))?;
        Ok(UdpSocket {
            host: self.clone(),
            id,
            port,
        })
    }
}

#[derive(Debug)]
pub struct TcpListener {
    host: Host,
    port: u16,
}

impl TcpListener {
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let inner = &self.host.inner;
        let (id, key) = poll_fn(|cx| inner.with_stack(|s| s.poll_accept(self.port, cx))).await?;
        let stream = TcpStream {
            host: self.host.clone(),
            id,
            key,
        };
        Ok((stream, key.remote))
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let port = self.port;
        self.host.inner.with_stack(|s| s.tcp_unlisten(port));
    }
}

/// A TCP connection on a service host.
#[derive(Debug)]
pub struct TcpStream {
    host: Host,
    id: SockId,
    /// Its addresses, fixed when it was accepted or connected: they stay
    /// known after the peer resets it.
    key: FlowKey,
}

impl TcpStream {
    pub fn local_addr(&self) -> SocketAddr {
        self.key.local
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.key.remote
    }

    /// Resets the connection instead of closing it.
    pub fn abort(&self) {
        let id = self.id;
        self.host.inner.with_stack(|s| s.tcp_abort(id));
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let id = self.id;
        let r = self
            .host
            .inner
            .with_stack(|s| s.poll_recv(id, cx, buf.initialize_unfilled()));
        r.map_ok(|n| buf.advance(n))
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let id = self.id;
        self.host.inner.with_stack(|s| s.poll_send(id, cx, data))
    }

    /// Written data is with the stack and the driver has been woken: as
    /// with a kernel socket, there is nothing more to flush.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Sends a FIN after the data written so far; reading goes on.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        self.host.inner.with_stack(|s| s.tcp_shutdown(id));
        Poll::Ready(Ok(()))
    }
}

impl TcpStream {
    /// A handle that tells, while the connection lasts, which traced frame
    /// last brought it data, and notes a service's decisions on it.
    pub fn trace_probe(&self) -> TraceProbe {
        TraceProbe {
            host: self.host.clone(),
            id: self.id,
        }
    }
}

/// See [`TcpStream::trace_probe`].
#[derive(Debug, Clone)]
pub struct TraceProbe {
    host: Host,
    id: SockId,
}

impl TraceProbe {
    /// Notes what the service decided about the data the connection last
    /// received, on that data's traced frame (nothing if untraced).
    pub fn note(&self, name: &'static str, text: impl FnOnce() -> String) {
        if !self.host.inner.traced.load(Ordering::Relaxed) {
            return;
        }
        let id = self.id;
        let trace = self.host.inner.with_stack(|s| s.tcp_last_trace(id));
        if trace != 0 {
            self.host.trace_note(trace, name, text());
        }
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        let id = self.id;
        self.host.inner.with_stack(|s| s.release(id));
    }
}

/// A UDP socket on a service host.
#[derive(Debug)]
pub struct UdpSocket {
    host: Host,
    id: SockId,
    port: u16,
}

impl UdpSocket {
    pub fn local_port(&self) -> u16 {
        self.port
    }

    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, from, _) = self.recv_traced(buf).await?;
        Ok((n, from))
    }

    /// A datagram, its sender, and the id of the traced frame that carried
    /// it (0 if no trace followed it): give that id to
    /// [`UdpSocket::send_to_answering`] and the trace links the answer.
    pub async fn recv_traced(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, u64)> {
        let id = self.id;
        poll_fn(|cx| self.host.inner.with_stack(|s| s.poll_udp_recv(id, cx, buf))).await
    }

    pub async fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.send_to_answering(buf, to, 0).await
    }

    /// Sends `buf` to `to` as the answer to traced frame `answering` (an
    /// id from [`UdpSocket::recv_traced`]; 0 for none).
    pub async fn send_to_answering(
        &self,
        buf: &[u8],
        to: SocketAddr,
        answering: u64,
    ) -> io::Result<usize> {
        let id = self.id;
        poll_fn(|cx| {
            self.host
                .inner
                .with_stack(|s| s.poll_udp_send(id, cx, buf, to, answering))
        })
        .await
    }

    /// Sends `buf` to `to` (answering traced frame `answering`, or 0) now
    /// if the socket has room (true); false, and nothing else done, if it
    /// has not (then use [`UdpSocket::send_to_answering`]).
    pub fn try_send_to(&self, buf: &[u8], to: SocketAddr, answering: u64) -> io::Result<bool> {
        let id = self.id;
        self.host
            .inner
            .with_stack(|s| s.try_udp_send(id, buf, to, answering))
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        let id = self.id;
        self.host.inner.with_stack(|s| s.release(id));
    }
}
