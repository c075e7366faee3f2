//! What a service sees of the lab it runs in: the other nodes by name and
//! their addresses (a balancer's backends, a resolver's root servers).

use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;
use topology::{Attachment, HostAddress, HostAddress6, Topology};

/// A read-only view of the resolved lab; cheap to clone.
#[derive(Debug, Clone)]
pub struct LabView {
    lab: Arc<Topology>,
    world: services::World,
    /// The lab's certificate authority, if a service speaks TLS.
    ca: Option<crate::pki::SharedCa>,
}

impl LabView {
    pub fn new(lab: &Topology, ca: Option<crate::pki::SharedCa>) -> LabView {
        LabView {
            lab: Arc::new(lab.clone()),
            world: services::World::Machine,
            ca,
        }
    }

    /// The lab's certificate authority, if a service speaks TLS.
    pub fn ca(&self) -> Option<&crate::pki::SharedCa> {
        self.ca.as_ref()
    }

    /// The DNS names the lab's zones give `addr` (A or AAAA records), and
    /// the names that are CNAMEs of those; sorted.
    pub fn names_of(&self, addr: IpAddr) -> Vec<String> {
        use dns::hickory_proto::rr::RData;
        let records: Vec<&dns::hickory_proto::rr::Record> = self
            .lab
            .services
            .iter()
            .filter_map(|s| match &s.settings {
                topology::ServiceSettings::DnsAuthoritative(d) => Some(&d.zones),
                _ => None,
            })
            .flatten()
            .flat_map(|z| z.records())
            .collect();
        let mut names: Vec<String> = records
            .iter()
            .filter(|r| match (&r.data, addr) {
                (RData::A(a), IpAddr::V4(addr)) => a.0 == addr,
                (RData::AAAA(a), IpAddr::V6(addr)) => a.0 == addr,
                _ => false,
            })
            .map(|r| r.name.to_string())
            .collect();
        let aliases: Vec<String> = records
            .iter()
            .filter(|r| matches!(&r.data, RData::CNAME(t) if names.contains(&t.0.to_string())))
            .map(|r| r.name.to_string())
            .collect();
        names.extend(aliases);
        let mut names: Vec<String> = names
            .into_iter()
            .map(|n| n.trim_end_matches('.').to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The same lab in `world` (a simulation's clock and seed).
    pub fn in_world(self, world: services::World) -> LabView {
        LabView { world, ..self }
    }

    /// Where services read the time and seed their randomness.
    pub fn world(&self) -> services::World {
        self.world
    }

    pub fn topology(&self) -> &Topology {
        &self.lab
    }

    /// Every network of the lab, of both families: switch subnets and the
    /// networks of router interfaces (TUN links included), hosts and
    /// services.
    pub fn networks(&self) -> Vec<IpNet> {
        let lab = &self.lab;
        let mut nets: Vec<IpNet> = (lab.switches.iter())
            .flat_map(|s| [s.subnet.map(IpNet::V4), s.subnet6.map(IpNet::V6)])
            .flatten()
            .collect();
        for i in lab.routers.iter().flat_map(|r| &r.interfaces) {
            nets.push(IpNet::V4(i.address.trunc()));
            nets.extend(i.address6.map(|a| IpNet::V6(a.trunc())));
        }
        for s in &lab.services {
            nets.push(IpNet::V4(s.address.trunc()));
            nets.extend(s.address6.map(|a| IpNet::V6(a.trunc())));
        }
        for h in &lab.hosts {
            if let HostAddress::Static(a) = h.address {
                nets.push(IpNet::V4(a.trunc()));
            }
            if let Some(HostAddress6::Static(a)) = h.address6 {
                nets.push(IpNet::V6(a.trunc()));
            }
        }
        nets.sort();
        nets.dedup();
        nets
    }

    /// The address of a service, a static host or a router (its first
    /// interface on a switch), by name: its IPv4 address, or its IPv6 one
    /// where it has no other.
    pub fn address_of(&self, name: &str) -> Option<IpAddr> {
        let lab = &self.lab;
        let service = lab.services.iter().find(|s| s.name == name);
        let host = lab.hosts.iter().find(|h| h.name == name);
        let router = lab.routers.iter().find(|r| r.name == name);
        service
            .map(|s| IpAddr::V4(s.address.addr()))
            .or_else(|| {
                let h = host?;
                match (h.address, h.address6) {
                    (HostAddress::Static(a), _) => Some(IpAddr::V4(a.addr())),
                    (_, Some(HostAddress6::Static(a))) => Some(IpAddr::V6(a.addr())),
                    _ => None,
                }
            })
            .or_else(|| {
                router?
                    .interfaces
                    .iter()
                    .find(|i| matches!(i.attachment, Attachment::Switch(_)))
                    .map(|i| IpAddr::V4(i.address.addr()))
            })
    }
}
