//! An HTTP/1.1 load balancer (a reverse proxy) on a service host: hyper
//! on both sides, the `balancer` crate's [`Pool`] choosing the backend.
//!
//! For each request it picks a backend (a sticky cookie's first, when it
//! is available), takes a kept-alive connection to it from its idle list
//! or opens one (within `connect_timeout`), and forwards the request with
//! `X-Forwarded-For` (the client's address appended), `X-Forwarded-Proto`
//! and `Via` added and hop-by-hop headers removed. A backend that cannot
//! be connected to is tried no more for that request: an idempotent
//! request goes to another backend, at most `retries` times and within a
//! retry budget (retries at most a fifth of requests, as Finagle's), and
//! the failure counts toward the backend's ejection. A backend that does
//! not start its answer within `request_timeout` gets the client a 504;
//! no backend to ask, a 503; none that answered, a 502 — each a short page
//! that says why. Every request leaves an access log line (target
//! `scratchnet::access`).
//!
//! Backends are checked every `interval` in the background (an HTTP GET
//! that must answer with the expected status, or a TCP connection).

use balancer::{Outcome, Pick, Pool};
use bytes::Bytes;
use hoststack::Host;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddrV4;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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

#[derive(Debug)]
pub struct Config {
    /// The balancer's name, in `Via` and its pages.
    pub name: String,
    pub port: u16,
    pub pool: Pool,
    pub check: Check,
    pub retries: u32,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// The cookie naming a client's backend, for sticky sessions.
    pub sticky_cookie: Option<String>,
    /// How long a client may take to send a request's headers, and a
    /// kept-alive client connection may sit idle.
    pub header_timeout: Duration,
    /// The largest request body taken (by its Content-Length).
    pub max_body: u64,
}

/// Idle kept-alive connections kept per backend at most.
const IDLE_PER_BACKEND: usize = 64;

type ReqBody = BoxBody<Bytes, hyper::Error>;
type Sender = hyper::client::conn::http1::SendRequest<ReqBody>;
/// What a client gets: a page of the balancer's own, or a backend's body.
type Answer = Response<Either<Full<Bytes>, Tracked>>;

/// What the balancer counts, beside each backend's own figures.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    /// Retries the budget refused.
    retries_refused: AtomicU64,
    no_backend_503: AtomicU64,
    bad_gateway_502: AtomicU64,
    timeout_504: AtomicU64,
    too_large_413: AtomicU64,
    connections_opened: AtomicU64,
    connections_reused: AtomicU64,
}

/// A running balancer.
struct Lb {
    host: Host,
    config: Config,
    pool: Mutex<Pool>,
    idle: Mutex<HashMap<usize, Vec<Sender>>>,
    counters: Counters,
    /// The retry budget, in thousandths of a retry: each request adds
    /// 200, each retry costs 1,000; at most 100 retries banked.
    retry_budget: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lb {
    fn pool(&self) -> MutexGuard<'_, Pool> {
        lock(&self.pool)
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    /// A kept-alive connection to backend `index`, or a new one.
    async fn connection(&self, index: usize, addr: SocketAddrV4) -> io::Result<Sender> {
        loop {
            let idle = lock(&self.idle).get_mut(&index).and_then(Vec::pop);
            let Some(mut sender) = idle else { break };
            if sender.is_closed() {
                continue;
            }
            // Ready at once, or within a moment (the last answer's end).
            let ready = tokio::time::timeout(Duration::from_millis(50), sender.ready()).await;
            if matches!(ready, Ok(Ok(()))) {
                self.counters
                    .connections_reused
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(sender);
            }
        }
        let connect = self.host.connect(addr);
        let stream = tokio::time::timeout(self.config.connect_timeout, connect)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.counters
            .connections_opened
            .fetch_add(1, Ordering::Relaxed);
        Ok(sender)
    }

    fn keep(&self, index: usize, sender: Sender) {
        let mut idle = lock(&self.idle);
        let list = idle.entry(index).or_default();
        if list.len() < IDLE_PER_BACKEND && !sender.is_closed() {
            list.push(sender);
        }
    }

    /// Whether the retry budget allows one more retry (and spends it).
    fn may_retry(&self) -> bool {
        let spent = self
            .retry_budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                b.checked_sub(1000)
            });
        if spent.is_err() {
            self.counters
                .retries_refused
                .fetch_add(1, Ordering::Relaxed);
        }
        spent.is_ok()
    }

    fn pick(&self, key: Option<&[u8]>, tried: &[usize], sticky: Option<&str>) -> Option<Pick> {
        let now = self.now();
        let mut pool = self.pool();
        if let Some(i) = sticky
            .and_then(|name| pool.find(name))
            .filter(|&i| !tried.contains(&i) && pool.is_available(now, i))
        {
            let spec = pool.spec(i)?.clone();
            return Some(Pick {
                index: i,
                why: format!("sticky cookie: {}", spec.name),
                name: spec.name,
                addr: spec.addr,
                panic: false,
            });
        }
        pool.pick(now, key, tried)
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddrV4) -> Answer {
        let start = self.now();
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .retry_budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((b + 200).min(100_000))
            });
        let line = format!("{} {} {:?}", req.method(), req.uri(), req.version());
        let (answer, backend) = self.forward(req, peer).await;
        let ms = self.now().saturating_duration_since(start).as_secs_f64() * 1e3;
        tracing::info!(
            target: "scratchnet::access",
            "{} {peer} \"{line}\" {} backend={} {ms:.2}ms",
            self.config.name,
            answer.status().as_u16(),
            backend.as_deref().unwrap_or("-")
        );
        answer
    }

    /// The answer to `req`, and the backend that gave it.
    async fn forward(
        self: &Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddrV4,
    ) -> (Answer, Option<String>) {
        let too_big = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n > self.config.max_body);
        if too_big {
            self.counters.too_large_413.fetch_add(1, Ordering::Relaxed);
            let why = format!(
                "the request body is larger than {} bytes",
                self.config.max_body
            );
            return (self.page(StatusCode::PAYLOAD_TOO_LARGE, &why), None);
        }
        let key: Option<Vec<u8>> = match self.pool().algorithm() {
            balancer::Algorithm::SourceHash => Some(peer.ip().octets().to_vec()),
            balancer::Algorithm::HeaderHash(h) => {
                req.headers().get(h.as_str()).map(|v| v.as_bytes().to_vec())
            }
            _ => None,
        };
        let sticky = self
            .config
            .sticky_cookie
            .as_deref()
            .and_then(|c| cookie(req.headers(), c));
        let idempotent = matches!(
            *req.method(),
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::PUT
                | Method::DELETE
                | Method::TRACE
        );
        let mut req = Some(self.outgoing(req, peer));
        let mut tried = Vec::new();
        loop {
            let Some(pick) = self.pick(key.as_deref(), &tried, sticky.as_deref()) else {
                return if tried.is_empty() {
                    self.counters.no_backend_503.fetch_add(1, Ordering::Relaxed);
                    (
                        self.page(StatusCode::SERVICE_UNAVAILABLE, "no backend is in service"),
                        None,
                    )
                } else {
                    self.counters
                        .bad_gateway_502
                        .fetch_add(1, Ordering::Relaxed);
                    let why = "no backend could be reached (every one tried)";
                    (self.page(StatusCode::BAD_GATEWAY, why), None)
                };
            };
            tracing::debug!(lb = %self.config.name, "{}", pick.why);
            tried.push(pick.index);
            self.pool().started(pick.index);
            let sender = match self.connection(pick.index, pick.addr).await {
                Ok(s) => s,
                Err(e) => {
                    let now = self.now();
                    if self
                        .pool()
                        .finished(now, pick.index, Outcome::ConnectFailed)
                    {
                        tracing::warn!(lb = %self.config.name, backend = %pick.name, "ejected: it failed too often in a row");
                    }
                    let again = idempotent
                        && tried.len() <= self.config.retries as usize
                        && self.may_retry();
                    if again {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    self.counters
                        .bad_gateway_502
                        .fetch_add(1, Ordering::Relaxed);
                    let why = format!("{} could not be reached: {e}", pick.name);
                    return (self.page(StatusCode::BAD_GATEWAY, &why), Some(pick.name));
                }
            };
            let Some(outgoing) = req.take() else {
                return (
                    self.page(StatusCode::BAD_GATEWAY, "the request was lost"),
                    None,
                );
            };
            return self.exchange(sender, outgoing, pick).await;
        }
    }

    /// Sends the request on `sender` and passes the answer back.
    async fn exchange(
        self: &Arc<Self>,
        mut sender: Sender,
        req: Request<ReqBody>,
        pick: Pick,
    ) -> (Answer, Option<String>) {
        let sent = self.now();
        let answer =
            tokio::time::timeout(self.config.request_timeout, sender.send_request(req)).await;
        let now = self.now();
        let latency = now.saturating_duration_since(sent);
        let name = Some(pick.name.clone());
        let response = match answer {
            Err(_) => {
                self.pool().finished(now, pick.index, Outcome::Timeout);
                self.counters.timeout_504.fetch_add(1, Ordering::Relaxed);
                let why = format!(
                    "{} did not answer within {:?}",
                    pick.name, self.config.request_timeout
                );
                return (self.page(StatusCode::GATEWAY_TIMEOUT, &why), name);
            }
            Ok(Err(e)) => {
                self.pool().finished(now, pick.index, Outcome::Reset);
                self.counters
                    .bad_gateway_502
                    .fetch_add(1, Ordering::Relaxed);
                let why = format!("{} broke the connection: {e}", pick.name);
                return (self.page(StatusCode::BAD_GATEWAY, &why), name);
            }
            Ok(Ok(r)) => r,
        };
        let outcome = if response.status().is_server_error() {
            Outcome::ServerError { latency }
        } else {
            Outcome::Ok { latency }
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if let Ok(via) = HeaderValue::from_str(&format!("1.1 {}", self.config.name)) {
            parts.headers.append(HeaderName::from_static("via"), via);
        }
        if let Some(c) = &self.config.sticky_cookie {
            if let Ok(v) = HeaderValue::from_str(&format!("{c}={}; Path=/; HttpOnly", pick.name)) {
                parts.headers.append(hyper::header::SET_COOKIE, v);
            }
        }
        let tracked = Tracked {
            body,
            done: Some(Done {
                lb: self.clone(),
                index: pick.index,
                outcome,
                sender: Some(sender),
                ended: false,
            }),
        };
        (Response::from_parts(parts, Either::Right(tracked)), name)
    }

    /// The request as it goes to a backend.
    fn outgoing(&self, req: Request<Incoming>, peer: SocketAddrV4) -> Request<ReqBody> {
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let h = &mut parts.headers;
        let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(before) => format!("{before}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            h.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
        h.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static("http"),
        );
        if let Ok(via) = HeaderValue::from_str(&format!("1.1 {}", self.config.name)) {
            h.append(HeaderName::from_static("via"), via);
        }
        // Origin form to the backend; the Host header stays the client's.
        if let Some(pq) = parts.uri.path_and_query() {
            if let Ok(uri) = pq.as_str().parse() {
                parts.uri = uri;
            }
        }
        Request::from_parts(parts, body.boxed())
    }

    /// One of the balancer's own pages.
    fn page(&self, status: StatusCode, why: &str) -> Answer {
        let text = format!(
            "{} {}\n{}: {why}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            self.config.name
        );
        let mut r = Response::new(Either::Left(Full::new(Bytes::from(text))));
        *r.status_mut() = status;
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }

    /// Checks every backend once; logs verdicts that change.
    async fn check_all(self: &Arc<Self>) {
        let backends: Vec<(usize, String, SocketAddrV4)> = {
            let pool = self.pool();
            (0..)
                .map_while(|i| pool.spec(i).map(|s| (i, s.name.clone(), s.addr)))
                .filter(|(_, name, _)| pool.find(name).is_some())
                .collect()
        };
        let timeout = self.pool().health_config().timeout;
        let checks = backends.into_iter().map(|(i, name, addr)| {
            let me = self.clone();
            async move {
                let ok = tokio::time::timeout(timeout, me.check_one(addr))
                    .await
                    .unwrap_or(false);
                if let Some(up) = me.pool().check_result(i, ok) {
                    let state = if up { "up" } else { "down" };
                    tracing::warn!(lb = %me.config.name, backend = %name, "backend {state} (active checks)");
                }
            }
        });
        let handles: Vec<_> = checks.map(tokio::spawn).collect();
        for h in handles {
            let _ = h.await;
        }
    }

    async fn check_one(&self, addr: SocketAddrV4) -> bool {
        match &self.config.check {
            Check::None => true,
            Check::Tcp => match self.host.connect(addr).await {
                Ok(mut s) => {
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut s).await;
                    true
                }
                Err(_) => false,
            },
            Check::Http { path, status } => {
                let Ok(stream) = self.host.connect(addr).await else {
                    return false;
                };
                let Ok((mut sender, conn)) =
                    hyper::client::conn::http1::handshake::<_, ReqBody>(TokioIo::new(stream)).await
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
        }
    }
}

/// A cookie's value from the request's Cookie headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Removes the headers that belong to one connection (RFC 9110 7.6.1),
/// and those the Connection header names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<String> = h
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for n in named {
        h.remove(n.as_str());
    }
    for n in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        h.remove(n);
    }
}

/// What happens when a backend's answer has been passed on: the pool
/// hears the outcome, and the connection goes back to the idle list if the
/// answer was read to its end.
struct Done {
    lb: Arc<Lb>,
    index: usize,
    outcome: Outcome,
    sender: Option<Sender>,
    ended: bool,
}

impl Drop for Done {
    fn drop(&mut self) {
        let lb = &self.lb;
        let now = lb.now();
        lb.pool().finished(now, self.index, self.outcome);
        if let Some(sender) = self.sender.take().filter(|_| self.ended) {
            lb.keep(self.index, sender);
        }
    }
}

/// A backend's body on its way to the client.
struct Tracked {
    body: Incoming,
    done: Option<Done>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // An empty body (a 204, a HEAD's answer) is never polled.
        if self.body.is_end_stream() {
            if let Some(done) = &mut self.done {
                done.ended = true;
            }
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        // The end: no more frames, or the last one (a body of known length
        // is not polled past it).
        if matches!(polled, Poll::Ready(None)) || self.body.is_end_stream() {
            if let Some(mut done) = self.done.take() {
                done.ended = true;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Balances HTTP on the host until the task is dropped; the handle
/// answers `scratchnet lb` commands and reports the pool's state.
pub fn serve(
    host: Host,
    config: Config,
) -> io::Result<(
    Arc<dyn crate::Control>,
    impl std::future::Future<Output = io::Result<()>>,
)> {
    let listener = host.listen(config.port, 1024)?;
    let lb = Arc::new(Lb {
        host,
        pool: Mutex::new(config.pool.clone()),
        config,
        idle: Mutex::new(HashMap::new()),
        counters: Counters::default(),
        retry_budget: AtomicU64::new(10_000),
    });
    let control: Arc<dyn crate::Control> = Arc::new(LbControl(lb.clone()));
    let checks = {
        let lb = lb.clone();
        async move {
            if lb.config.check == Check::None {
                return std::future::pending::<()>().await;
            }
            loop {
                let interval = lb.pool().health_config().interval;
                lb.check_all().await;
                tokio::time::sleep(interval).await;
            }
        }
    };
    let serving = async move {
        loop {
            let (stream, peer) = listener.accept().await?;
            let lb = lb.clone();
            tokio::spawn(async move {
                let timeout = lb.config.header_timeout;
                let service = service_fn(move |req| {
                    let lb = lb.clone();
                    async move { Ok::<_, Infallible>(lb.handle(req, peer).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .keep_alive(true)
                    .timer(TokioTimer::new())
                    .header_read_timeout(timeout)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%peer, "balancer connection ended: {e}");
                }
            });
        }
    };
    Ok((control, async move {
        tokio::select! {
            r = serving => r,
            () = checks => Ok(()),
        }
    }))
}

/// The balancer's commands: `{"drain": NAME}`, `{"restore": NAME}`,
/// `{"weight": {"backend": NAME, "weight": N}}`; its status: the pool.
struct LbControl(Arc<Lb>);

impl crate::Control for LbControl {
    fn request(&self, request: serde_json::Value) -> crate::Reply {
        let lb = self.0.clone();
        Box::pin(async move {
            let name = |k: &str| request.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let mut pool = lb.pool();
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
            } else {
                return Err(
                    "the balancer takes `drain`, `restore` and `weight` requests".to_owned(),
                );
            };
            done.map(|d| serde_json::json!({ "done": d }))
                .ok_or_else(|| "no such backend in the pool".to_owned())
        })
    }

    fn status(&self) -> serde_json::Value {
        let lb = &self.0;
        let c = &lb.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let pool = lb.pool();
        serde_json::json!({
            "algorithm": pool.algorithm().name(),
            "requests": n(&c.requests),
            "retries": n(&c.retries),
            "retries_refused": n(&c.retries_refused),
            "no_backend_503": n(&c.no_backend_503),
            "bad_gateway_502": n(&c.bad_gateway_502),
            "timeout_504": n(&c.timeout_504),
            "too_large_413": n(&c.too_large_413),
            "connections_opened": n(&c.connections_opened),
            "connections_reused": n(&c.connections_reused),
            "panics": pool.panics(),
            "backends": pool.status(lb.now()),
        })
    }
}
