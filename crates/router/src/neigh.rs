//! The neighbour cache of both families (ARP, RFC 826; neighbour
//! discovery, RFC 4861) and the packets waiting for an answer.
//!
//! An entry lives [`REACHABLE`] after it was last confirmed by an ARP
//! packet or a neighbour advertisement from the neighbour (NUD's
//! REACHABLE, then STALE); using an entry in its last [`REFRESH_WINDOW`]
//! sends a unicast ARP request to confirm it. A packet for a next hop with
//! no entry waits in a bounded queue while a request is sent every
//! [`RETRY`]; after [`MAX_REQUESTS`] unanswered requests the waiting
//! packets are dropped (and the router answers each with ICMP Host
//! Unreachable).
//!
//! Both tables are fed from the wire and bounded ([`NeighbourLimits`]):
//! the cache holds at most `max_entries` (the least recently confirmed one
//! is evicted for a new one) and is swept every [`SWEEP`] whatever else is
//! pending; waiting packets are kept as compact copies within a byte
//! budget for the whole router, so an address sweep cannot pin memory.

use crate::IfaceId;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;
use wire::{Frame, Instant, Mac};

pub const REACHABLE: Duration = Duration::from_secs(60);
pub const REFRESH_WINDOW: Duration = Duration::from_secs(15);
pub const RETRY: Duration = Duration::from_secs(1);
pub const MAX_REQUESTS: u8 = 3;
/// Packets kept per unresolved next hop: Linux's `unres_qlen` (101), so
/// that a burst of new connections to one server (a hundred clients'
/// SYNs) waits out its ARP instead of losing all but a few to a
/// one-second retransmission. All queues share the byte budget below.
pub const QUEUE_LIMIT: usize = 101;
/// How often stale entries are swept.
pub const SWEEP: Duration = Duration::from_secs(5);

/// The bounds of a router's neighbour tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourLimits {
    /// Cache entries at most (all interfaces).
    pub max_entries: usize,
    /// Bytes of packets waiting for ARP at most (all next hops).
    pub queue_bytes: usize,
}

impl Default for NeighbourLimits {
    fn default() -> Self {
        NeighbourLimits {
            max_entries: 4096,
            queue_bytes: 1 << 20,
        }
    }
}

/// What became of a packet offered to the queue.
#[derive(Debug)]
pub enum Queued {
    /// Queued; `first`: send a request now. `pushed_out`: the oldest packet
    /// for that next hop, dropped to make room.
    Yes {
        first: bool,
        pushed_out: Option<Frame>,
    },
    /// The byte budget is spent: the packet is dropped.
    OverBudget,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    mac: Mac,
    confirmed: Instant,
    /// When a refresh request was last sent for this entry.
    refreshing: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Pending {
    packets: VecDeque<Frame>,
    requests: u8,
    next_request: Instant,
}

/// A cache row, as `scratchnet status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NeighbourRow {
    pub iface: IfaceId,
    pub ip: IpAddr,
    pub mac: Mac,
    pub age_secs: u64,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(Mac),
    /// Found, and due for a refresh: send a unicast request to it.
    FoundRefresh(Mac),
    Missing,
}

#[derive(Debug, Default, Clone)]
pub struct Neighbours {
    entries: HashMap<(IfaceId, IpAddr), Entry>,
    pending: HashMap<(IfaceId, IpAddr), Pending>,
    limits: NeighbourLimits,
    /// Footprint of the waiting packets.
    queued_bytes: usize,
    last_sweep: Instant,
    /// Entries pushed out by newer ones at the size limit.
    pub evicted: u64,
}

/// Packets given up on after the last unanswered request.
pub type Expired = Vec<(IfaceId, IpAddr, Frame)>;

impl Neighbours {
    pub fn new(limits: NeighbourLimits) -> Neighbours {
        Neighbours {
            limits,
            ..Neighbours::default()
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub fn lookup(&mut self, now: Instant, iface: IfaceId, ip: IpAddr) -> Lookup {
        let Some(e) = self.entries.get_mut(&(iface, ip)) else {
            return Lookup::Missing;
        };
        let age = now.saturating_since(e.confirmed);
        if age >= REACHABLE {
            self.entries.remove(&(iface, ip));
            return Lookup::Missing;
        }
        if age >= REACHABLE - REFRESH_WINDOW
            && e.refreshing
                .is_none_or(|t| now.saturating_since(t) >= RETRY)
        {
            e.refreshing = Some(now);
            return Lookup::FoundRefresh(e.mac);
        }
        Lookup::Found(e.mac)
    }

    /// Whether a request for `ip` is outstanding.
    pub fn waits_for(&self, iface: IfaceId, ip: IpAddr) -> bool {
        self.pending.contains_key(&(iface, ip))
    }

    /// Whether an entry (live or not yet swept) exists.
    pub fn knows(&self, iface: IfaceId, ip: IpAddr) -> bool {
        self.entries.contains_key(&(iface, ip))
    }

    /// Records `ip` at `mac` and returns the packets that were waiting for it.
    pub fn confirm(
        &mut self,
        now: Instant,
        iface: IfaceId,
        ip: IpAddr,
        mac: Mac,
    ) -> VecDeque<Frame> {
        let key = (iface, ip);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.limits.max_entries {
            let stalest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.confirmed)
                .map(|(k, _)| *k);
            if let Some(k) = stalest {
                self.entries.remove(&k);
                self.evicted += 1;
            }
        }
        self.entries.insert(
            key,
            Entry {
                mac,
                confirmed: now,
                refreshing: None,
            },
        );
        let packets = self
            .pending
            .remove(&key)
            .map(|p| p.packets)
            .unwrap_or_default();
        self.queued_bytes -= packets.iter().map(Frame::footprint).sum::<usize>();
        packets
    }

    /// Queues a packet (a compact copy: see [`Frame::compact`]) for an
    /// unresolved next hop, within the byte budget.
    pub fn enqueue(&mut self, now: Instant, iface: IfaceId, ip: IpAddr, frame: Frame) -> Queued {
        if self.queued_bytes + frame.footprint() > self.limits.queue_bytes {
            return Queued::OverBudget;
        }
        self.queued_bytes += frame.footprint();
        let mut first = false;
        let p = self.pending.entry((iface, ip)).or_insert_with(|| {
            first = true;
            Pending {
                packets: VecDeque::new(),
                requests: 1,
                next_request: now + RETRY,
            }
        });
        let pushed_out = if p.packets.len() >= QUEUE_LIMIT {
            p.packets.pop_front()
        } else {
            None
        };
        p.packets.push_back(frame);
        if let Some(old) = &pushed_out {
            self.queued_bytes -= old.footprint();
        }
        Queued::Yes { first, pushed_out }
    }

    /// The next time a request is due, a queue gives up, or the cache is
    /// swept.
    pub fn poll_at(&self) -> Option<Instant> {
        let sweep = (!self.entries.is_empty()).then(|| self.last_sweep + SWEEP);
        self.pending
            .values()
            .map(|p| p.next_request)
            .chain(sweep)
            .min()
    }

    /// Returns the next hops to ask again, and the packets of those that
    /// have had their [`MAX_REQUESTS`].
    pub fn on_timer(
        &mut self,
        now: Instant,
        retry: &mut Vec<(IfaceId, IpAddr)>,
        expired: &mut Expired,
    ) {
        let due: Vec<(IfaceId, IpAddr)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next_request <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let Some(p) = self.pending.get_mut(&key) else {
                continue;
            };
            if p.requests >= MAX_REQUESTS {
                if let Some(p) = self.pending.remove(&key) {
                    self.queued_bytes -= p.packets.iter().map(Frame::footprint).sum::<usize>();
                    expired.extend(p.packets.into_iter().map(|f| (key.0, key.1, f)));
                }
            } else {
                p.requests += 1;
                p.next_request = now + RETRY;
                retry.push(key);
            }
        }
        if now >= self.last_sweep + SWEEP {
            self.last_sweep = now;
            self.entries
                .retain(|_, e| now.saturating_since(e.confirmed) < REACHABLE);
        }
    }

    pub fn rows(&self, now: Instant) -> Vec<NeighbourRow> {
        let mut rows: Vec<NeighbourRow> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_since(e.confirmed) < REACHABLE)
            .map(|(&(iface, ip), e)| NeighbourRow {
                iface,
                ip,
                mac: e.mac,
                age_secs: now.saturating_since(e.confirmed).as_secs(),
            })
            .collect();
        rows.sort_by_key(|r| (r.iface, r.ip));
        rows
    }
}
