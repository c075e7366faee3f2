//! A running service's handle: the commands each kind takes, typed per
//! kind, and what it answers. A kind that takes commands hands one out
//! when it starts; `scratchnet lb`, `scratchnet dns flush`, `scratchnet
//! trace dns` and the web page send them through the lab's API.
//!
//! Commands and answers are serde types, so that the control socket and
//! the page carry them as JSON without another layer of translation:
//! `{"balancer": {"drain": "web1"}}`, `{"resolver": {"flush": {}}}`.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// A command for one service, by the kind of service it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Balancer(PoolCommand),
    Resolver(ResolverCommand),
    Cache(CacheCommand),
}

impl Command {
    /// The kind of service that takes it, as people name it.
    pub fn for_kind(&self) -> &'static str {
        match self {
            Command::Balancer(_) => "balancer",
            Command::Resolver(_) => "resolver",
            Command::Cache(_) => "cache",
        }
    }
}

/// A change to a balancer's pools, by backend name (as the topology names
/// it). Every pool that holds the backend changes; `Add` goes to the
/// default pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolCommand {
    /// No new work; what it serves finishes.
    Drain(String),
    /// Back in service after a drain.
    Restore(String),
    /// Out of the pool (what it serves finishes).
    Remove(String),
    Weight {
        backend: String,
        weight: u32,
    },
    Add {
        backend: String,
        addr: SocketAddr,
        #[serde(default = "one")]
        weight: u32,
    },
}

fn one() -> u32 {
    1
}

/// A request for a recursive resolver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolverCommand {
    /// Resolve `name` `qtype` as a client on the resolver's host would,
    /// and report each step.
    Trace {
        name: String,
        #[serde(rename = "type", default = "a_record")]
        qtype: String,
    },
    /// Forget what the cache holds for `name`, or everything.
    Flush {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

fn a_record() -> String {
    "A".to_owned()
}

/// A request for a cache (a CDN edge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheCommand {
    /// Forget what is stored for one URL (`http://HOST/PATH`, `HOST/PATH`).
    Purge { url: String },
    /// Forget every URL that starts with `prefix`.
    PurgePrefix { prefix: String },
}

/// What a service answered a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// What the command did, as people read it ("web1 drains").
    Done(String),
    /// How many cache entries a flush removed.
    Flushed(u64),
    /// A resolver's walk for a question.
    Resolution(Resolution),
    /// How many URLs a purge forgot.
    Purged(u64),
}

/// A resolver's walk for one question, step by step, and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// `NAME TYPE`.
    pub question: String,
    /// The address the question was asked from.
    pub resolver: String,
    pub steps: Vec<ResolutionStep>,
    /// The answer's response code as dig prints it (`NOERROR`).
    pub rcode: String,
    /// The answer and authority sections, one record a line.
    pub answers: Vec<String>,
    pub authorities: Vec<String>,
}

/// One step of a resolution: its kind (`cache_hit`, `query`, ...) and
/// the line people read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolutionStep {
    pub step: String,
    pub text: String,
}

/// The answer to a command, or an error a person reads.
pub type Reply = Pin<Box<dyn Future<Output = Result<Answer, String>> + Send>>;

/// A service that takes commands.
pub trait Control: Send + Sync {
    /// Carries out `command`; a command for another kind of service is
    /// refused with what this one takes.
    fn request(&self, command: Command) -> Reply;

    /// What `scratchnet status` shows of the service: its counters.
    fn status(&self) -> serde_json::Value;

    /// A cache's answers so far, by how they were served (the page draws
    /// them on its link); nothing for other kinds.
    fn cache_outcomes(&self) -> Option<CacheOutcomes> {
        None
    }
}

/// A cache's answers so far, by how each was served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheOutcomes {
    /// From the store, fresh.
    pub hits: u64,
    /// From the store, stale (while revalidating, or the origin failed).
    pub stale: u64,
    /// From the store after the origin's 304.
    pub revalidated: u64,
    /// From the origin.
    pub misses: u64,
    /// Other methods, passed through.
    pub passed: u64,
}

/// The reply to a command this service does not take.
pub(crate) fn refuse(command: &Command, takes: &str) -> Reply {
    let why = format!(
        "a {} command went to a service that takes {takes}",
        command.for_kind()
    );
    Box::pin(async move { Err(why) })
}

/// A service's task: it serves until dropped, and ends only if its host
/// goes away (what a client does is counted, never an end).
pub type Task = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;

/// A started service that takes commands: its handle, and its task.
pub type Serving = (std::sync::Arc<dyn Control>, Task);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_as_the_cli_and_the_page_write_them() {
        let read = |s: &str| serde_json::from_str::<Command>(s).unwrap();
        assert_eq!(
            read(r#"{"balancer":{"drain":"web1"}}"#),
            Command::Balancer(PoolCommand::Drain("web1".into()))
        );
        assert_eq!(
            read(r#"{"balancer":{"add":{"backend":"w","addr":"10.0.0.1:80"}}}"#),
            Command::Balancer(PoolCommand::Add {
                backend: "w".into(),
                addr: "10.0.0.1:80".parse().unwrap(),
                weight: 1
            })
        );
        assert_eq!(
            read(r#"{"resolver":{"trace":{"name":"example.com"}}}"#),
            Command::Resolver(ResolverCommand::Trace {
                name: "example.com".into(),
                qtype: "A".into()
            })
        );
        assert_eq!(
            read(r#"{"resolver":{"flush":{}}}"#),
            Command::Resolver(ResolverCommand::Flush { name: None })
        );
        let bad = serde_json::from_str::<Command>(r#"{"balancer":{"drian":"web1"}}"#);
        assert!(bad.unwrap_err().to_string().contains("drain"));
    }
}
