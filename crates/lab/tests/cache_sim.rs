//! A cache (CDN edge) in front of an origin, in a simulated lab on
//! virtual time: misses then hits with their Age, HEAD, ranges and 304s
//! from the store, revalidation on expiry, request collapsing, what must
//! not be stored, and stale-if-error with the origin cut off (and a 504
//! for what it does not cover).

use lab::sim::{Exchange, LabSim};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

fn lab() -> LabSim {
    let text = r#"
name = "cdn"
[[switch]]
name = "net"
subnet = "10.62.0.0/24"
[[host]]
name = "client"
switch = "net"
address = "10.62.0.2/24"
[[service]]
name = "edge"
kind = "cache"
switch = "net"
address = "10.62.0.10/24"
origin = "origin"
connect_timeout_ms = 300
request_timeout_ms = 2000
cache_bytes = 4194304
max_object_bytes = 65536
[[service]]
name = "origin"
kind = "http"
switch = "net"
address = "10.62.0.20/24"
delay_ms = 50

[[service.paths]]
prefix = "/static/"
cache_control = "public, max-age=600"
content_type = "text/css"
size = 5000

[[service.paths]]
prefix = "/short/"
cache_control = "max-age=1"
size = 100

[[service.paths]]
prefix = "/sie/"
cache_control = "max-age=1, stale-if-error=600"
size = 100

[[service.paths]]
prefix = "/big/"
cache_control = "public, max-age=600"
size = 200000

[[service.paths]]
prefix = "/page"
cache_control = "public, max-age=600"

[[service.paths]]
prefix = "/nostore/"
cache_control = "no-store"
size = 100
"#;
    let topology = topology::parse(text, "cdn.toml").expect("topology");
    let link = fabric::LinkParams {
        latency: Duration::from_micros(50),
        jitter: Duration::ZERO,
        loss: 0.0,
    };
    LabSim::new(&topology, 11, link).expect("lab")
}

const EDGE: [u8; 4] = [10, 62, 0, 10];

/// An answer's head (lower case) and body.
struct Got {
    head: String,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
    }

    fn cache(&self) -> &str {
        self.header("x-cache")
            .and_then(|x| x.split(' ').next())
            .unwrap_or("none")
    }
}

fn parse(answer: &[u8]) -> Got {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(answer)));
    Got {
        head: String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase(),
        body: answer[split + 4..].to_vec(),
    }
}

fn request(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: www.example.com\r\n{extra}Connection: close\r\n\r\n")
        .into_bytes()
}

fn ask(lab: &mut LabSim, method: &str, path: &str, extra: &str) -> Got {
    let edge = SocketAddr::from((IpAddr::from(EDGE), 80));
    let mut one = [Exchange::new(
        "client",
        edge,
        request(method, path, extra),
        Duration::ZERO,
    )];
    lab.exchanges(&mut one, Duration::from_secs(10));
    let [one] = one;
    assert!(
        one.done,
        "no whole answer to {method} {path}: {} bytes",
        one.answer.len()
    );
    parse(&one.answer)
}

#[test]
fn a_miss_then_hits_with_age_head_ranges_and_304s_from_the_store() {
    let mut lab = lab();
    let first = ask(&mut lab, "GET", "/static/site.css", "");
    assert!(first.head.starts_with("http/1.1 200"), "{}", first.head);
    assert_eq!(first.cache(), "miss");
    assert_eq!(first.body.len(), 5000);
    assert!(first
        .header("server-timing")
        .unwrap_or_default()
        .contains("origin;dur="));
    lab.run_for(Duration::from_secs(3));
    let hit = ask(&mut lab, "GET", "/static/site.css", "");
    assert_eq!(hit.cache(), "hit");
    assert_eq!(hit.body, first.body);
    let age: u64 = hit.header("age").expect("age").parse().expect("a number");
    assert!((3..=4).contains(&age), "age {age}");
    assert!(hit.header("via").unwrap_or_default().contains("edge"));

    let head = ask(&mut lab, "HEAD", "/static/site.css", "");
    assert_eq!(head.cache(), "hit");
    assert_eq!(head.header("content-length"), Some("5000"));
    assert!(head.body.is_empty());

    let part = ask(
        &mut lab,
        "GET",
        "/static/site.css",
        "Range: bytes=100-199\r\n",
    );
    assert!(part.head.starts_with("http/1.1 206"), "{}", part.head);
    assert_eq!(part.header("content-range"), Some("bytes 100-199/5000"));
    assert_eq!(part.body, first.body[100..200]);
    let none = ask(
        &mut lab,
        "GET",
        "/static/site.css",
        "Range: bytes=9000-\r\n",
    );
    assert!(none.head.starts_with("http/1.1 416"), "{}", none.head);

    let etag = first.header("etag").expect("an etag").to_owned();
    // A HEAD that misses fetches the whole object: the GET after it hits.
    let head_first = ask(&mut lab, "HEAD", "/static/other.css", "");
    assert_eq!(head_first.cache(), "miss");
    assert!(head_first.body.is_empty());
    assert_eq!(ask(&mut lab, "GET", "/static/other.css", "").cache(), "hit");

    let not_modified = ask(
        &mut lab,
        "GET",
        "/static/site.css",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert!(
        not_modified.head.starts_with("http/1.1 304"),
        "{}",
        not_modified.head
    );
    assert_eq!(not_modified.cache(), "hit");
}

#[test]
fn an_expired_object_is_revalidated_and_what_must_not_be_stored_is_not() {
    let mut lab = lab();
    assert_eq!(ask(&mut lab, "GET", "/short/a", "").cache(), "miss");
    assert_eq!(ask(&mut lab, "GET", "/short/a", "").cache(), "hit");
    lab.run_for(Duration::from_secs(2));
    let again = ask(&mut lab, "GET", "/short/a", "");
    assert_eq!(again.cache(), "revalidated", "{}", again.head);
    assert_eq!(again.body.len(), 100);
    assert_eq!(ask(&mut lab, "GET", "/short/a", "").cache(), "hit");

    for _ in 0..2 {
        assert_eq!(ask(&mut lab, "GET", "/nostore/x", "").cache(), "miss");
    }
    // A POST passes through, and forgets the URL.
    let post = ask(&mut lab, "POST", "/short/a", "Content-Length: 0\r\n");
    assert_eq!(post.cache(), "pass");
    assert_eq!(ask(&mut lab, "GET", "/short/a", "").cache(), "miss");
}

#[test]
fn a_hundred_concurrent_misses_make_one_origin_request() {
    let mut lab = lab();
    let edge = SocketAddr::from((IpAddr::from(EDGE), 80));
    let mut all: Vec<Exchange> = (0..100)
        .map(|_| {
            Exchange::new(
                "client",
                edge,
                request("GET", "/static/big.css", ""),
                Duration::ZERO,
            )
        })
        .collect();
    lab.exchanges(&mut all, Duration::from_secs(20));
    let outcomes: Vec<String> = all
        .iter()
        .map(|e| {
            assert!(e.done, "an exchange did not finish");
            parse(&e.answer).cache().to_owned()
        })
        .collect();
    let misses = outcomes.iter().filter(|o| *o == "miss").count();
    assert_eq!(misses, 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| *o == "hit").count(), 99);
}

#[test]
fn with_the_origin_cut_off_stale_if_error_serves_stale_and_the_rest_get_a_504() {
    let mut lab = lab();
    assert_eq!(ask(&mut lab, "GET", "/sie/a", "").cache(), "miss");
    assert_eq!(ask(&mut lab, "GET", "/short/a", "").cache(), "miss");
    lab.run_for(Duration::from_secs(3));
    let origin = lab.fabric_mut().port_by_name("origin").expect("origin");
    lab.fabric_mut()
        .set_link(origin, wire::Impairment::default(), false)
        .expect("link down");
    let stale = ask(&mut lab, "GET", "/sie/a", "");
    assert!(stale.head.starts_with("http/1.1 200"), "{}", stale.head);
    assert_eq!(stale.cache(), "stale");
    assert_eq!(stale.body.len(), 100);
    let failed = ask(&mut lab, "GET", "/short/a", "");
    // Nothing answers at all (no reset, no ICMP): a gateway timeout.
    assert!(failed.head.starts_with("http/1.1 504"), "{}", failed.head);
    let why = String::from_utf8_lossy(&failed.body);
    assert!(
        why.contains("could not be reached: connect timed out"),
        "{why}"
    );
}

#[test]
fn a_clients_unkeyed_headers_never_reach_what_others_are_served() {
    let mut lab = lab();
    // The greeting shows X-Forwarded-For: one client's claim, stored,
    // would be every client's page.
    let first = ask(
        &mut lab,
        "GET",
        "/page",
        "X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Host: evil.example\r\n",
    );
    assert_eq!(first.cache(), "miss");
    let page = String::from_utf8_lossy(&first.body).into_owned();
    assert!(page.contains("x-forwarded-for: 10.62.0.2\n"), "{page}");
    assert!(!page.contains("6.6.6.6"), "{page}");
    let other = ask(&mut lab, "GET", "/page", "");
    assert_eq!(other.cache(), "hit");
    assert!(!String::from_utf8_lossy(&other.body).contains("6.6.6.6"));
}

#[test]
fn an_object_past_the_largest_stored_passes_through_whole_and_uncached() {
    let mut lab = lab();
    for _ in 0..2 {
        let big = ask(&mut lab, "GET", "/big/video.bin", "");
        assert_eq!(big.cache(), "miss");
        assert_eq!(big.body.len(), 200_000);
        assert!(big
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8));
    }
}
