//! Real-namespace tests: real hosts (network namespaces) with real tools
//! (ping, ip, iperf3, nc, tcpdump) on scratchnet's switch. They prove the
//! kernel boundary; switching logic itself is tested in the simulator.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn two_hosts_resolve_arp_and_ping_both_ways() {
    let hosts = ["l2a-1", "l2a-2"];
    let lab = Lab::up("l2a", &lan_topology("l2a", 1, &hosts));
    exec_ok("l2a-1", "ping -c 3 -i 0.2 -W 2 10.77.1.2");
    exec_ok("l2a-2", "ping -c 3 -i 0.2 -W 2 10.77.1.1");

    // ARP resolved to the MAC scratchnet gave the other host...
    let neigh = exec_ok("l2a-1", "ip neigh show 10.77.1.2");
    let mac_b = wire::Mac::local_from("l2a-2").to_string();
    assert!(
        neigh.contains(&mac_b),
        "ARP entry {neigh:?} should name {mac_b}"
    );
    // ...and the switch learned both hosts on their own ports.
    let status = lab.status_json();
    let table = status["fabric"]["switches"][0]["mac_table"]
        .as_array()
        .unwrap()
        .clone();
    let port_of = |mac: &str| {
        table
            .iter()
            .find(|e| e["mac"] == mac)
            .map(|e| e["port"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(port_of(&mac_b).as_deref(), Some("l2a-2"));
    assert_eq!(
        port_of(&wire::Mac::local_from("l2a-1").to_string()).as_deref(),
        Some("l2a-1")
    );
    drop(lab);
    assert_clean("l2a", &hosts);
}

/// Starts a one-shot iperf3 server in `server`, runs a 2-second client in
/// `client` (either direction) and returns the bytes received.
fn iperf3_bytes(client: &str, server: &str, server_ip: &str, reverse: bool) -> u64 {
    exec_ok(
        server,
        &format!("iperf3 -s -D -1 -I /tmp/scratchnet-{server}-iperf.pid"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let out = exec_ok(
        client,
        &format!(
            "iperf3 -J -t 2 -c {server_ip}{}",
            if reverse { " -R" } else { "" }
        ),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0)
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn three_hosts_ping_iperf3_both_ways_and_a_large_transfer_arrives_intact() {
    let hosts = ["l2b-1", "l2b-2", "l2b-3"];
    let lab = Lab::up("l2b", &lan_topology("l2b", 2, &hosts));
    for (from, to) in [(1, 2), (2, 3), (3, 1)] {
        exec_ok(
            &format!("l2b-{from}"),
            &format!("ping -c 2 -i 0.2 -W 2 10.77.2.{to}"),
        );
    }

    let forward = iperf3_bytes("l2b-1", "l2b-2", "10.77.2.2", false);
    let reverse = iperf3_bytes("l2b-1", "l2b-2", "10.77.2.2", true);
    assert!(
        forward > 10 << 20 && reverse > 10 << 20,
        "iperf3 moved {forward} and {reverse} bytes"
    );

    // 8 MiB of random bytes through nc, compared by checksum.
    let dir = std::env::temp_dir().join("scratchnet-tests");
    let (src, dst) = (dir.join("l2b-src.bin"), dir.join("l2b-dst.bin"));
    sh(&format!("head -c 8388608 /dev/urandom > {}", src.display()));
    let _ = std::fs::remove_file(&dst);
    let mut server = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            "l2b-3",
            "sh",
            "-c",
            &format!("timeout 30 nc -l -N 10.77.2.3 5001 > {}", dst.display()),
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    exec_ok(
        "l2b-1",
        &format!("timeout 30 nc -N 10.77.2.3 5001 < {}", src.display()),
    );
    assert!(server.wait().unwrap().success());
    let sum = |p: &std::path::Path| {
        String::from_utf8_lossy(&sh(&format!("sha256sum < {}", p.display())).stdout).into_owned()
    };
    assert_eq!(std::fs::metadata(&dst).unwrap().len(), 8 << 20);
    assert_eq!(sum(&src), sum(&dst), "transfer corrupted");

    // The offloaded path was used: frames well above the MTU crossed.
    let p = lab.port("l2b-1");
    assert!(p["offload"].as_bool().unwrap());
    assert_eq!(
        p["drops"],
        serde_json::json!({}),
        "no drops on a clean run: {p}"
    );
    drop(lab);
    assert_clean("l2b", &hosts);
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn hosts_without_offload_still_exchange_large_transfers() {
    // One host has offload off: super-frames from the other are cut in
    // software (and checksums completed) on the way to it.
    let hosts = ["l2c-1", "l2c-2"];
    let topo = lan_topology("l2c", 3, &hosts) + "offload = false\n";
    let lab = Lab::up("l2c", &topo);
    assert_eq!(lab.port("l2c-2")["offload"], false);
    let bytes = iperf3_bytes("l2c-1", "l2c-2", "10.77.3.2", false);
    assert!(bytes > 10 << 20, "iperf3 moved {bytes} bytes");
    let p = lab.port("l2c-2");
    assert_eq!(p["io_errors"], serde_json::json!({}), "{p}");
    drop(lab);
    assert_clean("l2c", &hosts);
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn malformed_frames_are_counted_and_the_switch_keeps_serving() {
    let hosts = ["l2d-1", "l2d-2"];
    let lab = Lab::up("l2d", &lan_topology("l2d", 4, &hosts));
    // Raise the host's MTU above the switch port's so it can send oversize
    // frames; write raw frames with an AF_PACKET socket. (The kernel does
    // not send frames shorter than an Ethernet header; the simulator and
    // unit tests cover those.)
    exec_ok("l2d-1", "ip link set eth0 mtu 9000");
    let script = r#"
import os, socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
me = bytes.fromhex("02534e000001")
bcast = b"\xff" * 6
frames = [
    bcast + me + b"\x81\x00\x00",                            # truncated inside its 802.1Q tag
    bcast + me + b"\x05\xff" + bytes(46),                    # undefined EtherType
    bcast + me + b"\x08\x00" + bytes(3000),                  # over the 1500 MTU
    bcast + bcast + b"\x08\x00" + bytes(46),                 # broadcast source
]
for f in frames:
    s.send(f)
for _ in range(100):
    s.send(os.urandom(14 + int.from_bytes(os.urandom(1), "big")))  # garbage
"#;
    let path = std::env::temp_dir()
        .join("scratchnet-tests")
        .join("l2d-garbage.py");
    std::fs::write(&path, script).unwrap();
    exec_ok("l2d-1", &format!("python3 {}", path.display()));
    std::thread::sleep(Duration::from_millis(300));
    let p = lab.port("l2d-1");
    let drops = &p["drops"];
    for reason in ["truncated", "bad-ethertype", "oversize", "invalid-source"] {
        assert!(
            drops[reason].as_u64().unwrap_or(0) >= 1,
            "no {reason} drop counted: {p}"
        );
    }
    // Still serving.
    exec_ok("l2d-1", "ip link set eth0 mtu 1500");
    exec_ok("l2d-1", "ping -c 2 -i 0.2 -W 2 10.77.4.2");
    drop(lab);
    assert_clean("l2d", &hosts);
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn sigterm_removes_everything_and_sigkill_is_cleaned_by_down() {
    let hosts = ["l2e-1", "l2e-2"];
    let topo = lan_topology("l2e", 5, &hosts).replace(
        "address = \"10.77.5.1/24\"",
        "address = \"10.77.5.1/24\"\ndns = [\"10.77.5.53\"]",
    );
    let mut lab = Lab::up("l2e", &topo);
    let resolv = std::fs::read_to_string("/etc/netns/l2e-1/resolv.conf").unwrap();
    assert!(resolv.contains("nameserver 10.77.5.53"));
    assert!(
        exec_ok("l2e-1", "cat /etc/resolv.conf").contains("10.77.5.53"),
        "ip netns exec mounts it"
    );
    // A process a user left running in a host ends with the lab (it would
    // keep the namespace alive, nameless).
    sh("(ip netns exec l2e-2 sleep 3131 < /dev/null > /dev/null 2>&1 &)");
    let (status, stderr) = lab.stop_with("TERM");
    assert!(status.success(), "{stderr}");
    assert_clean("l2e", &hosts);
    assert!(
        !sh("pgrep -f '[s]leep 3131'").status.success(),
        "processes in the lab's namespaces end with it"
    );

    let mut lab = Lab::up("l2e", &topo);
    let (_, _) = lab.stop_with("KILL");
    assert!(
        namespaces().contains("l2e-1"),
        "a killed lab cannot clean up"
    );
    let down = sh(&format!("{} down {}", bin(), lab.file.display()));
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_clean("l2e", &hosts);
    assert!(
        !sh("ip -o link").stdout.windows(3).any(|w| w == b"tap"),
        "no TAP device outlives its process"
    );
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn capture_writes_pcap_that_tcpdump_reads() {
    let hosts = ["l2f-1", "l2f-2"];
    let lab = Lab::up("l2f", &lan_topology("l2f", 6, &hosts));
    let seen = captured("l2f", &["l2f-2"], || {
        exec_ok("l2f-1", "ping -c 3 -i 0.2 -W 2 10.77.6.2");
    });
    let text = &seen[0];
    assert_eq!(text.matches("ICMP echo request").count(), 3, "{text}");
    assert_eq!(text.matches("ICMP echo reply").count(), 3, "{text}");

    // Piped to tcpdump, as a user would.
    let piped = sh(&format!(
        "(timeout 3 {} capture l2f-1 --lab l2f | timeout 5 tcpdump -l -nr - icmp > /tmp/scratchnet-l2f-pipe.txt 2>&1) & sleep 0.5; ip netns exec l2f-1 ping -c 2 -i 0.2 10.77.6.2 >/dev/null; wait; cat /tmp/scratchnet-l2f-pipe.txt",
        bin()
    ));
    let text = String::from_utf8_lossy(&piped.stdout);
    assert_eq!(text.matches("ICMP echo request").count(), 2, "{text}");
    // The first capture's reader is gone: the tap came off with the frames
    // that crossed the port since.
    assert_eq!(lab.port("l2f-2")["capturing"], false);

    // Both ports at once, filtered, counted: pcapng with an interface per
    // port, named after it, and each frame's direction.
    let file = std::env::temp_dir().join("scratchnet-tests/l2f-both.pcapng");
    let mut cap = std::process::Command::new(bin())
        .args([
            "capture", "l2f-1", "l2f-2", "--lab", "l2f", "-f", "icmp", "-c", "4", "-w",
        ])
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    exec_ok("l2f-1", "ping -c 3 -i 0.2 10.77.6.2");
    assert!(cap.wait().unwrap().success(), "the capture stops at -c 4");
    let seen = pcapng_frames(&file);
    assert_eq!(
        seen,
        [
            ("l2f-1".to_owned(), "in"),
            ("l2f-2".to_owned(), "out"),
            ("l2f-2".to_owned(), "in"),
            ("l2f-1".to_owned(), "out"),
        ],
        "a ping's request and reply, where each crossed"
    );
    let read = sh(&format!("tcpdump -nr {}", file.display()));
    let text = String::from_utf8_lossy(&read.stdout);
    assert_eq!(text.matches("ICMP echo").count(), 4, "{text}");

    // Binary is not for a terminal.
    let out = sh(&format!(
        "script -qec '{} capture l2f-1 --lab l2f' /dev/null",
        bin()
    ));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("pipe it to a reader"), "{said}");
    drop(lab);
    assert_clean("l2f", &hosts);
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn refusals_are_one_line_errors_that_leave_nothing_behind() {
    // A namespace that is not ours is never touched.
    sh("ip netns add l2g-taken");
    let file = topology_file("l2g", &lan_topology("l2g", 7, &["l2g-1", "l2g-taken"]));
    let out = sh(&format!("{} up {}", bin(), file.display()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("namespace `l2g-taken` already exists"),
        "{err}"
    );
    assert!(
        namespaces().contains("l2g-taken"),
        "someone else's namespace survives"
    );
    sh("ip netns delete l2g-taken");
    assert_clean("l2g", &["l2g-1", "l2g-taken"]);

    // Not root.
    let out = sh(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups {} up {}",
        bin(),
        file.display()
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("needs root") && err.lines().count() == 1,
        "{err}"
    );
    assert_clean("l2g", &["l2g-1", "l2g-taken"]);

    // A second lab of the same name while the first runs.
    let lab = Lab::up("l2g", &lan_topology("l2g", 7, &["l2g-1"]));
    let other = topology_file("l2g-other", &lan_topology("l2g", 8, &["l2g-9"]));
    let out = sh(&format!("{} up {}", bin(), other.display()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lab `l2g` is already running"), "{err}");
    assert!(!namespaces().contains("l2g-9"));
    drop(lab);
    assert_clean("l2g", &["l2g-1", "l2g-9"]);
}

/// Each frame of a pcapng file: the name of its interface, and its
/// direction ("in" or "out").
fn pcapng_frames(file: &std::path::Path) -> Vec<(String, &'static str)> {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let mut reader = PcapNgReader::new(std::fs::File::open(file).unwrap()).unwrap();
    let mut names = Vec::new();
    let mut frames = Vec::new();
    while let Some(block) = reader.next_block() {
        match block.unwrap() {
            Block::InterfaceDescription(idb) => {
                let name = idb.options.iter().find_map(|o| match o {
                    InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                    _ => None,
                });
                names.push(name.unwrap());
            }
            Block::EnhancedPacket(epb) => {
                let dir = epb.options.iter().find_map(|o| match o {
                    EnhancedPacketOption::Flags(f) => Some(if f & 3 == 1 { "in" } else { "out" }),
                    _ => None,
                });
                frames.push((names[epb.interface_id as usize].clone(), dir.unwrap()));
            }
            _ => {}
        }
    }
    frames
}

/// Runs `scratchnet capture` on each port while `act` runs; returns what
/// tcpdump -e reads from each capture.
fn captured(lab: &str, ports: &[&str], act: impl FnOnce()) -> Vec<String> {
    let dir = std::env::temp_dir().join("scratchnet-tests");
    let mut caps: Vec<(std::process::Child, std::path::PathBuf)> = ports
        .iter()
        .map(|p| {
            let file = dir.join(format!("{lab}-{p}.pcap"));
            let child = std::process::Command::new(bin())
                .args(["capture", p, "--lab", lab, "-w"])
                .arg(&file)
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            (child, file)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    act();
    std::thread::sleep(Duration::from_millis(300));
    caps.iter_mut()
        .map(|(child, file)| {
            sh(&format!("kill -INT {}", child.id()));
            child.wait().unwrap();
            String::from_utf8_lossy(&sh(&format!("tcpdump -e -nr {}", file.display())).stdout)
                .into_owned()
        })
        .collect()
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn vlans_isolate_access_ports_and_trunks_carry_them_tagged() {
    // h1: access VLAN 10. h2: access VLAN 20, same subnet. h3: a trunk
    // carrying 10 and 20 tagged. (This machine's kernel has no 802.1Q
    // interfaces, so h3 speaks tagged frames through a packet socket.)
    let topo = r#"
name = "l2h"
[[switch]]
name = "lan"
[[host]]
name = "l2h-1"
switch = "lan"
address = "10.77.10.1/24"
vlan = 10
[[host]]
name = "l2h-2"
switch = "lan"
address = "10.77.10.2/24"
vlan = 20
[[host]]
name = "l2h-3"
switch = "lan"
address = "10.77.1.3/24"
tagged_vlans = [10, 20]
"#;
    let hosts = ["l2h-1", "l2h-2", "l2h-3"];
    let lab = Lab::up("l2h", topo);
    let mac1 = wire::Mac::local_from("l2h-1").to_string().replace(':', "");
    let script = std::env::temp_dir()
        .join("scratchnet-tests")
        .join("l2h-tagged.py");
    std::fs::write(
        &script,
        format!(
            "import socket\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\ns.bind(('eth0', 0))\n\
             s.send(bytes.fromhex('{mac1}') + bytes.fromhex('02534e0000aa') + b'\\x81\\x00\\x00\\x0a\\x88\\xb5' + b'scratchnet-vlan-test'.ljust(46, b'.'))\n"
        ),
    )
    .unwrap();
    let seen = captured("l2h", &hosts, || {
        // Same subnet, different VLAN: h2 is unreachable from h1.
        let out = sh("ip netns exec l2h-1 ping -c 2 -i 0.2 -W 1 10.77.10.2");
        assert!(!out.status.success(), "VLAN 10 reached VLAN 20");
        exec_ok("l2h-3", &format!("python3 {}", script.display()));
    });
    let (p1, p2, p3) = (&seen[0], &seen[1], &seen[2]);
    assert!(
        p3.contains("vlan 10") && p3.contains("who-has 10.77.10.2"),
        "h1's ARP leaves the trunk tagged 10:\n{p3}"
    );
    assert!(
        !p2.contains("10.77.10.2 tell"),
        "h1's ARP must not reach VLAN 20:\n{p2}"
    );
    let tagged_in = p1
        .lines()
        .find(|l| l.contains("0x88b5"))
        .unwrap_or_else(|| panic!("h3's tagged frame reaches h1:\n{p1}"));
    assert!(
        !tagged_in.contains("vlan"),
        "and arrives untagged: {tagged_in}"
    );
    assert!(!p2.contains("0x88b5"));
    drop(lab);
    assert_clean("l2h", &hosts);
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn a_hundred_hosts_answer_at_once_and_the_kernels_neighbour_bounds_are_put_back() {
    let gc = |family: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/{family}/neigh/default/gc_thresh3"))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before = (gc("ipv4"), gc("ipv6"));
    let mut toml = String::from(
        "name = \"big\"\n[[switch]]\nname = \"big-lan\"\nsubnet = \"10.87.0.0/16\"\nsubnet6 = \"2001:db8:87::/64\"\n",
    );
    let hosts: Vec<String> = (0..100).map(|i| format!("big{i}")).collect();
    for (i, h) in hosts.iter().enumerate() {
        toml += &format!(
            "[[host]]\nname = \"{h}\"\nswitch = \"big-lan\"\naddress = \"10.87.0.{n}/16\"\naddress6 = \"2001:db8:87::{n:x}/64\"\n",
            n = i + 1
        );
    }
    let mut lab = Lab::up("big", &toml);
    // A hundred hosts' neighbours in the kernel's one table per machine:
    // its bounds are raised for the lab.
    assert!(gc("ipv4") >= 6400 && gc("ipv6") >= 6400, "{before:?}");
    for (a, b) in [(0, 99), (42, 7), (63, 64)] {
        exec_ok(&hosts[a], &format!("ping -c 1 -W 2 10.87.0.{}", b + 1));
        exec_ok(
            &hosts[a],
            &format!("ping -6 -c 1 -W 2 2001:db8:87::{:x}", b + 1),
        );
    }
    let (status, stderr) = lab.stop_with("INT");
    assert!(status.success(), "{stderr}");
    assert_eq!((gc("ipv4"), gc("ipv6")), before, "the bounds are put back");
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    assert_clean("big", &names);
}

/// scripts/ in the repository.
fn script(name: &str) -> String {
    format!("{}/../../scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn ten_thousand_service_hosts_behind_ten_routers_each_answer_and_stop_cleanly() {
    let lab_py = script("services-lab.py");
    let toml = String::from_utf8(sh(&format!("python3 {lab_py} 10 10 100")).stdout).unwrap();
    let list = std::env::temp_dir().join("scratchnet-many-services.list");
    let addresses = sh(&format!("python3 {lab_py} 10 10 100 --list")).stdout;
    assert_eq!(
        addresses
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        10_000
    );
    std::fs::write(&list, addresses).unwrap();
    let mut lab = Lab::up("many-services", &toml);
    // Every one of them, across the core and the router that owns it.
    let got = exec_ok(
        "sclient",
        &format!("python3 {} {}", script("get-all.py"), list.display()),
    );
    let failed: u64 = got.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(failed, 0, "{got}");
    exec_ok("sclient", "curl -sf -m 5 http://10.19.9.101/");
    let _ = std::fs::remove_file(&list);
    let (status, stderr) = lab.stop_with("INT");
    assert!(status.success(), "{stderr}");
    assert_clean("many-services", &["sclient"]);
}
