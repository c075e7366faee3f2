//! A small Internet on the simulator for fuzzing: the reference lab's home
//! side, ISP and data centre, with a hostile host on every edge.
//!
//! ```text
//!  alice (offload) ─┐                 ┌─ peer (an outside host)
//!  bob             ─┤ home ─ home-gw ─┤ isp ─ isp-gw ─ dc ─ web1 (a service host)
//!                   (NAT, DHCP, forwards)
//! ```
//!
//! Frames injected at alice, bob and peer cross the switch, the routers,
//! the NAT and DHCP and reach web1's smoltcp stack, which is bridged to its
//! fabric port here. [`Lab::check`] says whether every table is within its
//! bound and the counters add up.

use fabric::{Fabric, LinkParams, PortId, Sim};
use hoststack::{HostConfig, Stack};
use ipnet::Ipv6Net;
use router::{
    Dhcp6Config, DhcpConfig, FirewallConfig, IfaceConfig, IfaceId, Link, NatConfig,
    NeighbourLimits, Pinhole, PortForward, Proto, RaConfig, Router, RouterLimits,
};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use switch::{PortConfig, SwitchConfig};
use wire::{Frame, Instant, Mac, VnetHdr};

pub const HOME_GW: Mac = Mac([2, 0x53, 0, 0, 1, 1]);
pub const HOME_GW_ISP: Mac = Mac([2, 0x53, 0, 0, 2, 2]);
pub const ISP_GW: Mac = Mac([2, 0x53, 0, 0, 2, 1]);
pub const ISP_GW_DC: Mac = Mac([2, 0x53, 0, 0, 3, 1]);
pub const WEB1: Mac = Mac([2, 0x53, 0, 0, 3, 11]);
pub const ALICE: Mac = Mac([2, 0x53, 0, 0, 1, 10]);

/// The bounds the lab is built with, small enough for a fuzzer to reach.
pub const MAC_TABLE: usize = 256;
pub const ARP_CACHE: usize = 64;
pub const ARP_QUEUE: usize = 256 * 1024;
pub const NAT_ENTRIES: usize = 512;
pub const NAT_PER_HOST: usize = 128;
pub const MAX_SOCKETS: usize = 256;
pub const TIME_WAIT: usize = 512;

/// Where frames may be injected.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub alice: PortId,
    pub bob: PortId,
    pub peer: PortId,
    pub web: PortId,
}

pub struct Lab {
    pub sim: Sim,
    pub ports: Ports,
    pub web: Stack,
    /// Frames injected, by port index.
    injected: Vec<u64>,
    out: Vec<Frame>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab").field("now", &self.sim.now()).finish()
    }
}

fn ip(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

/// A dual-stack interface; `ra`: it advertises its prefix for SLAAC.
fn iface(
    name: &str,
    mac: Mac,
    (addr, addr6): (&str, &str),
    dhcp: Option<DhcpConfig>,
    ra: bool,
) -> IfaceConfig {
    let addr6: Ipv6Net = addr6
        .parse()
        .unwrap_or_else(|_| unreachable!("fixed address"));
    IfaceConfig {
        name: name.into(),
        link: Link::Ethernet { mac },
        addr: addr
            .parse()
            .unwrap_or_else(|_| unreachable!("fixed address")),
        addr6: Some(addr6),
        mtu: 1500,
        dhcp,
        ra: ra.then(|| RaConfig::slaac(addr6)),
        dhcp6: ra.then(|| Dhcp6Config {
            first: "2001:db8:1::100".parse().unwrap_or_else(|_| unreachable!()),
            last: "2001:db8:1::1ff".parse().unwrap_or_else(|_| unreachable!()),
            lease: Duration::from_secs(3600),
            dns: Vec::new(),
            domains: Vec::new(),
            reserved: Vec::new(),
            client_rate: DhcpConfig::CLIENT_RATE,
        }),
    }
}

impl Lab {
    pub fn new(seed: u64) -> Lab {
        let limits = RouterLimits {
            neighbours: NeighbourLimits {
                max_entries: ARP_CACHE,
                queue_bytes: ARP_QUEUE,
            },
            icmp_errors_per_sec: 100,
        };
        let switch = || SwitchConfig {
            max_macs: MAC_TABLE,
            ..SwitchConfig::default()
        };
        let mut f = Fabric::new();
        let (home, isp, dc) = (
            f.add_switch("home", switch()),
            f.add_switch("isp", switch()),
            f.add_switch("dc", switch()),
        );
        let trunk = PortConfig {
            mode: switch::PortMode::Trunk {
                native: Some(1),
                allowed: [10, 20].into_iter().collect(),
            },
            mtu: 1500,
            ra_guard: true,
            snooped: true,
        };
        let port = |f: &mut Fabric, name, sw, config, offload| {
            f.add_port(name, sw, config, offload)
                .unwrap_or_else(|_| unreachable!("fresh names"))
        };
        let ports = Ports {
            alice: port(&mut f, "alice", home, trunk, true),
            bob: port(
                &mut f,
                "bob",
                home,
                PortConfig {
                    snooped: true,
                    ..PortConfig::access(1)
                },
                false,
            ),
            peer: port(&mut f, "peer", isp, PortConfig::access(1), false),
            web: port(&mut f, "web1", dc, PortConfig::access(1), false),
        };

        let mut gw = Router::with_limits("home-gw", limits);
        let dhcp = DhcpConfig {
            first: ip([192, 168, 1, 100]),
            last: ip([192, 168, 1, 199]),
            lease: Duration::from_secs(3600),
            dns: vec![ip([198, 51, 100, 53])],
            reserved: vec![ip([192, 168, 1, 10])],
            client_rate: DhcpConfig::CLIENT_RATE,
        };
        gw.add_iface(iface(
            "home",
            HOME_GW,
            ("192.168.1.1/24", "2001:db8:1::1/64"),
            Some(dhcp),
            true,
        ));
        gw.add_iface(iface(
            "isp",
            HOME_GW_ISP,
            ("198.51.100.2/24", "2001:db8:100::2/64"),
            None,
            false,
        ));
        let _ = gw.add_route(
            "0.0.0.0/0".parse().unwrap_or_else(|_| unreachable!()),
            ip([198, 51, 100, 1]).into(),
        );
        let _ = gw.add_route(
            "::/0".parse().unwrap_or_else(|_| unreachable!()),
            "2001:db8:100::1".parse().unwrap_or_else(|_| unreachable!()),
        );
        let mut nat = NatConfig::masquerade(ip([198, 51, 100, 2]));
        nat.max_entries = NAT_ENTRIES;
        nat.max_entries_per_host = NAT_PER_HOST;
        nat.max_ports_per_host = NAT_PER_HOST;
        nat.forwards = vec![
            PortForward {
                proto: Proto::Tcp,
                port: 8080,
                to: SocketAddrV4::new(ip([192, 168, 1, 10]), 80),
            },
            PortForward {
                proto: Proto::Udp,
                port: 16384,
                to: SocketAddrV4::new(ip([192, 168, 1, 10]), 53),
            },
        ];
        gw.set_nat(IfaceId(1), nat);
        gw.set_firewall(
            IfaceId(1),
            FirewallConfig {
                max_entries: NAT_ENTRIES,
                max_entries_per_host: NAT_PER_HOST,
                pinholes: vec![Pinhole {
                    proto: Proto::Udp,
                    port: 53,
                    to: "2001:db8:1::10"
                        .parse()
                        .unwrap_or_else(|_| unreachable!("fixed address")),
                }],
                ..FirewallConfig::default()
            },
        );
        let gw = f.add_router(gw, 2);

        let mut core = Router::with_limits("isp-gw", limits);
        core.add_iface(iface(
            "isp",
            ISP_GW,
            ("198.51.100.1/24", "2001:db8:100::1/64"),
            None,
            false,
        ));
        core.add_iface(iface(
            "dc",
            ISP_GW_DC,
            ("203.0.113.1/24", "2001:db8:113::1/64"),
            None,
            false,
        ));
        let _ = core.add_route(
            "2001:db8:1::/64".parse().unwrap_or_else(|_| unreachable!()),
            "2001:db8:100::2".parse().unwrap_or_else(|_| unreachable!()),
        );
        let core = f.add_router(core, 2);
        for (r, i, sw) in [(gw, 0, home), (gw, 1, isp), (core, 0, isp), (core, 1, dc)] {
            f.link_router(r, IfaceId(i), sw, PortConfig::access(1))
                .unwrap_or_else(|_| unreachable!("fresh links"));
        }

        let mut config = HostConfig::new(
            "web1",
            WEB1,
            "203.0.113.11/24"
                .parse()
                .unwrap_or_else(|_| unreachable!("fixed address")),
            Some(ip([203, 0, 113, 1])),
        );
        config.max_sockets = MAX_SOCKETS;
        config.tcp.time_wait_limit = TIME_WAIT;
        let mut web = Stack::new(config, Instant::ZERO);
        let _ = web.tcp_listen(80, 64);
        let _ = web.udp_bind(7);

        Lab {
            sim: Sim::new(f, seed, LinkParams::default()),
            ports,
            web,
            injected: vec![0; 4],
            out: Vec::new(),
        }
    }

    /// A frame from the (hostile) host on `port`, with a virtio-net header
    /// that may be anything.
    pub fn inject(&mut self, port: PortId, hdr: VnetHdr, frame: Vec<u8>) {
        if let Some(n) = self.injected.get_mut(port.0 as usize) {
            *n += 1;
        }
        self.sim.send_offloaded(port, hdr, frame);
    }

    /// Runs the lab for `d` of virtual time, web1 answering what reaches it.
    pub fn run_for(&mut self, d: Duration) {
        self.sim.run_for(d);
        let now = self.sim.now();
        for r in self.sim.take_received(self.ports.web) {
            self.web.ingress(now, &r.frame, &mut self.out);
        }
        self.web.poll(now, &mut self.out);
        for f in self.out.drain(..) {
            // web1's frames are its own: not counted as injected.
            self.sim
                .send_offloaded(self.ports.web, f.hdr, f.data().to_vec());
        }
        self.sim.run_for(Duration::from_millis(1));
        for p in [self.ports.alice, self.ports.bob, self.ports.peer] {
            self.sim.take_received(p);
        }
    }

    /// Every table within its bound, and the switches' counts of frames
    /// received equal to what the hosts sent; otherwise what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let now = self.sim.now();
        let status = self.sim.fabric().status(now);
        for s in &status.switches {
            if s.mac_table.len() > MAC_TABLE {
                return Err(format!("switch {}: {} MACs", s.name, s.mac_table.len()));
            }
            for p in &s.ports {
                let sent = match p.name.as_str() {
                    "alice" => self.injected[self.ports.alice.0 as usize],
                    "bob" => self.injected[self.ports.bob.0 as usize],
                    "peer" => self.injected[self.ports.peer.0 as usize],
                    _ => continue,
                };
                if p.rx_frames != sent {
                    return Err(format!(
                        "port {}: {sent} sent, {} received",
                        p.name, p.rx_frames
                    ));
                }
                let dropped: u64 = p.drops.values().sum();
                if dropped > p.rx_frames + p.tx_frames {
                    return Err(format!("port {}: more drops than frames", p.name));
                }
            }
        }
        for r in &status.routers {
            let t = &r.arp_table;
            if t.entries > ARP_CACHE || t.queued_bytes > ARP_QUEUE {
                return Err(format!("router {}: {t:?}", r.name));
            }
            if let Some(nat) = &r.nat {
                if nat.table.len() > NAT_ENTRIES {
                    return Err(format!("NAT: {} sessions", nat.table.len()));
                }
            }
            for d in &r.dhcp {
                if d.in_use > d.size as usize {
                    return Err(format!("DHCP: {} leases of {}", d.in_use, d.size));
                }
            }
            if let Some(fw) = &r.firewall {
                if fw.table.len() > NAT_ENTRIES {
                    return Err(format!("firewall: {} sessions", fw.table.len()));
                }
            }
            for d in &r.dhcp6 {
                let range = u128::from(d.last) - u128::from(d.first) + 1;
                if d.in_use as u128 > range {
                    return Err(format!("DHCPv6: {} bindings of {range}", d.in_use));
                }
            }
        }
        let web = self.web.status();
        if web.tcp_connections > MAX_SOCKETS || web.time_wait > TIME_WAIT {
            return Err(format!("web1: {web:?}"));
        }
        Ok(())
    }

    pub fn now(&self) -> Instant {
        self.sim.now()
    }
}
