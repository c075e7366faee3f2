//! The built-in web server: HTTP/1.1 with keep-alive, on hyper.
//!
//! `GET /` (any path) answers with a short text naming the server, the
//! client address and port it saw, the request line and any
//! X-Forwarded-For header, so a user can tell which backend answered and
//! what a load balancer or NAT did to the request:
//!
//! ```text
//! server: web1 203.0.113.11:80
//! client: 198.51.100.2:40312
//! request: GET /
//! x-forwarded-for: 192.168.1.10
//! ```
//!
//! With `body_size` set, that text is padded (or cut) to exactly that many
//! bytes. `GET /bytes/N` streams N bytes whose i-th byte is `i % 251`, for
//! downloads of any size that a client can check.
//!
//! As an origin for a cache, each path prefix may have rules ([`PathRule`]):
//! a `Cache-Control` and `Vary` to send, validators (`ETag`,
//! `Last-Modified`) with the 304s they earn (RFC 9110 13.2), an asset of a
//! given size and type instead of the greeting, and a processing delay.
//!
//! A client must send a request's headers within `header_timeout`, and a
//! kept-alive connection that carries no new request within that time is
//! closed, so slow or idle clients (slowloris) hold nothing for long; one
//! that leaves an answer unread for a minute is cut; the host's
//! per-client connection limit and buffer budget bound what they hold at
//! once. Bodies are made as they are sent: their size costs no memory.

use crate::deadline::{Busy, Deadlined};
use bytes::Bytes;
use hoststack::{Host, TcpListener};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, DATE, ETAG, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, LAST_MODIFIED, SERVER, VARY,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The byte pattern of `/bytes/N` repeats every this many bytes.
pub const PATTERN_PERIOD: usize = 251;

/// How long a client may leave an answer unread before it is cut
/// (nginx's `send_timeout` is 60 s).
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest `/bytes/N` served (64 GiB).
const MAX_DOWNLOAD: u64 = 64 << 30;

#[derive(Debug, Clone)]
pub struct Config {
    /// The name the server gives in its answers.
    pub name: String,
    pub port: u16,
    /// The exact size of the body of `GET /`, if set.
    pub body_size: Option<u64>,
    /// How long a request's headers may take to arrive, and a kept-alive
    /// connection may wait for its next request.
    pub header_timeout: Duration,
    /// Where the `Date` header's time comes from.
    pub world: crate::World,
    /// How long every answer takes to make, unless its path says.
    pub delay: Duration,
    /// How the paths below each prefix are answered: the first rule whose
    /// prefix a request's path starts with.
    pub paths: Vec<PathRule>,
}

/// How the paths below `prefix` are answered.
#[derive(Debug, Clone)]
pub struct PathRule {
    pub prefix: String,
    /// Header values as written (a value HTTP does not take is left out).
    pub cache_control: Option<String>,
    /// Send an `ETag` (and answer If-None-Match with a 304).
    pub etag: bool,
    /// Send an asset's `Last-Modified` (and answer If-Modified-Since).
    pub last_modified: bool,
    pub vary: Option<String>,
    /// An asset instead of the greeting.
    pub asset: Option<Asset>,
    /// The processing delay of these paths, instead of the server's.
    pub delay: Option<Duration>,
}

/// An asset: `size` bytes of `content_type`, words if the type is text
/// (so that it compresses as prose does), else the `/bytes` pattern.
#[derive(Debug, Clone)]
pub struct Asset {
    pub size: u64,
    pub content_type: String,
}

impl Asset {
    fn is_text(&self) -> bool {
        let t = self.content_type.as_str();
        t.starts_with("text/")
            || ["javascript", "json", "xml", "svg"]
                .iter()
                .any(|k| t.contains(k))
    }
}

/// When every asset was last modified: the lab's content epoch
/// (2026-01-01), the same on every server, so that validators from one
/// backend hold at another.
fn content_epoch() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(crate::SIMULATED_EPOCH)
}

/// Binds the configured port, and serves HTTP on it until the task is
/// dropped.
pub fn serve(host: Host, config: Config) -> io::Result<crate::Task> {
    let listener = host.listen(config.port, 1024)?;
    Ok(Box::pin(accept(listener, Arc::new(config))))
}

async fn accept(listener: TcpListener, config: Arc<Config>) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let local = stream.local_addr();
        let config = config.clone();
        let config_timeout = config.header_timeout;
        // A client that stops reading an answer is cut after SEND_TIMEOUT
        // of no progress (crate::deadline); hyper's own timer covers the
        // headers and the wait between requests.
        let stream = Deadlined::new(stream, config_timeout, SEND_TIMEOUT, Busy::default());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let config = config.clone();
                async move { Ok::<_, Infallible>(respond(&config, local, peer, &req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .auto_date_header(false)
                .timer(TokioTimer::new())
                .header_read_timeout(config_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, "http connection ended: {e}");
            }
        });
    }
}

type Answer = Response<Generated>;

async fn respond(
    config: &Config,
    local: SocketAddr,
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Answer {
    let path = req.uri().path();
    let rule = config.paths.iter().find(|r| path.starts_with(&r.prefix));
    let delay = rule.and_then(|r| r.delay).unwrap_or(config.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Some(rule) = rule else {
        return content(config, local, peer, req);
    };
    let mut answer = match &rule.asset {
        Some(asset) => {
            let body = if asset.is_text() {
                Generated::words(asset.size)
            } else {
                Generated::pattern(asset.size)
            };
            let mut r = answer(config, StatusCode::OK, BINARY, body);
            if let Ok(v) = HeaderValue::from_str(&asset.content_type) {
                r.headers_mut().insert(CONTENT_TYPE, v);
            }
            r
        }
        None => content(config, local, peer, req),
    };
    if answer.status() != StatusCode::OK {
        return answer;
    }
    let h = answer.headers_mut();
    for (name, value) in [(CACHE_CONTROL, &rule.cache_control), (VARY, &rule.vary)] {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(name, v);
        }
    }
    let modified = (rule.last_modified && rule.asset.is_some()).then(content_epoch);
    if let Some(m) = modified {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(m)) {
            h.insert(LAST_MODIFIED, v);
        }
    }
    if rule.etag {
        let tag = match &rule.asset {
            // nginx's form: the modification time and the size, in hex.
            Some(a) => format!("\"{:x}-{:x}\"", crate::SIMULATED_EPOCH, a.size),
            None => format!("\"{:016x}\"", answer.body().fingerprint()),
        };
        if let Ok(v) = HeaderValue::from_str(&tag) {
            answer.headers_mut().insert(ETAG, v);
        }
    }
    if matches!(*req.method(), Method::GET | Method::HEAD)
        && not_modified(req.headers(), answer.headers(), modified)
    {
        *answer.status_mut() = StatusCode::NOT_MODIFIED;
        *answer.body_mut() = Generated::text(Bytes::new());
        answer.headers_mut().remove(CONTENT_TYPE);
    }
    answer
}

/// Whether a GET's validators match the answer's (RFC 9110 13.2.2): its
/// If-None-Match names the answer's entity tag (weakly compared) or is
/// `*`; or, without one, its If-Modified-Since is at or after `modified`.
pub(crate) fn not_modified(
    request: &HeaderMap,
    answer: &HeaderMap,
    modified: Option<SystemTime>,
) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    if request.contains_key(IF_NONE_MATCH) {
        let Some(tag) = answer.get(ETAG).and_then(|t| t.to_str().ok()).map(opaque) else {
            return false;
        };
        return request
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim() == "*" || opaque(t) == tag);
    }
    let since = request
        .get(IF_MODIFIED_SINCE)
        .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
    matches!((since, modified), (Some(since), Some(m)) if m <= since)
}

/// The greeting, or `/bytes/N`.
fn content(
    config: &Config,
    local: SocketAddr,
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Answer {
    let path = req.uri().path();
    let Some(n) = path.strip_prefix("/bytes/") else {
        return answer(
            config,
            StatusCode::OK,
            TEXT,
            greeting(config, local, peer, req),
        );
    };
    match n.parse::<u64>() {
        Ok(n) if n <= MAX_DOWNLOAD => answer(config, StatusCode::OK, BINARY, Generated::pattern(n)),
        _ => {
            let msg = format!("/bytes/N takes a size from 0 to {MAX_DOWNLOAD}\n");
            let body = Generated::text(msg.into());
            answer(config, StatusCode::BAD_REQUEST, TEXT, body)
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const BINARY: &str = "application/octet-stream";

fn answer(config: &Config, status: StatusCode, kind: &'static str, body: Generated) -> Answer {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(config.world.wall_clock())) {
        h.insert(DATE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("scratchnet-http ({})", config.name)) {
        h.insert(SERVER, v);
    }
    r
}

/// The text of `GET /`, padded with dots (and a last newline) or cut to
/// `body_size` if that is set: the padding is made as it is sent, so a
/// large `body_size` costs no memory per request.
fn greeting(
    config: &Config,
    local: SocketAddr,
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Generated {
    let mut text = format!(
        "server: {} {local}\nclient: {peer}\nrequest: {} {}\n",
        config.name,
        req.method(),
        req.uri()
    );
    for xff in req.headers().get_all("x-forwarded-for") {
        text.push_str(&format!(
            "x-forwarded-for: {}\n",
            String::from_utf8_lossy(xff.as_bytes())
        ));
    }
    let mut text = Bytes::from(text);
    let Some(size) = config.body_size else {
        return Generated::text(text);
    };
    let len = text.len() as u64;
    if size <= len {
        text.truncate(size as usize);
        return Generated::text(text);
    }
    Generated {
        head: text,
        fill: size - len - 1,
        offset: 0,
        source: Source::Dots,
        tail: Bytes::from_static(b"\n"),
    }
}

/// A body made as it is sent: `head`, then `fill` bytes of a repeating
/// source (the `/bytes` pattern, or dots), then `tail`; sent as slices
/// of one shared buffer, with no copy and no allocation per chunk, so
/// its size costs no memory.
#[derive(Debug)]
pub struct Generated {
    head: Bytes,
    fill: u64,
    /// Where in the source's period the next chunk starts.
    offset: usize,
    source: Source,
    tail: Bytes,
}

/// What a body's fill repeats.
#[derive(Debug, Clone, Copy, Hash)]
enum Source {
    /// Byte i is `i % 251`.
    Pattern,
    Dots,
    /// Words, as a text asset's: [`WORDS_PERIOD`] bytes of them, again
    /// and again.
    Words,
}

/// How many bytes of words a text asset repeats: longer than deflate's
/// 32 KiB window, so that it compresses as prose does, not as a repeat.
const WORDS_PERIOD: usize = 64 * 1024;

/// The most bytes one frame of a body carries.
const CHUNK: usize = PATTERN_PERIOD * 256;

/// [`WORDS_PERIOD`] bytes of words chosen by a fixed generator, a line
/// every dozen or so, then the start again to make `len` bytes.
fn words(len: usize) -> Vec<u8> {
    const VOCABULARY: &[&str] = &[
        "the",
        "packet",
        "router",
        "cache",
        "edge",
        "origin",
        "network",
        "client",
        "server",
        "request",
        "answer",
        "a",
        "of",
        "to",
        "and",
        "in",
        "is",
        "that",
        "for",
        "on",
        "with",
        "link",
        "latency",
        "fresh",
        "stale",
        "header",
        "region",
        "fibre",
        "satellite",
        "switch",
        "frame",
        "address",
        "name",
        "resolver",
        "zone",
        "record",
        "content",
        "delivery",
        "object",
        "byte",
        "second",
        "hop",
        "path",
        "table",
        "route",
        "balancer",
        "backend",
        "pool",
        "connection",
        "window",
        "segment",
        "lab",
        "learns",
        "sends",
        "keeps",
        "serves",
        "asks",
        "expires",
        "revalidates",
        "purges",
        "compresses",
        "varies",
        "hits",
        "misses",
    ];
    let mut out = Vec::with_capacity(len);
    let mut state: u32 = 0x2545_f491;
    let mut n = 0;
    while out.len() < WORDS_PERIOD {
        // A xorshift generator: the same words on every server, every run.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        out.extend_from_slice(VOCABULARY[state as usize % VOCABULARY.len()].as_bytes());
        n += 1;
        out.push(if n % 13 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(WORDS_PERIOD);
    let period = out.clone();
    while out.len() < len {
        let more = (len - out.len()).min(WORDS_PERIOD);
        out.extend_from_slice(&period[..more]);
    }
    out
}

impl Source {
    fn period(self) -> usize {
        match self {
            Source::Pattern => PATTERN_PERIOD,
            Source::Dots => 1,
            Source::Words => WORDS_PERIOD,
        }
    }

    /// A period and a chunk, so that any chunk can start at any phase.
    fn buffer(self) -> &'static Bytes {
        static PATTERN: OnceLock<Bytes> = OnceLock::new();
        static DOTS: OnceLock<Bytes> = OnceLock::new();
        static WORDS: OnceLock<Bytes> = OnceLock::new();
        match self {
            Source::Pattern => PATTERN.get_or_init(|| {
                (0..PATTERN_PERIOD + CHUNK)
                    .map(|i| (i % PATTERN_PERIOD) as u8)
                    .collect::<Vec<u8>>()
                    .into()
            }),
            Source::Dots => DOTS.get_or_init(|| vec![b'.'; 1 + CHUNK].into()),
            Source::Words => WORDS.get_or_init(|| words(WORDS_PERIOD + CHUNK).into()),
        }
    }
}

impl Generated {
    fn text(text: Bytes) -> Generated {
        Generated {
            head: text,
            fill: 0,
            offset: 0,
            source: Source::Dots,
            tail: Bytes::new(),
        }
    }

    fn pattern(len: u64) -> Generated {
        Generated::fill(Source::Pattern, len)
    }

    fn words(len: u64) -> Generated {
        Generated::fill(Source::Words, len)
    }

    fn fill(source: Source, len: u64) -> Generated {
        Generated {
            head: Bytes::new(),
            fill: len,
            offset: 0,
            source,
            tail: Bytes::new(),
        }
    }

    /// A hash of the bytes the body will be: equal bodies, equal
    /// fingerprints (an entity tag for content made anew each time).
    fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        // `new` hashes alike in every instance: the same tag on every
        // server of the lab.
        let mut h = std::hash::DefaultHasher::new();
        (&self.head, self.fill, self.offset, self.source, &self.tail).hash(&mut h);
        h.finish()
    }
}

impl Body for Generated {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if !self.head.is_empty() {
            let head = std::mem::take(&mut self.head);
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if self.fill > 0 {
            let period = self.source.period();
            let n = usize::try_from(self.fill).unwrap_or(CHUNK).min(CHUNK);
            let start = self.offset;
            self.fill -= n as u64;
            self.offset = (start + n) % period;
            let data = self.source.buffer().slice(start..start + n);
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if !self.tail.is_empty() {
            let tail = std::mem::take(&mut self.tail);
            return Poll::Ready(Some(Ok(Frame::data(tail))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_empty() && self.fill == 0 && self.tail.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.head.len() as u64 + self.fill + self.tail.len() as u64)
    }
}
