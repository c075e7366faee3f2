//! A thousand simulated hosts at once: every one GETs from a web service
//! host behind the router and is answered, and the run is the same for
//! the same seed. (How fast that runs against the wall clock is the
//! `sim-scale` example's to measure: scripts/bench-scale.sh.)

mod support {
    pub mod many_hosts;
}

use fabric::LinkParams;
use lab::sim::LabSim;
use std::time::Duration;
use support::many_hosts;

/// Each host's answer, in order.
fn run(seed: u64) -> Vec<Vec<u8>> {
    let lab = topology::parse(&many_hosts::topology(100), "many-hosts").expect("topology");
    let link = LinkParams {
        latency: Duration::from_micros(50),
        jitter: Duration::from_micros(10),
        loss: 0.0,
    };
    let mut sim = LabSim::new(&lab, seed, link).expect("lab");
    let mut gets = many_hosts::gets(100, Duration::from_secs(1));
    sim.exchanges(&mut gets, Duration::from_secs(10));
    for g in &gets {
        assert!(
            g.done,
            "{} got no whole answer: {:?}",
            g.client,
            String::from_utf8_lossy(&g.answer)
        );
        assert!(g.answer.starts_with(b"HTTP/1.1 200"), "{}", g.client);
    }
    // Nothing retransmitted: the last GET, started just before a second,
    // is answered well within it (a lost SYN would cost a second).
    assert!(
        sim.now() < wire::Instant::from_micros(1_100_000),
        "{:?}",
        sim.now()
    );
    gets.into_iter().map(|g| g.answer).collect()
}

#[test]
fn a_thousand_hosts_each_get_an_answer_the_same_way_every_time() {
    let first = run(7);
    assert_eq!(first.len(), 1000);
    assert_eq!(first, run(7), "the same seed, the same answers");
}
