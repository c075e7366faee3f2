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
//! A client must send a request's headers within `header_timeout`, and a
//! kept-alive connection that carries no new request within that time is
//! closed, so slow or idle clients (slowloris) hold nothing for long; the
//! host's per-client connection limit bounds how many they hold at once.

use bytes::Bytes;
use hoststack::{Host, TcpListener};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, DATE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddrV4;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

/// The byte pattern of `/bytes/N` repeats every this many bytes.
pub const PATTERN_PERIOD: usize = 251;

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
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let answer = respond(&config, local, peer, &req);
                async move { Ok::<_, Infallible>(answer) }
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

type Answer = Response<Either<Full<Bytes>, Pattern>>;

fn respond(
    config: &Config,
    local: SocketAddrV4,
    peer: SocketAddrV4,
    req: &Request<Incoming>,
) -> Answer {
    let path = req.uri().path();
    let body = match path.strip_prefix("/bytes/") {
        Some(n) => match n.parse::<u64>() {
            Ok(n) if n <= MAX_DOWNLOAD => Either::Right(Pattern::new(n)),
            _ => {
                let msg = format!("/bytes/N takes a size from 0 to {MAX_DOWNLOAD}\n");
                return answer(
                    config,
                    StatusCode::BAD_REQUEST,
                    Either::Left(Full::new(msg.into())),
                );
            }
        },
        None => Either::Left(Full::new(greeting(config, local, peer, req))),
    };
    answer(config, StatusCode::OK, body)
}

fn answer(config: &Config, status: StatusCode, body: Either<Full<Bytes>, Pattern>) -> Answer {
    let kind = match body {
        Either::Left(_) => "text/plain; charset=utf-8",
        Either::Right(_) => "application/octet-stream",
    };
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

fn greeting(
    config: &Config,
    local: SocketAddrV4,
    peer: SocketAddrV4,
    req: &Request<Incoming>,
) -> Bytes {
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
    let Some(size) = config.body_size else {
        return text.into();
    };
    let mut bytes = text.into_bytes();
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if bytes.len() > size {
        bytes.truncate(size);
    } else {
        bytes.resize(size, b'.');
        if let Some(last) = bytes.last_mut() {
            *last = b'\n';
        }
    }
    bytes.into()
}

/// A body of `len` bytes of the `/bytes` pattern, sent as slices of one
/// shared buffer: no copy and no allocation per chunk.
#[derive(Debug)]
pub struct Pattern {
    remaining: u64,
    /// Where in the period the next chunk starts.
    offset: usize,
}

impl Pattern {
    fn new(len: u64) -> Pattern {
        Pattern {
            remaining: len,
            offset: 0,
        }
    }

    fn buffer() -> &'static Bytes {
        static BUF: OnceLock<Bytes> = OnceLock::new();
        // 256 periods plus one, so any chunk can start at any phase.
        BUF.get_or_init(|| {
            (0..PATTERN_PERIOD * 257)
                .map(|i| (i % PATTERN_PERIOD) as u8)
                .collect::<Vec<u8>>()
                .into()
        })
    }
}

impl Body for Pattern {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let chunk = PATTERN_PERIOD * 256;
        let n = usize::try_from(self.remaining).unwrap_or(chunk).min(chunk);
        let start = self.offset;
        self.remaining -= n as u64;
        self.offset = (start + n) % PATTERN_PERIOD;
        let data = Pattern::buffer().slice(start..start + n);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
