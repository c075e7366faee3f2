//! Network namespaces and their links, set up in-process: what `ip netns
//! add`, `ip link set`, `ip addr add` and `ip route add` do, through
//! rtnetlink and a few system calls, without a process per step.
//!
//! * [`create`] and [`delete`] make and remove a named namespace as
//!   iproute2 does (a bind mount of the namespace on
//!   `/run/netns/NAME`), so `ip netns exec` and `ip netns delete` work on
//!   it as on any other.
//! * [`within`] runs a closure on a thread that has joined a namespace:
//!   sockets it opens (an [`Rtnl`]) and `/proc/sys/net` it writes are that
//!   namespace's.
//! * [`Rtnl`] sends rtnetlink requests without waiting for each answer
//!   (the kernel takes them in order), then collects every
//!   acknowledgement at once, naming the request an error answers.
//! * [`pids`] finds the processes in a set of namespaces in one pass over
//!   `/proc`.

mod ns;
mod rtnl;

pub use ns::{create, delete, exists, open, pids, within};
pub use rtnl::{Address, Error, Rtnl};
