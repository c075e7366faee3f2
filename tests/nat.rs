//! Real-namespace tests of NAT: hosts behind scratchnet's NAT routers reach
//! a server on the data-centre segment, which sees the routers' outside
//! addresses; a port forward reaches an inside host; thousands of short
//! connections, sequential and concurrent, all succeed and leave no entry
//! behind once their timeouts pass.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;

/// The reference lab's shape with a server host on dc: home (a, a2)
/// behind home-gw, office (c) behind office-gw with 8080 -> c:80, isp,
/// dc (srv) behind isp-gw. Short TCP timeouts, so the test can watch
/// entries expire (scratchnet notes they are below the RFC's).
fn nat_lab(lab: &str) -> String {
    format!(
        r#"
name = "{lab}"
[[switch]]
name = "{lab}-home"
subnet = "192.168.41.0/24"
[[switch]]
name = "{lab}-office"
subnet = "10.41.0.0/24"
[[switch]]
name = "{lab}-isp"
subnet = "198.51.100.0/24"
[[switch]]
name = "{lab}-dc"
subnet = "203.0.113.0/24"
[[host]]
name = "{lab}-a"
switch = "{lab}-home"
address = "192.168.41.10/24"
gateway = "192.168.41.1"
[[host]]
name = "{lab}-a2"
switch = "{lab}-home"
address = "192.168.41.11/24"
gateway = "192.168.41.1"
[[host]]
name = "{lab}-c"
switch = "{lab}-office"
address = "10.41.0.10/24"
gateway = "10.41.0.1"
[[host]]
name = "{lab}-srv"
switch = "{lab}-dc"
address = "203.0.113.20/24"
gateway = "203.0.113.1"
[[router]]
name = "{lab}-hgw"
interfaces = [{{ switch = "{lab}-home", address = "192.168.41.1/24" }}, {{ switch = "{lab}-isp", address = "198.51.100.2/24" }}]
routes = [{{ to = "0.0.0.0/0", via = "198.51.100.1" }}]
nat = {{ outside = "{lab}-isp", tcp_established_timeout_secs = 4, tcp_transitory_timeout_secs = 2 }}
[[router]]
name = "{lab}-ogw"
interfaces = [{{ switch = "{lab}-office", address = "10.41.0.1/24" }}, {{ switch = "{lab}-isp", address = "198.51.100.3/24" }}]
routes = [{{ to = "0.0.0.0/0", via = "198.51.100.1" }}]
nat = {{ outside = "{lab}-isp" }}
forwards = [{{ protocol = "tcp", port = 8080, to = "10.41.0.10:80" }}]
[[router]]
name = "{lab}-igw"
interfaces = [{{ switch = "{lab}-isp", address = "198.51.100.1/24" }}, {{ switch = "{lab}-dc", address = "203.0.113.1/24" }}]
"#
    )
}

fn peer_script() -> String {
    format!(
        "{}/../../tests/tools/tcp_peer.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Starts the TCP peer server in a namespace (ended when dropped, and by
/// the lab's teardown in any case).
fn serve(ns: &str, port: u16) -> Background {
    let script = peer_script();
    let b = Background::spawn(&[
        "ip",
        "netns",
        "exec",
        ns,
        "python3",
        &script,
        "serve",
        &port.to_string(),
    ]);
    std::thread::sleep(Duration::from_millis(700));
    b
}

/// Runs clients; returns (successes, addresses the server saw).
fn clients(ns: &str, mode: &str, host: &str, port: u16, n: usize) -> (usize, String) {
    let out = exec_ok(
        ns,
        &format!(
            "timeout 120 python3 {} {mode} {host} {port} {n}",
            peer_script()
        ),
    );
    let ok = out
        .lines()
        .find_map(|l| l.strip_prefix("ok "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let seen = out
        .lines()
        .find_map(|l| l.strip_prefix("seen "))
        .unwrap_or("")
        .to_owned();
    (ok, seen)
}

fn nat_sessions(lab: &Lab, router: &str) -> usize {
    let s = lab.status_json();
    let r = s["fabric"]["routers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == router)
        .cloned()
        .unwrap();
    r["nat"]["table"].as_array().map_or(0, Vec::len)
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn hosts_behind_nat_reach_the_dc_seen_as_the_routers_outside_addresses() {
    let mut lab = Lab::up("n4a", &nat_lab("n4a"));
    let _srv = serve("n4a-srv", 7000);
    let (ok, seen) = clients("n4a-a", "sequential", "203.0.113.20", 7000, 3);
    assert_eq!(
        (ok, seen.as_str()),
        (3, "198.51.100.2"),
        "alice's side is seen as home-gw"
    );
    let (ok, seen) = clients("n4a-c", "sequential", "203.0.113.20", 7000, 3);
    assert_eq!(
        (ok, seen.as_str()),
        (3, "198.51.100.3"),
        "carol's side is seen as office-gw"
    );
    exec_ok("n4a-a", "ping -c 2 -i 0.2 -W 2 203.0.113.20");
    // traceroute through the NAT: ICMP Time Exceeded from isp-gw is
    // translated back to the inside host.
    assert_eq!(
        hops("n4a-a", "203.0.113.20"),
        ["192.168.41.1", "198.51.100.1", "203.0.113.20"]
    );

    // The port forward: a reaches c's port 80 at office-gw's 8080, and c
    // sees a's side as home-gw.
    let _web = serve("n4a-c", 80);
    let (ok, seen) = clients("n4a-a", "sequential", "198.51.100.3", 8080, 2);
    assert_eq!((ok, seen.as_str()), (2, "198.51.100.2"));

    // Hairpin: a2 reaches a through home-gw's outside address? Only a
    // mapping's port is reachable; a's mapping is its source port, so a2
    // talks to office's forward through both NATs instead.
    let (ok, _) = clients("n4a-a2", "sequential", "198.51.100.3", 8080, 1);
    assert_eq!(ok, 1);
    let (status, stderr) = lab.stop_with("TERM");
    assert!(status.success(), "{stderr}");
    assert_clean("n4a", &["n4a-a", "n4a-a2", "n4a-c", "n4a-srv"]);
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn ten_thousand_sequential_and_a_thousand_concurrent_connections_leave_no_entries() {
    let lab = Lab::up("n4b", &nat_lab("n4b"));
    let _srv = serve("n4b-srv", 7000);
    let (ok, seen) = clients("n4b-a", "sequential", "203.0.113.20", 7000, 10_000);
    assert_eq!((ok, seen.as_str()), (10_000, "198.51.100.2"));
    let (ok, _) = clients("n4b-a", "concurrent", "203.0.113.20", 7000, 1_000);
    assert_eq!(ok, 1_000);
    assert!(nat_sessions(&lab, "n4b-hgw") > 0);
    // Closed connections are transitory (2 s here), the rest time out at 4 s.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(nat_sessions(&lab, "n4b-hgw"), 0, "no leaked NAT entries");
    let s = lab.status_json();
    let r = s["fabric"]["routers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "n4b-hgw")
        .cloned()
        .unwrap();
    let c = &r["nat"]["counters"];
    // Every connection crossed the NAT (SYN, ACK, FIN at least); a client
    // that reuses a port for the same server restarts that session rather
    // than making a new one, so sessions number fewer than connections.
    assert!(c["translated_out"].as_u64().unwrap() >= 33_000, "{c}");
    assert!(c["sessions_created"].as_u64().unwrap() > 1_000, "{c}");
    assert_eq!(c["sessions_created"], c["sessions_expired"]);
    drop(lab);
    assert_clean("n4b", &["n4b-a", "n4b-a2", "n4b-c", "n4b-srv"]);
}
