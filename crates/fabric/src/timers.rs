//! When each node of the fabric next wants its timer: a deadline per node
//! and a heap of them, so the timer task visits the nodes that are due and
//! never scans, or locks, the others.
//!
//! A node's deadline changes only under that node's lock: a run notes the
//! node's wish after it handled a frame (kept only if it is earlier), the
//! timer sets it after the node's timer ran. Each value a deadline takes
//! is pushed on the heap once, so a deadline always has its entry; entries
//! it left behind come up, find the node not due, and are forgotten.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use wire::Instant;

/// A node with timers, by its index in the fabric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct NodeRef(pub u32);

const NEVER: u64 = u64::MAX;

/// When one node wants its timer next, in microseconds ([`NEVER`] if not).
#[derive(Debug)]
pub(crate) struct Deadline(AtomicU64);

impl Default for Deadline {
    fn default() -> Self {
        Deadline(AtomicU64::new(NEVER))
    }
}

/// The heap of every node's deadline.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: Mutex<BinaryHeap<Reverse<(u64, NodeRef)>>>,
}

impl Timers {
    fn heap(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Reverse<(u64, NodeRef)>>> {
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After `node` handled a frame, with its lock held: `at` is when it
    /// now wants its timer, which moves only if that is sooner.
    pub(crate) fn note(&self, node: NodeRef, deadline: &Deadline, at: Option<Instant>) {
        let Some(at) = at.map(Instant::micros) else {
            return;
        };
        if at < deadline.0.load(Ordering::Relaxed) {
            deadline.0.store(at, Ordering::Relaxed);
            self.heap().push(Reverse((at, node)));
        }
    }

    /// After `node`'s timer ran at `now` (or it was found not due), with
    /// its lock held: `at` is its deadline from now on.
    pub(crate) fn set(
        &self,
        node: NodeRef,
        deadline: &Deadline,
        at: Option<Instant>,
        now: Instant,
    ) {
        let at = at.map_or(NEVER, Instant::micros);
        let old = deadline.0.swap(at, Ordering::Relaxed);
        // The old value's entry is still on the heap unless it came up
        // in this round (every entry due by `now` did).
        let has_entry = old == at && old > now.micros();
        if at != NEVER && !has_entry {
            self.heap().push(Reverse((at, node)));
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap()
            .peek()
            .map(|Reverse((t, _))| Instant::from_micros(*t))
    }

    /// Takes the nodes due by `now` off the heap into `out`, each once,
    /// in the order the nodes were added.
    pub(crate) fn take_due(&self, now: Instant, out: &mut Vec<NodeRef>) {
        let mut heap = self.heap();
        while let Some(&Reverse((t, node))) = heap.peek() {
            if t > now.micros() {
                break;
            }
            heap.pop();
            out.push(node);
        }
        drop(heap);
        out.sort_unstable();
        out.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(us: u64) -> Option<Instant> {
        Some(Instant::from_micros(us))
    }

    #[test]
    fn a_node_comes_up_once_at_its_earliest_deadline() {
        let timers = Timers::default();
        let d = Deadline::default();
        let n = NodeRef(0);
        timers.note(n, &d, at(500));
        timers.note(n, &d, at(900)); // later: ignored
        timers.note(n, &d, at(300));
        assert_eq!(timers.next(), at(300));
        let mut due = Vec::new();
        timers.take_due(Instant::from_micros(299), &mut due);
        assert!(due.is_empty());
        timers.take_due(Instant::from_micros(300), &mut due);
        assert_eq!(due, [n]);
        // Its timer ran: it now wants 2,000.
        timers.set(n, &d, at(2000), Instant::from_micros(300));
        // The stale entry at 500 comes up; the node is not due and says
        // so again, which must not add a second entry at 2,000.
        due.clear();
        timers.take_due(Instant::from_micros(500), &mut due);
        assert_eq!(due, [n]);
        timers.set(n, &d, at(2000), Instant::from_micros(500));
        due.clear();
        timers.take_due(Instant::from_micros(2000), &mut due);
        assert_eq!(due, [n]);
        timers.set(n, &d, None, Instant::from_micros(2000));
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn due_nodes_come_in_the_order_they_were_added() {
        let timers = Timers::default();
        let (a, b, c) = (
            Deadline::default(),
            Deadline::default(),
            Deadline::default(),
        );
        timers.note(NodeRef(2), &a, at(10));
        timers.note(NodeRef(1), &b, at(20));
        timers.note(NodeRef(0), &c, at(30));
        let mut due = Vec::new();
        timers.take_due(Instant::from_micros(30), &mut due);
        assert_eq!(due, [NodeRef(0), NodeRef(1), NodeRef(2)]);
    }
}
