//! `kind = "dns-authoritative"`: serves its `zones` (RFC 1035 zone-file
//! text in the topology) on UDP and TCP port 53; the server of the root
//! zone also serves the lab's reverse zones (crate::reverse). The lab's
//! own networks may transfer the zones (AXFR) unless `allow_transfer`
//! says who may.

use super::{Service, Started};
use crate::LabView;
use hoststack::Host;
use std::io;
use topology::{ServiceKind, ServiceSettings, ServiceSpec};

pub struct DnsAuthoritative;

impl Service for DnsAuthoritative {
    fn kind(&self) -> ServiceKind {
        ServiceKind::DnsAuthoritative
    }

    fn start(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> io::Result<Started> {
        let ServiceSettings::DnsAuthoritative(settings) = &spec.settings else {
            return Err(super::wrong_kind(spec));
        };
        let zones = crate::reverse::with_reverse_zones(settings.zones.clone(), lab.topology());
        let transfers = settings
            .allow_transfer
            .clone()
            .unwrap_or_else(|| lab.networks());
        let authority = dns::Authority::new(zones).allow_transfer(transfers);
        Ok(services::dns::serve(host, authority, services::dns::PORT)?.into())
    }
}
