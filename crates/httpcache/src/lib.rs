//! A shared HTTP cache, sans-IO: requests and answers in, decisions out,
//! no sockets and no clock of its own (every call takes `now`).
//!
//! * **What may be stored and for how long** is RFC 9111's, as the
//!   http-cache-semantics crate reads it for a shared cache: `no-store`,
//!   `private`, `s-maxage`, `max-age`, `Expires`, the 10 % heuristic from
//!   `Last-Modified`, the request's own `Cache-Control`, `Vary`, `Age`.
//! * **The store** ([`Cache`]) is quick_cache's S3-FIFO, bounded in bytes:
//!   one entry per URL (host and path), holding up to
//!   [`Config::max_variants`] variants that `Vary` tells apart; an object
//!   larger than [`Config::max_object`] is never stored.
//! * **A lookup** ([`Cache::lookup`]) says fresh (serve it), stale (send
//!   the revalidation request it gives, or serve it stale where RFC 5861's
//!   `stale-while-revalidate` or `stale-if-error` allow), or missing, and
//!   why ([`Miss`]).
//! * **Compression at the edge** ([`Coding`]): a text answer the origin
//!   sent uncompressed is stored as gzip and brotli too, and each client
//!   gets the coding it prefers.
//! * **Ranges** ([`range`]) are cut from a stored whole object.
//! * **Purge** by URL or by prefix.

mod encoding;
mod range;

pub use encoding::{choose, Coding};
pub use range::{range, Range};

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT_ENCODING, AGE, CACHE_CONTROL, CONTENT_ENCODING,
    DATE, ETAG, EXPIRES, PRAGMA, VARY,
};
use http::{request, response, Method, Request, StatusCode};
use http_cache_semantics::{BeforeRequest, CacheOptions, CachePolicy};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How big the store and what is in it may grow, and the cache's name.
#[derive(Debug, Clone)]
pub struct Config {
    /// Its device token for `Surrogate-Control` directives aimed at it
    /// (`max-age=60;NAME`), as its `Surrogate-Capability` says.
    pub name: String,
    /// The store's bound: bodies, headers and bookkeeping, in bytes.
    pub capacity: u64,
    /// The largest body stored; larger ones pass through.
    pub max_object: u64,
    /// Variants (by `Vary`) kept for one URL; a new one pushes out the
    /// oldest.
    pub max_variants: usize,
    /// Store text answers gzipped and brotli'd too.
    pub compress: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: "cache".to_owned(),
            capacity: 256 << 20,
            max_object: 8 << 20,
            max_variants: 8,
            compress: true,
        }
    }
}

/// The header that speaks to surrogates (caches at the edge) alone.
const SURROGATE_CONTROL: &str = "surrogate-control";

/// Headers a 304 does not change in a stored answer: they describe its
/// body, which the 304 does not send.
const NOT_UPDATED: &[&str] = &[
    "content-encoding",
    "content-length",
    "content-md5",
    "content-range",
    "etag",
];

/// What every stored object costs beside its body and headers.
const OVERHEAD: u64 = 512;

/// One stored answer: its head and body, the policy that says when it may
/// be reused, and RFC 5861's windows.
#[derive(Debug)]
pub struct Variant {
    policy: CachePolicy,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The body in other codings, when compressed at the edge.
    encoded: Vec<(Coding, Bytes)>,
    /// When it was stored, and how old it was then.
    stored_at: SystemTime,
    age_at_store: Duration,
    /// Its freshness lifetime, as it was stored (zero if it came stale).
    lifetime: Duration,
    /// The request's values of the headers its `Vary` names.
    vary: Vec<(HeaderName, Option<HeaderValue>)>,
    /// `stale-while-revalidate` and `stale-if-error`, if allowed at all.
    while_revalidate: Duration,
    if_error: Duration,
}

impl Variant {
    fn weight(&self) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        let encoded: usize = self.encoded.iter().map(|(_, b)| b.len()).sum();
        (self.body.len() + encoded + headers) as u64 + OVERHEAD
    }

    /// How old it is at `now` (RFC 9111 4.2.3): as old as it came, and
    /// the time since.
    fn age(&self, now: SystemTime) -> Duration {
        self.age_at_store + now.duration_since(self.stored_at).unwrap_or_default()
    }

    /// How long past its freshness it is at `now`.
    fn staleness(&self, now: SystemTime) -> Duration {
        self.age(now).saturating_sub(self.lifetime)
    }

    /// Whether `req` has the values of the headers `Vary` names that the
    /// request it answered had.
    fn vary_matches(&self, req: &Request<()>) -> bool {
        self.vary
            .iter()
            .all(|(name, value)| req.headers().get(name) == value.as_ref())
    }

    /// The answer as it goes at `now` to a client that sent `request`:
    /// its headers with `Age` and `Date` brought up to date, in the coding
    /// the client prefers.
    pub fn serve(&self, now: SystemTime, request: &HeaderMap) -> Served {
        let (mut head, ()) = http::Response::new(()).into_parts();
        head.status = self.status;
        head.headers = self.headers.clone();
        let age = self.age(now).as_secs();
        head.headers.insert(AGE, HeaderValue::from(age));
        // The origin's Date stays (Age says how old it is); one is added
        // only where the origin sent none (RFC 9110 6.6.1).
        if !head.headers.contains_key(DATE) {
            if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
                head.headers.insert(DATE, date);
            }
        }
        let mut body = self.body.clone();
        if !self.encoded.is_empty() {
            head.headers
                .append(VARY, HeaderValue::from_static("Accept-Encoding"));
            let accept = request.get(ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
            let codings: Vec<Coding> = self.encoded.iter().map(|(c, _)| *c).collect();
            let coding = choose(accept, &codings);
            if let Some((_, encoded)) = self.encoded.iter().find(|(c, _)| *c == coding) {
                body = encoded.clone();
                head.headers
                    .insert(CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
                tag_coding(&mut head.headers, coding);
            }
        }
        Served { head, body }
    }
}

/// A stored answer on its way to a client.
#[derive(Debug)]
pub struct Served {
    pub head: response::Parts,
    pub body: Bytes,
}

/// Why a lookup found nothing to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// Nothing is stored for the URL.
    NotStored,
    /// Answers are stored, but for other values of the headers their
    /// `Vary` names.
    VaryMismatch,
}

impl Miss {
    pub fn reason(self) -> &'static str {
        match self {
            Miss::NotStored => "not in the cache",
            Miss::VaryMismatch => "Vary mismatch",
        }
    }
}

/// A stored answer that may not be served as it is.
#[derive(Debug)]
pub struct Stale {
    pub variant: Arc<Variant>,
    /// The request to send upstream: the client's, with the stored
    /// answer's validators (If-None-Match, If-Modified-Since).
    pub revalidate: request::Parts,
    /// How long past its freshness it is (zero if it is fresh but the
    /// request asked for a check, `no-cache` or `max-age=0`).
    pub staleness: Duration,
}

impl Stale {
    /// Whether it may be served while it is revalidated in the
    /// background (RFC 5861 3).
    pub fn while_revalidating(&self) -> bool {
        self.staleness > Duration::ZERO && self.staleness <= self.variant.while_revalidate
    }

    /// Whether it may be served because the origin failed (RFC 5861 4):
    /// within the answer's `stale-if-error`, or the request's.
    pub fn if_error(&self, request: &HeaderMap) -> bool {
        let asked = directive(request, "stale-if-error");
        let window = self.variant.if_error.max(asked.unwrap_or_default());
        self.variant.may_be_stale() && self.staleness <= window
    }
}

impl Variant {
    /// Whether any directive forbids serving it stale (RFC 9111 4.2.4).
    fn may_be_stale(&self) -> bool {
        !(has(&self.headers, "must-revalidate")
            || has(&self.headers, "proxy-revalidate")
            || has(&self.headers, "no-cache")
            || has(&self.headers, "s-maxage"))
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    Fresh(Arc<Variant>),
    Stale(Box<Stale>),
    Miss(Miss),
}

/// Why an answer was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// RFC 9111 3 says no: no-store, private, an uncacheable status or
    /// method, Authorization without public, nothing to say how long.
    NotCacheable,
    /// `Vary: *`: no request would ever match it.
    VaryStar,
    /// Its body is larger than the largest object stored.
    TooLarge,
}

impl NotStored {
    pub fn reason(self) -> &'static str {
        match self {
            NotStored::NotCacheable => "not cacheable",
            NotStored::VaryStar => "Vary: *",
            NotStored::TooLarge => "too large to store",
        }
    }
}

/// Variants stored for one URL.
type Entry = Arc<[Arc<Variant>]>;

#[derive(Clone)]
struct Weigh;

impl quick_cache::Weighter<String, Entry> for Weigh {
    fn weight(&self, _: &String, entry: &Entry) -> u64 {
        entry.iter().map(|v| v.weight()).sum::<u64>().max(1)
    }
}

/// Counts what the store pushed out to make room.
#[derive(Clone, Default)]
struct Evictions(Arc<AtomicU64>);

impl quick_cache::Lifecycle<String, Entry> for Evictions {
    type RequestState = ();

    fn on_evict(&self, _: &mut (), _: String, _: Entry) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

type Store =
    quick_cache::sync::Cache<String, Entry, Weigh, quick_cache::DefaultHashBuilder, Evictions>;

/// The cache: a bounded store of answers by URL and variant.
pub struct Cache {
    store: Store,
    config: Config,
    evictions: Evictions,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("config", &self.config)
            .field("entries", &self.store.len())
            .field("bytes", &self.store.weight())
            .finish()
    }
}

/// One URL's entry as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub variants: usize,
    pub bytes: u64,
    /// The first variant's age and time to live.
    pub age: Duration,
    pub ttl: Duration,
}

impl Cache {
    pub fn new(config: Config) -> Cache {
        let evictions = Evictions::default();
        // A guess at how many objects fit (quick_cache sizes its tables by
        // it): 16 KiB each.
        let items = usize::try_from(config.capacity / (16 << 10)).unwrap_or(1 << 20);
        let store = Store::with(
            items.max(64),
            config.capacity,
            Weigh,
            quick_cache::DefaultHashBuilder::default(),
            evictions.clone(),
        );
        Cache {
            store,
            config,
            evictions,
        }
    }

    /// The store key of a request: its host (lower case, as it came) and
    /// its path and query.
    pub fn key(host: &str, path_and_query: &str) -> String {
        format!("{}{path_and_query}", host.to_ascii_lowercase())
    }

    /// What the cache has for `req` (a GET or HEAD in origin form, with
    /// its Host) at `now`.
    pub fn lookup(&self, key: &str, req: &Request<()>, now: SystemTime) -> Lookup {
        let Some(entry) = self.store.get(key) else {
            return Lookup::Miss(Miss::NotStored);
        };
        // A request that says nothing of its own (no Cache-Control, no
        // Pragma) takes a fresh variant whose Vary values it has: the
        // common case, decided without the policy reading dates again.
        let plain =
            !req.headers().contains_key(CACHE_CONTROL) && !req.headers().contains_key(PRAGMA);
        if plain {
            let fresh = entry
                .iter()
                .find(|v| v.vary_matches(req) && v.age(now) < v.lifetime);
            if let Some(v) = fresh {
                return Lookup::Fresh(v.clone());
            }
        }
        let mut stale = None;
        for v in entry.iter() {
            match v.policy.before_request(req, now) {
                BeforeRequest::Fresh(_) => return Lookup::Fresh(v.clone()),
                BeforeRequest::Stale {
                    request,
                    matches: true,
                } if stale.is_none() => {
                    stale = Some(Stale {
                        variant: v.clone(),
                        revalidate: request,
                        staleness: v.staleness(now),
                    });
                }
                BeforeRequest::Stale { .. } => {}
            }
        }
        match stale {
            Some(s) => Lookup::Stale(Box::new(s)),
            None => Lookup::Miss(Miss::VaryMismatch),
        }
    }

    /// Stores `head` and `body`, the answer to `req` received at `now`, if
    /// RFC 9111 and the store's bounds let it; the answer as it goes to the
    /// client either way is the caller's.
    pub fn store(
        &self,
        key: &str,
        req: &Request<()>,
        head: &response::Parts,
        body: Bytes,
        now: SystemTime,
    ) -> Result<(), NotStored> {
        if body.len() as u64 > self.config.max_object {
            return Err(NotStored::TooLarge);
        }
        if vary_star(&head.headers) {
            return Err(NotStored::VaryStar);
        }
        let req = owned_request(req);
        let read = policy_head(head, &self.config.name);
        let policy = CachePolicy::new_options(&req, &read, now, CacheOptions::default());
        if !policy.is_storable() || req.method() != Method::GET {
            return Err(NotStored::NotCacheable);
        }
        let compress = self.config.compress;
        let mut headers = owned(&head.headers);
        // Meant for this cache, not for those after it.
        headers.remove(SURROGATE_CONTROL);
        let variant = Arc::new(variant(
            policy,
            head.status,
            headers,
            body,
            now,
            compress,
            &req,
        ));
        self.put(key, &req, variant);
        Ok(())
    }

    /// Brings a stale variant up to date from the origin's 304 to the
    /// revalidation request that named it (with its validators alone, so
    /// the 304 is about it, whatever validators the 304 carries): its
    /// headers merged, its age counted afresh.
    pub fn revalidated(
        &self,
        key: &str,
        req: &Request<()>,
        stale: &Variant,
        not_modified: &response::Parts,
        now: SystemTime,
    ) -> Arc<Variant> {
        // The stored head, with what the 304 says anew (RFC 9111 3.2),
        // but never what describes the stored body itself.
        let req = &owned_request(req);
        let not_modified_headers = owned(&not_modified.headers);
        let mut headers = stale.headers.clone();
        for name in not_modified_headers.keys() {
            if NOT_UPDATED.contains(&name.as_str()) {
                continue;
            }
            headers.remove(name);
            for v in not_modified_headers.get_all(name) {
                headers.append(name.clone(), v.clone());
            }
        }
        headers.remove(AGE);
        let (mut merged, ()) = http::Response::new(()).into_parts();
        merged.status = stale.status;
        merged.headers = headers.clone();
        let policy = CachePolicy::new_options(
            req,
            &policy_head(&merged, &self.config.name),
            now,
            CacheOptions::default(),
        );
        // The codings are of the same body: kept, not made again.
        let body = stale.body.clone();
        let mut fresh = variant(policy, stale.status, headers, body, now, false, req);
        fresh.encoded = stale.encoded.clone();
        let fresh = Arc::new(fresh);
        self.put(key, req, fresh.clone());
        fresh
    }

    /// Adds `variant`, replacing a stored one that answers the same
    /// request, the oldest past the bound.
    fn put(&self, key: &str, req: &Request<()>, variant: Arc<Variant>) {
        let mut variants: Vec<Arc<Variant>> = Vec::new();
        if let Some(entry) = self.store.get(key) {
            variants.extend(entry.iter().filter(|v| !same_variant(v, req)).cloned());
        }
        variants.push(variant);
        let extra = variants.len().saturating_sub(self.config.max_variants);
        variants.drain(..extra);
        self.store.insert(key.to_owned(), variants.into());
    }

    /// Forgets what is stored for one URL; whether there was anything.
    pub fn purge(&self, key: &str) -> bool {
        self.store.remove(key).is_some()
    }

    /// Forgets every URL starting with `prefix`; how many.
    pub fn purge_prefix(&self, prefix: &str) -> u64 {
        let purged = AtomicU64::new(0);
        self.store.retain(|k, _| {
            let keep = !k.starts_with(prefix);
            purged.fetch_add(u64::from(!keep), Ordering::Relaxed);
            keep
        });
        purged.into_inner()
    }

    /// Forgets a URL after a request that may have changed it (RFC 9111
    /// 4.4: a non-error answer to an unsafe method).
    pub fn invalidate(&self, key: &str) {
        self.store.remove(key);
    }

    /// URLs stored, bytes used, the bound, and objects pushed out so far.
    pub fn usage(&self) -> (usize, u64, u64, u64) {
        (
            self.store.len(),
            self.store.weight(),
            self.store.capacity(),
            self.evictions.0.load(Ordering::Relaxed),
        )
    }

    /// Up to `n` of the stored URLs, for `status`.
    pub fn list(&self, n: usize, now: SystemTime) -> Vec<Listed> {
        let mut listed: Vec<Listed> = self
            .store
            .iter()
            .take(n)
            .filter_map(|(key, entry)| {
                let first = entry.first()?;
                Some(Listed {
                    key,
                    variants: entry.len(),
                    bytes: entry.iter().map(|v| v.weight()).sum(),
                    age: first.policy.age(now),
                    ttl: first.policy.time_to_live(now),
                })
            })
            .collect();
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        listed
    }
}

/// A copy of `headers` whose values own their bytes. A parsed header's
/// value is a slice of the connection's whole read buffer: stored as it
/// is, each object would keep a buffer of kilobytes alive.
fn owned(headers: &HeaderMap) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.append(name.clone(), v);
        }
    }
    copy
}

/// `req` with headers that own their bytes (see [`owned`]).
fn owned_request(req: &Request<()>) -> Request<()> {
    let mut copy = Request::new(());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.headers_mut() = owned(req.headers());
    copy
}

/// An answer's head as the freshness rules read it: directive names in
/// lower case (they are case-insensitive, RFC 9111 5.2), and an `Age`
/// that is not one whole number (several, negative, a fraction, a
/// parameter) read as the largest age there is, 2^31 seconds (RFC 9111
/// 1.2.2, 5.1): whoever sent it, the answer is not to be trusted fresh.
fn policy_head(head: &response::Parts, name: &str) -> response::Parts {
    let (mut read, ()) = http::Response::new(()).into_parts();
    read.status = head.status;
    read.headers = owned(&head.headers);
    let h = &mut read.headers;
    let ages: Vec<&[u8]> = head
        .headers
        .get_all(AGE)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let valid = match ages.as_slice() {
        [] => true,
        [one] => !one.is_empty() && one.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !valid {
        h.insert(AGE, HeaderValue::from_static("2147483648"));
    }
    if let Some(surrogate) = surrogate_control(&head.headers, name) {
        // Surrogate-Control, meant for caches like this one, replaces
        // Cache-Control for it (W3C Edge Architecture 1.0).
        h.insert(CACHE_CONTROL, surrogate);
        h.remove(EXPIRES);
    } else {
        lowercase_directives(h);
    }
    if final_with_stated_freshness(&read) {
        // RFC 9111 3 lets a cache store any final status whose freshness
        // is stated (a cache must understand a status only for 206, 304
        // and must-understand); the policy crate keeps to the statuses it
        // knows, so it is shown one it does. The stored head keeps the
        // real status.
        read.status = StatusCode::OK;
    }
    read
}

/// Cache-Control's directive names in lower case.
fn lowercase_directives(h: &mut HeaderMap) {
    let directives: Vec<String> = h
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|d| match d.split_once('=') {
                    Some((name, value)) => format!("{}={value}", name.trim().to_ascii_lowercase()),
                    None => d.trim().to_ascii_lowercase(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    if !directives.is_empty() {
        h.remove(CACHE_CONTROL);
        for d in directives {
            if let Ok(v) = HeaderValue::from_str(&d) {
                h.append(CACHE_CONTROL, v);
            }
        }
    }
}

/// A final status other than 206 and 304 that the policy crate does not
/// store, with freshness stated by `max-age`, `s-maxage`, `Expires` or
/// `public` (which allows a heuristic), and no `must-understand`.
fn final_with_stated_freshness(head: &response::Parts) -> bool {
    const UNDERSTOOD: [u16; 14] = [
        200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501,
    ];
    let code = head.status.as_u16();
    if code < 200 || code == 206 || code == 304 || UNDERSTOOD.contains(&code) {
        return false;
    }
    let mut stated = head.headers.contains_key(EXPIRES);
    for directive in head
        .headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let name = directive.split('=').next().unwrap_or("").trim();
        match name {
            "must-understand" => return false,
            "max-age" | "s-maxage" | "public" => stated = true,
            _ => {}
        }
    }
    stated
}

/// The `Surrogate-Capability` a cache named `name` sends upstream: that
/// it understands `Surrogate-Control`.
pub fn surrogate_capability(name: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("{name}=\"Surrogate/1.0\"")).ok()
}

/// What an answer's `Surrogate-Control` says to the cache named `name`,
/// as Cache-Control: its `no-store` or `max-age=N` (directive names in any
/// case, N whole digits; a directive aimed at another device by
/// `;TOKEN` is not for it). `None` if it says nothing to it.
fn surrogate_control(headers: &HeaderMap, name: &str) -> Option<HeaderValue> {
    let mut max_age = None;
    for item in headers
        .get_all(SURROGATE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let (directive, target) = match item.split_once(';') {
            Some((d, t)) => (d.trim(), Some(t.trim())),
            None => (item.trim(), None),
        };
        if target.is_some_and(|t| !t.eq_ignore_ascii_case(name)) {
            continue;
        }
        let (key, value) = directive.split_once('=').unwrap_or((directive, ""));
        match key.to_ascii_lowercase().as_str() {
            "no-store" => return Some(HeaderValue::from_static("no-store")),
            "max-age" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Past 2^31 seconds is 2^31 seconds (RFC 9111 1.2.2).
                let secs = value.parse::<u64>().unwrap_or(u64::MAX).min(1 << 31);
                max_age = Some(secs);
            }
            _ => {}
        }
    }
    max_age.and_then(|n| HeaderValue::from_str(&format!("max-age={n}")).ok())
}

/// Marks an entity tag as the one of `coding`'s representation:
/// `"abc"` becomes `"abc-gzip"`, `W/"abc"` `W/"abc-gzip"`.
fn tag_coding(headers: &mut HeaderMap, coding: Coding) {
    let Some(tag) = headers.get(ETAG).and_then(|t| t.to_str().ok()) else {
        return;
    };
    let Some(open) = tag.strip_suffix('"') else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(&format!("{open}-{}\"", coding.name())) {
        headers.insert(ETAG, v);
    }
}

/// A stored variant of `policy`'s answer to `req`; its body compressed
/// too if `compress` and it is text.
fn variant(
    policy: CachePolicy,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    now: SystemTime,
    compress: bool,
    req: &Request<()>,
) -> Variant {
    let encoded = if compress && encoding::compressible(&headers, body.len()) {
        encoding::compress(&body)
    } else {
        Vec::new()
    };
    let age_at_store = policy.age(now);
    let ttl = policy.time_to_live(now);
    let lifetime = if ttl.is_zero() {
        Duration::ZERO
    } else {
        age_at_store + ttl
    };
    let vary = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .map(|n| {
            let value = req.headers().get(&n).cloned();
            (n, value)
        })
        .collect();
    let while_revalidate = directive(&headers, "stale-while-revalidate").unwrap_or_default();
    let if_error = directive(&headers, "stale-if-error").unwrap_or_default();
    let mut v = Variant {
        policy,
        status,
        headers,
        body,
        encoded,
        stored_at: now,
        age_at_store,
        lifetime,
        vary,
        while_revalidate,
        if_error,
    };
    if !v.may_be_stale() {
        v.while_revalidate = Duration::ZERO;
        v.if_error = Duration::ZERO;
    }
    v
}

/// Whether the stored variant `v` was the answer to a request with the
/// same values of the headers its `Vary` names as `req`.
fn same_variant(v: &Variant, req: &Request<()>) -> bool {
    matches!(
        v.policy.before_request(req, SystemTime::UNIX_EPOCH),
        BeforeRequest::Fresh(_) | BeforeRequest::Stale { matches: true, .. }
    )
}

fn vary_star(h: &HeaderMap) -> bool {
    h.get_all(http::header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|n| n.trim() == "*")
}

/// The directives of a Cache-Control header, lower case, with values.
fn directives(h: &HeaderMap) -> impl Iterator<Item = (String, Option<String>)> + '_ {
    h.get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| {
            let (name, value) = d.split_once('=').unwrap_or((d, ""));
            let value = value.trim().trim_matches('"');
            (
                name.trim().to_ascii_lowercase(),
                (!value.is_empty()).then(|| value.to_owned()),
            )
        })
}

fn has(h: &HeaderMap, name: &str) -> bool {
    directives(h).any(|(n, _)| n == name)
}

/// A Cache-Control directive's value in seconds.
fn directive(h: &HeaderMap, name: &str) -> Option<Duration> {
    directives(h)
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v?.parse().ok())
        .map(Duration::from_secs)
}
