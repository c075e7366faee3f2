//! Tracing: every decision the fabric's nodes take on the frames a trace
//! follows, hop by hop, as records a person or a tool can read.
//!
//! A trace session follows the frames that enter at one port (or any) and
//! match a [`Filter`]. Each such frame gets an id at ingress ([`Frame::trace`]);
//! the switches, routers and the egress path add [`Event`]s to its record as
//! it goes, and a frame a router makes in answer (an ICMP error, an ARP
//! request, a DHCP reply) gets a record of its own naming its cause. At the
//! end of the run the records go to the sessions' sinks. With no session,
//! the fabric pays one branch per hop.

use crate::filter::{Filter, Headers};
use crate::PortId;
use router::Decision;
use std::collections::HashMap;
use std::time::Duration;
use wire::{Frame, Instant};

/// What one node did with a frame.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// The switch, router or port.
    pub node: String,
    #[serde(flatten)]
    pub what: What,
}

/// The kinds of event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum What {
    /// A switch forwarded the frame to these ports; `learned`: the source
    /// MAC was new or moved, on the ingress port.
    Switched {
        learned: Option<String>,
        to: Vec<String>,
        flooded: bool,
    },
    /// A switch dropped it.
    SwitchDrop { reason: &'static str },
    /// A router decided.
    Router(Decision),
    /// The frame left the fabric by this port (a host's TAP, a TUN, a
    /// service host); `egress` says what the egress path does to it.
    Delivered {
        #[serde(skip_serializing_if = "Option::is_none")]
        egress: Option<String>,
    },
    /// A service host decided (`decision` names it for tools).
    Host {
        decision: &'static str,
        text: String,
    },
    /// An impaired link did something to it.
    Link(LinkEvent),
}

/// What an impaired link did to a frame.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "link", rename_all = "kebab-case")]
pub enum LinkEvent {
    /// Held this long (the delay, or the rate limit's queue).
    Delayed {
        micros: u64,
    },
    Dropped {
        reason: &'static str,
    },
    Duplicated,
    /// Sent on at once, ahead of frames the link holds.
    Reordered,
    /// A super-frame cut into packets, each with a fate of its own.
    Cut {
        packets: usize,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, text) = match &self.what {
            What::Switched {
                learned,
                to,
                flooded,
            } => {
                let mut t = String::new();
                if let Some(port) = learned {
                    t += &format!("learned the source on {port}; ");
                }
                if *flooded {
                    t += &format!("flooded to {}", to.join(", "));
                } else {
                    t += &format!("to {} (MAC table)", to.join(", "));
                }
                ("switch", t)
            }
            What::SwitchDrop { reason } => ("switch", format!("drop: {reason}")),
            What::Router(d) => {
                let kind = match d {
                    Decision::Nat { .. } | Decision::Nat64 { .. } => "nat",
                    Decision::ArpWait { next_hop, .. } if next_hop.is_ipv6() => "nd",
                    Decision::ArpWait { .. } | Decision::ArpReply { .. } => "arp",
                    Decision::NeighbourAdvert { .. } => "nd",
                    Decision::IcmpError { .. } | Decision::EchoReply { .. } => "icmp",
                    Decision::Firewall { .. } => "filter",
                    Decision::Dhcp { .. } => "dhcp",
                    _ => "router",
                };
                (kind, d.to_string())
            }
            What::Delivered { egress: None } => ("out", "delivered".to_owned()),
            What::Delivered { egress: Some(how) } => ("out", format!("delivered, {how}")),
            What::Host { text, .. } => ("host", text.clone()),
            What::Link(e) => (
                "link",
                match e {
                    LinkEvent::Delayed { micros } => {
                        format!("delayed {:.1} ms", *micros as f64 / 1000.0)
                    }
                    LinkEvent::Dropped { reason } => format!("dropped: {reason}"),
                    LinkEvent::Duplicated => "duplicated".to_owned(),
                    LinkEvent::Reordered => "sent ahead of the frames held (reorder)".to_owned(),
                    LinkEvent::Cut { packets } => {
                        format!("cut into {packets} packets, each impaired on its own")
                    }
                },
            ),
        };
        write!(f, "{kind:<6} {:<14} {text}", self.node)
    }
}

/// What the egress path does to a frame leaving by a port that takes
/// offloads (`offload`) or not: nothing, or what, as the trace says it.
pub(crate) fn egress_of(offload: bool, frame: &Frame) -> What {
    let hdr = frame.hdr;
    let egress = if !hdr.needs_work() {
        None
    } else if offload {
        Some(if hdr.is_gso() {
            "as one super-frame (the port takes offloads)".to_owned()
        } else {
            "its checksum left for the port to finish".to_owned()
        })
    } else if hdr.is_gso() && hdr.gso_size > 0 {
        let headers = usize::from(hdr.csum_start) + 20;
        let segments = frame
            .len()
            .saturating_sub(headers)
            .div_ceil(usize::from(hdr.gso_size));
        Some(format!(
            "cut into {segments} segments of {} bytes (the port takes no offloads)",
            hdr.gso_size
        ))
    } else {
        Some("its checksum completed (the port takes no offloads)".to_owned())
    };
    What::Delivered { egress }
}

/// One traced frame, and everything done to it in one run of the fabric.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceRecord {
    pub frame: u64,
    /// The frame this one answers (an ICMP error's cause, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<u64>,
    /// Where it entered: a port, or the node that made it.
    pub from: String,
    pub summary: String,
    pub events: Vec<Event>,
    /// A what-if run (`--inject`): nothing of it happened.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub what_if: bool,
}

impl std::fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what_if = if self.what_if { "what if: " } else { "" };
        let (frame, from, summary) = (self.frame, &self.from, &self.summary);
        match self.cause {
            Some(c) => writeln!(f, "{what_if}#{frame} {from} (answering #{c}) -> {summary}")?,
            None => writeln!(f, "{what_if}#{frame} {from} -> {summary}")?,
        }
        for e in &self.events {
            let line = e.to_string();
            if self.what_if {
                // Nothing was created or sent: say what would have been.
                let line = line
                    .replace("(new mapping)", "(would create a mapping)")
                    .replace("delivered", "would be delivered");
                writeln!(f, "  {line}")?;
            } else {
                writeln!(f, "  {line}")?;
            }
        }
        Ok(())
    }
}

/// A sink that keeps records for whoever holds a clone (what-if runs,
/// tests).
#[derive(Debug, Clone, Default)]
pub struct Recorded(std::sync::Arc<std::sync::Mutex<Vec<TraceRecord>>>);

impl Recorded {
    /// The records so far, taken.
    pub fn take(&self) -> Vec<TraceRecord> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl TraceSink for Recorded {
    fn record(&mut self, record: &TraceRecord) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record.clone());
    }

    fn is_open(&self) -> bool {
        true
    }
}

/// Where a session's records go.
pub trait TraceSink: Send {
    fn record(&mut self, record: &TraceRecord);
    /// False once nobody reads: the session ends.
    fn is_open(&self) -> bool;
}

struct Session {
    port: Option<PortId>,
    filter: Filter,
    sink: Box<dyn TraceSink>,
    /// Frames still to follow, if counted.
    remaining: Option<u64>,
    /// When the last counted frame was followed: the session stays open
    /// for [`GRACE`] after, for what service hosts report late.
    done_at: Option<Instant>,
}

/// How long a counted session waits, after its last frame, for events that
/// come late (a service host handles its frames in its own task).
pub(crate) const GRACE: Duration = Duration::from_millis(100);

/// Ids of frames traced recently, and the sessions following each: frames
/// that wait (for ARP) come back in a later run.
const REMEMBERED: usize = 4096;

/// The records of one run through the fabric, each with the sessions
/// (a bit each) it goes to. Every run keeps its own, so runs on other
/// threads never split its records.
pub(crate) type Records = Vec<(u64, TraceRecord)>;

/// The trace sessions of a fabric.
#[derive(Default)]
pub(crate) struct Tracer {
    /// Slots (at most 64, a bit each in `followers`); a closed session's
    /// slot is empty until a new one takes it.
    sessions: Vec<Option<Session>>,
    next_id: u64,
    /// Which sessions (a bit each) follow a frame id, and its summary.
    followers: HashMap<u64, (u64, String)>,
    /// How long beyond [`GRACE`] frames may stay on impaired links.
    linger: Duration,
}

impl Tracer {
    pub(crate) fn add(
        &mut self,
        port: Option<PortId>,
        filter: Filter,
        count: Option<u64>,
        sink: Box<dyn TraceSink>,
    ) -> bool {
        let session = Session {
            port,
            filter,
            sink,
            remaining: count,
            done_at: None,
        };
        let slot = match self.sessions.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.sessions.len() < 64 => {
                self.sessions.push(None);
                self.sessions.len() - 1
            }
            None => return false,
        };
        // Frames the slot's last session followed are not the new one's.
        for (m, _) in self.followers.values_mut() {
            *m &= !(1 << slot);
        }
        self.sessions[slot] = Some(session);
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sessions.iter().all(Option::is_none)
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn follow(&mut self, id: u64, sessions: u64, summary: &str) {
        if self.followers.len() >= REMEMBERED {
            self.followers.clear();
        }
        self.followers.insert(id, (sessions, summary.to_owned()));
    }

    /// A frame entering at `port`: traced if a session wants it, or if it
    /// answers a traced frame (an endpoint set [`Frame::trace`] to that
    /// frame's id: a service host's answer to a traced datagram).
    /// `l3`: the port carries IP packets (a TUN), not Ethernet frames.
    pub(crate) fn ingress(
        &mut self,
        records: &mut Records,
        port: PortId,
        port_name: &str,
        l3: bool,
        frame: &mut Frame,
    ) {
        let cause = std::mem::take(&mut frame.trace);
        let following = match cause {
            0 => 0,
            c => self.followers.get(&c).map_or(0, |(m, _)| *m),
        };
        let headers = if l3 {
            Headers::of_ip(frame.data())
        } else {
            Headers::of(frame.data())
        };
        let mut wanted = following;
        for (i, slot) in self.sessions.iter_mut().enumerate() {
            let Some(s) = slot else { continue };
            let counted_out = s.remaining == Some(0);
            let new = following & (1 << i) == 0;
            if new && !counted_out && s.port.is_none_or(|p| p == port) && s.filter.matches(&headers)
            {
                wanted |= 1 << i;
                if let Some(n) = &mut s.remaining {
                    *n -= 1;
                }
            }
        }
        if wanted == 0 {
            return;
        }
        let id = self.id();
        frame.trace = id;
        let summary = headers.summary(frame.len());
        self.follow(id, wanted, &summary);
        records.push((
            wanted,
            TraceRecord {
                frame: id,
                cause: (following != 0).then_some(cause),
                from: port_name.to_owned(),
                summary,
                events: Vec::new(),
                what_if: false,
            },
        ));
    }

    /// A frame a node made in answer to traced frame `cause`: it gets an
    /// id and a record of its own.
    pub(crate) fn answer(
        &mut self,
        records: &mut Records,
        cause: u64,
        node: &str,
        frame: &mut Frame,
    ) {
        let sessions = self.followers.get(&cause).map_or(0, |(m, _)| *m);
        if sessions == 0 {
            return;
        }
        let id = self.id();
        frame.trace = id;
        let summary = Headers::of(frame.data()).summary(frame.len());
        self.follow(id, sessions, &summary);
        records.push((
            sessions,
            TraceRecord {
                frame: id,
                cause: Some(cause),
                from: node.to_owned(),
                summary,
                events: Vec::new(),
                what_if: false,
            },
        ));
    }

    /// Adds an event to traced frame `id`'s record (a frame that waited
    /// since an earlier run gets its record back).
    pub(crate) fn event(&self, records: &mut Records, id: u64, node: &str, what: What) {
        let event = Event {
            node: node.to_owned(),
            what,
        };
        if let Some((_, r)) = records.iter_mut().rev().find(|(_, r)| r.frame == id) {
            r.events.push(event);
            return;
        }
        let Some((sessions, summary)) = self.followers.get(&id).cloned() else {
            return;
        };
        records.push((
            sessions,
            TraceRecord {
                frame: id,
                cause: None,
                from: "(continued)".to_owned(),
                summary,
                events: vec![event],
                what_if: false,
            },
        ));
    }

    /// Hands the run's records to their sessions; ends sessions that are
    /// closed, or that followed their count [`GRACE`] ago.
    pub(crate) fn flush(&mut self, records: &mut Records, now: Instant) {
        for (sessions, record) in records.drain(..) {
            for (i, slot) in self.sessions.iter_mut().enumerate() {
                if let Some(s) = slot.as_mut().filter(|_| sessions & (1 << i) != 0) {
                    s.sink.record(&record);
                }
            }
        }
        for slot in &mut self.sessions {
            let Some(s) = slot else { continue };
            if s.remaining == Some(0) && s.done_at.is_none() {
                s.done_at = Some(now);
            }
            if !s.sink.is_open() || s.done_at.is_some_and(|t| now >= t + GRACE + self.linger) {
                *slot = None;
            }
        }
    }

    /// Keeps counted-out sessions open `linger` longer, for frames that
    /// impaired links hold.
    pub(crate) fn set_linger(&mut self, linger: Duration) {
        self.linger = linger;
    }

    /// When a counted-out session is due to end.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.sessions
            .iter()
            .flatten()
            .filter_map(|s| s.done_at)
            .map(|t| t + GRACE + self.linger)
            .min()
    }
}
