//! The decisions a router records for a trace, frame by frame.

use super::nat_behaviour::{nat_lab, udp_from, EXT};
use super::*;

fn traced(lab: &mut Lab, packet: Vec<u8>) -> Vec<Decision> {
    lab.r.set_tracing(true);
    lab.send_from_a(packet);
    lab.r.take_decisions()
}

#[test]
fn a_natted_packet_records_its_route_and_rewrite() {
    let mut lab = nat_lab(|_| {});
    let d = traced(&mut lab, udp_from("10.0.1.10", 5000, "192.0.2.1", 53));
    assert_eq!(
        d,
        [
            Decision::Route {
                dest: "0.0.0.0/0".parse().expect("net"),
                via: Some(ip("10.0.2.254").into()),
                iface: "wan".into(),
                ttl: 63,
            },
            Decision::Nat {
                outbound: true,
                proto: Proto::Udp,
                from: "10.0.1.10:5000".parse().expect("addr"),
                to: format!("{EXT}:5000").parse().expect("addr"),
                new_mapping: true,
            },
        ]
    );
    assert_eq!(
        d[0].to_string(),
        "route 0.0.0.0/0 via 10.0.2.254 (wan); ttl 64->63"
    );
    assert_eq!(
        d[1].to_string(),
        format!("src 10.0.1.10:5000 -> {EXT}:5000 (new mapping)")
    );
    // The same flow again: no new mapping.
    let d = traced(&mut lab, udp_from("10.0.1.10", 5000, "192.0.2.1", 53));
    assert!(
        matches!(
            d[1],
            Decision::Nat {
                new_mapping: false,
                ..
            }
        ),
        "{d:?}"
    );
}

#[test]
fn drops_icmp_errors_and_arp_waits_are_recorded() {
    let mut lab = Lab::new(1500);
    lab.learn_neighbours();
    let expired = ipv4("10.0.1.10", "10.0.2.20", 17, 1, false, &udp(1, 2, b"x"));
    assert_eq!(
        traced(&mut lab, expired),
        [
            Decision::IcmpError {
                error: "time exceeded",
                to: ip("10.0.1.10").into(),
                sent: true
            },
            Decision::Drop {
                reason: "ttl-expired"
            },
        ]
    );
    let unknown = ipv4("10.0.1.10", "10.0.2.77", 17, 64, false, &udp(1, 2, b"x"));
    let d = traced(&mut lab, unknown);
    assert!(d.contains(&Decision::ArpWait {
        next_hop: ip("10.0.2.77").into(),
        iface: "wan".into()
    }));
    let martian = ipv4("127.0.0.1", "10.0.2.20", 17, 64, false, &udp(1, 2, b"x"));
    assert_eq!(
        traced(&mut lab, martian),
        [Decision::Drop { reason: "martian" }]
    );
    // Without a trace nothing is recorded.
    lab.r.set_tracing(false);
    lab.send_from_a(ipv4(
        "10.0.1.10",
        "10.0.2.20",
        17,
        1,
        false,
        &udp(1, 2, b"x"),
    ));
    assert!(lab.r.take_decisions().is_empty());
}
