//! IPv6 in the router (RFC 8504's router part): neighbour discovery and
//! router advertisements (see `nd`), forwarding by longest prefix with
//! the hop limit decremented, never fragmenting (Packet Too Big instead,
//! never rate-limited so path-MTU discovery works), ICMPv6 errors and
//! echo (RFC 4443), link-local scope kept on its link (RFC 4291).

use crate::nd::{self, NdError, NdMessage, RaConfig};
use crate::{
    dhcp6, firewall, icmp, nat64, set_ethernet, Decision, Drop, IcmpError, IfaceId, Io, Link,
    Router,
};
use std::net::{IpAddr, Ipv6Addr};
use wire::ether::{EthernetHeader, ETHERTYPE_IPV6};
use wire::ip::{Family, Fragment, IpView, Transport, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use wire::{checksum, Frame, Mac};

/// ff02::1:2, where DHCPv6 clients find servers (RFC 8415 7.1).
const ALL_DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
const DHCP6_CLIENT_PORT: u16 = 546;
const DHCP6_SERVER_PORT: u16 = 547;

/// Solicited router advertisements at most this often per interface
/// (RFC 4861 MIN_DELAY_BETWEEN_RAS).
const MIN_DELAY_BETWEEN_RAS: std::time::Duration = std::time::Duration::from_secs(3);

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.is_unicast_link_local()
}

/// What `scratchnet status` says an interface's advertisements offer.
pub(crate) fn describe_ra(c: &RaConfig) -> String {
    let mut s = format!(
        "{} {}",
        c.prefix,
        if c.autonomous { "slaac" } else { "on-link" }
    );
    if c.managed {
        s.push_str(" M");
    }
    if c.other {
        s.push_str(" O");
    }
    for d in &c.rdnss {
        s.push_str(&format!(" rdnss {d}"));
    }
    s.push_str(&format!(" every {}s", c.interval.as_secs()));
    s
}

impl Router {
    /// Whether the router listens on the IPv6 multicast group `group` on
    /// `iface`: all-nodes, all-routers, or the solicited-node group of one
    /// of its addresses there.
    fn listens(&self, iface: IfaceId, group: Ipv6Addr) -> bool {
        let i = self.iface(iface);
        group == nd::ALL_NODES
            || group == nd::ALL_ROUTERS
            || (group == ALL_DHCP_SERVERS && i.dhcp6.is_some())
            || i.link_local.is_some_and(|a| nd::solicited_node(a) == group)
            || i.config
                .addr6
                .is_some_and(|n| nd::solicited_node(n.addr()) == group)
    }

    pub(crate) fn ip6_input(
        &mut self,
        io: &mut Io,
        iface: IfaceId,
        frame: Frame,
        view: IpView,
        l2_multicast: bool,
    ) {
        let (src, dst) = (v6(view.src), v6(view.dst));
        if src.is_multicast() || src.is_loopback() || dst.is_loopback() || dst.is_unspecified() {
            return self.discard(io, frame, Drop::Martian);
        }
        if dst.is_multicast() {
            if self.listens(iface, dst) {
                return self.local_input6(io, iface, frame, view);
            }
            // Multicast is not routed; MLD reports and the like end here.
            return self.discard(io, frame, Drop::Broadcast);
        }
        if self.iface(iface).owns(view.dst) {
            return self.local_input6(io, iface, frame, view);
        }
        if self.nat64.as_ref().is_some_and(|n| n.translates(view.dst)) {
            return self.nat64_out(io, iface, frame, view);
        }
        if l2_multicast || src.is_unspecified() {
            return self.discard(io, frame, Drop::Broadcast);
        }
        if is_link_local(dst) {
            // Another station's link-local address, or one of the router's
            // other interfaces': link-local never leaves its link.
            return self.discard(io, frame, Drop::Martian);
        }
        if self.ifaces.iter().any(|i| i.owns(view.dst)) {
            return self.local_input6(io, iface, frame, view);
        }
        if is_link_local(src) {
            if let Some(from) = self.addr_of(iface, Family::V6) {
                self.icmp_error(io, IcmpError::BeyondScope, from, &frame, &view);
            }
            return self.discard(io, frame, Drop::Martian);
        }
        self.forward6(io, iface, frame, view);
    }

    /// For the router itself: neighbour discovery, echo, errors for the
    /// rest. Errors come from the address the packet was sent to.
    fn local_input6(&mut self, io: &mut Io, iface: IfaceId, frame: Frame, view: IpView) {
        if view.fragment != Fragment::Whole {
            // Includes ND in fragments, which RFC 6980 forbids.
            return self.discard(io, frame, Drop::FragmentToSelf);
        }
        let to_group = v6(view.dst).is_multicast();
        match view.proto {
            PROTO_ICMPV6 => {
                let l4 = view.payload(frame.data());
                let pseudo = checksum::pseudo_header(
                    &v6(view.src).octets(),
                    &v6(view.dst).octets(),
                    PROTO_ICMPV6,
                    l4.len() as u32,
                );
                if !frame.hdr.needs_csum() && checksum::fold(checksum::sum(pseudo, l4)) != 0xffff {
                    return self.discard(io, frame, Drop::BadChecksum);
                }
                let Transport::Icmp { ty, .. } = view.transport else {
                    return self.discard(io, frame, Drop::Malformed);
                };
                match ty {
                    icmp::ECHO_REQUEST_V6 if !to_group => self.echo_reply(io, frame, view),
                    nd::ROUTER_SOLICITATION..=nd::REDIRECT => self.nd_input(io, iface, frame, view),
                    _ => {
                        self.counters.delivered += 1;
                        io.pool.put(frame);
                    }
                }
            }
            PROTO_UDP
                if view.ports().is_some_and(|(_, d)| d == DHCP6_SERVER_PORT)
                    && self.iface(iface).dhcp6.is_some() =>
            {
                self.dhcp6_input(io, iface, frame, &view)
            }
            _ if to_group => self.discard(io, frame, Drop::Broadcast),
            PROTO_UDP | PROTO_TCP => {
                self.icmp_error(io, IcmpError::PortUnreachable, view.dst, &frame, &view);
                self.discard(io, frame, Drop::Unreachable);
            }
            _ => {
                self.icmp_error(io, IcmpError::ProtocolUnreachable, view.dst, &frame, &view);
                self.discard(io, frame, Drop::Unreachable);
            }
        }
    }

    /// A neighbour discovery message: answers solicitations for the
    /// router's own addresses (duplicate address detection included) and
    /// router solicitations, learns neighbours that talk to it. A
    /// solicitation for any other address teaches and costs nothing.
    fn nd_input(&mut self, io: &mut Io, iface: IfaceId, frame: Frame, view: IpView) {
        let Link::Ethernet { mac } = self.iface(iface).config.link else {
            return io.pool.put(frame);
        };
        let src = v6(view.src);
        let eth_src = EthernetHeader::parse(frame.data()).map(|e| e.src).ok();
        let message = nd::parse(view.payload(frame.data()), view.hop_limit, src);
        io.pool.put(frame);
        let message = match message {
            Ok(m) => m,
            Err(NdError::NotOnLink | NdError::Malformed) => {
                self.counters.drop(Drop::InvalidNd);
                return self.note(|_| Decision::Drop {
                    reason: Drop::InvalidNd.as_str(),
                });
            }
        };
        self.counters.delivered += 1;
        match message {
            NdMessage::NeighborSolicit { target, source_mac } => {
                if !self.iface(iface).owns(IpAddr::V6(target)) {
                    return;
                }
                let dad = src.is_unspecified();
                if !dad {
                    if let Some(at) = source_mac.filter(|m| m.is_unicast()) {
                        self.neighbour_confirmed(io, iface, IpAddr::V6(src), at);
                    }
                }
                // RFC 4861 7.2.4: to the soliciting address, or to all
                // nodes (unsolicited) when it was duplicate address
                // detection.
                let (dst, dst_mac) = if dad {
                    (nd::ALL_NODES, nd::multicast_mac(nd::ALL_NODES))
                } else {
                    match source_mac.or(eth_src) {
                        Some(m) => (src, m),
                        None => return,
                    }
                };
                let reply = nd::advertisement(target, mac, !dad);
                let from = target;
                let mut f = icmp::icmpv6_frame(io.pool, from, dst, 255, &reply);
                set_ethernet(&mut f, dst_mac, mac, ETHERTYPE_IPV6);
                self.counters.nd_adverts_sent += 1;
                self.note(|_| Decision::NeighbourAdvert {
                    to: IpAddr::V6(dst),
                });
                io.out.push((iface, f));
            }
            NdMessage::NeighborAdvert {
                target, target_mac, ..
            } => {
                let target = IpAddr::V6(target);
                if self.iface(iface).owns(target) {
                    // Another station claims our address.
                    self.counters.drop(Drop::AddressConflict);
                    return;
                }
                // Only an entry the router asked for or holds is updated:
                // an unsolicited advertisement creates nothing (RFC 4861
                // 7.2.5).
                if let Some(at) = target_mac.or(eth_src).filter(|m| m.is_unicast()) {
                    if self.neigh.knows(iface, target) || self.neigh.waits_for(iface, target) {
                        self.neighbour_confirmed(io, iface, target, at);
                    }
                }
            }
            NdMessage::RouterSolicit { source_mac } => {
                if let (false, Some(at)) = (src.is_unspecified(), source_mac) {
                    if self.neigh.knows(iface, IpAddr::V6(src)) {
                        self.neighbour_confirmed(io, iface, IpAddr::V6(src), at);
                    }
                }
                let i = self.iface(iface);
                let spaced = i
                    .last_ra
                    .is_none_or(|t| io.now.saturating_since(t) >= MIN_DELAY_BETWEEN_RAS);
                if i.config.ra.is_some() && spaced {
                    self.send_router_advertisement(io, iface);
                }
            }
            NdMessage::RouterAdvert | NdMessage::Redirect => {}
        }
    }

    /// A DHCPv6 client message: answered from the interface's link-local
    /// address to the client's, at its link-layer address.
    fn dhcp6_input(&mut self, io: &mut Io, iface: IfaceId, frame: Frame, view: &IpView) {
        let src_mac = EthernetHeader::parse(frame.data()).map(|e| e.src).ok();
        let message = view.payload(frame.data()).get(8..).and_then(dhcp6::decode);
        let client = v6(view.src);
        io.pool.put(frame);
        let (Some(message), Some(src_mac)) = (message, src_mac) else {
            self.counters.drop(Drop::Malformed);
            return;
        };
        self.counters.delivered += 1;
        let i = &mut self.ifaces[iface.0 as usize];
        let (Some(server), Link::Ethernet { mac }, Some(me)) =
            (i.dhcp6.as_mut(), i.config.link, i.link_local)
        else {
            return;
        };
        let Some(reply) = server.handle(io.now, src_mac, &message) else {
            return;
        };
        let Ok(payload) = dhcproto::Encodable::to_vec(&reply) else {
            return;
        };
        let mut udp = Vec::with_capacity(8 + payload.len());
        udp.extend_from_slice(&DHCP6_SERVER_PORT.to_be_bytes());
        udp.extend_from_slice(&DHCP6_CLIENT_PORT.to_be_bytes());
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&payload);
        let c = wire::ip::transport_checksum(me.into(), client.into(), PROTO_UDP, &udp);
        udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
        let mut f = io.pool.get();
        f.extend_from_slice(&[0u8; 14]);
        f.extend_from_slice(&icmp::ipv6_header(
            me,
            client,
            PROTO_UDP,
            udp.len() as u16,
            64,
        ));
        f.extend_from_slice(&udp);
        set_ethernet(&mut f, src_mac, mac, ETHERTYPE_IPV6);
        self.counters.dhcp6_replies_sent += 1;
        let address = dhcp6::first_address(&reply).unwrap_or(Ipv6Addr::UNSPECIFIED);
        let kind = format!("{:?}", reply.msg_type()).to_lowercase();
        self.note(|_| Decision::Dhcp {
            reply: kind,
            address: address.into(),
        });
        io.out.push((iface, f));
    }

    /// An IPv6 packet to the NAT64 prefix: translated to IPv4 and routed.
    fn nat64_out(&mut self, io: &mut Io, iface: IfaceId, frame: Frame, view: IpView) {
        let Some(in_addr) = self.addr_of(iface, Family::V6) else {
            return self.discard(io, frame, Drop::UnsupportedProtocol);
        };
        if view.hop_limit <= 1 {
            self.icmp_error(io, IcmpError::TtlExceeded, in_addr, &frame, &view);
            return self.discard(io, frame, Drop::TtlExpired);
        }
        let Some(nat64) = self.nat64.as_mut() else {
            return io.pool.put(frame);
        };
        match nat64.outbound(io.now, frame.data(), &view) {
            nat64::Outcome::Translated(packet, dst) => {
                let from = view.dst;
                self.note(|_| Decision::Nat64 { from, to: dst });
                self.send_translated(io, packet, dst, in_addr, frame, &view);
            }
            nat64::Outcome::Refused => {
                self.icmp_error(io, IcmpError::AdminProhibited, in_addr, &frame, &view);
                self.discard(io, frame, Drop::Nat64);
            }
            nat64::Outcome::Dropped(_) | nat64::Outcome::Untouched => {
                self.discard(io, frame, Drop::Nat64)
            }
        }
    }

    /// Forwards a packet that came in on `iface`.
    fn forward6(&mut self, io: &mut Io, iface: IfaceId, frame: Frame, mut view: IpView) {
        let Some(in_addr) = self.addr_of(iface, Family::V6) else {
            return self.discard(io, frame, Drop::UnsupportedProtocol);
        };
        let Some((frame, oif, nh, mtu)) = self.route_forward(io, frame, &view, in_addr) else {
            return;
        };
        if Self::wire_size(&frame, &view) > mtu {
            // Routers never fragment IPv6 (RFC 8200 5).
            let err = IcmpError::FragmentationNeeded { mtu: mtu as u16 };
            self.icmp_error(io, err, in_addr, &frame, &view);
            return self.discard(io, frame, Drop::FragmentationNeeded);
        }
        if let Some((outside, fw)) = self.firewall.as_mut() {
            let verdict = if iface == *outside && oif != *outside {
                Some(fw.inbound(io.now, &view, frame.data()))
            } else if oif == *outside && iface != *outside {
                let from = Mac::from_slice(&frame.data()[6..]).unwrap_or_default();
                Some(fw.outbound(io.now, &view, from))
            } else {
                None
            };
            match verdict {
                None => {}
                Some(firewall::Verdict::Pass(outcome)) => {
                    self.note(|_| Decision::Firewall { outcome })
                }
                Some(firewall::Verdict::Pinhole) => {
                    self.note(|_| Decision::Firewall { outcome: "pinhole" })
                }
                Some(firewall::Verdict::Refused) => {
                    self.note(|_| Decision::Firewall {
                        outcome: "refused: table full",
                    });
                    self.icmp_error(io, IcmpError::AdminProhibited, in_addr, &frame, &view);
                    return self.discard(io, frame, Drop::Firewall);
                }
                Some(firewall::Verdict::Dropped(why)) => {
                    self.note(|_| Decision::Firewall { outcome: why });
                    return self.discard(io, frame, Drop::Firewall);
                }
            }
        }
        let mut frame = frame;
        self.pass_on(&mut frame, &mut view);
        self.output(io, oif, nh, frame);
    }

    /// A neighbour solicitation for `target`: to its solicited-node group,
    /// or unicast to `known` to confirm an entry.
    pub(crate) fn send_solicitation(
        &mut self,
        io: &mut Io,
        iface: IfaceId,
        target: Ipv6Addr,
        known: Option<Mac>,
    ) {
        let i = self.iface(iface);
        let (Link::Ethernet { mac }, Some(link_local)) = (i.config.link, i.link_local) else {
            return;
        };
        // The source a host expects (RFC 6724 selection, as Linux does): the
        // interface's global address for a target in its prefix, so that
        // the neighbour learns the very address it routes through.
        let from = match i.config.addr6 {
            Some(a) if a.contains(&target) => a.addr(),
            _ => link_local,
        };
        let (dst, dst_mac) = match known {
            Some(m) => (target, m),
            None => {
                let group = nd::solicited_node(target);
                (group, nd::multicast_mac(group))
            }
        };
        let mut f = icmp::icmpv6_frame(io.pool, from, dst, 255, &nd::solicitation(target, mac));
        set_ethernet(&mut f, dst_mac, mac, ETHERTYPE_IPV6);
        self.counters.nd_solicitations_sent += 1;
        io.out.push((iface, f));
    }

    /// A router advertisement to all nodes on `iface`; the next
    /// unsolicited one is due an interval later.
    pub(crate) fn send_router_advertisement(&mut self, io: &mut Io, iface: IfaceId) {
        let i = &mut self.ifaces[iface.0 as usize];
        let (Some(config), Link::Ethernet { mac }, Some(from)) =
            (&i.config.ra, i.config.link, i.link_local)
        else {
            i.next_ra = None;
            return;
        };
        let message = nd::router_advertisement(config, mac, i.config.mtu);
        i.next_ra = Some(io.now + config.interval);
        i.last_ra = Some(io.now);
        let mut f = icmp::icmpv6_frame(io.pool, from, nd::ALL_NODES, 255, &message);
        set_ethernet(
            &mut f,
            nd::multicast_mac(nd::ALL_NODES),
            mac,
            ETHERTYPE_IPV6,
        );
        self.counters.router_adverts_sent += 1;
        io.out.push((iface, f));
    }
}
