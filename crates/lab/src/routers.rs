//! A topology's routers in the fabric: interfaces of both families,
//! routes, DHCP servers (whose pools leave the segment's fixed addresses
//! alone), router advertisements, NAT and port forwards, and the bounds
//! of their tables.

use crate::{LabError, TunPort};
use fabric::{Fabric, SwitchId};
use ipnet::Ipv6Net;
use router::{
    Dhcp6Config, DhcpConfig, Filtering, FirewallConfig, IfaceConfig, IfaceId, Link, Nat64Config,
    NatConfig, NeighbourLimits, Pinhole, PortForward, Proto, RaConfig, Router, RouterLimits,
    Timeouts,
};
use std::net::{IpAddr, Ipv4Addr};
use switch::{PortConfig, PortMode};
use topology::{
    Attachment, Firewall6Spec, NatFiltering, NatSpec, Protocol, RaSpec, RouterSpec, Topology,
};
use wire::Mac;

/// Adds router `r` to the fabric, its interfaces plugged into their
/// switches; a TUN interface becomes an L3 port listed in `tuns`.
pub(crate) fn add(
    lab: &Topology,
    r: &RouterSpec,
    fabric: &mut Fabric,
    switch: &impl Fn(&str) -> Result<SwitchId, LabError>,
    tuns: &mut Vec<TunPort>,
) -> Result<(), LabError> {
    let limits = RouterLimits {
        neighbours: NeighbourLimits {
            max_entries: r.arp_cache_size,
            queue_bytes: r.arp_queue_bytes,
        },
        icmp_errors_per_sec: r.icmp_errors_per_sec,
    };
    let mut router = Router::with_limits(&r.name, limits);
    for i in &r.interfaces {
        let dhcp6 = match &i.attachment {
            Attachment::Switch(sw) => {
                r.dhcp6
                    .iter()
                    .find(|d| d.switch == *sw)
                    .map(|d| Dhcp6Config {
                        first: d.first,
                        last: d.last,
                        lease: d.lease,
                        dns: d.dns.clone(),
                        domains: d.domains.clone(),
                        reserved: lab.static_addresses6_on(sw),
                        client_rate: d.requests_per_sec,
                    })
            }
            Attachment::Tun { .. } => None,
        };
        let (name, link, dhcp) = match &i.attachment {
            Attachment::Switch(sw) => (
                sw.clone(),
                Link::Ethernet {
                    mac: Mac::local_from(&format!("{}.{sw}", r.name)),
                },
                r.dhcp.iter().find(|d| d.switch == *sw).map(|d| DhcpConfig {
                    first: d.first,
                    last: d.last,
                    lease: d.lease,
                    dns: d.dns.iter().filter_map(v4).collect(),
                    reserved: lab.static_addresses_on(sw),
                    client_rate: d.requests_per_sec,
                }),
            ),
            Attachment::Tun { name, .. } => (name.clone(), Link::PointToPoint, None),
        };
        router.add_iface(IfaceConfig {
            name,
            link,
            addr: i.address,
            addr6: i.address6,
            mtu: i.mtu,
            dhcp,
            ra: i
                .ra
                .as_ref()
                .zip(i.address6)
                .map(|(ra, prefix)| ra_config(ra, prefix)),
            dhcp6,
        });
    }
    for rt in &r.routes {
        router
            .add_route(rt.to, rt.via)
            .map_err(|source| LabError::Route {
                router: r.name.clone(),
                source,
            })?;
    }
    if let Some(nat) = &r.nat {
        let outside = r
            .interfaces
            .iter()
            .position(|i| i.attachment == Attachment::Switch(nat.outside.clone()));
        if let Some(n) = outside {
            let external = r.interfaces[n].address.addr();
            router.set_nat(IfaceId(n as u32), nat_config(nat, r, external));
        }
    }

    if let Some(n) = &r.nat64 {
        let pool = r
            .interfaces
            .iter()
            .find(|i| i.attachment == Attachment::Switch(n.outside.clone()))
            .map(|i| i.address.addr());
        if let Some(pool) = pool {
            router.set_nat64(Nat64Config {
                prefix: n.prefix,
                pool,
                max_entries: n.max_entries,
                timeouts: Timeouts::default(),
            });
        }
    }
    if let Some(fw) = &r.firewall6 {
        let outside = r
            .interfaces
            .iter()
            .position(|i| i.attachment == Attachment::Switch(fw.outside.clone()));
        if let Some(n) = outside {
            router.set_firewall(IfaceId(n as u32), firewall_config(fw));
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
                    ra_guard: false,
                    snooped: false,
                };
                let port = fabric.link_router(id, iface, switch(sw)?, config)?;
                crate::impair(fabric, port, &i.impair)?;
            }
            Attachment::Tun {
                name,
                peer,
                peer6,
                host_routes,
            } => {
                let port_name = format!("{}.{name}", r.name);
                let port = fabric.add_router_port(&port_name, id, iface, true)?;
                crate::impair(fabric, port, &i.impair)?;
                tuns.push(TunPort {
                    name: port_name,
                    peer: *peer,
                    prefix_len: i.address.prefix_len(),
                    peer6: peer6.zip(i.address6.map(|a| a.prefix_len())),
                    host_routes: host_routes.clone(),
                    mtu: i.mtu,
                    port,
                });
            }
        }
    }
    Ok(())
}

fn proto(p: Protocol) -> Proto {
    match p {
        Protocol::Tcp => Proto::Tcp,
        Protocol::Udp => Proto::Udp,
    }
}

fn firewall_config(fw: &Firewall6Spec) -> FirewallConfig {
    FirewallConfig {
        max_entries: fw.max_entries,
        max_entries_per_host: fw.max_entries_per_host,
        pinholes: fw
            .pinholes
            .iter()
            .map(|p| Pinhole {
                proto: proto(p.protocol),
                port: p.port,
                to: p.to,
            })
            .collect(),
        ..FirewallConfig::default()
    }
}

/// What a router interface's advertisements say: its own prefix.
fn ra_config(ra: &RaSpec, prefix: Ipv6Net) -> RaConfig {
    RaConfig {
        autonomous: ra.slaac,
        managed: ra.managed,
        other: ra.other,
        rdnss: ra.rdnss.clone(),
        dnssl: ra.dnssl.clone(),
        interval: ra.interval,
        ..RaConfig::slaac(prefix)
    }
}

fn v4(a: &IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    }
}

fn nat_config(nat: &NatSpec, r: &RouterSpec, external: Ipv4Addr) -> NatConfig {
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
                proto: proto(f.protocol),
                port: f.port,
                to: f.to,
            })
            .collect(),
    }
}
