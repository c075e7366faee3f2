//! A running lab as one API: what the control socket and the web page ask
//! of a lab, each answered here once, so that a front end only translates
//! its requests and replies.
//!
//! [`RunningLab`] holds the lab's fabric runtime, its service hosts and
//! the lab as built. It answers status (the whole lab, its metrics in
//! Prometheus's format, its nodes and graph), link state and changes,
//! commands for services (typed per kind: [`services::Command`]), traces
//! (a stream of typed [`TraceRecord`]s), what-if injection and capture.
//!
//! Calls that wait (a service's command, a trace, a capture) take what
//! they need from the lab and let it go before waiting: a front end holds
//! the lab by a `Weak` and must never hold it across an await, so that
//! whoever started the lab can unwrap its `Arc` and [`RunningLab::stop`].

mod metrics;
mod nodes;

pub use nodes::{Graph, GraphLink, GraphNode, Interface, Node};

use crate::{LabView, ProbeError, Services};
use fabric::{CapturedFrame, FabricError, FabricStatus, FilterError, Runtime, TraceRecord};
use metrics::ServiceFigures;
use services::{Answer, Command, Control};
use std::sync::Arc;
use tokio::sync::mpsc;

/// How many captured frames may wait for a slow reader before new ones
/// are left out.
pub const CAPTURE_BACKLOG: usize = 4096;
/// How many trace records may wait for a slow reader.
pub const TRACE_BACKLOG: usize = 1024;
/// The most ports one capture takes.
pub const MAX_CAPTURE_PORTS: usize = 64;

/// Why a request of a running lab was refused, in words for a person.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error("{source}; ports: {ports}")]
    Port { source: FabricError, ports: String },
    #[error("{0}")]
    Filter(#[from] FilterError),
    #[error("{}{}", .0.message, .0.hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Impairment(#[from] wire::impair::ImpairError),
    #[error("a capture takes 1 to {MAX_CAPTURE_PORTS} ports")]
    CapturePorts,
    #[error("`{0}` is no running service that takes commands")]
    NoService(String),
    #[error("{0}")]
    NoResolver(String),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("cannot make the metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A change to a port's link: from a perfect link if `clear`, else from
/// its settings now; each `(knob, value)` as `wire::Impairment::set`
/// reads it; `up` takes the link down or up.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct LinkChange {
    pub port: String,
    #[serde(default)]
    pub clear: bool,
    #[serde(default)]
    pub set: Vec<(String, String)>,
    #[serde(default)]
    pub up: Option<bool>,
}

/// A port's link as it is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkState {
    pub port: String,
    pub up: bool,
    pub impairment: wire::Impairment,
    /// The impairment as people read it ("none", "delay 50ms (out)").
    pub summary: String,
}

impl LinkState {
    /// The state of `port`'s link as a status snapshot holds it.
    pub fn of(port: &str, link: &fabric::LinkStatus) -> LinkState {
        LinkState {
            port: port.to_owned(),
            up: link.up,
            impairment: link.impairment,
            summary: link.summary.clone(),
        }
    }
}

/// A capture under way: frames of its ports that match its filter.
#[derive(Debug)]
pub struct Capture {
    rx: mpsc::Receiver<CapturedFrame>,
    filter: fabric::Filter,
    /// Per port (in the order asked): whether it carries IP packets (a
    /// TUN) rather than Ethernet frames.
    l3: Vec<bool>,
}

impl Capture {
    /// Each port's link type for a capture file: `raw` or `ethernet`.
    pub fn links(&self) -> Vec<String> {
        self.l3
            .iter()
            .map(|&raw| if raw { "raw" } else { "ethernet" }.to_owned())
            .collect()
    }

    /// The next frame that matches, or `None` once the lab is stopping.
    pub async fn next(&mut self) -> Option<CapturedFrame> {
        loop {
            let frame = self.rx.recv().await?;
            if self.wanted(&frame) {
                return Some(frame);
            }
        }
    }

    /// A frame that matches and is already waiting, without waiting.
    pub fn next_ready(&mut self) -> Option<CapturedFrame> {
        while let Ok(frame) = self.rx.try_recv() {
            if self.wanted(&frame) {
                return Some(frame);
            }
        }
        None
    }

    fn wanted(&self, f: &CapturedFrame) -> bool {
        let raw = self.l3.get(f.port as usize).copied().unwrap_or(false);
        let headers = if raw {
            fabric::Headers::of_ip(&f.data)
        } else {
            fabric::Headers::of(&f.data)
        };
        self.filter.matches(&headers)
    }
}

/// A command on its way to a service: [`Pending::send`] it once the lab
/// is let go.
pub struct Pending {
    to: Result<Arc<dyn Control>, RequestError>,
    command: Command,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// What the service answered, or why it (or the lab) refused.
    pub async fn send(self) -> Result<Answer, String> {
        let control = self.to.map_err(|e| e.to_string())?;
        control.request(self.command).await
    }
}

/// A lab whose fabric and service hosts are running.
pub struct RunningLab {
    runtime: Runtime,
    services: Services,
    view: LabView,
}

impl std::fmt::Debug for RunningLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningLab")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

impl RunningLab {
    pub fn new(runtime: Runtime, services: Services, view: LabView) -> RunningLab {
        RunningLab {
            runtime,
            services,
            view,
        }
    }

    /// Stops the service hosts, then the fabric.
    pub async fn stop(self) {
        self.services.stop().await;
        self.runtime.shutdown().await;
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.view.topology().name
    }

    /// The whole lab's state: the fabric's tables and counters, the
    /// service hosts' stacks and the services' own figures.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "lab": self.name(),
            "pid": std::process::id(),
            "fabric": self.runtime.status(),
            "services": self.services.status(),
            "service_counters": self.services.service_status(),
        })
    }

    /// The part of [`RunningLab::status`] about `node`, if there is one.
    pub fn node_status(&self, node: &str) -> Option<serde_json::Value> {
        node_status(&self.status(), node)
    }

    /// The fabric's tables and counters, read without stopping forwarding.
    pub fn fabric_status(&self) -> FabricStatus {
        self.runtime.status()
    }

    /// Each cache service's answers so far, by how they were served.
    pub fn cache_outcomes(&self) -> Vec<(String, services::CacheOutcomes)> {
        self.services.cache_outcomes()
    }

    /// The fabric's counters and the services' figures in Prometheus's
    /// text format.
    pub fn metrics(&self) -> Result<String, RequestError> {
        let figures = self.services.service_status();
        let services: Vec<ServiceFigures> = self
            .view
            .topology()
            .services
            .iter()
            .filter_map(|s| {
                Some(ServiceFigures {
                    name: &s.name,
                    kind: s.kind(),
                    figures: figures.get(&s.name)?,
                })
            })
            .collect();
        Ok(metrics::exposition(&self.runtime.status(), &services)?)
    }

    /// Every node, its interfaces, addresses and MACs.
    pub fn nodes(&self) -> Vec<Node> {
        nodes::nodes(self.view.topology(), &self.runtime.status())
    }

    /// The lab as a graph of nodes and links, each link with its state.
    pub fn graph(&self) -> Graph {
        nodes::graph(self.view.topology(), &self.runtime.status())
    }

    /// A port's link as it is.
    pub fn link(&self, port: &str) -> Result<LinkState, RequestError> {
        let (impairment, up) = self.runtime.link(port).map_err(|e| self.no_port(e))?;
        Ok(LinkState {
            port: port.to_owned(),
            up,
            impairment,
            summary: impairment.to_string(),
        })
    }

    /// Applies `change`; the link as it is then.
    pub fn change_link(&self, change: &LinkChange) -> Result<LinkState, RequestError> {
        let rt = &self.runtime;
        let (mut imp, was_up) = rt.link(&change.port).map_err(|e| self.no_port(e))?;
        if change.clear {
            imp = wire::Impairment::default();
        }
        for (knob, value) in &change.set {
            imp.set(knob, value)?;
        }
        imp.check()?;
        let up = change.up.unwrap_or(was_up);
        rt.set_link(&change.port, imp, up)
            .map_err(|e| self.no_port(e))?;
        self.link(&change.port)
    }

    /// `command` for service `service`, to send once the lab is let go.
    pub fn command(&self, service: &str, command: Command) -> Pending {
        let to = self
            .services
            .control(service)
            .ok_or_else(|| RequestError::NoService(service.to_owned()));
        Pending { to, command }
    }

    /// `command` for resolver service `name`, or for the lab's only one.
    pub fn resolver(&self, name: Option<&str>, command: services::ResolverCommand) -> Pending {
        let command = Command::Resolver(command);
        match self.find_resolver(name) {
            Ok(name) => self.command(&name, command),
            Err(e) => Pending {
                to: Err(e),
                command,
            },
        }
    }

    /// Follows the frames entering at `port` (any port if `None`) that
    /// match `filter`, `count` of them at most: their records, and those
    /// of what they caused, arrive on the channel.
    pub fn trace(
        &self,
        port: Option<&str>,
        filter: &str,
        count: Option<u64>,
    ) -> Result<mpsc::Receiver<TraceRecord>, RequestError> {
        let filter = fabric::Filter::parse(filter)?;
        self.runtime
            .trace(port, filter, count, TRACE_BACKLOG)
            .map_err(|e| self.no_port(e))
    }

    /// What a frame `host` would send for `spec` would meet, without it
    /// happening.
    pub fn what_if(&self, host: &str, spec: &str) -> Result<Vec<TraceRecord>, RequestError> {
        let frame = self
            .view
            .probe_frame(host, spec, self.leased_address(host))?;
        self.runtime
            .what_if(host, &frame)
            .map_err(|e| self.no_port(e))
    }

    /// Starts capturing the frames crossing `ports` that match `filter`.
    pub fn capture(&self, ports: &[String], filter: &str) -> Result<Capture, RequestError> {
        let filter = fabric::Filter::parse(filter)?;
        let rt = &self.runtime;
        if ports.is_empty() || ports.len() > MAX_CAPTURE_PORTS {
            return Err(RequestError::CapturePorts);
        }
        let known = rt.port_names();
        if let Some(p) = ports.iter().find(|p| !known.contains(p)) {
            return Err(self.no_port(FabricError::NoSuchPort(p.clone())));
        }
        let (tx, rx) = mpsc::channel(CAPTURE_BACKLOG);
        for (i, port) in ports.iter().enumerate() {
            rt.capture(port, i as u32, tx.clone())
                .map_err(|e| self.no_port(e))?;
        }
        let l3 = ports.iter().map(|p| rt.port_is_l3(p)).collect();
        Ok(Capture { rx, filter, l3 })
    }

    /// A fabric error naming a port, with the ports there are.
    fn no_port(&self, source: FabricError) -> RequestError {
        RequestError::Port {
            source,
            ports: self.runtime.port_names().join(", "),
        }
    }

    /// The address a DHCP host holds, from its router's leases.
    fn leased_address(&self, host: &str) -> Option<std::net::Ipv4Addr> {
        let mac = self.view.topology().host(host)?.mac;
        self.runtime
            .status()
            .routers
            .iter()
            .flat_map(|r| &r.leases)
            .find(|l| l.mac == mac && l.state == "bound")
            .map(|l| l.ip)
    }

    /// The resolver service `name`, or the lab's only one.
    fn find_resolver(&self, name: Option<&str>) -> Result<String, RequestError> {
        let resolvers: Vec<&str> = self
            .view
            .topology()
            .services
            .iter()
            .filter(|s| s.kind() == topology::ServiceKind::DnsResolver)
            .map(|s| s.name.as_str())
            .collect();
        let refused = |why: String| Err(RequestError::NoResolver(why));
        match (name, resolvers.as_slice()) {
            (Some(n), all) if all.contains(&n) => Ok(n.to_owned()),
            (Some(n), all) => refused(format!(
                "`{n}` is no dns-resolver service of this lab (resolvers: {})",
                all.join(", ")
            )),
            (None, [one]) => Ok((*one).to_owned()),
            (None, []) => refused("this lab has no dns-resolver service".to_owned()),
            (None, all) => refused(format!(
                "this lab has several resolvers ({}): choose one with --resolver",
                all.join(", ")
            )),
        }
    }
}

/// The part of a lab's status `s` ([`RunningLab::status`]) about one
/// node: a switch, a router, a service host, or a port (a host's, with
/// its switch's header and MAC entries). None if the lab has nothing of
/// that name.
pub fn node_status(s: &serde_json::Value, node: &str) -> Option<serde_json::Value> {
    let mut s = s.clone();
    let mut found = false;
    if let Some(switches) = s
        .pointer_mut("/fabric/switches")
        .and_then(serde_json::Value::as_array_mut)
    {
        switches.retain_mut(|sw| {
            if sw["name"] == node {
                return true;
            }
            let Some(ports) = sw["ports"].as_array_mut() else {
                return false;
            };
            ports.retain(|p| p["name"] == node);
            if ports.is_empty() {
                return false;
            }
            if let Some(macs) = sw["mac_table"].as_array_mut() {
                macs.retain(|m| m["port"] == node);
            }
            if let Some(groups) = sw["groups"].as_array_mut() {
                groups.retain(|g| {
                    g["ports"]
                        .as_array()
                        .is_some_and(|p| p.contains(&node.into()))
                });
            }
            true
        });
        found |= !switches.is_empty();
    }
    for list in ["/fabric/routers", "/fabric/l3_ports", "/services"] {
        if let Some(items) = s
            .pointer_mut(list)
            .and_then(serde_json::Value::as_array_mut)
        {
            items.retain(|r| r["name"] == node);
            found |= !items.is_empty();
        }
    }
    if let Some(counters) = s
        .get_mut("service_counters")
        .and_then(serde_json::Value::as_object_mut)
    {
        counters.retain(|name, _| name == node);
        found |= !counters.is_empty();
    }
    found.then_some(s)
}
