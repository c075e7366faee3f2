//! A precise alarm for the timer task: a timerfd on the monotonic clock,
//! awaited through tokio. tokio's own timer counts whole milliseconds and
//! rounds up, which would add up to two milliseconds to every delay an
//! impaired link holds a frame for; a timerfd fires within microseconds.

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::Duration;
use tokio::io::unix::AsyncFd;

#[derive(Debug)]
pub(crate) struct Alarm {
    timer: TimerFd,
    /// The same descriptor, to await and to read the expiry count from.
    ready: AsyncFd<File>,
}

impl Alarm {
    pub(crate) fn new() -> io::Result<Alarm> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        let file = File::from(timer.as_fd().try_clone_to_owned()?);
        // tokio deprecated `new` because an `AsyncFd` over a borrowed
        // descriptor could outlive it; this one owns its `File`, so the
        // descriptor lives exactly as long as the registration.
        #[allow(deprecated)]
        let ready = AsyncFd::new(file)?;
        Ok(Alarm { timer, ready })
    }

    /// Waits `after` (at least a microsecond).
    pub(crate) async fn sleep(&self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_micros(1));
        self.timer.set(
            Expiration::OneShot(TimeSpec::from_duration(after)),
            TimerSetTimeFlags::empty(),
        )?;
        loop {
            let mut guard = self.ready.readable().await?;
            let mut expirations = [0u8; 8];
            match guard.try_io(|f| f.get_ref().read(&mut expirations)) {
                Ok(result) => return result.map(drop),
                Err(_would_block) => continue,
            }
        }
    }
}
