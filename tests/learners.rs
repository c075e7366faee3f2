//! What a learner meets: the tour (docs/tour.md) and every example's
//! header comments, their commands run to the letter in the written
//! order, as a user types them (`sudo` dropped: the tests are root), and
//! the outputs they promise checked. These need root; scripts/test.sh
//! runs them as root.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// The two tests share the command line's "the only lab running": one at
/// a time.
static ONE_LAB: Mutex<()> = Mutex::new(());

/// A command line as the docs write it, run by `sh` as the user's shell
/// would, with this build's scratchnet.
fn shell_line(line: &str) -> String {
    line.replace("sudo scratchnet", bin())
        .replace("sudo ip ", "ip ")
}

/// Runs `line`; its output (stdout and stderr) and exit code.
fn run(line: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(shell_line(line))
        .output()
        .unwrap();
    format!(
        "{}{}exit={}\n",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code().unwrap_or(-1)
    )
}

/// A command started "in another terminal": its output goes to a file,
/// read once it has been stopped.
struct Other {
    child: Child,
    out: PathBuf,
}

impl Other {
    fn start(line: &str, name: &str) -> Other {
        let out = std::env::temp_dir().join(format!("scratchnet-learners-{name}.out"));
        let file = std::fs::File::create(&out).unwrap();
        let child = Command::new("setsid")
            .args(["sh", "-c", &shell_line(line)])
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        // Let it attach before what it watches happens.
        std::thread::sleep(Duration::from_millis(800));
        Other { child, out }
    }

    /// Waits up to `wait` for it to end by itself, then stops its whole
    /// process group (as Ctrl-C in its terminal); what it printed.
    fn finish(mut self, wait: Duration) -> String {
        let end = std::time::Instant::now() + wait;
        while std::time::Instant::now() < end {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let pgid = self.child.id();
        sh(&format!("kill -INT -{pgid} 2>/dev/null"));
        std::thread::sleep(Duration::from_millis(300));
        sh(&format!("kill -KILL -{pgid} 2>/dev/null"));
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let _ = std::fs::remove_file(&self.out);
        text
    }
}

fn expect(what: &str, output: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(
            output.contains(w),
            "{what}: no `{w}` in its output:\n{output}"
        );
    }
}

/// An example's header commands: `#   COMMAND   # PROMISE`.
fn header(text: &str) -> Vec<(String, String)> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("#   "))
        .map(|l| match l.split_once("   # ") {
            Some((cmd, promise)) => (cmd.trim().to_owned(), promise.trim().to_owned()),
            None => (l.trim().to_owned(), String::new()),
        })
        .collect()
}

/// What each example's commands must show, by example and line.
fn promised(example: &str, line: usize) -> &'static [&'static str] {
    match (example, line) {
        ("one-switch", 0) => &["ARP, Request who-has"],
        ("one-switch", 1) => &["3 received"],
        ("one-switch", 2) => &["learned 3"],
        ("two-lans", 0) => &[" 1  10.10.1.1 ", " 2  10.10.2.10 "],
        ("two-lans", 1) => &["Time to live exceeded"],
        ("two-lans", 2) => &["#1 pc1 -> ICMP", "router router ", "out    pc2"],
        ("two-lans", 3) => &["1 received"],
        ("nat", 0) => &["client: 203.0.113.2:"],
        ("nat", 1) => &["NAT (", "10.10.1.10:"],
        ("nat", 2) => &["0 received", "exit=1"],
        ("nat", 3) => &["exit=7"],
        ("dhcp", 0) => &["(dhcp)"],
        ("dhcp", 1) => &["DHCP leases (2)"],
        ("dhcp", 2) => &["BOOTP/DHCP, Request", "BOOTP/DHCP, Reply"],
        ("dhcp", 3) => &["DHCPRELEASE", "exit=0"],
        ("dhcp", 4) => &[
            "DHCPDISCOVER",
            "DHCPOFFER",
            "DHCPREQUEST",
            "DHCPACK",
            "exit=0",
        ],
        ("mtu", 0) => &["pmtu 1400"],
        ("mtu", 1) => &["exit=0"],
        ("mtu", 2) => &["Frag needed and DF set (mtu = 1400)"],
        ("mtu", 3) => &["1 received"],
        ("satellite", 0) => &["time=6"],
        ("satellite", 1) => &["sender", "receiver", "exit=0"],
        ("satellite", 2) => &["delay 300ms"],
        ("satellite", 3) => &["exit=0"],
        ("dual-stack", 0) => &["10.20.1.10/24", "2001:db8:20:1:"],
        ("dual-stack", 1) => &[
            "server: web [2001:db8:20:2::80]:80",
            "client: [2001:db8:20:1:",
        ],
        ("dual-stack", 2) => &["server: web 10.20.2.80:80", "client: 10.20.1.10:"],
        ("dual-stack", 3) => &["gw.lan: up, loss 100% (both ways, IPv6 only)"],
        ("dual-stack", 4) => &["0.2", "s via 10.20.2.80"],
        ("v6only", 0) => &["1 received"],
        ("v6only", 1) => &["client: 203.0.113.1:"],
        ("v6only", 2) => &[" 1  2001:db8:64::1 ", "64:ff9b::cb00:7150"],
        ("v6only", 3) => &["NAT64 (", "[2001:db8:64:"],
        ("v6only", 4) => &["64:ff9b::cb00:7150"],
        ("v6only", 5) => &["server: legacy 203.0.113.80:80", "client: 203.0.113.1:"],
        ("v6only", 6) => &[
            "has no AAAA: DNS64 makes them from its A records in 64:ff9b::/96",
            "IN AAAA 64:ff9b::cb00:7150",
        ],
        ("cdn", 0) => &["10.40.1.80"],
        ("cdn", 1) => &["MISS from eu-edge"],
        ("cdn", 2) => &["HIT from eu-edge"],
        ("cdn", 3) => &["cache eu-edge: 1 object", "www.shop.test/static/app.js"],
        ("cdn", 4) => &["origin: down"],
        _ => panic!("example {example} line {line} has no promise in this test"),
    }
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn every_example_s_header_commands_keep_their_promises_in_order() {
    let _one = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    for (name, text) in topology::EXAMPLES {
        let lab = Lab::up(name, text);
        let mut others = Vec::new();
        for (i, (cmd, promise)) in header(text).into_iter().enumerate() {
            let what = format!("example {name}: `{cmd}`");
            if promise.starts_with("in another terminal") {
                others.push((what, i, Other::start(&cmd, &format!("{name}-{i}"))));
                continue;
            }
            expect(&what, &run(&cmd), promised(name, i));
        }
        for (what, i, other) in others {
            let out = other.finish(Duration::from_secs(3));
            expect(&what, &out, promised(name, i));
            if *name == "one-switch" {
                assert!(!out.contains("ICMP echo"), "pc3 saw the pings:\n{out}");
            }
        }
        match *name {
            "dhcp" => {
                let status = run("sudo scratchnet status");
                expect(
                    "dhcp: status after the renew",
                    &status,
                    &["released=1", "DHCP leases (2)"],
                );
            }
            "satellite" => {
                // Connect after one round trip of 600 ms, the answer
                // after a second one.
                let out = run("sudo scratchnet exec pc1 -- curl -s -o /dev/null -w '%{time_connect} %{time_total}\\n' http://10.10.2.80/");
                let times: Vec<f64> = out
                    .split_whitespace()
                    .take(2)
                    .map(|t| t.parse().unwrap())
                    .collect();
                assert!(times[0] > 0.55 && times[0] < 0.9, "{out}");
                assert!(times[1] > 1.15 && times[1] < 1.6, "{out}");
            }
            _ => {}
        }
        stop_and_assert_clean(lab, text);
        // Nothing the commands started outlives the lab (a client told
        // to stop takes a moment).
        let gone = (0..30).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            sh("pgrep -x iperf3 || pgrep -x dhclient").stdout.is_empty()
        });
        let left = sh("ps -o pid,args -C iperf3,dhclient");
        let left = String::from_utf8_lossy(&left.stdout);
        assert!(gone, "example {name} left processes behind:\n{left}");
    }
}

/// The cdn example's topology.
fn cdn_example() -> &'static str {
    topology::EXAMPLES
        .iter()
        .find(|(n, _)| *n == "cdn")
        .unwrap()
        .1
}

/// The tour's commands (`$ ` lines of docs/tour.md), in order, by code
/// block: a command it starts in the background (`&`, or "third
/// terminal") shows what the rest of its block caused.
fn tour_blocks() -> Vec<Vec<String>> {
    let tour = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/tour.md"),
    )
    .unwrap();
    let mut blocks = Vec::new();
    let mut block: Option<Vec<String>> = None;
    for l in tour.lines() {
        if l.starts_with("```") {
            match block.take() {
                Some(b) if !b.is_empty() => blocks.push(b),
                Some(_) => {}
                None => block = Some(Vec::new()),
            }
        } else if let (Some(b), Some(cmd)) = (block.as_mut(), l.strip_prefix("$ ")) {
            b.push(cmd.to_owned());
        }
    }
    blocks
}

/// What each of the tour's commands must show (the stable parts of what
/// the tour prints after it); `nth`: which time the tour runs it.
fn tour_promise(cmd: &str, nth: usize) -> &'static [&'static str] {
    match cmd {
        "sudo scratchnet up" => &[],
        "sudo scratchnet inspect" => &["lab reference", "alice        host", "192.168.1.100/24 (dhcp)"],
        "sudo scratchnet exec alice -- ping -c 2 192.168.1.1" => &["64 bytes from 192.168.1.1: icmp_seq=2 ttl=64"],
        "sudo scratchnet exec alice -- ip neigh" => &["192.168.1.1 dev eth0 lladdr"],
        // §1, §2, then §4 after alice's curl.
        "sudo scratchnet status" if nth < 2 => &["switch home: learned 3", "MAC table (3 entries)", "DHCP leases (1)", "192.168.1.100"],
        "sudo scratchnet status" => &["NAT (", "tcp   192.168.1.10:", "203.0.113.11:80"],
        "sudo scratchnet capture alice | tcpdump -enr -        # third terminal" => &["Request who-has 192.168.1.1 tell 192.168.1.10", "Reply 192.168.1.1 is-at"],
        "sudo scratchnet exec alice -- ip neigh flush dev eth0" => &["exit=0"],
        "sudo scratchnet exec alice -- ping -c 1 192.168.1.1" => &["1 received"],
        "sudo scratchnet exec alice -- traceroute -n -q 1 203.0.113.11" => &[" 1  192.168.1.1 ", " 2  198.51.100.1 ", " 3  203.0.113.11 "],
        "sudo scratchnet exec alice -- curl -4 -s http://web1.example.com/" => &["server: web1 203.0.113.11:80", "client: 198.51.100.2:", "request: GET /"],
        "sudo scratchnet exec carol -- python3 -m http.server 80 &" => &[],
        "sudo scratchnet exec alice -- curl -s -o /dev/null -w '%{http_code}\\n' http://198.51.100.3:8080/" => &["200"],
        "kill %1" => &[],
        "sudo scratchnet exec alice -- tracepath -n 203.0.113.11" => &["Resume: pmtu 1500 hops 3 back 3"],
        "sudo scratchnet dns flush" => &["flushed the cache:"],
        "sudo scratchnet trace dns www.example.com" => &[
            "cache miss: www.example.com. a",
            "(for .): com. a (minimised) over udp",
            "referral to com. (a.gtld-servers.net.), glue a.gtld-servers.net. 203.0.113.54, a.gtld-servers.net. 2001:db8:113::54",
            "referral to example.com. (ns1.example.com., ns2.example.com.), glue ns1.example.com. 203.0.113.55, ns1.example.com. 2001:db8:113::55",
            "answer www.example.com. 3600 in a 203.0.113.10",
            "status: noerror",
        ],
        "sudo scratchnet exec alice -- dig +noall +answer www.example.com" => &["www.example.com. ", " IN A 203.0.113.10"],
        "sudo scratchnet exec alice -- dig +short -x 203.0.113.11" => &["web1.example.com."],
        "for i in 1 2 3; do sudo scratchnet exec alice -- curl -s http://www.example.com/ | head -1; done" => &["server: web1 ", "server: web2 ", "server: web3 "],
        "sudo scratchnet exec alice -- curl -s https://www.example.com/ | head -1" => &["server: web"],
        "sudo scratchnet lb lb" => &["balancer lb (round-robin):", "web1         203.0.113.11:80             1 up"],
        "sudo scratchnet link alice --delay 100ms" => &["alice: up, delay 100ms (out)"],
        "sudo scratchnet exec alice -- ping -c 2 web1.example.com | tail -1" => &["rtt min/avg/max/mdev = 10"],
        "sudo scratchnet exec alice -- curl -s -o /dev/null -w 'connect %{time_connect} s, total %{time_total} s\\n' http://www.example.com/" => &["connect 0.2", "total 0.3"],
        "sudo scratchnet link alice --clear" => &["alice: up, none"],
        "sudo scratchnet trace alice -c 1 -f 'tcp port 80 and host 203.0.113.11' &" => &[
            "#1 alice -> TCP 192.168.1.10:",
            "switch home           to home-gw.home (MAC table)",
            "router home-gw        route 0.0.0.0/0 via 198.51.100.1 (isp); ttl 64->63",
            "nat    home-gw        src 192.168.1.10:",
            "router isp-gw         route 203.0.113.0/24 connected (dc); ttl 63->62",
            "out    web1           delivered, its checksum completed (the port takes no offloads)",
            "host   web1           SYN to listener :80 -> SYN-ACK (new connection)",
        ],
        "sudo scratchnet exec alice -- curl -4 -s -o /dev/null http://web1.example.com/" => &["exit=0"],
        "sudo scratchnet exec alice -- dig +short AAAA www.example.com @2001:db8:100::53" => &["2001:db8:113::10"],
        "sudo scratchnet exec alice -- dig +short -x 2001:db8:113::11" => &["web1.example.com."],
        "sudo scratchnet exec alice -- curl -s http://www.example.com/" => &["server: web", "x-forwarded-for: 2001:db8:1:0:53:4eff:fe87:2213"],
        "sudo scratchnet link home-gw.isp --loss 100% --family ipv6 --direction both" => &["home-gw.isp: up, loss 100% (both ways, IPv6 only)"],
        "sudo scratchnet trace alice -c 2 -f 'tcp port 80' &" => &[
            "alice -> TCP [2001:db8:1:0:53:4eff:fe87:2213]:",
            "link   home-gw.isp    dropped: impairment loss",
            "alice -> TCP 192.168.1.10:",
            "nat    home-gw        src 192.168.1.10:",
        ],
        "sudo scratchnet exec alice -- curl -s -o /dev/null -w 'connect %{time_connect} s via %{remote_ip}\\n' http://www.example.com/" => &["connect 0.2", "s via 203.0.113.10"],
        "sudo scratchnet link home-gw.isp --clear" => &["home-gw.isp: up, none"],
        "sudo scratchnet exec alice -- rdisc6 -1 eth0" => &[
            "Stateful address conf.    :          Yes",
            "Prefix                   : 2001:db8:1::/64",
            "Recursive DNS server     : 2001:db8:100::53",
        ],
        "sudo scratchnet exec alice -- ip -6 route show default" => &["default via fe80::", "proto ra"],
        "sudo scratchnet exec bob -- ip -6 -br addr show eth0" => &["2001:db8:1::100/128"],
        "sudo scratchnet exec alice -- traceroute -6 -n -q 1 2001:db8:113::11" => &[" 1  2001:db8:1::1 ", " 2  2001:db8:100::1 ", " 3  2001:db8:113::11 "],
        "sudo scratchnet exec carol -- python3 -m http.server --bind :: 80 &" => &[],
        "curl -s -o /dev/null -w '%{http_code}\\n' 'http://[2001:db8:2::10]/'" => &["200"],
        "curl -s -m 2 'http://[2001:db8:1:0:53:4eff:fe87:2213]:22/'" => &["exit=28"],
        "sudo scratchnet status home-gw | grep 'IPv6 firewall'" => &["IPv6 firewall (", "dropped_unsolicited="],
        // §11, in the cdn example's lab.
        "scratchnet example cdn > cdn.toml && sudo scratchnet up cdn.toml" => &[],
        "sudo scratchnet exec eu-pc -- dig +short www.shop.test" => &["10.40.1.80"],
        "sudo scratchnet exec asia-pc -- dig +short www.shop.test" => &["10.50.1.80"],
        "sudo scratchnet exec eu-pc -- curl -s -o /dev/null -w '%{time_total}s %header{x-cache}\\n' http://www.shop.test/static/app.js" if nth == 0 => &["s MISS from eu-edge"],
        "sudo scratchnet exec eu-pc -- curl -s -o /dev/null -w '%{time_total}s %header{x-cache}\\n' http://www.shop.test/static/app.js" => &["s HIT from eu-edge"],
        "sudo scratchnet exec ship-pc -- curl -s -o /dev/null -w '%{time_connect} %{time_starttransfer}s %header{x-cache}\\n' http://www.shop.test/static/app.js" => &["s HIT from eu-edge"],
        "sudo scratchnet exec eu-pc -- curl -s -o /dev/null -w '%{http_code} %header{x-cache}\\n' http://www.shop.test/" if nth == 0 => &["200 MISS from eu-edge"],
        "sudo scratchnet link origin down" => &["origin: down"],
        "sleep 10; sudo scratchnet exec eu-pc -- curl -s -o /dev/null -w '%{http_code} %header{x-cache}\\n' http://www.shop.test/" => &["200 STALE from eu-edge"],
        "sudo scratchnet exec eu-pc -- curl -s -o /dev/null -w '%{http_code}\\n' http://www.shop.test/cart" => &["504"],
        other => panic!("the tour's `{other}` has no promise in this test: add what it shows"),
    }
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn the_tour_s_commands_in_order_show_what_the_tour_shows() {
    let _one = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    let blocks = tour_blocks();
    assert_eq!(blocks[0], ["sudo scratchnet up"]);
    let file = topology_file("reference", topology::REFERENCE_LAB);
    let mut lab = Lab::up_file("reference", &file);
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for (b, block) in blocks.iter().enumerate().skip(1) {
        let mut background: Option<(String, Other)> = None;
        for cmd in block {
            let nth = *seen.entry(cmd.clone()).and_modify(|n| *n += 1).or_default();
            let what = format!("tour: `{cmd}`");
            if cmd.starts_with("scratchnet example cdn > cdn.toml") {
                // §11 moves to the cdn example's lab: the reference lab
                // stops first, as its Ctrl-C would.
                drop(std::mem::replace(&mut lab, Lab::up("cdn", cdn_example())));
                assert_clean("reference", &["alice", "bob", "carol"]);
                continue;
            }
            if cmd == "kill %1" {
                // The shell's job: the web server started above.
                let (_, server) = background.take().expect("a job to kill");
                server.finish(Duration::ZERO);
                continue;
            }
            let line = cmd.strip_suffix(" &").unwrap_or(cmd);
            if line != cmd || cmd.ends_with("# third terminal") {
                background = Some((cmd.clone(), Other::start(line, &format!("tour-{b}"))));
                continue;
            }
            let out = run(cmd);
            // dig prints tabs, the trace 0x20 case: compare dig's as
            // words, the trace's in lower case.
            let out = if cmd.contains("trace dns") {
                out.to_lowercase()
            } else if cmd.contains("dig +noall") {
                out.split_whitespace().collect::<Vec<_>>().join(" ")
            } else {
                out
            };
            expect(&what, &out, tour_promise(cmd, nth));
        }
        // What a capture or trace in the background saw of its block.
        if let Some((cmd, b)) = background {
            let shown = b.finish(Duration::from_secs(3));
            expect(&format!("tour: `{cmd}`"), &shown, tour_promise(&cmd, 0));
        }
    }
    stop_and_assert_clean(lab, cdn_example());
    let left = sh("pgrep -f 'http[.]server( --bind ::)? 80' || true");
    assert!(left.stdout.is_empty(), "the tour's web server outlived it");
}
