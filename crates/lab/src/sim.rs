//! A whole lab on the simulator's virtual clock, for `cargo test`: the
//! fabric built by [`crate::build`], every service host running its real
//! service (async code on a paused tokio clock that follows the
//! simulator's), and each namespace host with a static address played by a
//! client [`Stack`] that the test drives. The same seed gives the same
//! run, frame for frame: services read a virtual time of day and seed
//! their randomness from it ([`services::World`]).
//!
//! Hosts that take their address by DHCP have no simulated client (the
//! simulator runs no DHCP client); their ports stay silent.

use crate::services::{host_event, Supervised, Supervision};
use crate::{build, kinds, LabError};
use fabric::{Fabric, LinkParams, PortId, Sim};
use hoststack::{Decision, Host, HostConfig, Link, Rounds, SockId, Stack};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use topology::{HostAddress, HostAddress6, Topology};
use wire::{Frame, Instant};

/// How far the clock moves between two rounds of the hosts while a service
/// host still has work after a round (its tasks go on next round).
const TICK: Duration = Duration::from_micros(20);

/// The longest step taken while nothing happens: quiet steps double up
/// to it, so that seconds of idle virtual time cost a few thousand steps,
/// and the first frame or due timer brings the step back to the next event.
const MAX_STRIDE: Duration = Duration::from_millis(1);

struct SimService {
    port: PortId,
    host: Host,
    rounds: Rounds,
}

struct SimClient {
    name: String,
    port: PortId,
    stack: Stack,
    /// When the stack wants its next poll (its entry in `LabSim::due`).
    next: Option<Instant>,
}

/// A lab in the simulator. See the module documentation.
pub struct LabSim {
    sim: Sim,
    rt: tokio::runtime::Runtime,
    services: Vec<SimService>,
    /// Each running service's supervision.
    supervised: Vec<std::sync::Arc<Supervision>>,
    clients: Vec<SimClient>,
    /// Each client's place in `clients`, by name and by port.
    by_name: HashMap<String, usize>,
    by_port: HashMap<PortId, usize>,
    /// The clients' timers, earliest first. An entry whose time is no
    /// longer its client's `next` is stale, and skipped.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Clients the test had in hand (it may have opened or written a
    /// socket): polled next step.
    touched: Vec<usize>,
    out: Vec<Frame>,
    /// The next step's length: to the next event while frames move,
    /// [`TICK`] while a host is busy, doubling while the lab is quiet.
    stride: Duration,
}

impl std::fmt::Debug for LabSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabSim")
            .field("now", &self.sim.now())
            .finish()
    }
}

impl LabSim {
    /// Builds `lab` in a simulator with `link` on every host link.
    pub fn new(lab: &Topology, seed: u64, link: LinkParams) -> Result<LabSim, LabError> {
        // A simulated namespace host is a stack that takes wire-size
        // frames, as a kernel without GRO does: the fabric cuts a service
        // host's super-frames for it, as it would for a TAP without
        // offloads. (Given one whole, the stack drops it as too long, and
        // only the sender's retransmissions, one segment each, get
        // through.)
        let mut lab = lab.clone();
        for h in &mut lab.hosts {
            h.offload = false;
        }
        let blueprint = build(&lab)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(LabError::Runtime)?;
        let view = {
            let _clock = rt.enter();
            blueprint.view.in_world(services::World::simulated(seed))
        };
        let mut services = Vec::new();
        let mut supervised = Vec::new();
        for p in blueprint.services {
            if let Some(kind) = kinds::find(p.spec.kind()) {
                let _clock = rt.enter();
                let (task, state) = Supervised::start(kind, &p, &view)?;
                rt.spawn(task);
                supervised.push(state);
            }
            services.push(SimService {
                port: p.port,
                host: p.host,
                rounds: Rounds::default(),
            });
        }
        let clients = blueprint
            .hosts
            .iter()
            .filter_map(|h| match h.spec.address {
                HostAddress::Static(addr) => {
                    let mut config =
                        HostConfig::new(&h.spec.name, h.spec.mac, addr, h.spec.gateway);
                    config.mtu = h.spec.mtu;
                    if let Some(HostAddress6::Static(a6)) = h.spec.address6 {
                        config.addresses6 = vec![a6];
                        config.gateway6 = h.spec.gateway6;
                    }
                    Some(SimClient {
                        name: h.spec.name.clone(),
                        port: h.port,
                        stack: Stack::new(config, Instant::ZERO),
                        next: None,
                    })
                }
                HostAddress::Dhcp | HostAddress::None => None,
            })
            .collect::<Vec<SimClient>>();
        let by_name = clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let by_port = clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.port, i))
            .collect();
        // Every client is polled once at the start (its first router
        // solicitation or DAD, say); after that only when it is due.
        let touched = (0..clients.len()).collect();
        Ok(LabSim {
            sim: Sim::new(blueprint.fabric, seed, link),
            rt,
            services,
            supervised,
            clients,
            by_name,
            by_port,
            due: BinaryHeap::new(),
            touched,
            out: Vec::new(),
            stride: TICK,
        })
    }

    pub fn now(&self) -> Instant {
        self.sim.now()
    }

    /// The fabric, to trace it or read its status.
    pub fn fabric_mut(&mut self) -> &mut Fabric {
        self.sim.fabric_mut()
    }

    /// Frames lost on links so far.
    pub fn lost(&self) -> u64 {
        self.sim.lost()
    }

    /// The stack playing namespace host `name`, to open sockets on.
    pub fn client(&mut self, name: &str) -> Option<&mut Stack> {
        let i = *self.by_name.get(name)?;
        self.touched.push(i);
        Some(&mut self.clients[i].stack)
    }

    /// How often the lab's services were started again after their task
    /// ended or panicked (0 in a lab whose clients stopped nothing).
    pub fn restarts(&self) -> u64 {
        self.supervised.iter().map(|s| s.restarts()).sum()
    }

    /// Opens a TCP connection from namespace host `client` to `to`, sends
    /// `request`, and reads until the server closes; `None` if that does
    /// not happen within `limit` (or `client` is not a simulated host).
    pub fn exchange(
        &mut self,
        client: &str,
        to: SocketAddr,
        request: &[u8],
        limit: Duration,
    ) -> Option<Vec<u8>> {
        let one = Exchange::new(client, to, request.to_vec(), Duration::ZERO);
        let mut all = [one];
        self.exchanges(&mut all, limit);
        let [one] = all;
        one.done.then_some(one.answer)
    }

    /// Runs `exchanges` side by side, each from its start (counted from
    /// now), until all are over or `limit` passes.
    pub fn exchanges(&mut self, exchanges: &mut [Exchange], limit: Duration) {
        let start = self.now();
        let mut cx = Context::from_waker(Waker::noop());
        self.run_until(limit, |l| {
            let since = l.now().saturating_since(start);
            // Every exchange moves on each time (`all` would stop at the
            // first that is not over).
            let mut over = true;
            for e in exchanges.iter_mut() {
                over &= e.go(l, since, &mut cx);
            }
            over
        });
        for e in exchanges.iter_mut() {
            if let (Some(sock), Some(stack)) = (e.sock.take(), self.client(&e.client)) {
                stack.release(sock);
            }
        }
    }

    /// Runs the lab for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.sim.now() + d;
        while self.sim.now() < end {
            let step = self.stride.min(end.saturating_since(self.sim.now()));
            self.step(step);
        }
    }

    /// Runs until `done` holds (checked every tick) or `limit` passes;
    /// returns whether it held.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&mut LabSim) -> bool,
    ) -> bool {
        let end = self.sim.now() + limit;
        while self.sim.now() < end {
            if done(self) {
                return true;
            }
            let step = self.stride.min(end.saturating_since(self.sim.now()));
            self.step(step);
        }
        done(self)
    }

    /// The fabric for `d`, then the hosts: what arrived goes in, what they
    /// send goes on the links, the services' tasks run. Sets the next
    /// step's length: longer if nothing moved, never past a host's timer.
    fn step(&mut self, d: Duration) {
        self.sim.run_for(d);
        let now = self.sim.now();
        self.rt.block_on(tokio::time::advance(d));
        let mut sending: Vec<(PortId, Frame)> = Vec::new();
        let mut received = 0;
        // The clients that received frames, are due, or were in the
        // test's hands; the others have nothing to do and are not asked.
        let mut visit = std::mem::take(&mut self.touched);
        visit.extend(
            self.sim
                .take_arrivals()
                .iter()
                .filter_map(|p| self.by_port.get(p).copied()),
        );
        while let Some(&Reverse((at, i))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            if self.clients[i].next == Some(at) {
                visit.push(i);
            }
        }
        // In the clients' order, as every client was visited before: the
        // same seed gives the same run.
        visit.sort_unstable();
        visit.dedup();
        for i in visit {
            let c = &mut self.clients[i];
            for r in self.sim.take_received(c.port) {
                c.stack.ingress(now, &r.frame, &mut self.out);
                received += 1;
            }
            c.stack.poll(now, &mut self.out);
            sending.extend(self.out.drain(..).map(|f| (c.port, f)));
            // A new time gets an entry; so does one already due, whose
            // entry this step may have taken (a duplicate is harmless).
            let next = c.stack.poll_at();
            let moved = next != c.next;
            c.next = next;
            if let Some(t) = next.filter(|t| moved || *t <= now) {
                self.due.push(Reverse((t, i)));
            }
        }
        let mut due = self.next_client_due();
        for s in &mut self.services {
            for r in self.sim.take_received(s.port) {
                s.host.deliver(&[&r.frame], r.trace);
                received += 1;
            }
        }
        let mut traced: Vec<(PortId, u64, Vec<Decision>)> = Vec::new();
        // Rounds and task runs until the services are quiet (bounded: a
        // busy host goes on next tick).
        let mut busy = false;
        for _ in 0..8 {
            self.rt.block_on(settle());
            let mut more = false;
            for s in &mut self.services {
                let mut link = Collect {
                    port: s.port,
                    sending: &mut sending,
                    traced: &mut traced,
                };
                let (busy, next) = s.host.round(&mut s.rounds, now, &mut link);
                more |= busy;
                due = earliest(due, next);
            }
            busy = more;
            if !more {
                break;
            }
        }
        let traced_none = traced.is_empty();
        for (port, trace, decisions) in traced {
            let name = self.sim.fabric().port_name(port).to_owned();
            let whats = decisions.iter().map(host_event).collect();
            self.sim.fabric_mut().late_events(now, trace, &name, whats);
        }
        let quiet = received == 0 && sending.is_empty() && traced_none && self.sim.is_idle();
        for (port, frame) in sending {
            self.sim.send_frame(port, frame);
        }
        self.stride = if quiet {
            let until_due = due.map_or(MAX_STRIDE, |t| t.saturating_since(now));
            (self.stride * 2).min(MAX_STRIDE).min(until_due).max(TICK)
        } else if busy {
            TICK
        } else {
            // Frames are on their way and every host has done what it
            // could: nothing can happen before the simulator's next event
            // (a frame reaching the fabric or a host, a fabric timer) or a
            // host's timer, so the clock goes straight there.
            let next = earliest(self.sim.next_due(), due);
            next.map_or(TICK, |t| t.saturating_since(now))
                .clamp(Duration::from_micros(1), MAX_STRIDE)
        };
    }
}

impl LabSim {
    /// The earliest client timer, forgetting the stale entries on top.
    fn next_client_due(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, i))) = self.due.peek() {
            if self.clients[i].next == Some(at) {
                return Some(at);
            }
            self.due.pop();
        }
        None
    }
}

/// A request from a simulated namespace host over TCP, and the answer
/// until the server closes (see [`LabSim::exchanges`]).
#[derive(Debug)]
pub struct Exchange {
    pub client: String,
    pub to: SocketAddr,
    pub request: Vec<u8>,
    /// When it starts, from the start of the run.
    pub at: Duration,
    /// The answer as received.
    pub answer: Vec<u8>,
    /// Whether the server closed (after the whole answer) in time.
    pub done: bool,
    /// Whether it failed: no such client, a refused connection or a reset.
    pub failed: bool,
    sock: Option<SockId>,
    sent: usize,
}

impl Exchange {
    pub fn new(client: &str, to: SocketAddr, request: Vec<u8>, at: Duration) -> Exchange {
        Exchange {
            client: client.to_owned(),
            to,
            request,
            at,
            answer: Vec::new(),
            done: false,
            failed: false,
            sock: None,
            sent: 0,
        }
    }

    /// Moves it on, `since` into the run; whether it is over.
    fn go(&mut self, lab: &mut LabSim, since: Duration, cx: &mut Context<'_>) -> bool {
        if self.done || self.failed {
            return true;
        }
        if since < self.at {
            return false;
        }
        let Some(stack) = lab.client(&self.client) else {
            self.failed = true;
            return true;
        };
        let sock = match self.sock {
            Some(s) => s,
            None => match stack.tcp_connect(self.to) {
                Ok(s) => *self.sock.insert(s),
                Err(_) => {
                    self.failed = true;
                    return true;
                }
            },
        };
        if self.sent < self.request.len() {
            if let Poll::Ready(Ok(n)) = stack.poll_send(sock, cx, &self.request[self.sent..]) {
                self.sent += n;
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            match stack.poll_recv(sock, cx, &mut buf) {
                Poll::Ready(Ok(0)) => {
                    self.done = true;
                    return true;
                }
                Poll::Ready(Ok(n)) => self.answer.extend_from_slice(&buf[..n]),
                Poll::Ready(Err(_)) => {
                    self.failed = true;
                    return true;
                }
                Poll::Pending => return false,
            }
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A service host's link in the simulator: what it sends and decides,
/// kept for the end of the step.
struct Collect<'a> {
    port: PortId,
    sending: &'a mut Vec<(PortId, Frame)>,
    traced: &'a mut Vec<(PortId, u64, Vec<Decision>)>,
}

impl Link for Collect<'_> {
    fn send(&mut self, frames: &[Frame]) {
        for f in frames {
            let mut copy = Frame::from_slice(f.data());
            copy.hdr = f.hdr;
            copy.trace = f.trace;
            self.sending.push((self.port, copy));
        }
    }

    fn traced(&mut self, trace: u64, decisions: Vec<Decision>) {
        self.traced.push((self.port, trace, decisions));
    }
}

/// Lets every task that can run, run.
async fn settle() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}
