//! The structure-aware fuzzer of a whole lab: seeded frames of every kind
//! a hostile host sends, each with valid checksums, some with valid and
//! some with invalid virtio-net headers, through switch, routers, NAT,
//! DHCP and a service host ([`Lab`]); the lab's invariants are checked
//! after every burst, and the lab must still work at the end.

use crate::corpus::Rng;
use crate::fixup::fix_frame;
use crate::lab::{Lab, ALICE, HOME_GW, HOME_GW_ISP};
use std::time::Duration;
use wire::ether::build_frame;
use wire::{Mac, VnetHdr};

/// What a run did, and how deep its frames reached.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub frames: usize,
    pub bursts: usize,
    /// Frames home-gw received.
    pub routed: u64,
    /// Packets home-gw's NAT translated, both ways.
    pub translated: u64,
    /// DHCP messages home-gw's server looked at.
    pub dhcp_requests: u64,
    /// Frames web1's stack received.
    pub served: u64,
}

const KINDS: usize = 10;

/// Sends `frames` seeded hostile frames through a fresh lab, checking the
/// invariants after each burst of 100 and that the lab still answers at
/// the end.
pub fn run(seed: u64, frames: usize) -> Result<Outcome, String> {
    let mut lab = Lab::new(seed);
    let mut rng = Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut outcome = Outcome::default();
    for i in 0..frames {
        let (from, hdr, frame) = hostile_frame(&mut rng, &lab);
        lab.inject(from, hdr, frame);
        outcome.frames += 1;
        if i % 100 == 99 {
            let wait = [1, 10, 1000, 30_000][rng.below(4)];
            lab.run_for(Duration::from_millis(wait));
            lab.check()
                .map_err(|e| format!("after {} frames: {e}", i + 1))?;
            outcome.bursts += 1;
        }
    }
    lab.run_for(Duration::from_secs(120));
    lab.check()?;
    let status = lab.sim.fabric().status(lab.now());
    let home_gw = &status.routers[0];
    outcome.routed = home_gw.counters.received;
    if let Some(nat) = &home_gw.nat {
        outcome.translated = nat.counters.translated_out + nat.counters.translated_in;
    }
    outcome.dhcp_requests = home_gw.dhcp.iter().map(|d| d.counters.requests).sum();
    outcome.served = lab.web.status().counters.rx_frames;
    still_works(&mut lab)?;
    Ok(outcome)
}

/// alice still reaches web1 through the NAT: ARP, then a TCP SYN answered
/// by a SYN-ACK.
pub fn still_works(lab: &mut Lab) -> Result<(), String> {
    let alice = lab.ports.alice;
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&ALICE.0);
    arp.extend_from_slice(&[192, 168, 1, 10]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[192, 168, 1, 1]);
    lab.inject(
        alice,
        VnetHdr::PLAIN,
        build_frame(Mac::BROADCAST, ALICE, 0x0806, &arp),
    );
    let syn = tcp([192, 168, 1, 10], [203, 0, 113, 11], 40_000, 80, 0x02, &[]);
    lab.inject(
        alice,
        VnetHdr::PLAIN,
        build_frame(HOME_GW, ALICE, 0x0800, &syn),
    );
    let before = lab.web.status().counters.tcp_accepted + lab.web.status().counters.backlog_full;
    let mut answered = false;
    for _ in 0..20 {
        lab.run_for(Duration::from_millis(50));
        let s = lab.web.status();
        if s.counters.rx_frames > 0 && s.counters.tx_frames > 0 {
            answered = true;
        }
        if s.counters.tcp_accepted + s.counters.backlog_full > before || answered {
            break;
        }
    }
    let status = lab.sim.fabric().status(lab.now());
    let home_gw = &status.routers[0];
    if home_gw
        .arp
        .iter()
        .all(|a| a.ip != std::net::Ipv4Addr::new(192, 168, 1, 10))
    {
        return Err("home-gw no longer learns alice by ARP".into());
    }
    if !answered {
        return Err(format!("web1 never answered: {:?}", lab.web.status()));
    }
    Ok(())
}

/// One frame a hostile host would send, from alice, bob or the outside.
fn hostile_frame(rng: &mut Rng, lab: &Lab) -> (fabric::PortId, VnetHdr, Vec<u8>) {
    let p = lab.ports;
    let inside = rng.below(3) != 0;
    let (port, src_mac, gw) = if inside {
        let port = if rng.chance(2) { p.alice } else { p.bob };
        (port, Mac([2, 0x66, 0, 0, rng.byte(), rng.byte()]), HOME_GW)
    } else {
        (
            p.peer,
            Mac([2, 0x77, 0, 0, rng.byte(), rng.byte()]),
            HOME_GW_ISP,
        )
    };
    let src_ip = if inside {
        [192, 168, 1, rng.byte()]
    } else {
        [198, 51, 100, rng.byte()]
    };
    let target = match rng.below(5) {
        0 => [203, 0, 113, 11],
        1 => [198, 51, 100, 2],
        2 => [192, 168, 1, rng.byte()],
        3 => [203, 0, 113, rng.byte()],
        _ => [rng.byte(), rng.byte(), rng.byte(), rng.byte()],
    };
    let (mut frame, ethertype_ip) = match rng.below(KINDS) {
        0 => (dhcp(rng, src_mac), true),
        1 => (arp_frame(rng, src_mac, inside), false),
        2 | 3 => {
            let flags = [0x02, 0x10, 0x12, 0x11, 0x04, 0x18, rng.byte()][rng.below(7)];
            let payload = rng.some_bytes(200);
            let dport = [80, 8080, 7, rng.below(65536) as u16][rng.below(4)];
            let seg = tcp(
                src_ip,
                target,
                rng.below(65536) as u16,
                dport,
                flags,
                &payload,
            );
            (build_frame(gw, src_mac, 0x0800, &seg), true)
        }
        4 => {
            let dport = [7, 53, 16384, 67, rng.below(65536) as u16][rng.below(5)];
            let payload = rng.some_bytes(1400);
            let dgram = udp(src_ip, target, rng.below(65536) as u16, dport, &payload);
            (build_frame(gw, src_mac, 0x0800, &dgram), true)
        }
        5 => (icmp_error(rng, src_ip, target, gw, src_mac), true),
        6 => {
            // IP options of any shape, and header lengths that lie.
            let mut packet = udp(src_ip, target, 1000, 7, &rng.some_bytes(64));
            let words = rng.below(11);
            let opts = rng.bytes(4 * words);
            packet.splice(20..20, opts.iter().copied());
            let ihl = if rng.chance(3) {
                rng.below(16)
            } else {
                5 + opts.len() / 4
            };
            packet[0] = 0x40 | (ihl as u8 & 0x0f);
            if rng.chance(3) {
                let total = rng.below(65536) as u16;
                packet[2..4].copy_from_slice(&total.to_be_bytes());
            }
            (build_frame(gw, src_mac, 0x0800, &packet), true)
        }
        7 => {
            // Fragments toward web1: storms of new ids and odd offsets.
            let blocks = rng.below(60);
            let mut packet = udp(src_ip, [203, 0, 113, 11], 1000, 7, &rng.bytes(8 * blocks));
            packet[4..6].copy_from_slice(&(rng.below(65536) as u16).to_be_bytes());
            let offset = (rng.below(8192) as u16) | if rng.chance(2) { 0x2000 } else { 0 };
            packet[6..8].copy_from_slice(&offset.to_be_bytes());
            (build_frame(gw, src_mac, 0x0800, &packet), true)
        }
        8 => {
            // 802.1Q on alice's trunk: allowed, not allowed, stacked.
            let payload = udp(src_ip, target, 1, 7, &rng.some_bytes(100));
            let mut f = build_frame(gw, src_mac, 0x0800, &payload);
            for _ in 0..1 + rng.below(2) {
                let vid = [10u16, 20, 30, rng.below(4096) as u16][rng.below(4)];
                let tag = [0x81, 0x00, (vid >> 8) as u8, vid as u8];
                f.splice(12..12, tag);
            }
            (f, true)
        }
        _ => {
            let mut f = build_frame(gw, src_mac, rng.below(65536) as u16, &rng.some_bytes(200));
            f.truncate(rng.below(f.len() + 1));
            (f, false)
        }
    };
    if ethertype_ip {
        fix_frame(&mut frame);
    }
    let hdr = if port == p.alice && rng.chance(4) {
        virtio_header(rng, &frame)
    } else {
        VnetHdr::PLAIN
    };
    (port, hdr, frame)
}

/// A virtio-net header for alice's offloading port: a plausible one (a
/// partial checksum or a TCP super-frame) or garbage.
fn virtio_header(rng: &mut Rng, frame: &[u8]) -> VnetHdr {
    let mut raw = [0u8; wire::VNET_HDR_LEN];
    match rng.below(3) {
        0 => {
            raw[0] = 1; // NEEDS_CSUM
            raw[6..8].copy_from_slice(&34u16.to_ne_bytes());
            raw[8..10].copy_from_slice(&[16u16, 6][rng.below(2)].to_ne_bytes());
        }
        1 => {
            raw[0] = 1;
            raw[1] = [1, 4, 5, 3][rng.below(4)];
            raw[4..6].copy_from_slice(&(rng.below(1500) as u16).to_ne_bytes());
            raw[6..8]
                .copy_from_slice(&[34u16, 54, 20, frame.len() as u16][rng.below(4)].to_ne_bytes());
            raw[8..10].copy_from_slice(&16u16.to_ne_bytes());
        }
        _ => raw.iter_mut().for_each(|b| *b = rng.byte()),
    }
    VnetHdr::parse(&raw).unwrap_or(VnetHdr::PLAIN)
}

fn dhcp(rng: &mut Rng, src: Mac) -> Vec<u8> {
    let mut m = vec![0u8; 240];
    m[0] = if rng.chance(8) { rng.byte() } else { 1 };
    m[1] = if rng.chance(4) { rng.byte() } else { 1 };
    m[2] = if rng.chance(3) { rng.byte() } else { 6 };
    m[4..8].copy_from_slice(&rng.bytes(4));
    let chaddr = if rng.chance(4) {
        Mac([2, 1, 2, 3, 4, rng.byte()])
    } else {
        src
    };
    m[28..34].copy_from_slice(&chaddr.0);
    m[236..240].copy_from_slice(&[99, 130, 83, 99]);
    let kind = [1u8, 3, 4, 7, 8, rng.byte()][rng.below(6)];
    m.extend_from_slice(&[53, 1, kind]);
    if rng.chance(2) {
        m.extend_from_slice(&[50, 4, 192, 168, 1, 100 + rng.below(100) as u8]);
    }
    for _ in 0..rng.below(4) {
        let code = rng.byte();
        let len = rng.below(20);
        m.push(code);
        m.push(if rng.chance(5) { rng.byte() } else { len as u8 });
        m.extend_from_slice(&rng.bytes(len));
    }
    m.push(255);
    let dgram = udp([0; 4], [255; 4], 68, 67, &m);
    build_frame(Mac::BROADCAST, src, 0x0800, &dgram)
}

fn arp_frame(rng: &mut Rng, src: Mac, inside: bool) -> Vec<u8> {
    let mut body = vec![0, 1, 8, 0, 6, 4, 0, if rng.chance(2) { 1 } else { 2 }];
    body.extend_from_slice(&src.0);
    let spa = match rng.below(3) {
        0 if inside => [192, 168, 1, rng.byte()],
        0 => [198, 51, 100, rng.byte()],
        1 => [10, rng.byte(), rng.byte(), rng.byte()],
        _ => [0, 0, 0, 0],
    };
    body.extend_from_slice(&spa);
    body.extend_from_slice(&[0; 6]);
    body.extend_from_slice(&if inside {
        [192, 168, 1, 1]
    } else {
        [198, 51, 100, 2]
    });
    if rng.chance(5) {
        body[4] = rng.byte();
        body[5] = rng.byte();
    }
    body.truncate(8 + rng.below(30));
    build_frame(Mac::BROADCAST, src, 0x0806, &body)
}

fn icmp_error(rng: &mut Rng, src: [u8; 4], dst: [u8; 4], gw: Mac, mac: Mac) -> Vec<u8> {
    let mut quote = udp(
        [198, 51, 100, 2],
        [203, 0, 113, 11],
        16384,
        53,
        &rng.bytes(8),
    );
    if rng.chance(2) {
        quote[0] = 0x40 | (rng.byte() & 0x0f);
    }
    quote.truncate(rng.below(quote.len() + 1));
    let mut icmp = vec![
        [3u8, 11, 12, 4, 5][rng.below(5)],
        rng.byte() % 16,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    icmp.extend_from_slice(&quote);
    let mut packet = ipv4(src, dst, 1, icmp.len());
    packet.extend_from_slice(&icmp);
    build_frame(gw, mac, 0x0800, &packet)
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: usize) -> Vec<u8> {
    let total = ((20 + payload).min(65_535) as u16).to_be_bytes();
    let mut h = vec![0x45, 0, total[0], total[1], 0, 1, 0, 0, 64, proto, 0, 0];
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h
}

fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = ipv4(src, dst, 6, 20 + payload.len());
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&1000u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    p.extend_from_slice(&t);
    p.extend_from_slice(payload);
    crate::fixup::fix_ipv4(&mut p);
    p
}

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = ipv4(src, dst, 17, 8 + payload.len());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()).min(65_535) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    crate::fixup::fix_ipv4(&mut p);
    p
}
