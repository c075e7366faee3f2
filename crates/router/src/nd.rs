//! IPv6 neighbour discovery (RFC 4861) and router advertisements
//! (RFC 4861/4862/8106): the messages, their options, and the addresses
//! they live at.
//!
//! Parsing is strict where RFC 4861 section 7.1.1 / 6.1.1 says a message
//! is invalid: hop limit 255 (it came from this link), ICMP code 0, an
//! option of length 0, options running past the message, a target that
//! is multicast, a source link-layer option from the unspecified address.
//! The caller has checked the checksum and that the packet is no
//! fragment (RFC 6980).

use ipnet::Ipv6Net;
use std::net::Ipv6Addr;
use std::time::Duration;
use wire::Mac;

pub const ROUTER_SOLICITATION: u8 = 133;
pub const ROUTER_ADVERTISEMENT: u8 = 134;
pub const NEIGHBOR_SOLICITATION: u8 = 135;
pub const NEIGHBOR_ADVERTISEMENT: u8 = 136;
pub const REDIRECT: u8 = 137;

const OPT_SOURCE_LLA: u8 = 1;
const OPT_TARGET_LLA: u8 = 2;
const OPT_PREFIX_INFO: u8 = 3;
const OPT_MTU: u8 = 5;
const OPT_RDNSS: u8 = 25;
const OPT_DNSSL: u8 = 31;

/// ff02::1, every node on the link.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ff02::2, every router on the link.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// The solicited-node multicast group of an address (RFC 4291 2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet address of an IPv6 multicast group (RFC 2464 7).
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    Mac([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The link-local address made from a MAC address by modified EUI-64
/// (RFC 4291 appendix A), as Linux makes it.
pub fn link_local(mac: Mac) -> Ipv6Addr {
    mac.eui64_in(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0))
}

/// A neighbour discovery message the router acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdMessage {
    RouterSolicit {
        source_mac: Option<Mac>,
    },
    NeighborSolicit {
        target: Ipv6Addr,
        source_mac: Option<Mac>,
    },
    NeighborAdvert {
        target: Ipv6Addr,
        router: bool,
        solicited: bool,
        override_: bool,
        target_mac: Option<Mac>,
    },
    /// Another router's advertisement: heard, not acted on.
    RouterAdvert,
    Redirect,
}

/// Why an ND message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdError {
    /// Not from this link (hop limit below 255) or code not 0.
    NotOnLink,
    /// Too short, a bad option, a multicast target.
    Malformed,
}

/// The link-layer address options of an ND message, checked.
fn lla_options(mut opts: &[u8]) -> Result<(Option<Mac>, Option<Mac>), NdError> {
    let (mut source, mut target) = (None, None);
    while !opts.is_empty() {
        let (&kind, len) = match opts {
            [k, l, ..] => (k, usize::from(*l) * 8),
            _ => return Err(NdError::Malformed),
        };
        if len == 0 || len > opts.len() {
            return Err(NdError::Malformed);
        }
        let mac = || Mac::from_slice(&opts[2..]);
        match kind {
            OPT_SOURCE_LLA => source = mac(),
            OPT_TARGET_LLA => target = mac(),
            _ => {} // unknown options are skipped (RFC 4861 4.6)
        }
        opts = &opts[len..];
    }
    Ok((source, target))
}

/// Parses the ICMPv6 message `icmp` (type onwards) that came with hop
/// limit `hop_limit` from `src`.
pub fn parse(icmp: &[u8], hop_limit: u8, src: Ipv6Addr) -> Result<NdMessage, NdError> {
    let (&ty, &code) = match icmp {
        [t, c, ..] => (t, c),
        _ => return Err(NdError::Malformed),
    };
    if hop_limit != 255 || code != 0 {
        return Err(NdError::NotOnLink);
    }
    let target_at = |at: usize| -> Result<Ipv6Addr, NdError> {
        let b: [u8; 16] = icmp
            .get(at..at + 16)
            .and_then(|b| b.try_into().ok())
            .ok_or(NdError::Malformed)?;
        let t = Ipv6Addr::from(b);
        if t.is_multicast() {
            return Err(NdError::Malformed);
        }
        Ok(t)
    };
    let options = |at: usize| lla_options(icmp.get(at..).ok_or(NdError::Malformed)?);
    let message = match ty {
        ROUTER_SOLICITATION => {
            let (source_mac, _) = options(8)?;
            NdMessage::RouterSolicit { source_mac }
        }
        NEIGHBOR_SOLICITATION => {
            let target = target_at(8)?;
            let (source_mac, _) = options(24)?;
            NdMessage::NeighborSolicit { target, source_mac }
        }
        NEIGHBOR_ADVERTISEMENT => {
            let target = target_at(8)?;
            let flags = icmp[4];
            let (_, target_mac) = options(24)?;
            NdMessage::NeighborAdvert {
                target,
                router: flags & 0x80 != 0,
                solicited: flags & 0x40 != 0,
                override_: flags & 0x20 != 0,
                target_mac,
            }
        }
        ROUTER_ADVERTISEMENT if icmp.len() >= 16 => {
            options(16)?;
            NdMessage::RouterAdvert
        }
        REDIRECT if icmp.len() >= 40 => NdMessage::Redirect,
        _ => return Err(NdError::Malformed),
    };
    if src.is_unspecified() {
        // DAD: no source link-layer option allowed, and only to a
        // solicited-node group (the caller checks the destination).
        if let NdMessage::NeighborSolicit {
            source_mac: Some(_),
            ..
        } = message
        {
            return Err(NdError::Malformed);
        }
    }
    Ok(message)
}

/// A neighbour solicitation for `target` from `mac` (the ICMPv6 message,
/// checksum left zero).
pub fn solicitation(target: Ipv6Addr, mac: Mac) -> Vec<u8> {
    let mut m = vec![NEIGHBOR_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[OPT_SOURCE_LLA, 1]);
    m.extend_from_slice(&mac.0);
    m
}

/// A neighbour advertisement for `target` at `mac`, from a router.
pub fn advertisement(target: Ipv6Addr, mac: Mac, solicited: bool) -> Vec<u8> {
    let flags = 0x80 | if solicited { 0x40 } else { 0 } | 0x20;
    let mut m = vec![NEIGHBOR_ADVERTISEMENT, 0, 0, 0, flags, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[OPT_TARGET_LLA, 1]);
    m.extend_from_slice(&mac.0);
    m
}

/// What an interface's router advertisements say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaConfig {
    /// The on-link prefix, offered for SLAAC when `autonomous`.
    pub prefix: Ipv6Net,
    pub autonomous: bool,
    /// M: addresses from DHCPv6.
    pub managed: bool,
    /// O: other configuration (DNS) from DHCPv6.
    pub other: bool,
    /// Recursive DNS servers (RFC 8106).
    pub rdnss: Vec<Ipv6Addr>,
    /// DNS search list (RFC 8106).
    pub dnssl: Vec<String>,
    /// Unsolicited advertisements this often.
    pub interval: Duration,
    /// How long hosts may use the router as a default router.
    pub router_lifetime: Duration,
}

impl RaConfig {
    /// A config with radvd's defaults for lifetimes and the lab's
    /// interval, offering `prefix` for SLAAC.
    pub fn slaac(prefix: Ipv6Net) -> RaConfig {
        RaConfig {
            prefix: prefix.trunc(),
            autonomous: true,
            managed: false,
            other: false,
            rdnss: Vec::new(),
            dnssl: Vec::new(),
            interval: Duration::from_secs(60),
            router_lifetime: Duration::from_secs(1800),
        }
    }
}

/// Valid and preferred lifetimes of the prefix (radvd's defaults).
const PREFIX_VALID: u32 = 86_400;
const PREFIX_PREFERRED: u32 = 14_400;

/// The router advertisement message (checksum left zero).
pub fn router_advertisement(c: &RaConfig, mac: Mac, mtu: u16) -> Vec<u8> {
    let secs = |d: Duration| d.as_secs().min(u64::from(u32::MAX)) as u32;
    let flags = if c.managed { 0x80 } else { 0 } | if c.other { 0x40 } else { 0 };
    let lifetime = secs(c.router_lifetime).min(9000) as u16;
    let mut m = vec![ROUTER_ADVERTISEMENT, 0, 0, 0, 64, flags];
    m.extend_from_slice(&lifetime.to_be_bytes());
    m.extend_from_slice(&[0; 8]); // reachable time, retrans timer: unspecified
    m.extend_from_slice(&[OPT_SOURCE_LLA, 1]);
    m.extend_from_slice(&mac.0);
    m.extend_from_slice(&[OPT_MTU, 1, 0, 0]);
    m.extend_from_slice(&u32::from(mtu).to_be_bytes());
    let pflags = 0x80 | if c.autonomous { 0x40 } else { 0 };
    m.extend_from_slice(&[OPT_PREFIX_INFO, 4, c.prefix.prefix_len(), pflags]);
    m.extend_from_slice(&PREFIX_VALID.to_be_bytes());
    m.extend_from_slice(&PREFIX_PREFERRED.to_be_bytes());
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&c.prefix.network().octets());
    // RFC 8106 5.1: a lifetime of at least 3 x MaxRtrAdvInterval.
    let dns_lifetime = secs(c.interval * 3).max(1);
    if !c.rdnss.is_empty() {
        m.extend_from_slice(&[OPT_RDNSS, (1 + 2 * c.rdnss.len()) as u8, 0, 0]);
        m.extend_from_slice(&dns_lifetime.to_be_bytes());
        for a in &c.rdnss {
            m.extend_from_slice(&a.octets());
        }
    }
    if !c.dnssl.is_empty() {
        let mut names = Vec::new();
        for d in &c.dnssl {
            for label in d.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
                names.push(label.len().min(63) as u8);
                names.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
            }
            names.push(0);
        }
        while !(names.len() + 8).is_multiple_of(8) {
            names.push(0);
        }
        m.extend_from_slice(&[OPT_DNSSL, ((names.len() + 8) / 8) as u8, 0, 0]);
        m.extend_from_slice(&dns_lifetime.to_be_bytes());
        m.extend_from_slice(&names);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = Mac([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);

    #[test]
    fn addresses_as_linux_makes_them() {
        assert_eq!(
            link_local(MAC),
            "fe80::11:22ff:fe33:4455".parse::<Ipv6Addr>().expect("ip")
        );
        let a: Ipv6Addr = "2001:db8:1::1".parse().expect("ip");
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff00:1".parse::<Ipv6Addr>().expect("ip")
        );
        assert_eq!(
            multicast_mac(solicited_node(a)),
            Mac([0x33, 0x33, 0xff, 0, 0, 1])
        );
    }

    #[test]
    fn messages_round_trip_and_bad_ones_are_refused() {
        let target: Ipv6Addr = "2001:db8:1::1".parse().expect("ip");
        let src: Ipv6Addr = "fe80::1".parse().expect("ip");
        let ns = solicitation(target, MAC);
        assert_eq!(
            parse(&ns, 255, src),
            Ok(NdMessage::NeighborSolicit {
                target,
                source_mac: Some(MAC)
            })
        );
        assert_eq!(parse(&ns, 254, src), Err(NdError::NotOnLink));
        let mut zero_len = ns.clone();
        zero_len[25] = 0;
        assert_eq!(parse(&zero_len, 255, src), Err(NdError::Malformed));
        let mut long = ns.clone();
        long[25] = 2;
        assert_eq!(parse(&long, 255, src), Err(NdError::Malformed));
        assert_eq!(
            parse(&ns, 255, Ipv6Addr::UNSPECIFIED),
            Err(NdError::Malformed),
            "DAD carries no source link-layer address"
        );
        let na = advertisement(target, MAC, true);
        assert!(matches!(
            parse(&na, 255, src),
            Ok(NdMessage::NeighborAdvert {
                router: true,
                solicited: true,
                target_mac: Some(MAC),
                ..
            })
        ));
        let mut multicast_target = na.clone();
        multicast_target[8] = 0xff;
        assert_eq!(parse(&multicast_target, 255, src), Err(NdError::Malformed));
    }

    #[test]
    fn advertisement_carries_prefix_mtu_and_dns() {
        let mut c = RaConfig::slaac("2001:db8:1::1/64".parse().expect("net"));
        c.other = true;
        c.rdnss = vec!["2001:db8:100::53".parse().expect("ip")];
        c.dnssl = vec!["example.com".into()];
        let ra = router_advertisement(&c, MAC, 1500);
        assert_eq!(ra[5], 0x40, "O flag");
        assert_eq!(
            parse(&ra, 255, "fe80::1".parse().expect("ip")),
            Ok(NdMessage::RouterAdvert)
        );
        assert!(ra.len().is_multiple_of(8));
        let prefix = ra
            .windows(8)
            .position(|w| w == [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0]);
        assert!(prefix.is_some(), "the /64 is in a prefix option");
    }
}
