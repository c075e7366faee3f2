//! Capture taps: where a port's frames go when someone is watching.
//!
//! A port without a tap pays one branch per frame. A tap receives each
//! frame as it crossed the port (after any 802.1Q edit on the way out) and
//! decides itself what to do when it cannot keep up.

use wire::Instant;

/// Whether a frame entered the fabric by the port or left by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

/// Something that records frames seen on a port.
pub trait CaptureSink: Send {
    /// Records one frame, given as two pieces to be read back to back.
    fn record(&mut self, now: Instant, direction: Direction, head: &[u8], tail: &[u8]);

    /// Whether the tap is still wanted (a closed reader ends it).
    fn is_open(&self) -> bool {
        true
    }
}
