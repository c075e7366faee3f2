//! Multicast snooping on the virtual clock: IGMP and MLD reports constrain
//! groups to their members, what must flood floods, memberships expire,
//! the querier asks on time and yields to an outside one, the table is
//! bounded, and a report with a bad checksum teaches nothing.

use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use wire::checksum;
use wire::ether::ETHERTYPE_IPV4;

const ROUTER: u32 = 3;

/// Ports 0-2 are hosts' (snooped), port 3 a router's.
fn snooping_switch(config: SwitchConfig) -> Switch {
    let mut sw = Switch::new(config);
    for p in 0..4 {
        sw.add_port(PortConfig {
            snooped: p != ROUTER,
            ..PortConfig::access(1)
        });
    }
    sw
}

fn group_mac(group: IpAddr) -> Mac {
    match group {
        IpAddr::V4(g) => {
            let o = g.octets();
            Mac([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
        }
        IpAddr::V6(g) => {
            let o = g.octets();
            Mac([0x33, 0x33, o[12], o[13], o[14], o[15]])
        }
    }
}

/// An IPv6 packet from `src` to `dst` with a hop-by-hop Router Alert
/// (when `alert`) and an ICMPv6 `message` whose checksum is filled in.
fn icmp6(from: u8, src: Ipv6Addr, dst: Ipv6Addr, alert: bool, mut message: Vec<u8>) -> Vec<u8> {
    let pseudo = checksum::pseudo_header(&src.octets(), &dst.octets(), 58, message.len() as u32);
    let sum = checksum::finish(checksum::sum(pseudo, &message));
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    let ext: &[u8] = if alert {
        &[58, 0, 5, 2, 0, 0, 1, 0]
    } else {
        &[]
    };
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&((ext.len() + message.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[if alert { 0 } else { 58 }, if alert { 1 } else { 255 }]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(ext);
    ip.extend_from_slice(&message);
    build_frame(group_mac(IpAddr::V6(dst)), mac(from), ETHERTYPE_IPV6, &ip)
}

fn ll(n: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(n))
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("address")
}

/// An MLDv2 report from host `from` with (record type, group) records.
fn mld_report(from: u8, records: &[(u8, Ipv6Addr)]) -> Vec<u8> {
    let mut m = vec![143, 0, 0, 0, 0, 0];
    m.extend_from_slice(&(records.len() as u16).to_be_bytes());
    for (kind, group) in records {
        m.extend_from_slice(&[*kind, 0, 0, 0]);
        m.extend_from_slice(&group.octets());
    }
    icmp6(from, ll(from), v6("ff02::16"), true, m)
}

/// An MLD query from `src` (a general one).
fn mld_query_from(from: u8, src: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![130, 0, 0, 0, 0x27, 0x10, 0, 0];
    m.extend_from_slice(&[0; 16]);
    m.extend_from_slice(&[2, 125, 0, 0]);
    icmp6(from, src, v6("ff02::1"), true, m)
}

/// A neighbour solicitation from host `from` to a solicited-node group.
fn solicitation(from: u8, group: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&v6("2001:db8::2").octets());
    icmp6(from, ll(from), group, false, m)
}

/// An IPv4 packet from host `from` to `dst`: IGMP `message` (checksum
/// filled in) with a Router Alert, or a UDP datagram when `message` is
/// empty.
fn ipv4(from: u8, dst: Ipv4Addr, message: Vec<u8>) -> Vec<u8> {
    let (proto, mut payload, options): (u8, Vec<u8>, &[u8]) = if message.is_empty() {
        (
            17,
            vec![0x30, 0x39, 0x30, 0x39, 0, 12, 0, 0, 1, 2, 3, 4],
            &[],
        )
    } else {
        (2, message, &[0x94, 4, 0, 0])
    };
    if proto == 2 {
        let sum = checksum::finish(checksum::sum(0, &payload));
        payload[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    let header = 20 + options.len();
    let mut ip = vec![
        0x40 | (header / 4) as u8,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        1,
        proto,
        0,
        0,
    ];
    ip.extend_from_slice(&[10, 0, 0, from]);
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(options);
    let total = (header + payload.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let sum = checksum::finish(checksum::sum(0, &ip));
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(&payload);
    build_frame(group_mac(IpAddr::V4(dst)), mac(from), ETHERTYPE_IPV4, &ip)
}

fn igmp(ty: u8, group: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![ty, 0, 0, 0];
    m.extend_from_slice(&group.octets());
    m
}

const JOIN: u8 = 4; // CHANGE_TO_EXCLUDE, no sources
const LEAVE: u8 = 3; // CHANGE_TO_INCLUDE, no sources

fn send(sw: &mut Switch, now: Instant, from: u8, frame: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    let _ = sw.process(now, PortNo(u32::from(from)), frame, false, &mut out);
    ports(&out)
}

#[test]
fn a_group_reaches_its_members_and_the_router_ports_and_reports_reach_routers_only() {
    let mut sw = snooping_switch(SwitchConfig::default());
    let (a, b) = (v6("ff02::1:ff00:1"), v6("ff02::1:ff00:2"));
    // Hosts 1 and 2 report; host 0 never does.
    assert_eq!(
        send(&mut sw, t(0), 1, &mld_report(1, &[(JOIN, a)])),
        [ROUTER]
    );
    assert_eq!(
        send(&mut sw, t(0), 2, &mld_report(2, &[(JOIN, b)])),
        [ROUTER]
    );
    assert_eq!(send(&mut sw, t(1), 0, &solicitation(0, a)), [1, ROUTER]);
    assert_eq!(send(&mut sw, t(1), 0, &solicitation(0, b)), [2, ROUTER]);
    // Host 0 is taken to speak MLD, as IPv6 requires, while it might
    // still report (the response interval, 10 s, from its first
    // multicast)...
    assert_eq!(send(&mut sw, t(10), 1, &solicitation(1, b)), [2, ROUTER]);
    // ...then, silent, it is not known to speak MLD: it hears all.
    assert_eq!(send(&mut sw, t(11), 1, &solicitation(1, b)), [0, 2, ROUTER]);
    let groups = sw.groups(t(1));
    assert_eq!(groups.len(), 2);
    assert_eq!(
        (groups[0].group, &groups[0].ports[..]),
        (IpAddr::V6(a), &[PortNo(1)][..])
    );
    let c = sw.snoop_counters();
    assert_eq!((c.reports, c.constrained), (2, 5));
}

#[test]
fn hosts_booting_together_do_not_hear_each_others_solicitations() {
    let mut sw = snooping_switch(SwitchConfig::default());
    // Each host reports its solicited-node group, then solicits it to
    // detect a duplicate: only the router port hears it, whether the
    // other hosts have sent anything yet or not.
    for host in 0..3u8 {
        let own = v6(&format!("ff02::1:ff00:{host}"));
        assert_eq!(
            send(&mut sw, t(0), host, &mld_report(host, &[(JOIN, own)])),
            [ROUTER]
        );
        assert_eq!(
            send(&mut sw, t(0), host, &solicitation(host, own)),
            [ROUTER]
        );
    }
    // IPv4, where IGMP is optional, still reaches a host that never
    // reported.
    let g = Ipv4Addr::new(239, 1, 1, 1);
    send(&mut sw, t(1), 1, &ipv4(1, g, igmp(0x16, g)));
    assert_eq!(send(&mut sw, t(1), 2, &ipv4(2, g, vec![])), [0, 1, ROUTER]);
}

#[test]
fn what_every_host_must_hear_still_floods() {
    let mut sw = snooping_switch(SwitchConfig::default());
    for from in 0..3 {
        send(
            &mut sw,
            t(0),
            from,
            &mld_report(from, &[(JOIN, v6("ff02::fb"))]),
        );
        send(
            &mut sw,
            t(0),
            from,
            &ipv4(
                from,
                Ipv4Addr::new(224, 0, 0, 22),
                igmp(0x16, Ipv4Addr::new(239, 9, 9, 9)),
            ),
        );
    }
    assert_eq!(
        send(&mut sw, t(1), 0, &solicitation(0, v6("ff02::1"))),
        [1, 2, ROUTER]
    );
    assert_eq!(
        send(
            &mut sw,
            t(1),
            0,
            &ipv4(0, Ipv4Addr::new(224, 0, 0, 251), vec![])
        ),
        [1, 2, ROUTER]
    );
    let broadcast = frame(Mac::BROADCAST, mac(0));
    assert_eq!(send(&mut sw, t(1), 0, &broadcast), [1, 2, ROUTER]);
    // A query is for every host.
    assert_eq!(
        send(&mut sw, t(1), ROUTER as u8, &mld_query_from(9, ll(9))),
        [0, 1, 2]
    );
}

#[test]
fn a_leave_or_silence_ends_a_membership() {
    let mut sw = snooping_switch(SwitchConfig::default());
    let g = v6("ff05::1234");
    send(&mut sw, t(0), 1, &mld_report(1, &[(JOIN, g)]));
    send(&mut sw, t(0), 2, &mld_report(2, &[(JOIN, g)]));
    send(&mut sw, t(0), 0, &mld_report(0, &[(JOIN, v6("ff05::99"))]));
    assert_eq!(send(&mut sw, t(1), 0, &solicitation(0, g)), [1, 2, ROUTER]);
    send(&mut sw, t(2), 2, &mld_report(2, &[(LEAVE, g)]));
    assert_eq!(send(&mut sw, t(3), 0, &solicitation(0, g)), [1, ROUTER]);
    assert_eq!(sw.snoop_counters().leaves, 1);
    // 260 s (2 x 125 + 10) without a report: forgotten, and host 1, no
    // longer heard from, gets everything again.
    send(
        &mut sw,
        t(200),
        2,
        &mld_report(2, &[(JOIN, v6("ff05::77"))]),
    );
    sw.on_timer(t(261));
    assert_eq!(sw.groups(t(261)).len(), 1, "only host 2's fresh membership");
    assert_eq!(send(&mut sw, t(261), 0, &solicitation(0, g)), [1, ROUTER]);
}

#[test]
fn igmp_reports_and_leaves_of_every_version_are_learned() {
    let mut sw = snooping_switch(SwitchConfig::default());
    let (g, other) = (Ipv4Addr::new(239, 1, 1, 1), Ipv4Addr::new(239, 2, 2, 2));
    let v3 = |kind: u8, group: Ipv4Addr| {
        let mut m = vec![0x22, 0, 0, 0, 0, 0, 0, 1, kind, 0, 0, 0];
        m.extend_from_slice(&group.octets());
        m
    };
    let all_v3 = Ipv4Addr::new(224, 0, 0, 22);
    assert_eq!(send(&mut sw, t(0), 1, &ipv4(1, g, igmp(0x16, g))), [ROUTER]);
    assert_eq!(
        send(&mut sw, t(0), 2, &ipv4(2, all_v3, v3(JOIN, other))),
        [ROUTER]
    );
    assert_eq!(send(&mut sw, t(0), 0, &ipv4(0, g, igmp(0x12, g))), [ROUTER]);
    assert_eq!(
        send(&mut sw, t(1), ROUTER as u8, &ipv4(3, g, vec![])),
        [0, 1]
    );
    assert_eq!(
        send(&mut sw, t(1), ROUTER as u8, &ipv4(3, other, vec![])),
        [2]
    );
    send(
        &mut sw,
        t(2),
        1,
        &ipv4(1, Ipv4Addr::new(224, 0, 0, 2), igmp(0x17, g)),
    );
    send(&mut sw, t(2), 0, &ipv4(0, all_v3, v3(LEAVE, g)));
    assert_eq!(
        send(&mut sw, t(3), ROUTER as u8, &ipv4(3, g, vec![])),
        Vec::<u32>::new()
    );
    // IPv4 and IPv6 are apart: hosts 0 and 1 send IPv6 multicast but,
    // unlike host 2, no MLD report, so once the response interval has
    // passed they hear every IPv6 group.
    send(&mut sw, t(3), 2, &mld_report(2, &[(JOIN, v6("ff05::2"))]));
    send(&mut sw, t(3), 1, &solicitation(1, v6("ff02::1:ff00:1")));
    assert_eq!(
        send(&mut sw, t(14), 0, &solicitation(0, v6("ff02::1:ff00:5"))),
        [1, ROUTER]
    );
    assert_eq!(
        send(&mut sw, t(25), 2, &solicitation(2, v6("ff02::1:ff00:5"))),
        [0, 1, ROUTER]
    );
}

#[test]
fn the_querier_asks_at_startup_then_every_query_interval_and_yields_to_another() {
    let mut sw = snooping_switch(SwitchConfig::default());
    assert_eq!(
        sw.poll_at(),
        Some(t(0)),
        "a snooped port: the querier starts at once"
    );
    sw.on_timer(t(0));
    let mut out = Vec::new();
    let mut sent = Vec::new();
    while let Some(q) = sw.poll_transmit(&mut out) {
        assert_eq!(ports(&out), [0, 1, 2], "hosts' ports only");
        sent.push(q);
    }
    assert_eq!(sent.len(), 2);
    for q in &sent {
        let eth = EthernetHeader::parse(q).expect("ethernet");
        let v = wire::ip::IpView::parse(q, eth.payload_offset).expect("ip");
        assert_eq!(v.hop_limit, 1);
        let m = &q[v.l4..v.end];
        let sum = match v.family {
            wire::ip::Family::V4 => {
                assert_eq!(
                    (v.dst, m[0], m[1]),
                    (IpAddr::from([224, 0, 0, 1]), 0x11, 100)
                );
                checksum::sum(0, m)
            }
            wire::ip::Family::V6 => {
                assert!(v.extended, "behind a hop-by-hop Router Alert");
                assert_eq!(
                    (v.dst, m[0], &m[4..6]),
                    (IpAddr::V6(v6("ff02::1")), 130, &[0x27, 0x10][..])
                );
                let src = wire::ip::octets(v.src);
                assert_eq!(src[..2], [0xfe, 0x80], "from a link-local address");
                let dst = wire::ip::octets(v.dst);
                checksum::pseudo_header(&src, &dst, 58, m.len() as u32) + checksum::sum(0, m)
            }
        };
        assert_eq!(checksum::fold(sum), 0xffff, "a valid checksum");
    }
    // Startup: robustness (2) queries a quarter interval apart, then one
    // every 125 s.
    let mut next = |sw: &mut Switch, at: Instant| {
        sw.on_timer(at);
        let mut n = 0;
        while sw.poll_transmit(&mut out).is_some() {
            n += 1;
        }
        n
    };
    assert_eq!(next(&mut sw, Instant::from_millis(31_249)), 0);
    assert_eq!(next(&mut sw, Instant::from_millis(31_250)), 2);
    assert_eq!(next(&mut sw, Instant::from_millis(31_250 + 124_999)), 0);
    assert_eq!(next(&mut sw, Instant::from_millis(31_250 + 125_000)), 2);
    // Another querier on host 2's port: this switch keeps quiet, and
    // that port hears every group.
    let now = Instant::from_millis(190_000);
    send(&mut sw, now, 1, &mld_report(1, &[(JOIN, v6("ff05::1"))]));
    send(&mut sw, now, 2, &mld_query_from(2, ll(2)));
    assert_eq!(
        send(&mut sw, now, 0, &solicitation(0, v6("ff05::1"))),
        [1, 2, ROUTER]
    );
    assert_eq!(next(&mut sw, Instant::from_millis(31_250 + 250_000)), 0);
    assert_eq!(sw.snoop_counters().queries_heard, 1);
}

#[test]
fn the_table_is_bounded_and_a_full_table_floods_what_it_cannot_place() {
    let config = SwitchConfig {
        snooping: SnoopConfig {
            max_groups_per_port: 2,
            ..SnoopConfig::default()
        },
        ..SwitchConfig::default()
    };
    let mut sw = snooping_switch(config);
    let g = |n: u16| Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 0, n);
    send(
        &mut sw,
        t(0),
        1,
        &mld_report(1, &[(JOIN, g(1)), (JOIN, g(2)), (JOIN, g(3))]),
    );
    send(&mut sw, t(0), 2, &mld_report(2, &[(JOIN, g(9))]));
    assert_eq!(sw.snoop_counters().groups_refused, 1);
    assert_eq!(sw.groups(t(0)).len(), 3);
    // Group 3 could not be placed: while the table is full, a group with
    // no known member floods, so host 1 still gets it.
    assert_eq!(
        send(&mut sw, t(1), 0, &solicitation(0, g(3))),
        [1, 2, ROUTER]
    );
    assert_eq!(send(&mut sw, t(1), 0, &solicitation(0, g(1))), [1, ROUTER]);
}

#[test]
fn a_report_with_a_bad_checksum_teaches_nothing() {
    let mut sw = snooping_switch(SwitchConfig::default());
    let g = v6("ff05::1");
    let mut bad = mld_report(1, &[(JOIN, g)]);
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    assert_eq!(send(&mut sw, t(0), 1, &bad), [ROUTER]);
    let c = sw.snoop_counters();
    assert_eq!((c.malformed, c.reports), (1, 0));
    assert!(sw.groups(t(0)).is_empty());
    // A record cut short: the records before it count, the rest do not.
    let mut cut = mld_report(1, &[(JOIN, g), (JOIN, v6("ff05::2"))]);
    cut.truncate(cut.len() - 4);
    let fixed = {
        // Fix the lengths and checksum so only the record is short.
        let eth = EthernetHeader::parse(&cut).expect("eth");
        let l3 = eth.payload_offset;
        let payload = (cut.len() - l3 - 40) as u16;
        cut[l3 + 4..l3 + 6].copy_from_slice(&payload.to_be_bytes());
        let m = l3 + 48;
        cut[m + 2..m + 4].fill(0);
        let src: [u8; 16] = cut[l3 + 8..l3 + 24].try_into().expect("16");
        let dst: [u8; 16] = cut[l3 + 24..l3 + 40].try_into().expect("16");
        let pseudo = checksum::pseudo_header(&src, &dst, 58, (cut.len() - m) as u32);
        let sum = checksum::finish(checksum::sum(pseudo, &cut[m..]));
        cut[m + 2..m + 4].copy_from_slice(&sum.to_be_bytes());
        cut
    };
    send(&mut sw, t(1), 1, &fixed);
    assert_eq!(sw.groups(t(1)).len(), 1);
    assert_eq!(sw.snoop_counters().malformed, 2);
}

#[test]
fn snooping_off_floods_every_group_and_never_queries() {
    let config = SwitchConfig {
        snooping: SnoopConfig {
            enabled: false,
            ..SnoopConfig::default()
        },
        ..SwitchConfig::default()
    };
    let mut sw = snooping_switch(config);
    let g = v6("ff02::1:ff00:1");
    assert_eq!(
        send(&mut sw, t(0), 1, &mld_report(1, &[(JOIN, g)])),
        [0, 2, ROUTER]
    );
    assert_eq!(
        send(&mut sw, t(0), 2, &mld_report(2, &[(JOIN, v6("ff05::9"))])),
        [0, 1, ROUTER]
    );
    assert_eq!(send(&mut sw, t(1), 0, &solicitation(0, g)), [1, 2, ROUTER]);
    sw.on_timer(t(2));
    assert!(sw.poll_transmit(&mut Vec::new()).is_none());
    assert_eq!(sw.snoop_counters().reports, 0);
}
