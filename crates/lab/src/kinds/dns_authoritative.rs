//! `kind = "dns-authoritative"`: serves its `zones` (RFC 1035 zone-file
//! text in the topology) on UDP and TCP port 53; the server of the root
//! zone also serves the lab's reverse zones (crate::reverse). Only the
//! networks in `allow_transfer` may transfer the zones (AXFR); by
//! default nobody may. Its UDP answers are rate limited per client /24
//! (`responses_per_sec`, `rrl_slip`: services::dns::Rrl).

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
        // Transfers only where the topology allows them (NSD's and BIND's
        // default is nobody too).
        let transfers = settings.allow_transfer.clone().unwrap_or_default();
        let authority = dns::Authority::new(zones).allow_transfer(transfers);
        let rrl = services::dns::Rrl {
            per_sec: settings.responses_per_sec,
            slip: settings.rrl_slip,
        };
        Ok(services::dns::serve(host, authority, services::dns::PORT, rrl)?.into())
    }
}
