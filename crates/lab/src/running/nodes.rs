//! What a running lab is made of, for `scratchnet inspect` and the web
//! page: every host, service host and router with its interfaces,
//! addresses and MACs ([`nodes`]), and the lab as a graph of nodes and
//! links with each link's state ([`graph`]).

use super::LinkState;
use fabric::FabricStatus;
use topology::{Attachment, HostAddress, Topology};
use wire::Mac;

/// One node of a running lab.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Node {
    pub name: String,
    /// `host` (a namespace), `service` (in-process) or `router`.
    pub kind: String,
    /// What a service runs (`http`, `dns-resolver`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub interfaces: Vec<Interface>,
    /// A router's NAT: the switch of its outside interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_outside: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Interface {
    /// `eth0` in a host; the switch or TUN name on a router.
    pub name: String,
    /// The switch it is plugged into, or `tun` for a TUN link.
    pub link: String,
    /// With its prefix; none for a DHCP host without a lease yet.
    pub address: Option<String>,
    /// Leased by DHCP.
    pub dhcp: bool,
    /// The IPv6 address with its prefix, if it has one the lab knows (a
    /// static one, or what SLAAC makes of the segment's prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<String>,
    pub mac: Option<Mac>,
}

/// Every node of `topo`, with the addresses DHCP hosts hold in `status`.
pub fn nodes(topo: &Topology, status: &FabricStatus) -> Vec<Node> {
    let leases: Vec<&router::LeaseRow> = status
        .routers
        .iter()
        .flat_map(|r| &r.leases)
        .filter(|l| l.state == "bound")
        .collect();
    let leases6: Vec<&router::Lease6Row> = status
        .routers
        .iter()
        .flat_map(|r| &r.leases6)
        .filter(|l| l.state == "bound")
        .collect();
    let mut nodes = Vec::new();
    for h in &topo.hosts {
        let (address, dhcp) = match h.address {
            HostAddress::Static(net) => (Some(net.to_string()), false),
            HostAddress::Dhcp => {
                let lease = leases.iter().find(|l| l.mac == h.mac);
                let prefix = topo
                    .switch(&h.switch)
                    .and_then(|s| s.subnet)
                    .map_or(24, |n| n.prefix_len());
                (lease.map(|l| format!("{}/{prefix}", l.ip)), true)
            }
            HostAddress::None => (None, false),
        };
        nodes.push(Node {
            name: h.name.clone(),
            kind: "host".into(),
            service: None,
            nat_outside: None,
            interfaces: vec![Interface {
                name: "eth0".into(),
                link: h.switch.clone(),
                address,
                dhcp,
                address6: topo.host_address6(h).map(|n| n.to_string()).or_else(|| {
                    leases6
                        .iter()
                        .find(|l| l.mac == h.mac)
                        .map(|l| format!("{}/128 (dhcp6)", l.ip))
                }),
                mac: Some(h.mac),
            }],
        });
    }
    for s in &topo.services {
        nodes.push(Node {
            name: s.name.clone(),
            kind: "service".into(),
            service: Some(s.kind().name().to_owned()),
            nat_outside: None,
            interfaces: vec![Interface {
                name: "eth0".into(),
                link: s.switch.clone(),
                address: Some(s.address.to_string()),
                dhcp: false,
                address6: s.address6.map(|a| a.to_string()),
                mac: Some(Mac::local_from(&s.name)),
            }],
        });
    }
    for r in &topo.routers {
        let interfaces = r
            .interfaces
            .iter()
            .map(|i| match &i.attachment {
                Attachment::Switch(sw) => Interface {
                    name: sw.clone(),
                    link: sw.clone(),
                    address: Some(i.address.to_string()),
                    dhcp: false,
                    address6: i.address6.map(|a| a.to_string()),
                    mac: Some(Mac::local_from(&format!("{}.{sw}", r.name))),
                },
                Attachment::Tun { name, .. } => Interface {
                    name: name.clone(),
                    link: "tun".into(),
                    address: Some(i.address.to_string()),
                    dhcp: false,
                    address6: i.address6.map(|a| a.to_string()),
                    mac: None,
                },
            })
            .collect();
        nodes.push(Node {
            name: r.name.clone(),
            kind: "router".into(),
            service: None,
            interfaces,
            nat_outside: r.nat.as_ref().map(|n| n.outside.clone()),
        });
    }
    nodes
}

/// The lab as a graph: its nodes (switches, hosts, service hosts,
/// routers, the machine and tunnel peers) and its links, one per port,
/// each with the link's state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Graph {
    pub lab: String,
    pub nodes: Vec<GraphNode>,
    pub links: Vec<GraphLink>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct GraphNode {
    pub name: String,
    /// switch, host, service, router, machine or peer.
    pub kind: String,
    /// What a service runs; a switch's subnets; a node's addresses.
    pub detail: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct GraphLink {
    /// The port, whose counters are the link's.
    pub port: String,
    /// The node on the port's far side and the switch (or, for a TUN or
    /// tunnel, the machine or peer) it is plugged into.
    pub node: String,
    pub to: String,
    #[serde(flatten)]
    pub state: Option<LinkState>,
}

/// The graph of `topo` with the links as `status` holds them.
pub fn graph(topo: &Topology, status: &FabricStatus) -> Graph {
    let mut drawn: Vec<GraphNode> = topo
        .switches
        .iter()
        .map(|s| GraphNode {
            name: s.name.clone(),
            kind: "switch".into(),
            detail: s
                .subnet
                .iter()
                .map(ToString::to_string)
                .chain(s.subnet6.iter().map(ToString::to_string))
                .collect(),
        })
        .collect();
    for n in nodes(topo, status) {
        let mut detail: Vec<String> = n.service.iter().cloned().collect();
        detail.extend(n.interfaces.iter().filter_map(|i| i.address.clone()));
        drawn.push(GraphNode {
            name: n.name,
            kind: n.kind,
            detail,
        });
    }
    let mut links = Vec::new();
    for sw in &status.switches {
        for p in &sw.ports {
            let owner = p.name.split_once('.').map_or(p.name.as_str(), |(r, _)| r);
            links.push((p, owner.to_owned(), sw.name.clone()));
        }
    }
    for p in &status.l3_ports {
        // `ROUTER.TUN`: the router's uplink to the machine (or a peer).
        let (owner, dev) = p.name.split_once('.').unwrap_or((&p.name, "machine"));
        let far = if dev == "host" { "machine" } else { dev };
        links.push((p, owner.to_owned(), far.to_owned()));
    }
    for (_, a, b) in &links {
        for end in [a, b] {
            if !drawn.iter().any(|n| &n.name == end) {
                let kind = if end == "machine" { "machine" } else { "peer" };
                drawn.push(GraphNode {
                    name: end.clone(),
                    kind: kind.into(),
                    detail: Vec::new(),
                });
            }
        }
    }
    let links = links
        .into_iter()
        .map(|(p, node, to)| GraphLink {
            state: p.link.as_ref().map(|l| LinkState::of(&p.name, l)),
            port: p.name.clone(),
            node,
            to,
        })
        .collect();
    Graph {
        lab: topo.name.clone(),
        nodes: drawn,
        links,
    }
}
