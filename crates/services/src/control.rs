//! A running service's handle for `scratchnet` commands on the lab's
//! control socket: one JSON request in, one JSON reply out. A kind that
//! takes commands hands one out when it starts; the resolver's answers
//! `scratchnet trace dns`.

use std::future::Future;
use std::pin::Pin;

/// The reply to a request: JSON, or an error a person reads.
pub type Reply = Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send>>;

/// A service that takes commands.
pub trait Control: Send + Sync {
    fn request(&self, request: serde_json::Value) -> Reply;

    /// What `scratchnet status` shows of the service: its counters.
    fn status(&self) -> serde_json::Value;
}

/// A started service that takes commands: its handle, and the task that
/// serves until it is dropped.
pub type Serving = (
    std::sync::Arc<dyn Control>,
    Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>,
);
