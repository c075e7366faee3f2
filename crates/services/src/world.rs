//! Where a service reads the time and seeds its randomness.
//!
//! In a running lab that is the machine: the system's time of day and
//! fresh seeds. In a simulated lab it is the simulation: a fixed epoch
//! advanced by the (paused, virtual) tokio clock, and seeds drawn from the
//! simulation's own seed, so that one seed replays a run byte for byte,
//! HTTP `Date` headers and DNS message IDs included.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The world a service runs in; cheap to copy.
#[derive(Debug, Clone, Copy)]
pub enum World {
    /// The machine's clocks and fresh randomness.
    Machine,
    /// Virtual time from `epoch`, counted from the tokio instant `start`,
    /// and randomness from `seed`.
    Simulated {
        epoch: SystemTime,
        start: tokio::time::Instant,
        seed: u64,
    },
}

impl World {
    /// A simulated world whose time of day is [`SIMULATED_EPOCH`] now (on
    /// the current tokio runtime's clock).
    pub fn simulated(seed: u64) -> World {
        World::Simulated {
            epoch: UNIX_EPOCH + Duration::from_secs(SIMULATED_EPOCH),
            start: tokio::time::Instant::now(),
            seed,
        }
    }

    /// The time of day.
    pub fn wall_clock(&self) -> SystemTime {
        match self {
            World::Machine => SystemTime::now(),
            World::Simulated { epoch, start, .. } => *epoch + start.elapsed(),
        }
    }

    /// A seed for the randomness of the service named `name`: fresh on the
    /// machine, fixed by the simulation's seed and the name in a simulation.
    pub fn seed(&self, name: &str) -> u64 {
        match self {
            World::Machine => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0x5eed, |d| d.as_nanos() as u64),
            World::Simulated { seed, .. } => {
                name.bytes().fold(*seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                })
            }
        }
    }
}

impl World {
    /// A key for randomness a peer must not predict (DNS IDs, source
    /// ports, 0x20 case) of the service named `name`: 32 bytes from the
    /// OS's CSPRNG on the machine; in a simulation, fixed by its seed and
    /// the name, to replay a run.
    pub fn key(&self, name: &str) -> std::io::Result<[u8; 32]> {
        let mut key = [0u8; 32];
        match self {
            World::Machine => getrandom::fill(&mut key).map_err(std::io::Error::other)?,
            World::Simulated { .. } => {
                // splitmix64 over the name's seed, 8 bytes at a time.
                let mut x = self.seed(name);
                for chunk in key.chunks_mut(8) {
                    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = x;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
                }
            }
        }
        Ok(key)
    }
}

/// The time of day a simulated lab starts at, in seconds since 1970:
/// 2026-01-01 00:00:00 UTC.
pub const SIMULATED_EPOCH: u64 = 1_767_225_600;
