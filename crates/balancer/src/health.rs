//! Whether a backend is fit to take traffic.
//!
//! Three verdicts combine:
//!
//! * **active checks** (a TCP connect or an HTTP GET every `interval`):
//!   a backend goes down after `fall` failed checks in a row and back up
//!   after `rise` good ones (as HAProxy's `rise`/`fall`); it starts up;
//! * **outlier ejection** (passive, from real traffic, as Envoy's
//!   consecutive-errors detection): `eject_after` failures in a row
//!   (connect failures, resets, timeouts, 5xx answers) eject it for
//!   `eject_base`, twice as long at each ejection in a row (at most
//!   `eject_max`); its first success after an ejection forgives it;
//! * **draining**, set by the operator: no new connections or requests;
//!   those under way finish.
//!
//! A backend is *available* when it is up, not ejected and not draining.

use std::time::{Duration, Instant};

/// How a pool judges its backends.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Time between two active checks of a backend.
    pub interval: Duration,
    /// How long a check may take.
    pub timeout: Duration,
    /// Good checks in a row that bring a down backend up.
    pub rise: u32,
    /// Failed checks in a row that take an up backend down.
    pub fall: u32,
    /// Failures of real traffic in a row that eject a backend (0: never).
    pub eject_after: u32,
    /// How long the first ejection lasts.
    pub eject_base: Duration,
    /// How long an ejection lasts at most.
    pub eject_max: Duration,
}

impl Default for HealthConfig {
    fn default() -> HealthConfig {
        HealthConfig {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            rise: 2,
            fall: 3,
            eject_after: 5,
            eject_base: Duration::from_secs(10),
            eject_max: Duration::from_secs(300),
        }
    }
}

/// What became of one request (or connection) sent to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (any status below 500), after `latency`.
    Ok { latency: Duration },
    /// Answered with a 5xx status.
    ServerError { latency: Duration },
    /// The connection was refused, or not made in time.
    ConnectFailed,
    /// The connection broke (reset, closed early) before the answer.
    Reset,
    /// No answer in time.
    Timeout,
}

impl Outcome {
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Ok { .. })
    }

    pub fn latency(self) -> Option<Duration> {
        match self {
            Outcome::Ok { latency } | Outcome::ServerError { latency } => Some(latency),
            _ => None,
        }
    }
}

/// One backend's health.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    /// The active checks' verdict.
    pub down: bool,
    /// Consecutive active check results against the current verdict.
    streak: u32,
    /// Consecutive failures of real traffic.
    failures: u32,
    /// Ejected until then.
    pub ejected_until: Option<Instant>,
    /// Ejections in a row (the next lasts 2^this times the base).
    ejections: u32,
    pub draining: bool,
}

impl Health {
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|t| now < t)
    }

    pub fn is_available(&self, now: Instant) -> bool {
        !self.down && !self.draining && !self.is_ejected(now)
    }

    /// An active check's result; the new verdict if it changed.
    pub fn check(&mut self, ok: bool, config: &HealthConfig) -> Option<bool> {
        if ok != self.down {
            // The result agrees with the verdict: nothing builds up.
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.down { config.rise } else { config.fall };
        if self.streak < needed.max(1) {
            return None;
        }
        self.streak = 0;
        self.down = !self.down;
        Some(!self.down)
    }

    /// What real traffic met; whether the backend is ejected by it.
    pub fn outcome(&mut self, now: Instant, outcome: Outcome, config: &HealthConfig) -> bool {
        if !outcome.is_failure() {
            self.failures = 0;
            if !self.is_ejected(now) {
                self.ejections = 0;
            }
            return false;
        }
        self.failures += 1;
        if config.eject_after == 0 || self.failures < config.eject_after || self.is_ejected(now) {
            return false;
        }
        self.failures = 0;
        let factor = 1u32 << self.ejections.min(16);
        let length = config
            .eject_base
            .saturating_mul(factor)
            .min(config.eject_max);
        self.ejections += 1;
        self.ejected_until = Some(now + length);
        true
    }
}
