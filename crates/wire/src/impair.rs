//! Link impairment settings: what `tc netem` does to an interface, in the
//! words the topology file, `scratchnet link` and the fabric all speak.
//!
//! One setter ([`Impairment::set`]) reads every knob from text, so a value
//! means the same in a file and on the command line, and one
//! [`Impairment::check`] says what cannot work. The fabric carries the
//! settings out (fabric's link.rs).

use std::fmt;
use std::time::Duration;

/// Which frames of a port's link an impairment acts on. `Out` is what
/// `tc qdisc add dev eth0 root netem …` in the host would do: the frames
/// the host (or the router interface) sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkDir {
    #[default]
    Out,
    In,
    Both,
}

impl LinkDir {
    pub fn covers_out(self) -> bool {
        matches!(self, LinkDir::Out | LinkDir::Both)
    }

    pub fn covers_in(self) -> bool {
        matches!(self, LinkDir::In | LinkDir::Both)
    }
}

/// Which family's frames an impairment acts on: all, or only IPv4 (with
/// ARP) or only IPv6, so that one family can be broken while the other
/// works (what Happy Eyeballs, RFC 8305, is for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkFamily {
    #[default]
    All,
    Ipv4,
    Ipv6,
}

impl LinkFamily {
    /// Whether the frame is one the setting covers.
    pub fn covers(self, frame: &[u8]) -> bool {
        use crate::ether::{EthernetHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
        let ethertype = || EthernetHeader::parse(frame).map_or(0, |e| e.ethertype);
        match self {
            LinkFamily::All => true,
            LinkFamily::Ipv4 => matches!(ethertype(), ETHERTYPE_IPV4 | ETHERTYPE_ARP),
            LinkFamily::Ipv6 => ethertype() == ETHERTYPE_IPV6,
        }
    }
}

/// How a link mistreats the frames it carries. The default is a perfect
/// link.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Impairment {
    /// Propagation delay added to every frame.
    #[serde(with = "micros")]
    pub delay: Duration,
    /// Each frame's delay is drawn uniformly from `delay ± jitter`; frames
    /// may overtake each other, as with netem.
    #[serde(with = "micros")]
    pub jitter: Duration,
    /// Probability that a frame is lost, 0 to 1.
    pub loss: f64,
    /// Probability that a frame is sent twice.
    pub duplicate: f64,
    /// Probability that a frame skips the delay and overtakes those held
    /// (netem's `reorder`; needs a delay).
    pub reorder: f64,
    /// Bits per second the link carries; frames beyond it queue.
    pub rate: Option<u64>,
    /// Bytes the rate limit may queue before it drops at the tail; by
    /// default 100 ms of the rate, at least 128 KiB.
    pub queue: Option<u64>,
    pub direction: LinkDir,
    pub family: LinkFamily,
}

/// The longest delay or jitter a link may have.
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// A setting that cannot be read or cannot work, in words for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ImpairError {
    pub message: String,
    /// What to write instead.
    pub hint: Option<String>,
}

impl ImpairError {
    fn new(message: impl Into<String>, hint: impl Into<Option<String>>) -> ImpairError {
        ImpairError {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl Impairment {
    /// The names [`Impairment::set`] takes.
    pub const KEYS: &'static [&'static str] = &[
        "delay",
        "jitter",
        "loss",
        "duplicate",
        "reorder",
        "rate",
        "queue",
        "direction",
        "family",
    ];

    /// Whether the link does nothing to frames.
    pub fn is_none(&self) -> bool {
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.loss == 0.0
            && self.duplicate == 0.0
            && self.reorder == 0.0
            && self.rate.is_none()
    }

    /// Whether the settings act on single packets (loss, duplication,
    /// reordering, jitter), so that a GSO super-frame must be cut into the
    /// packets it stands for first.
    pub fn per_packet(&self) -> bool {
        self.loss > 0.0 || self.duplicate > 0.0 || self.reorder > 0.0 || !self.jitter.is_zero()
    }

    /// Bytes the rate limit queues at most.
    pub fn queue_bytes(&self) -> u64 {
        match (self.queue, self.rate) {
            (Some(q), _) => q,
            (None, Some(rate)) => (rate / 8 / 10).max(128 * 1024),
            (None, None) => 0,
        }
    }

    /// Sets one knob from text, as `key = "value"` in a topology file or
    /// `--key value` on the command line: `delay`/`jitter` ("50ms", "1.5s",
    /// "200us"), `loss`/`duplicate`/`reorder` ("1%", "0.1%"), `rate`
    /// ("10mbit", "512kbit", "1gbit"), `queue` (bytes: "64kb", "1mb"),
    /// `direction` ("out", "in", "both"), `family` ("all", "ipv4",
    /// "ipv6").
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ImpairError> {
        let value = value.trim();
        match key {
            "delay" => self.delay = duration(value)?,
            "jitter" => self.jitter = duration(value)?,
            "loss" => self.loss = percent(value)?,
            "duplicate" => self.duplicate = percent(value)?,
            "reorder" => self.reorder = percent(value)?,
            "rate" => self.rate = Some(rate(value)?),
            "queue" => self.queue = Some(bytes(value)?),
            "direction" => self.direction = match value {
                "out" => LinkDir::Out,
                "in" => LinkDir::In,
                "both" => LinkDir::Both,
                _ => return Err(ImpairError::new(
                    format!("`{value}` is not a direction"),
                    "write \"out\" (what the host sends), \"in\" (what it receives) or \"both\""
                        .to_owned(),
                )),
            },
            "family" => {
                self.family = match value {
                    "all" => LinkFamily::All,
                    "ipv4" => LinkFamily::Ipv4,
                    "ipv6" => LinkFamily::Ipv6,
                    _ => {
                        return Err(ImpairError::new(
                            format!("`{value}` is not an address family"),
                            "write \"ipv4\" (with ARP), \"ipv6\" or \"all\"".to_owned(),
                        ))
                    }
                }
            }
            _ => {
                return Err(ImpairError::new(
                    format!("`{key}` is not an impairment"),
                    format!("use one of {}", Impairment::KEYS.join(", ")),
                ))
            }
        }
        Ok(())
    }

    /// What cannot work together.
    pub fn check(&self) -> Result<(), ImpairError> {
        if self.reorder > 0.0 && self.delay.is_zero() {
            return Err(ImpairError::new(
                "reordering needs a delay: reordered frames are the ones sent without it",
                "add a delay, e.g. 10ms".to_owned(),
            ));
        }
        if self.queue.is_some() && self.rate.is_none() {
            return Err(ImpairError::new(
                "a queue only fills behind a rate limit",
                "add a rate, e.g. 10mbit, or remove the queue".to_owned(),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("none");
        }
        let mut parts: Vec<String> = Vec::new();
        if !self.delay.is_zero() {
            parts.push(format!("delay {}", show_duration(self.delay)));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter {}", show_duration(self.jitter)));
        }
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if p > 0.0 {
                parts.push(format!("{name} {}%", p * 100.0));
            }
        }
        if let Some(r) = self.rate {
            parts.push(format!(
                "rate {} (queue {} bytes)",
                show_rate(r),
                self.queue_bytes()
            ));
        }
        let dir = match self.direction {
            LinkDir::Out => "out",
            LinkDir::In => "in",
            LinkDir::Both => "both ways",
        };
        let family = match self.family {
            LinkFamily::All => "",
            LinkFamily::Ipv4 => ", IPv4 only",
            LinkFamily::Ipv6 => ", IPv6 only",
        };
        write!(f, "{} ({dir}{family})", parts.join(", "))
    }
}

/// "50ms", "1.5s", "200us", "0".
pub fn duration(s: &str) -> Result<Duration, ImpairError> {
    let bad = || {
        ImpairError::new(
            format!("`{s}` is not a duration"),
            "write a number and a unit: \"50ms\", \"1.5s\", \"200us\"".to_owned(),
        )
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return Err(bad()),
    };
    let d = Duration::try_from_secs_f64(n * scale).map_err(|_| bad())?;
    if d > MAX_DELAY {
        return Err(ImpairError::new(
            format!("{s} is longer than a link may delay (10s)"),
            None,
        ));
    }
    Ok(d)
}

/// "1%", "0.1%", as a probability.
pub fn percent(s: &str) -> Result<f64, ImpairError> {
    let bad = || {
        ImpairError::new(
            format!("`{s}` is not a percentage from 0% to 100%"),
            "write e.g. \"1%\" or \"0.1%\"".to_owned(),
        )
    };
    let n: f64 = s
        .strip_suffix('%')
        .ok_or_else(bad)?
        .trim()
        .parse()
        .map_err(|_| bad())?;
    if !(0.0..=100.0).contains(&n) {
        return Err(bad());
    }
    Ok(n / 100.0)
}

/// "10mbit", "512kbit", "1gbit", "9600bit", in bits per second.
pub fn rate(s: &str) -> Result<u64, ImpairError> {
    let lower = s.to_ascii_lowercase();
    if lower.ends_with("bps") {
        return Err(ImpairError::new(
            format!("`{s}` is ambiguous: tc reads \"bps\" as bytes per second"),
            format!(
                "write bits per second, e.g. \"{}bit\"",
                lower.trim_end_matches("bps")
            ),
        ));
    }
    let bad = || {
        ImpairError::new(
            format!("`{s}` is not a rate"),
            "write bits per second with a unit: \"10mbit\", \"512kbit\", \"1gbit\"".to_owned(),
        )
    };
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (n, unit) = lower.split_at(split);
    let n: f64 = n.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return Err(bad()),
    };
    let bps = n * scale;
    if !(8_000.0..=100e9).contains(&bps) {
        return Err(ImpairError::new(
            format!("{s} is outside what a link may carry (8kbit to 100gbit)"),
            None,
        ));
    }
    Ok(bps as u64)
}

/// "64kb", "1mb", "20000", in bytes (k and m are 1024 and 1024²).
pub fn bytes(s: &str) -> Result<u64, ImpairError> {
    let lower = s.to_ascii_lowercase();
    let bad = || {
        ImpairError::new(
            format!("`{s}` is not a size from 2kb to 1gb"),
            "write bytes with a unit: \"64kb\", \"1mb\"".to_owned(),
        )
    };
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (n, unit) = lower.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(bad()),
    };
    let v = n.checked_mul(scale).ok_or_else(bad)?;
    if !(2048..=1 << 30).contains(&v) {
        return Err(bad());
    }
    Ok(v)
}

fn show_duration(d: Duration) -> String {
    let us = d.as_micros();
    if !us.is_multiple_of(1000) {
        format!("{us}us")
    } else if !us.is_multiple_of(1_000_000) || us == 0 {
        format!("{}ms", us / 1000)
    } else {
        format!("{}s", us / 1_000_000)
    }
}

fn show_rate(bps: u64) -> String {
    for (unit, scale) in [("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1000)] {
        if bps >= scale && bps.is_multiple_of(scale) {
            return format!("{}{unit}", bps / scale);
        }
    }
    format!("{bps}bit")
}

/// Durations as microseconds in JSON.
mod micros {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_read_as_tc_writes_them() {
        let mut i = Impairment::default();
        for (k, v) in [
            ("delay", "50ms"),
            ("jitter", "500us"),
            ("loss", "1%"),
            ("duplicate", "0.1%"),
            ("reorder", "25%"),
            ("rate", "10mbit"),
            ("direction", "both"),
        ] {
            i.set(k, v).unwrap();
        }
        assert_eq!(i.delay, Duration::from_millis(50));
        assert_eq!(i.jitter, Duration::from_micros(500));
        assert!((i.loss - 0.01).abs() < 1e-12);
        assert!((i.duplicate - 0.001).abs() < 1e-12);
        assert_eq!(i.rate, Some(10_000_000));
        assert_eq!(i.queue_bytes(), 128 * 1024);
        assert!(i.check().is_ok());
        assert_eq!(
            i.to_string(),
            "delay 50ms, jitter 500us, loss 1%, duplicate 0.1%, reorder 25%, rate 10mbit (queue 131072 bytes) (both ways)"
        );
        assert_eq!(duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(rate("1gbit").unwrap(), 1_000_000_000);
        assert_eq!(bytes("64kb").unwrap(), 65536);
    }

    #[test]
    fn mistakes_say_what_to_write() {
        let mut i = Impairment::default();
        let e = i.set("rate", "10mbps").unwrap_err();
        assert_eq!(
            e.message,
            "`10mbps` is ambiguous: tc reads \"bps\" as bytes per second"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("write bits per second, e.g. \"10mbit\"")
        );
        assert!(i.set("loss", "1").is_err());
        assert!(i.set("loss", "101%").is_err());
        assert!(i.set("delay", "50").is_err());
        assert!(i.set("delay", "11s").is_err());
        assert!(i.set("speed", "1").is_err());
        i.set("reorder", "1%").unwrap();
        assert!(i
            .check()
            .unwrap_err()
            .message
            .starts_with("reordering needs a delay"));
    }
}
