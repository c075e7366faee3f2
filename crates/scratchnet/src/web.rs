//! `scratchnet up --web`: the running lab in a browser, served from the
//! lab process (HTTP/1.1 over hyper), a second front end of the lab's API
//! (`lab::RunningLab`) beside the control socket.
//!
//! The page, its script and its styles are in the binary (web/), so it
//! works with no network. It reads the lab through GET requests:
//! `/api/lab` (nodes and links), `/api/status`, `/api/node?name=N`,
//! `/api/events` (server-sent events: every port's counters, every
//! link's state and every cache's answers, each second), `/api/capture` (pcapng) and `/metrics`
//! (Prometheus). What changes the lab, or follows its frames, is a POST
//! to `/api/link`, `/api/command`, `/api/trace` or `/api/inject`.
//!
//! Safe by default, since the lab runs as root: it binds to the loopback
//! unless told otherwise; every POST must carry the token printed at
//! start in an `X-Scratchnet-Token` header (a header, not a cookie, so a
//! foreign page cannot make the browser send it); a request whose Host
//! is a name other than `localhost` is refused, so that a DNS name
//! rebound to the lab's address reaches nothing; and no CORS header is
//! ever sent, so no other origin reads an answer.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use lab::running::{LinkChange, LinkState};
use lab::RunningLab as Lab;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

/// Where `--web` binds when given no address: the loopback, a free port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:0";
/// The header every POST carries the token in.
const TOKEN_HEADER: &str = "x-scratchnet-token";
/// Connections served at once; more wait for a slot.
const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body (a link change, a trace's filter).
const MAX_BODY: usize = 16 * 1024;
/// How long a trace waits for a matching frame.
const TRACE_WAIT: Duration = Duration::from_secs(15);
/// After the traced frame, how long its answers and the rest of what it
/// caused are waited for.
const TRACE_TAIL: Duration = Duration::from_millis(500);
/// The most frames, and the longest wait, of a capture from the page.
const CAPTURE_MAX_FRAMES: usize = 10_000;
const CAPTURE_MAX_WAIT: Duration = Duration::from_secs(60);
/// How often `/api/events` sends the counters.
const EVENT_PERIOD: Duration = Duration::from_secs(1);

const PAGE: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");
const STYLE: &str = include_str!("web/app.css");

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// The web front end, serving until dropped.
pub struct Web {
    /// The page's address with the token in its fragment (which browsers
    /// never send): what `up` prints.
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for Web {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What every request handler shares.
struct Shared {
    running: Weak<Lab>,
    token: String,
    port: u16,
}

/// Starts serving the page of the `running` lab on `addr`.
pub async fn serve(addr: SocketAddr, running: Weak<Lab>) -> Result<Web> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve the web page on {addr}"))?;
    let bound = listener.local_addr()?;
    let token = random_token()?;
    let shown = match bound.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let url = format!("http://{shown}:{}/#token={token}", bound.port());
    let shared = Arc::new(Shared {
        running,
        token,
        port: bound.port(),
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = served.await {
                    tracing::debug!("web connection ended: {e}");
                }
                drop(slot);
            });
        }
    });
    Ok(Web { url, task })
}

/// 128 bits from the OS, as hex.
fn random_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for the web page's token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    if let Err(why) = host_allowed(req.headers().get(HOST), shared.port) {
        return text(StatusCode::MISDIRECTED_REQUEST, why);
    }
    let path = req.uri().path().to_owned();
    let query = query(req.uri().query().unwrap_or(""));
    match (req.method(), path.as_str()) {
        (&Method::GET, "/") => file("text/html; charset=utf-8", PAGE),
        (&Method::GET, "/app.js") => file("text/javascript; charset=utf-8", SCRIPT),
        (&Method::GET, "/app.css") => file("text/css; charset=utf-8", STYLE),
        (&Method::GET, "/metrics") => with_lab(shared, |lab| match lab.metrics() {
            Ok(t) => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                t,
            ),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }),
        (&Method::GET, "/api/lab") => with_lab(shared, |lab| json(&lab.graph())),
        (&Method::GET, "/api/status") => with_lab(shared, |lab| json(&lab.status())),
        (&Method::GET, "/api/node") => with_lab(shared, |lab| {
            let name = query.get("name").map_or("", String::as_str);
            match lab.node_status(name) {
                Some(node) => json(&node),
                None => text(StatusCode::NOT_FOUND, format!("no node named `{name}`")),
            }
        }),
        (&Method::GET, "/api/events") => events(shared.running.clone()),
        (&Method::GET, "/api/capture") => capture(shared, &query).await,
        (&Method::POST, _) => {
            if !token_ok(&req, &shared.token) {
                return text(
                    StatusCode::FORBIDDEN,
                    "this changes or follows the lab: send the token printed at start in the X-Scratchnet-Token header",
                );
            }
            let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return text(StatusCode::PAYLOAD_TOO_LARGE, format!("request body: {e}")),
            };
            post(shared, &path, &body).await
        }
        (&Method::GET, _) => text(StatusCode::NOT_FOUND, format!("nothing at {path}")),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET or POST only"),
    }
}

/// Whether a request's Host names the lab's page: an address literal (the
/// one bound, or any when bound to all) or `localhost`, with the bound
/// port. A DNS name rebound to the address fails here.
fn host_allowed(host: Option<&HeaderValue>, port: u16) -> Result<(), String> {
    let host = host
        .and_then(|h| h.to_str().ok())
        .ok_or("a request needs a Host header")?;
    let (name, p) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(':') => (n, p.parse::<u16>().ok()),
        _ => (host, None),
    };
    let literal = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok();
    if (literal || name.eq_ignore_ascii_case("localhost")) && p == Some(port) {
        Ok(())
    } else {
        Err(format!(
            "Host `{host}` is not this page's address: open it by its address (as printed at start), not by another name"
        ))
    }
}

fn token_ok(req: &Request<Incoming>, token: &str) -> bool {
    let sent = req
        .headers()
        .get(TOKEN_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    // Every byte compared, whatever the first difference.
    sent.len() == token.len()
        && sent
            .iter()
            .zip(token.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A query string's pairs, percent-decoded.
fn query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b as u8);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(status: StatusCode, kind: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut msg = msg.into();
    msg.push('\n');
    respond(status, "text/plain; charset=utf-8", msg)
}

fn json(value: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(v) => respond(StatusCode::OK, "application/json", v),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// One of the page's own files, which only it may frame or script.
fn file(kind: &'static str, body: &'static str) -> Response<Body> {
    let mut r = respond(StatusCode::OK, kind, body);
    let h = r.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

/// The answer `f` makes from the running lab, or 503 once it is stopping.
fn with_lab(shared: &Shared, f: impl FnOnce(&Lab) -> Response<Body>) -> Response<Body> {
    match shared.running.upgrade() {
        Some(lab) => f(&lab),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "the lab is stopping"),
    }
}

/// Every port's counters, `[rx frames, rx bytes, tx frames, tx bytes,
/// drops]`, the links that are down or impaired, and each cache's answers
/// so far by how they were served.
fn counters(lab: &Lab) -> serde_json::Value {
    let status = lab.fabric_status();
    let mut ports = serde_json::Map::new();
    let mut links = serde_json::Map::new();
    let all = status
        .switches
        .iter()
        .flat_map(|s| &s.ports)
        .chain(&status.l3_ports);
    for p in all {
        let drops: u64 = p.drops.values().sum();
        ports.insert(
            p.name.clone(),
            serde_json::json!([p.rx_frames, p.rx_bytes, p.tx_frames, p.tx_bytes, drops]),
        );
        // The snapshot holds each link's state: none asked for twice.
        if let Some(l) = p.link.as_ref() {
            if !l.up || l.impairment != wire::Impairment::default() {
                links.insert(p.name.clone(), serde_json::json!(LinkState::of(&p.name, l)));
            }
        }
    }
    let caches: serde_json::Map<String, serde_json::Value> = lab
        .cache_outcomes()
        .into_iter()
        .map(|(name, outcomes)| (name, serde_json::json!(outcomes)))
        .collect();
    serde_json::json!({ "ports": ports, "links": links, "caches": caches })
}

/// A body whose frames come from a channel: server-sent events.
struct Stream(mpsc::Receiver<Bytes>);

impl hyper::body::Body for Stream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// `/api/events`: the counters each second until the page goes away or
/// the lab stops. The lab is let go between sends.
fn events(running: Weak<Lab>) -> Response<Body> {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVENT_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(lab) = running.upgrade() else {
                return;
            };
            let data = counters(&lab);
            drop(lab);
            let event = format!("data: {data}\n\n");
            if tx.send(Bytes::from(event)).await.is_err() {
                return;
            }
        }
    });
    let mut r = Response::new(Stream(rx).boxed());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `/api/capture?port=P&count=N[&filter=F][&seconds=S]`: the port's next
/// N matching frames (or those of S seconds) as a pcapng file.
async fn capture(shared: &Shared, q: &BTreeMap<String, String>) -> Response<Body> {
    let Some(port) = q.get("port") else {
        return text(StatusCode::BAD_REQUEST, "which port? (port=NAME)");
    };
    let count = q
        .get("count")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, CAPTURE_MAX_FRAMES);
    let wait = q
        .get("seconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_secs(10), Duration::from_secs)
        .min(CAPTURE_MAX_WAIT);
    let filter = q.get("filter").map_or("", String::as_str);
    let ports = [port.clone()];
    let started = match shared.running.upgrade() {
        Some(lab) => lab.capture(&ports, filter),
        None => return text(StatusCode::SERVICE_UNAVAILABLE, "the lab is stopping"),
    };
    let mut cap = match started {
        Ok(c) => c,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while frames.len() < count {
        match tokio::time::timeout_at(deadline, cap.next()).await {
            Ok(Some(f)) => frames.push(f),
            Ok(None) | Err(_) => break,
        }
    }
    let mut file = Vec::new();
    let written = crate::pcapng::CaptureWriter::new(&mut file, &ports, &cap.links(), false)
        .and_then(|mut w| {
            for f in &frames {
                let at =
                    f.at.duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                w.write(0, at, f.direction == fabric::Direction::In, &f.data)?;
            }
            Ok(())
        });
    if let Err(e) = written {
        return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
    }
    let mut r = respond(StatusCode::OK, "application/vnd.tcpdump.pcap", file);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{port}.pcapng\"")) {
        r.headers_mut().insert("content-disposition", v);
    }
    r
}

/// What a POST asks for.
#[derive(serde::Deserialize)]
struct CommandRequest {
    service: String,
    request: services::Command,
}

#[derive(serde::Deserialize)]
struct TraceRequest {
    #[serde(default)]
    port: Option<String>,
    #[serde(default)]
    filter: String,
}

#[derive(serde::Deserialize)]
struct InjectRequest {
    host: String,
    spec: String,
}

/// A trace record for the page: its fields and the text people read.
fn record(r: &fabric::TraceRecord) -> serde_json::Value {
    serde_json::json!({ "record": r, "text": r.to_string() })
}

async fn post(shared: &Shared, path: &str, body: &[u8]) -> Response<Body> {
    let Some(lab) = shared.running.upgrade() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "the lab is stopping");
    };
    let answer = match path {
        "/api/link" => parse::<LinkChange>(body).and_then(|change| {
            let state = lab.change_link(&change).map_err(|e| e.to_string())?;
            Ok(json(&state))
        }),
        "/api/inject" => parse::<InjectRequest>(body).and_then(|i| {
            let records = lab.what_if(&i.host, &i.spec).map_err(|e| e.to_string())?;
            Ok(json(&records.iter().map(record).collect::<Vec<_>>()))
        }),
        "/api/command" => match parse::<CommandRequest>(body) {
            Ok(c) => {
                let pending = lab.command(&c.service, c.request);
                drop(lab);
                pending.send().await.map(|answer| json(&answer))
            }
            Err(e) => Err(e),
        },
        "/api/trace" => match parse::<TraceRequest>(body) {
            Ok(t) => {
                let traced = lab.trace(t.port.as_deref(), &t.filter, Some(1));
                drop(lab);
                match traced {
                    Ok(rx) => Ok(json(&next_path(rx).await)),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e),
        },
        _ => return text(StatusCode::NOT_FOUND, format!("nothing to POST at {path}")),
    };
    answer.unwrap_or_else(|e| text(StatusCode::BAD_REQUEST, e))
}

fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad request: {e}"))
}

/// The records of the next traced frame and of what it caused: waits
/// for the frame, then a moment for its answers.
async fn next_path(mut rx: mpsc::Receiver<fabric::TraceRecord>) -> Vec<serde_json::Value> {
    let mut records = Vec::new();
    let Ok(Some(first)) = tokio::time::timeout(TRACE_WAIT, rx.recv()).await else {
        return records;
    };
    records.push(record(&first));
    let tail = tokio::time::Instant::now() + TRACE_TAIL;
    while let Ok(Some(r)) = tokio::time::timeout_at(tail, rx.recv()).await {
        records.push(record(&r));
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pages_own_address_is_a_host() {
        let h = |s: &'static str| Some(HeaderValue::from_static(s));
        assert!(host_allowed(h("127.0.0.1:8080").as_ref(), 8080).is_ok());
        assert!(host_allowed(h("localhost:8080").as_ref(), 8080).is_ok());
        assert!(host_allowed(h("[::1]:8080").as_ref(), 8080).is_ok());
        // A rebound name, another port, no port, none at all.
        assert!(host_allowed(h("evil.example:8080").as_ref(), 8080).is_err());
        assert!(host_allowed(h("127.0.0.1:8081").as_ref(), 8080).is_err());
        assert!(host_allowed(h("127.0.0.1").as_ref(), 8080).is_err());
        assert!(host_allowed(None, 8080).is_err());
    }

    #[test]
    fn queries_are_decoded() {
        let q = query("port=alice&filter=tcp+and+dst%20port%2080&bad=%zz&=x");
        assert_eq!(q["port"], "alice");
        assert_eq!(q["filter"], "tcp and dst port 80");
        assert_eq!(q["bad"], "%zz");
        assert_eq!(q.len(), 3);
    }
}
