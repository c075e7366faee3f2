//! Token buckets on the caller's clock: `rate` events per second in
//! bursts of `burst`, alone ([`RateLimiter`]: a router's ICMP errors per
//! type) or one per client in a bounded table ([`PerClient`]: DHCP
//! messages per MAC, a balancer's requests per address). Never reads a
//! clock.

use crate::Instant;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

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

/// A token bucket per client, for at most `max` clients: a new client past
/// that replaces the one heard from least recently.
#[derive(Debug, Clone)]
pub struct PerClient<K> {
    rate: u32,
    burst: u32,
    max: usize,
    buckets: HashMap<K, RateLimiter>,
}

impl<K: Hash + Eq + Copy> PerClient<K> {
    pub fn new(rate: u32, burst: u32, max: usize) -> PerClient<K> {
        PerClient {
            rate,
            burst,
            max,
            buckets: HashMap::new(),
        }
    }

    /// Takes a token from `client`'s bucket if it has one.
    pub fn allow(&mut self, now: Instant, client: K) -> bool {
        if !self.buckets.contains_key(&client) && self.buckets.len() >= self.max {
            let stalest = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last())
                .map(|(k, _)| *k);
            if let Some(k) = stalest {
                self.buckets.remove(&k);
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        self.buckets
            .entry(client)
            .or_insert_with(|| RateLimiter::new(rate, burst))
            .allow(now)
    }

    /// Forgets the clients not heard from for `idle` (their buckets would
    /// be full again).
    pub fn forget_idle(&mut self, now: Instant, idle: Duration) {
        self.buckets
            .retain(|_, b| now.saturating_since(b.last()) < idle);
    }

    /// Clients with a bucket.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
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

    #[test]
    fn per_client_buckets_are_bounded_and_the_stalest_goes() {
        let mut p = PerClient::new(1, 2, 2);
        let t = Instant::from_secs(10);
        assert!(p.allow(t, 'a') && p.allow(t, 'a') && !p.allow(t, 'a'));
        assert!(p.allow(t + Duration::from_secs(1), 'b'));
        // 'c' replaces 'a', the stalest: 'a' comes back with a full bucket.
        assert!(p.allow(t + Duration::from_secs(2), 'c'));
        assert_eq!(p.len(), 2);
        let later = t + Duration::from_secs(3);
        assert!(p.allow(later, 'a') && p.allow(later, 'a'));
    }
}
