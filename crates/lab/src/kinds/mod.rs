//! The registry of service kinds: one module each, one line in [`ALL`].
//!
//! A kind takes its typed settings (`ServiceSpec::settings`, one struct
//! per kind, validated by the topology crate with located errors) and a
//! [`LabView`] of the rest of the lab (other nodes by name, their
//! addresses), and runs as an ordinary async task on its service host.
//! Adding a kind is a module here and its line in [`ALL`]; docs/
//! architecture.md walks through `echo` as the example.

mod cache;
mod dns_authoritative;
mod dns_resolver;
mod echo;
mod http;
mod lb;

use crate::LabView;
use hoststack::Host;
use std::io;
use std::sync::Arc;
use topology::{ServiceKind, ServiceSpec};

/// A running service: it ends only if its host goes away.
pub type Running = services::Task;

/// A started service: its task, and its handle for `scratchnet` commands
/// if it takes any.
pub struct Started {
    pub running: Running,
    pub control: Option<Arc<dyn services::Control>>,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("control", &self.control.is_some())
            .finish()
    }
}

impl From<Running> for Started {
    fn from(running: Running) -> Started {
        Started {
            running,
            control: None,
        }
    }
}

impl From<services::Serving> for Started {
    fn from((control, running): services::Serving) -> Started {
        Started {
            running,
            control: Some(control),
        }
    }
}

/// A kind of service a service host can run.
pub trait Service: Sync {
    /// Which kind of the topology file this is.
    fn kind(&self) -> ServiceKind;

    /// The service on `host`, configured by `spec`, its ports bound: it
    /// serves until its task is dropped. An error here is a setting that
    /// cannot work (a port taken, a backend with no address), and stops
    /// `up`; [`crate::services`] starts it again whenever its task ends.
    fn start(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> io::Result<Started>;
}

/// Every kind this version runs.
pub const ALL: &[&dyn Service] = &[
    &http::Http,
    &echo::Echo,
    &dns_authoritative::DnsAuthoritative,
    &dns_resolver::DnsResolver,
    &lb::HttpLb,
    &lb::TcpLb,
    &lb::UdpLb,
    &cache::Cache,
];

/// The error of a kind given another kind's settings (the registry finds
/// kinds by their settings, so this is a bug, reported, not a panic).
fn wrong_kind(spec: &ServiceSpec) -> io::Error {
    io::Error::other(format!(
        "service `{}`: settings of kind `{}` given to another kind",
        spec.name,
        spec.kind().name()
    ))
}

/// The implementation of a kind, if this version runs it.
pub fn find(kind: ServiceKind) -> Option<&'static dyn Service> {
    ALL.iter().copied().find(|s| s.kind() == kind)
}
