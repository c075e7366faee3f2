//! What the HTTP, TCP and UDP balancers share: the pool behind a lock,
//! the active health checks of its backends, and the commands that change
//! it while it runs.

use crate::control::refuse;
use crate::{lock, Answer, Command, PoolCommand};
use balancer::Pool;
use bytes::Bytes;
use hoststack::Host;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::header::HOST;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// How a balancer checks its backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `GET path` must answer with `status`.
    Http {
        path: String,
        status: u16,
    },
    /// A TCP connection must be accepted.
    Tcp,
    None,
}

/// A pool shared by a balancer's connections and its checker.
pub(crate) type SharedPool = Arc<Mutex<Pool>>;

/// The balancer's clock: tokio's, virtual in a simulation.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// The checks of every pool of a balancer (labelled), for ever.
pub(crate) fn run_all_checks(
    host: &Host,
    pools: &[(String, SharedPool)],
    check: &Check,
    lb: &str,
) -> impl Future<Output = ()> + Send + 'static {
    let all: Vec<_> = pools
        .iter()
        .map(|(_, p)| run_checks(host.clone(), p.clone(), check.clone(), lb.to_owned()))
        .collect();
    async move {
        // Spawned once running (the caller may build this outside a
        // runtime), and aborted with the set when the balancer stops.
        let mut running = tokio::task::JoinSet::new();
        for c in all {
            running.spawn(c);
        }
        while running.join_next().await.is_some() {}
    }
}

/// Checks every backend of `pool` from `host` every interval, for ever;
/// verdicts that change are logged.
pub(crate) async fn run_checks(host: Host, pool: SharedPool, check: Check, lb: String) {
    if check == Check::None {
        return std::future::pending().await;
    }
    loop {
        let (interval, timeout, backends) = {
            let p = lock(&pool);
            let backends: Vec<(usize, String, SocketAddr)> = (0..)
                .map_while(|i| p.spec(i).map(|s| (i, s.name.clone(), s.addr)))
                .filter(|(_, name, _)| p.find(name).is_some())
                .collect();
            let h = p.health_config();
            (h.interval, h.timeout, backends)
        };
        let checks: Vec<_> = backends
            .into_iter()
            .map(|(i, name, addr)| {
                let (host, pool, check, lb) =
                    (host.clone(), pool.clone(), check.clone(), lb.clone());
                tokio::spawn(async move {
                    let ok = tokio::time::timeout(timeout, check_one(&host, addr, &check))
                        .await
                        .unwrap_or(false);
                    if let Some(up) = lock(&pool).check_result(i, ok) {
                        let state = if up { "up" } else { "down" };
                        tracing::warn!(%lb, backend = %name, "backend {state} (active checks)");
                    }
                })
            })
            .collect();
        for c in checks {
            let _ = c.await;
        }
        tokio::time::sleep(interval).await;
    }
}

async fn check_one(host: &Host, addr: SocketAddr, check: &Check) -> bool {
    let Ok(mut stream) = host.connect(addr).await else {
        return false;
    };
    let Check::Http { path, status } = check else {
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
        return true;
    };
    type Body = BoxBody<Bytes, hyper::Error>;
    let Ok((mut sender, conn)) =
        hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await
    else {
        return false;
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let empty = Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed();
    let req = Request::get(path.as_str())
        .header(HOST, addr.ip().to_string())
        .header("user-agent", "scratchnet-health-check")
        .header("connection", "close")
        .body(empty);
    let Ok(req) = req else { return false };
    match sender.send_request(req).await {
        Ok(r) => {
            let ok = r.status().as_u16() == *status;
            let _ = r.into_body().collect().await;
            ok
        }
        Err(_) => false,
    }
}

/// Carries out `command` on the pools: every pool that holds the backend
/// changes; `Add` goes to the default pool (the last).
fn command(pools: &[(String, SharedPool)], command: &PoolCommand) -> Result<String, String> {
    if let PoolCommand::Add {
        backend,
        addr,
        weight,
    } = command
    {
        if backend.is_empty() {
            return Err("a backend needs a name".to_owned());
        }
        let Some((_, pool)) = pools.last() else {
            return Err("the balancer has no pool".to_owned());
        };
        lock(pool).add(balancer::BackendSpec {
            name: backend.clone(),
            addr: *addr,
            weight: (*weight).clamp(1, MAX_WEIGHT),
        });
        return Ok(format!("{backend} ({addr}) is in the pool"));
    }
    let mut done = None;
    for (_, pool) in pools {
        done = command_one(&mut lock(pool), command).or(done);
    }
    done.ok_or_else(|| "no such backend in the balancer's pools".to_owned())
}

/// The most weight a backend is given; more is read as this.
const MAX_WEIGHT: u32 = 1000;

/// `command` on one pool: what it did, or nothing (no such backend).
fn command_one(pool: &mut Pool, command: &PoolCommand) -> Option<String> {
    match command {
        PoolCommand::Drain(b) => pool.set_draining(b, true).then(|| format!("{b} drains")),
        PoolCommand::Restore(b) => pool
            .set_draining(b, false)
            .then(|| format!("{b} is back in service")),
        PoolCommand::Weight { backend, weight } => {
            let n = (*weight).clamp(1, MAX_WEIGHT);
            pool.set_weight(backend, n)
                .then(|| format!("{backend} has weight {n}"))
        }
        PoolCommand::Remove(b) => pool
            .remove(b)
            .then(|| format!("{b} is out of the pool (what it serves finishes)")),
        PoolCommand::Add { .. } => None,
    }
}

/// A balancer's handle: commands change its pool; its status is its
/// `counters` and the pool.
struct PoolControl<F> {
    pools: Vec<(String, SharedPool)>,
    counters: F,
}

impl<F: Fn() -> serde_json::Value + Send + Sync> crate::Control for PoolControl<F> {
    fn request(&self, request: Command) -> crate::Reply {
        let Command::Balancer(change) = &request else {
            return refuse(&request, "drain, restore, weight, add and remove");
        };
        let result = command(&self.pools, change).map(Answer::Done);
        Box::pin(async move { result })
    }

    fn status(&self) -> serde_json::Value {
        let mut status = (self.counters)();
        let pools: Vec<serde_json::Value> = self
            .pools
            .iter()
            .map(|(route, pool)| {
                let pool = lock(pool);
                serde_json::json!({
                    "route": route,
                    "algorithm": pool.algorithm().name(),
                    "panics": pool.panics(),
                    "backends": pool.status(now()),
                })
            })
            .collect();
        status["pools"] = serde_json::json!(pools);
        status
    }
}

/// A started balancer: its handle (over its `pools`, labelled by route,
/// reporting `counters`), and the task that `serve`s and runs the `checks`.
pub(crate) fn serving(
    pools: Vec<(String, SharedPool)>,
    counters: impl Fn() -> serde_json::Value + Send + Sync + 'static,
    serve: impl Future<Output = std::io::Result<()>> + Send + 'static,
    checks: impl Future<Output = ()> + Send + 'static,
) -> crate::Serving {
    let control: Arc<dyn crate::Control> = Arc::new(PoolControl { pools, counters });
    let task = async move {
        tokio::select! {
            r = serve => r,
            () = checks => Ok(()),
        }
    };
    (control, Box::pin(task))
}
