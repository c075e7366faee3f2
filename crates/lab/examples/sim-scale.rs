//! A thousand hosts on the simulator's clock, timed against the wall
//! clock (tests/support/many_hosts.rs: 1,000 namespace hosts on 10
//! switches behind one router, a web service host on each switch). Every
//! host GETs `/` from the next switch's web server, the starts spread over
//! a second, then the lab idles to 10 s of virtual time; prints the wall
//! time of each part. scripts/bench-scale.sh runs it.
//!
//!     cargo run --release -p lab --example sim-scale [HOSTS_PER_SWITCH]

// Printing its figures is what it is for.
#![allow(clippy::print_stdout)]

#[path = "../tests/support/many_hosts.rs"]
mod many_hosts;

use fabric::LinkParams;
use lab::sim::LabSim;
use std::time::{Duration, Instant};

fn main() {
    let per_switch: usize = std::env::args()
        .nth(1)
        .map_or(100, |n| n.parse().expect("HOSTS_PER_SWITCH is a number"));
    let lab = topology::parse(&many_hosts::topology(per_switch), "sim-scale").expect("topology");
    let link = LinkParams {
        latency: Duration::from_micros(50),
        jitter: Duration::from_micros(10),
        loss: 0.0,
    };
    let mut sim = LabSim::new(&lab, 1, link).expect("lab");
    let spread = Duration::from_secs(1);
    let mut gets = many_hosts::gets(per_switch, spread);
    let (start_virtual, start_wall) = (sim.now(), Instant::now());
    sim.exchanges(&mut gets, Duration::from_secs(30));
    let busy = sim.now().saturating_since(start_virtual);
    let busy_wall = start_wall.elapsed();
    let answered = gets
        .iter()
        .filter(|g| g.answer.starts_with(b"HTTP/1.1 200"))
        .count();
    println!(
        "{} hosts GET from a web server, spread over {:.0} s: {answered} answered 200 within {:.3} s virtual, in {:.3} s wall",
        gets.len(),
        spread.as_secs_f64(),
        busy.as_secs_f64(),
        busy_wall.as_secs_f64()
    );
    let total = Duration::from_secs(10);
    let start_wall = Instant::now();
    sim.run_for(total.saturating_sub(busy));
    let wall = busy_wall + start_wall.elapsed();
    println!(
        "{:.0} s of virtual time (the GETs, then idle) in {:.3} s wall: {:.1}x faster than real time",
        total.as_secs_f64(),
        wall.as_secs_f64(),
        total.as_secs_f64() / wall.as_secs_f64()
    );
}
