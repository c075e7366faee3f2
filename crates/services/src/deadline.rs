//! A client connection's deadlines, for protocols whose library has no
//! timer of its own for a phase (protocol detection, an HTTP/2
//! connection between requests, a client that stopped reading):
//! [`Deadlined`] wraps a stream and fails it with `TimedOut`
//!
//! * when nothing has moved for `quiet` while the connection has no
//!   request in flight ([`Busy`]) and no answer waiting to be written: a
//!   client that connects and says nothing, sends half a preface, or
//!   keeps an HTTP/2 connection open with no stream (HAProxy's
//!   `timeout http-keep-alive`, nginx's `keepalive_timeout`);
//! * when nothing has moved either way for `idle`, whatever is in flight
//!   (nginx's `send_timeout`, HAProxy's `timeout client`).
//!
//! Progress only notes the time; the one timer looks at it when it fires
//! and sleeps again if things moved, so a read or write costs a clock
//! read, not a timer update.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Requests in flight on one connection: a guard per request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Busy(Arc<AtomicUsize>);

impl Busy {
    /// Counts a request until the guard is dropped.
    pub(crate) fn enter(&self) -> BusyGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        BusyGuard(self.0.clone())
    }

    fn idle(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

/// See [`Busy::enter`].
#[derive(Debug)]
pub(crate) struct BusyGuard(Arc<AtomicUsize>);

impl BusyGuard {
    /// The connection stays busy until it ends (an upgraded connection:
    /// a tunnel with no requests, where only `idle` applies).
    pub(crate) fn keep(self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream with deadlines. See the module documentation.
#[derive(Debug)]
pub(crate) struct Deadlined<S> {
    io: S,
    quiet: Duration,
    idle: Duration,
    busy: Busy,
    last_move: Instant,
    /// The last write found no room: the client is not reading.
    write_blocked: bool,
    /// When to look again.
    check: Pin<Box<Sleep>>,
}

impl<S> Deadlined<S> {
    /// `io` with the deadlines of the module documentation; its first
    /// byte must come within `quiet`.
    pub(crate) fn new(io: S, quiet: Duration, idle: Duration, busy: Busy) -> Deadlined<S> {
        Deadlined {
            io,
            quiet,
            idle,
            busy,
            last_move: Instant::now(),
            write_blocked: false,
            check: Box::pin(tokio::time::sleep(quiet)),
        }
    }

    /// Notes progress; the timer is not touched (that would cost a timer
    /// update per read): when it fires, it looks at when things last
    /// moved and goes back to sleep if they did.
    fn moved(&mut self) {
        self.last_move = Instant::now();
        self.write_blocked = false;
    }

    /// What a direction that is waiting says: still waiting, or, past a
    /// deadline, timed out.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        while self.check.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let silent = now - self.last_move;
            let waiting_on_client = self.busy.idle() && !self.write_blocked;
            if silent >= self.idle || (waiting_on_client && silent >= self.quiet) {
                return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
            }
            // Next look: when quiet would be up for the last move (or
            // idle, whichever comes first), and at least `quiet` from now
            // while something is in flight.
            let next = match waiting_on_client {
                true => self.last_move + self.quiet,
                false => (now + self.quiet).min(self.last_move + self.idle),
            };
            self.check.as_mut().reset(next);
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlined<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.waiting(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlined<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                self.write_blocked = true;
                self.waiting(cx)
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const QUIET: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_client_that_sends_nothing_is_cut_when_quiet_has_passed() {
        runtime().block_on(async {
            let (near, _far) = tokio::io::duplex(64);
            let mut s = Deadlined::new(near, QUIET, IDLE, Busy::default());
            let started = Instant::now();
            let e = s.read(&mut [0; 8]).await.expect_err("times out");
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert_eq!(started.elapsed(), QUIET);
        });
    }

    #[test]
    fn progress_moves_the_deadline_and_a_request_in_flight_waits_until_idle() {
        runtime().block_on(async {
            let (near, mut far) = tokio::io::duplex(64);
            let busy = Busy::default();
            let mut s = Deadlined::new(near, QUIET, IDLE, busy.clone());
            far.write_all(b"hi").await.expect("write");
            assert_eq!(s.read(&mut [0; 8]).await.expect("read"), 2);
            tokio::time::sleep(Duration::from_secs(8)).await;
            s.write_all(b"answer").await.expect("write");
            // A request in flight (a slow backend): only idle cuts it.
            let request = busy.enter();
            let started = Instant::now();
            let e = s.read(&mut [0; 8]).await.expect_err("times out");
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            assert_eq!(started.elapsed(), IDLE);
            drop(request);
        });
    }
}
