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

/// A service's task: it serves until dropped, and ends only if its host
/// goes away (what a client does is counted, never an end).
pub type Task = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;

/// A started service that takes commands: its handle, and its task.
pub type Serving = (std::sync::Arc<dyn Control>, Task);
