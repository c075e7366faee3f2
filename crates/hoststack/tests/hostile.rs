//! Bad input to a service host, on the virtual clock: SYN floods past the
//! backlog, segments with bad checksums, closed ports, peers that never
//! read. Memory stays bounded and real clients keep being served.

mod net;

use hoststack::{Stack, TcpState};
use net::*;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use wire::{Frame, Instant};

const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// A TCP segment to the server (10.0.0.2) from `src`.
fn tcp_frame(
    src: SocketAddr,
    dst_port: u16,
    control: TcpControl,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: src.port(),
        dst_port,
        control,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: None,
        window_len: 64240,
        window_scale: None,
        max_seg_size: Some(1460),
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload,
    };
    let std::net::IpAddr::V4(s) = src.ip() else {
        panic!("an IPv4 client")
    };
    let d = addr(1);
    l3_frame(s, IpProtocol::Tcp, tcp.buffer_len(), |buf| {
        tcp.emit(
            &mut TcpPacket::new_unchecked(buf),
            &IpAddress::Ipv4(s),
            &IpAddress::Ipv4(d),
            &ChecksumCapabilities::default(),
        )
    })
}

fn l3_frame(src: Ipv4Addr, proto: IpProtocol, len: usize, emit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: addr(1),
        next_header: proto,
        payload_len: len,
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 0x99]),
        dst_addr: EthernetAddress(SERVER_MAC),
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; 14 + ip.buffer_len() + len];
    let mut e = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut e);
    let mut p = Ipv4Packet::new_unchecked(e.payload_mut());
    ip.emit(&mut p, &ChecksumCapabilities::default());
    emit(p.payload_mut());
    buf
}

/// A UDP datagram to the server from the client (10.0.0.1).
fn udp_frame(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let udp = UdpRepr { src_port, dst_port };
    let len = udp.header_len() + payload.len();
    l3_frame(addr(0), IpProtocol::Udp, len, |buf| {
        udp.emit(
            &mut UdpPacket::new_unchecked(buf),
            &IpAddress::Ipv4(addr(0)),
            &IpAddress::Ipv4(addr(1)),
            payload.len(),
            |p| p.copy_from_slice(payload),
            &ChecksumCapabilities::default(),
        )
    })
}

fn feed(stack: &mut Stack, now: Instant, frame: &mut [u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    stack.ingress(now, frame, &mut out);
    out
}

/// IPv4 frames the host sent with this protocol.
fn sent(out: &[Frame], proto: IpProtocol) -> Vec<Vec<u8>> {
    out.iter()
        .filter_map(|f| {
            let e = EthernetFrame::new_checked(f.data()).ok()?;
            let ip = Ipv4Packet::new_checked(e.payload()).ok()?;
            (ip.next_header() == proto).then(|| ip.payload().to_vec())
        })
        .collect()
}

#[test]
fn a_syn_flood_past_the_backlog_leaves_memory_bounded_and_clients_served() {
    let mut net = Net::new(2, 7, Default::default(), |_| {});
    net.stack(1).tcp_listen(80, 64).expect("listen");
    let mut n = 0u32;
    let mut flood = |net: &mut Net, count: u32| {
        let now = net.sim.now();
        for _ in 0..count {
            n += 1;
            // Forged sources that will never finish the handshake.
            let src = SocketAddr::from((
                Ipv4Addr::new(10, 0, 0, 100 + (n % 100) as u8),
                1024 + (n % 60000) as u16,
            ));
            let mut f = tcp_frame(src, 80, TcpControl::Syn, n.wrapping_mul(7919), &[]);
            feed(net.stack(1), now, &mut f);
        }
    };
    flood(&mut net, 20_000);
    let st = net.stack(1).status();
    assert!(
        st.tcp_connections <= 64,
        "half-open connections bounded by the backlog: {}",
        st.tcp_connections
    );
    assert!(st.counters.handshakes_evicted >= 20_000 - 64);

    // A real client, while the flood goes on, is accepted within a few
    // round trips.
    let c = net.stack(0).tcp_connect(server_addr(80)).expect("connect");
    let mut accepted = None;
    net.run_until(Duration::from_millis(100), |n2| {
        flood(n2, 2); // 100,000 SYNs per second
        accepted = accepted.or_else(|| accept(n2.stack(1), 80));
        accepted.is_some() && n2.stack(0).tcp_state(c) == Some(TcpState::Established)
    });
    assert!(net.stack(1).status().tcp_connections <= 64 + 1);
}

#[test]
fn segments_with_bad_checksums_are_dropped_and_counted() {
    let mut net = Net::new(2, 8, Default::default(), |_| {});
    net.stack(1).tcp_listen(80, 8).expect("listen");
    let src = SocketAddr::from((addr(0), 40000));
    let mut syn = tcp_frame(src, 80, TcpControl::Syn, 1000, &[]);
    let last = syn.len() - 1;
    syn[last - 20] ^= 0xff; // inside the TCP header: the checksum no longer fits
    let out = feed(net.stack(1), Instant::ZERO, &mut syn);
    assert!(out.is_empty(), "no answer to a corrupt SYN");
    let st = net.stack(1).status();
    assert_eq!((st.counters.bad_checksum, st.tcp_connections), (1, 0));

    // A real connection still works, and corrupt copies of its segments
    // change nothing.
    let c = net.stack(0).tcp_connect(server_addr(80)).expect("connect");
    let mut s = None;
    net.run_until(Duration::from_secs(1), |n| {
        s = s.or_else(|| accept(n.stack(1), 80));
        s.is_some()
    });
    let port = net.stack(0).tcp_addrs(c).expect("addrs").local.port();
    let mut bogus = tcp_frame(
        SocketAddr::from((addr(0), port)),
        80,
        TcpControl::Psh,
        5,
        b"evil",
    );
    let n = bogus.len();
    bogus[n - 1] ^= 0x55;
    let now = net.sim.now();
    feed(net.stack(1), now, &mut bogus);
    let mut sent_bytes = 0;
    send_all(net.stack(0), c, b"good", &mut sent_bytes);
    let mut got = Vec::new();
    let server = s.expect("accepted");
    net.run_until(Duration::from_secs(1), |n| {
        recv_some(n.stack(1), server, &mut got);
        got.len() == 4
    });
    assert_eq!(got, b"good");
    assert_eq!(net.stack(1).status().counters.bad_checksum, 2);
}

#[test]
fn closed_ports_answer_with_rst_and_port_unreachable() {
    let mut net = Net::new(2, 9, Default::default(), |_| {});
    // A real client's SYN to a closed port is refused with a RST.
    let c = net.stack(0).tcp_connect(server_addr(81)).expect("connect");
    net.run_until(Duration::from_secs(1), |n| {
        n.stack(0).tcp_state(c) == Some(TcpState::Closed)
    });

    let mut f = udp_frame(5000, 9999, b"anyone?");
    // The server knows the client's MAC by now.
    let now = net.sim.now();
    let out = feed(net.stack(1), now, &mut f);
    let icmp = sent(&out, IpProtocol::Icmp);
    assert_eq!(icmp.len(), 1, "one ICMP error");
    assert_eq!(
        (icmp[0][0], icmp[0][1]),
        (3, 3),
        "destination unreachable, port unreachable"
    );
}

#[test]
fn a_peer_that_never_reads_holds_only_its_buffers_and_others_are_served() {
    let mut net = Net::new(3, 10, Default::default(), |_| {});
    net.stack(2).tcp_listen(80, 8).expect("listen");
    let target = SocketAddr::from((addr(2), 80));
    let stuck = net.stack(0).tcp_connect(target).expect("connect");
    let mut s = None;
    net.run_until(Duration::from_secs(1), |n| {
        s = s.or_else(|| accept(n.stack(2), 80));
        s.is_some()
    });
    let s = s.expect("accepted");
    // The server writes far more than fits; the client never reads.
    let big = pattern(8 << 20);
    let mut sent_bytes = 0;
    for _ in 0..200 {
        send_all(net.stack(2), s, &big, &mut sent_bytes);
        net.step(Duration::from_millis(1));
    }
    let tuning = hoststack::TcpTuning::default();
    assert!(
        sent_bytes <= tuning.tx_buffer + tuning.rx_buffer,
        "only buffers fill: {sent_bytes}"
    );
    assert_eq!(net.stack(0).tcp_state(stuck), Some(TcpState::Established));

    // Another client is served meanwhile.
    let other = net.stack(1).tcp_connect(target).expect("connect");
    let mut served = None;
    net.run_until(Duration::from_secs(1), |n| {
        served = served.or_else(|| accept(n.stack(2), 80));
        served.is_some()
    });
    let mut k = 0;
    send_all(net.stack(2), served.expect("accepted"), b"hello", &mut k);
    let mut got = Vec::new();
    net.run_until(Duration::from_secs(1), |n| {
        recv_some(n.stack(1), other, &mut got);
        got == b"hello"
    });
}

/// A UDP datagram to the server's port 7 from `src`, cut into fragments
/// of `size` bytes of IP payload, with identification `ident`.
fn udp_fragments(src: Ipv4Addr, ident: u16, payload: &[u8], size: usize) -> Vec<Vec<u8>> {
    let udp = UdpRepr {
        src_port: 5000,
        dst_port: 7,
    };
    let whole = l3_frame(
        src,
        IpProtocol::Udp,
        udp.header_len() + payload.len(),
        |buf| {
            udp.emit(
                &mut UdpPacket::new_unchecked(buf),
                &IpAddress::Ipv4(src),
                &IpAddress::Ipv4(addr(1)),
                payload.len(),
                |p| p.copy_from_slice(payload),
                &ChecksumCapabilities::default(),
            )
        },
    );
    let datagram = &whole[14 + 20..];
    datagram
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let mut f = whole[..14 + 20].to_vec();
            f.extend_from_slice(chunk);
            let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
            ip.set_total_len((20 + chunk.len()) as u16);
            ip.set_ident(ident);
            ip.set_more_frags((i + 1) * size < datagram.len());
            ip.set_frag_offset((i * size) as u16);
            ip.fill_checksum();
            f
        })
        .collect()
}

#[test]
fn a_fragment_storm_is_evicted_and_real_fragmented_datagrams_still_arrive() {
    let mut net = Net::new(2, 11, Default::default(), |_| {});
    let (sock, _) = net.stack(1).udp_bind(7).expect("bind");
    let now = net.sim.now();
    // 20,000 first fragments of packets that never complete.
    for ident in 0..20_000u16 {
        let mut f = udp_fragments(addr(0), ident, &[7; 3000], 1480).remove(0);
        feed(net.stack(1), now, &mut f);
    }
    let s = net.stack(1).status();
    assert!(s.reassembling <= hoststack::ReassemblyLimits::default().max_packets);
    assert!(s.counters.fragments_evicted >= 19_000, "{:?}", s.counters);
    // A real datagram, its fragments out of order, still gets through.
    let data = pattern(3000);
    let mut frags = udp_fragments(addr(0), 60_000, &data, 1480);
    frags.reverse();
    for f in &mut frags {
        feed(net.stack(1), now, f);
    }
    let mut buf = vec![0u8; 4096];
    match net.stack(1).poll_udp_recv(sock, &mut cx(), &mut buf) {
        std::task::Poll::Ready(Ok((n, from, _))) => {
            assert_eq!((&buf[..n], from.port()), (&data[..], 5000));
        }
        other => panic!("no datagram: {other:?}"),
    }
    assert_eq!(net.stack(1).status().counters.reassembled, 1);
}

#[test]
fn one_client_address_cannot_hold_more_than_its_share_of_connections() {
    let mut net = Net::new(2, 12, Default::default(), |c| {
        c.max_connections_per_client = 10
    });
    net.stack(1).tcp_listen(80, 64).expect("listen");
    let now = net.sim.now();
    for port in 0..50u16 {
        let src = SocketAddr::from((addr(0), 20_000 + port));
        let mut syn = tcp_frame(src, 80, TcpControl::Syn, 1, &[]);
        feed(net.stack(1), now, &mut syn);
    }
    let s = net.stack(1).status();
    assert_eq!(s.tcp_connections, 10);
    assert_eq!(s.counters.client_limit, 40);
    // Another address is served.
    let mut syn = tcp_frame(
        SocketAddr::from((addr(5), 1234)),
        80,
        TcpControl::Syn,
        1,
        &[],
    );
    feed(net.stack(1), now, &mut syn);
    assert_eq!(net.stack(1).status().tcp_connections, 11);
}

#[test]
fn a_traced_host_says_what_it_did_with_each_frame() {
    use hoststack::Decision;
    let mut net = Net::new(2, 13, Default::default(), |_| {});
    net.stack(1).tcp_listen(80, 8).expect("listen");
    net.stack(1).udp_bind(7).expect("bind");
    // A real exchange first, so that the server knows the client's MAC
    // and can answer it.
    let c = net.stack(0).tcp_connect(server_addr(81)).expect("connect");
    net.run_until(Duration::from_secs(1), |n| {
        n.stack(0).tcp_state(c) == Some(TcpState::Closed)
    });
    let now = net.sim.now();
    let client = SocketAddr::from((addr(0), 40000));
    let traced = |net: &mut Net, frame: &mut [u8]| {
        net.stack(1).set_trace(1);
        feed(net.stack(1), now, frame);
        let d = net.stack(1).take_decisions();
        net.stack(1).set_trace(0);
        d
    };
    let mut syn = tcp_frame(client, 80, TcpControl::Syn, 1, &[]);
    assert_eq!(
        traced(&mut net, &mut syn),
        [Decision::Listener {
            port: 80,
            refused: None
        }]
    );
    let mut again = tcp_frame(client, 80, TcpControl::None, 2, b"x");
    assert!(matches!(
        traced(&mut net, &mut again)[..],
        [Decision::Connection { .. }]
    ));
    let mut closed = tcp_frame(
        SocketAddr::from((addr(0), 40001)),
        81,
        TcpControl::Syn,
        1,
        &[],
    );
    let d = traced(&mut net, &mut closed);
    assert!(
        matches!(d[..], [Decision::Interface { answer }] if answer == "closed port: RST"),
        "{d:?}"
    );
    let mut bad = tcp_frame(
        SocketAddr::from((addr(0), 40002)),
        80,
        TcpControl::Syn,
        1,
        &[],
    );
    let n = bad.len();
    bad[n - 1] ^= 0xff; // the TCP checksum no longer verifies
    assert_eq!(traced(&mut net, &mut bad), [Decision::BadChecksum]);
    let mut first = udp_fragments(addr(0), 77, &[1; 3000], 1480).remove(0);
    assert_eq!(
        traced(&mut net, &mut first),
        [Decision::Fragment { reassembled: false }]
    );
    assert_eq!(
        Decision::Listener {
            port: 80,
            refused: Some("backlog full")
        }
        .to_string(),
        "SYN to listener :80 dropped: backlog full"
    );
}

#[test]
fn a_traced_datagram_keeps_its_id_to_the_reader_and_the_answer_names_it() {
    let mut net = Net::new(2, 14, Default::default(), |_| {});
    let (sock, _) = net.stack(1).udp_bind(53).expect("bind");
    // A real exchange first, so that the server knows the client's MAC.
    let c = net.stack(0).tcp_connect(server_addr(81)).expect("connect");
    net.run_until(Duration::from_secs(1), |n| {
        n.stack(0).tcp_state(c) == Some(TcpState::Closed)
    });
    let now = net.sim.now();
    net.stack(1).set_trace(41);
    feed(net.stack(1), now, &mut udp_frame(5000, 53, b"question"));
    net.stack(1).set_trace(0);
    feed(net.stack(1), now, &mut udp_frame(5001, 53, b"untraced"));
    let mut buf = [0u8; 64];
    let mut read = |net: &mut Net| match net.stack(1).poll_udp_recv(sock, &mut cx(), &mut buf) {
        std::task::Poll::Ready(Ok((n, from, trace))) => (buf[..n].to_vec(), from, trace),
        other => panic!("no datagram: {other:?}"),
    };
    let (question, from, trace) = read(&mut net);
    assert_eq!(
        (&question[..], from.port(), trace),
        (&b"question"[..], 5000, 41)
    );
    let (other, _, untraced) = read(&mut net);
    assert_eq!((&other[..], untraced), (&b"untraced"[..], 0));
    // The answer goes out naming the frame it answers; nothing else does.
    let sent = net
        .stack(1)
        .poll_udp_send(sock, &mut cx(), b"answer", from, trace);
    assert!(matches!(sent, std::task::Poll::Ready(Ok(6))), "{sent:?}");
    let _ = net
        .stack(1)
        .poll_udp_send(sock, &mut cx(), b"other", from, 0);
    let mut out = Vec::new();
    net.stack(1).poll(now, &mut out);
    let traces: Vec<u64> = out.iter().map(|f| f.trace).collect();
    assert_eq!(traces, [41, 0]);
}

#[test]
fn a_connection_reset_before_accept_is_never_handed_out() {
    let mut net = Net::new(2, 15, Default::default(), |_| {});
    net.stack(1).tcp_listen(80, 16).expect("listen");
    // Established and queued, then reset by its client before the server
    // takes it (connect, then close with SO_LINGER 0).
    let doomed = net.stack(0).tcp_connect(server_addr(80)).expect("connect");
    net.run_until(Duration::from_secs(1), |n| {
        n.stack(1).status().counters.tcp_accepted == 1
    });
    net.stack(0).tcp_abort(doomed);
    net.run_until(Duration::from_secs(1), |n| {
        n.stack(0).tcp_state(doomed) == Some(TcpState::Closed)
    });
    net.step(Duration::from_millis(1));
    let live = net.stack(0).tcp_connect(server_addr(80)).expect("connect");
    net.run_until(Duration::from_secs(1), |n| {
        n.stack(1).status().counters.tcp_accepted == 2
    });
    // accept skips the reset one and hands out the live one, with its
    // peer's address.
    let taken = net.stack(1).poll_accept(80, &mut cx());
    let std::task::Poll::Ready(Ok((_, key))) = taken else {
        panic!("no connection: {taken:?}");
    };
    let client = net.stack(0).tcp_addrs(live).expect("client's addresses");
    assert_eq!(key.remote, client.local);
    assert_eq!(net.stack(1).status().counters.accept_reset, 1);
    assert!(accept(net.stack(1), 80).is_none());
}

#[test]
fn datagrams_from_port_0_or_too_large_are_counted_drops_not_errors() {
    let mut net = Net::new(2, 16, Default::default(), |_| {});
    let (sock, _) = net.stack(1).udp_bind(7).expect("bind");
    let now = net.sim.now();
    feed(net.stack(1), now, &mut udp_frame(0, 7, b"from port 0"));
    feed(net.stack(1), now, &mut udp_frame(5000, 7, &[7; 200]));
    feed(net.stack(1), now, &mut udp_frame(5001, 7, b"fits"));
    let mut buf = [0u8; 100];
    let got = net.stack(1).poll_udp_recv(sock, &mut cx(), &mut buf);
    let std::task::Poll::Ready(Ok((n, from, _))) = got else {
        panic!("no datagram: {got:?}");
    };
    assert_eq!((&buf[..n], from.port()), (&b"from port 0"[..], 0));
    // Echoing it back cannot reach anyone: a counted drop.
    let sent = net.stack(1).poll_udp_send(sock, &mut cx(), b"x", from, 0);
    assert!(matches!(sent, std::task::Poll::Ready(Ok(1))), "{sent:?}");
    // The 200-byte one does not fit the buffer: dropped, the next read
    // goes on to the one that fits.
    let got = net.stack(1).poll_udp_recv(sock, &mut cx(), &mut buf);
    let std::task::Poll::Ready(Ok((n, _, _))) = got else {
        panic!("no datagram: {got:?}");
    };
    assert_eq!(&buf[..n], b"fits");
    let c = net.stack(1).status().counters;
    assert_eq!((c.udp_unaddressable, c.udp_truncated), (1, 1));
}

#[test]
fn datagrams_that_find_their_socket_full_are_counted_drops() {
    let mut net = Net::new(2, 18, Default::default(), |_| {});
    let (sock, _) = net.stack(1).udp_bind(7).expect("bind");
    let now = net.sim.now();
    for i in 0..400u16 {
        feed(net.stack(1), now, &mut udp_frame(5000 + i, 7, b"datagram"));
    }
    let mut buf = [0u8; 100];
    let mut read = 0;
    while let std::task::Poll::Ready(Ok(_)) = net.stack(1).poll_udp_recv(sock, &mut cx(), &mut buf)
    {
        read += 1;
    }
    assert!((1..400).contains(&read), "{read} read");
    assert_eq!(net.stack(1).status().counters.udp_rx_full, 400 - read);
}

#[test]
fn a_reply_to_a_source_that_never_answers_arp_holds_no_one_else_s() {
    let mut net = Net::new(2, 17, Default::default(), |_| {});
    let (server, _) = net.stack(1).udp_bind(53).expect("bind");
    let (client, _) = net.stack(0).udp_bind(5353).expect("bind");
    // A question from a source on the switch that will never answer ARP
    // (spoofed), and its answer.
    let spoofed = Ipv4Addr::new(10, 0, 0, 99);
    let now = net.sim.now();
    let udp = UdpRepr {
        src_port: 4000,
        dst_port: 53,
    };
    let mut question = l3_frame(spoofed, IpProtocol::Udp, 8 + 5, |buf| {
        udp.emit(
            &mut UdpPacket::new_unchecked(buf),
            &IpAddress::Ipv4(spoofed),
            &IpAddress::Ipv4(addr(1)),
            5,
            |p| p.copy_from_slice(b"spoof"),
            &ChecksumCapabilities::default(),
        )
    });
    feed(net.stack(1), now, &mut question);
    let mut buf = [0u8; 64];
    let answer =
        |net: &mut Net, buf: &mut [u8]| match net.stack(1).poll_udp_recv(server, &mut cx(), buf) {
            std::task::Poll::Ready(Ok((n, from, _))) => {
                let reply = buf[..n].to_vec();
                net.stack(1)
                    .try_udp_send(server, &reply, from, 0)
                    .expect("send")
            }
            other => panic!("no question: {other:?}"),
        };
    assert!(answer(&mut net, &mut buf));
    // A real client asks next, and gets its answer at once: the spoofed
    // one's waits on its own.
    let sent = net
        .stack(0)
        .try_udp_send(client, b"real", server_addr(53), 0)
        .expect("send");
    assert!(sent);
    net.run_until(Duration::from_secs(1), |n| {
        matches!(
            n.stack(1).poll_udp_recv(server, &mut cx(), &mut [0u8; 64]),
            std::task::Poll::Ready(Ok(_))
        ) && n
            .stack(1)
            .try_udp_send(server, b"back", SocketAddr::from((addr(0), 5353)), 0)
            .expect("send")
    });
    let mut got = [0u8; 64];
    net.run_until(Duration::from_secs(1), |n| {
        matches!(
            n.stack(0).poll_udp_recv(client, &mut cx(), &mut got),
            std::task::Poll::Ready(Ok((4, _, _)))
        )
    });
    assert_eq!(&got[..4], b"back");
    assert_eq!(net.stack(1).status().unresolved.0, 1);
    // The spoofed source never answers: after 3 s its answer is dropped.
    net.run_until(Duration::from_secs(4), |n| {
        n.stack(1).status().counters.udp_unresolved == 1
    });
    assert_eq!(net.stack(1).status().unresolved, (0, 0));
}

#[test]
fn buffers_past_the_host_s_or_a_client_s_budget_are_small() {
    // Room for two full-size connections on the host, one per client.
    let mut net = Net::new(3, 18, Default::default(), |c| {
        let full = c.tcp.rx_buffer + c.tcp.tx_buffer;
        c.tcp.buffer_budget = 2 * full;
        c.tcp.client_buffer_share = full;
    });
    net.stack(1).tcp_listen(80, 16).expect("listen");
    let mut clients = Vec::new();
    for (i, host) in [0, 0, 2, 2].into_iter().enumerate() {
        clients.push(
            net.stack(host)
                .tcp_connect(server_addr(80))
                .expect("connect"),
        );
        net.run_until(Duration::from_secs(1), |n| {
            n.stack(1).status().counters.tcp_accepted == i as u64 + 1
        });
    }
    // Host 0's second connection passes its share; host 2's first fits
    // the host's budget, its second passes it.
    let c = net.stack(1).status().counters;
    assert_eq!(c.buffers_reduced, 2);
    // Each is served all the same.
    for (i, host) in [0, 0, 2, 2].into_iter().enumerate() {
        let id = accept(net.stack(1), 80).expect("accepted");
        let mut sent = 0;
        send_all(net.stack(1), id, &pattern(100_000), &mut sent);
        let mut got = Vec::new();
        net.run_until(Duration::from_secs(5), |n| {
            let mut sent_more = sent;
            send_all(n.stack(1), id, &pattern(100_000), &mut sent_more);
            sent = sent_more;
            recv_some(n.stack(host), clients[i], &mut got);
            got.len() == 100_000
        });
    }
}
