//! Reverse zones for the lab's public addresses, made from the topology:
//! every router interface, service and static host on a network that is
//! not locally served (RFC 6303: private and special ranges) gets a PTR,
//! in in-addr.arpa for IPv4 and ip6.arpa (RFC 3596) for IPv6.
//!
//! The name a PTR gives is the address's name in the lab's own zones
//! (`web1.example.com.` for 203.0.113.11 and 2001:db8:113::11; of several,
//! the longest), else
//! one made from the topology: `SWITCH.ROUTER.test.` for a router's
//! interface, `NAME.test.` for a service or host (`.test`: RFC 6761).
//! The server of the root zone serves them, and the root zone delegates
//! each to the root's own name servers, so that a resolver walking down
//! from the root (minimised, one label at a time) finds them.

use dns::hickory_proto::rr::rdata::{NS, PTR, SOA};
use dns::hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use dns::Zone;
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use topology::{Attachment, HostAddress, HostAddress6, ServiceSettings, Topology};

/// TTL of the generated records.
const TTL: u32 = 3600;

/// `zones` (one authoritative server's), with the lab's reverse zones
/// added when they include the root zone.
pub fn with_reverse_zones(mut zones: Vec<Zone>, lab: &Topology) -> Vec<Zone> {
    let Some(root) = zones.iter().position(|z| z.origin().is_root()) else {
        return zones;
    };
    let servers: Vec<Name> = zones[root]
        .rrset(&LowerName::new(&Name::root()), RecordType::NS)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.clone()),
            _ => None,
        })
        .collect();
    let Some(primary) = servers.first().cloned() else {
        return zones;
    };
    let names = forward_names(lab);
    for (origin, ptrs) in reverse_records(lab) {
        let Ok(zone) = reverse_zone(&origin, &primary, &servers, &ptrs, &names) else {
            continue;
        };
        let delegations = servers
            .iter()
            .map(|s| Record::from_rdata(origin.clone(), TTL, RData::NS(NS(s.clone()))));
        for d in delegations {
            let _ = zones[root].insert(d);
        }
        zones.push(zone);
    }
    zones
}

/// The names a host's /etc/hosts gives the lab's addresses, for a host on
/// `switch`: NAME for a static host or a service (at each of its
/// addresses, IPv6 too, so that a name leads to both families as DNS
/// would), ROUTER.SWITCH for each
/// router interface on a switch, and ROUTER alone at its address on
/// `switch` (else its first).
///
/// The file stands in for DNS where DNS does not answer: for a host that
/// asks the lab's DNS (`uses_dns`), only the addresses the lab's reverse
/// zones do not name are listed, so that `curl www.example.com` still
/// crosses the resolver and `traceroute` shows the names DNS gives. A
/// host without DNS gets every address, each with its PTR name first
/// when the lab has one, so that names agree either way.
pub fn hosts_file(lab: &Topology, switch: &str, uses_dns: bool) -> Vec<(IpAddr, Vec<String>)> {
    let has_root = lab.services.iter().any(|s| match &s.settings {
        ServiceSettings::DnsAuthoritative(a) => a.zones.iter().any(|z| z.origin().is_root()),
        _ => false,
    });
    let mut ptr: BTreeMap<IpAddr, String> = BTreeMap::new();
    if has_root {
        let names = forward_names(lab);
        for (addr, made_up) in reverse_records(lab).into_values().flatten() {
            let name = names.get(&addr).unwrap_or(&made_up).to_string();
            ptr.insert(addr, name.trim_end_matches('.').to_owned());
        }
    }
    let mut short: Vec<(IpAddr, String)> = Vec::new();
    for h in &lab.hosts {
        if let HostAddress::Static(a) = h.address {
            short.push((IpAddr::V4(a.addr()), h.name.clone()));
        }
        if let Some(HostAddress6::Static(a)) = h.address6 {
            short.push((IpAddr::V6(a.addr()), h.name.clone()));
        }
    }
    for s in &lab.services {
        for a in s.addresses() {
            short.push((a, s.name.clone()));
        }
    }
    for r in &lab.routers {
        let near = r
            .interfaces
            .iter()
            .find(|i| i.attachment == Attachment::Switch(switch.to_owned()))
            .or(r.interfaces.first());
        for i in &r.interfaces {
            if near.is_some_and(|n| std::ptr::eq(n, i)) {
                short.push((IpAddr::V4(i.address.addr()), r.name.clone()));
            }
            if let Attachment::Switch(sw) = &i.attachment {
                short.push((IpAddr::V4(i.address.addr()), format!("{}.{sw}", r.name)));
            }
        }
    }
    if uses_dns {
        short.retain(|(addr, _)| !ptr.contains_key(addr));
    }
    let mut lines: Vec<(IpAddr, Vec<String>)> = Vec::new();
    let mut line_of: HashMap<IpAddr, usize> = HashMap::new();
    for (addr, name) in short {
        match line_of.get(&addr) {
            Some(&i) => lines[i].1.push(name),
            None => {
                let mut names: Vec<String> = ptr.get(&addr).cloned().into_iter().collect();
                names.push(name);
                line_of.insert(addr, lines.len());
                lines.push((addr, names));
            }
        }
    }
    for (_, names) in &mut lines {
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
    }
    lines
}

/// One reverse zone: its SOA and NS, and a PTR for each address.
fn reverse_zone(
    origin: &Name,
    primary: &Name,
    servers: &[Name],
    ptrs: &[(IpAddr, Name)],
    names: &BTreeMap<IpAddr, Name>,
) -> Result<Zone, dns::ZoneError> {
    let hostmaster = Name::from_ascii("hostmaster")
        .and_then(|h| h.append_domain(origin))
        .unwrap_or_else(|_| origin.clone());
    let soa = SOA::new(primary.clone(), hostmaster, 1, 7200, 900, 1_209_600, 300);
    let mut zone = Zone::empty(origin);
    zone.insert(Record::from_rdata(origin.clone(), TTL, RData::SOA(soa)))?;
    for s in servers {
        zone.insert(Record::from_rdata(
            origin.clone(),
            TTL,
            RData::NS(NS(s.clone())),
        ))?;
    }
    for (addr, made_up) in ptrs {
        let target = names.get(addr).unwrap_or(made_up).clone();
        zone.insert(Record::from_rdata(
            reverse_name(*addr),
            TTL,
            RData::PTR(PTR(target)),
        ))?;
    }
    Ok(zone)
}

/// Each public address of the lab with the name the topology gives it,
/// grouped by reverse zone.
fn reverse_records(lab: &Topology) -> BTreeMap<Name, Vec<(IpAddr, Name)>> {
    let mut named: Vec<(IpNet, String)> = Vec::new();
    for r in &lab.routers {
        for i in &r.interfaces {
            let on = match &i.attachment {
                Attachment::Switch(s) => s.as_str(),
                Attachment::Tun { name, .. } => name.as_str(),
            };
            let name = format!("{on}.{}.test.", r.name);
            named.push((IpNet::V4(i.address), name.clone()));
            named.extend(i.address6.map(|a| (IpNet::V6(a), name)));
        }
    }
    for s in &lab.services {
        let name = format!("{}.test.", s.name);
        named.push((IpNet::V4(s.address), name.clone()));
        named.extend(s.address6.map(|a| (IpNet::V6(a), name)));
    }
    for h in &lab.hosts {
        let name = format!("{}.test.", h.name);
        if let HostAddress::Static(a) = h.address {
            named.push((IpNet::V4(a), name.clone()));
        }
        if let Some(HostAddress6::Static(a)) = h.address6 {
            named.push((IpNet::V6(a), name));
        }
    }
    let mut zones: BTreeMap<Name, Vec<(IpAddr, Name)>> = BTreeMap::new();
    for (net, name) in named {
        let origin = zone_of(net);
        if dns::locally_served(&LowerName::new(&origin)).is_some() {
            continue;
        }
        if let Ok(name) = Name::from_ascii(&name) {
            zones.entry(origin).or_default().push((net.addr(), name));
        }
    }
    zones
}

/// The names the lab's own zones give addresses (A and AAAA records): of several,
/// the longest (`www.example.com.` rather than `example.com.`).
fn forward_names(lab: &Topology) -> BTreeMap<IpAddr, Name> {
    let mut names: BTreeMap<IpAddr, Name> = BTreeMap::new();
    let zones = lab.services.iter().filter_map(|s| match &s.settings {
        ServiceSettings::DnsAuthoritative(a) => Some(&a.zones),
        _ => None,
    });
    for record in zones.flatten().flat_map(Zone::records) {
        let addr = match &record.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        if record.name.is_wildcard() {
            continue;
        }
        let better = names
            .get(&addr)
            .is_none_or(|n| record.name.num_labels() > n.num_labels());
        if better {
            names.insert(addr, record.name.clone());
        }
    }
    names
}

/// The reverse zone a network's addresses are in: whole octets (IPv4)
/// or nibbles (IPv6) of its prefix (a /24's `C.B.A.in-addr.arpa.`, a /25
/// in its /24's, a /20 in its /16's; a /64's 16 nibbles in ip6.arpa).
fn zone_of(net: IpNet) -> Name {
    let labels = match net {
        IpNet::V4(n) => {
            let octets = usize::from(n.prefix_len() / 8).clamp(1, 3);
            let o = n.network().octets();
            let labels: Vec<String> = o[..octets].iter().rev().map(u8::to_string).collect();
            format!("{}.in-addr.arpa.", labels.join("."))
        }
        IpNet::V6(n) => {
            let count = usize::from(n.prefix_len() / 4).clamp(1, 31);
            let nibbles = nibbles(n.network().octets());
            format!("{}ip6.arpa.", nibbles[32 - count..].concat())
        }
    };
    Name::from_ascii(labels).unwrap_or_default()
}

/// `D.C.B.A.in-addr.arpa.` for A.B.C.D; the 32 nibbles backwards in
/// ip6.arpa for an IPv6 address.
fn reverse_name(a: IpAddr) -> Name {
    let name = match a {
        IpAddr::V4(a) => {
            let [x, y, z, w] = a.octets();
            format!("{w}.{z}.{y}.{x}.in-addr.arpa.")
        }
        IpAddr::V6(a) => format!("{}ip6.arpa.", nibbles(a.octets()).concat()),
    };
    Name::from_ascii(name).unwrap_or_default()
}

/// An IPv6 address's nibbles as labels ("x."), lowest first.
fn nibbles(octets: [u8; 16]) -> Vec<String> {
    octets
        .iter()
        .rev()
        .flat_map(|b| [b & 0x0f, b >> 4])
        .map(|n| format!("{n:x}."))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dns::hickory_proto::op::{Message, Query};
    use dns::{Authority, Transport};

    #[test]
    fn hosts_files_leave_to_dns_what_dns_names() {
        let lab = topology::reference_lab();
        let line = |lines: &[(IpAddr, Vec<String>)], a: &str| {
            let a: IpAddr = a.parse().expect("addr");
            lines
                .iter()
                .find(|(x, _)| *x == a)
                .map(|(_, n)| n.join(" "))
        };
        // alice asks isp-dns: only what DNS cannot name is in her file.
        let with_dns = hosts_file(&lab, "home", true);
        assert_eq!(
            line(&with_dns, "192.168.1.1").as_deref(),
            Some("home-gw home-gw.home")
        );
        assert_eq!(line(&with_dns, "192.168.1.10").as_deref(), Some("alice"));
        assert_eq!(
            line(&with_dns, "203.0.113.10"),
            None,
            "www.example.com is the resolver's"
        );
        // Without DNS, every address, under the name DNS would give first.
        let without = hosts_file(&lab, "home", false);
        assert_eq!(
            line(&without, "203.0.113.10").as_deref(),
            Some("www.example.com lb")
        );
        assert_eq!(
            line(&without, "198.51.100.1").as_deref(),
            Some("isp.isp-gw.test isp-gw isp-gw.isp")
        );
    }

    fn ptr(auth: &Authority, addr: &str) -> (dns::hickory_proto::op::ResponseCode, Vec<String>) {
        let addr: IpAddr = addr.parse().expect("addr");
        let mut q = Message::query();
        q.add_query(Query::query(reverse_name(addr), RecordType::PTR));
        let bytes = auth
            .answer(
                &q.to_vec().expect("encode"),
                Transport::Udp,
                [127, 0, 0, 1].into(),
            )
            .expect("an answer");
        let m = Message::from_vec(&bytes).expect("decode");
        let names = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(p.0.to_string()),
                _ => None,
            })
            .collect();
        (m.metadata.response_code, names)
    }

    #[test]
    fn the_reference_labs_public_addresses_have_names() {
        let lab = topology::reference_lab();
        let root = lab
            .services
            .iter()
            .find(|s| s.name == "root-ns")
            .expect("root-ns");
        let ServiceSettings::DnsAuthoritative(settings) = &root.settings else {
            panic!("root-ns is authoritative")
        };
        let zones = with_reverse_zones(settings.zones.clone(), &lab);
        let origins: Vec<String> = zones.iter().map(|z| z.origin().to_string()).collect();
        assert!(
            origins.contains(&"113.0.203.in-addr.arpa.".to_owned()),
            "{origins:?}"
        );
        assert!(
            origins.contains(&"100.51.198.in-addr.arpa.".to_owned()),
            "{origins:?}"
        );
        assert!(!origins.iter().any(|o| o.ends_with("168.192.in-addr.arpa.")));
        assert!(
            origins.contains(&"0.0.0.0.3.1.1.0.8.b.d.0.1.0.0.2.ip6.arpa.".to_owned()),
            "{origins:?}"
        );
        let auth = Authority::new(zones);
        use dns::hickory_proto::op::ResponseCode::*;
        for (addr, name) in [
            ("203.0.113.10", "www.example.com."),
            ("203.0.113.11", "web1.example.com."),
            ("203.0.113.53", "a.root-servers.net."),
            ("198.51.100.53", "isp-dns.test."),
            ("198.51.100.1", "isp.isp-gw.test."),
            ("203.0.113.1", "dc.isp-gw.test."),
            ("198.51.100.2", "isp.home-gw.test."),
            ("2001:db8:113::11", "web1.example.com."),
            ("2001:db8:113::10", "www.example.com."),
            ("2001:db8:100::53", "isp-dns.test."),
            ("2001:db8:2::10", "carol.test."),
            ("2001:db8:1::1", "home.home-gw.test."),
        ] {
            assert_eq!(ptr(&auth, addr), (NoError, vec![name.to_owned()]), "{addr}");
        }
        assert_eq!(ptr(&auth, "203.0.113.200").0, NXDomain);
        assert_eq!(ptr(&auth, "2001:db8:113::200").0, NXDomain);
    }
}
