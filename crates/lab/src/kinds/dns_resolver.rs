//! `kind = "dns-resolver"`: a caching recursive resolver from its
//! `root_hints`, on UDP and TCP port 53, for the lab's own networks (or
//! those in `allow`). It takes `scratchnet trace dns` requests.

use super::{Service, Started};
use crate::LabView;
use hoststack::Host;
use std::io;
use topology::{ServiceKind, ServiceSettings, ServiceSpec};

pub struct DnsResolver;

impl Service for DnsResolver {
    fn kind(&self) -> ServiceKind {
        ServiceKind::DnsResolver
    }

    fn start(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> io::Result<Started> {
        let ServiceSettings::DnsResolver(settings) = &spec.settings else {
            return Err(super::wrong_kind(spec));
        };
        let mut config = dns::ResolverConfig::new(settings.root_hints.clone());
        // Upstream over the families the host has addresses in.
        let (v4, v6) = host.addresses();
        (config.do_ip4, config.do_ip6) = (v4.is_some(), v6.is_some());
        config.client_rate = settings.queries_per_sec_per_client;
        config.case_randomisation = settings.case_randomisation;
        config.cache_size = settings.cache_size;
        config.serve_stale = settings.serve_stale;
        config.prefetch = settings.prefetch;
        config.upstream_timeout = std::time::Duration::from_millis(settings.upstream_timeout_ms);
        config.allow = settings.allow.clone().unwrap_or_else(|| lab.networks());
        config.dns64 = settings.dns64;
        let key = lab.world().key(&spec.name)?;
        Ok(services::dns::resolver(host, config, services::dns::PORT, key)?.into())
    }
}
