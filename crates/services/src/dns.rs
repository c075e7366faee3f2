//! An authoritative DNS server (the answers are the `dns` crate's): UDP
//! and TCP on one port, TCP with two-byte length framing (RFC 1035 4.2.2),
//! several queries per connection answered in order (RFC 7766), and an
//! idle timeout so that silent clients hold nothing.

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
            let (stream, _) = listener.accept().await?;
            tokio::spawn(tcp_client(stream, authority.clone()));
        }
    };
    tokio::select! {
        r = datagrams => r,
        r = connections => r,
    }
}

/// Answers the queries of one TCP connection, in order, until it closes
/// or idles.
async fn tcp_client(mut stream: TcpStream, authority: Arc<Authority>) {
    let mut query = Vec::new();
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => break,
        }
        query.resize(usize::from(u16::from_be_bytes(len)), 0);
        if stream.read_exact(&mut query).await.is_err() {
            break;
        }
        let Some(answer) = authority.answer(&query, Transport::Tcp) else {
            continue;
        };
        let len = (answer.len().min(usize::from(u16::MAX)) as u16).to_be_bytes();
        if stream.write_all(&len).await.is_err() || stream.write_all(&answer).await.is_err() {
            break;
        }
    }
    let _ = stream.shutdown().await;
}
