//! The registry of service kinds: one module each, one line in [`ALL`].
//!
//! A kind takes its typed settings from the validated [`ServiceSpec`] and
//! a [`LabView`] of the rest of the lab (other nodes by name, their
//! addresses), and runs as an ordinary async task on its service host.
//! Adding a kind is a module here and its line in [`ALL`]; docs/
//! architecture.md walks through `echo` as the example.

mod echo;
mod http;

use crate::LabView;
use hoststack::Host;
use std::future::Future;
use std::io;
use std::pin::Pin;
use topology::{ServiceKind, ServiceSpec};

/// A running service: it ends only on an error.
pub type Running = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A kind of service a service host can run.
pub trait Service: Sync {
    /// Which kind of the topology file this is.
    fn kind(&self) -> ServiceKind;

    /// The service on `host`, configured by `spec`, until the task is
    /// dropped.
    fn run(&self, host: Host, spec: &ServiceSpec, lab: &LabView) -> Running;
}

/// Every kind this version runs.
pub const ALL: &[&dyn Service] = &[&http::Http, &echo::Echo];

/// The implementation of a kind, if this version runs it.
pub fn find(kind: ServiceKind) -> Option<&'static dyn Service> {
    ALL.iter().copied().find(|s| s.kind() == kind)
}
