//! Synthetic frames for what-if traces (`scratchnet trace --inject HOST
//! SPEC`): what a host would send, built from the topology.
//!
//! A spec is `PROTO DST[:PORT] [from SRC[:PORT]] [ttl N]`, PROTO one of
//! `tcp` (a SYN), `udp` or `icmp` (an echo request, ICMPv6 for an IPv6
//! destination); an IPv6 endpoint with a port is written `[ADDR]:PORT`.
//! The source defaults to the host's address of the destination's family
//! (its lease for a DHCP host, its SLAAC address for a SLAAC host) and
//! port 40000; the frame goes to its gateway's MAC, or to the
//! destination's if that is on the host's own subnet.

use crate::LabView;
use ipnet::IpNet;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
    Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr,
    TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use topology::{Attachment, HostAddress, HostAddress6, HostSpec, Topology};
use wire::Mac;

/// What is wrong with a probe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

fn err(s: impl Into<String>) -> ProbeError {
    ProbeError(s.into())
}

/// What a probe carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
}

/// A parsed spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spec {
    proto: Proto,
    dst: SocketAddr,
    src: Option<(IpAddr, Option<u16>)>,
    ttl: u8,
}

/// `ADDR`, `V4:PORT` or `[V6]:PORT`.
fn endpoint(word: &str) -> Result<(IpAddr, Option<u16>), ProbeError> {
    if let Ok(a) = word.parse::<SocketAddr>() {
        return Ok((a.ip(), Some(a.port())));
    }
    if let Ok(ip) = word.trim_start_matches('[').trim_end_matches(']').parse() {
        return Ok((ip, None));
    }
    match word.rsplit_once(':') {
        Some((ip, port)) if ip.parse::<Ipv4Addr>().is_ok() => {
            Err(err(format!("`{port}` is not a port")))
        }
        _ => Err(err(format!(
            "`{word}` is not an IP address (an IPv6 one with a port is written [ADDR]:PORT)"
        ))),
    }
}

fn parse(spec: &str) -> Result<Spec, ProbeError> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let usage = "write PROTO DST[:PORT] [from SRC[:PORT]] [ttl N], like `tcp 203.0.113.11:80` or `tcp [2001:db8:113::11]:80`";
    let (proto, dst) = match words.as_slice() {
        [proto, dst, ..] => (*proto, *dst),
        _ => return Err(err(usage)),
    };
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "icmp" | "icmp6" => Proto::Icmp,
        other => return Err(err(format!("`{other}` is not tcp, udp or icmp; {usage}"))),
    };
    let (ip, port) = endpoint(dst)?;
    let default_port = if proto == Proto::Icmp { 0 } else { 80 };
    let mut spec = Spec {
        proto,
        dst: SocketAddr::new(ip, port.unwrap_or(default_port)),
        src: None,
        ttl: 64,
    };
    let mut rest = words[2..].iter();
    while let Some(word) = rest.next() {
        let mut value = || {
            rest.next()
                .ok_or_else(|| err(format!("`{word}` needs a value")))
        };
        match *word {
            "from" => spec.src = Some(endpoint(value()?)?),
            "ttl" => {
                let value = value()?;
                spec.ttl = value
                    .parse()
                    .map_err(|_| err(format!("`{value}` is not a TTL (0 to 255)")))?
            }
            other => return Err(err(format!("`{other}` is not understood; {usage}"))),
        }
    }
    if spec.src.is_some_and(|(s, _)| s.is_ipv4() != ip.is_ipv4()) {
        return Err(err("the source and destination are of different families"));
    }
    Ok(spec)
}

/// A host's own address and on-link subnet in `family_of`'s family, and
/// its default router's address (`None`: it has no such address).
fn host_end(
    lab: &Topology,
    h: &HostSpec,
    v6: bool,
    leased: Option<Ipv4Addr>,
) -> (Option<IpAddr>, Option<IpNet>, Option<IpAddr>) {
    let switch = lab.switch(&h.switch);
    let router_on = |want: &dyn Fn(&topology::InterfaceSpec) -> Option<IpAddr>| {
        lab.routers.iter().find_map(|r| {
            r.interfaces
                .iter()
                .find(|i| i.attachment == Attachment::Switch(h.switch.clone()))
                .and_then(want)
        })
    };
    if !v6 {
        let (own, subnet) = match h.address {
            HostAddress::Static(net) => (
                Some(net.addr()),
                switch.and_then(|s| s.subnet).or(Some(net.trunc())),
            ),
            HostAddress::Dhcp => (leased, switch.and_then(|s| s.subnet)),
            HostAddress::None => (None, None),
        };
        let gateway = h
            .gateway
            .map(IpAddr::V4)
            .or_else(|| router_on(&|i| Some(IpAddr::V4(i.address.addr()))));
        return (own.map(IpAddr::V4), subnet.map(IpNet::V4), gateway);
    }
    let subnet6 = switch.and_then(|s| s.subnet6);
    let own = lab.host_address6(h).map(|n| n.addr());
    let gateway = h
        .gateway6
        .map(IpAddr::V6)
        .or_else(|| router_on(&|i| i.ra.as_ref().and(i.address6).map(|a| IpAddr::V6(a.addr()))));
    (own.map(IpAddr::V6), subnet6.map(IpNet::V6), gateway)
}

impl LabView {
    /// The MAC of the node (host, service or router interface) that has
    /// address `ip` on `switch`.
    fn mac_on(&self, switch: &str, ip: IpAddr) -> Option<Mac> {
        let lab = self.topology();
        let host = lab.hosts.iter().find(|h| {
            h.switch == switch
                && (matches!(h.address, HostAddress::Static(a) if IpAddr::V4(a.addr()) == ip)
                    || matches!(h.address6, Some(HostAddress6::Static(a)) if IpAddr::V6(a.addr()) == ip))
        });
        let service = lab.services.iter().find(|s| {
            s.switch == switch
                && (IpAddr::V4(s.address.addr()) == ip
                    || s.address6.is_some_and(|a| IpAddr::V6(a.addr()) == ip))
        });
        let router = lab.routers.iter().find_map(|r| {
            r.interfaces.iter().find_map(|i| match &i.attachment {
                Attachment::Switch(sw)
                    if sw == switch
                        && (IpAddr::V4(i.address.addr()) == ip
                            || i.address6.is_some_and(|a| IpAddr::V6(a.addr()) == ip)) =>
                {
                    Some(Mac::local_from(&format!("{}.{sw}", r.name)))
                }
                _ => None,
            })
        });
        host.map(|h| h.mac)
            .or_else(|| service.map(|s| Mac::local_from(&s.name)))
            .or(router)
    }

    /// The frame host `host` would send for `spec`; `leased` is its
    /// address when it has one by DHCP.
    pub fn probe_frame(
        &self,
        host: &str,
        spec: &str,
        leased: Option<Ipv4Addr>,
    ) -> Result<Vec<u8>, ProbeError> {
        let spec = parse(spec)?;
        let lab = self.topology();
        let h = lab
            .host(host)
            .ok_or_else(|| err(format!("`{host}` is not a namespace host of this lab")))?;
        let v6 = spec.dst.is_ipv6();
        let (own, subnet, gateway) = host_end(lab, h, v6, leased);
        let src_ip = spec.src.map(|(ip, _)| ip).or(own).ok_or_else(|| {
            err(format!(
                "`{host}` has no {} address yet: give one with `from ADDRESS`",
                if v6 { "IPv6" } else { "IPv4" }
            ))
        })?;
        let src_port = spec.src.and_then(|(_, p)| p).unwrap_or(40000);
        let on_link = subnet.is_some_and(|n| n.contains(&spec.dst.ip()));
        let next_hop = if on_link {
            Some(spec.dst.ip())
        } else {
            gateway
        };
        let dst_mac = next_hop
            .and_then(|ip| self.mac_on(&h.switch, ip))
            .unwrap_or(Mac::BROADCAST);
        Ok(build(h.mac, dst_mac, src_ip, src_port, spec))
    }
}

fn build(src_mac: Mac, dst_mac: Mac, src_ip: IpAddr, src_port: u16, spec: Spec) -> Vec<u8> {
    const PAYLOAD: &[u8] = b"what if";
    let caps = ChecksumCapabilities::default();
    let (src, dst) = (IpAddress::from(src_ip), IpAddress::from(spec.dst.ip()));
    let tcp = TcpRepr {
        src_port,
        dst_port: spec.dst.port(),
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(1),
        ack_number: None,
        window_len: 64240,
        window_scale: None,
        max_seg_size: Some(1460),
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload: &[],
    };
    let udp = UdpRepr {
        src_port,
        dst_port: spec.dst.port(),
    };
    let echo4 = Icmpv4Repr::EchoRequest {
        ident: src_port,
        seq_no: 1,
        data: PAYLOAD,
    };
    let echo6 = Icmpv6Repr::EchoRequest {
        ident: src_port,
        seq_no: 1,
        data: PAYLOAD,
    };
    let (proto, len) = match (spec.proto, src_ip) {
        (Proto::Tcp, _) => (IpProtocol::Tcp, tcp.buffer_len()),
        (Proto::Udp, _) => (IpProtocol::Udp, udp.header_len() + PAYLOAD.len()),
        (Proto::Icmp, IpAddr::V4(_)) => (IpProtocol::Icmp, echo4.buffer_len()),
        (Proto::Icmp, IpAddr::V6(_)) => (IpProtocol::Icmpv6, echo6.buffer_len()),
    };
    let (ethertype, ip_len) = match src_ip {
        IpAddr::V4(_) => (EthernetProtocol::Ipv4, 20),
        IpAddr::V6(_) => (EthernetProtocol::Ipv6, 40),
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(src_mac.0),
        dst_addr: EthernetAddress(dst_mac.0),
        ethertype,
    };
    let mut frame = vec![0u8; eth.buffer_len() + ip_len + len];
    let mut e = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut e);
    let body = match (src_ip, spec.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let ip = Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                next_header: proto,
                payload_len: len,
                hop_limit: spec.ttl,
            };
            let mut p = Ipv4Packet::new_unchecked(e.payload_mut());
            ip.emit(&mut p, &caps);
            &mut e.payload_mut()[ip_len..]
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ip = Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: proto,
                payload_len: len,
                hop_limit: spec.ttl,
            };
            ip.emit(&mut Ipv6Packet::new_unchecked(e.payload_mut()));
            &mut e.payload_mut()[ip_len..]
        }
        _ => return frame, // parse() refuses mixed families
    };
    match (spec.proto, src_ip) {
        (Proto::Tcp, _) => tcp.emit(&mut TcpPacket::new_unchecked(body), &src, &dst, &caps),
        (Proto::Udp, _) => udp.emit(
            &mut UdpPacket::new_unchecked(body),
            &src,
            &dst,
            PAYLOAD.len(),
            |b| b.copy_from_slice(PAYLOAD),
            &caps,
        ),
        (Proto::Icmp, IpAddr::V4(_)) => echo4.emit(&mut Icmpv4Packet::new_unchecked(body), &caps),
        (Proto::Icmp, IpAddr::V6(s)) => {
            let IpAddr::V6(d) = spec.dst.ip() else {
                return frame;
            };
            echo6.emit(&s, &d, &mut Icmpv6Packet::new_unchecked(body), &caps)
        }
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        let s = parse("tcp 203.0.113.11:80 from 192.168.1.10:4000 ttl 1").expect("spec");
        assert_eq!(s.dst, "203.0.113.11:80".parse().expect("addr"));
        assert_eq!(
            s.src,
            Some((Ipv4Addr::new(192, 168, 1, 10).into(), Some(4000)))
        );
        let s6 = parse("tcp [2001:db8:113::11]:443").expect("spec");
        assert_eq!(s6.dst, "[2001:db8:113::11]:443".parse().expect("addr"));
        assert_eq!(parse("icmp 2001:db8:113::1").expect("spec").dst.port(), 0);
        assert_eq!(s.ttl, 1);
        assert_eq!(parse("icmp 203.0.113.1").expect("spec").dst.port(), 0);
        for (bad, says) in [
            ("tcp", "write PROTO"),
            ("sctp 1.2.3.4", "not tcp, udp or icmp"),
            ("udp 1.2.3", "not an IP address"),
            ("udp 2001:db8::1 from 10.0.0.1", "different families"),
            ("udp 1.2.3.4:x", "not a port"),
            ("udp 1.2.3.4 ttl", "needs a value"),
            ("udp 1.2.3.4 via 5.6.7.8", "not understood"),
            // A port written as a word of its own is not a setting.
            ("tcp 203.0.113.10 80", "`80` is not understood"),
        ] {
            assert!(parse(bad).expect_err(bad).0.contains(says), "{bad}");
        }
    }

    #[test]
    fn alices_probe_goes_to_her_gateway_with_valid_checksums() {
        let view = LabView::new(&topology::reference_lab(), None);
        let f = view
            .probe_frame("alice", "tcp 203.0.113.11:80", None)
            .expect("frame");
        let eth = EthernetFrame::new_checked(&f[..]).expect("ethernet");
        assert_eq!(eth.dst_addr().0, Mac::local_from("home-gw.home").0);
        let ip = Ipv4Packet::new_checked(eth.payload()).expect("ip");
        assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).expect("tcp");
        assert!(tcp.syn() && tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));
        assert_eq!(ip.src_addr(), Ipv4Addr::new(192, 168, 1, 10));
        // Over IPv6, from her SLAAC address to home-gw's MAC.
        let f = view
            .probe_frame("alice", "icmp 2001:db8:113::11", None)
            .expect("frame");
        let eth = EthernetFrame::new_checked(&f[..]).expect("ethernet");
        assert_eq!(eth.dst_addr().0, Mac::local_from("home-gw.home").0);
        let v = wire::ip::IpView::parse(&f, 14).expect("a valid IPv6 packet");
        let alice = topology::reference_lab().host("alice").expect("alice").mac;
        assert_eq!(
            v.src,
            IpAddr::V6(alice.eui64_in("2001:db8:1::".parse().expect("ip")))
        );
        assert_eq!(
            v.transport,
            wire::ip::Transport::Icmp {
                ty: 128,
                code: 0,
                ident: Some(40000)
            }
        );
        // bob has no static address: the lease, or `from`, gives it.
        assert!(view
            .probe_frame("bob", "udp 203.0.113.11:53", None)
            .is_err());
        assert!(view
            .probe_frame(
                "bob",
                "udp 203.0.113.11:53",
                Some(Ipv4Addr::new(192, 168, 1, 100))
            )
            .is_ok());
    }
}
