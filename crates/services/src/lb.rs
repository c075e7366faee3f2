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

use crate::balancing::{self, Check, SharedPool};
use crate::deadline::{Busy, Deadlined};
use crate::lock;
use balancer::{Outcome, Pick, Pool};
use bytes::Bytes;
use hoststack::Host;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, UPGRADE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio_rustls::TlsAcceptor;
use wire::ratelimit::PerClient;

#[derive(Debug)]
pub struct Config {
    /// The balancer's name, in `Via` and its pages.
    pub name: String,
    pub port: u16,
    /// The pool of requests no route takes.
    pub pool: Pool,
    /// Requests for a host and path go to a pool of their own: the first
    /// route that matches takes the request.
    pub routes: Vec<Route>,
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
    /// HTTPS too, if set.
    pub tls: Option<Tls>,
    /// Requests per second one client address may send (bursts of twice
    /// that); past it, 429.
    pub requests_per_sec_per_client: Option<u32>,
}

/// Streams one HTTP/2 client connection may have open at once (each may
/// hold a backend connection): HAProxy's default is 100, nginx's 128;
/// the lab's pools are a few backends, so fewer.
const H2_STREAMS: u32 = 32;
/// How often an HTTP/2 connection is pinged while open; one that does not
/// answer within the header timeout is closed (RFC 9113 6.7).
const H2_PING: Duration = Duration::from_secs(20);
/// A client connection over which no byte moved for this long is closed
/// even with a request in flight (nginx's `send_timeout`), or twice the
/// request timeout if that is longer, so that a slow backend is not cut.
const CLIENT_IDLE: Duration = Duration::from_secs(60);

/// Client addresses with a request budget at most; past it the one heard
/// from least recently is forgotten.
const RATE_CLIENTS: usize = 4096;

/// A routing rule: requests for `host` (any if `None`; `*.example.com`
/// matches the names below example.com) whose path starts with
/// `path_prefix` go to `pool`.
#[derive(Debug, Clone)]
pub struct Route {
    pub host: Option<String>,
    pub path_prefix: String,
    pub pool: Pool,
}

impl Route {
    fn matches(&self, host: &str, path: &str) -> bool {
        let host_ok = match self.host.as_deref() {
            None => true,
            Some(h) => match h.strip_prefix("*.") {
                Some(parent) => host
                    .strip_suffix(parent)
                    .is_some_and(|below| below.ends_with('.')),
                None => host.eq_ignore_ascii_case(h),
            },
        };
        host_ok && path.starts_with(&self.path_prefix)
    }

    /// How the route reads in the status: `host H path P`.
    pub fn label(&self) -> String {
        format!(
            "host {} path {}",
            self.host.as_deref().unwrap_or("*"),
            self.path_prefix
        )
    }
}

/// An HTTPS listener: its port and the server's certificate and ALPN.
#[derive(Debug, Clone)]
pub struct Tls {
    pub port: u16,
    pub config: Arc<rustls::ServerConfig>,
}

impl Tls {
    /// A listener on `port` with `chain` and `key`, offering HTTP/2 and
    /// HTTP/1.1 by ALPN.
    pub fn new(
        port: u16,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Result<Tls, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            port,
            config: Arc::new(config),
        })
    }
}

/// Idle kept-alive connections kept per backend at most.
const IDLE_PER_BACKEND: usize = 64;

type ReqBody = BoxBody<Bytes, hyper::Error>;
type Sender = hyper::client::conn::http1::SendRequest<ReqBody>;
/// What a client gets: a page of the balancer's own, or a backend's body.
type Answer = Response<Either<Full<Bytes>, Tracked>>;

counters! {
    /// What the balancer counts, beside each backend's own figures.
    struct Counters {
        requests,
        retries,
        /// Retries the budget refused.
        retries_refused,
        no_backend_503,
        bad_gateway_502,
        timeout_504,
        too_large_413,
        rate_limited_429,
        connections_opened,
        connections_reused,
        /// TLS handshakes that failed or timed out.
        tls_failures,
        /// Connections upgraded (WebSockets) and joined to a backend.
        upgrades,
    }
}

/// A running balancer.
struct Lb {
    host: Host,
    config: Config,
    /// The routes, in order, with their pools.
    routes: Vec<(Route, SharedPool)>,
    /// The pool of requests no route takes.
    default: SharedPool,
    /// Kept-alive connections by backend address (shared by the pools).
    idle: Mutex<HashMap<SocketAddr, Vec<Sender>>>,
    counters: Arc<Counters>,
    /// Each client address's request budget, if limited.
    budgets: Option<Mutex<PerClient<IpAddr>>>,
    /// When the balancer started: the budgets' clock counts from it.
    started: Instant,
    /// The retry budget, in thousandths of a retry: each request adds
    /// 200, each retry costs 1,000; at most 100 retries banked.
    retry_budget: AtomicU64,
}

impl Lb {
    /// Serves one client connection: HTTP/1.1 (kept alive, headers within
    /// the header timeout) or HTTP/2 (by ALPN, or a client's preface).
    async fn serve_connection<S>(self: Arc<Self>, io: S, client: Client)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let timeout = self.config.header_timeout;
        let lb = self.clone();
        let peer = client.peer;
        let busy = Busy::default();
        let requests = busy.clone();
        let service = service_fn(move |req| {
            let (lb, client, request) = (lb.clone(), client.clone(), requests.enter());
            async move {
                let answer = lb.handle(req, client).await;
                if answer.status() == StatusCode::SWITCHING_PROTOCOLS {
                    request.keep();
                }
                Ok::<_, Infallible>(answer)
            }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_STREAMS)
            .keep_alive_interval(H2_PING)
            .keep_alive_timeout(timeout);
        // hyper's timers cover HTTP/1 headers once it knows the protocol;
        // these cover the rest: the bytes that tell the protocol, an
        // HTTP/2 connection with no request in flight, a client that
        // stopped reading (crate::deadline).
        let idle = CLIENT_IDLE.max(self.config.request_timeout * 2);
        let io = Deadlined::new(io, timeout, idle, busy);
        let served = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        if let Err(e) = served.await {
            tracing::debug!(%peer, "balancer connection ended: {e}");
        }
    }

    /// The pool a request for `host` and `path` goes to.
    fn route(&self, host: &str, path: &str) -> SharedPool {
        self.routes
            .iter()
            .find(|(r, _)| r.matches(host, path))
            .map_or(&self.default, |(_, p)| p)
            .clone()
    }

    fn now(&self) -> Instant {
        balancing::now()
    }

    /// A kept-alive connection to the backend at `addr`, or a new one.
    async fn connection(&self, addr: SocketAddr) -> io::Result<Sender> {
        loop {
            let idle = lock(&self.idle).get_mut(&addr).and_then(Vec::pop);
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
            let _ = conn.with_upgrades().await;
        });
        self.counters
            .connections_opened
            .fetch_add(1, Ordering::Relaxed);
        Ok(sender)
    }

    fn keep(&self, addr: SocketAddr, sender: Sender) {
        let mut idle = lock(&self.idle);
        let list = idle.entry(addr).or_default();
        if list.len() < IDLE_PER_BACKEND && !sender.is_closed() {
            list.push(sender);
        }
    }

    /// Takes one request from `client`'s budget, if requests are limited.
    fn within_budget(&self, client: IpAddr) -> bool {
        let Some(budgets) = &self.budgets else {
            return true;
        };
        lock(budgets).allow(crate::ticks_since(self.started), client)
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

    fn pick(
        &self,
        pool: &SharedPool,
        key: Option<&[u8]>,
        tried: &[usize],
        sticky: Option<&str>,
    ) -> Option<Pick> {
        let now = self.now();
        let mut pool = lock(pool);
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

    async fn handle(self: Arc<Self>, req: Request<Incoming>, client: Client) -> Answer {
        let peer = client.peer;
        let start = self.now();
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .retry_budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((b + 200).min(100_000))
            });
        let line = format!("{} {} {:?}", req.method(), req.uri(), req.version());
        let (answer, backend) = self.forward(req, &client).await;
        if let Either::Left(_) = answer.body() {
            // One of the balancer's own pages.
            let counter = match answer.status() {
                StatusCode::BAD_GATEWAY => Some(&self.counters.bad_gateway_502),
                StatusCode::SERVICE_UNAVAILABLE => Some(&self.counters.no_backend_503),
                StatusCode::GATEWAY_TIMEOUT => Some(&self.counters.timeout_504),
                StatusCode::PAYLOAD_TOO_LARGE => Some(&self.counters.too_large_413),
                StatusCode::TOO_MANY_REQUESTS => Some(&self.counters.rate_limited_429),
                _ => None,
            };
            if let Some(c) = counter {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
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
        mut req: Request<Incoming>,
        client: &Client,
    ) -> (Answer, Option<String>) {
        let (peer, proto) = (client.peer, client.proto);
        let too_big = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n > self.config.max_body);
        if !self.within_budget(peer.ip()) {
            let mut page = self.page(
                StatusCode::TOO_MANY_REQUESTS,
                "this client sends more requests than the balancer takes from one address",
            );
            page.headers_mut()
                .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
            return (page, None);
        }
        if too_big {
            let why = format!(
                "the request body is larger than {} bytes",
                self.config.max_body
            );
            return (self.page(StatusCode::PAYLOAD_TOO_LARGE, &why), None);
        }
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or(req.uri().host())
            .unwrap_or_default();
        let host = host
            .rsplit_once(':')
            .map_or(host, |(h, _)| h)
            .to_ascii_lowercase();
        let pool = self.route(&host, req.uri().path());
        let key: Option<Vec<u8>> = match lock(&pool).algorithm() {
            balancer::Algorithm::SourceHash => Some(wire::ip::octets(peer.ip()).to_vec()),
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
        // A request with no body can be sent again as it was.
        let replayable = idempotent && req.body().is_end_stream();
        // An Upgrade (a WebSocket) is passed on; the client's side of it is
        // taken now, to join to the backend's once it agrees (101).
        let upgrade = upgrade_of(req.headers());
        let replayable = replayable && upgrade.is_none();
        let mut client_side = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let mut req = Some(self.outgoing(req, peer, proto, upgrade));
        let mut tried = Vec::new();
        // What the client gets if the last backend tried was the last one.
        let mut failed = None;
        loop {
            let Some(pick) = self.pick(&pool, key.as_deref(), &tried, sticky.as_deref()) else {
                if let Some(answer) = failed {
                    return answer;
                }
                return if tried.is_empty() {
                    (
                        self.page(StatusCode::SERVICE_UNAVAILABLE, "no backend is in service"),
                        None,
                    )
                } else {
                    let why = "no backend could be reached (every one tried)";
                    (self.page(StatusCode::BAD_GATEWAY, why), None)
                };
            };
            tracing::debug!(lb = %self.config.name, "{}", pick.why);
            client.probe.note("lb-pick", || pick.why.clone());
            tried.push(pick.index);
            lock(&pool).started(pick.index);
            let sender = match self.connection(pick.addr).await {
                Ok(s) => s,
                Err(e) => {
                    let now = self.now();
                    if lock(&pool).finished(now, pick.index, Outcome::ConnectFailed) {
                        tracing::warn!(lb = %self.config.name, backend = %pick.name, "ejected: it failed too often in a row");
                    }
                    let why = format!("{} could not be reached: {e}", pick.name);
                    let again = idempotent && self.retry(&tried);
                    if again {
                        client.probe.note("lb-retry", || {
                            format!("{} could not be reached: another backend", pick.name)
                        });
                    }
                    let answer = (self.page(StatusCode::BAD_GATEWAY, &why), Some(pick.name));
                    if again {
                        failed = Some(answer);
                        continue;
                    }
                    return answer;
                }
            };
            let Some(outgoing) = req.take() else {
                return (
                    self.page(StatusCode::BAD_GATEWAY, "the request was lost"),
                    None,
                );
            };
            if replayable {
                req = Some(copy_of(&outgoing));
            }
            match self
                .exchange(&pool, sender, outgoing, pick, client_side.take())
                .await
            {
                // Broken before any answer: a bodiless idempotent request
                // goes to another backend.
                Exchange::Broken(answer) if replayable && self.retry(&tried) => {
                    failed = Some(answer);
                }
                Exchange::Broken(answer) | Exchange::Answered(answer) => return answer,
            }
        }
    }

    /// Whether a request that has `tried` these backends may try another
    /// (counted).
    fn retry(&self, tried: &[usize]) -> bool {
        let again = tried.len() <= self.config.retries as usize && self.may_retry();
        if again {
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
        again
    }

    /// Sends the request on `sender` and passes the answer back.
    async fn exchange(
        self: &Arc<Self>,
        pool: &SharedPool,
        mut sender: Sender,
        req: Request<ReqBody>,
        pick: Pick,
        client_side: Option<hyper::upgrade::OnUpgrade>,
    ) -> Exchange {
        let sent = self.now();
        let answer =
            tokio::time::timeout(self.config.request_timeout, sender.send_request(req)).await;
        let now = self.now();
        let latency = now.saturating_duration_since(sent);
        let name = Some(pick.name.clone());
        let response = match answer {
            Err(_) => {
                lock(pool).finished(now, pick.index, Outcome::Timeout);
                let why = format!(
                    "{} did not answer within {:?}",
                    pick.name, self.config.request_timeout
                );
                return Exchange::Answered((self.page(StatusCode::GATEWAY_TIMEOUT, &why), name));
            }
            Ok(Err(e)) => {
                lock(pool).finished(now, pick.index, Outcome::Reset);
                let why = format!("{} broke the connection: {e}", pick.name);
                return Exchange::Broken((self.page(StatusCode::BAD_GATEWAY, &why), name));
            }
            Ok(Ok(r)) => r,
        };
        let outcome = if response.status().is_server_error() {
            Outcome::ServerError { latency }
        } else {
            Outcome::Ok { latency }
        };
        if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_side)) =
            (response.status(), client_side)
        {
            lock(pool).finished(now, pick.index, outcome);
            return Exchange::Answered((self.join(client_side, response), name));
        }
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
                pool: pool.clone(),
                addr: pick.addr,
                index: pick.index,
                outcome,
                sender: Some(sender),
                ended: false,
            }),
        };
        Exchange::Answered((Response::from_parts(parts, Either::Right(tracked)), name))
    }

    /// The backend agreed to an upgrade: the client gets its 101 (headers
    /// as the backend gave them), and the two connections are joined, byte
    /// for byte, until either closes.
    fn join(
        &self,
        client_side: hyper::upgrade::OnUpgrade,
        mut response: Response<Incoming>,
    ) -> Answer {
        self.counters.upgrades.fetch_add(1, Ordering::Relaxed);
        let backend_side = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            if let (Ok(c), Ok(b)) = tokio::join!(client_side, backend_side) {
                let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
                let _ = tokio::io::copy_bidirectional(&mut c, &mut b).await;
            }
        });
        let (parts, _) = response.into_parts();
        Response::from_parts(parts, Either::Left(Full::default()))
    }

    /// The request as it goes to a backend (with `upgrade`, the protocol it
    /// asks to switch to).
    fn outgoing(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        proto: &'static str,
        upgrade: Option<HeaderValue>,
    ) -> Request<ReqBody> {
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if let Some(protocol) = upgrade {
            parts.headers.insert(UPGRADE, protocol);
            parts
                .headers
                .insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        // Backends speak HTTP/1.1; an HTTP/2 request names its host in
        // its URI (:authority), HTTP/1.1 in the Host header.
        parts.version = hyper::Version::HTTP_11;
        if !parts.headers.contains_key(HOST) {
            let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
            if let Some(v) = authority.and_then(|a| HeaderValue::from_str(&a).ok()) {
                parts.headers.insert(HOST, v);
            }
        }
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
            HeaderValue::from_static(proto),
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
}

/// A client connection: its address, `http` or `https`, and what tells
/// which traced frame brought its request (the balancer's decisions are
/// noted on it).
#[derive(Debug, Clone)]
struct Client {
    peer: SocketAddr,
    proto: &'static str,
    probe: hoststack::TraceProbe,
}

/// What became of a request sent to a backend.
enum Exchange {
    /// An answer for the client: the backend's, or a page saying it was
    /// too slow.
    Answered((Answer, Option<String>)),
    /// The connection broke before any answer (a page saying so).
    Broken((Answer, Option<String>)),
}

/// A bodiless request again, to send to another backend.
fn copy_of(req: &Request<ReqBody>) -> Request<ReqBody> {
    let mut copy = Request::new(
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed(),
    );
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
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

/// The protocol an HTTP/1.1 request asks to upgrade to (`Upgrade:` with
/// `upgrade` among its Connection options), as a WebSocket client does.
fn upgrade_of(h: &HeaderMap) -> Option<HeaderValue> {
    let asked = h
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|o| o.trim().eq_ignore_ascii_case("upgrade"));
    asked.then(|| h.get(UPGRADE).cloned()).flatten()
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
    pool: SharedPool,
    addr: SocketAddr,
    index: usize,
    outcome: Outcome,
    sender: Option<Sender>,
    ended: bool,
}

impl Drop for Done {
    fn drop(&mut self) {
        let now = self.lb.now();
        lock(&self.pool).finished(now, self.index, self.outcome);
        if let Some(sender) = self.sender.take().filter(|_| self.ended) {
            self.lb.keep(self.addr, sender);
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
pub fn serve(host: Host, config: Config) -> io::Result<crate::Serving> {
    let listener = host.listen(config.port, 1024)?;
    let tls = match &config.tls {
        Some(t) => Some((
            host.listen(t.port, 1024)?,
            TlsAcceptor::from(t.config.clone()),
        )),
        None => None,
    };
    let routes: Vec<(Route, SharedPool)> = config
        .routes
        .iter()
        .map(|r| (r.clone(), Arc::new(Mutex::new(r.pool.clone()))))
        .collect();
    let lb = Arc::new(Lb {
        host,
        routes,
        default: Arc::new(Mutex::new(config.pool.clone())),
        budgets: config
            .requests_per_sec_per_client
            .map(|r| Mutex::new(PerClient::new(r, r.saturating_mul(2), RATE_CLIENTS))),
        started: balancing::now(),
        config,
        idle: Mutex::new(HashMap::new()),
        counters: Arc::new(Counters::default()),
        retry_budget: AtomicU64::new(10_000),
    });
    let mut labelled: Vec<(String, SharedPool)> = lb
        .routes
        .iter()
        .map(|(r, p)| (r.label(), p.clone()))
        .collect();
    labelled.push(("default".to_owned(), lb.default.clone()));
    let counters = {
        let c = lb.counters.clone();
        move || c.json()
    };
    let checks = balancing::run_all_checks(&lb.host, &labelled, &lb.config.check, &lb.config.name);
    let https = {
        let lb = lb.clone();
        async move {
            let Some((listener, acceptor)) = tls else {
                return std::future::pending().await;
            };
            loop {
                let (stream, peer) = listener.accept().await?;
                let (lb, acceptor) = (lb.clone(), acceptor.clone());
                let client = Client {
                    peer,
                    proto: "https",
                    probe: stream.trace_probe(),
                };
                tokio::spawn(async move {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(lb.config.header_timeout, handshake).await {
                        Ok(Ok(tls)) => lb.serve_connection(tls, client).await,
                        _ => {
                            lb.counters.tls_failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        }
    };
    let http = async move {
        loop {
            let (stream, peer) = listener.accept().await?;
            let client = Client {
                peer,
                proto: "http",
                probe: stream.trace_probe(),
            };
            tokio::spawn(lb.clone().serve_connection(stream, client));
        }
    };
    let serving = async move {
        tokio::select! {
            r = http => r,
            r = https => r,
        }
    };
    Ok(balancing::serving(labelled, counters, serving, checks))
}
