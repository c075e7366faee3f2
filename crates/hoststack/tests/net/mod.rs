//! The simulated network the service-host tests share: stacks on one
//! switch of a fabric simulator, and the socket calls the tokio layer makes
//! (with a no-op waker).

#![allow(dead_code)]

use fabric::{Fabric, LinkParams, PortId, Sim};
use hoststack::{HostConfig, SockId, Stack};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use switch::{PortConfig, SwitchConfig};
use wire::{Frame, Instant, Mac};

/// Hosts 10.0.0.1.. on one switch.
pub struct Net {
    pub sim: Sim,
    hosts: Vec<(PortId, Stack)>,
    out: Vec<Frame>,
    /// Every frame a host received, by host, while `record` is set.
    pub received: Vec<(usize, Vec<u8>)>,
    pub record: bool,
}

pub fn addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, i as u8 + 1)
}

/// Host `i`'s IPv6 address, given by [`dual_stack`].
pub fn addr6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16 + 1)
}

/// A tuning that gives host `i` the address [`addr6`] on 2001:db8::/64.
pub fn dual_stack(config: &mut HostConfig) {
    let i = usize::from(config.mac.0[5]) - 1;
    config.addresses6 = vec![format!("{}/64", addr6(i)).parse().expect("cidr")];
}

pub fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

impl Net {
    pub fn new(n: usize, seed: u64, link: LinkParams, tune: impl Fn(&mut HostConfig)) -> Net {
        let mut f = Fabric::new();
        let sw = f.add_switch("lan", SwitchConfig::default());
        let hosts = (0..n)
            .map(|i| {
                let port = f
                    .add_port(&format!("h{i}"), sw, PortConfig::access(1), false)
                    .expect("port");
                let mut config = HostConfig::new(
                    &format!("h{i}"),
                    Mac([2, 0, 0, 0, 0, i as u8 + 1]),
                    format!("{}/24", addr(i)).parse().expect("cidr"),
                    None,
                );
                tune(&mut config);
                (port, Stack::new(config, Instant::ZERO))
            })
            .collect();
        Net {
            sim: Sim::new(f, seed, link),
            hosts,
            out: Vec::new(),
            received: Vec::new(),
            record: false,
        }
    }

    pub fn stack(&mut self, i: usize) -> &mut Stack {
        &mut self.hosts[i].1
    }

    /// Moves time on by `dt`: every host sends, the fabric runs, every host
    /// takes what arrived.
    pub fn step(&mut self, dt: Duration) {
        let now = self.sim.now();
        for (port, stack) in &mut self.hosts {
            stack.poll(now, &mut self.out);
            for f in self.out.drain(..) {
                self.sim.send_offloaded(*port, f.hdr, f.data().to_vec());
            }
        }
        self.sim.run_for(dt);
        let now = self.sim.now();
        for (i, (port, stack)) in self.hosts.iter_mut().enumerate() {
            for r in self.sim.take_received(*port) {
                stack.ingress(now, &r.frame, &mut self.out);
                if self.record {
                    self.received.push((i, r.frame));
                }
            }
            for f in self.out.drain(..) {
                self.sim.send_offloaded(*port, f.hdr, f.data().to_vec());
            }
        }
    }

    /// Steps until `done` holds; panics past `limit` of virtual time.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Net) -> bool) {
        let end = self.sim.now() + limit;
        while !done(self) {
            assert!(
                self.sim.now() < end,
                "not done after {limit:?} of virtual time"
            );
            self.step(Duration::from_micros(20));
        }
    }
}

pub fn send_all(s: &mut Stack, id: SockId, data: &[u8], sent: &mut usize) {
    while *sent < data.len() {
        match s.poll_send(id, &mut cx(), &data[*sent..]) {
            Poll::Ready(Ok(n)) => *sent += n,
            Poll::Ready(Err(e)) => panic!("send: {e}"),
            Poll::Pending => break,
        }
    }
}

/// Reads what is there; true once the peer's FIN has been read.
pub fn recv_some(s: &mut Stack, id: SockId, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 16384];
    loop {
        match s.poll_recv(id, &mut cx(), &mut buf) {
            Poll::Ready(Ok(0)) => return true,
            Poll::Ready(Ok(n)) => into.extend_from_slice(&buf[..n]),
            Poll::Ready(Err(e)) => panic!("recv: {e}"),
            Poll::Pending => return false,
        }
    }
}

pub fn accept(s: &mut Stack, port: u16) -> Option<SockId> {
    match s.poll_accept(port, &mut cx()) {
        Poll::Ready(r) => Some(r.expect("accept").0),
        Poll::Pending => None,
    }
}

pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

pub fn server_addr(port: u16) -> SocketAddr {
    SocketAddr::from((addr(1), port))
}
