//! The balancers: `kind = "http-lb"` (HTTP requests, docs/balancer.md),
//! `"tcp-lb"` (TCP connections) and `"udp-lb"` (UDP flows), each on its
//! `port` over `backends` (services, static hosts or addresses), with the
//! algorithm, health checks and timeouts of its settings. They take
//! `scratchnet lb` commands (drain, restore, weight) and report their pool
//! in `scratchnet status`.

use super::{Service, Started};
use crate::LabView;
use balancer::{BackendSpec, Pool};
use hoststack::Host;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use topology::{HealthCheck, LbBackend, LbSettings, ServiceKind, ServiceSettings, ServiceSpec};

pub struct HttpLb;
pub struct TcpLb;
pub struct UdpLb;

/// The largest request body the HTTP balancer takes.
const MAX_BODY: u64 = 64 << 20;

/// A pool of `backends` with a balancer's settings, their names resolved
/// in the lab.
fn pool(
    spec: &ServiceSpec,
    backends: &[LbBackend],
    settings: &LbSettings,
    lab: &LabView,
) -> io::Result<Pool> {
    let mut specs = Vec::new();
    for b in backends {
        let addr = b
            .target
            .parse::<IpAddr>()
            .ok()
            .or_else(|| lab.address_of(&b.target))
            .ok_or_else(|| {
                io::Error::other(format!("backend `{}` has no address in this lab", b.target))
            })?;
        specs.push(BackendSpec {
            name: b.target.clone(),
            addr: SocketAddr::new(addr, b.port),
            weight: b.weight,
        });
    }
    let seed = lab.world().seed(&spec.name);
    Ok(Pool::new(
        settings.algorithm.clone(),
        settings.health.clone(),
        specs,
        seed,
    ))
}

fn check(settings: &LbSettings) -> services::Check {
    match &settings.health_check {
        HealthCheck::Http { path, status } => services::Check::Http {
            path: path.clone(),
            status: *status,
        },
        HealthCheck::Tcp => services::Check::Tcp,
        HealthCheck::None => services::Check::None,
    }
}

/// The HTTPS listener of service `spec` (a balancer or a cache): a
/// certificate from the lab's CA for the names the lab's zones give its
/// address, and its own name.
pub(super) fn tls(
    spec: &ServiceSpec,
    port: u16,
    lab: &LabView,
) -> io::Result<services::proxy::Tls> {
    let ca = lab
        .ca()
        .ok_or_else(|| io::Error::other("the lab has no certificate authority"))?;
    let addrs = spec.addresses();
    let mut names: Vec<String> = addrs.iter().flat_map(|a| lab.names_of(*a)).collect();
    names.sort();
    names.dedup();
    names.push(spec.name.clone());
    let issued = ca.issue(&names, &addrs).map_err(io::Error::other)?;
    tracing::info!(service = %spec.name, "HTTPS on :{port} for {}", issued.names.join(", "));
    services::proxy::Tls::new(port, issued.chain, issued.key).map_err(io::Error::other)
}

impl Service for HttpLb {
    fn kind(&self) -> ServiceKind {
        ServiceKind::HttpLb
    }

    fn start(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> io::Result<Started> {
        let ServiceSettings::HttpLb(settings) = &spec.settings else {
            return Err(super::wrong_kind(spec));
        };
        let pool_of = |backends| pool(spec, backends, settings, lab);
        let routes = settings
            .routes
            .iter()
            .map(|r| {
                Ok(services::lb::Route {
                    host: r.host.clone(),
                    path_prefix: r.path_prefix.clone(),
                    pool: pool_of(&r.backends)?,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let tls = settings
            .tls_port
            .map(|port| tls(spec, port, lab))
            .transpose()?;
        let config = services::lb::Config {
            name: spec.name.clone(),
            port: settings.port,
            pool: pool_of(&settings.backends)?,
            routes,
            check: check(settings),
            retries: settings.retries,
            connect_timeout: settings.connect_timeout,
            request_timeout: settings.request_timeout,
            sticky_cookie: settings.sticky_cookie.clone(),
            header_timeout: Duration::from_secs(10),
            max_body: MAX_BODY,
            tls,
            requests_per_sec_per_client: settings.requests_per_sec_per_client,
        };
        Ok(services::lb::serve(host, config)?.into())
    }
}

/// The configuration of a TCP or UDP balancer.
fn l4_config(
    spec: &ServiceSpec,
    settings: &LbSettings,
    lab: &LabView,
) -> io::Result<services::l4::Config> {
    Ok(services::l4::Config {
        name: spec.name.clone(),
        port: settings.port,
        pool: pool(spec, &settings.backends, settings, lab)?,
        check: check(settings),
        retries: settings.retries,
        connect_timeout: settings.connect_timeout,
        idle_timeout: settings.idle_timeout,
    })
}

impl Service for TcpLb {
    fn kind(&self) -> ServiceKind {
        ServiceKind::TcpLb
    }

    fn start(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> io::Result<Started> {
        let ServiceSettings::TcpLb(settings) = &spec.settings else {
            return Err(super::wrong_kind(spec));
        };
        Ok(services::l4::serve_tcp(host, l4_config(spec, settings, lab)?)?.into())
    }
}

impl Service for UdpLb {
    fn kind(&self) -> ServiceKind {
        ServiceKind::UdpLb
    }

    fn start(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> io::Result<Started> {
        let ServiceSettings::UdpLb(settings) = &spec.settings else {
            return Err(super::wrong_kind(spec));
        };
        Ok(services::l4::serve_udp(host, l4_config(spec, settings, lab)?)?.into())
    }
}
