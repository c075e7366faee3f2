//! The HTTP load balancer in real labs, with curl in namespaces: the
//! reference lab's www.example.com spread over web1-web3; backends that are
//! Python web servers in namespaces, one stopped mid-load (ejected, and no
//! request fails), drained and restored from the CLI; sticky cookies; TCP
//! and UDP balancers (curl through one, dig through the other).
//! These need root; scripts/test.sh runs them as root.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn www_example_com_is_spread_evenly_over_web1_to_web3() {
    let file = topology_file("reference", topology::REFERENCE_LAB);
    let _lab = Lab::up_file("reference", &file);
    // 300 requests, each on its own connection, by name through isp-dns:
    // over IPv6, which curl prefers when the name has AAAA records.
    let alice6 = global_address("alice");
    let out = script_ok(
        "alice",
        "for i in $(seq 300); do curl -s -m 5 http://www.example.com/; done",
    );
    let mut servers: HashMap<&str, usize> = HashMap::new();
    for l in out.lines().filter(|l| l.starts_with("server: ")) {
        *servers.entry(l).or_default() += 1;
    }
    assert_eq!(servers.len(), 3, "{servers:?}");
    assert!(servers.values().all(|c| *c == 100), "{servers:?}");
    // Each backend saw alice by her own IPv6 address (no NAT in IPv6).
    let xff = out
        .lines()
        .filter(|l| *l == format!("x-forwarded-for: {alice6}"))
        .count();
    assert_eq!(xff, 300, "{out}");
    // Over IPv4, as home-gw's NAT shows her.
    let v4 = script_ok("alice", "curl -4 -s -m 5 http://www.example.com/");
    assert!(v4.contains("x-forwarded-for: 198.51.100.2"), "{v4}");

    // HTTPS with no flags: the namespaces trust the lab's CA, and lb's
    // certificate names www.example.com (and its addresses). HTTP/2 by
    // ALPN, over IPv6.
    let https = script_ok("alice", "curl -s -m 5 https://www.example.com/");
    assert!(
        https.contains(&format!("x-forwarded-for: {alice6}")),
        "{https}"
    );
    let https4 = script_ok("alice", "curl -4 -s -m 5 https://www.example.com/");
    assert!(https4.contains("x-forwarded-for: 198.51.100.2"), "{https4}");
    let h2 = script_ok(
        "alice",
        "curl -s -m 5 --http2 -o /dev/null -w '%{http_version} %{ssl_verify_result}' https://www.example.com/",
    );
    assert_eq!(h2, "2 0");
    let h1 = script_ok(
        "alice",
        "curl -s -m 5 --http1.1 -o /dev/null -w '%{http_version}' https://api.example.com/",
    );
    assert_eq!(h1, "1.1");
    // A TLS client that sends garbage: counted, and others served.
    script_ok(
        "alice",
        "printf 'not a TLS hello\\r\\n\\r\\n' | timeout 3 nc -q 1 203.0.113.10 443 || true",
    );
    let again = script_ok("alice", "curl -s -m 5 https://www.example.com/");
    assert!(again.starts_with("server: web"), "{again}");
    let status = Command::new(bin())
        .args(["status", "--json", "--lab", "reference"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let failures = status["service_counters"]["lb"]["tls_failures"].as_u64();
    assert_eq!(failures, Some(1), "{}", status["service_counters"]["lb"]);
    // From the machine through the uplink, with the CA the lab wrote out.
    let machine = sh("curl -s -m 5 --cacert /run/scratchnet-reference-ca.pem \
         --resolve www.example.com:443:203.0.113.10 https://www.example.com/");
    let body = String::from_utf8_lossy(&machine.stdout);
    assert!(body.starts_with("server: web"), "{body}");
    // The same over IPv6 from the machine (2001:db8:ffff::2), HTTP/2.
    let machine6 = sh(
        "curl -6 -s -m 5 --http2 --cacert /run/scratchnet-reference-ca.pem \
         --resolve 'www.example.com:443:[2001:db8:113::10]' https://www.example.com/",
    );
    let body = String::from_utf8_lossy(&machine6.stdout);
    assert!(
        body.contains("x-forwarded-for: 2001:db8:ffff::2"),
        "{machine6:?}"
    );
    happy_eyeballs_fall_back_to_ipv4_when_ipv6_is_broken();
    // OpenSSL's strict verification (Python 3.13's default) takes the
    // chain: it has the Authority Key Identifier RFC 5280 requires.
    let strict = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import socket, ssl
ctx = ssl.create_default_context(cafile="/run/scratchnet-reference-ca.pem")
ctx.verify_flags |= ssl.VERIFY_X509_STRICT
with socket.create_connection(("203.0.113.10", 443), timeout=5) as s:
    with ctx.wrap_socket(s, server_hostname="www.example.com") as t:
        print(t.version())
"#,
        )
        .output()
        .unwrap();
    assert!(strict.status.success(), "{strict:?}");
}

/// With IPv6 lost on home-gw's uplink (and IPv4 fine), curl's first
/// attempt over IPv6 gets no answer; after its Happy Eyeballs delay
/// (RFC 8305, 200 ms in curl) it connects over IPv4. The trace shows both
/// SYNs, the first lost on the impaired link.
fn happy_eyeballs_fall_back_to_ipv4_when_ipv6_is_broken() {
    let link = |args: &[&str]| {
        let out = Command::new(bin())
            .args(["link", "home-gw.isp", "--lab", "reference"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let set = link(&["--loss", "100%", "--family", "ipv6", "--direction", "both"]);
    assert!(set.contains("loss 100% (both ways, IPv6 only)"), "{set}");
    let mut out = String::new();
    let traced = trace_while(&["alice", "-c", "2", "-f", "tcp port 80"], || {
        out = script_ok(
            "alice",
            "curl -s -m 5 -w 'connect %{time_connect} ip %{remote_ip}\n' http://www.example.com/",
        );
    });
    link(&["--clear"]);
    assert!(out.contains("x-forwarded-for: 198.51.100.2"), "{out}");
    assert!(out.contains("ip 203.0.113.10"), "{out}");
    let connect: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("connect "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(connect >= 0.19, "fell back before curl's delay: {out}");
    for line in [
        "> [2001:db8:113::10]:80 [S]",
        "link   home-gw.isp",
        "> 203.0.113.10:80 [S]",
    ] {
        assert!(traced.contains(line), "no `{line}` in\n{traced}");
    }
}

/// Backends that are Python web servers in namespaces `lbh1`-`lbh3`
/// (port 8000, each serving a file `who` with its name), two balancers over
/// them and one with a sticky cookie over two built-in web servers.
const LBTEST: &str = r#"
name = "lbtest"

[[switch]]
name = "lbnet"
subnet = "10.78.0.0/24"
subnet6 = "2001:db8:78::/64"

[[host]]
name = "lbc"
switch = "lbnet"
address = "10.78.0.2/24"
address6 = "2001:db8:78::2/64"

[[host]]
name = "lbh1"
switch = "lbnet"
address = "10.78.0.11/24"

[[host]]
name = "lbh2"
switch = "lbnet"
address = "10.78.0.12/24"

[[host]]
name = "lbh3"
switch = "lbnet"
address = "10.78.0.13/24"

[[service]]
name = "lbpy"
kind = "http-lb"
switch = "lbnet"
address = "10.78.0.10/24"
backends = ["lbh1:8000", "lbh2:8000", "lbh3:8000"]
health_path = "/who"
health_interval_ms = 200
health_fall = 2
health_rise = 2
retries = 2

[[service]]
name = "lbsticky"
kind = "http-lb"
switch = "lbnet"
address = "10.78.0.20/24"
backends = ["weba", "webb"]
sticky_cookie = "lbsrv"

[[service]]
name = "weba"
kind = "http"
switch = "lbnet"
address = "10.78.0.31/24"
address6 = "2001:db8:78::31/64"

[[service]]
name = "webb"
kind = "http"
switch = "lbnet"
address = "10.78.0.32/24"
address6 = "2001:db8:78::32/64"

[[service]]
name = "lbroute"
kind = "http-lb"
switch = "lbnet"
address = "10.78.0.43/24"
backends = ["weba"]
[[service.routes]]
host = "api.lab.test"
backends = ["webb"]
[[service.routes]]
path_prefix = "/b/"
backends = ["webb"]

[[service]]
name = "lbws"
kind = "http-lb"
switch = "lbnet"
address = "10.78.0.42/24"
backends = ["lbh3:9000"]
health_check = "tcp"

[[service]]
name = "lbtcp"
kind = "tcp-lb"
switch = "lbnet"
address = "10.78.0.41/24"
address6 = "2001:db8:78::41/64"
port = 80
backends = ["weba", "webb"]

# Over IPv6 to its backends, whatever its clients speak.
[[service]]
name = "lbtcp6"
kind = "tcp-lb"
switch = "lbnet"
address = "10.78.0.44/24"
address6 = "2001:db8:78::44/64"
port = 80
backends = ["[2001:db8:78::31]:80", "[2001:db8:78::32]:80"]

[[service]]
name = "lbudp"
kind = "udp-lb"
switch = "lbnet"
address = "10.78.0.40/24"
address6 = "2001:db8:78::40/64"
port = 53
backends = ["dnsa", "dnsb"]

[[service]]
name = "dnsa"
kind = "dns-authoritative"
switch = "lbnet"
address = "10.78.0.51/24"
[[service.zones]]
origin = "lab.test."
records = """
$TTL 60
@    IN SOA ns hostmaster 1 7200 900 1209600 60
@    IN NS  ns
ns   IN A   10.78.0.51
who  IN TXT "dnsa"
"""

[[service]]
name = "dnsb"
kind = "dns-authoritative"
switch = "lbnet"
address = "10.78.0.52/24"
[[service.zones]]
origin = "lab.test."
records = """
$TTL 60
@    IN SOA ns hostmaster 1 7200 900 1209600 60
@    IN NS  ns
ns   IN A   10.78.0.52
who  IN TXT "dnsb"
"""
"#;

/// `scratchnet lb ARGS` on the lbtest lab.
fn lb(args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("lb")
        .args(args)
        .args(["--lab", "lbtest"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The state `scratchnet lb lbpy` shows for `backend`.
fn state(backend: &str) -> String {
    lb(&["lbpy"])
        .lines()
        .find(|l| l.trim_start().starts_with(backend))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or_default()
        .to_owned()
}

/// Who answered each of `n` requests for /who through lbpy.
fn whos(n: usize) -> Vec<String> {
    let out = script_ok(
        "lbc",
        &format!("for i in $(seq {n}); do curl -s -m 5 http://10.78.0.10/who; echo; done"),
    );
    out.lines().map(str::to_owned).collect()
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn backends_in_namespaces_are_ejected_drained_and_restored_and_no_request_fails() {
    let _lab = Lab::up("lbtest", LBTEST);
    let dir = std::env::temp_dir().join("scratchnet-lbtest");
    let mut servers = Vec::new();
    for (i, h) in ["lbh1", "lbh2", "lbh3"].iter().enumerate() {
        let root = dir.join(h);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("who"), h).unwrap();
        let addr = format!("10.78.0.{}", 11 + i);
        servers.push(Background::spawn(&[
            "ip",
            "netns",
            "exec",
            h,
            "python3",
            "-m",
            "http.server",
            "8000",
            "--bind",
            &addr,
            "--directory",
            root.to_str().unwrap(),
        ]));
    }
    // Each answers, and the checks see them up.
    for i in 0..3 {
        let url = format!("http://10.78.0.{}:8000/who", 11 + i);
        script_ok(
            "lbc",
            &format!("for t in $(seq 50); do curl -sf -m 1 {url} && break; sleep 0.1; done"),
        );
    }
    std::thread::sleep(Duration::from_millis(800));
    let first = whos(6);
    assert_eq!(
        first,
        ["lbh1", "lbh2", "lbh3", "lbh1", "lbh2", "lbh3"],
        "round robin"
    );

    // lbh2 stops while requests flow: those that meet it go to another
    // backend (retries), and checks take it down within their fall time.
    let load = std::thread::spawn(|| {
        script_ok(
            "lbc",
            "for i in $(seq 200); do curl -s -o /dev/null -w '%{http_code}\\n' -m 5 http://10.78.0.10/who; done",
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(servers.remove(1));
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(state("lbh2"), "down", "{}", lb(&["lbpy"]));
    let codes = load.join().unwrap();
    let failed: Vec<&str> = codes.lines().filter(|c| *c != "200").collect();
    assert!(
        failed.is_empty(),
        "{} of 200 failed: {failed:?}",
        failed.len()
    );
    assert_eq!(codes.lines().count(), 200);
    let after = whos(10);
    assert!(after.iter().all(|w| w != "lbh2"), "{after:?}");

    // Drained from the CLI: nothing new goes to lbh1; restored, it does.
    assert_eq!(lb(&["lbpy", "drain", "lbh1"]).trim(), "lbh1 drains");
    assert_eq!(state("lbh1"), "draining");
    assert!(whos(6).iter().all(|w| w == "lbh3"));
    lb(&["lbpy", "restore", "lbh1"]);
    let back = whos(6);
    assert_eq!(back.iter().filter(|w| *w == "lbh1").count(), 3, "{back:?}");
    lb(&["lbpy", "weight", "lbh3", "2"]);
    let weighted = whos(9);
    assert_eq!(
        weighted.iter().filter(|w| *w == "lbh3").count(),
        6,
        "{weighted:?}"
    );

    // Sticky: the cookie keeps a client on one backend; without it,
    // requests take turns.
    let sticky = script_ok(
        "lbc",
        "rm -f /tmp/lbtest.jar; for i in $(seq 8); do curl -s -m 5 -b /tmp/lbtest.jar -c /tmp/lbtest.jar http://10.78.0.20/ | head -1; done",
    );
    let kept: Vec<&str> = sticky.lines().collect();
    assert_eq!(kept.len(), 8);
    assert!(kept.iter().all(|l| *l == kept[0]), "{kept:?}");
    let turns = script_ok(
        "lbc",
        "for i in $(seq 4); do curl -s -m 5 http://10.78.0.20/ | head -1; done",
    );
    let turns: Vec<&str> = turns.lines().collect();
    assert_ne!(turns[0], turns[1], "{turns:?}");

    // While wrk runs: a backend drained, restored, removed, added back
    // and reweighted from the CLI, without a single failed request.
    let wrk = std::thread::spawn(|| script_ok("lbc", "wrk -t1 -c8 -d4s http://10.78.0.20/ 2>&1"));
    let step = Duration::from_millis(500);
    std::thread::sleep(step);
    let sticky = |args: &[&str]| {
        let out = Command::new(bin())
            .args(["lb", "lbsticky"])
            .args(args)
            .args(["--lab", "lbtest"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    for change in [
        &["drain", "weba"][..],
        &["restore", "weba"],
        &["remove", "webb"],
        &["add", "webb", "10.78.0.32:80", "2"],
        &["weight", "webb", "1"],
    ] {
        sticky(change);
        std::thread::sleep(step);
    }
    let report = wrk.join().unwrap();
    assert!(report.contains("requests in"), "{report}");
    assert!(
        !report.contains("Non-2xx") && !report.contains("Socket errors"),
        "{report}"
    );
    let pool = lb(&["lbsticky"]);
    assert!(pool.contains("webb         10.78.0.32:80"), "{pool}");

    tcp_and_udp_balancers_spread_connections_and_flows();

    // Routing rules: by Host, then by path prefix; the rest to weba.
    let served = |args: &str| {
        let out = script_ok("lbc", &format!("curl -s -m 5 {args}"));
        out.lines().next().unwrap_or_default().to_owned()
    };
    assert_eq!(served("http://10.78.0.43/"), "server: weba 10.78.0.31:80");
    assert_eq!(
        served("-H 'Host: api.lab.test' http://10.78.0.43/"),
        "server: webb 10.78.0.32:80"
    );
    assert_eq!(
        served("http://10.78.0.43/b/page"),
        "server: webb 10.78.0.32:80"
    );
    assert_eq!(served("http://10.78.0.43/bb"), "server: weba 10.78.0.31:80");
    let pools = lb(&["lbroute"]);
    assert!(
        pools.contains("balancer lbroute (round-robin, host api.lab.test path /)"),
        "{pools}"
    );

    // An Upgrade (as a WebSocket's) passes through: the backend's 101, then
    // bytes both ways.
    let tool = format!(
        "{}/../../tests/tools/upgrade_echo.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let _echo = Background::spawn(&[
        "ip",
        "netns",
        "exec",
        "lbh3",
        "python3",
        &tool,
        "serve",
        "10.78.0.13",
        "9000",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let out = script_ok("lbc", &format!("python3 {tool} ask 10.78.0.42 80"));
    assert_eq!(out, "HTTP/1.1 101 Switching Protocols\nping\n");
}

/// On the lbtest lab (one at a time: its namespaces have fixed names).
fn tcp_and_udp_balancers_spread_connections_and_flows() {
    // TCP: each connection to a backend of its own, bytes passed as they
    // are (the web server sees the balancer as its client).
    let out = script_ok(
        "lbc",
        "for i in $(seq 4); do curl -s -m 5 http://10.78.0.41/; done",
    );
    let servers: Vec<&str> = out.lines().filter(|l| l.starts_with("server: ")).collect();
    assert_eq!(
        servers,
        [
            "server: weba 10.78.0.31:80",
            "server: webb 10.78.0.32:80",
            "server: weba 10.78.0.31:80",
            "server: webb 10.78.0.32:80"
        ],
        "{out}"
    );
    assert!(out.contains("client: 10.78.0.41:"), "{out}");
    // UDP: each dig a flow of its own (a new source port), answered from
    // the balancer's address.
    let who = script_ok(
        "lbc",
        "for i in $(seq 4); do dig +short +time=2 +tries=1 @10.78.0.40 who.lab.test TXT; done",
    );
    let who: Vec<&str> = who.lines().collect();
    assert_eq!(who, ["\"dnsa\"", "\"dnsb\"", "\"dnsa\"", "\"dnsb\""]);
    let pool = lb(&["lbudp"]);
    assert!(pool.contains("balancer lbudp (round-robin)"), "{pool}");

    // The same balancers for a client over IPv6: flows spread, answers
    // from the balancer's IPv6 address.
    let who6 = script_ok(
        "lbc",
        "for i in $(seq 2); do dig -6 +short +time=2 +tries=1 @2001:db8:78::40 who.lab.test TXT; done",
    );
    let mut who6: Vec<&str> = who6.lines().collect();
    who6.sort_unstable();
    assert_eq!(who6, ["\"dnsa\"", "\"dnsb\""]);
    let tcp6 = script_ok(
        "lbc",
        "for i in $(seq 2); do curl -s -m 5 'http://[2001:db8:78::41]/'; done",
    );
    assert!(tcp6.contains("server: weba 10.78.0.31:80"), "{tcp6}");
    assert!(tcp6.contains("server: webb 10.78.0.32:80"), "{tcp6}");
    // Backends given as IPv6 addresses: the balancer reaches them over
    // IPv6, from its own IPv6 address, for a client over IPv4.
    let to6 = script_ok(
        "lbc",
        "for i in $(seq 2); do curl -s -m 5 http://10.78.0.44/; done",
    );
    assert!(to6.contains("server: weba [2001:db8:78::31]:80"), "{to6}");
    assert!(to6.contains("server: webb [2001:db8:78::32]:80"), "{to6}");
    assert!(to6.contains("client: [2001:db8:78::44]:"), "{to6}");
}
