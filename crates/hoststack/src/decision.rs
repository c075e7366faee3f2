//! What a service host decided about a frame, for `scratchnet trace`.
//!
//! Recorded only while asked ([`crate::Stack::set_trace`]): with no trace,
//! each decision point costs one branch. A service adds its own about the
//! data a traced frame brought ([`crate::Host::trace_note`]).

use std::net::SocketAddr;

/// One decision, in the order the host took them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A fragment: held for reassembly, or the last one of its packet.
    Fragment { reassembled: bool },
    /// To an open connection.
    Connection {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// A SYN to a listening port: a new connection, or why not.
    Listener {
        port: u16,
        refused: Option<&'static str>,
    },
    /// A segment for a pair in TIME-WAIT, answered from the table.
    TimeWait,
    /// To a bound UDP socket.
    Udp { port: u16 },
    /// To the interface itself (no socket): what it answered.
    Interface { answer: &'static str },
    /// A TCP segment whose checksum does not verify.
    BadChecksum,
    /// What the service on the host did with what the frame carried (a
    /// resolver's step, say), named for tools.
    Service { name: &'static str, text: String },
}

impl Decision {
    /// The decision's name in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Fragment { .. } => "fragment",
            Decision::Connection { .. } => "connection",
            Decision::Listener { .. } => "listener",
            Decision::TimeWait => "time-wait",
            Decision::Udp { .. } => "udp-socket",
            Decision::Interface { .. } => "interface",
            Decision::BadChecksum => "bad-checksum",
            Decision::Service { name, .. } => name,
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Fragment { reassembled: false } => write!(f, "fragment held for reassembly"),
            Decision::Fragment { reassembled: true } => {
                write!(f, "last fragment: packet reassembled")
            }
            Decision::Connection { local, remote } => {
                write!(f, "to the connection {local} <- {remote}")
            }
            Decision::Listener {
                port,
                refused: None,
            } => write!(f, "SYN to listener :{port} -> SYN-ACK (new connection)"),
            Decision::Listener {
                port,
                refused: Some(why),
            } => write!(f, "SYN to listener :{port} dropped: {why}"),
            Decision::TimeWait => write!(f, "pair in TIME-WAIT: answered from the table"),
            Decision::Udp { port } => write!(f, "to the UDP socket on :{port}"),
            Decision::Interface { answer } => write!(f, "no socket: {answer}"),
            Decision::BadChecksum => write!(f, "drop: bad TCP checksum"),
            Decision::Service { text, .. } => f.write_str(text),
        }
    }
}

/// What the interface sent in answer to a frame no socket took, read from
/// the frames it appended.
pub(crate) fn answer_of(sent: &[wire::Frame]) -> &'static str {
    use wire::ether::{EthernetHeader, ETHERTYPE_ARP};
    use wire::ip::{Family, IpView, Transport, PROTO_TCP};
    let Some(f) = sent.first() else {
        return "ignored";
    };
    let data = f.data();
    let Ok(eth) = EthernetHeader::parse(data) else {
        return "answered";
    };
    if eth.ethertype == ETHERTYPE_ARP {
        return match data.get(20..22) {
            Some([0, 2]) => "ARP reply",
            _ => "asks ARP for the sender before it can answer",
        };
    }
    let Ok(v) = IpView::parse(data, eth.payload_offset) else {
        return "answered";
    };
    match (v.family, v.transport) {
        (_, Transport::Ports { flags, .. }) if v.proto == PROTO_TCP && flags & 0x04 != 0 => {
            "closed port: RST"
        }
        (Family::V4, Transport::Icmp { ty: 0, .. }) => "echo reply",
        (Family::V4, Transport::Icmp { ty: 3, .. }) => "ICMP destination unreachable",
        (Family::V6, Transport::Icmp { ty: 129, .. }) => "echo reply",
        (Family::V6, Transport::Icmp { ty: 1, .. }) => "ICMPv6 destination unreachable",
        (Family::V6, Transport::Icmp { ty: 136, .. }) => "neighbour advertisement",
        (Family::V6, Transport::Icmp { ty: 135, .. }) => {
            "asks ND for the sender before it can answer"
        }
        _ => "answered",
    }
}
