//! The real driver: TAP devices and the wall clock around a [`Fabric`].
//!
//! One tokio task per TAP port reads frames, draining the device before it
//! waits again; each frame runs through the fabric under a short lock and
//! is written straight to the egress devices from the reader's own buffer
//! (no per-frame allocation, no queue between ports). A timer task drives
//! the switches' ageing.

use crate::capture::{CaptureSink, Direction};
use crate::core::{Delivery, Fabric, FabricError, PortId};
use crate::egress::EgressPath;
use crate::status::FabricStatus;
use std::io::{ErrorKind, IoSlice};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tuntap::Tap;
use wire::{Instant, VnetHdr, VNET_HDR_LEN};

/// A TAP device serving a fabric port.
#[derive(Debug)]
pub struct TapPort {
    pub port: PortId,
    pub tap: Tap,
}

/// A frame seen by a capture, with its wall-clock time.
#[derive(Debug, Clone)]
pub struct CapturedFrame {
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
}

impl IoCounters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

struct Shared {
    fabric: Mutex<Fabric>,
    /// The device behind each port, indexed by `PortId`.
    taps: Vec<Option<Tap>>,
    io: Vec<IoCounters>,
    epoch: std::time::Instant,
    epoch_wall: SystemTime,
}

impl Shared {
    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn fabric(&self) -> MutexGuard<'_, Fabric> {
        // A panic while holding the lock cannot leave the fabric half
        // updated in a way later frames would trip on: keep serving.
        self.fabric.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fabric. Dropping it stops every task and closes the devices.
pub struct Runtime {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

/// The largest frame a TAP hands over: a 64 KiB GSO super-frame, its
/// Ethernet header and tag, and the virtio-net header.
const READ_BUFFER: usize = VNET_HDR_LEN + 65_535 + 14 + 4 + 64;

impl Runtime {
    /// Starts serving. Must be called inside a tokio runtime.
    pub fn start(fabric: Fabric, ports: Vec<TapPort>) -> Runtime {
        let n = fabric.port_names().count();
        let mut taps: Vec<Option<Tap>> = (0..n).map(|_| None).collect();
        let mut served = Vec::new();
        for p in ports {
            if let Some(slot) = taps.get_mut(p.port.0 as usize) {
                *slot = Some(p.tap);
                served.push(p.port);
            }
        }
        let shared = Arc::new(Shared {
            fabric: Mutex::new(fabric),
            taps,
            io: (0..n).map(|_| IoCounters::default()).collect(),
            epoch: std::time::Instant::now(),
            epoch_wall: SystemTime::now(),
        });
        let mut tasks: Vec<JoinHandle<()>> = served
            .into_iter()
            .map(|port| tokio::spawn(serve_port(shared.clone(), port)))
            .collect();
        tasks.push(tokio::spawn(drive_timers(shared.clone())));
        Runtime { shared, tasks }
    }

    /// A snapshot of the fabric with device-level errors filled in.
    pub fn status(&self) -> FabricStatus {
        let (mut status, names) = {
            let f = self.shared.fabric();
            (
                f.status(self.shared.now()),
                f.port_names().map(str::to_owned).collect::<Vec<_>>(),
            )
        };
        for (name, io) in names.iter().zip(&self.shared.io) {
            if let Some(p) = status.port_mut(name) {
                for (key, c) in [
                    ("read-failed", &io.read_failed),
                    ("write-failed", &io.write_failed),
                    ("offload-failed", &io.offload_failed),
                ] {
                    let v = c.load(Ordering::Relaxed);
                    if v > 0 {
                        p.io_errors.insert(key, v);
                    }
                }
            }
        }
        status
    }

    /// Starts capturing on the named port; frames arrive on the returned
    /// channel until it is dropped. A reader slower than the traffic loses
    /// frames beyond `capacity`, counted in the log, never stalling ports.
    pub fn capture(
        &self,
        port_name: &str,
        capacity: usize,
    ) -> Result<mpsc::Receiver<CapturedFrame>, FabricError> {
        let mut f = self.shared.fabric();
        let port = f
            .port_by_name(port_name)
            .ok_or_else(|| FabricError::NoSuchPort(port_name.to_owned()))?;
        let (tx, rx) = mpsc::channel(capacity);
        let sink = ChannelSink {
            tx,
            epoch_wall: self.shared.epoch_wall,
            port: port_name.to_owned(),
            dropped: 0,
        };
        f.set_capture(port, Some(Box::new(sink)));
        Ok(rx)
    }

    /// Stops every task and waits for them, so that the devices are closed
    /// when this returns.
    pub async fn shutdown(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
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

async fn drive_timers(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = shared.now();
        let mut f = shared.fabric();
        if f.poll_at().is_some_and(|t| t <= now) {
            f.on_timer(now);
        }
    }
}

/// Reads frames from one port's TAP and forwards them until aborted.
async fn serve_port(shared: Arc<Shared>, port: PortId) {
    let Some(tap) = shared.taps[port.0 as usize].as_ref() else {
        return;
    };
    let io = &shared.io[port.0 as usize];
    let mut buf = vec![0u8; READ_BUFFER];
    let mut out: Vec<Delivery> = Vec::with_capacity(16);
    let mut egress = EgressPath::new();
    loop {
        if let Err(e) = tap.readable().await {
            tracing::warn!(port = port.0, "TAP not readable: {e}");
            IoCounters::bump(&io.read_failed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        // Drain what is queued before waiting again.
        loop {
            let n = match tap.try_recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(port = port.0, "TAP read failed: {e}");
                    IoCounters::bump(&io.read_failed);
                    break;
                }
            };
            let (hdr, frame) = if tap.offload() {
                match VnetHdr::parse(&buf[..n]) {
                    Some(hdr) => (hdr, &buf[VNET_HDR_LEN..n]),
                    None => {
                        IoCounters::bump(&io.read_failed);
                        continue;
                    }
                }
            } else {
                (VnetHdr::PLAIN, &buf[..n])
            };
            let now = shared.now();
            if shared
                .fabric()
                .ingress(now, port, &hdr, frame, &mut out)
                .is_err()
            {
                continue; // counted by the switch
            }
            for d in &out {
                write_port(&shared, d, &hdr, frame, &mut egress);
            }
        }
    }
}

/// Writes one delivered frame to its port's device.
fn write_port(shared: &Shared, d: &Delivery, hdr: &VnetHdr, frame: &[u8], egress: &mut EgressPath) {
    let idx = d.port.0 as usize;
    let (Some(Some(tap)), Some(io)) = (shared.taps.get(idx), shared.io.get(idx)) else {
        return;
    };
    let written = egress.emit(tap.offload(), hdr, d.edit, frame, |pieces| {
        let mut slices = [IoSlice::new(&[]); 3];
        for (s, p) in slices.iter_mut().zip(pieces) {
            *s = IoSlice::new(p);
        }
        if let Err(e) = tap.try_send_vectored(&slices[..pieces.len()]) {
            // EIO while the interface is down, EAGAIN if its queue is full:
            // the frame is lost, as on a real link, and counted.
            tracing::trace!(port = idx, "TAP write failed: {e}");
            IoCounters::bump(&io.write_failed);
        }
    });
    if let Err(e) = written {
        tracing::debug!(port = idx, "offload of a frame failed: {e}");
        IoCounters::bump(&io.offload_failed);
    }
}

/// A capture tap feeding a bounded channel.
struct ChannelSink {
    tx: mpsc::Sender<CapturedFrame>,
    epoch_wall: SystemTime,
    port: String,
    dropped: u64,
}

impl CaptureSink for ChannelSink {
    fn record(&mut self, now: Instant, direction: Direction, head: &[u8], tail: &[u8]) {
        let frame = CapturedFrame {
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
