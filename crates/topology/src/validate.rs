//! From the file as written ([`raw`](crate::raw)) to a checked
//! [`Topology`]: names, references, addresses, subnets and ranges.
//!
//! Every problem is reported (not just the first), each with the file,
//! line and column, the key, and a hint that says how to fix it.

use crate::diag::{closest, Reporter};
use crate::model::*;
use crate::raw::{self, Str};
use ipnet::{IpNet, Ipv4Net};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

mod v6;
use std::time::Duration;
use toml::Spanned;
use wire::{Impairment, Mac};

const MAX_NAME: usize = 15;

/// The keys of a `[[service]]` table that a kind takes, beyond the ones
/// every service has.
fn settings_keys(kind: ServiceKind) -> &'static [&'static str] {
    match kind {
        ServiceKind::Http => &[
            "port",
            "body_size",
            "header_timeout_secs",
            "delay_ms",
            "paths",
        ],
        ServiceKind::Echo => &["port"],
        ServiceKind::HttpLb => &[
            "port",
            "backends",
            "weights",
            "algorithm",
            "hash_header",
            "health_check",
            "health_path",
            "health_status",
            "health_interval_ms",
            "health_timeout_ms",
            "health_rise",
            "health_fall",
            "eject_after",
            "eject_ms",
            "retries",
            "connect_timeout_ms",
            "request_timeout_ms",
            "sticky_cookie",
            "tls_port",
            "routes",
            "requests_per_sec_per_client",
        ],
        ServiceKind::TcpLb => &[
            "port",
            "backends",
            "weights",
            "algorithm",
            "health_check",
            "health_path",
            "health_status",
            "health_interval_ms",
            "health_timeout_ms",
            "health_rise",
            "health_fall",
            "eject_after",
            "eject_ms",
            "retries",
            "connect_timeout_ms",
        ],
        ServiceKind::UdpLb => &[
            "port",
            "backends",
            "weights",
            "algorithm",
            "health_check",
            "health_path",
            "health_status",
            "health_interval_ms",
            "health_timeout_ms",
            "health_rise",
            "health_fall",
            "idle_timeout_ms",
        ],
        ServiceKind::DnsAuthoritative => {
            &["zones", "allow_transfer", "responses_per_sec", "rrl_slip"]
        }
        ServiceKind::Cache => &[
            "port",
            "origin",
            "cache_bytes",
            "max_object_bytes",
            "tls_port",
            "connect_timeout_ms",
            "request_timeout_ms",
            "header_timeout_secs",
        ],
        ServiceKind::DnsResolver => &[
            "root_hints",
            "allow",
            "queries_per_sec_per_client",
            "case_randomisation",
            "cache_size",
            "upstream_timeout_ms",
            "serve_stale",
            "prefetch",
            "dns64",
        ],
    }
}

/// Whether `name` may name a lab, switch, host, router or service: 1 to
/// 15 lowercase letters, digits and dashes, starting with a letter or
/// digit. Such a name is safe as a namespace, a device and a file name.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
/// The largest body an `http` service serves at `/` (1 GiB).
const MAX_BODY_SIZE: u64 = 1 << 30;
/// The longest processing delay a web server is given (a minute).
const MAX_DELAY_MS: u64 = 60_000;

/// A value of header `key` (a path's setting) as it is written in HTTP.
fn header_example(key: &str) -> &'static str {
    match key {
        "cache_control" => "public, max-age=60",
        "vary" => "Accept-Language",
        _ => "text/css",
    }
}

pub(crate) fn validate(file: raw::File, path: &str, r: &mut Reporter<'_>) -> Topology {
    let mut v = Validator {
        r,
        names: HashMap::new(),
        addresses: HashMap::new(),
        tunnels: Vec::new(),
    };
    let name = match &file.name {
        Some(n) => {
            v.check_name(n, "name");
            n.get_ref().clone()
        }
        None => "lab".to_owned(),
    };
    let switches: Vec<SwitchSpec> = file
        .switches
        .iter()
        .filter_map(|s| v.switch(s.get_ref()))
        .collect();
    v.check_overlaps(&file, &switches, false);
    v.check_overlaps(&file, &switches, true);
    let hosts: Vec<HostSpec> = file
        .hosts
        .iter()
        .filter_map(|h| v.host(h.get_ref(), &switches))
        .collect();
    let routers: Vec<RouterSpec> = file
        .routers
        .iter()
        .filter_map(|x| v.router(x.get_ref(), &switches))
        .collect();
    v.check_lab(&file, &switches, &hosts, &routers);
    v.check_lab6(&file, &hosts, &routers);
    // What a balancer may name as a backend: services and static hosts.
    let mut peers: Vec<String> = file
        .services
        .iter()
        .map(|s| s.get_ref().name.get_ref().clone())
        .collect();
    peers.extend(
        file.hosts
            .iter()
            .map(|h| h.get_ref())
            .filter(|h| h.address.get_ref() != "dhcp")
            .map(|h| h.name.get_ref().clone()),
    );
    let services = file
        .services
        .iter()
        .filter_map(|s| v.service(s.get_ref(), &switches, &peers))
        .collect();
    let seed = file.seed.as_ref().map_or(0, |s| *s.get_ref());
    Topology {
        name,
        file: path.to_owned(),
        seed,
        switches,
        hosts,
        routers,
        services,
    }
}

struct Validator<'r, 'a> {
    r: &'r mut Reporter<'a>,
    /// Every node name, for uniqueness.
    names: HashMap<String, String>,
    /// (switch, address) -> owner, for duplicate addresses on a segment.
    addresses: HashMap<(String, IpAddr), String>,
    /// Each tunnel's local address and port, and its port name: two may
    /// not share a socket.
    tunnels: Vec<(Ipv4Addr, u16, String)>,
}

impl Validator<'_, '_> {
    fn err(&mut self, s: &Str, key: &str, msg: impl Into<String>, hint: impl Into<Option<String>>) {
        self.r.error(s.span(), key, msg, hint.into());
    }

    /// A link's impairment, every knob checked where it is written.
    fn impair(&mut self, table: &Option<toml::Spanned<raw::Impair>>, key: &str) -> Impairment {
        let mut imp = Impairment::default();
        let Some(table) = table else {
            return imp;
        };
        for (knob, value) in table.get_ref().knobs() {
            let Some(value) = value else { continue };
            if let Err(e) = imp.set(knob, value.get_ref()) {
                self.err(value, &format!("{key}.{knob}"), e.message, e.hint);
            }
        }
        if let Err(e) = imp.check() {
            self.r.error(table.span(), key, e.message, e.hint);
        }
        imp
    }

    fn check_name(&mut self, n: &Str, key: &str) {
        let name = n.get_ref();
        if !is_valid_name(name) {
            self.err(
                n,
                key,
                format!("`{name}` is not a valid name"),
                format!("use 1 to {MAX_NAME} lowercase letters, digits and dashes, starting with a letter or digit (it names namespaces and ports)"),
            );
        }
    }

    /// Registers a node name, reporting a duplicate.
    fn unique(&mut self, n: &Str, what: &str) -> bool {
        self.check_name(n, &format!("{what} name"));
        let name = n.get_ref().clone();
        if let Some(first) = self.names.get(&name).cloned() {
            self.err(
                n,
                &format!("{what} \"{name}\""),
                format!("the name `{name}` is already used by {first}"),
                "every switch, host, router and service needs its own name".to_owned(),
            );
            return false;
        }
        self.names
            .insert(name.clone(), format!("{what} \"{name}\""));
        true
    }

    /// A list of networks (`allow`, `allow_transfer`), each truncated to
    /// its network address; `None` when the key is absent.
    fn nets(&mut self, list: &Option<Vec<Str>>, key: &str) -> Option<Vec<IpNet>> {
        list.as_ref().map(|nets| {
            nets.iter()
                .filter_map(|n| self.ipnet(n, key).map(|n| n.trunc()))
                .collect()
        })
    }

    fn net(&mut self, s: &Str, key: &str) -> Option<Ipv4Net> {
        match s.get_ref().parse::<Ipv4Net>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(
                    s,
                    key,
                    format!(
                        "`{}` is not an IPv4 address with a prefix length",
                        s.get_ref()
                    ),
                    "write it as ADDRESS/PREFIX, like 192.168.1.10/24".to_owned(),
                );
                None
            }
        }
    }

    /// `tcp` or `udp`.
    fn protocol(&mut self, s: &Str, key: &str) -> Option<Protocol> {
        match s.get_ref().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            other => {
                self.err(
                    s,
                    key,
                    format!("unknown protocol `{other}`"),
                    "use \"tcp\" or \"udp\"".to_owned(),
                );
                None
            }
        }
    }

    /// A network of either family.
    fn ipnet(&mut self, s: &Str, key: &str) -> Option<IpNet> {
        match s.get_ref().parse::<IpNet>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(
                    s,
                    key,
                    format!(
                        "`{}` is not an IP address with a prefix length",
                        s.get_ref()
                    ),
                    "write it as ADDRESS/PREFIX, like 10.1.0.0/24 or 2001:db8:2::/64".to_owned(),
                );
                None
            }
        }
    }

    /// An address of either family.
    fn ip(&mut self, s: &Str, key: &str) -> Option<IpAddr> {
        match s.get_ref().parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    s,
                    key,
                    format!("`{}` is not an IP address", s.get_ref()),
                    "write an address without a prefix, like 10.1.0.1 or 2001:db8:2::1".to_owned(),
                );
                None
            }
        }
    }

    fn ip4(&mut self, s: &Str, key: &str) -> Option<Ipv4Addr> {
        match s.get_ref().parse::<Ipv4Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    s,
                    key,
                    format!("`{}` is not an IPv4 address", s.get_ref()),
                    "write a dotted quad without a prefix, like 192.168.1.1".to_owned(),
                );
                None
            }
        }
    }

    fn ips(&mut self, list: &[Str], key: &str) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for s in list {
            match s.get_ref().parse::<IpAddr>() {
                Ok(a) => out.push(a),
                Err(_) => self.err(
                    s,
                    key,
                    format!("`{}` is not an IP address", s.get_ref()),
                    None,
                ),
            }
        }
        out
    }

    fn ranged(
        &mut self,
        v: &Option<Spanned<impl Copy + Into<u64>>>,
        key: &str,
        lo: u64,
        hi: u64,
        default: u64,
    ) -> u64 {
        let Some(v) = v else { return default };
        let n: u64 = (*v.get_ref()).into();
        if (lo..=hi).contains(&n) {
            n
        } else {
            self.r.error(
                v.span(),
                key,
                format!("{n} is out of range"),
                Some(format!("use a value from {lo} to {hi}")),
            );
            default
        }
    }

    /// A zone's view: its networks of askers and its records.
    fn geo_view(
        &mut self,
        zone: &mut dns::Zone,
        g: &Spanned<raw::GeoTable>,
        key: &dyn Fn(&str) -> String,
    ) {
        let gkey = |k: &str| key(&format!("zones.geo.{k}"));
        let g = g.get_ref();
        let clients: Vec<IpNet> = g
            .clients
            .iter()
            .filter_map(|n| self.ipnet(n, &gkey("clients")).map(|n| n.trunc()))
            .collect();
        if clients.len() < g.clients.len() {
            return;
        }
        if let Err(e) = zone.add_view(clients, g.records.get_ref()) {
            self.err(
                &g.records,
                &gkey("records"),
                format!("zone `{}`: {e}", zone.origin()),
                "give each record its TTL (`cdn 60 IN A 10.1.0.20`), and a record of the same name and type in the zone for the askers no view takes; `clients` lists networks (10.1.0.0/16)".to_owned(),
            );
        }
    }

    /// How a web server answers the paths below one prefix.
    fn http_path(&mut self, p: &raw::PathTable, key: &dyn Fn(&str) -> String) -> HttpPath {
        let pkey = |k: &str| key(&format!("paths.{k}"));
        if !p.prefix.get_ref().starts_with('/') {
            self.err(
                &p.prefix,
                &pkey("prefix"),
                "a path starts with `/`",
                format!("write `/{}`", p.prefix.get_ref()),
            );
        }
        let header = |me: &mut Self, v: &Option<Str>, k: &str| {
            let v = v.as_ref()?;
            let text = v.get_ref();
            if text.is_empty() || !text.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
                me.err(
                    v,
                    &pkey(k),
                    "a header value is printable ASCII and not empty",
                    format!("write it as in HTTP, e.g. `{}`", header_example(k)),
                );
            }
            Some(text.clone())
        };
        let cache_control = header(self, &p.cache_control, "cache_control");
        let vary = header(self, &p.vary, "vary");
        let content_type = header(self, &p.content_type, "content_type");
        if let Some(t) = p
            .content_type
            .as_ref()
            .filter(|t| !t.get_ref().contains('/'))
        {
            self.err(
                t,
                &pkey("content_type"),
                format!("`{}` is no media type", t.get_ref()),
                "write TYPE/SUBTYPE, e.g. `text/css` or `image/png`".to_owned(),
            );
        }
        if let (Some(t), None) = (&p.content_type, &p.size) {
            self.err(
                t,
                &pkey("content_type"),
                "a `content_type` is for an asset, which has a `size`",
                "add `size = BYTES`, or remove `content_type`".to_owned(),
            );
        }
        let size = p
            .size
            .as_ref()
            .map(|v| self.ranged(&Some(v.clone()), &pkey("size"), 0, MAX_BODY_SIZE, 0));
        if let (Some(v), None) = (&p.last_modified, size) {
            if *v.get_ref() {
                self.r.error(
                    v.span(),
                    pkey("last_modified"),
                    "the greeting is made anew for each request: it has no modification time",
                    Some(
                        "give the path an asset (`size = BYTES`), or remove `last_modified`"
                            .to_owned(),
                    ),
                );
            }
        }
        HttpPath {
            prefix: p.prefix.get_ref().clone(),
            cache_control,
            etag: p.etag.as_ref().is_none_or(|v| *v.get_ref()),
            last_modified: size.is_some() && p.last_modified.as_ref().is_none_or(|v| *v.get_ref()),
            vary,
            content_type: content_type.or(size.map(|_| "application/octet-stream".to_owned())),
            size,
            delay: p.delay_ms.as_ref().map(|d| {
                Duration::from_millis(self.ranged(
                    &Some(d.clone()),
                    &pkey("delay_ms"),
                    0,
                    MAX_DELAY_MS,
                    0,
                ))
            }),
        }
    }

    /// A balancer's backends (`NAME`, `NAME:PORT`, `A.B.C.D:PORT`, an IPv6
    /// address or `[IPV6]:PORT`; without a port, the balancer's) and their
    /// weights.
    fn lb_backends(
        &mut self,
        list: &[Str],
        weights: Option<&[Spanned<u64>]>,
        key: &dyn Fn(&str) -> String,
        name: &str,
        peers: &[String],
        port: u16,
    ) -> Vec<LbBackend> {
        let mut backends = Vec::new();
        for b in list {
            let text = b.get_ref();
            let bracketed = text
                .strip_prefix('[')
                .and_then(|t| t.split_once("]:"))
                .map(|(a, p)| (a, p.parse::<u16>().ok().filter(|p| *p > 0)));
            let (target, port) = match (bracketed, text.rsplit_once(':')) {
                (Some(b), _) => b,
                _ if text.parse::<std::net::Ipv6Addr>().is_ok() => (text.as_str(), Some(port)),
                (None, Some((t, p))) => (t, p.parse::<u16>().ok().filter(|p| *p > 0)),
                (None, None) => (text.as_str(), Some(port)),
            };
            let known = (peers.iter().any(|p| p == target) && target != name)
                || target.parse::<std::net::IpAddr>().is_ok();
            match port.filter(|_| known) {
                Some(port) => backends.push(LbBackend {
                    target: target.to_owned(),
                    port,
                    weight: 1,
                }),
                None => self.err(
                    b,
                    &key("backends"),
                    format!("`{text}` is not another service, a static host or an address, with an optional port"),
                    "write NAME, NAME:PORT, A.B.C.D:PORT or [IPV6]:PORT, NAME a [[service]] or a [[host]] with a static address".to_owned(),
                ),
            }
        }
        if let Some(weights) = weights {
            if weights.len() != list.len() {
                let span = weights.first().map_or(0..0, |w| w.span());
                self.r.error(
                    span,
                    key("weights"),
                    format!("{} weights for {} backends", weights.len(), list.len()),
                    Some("give one weight per backend, in the same order".to_owned()),
                );
            }
            for (b, w) in backends.iter_mut().zip(weights) {
                b.weight = self.ranged(&Some(w.clone()), &key("weights"), 1, 1000, 1) as u32;
            }
        }
        backends
    }

    /// A cache's settings; `peers` are the names its origin may be.
    fn cache(&mut self, s: &raw::Service, name: &str, peers: &[String]) -> CacheSettings {
        let key = |k: &str| format!("service \"{name}\".{k}");
        let port = self.ranged(&s.port, &key("port"), 1, 65535, 80) as u16;
        let origin = match &s.origin {
            Some(o) => {
                // The origin is read as a backend is, and named as itself.
                let okey = |k: &str| key(if k == "backends" { "origin" } else { k });
                self.lb_backends(std::slice::from_ref(o), None, &okey, name, peers, 80)
                    .pop()
            }
            None => {
                self.err(
                    &s.name,
                    &key("origin"),
                    "a cache needs the origin its misses go to",
                    "add `origin = \"NAME\"` (a service or static host) or `origin = \"A.B.C.D:PORT\"`".to_owned(),
                );
                None
            }
        };
        let capacity = self.ranged(
            &s.cache_bytes,
            &key("cache_bytes"),
            1 << 20,
            64 << 30,
            256 << 20,
        );
        let max_object = self.ranged(
            &s.max_object_bytes,
            &key("max_object_bytes"),
            1,
            MAX_BODY_SIZE,
            8 << 20,
        );
        if max_object > capacity / 4 {
            if let Some(v) = &s.max_object_bytes {
                self.r.error(
                    v.span(),
                    key("max_object_bytes"),
                    format!("an object of {max_object} bytes is more than a quarter of the store ({capacity} bytes)"),
                    Some("make `max_object_bytes` smaller or `cache_bytes` larger".to_owned()),
                );
            }
        }
        let ms = |me: &mut Self, v: &Option<Spanned<u64>>, k: &str, default| {
            Duration::from_millis(me.ranged(v, &key(k), 1, 3_600_000, default))
        };
        CacheSettings {
            port,
            tls_port: s
                .tls_port
                .as_ref()
                .map(|p| self.ranged(&Some(p.clone()), &key("tls_port"), 1, 65535, 443) as u16),
            origin: origin.unwrap_or(LbBackend {
                target: "0.0.0.0".to_owned(),
                port: 80,
                weight: 1,
            }),
            capacity,
            max_object,
            connect_timeout: ms(self, &s.connect_timeout_ms, "connect_timeout_ms", 1000),
            request_timeout: ms(self, &s.request_timeout_ms, "request_timeout_ms", 30_000),
            header_timeout: Duration::from_secs(self.ranged(
                &s.header_timeout_secs,
                &key("header_timeout_secs"),
                1,
                3600,
                10,
            )),
        }
    }

    /// A balancer's settings; `peers` are the names a backend may give.
    fn balancer(
        &mut self,
        s: &raw::Service,
        kind: ServiceKind,
        name: &str,
        peers: &[String],
    ) -> LbSettings {
        let key = |k: &str| format!("service \"{name}\".{k}");
        // HTTP has its port; a TCP or UDP balancer must say which.
        let port = match (&s.port, kind) {
            (None, ServiceKind::HttpLb) => 80,
            (None, _) => {
                self.err(
                    &s.name,
                    &key("port"),
                    format!("a `{}` service needs the port it listens on", kind.name()),
                    "add `port = N` (backends without a port get the same one)".to_owned(),
                );
                1
            }
            (Some(_), _) => self.ranged(&s.port, &key("port"), 1, 65535, 80) as u16,
        };
        let backends = self.lb_backends(&s.backends, s.weights.as_deref(), &key, name, peers, port);
        let mut routes = Vec::new();
        for r in &s.routes {
            let r = r.get_ref();
            let path_prefix = match &r.path_prefix {
                Some(p) if !p.get_ref().starts_with('/') => {
                    self.err(
                        p,
                        &key("routes.path_prefix"),
                        "a path starts with `/`",
                        None,
                    );
                    "/".to_owned()
                }
                Some(p) => p.get_ref().clone(),
                None => "/".to_owned(),
            };
            let host = r.host.as_ref().map(|h| h.get_ref().to_ascii_lowercase());
            if r.backends.is_empty() {
                let span = r
                    .host
                    .as_ref()
                    .or(r.path_prefix.as_ref())
                    .map_or(0..0, |v| v.span());
                self.r.error(
                    span,
                    key("routes.backends"),
                    "a route needs backends",
                    Some("add `backends = [\"NAME\", ...]` to the route".to_owned()),
                );
            }
            let rkey = |k: &str| key(&format!("routes.{k}"));
            routes.push(LbRoute {
                host,
                path_prefix,
                backends: self.lb_backends(
                    &r.backends,
                    r.weights.as_deref(),
                    &rkey,
                    name,
                    peers,
                    port,
                ),
            });
        }
        let algorithm = match s.algorithm.as_ref().map(|a| (a, a.get_ref().as_str())) {
            None | Some((_, "round-robin")) => balancer::Algorithm::RoundRobin,
            Some((_, "least-connections")) => balancer::Algorithm::LeastConnections,
            Some((_, "power-of-two")) => balancer::Algorithm::PowerOfTwo,
            Some((_, "source-hash")) => balancer::Algorithm::SourceHash,
            Some((a, "header-hash")) if kind != ServiceKind::HttpLb => {
                self.err(
                    a,
                    &key("algorithm"),
                    "header-hash balances HTTP requests only",
                    "use `source-hash` to keep a client on one backend".to_owned(),
                );
                balancer::Algorithm::RoundRobin
            }
            Some((a, "header-hash")) => match &s.hash_header {
                Some(h) => balancer::Algorithm::HeaderHash(h.get_ref().to_ascii_lowercase()),
                None => {
                    self.err(
                        a,
                        &key("algorithm"),
                        "header-hash needs the header to hash",
                        "add `hash_header = \"NAME\"`".to_owned(),
                    );
                    balancer::Algorithm::RoundRobin
                }
            },
            Some((a, other)) => {
                let names: Vec<String> = balancer::Algorithm::NAMES
                    .iter()
                    .map(|n| (*n).to_owned())
                    .collect();
                let hint = match closest(other, &names) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("one of {}", names.join(", ")),
                };
                self.err(
                    a,
                    &key("algorithm"),
                    format!("unknown algorithm `{other}`"),
                    hint,
                );
                balancer::Algorithm::RoundRobin
            }
        };
        let ms = |me: &mut Self, v: &Option<Spanned<u64>>, k: &str, lo, hi, default| {
            Duration::from_millis(me.ranged(v, &key(k), lo, hi, default))
        };
        let health = balancer::HealthConfig {
            interval: ms(
                self,
                &s.health_interval_ms,
                "health_interval_ms",
                50,
                3_600_000,
                1000,
            ),
            timeout: ms(
                self,
                &s.health_timeout_ms,
                "health_timeout_ms",
                10,
                60_000,
                500,
            ),
            rise: self.ranged(&s.health_rise, &key("health_rise"), 1, 100, 2) as u32,
            fall: self.ranged(&s.health_fall, &key("health_fall"), 1, 100, 3) as u32,
            eject_after: self.ranged(&s.eject_after, &key("eject_after"), 0, 1000, 5) as u32,
            eject_base: ms(self, &s.eject_ms, "eject_ms", 100, 3_600_000, 10_000),
            eject_max: Duration::from_secs(300),
        };
        let default_check = match kind {
            ServiceKind::HttpLb => "http",
            ServiceKind::TcpLb => "tcp",
            _ => "none",
        };
        let check = s.health_check.as_ref().map(|c| (c, c.get_ref().as_str()));
        let health_check = match check.unwrap_or((&s.name, default_check)) {
            (_, "http") => HealthCheck::Http {
                path: s
                    .health_path
                    .as_ref()
                    .map_or_else(|| "/".to_owned(), |p| p.get_ref().clone()),
                status: self.ranged(&s.health_status, &key("health_status"), 100, 599, 200) as u16,
            },
            (_, "tcp") => HealthCheck::Tcp,
            (_, "none") => HealthCheck::None,
            (c, other) => {
                self.err(
                    c,
                    &key("health_check"),
                    format!("unknown health check `{other}`"),
                    "use `http` (GET health_path), `tcp` (a connection) or `none`".to_owned(),
                );
                HealthCheck::None
            }
        };
        if let Some(p) = s
            .health_path
            .as_ref()
            .filter(|p| !p.get_ref().starts_with('/'))
        {
            self.err(p, &key("health_path"), "a path starts with `/`", None);
        }
        LbSettings {
            port,
            backends,
            routes,
            algorithm,
            health,
            health_check,
            retries: self.ranged(&s.retries, &key("retries"), 0, 10, 2) as u32,
            connect_timeout: ms(
                self,
                &s.connect_timeout_ms,
                "connect_timeout_ms",
                10,
                60_000,
                1000,
            ),
            request_timeout: ms(
                self,
                &s.request_timeout_ms,
                "request_timeout_ms",
                10,
                3_600_000,
                30_000,
            ),
            sticky_cookie: s.sticky_cookie.as_ref().map(|c| c.get_ref().clone()),
            requests_per_sec_per_client: s.requests_per_sec_per_client.as_ref().map(|r| {
                self.ranged(
                    &Some(r.clone()),
                    &key("requests_per_sec_per_client"),
                    1,
                    1_000_000,
                    1000,
                ) as u32
            }),
            idle_timeout: ms(
                self,
                &s.idle_timeout_ms,
                "idle_timeout_ms",
                100,
                3_600_000,
                30_000,
            ),
            tls_port: s
                .tls_port
                .as_ref()
                .map(|p| self.ranged(&Some(p.clone()), &key("tls_port"), 1, 65535, 443) as u16),
        }
    }

    /// What each node may be alone but the lab cannot be: nothing to run,
    /// DHCP hosts with no DHCP server on their switch, two DHCP servers on
    /// one switch, two hosts with one MAC address.
    fn check_lab(
        &mut self,
        file: &raw::File,
        switches: &[SwitchSpec],
        hosts: &[HostSpec],
        routers: &[RouterSpec],
    ) {
        self.check_dhcp_ranges(file, switches, hosts, routers);
        if file.switches.is_empty() && file.hosts.is_empty() && file.routers.is_empty() {
            self.r.error(
                0..0,
                "switch",
                "the file defines no switch, host or router: there is no lab to run",
                Some("start from `scratchnet example`, the reference lab as a file".to_owned()),
            );
        }
        let mut served: HashMap<String, String> = HashMap::new();
        for x in &file.routers {
            let x = x.get_ref();
            for d in &x.dhcp {
                let sw = d.get_ref().switch.get_ref().clone();
                let router = x.name.get_ref().clone();
                match served.get(&sw) {
                    Some(first) => self.err(
                        &d.get_ref().switch,
                        &format!("router \"{router}\".dhcp.switch"),
                        format!("switch `{sw}` already has a DHCP server (router `{first}`): two would hand out conflicting leases"),
                        "keep one `[[router.dhcp]]` table per switch".to_owned(),
                    ),
                    None => {
                        served.insert(sw, router);
                    }
                }
            }
        }
        for h in &file.hosts {
            let h = h.get_ref();
            let sw = h.switch.get_ref();
            let known = file
                .switches
                .iter()
                .any(|x| x.get_ref().name.get_ref() == sw);
            if h.address.get_ref() == "dhcp" && known && !served.contains_key(sw) {
                self.err(
                    &h.address,
                    &format!("host \"{}\".address", h.name.get_ref()),
                    format!("host `{}` takes its address by DHCP, but no router serves DHCP on switch `{sw}`", h.name.get_ref()),
                    format!("add a `[[router.dhcp]]` table with `switch = \"{sw}\"` to a router on it, or give the host a static address"),
                );
            }
        }
        let mut macs: HashMap<Mac, &str> = HashMap::new();
        for spec in hosts {
            let Some(raw) = file
                .hosts
                .iter()
                .map(|h| h.get_ref())
                .find(|h| *h.name.get_ref() == spec.name)
            else {
                continue;
            };
            match macs.get(&spec.mac) {
                Some(first) => {
                    let at = raw.mac.as_ref().unwrap_or(&raw.name);
                    self.err(
                        at,
                        &format!("host \"{}\".mac", spec.name),
                        format!("host `{}` has the MAC address {} of host `{first}`", spec.name, spec.mac),
                        "give one of them its own `mac = \"02:...\"` (a MAC not given is derived from the name)".to_owned(),
                    );
                }
                None => {
                    macs.insert(spec.mac, &spec.name);
                }
            }
        }
    }

    /// A DHCP range must not hold a fixed address of its switch: the
    /// network, the broadcast, a router's interface, a static host's or a
    /// service's address.
    fn check_dhcp_ranges(
        &mut self,
        file: &raw::File,
        switches: &[SwitchSpec],
        hosts: &[HostSpec],
        routers: &[RouterSpec],
    ) {
        for (r, raw) in routers.iter().filter_map(|r| {
            let raw = file
                .routers
                .iter()
                .find(|x| *x.get_ref().name.get_ref() == r.name)?;
            Some((r, raw.get_ref()))
        }) {
            for (d, draw) in r.dhcp.iter().zip(&raw.dhcp) {
                let Some(subnet) = switches
                    .iter()
                    .find(|s| s.name == d.switch)
                    .and_then(|s| s.subnet)
                else {
                    continue;
                };
                let mut fixed: Vec<(Ipv4Addr, String)> = vec![
                    (subnet.network(), "the network address".to_owned()),
                    (subnet.broadcast(), "the broadcast address".to_owned()),
                ];
                for x in routers {
                    for i in &x.interfaces {
                        if i.attachment == Attachment::Switch(d.switch.clone()) {
                            fixed
                                .push((i.address.addr(), format!("router `{}`'s address", x.name)));
                        }
                    }
                }
                for h in hosts.iter().filter(|h| h.switch == d.switch) {
                    if let HostAddress::Static(a) = h.address {
                        fixed.push((a.addr(), format!("host `{}`'s address", h.name)));
                    }
                }
                for s in &file.services {
                    let s = s.get_ref();
                    let addr = s
                        .address
                        .get_ref()
                        .split('/')
                        .next()
                        .and_then(|a| a.parse::<Ipv4Addr>().ok());
                    if let (true, Some(a)) = (*s.switch.get_ref() == d.switch, addr) {
                        fixed.push((a, format!("service `{}`'s address", s.name.get_ref())));
                    }
                }
                let held: Vec<&(Ipv4Addr, String)> = fixed
                    .iter()
                    .filter(|(a, _)| (d.first..=d.last).contains(a))
                    .collect();
                if let Some((a, whose)) = held.first() {
                    let more = match held.len() {
                        1 => String::new(),
                        n => format!(" and {} more fixed addresses", n - 1),
                    };
                    self.err(
                        &draw.get_ref().range,
                        &format!("router \"{}\".dhcp.range", r.name),
                        format!("the range {}-{} holds {a}, {whose}{more}", d.first, d.last),
                        "keep the range clear of the switch's fixed addresses (start it above them)".to_owned(),
                    );
                }
            }
        }
    }

    /// Resolves a switch reference, suggesting near names.
    fn switch_ref<'s>(
        &mut self,
        s: &Str,
        key: &str,
        switches: &'s [SwitchSpec],
    ) -> Option<&'s SwitchSpec> {
        let found = switches.iter().find(|sw| sw.name == *s.get_ref());
        if found.is_none() {
            let names: Vec<String> = switches.iter().map(|s| s.name.clone()).collect();
            let hint = match closest(s.get_ref(), &names) {
                Some(near) => format!("did you mean `{near}`?"),
                None if names.is_empty() => "define it in a [[switch]] table".to_owned(),
                None => format!("defined switches: {}", names.join(", ")),
            };
            self.err(
                s,
                key,
                format!("switch `{}` is not defined", s.get_ref()),
                hint,
            );
        }
        found
    }

    /// Checks an interface address (either family) against its
    /// segment's subnet and claims it.
    fn claim(&mut self, s: &Str, key: &str, addr: IpNet, switch: &SwitchSpec, owner: &str) {
        let subnet = match addr {
            IpNet::V4(_) => switch.subnet.map(IpNet::V4),
            IpNet::V6(_) => switch.subnet6.map(IpNet::V6),
        };
        if let Some(subnet) = subnet {
            if !subnet.contains(&addr.addr()) || addr.prefix_len() != subnet.prefix_len() {
                self.err(
                    s,
                    key,
                    format!(
                        "{addr} is not an address of switch `{}` ({subnet})",
                        switch.name
                    ),
                    format!(
                        "pick an address in {subnet} with prefix /{}",
                        subnet.prefix_len()
                    ),
                );
                return;
            }
        }
        let reserved = match addr {
            IpNet::V4(a) if a.prefix_len() < 31 && a.addr() == a.network() => Some("network"),
            IpNet::V4(a) if a.prefix_len() < 31 && a.addr() == a.broadcast() => Some("broadcast"),
            IpNet::V6(a) if a.prefix_len() < 127 && a.addr() == a.network() => {
                Some("subnet-router anycast")
            }
            _ => None,
        };
        if let Some(what) = reserved {
            self.err(
                s,
                key,
                format!("{} is the {what} address of {}", addr.addr(), addr.trunc()),
                "a station needs an address strictly inside the subnet".to_owned(),
            );
            return;
        }
        let slot = (switch.name.clone(), addr.addr());
        if let Some(first) = self.addresses.get(&slot).cloned() {
            self.err(
                s,
                key,
                format!(
                    "{} is already used on switch `{}` by {first}",
                    addr.addr(),
                    switch.name
                ),
                "give each station its own address".to_owned(),
            );
            return;
        }
        self.addresses.insert(slot, owner.to_owned());
    }

    fn gateway(&mut self, g: &Option<Str>, key: &str, net: Option<Ipv4Net>) -> Option<Ipv4Addr> {
        let g = g.as_ref()?;
        let addr = self.ip4(g, key)?;
        if let Some(net) = net {
            if !net.contains(&addr) {
                self.err(
                    g,
                    key,
                    format!("gateway {addr} is not on the local subnet {}", net.trunc()),
                    format!("use an address in {}", net.trunc()),
                );
                return None;
            }
        }
        Some(addr)
    }

    fn switch(&mut self, s: &raw::Switch) -> Option<SwitchSpec> {
        let ok = self.unique(&s.name, "switch");
        let key = |k: &str| format!("switch \"{}\".{k}", s.name.get_ref());
        let subnet = match &s.subnet {
            Some(sub) => {
                let net = self.net(sub, &key("subnet"));
                if let Some(n) = net {
                    if n != n.trunc() {
                        self.err(
                            sub,
                            &key("subnet"),
                            format!("{n} has host bits set"),
                            format!(
                                "a subnet is written with its network address: {}",
                                n.trunc()
                            ),
                        );
                    }
                }
                net.map(|n| n.trunc())
            }
            None => None,
        };
        let subnet6 = self.subnet6(s, &key("subnet6"));
        let mtu = self.ranged(&s.mtu, &key("mtu"), 68, 65535, 1500) as u16;
        let ageing = self.ranged(&s.ageing_secs, &key("ageing_secs"), 1, 1_000_000, 300);
        let table = self.ranged(&s.mac_table_size, &key("mac_table_size"), 1, 1 << 20, 8192);
        let tunnels = s
            .vxlan
            .iter()
            .filter_map(|t| self.tunnel(s.name.get_ref(), t.get_ref(), &key("vxlan")))
            .collect();
        ok.then(|| SwitchSpec {
            name: s.name.get_ref().clone(),
            subnet,
            subnet6,
            mtu,
            ageing: Duration::from_secs(ageing),
            mac_table_size: table as usize,
            multicast_snooping: s.multicast_snooping.as_ref().is_none_or(|v| *v.get_ref()),
            tunnels,
        })
    }

    /// A switch's VXLAN tunnel.
    fn tunnel(&mut self, switch: &str, t: &raw::Vxlan, key: &str) -> Option<TunnelSpec> {
        let vni = self.ranged(
            &Some(t.vni.clone()),
            &format!("{key}.vni"),
            0,
            u64::from(wire::vxlan::MAX_VNI),
            0,
        );
        let port = self.ranged(
            &t.port,
            &format!("{key}.port"),
            1,
            65535,
            u64::from(wire::vxlan::PORT),
        );
        let local = match &t.local {
            Some(l) => self.ip4(l, &format!("{key}.local"))?,
            None => Ipv4Addr::UNSPECIFIED,
        };
        let remote = t.remote.get_ref().trim().to_owned();
        let name_ok = remote.parse::<Ipv4Addr>().is_ok()
            || (!remote.is_empty()
                && remote.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                }));
        if !name_ok {
            self.err(
                &t.remote,
                &format!("{key}.remote"),
                format!("`{remote}` is neither an IPv4 address nor a host name"),
                "give the peer's address, like \"192.0.2.2\", or its name, like \"lab-dc\""
                    .to_owned(),
            );
            return None;
        }
        let port = port as u16;
        let port_name = format!("{switch}.vxlan{vni}");
        let clash = self.tunnels.iter().find(|(l, p, _)| {
            *p == port && (*l == local || l.is_unspecified() || local.is_unspecified())
        });
        if let Some((_, _, other)) = clash {
            let other = other.clone();
            self.err(
                &t.remote,
                key,
                format!("{port_name} would listen on UDP port {port} as {other} does"),
                "give each tunnel its own `local` address or `port`".to_owned(),
            );
            return None;
        }
        self.tunnels.push((local, port, port_name.clone()));
        Some(TunnelSpec {
            port_name,
            vni: vni as u32,
            remote,
            local,
            port,
            offload: t.offload.unwrap_or(false),
        })
    }

    /// Subnets of different switches must not overlap. Two CIDR blocks
    /// overlap only if one holds the other, so in address order a block
    /// overlaps an earlier one exactly when one still open holds it: one
    /// pass, each switch reported once, however many share a subnet.
    /// The same for the IPv6 prefixes (`six`).
    fn check_overlaps(&mut self, file: &raw::File, switches: &[SwitchSpec], six: bool) {
        let field = if six { "subnet6" } else { "subnet" };
        let spans: HashMap<&str, &Str> = file
            .switches
            .iter()
            .filter_map(|s| {
                let s = s.get_ref();
                let span = if six { &s.subnet6 } else { &s.subnet };
                Some((s.name.get_ref().as_str(), span.as_ref()?))
            })
            .collect();
        let mut nets: Vec<(IpNet, usize)> = switches
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let net = if six {
                    s.subnet6.map(IpNet::V6)
                } else {
                    s.subnet.map(IpNet::V4)
                };
                Some((net?, i))
            })
            .collect();
        nets.sort_by_key(|(n, i)| (n.network(), n.prefix_len(), *i));
        let mut open: Vec<(IpNet, usize)> = Vec::new();
        for (net, i) in nets {
            while open
                .last()
                .is_some_and(|(o, _)| !o.contains(&net.network()))
            {
                open.pop();
            }
            if let Some(&(outer, j)) = open.last() {
                let (a, b) = (&switches[i], &switches[j]);
                if let Some(sub) = spans.get(a.name.as_str()) {
                    self.err(
                        sub,
                        &format!("switch \"{}\".{field}", a.name),
                        format!("{net} overlaps {outer} of switch `{}`", b.name),
                        "segments need disjoint subnets; a router joins them".to_owned(),
                    );
                }
            }
            open.push((net, i));
        }
    }

    fn host(&mut self, h: &raw::Host, switches: &[SwitchSpec]) -> Option<HostSpec> {
        let name = h.name.get_ref().clone();
        let ok = self.unique(&h.name, "host");
        let key = |k: &str| format!("host \"{name}\".{k}");
        let sw = self
            .switch_ref(&h.switch, &key("switch"), switches)
            .cloned();
        let address = if h.address.get_ref() == "none" {
            if h.address6.is_none() {
                self.err(
                    &h.address,
                    &key("address"),
                    "a host with no IPv4 address needs an IPv6 one",
                    "add `address6` (\"slaac\", \"dhcp6\" or ADDRESS/PREFIX), or give an IPv4 address".to_owned(),
                );
            }
            if let Some(g) = &h.gateway {
                self.err(
                    g,
                    &key("gateway"),
                    "an IPv6-only host has no IPv4 gateway",
                    "remove `gateway`".to_owned(),
                );
            }
            Some(HostAddress::None)
        } else if h.address.get_ref() == "dhcp" {
            if let Some(g) = &h.gateway {
                self.err(
                    g,
                    &key("gateway"),
                    "a DHCP host learns its gateway from the DHCP server",
                    "remove `gateway` or give a static address".to_owned(),
                );
            }
            Some(HostAddress::Dhcp)
        } else {
            let net = self.net(&h.address, &key("address"));
            if let (Some(n), Some(sw)) = (net, &sw) {
                self.claim(
                    &h.address,
                    &key("address"),
                    IpNet::V4(n),
                    sw,
                    &format!("host \"{name}\""),
                );
            }
            net.map(HostAddress::Static)
        };
        let net = match address {
            Some(HostAddress::Static(n)) => Some(n),
            _ => None,
        };
        let gateway = self.gateway(&h.gateway, &key("gateway"), net);
        let (address6, gateway6) = self.host6(h, sw.as_ref(), &name);
        let dns = self.ips(&h.dns, &key("dns"));
        let mac = match &h.mac {
            Some(m) => match m.get_ref().parse::<Mac>() {
                Ok(mac) if mac.is_unicast() => mac,
                Ok(_) => {
                    self.err(
                        m,
                        &key("mac"),
                        "a host needs a unicast MAC address",
                        "clear the lowest bit of the first octet, e.g. 02:...".to_owned(),
                    );
                    Mac::ZERO
                }
                Err(e) => {
                    self.err(m, &key("mac"), e.to_string(), None);
                    Mac::ZERO
                }
            },
            None => Mac::local_from(&name),
        };
        let default_mtu = sw.as_ref().map_or(1500, |s| u64::from(s.mtu));
        let mtu = self.ranged(&h.mtu, &key("mtu"), 68, 65535, default_mtu) as u16;
        let vlan = self.ranged(&h.vlan, &key("vlan"), 1, 4094, 1) as u16;
        let tagged_vlans = h
            .tagged_vlans
            .iter()
            .map(|v| self.ranged(&Some(v.clone()), &key("tagged_vlans"), 1, 4094, 1) as u16)
            .collect();
        let txqueuelen = self.ranged(&h.txqueuelen, &key("txqueuelen"), 1, 1 << 20, 10_000) as u32;
        Some(HostSpec {
            name: name.clone(),
            switch: sw?.name,
            address: address?,
            gateway,
            address6,
            gateway6,
            dns,
            mac,
            mtu,
            vlan,
            tagged_vlans,
            offload: h.offload.unwrap_or(true),
            txqueuelen,
            impair: self.impair(&h.impair, &key("impair")),
        })
        .filter(|_| ok)
    }

    fn router(&mut self, x: &raw::Router, switches: &[SwitchSpec]) -> Option<RouterSpec> {
        let name = x.name.get_ref().clone();
        let ok = self.unique(&x.name, "router");
        let key = |k: &str| format!("router \"{name}\".{k}");
        let mut interfaces = Vec::new();
        for i in &x.interfaces {
            let i = i.get_ref();
            let address = self.net(&i.address, &key("interfaces.address"));
            let mtu = self.ranged(&i.mtu, &key("interfaces.mtu"), 68, 65535, 1500) as u16;
            let attachment = match (&i.switch, &i.tun) {
                (Some(s), None) => {
                    let sw = self
                        .switch_ref(s, &key("interfaces.switch"), switches)
                        .cloned();
                    if let (Some(a), Some(sw)) = (address, &sw) {
                        self.claim(
                            &i.address,
                            &key("interfaces.address"),
                            IpNet::V4(a),
                            sw,
                            &format!("router \"{name}\""),
                        );
                    }
                    sw.map(|sw| Attachment::Switch(sw.name))
                }
                (None, Some(t)) => {
                    let peer = match &i.peer {
                        Some(p) => self.ip4(p, &key("interfaces.peer")),
                        None => {
                            self.err(
                                t,
                                &key("interfaces.tun"),
                                "a TUN interface needs the address of its other end",
                                "add `peer = \"ADDRESS\"`".to_owned(),
                            );
                            None
                        }
                    };
                    if let (Some(p), Some(a), Some(raw)) = (peer, address, &i.peer) {
                        if !a.contains(&p) || p == a.addr() {
                            self.err(
                                raw,
                                &key("interfaces.peer"),
                                format!("peer {p} is not another address in {}", a.trunc()),
                                None,
                            );
                        }
                    }
                    let host_routes = i
                        .host_routes
                        .iter()
                        .filter_map(|r| {
                            let net = self.ipnet(r, &key("interfaces.host_routes"))?;
                            if net.prefix_len() == 0 {
                                self.err(
                                    r,
                                    &key("interfaces.host_routes"),
                                    format!("`{net}` would send all of the machine's traffic into the lab, its own default route included"),
                                    "route only the lab's networks through the uplink, such as `203.0.113.0/24`".to_owned(),
                                );
                                return None;
                            }
                            Some(net.trunc())
                        })
                        .collect();
                    let peer6 = self.tun_peer6(i, &key("interfaces.peer6"));
                    peer.map(|peer| Attachment::Tun {
                        name: t.get_ref().clone(),
                        peer,
                        peer6,
                        host_routes,
                    })
                }
                _ => {
                    self.err(&i.address, &key("interfaces"), "an interface needs exactly one of `switch` or `tun`", "attach it to a switch (`switch = \"NAME\"`) or make it a TUN link (`tun = \"host\"`)".to_owned());
                    None
                }
            };
            let sw = match &attachment {
                Some(Attachment::Switch(sw)) => switches.iter().find(|s| s.name == *sw),
                _ => None,
            };
            let (address6, ra) = self.iface6(i, sw, &name);
            if let (Some(attachment), Some(address)) = (attachment, address) {
                interfaces.push(InterfaceSpec {
                    attachment,
                    address,
                    address6,
                    ra,
                    mtu,
                    impair: self.impair(&i.impair, &key("interfaces.impair")),
                });
            }
        }
        let on_switch = |sw: &str| {
            interfaces
                .iter()
                .any(|i| i.attachment == Attachment::Switch(sw.to_owned()))
        };
        let connected: Vec<IpNet> = interfaces
            .iter()
            .flat_map(|i| [Some(IpNet::V4(i.address)), i.address6.map(IpNet::V6)])
            .flatten()
            .collect();
        let mut routes = Vec::new();
        for rt in &x.routes {
            let rt = rt.get_ref();
            let to = self.ipnet(&rt.to, &key("routes.to"));
            if let Some(n) = to.filter(|n| *n != n.trunc()) {
                self.err(
                    &rt.to,
                    &key("routes.to"),
                    format!("`{n}` has host bits set: a route is to a network"),
                    format!("did you mean `{}`?", n.trunc()),
                );
            }
            let to = to.map(|n| n.trunc());
            let via = self.ip(&rt.via, &key("routes.via"));
            if let (Some(to), Some(v)) = (to, via) {
                if to.addr().is_ipv4() != v.is_ipv4() {
                    self.err(
                        &rt.via,
                        &key("routes.via"),
                        format!("next hop {v} is not of the family of {to}"),
                        "an IPv4 route needs an IPv4 next hop, an IPv6 route an IPv6 one"
                            .to_owned(),
                    );
                    continue;
                }
            }
            if let Some(v) = via {
                if connected.iter().any(|n| n.addr() == v) {
                    self.err(
                        &rt.via,
                        &key("routes.via"),
                        format!("next hop {v} is this router's own address"),
                        "the next hop is the neighbouring router the packets go to: its address on the shared subnet".to_owned(),
                    );
                } else if !connected.iter().any(|n| n.trunc().contains(&v)) {
                    self.err(
                        &rt.via,
                        &key("routes.via"),
                        format!("next hop {v} is not on any of the router's subnets"),
                        "a next hop must be directly reachable from an interface".to_owned(),
                    );
                }
            }
            if let (Some(to), Some(via)) = (to, via) {
                routes.push(RouteSpec { to, via });
            }
        }
        let nat = x.nat.as_ref().and_then(|n| {
            let n = n.get_ref();
            let o = &n.outside;
            if !on_switch(o.get_ref()) {
                self.err(
                    o,
                    &key("nat.outside"),
                    format!("the router has no interface on switch `{}`", o.get_ref()),
                    "name the switch of the router's outside interface".to_owned(),
                );
                return None;
            }
            let filtering = match n.filtering.as_ref().map(|f| (f, f.get_ref().as_str())) {
                None | Some((_, "address-and-port-dependent")) => {
                    NatFiltering::AddressAndPortDependent
                }
                Some((_, "address-dependent")) => NatFiltering::AddressDependent,
                Some((_, "endpoint-independent")) => NatFiltering::EndpointIndependent,
                Some((f, other)) => {
                    self.err(
                        f,
                        &key("nat.filtering"),
                        format!("unknown filtering `{other}`"),
                        format!("use one of: {}", NatFiltering::NAMES.join(", ")),
                    );
                    NatFiltering::AddressAndPortDependent
                }
            };
            let ports = match &n.ports {
                None => (1024, 65535),
                Some(p) => match p.get_ref().split_once('-').and_then(|(a, b)| {
                    Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
                }) {
                    Some((a, b)) if 0 < a && a <= b => (a, b),
                    _ => {
                        self.err(
                            p,
                            &key("nat.ports"),
                            format!("`{}` is not a port range", p.get_ref()),
                            "write FIRST-LAST, like 1024-65535".to_owned(),
                        );
                        (1024, 65535)
                    }
                },
            };
            let secs = |v: &Option<Spanned<u64>>, k: &str, d: u64, me: &mut Self| {
                Duration::from_secs(me.ranged(v, &key(k), 1, 1 << 32, d))
            };
            Some(NatSpec {
                outside: o.get_ref().clone(),
                filtering,
                ports,
                max_entries: self.ranged(&n.max_entries, &key("nat.max_entries"), 1, 1 << 24, 65536)
                    as usize,
                max_entries_per_host: self.ranged(
                    &n.max_entries_per_host,
                    &key("nat.max_entries_per_host"),
                    1,
                    1 << 24,
                    16384,
                ) as usize,
                max_ports_per_host: self.ranged(
                    &n.max_ports_per_host,
                    &key("nat.max_ports_per_host"),
                    1,
                    65535,
                    16384,
                ) as usize,
                udp_timeout: secs(&n.udp_timeout_secs, "nat.udp_timeout_secs", 300, self),
                tcp_established_timeout: secs(
                    &n.tcp_established_timeout_secs,
                    "nat.tcp_established_timeout_secs",
                    7440,
                    self,
                ),
                tcp_transitory_timeout: secs(
                    &n.tcp_transitory_timeout_secs,
                    "nat.tcp_transitory_timeout_secs",
                    240,
                    self,
                ),
                icmp_timeout: secs(&n.icmp_timeout_secs, "nat.icmp_timeout_secs", 60, self),
            })
        });
        let mut dhcp = Vec::new();
        for d in &x.dhcp {
            let d = d.get_ref();
            let k = key("dhcp.range");
            let iface = interfaces
                .iter()
                .find(|i| i.attachment == Attachment::Switch(d.switch.get_ref().clone()));
            let Some(iface) = iface else {
                self.err(
                    &d.switch,
                    &key("dhcp.switch"),
                    format!(
                        "the router has no interface on switch `{}`",
                        d.switch.get_ref()
                    ),
                    None,
                );
                continue;
            };
            let net = iface.address.trunc();
            let range = d.range.get_ref().split_once('-').and_then(|(a, b)| {
                Some((
                    a.trim().parse::<Ipv4Addr>().ok()?,
                    b.trim().parse::<Ipv4Addr>().ok()?,
                ))
            });
            let Some((first, last)) =
                range.filter(|(a, b)| a <= b && net.contains(a) && net.contains(b))
            else {
                self.err(
                    &d.range,
                    &k,
                    format!(
                        "`{}` is not a range of addresses in {net}",
                        d.range.get_ref()
                    ),
                    "write FIRST-LAST, like 192.168.1.100-192.168.1.199".to_owned(),
                );
                continue;
            };
            let lease = self.ranged(&d.lease_secs, &key("dhcp.lease_secs"), 60, 1 << 31, 3600);
            let dns = self.ips(&d.dns, &key("dhcp.dns"));
            let requests_per_sec = self.ranged(
                &d.requests_per_sec,
                &key("dhcp.requests_per_sec"),
                1,
                10_000,
                5,
            ) as u32;
            dhcp.push(DhcpSpec {
                switch: d.switch.get_ref().clone(),
                first,
                last,
                dns,
                lease: Duration::from_secs(lease),
                requests_per_sec,
            });
        }
        let mut forwards = Vec::new();
        for f in &x.forwards {
            let f = f.get_ref();
            let protocol = self.protocol(&f.protocol, &key("forwards.protocol"));
            let port =
                self.ranged(&Some(f.port.clone()), &key("forwards.port"), 1, 65535, 0) as u16;
            let to = match f.to.get_ref().parse::<SocketAddrV4>() {
                // The target must be reachable other than by the default
                // route: on a network of the router, or one it routes to.
                Ok(a)
                    if !connected
                        .iter()
                        .chain(routes.iter().map(|r: &RouteSpec| &r.to))
                        .any(|n| {
                            n.prefix_len() > 0 && n.trunc().contains(&IpAddr::V4(*a.ip()))
                        }) =>
                {
                    self.err(
                        &f.to,
                        &key("forwards.to"),
                        format!("{} is on none of router `{}`'s networks and none it routes to", a.ip(), x.name.get_ref()),
                        "forward to a host on one of the router's switches (or add a route to its network)".to_owned(),
                    );
                    None
                }
                Ok(a) => Some(a),
                Err(_) => {
                    self.err(
                        &f.to,
                        &key("forwards.to"),
                        format!("`{}` is not ADDRESS:PORT", f.to.get_ref()),
                        "like 10.1.0.10:80".to_owned(),
                    );
                    None
                }
            };
            if let (Some(protocol), Some(to), true) = (protocol, to, port != 0) {
                forwards.push(ForwardSpec { protocol, port, to });
            }
        }
        if !forwards.is_empty() && nat.is_none() {
            self.err(
                &x.name,
                &key("forwards"),
                "port forwards need a NAT",
                "add `nat = { outside = \"SWITCH\" }`".to_owned(),
            );
        }
        let arp_cache_size =
            self.ranged(&x.arp_cache_size, &key("arp_cache_size"), 16, 1 << 20, 4096) as usize;
        let arp_queue_bytes = self.ranged(
            &x.arp_queue_bytes,
            &key("arp_queue_bytes"),
            64 * 1024,
            1 << 30,
            1 << 20,
        ) as usize;
        let icmp_errors_per_sec = self.ranged(
            &x.icmp_errors_per_sec,
            &key("icmp_errors_per_sec"),
            1,
            1_000_000,
            1000,
        ) as u32;
        let firewall6 = x
            .firewall6
            .as_ref()
            .and_then(|f| self.firewall6(f, &interfaces, &name));
        let nat64 = x
            .nat64
            .as_ref()
            .and_then(|n| self.nat64(n.get_ref(), &interfaces, nat.as_ref(), &name));
        let dhcp6 = x
            .dhcp6
            .iter()
            .filter_map(|d| self.dhcp6(d.get_ref(), &interfaces, &name))
            .collect();
        ok.then_some(RouterSpec {
            name,
            interfaces,
            routes,
            nat,
            firewall6,
            nat64,
            dhcp,
            dhcp6,
            forwards,
            arp_cache_size,
            arp_queue_bytes,
            icmp_errors_per_sec,
        })
    }

    /// The settings of a service of `kind`: each key another kind takes is
    /// an error at the key.
    fn service_settings(
        &mut self,
        s: &raw::Service,
        kind: ServiceKind,
        name: &str,
        services: &[String],
    ) -> ServiceSettings {
        let key = |k: &str| format!("service \"{name}\".{k}");
        let takes = settings_keys(kind);
        let given = [
            ("port", s.port.as_ref().map(|v| v.span())),
            ("body_size", s.body_size.as_ref().map(|v| v.span())),
            ("delay_ms", s.delay_ms.as_ref().map(|v| v.span())),
            ("origin", s.origin.as_ref().map(|v| v.span())),
            ("cache_bytes", s.cache_bytes.as_ref().map(|v| v.span())),
            (
                "max_object_bytes",
                s.max_object_bytes.as_ref().map(|v| v.span()),
            ),
            ("paths", s.paths.first().map(|v| v.span())),
            (
                "header_timeout_secs",
                s.header_timeout_secs.as_ref().map(|v| v.span()),
            ),
            ("backends", s.backends.first().map(|v| v.span())),
            (
                "weights",
                s.weights.as_ref().and_then(|w| w.first()).map(|v| v.span()),
            ),
            ("algorithm", s.algorithm.as_ref().map(|v| v.span())),
            ("hash_header", s.hash_header.as_ref().map(|v| v.span())),
            ("health_check", s.health_check.as_ref().map(|v| v.span())),
            ("health_path", s.health_path.as_ref().map(|v| v.span())),
            ("health_status", s.health_status.as_ref().map(|v| v.span())),
            (
                "health_interval_ms",
                s.health_interval_ms.as_ref().map(|v| v.span()),
            ),
            (
                "health_timeout_ms",
                s.health_timeout_ms.as_ref().map(|v| v.span()),
            ),
            ("health_rise", s.health_rise.as_ref().map(|v| v.span())),
            ("health_fall", s.health_fall.as_ref().map(|v| v.span())),
            ("eject_after", s.eject_after.as_ref().map(|v| v.span())),
            ("eject_ms", s.eject_ms.as_ref().map(|v| v.span())),
            ("retries", s.retries.as_ref().map(|v| v.span())),
            (
                "connect_timeout_ms",
                s.connect_timeout_ms.as_ref().map(|v| v.span()),
            ),
            (
                "request_timeout_ms",
                s.request_timeout_ms.as_ref().map(|v| v.span()),
            ),
            ("sticky_cookie", s.sticky_cookie.as_ref().map(|v| v.span())),
            (
                "idle_timeout_ms",
                s.idle_timeout_ms.as_ref().map(|v| v.span()),
            ),
            ("tls_port", s.tls_port.as_ref().map(|v| v.span())),
            ("routes", s.routes.first().map(|v| v.span())),
            (
                "requests_per_sec_per_client",
                s.requests_per_sec_per_client.as_ref().map(|v| v.span()),
            ),
            ("root_hints", s.root_hints.first().map(|v| v.span())),
            ("zones", s.zones.first().map(|v| v.span())),
            (
                "allow",
                s.allow.as_ref().and_then(|a| a.first()).map(|v| v.span()),
            ),
            (
                "queries_per_sec_per_client",
                s.queries_per_sec_per_client.as_ref().map(|v| v.span()),
            ),
            (
                "allow_transfer",
                s.allow_transfer
                    .as_ref()
                    .and_then(|a| a.first())
                    .map(|v| v.span()),
            ),
            (
                "case_randomisation",
                s.case_randomisation.as_ref().map(|v| v.span()),
            ),
            ("cache_size", s.cache_size.as_ref().map(|v| v.span())),
            ("serve_stale", s.serve_stale.as_ref().map(|v| v.span())),
            ("prefetch", s.prefetch.as_ref().map(|v| v.span())),
            ("dns64", s.dns64.as_ref().map(|v| v.span())),
            (
                "upstream_timeout_ms",
                s.upstream_timeout_ms.as_ref().map(|v| v.span()),
            ),
        ];
        for (k, span) in given {
            if let Some(span) = span.filter(|_| !takes.contains(&k)) {
                let takers: Vec<&str> = ServiceKind::ALL
                    .into_iter()
                    .filter(|other| settings_keys(*other).contains(&k))
                    .map(ServiceKind::name)
                    .collect();
                self.r.error(
                    span,
                    key(k),
                    format!("a `{}` service has no `{k}`", kind.name()),
                    format!("`{k}` is for {} services", takers.join(" and ")).into(),
                );
            }
        }
        let port = |me: &mut Self, default: u64| {
            me.ranged(&s.port, &key("port"), 1, 65535, default) as u16
        };
        match kind {
            ServiceKind::Http => ServiceSettings::Http(HttpSettings {
                port: port(self, 80),
                body_size: s
                    .body_size
                    .as_ref()
                    .map(|b| self.ranged(&Some(b.clone()), &key("body_size"), 0, MAX_BODY_SIZE, 0)),
                header_timeout: Duration::from_secs(self.ranged(
                    &s.header_timeout_secs,
                    &key("header_timeout_secs"),
                    1,
                    3600,
                    10,
                )),
                delay: Duration::from_millis(self.ranged(
                    &s.delay_ms,
                    &key("delay_ms"),
                    0,
                    MAX_DELAY_MS,
                    0,
                )),
                paths: s
                    .paths
                    .iter()
                    .map(|p| self.http_path(p.get_ref(), &key))
                    .collect(),
            }),
            ServiceKind::Echo => ServiceSettings::Echo(EchoSettings {
                port: port(self, 7),
            }),
            ServiceKind::HttpLb => ServiceSettings::HttpLb(self.balancer(s, kind, name, services)),
            ServiceKind::Cache => ServiceSettings::Cache(self.cache(s, name, services)),
            ServiceKind::TcpLb => ServiceSettings::TcpLb(self.balancer(s, kind, name, services)),
            ServiceKind::UdpLb => ServiceSettings::UdpLb(self.balancer(s, kind, name, services)),
            ServiceKind::DnsAuthoritative => {
                let mut zones = Vec::new();
                for z in &s.zones {
                    let z = z.get_ref();
                    match dns::Zone::parse(z.origin.get_ref(), z.records.get_ref()) {
                        Ok(mut zone) => {
                            for g in &z.geo {
                                self.geo_view(&mut zone, g, &key);
                            }
                            zones.push(zone)
                        }
                        Err(e) => self.err(
                            &z.records,
                            &key("zones.records"),
                            format!("zone `{}`: {e}", z.origin.get_ref()),
                            "write the zone as an RFC 1035 zone file: SOA and NS at the apex, names relative to the origin or ending in `.`".to_owned(),
                        ),
                    }
                }
                ServiceSettings::DnsAuthoritative(DnsAuthoritativeSettings {
                    zones,
                    allow_transfer: self.nets(&s.allow_transfer, &key("allow_transfer")),
                    responses_per_sec: self.ranged(
                        &s.responses_per_sec,
                        &key("responses_per_sec"),
                        0,
                        1_000_000,
                        200,
                    ) as u32,
                    rrl_slip: self.ranged(&s.rrl_slip, &key("rrl_slip"), 0, 10, 2) as u32,
                })
            }
            ServiceKind::DnsResolver => ServiceSettings::DnsResolver(DnsResolverSettings {
                root_hints: self.ips(&s.root_hints, &key("root_hints")),
                allow: self.nets(&s.allow, &key("allow")),
                queries_per_sec_per_client: self.ranged(
                    &s.queries_per_sec_per_client,
                    &key("queries_per_sec_per_client"),
                    1,
                    1_000_000,
                    1000,
                ) as u32,
                case_randomisation: s.case_randomisation.as_ref().is_none_or(|v| *v.get_ref()),
                serve_stale: s.serve_stale.as_ref().is_some_and(|v| *v.get_ref()),
                prefetch: s.prefetch.as_ref().is_some_and(|v| *v.get_ref()),
                cache_size: self.ranged(&s.cache_size, &key("cache_size"), 1, 10_000_000, 50_000)
                    as usize,
                upstream_timeout_ms: self.ranged(
                    &s.upstream_timeout_ms,
                    &key("upstream_timeout_ms"),
                    50,
                    10_000,
                    800,
                ),
                dns64: s
                    .dns64
                    .as_ref()
                    .and_then(|p| self.prefix96(p, &key("dns64"))),
            }),
        }
    }

    fn service(
        &mut self,
        s: &raw::Service,
        switches: &[SwitchSpec],
        services: &[String],
    ) -> Option<ServiceSpec> {
        let name = s.name.get_ref().clone();
        let ok = self.unique(&s.name, "service");
        let key = |k: &str| format!("service \"{name}\".{k}");
        let kind = ServiceKind::parse(s.kind.get_ref());
        if kind.is_none() {
            let names: Vec<String> = ServiceKind::ALL
                .iter()
                .map(|k| k.name().to_owned())
                .collect();
            let hint = match closest(s.kind.get_ref(), &names) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("known kinds: {}", names.join(", ")),
            };
            self.err(
                &s.kind,
                &key("kind"),
                format!("unknown service kind `{}`", s.kind.get_ref()),
                hint,
            );
        }
        let sw = self
            .switch_ref(&s.switch, &key("switch"), switches)
            .cloned();
        let address = self.net(&s.address, &key("address"));
        if let (Some(a), Some(sw)) = (address, &sw) {
            self.claim(
                &s.address,
                &key("address"),
                IpNet::V4(a),
                sw,
                &format!("service \"{name}\""),
            );
        }
        let gateway = self.gateway(&s.gateway, &key("gateway"), address);
        let (address6, gateway6) = self.static6(
            (&s.address6, &s.gateway6),
            sw.as_ref(),
            &format!("service \"{name}\""),
        );
        let settings = kind.map(|kind| self.service_settings(s, kind, &name, services));
        Some(ServiceSpec {
            name: name.clone(),
            switch: sw?.name,
            address: address?,
            gateway,
            address6,
            gateway6,
            impair: self.impair(&s.impair, &key("impair")),
            max_connections_per_client: self.ranged(
                &s.max_connections_per_client,
                &key("max_connections_per_client"),
                1,
                1 << 20,
                4096,
            ) as usize,
            settings: settings?,
        })
        .filter(|_| ok)
    }
}
