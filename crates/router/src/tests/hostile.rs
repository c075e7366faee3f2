//! Hostile input that passes every checksum: the router drops and counts
//! it, keeps its tables within their bounds, and goes on serving.

use super::dhcp_exchange::{client_msg, lab as dhcp_lab, send};
use super::nat_behaviour::{inbound, nat_lab, out, tcp_from, udp_from, EXT};
use super::*;
use crate::conntrack::Proto;
use crate::nat::PortForward;
use dhcproto::v4::{DhcpOption, Message, MessageType};
use std::net::SocketAddrV4;

/// A DHCP client datagram (68 -> 67, broadcast) with a valid UDP checksum,
/// in a frame from `src`.
fn dhcp_frame(src: Mac, payload: &[u8]) -> Vec<u8> {
    let mut body = udp(68, 67, payload);
    let pseudo = checksum::pseudo_header(&[0; 4], &[255; 4], 17, body.len() as u32);
    let c = checksum::finish(checksum::sum(pseudo, &body));
    body[6..8].copy_from_slice(&c.to_be_bytes());
    let packet = ipv4("0.0.0.0", "255.255.255.255", 17, 64, false, &body);
    build_frame(Mac::BROADCAST, src, ETHERTYPE_IPV4, &packet)
}

fn discover(mac: Mac) -> Message {
    client_msg(mac, MessageType::Discover, Ipv4Addr::UNSPECIFIED, &[])
}

fn dhcp_counters(lab: &Lab) -> DhcpCounters {
    lab.r.status(lab.now).dhcp[0].counters.clone()
}

#[test]
fn dhcp_with_any_hardware_length_or_type_is_counted_not_fatal() {
    let mut lab = dhcp_lab();
    let eve = Mac([2, 0, 0, 0, 0, 0xee]);
    // The datagram from the report: op 1, htype 1, hlen 17, then zeros.
    let mut report = vec![1, 1, 17];
    report.extend_from_slice(&[0; 237]);
    assert!(lab.rx(LAN, dhcp_frame(eve, &report)).is_empty());
    let mut sent = 1;
    for htype in [0u8, 1, 6, 255] {
        for hlen in 0..=255u8 {
            let mut m = discover(eve).to_vec().expect("encodes");
            m[1] = htype;
            m[2] = hlen;
            assert!(
                lab.rx(LAN, dhcp_frame(eve, &m)).len() <= 1,
                "htype {htype} hlen {hlen}"
            );
            sent += 1;
        }
    }
    let c = dhcp_counters(&lab);
    assert_eq!(c.requests, sent);
    assert!(c.bad_hardware_address >= sent - 1, "{c:?}");
    // An honest client is still served.
    let bob = Mac([2, 0, 0, 0, 0, 0xb0]);
    assert!(send(&mut lab, bob, &discover(bob)).is_some());
}

#[test]
fn dhcp_client_address_must_be_the_frame_source() {
    let mut lab = dhcp_lab();
    let (eve, bob) = (Mac([2, 0, 0, 0, 0, 0xee]), Mac([2, 0, 0, 0, 0, 0xb0]));
    let spoofed = discover(bob).to_vec().expect("encodes");
    assert!(lab.rx(LAN, dhcp_frame(eve, &spoofed)).is_empty());
    assert_eq!(dhcp_counters(&lab).spoofed_client, 1);
    assert!(lab.r.status(lab.now).leases.is_empty());
}

#[test]
fn decline_and_release_count_only_from_the_lease_owner() {
    let mut lab = dhcp_lab();
    let (eve, bob) = (Mac([2, 0, 0, 0, 0, 0xee]), Mac([2, 0, 0, 0, 0, 0xb0]));
    send(&mut lab, bob, &discover(bob)).expect("offer");
    let select = [
        DhcpOption::ServerIdentifier(ip("192.168.1.1")),
        DhcpOption::RequestedIpAddress(ip("192.168.1.100")),
    ];
    let ack = client_msg(bob, MessageType::Request, Ipv4Addr::UNSPECIFIED, &select);
    send(&mut lab, bob, &ack).expect("ack");
    let decline = [DhcpOption::RequestedIpAddress(ip("192.168.1.100"))];
    send(
        &mut lab,
        eve,
        &client_msg(eve, MessageType::Decline, Ipv4Addr::UNSPECIFIED, &decline),
    );
    send(
        &mut lab,
        eve,
        &client_msg(eve, MessageType::Release, ip("192.168.1.100"), &[]),
    );
    assert_eq!(dhcp_counters(&lab).not_lease_owner, 2);
    let leases = lab.r.status(lab.now).leases;
    assert_eq!(
        (leases.len(), leases[0].mac, leases[0].state),
        (1, bob, "bound")
    );
}

#[test]
fn a_starvation_attempt_is_rate_limited_and_leaves_existing_leases_alone() {
    let mut lab = dhcp_lab(); // a pool of two
    let bob = Mac([2, 0, 0, 0, 0, 0xb0]);
    send(&mut lab, bob, &discover(bob)).expect("offer");
    // One MAC, many messages: the budget (burst of 4 x rate) holds.
    let eve = Mac([2, 0, 0, 0, 0, 0xee]);
    let answered = (0..100)
        .filter(|_| send(&mut lab, eve, &discover(eve)).is_some())
        .count();
    assert!(answered <= 4 * DhcpConfig::CLIENT_RATE as usize);
    assert!(dhcp_counters(&lab).rate_limited >= 80);
    // Many MACs: the pool runs dry, counted, and the next scan waits.
    for n in 0..50u8 {
        let m = Mac([2, 0, 0, 0, 1, n]);
        send(&mut lab, m, &discover(m));
    }
    let c = dhcp_counters(&lab);
    assert!(c.pool_exhausted >= 48, "{c:?}");
    // Bob still holds his offer and gets his ACK.
    let select = [
        DhcpOption::ServerIdentifier(ip("192.168.1.1")),
        DhcpOption::RequestedIpAddress(ip("192.168.1.100")),
    ];
    let (_, _, ack) = send(
        &mut lab,
        bob,
        &client_msg(bob, MessageType::Request, Ipv4Addr::UNSPECIFIED, &select),
    )
    .expect("ack");
    assert_eq!(ack.yiaddr(), ip("192.168.1.100"));
}

#[test]
fn the_pool_never_offers_special_or_reserved_addresses() {
    let dhcp = DhcpConfig {
        first: ip("192.168.1.0"),
        last: ip("192.168.1.7"),
        lease: Duration::from_secs(3600),
        dns: vec![],
        reserved: vec![ip("192.168.1.2"), ip("192.168.1.5")],
        client_rate: 100,
    };
    let r = Router::new("gw");
    let mut lab = Lab::one_lan(r, "192.168.1.1/29", Some(dhcp), Instant::from_secs(10));
    let mut offered = Vec::new();
    for n in 0..8u8 {
        let m = Mac([2, 0, 0, 0, 2, n]);
        if let Some((_, _, offer)) = send(&mut lab, m, &discover(m)) {
            offered.push(offer.yiaddr());
        }
    }
    assert_eq!(
        offered,
        ["192.168.1.3", "192.168.1.4", "192.168.1.6"].map(ip),
        "not .0 (network), .1 (router), .2/.5 (static), .7 (broadcast)"
    );
    assert_eq!(lab.r.status(lab.now).dhcp[0].size, 3);
}

/// An ICMP error from outside about a packet this NAT sent, quoting an
/// IPv4 header of any length byte, with valid checksums throughout.
fn icmp_error_quoting(first_byte: u8, quote_len: usize) -> Vec<u8> {
    let mut quote = udp_from(EXT, 16384, "192.0.2.1", 53);
    quote[0] = first_byte;
    quote.truncate(quote_len);
    let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&quote);
    let c = checksum::finish(checksum::sum(0, &icmp));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4("192.0.2.1", EXT, 1, 64, false, &icmp)
}

#[test]
fn icmp_errors_with_broken_quotes_are_dropped_whatever_their_header_length() {
    // A port forward on the port the quote's first bytes read as when its
    // header length is taken as 0 (0x40 0x00 = 16384).
    let mut lab = nat_lab(|c| {
        c.forwards = vec![PortForward {
            proto: Proto::Udp,
            port: 16384,
            to: SocketAddrV4::new(ip("10.0.1.10"), 80),
        }];
    });
    for first in 0..=255u8 {
        for len in [8, 20, 27, 28, 36, 60] {
            let packet = icmp_error_quoting(first, len);
            let got = inbound(&mut lab, packet);
            if first >> 4 != 4 || first & 0x0f < 5 {
                assert!(got.is_empty(), "quote byte {first:#x}, {len} bytes");
            }
        }
    }
    let c = lab.r.nat_status(lab.now).expect("nat").1;
    assert!(c.dropped_icmp_unknown_flow > 0, "{c:?}");
    // The forward still works.
    let got = inbound(&mut lab, udp_from("192.0.2.1", 999, EXT, 16384));
    assert_eq!(got.len(), 1);
}

#[test]
fn what_the_nat_cannot_track_never_leaves_with_an_inside_address() {
    let mut lab = nat_lab(|_| {});
    // GRE from inside.
    assert!(out(
        &mut lab,
        ipv4("10.0.1.10", "192.0.2.1", 47, 64, false, &[0; 8])
    )
    .is_empty());
    // An ICMP error from inside about no tracked flow.
    let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&udp_from("192.0.2.1", 53, "10.0.1.10", 4444));
    let c = checksum::finish(checksum::sum(0, &icmp));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    assert!(out(
        &mut lab,
        ipv4("10.0.1.10", "192.0.2.1", 1, 64, false, &icmp)
    )
    .is_empty());
    // A spoofed source on the inside interface.
    assert!(out(&mut lab, udp_from("172.16.0.9", 1, "192.0.2.1", 53)).is_empty());
    let (_, nat) = lab.r.nat_status(lab.now).expect("nat");
    assert_eq!(
        (nat.dropped_untrackable, nat.dropped_icmp_unknown_flow),
        (1, 1)
    );
    assert_eq!(lab.r.counters().drops(Drop::SpoofedSource), 1);
    // Straight to an inside address from outside: not routed in.
    assert!(inbound(&mut lab, udp_from("192.0.2.1", 53, "10.0.1.10", 4000)).is_empty());
    assert_eq!(lab.r.counters().drops(Drop::NatInbound), 1);
}

/// Whether a second inside host (10.0.1.11, its own MAC) gets a new flow
/// out through the NAT.
fn another_host_gets_out(lab: &mut Lab) -> bool {
    let mac = Mac([2, 0, 0, 0, 1, 11]);
    lab.rx(LAN, arp(1, mac, "10.0.1.11", "10.0.1.1"));
    let other = udp_from("10.0.1.11", 5000, "192.0.2.1", 53);
    let got = lab.rx(LAN, build_frame(R_LAN, mac, ETHERTYPE_IPV4, &other));
    got.iter().filter(|(i, _)| *i == WAN).count() == 1
}

#[test]
fn one_inside_host_cannot_take_the_whole_table_or_port_range() {
    let mut lab = nat_lab(|c| {
        c.max_entries_per_host = 10;
        c.max_ports_per_host = 5;
    });
    let flows: usize = (0..20u16)
        .map(|i| out(&mut lab, udp_from("10.0.1.10", 5000 + i, "192.0.2.1", 53)).len())
        .sum();
    assert_eq!(flows, 5, "five ports");
    let sessions: usize = (0..20u8)
        .map(|i| {
            out(
                &mut lab,
                udp_from("10.0.1.10", 5000, &format!("192.0.2.{}", i + 1), 53),
            )
            .len()
        })
        .sum();
    assert_eq!(sessions, 10 - 4, "ten sessions in all");
    // Another host is not affected.
    assert!(another_host_gets_out(&mut lab));
    assert!(lab.r.nat_status(lab.now).expect("nat").1.refused_host_share >= 20);
}

#[test]
fn made_up_sources_behind_one_mac_share_one_budget() {
    // One host sends from four addresses it made up (inside the subnet,
    // so the reverse-path check passes): the router counts them as the
    // one station they come from, and the others keep their share.
    let mut lab = nat_lab(|c| c.max_ports_per_host = 8);
    let flows: usize = (0..40u16)
        .map(|i| {
            let src = format!("10.0.1.{}", 20 + i % 4);
            out(&mut lab, udp_from(&src, 6000 + i, "192.0.2.1", 53)).len()
        })
        .sum();
    assert_eq!(flows, 8, "one budget for the four addresses");
    assert!(another_host_gets_out(&mut lab));
}

#[test]
fn a_nearly_full_port_range_still_finds_the_last_free_port() {
    let mut lab = nat_lab(|c| c.ports = 2000..=2099);
    for i in 0..100u16 {
        let src = format!("10.0.1.{}", 10 + i % 50);
        assert_eq!(
            lab.r.nat.as_mut().map(|(_, n)| {
                let mut f = Frame::from_slice(&build_frame(
                    R_WAN,
                    R_LAN,
                    ETHERTYPE_IPV4,
                    &udp_from(&src, 7000 + i, "192.0.2.1", 53),
                ));
                outbound(n, lab.now, &mut f)
            }),
            Some(nat::Verdict::Translated),
            "flow {i}"
        );
    }
    let mut f = Frame::from_slice(&build_frame(
        R_WAN,
        R_LAN,
        ETHERTYPE_IPV4,
        &udp_from("10.0.1.10", 9999, "192.0.2.1", 53),
    ));
    let n = lab
        .r
        .nat
        .as_mut()
        .map(|(_, n)| outbound(n, lab.now, &mut f));
    assert_eq!(n, Some(nat::Verdict::Refused));
    assert_eq!(
        lab.r
            .nat_status(lab.now)
            .expect("nat")
            .1
            .refused_ports_exhausted,
        1
    );
    let _ = tcp_from;
}

#[test]
fn arp_from_off_subnet_senders_is_neither_learned_nor_answered() {
    let mut lab = Lab::new(1500);
    for i in 0..2000u32 {
        let o = (i as u16).to_be_bytes();
        let spa = format!("172.16.{}.{}", o[0], o[1]);
        let sha = Mac([2, 9, 0, 0, o[0], o[1]]);
        assert!(lab.rx(LAN, arp(1, sha, &spa, "10.0.1.1")).is_empty());
    }
    assert_eq!(lab.r.status(lab.now).arp_table.entries, 0);
    assert_eq!(lab.r.counters().drops(Drop::ArpOffSubnet), 2000);
}

#[test]
fn the_neighbour_cache_is_bounded_and_swept() {
    let r = Router::with_limits(
        "gw",
        RouterLimits {
            neighbours: NeighbourLimits {
                max_entries: 50,
                queue_bytes: 64 * 1024,
            },
            ..RouterLimits::default()
        },
    );
    let mut lab = Lab::one_lan(r, "10.0.0.1/16", None, Instant::from_secs(1));
    for i in 0..300u16 {
        let o = i.to_be_bytes();
        let spa = format!("10.0.{}.{}", o[0], o[1].max(2));
        let sha = Mac([2, 9, 0, 0, o[0], o[1]]);
        lab.rx(LAN, arp(1, sha, &spa, "10.0.0.1"));
    }
    let t = lab.r.status(lab.now).arp_table;
    assert_eq!(t.entries, 50);
    assert!(t.evicted >= 200);
    // A sweep of unresolved addresses: the queue stays within its budget.
    for i in 0..5000u16 {
        let o = i.to_be_bytes();
        let dst = format!("10.0.{}.{}", 100 + o[0] % 100, o[1]);
        let p = ipv4("10.0.1.10", &dst, 17, 64, false, &udp(1, 2, &[0; 400]));
        lab.rx(LAN, build_frame(R_LAN, HOST_A, ETHERTYPE_IPV4, &p));
    }
    let t = lab.r.status(lab.now).arp_table;
    assert!(t.queued_bytes <= 64 * 1024, "{t:?}");
    assert!(lab.r.counters().drops(Drop::ArpQueueFull) > 4000);
    // With nothing else pending the cache is still swept.
    for _ in 0..5 {
        lab.tick(Duration::from_secs(1));
    }
    lab.tick(Duration::from_secs(120));
    assert_eq!(lab.r.status(lab.now).arp_table.entries, 0);
    assert_eq!(lab.r.status(lab.now).arp_table.queued_bytes, 0);
}

#[test]
fn fragmenting_a_packet_with_a_partial_checksum_completes_it_first() {
    let mut lab = Lab::new(600);
    lab.learn_neighbours();
    // A UDP datagram whose checksum holds only the pseudo-header sum, as
    // an offloading sender leaves it.
    let body_len = 1200;
    let mut body = udp(1000, 2000, &vec![0x5a; body_len - 8]);
    let pseudo = checksum::pseudo_header(
        &ip("10.0.1.10").octets(),
        &ip("198.51.100.20").octets(),
        17,
        body_len as u32,
    );
    body[6..8].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
    let packet = ipv4("10.0.1.10", "198.51.100.20", 17, 64, false, &body);
    let mut frame = Frame::from_slice(&build_frame(R_LAN, HOST_A, ETHERTYPE_IPV4, &packet));
    frame.hdr = wire::VnetHdr::partial_checksum(14 + 20, 6);
    let out = lab.rx_frame(LAN, frame);
    assert!(out.len() >= 3, "fragments");
    let mut payload = Vec::new();
    for (_, f) in &out {
        assert!(!f.hdr.needs_csum());
        payload.extend_from_slice(ip_of(f.data()).payload());
    }
    let pseudo = checksum::pseudo_header(
        &ip("10.0.1.10").octets(),
        &ip("198.51.100.20").octets(),
        17,
        payload.len() as u32,
    );
    assert_eq!(checksum::fold(checksum::sum(pseudo, &payload)), 0xffff);
}

#[test]
fn a_rapid_commit_option_with_a_length_is_malformed_not_a_panic() {
    let mut lab = dhcp_lab();
    let bob = Mac([2, 0, 0, 0, 0, 0xb0]);
    let mut m = discover(bob).to_vec().expect("encodes");
    let end = m.len() - 1; // before the END option
    m.splice(end..end, [80, 1, 0]);
    assert!(lab.rx(LAN, dhcp_frame(bob, &m)).is_empty());
    assert_eq!(lab.r.counters().drops(Drop::Malformed), 1);
    assert!(send(&mut lab, bob, &discover(bob)).is_some());
}

/// The NAT's outbound step on a frame, with the view parsed as the
/// router parses it.
fn outbound(n: &mut nat::Nat, now: Instant, f: &mut Frame) -> nat::Verdict {
    let mut view = IpView::parse(f.data(), HEADER_LEN).expect("IP");
    n.outbound(now, f, &mut view)
}
