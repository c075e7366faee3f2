//! Datagrams to neighbours the host has not resolved, held here and not
//! in their socket.
//!
//! smoltcp keeps a UDP datagram whose next hop has no ARP entry at the
//! head of its socket's send buffer until the neighbour answers, and
//! retries forever: one reply to a source that never answers ARP (a
//! spoofed one on the same switch) would hold every later datagram of the
//! socket, every client's, behind it. So a datagram is given to smoltcp
//! only when its next hop is known here; otherwise it waits in a bounded
//! queue while the stack asks for the neighbour, and goes to its socket
//! when the neighbour answers, or is dropped and counted after
//! [`UNRESOLVED_WAIT`], as Linux drops its unresolved queue after its
//! three probes.
//!
//! IPv6 neighbours are held the same way: smoltcp holds a datagram behind
//! a neighbour solicitation just as behind an ARP request.
//!
//! What is known mirrors smoltcp's cache: it is learnt from the same ARP
//! frames (aimed at one of the host's addresses, from a unicast sender on
//! one of its subnets) and the same neighbour solicitations and
//! advertisements (with a unicast link-layer address, from a unicast
//! source), lives no longer and holds no more entries, so a neighbour
//! known here is one smoltcp can send to. Sans-IO: the stack passes time
//! in and does the sending.

use crate::flow::{ND_ADVERT, ND_SOLICIT};
use smoltcp::time::{Duration as SDuration, Instant as SInstant};
use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use wire::ether::{EthernetHeader, ETHERTYPE_IPV6};
use wire::ip::{IpView, Transport, PROTO_ICMPV6};

/// How long a datagram waits for its neighbour (Linux: three probes a
/// second apart).
pub(crate) const UNRESOLVED_WAIT: SDuration = SDuration::from_secs(3);
/// Bytes of datagrams waiting at most, for all neighbours (Linux keeps
/// about 200 KiB per neighbour; here one budget bounds the host).
pub(crate) const UNRESOLVED_BYTES: usize = 256 * 1024;
/// Neighbours known at most, and for how long: smoltcp's cache size (the
/// `iface-neighbor-cache-count-256` feature) and entry lifetime.
const KNOWN: usize = 256;
const LIFETIME: SDuration = SDuration::from_secs(60);

/// A datagram waiting for its next hop.
#[derive(Debug)]
pub(crate) struct Parked {
    /// The socket it was sent from (the stack's slab index).
    pub sock: usize,
    pub hop: IpAddr,
    pub to: SocketAddr,
    pub data: Vec<u8>,
    /// The traced frame it answers (0 if none).
    pub trace: u32,
    /// When it began to wait: the time of the stack's first poll after it
    /// was sent (a socket call brings no time with it, and the stack's
    /// last known time may be long past after a quiet spell).
    pub since: Option<SInstant>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Neighbours {
    /// When each known neighbour's entry expires.
    known: HashMap<IpAddr, SInstant>,
    parked: VecDeque<Parked>,
    parked_bytes: usize,
}

/// What became of a datagram offered to [`Neighbours::park`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parking {
    Parked,
    /// The budget is spent: dropped.
    Full,
}

impl Neighbours {
    /// Whether smoltcp can send to `hop` now.
    pub(crate) fn is_known(&self, hop: IpAddr, now: SInstant) -> bool {
        self.known.get(&hop).is_some_and(|expires| *expires > now)
    }

    /// Learns from an ARP or neighbour discovery frame what smoltcp
    /// learns from it: an ARP sender, if the frame is aimed at one of
    /// `ours` and comes from a unicast sender `on_link`; the source of a
    /// neighbour solicitation or advertisement that carries a unicast
    /// link-layer address. Returns the neighbour learnt.
    pub(crate) fn learn(
        &mut self,
        frame: &[u8],
        now: SInstant,
        ours: impl Fn(IpAddr) -> bool,
        on_link: impl Fn(IpAddr) -> bool,
    ) -> Option<IpAddr> {
        let sender = arp_sender(frame, &ours, &on_link).or_else(|| nd_sender(frame))?;
        if self.known.len() >= KNOWN && !self.known.contains_key(&sender) {
            // smoltcp evicts the entry that expires first; so does this.
            let first = self.known.iter().min_by_key(|(_, e)| **e).map(|(a, _)| *a);
            if let Some(a) = first {
                self.known.remove(&a);
            }
        }
        self.known.insert(sender, now + LIFETIME);
        Some(sender)
    }

    /// Holds a datagram until its hop answers.
    pub(crate) fn park(&mut self, datagram: Parked) -> Parking {
        if self.parked_bytes + datagram.data.len() > UNRESOLVED_BYTES {
            return Parking::Full;
        }
        self.parked_bytes += datagram.data.len();
        self.parked.push_back(datagram);
        Parking::Parked
    }

    /// The datagrams waiting for `hop`, in the order they were sent.
    pub(crate) fn release(&mut self, hop: IpAddr) -> Vec<Parked> {
        let (ready, waiting): (VecDeque<Parked>, VecDeque<Parked>) =
            self.parked.drain(..).partition(|p| p.hop == hop);
        self.parked = waiting;
        self.parked_bytes -= ready.iter().map(|p| p.data.len()).sum::<usize>();
        ready.into()
    }

    /// Starts the wait of the datagrams parked since the last call at
    /// `now`, then drops what waited [`UNRESOLVED_WAIT`]; returns how many.
    pub(crate) fn expire(&mut self, now: SInstant) -> usize {
        for p in self.parked.iter_mut().rev() {
            if p.since.is_some() {
                break; // stamped in order: the rest are too
            }
            p.since = Some(now);
        }
        let mut dropped = 0;
        while self
            .parked
            .front()
            .is_some_and(|p| p.since.is_some_and(|t| t + UNRESOLVED_WAIT <= now))
        {
            if let Some(p) = self.parked.pop_front() {
                self.parked_bytes -= p.data.len();
                dropped += 1;
            }
        }
        dropped
    }

    /// When the oldest waiting datagram is due to be dropped.
    pub(crate) fn next_expiry(&self) -> Option<SInstant> {
        self.parked.front()?.since.map(|t| t + UNRESOLVED_WAIT)
    }

    /// Datagrams waiting, and their bytes.
    pub(crate) fn waiting(&self) -> (usize, usize) {
        (self.parked.len(), self.parked_bytes)
    }
}

/// The sender an ARP frame teaches (see [`Neighbours::learn`]).
fn arp_sender(
    frame: &[u8],
    ours: impl Fn(IpAddr) -> bool,
    on_link: impl Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Arp {
        return None;
    }
    let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()?;
    let ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr,
        source_protocol_addr: sender,
        target_protocol_addr,
        ..
    } = arp
    else {
        return None;
    };
    let unicast = !sender.is_broadcast()
        && !sender.is_multicast()
        && !sender.is_unspecified()
        && source_hardware_addr.is_unicast();
    let known_op = matches!(operation, ArpOperation::Request | ArpOperation::Reply);
    let ok = known_op && unicast && ours(target_protocol_addr.into()) && on_link(sender.into());
    ok.then_some(IpAddr::V4(sender))
}

/// The source a neighbour solicitation or advertisement teaches: smoltcp
/// fills its cache with the packet's source and the link-layer address
/// option (RFC 4861 7.2.3, 7.2.5), if both are unicast.
fn nd_sender(frame: &[u8]) -> Option<IpAddr> {
    let eth = EthernetHeader::parse(frame).ok()?;
    if eth.ethertype != ETHERTYPE_IPV6 {
        return None;
    }
    let v = IpView::parse(frame, eth.payload_offset).ok()?;
    let Transport::Icmp { ty, code: 0, .. } = v.transport else {
        return None;
    };
    if v.proto != PROTO_ICMPV6 || v.hop_limit != 255 || !matches!(ty, ND_SOLICIT | ND_ADVERT) {
        return None;
    }
    let IpAddr::V6(src) = v.src else {
        return None;
    };
    if src.is_unspecified() || src.is_multicast() {
        return None;
    }
    // The options after the 24-byte message: a source (1) or target (2)
    // link-layer address, 8 bytes with an Ethernet address.
    let want = if ty == ND_SOLICIT { 1 } else { 2 };
    let mut options = v.payload(frame).get(24..)?;
    while options.len() >= 8 {
        let len = usize::from(options[1]) * 8;
        if len == 0 || len > options.len() {
            return None;
        }
        if options[0] == want && len == 8 {
            let unicast = options[2] & 1 == 0 && options[2..8] != [0; 6];
            return unicast.then_some(v.src);
        }
        options = &options[len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{EthernetAddress, EthernetRepr};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn arp(op: ArpOperation, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
        let repr = ArpRepr::EthernetIpv4 {
            operation: op,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 9]),
            source_protocol_addr: sender,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 9]),
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        };
        let mut buf = vec![0; eth.buffer_len() + repr.buffer_len()];
        let mut frame = EthernetFrame::new_unchecked(&mut buf);
        eth.emit(&mut frame);
        repr.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        buf
    }

    const ME4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const ME: IpAddr = IpAddr::V4(ME4);

    fn learn(n: &mut Neighbours, frame: &[u8], now: SInstant) -> Option<IpAddr> {
        let on_link = |a: IpAddr| match a {
            IpAddr::V4(a) => a.octets()[..3] == [10, 0, 0],
            IpAddr::V6(_) => true,
        };
        n.learn(frame, now, |a| a == ME, on_link)
    }

    fn datagram(hop: Ipv4Addr, len: usize, since: Option<SInstant>) -> Parked {
        Parked {
            sock: 1,
            hop: hop.into(),
            to: SocketAddr::new(hop.into(), 53),
            data: vec![0; len],
            trace: 0,
            since,
        }
    }

    #[test]
    fn it_learns_what_smoltcp_learns_and_no_more() {
        let mut n = Neighbours::default();
        let t0 = SInstant::from_secs(1);
        let peer = Ipv4Addr::new(10, 0, 0, 7);
        let elsewhere = Ipv4Addr::new(10, 9, 0, 7);
        assert_eq!(
            learn(&mut n, &arp(ArpOperation::Request, elsewhere, ME4), t0),
            None
        );
        let not_us = Ipv4Addr::new(10, 0, 0, 2);
        assert_eq!(
            learn(&mut n, &arp(ArpOperation::Reply, peer, not_us), t0),
            None
        );
        assert_eq!(
            learn(&mut n, &arp(ArpOperation::Reply, peer, ME4), t0),
            Some(peer.into())
        );
        assert!(n.is_known(peer.into(), t0));
        assert!(!n.is_known(peer.into(), t0 + LIFETIME));
    }

    #[test]
    fn a_neighbour_solicitation_with_a_link_layer_address_teaches_its_source() {
        let mut n = Neighbours::default();
        let t0 = SInstant::from_secs(1);
        let peer: Ipv6Addr = "2001:db8:113::7".parse().expect("ip");
        let mut frame = vec![0; crate::flow::SOLICITATION_LEN];
        crate::flow::solicitation(&mut frame, wire::Mac([2, 0, 0, 0, 0, 9]), peer, peer);
        assert_eq!(learn(&mut n, &frame, t0), Some(peer.into()));
        assert!(n.is_known(peer.into(), t0));
        // Without the option (as from DAD, from ::), nothing is learnt.
        let mut bare = frame.clone();
        bare.truncate(crate::flow::SOLICITATION_LEN - 8);
        bare[14 + 4..14 + 6].copy_from_slice(&24u16.to_be_bytes());
        let other: Ipv6Addr = "2001:db8:113::8".parse().expect("ip");
        bare[14 + 8..14 + 24].copy_from_slice(&other.octets());
        assert_eq!(learn(&mut n, &bare, t0), None);
    }

    #[test]
    fn datagrams_wait_within_a_budget_go_when_their_hop_answers_or_expire() {
        let mut n = Neighbours::default();
        let t0 = SInstant::from_secs(1);
        let (silent, slow) = (Ipv4Addr::new(10, 0, 0, 8), Ipv4Addr::new(10, 0, 0, 9));
        assert_eq!(n.park(datagram(silent, 1000, Some(t0))), Parking::Parked);
        assert_eq!(n.park(datagram(slow, 500, Some(t0))), Parking::Parked);
        assert_eq!(
            n.park(datagram(silent, UNRESOLVED_BYTES, Some(t0))),
            Parking::Full
        );
        let ready = n.release(slow.into());
        assert_eq!(ready.len(), 1);
        assert_eq!(n.waiting(), (1, 1000));
        assert_eq!(n.next_expiry(), Some(t0 + UNRESOLVED_WAIT));
        assert_eq!(n.expire(t0 + UNRESOLVED_WAIT), 1);
        assert_eq!(n.waiting(), (0, 0));
    }

    #[test]
    fn a_datagram_sent_after_a_quiet_spell_waits_from_the_next_poll() {
        // The stack last knew the time an hour ago; the datagram's wait
        // starts when the stack is next polled, not then.
        let mut n = Neighbours::default();
        let later = SInstant::from_secs(3600);
        assert_eq!(
            n.park(datagram(Ipv4Addr::new(10, 0, 0, 8), 100, None)),
            Parking::Parked
        );
        assert_eq!(n.next_expiry(), None);
        assert_eq!(n.expire(later), 0);
        assert_eq!(n.next_expiry(), Some(later + UNRESOLVED_WAIT));
        assert_eq!(n.expire(later + UNRESOLVED_WAIT), 1);
    }
}
