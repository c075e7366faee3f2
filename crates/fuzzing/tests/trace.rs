//! Traces in the simulator: a frame's path through a small Internet,
//! every hop named, recorded as `scratchnet trace` shows it.

use fabric::{Filter, TraceRecord, TraceSink, What};
use fuzzing::fixup::fix_ipv4;
use fuzzing::lab::{Lab, ALICE, HOME_GW};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wire::ether::build_frame;
use wire::{Mac, VnetHdr};

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<TraceRecord>>>);

impl TraceSink for Recorder {
    fn record(&mut self, record: &TraceRecord) {
        self.0.lock().expect("recorder").push(record.clone());
    }
    fn is_open(&self) -> bool {
        true
    }
}

fn syn(sport: u16, dst: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 168, 1, 10];
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&[
        0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    fix_ipv4(&mut p);
    build_frame(HOME_GW, ALICE, 0x0800, &p)
}

fn arp_for_gateway() -> Vec<u8> {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&ALICE.0);
    arp.extend_from_slice(&[192, 168, 1, 10, 0, 0, 0, 0, 0, 0, 192, 168, 1, 1]);
    build_frame(Mac::BROADCAST, ALICE, 0x0806, &arp)
}

#[test]
fn a_traced_syn_names_every_hop_from_alice_to_web1() {
    let mut lab = Lab::new(3);
    let alice = lab.ports.alice;
    // Warm the neighbour caches with a first connection.
    lab.inject(alice, VnetHdr::PLAIN, arp_for_gateway());
    lab.inject(alice, VnetHdr::PLAIN, syn(40000, [203, 0, 113, 11]));
    lab.run_for(Duration::from_millis(50));

    let rec = Recorder::default();
    let filter = Filter::parse("tcp and dst port 80").unwrap();
    assert!(lab
        .sim
        .fabric_mut()
        .add_trace(Some(alice), filter, Some(1), Box::new(rec.clone())));
    lab.inject(alice, VnetHdr::PLAIN, syn(40112, [203, 0, 113, 11]));
    lab.inject(alice, VnetHdr::PLAIN, syn(40113, [203, 0, 113, 11]));
    lab.run_for(Duration::from_millis(50));

    let records = rec.0.lock().unwrap().clone();
    assert_eq!(records.len(), 1, "one frame asked for: {records:#?}");
    let r = &records[0];
    assert_eq!(r.from, "alice");
    assert_eq!(r.summary, "TCP 192.168.1.10:40112 > 203.0.113.11:80 [S]");
    let path: Vec<String> = r.events.iter().map(|e| e.to_string()).collect();
    let expected = [
        "switch home           to home-gw.home (MAC table)",
        "router home-gw        route 0.0.0.0/0 via 198.51.100.1 (isp); ttl 64->63",
        "nat    home-gw        src 192.168.1.10:40112 -> 198.51.100.2:40112 (new mapping)",
        "switch isp            to isp-gw.isp (MAC table)",
        "router isp-gw         route 203.0.113.0/24 connected (dc); ttl 63->62",
        "switch dc             to web1 (MAC table)",
        "out    web1           delivered",
    ];
    assert_eq!(path, expected, "{}", r);
    assert!(matches!(r.events[6].what, What::Delivered { egress: None }));
    // JSON for tools.
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["events"][2]["decision"], "nat");
    assert_eq!(json["events"][2]["new_mapping"], true);
}

#[test]
fn an_expired_ttl_is_traced_with_the_icmp_error_it_caused() {
    let mut lab = Lab::new(4);
    let alice = lab.ports.alice;
    lab.inject(alice, VnetHdr::PLAIN, arp_for_gateway());
    lab.run_for(Duration::from_millis(10));
    let rec = Recorder::default();
    assert!(lab
        .sim
        .fabric_mut()
        .add_trace(None, Filter::All, None, Box::new(rec.clone())));
    let mut f = syn(40200, [203, 0, 113, 11]);
    f[14 + 8] = 1; // TTL 1
    fix_ipv4(&mut f[14..]);
    lab.inject(alice, VnetHdr::PLAIN, f);
    lab.run_for(Duration::from_millis(10));
    let records = rec.0.lock().unwrap().clone();
    let first = &records[0];
    let text = first.to_string();
    assert!(
        text.contains("icmp   home-gw        ICMP time exceeded to 192.168.1.10"),
        "{text}"
    );
    assert!(
        text.contains("router home-gw        drop: ttl-expired"),
        "{text}"
    );
    let answer = records
        .iter()
        .find(|r| r.cause == Some(first.frame))
        .unwrap_or_else(|| panic!("no answer in {records:#?}"));
    assert_eq!(answer.from, "home-gw");
    assert!(
        answer
            .summary
            .starts_with("ICMP 192.168.1.1 > 192.168.1.10 type 11"),
        "{}",
        answer.summary
    );
    assert!(
        answer
            .to_string()
            .contains("out    alice          delivered"),
        "{answer}"
    );
}

#[test]
fn switch_drops_are_traced_with_their_reason() {
    let mut lab = Lab::new(5);
    let alice = lab.ports.alice;
    let rec = Recorder::default();
    assert!(lab
        .sim
        .fabric_mut()
        .add_trace(None, Filter::All, None, Box::new(rec.clone())));
    // An EtherType that is neither a length nor a type.
    let mut odd = build_frame(HOME_GW, ALICE, 0x0800, &[0; 46]);
    odd[12..14].copy_from_slice(&1510u16.to_be_bytes());
    lab.inject(alice, VnetHdr::PLAIN, odd);
    // A VLAN alice's trunk does not carry.
    let mut tagged = build_frame(HOME_GW, ALICE, 0x0800, &[0; 46]);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 30]);
    lab.inject(alice, VnetHdr::PLAIN, tagged);
    lab.run_for(Duration::from_millis(5));
    let reasons: Vec<_> = rec
        .0
        .lock()
        .expect("recorder")
        .iter()
        .flat_map(|r| r.events.clone())
        .filter_map(|e| match e.what {
            What::SwitchDrop { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, ["bad-ethertype", "vlan-not-allowed"]);
}

#[test]
fn a_super_frame_is_traced_as_cut_for_a_port_without_offloads() {
    let mut lab = Lab::new(6);
    let alice = lab.ports.alice;
    lab.inject(alice, VnetHdr::PLAIN, arp_for_gateway());
    lab.inject(alice, VnetHdr::PLAIN, syn(40000, [203, 0, 113, 11]));
    lab.run_for(Duration::from_millis(50));
    let rec = Recorder::default();
    assert!(lab.sim.fabric_mut().add_trace(
        Some(alice),
        Filter::All,
        Some(1),
        Box::new(rec.clone())
    ));
    // 3000 bytes of a TCP stream as one super-frame, as alice's kernel
    // hands it over with TSO: GSO TCPv4, MSS 1448, partial checksum.
    let mut p = vec![
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 168, 1, 10, 203, 0, 113, 11,
    ];
    p.extend_from_slice(&[
        0x9c, 0x40, 0, 80, 0, 0, 0, 2, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    p.extend_from_slice(&[7; 3000]);
    let total = (p.len() as u16).to_be_bytes();
    p[2..4].copy_from_slice(&total);
    fix_ipv4(&mut p);
    let pseudo = wire::checksum::pseudo_header(&p[12..16], &p[16..20], 6, (p.len() - 20) as u32);
    let partial = wire::checksum::fold(pseudo).to_be_bytes();
    p[36..38].copy_from_slice(&partial);
    let mut raw = [0u8; 10];
    raw[0] = 1; // NEEDS_CSUM
    raw[1] = 1; // TCPV4
    raw[4..6].copy_from_slice(&1448u16.to_ne_bytes());
    raw[6..8].copy_from_slice(&34u16.to_ne_bytes());
    raw[8..10].copy_from_slice(&16u16.to_ne_bytes());
    let hdr = VnetHdr::parse(&raw).unwrap();
    lab.inject(alice, hdr, build_frame(HOME_GW, ALICE, 0x0800, &p));
    lab.run_for(Duration::from_millis(10));
    let records = rec.0.lock().expect("recorder").clone();
    let text: String = records.iter().map(|r| r.to_string()).collect();
    assert!(
        text.contains("out    web1           delivered, cut into 3 segments of 1448 bytes (the port takes no offloads)"),
        "{text}"
    );
}
