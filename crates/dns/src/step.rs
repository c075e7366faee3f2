//! The steps of a traced resolution: what the resolver looked up, whom it
//! asked what, what came back and what it made of it — the walk from the
//! root that textbooks draw, as `scratchnet trace dns` prints it and the
//! lab's trace facility records it.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use std::net::IpAddr;
use std::time::Duration;

/// One step, in the order the resolver took them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The question looked up in the cache.
    Cache {
        name: Name,
        qtype: RecordType,
        hit: bool,
    },
    /// A reverse name in a locally served zone (RFC 6303): NXDOMAIN at
    /// once, never asked upstream.
    LocalZone { zone: Name },
    /// The same question is being resolved already: this one waits for it.
    Joined { name: Name, qtype: RecordType },
    /// The cached answer is about to expire: resolved again in the
    /// background.
    Prefetch { name: Name, qtype: RecordType },
    /// DNS64 (RFC 6147): `name` has no AAAA records, so its A records are
    /// looked up to make AAAA records in `prefix`.
    Dns64 { name: Name, prefix: ipnet::Ipv6Net },
    /// A question sent to a server of `zone`: `name` as sent (in its 0x20
    /// case), `minimised` when it is shorter than the name looked up.
    Ask {
        server: IpAddr,
        zone: Name,
        name: Name,
        qtype: RecordType,
        minimised: bool,
        tcp: bool,
    },
    /// A referral from `server` down to `cut`, its name servers and the
    /// glue addresses kept.
    Referral {
        server: IpAddr,
        rtt: Duration,
        cut: Name,
        servers: Vec<Name>,
        glue: Vec<(Name, IpAddr)>,
    },
    /// Records a server gave outside the zone it serves, not believed.
    OutOfBailiwick {
        server: IpAddr,
        zone: Name,
        names: Vec<Name>,
    },
    /// A minimised question's answer held no zone cut: one label more.
    NoCut { server: IpAddr, rtt: Duration },
    /// The answer: records of the type asked for.
    Answer {
        server: IpAddr,
        rtt: Duration,
        records: Vec<Record>,
    },
    /// A CNAME: the name looked up next.
    Cname { from: Name, to: Name },
    /// NXDOMAIN or NODATA, cached for `negative_ttl` seconds.
    Negative {
        server: IpAddr,
        rtt: Duration,
        nxdomain: bool,
        negative_ttl: Option<u32>,
    },
    /// An error from the server (SERVFAIL, REFUSED...): the next server.
    ServerError {
        server: IpAddr,
        rtt: Duration,
        rcode: ResponseCode,
    },
    /// The answer did not fit in UDP: the same server again over TCP.
    Truncated { server: IpAddr },
    /// A datagram that is not the answer to the question asked (wrong ID,
    /// question, letter case or server, or garbage): ignored.
    Ignored { from: IpAddr },
    /// No answer from `server` in time: the next server.
    Timeout { server: IpAddr },
    /// A delegation without glue: the name server's address is looked up
    /// first.
    Glueless { ns: Name },
    /// Nothing left to ask: SERVFAIL, or a stale answer (RFC 8767).
    Failed { stale: bool },
}

impl Step {
    /// The step's name, for tools.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Cache { hit: true, .. } => "cache-hit",
            Step::Cache { hit: false, .. } => "cache-miss",
            Step::LocalZone { .. } => "local-zone",
            Step::Joined { .. } => "joined",
            Step::Prefetch { .. } => "prefetch",
            Step::Dns64 { .. } => "dns64",
            Step::Ask { .. } => "ask",
            Step::Referral { .. } => "referral",
            Step::OutOfBailiwick { .. } => "out-of-bailiwick",
            Step::NoCut { .. } => "no-zone-cut",
            Step::Answer { .. } => "answer",
            Step::Cname { .. } => "cname",
            Step::Negative { .. } => "negative",
            Step::ServerError { .. } => "server-error",
            Step::Truncated { .. } => "truncated",
            Step::Ignored { .. } => "ignored",
            Step::Timeout { .. } => "timeout",
            Step::Glueless { .. } => "glueless",
            Step::Failed { .. } => "failed",
        }
    }
}

/// A duration as people read round-trip times: `0.42 ms`.
struct Rtt(Duration);

impl std::fmt::Display for Rtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} ms", self.0.as_secs_f64() * 1000.0)
    }
}

fn names(list: &[Name]) -> String {
    list.iter()
        .map(Name::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Cache { name, qtype, hit } => {
                let what = if *hit { "hit" } else { "miss" };
                write!(f, "cache {what}: {name} {qtype}")
            }
            Step::LocalZone { zone } => write!(
                f,
                "{zone} is served locally (RFC 6303): NXDOMAIN, nothing asked upstream"
            ),
            Step::Joined { name, qtype } => {
                write!(f, "{name} {qtype} is being resolved already: waits for it")
            }
            Step::Prefetch { name, qtype } => write!(
                f,
                "{name} {qtype} expires soon: resolving it again in the background"
            ),
            Step::Dns64 { name, prefix } => write!(
                f,
                "{name} has no AAAA: DNS64 makes them from its A records in {prefix}"
            ),
            Step::Ask {
                server,
                zone,
                name,
                qtype,
                minimised,
                tcp,
            } => {
                let over = if *tcp { "TCP" } else { "UDP" };
                let min = if *minimised { " (minimised)" } else { "" };
                write!(
                    f,
                    "ask {server} (for {zone}): {name} {qtype}{min} over {over}"
                )
            }
            Step::Referral {
                server,
                rtt,
                cut,
                servers,
                glue,
            } => {
                write!(
                    f,
                    "{server} in {}: referral to {cut} ({})",
                    Rtt(*rtt),
                    names(servers)
                )?;
                if glue.is_empty() {
                    write!(f, ", no glue")
                } else {
                    let glue: Vec<String> = glue.iter().map(|(n, a)| format!("{n} {a}")).collect();
                    write!(f, ", glue {}", glue.join(", "))
                }
            }
            Step::OutOfBailiwick {
                server,
                zone,
                names: list,
            } => write!(
                f,
                "{server} serves {zone} but gave records for {}: out of bailiwick, ignored",
                names(list)
            ),
            Step::NoCut { server, rtt } => write!(
                f,
                "{server} in {}: no zone cut there, one label more",
                Rtt(*rtt)
            ),
            Step::Answer {
                server,
                rtt,
                records,
            } => {
                let records: Vec<String> = records.iter().map(Record::to_string).collect();
                write!(
                    f,
                    "{server} in {}: answer {}",
                    Rtt(*rtt),
                    records.join("; ")
                )
            }
            Step::Cname { from, to } => write!(f, "{from} is a CNAME for {to}: looking that up"),
            Step::Negative {
                server,
                rtt,
                nxdomain,
                negative_ttl,
            } => {
                let what = if *nxdomain { "NXDOMAIN" } else { "NODATA" };
                write!(f, "{server} in {}: {what}", Rtt(*rtt))?;
                match negative_ttl {
                    Some(ttl) => write!(f, ", cached {ttl} s (SOA minimum)"),
                    None => write!(f, ", no SOA: not cached"),
                }
            }
            Step::ServerError { server, rtt, rcode } => write!(
                f,
                "{server} in {}: {rcode}, trying the next server",
                Rtt(*rtt)
            ),
            Step::Truncated { server } => {
                write!(f, "{server}: answer truncated, asking again over TCP")
            }
            Step::Ignored { from } => write!(
                f,
                "a datagram from {from} is not the answer asked for (ID, question, case or server): ignored"
            ),
            Step::Timeout { server } => {
                write!(f, "no answer from {server} in time: trying the next server")
            }
            Step::Glueless { ns } => write!(
                f,
                "no address known for the name server {ns} (no glue): looking it up first"
            ),
            Step::Failed { stale: false } => write!(f, "no server left to ask: SERVFAIL"),
            Step::Failed { stale: true } => write!(
                f,
                "no server left to ask: answering from the expired cache (RFC 8767)"
            ),
        }
    }
}
