//! `kind = "http"`: the built-in web server on `port` (default 80), with
//! `body_size` and `header_timeout_secs`.

use super::{Running, Service};
use crate::LabView;
use hoststack::Host;
use topology::{ServiceKind, ServiceSpec};

pub struct Http;

impl Service for Http {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Http
    }

    fn run(&self, host: Host, spec: &ServiceSpec, _lab: &LabView) -> Running {
        let config = services::http::Config {
            name: spec.name.clone(),
            port: spec.port.unwrap_or(80),
            body_size: spec.body_size,
            header_timeout: spec.header_timeout,
        };
        Box::pin(services::http::serve(host, config))
    }
}
