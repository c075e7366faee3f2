//! An HTTP load balancer (a reverse proxy) on a service host: the proxy
//! engine ([`crate::proxy`]) serves clients, keeps backend connections and
//! applies the header rules; the `balancer` crate's [`Pool`] chooses the
//! backend. What is here is what the balancer decides.
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
use crate::lock;
use crate::proxy::{self, Answer, AtEnd, Client, Failure, Front, Handler, Tracked, Upstreams};
use balancer::{Outcome, Pick, Pool};
use hoststack::Host;
use http_body::Body;
use http_body_util::{BodyExt, Either};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, HOST};
use hyper::{Method, Request, Response, StatusCode};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wire::ratelimit::PerClient;

use crate::proxy::Tls;

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
    }
}

/// A running balancer.
struct Lb {
    upstreams: Upstreams,
    config: Config,
    /// The routes, in order, with their pools.
    routes: Vec<(Route, SharedPool)>,
    /// The pool of requests no route takes.
    default: SharedPool,
    counters: Counters,
    /// Each client address's request budget, if limited.
    budgets: Option<Mutex<PerClient<IpAddr>>>,
    /// When the balancer started: the budgets' clock counts from it.
    started: Instant,
    /// The retry budget, in thousandths of a retry: each request adds
    /// 200, each retry costs 1,000; at most 100 retries banked.
    retry_budget: AtomicU64,
}

impl Lb {
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

    async fn answer(self: Arc<Self>, req: Request<Incoming>, client: Client) -> Answer {
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
        let peer = client.peer;
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
        let upgrade = proxy::upgrade_of(req.headers());
        let replayable = replayable && upgrade.is_none();
        let mut client_side = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let mut req =
            Some(proxy::outgoing(req, &self.config.name, client, upgrade).map(BodyExt::boxed));
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
            let sender = match self.upstreams.connection(pick.addr).await {
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
                req = Some(proxy::copy_of(&outgoing));
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
        mut sender: proxy::Sender,
        req: Request<proxy::ReqBody>,
        pick: Pick,
        client_side: Option<hyper::upgrade::OnUpgrade>,
    ) -> Exchange {
        let sent = self.now();
        let timeout = self.config.request_timeout;
        let answer = Upstreams::send(&mut sender, req, timeout).await;
        let now = self.now();
        let latency = now.saturating_duration_since(sent);
        let name = Some(pick.name.clone());
        let response = match answer {
            Err(Failure::Timeout) => {
                lock(pool).finished(now, pick.index, Outcome::Timeout);
                let why = format!("{} did not answer within {timeout:?}", pick.name);
                return Exchange::Answered((self.page(StatusCode::GATEWAY_TIMEOUT, &why), name));
            }
            Err(Failure::Broken(e)) => {
                lock(pool).finished(now, pick.index, Outcome::Reset);
                let why = format!("{} broke the connection: {e}", pick.name);
                return Exchange::Broken((self.page(StatusCode::BAD_GATEWAY, &why), name));
            }
            Ok(r) => r,
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
            return Exchange::Answered((self.upstreams.join(client_side, response), name));
        }
        let (mut parts, body) = response.into_parts();
        proxy::answer_head(&mut parts.headers, &self.config.name);
        if let Some(c) = &self.config.sticky_cookie {
            if let Ok(v) = HeaderValue::from_str(&format!("{c}={}; Path=/; HttpOnly", pick.name)) {
                parts.headers.append(hyper::header::SET_COOKIE, v);
            }
        }
        // Once the answer has gone to the client, the pool hears how it
        // went, and the connection serves again if it was read to its end.
        let (lb, pool, addr) = (self.clone(), pool.clone(), pick.addr);
        let at_end: AtEnd = Box::new(move |ended| {
            lock(&pool).finished(lb.now(), pick.index, outcome);
            if ended {
                lb.upstreams.keep(addr, sender);
            }
        });
        let body = Either::Right(Tracked::new(body, at_end));
        Exchange::Answered((Response::from_parts(parts, body), name))
    }

    /// One of the balancer's own pages.
    fn page(&self, status: StatusCode, why: &str) -> Answer {
        proxy::page(&self.config.name, status, why)
    }
}

impl Handler for Lb {
    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: Client,
    ) -> impl std::future::Future<Output = Answer> + Send {
        self.answer(req, client)
    }

    fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }
}

/// What became of a request sent to a backend.
enum Exchange {
    /// An answer for the client: the backend's, or a page saying it was
    /// too slow.
    Answered((Answer, Option<String>)),
    /// The connection broke before any answer (a page saying so).
    Broken((Answer, Option<String>)),
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

/// Balances HTTP on the host until the task is dropped; the handle
/// answers `scratchnet lb` commands and reports the pool's state.
pub fn serve(host: Host, config: Config) -> io::Result<crate::Serving> {
    let routes: Vec<(Route, SharedPool)> = config
        .routes
        .iter()
        .map(|r| (r.clone(), Arc::new(Mutex::new(r.pool.clone()))))
        .collect();
    let front = Front {
        port: config.port,
        tls: config.tls.clone(),
        header_timeout: config.header_timeout,
        request_timeout: config.request_timeout,
    };
    let lb = Arc::new(Lb {
        upstreams: Upstreams::new(host, config.connect_timeout),
        routes,
        default: Arc::new(Mutex::new(config.pool.clone())),
        budgets: config
            .requests_per_sec_per_client
            .map(|r| Mutex::new(PerClient::new(r, r.saturating_mul(2), RATE_CLIENTS))),
        started: balancing::now(),
        config,
        counters: Counters::default(),
        retry_budget: AtomicU64::new(10_000),
    });
    let mut labelled: Vec<(String, SharedPool)> = lb
        .routes
        .iter()
        .map(|(r, p)| (r.label(), p.clone()))
        .collect();
    labelled.push(("default".to_owned(), lb.default.clone()));
    let counters = {
        let lb = lb.clone();
        move || {
            let mut figures = lb.counters.json();
            if let (Some(all), serde_json::Value::Object(engine)) =
                (figures.as_object_mut(), lb.upstreams.json())
            {
                all.extend(engine);
            }
            figures
        }
    };
    let checks = balancing::run_all_checks(
        lb.upstreams.host(),
        &labelled,
        &lb.config.check,
        &lb.config.name,
    );
    let serving = proxy::serve(lb, front)?;
    Ok(balancing::serving(labelled, counters, serving, checks))
}
