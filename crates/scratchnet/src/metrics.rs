//! The lab's counters in Prometheus's text exposition format, for
//! `scratchnet status --prometheus` (and a node_exporter textfile
//! collector, or any scraper reading a file).
//!
//! The families are built from one status snapshot when asked, so the
//! data path pays nothing for them: ports' frames, bytes, drops by reason
//! and device errors; switches' MAC and group tables and floods; routers'
//! neighbour caches, DHCP leases and NAT, firewall and NAT64 sessions.

use anyhow::Result;
use fabric::FabricStatus;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// Every family of one snapshot, registered as it is made.
struct Families(Registry);

impl Families {
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec> {
        let family = IntCounterVec::new(Opts::new(name, help).namespace("scratchnet"), labels)?;
        self.0.register(Box::new(family.clone()))?;
        Ok(family)
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec> {
        let family = IntGaugeVec::new(Opts::new(name, help).namespace("scratchnet"), labels)?;
        self.0.register(Box::new(family.clone()))?;
        Ok(family)
    }
}

/// The exposition of `status`.
pub fn exposition(status: &FabricStatus) -> Result<String> {
    let f = Families(Registry::new());
    let port = ["port"];
    let rx_frames = f.counter("port_rx_frames_total", "Frames received on a port.", &port)?;
    let rx_bytes = f.counter("port_rx_bytes_total", "Bytes received on a port.", &port)?;
    let tx_frames = f.counter("port_tx_frames_total", "Frames sent on a port.", &port)?;
    let tx_bytes = f.counter("port_tx_bytes_total", "Bytes sent on a port.", &port)?;
    let drops = f.counter(
        "port_drops_total",
        "Frames a port's switch dropped, by reason.",
        &["port", "reason"],
    )?;
    let io_errors = f.counter(
        "port_io_errors_total",
        "Reads and writes of a port's device that failed, by kind.",
        &["port", "kind"],
    )?;
    let link_up = f.gauge(
        "port_link_up",
        "1 if a port's link is up, 0 if it was taken down.",
        &port,
    )?;
    let ports = status
        .switches
        .iter()
        .flat_map(|s| &s.ports)
        .chain(&status.l3_ports);
    for p in ports {
        let name = [p.name.as_str()];
        rx_frames.with_label_values(&name).inc_by(p.rx_frames);
        rx_bytes.with_label_values(&name).inc_by(p.rx_bytes);
        tx_frames.with_label_values(&name).inc_by(p.tx_frames);
        tx_bytes.with_label_values(&name).inc_by(p.tx_bytes);
        for (reason, n) in &p.drops {
            drops
                .with_label_values(&[p.name.as_str(), reason])
                .inc_by(*n);
        }
        for (kind, n) in &p.io_errors {
            io_errors
                .with_label_values(&[p.name.as_str(), kind])
                .inc_by(*n);
        }
        let up = p.link.as_ref().is_none_or(|l| l.up);
        link_up.with_label_values(&name).set(i64::from(up));
    }

    let switch = ["switch"];
    let macs = f.gauge(
        "switch_mac_entries",
        "Addresses in a switch's MAC table.",
        &switch,
    )?;
    let groups = f.gauge(
        "switch_multicast_groups",
        "Multicast groups hosts joined on a switch (IGMP and MLD snooping).",
        &switch,
    )?;
    let floods = f.counter(
        "switch_floods_total",
        "Frames a switch flooded: unknown unicast, or broadcast and multicast.",
        &["switch", "kind"],
    )?;
    let table_full = f.counter(
        "switch_mac_table_full_total",
        "Addresses a switch did not learn because its MAC table was full.",
        &switch,
    )?;
    for s in &status.switches {
        let name = [s.name.as_str()];
        macs.with_label_values(&name).set(gauge(s.mac_table.len()));
        groups.with_label_values(&name).set(gauge(s.groups.len()));
        let c = &s.counters;
        floods
            .with_label_values(&[&s.name, "unknown_unicast"])
            .inc_by(c.unknown_unicast_floods);
        floods
            .with_label_values(&[&s.name, "multicast"])
            .inc_by(c.multicast_floods);
        table_full.with_label_values(&name).inc_by(c.table_full);
    }

    let router = ["router"];
    let neighbours = f.gauge(
        "router_neighbours",
        "Entries in a router's ARP and NDP neighbour cache.",
        &router,
    )?;
    let leases = f.gauge(
        "router_dhcp_leases",
        "DHCP leases a router holds, by family.",
        &["router", "family"],
    )?;
    let sessions = f.gauge(
        "router_sessions",
        "Sessions in a router's NAT, IPv6 firewall and NAT64 tables.",
        &["router", "table"],
    )?;
    for r in &status.routers {
        let name = r.name.as_str();
        neighbours
            .with_label_values(&[name])
            .set(gauge(r.arp.len()));
        let families = [("ipv4", r.leases.len()), ("ipv6", r.leases6.len())];
        for (family, n) in families {
            leases.with_label_values(&[name, family]).set(gauge(n));
        }
        let tables = [
            ("nat", r.nat.as_ref().map(|n| n.table.len())),
            ("firewall", r.firewall.as_ref().map(|t| t.table.len())),
            ("nat64", r.nat64.as_ref().map(|t| t.table.len())),
        ];
        for (table, n) in tables {
            if let Some(n) = n {
                sessions.with_label_values(&[name, table]).set(gauge(n));
            }
        }
    }

    let runaway = f.counter(
        "runaway_frames_total",
        "Frames stopped after too many hops inside the fabric (a loop).",
        &[],
    )?;
    runaway
        .with_label_values::<&str>(&[])
        .inc_by(status.runaway);
    Ok(TextEncoder::new().encode_to_string(&f.0.gather())?)
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
