//! The reference lab's DNS in the simulator, through the lab crate: alice
//! asks isp-dns for www.example.com over UDP; the resolver walks root ->
//! com -> example.com for real, on virtual time, and a trace of alice's
//! question follows the whole resolution, each upstream query linked to
//! the frame that caused it and each step of the resolver noted on it.

use dns::hickory_proto::op::{Message, Query, ResponseCode};
use dns::hickory_proto::rr::{Name, RData, RecordType};
use fabric::{Filter, LinkParams, Recorded, TraceRecord};
use lab::sim::LabSim;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

const ISP_DNS: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 53), 53);

/// Asks isp-dns from alice; the answer, and the trace records so far.
fn ask(lab: &mut LabSim, trace: &Recorded, name: &str, id: u16) -> (Message, Vec<TraceRecord>) {
    let mut q = Message::query();
    q.metadata.id = id;
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(
        Name::from_ascii(name).expect("name"),
        RecordType::A,
    ));
    let query = q.to_vec().expect("encode");
    let alice = lab.client("alice").expect("alice");
    let (sock, _) = alice.udp_bind(0).expect("bind");
    let sent = alice.poll_udp_send(sock, &mut cx(), &query, ISP_DNS, 0);
    assert!(matches!(sent, Poll::Ready(Ok(_))), "{sent:?}");
    let mut answer = None;
    let done = lab.run_until(Duration::from_secs(5), |l| {
        let mut buf = [0u8; 1500];
        let s = l.client("alice").expect("alice");
        if let Poll::Ready(Ok((n, _, _))) = s.poll_udp_recv(sock, &mut cx(), &mut buf) {
            answer = Some(Message::from_vec(&buf[..n]).expect("answer"));
        }
        answer.is_some()
    });
    assert!(done, "no answer for {name}");
    // Late events (the resolver's steps) arrive within the grace period.
    lab.run_for(Duration::from_millis(200));
    (answer.expect("answer"), trace.take())
}

#[test]
fn a_traced_question_from_alice_shows_the_walk_from_the_root() {
    let link = LinkParams {
        latency: Duration::from_micros(50),
        jitter: Duration::ZERO,
        loss: 0.0,
    };
    let mut lab = LabSim::new(&topology::reference_lab(), 1, link).expect("lab");
    let alice = lab.fabric_mut().port_by_name("alice").expect("alice");
    let trace = Recorded::default();
    let filter = Filter::parse("udp port 53").expect("filter");
    lab.fabric_mut()
        .add_trace(Some(alice), filter, None, Box::new(trace.clone()));

    let (answer, records) = ask(&mut lab, &trace, "www.example.com.", 1);
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    let addrs: Vec<Ipv4Addr> = answer
        .answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    assert_eq!(addrs, [Ipv4Addr::new(203, 0, 113, 10)]);

    // alice's question, then each frame of the walk answering the one
    // before: resolver -> root -> resolver -> com -> ... -> alice.
    let first = records
        .iter()
        .find(|r| r.from == "alice" && r.cause.is_none())
        .expect("alice's question was traced");
    let mut chain = vec![first];
    let mut i = 0;
    while i < chain.len() {
        let cause = chain[i].frame;
        chain.extend(records.iter().filter(|r| r.cause == Some(cause)));
        i += 1;
    }
    let hops: Vec<String> = chain
        .iter()
        .map(|r| format!("{} {}", r.from, r.summary))
        .collect();
    let hops = hops.join("\n");
    for (from, to) in [
        ("alice", "198.51.100.53:53"),
        ("isp-dns", "203.0.113.53:53"),
        ("root-ns", "198.51.100.53:"),
        ("isp-dns", "203.0.113.54:53"),
        ("tld-ns", "198.51.100.53:"),
        ("isp-dns", "203.0.113.55:53"),
        ("example-ns", "198.51.100.53:"),
        // alice as home-gw's NAT shows her.
        ("isp-dns", "198.51.100.2:"),
    ] {
        assert!(
            hops.lines().any(|l| l.starts_with(from) && l.contains(to)),
            "no frame from {from} to {to} in the chain:\n{hops}"
        );
    }
    // The resolver's steps are events on the frames that caused them.
    let steps: Vec<String> = records
        .iter()
        .flat_map(|r| r.events.iter())
        .filter(|e| e.node == "isp-dns")
        .map(|e| e.to_string())
        .collect();
    let steps = steps.join("\n");
    for step in [
        "cache miss: www.example.com. A",
        "ask 203.0.113.53 (for .)",
        "referral to com.",
        "referral to example.com. (ns1.example.com.), glue ns1.example.com. 203.0.113.55",
        "answer www.example.com.",
    ] {
        assert!(
            steps.to_lowercase().contains(&step.to_lowercase()),
            "no step `{step}` in:\n{steps}"
        );
    }

    // Asked again: one frame each way, the cache hit noted.
    let (again, records) = ask(&mut lab, &trace, "www.example.com.", 2);
    assert_eq!(again.answers.len(), 1);
    let from_resolver = records.iter().filter(|r| r.from == "isp-dns").count();
    assert_eq!(from_resolver, 1, "{records:#?}");
    assert!(records
        .iter()
        .flat_map(|r| r.events.iter())
        .any(|e| e.to_string().contains("cache hit: www.example.com. A")));
}
