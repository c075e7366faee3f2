//! IPv4 in the router: ARP (RFC 826), RFC 1812 forwarding with
//! fragmentation (RFC 791), the NAT on the outside interface, and the
//! DHCP server.

use crate::conntrack::Proto;
use crate::nat::Verdict;
use crate::{dhcp, icmp, set_ethernet, Decision, Drop, IcmpError, IfaceId, Io, Link, Router};
use dhcproto::Encodable;
use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use wire::ether::{EthernetHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4, HEADER_LEN};
use wire::ip::{Fragment, IpView, Transport, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use wire::{checksum, Frame, Mac};

fn martian_source(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 0 || o[0] == 127 || (o[0] == 169 && o[1] == 254) || a.is_multicast() || o[0] >= 240
}

fn martian_destination(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 0 || o[0] == 127 || (o[0] >= 240 && !a.is_broadcast())
}

fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

/// Whether the packet is a UDP datagram to the DHCP server port.
fn to_dhcp_server(view: &IpView) -> bool {
    view.proto == PROTO_UDP && matches!(view.ports(), Some((_, 67)))
}

impl Router {
    fn addr4(&self, iface: IfaceId) -> Ipv4Addr {
        self.iface(iface).config.addr.addr()
    }

    pub(crate) fn arp_input(&mut self, io: &mut Io, iface: IfaceId, mut frame: Frame) {
        let Link::Ethernet { mac } = self.iface(iface).config.link else {
            return self.discard(io, frame, Drop::UnsupportedProtocol);
        };
        let repr =
            ArpPacket::new_checked(&frame.data()[HEADER_LEN..]).and_then(|p| ArpRepr::parse(&p));
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr: spa,
            target_protocol_addr: tpa,
            ..
        }) = repr
        else {
            return self.discard(io, frame, Drop::Malformed);
        };
        let sha = Mac(source_hardware_addr.0);
        let subnet = self.iface(iface).config.addr;
        if !spa.is_unspecified() && !subnet.contains(&spa) {
            return self.discard(io, frame, Drop::ArpOffSubnet);
        }
        let me = self.addr4(iface);
        let for_me = tpa == me;
        // RFC 826: update a known sender (gratuitous ARP included); learn a
        // new one only when it is talking to us. Probes (sender 0.0.0.0)
        // teach nothing.
        let sender = IpAddr::V4(spa);
        if !spa.is_unspecified() && sha.is_unicast() && (for_me || self.neigh.knows(iface, sender))
        {
            self.neighbour_confirmed(io, iface, sender, sha);
        }
        if operation == ArpOperation::Request && for_me {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: EthernetAddress(mac.0),
                source_protocol_addr: me,
                target_hardware_addr: source_hardware_addr,
                target_protocol_addr: spa,
            };
            frame.truncate(HEADER_LEN + reply.buffer_len());
            reply.emit(&mut ArpPacket::new_unchecked(
                &mut frame.data_mut()[HEADER_LEN..],
            ));
            set_ethernet(&mut frame, sha, mac, ETHERTYPE_ARP);
            self.counters.arp_replies_sent += 1;
            self.note(|_| Decision::ArpReply { to: spa });
            io.out.push((iface, frame));
        } else {
            io.pool.put(frame);
        }
    }

    pub(crate) fn send_arp_request(
        &mut self,
        io: &mut Io,
        iface: IfaceId,
        target: Ipv4Addr,
        to: Mac,
    ) {
        let Link::Ethernet { mac } = self.iface(iface).config.link else {
            return;
        };
        let req = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress(mac.0),
            source_protocol_addr: self.addr4(iface),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target,
        };
        let mut frame = io.pool.get();
        frame.extend_from_slice(&[0u8; HEADER_LEN + 28]);
        req.emit(&mut ArpPacket::new_unchecked(
            &mut frame.data_mut()[HEADER_LEN..],
        ));
        set_ethernet(&mut frame, to, mac, ETHERTYPE_ARP);
        self.counters.arp_requests_sent += 1;
        io.out.push((iface, frame));
    }

    pub(crate) fn ip4_input(
        &mut self,
        io: &mut Io,
        iface: IfaceId,
        mut frame: Frame,
        mut view: IpView,
        l2_multicast: bool,
    ) {
        let (src, dst) = (v4(view.src), v4(view.dst));
        let subnet = self.iface(iface).config.addr;
        let broadcast =
            dst.is_broadcast() || (subnet.prefix_len() < 31 && dst == subnet.broadcast());
        let dhcp_here = to_dhcp_server(&view) && self.iface(iface).dhcp.is_some();
        if broadcast || dst.is_multicast() || l2_multicast {
            if broadcast && dhcp_here {
                return self.dhcp_input(io, iface, frame, &view);
            }
            // Routers forward neither broadcasts nor multicast, nor unicast
            // packets that came as link-layer broadcast (RFC 1812 5.3.4).
            return self.discard(io, frame, Drop::Broadcast);
        }
        if martian_source(src) || martian_destination(dst) {
            return self.discard(io, frame, Drop::Martian);
        }
        if let Some(n) = self.nat64.as_mut().filter(|n| n.owns(view.dst)) {
            match n.inbound(io.now, frame.data(), &view) {
                crate::nat64::Outcome::Untouched => {}
                crate::nat64::Outcome::Translated(packet, to) => {
                    let in_addr = IpAddr::V4(self.addr4(iface));
                    if view.hop_limit <= 1 {
                        self.icmp_error(io, IcmpError::TtlExceeded, in_addr, &frame, &view);
                        return self.discard(io, frame, Drop::TtlExpired);
                    }
                    let from = view.src;
                    self.note(|_| Decision::Nat64 { from, to });
                    return self.send_translated(io, packet, to, in_addr, frame, &view);
                }
                crate::nat64::Outcome::Dropped(_) | crate::nat64::Outcome::Refused => {
                    return self.discard(io, frame, Drop::Nat64)
                }
            }
        }
        if let Some((outside, nat)) = self.nat.as_mut().filter(|(_, n)| n.external() == dst) {
            let before = self
                .decisions
                .is_some()
                .then(|| (endpoints(&view), nat.counters().sessions_created));
            let verdict = if iface == *outside {
                nat.inbound(io.now, &mut frame, &mut view)
            } else {
                nat.hairpin(io.now, &mut frame, &mut view)
            };
            match verdict {
                Verdict::Translated => {
                    self.note_nat(before, &view, false);
                    return self.forward4(io, iface, frame, view, true);
                }
                Verdict::Untouched => {}
                Verdict::Refused => {
                    let from = IpAddr::V4(self.addr4(iface));
                    self.icmp_error(io, IcmpError::AdminProhibited, from, &frame, &view);
                    return self.discard(io, frame, Drop::Nat);
                }
                Verdict::Dropped => return self.discard(io, frame, Drop::Nat),
            }
        }
        if self.ifaces.iter().any(|i| i.owns(view.dst)) {
            self.local_input4(io, iface, frame, view)
        } else {
            self.forward4(io, iface, frame, view, false)
        }
    }

    /// Errors about a packet for the router itself come from the address
    /// it was sent to, as Linux does, so that traceroute's last hop names
    /// the destination.
    fn local_input4(&mut self, io: &mut Io, iface: IfaceId, frame: Frame, view: IpView) {
        if view.fragment != Fragment::Whole {
            return self.discard(io, frame, Drop::FragmentToSelf);
        }
        let dst = view.dst;
        match view.proto {
            PROTO_ICMP => {
                self.counters.delivered += 1;
                let Transport::Icmp {
                    ty: icmp::ECHO_REQUEST,
                    ..
                } = view.transport
                else {
                    return io.pool.put(frame);
                };
                self.echo_reply(io, frame, view)
            }
            PROTO_UDP if to_dhcp_server(&view) && self.iface(iface).dhcp.is_some() => {
                self.dhcp_input(io, iface, frame, &view)
            }
            PROTO_UDP | PROTO_TCP => {
                self.icmp_error(io, IcmpError::PortUnreachable, dst, &frame, &view);
                self.discard(io, frame, Drop::Unreachable);
            }
            _ => {
                self.icmp_error(io, IcmpError::ProtocolUnreachable, dst, &frame, &view);
                self.discard(io, frame, Drop::Unreachable);
            }
        }
    }

    /// Answers an echo request to one of the router's addresses (either
    /// family), from the address it was sent to.
    pub(crate) fn echo_reply(&mut self, io: &mut Io, mut frame: Frame, mut view: IpView) {
        if frame.hdr.needs_csum() {
            let hdr = frame.hdr;
            if wire::offload::complete_checksum(frame.data_mut(), &hdr).is_err() {
                return self.discard(io, frame, Drop::BadOffload);
            }
            frame.hdr = wire::VnetHdr::PLAIN;
        }
        let me = view.dst;
        match icmp::echo_reply_in_place(&mut frame, &mut view, me) {
            Some(peer) => {
                self.counters.echo_replies_sent += 1;
                self.note(|_| Decision::EchoReply { to: peer });
                self.send_local(io, frame, peer);
            }
            None => self.discard(io, frame, Drop::Malformed),
        }
    }

    /// Forwards a packet that came in on `iface`; `translated`: the NAT
    /// has just let it in.
    fn forward4(
        &mut self,
        io: &mut Io,
        iface: IfaceId,
        frame: Frame,
        mut view: IpView,
        translated: bool,
    ) {
        let in_addr = IpAddr::V4(self.addr4(iface));
        let Some((mut frame, oif, nh, mtu)) = self.route_forward(io, frame, &view, in_addr) else {
            return;
        };
        let too_big = Self::wire_size(&frame, &view) > mtu;
        if too_big && (view.dont_fragment || frame.hdr.is_gso()) {
            if view.dont_fragment {
                let err = IcmpError::FragmentationNeeded { mtu: mtu as u16 };
                self.icmp_error(io, err, in_addr, &frame, &view);
                return self.discard(io, frame, Drop::FragmentationNeeded);
            }
            return self.discard(io, frame, Drop::BadOffload);
        }
        if let Some(outside) = self.nat.as_ref().map(|(o, _)| *o) {
            if iface == outside && oif != outside && !translated {
                // Only what the NAT lets in reaches the inside.
                return self.discard(io, frame, Drop::NatInbound);
            }
            if oif == outside && iface != outside {
                // Strict reverse-path check: a source the router would not
                // reach through `iface` is spoofed, and must not leave
                // with a mapping (or its inside address).
                if self.routes.lookup(view.src).map(|r| r.iface) != Some(iface) {
                    return self.discard(io, frame, Drop::SpoofedSource);
                }
                let Some((_, nat)) = self.nat.as_mut() else {
                    return io.pool.put(frame);
                };
                let before = self
                    .decisions
                    .is_some()
                    .then(|| (endpoints(&view), nat.counters().sessions_created));
                match nat.outbound(io.now, &mut frame, &mut view) {
                    Verdict::Translated => self.note_nat(before, &view, true),
                    Verdict::Untouched => {}
                    Verdict::Refused => {
                        self.icmp_error(io, IcmpError::AdminProhibited, in_addr, &frame, &view);
                        return self.discard(io, frame, Drop::Nat);
                    }
                    Verdict::Dropped => return self.discard(io, frame, Drop::Nat),
                }
            }
        }
        self.pass_on(&mut frame, &mut view);
        if too_big {
            if frame.hdr.needs_csum() {
                // Fragments cannot carry a partial checksum: the receiver
                // checks the reassembled packet, so finish it first.
                let hdr = frame.hdr;
                if wire::offload::complete_checksum(frame.data_mut(), &hdr).is_err() {
                    return self.discard(io, frame, Drop::BadOffload);
                }
                frame.hdr = wire::VnetHdr::PLAIN;
            }
            return self.fragment(io, oif, nh, frame, &view, mtu);
        }
        self.output(io, oif, nh, frame);
    }

    /// Cuts a packet (DF clear) into fragments that fit `mtu` and sends
    /// them on (`wire::fragment`).
    fn fragment(
        &mut self,
        io: &mut Io,
        oif: IfaceId,
        nh: IpAddr,
        frame: Frame,
        view: &IpView,
        mtu: usize,
    ) {
        let mut pieces = Vec::new();
        if wire::fragment::ipv4(&frame, view, mtu, io.pool, &mut pieces).is_err() {
            // No room for even 8 bytes of payload (interface MTUs are at
            // least 68, which always has room: RFC 791).
            return self.discard(io, frame, Drop::FragmentationNeeded);
        }
        self.counters.fragmented += 1;
        self.counters.fragments_sent += pieces.len() as u64;
        let fragments = pieces.len();
        self.note(|_| Decision::Fragmented { fragments, mtu });
        io.pool.put(frame);
        for f in pieces {
            self.output(io, oif, nh, f);
        }
    }

    fn dhcp_input(&mut self, io: &mut Io, iface: IfaceId, frame: Frame, view: &IpView) {
        let src_mac = EthernetHeader::parse(frame.data()).map(|e| e.src).ok();
        let message = view.payload(frame.data()).get(8..).and_then(dhcp::decode);
        io.pool.put(frame);
        let (Some(message), Some(src_mac)) = (message, src_mac) else {
            self.counters.drop(Drop::Malformed);
            return;
        };
        self.counters.delivered += 1;
        let me = self.addr4(iface);
        let ifc = &mut self.ifaces[iface.0 as usize];
        let (Some(server), Link::Ethernet { mac }) = (ifc.dhcp.as_mut(), ifc.config.link) else {
            return;
        };
        let Some(reply) = server.handle(io.now, src_mac, &message) else {
            return;
        };
        let Ok(payload) = reply.message.to_vec() else {
            return;
        };
        let udp_len = 8 + payload.len();
        let mut udp = [0u8; 8];
        udp[0..2].copy_from_slice(&67u16.to_be_bytes());
        udp[2..4].copy_from_slice(&68u16.to_be_bytes());
        udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        let pseudo =
            checksum::pseudo_header(&me.octets(), &reply.ip_dst.octets(), 17, udp_len as u32);
        let c = checksum::finish(checksum::sum(checksum::sum(pseudo, &udp), &payload));
        udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
        let ident = self.next_ident();
        let mut f = io.pool.get();
        f.extend_from_slice(&[0u8; HEADER_LEN]);
        f.extend_from_slice(&icmp::ipv4_header(
            me,
            reply.ip_dst,
            IpProtocol::Udp,
            udp_len as u16,
            ident,
            0,
        ));
        f.extend_from_slice(&udp);
        f.extend_from_slice(&payload);
        set_ethernet(&mut f, reply.mac_dst, mac, ETHERTYPE_IPV4);
        self.counters.dhcp_replies_sent += 1;
        let kind = reply.message.opts().msg_type();
        self.note(|_| Decision::Dhcp {
            reply: kind.map_or("reply".to_owned(), |k| format!("{k:?}").to_lowercase()),
            address: reply.message.yiaddr().into(),
        });
        io.out.push((iface, f));
    }

    /// Records what the NAT just did, given the packet's endpoints and the
    /// session count before (`None` when no trace is on).
    fn note_nat(
        &mut self,
        before: Option<(Option<Endpoints>, u64)>,
        view: &IpView,
        outbound: bool,
    ) {
        let Some((Some(b), created)) = before else {
            return;
        };
        let Some(a) = endpoints(view) else { return };
        let new_mapping = self
            .nat
            .as_ref()
            .is_some_and(|(_, n)| n.counters().sessions_created > created);
        let (from, to) = if outbound {
            (b.src, a.src)
        } else {
            (b.dst, a.dst)
        };
        let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
            return;
        };
        self.note(|_| Decision::Nat {
            outbound,
            proto: a.proto,
            from,
            to,
            new_mapping,
        });
    }
}

/// The transport endpoints of a packet (an ICMP echo's identifier stands
/// for the port), for traces.
struct Endpoints {
    proto: Proto,
    src: SocketAddr,
    dst: SocketAddr,
}

fn endpoints(view: &IpView) -> Option<Endpoints> {
    let (proto, sport, dport) = match view.transport {
        Transport::Ports { src, dst, .. } if view.proto == PROTO_TCP => (Proto::Tcp, src, dst),
        Transport::Ports { src, dst, .. } => (Proto::Udp, src, dst),
        Transport::Icmp {
            ident: Some(id), ..
        } => (Proto::Icmp, id, id),
        _ => return None,
    };
    Some(Endpoints {
        proto,
        src: SocketAddr::new(view.src, sport),
        dst: SocketAddr::new(view.dst, dport),
    })
}
