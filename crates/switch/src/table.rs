//! The MAC address table: (VLAN, MAC) -> port, with ageing and a size bound.

use crate::PortNo;
use std::collections::HashMap;
use std::time::Duration;
use wire::{Instant, Mac};

/// A learned address, as `scratchnet status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MacEntry {
    pub vlan: u16,
    pub mac: Mac,
    pub port: PortNo,
    /// Seconds since the address was last seen.
    pub age_secs: u64,
}

/// How often expired addresses are swept at most. Lookups ignore expired
/// entries regardless, so this only bounds stale memory.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Entry {
    port: PortNo,
    seen: Instant,
}

/// The outcome of seeing a source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    New,
    Refreshed,
    Moved,
    TableFull,
}

#[derive(Debug, Clone)]
pub(crate) struct MacTable {
    entries: HashMap<(u16, Mac), Entry>,
    capacity: usize,
    ageing: Duration,
    last_sweep: Instant,
    /// No entry was last seen before this (none: the table is empty), so
    /// none expires before it plus the ageing time: a sweep before then
    /// would find nothing.
    oldest: Option<Instant>,
}

impl MacTable {
    pub(crate) fn new(capacity: usize, ageing: Duration) -> MacTable {
        MacTable {
            entries: HashMap::with_capacity(capacity.min(1 << 16)),
            capacity,
            ageing,
            last_sweep: Instant::ZERO,
            oldest: None,
        }
    }

    fn live(&self, e: &Entry, now: Instant) -> bool {
        now.saturating_since(e.seen) < self.ageing
    }

    pub(crate) fn learn(&mut self, now: Instant, vlan: u16, mac: Mac, port: PortNo) -> Learn {
        if let Some(e) = self.entries.get_mut(&(vlan, mac)) {
            let expired = now.saturating_since(e.seen) >= self.ageing;
            let moved = e.port != port;
            *e = Entry { port, seen: now };
            return match (expired, moved) {
                (true, _) => Learn::New,
                (false, true) => Learn::Moved,
                (false, false) => Learn::Refreshed,
            };
        }
        if self.entries.len() >= self.capacity {
            // Expired entries may be holding the room; sweep at most once a
            // second so that a flood of new addresses cannot make every
            // frame scan the table.
            if now.saturating_since(self.last_sweep) >= SWEEP_INTERVAL {
                self.sweep(now);
            }
            if self.entries.len() >= self.capacity {
                return Learn::TableFull;
            }
        }
        self.entries.insert((vlan, mac), Entry { port, seen: now });
        self.oldest = Some(self.oldest.map_or(now, |o| o.min(now)));
        Learn::New
    }

    pub(crate) fn lookup(&self, now: Instant, vlan: u16, mac: Mac) -> Option<PortNo> {
        self.entries
            .get(&(vlan, mac))
            .filter(|e| self.live(e, now))
            .map(|e| e.port)
    }

    /// Removes expired entries and returns how many.
    fn sweep(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        let ageing = self.ageing;
        self.entries
            .retain(|_, e| now.saturating_since(e.seen) < ageing);
        self.oldest = self.entries.values().map(|e| e.seen).min();
        self.last_sweep = now;
        before - self.entries.len()
    }

    /// When an entry may next expire: the time to sweep, at most once a
    /// second.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        let expiry = self.oldest? + self.ageing;
        Some(expiry.max(self.last_sweep + SWEEP_INTERVAL))
    }

    /// Sweeps if [`MacTable::poll_at`] is due; returns how many entries
    /// expired.
    pub(crate) fn on_timer(&mut self, now: Instant) -> usize {
        match self.poll_at() {
            Some(at) if now >= at => self.sweep(now),
            _ => 0,
        }
    }

    pub(crate) fn entries(&self, now: Instant) -> Vec<MacEntry> {
        let mut v: Vec<MacEntry> = self
            .entries
            .iter()
            .filter(|(_, e)| self.live(e, now))
            .map(|(&(vlan, mac), e)| MacEntry {
                vlan,
                mac,
                port: e.port,
                age_secs: now.saturating_since(e.seen).as_secs(),
            })
            .collect();
        v.sort_by_key(|e| (e.vlan, e.mac));
        v
    }
}
