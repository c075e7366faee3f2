//! `kind = "cache"`: a caching reverse proxy, a CDN edge (docs/cdn.md), on
//! `port` (and HTTPS on `tls_port`) in front of its `origin`, its store
//! bounded by `cache_bytes` and `max_object_bytes`. It takes `scratchnet
//! cache` purges and shows its store in `scratchnet status`.

use super::{Service, Started};
use crate::LabView;
use hoststack::Host;
use std::io;
use std::net::{IpAddr, SocketAddr};
use topology::{ServiceKind, ServiceSettings, ServiceSpec};

pub struct Cache;

impl Service for Cache {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Cache
    }

    fn start(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> io::Result<Started> {
        let ServiceSettings::Cache(settings) = &spec.settings else {
            return Err(super::wrong_kind(spec));
        };
        let target = &settings.origin.target;
        let origin = target
            .parse::<IpAddr>()
            .ok()
            .or_else(|| lab.address_of(target))
            .ok_or_else(|| {
                io::Error::other(format!("origin `{target}` has no address in this lab"))
            })?;
        let tls = settings
            .tls_port
            .map(|port| super::lb::tls(spec, port, lab))
            .transpose()?;
        let config = services::cache::Config {
            name: spec.name.clone(),
            port: settings.port,
            tls,
            origin: SocketAddr::new(origin, settings.origin.port),
            store: httpcache::Config {
                name: spec.name.clone(),
                capacity: settings.capacity,
                max_object: settings.max_object,
                ..httpcache::Config::default()
            },
            connect_timeout: settings.connect_timeout,
            request_timeout: settings.request_timeout,
            header_timeout: settings.header_timeout,
            world: lab.world(),
        };
        Ok(services::cache::serve(host, config)?.into())
    }
}
