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
        let mut zone = Zone::empty(&origin);
        let origin = LowerName::new(&origin);
        for set in sets.into_values() {
            for record in set.records_without_rrsigs() {
                zone.insert(record.clone())?;
            }
        }
        if zone.rrset(&origin, RecordType::SOA).is_none() {
            return Err(ZoneError::NoSoa(origin.to_string()));
        }
        if zone.rrset(&origin, RecordType::NS).is_none() {
            return Err(ZoneError::NoNs(origin.to_string()));
        }
        Ok(zone)
    }

    /// A zone with no records yet (give it an SOA and NS with
    /// [`Zone::insert`]).
    pub fn empty(origin: &Name) -> Zone {
        Zone {
            origin: LowerName::new(origin),
            records: BTreeMap::new(),
            names: BTreeSet::new(),
        }
    }

    /// Every record of the zone.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values().flatten()
    }

    /// Adds one record (a generated one: a delegation, a PTR).
    pub fn insert(&mut self, record: Record) -> Result<(), ZoneError> {
        let owner = LowerName::new(&record.name);
        if !self.origin.zone_of(&owner) {
            return Err(ZoneError::OutOfZone {
                name: owner.to_string(),
                zone: self.origin.to_string(),
            });
        }
        let mut n = Name::from(&owner);
        while self.names.insert(LowerName::new(&n)) && LowerName::new(&n) != self.origin {
            n = n.base_name();
        }
        self.records
            .entry((owner, record.record_type()))
            .or_default()
            .push(record);
        Ok(())
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
