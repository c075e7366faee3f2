//! The HTTP proxy engine that the balancer ([`crate::lb`]) and the cache
//! build on: what every reverse proxy of the lab does the same way, so
//! that each proxy says only what it decides.
//!
//! * The **front**: listening on HTTP and HTTPS (TLS with ALPN), serving
//!   each client connection as HTTP/1.1 kept alive or HTTP/2, with the
//!   header, idle and send timeouts ([`serve`]); each request goes to the
//!   proxy's [`Handler`].
//! * The **upstreams**: kept-alive connections to each upstream address,
//!   opened within a connect timeout ([`Upstreams`]); a request sent with
//!   a deadline for the answer to start ([`Upstreams::send`]).
//! * The **header rules**: the request as it goes upstream (hop-by-hop
//!   headers removed, `X-Forwarded-For`, `X-Forwarded-Proto` and `Via`
//!   added, origin form; [`outgoing`]) and the answer as it comes back
//!   ([`answer_head`]); upgrades (WebSockets) joined byte for byte.
//! * **Pages** of the proxy's own that say why ([`page`]), and upstream
//!   bodies passed on with a hook at their end ([`Tracked`]), which puts
//!   the connection back for the next request.

use crate::deadline::{Busy, Deadlined};
use crate::lock;
use bytes::Bytes;
use hoststack::{Host, TcpListener};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, HOST, UPGRADE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// A request body on its way upstream.
pub(crate) type ReqBody = BoxBody<Bytes, hyper::Error>;
/// A kept-alive HTTP/1.1 connection to an upstream.
pub(crate) type Sender = hyper::client::conn::http1::SendRequest<ReqBody>;
/// What a client gets: a body the proxy holds (a page of its own, a
/// cached answer), or an upstream's, passed on as it comes.
pub(crate) type Answer = Response<Either<Full<Bytes>, Tracked>>;

/// Streams one HTTP/2 client connection may have open at once (each may
/// hold an upstream connection): HAProxy's default is 100, nginx's 128;
/// the lab's upstreams are a few, so fewer.
const H2_STREAMS: u32 = 32;
/// How often an HTTP/2 connection is pinged while open; one that does not
/// answer within the header timeout is closed (RFC 9113 6.7).
const H2_PING: Duration = Duration::from_secs(20);
/// A client connection over which no byte moved for this long is closed
/// even with a request in flight (nginx's `send_timeout`), or twice the
/// request timeout if that is longer, so that a slow upstream is not cut.
const CLIENT_IDLE: Duration = Duration::from_secs(60);
/// Idle kept-alive connections kept per upstream address at most.
const IDLE_PER_UPSTREAM: usize = 64;

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

counters! {
    /// What the engine counts for a proxy, beside the proxy's own figures.
    struct Counters {
        connections_opened,
        connections_reused,
        /// TLS handshakes that failed or timed out.
        tls_failures,
        /// Connections upgraded (WebSockets) and joined to an upstream.
        upgrades,
    }
}

/// A client connection: its address, `http` or `https`, and what tells
/// which traced frame brought its request (a proxy's decisions are noted
/// on it).
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub peer: SocketAddr,
    pub proto: &'static str,
    pub probe: hoststack::TraceProbe,
}

/// What a proxy decides: the answer to each client request.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: Client,
    ) -> impl Future<Output = Answer> + Send;

    /// The proxy's engine: its host and upstream connections.
    fn upstreams(&self) -> &Upstreams;
}

/// How a proxy's front serves its clients.
#[derive(Debug, Clone)]
pub(crate) struct Front {
    pub port: u16,
    pub tls: Option<Tls>,
    /// How long a client may take to send a request's headers (or a TLS
    /// handshake), and a kept-alive connection may sit idle.
    pub header_timeout: Duration,
    /// How long an upstream may take to start its answer: a client
    /// connection waiting that long is not idle.
    pub request_timeout: Duration,
}

/// A proxy's connections to its upstreams, and its engine's counters.
pub(crate) struct Upstreams {
    host: Host,
    connect_timeout: Duration,
    /// Kept-alive connections by upstream address.
    idle: Mutex<HashMap<SocketAddr, Vec<Sender>>>,
    counters: Counters,
}

/// Why an upstream gave no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// It did not start its answer within the request timeout.
    Timeout,
    /// The connection broke first.
    Broken(hyper::Error),
}

impl Upstreams {
    pub fn new(host: Host, connect_timeout: Duration) -> Upstreams {
        Upstreams {
            host,
            connect_timeout,
            idle: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        }
    }

    /// The engine's figures, for the proxy's status.
    pub fn json(&self) -> serde_json::Value {
        self.counters.json()
    }

    /// The host the proxy runs on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// A kept-alive connection to the upstream at `addr`, or a new one.
    pub async fn connection(&self, addr: SocketAddr) -> io::Result<Sender> {
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
        let stream = tokio::time::timeout(self.connect_timeout, connect)
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

    /// Puts a connection whose last answer was read to its end back for
    /// the next request to `addr`.
    pub fn keep(&self, addr: SocketAddr, sender: Sender) {
        let mut idle = lock(&self.idle);
        let list = idle.entry(addr).or_default();
        if list.len() < IDLE_PER_UPSTREAM && !sender.is_closed() {
            list.push(sender);
        }
    }

    /// Sends `req` on `sender`: the answer's head, if it starts within
    /// `timeout`.
    pub async fn send(
        sender: &mut Sender,
        req: Request<ReqBody>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, Failure> {
        match tokio::time::timeout(timeout, sender.send_request(req)).await {
            Err(_) => Err(Failure::Timeout),
            Ok(Err(e)) => Err(Failure::Broken(e)),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// The upstream agreed to an upgrade: the client gets its 101 (headers
    /// as the upstream gave them), and the two connections are joined,
    /// byte for byte, until either closes.
    pub fn join(
        &self,
        client_side: hyper::upgrade::OnUpgrade,
        mut response: Response<Incoming>,
    ) -> Answer {
        self.counters.upgrades.fetch_add(1, Ordering::Relaxed);
        let upstream_side = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            if let (Ok(c), Ok(b)) = tokio::join!(client_side, upstream_side) {
                let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
                let _ = tokio::io::copy_bidirectional(&mut c, &mut b).await;
            }
        });
        let (parts, _) = response.into_parts();
        Response::from_parts(parts, Either::Left(Full::default()))
    }
}

/// Serves `front` on the proxy's host until the task is dropped: each
/// client request goes to `handler`.
pub(crate) fn serve<H: Handler>(
    handler: Arc<H>,
    front: Front,
) -> io::Result<impl Future<Output = io::Result<()>> + Send + 'static> {
    let host = handler.upstreams().host();
    let listener = host.listen(front.port, 1024)?;
    let tls = match &front.tls {
        Some(t) => Some((
            host.listen(t.port, 1024)?,
            TlsAcceptor::from(t.config.clone()),
        )),
        None => None,
    };
    let front = Arc::new(front);
    let https = {
        let (handler, front) = (handler.clone(), front.clone());
        async move {
            let Some((listener, acceptor)) = tls else {
                return std::future::pending().await;
            };
            accept_tls(listener, acceptor, handler, front).await
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
            tokio::spawn(connection(handler.clone(), front.clone(), stream, client));
        }
    };
    Ok(async move {
        tokio::select! {
            r = http => r,
            r = https => r,
        }
    })
}

/// Accepts HTTPS clients: each handshake within the header timeout.
async fn accept_tls<H: Handler>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handler: Arc<H>,
    front: Arc<Front>,
) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let (handler, front, acceptor) = (handler.clone(), front.clone(), acceptor.clone());
        let client = Client {
            peer,
            proto: "https",
            probe: stream.trace_probe(),
        };
        tokio::spawn(async move {
            let handshake = acceptor.accept(stream);
            match tokio::time::timeout(front.header_timeout, handshake).await {
                Ok(Ok(tls)) => connection(handler, front, tls, client).await,
                _ => {
                    let counters = &handler.upstreams().counters;
                    counters.tls_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// Serves one client connection: HTTP/1.1 (kept alive, headers within the
/// header timeout) or HTTP/2 (by ALPN, or a client's preface).
async fn connection<H, S>(handler: Arc<H>, front: Arc<Front>, io: S, client: Client)
where
    H: Handler,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let timeout = front.header_timeout;
    let peer = client.peer;
    let busy = Busy::default();
    let requests = busy.clone();
    let service = service_fn(move |req| {
        let (handler, client, request) = (handler.clone(), client.clone(), requests.enter());
        async move {
            let answer = handler.handle(req, client).await;
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
    // these cover the rest: the bytes that tell the protocol, an HTTP/2
    // connection with no request in flight, a client that stopped reading
    // (crate::deadline).
    let idle = CLIENT_IDLE.max(front.request_timeout * 2);
    let io = Deadlined::new(io, timeout, idle, busy);
    let served = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = served.await {
        tracing::debug!(%peer, "proxy connection ended: {e}");
    }
}

/// The request as it goes upstream from proxy `name` (with `upgrade`, the
/// protocol it asks to switch to): hop-by-hop headers removed, the
/// client's address appended to `X-Forwarded-For`, `X-Forwarded-Proto`
/// and `Via` added, HTTP/1.1 in origin form with the client's Host.
pub(crate) fn outgoing<B>(
    req: Request<B>,
    name: &str,
    client: &Client,
    upgrade: Option<HeaderValue>,
) -> Request<B> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if let Some(protocol) = upgrade {
        parts.headers.insert(UPGRADE, protocol);
        parts
            .headers
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
    // Upstreams speak HTTP/1.1; an HTTP/2 request names its host in its
    // URI (:authority), HTTP/1.1 in the Host header.
    parts.version = hyper::Version::HTTP_11;
    if !parts.headers.contains_key(HOST) {
        let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
        if let Some(v) = authority.and_then(|a| HeaderValue::from_str(&a).ok()) {
            parts.headers.insert(HOST, v);
        }
    }
    let h = &mut parts.headers;
    let peer = client.peer.ip();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(before) => format!("{before}, {peer}"),
        None => peer.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert(HeaderName::from_static("x-forwarded-for"), v);
    }
    h.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(client.proto),
    );
    via(h, name);
    // Origin form upstream; the Host header stays the client's.
    if let Some(pq) = parts.uri.path_and_query() {
        if let Ok(uri) = pq.as_str().parse() {
            parts.uri = uri;
        }
    }
    Request::from_parts(parts, body)
}

/// An upstream answer's headers as proxy `name` passes them on:
/// hop-by-hop ones removed, `Via` added.
pub(crate) fn answer_head(headers: &mut HeaderMap, name: &str) {
    strip_hop_by_hop(headers);
    via(headers, name);
}

/// Appends `1.1 NAME` to `Via` (RFC 9110 7.6.3).
fn via(h: &mut HeaderMap, name: &str) {
    if let Ok(via) = HeaderValue::from_str(&format!("1.1 {name}")) {
        h.append(HeaderName::from_static("via"), via);
    }
}

/// A page of proxy `name`'s own: the status and why, in words.
pub(crate) fn page(name: &str, status: StatusCode, why: &str) -> Answer {
    let text = format!(
        "{} {}\n{name}: {why}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut r = Response::new(Either::Left(Full::new(Bytes::from(text))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The body of a request that has none.
pub(crate) fn empty_body() -> ReqBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A bodiless request again, to send to another upstream.
pub(crate) fn copy_of(req: &Request<ReqBody>) -> Request<ReqBody> {
    let mut copy = Request::new(empty_body());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}

/// The protocol an HTTP/1.1 request asks to upgrade to (`Upgrade:` with
/// `upgrade` among its Connection options), as a WebSocket client does.
pub(crate) fn upgrade_of(h: &HeaderMap) -> Option<HeaderValue> {
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
        .get_all(CONNECTION)
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

/// What happens once an upstream's body has gone to the client: told
/// whether it was read to its end (so that its connection may serve
/// another request).
pub(crate) type AtEnd = Box<dyn FnOnce(bool) + Send>;

/// An upstream's body on its way to the client (after bytes of it
/// already read, if any), with its [`AtEnd`].
pub struct Tracked {
    prefix: Option<Bytes>,
    body: Incoming,
    at_end: Option<AtEnd>,
    ended: bool,
}

impl Tracked {
    pub(crate) fn new(body: Incoming, at_end: AtEnd) -> Tracked {
        Tracked::after(Bytes::new(), body, at_end)
    }

    /// The rest of `body`, after `prefix` read from it already.
    pub(crate) fn after(prefix: Bytes, body: Incoming, at_end: AtEnd) -> Tracked {
        Tracked {
            prefix: (!prefix.is_empty()).then_some(prefix),
            body,
            at_end: Some(at_end),
            ended: false,
        }
    }

    fn finish(&mut self) {
        if let Some(at_end) = self.at_end.take() {
            at_end(self.ended);
        }
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // An empty body (a 204, a HEAD's answer) is never polled.
        self.ended |= self.prefix.is_none() && self.body.is_end_stream();
        self.finish();
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        // The end: no more frames, or the last one (a body of known length
        // is not polled past it).
        if matches!(polled, Poll::Ready(None)) || self.body.is_end_stream() {
            self.ended = true;
            self.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let before = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let rest = self.body.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + before);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + before);
        }
        hint
    }
}
