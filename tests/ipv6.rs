//! Real-namespace tests of IPv6 in the network: the dual-stack reference
//! lab, where real Linux hosts configure themselves from scratchnet's
//! router advertisements and DHCPv6 server, and a routed lab with a
//! smaller transit MTU. rdisc6, dhclient -6, ping -6, traceroute -6,
//! tracepath -6 and curl must agree with it;
//! hostile hosts (rogue RAs, spoofed NAs, long extension chains, tiny
//! fragments, a scan of a /64) get counted drops and change nothing. (The
//! router's own refusal of such chains is tested frame by frame in the
//! router crate: on a host's port, RA guard drops them first.)

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;

fn drops(v: &serde_json::Value, reason: &str) -> u64 {
    v["counters"]["drops"][reason].as_u64().unwrap_or(0)
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn the_reference_lab_is_dual_stack_with_slaac_routing_and_the_uplink() {
    let file = topology_file("reference", topology::REFERENCE_LAB);
    let lab = Lab::up_file("reference", &file);

    // alice configured herself by SLAAC from home-gw's advertisements:
    // an address in the home /64 and a default route to the router's
    // link-local address, learned from the RA.
    let alice = global_address("alice");
    assert!(alice.starts_with("2001:db8:1:0:"), "{alice}");
    let routes = exec_ok("alice", "ip -6 route show default");
    assert!(
        routes.contains("via fe80::") && routes.contains("proto ra"),
        "{routes}"
    );
    // rdisc6 shows what the router advertises.
    let ra = exec_ok("alice", "rdisc6 -1 -w 2000 eth0");
    for want in [
        "Prefix                   : 2001:db8:1::/64",
        "MTU                      :         1500",
        "Recursive DNS server     : 2001:db8:100::53",
        "Stateful other conf.      :          Yes",
    ] {
        assert!(ra.contains(want), "rdisc6 lacks {want:?}:\n{ra}");
    }
    // bob leased his address with dhclient -6 from home-gw's DHCPv6
    // server (the M flag), his route from the RA, his resolver from both.
    let bob = global_address("bob");
    assert_eq!(bob, "2001:db8:1::100");
    let addr = exec_ok("bob", "ip -6 -o addr show dev eth0 scope global");
    assert!(addr.contains("/128"), "{addr}");
    assert!(exec_ok("bob", "ip -6 route show default").contains("proto ra"));
    let resolv = exec_ok("bob", "cat /etc/resolv.conf");
    assert!(
        resolv.contains("nameserver 2001:db8:100::53")
            && resolv.contains("nameserver 198.51.100.53"),
        "{resolv}"
    );
    let gw = lab.router("home-gw");
    let binding = &gw["leases6"][0];
    assert_eq!(binding["ip"], "2001:db8:1::100", "{gw}");
    assert_eq!(binding["state"], "bound");
    assert_eq!(binding["mac"], wire::Mac::local_from("bob").to_string());
    exec_ok("bob", "ping -6 -c 1 -W 2 2001:db8:2::10");
    // Released and leased again through the lab's own command.
    let release = sh(&format!("{} dhcp bob release --lab reference", bin()));
    assert!(
        release.status.success(),
        "{}",
        String::from_utf8_lossy(&release.stderr)
    );
    assert!(exec_ok("bob", "ip -6 -o addr show dev eth0 scope global")
        .trim()
        .is_empty());
    let renew = sh(&format!("{} dhcp bob renew --lab reference", bin()));
    assert!(
        renew.status.success(),
        "{}",
        String::from_utf8_lossy(&renew.stderr)
    );
    assert_eq!(global_address("bob"), "2001:db8:1::100");

    // Routed end to end, without NAT: every hop answers traceroute -6
    // (with echo probes: office-gw's firewall keeps out UDP to carol's
    // closed ports, as a real CPE does).
    assert_eq!(global_address("carol"), "2001:db8:2::10");
    exec_ok("alice", "ping -6 -c 2 -i 0.2 -W 2 2001:db8:2::10");
    exec_ok("carol", &format!("ping -6 -c 2 -i 0.2 -W 2 {alice}"));
    assert_eq!(
        hops_with("alice", "2001:db8:2::10", "-I"),
        [
            "2001:db8:1::1",
            "2001:db8:100::1",
            "2001:db8:100::3",
            "2001:db8:2::10"
        ]
    );
    // The data centre's service hosts answer ping -6 and traceroute -6
    // through their own stacks (their services speak IPv6 with the next
    // issue's work).
    exec_ok("alice", "ping -6 -c 2 -i 0.2 -W 2 2001:db8:113::11");
    assert_eq!(
        hops("alice", "2001:db8:113::11"),
        ["2001:db8:1::1", "2001:db8:100::1", "2001:db8:113::11"]
    );
    // The machine reaches the lab's v6 space through the TUN uplink.
    assert!(
        String::from_utf8_lossy(&sh("ip -6 route show 2001:db8::/32").stdout).contains("dev tun")
    );
    let out = sh("ping -6 -c 2 -i 0.2 -W 2 2001:db8:2::10");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        hops_with("", "2001:db8:2::10", "-I"),
        ["2001:db8:ffff::1", "2001:db8:100::3", "2001:db8:2::10"]
    );

    // home-gw's CPE firewall: alice reaches out, nothing reaches in
    // unasked; office-gw's pinhole lets the machine reach carol's port 80.
    let _alice_server = Background::spawn(&[
        "ip",
        "netns",
        "exec",
        "alice",
        "python3",
        "-m",
        "http.server",
        "--bind",
        "::",
        "7000",
    ]);
    let _carol_server = Background::spawn(&[
        "ip",
        "netns",
        "exec",
        "carol",
        "python3",
        "-m",
        "http.server",
        "--bind",
        "::",
        "80",
    ]);
    std::thread::sleep(Duration::from_millis(800));
    let refused = sh(&format!(
        "curl -sS -m 3 -o /dev/null http://[{alice}]:7000/"
    ));
    assert!(
        !refused.status.success(),
        "the machine reached alice unasked"
    );
    let gw = lab.router("home-gw");
    assert!(
        gw["firewall"]["counters"]["dropped_unsolicited"]
            .as_u64()
            .unwrap()
            >= 1,
        "{gw}"
    );
    assert!(drops(&gw, "firewall") >= 1);
    let via_pinhole = sh("curl -sS -m 5 -o /dev/null -w '%{http_code}' http://[2001:db8:2::10]/");
    assert_eq!(String::from_utf8_lossy(&via_pinhole.stdout), "200");
    exec_ok(
        "alice",
        "curl -sS -m 5 -o /dev/null http://[2001:db8:2::10]/",
    );
    let office = lab.router("office-gw");
    assert!(
        office["firewall"]["counters"]["pinholed"].as_u64().unwrap() >= 1,
        "{office}"
    );

    // What a frame would meet, without sending it: home-gw's route and
    // firewall, isp-gw, office-gw's pinhole, carol.
    let what_if = sh(&format!(
        "{} trace --lab reference --inject alice 'tcp [2001:db8:2::10]:80'",
        bin()
    ));
    let what_if = String::from_utf8_lossy(&what_if.stdout);
    for want in [
        "TCP [2001:db8:1:0:53:4eff:fe87:2213]:40000 > [2001:db8:2::10]:80 [S]",
        "router home-gw        route ::/0 via 2001:db8:100::1 (isp); ttl 64->63",
        "filter home-gw        firewall: new session",
        "filter office-gw      firewall: pinhole",
        "out    carol",
    ] {
        assert!(what_if.contains(want), "no {want:?} in:\n{what_if}");
    }

    // A rogue router advertisement from alice (plain, and hidden behind
    // destination options) never leaves her switch port.
    let gw_mac = lab.router("home-gw")["interfaces"][0]["mac"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(hostile("alice", &gw_mac, "ra6 2001:db8:bad::"), 2);
    assert_eq!(lab.port("alice")["drops"]["ra-guard"], 2);
    // A spoofed advertisement claiming the router's own address is
    // counted, and the router keeps answering for it.
    hostile("alice", &gw_mac, &format!("na6 {alice} 2001:db8:1::1"));
    exec_ok("alice", "ping -6 -c 1 -W 2 2001:db8:1::1");
    // A short extension chain is forwarded. A long one, or a first
    // fragment without the whole chain, hides what it carries: RA guard
    // drops it at alice's port (RFC 7113), before any router.
    hostile(
        "alice",
        &gw_mac,
        &format!("ext-chain6 {alice} 2001:db8:2::10 3"),
    );
    hostile(
        "alice",
        &gw_mac,
        &format!("ext-chain6 {alice} 2001:db8:2::10 12"),
    );
    hostile(
        "alice",
        &gw_mac,
        &format!("tiny-frag6 {alice} 2001:db8:2::10"),
    );
    assert_eq!(lab.port("alice")["drops"]["ra-guard"], 4);
    let gw = lab.router("home-gw");
    assert_eq!(drops(&gw, "address-conflict"), 1, "{gw}");
    assert!(gw["counters"]["forwarded_with_options"].as_u64().unwrap() >= 1);
    exec_ok("alice", "ping -6 -c 1 -W 2 2001:db8:2::10");
    stop_and_assert_clean(lab, topology::REFERENCE_LAB);
    assert!(sh("ip -6 route show 2001:db8::/32").stdout.is_empty());
}

/// lan1 (2001:db8:N1::/64, host -a by SLAAC) — r1 — transit
/// (2001:db8:N0::/64, MTU 1400) — r2 — lan2 (2001:db8:N2::/64, host -b
/// static). IPv4 beside it, as every router interface needs.
fn routed6(lab: &str, n: u8) -> String {
    format!(
        r#"
name = "{lab}"
[[switch]]
name = "{lab}-lan1"
subnet = "10.{n}.1.0/24"
subnet6 = "2001:db8:{n}1::/64"
[[switch]]
name = "{lab}-tr"
subnet = "10.{n}.0.0/24"
subnet6 = "2001:db8:{n}0::/64"
mtu = 1400
[[switch]]
name = "{lab}-lan2"
subnet = "10.{n}.2.0/24"
subnet6 = "2001:db8:{n}2::/64"
[[host]]
name = "{lab}-a"
switch = "{lab}-lan1"
address = "10.{n}.1.10/24"
address6 = "slaac"
[[host]]
name = "{lab}-b"
switch = "{lab}-lan2"
address = "10.{n}.2.10/24"
address6 = "2001:db8:{n}2::10/64"
gateway6 = "2001:db8:{n}2::1"
[[router]]
name = "{lab}-r1"
interfaces = [
  {{ switch = "{lab}-lan1", address = "10.{n}.1.1/24", address6 = "2001:db8:{n}1::1/64", ra = {{}} }},
  {{ switch = "{lab}-tr", address = "10.{n}.0.1/24", address6 = "2001:db8:{n}0::1/64", mtu = 1400 }},
]
routes = [{{ to = "2001:db8:{n}2::/64", via = "2001:db8:{n}0::2" }}]
[[router]]
name = "{lab}-r2"
interfaces = [
  {{ switch = "{lab}-tr", address = "10.{n}.0.2/24", address6 = "2001:db8:{n}0::2/64", mtu = 1400 }},
  {{ switch = "{lab}-lan2", address = "10.{n}.2.1/24", address6 = "2001:db8:{n}2::1/64" }},
]
routes = [{{ to = "::/0", via = "2001:db8:{n}0::1" }}]
"#
    )
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn path_mtu_discovery_and_a_scan_of_a_64_against_real_hosts() {
    let text = routed6("v6r", 66);
    let lab = Lab::up("v6r", &text);
    let a = global_address("v6r-a");
    global_address("v6r-b");
    // Routers never fragment IPv6: tracepath learns the transit's 1400
    // bytes from r1's Packet Too Big, and a large ping gets through once
    // the sender has cut it to fit.
    let tp = exec_ok("v6r-a", "tracepath -6 -n 2001:db8:662::10");
    assert!(tp.contains("pmtu 1400"), "{tp}");
    let _ = sh("ip netns exec v6r-a ping -6 -c 1 -W 2 -s 1452 2001:db8:662::10");
    exec_ok("v6r-a", "ping -6 -c 2 -W 2 -s 1452 2001:db8:662::10");
    let r1 = lab.router("v6r-r1");
    assert!(drops(&r1, "fragmentation-needed") >= 1, "{r1}");

    // b scans a's /64: 3,000 datagrams to addresses nobody holds. r1
    // solicits each within its neighbour budget, and a is still reached.
    python_ok(
        "v6r-b",
        r#"
import random, socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for i in range(3000):
    host = random.getrandbits(64)
    addr = "2001:db8:661:0:%x:%x:%x:%x" % (host >> 48, (host >> 32) & 0xffff, (host >> 16) & 0xffff, host & 0xffff)
    try:
        s.sendto(b"scan", (addr, 9))
    except OSError:
        pass
"#,
    );
    let r1 = lab.router("v6r-r1");
    let t = &r1["arp_table"];
    assert!(
        t["queued_bytes"].as_u64() <= t["max_queued_bytes"].as_u64(),
        "{t}"
    );
    assert!(
        t["entries"].as_u64().unwrap() < 10,
        "nothing learned from a scan: {t}"
    );
    exec_ok("v6r-b", &format!("ping -6 -c 2 -i 0.2 -W 2 {a}"));
    stop_and_assert_clean(lab, &text);
}

/// The multicast groups the status shows on a lab's switches, as
/// (group, port) pairs.
fn groups(lab: &Lab) -> Vec<(String, String)> {
    let s = lab.status_json();
    let mut rows = Vec::new();
    for sw in s["fabric"]["switches"].as_array().unwrap() {
        for g in sw["groups"].as_array().unwrap() {
            for p in g["ports"].as_array().unwrap() {
                let group = g["group"].as_str().unwrap().to_owned();
                rows.push((group, p.as_str().unwrap().to_owned()));
            }
        }
    }
    rows
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn a_hosts_link_local_multicast_reaches_only_the_hosts_that_joined() {
    let mut toml = String::from(
        "name = \"mc6\"\n[[switch]]\nname = \"mc6-lan\"\nsubnet = \"10.66.0.0/24\"\nsubnet6 = \"2001:db8:66::/64\"\n",
    );
    for (i, h) in ["mc6-a", "mc6-b", "mc6-c"].iter().enumerate() {
        toml += &format!(
            "[[host]]\nname = \"{h}\"\nswitch = \"mc6-lan\"\naddress = \"10.66.0.{n}/24\"\naddress6 = \"2001:db8:66::{n}/64\"\n",
            n = i + 1
        );
    }
    let lab = Lab::up("mc6", &toml);
    // Each host reported its groups (its solicited-node groups): at once,
    // or in answer to the switch's querier if its first reports were lost.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let rows = groups(&lab);
        let reported = |host: &str| rows.iter().any(|(_, p)| p == host);
        if ["mc6-a", "mc6-b", "mc6-c"].iter().all(|h| reported(h)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every host reported: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // carol's view (mc6-c): every multicast frame from mc6-a but those to
    // all nodes, while mc6-a takes a new address (an MLD report, then
    // duplicate address detection to the new address's solicited-node
    // group) and finds mc6-b (a solicitation to mc6-b's group).
    let a_mac = exec_ok("mc6-a", "cat /sys/class/net/eth0/address");
    let seen = std::env::temp_dir().join("scratchnet-tests/mc6-seen.txt");
    let _ = std::fs::remove_file(&seen);
    let filter = format!(
        "ether src {} and ip6 multicast and not ip6 dst ff02::1",
        a_mac.trim()
    );
    let listen = format!(
        "timeout 6 tcpdump -i eth0 -n -e -l '{filter}' > {} 2>&1",
        seen.display()
    );
    let capture = Background::spawn(&["ip", "netns", "exec", "mc6-c", "sh", "-c", &listen]);
    std::thread::sleep(Duration::from_secs(1));
    exec_ok("mc6-a", "ip -6 addr add 2001:db8:66::99/64 dev eth0");
    std::thread::sleep(Duration::from_secs(2));
    exec_ok("mc6-a", "ping -6 -c 2 -W 2 2001:db8:66::2");
    // What mc6-a joined reaches it: mc6-c finds its new address.
    exec_ok("mc6-c", "ping -6 -c 2 -W 2 2001:db8:66::99");
    std::thread::sleep(Duration::from_secs(3));
    drop(capture);
    let text = std::fs::read_to_string(&seen).unwrap_or_default();
    assert!(
        text.contains("0 packets captured"),
        "mc6-c heard mc6-a's link-local multicast:\n{text}"
    );
    assert!(
        groups(&lab).contains(&("ff02::1:ff00:99".to_owned(), "mc6-a".to_owned())),
        "{:?}",
        groups(&lab)
    );
    let s = lab.status_json();
    let snooping = &s["fabric"]["switches"][0]["snooping"];
    for counter in ["reports", "queries_sent", "constrained"] {
        assert!(
            snooping[counter].as_u64() > Some(0),
            "{counter}: {snooping}"
        );
    }
    let text = sh(&format!("{} status --lab mc6", bin())).stdout;
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("ff02::1:ff00:99"), "{text}");
}
