//! The HTTP load balancer in a simulated lab, through the lab crate, on
//! virtual time: a backend that cannot be reached is retried past for
//! idempotent requests and never for a POST, which gets a 502 page that
//! says why; with outlier ejection on, the dead backend is ejected and
//! requests stop meeting it.

use lab::sim::LabSim;
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// A balancer over one live web server and an address nobody holds.
fn lab(extra: &str) -> LabSim {
    let text = format!(
        r#"
name = "lbsim"
[[switch]]
name = "net"
subnet = "10.60.0.0/24"
[[host]]
name = "client"
switch = "net"
address = "10.60.0.2/24"
[[service]]
name = "lb"
kind = "http-lb"
switch = "net"
address = "10.60.0.10/24"
backends = ["web-a", "10.60.0.99:80"]
health_check = "none"
connect_timeout_ms = 200
{extra}
[[service]]
name = "web-a"
kind = "http"
switch = "net"
address = "10.60.0.20/24"
"#
    );
    let topology = topology::parse(&text, "lbsim.toml").expect("topology");
    let link = fabric::LinkParams {
        latency: Duration::from_micros(50),
        jitter: Duration::ZERO,
        loss: 0.0,
    };
    LabSim::new(&topology, 5, link).expect("lab")
}

/// Sends `request` to the balancer from the client and reads the answer
/// to the end (the request says `Connection: close`).
fn http(lab: &mut LabSim, request: &str) -> String {
    let lb = SocketAddr::from((IpAddr::from([10, 60, 0, 10]), 80));
    let answer = lab.exchange("client", lb, request.as_bytes(), Duration::from_secs(10));
    let answer = answer.unwrap_or_else(|| panic!("no complete answer to {request:?}"));
    String::from_utf8_lossy(&answer).into_owned()
}

const GET: &str = "GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n";
const POST: &str =
    "POST /order HTTP/1.1\r\nHost: lb\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

#[test]
fn idempotent_requests_are_retried_past_a_dead_backend_and_a_post_never_is() {
    let mut lab = lab("eject_after = 0");
    // Round robin meets the dead backend every other request: a GET goes
    // on to web-a.
    for _ in 0..4 {
        let answer = http(&mut lab, GET);
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.contains("server: web-a 10.60.0.20:80"), "{answer}");
        assert!(answer.contains("x-forwarded-for: 10.60.0.2"), "{answer}");
        assert!(answer.contains("via: 1.1 lb"), "{answer}");
    }
    // Of two POSTs, the one that meets the dead backend is not sent again
    // anywhere: the client gets a 502 saying why.
    let answers = [http(&mut lab, POST), http(&mut lab, POST)];
    let failed: Vec<&String> = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 502"))
        .collect();
    assert_eq!(failed.len(), 1, "{answers:?}");
    assert!(
        failed[0].contains("lb: 10.60.0.99 could not be reached"),
        "{}",
        failed[0]
    );
    let served: Vec<&String> = answers
        .iter()
        .filter(|a| a.contains("request: POST /order"))
        .collect();
    assert_eq!(served.len(), 1, "{answers:?}");
}

#[test]
fn a_dead_backend_is_ejected_after_failures_in_a_row() {
    let mut lab = lab("eject_after = 2\nretries = 0");
    // Without retries the dead backend's turns fail, until it has failed
    // twice in a row: then it is ejected and web-a takes every request.
    let mut codes = Vec::new();
    for _ in 0..8 {
        let answer = http(&mut lab, GET);
        codes.push(answer.split(' ').nth(1).unwrap_or("").to_owned());
    }
    assert_eq!(codes[..4], ["200", "502", "200", "502"], "{codes:?}");
    assert!(codes[4..].iter().all(|c| c == "200"), "{codes:?}");
}

/// A balancer whose backend is `backend` (a service of the lab below).
fn lab_over(backend: &str, extra: &str) -> LabSim {
    let text = format!(
        r#"
name = "lbbad"
[[switch]]
name = "net"
subnet = "10.61.0.0/24"
[[host]]
name = "client"
switch = "net"
address = "10.61.0.2/24"
[[service]]
name = "lb"
kind = "http-lb"
switch = "net"
address = "10.60.0.10/24"
backends = ["{backend}"]
health_check = "none"
request_timeout_ms = 500
{extra}
[[service]]
name = "echo"
kind = "echo"
switch = "net"
address = "10.61.0.7/24"
[[service]]
name = "dns"
kind = "dns-authoritative"
switch = "net"
address = "10.61.0.53/24"
[[service]]
name = "web"
kind = "http"
switch = "net"
address = "10.61.0.80/24"
"#
    )
    .replace("10.60.0.10", "10.61.0.10");
    let topology = topology::parse(&text, "lbbad.toml").expect("topology");
    let link = fabric::LinkParams {
        latency: Duration::from_micros(50),
        jitter: Duration::ZERO,
        loss: 0.0,
    };
    LabSim::new(&topology, 9, link).expect("lab")
}

/// Sends `request` to 10.61.0.10:80 and reads until the balancer closes
/// or `limit` passes; what came back, and whether it closed.
fn raw(lab: &mut LabSim, request: &[u8], limit: Duration) -> (String, bool) {
    let lb = SocketAddr::from((IpAddr::from([10, 61, 0, 10]), 80));
    let sock = lab
        .client("client")
        .expect("client")
        .tcp_connect(lb)
        .expect("connect");
    let mut sent = 0;
    let mut answer = Vec::new();
    let closed = lab.run_until(limit, |l| {
        let s = l.client("client").expect("client");
        if sent < request.len() {
            if let Poll::Ready(Ok(n)) = s.poll_send(sock, &mut cx(), &request[sent..]) {
                sent += n;
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            match s.poll_recv(sock, &mut cx(), &mut buf) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return true,
                Poll::Ready(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Poll::Pending => return false,
            }
        }
    });
    lab.client("client").expect("client").release(sock);
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

const GET_WEB: &[u8] = b"GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n";

#[test]
fn bad_clients_get_400_431_or_a_timeout_and_others_are_served() {
    let mut lab = lab_over("web", "");
    let second = Duration::from_secs(1);
    let (garbage, _) = raw(&mut lab, b"NOT HTTP AT ALL\r\n\r\n", second);
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: lb\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let (big, _) = raw(&mut lab, huge.as_bytes(), second);
    assert!(big.starts_with("HTTP/1.1 431"), "{big:.80}");
    // A slowloris client: headers never finished. It is cut off after the
    // header timeout (10 s); a client meanwhile is served.
    let slow = lab
        .client("client")
        .expect("client")
        .tcp_connect(SocketAddr::from((IpAddr::from([10, 61, 0, 10]), 80)))
        .expect("connect");
    let partial = b"GET / HTTP/1.1\r\nHost: lb\r\n";
    lab.run_until(second, |l| {
        let s = l.client("client").expect("client");
        matches!(s.poll_send(slow, &mut cx(), partial), Poll::Ready(Ok(_)))
    });
    let (ok, _) = raw(&mut lab, GET_WEB, second);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let cut = lab.run_until(Duration::from_secs(12), |l| {
        let s = l.client("client").expect("client");
        let mut buf = [0u8; 512];
        matches!(
            s.poll_recv(slow, &mut cx(), &mut buf),
            Poll::Ready(Ok(_)) | Poll::Ready(Err(_))
        )
    });
    assert!(cut, "the slow client was never cut off");
}

#[test]
fn a_backend_that_speaks_no_http_gets_502_and_one_that_hangs_504() {
    // The echo service sends the request back: no HTTP answer.
    let mut lab = lab_over("echo:7", "");
    let (echoed, _) = raw(&mut lab, GET_WEB, Duration::from_secs(2));
    assert!(echoed.starts_with("HTTP/1.1 502"), "{echoed}");
    assert!(echoed.contains("echo broke the connection"), "{echoed}");
    // A DNS server over TCP waits for a length-framed message that never
    // comes: no answer within request_timeout_ms.
    let mut lab = lab_over("dns:53", "");
    let (hung, _) = raw(&mut lab, GET_WEB, Duration::from_secs(2));
    assert!(hung.starts_with("HTTP/1.1 504"), "{hung}");
    assert!(hung.contains("dns did not answer within 500ms"), "{hung}");
}

#[test]
fn a_client_past_its_request_rate_gets_429_until_its_budget_refills() {
    let mut lab = lab_over("web", "requests_per_sec_per_client = 2");
    let second = Duration::from_secs(1);
    // A burst of twice the rate, then 429 with Retry-After.
    let codes: Vec<String> = (0..5)
        .map(|_| raw(&mut lab, GET_WEB, second).0)
        .map(|a| a.split(' ').nth(1).unwrap_or("").to_owned())
        .collect();
    assert_eq!(codes, ["200", "200", "200", "200", "429"], "{codes:?}");
    let (limited, _) = raw(&mut lab, GET_WEB, second);
    assert!(limited.contains("retry-after: 1"), "{limited}");
    lab.run_for(Duration::from_secs(2));
    let (again, _) = raw(&mut lab, GET_WEB, second);
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
}

#[test]
fn the_balancers_choice_is_noted_on_the_frame_that_brought_the_request() {
    let mut lab = lab("eject_after = 0");
    let client = lab.fabric_mut().port_by_name("client").expect("client");
    let trace = fabric::Recorded::default();
    let filter = fabric::Filter::parse("tcp port 80").expect("filter");
    lab.fabric_mut()
        .add_trace(Some(client), filter, None, Box::new(trace.clone()));
    // web-a first (round robin), then the dead backend, retried to web-a.
    for _ in 0..2 {
        let answer = http(&mut lab, GET);
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    }
    lab.run_for(Duration::from_millis(200));
    let events: Vec<String> = trace
        .take()
        .iter()
        .flat_map(|r| r.events.iter())
        .filter(|e| e.node == "lb")
        .map(|e| e.to_string())
        .collect();
    let events = events.join("\n");
    for line in [
        "host   lb             round-robin: web-a, next in turn",
        "host   lb             round-robin: 10.60.0.99, next in turn",
        "host   lb             10.60.0.99 could not be reached: another backend",
    ] {
        assert!(events.contains(line), "no `{line}` in:\n{events}");
    }
}
