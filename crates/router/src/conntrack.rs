//! Connection tracking shared by the NAT (IPv4) and the CPE firewall
//! (IPv6): the protocols tracked, TCP's state as a middlebox sees it
//! (RFC 5382, RFC 6092), how long each state lives idle, and a session.

use std::time::Duration;
use wire::Instant;

/// The transport protocols connection tracking follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMP queries; the echo identifier plays the port.
    Icmp,
}

impl Proto {
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub udp: Duration,
    pub tcp_established: Duration,
    pub tcp_transitory: Duration,
    pub icmp: Duration,
}

impl Timeouts {
    /// How long a session in this state lives without traffic.
    pub(crate) fn of(&self, proto: Proto, tcp: Option<TcpState>) -> Duration {
        match (proto, tcp) {
            (Proto::Udp, _) => self.udp,
            (Proto::Icmp, _) => self.icmp,
            (Proto::Tcp, Some(TcpState::Established)) => self.tcp_established,
            (Proto::Tcp, _) => self.tcp_transitory,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            udp: Duration::from_secs(300),
            tcp_established: Duration::from_secs(7440),
            tcp_transitory: Duration::from_secs(240),
            icmp: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpState {
    SynSent,
    /// Inbound SYN (a port forward, or simultaneous open).
    SynReceived,
    Established,
    /// FIN seen from one side (`true`: from inside).
    Closing {
        fin_in: bool,
        fin_out: bool,
    },
    TimeWait,
    Reset,
}

impl TcpState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TcpState::SynSent => "syn-sent",
            TcpState::SynReceived => "syn-received",
            TcpState::Established => "established",
            TcpState::Closing { .. } => "closing",
            TcpState::TimeWait => "time-wait",
            TcpState::Reset => "reset",
        }
    }
}

pub(crate) const SYN: u8 = 0x02;
pub(crate) const FIN: u8 = 0x01;
pub(crate) const RST: u8 = 0x04;
pub(crate) const ACK: u8 = 0x10;

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) tcp: Option<TcpState>,
    pub(crate) created: Instant,
    pub(crate) expires: Instant,
}

/// The TCP state after a segment with `flags` in one direction.
pub(crate) fn advance_tcp(
    proto: Proto,
    state: Option<TcpState>,
    flags: u8,
    outbound: bool,
) -> Option<TcpState> {
    if proto != Proto::Tcp {
        return None;
    }
    use TcpState::*;
    let syn = flags & SYN != 0;
    let ack = flags & ACK != 0;
    let next = if flags & RST != 0 {
        Reset
    } else {
        match state {
            None | Some(Reset) | Some(TimeWait) if syn && !ack => {
                if outbound {
                    SynSent
                } else {
                    SynReceived
                }
            }
            None => {
                if outbound {
                    SynSent
                } else {
                    SynReceived
                }
            }
            Some(SynSent) if !outbound && syn && ack => Established,
            Some(SynSent) if !outbound && syn => SynReceived, // simultaneous open
            Some(SynReceived) if ack && !syn => Established,
            Some(SynReceived) if outbound && syn && ack => SynReceived,
            Some(s @ (SynSent | SynReceived)) => s,
            Some(Established) if flags & FIN != 0 => Closing {
                fin_in: !outbound,
                fin_out: outbound,
            },
            Some(Closing { fin_in, fin_out }) => {
                let (fin_in, fin_out) = (
                    fin_in || (!outbound && flags & FIN != 0),
                    fin_out || (outbound && flags & FIN != 0),
                );
                if fin_in && fin_out {
                    TimeWait
                } else {
                    Closing { fin_in, fin_out }
                }
            }
            Some(s) => s,
        }
    };
    Some(next)
}
