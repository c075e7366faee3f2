//! The sans-IO heart of the fabric: switches, ports, and the run of one
//! frame through them.
//!
//! Never reads a clock, never touches a device: the driver (the runtime or
//! the simulator) passes `now` and the frame in and performs the
//! [`Delivery`]s that come out.

use crate::capture::{CaptureSink, Direction};
use crate::status::{FabricStatus, MacRow, PortStatus, SwitchStatus};
use switch::{DropReason, Egress, PortConfig, PortNo, Switch, SwitchConfig};
use wire::ether::VlanEdit;
use wire::{Instant, VnetHdr};

/// An edge port of the fabric (a TAP, an in-process host, a tunnel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u32);

/// A switch in the fabric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwitchId(pub u32);

/// One copy of a frame to write out of an edge port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub port: PortId,
    pub edit: VlanEdit,
}

/// Mistakes in building a fabric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FabricError {
    #[error("a port named `{0}` already exists")]
    DuplicatePort(String),
    #[error("no switch {0:?}")]
    NoSuchSwitch(SwitchId),
    #[error("no port named `{0}`")]
    NoSuchPort(String),
}

struct SwitchNode {
    name: String,
    switch: Switch,
    /// The edge port behind each switch port, indexed by `PortNo`.
    members: Vec<PortId>,
}

struct PortEntry {
    name: String,
    switch: usize,
    port_no: PortNo,
    offload: bool,
    capture: Option<Box<dyn CaptureSink>>,
}

/// The graph of switches and edge ports. See the module documentation.
pub struct Fabric {
    switches: Vec<SwitchNode>,
    ports: Vec<PortEntry>,
    egress: Vec<Egress>,
    capture_scratch: [u8; 16],
}

impl std::fmt::Debug for Fabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fabric")
            .field("switches", &self.switches.len())
            .field("ports", &self.ports.len())
            .finish()
    }
}

impl Default for Fabric {
    fn default() -> Self {
        Fabric::new()
    }
}

impl Fabric {
    pub fn new() -> Fabric {
        Fabric {
            switches: Vec::new(),
            ports: Vec::new(),
            egress: Vec::with_capacity(16),
            capture_scratch: [0; 16],
        }
    }

    pub fn add_switch(&mut self, name: &str, config: SwitchConfig) -> SwitchId {
        self.switches.push(SwitchNode {
            name: name.to_owned(),
            switch: Switch::new(config),
            members: Vec::new(),
        });
        SwitchId(self.switches.len() as u32 - 1)
    }

    /// Adds an edge port on `switch`. `offload` says the port's device
    /// takes GSO super-frames and partial checksums.
    pub fn add_port(
        &mut self,
        name: &str,
        switch: SwitchId,
        config: PortConfig,
        offload: bool,
    ) -> Result<PortId, FabricError> {
        if self.port_by_name(name).is_some() {
            return Err(FabricError::DuplicatePort(name.to_owned()));
        }
        let id = PortId(self.ports.len() as u32);
        let node = self
            .switches
            .get_mut(switch.0 as usize)
            .ok_or(FabricError::NoSuchSwitch(switch))?;
        let port_no = node.switch.add_port(config);
        node.members.push(id);
        self.ports.push(PortEntry {
            name: name.to_owned(),
            switch: switch.0 as usize,
            port_no,
            offload,
            capture: None,
        });
        Ok(id)
    }

    pub fn port_by_name(&self, name: &str) -> Option<PortId> {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .map(|i| PortId(i as u32))
    }

    pub fn port_name(&self, port: PortId) -> &str {
        self.ports
            .get(port.0 as usize)
            .map_or("?", |p| p.name.as_str())
    }

    pub fn port_names(&self) -> impl Iterator<Item = &str> {
        self.ports.iter().map(|p| p.name.as_str())
    }

    /// Whether the port's device takes offloaded frames as they are.
    pub fn port_offload(&self, port: PortId) -> bool {
        self.ports.get(port.0 as usize).is_some_and(|p| p.offload)
    }

    /// Starts (or, with `None`, stops) capturing on a port.
    pub fn set_capture(&mut self, port: PortId, sink: Option<Box<dyn CaptureSink>>) {
        if let Some(p) = self.ports.get_mut(port.0 as usize) {
            p.capture = sink;
        }
    }

    /// Runs one frame that arrived on `port` through the fabric. The copies
    /// to write are left in `out` (cleared first).
    pub fn ingress(
        &mut self,
        now: Instant,
        port: PortId,
        hdr: &VnetHdr,
        frame: &[u8],
        out: &mut Vec<Delivery>,
    ) -> Result<(), DropReason> {
        out.clear();
        let Some(entry) = self.ports.get_mut(port.0 as usize) else {
            return Err(DropReason::NoSuchPort);
        };
        capture(
            entry,
            now,
            Direction::In,
            VlanEdit::Keep,
            frame,
            &mut self.capture_scratch,
        );
        let node = &mut self.switches[entry.switch];
        node.switch
            .process(now, entry.port_no, frame, hdr.is_gso(), &mut self.egress)?;
        for e in &self.egress {
            let to = node.members[e.port.0 as usize];
            out.push(Delivery {
                port: to,
                edit: e.edit,
            });
            capture(
                &mut self.ports[to.0 as usize],
                now,
                Direction::Out,
                e.edit,
                frame,
                &mut self.capture_scratch,
            );
        }
        Ok(())
    }

    /// The earliest time any switch wants [`Fabric::on_timer`].
    pub fn poll_at(&self) -> Option<Instant> {
        self.switches
            .iter()
            .filter_map(|s| s.switch.poll_at())
            .min()
    }

    pub fn on_timer(&mut self, now: Instant) {
        for s in &mut self.switches {
            if s.switch.poll_at().is_some_and(|t| t <= now) {
                s.switch.on_timer(now);
            }
        }
    }

    /// A snapshot of every switch, port and MAC table.
    pub fn status(&self, now: Instant) -> FabricStatus {
        let switches = self
            .switches
            .iter()
            .map(|node| {
                let ports = node
                    .members
                    .iter()
                    .map(|&id| {
                        let entry = &self.ports[id.0 as usize];
                        let c = node
                            .switch
                            .port_counters(entry.port_no)
                            .cloned()
                            .unwrap_or_default();
                        PortStatus::new(&entry.name, entry.offload, entry.capture.is_some(), &c)
                    })
                    .collect();
                let mac_table = node
                    .switch
                    .mac_table(now)
                    .into_iter()
                    .map(|e| MacRow {
                        vlan: e.vlan,
                        mac: e.mac,
                        port: self.port_name(node.members[e.port.0 as usize]).to_owned(),
                        age_secs: e.age_secs,
                    })
                    .collect();
                SwitchStatus {
                    name: node.name.clone(),
                    counters: node.switch.counters().clone(),
                    ports,
                    mac_table,
                }
            })
            .collect();
        FabricStatus { switches }
    }
}

/// Hands a frame to the port's capture tap, if it has an open one.
fn capture(
    entry: &mut PortEntry,
    now: Instant,
    dir: Direction,
    edit: VlanEdit,
    frame: &[u8],
    scratch: &mut [u8; 16],
) {
    if let Some(sink) = &mut entry.capture {
        if sink.is_open() {
            let (head, tail) = edit.apply(frame, scratch);
            sink.record(now, dir, head, tail);
        } else {
            entry.capture = None;
        }
    }
}
