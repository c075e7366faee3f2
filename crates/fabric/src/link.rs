//! Impaired links: what a port's cable does to the frames it carries —
//! delay, jitter, loss, duplication, reordering, a rate limit with a
//! bounded queue, or no carrier at all — as `tc netem` would on the
//! interface, decided here frame by frame, sans-IO.
//!
//! The fabric asks a [`Link`] for each frame's [`Fate`] and holds the
//! delayed ones in its timer wheel. Each direction draws from its own
//! seeded generator, so the same seed and the same frames give the same
//! drops. A port whose link is perfect has no `Link` and pays one branch.

use crate::rng::Rng;
use std::time::Duration;
use wire::{Impairment, Instant};

/// Bytes one link may hold in flight (delayed or queued) at once: beyond
/// it frames are dropped and counted, so no setting pins unbounded memory.
pub(crate) const HELD_LIMIT: usize = 16 << 20;

/// A direction on a port's link: `Out` carries what the port's host (or
/// router interface) sends into the fabric, `In` what the fabric sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Out,
    In,
}

/// Why a link lost a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkDrop {
    Down,
    Loss,
    QueueFull,
    OverLimit,
}

impl LinkDrop {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LinkDrop::Down => "link down",
            LinkDrop::Loss => "impairment loss",
            LinkDrop::QueueFull => "rate limit queue full",
            LinkDrop::OverLimit => "link holds 16 MiB already",
        }
    }
}

/// What becomes of one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fate {
    Drop(LinkDrop),
    /// On at once; `reordered`: it skipped the delay the others wait.
    Now {
        reordered: bool,
    },
    /// Held until then.
    At(Instant),
}

/// What a link did, since the lab started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LinkCounters {
    /// Frames held for a delay or behind the rate limit.
    pub delayed: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Tail drops of the rate limit's queue.
    pub queue_full: u64,
    /// Drops because the link held [`HELD_LIMIT`] bytes already.
    pub over_limit: u64,
    /// Frames lost while the link was down.
    pub down: u64,
}

/// A port's link as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkStatus {
    pub up: bool,
    pub impairment: Impairment,
    /// The impairment in words ("delay 50ms, loss 1% (out)").
    pub summary: String,
    pub counters: LinkCounters,
    /// Bytes in flight on the link now.
    pub held_bytes: usize,
}

/// One direction's state.
#[derive(Debug, Clone)]
struct Shaper {
    rng: Rng,
    /// When the rate limit has sent everything queued, in nanoseconds of
    /// the lab clock.
    busy_until_ns: u64,
}

/// The state of one port's link.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    imp: Impairment,
    up: bool,
    out: Shaper,
    inn: Shaper,
    pub(crate) held_bytes: usize,
    pub(crate) counters: LinkCounters,
}

/// FNV-1a: a port's name mixed into the lab's seed, so each link draws
/// its own sequence whatever order links are set in.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Link {
    pub(crate) fn new(seed: u64, port_name: &str) -> Link {
        let s = seed ^ name_hash(port_name);
        Link {
            imp: Impairment::default(),
            up: true,
            out: Shaper {
                rng: Rng::new(s),
                busy_until_ns: 0,
            },
            inn: Shaper {
                rng: Rng::new(s ^ 0x5bd1_e995_5bd1_e995),
                busy_until_ns: 0,
            },
            held_bytes: 0,
            counters: LinkCounters::default(),
        }
    }

    pub(crate) fn set(&mut self, imp: Impairment, up: bool) {
        self.imp = imp;
        self.up = up;
    }

    pub(crate) fn impairment(&self) -> Impairment {
        self.imp
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up
    }

    /// Whether frames going `side` need the link's attention at all.
    pub(crate) fn acts_on(&self, side: Side, frame: &[u8]) -> bool {
        let covered = match side {
            Side::Out => self.imp.direction.covers_out(),
            Side::In => self.imp.direction.covers_in(),
        };
        !self.up || (covered && !self.imp.is_none() && self.imp.family.covers(frame))
    }

    /// Whether a super-frame must be cut into packets before its fate is
    /// drawn (loss, duplication and reordering act on packets).
    pub(crate) fn per_packet(&self) -> bool {
        self.up && self.imp.per_packet()
    }

    /// The longest a frame may stay on the link: how long a trace waits
    /// for frames it follows.
    pub(crate) fn longest_hold(&self) -> Duration {
        let queue = match self.imp.rate {
            Some(rate) => {
                Duration::from_secs_f64(self.imp.queue_bytes() as f64 * 8.0 / rate as f64)
            }
            None => Duration::ZERO,
        };
        self.imp.delay + self.imp.jitter + queue
    }

    /// Whether this frame is sent twice.
    pub(crate) fn duplicate(&mut self, side: Side) -> bool {
        let p = self.imp.duplicate;
        let dup = self.shaper(side).rng.chance(p);
        if dup {
            self.counters.duplicated += 1;
        }
        dup
    }

    fn shaper(&mut self, side: Side) -> &mut Shaper {
        match side {
            Side::Out => &mut self.out,
            Side::In => &mut self.inn,
        }
    }

    /// The fate of a frame of `len` bytes going `side` now: the link's
    /// carrier, then loss, then the rate limit (serialisation behind what
    /// is queued, tail drop past the queue), then the propagation delay
    /// with its jitter, unless the frame is reordered past it.
    pub(crate) fn fate(&mut self, now: Instant, side: Side, len: usize) -> Fate {
        if !self.up {
            self.counters.down += 1;
            return Fate::Drop(LinkDrop::Down);
        }
        let imp = self.imp;
        if self.held_bytes + len > HELD_LIMIT {
            self.counters.over_limit += 1;
            return Fate::Drop(LinkDrop::OverLimit);
        }
        let sh = self.shaper(side);
        if sh.rng.chance(imp.loss) {
            self.counters.lost += 1;
            return Fate::Drop(LinkDrop::Loss);
        }
        let now_ns = now.micros().saturating_mul(1000);
        let mut at_ns = now_ns;
        if let Some(rate) = imp.rate {
            let start = sh.busy_until_ns.max(now_ns);
            let backlog = u128::from(start - now_ns) * u128::from(rate) / 8_000_000_000;
            if backlog + len as u128 > u128::from(imp.queue_bytes()) {
                self.counters.queue_full += 1;
                return Fate::Drop(LinkDrop::QueueFull);
            }
            let tx = (len as u128 * 8_000_000_000 / u128::from(rate)) as u64;
            sh.busy_until_ns = start + tx;
            at_ns = sh.busy_until_ns;
        }
        let reordered = sh.rng.chance(imp.reorder);
        let delays = !(imp.delay.is_zero() && imp.jitter.is_zero());
        if delays && !reordered {
            let mut d = imp.delay.as_nanos() as f64;
            if !imp.jitter.is_zero() {
                d += imp.jitter.as_nanos() as f64 * (2.0 * sh.rng.unit() - 1.0);
            }
            at_ns += d.max(0.0) as u64;
        }
        if reordered {
            self.counters.reordered += 1;
        }
        // The lab clock counts microseconds: round up, never early.
        let at = Instant::from_micros(at_ns.div_ceil(1000));
        if at <= now {
            Fate::Now { reordered }
        } else {
            self.counters.delayed += 1;
            Fate::At(at)
        }
    }

    pub(crate) fn status(&self) -> LinkStatus {
        LinkStatus {
            up: self.up,
            impairment: self.imp,
            summary: self.imp.to_string(),
            counters: self.counters,
            held_bytes: self.held_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn link(settings: &[(&str, &str)]) -> Link {
        let mut imp = Impairment::default();
        for (k, v) in settings {
            imp.set(k, v).unwrap();
        }
        let mut l = Link::new(7, "alice");
        l.set(imp, true);
        l
    }

    #[test]
    fn a_family_setting_leaves_the_other_family_alone() {
        let l = link(&[("loss", "100%"), ("family", "ipv6")]);
        let frame = |ethertype: u16| {
            let mut f = vec![0u8; 60];
            f[12..14].copy_from_slice(&ethertype.to_be_bytes());
            f
        };
        assert!(l.acts_on(Side::Out, &frame(0x86dd)));
        assert!(!l.acts_on(Side::Out, &frame(0x0800)));
        assert!(!l.acts_on(Side::Out, &frame(0x0806)));
        assert_eq!(l.impairment().to_string(), "loss 100% (out, IPv6 only)");
    }

    #[test]
    fn a_rate_limit_spaces_frames_and_drops_at_the_tail() {
        // 8 Mbit/s: a 1000-byte frame takes 1 ms; the queue holds 3000 bytes.
        let mut l = link(&[("rate", "8mbit"), ("queue", "3000")]);
        let t0 = Instant::from_secs(1);
        let fates: Vec<Fate> = (0..5).map(|_| l.fate(t0, Side::Out, 1000)).collect();
        assert_eq!(fates[0], Fate::At(t0 + Duration::from_millis(1)));
        assert_eq!(fates[2], Fate::At(t0 + Duration::from_millis(3)));
        assert_eq!(fates[3], Fate::Drop(LinkDrop::QueueFull));
        assert_eq!(l.counters.queue_full, 2);
        // The other direction has a queue of its own.
        assert_eq!(
            l.fate(t0, Side::In, 1000),
            Fate::At(t0 + Duration::from_millis(1))
        );
    }

    #[test]
    fn reordered_frames_skip_the_delay_and_a_down_link_drops_everything() {
        let mut l = link(&[("delay", "10ms"), ("reorder", "50%")]);
        let now = Instant::from_secs(1);
        let fates: Vec<Fate> = (0..1000).map(|_| l.fate(now, Side::Out, 100)).collect();
        let ahead = fates
            .iter()
            .filter(|f| **f == Fate::Now { reordered: true })
            .count();
        assert!((400..600).contains(&ahead), "{ahead}");
        assert_eq!(l.counters.reordered, ahead as u64);
        let imp = l.impairment();
        l.set(imp, false);
        assert!(l.acts_on(Side::In, &[]));
        assert_eq!(l.fate(now, Side::In, 100), Fate::Drop(LinkDrop::Down));
    }
}
