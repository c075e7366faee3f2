//! `kind = "echo"`: TCP and UDP echo (RFC 862) on `port` (default 7).

use super::{Running, Service, Started};
use crate::LabView;
use hoststack::Host;
use topology::{ServiceKind, ServiceSettings, ServiceSpec};

pub struct Echo;

impl Service for Echo {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Echo
    }

    fn run(&self, host: Host, spec: &ServiceSpec, _lab: &LabView) -> Started {
        let ServiceSettings::Echo(settings) = &spec.settings else {
            return super::wrong_kind(spec);
        };
        let running: Running = Box::pin(services::echo::serve(host, settings.port));
        running.into()
    }
}
