//! `scratchnet inspect` and `scratchnet pingall`: what a running lab is
//! made of — every host, service host and router, its interfaces,
//! addresses and MACs — and which hosts reach which.
//!
//! The lab answers an `inspect` request from its topology and its routers'
//! leases ([`nodes`]); the client prints it, or pings every pair.

use crate::up::Lab;
use anyhow::{bail, Result};
use std::fmt::Write;
use topology::{Attachment, HostAddress};
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

/// Every node of `lab`, as built, with the addresses DHCP hosts hold now.
pub fn nodes(lab: &Lab) -> Vec<Node> {
    let topo = lab.view.topology();
    let status = lab.runtime.status();
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

/// The nodes as a table: one line per interface.
pub fn render(lab: &str, pid: u64, nodes: &[Node]) -> String {
    let mut out = format!("lab {lab} (pid {pid})\n");
    let _ = writeln!(
        out,
        "  {:<12} {:<27} {:<16} {:<24} mac",
        "node", "kind", "interface", "address"
    );
    for n in nodes {
        let kind = match &n.service {
            Some(s) => format!("service ({s})"),
            None => n.kind.clone(),
        };
        for (i, iface) in n.interfaces.iter().enumerate() {
            let (name, kind) = if i == 0 {
                (n.name.as_str(), kind.as_str())
            } else {
                ("", "")
            };
            let where_ = if iface.name == iface.link {
                iface.name.clone()
            } else {
                format!("{} ({})", iface.name, iface.link)
            };
            let address = match (&iface.address, iface.dhcp) {
                (Some(a), true) => format!("{a} (dhcp)"),
                (Some(a), false) => a.clone(),
                (None, _) => "(no lease yet)".into(),
            };
            let mac = iface.mac.map_or("-".to_owned(), |m| m.to_string());
            let _ = writeln!(
                out,
                "  {name:<12} {kind:<27} {where_:<16} {address:<24} {mac}"
            );
            if let Some(a6) = &iface.address6 {
                let _ = writeln!(out, "  {:<12} {:<27} {:<16} {a6}", "", "", "");
            }
        }
    }
    out
}

/// Whether each namespace host reaches each host and service host, by
/// name: one `ping -c 1 -W 1` per pair, all at once; then the same over
/// IPv6 between the nodes that have an IPv6 address.
pub fn pingall(nodes: &[Node]) -> Result<String> {
    let v4 = |i: &Interface| i.address.clone();
    let v6 = |i: &Interface| i.address6.clone();
    if !nodes.iter().any(|n| n.kind == "host") {
        bail!("the lab has no host to ping from (service hosts have no namespace)");
    }
    let mut out = matrix(nodes, "", &v4)?;
    if nodes
        .iter()
        .any(|n| n.kind == "host" && n.interfaces.iter().any(|i| i.address6.is_some()))
    {
        out.push('\n');
        out.push_str(&matrix(nodes, "-6", &v6)?);
    }
    Ok(out)
}

/// One family's pings: `flag` is ping's family option, `address` picks
/// the interface's address of that family.
fn matrix(
    nodes: &[Node],
    flag: &str,
    address: &dyn Fn(&Interface) -> Option<String>,
) -> Result<String> {
    let address = |n: &Node| {
        n.interfaces
            .first()
            .and_then(address)
            .and_then(|a| a.split('/').next().map(str::to_owned))
    };
    // Every host pings over IPv4 (a DHCP host without a lease shows as
    // unreachable); over IPv6, the hosts that have an address.
    let sources: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.kind == "host" && (flag.is_empty() || address(n).is_some()))
        .collect();
    let targets: Vec<(&Node, String)> = nodes
        .iter()
        .filter(|n| n.kind != "router")
        .filter_map(|n| Some((n, address(n)?)))
        .collect();
    let mut pings = Vec::new();
    for s in &sources {
        for (t, addr) in &targets {
            if t.name == s.name {
                continue;
            }
            let mut cmd = std::process::Command::new("ip");
            cmd.args(["netns", "exec", &s.name, "ping"]);
            if !flag.is_empty() {
                cmd.arg(flag);
            }
            let child = cmd
                .args(["-n", "-q", "-c", "1", "-W", "1", addr])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()?;
            pings.push((s.name.clone(), t.name.clone(), child));
        }
    }
    let mut reached = std::collections::HashSet::new();
    let (mut ok, total) = (0, pings.len());
    for (s, t, mut child) in pings {
        if child.wait()?.success() {
            reached.insert((s, t));
            ok += 1;
        }
    }
    let width = targets
        .iter()
        .map(|(t, _)| t.name.len())
        .chain(sources.iter().map(|s| s.name.len()))
        .max()
        .unwrap_or(4)
        .max(4);
    let family = if flag.is_empty() { "" } else { " over IPv6" };
    let mut out = format!(
        "pingall{family}: each host pings each host and service host once (ping {flag}{}-c 1 -W 1)\n{:<width$}",
        if flag.is_empty() { "" } else { " " },
        "from\\to"
    );
    for (t, _) in &targets {
        let _ = write!(out, " {:>width$}", t.name);
    }
    out.push('\n');
    for s in &sources {
        let _ = write!(out, "{:<width$}", s.name);
        for (t, _) in &targets {
            let mark = if t.name == s.name {
                "-"
            } else if reached.contains(&(s.name.clone(), t.name.clone())) {
                "ok"
            } else {
                "X"
            };
            let _ = write!(out, " {mark:>width$}");
        }
        out.push('\n');
    }
    let mut expected = 0;
    let mut why = String::new();
    for s in &sources {
        for (t, _) in &targets {
            if t.name == s.name || reached.contains(&(s.name.clone(), t.name.clone())) {
                continue;
            }
            let nat = if flag.is_empty() {
                behind_nat(nodes, s, t)
            } else {
                None
            };
            let reason = match nat {
                Some(router) => {
                    expected += 1;
                    format!("{} is behind {router}'s NAT: its private address is unreachable from outside (expected; only port forwards reach in)", t.name)
                }
                None => "no answer within 1 s: a missing route, a filter, a link down, or a host that does not answer ping".to_owned(),
            };
            let _ = writeln!(why, "  {} -> {}: {reason}", s.name, t.name);
        }
    }
    let _ = writeln!(
        out,
        "{ok} of {total} answered; of the X, {expected} expected, {} not",
        total - ok - expected
    );
    out.push_str(&why);
    Ok(out)
}

/// The NAT router `t` sits behind as `s` sees it: `t` on an inside
/// switch of a router with NAT, `s` elsewhere.
fn behind_nat<'a>(nodes: &'a [Node], s: &Node, t: &Node) -> Option<&'a str> {
    let switch_of = |n: &Node| n.interfaces.first().map(|i| i.link.clone());
    let (s_switch, t_switch) = (switch_of(s)?, switch_of(t)?);
    if s_switch == t_switch {
        return None;
    }
    nodes
        .iter()
        .filter(|r| r.kind == "router")
        .find(|r| {
            r.nat_outside.as_ref().is_some_and(|outside| {
                *outside != t_switch && r.interfaces.iter().any(|i| i.link == t_switch)
            })
        })
        .map(|r| r.name.as_str())
}
