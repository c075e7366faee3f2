//! A DHCPv6 server for one router interface (RFC 8415), sans-IO.
//!
//! Stateful (IA_NA): SOLICIT gets an ADVERTISE (or, with Rapid Commit, a
//! REPLY that binds at once), REQUEST, RENEW and REBIND a REPLY with the
//! binding, RELEASE and DECLINE a REPLY with their status, CONFIRM says
//! whether the client's addresses are on this link. Stateless:
//! INFORMATION-REQUEST gets the DNS servers and search list (RFC 3646).
//! A client is its DUID and IAID, and keeps its address across renewals
//! and restarts while its lease lives. Messages are dhcproto's.
//!
//! Hostile clients, as for the DHCPv4 server (docs/security.md):
//! * a binding belongs to the station (source MAC) that made it: another
//!   station cannot renew, release or decline it by copying the DUID;
//! * each station has a message budget (a token bucket, in a bounded
//!   table);
//! * the pool is a bounded range that never holds the router's or a
//!   reserved (static) address; when it is used up the refusal is
//!   answered with NoAddrsAvail and counted, and the next scan waits a
//!   second;
//! * messages from a server (ADVERTISE, REPLY, RECONFIGURE) and relay
//!   messages are ignored.

use crate::dhcp::RATE_TABLE_SIZE;
use dhcproto::v6::{
    DhcpOption, DhcpOptions, IAAddr, Message, MessageType, OptionCode, Status, StatusCode, IANA,
};
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::Duration;
use wire::ratelimit::PerClient;
use wire::{Instant, Mac};

/// How long an advertised address is held for the client's REQUEST.
const OFFER_HOLD: Duration = Duration::from_secs(60);
/// After a scan of the pool found nothing free, how long new clients are
/// refused without scanning again.
const EXHAUSTED_HOLD: Duration = Duration::from_secs(1);
/// The most addresses a pool may span: a scan stays cheap.
pub const MAX_POOL: u128 = 65536;

#[derive(Debug, Clone)]
pub struct Dhcp6Config {
    pub first: Ipv6Addr,
    pub last: Ipv6Addr,
    /// Valid lifetime of a binding; the preferred one is half of it.
    pub lease: Duration,
    pub dns: Vec<Ipv6Addr>,
    pub domains: Vec<String>,
    /// Addresses in the range never handed out: the router's and static
    /// hosts' on the segment.
    pub reserved: Vec<Ipv6Addr>,
    /// Messages per second one station may send (bursts of 4 times that).
    pub client_rate: u32,
}

/// What the server did and refused: `scratchnet status` shows these.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Dhcp6Counters {
    pub requests: u64,
    pub rate_limited: u64,
    /// Messages without a client identifier, or with a server identifier
    /// where none belongs (or another server's).
    pub malformed: u64,
    /// RENEW, RELEASE or DECLINE of a binding another station made.
    pub not_lease_owner: u64,
    pub pool_exhausted: u64,
    pub released: u64,
    pub declined: u64,
}

/// A pool, as `scratchnet status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Dhcp6Status {
    pub first: Ipv6Addr,
    pub last: Ipv6Addr,
    pub in_use: usize,
    pub counters: Dhcp6Counters,
}

/// A binding, as `scratchnet status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lease6Row {
    pub ip: Ipv6Addr,
    pub mac: Mac,
    /// The client's DUID, in hex.
    pub duid: String,
    pub iaid: u32,
    pub state: &'static str,
    pub expires_in_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Advertised,
    Bound,
    /// DECLINEd: someone else uses it.
    Declined,
}

#[derive(Debug, Clone)]
struct Binding {
    duid: Vec<u8>,
    iaid: u32,
    mac: Mac,
    state: State,
    expires: Instant,
}

#[derive(Debug, Clone)]
pub struct Dhcp6Server {
    config: Dhcp6Config,
    /// DUID-LL of the interface (RFC 8415 11.4).
    server_id: Vec<u8>,
    /// The interface's own address and prefix: never handed out, and
    /// what CONFIRM checks against.
    prefix: ipnet::Ipv6Net,
    bindings: BTreeMap<Ipv6Addr, Binding>,
    budgets: PerClient<Mac>,
    exhausted_until: Option<Instant>,
    counters: Dhcp6Counters,
}

fn secs(d: Duration) -> u32 {
    d.as_secs().min(u64::from(u32::MAX)) as u32
}

impl Dhcp6Server {
    pub fn new(config: Dhcp6Config, mac: Mac, prefix: ipnet::Ipv6Net) -> Dhcp6Server {
        let rate = config.client_rate.max(1);
        let mut server_id = vec![0, 3, 0, 1];
        server_id.extend_from_slice(&mac.0);
        Dhcp6Server {
            config,
            server_id,
            prefix,
            bindings: BTreeMap::new(),
            budgets: PerClient::new(rate, rate.saturating_mul(4), RATE_TABLE_SIZE),
            exhausted_until: None,
            counters: Dhcp6Counters::default(),
        }
    }

    fn in_pool(&self, ip: Ipv6Addr) -> bool {
        (self.config.first..=self.config.last).contains(&ip)
            && self.prefix.contains(&ip)
            && ip != self.prefix.addr()
            && !self.config.reserved.contains(&ip)
    }

    fn live(&self, now: Instant, ip: Ipv6Addr) -> Option<&Binding> {
        self.bindings.get(&ip).filter(|b| b.expires > now)
    }

    /// The address `duid`/`iaid` holds now, if any.
    fn held(&self, now: Instant, duid: &[u8], iaid: u32) -> Option<Ipv6Addr> {
        self.bindings
            .iter()
            .find(|(_, b)| {
                b.duid == duid && b.iaid == iaid && b.expires > now && b.state != State::Declined
            })
            .map(|(ip, _)| *ip)
    }

    /// The lowest free address of the pool.
    fn free(&self, now: Instant) -> Option<Ipv6Addr> {
        let (first, last) = (u128::from(self.config.first), u128::from(self.config.last));
        (first..=last.min(first.saturating_add(MAX_POOL - 1)))
            .map(Ipv6Addr::from)
            .find(|ip| self.in_pool(*ip) && self.live(now, *ip).is_none())
    }

    /// Answers one client message that came in a frame from `src`, if it
    /// calls for an answer; refusals are counted.
    pub fn handle(&mut self, now: Instant, src: Mac, msg: &Message) -> Option<Message> {
        use MessageType::*;
        let kind = msg.msg_type();
        if !matches!(
            kind,
            Solicit | Request | Confirm | Renew | Rebind | Release | Decline | InformationRequest
        ) {
            return None;
        }
        self.counters.requests += 1;
        if !self.budgets.allow(now, src) {
            self.counters.rate_limited += 1;
            return None;
        }
        let opts = msg.opts();
        let client_id = match opts.get(OptionCode::ClientId) {
            Some(DhcpOption::ClientId(id)) if !id.is_empty() && id.len() <= 130 => Some(id.clone()),
            _ => None,
        };
        let server_id = match opts.get(OptionCode::ServerId) {
            Some(DhcpOption::ServerId(id)) => Some(id.clone()),
            _ => None,
        };
        // RFC 8415 16: which messages carry which identifiers.
        let to_us = server_id.as_deref() == Some(&self.server_id[..]);
        let valid = match kind {
            Solicit | Confirm | Rebind => client_id.is_some() && server_id.is_none(),
            Request | Renew | Release | Decline => client_id.is_some() && to_us,
            _ => server_id.is_none() || to_us,
        };
        if !valid {
            if server_id.is_some() && !to_us {
                return None; // meant for another server: not ours to answer
            }
            self.counters.malformed += 1;
            return None;
        }
        let ias: Vec<u32> = opts
            .iter()
            .filter_map(|o| match o {
                DhcpOption::IANA(ia) => Some(ia.id),
                _ => None,
            })
            .take(8)
            .collect();
        let mut reply = Message::new_with_id(Reply, msg.xid());
        let out = reply.opts_mut();
        if let Some(id) = &client_id {
            out.insert(DhcpOption::ClientId(id.clone()));
        }
        out.insert(DhcpOption::ServerId(self.server_id.clone()));
        if !self.config.dns.is_empty() {
            out.insert(DhcpOption::DomainNameServers(self.config.dns.clone()));
        }
        let names: Vec<dhcproto::Name> = self
            .config
            .domains
            .iter()
            .filter_map(|d| dhcproto::Name::from_ascii(d).ok())
            .collect();
        if !names.is_empty() {
            out.insert(DhcpOption::DomainSearchList(names));
        }
        let duid = client_id.unwrap_or_default();
        match kind {
            Solicit => {
                let rapid = opts.get(OptionCode::RapidCommit).is_some();
                let state = if rapid {
                    State::Bound
                } else {
                    State::Advertised
                };
                let mut any = false;
                for iaid in ias {
                    let ia = self.bind(now, src, &duid, iaid, state, true);
                    any |= ia.is_some();
                    reply.opts_mut().insert(DhcpOption::IANA(
                        ia.unwrap_or_else(|| self.ia_status(iaid, Status::NoAddrsAvail)),
                    ));
                }
                if rapid && any {
                    reply.opts_mut().insert(DhcpOption::RapidCommit);
                } else {
                    reply.set_msg_type(Advertise);
                }
            }
            Request | Renew | Rebind => {
                for iaid in ias {
                    let held = self.held(now, &duid, iaid);
                    if held.is_some_and(|ip| self.bindings.get(&ip).is_some_and(|b| b.mac != src)) {
                        self.counters.not_lease_owner += 1;
                        reply
                            .opts_mut()
                            .insert(DhcpOption::IANA(self.ia_status(iaid, Status::NoBinding)));
                        continue;
                    }
                    // RENEW and REBIND extend what is held; REQUEST may
                    // bind afresh.
                    let create = kind == Request;
                    let ia = self.bind(now, src, &duid, iaid, State::Bound, create);
                    let status = if create {
                        Status::NoAddrsAvail
                    } else {
                        Status::NoBinding
                    };
                    reply.opts_mut().insert(DhcpOption::IANA(
                        ia.unwrap_or_else(|| self.ia_status(iaid, status)),
                    ));
                }
            }
            Release | Decline => {
                for ip in addresses(opts) {
                    let owned = self
                        .live(now, ip)
                        .is_some_and(|b| b.duid == duid && b.mac == src);
                    if !owned {
                        self.counters.not_lease_owner += 1;
                        continue;
                    }
                    if kind == Release {
                        self.bindings.remove(&ip);
                        self.exhausted_until = None;
                        self.counters.released += 1;
                    } else if let Some(b) = self.bindings.get_mut(&ip) {
                        b.state = State::Declined;
                        b.expires = now + self.config.lease;
                        self.counters.declined += 1;
                    }
                }
                reply.opts_mut().insert(status(Status::Success));
            }
            Confirm => {
                let all_here = addresses(opts).all(|ip| self.prefix.contains(&ip));
                let s = if all_here {
                    Status::Success
                } else {
                    Status::NotOnLink
                };
                reply.opts_mut().insert(status(s));
            }
            _ => {} // INFORMATION-REQUEST: the DNS options alone
        }
        Some(reply)
    }

    /// Binds (or extends) an address for `duid`/`iaid` from station
    /// `mac`: the one it holds, or (when `create`) the lowest free one.
    fn bind(
        &mut self,
        now: Instant,
        mac: Mac,
        duid: &[u8],
        iaid: u32,
        state: State,
        create: bool,
    ) -> Option<IANA> {
        let ip = match self.held(now, duid, iaid) {
            Some(ip) => ip,
            None if create => {
                if self.exhausted_until.is_some_and(|t| now < t) {
                    self.counters.pool_exhausted += 1;
                    return None;
                }
                let Some(ip) = self.free(now) else {
                    self.counters.pool_exhausted += 1;
                    self.exhausted_until = Some(now + EXHAUSTED_HOLD);
                    return None;
                };
                ip
            }
            None => return None,
        };
        let valid = self.config.lease;
        let (hold, state) = match (state, self.bindings.get(&ip).map(|b| b.state)) {
            // An advertisement is held briefly; a bound address stays bound.
            (State::Advertised, Some(State::Bound)) => (valid, State::Bound),
            (State::Advertised, _) => (OFFER_HOLD, State::Advertised),
            (s, _) => (valid, s),
        };
        self.bindings.insert(
            ip,
            Binding {
                duid: duid.to_vec(),
                iaid,
                mac,
                state,
                expires: now + hold,
            },
        );
        let mut addr = DhcpOptions::new();
        addr.insert(DhcpOption::IAAddr(IAAddr {
            addr: ip,
            preferred_life: secs(valid / 2),
            valid_life: secs(valid),
            opts: DhcpOptions::new(),
        }));
        Some(IANA {
            id: iaid,
            t1: secs(valid / 4),
            t2: secs(valid * 2 / 5),
            opts: addr,
        })
    }

    fn ia_status(&self, iaid: u32, s: Status) -> IANA {
        let mut opts = DhcpOptions::new();
        opts.insert(status(s));
        IANA {
            id: iaid,
            t1: 0,
            t2: 0,
            opts,
        }
    }

    /// Forgets expired bindings.
    pub fn on_timer(&mut self, now: Instant) {
        self.bindings.retain(|_, b| b.expires > now);
    }

    pub fn leases(&self, now: Instant) -> Vec<Lease6Row> {
        self.bindings
            .iter()
            .filter(|(_, b)| b.expires > now)
            .map(|(ip, b)| Lease6Row {
                ip: *ip,
                mac: b.mac,
                duid: b.duid.iter().map(|x| format!("{x:02x}")).collect(),
                iaid: b.iaid,
                state: match b.state {
                    State::Advertised => "advertised",
                    State::Bound => "bound",
                    State::Declined => "declined",
                },
                expires_in_secs: b.expires.saturating_since(now).as_secs(),
            })
            .collect()
    }

    pub fn status(&self, now: Instant) -> Dhcp6Status {
        Dhcp6Status {
            first: self.config.first,
            last: self.config.last,
            in_use: self.bindings.values().filter(|b| b.expires > now).count(),
            counters: self.counters.clone(),
        }
    }
}

fn status(s: Status) -> DhcpOption {
    DhcpOption::StatusCode(StatusCode {
        status: s,
        msg: String::new(),
    })
}

/// The addresses a client's IA_NA options name (RELEASE, DECLINE,
/// CONFIRM).
fn addresses(opts: &DhcpOptions) -> impl Iterator<Item = Ipv6Addr> + '_ {
    opts.iter()
        .filter_map(|o| match o {
            DhcpOption::IANA(ia) => Some(ia),
            _ => None,
        })
        .flat_map(|ia| ia.opts.iter())
        .filter_map(|o| match o {
            DhcpOption::IAAddr(a) => Some(a.addr),
            _ => None,
        })
        .take(16)
}

/// The first address a reply hands out, for traces.
pub fn first_address(m: &Message) -> Option<Ipv6Addr> {
    addresses(m.opts()).next()
}

/// Decodes a client message with dhcproto, after checking the option
/// lengths dhcproto 0.15 subtracts from rather than checks (a debug build
/// panics on them; fuzzing found it): Status Code (13) at least 2 bytes,
/// Vendor Class (16) and Vendor-specific Information (17) at least 4,
/// and the same inside every option that holds options, to a bounded
/// depth. `None` for anything it cannot read.
pub fn decode(bytes: &[u8]) -> Option<Message> {
    use dhcproto::Decodable;
    options_fit(bytes.get(4..)?, 0)?;
    Message::from_bytes(bytes).ok()
}

/// Options nested deeper than this are refused (a relay message holds a
/// message, which holds IA options, which hold addresses...).
const MAX_NESTING: usize = 4;

/// Checks a run of options, recursing into those that hold options.
fn options_fit(mut opts: &[u8], depth: usize) -> Option<()> {
    if depth > MAX_NESTING {
        return None;
    }
    while !opts.is_empty() {
        let code = u16::from_be_bytes([*opts.first()?, *opts.get(1)?]);
        let len = usize::from(u16::from_be_bytes([*opts.get(2)?, *opts.get(3)?]));
        let body = opts.get(4..4 + len)?;
        let nested = match code {
            3 | 25 => Some(12), // IA_NA, IA_PD: IAID, T1, T2, options
            4 => Some(4),       // IA_TA: IAID, options
            5 => Some(24),      // IA Address: address, lifetimes, options
            26 => Some(25),     // IA Prefix
            17 => Some(4),      // Vendor-specific: enterprise number, options
            9 => Some(4),       // Relay Message: a message (client's header)
            _ => None,
        };
        let min = match code {
            13 => 2,
            16 | 17 | 4 | 9 => 4,
            _ => 0,
        };
        // Options dhcproto reads at a fixed size whatever their length
        // says: a longer one would leave it reading the rest of the option
        // as further options.
        let exact = match code {
            14 | 20 => Some(0), // Rapid Commit, Reconfigure Accept
            7 | 19 => Some(1),  // Preference, Reconfigure Message
            8 => Some(2),       // Elapsed Time
            12 => Some(16),     // Server Unicast
            _ => None,
        };
        if body.len() < min || exact.is_some_and(|n| body.len() != n) {
            return None;
        }
        if let Some(skip) = nested {
            options_fit(body.get(skip..)?, depth + 1)?;
        }
        opts = &opts[4 + len..];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::Encodable;

    const BOB: Mac = Mac([2, 0, 0, 0, 0, 0xb]);
    const EVE: Mac = Mac([2, 0, 0, 0, 0, 0xe]);
    const DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 0xb];

    fn server(last: &str) -> Dhcp6Server {
        Dhcp6Server::new(
            Dhcp6Config {
                first: "2001:db8:1::100".parse().expect("ip"),
                last: last.parse().expect("ip"),
                lease: Duration::from_secs(3600),
                dns: vec!["2001:db8:100::53".parse().expect("ip")],
                domains: vec!["example.com".into()],
                reserved: vec!["2001:db8:1::101".parse().expect("ip")],
                client_rate: 50,
            },
            Mac([2, 0, 0, 0, 0, 1]),
            "2001:db8:1::1/64".parse().expect("net"),
        )
    }

    fn client(
        kind: MessageType,
        duid: &[u8],
        server: Option<&[u8]>,
        ia: Option<Ipv6Addr>,
    ) -> Message {
        let mut m = Message::new_with_id(kind, [1, 2, 3]);
        m.opts_mut().insert(DhcpOption::ClientId(duid.to_vec()));
        if let Some(s) = server {
            m.opts_mut().insert(DhcpOption::ServerId(s.to_vec()));
        }
        let mut opts = DhcpOptions::new();
        if let Some(a) = ia {
            opts.insert(DhcpOption::IAAddr(IAAddr {
                addr: a,
                preferred_life: 0,
                valid_life: 0,
                opts: DhcpOptions::new(),
            }));
        }
        m.opts_mut().insert(DhcpOption::IANA(IANA {
            id: 7,
            t1: 0,
            t2: 0,
            opts,
        }));
        // Through the wire format and back, as a real message comes.
        decode(&m.to_vec().expect("encodes")).expect("decodes")
    }

    fn address(m: &Message) -> Option<Ipv6Addr> {
        addresses(m.opts()).next()
    }

    fn status_of(m: &Message) -> Option<Status> {
        m.opts().iter().find_map(|o| match o {
            DhcpOption::StatusCode(s) => Some(s.status),
            DhcpOption::IANA(ia) => ia.opts.iter().find_map(|o| match o {
                DhcpOption::StatusCode(s) => Some(s.status),
                _ => None,
            }),
            _ => None,
        })
    }

    #[test]
    fn solicit_request_renew_release() {
        let mut s = server("2001:db8:1::1ff");
        let t = Instant::from_secs(10);
        let adv = s
            .handle(t, BOB, &client(MessageType::Solicit, &DUID, None, None))
            .expect("advertise");
        assert_eq!(adv.msg_type(), MessageType::Advertise);
        let ip = address(&adv).expect("an address");
        assert_eq!(ip, "2001:db8:1::100".parse::<Ipv6Addr>().expect("ip"));
        let sid = s.server_id.clone();
        let rep = s
            .handle(
                t,
                BOB,
                &client(MessageType::Request, &DUID, Some(&sid), Some(ip)),
            )
            .expect("reply");
        assert_eq!(
            (rep.msg_type(), address(&rep)),
            (MessageType::Reply, Some(ip))
        );
        assert!(rep.opts().get(OptionCode::DomainNameServers).is_some());
        // Eve copies bob's DUID: she cannot renew or release his address.
        let renew = client(MessageType::Renew, &DUID, Some(&sid), Some(ip));
        let r = s.handle(t, EVE, &renew).expect("reply");
        assert_eq!(status_of(&r), Some(Status::NoBinding));
        let release = client(MessageType::Release, &DUID, Some(&sid), Some(ip));
        s.handle(t, EVE, &release);
        assert_eq!(s.leases(t).len(), 1);
        // Bob renews (the same address), then releases it.
        let r = s.handle(t, BOB, &renew).expect("reply");
        assert_eq!(address(&r), Some(ip));
        s.handle(t, BOB, &release).expect("reply");
        assert!(s.leases(t).is_empty());
        assert_eq!(s.counters.not_lease_owner, 2);
        // A REQUEST meant for another server is not ours to answer.
        assert!(s
            .handle(
                t,
                BOB,
                &client(MessageType::Request, &DUID, Some(&[9, 9]), None)
            )
            .is_none());
    }

    #[test]
    fn the_pool_skips_reserved_addresses_and_runs_out_politely() {
        let mut s = server("2001:db8:1::102");
        let t = Instant::from_secs(10);
        let mut got = Vec::new();
        for n in 0..3u8 {
            let duid = [0, 3, 0, 1, 2, 0, 0, 0, 1, n];
            let mac = Mac([2, 0, 0, 0, 1, n]);
            let m = s
                .handle(t, mac, &client(MessageType::Solicit, &duid, None, None))
                .expect("answer");
            got.push((address(&m), status_of(&m)));
        }
        assert_eq!(
            got,
            [
                (Some("2001:db8:1::100".parse().expect("ip")), None),
                (Some("2001:db8:1::102".parse().expect("ip")), None),
                (None, Some(Status::NoAddrsAvail)),
            ]
        );
        assert_eq!(s.counters.pool_exhausted, 1);
    }

    #[test]
    fn option_lengths_dhcproto_would_panic_on_are_refused() {
        // A Status Code of one byte, a Vendor Class of two, an Elapsed
        // Time of twelve whose tail reads as a Vendor Class of none (found
        // by the fuzzer), and the short Status Code inside an IA_NA.
        for opts in [
            vec![0, 13, 0, 1, 0],
            vec![0, 16, 0, 2, 0, 0],
            vec![0, 8, 0, 12, 0, 0, 0, 7, 0, 0, 0, 0, 0, 16, 0, 0],
            [&[0u8, 3, 0, 17][..], &[0; 12], &[0, 13, 0, 1, 9]].concat(),
        ] {
            let m = [&[1u8, 0, 0, 1][..], &opts].concat();
            assert!(decode(&m).is_none(), "{opts:?}");
        }
    }

    #[test]
    fn stateless_and_rate_limited() {
        let mut s = server("2001:db8:1::1ff");
        let t = Instant::from_secs(10);
        let mut info = Message::new_with_id(MessageType::InformationRequest, [0, 0, 1]);
        info.opts_mut().insert(DhcpOption::ClientId(DUID.to_vec()));
        let r = s.handle(t, BOB, &info).expect("reply");
        assert!(r.opts().get(OptionCode::DomainNameServers).is_some());
        assert!(address(&r).is_none());
        let answered = (0..1000)
            .filter(|_| s.handle(t, EVE, &info).is_some())
            .count();
        assert_eq!(answered, 200, "a burst of four seconds' budget");
        assert_eq!(s.counters.rate_limited, 800);
    }
}
