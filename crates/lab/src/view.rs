//! What a service sees of the lab it runs in: the other nodes by name and
//! their addresses (a balancer's backends, a resolver's root servers).

use std::net::Ipv4Addr;
use std::sync::Arc;
use topology::{Attachment, HostAddress, Topology};

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

    /// The DNS names the lab's zones give `addr` (A records), and the names
    /// that are CNAMEs of those; sorted.
    pub fn names_of(&self, addr: Ipv4Addr) -> Vec<String> {
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
            .filter(|r| matches!(&r.data, RData::A(a) if a.0 == addr))
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

    /// Every network of the lab: switch subnets and the networks of router
    /// interfaces (TUN links included), hosts and services.
    pub fn networks(&self) -> Vec<ipnet::Ipv4Net> {
        let lab = &self.lab;
        let mut nets: Vec<ipnet::Ipv4Net> = lab.switches.iter().filter_map(|s| s.subnet).collect();
        nets.extend(
            lab.routers
                .iter()
                .flat_map(|r| r.interfaces.iter().map(|i| i.address.trunc())),
        );
        nets.extend(lab.services.iter().map(|s| s.address.trunc()));
        nets.extend(lab.hosts.iter().filter_map(|h| match h.address {
            HostAddress::Static(a) => Some(a.trunc()),
            HostAddress::Dhcp | HostAddress::None => None,
        }));
        nets.sort();
        nets.dedup();
        nets
    }

    /// The address of a service, a static host or a router (its first
    /// interface on a switch), by name.
    pub fn address_of(&self, name: &str) -> Option<Ipv4Addr> {
        let lab = &self.lab;
        let service = lab.services.iter().find(|s| s.name == name);
        let host = lab.hosts.iter().find(|h| h.name == name);
        let router = lab.routers.iter().find(|r| r.name == name);
        service
            .map(|s| s.address.addr())
            .or_else(|| match host?.address {
                HostAddress::Static(a) => Some(a.addr()),
                HostAddress::Dhcp | HostAddress::None => None,
            })
            .or_else(|| {
                router?
                    .interfaces
                    .iter()
                    .find(|i| matches!(i.attachment, Attachment::Switch(_)))
                    .map(|i| i.address.addr())
            })
    }
}
