//! The control socket: how `scratchnet status` and `scratchnet capture`
//! talk to a running lab.
//!
//! A Unix socket at /run/scratchnet/LAB.sock, mode 0600 (root only). A
//! client sends one JSON request line and reads one JSON reply line; a
//! capture then streams records of `[u64 µs since the Unix epoch][u32
//! length][u8 direction][u8 port][frame]`, big-endian, which the client
//! writes out as pcapng (pcap.rs); a trace streams one
//! JSON line per traced frame (fabric's `TraceRecord`).

use crate::state::{socket_path, LabState};
use anyhow::{bail, Context, Result};
use fabric::{CapturedFrame, Direction};
use lab::running::LinkChange;
use lab::RunningLab as Lab;
use services::{Answer, PoolCommand, ResolverCommand};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Request {
    Status,
    /// The fabric's counters in Prometheus's text format.
    Metrics,
    /// Every node, its interfaces, addresses and MACs.
    Inspect,
    /// The frames crossing `ports` that match `filter`, as they come.
    Capture {
        ports: Vec<String>,
        #[serde(default)]
        filter: String,
    },
    Trace {
        /// The port frames enter at; any port if absent.
        #[serde(default)]
        port: Option<String>,
        #[serde(default)]
        filter: String,
        #[serde(default)]
        count: Option<u64>,
        /// Send each record as the text people read (`{"text": ...}`)
        /// instead of its fields.
        #[serde(default)]
        text: bool,
    },
    /// A request for `resolver` (the lab's only resolver if absent): a
    /// question to trace, step by step, or a cache flush.
    Resolver {
        #[serde(default)]
        resolver: Option<String>,
        request: services::ResolverCommand,
    },
    /// Changes what a port's link does, or takes it down or up.
    Link(LinkChange),
    /// A command for service `service` (a balancer's drain, say).
    Command {
        service: String,
        request: services::Command,
    },
    /// What a frame `host` would send for `spec` would meet, without it
    /// happening.
    Inject {
        host: String,
        spec: String,
        #[serde(default)]
        text: bool,
    },
}

/// A trace record as a JSON line: its fields, or the text people read.
fn record_line(record: &fabric::TraceRecord, text: bool) -> Result<Vec<u8>> {
    let mut line = if text {
        serde_json::to_vec(&serde_json::json!({ "text": record.to_string() }))?
    } else {
        serde_json::to_vec(record)?
    };
    line.push(b'\n');
    Ok(line)
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Reply {
    ok: bool,
    /// For a capture: each port's link type, `raw` when it carries IP
    /// packets (a TUN), else `ethernet`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    links: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<serde_json::Value>,
    /// What a service answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<serde_json::Value>,
}

/// Clients served at once (captures included); more are told to retry.
pub const MAX_CLIENTS: usize = 32;
/// How long a client may take to send its request line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Listens on the lab's socket until the returned task is aborted.
pub fn serve(lab: &str, running: Weak<Lab>) -> Result<JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(lab);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let lab = lab.to_owned();
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                let busy = format!("too many clients (at most {MAX_CLIENTS} at once); try again");
                tokio::spawn(async move {
                    let _ = stream.write_all(&fail(busy)).await;
                });
                continue;
            };
            let rt = running.clone();
            let lab = lab.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(stream, rt, &lab).await {
                    tracing::debug!("control connection ended: {e:#}");
                }
                drop(slot);
            });
        }
    }))
}

impl Reply {
    fn ok() -> Reply {
        Reply {
            ok: true,
            ..Reply::default()
        }
    }
}

fn reply(r: Reply) -> Vec<u8> {
    let mut v = serde_json::to_vec(&r).unwrap_or_default();
    v.push(b'\n');
    v
}

fn fail(e: String) -> Vec<u8> {
    reply(Reply {
        ok: false,
        error: Some(e),
        ..Reply::default()
    })
}

/// The reply carrying `result`, or saying what went wrong.
fn answer<T: serde::Serialize, E: std::fmt::Display>(result: Result<T, E>) -> Vec<u8> {
    let result = result
        .map_err(|e| e.to_string())
        .and_then(|r| serde_json::to_value(r).map_err(|e| e.to_string()));
    match result {
        Ok(result) => reply(Reply {
            ok: true,
            result: Some(result),
            ..Reply::default()
        }),
        Err(e) => fail(e),
    }
}

async fn handle(stream: UnixStream, running: Weak<Lab>, lab: &str) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(64 * 1024);
    match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(r) => r?,
        Err(_) => {
            let late = format!("no request within {} s", REQUEST_TIMEOUT.as_secs());
            return Ok(write.write_all(&fail(late)).await?);
        }
    };
    let request: Request = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => return Ok(write.write_all(&fail(format!("bad request: {e}"))).await?),
    };
    let Some(running) = running.upgrade() else {
        return Ok(write.write_all(&fail("the lab is stopping".into())).await?);
    };
    match request {
        Request::Status => {
            let status = running.status();
            write
                .write_all(&reply(Reply {
                    ok: true,
                    status: Some(status),
                    ..Reply::default()
                }))
                .await?;
        }
        Request::Metrics => {
            write.write_all(&answer(running.metrics())).await?;
        }
        Request::Inspect => {
            let result = serde_json::json!({
                "lab": lab,
                "pid": std::process::id(),
                "nodes": running.nodes(),
            });
            write.write_all(&answer(Ok::<_, String>(result))).await?;
        }
        Request::Link(change) => {
            write
                .write_all(&answer(running.change_link(&change)))
                .await?;
        }
        Request::Command { service, request } => {
            let pending = running.command(&service, request);
            drop(running);
            write.write_all(&answer(pending.send().await)).await?;
        }
        Request::Resolver { resolver, request } => {
            let pending = running.resolver(resolver.as_deref(), request);
            drop(running);
            write.write_all(&answer(pending.send().await)).await?;
        }
        Request::Trace {
            port,
            filter,
            count,
            text,
        } => {
            let traced = running.trace(port.as_deref(), &filter, count);
            drop(running);
            let mut rx = match traced {
                Ok(rx) => rx,
                Err(e) => return Ok(write.write_all(&fail(e.to_string())).await?),
            };
            write.write_all(&reply(Reply::ok())).await?;
            while let Some(record) = rx.recv().await {
                write.write_all(&record_line(&record, text)?).await?;
            }
        }
        Request::Inject { host, spec, text } => {
            let records = running.what_if(&host, &spec);
            drop(running);
            let records = match records {
                Ok(r) => r,
                Err(e) => return Ok(write.write_all(&fail(e.to_string())).await?),
            };
            write.write_all(&reply(Reply::ok())).await?;
            for record in &records {
                write.write_all(&record_line(record, text)?).await?;
            }
        }
        Request::Capture { ports, filter } => {
            let capture = running.capture(&ports, &filter);
            drop(running);
            let mut capture = match capture {
                Ok(c) => c,
                Err(e) => return Ok(write.write_all(&fail(e.to_string())).await?),
            };
            write
                .write_all(&reply(Reply {
                    ok: true,
                    links: capture.links(),
                    ..Reply::default()
                }))
                .await?;
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Some(frame) = capture.next().await {
                buf.clear();
                encode(&frame, &mut buf);
                while let Some(more) = capture.next_ready() {
                    encode(&more, &mut buf);
                }
                write.write_all(&buf).await?;
            }
        }
    }
    Ok(())
}

fn encode(frame: &CapturedFrame, out: &mut Vec<u8>) {
    let micros = frame
        .at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64;
    out.extend_from_slice(&micros.to_be_bytes());
    out.extend_from_slice(&(frame.data.len() as u32).to_be_bytes());
    out.push(match frame.direction {
        Direction::In => 0,
        Direction::Out => 1,
    });
    out.push(frame.port as u8);
    out.extend_from_slice(&frame.data);
}

/// Picks the lab to talk to: the named one, or the only one running.
pub(crate) fn find_lab(lab: Option<&str>) -> Result<String> {
    if let Some(l) = lab {
        // A name becomes a path under /run/scratchnet: `../x` must not.
        if !topology::is_valid_name(l) {
            bail!("`{l}` is not a lab name (lowercase letters, digits and dashes, as in a topology's `name`)");
        }
        return Ok(l.to_owned());
    }
    let running: Vec<String> = LabState::all()?
        .into_iter()
        .filter(|l| {
            LabState::load(l)
                .ok()
                .flatten()
                .is_some_and(|s| s.is_running())
        })
        .collect();
    match running.as_slice() {
        [] => bail!("no lab is running: start one with `sudo scratchnet up`"),
        [one] => Ok(one.clone()),
        many => bail!(
            "several labs are running ({}): choose one with --lab",
            many.join(", ")
        ),
    }
}

async fn request(lab: Option<&str>, req: &Request) -> Result<(Reply, BufReader<UnixStream>)> {
    let lab = find_lab(lab)?;
    let path = socket_path(&lab);
    let mut stream = UnixStream::connect(&path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                anyhow::anyhow!("{} is root's: run this with sudo", path.display())
            }
            _ => anyhow::anyhow!(
                "cannot reach lab `{lab}` at {}: {e} (is it running?)",
                path.display()
            ),
        })?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer).await?;
    let reply: Reply = serde_json::from_str(&answer)
        .with_context(|| format!("lab `{lab}` sent a reply that is not JSON"))?;
    if !reply.ok {
        bail!(
            "{}",
            reply
                .error
                .unwrap_or_else(|| "the lab refused the request".into())
        );
    }
    Ok((reply, reader))
}

/// `scratchnet status`.
/// What `scratchnet status` shows.
#[derive(Debug, Clone, Copy)]
pub struct StatusArgs<'a> {
    /// One switch, router, service host or port, not the whole lab.
    pub node: Option<&'a str>,
    pub json: bool,
    /// One line per node.
    pub brief: bool,
    /// Prometheus's text format, not JSON or tables.
    pub prometheus: bool,
    /// Again every second, until Ctrl-C.
    pub watch: bool,
}

/// `scratchnet status [NODE] [--json | --brief | --prometheus] [--watch]`.
pub async fn status(lab: Option<&str>, args: StatusArgs<'_>) -> Result<()> {
    use std::io::Write as _;
    if args.prometheus {
        let (reply, _) = request(lab, &Request::Metrics).await?;
        let text = reply
            .result
            .as_ref()
            .and_then(|t| t.as_str())
            .unwrap_or_default();
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(());
    }
    loop {
        let (reply, _) = request(lab, &Request::Status).await?;
        let mut status = reply.status.unwrap_or_default();
        if let Some(node) = args.node {
            status = lab::running::node_status(&status, node).ok_or_else(|| {
                anyhow::anyhow!("no switch, router, service or port named `{node}` in this lab")
            })?;
        }
        let text = if args.json {
            serde_json::to_string_pretty(&status)? + "\n"
        } else if args.brief {
            crate::render::brief(&status)
        } else {
            crate::render::status(&status)
        };
        let mut out = std::io::stdout();
        if args.watch {
            // Home the cursor and clear the screen, as watch(1) does.
            let _ = write!(out, "\x1b[H\x1b[2J");
        }
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
            || !args.watch
        {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// What `scratchnet capture` was asked for.
#[derive(Debug)]
pub struct CaptureArgs<'a> {
    pub ports: &'a [String],
    pub file: Option<&'a Path>,
    pub filter: &'a str,
    pub count: Option<u64>,
    /// Classic pcap (one port) instead of pcapng.
    pub pcap: bool,
}

/// `scratchnet capture PORT... [-w FILE] [-f FILTER] [-c COUNT]`: pcapng
/// (or pcap) to the file or stdout until Ctrl-C, COUNT frames, or the
/// reader (tcpdump, say) going away.
pub async fn capture(lab: Option<&str>, args: CaptureArgs<'_>) -> Result<()> {
    use std::io::IsTerminal;
    if args.file.is_none() && std::io::stdout().is_terminal() {
        bail!(
            "a capture is binary pcapng, not text for a terminal: pipe it to a reader (`| tcpdump -nr -`) or write a file (`-w {}.pcapng`)",
            args.ports.first().map_or("capture", String::as_str)
        );
    }
    if args.pcap && args.ports.len() > 1 {
        bail!("classic pcap has no port names: capture several ports as pcapng (without --pcap)");
    }
    // Say what is wrong with the filter before asking the lab.
    fabric::Filter::parse(args.filter)?;
    let request = Request::Capture {
        ports: args.ports.to_vec(),
        filter: args.filter.to_owned(),
    };
    let (reply, mut reader) = self::request(lab, &request).await?;
    let mut out: Box<dyn Write> = match args.file {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    // The writer encodes into a shared buffer; this loop decides when the
    // bytes go out, so a pipe to tcpdump sees each batch at once.
    let pending = Pending::default();
    let mut writer =
        crate::pcapng::CaptureWriter::new(pending.clone(), args.ports, &reply.links, args.pcap)?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut count = 0u64;
    while pending.drain_to(&mut out).is_ok() && args.count.is_none_or(|c| count < c) {
        let mut head = [0u8; 14];
        tokio::select! {
            r = reader.read_exact(&mut head) => if r.is_err() { break },
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
        let micros = u64::from_be_bytes(head[..8].try_into()?);
        let len = u32::from_be_bytes(head[8..12].try_into()?) as usize;
        let inbound = head[12] == 0;
        let port = u32::from(head[13]);
        let mut data = vec![0u8; len];
        reader.read_exact(&mut data).await?;
        writer.write(port, Duration::from_micros(micros), inbound, &data)?;
        count += 1;
    }
    let _ = pending.drain_to(&mut out);
    eprintln!(
        "scratchnet: {} captured on {}",
        crate::render::count(count, "frame", "frames"),
        args.ports.join(", ")
    );
    Ok(())
}

/// `scratchnet trace [PORT] [--filter EXPR] [-c COUNT] [--json]`: each
/// frame entering at the port that matches, and every decision taken on
/// it across the lab, until Ctrl-C or COUNT frames.
pub async fn trace(
    lab: Option<&str>,
    port: Option<&str>,
    filter: &str,
    count: Option<u64>,
    json: bool,
) -> Result<()> {
    // Say what is wrong with the filter before asking the lab.
    fabric::Filter::parse(filter)?;
    let request = Request::Trace {
        port: port.map(str::to_owned),
        filter: filter.to_owned(),
        count,
        text: !json,
    };
    print_records(lab, &request, json).await
}

/// What a service answered `request` (a `Command` or `Resolver` one).
async fn service_answer(lab: Option<&str>, request: &Request) -> Result<Answer> {
    let (reply, _) = self::request(lab, request).await?;
    serde_json::from_value(reply.result.unwrap_or_default())
        .context("the lab's answer is not one this scratchnet reads")
}

/// `scratchnet trace dns NAME [TYPE]`: the resolver's walk for a question,
/// step by step, and its answer.
pub async fn trace_dns(
    lab: Option<&str>,
    resolver: Option<&str>,
    name: &str,
    qtype: &str,
    json: bool,
) -> Result<()> {
    let request = Request::Resolver {
        resolver: resolver.map(str::to_owned),
        request: ResolverCommand::Trace {
            name: name.to_owned(),
            qtype: qtype.to_owned(),
        },
    };
    let Answer::Resolution(resolution) = service_answer(lab, &request).await? else {
        bail!("the resolver answered something other than its walk");
    };
    if json {
        crate::print_out(&format!("{}\n", serde_json::to_string_pretty(&resolution)?))?;
    } else {
        crate::print_out(&crate::render::dns_trace(&resolution))?;
    }
    Ok(())
}

/// `scratchnet dns flush [NAME]`: the resolver forgets what it cached
/// for NAME, or everything (as `unbound-control flush`).
pub async fn dns_flush(
    lab: Option<&str>,
    resolver: Option<&str>,
    name: Option<&str>,
) -> Result<()> {
    let request = Request::Resolver {
        resolver: resolver.map(str::to_owned),
        request: ResolverCommand::Flush {
            name: name.map(str::to_owned),
        },
    };
    let Answer::Flushed(flushed) = service_answer(lab, &request).await? else {
        bail!("the resolver answered something other than a flush");
    };
    let what = name.map_or("the cache".to_owned(), |n| format!("`{n}`"));
    let entries = crate::render::count(flushed, "entry", "entries");
    crate::print_out(&format!("flushed {what}: {entries} forgotten\n"))?;
    Ok(())
}

/// `scratchnet lb LB drain|restore BACKEND` and `lb LB weight BACKEND N`:
/// a balancer's pool changed live; `scratchnet lb [LB]`: its pool.
pub async fn lb(lab: Option<&str>, lb: Option<&str>, change: Option<PoolCommand>) -> Result<()> {
    match (lb, change) {
        (Some(lb), Some(change)) => {
            let command = Request::Command {
                service: lb.to_owned(),
                request: services::Command::Balancer(change),
            };
            match service_answer(lab, &command).await? {
                Answer::Done(done) => crate::print_out(&format!("{done}\n"))?,
                other => bail!("the balancer answered {other:?}"),
            }
        }
        (lb, _) => {
            let (reply, _) = self::request(lab, &Request::Status).await?;
            let status = reply.status.unwrap_or_default();
            // Each pool's block starts with a blank line, to stand apart
            // in `status`; alone, the first one needs none.
            let pools = crate::render::balancers(&status, lb);
            crate::print_out(pools.trim_start_matches('\n'))?;
        }
    }
    Ok(())
}

/// `scratchnet cache EDGE purge [--prefix] URL`: a cache forgets URLs;
/// `scratchnet cache [EDGE]`: its store.
pub async fn cache(
    lab: Option<&str>,
    edge: Option<&str>,
    purge: Option<services::CacheCommand>,
) -> Result<()> {
    match (edge, purge) {
        (Some(edge), Some(purge)) => {
            let command = Request::Command {
                service: edge.to_owned(),
                request: services::Command::Cache(purge),
            };
            match service_answer(lab, &command).await? {
                Answer::Purged(n) => crate::print_out(&format!(
                    "{edge}: {} purged\n",
                    crate::render::count(n, "URL", "URLs")
                ))?,
                other => bail!("the cache answered {other:?}"),
            }
        }
        (edge, _) => {
            let (reply, _) = self::request(lab, &Request::Status).await?;
            let status = reply.status.unwrap_or_default();
            let caches = crate::render::caches(&status, edge);
            if caches.is_empty() {
                bail!(
                    "no cache service{} in this lab",
                    edge.map(|e| format!(" named `{e}`")).unwrap_or_default()
                );
            }
            crate::print_out(caches.trim_start_matches('\n'))?;
        }
    }
    Ok(())
}

/// `scratchnet link PORT ...`: changes a link, then says what it is.
pub async fn link(
    lab: Option<&str>,
    port: &str,
    clear: bool,
    set: Vec<(String, String)>,
    up: Option<bool>,
) -> Result<()> {
    let request = Request::Link(LinkChange {
        port: port.to_owned(),
        clear,
        set,
        up,
    });
    let (reply, _) = self::request(lab, &request).await?;
    let result = reply.result.unwrap_or_default();
    let state = if result["up"].as_bool() == Some(false) {
        "down"
    } else {
        "up"
    };
    println!(
        "{port}: {state}, {}",
        result["summary"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// The nodes of the named lab, or of every running lab.
async fn lab_nodes(lab: Option<&str>) -> Result<Vec<serde_json::Value>> {
    let labs = match lab {
        Some(l) => vec![l.to_owned()],
        None => LabState::all()?
            .into_iter()
            .filter(|l| {
                LabState::load(l)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.is_running())
            })
            .collect(),
    };
    if labs.is_empty() {
        bail!("no lab is running: start one with `sudo scratchnet up`");
    }
    let mut all = Vec::new();
    for l in labs {
        let (reply, _) = self::request(Some(&l), &Request::Inspect).await?;
        all.push(reply.result.unwrap_or_default());
    }
    Ok(all)
}

/// `scratchnet inspect [--json]`: every running lab's nodes.
pub async fn inspect(lab: Option<&str>, json: bool) -> Result<()> {
    let labs = lab_nodes(lab).await?;
    if json {
        crate::print_out(&format!("{}\n", serde_json::to_string_pretty(&labs)?))?;
        return Ok(());
    }
    for l in &labs {
        let nodes: Vec<lab::running::Node> = serde_json::from_value(l["nodes"].clone())?;
        let name = l["lab"].as_str().unwrap_or("?");
        crate::print_out(&crate::inspect::render(
            name,
            l["pid"].as_u64().unwrap_or(0),
            &nodes,
        ))?;
    }
    Ok(())
}

/// `scratchnet pingall`: which hosts reach which.
pub async fn pingall(lab: Option<&str>) -> Result<()> {
    let labs = lab_nodes(Some(&find_lab(lab)?)).await?;
    let nodes: Vec<lab::running::Node> = serde_json::from_value(labs[0]["nodes"].clone())?;
    crate::print_out(&crate::inspect::pingall(&nodes)?)?;
    Ok(())
}

/// `scratchnet trace --inject HOST SPEC`: what a frame would meet.
pub async fn inject(lab: Option<&str>, host: &str, spec: &str, json: bool) -> Result<()> {
    let request = Request::Inject {
        host: host.to_owned(),
        spec: spec.to_owned(),
        text: !json,
    };
    print_records(lab, &request, json).await
}

/// Prints the trace records a request streams back, until the lab ends
/// the stream or Ctrl-C.
async fn print_records(lab: Option<&str>, request: &Request, json: bool) -> Result<()> {
    let (_, mut reader) = self::request(lab, request).await?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut line = String::new();
    let mut out = std::io::stdout();
    // The lab ends the stream after COUNT frames (and what they caused).
    loop {
        line.clear();
        tokio::select! {
            r = reader.read_line(&mut line) => if r? == 0 { break },
            _ = interrupt.recv() => break,
        }
        if json {
            out.write_all(line.as_bytes())?;
        } else {
            let record: serde_json::Value = serde_json::from_str(&line)
                .context("the lab sent a trace record that is not JSON")?;
            out.write_all(record["text"].as_str().unwrap_or_default().as_bytes())?;
        }
        out.flush()?;
    }
    Ok(())
}

/// Bytes encoded but not yet written out.
#[derive(Clone, Default)]
pub struct Pending(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Pending {
    fn drain_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut buf = self.0.borrow_mut();
        out.write_all(&buf)?;
        out.flush()?;
        buf.clear();
        Ok(())
    }
}

impl Write for Pending {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
