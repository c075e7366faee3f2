//! `kind = "http"`: the built-in web server on `port` (default 80), with
//! `body_size`, `header_timeout_secs`, `delay_ms` and, as an origin, its
//! `[[service.paths]]` rules.

use super::{Service, Started};
use crate::LabView;
use hoststack::Host;
use services::http::{Asset, PathRule};
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
            delay: settings.delay,
            paths: settings.paths.iter().map(rule).collect(),
        };
        Ok(services::http::serve(host, config)?.into())
    }
}

/// A path's settings as the server takes them.
fn rule(p: &topology::HttpPath) -> PathRule {
    PathRule {
        prefix: p.prefix.clone(),
        cache_control: p.cache_control.clone(),
        etag: p.etag,
        last_modified: p.last_modified,
        vary: p.vary.clone(),
        asset: p.size.map(|size| Asset {
            size,
            content_type: p
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
        }),
        delay: p.delay,
    }
}
