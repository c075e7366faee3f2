//! Synthetic frames for what-if traces (`scratchnet trace --inject HOST
//! SPEC`): what a host would send, built from the topology.
//!
//! A spec is `PROTO DST[:PORT] [from SRC[:PORT]] [ttl N]`, PROTO one of
//! `tcp` (a SYN), `udp` or `icmp` (an echo request). The source defaults
//! to the host's address (its lease, for a DHCP host) and port 40000; the
//! frame goes to its gateway's MAC, or to the destination's if that is on
//! the host's own subnet.

use crate::LabView;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv4Repr,
    IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    UdpPacket, UdpRepr,
};
use std::net::{Ipv4Addr, SocketAddrV4};
use topology::{Attachment, HostAddress};
use wire::Mac;

/// What is wrong with a probe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

fn err(s: impl Into<String>) -> ProbeError {
    ProbeError(s.into())
}

/// A parsed spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spec {
    proto: IpProtocol,
    dst: SocketAddrV4,
    src: Option<(Ipv4Addr, Option<u16>)>,
    ttl: u8,
}

fn endpoint(word: &str) -> Result<(Ipv4Addr, Option<u16>), ProbeError> {
    let (ip, port) = match word.split_once(':') {
        Some((ip, port)) => (ip, Some(port)),
        None => (word, None),
    };
    let ip = ip
        .parse()
        .map_err(|_| err(format!("`{ip}` is not an IPv4 address")))?;
    let port = port
        .map(|p| p.parse().map_err(|_| err(format!("`{p}` is not a port"))))
        .transpose()?;
    Ok((ip, port))
}

fn parse(spec: &str) -> Result<Spec, ProbeError> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let usage = "write PROTO DST[:PORT] [from SRC[:PORT]] [ttl N], like `tcp 203.0.113.11:80`";
    let (proto, dst) = match words.as_slice() {
        [proto, dst, ..] => (*proto, *dst),
        _ => return Err(err(usage)),
    };
    let proto = match proto {
        "tcp" => IpProtocol::Tcp,
        "udp" => IpProtocol::Udp,
        "icmp" => IpProtocol::Icmp,
        other => return Err(err(format!("`{other}` is not tcp, udp or icmp; {usage}"))),
    };
    let (ip, port) = endpoint(dst)?;
    let default_port = if proto == IpProtocol::Icmp { 0 } else { 80 };
    let mut spec = Spec {
        proto,
        dst: SocketAddrV4::new(ip, port.unwrap_or(default_port)),
        src: None,
        ttl: 64,
    };
    let mut rest = words[2..].iter();
    while let Some(word) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| err(format!("`{word}` needs a value")))?;
        match *word {
            "from" => spec.src = Some(endpoint(value)?),
            "ttl" => {
                spec.ttl = value
                    .parse()
                    .map_err(|_| err(format!("`{value}` is not a TTL (0 to 255)")))?
            }
            other => return Err(err(format!("`{other}` is not understood; {usage}"))),
        }
    }
    Ok(spec)
}

impl LabView {
    /// The MAC of the node (host, service or router interface) that has
    /// address `ip` on `switch`.
    fn mac_on(&self, switch: &str, ip: Ipv4Addr) -> Option<Mac> {
        let lab = self.topology();
        let host = lab.hosts.iter().find(|h| {
            h.switch == switch && matches!(h.address, HostAddress::Static(a) if a.addr() == ip)
        });
        let service = lab
            .services
            .iter()
            .find(|s| s.switch == switch && s.address.addr() == ip);
        let router = lab.routers.iter().find_map(|r| {
            r.interfaces.iter().find_map(|i| match &i.attachment {
                Attachment::Switch(sw) if sw == switch && i.address.addr() == ip => {
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
        let (own, subnet) = match h.address {
            HostAddress::Static(net) => (
                Some(net.addr()),
                lab.switch(&h.switch)
                    .and_then(|s| s.subnet)
                    .or(Some(net.trunc())),
            ),
            HostAddress::Dhcp => (leased, lab.switch(&h.switch).and_then(|s| s.subnet)),
        };
        let src_ip = spec.src.map(|(ip, _)| ip).or(own).ok_or_else(|| {
            err(format!(
                "`{host}` has no address yet: give one with `from ADDRESS`"
            ))
        })?;
        let src_port = spec.src.and_then(|(_, p)| p).unwrap_or(40000);
        // The gateway: the host's, or the router interface on its switch.
        let gateway = h.gateway.or_else(|| {
            lab.routers.iter().find_map(|r| {
                r.interfaces.iter().find_map(|i| {
                    (i.attachment == Attachment::Switch(h.switch.clone())).then(|| i.address.addr())
                })
            })
        });
        let on_link = subnet.is_some_and(|n| n.contains(spec.dst.ip()));
        let next_hop = if on_link {
            Some(*spec.dst.ip())
        } else {
            gateway
        };
        let dst_mac = next_hop
            .and_then(|ip| self.mac_on(&h.switch, ip))
            .unwrap_or(Mac::BROADCAST);
        Ok(build(h.mac, dst_mac, src_ip, src_port, spec))
    }
}

fn build(src_mac: Mac, dst_mac: Mac, src_ip: Ipv4Addr, src_port: u16, spec: Spec) -> Vec<u8> {
    const PAYLOAD: &[u8] = b"what if";
    let caps = ChecksumCapabilities::default();
    let (src, dst) = (IpAddress::Ipv4(src_ip), IpAddress::Ipv4(*spec.dst.ip()));
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
    let echo = Icmpv4Repr::EchoRequest {
        ident: src_port,
        seq_no: 1,
        data: PAYLOAD,
    };
    let len = match spec.proto {
        IpProtocol::Tcp => tcp.buffer_len(),
        IpProtocol::Udp => udp.header_len() + PAYLOAD.len(),
        _ => echo.buffer_len(),
    };
    let ip = Ipv4Repr {
        src_addr: src_ip,
        dst_addr: *spec.dst.ip(),
        next_header: spec.proto,
        payload_len: len,
        hop_limit: spec.ttl,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(src_mac.0),
        dst_addr: EthernetAddress(dst_mac.0),
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut frame = vec![0u8; eth.buffer_len() + ip.buffer_len() + len];
    let mut e = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut e);
    let mut p = Ipv4Packet::new_unchecked(e.payload_mut());
    ip.emit(&mut p, &caps);
    let body = p.payload_mut();
    match spec.proto {
        IpProtocol::Tcp => tcp.emit(&mut TcpPacket::new_unchecked(body), &src, &dst, &caps),
        IpProtocol::Udp => udp.emit(
            &mut UdpPacket::new_unchecked(body),
            &src,
            &dst,
            PAYLOAD.len(),
            |b| b.copy_from_slice(PAYLOAD),
            &caps,
        ),
        _ => echo.emit(&mut Icmpv4Packet::new_unchecked(body), &caps),
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
        assert_eq!(s.src, Some((Ipv4Addr::new(192, 168, 1, 10), Some(4000))));
        assert_eq!(s.ttl, 1);
        assert_eq!(parse("icmp 203.0.113.1").expect("spec").dst.port(), 0);
        for (bad, says) in [
            ("tcp", "write PROTO"),
            ("sctp 1.2.3.4", "not tcp, udp or icmp"),
            ("udp 1.2.3", "not an IPv4 address"),
            ("udp 1.2.3.4:x", "not a port"),
            ("udp 1.2.3.4 ttl", "needs a value"),
            ("udp 1.2.3.4 via 5.6.7.8", "not understood"),
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
