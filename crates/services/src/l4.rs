//! TCP and UDP load balancers (layer 4) on a service host, over the
//! `balancer` crate's [`Pool`].
//!
//! **TCP**: each client connection gets a backend and a connection to it,
//! and the bytes flow both ways until either side closes (half-closes are
//! passed on). A backend that cannot be connected to is tried no more for
//! that client, which goes to another (at most `retries` times; nothing has
//! been sent yet, so a retry is always safe); the failure counts toward the
//! backend's ejection. A backend is judged by its connects only: a stream
//! that ends in an error may be either side's doing.
//!
//! **UDP**: datagrams from one client address and port are a flow, sent
//! from a socket of the flow's own to the backend chosen for its first
//! datagram; what comes back goes to the client from the balancer's port,
//! so the client sees one peer. A flow carrying nothing either way for
//! `idle_timeout` is forgotten; at most [`MAX_FLOWS`] are kept (each with
//! an ephemeral port and [`FLOW_BUFFER`] bytes each way), and a new flow
//! past that, or with no port free, is dropped and counted.

use crate::balancing::{self, Check, SharedPool};
use crate::lock;
use balancer::{Outcome, Pool};
use hoststack::{Host, TcpStream, UdpSocket};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// UDP flows kept at most (each holds an ephemeral port and at most
/// 3 x [`FLOW_BUFFER`]: at most 192 MiB in all).
pub const MAX_FLOWS: usize = 4096;
/// Bytes a flow's socket holds each way, and the largest datagram it
/// carries (nginx's `proxy_buffer_size` for UDP): larger ones are dropped.
pub const FLOW_BUFFER: usize = 16 * 1024;

#[derive(Debug)]
pub struct Config {
    pub name: String,
    pub port: u16,
    pub pool: Pool,
    pub check: Check,
    /// TCP: other backends a client may be sent to when one cannot be
    /// connected to.
    pub retries: u32,
    pub connect_timeout: Duration,
    /// UDP: how long a flow may carry nothing before it is forgotten.
    pub idle_timeout: Duration,
}

counters! {
    struct Counters {
        connections,
        retries,
        /// Clients closed because no backend could be reached.
        unreached,
        flows,
        flows_expired,
        /// New flows dropped at [`MAX_FLOWS`], or with no port free.
        flows_refused,
        datagrams_in,
        datagrams_out,
    }
}

struct L4 {
    host: Host,
    config: Config,
    pool: SharedPool,
    counters: Arc<Counters>,
}

fn start(host: Host, config: Config) -> Arc<L4> {
    Arc::new(L4 {
        host,
        pool: Arc::new(Mutex::new(config.pool.clone())),
        config,
        counters: Arc::new(Counters::default()),
    })
}

/// The balancer's handle and task: `serve` and the health checks.
fn serving(
    l4: &Arc<L4>,
    serve: impl Future<Output = io::Result<()>> + Send + 'static,
) -> crate::Serving {
    let checks = balancing::run_checks(
        l4.host.clone(),
        l4.pool.clone(),
        l4.config.check.clone(),
        l4.config.name.clone(),
    );
    let counters = l4.counters.clone();
    let pools = vec![("default".to_owned(), l4.pool.clone())];
    balancing::serving(pools, move || counters.json(), serve, checks)
}

/// Balances TCP connections on the host until the task is dropped.
pub fn serve_tcp(host: Host, config: Config) -> io::Result<crate::Serving> {
    let listener = host.listen(config.port, 1024)?;
    let l4 = start(host, config);
    let me = l4.clone();
    let serve = async move {
        loop {
            let (client, peer) = listener.accept().await?;
            l4.counters.connections.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(l4.clone().relay_tcp(client, peer));
        }
    };
    Ok(serving(&me, serve))
}

/// Balances UDP flows on the host until the task is dropped.
pub fn serve_udp(host: Host, config: Config) -> io::Result<crate::Serving> {
    let socket = Arc::new(host.bind_udp(config.port)?);
    let l4 = start(host, config);
    let me = l4.clone();
    let serve = async move {
        let flows: Flows = Arc::new(Mutex::new(HashMap::new()));
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await?;
            l4.counters.datagrams_in.fetch_add(1, Ordering::Relaxed);
            l4.clone().datagram(&socket, &flows, from, &buf[..n]).await;
        }
    };
    Ok(serving(&me, serve))
}

/// A UDP flow: its backend and the socket that talks to it.
struct Flow {
    index: usize,
    backend: SocketAddr,
    upstream: Arc<UdpSocket>,
    /// When it last carried a datagram, either way.
    last: Arc<Mutex<Instant>>,
}

type Flows = Arc<Mutex<HashMap<SocketAddr, Flow>>>;

impl L4 {
    /// One client connection: a backend connected to (retrying others),
    /// then the bytes both ways.
    async fn relay_tcp(self: Arc<Self>, mut client: TcpStream, peer: SocketAddr) {
        let key = wire::ip::octets(peer.ip());
        let mut tried = Vec::new();
        loop {
            let pick = lock(&self.pool).pick(balancing::now(), Some(&key), &tried);
            let Some(pick) = pick else {
                self.counters.unreached.fetch_add(1, Ordering::Relaxed);
                client.abort();
                return;
            };
            tracing::debug!(lb = %self.config.name, "{}", pick.why);
            tried.push(pick.index);
            lock(&self.pool).started(pick.index);
            let start = balancing::now();
            let connect = self.host.connect(pick.addr);
            match tokio::time::timeout(self.config.connect_timeout, connect).await {
                Ok(Ok(mut backend)) => {
                    // A backend is judged by its connects: a stream that
                    // ends in an error may be either side's doing (a
                    // client that resets is no fault of the backend).
                    let latency = balancing::now().saturating_duration_since(start);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                    let outcome = Outcome::Ok { latency };
                    lock(&self.pool).finished(balancing::now(), pick.index, outcome);
                    return;
                }
                _ => {
                    lock(&self.pool).finished(balancing::now(), pick.index, Outcome::ConnectFailed);
                    if tried.len() > self.config.retries as usize {
                        self.counters.unreached.fetch_add(1, Ordering::Relaxed);
                        client.abort();
                        return;
                    }
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// A datagram from `from`: to its flow's backend, a new flow if need be.
    async fn datagram(
        self: Arc<Self>,
        socket: &Arc<UdpSocket>,
        flows: &Flows,
        from: SocketAddr,
        data: &[u8],
    ) {
        let known = lock(flows)
            .get(&from)
            .map(|f| (f.upstream.clone(), f.backend, f.last.clone()));
        let (upstream, backend, last) = match known {
            Some(k) => k,
            None => match self.new_flow(socket, flows, from) {
                Some(k) => k,
                None => return,
            },
        };
        *lock(&last) = balancing::now();
        let _ = upstream.send_to(data, backend).await;
    }

    fn new_flow(
        self: &Arc<Self>,
        socket: &Arc<UdpSocket>,
        flows: &Flows,
        from: SocketAddr,
    ) -> Option<(Arc<UdpSocket>, SocketAddr, Arc<Mutex<Instant>>)> {
        if lock(flows).len() >= MAX_FLOWS {
            self.counters.flows_refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let Ok(upstream) = self.host.bind_udp_sized(0, FLOW_BUFFER) else {
            self.counters.flows_refused.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let upstream = Arc::new(upstream);
        let key = wire::ip::octets(from.ip());
        let pick = lock(&self.pool).pick(balancing::now(), Some(&key), &[])?;
        let last = Arc::new(Mutex::new(balancing::now()));
        lock(&self.pool).started(pick.index);
        self.counters.flows.fetch_add(1, Ordering::Relaxed);
        lock(flows).insert(
            from,
            Flow {
                index: pick.index,
                backend: pick.addr,
                upstream: upstream.clone(),
                last: last.clone(),
            },
        );
        tokio::spawn(self.clone().flow_back(socket.clone(), flows.clone(), from));
        Some((upstream, pick.addr, last))
    }

    /// What the backend sends on flow `client`, back to the client from the
    /// balancer's port, until the flow idles out.
    async fn flow_back(self: Arc<Self>, socket: Arc<UdpSocket>, flows: Flows, client: SocketAddr) {
        let Some((upstream, last, index)) = lock(&flows)
            .get(&client)
            .map(|f| (f.upstream.clone(), f.last.clone(), f.index))
        else {
            return;
        };
        let idle = self.config.idle_timeout;
        let created = balancing::now();
        let mut first_reply = None;
        let mut buf = vec![0u8; FLOW_BUFFER];
        loop {
            let since = balancing::now().saturating_duration_since(*lock(&last));
            let Some(left) = idle.checked_sub(since).filter(|l| !l.is_zero()) else {
                break;
            };
            if let Ok(Ok((n, _))) = tokio::time::timeout(left, upstream.recv_from(&mut buf)).await {
                let now = balancing::now();
                *lock(&last) = now;
                first_reply.get_or_insert(now.saturating_duration_since(created));
                self.counters.datagrams_out.fetch_add(1, Ordering::Relaxed);
                let _ = socket.send_to(&buf[..n], client).await;
            }
        }
        lock(&flows).remove(&client);
        self.counters.flows_expired.fetch_add(1, Ordering::Relaxed);
        // A flow the backend never answered counts against it.
        let outcome = first_reply.map_or(Outcome::Timeout, |latency| Outcome::Ok { latency });
        lock(&self.pool).finished(balancing::now(), index, outcome);
    }
}
