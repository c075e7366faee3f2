//! The built-in web server as an origin for a cache, in a simulated lab
//! on virtual time: each path's Cache-Control, Vary and validators, the
//! 304s they earn (RFC 9110 13.2), assets of a size and type, and the
//! processing delay.

use lab::sim::{Exchange, LabSim};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

fn lab() -> LabSim {
    let text = r#"
name = "origin"
[[switch]]
name = "net"
subnet = "10.61.0.0/24"
[[host]]
name = "client"
switch = "net"
address = "10.61.0.2/24"
[[service]]
name = "origin"
kind = "http"
switch = "net"
address = "10.61.0.20/24"
delay_ms = 40

[[service.paths]]
prefix = "/static/"
cache_control = "public, max-age=3600"
vary = "Accept-Encoding"
content_type = "text/css"
size = 100000
delay_ms = 0

[[service.paths]]
prefix = "/img/"
content_type = "image/png"
size = 5000
etag = false

[[service.paths]]
prefix = "/"
cache_control = "no-cache"
"#;
    let topology = topology::parse(text, "origin.toml").expect("topology");
    let link = fabric::LinkParams {
        latency: Duration::from_micros(50),
        jitter: Duration::ZERO,
        loss: 0.0,
    };
    LabSim::new(&topology, 9, link).expect("lab")
}

/// The answer to `GET path` with `extra` header lines, and the virtual
/// time it took.
fn get(lab: &mut LabSim, path: &str, extra: &str) -> (String, Vec<u8>, Duration) {
    let origin = SocketAddr::from((IpAddr::from([10, 61, 0, 20]), 80));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: origin\r\n{extra}Connection: close\r\n\r\n");
    let start = lab.now();
    let mut one = [Exchange::new(
        "client",
        origin,
        request.clone().into_bytes(),
        Duration::ZERO,
    )];
    lab.exchanges(&mut one, Duration::from_secs(10));
    let [one] = one;
    assert!(
        one.done,
        "no whole answer to {request:?} in 10 s: {} bytes of it",
        one.answer.len()
    );
    let answer = one.answer;
    let took = lab.now().saturating_since(start);
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&answer)));
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    (head, answer[split + 4..].to_vec(), took)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[test]
fn an_asset_has_its_headers_and_validators_and_each_validator_earns_a_304() {
    let mut lab = lab();
    let (head, body, took) = get(&mut lab, "/static/site.css", "");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("text/css"));
    assert_eq!(header(&head, "cache-control"), Some("public, max-age=3600"));
    assert_eq!(header(&head, "vary"), Some("accept-encoding"));
    assert_eq!(body.len(), 100_000);
    assert!(
        took < Duration::from_millis(40),
        "the path's delay is 0: {took:?}"
    );
    // Words, not a repeat: deflate's window sees no 64 KiB period.
    assert!(body.is_ascii() && body.split(|&b| b == b' ').count() > 10_000);
    // nginx's form of entity tag, and the lab's content epoch.
    let etag = header(&head, "etag").expect("an etag").to_owned();
    assert_eq!(etag, format!("\"{:x}-{:x}\"", 1_767_225_600u64, 100_000));
    assert_eq!(
        header(&head, "last-modified"),
        Some("thu, 01 jan 2026 00:00:00 gmt")
    );

    let (head, body, _) = get(
        &mut lab,
        "/static/site.css",
        &format!("If-None-Match: W/{etag}\r\n"),
    );
    assert!(head.starts_with("http/1.1 304"), "{head}");
    assert!(body.is_empty());
    assert_eq!(header(&head, "etag"), Some(etag.as_str()));
    assert_eq!(header(&head, "cache-control"), Some("public, max-age=3600"));
    // If-None-Match rules: another tag gets the whole answer, even with
    // an If-Modified-Since that alone would earn a 304.
    let (head, _, _) = get(
        &mut lab,
        "/static/site.css",
        "If-None-Match: \"other\"\r\nIf-Modified-Since: Fri, 02 Jan 2026 00:00:00 GMT\r\n",
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let (head, _, _) = get(
        &mut lab,
        "/static/site.css",
        "If-Modified-Since: Thu, 01 Jan 2026 00:00:00 GMT\r\n",
    );
    assert!(head.starts_with("http/1.1 304"), "{head}");
    let (head, _, _) = get(
        &mut lab,
        "/static/site.css",
        "If-Modified-Since: Wed, 31 Dec 2025 23:59:59 GMT\r\n",
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
}

#[test]
fn the_greeting_takes_the_servers_delay_and_a_binary_asset_is_the_byte_pattern() {
    let mut lab = lab();
    let (head, body, took) = get(&mut lab, "/", "");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(took >= Duration::from_millis(40), "{took:?}");
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));
    // The greeting is made anew: an entity tag of its bytes, no date.
    assert!(header(&head, "etag").is_some(), "{head}");
    assert_eq!(header(&head, "last-modified"), None);
    assert!(String::from_utf8_lossy(&body).starts_with("server: origin"));

    let (head, body, _) = get(&mut lab, "/img/logo.png", "");
    assert_eq!(header(&head, "content-type"), Some("image/png"));
    assert_eq!(header(&head, "etag"), None, "etag = false");
    assert_eq!(header(&head, "cache-control"), None);
    assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    assert_eq!(body.len(), 5000);
}
