//! `kind = "dns-authoritative"`: serves its `zones` (RFC 1035 zone-file
//! text in the topology) on UDP and TCP port 53.

use super::{Running, Service};
use crate::LabView;
use hoststack::Host;
use topology::{ServiceKind, ServiceSettings, ServiceSpec};

pub struct DnsAuthoritative;

impl Service for DnsAuthoritative {
    fn kind(&self) -> ServiceKind {
        ServiceKind::DnsAuthoritative
    }

    fn run(&self, host: Host, spec: &ServiceSpec, _lab: &LabView) -> Running {
        let ServiceSettings::DnsAuthoritative(settings) = &spec.settings else {
            return super::wrong_kind(spec);
        };
        let authority = dns::Authority::new(settings.zones.clone());
        Box::pin(services::dns::serve(host, authority, services::dns::PORT))
    }
}
