//! `loadgen URL --rate R --seconds S --connections C`: a fixed-rate HTTP/1.1
//! load, for the benchmarks' p99 at a rate both sides can carry.
//!
//! Requests are scheduled every 1/R seconds and handed in turn to C
//! kept-alive connections; a connection that is busy queues them. Each
//! request's latency counts from when it was *scheduled*, not sent, so a
//! stall shows in the figures instead of hiding in a slower send rate
//! (coordinated omission, as wrk2 avoids it). Prints one line:
//! `requests=N errors=E p50_ms=.. p90_ms=.. p99_ms=.. p999_ms=.. max_ms=..`.

// Printing the result is this tool's job.
#![allow(clippy::print_stdout)]

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(Debug, Parser)]
struct Args {
    /// `http://HOST[:PORT]/PATH` (an address, not a name).
    url: String,
    /// Requests per second, in total.
    #[arg(long)]
    rate: u32,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 64)]
    connections: usize,
}

/// What one connection saw: latencies in microseconds, and errors.
#[derive(Debug, Default)]
struct Seen {
    latencies: Vec<u64>,
    errors: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let uri: hyper::Uri = args.url.parse().context("a URL like http://10.0.0.1/")?;
    let authority = uri.authority().context("the URL needs a host")?.clone();
    let addr = format!(
        "{}:{}",
        authority.host(),
        authority.port_u16().unwrap_or(80)
    );
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut queues = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..args.connections.max(1) {
        let (tx, rx) = mpsc::unbounded_channel::<Instant>();
        queues.push(tx);
        let (addr, path, host) = (addr.clone(), path.clone(), authority.to_string());
        workers.push(tokio::spawn(connection(addr, host, path, rx)));
    }
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let mut next = start;
    let mut i = 0usize;
    while next < end {
        tokio::time::sleep_until(next).await;
        // Every request due by now goes out, each stamped with its own time.
        while next <= Instant::now() && next < end {
            let _ = queues[i % queues.len()].send(next);
            i += 1;
            next += interval;
        }
    }
    drop(queues);
    let mut all = Seen::default();
    for w in workers {
        let seen = w.await?;
        all.latencies.extend(seen.latencies);
        all.errors += seen.errors;
    }
    all.latencies.sort_unstable();
    let q = |p: f64| {
        let n = all.latencies.len();
        if n == 0 {
            return 0.0;
        }
        let i = ((n as f64 * p) as usize).min(n - 1);
        all.latencies[i] as f64 / 1000.0
    };
    println!(
        "requests={} errors={} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
        all.latencies.len(),
        all.errors,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        all.latencies.last().map_or(0.0, |l| *l as f64 / 1000.0)
    );
    Ok(())
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// One kept-alive connection: its requests one after another, reconnecting
/// after an error.
async fn connection(
    addr: String,
    host: String,
    path: String,
    mut rx: mpsc::UnboundedReceiver<Instant>,
) -> Seen {
    let mut seen = Seen::default();
    let mut sender: Option<Sender> = None;
    while let Some(due) = rx.recv().await {
        if sender.as_ref().is_none_or(Sender::is_closed) {
            sender = connect(&addr).await.ok();
        }
        let Some(s) = sender.as_mut() else {
            seen.errors += 1;
            continue;
        };
        if s.ready().await.is_err() {
            seen.errors += 1;
            sender = None;
            continue;
        }
        let req = Request::get(path.as_str())
            .header(hyper::header::HOST, host.as_str())
            .body(Empty::new());
        let Ok(req) = req else {
            seen.errors += 1;
            continue;
        };
        let ok = match s.send_request(req).await {
            Ok(r) => r.status().is_success() && r.into_body().collect().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            seen.latencies.push(due.elapsed().as_micros() as u64);
        } else {
            seen.errors += 1;
            sender = None;
        }
    }
    seen
}

async fn connect(addr: &str) -> Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
