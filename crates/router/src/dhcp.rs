//! A DHCPv4 server for one router interface (RFC 2131), sans-IO.
//!
//! Hands out addresses from a pool with a lease time, the router and DNS
//! options; answers DISCOVER with OFFER, REQUEST with ACK or NAK (selecting,
//! init-reboot, renewing and rebinding), frees on RELEASE, sets aside a
//! DECLINEd address, answers INFORM. A client keeps its address across
//! renewals and restarts while its lease lives. Messages are dhcproto's.

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
use ipnet::Ipv4Net;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;
use wire::{Instant, Mac};

/// How long an offered address is held for the client's REQUEST.
const OFFER_HOLD: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct DhcpConfig {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    pub lease: Duration,
    pub dns: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Offered,
    Bound,
    /// DECLINEd by a client: someone else uses it.
    Declined,
}

#[derive(Debug, Clone)]
struct Lease {
    mac: Mac,
    state: State,
    expires: Instant,
}

/// A lease, as `scratchnet status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeaseRow {
    pub ip: Ipv4Addr,
    pub mac: Mac,
    pub state: &'static str,
    pub expires_in_secs: u64,
}

/// A reply to send: the message, its IP destination and Ethernet destination.
#[derive(Debug)]
pub struct Reply {
    pub message: Message,
    pub ip_dst: Ipv4Addr,
    pub mac_dst: Mac,
}

#[derive(Debug)]
pub struct DhcpServer {
    config: DhcpConfig,
    /// The interface: server identifier, router option, subnet.
    server: Ipv4Net,
    leases: BTreeMap<Ipv4Addr, Lease>,
}

impl DhcpServer {
    pub fn new(config: DhcpConfig, server: Ipv4Net) -> DhcpServer {
        DhcpServer {
            config,
            server,
            leases: BTreeMap::new(),
        }
    }

    fn in_pool(&self, ip: Ipv4Addr) -> bool {
        (self.config.first..=self.config.last).contains(&ip) && ip != self.server.addr()
    }

    fn live(&self, now: Instant, ip: Ipv4Addr) -> Option<&Lease> {
        self.leases.get(&ip).filter(|l| l.expires > now)
    }

    fn free_for(&self, now: Instant, ip: Ipv4Addr, mac: Mac) -> bool {
        self.in_pool(ip)
            && self
                .live(now, ip)
                .is_none_or(|l| l.mac == mac && l.state != State::Declined)
    }

    /// The address to offer `mac`: its current one, the one it asks for,
    /// or the lowest free one.
    fn choose(&self, now: Instant, mac: Mac, requested: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        if let Some((ip, _)) = self
            .leases
            .iter()
            .find(|(_, l)| l.mac == mac && l.expires > now && l.state != State::Declined)
        {
            return Some(*ip);
        }
        if let Some(r) = requested.filter(|r| self.free_for(now, *r, mac)) {
            return Some(r);
        }
        let (first, last) = (u32::from(self.config.first), u32::from(self.config.last));
        (first..=last)
            .map(Ipv4Addr::from)
            .find(|ip| self.free_for(now, *ip, mac))
    }

    /// Answers one client message, if it calls for an answer.
    pub fn handle(&mut self, now: Instant, msg: &Message) -> Option<Reply> {
        if msg.opcode() != Opcode::BootRequest {
            return None;
        }
        let mac = Mac::from_slice(msg.chaddr())?;
        let opts = msg.opts();
        let requested = match opts.get(dhcproto::v4::OptionCode::RequestedIpAddress) {
            Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
            _ => None,
        };
        let server_id = match opts.get(dhcproto::v4::OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
            _ => None,
        };
        match opts.msg_type()? {
            MessageType::Discover => {
                let ip = self.choose(now, mac, requested)?;
                self.leases.insert(
                    ip,
                    Lease {
                        mac,
                        state: State::Offered,
                        expires: now + OFFER_HOLD,
                    },
                );
                Some(self.reply(msg, MessageType::Offer, ip))
            }
            MessageType::Request => {
                let ip = if let Some(sid) = server_id {
                    // SELECTING: the client chose a server.
                    if sid != self.server.addr() {
                        self.leases
                            .retain(|_, l| !(l.mac == mac && l.state == State::Offered));
                        return None;
                    }
                    requested?
                } else if let Some(r) = requested {
                    r // INIT-REBOOT
                } else {
                    msg.ciaddr() // RENEWING or REBINDING
                };
                if self.free_for(now, ip, mac) {
                    self.leases.insert(
                        ip,
                        Lease {
                            mac,
                            state: State::Bound,
                            expires: now + self.config.lease,
                        },
                    );
                    Some(self.reply(msg, MessageType::Ack, ip))
                } else if server_id.is_some()
                    || self.server.contains(&ip)
                    || msg.ciaddr().is_unspecified()
                {
                    Some(self.reply(msg, MessageType::Nak, Ipv4Addr::UNSPECIFIED))
                } else {
                    None // rebinding for another network: not ours to refuse
                }
            }
            MessageType::Release => {
                if self.leases.get(&msg.ciaddr()).is_some_and(|l| l.mac == mac) {
                    self.leases.remove(&msg.ciaddr());
                }
                None
            }
            MessageType::Decline => {
                let ip = requested?;
                if self.in_pool(ip) {
                    self.leases.insert(
                        ip,
                        Lease {
                            mac,
                            state: State::Declined,
                            expires: now + self.config.lease,
                        },
                    );
                }
                None
            }
            MessageType::Inform => Some(self.reply(msg, MessageType::Ack, Ipv4Addr::UNSPECIFIED)),
            _ => None,
        }
    }

    fn reply(&self, req: &Message, kind: MessageType, yiaddr: Ipv4Addr) -> Reply {
        let mut m = Message::new_with_id(
            req.xid(),
            req.ciaddr(),
            yiaddr,
            Ipv4Addr::UNSPECIFIED,
            req.giaddr(),
            req.chaddr(),
        );
        m.set_opcode(Opcode::BootReply);
        m.set_flags(req.flags());
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        o.insert(DhcpOption::ServerIdentifier(self.server.addr()));
        if kind != MessageType::Nak {
            o.insert(DhcpOption::SubnetMask(self.server.netmask()));
            o.insert(DhcpOption::Router(vec![self.server.addr()]));
            if !self.config.dns.is_empty() {
                o.insert(DhcpOption::DomainNameServer(self.config.dns.clone()));
            }
            if kind != MessageType::Ack || !yiaddr.is_unspecified() {
                let secs = self.config.lease.as_secs().min(u64::from(u32::MAX)) as u32;
                o.insert(DhcpOption::AddressLeaseTime(secs));
                o.insert(DhcpOption::Renewal(secs / 2));
                o.insert(DhcpOption::Rebinding(secs / 8 * 7));
            }
        }
        let chaddr = Mac::from_slice(req.chaddr()).unwrap_or(Mac::BROADCAST);
        let (ip_dst, mac_dst) = if kind == MessageType::Nak || req.flags().broadcast() {
            (Ipv4Addr::BROADCAST, Mac::BROADCAST)
        } else if !req.ciaddr().is_unspecified() {
            (req.ciaddr(), chaddr)
        } else {
            (yiaddr, chaddr)
        };
        Reply {
            message: m,
            ip_dst,
            mac_dst,
        }
    }

    /// Forgets expired leases.
    pub fn on_timer(&mut self, now: Instant) {
        self.leases.retain(|_, l| l.expires > now);
    }

    pub fn leases(&self, now: Instant) -> Vec<LeaseRow> {
        self.leases
            .iter()
            .filter(|(_, l)| l.expires > now)
            .map(|(ip, l)| LeaseRow {
                ip: *ip,
                mac: l.mac,
                state: match l.state {
                    State::Offered => "offered",
                    State::Bound => "bound",
                    State::Declined => "declined",
                },
                expires_in_secs: l.expires.saturating_since(now).as_secs(),
            })
            .collect()
    }
}
