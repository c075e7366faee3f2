//! `kind = "echo"`: TCP and UDP echo (RFC 862) on `port` (default 7).

use super::{Service, Started};
use crate::LabView;
use hoststack::Host;
use std::io;
use topology::{ServiceKind, ServiceSettings, ServiceSpec};

pub struct Echo;

impl Service for Echo {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Echo
    }

    fn start(&self, host: Host, spec: &ServiceSpec, _lab: &LabView) -> io::Result<Started> {
        let ServiceSettings::Echo(settings) = &spec.settings else {
            return Err(super::wrong_kind(spec));
        };
        Ok(services::echo::serve(host, settings.port)?.into())
    }
}
