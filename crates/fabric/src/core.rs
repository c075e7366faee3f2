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
use crate::timers::{Deadline, NodeRef, Timers};
use crate::trace::{egress_of, LinkEvent, Recorded, Records, TraceRecord, TraceSink, Tracer, What};
use crate::wheel::Wheel;
use router::{IfaceId, Outbox, Router};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
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

/// The frames of one run through the fabric, the pool they come from and
/// the run's scratch space. Each driving task owns one, so frames never
/// cross a lock.
pub struct Batch {
    pool: FramePool,
    frames: Vec<Option<Frame>>,
    deliveries: Vec<Delivery>,
    router_out: Outbox,
    work: VecDeque<(Hop, usize)>,
    egress: Vec<Egress>,
    /// The run's trace records, until it ends.
    records: Records,
    /// Frames links let go in this run.
    due: Vec<Held>,
    /// Nodes whose timers are due.
    due_nodes: Vec<NodeRef>,
    /// Cuts super-frames into packets for per-packet impairment.
    segmenter: Segmenter,
    capture_scratch: [u8; 16],
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("frames", &self.frames.len())
            .field("deliveries", &self.deliveries.len())
            .finish()
    }
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
            records: Vec::new(),
            due: Vec::new(),
            due_nodes: Vec::new(),
            segmenter: Segmenter::new(),
            capture_scratch: [0; 16],
        }
    }

    /// Forgets a run that was cut short (a panic): work, outbox and
    /// frames.
    pub fn reset(&mut self) {
        self.work.clear();
        self.router_out.clear();
        self.egress.clear();
        self.records.clear();
        self.due.clear();
        self.due_nodes.clear();
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

struct SwitchNode {
    name: String,
    members: Vec<Member>,
    switch: Mutex<Switch>,
    deadline: Deadline,
}

struct RouterNode {
    name: String,
    ifaces: Vec<Option<IfaceLink>>,
    router: Mutex<Router>,
    deadline: Deadline,
}

struct PortEntry {
    name: String,
    attach: Attach,
    offload: bool,
    /// Open captures of the port (each `scratchnet capture` has its own),
    /// looked at only when `capturing` says there are some.
    captures: Mutex<Vec<Box<dyn CaptureSink>>>,
    capturing: AtomicBool,
    /// Traffic of an L3 port (switch ports are counted by their switch).
    l3: L3Counters,
    /// The port's cable, if it was ever impaired or taken down, looked at
    /// only when `cabled` says it is there.
    link: Mutex<Option<Box<Link>>>,
    cabled: AtomicBool,
}

/// A frame a link holds, and where it goes on when its time comes.
#[derive(Debug)]
pub(crate) struct Held {
    port: PortId,
    side: Side,
    frame: Frame,
}

#[derive(Debug, Default)]
pub(crate) struct L3Counters {
    pub(crate) rx_frames: AtomicU64,
    pub(crate) rx_bytes: AtomicU64,
    pub(crate) tx_frames: AtomicU64,
    pub(crate) tx_bytes: AtomicU64,
}

impl L3Counters {
    fn count(frames: &AtomicU64, bytes: &AtomicU64, len: usize) {
        frames.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(len as u64, Ordering::Relaxed);
    }
}

/// Work items one ingress may create before the fabric stops it: a guard
/// against a topology that loops frames forever (TTL bounds routed loops).
const MAX_HOPS: usize = 1024;

/// Takes a lock, through a panic that poisoned it: each node's state is
/// whole between frames, so later frames can be served.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The graph of switches, routers and edge ports.
///
/// Built with `&mut self`, run with `&self` from any number of threads:
/// each switch, router and link has a lock of its own and a run holds one
/// at a time, so frames on different segments forward in parallel.
/// Captures, traces and impairments are each behind a flag, the one
/// branch they cost a frame when they are off.
pub struct Fabric {
    switches: Vec<SwitchNode>,
    routers: Vec<RouterNode>,
    ports: Vec<PortEntry>,
    /// Runs stopped by [`MAX_HOPS`].
    runaway: AtomicU64,
    tracer: Mutex<Tracer>,
    /// Whether any trace session is open: the one branch per hop.
    tracing: AtomicBool,
    /// Frames impaired links hold, by when they go on.
    held: Mutex<Wheel<Held>>,
    /// When each switch and router wants its timer.
    timers: Timers,
    /// Seeds every link's draws.
    seed: u64,
    /// A frame was held until before anything else was due: whoever
    /// drives the timers must wake earlier than it planned.
    wake: AtomicBool,
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
            runaway: AtomicU64::new(0),
            tracer: Mutex::new(Tracer::default()),
            tracing: AtomicBool::new(false),
            held: Mutex::new(Wheel::default()),
            timers: Timers::default(),
            seed: 0,
            wake: AtomicBool::new(false),
        }
    }

    pub fn add_switch(&mut self, name: &str, config: SwitchConfig) -> SwitchId {
        self.switches.push(SwitchNode {
            name: name.to_owned(),
            members: Vec::new(),
            switch: Mutex::new(Switch::new(config)),
            deadline: Deadline::default(),
        });
        let id = self.switches.len() - 1;
        self.note_switch(id);
        SwitchId(id as u32)
    }

    /// Lets the timers know what switch `sw` wants after it was changed
    /// while the fabric was built.
    fn note_switch(&mut self, sw: usize) {
        let node = &self.switches[sw];
        let at = lock(&node.switch).poll_at();
        self.timers
            .note(NodeRef::Switch(sw as u32), &node.deadline, at);
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
            captures: Mutex::new(Vec::new()),
            capturing: AtomicBool::new(false),
            l3: L3Counters::default(),
            link: Mutex::new(None),
            cabled: AtomicBool::new(false),
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
        let sw = switch.0 as usize;
        let node = self.switches.get_mut(sw).ok_or(FabricError::NoSuchNode)?;
        let id = PortId(self.ports.len() as u32);
        let port_no = lock(&node.switch).add_port(config);
        node.members.push(Member::Edge(id));
        self.note_switch(sw);
        self.new_port(name, Attach::Switch(sw, port_no), offload)
    }

    /// Adds a router; its interfaces are then plugged in with
    /// [`Fabric::link_router`] or [`Fabric::add_router_port`].
    pub fn add_router(&mut self, router: Router, interfaces: usize) -> RouterId {
        let id = self.routers.len();
        let node = RouterNode {
            name: router.name().to_owned(),
            ifaces: vec![None; interfaces],
            deadline: Deadline::default(),
            router: Mutex::new(router),
        };
        let at = lock(&node.router).poll_at();
        self.timers
            .note(NodeRef::Router(id as u32), &node.deadline, at);
        self.routers.push(node);
        RouterId(id as u32)
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
        let sw = switch.0 as usize;
        let id = PortId(self.ports.len() as u32);
        let rnode = self
            .routers
            .get_mut(r.0 as usize)
            .ok_or(FabricError::NoSuchNode)?;
        let slot = rnode
            .ifaces
            .get_mut(iface.0 as usize)
            .ok_or(FabricError::NoSuchNode)?;
        let node = self.switches.get_mut(sw).ok_or(FabricError::NoSuchNode)?;
        *slot = Some(IfaceLink::Switch(id));
        let port_no = lock(&node.switch).add_port(config);
        node.members.push(Member::Router(id));
        let name = {
            let router = lock(&rnode.router);
            format!("{}.{}", rnode.name, router.iface_name(iface).unwrap_or("?"))
        };
        self.note_switch(sw);
        let attach = Attach::RouterLink {
            router: r.0 as usize,
            iface,
            switch: sw,
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
    pub fn add_capture(&self, port: PortId, sink: Box<dyn CaptureSink>) {
        if let Some(p) = self.ports.get(port.0 as usize) {
            lock(&p.captures).push(sink);
            p.capturing.store(true, Ordering::Release);
        }
    }

    /// Starts a trace session: the frames entering at `port` (any port if
    /// `None`) that match `filter`, `count` of them at most, with every
    /// decision taken on them and on what they cause, go to `sink` as
    /// [`crate::TraceRecord`]s. False if 64 sessions are open already.
    pub fn add_trace(
        &self,
        port: Option<PortId>,
        filter: Filter,
        count: Option<u64>,
        sink: Box<dyn TraceSink>,
    ) -> bool {
        let mut tracer = lock(&self.tracer);
        let added = tracer.add(port, filter, count, sink);
        self.tracing.store(!tracer.is_empty(), Ordering::Release);
        added
    }

    fn is_tracing(&self) -> bool {
        self.tracing.load(Ordering::Relaxed)
    }

    /// What would happen to `frame` entering at `port` now, decision by
    /// decision, without it happening: the frame runs through a copy of
    /// every switch's and router's tables, so nothing is learned, mapped,
    /// queued, counted or delivered (`scratchnet trace --inject`). Each
    /// node is copied under its own lock: forwarding goes on meanwhile.
    pub fn what_if(&self, now: Instant, port: PortId, frame: &[u8]) -> Vec<TraceRecord> {
        let copy = Fabric {
            switches: self
                .switches
                .iter()
                .map(|n| SwitchNode {
                    name: n.name.clone(),
                    members: n.members.clone(),
                    switch: Mutex::new(lock(&n.switch).clone()),
                    deadline: Deadline::default(),
                })
                .collect(),
            routers: self
                .routers
                .iter()
                .map(|n| RouterNode {
                    name: n.name.clone(),
                    ifaces: n.ifaces.clone(),
                    router: Mutex::new(lock(&n.router).clone()),
                    deadline: Deadline::default(),
                })
                .collect(),
            ports: self
                .ports
                .iter()
                .map(|p| {
                    let link = lock(&p.link).clone();
                    PortEntry {
                        name: p.name.clone(),
                        attach: p.attach,
                        offload: p.offload,
                        captures: Mutex::new(Vec::new()),
                        capturing: AtomicBool::new(false),
                        l3: L3Counters::default(),
                        cabled: AtomicBool::new(link.is_some()),
                        link: Mutex::new(link),
                    }
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
    pub fn late_events(&self, now: Instant, trace: u64, node: &str, whats: Vec<What>) {
        if self.is_tracing() && trace != 0 {
            let mut records = Records::new();
            let mut tracer = lock(&self.tracer);
            for w in whats {
                tracer.event(&mut records, trace, node, w);
            }
            self.flush_trace(&mut tracer, &mut records, now);
        }
    }

    /// Hands the run's trace records out, if a trace is on.
    fn end_run(&self, now: Instant, batch: &mut Batch) {
        if self.is_tracing() {
            let mut tracer = lock(&self.tracer);
            self.flush_trace(&mut tracer, &mut batch.records, now);
        }
    }

    fn flush_trace(&self, tracer: &mut Tracer, records: &mut Records, now: Instant) {
        tracer.flush(records, now);
        self.tracing.store(!tracer.is_empty(), Ordering::Release);
    }

    /// Adds an event to traced frame `id`'s record in this run.
    fn trace_event(&self, batch: &mut Batch, id: u64, node: &str, what: What) {
        lock(&self.tracer).event(&mut batch.records, id, node, what);
    }

    /// Runs one frame that arrived on `port` through the fabric. What to
    /// write is left in `batch` (see [`Batch::deliveries`]); drops are
    /// counted where they happen.
    pub fn ingress(&self, now: Instant, port: PortId, mut frame: Frame, batch: &mut Batch) {
        batch.recycle();
        if self.is_tracing() {
            let name = self.port_name(port);
            let l3 = self.port_is_l3(port);
            lock(&self.tracer).ingress(&mut batch.records, port, name, l3, &mut frame);
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
        self.end_run(now, batch);
    }

    /// Runs `f` on `port`'s link, if it has one.
    fn with_link<R>(&self, port: PortId, f: impl FnOnce(&mut Link) -> R) -> Option<R> {
        let entry = self.ports.get(port.0 as usize)?;
        if !entry.cabled.load(Ordering::Acquire) {
            return None;
        }
        lock(&entry.link).as_deref_mut().map(f)
    }

    /// Puts a frame on `port`'s link going `side`: through the link's
    /// impairment if it has one, else straight on.
    fn send(&self, now: Instant, port: PortId, side: Side, frame: Frame, batch: &mut Batch) {
        let impaired = self
            .with_link(port, |l| l.acts_on(side, frame.data()))
            .unwrap_or(false);
        if impaired {
            self.through_link(now, port, side, frame, batch);
        } else {
            self.resume(now, port, side, frame, batch);
        }
    }

    /// A frame at the far end of `port`'s link going `side` goes on.
    fn resume(&self, now: Instant, port: PortId, side: Side, frame: Frame, batch: &mut Batch) {
        match side {
            Side::Out => self.enter(now, port, frame, batch),
            Side::In => self.leave(port, frame, batch),
        }
    }

    /// A frame reaches the fabric's side of `port`: the switch port or
    /// router interface behind it takes it.
    fn enter(&self, now: Instant, port: PortId, mut frame: Frame, batch: &mut Batch) {
        self.tap(
            batch,
            port,
            now,
            Direction::In,
            VlanEdit::Keep,
            frame.data(),
        );
        let Some(entry) = self.ports.get(port.0 as usize) else {
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
                L3Counters::count(&entry.l3.rx_frames, &entry.l3.rx_bytes, frame.len());
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
    fn leave(&self, port: PortId, frame: Frame, batch: &mut Batch) {
        let Some(entry) = self.ports.get(port.0 as usize) else {
            batch.put_frame(frame);
            return;
        };
        if let Attach::RouterLink { router, iface, .. } = entry.attach {
            let slot = batch.push(frame);
            batch.work.push_back((Hop::Router(router, iface), slot));
            return;
        }
        if self.is_tracing() && frame.trace != 0 {
            let what = egress_of(entry.offload, &frame);
            self.trace_event(batch, frame.trace, &entry.name, what);
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
        &self,
        now: Instant,
        port: PortId,
        side: Side,
        frame: Frame,
        batch: &mut Batch,
    ) {
        let Some(per_packet) = self.with_link(port, |l| l.per_packet()) else {
            return batch.put_frame(frame);
        };
        if !(per_packet && frame.hdr.needs_work()) {
            return self.shape(now, port, side, frame, batch);
        }
        let mut packets = Vec::new();
        let trace = frame.trace;
        let cut = batch.segmenter.emit(frame.data(), &frame.hdr, |p| {
            let mut f = Frame::from_slice(p);
            f.trace = trace;
            packets.push(f);
        });
        batch.put_frame(frame);
        match cut {
            Ok(n) if n > 1 => self.link_event(batch, trace, port, LinkEvent::Cut { packets: n }),
            Ok(_) => {}
            Err(_) => {
                // A super-frame the segmenter refuses would fail at every
                // port without offloads too: it is lost on this link.
                self.with_link(port, |l| l.counters.lost += 1);
                let event = LinkEvent::Dropped {
                    reason: "malformed super-frame",
                };
                self.link_event(batch, trace, port, event);
            }
        }
        for p in packets {
            self.shape(now, port, side, p, batch);
        }
    }

    /// Draws one frame's fate on `port`'s link going `side`, and its
    /// duplicate's.
    fn shape(&self, now: Instant, port: PortId, side: Side, frame: Frame, batch: &mut Batch) {
        let Some(twice) = self.with_link(port, |l| l.duplicate(side)) else {
            return batch.put_frame(frame);
        };
        if twice {
            self.link_event(batch, frame.trace, port, LinkEvent::Duplicated);
            let copy = frame.compact();
            self.fate(now, port, side, copy, batch);
        }
        self.fate(now, port, side, frame, batch);
    }

    fn fate(&self, now: Instant, port: PortId, side: Side, frame: Frame, batch: &mut Batch) {
        let len = frame.len();
        let fate = self.with_link(port, |l| {
            let fate = l.fate(now, side, len);
            if let Fate::At(_) = fate {
                l.held_bytes += len;
            }
            fate
        });
        match fate {
            None => batch.put_frame(frame),
            Some(Fate::Drop(why)) => {
                let event = LinkEvent::Dropped {
                    reason: why.as_str(),
                };
                self.link_event(batch, frame.trace, port, event);
                batch.put_frame(frame);
            }
            Some(Fate::Now { reordered }) => {
                if reordered {
                    self.link_event(batch, frame.trace, port, LinkEvent::Reordered);
                }
                self.resume(now, port, side, frame, batch);
            }
            Some(Fate::At(at)) => {
                let micros = (at - now).as_micros() as u64;
                self.link_event(batch, frame.trace, port, LinkEvent::Delayed { micros });
                let held = Held {
                    port,
                    side,
                    frame: frame.compact(),
                };
                batch.put_frame(frame);
                let mut wheel = lock(&self.held);
                if wheel.next_due().is_none_or(|n| at < n) {
                    self.wake.store(true, Ordering::Release);
                }
                wheel.insert(now, at, held);
            }
        }
    }

    fn link_event(&self, batch: &mut Batch, trace: u64, port: PortId, event: LinkEvent) {
        if self.is_tracing() && trace != 0 {
            self.trace_event(batch, trace, self.port_name(port), What::Link(event));
        }
    }

    /// Lets frames that links held go on, those due by `now`.
    fn release_held(&self, now: Instant, batch: &mut Batch) {
        let mut due = std::mem::take(&mut batch.due);
        {
            let mut wheel = lock(&self.held);
            if wheel.next_due().is_none_or(|t| t > now) {
                batch.due = due;
                return;
            }
            wheel.expire(now, &mut due);
        }
        for Held { port, side, frame } in due.drain(..) {
            self.with_link(port, |l| {
                l.held_bytes = l.held_bytes.saturating_sub(frame.len());
            });
            self.resume(now, port, side, frame, batch);
        }
        batch.due = due;
    }

    /// Sets what `port`'s link does to frames, and whether it is up; a
    /// perfect link that is up costs one branch per frame. Frames already
    /// on the link arrive as they were going to.
    pub fn set_link(
        &self,
        port: PortId,
        impairment: Impairment,
        up: bool,
    ) -> Result<(), FabricError> {
        let entry = self
            .ports
            .get(port.0 as usize)
            .ok_or(FabricError::NoSuchNode)?;
        lock(&entry.link)
            .get_or_insert_with(|| Box::new(Link::new(self.seed, &entry.name)))
            .set(impairment, up);
        entry.cabled.store(true, Ordering::Release);
        let longest = self
            .ports
            .iter()
            .filter(|p| p.cabled.load(Ordering::Acquire))
            .filter_map(|p| lock(&p.link).as_deref().map(Link::longest_hold))
            .max()
            .unwrap_or_default();
        lock(&self.tracer).set_linger(longest);
        Ok(())
    }

    /// What `port`'s link does to frames, and whether it is up.
    pub fn link(&self, port: PortId) -> Option<(Impairment, bool)> {
        self.ports.get(port.0 as usize)?;
        Some(
            self.with_link(port, |l| (l.impairment(), l.is_up()))
                .unwrap_or((Impairment::default(), true)),
        )
    }

    /// Seeds the links' draws (set before any link is made).
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    /// Whether a frame was held until before the time [`Fabric::poll_at`]
    /// gave last (then whoever drives the timers wakes earlier); clears it.
    pub fn take_wake(&self) -> bool {
        self.wake.swap(false, Ordering::AcqRel)
    }

    /// Whether links hold frames still to arrive.
    pub fn holding(&self) -> bool {
        lock(&self.held).len() > 0
    }

    /// Lets the switches and routers that are due act on time (ageing,
    /// queries, ARP retries and give-ups), and the frames links held go
    /// on; then runs what they send. Call when [`Fabric::poll_at`] is due.
    pub fn on_timer(&self, now: Instant, batch: &mut Batch) {
        batch.recycle();
        self.release_held(now, batch);
        let mut due = std::mem::take(&mut batch.due_nodes);
        self.timers.take_due(now, &mut due);
        for node in due.drain(..) {
            match node {
                NodeRef::Switch(sw) => self.switch_timer(now, sw as usize, batch),
                NodeRef::Router(r) => self.router_timer(now, r as usize, batch),
            }
        }
        batch.due_nodes = due;
        self.run(now, batch);
        self.end_run(now, batch);
    }

    fn switch_timer(&self, now: Instant, sw: usize, batch: &mut Batch) {
        let node = &self.switches[sw];
        let mut switch = lock(&node.switch);
        if switch.poll_at().is_some_and(|t| t <= now) {
            switch.on_timer(now);
        }
        // What the switch sends itself (its multicast querier's queries)
        // goes out as a switched frame would.
        let mut sent = Vec::new();
        while let Some(data) = switch.poll_transmit(&mut batch.egress) {
            let frame = batch.pool.copy_of(&data, VnetHdr::PLAIN);
            sent.push((batch.push(frame), batch.egress.clone()));
        }
        let at = switch.poll_at();
        self.timers
            .set(NodeRef::Switch(sw as u32), &node.deadline, at, now);
        drop(switch);
        for (slot, egress) in sent {
            batch.egress = egress;
            self.fan_out(now, sw, slot, batch);
        }
    }

    fn router_timer(&self, now: Instant, r: usize, batch: &mut Batch) {
        let node = &self.routers[r];
        {
            let mut router = lock(&node.router);
            if router.poll_at().is_some_and(|t| t <= now) {
                router.on_timer(now, &mut batch.pool, &mut batch.router_out);
            }
            let at = router.poll_at();
            self.timers
                .set(NodeRef::Router(r as u32), &node.deadline, at, now);
        }
        self.route_out(now, r, 0, batch);
    }

    /// The earliest time [`Fabric::on_timer`] is wanted: a node's timer, a
    /// held frame's arrival or a trace session's end.
    pub fn poll_at(&self) -> Option<Instant> {
        let trace = if self.is_tracing() {
            lock(&self.tracer).poll_at()
        } else {
            None
        };
        let held = lock(&self.held).next_due();
        [self.timers.next(), trace, held]
            .into_iter()
            .flatten()
            .min()
    }

    fn run(&self, now: Instant, batch: &mut Batch) {
        let mut hops = 0;
        while let Some((hop, slot)) = batch.work.pop_front() {
            hops += 1;
            if hops > MAX_HOPS {
                self.runaway.fetch_add(1, Ordering::Relaxed);
                batch.work.clear();
                return;
            }
            match hop {
                Hop::Switch(sw, pn) => self.switch_hop(now, sw, pn, slot, batch),
                Hop::Router(r, iface) => {
                    let Some(frame) = batch.frames[slot].take() else {
                        continue;
                    };
                    let traced = if self.is_tracing() { frame.trace } else { 0 };
                    let node = &self.routers[r];
                    let decisions = {
                        let mut router = lock(&node.router);
                        if traced != 0 {
                            router.set_tracing(true);
                        }
                        router.receive(now, iface, frame, &mut batch.pool, &mut batch.router_out);
                        let at = router.poll_at();
                        self.timers
                            .note(NodeRef::Router(r as u32), &node.deadline, at);
                        if traced != 0 {
                            let decisions = router.take_decisions();
                            router.set_tracing(false);
                            decisions
                        } else {
                            Vec::new()
                        }
                    };
                    for d in decisions {
                        self.trace_event(batch, traced, &node.name, What::Router(d));
                    }
                    self.route_out(now, r, traced, batch);
                }
            }
        }
    }

    /// Sends what router `r` just put in the batch's outbox on its way;
    /// `cause` is the traced frame it was handling (0 if none), which the
    /// frames it made afresh answer.
    fn route_out(&self, now: Instant, r: usize, cause: u64, batch: &mut Batch) {
        let node = &self.routers[r];
        let mut out = std::mem::take(&mut batch.router_out);
        for (iface, mut frame) in out.drain(..) {
            if cause != 0 && frame.trace == 0 {
                lock(&self.tracer).answer(&mut batch.records, cause, &node.name, &mut frame);
            }
            match node.ifaces.get(iface.0 as usize).copied().flatten() {
                Some(IfaceLink::Switch(link)) => self.send(now, link, Side::Out, frame, batch),
                Some(IfaceLink::Edge(port)) => {
                    frame.pull_front(HEADER_LEN);
                    frame.hdr = frame.hdr.shifted(-(HEADER_LEN as isize));
                    if let Some(entry) = self.ports.get(port.0 as usize) {
                        L3Counters::count(&entry.l3.tx_frames, &entry.l3.tx_bytes, frame.len());
                    }
                    self.tap(
                        batch,
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

    fn switch_hop(&self, now: Instant, sw: usize, pn: PortNo, slot: usize, batch: &mut Batch) {
        let Some(frame) = batch.frames[slot].as_ref() else {
            return;
        };
        let node = &self.switches[sw];
        let result = {
            let mut switch = lock(&node.switch);
            let result =
                switch.process(now, pn, frame.data(), frame.hdr.is_gso(), &mut batch.egress);
            let at = switch.poll_at();
            self.timers
                .note(NodeRef::Switch(sw as u32), &node.deadline, at);
            result
        };
        if self.is_tracing() && frame.trace != 0 {
            let id = frame.trace;
            self.trace_switch(sw, pn, id, result, batch);
        }
        if result.is_err() {
            return; // counted by the switch
        }
        self.fan_out(now, sw, slot, batch);
    }

    /// Sends the frame in `slot` out of the ports of switch `sw` that
    /// `batch.egress` lists.
    fn fan_out(&self, now: Instant, sw: usize, slot: usize, batch: &mut Batch) {
        let copies = batch.egress.len();
        for i in 0..copies {
            let e = batch.egress[i];
            let member = self.switches[sw].members[e.port.0 as usize];
            let (Member::Edge(named) | Member::Router(named)) = member;
            let Some(frame) = batch.frames[slot].take() else {
                continue;
            };
            self.tap(batch, named, now, Direction::Out, e.edit, frame.data());
            let impaired = self
                .with_link(named, |l| l.acts_on(Side::In, frame.data()))
                .unwrap_or(false);
            if let (Member::Edge(port), false) = (member, impaired) {
                // The common case: the frame goes out as it is, tag edits
                // applied on the way, shared by every copy.
                if self.is_tracing() && frame.trace != 0 {
                    let entry = &self.ports[port.0 as usize];
                    let what = egress_of(entry.offload, &frame);
                    self.trace_event(batch, frame.trace, &entry.name, what);
                }
                batch.frames[slot] = Some(frame);
                batch.deliveries.push(Delivery {
                    port,
                    edit: e.edit,
                    frame: slot,
                });
                continue;
            }
            // A router rewrites the frame, and a link may hold it: each
            // gets the frame itself when it is the only receiver, a copy
            // otherwise.
            let mut own = if copies == 1 {
                frame
            } else {
                let mut copy = batch.pool.copy_of(frame.data(), frame.hdr);
                copy.trace = frame.trace;
                batch.frames[slot] = Some(frame);
                copy
            };
            own.apply_vlan_edit(e.edit);
            self.send(now, named, Side::In, own, batch);
        }
    }

    /// Records what switch `sw` did with traced frame `id` from its port
    /// `pn`.
    fn trace_switch(
        &self,
        sw: usize,
        pn: PortNo,
        id: u64,
        result: Result<switch::Forwarding, switch::DropReason>,
        batch: &mut Batch,
    ) {
        let node = &self.switches[sw];
        let member_name = |p: PortNo| match node.members.get(p.0 as usize) {
            Some(Member::Edge(n) | Member::Router(n)) => self.port_name(*n).to_owned(),
            None => "?".to_owned(),
        };
        let what = match result {
            Ok(f) => What::Switched {
                learned: matches!(f.learned, Learn::New | Learn::Moved).then(|| member_name(pn)),
                to: batch.egress.iter().map(|e| member_name(e.port)).collect(),
                flooded: f.flooded,
            },
            Err(reason) => What::SwitchDrop {
                reason: reason.as_str(),
            },
        };
        self.trace_event(batch, id, &node.name, what);
    }

    /// Hands a frame to the capture taps of `port`, if it has open ones;
    /// one branch when it has none.
    fn tap(
        &self,
        batch: &mut Batch,
        port: PortId,
        now: Instant,
        dir: Direction,
        edit: VlanEdit,
        frame: &[u8],
    ) {
        let Some(entry) = self.ports.get(port.0 as usize) else {
            return;
        };
        if !entry.capturing.load(Ordering::Relaxed) {
            return;
        }
        let mut captures = lock(&entry.captures);
        captures.retain(|sink| sink.is_open());
        if captures.is_empty() {
            entry.capturing.store(false, Ordering::Relaxed);
        }
        let (head, tail) = edit.apply(frame, &mut batch.capture_scratch);
        for sink in captures.iter_mut() {
            sink.record(now, dir, head, tail);
        }
    }

    /// A snapshot of every switch, router, port and table. Each node is
    /// read under its own lock, so forwarding elsewhere goes on.
    pub fn status(&self, now: Instant) -> FabricStatus {
        let switches = self
            .switches
            .iter()
            .map(|node| {
                let switch = lock(&node.switch);
                let ports = node
                    .members
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let c = switch
                            .port_counters(PortNo(i as u32))
                            .cloned()
                            .unwrap_or_default();
                        let (Member::Edge(id) | Member::Router(id)) = *m;
                        let e = &self.ports[id.0 as usize];
                        let offload = matches!(m, Member::Edge(_)) && e.offload;
                        let mut p = PortStatus::new(&e.name, offload, e.is_capturing(), &c);
                        p.link = e.link_status();
                        p
                    })
                    .collect::<Vec<_>>();
                let name_of = |p: PortNo| {
                    ports
                        .get(p.0 as usize)
                        .map_or("?".to_owned(), |p| p.name.clone())
                };
                let mac_table = switch
                    .mac_table(now)
                    .into_iter()
                    .map(|e| MacRow {
                        vlan: e.vlan,
                        mac: e.mac,
                        port: name_of(e.port),
                        age_secs: e.age_secs,
                    })
                    .collect();
                let groups = switch
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
                    counters: switch.counters().clone(),
                    snooping: switch.snoop_counters().clone(),
                    ports,
                    mac_table,
                    groups,
                }
            })
            .collect();
        let routers = self
            .routers
            .iter()
            .map(|r| lock(&r.router).status(now))
            .collect();
        let l3_ports = self
            .ports
            .iter()
            .filter(|p| matches!(p.attach, Attach::Router(..)))
            .map(|p| {
                let mut s = PortStatus::l3(&p.name, p.offload, p.is_capturing(), &p.l3);
                s.link = p.link_status();
                s
            })
            .collect();
        FabricStatus {
            switches,
            routers,
            l3_ports,
            runaway: self.runaway.load(Ordering::Relaxed),
            timer_panics: 0,
        }
    }
}

impl PortEntry {
    fn is_capturing(&self) -> bool {
        self.capturing.load(Ordering::Relaxed) && !lock(&self.captures).is_empty()
    }

    fn link_status(&self) -> Option<crate::link::LinkStatus> {
        if !self.cabled.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.link).as_deref().map(Link::status)
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
