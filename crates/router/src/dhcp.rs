//! A DHCPv4 server for one router interface (RFC 2131), sans-IO.
//!
//! Hands out addresses from a pool with a lease time, the router and DNS
//! options; answers DISCOVER with OFFER, REQUEST with ACK or NAK (selecting,
//! init-reboot, renewing and rebinding), frees on RELEASE, sets aside a
//! DECLINEd address, answers INFORM. A client keeps its address across
//! renewals and restarts while its lease lives. Messages are dhcproto's.
//!
//! Hostile clients are part of the design (docs/security.md):
//! * only Ethernet hardware addresses (htype 1, hlen 6) that match the
//!   frame's source MAC are served, so one host cannot act for another;
//! * DECLINE and RELEASE count only from the client holding the lease;
//! * each client MAC has a message budget (a token bucket, in a bounded
//!   table);
//! * the pool never holds the network, broadcast, the server's or any
//!   reserved (static) address; when it is used up the refusal is counted
//!   and the next full scan waits a second, and a client holding a lease
//!   keeps it whatever others ask for.

use dhcproto::v4::{DhcpOption, HType, Message, MessageType, Opcode};
use ipnet::Ipv4Net;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;
use wire::ratelimit::PerClient;
use wire::{Instant, Mac};

/// How long an offered address is held for the client's REQUEST.
const OFFER_HOLD: Duration = Duration::from_secs(60);
/// After a scan of the pool found nothing free, how long DISCOVERs are
/// refused without scanning again.
const EXHAUSTED_HOLD: Duration = Duration::from_secs(1);
/// Client MACs with a message budget at most; past it the least recently
/// seen one is forgotten.
pub const RATE_TABLE_SIZE: usize = 1024;

/// Decodes a client message with dhcproto, after checking the option
/// lengths dhcproto 0.15 asserts or subtracts from rather than checks (a
/// debug build panics on them; fuzzing found it): Rapid Commit (80) empty,
/// Client FQDN (81) at least 3, Client Network Interface (94) exactly 3,
/// BLQ status code (151) at least 1, BLQ times (152-155) exactly 4.
pub fn decode(bytes: &[u8]) -> Option<Message> {
    use dhcproto::Decodable;
    let mut options = bytes.get(240..)?;
    while let Some((&code, rest)) = options.split_first() {
        match code {
            0 => options = rest,
            255 => break,
            _ => {
                let (&len, rest) = rest.split_first()?;
                let fits = match code {
                    80 => len == 0,
                    81 => len >= 3,
                    94 => len == 3,
                    151 => len >= 1,
                    152..=155 => len == 4,
                    _ => true,
                };
                if !fits {
                    return None;
                }
                options = rest.get(usize::from(len)..)?;
            }
        }
    }
    Message::from_bytes(bytes).ok()
}

#[derive(Debug, Clone)]
pub struct DhcpConfig {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    pub lease: Duration,
    pub dns: Vec<Ipv4Addr>,
    /// Addresses in the range that are never offered: routers' and static
    /// hosts' on the segment.
    pub reserved: Vec<Ipv4Addr>,
    /// Messages per second a client MAC may send (bursts of 4 times that).
    pub client_rate: u32,
}

impl DhcpConfig {
    /// The default message budget per client: far above what dhclient
    /// sends, far below a flood.
    pub const CLIENT_RATE: u32 = 5;
}

/// What the server refused, and why: `scratchnet status` shows these.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DhcpCounters {
    pub requests: u64,
    /// Not an Ethernet hardware address (htype 1, hlen 6).
    pub bad_hardware_address: u64,
    /// chaddr differs from the frame's source MAC.
    pub spoofed_client: u64,
    pub rate_limited: u64,
    /// DECLINE or RELEASE from a client that does not hold the address.
    pub not_lease_owner: u64,
    /// DISCOVERs left without an offer: no free address.
    pub pool_exhausted: u64,
    /// Leases their clients gave back (RELEASE).
    pub released: u64,
}

/// A pool, as `scratchnet status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DhcpStatus {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    pub size: u32,
    pub in_use: usize,
    pub counters: DhcpCounters,
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

#[derive(Debug, Clone)]
pub struct DhcpServer {
    config: DhcpConfig,
    /// The interface: server identifier, router option, subnet.
    server: Ipv4Net,
    leases: BTreeMap<Ipv4Addr, Lease>,
    /// Message budgets by client MAC.
    budgets: PerClient<Mac>,
    /// Until when DISCOVERs are refused without a scan.
    exhausted_until: Option<Instant>,
    /// Addresses the pool can hand out.
    pool_size: u32,
    counters: DhcpCounters,
}

impl DhcpServer {
    pub fn new(config: DhcpConfig, server: Ipv4Net) -> DhcpServer {
        let rate = config.client_rate.max(1);
        let mut s = DhcpServer {
            config,
            server,
            leases: BTreeMap::new(),
            budgets: PerClient::new(rate, rate.saturating_mul(4), RATE_TABLE_SIZE),
            exhausted_until: None,
            pool_size: 0,
            counters: DhcpCounters::default(),
        };
        let (first, last) = (u32::from(s.config.first), u32::from(s.config.last));
        s.pool_size = (first..=last)
            .filter(|ip| s.in_pool(Ipv4Addr::from(*ip)))
            .count() as u32;
        s
    }

    fn in_pool(&self, ip: Ipv4Addr) -> bool {
        (self.config.first..=self.config.last).contains(&ip)
            && self.server.contains(&ip)
            && ip != self.server.addr()
            && ip != self.server.network()
            && ip != self.server.broadcast()
            && !self.config.reserved.contains(&ip)
    }

    /// Takes one message from `mac`'s budget.
    fn within_budget(&mut self, now: Instant, mac: Mac) -> bool {
        self.budgets.allow(now, mac)
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

    /// Answers one client message that came in a frame from `src`, if it
    /// calls for an answer; refusals are counted.
    pub fn handle(&mut self, now: Instant, src: Mac, msg: &Message) -> Option<Reply> {
        if msg.opcode() != Opcode::BootRequest {
            return None;
        }
        self.counters.requests += 1;
        // dhcproto's chaddr() slices by hlen: check it first.
        if msg.htype() != HType::Eth || msg.hlen() != 6 {
            self.counters.bad_hardware_address += 1;
            return None;
        }
        let mac = Mac::from_slice(msg.chaddr())?;
        if mac != src {
            self.counters.spoofed_client += 1;
            return None;
        }
        if !self.within_budget(now, mac) {
            self.counters.rate_limited += 1;
            return None;
        }
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
                if self.exhausted_until.is_some_and(|t| now < t) {
                    self.counters.pool_exhausted += 1;
                    return None;
                }
                let Some(ip) = self.choose(now, mac, requested) else {
                    self.counters.pool_exhausted += 1;
                    self.exhausted_until = Some(now + EXHAUSTED_HOLD);
                    return None;
                };
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
                if self.owns(now, msg.ciaddr(), mac) {
                    self.leases.remove(&msg.ciaddr());
                    self.exhausted_until = None;
                    self.counters.released += 1;
                } else {
                    self.counters.not_lease_owner += 1;
                }
                None
            }
            MessageType::Decline => {
                let ip = requested?;
                if !self.owns(now, ip, mac) {
                    self.counters.not_lease_owner += 1;
                } else {
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

    /// Whether `mac` holds a live, offered or bound, lease on `ip`.
    fn owns(&self, now: Instant, ip: Ipv4Addr, mac: Mac) -> bool {
        self.live(now, ip)
            .is_some_and(|l| l.mac == mac && l.state != State::Declined)
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

    /// Forgets expired leases and idle client budgets.
    pub fn on_timer(&mut self, now: Instant) {
        let before = self.leases.len();
        self.leases.retain(|_, l| l.expires > now);
        if self.leases.len() < before {
            self.exhausted_until = None;
        }
        self.budgets.forget_idle(now, Duration::from_secs(60));
    }

    pub fn status(&self, now: Instant) -> DhcpStatus {
        DhcpStatus {
            first: self.config.first,
            last: self.config.last,
            size: self.pool_size,
            in_use: self.leases.values().filter(|l| l.expires > now).count(),
            counters: self.counters.clone(),
        }
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
