//! The fuzz targets on stable: every committed corpus entry, then seeded
//! mutations of the corpus for a fixed time per target
//! (`FUZZ_SECONDS`, default 3), and the structure-aware fuzzer of a whole
//! simulated lab (`FUZZ_LAB_FRAMES`, default 60,000). A failure prints the
//! input that caused it, to add to the corpus once fixed.

use fuzzing::{corpus, sim, targets::TARGETS};
use std::time::{Duration, Instant};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one input, saying which it was if it panics.
fn run_one(name: &str, target: fn(&[u8]), input: &[u8], what: &str) {
    let r = std::panic::catch_unwind(|| target(input));
    if let Err(e) = r {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "target {name}, {what}, failed: {msg}\ninput ({} bytes): {input:02x?}",
            input.len()
        );
    }
}

#[test]
fn every_target_runs_its_corpus_and_seeded_mutations() {
    let budget = Duration::from_secs(env_number("FUZZ_SECONDS", 3));
    for (i, &(name, target)) in TARGETS.iter().enumerate() {
        let seeds = corpus::load(name);
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} is empty");
        for (n, input) in seeds.iter().enumerate() {
            run_one(name, target, input, &format!("corpus entry {n}"));
        }
        let mut rng = corpus::Rng::new(0x5eed + i as u64);
        let start = Instant::now();
        let mut runs = 0u64;
        while start.elapsed() < budget {
            let input = corpus::mutate(&mut rng, &seeds);
            run_one(name, target, &input, &format!("mutation {runs}"));
            runs += 1;
        }
        eprintln!("{name}: {} corpus entries, {runs} mutations", seeds.len());
    }
}

#[test]
fn a_whole_lab_survives_seeded_hostile_frames_with_its_tables_in_bounds() {
    let frames = env_number("FUZZ_LAB_FRAMES", 60_000) as usize;
    for seed in [1, 2] {
        let outcome = sim::run(seed, frames / 2).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        eprintln!("seed {seed}: {outcome:?}");
        assert_eq!(outcome.frames, frames / 2);
        // The frames got past the checksums to every layer.
        assert!(outcome.routed > outcome.frames as u64 / 4, "{outcome:?}");
        assert!(outcome.translated > 100, "{outcome:?}");
        assert!(outcome.dhcp_requests > 100, "{outcome:?}");
        assert!(outcome.served > 100, "{outcome:?}");
    }
}

#[test]
fn the_reported_inputs_leave_the_simulated_lab_working() {
    use fuzzing::fixup::fix_ipv4;
    use fuzzing::lab::{Lab, HOME_GW, HOME_GW_ISP};
    use wire::ether::build_frame;
    use wire::{Mac, VnetHdr};
    let mut lab = Lab::new(11);
    // A DHCP message with hardware length 17 from bob, as an unprivileged
    // UDP socket sends it.
    let bob = Mac([2, 0x53, 0, 0, 1, 20]);
    let mut dhcp = vec![
        0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 192, 168, 1, 20, 192, 168, 1, 1,
    ];
    dhcp.extend_from_slice(&[0, 68, 0, 67, 0, 248, 0, 0, 1, 1, 17]);
    dhcp.extend_from_slice(&[0; 237]);
    let len = (dhcp.len() as u16).to_be_bytes();
    dhcp[2..4].copy_from_slice(&len);
    fix_ipv4(&mut dhcp);
    let bob_port = lab.ports.bob;
    lab.inject(
        bob_port,
        VnetHdr::PLAIN,
        build_frame(HOME_GW, bob, 0x0800, &dhcp),
    );
    // An ICMP error from outside quoting an IPv4 header with IHL 0, on the
    // port of a forward (0x4000 = 16384).
    let quote = [
        0x40, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 198, 51, 100, 2, 198, 51, 100, 99, 0x40, 0, 0,
        53, 0, 8, 0, 0,
    ];
    let mut icmp = vec![
        0x45, 0, 0, 0, 0, 1, 0, 0, 64, 1, 0, 0, 198, 51, 100, 99, 198, 51, 100, 2,
    ];
    icmp.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
    icmp.extend_from_slice(&quote);
    let len = (icmp.len() as u16).to_be_bytes();
    icmp[2..4].copy_from_slice(&len);
    fix_ipv4(&mut icmp);
    let peer = lab.ports.peer;
    let outsider = Mac([2, 0x53, 0, 0, 2, 99]);
    lab.inject(
        peer,
        VnetHdr::PLAIN,
        build_frame(HOME_GW_ISP, outsider, 0x0800, &icmp),
    );
    lab.run_for(std::time::Duration::from_millis(10));
    lab.check().unwrap();
    let status = lab.sim.fabric().status(lab.now());
    let gw = &status.routers[0];
    assert_eq!(gw.dhcp[0].counters.bad_hardware_address, 1);
    let nat = gw.nat.as_ref().unwrap();
    assert_eq!(nat.counters.dropped_icmp_unknown_flow, 1);
    fuzzing::sim::still_works(&mut lab).unwrap();
}
