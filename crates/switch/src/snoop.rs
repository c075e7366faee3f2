//! Multicast snooping (RFC 4541): which ports want which IP multicast
//! groups, learned from the IGMP (v1-v3, RFC 3376) and MLD (v1, v2,
//! RFC 3810) messages hosts send, and a querier that keeps those
//! memberships fresh where no router queries.
//!
//! Only a port marked `snooped` (a host's) is constrained. In IPv4, where
//! IGMP is optional, only once its host has reported lately: until then
//! it gets every group. In IPv6 every node must report the groups it
//! joins (RFC 4541 3, RFC 3810 6), so a port gets only the groups it
//! reported from the first: a booting host's report goes out before its
//! duplicate address detection, and hosts that come up together do not
//! hear each other's solicitations. Still, a host whose reports were lost
//! keeps getting every group, and so does one that sends IPv6 multicast
//! but no report for [`SnoopConfig::response_interval`]. Every other port
//! (a router's, a service host's, a tunnel) is a router port and gets
//! every multicast frame, as does a port an outside querier was heard on.
//!
//! What every host must hear still floods: broadcast, non-IP multicast,
//! IPv4's 224.0.0.0/24 (RFC 4541 2.1.2), IPv6's all-nodes group ff02::1
//! and the reserved scopes ff00::/15, and queries. Reports and leaves go to
//! router ports only (2.1.1), so a host never hears another's. Data for a
//! group goes to its members and the router ports; while the table has
//! lately refused a join (it is bounded), a group nobody is known to want
//! floods instead, as Linux's bridge stops snooping when its table is full,
//! so that no host is cut off.

use crate::PortNo;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use wire::ip::{Family, IpView, PROTO_ICMPV6};
use wire::{checksum, Instant, Mac};

/// IGMP's IP protocol number.
const PROTO_IGMP: u8 = 2;

const IGMP_QUERY: u8 = 0x11;
const IGMP_V1_REPORT: u8 = 0x12;
const IGMP_V2_REPORT: u8 = 0x16;
const IGMP_LEAVE: u8 = 0x17;
const IGMP_V3_REPORT: u8 = 0x22;
const MLD_QUERY: u8 = 130;
const MLD_V1_REPORT: u8 = 131;
const MLD_DONE: u8 = 132;
const MLD_V2_REPORT: u8 = 143;

/// Group record types of IGMPv3 and MLDv2 reports that say "no sources
/// wanted": with no sources listed, a leave.
const MODE_IS_INCLUDE: u8 = 1;
const CHANGE_TO_INCLUDE: u8 = 3;
/// Source-specific records this snooping does not follow (it keeps
/// groups, not sources, as RFC 4541 allows).
const BLOCK_OLD_SOURCES: u8 = 6;

/// Snooping settings.
#[derive(Debug, Clone)]
pub struct SnoopConfig {
    pub enabled: bool,
    /// Groups the switch keeps at most, all VLANs together.
    pub max_groups: usize,
    /// Groups one port may join at most.
    pub max_groups_per_port: usize,
    /// How often the querier asks (RFC 3376's Query Interval, 125 s).
    pub query_interval: Duration,
    /// How long hosts may take to answer (Query Response Interval, 10 s).
    pub response_interval: Duration,
    /// Robustness Variable: reports a membership survives losing, less one.
    pub robustness: u8,
    /// The querier's source MAC; its IPv6 link-local address is made from
    /// it (IGMP queries come from 0.0.0.0, as a bridge without an address
    /// sends them).
    pub querier_mac: Mac,
}

impl Default for SnoopConfig {
    fn default() -> Self {
        SnoopConfig {
            enabled: true,
            max_groups: 16_384,
            max_groups_per_port: 256,
            query_interval: Duration::from_secs(125),
            response_interval: Duration::from_secs(10),
            robustness: 2,
            querier_mac: Mac::local_from("scratchnet switch"),
        }
    }
}

impl SnoopConfig {
    /// How long a membership lives without a report (Group Membership
    /// Interval), and an outside querier without a query (Other Querier
    /// Present Interval, near enough).
    fn membership_interval(&self) -> Duration {
        self.query_interval * u32::from(self.robustness) + self.response_interval
    }
}

/// What snooping counts.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SnoopCounters {
    /// Membership reports and leaves learned from.
    pub reports: u64,
    pub leaves: u64,
    /// Queries heard from an outside querier, and sent by this switch.
    pub queries_heard: u64,
    pub queries_sent: u64,
    /// IGMP and MLD messages not learned from: a bad checksum or a
    /// message cut short.
    pub malformed: u64,
    /// Joins refused because the table, or the port's share, was full.
    pub groups_refused: u64,
    /// Multicast frames sent to fewer ports than a flood would reach.
    pub constrained: u64,
}

/// A group's members on one VLAN, as `scratchnet status` shows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupEntry {
    pub vlan: u16,
    pub group: IpAddr,
    pub ports: Vec<PortNo>,
}

/// Where a multicast frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Every port of the VLAN.
    Flood,
    /// Router ports only: a report or a leave.
    Routers,
    /// The group's members and the router ports.
    Group(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Member {
    port: PortNo,
    until: Instant,
}

/// A port's reports: when it last reported in each family, and when it
/// first sent IPv6 multicast.
#[derive(Debug, Clone, Copy, Default)]
struct Heard {
    v4: Option<Instant>,
    v6: Option<Instant>,
    v6_since: Option<Instant>,
}

#[derive(Debug, Clone)]
pub(crate) struct Snooper {
    config: SnoopConfig,
    /// Each group's members, sorted by port.
    groups: HashMap<(u16, IpAddr), Vec<Member>>,
    joined: HashMap<PortNo, usize>,
    /// By port number.
    heard: Vec<Heard>,
    /// Ports an outside querier was heard on, by VLAN, and until when.
    queriers: HashMap<(u16, PortNo), Instant>,
    /// Until when a group nobody is known to want floods (a join was
    /// refused).
    full_until: Option<Instant>,
    /// The querier's next round, and how many startup rounds are left.
    next_query: Instant,
    startup: u8,
    last_sweep: Instant,
    /// The earliest a membership or a querier may expire (none: nothing
    /// to sweep); a sweep before it would find nothing.
    expiry: Option<Instant>,
    counters: SnoopCounters,
}

impl Snooper {
    pub(crate) fn new(config: SnoopConfig) -> Snooper {
        Snooper {
            // The first query and Robustness - 1 more, a quarter of the
            // interval apart (RFC 3376 8.6-8.7).
            startup: config.robustness.saturating_sub(1),
            config,
            groups: HashMap::new(),
            joined: HashMap::new(),
            heard: Vec::new(),
            queriers: HashMap::new(),
            full_until: None,
            next_query: Instant::ZERO,
            last_sweep: Instant::ZERO,
            expiry: None,
            counters: SnoopCounters::default(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub(crate) fn counters(&self) -> &SnoopCounters {
        &self.counters
    }

    pub(crate) fn count_constrained(&mut self) {
        self.counters.constrained += 1;
    }

    /// Where the IP multicast frame whose IP header is at `l3` goes, after
    /// learning from it if it is a report, a leave or a query that came in
    /// on `port` (`snooped`: a host's port) in `vlan`.
    pub(crate) fn inspect(
        &mut self,
        now: Instant,
        vlan: u16,
        port: PortNo,
        snooped: bool,
        frame: &[u8],
        l3: usize,
    ) -> Reach {
        let Ok(v) = IpView::parse(frame, l3) else {
            return Reach::Flood;
        };
        if snooped && v.family == Family::V6 {
            self.heard_mut(port).v6_since.get_or_insert(now);
        }
        let message = frame.get(v.l4..v.end).unwrap_or_default();
        let read = match (v.family, v.proto) {
            (Family::V4, PROTO_IGMP) => read_igmp(message),
            (Family::V6, PROTO_ICMPV6) => read_mld(&v, message),
            _ => None,
        };
        if let Some(read) = read {
            return self.learn(now, vlan, port, snooped, v.family, read);
        }
        if always_flooded(v.dst) {
            return Reach::Flood;
        }
        let degraded = self.full_until.is_some_and(|t| now < t);
        if degraded && !self.has_members(now, vlan, v.dst) {
            return Reach::Flood;
        }
        Reach::Group(v.dst)
    }

    /// Learns from an IGMP or MLD message that came in on `port`; where
    /// it goes.
    fn learn(
        &mut self,
        now: Instant,
        vlan: u16,
        port: PortNo,
        snooped: bool,
        family: Family,
        read: Read<'_>,
    ) -> Reach {
        let Some(message) = read.message else {
            self.counters.malformed += 1;
            return if read.query {
                Reach::Flood
            } else {
                Reach::Routers
            };
        };
        match message {
            Message::Query => {
                self.heard_querier(now, vlan, port);
                return Reach::Flood;
            }
            _ if !snooped => {}
            Message::Join(group) => {
                self.report(now, port, family);
                self.join(now, vlan, group, port);
            }
            Message::Leave(group) => {
                self.counters.leaves += 1;
                self.leave(vlan, group, port);
            }
            Message::Records { count, records } => {
                self.records(now, vlan, port, family, records, count)
            }
        }
        Reach::Routers
    }

    /// Learns from the group records of an IGMPv3 or MLDv2 report.
    fn records(
        &mut self,
        now: Instant,
        vlan: u16,
        port: PortNo,
        family: Family,
        mut rest: &[u8],
        count: usize,
    ) {
        let addr_len = match family {
            Family::V4 => 4,
            Family::V6 => 16,
        };
        self.report(now, port, family);
        for _ in 0..count {
            let Some(head) = rest.get(..4 + addr_len) else {
                self.counters.malformed += 1;
                return;
            };
            let (kind, aux, sources) = (
                head[0],
                usize::from(head[1]) * 4,
                usize::from(u16::from_be_bytes([head[2], head[3]])),
            );
            let group = match family {
                Family::V4 => IpAddr::V4(Ipv4Addr::new(head[4], head[5], head[6], head[7])),
                Family::V6 => IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(&head[4..20]).unwrap_or_default(),
                )),
            };
            let len = 4 + addr_len + sources * addr_len + aux;
            if rest.len() < len {
                self.counters.malformed += 1;
                return;
            }
            rest = &rest[len..];
            match kind {
                MODE_IS_INCLUDE | CHANGE_TO_INCLUDE if sources == 0 => {
                    self.counters.leaves += 1;
                    self.leave(vlan, group, port);
                }
                BLOCK_OLD_SOURCES => {}
                _ => self.join(now, vlan, group, port),
            }
        }
    }

    fn report(&mut self, now: Instant, port: PortNo, family: Family) {
        self.counters.reports += 1;
        let heard = self.heard_mut(port);
        match family {
            Family::V4 => heard.v4 = Some(now),
            Family::V6 => heard.v6 = Some(now),
        }
    }

    fn heard_mut(&mut self, port: PortNo) -> &mut Heard {
        let i = port.0 as usize;
        if self.heard.len() <= i {
            self.heard.resize(i + 1, Heard::default());
        }
        &mut self.heard[i]
    }

    fn heard_querier(&mut self, now: Instant, vlan: u16, port: PortNo) {
        self.counters.queries_heard += 1;
        let until = now + self.config.membership_interval();
        self.queriers.insert((vlan, port), until);
        self.expires(until);
    }

    fn join(&mut self, now: Instant, vlan: u16, group: IpAddr, port: PortNo) {
        if !group.is_multicast() || always_flooded(group) {
            return;
        }
        let until = now + self.config.membership_interval();
        let groups = self.groups.len();
        let joined = self.joined.get(&port).copied().unwrap_or(0);
        let members = self.groups.get_mut(&(vlan, group));
        let at = members
            .as_deref()
            .map(|ms| ms.binary_search_by_key(&port, |m| m.port));
        if let (Some(ms), Some(Ok(i))) = (members, at) {
            ms[i].until = until;
            return;
        }
        let room = joined < self.config.max_groups_per_port
            && (at.is_some() || groups < self.config.max_groups);
        if !room {
            self.counters.groups_refused += 1;
            self.full_until = Some(until);
            return;
        }
        // Kept sorted by port, for `Audience::wants`.
        let i = match at {
            Some(Err(i)) => i,
            _ => 0,
        };
        self.groups
            .entry((vlan, group))
            .or_default()
            .insert(i, Member { port, until });
        self.expires(until);
        *self.joined.entry(port).or_default() += 1;
    }

    /// Something now expires at `until`.
    fn expires(&mut self, until: Instant) {
        self.expiry = Some(self.expiry.map_or(until, |e| e.min(until)));
    }

    fn leave(&mut self, vlan: u16, group: IpAddr, port: PortNo) {
        let Some(members) = self.groups.get_mut(&(vlan, group)) else {
            return;
        };
        let before = members.len();
        members.retain(|m| m.port != port);
        if members.len() < before {
            if let Some(n) = self.joined.get_mut(&port) {
                *n = n.saturating_sub(1);
            }
        }
        if members.is_empty() {
            self.groups.remove(&(vlan, group));
        }
    }

    fn has_members(&self, now: Instant, vlan: u16, group: IpAddr) -> bool {
        self.groups
            .get(&(vlan, group))
            .is_some_and(|ms| ms.iter().any(|m| now < m.until))
    }

    /// Who gets a frame that reaches `reach` in `vlan`: worked out once a
    /// frame, then asked of each port ([`Audience::wants`]).
    pub(crate) fn audience(&self, now: Instant, vlan: u16, reach: Reach) -> Audience<'_> {
        let members = match reach {
            Reach::Group(group) => self
                .groups
                .get(&(vlan, group))
                .map_or(&[][..], Vec::as_slice),
            Reach::Flood | Reach::Routers => &[],
        };
        Audience {
            snooper: self,
            now,
            vlan,
            reach,
            members,
        }
    }

    /// The live groups, sorted by VLAN and group.
    pub(crate) fn groups(&self, now: Instant) -> Vec<GroupEntry> {
        let mut rows: Vec<GroupEntry> = self
            .groups
            .iter()
            .filter_map(|(&(vlan, group), ms)| {
                let mut ports: Vec<PortNo> = ms
                    .iter()
                    .filter(|m| now < m.until)
                    .map(|m| m.port)
                    .collect();
                ports.sort();
                (!ports.is_empty()).then_some(GroupEntry { vlan, group, ports })
            })
            .collect();
        rows.sort_by_key(|r| (r.vlan, r.group));
        rows
    }

    /// When the snooper next wants [`Snooper::on_timer`]: its next query
    /// (when `querying`: the switch has snooped ports) or the sweep of
    /// a non-empty table.
    pub(crate) fn poll_at(&self, querying: bool) -> Option<Instant> {
        if !self.config.enabled {
            return None;
        }
        let sweep = self
            .expiry
            .map(|at| at.max(self.last_sweep + SWEEP_INTERVAL));
        let query = querying.then_some(self.next_query);
        sweep.into_iter().chain(query).min()
    }

    /// Forgets memberships and queriers past their time; returns whether a
    /// query round is due, and schedules the next.
    pub(crate) fn on_timer(&mut self, now: Instant, querying: bool) -> bool {
        if !self.config.enabled {
            return false;
        }
        let due = self.expiry.is_some_and(|at| now >= at);
        if due && now >= self.last_sweep + SWEEP_INTERVAL {
            self.last_sweep = now;
            let joined = &mut self.joined;
            let mut expiry: Option<Instant> = None;
            let mut keep = |until: Instant| {
                let live = now < until;
                if live {
                    expiry = Some(expiry.map_or(until, |e| e.min(until)));
                }
                live
            };
            self.groups.retain(|_, ms| {
                ms.retain(|m| {
                    let live = keep(m.until);
                    if !live {
                        if let Some(n) = joined.get_mut(&m.port) {
                            *n = n.saturating_sub(1);
                        }
                    }
                    live
                });
                !ms.is_empty()
            });
            self.queriers.retain(|_, until| keep(*until));
            self.expiry = expiry;
        }
        if !querying || now < self.next_query {
            return false;
        }
        let interval = if self.startup > 0 {
            self.startup -= 1;
            self.config.query_interval / 4
        } else {
            self.config.query_interval
        };
        self.next_query = now + interval;
        true
    }

    /// Whether an outside querier speaks for `vlan`, so this switch keeps
    /// quiet there.
    pub(crate) fn outside_querier(&self, now: Instant, vlan: u16) -> bool {
        self.queriers
            .iter()
            .any(|(&(v, _), &until)| v == vlan && now < until)
    }

    /// The general queries for one VLAN, IGMPv3 then MLDv2, as untagged
    /// Ethernet frames.
    pub(crate) fn queries(&mut self) -> [Vec<u8>; 2] {
        self.counters.queries_sent += 2;
        [igmp_query(&self.config), mld_query(&self.config)]
    }
}

/// An IGMP or MLD message snooping acts on.
#[derive(Debug, Clone, Copy)]
enum Message<'a> {
    Query,
    /// A version 1 or 2 report.
    Join(IpAddr),
    /// An IGMPv2 leave or an MLDv1 done.
    Leave(IpAddr),
    /// An IGMPv3 or MLDv2 report: its group records.
    Records {
        count: usize,
        records: &'a [u8],
    },
}

/// A message of a type snooping knows: whether it is a query (which
/// floods even when malformed), and what it says (`None`: a bad checksum
/// or cut short).
#[derive(Debug, Clone, Copy)]
struct Read<'a> {
    query: bool,
    message: Option<Message<'a>>,
}

/// Reads the IGMP message `m`; `None` if it is not one snooping knows.
fn read_igmp(m: &[u8]) -> Option<Read<'_>> {
    let ty = *m.first()?;
    if !matches!(
        ty,
        IGMP_QUERY | IGMP_V1_REPORT | IGMP_V2_REPORT | IGMP_LEAVE | IGMP_V3_REPORT
    ) {
        return None;
    }
    let sound = m.len() >= 8 && checksum::fold(checksum::sum(0, m)) == 0xffff;
    let group = m
        .get(4..8)
        .map(|g| IpAddr::V4(Ipv4Addr::new(g[0], g[1], g[2], g[3])));
    Some(read(ty == IGMP_QUERY, sound, m, group, |ty| match ty {
        IGMP_V1_REPORT | IGMP_V2_REPORT => Some(false),
        IGMP_LEAVE => Some(true),
        _ => None,
    }))
}

/// Reads the ICMPv6 message `m` of the packet `v` reads, if it is an MLD
/// message.
fn read_mld<'a>(v: &IpView, m: &'a [u8]) -> Option<Read<'a>> {
    let ty = *m.first()?;
    if !matches!(ty, MLD_QUERY | MLD_V1_REPORT | MLD_DONE | MLD_V2_REPORT) {
        return None;
    }
    let pseudo = checksum::pseudo_header(
        &wire::ip::octets(v.src),
        &wire::ip::octets(v.dst),
        PROTO_ICMPV6,
        m.len() as u32,
    );
    let sound = m.len() >= 8 && checksum::fold(checksum::sum(pseudo, m)) == 0xffff;
    let group = m
        .get(8..24)
        .and_then(|g| <[u8; 16]>::try_from(g).ok())
        .map(|g| IpAddr::V6(Ipv6Addr::from(g)));
    Some(read(ty == MLD_QUERY, sound, m, group, |ty| match ty {
        MLD_V1_REPORT => Some(false),
        MLD_DONE => Some(true),
        _ => None,
    }))
}

/// What a message of a known type says: a query, a one-group join or
/// leave (`single` tells which, by type), or records after the 8-byte
/// header; nothing if it is not `sound`.
fn read<'a>(
    query: bool,
    sound: bool,
    m: &'a [u8],
    group: Option<IpAddr>,
    single: impl Fn(u8) -> Option<bool>,
) -> Read<'a> {
    let message = match (sound, query, single(m[0])) {
        (false, ..) => None,
        (true, true, _) => Some(Message::Query),
        (true, false, Some(false)) => group.map(Message::Join),
        (true, false, Some(true)) => group.map(Message::Leave),
        (true, false, None) => Some(Message::Records {
            count: usize::from(u16::from_be_bytes([m[6], m[7]])),
            records: &m[8..],
        }),
    };
    Read { query, message }
}

/// The ports a multicast frame reaches, as [`Snooper::audience`] found.
pub(crate) struct Audience<'a> {
    snooper: &'a Snooper,
    now: Instant,
    vlan: u16,
    reach: Reach,
    /// The group's members, sorted by port.
    members: &'a [Member],
}

impl Audience<'_> {
    /// Whether `port` (`snooped`: a host's) gets the frame.
    pub(crate) fn wants(&self, port: PortNo, snooped: bool) -> bool {
        let s = self.snooper;
        if !snooped || self.reach == Reach::Flood {
            return true;
        }
        if !s.queriers.is_empty()
            && s.queriers
                .get(&(self.vlan, port))
                .is_some_and(|&until| self.now < until)
        {
            return true;
        }
        let Reach::Group(group) = self.reach else {
            return false;
        };
        // A host that has not reported in the group's family lately is
        // not known to speak IGMP or MLD: it gets everything. In IPv6 a
        // host is taken at its word until it proves silent (module note).
        let interval = s.config.membership_interval();
        let live = |t: Option<Instant>| t.is_some_and(|t| self.now.saturating_since(t) < interval);
        let heard = s.heard.get(port.0 as usize).copied().unwrap_or_default();
        let reporting = match group {
            IpAddr::V4(_) => live(heard.v4),
            IpAddr::V6(_) => match (heard.v6, heard.v6_since) {
                (Some(_), _) => live(heard.v6),
                (None, Some(since)) => {
                    self.now.saturating_since(since) < s.config.response_interval
                }
                (None, None) => true,
            },
        };
        !reporting
            || self
                .members
                .binary_search_by_key(&port, |m| m.port)
                .is_ok_and(|i| self.now < self.members[i].until)
    }
}

/// How often expired memberships are swept; lookups ignore them anyway.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Groups that reach every host whatever snooping learned: IPv4's local
/// network control block 224.0.0.0/24 (RFC 4541 2.1.2), IPv6's all-nodes
/// ff02::1 (hosts never report it) and the reserved and interface-local
/// scopes ff00::/15.
fn always_flooded(group: IpAddr) -> bool {
    match group {
        IpAddr::V4(g) => g.octets()[..3] == [224, 0, 0],
        IpAddr::V6(g) => {
            let o = g.octets();
            g == Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1) || (o[0] == 0xff && o[1] & 0xfe == 0)
        }
    }
}

/// RFC 3376 4.1.1 / RFC 3810 5.1.3's floating-point code for `value`
/// with `mant` mantissa bits: exact below the first exponent, rounded down
/// above, saturated at the largest code.
fn float_code(value: u32, mant: u32) -> u32 {
    let top = 1 << (mant + 3);
    if value < top {
        return value;
    }
    for exp in 0..8 {
        let m = value >> (exp + 3);
        if m < 2 << mant {
            return top | (exp << mant) | (m & ((1 << mant) - 1));
        }
    }
    (top << 1) - 1
}

/// An IGMPv3 general query from 0.0.0.0 to 224.0.0.1, TTL 1 with a
/// Router Alert option.
fn igmp_query(config: &SnoopConfig) -> Vec<u8> {
    let resp = float_code((config.response_interval.as_millis() / 100) as u32, 4);
    let qqic = float_code(config.query_interval.as_secs() as u32, 4);
    let mut igmp = vec![
        IGMP_QUERY,
        resp as u8,
        0,
        0,
        0,
        0,
        0,
        0,
        config.robustness.min(7),
        qqic as u8,
        0,
        0,
    ];
    let sum = checksum::finish(checksum::sum(0, &igmp));
    igmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut ip = vec![0x46, 0xc0, 0, 0, 0, 0, 0, 0, 1, PROTO_IGMP, 0, 0];
    ip.extend_from_slice(&[0, 0, 0, 0, 224, 0, 0, 1, 0x94, 4, 0, 0]);
    let total = (ip.len() + igmp.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let sum = checksum::finish(checksum::sum(0, &ip));
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(&igmp);
    wire::ether::build_frame(
        Mac([0x01, 0x00, 0x5e, 0, 0, 1]),
        config.querier_mac,
        wire::ether::ETHERTYPE_IPV4,
        &ip,
    )
}

/// An MLDv2 general query from the querier's link-local address to
/// ff02::1, hop limit 1 behind a Router Alert option (RFC 3810 5).
fn mld_query(config: &SnoopConfig) -> Vec<u8> {
    let src = config
        .querier_mac
        .eui64_in(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0));
    let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let resp = float_code(config.response_interval.as_millis() as u32, 12) as u16;
    let qqic = float_code(config.query_interval.as_secs() as u32, 4);
    let mut mld = vec![MLD_QUERY, 0, 0, 0];
    mld.extend_from_slice(&resp.to_be_bytes());
    mld.extend_from_slice(&[0; 2 + 16]);
    mld.extend_from_slice(&[config.robustness.min(7), qqic as u8, 0, 0]);
    let pseudo =
        checksum::pseudo_header(&src.octets(), &dst.octets(), PROTO_ICMPV6, mld.len() as u32);
    let sum = checksum::finish(checksum::sum(pseudo, &mld));
    mld[2..4].copy_from_slice(&sum.to_be_bytes());
    let hop_by_hop = [PROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0];
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&((hop_by_hop.len() + mld.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&hop_by_hop);
    ip.extend_from_slice(&mld);
    wire::ether::build_frame(
        Mac([0x33, 0x33, 0, 0, 0, 1]),
        config.querier_mac,
        wire::ether::ETHERTYPE_IPV6,
        &ip,
    )
}
