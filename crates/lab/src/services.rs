//! The lab's service hosts: for each service of a kind this version runs
//! ([`crate::kinds`]), a hoststack host with its own MAC and address on its
//! switch, and the service on it as an ordinary tokio task.

use crate::{kinds, LabError, LabView};
use fabric::{Endpoint, EndpointPort, Fabric, Injector, PortId, Runtime, SwitchId, What};
use hoststack::{Decision, Host, HostConfig, HostStatus, Link};
use std::sync::Arc;
use std::time::Duration;
use switch::{PortConfig, PortMode};
use tokio::task::AbortHandle;
use topology::{ServiceSpec, Topology};
use wire::{Frame, Mac};

/// A service host plugged into the fabric, not yet running.
#[derive(Debug)]
pub struct PlannedService {
    pub spec: ServiceSpec,
    pub port: PortId,
    pub host: Host,
}

/// Adds a switch port and a host for every service this version runs.
pub(crate) fn plan(
    lab: &Topology,
    fabric: &mut Fabric,
    switch: &impl Fn(&str) -> Result<SwitchId, LabError>,
) -> Result<Vec<PlannedService>, LabError> {
    let mut planned = Vec::new();
    for s in lab
        .services
        .iter()
        .filter(|s| kinds::find(s.kind()).is_some())
    {
        let mtu = lab.switch(&s.switch).map_or(1500, |sw| sw.mtu);
        let mut config = HostConfig::new(&s.name, Mac::local_from(&s.name), s.address, s.gateway);
        config.mtu = mtu;
        config.max_connections_per_client = s.max_connections_per_client;
        let port_config = PortConfig {
            mode: PortMode::Access { vlan: 1 },
            mtu,
        };
        let port = fabric.add_port(&s.name, switch(&s.switch)?, port_config, false)?;
        crate::impair(fabric, port, &s.impair)?;
        planned.push(PlannedService {
            spec: s.clone(),
            port,
            host: Host::new(config),
        });
    }
    Ok(planned)
}

struct Attached(Host);

impl Endpoint for Attached {
    fn deliver(&self, pieces: &[&[u8]], trace: u64) {
        self.0.deliver(pieces, trace);
    }
}

/// A service host's link to the fabric: its frames through the injector,
/// its decisions about traced frames into their traces.
struct FabricLink(Injector);

impl Link for FabricLink {
    fn send(&mut self, frames: &[Frame]) {
        self.0.send(frames);
    }

    fn traced(&mut self, trace: u64, decisions: Vec<Decision>) {
        self.0
            .traced(trace, decisions.iter().map(host_event).collect());
    }
}

/// A service host's decision as a trace event.
pub(crate) fn host_event(d: &Decision) -> What {
    What::Host {
        decision: d.name(),
        text: d.to_string(),
    }
}

/// What the fabric runtime needs to deliver frames to the service hosts.
pub fn endpoints(planned: &[PlannedService]) -> Vec<EndpointPort> {
    planned
        .iter()
        .map(|p| EndpointPort {
            port: p.port,
            endpoint: Arc::new(Attached(p.host.clone())),
        })
        .collect()
}

/// Running service hosts.
pub struct Services {
    hosts: Vec<Host>,
    drivers: Vec<AbortHandle>,
    services: Vec<AbortHandle>,
    /// The services that take commands, by name.
    controls: Vec<(String, Arc<dyn services::Control>)>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.controls.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Services")
            .field("hosts", &self.hosts.len())
            .field("controls", &names)
            .finish()
    }
}

impl Services {
    /// Starts each host's driver and its service, supervised by the
    /// runtime: a service that ends stops the lab.
    pub fn start(planned: Vec<PlannedService>, runtime: &Runtime, lab: &LabView) -> Services {
        let mut running = Services {
            hosts: Vec::new(),
            drivers: Vec::new(),
            services: Vec::new(),
            controls: Vec::new(),
        };
        let supervisor = runtime.supervisor();
        for p in planned {
            let Some(kind) = kinds::find(p.spec.kind()) else {
                continue;
            };
            let link = FabricLink(runtime.injector(p.port));
            let host = p.host.clone();
            let name = &p.spec.name;
            running
                .drivers
                .push(supervisor.spawn(&format!("host {name}"), async move {
                    host.run(link).await;
                }));
            let started = kind.run(p.host.clone(), &p.spec, lab);
            if let Some(control) = started.control {
                running.controls.push((name.clone(), control));
            }
            let service = started.running;
            let name = name.clone();
            running
                .services
                .push(supervisor.spawn(&format!("service {name}"), async move {
                    if let Err(e) = service.await {
                        tracing::error!(service = %name, "service stopped: {e}");
                    }
                }));
            running.hosts.push(p.host);
        }
        running
    }

    /// The handle of service `name` for commands, if it takes any.
    pub fn control(&self, name: &str) -> Option<Arc<dyn services::Control>> {
        self.controls
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.clone())
    }

    /// What each service that takes commands says of itself (its
    /// counters), by name.
    pub fn service_status(&self) -> serde_json::Map<String, serde_json::Value> {
        self.controls
            .iter()
            .map(|(name, c)| (name.clone(), c.status()))
            .collect()
    }

    pub fn status(&self) -> Vec<HostStatus> {
        self.hosts.iter().map(Host::status).collect()
    }

    /// Stops the services and lets every host close its connections (a
    /// FIN to each peer) before the fabric goes.
    pub async fn stop(self) {
        for s in &self.services {
            s.abort();
        }
        for h in &self.hosts {
            h.stop();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        for d in self.drivers {
            while !d.is_finished() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}
