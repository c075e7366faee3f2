//! `scratchnet status` as tables a person reads, and `scratchnet trace dns`
//! as numbered steps.

use serde_json::Value;
use std::fmt::Write;

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// "reason=count, ..." for a map of counters, or "-".
fn counts(v: Option<&Value>) -> String {
    let parts: Vec<String> = v
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, c)| format!("{k}={c}")).collect())
        .unwrap_or_default();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(",")
    }
}

/// The non-zero numbers of an object, as `key=value,...` (`-` if none).
fn nonzero(v: &Value) -> String {
    let kept: serde_json::Map<String, Value> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
        .map(|(k, n)| (k.clone(), n.clone()))
        .collect();
    counts(Some(&Value::Object(kept)))
}

/// `n` and the noun for it: `1 entry`, `2 entries`, `0 routers`.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn status(s: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "lab {} (pid {})", text(s, "lab"), num(s, "pid"));
    let switches = s
        .pointer("/fabric/switches")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for sw in &switches {
        let c = &sw["counters"];
        let _ = writeln!(
            out,
            "\nswitch {}: learned {}, moves {}, table-full {}, aged-out {}, floods unknown-unicast {} multicast {}",
            text(sw, "name"),
            num(c, "learned"),
            num(c, "moves"),
            num(c, "table_full"),
            num(c, "aged_out"),
            num(c, "unknown_unicast_floods"),
            num(c, "multicast_floods")
        );
        let ports = sw["ports"].as_array().cloned().unwrap_or_default();
        // As wide as the longest port name (`office-gw.office`).
        let w = ports
            .iter()
            .map(|p| text(p, "name").len())
            .max()
            .unwrap_or(0)
            .max(12);
        let _ = writeln!(
            out,
            "  {:<w$} {:>10} {:>14} {:>10} {:>14}  {:<24} io-errors",
            "port", "rx-frames", "rx-bytes", "tx-frames", "tx-bytes", "drops"
        );
        for p in &ports {
            let _ = writeln!(
                out,
                "  {:<w$} {:>10} {:>14} {:>10} {:>14}  {:<24} {}{}",
                text(p, "name"),
                num(p, "rx_frames"),
                num(p, "rx_bytes"),
                num(p, "tx_frames"),
                num(p, "tx_bytes"),
                counts(p.get("drops")),
                counts(p.get("io_errors")),
                if p["capturing"].as_bool() == Some(true) {
                    "  (capturing)"
                } else {
                    ""
                }
            );
        }
        let macs = sw["mac_table"].as_array().cloned().unwrap_or_default();
        let entries = count(macs.len() as u64, "entry", "entries");
        let _ = writeln!(out, "  MAC table ({entries}):");
        for m in &macs {
            let _ = writeln!(
                out,
                "    vlan {:<4} {}  {:<12} age {} s",
                num(m, "vlan"),
                text(m, "mac"),
                text(m, "port"),
                num(m, "age_secs")
            );
        }
        let groups = sw["groups"].as_array().cloned().unwrap_or_default();
        let m = &sw["snooping"];
        let _ = writeln!(
            out,
            "  multicast groups ({}): reports {}, leaves {}, queries sent {} heard {}, constrained {}, refused {}, malformed {}",
            groups.len(),
            num(m, "reports"),
            num(m, "leaves"),
            num(m, "queries_sent"),
            num(m, "queries_heard"),
            num(m, "constrained"),
            num(m, "groups_refused"),
            num(m, "malformed")
        );
        for g in &groups {
            let ports: Vec<&str> = g["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let _ = writeln!(
                out,
                "    vlan {:<4} {:<28} {}",
                num(g, "vlan"),
                text(g, "group"),
                ports.join(" ")
            );
        }
    }
    links(&mut out, s);
    for r in s
        .pointer("/fabric/routers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        router(&mut out, r);
    }
    let services = s
        .get("services")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !services.is_empty() {
        let _ = writeln!(
            out,
            "\nservice hosts:\n  {:<12} {:<18} {:<10} {:<10} {:>6} {:>9} {:>10} {:>10}  events",
            "name", "address", "tcp", "udp", "conns", "time-wait", "rx-frames", "tx-frames"
        );
    }
    for h in &services {
        let ports = |key: &str| {
            let p: Vec<String> = h[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.to_string())
                .collect();
            if p.is_empty() {
                "-".to_owned()
            } else {
                p.join(",")
            }
        };
        let addrs: Vec<&str> = h["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let c = &h["counters"];
        let mut events = c.clone();
        if let Some(m) = events.as_object_mut() {
            m.retain(|k, _| !k.ends_with("_frames"));
        }
        let _ = writeln!(
            out,
            "  {:<12} {:<18} {:<10} {:<10} {:>6} {:>9} {:>10} {:>10}  {}",
            text(h, "name"),
            addrs.join(","),
            ports("tcp_listening"),
            ports("udp_bound"),
            num(h, "tcp_connections"),
            num(h, "time_wait"),
            num(c, "rx_frames"),
            num(c, "tx_frames"),
            nonzero(&events)
        );
    }
    let counters = s.get("service_counters").and_then(Value::as_object);
    for (name, c) in counters.into_iter().flatten() {
        let mut figures = c.clone();
        if let Some(m) = figures.as_object_mut() {
            m.remove("pools");
            m.remove("contents");
        }
        // A service with nothing to show yet gets no line.
        let figures = nonzero(&figures);
        if figures != "-" {
            let _ = writeln!(out, "  {name:<12} service: {figures}");
        }
    }
    out.push_str(&balancers(s, None));
    out.push_str(&caches(s, None));
    out
}

/// Each cache's store: its use, its outcomes and the URLs it holds (the
/// first 50).
pub fn caches(s: &Value, only: Option<&str>) -> String {
    let mut out = String::new();
    let counters = s.get("service_counters").and_then(Value::as_object);
    let caches = counters
        .into_iter()
        .flatten()
        .filter(|(name, _)| only.is_none_or(|o| o == name.as_str()))
        .filter_map(|(name, c)| Some((name, c, c.get("contents")?.as_array()?)));
    for (name, c, contents) in caches {
        let (hits, misses) = (num(c, "hits"), num(c, "misses"));
        let ratio = match hits + misses {
            0 => "-".to_owned(),
            all => format!("{:.0}%", 100.0 * hits as f64 / all as f64),
        };
        let _ = writeln!(
            out,
            "\ncache {name}: {} in {} of {} bytes; hits {hits}, misses {misses} (hit ratio {ratio}), stale {}, revalidated {}, collapsed {}, evicted {}",
            count(num(c, "entries"), "object", "objects"),
            num(c, "bytes"),
            num(c, "capacity"),
            num(c, "stale"),
            num(c, "revalidated"),
            num(c, "collapsed"),
            num(c, "evicted"),
        );
        if contents.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<48} {:>8} {:>9} {:>8} {:>8}",
            "url", "variants", "bytes", "age-s", "ttl-s"
        );
        for o in contents {
            let _ = writeln!(
                out,
                "  {:<48} {:>8} {:>9} {:>8} {:>8}",
                text(o, "url"),
                num(o, "variants"),
                num(o, "bytes"),
                num(o, "age_secs"),
                num(o, "ttl_secs")
            );
        }
    }
    out
}

/// Every port whose link was impaired or taken down: its settings and
/// what it did.
fn links(out: &mut String, s: &Value) {
    let switch_ports = s
        .pointer("/fabric/switches")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|sw| sw["ports"].as_array().into_iter().flatten());
    let l3_ports = s
        .pointer("/fabric/l3_ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let mut header = false;
    for p in switch_ports.chain(l3_ports) {
        let Some(link) = p.get("link") else { continue };
        if !header {
            let _ = writeln!(out, "\nlinks:");
            header = true;
        }
        let state = if link["up"].as_bool() == Some(false) {
            "DOWN"
        } else {
            "up"
        };
        let _ = writeln!(
            out,
            "  {:<12} {:<4} {}\n  {:<12}      {} (in flight {} bytes)",
            text(p, "name"),
            state,
            text(link, "summary"),
            "",
            nonzero(&link["counters"]),
            num(link, "held_bytes")
        );
    }
}

/// Each balancer's pools (or only `only`'s): a line per backend.
pub fn balancers(s: &Value, only: Option<&str>) -> String {
    let mut out = String::new();
    let counters = s.get("service_counters").and_then(Value::as_object);
    let pools = counters
        .into_iter()
        .flatten()
        .filter(|(name, _)| only.is_none_or(|o| o == name.as_str()))
        .filter_map(|(name, c)| Some((name, c.get("pools")?.as_array()?)))
        .flat_map(|(name, pools)| pools.iter().map(move |p| (name, p)));
    for (name, pool) in pools {
        let route = match text(pool, "route") {
            "default" => String::new(),
            r => format!(", {r}"),
        };
        let _ = writeln!(
            out,
            "\nbalancer {name} ({}{route}):\n  {:<12} {:<22} {:>6} {:<9} {:>7} {:>9} {:>9} {:>10} {:>11}",
            text(pool, "algorithm"),
            "backend", "address", "weight", "state", "active", "picked", "failures", "ejections", "latency-us"
        );
        let backends = pool.get("backends").and_then(Value::as_array);
        for b in backends.into_iter().flatten() {
            let latency = b
                .get("latency_us")
                .and_then(Value::as_u64)
                .map_or("-".to_owned(), |l| l.to_string());
            let _ = writeln!(
                out,
                "  {:<12} {:<22} {:>6} {:<9} {:>7} {:>9} {:>9} {:>10} {:>11}",
                text(b, "name"),
                text(b, "addr"),
                num(b, "weight"),
                text(b, "state"),
                num(b, "active"),
                num(b, "picked"),
                num(b, "failures"),
                num(b, "ejections"),
                latency
            );
        }
    }
    if out.is_empty() && only.is_some() {
        out.push_str("no such balancer in the lab\n");
    }
    out
}

fn router(out: &mut String, r: &Value) {
    let c = &r["counters"];
    let _ = writeln!(
        out,
        "\nrouter {}: received {}, forwarded {} ({} GSO), delivered {}, fragmented {} into {}, icmp-errors {} (rate-limited {}), echo-replies {}, arp requests {} replies {}, nd solicitations {} advertisements {}, router-adverts {}, dhcp replies {} (v6 {})",
        text(r, "name"),
        num(c, "received"),
        num(c, "forwarded"),
        num(c, "forwarded_gso"),
        num(c, "delivered"),
        num(c, "fragmented"),
        num(c, "fragments_sent"),
        num(c, "icmp_errors_sent"),
        num(c, "icmp_errors_rate_limited"),
        num(c, "echo_replies_sent"),
        num(c, "arp_requests_sent"),
        num(c, "arp_replies_sent"),
        num(c, "nd_solicitations_sent"),
        num(c, "nd_adverts_sent"),
        num(c, "router_adverts_sent"),
        num(c, "dhcp_replies_sent"),
        num(c, "dhcp6_replies_sent")
    );
    let _ = writeln!(out, "  drops: {}", counts(c.get("drops")));
    let _ = writeln!(out, "  interfaces:");
    for i in r["interfaces"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "    {:<10} {:<20} {:<18} mtu {}",
            text(i, "name"),
            text(i, "address"),
            i["mac"].as_str().unwrap_or("(point-to-point)"),
            num(i, "mtu")
        );
        if let Some(a6) = i["address6"].as_str() {
            let ll = i["link_local"]
                .as_str()
                .map_or(String::new(), |l| format!(" ({l})"));
            let _ = writeln!(out, "    {:<10} {a6}{ll}", "");
        }
        if let Some(ra) = i["ra"].as_str() {
            let _ = writeln!(out, "    {:<10} advertises {ra}", "");
        }
    }
    let _ = writeln!(out, "  routes:");
    for rt in r["routes"].as_array().into_iter().flatten() {
        let via = rt["via"]
            .as_str()
            .map_or("directly connected".to_owned(), |v| format!("via {v}"));
        let _ = writeln!(
            out,
            "    {:<20} {:<24} dev {:<10} {}",
            text(rt, "dest"),
            via,
            text(rt, "iface"),
            text(rt, "kind")
        );
    }
    let names: Vec<&str> = r["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| text(i, "name"))
        .collect();
    let arp = r["arp"].as_array().cloned().unwrap_or_default();
    let t = &r["arp_table"];
    let _ = writeln!(
        out,
        "  neighbours, ARP and ND ({} of at most {}, {} evicted; {} of {} bytes waiting for answers):",
        count(arp.len() as u64, "entry", "entries"),
        num(t, "max_entries"),
        num(t, "evicted"),
        num(t, "queued_bytes"),
        num(t, "max_queued_bytes")
    );
    for a in &arp {
        let iface = names.get(num(a, "iface") as usize).copied().unwrap_or("?");
        let _ = writeln!(
            out,
            "    {:<28} {}  dev {:<10} age {} s",
            text(a, "ip"),
            text(a, "mac"),
            iface,
            num(a, "age_secs")
        );
    }
    // The NAT's, NAT64's and the IPv6 firewall's session tables: one
    // shape, their own columns (the firewall's sessions have no outside).
    for (key, title, width) in [
        ("nat", "NAT", 22),
        ("nat64", "NAT64", 44),
        ("firewall", "IPv6 firewall", 44),
    ] {
        if let Some(t) = r.get(key).filter(|t| !t.is_null()) {
            sessions(out, title, width, t);
        }
    }
    for d in r["dhcp"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  DHCP pool {}-{}: {} of {} in use; {}",
            text(d, "first"),
            text(d, "last"),
            num(d, "in_use"),
            num(d, "size"),
            nonzero(&d["counters"])
        );
    }
    for d in r["dhcp6"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  DHCPv6 pool {}-{}: {} in use; {}",
            text(d, "first"),
            text(d, "last"),
            num(d, "in_use"),
            nonzero(&d["counters"])
        );
    }
    let leases6 = r["leases6"].as_array().cloned().unwrap_or_default();
    if !leases6.is_empty() {
        let _ = writeln!(out, "  DHCPv6 bindings ({}):", leases6.len());
        for l in &leases6 {
            let _ = writeln!(
                out,
                "    {:<28} {}  iaid {:<10} {:<10} expires in {} s",
                text(l, "ip"),
                text(l, "mac"),
                num(l, "iaid"),
                text(l, "state"),
                num(l, "expires_in_secs")
            );
        }
    }
    let leases = r["leases"].as_array().cloned().unwrap_or_default();
    if !leases.is_empty() {
        let _ = writeln!(out, "  DHCP leases ({}):", leases.len());
        for l in &leases {
            let _ = writeln!(
                out,
                "    {:<16} {}  {:<8} expires in {} s",
                text(l, "ip"),
                text(l, "mac"),
                text(l, "state"),
                num(l, "expires_in_secs")
            );
        }
    }
}

/// A session table (NAT, NAT64, IPv6 firewall) under its title and
/// counters; `width` fits its addresses. A firewall's rows have no
/// outside address: that column stays empty.
fn sessions(out: &mut String, title: &str, width: usize, t: &Value) {
    let table = t["table"].as_array().cloned().unwrap_or_default();
    let n = count(table.len() as u64, "session", "sessions");
    let _ = writeln!(out, "  {title} ({n}): {}", nonzero(&t["counters"]));
    if table.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "    {:<5} {:<width$} {:<22} {:<width$} {:<12} {:>6} {:>8}",
        "proto", "inside", "outside", "remote", "state", "age", "expires"
    );
    for row in &table {
        let _ = writeln!(
            out,
            "    {:<5} {:<width$} {:<22} {:<width$} {:<12} {:>5}s {:>7}s",
            text(row, "protocol"),
            text(row, "inside"),
            text(row, "outside"),
            text(row, "remote"),
            text(row, "state"),
            num(row, "age_secs"),
            num(row, "expires_in_secs")
        );
    }
}

/// A resolver's traced walk: the question, each step numbered, and the
/// answer as dig shows its sections.
pub fn dns_trace(t: &services::Resolution) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} via the resolver at {}", t.question, t.resolver);
    for (i, step) in t.steps.iter().enumerate() {
        let _ = writeln!(out, "{:>3}  {}", i + 1, step.text);
    }
    let _ = writeln!(out, "status: {}", t.rcode);
    for r in t.answers.iter().chain(&t.authorities) {
        let _ = writeln!(out, "{r}");
    }
    out
}

/// One line per switch, router and service host.
pub fn brief(s: &Value) -> String {
    let mut out = format!("lab {} (pid {})\n", text(s, "lab"), num(s, "pid"));
    let sum = |v: Option<&Value>| -> u64 {
        v.and_then(Value::as_object)
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
    };
    for sw in s
        .pointer("/fabric/switches")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ports = sw["ports"].as_array().cloned().unwrap_or_default();
        let rx: u64 = ports.iter().map(|p| num(p, "rx_frames")).sum();
        let drops: u64 = ports.iter().map(|p| sum(p.get("drops"))).sum();
        let macs = sw["mac_table"].as_array().map_or(0, Vec::len) as u64;
        let _ = writeln!(
            out,
            "switch  {:<12} {}, {}, {rx} frames in, {drops} dropped",
            text(sw, "name"),
            count(ports.len() as u64, "port", "ports"),
            count(macs, "MAC", "MACs"),
        );
    }
    for r in s
        .pointer("/fabric/routers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let c = &r["counters"];
        let nat = r
            .pointer("/nat/table")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let leases = r["leases"].as_array().map_or(0, Vec::len) as u64;
        let _ = writeln!(
            out,
            "router  {:<12} {} received, {} forwarded, {} dropped, NAT {}, {}",
            text(r, "name"),
            num(c, "received"),
            num(c, "forwarded"),
            sum(c.get("drops")),
            count(nat as u64, "session", "sessions"),
            count(leases, "lease", "leases"),
        );
    }
    for h in s
        .get("services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let c = &h["counters"];
        let _ = writeln!(
            out,
            "service {:<12} {} frames in, {} out, {}",
            text(h, "name"),
            num(c, "rx_frames"),
            num(c, "tx_frames"),
            count(num(h, "tcp_connections"), "connection", "connections")
        );
    }
    out
}
