//! The lab's authoritative DNS servers answering the system's `dig` from a
//! namespace: the root, the TLDs and example.com. These need root;
//! scripts/test.sh runs them as root.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// dig's output with each run of spaces and tabs made one space.
fn dig(args: &str) -> String {
    let out = exec_ok("alice", &format!("dig +time=2 +tries=1 {args}"));
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Both run on one reference lab (one lab of that name at a time).
#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn dns_in_the_reference_lab() {
    let file = topology_file("reference", topology::REFERENCE_LAB);
    let lab = Lab::up_file("reference", &file);
    the_lab_root_tlds_and_example_com_answer_dig();
    scratchnet_trace_dns_shows_the_walk_and_a_traced_dig_links_the_resolvers_queries();
    isp_dns_resolves_for_alice_and_bob_walking_root_com_example_com();
    dns_over_ipv6_aaaa_reverse_and_trace();
    the_dns_conformance_tools_pass_over_both_families();
    the_resolver_fails_over_to_ns2_when_ns1_is_down();
    // What the resolver did, in `scratchnet status`.
    let status = lab.status_json();
    let c = &status["service_counters"]["isp-dns"];
    for counter in [
        "questions",
        "cache_hits",
        "upstream_queries",
        "local_zone_answers",
        "cache_entries",
    ] {
        assert!(c[counter].as_u64().unwrap() > 0, "{counter}: {c}");
    }
}

/// With ns1.example.com's link down, names under example.com still
/// resolve: the resolver asks ns2 when ns1 does not answer (RFC 1034's
/// reason for two servers).
fn the_resolver_fails_over_to_ns2_when_ns1_is_down() {
    let link = |state: &str| {
        let out = std::process::Command::new(bin())
            .args(["link", "example-ns", state, "--lab", "reference"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    link("down");
    for name in ["mail.example.com", "web2.example.com"] {
        let a = dig(&format!("+short +time=5 +tries=1 {name}"));
        assert!(a.trim().starts_with("203.0.113."), "{name}: {a}");
    }
    let ns1 = sh("ip netns exec alice dig +time=1 +tries=1 @203.0.113.55 www.example.com");
    assert!(!ns1.status.success(), "ns1 answered with its link down");
    link("up");
}

fn scratchnet_trace_dns_shows_the_walk_and_a_traced_dig_links_the_resolvers_queries() {
    let walk = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .args(["trace", "dns", "--lab", "reference"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_lowercase()
    };
    // The first question walks from the root (names as sent, in 0x20 case).
    let first = walk(&["www.example.com"]);
    // Each zone's servers are asked over IPv4 or IPv6, as their
    // round-trip times choose: either address of a step will do.
    for steps in [
        &["www.example.com. a via the resolver at 198.51.100.53"][..],
        &["  1  cache miss: www.example.com. a"],
        &[
            "ask 203.0.113.53 (for .): com. a (minimised) over udp",
            "ask 2001:db8:113::53 (for .): com. a (minimised) over udp",
        ],
        &["referral to com. (a.gtld-servers.net.), glue a.gtld-servers.net. 203.0.113.54, a.gtld-servers.net. 2001:db8:113::54"],
        &[
            "ask 203.0.113.54 (for com.): example.com. a (minimised) over udp",
            "ask 2001:db8:113::54 (for com.): example.com. a (minimised) over udp",
        ],
        &["referral to example.com. (ns1.example.com., ns2.example.com.), glue ns1.example.com. 203.0.113.55, ns1.example.com. 2001:db8:113::55, ns2.example.com. 203.0.113.56, ns2.example.com. 2001:db8:113::56"],
        // ns1 or ns2, whichever the resolver picked.
        &["(for example.com.): www.example.com. a over udp"],
        &["answer www.example.com. 3600 in a 203.0.113.10"],
        &["status: noerror"],
    ] {
        assert!(
            steps.iter().any(|s| first.contains(s)),
            "none of {steps:?} in\n{first}"
        );
    }
    let again = walk(&["www.example.com"]);
    assert!(
        again.contains("  1  cache hit: www.example.com. a"),
        "{again}"
    );
    let mx = walk(&["nothing.example.com", "MX"]);
    assert!(mx.contains("nxdomain, cached 300 s"), "{mx}");
    // A dig from alice, traced: the resolver's query answers alice's
    // question, example-ns's reply answers that, and the resolver's steps
    // are noted on the frames that caused them.
    let traced = trace_while(&["alice", "-c", "1", "-f", "udp port 53"], || {
        dig("+short web3.example.com");
    });
    for line in [
        "alice -> udp 192.168.1.10:",
        "host   isp-dns        cache miss: web3.example.com. a",
        "isp-dns (answering #1) -> udp ",
        "(for example.com.): web3.example.com. a over udp",
        "isp-dns (answering #",
    ] {
        assert!(
            traced.to_lowercase().contains(line),
            "no `{line}` in\n{traced}"
        );
    }
    // ns1 or ns2 answered, as the resolver picked.
    assert!(
        ["example-ns (answering #", "example-ns2 (answering #"]
            .iter()
            .any(|l| traced.contains(l)),
        "no answer from example.com's servers in\n{traced}"
    );
}

fn the_lab_root_tlds_and_example_com_answer_dig() {
    // example.com's own server: answers with AA, over UDP and TCP.
    let www = dig("@203.0.113.55 www.example.com");
    assert!(www.contains("status: NOERROR"), "{www}");
    assert!(www.contains("flags: qr aa"), "{www}");
    assert!(
        www.contains("www.example.com. 3600 IN A 203.0.113.10"),
        "{www}"
    );
    assert_eq!(
        dig("+short @203.0.113.55 api.example.com")
            .lines()
            .collect::<Vec<_>>(),
        ["www.example.com.", "203.0.113.10"]
    );
    assert_eq!(
        dig("+short +tcp @203.0.113.55 example.com MX").trim(),
        "10 mail.example.com."
    );
    assert!(dig("+short @203.0.113.55 example.com TXT").contains("v=spf1 mx -all"));
    // A zone transfer, from the lab (alice, through home-gw's NAT).
    let axfr = dig("axfr example.com @203.0.113.55");
    let soas = axfr
        .lines()
        .filter(|l| l.starts_with("example.com. ") && l.contains(" IN SOA "))
        .count();
    assert_eq!(soas, 2, "{axfr}");
    assert!(
        axfr.contains("web3.example.com. 3600 IN A 203.0.113.13"),
        "{axfr}"
    );
    let nx = dig("@203.0.113.55 nope.example.com");
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(
        nx.contains("IN SOA ns1.example.com. hostmaster.example.com."),
        "{nx}"
    );
    // The root refers to com. with glue; com. to example.com with glue.
    let root = dig("+norec @203.0.113.53 www.example.com");
    assert!(
        root.contains("com. 86400 IN NS a.gtld-servers.net."),
        "{root}"
    );
    assert!(
        root.contains("a.gtld-servers.net. 86400 IN A 203.0.113.54"),
        "{root}"
    );
    let tld = dig("+norec @203.0.113.54 www.example.com");
    assert!(
        tld.contains("example.com. 86400 IN NS ns1.example.com."),
        "{tld}"
    );
    assert!(
        tld.contains("ns1.example.com. 86400 IN A 203.0.113.55"),
        "{tld}"
    );
    // Not its zone: REFUSED.
    assert!(dig("@203.0.113.54 example.org").contains("status: REFUSED"));
}

fn isp_dns_resolves_for_alice_and_bob_walking_root_com_example_com() {
    // alice's resolver is isp-dns (static); bob's came by DHCP.
    let www = dig("www.example.com");
    assert!(www.contains("status: NOERROR"), "{www}");
    assert!(www.contains("flags: qr rd ra"), "{www}");
    assert!(
        www.contains("www.example.com. 3600 IN A 203.0.113.10"),
        "{www}"
    );
    let resolv = exec_ok("bob", "cat /etc/resolv.conf");
    assert!(resolv.contains("nameserver 198.51.100.53"), "{resolv}");
    let api = exec_ok("bob", "dig +short +time=2 +tries=1 api.example.com");
    assert_eq!(
        api.lines().collect::<Vec<_>>(),
        ["www.example.com.", "203.0.113.10"]
    );
    assert_eq!(
        dig("+short +tcp example.com MX").trim(),
        "10 mail.example.com."
    );
    assert!(dig("nope.example.com").contains("status: NXDOMAIN"));
    // A second query: from the cache, its TTL lower.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = dig("www.example.com");
    let ttl: u32 = again
        .lines()
        .find(|l| l.starts_with("www.example.com. ") && l.contains(" IN A "))
        .and_then(|l| l.split(' ').nth(1)?.parse().ok())
        .unwrap();
    assert!(ttl < 3600, "{again}");
    // Private reverse lookups: NXDOMAIN at once, from isp-dns itself.
    let rev = dig("-x 192.168.1.10");
    assert!(rev.contains("status: NXDOMAIN"), "{rev}");
    // Public ones: from the reverse zones the topology makes (root-ns).
    for (addr, name) in [
        ("203.0.113.11", "web1.example.com."),
        ("198.51.100.53", "isp-dns.test."),
        ("198.51.100.1", "isp.isp-gw.test."),
    ] {
        assert_eq!(dig(&format!("+short -x {addr}")).trim(), name, "{addr}");
    }
    let trace = exec_ok("alice", "traceroute -q 1 -w 2 203.0.113.11");
    assert!(trace.contains("isp.isp-gw.test (198.51.100.1)"), "{trace}");
    // dig +trace against the lab's root, and names that curl and getent use.
    let trace = dig("+trace +nodnssec www.example.com @198.51.100.53");
    for step in [
        "com. 86400 IN NS a.gtld-servers.net.",
        "example.com. 86400 IN NS ns1.example.com.",
        "www.example.com. 3600 IN A 203.0.113.10",
    ] {
        assert!(trace.contains(step), "missing `{step}` in\n{trace}");
    }
    let body = exec_ok("alice", "curl -4 -s -m 5 http://web1.example.com/");
    assert!(body.contains("server: web1 203.0.113.11:80"), "{body}");
    let hosts = exec_ok("alice", "getent ahostsv4 web2.example.com");
    assert!(hosts.starts_with("203.0.113.12"), "{hosts}");
}

/// Zonemaster and DNSViz, from the machine through the uplink, against
/// the lab's root, com and example.com servers, over IPv6 alone and over
/// IPv4 alone.
fn the_dns_conformance_tools_pass_over_both_families() {
    let hints = std::env::temp_dir().join("scratchnet-tests-lab.hints");
    std::fs::write(
        &hints,
        ".  3600000 NS a.root-servers.net.\n\
         a.root-servers.net. 3600000 A 203.0.113.53\n\
         a.root-servers.net. 3600000 AAAA 2001:db8:113::53\n",
    )
    .unwrap();
    for (zonemaster, dnsviz, servers) in [
        (
            "--ipv6 --no-ipv4",
            "-6",
            [
                "[2001:db8:113::53]",
                "[2001:db8:113::54]",
                "[2001:db8:113::55]",
                "[2001:db8:113::56]",
            ],
        ),
        (
            "--ipv4 --no-ipv6",
            "-4",
            [
                "203.0.113.53",
                "203.0.113.54",
                "203.0.113.55",
                "203.0.113.56",
            ],
        ),
    ] {
        // Zonemaster's every test case; its only errors are ADDRESS01's:
        // the lab's addresses are documentation prefixes (RFC 5737, RFC
        // 3849), as its plan says they are.
        let out = sh(&format!(
            "zonemaster-cli --hints {} {zonemaster} --level ERROR --show-testcase --no-progress example.com",
            hints.display()
        ));
        let text = String::from_utf8_lossy(&out.stdout);
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("CRITICAL"))
            .filter(|l| !l.contains("ADDRESS01"))
            .collect();
        assert!(
            out.status.success() && errors.is_empty(),
            "zonemaster {zonemaster}:\n{text}"
        );
        // DNSViz's analysis of the whole chain: no error and no warning
        // (the zones are unsigned, which it reports as insecure, not
        // wrong).
        let [root, com, ns1, ns2] = servers;
        let probe = sh(&format!(
            "dnsviz probe {dnsviz} -A -a . -x '.:a.root-servers.net={root}' \
             -x 'com:a.gtld-servers.net={com}' \
             -x 'example.com:ns1.example.com={ns1},ns2.example.com={ns2}' example.com \
             | dnsviz grok -l warning"
        ));
        let grok = String::from_utf8_lossy(&probe.stdout);
        assert!(
            probe.status.success() && grok.trim().is_empty(),
            "dnsviz {dnsviz}: {grok}\n{}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
    let _ = std::fs::remove_file(&hints);
}

/// The same hierarchy over IPv6: AAAA records, ip6.arpa, the resolver
/// over IPv6 transport (alice's from her router's RDNSS, bob's from
/// DHCPv6), and dig +trace -6 from the lab's root.
fn dns_over_ipv6_aaaa_reverse_and_trace() {
    let alice = exec_ok("alice", "cat /etc/resolv.conf");
    assert!(alice.contains("nameserver 2001:db8:100::53"), "{alice}");
    let aaaa = dig("-6 @2001:db8:100::53 AAAA www.example.com");
    assert!(aaaa.contains("status: NOERROR"), "{aaaa}");
    assert!(
        aaaa.contains("www.example.com. 3600 IN AAAA 2001:db8:113::10"),
        "{aaaa}"
    );
    assert!(aaaa.contains("SERVER: 2001:db8:100::53#53"), "{aaaa}");
    // bob's resolvers came with his leases, the IPv6 one by DHCPv6.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !exec_ok("bob", "cat /etc/resolv.conf").contains("2001:db8:100::53") {
        assert!(
            std::time::Instant::now() < deadline,
            "bob has no IPv6 resolver"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let bob = exec_ok(
        "bob",
        "dig +short +time=2 +tries=1 -6 @2001:db8:100::53 AAAA web3.example.com",
    );
    assert_eq!(bob.trim(), "2001:db8:113::13");
    // Reverse lookups of IPv6 addresses, from the ip6.arpa zones the
    // topology makes; RFC 6303's link-local zone answered locally.
    for (addr, name) in [
        ("2001:db8:113::11", "web1.example.com."),
        ("2001:db8:100::53", "isp-dns.test."),
        ("2001:db8:2::10", "carol.test."),
    ] {
        assert_eq!(dig(&format!("+short -x {addr}")).trim(), name, "{addr}");
    }
    let local = dig("-x fe80::1");
    assert!(local.contains("status: NXDOMAIN"), "{local}");
    // dig +trace over IPv6 from the lab's root.
    let trace = dig("-6 +trace +nodnssec AAAA www.example.com @2001:db8:100::53");
    for step in [
        "com. 86400 IN NS a.gtld-servers.net.",
        "from 2001:db8:113::53#53(a.root-servers.net)",
        "example.com. 86400 IN NS ns1.example.com.",
        "www.example.com. 3600 IN AAAA 2001:db8:113::10",
    ] {
        assert!(trace.contains(step), "missing `{step}` in\n{trace}");
    }
    // curl and getaddrinfo prefer IPv6 for a dual-stack name.
    let body = exec_ok("alice", "curl -s -m 5 http://web1.example.com/");
    assert!(
        body.contains("server: web1 [2001:db8:113::11]:80"),
        "{body}"
    );
    let hosts = exec_ok("alice", "getent ahosts web2.example.com");
    assert!(hosts.starts_with("2001:db8:113::12"), "{hosts}");
}

/// A root zone with an answer too big for UDP, and a resolver whose root
/// hint is that server: the resolver must ask again over TCP.
#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn the_resolver_asks_again_over_tcp_when_an_answer_is_truncated() {
    let name = "dns-tc";
    // Six TXT records of 250 bytes: over 1,232 bytes, so TC over UDP.
    let big: String = (0..6)
        .map(|i| format!("big IN TXT \"{}\"\n", i.to_string().repeat(250)))
        .collect();
    let mut t = lan_topology(name, 71, &["tc-a"]);
    t += &r#"
[[service]]
name = "tc-root"
kind = "dns-authoritative"
switch = "lan"
address = "10.77.71.53/24"

[[service.zones]]
origin = "."
records = """
$TTL 3600
@ IN SOA tc-root. hostmaster. 1 7200 900 1209600 300
@ IN NS  tc-root.
tc-root. IN A 10.77.71.53
BIG
"""

[[service]]
name = "tc-resolver"
kind = "dns-resolver"
switch = "lan"
address = "10.77.71.54/24"
root_hints = ["10.77.71.53"]
"#
    .replace("BIG", &big);
    let _lab = Lab::up(name, &t);
    let out = exec_ok(
        "tc-a",
        "dig +time=3 +tries=1 +bufsize=4096 @10.77.71.54 big TXT",
    );
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("ANSWER: 6,"), "{out}");
    // A client without EDNS gets TC over UDP, and the whole answer over TCP.
    let small = exec_ok(
        "tc-a",
        "dig +time=3 +tries=1 +noedns +ignore @10.77.71.54 big TXT",
    );
    assert!(small.contains("flags: qr tc"), "{small}");
    let tcp = exec_ok("tc-a", "dig +time=3 +tries=1 +tcp @10.77.71.54 big TXT");
    assert!(tcp.contains("ANSWER: 6,"), "{tcp}");
}
