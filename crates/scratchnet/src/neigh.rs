//! The kernel's neighbour tables are one per machine, not per namespace:
//! ARP's and IPv6's, each with a hard bound (`gc_thresh3`, 1024 by
//! default) on the entries of all namespaces together. A lab of a
//! thousand hosts, each knowing a few neighbours, overflows it ("neighbor
//! table overflow!" in the kernel log) and pings fail at random. A lab
//! raises the bounds to what its hosts need while it runs and puts the
//! old values back when it stops, or `down` does after a crash.

use anyhow::{Context, Result};

/// Neighbour entries allowed per host, on average, at the hard bound: a
/// host knows its gateway and the peers it talks to, and each of those
/// knows it back (at most every other host of a small lab); half that at
/// the soft bound.
const PER_HOST: u64 = 64;

/// A sysctl the lab raised: its old value, and the one set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Raised {
    pub key: String,
    pub old: u64,
    pub new: u64,
}

fn path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

fn read(key: &str) -> Result<u64> {
    let text = std::fs::read_to_string(path(key)).with_context(|| format!("cannot read {key}"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{key} is not a number: {text}"))
}

/// Raises the neighbour table bounds of both families for `hosts`
/// namespace hosts where they are lower; returns what was raised.
pub fn raise(hosts: usize) -> Result<Vec<Raised>> {
    let hard = hosts as u64 * PER_HOST.min(hosts as u64);
    let mut raised = Vec::new();
    for family in ["ipv4", "ipv6"] {
        for (level, want) in [("gc_thresh2", hard / 2), ("gc_thresh3", hard)] {
            let key = format!("net.{family}.neigh.default.{level}");
            let old = read(&key)?;
            if old >= want {
                continue;
            }
            std::fs::write(path(&key), want.to_string())
                .with_context(|| format!("cannot set {key} = {want}"))?;
            raised.push(Raised {
                key,
                old,
                new: want,
            });
        }
    }
    Ok(raised)
}

/// Puts back what [`raise`] raised, unless something else has changed it
/// since.
pub fn restore(raised: &[Raised]) {
    for r in raised {
        if read(&r.key).is_ok_and(|now| now == r.new) {
            if let Err(e) = std::fs::write(path(&r.key), r.old.to_string()) {
                eprintln!("scratchnet: cannot put {} back to {}: {e}", r.key, r.old);
            }
        }
    }
}
