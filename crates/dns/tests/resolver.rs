//! The resolver against the lab's own authoritative servers, in process:
//! full resolution from the root hints, the cache and its TTLs, negative
//! answers, CNAMEs, spoofed answers and silent servers.

use dns::hickory_proto::op::{Message, Query, ResponseCode};
use dns::hickory_proto::rr::{Name, RData, RecordType};
use dns::{Action, Authority, Resolver, ResolverConfig, Transport, Zone, MAX_WAITERS};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const ROOT: &str = "
$TTL 86400
@                    IN SOA a.root-servers.net. nstld.root-servers.net. 1 1800 900 604800 86400
@                    IN NS  a.root-servers.net.
a.root-servers.net.  IN A   203.0.113.53
com.                 IN NS  a.gtld-servers.net.
net.                 IN NS  a.gtld-servers.net.
a.gtld-servers.net.  IN A   203.0.113.54
";
const COM: &str = "
$TTL 86400
@                  IN SOA a.gtld-servers.net. nstld.gtld-servers.net. 1 1800 900 604800 900
@                  IN NS  a.gtld-servers.net.
example.com.       IN NS  ns1.example.com.
ns1.example.com.   IN A   203.0.113.55
other.com.         IN NS  ns2.example.com.
lame.com.          IN NS  ns.nowhere.com.
";
const NET: &str = "
$TTL 86400
@                    IN SOA a.gtld-servers.net. nstld.gtld-servers.net. 1 1800 900 604800 900
@                    IN NS  a.gtld-servers.net.
a.gtld-servers.net.  IN A   203.0.113.54
a.root-servers.net.  IN A   203.0.113.53
";
/// Served by ns2.example.com, which com gives no glue for.
const OTHER: &str = "
$TTL 3600
@      IN SOA  ns2.example.com. hostmaster.other.com. 1 7200 900 1209600 300
@      IN NS   ns2.example.com.
www    IN A    203.0.113.99
";
const EXAMPLE: &str = "
$TTL 3600
@      IN SOA  ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300
@      IN NS   ns1
www    IN A    203.0.113.10
api    IN CNAME www
ns1    IN A    203.0.113.55
ns2    IN A    203.0.113.55
1.2.3.4.5.deep IN A 203.0.113.11
big    IN TXT  \"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\"
big    IN TXT  \"1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111\"
big    IN TXT  \"2222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222\"
big    IN TXT  \"3333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333\"
big    IN TXT  \"4444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444444\"
big    IN TXT  \"5555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555555\"
";

/// The lab's servers, by address; `None` for a server that is silent.
struct Internet {
    servers: Vec<(IpAddr, Option<Authority>)>,
    asked: Vec<IpAddr>,
    /// Each question as "server name type", in order.
    heard: Vec<String>,
    /// How the client asks the resolver.
    transport: Transport,
    /// Whether the client's questions are traced, and the steps seen.
    traced: bool,
    steps: Vec<String>,
}

impl Internet {
    fn lab() -> Internet {
        let z = |o: &str, t: &str| Zone::parse(o, t).expect("zone");
        Internet {
            servers: vec![
                (
                    IpAddr::from([203, 0, 113, 53]),
                    Some(Authority::new(vec![z(".", ROOT)])),
                ),
                (
                    IpAddr::from([203, 0, 113, 54]),
                    Some(Authority::new(vec![z("com.", COM), z("net.", NET)])),
                ),
                (
                    IpAddr::from([203, 0, 113, 55]),
                    Some(Authority::new(vec![
                        z("example.com.", EXAMPLE),
                        z("other.com.", OTHER),
                    ])),
                ),
            ],
            asked: Vec::new(),
            heard: Vec::new(),
            transport: Transport::Udp,
            traced: false,
            steps: Vec::new(),
        }
    }

    /// Runs a client question through the resolver to its answer.
    fn resolve(&mut self, r: &mut Resolver, now: Instant, name: &str, ty: RecordType) -> Message {
        let mut q = Message::query();
        q.metadata.id = 777;
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(Name::from_ascii(name).expect("name"), ty));
        let client = IpAddr::from([192, 168, 1, 10]);
        let q = q.to_vec().expect("encode");
        let mut actions = if self.traced {
            r.traced_query(now, 1, client, self.transport, &q)
        } else {
            r.client_query(now, 1, client, self.transport, &q)
        };
        actions.reverse();
        // Everything the question set off is carried out (a prefetch goes
        // on after the answer).
        let mut answer = None;
        for _ in 0..100 {
            let Some(action) = actions.pop() else { break };
            match action {
                Action::Step { clients, step } => {
                    assert_eq!(clients, vec![1]);
                    self.steps.push(format!("{}: {step}", step.name()));
                }
                Action::Answer { message, .. } => {
                    answer.get_or_insert(Message::from_vec(&message).expect("answer"));
                }
                Action::Forget { .. } => panic!("a question was forgotten"),
                Action::Query {
                    token,
                    server,
                    message,
                    tcp,
                    ..
                } => {
                    self.asked.push(server);
                    let q = &Message::from_vec(&message).expect("query").queries[0];
                    self.heard
                        .push(format!("{server} {} {}", q.name(), q.query_type()));
                    let transport = if tcp { Transport::Tcp } else { Transport::Udp };
                    let reply = self
                        .servers
                        .iter()
                        .find(|(a, _)| *a == server)
                        .and_then(|(_, auth)| auth.as_ref())
                        .and_then(|auth| {
                            auth.answer(&message, transport, [198, 51, 100, 53].into())
                        });
                    let mut next = match reply {
                        Some(bytes) => {
                            r.upstream_answer(now, token, SocketAddr::from((server, 53)), &bytes)
                        }
                        None => r.upstream_timeout(now, token),
                    };
                    next.reverse();
                    actions.extend(next);
                }
            }
        }
        answer.unwrap_or_else(|| panic!("no answer for {name}"))
    }
}

fn addrs(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

fn resolver() -> Resolver {
    Resolver::new(
        ResolverConfig::new(vec![IpAddr::from([203, 0, 113, 53])]),
        [0x5e; 32],
    )
}

#[test]
fn resolves_from_the_root_and_then_from_the_cache_with_ttls_counting_down() {
    let (mut net, mut r, t0) = (Internet::lab(), resolver(), Instant::now());
    let m = net.resolve(&mut r, t0, "www.example.com.", RecordType::A);
    assert_eq!(
        (m.metadata.id, m.metadata.response_code),
        (777, ResponseCode::NoError)
    );
    assert!(m.metadata.recursion_available && !m.metadata.authoritative);
    assert_eq!(addrs(&m), [IpAddr::from([203, 0, 113, 10])]);
    assert_eq!(
        net.asked,
        [[203, 0, 113, 53], [203, 0, 113, 54], [203, 0, 113, 55]].map(IpAddr::from),
        "root, com, example.com"
    );
    // Again 100 s later: from the cache, TTL 3600 - 100.
    net.asked.clear();
    let m = net.resolve(
        &mut r,
        t0 + Duration::from_secs(100),
        "www.example.com.",
        RecordType::A,
    );
    assert!(net.asked.is_empty(), "a cache hit asks nobody");
    assert_eq!(m.answers[0].ttl, 3500);
    // After the TTL: asked again, from the cached delegation (not the root).
    let m = net.resolve(
        &mut r,
        t0 + Duration::from_secs(3601),
        "www.example.com.",
        RecordType::A,
    );
    assert_eq!(addrs(&m), [IpAddr::from([203, 0, 113, 10])]);
    assert_eq!(net.asked, [IpAddr::from([203, 0, 113, 55])]);
}

#[test]
fn each_server_hears_one_label_more_than_its_zone() {
    let mut config = ResolverConfig::new(vec![IpAddr::from([203, 0, 113, 53])]);
    config.case_randomisation = false;
    let (mut net, t0) = (Internet::lab(), Instant::now());
    let mut r = Resolver::new(config, [7; 32]);
    let m = net.resolve(&mut r, t0, "www.example.com.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        net.heard,
        [
            "203.0.113.53 com. A",
            "203.0.113.54 example.com. A",
            "203.0.113.55 www.example.com. TXT",
        ]
    );
    // Below an existing name: no cut at www, so one label more; NXDOMAIN
    // there ends it (nothing exists below), and is cached for the question.
    net.heard.clear();
    let m = net.resolve(&mut r, t0, "a.b.www.example.com.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        net.heard,
        [
            "203.0.113.55 www.example.com. A",
            "203.0.113.55 b.www.example.com. A",
        ]
    );
    net.heard.clear();
    let m = net.resolve(&mut r, t0, "a.b.www.example.com.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(net.heard.is_empty());
    // Empty non-terminals (NODATA) are no cuts either; after
    // MINIMISE_ONE_LAB labels the rest of a long name is asked whole.
    net.heard.clear();
    let m = net.resolve(&mut r, t0, "1.2.3.4.5.deep.example.com.", RecordType::A);
    assert_eq!(addrs(&m), [IpAddr::from([203, 0, 113, 11])]);
    assert_eq!(
        net.heard,
        [
            "203.0.113.55 deep.example.com. A",
            "203.0.113.55 5.deep.example.com. A",
            "203.0.113.55 4.5.deep.example.com. A",
            "203.0.113.55 3.4.5.deep.example.com. A",
            "203.0.113.55 1.2.3.4.5.deep.example.com. A",
        ]
    );
}

#[test]
fn upstream_questions_go_in_random_case_and_answers_must_repeat_it() {
    let (mut net, mut r, t0) = (Internet::lab(), resolver(), Instant::now());
    let m = net.resolve(&mut r, t0, "www.example.com.", RecordType::A);
    assert_eq!(addrs(&m), [IpAddr::from([203, 0, 113, 10])]);
    let lower: Vec<String> = net.heard.iter().map(|h| h.to_lowercase()).collect();
    assert_eq!(
        lower,
        [
            "203.0.113.53 com. a",
            "203.0.113.54 example.com. a",
            "203.0.113.55 www.example.com. a",
        ]
    );
    assert!(
        net.heard
            .iter()
            .any(|h| h.chars().any(|c| c.is_ascii_uppercase() && c != 'A')),
        "{:?}",
        net.heard
    );
    // The right ID, server and question in the wrong case: ignored.
    let mut q = Message::query();
    q.add_query(Query::query(
        Name::from_ascii("mail.example.com.").expect("n"),
        RecordType::A,
    ));
    let actions = r.client_query(
        t0,
        2,
        IpAddr::from([10, 0, 0, 1]),
        Transport::Udp,
        &q.to_vec().expect("e"),
    );
    let [Action::Query {
        token,
        server,
        message,
        ..
    }] = &actions[..]
    else {
        panic!("{actions:?}")
    };
    let asked = Message::from_vec(message).expect("query");
    let sent = asked.queries[0].name().to_ascii();
    let flipped: String = sent
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 0 { flip(c) } else { c })
        .collect();
    let mut forged = Message::response(asked.metadata.id, asked.metadata.op_code);
    forged.queries = vec![Query::query(
        Name::from_ascii(&flipped).expect("n"),
        asked.queries[0].query_type(),
    )];
    assert!(r
        .upstream_answer(
            t0,
            *token,
            SocketAddr::from((*server, 53)),
            &forged.to_vec().expect("e")
        )
        .is_empty());
    assert_eq!(r.counters().case_mismatches, 1);
    assert!(r.is_waiting(*token), "still waiting for the real answer");
}

fn flip(c: char) -> char {
    if c.is_ascii_uppercase() {
        c.to_ascii_lowercase()
    } else {
        c.to_ascii_uppercase()
    }
}

#[test]
fn the_same_question_from_many_clients_is_asked_upstream_once() {
    let mut r = resolver();
    let t0 = Instant::now();
    let ask = |r: &mut Resolver, client: u64| {
        let mut q = Message::query();
        q.metadata.id = client as u16;
        q.add_query(Query::query(
            Name::from_ascii("www.example.com.").expect("n"),
            RecordType::A,
        ));
        r.client_query(
            t0,
            client,
            IpAddr::from([10, 0, 0, 1]),
            Transport::Udp,
            &q.to_vec().expect("e"),
        )
    };
    let first = ask(&mut r, 1);
    assert!(matches!(&first[..], [Action::Query { .. }]), "{first:?}");
    for client in 2..=MAX_WAITERS as u64 {
        assert!(ask(&mut r, client).is_empty(), "waits on the first");
    }
    // Past the cap: SERVFAIL at once, nothing more upstream.
    let past = ask(&mut r, 1000);
    let [Action::Answer {
        client: 1000,
        message,
    }] = &past[..]
    else {
        panic!("{past:?}")
    };
    let m = Message::from_vec(message).expect("m");
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(r.counters().upstream_queries, 1);
    assert_eq!(r.counters().joined, MAX_WAITERS as u64 - 1);
    // The server is silent (and so is the rest): every client gets its
    // own SERVFAIL, under its own ID.
    let Action::Query { token, .. } = first[0] else {
        unreachable!()
    };
    let mut out = r.upstream_timeout(t0, token);
    while let Some(Action::Query { token, .. }) = out.first().cloned() {
        out = r.upstream_timeout(t0, token);
    }
    assert_eq!(out.len(), MAX_WAITERS);
    for a in &out {
        let Action::Answer { client, message } = a else {
            panic!("{a:?}")
        };
        let m = Message::from_vec(message).expect("m");
        assert_eq!(m.metadata.id, *client as u16);
    }
}

#[test]
fn a_delegation_without_glue_looks_up_its_name_server() {
    let (mut net, mut r, t0) = (Internet::lab(), resolver(), Instant::now());
    let m = net.resolve(&mut r, t0, "www.other.com.", RecordType::A);
    assert_eq!(addrs(&m), [IpAddr::from([203, 0, 113, 99])]);
    assert_eq!(r.counters().glueless_lookups, 1);
    let heard: Vec<String> = net.heard.iter().map(|h| h.to_lowercase()).collect();
    assert!(
        heard.contains(&"203.0.113.55 ns2.example.com. a".to_string()),
        "{heard:?}"
    );
    assert_eq!(
        heard.last().map(String::as_str),
        Some("203.0.113.55 www.other.com. a")
    );
    // A name server that does not exist: SERVFAIL, in a few queries.
    let before = r.counters().upstream_queries;
    let m = net.resolve(&mut r, t0, "www.lame.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(r.counters().upstream_queries - before <= 4);
}

#[test]
fn the_root_servers_are_found_from_the_hints() {
    // Once the root's NS set is cached without its addresses, a root
    // server's name is still asked of the hints (not looked up forever).
    let (mut net, mut r, t0) = (Internet::lab(), resolver(), Instant::now());
    let m = net.resolve(&mut r, t0, ".", RecordType::NS);
    assert_eq!(m.answers.len(), 1);
    let m = net.resolve(&mut r, t0, "a.root-servers.net.", RecordType::A);
    assert_eq!(addrs(&m), [IpAddr::from([203, 0, 113, 53])]);
}

#[test]
fn a_server_that_timed_out_is_asked_last() {
    // Two root servers, one silent: once it has timed out, the next
    // questions go to the one that answers.
    let silent = IpAddr::from([203, 0, 113, 99]);
    let root = IpAddr::from([203, 0, 113, 53]);
    let mut net = Internet::lab();
    net.servers.push((silent, None));
    let config = ResolverConfig::new(vec![silent, root]);
    // A key whose first pick among the two unknown servers is the silent
    // one (after that, the root's measured RTT wins every time).
    let mut r = Resolver::new(config, [3; 32]);
    let t0 = Instant::now();
    let mut after_timeout = 0;
    for (i, name) in ["www.example.com.", "mail.net.", "x.org.", "y.info."]
        .into_iter()
        .enumerate()
    {
        let timed_out_before = r.server_rtt(silent).is_some();
        net.asked.clear();
        let at = t0 + Duration::from_secs(i as u64);
        let _ = net.resolve(&mut r, at, name, RecordType::A);
        if timed_out_before {
            assert_eq!(net.asked.first(), Some(&root), "{name}: {:?}", net.asked);
            assert!(!net.asked.contains(&silent), "{name}: {:?}", net.asked);
            after_timeout += 1;
        }
    }
    assert!(
        after_timeout >= 2,
        "asked after the timeout: {after_timeout}"
    );
    // A timeout's 800 ms, less 2% each time it was passed over since.
    assert!(r.server_rtt(silent) >= Some(Duration::from_millis(500)));
    assert!(r.server_rtt(root) < Some(Duration::from_millis(10)));
}

#[test]
fn with_serve_stale_an_expired_answer_beats_servfail() {
    for serve_stale in [false, true] {
        let mut config = ResolverConfig::new(vec![IpAddr::from([203, 0, 113, 53])]);
        config.serve_stale = serve_stale;
        let (mut net, t0) = (Internet::lab(), Instant::now());
        let mut r = Resolver::new(config, [5; 32]);
        let _ = net.resolve(&mut r, t0, "www.example.com.", RecordType::A);
        // An hour and a bit later (the TTL is 3600 s), example.com's
        // server is down.
        net.servers[2].1 = None;
        let later = t0 + Duration::from_secs(4000);
        let m = net.resolve(&mut r, later, "www.example.com.", RecordType::A);
        if serve_stale {
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(addrs(&m), [IpAddr::from([203, 0, 113, 10])]);
            assert_eq!(m.answers[0].ttl, 30);
            assert_eq!(r.counters().stale_answers, 1);
        } else {
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        }
        // Past the stale window: SERVFAIL either way.
        let m = net.resolve(
            &mut r,
            later + dns::STALE_MAX,
            "www.example.com.",
            RecordType::A,
        );
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }
}

#[test]
fn cnames_and_negative_answers() {
    let (mut net, mut r, t0) = (Internet::lab(), resolver(), Instant::now());
    let m = net.resolve(&mut r, t0, "api.example.com.", RecordType::A);
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(addrs(&m), [IpAddr::from([203, 0, 113, 10])]);
    let m = net.resolve(&mut r, t0, "nope.example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    // Cached for the SOA minimum (300 s).
    net.asked.clear();
    let m = net.resolve(
        &mut r,
        t0 + Duration::from_secs(299),
        "nope.example.com.",
        RecordType::A,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(net.asked.is_empty());
    let m = net.resolve(&mut r, t0, "www.example.com.", RecordType::AAAA);
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NoError, 0)
    );
}

#[test]
fn private_reverse_lookups_never_leave() {
    let (mut net, mut r, t0) = (Internet::lab(), resolver(), Instant::now());
    let m = net.resolve(&mut r, t0, "10.1.168.192.in-addr.arpa.", RecordType::PTR);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(net.asked.is_empty());
}

#[test]
fn a_silent_server_is_skipped_and_none_left_is_servfail() {
    let (mut net, mut r, t0) = (Internet::lab(), resolver(), Instant::now());
    net.servers[2].1 = None; // example.com's server is silent
    let m = net.resolve(&mut r, t0, "www.example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(r.counters().upstream_timeouts, 1);
}

#[test]
fn answers_that_do_not_match_the_question_are_ignored() {
    let mut r = resolver();
    let t0 = Instant::now();
    let mut q = Message::query();
    q.add_query(Query::query(
        Name::from_ascii("www.example.com.").expect("n"),
        RecordType::A,
    ));
    let actions = r.client_query(
        t0,
        1,
        IpAddr::from([10, 0, 0, 1]),
        Transport::Udp,
        &q.to_vec().expect("e"),
    );
    let Action::Query {
        token,
        server,
        message,
        ..
    } = &actions[0]
    else {
        panic!("{actions:?}")
    };
    let asked = Message::from_vec(message).expect("query");
    // A forged answer: wrong ID, then the right ID from the wrong server,
    // then the wrong question.
    let mut forged = Message::response(asked.metadata.id.wrapping_add(1), asked.metadata.op_code);
    forged.queries = asked.queries.clone();
    assert!(r
        .upstream_answer(
            t0,
            *token,
            SocketAddr::from((*server, 53)),
            &forged.to_vec().expect("e")
        )
        .is_empty());
    forged.metadata.id = asked.metadata.id;
    assert!(r
        .upstream_answer(
            t0,
            *token,
            SocketAddr::from((IpAddr::from([6, 6, 6, 6]), 53)),
            &forged.to_vec().expect("e")
        )
        .is_empty());
    forged.queries = vec![Query::query(
        Name::from_ascii("evil.example.").expect("n"),
        RecordType::A,
    )];
    assert!(r
        .upstream_answer(
            t0,
            *token,
            SocketAddr::from((*server, 53)),
            &forged.to_vec().expect("e")
        )
        .is_empty());
    // The right answer from the server's address but another port, and
    // a datagram that is no DNS message at all: ignored, the wait goes on.
    let mut right = Message::response(asked.metadata.id, asked.metadata.op_code);
    right.queries = asked.queries.clone();
    let right = right.to_vec().expect("e");
    assert!(r
        .upstream_answer(t0, *token, SocketAddr::from((*server, 5353)), &right)
        .is_empty());
    assert!(r
        .upstream_answer(t0, *token, SocketAddr::from((*server, 53)), &[0xff; 7])
        .is_empty());
    assert!(r.is_waiting(*token));
    assert_eq!(r.counters().spoofed_or_bad, 5);
    // Garbage from a client gets FORMERR, not a panic.
    let out = r.client_query(
        t0,
        2,
        IpAddr::from([10, 0, 0, 1]),
        Transport::Udp,
        &[0x12, 0x34, 0x01],
    );
    assert!(matches!(&out[..], [Action::Answer { .. }]));
}

#[test]
fn clients_outside_the_lab_and_past_their_budget_are_refused() {
    let mut config = ResolverConfig::new(vec![IpAddr::from([203, 0, 113, 53])]);
    config.allow = vec!["192.168.1.0/24".parse().expect("net")];
    config.client_rate = 10;
    let mut r = Resolver::new(config, [1; 32]);
    let t0 = Instant::now();
    let mut q = Message::query();
    q.add_query(Query::query(
        Name::from_ascii("www.example.com.").expect("n"),
        RecordType::A,
    ));
    let bytes = q.to_vec().expect("e");
    let rcode = |actions: Vec<Action>| match &actions[..] {
        [Action::Answer { message, .. }] => Some(
            Message::from_vec(message)
                .expect("d")
                .metadata
                .response_code,
        ),
        _ => None,
    };
    assert_eq!(
        rcode(r.client_query(t0, 1, IpAddr::from([8, 8, 8, 8]), Transport::Udp, &bytes)),
        Some(ResponseCode::Refused)
    );
    assert_eq!(r.counters().refused_acl, 1);
    let inside = IpAddr::from([192, 168, 1, 10]);
    let refused = (0..100)
        .filter(|i| {
            rcode(r.client_query(t0, 2 + i, inside, Transport::Udp, &bytes))
                == Some(ResponseCode::Refused)
        })
        .count();
    assert_eq!(
        refused,
        100 - 40,
        "a burst of 4 x 10 questions, then refused"
    );
    assert_eq!(r.counters().rate_limited, 60);
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    let (mut net, mut r, t0) = (Internet::lab(), resolver(), Instant::now());
    net.transport = Transport::Tcp;
    let m = net.resolve(&mut r, t0, "big.example.com.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 6, "all six TXT records, over TCP");
    assert_eq!(r.counters().tcp_retries, 1);
    assert_eq!(net.asked.last(), Some(&IpAddr::from([203, 0, 113, 55])));
    // A UDP client without EDNS takes 512 bytes: the cached answer goes to
    // it empty, with TC, so that it asks again over TCP.
    net.transport = Transport::Udp;
    net.asked.clear();
    let m = net.resolve(&mut r, t0, "big.example.com.", RecordType::TXT);
    assert!(m.metadata.truncation && m.answers.is_empty(), "{m:?}");
    assert!(net.asked.is_empty());
}

#[test]
fn a_traced_question_shows_each_step_of_the_walk_and_an_untraced_one_none() {
    let mut net = Internet::lab();
    let mut r = resolver();
    let t0 = Instant::now();
    net.resolve(&mut r, t0, "api.example.com.", RecordType::A);
    assert!(net.steps.is_empty(), "untraced: {:?}", net.steps);
    net.traced = true;
    net.resolve(&mut r, t0, "www.other.com.", RecordType::A);
    let steps = net.steps.join("\n");
    let expected = [
        "cache-miss: cache miss: www.other.com. A",
        // com's servers are cached from the first question.
        "ask: ask 203.0.113.54 (for com.): other.com. A (minimised) over UDP",
        "referral: 203.0.113.54 in 0.00 ms: referral to other.com. (ns2.example.com.), no glue",
        "glueless: no address known for the name server ns2.example.com. (no glue): looking it up first",
        "ask: ask 203.0.113.55 (for example.com.): ns2.example.com. A over UDP",
        "answer: 203.0.113.55 in 0.00 ms: answer ns2.example.com. 3600 IN A 203.0.113.55",
        "ask: ask 203.0.113.55 (for other.com.): www.other.com. A over UDP",
        "answer: 203.0.113.55 in 0.00 ms: answer www.other.com. 3600 IN A 203.0.113.99",
    ];
    // Names are shown as sent: in their random 0x20 case.
    assert_eq!(steps.to_lowercase(), expected.join("\n").to_lowercase());
    assert_ne!(steps.to_lowercase(), steps);
    net.steps.clear();
    net.resolve(&mut r, t0, "www.example.com.", RecordType::A);
    assert_eq!(net.steps, ["cache-hit: cache hit: www.example.com. A"]);
    net.steps.clear();
    // A CNAME known from the cache is followed there.
    net.resolve(&mut r, t0, "api.example.com.", RecordType::A);
    assert_eq!(
        net.steps,
        [
            "cache-miss: cache miss: api.example.com. A",
            "cname: api.example.com. is a CNAME for www.example.com.: looking that up",
            "cache-hit: cache hit: www.example.com. A",
        ]
    );
    net.steps.clear();
    net.resolve(&mut r, t0, "nope.example.com.", RecordType::A);
    assert!(
        net.steps
            .iter()
            .any(|s| s == "negative: 203.0.113.55 in 0.00 ms: NXDOMAIN, cached 300 s (SOA minimum)"),
        "{:?}",
        net.steps
    );
}

#[test]
fn with_prefetch_a_name_asked_near_its_expiry_is_refreshed_in_the_background() {
    for prefetch in [false, true] {
        let mut net = Internet::lab();
        let mut config = ResolverConfig::new(vec![IpAddr::from([203, 0, 113, 53])]);
        config.prefetch = prefetch;
        let mut r = Resolver::new(config, [7; 32]);
        let t0 = Instant::now();
        net.resolve(&mut r, t0, "www.example.com.", RecordType::A);
        let asked = net.heard.len();
        // 10% of its 3600 s left: answered from the cache at once.
        let late = t0 + Duration::from_secs(3300);
        let m = net.resolve(&mut r, late, "www.example.com.", RecordType::A);
        assert_eq!(m.answers[0].ttl, 300);
        let refreshed = net.heard.len() > asked;
        assert_eq!(refreshed, prefetch, "{:?}", net.heard);
        assert_eq!(r.counters().prefetches, u64::from(prefetch));
        // Past the old expiry: a fresh answer from the cache, or none.
        let after = t0 + Duration::from_secs(3700);
        let before = net.heard.len();
        let m = net.resolve(&mut r, after, "www.example.com.", RecordType::A);
        assert_eq!(addrs(&m), [IpAddr::from([203, 0, 113, 10])]);
        assert_eq!(net.heard.len() == before, prefetch, "{:?}", net.heard);
        if prefetch {
            assert_eq!(m.answers[0].ttl, 3600 - 400);
        }
    }
}

#[test]
fn a_referral_to_many_name_servers_without_glue_costs_one_budget() {
    // NXNS: evil.com delegates victim.evil.com to 40 name servers whose
    // names resolve nowhere, with no glue. Each would be looked up; the
    // question's budget of upstream queries bounds them all.
    let evil: String = std::iter::once(
        "$TTL 60\n@ IN SOA ns1.example.com. h.evil.com. 1 7200 900 1209600 60\n@ IN NS ns1.example.com.\n"
            .to_owned(),
    )
    .chain((0..40).map(|i| format!("victim IN NS ns{i}.nowhere.net.\n")))
    .collect();
    let mut net = Internet::lab();
    let z = |o: &str, t: &str| Zone::parse(o, t).expect("zone");
    let com = format!("{COM}evil.com. IN NS ns1.example.com.\n");
    net.servers[1].1 = Some(Authority::new(vec![z("com.", &com), z("net.", NET)]));
    net.servers[2].1 = Some(Authority::new(vec![
        z("example.com.", EXAMPLE),
        z("evil.com.", &evil),
    ]));
    let mut r = resolver();
    let answer = net.resolve(
        &mut r,
        Instant::now(),
        "www.victim.evil.com.",
        RecordType::A,
    );
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    assert!(
        net.asked.len() <= dns::MAX_SENT,
        "{} upstream queries: {:?}",
        net.asked.len(),
        net.heard
    );
    assert_eq!(r.counters().work_exhausted, 1);
}

#[test]
fn dns64_makes_aaaa_records_from_a_records_in_the_prefix() {
    let mut config = ResolverConfig::new(vec![IpAddr::from([203, 0, 113, 53])]);
    config.dns64 = Some("64:ff9b::/96".parse().expect("prefix"));
    let mut r = Resolver::new(config, [0x5e; 32]);
    let (mut net, t0) = (Internet::lab(), Instant::now());
    net.traced = true;
    let aaaa = |m: &Message| -> Vec<String> {
        m.answers
            .iter()
            .map(|r| format!("{} {} {}", r.name, r.ttl, r.data))
            .collect()
    };
    // Through a CNAME: the alias stays, the A record becomes AAAA.
    let m = net.resolve(&mut r, t0, "api.example.com.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        aaaa(&m),
        [
            "api.example.com. 3600 www.example.com.",
            "www.example.com. 3600 64:ff9b::cb00:710a",
        ]
    );
    assert!(
        net.steps
            .iter()
            .any(|s| s.starts_with("dns64: www.example.com. has no AAAA")),
        "{:?}",
        net.steps
    );
    // From the cache the second time, asking nobody.
    net.asked.clear();
    let m = net.resolve(&mut r, t0, "www.example.com.", RecordType::AAAA);
    assert_eq!(aaaa(&m), ["www.example.com. 3600 64:ff9b::cb00:710a"]);
    assert!(net.asked.is_empty(), "{:?}", net.asked);
    // A name that does not exist is still NXDOMAIN; A questions are
    // untouched.
    let m = net.resolve(&mut r, t0, "nope.example.com.", RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = net.resolve(&mut r, t0, "www.example.com.", RecordType::A);
    assert_eq!(addrs(&m), [IpAddr::from([203, 0, 113, 10])]);
    assert_eq!(r.counters().dns64_synthesised, 2);
}
