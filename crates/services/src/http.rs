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
//! closed, so slow or idle clients (slowloris) hold nothing for long; one
//! that leaves an answer unread for a minute is cut; the host's
//! per-client connection limit and buffer budget bound what they hold at
//! once. Bodies are made as they are sent: their size costs no memory.

use crate::deadline::{Busy, Deadlined};
use bytes::Bytes;
use hoststack::{Host, TcpListener};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, DATE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

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

type Answer = Response<Generated>;

fn respond(
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
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Byte i is `i % 251`.
    Pattern,
    Dots,
}

impl Source {
    fn period(self) -> usize {
        match self {
            Source::Pattern => PATTERN_PERIOD,
            Source::Dots => 1,
        }
    }

    /// 256 periods plus one, so any chunk can start at any phase.
    fn buffer(self) -> &'static Bytes {
        static PATTERN: OnceLock<Bytes> = OnceLock::new();
        static DOTS: OnceLock<Bytes> = OnceLock::new();
        match self {
            Source::Pattern => PATTERN.get_or_init(|| {
                (0..PATTERN_PERIOD * 257)
                    .map(|i| (i % PATTERN_PERIOD) as u8)
                    .collect::<Vec<u8>>()
                    .into()
            }),
            Source::Dots => DOTS.get_or_init(|| vec![b'.'; PATTERN_PERIOD * 257].into()),
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
        Generated {
            head: Bytes::new(),
            fill: len,
            offset: 0,
            source: Source::Pattern,
            tail: Bytes::new(),
        }
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
            let chunk = PATTERN_PERIOD * 256;
            let n = usize::try_from(self.fill).unwrap_or(chunk).min(chunk);
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
