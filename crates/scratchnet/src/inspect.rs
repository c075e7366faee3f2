//! `scratchnet inspect` and `scratchnet pingall`: what a running lab is
//! made of — every host, service host and router, its interfaces,
//! addresses and MACs — and which hosts reach which.
//!
//! The lab answers an `inspect` request with its nodes
//! ([`lab::RunningLab::nodes`]); the client prints them, or pings every
//! pair.

use anyhow::{bail, Result};
use lab::running::{Interface, Node};
use std::fmt::Write;

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
