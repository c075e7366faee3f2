//! The registry of service kinds: one module each, one line in [`ALL`].
//!
//! A kind takes its typed settings (`ServiceSpec::settings`, one struct
//! per kind, validated by the topology crate with located errors) and a
//! [`LabView`] of the rest of the lab (other nodes by name, their
//! addresses), and runs as an ordinary async task on its service host.
//! Adding a kind is a module here and its line in [`ALL`]; docs/
//! architecture.md walks through `echo` as the example.

mod dns_authoritative;
mod dns_resolver;
mod echo;
mod http;
mod lb;

use crate::LabView;
use hoststack::Host;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use topology::{ServiceKind, ServiceSpec};

/// A running service: it ends only on an error.
pub type Running = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

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

/// A kind of service a service host can run.
pub trait Service: Sync {
    /// Which kind of the topology file this is.
    fn kind(&self) -> ServiceKind;

    /// The service on `host`, configured by `spec`, until the task is
    /// dropped.
    fn run(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> Started;
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
];

/// What a kind runs when given another kind's settings (the registry
/// finds kinds by their settings, so this is a bug, reported, not a panic).
fn wrong_kind(spec: &ServiceSpec) -> Started {
    let msg = format!(
        "service `{}`: settings of kind `{}` given to another kind",
        spec.name,
        spec.kind().name()
    );
    failed(io::Error::other(msg))
}

/// A service that takes commands, started, or why it could not.
fn serving(r: io::Result<services::Serving>) -> Started {
    match r {
        Ok((control, running)) => Started {
            running,
            control: Some(control),
        },
        Err(e) => failed(e),
    }
}

/// A service that could not start.
fn failed(e: io::Error) -> Started {
    let running: Running = Box::pin(async move { Err(e) });
    running.into()
}

/// The implementation of a kind, if this version runs it.
pub fn find(kind: ServiceKind) -> Option<&'static dyn Service> {
    ALL.iter().copied().find(|s| s.kind() == kind)
}
