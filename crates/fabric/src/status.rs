//! What `scratchnet status` shows: a serialisable snapshot of the fabric.

use std::collections::BTreeMap;
use std::net::IpAddr;
use switch::{PortCounters, SnoopCounters, SwitchCounters};
use wire::Mac;

#[derive(Debug, Clone, serde::Serialize)]
pub struct FabricStatus {
    pub switches: Vec<SwitchStatus>,
    pub routers: Vec<router::RouterStatus>,
    /// Ports on router interfaces (TUN links): IP packets, no switch.
    pub l3_ports: Vec<PortStatus>,
    /// Frames stopped after too many hops inside the fabric (a loop).
    pub runaway: u64,
    /// Panics in the timer task (each cost one round of timers).
    #[serde(skip_serializing_if = "is_zero")]
    pub timer_panics: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SwitchStatus {
    pub name: String,
    pub counters: SwitchCounters,
    /// IGMP and MLD snooping.
    pub snooping: SnoopCounters,
    pub ports: Vec<PortStatus>,
    pub mac_table: Vec<MacRow>,
    /// The multicast groups hosts' ports joined.
    pub groups: Vec<GroupRow>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PortStatus {
    pub name: String,
    pub offload: bool,
    pub capturing: bool,
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Drops decided by the switch, by reason.
    pub drops: BTreeMap<&'static str, u64>,
    /// Device-level errors (reads and writes that failed), by kind.
    pub io_errors: BTreeMap<&'static str, u64>,
    /// The port's link, if it was ever impaired or taken down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<crate::LinkStatus>,
}

impl PortStatus {
    pub(crate) fn new(name: &str, offload: bool, capturing: bool, c: &PortCounters) -> PortStatus {
        PortStatus {
            name: name.to_owned(),
            offload,
            capturing,
            rx_frames: c.rx_frames,
            rx_bytes: c.rx_bytes,
            tx_frames: c.tx_frames,
            tx_bytes: c.tx_bytes,
            drops: c.drop_map(),
            io_errors: BTreeMap::new(),
            link: None,
        }
    }
}

impl PortStatus {
    pub(crate) fn l3(
        name: &str,
        offload: bool,
        capturing: bool,
        c: &crate::core::L3Counters,
    ) -> PortStatus {
        use std::sync::atomic::Ordering::Relaxed;
        let mut counted = PortCounters::default();
        counted.rx_frames = c.rx_frames.load(Relaxed);
        counted.rx_bytes = c.rx_bytes.load(Relaxed);
        counted.tx_frames = c.tx_frames.load(Relaxed);
        counted.tx_bytes = c.tx_bytes.load(Relaxed);
        PortStatus::new(name, offload, capturing, &counted)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MacRow {
    pub vlan: u16,
    pub mac: Mac,
    pub port: String,
    pub age_secs: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupRow {
    pub vlan: u16,
    pub group: IpAddr,
    pub ports: Vec<String>,
}

impl FabricStatus {
    pub fn port_mut(&mut self, name: &str) -> Option<&mut PortStatus> {
        self.switches
            .iter_mut()
            .flat_map(|s| s.ports.iter_mut())
            .find(|p| p.name == name)
    }

    pub fn port(&self, name: &str) -> Option<&PortStatus> {
        self.switches
            .iter()
            .flat_map(|s| s.ports.iter())
            .find(|p| p.name == name)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
