//! An authoritative DNS server (the answers are the `dns` crate's): UDP
//! and TCP on one port, TCP with two-byte length framing (RFC 1035 4.2.2),
//! several queries per connection answered in order (RFC 7766), zone
//! transfers (AXFR) in as many messages as they take, and an idle timeout
//! so that silent clients hold nothing.

use dns::{Authority, Transport};
use hoststack::{Host, TcpStream};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The DNS port.
pub const PORT: u16 = 53;
/// How long a TCP connection may sit without a query (RFC 7766 6.2.3
/// suggests seconds, not minutes).
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// Serves `authority` on UDP and TCP `port` until the task is dropped.
pub async fn serve(host: Host, authority: Authority, port: u16) -> io::Result<()> {
    let authority = Arc::new(authority);
    let udp = host.bind_udp(port)?;
    let listener = host.listen(port, 256)?;
    let datagrams = {
        let authority = authority.clone();
        async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let (n, from) = udp.recv_from(&mut buf).await?;
                if let Some(answer) = authority.answer(&buf[..n], Transport::Udp) {
                    udp.send_to(&answer, from).await?;
                }
            }
        }
    };
    let connections = async move {
        loop {
            let (stream, peer) = listener.accept().await?;
            tokio::spawn(tcp_client(stream, *peer.ip(), authority.clone()));
        }
    };
    tokio::select! {
        r = datagrams => r,
        r = connections => r,
    }
}

/// Answers the queries of one TCP connection, in order, until it closes
/// or idles.
async fn tcp_client(mut stream: TcpStream, peer: std::net::Ipv4Addr, authority: Arc<Authority>) {
    let mut query = Vec::new();
    'queries: loop {
        if !read_framed(&mut stream, &mut query).await {
            break;
        }
        let answers = authority.transfer(&query, peer).unwrap_or_else(|| {
            authority
                .answer(&query, Transport::Tcp)
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
    let mut len = [0u8; 2];
    if !matches!(
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await,
        Ok(Ok(_))
    ) {
        return false;
    }
    buf.resize(usize::from(u16::from_be_bytes(len)), 0);
    stream.read_exact(buf).await.is_ok()
}

/// Writes one message with its two-byte length.
async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> bool {
    let len = (message.len().min(usize::from(u16::MAX)) as u16).to_be_bytes();
    stream.write_all(&len).await.is_ok() && stream.write_all(message).await.is_ok()
}

/// Where a resolver's answer goes back to.
enum Client {
    /// A UDP client (the resolver fits answers to its buffer).
    Udp(std::net::SocketAddrV4),
    Tcp(tokio::sync::mpsc::Sender<Vec<u8>>),
}

/// A recursive resolver (the `dns` crate's) serving clients on UDP and
/// TCP `port`; each upstream query goes out from its own socket on the
/// random port the resolver chose.
struct ResolverService {
    host: Host,
    resolver: std::sync::Mutex<dns::Resolver>,
    udp: hoststack::UdpSocket,
    /// How long an upstream server has to answer.
    timeout: Duration,
    clients: std::sync::Mutex<std::collections::HashMap<u64, Client>>,
    next_client: std::sync::atomic::AtomicU64,
}

impl ResolverService {
    fn resolver(&self) -> std::sync::MutexGuard<'_, dns::Resolver> {
        self.resolver.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn client(&self, client: Client) -> u64 {
        let id = self
            .next_client
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, client);
        id
    }

    /// Where the answer to `id` goes, which is forgotten.
    fn take_client(&self, id: u64) -> Option<Client> {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    /// Carries out what the resolver asked for.
    fn dispatch(self: &Arc<Self>, actions: Vec<dns::Action>) {
        for action in actions {
            match action {
                dns::Action::Answer { client, message } => match self.take_client(client) {
                    // At once if the socket has room (nearly always); else
                    // from a task that waits for it.
                    Some(Client::Udp(addr))
                        if !self.udp.try_send_to(&message, addr).unwrap_or(true) =>
                    {
                        let me = self.clone();
                        tokio::spawn(async move {
                            let _ = me.udp.send_to(&message, addr).await;
                        });
                    }
                    Some(Client::Tcp(tx)) => {
                        let _ = tx.try_send(message);
                    }
                    _ => {}
                },
                dns::Action::Forget { client } => {
                    self.take_client(client);
                }
                dns::Action::Query {
                    token,
                    server,
                    source_port,
                    message,
                    tcp: false,
                } => {
                    tokio::spawn(self.clone().upstream(token, server, source_port, message));
                }
                dns::Action::Query {
                    token,
                    server,
                    message,
                    tcp: true,
                    ..
                } => {
                    tokio::spawn(self.clone().upstream_tcp(token, server, message));
                }
            }
        }
    }

    /// One upstream query: out from `source_port`, every datagram back
    /// offered to the resolver until it has its answer or time is up.
    async fn upstream(
        self: Arc<Self>,
        token: u64,
        server: std::net::Ipv4Addr,
        port: u16,
        message: Vec<u8>,
    ) {
        let socket = match self.host.bind_udp(port).or_else(|_| self.host.bind_udp(0)) {
            Ok(s) => s,
            Err(_) => return self.timed_out(token),
        };
        let to = std::net::SocketAddrV4::new(server, PORT);
        if socket.send_to(&message, to).await.is_err() {
            return self.timed_out(token);
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            match tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
                Ok(Ok((n, from))) => {
                    let actions =
                        self.resolver()
                            .upstream_answer(now(), token, *from.ip(), &buf[..n]);
                    self.dispatch(actions);
                    if !self.resolver().is_waiting(token) {
                        return;
                    }
                }
                _ => return self.timed_out(token),
            }
        }
    }

    /// One upstream query over TCP (the UDP answer was truncated).
    async fn upstream_tcp(
        self: Arc<Self>,
        token: u64,
        server: std::net::Ipv4Addr,
        message: Vec<u8>,
    ) {
        let exchange = async {
            let to = std::net::SocketAddrV4::new(server, PORT);
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
                let actions = self
                    .resolver()
                    .upstream_answer(now(), token, server, &answer);
                self.dispatch(actions);
                if self.resolver().is_waiting(token) {
                    self.timed_out(token);
                }
            }
            _ => self.timed_out(token),
        }
    }

    fn timed_out(self: &Arc<Self>, token: u64) {
        let actions = self.resolver().upstream_timeout(now(), token);
        self.dispatch(actions);
    }

    fn question(self: &Arc<Self>, client: Client, from: std::net::Ipv4Addr, query: &[u8]) {
        let transport = match client {
            Client::Udp(_) => Transport::Udp,
            Client::Tcp(_) => Transport::Tcp,
        };
        let id = self.client(client);
        let actions = self
            .resolver()
            .client_query(now(), id, from, transport, query);
        self.dispatch(actions);
    }
}

/// The time given to the resolver: tokio's clock, virtual in a simulation.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Serves a recursive resolver with `config` on UDP and TCP `port` until
/// the task is dropped; `seed` seeds its message IDs, ports and 0x20 bits.
pub async fn serve_resolver(
    host: Host,
    config: dns::ResolverConfig,
    port: u16,
    seed: u64,
) -> io::Result<()> {
    let service = Arc::new(ResolverService {
        udp: host.bind_udp(port)?,
        timeout: config.upstream_timeout,
        host: host.clone(),
        resolver: std::sync::Mutex::new(dns::Resolver::new(config, seed)),
        clients: std::sync::Mutex::new(std::collections::HashMap::new()),
        next_client: std::sync::atomic::AtomicU64::new(1),
    });
    let listener = host.listen(port, 256)?;
    let datagrams = {
        let service = service.clone();
        async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let (n, from) = service.udp.recv_from(&mut buf).await?;
                service.question(Client::Udp(from), *from.ip(), &buf[..n]);
            }
        }
    };
    let connections = async move {
        loop {
            let (stream, peer) = listener.accept().await?;
            tokio::spawn(resolver_tcp_client(stream, *peer.ip(), service.clone()));
        }
    };
    tokio::select! {
        r = datagrams => r,
        r = connections => r,
    }
}

/// One TCP client of the resolver: its questions one after another.
async fn resolver_tcp_client(
    mut stream: TcpStream,
    from: std::net::Ipv4Addr,
    service: Arc<ResolverService>,
) {
    let mut query = Vec::new();
    loop {
        if !read_framed(&mut stream, &mut query).await {
            break;
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        service.question(Client::Tcp(tx), from, &query);
        let Some(answer) = rx.recv().await else { break };
        if !write_framed(&mut stream, &answer).await {
            break;
        }
    }
    let _ = stream.shutdown().await;
}
