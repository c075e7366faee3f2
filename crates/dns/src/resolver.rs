//! A caching recursive resolver, sans-IO: client questions and upstream
//! answers in, upstream questions and client answers out, `now` passed in.
//!
//! Each client question is a task that walks down from the closest zone
//! cut it knows (the root hints at first): it asks one of the zone's
//! servers, follows referrals (NS and glue accepted only inside the zone
//! of the server that gave them: the bailiwick rule), follows CNAMEs (at
//! most [`MAX_CNAMES`]), tries the next server on a timeout or a bad
//! answer, and answers SERVFAIL when none is left. Answers and negative
//! answers (RFC 2308, for the SOA's minimum) are cached by TTL, and TTLs
//! count down in what clients get. Reverse lookups for private and
//! special ranges are answered NXDOMAIN at once (RFC 6303). Upstream
//! answers are matched against the question asked, its ID and the server
//! asked; anything else is ignored. Clients outside the allowed networks
//! are REFUSED, and each client address has a query budget. A question
//! already being resolved is not asked upstream again: the client waits
//! on it (at most [`MAX_WAITERS`]), so one name has one upstream query
//! out at a time and a forger gets one chance per round trip.
//!
//! With `prefetch`, a cached answer asked for in the last tenth of its
//! TTL is resolved again in the background (as Unbound does), so that
//! popular names do not expire under their askers.
//!
//! With `serve_stale`, a question that cannot be resolved (no server
//! answers) gets what the cache held for it until up to a day ago, with a
//! TTL of 30 s, rather than SERVFAIL (RFC 8767).
//!
//! Each upstream question goes out with its letters in random case
//! (0x20 randomisation, draft-vixie-dnsext-dns0x20), and the answer must
//! repeat them exactly: a forger must guess those bits as well as the ID
//! and the port.
//!
//! Of a zone's servers, the one with the lowest smoothed round-trip time
//! is asked first (as BIND does: a server not yet heard from gets a small
//! random one, so each is tried; a timeout doubles a server's; servers
//! passed over drift back down so a slow one is tried again later).
//!
//! With `dns64`, a question for AAAA records that has none is answered
//! with AAAA records made from the name's A records in the NAT64 prefix
//! (RFC 6147, with the RFC 6052 embedding of a /96), so that an IPv6-only
//! host reaches IPv4-only servers by name through a NAT64.
//!
//! Queries are minimised (RFC 9156): a zone's servers are asked for one
//! label more than the zone (`com.` to the root, `example.com.` to com),
//! with QTYPE A, until the full name is reached; only its last server
//! hears the whole question. NXDOMAIN for a minimised name ends the
//! question (RFC 8020: nothing exists below it); an answer that is no
//! referral means no zone cut there, and one more label is added.

use crate::authority::{edns_version_unknown, encode_for, Transport};
use crate::cache::{Cache, Cached};
use crate::step::Step;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use ipnet::IpNet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// CNAMEs followed for one question at most.
pub const MAX_CNAMES: usize = 8;
/// Upstream queries one question may cost at most.
pub const MAX_QUERIES: usize = 24;
/// Upstream queries one client question may cost at most, its glueless
/// name-server lookups' included (Unbound's `max-sent-count`): a
/// referral to many name servers without glue (NXNS) cannot make one
/// question into hundreds.
pub const MAX_SENT: usize = 32;
/// Clients waiting on one question in progress at most; past it, SERVFAIL.
pub const MAX_WAITERS: usize = 64;
/// Servers whose round-trip time is remembered at most.
const RTT_SERVERS: usize = 4096;
/// How long past its TTL an answer may still be served stale, and the TTL
/// it is served with (RFC 8767's suggestions).
pub const STALE_MAX: std::time::Duration = std::time::Duration::from_secs(86_400);
const STALE_TTL: u32 = 30;

/// A server's smoothed RTT is at most this.
const RTT_CAP: std::time::Duration = std::time::Duration::from_secs(10);

/// Name server address lookups nested in one another at most.
pub const MAX_NESTING: u8 = 3;
/// Labels added one at a time inside one zone before the rest of a
/// long name is asked whole (RFC 9156's MINIMISE_ONE_LAB).
pub const MINIMISE_ONE_LAB: u8 = 4;

/// How a resolver is set up.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    pub root_hints: Vec<IpAddr>,
    /// Networks whose clients are served (all if empty); others REFUSED.
    pub allow: Vec<IpNet>,
    /// Questions per second one client address may ask (bursts of 4
    /// times that); past it, REFUSED.
    pub client_rate: u32,
    /// Cache entries at most.
    pub cache_size: usize,
    /// Bytes the cache holds at most (about: names and data).
    pub cache_bytes: usize,
    /// How long an upstream server has to answer before the next is
    /// asked (the service's timer; also a timed-out server's least RTT).
    pub upstream_timeout: std::time::Duration,
    /// Client questions in progress at most.
    pub max_tasks: usize,
    /// Random case in upstream questions, checked in answers (0x20).
    pub case_randomisation: bool,
    /// Expired answers (up to [`STALE_MAX`] past) rather than SERVFAIL.
    pub serve_stale: bool,
    /// Answers asked for in the last tenth of their TTL resolved again.
    pub prefetch: bool,
    /// Whether servers are asked over IPv4 and over IPv6 (Unbound's
    /// `do-ip4` and `do-ip6`): a host asks over the families it has
    /// addresses in. With both, a zone's servers of either family are
    /// chosen among by round-trip time, and one that times out is passed
    /// over for the next, of whichever family.
    pub do_ip4: bool,
    pub do_ip6: bool,
    /// DNS64 (RFC 6147): AAAA records made in this /96 for names that
    /// have only A records.
    pub dns64: Option<ipnet::Ipv6Net>,
}

impl ResolverConfig {
    pub fn new(root_hints: Vec<IpAddr>) -> ResolverConfig {
        ResolverConfig {
            root_hints,
            allow: Vec::new(),
            client_rate: 1000,
            cache_size: 50_000,
            cache_bytes: 16 << 20,
            upstream_timeout: std::time::Duration::from_millis(800),
            max_tasks: 1024,
            case_randomisation: true,
            serve_stale: false,
            prefetch: false,
            do_ip4: true,
            do_ip6: true,
            dns64: None,
        }
    }
}

/// Who asked: the service layer's handle for a client.
pub type ClientId = u64;

/// What the resolver wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `message` to `server` (port 53) from `source_port` (random,
    /// like the ID: an off-path forger must guess both); call
    /// [`Resolver::upstream_answer`] with `token` and each datagram that
    /// comes back while [`Resolver::is_waiting`], or
    /// [`Resolver::upstream_timeout`] if nothing does in time.
    Query {
        token: u64,
        server: IpAddr,
        source_port: u16,
        message: Vec<u8>,
        /// Over TCP (length-framed) rather than UDP: the UDP answer was
        /// truncated.
        tcp: bool,
    },
    /// Send `message` to the client.
    Answer { client: ClientId, message: Vec<u8> },
    /// Nothing will be sent to `client` (what it sent was no question):
    /// forget it.
    Forget { client: ClientId },
    /// A step of a resolution traced for `clients` (see
    /// [`Resolver::traced_query`]).
    Step { clients: Vec<ClientId>, step: Step },
}

/// What the resolver counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResolverCounters {
    pub questions: u64,
    pub cache_hits: u64,
    pub upstream_queries: u64,
    pub upstream_timeouts: u64,
    /// Truncated UDP answers asked again over TCP.
    pub tcp_retries: u64,
    /// Upstream answers ignored: wrong ID, question or server, or garbage.
    pub spoofed_or_bad: u64,
    /// Of those, answers to the right question in the wrong letter case
    /// (0x20).
    pub case_mismatches: u64,
    /// Referral records dropped by the bailiwick rule.
    pub out_of_bailiwick: u64,
    pub servfail: u64,
    pub local_zone_answers: u64,
    pub refused_busy: u64,
    /// Questions that joined the same question already in progress.
    pub joined: u64,
    /// Name server addresses looked up for delegations without glue.
    pub glueless_lookups: u64,
    /// Questions answered from expired records (serve-stale).
    pub stale_answers: u64,
    /// Cached answers resolved again before they expired.
    pub prefetches: u64,
    /// Answers whose AAAA records DNS64 made from A records.
    pub dns64_synthesised: u64,
    /// Clients outside the allowed networks.
    pub refused_acl: u64,
    /// Questions past a client's budget.
    pub rate_limited: u64,
    /// Client questions that spent their [`MAX_SENT`] upstream queries.
    pub work_exhausted: u64,
}

/// Client addresses with a query budget at most; past it the least
/// recently seen is forgotten.
const BUDGETS: usize = 4096;

/// A client's query budget: tokens (in millionths) and when last refilled.
#[derive(Debug, Clone, Copy)]
struct Budget {
    micro_tokens: u64,
    last: Instant,
}

/// One client question being resolved.
#[derive(Debug)]
struct Task {
    /// Who asked, what, and how (each gets its own reply, fitted).
    clients: Vec<(ClientId, Message, Transport)>,
    /// The question as asked (before CNAMEs).
    question: (LowerName, RecordType),
    /// The name being looked up now (after CNAMEs).
    name: LowerName,
    qtype: RecordType,
    /// CNAME records met so far, for the answer.
    chain: Vec<Record>,
    /// The zone whose servers are being asked, and those not tried yet.
    zone: LowerName,
    servers: Vec<IpAddr>,
    /// Labels below the zone asked about (query minimisation).
    depth: u8,
    /// What the outstanding query asks: the name (maybe minimised) and type.
    asked: (LowerName, RecordType),
    /// That name as sent, in its random case.
    sent: Name,
    queries: usize,
    /// The question this one looks up a name server's address for.
    parent: Option<u64>,
    /// How many such lookups deep this one is.
    nesting: u8,
    /// Name servers whose addresses this task has looked up.
    looked_up: Vec<LowerName>,
    /// When the outstanding upstream query went out.
    asked_at: Option<Instant>,
    /// The outstanding upstream query: its token, server and message ID.
    waiting: Option<(u64, IpAddr, u16)>,
    /// Whether that query goes over TCP.
    tcp: bool,
    /// The server asked last (a TCP retry asks it again).
    last_server: Option<IpAddr>,
    /// The clients whose traces follow this question (usually none).
    traced: Vec<ClientId>,
    /// The server of the answer being handled, and its round-trip time.
    heard: (IpAddr, std::time::Duration),
    /// A prefetch: the question is asked even though it is cached.
    refresh: bool,
    /// Upstream queries sent for this question and the lookups under it
    /// (kept on the question a client asked, the root of its lookups).
    sent_queries: usize,
    /// A question for AAAA that had none, now looking up A records to
    /// make them from (DNS64).
    synthesising: bool,
}

/// `name` with each letter upper or lower case by one of `bits`.
fn mixed_case(name: &Name, bits: [u64; 4]) -> Name {
    let mut i = 0usize;
    let labels = name.iter().map(|label| {
        label
            .iter()
            .map(|b| {
                let upper = bits[(i / 64) % 4] >> (i % 64) & 1 == 1;
                i += 1;
                if upper {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                }
            })
            .collect::<Vec<u8>>()
    });
    Name::from_labels(labels).unwrap_or_else(|_| name.clone())
}

impl Task {
    /// A task that looks `question` up from the root down, for no client
    /// yet, traced for `traced`.
    fn new(question: (LowerName, RecordType), traced: Vec<ClientId>) -> Task {
        Task {
            clients: Vec::new(),
            name: question.0.clone(),
            qtype: question.1,
            chain: Vec::new(),
            zone: LowerName::new(&Name::root()),
            servers: Vec::new(),
            depth: 1,
            asked: question.clone(),
            question,
            sent: Name::root(),
            queries: 0,
            parent: None,
            nesting: 0,
            looked_up: Vec::new(),
            asked_at: None,
            waiting: None,
            tcp: false,
            last_server: None,
            traced,
            heard: (
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                std::time::Duration::ZERO,
            ),
            refresh: false,
            sent_queries: 0,
            synthesising: false,
        }
    }

    /// What to ask the zone's servers: the name cut to `depth` labels
    /// below the zone with QTYPE A while it is shorter than the name
    /// (RFC 9156), else the question itself.
    fn minimised(&self) -> (LowerName, RecordType) {
        let labels = self.zone.num_labels().saturating_add(self.depth);
        if self.depth <= MINIMISE_ONE_LAB && labels < self.name.num_labels() {
            let name = Name::from(&self.name).trim_to(usize::from(labels));
            return (LowerName::new(&name), RecordType::A);
        }
        (self.name.clone(), self.qtype)
    }
}

/// Where a question goes next: see [`Resolver::closest_cut`].
enum Cut {
    Servers(LowerName, Vec<IpAddr>),
    Glueless(LowerName),
    Lame,
}

/// The resolver. See the module documentation.
#[derive(Debug)]
pub struct Resolver {
    config: ResolverConfig,
    cache: Cache,
    tasks: HashMap<u64, Task>,
    next_token: u64,
    /// IDs, source ports and 0x20 case: ChaCha12 keyed from the caller's
    /// 32 bytes, so that seeing any number of them tells nothing of the
    /// next (the answer to xorshift's "one long name reveals the state").
    rng: StdRng,
    budgets: HashMap<IpAddr, Budget>,
    /// Each upstream server's smoothed round-trip time.
    rtt: HashMap<IpAddr, std::time::Duration>,
    counters: ResolverCounters,
    /// Steps of traced questions, for the actions of the current call.
    steps: Vec<Action>,
}

impl Resolver {
    /// `key` seeds what an off-path forger must guess (IDs, source
    /// ports, case): 32 bytes from the OS's CSPRNG in a running lab; a
    /// simulation passes its own to replay a run.
    pub fn new(config: ResolverConfig, key: [u8; 32]) -> Resolver {
        Resolver {
            cache: Cache::new(config.cache_size, config.cache_bytes),
            config,
            tasks: HashMap::new(),
            next_token: 0,
            rng: StdRng::from_seed(key),
            budgets: HashMap::new(),
            rtt: HashMap::new(),
            counters: ResolverCounters::default(),
            steps: Vec::new(),
        }
    }

    /// Records `step` of task `token`'s resolution if a trace follows it.
    fn note(&mut self, token: u64, step: impl FnOnce() -> Step) {
        if let Some(task) = self.tasks.get(&token).filter(|t| !t.traced.is_empty()) {
            self.steps.push(Action::Step {
                clients: task.traced.clone(),
                step: step(),
            });
        }
    }

    /// Records `step` about `client`'s question, if `traced`.
    fn note_for(&mut self, traced: bool, client: ClientId, step: impl FnOnce() -> Step) {
        if traced {
            self.steps.push(Action::Step {
                clients: vec![client],
                step: step(),
            });
        }
    }

    /// The steps recorded during this call, then `actions`.
    fn with_steps(&mut self, actions: Vec<Action>) -> Vec<Action> {
        if self.steps.is_empty() {
            return actions;
        }
        let mut all = std::mem::take(&mut self.steps);
        all.extend(actions);
        all
    }

    pub fn counters(&self) -> &ResolverCounters {
        &self.counters
    }

    /// Entries in the cache, and about how many bytes they take.
    pub fn cache_usage(&self) -> (usize, usize) {
        (self.cache.len(), self.cache.bytes())
    }

    /// Forgets what the cache holds for `name` (every type), or
    /// everything, as `unbound-control flush` does; returns how many
    /// entries went.
    pub fn flush_cache(&mut self, name: Option<&Name>) -> usize {
        self.cache.flush(name.map(LowerName::new).as_ref())
    }

    fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A source port for an upstream query, from 1024-65535; the service
    /// asks again when the one given is taken.
    pub fn random_port(&mut self) -> u16 {
        1024 + self.random_u16() % (u16::MAX - 1024)
    }

    fn random_u16(&mut self) -> u16 {
        (self.random_u64() >> 48) as u16
    }

    /// Takes one question from `from`'s budget.
    fn within_budget(&mut self, now: Instant, from: IpAddr) -> bool {
        let rate = u64::from(self.config.client_rate.max(1));
        let burst = rate * 4 * 1_000_000;
        if !self.budgets.contains_key(&from) && self.budgets.len() >= BUDGETS {
            let stalest = self
                .budgets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(a, _)| *a);
            if let Some(a) = stalest {
                self.budgets.remove(&a);
            }
        }
        let b = self.budgets.entry(from).or_insert(Budget {
            micro_tokens: burst,
            last: now,
        });
        let elapsed = now
            .saturating_duration_since(b.last)
            .min(std::time::Duration::from_secs(60));
        b.last = b.last.max(now);
        b.micro_tokens = (b.micro_tokens + elapsed.as_micros() as u64 * rate).min(burst);
        if b.micro_tokens >= 1_000_000 {
            b.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }

    /// A question from a client at address `from` (the bytes it sent).
    pub fn client_query(
        &mut self,
        now: Instant,
        client: ClientId,
        from: IpAddr,
        transport: Transport,
        bytes: &[u8],
    ) -> Vec<Action> {
        self.query(now, client, from, transport, bytes, false)
    }

    /// A question whose resolution is traced for `client`: the actions
    /// include [`Action::Step`]s naming it, from this call and the later
    /// ones that go on with it, until its answer.
    pub fn traced_query(
        &mut self,
        now: Instant,
        client: ClientId,
        from: IpAddr,
        transport: Transport,
        bytes: &[u8],
    ) -> Vec<Action> {
        let actions = self.query(now, client, from, transport, bytes, true);
        self.with_steps(actions)
    }

    fn query(
        &mut self,
        now: Instant,
        client: ClientId,
        from: IpAddr,
        transport: Transport,
        bytes: &[u8],
        traced: bool,
    ) -> Vec<Action> {
        let Ok(request) = Message::from_vec(bytes) else {
            let Some(id) = bytes.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
                return vec![Action::Forget { client }];
            };
            let formerr = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
            return match formerr.to_vec() {
                Ok(message) => vec![Action::Answer { client, message }],
                Err(_) => vec![Action::Forget { client }],
            };
        };
        if request.metadata.message_type != MessageType::Query {
            return vec![Action::Forget { client }];
        }
        self.counters.questions += 1;
        let mut reply = response_to(&request);
        if !self.config.allow.is_empty() && !self.config.allow.iter().any(|n| n.contains(&from)) {
            self.counters.refused_acl += 1;
            reply.metadata.response_code = ResponseCode::Refused;
            return answer(client, &request, transport, reply);
        }
        if !self.within_budget(now, from) {
            self.counters.rate_limited += 1;
            reply.metadata.response_code = ResponseCode::Refused;
            return answer(client, &request, transport, reply);
        }
        if edns_version_unknown(&request) {
            reply.metadata.response_code = ResponseCode::BADVERS;
            return answer(client, &request, transport, reply);
        }
        if request.metadata.op_code != OpCode::Query {
            reply.metadata.response_code = ResponseCode::NotImp;
            return answer(client, &request, transport, reply);
        }
        let [question] = request.queries.as_slice() else {
            reply.metadata.response_code = ResponseCode::FormErr;
            return answer(client, &request, transport, reply);
        };
        let name = LowerName::new(question.name());
        if let Some(zone) = locally_served(&name) {
            self.counters.local_zone_answers += 1;
            self.note_for(traced, client, || Step::LocalZone { zone: zone.clone() });
            reply.metadata.response_code = ResponseCode::NXDomain;
            reply.authorities.push(local_soa(&zone));
            return answer(client, &request, transport, reply);
        }
        let question = (name.clone(), question.query_type());
        // NODATA for AAAA with DNS64 on is for a task to make AAAA from A.
        let dns64 = self.config.dns64.is_some() && question.1 == RecordType::AAAA;
        let cached = self.lookup(now, &name, question.1);
        let cached = cached.filter(|c| !(dns64 && matches!(c, Cached::Negative(false, _))));
        if let Some(cached) = cached {
            // The common case, answered without a task.
            self.counters.cache_hits += 1;
            self.note_for(traced, client, || Step::Cache {
                name: Name::from(&name),
                qtype: question.1,
                hit: true,
            });
            let mut reply = response_to(&request);
            fill_from_cache(&mut reply, &[], cached);
            let mut actions = answer(client, &request, transport, reply);
            if self.config.prefetch && self.expiring(now, &question) {
                actions.extend(self.prefetch(now, question, traced.then_some(client)));
            }
            return actions;
        }
        let same = self.tasks.values_mut().find(|t| t.question == question);
        if let Some(task) = same.filter(|t| t.clients.len() < MAX_WAITERS) {
            self.counters.joined += 1;
            task.clients.push((client, request, transport));
            if traced {
                task.traced.push(client);
                self.steps.push(Action::Step {
                    clients: vec![client],
                    step: Step::Joined {
                        name: Name::from(&question.0),
                        qtype: question.1,
                    },
                });
            }
            return Vec::new();
        }
        let full = self.tasks.values().any(|t| t.question == question);
        if full || self.tasks.len() >= self.config.max_tasks {
            self.counters.refused_busy += 1;
            reply.metadata.response_code = ResponseCode::ServFail;
            return answer(client, &request, transport, reply);
        }
        let token = self.token();
        let (question_name, question_type) = question.clone();
        let mut task = Task::new(question, if traced { vec![client] } else { Vec::new() });
        task.clients.push((client, request, transport));
        self.tasks.insert(token, task);
        self.note(token, || Step::Cache {
            name: Name::from(&question_name),
            qtype: question_type,
            hit: false,
        });
        self.step(now, token)
    }

    /// Whether the cached answer to `question` is in the last tenth of a
    /// TTL of 10 s or more, and nobody is resolving it already.
    fn expiring(&self, now: Instant, question: &(LowerName, RecordType)) -> bool {
        let Some(e) = self.cache.get(question) else {
            return false;
        };
        let age = now.saturating_duration_since(e.stored).as_secs();
        let left = u64::from(e.ttl).saturating_sub(age);
        e.ttl >= 10
            && matches!(e.value, Cached::Records(_))
            && left * 10 < u64::from(e.ttl)
            && !self.tasks.values().any(|t| t.question == *question)
    }

    /// Resolves `question` again, for nobody, so that its answer is fresh
    /// before the cached one expires.
    fn prefetch(
        &mut self,
        now: Instant,
        question: (LowerName, RecordType),
        traced_for: Option<ClientId>,
    ) -> Vec<Action> {
        if self.tasks.len() >= self.config.max_tasks {
            return Vec::new();
        }
        self.counters.prefetches += 1;
        if let Some(client) = traced_for {
            self.note_for(true, client, || Step::Prefetch {
                name: Name::from(&question.0),
                qtype: question.1,
            });
        }
        let token = self.token();
        let task = Task {
            refresh: true,
            ..Task::new(question, Vec::new())
        };
        self.tasks.insert(token, task);
        self.step(now, token)
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// What came back from `from` for the upstream query `token`.
    pub fn upstream_answer(
        &mut self,
        now: Instant,
        token: u64,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Vec<Action> {
        let Some(task) = self.tasks.get_mut(&token) else {
            return Vec::new();
        };
        let Some((_, server, id)) = task.waiting else {
            return Vec::new();
        };
        let ip = from.ip();
        // Garbage is ignored like a forgery: the wait goes on, so one bad
        // datagram cannot cost a query its server (Unbound does the same).
        let msg = Message::from_vec(bytes).ok().filter(|msg| {
            from == SocketAddr::new(server, crate::PORT)
                && msg.metadata.id == id
                && msg.metadata.message_type == MessageType::Response
                && msg.queries.len() == 1
                && LowerName::new(msg.queries[0].name()) == task.asked.0
                && msg.queries[0].query_type() == task.asked.1
        });
        let Some(msg) = msg else {
            self.counters.spoofed_or_bad += 1;
            self.note(token, || Step::Ignored { from: ip });
            return self.with_steps(Vec::new());
        };
        if !msg.queries[0].name().eq_case(&task.sent) {
            // The right answer in the wrong case (0x20): a forger guessed
            // ID and port but not the case; wait on.
            self.counters.case_mismatches += 1;
            self.counters.spoofed_or_bad += 1;
            self.note(token, || Step::Ignored { from: ip });
            return self.with_steps(Vec::new());
        }
        task.waiting = None;
        let rtt = task.asked_at.map_or(std::time::Duration::ZERO, |at| {
            now.saturating_duration_since(at)
        });
        task.heard = (server, rtt);
        let srtt = self.rtt.get(&server).map_or(rtt, |s| (*s * 7 + rtt) / 8);
        self.set_rtt(server, srtt);
        let actions = self.on_answer(now, token, msg);
        self.with_steps(actions)
    }

    /// The smoothed round-trip time of `server`, once it has one.
    pub fn server_rtt(&self, server: IpAddr) -> Option<std::time::Duration> {
        self.rtt.get(&server).copied()
    }

    fn set_rtt(&mut self, server: IpAddr, srtt: std::time::Duration) {
        if self.rtt.len() >= RTT_SERVERS && !self.rtt.contains_key(&server) {
            // Forget the slowest: the least likely to be asked again.
            let slowest = self.rtt.iter().max_by_key(|(_, t)| **t).map(|(a, _)| *a);
            if let Some(a) = slowest {
                self.rtt.remove(&a);
            }
        }
        self.rtt.insert(server, srtt.min(RTT_CAP));
    }

    /// The index in `servers` of the one to ask next: the lowest smoothed
    /// RTT; the others passed over drift down by 2%.
    fn pick_server(&mut self, servers: &[IpAddr]) -> usize {
        let mut best = (0, std::time::Duration::MAX);
        for (i, s) in servers.iter().enumerate() {
            let srtt = match self.rtt.get(s) {
                Some(t) => *t,
                // Not heard from yet: 0-31 ms, so that it gets its turn.
                None => std::time::Duration::from_millis(self.random_u64() % 32),
            };
            if srtt < best.1 {
                best = (i, srtt);
            }
        }
        for (i, s) in servers.iter().enumerate() {
            if i != best.0 {
                if let Some(t) = self.rtt.get_mut(s) {
                    *t -= *t / 50;
                }
            }
        }
        best.0
    }

    /// Whether the upstream query `token` still waits for its answer.
    pub fn is_waiting(&self, token: u64) -> bool {
        self.tasks.get(&token).is_some_and(|t| t.waiting.is_some())
    }

    /// Nothing came back for `token` in time.
    pub fn upstream_timeout(&mut self, now: Instant, token: u64) -> Vec<Action> {
        if let Some((_, server, _)) = self.tasks.get(&token).and_then(|t| t.waiting) {
            self.counters.upstream_timeouts += 1;
            let least = self.config.upstream_timeout;
            let srtt = self.rtt.get(&server).map_or(least, |s| (*s * 2).max(least));
            self.set_rtt(server, srtt);
            self.note(token, || Step::Timeout { server });
            let actions = self.next_server(now, token);
            return self.with_steps(actions);
        }
        Vec::new()
    }

    fn next_server(&mut self, now: Instant, token: u64) -> Vec<Action> {
        if let Some(t) = self.tasks.get_mut(&token) {
            t.waiting = None;
            t.tcp = false;
        }
        self.ask(now, token)
    }

    /// Answers from the cache, or finds the closest known zone cut and
    /// asks its servers.
    fn step(&mut self, now: Instant, token: u64) -> Vec<Action> {
        loop {
            let Some(task) = self.tasks.get(&token) else {
                return Vec::new();
            };
            let (name, qtype) = (task.name.clone(), task.qtype);
            let refreshing = task.refresh && task.chain.is_empty();
            if let Some(cached) = self.lookup(now, &name, qtype).filter(|_| !refreshing) {
                self.counters.cache_hits += 1;
                self.note(token, || Step::Cache {
                    name: Name::from(&name),
                    qtype,
                    hit: true,
                });
                return self.finish_with(now, token, cached);
            }
            if qtype != RecordType::CNAME {
                if let Some(Cached::Records(cname)) = self.lookup(now, &name, RecordType::CNAME) {
                    if self.follow_cname(token, cname) {
                        continue;
                    }
                    return self.fail(now, token);
                }
            }
            break;
        }
        let (zone, servers) = match self.closest_cut(now, token) {
            Cut::Servers(zone, servers) => (zone, servers),
            Cut::Glueless(ns) => return self.look_up_server(now, token, ns),
            Cut::Lame => return self.fail(now, token),
        };
        if let Some(task) = self.tasks.get_mut(&token) {
            task.zone = zone;
            task.servers = servers;
            task.depth = 1;
            task.tcp = false;
        }
        self.ask(now, token)
    }

    /// Looks up the address of the name server `ns` (delegated to
    /// without glue) in a task of its own; `token` goes on when it ends.
    fn look_up_server(&mut self, now: Instant, token: u64, ns: LowerName) -> Vec<Action> {
        let Some(task) = self.tasks.get_mut(&token) else {
            return Vec::new();
        };
        task.looked_up.push(ns.clone());
        let nesting = task.nesting + 1;
        let traced = task.traced.clone();
        self.note(token, || Step::Glueless {
            ns: Name::from(&ns),
        });
        if nesting > MAX_NESTING || self.tasks.len() >= self.config.max_tasks {
            return self.fail(now, token);
        }
        self.counters.glueless_lookups += 1;
        let child = self.token();
        self.tasks.insert(
            child,
            Task {
                parent: Some(token),
                nesting,
                ..Task::new((ns, self.server_address_type()), traced)
            },
        );
        self.step(now, child)
    }

    /// The record type a name server's address is looked up by: A while
    /// servers are asked over IPv4, else AAAA.
    fn server_address_type(&self) -> RecordType {
        match self.config.do_ip4 {
            true => RecordType::A,
            false => RecordType::AAAA,
        }
    }

    /// Takes one upstream query from the budget of the client question
    /// `token` serves (itself, or the question whose name server it looks
    /// up): false once [`MAX_SENT`] are spent.
    fn spend_query(&mut self, token: u64) -> bool {
        let mut root = token;
        // Lookups nest at most MAX_NESTING deep; the bound keeps a broken
        // chain from looping.
        for _ in 0..=MAX_NESTING {
            match self.tasks.get(&root).and_then(|t| t.parent) {
                Some(p) if self.tasks.contains_key(&p) => root = p,
                _ => break,
            }
        }
        let Some(task) = self.tasks.get_mut(&root) else {
            return false;
        };
        task.sent_queries += 1;
        if task.sent_queries == MAX_SENT + 1 {
            self.counters.work_exhausted += 1;
        }
        task.sent_queries <= MAX_SENT
    }

    /// Sends the question to the next untried server of the task's zone.
    fn ask(&mut self, now: Instant, token: u64) -> Vec<Action> {
        let id = self.random_u16();
        let case = self
            .config
            .case_randomisation
            .then(|| [(); 4].map(|_| self.random_u64()));
        let servers = self
            .tasks
            .get_mut(&token)
            .map(|t| std::mem::take(&mut t.servers))
            .unwrap_or_default();
        let next = self.pick_server(&servers);
        let Some(task) = self.tasks.get_mut(&token) else {
            return Vec::new();
        };
        task.servers = servers;
        let retry_over_tcp = task.tcp && task.last_server.is_some();
        if task.queries >= MAX_QUERIES || (task.servers.is_empty() && !retry_over_tcp) {
            return self.fail(now, token);
        }
        if !self.spend_query(token) {
            return self.fail(now, token);
        }
        let Some(task) = self.tasks.get_mut(&token) else {
            return Vec::new();
        };
        // Over TCP, the server just asked goes again; over UDP, the next.
        let server = match (task.tcp, task.last_server) {
            (true, Some(s)) => s,
            _ => task.servers.remove(next),
        };
        task.last_server = Some(server);
        task.asked_at = Some(now);
        task.queries += 1;
        task.asked = task.minimised();
        task.sent = Name::from(&task.asked.0);
        if let Some(bits) = case {
            task.sent = mixed_case(&task.sent, bits);
        }
        let mut q = Message::query();
        q.metadata.id = id;
        q.metadata.recursion_desired = false;
        q.add_query(Query::query(task.sent.clone(), task.asked.1));
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        q.edns = Some(edns);
        let Ok(message) = q.to_vec() else {
            return self.fail(now, token);
        };
        let upstream = self.token();
        // The task is found again by its upstream token.
        let Some(mut task) = self.tasks.remove(&token) else {
            return Vec::new();
        };
        task.waiting = Some((upstream, server, id));
        self.tasks.insert(upstream, task);
        if let Some(t) = self.tasks.get(&upstream).filter(|t| !t.traced.is_empty()) {
            let step = Step::Ask {
                server,
                zone: Name::from(&t.zone),
                name: t.sent.clone(),
                qtype: t.asked.1,
                minimised: t.asked.0 != t.name,
                tcp: t.tcp,
            };
            self.steps.push(Action::Step {
                clients: t.traced.clone(),
                step,
            });
        }
        self.counters.upstream_queries += 1;
        let source_port = self.random_port();
        let tcp = self.tasks.get(&upstream).is_some_and(|t| t.tcp);
        vec![Action::Query {
            token: upstream,
            server,
            source_port,
            message,
            tcp,
        }]
    }

    fn on_answer(&mut self, now: Instant, token: u64, msg: Message) -> Vec<Action> {
        let Some(task) = self.tasks.get(&token) else {
            return Vec::new();
        };
        let (name, qtype, zone) = (task.name.clone(), task.qtype, task.zone.clone());
        let minimised = task.asked.0 != name;
        let (server, rtt) = task.heard;
        if msg.metadata.truncation && !task.tcp {
            // Too big for UDP: the same server, over TCP (RFC 7766).
            self.counters.tcp_retries += 1;
            self.note(token, || Step::Truncated { server });
            if let Some(t) = self.tasks.get_mut(&token) {
                t.tcp = true;
            }
            return self.ask(now, token);
        }
        let rcode = msg.metadata.response_code;
        if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
            self.note(token, || Step::ServerError { server, rtt, rcode });
            return self.next_server(now, token);
        }
        if minimised && rcode != ResponseCode::NXDomain {
            // A minimised query: a referral goes down a zone; anything but
            // NXDOMAIN (handled below: RFC 8020, nothing below exists
            // either) means no zone cut here, so one more label, asked of
            // the same server.
            if let Some(actions) = self.follow_referral(now, token, &msg) {
                return actions;
            }
            self.note(token, || Step::NoCut { server, rtt });
            if let Some(t) = self.tasks.get_mut(&token) {
                t.depth += 1;
                t.tcp = false;
                if let Some(s) = t.last_server {
                    t.servers.insert(0, s);
                }
            }
            return self.ask(now, token);
        }
        // Only records inside the zone we asked about are believed.
        let in_zone = |r: &Record| zone.zone_of(&LowerName::new(&r.name));
        let answers: Vec<Record> = msg.answers.iter().filter(|r| in_zone(r)).cloned().collect();
        let here: Vec<Record> = answers
            .iter()
            .filter(|r| LowerName::new(&r.name) == name)
            .cloned()
            .collect();
        let wanted: Vec<Record> = here
            .iter()
            .filter(|r| r.record_type() == qtype)
            .cloned()
            .collect();
        if !wanted.is_empty() {
            self.note(token, || Step::Answer {
                server,
                rtt,
                records: wanted.clone(),
            });
            self.store(now, &name, qtype, Cached::Records(wanted.clone()));
            return self.finish_with(now, token, Cached::Records(wanted));
        }
        let cname: Vec<Record> = here
            .iter()
            .filter(|r| r.record_type() == RecordType::CNAME)
            .cloned()
            .collect();
        if !cname.is_empty() {
            self.store(
                now,
                &name,
                RecordType::CNAME,
                Cached::Records(cname.clone()),
            );
            // The target's records, if the same server gave them.
            let mut target_records: Vec<(LowerName, RecordType, Vec<Record>)> = Vec::new();
            for r in &answers {
                let owner = LowerName::new(&r.name);
                if owner != name {
                    match target_records
                        .iter_mut()
                        .find(|(n, t, _)| *n == owner && *t == r.record_type())
                    {
                        Some((_, _, v)) => v.push(r.clone()),
                        None => target_records.push((owner, r.record_type(), vec![r.clone()])),
                    }
                }
            }
            for (n, t, v) in target_records {
                self.store(now, &n, t, Cached::Records(v));
            }
            if !self.follow_cname(token, cname) {
                return self.fail(now, token);
            }
            return self.step(now, token);
        }
        let soa = msg
            .authorities
            .iter()
            .find(|r| r.record_type() == RecordType::SOA && in_zone(r))
            .cloned();
        if rcode == ResponseCode::NXDomain {
            return self.negative(now, token, true, soa);
        }
        if let Some(actions) = self.follow_referral(now, token, &msg) {
            return actions;
        }
        self.negative(now, token, false, soa) // NODATA
    }

    /// NXDOMAIN (`nxdomain`) or NODATA for the task's name: cached for the
    /// SOA's negative TTL when there is one (RFC 2308), and the answer.
    fn negative(
        &mut self,
        now: Instant,
        token: u64,
        nxdomain: bool,
        soa: Option<Record>,
    ) -> Vec<Action> {
        let question = self.tasks.get(&token).map(|t| (t.name.clone(), t.qtype));
        if let Some((server, rtt)) = self.tasks.get(&token).map(|t| t.heard) {
            self.note(token, || Step::Negative {
                server,
                rtt,
                nxdomain,
                negative_ttl: soa.as_ref().map(negative_ttl),
            });
        }
        if let (Some((name, qtype)), Some(soa)) = (question, &soa) {
            let entry = Cached::Negative(nxdomain, Box::new(soa.clone()));
            self.store(now, &name, qtype, entry);
        }
        self.finish_negative(now, token, nxdomain, soa)
    }

    /// Follows a referral in `msg`, if it is one: NS records for a zone
    /// below the one asked, at or above the name (bailiwick-checked), and
    /// their glue inside the zone asked.
    fn follow_referral(&mut self, now: Instant, token: u64, msg: &Message) -> Option<Vec<Action>> {
        let task = self.tasks.get(&token)?;
        let (name, zone) = (task.name.clone(), task.zone.clone());
        let (server, rtt) = task.heard;
        let referral: Vec<Record> = msg
            .authorities
            .iter()
            .filter(|r| r.record_type() == RecordType::NS)
            .cloned()
            .collect();
        let cut = LowerName::new(&referral.first()?.name);
        let below = zone.zone_of(&cut) && cut != zone && cut.zone_of(&name);
        if !below || referral.iter().any(|r| LowerName::new(&r.name) != cut) {
            self.counters.out_of_bailiwick += 1;
            self.note(token, || Step::OutOfBailiwick {
                server,
                zone: Name::from(&zone),
                names: referral.iter().map(|r| r.name.clone()).collect(),
            });
            return Some(self.next_server(now, token));
        }
        let servers: Vec<Name> = referral
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(t) => Some(t.0.clone()),
                _ => None,
            })
            .collect();
        self.store(now, &cut, RecordType::NS, Cached::Records(referral));
        let mut glue = Vec::new();
        let mut foreign = Vec::new();
        for g in &msg.additionals {
            if !matches!(g.record_type(), RecordType::A | RecordType::AAAA) {
                continue;
            }
            let owner = LowerName::new(&g.name);
            if zone.zone_of(&owner) {
                let group: Vec<Record> = msg
                    .additionals
                    .iter()
                    .filter(|x| {
                        LowerName::new(&x.name) == owner && x.record_type() == g.record_type()
                    })
                    .cloned()
                    .collect();
                self.store(now, &owner, g.record_type(), Cached::Records(group));
                match &g.data {
                    RData::A(a) => glue.push((g.name.clone(), IpAddr::V4(a.0))),
                    RData::AAAA(a) => glue.push((g.name.clone(), IpAddr::V6(a.0))),
                    _ => {}
                }
            } else {
                self.counters.out_of_bailiwick += 1;
                foreign.push(g.name.clone());
            }
        }
        self.note(token, || Step::Referral {
            server,
            rtt,
            cut: Name::from(&cut),
            servers,
            glue,
        });
        if !foreign.is_empty() {
            self.note(token, || Step::OutOfBailiwick {
                server,
                zone: Name::from(&zone),
                names: foreign,
            });
        }
        Some(self.step(now, token))
    }

    /// Adds CNAME records to the task's chain and moves it to the target;
    /// false past [`MAX_CNAMES`].
    fn follow_cname(&mut self, token: u64, cname: Vec<Record>) -> bool {
        let Some(task) = self.tasks.get_mut(&token) else {
            return false;
        };
        let Some(RData::CNAME(target)) = cname.first().map(|r| r.data.clone()) else {
            return false;
        };
        if task.chain.len() >= MAX_CNAMES {
            return false;
        }
        task.chain.extend(cname);
        let from = Name::from(&task.name);
        task.name = LowerName::new(&target.0);
        self.note(token, || Step::Cname { from, to: target.0 });
        true
    }

    /// The closest zone cut above the task's name that is known: its
    /// servers' addresses, or a server name to look up when none is known
    /// (a glueless delegation), or `Lame` when every one was looked up in
    /// vain; the root hints above all.
    fn closest_cut(&self, now: Instant, token: u64) -> Cut {
        let usable = |a: &IpAddr| match a {
            IpAddr::V4(_) => self.config.do_ip4,
            IpAddr::V6(_) => self.config.do_ip6,
        };
        let hints = self.config.root_hints.iter().copied().filter(usable);
        let root = Cut::Servers(LowerName::new(&Name::root()), hints.collect());
        let Some(task) = self.tasks.get(&token) else {
            return root;
        };
        let mut n = Name::from(&task.name);
        loop {
            let lower = LowerName::new(&n);
            if let Some(Cached::Records(ns)) = self.lookup(now, &lower, RecordType::NS) {
                let names: Vec<LowerName> = ns
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::NS(t) => Some(LowerName::new(&t.0)),
                        _ => None,
                    })
                    .collect();
                let addrs: Vec<IpAddr> = names
                    .iter()
                    .flat_map(|t| [(t, RecordType::A), (t, RecordType::AAAA)])
                    .filter_map(|(t, qtype)| match self.lookup(now, t, qtype) {
                        Some(Cached::Records(a)) => Some(a),
                        _ => None,
                    })
                    .flatten()
                    .filter_map(|r| match r.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        _ => None,
                    })
                    .filter(usable)
                    .collect();
                if !addrs.is_empty() {
                    return Cut::Servers(lower, addrs);
                }
                if n.is_root() {
                    return root;
                }
                return match names.into_iter().find(|t| !task.looked_up.contains(t)) {
                    Some(ns) => Cut::Glueless(ns),
                    None => Cut::Lame,
                };
            }
            if n.is_root() {
                return root;
            }
            n = n.base_name();
        }
    }

    /// A cached entry, with TTLs counted down; `None` once expired.
    fn lookup(&self, now: Instant, name: &LowerName, ty: RecordType) -> Option<Cached> {
        self.lookup_at(now, name, ty, false)
    }

    /// A cached entry; once expired, `None`, or with `stale` and less than
    /// [`STALE_MAX`] past its TTL, the entry with a TTL of 30 s.
    fn lookup_at(
        &self,
        now: Instant,
        name: &LowerName,
        ty: RecordType,
        stale: bool,
    ) -> Option<Cached> {
        let e = self.cache.get(&(name.clone(), ty))?;
        let age = now.saturating_duration_since(e.stored).as_secs();
        let left = match u64::from(e.ttl).checked_sub(age).filter(|l| *l > 0) {
            Some(left) => left as u32,
            None if stale && age < u64::from(e.ttl) + STALE_MAX.as_secs() => STALE_TTL,
            None => return None,
        };
        Some(match &e.value {
            Cached::Records(rs) => Cached::Records(
                rs.iter()
                    .map(|r| {
                        let mut r = r.clone();
                        r.ttl = left.min(r.ttl);
                        r
                    })
                    .collect(),
            ),
            Cached::Negative(nx, soa) => {
                let mut soa = (**soa).clone();
                soa.ttl = left;
                Cached::Negative(*nx, Box::new(soa))
            }
        })
    }

    fn store(&mut self, now: Instant, name: &LowerName, ty: RecordType, value: Cached) {
        let ttl = match &value {
            Cached::Records(rs) => rs.iter().map(|r| r.ttl).min().unwrap_or(0),
            Cached::Negative(_, soa) => negative_ttl(soa),
        };
        if ttl > 0 {
            self.cache.insert(now, (name.clone(), ty), value, ttl);
        }
    }

    fn finish_with(&mut self, now: Instant, token: u64, cached: Cached) -> Vec<Action> {
        if matches!(cached, Cached::Negative(false, _)) {
            if let Some(actions) = self.dns64(now, token) {
                return actions;
            }
        }
        let prefix = self.config.dns64;
        self.reply_all(now, token, |task, reply| {
            fill_from_cache(reply, &task.chain, cached.clone());
            if let (true, Some(prefix)) = (task.synthesising, prefix) {
                synthesise(reply, prefix);
            }
        })
    }

    fn finish_negative(
        &mut self,
        now: Instant,
        token: u64,
        nxdomain: bool,
        soa: Option<Record>,
    ) -> Vec<Action> {
        if !nxdomain {
            if let Some(actions) = self.dns64(now, token) {
                return actions;
            }
        }
        self.reply_all(now, token, |task, reply| {
            reply.answers = task.chain.clone();
            if nxdomain {
                reply.metadata.response_code = ResponseCode::NXDomain;
            }
            reply.authorities.extend(soa.iter().cloned());
        })
    }

    /// DNS64 (RFC 6147 5.1): a client's question for AAAA records found
    /// none (NODATA), so the name's A records are looked up instead, to
    /// make AAAA records from. `None` where that does not apply.
    fn dns64(&mut self, now: Instant, token: u64) -> Option<Vec<Action>> {
        let prefix = self.config.dns64?;
        let task = self.tasks.get_mut(&token)?;
        let asked = !task.clients.is_empty() && task.parent.is_none();
        if !asked || task.synthesising || task.qtype != RecordType::AAAA {
            return None;
        }
        task.synthesising = true;
        task.qtype = RecordType::A;
        let name = Name::from(&task.name);
        self.counters.dns64_synthesised += 1;
        self.note(token, || Step::Dns64 { name, prefix });
        Some(self.step(now, token))
    }

    fn fail(&mut self, now: Instant, token: u64) -> Vec<Action> {
        if self.config.serve_stale {
            let question = self.tasks.get(&token).map(|t| (t.name.clone(), t.qtype));
            let stale = question.and_then(|(name, qtype)| self.lookup_at(now, &name, qtype, true));
            if let Some(stale) = stale {
                self.counters.stale_answers += 1;
                self.note(token, || Step::Failed { stale: true });
                return self.finish_with(now, token, stale);
            }
        }
        self.counters.servfail += 1;
        self.note(token, || Step::Failed { stale: false });
        self.reply_all(now, token, |_, reply| {
            reply.metadata.response_code = ResponseCode::ServFail;
        })
    }

    /// Ends the task: each of its clients gets a reply to its own request,
    /// filled in by `fill`.
    fn reply_all(
        &mut self,
        now: Instant,
        token: u64,
        fill: impl Fn(&Task, &mut Message),
    ) -> Vec<Action> {
        let Some(task) = self.tasks.remove(&token) else {
            return Vec::new();
        };
        let mut actions: Vec<Action> = task
            .clients
            .iter()
            .flat_map(|(client, request, transport)| {
                let mut reply = response_to(request);
                fill(&task, &mut reply);
                answer(*client, request, *transport, reply)
            })
            .collect();
        if let Some(parent) = task.parent {
            // A name server's address was looked up for `parent`: it goes
            // on (with the address now cached, or the next name).
            actions.extend(self.step(now, parent));
        }
        actions
    }
}

/// DNS64's answer: each A record of `reply` becomes an AAAA record of the
/// same name and TTL, its address embedded in the /96 `prefix` (RFC 6052
/// 2.2: the IPv4 address in the last 32 bits); CNAMEs stay.
fn synthesise(reply: &mut Message, prefix: ipnet::Ipv6Net) {
    for r in &mut reply.answers {
        if let RData::A(a) = &r.data {
            let mut o = prefix.network().octets();
            o[12..].copy_from_slice(&a.0.octets());
            let aaaa = hickory_proto::rr::rdata::AAAA(std::net::Ipv6Addr::from(o));
            *r = Record::from_rdata(r.name.clone(), r.ttl, RData::AAAA(aaaa));
        }
    }
}

/// How long a negative answer with `soa` is cached: the lesser of the
/// SOA's TTL and its minimum (RFC 2308 5).
fn negative_ttl(soa: &Record) -> u32 {
    match &soa.data {
        RData::SOA(s) => soa.ttl.min(s.minimum),
        _ => soa.ttl,
    }
}

/// The skeleton of the answer to `request`: its ID and question, RD
/// echoed, RA set, EDNS if the client used it.
fn response_to(request: &Message) -> Message {
    let mut m = Message::response(request.metadata.id, request.metadata.op_code);
    m.metadata.recursion_desired = request.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.queries = request.queries.clone();
    if request.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.edns = Some(e);
    }
    m
}

/// Fills a reply with the CNAMEs met on the way (`chain`) and what the
/// cache holds for the end of it.
fn fill_from_cache(reply: &mut Message, chain: &[Record], cached: Cached) {
    reply.answers = chain.to_vec();
    match cached {
        Cached::Records(rs) => reply.answers.extend(rs),
        Cached::Negative(nxdomain, soa) => {
            if nxdomain {
                reply.metadata.response_code = ResponseCode::NXDomain;
            }
            reply.authorities.push(*soa);
        }
    }
}

/// The reply to `client`'s `request`, fitted to its transport.
fn answer(client: ClientId, request: &Message, transport: Transport, m: Message) -> Vec<Action> {
    vec![match encode_for(m, request, transport) {
        Some(message) => Action::Answer { client, message },
        None => Action::Forget { client },
    }]
}

/// The locally served zone (RFC 6303, and the lab's uplink) that `name`
/// falls in, if any.
pub fn locally_served(name: &LowerName) -> Option<Name> {
    static ARPA: std::sync::LazyLock<[LowerName; 2]> = std::sync::LazyLock::new(|| {
        ["in-addr.arpa.", "ip6.arpa."].map(|z| LowerName::new(&zone_name(z)))
    });
    static LOCAL: std::sync::LazyLock<Vec<LowerName>> = std::sync::LazyLock::new(|| {
        // :: and ::1 (RFC 6303 4.3, 4.4): 32 nibbles each.
        let zeros = "0.".repeat(31);
        let v6_hosts = [format!("0.{zeros}ip6.arpa."), format!("1.{zeros}ip6.arpa.")];
        (ZONES.iter().map(|z| zone_name(z)))
            .chain(v6_hosts.iter().map(|z| zone_name(z)))
            .map(|z| LowerName::new(&z))
            .collect()
    });
    const ZONES: &[&str] = &[
        "10.in-addr.arpa.",
        "16.172.in-addr.arpa.",
        "17.172.in-addr.arpa.",
        "18.172.in-addr.arpa.",
        "19.172.in-addr.arpa.",
        "20.172.in-addr.arpa.",
        "21.172.in-addr.arpa.",
        "22.172.in-addr.arpa.",
        "23.172.in-addr.arpa.",
        "24.172.in-addr.arpa.",
        "25.172.in-addr.arpa.",
        "26.172.in-addr.arpa.",
        "27.172.in-addr.arpa.",
        "28.172.in-addr.arpa.",
        "29.172.in-addr.arpa.",
        "30.172.in-addr.arpa.",
        "31.172.in-addr.arpa.",
        "168.192.in-addr.arpa.",
        "127.in-addr.arpa.",
        "254.169.in-addr.arpa.",
        "0.in-addr.arpa.",
        "18.198.in-addr.arpa.",
        "19.198.in-addr.arpa.",
        "255.255.255.255.in-addr.arpa.",
        // Unique local (fd00::/8) and link-local (fe80::/10) addresses.
        "d.f.ip6.arpa.",
        "8.e.f.ip6.arpa.",
        "9.e.f.ip6.arpa.",
        "a.e.f.ip6.arpa.",
        "b.e.f.ip6.arpa.",
    ];
    // The documentation ranges (TEST-NET-1/2/3 and 2001:db8::/32, which
    // RFC 6303 lists too) are the lab's "public" addresses: their reverse
    // zones come from the topology.
    // Parsed once; most questions are no reverse lookups at all.
    if !ARPA.iter().any(|a| a.zone_of(name)) {
        return None;
    }
    LOCAL.iter().find(|z| z.zone_of(name)).map(Name::from)
}

/// One of the names above, which all parse.
fn zone_name(z: &str) -> Name {
    Name::from_ascii(z).unwrap_or_else(|_| Name::root())
}

/// The SOA a locally served zone answers with (RFC 6303 3).
fn local_soa(zone: &Name) -> Record {
    let soa = SOA::new(
        zone.clone(),
        Name::from_ascii("nobody.invalid.").unwrap_or_default(),
        0,
        604_800,
        86_400,
        2_419_200,
        10_800,
    );
    Record::from_rdata(zone.clone(), 10_800, RData::SOA(soa))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_reverse_lookups_are_local() {
        for (name, local) in [
            ("10.1.0.10.in-addr.arpa.", true),
            ("1.1.168.192.in-addr.arpa.", true),
            ("2.0.18.198.in-addr.arpa.", true),
            ("5.0.16.172.in-addr.arpa.", true),
            ("5.0.32.172.in-addr.arpa.", false),
            ("11.113.0.203.in-addr.arpa.", false),
            (
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
                true,
            ),
            (
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.8.e.f.ip6.arpa.",
                true,
            ),
            (
                "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
                true,
            ),
            (
                "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.1.1.0.8.b.d.0.1.0.0.2.ip6.arpa.",
                false,
            ),
            ("www.example.com.", false),
        ] {
            let n = LowerName::new(&Name::from_ascii(name).expect("name"));
            assert_eq!(locally_served(&n).is_some(), local, "{name}");
        }
    }
}
