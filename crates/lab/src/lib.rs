//! Building a lab from a topology: its fabric (switches, routers, ports)
//! and its service hosts, with the services on them.
//!
//! [`build`] turns a [`Topology`] into a [`Blueprint`]: the whole fabric,
//! plus what the caller must provide at the edges (a TAP for each
//! namespace host, a TUN for each router link to the machine) and the
//! service hosts, ready to start. It creates no namespace, opens no device
//! and reads no clock: the `scratchnet` binary owns those, and a test can
//! drive the same fabric in the simulator.
//!
//! A service kind is one module in [`kinds`] implementing [`Service`],
//! registered in [`kinds::ALL`]; nothing else names kinds. [`sim::LabSim`]
//! runs a whole lab, services included, on the simulator's virtual clock.

pub mod kinds;
pub mod pki;
mod probe;
mod reverse;
mod routers;
pub mod running;
mod services;
pub mod sim;
mod view;

pub use kinds::Service;
pub use probe::ProbeError;
pub use reverse::hosts_file;
pub use running::RunningLab;
pub use services::{endpoints, PlannedService, Services};
pub use view::LabView;

use fabric::{Fabric, FabricError, PortId, SwitchId};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use switch::{PortConfig, PortMode, SwitchConfig};
use topology::{HostSpec, Topology};

/// Why a lab cannot be built (a topology that passed validation builds;
/// these are internal inconsistencies, reported rather than panicking).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    #[error(transparent)]
    Fabric(#[from] FabricError),
    #[error("router `{router}`: {source}")]
    Route {
        router: String,
        source: router::UnreachableNextHop,
    },
    #[error("`{0}` names no switch")]
    NoSuchSwitch(String),
    #[error("cannot start the simulator's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot make the lab's certificate authority: {0}")]
    Pki(String),
    #[error("service `{service}` cannot start: {source}")]
    Service {
        service: String,
        source: std::io::Error,
    },
}

/// A namespace host's port: the caller puts a TAP with the host's MAC,
/// MTU and offloads behind it.
#[derive(Debug, Clone)]
pub struct HostPort {
    pub spec: HostSpec,
    pub port: PortId,
}

/// A router's link to the machine: the caller opens a TUN, gives its end
/// `peer/prefix` and routes `host_routes` through it.
#[derive(Debug, Clone)]
pub struct TunPort {
    /// The port's name, `router.tun`.
    pub name: String,
    pub peer: Ipv4Addr,
    pub prefix_len: u8,
    /// The machine's IPv6 address on the link and the prefix length.
    pub peer6: Option<(std::net::Ipv6Addr, u8)>,
    pub host_routes: Vec<ipnet::IpNet>,
    pub mtu: u16,
    pub port: PortId,
}

/// A VXLAN tunnel's port on its switch; the binary opens its socket.
#[derive(Debug, Clone)]
pub struct TunnelPort {
    pub spec: topology::TunnelSpec,
    pub port: PortId,
}

/// A lab, built and not yet running.
#[derive(Debug)]
pub struct Blueprint {
    pub fabric: Fabric,
    pub hosts: Vec<HostPort>,
    pub tuns: Vec<TunPort>,
    pub tunnels: Vec<TunnelPort>,
    pub services: Vec<PlannedService>,
    pub view: LabView,
}

/// A certificate authority for the lab, if a service speaks TLS.
fn lab_ca(lab: &Topology) -> Result<Option<pki::SharedCa>, LabError> {
    let tls = lab.services.iter().any(|s| s.tls_port().is_some());
    if !tls {
        return Ok(None);
    }
    // The CA may sign for nothing but what the lab's TLS services are
    // named and addressed (RFC 5280 name constraints), so that trusting
    // it trusts nothing outside the lab.
    let view = LabView::new(lab, None);
    let mut names = Vec::new();
    let mut addrs = Vec::new();
    for s in &lab.services {
        if s.tls_port().is_some() {
            let own = s.addresses();
            names.extend(own.iter().flat_map(|a| view.names_of(*a)));
            names.push(s.name.clone());
            addrs.extend(own);
        }
    }
    let ca = pki::LabCa::new(&lab.name, &names, &addrs, std::time::SystemTime::now())
        .map_err(|e| LabError::Pki(e.to_string()))?;
    Ok(Some(std::sync::Arc::new(ca)))
}

/// Gives `port` the link its topology entry describes, if not a perfect one.
fn impair(fabric: &mut Fabric, port: PortId, imp: &wire::Impairment) -> Result<(), LabError> {
    if !imp.is_none() {
        fabric.set_link(port, *imp, true)?;
    }
    Ok(())
}

/// Builds the lab of a validated topology.
pub fn build(lab: &Topology) -> Result<Blueprint, LabError> {
    let mut fabric = Fabric::new();
    fabric.set_seed(lab.seed);
    let mut switches = HashMap::new();
    for s in &lab.switches {
        let config = SwitchConfig {
            ageing: s.ageing,
            max_macs: s.mac_table_size,
            snooping: switch::SnoopConfig {
                enabled: s.multicast_snooping,
                querier_mac: wire::Mac::local_from(&format!("switch {}", s.name)),
                ..switch::SnoopConfig::default()
            },
        };
        switches.insert(s.name.clone(), fabric.add_switch(&s.name, config));
    }
    let mut tunnels = Vec::new();
    for s in &lab.switches {
        for t in &s.tunnels {
            // Untagged frames of VLAN 1 cross, as on a Linux vxlan device
            // enslaved to a bridge.
            let config = PortConfig {
                mode: PortMode::Access { vlan: 1 },
                mtu: s.mtu,
                ra_guard: false,
                snooped: false,
            };
            let Some(&sw) = switches.get(&s.name) else {
                continue;
            };
            let port = fabric.add_port(&t.port_name, sw, config, false)?;
            tunnels.push(TunnelPort {
                spec: t.clone(),
                port,
            });
        }
    }
    let switch = |name: &str| -> Result<SwitchId, LabError> {
        switches
            .get(name)
            .copied()
            .ok_or_else(|| LabError::NoSuchSwitch(name.to_owned()))
    };
    let mut tuns = Vec::new();
    for r in &lab.routers {
        routers::add(lab, r, &mut fabric, &switch, &mut tuns)?;
    }
    let mut hosts = Vec::new();
    for h in &lab.hosts {
        let mode = if h.tagged_vlans.is_empty() {
            PortMode::Access { vlan: h.vlan }
        } else {
            PortMode::Trunk {
                native: Some(h.vlan),
                allowed: h.tagged_vlans.iter().copied().collect(),
            }
        };
        let config = PortConfig {
            mode,
            mtu: h.mtu,
            ra_guard: true,
            snooped: true,
        };
        let port = fabric.add_port(&h.name, switch(&h.switch)?, config, h.offload)?;
        impair(&mut fabric, port, &h.impair)?;
        hosts.push(HostPort {
            spec: h.clone(),
            port,
        });
    }
    let services = services::plan(lab, &mut fabric, &switch)?;
    Ok(Blueprint {
        fabric,
        hosts,
        tuns,
        tunnels,
        services,
        view: LabView::new(lab, lab_ca(lab)?),
    })
}
