//! Whole-fabric behaviour on the virtual clock, without root.

use fabric::{CaptureSink, Direction, Fabric, LinkParams, PortId, Sim};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switch::{PortConfig, PortMode, SwitchConfig};
use wire::ether::{build_frame, EthernetHeader, ETHERTYPE_IPV4};
use wire::{checksum, Instant, Mac, VnetHdr};

fn mac(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

/// A fabric with one switch and `n` hosts (ports "h0".."hN").
fn lan(n: usize, offload: &[bool]) -> (Fabric, Vec<PortId>) {
    let mut f = Fabric::new();
    let sw = f.add_switch("lan", SwitchConfig::default());
    let ports = (0..n)
        .map(|i| {
            f.add_port(
                &format!("h{i}"),
                sw,
                PortConfig::access(1),
                offload.get(i).copied().unwrap_or(false),
            )
            .expect("port")
        })
        .collect();
    (f, ports)
}

fn payload(i: u32) -> Vec<u8> {
    let mut p = vec![0u8; 46];
    p[..4].copy_from_slice(&i.to_be_bytes());
    p
}

#[test]
fn frames_reach_only_their_destination_once_learned() {
    let (f, p) = lan(3, &[]);
    let mut sim = Sim::new(f, 1, LinkParams::default());
    // Host 1 announces itself; then host 0 talks to it.
    sim.send(
        p[1],
        build_frame(Mac::BROADCAST, mac(1), ETHERTYPE_IPV4, &payload(0)),
    );
    sim.run_until_idle();
    assert_eq!(sim.take_received(p[0]).len(), 1);
    assert_eq!(sim.take_received(p[2]).len(), 1);
    for i in 0..10 {
        sim.send(
            p[0],
            build_frame(mac(1), mac(0), ETHERTYPE_IPV4, &payload(i)),
        );
    }
    sim.run_until_idle();
    assert_eq!(sim.take_received(p[1]).len(), 10);
    assert!(
        sim.take_received(p[2]).is_empty(),
        "no flooding once learned"
    );
    assert!(
        sim.take_received(p[0]).is_empty(),
        "never back to the sender"
    );
}

fn lossy_run(seed: u64) -> (Vec<u32>, u64) {
    let (f, p) = lan(2, &[]);
    let link = LinkParams {
        latency: Duration::from_millis(1),
        jitter: Duration::from_millis(2),
        loss: 0.05,
    };
    let mut sim = Sim::new(f, seed, link);
    for i in 0..2000u32 {
        sim.send(
            p[0],
            build_frame(mac(1), mac(0), ETHERTYPE_IPV4, &payload(i)),
        );
        sim.run_for(Duration::from_micros(100));
    }
    sim.run_until_idle();
    let got = sim
        .take_received(p[1])
        .iter()
        .map(|r| u32::from_be_bytes([r.frame[14], r.frame[15], r.frame[16], r.frame[17]]))
        .collect();
    (got, sim.lost())
}

#[test]
fn seeded_loss_and_jitter_are_deterministic() {
    let (a, lost_a) = lossy_run(7);
    let (b, lost_b) = lossy_run(7);
    assert_eq!(a, b, "same seed, same run");
    assert_eq!(lost_a, lost_b);
    assert_eq!(
        a.len() as u64 + lost_a,
        2000,
        "every frame arrives or is counted lost"
    );
    // About 5% per traversal, two traversals per frame.
    assert!((100..300).contains(&lost_a), "lost {lost_a}");
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_ne!(a, sorted, "jitter reorders");
    sorted.dedup();
    assert_eq!(sorted.len(), a.len(), "no duplicates");
    let (c, _) = lossy_run(8);
    assert_ne!(a, c, "another seed, another run");
}

/// A TCP/IPv4 super-frame as a TAP with TSO hands it over.
fn tcp_superframe(payload_len: usize) -> (VnetHdr, Vec<u8>) {
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip[2..4].copy_from_slice(&((40 + payload_len) as u16).to_be_bytes());
    let c = checksum::finish(checksum::sum(0, &ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut tcp = vec![0u8; 20];
    tcp[12] = 5 << 4;
    tcp[13] = 0x10;
    let pseudo = checksum::pseudo_header(&ip[12..16], &ip[16..20], 6, (20 + payload_len) as u32);
    tcp[16..18].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
    let data: Vec<u8> = (0..payload_len).map(|i| (i * 31 % 256) as u8).collect();
    let frame = build_frame(mac(1), mac(0), ETHERTYPE_IPV4, &[ip, tcp, data].concat());
    let mut raw = [0u8; 10];
    raw[0] = 1;
    raw[1] = 1;
    raw[4..6].copy_from_slice(&1448u16.to_ne_bytes());
    raw[6..8].copy_from_slice(&34u16.to_ne_bytes());
    raw[8..10].copy_from_slice(&16u16.to_ne_bytes());
    (VnetHdr::parse(&raw).expect("header"), frame)
}

#[test]
fn super_frames_pass_to_offload_ports_and_are_cut_for_others() {
    // h0 (offload) sends; h1 takes offloads, h2 does not.
    let (f, p) = lan(3, &[true, true, false]);
    let mut sim = Sim::new(f, 3, LinkParams::default());
    let (hdr, frame) = tcp_superframe(10_000);
    sim.send_offloaded(p[0], hdr, frame.clone());
    sim.run_until_idle();

    let whole = sim.take_received(p[1]);
    assert_eq!(whole.len(), 1, "one super-frame, untouched");
    assert_eq!(whole[0].frame, frame);
    assert_eq!(whole[0].hdr, Some(hdr));

    let segs = sim.take_received(p[2]);
    assert_eq!(segs.len(), 7, "10000 bytes in 1448-byte segments");
    let mut data = Vec::new();
    for s in &segs {
        let f = &s.frame;
        assert!(f.len() <= 1514);
        assert_eq!(checksum::fold(checksum::sum(0, &f[14..34])), 0xffff);
        let pseudo = checksum::pseudo_header(&f[26..30], &f[30..34], 6, (f.len() - 34) as u32);
        assert_eq!(
            checksum::fold(checksum::sum(pseudo, &f[34..])),
            0xffff,
            "complete TCP checksum"
        );
        data.extend_from_slice(&f[54..]);
    }
    assert_eq!(data, &frame[54..]);
}

#[test]
fn trunk_ports_carry_vlans_tagged_and_access_ports_untagged() {
    let mut f = Fabric::new();
    let sw = f.add_switch("core", SwitchConfig::default());
    let a10 = f
        .add_port("a10", sw, PortConfig::access(10), false)
        .expect("port");
    let a20 = f
        .add_port("a20", sw, PortConfig::access(20), false)
        .expect("port");
    let trunk_mode = PortMode::Trunk {
        native: None,
        allowed: [10, 20].into_iter().collect(),
    };
    let trunk = f
        .add_port(
            "trunk",
            sw,
            PortConfig {
                mode: trunk_mode,
                mtu: 1500,
                ra_guard: false,
                snooped: false,
            },
            false,
        )
        .expect("port");
    let mut sim = Sim::new(f, 9, LinkParams::default());
    sim.send(
        a10,
        build_frame(Mac::BROADCAST, mac(1), ETHERTYPE_IPV4, &payload(1)),
    );
    sim.run_until_idle();
    assert!(sim.take_received(a20).is_empty(), "VLANs are isolated");
    let t = sim.take_received(trunk);
    let h = EthernetHeader::parse(&t[0].frame).expect("frame");
    assert_eq!(h.tag.map(|t| t.vid), Some(10));
}

#[test]
fn learned_addresses_age_out_on_the_virtual_clock() {
    let mut f = Fabric::new();
    let sw = f.add_switch(
        "lan",
        SwitchConfig {
            ageing: Duration::from_secs(30),
            max_macs: 64,
            ..SwitchConfig::default()
        },
    );
    let p: Vec<PortId> = (0..3)
        .map(|i| {
            f.add_port(&format!("h{i}"), sw, PortConfig::access(1), false)
                .expect("port")
        })
        .collect();
    let mut sim = Sim::new(f, 5, LinkParams::default());
    sim.send(
        p[1],
        build_frame(Mac::BROADCAST, mac(1), ETHERTYPE_IPV4, &payload(0)),
    );
    sim.run_for(Duration::from_secs(29));
    assert_eq!(
        sim.fabric().status(sim.now()).switches[0].mac_table.len(),
        1
    );
    sim.run_for(Duration::from_secs(2));
    let status = sim.fabric().status(sim.now());
    assert!(status.switches[0].mac_table.is_empty());
    assert_eq!(
        status.switches[0].counters.aged_out, 1,
        "the timer swept it"
    );
    assert!(sim.now() >= Instant::from_secs(31));
}

type Frames = Vec<(Direction, Vec<u8>)>;

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Frames>>);

impl CaptureSink for Recorder {
    fn record(&mut self, _now: Instant, direction: Direction, head: &[u8], tail: &[u8]) {
        self.0
            .lock()
            .expect("lock")
            .push((direction, [head, tail].concat()));
    }
}

#[test]
fn capture_sees_both_directions_and_malformed_frames_are_counted() {
    let (f, p) = lan(2, &[]);
    let rec = Recorder::default();
    f.add_capture(p[1], Box::new(rec.clone()));
    let mut sim = Sim::new(f, 11, LinkParams::default());
    sim.send(
        p[0],
        build_frame(Mac::BROADCAST, mac(0), ETHERTYPE_IPV4, &payload(0)),
    );
    sim.send(
        p[1],
        build_frame(mac(0), mac(1), ETHERTYPE_IPV4, &payload(1)),
    );
    sim.send(p[1], vec![1, 2, 3]);
    sim.run_until_idle();
    let dirs: Vec<Direction> = rec
        .0
        .lock()
        .expect("lock")
        .iter()
        .map(|(d, _)| *d)
        .collect();
    assert_eq!(dirs, [Direction::Out, Direction::In, Direction::In]);

    let status = sim.fabric().status(sim.now());
    let h1 = status.port("h1").expect("h1");
    assert_eq!(h1.drops.get("truncated"), Some(&1));
    assert_eq!((h1.rx_frames, h1.tx_frames), (2, 1));
    assert_eq!(sim.take_received(p[0]).len(), 1);
}

mod routed {
    use super::*;
    use router::{IfaceConfig, IfaceId, Link, Router};
    use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress, Ipv4Packet};
    use std::net::Ipv4Addr;
    use wire::ether::{ETHERTYPE_ARP, HEADER_LEN};

    const R_MAC: Mac = Mac([2, 0, 0, 0, 0, 0xfe]);

    fn arp(op: ArpOperation, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
        let repr = ArpRepr::EthernetIpv4 {
            operation: op,
            source_hardware_addr: EthernetAddress(sha.0),
            source_protocol_addr: spa,
            target_hardware_addr: EthernetAddress(tha.0),
            target_protocol_addr: tpa,
        };
        let mut body = vec![0u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut body[..]));
        let dst = if op == ArpOperation::Request {
            Mac::BROADCAST
        } else {
            tha
        };
        build_frame(dst, sha, ETHERTYPE_ARP, &body)
    }

    fn udp_packet(src: [u8; 4], dst: [u8; 4], ttl: u8) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 36, 0, 1, 0, 0, ttl, 17, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[0x13, 0x88, 0x13, 0x89, 0, 16, 0, 0]);
        p.extend_from_slice(b"routed!!");
        let c = checksum::finish(checksum::sum(0, &p[..20]));
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// Host A on switch `lan` (10.0.1.0/24) behind router `r`, whose other
    /// interface is an L3 port (as a TUN would be) with a default route.
    fn lab() -> (Sim, PortId, PortId) {
        let mut f = Fabric::new();
        let lan = f.add_switch("lan", SwitchConfig::default());
        let a = f
            .add_port("a", lan, PortConfig::access(1), false)
            .expect("port");
        let mut r = Router::new("r");
        r.add_iface(IfaceConfig {
            name: "lan".into(),
            link: Link::Ethernet { mac: R_MAC },
            addr: "10.0.1.1/24".parse().expect("net"),
            mtu: 1500,
            dhcp: None,
            addr6: None,
            ra: None,
            dhcp6: None,
        });
        r.add_iface(IfaceConfig {
            name: "up".into(),
            link: Link::PointToPoint,
            addr: "10.9.0.1/30".parse().expect("net"),
            mtu: 1500,
            dhcp: None,
            addr6: None,
            ra: None,
            dhcp6: None,
        });
        r.add_route(
            "0.0.0.0/0".parse().expect("net"),
            Ipv4Addr::new(10, 9, 0, 2).into(),
        )
        .expect("route");
        let rid = f.add_router(r, 2);
        f.link_router(rid, IfaceId(0), lan, PortConfig::access(1))
            .expect("link");
        let up = f
            .add_router_port("r.up", rid, IfaceId(1), false)
            .expect("l3 port");
        (Sim::new(f, 21, LinkParams::default()), a, up)
    }

    #[test]
    fn frames_cross_switch_router_and_l3_port_both_ways() {
        let (mut sim, a, up) = lab();
        let a_ip = Ipv4Addr::new(10, 0, 1, 10);
        // A resolves its gateway through the switch.
        sim.send(
            a,
            arp(
                ArpOperation::Request,
                mac(10),
                a_ip,
                Mac::ZERO,
                Ipv4Addr::new(10, 0, 1, 1),
            ),
        );
        sim.run_until_idle();
        let got = sim.take_received(a);
        assert_eq!(got.len(), 1, "the router's ARP reply");
        assert_eq!(Mac::from_slice(&got[0].frame[6..]), Some(R_MAC));

        // Out: A -> 192.0.2.7 leaves the L3 port as a bare IP packet, TTL 63.
        sim.send(
            a,
            build_frame(
                R_MAC,
                mac(10),
                ETHERTYPE_IPV4,
                &udp_packet([10, 0, 1, 10], [192, 0, 2, 7], 64),
            ),
        );
        sim.run_until_idle();
        let out = sim.take_received(up);
        assert_eq!(out.len(), 1);
        let p =
            Ipv4Packet::new_checked(&out[0].frame[..]).expect("an IP packet, no Ethernet header");
        assert_eq!(
            (p.hop_limit(), p.dst_addr()),
            (63, Ipv4Addr::new(192, 0, 2, 7))
        );
        assert!(p.verify_checksum());

        // In: a packet from the L3 port to A. The router learned A from
        // its ARP request, so it goes straight to A's MAC.
        sim.send(up, udp_packet([192, 0, 2, 7], [10, 0, 1, 10], 50));
        sim.run_until_idle();
        let back = sim.take_received(a);
        assert_eq!(back.len(), 1);
        assert_eq!(
            (
                Mac::from_slice(&back[0].frame),
                Mac::from_slice(&back[0].frame[6..])
            ),
            (Some(mac(10)), Some(R_MAC))
        );
        assert_eq!(
            Ipv4Packet::new_checked(&back[0].frame[HEADER_LEN..])
                .expect("ip")
                .hop_limit(),
            49
        );

        // An unknown host on the LAN: the router asks (broadcast reaches
        // A), gives up after three requests on the virtual clock, and
        // reports Host Unreachable out of the L3 port.
        sim.send(up, udp_packet([192, 0, 2, 7], [10, 0, 1, 99], 50));
        sim.run_for(Duration::from_millis(10));
        let asked = sim.take_received(a);
        assert_eq!(asked.len(), 1);
        assert_eq!(Mac::from_slice(&asked[0].frame), Some(Mac::BROADCAST));
        sim.run_for(Duration::from_secs(4));
        assert_eq!(sim.take_received(a).len(), 2, "two more requests");
        let err = sim.take_received(up);
        assert_eq!(err.len(), 1);
        let p = Ipv4Packet::new_checked(&err[0].frame[..]).expect("ip");
        assert_eq!(
            (p.dst_addr(), p.payload()[0], p.payload()[1]),
            (Ipv4Addr::new(192, 0, 2, 7), 3, 1)
        );

        let status = sim.fabric().status(sim.now());
        // Counted when accepted for forwarding, before ARP (as Linux's
        // ForwDatagrams): the packet for .99 counts, then its drop.
        assert_eq!(status.routers[0].counters.forwarded, 3);
        assert_eq!(
            status.routers[0]
                .counters
                .drops(router::Drop::HostUnreachable),
            1
        );
        assert_eq!(status.l3_ports[0].rx_frames, 2);
        assert_eq!(
            status.switches[0].ports[1].name, "r.lan",
            "the router's switch port is named router.iface"
        );
    }

    #[test]
    fn a_routers_switch_port_can_be_captured_like_any_other() {
        let (mut sim, a, _) = lab();
        let rec = Recorder::default();
        let port = sim
            .fabric()
            .port_by_name("r.lan")
            .expect("the router's port on lan has a name");
        sim.fabric_mut().add_capture(port, Box::new(rec.clone()));
        sim.send(
            a,
            arp(
                ArpOperation::Request,
                mac(10),
                Ipv4Addr::new(10, 0, 1, 10),
                Mac::ZERO,
                Ipv4Addr::new(10, 0, 1, 1),
            ),
        );
        sim.run_until_idle();
        let seen = rec.0.lock().expect("lock").clone();
        assert_eq!(
            seen.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
            [Direction::Out, Direction::In],
            "request to the router, reply from it"
        );
        assert_eq!(Mac::from_slice(&seen[1].1[6..]), Some(R_MAC));
        assert!(sim
            .fabric()
            .status(sim.now())
            .port("r.lan")
            .is_some_and(|p| p.capturing));
    }

    #[test]
    fn a_flood_reaching_a_router_and_hosts_gives_each_its_own_copy() {
        // Two hosts and a router on one switch: A's ARP broadcast floods
        // to B and to the router, which rewrites its copy into a reply.
        let mut f = Fabric::new();
        let lan = f.add_switch("lan", SwitchConfig::default());
        let a2 = f
            .add_port("a", lan, PortConfig::access(1), false)
            .expect("port");
        let b2 = f
            .add_port("b", lan, PortConfig::access(1), false)
            .expect("port");
        let mut r = Router::new("r");
        r.add_iface(IfaceConfig {
            name: "lan".into(),
            link: Link::Ethernet { mac: R_MAC },
            addr: "10.0.1.1/24".parse().expect("net"),
            mtu: 1500,
            dhcp: None,
            addr6: None,
            ra: None,
            dhcp6: None,
        });
        let rid = f.add_router(r, 1);
        f.link_router(rid, IfaceId(0), lan, PortConfig::access(1))
            .expect("link");
        let mut sim2 = Sim::new(f, 22, LinkParams::default());
        let request = arp(
            ArpOperation::Request,
            mac(10),
            Ipv4Addr::new(10, 0, 1, 10),
            Mac::ZERO,
            Ipv4Addr::new(10, 0, 1, 1),
        );
        sim2.send(a2, request.clone());
        sim2.run_until_idle();
        assert_eq!(
            sim2.take_received(b2)
                .iter()
                .map(|r| r.frame.clone())
                .collect::<Vec<_>>(),
            [request],
            "b sees the request untouched"
        );
        assert_eq!(sim2.take_received(a2).len(), 1, "a gets the reply");
    }
}
