//! `scratchnet trace` on a real lab: the hops of alice's connection to
//! web1, each decision named, as text and as JSON. These need root;
//! scripts/test.sh runs them as root.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn trace_names_every_hop_of_alices_connection_to_web1() {
    let file = topology_file("reference", topology::REFERENCE_LAB);
    let _lab = Lab::up_file("reference", &file);
    // Warm ARP so that the traced SYN goes straight through.
    exec_ok("alice", "curl -s -m 5 -o /dev/null http://203.0.113.11/");
    let out = trace_while(
        &["alice", "-c", "1", "--filter", "tcp and dst port 80"],
        || {
            exec_ok("alice", "curl -s -m 5 -o /dev/null http://203.0.113.11/");
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("#"), "{out}");
    assert!(lines[0].contains("alice -> TCP 192.168.1.10:"), "{out}");
    assert!(lines[0].ends_with("> 203.0.113.11:80 [S]"), "{out}");
    for hop in [
        "switch home           to home-gw.home (MAC table)",
        "router home-gw        route 0.0.0.0/0 via 198.51.100.1 (isp); ttl 64->63",
        "nat    home-gw        src 192.168.1.10:",
        "(new mapping)",
        "switch isp            to isp-gw.isp (MAC table)",
        "router isp-gw         route 203.0.113.0/24 connected (dc); ttl 63->62",
        "switch dc             to web1 (MAC table)",
        "out    web1           delivered",
        "host   web1           SYN to listener :80 -> SYN-ACK (new connection)",
    ] {
        assert!(out.contains(hop), "missing `{hop}` in\n{out}");
    }

    // A TTL that runs out at home-gw, as JSON: the drop and the ICMP
    // error that answers it, linked.
    let json = trace_while(&["alice", "-c", "1", "--filter", "icmp", "--json"], || {
        let _ = sh("ip netns exec alice ping -c 1 -t 1 -W 1 203.0.113.11");
    });
    let records: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = &records[0];
    let events = first["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["decision"] == "drop" && e["reason"] == "ttl-expired"),
        "{json}"
    );
    let answer = records
        .iter()
        .find(|r| r["cause"] == first["frame"])
        .unwrap_or_else(|| panic!("no linked ICMP error in {json}"));
    assert_eq!(answer["from"], "home-gw");
    assert!(
        answer["summary"].as_str().unwrap().contains("type 11"),
        "{json}"
    );

    // What-if runs through the live tables, changing none of them.
    let nat_sessions = |lab: &Lab| -> usize {
        lab.status_json()["fabric"]["routers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["nat"]["table"].as_array().map(Vec::len))
            .sum()
    };
    let before = nat_sessions(&_lab);
    let inject = |what: &str| {
        let out = sh(&format!(
            "{} trace --lab reference --inject alice '{what}'",
            bin()
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let forward = inject("tcp 198.51.100.3:8080");
    for line in [
        "what if: #",
        "nat    home-gw        src 192.168.1.10:40000 -> 198.51.100.2:40000 (would create a mapping)",
        "nat    office-gw      dst 198.51.100.3:8080 -> 10.1.0.10:80 (would create a mapping)",
        "router office-gw      route 10.1.0.0/24 connected (office); ttl 63->62",
    ] {
        assert!(forward.contains(line), "missing `{line}` in\n{forward}");
    }
    let unrouted = inject("udp 100.64.0.1:53");
    assert!(
        unrouted.contains("router isp-gw         drop: no-route"),
        "{unrouted}"
    );
    assert!(
        unrouted.contains("icmp   isp-gw         ICMP net unreachable to 198.51.100.2"),
        "{unrouted}"
    );
    let expired = inject("tcp 203.0.113.11:80 ttl 1");
    assert!(
        expired.contains("router home-gw        drop: ttl-expired"),
        "{expired}"
    );
    assert!(
        expired.contains("ICMP time exceeded to 192.168.1.10"),
        "{expired}"
    );
    assert_eq!(
        nat_sessions(&_lab),
        before,
        "a what-if created NAT sessions"
    );
    let json = sh(&format!(
        "{} trace --lab reference --inject alice 'icmp 203.0.113.11' --json",
        bin()
    ));
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&json.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["what_if"], true);

    // A bad filter is refused before anything is asked of the lab.
    let bad = sh(&format!(
        "{} trace alice --filter 'port http' --lab reference",
        bin()
    ));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a port"));
}
