//! Link impairment on the virtual clock: the statistics match the
//! settings for a fixed seed, delays are exact, the rate limit holds and
//! its queue drops at the tail, a link that is down carries nothing.

use fabric::{Fabric, Filter, LinkCounters, LinkParams, PortId, Recorded, Sim};
use std::time::Duration;
use switch::{PortConfig, SwitchConfig};
use wire::ether::{build_frame, ETHERTYPE_IPV4};
use wire::{Impairment, Mac};

fn mac(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

/// Two hosts on one switch, h0's link impaired as `settings` say; the
/// simulator's own links are perfect and take 10 µs.
fn pair(seed: u64, settings: &[(&str, &str)]) -> (Sim, PortId, PortId) {
    let mut f = Fabric::new();
    f.set_seed(seed);
    let sw = f.add_switch("lan", SwitchConfig::default());
    let h0 = f
        .add_port("h0", sw, PortConfig::access(1), false)
        .expect("h0");
    let h1 = f
        .add_port("h1", sw, PortConfig::access(1), false)
        .expect("h1");
    let mut imp = Impairment::default();
    for (k, v) in settings {
        imp.set(k, v).expect("setting");
    }
    imp.check().expect("settings that work");
    f.set_link(h0, imp, true).expect("link");
    let link = LinkParams {
        latency: Duration::from_micros(10),
        jitter: Duration::ZERO,
        loss: 0.0,
    };
    (Sim::new(f, seed, link), h0, h1)
}

/// A frame from h0 to h1 numbered `i`, `len` bytes long.
fn numbered(i: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len - 14];
    p[..4].copy_from_slice(&i.to_be_bytes());
    build_frame(mac(1), mac(0), ETHERTYPE_IPV4, &p)
}

fn number_of(frame: &[u8]) -> u32 {
    u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]])
}

fn counters(sim: &Sim, port: &str) -> LinkCounters {
    let status = sim.fabric().status(sim.now());
    status
        .port(port)
        .and_then(|p| p.link.clone())
        .expect("link")
        .counters
}

/// Sends `n` frames from h0, one every `gap`, and runs until all arrived;
/// returns their numbers in the order h1 got them.
fn stream(sim: &mut Sim, h0: PortId, h1: PortId, n: u32, gap: Duration) -> Vec<u32> {
    for i in 0..n {
        sim.send(h0, numbered(i, 100));
        sim.run_for(gap);
    }
    sim.run_until_idle();
    sim.take_received(h1)
        .iter()
        .map(|r| number_of(&r.frame))
        .collect()
}

#[test]
fn loss_duplication_and_reordering_match_the_settings_and_replay_for_a_seed() {
    let settings = [
        ("delay", "10ms"),
        ("loss", "10%"),
        ("duplicate", "5%"),
        ("reorder", "20%"),
    ];
    let n = 20_000;
    let (mut sim, h0, h1) = pair(42, &settings);
    let got = stream(&mut sim, h0, h1, n, Duration::from_micros(100));
    let c = counters(&sim, "h0");
    let share = |k: u64, of: u32| k as f64 / f64::from(of);
    // Each draw is a Bernoulli trial: 20,000 of them put the share within
    // a percentage point of the setting (more than 4 standard deviations).
    let sent = n as u64 + c.duplicated;
    assert!((share(c.duplicated, n) - 0.05).abs() < 0.01, "{c:?}");
    assert!((c.lost as f64 / sent as f64 - 0.10).abs() < 0.01, "{c:?}");
    let kept = sent - c.lost;
    assert!(
        (c.reordered as f64 / kept as f64 - 0.20).abs() < 0.015,
        "{c:?}"
    );
    assert_eq!(got.len() as u64, kept, "every frame not lost arrives");
    assert_eq!(c.delayed + c.reordered, kept);
    // Reordered frames overtake those held: the order is not the sent one.
    let overtaken = got.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(overtaken > 1000, "{overtaken}");
    let twice = got.len() - {
        let mut unique = got.clone();
        unique.sort_unstable();
        unique.dedup();
        unique.len()
    };
    assert!(twice > 500, "duplicates arrive: {twice}");

    // The same seed, the same fates, frame for frame; another seed differs.
    let (mut again, a0, a1) = pair(42, &settings);
    assert_eq!(
        got,
        stream(&mut again, a0, a1, n, Duration::from_micros(100))
    );
    let (mut other, o0, o1) = pair(43, &settings);
    assert_ne!(
        got,
        stream(&mut other, o0, o1, n, Duration::from_micros(100))
    );
}

#[test]
fn a_delay_is_exact_and_jitter_stays_within_its_bounds() {
    let (mut sim, h0, h1) = pair(1, &[("delay", "30ms")]);
    let trace = Recorded::default();
    sim.fabric_mut()
        .add_trace(Some(h0), Filter::All, None, Box::new(trace.clone()));
    sim.send(h0, numbered(0, 100));
    // Two simulated hops of 10 µs, and the link's 30 ms.
    sim.run_for(Duration::from_micros(30_019));
    assert!(sim.take_received(h1).is_empty(), "never early");
    sim.run_for(Duration::from_micros(1));
    assert_eq!(sim.take_received(h1).len(), 1, "on time to the microsecond");
    let said: Vec<String> = trace.take().iter().map(ToString::to_string).collect();
    assert!(
        said[0].contains("link   h0             delayed 30.0 ms"),
        "{said:?}"
    );
    assert!(said[1].starts_with("#1 (continued)"), "{said:?}");
    assert!(said[1].contains("flooded to h1"), "{said:?}");

    let (mut sim, h0, h1) = pair(1, &[("delay", "30ms"), ("jitter", "10ms")]);
    let mut first = Vec::new();
    for i in 0..200 {
        sim.send(h0, numbered(i, 100));
        let start = sim.now();
        while sim.take_received(h1).is_empty() {
            sim.run_for(Duration::from_micros(100));
            assert!(sim.now() - start < Duration::from_millis(41), "late");
        }
        first.push(sim.now() - start);
    }
    let (lo, hi) = (first.iter().min(), first.iter().max());
    assert!(lo >= Some(&Duration::from_millis(20)), "{lo:?}");
    assert!(hi <= Some(&Duration::from_micros(40_100)), "{hi:?}");
    let mean = first.iter().sum::<Duration>() / 200;
    assert!(
        mean.abs_diff(Duration::from_millis(30)) < Duration::from_millis(2),
        "{mean:?}"
    );
}

#[test]
fn a_rate_limit_holds_within_two_percent_and_its_queue_drops_at_the_tail() {
    // 8 Mbit/s is 1,000 frames of 1,000 bytes a second; offer twice that.
    let (mut sim, h0, h1) = pair(1, &[("rate", "8mbit"), ("queue", "20kb")]);
    let mut arrived = Vec::new();
    for i in 0..4000 {
        sim.send(h0, numbered(i, 1000));
        sim.run_for(Duration::from_micros(500));
        arrived.push(sim.take_received(h1).len());
    }
    // Steady state, from 0.5 s to 1.5 s: 1,000 frames, within 2%.
    let second: usize = arrived[1000..3000].iter().sum();
    assert!(second.abs_diff(1000) <= 20, "{second} frames in a second");
    let c = counters(&sim, "h0");
    assert!(c.queue_full > 1900, "half the offer is dropped: {c:?}");
    assert!(c.queue_full < 2100, "{c:?}");

    // A burst: the queue takes 20 KiB (20 frames) at once, the rest is
    // dropped at the tail.
    let (mut sim, h0, h1) = pair(1, &[("rate", "8mbit"), ("queue", "20kb")]);
    for i in 0..100 {
        sim.send(h0, numbered(i, 1000));
    }
    sim.run_until_idle();
    let got: Vec<u32> = sim
        .take_received(h1)
        .iter()
        .map(|r| number_of(&r.frame))
        .collect();
    assert_eq!(got, (0..20).collect::<Vec<_>>(), "the first 20, in order");
    assert_eq!(counters(&sim, "h0").queue_full, 80);
}

#[test]
fn a_link_that_is_down_carries_nothing_either_way_until_it_is_up() {
    let (mut sim, h0, h1) = pair(1, &[]);
    sim.fabric_mut()
        .set_link(h0, Impairment::default(), false)
        .expect("down");
    let trace = Recorded::default();
    sim.fabric_mut()
        .add_trace(None, Filter::All, None, Box::new(trace.clone()));
    sim.send(h0, numbered(0, 100));
    sim.send(h1, build_frame(mac(0), mac(1), ETHERTYPE_IPV4, &[0; 50]));
    sim.run_until_idle();
    assert!(sim.take_received(h1).is_empty());
    assert!(sim.take_received(h0).is_empty());
    assert_eq!(counters(&sim, "h0").down, 2);
    let said: Vec<String> = trace.take().iter().map(ToString::to_string).collect();
    assert!(
        said[0].contains("link   h0             dropped: link down"),
        "{said:?}"
    );
    assert!(
        said[1].contains("link   h0             dropped: link down"),
        "{said:?}"
    );
    sim.fabric_mut()
        .set_link(h0, Impairment::default(), true)
        .expect("up");
    sim.send(h0, numbered(1, 100));
    sim.run_until_idle();
    assert_eq!(sim.take_received(h1).len(), 1);
}
