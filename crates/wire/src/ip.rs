//! One parsed view of an IP packet, for both families.
//!
//! A node parses the packet in a frame once, where the frame enters it
//! ([`IpView::parse`]), and carries the [`IpView`] with the frame: where
//! the IP header, the transport header and the packet's end are, the
//! upper-layer protocol after any IPv6 extension headers, the addresses,
//! hop limit, fragment state and the transport's ports or ICMP fields.
//! What a router rewrites (hop limit, addresses, ports) goes through the
//! typed setters here, which keep every checksum right incrementally
//! (RFC 1624), partial (offloaded) transport checksums included.
//!
//! The checks are those a router must make before trusting the header:
//! version, header length, total length within the frame, the IPv4 header
//! checksum; for IPv6 the extension-header chain is walked within bounds
//! (at most [`MAX_EXTENSION_HEADERS`], hop-by-hop only first, RFC 8200),
//! and a first fragment must hold the whole chain up to the transport
//! header (RFC 7112). [`IpView::parse_quote`] reads the packet an ICMP
//! error quotes, which may be cut short.

use crate::checksum;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;
const EXT_HOP_BY_HOP: u8 = 0;
const EXT_ROUTING: u8 = 43;
const EXT_FRAGMENT: u8 = 44;
const EXT_ESP: u8 = 50;
const EXT_AH: u8 = 51;
const EXT_NO_NEXT: u8 = 59;
const EXT_DEST_OPTS: u8 = 60;

/// Extension headers a packet may carry before it is refused: Linux
/// accepts long chains, but a router has no reason to walk more than a
/// handful (RFC 7045 leaves the limit to the implementation).
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// The IP version of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Family {
    V4,
    V6,
}

/// Where a packet stands among fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Not a fragment.
    Whole,
    /// The first fragment (offset 0, more to come).
    First,
    /// A later fragment: no transport header in it.
    Later { offset: u16 },
}

/// What the transport header says, as far as a router reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP or UDP; `flags` is TCP's flags byte (0 for UDP).
    Ports { src: u16, dst: u16, flags: u8 },
    /// ICMP or ICMPv6: type, code, and the identifier of an echo request
    /// or reply.
    Icmp {
        ty: u8,
        code: u8,
        ident: Option<u16>,
    },
    /// Another protocol, a later fragment, or a header cut short.
    None,
}

/// Why a packet is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpError {
    /// Shorter than its headers or its stated length.
    Truncated,
    /// A version or header length that cannot be.
    Malformed,
    /// The IPv4 header checksum is wrong.
    BadChecksum,
    /// More than [`MAX_EXTENSION_HEADERS`], or hop-by-hop not first.
    ExtensionChain,
    /// A first fragment that does not hold the whole header chain
    /// (RFC 7112).
    IncompleteChain,
}

impl IpError {
    pub fn as_str(self) -> &'static str {
        match self {
            IpError::Truncated => "truncated",
            IpError::Malformed => "malformed",
            IpError::BadChecksum => "bad checksum",
            IpError::ExtensionChain => "extension header chain",
            IpError::IncompleteChain => "header chain not in first fragment",
        }
    }
}

/// A parsed IP packet: offsets into the bytes it was parsed from (a
/// frame's data), and the fields a router acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpView {
    pub family: Family,
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the transport header (after IPv4 options or IPv6
    /// extension headers).
    pub l4: usize,
    /// Offset just past the packet (its stated length; Ethernet padding
    /// lies beyond).
    pub end: usize,
    /// The upper-layer protocol: TCP, UDP, ICMP, ICMPv6, ...
    pub proto: u8,
    /// Offset of the byte that names `proto` (the IPv4 protocol field,
    /// or the Next Header field of the last IPv6 header): where an ICMPv6
    /// Parameter Problem points.
    pub proto_at: usize,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub hop_limit: u8,
    pub fragment: Fragment,
    /// IPv4's DF bit; always true for IPv6, which routers never fragment.
    pub dont_fragment: bool,
    /// IPv4 options or IPv6 extension headers are present.
    pub extended: bool,
    pub transport: Transport,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|w| u16::from_be_bytes([w[0], w[1]]))
}

impl IpView {
    /// Parses and checks the packet at `data[l3..]`, of either family (by
    /// its version nibble).
    pub fn parse(data: &[u8], l3: usize) -> Result<IpView, IpError> {
        match data.get(l3).map(|b| b >> 4) {
            Some(4) => Self::parse_v4(data, l3, true),
            Some(6) => Self::parse_v6(data, l3, true),
            Some(_) => Err(IpError::Malformed),
            None => Err(IpError::Truncated),
        }
    }

    /// The packet an ICMP error quotes at `data[l3..]`: its stated length
    /// may run past the quote, and its checksum is not checked.
    pub fn parse_quote(data: &[u8], l3: usize) -> Result<IpView, IpError> {
        match data.get(l3).map(|b| b >> 4) {
            Some(4) => Self::parse_v4(data, l3, false),
            Some(6) => Self::parse_v6(data, l3, false),
            Some(_) => Err(IpError::Malformed),
            None => Err(IpError::Truncated),
        }
    }

    fn parse_v4(data: &[u8], l3: usize, whole: bool) -> Result<IpView, IpError> {
        let h = data.get(l3..l3 + 20).ok_or(IpError::Truncated)?;
        let ihl = usize::from(h[0] & 0x0f) * 4;
        if ihl < 20 {
            return Err(IpError::Malformed);
        }
        let header = data.get(l3..l3 + ihl).ok_or(IpError::Truncated)?;
        let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if total < ihl {
            return Err(IpError::Malformed);
        }
        let end = if whole {
            if l3 + total > data.len() {
                return Err(IpError::Truncated);
            }
            if checksum::fold(checksum::sum(0, header)) != 0xffff {
                return Err(IpError::BadChecksum);
            }
            l3 + total
        } else {
            (l3 + total).min(data.len())
        };
        let flags = u16::from_be_bytes([h[6], h[7]]);
        let offset = flags & 0x1fff;
        let more = flags & 0x2000 != 0;
        let fragment = match (offset, more) {
            (0, false) => Fragment::Whole,
            (0, true) => Fragment::First,
            (o, _) => Fragment::Later { offset: o * 8 },
        };
        let l4 = l3 + ihl;
        let proto = h[9];
        let mut v = IpView {
            family: Family::V4,
            l3,
            l4,
            end,
            proto,
            proto_at: l3 + 9,
            src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
            dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
            hop_limit: h[8],
            fragment,
            dont_fragment: flags & 0x4000 != 0,
            extended: ihl > 20,
            transport: Transport::None,
        };
        v.transport = v.read_transport(data);
        Ok(v)
    }

    fn parse_v6(data: &[u8], l3: usize, whole: bool) -> Result<IpView, IpError> {
        let h = data.get(l3..l3 + 40).ok_or(IpError::Truncated)?;
        let payload = usize::from(u16::from_be_bytes([h[4], h[5]]));
        // A jumbogram (payload length 0 with a hop-by-hop option) has no
        // place on links of at most 64 KiB.
        let end = if whole {
            if l3 + 40 + payload > data.len() {
                return Err(IpError::Truncated);
            }
            l3 + 40 + payload
        } else {
            (l3 + 40 + payload).min(data.len())
        };
        let mut next = h[6];
        let mut next_at = l3 + 6;
        let mut at = l3 + 40;
        let mut fragment = Fragment::Whole;
        let mut count = 0;
        while let EXT_HOP_BY_HOP | EXT_ROUTING | EXT_FRAGMENT | EXT_DEST_OPTS | EXT_AH = next {
            if next == EXT_HOP_BY_HOP && count > 0 {
                return Err(IpError::ExtensionChain);
            }
            count += 1;
            if count > MAX_EXTENSION_HEADERS {
                return Err(IpError::ExtensionChain);
            }
            let Some(ext) = data.get(at..(at + 8).min(end)).filter(|e| e.len() == 8) else {
                // The chain runs past the packet (or the quote).
                return match fragment {
                    Fragment::Later { .. } => Err(IpError::Truncated),
                    _ if whole => Err(IpError::IncompleteChain),
                    _ => Err(IpError::Truncated),
                };
            };
            let len = match next {
                EXT_FRAGMENT => {
                    let off_flags = u16::from_be_bytes([ext[2], ext[3]]);
                    let (offset, more) = (off_flags & 0xfff8, off_flags & 1 != 0);
                    fragment = match (offset, more) {
                        (0, false) => Fragment::Whole, // an atomic fragment (RFC 6946)
                        (0, true) => Fragment::First,
                        (o, _) => Fragment::Later { offset: o },
                    };
                    8
                }
                EXT_AH => (usize::from(ext[1]) + 2) * 4,
                _ => (usize::from(ext[1]) + 1) * 8,
            };
            next = ext[0];
            next_at = at;
            at += len;
            if at > end {
                return Err(if whole {
                    IpError::IncompleteChain
                } else {
                    IpError::Truncated
                });
            }
            if let Fragment::Later { .. } = fragment {
                break; // the rest of the chain is in the first fragment
            }
        }
        let mut v = IpView {
            family: Family::V6,
            l3,
            l4: at,
            end,
            proto: next,
            proto_at: next_at,
            src: IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(&h[8..24]).expect("16 bytes"),
            )),
            dst: IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(&h[24..40]).expect("16 bytes"),
            )),
            hop_limit: h[7],
            fragment,
            dont_fragment: true,
            extended: count > 0,
            transport: Transport::None,
        };
        if whole && fragment == Fragment::First && !v.transport_header_fits(data) {
            return Err(IpError::IncompleteChain);
        }
        v.transport = v.read_transport(data);
        Ok(v)
    }

    /// RFC 7112: the first fragment holds the transport header whole
    /// (at least the part a firewall reads).
    fn transport_header_fits(&self, data: &[u8]) -> bool {
        let need = match self.proto {
            PROTO_TCP => 20,
            PROTO_UDP | PROTO_ICMPV6 | PROTO_ICMP => 8,
            EXT_ESP | EXT_NO_NEXT => 0,
            _ => 0,
        };
        self.l4 + need <= self.end.min(data.len())
    }

    fn read_transport(&self, data: &[u8]) -> Transport {
        if let Fragment::Later { .. } = self.fragment {
            return Transport::None;
        }
        let l4 = data.get(self.l4..self.end.min(data.len())).unwrap_or(&[]);
        match self.proto {
            PROTO_TCP | PROTO_UDP => {
                let flags = match self.proto {
                    PROTO_TCP if l4.len() >= 14 => l4[13],
                    _ => 0,
                };
                match (be16(l4, 0), be16(l4, 2)) {
                    (Some(src), Some(dst)) => Transport::Ports { src, dst, flags },
                    _ => Transport::None,
                }
            }
            PROTO_ICMP | PROTO_ICMPV6 if l4.len() >= 4 => {
                let (ty, code) = (l4[0], l4[1]);
                let echo = match self.family {
                    Family::V4 => matches!(ty, 0 | 8),
                    Family::V6 => matches!(ty, 128 | 129),
                };
                Transport::Icmp {
                    ty,
                    code,
                    ident: echo.then(|| be16(l4, 4)).flatten(),
                }
            }
            _ => Transport::None,
        }
    }

    /// The packet's bytes, from its IP header to its stated end.
    pub fn packet<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.l3..self.end.min(data.len())]
    }

    /// The transport header and payload.
    pub fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.l4.min(data.len())..self.end.min(data.len())]
    }

    /// The packet's length from its IP header to its end.
    pub fn len(&self) -> usize {
        self.end - self.l3
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.l3
    }

    /// The transport's ports, if it has them (TCP, UDP).
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.transport {
            Transport::Ports { src, dst, .. } => Some((src, dst)),
            _ => None,
        }
    }

    /// Whether the packet is an ICMP (or ICMPv6) error message, which
    /// no error may answer (RFC 1812 4.3.2.7, RFC 4443 2.4).
    pub fn is_icmp_error(&self) -> bool {
        match (self.family, self.transport) {
            (Family::V4, Transport::Icmp { ty, .. }) => matches!(ty, 3 | 4 | 5 | 11 | 12),
            (Family::V6, Transport::Icmp { ty, .. }) => ty < 128,
            _ => false,
        }
    }

    /// Takes one from the TTL or hop limit. The caller has checked it is
    /// above 1.
    pub fn decrement_hop_limit(&mut self, data: &mut [u8]) {
        self.set_hop_limit(data, self.hop_limit.wrapping_sub(1));
    }

    /// Sets the TTL or hop limit, updating the IPv4 header checksum
    /// incrementally.
    pub fn set_hop_limit(&mut self, data: &mut [u8], to: u8) {
        let l3 = self.l3;
        match self.family {
            Family::V4 => {
                let old = u16::from_be_bytes([data[l3 + 8], data[l3 + 9]]);
                data[l3 + 8] = to;
                let new = u16::from_be_bytes([data[l3 + 8], data[l3 + 9]]);
                let c = u16::from_be_bytes([data[l3 + 10], data[l3 + 11]]);
                data[l3 + 10..l3 + 12]
                    .copy_from_slice(&checksum::update(c, old, new).to_be_bytes());
            }
            Family::V6 => data[l3 + 7] = to,
        }
        self.hop_limit = to;
    }

    /// Where the transport checksum sits, and whether a pseudo-header
    /// (hence the addresses) enters it.
    fn transport_checksum(&self) -> Option<(usize, bool)> {
        match self.proto {
            PROTO_TCP => Some((self.l4 + 16, true)),
            PROTO_UDP => Some((self.l4 + 6, true)),
            PROTO_ICMP => Some((self.l4 + 2, false)),
            PROTO_ICMPV6 => Some((self.l4 + 2, true)),
            _ => None,
        }
    }

    /// Rewrites the source (`side == Side::Src`) or destination address,
    /// keeping the IPv4 header checksum and the transport checksum right;
    /// `partial`: the transport checksum is an offloaded partial sum. An
    /// address of the other family is refused.
    pub fn set_addr(&mut self, data: &mut [u8], side: Side, to: IpAddr, partial: bool) -> bool {
        let (at, old) = match (self.family, side, self.src, self.dst, to) {
            (Family::V4, Side::Src, IpAddr::V4(o), _, IpAddr::V4(_)) => {
                (self.l3 + 12, IpAddr::V4(o))
            }
            (Family::V4, Side::Dst, _, IpAddr::V4(o), IpAddr::V4(_)) => {
                (self.l3 + 16, IpAddr::V4(o))
            }
            (Family::V6, Side::Src, IpAddr::V6(o), _, IpAddr::V6(_)) => {
                (self.l3 + 8, IpAddr::V6(o))
            }
            (Family::V6, Side::Dst, _, IpAddr::V6(o), IpAddr::V6(_)) => {
                (self.l3 + 24, IpAddr::V6(o))
            }
            _ => return false,
        };
        let (old, new) = (octets(old), octets(to));
        data[at..at + new.len()].copy_from_slice(&new);
        if self.family == Family::V4 {
            let c = u16::from_be_bytes([data[self.l3 + 10], data[self.l3 + 11]]);
            data[self.l3 + 10..self.l3 + 12]
                .copy_from_slice(&checksum::update_bytes(c, &old, &new).to_be_bytes());
        }
        if let Some((check_at, true)) = self.transport_checksum() {
            self.update_transport_checksum(data, check_at, partial, |c, partial| {
                if partial {
                    checksum::update_partial_bytes(c, &old, &new)
                } else {
                    checksum::update_bytes(c, &old, &new)
                }
            });
        }
        match side {
            Side::Src => self.src = to,
            Side::Dst => self.dst = to,
        }
        true
    }

    /// Rewrites a TCP/UDP port, or the identifier of an ICMP echo (either
    /// side), keeping the transport checksum right.
    pub fn set_port(&mut self, data: &mut [u8], side: Side, to: u16, partial: bool) -> bool {
        let at = match (self.transport, side) {
            (Transport::Ports { .. }, Side::Src) => self.l4,
            (Transport::Ports { .. }, Side::Dst) => self.l4 + 2,
            (Transport::Icmp { ident: Some(_), .. }, _) => self.l4 + 4,
            _ => return false,
        };
        let Some(old) = be16(data, at) else {
            return false;
        };
        data[at..at + 2].copy_from_slice(&to.to_be_bytes());
        if let Some((check_at, _)) = self.transport_checksum() {
            // A partial sum covers only the pseudo-header: ports are not in it.
            if !partial {
                self.update_transport_checksum(data, check_at, false, |c, _| {
                    checksum::update(c, old, to)
                });
            }
        }
        self.transport = match self.transport {
            Transport::Ports { src, dst, flags } => match side {
                Side::Src => Transport::Ports {
                    src: to,
                    dst,
                    flags,
                },
                Side::Dst => Transport::Ports {
                    src,
                    dst: to,
                    flags,
                },
            },
            Transport::Icmp { ty, code, .. } => Transport::Icmp {
                ty,
                code,
                ident: Some(to),
            },
            Transport::None => Transport::None,
        };
        true
    }

    fn update_transport_checksum(
        &self,
        data: &mut [u8],
        check_at: usize,
        partial: bool,
        update: impl Fn(u16, bool) -> u16,
    ) {
        if matches!(self.fragment, Fragment::Later { .. })
            || check_at + 2 > self.end.min(data.len())
        {
            return; // no transport header here (or only part of a quote)
        }
        let c = u16::from_be_bytes([data[check_at], data[check_at + 1]]);
        if self.proto == PROTO_UDP && c == 0 && self.family == Family::V4 && !partial {
            return; // UDP over IPv4 without a checksum stays without
        }
        let mut new = update(c, partial);
        if self.proto == PROTO_UDP && new == 0 && !partial {
            new = 0xffff;
        }
        data[check_at..check_at + 2].copy_from_slice(&new.to_be_bytes());
    }
}

/// Which end of a packet a rewrite changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Src,
    Dst,
}

/// An address's bytes, 4 or 16 of them.
pub fn octets(a: IpAddr) -> Octets {
    match a {
        IpAddr::V4(a) => Octets::V4(a.octets()),
        IpAddr::V6(a) => Octets::V6(a.octets()),
    }
}

/// An address's bytes without allocating.
#[derive(Debug, Clone, Copy)]
pub enum Octets {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl std::ops::Deref for Octets {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Octets::V4(b) => b,
            Octets::V6(b) => b,
        }
    }
}

/// The transport checksum of a packet the caller builds: the sum over the
/// pseudo-header of `src`, `dst` and `proto` and the transport bytes.
pub fn transport_checksum(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> u16 {
    let pseudo = checksum::pseudo_header(&octets(src), &octets(dst), proto, l4.len() as u32);
    checksum::finish(checksum::sum(pseudo, l4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_udp(ttl: u8, flags: u16) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 28, 0, 1, 0, 0, ttl, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p[6..8].copy_from_slice(&flags.to_be_bytes());
        let c = checksum::finish(checksum::sum(0, &p));
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&[0x04, 0xd2, 0, 53, 0, 8, 0, 0]);
        let c = transport_checksum(
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
            17,
            &p[20..],
        );
        p[26..28].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn v6(next: u8, chain: &[u8], l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&((chain.len() + l4.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&"2001:db8:1::10".parse::<Ipv6Addr>().expect("ip").octets());
        p.extend_from_slice(&"2001:db8:113::11".parse::<Ipv6Addr>().expect("ip").octets());
        p.extend_from_slice(chain);
        p.extend_from_slice(l4);
        p
    }

    fn valid(data: &[u8], v: &IpView) -> bool {
        let p = v.packet(data);
        let l4 = v.payload(data);
        let ok4 =
            v.family == Family::V6 || checksum::fold(checksum::sum(0, &p[..v.l4 - v.l3])) == 0xffff;
        let pseudo =
            checksum::pseudo_header(&octets(v.src), &octets(v.dst), v.proto, l4.len() as u32);
        ok4 && checksum::fold(checksum::sum(pseudo, l4)) == 0xffff
    }

    #[test]
    fn v4_parsed_once_and_rewritten_with_checksums_kept() {
        let mut p = v4_udp(64, 0x4000);
        let mut v = IpView::parse(&p, 0).expect("parses");
        assert_eq!(
            (v.family, v.proto, v.l4, v.end, v.hop_limit),
            (Family::V4, 17, 20, 28, 64)
        );
        assert_eq!(v.ports(), Some((1234, 53)));
        assert!(v.dont_fragment && v.fragment == Fragment::Whole);
        v.decrement_hop_limit(&mut p);
        assert!(v.set_addr(
            &mut p,
            Side::Src,
            "198.51.100.2".parse().expect("ip"),
            false
        ));
        assert!(v.set_port(&mut p, Side::Src, 40000, false));
        assert!(valid(&p, &v));
        assert_eq!(
            IpView::parse(&p, 0),
            Ok(v),
            "what the setters say is what a parse reads"
        );
        assert!(!v.set_addr(&mut p, Side::Dst, "2001:db8::1".parse().expect("ip"), false));
    }

    #[test]
    fn v4_refusals() {
        let mut p = v4_udp(64, 0);
        p[11] ^= 1;
        assert_eq!(IpView::parse(&p, 0), Err(IpError::BadChecksum));
        let p = v4_udp(64, 0);
        assert_eq!(IpView::parse(&p[..27], 0), Err(IpError::Truncated));
        let mut p = v4_udp(64, 0);
        p[0] = 0x44;
        assert_eq!(IpView::parse(&p, 0), Err(IpError::Malformed));
        let p = v4_udp(64, 0x2000 | 3);
        assert_eq!(
            IpView::parse(&p, 0).map(|v| (v.fragment, v.transport)),
            Ok((Fragment::Later { offset: 24 }, Transport::None))
        );
    }

    #[test]
    fn v6_chain_walked_to_the_transport() {
        let echo = [128, 0, 0, 0, 0x12, 0x34, 0, 1];
        // hop-by-hop (8 bytes, PadN), destination options (8), then ICMPv6.
        let chain = [60, 0, 1, 4, 0, 0, 0, 0, 58, 0, 1, 4, 0, 0, 0, 0];
        let mut p = v6(0, &chain, &echo);
        let c = transport_checksum(
            "2001:db8:1::10".parse().expect("ip"),
            "2001:db8:113::11".parse().expect("ip"),
            58,
            &echo,
        );
        p[58..60].copy_from_slice(&c.to_be_bytes());
        let mut v = IpView::parse(&p, 0).expect("parses");
        assert_eq!(
            (v.family, v.proto, v.l4, v.extended),
            (Family::V6, 58, 56, true)
        );
        assert_eq!(
            v.transport,
            Transport::Icmp {
                ty: 128,
                code: 0,
                ident: Some(0x1234)
            }
        );
        assert!(valid(&p, &v));
        v.decrement_hop_limit(&mut p);
        assert!(v.set_addr(
            &mut p,
            Side::Dst,
            "2001:db8:2::10".parse().expect("ip"),
            false
        ));
        assert!(v.set_port(&mut p, Side::Src, 7, false));
        assert!(valid(&p, &v));
        assert_eq!(IpView::parse(&p, 0), Ok(v));
    }

    #[test]
    fn v6_hostile_chains_refused() {
        let udp = [0, 1, 0, 2, 0, 8, 0, 0];
        // Hop-by-hop after another header.
        let p = v6(60, &[0, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0], &udp);
        assert_eq!(IpView::parse(&p, 0), Err(IpError::ExtensionChain));
        // Nine destination-option headers.
        let mut chain = Vec::new();
        for i in 0..9 {
            chain.extend_from_slice(&[if i == 8 { 17 } else { 60 }, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(
            IpView::parse(&v6(60, &chain, &udp), 0),
            Err(IpError::ExtensionChain)
        );
        // A first fragment whose chain ends before the UDP header does.
        let first = v6(44, &[17, 0, 0, 1, 0, 0, 0, 9], &udp[..4]);
        assert_eq!(IpView::parse(&first, 0), Err(IpError::IncompleteChain));
        // A later fragment carries no transport header, and that is fine.
        let later = v6(44, &[17, 0, 0, 16, 0, 0, 0, 9], &[0; 8]);
        let v = IpView::parse(&later, 0).expect("later fragment");
        assert_eq!(
            (v.fragment, v.transport),
            (Fragment::Later { offset: 16 }, Transport::None)
        );
        // A header length running past the packet.
        let p = v6(60, &[17, 200, 1, 4, 0, 0, 0, 0], &udp);
        assert_eq!(IpView::parse(&p, 0), Err(IpError::IncompleteChain));
    }

    #[test]
    fn partial_checksums_follow_address_changes() {
        let mut p = v4_udp(64, 0);
        let pseudo = checksum::fold(checksum::pseudo_header(
            &[10, 0, 0, 1],
            &[10, 0, 0, 2],
            17,
            8,
        ));
        p[26..28].copy_from_slice(&pseudo.to_be_bytes());
        let mut v = IpView::parse(&p, 0).expect("parses");
        v.set_addr(&mut p, Side::Src, "192.0.2.9".parse().expect("ip"), true);
        let want = checksum::fold(checksum::pseudo_header(
            &[192, 0, 2, 9],
            &[10, 0, 0, 2],
            17,
            8,
        ));
        assert_eq!(u16::from_be_bytes([p[26], p[27]]), want);
    }
}
