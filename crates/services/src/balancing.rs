//! What the HTTP, TCP and UDP balancers share: the pool behind a lock,
//! the active health checks of its backends, and the commands that change
//! it while it runs.

use crate::lock;
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

/// Carries out a command on the pools: `{"drain": NAME}`, `{"restore":
/// NAME}`, `{"weight": {"backend": NAME, "weight": N}}` and `{"remove":
/// NAME}` on every pool that holds the backend; `{"add": {"backend": NAME,
/// "addr": "A.B.C.D:PORT", "weight": N}}` to the default pool (the last).
fn command(
    pools: &[(String, SharedPool)],
    request: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    if let Some(add) = request.get("add") {
        let field = |k: &str| add.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let name = field("backend");
        let addr: SocketAddr = field("addr")
            .parse()
            .map_err(|_| format!("`{}` is no A.B.C.D:PORT", field("addr")))?;
        if name.is_empty() {
            return Err("a backend needs a name".to_owned());
        }
        let weight = add.get("weight").and_then(|v| v.as_u64()).unwrap_or(1);
        let spec = balancer::BackendSpec {
            name: name.to_owned(),
            addr,
            weight: u32::try_from(weight.clamp(1, 1000)).unwrap_or(1),
        };
        let Some((_, pool)) = pools.last() else {
            return Err("the balancer has no pool".to_owned());
        };
        lock(pool).add(spec);
        return Ok(serde_json::json!({ "done": format!("{name} ({addr}) is in the pool") }));
    }
    let mut done = None;
    for (_, pool) in pools {
        if let Some(d) = command_one(pool, request)? {
            done = Some(d);
        }
    }
    done.map(|d| serde_json::json!({ "done": d }))
        .ok_or_else(|| "no such backend in the balancer's pools".to_owned())
}

/// The command on one pool: what it did, or nothing (no such backend).
fn command_one(pool: &SharedPool, request: &serde_json::Value) -> Result<Option<String>, String> {
    let name = |k: &str| request.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let mut pool = lock(pool);
    let done = if let Some(b) = name("drain") {
        pool.set_draining(&b, true).then(|| format!("{b} drains"))
    } else if let Some(b) = name("restore") {
        pool.set_draining(&b, false)
            .then(|| format!("{b} is back in service"))
    } else if let Some(w) = request.get("weight") {
        let b = w
            .get("backend")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let n = w.get("weight").and_then(|v| v.as_u64()).unwrap_or(1);
        let n = u32::try_from(n.clamp(1, 1000)).unwrap_or(1);
        pool.set_weight(b, n).then(|| format!("{b} has weight {n}"))
    } else if let Some(b) = name("remove") {
        pool.remove(&b)
            .then(|| format!("{b} is out of the pool (what it serves finishes)"))
    } else {
        return Err(
            "a balancer takes `drain`, `restore`, `weight`, `add` and `remove` requests".to_owned(),
        );
    };
    Ok(done)
}

/// A balancer's handle: commands change its pool; its status is its
/// `counters` and the pool.
struct PoolControl<F> {
    pools: Vec<(String, SharedPool)>,
    counters: F,
}

impl<F: Fn() -> serde_json::Value + Send + Sync> crate::Control for PoolControl<F> {
    fn request(&self, request: serde_json::Value) -> crate::Reply {
        let result = command(&self.pools, &request);
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
