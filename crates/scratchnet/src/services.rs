//! The lab's service hosts: for each built-in service, a hoststack host
//! with its own MAC and address on its switch, and the service running on
//! it as an ordinary tokio task.

use anyhow::Result;
use fabric::{Endpoint, EndpointPort, Fabric, PortId, Runtime, SwitchId};
use hoststack::{Host, HostConfig, HostStatus};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switch::{PortConfig, PortMode};
use tokio::task::AbortHandle;
use topology::{ServiceKind, ServiceSpec, Topology};
use wire::Mac;

/// Whether this version runs services of this kind.
pub fn is_built(kind: ServiceKind) -> bool {
    matches!(kind, ServiceKind::Http | ServiceKind::Echo)
}

/// A service host plugged into the fabric, not yet running.
#[derive(Debug)]
pub struct Planned {
    spec: ServiceSpec,
    port: PortId,
    host: Host,
}

/// Adds a switch port and a host for every service this version runs.
pub fn plan(
    lab: &Topology,
    fabric: &mut Fabric,
    switch_ids: &HashMap<&str, SwitchId>,
) -> Result<Vec<Planned>> {
    let mut planned = Vec::new();
    for s in lab.services.iter().filter(|s| is_built(s.kind)) {
        let mtu = lab.switch(&s.switch).map_or(1500, |sw| sw.mtu);
        let mut config = HostConfig::new(&s.name, Mac::local_from(&s.name), s.address, s.gateway);
        config.mtu = mtu;
        config.max_connections_per_client = s.max_connections_per_client;
        let port = fabric.add_port(
            &s.name,
            switch_ids[s.switch.as_str()],
            PortConfig {
                mode: PortMode::Access { vlan: 1 },
                mtu,
            },
            false,
        )?;
        planned.push(Planned {
            spec: s.clone(),
            port,
            host: Host::new(config),
        });
    }
    Ok(planned)
}

struct Attached(Host);

impl Endpoint for Attached {
    fn deliver(&self, pieces: &[&[u8]]) {
        self.0.deliver(pieces);
    }
}

/// What the fabric runtime needs to deliver frames to the hosts.
pub fn endpoints(planned: &[Planned]) -> Vec<EndpointPort> {
    planned
        .iter()
        .map(|p| EndpointPort {
            port: p.port,
            endpoint: Arc::new(Attached(p.host.clone())),
        })
        .collect()
}

/// Running service hosts.
#[derive(Debug)]
pub struct Services {
    hosts: Vec<Host>,
    drivers: Vec<AbortHandle>,
    services: Vec<AbortHandle>,
}

/// Starts each host's driver and its service.
pub fn start(planned: Vec<Planned>, runtime: &Runtime) -> Services {
    let mut running = Services {
        hosts: Vec::new(),
        drivers: Vec::new(),
        services: Vec::new(),
    };
    let supervisor = runtime.supervisor();
    for p in planned {
        let mut injector = runtime.injector(p.port);
        let host = p.host.clone();
        let name = &p.spec.name;
        running
            .drivers
            .push(supervisor.spawn(&format!("host {name}"), async move {
                host.run(|frames| injector.send(frames)).await;
            }));
        let service = format!("service {name}");
        let (host, spec) = (p.host.clone(), p.spec);
        running
            .services
            .push(supervisor.spawn(&service, async move {
                let name = spec.name.clone();
                let r = match spec.kind {
                    ServiceKind::Http => {
                        let config = services::http::Config {
                            name: spec.name,
                            port: spec.port.unwrap_or(80),
                            body_size: spec.body_size,
                            header_timeout: spec.header_timeout,
                        };
                        services::http::serve(host, config).await
                    }
                    _ => {
                        services::echo::serve(host, spec.port.unwrap_or(services::echo::PORT)).await
                    }
                };
                if let Err(e) = r {
                    tracing::error!(service = %name, "service stopped: {e}");
                }
            }));
        running.hosts.push(p.host);
    }
    running
}

impl Services {
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
