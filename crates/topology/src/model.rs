//! The validated topology: plain typed data, every reference resolved and
//! every address parsed. What the rest of scratchnet builds from.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::time::Duration;
use wire::{Impairment, Mac};

/// A lab, checked and ready to build.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Names the lab's control socket and state file.
    pub name: String,
    /// Where it was read from (a path, or `<reference lab>`).
    pub file: String,
    /// Seeds what is drawn at random in the fabric (link impairment).
    pub seed: u64,
    pub switches: Vec<SwitchSpec>,
    pub hosts: Vec<HostSpec>,
    pub routers: Vec<RouterSpec>,
    pub services: Vec<ServiceSpec>,
}

#[derive(Debug, Clone)]
pub struct SwitchSpec {
    pub name: String,
    pub subnet: Option<Ipv4Net>,
    /// The segment's IPv6 prefix (a /64 where hosts use SLAAC).
    pub subnet6: Option<Ipv6Net>,
    pub mtu: u16,
    pub ageing: Duration,
    pub mac_table_size: usize,
    /// IGMP and MLD snooping on hosts' ports (RFC 4541); off, every
    /// multicast frame floods.
    pub multicast_snooping: bool,
    /// VXLAN tunnels that join this switch to remote ones.
    pub tunnels: Vec<TunnelSpec>,
}

/// A VXLAN tunnel (RFC 7348) from a switch to a remote switch: another
/// scratchnet, or a Linux `vxlan` device. Its port is `SWITCH.vxlanVNI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSpec {
    pub port_name: String,
    pub vni: u32,
    /// The peer: an IPv4 address, or a host name resolved when the lab
    /// starts (a container's, say).
    pub remote: String,
    /// The address to receive on (and send from); 0.0.0.0 for any.
    pub local: Ipv4Addr,
    /// The UDP port, both ends (4789 by default).
    pub port: u16,
    /// The peer is scratchnet: frames cross with their offload metadata
    /// (super-frames whole). Never for a Linux peer.
    pub offload: bool,
}

/// How a host gets its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAddress {
    Static(Ipv4Net),
    /// The system's DHCP client runs in the namespace.
    Dhcp,
    /// No IPv4 address: an IPv6-only host (`address = "none"`).
    None,
}

/// How a host gets its IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAddress6 {
    Static(Ipv6Net),
    /// Stateless autoconfiguration from router advertisements (RFC 4862):
    /// the kernel makes the address and takes the default route.
    Slaac,
    /// The system's DHCPv6 client (`dhclient -6`).
    Dhcp6,
}

/// A host: a real network namespace with one TAP interface, `eth0`.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub name: String,
    pub switch: String,
    pub address: HostAddress,
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 (none: the host uses only its link-local address).
    pub address6: Option<HostAddress6>,
    pub gateway6: Option<Ipv6Addr>,
    pub dns: Vec<IpAddr>,
    pub mac: Mac,
    pub mtu: u16,
    /// The VLAN of untagged frames on the host's switch port.
    pub vlan: u16,
    /// VLANs the port also carries tagged (a trunk port); the host makes
    /// its own VLAN interfaces (`ip link add link eth0 … type vlan`).
    pub tagged_vlans: Vec<u16>,
    /// Open the TAP with virtio-net offloads (TSO, checksum).
    pub offload: bool,
    pub txqueuelen: u32,
    /// What the host's link does to frames.
    pub impair: Impairment,
}

#[derive(Debug, Clone)]
pub struct RouterSpec {
    pub name: String,
    pub interfaces: Vec<InterfaceSpec>,
    pub routes: Vec<RouteSpec>,
    /// Masquerade traffic leaving by the interface on a switch.
    pub nat: Option<NatSpec>,
    /// Filter IPv6 coming in by the interface on a switch (RFC 6092).
    pub firewall6: Option<Firewall6Spec>,
    /// Translate IPv6 to the prefix into IPv4 out of the interface on a
    /// switch (RFC 6146).
    pub nat64: Option<Nat64Spec>,
    pub dhcp: Vec<DhcpSpec>,
    pub dhcp6: Vec<Dhcp6Spec>,
    pub forwards: Vec<ForwardSpec>,
    /// Neighbour (ARP) cache entries at most.
    pub arp_cache_size: usize,
    /// Bytes of packets waiting for ARP answers at most.
    pub arp_queue_bytes: usize,
    /// ICMP errors of each kind per second.
    pub icmp_errors_per_sec: u32,
}

/// Where a router interface is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    Switch(String),
    /// A TUN device; `host` puts it in the root namespace.
    Tun {
        name: String,
        peer: Ipv4Addr,
        /// The machine's IPv6 address on the link, when it carries IPv6.
        peer6: Option<Ipv6Addr>,
        /// The lab's networks the machine routes through the link.
        host_routes: Vec<IpNet>,
    },
}

#[derive(Debug, Clone)]
pub struct InterfaceSpec {
    pub attachment: Attachment,
    pub address: Ipv4Net,
    pub address6: Option<Ipv6Net>,
    /// Router advertisements on this interface's segment.
    pub ra: Option<RaSpec>,
    pub mtu: u16,
    /// What the interface's link does to frames.
    pub impair: Impairment,
}

/// Source NAT on a router's outside interface (RFC 4787/5382/5508).
#[derive(Debug, Clone)]
pub struct NatSpec {
    /// The switch of the outside interface; its address is the external one.
    pub outside: String,
    pub filtering: NatFiltering,
    pub ports: (u16, u16),
    pub max_entries: usize,
    /// Sessions one inside host may hold.
    pub max_entries_per_host: usize,
    /// External ports one inside host may hold, per protocol.
    pub max_ports_per_host: usize,
    pub udp_timeout: Duration,
    pub tcp_established_timeout: Duration,
    pub tcp_transitory_timeout: Duration,
    pub icmp_timeout: Duration,
}

/// A customer router's IPv6 firewall: what comes in by `outside` passes
/// only as an answer to the inside, or through a pinhole.
#[derive(Debug, Clone)]
pub struct Firewall6Spec {
    pub outside: String,
    pub pinholes: Vec<PinholeSpec>,
    pub max_entries: usize,
    pub max_entries_per_host: usize,
}

/// NAT64: IPv6 to `prefix` (a /96) leaves as IPv4 from the address of
/// the interface on `outside`.
#[derive(Debug, Clone)]
pub struct Nat64Spec {
    pub outside: String,
    pub prefix: Ipv6Net,
    pub max_entries: usize,
}

/// `protocol` to `to`'s `port` is let in from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinholeSpec {
    pub protocol: Protocol,
    pub port: u16,
    pub to: Ipv6Addr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatFiltering {
    EndpointIndependent,
    AddressDependent,
    AddressAndPortDependent,
}

impl NatFiltering {
    pub const NAMES: [&'static str; 3] = [
        "endpoint-independent",
        "address-dependent",
        "address-and-port-dependent",
    ];
}

/// What a router interface advertises (RFC 4861, 4862, 8106): its
/// prefix (for SLAAC when `slaac`), the M and O flags, DNS servers and
/// search domains, how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaSpec {
    pub slaac: bool,
    pub managed: bool,
    pub other: bool,
    pub rdnss: Vec<Ipv6Addr>,
    pub dnssl: Vec<String>,
    pub interval: Duration,
}

/// A static route of either family.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub to: IpNet,
    pub via: IpAddr,
}

#[derive(Debug, Clone)]
pub struct DhcpSpec {
    pub switch: String,
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    pub dns: Vec<IpAddr>,
    pub lease: Duration,
    /// Messages per second one client MAC may send.
    pub requests_per_sec: u32,
}

/// A DHCPv6 server: stateful addresses from a range, and DNS for
/// stateless clients too.
#[derive(Debug, Clone)]
pub struct Dhcp6Spec {
    pub switch: String,
    pub first: Ipv6Addr,
    pub last: Ipv6Addr,
    pub dns: Vec<Ipv6Addr>,
    pub domains: Vec<String>,
    pub lease: Duration,
    /// Messages per second one client station may send.
    pub requests_per_sec: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

#[derive(Debug, Clone)]
pub struct ForwardSpec {
    pub protocol: Protocol,
    pub port: u16,
    pub to: SocketAddrV4,
}

/// The built-in services a service host can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    Http,
    Echo,
    HttpLb,
    TcpLb,
    UdpLb,
    DnsAuthoritative,
    DnsResolver,
    Cache,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 8] = [
        ServiceKind::Http,
        ServiceKind::Echo,
        ServiceKind::HttpLb,
        ServiceKind::TcpLb,
        ServiceKind::UdpLb,
        ServiceKind::DnsAuthoritative,
        ServiceKind::DnsResolver,
        ServiceKind::Cache,
    ];

    /// The kind's name in a topology file.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Http => "http",
            ServiceKind::Echo => "echo",
            ServiceKind::HttpLb => "http-lb",
            ServiceKind::TcpLb => "tcp-lb",
            ServiceKind::UdpLb => "udp-lb",
            ServiceKind::DnsAuthoritative => "dns-authoritative",
            ServiceKind::DnsResolver => "dns-resolver",
            ServiceKind::Cache => "cache",
        }
    }

    pub fn parse(s: &str) -> Option<ServiceKind> {
        ServiceKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub name: String,
    pub switch: String,
    pub address: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    /// Its IPv6 address (static) and default router.
    pub address6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    /// What the service host's link does to frames.
    pub impair: Impairment,
    /// TCP connections one client address may hold at once.
    pub max_connections_per_client: usize,
    /// What the service does, with the settings of its kind.
    pub settings: ServiceSettings,
}

impl ServiceSpec {
    pub fn kind(&self) -> ServiceKind {
        self.settings.kind()
    }

    /// The port it serves HTTPS on, if it does.
    pub fn tls_port(&self) -> Option<u16> {
        match &self.settings {
            ServiceSettings::HttpLb(l) => l.tls_port,
            ServiceSettings::Cache(c) => c.tls_port,
            _ => None,
        }
    }

    /// Its addresses: IPv4, then IPv6 if it has one.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let v6 = self.address6.map(|a| IpAddr::V6(a.addr()));
        std::iter::once(IpAddr::V4(self.address.addr()))
            .chain(v6)
            .collect()
    }
}

/// A service's settings, by kind. Each kind takes only its own keys: a
/// key another kind takes is an error in the file, not silently ignored.
#[derive(Debug, Clone)]
pub enum ServiceSettings {
    Http(HttpSettings),
    Echo(EchoSettings),
    HttpLb(LbSettings),
    TcpLb(LbSettings),
    UdpLb(LbSettings),
    DnsAuthoritative(DnsAuthoritativeSettings),
    DnsResolver(DnsResolverSettings),
    Cache(CacheSettings),
}

impl ServiceSettings {
    pub fn kind(&self) -> ServiceKind {
        match self {
            ServiceSettings::Http(_) => ServiceKind::Http,
            ServiceSettings::Echo(_) => ServiceKind::Echo,
            ServiceSettings::HttpLb(_) => ServiceKind::HttpLb,
            ServiceSettings::TcpLb(_) => ServiceKind::TcpLb,
            ServiceSettings::UdpLb(_) => ServiceKind::UdpLb,
            ServiceSettings::DnsAuthoritative(_) => ServiceKind::DnsAuthoritative,
            ServiceSettings::DnsResolver(_) => ServiceKind::DnsResolver,
            ServiceSettings::Cache(_) => ServiceKind::Cache,
        }
    }
}

/// `kind = "cache"`: a caching reverse proxy (a CDN edge) in front of
/// an origin.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub port: u16,
    /// HTTPS too, on this port, with a certificate from the lab's CA.
    pub tls_port: Option<u16>,
    /// Where misses go: a service, a static host or an address.
    pub origin: LbBackend,
    /// The store's bound, in bytes.
    pub capacity: u64,
    /// The largest object stored; larger ones pass through.
    pub max_object: u64,
    pub connect_timeout: Duration,
    /// How long the origin may take to start its answer.
    pub request_timeout: Duration,
    /// How long a request's headers may take, and a kept-alive connection
    /// may sit idle.
    pub header_timeout: Duration,
}

/// `kind = "http"`: the built-in web server.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub port: u16,
    /// The size of the body of `GET /` (the greeting, padded or cut).
    pub body_size: Option<u64>,
    /// How long a request's headers may take, and a kept-alive connection
    /// may sit idle.
    pub header_timeout: Duration,
    /// How long every answer takes to make (an origin's processing time).
    pub delay: Duration,
    /// How the paths below each prefix are answered; the first that
    /// matches a request's path takes it.
    pub paths: Vec<HttpPath>,
}

/// How a web server answers the paths below `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPath {
    pub prefix: String,
    /// The `Cache-Control` header, as written.
    pub cache_control: Option<String>,
    /// Whether answers carry an `ETag` (and If-None-Match gets a 304).
    pub etag: bool,
    /// Whether answers carry a `Last-Modified` (and If-Modified-Since
    /// gets a 304); an asset only, the greeting is made anew each time.
    pub last_modified: bool,
    /// The `Vary` header, as written.
    pub vary: Option<String>,
    /// An asset of this many bytes and `content_type`, instead of the
    /// greeting.
    pub size: Option<u64>,
    pub content_type: Option<String>,
    /// The processing delay of these paths, instead of the server's.
    pub delay: Option<Duration>,
}

/// `kind = "echo"`: TCP and UDP echo.
#[derive(Debug, Clone)]
pub struct EchoSettings {
    pub port: u16,
}

/// `kind = "http-lb"`, `"tcp-lb"` and `"udp-lb"`: a load balancer of HTTP
/// requests, TCP connections or UDP flows over other services, static
/// hosts or addresses.
#[derive(Debug, Clone)]
pub struct LbSettings {
    pub port: u16,
    pub backends: Vec<LbBackend>,
    /// Requests for a host and path to backends of their own (http-lb);
    /// the first that matches takes a request, `backends` the rest.
    pub routes: Vec<LbRoute>,
    pub algorithm: balancer::Algorithm,
    pub health: balancer::HealthConfig,
    pub health_check: HealthCheck,
    /// Other backends tried when one cannot be connected to (idempotent
    /// requests only).
    pub retries: u32,
    pub connect_timeout: Duration,
    /// How long a backend may take to start its answer.
    pub request_timeout: Duration,
    /// Sticky sessions: the cookie the balancer sets to name a client's
    /// backend.
    pub sticky_cookie: Option<String>,
    /// Requests per second one client address may send (bursts of twice
    /// that); no limit if `None`.
    pub requests_per_sec_per_client: Option<u32>,
    /// How long a UDP flow may carry nothing before it is forgotten.
    pub idle_timeout: Duration,
    /// HTTPS on this port too (TLS terminated with a certificate from the
    /// lab's CA; HTTP/2 and HTTP/1.1 by ALPN).
    pub tls_port: Option<u16>,
}

/// One backend of a balancer: a node's name (or an address), its port
/// and weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbBackend {
    /// A service or static host of the lab, or an address of either family.
    pub target: String,
    pub port: u16,
    pub weight: u32,
}

/// A balancer's routing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbRoute {
    /// The request's host (`*.example.com` for the names below it); any
    /// host if `None`.
    pub host: Option<String>,
    pub path_prefix: String,
    pub backends: Vec<LbBackend>,
}

/// How a balancer checks its backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheck {
    /// `GET path` must answer with `status`.
    Http { path: String, status: u16 },
    /// A TCP connection must be accepted.
    Tcp,
    /// No active checks (outlier ejection still works).
    None,
}

/// `kind = "dns-authoritative"`: the zones it serves, parsed and checked.
#[derive(Debug, Clone, Default)]
pub struct DnsAuthoritativeSettings {
    pub zones: Vec<dns::Zone>,
    /// Networks that may transfer the zones (AXFR); `None`: nobody.
    pub allow_transfer: Option<Vec<IpNet>>,
    /// UDP answers per second to one client /24 (response rate limiting;
    /// 0: off).
    pub responses_per_sec: u32,
    /// Of the answers past the rate, every this many goes out truncated
    /// (TC=1, so a real client asks again over TCP); the rest are
    /// dropped; 0: all dropped.
    pub rrl_slip: u32,
}

/// `kind = "dns-resolver"`: a recursive resolver.
#[derive(Debug, Clone)]
pub struct DnsResolverSettings {
    pub root_hints: Vec<IpAddr>,
    /// Networks whose clients it serves; `None`: the lab's own networks.
    pub allow: Option<Vec<IpNet>>,
    /// Questions per second one client address may ask.
    pub queries_per_sec_per_client: u32,
    /// Random letter case in upstream questions (0x20).
    pub case_randomisation: bool,
    /// Expired answers rather than SERVFAIL (RFC 8767).
    pub serve_stale: bool,
    /// Popular answers refreshed before they expire.
    pub prefetch: bool,
    /// Cache entries at most.
    pub cache_size: usize,
    /// How long an upstream server has to answer, in milliseconds.
    pub upstream_timeout_ms: u64,
    /// DNS64 (RFC 6147): AAAA records made in this /96 for names with
    /// only A records, for IPv6-only clients behind a NAT64.
    pub dns64: Option<Ipv6Net>,
}

impl Topology {
    /// A host's IPv6 address with its prefix, as far as the topology
    /// knows it: a static one, or the one SLAAC makes from the switch's
    /// prefix and the host's MAC. `None` for DHCPv6 or no IPv6.
    pub fn host_address6(&self, h: &HostSpec) -> Option<Ipv6Net> {
        match h.address6? {
            HostAddress6::Static(net) => Some(net),
            HostAddress6::Slaac => {
                let prefix = self.switch(&h.switch)?.subnet6?;
                Ipv6Net::new(h.mac.eui64_in(prefix.network()), prefix.prefix_len()).ok()
            }
            HostAddress6::Dhcp6 => None,
        }
    }

    pub fn switch(&self, name: &str) -> Option<&SwitchSpec> {
        self.switches.iter().find(|s| s.name == name)
    }

    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The recursive DNS servers the routers on a switch advertise in their
    /// RAs (RFC 8106 RDNSS), in order, without repeats.
    pub fn rdnss_on(&self, switch: &str) -> Vec<Ipv6Addr> {
        let mut servers: Vec<Ipv6Addr> = Vec::new();
        let advertised = (self.routers.iter())
            .flat_map(|r| &r.interfaces)
            .filter(|i| i.attachment == Attachment::Switch(switch.to_owned()))
            .filter_map(|i| i.ra.as_ref())
            .flat_map(|ra| ra.rdnss.iter().copied());
        for a in advertised {
            if !servers.contains(&a) {
                servers.push(a);
            }
        }
        servers
    }

    /// Whether a router advertisement can reach a host on `switch`: a
    /// router advertises there, or a tunnel brings frames from elsewhere
    /// (hosts' own advertisements stop at RA guard).
    pub fn advertised_on(&self, switch: &str) -> bool {
        let tunnelled = self.switch(switch).is_some_and(|s| !s.tunnels.is_empty());
        tunnelled
            || (self.routers.iter())
                .flat_map(|r| &r.interfaces)
                .any(|i| i.attachment == Attachment::Switch(switch.to_owned()) && i.ra.is_some())
    }

    /// The IPv6 addresses stations on a switch hold without DHCPv6:
    /// routers' interfaces, static and SLAAC hosts, service hosts. A DHCPv6 pool never
    /// hands them out.
    pub fn static_addresses6_on(&self, switch: &str) -> Vec<Ipv6Addr> {
        let routers = self
            .routers
            .iter()
            .flat_map(|r| &r.interfaces)
            .filter(|i| i.attachment == Attachment::Switch(switch.to_owned()))
            .filter_map(|i| i.address6.map(|a| a.addr()));
        let hosts = self
            .hosts
            .iter()
            .filter(|h| h.switch == switch)
            .filter_map(|h| self.host_address6(h).map(|a| a.addr()));
        let services = self
            .services
            .iter()
            .filter(|s| s.switch == switch)
            .filter_map(|s| s.address6.map(|a| a.addr()));
        routers.chain(hosts).chain(services).collect()
    }

    /// The fixed addresses on a switch: routers' interfaces, static hosts
    /// and services. A DHCP pool never offers them.
    pub fn static_addresses_on(&self, switch: &str) -> Vec<Ipv4Addr> {
        let routers = self
            .routers
            .iter()
            .flat_map(|r| &r.interfaces)
            .filter_map(|i| {
                (i.attachment == Attachment::Switch(switch.to_owned())).then_some(i.address.addr())
            });
        let hosts = self.hosts.iter().filter_map(|h| match h.address {
            HostAddress::Static(a) if h.switch == switch => Some(a.addr()),
            _ => None,
        });
        let services = self
            .services
            .iter()
            .filter(|s| s.switch == switch)
            .map(|s| s.address.addr());
        routers.chain(hosts).chain(services).collect()
    }
}
