//! Real-namespace tests of VXLAN tunnel ports (RFC 7348): a Linux `vxlan`
//! device in a namespace joins a scratchnet switch and reaches the lab's
//! hosts (ping, TCP both ways, a mebibyte intact); datagrams with a wrong
//! VNI, a broken header, too short, too big, or from an unknown peer are
//! dropped and counted.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// A namespace with a Linux vxlan device, joined to the machine by a veth
/// pair; removed when dropped.
struct Peer;

impl Peer {
    /// vx-peer: veth 172.31.83.2/29 (and .3, an address the tunnel does
    /// not know) to the machine's 172.31.83.1; vx0 (VNI 42, MTU 1400) at
    /// 10.77.83.99/24.
    fn new() -> Peer {
        Peer::remove();
        for cmd in [
            "ip netns add vx-peer",
            "ip link add vxr0 type veth peer name vxr1",
            "ip link set vxr1 netns vx-peer",
            "ip addr add 172.31.83.1/29 dev vxr0",
            "ip link set vxr0 up",
            "ip -n vx-peer addr add 172.31.83.2/29 dev vxr1",
            "ip -n vx-peer addr add 172.31.83.3/29 dev vxr1",
            "ip -n vx-peer link set vxr1 up",
            "ip -n vx-peer link set lo up",
            "ip -n vx-peer link add vx0 type vxlan id 42 local 172.31.83.2 remote 172.31.83.1 dstport 4789 srcport 4789 4790 dev vxr1",
            "ip -n vx-peer link set vx0 mtu 1400 up",
            // On one machine the inner checksums would stay partial (the
            // packet never meets a NIC to finish them), and a userspace
            // peer has no way to know: the device computes them itself.
            "ip netns exec vx-peer ethtool -K vx0 tx off",
            "ip -n vx-peer addr add 10.77.83.99/24 dev vx0",
        ] {
            let out = sh(cmd);
            assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Peer
    }

    fn remove() {
        sh("ip netns delete vx-peer 2>/dev/null; ip link delete vxr0 2>/dev/null");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        Peer::remove();
    }
}

const LAB: &str = r#"
name = "vxl"
[[switch]]
name = "vx-lan"
subnet = "10.77.83.0/24"
vxlan = [{ vni = 42, local = "172.31.83.1", remote = "172.31.83.2" }]
[[host]]
name = "vx-a"
switch = "vx-lan"
address = "10.77.83.10/24"
[[service]]
name = "vx-web"
kind = "http"
switch = "vx-lan"
address = "10.77.83.80/24"
"#;

/// Sends `hex`-encoded datagrams from `src` in vx-peer to the tunnel.
fn send_raw(src: &str, sport: u16, datagrams: &[String]) {
    let list = datagrams
        .iter()
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(",");
    // A raw UDP socket: the source port is ours to write, even the one
    // the peer's vxlan device holds (a UDP checksum of 0 means none).
    let program = format!(
        "import socket, struct\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)\n\
         s.bind(('{src}', 0))\n\
         for d in [{list}]:\n\
         \x20   d = bytes.fromhex(d)\n\
         \x20   s.sendto(struct.pack('!HHHH', {sport}, 4789, 8 + len(d), 0) + d, ('172.31.83.1', 0))\n"
    );
    python_ok("vx-peer", &program);
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn a_linux_vxlan_device_joins_a_switch_and_bad_datagrams_are_counted() {
    let _peer = Peer::new();
    let lab = Lab::up("vxl", LAB);

    // ARP, then ping, across the tunnel, to a host and a service host.
    exec_ok("vx-peer", "ping -c 2 -W 2 10.77.83.10");
    exec_ok("vx-peer", "ping -c 2 -W 2 10.77.83.80");

    // A mebibyte from the service host, intact: the fabric cuts vx-web's
    // segments to the peer's MSS, no offload crosses the tunnel.
    let sum = script_ok(
        "vx-peer",
        "curl -s -m 20 http://10.77.83.80/bytes/1048576 | sha256sum",
    );
    let expected: Vec<u8> = (0..1_048_576usize).map(|i| (i % 251) as u8).collect();
    let expected = script_ok("vx-a", &format!(
        "python3 -c \"import sys,hashlib;print(hashlib.sha256(bytes(i%251 for i in range({}))).hexdigest())\"",
        expected.len()
    ));
    assert_eq!(
        sum.split_whitespace().next(),
        expected.split_whitespace().next()
    );

    // And a mebibyte from a namespace host the other way, with TSO on
    // vx-a's side: super-frames are cut to wire size for the tunnel.
    let _sink = Background::spawn(&[
        "ip",
        "netns",
        "exec",
        "vx-peer",
        "sh",
        "-c",
        "nc -l -p 9000 > /tmp/vx-received",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    script_ok(
        "vx-a",
        "head -c 1048576 /dev/urandom > /tmp/vx-sent && nc -N -w 5 10.77.83.99 9000 < /tmp/vx-sent",
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let same = sh("cmp /tmp/vx-sent /tmp/vx-received");
    assert!(
        same.status.success(),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );

    // Bad input: each dropped and counted, none stops the tunnel.
    let frame =
        "ffffffffffff02000000000108060001080006040001020000000001ac1f5363000000000000ac1f5301";
    send_raw(
        "172.31.83.2",
        4789,
        &[
            format!("0800000000002b00{frame}"), // VNI 43
            format!("0000000000002a00{frame}"), // no I flag
            "08000000".to_owned(),              // truncated
            format!(
                "0800000000002a00ffffffffffff0200000000010800{}",
                "45".repeat(9000)
            ), // bigger than the switch takes
        ],
    );
    send_raw("172.31.83.3", 4789, &[format!("0800000000002a00{frame}")]); // unknown peer
    send_raw("172.31.83.2", 5555, &[format!("0800000000002a00{frame}")]); // the peer's address, another port
    std::thread::sleep(std::time::Duration::from_millis(300));
    let port = lab.port("vx-lan.vxlan42");
    let io = &port["io_errors"];
    for (key, count) in [
        ("vxlan-wrong-vni", 1),
        ("vxlan-bad-header", 1),
        ("vxlan-truncated", 1),
        ("vxlan-unknown-peer", 2),
    ] {
        assert_eq!(io[key], count, "{key}: {port}");
    }
    assert!(port["drops"]["oversize"].as_u64() >= Some(1), "{port}");
    exec_ok("vx-peer", "ping -c 1 -W 2 10.77.83.10");
    drop(lab);
    assert_clean("vxl", &["vx-a"]);
}

/// A half of docker's split reference lab, its tunnel over loopback.
fn half(file: &str, local: &str, remote: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docker")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    let peer = if file.contains("home") {
        "lab-dc"
    } else {
        "lab-home"
    };
    text.replace(
        &format!("remote = \"{peer}\""),
        &format!("remote = \"{remote}\", local = \"{local}\""),
    )
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn two_scratchnets_joined_by_vxlan_run_the_split_reference_lab() {
    let dc = Lab::up("split-dc", &half("split-dc.toml", "127.0.0.2", "127.0.0.1"));
    let home = Lab::up(
        "split-home",
        &half("split-home.toml", "127.0.0.1", "127.0.0.2"),
    );
    // alice's trace crosses home-gw (this process), the tunnel, isp-gw
    // (the other process) to web1.
    let hops = hops("alice", "203.0.113.11");
    assert_eq!(
        hops,
        ["192.168.1.1", "198.51.100.1", "203.0.113.11"],
        "{hops:?}"
    );
    // DNS through isp-dns on the far side, and the balancer there.
    let answer = exec_ok("alice", "dig +short www.example.com");
    assert_eq!(answer.trim(), "203.0.113.10");
    let page = exec_ok("alice", "curl -s -m 10 http://www.example.com/");
    assert!(page.starts_with("server: web"), "{page}");
    assert!(
        page.contains("x-forwarded-for: 198.51.100.2"),
        "through home-gw's NAT: {page}"
    );
    // Both ends count the tunnel's frames.
    let sent = home.port("isp.vxlan100")["tx_frames"].as_u64().unwrap();
    let got = dc.port("isp.vxlan100")["rx_frames"].as_u64().unwrap();
    assert!(sent > 10 && got > 10, "{sent} sent, {got} received");
    drop(home);
    drop(dc);
    assert_clean("split-home", &["alice", "bob", "carol"]);
}
