//! The nodes of the fabric as the fabric sees them: a switch or a router
//! is a [`Node`], with numbered ports, that takes frames in, acts on time,
//! and says where what it sends leaves. The fabric knows nothing more of
//! either: it carries frames between nodes' ports and edge ports, through
//! links, captures and traces, and locks each node on its own.

use crate::status::{GroupRow, MacRow, PortStatus, SwitchStatus};
use crate::trace::What;
use router::{Outbox, Router, RouterStatus};
use std::any::Any;
use switch::{Egress, Learn, PortNo, Switch};
use wire::{Frame, FramePool, Instant, VnetHdr};

/// What a node sends, for the fabric to carry on.
pub(crate) struct Out<'a> {
    pub pool: &'a mut FramePool,
    /// The ports the frame it received leaves by as it is (tag edits
    /// applied on the way): one frame shared by every copy.
    pub shared: &'a mut Vec<Egress>,
    /// Frames it made or rewrote, by the port each leaves by.
    pub own: &'a mut Vec<(u32, Frame)>,
    /// What it decided about the frame it received, when that frame is
    /// traced.
    pub events: Option<&'a mut Vec<What>>,
}

/// A node's part of `scratchnet status`.
pub(crate) enum NodeStatus {
    Switch(SwitchStatus),
    Router(Box<RouterStatus>),
}

/// A switch or a router inside the fabric. See the module documentation.
pub(crate) trait Node: Send {
    /// Takes the frame in `slot`, arrived on `port`. A node that forwards
    /// it unchanged leaves it in the slot and lists its ports in
    /// `out.shared`; one that rewrites or ends it takes it.
    fn receive(&mut self, now: Instant, port: u32, slot: &mut Option<Frame>, out: &mut Out<'_>);

    /// When the node next wants [`Node::on_timer`].
    fn poll_at(&self) -> Option<Instant>;

    /// Acts on time: ageing, queries, retries, give-ups.
    fn on_timer(&mut self, now: Instant, out: &mut Out<'_>);

    fn status(&self, now: Instant) -> NodeStatus;

    /// A copy with the same tables, for a what-if run.
    fn boxed_clone(&self) -> Box<dyn Node>;

    /// The node itself, for the fabric's builder.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A learning switch and the names of its ports (for its trace events).
#[derive(Clone)]
pub(crate) struct SwitchNode {
    pub switch: Switch,
    pub port_names: Vec<String>,
    pub name: String,
}

impl SwitchNode {
    fn port_name(&self, p: PortNo) -> String {
        self.port_names
            .get(p.0 as usize)
            .cloned()
            .unwrap_or_else(|| "?".to_owned())
    }
}

impl Node for SwitchNode {
    fn receive(&mut self, now: Instant, port: u32, slot: &mut Option<Frame>, out: &mut Out<'_>) {
        let Some(frame) = slot.as_ref() else {
            return;
        };
        let pn = PortNo(port);
        let result = self
            .switch
            .process(now, pn, frame.data(), frame.hdr.is_gso(), out.shared);
        if let Some(events) = out.events.as_deref_mut() {
            events.push(match result {
                Ok(f) => What::Switched {
                    learned: matches!(f.learned, Learn::New | Learn::Moved)
                        .then(|| self.port_name(pn)),
                    to: out.shared.iter().map(|e| self.port_name(e.port)).collect(),
                    flooded: f.flooded,
                },
                Err(reason) => What::SwitchDrop {
                    reason: reason.as_str(),
                },
            });
        }
        if result.is_err() {
            out.shared.clear(); // counted by the switch
        }
    }

    fn poll_at(&self) -> Option<Instant> {
        self.switch.poll_at()
    }

    /// Ages the tables; what the switch sends itself (its multicast
    /// querier's queries) leaves as a copy per port.
    fn on_timer(&mut self, now: Instant, out: &mut Out<'_>) {
        if self.switch.poll_at().is_some_and(|t| t <= now) {
            self.switch.on_timer(now);
        }
        let mut egress = Vec::new();
        while let Some(data) = self.switch.poll_transmit(&mut egress) {
            for e in &egress {
                let mut copy = out.pool.copy_of(&data, VnetHdr::PLAIN);
                copy.apply_vlan_edit(e.edit);
                out.own.push((e.port.0, copy));
            }
        }
    }

    fn status(&self, now: Instant) -> NodeStatus {
        let ports: Vec<PortStatus> = self
            .port_names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let c = self
                    .switch
                    .port_counters(PortNo(i as u32))
                    .cloned()
                    .unwrap_or_default();
                PortStatus::new(name, false, false, &c)
            })
            .collect();
        let mac_table = self
            .switch
            .mac_table(now)
            .into_iter()
            .map(|e| MacRow {
                vlan: e.vlan,
                mac: e.mac,
                port: self.port_name(e.port),
                age_secs: e.age_secs,
            })
            .collect();
        let groups = self
            .switch
            .groups(now)
            .into_iter()
            .map(|g| GroupRow {
                vlan: g.vlan,
                group: g.group,
                ports: g.ports.iter().map(|&p| self.port_name(p)).collect(),
            })
            .collect();
        NodeStatus::Switch(SwitchStatus {
            name: self.name.clone(),
            counters: self.switch.counters().clone(),
            snooping: self.switch.snoop_counters().clone(),
            ports,
            mac_table,
            groups,
        })
    }

    fn boxed_clone(&self) -> Box<dyn Node> {
        Box::new(self.clone())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A router, and the outbox it fills (kept between frames).
#[derive(Clone)]
pub(crate) struct RouterNode {
    pub router: Router,
    pub outbox: Outbox,
}

impl RouterNode {
    fn drain(&mut self, out: &mut Out<'_>) {
        out.own
            .extend(self.outbox.drain(..).map(|(iface, f)| (iface.0, f)));
    }
}

impl Node for RouterNode {
    fn receive(&mut self, now: Instant, port: u32, slot: &mut Option<Frame>, out: &mut Out<'_>) {
        let Some(frame) = slot.take() else {
            return;
        };
        let traced = out.events.is_some();
        if traced {
            self.router.set_tracing(true);
        }
        let iface = router::IfaceId(port);
        self.router
            .receive(now, iface, frame, out.pool, &mut self.outbox);
        if let Some(events) = out.events.as_deref_mut() {
            events.extend(self.router.take_decisions().into_iter().map(What::Router));
            self.router.set_tracing(false);
        }
        self.drain(out);
    }

    fn poll_at(&self) -> Option<Instant> {
        self.router.poll_at()
    }

    fn on_timer(&mut self, now: Instant, out: &mut Out<'_>) {
        if self.router.poll_at().is_some_and(|t| t <= now) {
            self.router.on_timer(now, out.pool, &mut self.outbox);
        }
        self.drain(out);
    }

    fn status(&self, now: Instant) -> NodeStatus {
        NodeStatus::Router(Box::new(self.router.status(now)))
    }

    fn boxed_clone(&self) -> Box<dyn Node> {
        Box::new(self.clone())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
