//! TIME-WAIT without a socket.
//!
//! A connection this host closed first must linger for a while so that a
//! lost final ACK can be sent again and old segments die out (RFC 9293
//! 3.6.1). Keeping a whole smoltcp socket for that would hold its buffers;
//! instead the pair is remembered here, and a retransmitted FIN is
//! answered with an ACK built from the segment itself. The table is
//! bounded: past its size the oldest pair is forgotten early, as Linux does
//! past `tcp_max_tw_buckets`.

use crate::flow::{FlowKey, TcpSeen};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol, IpRepr,
    TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, ETHERNET_HEADER_LEN,
};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use wire::{Frame, FramePool};

#[derive(Debug)]
pub(crate) struct TimeWait {
    linger: Duration,
    limit: usize,
    pairs: HashMap<FlowKey, Instant>,
    /// Pairs in the order they entered; every pair lingers equally long.
    order: VecDeque<(Instant, FlowKey)>,
}

impl TimeWait {
    pub fn new(linger: Duration, limit: usize) -> TimeWait {
        TimeWait {
            linger,
            limit,
            pairs: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn contains(&self, key: &FlowKey) -> bool {
        self.pairs.contains_key(key)
    }

    /// Starts the wait for a pair; returns whether an older pair had to be
    /// forgotten to make room.
    pub fn insert(&mut self, now: Instant, key: FlowKey) -> bool {
        let mut evicted = false;
        if self.pairs.len() >= self.limit {
            while let Some((_, old)) = self.order.pop_front() {
                if self.pairs.remove(&old).is_some() {
                    evicted = true;
                    break;
                }
            }
        }
        let until = now + self.linger.into();
        self.pairs.insert(key, until);
        self.order.push_back((until, key));
        evicted
    }

    pub fn remove(&mut self, key: &FlowKey) {
        self.pairs.remove(key);
    }

    /// Forgets the pairs whose wait is over.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(until, key)) = self.order.front() {
            if until > now {
                break;
            }
            self.order.pop_front();
            if self.pairs.get(&key) == Some(&until) {
                self.pairs.remove(&key);
            }
        }
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.order.front().map(|(t, _)| *t)
    }
}

/// The ACK a TIME-WAIT endpoint sends for a segment that takes sequence
/// space (a retransmitted FIN): from the segment's own numbers, to the
/// hardware address it came from.
pub(crate) fn ack(frame: &[u8], seen: &TcpSeen, pool: &mut FramePool, out: &mut Vec<Frame>) {
    let Ok(eth_in) = EthernetFrame::new_checked(frame) else {
        return;
    };
    let tcp = TcpRepr {
        src_port: seen.key.local.port(),
        dst_port: seen.key.remote.port(),
        control: TcpControl::None,
        seq_number: TcpSeqNumber(seen.ack_no as i32),
        ack_number: Some(TcpSeqNumber(seen.seq.wrapping_add(seen.seg_len) as i32)),
        window_len: 0,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload: &[],
    };
    let (src, dst) = (
        IpAddress::from(seen.key.local.ip()),
        IpAddress::from(seen.key.remote.ip()),
    );
    let ip = IpRepr::new(src, dst, IpProtocol::Tcp, tcp.buffer_len(), 64);
    let eth = EthernetRepr {
        src_addr: eth_in.dst_addr(),
        dst_addr: EthernetAddress(eth_in.src_addr().0),
        ethertype: match ip {
            IpRepr::Ipv4(_) => EthernetProtocol::Ipv4,
            IpRepr::Ipv6(_) => EthernetProtocol::Ipv6,
        },
    };
    let len = ETHERNET_HEADER_LEN + ip.buffer_len();
    let caps = ChecksumCapabilities::default();
    let mut f = pool.get();
    f.set_len(len);
    let mut e = EthernetFrame::new_unchecked(f.data_mut());
    eth.emit(&mut e);
    let packet = e.payload_mut();
    ip.emit(&mut packet[..], &caps);
    tcp.emit(
        &mut TcpPacket::new_unchecked(&mut packet[ip.header_len()..]),
        &src,
        &dst,
        &caps,
    );
    out.push(f);
}
