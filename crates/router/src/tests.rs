//! Router behaviour, frame by frame, on a virtual clock.

mod hostile;
mod trace;
mod v6;

use super::*;
use dhcproto::Encodable;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, IpProtocol, Ipv4Packet, UdpPacket,
};
use std::net::Ipv4Addr;
use std::time::Duration;
use wire::checksum;
use wire::ether::{build_frame, ETHERTYPE_ARP, ETHERTYPE_IPV4, HEADER_LEN};
use wire::ip::IpView;

const R_LAN: Mac = Mac([2, 0, 0, 0, 1, 1]);
const R_WAN: Mac = Mac([2, 0, 0, 0, 2, 1]);
const HOST_A: Mac = Mac([2, 0, 0, 0, 1, 10]);
const HOST_B: Mac = Mac([2, 0, 0, 0, 2, 20]);
const LAN: IfaceId = IfaceId(0);
const WAN: IfaceId = IfaceId(1);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

/// An IPv4 packet with a valid header checksum.
fn ipv4(src: &str, dst: &str, proto: u8, ttl: u8, df: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = icmp::ipv4_header(
        ip(src),
        ip(dst),
        IpProtocol::from(proto),
        payload.len() as u16,
        7,
        0,
    );
    h[8] = ttl;
    if df {
        h[6] |= 0x40;
    }
    h[10..12].fill(0);
    let c = checksum::finish(checksum::sum(0, &h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    [&h[..], payload].concat()
}

fn udp(sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    [u, body.to_vec()].concat()
}

fn echo_request(id: u16) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0, 0, 0, 1];
    m[4..6].copy_from_slice(&id.to_be_bytes());
    m.extend_from_slice(b"ping payload");
    let c = checksum::finish(checksum::sum(0, &m));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn arp(op: u16, sha: Mac, spa: &str, tpa: &str) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::from(op),
        source_hardware_addr: EthernetAddress(sha.0),
        source_protocol_addr: ip(spa),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: ip(tpa),
    };
    let mut body = vec![0u8; 28];
    repr.emit(&mut ArpPacket::new_unchecked(&mut body[..]));
    build_frame(
        if op == 1 { Mac::BROADCAST } else { R_LAN },
        sha,
        ETHERTYPE_ARP,
        &body,
    )
}

struct Lab {
    r: Router,
    pool: FramePool,
    now: Instant,
}

impl Lab {
    /// `r` with one interface, `lan` at `addr` (with a DHCP server if
    /// `dhcp`), at `now`.
    fn one_lan(mut r: Router, addr: &str, dhcp: Option<DhcpConfig>, now: Instant) -> Lab {
        r.add_iface(IfaceConfig {
            name: "lan".into(),
            link: Link::Ethernet { mac: R_LAN },
            addr: addr.parse().expect("net"),
            mtu: 1500,
            dhcp,
            addr6: None,
            ra: None,
            dhcp6: None,
        });
        Lab {
            r,
            pool: FramePool::new(2048, 8),
            now,
        }
    }

    /// lan 10.0.1.1/24, wan 10.0.2.1/24 (MTU `wan_mtu`), default via 10.0.2.254.
    fn new(wan_mtu: u16) -> Lab {
        let mut r = Router::new("gw");
        r.add_iface(IfaceConfig {
            name: "lan".into(),
            link: Link::Ethernet { mac: R_LAN },
            addr: "10.0.1.1/24".parse().expect("net"),
            mtu: 1500,
            dhcp: None,
            addr6: None,
            ra: None,
            dhcp6: None,
        });
        r.add_iface(IfaceConfig {
            name: "wan".into(),
            link: Link::Ethernet { mac: R_WAN },
            addr: "10.0.2.1/24".parse().expect("net"),
            mtu: wan_mtu,
            dhcp: None,
            addr6: None,
            ra: None,
            dhcp6: None,
        });
        r.add_route("0.0.0.0/0".parse().expect("net"), ip("10.0.2.254").into())
            .expect("route");
        Lab {
            r,
            pool: FramePool::new(2048, 64),
            now: Instant::from_secs(1),
        }
    }

    fn rx_frame(&mut self, iface: IfaceId, frame: Frame) -> Vec<(IfaceId, Frame)> {
        let mut out = Vec::new();
        self.r
            .receive(self.now, iface, frame, &mut self.pool, &mut out);
        out
    }

    fn rx(&mut self, iface: IfaceId, frame: Vec<u8>) -> Vec<(IfaceId, Vec<u8>)> {
        self.rx_frame(iface, Frame::from_slice(&frame))
            .into_iter()
            .map(|(i, f)| (i, f.data().to_vec()))
            .collect()
    }

    /// A packet from host A on the LAN.
    fn send_from_a(&mut self, packet: Vec<u8>) -> Vec<(IfaceId, Vec<u8>)> {
        self.rx(LAN, build_frame(R_LAN, HOST_A, ETHERTYPE_IPV4, &packet))
    }

    fn tick(&mut self, d: Duration) -> Vec<(IfaceId, Vec<u8>)> {
        self.now = self.now + d;
        let mut out = Vec::new();
        self.r.on_timer(self.now, &mut self.pool, &mut out);
        out.into_iter()
            .map(|(i, f)| (i, f.data().to_vec()))
            .collect()
    }

    /// Teaches the router where A (LAN) and the WAN gateway are.
    fn learn_neighbours(&mut self) {
        assert_eq!(
            self.rx(LAN, arp(1, HOST_A, "10.0.1.10", "10.0.1.1")).len(),
            1
        );
        self.rx(WAN, arp(1, HOST_B, "10.0.2.254", "10.0.2.1"));
    }
}

fn ip_of(frame: &[u8]) -> Ipv4Packet<&[u8]> {
    Ipv4Packet::new_checked(&frame[14..]).expect("IPv4")
}

/// (type, code, rest-of-header, quoted bytes) of an ICMP message in a frame.
fn icmp_of(frame: &[u8]) -> (u8, u8, u32, Vec<u8>) {
    let p = ip_of(frame);
    let m = p.payload();
    assert_eq!(checksum::fold(checksum::sum(0, m)), 0xffff, "ICMP checksum");
    (
        m[0],
        m[1],
        u32::from_be_bytes([m[4], m[5], m[6], m[7]]),
        m[8..].to_vec(),
    )
}

#[test]
fn answers_arp_only_for_the_address_of_the_interface_asked() {
    let mut lab = Lab::new(1500);
    let out = lab.rx(LAN, arp(1, HOST_A, "10.0.1.10", "10.0.1.1"));
    assert_eq!(out.len(), 1);
    let (iface, reply) = &out[0];
    assert_eq!(*iface, LAN);
    assert_eq!(Mac::from_slice(reply).expect("mac"), HOST_A);
    let repr = ArpRepr::parse(&ArpPacket::new_checked(&reply[14..]).expect("arp")).expect("repr");
    let ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr,
        source_protocol_addr,
        ..
    } = repr
    else {
        panic!("not ethernet/ipv4")
    };
    assert_eq!(
        (operation, source_hardware_addr.0, source_protocol_addr),
        (ArpOperation::Reply, R_LAN.0, ip("10.0.1.1"))
    );
    // Its other address, and anybody else's, are not answered on the LAN.
    assert!(lab
        .rx(LAN, arp(1, HOST_A, "10.0.1.10", "10.0.2.1"))
        .is_empty());
    assert!(lab
        .rx(LAN, arp(1, HOST_A, "10.0.1.10", "10.0.1.99"))
        .is_empty());
    assert_eq!(lab.r.counters().arp_replies_sent, 1);
}

#[test]
fn forwarding_waits_for_arp_then_rewrites_and_decrements_ttl() {
    let mut lab = Lab::new(1500);
    let packet = ipv4(
        "10.0.1.10",
        "10.0.2.20",
        17,
        64,
        false,
        &udp(1000, 2000, b"hello"),
    );
    let out = lab.send_from_a(packet.clone());
    assert_eq!(out.len(), 1, "only an ARP request for the next hop");
    let (iface, req) = &out[0];
    assert_eq!(
        (*iface, Mac::from_slice(req).expect("mac")),
        (WAN, Mac::BROADCAST)
    );
    // Gratuitous or unrelated ARP from a stranger teaches nothing, an
    // answer from the next hop releases the queue.
    let mut reply = arp(2, HOST_B, "10.0.2.20", "10.0.2.1");
    reply[0..6].copy_from_slice(&R_WAN.0);
    let out = lab.rx(WAN, reply);
    assert_eq!(out.len(), 1);
    let (iface, fwd) = &out[0];
    assert_eq!(*iface, WAN);
    assert_eq!(
        (Mac::from_slice(fwd), Mac::from_slice(&fwd[6..])),
        (Some(HOST_B), Some(R_WAN))
    );
    let p = ip_of(fwd);
    assert_eq!(p.hop_limit(), 63);
    assert!(p.verify_checksum(), "incrementally updated checksum");
    assert_eq!(&fwd[14 + 20..], &packet[20..], "payload untouched");
    // Next packets go straight out.
    assert_eq!(lab.send_from_a(packet).len(), 1);
    assert_eq!(lab.r.counters().forwarded, 2);
}

#[test]
fn ttl_expiry_sends_time_exceeded_quoting_the_header() {
    let mut lab = Lab::new(1500);
    lab.learn_neighbours();
    let packet = ipv4(
        "10.0.1.10",
        "10.0.2.20",
        17,
        1,
        false,
        &udp(33434, 33434, &[0u8; 24]),
    );
    let out = lab.send_from_a(packet.clone());
    assert_eq!(out.len(), 1);
    let (iface, err) = &out[0];
    assert_eq!((*iface, Mac::from_slice(err)), (LAN, Some(HOST_A)));
    let p = ip_of(err);
    assert_eq!(
        (p.src_addr(), p.dst_addr()),
        (ip("10.0.1.1"), ip("10.0.1.10"))
    );
    let (ty, code, _, quote) = icmp_of(err);
    assert_eq!((ty, code), (11, 0));
    assert_eq!(
        quote, packet,
        "the whole short packet is quoted, TTL as received"
    );
    assert_eq!(lab.r.counters().drops(Drop::TtlExpired), 1);
}

#[test]
fn each_unreachable_has_its_code() {
    let mut lab = Lab::new(1500);
    lab.learn_neighbours();
    let cases: [(Vec<u8>, u8); 3] = [
        (
            ipv4("10.0.1.10", "10.0.1.1", 17, 64, false, &udp(5, 9999, b"x")),
            3,
        ),
        (ipv4("10.0.1.10", "10.0.2.1", 6, 64, false, &[0u8; 20]), 3),
        (ipv4("10.0.1.10", "10.0.1.1", 99, 64, false, b"what"), 2),
    ];
    for (packet, code) in cases {
        let out = lab.send_from_a(packet.clone());
        assert_eq!(out.len(), 1, "code {code}");
        let (ty, c, _, quote) = icmp_of(&out[0].1);
        assert_eq!((ty, c), (3, code));
        assert_eq!(
            ip_of(&out[0].1).src_addr(),
            ip_of(&[&[0u8; 14][..], &packet].concat()).dst_addr(),
            "from the address the packet was sent to"
        );
        assert_eq!(&quote[..20], &packet[..20]);
    }
    // Without a default route: net unreachable.
    let lonely = Router::new("lonely");
    let mut lab2 = Lab::one_lan(lonely, "10.0.1.1/24", None, Instant::from_secs(1));
    lab2.rx(LAN, arp(1, HOST_A, "10.0.1.10", "10.0.1.1"));
    let out = lab2.send_from_a(ipv4("10.0.1.10", "192.0.2.99", 17, 64, false, b"x"));
    let (ty, code, _, _) = icmp_of(&out[0].1);
    assert_eq!((ty, code), (3, 0), "net unreachable");
    assert_eq!(lab2.r.counters().drops(Drop::NoRoute), 1);
}

#[test]
fn df_packets_too_big_get_fragmentation_needed_with_the_mtu() {
    let mut lab = Lab::new(1000);
    lab.learn_neighbours();
    let packet = ipv4(
        "10.0.1.10",
        "10.0.2.20",
        17,
        64,
        true,
        &udp(1, 2, &[7u8; 1200]),
    );
    let out = lab.send_from_a(packet);
    let (ty, code, rest, _) = icmp_of(&out[0].1);
    assert_eq!(
        (ty, code, rest),
        (3, 4, 1000),
        "next-hop MTU in the low 16 bits"
    );
    assert_eq!(lab.r.counters().drops(Drop::FragmentationNeeded), 1);
}

#[test]
fn packets_without_df_are_fragmented() {
    let mut lab = Lab::new(1000);
    lab.learn_neighbours();
    lab.rx(WAN, arp(1, HOST_B, "10.0.2.20", "10.0.2.1"));
    let body = udp(1, 2, &(0..2000u32).map(|i| i as u8).collect::<Vec<_>>());
    let packet = ipv4("10.0.1.10", "10.0.2.20", 17, 64, false, &body);
    let out = lab.send_from_a(packet);
    assert_eq!(out.len(), 3);
    let mut data = Vec::new();
    for (i, (iface, f)) in out.iter().enumerate() {
        assert_eq!(*iface, WAN);
        let p = ip_of(f);
        assert!(p.verify_checksum());
        assert!(usize::from(p.total_len()) <= 1000);
        assert_eq!(
            usize::from(p.frag_offset()),
            data.len(),
            "offset of fragment {i}"
        );
        assert_eq!(p.more_frags(), i < 2);
        assert_eq!(p.hop_limit(), 63);
        assert_eq!(p.ident(), 7);
        data.extend_from_slice(p.payload());
    }
    assert_eq!(data, body);
    assert_eq!(
        (lab.r.counters().fragmented, lab.r.counters().fragments_sent),
        (1, 3)
    );
}

#[test]
fn no_icmp_errors_about_errors_broadcasts_or_later_fragments() {
    let mut lab = Lab::new(1500);
    lab.learn_neighbours();
    // An ICMP port-unreachable with TTL 1: dropped silently.
    let inner = [3u8, 3, 0, 0, 0, 0, 0, 0];
    let out = lab.send_from_a(ipv4("10.0.1.10", "10.0.2.20", 1, 1, false, &inner));
    assert!(out.is_empty());
    // An echo request with TTL 1 does get one (queries are not errors).
    assert_eq!(
        lab.send_from_a(ipv4(
            "10.0.1.10",
            "10.0.2.20",
            1,
            1,
            false,
            &echo_request(1)
        ))
        .len(),
        1
    );
    // A non-first fragment with TTL 1.
    let mut frag = ipv4("10.0.1.10", "10.0.2.20", 17, 1, false, &[0u8; 16]);
    frag[6..8].copy_from_slice(&185u16.to_be_bytes());
    frag[10..12].fill(0);
    let c = checksum::finish(checksum::sum(0, &frag[..20]));
    frag[10..12].copy_from_slice(&c.to_be_bytes());
    assert!(lab.send_from_a(frag).is_empty());
    // A unicast IP packet sent as link-layer broadcast is not routed.
    let p = ipv4("10.0.1.10", "10.0.2.20", 17, 1, false, &udp(1, 2, b"x"));
    assert!(lab
        .rx(LAN, build_frame(Mac::BROADCAST, HOST_A, ETHERTYPE_IPV4, &p))
        .is_empty());
    assert_eq!(lab.r.counters().drops(Drop::TtlExpired), 3);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut lab = Lab::new(1500);
    lab.learn_neighbours();
    let packet = ipv4("10.0.1.10", "10.0.2.20", 17, 1, false, &udp(1, 2, b"x"));
    let sent: usize = (0..150)
        .map(|_| lab.send_from_a(packet.clone()).len())
        .sum();
    let burst = RouterLimits::default().icmp_errors_per_sec as usize / 10;
    assert_eq!(sent, burst);
    assert_eq!(
        lab.r.counters().icmp_errors_rate_limited,
        150 - burst as u64
    );
    lab.now = lab.now + Duration::from_millis(10);
    assert_eq!(lab.send_from_a(packet).len(), 1, "refilled at 1000/s");
}

#[test]
fn arp_queue_is_bounded_and_gives_up_with_host_unreachable() {
    let mut lab = Lab::new(1500);
    lab.learn_neighbours();
    let mut requests = 0;
    let sent = neigh::QUEUE_LIMIT + 4;
    for i in 0..sent as u8 {
        let out = lab.send_from_a(ipv4(
            "10.0.1.10",
            "10.0.2.77",
            17,
            64,
            false,
            &udp(1, 2, &[i]),
        ));
        requests += out.len();
    }
    assert_eq!(requests, 1, "one request, not one per packet");
    assert_eq!(
        lab.r.counters().drops(Drop::ArpQueueFull),
        (sent - neigh::QUEUE_LIMIT) as u64
    );
    assert_eq!(lab.r.poll_at(), Some(lab.now + neigh::RETRY));
    let out = lab.tick(Duration::from_secs(1));
    assert_eq!(out.len(), 1, "second request");
    let out = lab.tick(Duration::from_secs(1));
    assert_eq!(out.len(), 1, "third request");
    let out = lab.tick(Duration::from_secs(1));
    let burst = RouterLimits::default().icmp_errors_per_sec as usize / 10;
    assert_eq!(
        out.len(),
        neigh::QUEUE_LIMIT.min(burst),
        "one host unreachable per queued packet, within the ICMP error burst"
    );
    for (iface, f) in &out {
        assert_eq!(*iface, LAN);
        let (ty, code, _, quote) = icmp_of(f);
        assert_eq!((ty, code), (3, 1));
        assert_eq!(
            Ipv4Packet::new_checked(&quote[..])
                .expect("quoted")
                .dst_addr(),
            ip("10.0.2.77")
        );
    }
    assert_eq!(
        lab.r.counters().drops(Drop::HostUnreachable),
        neigh::QUEUE_LIMIT as u64
    );
    assert!(
        lab.tick(Duration::from_secs(10)).is_empty(),
        "nothing left to retry"
    );
}

#[test]
fn arp_entries_time_out_and_refresh() {
    let mut lab = Lab::new(1500);
    lab.learn_neighbours();
    let packet = ipv4("10.0.1.10", "10.0.2.20", 17, 64, false, &udp(1, 2, b"x"));
    lab.send_from_a(packet.clone()); // queued: 10.0.2.20 not known yet
    let mut reply = arp(2, HOST_B, "10.0.2.20", "10.0.2.1");
    reply[0..6].copy_from_slice(&R_WAN.0);
    assert_eq!(lab.rx(WAN, reply).len(), 1);
    lab.now = lab.now + (neigh::REACHABLE - neigh::REFRESH_WINDOW + Duration::from_secs(1));
    let out = lab.send_from_a(packet.clone());
    assert_eq!(out.len(), 2, "the packet, and a unicast refresh request");
    assert_eq!(Mac::from_slice(&out[1].1), Some(HOST_B));
    lab.now = lab.now + neigh::REFRESH_WINDOW;
    let out = lab.send_from_a(packet);
    assert_eq!(
        out.len(),
        1,
        "expired: queued again behind a broadcast request"
    );
    assert_eq!(Mac::from_slice(&out[0].1), Some(Mac::BROADCAST));
}

#[test]
fn bad_headers_and_martians_are_counted_drops() {
    let mut lab = Lab::new(1500);
    lab.learn_neighbours();
    let good = ipv4("10.0.1.10", "10.0.2.20", 17, 64, false, &udp(1, 2, b"x"));
    let mut bad_sum = good.clone();
    bad_sum[10] ^= 0xff;
    let mut bad_ihl = good.clone();
    bad_ihl[0] = 0x43;
    let mut too_long = good.clone();
    too_long[2..4].copy_from_slice(&9000u16.to_be_bytes());
    let mut bad_version = good.clone();
    bad_version[0] = 0x65;
    let martian = ipv4("127.0.0.1", "10.0.2.20", 17, 64, false, b"x");
    let link_local = ipv4("169.254.1.1", "10.0.2.20", 17, 64, false, b"x");
    for p in [
        bad_sum,
        bad_ihl,
        too_long,
        bad_version,
        martian,
        link_local,
        good[..10].to_vec(),
    ] {
        assert!(lab.send_from_a(p).is_empty());
    }
    let c = lab.r.counters();
    assert_eq!(
        (
            c.drops(Drop::BadChecksum),
            c.drops(Drop::Malformed),
            c.drops(Drop::Martian)
        ),
        (1, 4, 2)
    );
    assert_eq!(c.forwarded, 0);
}

#[test]
fn ipv6_is_a_counted_drop() {
    let mut lab = Lab::new(1500);
    let mut v6 = vec![0u8; 48];
    v6[0] = 0x60;
    assert!(lab
        .rx(
            LAN,
            build_frame(R_LAN, HOST_A, wire::ether::ETHERTYPE_IPV6, &v6)
        )
        .is_empty());
    assert_eq!(lab.r.counters().drops(Drop::UnsupportedProtocol), 1);
}

#[test]
fn options_are_forwarded_and_counted() {
    let mut lab = Lab::new(1500);
    lab.learn_neighbours();
    lab.rx(WAN, arp(1, HOST_B, "10.0.2.20", "10.0.2.1"));
    let mut p = ipv4("10.0.1.10", "10.0.2.20", 17, 64, false, &[]);
    p[0] = 0x46;
    p.splice(20..20, [1u8, 1, 1, 0]);
    p.extend_from_slice(&udp(1, 2, b"opt"));
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p[10..12].fill(0);
    let c = checksum::finish(checksum::sum(0, &p[..24]));
    p[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(lab.send_from_a(p).len(), 1);
    assert_eq!(lab.r.counters().forwarded_with_options, 1);
}

#[test]
fn echo_requests_to_any_router_address_are_answered() {
    let mut lab = Lab::new(1500);
    lab.learn_neighbours();
    let out = lab.send_from_a(ipv4(
        "10.0.1.10",
        "10.0.2.1",
        1,
        64,
        false,
        &echo_request(42),
    ));
    assert_eq!(out.len(), 1);
    let (ty, code, rest, _) = icmp_of(&out[0].1);
    assert_eq!((ty, code, rest >> 16), (0, 0, 42));
    let p = ip_of(&out[0].1);
    assert_eq!(
        (p.src_addr(), p.dst_addr(), p.hop_limit()),
        (ip("10.0.2.1"), ip("10.0.1.10"), 64)
    );
    assert!(p.verify_checksum());
}

#[test]
fn gso_super_frames_are_forwarded_whole() {
    let mut lab = Lab::new(1500);
    lab.learn_neighbours();
    lab.rx(WAN, arp(1, HOST_B, "10.0.2.20", "10.0.2.1"));
    let mut tcp = vec![0u8; 20];
    tcp[12] = 5 << 4;
    tcp.extend(std::iter::repeat_n(9u8, 30_000));
    let packet = ipv4("10.0.1.10", "10.0.2.20", 6, 64, true, &tcp);
    let mut frame = Frame::from_slice(&build_frame(R_LAN, HOST_A, ETHERTYPE_IPV4, &packet));
    let raw = [1u8, 1, 0, 0, 0xa8, 0x05, 34, 0, 16, 0]; // NEEDS_CSUM, TCPv4, gso_size 1448
    frame.hdr = wire::VnetHdr::parse(&raw).expect("hdr");
    let out = lab.rx_frame(LAN, frame);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.len(), 14 + packet.len(), "one super-frame");
    assert_eq!(
        out[0].1.hdr,
        wire::VnetHdr::parse(&raw).expect("hdr"),
        "offload metadata kept"
    );
    assert_eq!(lab.r.counters().forwarded_gso, 1);

    // Its segments would not fit a 1000-byte link: DF is set, so PMTUD.
    let mut small = Lab::new(1000);
    small.learn_neighbours();
    let mut frame = Frame::from_slice(&build_frame(R_LAN, HOST_A, ETHERTYPE_IPV4, &packet));
    frame.hdr = wire::VnetHdr::parse(&raw).expect("hdr");
    let out = small.rx_frame(LAN, frame);
    assert_eq!(icmp_of(out[0].1.data()).2, 1000);
}

pub(crate) mod dhcp_exchange {
    use super::*;
    use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
    use dhcproto::Decodable;

    pub(super) fn lab() -> Lab {
        let dhcp = DhcpConfig {
            first: ip("192.168.1.100"),
            last: ip("192.168.1.101"),
            lease: Duration::from_secs(3600),
            dns: vec![ip("198.51.100.53")],
            reserved: vec![],
            client_rate: DhcpConfig::CLIENT_RATE,
        };
        let r = Router::new("home-gw");
        Lab::one_lan(r, "192.168.1.1/24", Some(dhcp), Instant::from_secs(10))
    }

    pub(super) fn client_msg(
        mac: Mac,
        kind: MessageType,
        ciaddr: Ipv4Addr,
        opts: &[DhcpOption],
    ) -> Message {
        let mut m = Message::new_with_id(
            0x1234,
            ciaddr,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &mac.0,
        );
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        for o in opts {
            m.opts_mut().insert(o.clone());
        }
        m
    }

    /// Sends a client message the way dhclient does (broadcast when it
    /// has no address, unicast to the server when renewing).
    pub(super) fn send(lab: &mut Lab, mac: Mac, m: &Message) -> Option<(Mac, Ipv4Addr, Message)> {
        let payload = m.to_vec().expect("encodes");
        let (src, dst, l2) = if m.ciaddr().is_unspecified() {
            ("0.0.0.0", "255.255.255.255", Mac::BROADCAST)
        } else {
            ("192.168.1.100", "192.168.1.1", R_LAN)
        };
        let src = if m.ciaddr().is_unspecified() {
            src.to_owned()
        } else {
            m.ciaddr().to_string()
        };
        let packet = ipv4(&src, dst, 17, 64, false, &udp(68, 67, &payload));
        let out = lab.rx(LAN, build_frame(l2, mac, ETHERTYPE_IPV4, &packet));
        let (_, f) = out.into_iter().next()?;
        let p = ip_of(&f);
        let u = UdpPacket::new_checked(p.payload()).expect("udp");
        assert_eq!((u.src_port(), u.dst_port()), (67, 68));
        let pseudo = checksum::pseudo_header(
            &p.src_addr().octets(),
            &p.dst_addr().octets(),
            17,
            u32::from(u.len()),
        );
        assert_eq!(
            checksum::fold(checksum::sum(pseudo, p.payload())),
            0xffff,
            "UDP checksum"
        );
        Some((
            Mac::from_slice(&f).expect("mac"),
            p.dst_addr(),
            Message::from_bytes(u.payload()).expect("dhcp"),
        ))
    }

    #[test]
    fn full_exchange_renewal_release_and_nak() {
        let mut lab = lab();
        let bob = Mac([2, 0, 0, 0, 0, 0xb0]);
        let (l2, ip_dst, offer) = send(
            &mut lab,
            bob,
            &client_msg(bob, MessageType::Discover, Ipv4Addr::UNSPECIFIED, &[]),
        )
        .expect("offer");
        assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
        assert_eq!(
            (l2, ip_dst, offer.yiaddr()),
            (bob, ip("192.168.1.100"), ip("192.168.1.100"))
        );
        assert_eq!(
            offer.opts().get(OptionCode::Router),
            Some(&DhcpOption::Router(vec![ip("192.168.1.1")]))
        );
        assert_eq!(
            offer.opts().get(OptionCode::DomainNameServer),
            Some(&DhcpOption::DomainNameServer(vec![ip("198.51.100.53")]))
        );
        assert_eq!(
            offer.opts().get(OptionCode::SubnetMask),
            Some(&DhcpOption::SubnetMask(ip("255.255.255.0")))
        );
        assert_eq!(
            offer.opts().get(OptionCode::AddressLeaseTime),
            Some(&DhcpOption::AddressLeaseTime(3600))
        );

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
        assert_eq!(
            (ack.opts().msg_type(), ack.yiaddr()),
            (Some(MessageType::Ack), ip("192.168.1.100"))
        );
        let status = lab.r.status(lab.now);
        assert_eq!(
            (
                status.leases.len(),
                status.leases[0].state,
                status.leases[0].mac
            ),
            (1, "bound", bob)
        );

        // Renewal half-way through the lease keeps the address.
        lab.now = lab.now + Duration::from_secs(1800);
        let (l2, ip_dst, ack) = send(
            &mut lab,
            bob,
            &client_msg(bob, MessageType::Request, ip("192.168.1.100"), &[]),
        )
        .expect("renewal ack");
        assert_eq!(
            (l2, ip_dst, ack.yiaddr(), ack.opts().msg_type()),
            (
                bob,
                ip("192.168.1.100"),
                ip("192.168.1.100"),
                Some(MessageType::Ack)
            )
        );
        assert_eq!(lab.r.status(lab.now).leases[0].expires_in_secs, 3600);

        // Another client cannot take bob's address: NAK, broadcast.
        let eve = Mac([2, 0, 0, 0, 0, 0xee]);
        let steal = [DhcpOption::RequestedIpAddress(ip("192.168.1.100"))];
        let (l2, _, nak) = send(
            &mut lab,
            eve,
            &client_msg(eve, MessageType::Request, Ipv4Addr::UNSPECIFIED, &steal),
        )
        .expect("nak");
        assert_eq!(
            (l2, nak.opts().msg_type()),
            (Mac::BROADCAST, Some(MessageType::Nak))
        );
        // It gets the other address instead; then the pool is empty.
        let (_, _, offer) = send(
            &mut lab,
            eve,
            &client_msg(eve, MessageType::Discover, Ipv4Addr::UNSPECIFIED, &[]),
        )
        .expect("offer");
        assert_eq!(offer.yiaddr(), ip("192.168.1.101"));
        let carl = Mac([2, 0, 0, 0, 0, 0xca]);
        assert!(
            send(
                &mut lab,
                carl,
                &client_msg(carl, MessageType::Discover, Ipv4Addr::UNSPECIFIED, &[])
            )
            .is_none(),
            "pool exhausted: no offer"
        );

        // RELEASE frees bob's address for carl.
        assert!(send(
            &mut lab,
            bob,
            &client_msg(bob, MessageType::Release, ip("192.168.1.100"), &[])
        )
        .is_none());
        let (_, _, offer) = send(
            &mut lab,
            carl,
            &client_msg(carl, MessageType::Discover, Ipv4Addr::UNSPECIFIED, &[]),
        )
        .expect("offer");
        assert_eq!(offer.yiaddr(), ip("192.168.1.100"));
    }

    #[test]
    fn leases_expire() {
        let mut lab = lab();
        let bob = Mac([2, 0, 0, 0, 0, 0xb0]);
        send(
            &mut lab,
            bob,
            &client_msg(bob, MessageType::Discover, Ipv4Addr::UNSPECIFIED, &[]),
        )
        .expect("offer");
        let select = [
            DhcpOption::ServerIdentifier(ip("192.168.1.1")),
            DhcpOption::RequestedIpAddress(ip("192.168.1.100")),
        ];
        send(
            &mut lab,
            bob,
            &client_msg(bob, MessageType::Request, Ipv4Addr::UNSPECIFIED, &select),
        )
        .expect("ack");
        lab.tick(Duration::from_secs(3601));
        assert!(lab.r.status(lab.now).leases.is_empty());
    }
}

pub(crate) mod nat_behaviour {
    //! Every NAT behaviour of RFC 4787, 5382 and 5508 that docs/nat.md
    //! lists, through the router, on the virtual clock.
    use super::*;
    use crate::conntrack::Proto;
    use crate::nat::{Filtering, NatConfig, PortForward};

    pub(super) const EXT: &str = "10.0.2.1";

    pub(super) fn nat_lab(f: impl FnOnce(&mut NatConfig)) -> Lab {
        let mut lab = Lab::new(1500);
        let mut c = NatConfig::masquerade(ip(EXT));
        f(&mut c);
        lab.r.set_nat(WAN, c);
        lab.learn_neighbours();
        lab
    }

    pub(super) fn udp_from(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
        let mut body = udp(sport, dport, b"nat test");
        let pseudo =
            checksum::pseudo_header(&ip(src).octets(), &ip(dst).octets(), 17, body.len() as u32);
        let c = checksum::finish(checksum::sum(pseudo, &body));
        body[6..8].copy_from_slice(&c.to_be_bytes());
        ipv4(src, dst, 17, 64, false, &body)
    }

    pub(super) fn tcp_from(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        let pseudo = checksum::pseudo_header(&ip(src).octets(), &ip(dst).octets(), 6, 20);
        let c = checksum::finish(checksum::sum(pseudo, &t));
        t[16..18].copy_from_slice(&c.to_be_bytes());
        ipv4(src, dst, 6, 64, true, &t)
    }

    /// Sends from inside host A; returns what leaves the WAN.
    pub(super) fn out(lab: &mut Lab, packet: Vec<u8>) -> Vec<Vec<u8>> {
        lab.send_from_a(packet)
            .into_iter()
            .filter(|(i, _)| *i == WAN)
            .map(|(_, f)| f)
            .collect()
    }

    /// A packet from the Internet to the router's WAN MAC; returns what
    /// the LAN gets.
    pub(super) fn inbound(lab: &mut Lab, packet: Vec<u8>) -> Vec<Vec<u8>> {
        lab.rx(WAN, build_frame(R_WAN, HOST_B, ETHERTYPE_IPV4, &packet))
            .into_iter()
            .filter(|(i, _)| *i == LAN)
            .map(|(_, f)| f)
            .collect()
    }

    pub(super) fn ports(frame: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
        let p = ip_of(frame);
        let l4 = p.payload();
        (
            p.src_addr(),
            u16::from_be_bytes([l4[0], l4[1]]),
            p.dst_addr(),
            u16::from_be_bytes([l4[2], l4[3]]),
        )
    }

    pub(super) fn transport_ok(frame: &[u8]) -> bool {
        let p = ip_of(frame);
        let pseudo = checksum::pseudo_header(
            &p.src_addr().octets(),
            &p.dst_addr().octets(),
            u8::from(p.next_header()),
            p.payload().len() as u32,
        );
        p.verify_checksum() && checksum::fold(checksum::sum(pseudo, p.payload())) == 0xffff
    }

    #[test]
    fn mapping_is_endpoint_independent_port_preserving_and_never_overloaded() {
        let mut lab = nat_lab(|_| {});
        let a = out(&mut lab, udp_from("10.0.1.10", 5000, "192.0.2.1", 53));
        let b = out(&mut lab, udp_from("10.0.1.10", 5000, "198.51.100.9", 123));
        assert_eq!(
            (ports(&a[0]).0, ports(&a[0]).1),
            (ip(EXT), 5000),
            "port preserved"
        );
        assert_eq!(
            ports(&b[0]).1,
            5000,
            "same mapping for another destination (REQ-1)"
        );
        assert!(
            transport_ok(&a[0]) && transport_ok(&b[0]),
            "checksums updated"
        );
        // Another inside host with the same port gets another external port.
        let c = out(&mut lab, udp_from("10.0.1.11", 5000, "192.0.2.1", 53));
        assert_ne!(ports(&c[0]).1, 5000, "no port overloading");
        assert_eq!(lab.r.nat_status(lab.now).expect("nat").0.len(), 3);
    }

    #[test]
    fn each_filtering_mode_lets_in_what_it_should() {
        for (mode, same_host_other_port, other_host) in [
            (Filtering::AddressAndPortDependent, false, false),
            (Filtering::AddressDependent, true, false),
            (Filtering::EndpointIndependent, true, true),
        ] {
            let mut lab = nat_lab(|c| c.filtering = mode);
            out(&mut lab, udp_from("10.0.1.10", 4000, "192.0.2.1", 53));
            let back = inbound(&mut lab, udp_from("192.0.2.1", 53, EXT, 4000));
            assert_eq!(back.len(), 1, "{mode:?}: the answer comes in");
            assert_eq!(
                (ports(&back[0]).2, ports(&back[0]).3),
                (ip("10.0.1.10"), 4000)
            );
            assert!(transport_ok(&back[0]));
            assert_eq!(
                inbound(&mut lab, udp_from("192.0.2.1", 54, EXT, 4000)).len() == 1,
                same_host_other_port,
                "{mode:?}: same host, other port"
            );
            assert_eq!(
                inbound(&mut lab, udp_from("192.0.2.99", 53, EXT, 4000)).len() == 1,
                other_host,
                "{mode:?}: other host"
            );
        }
    }

    #[test]
    fn hairpinning_reaches_another_inside_host_from_the_senders_mapping() {
        let mut lab = nat_lab(|c| c.filtering = Filtering::EndpointIndependent);
        lab.rx(
            LAN,
            arp(1, Mac([2, 0, 0, 0, 1, 11]), "10.0.1.11", "10.0.1.1"),
        );
        // B (10.0.1.11:7000) has a mapping; A sends to EXT:7000.
        let mut b_out = udp_from("10.0.1.11", 7000, "192.0.2.1", 53);
        b_out = build_frame(R_LAN, Mac([2, 0, 0, 0, 1, 11]), ETHERTYPE_IPV4, &b_out);
        lab.rx(LAN, b_out);
        let got = lab.send_from_a(udp_from("10.0.1.10", 6000, EXT, 7000));
        assert_eq!(got.len(), 1);
        let (iface, f) = &got[0];
        assert_eq!(*iface, LAN);
        assert_eq!(
            ports(f),
            (ip(EXT), 6000, ip("10.0.1.11"), 7000),
            "seen from A's external mapping (REQ-9)"
        );
        assert!(transport_ok(f));
        assert_eq!(lab.r.nat_status(lab.now).expect("nat").1.hairpinned, 1);
    }

    #[test]
    fn udp_timeout_boundary_and_outbound_only_refresh() {
        let mut lab = nat_lab(|c| c.timeouts.udp = Duration::from_secs(300));
        out(&mut lab, udp_from("10.0.1.10", 4000, "192.0.2.1", 53));
        let start = lab.now;
        // Inbound traffic does not refresh a UDP mapping. (ARP entries
        // live 60 s: the neighbours are taught again after each wait.)
        lab.now = start + Duration::from_secs(200);
        lab.learn_neighbours();
        assert_eq!(
            ports(&inbound(&mut lab, udp_from("192.0.2.1", 53, EXT, 4000))[0]).3,
            4000
        );
        lab.tick(Duration::from_secs(99));
        lab.learn_neighbours();
        assert_eq!(
            inbound(&mut lab, udp_from("192.0.2.1", 53, EXT, 4000)).len(),
            1,
            "alive at 299 s"
        );
        lab.now = start + Duration::from_secs(300);
        lab.tick(Duration::from_millis(1));
        lab.learn_neighbours();
        assert!(
            inbound(&mut lab, udp_from("192.0.2.1", 53, EXT, 4000)).is_empty(),
            "expired at 300 s"
        );
        assert_eq!(
            lab.r.nat_status(lab.now).expect("nat").0.len(),
            0,
            "no leaked entry"
        );

        // Outbound refreshes.
        out(&mut lab, udp_from("10.0.1.10", 4001, "192.0.2.1", 53));
        let t0 = lab.now;
        lab.now = t0 + Duration::from_secs(250);
        lab.learn_neighbours();
        out(&mut lab, udp_from("10.0.1.10", 4001, "192.0.2.1", 53));
        lab.now = t0 + Duration::from_secs(500);
        lab.tick(Duration::ZERO);
        lab.learn_neighbours();
        assert_eq!(
            inbound(&mut lab, udp_from("192.0.2.1", 53, EXT, 4001)).len(),
            1,
            "refreshed at 250 s, alive at 500 s"
        );
    }

    #[test]
    fn tcp_established_and_transitory_timeouts() {
        let mut lab = nat_lab(|_| {});
        // Established: SYN out, SYN-ACK in, ACK out.
        out(
            &mut lab,
            tcp_from("10.0.1.10", 40000, "192.0.2.1", 80, 0x02),
        );
        assert_eq!(
            inbound(&mut lab, tcp_from("192.0.2.1", 80, EXT, 40000, 0x12)).len(),
            1
        );
        out(
            &mut lab,
            tcp_from("10.0.1.10", 40000, "192.0.2.1", 80, 0x10),
        );
        // Transitory: a SYN that is never answered.
        out(
            &mut lab,
            tcp_from("10.0.1.10", 40001, "192.0.2.1", 81, 0x02),
        );
        let rows = lab.r.nat_status(lab.now).expect("nat").0;
        let state = |port: u16| {
            rows.iter()
                .find(|r| r.inside.port() == port)
                .map(|r| (r.state, r.expires_in_secs))
        };
        assert_eq!(state(40000), Some(("established", 7440)));
        assert_eq!(state(40001), Some(("syn-sent", 240)));
        lab.tick(Duration::from_secs(241));
        lab.learn_neighbours();
        let rows = lab.r.nat_status(lab.now).expect("nat").0;
        assert_eq!(rows.len(), 1, "the half-open flow expired after 4 min");
        // FIN both ways: transitory again.
        out(
            &mut lab,
            tcp_from("10.0.1.10", 40000, "192.0.2.1", 80, 0x11),
        );
        inbound(&mut lab, tcp_from("192.0.2.1", 80, EXT, 40000, 0x11));
        let rows = lab.r.nat_status(lab.now).expect("nat").0;
        assert_eq!((rows[0].state, rows[0].expires_in_secs), ("time-wait", 240));
    }

    #[test]
    fn icmp_query_mapping_uses_the_identifier_and_times_out_at_60_s() {
        let mut lab = nat_lab(|_| {});
        let sent = out(
            &mut lab,
            ipv4("10.0.1.10", "192.0.2.1", 1, 64, false, &echo_request(777)),
        );
        let p = ip_of(&sent[0]);
        assert_eq!(
            (
                p.src_addr(),
                u16::from_be_bytes([p.payload()[4], p.payload()[5]])
            ),
            (ip(EXT), 1024),
            "identifier mapped into the port range"
        );
        assert_eq!(checksum::fold(checksum::sum(0, p.payload())), 0xffff);
        let mut reply = echo_request(1024);
        reply[0] = 0;
        reply[2..4].fill(0);
        let c = checksum::finish(checksum::sum(0, &reply));
        reply[2..4].copy_from_slice(&c.to_be_bytes());
        let back = inbound(&mut lab, ipv4("192.0.2.1", EXT, 1, 64, false, &reply));
        let p = ip_of(&back[0]);
        assert_eq!(
            (
                p.dst_addr(),
                u16::from_be_bytes([p.payload()[4], p.payload()[5]])
            ),
            (ip("10.0.1.10"), 777)
        );
        assert_eq!(checksum::fold(checksum::sum(0, p.payload())), 0xffff);
        lab.tick(Duration::from_secs(61));
        assert!(lab.r.nat_status(lab.now).expect("nat").0.is_empty());
        lab.learn_neighbours();
        // An echo request to the external address is the router's own.
        let own = lab.rx(
            WAN,
            build_frame(
                R_WAN,
                HOST_B,
                ETHERTYPE_IPV4,
                &ipv4("192.0.2.1", EXT, 1, 64, false, &echo_request(5)),
            ),
        );
        assert_eq!(icmp_of(&own[0].1).0, 0, "echo reply from the router");
    }

    #[test]
    fn icmp_errors_are_translated_with_their_quote_and_do_not_refresh() {
        let mut lab = nat_lab(|_| {});
        let probe = udp_from("10.0.1.10", 33434, "192.0.2.1", 33434);
        let sent = out(&mut lab, probe.clone());
        let rows = lab.r.nat_status(lab.now).expect("nat").0;
        let expires = rows[0].expires_in_secs;
        lab.now = lab.now + Duration::from_secs(10);
        // A router on the way sends Time Exceeded to our external address,
        // quoting the translated probe.
        let quoted = &sent[0][14..14 + 28];
        let mut icmp_msg = vec![11, 0, 0, 0, 0, 0, 0, 0];
        icmp_msg.extend_from_slice(quoted);
        let c = checksum::finish(checksum::sum(0, &icmp_msg));
        icmp_msg[2..4].copy_from_slice(&c.to_be_bytes());
        let back = inbound(&mut lab, ipv4("198.51.100.1", EXT, 1, 64, false, &icmp_msg));
        assert_eq!(back.len(), 1);
        let p = ip_of(&back[0]);
        assert!(p.verify_checksum());
        assert_eq!(p.dst_addr(), ip("10.0.1.10"));
        let m = p.payload();
        assert_eq!((m[0], checksum::fold(checksum::sum(0, m))), (11, 0xffff));
        let inner = Ipv4Packet::new_unchecked(&m[8..]);
        assert_eq!(inner.src_addr(), ip("10.0.1.10"), "quoted source restored");
        assert!(inner.verify_checksum(), "quoted header checksum fixed");
        assert_eq!(&m[8 + 20..8 + 22], &33434u16.to_be_bytes());
        let rows = lab.r.nat_status(lab.now).expect("nat").0;
        assert_eq!(
            rows[0].expires_in_secs,
            expires - 10,
            "an ICMP error does not refresh"
        );
        // An error quoting a flow the NAT never saw is dropped and counted.
        let mut bogus = quoted.to_vec();
        bogus[20..22].copy_from_slice(&9u16.to_be_bytes());
        let mut icmp_msg = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp_msg.extend_from_slice(&bogus);
        assert!(inbound(&mut lab, ipv4("192.0.2.1", EXT, 1, 64, false, &icmp_msg)).is_empty());
        assert_eq!(
            lab.r
                .nat_status(lab.now)
                .expect("nat")
                .1
                .dropped_icmp_unknown_flow,
            1
        );
    }

    #[test]
    fn an_unsolicited_syn_gets_no_reply() {
        let mut lab = nat_lab(|_| {});
        let all = lab.rx(
            WAN,
            build_frame(
                R_WAN,
                HOST_B,
                ETHERTYPE_IPV4,
                &tcp_from("192.0.2.1", 5555, EXT, 22, 0x02),
            ),
        );
        assert!(
            all.is_empty(),
            "nothing sent anywhere: no RST, no ICMP (RFC 5382 REQ-4)"
        );
        assert_eq!(
            lab.r
                .nat_status(lab.now)
                .expect("nat")
                .1
                .dropped_unsolicited,
            1
        );
        // Simultaneous open still works: our SYN out, theirs in.
        out(
            &mut lab,
            tcp_from("10.0.1.10", 5000, "192.0.2.1", 5555, 0x02),
        );
        assert_eq!(
            inbound(&mut lab, tcp_from("192.0.2.1", 5555, EXT, 5000, 0x02)).len(),
            1
        );
    }

    #[test]
    fn a_full_table_or_port_range_refuses_new_flows_with_icmp_3_13() {
        let mut lab = nat_lab(|c| c.max_entries = 2);
        out(&mut lab, udp_from("10.0.1.10", 1, "192.0.2.1", 53));
        out(&mut lab, udp_from("10.0.1.10", 1, "192.0.2.2", 53));
        let refused = lab.send_from_a(udp_from("10.0.1.10", 2, "192.0.2.3", 53));
        assert_eq!(refused.len(), 1);
        assert_eq!(
            (
                refused[0].0,
                icmp_of(&refused[0].1).0,
                icmp_of(&refused[0].1).1
            ),
            (LAN, 3, 13)
        );
        assert_eq!(
            out(&mut lab, udp_from("10.0.1.10", 1, "192.0.2.1", 53)).len(),
            1,
            "existing flows untouched"
        );
        assert_eq!(
            lab.r.nat_status(lab.now).expect("nat").1.refused_table_full,
            1
        );

        let mut lab = nat_lab(|c| c.ports = 2000..=2001);
        for p in [3000, 3001] {
            assert_eq!(
                out(&mut lab, udp_from("10.0.1.10", p, "192.0.2.1", 53)).len(),
                1
            );
        }
        let refused = lab.send_from_a(udp_from("10.0.1.10", 3002, "192.0.2.1", 53));
        assert_eq!(icmp_of(&refused[0].1).1, 13);
        assert_eq!(
            lab.r
                .nat_status(lab.now)
                .expect("nat")
                .1
                .refused_ports_exhausted,
            1
        );
    }

    #[test]
    fn port_forwards_coexist_with_masquerade() {
        let mut lab = nat_lab(|c| {
            c.forwards = vec![PortForward {
                proto: Proto::Tcp,
                port: 8080,
                to: "10.0.1.10:80".parse().expect("addr"),
            }]
        });
        let got = inbound(&mut lab, tcp_from("192.0.2.50", 41000, EXT, 8080, 0x02));
        assert_eq!(got.len(), 1, "anyone may reach a forward");
        assert_eq!(
            ports(&got[0]),
            (ip("192.0.2.50"), 41000, ip("10.0.1.10"), 80)
        );
        assert!(transport_ok(&got[0]));
        let reply = out(
            &mut lab,
            tcp_from("10.0.1.10", 80, "192.0.2.50", 41000, 0x12),
        );
        assert_eq!(ports(&reply[0]), (ip(EXT), 8080, ip("192.0.2.50"), 41000));
        // Masquerade goes on beside it.
        assert_eq!(
            ports(&out(&mut lab, udp_from("10.0.1.10", 999, "192.0.2.1", 53))[0]).0,
            ip(EXT)
        );
        // The forward outlives its sessions.
        lab.tick(Duration::from_secs(10_000));
        lab.learn_neighbours();
        assert_eq!(
            inbound(&mut lab, tcp_from("192.0.2.51", 41001, EXT, 8080, 0x02)).len(),
            1
        );
    }

    #[test]
    fn super_frames_are_translated_whole_with_the_partial_checksum_fixed() {
        let mut lab = nat_lab(|_| {});
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x10;
        tcp.extend(std::iter::repeat_n(3u8, 20_000));
        let pseudo = checksum::pseudo_header(
            &ip("10.0.1.10").octets(),
            &ip("192.0.2.1").octets(),
            6,
            tcp.len() as u32,
        );
        tcp[16..18].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        let packet = ipv4("10.0.1.10", "192.0.2.1", 6, 64, true, &tcp);
        let mut frame = Frame::from_slice(&build_frame(R_LAN, HOST_A, ETHERTYPE_IPV4, &packet));
        let raw = [1u8, 1, 0, 0, 0xa8, 0x05, 34, 0, 16, 0];
        frame.hdr = wire::VnetHdr::parse(&raw).expect("hdr");
        let out = lab.rx_frame(LAN, frame);
        assert_eq!(out.len(), 1);
        let mut f = out.into_iter().next().expect("frame").1;
        assert_eq!(f.len(), 14 + packet.len(), "not segmented");
        let hdr = f.hdr;
        wire::offload::complete_checksum(f.data_mut(), &hdr).expect("completes");
        assert!(
            transport_ok(f.data()),
            "the partial sum was updated for the new source"
        );
    }

    #[test]
    fn fragments_and_truncated_headers_are_dropped_and_counted() {
        let mut lab = nat_lab(|_| {});
        let mut frag = udp_from("10.0.1.10", 1, "192.0.2.1", 53);
        frag[6] |= 0x20; // MF
        frag[10..12].fill(0);
        let c = checksum::finish(checksum::sum(0, &frag[..20]));
        frag[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(out(&mut lab, frag).is_empty());
        let truncated = ipv4("10.0.1.10", "192.0.2.1", 6, 64, false, &[0u8; 10]);
        assert!(out(&mut lab, truncated).is_empty());
        let c = lab.r.nat_status(lab.now).expect("nat").1;
        assert_eq!((c.dropped_fragments, c.dropped_truncated), (1, 1));
        assert_eq!(lab.r.counters().drops(Drop::Nat), 2);
    }
}
