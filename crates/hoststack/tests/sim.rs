//! Service hosts on the virtual clock: two or more stacks on a simulated
//! switch with seeded loss, latency and jitter, driven through the same
//! socket calls the tokio layer makes (with a no-op waker).

mod net;

use fabric::LinkParams;
use hoststack::{SockId, TcpState};
use net::*;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

#[test]
fn half_close_lets_the_other_side_keep_sending() {
    let mut net = Net::new(2, 1, LinkParams::default(), |_| {});
    net.stack(1).tcp_listen(7, 16).expect("listen");
    let c = net.stack(0).tcp_connect(server_addr(7)).expect("connect");
    let mut server = None;
    net.run_until(Duration::from_secs(1), |n| {
        server = server.or_else(|| accept(n.stack(1), 7));
        server.is_some()
    });
    let s = server.expect("accepted");
    let peer = net.stack(1).tcp_addrs(s).expect("addrs");
    assert_eq!(peer.remote.ip(), addr(0));
    assert_eq!(peer.local, server_addr(7));

    // The client sends a request and closes its sending half.
    let mut sent = 0;
    send_all(net.stack(0), c, b"request", &mut sent);
    net.stack(0).tcp_shutdown(c);
    let mut got = Vec::new();
    net.run_until(Duration::from_secs(1), |n| {
        recv_some(n.stack(1), s, &mut got)
    });
    assert_eq!(got, b"request");
    assert_eq!(net.stack(1).tcp_state(s), Some(TcpState::CloseWait));

    // The server still answers on its open half, then closes.
    let reply = pattern(100_000);
    let mut sent = 0;
    let mut back = Vec::new();
    net.run_until(Duration::from_secs(2), |n| {
        send_all(n.stack(1), s, &reply, &mut sent);
        if sent == reply.len() {
            n.stack(1).tcp_shutdown(s);
        }
        recv_some(n.stack(0), c, &mut back)
    });
    assert_eq!(back, reply);
    net.run_until(Duration::from_secs(1), |n| {
        n.stack(1).tcp_state(s) == Some(TcpState::Closed)
    });
    // The client closed first, so the TIME-WAIT is the client's, kept
    // without its socket.
    net.run_until(Duration::from_secs(1), |n| {
        n.stack(0).status().time_wait == 1
    });
    net.stack(0).release(c);
    net.stack(1).release(s);
    assert_eq!(net.stack(1).status().tcp_connections, 0);
}

#[test]
fn transfers_arrive_intact_through_loss_and_reordering() {
    for seed in [3, 4] {
        let link = LinkParams {
            latency: Duration::from_micros(100),
            jitter: Duration::from_micros(300),
            loss: 0.02,
        };
        let mut net = Net::new(2, seed, link, |_| {});
        net.stack(1).tcp_listen(9, 16).expect("listen");
        let c = net.stack(0).tcp_connect(server_addr(9)).expect("connect");
        let up = pattern(1 << 20);
        let down: Vec<u8> = pattern((1 << 20) + 13).into_iter().rev().collect();
        let (mut s, mut up_sent, mut down_sent) = (None, 0, 0);
        let (mut at_server, mut at_client) = (Vec::new(), Vec::new());
        let (mut server_eof, mut client_eof) = (false, false);
        net.run_until(Duration::from_secs(120), |n| {
            s = s.or_else(|| accept(n.stack(1), 9));
            send_all(n.stack(0), c, &up, &mut up_sent);
            if up_sent == up.len() {
                n.stack(0).tcp_shutdown(c);
            }
            if let Some(s) = s {
                send_all(n.stack(1), s, &down, &mut down_sent);
                if down_sent == down.len() {
                    n.stack(1).tcp_shutdown(s);
                }
                server_eof = server_eof || recv_some(n.stack(1), s, &mut at_server);
            }
            client_eof = client_eof || recv_some(n.stack(0), c, &mut at_client);
            server_eof && client_eof
        });
        assert!(net.sim.lost() > 0, "seed {seed}: the link lost frames");
        assert!(at_server == up, "seed {seed}: upload intact");
        assert!(at_client == down, "seed {seed}: download intact");
    }
}

#[test]
fn many_concurrent_connections_each_get_their_answer() {
    const N: usize = 2000;
    let mut net = Net::new(2, 5, LinkParams::default(), |c| {
        c.tcp.rx_buffer = 4096;
        c.tcp.tx_buffer = 4096;
    });
    net.stack(1).tcp_listen(80, N).expect("listen");
    let clients: Vec<SockId> = (0..N)
        .map(|_| net.stack(0).tcp_connect(server_addr(80)).expect("connect"))
        .collect();
    let mut served: Vec<(SockId, Vec<u8>)> = Vec::new();
    let mut answers: Vec<Vec<u8>> = vec![Vec::new(); N];
    let mut asked = vec![false; N];
    let mut done = 0;
    net.run_until(Duration::from_secs(30), |n| {
        while let Some(s) = accept(n.stack(1), 80) {
            served.push((s, Vec::new()));
        }
        for (i, &c) in clients.iter().enumerate() {
            if !asked[i] && n.stack(0).tcp_state(c) == Some(TcpState::Established) {
                let mut sent = 0;
                send_all(n.stack(0), c, format!("q{i}\n").as_bytes(), &mut sent);
                asked[i] = true;
            }
        }
        // The server answers each question with its client's port.
        for (s, buf) in &mut served {
            recv_some(n.stack(1), *s, buf);
            if buf.last() == Some(&b'\n') {
                let peer = n.stack(1).tcp_addrs(*s).expect("addrs").remote.port();
                let mut sent = 0;
                let reply = format!(
                    "a{}:{peer}\n",
                    String::from_utf8_lossy(&buf[1..buf.len() - 1])
                );
                send_all(n.stack(1), *s, reply.as_bytes(), &mut sent);
                buf.clear();
                buf.push(b'.');
            }
        }
        for (i, &c) in clients.iter().enumerate() {
            if answers[i].last() != Some(&b'\n') {
                recv_some(n.stack(0), c, &mut answers[i]);
                if answers[i].last() == Some(&b'\n') {
                    done += 1;
                }
            }
        }
        done == N
    });
    for (i, &c) in clients.iter().enumerate() {
        let port = net.stack(0).tcp_addrs(c).expect("addrs").local.port();
        assert_eq!(answers[i], format!("a{i}:{port}\n").as_bytes());
    }
    assert_eq!(net.stack(1).status().tcp_connections, N);
    assert_eq!(net.stack(1).status().counters.backlog_full, 0);
}

#[test]
fn a_burst_of_syns_within_the_backlog_is_all_accepted() {
    let mut net = Net::new(5, 6, LinkParams::default(), |_| {});
    net.stack(4).tcp_listen(80, 512).expect("listen");
    let target = SocketAddr::from((addr(4), 80));
    // 4 clients open 100 connections each in the same instant.
    let mut conns = Vec::new();
    for h in 0..4 {
        for _ in 0..100 {
            conns.push((h, net.stack(h).tcp_connect(target).expect("connect")));
        }
    }
    let mut accepted = 0;
    net.run_until(Duration::from_millis(50), |n| {
        while accept(n.stack(4), 80).is_some() {
            accepted += 1;
        }
        accepted == 400
    });
    for (h, c) in conns {
        assert_eq!(net.stack(h).tcp_state(c), Some(TcpState::Established));
    }
    let counters = net.stack(4).status().counters;
    assert_eq!((counters.backlog_full, counters.tcp_accepted), (0, 400));
}

#[test]
fn datagrams_to_several_new_neighbours_at_once_all_leave_at_once() {
    // smoltcp asks for one neighbour a second per interface; the stack
    // asks for the others itself, so none waits that second out.
    let mut net = Net::new(4, 3, Default::default(), |_| {});
    let (tx, _) = net.stack(0).udp_bind(0).expect("bind");
    let mut rx = Vec::new();
    for i in 1..4 {
        rx.push(net.stack(i).udp_bind(5300).expect("bind").0);
    }
    for i in 1..4 {
        let to = SocketAddr::from((addr(i), 5300));
        let sent = net.stack(0).poll_udp_send(tx, &mut cx(), b"hello", to, 0);
        assert!(matches!(sent, Poll::Ready(Ok(5))), "{sent:?}");
    }
    let start = net.sim.now();
    let mut got = [false; 3];
    net.run_until(Duration::from_millis(900), |net| {
        for (i, id) in rx.iter().enumerate() {
            let mut buf = [0u8; 16];
            if let Poll::Ready(Ok((5, _, _))) =
                net.stack(i + 1).poll_udp_recv(*id, &mut cx(), &mut buf)
            {
                got[i] = true;
            }
        }
        got.iter().all(|g| *g)
    });
    assert!(net.sim.now() - start < Duration::from_millis(100));
}

#[test]
fn tcp_and_udp_run_over_ipv6_with_neighbour_discovery() {
    // Over a lossy, reordering link: neighbour discovery, the handshake,
    // a transfer both ways and datagrams, all on IPv6.
    let link = LinkParams {
        latency: Duration::from_micros(100),
        jitter: Duration::from_micros(300),
        loss: 0.02,
    };
    let mut net = Net::new(2, 11, link, dual_stack);
    let server = SocketAddr::from((addr6(1), 80));
    net.stack(1).tcp_listen(80, 16).expect("listen");
    let c = net.stack(0).tcp_connect(server).expect("connect");
    let mut accepted = None;
    net.run_until(Duration::from_secs(5), |n| {
        accepted = accepted.or_else(|| accept(n.stack(1), 80));
        accepted.is_some()
    });
    let s = accepted.expect("accepted");
    let key = net.stack(1).tcp_addrs(s).expect("addrs");
    assert_eq!((key.local, key.remote.ip()), (server, addr6(0).into()));
    let (request, reply) = (pattern(50_000), pattern(300_000));
    let (mut sent_req, mut sent_rep) = (0, 0);
    let (mut got_req, mut got_rep) = (Vec::new(), Vec::new());
    net.run_until(Duration::from_secs(20), |n| {
        send_all(n.stack(0), c, &request, &mut sent_req);
        recv_some(n.stack(1), s, &mut got_req);
        send_all(n.stack(1), s, &reply, &mut sent_rep);
        recv_some(n.stack(0), c, &mut got_rep);
        got_req.len() == request.len() && got_rep.len() == reply.len()
    });
    assert_eq!((got_req == request, got_rep == reply), (true, true));

    // A datagram to a neighbour not yet known waits for its advertisement,
    // then goes; the answer comes back to the sender's IPv6 address.
    let mut fresh = Net::new(2, 12, LinkParams::default(), dual_stack);
    let (tx, _) = fresh.stack(0).udp_bind(0).expect("bind");
    let (rx, _) = fresh.stack(1).udp_bind(5300).expect("bind");
    let to = SocketAddr::from((addr6(1), 5300));
    let sent = fresh.stack(0).poll_udp_send(tx, &mut cx(), b"hello", to, 0);
    assert!(matches!(sent, Poll::Ready(Ok(5))), "{sent:?}");
    let mut from = None;
    fresh.run_until(Duration::from_millis(100), |n| {
        let mut buf = [0u8; 16];
        if let Poll::Ready(Ok((5, f, _))) = n.stack(1).poll_udp_recv(rx, &mut cx(), &mut buf) {
            from = Some(f);
        }
        from.is_some()
    });
    assert_eq!(from.map(|f| f.ip()), Some(addr6(0).into()));
    let status = fresh.stack(1).status();
    assert!(status.addresses.contains(&"2001:db8::2/64".to_owned()));
}

#[test]
fn a_connection_let_go_after_a_quiet_spell_closes_with_a_fin() {
    // The stack is not run while the connection idles (nothing to send,
    // no timer due); let go then, it must close gracefully, not reset as
    // if its time to close had run out long ago.
    let mut net = Net::new(2, 5, LinkParams::default(), |c| {
        c.tcp.orphan_timeout = Duration::from_secs(5);
    });
    net.stack(1).tcp_listen(80, 16).expect("listen");
    let c = net.stack(0).tcp_connect(server_addr(80)).expect("connect");
    let mut accepted = None;
    net.run_until(Duration::from_secs(1), |n| {
        accepted = accepted.or_else(|| accept(n.stack(1), 80));
        accepted.is_some()
    });
    let s = accepted.expect("accepted");
    net.run_until(Duration::from_secs(1), |n| {
        n.stack(0).tcp_state(c) == Some(TcpState::Established)
    });
    // Quieter than the orphan timeout, within the keep-alive interval.
    net.sim.run_for(Duration::from_secs(30));
    net.stack(0).release(c);
    net.run_until(Duration::from_secs(1), |n| {
        n.stack(1).tcp_state(s) == Some(TcpState::CloseWait)
    });
}

/// The MSS option of a SYN in an Ethernet frame (IPv4 or IPv6, no IP
/// options or extension headers), if the frame is one.
fn syn_mss(frame: &[u8]) -> Option<u16> {
    let l4 = match frame.get(12..14)? {
        [0x08, 0x00] => 14 + 20,
        [0x86, 0xdd] => 14 + 40,
        _ => return None,
    };
    let tcp = frame.get(l4..)?;
    if tcp.get(13)? & 0x02 == 0 {
        return None;
    }
    let header = usize::from(tcp[12] >> 4) * 4;
    let mut at = 20;
    while at + 4 <= header {
        match tcp[at] {
            1 => at += 1,
            2 => return Some(u16::from_be_bytes([tcp[at + 2], tcp[at + 3]])),
            _ => at += usize::from(tcp[at + 1].max(2)),
        }
    }
    None
}

#[test]
fn segments_fit_the_peers_mss_and_a_syn_announces_the_links_own() {
    // The client's link is smaller (1280 bytes): its SYN says so, and the
    // server, which sends in 64 KiB super-frames, cuts them to fit it.
    for v6 in [false, true] {
        let mut net = Net::new(2, 5, LinkParams::default(), |c| {
            dual_stack(c);
            if c.mac.0[5] == 1 {
                c.mtu = 1280;
            }
        });
        net.record = true;
        let server = if v6 {
            SocketAddr::from((addr6(1), 80))
        } else {
            server_addr(80)
        };
        net.stack(1).tcp_listen(80, 4).expect("listen");
        let c = net.stack(0).tcp_connect(server).expect("connect");
        let mut accepted = None;
        net.run_until(Duration::from_secs(2), |n| {
            accepted = accepted.or_else(|| accept(n.stack(1), 80));
            accepted.is_some()
        });
        let s = accepted.expect("accepted");
        let reply = pattern(400_000);
        let (mut sent, mut got) = (0, Vec::new());
        net.run_until(Duration::from_secs(5), |n| {
            send_all(n.stack(1), s, &reply, &mut sent);
            recv_some(n.stack(0), c, &mut got);
            got.len() == reply.len()
        });
        assert!(got == reply, "v6 {v6}: the reply arrives intact");
        let ip = if v6 { 40 } else { 20 };
        let mss = |host: usize| {
            net.received
                .iter()
                .filter(|(i, _)| *i == host)
                .find_map(|(_, f)| syn_mss(f))
        };
        // What each host announced, as the other received it.
        assert_eq!(mss(1), Some(1280 - ip as u16 - 20), "v6 {v6}: client");
        assert_eq!(mss(0), Some(1500 - ip as u16 - 20), "v6 {v6}: server");
        let largest = net
            .received
            .iter()
            .filter(|(i, _)| *i == 0)
            .map(|(_, f)| f.len())
            .max();
        assert_eq!(
            largest,
            Some(14 + 1280),
            "v6 {v6}: full segments, none larger"
        );
    }
}

#[test]
fn a_datagram_larger_than_the_link_leaves_in_fragments_over_ipv4_and_is_counted_over_ipv6() {
    let mut net = Net::new(2, 6, LinkParams::default(), dual_stack);
    let (tx, _) = net.stack(0).udp_bind_sized(0, 16_384).expect("bind");
    let (rx, _) = net.stack(1).udp_bind_sized(5300, 16_384).expect("bind");
    let big = pattern(4000);
    for to in [addr(1).into(), std::net::IpAddr::from(addr6(1))] {
        let to = SocketAddr::new(to, 5300);
        let sent = net.stack(0).poll_udp_send(tx, &mut cx(), &big, to, 0);
        assert!(matches!(sent, Poll::Ready(Ok(4000))), "{sent:?}");
    }
    let mut got = Vec::new();
    net.run_until(Duration::from_millis(200), |n| {
        let mut buf = [0u8; 8192];
        while let Poll::Ready(Ok((len, from, _))) =
            n.stack(1).poll_udp_recv(rx, &mut cx(), &mut buf)
        {
            got.push((len, from.ip(), buf[..len] == big[..]));
        }
        n.stack(0).status().counters.too_big == 1 && !got.is_empty()
    });
    assert_eq!(got, [(4000, std::net::IpAddr::from(addr(0)), true)]);
    let counters = net.stack(0).status().counters;
    assert_eq!((counters.fragmented, counters.too_big), (1, 1));
    assert_eq!(net.stack(1).status().counters.reassembled, 1);
}
