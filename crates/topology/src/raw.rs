//! The file as written: serde shapes with source spans, before any checks.
//!
//! Every table denies unknown keys, so a typo is an error rather than a
//! silently ignored setting. Values are kept as written (strings with
//! spans) so that validation can say exactly what is wrong and where.

use serde::Deserialize;
use toml::Spanned;

pub type Str = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub name: Option<Str>,
    pub seed: Option<Spanned<u64>>,
    #[serde(default, rename = "switch")]
    pub switches: Vec<Spanned<Switch>>,
    #[serde(default, rename = "host")]
    pub hosts: Vec<Spanned<Host>>,
    #[serde(default, rename = "router")]
    pub routers: Vec<Spanned<Router>>,
    #[serde(default, rename = "service")]
    pub services: Vec<Spanned<Service>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    pub name: Str,
    pub subnet: Option<Str>,
    pub subnet6: Option<Str>,
    pub mtu: Option<Spanned<u32>>,
    pub ageing_secs: Option<Spanned<u64>>,
    pub mac_table_size: Option<Spanned<u64>>,
    pub multicast_snooping: Option<Spanned<bool>>,
    #[serde(default)]
    pub vxlan: Vec<Spanned<Vxlan>>,
}

/// A VXLAN tunnel from a switch to a remote one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vxlan {
    pub vni: Spanned<u64>,
    pub remote: Str,
    pub local: Option<Str>,
    pub port: Option<Spanned<u32>>,
    pub offload: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub name: Str,
    pub switch: Str,
    pub address: Str,
    pub gateway: Option<Str>,
    pub address6: Option<Str>,
    pub gateway6: Option<Str>,
    #[serde(default)]
    pub dns: Vec<Str>,
    pub mac: Option<Str>,
    pub mtu: Option<Spanned<u32>>,
    pub vlan: Option<Spanned<u32>>,
    #[serde(default)]
    pub tagged_vlans: Vec<Spanned<u32>>,
    pub offload: Option<bool>,
    pub txqueuelen: Option<Spanned<u32>>,
    pub impair: Option<Spanned<Impair>>,
}

/// What a link does to frames (netem's knobs), as text: checked by
/// `wire::Impairment::set`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Impair {
    pub delay: Option<Str>,
    pub jitter: Option<Str>,
    pub loss: Option<Str>,
    pub duplicate: Option<Str>,
    pub reorder: Option<Str>,
    pub rate: Option<Str>,
    pub queue: Option<Str>,
    pub direction: Option<Str>,
}

impl Impair {
    /// Each knob written, by name.
    pub fn knobs(&self) -> [(&'static str, Option<&Str>); 8] {
        [
            ("delay", self.delay.as_ref()),
            ("jitter", self.jitter.as_ref()),
            ("loss", self.loss.as_ref()),
            ("duplicate", self.duplicate.as_ref()),
            ("reorder", self.reorder.as_ref()),
            ("rate", self.rate.as_ref()),
            ("queue", self.queue.as_ref()),
            ("direction", self.direction.as_ref()),
        ]
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Router {
    pub name: Str,
    #[serde(default)]
    pub interfaces: Vec<Spanned<Interface>>,
    #[serde(default)]
    pub routes: Vec<Spanned<Route>>,
    pub nat: Option<Spanned<Nat>>,
    pub firewall6: Option<Spanned<Firewall6>>,
    pub nat64: Option<Spanned<Nat64>>,
    #[serde(default)]
    pub dhcp: Vec<Spanned<Dhcp>>,
    #[serde(default)]
    pub dhcp6: Vec<Spanned<Dhcp6>>,
    #[serde(default)]
    pub forwards: Vec<Spanned<Forward>>,
    pub arp_cache_size: Option<Spanned<u64>>,
    pub arp_queue_bytes: Option<Spanned<u64>>,
    pub icmp_errors_per_sec: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    pub switch: Option<Str>,
    pub tun: Option<Str>,
    pub address: Str,
    pub address6: Option<Str>,
    pub peer: Option<Str>,
    pub peer6: Option<Str>,
    pub ra: Option<Spanned<Ra>>,
    #[serde(default)]
    pub host_routes: Vec<Str>,
    pub mtu: Option<Spanned<u32>>,
    pub impair: Option<Spanned<Impair>>,
}

/// An interface's router advertisements (RFC 4861).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ra {
    pub slaac: Option<bool>,
    pub managed: Option<bool>,
    pub other: Option<bool>,
    #[serde(default)]
    pub rdnss: Vec<Str>,
    #[serde(default)]
    pub dnssl: Vec<Str>,
    pub interval_secs: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub to: Str,
    pub via: Str,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nat {
    pub outside: Str,
    pub filtering: Option<Str>,
    pub ports: Option<Str>,
    pub max_entries: Option<Spanned<u64>>,
    pub max_entries_per_host: Option<Spanned<u64>>,
    pub max_ports_per_host: Option<Spanned<u64>>,
    pub udp_timeout_secs: Option<Spanned<u64>>,
    pub tcp_established_timeout_secs: Option<Spanned<u64>>,
    pub tcp_transitory_timeout_secs: Option<Spanned<u64>>,
    pub icmp_timeout_secs: Option<Spanned<u64>>,
}

/// A customer router's IPv6 firewall (RFC 6092).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firewall6 {
    pub outside: Str,
    #[serde(default)]
    pub pinholes: Vec<Spanned<Pinhole>>,
    pub max_entries: Option<Spanned<u64>>,
    pub max_entries_per_host: Option<Spanned<u64>>,
}

/// NAT64 (RFC 6146) from the router's IPv6 side to the IPv4 one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nat64 {
    pub outside: Str,
    pub prefix: Option<Str>,
    pub max_entries: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinhole {
    pub protocol: Str,
    pub port: Spanned<u32>,
    pub to: Str,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dhcp {
    pub switch: Str,
    pub range: Str,
    #[serde(default)]
    pub dns: Vec<Str>,
    pub lease_secs: Option<Spanned<u64>>,
    pub requests_per_sec: Option<Spanned<u64>>,
}

/// A DHCPv6 server on one of the router's segments (RFC 8415).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dhcp6 {
    pub switch: Str,
    pub range: Str,
    #[serde(default)]
    pub dns: Vec<Str>,
    #[serde(default)]
    pub domains: Vec<Str>,
    pub lease_secs: Option<Spanned<u64>>,
    pub requests_per_sec: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub protocol: Str,
    pub port: Spanned<u32>,
    pub to: Str,
}

/// A zone an authoritative DNS service serves: its origin and its records
/// as RFC 1035 zone-file text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneTable {
    pub origin: Str,
    pub records: Str,
    #[serde(default)]
    pub geo: Vec<Spanned<GeoTable>>,
}

/// A zone's view: askers in `clients` get `records` instead of the
/// zone's of the same name and type (GeoDNS).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoTable {
    pub clients: Vec<Str>,
    pub records: Str,
}

/// How a web server answers the paths below `prefix`: its caching
/// headers, an asset's size and type, and a processing delay.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathTable {
    pub prefix: Str,
    pub cache_control: Option<Str>,
    pub etag: Option<Spanned<bool>>,
    pub last_modified: Option<Spanned<bool>>,
    pub vary: Option<Str>,
    pub content_type: Option<Str>,
    pub size: Option<Spanned<u64>>,
    pub delay_ms: Option<Spanned<u64>>,
}

/// A balancer's routing rule: requests for a host and path prefix to
/// backends of their own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    pub host: Option<Str>,
    pub path_prefix: Option<Str>,
    #[serde(default)]
    pub backends: Vec<Str>,
    pub weights: Option<Vec<Spanned<u64>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: Str,
    pub kind: Str,
    pub switch: Str,
    pub address: Str,
    pub gateway: Option<Str>,
    pub address6: Option<Str>,
    pub gateway6: Option<Str>,
    pub impair: Option<Spanned<Impair>>,
    pub port: Option<Spanned<u32>>,
    #[serde(default)]
    pub backends: Vec<Str>,
    pub weights: Option<Vec<Spanned<u64>>>,
    pub algorithm: Option<Str>,
    pub hash_header: Option<Str>,
    pub health_check: Option<Str>,
    pub health_path: Option<Str>,
    pub health_status: Option<Spanned<u64>>,
    pub health_interval_ms: Option<Spanned<u64>>,
    pub health_timeout_ms: Option<Spanned<u64>>,
    pub health_rise: Option<Spanned<u64>>,
    pub health_fall: Option<Spanned<u64>>,
    pub eject_after: Option<Spanned<u64>>,
    pub eject_ms: Option<Spanned<u64>>,
    pub retries: Option<Spanned<u64>>,
    pub connect_timeout_ms: Option<Spanned<u64>>,
    pub request_timeout_ms: Option<Spanned<u64>>,
    pub sticky_cookie: Option<Str>,
    pub requests_per_sec_per_client: Option<Spanned<u64>>,
    pub idle_timeout_ms: Option<Spanned<u64>>,
    pub tls_port: Option<Spanned<u32>>,
    #[serde(default)]
    pub routes: Vec<Spanned<RouteTable>>,
    #[serde(default)]
    pub root_hints: Vec<Str>,
    #[serde(default)]
    pub zones: Vec<Spanned<ZoneTable>>,
    pub allow: Option<Vec<Str>>,
    pub allow_transfer: Option<Vec<Str>>,
    pub dns64: Option<Str>,
    pub responses_per_sec: Option<Spanned<u64>>,
    pub rrl_slip: Option<Spanned<u64>>,
    pub queries_per_sec_per_client: Option<Spanned<u64>>,
    pub case_randomisation: Option<Spanned<bool>>,
    pub serve_stale: Option<Spanned<bool>>,
    pub prefetch: Option<Spanned<bool>>,
    pub cache_size: Option<Spanned<u64>>,
    pub upstream_timeout_ms: Option<Spanned<u64>>,
    pub body_size: Option<Spanned<u64>>,
    pub origin: Option<Str>,
    pub cache_bytes: Option<Spanned<u64>>,
    pub max_object_bytes: Option<Spanned<u64>>,
    pub delay_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub paths: Vec<Spanned<PathTable>>,
    pub max_connections_per_client: Option<Spanned<u64>>,
    pub header_timeout_secs: Option<Spanned<u64>>,
}
