//! The commands people expect from containerlab, Mininet and iproute2,
//! against a running lab: exec, shell, inspect, pingall, the lab's names
//! in each host's /etc/hosts; and graph, which needs no lab and no root.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::{Command, Stdio};

/// `scratchnet ARGS...`, which must succeed; its stdout.
fn scratchnet(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "scratchnet {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn graph_draws_a_lab_as_dot_mermaid_and_svg_without_root() {
    let dot = scratchnet(&["graph"]);
    assert!(dot.starts_with("graph \"reference\" {"), "{dot}");
    for line in [
        "\"home-gw\" [label=\"home-gw\\nNAT, DHCP\", shape=octagon",
        "\"alice\" -- \"home\" [label=\"192.168.1.10\"];",
        "\"alice\" [label=\"alice\\nslaac\", shape=ellipse];",
        "\"home\" [label=\"home\\n192.168.1.0/24\\n2001:db8:1::/64\"",
        "\"bob\" -- \"home\" [label=\"dhcp\"];",
        "\"isp-gw\" -- \"the machine\" [label=\"198.18.0.1\"];",
        "\"web1\" [label=\"web1\\nhttp\"",
    ] {
        assert!(dot.contains(line), "missing `{line}` in\n{dot}");
    }
    let mermaid = scratchnet(&["graph", "--format", "mermaid"]);
    assert!(
        mermaid
            .starts_with("flowchart LR\n  n0[[\"home<br/>192.168.1.0/24<br/>2001:db8:1::/64\"]]\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("  n4([\"alice<br/>slaac\"])\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("  n4 ---|\"192.168.1.10\"| n0\n"),
        "{mermaid}"
    );
    let svg = scratchnet(&["graph", "--format", "svg"]);
    assert!(
        svg.contains("<svg") && svg.contains(">home&#45;gw</text>"),
        "{svg}"
    );
    let out = Command::new(bin())
        .args(["graph", "--format", "png"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("say dot, mermaid or svg"));
}

/// A LAN with a static host, a DHCP host, a router serving DHCP and a web
/// server.
fn lab() -> String {
    r#"
name = "cmd"
[[switch]]
name = "cmd-lan"
subnet = "10.77.81.0/24"
[[host]]
name = "cmd-a"
switch = "cmd-lan"
address = "10.77.81.10/24"
gateway = "10.77.81.1"
[[host]]
name = "cmd-b"
switch = "cmd-lan"
address = "dhcp"
[[router]]
name = "cmd-r"
interfaces = [{ switch = "cmd-lan", address = "10.77.81.1/24" }]
dhcp = [{ switch = "cmd-lan", range = "10.77.81.100-10.77.81.109" }]
[[service]]
name = "cmd-web"
kind = "http"
switch = "cmd-lan"
address = "10.77.81.80/24"
"#
    .to_owned()
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn exec_shell_inspect_pingall_and_hosts_files_work_on_a_running_lab() {
    let lab = Lab::up("cmd", &lab());

    // exec: the command's output and exit status, by host name.
    let out = scratchnet(&[
        "exec", "cmd-a", "--lab", "cmd", "--", "ip", "-4", "-br", "addr", "show", "eth0",
    ]);
    assert!(out.contains("10.77.81.10/24"), "{out}");
    let failed = Command::new(bin())
        .args(["exec", "cmd-a", "--", "sh", "-c", "exit 3"])
        .status()
        .unwrap();
    assert_eq!(failed.code(), Some(3), "exec passes the exit status on");
    let out = Command::new(bin())
        .args(["exec", "cmd-web", "--", "true"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("service hosts run inside scratchnet"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The lab's names resolve in every host before DNS is asked.
    let out = scratchnet(&[
        "exec",
        "cmd-a",
        "--",
        "getent",
        "hosts",
        "cmd-web",
        "cmd-r",
        "cmd-r.cmd-lan",
    ]);
    assert!(out.contains("10.77.81.80     cmd-web"), "{out}");
    assert!(out.contains("10.77.81.1      cmd-r"), "{out}");
    let out = scratchnet(&[
        "exec", "cmd-b", "--", "ping", "-c", "1", "-W", "2", "cmd-web",
    ]);
    assert!(out.contains("1 received"), "{out}");

    // shell: an interactive bash whose prompt names the host.
    let mut shell = Command::new(bin())
        .args(["shell", "cmd-b"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    shell
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo in=$SCRATCHNET_HOST; ip -4 -br addr show eth0\n")
        .unwrap();
    let out = shell.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("in=cmd-b") && stdout.contains("10.77.81.10"),
        "{stdout}"
    );
    assert!(
        stderr.contains("[cmd-b] "),
        "the prompt names the host: {stderr}"
    );

    // inspect: every node, its addresses and MACs; the DHCP host's lease.
    let text = scratchnet(&["inspect", "--lab", "cmd"]);
    assert!(text.starts_with("lab cmd (pid "), "{text}");
    assert!(text.contains("cmd-b        host"), "{text}");
    assert!(text.contains("10.77.81.100/24 (dhcp)"), "{text}");
    assert!(text.contains("cmd-web      service (http)"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&scratchnet(&["inspect", "--json", "--lab", "cmd"])).unwrap();
    let nodes = json[0]["nodes"].as_array().unwrap();
    let router = nodes.iter().find(|n| n["name"] == "cmd-r").unwrap();
    assert_eq!(router["interfaces"][0]["address"], "10.77.81.1/24");
    assert!(router["interfaces"][0]["mac"]
        .as_str()
        .unwrap()
        .starts_with("02:"));

    // status of one node, and of every node in a line.
    let one = scratchnet(&["status", "cmd-a", "--lab", "cmd"]);
    assert!(
        one.contains("switch cmd-lan:") && one.contains("  cmd-a "),
        "{one}"
    );
    assert!(
        !one.contains("cmd-b") && !one.contains("router cmd-r"),
        "{one}"
    );
    let brief = scratchnet(&["status", "--brief", "--lab", "cmd"]);
    assert!(
        brief.contains("switch  cmd-lan      4 ports, 4 MACs"),
        "{brief}"
    );
    assert!(
        brief.contains("router  cmd-r ") && brief.contains(", 1 lease\n"),
        "{brief}"
    );
    assert!(brief.contains("service cmd-web "), "{brief}");

    // --prometheus: the counters in Prometheus's text format, which
    // promtool accepts, growing with traffic.
    let rx = |text: &str| -> u64 {
        let sample = r#"scratchnet_port_rx_frames_total{port="cmd-a"} "#;
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.parse().ok())
            .unwrap_or_else(|| panic!("no received frames of cmd-a in:\n{text}"))
    };
    let before = scratchnet(&["status", "--prometheus", "--lab", "cmd"]);
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/install-deps.sh test installs it)");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), before.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    let problems = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "promtool: {problems}\n{before}");
    let pinged = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            "cmd-a",
            "ping",
            "-c3",
            "-i0.2",
            "-q",
            "10.77.81.1",
        ])
        .status()
        .unwrap();
    assert!(pinged.success());
    let after = scratchnet(&["status", "--prometheus", "--lab", "cmd"]);
    assert!(
        rx(&after) >= rx(&before) + 3,
        "before:\n{before}\nafter:\n{after}"
    );

    // pingall: every host to every host and service host, by name.
    let matrix = scratchnet(&["pingall", "--lab", "cmd"]);
    assert!(matrix.contains("4 of 4 answered"), "{matrix}");
    assert!(
        matrix.lines().nth(2).unwrap().starts_with("cmd-a"),
        "{matrix}"
    );

    drop(lab);
    assert_clean("cmd", &["cmd-a", "cmd-b"]);
    assert!(!std::path::Path::new("/etc/netns/cmd-a/hosts").exists());
}

#[test]
fn check_reads_stdin_speaks_json_and_exits_by_outcome() {
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(bin())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let broken = "name = \"t\"\n[[switch]]\nname = \"lan\"\nmtu = \"1500\"\n[[host]]\nname = \"a\"\nswitch = \"lam\"\naddress = \"10.0.0.1/24\"\n";
    let out = run(&["check", "-"], broken);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("<stdin>:4:7: switch \"lan\".mtu: expected a whole number"),
        "{text}"
    );
    assert!(
        text.contains("4 | mtu = \"1500\"\n  |       ^^^^^^"),
        "{text}"
    );
    assert!(text.ends_with("<stdin>: 2 problems\n"), "{text}");
    let out = run(&["check", "-", "--format", "json"], broken);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["problems"][1]["key"], "host \"a\".switch");
    assert_eq!(json["problems"][1]["hint"], "did you mean `lan`?");
    let out = run(&["check", "-"], topology::REFERENCE_LAB);
    assert_eq!(out.status.code(), Some(0));
    let out = run(&["check", "/nonexistent/lab.toml"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn every_example_lab_runs_and_its_hosts_reach_each_other() {
    for (name, text) in topology::EXAMPLES {
        let lab = Lab::up(name, text);
        if *name == "satellite" {
            // Its 1% loss would make a one-ping matrix a lottery: keep the
            // delay only, as its own comments suggest trying.
            let link = ["link", "ground.space", "--clear", "--delay", "300ms"];
            scratchnet(&[&link[..], &["--direction", "both", "--lab", name]].concat());
        }
        if *name == "cdn" {
            // The same for its ship; and a first frame across the sky
            // waits a 600 ms ARP exchange there too, past pingall's 1 s:
            // the ship's paths are resolved first.
            let link = ["link", "sat-gw.sky", "--clear", "--delay", "300ms"];
            scratchnet(&[&link[..], &["--direction", "both", "--lab", name]].concat());
            for far in ["10.30.1.10", "10.50.1.10"] {
                exec_ok("ship-pc", &format!("ping -c 2 -W 3 {far}"));
            }
        }
        let matrix = scratchnet(&["pingall", "--lab", name]);
        // Behind NAT, the outside cannot reach in, and pingall says that
        // is expected: all else answers.
        assert!(matrix.contains(", 0 not\n"), "example {name}:\n{matrix}");
        if *name == "nat" {
            assert!(
                matrix.contains("outside -> pc1: pc1 is behind home-nat's NAT"),
                "{matrix}"
            );
        }
        stop_and_assert_clean(lab, text);
    }
}

#[test]
fn a_lab_name_or_filter_that_cannot_be_is_refused_before_the_lab_is_asked() {
    let run = |args: &[&str]| Command::new(bin()).args(args).output().unwrap();
    let escape = run(&["status", "--lab", "../etc"]);
    assert!(!escape.status.success());
    let says = String::from_utf8_lossy(&escape.stderr);
    assert!(says.contains("`../etc` is not a lab name"), "{says}");
    let deep = "( ".repeat(40) + "tcp" + &" )".repeat(40);
    let filter = run(&["capture", "alice", "-w", "/dev/null", "-f", &deep]);
    assert!(!filter.status.success());
    let says = String::from_utf8_lossy(&filter.stderr);
    assert!(says.contains("nested deeper than 32"), "{says}");
}
