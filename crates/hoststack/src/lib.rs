//! Service hosts: in-process endpoints with their own MAC and addresses on
//! a fabric switch, speaking TCP and UDP through smoltcp.
//!
//! * [`Stack`] is the sans-IO host: frames and time in, frames out. Each
//!   socket is kept in a smoltcp socket set of its own and found by flow,
//!   so a packet costs the same with ten connections or ten thousand.
//! * [`Host`] puts a stack behind a lock for tokio: a driver task and
//!   sockets ([`TcpListener`], [`TcpStream`], [`UdpSocket`]) with the
//!   usual async traits.
//!
//! docs/hoststack.md explains the tuning.

mod config;
mod decision;
mod device;
mod flow;
mod neighbours;
mod net;
mod reassembly;
mod stack;
mod timewait;

pub use config::{HostConfig, TcpTuning};
pub use decision::Decision;
pub use flow::FlowKey;
pub use net::{Host, Link, Rounds, TcpListener, TcpStream, TraceProbe, UdpSocket};
pub use reassembly::{ReassemblyCounters, ReassemblyLimits};
pub use smoltcp::socket::tcp::State as TcpState;
pub use stack::{HostCounters, HostStatus, SockId, Stack, EPHEMERAL_PORTS};
