//! One zone: its records by owner and type, read from RFC 1035 zone-file
//! text with hickory-proto's parser.

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use std::collections::{BTreeMap, BTreeSet};

/// What is wrong with a zone's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    #[error("`{0}` is not a domain name")]
    BadOrigin(String),
    #[error("{0}")]
    Parse(String),
    #[error("zone {0} has no SOA record")]
    NoSoa(String),
    #[error("zone {0} has no NS record at its apex")]
    NoNs(String),
    #[error("{name} is not in zone {zone}")]
    OutOfZone { name: String, zone: String },
}

/// A zone's records. Names are compared case-insensitively.
#[derive(Debug, Clone)]
pub struct Zone {
    origin: LowerName,
    records: BTreeMap<(LowerName, RecordType), Vec<Record>>,
    /// Every owner name and every name between one and the apex (empty
    /// non-terminals exist too: RFC 4592 2.2.2).
    names: BTreeSet<LowerName>,
}

impl Zone {
    /// Parses zone-file text for `origin` (`$ORIGIN` and relative names
    /// resolve against it).
    pub fn parse(origin: &str, text: &str) -> Result<Zone, ZoneError> {
        let name = Name::from_ascii(origin).map_err(|_| ZoneError::BadOrigin(origin.to_owned()))?;
        let (origin, sets) = Parser::new(text, None, Some(name))
            .parse()
            .map_err(|e| ZoneError::Parse(e.to_string()))?;
        let origin = LowerName::new(&origin);
        let mut zone = Zone {
            origin: origin.clone(),
            records: BTreeMap::new(),
            names: BTreeSet::new(),
        };
        for (key, set) in sets {
            if !origin.zone_of(&key.name) {
                return Err(ZoneError::OutOfZone {
                    name: key.name.to_string(),
                    zone: origin.to_string(),
                });
            }
            let records: Vec<Record> = set.records_without_rrsigs().cloned().collect();
            let mut n = Name::from(&key.name);
            loop {
                zone.names.insert(LowerName::new(&n));
                if LowerName::new(&n) == origin || n.is_root() {
                    break;
                }
                n = n.base_name();
            }
            zone.records.insert((key.name, key.record_type), records);
        }
        if zone.rrset(&origin, RecordType::SOA).is_none() {
            return Err(ZoneError::NoSoa(origin.to_string()));
        }
        if zone.rrset(&origin, RecordType::NS).is_none() {
            return Err(ZoneError::NoNs(origin.to_string()));
        }
        Ok(zone)
    }

    pub fn origin(&self) -> &LowerName {
        &self.origin
    }

    /// The records of one owner and type.
    pub fn rrset(&self, name: &LowerName, ty: RecordType) -> Option<&[Record]> {
        self.records
            .get(&(name.clone(), ty))
            .map(Vec::as_slice)
            .filter(|r| !r.is_empty())
    }

    /// Every record set at `name`.
    pub fn all_at(&self, name: &LowerName) -> Vec<&Record> {
        self.records
            .range((name.clone(), RecordType::Unknown(0))..)
            .take_while(|((n, _), _)| n == name)
            .flat_map(|(_, r)| r.iter())
            .collect()
    }

    /// Whether `name` exists in the zone (records, or names below it).
    pub fn exists(&self, name: &LowerName) -> bool {
        self.names.contains(name)
    }

    /// The SOA record.
    pub fn soa(&self) -> Option<&Record> {
        self.rrset(&self.origin, RecordType::SOA)?.first()
    }

    /// The TTL of negative answers (RFC 2308 5: the lesser of the SOA's
    /// TTL and its minimum field).
    pub fn negative_ttl(&self) -> u32 {
        match self.soa() {
            Some(r) => match &r.data {
                RData::SOA(soa) => r.ttl.min(soa.minimum),
                _ => r.ttl,
            },
            None => 0,
        }
    }

    /// The zone cut at or above `name` (below the apex), if `name` is in a
    /// delegated part: the cut's name and its NS records.
    pub fn delegation(&self, name: &LowerName) -> Option<(LowerName, &[Record])> {
        // From just below the apex down towards `name`: the first cut wins.
        let depth = name.num_labels();
        let apex = self.origin.num_labels();
        (apex + 1..=depth).find_map(|labels| {
            let cut = LowerName::new(&Name::from(name).trim_to(usize::from(labels)));
            self.rrset(&cut, RecordType::NS).map(|ns| (cut, ns))
        })
    }

    /// The names between `name` and the apex that exist, closest first: the
    /// closest encloser is the first.
    pub fn closest_encloser(&self, name: &LowerName) -> LowerName {
        let mut n = Name::from(name);
        loop {
            let lower = LowerName::new(&n);
            if self.exists(&lower) || lower == self.origin || n.is_root() {
                return lower;
            }
            n = n.base_name();
        }
    }
}
