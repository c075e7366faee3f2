//! `kind = "http"`: the built-in web server on `port` (default 80), with
//! `body_size` and `header_timeout_secs`.

use super::{Service, Started};
use crate::LabView;
use hoststack::Host;
use std::io;
use topology::{ServiceKind, ServiceSettings, ServiceSpec};

pub struct Http;

impl Service for Http {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Http
    }

    fn start(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> io::Result<Started> {
        let ServiceSettings::Http(settings) = &spec.settings else {
            return Err(super::wrong_kind(spec));
        };
        let config = services::http::Config {
            name: spec.name.clone(),
            port: settings.port,
            body_size: settings.body_size,
            header_timeout: settings.header_timeout,
            world: lab.world(),
        };
        Ok(services::http::serve(host, config)?.into())
    }
}
