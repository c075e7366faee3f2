//! A pool of backends and the pick of one for each new connection or
//! request.
//!
//! The pick is among the available backends (up, not ejected, not
//! draining: see [`crate::health`]). When none is available the pool is in
//! *panic*: it picks among every backend not draining, as if all were
//! healthy, rather than failing every request on the word of checks that
//! may be wrong (Envoy's panic threshold, at 0%: a healthy backend is
//! never passed over for an unhealthy one). Only when every backend is
//! draining, or a retry has tried them all, is there no pick.

use crate::health::{Health, HealthConfig, Outcome};
use crate::maglev;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How a backend is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Algorithm {
    /// Smooth weighted round robin (as nginx): with weights 5, 1, 1 the
    /// order is a a b a c a a, not a a a a a b c; equal weights take turns.
    RoundRobin,
    /// The fewest connections under way for its weight; ties take turns.
    LeastConnections,
    /// Two backends drawn at random; the one with the lower latency EWMA
    /// times its load (connections under way + 1) over its weight
    /// (Mitzenmacher's power of two choices, scored as Finagle does).
    PowerOfTwo,
    /// Maglev over the client's address: a client stays on one backend.
    SourceHash,
    /// Maglev over a request header's value (a session or user id).
    HeaderHash(String),
}

impl Algorithm {
    /// The names the topology file uses.
    pub const NAMES: &'static [&'static str] = &[
        "round-robin",
        "least-connections",
        "power-of-two",
        "source-hash",
        "header-hash",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round-robin",
            Algorithm::LeastConnections => "least-connections",
            Algorithm::PowerOfTwo => "power-of-two",
            Algorithm::SourceHash => "source-hash",
            Algorithm::HeaderHash(_) => "header-hash",
        }
    }

    /// Whether picks need a key (a client address or a header's value).
    pub fn is_hash(&self) -> bool {
        matches!(self, Algorithm::SourceHash | Algorithm::HeaderHash(_))
    }
}

/// A backend as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    pub name: String,
    pub addr: SocketAddr,
    /// Its share relative to the others (at least 1).
    pub weight: u32,
}

/// What the pool knows of one backend.
#[derive(Debug, Clone)]
struct Backend {
    spec: BackendSpec,
    health: Health,
    /// Connections or requests under way.
    active: u32,
    /// Smoothed latency of its answers, once it has answered.
    ewma: Option<Duration>,
    /// Smooth weighted round robin's running weight.
    current: i64,
    picked: u64,
    failures: u64,
    ejections: u64,
    /// Taken out of the pool (indices stay stable for what is under way).
    removed: bool,
}

/// The backend chosen, and why (for the trace and the access log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub index: usize,
    pub name: String,
    pub addr: SocketAddr,
    pub why: String,
    /// Chosen in panic: no backend was available.
    pub panic: bool,
}

/// A backend's state, for `scratchnet status` and the control socket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackendStatus {
    pub name: String,
    pub addr: String,
    pub weight: u32,
    /// `up`, `down` (active checks), `ejected` (outlier) or `draining`.
    pub state: &'static str,
    pub active: u32,
    pub picked: u64,
    pub failures: u64,
    pub ejections: u64,
    /// The latency EWMA in microseconds, once it has answered.
    pub latency_us: Option<u64>,
}

/// A pool of backends. See the module documentation.
#[derive(Debug, Clone)]
pub struct Pool {
    algorithm: Algorithm,
    health: HealthConfig,
    backends: Vec<Backend>,
    /// The Maglev table and the backends (indices) it was built over.
    table: Option<(Vec<usize>, maglev::Table)>,
    /// Where least-connections starts looking, so that ties take turns.
    cursor: usize,
    rng: u64,
    panics: u64,
}

/// How much a new latency sample weighs in the EWMA.
const EWMA_WEIGHT: f64 = 0.3;

impl Pool {
    /// A pool over `backends`; `seed` drives power-of-two's draws.
    pub fn new(
        algorithm: Algorithm,
        health: HealthConfig,
        backends: Vec<BackendSpec>,
        seed: u64,
    ) -> Pool {
        Pool {
            algorithm,
            health,
            backends: backends.into_iter().map(Backend::new).collect(),
            table: None,
            cursor: 0,
            rng: seed | 1,
            panics: 0,
        }
    }

    pub fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    pub fn health_config(&self) -> &HealthConfig {
        &self.health
    }

    pub fn spec(&self, index: usize) -> Option<&BackendSpec> {
        self.backends.get(index).map(|b| &b.spec)
    }

    /// Picks made while no backend was available.
    pub fn panics(&self) -> u64 {
        self.panics
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Chooses a backend for a new connection or request, other than those
    /// in `tried` (a retry's earlier attempts); `key` is what the hash
    /// algorithms hash (the client's address, a header's value).
    pub fn pick(&mut self, now: Instant, key: Option<&[u8]>, tried: &[usize]) -> Option<Pick> {
        let fit =
            |b: &Backend, i: usize| !tried.contains(&i) && !b.removed && b.health.is_available(now);
        let mut candidates: Vec<usize> = (0..self.backends.len())
            .filter(|&i| fit(&self.backends[i], i))
            .collect();
        let panic = candidates.is_empty();
        if panic {
            candidates = (0..self.backends.len())
                .filter(|&i| {
                    let b = &self.backends[i];
                    !tried.contains(&i) && !b.removed && !b.health.draining
                })
                .collect();
        }
        if candidates.is_empty() {
            return None;
        }
        let (index, mut why) = match &self.algorithm {
            Algorithm::RoundRobin => self.round_robin(&candidates),
            Algorithm::LeastConnections => self.least_connections(&candidates),
            Algorithm::PowerOfTwo => self.power_of_two(&candidates),
            Algorithm::SourceHash | Algorithm::HeaderHash(_) => self.hashed(&candidates, key),
        };
        if panic {
            self.panics += 1;
            why = format!("no backend available (panic: picking as if all were): {why}");
        }
        let b = &mut self.backends[index];
        b.picked += 1;
        Some(Pick {
            index,
            name: b.spec.name.clone(),
            addr: b.spec.addr,
            why,
            panic,
        })
    }

    fn round_robin(&mut self, candidates: &[usize]) -> (usize, String) {
        let total: i64 = candidates
            .iter()
            .map(|&i| i64::from(self.backends[i].spec.weight))
            .sum();
        let mut best = candidates[0];
        for &i in candidates {
            let b = &mut self.backends[i];
            b.current += i64::from(b.spec.weight);
            if b.current > self.backends[best].current {
                best = i;
            }
        }
        self.backends[best].current -= total;
        let b = &self.backends[best];
        let why = if candidates
            .iter()
            .all(|&i| self.backends[i].spec.weight == b.spec.weight)
        {
            format!("round-robin: {}, next in turn", b.spec.name)
        } else {
            format!(
                "round-robin: {} (weight {} of {total}, smooth)",
                b.spec.name, b.spec.weight
            )
        };
        (best, why)
    }

    fn least_connections(&mut self, candidates: &[usize]) -> (usize, String) {
        let n = candidates.len();
        let start = self.cursor % n;
        self.cursor = self.cursor.wrapping_add(1);
        // active/weight compared as active_a * weight_b < active_b * weight_a.
        let load = |i: usize| {
            let b = &self.backends[i];
            (u64::from(b.active), u64::from(b.spec.weight.max(1)))
        };
        let mut best = candidates[start];
        for k in 1..n {
            let i = candidates[(start + k) % n];
            let ((a, wa), (c, wc)) = (load(i), load(best));
            if a * wc < c * wa {
                best = i;
            }
        }
        let b = &self.backends[best];
        let why = format!(
            "least-connections: {} ({} under way, weight {})",
            b.spec.name, b.active, b.spec.weight
        );
        (best, why)
    }

    /// Power of two choices: latency EWMA x (load + 1) / weight, lower wins.
    fn power_of_two(&mut self, candidates: &[usize]) -> (usize, String) {
        if candidates.len() == 1 {
            let i = candidates[0];
            return (
                i,
                format!("power-of-two: {}, the only one", self.backends[i].spec.name),
            );
        }
        let n = candidates.len() as u64;
        let a = candidates[(self.random() % n) as usize];
        let mut b = candidates[(self.random() % (n - 1)) as usize];
        if b == a {
            b = candidates[(n - 1) as usize];
        }
        let known = candidates
            .iter()
            .filter_map(|&i| self.backends[i].ewma)
            .min()
            .unwrap_or(Duration::from_millis(1));
        let score = |i: usize| {
            let x = &self.backends[i];
            let ewma = x.ewma.unwrap_or(known).as_secs_f64() * 1e3;
            ewma * f64::from(x.active + 1) / f64::from(x.spec.weight.max(1))
        };
        let (sa, sb) = (score(a), score(b));
        let (win, lose, sw, sl) = if sb < sa {
            (b, a, sb, sa)
        } else {
            (a, b, sa, sb)
        };
        let why = format!(
            "power-of-two: {} (score {sw:.3}) over {} (score {sl:.3}); score = latency ms x (under way + 1) / weight",
            self.backends[win].spec.name, self.backends[lose].spec.name
        );
        (win, why)
    }

    fn hashed(&mut self, candidates: &[usize], key: Option<&[u8]>) -> (usize, String) {
        let Some(key) = key else {
            // Nothing to hash (no such header): take turns.
            let (i, why) = self.round_robin(candidates);
            return (
                i,
                format!("{} without a key, so {why}", self.algorithm.name()),
            );
        };
        let stale = self
            .table
            .as_ref()
            .is_none_or(|(members, _)| members != candidates);
        if stale {
            let names: Vec<&str> = candidates
                .iter()
                .map(|&i| self.backends[i].spec.name.as_str())
                .collect();
            self.table = Some((candidates.to_vec(), maglev::Table::new(&names)));
        }
        let h = crate::hash64(key, 0);
        let slot = self
            .table
            .as_ref()
            .and_then(|(_, t)| t.lookup(h))
            .unwrap_or(0);
        let index = candidates[slot.min(candidates.len() - 1)];
        let why = format!(
            "{}: {} (Maglev slot {} of {})",
            self.algorithm.name(),
            self.backends[index].spec.name,
            h % maglev::TABLE_SIZE as u64,
            maglev::TABLE_SIZE
        );
        (index, why)
    }

    /// A connection or request to backend `index` is under way.
    pub fn started(&mut self, index: usize) {
        if let Some(b) = self.backends.get_mut(index) {
            b.active += 1;
        }
    }

    /// What became of a connection or request to `index` that
    /// [`Pool::started`]; true if it ejected the backend.
    pub fn finished(&mut self, now: Instant, index: usize, outcome: Outcome) -> bool {
        let config = self.health.clone();
        let Some(b) = self.backends.get_mut(index) else {
            return false;
        };
        b.active = b.active.saturating_sub(1);
        if let Some(l) = outcome.latency() {
            b.ewma = Some(match b.ewma {
                Some(e) => e.mul_f64(1.0 - EWMA_WEIGHT) + l.mul_f64(EWMA_WEIGHT),
                None => l,
            });
        }
        if outcome.is_failure() {
            b.failures += 1;
        }
        let ejected = b.health.outcome(now, outcome, &config);
        if ejected {
            b.ejections += 1;
        }
        ejected
    }

    /// An active check's result for `index`; `Some(up)` when the verdict
    /// changed.
    pub fn check_result(&mut self, index: usize, ok: bool) -> Option<bool> {
        let config = self.health.clone();
        self.backends
            .get_mut(index)
            .and_then(|b| b.health.check(ok, &config))
    }

    /// Whether `index` is available now.
    pub fn is_available(&self, now: Instant, index: usize) -> bool {
        self.backends
            .get(index)
            .is_some_and(|b| b.health.is_available(now))
    }

    /// Connections or requests under way to `index`.
    pub fn active(&self, index: usize) -> u32 {
        self.backends.get(index).map_or(0, |b| b.active)
    }

    /// The index of backend `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.backends
            .iter()
            .position(|b| b.spec.name == name && !b.removed)
    }

    /// Drains backend `name` (no new picks; what is under way finishes),
    /// or restores it; false if there is none.
    pub fn set_draining(&mut self, name: &str, draining: bool) -> bool {
        match self.find(name) {
            Some(i) => {
                self.backends[i].health.draining = draining;
                true
            }
            None => false,
        }
    }

    /// Changes backend `name`'s weight; false if there is none.
    pub fn set_weight(&mut self, name: &str, weight: u32) -> bool {
        match self.find(name) {
            Some(i) => {
                self.backends[i].spec.weight = weight.max(1);
                true
            }
            None => false,
        }
    }

    /// Adds a backend, or gives the one of that name a new address and
    /// weight (keeping its state); returns its index.
    pub fn add(&mut self, spec: BackendSpec) -> usize {
        let same = self.backends.iter().position(|b| b.spec.name == spec.name);
        let index = match same {
            Some(i) => {
                let b = &mut self.backends[i];
                if b.removed {
                    *b = Backend::new(spec);
                } else {
                    b.spec = Backend::new(spec).spec;
                }
                i
            }
            None => {
                self.backends.push(Backend::new(spec));
                self.backends.len() - 1
            }
        };
        self.table = None;
        index
    }

    /// Takes backend `name` out of the pool: no new picks; what is under
    /// way finishes. False if there is none.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.find(name) {
            Some(i) => {
                self.backends[i].removed = true;
                self.table = None;
                true
            }
            None => false,
        }
    }

    pub fn status(&self, now: Instant) -> Vec<BackendStatus> {
        self.backends
            .iter()
            .filter(|b| !b.removed)
            .map(|b| BackendStatus {
                name: b.spec.name.clone(),
                addr: b.spec.addr.to_string(),
                weight: b.spec.weight,
                state: if b.health.draining {
                    "draining"
                } else if b.health.down {
                    "down"
                } else if b.health.is_ejected(now) {
                    "ejected"
                } else {
                    "up"
                },
                active: b.active,
                picked: b.picked,
                failures: b.failures,
                ejections: b.ejections,
                latency_us: b.ewma.map(|d| d.as_micros() as u64),
            })
            .collect()
    }
}

impl Backend {
    fn new(mut spec: BackendSpec) -> Backend {
        spec.weight = spec.weight.max(1);
        Backend {
            spec,
            health: Health::default(),
            active: 0,
            ewma: None,
            current: 0,
            picked: 0,
            failures: 0,
            ejections: 0,
            removed: false,
        }
    }
}
