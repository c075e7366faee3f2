//! `scratchnet up --web` on the reference lab, in a real browser (Debian's
//! chromium, headless, through WebDriver): the page lists the lab, shows
//! alice's link busy after her curl, draws her next web request's path
//! with the NAT rewrite, impairs her link so that ping's RTT grows, and
//! refuses a write without the token; drains a balancer's backend; its
//! capture is pcapng that tcpdump reads; /metrics passes promtool and
//! grows with traffic. Needs root; scripts/test.sh runs it as root.
//!
//! Screenshots go to $SCRATCHNET_SCREENSHOTS (docs/web/ refreshes the
//! documentation's), else to a directory under target/.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "web/driver.rs"]
mod driver;

use common::*;
use driver::Browser;
use std::time::{Duration, Instant};

/// Where the page's screenshots go.
fn screenshots() -> std::path::PathBuf {
    let dir = std::env::var_os("SCRATCHNET_SCREENSHOTS").map_or_else(
        || std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What `curl` in the machine's namespace gets from the page.
fn get(url: &str, extra: &str) -> (String, String) {
    let out = sh(&format!(
        "curl -s -m 10 -w '\\n%{{http_code}}' {extra} '{url}'"
    ));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (body.to_owned(), code.to_owned())
}

fn rx_frames(metrics: &str, port: &str) -> u64 {
    let sample = format!("scratchnet_port_rx_frames_total{{port=\"{port}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&sample)?.parse().ok())
        .unwrap_or_else(|| panic!("no received frames of {port} in:\n{metrics}"))
}

/// The average RTT `ping` reports from alice to lb, in ms.
fn rtt_to_lb() -> f64 {
    let out = exec_ok("alice", "ping -4 -c 3 -i 0.2 -W 2 203.0.113.10");
    let summary = out
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .unwrap_or_else(|| panic!("no summary in {out}"));
    let numbers = summary.split('=').nth(1).unwrap().trim();
    numbers.split('/').nth(1).unwrap().parse().unwrap()
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn the_page_shows_the_lab_its_traffic_and_a_path_and_changes_a_link() {
    let file = topology_file("reference", topology::REFERENCE_LAB);
    let (lab, printed) = Lab::up_with("reference", &file, &["--web"]);
    let line = printed
        .iter()
        .find_map(|l| l.strip_prefix("web: "))
        .unwrap_or_else(|| panic!("no `web:` line before ready: {printed:?}"));
    let url = line.split_whitespace().next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let (base, token) = url.split_once("/#token=").unwrap();
    assert_eq!(token.len(), 32, "{url}");

    // /metrics: what promtool accepts, growing with traffic.
    let (before, code) = get(&format!("{base}/metrics"), "");
    assert_eq!(code, "200", "{before}");
    let checked = sh(&format!(
        "curl -s '{base}/metrics' | promtool check metrics"
    ));
    assert!(
        checked.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    exec_ok("alice", "ping -4 -c 3 -i 0.2 -q 192.168.1.1");
    let (after, _) = get(&format!("{base}/metrics"), "");
    assert!(rx_frames(&after, "alice") >= rx_frames(&before, "alice") + 3);

    // Safe by default: a write without the token, or with a rebound
    // name as Host, is refused.
    let change = r#"-X POST -d '{"port":"alice","set":[["delay","1s"]]}'"#;
    let (why, code) = get(&format!("{base}/api/link"), change);
    assert_eq!(code, "403", "{why}");
    let rebound = format!(
        "-H 'Host: lab.attacker.example:{}'",
        base.rsplit(':').next().unwrap()
    );
    let (why, code) = get(&format!("{base}/api/lab"), &rebound);
    assert_eq!(code, "421", "{why}");
    // With the token: a body past the bound, a command the balancer does
    // not take, and one of another kind are refused, each saying why.
    let auth = format!("-H 'X-Scratchnet-Token: {token}'");
    let big = format!(r#"{auth} -X POST -d "$(head -c 100000 /dev/zero | tr '\0' a)""#);
    let (why, code) = get(&format!("{base}/api/link"), &big);
    assert_eq!(code, "413", "{why}");
    let unknown = format!(
        r#"{auth} -X POST -d '{{"service":"lb","request":{{"balancer":{{"reboot":"web1"}}}}}}'"#
    );
    let (why, code) = get(&format!("{base}/api/command"), &unknown);
    assert_eq!(code, "400", "{why}");
    assert!(why.contains("unknown variant `reboot`"), "{why}");
    let other_kind = format!(
        r#"{auth} -X POST -d '{{"service":"lb","request":{{"resolver":{{"flush":{{}}}}}}}}'"#
    );
    let (why, code) = get(&format!("{base}/api/command"), &other_kind);
    assert_eq!(code, "400", "{why}");
    assert!(
        why.contains("a resolver command went to a service that takes drain"),
        "{why}"
    );
    assert_eq!(
        lab_link_summary(&lab),
        "none",
        "the refused write changed nothing"
    );

    let browser = Browser::start();
    browser.go(&url);
    // Every node of the reference lab is drawn.
    let drawn = browser
        .wait_for(
            "return document.body.dataset.ready && [...document.querySelectorAll('[data-node]')].map(n => n.dataset.node)",
            Duration::from_secs(10),
        )
        .expect("the page drew the lab");
    for node in [
        "alice",
        "bob",
        "carol",
        "home",
        "office",
        "isp",
        "dc",
        "home-gw",
        "office-gw",
        "isp-gw",
        "isp-dns",
        "root-ns",
        "tld-ns",
        "example-ns",
        "example-ns2",
        "lb",
        "web1",
        "web2",
        "web3",
    ] {
        assert!(
            drawn.as_array().unwrap().contains(&node.into()),
            "{node} not in {drawn}"
        );
    }
    let shots = screenshots();
    browser.screenshot(&shots.join("topology.png"));

    // A curl from alice makes her link's rate non-zero within 3 s.
    let busy = "return +document.querySelector('line.link[data-port=\"alice\"]').dataset.bps";
    exec_ok(
        "alice",
        "curl -4 -s -m 5 -o /dev/null http://www.example.com/",
    );
    let curl_done = Instant::now();
    let bps = browser.wait_for(busy, Duration::from_secs(3));
    assert!(
        bps.is_some(),
        "alice's link still idle {:?} after her curl",
        curl_done.elapsed()
    );

    // "alice's next web request" draws its path, NAT rewrite included.
    browser.click("[data-preset=alice-web]");
    std::thread::sleep(Duration::from_millis(700));
    exec_ok(
        "alice",
        "curl -4 -s -m 5 -o /dev/null http://www.example.com/",
    );
    let path = browser
        .wait_for(
            "const on = [...document.querySelectorAll('.node.onpath')].map(n => n.dataset.node); return on.length ? on : null",
            Duration::from_secs(10),
        )
        .expect("a path was drawn");
    for hop in ["alice", "home", "home-gw", "isp", "isp-gw", "dc", "lb"] {
        assert!(
            path.as_array().unwrap().contains(&hop.into()),
            "{hop} not on the path {path}"
        );
    }
    let steps = browser
        .eval("return document.getElementById('path-steps').textContent")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        steps.contains("nat    home-gw"),
        "no NAT rewrite in:\n{steps}"
    );
    browser.screenshot(&shots.join("path.png"));

    // What-if from the page: the path alice's SYN to the balancer would
    // take is drawn.
    browser.eval("document.getElementById('inject-host').value = 'alice'");
    browser.fill("#inject-spec", "tcp 203.0.113.10:80");
    browser.click("#inject-go");
    let what_if = browser
        .wait_for(
            "return document.getElementById('path-status').textContent.startsWith('What would happen') && [...document.querySelectorAll('.node.onpath')].map(n => n.dataset.node)",
            Duration::from_secs(5),
        )
        .unwrap_or_else(|| {
            let status = browser.eval("return document.getElementById('path-status').textContent");
            panic!("no what-if path was drawn; the page says {status}")
        });
    for hop in ["alice", "home-gw", "isp-gw", "dc"] {
        assert!(
            what_if.as_array().unwrap().contains(&hop.into()),
            "{hop} not on the what-if path {what_if}"
        );
    }

    // Search: Enter on a name zooms to its node and opens its tables.
    let view_before =
        browser.eval("return document.getElementById('graph').getAttribute('viewBox')");
    browser.fill("#search", "web2\u{E007}");
    let title = browser
        .wait_for(
            "const t = document.getElementById('detail-title').textContent; return t === 'web2' && document.querySelector('.node.found').dataset.node",
            Duration::from_secs(5),
        )
        .expect("the search found web2 and opened its tables");
    assert_eq!(title, "web2");
    assert_ne!(
        browser.eval("return document.getElementById('graph').getAttribute('viewBox')"),
        view_before,
        "the search did not zoom to web2"
    );

    // The services' figures are scraped too: alice's curls asked the
    // resolver and went through the balancer to a backend.
    let (metrics, _) = get(&format!("{base}/metrics"), "");
    let sum = |family: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(family))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        sum("scratchnet_resolver_questions_total{service=\"isp-dns\"}") > 0.0,
        "{metrics}"
    );
    assert!(
        sum("scratchnet_lb_backend_picked_total{") >= 2.0,
        "{metrics}"
    );
    assert!(sum("scratchnet_lb_backend_up{") == 3.0, "{metrics}");

    // Impairing alice's link from the page raises ping's RTT.
    let rtt = rtt_to_lb();
    browser.click("[data-node=alice]");
    browser.click("#detail button[data-port=alice]");
    browser.fill("#impair-delay", "100ms");
    browser.click("#impair-apply");
    browser
        .wait_for(
            "return document.getElementById('link-result').textContent.includes('delay 100ms')",
            Duration::from_secs(5),
        )
        .expect("the page says the link is impaired");
    let slow = rtt_to_lb();
    assert!(slow >= rtt + 90.0, "RTT {rtt} ms before, {slow} ms after");
    browser.screenshot(&shots.join("link.png"));
    browser.click("#impair-clear");

    // A balancer's backend drained from the page takes no new work.
    browser.click("[data-node=lb]");
    browser.click("button[data-backend=web1][data-action=drain]");
    let drained =
        "scratchnet_lb_backend_up{backend=\"203.0.113.11:80\",route=\"default\",service=\"lb\"} 0";
    let started = Instant::now();
    while !get(&format!("{base}/metrics"), "").0.contains(drained) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "web1 not drained"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    browser.click("button[data-backend=web1][data-action=restore]");

    // A capture from the page's address: pcapng that tcpdump reads.
    let pcap = std::env::temp_dir().join("scratchnet-web-capture.pcapng");
    let capture = std::process::Command::new("curl")
        .args(["-s", "-m", "15", "-o"])
        .arg(&pcap)
        .arg(format!("{base}/api/capture?port=alice&count=2&filter=icmp"))
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    exec_ok("alice", "ping -4 -c 2 -i 0.2 -q 192.168.1.1");
    assert!(capture.wait_with_output().unwrap().status.success());
    let read = sh(&format!("tcpdump -nr {} 2>/dev/null", pcap.display()));
    let frames = String::from_utf8_lossy(&read.stdout).into_owned();
    let _ = std::fs::remove_file(&pcap);
    assert_eq!(frames.lines().count(), 2, "{frames}");
    assert!(frames.contains("ICMP echo request"), "{frames}");

    // The page's own write without the token is refused too.
    let status = browser.eval(
        "const xhr = new XMLHttpRequest(); xhr.open('POST', '/api/link', false); xhr.send(JSON.stringify({port: 'alice', up: false})); return xhr.status",
    );
    assert_eq!(status, 403);
    drop(browser);
    drop(lab);
    assert_clean("reference", &["alice", "bob", "carol"]);
}

/// alice's link as `scratchnet link` shows it: its impairment's summary.
fn lab_link_summary(lab: &Lab) -> String {
    let out = std::process::Command::new(bin())
        .args(["link", "alice", "--lab", &lab.name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .rsplit(", ")
        .next()
        .unwrap_or_default()
        .to_owned()
}
