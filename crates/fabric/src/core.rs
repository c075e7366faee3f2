//! The sans-IO heart of the fabric: switches, routers and edge ports, and
//! the run of one frame through them.
//!
//! A frame that enters by an edge port runs to completion: through its
//! switch, into any router it is addressed to, out of that router into the
//! next switch, and so on, until every copy has reached an edge port
//! (a [`Delivery`]) or been dropped and counted. Frames move by ownership
//! inside a [`Batch`]; a copy is made only where one frame must go both to
//! a router (which rewrites it) and elsewhere (a flood).
//!
//! Never reads a clock, never touches a device: the driver (the runtime or
//! the simulator) passes `now` and the frame in and writes the deliveries.

use crate::capture::{CaptureSink, Direction};
use crate::filter::Filter;
use crate::link::{Fate, Link, Side};
use crate::status::{FabricStatus, GroupRow, MacRow, PortStatus, SwitchStatus};
use crate::trace::{egress_of, LinkEvent, Recorded, TraceRecord, TraceSink, Tracer, What};
use crate::wheel::Wheel;
use router::{IfaceId, Outbox, Router};
use std::collections::VecDeque;
use switch::{Egress, Learn, PortConfig, PortNo, Switch, SwitchConfig};
use wire::ether::{VlanEdit, ETHERTYPE_IPV4, ETHERTYPE_IPV6, HEADER_LEN};
use wire::offload::Segmenter;
use wire::{Frame, FramePool, Impairment, Instant, VnetHdr};

/// An edge port of the fabric (a TAP, a TUN, an in-process host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwitchId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouterId(pub u32);

/// One frame to write out of an edge port: `Batch::frame(frame)`, with
/// `edit` applied on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub port: PortId,
    pub edit: VlanEdit,
    pub frame: usize,
}

/// Mistakes in building a fabric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FabricError {
    #[error("a port named `{0}` already exists")]
    DuplicatePort(String),
    #[error("no such switch or router")]
    NoSuchNode,
    #[error("no port named `{0}`")]
    NoSuchPort(String),
    #[error("64 traces are open already")]
    TooManyTraces,
}

/// The frames of one run through the fabric, and the pool they come from.
/// Each driving task owns one, so frames never cross a lock.
#[derive(Debug)]
pub struct Batch {
    pool: FramePool,
    frames: Vec<Option<Frame>>,
    deliveries: Vec<Delivery>,
    router_out: Outbox,
    work: VecDeque<(Hop, usize)>,
    egress: Vec<Egress>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

/// Room for a GSO super-frame (64 KiB IP packet) and its headers.
pub const FRAME_CAPACITY: usize = 65_535 + 64;

impl Batch {
    pub fn new() -> Batch {
        Batch {
            pool: FramePool::new(FRAME_CAPACITY, 64),
            frames: Vec::new(),
            deliveries: Vec::new(),
            router_out: Vec::new(),
            work: VecDeque::new(),
            egress: Vec::new(),
        }
    }

    /// Forgets a run that was cut short (a panic): work, outbox and
    /// frames.
    pub fn reset(&mut self) {
        self.work.clear();
        self.router_out.clear();
        self.egress.clear();
        self.recycle();
    }

    /// Returns every frame of the last run to the pool.
    fn recycle(&mut self) {
        for f in self.frames.drain(..).flatten() {
            self.pool.put(f);
        }
        self.deliveries.clear();
    }

    /// An empty frame to read a device into.
    pub fn take_frame(&mut self) -> Frame {
        self.recycle();
        self.pool.get()
    }

    /// Gives back a frame that was not used.
    pub fn put_frame(&mut self, frame: Frame) {
        self.pool.put(frame);
    }

    pub fn deliveries(&self) -> &[Delivery] {
        &self.deliveries
    }

    /// The frame a delivery refers to.
    pub fn frame(&self, index: usize) -> Option<&Frame> {
        self.frames.get(index).and_then(Option::as_ref)
    }

    fn push(&mut self, frame: Frame) -> usize {
        self.frames.push(Some(frame));
        self.frames.len() - 1
    }
}

/// A place a frame is handed to inside the fabric.
#[derive(Debug, Clone, Copy)]
enum Hop {
    Switch(usize, PortNo),
    Router(usize, IfaceId),
}

/// What is behind a switch port.
#[derive(Debug, Clone, Copy)]
enum Member {
    Edge(PortId),
    /// A router interface, through the port entry that names it (and
    /// holds its capture and link).
    Router(PortId),
}

/// What a router interface is plugged into.
#[derive(Debug, Clone, Copy)]
enum IfaceLink {
    /// A switch port, through the port entry that names it.
    Switch(PortId),
    Edge(PortId),
}

/// What an edge port is plugged into.
#[derive(Debug, Clone, Copy)]
enum Attach {
    Switch(usize, PortNo),
    /// An L3 (TUN) port on a router interface: frames are IP packets.
    Router(usize, IfaceId),
    /// The switch side of a router's interface: no device, but a name in
    /// status, a place to capture and a link to impair.
    RouterLink {
        router: usize,
        iface: IfaceId,
        switch: usize,
        port: PortNo,
    },
}

#[derive(Clone)]
struct SwitchNode {
    name: String,
    switch: Switch,
    members: Vec<Member>,
}

#[derive(Clone)]
struct RouterNode {
    router: Router,
    ifaces: Vec<Option<IfaceLink>>,
}

struct PortEntry {
    name: String,
    attach: Attach,
    offload: bool,
    /// Open captures of the port (each `scratchnet capture` has its own).
    captures: Vec<Box<dyn CaptureSink>>,
    /// Traffic of an L3 port (switch ports are counted by their switch).
    l3: L3Counters,
    /// The port's cable, if it was ever impaired or taken down.
    link: Option<Box<Link>>,
}

/// A frame a link holds, and where it goes on when its time comes.
#[derive(Debug)]
struct Held {
    port: PortId,
    side: Side,
    frame: Frame,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct L3Counters {
    pub(crate) rx_frames: u64,
    pub(crate) rx_bytes: u64,
    pub(crate) tx_frames: u64,
    pub(crate) tx_bytes: u64,
}

/// Work items one ingress may create before the fabric stops it: a guard
/// against a topology that loops frames forever (TTL bounds routed loops).
const MAX_HOPS: usize = 1024;

/// The graph of switches, routers and edge ports.
pub struct Fabric {
    switches: Vec<SwitchNode>,
    routers: Vec<RouterNode>,
    ports: Vec<PortEntry>,
    capture_scratch: [u8; 16],
    /// Runs stopped by [`MAX_HOPS`].
    runaway: u64,
    tracer: Tracer,
    /// Whether any trace session is open: the one branch per hop.
    tracing: bool,
    /// Frames impaired links hold, by when they go on.
    held: Wheel<Held>,
    /// Reused list of the frames the wheel releases.
    due: Vec<Held>,
    /// Cuts super-frames into packets for per-packet impairment.
    segmenter: Segmenter,
    /// Seeds every link's draws.
    seed: u64,
    /// A frame was held until before anything else was due: whoever
    /// drives the timers must wake earlier than it planned.
    wake: bool,
}

impl std::fmt::Debug for Fabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fabric")
            .field("switches", &self.switches.len())
            .field("routers", &self.routers.len())
            .field("ports", &self.ports.len())
            .finish()
    }
}

impl Default for Fabric {
    fn default() -> Self {
        Fabric::new()
    }
}

impl Fabric {
    pub fn new() -> Fabric {
        Fabric {
            switches: Vec::new(),
            routers: Vec::new(),
            ports: Vec::new(),
            capture_scratch: [0; 16],
            runaway: 0,
            tracer: Tracer::default(),
            tracing: false,
            held: Wheel::default(),
            due: Vec::new(),
            segmenter: Segmenter::new(),
            seed: 0,
            wake: false,
        }
    }

    pub fn add_switch(&mut self, name: &str, config: SwitchConfig) -> SwitchId {
        self.switches.push(SwitchNode {
            name: name.to_owned(),
            switch: Switch::new(config),
            members: Vec::new(),
        });
        SwitchId(self.switches.len() as u32 - 1)
    }

    fn new_port(
        &mut self,
        name: &str,
        attach: Attach,
        offload: bool,
    ) -> Result<PortId, FabricError> {
        if self.port_by_name(name).is_some() {
            return Err(FabricError::DuplicatePort(name.to_owned()));
        }
        self.ports.push(PortEntry {
            name: name.to_owned(),
            attach,
            offload,
            captures: Vec::new(),
            l3: L3Counters::default(),
            link: None,
        });
        Ok(PortId(self.ports.len() as u32 - 1))
    }

    /// Adds an edge port on `switch`. `offload` says the port's device
    /// takes GSO super-frames and partial checksums.
    pub fn add_port(
        &mut self,
        name: &str,
        switch: SwitchId,
        config: PortConfig,
        offload: bool,
    ) -> Result<PortId, FabricError> {
        let node = self
            .switches
            .get_mut(switch.0 as usize)
            .ok_or(FabricError::NoSuchNode)?;
        let port_no = node.switch.add_port(config);
        let id = PortId(self.ports.len() as u32);
        node.members.push(Member::Edge(id));
        self.new_port(name, Attach::Switch(switch.0 as usize, port_no), offload)
    }

    /// Adds a router; its interfaces are then plugged in with
    /// [`Fabric::link_router`] or [`Fabric::add_router_port`].
    pub fn add_router(&mut self, router: Router, interfaces: usize) -> RouterId {
        self.routers.push(RouterNode {
            router,
            ifaces: vec![None; interfaces],
        });
        RouterId(self.routers.len() as u32 - 1)
    }

    /// Plugs a router interface into a switch port; the port named
    /// `ROUTER.IFACE` stands for the interface in status, captures and
    /// link settings.
    pub fn link_router(
        &mut self,
        r: RouterId,
        iface: IfaceId,
        switch: SwitchId,
        config: PortConfig,
    ) -> Result<PortId, FabricError> {
        let node = self
            .switches
            .get_mut(switch.0 as usize)
            .ok_or(FabricError::NoSuchNode)?;
        let slot = self
            .routers
            .get_mut(r.0 as usize)
            .and_then(|n| n.ifaces.get_mut(iface.0 as usize))
            .ok_or(FabricError::NoSuchNode)?;
        let port_no = node.switch.add_port(config);
        let id = PortId(self.ports.len() as u32);
        node.members.push(Member::Router(id));
        *slot = Some(IfaceLink::Switch(id));
        let router = &self.routers[r.0 as usize].router;
        let name = format!(
            "{}.{}",
            router.name(),
            router.iface_name(iface).unwrap_or("?")
        );
        let attach = Attach::RouterLink {
            router: r.0 as usize,
            iface,
            switch: switch.0 as usize,
            port: port_no,
        };
        self.new_port(&name, attach, false)
    }

    /// Makes a router interface an L3 edge port (a TUN device).
    pub fn add_router_port(
        &mut self,
        name: &str,
        r: RouterId,
        iface: IfaceId,
        offload: bool,
    ) -> Result<PortId, FabricError> {
        let id = self.new_port(name, Attach::Router(r.0 as usize, iface), offload)?;
        let slot = self
            .routers
            .get_mut(r.0 as usize)
            .and_then(|n| n.ifaces.get_mut(iface.0 as usize))
            .ok_or(FabricError::NoSuchNode)?;
        *slot = Some(IfaceLink::Edge(id));
        Ok(id)
    }

    pub fn port_by_name(&self, name: &str) -> Option<PortId> {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .map(|i| PortId(i as u32))
    }

    pub fn port_name(&self, port: PortId) -> &str {
        self.ports
            .get(port.0 as usize)
            .map_or("?", |p| p.name.as_str())
    }

    pub fn port_names(&self) -> impl Iterator<Item = &str> {
        self.ports.iter().map(|p| p.name.as_str())
    }

    /// Whether the port's device takes offloaded frames as they are.
    pub fn port_offload(&self, port: PortId) -> bool {
        self.ports.get(port.0 as usize).is_some_and(|p| p.offload)
    }

    /// Whether the port carries IP packets (a TUN) rather than Ethernet.
    pub fn port_is_l3(&self, port: PortId) -> bool {
        self.ports
            .get(port.0 as usize)
            .is_some_and(|p| matches!(p.attach, Attach::Router(..)))
    }

    /// Starts a capture on a port, beside any already open; it ends when
    /// its sink says it is closed.
    pub fn add_capture(&mut self, port: PortId, sink: Box<dyn CaptureSink>) {
        if let Some(p) = self.ports.get_mut(port.0 as usize) {
            p.captures.push(sink);
        }
    }

    /// Starts a trace session: the frames entering at `port` (any port if
    /// `None`) that match `filter`, `count` of them at most, with every
    /// decision taken on them and on what they cause, go to `sink` as
    /// [`crate::TraceRecord`]s. False if 64 sessions are open already.
    pub fn add_trace(
        &mut self,
        port: Option<PortId>,
        filter: Filter,
        count: Option<u64>,
        sink: Box<dyn TraceSink>,
    ) -> bool {
        let added = self.tracer.add(port, filter, count, sink);
        self.tracing = !self.tracer.is_empty();
        added
    }

    /// What would happen to `frame` entering at `port` now, decision by
    /// decision, without it happening: the frame runs through a copy of
    /// every switch's and router's tables, so nothing is learned, mapped,
    /// queued, counted or delivered (`scratchnet trace --inject`).
    pub fn what_if(&self, now: Instant, port: PortId, frame: &[u8]) -> Vec<TraceRecord> {
        let mut copy = Fabric {
            switches: self.switches.clone(),
            routers: self.routers.clone(),
            ports: self
                .ports
                .iter()
                .map(|p| PortEntry {
                    name: p.name.clone(),
                    attach: p.attach,
                    offload: p.offload,
                    captures: Vec::new(),
                    l3: p.l3,
                    link: p.link.clone(),
                })
                .collect(),
            ..Fabric::new()
        };
        let records = Recorded::default();
        copy.add_trace(Some(port), Filter::All, Some(1), Box::new(records.clone()));
        let mut batch = Batch::new();
        let mut f = batch.take_frame();
        f.extend_from_slice(frame);
        copy.ingress(now, port, f, &mut batch);
        let mut out = records.take();
        for r in &mut out {
            r.what_if = true;
        }
        out
    }

    /// Events of traced frame `trace` that a node outside the run reports
    /// later (a service host, which handles its frames in its own task).
    pub fn late_events(&mut self, now: Instant, trace: u64, node: &str, whats: Vec<What>) {
        if self.tracing && trace != 0 {
            for w in whats {
                self.tracer.event(trace, node, w);
            }
            self.end_run(now);
        }
    }

    /// Hands the run's trace records out, if a trace is on.
    fn end_run(&mut self, now: Instant) {
        if self.tracing {
            self.tracer.flush(now);
            self.tracing = !self.tracer.is_empty();
        }
    }

    /// Runs one frame that arrived on `port` through the fabric. What to
    /// write is left in `batch` (see [`Batch::deliveries`]); drops are
    /// counted where they happen.
    pub fn ingress(&mut self, now: Instant, port: PortId, mut frame: Frame, batch: &mut Batch) {
        batch.recycle();
        if self.tracing {
            let name = self.port_name(port).to_owned();
            let l3 = self.port_is_l3(port);
            self.tracer.ingress(port, &name, l3, &mut frame);
        } else {
            frame.trace = 0;
        }
        match self.ports.get(port.0 as usize) {
            // The switch side of a router interface has no outside.
            None
            | Some(PortEntry {
                attach: Attach::RouterLink { .. },
                ..
            }) => batch.put_frame(frame),
            Some(_) => {
                self.send(now, port, Side::Out, frame, batch);
                self.run(now, batch);
            }
        }
        self.end_run(now);
    }

    /// Puts a frame on `port`'s link going `side`: through the link's
    /// impairment if it has one, else straight on.
    fn send(&mut self, now: Instant, port: PortId, side: Side, frame: Frame, batch: &mut Batch) {
        let impaired = self
            .ports
            .get(port.0 as usize)
            .and_then(|p| p.link.as_deref())
            .is_some_and(|l| l.acts_on(side, frame.data()));
        if impaired {
            self.through_link(now, port, side, frame, batch);
        } else {
            self.resume(now, port, side, frame, batch);
        }
    }

    /// A frame at the far end of `port`'s link going `side` goes on.
    fn resume(&mut self, now: Instant, port: PortId, side: Side, frame: Frame, batch: &mut Batch) {
        match side {
            Side::Out => self.enter(now, port, frame, batch),
            Side::In => self.leave(port, frame, batch),
        }
    }

    /// A frame reaches the fabric's side of `port`: the switch port or
    /// router interface behind it takes it.
    fn enter(&mut self, now: Instant, port: PortId, mut frame: Frame, batch: &mut Batch) {
        tap(
            &mut self.ports,
            &mut self.capture_scratch,
            port,
            now,
            Direction::In,
            VlanEdit::Keep,
            frame.data(),
        );
        let Some(entry) = self.ports.get_mut(port.0 as usize) else {
            batch.put_frame(frame);
            return;
        };
        let hop = match entry.attach {
            Attach::Switch(sw, pn)
            | Attach::RouterLink {
                switch: sw,
                port: pn,
                ..
            } => Hop::Switch(sw, pn),
            Attach::Router(r, iface) => {
                entry.l3.rx_frames += 1;
                entry.l3.rx_bytes += frame.len() as u64;
                if !wrap_in_ethernet(&mut frame) {
                    batch.put_frame(frame);
                    return;
                }
                Hop::Router(r, iface)
            }
        };
        let slot = batch.push(frame);
        batch.work.push_back((hop, slot));
    }

    /// A frame reaches the far end of `port`: a delivery to its device or
    /// endpoint, or the router interface on a switch.
    fn leave(&mut self, port: PortId, frame: Frame, batch: &mut Batch) {
        let Some(entry) = self.ports.get(port.0 as usize) else {
            batch.put_frame(frame);
            return;
        };
        if let Attach::RouterLink { router, iface, .. } = entry.attach {
            let slot = batch.push(frame);
            batch.work.push_back((Hop::Router(router, iface), slot));
            return;
        }
        if self.tracing && frame.trace != 0 {
            let what = egress_of(entry.offload, &frame);
            let name = entry.name.clone();
            self.tracer.event(frame.trace, &name, what);
        }
        let slot = batch.push(frame);
        batch.deliveries.push(Delivery {
            port,
            edit: VlanEdit::Keep,
            frame: slot,
        });
    }

    /// Takes a frame through `port`'s impaired link going `side`: cut into
    /// packets first if the impairment acts on packets, then each one
    /// dropped, sent on now, or held in the wheel until its time.
    fn through_link(
        &mut self,
        now: Instant,
        port: PortId,
        side: Side,
        frame: Frame,
        batch: &mut Batch,
    ) {
        let Some(link) = self.link_mut(port) else {
            return batch.put_frame(frame);
        };
        if !(link.per_packet() && frame.hdr.needs_work()) {
            return self.shape(now, port, side, frame, batch);
        }
        let mut packets = Vec::new();
        let trace = frame.trace;
        let cut = self.segmenter.emit(frame.data(), &frame.hdr, |p| {
            let mut f = Frame::from_slice(p);
            f.trace = trace;
            packets.push(f);
        });
        batch.put_frame(frame);
        match cut {
            Ok(n) if n > 1 => self.link_event(trace, port, LinkEvent::Cut { packets: n }),
            Ok(_) => {}
            Err(_) => {
                // A super-frame the segmenter refuses would fail at every
                // port without offloads too: it is lost on this link.
                if let Some(l) = self.link_mut(port) {
                    l.counters.lost += 1;
                }
                self.link_event(
                    trace,
                    port,
                    LinkEvent::Dropped {
                        reason: "malformed super-frame",
                    },
                );
            }
        }
        for p in packets {
            self.shape(now, port, side, p, batch);
        }
    }

    /// Draws one frame's fate on `port`'s link going `side`, and its
    /// duplicate's.
    fn shape(&mut self, now: Instant, port: PortId, side: Side, frame: Frame, batch: &mut Batch) {
        let Some(link) = self.link_mut(port) else {
            return batch.put_frame(frame);
        };
        let twice = link.duplicate(side);
        if twice {
            self.link_event(frame.trace, port, LinkEvent::Duplicated);
            let copy = frame.compact();
            self.fate(now, port, side, copy, batch);
        }
        self.fate(now, port, side, frame, batch);
    }

    fn fate(&mut self, now: Instant, port: PortId, side: Side, frame: Frame, batch: &mut Batch) {
        let Some(link) = self.link_mut(port) else {
            return batch.put_frame(frame);
        };
        let len = frame.len();
        match link.fate(now, side, len) {
            Fate::Drop(why) => {
                self.link_event(
                    frame.trace,
                    port,
                    LinkEvent::Dropped {
                        reason: why.as_str(),
                    },
                );
                batch.put_frame(frame);
            }
            Fate::Now { reordered } => {
                if reordered {
                    self.link_event(frame.trace, port, LinkEvent::Reordered);
                }
                self.resume(now, port, side, frame, batch);
            }
            Fate::At(at) => {
                link.held_bytes += len;
                let micros = (at - now).as_micros() as u64;
                self.link_event(frame.trace, port, LinkEvent::Delayed { micros });
                if self.held.next_due().is_none_or(|n| at < n) {
                    self.wake = true;
                }
                let held = Held {
                    port,
                    side,
                    frame: frame.compact(),
                };
                batch.put_frame(frame);
                self.held.insert(now, at, held);
            }
        }
    }

    fn link_mut(&mut self, port: PortId) -> Option<&mut Link> {
        self.ports.get_mut(port.0 as usize)?.link.as_deref_mut()
    }

    fn link_event(&mut self, trace: u64, port: PortId, event: LinkEvent) {
        if self.tracing && trace != 0 {
            let name = self.port_name(port).to_owned();
            self.tracer.event(trace, &name, What::Link(event));
        }
    }

    /// Lets frames that links held go on, those due by `now`.
    fn release_held(&mut self, now: Instant, batch: &mut Batch) {
        if self.held.next_due().is_none_or(|t| t > now) {
            return;
        }
        let mut due = std::mem::take(&mut self.due);
        self.held.expire(now, &mut due);
        for Held { port, side, frame } in due.drain(..) {
            if let Some(l) = self.link_mut(port) {
                l.held_bytes = l.held_bytes.saturating_sub(frame.len());
            }
            self.resume(now, port, side, frame, batch);
        }
        self.due = due;
    }

    /// Sets what `port`'s link does to frames, and whether it is up; a
    /// perfect link that is up costs one branch per frame. Frames already
    /// on the link arrive as they were going to.
    pub fn set_link(
        &mut self,
        port: PortId,
        impairment: Impairment,
        up: bool,
    ) -> Result<(), FabricError> {
        let seed = self.seed;
        let entry = self
            .ports
            .get_mut(port.0 as usize)
            .ok_or(FabricError::NoSuchNode)?;
        let name = entry.name.clone();
        entry
            .link
            .get_or_insert_with(|| Box::new(Link::new(seed, &name)))
            .set(impairment, up);
        let longest = self
            .ports
            .iter()
            .filter_map(|p| p.link.as_deref())
            .map(Link::longest_hold)
            .max()
            .unwrap_or_default();
        self.tracer.set_linger(longest);
        Ok(())
    }

    /// What `port`'s link does to frames, and whether it is up.
    pub fn link(&self, port: PortId) -> Option<(Impairment, bool)> {
        let entry = self.ports.get(port.0 as usize)?;
        Some(
            entry
                .link
                .as_deref()
                .map_or((Impairment::default(), true), |l| {
                    (l.impairment(), l.is_up())
                }),
        )
    }

    /// Seeds the links' draws (set before any link is made).
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    /// Whether a frame was held until before the time [`Fabric::poll_at`]
    /// gave last (then whoever drives the timers wakes earlier); clears it.
    pub fn take_wake(&mut self) -> bool {
        std::mem::take(&mut self.wake)
    }

    /// Whether links hold frames still to arrive.
    pub fn holding(&self) -> bool {
        self.held.len() > 0
    }

    /// Lets routers act on time (ARP retries and give-ups), then runs what
    /// they send. Call when [`Fabric::poll_at`] is due.
    pub fn on_timer(&mut self, now: Instant, batch: &mut Batch) {
        batch.recycle();
        self.release_held(now, batch);
        for sw in 0..self.switches.len() {
            let s = &mut self.switches[sw].switch;
            if s.poll_at().is_some_and(|t| t <= now) {
                s.on_timer(now);
                // What the switch sends itself (its multicast querier's
                // queries) goes out as a switched frame would.
                while let Some(data) = self.switches[sw].switch.poll_transmit(&mut batch.egress) {
                    let frame = batch.pool.copy_of(&data, VnetHdr::PLAIN);
                    let slot = batch.push(frame);
                    self.fan_out(now, sw, slot, batch);
                }
            }
        }
        for r in 0..self.routers.len() {
            if self.routers[r].router.poll_at().is_some_and(|t| t <= now) {
                self.routers[r]
                    .router
                    .on_timer(now, &mut batch.pool, &mut batch.router_out);
                self.route_out(now, r, 0, batch);
            }
        }
        self.run(now, batch);
        self.end_run(now);
    }

    /// The earliest time any node wants [`Fabric::on_timer`].
    pub fn poll_at(&self) -> Option<Instant> {
        let s = self.switches.iter().filter_map(|s| s.switch.poll_at());
        let r = self.routers.iter().filter_map(|r| r.router.poll_at());
        s.chain(r)
            .chain(self.tracer.poll_at())
            .chain(self.held.next_due())
            .min()
    }

    fn run(&mut self, now: Instant, batch: &mut Batch) {
        let mut hops = 0;
        while let Some((hop, slot)) = batch.work.pop_front() {
            hops += 1;
            if hops > MAX_HOPS {
                self.runaway += 1;
                batch.work.clear();
                return;
            }
            match hop {
                Hop::Switch(sw, pn) => self.switch_hop(now, sw, pn, slot, batch),
                Hop::Router(r, iface) => {
                    let Some(frame) = batch.frames[slot].take() else {
                        continue;
                    };
                    let traced = if self.tracing { frame.trace } else { 0 };
                    let router = &mut self.routers[r].router;
                    if traced != 0 {
                        router.set_tracing(true);
                    }
                    router.receive(now, iface, frame, &mut batch.pool, &mut batch.router_out);
                    if traced != 0 {
                        let decisions = router.take_decisions();
                        router.set_tracing(false);
                        let name = router.name().to_owned();
                        for d in decisions {
                            self.tracer.event(traced, &name, What::Router(d));
                        }
                    }
                    self.route_out(now, r, traced, batch);
                }
            }
        }
    }

    /// Sends what router `r` just put in the batch's outbox on its way;
    /// `cause` is the traced frame it was handling (0 if none), which the
    /// frames it made afresh answer.
    fn route_out(&mut self, now: Instant, r: usize, cause: u64, batch: &mut Batch) {
        let mut out = std::mem::take(&mut batch.router_out);
        for (iface, mut frame) in out.drain(..) {
            if cause != 0 && frame.trace == 0 {
                let name = self.routers[r].router.name().to_owned();
                self.tracer.answer(cause, &name, &mut frame);
            }
            match self.routers[r]
                .ifaces
                .get(iface.0 as usize)
                .copied()
                .flatten()
            {
                Some(IfaceLink::Switch(link)) => self.send(now, link, Side::Out, frame, batch),
                Some(IfaceLink::Edge(port)) => {
                    frame.pull_front(HEADER_LEN);
                    frame.hdr = frame.hdr.shifted(-(HEADER_LEN as isize));
                    if let Some(entry) = self.ports.get_mut(port.0 as usize) {
                        entry.l3.tx_frames += 1;
                        entry.l3.tx_bytes += frame.len() as u64;
                    }
                    tap(
                        &mut self.ports,
                        &mut self.capture_scratch,
                        port,
                        now,
                        Direction::Out,
                        VlanEdit::Keep,
                        frame.data(),
                    );
                    self.send(now, port, Side::In, frame, batch);
                }
                None => batch.pool.put(frame),
            }
        }
        batch.router_out = out;
    }

    fn switch_hop(&mut self, now: Instant, sw: usize, pn: PortNo, slot: usize, batch: &mut Batch) {
        let Some(frame) = batch.frames[slot].as_ref() else {
            return;
        };
        let node = &mut self.switches[sw];
        let result =
            node.switch
                .process(now, pn, frame.data(), frame.hdr.is_gso(), &mut batch.egress);
        if self.tracing && frame.trace != 0 {
            let id = frame.trace;
            self.trace_switch(sw, pn, id, result, &batch.egress);
        }
        if result.is_err() {
            return; // counted by the switch
        }
        self.fan_out(now, sw, slot, batch);
    }

    /// Sends the frame in `slot` out of the ports of switch `sw` that
    /// `batch.egress` lists.
    fn fan_out(&mut self, now: Instant, sw: usize, slot: usize, batch: &mut Batch) {
        let copies = batch.egress.len();
        for i in 0..copies {
            let e = batch.egress[i];
            let member = self.switches[sw].members[e.port.0 as usize];
            let (Member::Edge(named) | Member::Router(named)) = member;
            if let Some(frame) = batch.frames[slot].as_ref() {
                tap(
                    &mut self.ports,
                    &mut self.capture_scratch,
                    named,
                    now,
                    Direction::Out,
                    e.edit,
                    frame.data(),
                );
            }
            let data = batch.frames[slot].as_ref().map_or(&[][..], |f| f.data());
            let impaired = self
                .ports
                .get(named.0 as usize)
                .and_then(|p| p.link.as_deref())
                .is_some_and(|l| l.acts_on(Side::In, data));
            if let (Member::Edge(port), false) = (member, impaired) {
                // The common case: the frame goes out as it is, tag edits
                // applied on the way, shared by every copy.
                batch.deliveries.push(Delivery {
                    port,
                    edit: e.edit,
                    frame: slot,
                });
                if let Some(f) = batch.frames[slot].as_ref().filter(|f| f.trace != 0) {
                    if self.tracing {
                        let entry = self.ports.get(port.0 as usize);
                        let name = entry.map_or("?", |p| &p.name);
                        let what = egress_of(entry.is_some_and(|p| p.offload), f);
                        self.tracer.event(f.trace, name, what);
                    }
                }
                continue;
            }
            // A router rewrites the frame, and a link may hold it: each
            // gets the frame itself when it is the only receiver, a copy
            // otherwise.
            let mut own = if copies == 1 {
                match batch.frames[slot].take() {
                    Some(f) => f,
                    None => continue,
                }
            } else {
                let Batch { frames, pool, .. } = &mut *batch;
                let Some(f) = frames[slot].as_ref() else {
                    continue;
                };
                let mut copy = pool.copy_of(f.data(), f.hdr);
                copy.trace = f.trace;
                copy
            };
            own.apply_vlan_edit(e.edit);
            self.send(now, named, Side::In, own, batch);
        }
    }

    /// Records what switch `sw` did with traced frame `id` from its port
    /// `pn`.
    fn trace_switch(
        &mut self,
        sw: usize,
        pn: PortNo,
        id: u64,
        result: Result<switch::Forwarding, switch::DropReason>,
        egress: &[Egress],
    ) {
        let node = &self.switches[sw];
        let member_name = |p: PortNo| match node.members.get(p.0 as usize) {
            Some(Member::Edge(n) | Member::Router(n)) => self.port_name(*n).to_owned(),
            None => "?".to_owned(),
        };
        let what = match result {
            Ok(f) => What::Switched {
                learned: matches!(f.learned, Learn::New | Learn::Moved).then(|| member_name(pn)),
                to: egress.iter().map(|e| member_name(e.port)).collect(),
                flooded: f.flooded,
            },
            Err(reason) => What::SwitchDrop {
                reason: reason.as_str(),
            },
        };
        let name = node.name.clone();
        self.tracer.event(id, &name, what);
    }

    /// A snapshot of every switch, router, port and table.
    pub fn status(&self, now: Instant) -> FabricStatus {
        let switches = self
            .switches
            .iter()
            .map(|node| {
                let ports = node
                    .members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let c = node
                            .switch
                            .port_counters(PortNo(i as u32))
                            .cloned()
                            .unwrap_or_default();
                        let (Member::Edge(id) | Member::Router(id)) = *m;
                        let e = &self.ports[id.0 as usize];
                        let offload = matches!(m, Member::Edge(_)) && e.offload;
                        let mut p = PortStatus::new(&e.name, offload, !e.captures.is_empty(), &c);
                        p.link = e.link.as_deref().map(Link::status);
                        p
                    })
                    .collect::<Vec<_>>();
                let name_of = |p: PortNo| {
                    ports
                        .get(p.0 as usize)
                        .map_or("?".to_owned(), |p| p.name.clone())
                };
                let mac_table = node
                    .switch
                    .mac_table(now)
                    .into_iter()
                    .map(|e| MacRow {
                        vlan: e.vlan,
                        mac: e.mac,
                        port: name_of(e.port),
                        age_secs: e.age_secs,
                    })
                    .collect();
                let groups = node
                    .switch
                    .groups(now)
                    .into_iter()
                    .map(|g| GroupRow {
                        vlan: g.vlan,
                        group: g.group,
                        ports: g.ports.iter().map(|&p| name_of(p)).collect(),
                    })
                    .collect();
                SwitchStatus {
                    name: node.name.clone(),
                    counters: node.switch.counters().clone(),
                    snooping: node.switch.snoop_counters().clone(),
                    ports,
                    mac_table,
                    groups,
                }
            })
            .collect();
        let routers = self.routers.iter().map(|r| r.router.status(now)).collect();
        let l3_ports = self
            .ports
            .iter()
            .filter(|p| matches!(p.attach, Attach::Router(..)))
            .map(|p| {
                let mut s = PortStatus::l3(&p.name, p.offload, !p.captures.is_empty(), p.l3);
                s.link = p.link.as_deref().map(Link::status);
                s
            })
            .collect();
        FabricStatus {
            switches,
            routers,
            l3_ports,
            runaway: self.runaway,
            timer_panics: 0,
        }
    }
}

/// Puts a placeholder Ethernet header in front of an IP packet from a TUN,
/// so routers see one framing. False if it is neither IPv4 nor IPv6.
fn wrap_in_ethernet(frame: &mut Frame) -> bool {
    let ethertype = match frame.data().first().map(|b| b >> 4) {
        Some(4) => ETHERTYPE_IPV4,
        Some(6) => ETHERTYPE_IPV6,
        _ => return false,
    };
    let Some(h) = frame.push_front(HEADER_LEN) else {
        return false;
    };
    h[..12].fill(0);
    h[12..14].copy_from_slice(&ethertype.to_be_bytes());
    frame.hdr = frame.hdr.shifted(HEADER_LEN as isize);
    true
}

/// Hands a frame to the capture tap of `port`, if it has an open one; one
/// branch when it has none.
fn tap(
    ports: &mut [PortEntry],
    scratch: &mut [u8; 16],
    port: PortId,
    now: Instant,
    dir: Direction,
    edit: VlanEdit,
    frame: &[u8],
) {
    let Some(entry) = ports.get_mut(port.0 as usize) else {
        return;
    };
    if entry.captures.is_empty() {
        return;
    }
    entry.captures.retain(|sink| sink.is_open());
    let (head, tail) = edit.apply(frame, scratch);
    for sink in &mut entry.captures {
        sink.record(now, dir, head, tail);
    }
}
