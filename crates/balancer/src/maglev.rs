//! Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and
//! Reliable Software Network Load Balancer", NSDI 2016, section 3.4).
//!
//! Each backend gets a permutation of the table's slots from two hashes of
//! its name (an offset and a skip); backends take turns claiming their
//! next free preferred slot until the table is full. Every backend owns
//! almost the same number of slots, and a key's backend is the owner of
//! slot `hash % M`. When a backend leaves, the others keep nearly all of
//! their slots, so only about 1/N of the keys move.

use crate::hash64;

/// The table size: a prime well above the number of backends (the paper
/// uses 65,537), so that each backend's share differs by under 1%.
pub const TABLE_SIZE: usize = 65_537;

/// A lookup table over a set of backends.
#[derive(Debug, Clone)]
pub struct Table {
    /// The backend (an index into the names given) owning each slot.
    slots: Vec<u32>,
}

impl Table {
    /// The table over `names` (an empty table when there are none).
    pub fn new(names: &[&str]) -> Table {
        Table::with_size(names, TABLE_SIZE)
    }

    /// As [`Table::new`], with `size` slots (a prime).
    pub fn with_size(names: &[&str], size: usize) -> Table {
        if names.is_empty() || size < 2 {
            return Table { slots: Vec::new() };
        }
        let m = size as u64;
        let prefs: Vec<(u64, u64)> = names
            .iter()
            .map(|n| {
                let offset = hash64(n.as_bytes(), 0x6d61_676c) % m;
                let skip = hash64(n.as_bytes(), 0x736b_6970) % (m - 1) + 1;
                (offset, skip)
            })
            .collect();
        let mut next = vec![0u64; names.len()];
        let mut slots = vec![u32::MAX; size];
        let mut filled = 0;
        'fill: loop {
            for (i, (offset, skip)) in prefs.iter().enumerate() {
                let mut c = (offset + next[i] * skip) % m;
                while slots[c as usize] != u32::MAX {
                    next[i] += 1;
                    c = (offset + next[i] * skip) % m;
                }
                slots[c as usize] = i as u32;
                next[i] += 1;
                filled += 1;
                if filled == size {
                    break 'fill;
                }
            }
        }
        Table { slots }
    }

    /// The backend (index into the names given) for `key`.
    pub fn lookup(&self, key: u64) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = (key % self.slots.len() as u64) as usize;
        self.slots.get(slot).map(|b| *b as usize)
    }
}
