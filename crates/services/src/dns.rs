//! An authoritative DNS server (the answers are the `dns` crate's): UDP
//! and TCP on one port, TCP with two-byte length framing (RFC 1035 4.2.2),
//! several queries per connection answered in order (RFC 7766), zone
//! transfers (AXFR) in as many messages as they take, and an idle timeout
//! so that silent clients hold nothing.

use crate::control::refuse;
use crate::{lock, Answer, Command, Control, Reply, Resolution, ResolutionStep, ResolverCommand};
use dns::hickory_proto::op::{Message, Query, ResponseCode};
use dns::hickory_proto::rr::{Name, RecordType};
use dns::{Authority, Transport};
use hoststack::{Host, TcpListener, TcpStream, UdpSocket};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use wire::ratelimit::PerClient;

/// The DNS port.
pub const PORT: u16 = 53;
/// How long a TCP connection may sit without a query (RFC 7766 6.2.3
/// suggests seconds, not minutes).
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// Response rate limiting of an authoritative server's UDP answers, as
/// NSD and BIND do it: per client /24, `per_sec` answers a second in
/// bursts of twice that; past it every `slip`-th answer goes out
/// truncated (TC=1: a real client, whose address a flood may be forging,
/// asks again over TCP, which is never limited) and the others are
/// dropped. An amplifier's victim gets little; a real client still gets
/// its answer.
#[derive(Debug, Clone, Copy)]
pub struct Rrl {
    /// 0: off.
    pub per_sec: u32,
    pub slip: u32,
}

/// /24 prefixes with a budget at most; past it the one heard from least
/// recently is forgotten.
const RRL_PREFIXES: usize = 4096;

counters! {
    /// What an authoritative server did with its queries.
    struct AuthorityCounters {
        /// UDP answers sent.
        answers,
        /// UDP answers past the rate, dropped.
        rrl_dropped,
        /// UDP answers past the rate, sent truncated.
        rrl_slipped,
    }
}

/// An authoritative server's handle: its counters.
struct AuthorityControl(Arc<AuthorityCounters>);

impl Control for AuthorityControl {
    fn status(&self) -> serde_json::Value {
        self.0.json()
    }

    fn request(&self, command: Command) -> Reply {
        refuse(&command, "no commands (it is an authoritative server)")
    }
}

/// Binds UDP and TCP `port`, and serves `authority` on them until the
/// task is dropped, its UDP answers limited by `rrl`.
pub fn serve(host: Host, authority: Authority, port: u16, rrl: Rrl) -> io::Result<crate::Serving> {
    let udp = host.bind_udp(port)?;
    let listener = host.listen(port, 256)?;
    let counters = Arc::new(AuthorityCounters::default());
    let control: Arc<dyn Control> = Arc::new(AuthorityControl(counters.clone()));
    let task = authoritative(udp, listener, Arc::new(authority), rrl, counters);
    Ok((control, Box::pin(task)))
}

async fn authoritative(
    udp: UdpSocket,
    listener: TcpListener,
    authority: Arc<Authority>,
    rrl: Rrl,
    counters: Arc<AuthorityCounters>,
) -> io::Result<()> {
    let datagrams = {
        let authority = authority.clone();
        async move {
            let started = crate::balancing::now();
            let mut budgets = (rrl.per_sec > 0)
                .then(|| PerClient::new(rrl.per_sec, rrl.per_sec.saturating_mul(2), RRL_PREFIXES));
            let mut limited = 0u64;
            let mut buf = vec![0u8; 65536];
            loop {
                let (n, from, trace) = udp.recv_traced(&mut buf).await?;
                let Some(mut answer) = authority.answer(&buf[..n], Transport::Udp, from.ip())
                else {
                    continue;
                };
                if let Some(budgets) = &mut budgets {
                    if !budgets.allow(crate::ticks_since(started), rrl_prefix(from.ip())) {
                        limited += 1;
                        let slip = rrl.slip > 0 && limited.is_multiple_of(u64::from(rrl.slip));
                        match dns::truncated(&answer).filter(|_| slip) {
                            Some(cut) => {
                                counters.rrl_slipped.fetch_add(1, Ordering::Relaxed);
                                answer = cut;
                            }
                            None => {
                                counters.rrl_dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        }
                    }
                }
                counters.answers.fetch_add(1, Ordering::Relaxed);
                udp.send_to_answering(&answer, from, trace).await?;
            }
        }
    };
    let connections = async move {
        loop {
            let (stream, peer) = listener.accept().await?;
            tokio::spawn(tcp_client(stream, peer.ip(), authority.clone()));
        }
    };
    tokio::select! {
        r = datagrams => r,
        r = connections => r,
    }
}

/// Answers the queries of one TCP connection, in order, until it closes
/// or idles.
/// The network response rate limiting counts a client in (BIND's
/// defaults): its /24, or its /56 for IPv6.
fn rrl_prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & 0xffff_ff00).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & !((1u128 << 72) - 1)).into()),
    }
}

async fn tcp_client(mut stream: TcpStream, peer: std::net::IpAddr, authority: Arc<Authority>) {
    let mut query = Vec::new();
    'queries: loop {
        if !read_framed(&mut stream, &mut query).await {
            break;
        }
        let answers = authority.transfer(&query, peer).unwrap_or_else(|| {
            authority
                .answer(&query, Transport::Tcp, peer)
                .into_iter()
                .collect()
        });
        for answer in answers {
            if !write_framed(&mut stream, &answer).await {
                break 'queries;
            }
        }
    }
    let _ = stream.shutdown().await;
}

/// Reads one length-framed message (RFC 1035 4.2.2) into `buf`; false
/// when the connection closed, failed or idled past [`TCP_IDLE`].
async fn read_framed(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    // The whole message within the idle time, not just its length: a
    // client that sends a length and stops holds nothing longer.
    let read = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        stream.read_exact(buf).await
    };
    matches!(tokio::time::timeout(TCP_IDLE, read).await, Ok(Ok(_)))
}

/// Writes one message with its two-byte length.
async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> bool {
    let len = (message.len().min(usize::from(u16::MAX)) as u16).to_be_bytes();
    stream.write_all(&len).await.is_ok() && stream.write_all(message).await.is_ok()
}

/// Where a resolver's answer goes back to.
enum Client {
    /// A UDP client (the resolver fits answers to its buffer).
    Udp(SocketAddr),
    Tcp(mpsc::Sender<Vec<u8>>),
    /// A question `scratchnet trace dns` asked: its steps, then its answer.
    Traced(mpsc::Sender<Traced>),
}

/// What a traced question's asker gets.
enum Traced {
    Step(dns::Step),
    Answer(Vec<u8>),
}

/// Steps one traced question may take at most (the resolver's own query
/// limits keep it far below).
const MAX_STEPS: usize = 1024;

/// What an upstream query's socket holds each way: the resolver offers
/// 1,232 bytes by EDNS, and a larger answer comes truncated (then TCP).
const UPSTREAM_BUFFER: usize = 4096;

/// Random source ports an upstream query tries before it gives up.
const PORT_TRIES: usize = 16;

/// How long `scratchnet trace dns` waits for its answer.
const TRACE_TIMEOUT: Duration = Duration::from_secs(15);

/// A recursive resolver (the `dns` crate's) serving clients on UDP and
/// TCP `port`; each upstream query goes out from its own socket on the
/// random port the resolver chose.
///
/// What the resolver does in answer to a datagram goes out as that
/// datagram's answer (an upstream query answers the client's question, the
/// next query answers the referral, the client's answer the last reply),
/// so that a trace of a client's question follows the whole resolution,
/// each step of it noted on the frame that caused it.
struct ResolverService {
    host: Host,
    resolver: Mutex<dns::Resolver>,
    udp: hoststack::UdpSocket,
    /// How long an upstream server has to answer.
    timeout: Duration,
    clients: Mutex<HashMap<u64, Client>>,
    next_client: AtomicU64,
}

impl ResolverService {
    fn resolver(&self) -> MutexGuard<'_, dns::Resolver> {
        lock(&self.resolver)
    }

    fn client(&self, client: Client) -> u64 {
        let id = self.next_client.fetch_add(1, Ordering::Relaxed);
        lock(&self.clients).insert(id, client);
        id
    }

    /// Where the answer to `id` goes, which is forgotten.
    fn take_client(&self, id: u64) -> Option<Client> {
        lock(&self.clients).remove(&id)
    }

    /// Carries out what the resolver asked for, as the answer to traced
    /// frame `cause` (0 if none).
    fn dispatch(self: &Arc<Self>, actions: Vec<dns::Action>, cause: u64) {
        for action in actions {
            match action {
                dns::Action::Answer { client, message } => match self.take_client(client) {
                    // At once if the socket has room (nearly always); else
                    // from a task that waits for it.
                    Some(Client::Udp(addr))
                        if !self.udp.try_send_to(&message, addr, cause).unwrap_or(true) =>
                    {
                        let me = self.clone();
                        tokio::spawn(async move {
                            let _ = me.udp.send_to_answering(&message, addr, cause).await;
                        });
                    }
                    Some(Client::Tcp(tx)) => {
                        let _ = tx.try_send(message);
                    }
                    Some(Client::Traced(tx)) => {
                        let _ = tx.try_send(Traced::Answer(message));
                    }
                    _ => {}
                },
                dns::Action::Forget { client } => {
                    self.take_client(client);
                }
                dns::Action::Step { clients, step } => {
                    self.host.trace_note(cause, step.name(), step.to_string());
                    let all = lock(&self.clients);
                    for c in clients {
                        if let Some(Client::Traced(tx)) = all.get(&c) {
                            let _ = tx.try_send(Traced::Step(step.clone()));
                        }
                    }
                }
                dns::Action::Query {
                    token,
                    server,
                    source_port,
                    message,
                    tcp: false,
                } => {
                    let query = self
                        .clone()
                        .upstream(token, server, source_port, message, cause);
                    tokio::spawn(query);
                }
                dns::Action::Query {
                    token,
                    server,
                    message,
                    tcp: true,
                    ..
                } => {
                    tokio::spawn(self.clone().upstream_tcp(token, server, message, cause));
                }
            }
        }
    }

    /// One upstream query: out from `source_port` (as the answer to
    /// `cause`), every datagram back offered to the resolver until it has
    /// its answer or time is up.
    async fn upstream(
        self: Arc<Self>,
        token: u64,
        server: IpAddr,
        port: u16,
        message: Vec<u8>,
        cause: u64,
    ) {
        // The resolver's random port, or another random one if that is
        // taken (never the lowest free one: a forger would know it).
        let socket = std::iter::once(port)
            .chain((1..PORT_TRIES).map(|_| self.resolver().random_port()))
            .find_map(|p| self.host.bind_udp_sized(p, UPSTREAM_BUFFER).ok());
        let Some(socket) = socket else {
            return self.timed_out(token, cause);
        };
        let to = SocketAddr::new(server, PORT);
        if socket.send_to_answering(&message, to, cause).await.is_err() {
            return self.timed_out(token, cause);
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut buf = vec![0u8; UPSTREAM_BUFFER];
        loop {
            match tokio::time::timeout_at(deadline, socket.recv_traced(&mut buf)).await {
                Ok(Ok((n, from, trace))) => {
                    let actions = self
                        .resolver()
                        .upstream_answer(now(), token, from, &buf[..n]);
                    self.dispatch(actions, trace);
                    if !self.resolver().is_waiting(token) {
                        return;
                    }
                }
                _ => return self.timed_out(token, cause),
            }
        }
    }

    /// One upstream query over TCP (the UDP answer was truncated).
    async fn upstream_tcp(
        self: Arc<Self>,
        token: u64,
        server: IpAddr,
        message: Vec<u8>,
        cause: u64,
    ) {
        let exchange = async {
            let to = SocketAddr::new(server, PORT);
            let mut stream = self.host.connect(to).await?;
            let len = (message.len() as u16).to_be_bytes();
            stream.write_all(&len).await?;
            stream.write_all(&message).await?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut answer).await?;
            let _ = stream.shutdown().await;
            io::Result::Ok(answer)
        };
        match tokio::time::timeout(self.timeout * 3, exchange).await {
            Ok(Ok(answer)) => {
                let actions = self.resolver().upstream_answer(
                    now(),
                    token,
                    SocketAddr::new(server, PORT),
                    &answer,
                );
                self.dispatch(actions, cause);
                if self.resolver().is_waiting(token) {
                    self.timed_out(token, cause);
                }
            }
            _ => self.timed_out(token, cause),
        }
    }

    fn timed_out(self: &Arc<Self>, token: u64, cause: u64) {
        let actions = self.resolver().upstream_timeout(now(), token);
        self.dispatch(actions, cause);
    }

    /// A question from `from`, brought by traced frame `trace` (0 if none):
    /// resolved with its steps recorded if a trace follows it.
    fn question(self: &Arc<Self>, client: Client, from: IpAddr, query: &[u8], trace: u64) {
        let transport = match client {
            Client::Udp(_) => Transport::Udp,
            Client::Tcp(_) | Client::Traced(_) => Transport::Tcp,
        };
        let traced = trace != 0 || matches!(client, Client::Traced(_));
        let id = self.client(client);
        let actions = if traced {
            self.resolver()
                .traced_query(now(), id, from, transport, query)
        } else {
            self.resolver()
                .client_query(now(), id, from, transport, query)
        };
        self.dispatch(actions, trace);
    }

    /// Resolves `name` `qtype` as a client on the host itself would, and
    /// returns each step and the answer.
    async fn trace(self: Arc<Self>, name: String, qtype: String) -> Result<Resolution, String> {
        let mut name = Name::from_ascii(&name).map_err(|e| format!("bad name `{name}`: {e}"))?;
        name.set_fqdn(true);
        let qtype = RecordType::from_str(&qtype.to_ascii_uppercase())
            .map_err(|_| format!("unknown record type `{qtype}`"))?;
        let mut q = Message::query();
        // The question never crosses a wire: any ID matches it.
        q.metadata.id = 0;
        q.metadata.recursion_desired = true;
        let question = format!("{name} {qtype}");
        q.add_query(Query::query(name, qtype));
        let bytes = q.to_vec().map_err(|e| e.to_string())?;
        let from = match self.host.addresses() {
            (Some(a), _) => IpAddr::V4(a),
            (None, Some(a)) => IpAddr::V6(a),
            (None, None) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        };
        let (tx, mut rx) = mpsc::channel(MAX_STEPS);
        self.question(Client::Traced(tx), from, &bytes, 0);
        let mut steps = Vec::new();
        let answer = tokio::time::timeout(TRACE_TIMEOUT, async {
            while let Some(out) = rx.recv().await {
                match out {
                    Traced::Step(step) => steps.push(ResolutionStep {
                        step: step.name().to_owned(),
                        text: step.to_string(),
                    }),
                    Traced::Answer(message) => return Some(message),
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or("no answer in time")?;
        let answer = Message::from_vec(&answer).map_err(|e| e.to_string())?;
        let lines = |records: &[dns::hickory_proto::rr::Record]| {
            records.iter().map(|r| r.to_string()).collect()
        };
        Ok(Resolution {
            question,
            resolver: from.to_string(),
            steps,
            rcode: mnemonic(answer.metadata.response_code),
            answers: lines(&answer.answers),
            authorities: lines(&answer.authorities),
        })
    }
}

/// A response code as dig prints it (RFC 1035, RFC 6895).
fn mnemonic(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// The time given to the resolver: tokio's clock, virtual in a simulation.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// The resolver's handle: it takes traces and flushes; its status is
/// its counters and how many names its cache holds.
struct ResolverControl(Arc<ResolverService>);

impl Control for ResolverControl {
    fn status(&self) -> serde_json::Value {
        let r = self.0.resolver();
        let mut status = serde_json::json!(r.counters());
        let (entries, bytes) = r.cache_usage();
        status["cache_entries"] = serde_json::json!(entries);
        status["cache_bytes"] = serde_json::json!(bytes);
        status
    }

    fn request(&self, command: Command) -> Reply {
        let Command::Resolver(command) = command else {
            return refuse(&command, "trace and flush");
        };
        let service = self.0.clone();
        Box::pin(async move {
            match command {
                ResolverCommand::Flush { name } => {
                    let name = match name {
                        Some(n) => {
                            Some(Name::from_ascii(&n).map_err(|e| format!("bad name `{n}`: {e}"))?)
                        }
                        None => None,
                    };
                    let flushed = service.resolver().flush_cache(name.as_ref());
                    Ok(Answer::Flushed(flushed as u64))
                }
                ResolverCommand::Trace { name, qtype } => {
                    service.trace(name, qtype).await.map(Answer::Resolution)
                }
            }
        })
    }
}

/// A recursive resolver with `config` on UDP and TCP `port`, its
/// randomness keyed by `key` ([`crate::World::key`]): its handle for
/// commands, and the task that serves until dropped.
pub fn resolver(
    host: Host,
    config: dns::ResolverConfig,
    port: u16,
    key: [u8; 32],
) -> io::Result<crate::Serving> {
    let service = Arc::new(ResolverService {
        udp: host.bind_udp(port)?,
        timeout: config.upstream_timeout,
        host: host.clone(),
        resolver: Mutex::new(dns::Resolver::new(config, key)),
        clients: Mutex::new(HashMap::new()),
        next_client: AtomicU64::new(1),
    });
    let listener = host.listen(port, 256)?;
    let control: Arc<dyn Control> = Arc::new(ResolverControl(service.clone()));
    let datagrams = {
        let service = service.clone();
        async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let (n, from, trace) = service.udp.recv_traced(&mut buf).await?;
                service.question(Client::Udp(from), from.ip(), &buf[..n], trace);
            }
        }
    };
    let connections = async move {
        loop {
            let (stream, peer) = listener.accept().await?;
            tokio::spawn(resolver_tcp_client(stream, peer.ip(), service.clone()));
        }
    };
    Ok((
        control,
        Box::pin(async move {
            tokio::select! {
                r = datagrams => r,
                r = connections => r,
            }
        }),
    ))
}

/// One TCP client of the resolver: its questions one after another.
async fn resolver_tcp_client(mut stream: TcpStream, from: IpAddr, service: Arc<ResolverService>) {
    let mut query = Vec::new();
    loop {
        if !read_framed(&mut stream, &mut query).await {
            break;
        }
        let (tx, mut rx) = mpsc::channel(1);
        service.question(Client::Tcp(tx), from, &query, 0);
        let Some(answer) = rx.recv().await else { break };
        if !write_framed(&mut stream, &answer).await {
            break;
        }
    }
    let _ = stream.shutdown().await;
}
