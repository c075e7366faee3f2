//! Service hosts in real labs: the built-in http and echo services answer
//! real clients (curl, Python sockets) in namespaces and on the machine.
//! These need root; scripts/test.sh runs them as root.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn client() -> String {
    format!(
        "{}/../../tests/tools/svc_client.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A switch with one namespace host `host` (.1) and services `web` (http,
/// .10) and `echo` (.20).
fn service_lab(name: &str, net: u8, host: &str) -> String {
    let mut t = lan_topology(name, net, &[host]);
    t += &format!(
        "[[service]]\nname = \"{name}-web\"\nkind = \"http\"\nswitch = \"lan\"\naddress = \"10.77.{net}.10/24\"\n\
         [[service]]\nname = \"{name}-echo\"\nkind = \"echo\"\nswitch = \"lan\"\naddress = \"10.77.{net}.20/24\"\n"
    );
    t
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn web1_answers_alice_through_the_nat_and_the_machine_through_the_uplink() {
    let file = topology_file("reference", topology::REFERENCE_LAB);
    let mut lab = Lab::up_file("reference", &file);

    let body = exec_ok(
        "alice",
        "curl -s -m 10 -H 'X-Forwarded-For: 192.0.2.7' http://203.0.113.11/",
    );
    assert!(body.contains("server: web1 203.0.113.11:80\n"), "{body}");
    assert!(
        body.contains("client: 198.51.100.2:"),
        "seen through the NAT: {body}"
    );
    assert!(body.contains("request: GET /\n"), "{body}");
    assert!(body.contains("x-forwarded-for: 192.0.2.7\n"), "{body}");

    exec_ok("alice", "ping -c 2 -W 2 203.0.113.11");
    assert_eq!(
        hops("alice", "203.0.113.11"),
        ["192.168.1.1", "198.51.100.1", "203.0.113.11"]
    );

    // 100 MiB arrive intact.
    let size = 100 << 20;
    let dir = std::env::temp_dir().join("scratchnet-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("web1-download.bin");
    exec_ok(
        "alice",
        &format!(
            "curl -s -m 120 -o {} http://203.0.113.11/bytes/{size}",
            path.display()
        ),
    );
    let check = sh(&format!(
        "python3 {} pattern {} {size}",
        client(),
        path.display()
    ));
    let _ = std::fs::remove_file(&path);
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");

    // Closed ports: a RST for TCP (curl exit 7, at once), ICMP port
    // unreachable for UDP.
    let started = Instant::now();
    let refused = sh("ip netns exec alice curl -s -m 5 http://203.0.113.11:81/");
    assert_eq!(refused.status.code(), Some(7), "connection refused");
    assert!(started.elapsed() < Duration::from_secs(2));
    let udp = exec_ok(
        "alice",
        &format!("python3 {} udp-closed 203.0.113.11 53", client()),
    );
    assert_eq!(udp.trim(), "refused");

    // A connection from the machine stays open until the lab stops, and
    // is then closed with a FIN, not left hanging.
    let mut idle = Command::new("python3")
        .args([&client(), "idle", "203.0.113.12", "80"])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(idle.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "open");
    let (status, stderr) = lab.stop_with("INT");
    assert!(status.success(), "{stderr}");
    assert_eq!(lines.next().unwrap().unwrap(), "eof");
    let _ = idle.wait();
    assert_clean("reference", &["alice", "bob", "carol"]);
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn a_thousand_concurrent_curls_all_succeed() {
    let _lab = Lab::up("svc-many", &service_lab("svc-many", 61, "many1"));
    let urls = "-o /dev/null http://10.77.61.10/ ".repeat(1000);
    let out = exec_ok(
        "many1",
        &format!(
            "curl -s -m 60 --parallel --parallel-immediate --parallel-max 1000 -H 'Connection: close' \
             -w '%{{http_code}} %{{num_connects}}\\n' {urls}"
        ),
    );
    let codes: Vec<&str> = out.lines().collect();
    assert_eq!(codes.len(), 1000, "{out}");
    assert!(codes.iter().all(|c| c.starts_with("200 ")), "{out}");
    let fresh = codes.iter().filter(|c| c.ends_with(" 1")).count();
    assert_eq!(fresh, 1000, "each request had a connection of its own");
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn echo_answers_over_udp_and_tcp() {
    let _lab = Lab::up("svc-echo", &service_lab("svc-echo", 62, "echo1"));
    let udp = exec_ok(
        "echo1",
        &format!("python3 {} udp-echo 10.77.62.20 7", client()),
    );
    assert_eq!(udp.trim(), "ok 45");
    let tcp = exec_ok(
        "echo1",
        &format!("python3 {} tcp-echo 10.77.62.20 7 4000000", client()),
    );
    assert_eq!(tcp.trim(), "ok 4000000");
    let nc = exec_ok("echo1", "sh -c 'echo hello | nc -u -w 1 10.77.62.20 7'");
    assert_eq!(nc.trim(), "hello");
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn clients_that_never_read_leave_the_server_answering_others_in_bounded_memory() {
    let lab = Lab::up("svc-stall", &service_lab("svc-stall", 63, "stall1"));
    let mut stalled = Command::new("ip")
        .args([
            "netns",
            "exec",
            "stall1",
            "python3",
            &client(),
            "never-read",
            "10.77.63.10",
            "80",
            "50",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(stalled.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "open 50");
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..20 {
        let body = exec_ok("stall1", "curl -s -m 5 http://10.77.63.10/");
        assert!(body.contains("server: svc-stall-web"), "{body}");
    }
    let web = &lab.status_json()["services"];
    let web = web
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "svc-stall-web")
        .unwrap()
        .clone();
    assert!(web["tcp_connections"].as_u64().unwrap() >= 50, "{web}");
    // Each stalled connection holds at most its send buffer.
    let rss_kib: u64 = std::fs::read_to_string(format!("/proc/{}/status", lab.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(rss_kib < 200 * 1024, "resident {rss_kib} KiB");
    drop(stalled.stdin.take());
    let _ = stalled.wait();
}
