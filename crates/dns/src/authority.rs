//! An authoritative server's answers (RFC 1034 4.3.2, RFC 2308, RFC 4592,
//! RFC 6891), as a function of the zones it serves, the query bytes and
//! who asks (a zone's views answer by the resolver's address, or by the
//! client subnet it sends, RFC 7871); and zone transfers (AXFR, RFC 5936)
//! over TCP to allowed addresses.

use crate::{Scope, Zone};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use ipnet::IpNet;
use std::net::IpAddr;

/// How a query came: over UDP answers must fit the client's buffer (512
/// bytes without EDNS); over TCP up to 65,535 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// `response` to `request` as bytes that fit what its sender takes: over
/// TCP up to 65,535 bytes; over UDP 512, or its EDNS buffer up to 1232
/// (RFC 6891). Past that, the header and question alone with TC set (RFC
/// 2181 9), so that it asks again over TCP.
pub(crate) fn encode_for(
    response: Message,
    request: &Message,
    transport: Transport,
) -> Option<Vec<u8>> {
    let limit = match (transport, &request.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, Some(e)) => usize::from(e.max_payload().clamp(512, EDNS_PAYLOAD)),
        (Transport::Udp, None) => 512,
    };
    let bytes = response.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    cut(response)
}

/// The header and question of `response` alone, with TC set: "ask again
/// over TCP".
fn cut(mut response: Message) -> Option<Vec<u8>> {
    response.answers.clear();
    response.authorities.clear();
    response.additionals.clear();
    response.metadata.truncation = true;
    response.to_vec().ok()
}

/// An answer (as bytes) cut to its header and question with TC set: what
/// response rate limiting "slips" to a client instead of the answer, so
/// that a real one asks again over TCP.
pub fn truncated(answer: &[u8]) -> Option<Vec<u8>> {
    cut(Message::from_vec(answer).ok()?)
}

/// How many CNAMEs are followed inside the zones before giving up.
const MAX_CNAMES: usize = 8;
/// The largest UDP answer offered with EDNS (the DNS flag day 2020 size).
const EDNS_PAYLOAD: u16 = 1232;

/// Records of a zone transfer packed into one message, by their size
/// uncompressed (a bigger record goes alone).
const TRANSFER_CHUNK: usize = 16 * 1024;

/// The zones a server serves. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Authority {
    zones: Vec<Zone>,
    /// Who may transfer the zones (nobody if empty).
    allow_transfer: Vec<IpNet>,
}

impl Authority {
    pub fn new(zones: Vec<Zone>) -> Authority {
        Authority {
            zones,
            allow_transfer: Vec::new(),
        }
    }

    /// Lets addresses in `nets` transfer the zones (AXFR).
    pub fn allow_transfer(mut self, nets: Vec<IpNet>) -> Authority {
        self.allow_transfer = nets;
        self
    }

    /// A zone transfer, if `query` (over TCP, from `from`) asks for one:
    /// the zone's SOA, every record, the SOA again, in messages of about
    /// [`TRANSFER_CHUNK`] bytes (RFC 5936 2.2); one REFUSED message for an
    /// address not allowed, NOTAUTH for a zone not served. `None` for any
    /// other query (answer it with [`Authority::answer`]).
    pub fn transfer(&self, query: &[u8], from: IpAddr) -> Option<Vec<Vec<u8>>> {
        let request = Message::from_vec(query).ok()?;
        let [question] = request.queries.as_slice() else {
            return None;
        };
        if request.metadata.message_type != MessageType::Query
            || question.query_type() != RecordType::AXFR
        {
            return None;
        }
        let reply = || {
            let mut m = Message::response(request.metadata.id, request.metadata.op_code);
            m.queries = request.queries.clone();
            m
        };
        let mut refusal = reply();
        if !self.allow_transfer.iter().any(|n| n.contains(&from)) {
            refusal.metadata.response_code = ResponseCode::Refused;
            return Some(refusal.to_vec().ok().into_iter().collect());
        }
        let origin = LowerName::new(question.name());
        let Some(zone) = self.zones.iter().find(|z| *z.origin() == origin) else {
            refusal.metadata.response_code = ResponseCode::NotAuth;
            return Some(refusal.to_vec().ok().into_iter().collect());
        };
        let soa = zone.soa()?.clone();
        let body = zone
            .records()
            .filter(|r| r.record_type() != RecordType::SOA);
        let mut messages = Vec::new();
        let (mut m, mut size) = (reply(), 0);
        m.metadata.authoritative = true;
        for r in std::iter::once(&soa)
            .chain(body)
            .chain(std::iter::once(&soa))
        {
            let len = r.to_bytes().map_or(0, |b| b.len());
            if size > 0 && size + len > TRANSFER_CHUNK {
                messages.extend(m.to_vec().ok());
                (m, size) = (reply(), 0);
                m.metadata.authoritative = true;
            }
            m.answers.push(r.clone());
            size += len;
        }
        messages.extend(m.to_vec().ok());
        Some(messages)
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The zone with the longest origin that contains `name`.
    fn zone_for(&self, name: &LowerName) -> Option<&Zone> {
        self.zones
            .iter()
            .filter(|z| z.origin().zone_of(name))
            .max_by_key(|z| z.origin().num_labels())
    }

    /// The answer to a query as received from `from`; `None` for what
    /// deserves no answer (not a query at all, or too short to have an ID).
    pub fn answer(&self, query: &[u8], transport: Transport, from: IpAddr) -> Option<Vec<u8>> {
        let request = match Message::from_vec(query) {
            Ok(m) => m,
            Err(_) => {
                // Unparseable: FORMERR if there is an ID to answer to.
                let id = u16::from_be_bytes([*query.first()?, *query.get(1)?]);
                if query.get(2).is_some_and(|b| b & 0x80 != 0) {
                    return None; // a response: never answer those
                }
                let m = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
                return m.to_vec().ok();
            }
        };
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        encode_for(self.respond(&request, from), &request, transport)
    }

    /// The response to a parsed query from `from`.
    pub fn respond(&self, request: &Message, from: IpAddr) -> Message {
        let mut m = Message::response(request.metadata.id, request.metadata.op_code);
        m.metadata.recursion_desired = request.metadata.recursion_desired;
        m.queries = request.queries.clone();
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            m.edns = Some(edns);
        }
        if edns_version_unknown(request) {
            m.metadata.response_code = ResponseCode::BADVERS;
            return m;
        }
        if request.metadata.op_code != OpCode::Query {
            m.metadata.response_code = ResponseCode::NotImp;
            return m;
        }
        let [question] = request.queries.as_slice() else {
            m.metadata.response_code = ResponseCode::FormErr;
            return m;
        };
        if matches!(question.query_type(), RecordType::AXFR | RecordType::IXFR) {
            // Transfers only over TCP (RFC 5936 4.2), by `transfer`.
            m.metadata.response_code = ResponseCode::NotImp;
            return m;
        }
        let qname = LowerName::new(question.name());
        let Some(zone) = self.zone_for(&qname) else {
            m.metadata.response_code = ResponseCode::Refused;
            return m;
        };
        let subnet = client_subnet(request);
        let mut asker = Asker::new(from, subnet);
        self.resolve(zone, question, &mut asker, &mut m);
        if let (Some(s), Some(edns)) = (subnet, m.edns.as_mut()) {
            // The subnet as asked, and for whom the answer holds.
            let echo = ClientSubnet::new(s.addr(), s.source_prefix(), asker.scope);
            edns.options_mut().insert(EdnsOption::Subnet(echo));
        }
        m
    }

    /// Fills `m` with what `zone` says about `question` to `asker`,
    /// following CNAMEs into the zones this server has.
    fn resolve<'a>(
        &'a self,
        mut zone: &'a Zone,
        question: &Query,
        asker: &mut Asker,
        m: &mut Message,
    ) {
        let qtype = question.query_type();
        let mut name = LowerName::new(question.name());
        m.metadata.authoritative = true;
        for _ in 0..=MAX_CNAMES {
            if let Some((cut, ns)) = zone.delegation(&name) {
                // A referral: not ours to answer (RFC 1034 4.3.2 3b).
                if !(cut == name && qtype == RecordType::DS) {
                    if m.answers.is_empty() {
                        m.metadata.authoritative = false;
                    }
                    m.authorities.extend(ns.iter().cloned());
                    add_glue(zone, ns, &mut m.additionals);
                    return;
                }
            }
            let found = if qtype == RecordType::ANY {
                // RFC 8482 4.2: one RRset of those at the name, not all
                // of them (an ANY query is an amplifier's favourite).
                let all = zone.all_at(&name);
                let first = all.first().map(|r| r.record_type());
                let one: Vec<Record> = all
                    .into_iter()
                    .filter(|r| Some(r.record_type()) == first)
                    .cloned()
                    .collect();
                (!one.is_empty()).then_some(one)
            } else {
                asker.lookup(zone, &name, qtype).map(<[Record]>::to_vec)
            };
            if let Some(records) = found {
                m.answers.extend(records);
                return;
            }
            if let Some(cname) = asker.lookup(zone, &name, RecordType::CNAME) {
                m.answers.extend(cname.iter().cloned());
                let Some(RData::CNAME(target)) = cname.first().map(|r| &r.data) else {
                    return;
                };
                name = LowerName::new(&target.0);
                match self.zone_for(&name) {
                    Some(z) => zone = z,
                    None => return, // outside our zones: the resolver goes on
                }
                continue;
            }
            if zone.exists(&name) {
                // NODATA (RFC 2308 2.2).
                add_soa(zone, &mut m.authorities);
                return;
            }
            // A wildcard at the closest encloser (RFC 4592 3.3.1).
            let encloser = zone.closest_encloser(&name);
            if let Ok(wild) = Name::from(&encloser).prepend_label("*") {
                let wild = LowerName::new(&wild);
                let owner = Name::from(&name);
                if let Some(records) = zone.rrset(&wild, qtype) {
                    m.answers.extend(records.iter().map(|r| {
                        let mut r = r.clone();
                        r.name = owner.clone();
                        r
                    }));
                    return;
                }
                if let Some(cname) = zone.rrset(&wild, RecordType::CNAME) {
                    m.answers.extend(cname.iter().map(|r| {
                        let mut r = r.clone();
                        r.name = owner.clone();
                        r
                    }));
                    return;
                }
                if zone.exists(&wild) {
                    add_soa(zone, &mut m.authorities);
                    return;
                }
            }
            // NXDOMAIN (RFC 2308 2.1): for the last name in a CNAME chain.
            m.metadata.response_code = ResponseCode::NXDomain;
            add_soa(zone, &mut m.authorities);
            return;
        }
        // A CNAME loop: what was found so far, and SERVFAIL.
        m.metadata.response_code = ResponseCode::ServFail;
    }
}

/// Who asks, for a zone's views: the resolver's address, or the client
/// subnet it sent; and for whom the answer so far holds.
struct Asker {
    addr: Option<IpAddr>,
    /// The prefix length of what the asker told of itself.
    source: u8,
    /// The ECS scope of the answer so far: the longest prefix any record
    /// set in it depends on (0: the same for everyone).
    scope: u8,
}

impl Asker {
    fn new(from: IpAddr, subnet: Option<ClientSubnet>) -> Asker {
        let (addr, source) = match subnet {
            // /0: the resolver asks for the answer everyone gets.
            Some(s) if s.source_prefix() == 0 => (None, 0),
            Some(s) => (Some(s.addr()), s.source_prefix()),
            None => (Some(from), if from.is_ipv4() { 32 } else { 128 }),
        };
        Asker {
            addr,
            source,
            scope: 0,
        }
    }

    /// The records `zone` has at `name` of type `ty` for this asker.
    fn lookup<'z>(
        &mut self,
        zone: &'z Zone,
        name: &LowerName,
        ty: RecordType,
    ) -> Option<&'z [Record]> {
        let (records, scope) = zone.rrset_for(name, ty, self.addr)?;
        let len = match scope {
            Scope::Everyone => 0,
            Scope::View(len) => len,
            Scope::NoView => self.source,
        };
        self.scope = self.scope.max(len);
        Some(records)
    }
}

/// The EDNS Client Subnet option of a query (RFC 7871), its address cut
/// to its source prefix (the bits past it must be zero, 6).
fn client_subnet(request: &Message) -> Option<ClientSubnet> {
    let edns = request.edns.as_ref()?;
    let Some(EdnsOption::Subnet(s)) = edns.options().get(EdnsCode::Subnet) else {
        return None;
    };
    let net = IpNet::new(s.addr(), s.source_prefix()).ok()?;
    Some(ClientSubnet::new(net.network(), s.source_prefix(), 0))
}

/// A query with an EDNS version this server does not speak (only 0
/// exists): answered BADVERS with our version, 0 (RFC 6891 6.1.3).
pub(crate) fn edns_version_unknown(request: &Message) -> bool {
    request.edns.as_ref().is_some_and(|e| e.version() > 0)
}

/// The SOA for a negative answer, its TTL the negative-caching one.
fn add_soa(zone: &Zone, authorities: &mut Vec<Record>) {
    if let Some(soa) = zone.soa() {
        let mut soa = soa.clone();
        soa.ttl = zone.negative_ttl();
        authorities.push(soa);
    }
}

/// A and AAAA records of the delegated name servers that are inside the
/// zone (glue, RFC 1034 4.2.1).
fn add_glue(zone: &Zone, ns: &[Record], additionals: &mut Vec<Record>) {
    for r in ns {
        let RData::NS(target) = &r.data else { continue };
        let target = LowerName::new(&target.0);
        if !zone.origin().zone_of(&target) {
            continue;
        }
        for ty in [RecordType::A, RecordType::AAAA] {
            if let Some(glue) = zone.rrset(&target, ty) {
                additionals.extend(glue.iter().cloned());
            }
        }
    }
}
