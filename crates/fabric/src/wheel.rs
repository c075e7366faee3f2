//! A timer wheel for frames a link holds: one slot per millisecond for
//! [`SLOTS`] ms ahead, a sorted overflow beyond. Items keep their exact
//! due time and leave on it, to the microsecond, never early; inserting
//! and expiring cost O(1) per item; no task or timer per frame.

use std::collections::BTreeMap;
use wire::Instant;

/// Slots of one millisecond: a little over four seconds ahead.
const SLOTS: usize = 4096;
const TICK_US: u64 = 1000;

/// Items due at instants.
#[derive(Debug)]
pub(crate) struct Wheel<T> {
    slots: Vec<Vec<(Instant, T)>>,
    /// The tick `slots[cursor]` stands for: nothing before it is held.
    origin: u64,
    cursor: usize,
    len: usize,
    /// Items due [`SLOTS`] ticks or more past `origin`.
    far: BTreeMap<(Instant, u64), T>,
    seq: u64,
    /// When the earliest item is due.
    next: Option<Instant>,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Wheel {
            slots: Vec::new(),
            origin: 0,
            cursor: 0,
            len: 0,
            far: BTreeMap::new(),
            seq: 0,
            next: None,
        }
    }
}

fn tick_of(at: Instant) -> u64 {
    at.micros() / TICK_US
}

impl<T> Wheel<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Holds `item` until `at`; `now` is the present.
    pub(crate) fn insert(&mut self, now: Instant, at: Instant, item: T) {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, Vec::new);
        }
        if self.len == 0 {
            self.origin = tick_of(now);
        }
        let ahead = (tick_of(at).max(self.origin) - self.origin) as usize;
        if ahead < SLOTS {
            self.slots[(self.cursor + ahead) % SLOTS].push((at, item));
        } else {
            self.seq += 1;
            self.far.insert((at, self.seq), item);
        }
        self.len += 1;
        self.next = Some(self.next.map_or(at, |n| n.min(at)));
    }

    /// When the earliest item is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.next
    }

    /// Moves every item due by `now` to `out`, earliest millisecond first.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<T>) {
        while let Some(next) = self.next.filter(|n| *n <= now) {
            let tick = tick_of(next).max(self.origin);
            self.advance((tick - self.origin) as usize);
            let slot = &mut self.slots[self.cursor];
            let before = slot.len();
            if slot.iter().all(|(at, _)| *at <= now) {
                out.extend(slot.drain(..).map(|(_, item)| item));
            } else {
                let mut kept = Vec::new();
                for (at, item) in slot.drain(..) {
                    if at <= now {
                        out.push(item);
                    } else {
                        kept.push((at, item));
                    }
                }
                *slot = kept;
            }
            self.len -= before - self.slots[self.cursor].len();
            self.next = self.find_next();
        }
    }

    /// Moves the origin `n` ticks on, pulling overflow items into range.
    fn advance(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.cursor = (self.cursor + n) % SLOTS;
        self.origin += n as u64;
        while let Some(entry) = self.far.first_entry() {
            let at = entry.key().0;
            if tick_of(at) >= self.origin + SLOTS as u64 {
                break;
            }
            let item = entry.remove();
            let ahead = (tick_of(at).max(self.origin) - self.origin) as usize;
            self.slots[(self.cursor + ahead) % SLOTS].push((at, item));
        }
    }

    /// The earliest due time: in the first slot holding anything, or in
    /// the overflow.
    fn find_next(&self) -> Option<Instant> {
        if self.len > self.far.len() {
            for ahead in 0..SLOTS {
                let slot = &self.slots[(self.cursor + ahead) % SLOTS];
                if let Some(at) = slot.iter().map(|(at, _)| *at).min() {
                    return Some(at);
                }
            }
        }
        self.far.keys().next().map(|k| k.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn items_come_out_on_time_never_early() {
        let mut w = Wheel::default();
        w.insert(ms(0), ms(50), "b");
        w.insert(ms(0), ms(10), "a");
        w.insert(ms(0), Instant::from_micros(10_500), "a2");
        w.insert(ms(0), ms(6000), "far");
        assert_eq!(w.next_due(), Some(ms(10)));
        let mut out = Vec::new();
        w.expire(Instant::from_micros(9_999), &mut out);
        assert!(out.is_empty());
        w.expire(ms(10), &mut out);
        assert_eq!(out, ["a"]);
        // To the microsecond: a2 is due at 10.5 ms, not at 11.
        assert_eq!(w.next_due(), Some(Instant::from_micros(10_500)));
        w.expire(Instant::from_micros(10_499), &mut out);
        assert_eq!(out, ["a"]);
        w.expire(ms(49), &mut out);
        assert_eq!(out, ["a", "a2"]);
        w.expire(ms(100), &mut out);
        assert_eq!(out, ["a", "a2", "b"]);
        assert_eq!(w.next_due(), Some(ms(6000)));
        w.expire(ms(5999), &mut out);
        assert_eq!(out.len(), 3);
        w.expire(ms(7000), &mut out);
        assert_eq!(out.last(), Some(&"far"));
        assert_eq!((w.len(), w.next_due()), (0, None));
    }

    #[test]
    fn an_idle_wheel_restarts_at_the_present() {
        let mut w = Wheel::default();
        w.insert(ms(0), ms(1), 1);
        let mut out = Vec::new();
        w.expire(ms(1), &mut out);
        // An hour later, a frame due 5 ms on is not "far".
        w.insert(ms(3_600_000), ms(3_600_005), 2);
        w.expire(ms(3_600_004), &mut out);
        assert_eq!(out, [1]);
        w.expire(ms(3_600_005), &mut out);
        assert_eq!(out, [1, 2]);
    }

    #[test]
    fn an_item_due_in_the_past_is_due_now() {
        let mut w = Wheel::default();
        w.insert(ms(100), ms(100), 1);
        w.insert(ms(100), ms(50), 0);
        let mut out = Vec::new();
        w.expire(ms(100), &mut out);
        assert_eq!(out, [1, 0]);
    }
}
