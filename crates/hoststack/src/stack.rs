//! A service host's network stack, sans-IO.
//!
//! One smoltcp interface answers ARP and ICMP echo; every socket lives in a
//! socket set of its own, and each received frame is handed to the
//! interface together with just the set of the socket it belongs to, found
//! by flow in a hash map. The work per packet therefore does not depend on
//! how many connections the host holds. Listening is done here too: a SYN
//! to a listening port gets a socket armed for it on the spot (recycled
//! from closed connections, buffers and all), up to the listener's backlog.
//!
//! The stack never reads a clock and never blocks. Time comes in with each
//! call; readiness goes out through the wakers smoltcp's sockets keep, and
//! [`Stack::take_kick`] tells the driver that a socket has something to
//! send.

use crate::config::HostConfig;
use crate::decision::Decision;
use crate::device::{Link, Port};
use crate::flow::{ack_only, advertised, classify, is_datagram, solicited, FlowKey, Seen, TcpSeen};
use crate::neighbours::{Neighbours, Parked, Parking};
use crate::reassembly::Reassembly;
use crate::timewait::{self, TimeWait};
use serde::Serialize;
use slab::Slab;
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, CongestionControl, RecvError, SendError, State};
use smoltcp::socket::udp;
use smoltcp::socket::Socket;
use smoltcp::time::{Duration as SDuration, Instant as SInstant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll, Waker};
use wire::{Frame, FramePool, Instant};

/// A socket of the stack, as its owner refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockId(usize);

/// Ports handed out for outgoing connections and unnamed UDP sockets.
const EPHEMERAL: std::ops::RangeInclusive<u16> = 49152..=65535;

/// A TIME-WAIT socket due to act sooner than this still has an ACK to
/// send; smoltcp's own TIME-WAIT timer is ten seconds.
const ACK_SOON: SDuration = SDuration::from_secs(1);

/// How long smoltcp keeps a socket quiet while its neighbour is resolved.
const ARP_SILENCE: SDuration = SDuration::from_secs(1);
/// smoltcp sends one ARP request a second for the whole interface; the
/// stack asks for a silenced socket's neighbour itself, each at most this
/// often, and remembers at most [`ARP_ASKED`] of them.
const ARP_REASK: SDuration = SDuration::from_millis(200);
const ARP_ASKED: usize = 256;

/// Datagrams a UDP socket holds each way.
const UDP_PACKETS: usize = 256;
/// Bytes a server's UDP socket holds each way (many clients at once).
pub const UDP_SERVER_BYTES: usize = 256 * 1024;
/// Ephemeral ports: 16,384 (49152-65535, as IANA and Linux's default).
pub const EPHEMERAL_PORTS: usize = 16_384;

/// Why a received frame went nowhere, and other events worth counting.
#[derive(Debug, Default, Clone, Serialize)]
pub struct HostCounters {
    pub rx_frames: u64,
    pub tx_frames: u64,
    pub tcp_accepted: u64,
    pub tcp_connected: u64,
    /// SYNs dropped because the listener's backlog was full.
    pub backlog_full: u64,
    /// Half-open connections forgotten to make room for a new SYN.
    pub handshakes_evicted: u64,
    /// SYNs dropped because the host holds `max_sockets` already.
    pub socket_limit: u64,
    pub bad_checksum: u64,
    /// Segments after a zero window that were taken for their ACK alone.
    pub zero_window_acks: u64,
    /// Segments answered from the TIME-WAIT table.
    pub time_wait_acks: u64,
    /// TIME-WAIT pairs forgotten early because the table was full.
    pub time_wait_evicted: u64,
    /// Frames dropped because the host's task had too many waiting.
    pub rx_queue_full: u64,
    /// SYNs dropped because their client holds its share of connections.
    pub client_limit: u64,
    /// Connections given small buffers because the host's or their
    /// client's buffer budget was spent.
    pub buffers_reduced: u64,
    /// Connections reset by their peer while they waited for `accept`:
    /// freed, never handed to the service.
    pub accept_reset: u64,
    /// Datagrams a service sent to an address no one can be reached at
    /// (port 0, 0.0.0.0, a broadcast): dropped, as a reply to a spoofed
    /// or unset source must be.
    pub udp_unaddressable: u64,
    /// Datagrams larger than the service's receive buffer: dropped.
    pub udp_truncated: u64,
    /// Datagrams that found their socket's receive buffer full (its
    /// service reads slower than they come): dropped, as a kernel counts
    /// them in `RcvbufErrors`.
    pub udp_rx_full: u64,
    /// Datagrams whose next hop never answered ARP (a spoofed source on
    /// the switch), or that found the unresolved queue full: dropped.
    pub udp_unresolved: u64,
    /// IPv4 packets reassembled from fragments.
    pub reassembled: u64,
    /// Packets being reassembled that newer ones pushed out, that timed
    /// out, or whose fragments could not be placed.
    pub fragments_evicted: u64,
    pub fragments_timed_out: u64,
    pub fragments_malformed: u64,
    /// IPv4 datagrams larger than the link, sent in fragments.
    pub fragmented: u64,
    /// IPv6 datagrams larger than the link: dropped, as smoltcp cannot
    /// fragment them.
    pub too_big: u64,
    /// Frames lost to a panic while they were processed.
    pub internal_error: u64,
}

/// A snapshot for `scratchnet status`.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub addresses: Vec<String>,
    pub tcp_listening: Vec<u16>,
    pub udp_bound: Vec<u16>,
    pub tcp_connections: usize,
    pub time_wait: usize,
    /// Packets whose fragments are being collected.
    pub reassembling: usize,
    /// Datagrams waiting for their next hop to answer ARP, and their bytes.
    pub unresolved: (usize, usize),
    pub counters: HostCounters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// A connection a listener took, still in its handshake.
    Handshake(u16),
    /// Established, waiting in the listener's queue for `accept`.
    Queued(u16),
    User,
    /// The user let go; freed once closed or at the deadline.
    /// Its deadline is set when the stack next runs it: `release` brings
    /// no time with it, and the stack's last known time may be long past.
    Orphan(Option<SInstant>),
}

struct Sock {
    set: SocketSet<'static>,
    handle: SocketHandle,
    /// The port a UDP socket is bound to; `None` for TCP.
    udp: Option<u16>,
    /// The flow this TCP socket is registered under, while it has one.
    key: Option<FlowKey>,
    owner: Owner,
    timer: Option<SInstant>,
    dirty: bool,
    /// On the list of sockets to retry when an ARP frame arrives.
    arp_wait: bool,
    /// Where the datagrams a UDP socket holds go, oldest first (whose
    /// neighbours it may wait for), and the traced frame each answers.
    udp_peers: VecDeque<(IpAddr, u32)>,
    /// The ACK number and raw window of the last TCP segment sent.
    advertised: Option<(u32, u16)>,
    /// The MSS the peer's SYN announced (see `crate::device`).
    peer_mss: Option<u16>,
    /// Counted against its client's connection limit (a connection a
    /// listener took).
    client: bool,
    /// The trace id of the last traced segment that brought it data.
    last_trace: u64,
    /// Its TCP buffers are full size, counted in the host's budget (not
    /// a budget's small ones).
    full: bool,
}

impl Sock {
    /// `socket` in a set of its own, for `owner`.
    fn new(socket: impl smoltcp::socket::AnySocket<'static>, owner: Owner) -> Sock {
        let mut set = SocketSet::new(Vec::with_capacity(1));
        let handle = set.add(socket);
        Sock {
            set,
            handle,
            udp: None,
            key: None,
            owner,
            timer: None,
            dirty: false,
            arp_wait: false,
            udp_peers: VecDeque::new(),
            advertised: None,
            peer_mss: None,
            client: false,
            last_trace: 0,
            full: false,
        }
    }

    fn tcp(&mut self) -> &mut tcp::Socket<'static> {
        self.set.get_mut::<tcp::Socket>(self.handle)
    }

    fn udp(&mut self) -> &mut udp::Socket<'static> {
        self.set.get_mut::<udp::Socket>(self.handle)
    }

    fn tcp_state(&self) -> State {
        self.set.get::<tcp::Socket>(self.handle).state()
    }
}

#[derive(Debug, Default)]
struct Listener {
    backlog: usize,
    /// Connections in their handshake or queued for `accept`.
    inflight: usize,
    /// Connections in their handshake, oldest first (entries that have
    /// since moved on are skipped when met).
    handshakes: VecDeque<usize>,
    ready: VecDeque<SockId>,
    waker: Option<Waker>,
}

pub struct Stack {
    config: HostConfig,
    iface: Interface,
    socks: Slab<Sock>,
    flows: HashMap<FlowKey, usize>,
    listeners: HashMap<u16, Listener>,
    udp_ports: HashMap<u16, usize>,
    /// Connections each client address holds to the listeners.
    per_client: HashMap<IpAddr, usize>,
    /// Bytes of full-size TCP buffers held, live and spare.
    buffer_bytes: usize,
    /// Of those, what each client address's connections hold.
    client_bytes: HashMap<IpAddr, usize>,
    time_wait: TimeWait,
    timers: BTreeSet<(SInstant, usize)>,
    dirty: Vec<usize>,
    /// Fragments waiting for the rest of their packet.
    reassembly: Reassembly,
    /// Sockets whose last attempt to send asked for an ARP resolution.
    arp_waiters: Vec<usize>,
    /// Neighbours the stack asked for itself, and when.
    arp_asked: HashMap<IpAddr, SInstant>,
    /// Datagrams held until their next hop answers ARP, and the hops
    /// known (crate::neighbours).
    neighbours: Neighbours,
    /// Next hops to ask for at the next poll.
    asks: Vec<IpAddr>,
    spare: Vec<Sock>,
    /// The set offered with frames no socket takes: smoltcp answers those
    /// itself (ARP, echo, RST, port unreachable).
    empty: SocketSet<'static>,
    pool: FramePool,
    /// Room to rewrite a received frame in (rare paths).
    scratch: Vec<u8>,
    next_port: u16,
    /// Where the search for a free ephemeral UDP port starts.
    next_udp_port: u16,
    kick: bool,
    now: SInstant,
    counters: HostCounters,
    /// Decisions taken on the current frame, while a trace asks for them.
    decisions: Option<Vec<Decision>>,
    /// The trace id of the current frame (0 if untraced).
    trace: u64,
    /// What services decided about traced frames' data, for the driver
    /// (at most [`MAX_NOTES`]).
    notes: Vec<(u64, Decision)>,
}

/// Service decisions kept for the driver at most; more are left out.
const MAX_NOTES: usize = 1024;

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("name", &self.config.name)
            .field("sockets", &self.socks.len())
            .finish()
    }
}

fn smol(now: Instant) -> SInstant {
    SInstant::from_micros(now.micros() as i64)
}

/// The MSS a peer's SYN announces, as smoltcp takes it: at least 48
/// bytes, 536 if the SYN does not say (RFC 9293 3.7.1).
fn peer_mss(syn: &TcpSeen) -> u16 {
    syn.mss.map_or(536, |m| m.max(48))
}

/// Frames a host sends are at most this big: its MTU and an Ethernet
/// header.
fn max_frame(config: &HostConfig) -> usize {
    usize::from(config.mtu) + 14
}

impl Stack {
    pub fn new(config: HostConfig, now: Instant) -> Stack {
        let mut pool = FramePool::new(max_frame(&config), 1024);
        let mut tx = Vec::new();
        let mut counters = HostCounters::default();
        let mut dev = Port {
            rx: None,
            rx_trace: 0,
            tx: &mut tx,
            pool: &mut pool,
            link: Link {
                max_frame: max_frame(&config),
                peer_mss: None,
            },
            counters: &mut counters,
        };
        let hw = HardwareAddress::Ethernet(EthernetAddress(config.mac.0));
        let mut iface_config = Config::new(hw);
        iface_config.random_seed = u64::from_le_bytes([
            config.mac.0[0],
            config.mac.0[1],
            config.mac.0[2],
            config.mac.0[3],
            config.mac.0[4],
            config.mac.0[5],
            0x5c,
            0x7a,
        ]);
        let mut iface = Interface::new(iface_config, &mut dev, smol(now));
        iface.update_ip_addrs(|addrs| {
            for a in &config.addresses {
                let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(a.addr()), a.prefix_len()));
            }
            if !config.addresses6.is_empty() {
                let ll = link_local(&config);
                let _ = addrs.push(IpCidr::new(IpAddress::Ipv6(ll), 64));
            }
            for a in &config.addresses6 {
                let _ = addrs.push(IpCidr::new(IpAddress::Ipv6(a.addr()), a.prefix_len()));
            }
        });
        if let Some(gw) = config.gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
        }
        if let Some(gw) = config.gateway6 {
            let _ = iface.routes_mut().add_default_ipv6_route(gw);
        }
        Stack {
            time_wait: TimeWait::new(config.tcp.time_wait, config.tcp.time_wait_limit),
            iface,
            socks: Slab::new(),
            flows: HashMap::new(),
            listeners: HashMap::new(),
            udp_ports: HashMap::new(),
            per_client: HashMap::new(),
            buffer_bytes: 0,
            client_bytes: HashMap::new(),
            timers: BTreeSet::new(),
            dirty: Vec::new(),
            reassembly: Reassembly::new(config.reassembly),
            config,
            arp_waiters: Vec::new(),
            arp_asked: HashMap::new(),
            neighbours: Neighbours::default(),
            asks: Vec::new(),
            spare: Vec::new(),
            empty: SocketSet::new(Vec::new()),
            pool,
            scratch: Vec::new(),
            next_port: *EPHEMERAL.start(),
            next_udp_port: *EPHEMERAL.start(),
            kick: false,
            now: smol(now),
            counters: HostCounters::default(),
            decisions: None,
            trace: 0,
            notes: Vec::new(),
        }
    }

    /// A service's decision about what traced frame `trace` brought.
    pub fn note_traced(&mut self, trace: u64, decision: Decision) {
        if trace != 0 && self.notes.len() < MAX_NOTES {
            self.notes.push((trace, decision));
            self.kick = true;
        }
    }

    /// The services' decisions since the last call.
    pub fn take_notes(&mut self) -> Vec<(u64, Decision)> {
        std::mem::take(&mut self.notes)
    }

    /// The frames given to [`Stack::ingress`] from now on are the traced
    /// frame `trace` (0: none). While it is not 0, [`Decision`]s are
    /// recorded ([`Stack::take_decisions`] collects them), and a datagram
    /// the frame carries keeps the id for the socket's reader
    /// ([`Stack::poll_udp_recv`]).
    pub fn set_trace(&mut self, trace: u64) {
        self.trace = trace;
        self.decisions = (trace != 0).then(Vec::new);
    }

    /// The decisions recorded since the last call.
    pub fn take_decisions(&mut self) -> Vec<Decision> {
        self.decisions
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn note(&mut self, decision: Decision) {
        if let Some(all) = &mut self.decisions {
            all.push(decision);
        }
    }

    /// The pool the frames this host sends come from; the driver gives
    /// them back once the fabric has taken their bytes.
    pub fn frame_pool(&mut self) -> &mut FramePool {
        &mut self.pool
    }

    pub fn count_rx_queue_full(&mut self) {
        self.counters.rx_queue_full += 1;
    }

    pub fn count_internal_error(&mut self) {
        self.counters.internal_error += 1;
    }

    /// Whether a socket was given something to send since the last call:
    /// the driver should run [`Stack::poll`] soon.
    pub fn take_kick(&mut self) -> bool {
        std::mem::take(&mut self.kick)
    }

    // ---- frames ------------------------------------------------------

    /// Handles one received frame; what the host sends in answer is
    /// appended to `out`.
    pub fn ingress(&mut self, now: Instant, frame: &[u8], out: &mut Vec<Frame>) {
        self.now = smol(now);
        self.counters.rx_frames += 1;
        let before = out.len();
        match classify(frame) {
            Seen::Fragment => {
                let whole = self.reassembly.push(now, frame);
                self.note(Decision::Fragment {
                    reassembled: whole.is_some(),
                });
                if let Some(whole) = whole {
                    // A new packet: read it as one.
                    let seen = classify(&whole);
                    self.dispatch(&whole, seen, out);
                }
            }
            seen => self.dispatch(frame, seen, out),
        }
        self.counters.tx_frames += (out.len() - before) as u64;
    }

    /// Hands a whole packet's frame to the socket it is for, or to the
    /// interface.
    fn dispatch(&mut self, frame: &[u8], seen: Seen, out: &mut Vec<Frame>) {
        match seen {
            Seen::Tcp(seg) => self.tcp_ingress(frame, seg, out),
            Seen::Udp { local, payload } => match self.udp_ports.get(&local.port()) {
                Some(&id) => {
                    self.note(Decision::Udp { port: local.port() });
                    let queued = self.udp_queued(id);
                    self.sock_ingress(id, frame, out);
                    if payload > 0 && self.udp_queued(id) == queued {
                        self.counters.udp_rx_full += 1;
                    }
                }
                None => self.give_interface(frame, out),
            },
            Seen::Neighbour => {
                self.give_interface(frame, out);
                self.learn_neighbour(frame);
                // A neighbour may have become known: sockets that were
                // waiting for it go again (smoltcp would wait out its
                // one-second silence otherwise).
                for id in std::mem::take(&mut self.arp_waiters) {
                    if let Some(s) = self.socks.get_mut(id) {
                        s.arp_wait = false;
                    }
                    self.mark_dirty(id);
                }
            }
            // A reassembled packet is never a fragment; a fragment that
            // gets here (from a sender that fragments oddly) is the
            // interface's to drop.
            Seen::Fragment => self.give_interface(frame, out),
            Seen::Other => self.give_interface(frame, out),
        }
    }

    /// A frame no socket takes: smoltcp's interface answers (ARP, echo,
    /// RST, port unreachable) or ignores it.
    fn give_interface(&mut self, frame: &[u8], out: &mut Vec<Frame>) {
        let before = out.len();
        self.iface_ingress(frame, out);
        if self.decisions.is_some() {
            let answer = crate::decision::answer_of(&out[before..]);
            self.note(Decision::Interface { answer });
        }
    }

    /// What an ARP or neighbour discovery frame tells of a neighbour:
    /// datagrams that waited for it go to their sockets, in the order they
    /// were sent.
    fn learn_neighbour(&mut self, frame: &[u8]) {
        let config = &self.config;
        let ours = |a: IpAddr| is_local(config, a);
        let on_link = |a: IpAddr| on_link(config, a);
        let Some(hop) = self.neighbours.learn(frame, self.now, ours, on_link) else {
            return;
        };
        for p in self.neighbours.release(hop) {
            match self.udp_enqueue(p.sock, &p.data, p.to, p.trace) {
                Ok(true) => {}
                _ => self.counters.udp_unresolved += 1,
            }
        }
    }

    /// The neighbour a packet to `dst` goes to: `dst` on a subnet of the
    /// host, else the gateway of its family; `None` where no ARP or
    /// neighbour discovery is needed or possible (a broadcast, a multicast
    /// group, no route), which smoltcp deals with.
    fn next_hop(&self, dst: IpAddr) -> Option<IpAddr> {
        let c = &self.config;
        let special = match dst {
            IpAddr::V4(d) => {
                d.is_broadcast()
                    || d.is_multicast()
                    || c.addresses.iter().any(|n| n.broadcast() == d)
            }
            IpAddr::V6(d) => d.is_multicast(),
        };
        if special {
            None
        } else if on_link(c, dst) {
            Some(dst)
        } else {
            match dst {
                IpAddr::V4(_) => c.gateway.map(IpAddr::V4),
                IpAddr::V6(_) => c.gateway6.map(IpAddr::V6),
            }
        }
    }

    /// Lets sockets send what they have and act on their timers.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Frame>) {
        self.now = smol(now);
        let before = out.len();
        self.counters.udp_unresolved += self.neighbours.expire(self.now) as u64;
        for hop in std::mem::take(&mut self.asks) {
            self.ask_neighbour(hop, &[], out);
        }
        self.time_wait.expire(self.now);
        self.reassembly.expire(now);
        while let Some(&(at, id)) = self.timers.first() {
            if at > self.now {
                break;
            }
            self.timers.pop_first();
            if let Some(s) = self.socks.get_mut(id) {
                s.timer = None;
            }
            self.mark_dirty(id);
        }
        // Sockets that must go again are put on a fresh list; the old one
        // is kept for its allocation.
        let mut dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            match self.socks.get_mut(id) {
                Some(s) if s.dirty => s.dirty = false,
                _ => continue,
            }
            self.egress(id, out);
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
        self.kick = false;
        self.counters.tx_frames += (out.len() - before) as u64;
    }

    /// Whether a socket is waiting for its turn to send right now.
    pub fn busy(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// When [`Stack::poll`] is next due, if nothing arrives before.
    pub fn poll_at(&self) -> Option<Instant> {
        let t = self.timers.first().map(|(t, _)| *t);
        let t = match (t, self.time_wait.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let t = match (t, self.neighbours.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let t = t.map(|t| Instant::from_micros(t.total_micros().max(0) as u64));
        t.into_iter().chain(self.reassembly.next_expiry()).min()
    }

    fn tcp_ingress(&mut self, frame: &[u8], seg: TcpSeen, out: &mut Vec<Frame>) {
        if !seg.checksum_ok {
            self.counters.bad_checksum += 1;
            self.note(Decision::BadChecksum);
            return;
        }
        if let Some(&id) = self.flows.get(&seg.key) {
            self.note(Decision::Connection {
                local: seg.key.local,
                remote: seg.key.remote,
            });
            if let Some(rcv_nxt) = self.zero_window_at(id) {
                if seg.ack && !seg.syn && !seg.rst && (seg.seg_len > 0 || seg.seq != rcv_nxt) {
                    // After a zero window, smoltcp drops a segment it cannot
                    // take whole, its ACK and window too; with both sides'
                    // buffers full that never ends. It gets the ACK alone.
                    let mut scratch = std::mem::take(&mut self.scratch);
                    if ack_only(frame, rcv_nxt, &mut scratch) {
                        self.counters.zero_window_acks += 1;
                        self.sock_ingress(id, &scratch, out);
                    }
                    self.scratch = scratch;
                    return;
                }
            }
            if let Some(s) = self.socks.get_mut(id) {
                if self.trace != 0 && seg.seg_len > 0 {
                    s.last_trace = self.trace;
                }
                if seg.syn {
                    s.peer_mss = Some(peer_mss(&seg));
                }
            }
            return self.sock_ingress(id, frame, out);
        }
        if self.time_wait.contains(&seg.key) {
            self.note(Decision::TimeWait);
            if seg.rst {
                self.time_wait.remove(&seg.key);
                return;
            }
            if !seg.syn || seg.ack {
                if seg.seg_len > 0 {
                    self.counters.time_wait_acks += 1;
                    timewait::ack(frame, &seg, &mut self.pool, out);
                }
                return;
            }
            // A new SYN may reuse the pair (RFC 9293 3.10.7.4, RFC 6191).
            self.time_wait.remove(&seg.key);
        }
        let port = seg.key.local.port();
        if seg.syn && !seg.ack && !seg.rst && is_local(&self.config, seg.key.local.ip()) {
            if let Some(l) = self.listeners.get(&port) {
                let client = seg.key.remote.ip();
                let refused = |why| Decision::Listener {
                    port,
                    refused: Some(why),
                };
                if self.per_client.get(&client).copied().unwrap_or(0)
                    >= self.config.max_connections_per_client
                {
                    self.counters.client_limit += 1;
                    return self.note(refused("the client holds its share of connections"));
                }
                if l.inflight >= l.backlog && !self.evict_handshake(port) {
                    self.counters.backlog_full += 1;
                    return self.note(refused("backlog full"));
                }
                let Some(id) = self.new_tcp(Owner::Handshake(port), Some(client)) else {
                    return self.note(refused("socket limit"));
                };
                self.note(Decision::Listener {
                    port,
                    refused: None,
                });
                self.socks[id].client = true;
                *self.per_client.entry(client).or_default() += 1;
                if let Some(l) = self.listeners.get_mut(&port) {
                    l.inflight += 1;
                    l.handshakes.push_back(id);
                    if l.handshakes.len() > 2 * l.backlog {
                        let socks = &self.socks;
                        l.handshakes.retain(|&h| {
                            socks
                                .get(h)
                                .is_some_and(|s| s.owner == Owner::Handshake(port))
                        });
                    }
                }
                let sock = &mut self.socks[id];
                sock.peer_mss = Some(peer_mss(&seg));
                let _ = sock.tcp().listen(port);
                self.register(id, seg.key);
                return self.sock_ingress(id, frame, out);
            }
        }
        self.give_interface(frame, out);
    }

    /// Makes room in a full backlog by forgetting the oldest connection
    /// still in its handshake, silently (its SYN may well be forged). A
    /// flood of SYNs thus only delays real clients by their own round
    /// trip, instead of locking them out until half-open connections time
    /// out. Returns false when every slot holds an established connection.
    fn evict_handshake(&mut self, port: u16) -> bool {
        let Some(l) = self.listeners.get_mut(&port) else {
            return false;
        };
        while let Some(id) = l.handshakes.pop_front() {
            if self
                .socks
                .get(id)
                .is_some_and(|s| s.owner == Owner::Handshake(port))
            {
                l.inflight = l.inflight.saturating_sub(1);
                self.counters.handshakes_evicted += 1;
                self.recycle(id);
                return true;
            }
        }
        false
    }

    /// Where the connection's receive window starts, if the last window
    /// it advertised was zero.
    fn zero_window_at(&self, id: usize) -> Option<u32> {
        match self.socks.get(id)?.advertised {
            Some((ack, 0)) => Some(ack),
            _ => None,
        }
    }

    /// The host's first address of each family.
    pub fn addresses(&self) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
        let c = &self.config;
        (
            c.addresses.first().map(|a| a.addr()),
            c.addresses6.first().map(|a| a.addr()),
        )
    }

    fn iface_ingress(&mut self, frame: &[u8], out: &mut Vec<Frame>) {
        let mut dev = Port {
            rx: Some(frame),
            rx_trace: self.trace as u32,
            tx: out,
            pool: &mut self.pool,
            link: Link {
                max_frame: max_frame(&self.config),
                peer_mss: None,
            },
            counters: &mut self.counters,
        };
        self.iface
            .poll_ingress_single(self.now, &mut dev, &mut self.empty);
    }

    fn sock_ingress(&mut self, id: usize, frame: &[u8], out: &mut Vec<Frame>) {
        let Some(sock) = self.socks.get_mut(id) else {
            return;
        };
        let mut dev = Port {
            rx: Some(frame),
            rx_trace: self.trace as u32,
            tx: out,
            pool: &mut self.pool,
            link: Link {
                max_frame: max_frame(&self.config),
                peer_mss: sock.peer_mss,
            },
            counters: &mut self.counters,
        };
        let start = dev.tx.len();
        self.iface
            .poll_ingress_single(self.now, &mut dev, &mut sock.set);
        note_advertised(sock, &out[start..]);
        self.egress(id, out);
    }

    /// Lets one socket send, up to its budget, then settles its state.
    fn egress(&mut self, id: usize, out: &mut Vec<Frame>) {
        let Some(sock) = self.socks.get_mut(id) else {
            return;
        };
        if let Owner::Orphan(deadline) = sock.owner {
            let deadline = deadline.unwrap_or(self.now + self.config.tcp.orphan_timeout.into());
            sock.owner = Owner::Orphan(Some(deadline));
            if self.now >= deadline && sock.udp.is_none() {
                sock.tcp().abort();
            }
        }
        let mut dev = Port {
            rx: None,
            rx_trace: 0,
            tx: out,
            pool: &mut self.pool,
            link: Link {
                max_frame: max_frame(&self.config),
                peer_mss: sock.peer_mss,
            },
            counters: &mut self.counters,
        };
        let start = dev.tx.len();
        let mut sent = 0;
        while sent < self.config.tcp.egress_budget {
            match self.iface.poll_egress(self.now, &mut dev, &mut sock.set) {
                PollResult::SocketStateChanged => sent += 1,
                PollResult::None => break,
            }
        }
        // smoltcp holds a socket back for up to a second while the
        // neighbour it needs is resolved, whether this attempt sent the ARP
        // request or an earlier one did. A socket that waits no longer than
        // that with something to send (a UDP socket holding datagrams, a
        // socket that sent nothing) may be one of those: it is tried again
        // when an ARP frame arrives.
        let now = self.now;
        let waiting = self
            .iface
            .poll_at(now, &sock.set)
            .is_some_and(|t| t > now && t <= now + ARP_SILENCE);
        note_advertised(sock, &out[start..]);
        if !sock.udp_peers.is_empty() {
            // Those sent leave the list (a TCP socket's frames are not
            // read). smoltcp 0.14 gives an IPv6 packet no metadata, so the
            // traced frame a datagram answers is set here.
            for f in out[start..].iter_mut().filter(|f| is_datagram(f.data())) {
                let Some((_, trace)) = sock.udp_peers.pop_front() else {
                    break;
                };
                if f.trace == 0 {
                    f.trace = u64::from(trace);
                }
            }
        }
        let asked: Vec<IpAddr> = out[start..]
            .iter()
            .filter_map(|f| solicited(f.data()))
            .collect();
        let held = waiting && (sent == 0 || !sock.udp_peers.is_empty());
        if !sock.arp_wait && (held || !asked.is_empty()) {
            sock.arp_wait = true;
            self.arp_waiters.push(id);
        }
        if held {
            // smoltcp asks for one neighbour a second on the whole
            // interface, so one asked for just now holds back the others:
            // the stack asks for those itself (where the held datagrams
            // go, or the peer a connection is being opened to).
            let mut peers: Vec<IpAddr> = match sock.udp {
                Some(_) => sock.udp_peers.iter().map(|(peer, _)| *peer).collect(),
                None if sock.tcp_state() == State::SynSent => {
                    let remote = sock.tcp().remote_endpoint();
                    remote.map(|e| IpAddr::from(e.addr)).into_iter().collect()
                }
                None => Vec::new(),
            };
            peers.sort_unstable();
            peers.dedup();
            for peer in peers {
                self.ask_neighbour(peer, &asked, out);
            }
        }
        self.settle(id, sent);
    }

    /// After a socket ran: moves it along its life (queued for accept,
    /// TIME-WAIT, recycled) and sets its timer.
    fn settle(&mut self, id: usize, sent: usize) {
        let now = self.now;
        let Some(sock) = self.socks.get_mut(id) else {
            return;
        };
        if sock.udp.is_none() {
            let state = sock.tcp_state();
            match (sock.owner, state) {
                (Owner::Handshake(port), State::Established | State::CloseWait) => {
                    sock.owner = Owner::Queued(port);
                    self.counters.tcp_accepted += 1;
                    if let Some(l) = self.listeners.get_mut(&port) {
                        l.ready.push_back(SockId(id));
                        if let Some(w) = l.waker.take() {
                            w.wake();
                        }
                    }
                }
                (Owner::Handshake(port), State::Listen | State::Closed) => {
                    // The handshake failed (a RST, or a SYN smoltcp refused).
                    if let Some(l) = self.listeners.get_mut(&port) {
                        l.inflight = l.inflight.saturating_sub(1);
                    }
                    return self.recycle(id);
                }
                (Owner::Orphan(_), State::Closed) => return self.recycle(id),
                (_, State::TimeWait)
                    if self.iface.poll_at(now, &sock.set) < Some(now + ACK_SOON) =>
                {
                    // The ACK of the peer's FIN is waiting out the ACK
                    // delay; the socket goes once it is sent.
                    let at = self.iface.poll_at(now, &sock.set);
                    return self.schedule(id, at);
                }
                (_, State::TimeWait) => {
                    if let Some(key) = sock.key {
                        if self.time_wait.insert(now, key) {
                            self.counters.time_wait_evicted += 1;
                        }
                    }
                    self.unregister(id);
                    if matches!(self.socks[id].owner, Owner::Orphan(_)) {
                        return self.recycle(id);
                    }
                    return self.unschedule(id);
                }
                (_, State::Closed) => {
                    self.unregister(id);
                    return self.unschedule(id);
                }
                _ => {}
            }
        }
        let sock = &mut self.socks[id];
        let mut at = self.iface.poll_at(now, &sock.set);
        if let Owner::Orphan(Some(deadline)) = sock.owner {
            at = Some(at.map_or(deadline, |t| t.min(deadline)));
        }
        // A socket that asks to go again at once but sent nothing this time
        // (waiting for ARP, say) is looked at again a little later rather
        // than spun on.
        let at = at.map(|t| {
            if t <= now && sent == 0 {
                now + SDuration::from_millis(1)
            } else {
                t
            }
        });
        self.schedule(id, at);
    }

    fn schedule(&mut self, id: usize, at: Option<SInstant>) {
        let now = self.now;
        let sock = &mut self.socks[id];
        if sock.timer == at {
            return;
        }
        if let Some(old) = sock.timer.take() {
            self.timers.remove(&(old, id));
        }
        match at {
            Some(t) if t <= now && !sock.dirty => {
                sock.dirty = true;
                self.dirty.push(id);
            }
            Some(t) if t <= now => {}
            Some(t) => {
                sock.timer = Some(t);
                self.timers.insert((t, id));
            }
            None => {}
        }
    }

    fn unschedule(&mut self, id: usize) {
        if let Some(old) = self.socks.get_mut(id).and_then(|s| s.timer.take()) {
            self.timers.remove(&(old, id));
        }
    }

    fn mark_dirty(&mut self, id: usize) {
        if let Some(s) = self.socks.get_mut(id) {
            if !s.dirty {
                s.dirty = true;
                self.dirty.push(id);
            }
            self.kick = true;
        }
    }

    // ---- socket life -------------------------------------------------

    /// A TCP socket with its buffers, recycled if one is spare: full size
    /// while the host's budget, and `client`'s share of it, allow; small
    /// past them (counted).
    fn new_tcp(&mut self, owner: Owner, client: Option<IpAddr>) -> Option<usize> {
        if self.socks.len() >= self.config.max_sockets {
            self.counters.socket_limit += 1;
            return None;
        }
        let t = self.config.tcp.clone();
        let size = t.rx_buffer + t.tx_buffer;
        let spare_full = self.spare.iter().rposition(|s| s.full);
        let within_client = client.is_none_or(|c| {
            self.client_bytes.get(&c).copied().unwrap_or(0) + size <= t.client_buffer_share
        });
        let within_host = spare_full.is_some() || self.buffer_bytes + size <= t.buffer_budget;
        let full = within_client && within_host;
        if !full {
            self.counters.buffers_reduced += 1;
        }
        let spare = match full {
            true => spare_full,
            false => self.spare.iter().rposition(|s| !s.full),
        };
        let mut sock = match spare {
            Some(i) => self.spare.swap_remove(i),
            None => {
                let (rx, tx) = match full {
                    true => (t.rx_buffer, t.tx_buffer),
                    false => (t.small_buffer, t.small_buffer),
                };
                if full {
                    self.buffer_bytes += size;
                }
                let s = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; rx]),
                    tcp::SocketBuffer::new(vec![0; tx]),
                );
                let mut sock = Sock::new(s, owner);
                sock.full = full;
                sock
            }
        };
        if let (Some(c), true) = (client, full) {
            *self.client_bytes.entry(c).or_default() += size;
        }
        // A recycled socket goes back into its set afresh: the set's
        // metadata (a neighbour it was waiting for) belongs to the old
        // connection.
        if let Socket::Tcp(t) = sock.set.remove(sock.handle) {
            sock.handle = sock.set.add(t);
        }
        let s = sock.tcp();
        s.set_congestion_control(CongestionControl::Cubic);
        s.set_ack_delay(t.ack_delay.map(Into::into));
        s.set_nagle_enabled(t.nagle);
        s.set_timeout(Some(t.user_timeout.into()));
        s.set_keep_alive(t.keep_alive.map(Into::into));
        sock.owner = owner;
        sock.client = false;
        Some(self.socks.insert(sock))
    }

    fn register(&mut self, id: usize, key: FlowKey) {
        self.socks[id].key = Some(key);
        self.flows.insert(key, id);
    }

    fn unregister(&mut self, id: usize) {
        let Some(sock) = self.socks.get_mut(id) else {
            return;
        };
        let client = std::mem::take(&mut sock.client);
        if let Some(key) = sock.key.take() {
            if self.flows.get(&key) == Some(&id) {
                self.flows.remove(&key);
            }
            if client {
                let ip = key.remote.ip();
                if let Some(n) = self.per_client.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_client.remove(&ip);
                    }
                }
                if sock.full {
                    let size = self.config.tcp.rx_buffer + self.config.tcp.tx_buffer;
                    if let Some(b) = self.client_bytes.get_mut(&ip) {
                        *b = b.saturating_sub(size);
                        if *b == 0 {
                            self.client_bytes.remove(&ip);
                        }
                    }
                }
            }
        }
    }

    /// Frees a socket; a closed TCP socket is kept for reuse.
    fn recycle(&mut self, id: usize) {
        self.unregister(id);
        self.unschedule(id);
        if !self.socks.contains(id) {
            return;
        }
        let mut sock = self.socks.remove(id);
        if let Some(port) = sock.udp {
            self.udp_ports.remove(&port);
            return;
        }
        if sock.tcp().is_open() {
            // Only a listening or half-open socket is freed open; it is
            // closed without a word.
            sock.tcp().abort();
        }
        sock.dirty = false;
        sock.arp_wait = false;
        sock.advertised = None;
        let t = &self.config.tcp;
        let size = t.rx_buffer + t.tx_buffer;
        // Spares keep their buffers, within the budget.
        if self.spare.len() < t.spare_sockets
            && (!sock.full || self.buffer_bytes <= t.buffer_budget)
        {
            self.spare.push(sock);
        } else if sock.full {
            self.buffer_bytes -= size;
        }
    }

    // ---- TCP, for the socket API ------------------------------------

    /// The socket behind a handle (in a `Poll`-returning call, `?` turns
    /// a stale handle into a ready error).
    fn sock(&mut self, id: SockId) -> io::Result<&mut Sock> {
        self.socks
            .get_mut(id.0)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    pub fn tcp_listen(&mut self, port: u16, backlog: usize) -> io::Result<()> {
        if port == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "port 0"));
        }
        if self.listeners.contains_key(&port) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}: TCP port {port} is already listening", self.config.name),
            ));
        }
        self.listeners.insert(
            port,
            Listener {
                backlog: backlog.max(1),
                ..Listener::default()
            },
        );
        Ok(())
    }

    /// Stops listening: connections not yet accepted are reset.
    pub fn tcp_unlisten(&mut self, port: u16) {
        let Some(l) = self.listeners.remove(&port) else {
            return;
        };
        let pending: Vec<usize> = self
            .socks
            .iter()
            .filter(|(_, s)| matches!(s.owner, Owner::Handshake(p) | Owner::Queued(p) if p == port))
            .map(|(id, _)| id)
            .collect();
        drop(l);
        for id in pending {
            self.release(SockId(id));
        }
    }

    /// The next established connection on `port`, with its addresses.
    /// A queued connection that its peer reset before it was taken is
    /// freed and counted (`accept_reset`), never handed out: what `accept`
    /// returns is a connection with a peer.
    pub fn poll_accept(
        &mut self,
        port: u16,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(SockId, FlowKey)>> {
        loop {
            let Some(l) = self.listeners.get_mut(&port) else {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            };
            let Some(id) = l.ready.pop_front() else {
                l.waker = Some(cx.waker().clone());
                return Poll::Pending;
            };
            l.inflight = l.inflight.saturating_sub(1);
            let alive = self
                .socks
                .get(id.0)
                .filter(|s| s.tcp_state() != State::Closed)
                .and_then(|_| self.tcp_addrs(id));
            match alive {
                Some(key) => {
                    if let Some(s) = self.socks.get_mut(id.0) {
                        s.owner = Owner::User;
                    }
                    return Poll::Ready(Ok((id, key)));
                }
                None => {
                    self.counters.accept_reset += 1;
                    self.recycle(id.0);
                }
            }
        }
    }

    /// Opens a connection; wait for it with [`Stack::poll_connected`].
    pub fn tcp_connect(&mut self, remote: SocketAddr) -> io::Result<SockId> {
        let local_ip = self.source_for(remote.ip()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{}: no address to reach {remote} from", self.config.name),
            )
        })?;
        let key = self
            .free_port(local_ip, remote)
            .ok_or_else(|| io::Error::new(io::ErrorKind::AddrNotAvailable, "no free local port"))?;
        let id = self
            .new_tcp(Owner::User, None)
            .ok_or_else(|| io::Error::other("socket limit reached"))?;
        let cx = self.iface.context();
        let sock = &mut self.socks[id];
        let handle = sock.handle;
        // The local address is the one chosen here, so that the flow the
        // socket is registered under is the one its segments carry.
        let r = sock.set.get_mut::<tcp::Socket>(handle).connect(
            cx,
            IpEndpoint::new(remote.ip().into(), remote.port()),
            IpEndpoint::new(key.local.ip().into(), key.local.port()),
        );
        if let Err(e) = r {
            self.recycle(id);
            return Err(io::Error::other(format!("connect: {e}")));
        }
        self.counters.tcp_connected += 1;
        self.register(id, key);
        self.mark_dirty(id);
        Ok(SockId(id))
    }

    /// Asks for the next hop towards `dst` (itself when on a subnet of
    /// the host, else the gateway) with an ARP request or a neighbour
    /// solicitation, unless smoltcp just did (`asked`) or the stack did
    /// less than [`ARP_REASK`] ago. The answer, aimed at the host, fills
    /// smoltcp's neighbour cache.
    fn ask_neighbour(&mut self, dst: IpAddr, asked: &[IpAddr], out: &mut Vec<Frame>) {
        let Some(hop) = self.next_hop(dst).filter(|h| !asked.contains(h)) else {
            return; // no way there, or smoltcp just asked
        };
        let now = self.now;
        if self
            .arp_asked
            .get(&hop)
            .is_some_and(|t| now < *t + ARP_REASK)
        {
            return;
        }
        if self.arp_asked.len() >= ARP_ASKED {
            self.arp_asked.retain(|_, t| now < *t + ARP_SILENCE);
            if self.arp_asked.len() >= ARP_ASKED {
                return;
            }
        }
        let mac = self.config.mac;
        let (source, mut frame) = (self.source_for(hop), self.pool.get());
        match (hop, source) {
            (IpAddr::V4(hop), Some(IpAddr::V4(from))) => {
                frame.resize(crate::flow::ARP_REQUEST_LEN);
                crate::flow::arp_request(frame.data_mut(), mac, from, hop);
            }
            (IpAddr::V6(hop), Some(IpAddr::V6(from))) => {
                frame.resize(crate::flow::SOLICITATION_LEN);
                crate::flow::solicitation(frame.data_mut(), mac, from, hop);
            }
            _ => return,
        }
        self.arp_asked.insert(hop, now);
        out.push(frame);
    }

    /// The address a packet to `dst` leaves from: of `dst`'s family, the
    /// one on its subnet, else the first (for IPv6: the link-local one to
    /// a link-local destination, else a global one).
    fn source_for(&self, dst: IpAddr) -> Option<IpAddr> {
        /// Of `nets`, the one `holds` picks, else the first.
        fn pick<N>(nets: &[N], holds: impl Fn(&N) -> bool) -> Option<&N> {
            nets.iter().find(|n| holds(n)).or_else(|| nets.first())
        }
        let c = &self.config;
        match dst {
            IpAddr::V4(d) => pick(&c.addresses, |n| n.contains(&d)).map(|n| IpAddr::V4(n.addr())),
            IpAddr::V6(d) if is_link_local(d) && !c.addresses6.is_empty() => {
                Some(IpAddr::V6(link_local(c)))
            }
            IpAddr::V6(d) => pick(&c.addresses6, |n| n.contains(&d)).map(|n| IpAddr::V6(n.addr())),
        }
    }

    fn free_port(&mut self, local: IpAddr, remote: SocketAddr) -> Option<FlowKey> {
        let span = usize::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == *EPHEMERAL.end() {
                *EPHEMERAL.start()
            } else {
                port + 1
            };
            let key = FlowKey {
                local: SocketAddr::new(local, port),
                remote,
            };
            if !self.flows.contains_key(&key)
                && !self.time_wait.contains(&key)
                && !self.listeners.contains_key(&port)
                && !self.udp_ports.contains_key(&port)
            {
                return Some(key);
            }
        }
        None
    }

    pub fn poll_connected(&mut self, id: SockId, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let sock = self.sock(id)?;
        match sock.tcp_state() {
            State::SynSent | State::SynReceived => {
                sock.tcp().register_send_waker(cx.waker());
                Poll::Pending
            }
            State::Closed => Poll::Ready(Err(io::ErrorKind::ConnectionRefused.into())),
            _ => Poll::Ready(Ok(())),
        }
    }

    pub fn poll_recv(
        &mut self,
        id: SockId,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let sock = self.sock(id)?;
        let s = sock.tcp();
        match s.recv_slice(buf) {
            Ok(0) if !buf.is_empty() => {
                s.register_recv_waker(cx.waker());
                Poll::Pending
            }
            Ok(n) => {
                self.mark_dirty(id.0);
                Poll::Ready(Ok(n))
            }
            Err(RecvError::Finished) => Poll::Ready(Ok(0)),
            Err(RecvError::InvalidState) => match s.state() {
                State::SynSent | State::SynReceived => {
                    s.register_recv_waker(cx.waker());
                    Poll::Pending
                }
                st => Poll::Ready(Err(closed_error(st))),
            },
        }
    }

    pub fn poll_send(
        &mut self,
        id: SockId,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let sock = self.sock(id)?;
        let s = sock.tcp();
        if !s.may_send() {
            return match s.state() {
                State::SynSent | State::SynReceived => {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
                st => Poll::Ready(Err(closed_error(st))),
            };
        }
        match s.send_slice(buf) {
            Ok(0) if !buf.is_empty() => {
                s.register_send_waker(cx.waker());
                Poll::Pending
            }
            Ok(n) => {
                self.mark_dirty(id.0);
                Poll::Ready(Ok(n))
            }
            Err(SendError::InvalidState) => Poll::Ready(Err(closed_error(s.state()))),
        }
    }

    /// Closes the sending half: a FIN follows the data already written.
    pub fn tcp_shutdown(&mut self, id: SockId) {
        if let Some(sock) = self.socks.get_mut(id.0) {
            sock.tcp().close();
            self.mark_dirty(id.0);
        }
    }

    /// Resets the connection.
    pub fn tcp_abort(&mut self, id: SockId) {
        if let Some(sock) = self.socks.get_mut(id.0) {
            sock.tcp().abort();
            self.mark_dirty(id.0);
        }
    }

    pub fn tcp_state(&self, id: SockId) -> Option<State> {
        self.socks
            .get(id.0)
            .filter(|s| s.udp.is_none())
            .map(Sock::tcp_state)
    }

    /// The local and remote address of a connection.
    pub fn tcp_addrs(&self, id: SockId) -> Option<FlowKey> {
        let s = self.socks.get(id.0)?;
        let t = s.set.get::<tcp::Socket>(s.handle);
        let (l, r) = (t.local_endpoint()?, t.remote_endpoint()?);
        Some(FlowKey {
            local: SocketAddr::new(l.addr.into(), l.port),
            remote: SocketAddr::new(r.addr.into(), r.port),
        })
    }

    /// The owner lets go of a socket. A TCP connection is closed the way a
    /// kernel closes one on `close(2)`: a FIN after the data, or a RST if
    /// received data was never read; it is freed once closed.
    pub fn release(&mut self, id: SockId) {
        let Some(sock) = self.socks.get_mut(id.0) else {
            return;
        };
        if sock.udp.is_some() {
            return self.recycle(id.0);
        }
        sock.owner = Owner::Orphan(None);
        let s = sock.tcp();
        match s.state() {
            State::Closed | State::TimeWait => return self.recycle(id.0),
            // Linux's writes leave at once, so an answer written before a
            // close with unread data is on the wire before the RST. Here
            // it would still be queued, and the RST would lose it (a 400
            // or 431 for a bad request): the unread data goes, the answer
            // leaves, then a FIN.
            _ if s.recv_queue() > 0 && s.send_queue() > 0 => {
                while s.recv_queue() > 0 {
                    if s.recv(|b| (b.len(), ())).is_err() {
                        break;
                    }
                }
                s.close()
            }
            _ if s.recv_queue() > 0 => s.abort(),
            _ => s.close(),
        }
        self.mark_dirty(id.0);
    }

    /// Closes every connection the way [`Stack::release`] does and stops
    /// listening: the host is going away.
    pub fn close_all(&mut self) {
        self.listeners.clear();
        let open: Vec<usize> = self
            .socks
            .iter()
            .filter(|(_, s)| s.udp.is_none() && s.key.is_some())
            .map(|(id, _)| id)
            .collect();
        for id in open {
            let s = self.socks[id].tcp();
            if s.recv_queue() > 0 {
                s.abort();
            } else {
                s.close();
            }
            self.mark_dirty(id);
        }
    }

    // ---- UDP ---------------------------------------------------------

    /// Binds a server's UDP socket to `port` (0: an ephemeral one) on
    /// every address of the host.
    pub fn udp_bind(&mut self, port: u16) -> io::Result<(SockId, u16)> {
        self.udp_bind_sized(port, UDP_SERVER_BYTES)
    }

    /// Binds a UDP socket holding `bytes` each way: a datagram larger than
    /// that is dropped as it arrives.
    pub fn udp_bind_sized(&mut self, port: u16, bytes: usize) -> io::Result<(SockId, u16)> {
        let packets = (bytes / 512).clamp(4, UDP_PACKETS);
        let port = match port {
            0 => self.free_udp_port()?,
            p if self.udp_ports.contains_key(&p) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: UDP port {p} is already bound", self.config.name),
                ))
            }
            p => p,
        };
        let meta = || vec![udp::PacketMetadata::EMPTY; packets];
        let mut s = udp::Socket::new(
            udp::PacketBuffer::new(meta(), vec![0; bytes]),
            udp::PacketBuffer::new(meta(), vec![0; bytes]),
        );
        s.bind(port)
            .map_err(|e| io::Error::other(format!("bind: {e}")))?;
        let mut sock = Sock::new(s, Owner::User);
        sock.udp = Some(port);
        let id = self.socks.insert(sock);
        self.udp_ports.insert(port, id);
        Ok((SockId(id), port))
    }

    /// The next free ephemeral port after the last one given: a scan from
    /// the start each time would cost as many steps as sockets bound.
    fn free_udp_port(&mut self) -> io::Result<u16> {
        for _ in 0..EPHEMERAL_PORTS {
            let port = self.next_udp_port;
            self.next_udp_port = if port == *EPHEMERAL.end() {
                *EPHEMERAL.start()
            } else {
                port + 1
            };
            if !self.udp_ports.contains_key(&port) {
                return Ok(port);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no free UDP port",
        ))
    }

    /// The trace id of the last traced segment that brought data to TCP
    /// socket `id` (0 if none): what a service's decision about that data
    /// is noted on.
    pub fn tcp_last_trace(&self, id: SockId) -> u64 {
        self.socks.get(id.0).map_or(0, |s| s.last_trace)
    }

    /// A datagram for the socket: its length, sender and trace id (that
    /// of the traced frame that carried it, or 0).
    pub fn poll_udp_recv(
        &mut self,
        id: SockId,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr, u64)>> {
        let mut truncated = 0;
        let s = self.sock(id)?.udp();
        let got = loop {
            match s.recv_slice(buf) {
                Ok((n, meta)) => {
                    let from = SocketAddr::new(meta.endpoint.addr.into(), meta.endpoint.port);
                    break Poll::Ready(Ok((n, from, u64::from(meta.meta.id))));
                }
                Err(udp::RecvError::Exhausted) => {
                    s.register_recv_waker(cx.waker());
                    break Poll::Pending;
                }
                // smoltcp has dropped it; the next one may fit.
                Err(udp::RecvError::Truncated) => truncated += 1,
            }
        };
        self.counters.udp_truncated += truncated;
        got
    }

    pub fn poll_udp_send(
        &mut self,
        id: SockId,
        cx: &mut Context<'_>,
        buf: &[u8],
        to: SocketAddr,
        answering: u64,
    ) -> Poll<io::Result<usize>> {
        match self.try_udp_send(id, buf, to, answering) {
            Ok(true) => Poll::Ready(Ok(buf.len())),
            Ok(false) => {
                // Full: woken when there is room (nothing frees it before
                // the waker is in, the caller holds the stack).
                self.sock(id)?.udp().register_send_waker(cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Sends a datagram if the socket has room for it (true), without
    /// waiting or registering anything when it does not (false). A datagram
    /// `answering` a traced frame's (its id; 0 if none) is traced as its
    /// answer.
    pub fn try_udp_send(
        &mut self,
        id: SockId,
        buf: &[u8],
        to: SocketAddr,
        answering: u64,
    ) -> io::Result<bool> {
        self.sock(id)?;
        if to.port() == 0 || to.ip().is_unspecified() {
            // No one can be reached there: a reply to a spoofed or unset
            // source, dropped and counted as a kernel would drop it.
            self.counters.udp_unaddressable += 1;
            return Ok(true);
        }
        let trace = answering as u32;
        match self.next_hop(to.ip()) {
            Some(hop) if !self.neighbours.is_known(hop, self.now) => {
                // Held here until the hop answers (crate::neighbours), so
                // that a silent one holds no one else's datagrams.
                let parked = Parked {
                    sock: id.0,
                    hop,
                    to,
                    data: buf.to_vec(),
                    trace,
                    since: None,
                };
                if self.neighbours.park(parked) == Parking::Full {
                    self.counters.udp_unresolved += 1;
                }
                self.asks.push(hop);
                self.kick = true;
                Ok(true)
            }
            _ => self.udp_enqueue(id.0, buf, to, trace),
        }
    }

    /// The payload bytes waiting in UDP socket `id`'s receive buffer.
    fn udp_queued(&mut self, id: usize) -> Option<usize> {
        self.sock(SockId(id)).ok().map(|s| s.udp().recv_queue())
    }

    /// Gives a datagram to its socket: true if it had room.
    fn udp_enqueue(
        &mut self,
        id: usize,
        buf: &[u8],
        to: SocketAddr,
        trace: u32,
    ) -> io::Result<bool> {
        let sock = self.sock(SockId(id))?;
        let mut meta = udp::UdpMetadata::from(IpEndpoint::new(to.ip().into(), to.port()));
        meta.meta.id = trace;
        match sock.udp().send_slice(buf, meta) {
            Ok(()) => {
                if sock.udp_peers.len() < UDP_PACKETS {
                    sock.udp_peers.push_back((to.ip(), trace));
                }
                self.mark_dirty(id);
                Ok(true)
            }
            Err(udp::SendError::BufferFull) => Ok(false),
            Err(udp::SendError::Unaddressable) => {
                self.counters.udp_unaddressable += 1;
                Ok(true)
            }
        }
    }

    // ---- status ------------------------------------------------------

    pub fn status(&self) -> HostStatus {
        let r = self.reassembly.counters();
        let mut tcp_listening: Vec<u16> = self.listeners.keys().copied().collect();
        tcp_listening.sort_unstable();
        let mut udp_bound: Vec<u16> = self.udp_ports.keys().copied().collect();
        udp_bound.sort_unstable();
        HostStatus {
            name: self.config.name.clone(),
            addresses: (self.config.addresses.iter().map(|a| a.to_string()))
                .chain(self.config.addresses6.iter().map(|a| a.to_string()))
                .collect(),
            tcp_listening,
            udp_bound,
            tcp_connections: self.flows.len(),
            time_wait: self.time_wait.len(),
            reassembling: self.reassembly.in_progress(),
            unresolved: self.neighbours.waiting(),
            counters: HostCounters {
                reassembled: r.reassembled,
                fragments_evicted: r.evicted,
                fragments_timed_out: r.timed_out,
                fragments_malformed: r.malformed,
                ..self.counters.clone()
            },
        }
    }
}

/// The link-local address the host's MAC makes (RFC 4862 5.3).
fn link_local(config: &HostConfig) -> Ipv6Addr {
    config
        .mac
        .eui64_in(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0))
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Whether `ip` is one of the host's addresses (the link-local one too).
fn is_local(config: &HostConfig, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => config.addresses.iter().any(|n| n.addr() == a),
        IpAddr::V6(a) => {
            config.addresses6.iter().any(|n| n.addr() == a)
                || (!config.addresses6.is_empty() && a == link_local(config))
        }
    }
}

/// Whether `ip` is on a link of the host: in one of its prefixes, or
/// link-local.
fn on_link(config: &HostConfig, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => config.addresses.iter().any(|n| n.contains(&a)),
        IpAddr::V6(a) => {
            !config.addresses6.is_empty()
                && (is_link_local(a) || config.addresses6.iter().any(|n| n.contains(&a)))
        }
    }
}

/// Remembers what the last TCP segment a socket sent advertised.
fn note_advertised(sock: &mut Sock, sent: &[Frame]) {
    if sock.udp.is_some() {
        return;
    }
    if let Some(a) = sent.iter().rev().find_map(|f| advertised(f.data())) {
        sock.advertised = Some(a);
    }
}

fn closed_error(state: State) -> io::Error {
    match state {
        State::Closed => io::ErrorKind::ConnectionReset.into(),
        _ => io::ErrorKind::BrokenPipe.into(),
    }
}
