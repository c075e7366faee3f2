//! `kind = "dns-resolver"`: a caching recursive resolver from its
//! `root_hints`, on UDP and TCP port 53.

use super::{Running, Service};
use crate::LabView;
use hoststack::Host;
use std::net::IpAddr;
use topology::{ServiceKind, ServiceSettings, ServiceSpec};

pub struct DnsResolver;

impl Service for DnsResolver {
    fn kind(&self) -> ServiceKind {
        ServiceKind::DnsResolver
    }

    fn run(&self, host: Host, spec: &ServiceSpec, _lab: &LabView) -> Running {
        let ServiceSettings::DnsResolver(settings) = &spec.settings else {
            return super::wrong_kind(spec);
        };
        let hints = settings
            .root_hints
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        let config = dns::ResolverConfig::new(hints);
        Box::pin(services::dns::serve_resolver(
            host,
            config,
            services::dns::PORT,
        ))
    }
}
