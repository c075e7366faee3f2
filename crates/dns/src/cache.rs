//! The resolver's cache: answers and negative answers by question, bounded
//! by entries and by bytes, and evicted in O(log n).
//!
//! Each entry is indexed by when it expires; when a bound is reached the
//! entry that expires first goes (an expired one kept for serve-stale
//! before any live one), found in the index rather than by a scan of the
//! whole cache. Sans-IO: time comes in with each call.

use hickory_proto::rr::{LowerName, Record, RecordType};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// What the cache holds for a question.
#[derive(Debug, Clone)]
pub(crate) enum Cached {
    Records(Vec<Record>),
    /// NXDOMAIN (`true`) or NODATA, with the SOA to show.
    Negative(bool, Box<Record>),
}

impl Cached {
    /// About what it costs in memory: its records' names and data.
    fn bytes(&self) -> usize {
        let record = |r: &Record| 64 + r.name.len() + r.data.to_string().len();
        match self {
            Cached::Records(rs) => rs.iter().map(record).sum(),
            Cached::Negative(_, soa) => record(soa),
        }
    }
}

/// A cached answer.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub value: Cached,
    pub stored: Instant,
    pub ttl: u32,
    /// Its key in the expiry index.
    expires: (Instant, u64),
    bytes: usize,
}

type Question = (LowerName, RecordType);

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Cache {
    entries: HashMap<Question, Entry>,
    /// Questions by when their entry expires (and a sequence number, so
    /// that keys are unique).
    by_expiry: BTreeMap<(Instant, u64), Question>,
    next: u64,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl Cache {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Cache {
        Cache {
            entries: HashMap::new(),
            by_expiry: BTreeMap::new(),
            next: 0,
            bytes: 0,
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    pub(crate) fn get(&self, question: &Question) -> Option<&Entry> {
        self.entries.get(question)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// About how many bytes the entries take.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Stores `value` for `ttl` seconds from `now`, making room first.
    pub(crate) fn insert(&mut self, now: Instant, question: Question, value: Cached, ttl: u32) {
        self.remove(&question);
        let bytes = value.bytes();
        while !self.entries.is_empty()
            && (self.entries.len() >= self.max_entries || self.bytes + bytes > self.max_bytes)
        {
            let Some((_, first)) = self.by_expiry.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&first) {
                self.bytes -= e.bytes;
            }
        }
        if bytes > self.max_bytes {
            return;
        }
        let expires = (now + Duration::from_secs(u64::from(ttl)), self.next);
        self.next += 1;
        self.by_expiry.insert(expires, question.clone());
        self.bytes += bytes;
        self.entries.insert(
            question,
            Entry {
                value,
                stored: now,
                ttl,
                expires,
                bytes,
            },
        );
    }

    fn remove(&mut self, question: &Question) {
        if let Some(e) = self.entries.remove(question) {
            self.by_expiry.remove(&e.expires);
            self.bytes -= e.bytes;
        }
    }

    /// Forgets every entry for `name` (of any type), or everything:
    /// `unbound-control flush` and `flush_zone`... for a lab. Returns how
    /// many entries went.
    pub(crate) fn flush(&mut self, name: Option<&LowerName>) -> usize {
        let Some(name) = name else {
            let n = self.entries.len();
            self.entries.clear();
            self.by_expiry.clear();
            self.bytes = 0;
            return n;
        };
        let gone: Vec<Question> = self
            .entries
            .keys()
            .filter(|(n, _)| n == name)
            .cloned()
            .collect();
        for q in &gone {
            self.remove(q);
        }
        gone.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData};

    fn answer(name: &str, ttl: u32) -> (Question, Cached) {
        let n = Name::from_ascii(name).expect("name");
        let r = Record::from_rdata(n.clone(), ttl, RData::A(A::new(192, 0, 2, 1)));
        (
            (LowerName::new(&n), RecordType::A),
            Cached::Records(vec![r]),
        )
    }

    #[test]
    fn past_its_bound_the_entry_that_expires_first_goes() {
        let t0 = Instant::now();
        let mut c = Cache::new(3, usize::MAX);
        for (name, ttl) in [("a.", 300), ("b.", 10), ("c.", 600), ("d.", 60)] {
            let (q, v) = answer(name, ttl);
            c.insert(t0, q, v, ttl);
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(&answer("b.", 10).0).is_none(), "b expired first");
        // Storing a question again replaces it, within the bound.
        let (q, v) = answer("a.", 5);
        c.insert(t0, q.clone(), v, 5);
        assert_eq!((c.len(), c.get(&q).map(|e| e.ttl)), (3, Some(5)));
    }

    #[test]
    fn bytes_are_bounded_and_a_flush_forgets_one_name_or_all() {
        let t0 = Instant::now();
        let one = answer("a.", 60).1.bytes();
        let mut c = Cache::new(1000, 2 * one);
        for name in ["a.", "b.", "c."] {
            let (q, v) = answer(name, 60);
            c.insert(t0, q, v, 60);
        }
        assert_eq!((c.len(), c.bytes()), (2, 2 * one));
        assert_eq!(c.flush(Some(&answer("c.", 60).0 .0)), 1);
        assert_eq!(c.flush(None), 1);
        assert_eq!((c.len(), c.bytes()), (0, 0));
    }
}
