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
use crate::status::{FabricStatus, MacRow, PortStatus, SwitchStatus};
use crate::trace::{egress_of, Recorded, TraceRecord, TraceSink, Tracer, What};
use router::{IfaceId, Outbox, Router};
use std::collections::VecDeque;
use switch::{Egress, Learn, PortConfig, PortNo, Switch, SwitchConfig};
use wire::ether::{VlanEdit, ETHERTYPE_IPV4, ETHERTYPE_IPV6, HEADER_LEN};
use wire::{Frame, FramePool, Instant};

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
    /// A router interface; the port entry names it and holds its capture.
    Router(usize, IfaceId, PortId),
}

/// What a router interface is plugged into.
#[derive(Debug, Clone, Copy)]
enum IfaceLink {
    /// A switch port, and the port entry that names it.
    Switch(usize, PortNo, PortId),
    Edge(PortId),
}

/// What an edge port is plugged into.
#[derive(Debug, Clone, Copy)]
enum Attach {
    Switch(usize, PortNo),
    /// An L3 (TUN) port on a router interface: frames are IP packets.
    Router(usize, IfaceId),
    /// The switch side of a router's interface: no device, but a name in
    /// status and a place to capture.
    RouterLink,
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

    /// Plugs a router interface into a switch port.
    pub fn link_router(
        &mut self,
        r: RouterId,
        iface: IfaceId,
        switch: SwitchId,
        config: PortConfig,
    ) -> Result<(), FabricError> {
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
        node.members.push(Member::Router(r.0 as usize, iface, id));
        *slot = Some(IfaceLink::Switch(switch.0 as usize, port_no, id));
        let router = &self.routers[r.0 as usize].router;
        let name = format!(
            "{}.{}",
            router.name(),
            router.iface_name(iface).unwrap_or("?")
        );
        self.new_port(&name, Attach::RouterLink, false)?;
        Ok(())
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
        tap(
            &mut self.ports,
            &mut self.capture_scratch,
            port,
            now,
            Direction::In,
            VlanEdit::Keep,
            frame.data(),
        );
        if self.tracing {
            let name = self.port_name(port).to_owned();
            self.tracer.ingress(port, &name, &mut frame);
        } else {
            frame.trace = 0;
        }
        let Some(entry) = self.ports.get_mut(port.0 as usize) else {
            batch.put_frame(frame);
            return;
        };
        let hop = match entry.attach {
            Attach::Switch(sw, pn) => Hop::Switch(sw, pn),
            Attach::RouterLink => {
                batch.put_frame(frame);
                return;
            }
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
        self.run(now, batch);
        self.end_run(now);
    }

    /// Lets routers act on time (ARP retries and give-ups), then runs what
    /// they send. Call when [`Fabric::poll_at`] is due.
    pub fn on_timer(&mut self, now: Instant, batch: &mut Batch) {
        batch.recycle();
        for s in &mut self.switches {
            if s.switch.poll_at().is_some_and(|t| t <= now) {
                s.switch.on_timer(now);
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
        s.chain(r).chain(self.tracer.poll_at()).min()
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
                Some(IfaceLink::Switch(sw, pn, link)) => {
                    tap(
                        &mut self.ports,
                        &mut self.capture_scratch,
                        link,
                        now,
                        Direction::In,
                        VlanEdit::Keep,
                        frame.data(),
                    );
                    let slot = batch.push(frame);
                    batch.work.push_back((Hop::Switch(sw, pn), slot));
                }
                Some(IfaceLink::Edge(port)) => {
                    frame.pull_front(HEADER_LEN);
                    frame.hdr = frame.hdr.shifted(-(HEADER_LEN as isize));
                    if let Some(entry) = self.ports.get_mut(port.0 as usize) {
                        entry.l3.tx_frames += 1;
                        entry.l3.tx_bytes += frame.len() as u64;
                    }
                    if self.tracing && frame.trace != 0 {
                        let name = self.port_name(port).to_owned();
                        let what = egress_of(self.port_offload(port), &frame);
                        self.tracer.event(frame.trace, &name, what);
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
                    let slot = batch.push(frame);
                    batch.deliveries.push(Delivery {
                        port,
                        edit: VlanEdit::Keep,
                        frame: slot,
                    });
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
        let node = &mut self.switches[sw];
        if result.is_err() {
            return; // counted by the switch
        }
        let copies = batch.egress.len();
        for i in 0..copies {
            let e = batch.egress[i];
            let member = node.members[e.port.0 as usize];
            let (Member::Edge(named) | Member::Router(_, _, named)) = member;
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
            match member {
                Member::Edge(port) => {
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
                }
                Member::Router(r, iface, _) => {
                    // The router rewrites the frame: it gets the frame itself
                    // when it is the only receiver, a copy otherwise.
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
                    let s = batch.push(own);
                    batch.work.push_back((Hop::Router(r, iface), s));
                }
            }
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
            Some(Member::Edge(n) | Member::Router(_, _, n)) => self.port_name(*n).to_owned(),
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
                        match *m {
                            Member::Edge(id) => {
                                let e = &self.ports[id.0 as usize];
                                PortStatus::new(&e.name, e.offload, !e.captures.is_empty(), &c)
                            }
                            Member::Router(_, _, id) => {
                                let e = &self.ports[id.0 as usize];
                                PortStatus::new(&e.name, false, !e.captures.is_empty(), &c)
                            }
                        }
                    })
                    .collect::<Vec<_>>();
                let mac_table = node
                    .switch
                    .mac_table(now)
                    .into_iter()
                    .map(|e| MacRow {
                        vlan: e.vlan,
                        mac: e.mac,
                        port: ports
                            .get(e.port.0 as usize)
                            .map_or("?".into(), |p| p.name.clone()),
                        age_secs: e.age_secs,
                    })
                    .collect();
                SwitchStatus {
                    name: node.name.clone(),
                    counters: node.switch.counters().clone(),
                    ports,
                    mac_table,
                }
            })
            .collect();
        let routers = self.routers.iter().map(|r| r.router.status(now)).collect();
        let l3_ports = self
            .ports
            .iter()
            .filter(|p| matches!(p.attach, Attach::Router(..)))
            .map(|p| PortStatus::l3(&p.name, p.offload, !p.captures.is_empty(), p.l3))
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
