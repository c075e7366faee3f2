//! The running lab as one API: what the control socket (control.rs) and
//! the web page (web.rs) ask of a lab, each answered here once, so that
//! the two front ends only translate their requests and replies.
//!
//! Calls that wait (a service's command, a trace, a capture) take what
//! they need from the lab and let it go before waiting: the lab is held
//! by an `Arc` that `up` unwraps to stop, and a front end must never hold
//! it across an await.

use crate::up::Lab;
use fabric::{CapturedFrame, TraceRecord};
use std::sync::Arc;
use tokio::sync::mpsc;

/// How many captured frames may wait for a slow reader before new ones
/// are left out.
pub const CAPTURE_BACKLOG: usize = 4096;
/// How many trace records may wait for a slow reader.
pub const TRACE_BACKLOG: usize = 1024;
/// The most ports one capture takes.
pub const MAX_CAPTURE_PORTS: usize = 64;

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

/// A service's command handle, to be awaited once the lab is let go.
pub type Command = Result<Arc<dyn services::Control>, String>;

/// Sends `request` through a handle from [`Lab::command`] or
/// [`Lab::resolver`].
pub async fn send(
    control: Command,
    request: serde_json::Value,
) -> Result<serde_json::Value, String> {
    control?.request(request).await
}

impl Lab {
    /// The whole lab's state: the fabric's tables and counters, the
    /// service hosts' stacks and the services' own figures.
    pub fn status(&self, lab: &str) -> serde_json::Value {
        serde_json::json!({
            "lab": lab,
            "pid": std::process::id(),
            "fabric": self.runtime.status(),
            "services": self.services.status(),
            "service_counters": self.services.service_status(),
        })
    }

    /// The fabric's counters and the services' figures in Prometheus's
    /// text format.
    pub fn metrics(&self) -> Result<String, String> {
        let figures = self.services.service_status();
        let services: Vec<crate::metrics::ServiceFigures> = self
            .view
            .topology()
            .services
            .iter()
            .filter_map(|s| {
                Some(crate::metrics::ServiceFigures {
                    name: &s.name,
                    kind: s.kind(),
                    figures: figures.get(&s.name)?,
                })
            })
            .collect();
        crate::metrics::exposition(&self.runtime.status(), &services).map_err(|e| format!("{e:#}"))
    }

    /// Every node, its interfaces, addresses and MACs.
    pub fn nodes(&self) -> Vec<crate::inspect::Node> {
        crate::inspect::nodes(self)
    }

    /// A port's link as it is.
    pub fn link(&self, port: &str) -> Result<LinkState, String> {
        let (impairment, up) = self.runtime.link(port).map_err(|e| self.no_port(e))?;
        Ok(LinkState {
            port: port.to_owned(),
            up,
            impairment,
            summary: impairment.to_string(),
        })
    }

    /// Applies `change`; the link as it is then, or what is wrong.
    pub fn change_link(&self, change: &LinkChange) -> Result<LinkState, String> {
        let rt = &self.runtime;
        let (mut imp, was_up) = rt.link(&change.port).map_err(|e| self.no_port(e))?;
        if change.clear {
            imp = wire::Impairment::default();
        }
        for (knob, value) in &change.set {
            imp.set(knob, value).map_err(|e| match e.hint {
                Some(h) => format!("{}: {h}", e.message),
                None => e.message,
            })?;
        }
        imp.check()
            .map_err(|e| format!("{} ({})", e.message, e.hint.unwrap_or_default()))?;
        let up = change.up.unwrap_or(was_up);
        rt.set_link(&change.port, imp, up)
            .map_err(|e| self.no_port(e))?;
        self.link(&change.port)
    }

    /// The handle of service `service`, for a command.
    pub fn command(&self, service: &str) -> Command {
        self.services
            .control(service)
            .ok_or_else(|| format!("`{service}` is no running service that takes commands"))
    }

    /// The handle of resolver service `name`, or of the lab's only one.
    pub fn resolver(&self, name: Option<&str>) -> Command {
        let name = self.find_resolver(name)?;
        self.services
            .control(&name)
            .ok_or(format!("`{name}` is not running"))
    }

    /// Follows the frames entering at `port` (any port if `None`) that
    /// match `filter`, `count` of them at most: their records, and those
    /// of what they caused, arrive on the channel.
    pub fn trace(
        &self,
        port: Option<&str>,
        filter: &str,
        count: Option<u64>,
    ) -> Result<mpsc::Receiver<TraceRecord>, String> {
        let filter = fabric::Filter::parse(filter).map_err(|e| e.to_string())?;
        self.runtime
            .trace(port, filter, count, TRACE_BACKLOG)
            .map_err(|e| self.no_port(e))
    }

    /// What a frame `host` would send for `spec` would meet, without it
    /// happening.
    pub fn what_if(&self, host: &str, spec: &str) -> Result<Vec<TraceRecord>, String> {
        let frame = self
            .view
            .probe_frame(host, spec, self.leased_address(host))
            .map_err(|e| e.to_string())?;
        self.runtime
            .what_if(host, &frame)
            .map_err(|e| e.to_string())
    }

    /// Starts capturing the frames crossing `ports` that match `filter`.
    pub fn capture(&self, ports: &[String], filter: &str) -> Result<Capture, String> {
        let filter = fabric::Filter::parse(filter).map_err(|e| e.to_string())?;
        let rt = &self.runtime;
        let known = rt.port_names();
        if ports.is_empty() || ports.len() > MAX_CAPTURE_PORTS {
            return Err(format!("a capture takes 1 to {MAX_CAPTURE_PORTS} ports"));
        }
        if let Some(p) = ports.iter().find(|p| !known.contains(p)) {
            return Err(format!("no port named `{p}`; ports: {}", known.join(", ")));
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
    fn no_port(&self, e: fabric::FabricError) -> String {
        format!("{e}; ports: {}", self.runtime.port_names().join(", "))
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
    fn find_resolver(&self, name: Option<&str>) -> Result<String, String> {
        let resolvers: Vec<&str> = self
            .view
            .topology()
            .services
            .iter()
            .filter(|s| s.kind() == topology::ServiceKind::DnsResolver)
            .map(|s| s.name.as_str())
            .collect();
        match (name, resolvers.as_slice()) {
            (Some(n), all) if all.contains(&n) => Ok(n.to_owned()),
            (Some(n), all) => Err(format!(
                "`{n}` is no dns-resolver service of this lab (resolvers: {})",
                all.join(", ")
            )),
            (None, [one]) => Ok((*one).to_owned()),
            (None, []) => Err("this lab has no dns-resolver service".to_owned()),
            (None, all) => Err(format!(
                "this lab has several resolvers ({}): choose one with --resolver",
                all.join(", ")
            )),
        }
    }
}
