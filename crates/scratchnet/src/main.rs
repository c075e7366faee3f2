//! The `scratchnet` command: parses the command line, builds the tokio
//! runtime, and maps errors to a one-line message and an exit code.
//! Everything else lives in the modules below.

// Printing to stdout is this command's job; libraries never do it.
#![allow(clippy::print_stdout)]

mod control;
mod down;
mod graph;
mod inspect;
mod neigh;
mod netns;
mod pcapng;
mod render;
mod shell;
mod state;
mod up;
mod web;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// A small Internet in one Linux box: switches, routers and services in
/// userspace, with real network namespaces as its hosts.
#[derive(Debug, Parser)]
#[command(name = "scratchnet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Color in the log: auto (on a terminal, unless NO_COLOR is set),
    /// always or never.
    #[arg(long, global = true, default_value = "auto", value_name = "WHEN")]
    color: Color,
    /// More log detail (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether to color what goes to stderr.
    fn on_stderr(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::IsTerminal::is_terminal(&std::io::stderr())
            }
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a lab and run it in the foreground until Ctrl-C (needs root).
    Up {
        /// Topology file; without it, the built-in reference lab.
        file: Option<PathBuf>,
        /// Serve the lab's live page (topology, link rates, paths, tables,
        /// capture, control) and /metrics on ADDR: the loopback and a
        /// free port if none is given; the address is printed with its
        /// token (docs/web.md)
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = web::DEFAULT_ADDR)]
        web: Option<std::net::SocketAddr>,
    },
    /// Remove what a crashed `up` left behind (needs root).
    Down {
        /// Topology file of the lab; without it, every crashed lab.
        file: Option<PathBuf>,
    },
    /// Validate a topology file (`-` for stdin) and explain every
    /// problem. Exits 0 if the lab can run, 1 if it has problems, 2 if
    /// the file cannot be read.
    Check {
        /// The topology file; `-` reads it from standard input.
        file: PathBuf,
        /// text (for people) or json (for editors and CI).
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Print the reference lab as a topology file to copy and edit, or
    /// one of the small labs for learning (`--list` names them).
    Example {
        /// one-switch, two-lans, nat, dhcp, mtu or satellite.
        name: Option<String>,
        /// List the small labs, easiest first.
        #[arg(long)]
        list: bool,
    },
    /// Print a shell completion script: `scratchnet completions bash >
    /// /etc/bash_completion.d/scratchnet`.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff): `scratchnet man | man -l -`.
    Man,
    /// Draw a lab (the reference lab without FILE): Graphviz dot,
    /// Mermaid, or SVG through Graphviz. No root, no running lab needed.
    Graph {
        /// A topology file (the reference lab without one).
        file: Option<PathBuf>,
        /// dot, mermaid or svg.
        #[arg(long, default_value = "dot")]
        format: String,
    },
    /// Run a command in a host's namespace: `exec alice -- ping -c 3
    /// web1` (as `ip netns exec`, for a host of a running lab).
    Exec {
        /// A host of the lab (its namespace).
        host: String,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
    /// An interactive shell in a host's namespace; the prompt names it.
    Shell {
        /// A host of the lab (its namespace).
        host: String,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
    /// Every node of the running labs: hosts, service hosts, routers,
    /// their interfaces, addresses and MACs.
    Inspect {
        /// Machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
    /// A DHCP host's lease, through the lab's own DHCP client (what
    /// dhclient says is shown): `dhcp bob release` gives the address back
    /// (DHCPRELEASE), `dhcp bob renew` leases one anew (DISCOVER, OFFER,
    /// REQUEST, ACK).
    Dhcp {
        /// A host of the lab whose address is `dhcp`.
        host: String,
        /// `release` or `renew`.
        action: String,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
    /// Which hosts reach which: each host pings each host and service
    /// host once, and the matrix is printed by name.
    Pingall {
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
    /// Show ports, counters and MAC tables of a running lab, or of one
    /// of its nodes.
    Status {
        /// Only this switch, router, service host or port.
        node: Option<String>,
        /// Print JSON instead of tables.
        #[arg(long, conflicts_with = "brief")]
        json: bool,
        /// One line per switch, router and service host.
        #[arg(long)]
        brief: bool,
        /// The lab's counters in Prometheus's text exposition format
        /// (for a node_exporter textfile collector, say).
        #[arg(long, conflicts_with_all = ["node", "json", "brief", "watch"])]
        prometheus: bool,
        /// Print it again every second, until Ctrl-C.
        #[arg(long)]
        watch: bool,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
    /// Capture ports' frames as pcapng (one interface per port, named
    /// after it, with each frame's direction), to a file or a pipe.
    Capture {
        /// The ports: hosts, service hosts, `ROUTER.SWITCH` for a router
        /// interface, `ROUTER.TUN` for an uplink.
        #[arg(required = true)]
        ports: Vec<String>,
        /// Write to this file instead of stdout.
        #[arg(short = 'w')]
        write: Option<PathBuf>,
        /// Only frames that match, as tcpdump says it: host, net, port,
        /// tcp, udp, icmp, arp, and, or, not.
        #[arg(long, short = 'f', default_value = "")]
        filter: String,
        /// Stop after this many frames.
        #[arg(short = 'c')]
        count: Option<u64>,
        /// Classic pcap instead of pcapng (one port only).
        #[arg(long)]
        pcap: bool,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
    /// Show a balancer's pool (every balancer's without LB), or change it
    /// live: `lb LB drain BACKEND` (no new requests; those under way
    /// finish), `lb LB restore BACKEND`, `lb LB weight BACKEND N`, `lb LB
    /// add BACKEND A.B.C.D:PORT [N]`, `lb LB remove BACKEND`.
    Lb {
        /// The balancer service.
        lb: Option<String>,
        /// drain, restore, weight, add or remove.
        action: Option<String>,
        /// The backend, as the pool names it.
        backend: Option<String>,
        /// With `weight`: the new weight (1-1000); with `add`: the
        /// backend's address and port, then its weight if not 1.
        more: Vec<String>,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
    /// Show a cache's store (every cache's without EDGE), or purge it:
    /// `cache EDGE purge URL` forgets one URL (`http://HOST/PATH` or
    /// `HOST/PATH`), `cache EDGE purge --prefix URL` every URL under it.
    Cache {
        /// The cache service.
        cache: Option<String>,
        /// purge.
        action: Option<String>,
        /// The URL, or with --prefix the start of the URLs.
        url: Option<String>,
        /// Purge every URL that starts with URL.
        #[arg(long)]
        prefix: bool,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
    /// Impair a link as netem would, or take it down: `link alice --delay
    /// 50ms --loss 1%`, `link home-gw.isp --rate 10mbit`, `link alice
    /// down`, `link alice up`, `link alice --clear`; with no change, show
    /// it (docs/impairment.md).
    Link {
        /// The port: a host or service host, `ROUTER.SWITCH` for a router
        /// interface, `ROUTER.TUN` for an uplink.
        port: String,
        /// `down` (no carrier: every frame is lost both ways) or `up`.
        state: Option<String>,
        /// Propagation delay added to each frame, e.g. 50ms.
        #[arg(long)]
        delay: Option<String>,
        /// Each frame's delay varies by up to this either way, e.g. 5ms.
        #[arg(long)]
        jitter: Option<String>,
        /// Share of frames lost, e.g. 1%.
        #[arg(long)]
        loss: Option<String>,
        /// Share of frames sent twice, e.g. 0.1%.
        #[arg(long)]
        duplicate: Option<String>,
        /// Share of frames sent at once, ahead of those delayed, e.g. 1%.
        #[arg(long)]
        reorder: Option<String>,
        /// The link's rate in bits per second, e.g. 10mbit.
        #[arg(long)]
        rate: Option<String>,
        /// Bytes the rate limit queues before it drops, e.g. 64kb.
        #[arg(long)]
        queue: Option<String>,
        /// Which frames: out (what the port's host sends; the default, as
        /// netem on its interface), in, or both.
        #[arg(long)]
        direction: Option<String>,
        /// Which frames: all (the default), ipv4 (with ARP) or ipv6; break
        /// one family and watch clients fall back to the other.
        #[arg(long)]
        family: Option<String>,
        /// Start from a perfect link instead of the link's settings now.
        #[arg(long)]
        clear: bool,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
    /// The lab's resolver: `dns flush [NAME]` empties its cache (of one
    /// name, or all), as `unbound-control flush`, so the next question
    /// walks from the root again.
    Dns {
        #[command(subcommand)]
        what: DnsCommand,
    },
    /// Follow frames entering at a port through the lab, every decision
    /// on the way: switch, route, NAT, ARP, ICMP, drop (docs/trace.md).
    /// With --inject, what a frame would meet, without sending it. `trace
    /// dns NAME [TYPE]`: a resolver's walk from the root, step by step.
    #[command(args_conflicts_with_subcommands = true)]
    Trace {
        #[command(subcommand)]
        what_of: Option<TraceOf>,
        /// The port frames enter at (a host's name); every port if absent.
        port: Option<String>,
        /// With --inject: the frame, `PROTO DST[:PORT] [from SRC[:PORT]]
        /// [ttl N]`, like `tcp 203.0.113.11:80`.
        what: Option<String>,
        /// Run a made-up frame from the host PORT through the live lab's
        /// tables and print what would happen to it; nothing is sent and
        /// no table changes.
        #[arg(long, requires = "port", requires = "what")]
        inject: bool,
        /// Which frames, as tcpdump says it: host, net, port, tcp, udp,
        /// icmp, arp, and, or, not.
        #[arg(long, short = 'f', default_value = "")]
        filter: String,
        /// Stop after this many frames.
        #[arg(short = 'c')]
        count: Option<u64>,
        /// One JSON object per frame, for tools.
        #[arg(long)]
        json: bool,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum DnsCommand {
    /// Forget what the resolver cached for NAME (every record type), or
    /// everything.
    Flush {
        /// The name, like www.example.com; the whole cache if absent.
        name: Option<String>,
        /// The resolver service, when the lab has more than one.
        #[arg(long)]
        resolver: Option<String>,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TraceOf {
    /// Resolve NAME through the lab's resolver and print each step: cache
    /// hits and misses, every server asked and what it answered, referrals,
    /// glue and bailiwick decisions, round-trip times (docs/dns.md).
    Dns {
        /// The name to resolve, like www.example.com.
        name: String,
        /// The record type (A, AAAA, MX, TXT, NS, PTR, SRV...).
        #[arg(default_value = "A")]
        qtype: String,
        /// The resolver service, when the lab has more than one.
        #[arg(long)]
        resolver: Option<String>,
        /// JSON, for tools.
        #[arg(long)]
        json: bool,
        /// The lab's name, when more than one is running.
        #[arg(long)]
        lab: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn,scratchnet=info",
        (false, 1) => "info,scratchnet=debug,fabric=debug,services=debug",
        (false, _) => "debug,scratchnet=trace,fabric=trace,services=trace",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(cli.color.on_stderr())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()),
        )
        .init();
    log_panics();
    if let Command::Check { file, format } = &cli.command {
        return check(file, format);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`scratchnet man | head`): the end of the
        // output, as SIGPIPE ends a C program, not an error.
        Err(e) if e.chain().any(is_broken_pipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scratchnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `scratchnet dhcp HOST release|renew`: the lab's DHCP clients for that
/// host (DHCPv4, DHCPv6 or both), with the files `up` gave them, so that
/// a release stops the client that holds the lease and a renew leaves
/// one client running.
fn dhcp(lab: Option<&str>, host: &str, action: &str) -> Result<()> {
    let lab = control::find_lab(lab)?;
    let dir = state::lab_dir(&lab);
    let families: Vec<netns::Dhcp> = [netns::Dhcp::V4, netns::Dhcp::V6]
        .into_iter()
        .filter(|f| topology::is_valid_name(host) && f.lease_file(&dir, host).exists())
        .collect();
    if families.is_empty() {
        anyhow::bail!("host `{host}` of lab `{lab}` takes no address by DHCP (only hosts with `address = \"dhcp\"` or `address6 = \"dhcp6\"` have a lease)");
    }
    for family in families {
        match action {
            "release" => netns::dhclient(host, &dir, netns::Lease::Release, family, true)?,
            "renew" => {
                netns::stop_dhclient(&family.pid_file(&dir, host));
                netns::dhclient(host, &dir, netns::Lease::Acquire, family, true)?
            }
            other => anyhow::bail!("`{other}`: say `release` or `renew`"),
        }
    }
    Ok(())
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Writes `text` to standard output; a reader that went away comes back
/// as a BrokenPipe error, which ends the command quietly (see `main`).
pub fn print_out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Panics go to the log: the first with its backtrace, the rest as one
/// line each. The fabric survives a panic on one frame (it counts it as
/// `internal-error` on the port), so the log is where a developer learns
/// of it.
fn log_panics() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static FIRST_LOGGED: AtomicBool = AtomicBool::new(false);
    std::panic::set_hook(Box::new(|info| {
        if FIRST_LOGGED.swap(true, Ordering::Relaxed) {
            tracing::error!("panic: {info}");
        } else {
            let trace = std::backtrace::Backtrace::force_capture();
            tracing::error!("panic: {info}\n{trace}");
        }
    }));
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Check { .. } => unreachable!("handled in main: it has exit codes of its own"),
        Command::Graph { file, format } => graph::run(&load(file.as_deref())?, &format),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "scratchnet", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
            Ok(())
        }
        Command::Example { name, list } => example(name.as_deref(), list),
        Command::Up { file, web } => {
            let lab = load(file.as_deref())?;
            tokio_runtime()?.block_on(up::run(lab, web))
        }
        Command::Down { file } => {
            let lab = file.as_deref().map(topology::load).transpose()?;
            down::run(lab.as_ref().map(|l| l.name.as_str()))
        }
        Command::Exec { host, command, lab } => shell::exec(&host, lab.as_deref(), &command),
        Command::Shell { host, lab } => shell::shell(&host, lab.as_deref()),
        Command::Inspect { json, lab } => {
            tokio_runtime()?.block_on(control::inspect(lab.as_deref(), json))
        }
        Command::Pingall { lab } => tokio_runtime()?.block_on(control::pingall(lab.as_deref())),
        Command::Dhcp { host, action, lab } => dhcp(lab.as_deref(), &host, &action),
        Command::Status {
            node,
            json,
            brief,
            prometheus,
            watch,
            lab,
        } => {
            let args = control::StatusArgs {
                node: node.as_deref(),
                json,
                brief,
                prometheus,
                watch,
            };
            tokio_runtime()?.block_on(control::status(lab.as_deref(), args))
        }
        Command::Capture {
            ports,
            write,
            filter,
            count,
            pcap,
            lab,
        } => {
            let args = control::CaptureArgs {
                ports: &ports,
                file: write.as_deref(),
                filter: &filter,
                count,
                pcap,
            };
            tokio_runtime()?.block_on(control::capture(lab.as_deref(), args))
        }
        Command::Cache {
            cache,
            action,
            url,
            prefix,
            lab,
        } => {
            let purge = match (action.as_deref(), url) {
                (None, _) => None,
                (Some("purge"), Some(url)) if prefix => {
                    Some(services::CacheCommand::PurgePrefix { prefix: url })
                }
                (Some("purge"), Some(url)) => Some(services::CacheCommand::Purge { url }),
                _ => anyhow::bail!(
                    "say `scratchnet cache EDGE purge URL` or `scratchnet cache EDGE purge --prefix URL`"
                ),
            };
            tokio_runtime()?.block_on(control::cache(lab.as_deref(), cache.as_deref(), purge))
        }
        Command::Lb {
            lb,
            action,
            backend,
            more,
            lab,
        } => {
            let more: Vec<&str> = more.iter().map(String::as_str).collect();
            let change = match (action.as_deref(), backend, more.as_slice()) {
                (None, _, _) => None,
                (Some(action), Some(b), more) => Some(pool_command(action, b, more)?),
                (Some(_), None, _) => anyhow::bail!("name the backend: {LB_USAGE}"),
            };
            tokio_runtime()?.block_on(control::lb(lab.as_deref(), lb.as_deref(), change))
        }
        Command::Link {
            port,
            state,
            delay,
            jitter,
            loss,
            duplicate,
            reorder,
            rate,
            queue,
            direction,
            family,
            clear,
            lab,
        } => {
            let up = match state.as_deref() {
                None => None,
                Some("up") => Some(true),
                Some("down") => Some(false),
                Some(other) => anyhow::bail!("`{other}`: say `up` or `down`"),
            };
            let set = [
                ("delay", delay),
                ("jitter", jitter),
                ("loss", loss),
                ("duplicate", duplicate),
                ("reorder", reorder),
                ("rate", rate),
                ("queue", queue),
                ("direction", direction),
                ("family", family),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?)))
            .collect();
            tokio_runtime()?.block_on(control::link(lab.as_deref(), &port, clear, set, up))
        }
        Command::Dns {
            what:
                DnsCommand::Flush {
                    name,
                    resolver,
                    lab,
                },
        } => tokio_runtime()?.block_on(control::dns_flush(
            lab.as_deref(),
            resolver.as_deref(),
            name.as_deref(),
        )),
        Command::Trace {
            what_of:
                Some(TraceOf::Dns {
                    name,
                    qtype,
                    resolver,
                    json,
                    lab,
                }),
            ..
        } => tokio_runtime()?.block_on(control::trace_dns(
            lab.as_deref(),
            resolver.as_deref(),
            &name,
            &qtype,
            json,
        )),
        Command::Trace {
            what_of: None,
            port,
            what,
            inject,
            filter,
            count,
            json,
            lab,
        } => {
            let rt = tokio_runtime()?;
            match (inject, port.as_deref(), what.as_deref()) {
                (true, Some(host), Some(what)) => {
                    rt.block_on(control::inject(lab.as_deref(), host, what, json))
                }
                (false, port, None) => rt.block_on(control::trace(
                    lab.as_deref(),
                    port,
                    &filter,
                    count,
                    json,
                )),
                _ => anyhow::bail!("a frame to inject goes with --inject: scratchnet trace --inject HOST 'tcp 203.0.113.11:80'"),
            }
        }
    }
}

fn load(file: Option<&std::path::Path>) -> Result<topology::Topology> {
    Ok(match file {
        Some(path) => topology::load(path)?,
        None => topology::reference_lab(),
    })
}

/// `scratchnet example [NAME] [--list]`.
fn example(name: Option<&str>, list: bool) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout();
    if list {
        let _ = writeln!(
            out,
            "{:<12} the reference lab: home, office, ISP, data centre, DNS, balancer (no NAME)",
            "reference"
        );
        for (name, text) in topology::EXAMPLES {
            let first = text.lines().next().unwrap_or_default();
            let _ = writeln!(out, "{name:<12} {}", first.trim_start_matches("# "));
        }
        let _ = writeln!(
            out,
            "\nscratchnet example NAME > NAME.toml && sudo scratchnet up NAME.toml"
        );
        return Ok(());
    }
    let text = match name {
        None | Some("reference") => topology::REFERENCE_LAB,
        Some(n) => match topology::EXAMPLES.iter().find(|(e, _)| *e == n) {
            Some((_, text)) => text,
            None => {
                let names: Vec<&str> = topology::EXAMPLES.iter().map(|(e, _)| *e).collect();
                anyhow::bail!("no example `{n}`: say one of {}", names.join(", "));
            }
        },
    };
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

/// Problems `check` prints as text before it only counts the rest.
const SHOWN_PROBLEMS: usize = 50;

/// `scratchnet check FILE|-`: 0 if the lab can run, 1 if it has
/// problems, 2 if the file cannot be read.
fn check(file: &std::path::Path, format: &str) -> ExitCode {
    use std::io::{Read, Write};
    let json = match format {
        "text" => false,
        "json" => true,
        other => {
            eprintln!("scratchnet: `{other}` is not a format: say text or json");
            return ExitCode::from(2);
        }
    };
    let (name, read) = if file.as_os_str() == "-" {
        let mut text = String::new();
        let read = std::io::stdin().read_to_string(&mut text).map(|_| text);
        ("<stdin>".to_owned(), read)
    } else {
        (file.display().to_string(), std::fs::read_to_string(file))
    };
    let source = match read {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scratchnet: cannot read {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let (problems, summary) = match topology::parse(&source, &name) {
        Ok(lab) => (
            Vec::new(),
            format!(
                "{name}: ok: lab `{}` with {}, {}, {}, {}",
                lab.name,
                render::count(lab.switches.len() as u64, "switch", "switches"),
                render::count(lab.hosts.len() as u64, "host", "hosts"),
                render::count(lab.routers.len() as u64, "router", "routers"),
                render::count(lab.services.len() as u64, "service", "services")
            ),
        ),
        Err(e) => {
            let n = e.diagnostics.len();
            let s = if n == 1 { "" } else { "s" };
            (e.diagnostics, format!("{name}: {n} problem{s}"))
        }
    };
    // A reader that goes away (`| head`) ends the output, not the process.
    let mut stdout = std::io::stdout();
    if json {
        let out =
            serde_json::json!({ "file": name, "ok": problems.is_empty(), "problems": problems });
        let _ = writeln!(stdout, "{out}");
    } else if problems.is_empty() {
        let _ = writeln!(stdout, "{summary}");
    } else {
        for d in problems.iter().take(SHOWN_PROBLEMS) {
            eprintln!("{d}\n");
        }
        if problems.len() > SHOWN_PROBLEMS {
            eprintln!(
                "... and {} more (--format json lists them all)",
                problems.len() - SHOWN_PROBLEMS
            );
        }
        eprintln!("{summary}");
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// How `scratchnet lb` changes a pool.
const LB_USAGE: &str = "say `scratchnet lb LB drain|restore|remove BACKEND`, `lb LB weight BACKEND N` or `lb LB add BACKEND ADDR:PORT [N]`";

/// The pool change `scratchnet lb LB ACTION BACKEND MORE...` asks for.
fn pool_command(action: &str, backend: String, more: &[&str]) -> Result<services::PoolCommand> {
    use services::PoolCommand;
    let weight = |w: &str| {
        w.parse::<u32>()
            .map_err(|_| anyhow::anyhow!("`{w}` is no weight (a whole number, 1 to 1000)"))
    };
    let addr = |a: &str| {
        a.parse::<std::net::SocketAddr>()
            .map_err(|_| anyhow::anyhow!("`{a}` is no ADDR:PORT (10.0.2.30:80, [2001:db8::30]:80)"))
    };
    Ok(match (action, more) {
        ("drain", []) => PoolCommand::Drain(backend),
        ("restore", []) => PoolCommand::Restore(backend),
        ("remove", []) => PoolCommand::Remove(backend),
        ("weight", [w]) => PoolCommand::Weight {
            backend,
            weight: weight(w)?,
        },
        ("add", [a]) => PoolCommand::Add {
            backend,
            addr: addr(a)?,
            weight: 1,
        },
        ("add", [a, w]) => PoolCommand::Add {
            backend,
            addr: addr(a)?,
            weight: weight(w)?,
        },
        _ => anyhow::bail!("{LB_USAGE}"),
    })
}
