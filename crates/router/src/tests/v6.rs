//! IPv6 in the router, frame by frame: neighbour discovery, router
//! advertisements, forwarding, ICMPv6 errors and hostile input.

use super::*;
use crate::nd::{self, NdMessage};
use crate::{Nat64Config, Proto, Timeouts};
use std::net::Ipv6Addr;
use wire::ether::ETHERTYPE_IPV6;
use wire::ip::{transport_checksum, Transport, PROTO_ICMPV6, PROTO_UDP};

const A6: &str = "2001:db8:1::10";
const B6: &str = "2001:db8:2::fe";
const FAR: &str = "2001:db8:99::5";

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().expect("ipv6")
}

/// lan 2001:db8:1::1/64 advertised for SLAAC with RDNSS, wan
/// 2001:db8:2::1/64 (MTU `wan_mtu`), default via 2001:db8:2::fe; IPv4
/// as in [`Lab::new`].
fn lab6(wan_mtu: u16) -> Lab {
    let mut r = Router::new("gw");
    let lan6: Ipv6Net = "2001:db8:1::1/64".parse().expect("net");
    let mut ra = RaConfig::slaac(lan6);
    ra.rdnss = vec![ip6("2001:db8:100::53")];
    r.add_iface(IfaceConfig {
        name: "lan".into(),
        link: Link::Ethernet { mac: R_LAN },
        addr: "10.0.1.1/24".parse().expect("net"),
        addr6: Some(lan6),
        mtu: 1500,
        dhcp: None,
        ra: Some(ra),
        dhcp6: None,
    });
    r.add_iface(IfaceConfig {
        name: "wan".into(),
        link: Link::Ethernet { mac: R_WAN },
        addr: "10.0.2.1/24".parse().expect("net"),
        addr6: Some("2001:db8:2::1/64".parse().expect("net")),
        mtu: wan_mtu,
        dhcp: None,
        ra: None,
        dhcp6: None,
    });
    r.add_route("::/0".parse().expect("net"), ip6(B6).into())
        .expect("route");
    Lab {
        r,
        pool: FramePool::new(2048, 64),
        now: Instant::from_secs(1),
    }
}

/// An IPv6 packet from `src` to `dst` carrying `l4` (checksum filled in
/// for UDP and ICMPv6).
fn ipv6(src: &str, dst: &str, next: u8, hop: u8, l4: &[u8]) -> Vec<u8> {
    let (s, d) = (ip6(src), ip6(dst));
    let mut l4 = l4.to_vec();
    let at = match next {
        PROTO_ICMPV6 => Some(2),
        PROTO_UDP => Some(6),
        _ => None,
    };
    if let Some(at) = at {
        l4[at..at + 2].fill(0);
        let c = transport_checksum(s.into(), d.into(), next, &l4);
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut p = icmp::ipv6_header(s, d, next, l4.len() as u16, hop).to_vec();
    p.extend_from_slice(&l4);
    p
}

fn frame6(dst: Mac, src: Mac, packet: &[u8]) -> Vec<u8> {
    build_frame(dst, src, ETHERTYPE_IPV6, packet)
}

fn echo6(id: u16) -> Vec<u8> {
    let mut m = vec![128, 0, 0, 0, 0, 0, 0, 1];
    m[4..6].copy_from_slice(&id.to_be_bytes());
    m.extend_from_slice(b"ping6");
    m
}

/// The parsed packet in a frame the router sent, checksums verified.
fn view_of(frame: &[u8]) -> IpView {
    let v = IpView::parse(frame, HEADER_LEN).expect("a valid IPv6 packet");
    let l4 = v.payload(frame);
    if v.proto == PROTO_ICMPV6 {
        let pseudo = checksum::pseudo_header(
            &wire::ip::octets(v.src),
            &wire::ip::octets(v.dst),
            PROTO_ICMPV6,
            l4.len() as u32,
        );
        assert_eq!(
            checksum::fold(checksum::sum(pseudo, l4)),
            0xffff,
            "ICMPv6 checksum"
        );
    }
    v
}

impl Lab {
    /// Host A solicits the router's LAN address and learns it; the router
    /// learns A.
    fn learn_a6(&mut self) {
        let ns = ipv6(
            A6,
            &nd::solicited_node(ip6("2001:db8:1::1")).to_string(),
            PROTO_ICMPV6,
            255,
            &nd::solicitation(ip6("2001:db8:1::1"), HOST_A),
        );
        let group = nd::multicast_mac(nd::solicited_node(ip6("2001:db8:1::1")));
        assert_eq!(self.rx(LAN, frame6(group, HOST_A, &ns)).len(), 1);
    }
}

#[test]
fn router_advertisements_periodic_and_solicited_but_spaced() {
    let mut lab = lab6(1500);
    let out = lab.tick(Duration::from_millis(1));
    assert_eq!(out.len(), 1, "the first advertisement goes out at once");
    let (iface, ra) = &out[0];
    assert_eq!(*iface, LAN);
    assert_eq!(&ra[0..6], &nd::multicast_mac(nd::ALL_NODES).0);
    let v = view_of(ra);
    assert_eq!(
        (v.src, v.dst, v.hop_limit),
        (nd::link_local(R_LAN).into(), nd::ALL_NODES.into(), 255)
    );
    let body = v.payload(ra);
    assert_eq!(body[0], nd::ROUTER_ADVERTISEMENT);
    assert!(
        body.windows(8)
            .any(|w| w == &ip6("2001:db8:1::").octets()[..8]),
        "prefix"
    );
    assert!(
        body.windows(16)
            .any(|w| w == ip6("2001:db8:100::53").octets()),
        "RDNSS"
    );
    assert!(
        lab.tick(Duration::from_secs(30)).is_empty(),
        "not before its interval"
    );
    // A router solicitation from a host coming up: answered, once.
    let rs = ipv6(
        "fe80::1",
        "ff02::2",
        PROTO_ICMPV6,
        255,
        &[133, 0, 0, 0, 0, 0, 0, 0],
    );
    let mac = nd::multicast_mac(nd::ALL_ROUTERS);
    assert_eq!(lab.rx(LAN, frame6(mac, HOST_A, &rs)).len(), 1);
    assert!(
        lab.rx(LAN, frame6(mac, HOST_A, &rs)).is_empty(),
        "3 s apart at least"
    );
    assert!(
        lab.tick(Duration::from_secs(31)).is_empty(),
        "the solicited one, sent to all nodes, restarted the interval"
    );
    assert_eq!(
        lab.tick(Duration::from_secs(30)).len(),
        1,
        "the next periodic one"
    );
    assert_eq!(lab.r.counters().router_adverts_sent, 3);
}

#[test]
fn neighbour_solicitations_answered_for_own_addresses_only() {
    let mut lab = lab6(1500);
    let target = ip6("2001:db8:1::1");
    let ns = ipv6(
        A6,
        &nd::solicited_node(target).to_string(),
        PROTO_ICMPV6,
        255,
        &nd::solicitation(target, HOST_A),
    );
    let group = nd::multicast_mac(nd::solicited_node(target));
    let out = lab.rx(LAN, frame6(group, HOST_A, &ns));
    assert_eq!(out.len(), 1);
    let na = &out[0].1;
    assert_eq!(&na[0..6], &HOST_A.0, "unicast back to the asker");
    let v = view_of(na);
    assert_eq!(v.dst, IpAddr::V6(ip6(A6)));
    match nd::parse(v.payload(na), v.hop_limit, ip6("2001:db8:1::1")) {
        Ok(NdMessage::NeighborAdvert {
            target: t,
            router,
            solicited,
            target_mac,
            ..
        }) => {
            assert_eq!(
                (t, router, solicited, target_mac),
                (target, true, true, Some(R_LAN))
            );
        }
        other => panic!("not an advertisement: {other:?}"),
    }
    // Duplicate address detection (from ::) is answered to all nodes.
    let dad = ipv6(
        "::",
        &nd::solicited_node(target).to_string(),
        PROTO_ICMPV6,
        255,
        &nd::solicitation(target, HOST_A)[..24],
    );
    let out = lab.rx(LAN, frame6(group, HOST_A, &dad));
    assert_eq!(out.len(), 1);
    assert_eq!(view_of(&out[0].1).dst, IpAddr::V6(nd::ALL_NODES));
    // Someone else's address: not answered, nothing learned (RFC 6583).
    let other = ip6("2001:db8:1::77");
    let ns = ipv6(
        A6,
        &nd::solicited_node(other).to_string(),
        PROTO_ICMPV6,
        255,
        &nd::solicitation(other, HOST_A),
    );
    assert!(lab
        .rx(
            LAN,
            frame6(nd::multicast_mac(nd::solicited_node(other)), HOST_A, &ns)
        )
        .is_empty());
    // Not from this link: dropped as invalid.
    let ns = ipv6(
        A6,
        &nd::solicited_node(target).to_string(),
        PROTO_ICMPV6,
        64,
        &nd::solicitation(target, HOST_A),
    );
    assert!(lab.rx(LAN, frame6(group, HOST_A, &ns)).is_empty());
    assert_eq!(lab.r.counters().drops(Drop::InvalidNd), 1);
}

#[test]
fn forwarding_resolves_the_next_hop_and_decrements_the_hop_limit() {
    let mut lab = lab6(1500);
    lab.learn_a6();
    let udp = udp(5000, 53, b"query");
    let packet = ipv6(A6, FAR, PROTO_UDP, 64, &udp);
    let out = lab.rx(LAN, frame6(R_LAN, HOST_A, &packet));
    assert_eq!(
        out.len(),
        1,
        "a solicitation for the next hop, the packet waits"
    );
    let (iface, ns) = &out[0];
    assert_eq!(*iface, WAN);
    let v = view_of(ns);
    assert_eq!(v.dst, IpAddr::V6(nd::solicited_node(ip6(B6))));
    assert_eq!(lab.r.take_decisions(), vec![]);
    // The gateway answers: the packet leaves, hop limit 63, checksum kept.
    let na = ipv6(
        B6,
        "2001:db8:2::1",
        PROTO_ICMPV6,
        255,
        &nd::advertisement(ip6(B6), HOST_B, true),
    );
    let out = lab.rx(WAN, frame6(R_WAN, HOST_B, &na));
    assert_eq!(out.len(), 1);
    let (iface, sent) = &out[0];
    assert_eq!(
        (*iface, &sent[0..6], &sent[6..12]),
        (WAN, &HOST_B.0[..], &R_WAN.0[..])
    );
    let v = view_of(sent);
    assert_eq!(v.hop_limit, 63);
    assert_eq!(v.ports(), Some((5000, 53)));
    let pseudo = checksum::pseudo_header(
        &ip6(A6).octets(),
        &ip6(FAR).octets(),
        PROTO_UDP,
        udp.len() as u32,
    );
    assert_eq!(
        checksum::fold(checksum::sum(pseudo, v.payload(sent))),
        0xffff
    );
    assert_eq!(lab.r.counters().forwarded, 1);
    // An unsolicited advertisement for an unknown address creates nothing.
    let stray = ipv6(
        "2001:db8:2::99",
        "ff02::1",
        PROTO_ICMPV6,
        255,
        &nd::advertisement(ip6("2001:db8:2::99"), HOST_B, false),
    );
    lab.rx(WAN, frame6(Mac::BROADCAST, HOST_B, &stray));
    assert!(lab
        .r
        .status(lab.now)
        .arp
        .iter()
        .all(|r| r.ip != IpAddr::V6(ip6("2001:db8:2::99"))));
}

#[test]
fn hop_limit_expiry_and_too_big_answered_from_the_ingress_address() {
    let mut lab = lab6(1280);
    lab.learn_a6();
    let packet = ipv6(A6, FAR, PROTO_UDP, 1, &udp(5000, 33434, b"probe"));
    let out = lab.rx(LAN, frame6(R_LAN, HOST_A, &packet));
    assert_eq!(out.len(), 1);
    let v = view_of(&out[0].1);
    assert_eq!(
        (v.src, v.dst),
        (IpAddr::V6(ip6("2001:db8:1::1")), IpAddr::V6(ip6(A6)))
    );
    assert_eq!(
        v.transport,
        Transport::Icmp {
            ty: 3,
            code: 0,
            ident: None
        }
    );
    let quote = &v.payload(&out[0].1)[8..];
    assert_eq!(quote, &packet[..], "the whole offending packet is quoted");
    // Too big for the WAN: Packet Too Big with its MTU, never fragmented,
    // never rate-limited.
    let big = ipv6(A6, FAR, PROTO_UDP, 64, &udp(5000, 9, &[7; 1300]));
    for _ in 0..500 {
        let out = lab.rx(LAN, frame6(R_LAN, HOST_A, &big));
        assert_eq!(out.len(), 1);
        let v = view_of(&out[0].1);
        assert_eq!(
            v.transport,
            Transport::Icmp {
                ty: 2,
                code: 0,
                ident: None
            }
        );
        let m = v.payload(&out[0].1);
        assert_eq!(u32::from_be_bytes([m[4], m[5], m[6], m[7]]), 1280);
        assert!(m.len() + 40 <= 1280, "the error fits the minimum MTU");
    }
    assert_eq!(lab.r.counters().drops(Drop::FragmentationNeeded), 500);
}

#[test]
fn echo_to_the_router_answered_and_errors_never_about_errors() {
    let mut lab = lab6(1500);
    lab.learn_a6();
    let ping = ipv6(A6, "2001:db8:2::1", PROTO_ICMPV6, 64, &echo6(7));
    let out = lab.rx(LAN, frame6(R_LAN, HOST_A, &ping));
    assert_eq!(out.len(), 1, "the far interface's address answers too");
    let v = view_of(&out[0].1);
    assert_eq!(
        (v.src, v.dst, v.hop_limit),
        (IpAddr::V6(ip6("2001:db8:2::1")), IpAddr::V6(ip6(A6)), 64)
    );
    assert_eq!(
        v.transport,
        Transport::Icmp {
            ty: 129,
            code: 0,
            ident: Some(7)
        }
    );
    // A UDP datagram to the router: port unreachable, from that address.
    let out = lab.rx(
        LAN,
        frame6(
            R_LAN,
            HOST_A,
            &ipv6(A6, "2001:db8:1::1", PROTO_UDP, 64, &udp(1, 2, b"x")),
        ),
    );
    assert_eq!(
        view_of(&out[0].1).transport,
        Transport::Icmp {
            ty: 1,
            code: 4,
            ident: None
        }
    );
    // An expiring ICMPv6 error draws nothing.
    let err = ipv6(A6, FAR, PROTO_ICMPV6, 1, &[1, 4, 0, 0, 0, 0, 0, 0]);
    assert!(lab.rx(LAN, frame6(R_LAN, HOST_A, &err)).is_empty());
}

#[test]
fn link_local_scope_and_hostile_headers() {
    let mut lab = lab6(1500);
    lab.learn_a6();
    // Link-local destinations are never forwarded; a link-local source
    // leaving its link draws "beyond scope".
    let out = lab.rx(
        LAN,
        frame6(
            R_LAN,
            HOST_A,
            &ipv6(A6, "fe80::99", PROTO_UDP, 64, &udp(1, 2, b"x")),
        ),
    );
    assert!(out.is_empty());
    let from_ll = ipv6("fe80::5", FAR, PROTO_UDP, 64, &udp(1, 2, b"x"));
    let out = lab.rx(LAN, frame6(R_LAN, HOST_A, &from_ll));
    assert_eq!(out.len(), 1, "a solicitation for the link-local sender");
    assert_eq!(lab.r.counters().drops(Drop::Martian), 2);
    assert_eq!(
        lab.r.counters().icmp_errors_sent,
        1,
        "beyond scope, waiting for ND"
    );
    // Nine destination-options headers: refused, counted.
    let mut chain = Vec::new();
    for i in 0..9 {
        chain.extend_from_slice(&[if i == 8 { PROTO_UDP } else { 60 }, 0, 1, 4, 0, 0, 0, 0]);
    }
    chain.extend_from_slice(&udp(1, 2, b"x"));
    let long = ipv6(A6, FAR, 60, 64, &chain);
    assert!(lab.rx(LAN, frame6(R_LAN, HOST_A, &long)).is_empty());
    assert_eq!(lab.r.counters().drops(Drop::ExtensionHeaders), 1);
    // A tiny first fragment whose chain stops before the UDP header.
    let tiny = ipv6(A6, FAR, 44, 64, &[PROTO_UDP, 0, 0, 1, 0, 0, 0, 1, 0, 1]);
    assert!(lab.rx(LAN, frame6(R_LAN, HOST_A, &tiny)).is_empty());
    assert_eq!(lab.r.counters().drops(Drop::ExtensionHeaders), 2);
    // IPv6 on an interface without it is not spoken.
    let mut r4 = Lab::new(1500);
    assert!(r4
        .rx(
            LAN,
            frame6(
                R_LAN,
                HOST_A,
                &ipv6(A6, FAR, PROTO_UDP, 64, &udp(1, 2, b"x"))
            )
        )
        .is_empty());
    assert_eq!(r4.r.counters().drops(Drop::UnsupportedProtocol), 1);
}

#[test]
fn a_scan_of_the_prefix_is_bounded() {
    let mut lab = lab6(1500);
    lab.learn_a6();
    // 20,000 packets to 20,000 addresses of the LAN's /64 from the WAN.
    for n in 0..20_000u32 {
        let dst = format!("2001:db8:1::{:x}:{:x}", n >> 16 | 0x100, n & 0xffff);
        let p = ipv6(B6, &dst, PROTO_UDP, 64, &udp(1, 2, b"x"));
        lab.rx(WAN, frame6(R_WAN, HOST_B, &p));
    }
    let t = lab.r.status(lab.now).arp_table;
    assert!(t.queued_bytes <= t.max_queued_bytes);
    assert!(
        lab.r.counters().drops(Drop::ArpQueueFull) > 0,
        "over the budget: counted drops"
    );
}

/// lab6 with the CPE firewall on the WAN, a pinhole for TCP 80 to A, and
/// room for `max` sessions; A and the WAN gateway known.
fn firewalled(max: usize) -> Lab {
    let mut lab = lab6(1500);
    lab.r.set_firewall(
        WAN,
        FirewallConfig {
            max_entries: max,
            pinholes: vec![Pinhole {
                proto: Proto::Tcp,
                port: 80,
                to: ip6(A6),
            }],
            ..FirewallConfig::default()
        },
    );
    lab.learn_a6();
    let na = ipv6(
        B6,
        "2001:db8:2::1",
        PROTO_ICMPV6,
        255,
        &nd::advertisement(ip6(B6), HOST_B, false),
    );
    // Unsolicited: it creates nothing, so solicit first.
    let ping = ipv6(A6, FAR, PROTO_ICMPV6, 64, &echo6(1));
    lab.rx(LAN, frame6(R_LAN, HOST_A, &ping));
    lab.rx(WAN, frame6(R_WAN, HOST_B, &na));
    lab
}

fn tcp6(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t
}

/// Fills in a TCP checksum over IPv6.
fn with_tcp_checksum(src: &str, dst: &str, mut t: Vec<u8>) -> Vec<u8> {
    let c = transport_checksum(ip6(src).into(), ip6(dst).into(), 6, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

#[test]
fn the_cpe_firewall_lets_in_answers_and_pinholes_only() {
    let mut lab = firewalled(100);
    let from_far = |lab: &mut Lab, p: Vec<u8>| lab.rx(WAN, frame6(R_WAN, HOST_B, &p)).len();
    // Outbound UDP opens a session; the answer from that endpoint comes
    // in, another port of the same host does not.
    let q = ipv6(A6, FAR, PROTO_UDP, 64, &udp(5000, 53, b"q"));
    assert_eq!(lab.rx(LAN, frame6(R_LAN, HOST_A, &q)).len(), 1);
    let answer = ipv6(FAR, A6, PROTO_UDP, 64, &udp(53, 5000, b"a"));
    assert_eq!(from_far(&mut lab, answer), 1);
    let stranger = ipv6(FAR, A6, PROTO_UDP, 64, &udp(54, 5000, b"x"));
    assert_eq!(from_far(&mut lab, stranger), 0);
    // An unsolicited SYN is dropped silently; the pinhole lets one in.
    let syn = ipv6(
        FAR,
        A6,
        6,
        64,
        &with_tcp_checksum(FAR, A6, tcp6(40000, 22, 0x02)),
    );
    assert_eq!(from_far(&mut lab, syn), 0);
    let syn80 = ipv6(
        FAR,
        A6,
        6,
        64,
        &with_tcp_checksum(FAR, A6, tcp6(40000, 80, 0x02)),
    );
    assert_eq!(from_far(&mut lab, syn80), 1);
    // Packet Too Big always passes; another error only about a session.
    let quote = ipv6(A6, FAR, PROTO_UDP, 64, &udp(5000, 53, b"q"));
    let ptb = ipv6(
        B6,
        A6,
        PROTO_ICMPV6,
        64,
        &[&[2u8, 0, 0, 0, 0, 0, 5, 0][..], &quote].concat(),
    );
    assert_eq!(from_far(&mut lab, ptb), 1);
    let unreach = ipv6(
        B6,
        A6,
        PROTO_ICMPV6,
        64,
        &[&[1u8, 4, 0, 0, 0, 0, 0, 0][..], &quote].concat(),
    );
    assert_eq!(from_far(&mut lab, unreach), 1);
    let other = ipv6(A6, FAR, PROTO_UDP, 64, &udp(6000, 53, b"q"));
    let stray = ipv6(
        B6,
        A6,
        PROTO_ICMPV6,
        64,
        &[&[1u8, 4, 0, 0, 0, 0, 0, 0][..], &other].concat(),
    );
    assert_eq!(from_far(&mut lab, stray), 0);
    // Echo requests pass (RFC 4890); a stray echo reply does not.
    let ping_in = ipv6(FAR, A6, PROTO_ICMPV6, 64, &echo6(9));
    assert_eq!(from_far(&mut lab, ping_in), 1);
    let mut reply = echo6(77);
    reply[0] = 129;
    let stray_reply = ipv6(FAR, A6, PROTO_ICMPV6, 64, &reply);
    assert_eq!(from_far(&mut lab, stray_reply), 0);
    let s = lab.r.status(lab.now);
    let fw = s.firewall.expect("firewall");
    assert_eq!(fw.counters.pinholed, 1);
    assert_eq!(fw.counters.dropped_unsolicited, 3, "{:?}", fw.counters);
    assert_eq!(fw.counters.dropped_icmp_unknown_flow, 1);
    assert_eq!(lab.r.counters().drops(Drop::Firewall), 4);
    // The trace says why.
    lab.r.set_tracing(true);
    let syn = ipv6(
        FAR,
        A6,
        6,
        64,
        &with_tcp_checksum(FAR, A6, tcp6(40001, 22, 0x02)),
    );
    from_far(&mut lab, syn);
    let d: Vec<String> = lab
        .r
        .take_decisions()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(d[1..], ["firewall: not established", "drop: firewall"]);
}

#[test]
fn the_firewall_table_is_bounded_and_sessions_expire() {
    let mut lab = firewalled(3);
    // The echo that resolved the gateway holds one session.
    for port in 1..=3u16 {
        let q = ipv6(A6, FAR, PROTO_UDP, 64, &udp(port, 53, b"q"));
        lab.rx(LAN, frame6(R_LAN, HOST_A, &q));
    }
    let s = lab.r.status(lab.now).firewall.expect("firewall");
    assert_eq!((s.table.len(), s.counters.refused_table_full), (3, 1));
    // UDP sessions last 300 s idle.
    lab.tick(Duration::from_secs(301));
    lab.tick(Duration::from_secs(5));
    let s = lab.r.status(lab.now).firewall.expect("firewall");
    assert!(
        s.table.iter().all(|r| r.protocol != Proto::Udp),
        "{:?}",
        s.table
    );
}

/// lab6 with NAT64 from the LAN to the WAN's IPv4 side (pool 10.0.2.1),
/// A and the WAN's IPv4 gateway known.
fn nat64_lab() -> Lab {
    let mut lab = lab6(1500);
    lab.r.set_nat64(Nat64Config {
        prefix: "64:ff9b::/96".parse().expect("net"),
        pool: "10.0.2.1".parse().expect("ip"),
        max_entries: 16,
        timeouts: Timeouts::default(),
    });
    lab.r
        .add_route("0.0.0.0/0".parse().expect("net"), ip("10.0.2.254").into())
        .expect("route");
    lab.learn_a6();
    lab.rx(WAN, arp(1, HOST_B, "10.0.2.254", "10.0.2.1"));
    lab
}

#[test]
fn nat64_translates_echo_and_udp_both_ways() {
    let mut lab = nat64_lab();
    let server = "64:ff9b::c000:201"; // 192.0.2.1
    let out = lab.rx(
        LAN,
        frame6(
            R_LAN,
            HOST_A,
            &ipv6(A6, server, PROTO_ICMPV6, 64, &echo6(4242)),
        ),
    );
    assert_eq!(out.len(), 1);
    let (iface, sent) = &out[0];
    assert_eq!((*iface, &sent[0..6]), (WAN, &HOST_B.0[..]));
    let v4 = IpView::parse(sent, HEADER_LEN).expect("a valid IPv4 packet");
    assert_eq!(
        (v4.src, v4.dst, v4.hop_limit),
        (ip("10.0.2.1").into(), ip("192.0.2.1").into(), 63)
    );
    let Transport::Icmp {
        ty: 8,
        ident: Some(ext),
        ..
    } = v4.transport
    else {
        panic!("not an echo request: {v4:?}");
    };
    assert_eq!(checksum::fold(checksum::sum(0, v4.payload(sent))), 0xffff);
    // The answer comes back as ICMPv6 from the server's 64:ff9b:: address.
    let mut reply = echo_request(ext);
    reply[0] = 0;
    reply[2..4].fill(0);
    let c = checksum::finish(checksum::sum(0, &reply));
    reply[2..4].copy_from_slice(&c.to_be_bytes());
    let back = lab.rx(
        WAN,
        build_frame(
            R_WAN,
            HOST_B,
            ETHERTYPE_IPV4,
            &ipv4("192.0.2.1", "10.0.2.1", 1, 50, false, &reply),
        ),
    );
    assert_eq!(back.len(), 1);
    let v = view_of(&back[0].1);
    assert_eq!(
        (v.src, v.dst, v.hop_limit),
        (IpAddr::V6(ip6(server)), IpAddr::V6(ip6(A6)), 49)
    );
    assert_eq!(
        v.transport,
        Transport::Icmp {
            ty: 129,
            code: 0,
            ident: Some(4242)
        }
    );
    // UDP out, its answer in; the same port from another server stays out.
    let out = lab.rx(
        LAN,
        frame6(
            R_LAN,
            HOST_A,
            &ipv6(A6, server, PROTO_UDP, 64, &udp(5353, 53, b"q")),
        ),
    );
    let v4 = IpView::parse(&out[0].1, HEADER_LEN).expect("valid");
    let (ext, _) = v4.ports().expect("udp");
    let pseudo = checksum::pseudo_header(&[10, 0, 2, 1], &[192, 0, 2, 1], 17, 9);
    assert_eq!(
        checksum::fold(checksum::sum(pseudo, v4.payload(&out[0].1))),
        0xffff
    );
    let mut answer = udp(53, ext, b"a");
    let c = transport_checksum(ip("192.0.2.1").into(), ip("10.0.2.1").into(), 17, &answer);
    answer[6..8].copy_from_slice(&c.to_be_bytes());
    let back = lab.rx(
        WAN,
        build_frame(
            R_WAN,
            HOST_B,
            ETHERTYPE_IPV4,
            &ipv4("192.0.2.1", "10.0.2.1", 17, 64, false, &answer),
        ),
    );
    let v = view_of(&back[0].1);
    assert_eq!(v.ports(), Some((53, 5353)));
    let pseudo = checksum::pseudo_header(&ip6(server).octets(), &ip6(A6).octets(), 17, 9);
    assert_eq!(
        checksum::fold(checksum::sum(pseudo, v.payload(&back[0].1))),
        0xffff
    );
    let stranger = ipv4("192.0.2.9", "10.0.2.1", 17, 64, false, &answer);
    assert!(lab
        .rx(WAN, build_frame(R_WAN, HOST_B, ETHERTYPE_IPV4, &stranger))
        .iter()
        .all(|(i, _)| *i != LAN));
    // A time-exceeded about the UDP flow reaches A as ICMPv6, its quote
    // translated back to A's packet.
    let quoted = ipv4("10.0.2.1", "192.0.2.1", 17, 1, true, &udp(ext, 53, b"q"));
    let mut te = vec![11, 0, 0, 0, 0, 0, 0, 0];
    te.extend_from_slice(&quoted);
    let c = checksum::finish(checksum::sum(0, &te));
    te[2..4].copy_from_slice(&c.to_be_bytes());
    let back = lab.rx(
        WAN,
        build_frame(
            R_WAN,
            HOST_B,
            ETHERTYPE_IPV4,
            &ipv4("198.51.100.7", "10.0.2.1", 1, 60, false, &te),
        ),
    );
    assert_eq!(back.len(), 1, "translated");
    let v = view_of(&back[0].1);
    assert_eq!(v.src, IpAddr::V6(ip6("64:ff9b::c633:6407")));
    assert_eq!(
        v.transport,
        Transport::Icmp {
            ty: 3,
            code: 0,
            ident: None
        }
    );
    let q = IpView::parse_quote(&back[0].1, v.l4 + 8).expect("quote");
    assert_eq!(
        (q.src, q.dst, q.ports()),
        (
            IpAddr::V6(ip6(A6)),
            IpAddr::V6(ip6(server)),
            Some((5353, 53))
        )
    );
    let s = lab.r.status(lab.now).nat64.expect("nat64");
    assert_eq!(
        (
            s.counters.translated_6to4,
            s.counters.translated_4to6,
            s.counters.errors_translated
        ),
        (2, 2, 1)
    );
    // A ping to the pool address is the router's own.
    let out = lab.rx(
        WAN,
        build_frame(
            R_WAN,
            HOST_B,
            ETHERTYPE_IPV4,
            &ipv4("10.0.2.254", "10.0.2.1", 1, 64, false, &echo_request(9)),
        ),
    );
    assert_eq!(out.len(), 1, "echo reply from the router");
}

#[test]
fn a_later_fragment_passes_the_firewall_only_between_addresses_in_session() {
    let mut lab = firewalled(100);
    let q = ipv6(A6, FAR, PROTO_UDP, 64, &udp(5000, 53, b"q"));
    lab.rx(LAN, frame6(R_LAN, HOST_A, &q));
    // Fragment header (offset 16 bytes, last), then payload bytes.
    let later = |src: &str| {
        ipv6(
            src,
            A6,
            44,
            64,
            &[PROTO_UDP, 0, 0, 16, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8],
        )
    };
    assert_eq!(lab.rx(WAN, frame6(R_WAN, HOST_B, &later(FAR))).len(), 1);
    assert!(lab
        .rx(WAN, frame6(R_WAN, HOST_B, &later("2001:db8:99::6")))
        .is_empty());
    // Once the session has expired, the pair is forgotten too.
    lab.tick(Duration::from_secs(301));
    lab.tick(Duration::from_secs(5));
    assert!(lab.rx(WAN, frame6(R_WAN, HOST_B, &later(FAR))).is_empty());
}
