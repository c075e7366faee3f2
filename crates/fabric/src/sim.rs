//! A deterministic simulator: a fabric driven on a virtual clock, with
//! in-process hosts as traffic sources and sinks and seeded loss, delay and
//! jitter on every host link.
//!
//! The same seed gives the same run, frame for frame, so a failing test
//! replays exactly. Frames take the same [`EgressPath`] as in the real
//! runtime, so offload handling is tested here too.

use crate::core::{Batch, Fabric, PortId};
use crate::egress::EgressPath;
use crate::port::PortCaps;
use crate::rng::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;
use wire::{Frame, Instant, VnetHdr, VNET_HDR_LEN};

/// The behaviour of every link between a simulated host and its switch.
#[derive(Debug, Clone, Copy)]
pub struct LinkParams {
    pub latency: Duration,
    /// Extra delay drawn uniformly from zero to this (reorders frames).
    pub jitter: Duration,
    /// Probability that a frame is lost on one link traversal.
    pub loss: f64,
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            latency: Duration::from_micros(50),
            jitter: Duration::ZERO,
            loss: 0.0,
        }
    }
}

/// A frame a simulated host received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The virtio-net header, for a port that takes offloads.
    pub hdr: Option<VnetHdr>,
    pub frame: Vec<u8>,
    /// Its id in a trace (0 if none follows it).
    pub trace: u64,
}

#[derive(Debug)]
enum Event {
    /// A frame reaches the fabric from a host.
    Ingress { port: PortId, frame: Frame },
    /// A frame reaches a host from the fabric.
    Arrive {
        port: PortId,
        bytes: Vec<u8>,
        trace: u64,
    },
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The simulator. See the module documentation.
#[derive(Debug)]
pub struct Sim {
    fabric: Fabric,
    now: Instant,
    link: LinkParams,
    rng: Rng,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    inboxes: Vec<Vec<Received>>,
    /// Ports whose inbox filled since [`Sim::take_arrivals`] last ran.
    arrived: Vec<PortId>,
    egress: EgressPath,
    batch: Batch,
    lost: u64,
}

impl Sim {
    pub fn new(fabric: Fabric, seed: u64, link: LinkParams) -> Sim {
        Sim {
            fabric,
            now: Instant::ZERO,
            link,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            seq: 0,
            inboxes: Vec::new(),
            arrived: Vec::new(),
            egress: EgressPath::new(),
            batch: Batch::new(),
            lost: 0,
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn fabric(&self) -> &Fabric {
        &self.fabric
    }

    pub fn fabric_mut(&mut self) -> &mut Fabric {
        &mut self.fabric
    }

    /// Frames lost on links so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Sends a plain frame from the host on `port`.
    pub fn send(&mut self, port: PortId, frame: Vec<u8>) {
        self.send_offloaded(port, VnetHdr::PLAIN, frame);
    }

    /// Sends a frame with offload metadata (a super-frame, say).
    pub fn send_offloaded(&mut self, port: PortId, hdr: VnetHdr, frame: Vec<u8>) {
        let mut frame = Frame::from_slice(&frame);
        frame.hdr = hdr;
        self.send_frame(port, frame);
    }

    /// Sends a frame as an endpoint made it: offload metadata, and the
    /// traced frame it answers in [`Frame::trace`].
    pub fn send_frame(&mut self, port: PortId, frame: Frame) {
        self.schedule(Event::Ingress { port, frame });
    }

    /// Whether no frame is on its way anywhere (on a simulated link or
    /// held by an impaired one).
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && !self.fabric.holding()
    }

    /// When the next frame reaches the fabric or a host, or the fabric's
    /// next timer is due.
    pub fn next_due(&self) -> Option<Instant> {
        let event = self.queue.peek().map(|Reverse(s)| s.at);
        [event, self.fabric.poll_at()].into_iter().flatten().min()
    }

    /// Takes the frames the host on `port` has received so far.
    pub fn take_received(&mut self, port: PortId) -> Vec<Received> {
        self.inboxes
            .get_mut(port.0 as usize)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The ports that received frames since the last call, each once: a
    /// driver of many hosts visits those instead of asking every port.
    pub fn take_arrivals(&mut self) -> Vec<PortId> {
        std::mem::take(&mut self.arrived)
    }

    fn schedule(&mut self, event: Event) {
        if self.link.loss > 0.0 && self.rng.unit() < self.link.loss {
            self.lost += 1;
            return;
        }
        let jitter = self.link.jitter.mul_f64(self.rng.unit());
        let at = self.now + self.link.latency + jitter;
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// Runs every event and timer due within `d`, then sets the clock to
    /// the end of it.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next_event = self
                .queue
                .peek()
                .map(|Reverse(s)| s.at)
                .filter(|t| *t <= end);
            let next_timer = self.fabric.poll_at().filter(|t| *t <= end);
            match (next_event, next_timer) {
                (Some(e), Some(t)) if t < e => self.fire_timer(t),
                (Some(_), _) => self.step(),
                (None, Some(t)) => self.fire_timer(t),
                (None, None) => break,
            }
        }
        self.now = end;
    }

    /// Runs until no frame is in flight (timers only as they fall due on
    /// the way).
    pub fn run_until_idle(&mut self) {
        while !self.is_idle() {
            let event = self.queue.peek().map(|Reverse(s)| s.at);
            match (event, self.fabric.poll_at()) {
                (Some(e), Some(t)) if t < e => self.fire_timer(t),
                (Some(_), _) => self.step(),
                (None, Some(t)) => self.fire_timer(t),
                (None, None) => break,
            }
        }
    }

    fn fire_timer(&mut self, t: Instant) {
        self.now = self.now.max(t);
        self.fabric.on_timer(self.now, &mut self.batch);
        self.deliver();
    }

    /// Puts what the last run left in the batch on the links to the hosts.
    fn deliver(&mut self) {
        let mut arrivals = Vec::new();
        for d in self.batch.deliveries() {
            let Some(frame) = self.batch.frame(d.frame) else {
                continue;
            };
            let offload = self.fabric.port_offload(d.port);
            let caps = if offload {
                PortCaps::OFFLOAD
            } else {
                PortCaps::PLAIN
            };
            // A frame the port cannot take is dropped here, as the runtime
            // counts it; the switch already counted the copy as sent.
            let _ = self
                .egress
                .emit(caps, &frame.hdr, d.edit, frame.data(), |pieces| {
                    arrivals.push((d.port, pieces.concat(), frame.trace))
                });
        }
        for (port, bytes, trace) in arrivals {
            self.schedule(Event::Arrive { port, bytes, trace });
        }
    }

    fn step(&mut self) {
        let Some(Reverse(s)) = self.queue.pop() else {
            return;
        };
        self.now = self.now.max(s.at);
        match s.event {
            Event::Ingress { port, frame } => {
                self.fabric.ingress(self.now, port, frame, &mut self.batch);
                self.deliver();
            }
            Event::Arrive { port, bytes, trace } => {
                let offload = self.fabric.port_offload(port);
                let idx = port.0 as usize;
                if self.inboxes.len() <= idx {
                    self.inboxes.resize_with(idx + 1, Vec::new);
                }
                let received = match (offload, VnetHdr::parse(&bytes)) {
                    (true, Some(hdr)) => Received {
                        hdr: Some(hdr),
                        frame: bytes[VNET_HDR_LEN..].to_vec(),
                        trace,
                    },
                    _ => Received {
                        hdr: None,
                        frame: bytes,
                        trace,
                    },
                };
                if self.inboxes[idx].is_empty() {
                    self.arrived.push(port);
                }
                self.inboxes[idx].push(received);
            }
        }
    }
}
