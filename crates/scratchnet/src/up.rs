//! `scratchnet up`: builds a lab, runs it until a signal, and removes
//! everything it created: on Ctrl-C or SIGTERM, on an error half-way
//! through building, and on a panic. After a SIGKILL, `scratchnet down`
//! does the same from the state file.

use crate::control;
use crate::down;
use crate::netns;
use crate::services::{self, Services};
use crate::state::LabState;
use anyhow::{bail, Context, Result};
use fabric::{DevicePort, Fabric, Runtime};
use router::{
    DhcpConfig, Filtering, IfaceConfig, IfaceId, Link, NatConfig, NeighbourLimits, PortForward,
    Proto, Router, RouterLimits, Timeouts,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use switch::{PortConfig, PortMode, SwitchConfig};
use tokio::signal::unix::{signal, SignalKind};
use topology::{Attachment, HostAddress, NatFiltering, NatSpec, Protocol, RouterSpec, Topology};
use tuntap::{Device, DeviceOptions, Kind};
use wire::Mac;

pub fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "{what} needs root (CAP_NET_ADMIN) to create namespaces and devices: run it with sudo"
        );
    }
    Ok(())
}

pub async fn run(lab: Topology) -> Result<()> {
    let started = std::time::Instant::now();
    require_root("scratchnet up")?;
    preflight(&lab)?;
    // Signals are taken over before anything is created, so that a Ctrl-C
    // during the build also tears down.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;

    let mut guard = Teardown {
        state: LabState::new(&lab.name),
        armed: true,
    };
    guard.state.save()?;
    let (fabric, devices, planned) = build(&lab, &mut guard.state)?;
    let endpoints = services::endpoints(&planned);
    let runtime = Runtime::start(fabric, devices, endpoints);
    let mut failures = runtime
        .failures()
        .context("the runtime's failures were taken")?;
    let services = services::start(planned, &runtime);
    let running = Arc::new(Lab { runtime, services });
    let server = control::serve(&lab.name, Arc::downgrade(&running))?;
    start_dhcp_clients(&lab).await?;
    for note in notes(&lab) {
        eprintln!("scratchnet: note: {note}");
    }
    println!(
        "ready: lab `{}` with {} hosts on {} switches, built in {:.2} s (status: scratchnet status; stop: Ctrl-C)",
        lab.name,
        lab.hosts.len(),
        lab.switches.len(),
        started.elapsed().as_secs_f64()
    );

    let mut failed = None;
    let why = tokio::select! {
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
        _ = sighup.recv() => "SIGHUP",
        Some(f) = failures.recv() => {
            tracing::error!("{f}: the lab cannot go on half working");
            failed = Some(f);
            "a failed task"
        }
    };
    tracing::info!("{why}: stopping lab `{}`", lab.name);
    server.abort();
    let _ = server.await;
    match Arc::try_unwrap(running) {
        Ok(lab) => {
            lab.services.stop().await;
            lab.runtime.shutdown().await;
        }
        Err(lab) => drop(lab),
    }
    guard.armed = false;
    down::cleanup(&guard.state)?;
    println!(
        "stopped: lab `{}` removed ({} namespaces)",
        lab.name,
        guard.state.namespaces.len()
    );
    match failed {
        Some(f) => bail!("lab `{}` stopped because {f} (see the log above)", lab.name),
        None => Ok(()),
    }
}

/// Refuses to start over something that exists, before creating anything.
fn preflight(lab: &Topology) -> Result<()> {
    if !std::path::Path::new("/dev/net/tun").exists() {
        bail!("/dev/net/tun is missing: load the tun module (modprobe tun), or in a container pass the device in (--device /dev/net/tun)");
    }
    if let Some(state) = LabState::load(&lab.name)? {
        if state.is_running() {
            bail!("lab `{}` is already running (pid {}): stop it first, or give this lab another `name`", lab.name, state.pid);
        }
        eprintln!(
            "scratchnet: note: removing what a crashed run of lab `{}` (pid {}) left behind",
            lab.name, state.pid
        );
        down::cleanup(&state)?;
    }
    for h in &lab.hosts {
        let resolv = netns::etc_dir(&h.name).join("resolv.conf");
        if resolv.exists() {
            bail!(
                "{} already exists and is not this lab's: scratchnet would overwrite it; move it away or rename host `{}` in {}",
                resolv.display(),
                h.name,
                lab.file
            );
        }
        if netns::exists(&h.name) {
            bail!(
                "network namespace `{}` already exists and is not this lab's: remove it (ip netns delete {}) or rename host `{}` in {}",
                h.name,
                h.name,
                h.name,
                lab.file
            );
        }
    }
    Ok(())
}

/// Creates the fabric: switches, routers (with their TUN links to the
/// root namespace) and, for each host, its namespace and TAP. Records each
/// namespace in the state file before creating it.
fn build(
    lab: &Topology,
    state: &mut LabState,
) -> Result<(Fabric, Vec<DevicePort>, Vec<services::Planned>)> {
    let mut fabric = Fabric::new();
    let mut switch_ids = HashMap::new();
    for s in &lab.switches {
        let config = SwitchConfig {
            ageing: s.ageing,
            max_macs: s.mac_table_size,
        };
        switch_ids.insert(s.name.as_str(), fabric.add_switch(&s.name, config));
    }
    let mut devices = Vec::new();
    for r in &lab.routers {
        build_router(lab, r, &mut fabric, &switch_ids, &mut devices)
            .with_context(|| format!("cannot build router `{}`", r.name))?;
    }
    for h in &lab.hosts {
        state.namespaces.push(h.name.clone());
        if !netns::etc_dir(&h.name).exists() {
            state.etc_dirs.push(h.name.clone());
        }
        state.save()?;
        netns::add(&h.name)?;
        let options = DeviceOptions {
            kind: Kind::Tap,
            offload: h.offload,
            mtu: h.mtu,
            mac: Some(h.mac),
            txqueuelen: h.txqueuelen,
        };
        let device = Device::open(&options)
            .with_context(|| format!("cannot create a TAP device for host `{}`", h.name))?;
        netns::configure_host(h, device.name())
            .with_context(|| format!("cannot set up host `{}`", h.name))?;
        let switch = switch_ids[h.switch.as_str()];
        let mode = if h.tagged_vlans.is_empty() {
            PortMode::Access { vlan: h.vlan }
        } else {
            PortMode::Trunk {
                native: Some(h.vlan),
                allowed: h.tagged_vlans.iter().copied().collect(),
            }
        };
        let port = fabric.add_port(&h.name, switch, PortConfig { mode, mtu: h.mtu }, h.offload)?;
        devices.push(DevicePort { port, device });
    }
    let planned = services::plan(lab, &mut fabric, &switch_ids)?;
    Ok((fabric, devices, planned))
}

/// A router's interfaces: on switches (MAC derived from `router.switch`)
/// or TUN links, whose root-namespace end gets the peer address and
/// routes to the lab. The port of a TUN link is named `router.tun`.
fn build_router(
    lab: &Topology,
    r: &RouterSpec,
    fabric: &mut Fabric,
    switch_ids: &HashMap<&str, fabric::SwitchId>,
    devices: &mut Vec<DevicePort>,
) -> Result<()> {
    let limits = RouterLimits {
        neighbours: NeighbourLimits {
            max_entries: r.arp_cache_size,
            queue_bytes: r.arp_queue_bytes,
        },
        icmp_errors_per_sec: r.icmp_errors_per_sec,
    };
    let mut router = Router::with_limits(&r.name, limits);
    for i in &r.interfaces {
        let (name, link) = match &i.attachment {
            Attachment::Switch(sw) => (
                sw.clone(),
                Link::Ethernet {
                    mac: Mac::local_from(&format!("{}.{sw}", r.name)),
                },
            ),
            Attachment::Tun { name, .. } => (name.clone(), Link::PointToPoint),
        };
        let dhcp = match &i.attachment {
            Attachment::Switch(sw) => r.dhcp.iter().find(|d| d.switch == *sw).map(|d| DhcpConfig {
                first: d.first,
                last: d.last,
                lease: d.lease,
                dns: d
                    .dns
                    .iter()
                    .filter_map(|a| match a {
                        IpAddr::V4(v4) => Some(*v4),
                        IpAddr::V6(_) => None,
                    })
                    .collect(),
                reserved: lab.static_addresses_on(sw),
                client_rate: d.requests_per_sec,
            }),
            Attachment::Tun { .. } => None,
        };
        router.add_iface(IfaceConfig {
            name,
            link,
            addr: i.address,
            mtu: i.mtu,
            dhcp,
        });
    }
    for rt in &r.routes {
        router.add_route(rt.to, rt.via)?;
    }
    if let Some(nat) = &r.nat {
        let outside = r
            .interfaces
            .iter()
            .position(|i| i.attachment == Attachment::Switch(nat.outside.clone()));
        if let Some(n) = outside {
            router.set_nat(
                IfaceId(n as u32),
                nat_config(nat, r, r.interfaces[n].address.addr()),
            );
        }
    }

    let id = fabric.add_router(router, r.interfaces.len());
    for (n, i) in r.interfaces.iter().enumerate() {
        let iface = IfaceId(n as u32);
        match &i.attachment {
            Attachment::Switch(sw) => {
                let config = PortConfig {
                    mode: PortMode::Access { vlan: 1 },
                    mtu: i.mtu,
                };
                fabric.link_router(id, iface, switch_ids[sw.as_str()], config)?;
            }
            Attachment::Tun {
                name,
                peer,
                host_routes,
            } => {
                let options = DeviceOptions {
                    kind: Kind::Tun,
                    offload: true,
                    mtu: i.mtu,
                    mac: None,
                    txqueuelen: 10_000,
                };
                let device = Device::open(&options).context("cannot create a TUN device")?;
                let host_addr = format!("{peer}/{}", i.address.prefix_len());
                let routes: Vec<String> = host_routes.iter().map(|n| n.to_string()).collect();
                netns::configure_host_tun(device.name(), &host_addr, &routes)?;
                let port =
                    fabric.add_router_port(&format!("{}.{name}", r.name), id, iface, true)?;
                devices.push(DevicePort { port, device });
            }
        }
    }
    Ok(())
}

fn nat_config(nat: &NatSpec, r: &RouterSpec, external: std::net::Ipv4Addr) -> NatConfig {
    NatConfig {
        external,
        ports: nat.ports.0..=nat.ports.1,
        filtering: match nat.filtering {
            NatFiltering::EndpointIndependent => Filtering::EndpointIndependent,
            NatFiltering::AddressDependent => Filtering::AddressDependent,
            NatFiltering::AddressAndPortDependent => Filtering::AddressAndPortDependent,
        },
        max_entries: nat.max_entries,
        max_entries_per_host: nat.max_entries_per_host,
        max_ports_per_host: nat.max_ports_per_host,
        timeouts: Timeouts {
            udp: nat.udp_timeout,
            tcp_established: nat.tcp_established_timeout,
            tcp_transitory: nat.tcp_transitory_timeout,
            icmp: nat.icmp_timeout,
        },
        forwards: r
            .forwards
            .iter()
            .map(|f| PortForward {
                proto: match f.protocol {
                    Protocol::Tcp => Proto::Tcp,
                    Protocol::Udp => Proto::Udp,
                },
                port: f.port,
                to: f.to,
            })
            .collect(),
    }
}

/// Runs the DHCP client of every DHCP host, all at once, and waits for
/// their leases.
async fn start_dhcp_clients(lab: &Topology) -> Result<()> {
    let dir = crate::state::lab_dir(&lab.name);
    let clients: Vec<_> = lab
        .hosts
        .iter()
        .filter(|h| h.address == HostAddress::Dhcp)
        .map(|h| {
            let (ns, dir) = (h.name.clone(), dir.clone());
            tokio::task::spawn_blocking(move || netns::run_dhclient(&ns, &dir))
        })
        .collect();
    for c in clients {
        c.await??;
    }
    Ok(())
}

/// What this version does not build yet, and settings below what the
/// RFCs ask, said plainly.
fn notes(lab: &Topology) -> Vec<String> {
    let mut notes = Vec::new();
    for r in &lab.routers {
        let Some(n) = &r.nat else { continue };
        let minimums = [
            (
                "udp_timeout_secs",
                n.udp_timeout.as_secs(),
                120,
                "RFC 4787 REQ-5",
            ),
            (
                "tcp_established_timeout_secs",
                n.tcp_established_timeout.as_secs(),
                7440,
                "RFC 5382 REQ-5",
            ),
            (
                "tcp_transitory_timeout_secs",
                n.tcp_transitory_timeout.as_secs(),
                240,
                "RFC 5382 REQ-5",
            ),
            (
                "icmp_timeout_secs",
                n.icmp_timeout.as_secs(),
                60,
                "RFC 5508",
            ),
        ];
        for (key, secs, min, rfc) in minimums.into_iter().filter(|(_, s, m, _)| s < m) {
            notes.push(format!(
                "router `{}`: nat.{key} = {secs} is below the {min} s that {rfc} asks for",
                r.name
            ));
        }
    }
    for s in lab.services.iter().filter(|s| !services::is_built(s.kind)) {
        notes.push(format!(
            "service `{}` ({}) is not built yet: this version runs http and echo services",
            s.name,
            s.kind.name()
        ));
    }
    notes
}

/// A running lab: the fabric and the service hosts on it.
#[derive(Debug)]
pub struct Lab {
    pub runtime: Runtime,
    pub services: Services,
}

/// Removes what was created if the build fails or panics half-way.
struct Teardown {
    state: LabState,
    armed: bool,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = down::cleanup(&self.state) {
                eprintln!("scratchnet: {e:#}");
            }
        }
    }
}
