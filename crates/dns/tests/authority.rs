//! What an authoritative server answers, query by query.

use dns::hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use dns::hickory_proto::rr::{Name, RData, RecordType};
use dns::{Authority, Transport, Zone};
use std::net::IpAddr;

/// The resolver asking, in tests where who asks does not matter.
const ASKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 53));

const EXAMPLE: &str = "
$TTL 3600
@       IN SOA ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300
@       IN NS  ns1
@       IN A   203.0.113.10
www     IN A   203.0.113.10
api     IN CNAME www
loop1   IN CNAME loop2
loop2   IN CNAME loop1
ns1     IN A   203.0.113.55
mail    IN A   203.0.113.25
@       IN MX  10 mail
@       IN TXT \"v=spf1 mx -all\"
*.wild  IN A   203.0.113.99
a.b.c   IN A   203.0.113.98
big     IN TXT \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"
big     IN TXT \"1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"
big     IN TXT \"2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"
big     IN TXT \"3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"
big     IN TXT \"4123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"
big     IN TXT \"5123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"
";

const COM: &str = "
$TTL 86400
@            IN SOA a.gtld-servers.net. nstld.example. 1 1800 900 604800 900
@            IN NS  a.gtld-servers.net.
example      IN NS  ns1.example.com.
ns1.example  IN A   203.0.113.55
";

fn authority() -> Authority {
    Authority::new(vec![
        Zone::parse("example.com.", EXAMPLE).expect("example.com"),
        Zone::parse("com.", COM).expect("com"),
    ])
}

fn ask(a: &Authority, name: &str, ty: RecordType) -> Message {
    ask_with(a, name, ty, None, Transport::Udp)
}

fn ask_with(a: &Authority, name: &str, ty: RecordType, edns: Option<u16>, t: Transport) -> Message {
    let mut q = Message::query();
    q.metadata.id = 4242;
    q.add_query(Query::query(Name::from_ascii(name).expect("name"), ty));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        q.edns = Some(e);
    }
    let bytes = a
        .answer(&q.to_vec().expect("encode"), t, ASKER)
        .expect("an answer");
    Message::from_vec(&bytes).expect("decode")
}

fn a_records(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn answers_are_authoritative_and_cnames_are_followed() {
    let a = authority();
    let m = ask(&a, "www.example.com.", RecordType::A);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert!(m.metadata.authoritative);
    assert_eq!(
        (m.metadata.id, m.metadata.response_code),
        (4242, ResponseCode::NoError)
    );
    assert_eq!(a_records(&m), ["203.0.113.10"]);
    let m = ask(&a, "API.Example.COM.", RecordType::A);
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(a_records(&m), ["203.0.113.10"]);
    let m = ask(&a, "example.com.", RecordType::MX);
    assert!(matches!(m.answers[0].data, RData::MX(_)));
    let m = ask(&a, "loop1.example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let a = authority();
    let m = ask(&a, "nope.example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(m.authorities[0].ttl, 300, "min(SOA TTL, minimum)");
    let m = ask(&a, "www.example.com.", RecordType::AAAA);
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NoError, 0)
    );
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    // An empty non-terminal exists: NODATA, not NXDOMAIN.
    let m = ask(&a, "b.c.example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}

#[test]
fn wildcards_synthesize_at_the_closest_encloser() {
    let a = authority();
    let m = ask(&a, "anything.wild.example.com.", RecordType::A);
    assert_eq!(a_records(&m), ["203.0.113.99"]);
    assert_eq!(
        m.answers[0].name,
        Name::from_ascii("anything.wild.example.com.").expect("name")
    );
    // RFC 4592: the wildcard does not match below an existing name.
    let m = ask(&a, "x.a.b.c.example.com.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn delegations_are_referrals_with_glue() {
    let a = Authority::new(vec![Zone::parse("com.", COM).expect("com")]);
    let m = ask(&a, "www.example.com.", RecordType::A);
    assert!(!m.metadata.authoritative);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::NS);
    let mut glue = m.clone();
    glue.answers = m.additionals.clone();
    assert_eq!(a_records(&glue), ["203.0.113.55"]);
}

#[test]
fn refused_formerr_notimp_and_truncation() {
    let a = authority();
    let m = ask(&a, "www.example.org.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // Two questions.
    let mut q = Message::query();
    q.add_query(Query::query(
        Name::from_ascii("a.example.com.").expect("n"),
        RecordType::A,
    ));
    q.add_query(Query::query(
        Name::from_ascii("b.example.com.").expect("n"),
        RecordType::A,
    ));
    let r = Message::from_vec(
        &a.answer(&q.to_vec().expect("e"), Transport::Udp, ASKER)
            .expect("a"),
    )
    .expect("d");
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    // Not a query opcode.
    let mut q = Message::query();
    q.metadata.op_code = OpCode::Status;
    q.add_query(Query::query(
        Name::from_ascii("a.example.com.").expect("n"),
        RecordType::A,
    ));
    let r = Message::from_vec(
        &a.answer(&q.to_vec().expect("e"), Transport::Udp, ASKER)
            .expect("a"),
    )
    .expect("d");
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    // 600 bytes of TXT: truncated at 512 without EDNS, whole with it or TCP.
    let m = ask(&a, "big.example.com.", RecordType::TXT);
    assert!(m.metadata.truncation && m.answers.is_empty());
    let m = ask_with(
        &a,
        "big.example.com.",
        RecordType::TXT,
        Some(1232),
        Transport::Udp,
    );
    assert!(!m.metadata.truncation && m.answers.len() == 6 && m.edns.is_some());
    let m = ask_with(
        &a,
        "big.example.com.",
        RecordType::TXT,
        None,
        Transport::Tcp,
    );
    assert_eq!(m.answers.len(), 6);
}

#[test]
fn garbage_gets_formerr_or_nothing_never_a_panic() {
    let a = authority();
    assert!(a.answer(&[], Transport::Udp, ASKER).is_none());
    let r = a
        .answer(&[0x12, 0x34, 0x01, 0, 0, 9], Transport::Udp, ASKER)
        .expect("formerr");
    assert_eq!(
        Message::from_vec(&r).expect("d").metadata.response_code,
        ResponseCode::FormErr
    );
    // A response is never answered.
    assert!(a
        .answer(
            &[0x12, 0x34, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            Transport::Udp,
            ASKER
        )
        .is_none());
    // A compression loop in the question name.
    let looped = [
        0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1,
    ];
    let _ = a.answer(&looped, Transport::Udp, ASKER);
    for n in 0..2000u32 {
        let bytes: Vec<u8> = (0..(n % 97)).map(|i| (i * 31 + n * 7) as u8).collect();
        let _ = a.answer(&bytes, Transport::Udp, ASKER);
    }
}

#[test]
fn zone_errors_say_what_is_wrong() {
    assert!(
        Zone::parse("example.com.", "@ IN A 1.2.3.4\n").is_err(),
        "no SOA"
    );
    let e = Zone::parse(
        "example.com.",
        "@ IN SOA a. b. 1 2 3 4 5\n@ IN A not-an-address\n",
    )
    .expect_err("bad A");
    assert!(!e.to_string().is_empty());
}

#[test]
fn zone_transfers_go_over_tcp_to_allowed_addresses() {
    let a = authority().allow_transfer(vec!["198.51.100.0/24".parse().expect("net")]);
    let axfr = |zone: &str| {
        let mut q = Message::query();
        q.metadata.id = 99;
        q.add_query(Query::query(
            Name::from_ascii(zone).expect("name"),
            RecordType::AXFR,
        ));
        q.to_vec().expect("encode")
    };
    let allowed = "198.51.100.2".parse().expect("addr");
    let messages = a
        .transfer(&axfr("example.com."), allowed)
        .expect("a transfer");
    let records: Vec<_> = messages
        .iter()
        .flat_map(|m| Message::from_vec(m).expect("decode").answers)
        .collect();
    // SOA first and last, every other record once between.
    assert_eq!(
        records.first().map(|r| r.record_type()),
        Some(RecordType::SOA)
    );
    assert_eq!(
        records.last().map(|r| r.record_type()),
        Some(RecordType::SOA)
    );
    let between = &records[1..records.len() - 1];
    assert!(between.iter().all(|r| r.record_type() != RecordType::SOA));
    assert_eq!(between.len(), 18, "{between:#?}");
    for (name, ty) in [
        ("www.example.com.", RecordType::A),
        ("*.wild.example.com.", RecordType::A),
        ("example.com.", RecordType::MX),
    ] {
        assert!(
            between
                .iter()
                .any(|r| r.name.to_string() == name && r.record_type() == ty),
            "{name} {ty}"
        );
    }
    // Not a zone it serves; not an allowed address; not over UDP.
    let rcode = |messages: Vec<Vec<u8>>| {
        let [m] = &messages[..] else {
            panic!("one message")
        };
        Message::from_vec(m).expect("decode").metadata.response_code
    };
    let notauth = a.transfer(&axfr("www.example.com."), allowed);
    assert_eq!(notauth.map(rcode), Some(ResponseCode::NotAuth));
    let refused = a.transfer(&axfr("example.com."), "192.0.2.1".parse().expect("addr"));
    assert_eq!(refused.map(rcode), Some(ResponseCode::Refused));
    let udp = ask(&a, "example.com.", RecordType::AXFR);
    assert_eq!(udp.metadata.response_code, ResponseCode::NotImp);
    // A big zone goes in several messages, each well under 64 KiB.
    let mut text = String::from(EXAMPLE);
    for i in 0..600 {
        text.push_str(&format!("t{i} IN TXT \"{}\"\n", "x".repeat(100)));
    }
    let big = Authority::new(vec![Zone::parse("example.com.", &text).expect("zone")])
        .allow_transfer(vec!["198.51.100.0/24".parse().expect("net")]);
    let messages = big
        .transfer(&axfr("example.com."), allowed)
        .expect("a transfer");
    assert!(messages.len() >= 4, "{}", messages.len());
    assert!(messages.iter().all(|m| m.len() < 20_000));
    let count: usize = messages
        .iter()
        .map(|m| Message::from_vec(m).expect("decode").answers.len())
        .sum();
    assert_eq!(count, 18 + 600 + 2);
    // Any other question is not a transfer.
    let mut q = Message::query();
    q.add_query(Query::query(
        Name::from_ascii("www.example.com.").expect("name"),
        RecordType::A,
    ));
    assert!(a.transfer(&q.to_vec().expect("encode"), allowed).is_none());
}

#[test]
fn any_gets_one_rrset_as_rfc_8482_says() {
    let a = authority();
    let m = ask(&a, "example.com.", RecordType::ANY);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.answers.is_empty());
    let first = m.answers[0].record_type();
    assert!(
        m.answers.iter().all(|r| r.record_type() == first),
        "one RRset, not every one at the apex: {:?}",
        m.answers
    );
}

#[test]
fn an_unknown_edns_version_gets_badvers_with_ours() {
    let a = authority();
    let mut q = Message::query();
    q.metadata.id = 7;
    q.add_query(Query::query(
        Name::from_ascii("www.example.com.").expect("name"),
        RecordType::A,
    ));
    let mut e = Edns::new();
    e.set_version(1);
    q.edns = Some(e);
    let bytes = a
        .answer(&q.to_vec().expect("encode"), Transport::Udp, ASKER)
        .expect("an answer");
    let m = Message::from_vec(&bytes).expect("decode");
    // 16, BADVERS (hickory names the code it reads BADSIG, TSIG's 16).
    assert_eq!(u16::from(m.metadata.response_code), 16);
    assert_eq!(m.edns.as_ref().map(Edns::version), Some(0));
    assert!(m.answers.is_empty());
}

/// example.com with `cdn` answered by region: two views and the default.
fn geo() -> Authority {
    let mut zone = Zone::parse(
        "example.com.",
        &format!("{EXAMPLE}cdn IN A 203.0.113.20\nedge IN CNAME cdn\n"),
    )
    .expect("zone");
    zone.add_view(
        vec!["10.1.0.0/16".parse().expect("valid")],
        "cdn 60 IN A 10.1.0.20",
    )
    .expect("europe");
    zone.add_view(
        vec![
            "10.2.0.0/16".parse().expect("valid"),
            "10.2.9.0/24".parse().expect("valid"),
        ],
        "cdn 60 IN A 10.2.0.20",
    )
    .expect("asia");
    Authority::new(vec![zone])
}

/// `cdn.example.com A` from `from`, with client subnet `ecs` if given:
/// the addresses, and the ECS option of the answer.
fn ask_geo(
    a: &Authority,
    name: &str,
    from: [u8; 4],
    ecs: Option<&str>,
) -> (
    Vec<String>,
    Option<dns::hickory_proto::rr::rdata::opt::ClientSubnet>,
) {
    use dns::hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let mut q = Message::query();
    q.metadata.id = 7;
    q.add_query(Query::query(
        Name::from_ascii(name).expect("name"),
        RecordType::A,
    ));
    if let Some(subnet) = ecs {
        let mut e = Edns::new();
        e.options_mut()
            .insert(EdnsOption::Subnet(subnet.parse().expect("subnet")));
        q.edns = Some(e);
    }
    let bytes = a
        .answer(&q.to_vec().expect("encode"), Transport::Udp, from.into())
        .expect("an answer");
    let m = Message::from_vec(&bytes).expect("decode");
    let echo = m
        .edns
        .as_ref()
        .and_then(|e| match e.options().get(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => Some(*s),
            _ => None,
        });
    (a_records(&m), echo)
}

#[test]
fn a_view_answers_its_regions_resolvers_and_everyone_else_gets_the_zones_record() {
    let a = geo();
    assert_eq!(
        ask_geo(&a, "cdn.example.com.", [10, 1, 3, 53], None).0,
        ["10.1.0.20"]
    );
    assert_eq!(
        ask_geo(&a, "cdn.example.com.", [10, 2, 0, 53], None).0,
        ["10.2.0.20"]
    );
    assert_eq!(
        ask_geo(&a, "cdn.example.com.", [198, 51, 100, 53], None).0,
        ["203.0.113.20"]
    );
    // Through a CNAME the target is answered by region too.
    let (edge, _) = ask_geo(&a, "edge.example.com.", [10, 1, 3, 53], None);
    assert_eq!(edge, ["10.1.0.20"]);
    // A name no view has is the same for all.
    assert_eq!(
        ask_geo(&a, "www.example.com.", [10, 1, 3, 53], None).0,
        ["203.0.113.10"]
    );
}

#[test]
fn a_client_subnet_chooses_the_view_and_the_answer_says_for_whom_it_holds() {
    let a = geo();
    // A resolver outside every region asks for a client in Asia (RFC
    // 7871): Asia's edge, valid for the /16 the view names.
    let (addrs, echo) = ask_geo(
        &a,
        "cdn.example.com.",
        [198, 51, 100, 53],
        Some("10.2.7.0/24"),
    );
    assert_eq!(addrs, ["10.2.0.20"]);
    let echo = echo.expect("the option is echoed");
    assert_eq!(
        (echo.addr(), echo.source_prefix(), echo.scope_prefix()),
        ("10.2.7.0".parse().expect("valid"), 24, 16)
    );
    // The longest matching network wins, and sets the scope.
    let (_, echo) = ask_geo(
        &a,
        "cdn.example.com.",
        [198, 51, 100, 53],
        Some("10.2.9.0/24"),
    );
    assert_eq!(echo.expect("valid").scope_prefix(), 24);
    // Bits past the source prefix are not the client's: cut, not used.
    let (addrs, echo) = ask_geo(
        &a,
        "cdn.example.com.",
        [10, 2, 0, 53],
        Some("10.1.77.77/16"),
    );
    assert_eq!(addrs, ["10.1.0.20"]);
    assert_eq!(
        echo.expect("valid").addr(),
        "10.1.0.0".parse::<IpAddr>().expect("valid")
    );
    // No region's client: the default, for that subnet only.
    let (addrs, echo) = ask_geo(&a, "cdn.example.com.", [10, 1, 0, 53], Some("192.0.2.0/24"));
    assert_eq!(addrs, ["203.0.113.20"]);
    assert_eq!(echo.expect("valid").scope_prefix(), 24);
    // /0: the resolver wants what everyone gets, whoever it is.
    let (addrs, echo) = ask_geo(&a, "cdn.example.com.", [10, 1, 0, 53], Some("0.0.0.0/0"));
    assert_eq!(addrs, ["203.0.113.20"]);
    assert_eq!(echo.expect("valid").scope_prefix(), 0);
    // A name no view has holds for everyone: scope 0.
    let (_, echo) = ask_geo(
        &a,
        "www.example.com.",
        [198, 51, 100, 53],
        Some("10.2.7.0/24"),
    );
    assert_eq!(echo.expect("valid").scope_prefix(), 0);
}

#[test]
fn a_view_must_override_a_record_the_zone_has() {
    let mut zone = Zone::parse("example.com.", EXAMPLE).expect("zone");
    let err = zone
        .add_view(
            vec!["10.1.0.0/16".parse().expect("valid")],
            "nowhere 60 IN A 10.1.0.9",
        )
        .expect_err("no default for nowhere");
    assert!(
        err.to_string()
            .contains("nowhere.example.com. A has no record"),
        "{err}"
    );
    assert!(zone.add_view(Vec::new(), "www 60 IN A 10.1.0.9").is_err());
}
