//! Built-in services that run on service hosts, written as ordinary async
//! Rust against the host's sockets.
//!
//! * [`http`]: an HTTP/1.1 server (hyper) that says who answered and whom
//!   it saw, and serves bodies of any size for throughput tests;
//! * [`echo`]: TCP and UDP echo (RFC 862);
//! * [`dns`]: an authoritative DNS server and a recursive resolver, over
//!   UDP and TCP;
//! * [`lb`]: an HTTP load balancer over backends anywhere in the lab.
//!
//! Each takes its clocks and seeds from a [`World`], so that a simulated
//! lab replays exactly.

mod control;
pub mod dns;
pub mod echo;
pub mod http;
pub mod lb;
mod world;

pub use control::{Control, Reply};
pub use world::{World, SIMULATED_EPOCH};
