//! A caching reverse proxy (a CDN edge) on a service host: the proxy
//! engine ([`crate::proxy`]) serves clients and keeps connections to the
//! origin; the `httpcache` crate decides what is stored and when it may
//! be reused (RFC 9111, RFC 5861). What is here is what the edge does
//! with those decisions:
//!
//! * a fresh answer is served from the store (`X-Cache: HIT`), with its
//!   `Age`; a client's own validators get a 304, and a single byte range
//!   a 206 cut from the stored whole object; HEAD is answered from a
//!   stored GET;
//! * a stale one is served at once while it is revalidated in the
//!   background where `stale-while-revalidate` allows (`STALE`), else
//!   revalidated first with the stored validators (`REVALIDATED` on a
//!   304); if the origin fails, it is served where `stale-if-error`
//!   allows (`STALE`), else the client gets a 502 or 504 that says why;
//! * a miss goes to the origin (`MISS`): concurrent misses for one URL
//!   make one origin request, the others wait for its answer (request
//!   collapsing); the answer is stored if RFC 9111 and the store's bounds
//!   allow, else passed through as it comes;
//! * other methods pass through (`PASS`), and a non-error answer to an
//!   unsafe one forgets the URL (RFC 9111 4.4).
//!
//! Every answer says what happened in `X-Cache` and `Server-Timing`, and
//! the decision and its reason are noted on the traced frame that brought
//! the request ("miss: Vary mismatch").

use crate::control::refuse;
use crate::lock;
use crate::proxy::{self, Answer, AtEnd, Client, Failure, Front, Handler, Tls, Tracked, Upstreams};
use crate::{Answer as Reply, CacheCommand, CacheOutcomes, Command, Control};
use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full};
use httpcache::{Cache, Lookup, Range, Served, Stale};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_RANGE, DATE,
    ETAG, HOST, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE,
    LAST_MODIFIED, LOCATION, RANGE,
};
use hyper::{Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

#[derive(Debug)]
pub struct Config {
    /// The edge's name, in `Via`, `X-Cache` and its pages.
    pub name: String,
    pub port: u16,
    /// HTTPS too, if set.
    pub tls: Option<Tls>,
    /// Where misses go.
    pub origin: SocketAddr,
    /// The store's bounds.
    pub store: httpcache::Config,
    pub connect_timeout: Duration,
    /// How long the origin may take to start its answer.
    pub request_timeout: Duration,
    /// How long a client may take to send a request's headers, and a
    /// kept-alive client connection may sit idle.
    pub header_timeout: Duration,
    /// The time of day (`Age`, freshness) comes from it.
    pub world: crate::World,
}

counters! {
    /// What the edge counts, by outcome.
    struct Counters {
        requests,
        hits,
        misses,
        /// Served stale while revalidating, or because the origin failed.
        stale,
        /// Stale, checked with the origin, and still good (a 304).
        revalidated,
        /// Answers that could not be stored (the reason in the trace).
        not_stored,
        /// Too large to store: passed through.
        too_large,
        /// Misses that waited for another request's origin answer.
        collapsed,
        /// Other methods, passed through.
        passed,
        /// 304s to clients' own validators, and 206s cut from the store.
        not_modified_304,
        partial_206,
        unsatisfiable_416,
        bad_gateway_502,
        timeout_504,
        purged,
    }
}

/// How many stored URLs `status` lists.
const LISTED: usize = 50;

/// A running edge.
struct Edge {
    upstreams: Upstreams,
    config: Config,
    cache: Cache,
    counters: Counters,
    /// `X-Cache` for each [`Outcome`], in its order: made once.
    x_cache: Vec<HeaderValue>,
    /// The URLs whose origin request is under way: a miss for one of them
    /// waits for it instead of asking too. One entry per request in
    /// flight, so the host's connection limits bound it.
    inflight: Mutex<HashMap<String, watch::Receiver<()>>>,
}

/// What became of a request, for `X-Cache` and the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Hit,
    Miss,
    Stale,
    Revalidated,
    Pass,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Hit,
        Outcome::Miss,
        Outcome::Stale,
        Outcome::Revalidated,
        Outcome::Pass,
    ];

    /// `Server-Timing` when the origin was not asked.
    fn timing(self) -> &'static str {
        match self {
            Outcome::Hit => "cache;desc=\"HIT\"",
            Outcome::Miss => "cache;desc=\"MISS\"",
            Outcome::Stale => "cache;desc=\"STALE\"",
            Outcome::Revalidated => "cache;desc=\"REVALIDATED\"",
            Outcome::Pass => "cache;desc=\"PASS\"",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Outcome::Hit => "HIT",
            Outcome::Miss => "MISS",
            Outcome::Stale => "STALE",
            Outcome::Revalidated => "REVALIDATED",
            Outcome::Pass => "PASS",
        }
    }
}

/// Headers a client may send that say what proxies before the edge saw:
/// an edge faces end users, so it has no proxies before it, and these
/// are dropped, not passed on. Passed on, an origin that shows them (as
/// the lab's greeting shows X-Forwarded-For) would have one client's
/// words stored and served to everyone: headers the key does not hold
/// must not change what is stored.
const UNTRUSTED: [&str; 5] = [
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "forwarded",
];

/// A request as the cache reads it: GET (a HEAD is answered from a GET)
/// in origin form, with the client's headers but those of [`UNTRUSTED`].
fn lookup_request(req: &Request<Incoming>, host: &str) -> Request<()> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut r = Request::new(());
    *r.method_mut() = Method::GET;
    if let Ok(uri) = path.parse() {
        *r.uri_mut() = uri;
    }
    *r.headers_mut() = req.headers().clone();
    for name in UNTRUSTED {
        r.headers_mut().remove(name);
    }
    if let Ok(h) = HeaderValue::from_str(host) {
        r.headers_mut().insert(HOST, h);
    }
    r
}

/// The one origin request under way for a URL: leaves the in-flight list
/// when it ends, however it ends, and wakes those that wait for it.
struct Leader {
    edge: Arc<Edge>,
    key: String,
    _done: watch::Sender<()>,
}

impl Drop for Leader {
    fn drop(&mut self) {
        lock(&self.edge.inflight).remove(&self.key);
    }
}

impl Edge {
    fn now(&self) -> SystemTime {
        self.config.world.wall_clock()
    }

    /// Leads the origin request for `key`, unless one is under way.
    fn lead(self: &Arc<Self>, key: &str) -> Option<Leader> {
        let mut inflight = lock(&self.inflight);
        if inflight.contains_key(key) {
            return None;
        }
        let (tx, rx) = watch::channel(());
        inflight.insert(key.to_owned(), rx);
        Some(Leader {
            edge: self.clone(),
            key: key.to_owned(),
            _done: tx,
        })
    }

    async fn answer(self: Arc<Self>, req: Request<Incoming>, client: Client) -> Answer {
        let started = Instant::now();
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or(req.uri().host())
            .unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned();
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let key = Cache::key(&host, path);
        let (mut answer, outcome, why, origin) = match *req.method() {
            Method::GET | Method::HEAD => self.cached(req, &host, &key, &client).await,
            _ => {
                self.counters.passed.fetch_add(1, Ordering::Relaxed);
                let unsafe_method = !matches!(*req.method(), Method::OPTIONS | Method::TRACE);
                let sent = Instant::now();
                let answer = self.pass(req, &client).await;
                let failed = answer.status().is_client_error() || answer.status().is_server_error();
                if unsafe_method && !failed {
                    self.invalidate(&host, &key, answer.headers());
                }
                (
                    answer,
                    Outcome::Pass,
                    "not a GET or HEAD",
                    Some(sent.elapsed()),
                )
            }
        };
        client.probe.note("cache", || {
            format!("{}: {why}", outcome.name().to_ascii_lowercase())
        });
        let h = answer.headers_mut();
        h.insert(
            HeaderName::from_static("x-cache"),
            self.x_cache[outcome as usize].clone(),
        );
        let timing = match origin {
            Some(d) => HeaderValue::from_str(&format!(
                "cache;desc=\"{}\", origin;dur={:.1}",
                outcome.name(),
                d.as_secs_f64() * 1e3
            ))
            .ok(),
            None => Some(HeaderValue::from_static(outcome.timing())),
        };
        if let Some(v) = timing {
            h.insert(HeaderName::from_static("server-timing"), v);
        }
        tracing::info!(
            target: "scratchnet::access",
            "{} {} {key} {} {} ({why}) {:.2}ms",
            self.config.name,
            client.peer,
            answer.status().as_u16(),
            outcome.name(),
            started.elapsed().as_secs_f64() * 1e3
        );
        answer
    }

    /// Forgets what a request of an unsafe method may have changed (RFC
    /// 9111 4.4): its target, and what its answer's Location and
    /// Content-Location name on the same host.
    fn invalidate(&self, host: &str, key: &str, answer: &HeaderMap) {
        self.cache.invalidate(key);
        for name in [LOCATION, CONTENT_LOCATION] {
            let Some(to) = answer.get(name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            let absolute = to
                .strip_prefix("http://")
                .or_else(|| to.strip_prefix("https://"));
            let same_host = match absolute {
                Some(rest) => {
                    let authority = rest.split('/').next().unwrap_or_default();
                    let named = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
                    named.eq_ignore_ascii_case(host).then(|| key_of(to))
                }
                None if to.starts_with('/') => Some(Cache::key(host, to)),
                None => None,
            };
            if let Some(k) = same_host {
                self.cache.invalidate(&k);
            }
        }
    }

    /// A GET or HEAD: from the store, or through it.
    async fn cached(
        self: &Arc<Self>,
        req: Request<Incoming>,
        host: &str,
        key: &str,
        client: &Client,
    ) -> (Answer, Outcome, &'static str, Option<Duration>) {
        let head_only = req.method() == Method::HEAD;
        let asked = lookup_request(&req, host);
        let now = self.now();
        match self.cache.lookup(key, &asked, now) {
            Lookup::Fresh(v) => {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                let answer = self.stored_answer(&v, req.headers(), head_only);
                (answer, Outcome::Hit, "fresh in the cache", None)
            }
            Lookup::Stale(stale) if stale.while_revalidating() => {
                self.counters.stale.fetch_add(1, Ordering::Relaxed);
                let answer = self.stored_answer(&stale.variant, req.headers(), head_only);
                // One revalidation at a time per URL, in the background.
                if let Some(leader) = self.lead(key) {
                    let edge = self.clone();
                    let client = client.clone();
                    tokio::spawn(async move {
                        let revalidate = stale_request(&stale, &asked);
                        let key = leader.key.clone();
                        edge.revalidate(&key, &asked, &stale, revalidate, &client)
                            .await;
                        drop(leader);
                    });
                }
                (
                    answer,
                    Outcome::Stale,
                    "stale: served while revalidating",
                    None,
                )
            }
            Lookup::Stale(stale) => {
                let sent = Instant::now();
                let revalidate = stale_request(&stale, &asked);
                let (answer, outcome, why) = self
                    .revalidate(key, &asked, &stale, revalidate, client)
                    .await;
                let answer = self.deliver(answer, req.headers(), head_only);
                (answer, outcome, why, Some(sent.elapsed()))
            }
            Lookup::Miss(miss) => {
                let sent = Instant::now();
                let (answer, outcome, why) = self.miss(key, &asked, client, miss.reason()).await;
                let answer = self.deliver(answer, req.headers(), head_only);
                (answer, outcome, why, Some(sent.elapsed()))
            }
        }
    }

    /// A miss: the origin's answer, asked once for all the concurrent
    /// misses of the URL.
    async fn miss(
        self: &Arc<Self>,
        key: &str,
        asked: &Request<()>,
        client: &Client,
        reason: &'static str,
    ) -> (Fetched, Outcome, &'static str) {
        let waiting = lock(&self.inflight).get(key).cloned();
        if let Some(mut done) = waiting {
            self.counters.collapsed.fetch_add(1, Ordering::Relaxed);
            let _ = tokio::time::timeout(self.config.request_timeout, done.changed()).await;
            if let Lookup::Fresh(v) = self.cache.lookup(key, asked, self.now()) {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                return (
                    Fetched::Stored(v),
                    Outcome::Hit,
                    "collapsed: another request's origin answer",
                );
            }
        }
        let _leader = self.lead(key);
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let fetched = self
            .fetch(key, asked, whole_request(asked), true, client)
            .await;
        let why = match &fetched {
            Ok((_, None)) => reason,
            Ok((_, Some(not))) => not,
            Err(_) => "the origin failed",
        };
        match fetched {
            Ok((f, _)) => (f, Outcome::Miss, why),
            Err(page) => (Fetched::Passed(page), Outcome::Miss, why),
        }
    }

    /// Checks a stale object with the origin: a 304 makes it fresh again;
    /// a new answer replaces it; a failure serves it where stale-if-error
    /// allows.
    async fn revalidate(
        self: &Arc<Self>,
        key: &str,
        asked: &Request<()>,
        stale: &Stale,
        conditional: Request<()>,
        client: &Client,
    ) -> (Fetched, Outcome, &'static str) {
        // A server error the stale answer may stand in for is not stored
        // over it (RFC 5861 4).
        let store_errors = !stale.if_error(asked.headers());
        match self
            .fetch(key, asked, conditional, store_errors, client)
            .await
        {
            Ok((Fetched::NotModified(head), _)) => {
                let now = self.now();
                let v = self
                    .cache
                    .revalidated(key, asked, &stale.variant, &head, now);
                self.counters.revalidated.fetch_add(1, Ordering::Relaxed);
                (
                    Fetched::Stored(v),
                    Outcome::Revalidated,
                    "revalidated: 304 from the origin",
                )
            }
            Ok((fetched, _)) if !fetched.is_server_error() => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                (
                    fetched,
                    Outcome::Miss,
                    "expired: a new answer from the origin",
                )
            }
            failed if stale.if_error(asked.headers()) => {
                drop(failed);
                self.counters.stale.fetch_add(1, Ordering::Relaxed);
                (
                    Fetched::Stored(stale.variant.clone()),
                    Outcome::Stale,
                    "stale: the origin failed (stale-if-error)",
                )
            }
            Ok((fetched, _)) => (fetched, Outcome::Miss, "expired, and the origin failed"),
            Err(page) => (
                Fetched::Passed(page),
                Outcome::Miss,
                "expired, and the origin failed",
            ),
        }
    }

    /// Asks the origin `req` (for `asked`, the client's request): a 304
    /// for a conditional request; the answer stored (a 5xx only if
    /// `store_errors`), or passed through with why it was not stored; or
    /// the page that says the origin failed.
    async fn fetch(
        self: &Arc<Self>,
        key: &str,
        asked: &Request<()>,
        req: Request<()>,
        store_errors: bool,
        client: &Client,
    ) -> Result<(Fetched, Option<&'static str>), Answer> {
        let name = &self.config.name;
        let origin = self.config.origin;
        let mut out = proxy::outgoing(req, name, client, None).map(|()| proxy::empty_body());
        if let Some(v) = httpcache::surrogate_capability(name) {
            out.headers_mut().insert(SURROGATE_CAPABILITY, v);
        }
        let mut sender = match self.upstreams.connection(origin).await {
            Ok(s) => s,
            Err(e) => return Err(self.unreachable(&e)),
        };
        let response = match Upstreams::send(&mut sender, out, self.config.request_timeout).await {
            Ok(r) => r,
            Err(failure) => return Err(self.unanswered(failure)),
        };
        let (mut head, mut body) = response.into_parts();
        proxy::answer_head(&mut head.headers, name);
        if head.status == StatusCode::NOT_MODIFIED {
            let _ = body.frame().await;
            self.upstreams.keep(origin, sender);
            return Ok((Fetched::NotModified(head), None));
        }
        let max = self.config.store.max_object;
        let length = head
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let keep = self.keeper(origin, sender);
        if length.is_some_and(|n| n > max) {
            self.counters.too_large.fetch_add(1, Ordering::Relaxed);
            let body = Tracked::new(body, keep);
            return Ok((
                passed(head, Either::Right(body)),
                Some("too large to store"),
            ));
        }
        // Read to its end (within the largest object), then stored.
        let mut read = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                let why = "the origin's answer broke off";
                return Err(self.failed(StatusCode::BAD_GATEWAY, why));
            };
            if let Ok(data) = frame.into_data() {
                read.extend_from_slice(&data);
            }
            if read.len() as u64 > max {
                self.counters.too_large.fetch_add(1, Ordering::Relaxed);
                head.headers.remove(CONTENT_LENGTH);
                let rest = Tracked::after(read.freeze(), body, keep);
                return Ok((
                    passed(head, Either::Right(rest)),
                    Some("too large to store"),
                ));
            }
        }
        let ended = body.is_end_stream();
        keep(ended);
        let read = read.freeze();
        if head.status.is_server_error() && !store_errors {
            let why = "a server error, where the stale answer may stand in";
            return Ok((passed(head, Either::Left(Full::new(read))), Some(why)));
        }
        match self
            .cache
            .store(key, asked, &head, read.clone(), self.now())
        {
            Ok(()) => match self.cache.lookup(key, asked, self.now()) {
                Lookup::Fresh(v) => Ok((Fetched::Stored(v), None)),
                Lookup::Stale(s) => Ok((Fetched::Stored(s.variant.clone()), None)),
                Lookup::Miss(_) => Ok((
                    passed(head, Either::Left(Full::new(read))),
                    Some("evicted at once"),
                )),
            },
            Err(not) => {
                self.counters.not_stored.fetch_add(1, Ordering::Relaxed);
                Ok((
                    passed(head, Either::Left(Full::new(read))),
                    Some(not.reason()),
                ))
            }
        }
    }

    /// What puts the origin connection back once an answer is read.
    fn keeper(self: &Arc<Self>, origin: SocketAddr, sender: proxy::Sender) -> AtEnd {
        let edge = self.clone();
        Box::new(move |ended| {
            if ended {
                edge.upstreams.keep(origin, sender);
            }
        })
    }

    /// Any other method: passed to the origin and its answer back.
    async fn pass(self: &Arc<Self>, req: Request<Incoming>, client: &Client) -> Answer {
        let name = &self.config.name;
        let origin = self.config.origin;
        let out = proxy::outgoing(req, name, client, None).map(BodyExt::boxed);
        let mut sender = match self.upstreams.connection(origin).await {
            Ok(s) => s,
            Err(e) => return self.unreachable(&e),
        };
        match Upstreams::send(&mut sender, out, self.config.request_timeout).await {
            Ok(response) => {
                let (mut head, body) = response.into_parts();
                proxy::answer_head(&mut head.headers, name);
                head.headers.remove("surrogate-control");
                let body = Tracked::new(body, self.keeper(origin, sender));
                Response::from_parts(head, Either::Right(body))
            }
            Err(failure) => self.unanswered(failure),
        }
    }

    /// The page for a connection to the origin that could not be made: a
    /// 504 when nothing answered in time (no route to it and no word back,
    /// as nginx answers its connect timeout), a 502 when something said no
    /// (a reset, or an ICMP unreachable).
    fn unreachable(&self, e: &io::Error) -> Answer {
        let status = match e.kind() {
            io::ErrorKind::TimedOut => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        };
        let why = format!(
            "the origin {} could not be reached: {e}",
            self.config.origin
        );
        self.failed(status, &why)
    }

    /// The page for a request the origin took but did not answer.
    fn unanswered(&self, failure: Failure) -> Answer {
        match failure {
            Failure::Timeout => {
                let why = format!(
                    "the origin did not answer within {:?}",
                    self.config.request_timeout
                );
                self.failed(StatusCode::GATEWAY_TIMEOUT, &why)
            }
            Failure::Broken(e) => {
                let why = format!("the origin broke the connection: {e}");
                self.failed(StatusCode::BAD_GATEWAY, &why)
            }
        }
    }

    /// A 502 or 504 page that says why, counted by its status.
    fn failed(&self, status: StatusCode, why: &str) -> Answer {
        let counter = match status {
            StatusCode::GATEWAY_TIMEOUT => &self.counters.timeout_504,
            _ => &self.counters.bad_gateway_502,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        proxy::page(&self.config.name, status, why)
    }

    /// The origin's answer as it goes to the client.
    fn deliver(&self, fetched: Fetched, asked: &HeaderMap, head_only: bool) -> Answer {
        match fetched {
            Fetched::Stored(v) => self.stored_answer(&v, asked, head_only),
            Fetched::Passed(a) => a,
            Fetched::NotModified(head) => Response::from_parts(head, Either::Left(Full::default())),
        }
    }

    /// A stored answer as the client asked for it: a 304 for its own
    /// validators, a 206 for one range of it, headers only for a HEAD.
    fn stored_answer(
        &self,
        variant: &httpcache::Variant,
        asked: &HeaderMap,
        head_only: bool,
    ) -> Answer {
        let Served { mut head, body } = variant.serve(self.now(), asked);
        let conditional =
            asked.contains_key(IF_NONE_MATCH) || asked.contains_key(IF_MODIFIED_SINCE);
        // Without Last-Modified, the stored Date stands for it (RFC 9111
        // 4.3.2).
        let modified = conditional
            .then(|| head.headers.get(LAST_MODIFIED).or(head.headers.get(DATE)))
            .flatten()
            .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
        let has_validator = head.headers.contains_key(ETAG) || modified.is_some();
        if conditional && has_validator && crate::http::not_modified(asked, &head.headers, modified)
        {
            self.counters
                .not_modified_304
                .fetch_add(1, Ordering::Relaxed);
            head.status = StatusCode::NOT_MODIFIED;
            head.headers.remove(CONTENT_LENGTH);
            return Response::from_parts(head, Either::Left(Full::default()));
        }
        let len = body.len() as u64;
        let body = match (head.status, httpcache::range(asked, &head.headers, len)) {
            (StatusCode::OK, Range::Part { start, end }) => {
                self.counters.partial_206.fetch_add(1, Ordering::Relaxed);
                head.status = StatusCode::PARTIAL_CONTENT;
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                    head.headers.insert(CONTENT_RANGE, v);
                }
                body.slice(start as usize..=end as usize)
            }
            (StatusCode::OK, Range::Unsatisfiable) => {
                self.counters
                    .unsatisfiable_416
                    .fetch_add(1, Ordering::Relaxed);
                head.status = StatusCode::RANGE_NOT_SATISFIABLE;
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    head.headers.insert(CONTENT_RANGE, v);
                }
                Bytes::new()
            }
            _ => body,
        };
        head.headers
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        head.headers.insert(
            HeaderName::from_static("accept-ranges"),
            HeaderValue::from_static("bytes"),
        );
        let body = if head_only { Bytes::new() } else { body };
        let mut r = Response::from_parts(head, Either::Left(Full::new(body)));
        if head_only {
            // hyper sends no body for a HEAD, and keeps this length.
            r.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
        r
    }

    /// What `status` shows: the counters, the store's use and contents.
    fn status(&self) -> serde_json::Value {
        let mut s = self.counters.json();
        let (entries, bytes, capacity, evicted) = self.cache.usage();
        let contents: Vec<serde_json::Value> = self
            .cache
            .list(LISTED, self.now())
            .into_iter()
            .map(|l| {
                serde_json::json!({
                    "url": l.key,
                    "variants": l.variants,
                    "bytes": l.bytes,
                    "age_secs": l.age.as_secs(),
                    "ttl_secs": l.ttl.as_secs(),
                })
            })
            .collect();
        if let Some(o) = s.as_object_mut() {
            o.insert("entries".into(), entries.into());
            o.insert("bytes".into(), bytes.into());
            o.insert("capacity".into(), capacity.into());
            o.insert("evicted".into(), evicted.into());
            o.insert("contents".into(), contents.into());
            if let serde_json::Value::Object(engine) = self.upstreams.json() {
                o.extend(engine);
            }
        }
        s
    }
}

/// What the origin's answer became.
enum Fetched {
    /// Stored: served from the store.
    Stored(Arc<httpcache::Variant>),
    /// Not stored: passed on as it is.
    Passed(Answer),
    /// A 304 to a revalidation.
    NotModified(hyper::http::response::Parts),
}

impl Fetched {
    fn is_server_error(&self) -> bool {
        matches!(self, Fetched::Passed(a) if a.status().is_server_error())
    }
}

/// Surrogate-Capability: NAME="Surrogate/1.0", sent to the origin.
const SURROGATE_CAPABILITY: HeaderName = HeaderName::from_static("surrogate-capability");

/// An origin answer passed on unstored: without its Surrogate-Control,
/// which was for the edge alone.
fn passed(mut head: hyper::http::response::Parts, body: Either<Full<Bytes>, Tracked>) -> Fetched {
    head.headers.remove("surrogate-control");
    Fetched::Passed(Response::from_parts(head, body))
}

/// The revalidation request of a stale object, in origin form.
fn stale_request(stale: &Stale, asked: &Request<()>) -> Request<()> {
    let mut r = Request::new(());
    *r.uri_mut() = asked.uri().clone();
    *r.headers_mut() = stale.revalidate.headers.clone();
    r.headers_mut().remove(RANGE);
    r
}

/// The request for a whole object to store: the client's, without its
/// validators and range (the edge answers those from what it stores).
fn whole_request(r: &Request<()>) -> Request<()> {
    let mut c = Request::new(());
    *c.method_mut() = r.method().clone();
    *c.uri_mut() = r.uri().clone();
    *c.headers_mut() = r.headers().clone();
    for h in [
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_RANGE,
        RANGE,
        IF_MATCH,
        IF_UNMODIFIED_SINCE,
    ] {
        c.headers_mut().remove(h);
    }
    c
}

impl Handler for Edge {
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

/// The edge's handle: purge commands; its status.
struct EdgeControl(Arc<Edge>);

impl Control for EdgeControl {
    fn request(&self, command: Command) -> crate::Reply {
        let Command::Cache(command) = command else {
            return refuse(&command, "purge");
        };
        let cache = &self.0.cache;
        let purged = match command {
            CacheCommand::Purge { url } => u64::from(cache.purge(&key_of(&url))),
            CacheCommand::PurgePrefix { prefix } => cache.purge_prefix(&key_of(&prefix)),
        };
        self.0.counters.purged.fetch_add(purged, Ordering::Relaxed);
        Box::pin(async move { Ok(Reply::Purged(purged)) })
    }

    fn status(&self) -> serde_json::Value {
        self.0.status()
    }

    fn cache_outcomes(&self) -> Option<CacheOutcomes> {
        let c = &self.0.counters;
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        Some(CacheOutcomes {
            hits: read(&c.hits),
            stale: read(&c.stale),
            revalidated: read(&c.revalidated),
            misses: read(&c.misses),
            passed: read(&c.passed),
        })
    }
}

/// The store key of a URL as people write it: `http://HOST/PATH`,
/// `HOST/PATH`, with any port left out.
fn key_of(url: &str) -> String {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    Cache::key(host, if path.is_empty() { "/" } else { path })
}

/// Caches for the origin on the host until the task is dropped; the
/// handle answers `scratchnet cache` commands and reports the store.
pub fn serve(host: hoststack::Host, config: Config) -> io::Result<crate::Serving> {
    let front = Front {
        port: config.port,
        tls: config.tls.clone(),
        header_timeout: config.header_timeout,
        request_timeout: config.request_timeout,
    };
    let x_cache = Outcome::ALL
        .iter()
        .map(|o| {
            HeaderValue::from_str(&format!("{} from {}", o.name(), config.name))
                .unwrap_or(HeaderValue::from_static(""))
        })
        .collect();
    let edge = Arc::new(Edge {
        x_cache,
        upstreams: Upstreams::new(host, config.connect_timeout),
        cache: Cache::new(config.store.clone()),
        config,
        counters: Counters::default(),
        inflight: Mutex::new(HashMap::new()),
    });
    let control: Arc<dyn Control> = Arc::new(EdgeControl(edge.clone()));
    let serving = proxy::serve(edge, front)?;
    Ok((control, Box::pin(serving)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_keyed_as_a_request_for_it_is() {
        let k = Cache::key("www.example.com", "/img/a.png?x=1");
        assert_eq!(key_of("http://www.example.com/img/a.png?x=1"), k);
        assert_eq!(key_of("https://WWW.example.com:443/img/a.png?x=1"), k);
        assert_eq!(key_of("www.example.com/img/a.png?x=1"), k);
        assert_eq!(
            key_of("www.example.com"),
            Cache::key("www.example.com", "/")
        );
    }
}
