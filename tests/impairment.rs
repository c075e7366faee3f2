//! Real-namespace tests of link impairment: real ping sees the delay a
//! link adds, real iperf3 sees its rate, a link taken down stops ping and
//! one brought up restores it, and `status` shows what each link did.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::Command;

/// `scratchnet link ARGS... --lab imp`, which must succeed; its output.
fn link(args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("link")
        .args(args)
        .args(["--lab", "imp"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "link {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The shortest RTT, in ms, of `n` pings from `host` to `dst` (the first
/// may wait for ARP).
fn rtt(host: &str, dst: &str, n: u32) -> f64 {
    let out = exec_ok(host, &format!("ping -n -q -c {n} -i 0.2 {dst}"));
    // rtt min/avg/max/mdev = 0.1/0.2/0.3/0.0 ms
    let figures = out.rsplit(" = ").next().unwrap();
    figures.split('/').next().unwrap().parse().unwrap()
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn delay_rate_and_carrier_are_what_ping_and_iperf3_see() {
    // imp-b's link delays what imp-b sends by 20 ms, from the file.
    let topology = lan_topology("imp", 80, &["imp-a", "imp-b"]) + "impair = { delay = \"20ms\" }\n";
    let lab = Lab::up("imp", &topology);
    let base = rtt("imp-a", "10.77.80.2", 5);
    assert!((20.0..22.0).contains(&base), "the file's 20 ms: {base}");

    // 50 ms more on imp-a's link: the RTT rises by 50 ms.
    assert_eq!(
        link(&["imp-a", "--delay", "50ms"]),
        "imp-a: up, delay 50ms (out)\n"
    );
    let delayed = rtt("imp-a", "10.77.80.2", 5);
    assert!(
        (49.0..52.0).contains(&(delayed - base)),
        "{base} ms, then {delayed} ms"
    );

    // A 10 mbit link: iperf3 gets it within 10%.
    link(&["imp-a", "--clear", "--rate", "10mbit"]);
    let _server = Background::spawn(&[
        "ip", "netns", "exec", "imp-b", "iperf3", "-s", "-1", "-p", "5201",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let report = exec_ok("imp-a", "iperf3 -c 10.77.80.2 -p 5201 -t 4 -J");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let bps = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap();
    assert!(
        (9.0e6..11.0e6).contains(&bps),
        "10 mbit within 10%: {bps} bit/s"
    );
    let status = lab.port("imp-a");
    assert_eq!(status["link"]["impairment"]["rate"], 10_000_000);
    assert!(status["link"]["counters"]["delayed"].as_u64().unwrap() > 1000);

    // Down: nothing crosses; up: ping works again, at the file's delay.
    link(&["imp-a", "--clear"]);
    assert_eq!(link(&["imp-a", "down"]), "imp-a: down, none\n");
    let out = sh("ip netns exec imp-a ping -n -c 2 -W 1 10.77.80.2");
    assert!(!out.status.success(), "ping crossed a link that is down");
    let lost = lab.port("imp-a")["link"]["counters"]["down"].as_u64();
    assert!(lost >= Some(2), "the pings (and any ARP) counted: {lost:?}");
    link(&["imp-a", "up"]);
    let again = rtt("imp-a", "10.77.80.2", 3);
    assert!((20.0..22.0).contains(&again), "{again}");

    // What cannot work is refused, and the link is left as it was.
    let out = Command::new(bin())
        .args(["link", "imp-a", "--reorder", "1%", "--lab", "imp"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reordering needs a delay"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(lab);
    assert_clean("imp", &["imp-a", "imp-b"]);
}
