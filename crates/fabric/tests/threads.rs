//! The fabric run from several threads at once, as the runtime's readers
//! run it: frames on different switches forward side by side, each
//! delivered once to its own port, while another thread reads status.

use fabric::{Batch, Fabric, PortId};
use std::sync::atomic::{AtomicBool, Ordering};
use switch::{PortConfig, SwitchConfig};
use wire::ether::{build_frame, ETHERTYPE_IPV4};
use wire::{Instant, Mac};

const FRAMES: u32 = 20_000;

fn mac(n: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0, n])
}

/// Sends `FRAMES` frames from `from` (MAC `a`) to `to` (MAC `b`), which
/// announced itself first; returns where each delivery went.
fn talk(f: &Fabric, from: PortId, to: PortId, a: u8, b: u8) -> Vec<PortId> {
    let mut batch = Batch::new();
    let mut send = |port: PortId, data: &[u8]| {
        let mut frame = batch.take_frame();
        frame.extend_from_slice(data);
        f.ingress(Instant::from_micros(1), port, frame, &mut batch);
        batch
            .deliveries()
            .iter()
            .map(|d| d.port)
            .collect::<Vec<_>>()
    };
    send(
        to,
        &build_frame(Mac::BROADCAST, mac(b), ETHERTYPE_IPV4, &[0; 46]),
    );
    let mut went = Vec::new();
    for i in 0..FRAMES {
        let mut payload = [0u8; 46];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        went.extend(send(
            from,
            &build_frame(mac(b), mac(a), ETHERTYPE_IPV4, &payload),
        ));
    }
    went
}

#[test]
fn two_switches_forward_from_two_threads_while_status_is_read() {
    let mut f = Fabric::new();
    let mut ports = Vec::new();
    for s in 0..2 {
        let sw = f.add_switch(&format!("seg{s}"), SwitchConfig::default());
        for h in 0..2 {
            let name = format!("seg{s}-h{h}");
            ports.push(
                f.add_port(&name, sw, PortConfig::access(1), false)
                    .expect("port"),
            );
        }
    }
    let done = AtomicBool::new(false);
    let (first, second, reads) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) {
                let status = f.status(Instant::from_micros(1));
                assert_eq!(status.switches.len(), 2);
                reads += 1;
            }
            reads
        });
        let a = s.spawn(|| talk(&f, ports[0], ports[1], 1, 2));
        let b = s.spawn(|| talk(&f, ports[2], ports[3], 3, 4));
        let (a, b) = (a.join().expect("first"), b.join().expect("second"));
        done.store(true, Ordering::Relaxed);
        (a, b, reader.join().expect("reader"))
    });
    assert_eq!(first, vec![ports[1]; FRAMES as usize]);
    assert_eq!(second, vec![ports[3]; FRAMES as usize]);
    assert!(reads > 0);
    let status = f.status(Instant::from_micros(1));
    for (sw, to) in status.switches.iter().zip(["seg0-h1", "seg1-h1"]) {
        let port = sw.ports.iter().find(|p| p.name == to).expect("port");
        assert_eq!(port.tx_frames, u64::from(FRAMES), "{to}");
    }
}
