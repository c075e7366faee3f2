//! `kind = "http"`: the built-in web server on `port` (default 80), with
//! `body_size` and `header_timeout_secs`.

use super::{Running, Service, Started};
use crate::LabView;
use hoststack::Host;
use topology::{ServiceKind, ServiceSettings, ServiceSpec};

pub struct Http;

impl Service for Http {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Http
    }

    fn run(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> Started {
        let ServiceSettings::Http(settings) = &spec.settings else {
            return super::wrong_kind(spec);
        };
        let config = services::http::Config {
            name: spec.name.clone(),
            port: settings.port,
            body_size: settings.body_size,
            header_timeout: settings.header_timeout,
            world: lab.world(),
        };
        let running: Running = Box::pin(services::http::serve(host, config));
        running.into()
    }
}
