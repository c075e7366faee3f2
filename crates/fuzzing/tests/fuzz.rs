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
