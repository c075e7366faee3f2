//! The reference lab's DNS in the simulator, through the lab crate: alice
//! asks isp-dns for www.example.com over UDP; the resolver walks root ->
//! com -> example.com for real, on virtual time, and a trace of alice's
//! question follows the whole resolution, each upstream query linked to
//! the frame that caused it and each step of the resolver noted on it.
//! Then a lab of corner cases: a dead name server beside a live one, a
//! zone with no live server, a wildcard, a CNAME into a zone delegated
//! without glue, an answer too big for UDP (TCP upstream, TC to a UDP
//! client, all of it over TCP), negative caching and TTLs counting down
//! to expiry on virtual time.

use dns::hickory_proto::op::{Message, Query, ResponseCode};
use dns::hickory_proto::rr::{Name, RData, RecordType};
use fabric::{Filter, LinkParams, Recorded, TraceRecord};
use lab::sim::LabSim;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

const ISP_DNS: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 53), 53));

/// Asks `resolver` from `client` for `name` `qtype` over UDP; the answer.
fn ask(
    lab: &mut LabSim,
    client: &str,
    resolver: SocketAddr,
    name: &str,
    qtype: RecordType,
) -> Message {
    let mut q = Message::query();
    q.metadata.id = 0x5eed;
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    let query = q.to_vec().expect("encode");
    let stack = lab.client(client).expect("client");
    let (sock, _) = stack.udp_bind(0).expect("bind");
    let sent = stack.poll_udp_send(sock, &mut cx(), &query, resolver, 0);
    assert!(matches!(sent, Poll::Ready(Ok(_))), "{sent:?}");
    let mut answer = None;
    let client = client.to_owned();
    let done = lab.run_until(Duration::from_secs(10), |l| {
        let mut buf = [0u8; 1500];
        let s = l.client(&client).expect("client");
        if let Poll::Ready(Ok((n, _, _))) = s.poll_udp_recv(sock, &mut cx(), &mut buf) {
            answer = Some(Message::from_vec(&buf[..n]).expect("answer"));
        }
        answer.is_some()
    });
    assert!(done, "no answer for {name} {qtype}");
    lab.client(&client).expect("client").release(sock);
    answer.expect("answer")
}

/// Asks the corner lab's resolver from its client over TCP.
fn ask_tcp(lab: &mut LabSim, name: &str, qtype: RecordType) -> Message {
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    let query = q.to_vec().expect("encode");
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    let sock = lab
        .client("client")
        .expect("client")
        .tcp_connect(RESOLVER)
        .expect("connect");
    let mut sent = 0;
    let mut got = Vec::new();
    let done = lab.run_until(Duration::from_secs(10), |l| {
        let s = l.client("client").expect("client");
        if sent < framed.len() {
            if let Poll::Ready(Ok(n)) = s.poll_send(sock, &mut cx(), &framed[sent..]) {
                sent += n;
            }
        }
        let mut buf = [0u8; 4096];
        while let Poll::Ready(Ok(n @ 1..)) = s.poll_recv(sock, &mut cx(), &mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got.len() >= 2 && got.len() >= 2 + usize::from(u16::from_be_bytes([got[0], got[1]]))
    });
    assert!(done, "no TCP answer for {name}");
    lab.client("client").expect("client").release(sock);
    Message::from_vec(&got[2..]).expect("answer")
}

/// Asks isp-dns from alice for `name` A; the answer and the trace records
/// so far (late events, the resolver's steps, come within the grace).
fn ask_traced(lab: &mut LabSim, trace: &Recorded, name: &str) -> (Message, Vec<TraceRecord>) {
    let answer = ask(lab, "alice", ISP_DNS, name, RecordType::A);
    lab.run_for(Duration::from_millis(200));
    (answer, trace.take())
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

    let (answer, records) = ask_traced(&mut lab, &trace, "www.example.com.");
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    let addrs: Vec<IpAddr> = answer
        .answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    assert_eq!(addrs, [IpAddr::from([203, 0, 113, 10])]);

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

    // The resolver asks each zone's servers over either family, as their
    // round-trip times choose (both have A and AAAA glue).
    let resolver = ["198.51.100.53:", "[2001:db8:100::53]:"];
    for (from, to) in [
        ("alice", ["198.51.100.53:53"; 2]),
        ("isp-dns", ["203.0.113.53:53", "[2001:db8:113::53]:53"]),
        ("root-ns", resolver),
        ("isp-dns", ["203.0.113.54:53", "[2001:db8:113::54]:53"]),
        ("tld-ns", resolver),
        // example.com's answer comes from ns1 or ns2, as the resolver
        // picked: "example-ns" prefixes both.
        ("isp-dns", ["203.0.113.5", "[2001:db8:113::5"]),
        ("example-ns", resolver),
        // alice as home-gw's NAT shows her.
        ("isp-dns", ["198.51.100.2:"; 2]),
    ] {
        assert!(
            hops.lines()
                .any(|l| l.starts_with(from) && to.iter().any(|t| l.contains(t))),
            "no frame from {from} to {to:?} in the chain:\n{hops}"
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
        "(for .)",
        "referral to com.",
        "referral to example.com. (ns1.example.com., ns2.example.com.), glue ",
        "ns1.example.com. 203.0.113.55",
        "ns2.example.com. 2001:db8:113::56",
        "answer www.example.com.",
    ] {
        assert!(
            steps.to_lowercase().contains(&step.to_lowercase()),
            "no step `{step}` in:\n{steps}"
        );
    }

    // Asked again: one frame each way, the cache hit noted.
    let (again, records) = ask_traced(&mut lab, &trace, "www.example.com.");
    assert_eq!(again.answers.len(), 1);
    let from_resolver = records.iter().filter(|r| r.from == "isp-dns").count();
    assert_eq!(from_resolver, 1, "{records:#?}");
    assert!(records
        .iter()
        .flat_map(|r| r.events.iter())
        .any(|e| e.to_string().contains("cache hit: www.example.com. A")));
}

/// A lab of DNS corner cases on one switch: a root whose com. has a dead
/// server beside the live one, a delegation without glue, a wildcard, a
/// CNAME into another zone and an answer too big for UDP.
const CORNERS: &str = r#"
name = "dns-corners"

[[switch]]
name = "net"
subnet = "10.53.0.0/24"

[[host]]
name = "client"
switch = "net"
address = "10.53.0.2/24"

[[service]]
name = "resolver"
kind = "dns-resolver"
switch = "net"
address = "10.53.0.60/24"
root_hints = ["10.53.0.53"]
upstream_timeout_ms = 300

[[service]]
name = "root"
kind = "dns-authoritative"
switch = "net"
address = "10.53.0.53/24"
[[service.zones]]
origin = "."
records = """
$TTL 86400
@                 IN SOA a.root. hostmaster.root. 1 1800 900 604800 86400
@                 IN NS  a.root.
a.root.           IN A   10.53.0.53
com.              IN NS  dead.root.
com.              IN NS  b.root.
dead.root.        IN A   10.53.0.99
gone.             IN NS  dead.root.
b.root.           IN A   10.53.0.54
"""

[[service]]
name = "com"
kind = "dns-authoritative"
switch = "net"
address = "10.53.0.54/24"
[[service.zones]]
origin = "com."
records = """
$TTL 86400
@                 IN SOA b.root. hostmaster.root. 1 1800 900 604800 60
@                 IN NS  b.root.
example.com.      IN NS  ns.example.com.
ns.example.com.   IN A   10.53.0.55
other.com.        IN NS  ns.example.com.
"""

[[service]]
name = "example"
kind = "dns-authoritative"
switch = "net"
address = "10.53.0.55/24"
[[service.zones]]
origin = "example.com."
records = """
$TTL 30
@          IN SOA ns hostmaster 1 7200 900 1209600 20
@          IN NS  ns
ns         IN A   10.53.0.55
www        IN A   10.53.0.80
*.wild     IN A   10.53.0.81
alias      IN CNAME www.other.com.
big        IN TXT "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
big        IN TXT "1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
big        IN TXT "2222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222"
big        IN TXT "3333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333"
big        IN TXT "4444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444"
big        IN TXT "5555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555"
"""
[[service.zones]]
origin = "other.com."
records = """
$TTL 30
@          IN SOA ns.example.com. hostmaster 1 7200 900 1209600 20
@          IN NS  ns.example.com.
www        IN A   10.53.0.82
"""
"#;

const RESOLVER: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 53, 0, 60), 53));

fn a_records(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_resolver_in_a_lab_of_corner_cases() {
    let lab = topology::parse(CORNERS, "corners.toml").expect("topology");
    let link = LinkParams {
        latency: Duration::from_micros(100),
        jitter: Duration::ZERO,
        loss: 0.0,
    };
    let mut lab = LabSim::new(&lab, 3, link).expect("lab");
    let q =
        |lab: &mut LabSim, name: &str, qtype: RecordType| ask(lab, "client", RESOLVER, name, qtype);

    // com. has a dead server and a live one: whichever is asked first,
    // the answer comes (a timeout at worst), and the dead one is asked
    // last from then on.
    let www = q(&mut lab, "www.example.com.", RecordType::A);
    assert_eq!(a_records(&www), [IpAddr::from([10, 53, 0, 80])]);
    // A wildcard (RFC 4592), the name asked for as its owner.
    let wild = q(&mut lab, "anything.wild.example.com.", RecordType::A);
    assert_eq!(a_records(&wild), [IpAddr::from([10, 53, 0, 81])]);
    assert_eq!(
        wild.answers[0].name.to_string(),
        "anything.wild.example.com."
    );
    // A CNAME into a zone delegated without glue: its name server's
    // address is looked up, then the target resolved.
    let alias = q(&mut lab, "alias.example.com.", RecordType::A);
    assert_eq!(alias.answers.len(), 2, "{alias:?}");
    assert_eq!(a_records(&alias), [IpAddr::from([10, 53, 0, 82])]);
    // Too big for UDP upstream: asked again over TCP; the client (no
    // EDNS, 512 bytes) gets it truncated, as a real resolver sends it.
    let big = q(&mut lab, "big.example.com.", RecordType::TXT);
    assert!(big.metadata.truncation, "{big:?}");
    // Over TCP the client gets all of it.
    let big = ask_tcp(&mut lab, "big.example.com.", RecordType::TXT);
    assert_eq!(big.answers.len(), 6, "{big:?}");
    // A zone whose only server never answers: SERVFAIL, after its timeout.
    let gone = q(&mut lab, "www.gone.", RecordType::A);
    assert_eq!(gone.metadata.response_code, ResponseCode::ServFail);
    // NXDOMAIN, cached for the SOA minimum (20 s).
    let nx = q(&mut lab, "nope.example.com.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    lab.run_for(Duration::from_secs(5));
    let nx = q(&mut lab, "nope.example.com.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    let soa_ttl = nx.authorities[0].ttl;
    assert!((14..=15).contains(&soa_ttl), "negative TTL {soa_ttl}");
    // TTLs count down on virtual time, and the answer expires.
    lab.run_for(Duration::from_secs(10));
    let www = q(&mut lab, "www.example.com.", RecordType::A);
    let ttl = www.answers[0].ttl;
    assert!((14..=15).contains(&ttl), "ttl {ttl}");
    lab.run_for(Duration::from_secs(20));
    let www = q(&mut lab, "www.example.com.", RecordType::A);
    assert_eq!(www.answers[0].ttl, 30, "asked again after its expiry");
}

#[test]
fn carol_asks_over_ipv6_and_the_resolver_walks_down_over_both_families() {
    let mut lab = LabSim::new(&topology::reference_lab(), 1, LinkParams::default()).expect("lab");
    let isp_dns: SocketAddr = "[2001:db8:100::53]:53".parse().expect("addr");
    let t0 = lab.now();
    let m = ask(
        &mut lab,
        "carol",
        isp_dns,
        "web2.example.com.",
        RecordType::AAAA,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let aaaa: Vec<IpAddr> = (m.answers.iter())
        .filter_map(|r| match r.data {
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    assert_eq!(aaaa, ["2001:db8:113::12".parse::<IpAddr>().expect("ip")]);
    // No server of either family timed out on the way.
    assert!(
        lab.now() - t0 < Duration::from_millis(100),
        "{:?}",
        lab.now() - t0
    );
    // The reverse of an IPv6 address, from ip6.arpa zones the topology made.
    let name = "2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.1.1.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    let m = ask(&mut lab, "carol", isp_dns, name, RecordType::PTR);
    let ptr: Vec<String> = (m.answers.iter())
        .filter_map(|r| match &r.data {
            RData::PTR(p) => Some(p.0.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(ptr, ["web2.example.com."]);
}
