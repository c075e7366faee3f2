//! The routing table: connected and static routes, longest-prefix match.
//!
//! Equal prefixes are resolved deterministically: a connected route wins
//! over a static one, then the lower interface index, then the lower
//! gateway address. The table is small in a lab, so a sorted vector per
//! family, scanned from the most specific prefix, is both simple and fast.

use crate::IfaceId;
use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    Connected,
    Static,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Route {
    pub dest: IpNet,
    /// The next hop; `None` for a connected route (the destination itself).
    pub via: Option<IpAddr>,
    pub iface: IfaceId,
    pub kind: RouteKind,
}

#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    v4: Vec<Route>,
    v6: Vec<Route>,
}

impl RouteTable {
    pub fn add(&mut self, route: Route) {
        let routes = match route.dest {
            IpNet::V4(_) => &mut self.v4,
            IpNet::V6(_) => &mut self.v6,
        };
        routes.push(route);
        routes.sort_by(|a, b| {
            b.dest
                .prefix_len()
                .cmp(&a.dest.prefix_len())
                .then(a.kind.cmp(&b.kind))
                .then(a.iface.cmp(&b.iface))
                .then(a.via.cmp(&b.via))
                .then(a.dest.network().cmp(&b.dest.network()))
        });
    }

    /// The most specific route to `dst`.
    pub fn lookup(&self, dst: IpAddr) -> Option<&Route> {
        match dst {
            IpAddr::V4(d) => self.v4.iter().find(|r| match r.dest {
                IpNet::V4(n) => n.contains(&d),
                IpNet::V6(_) => false,
            }),
            IpAddr::V6(d) => self.v6.iter().find(|r| match r.dest {
                IpNet::V6(n) => n.contains(&d),
                IpNet::V4(_) => false,
            }),
        }
    }

    /// Every route, IPv4 first.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.v4.iter().chain(&self.v6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("cidr")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn longest_prefix_wins_and_ties_are_deterministic() {
        let mut t = RouteTable::default();
        t.add(Route {
            dest: net("0.0.0.0/0"),
            via: Some(ip("10.0.0.254")),
            iface: IfaceId(0),
            kind: RouteKind::Static,
        });
        t.add(Route {
            dest: net("10.0.0.0/8"),
            via: Some(ip("10.0.0.1")),
            iface: IfaceId(0),
            kind: RouteKind::Static,
        });
        t.add(Route {
            dest: net("10.1.0.0/16"),
            via: None,
            iface: IfaceId(1),
            kind: RouteKind::Connected,
        });
        t.add(Route {
            dest: net("10.1.2.0/24"),
            via: Some(ip("10.1.0.9")),
            iface: IfaceId(1),
            kind: RouteKind::Static,
        });
        t.add(Route {
            dest: net("10.1.2.0/24"),
            via: Some(ip("10.1.0.8")),
            iface: IfaceId(1),
            kind: RouteKind::Static,
        });
        assert_eq!(
            t.lookup(ip("10.1.2.3")).and_then(|r| r.via),
            Some(ip("10.1.0.8")),
            "/24, lower gateway"
        );
        assert_eq!(
            t.lookup(ip("10.1.9.9")).map(|r| r.kind),
            Some(RouteKind::Connected),
            "/16"
        );
        assert_eq!(
            t.lookup(ip("10.200.0.1")).and_then(|r| r.via),
            Some(ip("10.0.0.1")),
            "/8"
        );
        assert_eq!(
            t.lookup(ip("8.8.8.8")).and_then(|r| r.via),
            Some(ip("10.0.0.254")),
            "default"
        );
        let mut empty = RouteTable::default();
        assert!(empty.lookup(ip("1.2.3.4")).is_none());
        empty.add(Route {
            dest: net("192.168.0.0/24"),
            via: None,
            iface: IfaceId(2),
            kind: RouteKind::Connected,
        });
        assert!(empty.lookup(ip("192.168.1.1")).is_none());
    }
}
