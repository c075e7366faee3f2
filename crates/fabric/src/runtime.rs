//! The real driver: TAP devices and the wall clock around a [`Fabric`].
//!
//! One tokio task per TAP port reads frames, on the fabric thread of the
//! switch or router it is plugged into (crate::shards), at most
//! [`READ_BUDGET`] per wake-up before it yields, so a flooding port cannot
//! hold its thread; each
//! frame runs through the fabric, holding one node's lock at a time (no
//! per-frame allocation, no queue between ports). What a wake-up writes
//! to devices is copied into its thread's [`WriteBatch`] and leaves in one
//! io_uring submission when the port is drained (a frame too large for a
//! slot is written at once, after what is queued); where io_uring is
//! refused, frames are written one by one. A timer task drives the switches'
//! ageing, the routers' timers and the frames impaired links hold.
//!
//! A panic while one frame is processed costs that frame, counted as
//! `internal-error` on its port, never the port: the node locks recover
//! and the reader goes on. Every task is supervised: one that
//! ends anyway is reported through [`Runtime::failures`], and the lab
//! stops cleanly rather than run half dead.

use crate::alarm::Alarm;
use crate::capture::{CaptureSink, Direction};
use crate::core::{Batch, Delivery, Fabric, FabricError, PortId};
use crate::egress::EgressPath;
use crate::filter::Filter;
use crate::port::{PortCaps, PortIo};
use crate::shards::{self, Shards};
use crate::status::FabricStatus;
use crate::trace::{TraceRecord, TraceSink, What};
use std::cell::RefCell;
use std::io::{ErrorKind, IoSlice};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;
use tuntap::WriteBatch;
use wire::{Frame, Instant, VnetHdr, VNET_HDR_LEN};

/// The I/O serving a fabric port: a TAP or TUN device, a tunnel.
pub struct DevicePort {
    pub port: PortId,
    pub io: Box<dyn PortIo>,
}

impl std::fmt::Debug for DevicePort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicePort")
            .field("port", &self.port)
            .field("caps", &self.io.caps())
            .finish()
    }
}

/// An in-process endpoint on a fabric port (a service host): it takes
/// delivered frames, cut to wire size with complete checksums, and sends
/// through an [`Injector`].
pub trait Endpoint: Send + Sync {
    /// A frame for the endpoint, in pieces to be joined; `trace` is its id
    /// in a trace (0 if none follows it): the endpoint reports what it did
    /// with it through [`Injector::traced`].
    fn deliver(&self, pieces: &[&[u8]], trace: u64);
}

/// An endpoint serving a fabric port.
pub struct EndpointPort {
    pub port: PortId,
    pub endpoint: Arc<dyn Endpoint>,
}

impl std::fmt::Debug for EndpointPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointPort")
            .field("port", &self.port)
            .finish()
    }
}

/// A frame seen by a capture, with its wall-clock time.
#[derive(Debug, Clone)]
pub struct CapturedFrame {
    /// The tag the capture of its port was started with.
    pub port: u32,
    pub at: SystemTime,
    pub direction: Direction,
    pub data: Vec<u8>,
}

/// Device-level failures on one port.
#[derive(Debug, Default)]
struct IoCounters {
    read_failed: AtomicU64,
    write_failed: AtomicU64,
    /// Frames whose offload request could not be carried out.
    offload_failed: AtomicU64,
    /// Frames lost to a panic while they were processed.
    internal_error: AtomicU64,
}

impl IoCounters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

struct Shared {
    fabric: Fabric,
    /// The device behind each port, indexed by `PortId`.
    devices: Vec<Option<Box<dyn PortIo>>>,
    /// The in-process endpoint behind each port, indexed by `PortId`.
    endpoints: Vec<Option<Arc<dyn Endpoint>>>,
    /// Whoever holds a port's token is its only reader, so its frames are
    /// forwarded in the order they arrived.
    readers: Vec<Mutex<()>>,
    io: Vec<IoCounters>,
    epoch: std::time::Instant,
    epoch_wall: SystemTime,
    /// Panics in the timer task, which belong to no port.
    timer_panics: AtomicU64,
    /// Wakes the timer task when a link holds a frame until before the
    /// time it sleeps to.
    timer_wake: Notify,
}

impl Drop for Shared {
    /// Closes the devices side by side. Closing a TAP unregisters its
    /// interface, and the kernel then waits out an RCU barrier (about
    /// 20 ms); closes that overlap share one, so a thousand hosts' devices
    /// go in a fraction of a second instead of twenty.
    fn drop(&mut self) {
        let devices: Vec<Box<dyn PortIo>> = self.devices.drain(..).flatten().collect();
        if devices.len() < 2 {
            return;
        }
        let per_thread = devices.len().div_ceil(CLOSERS);
        let mut devices = devices.into_iter();
        std::thread::scope(|s| loop {
            let chunk: Vec<_> = devices.by_ref().take(per_thread).collect();
            if chunk.is_empty() {
                break;
            }
            s.spawn(move || drop(chunk));
        });
    }
}

/// Threads that close devices at shutdown.
const CLOSERS: usize = 64;

impl Shared {
    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn fabric(&self) -> &Fabric {
        &self.fabric
    }

    /// Runs one frame that arrived on `port` through the fabric and writes
    /// what it became. A panic on the way loses this frame only, and is
    /// counted on the port.
    /// Frames for devices go into `writes` when given (to be flushed by
    /// the caller), else are written at once.
    fn forward(
        &self,
        port: PortId,
        frame: Frame,
        batch: &mut Batch,
        egress: &mut EgressPath,
        writes: Option<&mut WriteBatch>,
    ) {
        let run = AssertUnwindSafe(|| {
            let now = self.now();
            self.fabric.ingress(now, port, frame, batch);
            if self.fabric.take_wake() {
                self.timer_wake.notify_one();
            }
            write_deliveries(self, batch, egress, writes);
        });
        if std::panic::catch_unwind(run).is_err() {
            batch.reset();
            if let Some(io) = self.io.get(port.0 as usize) {
                IoCounters::bump(&io.internal_error);
            }
        }
    }
}

/// A task of the lab that ended while the lab was running.
#[derive(Debug, Clone)]
pub struct TaskFailure {
    pub task: String,
    pub panicked: bool,
}

impl std::fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.panicked { "panicked" } else { "ended" };
        write!(f, "task `{}` {how}", self.task)
    }
}

/// Spawns tasks and reports any that ends before it is aborted.
#[derive(Debug, Clone)]
pub struct Supervisor {
    tx: mpsc::UnboundedSender<TaskFailure>,
}

impl Supervisor {
    /// Spawns `task`; if it ever ends on its own (or panics), a
    /// [`TaskFailure`] is reported. Aborting it through the returned handle
    /// reports nothing.
    pub fn spawn<F>(&self, name: &str, task: F) -> AbortHandle
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.spawn_on(&Handle::current(), name, task)
    }

    /// [`Supervisor::spawn`] on another runtime (a fabric thread's); it is
    /// watched from the current one.
    fn spawn_on<F>(&self, runtime: &Handle, name: &str, task: F) -> AbortHandle
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let handle = runtime.spawn(task);
        let abort = handle.abort_handle();
        let (tx, task) = (self.tx.clone(), name.to_owned());
        tokio::spawn(async move {
            let panicked = match handle.await {
                Ok(()) => false,
                Err(e) if e.is_cancelled() => return,
                Err(_) => true,
            };
            let _ = tx.send(TaskFailure { task, panicked });
        });
        abort
    }
}

/// A running fabric. Dropping it stops every task and closes the devices.
pub struct Runtime {
    shared: Arc<Shared>,
    tasks: Vec<AbortHandle>,
    supervisor: Supervisor,
    failures: Mutex<Option<mpsc::UnboundedReceiver<TaskFailure>>>,
    /// The threads that read the device ports; dropped last, so that the
    /// devices are closed by the time the runtime is gone.
    _shards: Option<Shards>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl Runtime {
    /// Starts serving. Must be called inside a tokio runtime.
    pub fn start(fabric: Fabric, ports: Vec<DevicePort>, hosts: Vec<EndpointPort>) -> Runtime {
        let n = fabric.port_names().count();
        let mut devices: Vec<Option<Box<dyn PortIo>>> = (0..n).map(|_| None).collect();
        let mut endpoints: Vec<Option<Arc<dyn Endpoint>>> = (0..n).map(|_| None).collect();
        let mut served = Vec::new();
        for p in ports {
            if let Some(slot) = devices.get_mut(p.port.0 as usize) {
                *slot = Some(p.io);
                served.push(p.port);
            }
        }
        for h in hosts {
            if let Some(slot) = endpoints.get_mut(h.port.0 as usize) {
                *slot = Some(h.endpoint);
            }
        }
        let shared = Arc::new(Shared {
            fabric,
            devices,
            endpoints,
            readers: (0..n).map(|_| Mutex::new(())).collect(),
            io: (0..n).map(|_| IoCounters::default()).collect(),
            epoch: std::time::Instant::now(),
            epoch_wall: SystemTime::now(),
            timer_panics: AtomicU64::new(0),
            timer_wake: Notify::new(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let supervisor = Supervisor { tx };
        let mut tasks: Vec<AbortHandle> = Vec::new();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = match Shards::start(cores.min(served.len())) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("no fabric threads ({e}): ports are read on the lab's runtime");
                None
            }
        };
        let current = Handle::current();
        let f = shared.fabric();
        let nodes: Vec<usize> = served
            .iter()
            .map(|p| f.port_node(*p).unwrap_or_default())
            .collect();
        for (port, key) in served.into_iter().zip(shards::keys(&nodes)) {
            let name = format!("reader of port {}", f.port_name(port));
            let runtime = shards
                .as_ref()
                .and_then(|s| s.thread(key))
                .unwrap_or(&current);
            tasks.push(supervisor.spawn_on(runtime, &name, serve_port(shared.clone(), port)));
        }
        tasks.push(supervisor.spawn("fabric timers", drive_timers(shared.clone())));
        Runtime {
            shared,
            tasks,
            supervisor,
            failures: Mutex::new(Some(rx)),
            _shards: shards,
        }
    }

    /// Spawns a task of the lab (a service host's driver, say) under the
    /// same supervision as the fabric's own.
    pub fn supervisor(&self) -> Supervisor {
        self.supervisor.clone()
    }

    /// Where tasks that ended while the lab runs are reported (once: the
    /// first caller gets the receiver).
    pub fn failures(&self) -> Option<mpsc::UnboundedReceiver<TaskFailure>> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The way in to the fabric for the endpoint on `port`; its owner
    /// (the endpoint's driver task) sends through it.
    pub fn injector(&self, port: PortId) -> Injector {
        Injector {
            shared: self.shared.clone(),
            port,
            batch: Batch::new(),
            egress: EgressPath::new(),
        }
    }

    /// A snapshot of the fabric with device-level errors filled in.
    pub fn status(&self) -> FabricStatus {
        let f = self.shared.fabric();
        let mut status = f.status(self.shared.now());
        for ((name, io), device) in f
            .port_names()
            .zip(&self.shared.io)
            .zip(&self.shared.devices)
        {
            if let Some(p) = status.port_mut(name) {
                for (key, n) in device.iter().flat_map(|d| d.drops()) {
                    p.io_errors.insert(key, n);
                }
                for (key, c) in [
                    ("read-failed", &io.read_failed),
                    ("write-failed", &io.write_failed),
                    ("offload-failed", &io.offload_failed),
                    ("internal-error", &io.internal_error),
                ] {
                    let v = c.load(Ordering::Relaxed);
                    if v > 0 {
                        p.io_errors.insert(key, v);
                    }
                }
            }
        }
        status.timer_panics = self.shared.timer_panics.load(Ordering::Relaxed);
        status
    }

    /// Sets what the named port's link does to frames, and whether it is
    /// up (see [`Fabric::set_link`]).
    pub fn set_link(
        &self,
        port_name: &str,
        impairment: wire::Impairment,
        up: bool,
    ) -> Result<(), FabricError> {
        let f = self.shared.fabric();
        let port = f
            .port_by_name(port_name)
            .ok_or_else(|| FabricError::NoSuchPort(port_name.to_owned()))?;
        f.set_link(port, impairment, up)
    }

    /// What the named port's link does to frames, and whether it is up.
    pub fn link(&self, port_name: &str) -> Result<(wire::Impairment, bool), FabricError> {
        let f = self.shared.fabric();
        f.port_by_name(port_name)
            .and_then(|p| f.link(p))
            .ok_or_else(|| FabricError::NoSuchPort(port_name.to_owned()))
    }

    /// Starts capturing on the named port: its frames, tagged `tag`, go
    /// to `tx` until its receiver is dropped (several ports may share one
    /// channel). A reader slower than the traffic loses the frames the
    /// channel has no room for, counted in the log, never stalling ports.
    pub fn capture(
        &self,
        port_name: &str,
        tag: u32,
        tx: mpsc::Sender<CapturedFrame>,
    ) -> Result<(), FabricError> {
        let f = self.shared.fabric();
        let port = f
            .port_by_name(port_name)
            .ok_or_else(|| FabricError::NoSuchPort(port_name.to_owned()))?;
        let sink = ChannelSink {
            tx,
            tag,
            epoch_wall: self.shared.epoch_wall,
            port: port_name.to_owned(),
            dropped: 0,
        };
        f.add_capture(port, Box::new(sink));
        Ok(())
    }

    /// Starts a trace of the frames entering at `port_name` (any port if
    /// `None`) that match `filter`, `count` of them at most: their records
    /// arrive on the returned channel until it is dropped. A reader slower
    /// than the traffic loses records beyond `capacity`, never stalls ports.
    pub fn trace(
        &self,
        port_name: Option<&str>,
        filter: Filter,
        count: Option<u64>,
        capacity: usize,
    ) -> Result<mpsc::Receiver<TraceRecord>, FabricError> {
        let f = self.shared.fabric();
        let port = port_name
            .map(|name| {
                f.port_by_name(name)
                    .ok_or_else(|| FabricError::NoSuchPort(name.to_owned()))
            })
            .transpose()?;
        let (tx, rx) = mpsc::channel(capacity);
        if !f.add_trace(port, filter, count, Box::new(ChannelTrace(tx))) {
            return Err(FabricError::TooManyTraces);
        }
        Ok(rx)
    }

    /// What `frame` entering at `port_name` would meet now, without it
    /// happening (see [`Fabric::what_if`]).
    pub fn what_if(&self, port_name: &str, frame: &[u8]) -> Result<Vec<TraceRecord>, FabricError> {
        let f = self.shared.fabric();
        let port = f
            .port_by_name(port_name)
            .ok_or_else(|| FabricError::NoSuchPort(port_name.to_owned()))?;
        Ok(f.what_if(self.shared.now(), port, frame))
    }

    /// Stops every task and waits for them, so that the devices are closed
    /// when this returns.
    pub async fn shutdown(mut self) {
        // All at once, then waited for: one at a time, a lab of thousands
        // of ports under load waited a wake-up of a busy worker per task.
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks.drain(..) {
            while !t.is_finished() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    /// Whether the named port carries IP packets (a TUN) rather than
    /// Ethernet frames.
    pub fn port_is_l3(&self, port_name: &str) -> bool {
        let f = self.shared.fabric();
        f.port_by_name(port_name).is_some_and(|p| f.port_is_l3(p))
    }

    /// The names of all ports, in the order they were added.
    pub fn port_names(&self) -> Vec<String> {
        self.shared
            .fabric()
            .port_names()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Runs the fabric's timers: the switches' and routers' (which want a
/// tenth of a second's precision) and the frames impaired links hold
/// (which want the millisecond). Sleeps until the earliest is due, 100 ms
/// at most, or until a frame is held until before that.
async fn drive_timers(shared: Arc<Shared>) {
    const IDLE: Duration = Duration::from_millis(100);
    let mut batch = Batch::new();
    let mut egress = EgressPath::new();
    let mut due = None;
    let alarm = match Alarm::new() {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!("no timerfd ({e}): link delays are kept to the millisecond");
            None
        }
    };
    loop {
        let sleep_for = due.map_or(IDLE, |t: Instant| {
            t.saturating_since(shared.now()).min(IDLE)
        });
        let precise = async {
            match &alarm {
                Some(a) if a.sleep(sleep_for).await.is_ok() => {}
                _ => tokio::time::sleep(sleep_for).await,
            }
        };
        tokio::select! {
            () = precise => {}
            () = shared.timer_wake.notified() => {}
        }
        let now = shared.now();
        let run = AssertUnwindSafe(|| {
            let f = shared.fabric();
            f.take_wake();
            if f.poll_at().is_some_and(|t| t <= now) {
                f.on_timer(now, &mut batch);
            } else {
                return f.poll_at();
            }
            with_writes(|mut writes| {
                write_deliveries(&shared, &batch, &mut egress, writes.as_deref_mut());
                if let Some(w) = writes {
                    flush(&shared, w);
                }
            });
            shared.fabric().poll_at()
        });
        match std::panic::catch_unwind(run) {
            Ok(next) => due = next,
            Err(_) => {
                batch.reset();
                due = None;
                shared.timer_panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Reads frames from one port's device and forwards them until aborted.
async fn serve_port(shared: Arc<Shared>, port: PortId) {
    let Some(device) = shared.devices[port.0 as usize].as_ref() else {
        return;
    };
    let mut ctx = ReadContext {
        batch: Batch::new(),
        egress: EgressPath::new(),
        todo: Vec::new(),
        touched: Vec::new(),
    };
    let mut backoff = Duration::ZERO;
    loop {
        let got = match device.readable().await {
            Ok(()) => drain_and_follow(&shared, port, &mut ctx),
            Err(e) => {
                IoCounters::bump(&shared.io[port.0 as usize].read_failed);
                Drained {
                    failed: Some(e),
                    ..Drained::default()
                }
            }
        };
        if let Some(e) = got.failed {
            // A device that fails every read, or reports only an error
            // (its interface was deleted, say), stays that way: wait
            // before asking again, longer each time, instead of spinning.
            backoff = (backoff * 2).clamp(Duration::from_millis(1), Duration::from_secs(1));
            if backoff == Duration::from_millis(1) {
                tracing::warn!(port = %shared.fabric().port_name(port), "reading the device failed: {e}; retrying, less often while it fails");
            }
            tokio::time::sleep(backoff).await;
            continue;
        }
        if got.frames > 0 {
            backoff = Duration::ZERO;
        }
        if got.more {
            // Budget spent with frames still queued: let the other ports,
            // the timers and the services have the worker first.
            tokio::task::yield_now().await;
        }
    }
}

/// Frames one wake-up reads from a port before the reader yields.
pub const READ_BUDGET: usize = 64;

/// How many ports one wake-up may drain, following the frames it wrote.
const FOLLOW_LIMIT: usize = 8;

/// What a reader task reuses from one wake-up to the next.
struct ReadContext {
    batch: Batch,
    egress: EgressPath,
    /// Ports to visit, and those just written to.
    todo: Vec<PortId>,
    touched: Vec<PortId>,
}

/// What draining a port found.
#[derive(Default)]
struct Drained {
    frames: usize,
    /// The budget was spent with frames perhaps still queued.
    more: bool,
    /// The read failed for another reason than an empty queue.
    failed: Option<std::io::Error>,
}

/// Drains `port` (up to [`READ_BUDGET`] frames), then the ports it just
/// wrote to, a few hops deep.
///
/// A frame written to a TAP is processed by the receiving namespace's
/// kernel inside the write itself, so its answer (a SYN-ACK, an echo
/// reply, an ACK) is often already queued on that port when the write
/// returns. Reading it now, instead of waking that port's task, saves a
/// thread wake-up per hop, which is most of a round trip's cost here.
/// Other ports are only taken if their reader token is free.
fn drain_and_follow(shared: &Shared, port: PortId, ctx: &mut ReadContext) -> Drained {
    ctx.todo.clear();
    ctx.todo.push(port);
    let mut drained = 0;
    let mut own = Drained::default();
    while let Some(p) = ctx.todo.pop() {
        let token = &shared.readers[p.0 as usize];
        let guard = if p == port {
            token.lock().unwrap_or_else(|e| e.into_inner())
        } else {
            match token.try_lock() {
                Ok(g) => g,
                Err(_) => continue,
            }
        };
        ctx.touched.clear();
        let got = with_writes(|writes| drain(shared, p, ctx, writes));
        drop(guard);
        let got_any = got.frames > 0;
        if p == port {
            own = got;
        }
        drained += 1;
        if drained >= FOLLOW_LIMIT || (!got_any && p != port) {
            continue;
        }
        for t in &ctx.touched {
            if *t != p && !ctx.todo.contains(t) && ctx.todo.len() + drained < FOLLOW_LIMIT {
                ctx.todo.push(*t);
            }
        }
    }
    own
}

/// Reads and forwards what is queued on `port`, [`READ_BUDGET`] frames at
/// most, notes the ports written to in `ctx.touched`, and flushes what it
/// wrote to devices through `writes` in one system call.
fn drain(
    shared: &Shared,
    port: PortId,
    ctx: &mut ReadContext,
    mut writes: Option<&mut WriteBatch>,
) -> Drained {
    let mut got = Drained::default();
    let Some(device) = shared.devices[port.0 as usize].as_ref() else {
        return got;
    };
    let io = &shared.io[port.0 as usize];
    let ReadContext {
        batch,
        egress,
        touched,
        ..
    } = ctx;
    while got.frames < READ_BUDGET {
        let mut frame = batch.take_frame();
        let n = match device.try_recv(frame.read_area()) {
            Ok(n) => n,
            Err(e) => {
                batch.put_frame(frame);
                if e.kind() != ErrorKind::WouldBlock {
                    tracing::debug!(port = port.0, "device read failed: {e}");
                    IoCounters::bump(&io.read_failed);
                    got.failed = Some(e);
                }
                break;
            }
        };
        got.frames += 1;
        frame.set_len(n);
        if device.caps().offload {
            let Some(hdr) = VnetHdr::parse(frame.data()) else {
                IoCounters::bump(&io.read_failed);
                batch.put_frame(frame);
                continue;
            };
            frame.pull_front(VNET_HDR_LEN);
            frame.hdr = hdr;
        }
        shared.forward(port, frame, batch, egress, writes.as_deref_mut());
        // A flood wider than the follow limit is not followed: which of
        // its ports answers is unknown, and noting thousands of them would
        // cost more than the copies.
        let deliveries = batch.deliveries();
        if deliveries.len() <= FOLLOW_LIMIT {
            for d in deliveries {
                if touched.len() < FOLLOW_LIMIT && !touched.contains(&d.port) {
                    touched.push(d.port);
                }
            }
        }
    }
    got.more = got.frames == READ_BUDGET;
    if let Some(w) = writes {
        flush(shared, w);
    }
    got
}

fn write_deliveries(
    shared: &Shared,
    batch: &Batch,
    egress: &mut EgressPath,
    mut writes: Option<&mut WriteBatch>,
) {
    for d in batch.deliveries() {
        if let Some(frame) = batch.frame(d.frame) {
            write_port(shared, d, frame, egress, writes.as_deref_mut());
        }
    }
}

thread_local! {
    /// The device writes of whichever writer runs on this thread (a port's
    /// reader, a service host's injector, the timer task), once asked for:
    /// `None` inside if io_uring is not to be had. A writer queues and
    /// flushes within one call that never awaits, so the writers a thread
    /// runs take turns with one batch and one ring instead of one each
    /// (10,000 service hosts would hold 10,000 rings and 1.3 GB of slots).
    static WRITES: RefCell<Option<Option<WriteBatch>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's write batch; `None` where io_uring is
/// refused (frames are then written one by one), and also if the batch is
/// already in use further up this thread's stack.
fn with_writes<R>(f: impl FnOnce(Option<&mut WriteBatch>) -> R) -> R {
    WRITES.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let writes = slot.get_or_insert_with(|| {
                WriteBatch::new()
                    .inspect_err(|e| {
                        tracing::debug!("no io_uring ({e}): frames are written one by one")
                    })
                    .ok()
            });
            f(writes.as_mut())
        }
        Err(_) => f(None),
    })
}

/// Writes what `writes` holds, counting each frame a device refused.
fn flush(shared: &Shared, writes: &mut WriteBatch) {
    if writes.is_empty() {
        return;
    }
    writes.flush(
        |tag| {
            shared
                .devices
                .get(tag as usize)
                .and_then(|d| d.as_ref())
                .and_then(|d| d.batch_fd())
        },
        |tag, e| {
            tracing::trace!(port = tag, "device write failed: {e}");
            if let Some(io) = shared.io.get(tag as usize) {
                IoCounters::bump(&io.write_failed);
            }
        },
    );
}

/// Writes one delivered frame to its port's device (or queues it in
/// `writes`) or endpoint.
fn write_port(
    shared: &Shared,
    d: &Delivery,
    frame: &Frame,
    egress: &mut EgressPath,
    mut writes: Option<&mut WriteBatch>,
) {
    let (hdr, trace, frame) = (&frame.hdr, frame.trace, frame.data());
    let idx = d.port.0 as usize;
    if let Some(Some(ep)) = shared.endpoints.get(idx) {
        // Endpoints take wire-sized frames with complete checksums.
        if egress
            .emit(PortCaps::PLAIN, hdr, d.edit, frame, |pieces| {
                ep.deliver(pieces, trace)
            })
            .is_err()
        {
            IoCounters::bump(&shared.io[idx].offload_failed);
        }
        return;
    }
    let (Some(Some(device)), Some(io)) = (shared.devices.get(idx), shared.io.get(idx)) else {
        return;
    };
    let batched = device.batch_fd().is_some();
    let written = egress.emit(device.caps(), hdr, d.edit, frame, |pieces| {
        if let Some(w) = writes.as_deref_mut().filter(|_| batched) {
            if w.push(d.port.0, pieces) {
                return;
            }
            // Full, or a frame too large for a slot: what is queued goes
            // first, so that the port's frames keep their order.
            flush(shared, w);
            if w.push(d.port.0, pieces) {
                return;
            }
        }
        let mut slices = [IoSlice::new(&[]); 3];
        // emit() writes at most three pieces: header, head and tail.
        for (s, p) in slices.iter_mut().zip(pieces) {
            *s = IoSlice::new(p);
        }
        if let Err(e) = device.try_send_vectored(&slices[..pieces.len()]) {
            // EIO while the interface is down, EAGAIN if its queue is full:
            // the frame is lost, as on a real link, and counted.
            tracing::trace!(port = idx, "device write failed: {e}");
            IoCounters::bump(&io.write_failed);
        }
    });
    if let Err(e) = written {
        tracing::debug!(port = idx, "offload of a frame failed: {e}");
        IoCounters::bump(&io.offload_failed);
    }
}

/// How an in-process endpoint sends into the fabric: each frame is copied
/// into a pooled fabric frame and forwarded at once, like a frame read
/// from a device.
pub struct Injector {
    shared: Arc<Shared>,
    port: PortId,
    batch: Batch,
    egress: EgressPath,
}

impl std::fmt::Debug for Injector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injector")
            .field("port", &self.port)
            .finish()
    }
}

impl Injector {
    /// What the endpoint decided about traced frame `trace`, as events of
    /// that frame's trace.
    pub fn traced(&mut self, trace: u64, whats: Vec<What>) {
        let f = self.shared.fabric();
        f.late_events(self.shared.now(), trace, f.port_name(self.port), whats);
    }

    pub fn send(&mut self, frames: &[Frame]) {
        with_writes(|mut writes| {
            for f in frames {
                let mut frame = self.batch.take_frame();
                frame.extend_from_slice(f.data());
                frame.hdr = f.hdr;
                frame.trace = f.trace;
                self.shared.forward(
                    self.port,
                    frame,
                    &mut self.batch,
                    &mut self.egress,
                    writes.as_deref_mut(),
                );
            }
            if let Some(w) = writes {
                flush(&self.shared, w);
            }
        });
    }
}

/// A trace session feeding a bounded channel.
struct ChannelTrace(mpsc::Sender<TraceRecord>);

impl TraceSink for ChannelTrace {
    fn record(&mut self, record: &TraceRecord) {
        let _ = self.0.try_send(record.clone());
    }

    fn is_open(&self) -> bool {
        !self.0.is_closed()
    }
}

/// A capture tap feeding a bounded channel.
struct ChannelSink {
    tx: mpsc::Sender<CapturedFrame>,
    tag: u32,
    epoch_wall: SystemTime,
    port: String,
    dropped: u64,
}

impl CaptureSink for ChannelSink {
    fn record(&mut self, now: Instant, direction: Direction, head: &[u8], tail: &[u8]) {
        let frame = CapturedFrame {
            port: self.tag,
            at: self.epoch_wall + Duration::from_micros(now.micros()),
            direction,
            data: [head, tail].concat(),
        };
        if self.tx.try_send(frame).is_err() {
            self.dropped += 1;
        }
    }

    fn is_open(&self) -> bool {
        !self.tx.is_closed()
    }
}

impl Drop for ChannelSink {
    fn drop(&mut self) {
        if self.dropped > 0 {
            tracing::warn!(port = %self.port, dropped = self.dropped, "capture reader was too slow; frames were left out of the capture");
        }
    }
}
