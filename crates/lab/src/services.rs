//! The lab's service hosts: for each service of a kind this version runs
//! ([`crate::kinds`]), a hoststack host with its own MAC and address on its
//! switch, and the service on it as an ordinary tokio task.

use crate::kinds::{Service, Started};
use crate::{kinds, LabError, LabView};
use fabric::{Endpoint, EndpointPort, Fabric, Injector, PortId, Runtime, SwitchId, What};
use hoststack::{Decision, Host, HostConfig, HostStatus, Link};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
        config.addresses6 = s.address6.into_iter().collect();
        config.gateway6 = s.gateway6;
        let port_config = PortConfig {
            mode: PortMode::Access { vlan: 1 },
            mtu,
            ra_guard: true,
            snooped: false,
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
    /// Each service's supervision, by name.
    supervised: Vec<(String, Arc<Supervision>)>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.supervised.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Services")
            .field("hosts", &self.hosts.len())
            .field("services", &names)
            .finish()
    }
}

impl Services {
    /// Starts each host's driver and its service. A service that cannot
    /// start (a setting that cannot work) is an error here; once started,
    /// a service whose task ends or panics is started again (see
    /// [`supervise`]), and the host drivers are supervised by the runtime.
    pub fn start(
        planned: Vec<PlannedService>,
        runtime: &Runtime,
        lab: &LabView,
    ) -> Result<Services, LabError> {
        let mut running = Services {
            hosts: Vec::new(),
            drivers: Vec::new(),
            services: Vec::new(),
            supervised: Vec::new(),
        };
        let supervisor = runtime.supervisor();
        for p in planned {
            let Some(kind) = kinds::find(p.spec.kind()) else {
                continue;
            };
            let link = FabricLink(runtime.injector(p.port));
            let host = p.host.clone();
            let name = p.spec.name.clone();
            running
                .drivers
                .push(supervisor.spawn(&format!("host {name}"), async move {
                    host.run(link).await;
                }));
            let (task, state) = Supervised::start(kind, &p, lab)?;
            running
                .services
                .push(supervisor.spawn(&format!("service {name}"), task));
            running.supervised.push((name, state));
            running.hosts.push(p.host);
        }
        Ok(running)
    }

    /// The handle of service `name` for commands, if it takes any.
    pub fn control(&self, name: &str) -> Option<Arc<dyn services::Control>> {
        self.supervised
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, s)| s.control())
    }

    /// Each cache's answers so far, by name.
    pub fn cache_outcomes(&self) -> Vec<(String, services::CacheOutcomes)> {
        self.supervised
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), s.control()?.cache_outcomes()?)))
            .collect()
    }

    /// What each service says of itself (its counters, if it takes
    /// commands) and how often it was started again, by name.
    pub fn service_status(&self) -> serde_json::Map<String, serde_json::Value> {
        self.supervised
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), s.status()?)))
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

/// The shortest and longest wait before a service is started again; the
/// wait doubles with each end in a row.
const RESTART_FIRST: Duration = Duration::from_millis(100);
const RESTART_MOST: Duration = Duration::from_secs(30);
/// A service that served this long before it ended is started again after
/// the shortest wait.
const STABLE: Duration = Duration::from_secs(60);

/// What supervising one service has seen, for `status` and commands.
#[derive(Default)]
pub(crate) struct Supervision {
    restarts: AtomicU64,
    /// What ended it last: an error, a panic, or a failed start again.
    last_end: Mutex<Option<String>>,
    /// The running instance's handle for commands.
    control: Mutex<Option<Arc<dyn services::Control>>>,
}

impl Supervision {
    /// How often the service was started again.
    pub(crate) fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    fn control(&self) -> Option<Arc<dyn services::Control>> {
        services::lock(&self.control).clone()
    }

    /// The service's counters with the supervision's, or nothing if
    /// neither has anything to say.
    fn status(&self) -> Option<serde_json::Value> {
        let mut status = match self.control() {
            Some(c) => c.status(),
            None => serde_json::json!({}),
        };
        let restarts = self.restarts.load(Ordering::Relaxed);
        if let (Some(m), true) = (status.as_object_mut(), restarts > 0) {
            m.insert("restarts".into(), restarts.into());
            let last = services::lock(&self.last_end).clone();
            m.insert("last_end".into(), last.into());
        }
        (status != serde_json::json!({})).then_some(status)
    }

    fn ended(&self, service: &str, why: String) {
        tracing::warn!(%service, "service ended ({why}); starting it again");
        self.restarts.fetch_add(1, Ordering::Relaxed);
        *services::lock(&self.last_end) = Some(why);
    }
}

/// One service under supervision: how to start it again.
pub(crate) struct Supervised {
    kind: &'static dyn Service,
    host: Host,
    spec: ServiceSpec,
    lab: LabView,
    state: Arc<Supervision>,
}

impl Supervised {
    /// Starts the service once (an error here stops `up`), and returns
    /// the task that keeps it running, with its supervision's state.
    pub(crate) fn start(
        kind: &'static dyn Service,
        planned: &PlannedService,
        lab: &LabView,
    ) -> Result<(impl Future<Output = ()> + Send + 'static, Arc<Supervision>), LabError> {
        let first = kind
            .start(planned.host.clone(), &planned.spec, lab)
            .map_err(|source| LabError::Service {
                service: planned.spec.name.clone(),
                source,
            })?;
        let state = Arc::new(Supervision::default());
        let me = Supervised {
            kind,
            host: planned.host.clone(),
            spec: planned.spec.clone(),
            lab: lab.clone(),
            state: state.clone(),
        };
        Ok((me.supervise(first), state))
    }

    /// Runs the service; whenever its task ends (its host's sockets went
    /// away, or a bug panicked it), counts why and starts it again after
    /// a wait that doubles while it keeps ending, so a service is never
    /// silently gone and a broken one costs little.
    async fn supervise(self, mut started: Started) {
        let name = &self.spec.name;
        let mut wait = RESTART_FIRST;
        loop {
            *services::lock(&self.state.control) = started.control.take();
            let began = tokio::time::Instant::now();
            // Its own task, so that a panic ends it and not this loop; it
            // goes when this loop is dropped.
            let mut task = AbortOnDrop(tokio::spawn(started.running));
            let why = match (&mut task.0).await {
                Ok(Ok(())) => "its task ended".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(e) if e.is_panic() => "it panicked".to_owned(),
                Err(_) => "it was cancelled".to_owned(),
            };
            self.state.ended(name, why);
            if began.elapsed() >= STABLE {
                wait = RESTART_FIRST;
            }
            started = loop {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RESTART_MOST);
                match self.kind.start(self.host.clone(), &self.spec, &self.lab) {
                    Ok(s) => break s,
                    Err(e) => self.state.ended(name, format!("cannot start again: {e}")),
                }
            };
        }
    }
}

/// A spawned task that is aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use topology::ServiceKind;

    /// A kind whose first task panics, whose second ends with an error
    /// and whose third serves; every start counted.
    struct Flaky(AtomicUsize);

    impl Service for Flaky {
        fn kind(&self) -> ServiceKind {
            ServiceKind::Echo
        }

        fn start(&self, _: Host, _: &ServiceSpec, _: &LabView) -> std::io::Result<Started> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            let running: kinds::Running = Box::pin(async move {
                match n {
                    0 => panic!("a bug"),
                    1 => Err(std::io::Error::other("the host went away")),
                    _ => std::future::pending().await,
                }
            });
            Ok(running.into())
        }
    }

    #[test]
    fn a_service_that_panics_or_ends_is_started_again_and_counted() {
        static FLAKY: Flaky = Flaky(AtomicUsize::new(0));
        let blueprint = crate::build(&topology::reference_lab()).expect("lab");
        let planned = &blueprint.services[0];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (task, state) =
                Supervised::start(&FLAKY, planned, &blueprint.view).expect("starts");
            let task = AbortOnDrop(tokio::spawn(task));
            tokio::time::sleep(Duration::from_secs(5)).await;
            assert_eq!(FLAKY.0.load(Ordering::SeqCst), 3);
            assert_eq!(state.restarts.load(Ordering::Relaxed), 2);
            let status = state.status().expect("restarts are shown");
            assert_eq!(status["restarts"], 2);
            assert_eq!(status["last_end"], "the host went away");
            drop(task);
        });
    }
}
