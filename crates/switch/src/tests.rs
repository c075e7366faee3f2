//! Switch behaviour with virtual time: learning, flooding, ageing, the
//! table bound, moves, VLAN isolation and tagging, no hairpin, bad frames.

use super::*;
use wire::ether::{build_frame, build_tagged_frame, ETHERTYPE_IPV4};
use wire::Mac;

fn mac(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

fn frame(dst: Mac, src: Mac) -> Vec<u8> {
    build_frame(dst, src, ETHERTYPE_IPV4, &[0u8; 46])
}

fn ports(out: &[Egress]) -> Vec<u32> {
    out.iter().map(|e| e.port.0).collect()
}

fn switch_with(n: u32, config: SwitchConfig) -> Switch {
    let mut sw = Switch::new(config);
    for _ in 0..n {
        sw.add_port(PortConfig::access(1));
    }
    sw
}

fn t(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

#[test]
fn floods_unknown_then_forwards_learned() {
    let mut sw = switch_with(3, SwitchConfig::default());
    let mut out = Vec::new();
    sw.process(t(0), PortNo(0), &frame(mac(2), mac(1)), false, &mut out)
        .expect("flooded");
    assert_eq!(ports(&out), [1, 2]);
    assert_eq!(sw.counters().unknown_unicast_floods, 1);

    sw.process(t(1), PortNo(1), &frame(mac(1), mac(2)), false, &mut out)
        .expect("forwarded");
    assert_eq!(ports(&out), [0], "mac 1 was learned on port 0");
    sw.process(t(2), PortNo(0), &frame(mac(2), mac(1)), false, &mut out)
        .expect("forwarded");
    assert_eq!(ports(&out), [1]);
    assert_eq!(out[0].edit, VlanEdit::Keep);
    assert_eq!(sw.counters().learned, 2);
    assert_eq!(sw.port_counters(PortNo(1)).map(|c| c.tx_frames), Some(2));
}

#[test]
fn broadcast_and_multicast_flood_but_never_hairpin() {
    let mut sw = switch_with(4, SwitchConfig::default());
    let mut out = Vec::new();
    sw.process(
        t(0),
        PortNo(2),
        &frame(Mac::BROADCAST, mac(1)),
        false,
        &mut out,
    )
    .expect("flood");
    assert_eq!(ports(&out), [0, 1, 3]);
    let mcast = Mac([0x01, 0x00, 0x5e, 0, 0, 1]);
    sw.process(t(0), PortNo(2), &frame(mcast, mac(1)), false, &mut out)
        .expect("flood");
    assert_eq!(ports(&out), [0, 1, 3]);
    assert_eq!(sw.counters().multicast_floods, 2);
}

#[test]
fn destination_on_ingress_port_is_filtered() {
    let mut sw = switch_with(2, SwitchConfig::default());
    let mut out = Vec::new();
    sw.process(
        t(0),
        PortNo(0),
        &frame(Mac::BROADCAST, mac(1)),
        false,
        &mut out,
    )
    .expect("flood");
    sw.process(
        t(0),
        PortNo(0),
        &frame(Mac::BROADCAST, mac(2)),
        false,
        &mut out,
    )
    .expect("flood");
    // mac 1 and mac 2 share port 0 (a hub behind it): no hairpin.
    let r = sw.process(t(1), PortNo(0), &frame(mac(2), mac(1)), false, &mut out);
    assert_eq!(r, Err(DropReason::Filtered));
    assert!(out.is_empty());
    assert_eq!(
        sw.port_counters(PortNo(0))
            .map(|c| c.drops(DropReason::Filtered)),
        Some(1)
    );
}

#[test]
fn addresses_age_out_at_the_ageing_time() {
    let config = SwitchConfig {
        ageing: Duration::from_secs(300),
        max_macs: 16,
        ..SwitchConfig::default()
    };
    let mut sw = switch_with(3, config);
    let mut out = Vec::new();
    sw.process(
        t(0),
        PortNo(0),
        &frame(Mac::BROADCAST, mac(1)),
        false,
        &mut out,
    )
    .expect("ok");
    // The timer is wanted when the address could first expire, not
    // every second before.
    assert_eq!(sw.poll_at(), Some(t(300)));

    // Still known one microsecond before the ageing time...
    let just_before = Instant::from_micros(300_000_000 - 1);
    sw.process(
        just_before,
        PortNo(1),
        &frame(mac(1), mac(2)),
        false,
        &mut out,
    )
    .expect("ok");
    assert_eq!(ports(&out), [0]);
    // ...and flooded again exactly at it.
    sw.process(t(300), PortNo(1), &frame(mac(1), mac(2)), false, &mut out)
        .expect("ok");
    assert_eq!(ports(&out), [0, 2]);

    assert_eq!(sw.mac_table(t(300)).len(), 1, "only mac 2 is live");
    sw.on_timer(t(300));
    assert_eq!(sw.counters().aged_out, 1);
    sw.on_timer(t(600));
    assert_eq!(sw.counters().aged_out, 2);
    assert_eq!(sw.poll_at(), None, "nothing left to age");
}

#[test]
fn refresh_keeps_an_address_alive() {
    let mut sw = switch_with(2, SwitchConfig::default());
    let mut out = Vec::new();
    for s in (0..1000).step_by(200) {
        sw.process(
            t(s),
            PortNo(0),
            &frame(Mac::BROADCAST, mac(1)),
            false,
            &mut out,
        )
        .expect("ok");
    }
    sw.process(t(1000), PortNo(1), &frame(mac(1), mac(2)), false, &mut out)
        .expect("ok");
    assert_eq!(ports(&out), [0]);
    assert_eq!(sw.counters().learned, 2);
}

#[test]
fn full_table_stops_learning_floods_and_counts() {
    let config = SwitchConfig {
        ageing: Duration::from_secs(300),
        max_macs: 2,
        ..SwitchConfig::default()
    };
    let mut sw = switch_with(3, config);
    let mut out = Vec::new();
    for n in 1..=3 {
        sw.process(
            t(0),
            PortNo(0),
            &frame(Mac::BROADCAST, mac(n)),
            false,
            &mut out,
        )
        .expect("ok");
    }
    assert_eq!(sw.counters().learned, 2);
    assert_eq!(sw.counters().table_full, 1);
    assert_eq!(sw.mac_table(t(0)).len(), 2);
    // mac 3 was not learned: frames to it are flooded, not lost.
    sw.process(t(1), PortNo(1), &frame(mac(3), mac(9)), false, &mut out)
        .expect("flooded");
    assert_eq!(ports(&out), [0, 2]);
    // Known addresses still forward.
    sw.process(t(1), PortNo(1), &frame(mac(1), mac(9)), false, &mut out)
        .expect("ok");
    assert_eq!(ports(&out), [0]);

    // Once entries age out, learning resumes.
    sw.process(
        t(400),
        PortNo(2),
        &frame(Mac::BROADCAST, mac(3)),
        false,
        &mut out,
    )
    .expect("ok");
    assert_eq!(
        sw.mac_table(t(400))
            .iter()
            .map(|e| e.mac)
            .collect::<Vec<_>>(),
        [mac(3)]
    );
}

#[test]
fn a_station_that_moves_is_followed() {
    let mut sw = switch_with(3, SwitchConfig::default());
    let mut out = Vec::new();
    sw.process(
        t(0),
        PortNo(0),
        &frame(Mac::BROADCAST, mac(1)),
        false,
        &mut out,
    )
    .expect("ok");
    sw.process(
        t(1),
        PortNo(2),
        &frame(Mac::BROADCAST, mac(1)),
        false,
        &mut out,
    )
    .expect("ok");
    assert_eq!(sw.counters().moves, 1);
    sw.process(t(2), PortNo(1), &frame(mac(1), mac(2)), false, &mut out)
        .expect("ok");
    assert_eq!(ports(&out), [2]);
    assert_eq!(sw.mac_table(t(2))[0].port, PortNo(2));
}

#[test]
fn vlans_are_isolated_and_trunks_tag() {
    let mut sw = Switch::new(SwitchConfig::default());
    let a10 = sw.add_port(PortConfig::access(10));
    let b10 = sw.add_port(PortConfig::access(10));
    let c20 = sw.add_port(PortConfig::access(20));
    let trunk = sw.add_port(PortConfig {
        mode: PortMode::Trunk {
            native: Some(10),
            allowed: [20, 30].into_iter().collect(),
        },
        mtu: 1500,
        ra_guard: false,
        snooped: false,
    });
    let mut out = Vec::new();

    // VLAN 10 broadcast: the other VLAN-10 access port and the trunk
    // (native, so untagged); never VLAN 20.
    sw.process(t(0), a10, &frame(Mac::BROADCAST, mac(1)), false, &mut out)
        .expect("ok");
    assert_eq!(
        out,
        [
            Egress {
                port: b10,
                edit: VlanEdit::Keep
            },
            Egress {
                port: trunk,
                edit: VlanEdit::Keep
            }
        ]
    );

    // VLAN 20 broadcast leaves the trunk tagged.
    sw.process(t(0), c20, &frame(Mac::BROADCAST, mac(2)), false, &mut out)
        .expect("ok");
    assert_eq!(
        out,
        [Egress {
            port: trunk,
            edit: VlanEdit::Push(20)
        }]
    );

    // Tagged 20 from the trunk reaches port c20 untagged, by learned address.
    let tagged = build_tagged_frame(mac(2), mac(3), 20, ETHERTYPE_IPV4, &[0; 46]);
    sw.process(t(1), trunk, &tagged, false, &mut out)
        .expect("ok");
    assert_eq!(
        out,
        [Egress {
            port: c20,
            edit: VlanEdit::Strip
        }]
    );

    // The same MAC in two VLANs is two entries.
    sw.process(t(1), b10, &frame(Mac::BROADCAST, mac(2)), false, &mut out)
        .expect("ok");
    assert_eq!(
        sw.mac_table(t(1))
            .iter()
            .filter(|e| e.mac == mac(2))
            .count(),
        2
    );

    // A VLAN the trunk does not allow, and a tag on an access port of
    // another VLAN, are dropped and counted.
    let t40 = build_tagged_frame(Mac::BROADCAST, mac(4), 40, ETHERTYPE_IPV4, &[0; 46]);
    assert_eq!(
        sw.process(t(2), trunk, &t40, false, &mut out),
        Err(DropReason::VlanNotAllowed)
    );
    let t20 = build_tagged_frame(Mac::BROADCAST, mac(4), 20, ETHERTYPE_IPV4, &[0; 46]);
    assert_eq!(
        sw.process(t(2), a10, &t20, false, &mut out),
        Err(DropReason::VlanNotAllowed)
    );
    assert_eq!(
        sw.port_counters(trunk)
            .map(|c| c.drops(DropReason::VlanNotAllowed)),
        Some(1)
    );

    // VLAN 30 has only the trunk: nowhere to go.
    let t30 = build_tagged_frame(Mac::BROADCAST, mac(5), 30, ETHERTYPE_IPV4, &[0; 46]);
    assert_eq!(
        sw.process(t(2), trunk, &t30, false, &mut out),
        Err(DropReason::NoEgress)
    );
}

#[test]
fn malformed_frames_are_counted_drops() {
    let mut sw = switch_with(2, SwitchConfig::default());
    let mut out = Vec::new();
    let cases: [(Vec<u8>, DropReason); 5] = [
        (vec![0xff; 10], DropReason::Truncated),
        (vec![], DropReason::Truncated),
        (
            build_frame(Mac::BROADCAST, mac(1), 0x05ff, &[0; 46]),
            DropReason::BadEtherType,
        ),
        (frame(mac(2), Mac::BROADCAST), DropReason::InvalidSource),
        (
            build_frame(Mac::BROADCAST, mac(1), ETHERTYPE_IPV4, &[0; 1501]),
            DropReason::Oversize,
        ),
    ];
    for (f, reason) in &cases {
        assert_eq!(
            sw.process(t(0), PortNo(0), f, false, &mut out),
            Err(*reason),
            "{reason}"
        );
        assert!(out.is_empty());
    }
    assert_eq!(
        sw.port_counters(PortNo(0)).map(|c| c.total_drops()),
        Some(5)
    );
    assert_eq!(sw.port_counters(PortNo(0)).map(|c| c.rx_frames), Some(5));
    assert!(
        sw.mac_table(t(0)).is_empty(),
        "nothing learned from bad frames"
    );
    assert_eq!(
        sw.process(t(0), PortNo(9), &frame(mac(1), mac(2)), false, &mut out),
        Err(DropReason::NoSuchPort)
    );

    // A full-size frame passes; a GSO super-frame may exceed the MTU.
    let full = build_frame(Mac::BROADCAST, mac(1), ETHERTYPE_IPV4, &[0; 1500]);
    assert!(sw.process(t(0), PortNo(0), &full, false, &mut out).is_ok());
    let big = build_frame(Mac::BROADCAST, mac(1), ETHERTYPE_IPV4, &[0; 60_000]);
    assert!(sw.process(t(0), PortNo(0), &big, true, &mut out).is_ok());
}

#[test]
fn egress_with_a_smaller_mtu_drops_its_copy_only() {
    let mut sw = Switch::new(SwitchConfig::default());
    let big = sw.add_port(PortConfig {
        mode: PortMode::Access { vlan: 1 },
        mtu: 9000,
        ra_guard: false,
        snooped: false,
    });
    let small = sw.add_port(PortConfig::access(1));
    let other = sw.add_port(PortConfig {
        mode: PortMode::Access { vlan: 1 },
        mtu: 9000,
        ra_guard: false,
        snooped: false,
    });
    let mut out = Vec::new();
    let jumbo = build_frame(Mac::BROADCAST, mac(1), ETHERTYPE_IPV4, &[0; 4000]);
    sw.process(t(0), big, &jumbo, false, &mut out)
        .expect("one copy fits");
    assert_eq!(ports(&out), [other.0]);
    assert_eq!(
        sw.port_counters(small)
            .map(|c| c.drops(DropReason::Oversize)),
        Some(1)
    );
}

/// An IPv6 packet carrying `chain` (extension headers, the first naming
/// ICMPv6 or the next) and an ICMPv6 message of type `ty`.
fn icmpv6_frame(src: Mac, first: u8, chain: &[u8], ty: u8) -> Vec<u8> {
    let icmp = [ty, 0, 0, 0, 0, 0, 0, 0];
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((chain.len() + icmp.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[first, 255]);
    p.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    p.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(chain);
    p.extend_from_slice(&icmp);
    build_frame(
        Mac([0x33, 0x33, 0, 0, 0, 1]),
        src,
        wire::ether::ETHERTYPE_IPV6,
        &p,
    )
}

#[test]
fn ra_guard_drops_rogue_advertisements_on_host_ports_only() {
    let mut sw = Switch::new(SwitchConfig::default());
    let host = sw.add_port(PortConfig {
        ra_guard: true,
        snooped: false,
        ..PortConfig::access(1)
    });
    let router = sw.add_port(PortConfig::access(1));
    let other = sw.add_port(PortConfig {
        ra_guard: true,
        snooped: false,
        ..PortConfig::access(1)
    });
    let mut out = Vec::new();
    let ra = icmpv6_frame(mac(1), 58, &[], 134);
    assert_eq!(
        sw.process(t(0), host, &ra, false, &mut out),
        Err(DropReason::RaGuard)
    );
    // Hidden behind destination options (RFC 7113): still found.
    let hidden = icmpv6_frame(mac(1), 60, &[58, 0, 1, 4, 0, 0, 0, 0], 134);
    assert_eq!(
        sw.process(t(0), host, &hidden, false, &mut out),
        Err(DropReason::RaGuard)
    );
    // A redirect is a router's message too.
    let redirect = icmpv6_frame(mac(1), 58, &[], 137);
    assert_eq!(
        sw.process(t(0), host, &redirect, false, &mut out),
        Err(DropReason::RaGuard)
    );
    // A host's own messages (a router solicitation) pass.
    let rs = icmpv6_frame(mac(1), 58, &[], 133);
    sw.process(t(0), host, &rs, false, &mut out)
        .expect("solicitations pass");
    assert_eq!(ports(&out), [router.0, other.0]);
    // The router's port is not guarded.
    let ra = icmpv6_frame(mac(2), 58, &[], 134);
    sw.process(t(0), router, &ra, false, &mut out)
        .expect("the router advertises");
    assert_eq!(ports(&out), [host.0, other.0]);
    assert_eq!(
        sw.port_counters(host).map(|c| c.drops(DropReason::RaGuard)),
        Some(3)
    );
}

mod snooping;
