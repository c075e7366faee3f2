//! The fuzz targets: each takes the fuzzer's bytes, makes what the wire
//! would carry of them (with valid checksums, see [`crate::fixup`]), runs
//! it through scratchnet's parsers, and panics only if scratchnet does or
//! an invariant breaks.

use crate::fixup::{fix_frame, fix_ipv4, fix_ipv6};
use crate::lab::{Lab, ALICE, HOME_GW, HOME_GW_ISP, WEB1};
use hoststack::{HostConfig, Stack};
use std::net::SocketAddr;
use std::time::Duration;
use wire::ether::build_frame;
use wire::offload::Segmenter;
use wire::{Frame, Instant, Mac, VnetHdr};

/// A target: a name (its corpus directory) and the function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, as cargo-fuzz and the stable tests run them.
pub const TARGETS: &[Target] = &[
    ("ethernet", ethernet),
    ("segmenter", segmenter),
    ("router", router),
    ("arp", arp),
    ("dhcp", dhcp),
    ("nat", nat),
    ("icmp_quote", icmp_quote),
    ("host_stack", host_stack),
    ("topology", topology),
    ("dns_authority", dns_authority),
    ("dns_resolver", dns_resolver),
    ("vxlan", vxlan),
    ("services", crate::services::services),
    ("ipv6", ipv6),
    ("dhcp6", dhcp6),
];

const BOB: Mac = Mac([2, 0x53, 0, 0, 1, 20]);
const PEER: Mac = Mac([2, 0x53, 0, 0, 2, 99]);
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;

fn settle(lab: &mut Lab) {
    lab.run_for(Duration::from_millis(5));
    if let Err(e) = lab.check() {
        panic!("invariant broken: {e}");
    }
}

/// Any bytes as a frame from alice (a trunk port that takes offloads) and
/// from bob: Ethernet, 802.1Q, EtherTypes and lengths of every kind.
pub fn ethernet(data: &[u8]) {
    let mut lab = Lab::new(1);
    let (alice, bob) = (lab.ports.alice, lab.ports.bob);
    lab.inject(alice, VnetHdr::PLAIN, data.to_vec());
    let mut fixed = data.to_vec();
    fix_frame(&mut fixed);
    lab.inject(bob, VnetHdr::PLAIN, fixed);
    settle(&mut lab);
}

/// A virtio-net header (the first 10 bytes) and a frame with valid
/// checksums: the segmenter directly, then the whole path from alice's
/// offloading port to web1, which takes only wire-sized frames.
pub fn segmenter(data: &[u8]) {
    let Some(hdr) = data.get(..wire::VNET_HDR_LEN).and_then(VnetHdr::parse) else {
        return;
    };
    let mut frame = data[wire::VNET_HDR_LEN..].to_vec();
    fix_frame(&mut frame);
    let mut segments = 0usize;
    let _ = Segmenter::new().emit(&frame, &hdr, |seg| {
        segments += 1;
        assert!(
            seg.len() <= frame.len().max(65_535 + 64),
            "segment larger than its frame"
        );
    });
    assert!(segments <= 65_536, "more segments than bytes");
    let mut lab = Lab::new(2);
    let alice = lab.ports.alice;
    lab.inject(alice, hdr, frame);
    settle(&mut lab);
}

/// Splits input into records of `[len: u16][control][bytes]` (lengths
/// below 2048, the last record cut short if the input is): each an IPv4
/// packet with its checksums fixed, its control byte, and the time to let
/// pass after it (the control byte's top two bits).
fn records(data: &[u8]) -> impl Iterator<Item = (u8, Vec<u8>, Duration)> + '_ {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 3 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])) % 2048;
        let control = rest[2];
        let end = (3 + len).min(rest.len());
        let mut packet = rest[3..end].to_vec();
        rest = &rest[end..];
        fix_ipv4(&mut packet);
        let wait = [0, 1, 1000, 61_000][usize::from(control >> 6)];
        Some((control, packet, Duration::from_millis(wait)))
    })
}

/// Records (see `records`) sent from alice, bob or the outside peer, with
/// time passing between them: routing, options, ICMP, fragments, NAT and
/// DHCP.
pub fn router(data: &[u8]) {
    let mut lab = Lab::new(3);
    for (control, packet, wait) in records(data) {
        let (port, src, gw) = match control & 3 {
            0 => (lab.ports.alice, ALICE, HOME_GW),
            1 => (lab.ports.bob, BOB, HOME_GW),
            _ => (lab.ports.peer, PEER, HOME_GW_ISP),
        };
        let dst = if control & 4 != 0 { Mac::BROADCAST } else { gw };
        lab.inject(
            port,
            VnetHdr::PLAIN,
            build_frame(dst, src, ETHERTYPE_IPV4, &packet),
        );
        lab.run_for(wait);
    }
    settle(&mut lab);
}

/// Any bytes as the body of an ARP frame, broadcast on the home segment
/// and sent to the ISP side's router.
pub fn arp(data: &[u8]) {
    let mut lab = Lab::new(4);
    let (bob, peer) = (lab.ports.bob, lab.ports.peer);
    lab.inject(
        bob,
        VnetHdr::PLAIN,
        build_frame(Mac::BROADCAST, BOB, ETHERTYPE_ARP, data),
    );
    lab.inject(
        peer,
        VnetHdr::PLAIN,
        build_frame(HOME_GW_ISP, PEER, ETHERTYPE_ARP, data),
    );
    settle(&mut lab);
}

/// Any bytes as a DHCP message from bob, broadcast, in a frame whose
/// source MAC is the message's own chaddr (so it gets past the check that
/// they match), then the same from another MAC.
pub fn dhcp(data: &[u8]) {
    let mut lab = Lab::new(5);
    let bob = lab.ports.bob;
    let chaddr = data.get(28..34).and_then(Mac::from_slice).unwrap_or(BOB);
    let src = if chaddr.is_unicast() { chaddr } else { BOB };
    let mut udp = vec![0, 68, 0, 67, 0, 0, 0, 0];
    udp.extend_from_slice(data);
    let udp_len = (udp.len() as u16).to_be_bytes();
    udp[4..6].copy_from_slice(&udp_len);
    let mut packet = ipv4_header([0; 4], [255; 4], 17, udp.len());
    packet.extend_from_slice(&udp);
    fix_ipv4(&mut packet);
    lab.inject(
        bob,
        VnetHdr::PLAIN,
        build_frame(Mac::BROADCAST, src, ETHERTYPE_IPV4, &packet),
    );
    lab.inject(
        bob,
        VnetHdr::PLAIN,
        build_frame(Mac::BROADCAST, BOB, ETHERTYPE_IPV4, &packet),
    );
    settle(&mut lab);
}

/// The first byte picks a direction, the rest is an IPv4 packet (checksums
/// fixed): out through home-gw's NAT from alice, or in from the outside
/// peer to the NAT's external address.
pub fn nat(data: &[u8]) {
    let Some((&way, packet)) = data.split_first() else {
        return;
    };
    let mut lab = Lab::new(6);
    let mut packet = packet.to_vec();
    if way & 1 == 0 {
        fix_ipv4(&mut packet);
        let alice = lab.ports.alice;
        lab.inject(
            alice,
            VnetHdr::PLAIN,
            build_frame(HOME_GW, ALICE, ETHERTYPE_IPV4, &packet),
        );
    } else {
        if packet.len() >= 20 {
            packet[16..20].copy_from_slice(&[198, 51, 100, 2]);
        }
        fix_ipv4(&mut packet);
        let peer = lab.ports.peer;
        lab.inject(
            peer,
            VnetHdr::PLAIN,
            build_frame(HOME_GW_ISP, PEER, ETHERTYPE_IPV4, &packet),
        );
    }
    settle(&mut lab);
}

/// An ICMP error (type from the first byte) quoting the rest, after a flow
/// through the NAT exists: from outside to the external address, and from
/// inside out.
pub fn icmp_quote(data: &[u8]) {
    let Some((&kind, quote)) = data.split_first() else {
        return;
    };
    let mut lab = Lab::new(7);
    let (alice, peer) = (lab.ports.alice, lab.ports.peer);
    // A flow for the quote to name: alice:5000 -> peer:53, UDP.
    let mut flow = ipv4_header([192, 168, 1, 10], [198, 51, 100, 99], 17, 8);
    flow.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
    fix_ipv4(&mut flow);
    lab.inject(
        alice,
        VnetHdr::PLAIN,
        build_frame(HOME_GW, ALICE, ETHERTYPE_IPV4, &flow),
    );
    lab.run_for(Duration::from_millis(1));
    let ty = [3u8, 4, 5, 11, 12][usize::from(kind) % 5];
    let mut icmp = vec![ty, kind >> 4, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(quote);
    for (port, src_mac, dst_mac, src, dst) in [
        (
            peer,
            PEER,
            HOME_GW_ISP,
            [198, 51, 100, 99],
            [198, 51, 100, 2],
        ),
        (alice, ALICE, HOME_GW, [192, 168, 1, 10], [198, 51, 100, 99]),
    ] {
        let mut packet = ipv4_header(src, dst, 1, icmp.len());
        packet.extend_from_slice(&icmp);
        fix_ipv4(&mut packet);
        lab.inject(
            port,
            VnetHdr::PLAIN,
            build_frame(dst_mac, src_mac, ETHERTYPE_IPV4, &packet),
        );
    }
    settle(&mut lab);
}

/// Records (see `records`) to a service host's stack directly, exercising
/// its flow classifier, listener, TIME-WAIT table and reassembly on the
/// virtual clock.
pub fn host_stack(data: &[u8]) {
    let mut config = HostConfig::new(
        "web1",
        WEB1,
        "203.0.113.11/24".parse().unwrap_or_else(|_| unreachable!()),
        Some(std::net::Ipv4Addr::new(203, 0, 113, 1)),
    );
    config.max_sockets = 64;
    let mut stack = Stack::new(config, Instant::ZERO);
    let _ = stack.tcp_listen(80, 16);
    let _ = stack.udp_bind(7);
    let mut out: Vec<Frame> = Vec::new();
    let mut now = Instant::from_secs(1);
    for (_, packet, wait) in records(data) {
        let frame = build_frame(WEB1, PEER, ETHERTYPE_IPV4, &packet);
        now = now + wait;
        stack.ingress(now, &frame, &mut out);
        stack.poll(now, &mut out);
        out.clear();
    }
    let s = stack.status();
    assert!(s.tcp_connections <= 64, "{s:?}");
}

/// The reference lab's example.com zone, for the DNS targets.
fn example_zone() -> dns::Zone {
    let lab = topology::reference_lab();
    lab.services
        .iter()
        .find_map(|s| match &s.settings {
            topology::ServiceSettings::DnsAuthoritative(d) => d
                .zones
                .iter()
                .find(|z| z.origin().to_string() == "example.com.")
                .cloned(),
            _ => None,
        })
        .unwrap_or_else(|| unreachable!("the reference lab has example.com"))
}

/// Any bytes as a query to an authoritative server, over UDP and TCP: an
/// answer that parses, or none; never a panic.
pub fn dns_authority(data: &[u8]) {
    let authority = dns::Authority::new(vec![example_zone()]);
    for transport in [dns::Transport::Udp, dns::Transport::Tcp] {
        let asker = std::net::IpAddr::from([198, 51, 100, 53]);
        if let Some(answer) = authority.answer(data, transport, asker) {
            assert!(answer.len() >= 12, "an answer has a header");
            if transport == dns::Transport::Udp {
                assert!(
                    answer.len() <= 1232,
                    "UDP answers fit the largest buffer offered"
                );
            }
        }
    }
}

/// The first byte splits the input: a client question, then the rest as
/// what an upstream server sends back to the resolver (with the right
/// server, whatever the bytes).
pub fn dns_resolver(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (question, upstream) = rest.split_at(usize::from(split).min(rest.len()));
    let now = std::time::Instant::now();
    let mut config = dns::ResolverConfig::new(vec![
        std::net::IpAddr::from([203, 0, 113, 53]),
        "2001:db8:113::53"
            .parse()
            .unwrap_or(std::net::Ipv6Addr::LOCALHOST)
            .into(),
    ]);
    // DNS64 on: an AAAA question that finds none takes the synthesis path.
    config.dns64 = "64:ff9b::/96".parse().ok();
    let mut r = dns::Resolver::new(config, [7; 32]);
    // The well-formed question asks A or AAAA, by the split byte.
    let qtype = if split & 1 == 1 { 28 } else { 1 };
    let client = std::net::IpAddr::from([192, 168, 1, 10]);
    let mut pending: Vec<dns::Action> =
        r.client_query(now, 1, client, dns::Transport::Udp, question);
    // Also a well-formed question, so that the upstream bytes are offered.
    pending.extend(r.client_query(
        now,
        2,
        client,
        dns::Transport::Tcp,
        &[
            0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm',
            b'p', b'l', b'e', 3, b'c', b'o', b'm', 0, 0, qtype, 0, 1,
        ],
    ));
    for action in pending {
        if let dns::Action::Query { token, server, .. } = action {
            let _ = r.upstream_answer(now, token, SocketAddr::from((server, dns::PORT)), upstream);
            let _ = r.upstream_timeout(now, token);
        }
    }
}

/// Any bytes as a topology file.
pub fn topology(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = topology::parse(&text, "fuzz.toml");
}

/// A 20-byte IPv4 header (checksum left to [`fix_ipv4`]).
fn ipv4_header(src: [u8; 4], dst: [u8; 4], proto: u8, payload: usize) -> Vec<u8> {
    let total = ((20 + payload).min(65_535) as u16).to_be_bytes();
    let mut h = vec![0x45, 0, total[0], total[1], 0, 1, 0x40, 0, 64, proto, 0, 0];
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h
}

/// Any bytes as a datagram from a VXLAN peer (VNI 42; the first byte
/// chooses whether the port takes offloads): what the tunnel makes of it
/// goes into the lab as a frame from alice's offloading port or bob's
/// plain one, as a tunnel port's frames would.
pub fn vxlan(data: &[u8]) {
    let Some((&choice, datagram)) = data.split_first() else {
        return;
    };
    let offload = choice & 1 == 1;
    // Sometimes a buffer the datagram fills, as no port's ever is.
    let room = if choice & 2 == 2 { 0 } else { 64 };
    let mut buf = datagram.to_vec();
    buf.resize(datagram.len() + room, 0);
    let Ok(len) = tunnel::unwrap(&mut buf, datagram.len(), 42, offload) else {
        return;
    };
    let mut lab = Lab::new(1);
    let (alice, bob) = (lab.ports.alice, lab.ports.bob);
    if offload {
        let Some(hdr) = VnetHdr::parse(&buf[..len]) else {
            panic!("an offload port's frame without its header");
        };
        lab.inject(alice, hdr, buf[wire::VNET_HDR_LEN..len].to_vec());
    } else {
        lab.inject(bob, VnetHdr::PLAIN, buf[..len].to_vec());
    }
    settle(&mut lab);
}

/// Records (as for `router`) of IPv6 packets, each with its payload
/// length and upper-layer checksums fixed behind whatever extension
/// headers it has: from alice (RA guard on her port), bob or the outside
/// peer, to the router's MAC or a multicast group, with time passing.
/// Neighbour discovery, router solicitations, forwarding, ICMPv6 errors
/// and their quotes, the firewall on home-gw's outside. Each packet also
/// goes through the one IP parser directly, whose view must agree with
/// the bytes.
pub fn ipv6(data: &[u8]) {
    let mut lab = Lab::new(14);
    for (control, mut packet, wait) in records(data) {
        if let Some(b) = packet.first_mut() {
            *b = 0x60 | (*b & 0x0f);
        }
        fix_ipv6(&mut packet);
        if let Ok(v) = wire::ip::IpView::parse(&packet, 0) {
            assert!(
                v.l3 <= v.l4 && v.l4 <= v.end && v.end <= packet.len(),
                "{v:?}"
            );
        }
        let (port, src, gw) = match control & 3 {
            0 => (lab.ports.alice, ALICE, HOME_GW),
            1 => (lab.ports.bob, BOB, HOME_GW),
            _ => (lab.ports.peer, PEER, HOME_GW_ISP),
        };
        let dst = match (control >> 2) & 3 {
            0 | 1 => gw,
            // All nodes, all routers, or the group the bytes name.
            2 => Mac([0x33, 0x33, 0, 0, 0, 1 + (control >> 4 & 1)]),
            _ => {
                let g = packet.get(36..40).unwrap_or(&[0xff, 0, 0, 1]);
                Mac([0x33, 0x33, g[0], g[1], g[2], g[3]])
            }
        };
        lab.inject(
            port,
            VnetHdr::PLAIN,
            build_frame(dst, src, ETHERTYPE_IPV6, &packet),
        );
        lab.run_for(wait);
    }
    settle(&mut lab);
}

/// Any bytes as a DHCPv6 client message from bob's link-local address to
/// the servers' group, twice (from bob, and from a station claiming the
/// same DUID), then as a SOLICIT-shaped message with the bytes as its
/// options.
pub fn dhcp6(data: &[u8]) {
    let mut lab = Lab::new(15);
    let bob = lab.ports.bob;
    let bob_ll = BOB.eui64_in(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0));
    let servers: std::net::Ipv6Addr = "ff02::1:2".parse().unwrap_or_else(|_| unreachable!());
    let mut solicit = vec![1, 0, 0, 1];
    solicit.extend_from_slice(data);
    for (message, src) in [(data, BOB), (data, PEER), (&solicit[..], BOB)] {
        let mut udp = vec![2, 34, 2, 35, 0, 0, 0, 0];
        udp.extend_from_slice(message);
        let udp_len = (udp.len() as u16).to_be_bytes();
        udp[4..6].copy_from_slice(&udp_len);
        let mut packet = vec![0x60, 0, 0, 0, 0, 0, 17, 1];
        packet.extend_from_slice(&bob_ll.octets());
        packet.extend_from_slice(&servers.octets());
        packet.extend_from_slice(&udp);
        fix_ipv6(&mut packet);
        let group = Mac([0x33, 0x33, 0, 1, 0, 2]);
        lab.inject(
            bob,
            VnetHdr::PLAIN,
            build_frame(group, src, ETHERTYPE_IPV6, &packet),
        );
        lab.run_for(Duration::from_millis(1));
    }
    settle(&mut lab);
}
