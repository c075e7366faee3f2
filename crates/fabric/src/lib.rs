//! The fabric: every switch of a lab and the ports that join them to the
//! outside, in one graph owned by one process.
//!
//! * [`Fabric`] (core.rs) is sans-IO: a frame that enters by a port runs
//!   to completion through the graph and comes out as a list of
//!   [`Delivery`]s, with captures taken on the way. No clock, no I/O.
//! * [`EgressPath`] (egress.rs) turns a delivery into the bytes a port
//!   writes: tag edits without copying, super-frames kept for ports that
//!   take offloads and cut in software for ports that do not.
//! * [`Sim`] (sim.rs) drives a fabric on a virtual clock with seeded loss
//!   and delay, with in-process hosts as traffic sources, for `cargo test`.
//! * [`Runtime`] (runtime.rs) drives it for real: one tokio task per TAP
//!   or TUN port, draining each ready device before polling again.
//! * Traces (trace.rs, filter.rs) follow chosen frames through every node
//!   and say what each decided: `scratchnet trace`.
//! * Links (link.rs, wheel.rs) impair a port's cable as netem would:
//!   delay, jitter, loss, duplication, reordering, a rate limit, carrier.

mod alarm;
mod capture;
mod core;
mod egress;
mod filter;
mod link;
mod node;
mod port;
mod rng;
mod runtime;
mod shards;
mod sim;
mod status;
mod timers;
mod trace;
mod wheel;

pub use crate::core::{Batch, Delivery, Fabric, FabricError, PortId, RouterId, SwitchId};
pub use capture::{CaptureSink, Direction};
pub use egress::EgressPath;
pub use filter::{Dir, Filter, FilterError, Headers};
pub use link::{LinkCounters, LinkStatus};
pub use port::{PortCaps, PortIo, Readable};
pub use runtime::{
    CapturedFrame, DevicePort, Endpoint, EndpointPort, Injector, Runtime, Supervisor, TaskFailure,
    READ_BUDGET,
};
pub use sim::{LinkParams, Sim};
pub use status::{FabricStatus, MacRow, PortStatus, SwitchStatus};
pub use trace::{Event, LinkEvent, Recorded, TraceRecord, TraceSink, What};
