//! Built-in services that run on service hosts, written as ordinary async
//! Rust against the host's sockets.
//!
//! * [`http`]: an HTTP/1.1 server (hyper) that says who answered and whom
//!   it saw, and serves bodies of any size for throughput tests;
//! * [`echo`]: TCP and UDP echo (RFC 862);
//! * [`dns`]: an authoritative DNS server and a recursive resolver, over
//!   UDP and TCP;
//! * [`proxy`]: the reverse-proxy engine the HTTP balancer (and the cache)
//!   build on: the front, upstream connections, header rules, pages;
//! * [`lb`]: an HTTP load balancer over backends anywhere in the lab;
//! * [`l4`]: TCP and UDP load balancers;
//! * [`cache`]: a caching reverse proxy, a CDN edge (RFC 9111, RFC 5861).
//!
//! Each takes its clocks and seeds from a [`World`], so that a simulated
//! lab replays exactly.

/// A struct of `AtomicU64` counters and its `json()`, from one list of
/// fields.
macro_rules! counters {
    ($(#[$m:meta])* struct $name:ident { $($(#[$fm:meta])* $field:ident,)* }) => {
        $(#[$m])*
        #[derive(Debug, Default)]
        struct $name {
            $($(#[$fm])* $field: std::sync::atomic::AtomicU64,)*
        }

        impl $name {
            fn json(&self) -> serde_json::Value {
                use std::sync::atomic::Ordering::Relaxed;
                serde_json::json!({ $(stringify!($field): self.$field.load(Relaxed),)* })
            }
        }
    };
}

mod balancing;
pub mod cache;
mod control;
mod deadline;
pub mod dns;
pub mod echo;
pub mod http;
pub mod l4;
pub mod lb;
pub mod proxy;
mod world;

pub use balancing::Check;
pub use control::{
    Answer, CacheCommand, CacheOutcomes, Command, Control, PoolCommand, Reply, Resolution,
    ResolutionStep, ResolverCommand, Serving, Task,
};
pub use world::{World, SIMULATED_EPOCH};

/// The time since `started` on a token bucket's clock (wire's, which
/// counts from zero): how a service's rate limits read tokio's clock.
pub(crate) fn ticks_since(started: std::time::Instant) -> wire::Instant {
    let elapsed = balancing::now().saturating_duration_since(started);
    wire::Instant::from_micros(elapsed.as_micros() as u64)
}

/// A mutex's guard, also after a panic elsewhere held it (the data is
/// counters and tables that stay consistent between statements).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
