//! The committed corpus (`fuzz/corpus/TARGET/`, where cargo-fuzz keeps
//! its own) and a seeded mutator that the stable tests use in place of
//! libFuzzer: byte flips, interesting values, cuts, growth and splices of
//! corpus entries.

use std::path::PathBuf;

/// The corpus directory of a target.
pub fn dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Every entry of a target's corpus, in name order (empty if none).
pub fn load(target: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir(target)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// A small, fast, seeded generator (xorshift64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }

    /// Fewer than `max` random bytes.
    pub fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
}

/// Values that sit on boundaries parsers get wrong.
const INTERESTING: [u8; 10] = [0, 1, 4, 5, 6, 15, 16, 0x7f, 0x80, 0xff];

/// A mutation of one of `seeds` (or of nothing, if there are none).
pub fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = if seeds.is_empty() {
        rng.some_bytes(300)
    } else {
        seeds[rng.below(seeds.len())].clone()
    };
    for _ in 0..1 + rng.below(8) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let at = rng.below(v.len() + 1);
                let more = rng.some_bytes(64);
                v.splice(at..at, more);
            }
            4 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let at = rng.below(v.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            _ if v.len() >= 2 => {
                let i = rng.below(v.len() - 1);
                let n = u16::from_be_bytes([v[i], v[i + 1]]).wrapping_add(rng.below(33) as u16);
                v[i..i + 2].copy_from_slice(&(n.wrapping_sub(16)).to_be_bytes());
            }
            _ => {}
        }
    }
    v
}
