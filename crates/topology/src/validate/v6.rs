//! The IPv6 keys of a topology: a switch's `subnet6`, a host's
//! `address6` (`"slaac"`, `"dhcp6"` or static) and `gateway6`, a router
//! interface's `address6`, `ra` table and (on a TUN link) `peer6`, with
//! the same kind of diagnostics as their IPv4 counterparts.

use super::Validator;
use crate::model::*;
use crate::raw::{self, Str};
use ipnet::{IpNet, Ipv6Net};
use std::collections::HashSet;
use std::net::Ipv6Addr;
use std::time::Duration;

/// RFC 4861 6.2.1: MaxRtrAdvInterval lies in 4..=1800 s.
const RA_INTERVAL_SECS: (u64, u64) = (4, 1800);
/// The lab's default: short enough that a learner sees one soon.
const RA_INTERVAL_DEFAULT: u64 = 60;
/// The most addresses a DHCPv6 range may hold (the server scans it).
const MAX_DHCP6_RANGE: u128 = 65536;

/// RFC 6052's well-known prefix, 64:ff9b::/96.
const WELL_KNOWN_PREFIX: Ipv6Net =
    match Ipv6Net::new(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        Ok(n) => n,
        Err(_) => panic!("a /96 is a valid prefix"),
    };

impl Validator<'_, '_> {
    /// A NAT64 or DNS64 prefix: a /96 network, which IPv4 addresses take
    /// the last 32 bits of (RFC 6052 2.2).
    pub(super) fn prefix96(&mut self, p: &Str, key: &str) -> Option<Ipv6Net> {
        let net = self.net6(p, key)?;
        if net.prefix_len() != 96 || net != net.trunc() {
            self.err(
                p,
                key,
                format!("`{net}` is not a /96 network"),
                "IPv4 addresses take the last 32 bits of a /96 (RFC 6052), like 64:ff9b::/96"
                    .to_owned(),
            );
            return None;
        }
        Some(net)
    }

    fn net6(&mut self, s: &Str, key: &str) -> Option<Ipv6Net> {
        match s.get_ref().parse::<Ipv6Net>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(
                    s,
                    key,
                    format!(
                        "`{}` is not an IPv6 address with a prefix length",
                        s.get_ref()
                    ),
                    "write it as ADDRESS/PREFIX, like 2001:db8:1::10/64".to_owned(),
                );
                None
            }
        }
    }

    fn ip6(&mut self, s: &Str, key: &str) -> Option<Ipv6Addr> {
        match s.get_ref().parse::<Ipv6Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    s,
                    key,
                    format!("`{}` is not an IPv6 address", s.get_ref()),
                    "write it without a prefix, like 2001:db8:1::1".to_owned(),
                );
                None
            }
        }
    }

    /// A switch's IPv6 prefix, written with its network address.
    pub(super) fn subnet6(&mut self, s: &raw::Switch, key: &str) -> Option<Ipv6Net> {
        let raw = s.subnet6.as_ref()?;
        let net = self.net6(raw, key)?;
        if net != net.trunc() {
            self.err(
                raw,
                key,
                format!("{net} has host bits set"),
                format!(
                    "a subnet is written with its network address: {}",
                    net.trunc()
                ),
            );
        }
        Some(net.trunc())
    }

    /// A host's IPv6 configuration and static default router.
    pub(super) fn host6(
        &mut self,
        h: &raw::Host,
        sw: Option<&SwitchSpec>,
        name: &str,
    ) -> (Option<HostAddress6>, Option<Ipv6Addr>) {
        let owner = format!("host \"{name}\"");
        let dynamic = match h.address6.as_ref().map(|a| a.get_ref().as_str()) {
            Some("slaac") => HostAddress6::Slaac,
            Some("dhcp6") => HostAddress6::Dhcp6,
            _ => {
                let (a, g) = self.static6((&h.address6, &h.gateway6), sw, &owner);
                return (a.map(HostAddress6::Static), g);
            }
        };
        if let Some(g) = &h.gateway6 {
            self.err(
                g,
                &format!("{owner}.gateway6"),
                "a host configured by SLAAC or DHCPv6 learns its default router from router advertisements",
                "remove `gateway6`, or give the host a static `address6`".to_owned(),
            );
        }
        (Some(dynamic), None)
    }

    /// A static IPv6 address (claimed on its switch) and default router,
    /// of a host or a service host (`owner`).
    pub(super) fn static6(
        &mut self,
        (addr, gw): (&Option<Str>, &Option<Str>),
        sw: Option<&SwitchSpec>,
        owner: &str,
    ) -> (Option<Ipv6Net>, Option<Ipv6Addr>) {
        let key = |k: &str| format!("{owner}.{k}");
        let net = addr.as_ref().and_then(|a| {
            let n = self.net6(a, &key("address6"))?;
            if let Some(sw) = sw {
                self.claim(a, &key("address6"), IpNet::V6(n), sw, owner);
            }
            Some(n)
        });
        let Some(g) = gw else {
            return (net, None);
        };
        let gateway6 = self.ip6(g, &key("gateway6"));
        match (addr, net, gateway6) {
            (_, Some(net), Some(gw))
                if !net.trunc().contains(&gw) && !gw.is_unicast_link_local() =>
            {
                self.err(
                    g,
                    &key("gateway6"),
                    format!("gateway {gw} is not on the local prefix {}", net.trunc()),
                    format!(
                        "use the router's address in {} (or its link-local fe80:: address)",
                        net.trunc()
                    ),
                );
            }
            (None, _, Some(_)) => self.err(
                g,
                &key("gateway6"),
                "`gateway6` without `address6`: there is no IPv6 address to use it with",
                "add `address6`".to_owned(),
            ),
            _ => {}
        }
        (net, gateway6)
    }

    /// A router interface's IPv6 address and router advertisements.
    pub(super) fn iface6(
        &mut self,
        i: &raw::Interface,
        sw: Option<&SwitchSpec>,
        router: &str,
    ) -> (Option<Ipv6Net>, Option<RaSpec>) {
        let key = |k: &str| format!("router \"{router}\".interfaces.{k}");
        let address6 = i.address6.as_ref().and_then(|a| {
            let net = self.net6(a, &key("address6"))?;
            if let Some(sw) = sw {
                self.claim(
                    a,
                    &key("address6"),
                    IpNet::V6(net),
                    sw,
                    &format!("router \"{router}\""),
                );
            }
            Some(net)
        });
        let Some(ra) = &i.ra else {
            return (address6, None);
        };
        let span = &i.address6.clone().unwrap_or_else(|| i.address.clone());
        if i.tun.is_some() {
            self.err(
                span,
                &key("ra"),
                "router advertisements are for a switch's hosts, not a TUN link",
                "remove `ra` from the TUN interface".to_owned(),
            );
            return (address6, None);
        }
        let Some(prefix) = address6 else {
            if i.address6.is_none() {
                self.err(
                    span,
                    &key("ra"),
                    "an interface advertises its own IPv6 prefix, and this one has none",
                    "add `address6 = \"2001:db8:1::1/64\"` (its address in the prefix to advertise)"
                        .to_owned(),
                );
            }
            return (None, None);
        };
        let r = ra.get_ref();
        let slaac = r.slaac.unwrap_or(true);
        if slaac && prefix.prefix_len() != 64 {
            self.err(
                span,
                &key("address6"),
                format!("{} is a /{}: SLAAC needs a /64 prefix", prefix.trunc(), prefix.prefix_len()),
                "hosts make a 64-bit interface identifier (RFC 4862, RFC 7421): give the segment a /64, or set `ra = { slaac = false }`".to_owned(),
            );
        }
        let rdnss = r
            .rdnss
            .iter()
            .filter_map(|a| self.ip6(a, &key("ra.rdnss")))
            .collect();
        let mut dnssl = Vec::new();
        for d in &r.dnssl {
            let name = d.get_ref().trim_end_matches('.');
            let ok = !name.is_empty()
                && name.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if ok {
                dnssl.push(name.to_owned());
            } else {
                self.err(
                    d,
                    &key("ra.dnssl"),
                    format!("`{}` is not a domain name", d.get_ref()),
                    "write a search domain like `example.com`".to_owned(),
                );
            }
        }
        let (lo, hi) = RA_INTERVAL_SECS;
        let interval = self.ranged(
            &r.interval_secs,
            &key("ra.interval_secs"),
            lo,
            hi,
            RA_INTERVAL_DEFAULT,
        );
        let spec = RaSpec {
            slaac,
            managed: r.managed.unwrap_or(false),
            other: r.other.unwrap_or(false),
            rdnss,
            dnssl,
            interval: Duration::from_secs(interval),
        };
        (address6, Some(spec))
    }

    /// The machine's IPv6 address on a TUN link with `address6`.
    pub(super) fn tun_peer6(&mut self, i: &raw::Interface, key: &str) -> Option<Ipv6Addr> {
        match (&i.address6, &i.peer6) {
            (None, None) => None,
            (Some(a), None) => {
                self.err(
                    a,
                    key,
                    "a TUN interface with `address6` needs the machine's IPv6 address on the link",
                    "add `peer6 = \"ADDRESS\"`".to_owned(),
                );
                None
            }
            (None, Some(p)) => {
                self.err(
                    p,
                    key,
                    "`peer6` without `address6`: the link carries no IPv6",
                    "add `address6` to the interface, or remove `peer6`".to_owned(),
                );
                None
            }
            (Some(a), Some(p)) => {
                let net = a.get_ref().parse::<Ipv6Net>().ok()?;
                let peer = self.ip6(p, key)?;
                if !net.trunc().contains(&peer) || peer == net.addr() {
                    self.err(
                        p,
                        key,
                        format!("peer {peer} is not another address in {}", net.trunc()),
                        None,
                    );
                }
                Some(peer)
            }
        }
    }

    /// A router's IPv6 firewall: its outside interface speaks IPv6, each
    /// pinhole leads to an address on one of its inside prefixes.
    pub(super) fn firewall6(
        &mut self,
        f: &toml::Spanned<raw::Firewall6>,
        interfaces: &[InterfaceSpec],
        router: &str,
    ) -> Option<Firewall6Spec> {
        let key = |k: &str| format!("router \"{router}\".firewall6.{k}");
        let f = f.get_ref();
        let outside = f.outside.get_ref();
        let on = |i: &&InterfaceSpec| i.attachment == Attachment::Switch(outside.clone());
        match interfaces.iter().find(on) {
            Some(i) if i.address6.is_some() => {}
            Some(_) => {
                self.err(
                    &f.outside,
                    &key("outside"),
                    format!("the interface on `{outside}` has no IPv6 address to filter"),
                    "give it `address6`, or filter another interface".to_owned(),
                );
                return None;
            }
            None => {
                self.err(
                    &f.outside,
                    &key("outside"),
                    format!("router `{router}` has no interface on switch `{outside}`"),
                    "name the switch of the router's outside interface".to_owned(),
                );
                return None;
            }
        }
        let inside: Vec<Ipv6Net> = interfaces
            .iter()
            .filter(|i| !on(i))
            .filter_map(|i| i.address6.map(|a| a.trunc()))
            .collect();
        let mut pinholes = Vec::new();
        for p in &f.pinholes {
            let p = p.get_ref();
            let protocol = self.protocol(&p.protocol, &key("pinholes.protocol"));
            let port =
                self.ranged(&Some(p.port.clone()), &key("pinholes.port"), 1, 65535, 0) as u16;
            let to = self.ip6(&p.to, &key("pinholes.to"));
            if let Some(to) = to.filter(|t| !inside.iter().any(|n| n.contains(t))) {
                self.err(
                    &p.to,
                    &key("pinholes.to"),
                    format!("{to} is not on any of the router's inside prefixes"),
                    "a pinhole leads to a station behind the firewall".to_owned(),
                );
                continue;
            }
            if let (Some(protocol), Some(to)) = (protocol, to) {
                pinholes.push(PinholeSpec { protocol, port, to });
            }
        }
        Some(Firewall6Spec {
            outside: outside.clone(),
            pinholes,
            max_entries: self.ranged(&f.max_entries, &key("max_entries"), 1, 1 << 24, 65536)
                as usize,
            max_entries_per_host: self.ranged(
                &f.max_entries_per_host,
                &key("max_entries_per_host"),
                1,
                1 << 24,
                16384,
            ) as usize,
        })
    }

    /// NAT64 out of one of the router's switches, to a /96 prefix, not
    /// sharing that interface's ports with a NAT44.
    pub(super) fn nat64(
        &mut self,
        n: &raw::Nat64,
        interfaces: &[InterfaceSpec],
        nat: Option<&NatSpec>,
        router: &str,
    ) -> Option<Nat64Spec> {
        let key = |k: &str| format!("router \"{router}\".nat64.{k}");
        let outside = n.outside.get_ref();
        if !interfaces
            .iter()
            .any(|i| i.attachment == Attachment::Switch(outside.clone()))
        {
            self.err(
                &n.outside,
                &key("outside"),
                format!("router `{router}` has no interface on switch `{outside}`"),
                "name the switch of the router's IPv4 side".to_owned(),
            );
            return None;
        }
        if nat.is_some_and(|x| x.outside == *outside) {
            self.err(
                &n.outside,
                &key("outside"),
                format!("the NAT on `{outside}` already hands out that interface's ports"),
                "translate from another interface, or drop `nat`".to_owned(),
            );
            return None;
        }
        let prefix = match &n.prefix {
            None => WELL_KNOWN_PREFIX,
            Some(p) => self.prefix96(p, &key("prefix"))?,
        };
        let max = self.ranged(&n.max_entries, &key("max_entries"), 1, 1 << 24, 65536);
        Some(Nat64Spec {
            outside: outside.clone(),
            prefix,
            max_entries: max as usize,
        })
    }

    /// A DHCPv6 server on one of the router's IPv6 segments, its range
    /// inside the segment's prefix and small enough to scan.
    pub(super) fn dhcp6(
        &mut self,
        d: &raw::Dhcp6,
        interfaces: &[InterfaceSpec],
        router: &str,
    ) -> Option<Dhcp6Spec> {
        let key = |k: &str| format!("router \"{router}\".dhcp6.{k}");
        let sw = d.switch.get_ref();
        let Some(prefix) = interfaces
            .iter()
            .find(|i| i.attachment == Attachment::Switch(sw.clone()))
            .map(|i| i.address6)
        else {
            self.err(
                &d.switch,
                &key("switch"),
                format!("router `{router}` has no interface on switch `{sw}`"),
                "serve DHCPv6 on a switch the router is attached to".to_owned(),
            );
            return None;
        };
        let Some(prefix) = prefix else {
            self.err(
                &d.switch,
                &key("switch"),
                format!("router `{router}`'s interface on `{sw}` has no IPv6 address"),
                "give it `address6`".to_owned(),
            );
            return None;
        };
        let range = d.range.get_ref();
        let parsed = range.split_once('-').and_then(|(a, b)| {
            Some((
                a.trim().parse::<Ipv6Addr>().ok()?,
                b.trim().parse::<Ipv6Addr>().ok()?,
            ))
        });
        let Some((first, last)) = parsed else {
            self.err(
                &d.range,
                &key("range"),
                format!("`{range}` is not a range of IPv6 addresses"),
                "write FIRST-LAST, like 2001:db8:1::100-2001:db8:1::1ff".to_owned(),
            );
            return None;
        };
        let net = prefix.trunc();
        let span = u128::from(last).checked_sub(u128::from(first));
        if !net.contains(&first) || !net.contains(&last) {
            self.err(
                &d.range,
                &key("range"),
                format!("the range {first}-{last} is not inside {net}"),
                format!("pick addresses of {net}"),
            );
            return None;
        }
        match span {
            None => {
                self.err(
                    &d.range,
                    &key("range"),
                    format!("the range starts at {first}, after its end {last}"),
                    "write the lower address first".to_owned(),
                );
                return None;
            }
            Some(n) if n >= MAX_DHCP6_RANGE => {
                self.err(
                    &d.range,
                    &key("range"),
                    format!("the range holds {} addresses", n.saturating_add(1)),
                    format!("keep it to at most {MAX_DHCP6_RANGE} addresses"),
                );
                return None;
            }
            Some(_) => {}
        }
        let dns = d
            .dns
            .iter()
            .filter_map(|a| self.ip6(a, &key("dns")))
            .collect();
        let lease = self.ranged(&d.lease_secs, &key("lease_secs"), 60, 1 << 31, 3600);
        let rate = self.ranged(&d.requests_per_sec, &key("requests_per_sec"), 1, 10_000, 5);
        Some(Dhcp6Spec {
            switch: sw.clone(),
            first,
            last,
            dns,
            domains: d.domains.iter().map(|x| x.get_ref().clone()).collect(),
            lease: Duration::from_secs(lease),
            requests_per_sec: rate as u32,
        })
    }

    /// A SLAAC host needs a router advertising a prefix for SLAAC on its
    /// switch; a DHCPv6 host a DHCPv6 server.
    pub(super) fn check_lab6(
        &mut self,
        file: &raw::File,
        hosts: &[HostSpec],
        routers: &[RouterSpec],
    ) {
        let dhcp6_on: HashSet<&str> = routers
            .iter()
            .flat_map(|r| &r.dhcp6)
            .map(|d| d.switch.as_str())
            .collect();
        let slaac_on: HashSet<&str> = routers
            .iter()
            .flat_map(|r| &r.interfaces)
            .filter(|i| i.ra.as_ref().is_some_and(|ra| ra.slaac))
            .filter_map(|i| match &i.attachment {
                Attachment::Switch(sw) => Some(sw.as_str()),
                Attachment::Tun { .. } => None,
            })
            .collect();
        for h in hosts {
            let Some(raw) = file
                .hosts
                .iter()
                .map(|x| x.get_ref())
                .find(|x| *x.name.get_ref() == h.name)
            else {
                continue;
            };
            let Some(at) = &raw.address6 else { continue };
            let key = format!("host \"{}\".address6", h.name);
            match h.address6 {
                Some(HostAddress6::Slaac) if !slaac_on.contains(h.switch.as_str()) => self.err(
                    at,
                    &key,
                    format!(
                        "host `{}` configures IPv6 by SLAAC, but no router advertises a prefix on switch `{}`",
                        h.name, h.switch
                    ),
                    format!(
                        "give the router's interface on `{}` an `address6` in a /64 and `ra = {{}}`, or give the host a static address",
                        h.switch
                    ),
                ),
                Some(HostAddress6::Dhcp6) if !dhcp6_on.contains(h.switch.as_str()) => self.err(
                    at,
                    &key,
                    format!(
                        "host `{}` takes its IPv6 address by DHCPv6, but no router serves DHCPv6 on switch `{}`",
                        h.name, h.switch
                    ),
                    format!(
                        "add a `dhcp6` table with `switch = \"{}\"` to a router on it, or use `address6 = \"slaac\"`",
                        h.switch
                    ),
                ),
                _ => {}
            }
        }
    }
}
