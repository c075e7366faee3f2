//! How a service host is set up, and its TCP tuning.
//!
//! The defaults are chosen for a server on a lab network, not for a
//! microcontroller; docs/hoststack.md gives the reasoning for each.

use crate::reassembly::ReassemblyLimits;
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use wire::Mac;

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub name: String,
    pub mac: Mac,
    /// One or more addresses, each with its on-link prefix.
    pub addresses: Vec<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 addresses beside the link-local one the MAC makes; the stack
    /// answers neighbour discovery and ping -6 on them.
    pub addresses6: Vec<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    /// The IP MTU of the link.
    pub mtu: u16,
    pub tcp: TcpTuning,
    /// Sockets of all kinds the host may hold at once; SYNs past it are
    /// dropped and counted.
    pub max_sockets: usize,
    /// Frames waiting for the host's task; more are dropped and counted,
    /// as a NIC's full receive ring drops them.
    pub rx_queue: usize,
    /// TCP connections one client address may open to the host's
    /// listeners at once; SYNs past it are dropped and counted.
    pub max_connections_per_client: usize,
    /// The bounds of IPv4 reassembly.
    pub reassembly: ReassemblyLimits,
}

impl HostConfig {
    pub fn new(name: &str, mac: Mac, address: Ipv4Net, gateway: Option<Ipv4Addr>) -> HostConfig {
        HostConfig {
            name: name.to_owned(),
            mac,
            addresses: vec![address],
            gateway,
            addresses6: Vec::new(),
            gateway6: None,
            mtu: 1500,
            tcp: TcpTuning::default(),
            max_sockets: 65_536,
            rx_queue: 4096,
            max_connections_per_client: 4096,
            reassembly: ReassemblyLimits::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TcpTuning {
    /// Receive buffer per connection; above 64 KiB it needs window scaling,
    /// which smoltcp offers when the buffer is this large.
    pub rx_buffer: usize,
    /// Send buffer per connection.
    pub tx_buffer: usize,
    /// Bytes of full-size buffers (`rx_buffer` + `tx_buffer` a
    /// connection) the host holds at most, live and spare connections
    /// together; a connection past it gets `small_buffer` each way.
    pub buffer_budget: usize,
    /// Of the budget, what the connections of one client address may hold.
    pub client_buffer_share: usize,
    /// Each way, for a connection past a budget: enough for requests and
    /// answers, not for bulk speed.
    pub small_buffer: usize,
    /// How long an ACK may wait to ride on data; every second full segment
    /// is acknowledged at once regardless.
    pub ack_delay: Option<Duration>,
    pub nagle: bool,
    /// How long a connection closed here first stays in TIME-WAIT.
    pub time_wait: Duration,
    /// TIME-WAIT pairs remembered at most.
    pub time_wait_limit: usize,
    /// How long a connection whose owner let go may take to finish closing.
    pub orphan_timeout: Duration,
    /// How long sent data may go unacknowledged before the connection is
    /// given up (also bounds a handshake that never completes).
    pub user_timeout: Duration,
    /// Closed sockets kept with their buffers for the next connection.
    pub spare_sockets: usize,
    /// Segments one socket may send per round before others get a turn.
    pub egress_budget: usize,
    /// How long a connection may be idle before a keep-alive probe asks
    /// the peer whether it is still there; one that stays silent for
    /// `user_timeout` is given up, its buffers freed.
    pub keep_alive: Option<Duration>,
}

impl Default for TcpTuning {
    fn default() -> Self {
        TcpTuning {
            rx_buffer: 256 * 1024,
            tx_buffer: 512 * 1024,
            buffer_budget: 64 << 20,
            client_buffer_share: 16 << 20,
            small_buffer: 16 * 1024,
            ack_delay: Some(Duration::from_millis(1)),
            nagle: false,
            time_wait: Duration::from_secs(60),
            time_wait_limit: 262_144,
            orphan_timeout: Duration::from_secs(60),
            user_timeout: Duration::from_secs(60),
            spare_sockets: 256,
            egress_budget: 64,
            keep_alive: Some(Duration::from_secs(60)),
        }
    }
}
