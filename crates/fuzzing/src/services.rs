//! The `services` target: what a client can do to the service layer, on
//! the simulator's virtual clock. The fuzzer's bytes are a script of
//! client moves from a namespace host against a lab of every service
//! kind (the built-in web server, the HTTP and UDP balancers, an
//! authoritative server, the resolver, echo): connect and send any bytes,
//! send more, reset, half-close, send a datagram from any port, let time
//! pass. The services answer through the real host stack and the real
//! service code (hyper, the balancer's header handling, DNS framing).
//!
//! Afterwards no service may have ended or panicked (none restarted) and
//! a plain request through the balancer must still be answered.

use ::lab::sim::LabSim;
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Waker};
use std::time::Duration;

const TOPOLOGY: &str = r#"
name = "fuzzsvc"
[[switch]]
name = "net"
subnet = "10.61.0.0/24"
[[host]]
name = "client"
switch = "net"
address = "10.61.0.2/24"
[[service]]
name = "web"
kind = "http"
switch = "net"
address = "10.61.0.10/24"
[[service]]
name = "lb"
kind = "http-lb"
switch = "net"
address = "10.61.0.11/24"
backends = ["web"]
health_check = "none"
[[service]]
name = "ulb"
kind = "udp-lb"
switch = "net"
address = "10.61.0.12/24"
port = 53
backends = ["ns"]
[[service]]
name = "ns"
kind = "dns-authoritative"
switch = "net"
address = "10.61.0.13/24"
[[service.zones]]
origin = "."
records = """
$TTL 60
@  IN SOA ns. hostmaster. 1 7200 900 1209600 60
@  IN NS  ns.
ns. IN A 10.61.0.13
lab.test. IN A 10.61.0.10
"""
[[service]]
name = "res"
kind = "dns-resolver"
switch = "net"
address = "10.61.0.14/24"
root_hints = ["10.61.0.13"]
[[service]]
name = "echo"
kind = "echo"
switch = "net"
address = "10.61.0.15/24"
"#;

/// The services' TCP and UDP endpoints a move may aim at.
const TARGETS: [(u8, u16); 6] = [(10, 80), (11, 80), (12, 53), (13, 53), (14, 53), (15, 7)];

/// Connections a script holds at most.
const CONNECTIONS: usize = 16;

fn endpoint(byte: u8) -> SocketAddr {
    let (host, port) = TARGETS[usize::from(byte) % TARGETS.len()];
    SocketAddr::from((IpAddr::from([10, 61, 0, host]), port))
}

/// Takes a chunk of at most 255 bytes (its length first) off the front.
fn chunk<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let Some((&len, rest)) = data.split_first() else {
        return &[];
    };
    let n = usize::from(len).min(rest.len());
    let (c, rest) = rest.split_at(n);
    *data = rest;
    c
}

/// See the module documentation.
pub fn services(mut data: &[u8]) {
    let topology = topology::parse(TOPOLOGY, "fuzzsvc.toml")
        .unwrap_or_else(|e| unreachable!("the fuzz lab parses: {e:?}"));
    let link = fabric::LinkParams {
        latency: Duration::from_micros(50),
        jitter: Duration::ZERO,
        loss: 0.0,
    };
    let Ok(mut lab) = LabSim::new(&topology, 9, link) else {
        unreachable!("the fuzz lab builds")
    };
    let mut cx = Context::from_waker(Waker::noop());
    let mut open = Vec::new();
    let mut udp = Vec::new();
    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        let Some((&arg, rest)) = data.split_first() else {
            break;
        };
        data = rest;
        let Some(client) = lab.client("client") else {
            unreachable!("the fuzz lab has its client")
        };
        match op % 6 {
            0 if open.len() < CONNECTIONS => {
                if let Ok(sock) = client.tcp_connect(endpoint(arg)) {
                    open.push(sock);
                }
            }
            1 => {
                let payload = chunk(&mut data);
                if let Some(&sock) = open.get(usize::from(arg) % open.len().max(1)) {
                    let _ = client.poll_send(sock, &mut cx, payload);
                }
            }
            2 if !open.is_empty() => {
                let sock = open.swap_remove(usize::from(arg) % open.len());
                client.tcp_abort(sock);
                client.release(sock);
            }
            3 => {
                if let Some(&sock) = open.get(usize::from(arg) % open.len().max(1)) {
                    client.tcp_shutdown(sock);
                }
            }
            4 => {
                let payload = chunk(&mut data);
                let port = 1024 + u16::from(arg) * 7;
                let sock = match client.udp_bind(port) {
                    Ok((sock, _)) => {
                        udp.push(sock);
                        Some(sock)
                    }
                    Err(_) => udp.first().copied(),
                };
                if let Some(sock) = sock {
                    let _ = client.try_udp_send(sock, payload, endpoint(arg.rotate_left(3)), 0);
                }
            }
            _ => lab.run_for(Duration::from_millis(u64::from(arg) * 4)),
        }
        lab.run_for(Duration::from_micros(200));
    }
    lab.run_for(Duration::from_secs(2));
    assert_eq!(lab.restarts(), 0, "a client's moves ended a service");
    let lb = SocketAddr::from((IpAddr::from([10, 61, 0, 11]), 80));
    let get = b"GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n";
    let answer = lab.exchange("client", lb, get, Duration::from_secs(10));
    let answer = String::from_utf8_lossy(answer.as_deref().unwrap_or_default()).into_owned();
    assert!(answer.contains("server: web"), "lb answered: {answer:?}");
}
