//! The cache (a CDN edge) in a real lab, with curl in a namespace: a miss
//! then hits with their Age, HEAD and a range from the store, the store
//! in `scratchnet cache`, purge by URL and by prefix from the CLI, 100
//! concurrent misses as one origin request, the store's bound under a
//! flood of URLs, the share served from the store on the edge's link in
//! the page (chromium), and no request smuggled behind one with both
//! Content-Length and Transfer-Encoding. These need root; scripts/test.sh runs them as root.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "web/driver.rs"]
#[allow(dead_code)] // the page's test uses all of it; this one, a part
mod driver;

use common::*;
use driver::Browser;
use std::process::Command;

const LAB: &str = r#"
name = "cdnt"
[[switch]]
name = "net"
subnet = "10.69.0.0/24"
[[host]]
name = "cdnc"
switch = "net"
address = "10.69.0.2/24"
[[service]]
name = "edge"
kind = "cache"
switch = "net"
address = "10.69.0.10/24"
origin = "origin"
cache_bytes = 1048576
[[service]]
name = "origin"
kind = "http"
switch = "net"
address = "10.69.0.20/24"
delay_ms = 100
[[service.paths]]
prefix = "/static/"
cache_control = "public, max-age=600"
content_type = "text/css"
size = 20000
[[service.paths]]
prefix = "/"
cache_control = "no-store"
"#;

/// `curl` from the client: the response headers (lower case), then the
/// body's size and the time it took.
fn curl(args: &str) -> String {
    script_ok(
        "cdnc",
        &format!("curl -s -m 5 -D - -o /dev/null -w 'size %{{size_download}} time %{{time_total}}\\n' {args}"),
    )
    .to_ascii_lowercase()
}

fn x_cache(out: &str) -> &str {
    out.lines()
        .find_map(|l| l.strip_prefix("x-cache: "))
        .and_then(|x| x.split(' ').next())
        .unwrap_or("none")
}

fn cli(args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .args(["--lab", "cdnt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn the_edge_caches_serves_from_its_store_and_purges_from_the_cli() {
    let file = topology_file("cdnt", LAB);
    let (lab, printed) = Lab::up_with("cdnt", &file, &["--web"]);
    let page = printed
        .iter()
        .find_map(|l| l.strip_prefix("web: ")?.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `web:` line before ready: {printed:?}"))
        .to_owned();
    let url = "http://10.69.0.10/static/site.css";
    let miss = curl(url);
    assert_eq!(x_cache(&miss), "miss", "{miss}");
    assert!(miss.contains("size 20000"), "{miss}");
    let hit = curl(url);
    assert_eq!(x_cache(&hit), "hit", "{hit}");
    assert!(hit.contains("\nage: "), "{hit}");
    assert!(hit.contains("size 20000"), "{hit}");
    // HEAD and a range come from the store too.
    let head = curl(&format!("-I {url}"));
    assert_eq!(x_cache(&head), "hit", "{head}");
    assert!(head.contains("content-length: 20000"), "{head}");
    let part = curl(&format!("-r 0-99 {url}"));
    assert!(part.starts_with("http/1.1 206"), "{part}");
    assert!(part.contains("content-range: bytes 0-99/20000"), "{part}");
    assert!(part.contains("size 100"), "{part}");
    // Compressed at the edge for a client that takes it: words compress.
    let gz = curl(&format!("-H 'Accept-Encoding: gzip' {url}"));
    assert_eq!(x_cache(&gz), "hit", "{gz}");
    assert!(gz.contains("content-encoding: gzip"), "{gz}");
    assert!(gz.contains("vary: accept-encoding"), "{gz}");
    let zipped: u64 = gz
        .lines()
        .find_map(|l| l.strip_prefix("size "))
        .and_then(|l| l.split(' ').next()?.parse().ok())
        .unwrap();
    assert!(zipped < 20000 / 2, "{gz}");
    let whole = script_ok("cdnc", &format!("curl -s --compressed {url} | wc -c"));
    assert_eq!(whole.trim(), "20000");
    // What must not be stored is not.
    for _ in 0..2 {
        assert_eq!(x_cache(&curl("http://10.69.0.10/")), "miss");
    }

    let listed = cli(&["cache", "edge"]);
    assert!(listed.contains("10.69.0.10/static/site.css"), "{listed}");
    assert!(listed.contains("hits 5"), "{listed}");
    assert_eq!(
        cli(&["cache", "edge", "purge", url]).trim(),
        "edge: 1 URL purged"
    );
    assert_eq!(x_cache(&curl(url)), "miss");
    curl("http://10.69.0.10/static/other.css");
    let purged = cli(&["cache", "edge", "purge", "--prefix", "10.69.0.10/static/"]);
    assert_eq!(purged.trim(), "edge: 2 URLs purged");
    assert_eq!(x_cache(&curl(url)), "miss");

    // 100 clients at once miss one URL: one origin request (the origin
    // takes 100 ms), and the other 99 are answered from it.
    let misses = |lab: &Lab| lab.status_json()["service_counters"]["edge"]["misses"].as_u64();
    let before = misses(&lab).unwrap();
    let crowd = script_ok(
        "cdnc",
        "seq 100 | xargs -P 100 -I{} curl -s -m 5 -o /dev/null -w '%header{x-cache}\\n' http://10.69.0.10/static/crowd.css | sort | uniq -c",
    );
    let count = |what: &str| {
        crowd
            .lines()
            .find(|l| l.contains(what))
            .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok())
    };
    assert_eq!(
        (count("MISS"), count("HIT")),
        (Some(1), Some(99)),
        "{crowd}"
    );
    assert_eq!(misses(&lab), Some(before + 1));

    // A flood of unique URLs: the store stays within its 1 MiB, pushing
    // the oldest out.
    script_ok(
        "cdnc",
        "seq 200 | xargs -P 16 -I{} curl -s -m 5 -o /dev/null http://10.69.0.10/static/flood{}.css",
    );
    let status = lab.status_json();
    let edge = &status["service_counters"]["edge"];
    let (bytes, capacity) = (
        edge["bytes"].as_u64().unwrap(),
        edge["capacity"].as_u64().unwrap(),
    );
    assert!(bytes <= capacity && capacity == 1_048_576, "{edge}");
    assert!(edge["evicted"].as_u64().unwrap() > 100, "{edge}");

    // The page writes the share served from the store on the edge's link.
    let browser = Browser::start();
    browser.go(&page);
    script_ok(
        "cdnc",
        &format!("for i in 1 2 3 4 5; do curl -s -o /dev/null {url}; sleep 0.3; done"),
    );
    let share = browser
        .wait_for(
            "const t = document.querySelector('[data-port=\"edge\"] .cache-label'); return t && t.textContent.includes('% from store') && t.textContent",
            std::time::Duration::from_secs(10),
        )
        .expect("the edge's link shows its cache's hits");
    assert!(share.as_str().unwrap().starts_with("cache: "), "{share}");
    drop(browser);

    // Content-Length and Transfer-Encoding both: read by Transfer-Encoding
    // alone and the connection closed (RFC 9112 6.1), so the request
    // hidden behind it is never read.
    let smuggled = script_ok(
        "cdnc",
        "printf 'POST / HTTP/1.1\\r\\nHost: 10.69.0.10\\r\\nContent-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nGET /static/site.css HTTP/1.1\\r\\nHost: 10.69.0.10\\r\\n\\r\\n' | timeout 3 nc -q 2 10.69.0.10 80 || true",
    );
    assert_eq!(smuggled.matches("HTTP/1.1 ").count(), 1, "{smuggled}");
    assert!(!smuggled.contains("x-cache: HIT"), "{smuggled}");
    let status = lab.status_json();
    let edge = &status["service_counters"]["edge"];
    assert!(edge["hits"].as_u64().unwrap() >= 3, "{edge}");
    stop_and_assert_clean(lab, LAB);
}

/// `curl -w` from `host`, with the X-Cache outcome last.
fn timed(host: &str, url: &str, what: &str) -> String {
    script_ok(
        host,
        &format!("curl -s -m 30 -o /dev/null -w '{what} %{{http_code}} %header{{x-cache}}' {url}"),
    )
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn the_cdn_example_sends_each_region_to_its_edge_and_serves_stale_when_the_origin_is_down() {
    let text = topology::EXAMPLES
        .iter()
        .find(|(n, _)| *n == "cdn")
        .unwrap()
        .1;
    let lab = Lab::up("cdn", text);
    // GeoDNS: by the asking resolver's region.
    for (host, edge) in [
        ("us-pc", "10.30.1.80"),
        ("eu-pc", "10.40.1.80"),
        ("asia-pc", "10.50.1.80"),
        ("ship-pc", "10.40.1.80"),
    ] {
        assert_eq!(
            exec_ok(host, "dig +short www.shop.test").trim(),
            edge,
            "{host}"
        );
    }
    let js = "http://www.shop.test/static/app.js";
    let first = timed("eu-pc", js, "%{time_total}");
    assert!(first.contains(" 200 MISS"), "{first}");
    let second = timed("eu-pc", js, "%{time_total}");
    assert!(second.contains(" 200 HIT"), "{second}");
    let secs = |out: &str| out.split(' ').next().unwrap().parse::<f64>().unwrap();
    assert!(secs(&second) < secs(&first) / 5.0, "{first} then {second}");

    // The ship, without the satellite's loss: once its connection is up,
    // a hit comes back in one round trip (600 ms) to Europe's edge.
    let link = Command::new(bin())
        .args(["link", "sat-gw.sky", "--clear", "--delay", "300ms"])
        .args(["--direction", "both", "--lab", "cdn"])
        .output()
        .unwrap();
    assert!(link.status.success(), "{link:?}");
    let wait = "%{time_pretransfer} %{time_starttransfer}";
    let hit = timed("ship-pc", js, wait);
    assert!(hit.contains(" 200 HIT"), "{hit}");
    let t: Vec<f64> = hit.split(' ').take(2).map(|x| x.parse().unwrap()).collect();
    let round_trip = t[1] - t[0];
    assert!((0.55..0.9).contains(&round_trip), "{hit}: {round_trip} s");

    // The origin down: the page, expired, is served stale where its
    // stale-if-error allows; the cart, never stored, gets a 504.
    let page = timed("eu-pc", "http://www.shop.test/", "page");
    assert!(page.contains(" 200 MISS"), "{page}");
    let down = Command::new(bin())
        .args(["link", "origin", "down", "--lab", "cdn"])
        .output()
        .unwrap();
    assert!(down.status.success(), "{down:?}");
    std::thread::sleep(std::time::Duration::from_secs(11));
    let stale = timed("eu-pc", "http://www.shop.test/", "page");
    assert!(stale.contains(" 200 STALE"), "{stale}");
    let cart = timed("eu-pc", "http://www.shop.test/cart", "cart");
    assert!(cart.starts_with("cart 504"), "{cart}");
    stop_and_assert_clean(lab, text);
}
