//! The reference lab in the simulator, built by the lab crate: a real
//! HTTP GET from alice to web1's built-in server, through home-gw's NAT
//! and isp-gw, on a lossy virtual network; deterministic for a seed, and
//! traced hop by hop.

use fabric::{Filter, LinkCounters, LinkParams, Recorded, TraceRecord};
use hoststack::SockId;
use lab::sim::LabSim;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use wire::Impairment;

fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// Runs a GET for `/` from alice to web1; returns the answer as received
/// and what the trace of alice's frames recorded.
fn get(seed: u64, loss: f64) -> (String, Vec<TraceRecord>, u64) {
    let f = fetch(seed, loss, "/", Impairment::default());
    (
        String::from_utf8_lossy(&f.answer).into_owned(),
        f.trace,
        f.lost,
    )
}

/// What one GET got.
struct Fetched {
    /// The answer as received.
    answer: Vec<u8>,
    /// What the trace of alice's frames recorded.
    trace: Vec<TraceRecord>,
    /// Frames the simulated links lost.
    lost: u64,
    /// What alice's impaired link did, if it was impaired.
    link: Option<LinkCounters>,
}

/// Runs a GET for `path` from alice to web1 with alice's link impaired as
/// `impair` says.
fn fetch(seed: u64, loss: f64, path: &str, impair: Impairment) -> Fetched {
    let link = LinkParams {
        latency: Duration::from_micros(50),
        jitter: Duration::from_micros(20),
        loss,
    };
    let mut lab = LabSim::new(&topology::reference_lab(), seed, link).expect("lab");
    let alice = lab.fabric_mut().port_by_name("alice").expect("alice");
    if !impair.is_none() {
        lab.fabric_mut()
            .set_link(alice, impair, true)
            .expect("link");
    }
    let trace = Recorded::default();
    let filter = Filter::parse("tcp port 80").expect("filter");
    lab.fabric_mut()
        .add_trace(Some(alice), filter, None, Box::new(trace.clone()));
    let web1 = "203.0.113.11:80".parse().expect("addr");
    let sock: SockId = lab
        .client("alice")
        .expect("alice")
        .tcp_connect(web1)
        .expect("connect");
    let connected = lab.run_until(Duration::from_secs(5), |l| {
        let s = l.client("alice").expect("alice");
        matches!(s.poll_connected(sock, &mut cx()), Poll::Ready(Ok(())))
    });
    assert!(connected, "alice never connected (seed {seed})");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n");
    let request = request.as_bytes();
    let mut sent = 0;
    let mut answer = Vec::new();
    let done = lab.run_until(Duration::from_secs(60), |l| {
        let s = l.client("alice").expect("alice");
        if sent < request.len() {
            if let Poll::Ready(Ok(n)) = s.poll_send(sock, &mut cx(), &request[sent..]) {
                sent += n;
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            match s.poll_recv(sock, &mut cx(), &mut buf) {
                Poll::Ready(Ok(0)) => return true,
                Poll::Ready(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                _ => return false,
            }
        }
    });
    assert!(
        done,
        "no complete answer (seed {seed}): {}",
        String::from_utf8_lossy(&answer)
    );
    let now = lab.now();
    let status = lab.fabric_mut().status(now);
    Fetched {
        answer,
        trace: trace.take(),
        lost: lab.lost(),
        link: status
            .port("alice")
            .and_then(|p| p.link.as_ref())
            .map(|l| l.counters),
    }
}

#[test]
fn alice_gets_web1_through_the_nat_on_a_lossy_network_and_the_same_seed_replays() {
    let (answer, trace, lost) = get(7, 0.01);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        answer.contains("server: web1 203.0.113.11:80\n"),
        "{answer}"
    );
    assert!(
        answer.contains("client: 198.51.100.2:"),
        "seen through the NAT: {answer}"
    );
    // The time of day is the simulation's, so the Date header replays too.
    assert!(answer.contains("date: Thu, 01 Jan 2026 00:00:"), "{answer}");
    // The same seed gives the same run, frame for frame.
    let (again, trace_again, lost_again) = get(7, 0.01);
    assert_eq!((&answer, lost), (&again, lost_again));
    assert_eq!(trace, trace_again);
    // The recorded trace names every hop of the SYN.
    let syn = trace
        .iter()
        .find(|r| r.summary.ends_with("> 203.0.113.11:80 [S]"))
        .expect("the SYN was traced");
    let text = syn.to_string();
    for hop in [
        "switch home",
        "router home-gw        route 0.0.0.0/0 via 198.51.100.1 (isp); ttl 64->63",
        "nat    home-gw        src 192.168.1.10:",
        "switch isp",
        "router isp-gw         route 203.0.113.0/24 connected (dc); ttl 63->62",
        "switch dc",
        "out    web1",
        "host   web1           SYN to listener :80 -> SYN-ACK (new connection)",
    ] {
        let all: String = trace
            .iter()
            .filter(|r| r.frame == syn.frame)
            .map(|r| r.to_string())
            .collect();
        assert!(all.contains(hop), "missing `{hop}` in\n{all}");
    }
    assert!(
        text.starts_with(&format!("#{} alice -> TCP 192.168.1.10:", syn.frame)),
        "{text}"
    );
}

#[test]
fn another_seed_and_no_loss_get_the_same_answer() {
    let (answer, _, lost) = get(99, 0.0);
    assert_eq!(lost, 0);
    assert!(answer.contains("server: web1"), "{answer}");
}

#[test]
fn a_mebibyte_crosses_a_link_that_loses_duplicates_and_reorders_intact() {
    let mut imp = Impairment::default();
    for (k, v) in [
        ("delay", "5ms"),
        ("jitter", "2ms"),
        ("loss", "1%"),
        ("duplicate", "2%"),
        ("reorder", "10%"),
        ("direction", "both"),
    ] {
        imp.set(k, v).expect("setting");
    }
    let size = 1 << 20;
    let got = fetch(5, 0.0, &format!("/bytes/{size}"), imp);
    let link = got.link.expect("alice's link");
    assert!(
        link.lost > 5 && link.duplicated > 10 && link.reordered > 50,
        "the link did its worst: {link:?}"
    );
    let answer = got.answer;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let (head, body) = (&answer[..split], &answer[split + 4..]);
    assert!(head.starts_with(b"HTTP/1.1 200 OK"));
    assert_eq!(body.len(), size, "every byte, once");
    let wrong = body
        .iter()
        .enumerate()
        .position(|(i, b)| usize::from(*b) != i % 251);
    assert_eq!(wrong, None, "in order and intact");
}
