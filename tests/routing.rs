//! Real-namespace tests of routing: hosts on two LANs joined by two
//! scratchnet routers over a transit link with a smaller MTU, a DHCP host,
//! and a TUN uplink from the machine's own namespace. Real ping,
//! traceroute, tracepath, dhclient and iperf3 must see a routed network.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;

/// lan1 (10.N.1.0/24: host -a static, host -d DHCP) — r1 — transit
/// (10.N.0.0/24, MTU 1400) — r2 — lan2 (10.N.2.0/24: host -b). r1 also
/// has a TUN link to the machine (198.18.N.0/30) routing 10.N.0.0/16.
fn routed(lab: &str, n: u8) -> String {
    format!(
        r#"
name = "{lab}"
[[switch]]
name = "{lab}-lan1"
subnet = "10.{n}.1.0/24"
[[switch]]
name = "{lab}-tr"
subnet = "10.{n}.0.0/24"
mtu = 1400
[[switch]]
name = "{lab}-lan2"
subnet = "10.{n}.2.0/24"
[[host]]
name = "{lab}-a"
switch = "{lab}-lan1"
address = "10.{n}.1.10/24"
gateway = "10.{n}.1.1"
[[host]]
name = "{lab}-d"
switch = "{lab}-lan1"
address = "dhcp"
[[host]]
name = "{lab}-b"
switch = "{lab}-lan2"
address = "10.{n}.2.10/24"
gateway = "10.{n}.2.1"
[[router]]
name = "{lab}-r1"
interfaces = [
  {{ switch = "{lab}-lan1", address = "10.{n}.1.1/24" }},
  {{ switch = "{lab}-tr", address = "10.{n}.0.1/24", mtu = 1400 }},
  {{ tun = "host", address = "198.18.{n}.1/30", peer = "198.18.{n}.2", host_routes = ["10.{n}.0.0/16"] }},
]
routes = [{{ to = "10.{n}.2.0/24", via = "10.{n}.0.2" }}]
dhcp = [{{ switch = "{lab}-lan1", range = "10.{n}.1.100-10.{n}.1.109", dns = ["10.{n}.2.53"], lease_secs = 600 }}]
[[router]]
name = "{lab}-r2"
interfaces = [
  {{ switch = "{lab}-tr", address = "10.{n}.0.2/24", mtu = 1400 }},
  {{ switch = "{lab}-lan2", address = "10.{n}.2.1/24" }},
]
routes = [{{ to = "0.0.0.0/0", via = "10.{n}.0.1" }}]
"#
    )
}

fn hosts(lab: &str) -> [String; 3] {
    [format!("{lab}-a"), format!("{lab}-b"), format!("{lab}-d")]
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn ping_traceroute_tracepath_dhcp_and_the_host_uplink_behave_as_on_a_routed_network() {
    let mut lab = Lab::up("l3a", &routed("l3a", 63));
    exec_ok("l3a-a", "ping -c 2 -i 0.2 -W 2 10.63.2.10");
    exec_ok("l3a-b", "ping -c 2 -i 0.2 -W 2 10.63.1.10");

    // traceroute lists every hop: r1's LAN address, r2's transit address,
    // the destination.
    assert_eq!(
        hops("l3a-a", "10.63.2.10"),
        ["10.63.1.1", "10.63.0.2", "10.63.2.10"]
    );

    // tracepath finds the transit link's 1400-byte MTU from r1's ICMP
    // Fragmentation Needed.
    let tp = exec_ok("l3a-a", "tracepath -n 10.63.2.10");
    assert!(tp.contains("pmtu 1400"), "{tp}");

    // The DHCP host got a lease from r1 with the router and DNS options.
    let addr = exec_ok("l3a-d", "ip -4 -o addr show dev eth0");
    assert!(addr.contains("inet 10.63.1.100/24"), "{addr}");
    assert!(exec_ok("l3a-d", "ip route").contains("default via 10.63.1.1"));
    assert!(exec_ok("l3a-d", "cat /etc/resolv.conf").contains("nameserver 10.63.2.53"));
    exec_ok("l3a-d", "ping -c 2 -i 0.2 -W 2 10.63.1.1");
    exec_ok("l3a-d", "ping -c 2 -i 0.2 -W 2 10.63.2.10");
    let r1 = lab.router("l3a-r1");
    let lease = &r1["leases"][0];
    assert_eq!(
        (lease["ip"].as_str(), lease["state"].as_str()),
        (Some("10.63.1.100"), Some("bound"))
    );
    assert_eq!(lease["mac"], wire::Mac::local_from("l3a-d").to_string());
    assert!(
        r1["counters"]["icmp_errors_sent"].as_u64().unwrap() >= 3,
        "time exceeded, port unreachable, fragmentation needed"
    );

    // The machine itself reaches the lab through the TUN link...
    assert!(String::from_utf8_lossy(&sh("ip route show 10.63.0.0/16").stdout).contains("dev tun"));
    let out = sh("ping -c 2 -i 0.2 -W 2 10.63.2.10");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // ...with TCP too, to a server in a namespace.
    let mut server = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            "l3a-b",
            "sh",
            "-c",
            "echo hello-from-b | timeout 10 nc -l -N 10.63.2.10 7000",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let got = sh("timeout 10 nc -N 10.63.2.10 7000 < /dev/null");
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "hello-from-b");
    server.wait().unwrap();

    let (status, stderr) = lab.stop_with("TERM");
    assert!(status.success(), "{stderr}");
    let h = hosts("l3a");
    assert_clean("l3a", &[&h[0], &h[1], &h[2]]);
    assert!(
        sh("ip route show 10.63.0.0/16").stdout.is_empty(),
        "the host route is gone"
    );
    // ([d] keeps pgrep from matching the shell that runs it.)
    assert!(
        !sh("pgrep -f '[d]hclient.*l3a'").status.success(),
        "no DHCP client left running"
    );
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn iperf3_crosses_two_routers_in_both_directions() {
    let lab = Lab::up("l3b", &routed("l3b", 64));
    for reverse in [false, true] {
        exec_ok("l3b-b", "iperf3 -s -D -1 -I /tmp/scratchnet-l3b-iperf.pid");
        std::thread::sleep(Duration::from_millis(300));
        let out = exec_ok(
            "l3b-a",
            &format!(
                "iperf3 -J -t 2 -c 10.64.2.10{}",
                if reverse { " -R" } else { "" }
            ),
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let bytes = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
        assert!(bytes > 10 << 20, "reverse={reverse}: {bytes} bytes");
    }
    // Super-frames crossed whole where they fit; the 1400-byte transit
    // made the senders lower their segment size through PMTUD.
    let r1 = lab.router("l3b-r1");
    assert!(
        r1["counters"]["forwarded_gso"].as_u64().unwrap() > 0,
        "{r1}"
    );
    drop(lab);
    let h = hosts("l3b");
    assert_clean("l3b", &[&h[0], &h[1], &h[2]]);
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn malformed_ip_is_dropped_and_counted_and_the_router_keeps_serving() {
    let lab = Lab::up("l3c", &routed("l3c", 65));
    exec_ok("l3c-a", "ping -c 1 -W 2 10.65.1.1"); // resolves r1's MAC
    let r1_mac = wire::Mac::local_from("l3c-r1.l3c-lan1")
        .to_string()
        .replace(':', "");
    let a_mac = wire::Mac::local_from("l3c-a").to_string().replace(':', "");
    let script = format!(
        r#"
import socket, struct
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def ip(ttl=64, ihl=5, total=None, opts=b"", payload=b"\x00" * 8, proto=17, good=True):
    hdr_len = 20 + len(opts)
    t = total if total is not None else hdr_len + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, t, 1, 0, ttl, proto, 0,
                    socket.inet_aton("10.65.1.10"), socket.inet_aton("10.65.2.10")) + opts
    c = csum(h) if good else 0x1234
    return h[:10] + struct.pack("!H", c) + h[12:] + payload
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
eth = bytes.fromhex("{r1_mac}") + bytes.fromhex("{a_mac}") + b"\x08\x00"
for p in [
    ip(good=False),                       # bad header checksum
    ip(ihl=4),                            # IHL below 5
    ip(total=1400),                       # total length beyond the frame
    ip(ttl=0), ip(ttl=1),                 # TTL expired
    ip(ihl=6, opts=b"\x01\x01\x01\x00"),  # options: forwarded
]:
    s.send(eth + p)
"#
    );
    let path = std::env::temp_dir()
        .join("scratchnet-tests")
        .join("l3c-bad-ip.py");
    std::fs::write(&path, script).unwrap();
    exec_ok("l3c-a", &format!("python3 {}", path.display()));
    std::thread::sleep(Duration::from_millis(300));
    let c = lab.router("l3c-r1")["counters"].clone();
    let drops = &c["drops"];
    assert!(drops["bad-checksum"].as_u64().unwrap_or(0) >= 1, "{c}");
    assert!(drops["malformed"].as_u64().unwrap_or(0) >= 2, "{c}");
    assert!(drops["ttl-expired"].as_u64().unwrap_or(0) >= 2, "{c}");
    assert!(
        c["forwarded_with_options"].as_u64().unwrap_or(0) >= 1,
        "{c}"
    );
    exec_ok("l3c-a", "ping -c 2 -i 0.2 -W 2 10.65.2.10");
    drop(lab);
    let h = hosts("l3c");
    assert_clean("l3c", &[&h[0], &h[1], &h[2]]);
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn dhcp_clients_leasing_at_once_each_get_their_resolver() {
    // Eight clients run the lab's dhclient-script at the same moment:
    // each writes its own host's resolv.conf, none another's.
    let hosts: Vec<String> = (0..8).map(|i| format!("l3d-h{i}")).collect();
    let mut toml = String::from(
        r#"
name = "l3d"
[[switch]]
name = "l3d-lan"
subnet = "10.67.1.0/24"
[[router]]
name = "l3d-r"
interfaces = [{ switch = "l3d-lan", address = "10.67.1.1/24" }]
dhcp = [{ switch = "l3d-lan", range = "10.67.1.100-10.67.1.120", dns = ["10.67.1.53"] }]
"#,
    );
    for h in &hosts {
        toml += &format!("[[host]]\nname = \"{h}\"\nswitch = \"l3d-lan\"\naddress = \"dhcp\"\n");
    }
    let lab = Lab::up("l3d", &toml);
    for h in &hosts {
        let conf = std::fs::read_to_string(format!("/etc/netns/{h}/resolv.conf")).unwrap();
        assert!(conf.contains("nameserver 10.67.1.53"), "{h}: {conf:?}");
    }
    drop(lab);
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    assert_clean("l3d", &names);
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn the_reference_lab_comes_up_with_its_routers_dhcp_and_host_uplink() {
    // The embedded lab, as `sudo scratchnet up` builds it.
    let file = topology_file("reference", topology::REFERENCE_LAB);
    let mut lab = Lab::up_file("reference", &file);
    // bob leases 192.168.1.100 from home-gw, with its router and resolver.
    assert!(exec_ok("bob", "ip -4 -o addr show dev eth0").contains("inet 192.168.1.100/24"));
    assert!(exec_ok("bob", "cat /etc/resolv.conf").contains("nameserver 198.51.100.53"));
    exec_ok("bob", "ping -c 2 -i 0.2 -W 2 192.168.1.1");
    exec_ok("alice", "ping -c 2 -i 0.2 -W 2 192.168.1.1");
    exec_ok("alice", "ping -c 2 -i 0.2 -W 2 192.168.1.100");
    exec_ok("carol", "ping -c 2 -i 0.2 -W 2 10.1.0.1");
    assert!(exec_ok("alice", "cat /etc/resolv.conf").contains("nameserver 198.51.100.53"));
    // Behind their NATs, alice and carol reach the ISP and the data centre.
    exec_ok("alice", "ping -c 2 -i 0.2 -W 2 203.0.113.1");
    exec_ok("carol", "ping -c 2 -i 0.2 -W 2 203.0.113.1");
    assert_eq!(hops("alice", "203.0.113.1"), ["192.168.1.1", "203.0.113.1"]);
    let status = lab.status_json();
    let home = status["fabric"]["routers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "home-gw")
        .cloned()
        .unwrap();
    assert!(
        home["nat"]["table"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["inside"]
                .as_str()
                .is_some_and(|i| i.starts_with("192.168.1.10:"))
                && e["outside"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("198.51.100.2:"))),
        "{home}"
    );
    // The machine reaches the ISP and the data centre through isp-gw's TUN.
    for addr in ["198.51.100.1", "198.51.100.2", "203.0.113.1"] {
        let out = sh(&format!("ping -c 1 -W 2 {addr}"));
        assert!(
            out.status.success(),
            "host -> {addr}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert_eq!(hops("", "198.51.100.2"), ["198.18.0.1", "198.51.100.2"]);
    let (status, stderr) = lab.stop_with("TERM");
    assert!(status.success(), "{stderr}");
    assert_clean("reference", &["alice", "bob", "carol"]);
    assert!(
        sh("ip route show 203.0.113.0/24").stdout.is_empty(),
        "host routes removed"
    );
}
