//! IPv4 reassembly (RFC 791) in front of smoltcp: bounded, evicting, on
//! the caller's clock.
//!
//! smoltcp reassembles in a few fixed slots, and a packet it cannot finish
//! holds its slot until it times out (60 s): four forged fragments would
//! make a host deaf to fragmented traffic for a minute. A service host
//! reassembles here instead. At most `max_packets` packets and `max_bytes`
//! of payload are in progress; a new packet evicts the oldest; one not
//! complete within `timeout` is forgotten. A complete packet is handed on
//! as one frame (MF clear, offset 0, length and header checksum set), so
//! the flow classifier and smoltcp see an ordinary packet, its ports
//! included. Overlapping fragments are taken as they come (the later bytes
//! win), as Linux does for IPv4.
//!
//! Never reads a clock, never touches a socket.

use serde::Serialize;
use smoltcp::wire::{EthernetFrame, Ipv4Packet};
use std::time::Duration;
use wire::Instant;

/// The bounds of the reassembly table.
#[derive(Debug, Clone, Copy)]
pub struct ReassemblyLimits {
    pub max_packets: usize,
    /// Payload bytes held at most, all packets together.
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_packets: 64,
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What became of fragments, for `scratchnet status`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReassemblyCounters {
    pub reassembled: u64,
    /// Packets forgotten to make room for newer ones.
    pub evicted: u64,
    /// Packets not completed in time.
    pub timed_out: u64,
    /// Fragments that cannot be placed (a non-final one whose length is
    /// not a multiple of 8, or one ending past 65,535 bytes).
    pub malformed: u64,
}

/// Which packet a fragment belongs to (RFC 791: source, destination,
/// protocol and identification).
type Key = ([u8; 4], [u8; 4], u8, u16);

#[derive(Debug)]
struct Partial {
    key: Key,
    started: Instant,
    /// The first fragment's Ethernet and IP headers, once it has come.
    head: Option<Vec<u8>>,
    payload: Vec<u8>,
    /// Which 8-byte blocks of the payload have arrived.
    blocks: Vec<u64>,
    /// The payload's length, once the last fragment has come.
    end: Option<usize>,
}

impl Partial {
    fn mark(&mut self, from: usize, to: usize) {
        let (first, last) = (from / 8, to.div_ceil(8));
        if self.blocks.len() * 64 < last {
            self.blocks.resize(last.div_ceil(64), 0);
        }
        for b in first..last {
            self.blocks[b / 64] |= 1 << (b % 64);
        }
    }

    fn complete(&self) -> bool {
        let (Some(end), Some(_)) = (self.end, &self.head) else {
            return false;
        };
        let blocks = end.div_ceil(8);
        (0..blocks).all(|b| {
            self.blocks
                .get(b / 64)
                .is_some_and(|w| w & (1 << (b % 64)) != 0)
        })
    }
}

/// Packets being reassembled. See the module documentation.
#[derive(Debug)]
pub struct Reassembly {
    limits: ReassemblyLimits,
    partial: Vec<Partial>,
    bytes: usize,
    counters: ReassemblyCounters,
}

impl Reassembly {
    pub fn new(limits: ReassemblyLimits) -> Reassembly {
        Reassembly {
            limits,
            partial: Vec::new(),
            bytes: 0,
            counters: ReassemblyCounters::default(),
        }
    }

    pub fn counters(&self) -> &ReassemblyCounters {
        &self.counters
    }

    pub fn in_progress(&self) -> usize {
        self.partial.len()
    }

    /// Takes a fragment (an Ethernet frame); returns the whole packet's
    /// frame when this fragment completes it.
    pub fn push(&mut self, now: Instant, frame: &[u8]) -> Option<Vec<u8>> {
        self.expire(now);
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        let ihl = usize::from(ip.header_len());
        let (offset, more) = (usize::from(ip.frag_offset()), ip.more_frags());
        let data = ip.payload();
        let end = offset + data.len();
        if (more && data.len() % 8 != 0) || ihl + end > 65_535 {
            self.counters.malformed += 1;
            return None;
        }
        let key = (
            ip.src_addr().octets(),
            ip.dst_addr().octets(),
            u8::from(ip.next_header()),
            ip.ident(),
        );
        if !self.partial.iter().any(|p| p.key == key) {
            if self.partial.len() >= self.limits.max_packets {
                self.evict_oldest_except(key);
            }
            self.partial.push(Partial {
                key,
                started: now,
                head: None,
                payload: Vec::new(),
                blocks: Vec::new(),
                end: None,
            });
        }
        // Room for the bytes this fragment adds, from older packets.
        let held = |r: &Reassembly| {
            r.partial
                .iter()
                .find(|p| p.key == key)
                .map_or(0, |p| p.payload.len())
        };
        let grow = end.saturating_sub(held(self));
        while self.bytes + grow > self.limits.max_bytes {
            if !self.evict_oldest_except(key) {
                // It alone is over the budget.
                if let Some(at) = self.partial.iter().position(|p| p.key == key) {
                    self.remove(at);
                    self.counters.evicted += 1;
                }
                return None;
            }
        }
        let at = self.partial.iter().position(|p| p.key == key)?;
        self.bytes += grow;
        let p = &mut self.partial[at];
        if p.payload.len() < end {
            p.payload.resize(end, 0);
        }
        p.payload[offset..end].copy_from_slice(data);
        p.mark(offset, end);
        if offset == 0 {
            p.head = Some(frame[..14 + ihl].to_vec());
        }
        if !more {
            p.end = Some(end);
        }
        if !p.complete() {
            return None;
        }
        let p = self.remove(at);
        let mut whole = p.head.unwrap_or_default();
        let end = p.end.unwrap_or(0);
        whole.extend_from_slice(&p.payload[..end]);
        let mut ip = Ipv4Packet::new_unchecked(&mut whole[14..]);
        ip.set_total_len((ihl + end) as u16);
        ip.set_more_frags(false);
        ip.set_frag_offset(0);
        ip.fill_checksum();
        self.counters.reassembled += 1;
        Some(whole)
    }

    /// Forgets packets that have not completed in time.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.limits.timeout;
        while let Some(at) = self
            .partial
            .iter()
            .position(|p| now.saturating_since(p.started) >= timeout)
        {
            self.remove(at);
            self.counters.timed_out += 1;
        }
    }

    /// When the oldest packet in progress times out.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.partial
            .iter()
            .map(|p| p.started + self.limits.timeout)
            .min()
    }

    /// Forgets the oldest packet other than `keep`'s; false if none.
    fn evict_oldest_except(&mut self, keep: Key) -> bool {
        let oldest = (0..self.partial.len())
            .filter(|&i| self.partial[i].key != keep)
            .min_by_key(|&i| self.partial[i].started);
        match oldest {
            Some(at) => {
                self.remove(at);
                self.counters.evicted += 1;
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, at: usize) -> Partial {
        let p = self.partial.swap_remove(at);
        self.bytes -= p.payload.len();
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fragments of a UDP datagram of `len` payload bytes, `size` bytes of
    /// IP payload each, as Ethernet frames.
    fn fragments(ident: u16, len: usize, size: usize) -> Vec<Vec<u8>> {
        let mut datagram = vec![0u8; 8 + len];
        datagram[0..2].copy_from_slice(&1000u16.to_be_bytes());
        datagram[2..4].copy_from_slice(&7u16.to_be_bytes());
        datagram[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
        for (i, b) in datagram[8..].iter_mut().enumerate() {
            *b = i as u8;
        }
        datagram
            .chunks(size)
            .enumerate()
            .map(|(i, chunk)| {
                let mut f = vec![0u8; 14];
                f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
                let mut ip = vec![0u8; 20];
                let mut p = Ipv4Packet::new_unchecked(&mut ip[..]);
                p.set_version(4);
                p.set_header_len(20);
                p.set_total_len((20 + chunk.len()) as u16);
                p.set_ident(ident);
                p.set_more_frags((i + 1) * size < datagram.len());
                p.set_frag_offset((i * size) as u16);
                p.set_hop_limit(64);
                p.set_next_header(smoltcp::wire::IpProtocol::Udp);
                p.set_src_addr([10, 0, 0, 1].into());
                p.set_dst_addr([10, 0, 0, 2].into());
                p.fill_checksum();
                f.extend_from_slice(&ip);
                f.extend_from_slice(chunk);
                f
            })
            .collect()
    }

    #[test]
    fn fragments_in_any_order_make_the_packet() {
        let mut r = Reassembly::new(ReassemblyLimits::default());
        let mut frags = fragments(7, 3000, 1480);
        frags.reverse();
        let t = Instant::from_secs(1);
        assert!(r.push(t, &frags[0]).is_none());
        assert!(r.push(t, &frags[1]).is_none());
        let whole = r.push(t, &frags[2]).expect("complete");
        let ip = Ipv4Packet::new_checked(&whole[14..]).expect("valid");
        assert!(ip.verify_checksum() && !ip.more_frags() && ip.frag_offset() == 0);
        assert_eq!(usize::from(ip.total_len()), 20 + 8 + 3000);
        assert_eq!(ip.payload()[8 + 2999], (2999 % 256) as u8);
        assert_eq!((r.in_progress(), r.counters().reassembled), (0, 1));
    }

    #[test]
    fn a_storm_of_unfinished_packets_evicts_instead_of_deafening() {
        let limits = ReassemblyLimits {
            max_packets: 4,
            max_bytes: 64 * 1024,
            timeout: Duration::from_secs(30),
        };
        let mut r = Reassembly::new(limits);
        let t = Instant::from_secs(1);
        for ident in 0..10_000u16 {
            r.push(t, &fragments(ident, 3000, 1480)[0]);
        }
        assert_eq!(r.in_progress(), 4);
        assert!(r.counters().evicted >= 9_996);
        // A real packet, its fragments back to back, still gets through.
        let real = fragments(60_000, 3000, 1480);
        let got: Vec<_> = real.iter().filter_map(|f| r.push(t, f)).collect();
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn byte_budget_and_timeout_hold() {
        let limits = ReassemblyLimits {
            max_packets: 64,
            max_bytes: 16 * 1024,
            timeout: Duration::from_secs(30),
        };
        let mut r = Reassembly::new(limits);
        let t = Instant::from_secs(1);
        // Last fragments far out: each would hold ~60 KB.
        for ident in 0..100u16 {
            let frags = fragments(ident, 60_000, 1480);
            r.push(t, frags.last().expect("fragments"));
        }
        assert!(r.bytes <= 16 * 1024);
        r.push(t, &fragments(500, 3000, 1480)[0]);
        r.expire(t + Duration::from_secs(31));
        assert_eq!((r.in_progress(), r.bytes), (0, 0));
        assert!(r.counters().timed_out >= 1);
        // Malformed: a non-final fragment whose length is not a multiple of 8.
        let mut odd = fragments(9, 3000, 1480).remove(0);
        odd.truncate(odd.len() - 1);
        let n = odd.len() - 14;
        let mut ip = Ipv4Packet::new_unchecked(&mut odd[14..]);
        ip.set_total_len(n as u16);
        ip.fill_checksum();
        assert!(r.push(t, &odd).is_none());
        assert_eq!(r.counters().malformed, 1);
    }
}
