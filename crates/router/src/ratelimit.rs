//! A token bucket on the caller's clock: `rate` events per second in
//! bursts of `burst`. Limits ICMP errors (per type) and DHCP messages (per
//! client). Never reads a clock.

use std::time::Duration;
use wire::Instant;

/// A token bucket: `rate` per second, bursts of `burst`.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: u32,
    burst: u32,
    /// Tokens, in millionths.
    micro_tokens: u64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(rate: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            rate,
            burst,
            micro_tokens: u64::from(burst) * 1_000_000,
            last: Instant::ZERO,
        }
    }

    /// Takes a token if there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now
            .saturating_since(self.last)
            .min(Duration::from_secs(3600));
        self.last = self.last.max(now);
        let refill = elapsed.as_micros() as u64 * u64::from(self.rate);
        self.micro_tokens = (self.micro_tokens + refill).min(u64::from(self.burst) * 1_000_000);
        if self.micro_tokens >= 1_000_000 {
            self.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }

    /// When a token was last asked for.
    pub fn last(&self) -> Instant {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_bursts_then_refills() {
        let mut r = RateLimiter::new(10, 3);
        let t = Instant::from_secs(100);
        assert_eq!((0..5).filter(|_| r.allow(t)).count(), 3);
        assert!(!r.allow(t + Duration::from_millis(50)));
        assert!(r.allow(t + Duration::from_millis(150)));
    }
}
