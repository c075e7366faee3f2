//! The sans-IO heart of the fabric: nodes (switches and routers, each a
//! [`Node`]), the port entries that join them to each other and to the
//! outside, and the run of one frame through them.
//!
//! A frame that enters by an edge port runs to completion: into the node
//! its port is plugged into, out of the ports that node sends it by, into
//! the next node, and so on, until every copy has reached an edge port
//! (a [`Delivery`]) or been dropped and counted. Each port entry is a
//! cable with a node's port at its inner end and a device or another
//! node's port at its outer end, where captures are taken and a link may
//! impair. Frames move by ownership inside a [`Batch`]; a copy is made
//! only where one frame must go both to a node that rewrites it (a router)
//! and elsewhere (a flood).
//!
//! Never reads a clock, never touches a device: the driver (the runtime or
//! the simulator) passes `now` and the frame in and writes the deliveries.

use crate::capture::{CaptureSink, Direction};
use crate::filter::Filter;
use crate::link::{Fate, Link, Side};
use crate::node::{Node, NodeStatus, Out, RouterNode, SwitchNode};
use crate::status::{FabricStatus, PortStatus};
use crate::timers::{Deadline, NodeRef, Timers};
use crate::trace::{egress_of, LinkEvent, Recorded, Records, TraceRecord, TraceSink, Tracer, What};
use crate::wheel::Wheel;
use router::{IfaceId, Router};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use switch::{Egress, PortConfig, PortNo, Switch, SwitchConfig};
use wire::ether::{VlanEdit, ETHERTYPE_IPV4, ETHERTYPE_IPV6, HEADER_LEN};
use wire::offload::Segmenter;
use wire::{Frame, FramePool, Impairment, Instant};

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
    /// What the node at hand sent: frames it made, and the ports the frame
    /// it received leaves by.
    own: Vec<(u32, Frame)>,
    egress: Vec<Egress>,
    /// What the node at hand decided about a traced frame.
    events: Vec<What>,
    work: VecDeque<(Hop, usize)>,
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
            own: Vec::new(),
            egress: Vec::new(),
            events: Vec::new(),
            work: VecDeque::new(),
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
        self.own.clear();
        self.egress.clear();
        self.events.clear();
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

/// A port of a node: where a frame is handed in.
#[derive(Debug, Clone, Copy)]
struct Hop {
    node: usize,
    port: u32,
}

/// Where a node's port leads: along the cable of port entry `entry`,
/// going `side`.
#[derive(Debug, Clone, Copy)]
struct Wire {
    entry: PortId,
    side: Side,
}

/// What a port entry joins: a node's port at its inner end, and at its
/// outer end a device (or in-process host) or another node's port.
#[derive(Debug, Clone, Copy)]
struct Attach {
    inner: Hop,
    outer: Outer,
}

#[derive(Debug, Clone, Copy)]
enum Outer {
    /// A device or an endpoint; `l3` for a TUN on a router interface,
    /// which carries IP packets without Ethernet.
    Device { l3: bool },
    /// Another node's port: the entry stands for the cable between two
    /// nodes (a router interface on a switch port), with a name in status,
    /// a place to capture and a link to impair, but no device.
    Node(Hop),
}

/// A node, its lock and what its ports lead to.
struct NodeSlot {
    name: String,
    /// Where each of the node's ports leads, by port number.
    wires: Vec<Option<Wire>>,
    node: Mutex<Box<dyn Node>>,
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

/// The graph of nodes and port entries.
///
/// Built with `&mut self`, run with `&self` from any number of threads:
/// each node and link has a lock of its own and a run holds one
/// at a time, so frames on different segments forward in parallel.
/// Captures, traces and impairments are each behind a flag, the one
/// branch they cost a frame when they are off.
pub struct Fabric {
    nodes: Vec<NodeSlot>,
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
            .field("nodes", &self.nodes.len())
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
            nodes: Vec::new(),
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
        let node = SwitchNode {
            switch: Switch::new(config),
            port_names: Vec::new(),
            name: name.to_owned(),
        };
        SwitchId(self.add_node(name, Box::new(node), 0) as u32)
    }

    /// Adds a router; its interfaces are then plugged in with
    /// [`Fabric::link_router`] or [`Fabric::add_router_port`].
    pub fn add_router(&mut self, router: Router, interfaces: usize) -> RouterId {
        let name = router.name().to_owned();
        let node = RouterNode {
            router,
            outbox: Vec::new(),
        };
        RouterId(self.add_node(&name, Box::new(node), interfaces) as u32)
    }

    fn add_node(&mut self, name: &str, node: Box<dyn Node>, ports: usize) -> usize {
        self.nodes.push(NodeSlot {
            name: name.to_owned(),
            wires: vec![None; ports],
            node: Mutex::new(node),
            deadline: Deadline::default(),
        });
        let n = self.nodes.len() - 1;
        self.note_node(n);
        n
    }

    /// Lets the timers know what node `n` wants after it was changed
    /// while the fabric was built.
    fn note_node(&mut self, n: usize) {
        let slot = &self.nodes[n];
        let at = lock(&slot.node).poll_at();
        self.timers.note(NodeRef(n as u32), &slot.deadline, at);
    }

    /// Node `n` as a `T`, for the builder.
    fn node_mut<T: 'static>(&mut self, n: usize) -> Result<&mut T, FabricError> {
        let slot = self.nodes.get_mut(n).ok_or(FabricError::NoSuchNode)?;
        slot.node
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .as_any_mut()
            .downcast_mut::<T>()
            .ok_or(FabricError::NoSuchNode)
    }

    /// Adds a port named `name` to switch `sw`, leading to the port entry
    /// `entry` (made next).
    fn switch_port(
        &mut self,
        sw: usize,
        config: PortConfig,
        name: &str,
        entry: PortId,
    ) -> Result<PortNo, FabricError> {
        let node = self.node_mut::<SwitchNode>(sw)?;
        let pn = node.switch.add_port(config);
        node.port_names.push(name.to_owned());
        let wires = &mut self.nodes[sw].wires;
        if wires.len() <= pn.0 as usize {
            wires.resize(pn.0 as usize + 1, None);
        }
        wires[pn.0 as usize] = Some(Wire {
            entry,
            side: Side::In,
        });
        self.note_node(sw);
        Ok(pn)
    }

    fn new_port(
        &mut self,
        name: &str,
        attach: Attach,
        offload: bool,
    ) -> Result<PortId, FabricError> {
        self.check_name(name)?;
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

    fn check_name(&self, name: &str) -> Result<(), FabricError> {
        match self.port_by_name(name) {
            Some(_) => Err(FabricError::DuplicatePort(name.to_owned())),
            None => Ok(()),
        }
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
        self.check_name(name)?;
        let sw = switch.0 as usize;
        let id = PortId(self.ports.len() as u32);
        let pn = self.switch_port(sw, config, name, id)?;
        let attach = Attach {
            inner: Hop {
                node: sw,
                port: pn.0,
            },
            outer: Outer::Device { l3: false },
        };
        self.new_port(name, attach, offload)
    }

    /// Interface `iface` of router `r`: its name, once it is known to be
    /// there.
    fn router_iface(&mut self, r: usize, iface: IfaceId) -> Result<String, FabricError> {
        let node = self.node_mut::<RouterNode>(r)?;
        let name = node.router.iface_name(iface).unwrap_or("?").to_owned();
        match self.nodes[r].wires.get(iface.0 as usize) {
            Some(_) => Ok(name),
            None => Err(FabricError::NoSuchNode),
        }
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
        let (r, sw) = (r.0 as usize, switch.0 as usize);
        let iface_name = self.router_iface(r, iface)?;
        let name = format!("{}.{}", self.nodes[r].name, iface_name);
        self.check_name(&name)?;
        let id = PortId(self.ports.len() as u32);
        let pn = self.switch_port(sw, config, &name, id)?;
        self.nodes[r].wires[iface.0 as usize] = Some(Wire {
            entry: id,
            side: Side::Out,
        });
        let attach = Attach {
            inner: Hop {
                node: sw,
                port: pn.0,
            },
            outer: Outer::Node(Hop {
                node: r,
                port: iface.0,
            }),
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
        let r = r.0 as usize;
        self.router_iface(r, iface)?;
        let attach = Attach {
            inner: Hop {
                node: r,
                port: iface.0,
            },
            outer: Outer::Device { l3: true },
        };
        let id = self.new_port(name, attach, offload)?;
        self.nodes[r].wires[iface.0 as usize] = Some(Wire {
            entry: id,
            side: Side::In,
        });
        Ok(id)
    }

    /// The node (switch or router) a port is plugged into, as an index:
    /// the runtime reads the ports of one node on one thread.
    pub fn port_node(&self, port: PortId) -> Option<usize> {
        self.ports.get(port.0 as usize).map(|p| p.attach.inner.node)
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
            .is_some_and(|p| matches!(p.attach.outer, Outer::Device { l3: true }))
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
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeSlot {
                    name: n.name.clone(),
                    wires: n.wires.clone(),
                    node: Mutex::new(lock(&n.node).boxed_clone()),
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
        match self.ports.get(port.0 as usize).map(|p| p.attach.outer) {
            // The cable between two nodes has no outside.
            None | Some(Outer::Node(_)) => batch.put_frame(frame),
            Some(Outer::Device { .. }) => {
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
        if let Outer::Device { l3: true } = entry.attach.outer {
            L3Counters::count(&entry.l3.rx_frames, &entry.l3.rx_bytes, frame.len());
            if !wrap_in_ethernet(&mut frame) {
                batch.put_frame(frame);
                return;
            }
        }
        let slot = batch.push(frame);
        batch.work.push_back((entry.attach.inner, slot));
    }

    /// A frame reaches the far end of `port`: a delivery to its device or
    /// endpoint, or the node on the cable's other end.
    fn leave(&self, port: PortId, frame: Frame, batch: &mut Batch) {
        let Some(entry) = self.ports.get(port.0 as usize) else {
            batch.put_frame(frame);
            return;
        };
        if let Outer::Node(hop) = entry.attach.outer {
            let slot = batch.push(frame);
            batch.work.push_back((hop, slot));
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
        for NodeRef(n) in due.drain(..) {
            let slot = &self.nodes[n as usize];
            {
                let mut node = lock(&slot.node);
                let mut out = Out {
                    pool: &mut batch.pool,
                    shared: &mut batch.egress,
                    own: &mut batch.own,
                    events: None,
                };
                node.on_timer(now, &mut out);
                let at = node.poll_at();
                self.timers.set(NodeRef(n), &slot.deadline, at, now);
            }
            self.send_own(now, n as usize, 0, batch);
        }
        batch.due_nodes = due;
        self.run(now, batch);
        self.end_run(now, batch);
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

    /// Hands each frame of the work queue to its node, under that node's
    /// lock alone, and sends on what the node sent.
    fn run(&self, now: Instant, batch: &mut Batch) {
        let mut hops = 0;
        while let Some((hop, slot)) = batch.work.pop_front() {
            hops += 1;
            if hops > MAX_HOPS {
                self.runaway.fetch_add(1, Ordering::Relaxed);
                batch.work.clear();
                return;
            }
            let Some(node_slot) = self.nodes.get(hop.node) else {
                continue;
            };
            let traced = match &batch.frames[slot] {
                Some(f) if self.is_tracing() => f.trace,
                _ => 0,
            };
            batch.egress.clear();
            batch.events.clear();
            {
                let mut node = lock(&node_slot.node);
                let mut out = Out {
                    pool: &mut batch.pool,
                    shared: &mut batch.egress,
                    own: &mut batch.own,
                    events: (traced != 0).then_some(&mut batch.events),
                };
                node.receive(now, hop.port, &mut batch.frames[slot], &mut out);
                let at = node.poll_at();
                self.timers
                    .note(NodeRef(hop.node as u32), &node_slot.deadline, at);
            }
            if traced != 0 {
                let events = std::mem::take(&mut batch.events);
                for what in events {
                    self.trace_event(batch, traced, &node_slot.name, what);
                }
            }
            self.fan_out(now, hop.node, slot, batch);
            self.send_own(now, hop.node, traced, batch);
        }
    }

    /// Sends on the frames node `n` made; `cause` is the traced frame it
    /// was handling (0 if none), which the frames it made afresh answer.
    fn send_own(&self, now: Instant, n: usize, cause: u64, batch: &mut Batch) {
        let node = &self.nodes[n];
        let mut own = std::mem::take(&mut batch.own);
        for (port, mut frame) in own.drain(..) {
            if cause != 0 && frame.trace == 0 {
                lock(&self.tracer).answer(&mut batch.records, cause, &node.name, &mut frame);
            }
            match node.wires.get(port as usize).copied().flatten() {
                Some(wire) => self.emit(now, wire, frame, batch),
                None => batch.pool.put(frame),
            }
        }
        batch.own = own;
    }

    /// A frame a node sends out of a port goes along the port's wire:
    /// seen by the captures of a port it leaves the fabric by (an L3 port
    /// loses its placeholder Ethernet header first), then on its link.
    fn emit(&self, now: Instant, wire: Wire, mut frame: Frame, batch: &mut Batch) {
        if wire.side == Side::In {
            let entry = &self.ports[wire.entry.0 as usize];
            if let Outer::Device { l3: true } = entry.attach.outer {
                frame.pull_front(HEADER_LEN);
                frame.hdr = frame.hdr.shifted(-(HEADER_LEN as isize));
                L3Counters::count(&entry.l3.tx_frames, &entry.l3.tx_bytes, frame.len());
            }
            self.tap(
                batch,
                wire.entry,
                now,
                Direction::Out,
                VlanEdit::Keep,
                frame.data(),
            );
        }
        self.send(now, wire.entry, wire.side, frame, batch);
    }

    /// Sends the frame in `slot` out of the ports of node `n` that
    /// `batch.egress` lists, as it is.
    fn fan_out(&self, now: Instant, n: usize, slot: usize, batch: &mut Batch) {
        let copies = batch.egress.len();
        for i in 0..copies {
            let e = batch.egress[i];
            let Some(wire) = self.nodes[n]
                .wires
                .get(e.port.0 as usize)
                .copied()
                .flatten()
            else {
                continue;
            };
            let Some(frame) = batch.frames[slot].take() else {
                continue;
            };
            let entry = &self.ports[wire.entry.0 as usize];
            let plain =
                wire.side == Side::In && matches!(entry.attach.outer, Outer::Device { l3: false });
            if plain {
                self.tap(batch, wire.entry, now, Direction::Out, e.edit, frame.data());
                let impaired = self
                    .with_link(wire.entry, |l| l.acts_on(Side::In, frame.data()))
                    .unwrap_or(false);
                if !impaired {
                    // The common case: the frame goes out as it is, tag
                    // edits applied on the way, shared by every copy.
                    if self.is_tracing() && frame.trace != 0 {
                        let what = egress_of(entry.offload, &frame);
                        self.trace_event(batch, frame.trace, &entry.name, what);
                    }
                    batch.frames[slot] = Some(frame);
                    batch.deliveries.push(Delivery {
                        port: wire.entry,
                        edit: e.edit,
                        frame: slot,
                    });
                    continue;
                }
            }
            // A node behind it rewrites the frame, and a link may hold it:
            // each gets the frame itself when it is the only receiver, a
            // copy otherwise.
            let mut own = if copies == 1 {
                frame
            } else {
                let mut copy = batch.pool.copy_of(frame.data(), frame.hdr);
                copy.trace = frame.trace;
                batch.frames[slot] = Some(frame);
                copy
            };
            own.apply_vlan_edit(e.edit);
            if plain {
                self.send(now, wire.entry, Side::In, own, batch);
            } else {
                self.emit(now, wire, own, batch);
            }
        }
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
        let mut switches = Vec::new();
        let mut routers = Vec::new();
        for slot in &self.nodes {
            let status = lock(&slot.node).status(now);
            match status {
                NodeStatus::Switch(mut s) => {
                    for (p, wire) in s.ports.iter_mut().zip(&slot.wires) {
                        if let Some(e) = wire.map(|w| &self.ports[w.entry.0 as usize]) {
                            p.offload = e.offload;
                            p.capturing = e.is_capturing();
                            p.link = e.link_status();
                        }
                    }
                    switches.push(s);
                }
                NodeStatus::Router(r) => routers.push(*r),
            }
        }
        let l3_ports = self
            .ports
            .iter()
            .filter(|p| matches!(p.attach.outer, Outer::Device { l3: true }))
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
