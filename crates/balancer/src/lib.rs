//! Load balancing, sans-IO: which backend a new connection or request
//! goes to, and which backends are fit to take it. No sockets and no
//! clock: the caller says what happened and when.
//!
//! * [`Pool`]: a pool of backends, its [`Algorithm`], each backend's
//!   health, load and latency, and the pick.
//! * [`maglev`]: Maglev consistent hashing (Eisenbud et al., NSDI 2016):
//!   removing one of N backends moves about 1/N of the keys.
//! * [`health`]: active checks with rise and fall, passive outlier
//!   ejection with a growing backoff, and draining.

pub mod health;
pub mod maglev;
mod pool;

pub use health::{HealthConfig, Outcome};
pub use pool::{Algorithm, BackendSpec, BackendStatus, Pick, Pool};

/// A stable 64-bit hash of `bytes` (FNV-1a, then a splitmix64 finish so
/// that nearby inputs land far apart). Stable across runs and builds: a
/// source address maps to the same backend after a restart.
pub fn hash64(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
