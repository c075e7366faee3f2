//! The echo service (RFC 862): what a TCP connection sends comes back
//! until the client closes its half; each UDP datagram is sent back to
//! where it came from.

use hoststack::{Host, TcpListener, TcpStream, UdpSocket};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The well-known echo port.
pub const PORT: u16 = 7;

/// Binds TCP and UDP `port`, and serves echo on them until the task is
/// dropped.
pub fn serve(host: Host, port: u16) -> io::Result<crate::Task> {
    let listener = host.listen(port, 1024)?;
    let udp = host.bind_udp(port)?;
    Ok(Box::pin(echo(listener, udp)))
}

async fn echo(listener: TcpListener, udp: UdpSocket) -> io::Result<()> {
    let tcp = async {
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(echo_stream(stream));
        }
    };
    let datagrams = async {
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, from) = udp.recv_from(&mut buf).await?;
            udp.send_to(&buf[..n], from).await?;
        }
    };
    tokio::select! {
        r = tcp => r,
        r = datagrams => r,
    }
}

async fn echo_stream(mut stream: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = stream.shutdown().await;
}
