//! `kind = "http-lb"`: an HTTP load balancer on `port` (default 80) over
//! `backends` (services, static hosts or addresses, each with a port),
//! with the algorithm, health checks, retries, timeouts and sticky cookie
//! of its settings. It takes `scratchnet lb` commands (drain, restore,
//! weight) and reports its pool in `scratchnet status`.

use super::{Service, Started};
use crate::LabView;
use balancer::{BackendSpec, Pool};
use hoststack::Host;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use topology::{HealthCheck, ServiceKind, ServiceSettings, ServiceSpec};

pub struct HttpLb;

/// The largest request body the balancer takes.
const MAX_BODY: u64 = 64 << 20;

impl Service for HttpLb {
    fn kind(&self) -> ServiceKind {
        ServiceKind::HttpLb
    }

    fn run(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> Started {
        let ServiceSettings::HttpLb(settings) = &spec.settings else {
            return super::wrong_kind(spec);
        };
        let mut backends = Vec::new();
        for b in &settings.backends {
            let addr = b
                .target
                .parse::<Ipv4Addr>()
                .ok()
                .or_else(|| lab.address_of(&b.target));
            let Some(addr) = addr else {
                let msg = format!("backend `{}` has no address in this lab", b.target);
                return super::failed(std::io::Error::other(msg));
            };
            backends.push(BackendSpec {
                name: b.target.clone(),
                addr: SocketAddrV4::new(addr, b.port),
                weight: b.weight,
            });
        }
        let seed = lab.world().seed(&spec.name);
        let pool = Pool::new(
            settings.algorithm.clone(),
            settings.health.clone(),
            backends,
            seed,
        );
        let config = services::lb::Config {
            name: spec.name.clone(),
            port: settings.port,
            pool,
            check: match &settings.health_check {
                HealthCheck::Http { path, status } => services::lb::Check::Http {
                    path: path.clone(),
                    status: *status,
                },
                HealthCheck::Tcp => services::lb::Check::Tcp,
                HealthCheck::None => services::lb::Check::None,
            },
            retries: settings.retries,
            connect_timeout: settings.connect_timeout,
            request_timeout: settings.request_timeout,
            sticky_cookie: settings.sticky_cookie.clone(),
            header_timeout: Duration::from_secs(10),
            max_body: MAX_BODY,
        };
        match services::lb::serve(host, config) {
            Ok((control, running)) => Started {
                running: Box::pin(running),
                control: Some(control),
            },
            Err(e) => super::failed(e),
        }
    }
}
