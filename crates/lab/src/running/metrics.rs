//! The lab's counters in Prometheus's text exposition format, for
//! `scratchnet status --prometheus` (and a node_exporter textfile
//! collector, or any scraper reading a file).
//!
//! The families are built from one status snapshot when asked, so the
//! data path pays nothing for them: ports' frames, bytes, drops by reason
//! and device errors; switches' MAC and group tables and floods; routers'
//! neighbour caches, DHCP leases and NAT, firewall and NAT64 sessions;
//! and the services' own figures: resolvers' questions and cache,
//! authoritative servers' answers, balancers' requests, errors and each
//! backend's state, load and latency.

use fabric::FabricStatus;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, Result, TextEncoder};
use topology::ServiceKind;

/// A service's figures as its status reports them (`status --json`'s
/// `service_counters`), with its kind.
pub struct ServiceFigures<'a> {
    pub name: &'a str,
    pub kind: ServiceKind,
    pub figures: &'a serde_json::Value,
}

/// Every family of one snapshot, registered as it is made.
struct Families(Registry);

impl Families {
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec> {
        let family = IntCounterVec::new(Opts::new(name, help).namespace("scratchnet"), labels)?;
        self.0.register(Box::new(family.clone()))?;
        Ok(family)
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec> {
        let family = IntGaugeVec::new(Opts::new(name, help).namespace("scratchnet"), labels)?;
        self.0.register(Box::new(family.clone()))?;
        Ok(family)
    }

    fn real_gauge(&self, name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec> {
        let family = GaugeVec::new(Opts::new(name, help).namespace("scratchnet"), labels)?;
        self.0.register(Box::new(family.clone()))?;
        Ok(family)
    }
}

/// The exposition of the fabric's `status` and the services' figures.
pub fn exposition(status: &FabricStatus, services: &[ServiceFigures]) -> Result<String> {
    let f = Families(Registry::new());
    fabric_families(&f, status)?;
    service_families(&f, services)?;
    TextEncoder::new().encode_to_string(&f.0.gather())
}

fn fabric_families(f: &Families, status: &FabricStatus) -> Result<()> {
    let port = ["port"];
    let rx_frames = f.counter("port_rx_frames_total", "Frames received on a port.", &port)?;
    let rx_bytes = f.counter("port_rx_bytes_total", "Bytes received on a port.", &port)?;
    let tx_frames = f.counter("port_tx_frames_total", "Frames sent on a port.", &port)?;
    let tx_bytes = f.counter("port_tx_bytes_total", "Bytes sent on a port.", &port)?;
    let drops = f.counter(
        "port_drops_total",
        "Frames a port's switch dropped, by reason.",
        &["port", "reason"],
    )?;
    let io_errors = f.counter(
        "port_io_errors_total",
        "Reads and writes of a port's device that failed, by kind.",
        &["port", "kind"],
    )?;
    let link_up = f.gauge(
        "port_link_up",
        "1 if a port's link is up, 0 if it was taken down.",
        &port,
    )?;
    let ports = status
        .switches
        .iter()
        .flat_map(|s| &s.ports)
        .chain(&status.l3_ports);
    for p in ports {
        let name = [p.name.as_str()];
        rx_frames.with_label_values(&name).inc_by(p.rx_frames);
        rx_bytes.with_label_values(&name).inc_by(p.rx_bytes);
        tx_frames.with_label_values(&name).inc_by(p.tx_frames);
        tx_bytes.with_label_values(&name).inc_by(p.tx_bytes);
        for (reason, n) in &p.drops {
            drops
                .with_label_values(&[p.name.as_str(), reason])
                .inc_by(*n);
        }
        for (kind, n) in &p.io_errors {
            io_errors
                .with_label_values(&[p.name.as_str(), kind])
                .inc_by(*n);
        }
        let up = p.link.as_ref().is_none_or(|l| l.up);
        link_up.with_label_values(&name).set(i64::from(up));
    }

    let switch = ["switch"];
    let macs = f.gauge(
        "switch_mac_entries",
        "Addresses in a switch's MAC table.",
        &switch,
    )?;
    let groups = f.gauge(
        "switch_multicast_groups",
        "Multicast groups hosts joined on a switch (IGMP and MLD snooping).",
        &switch,
    )?;
    let floods = f.counter(
        "switch_floods_total",
        "Frames a switch flooded: unknown unicast, or broadcast and multicast.",
        &["switch", "kind"],
    )?;
    let table_full = f.counter(
        "switch_mac_table_full_total",
        "Addresses a switch did not learn because its MAC table was full.",
        &switch,
    )?;
    for s in &status.switches {
        let name = [s.name.as_str()];
        macs.with_label_values(&name).set(gauge(s.mac_table.len()));
        groups.with_label_values(&name).set(gauge(s.groups.len()));
        let c = &s.counters;
        floods
            .with_label_values(&[&s.name, "unknown_unicast"])
            .inc_by(c.unknown_unicast_floods);
        floods
            .with_label_values(&[&s.name, "multicast"])
            .inc_by(c.multicast_floods);
        table_full.with_label_values(&name).inc_by(c.table_full);
    }

    let router = ["router"];
    let neighbours = f.gauge(
        "router_neighbours",
        "Entries in a router's ARP and NDP neighbour cache.",
        &router,
    )?;
    let leases = f.gauge(
        "router_dhcp_leases",
        "DHCP leases a router holds, by family.",
        &["router", "family"],
    )?;
    let sessions = f.gauge(
        "router_sessions",
        "Sessions in a router's NAT, IPv6 firewall and NAT64 tables.",
        &["router", "table"],
    )?;
    for r in &status.routers {
        let name = r.name.as_str();
        neighbours
            .with_label_values(&[name])
            .set(gauge(r.arp.len()));
        let families = [("ipv4", r.leases.len()), ("ipv6", r.leases6.len())];
        for (family, n) in families {
            leases.with_label_values(&[name, family]).set(gauge(n));
        }
        let tables = [
            ("nat", r.nat.as_ref().map(|n| n.table.len())),
            ("firewall", r.firewall.as_ref().map(|t| t.table.len())),
            ("nat64", r.nat64.as_ref().map(|t| t.table.len())),
        ];
        for (table, n) in tables {
            if let Some(n) = n {
                sessions.with_label_values(&[name, table]).set(gauge(n));
            }
        }
    }

    let runaway = f.counter(
        "runaway_frames_total",
        "Frames stopped after too many hops inside the fabric (a loop).",
        &[],
    )?;
    runaway
        .with_label_values::<&str>(&[])
        .inc_by(status.runaway);
    Ok(())
}

/// A resolver's figures that are exposed.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Resolver {
    questions: u64,
    cache_hits: u64,
    upstream_queries: u64,
    upstream_timeouts: u64,
    servfail: u64,
    cache_entries: u64,
    cache_bytes: u64,
}

/// An authoritative server's.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Authoritative {
    answers: u64,
    rrl_dropped: u64,
}

/// A balancer's (HTTP, TCP or UDP).
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Balancer {
    requests: u64,
    retries: u64,
    bad_gateway_502: u64,
    no_backend_503: u64,
    timeout_504: u64,
    rate_limited_429: u64,
    too_large_413: u64,
    pools: Vec<Pool>,
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Pool {
    route: String,
    backends: Vec<Backend>,
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Backend {
    addr: String,
    state: String,
    active: u64,
    picked: u64,
    failures: u64,
    ejections: u64,
    latency_us: Option<u64>,
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Supervised {
    restarts: u64,
}

/// A cache's figures (services::cache).
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Edge {
    hits: u64,
    misses: u64,
    stale: u64,
    revalidated: u64,
    passed: u64,
    collapsed: u64,
    purged: u64,
    evicted: u64,
    entries: u64,
    bytes: u64,
    capacity: u64,
}

/// Reads the part of a service's figures a family exposes.
fn read<T: Default + serde::de::DeserializeOwned>(figures: &serde_json::Value) -> T {
    serde_json::from_value(figures.clone()).unwrap_or_default()
}

fn service_families(f: &Families, services: &[ServiceFigures]) -> Result<()> {
    let service = ["service"];
    let restarts = f.counter(
        "service_restarts_total",
        "Times a service ended and was started again.",
        &service,
    )?;
    let resolver = |name, help| f.counter(name, help, &service);
    let questions = resolver(
        "resolver_questions_total",
        "Questions a resolver was asked.",
    )?;
    let hits = resolver(
        "resolver_cache_hits_total",
        "Questions a resolver answered from its cache.",
    )?;
    let upstream = resolver(
        "resolver_upstream_queries_total",
        "Queries a resolver sent to name servers.",
    )?;
    let timeouts = resolver(
        "resolver_upstream_timeouts_total",
        "A resolver's queries no name server answered in time.",
    )?;
    let servfail = resolver(
        "resolver_servfail_total",
        "Questions a resolver answered SERVFAIL.",
    )?;
    let entries = f.gauge(
        "resolver_cache_entries",
        "Records in a resolver's cache.",
        &service,
    )?;
    let bytes = f.gauge(
        "resolver_cache_bytes",
        "Bytes a resolver's cache holds.",
        &service,
    )?;
    let answers = f.counter(
        "dns_answers_total",
        "Answers an authoritative server sent.",
        &service,
    )?;
    let rrl = f.counter(
        "dns_rate_limited_total",
        "Answers an authoritative server dropped by response rate limiting.",
        &service,
    )?;
    let requests = f.counter(
        "lb_requests_total",
        "Requests (or connections, or datagram flows) a balancer took.",
        &service,
    )?;
    let retries = f.counter(
        "lb_retries_total",
        "Requests a balancer retried on another backend.",
        &service,
    )?;
    let errors = f.counter(
        "lb_errors_total",
        "Error answers a balancer made itself, by HTTP status.",
        &["service", "status"],
    )?;
    let backend = ["service", "route", "backend"];
    let up = f.gauge(
        "lb_backend_up",
        "1 if a balancer sends new work to a backend (healthy, not drained).",
        &backend,
    )?;
    let active = f.gauge(
        "lb_backend_active",
        "Requests or connections a backend is serving now.",
        &backend,
    )?;
    let picked = f.counter(
        "lb_backend_picked_total",
        "Times a balancer chose a backend.",
        &backend,
    )?;
    let failures = f.counter(
        "lb_backend_failures_total",
        "Failed attempts on a backend.",
        &backend,
    )?;
    let ejections = f.counter(
        "lb_backend_ejections_total",
        "Times outlier detection took a backend out.",
        &backend,
    )?;
    let latency = f.real_gauge(
        "lb_backend_latency_seconds",
        "A backend's recent response time (moving average), once measured.",
        &backend,
    )?;
    let outcomes = f.counter(
        "cache_requests_total",
        "Requests a cache answered, by outcome: hit, miss, stale, revalidated, pass.",
        &["service", "outcome"],
    )?;
    let edge = |name, help| f.counter(name, help, &service);
    let collapsed = edge(
        "cache_collapsed_total",
        "Misses that waited for another request's origin answer instead of asking.",
    )?;
    let purged = edge("cache_purged_total", "URLs purged from a cache.")?;
    let evicted = edge(
        "cache_evictions_total",
        "Objects a cache pushed out to stay within its bound.",
    )?;
    let objects = f.gauge("cache_objects", "URLs a cache holds.", &service)?;
    let stored = f.gauge("cache_bytes", "Bytes a cache's store holds.", &service)?;
    let capacity = f.gauge(
        "cache_capacity_bytes",
        "The bound of a cache's store.",
        &service,
    )?;
    for s in services {
        let name = [s.name];
        restarts
            .with_label_values(&name)
            .inc_by(read::<Supervised>(s.figures).restarts);
        match s.kind {
            ServiceKind::DnsResolver => {
                let r: Resolver = read(s.figures);
                questions.with_label_values(&name).inc_by(r.questions);
                hits.with_label_values(&name).inc_by(r.cache_hits);
                upstream.with_label_values(&name).inc_by(r.upstream_queries);
                timeouts
                    .with_label_values(&name)
                    .inc_by(r.upstream_timeouts);
                servfail.with_label_values(&name).inc_by(r.servfail);
                entries.with_label_values(&name).set(gauge(r.cache_entries));
                bytes.with_label_values(&name).set(gauge(r.cache_bytes));
            }
            ServiceKind::DnsAuthoritative => {
                let a: Authoritative = read(s.figures);
                answers.with_label_values(&name).inc_by(a.answers);
                rrl.with_label_values(&name).inc_by(a.rrl_dropped);
            }
            ServiceKind::HttpLb | ServiceKind::TcpLb | ServiceKind::UdpLb => {
                let b: Balancer = read(s.figures);
                requests.with_label_values(&name).inc_by(b.requests);
                retries.with_label_values(&name).inc_by(b.retries);
                let statuses = [
                    ("502", b.bad_gateway_502),
                    ("503", b.no_backend_503),
                    ("504", b.timeout_504),
                    ("429", b.rate_limited_429),
                    ("413", b.too_large_413),
                ];
                if s.kind == ServiceKind::HttpLb {
                    for (status, n) in statuses {
                        errors.with_label_values(&[s.name, status]).inc_by(n);
                    }
                }
                for pool in &b.pools {
                    for be in &pool.backends {
                        let labels = [s.name, pool.route.as_str(), be.addr.as_str()];
                        up.with_label_values(&labels)
                            .set(i64::from(be.state == "up"));
                        active.with_label_values(&labels).set(gauge(be.active));
                        picked.with_label_values(&labels).inc_by(be.picked);
                        failures.with_label_values(&labels).inc_by(be.failures);
                        ejections.with_label_values(&labels).inc_by(be.ejections);
                        if let Some(us) = be.latency_us {
                            latency.with_label_values(&labels).set(us as f64 / 1e6);
                        }
                    }
                }
            }
            ServiceKind::Cache => {
                let c: Edge = read(s.figures);
                for (outcome, n) in [
                    ("hit", c.hits),
                    ("miss", c.misses),
                    ("stale", c.stale),
                    ("revalidated", c.revalidated),
                    ("pass", c.passed),
                ] {
                    outcomes.with_label_values(&[s.name, outcome]).inc_by(n);
                }
                collapsed.with_label_values(&name).inc_by(c.collapsed);
                purged.with_label_values(&name).inc_by(c.purged);
                evicted.with_label_values(&name).inc_by(c.evicted);
                objects.with_label_values(&name).set(gauge(c.entries));
                stored.with_label_values(&name).set(gauge(c.bytes));
                capacity.with_label_values(&name).set(gauge(c.capacity));
            }
            ServiceKind::Http | ServiceKind::Echo => {}
        }
    }
    Ok(())
}

/// A size or count as a gauge's value (saturating; none is that big).
fn gauge<T: TryInto<i64>>(n: T) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}
