//! One zone: its records by owner and type, read from RFC 1035 zone-file
//! text with hickory-proto's parser; and its views, records that answer
//! instead for askers in some networks (GeoDNS: each region's resolvers
//! get their nearest server's address).

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

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
    #[error("{name} {ty} has no record in zone {zone} for the askers no view takes")]
    ViewWithoutDefault {
        name: String,
        ty: RecordType,
        zone: String,
    },
    #[error("a view names no networks of askers")]
    ViewWithoutClients,
}

/// For whom an answer holds, as an EDNS Client Subnet scope tells it
/// (RFC 7871 7.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// No view has the name and type: every asker gets the same.
    Everyone,
    /// A view's network of this prefix length chose it.
    View(u8),
    /// Views have the name and type, but none holds the asker.
    NoView,
}

/// Records by owner and type.
type Records = BTreeMap<(LowerName, RecordType), Vec<Record>>;

/// Records that answer instead of the zone's for askers in `clients`.
#[derive(Debug, Clone)]
struct View {
    clients: Vec<IpNet>,
    records: Records,
}

/// A zone's records. Names are compared case-insensitively.
#[derive(Debug, Clone)]
pub struct Zone {
    origin: LowerName,
    records: Records,
    views: Vec<View>,
    /// Every owner name and every name between one and the apex (empty
    /// non-terminals exist too: RFC 4592 2.2.2).
    names: BTreeSet<LowerName>,
}

impl Zone {
    /// Parses zone-file text for `origin` (`$ORIGIN` and relative names
    /// resolve against it).
    pub fn parse(origin: &str, text: &str) -> Result<Zone, ZoneError> {
        let name = Name::from_ascii(origin).map_err(|_| ZoneError::BadOrigin(origin.to_owned()))?;
        let (origin, records) = parse_records(text, name)?;
        let mut zone = Zone::empty(&origin);
        let origin = LowerName::new(&origin);
        for record in records {
            zone.insert(record)?;
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
            views: Vec::new(),
            names: BTreeSet::new(),
        }
    }

    /// Adds a view: askers in `clients` get the records of `text` (zone-file
    /// text, names relative to the origin) instead of the zone's of the
    /// same owner and type, which must exist (every other asker needs an
    /// answer too). Where several views hold an asker, the one with the
    /// longest matching network wins.
    pub fn add_view(&mut self, clients: Vec<IpNet>, text: &str) -> Result<(), ZoneError> {
        if clients.is_empty() {
            return Err(ZoneError::ViewWithoutClients);
        }
        let (_, records) = parse_records(text, Name::from(&self.origin))?;
        let mut view = View {
            clients,
            records: BTreeMap::new(),
        };
        for record in records {
            let owner = LowerName::new(&record.name);
            let ty = record.record_type();
            if self.rrset(&owner, ty).is_none() {
                return Err(ZoneError::ViewWithoutDefault {
                    name: owner.to_string(),
                    ty,
                    zone: self.origin.to_string(),
                });
            }
            view.records.entry((owner, ty)).or_default().push(record);
        }
        self.views.push(view);
        Ok(())
    }

    /// The records of one owner and type for an asker at `asker` (the
    /// resolver's address, or the client subnet it sent), and for whom
    /// else they hold.
    pub fn rrset_for(
        &self,
        name: &LowerName,
        ty: RecordType,
        asker: Option<IpAddr>,
    ) -> Option<(&[Record], Scope)> {
        let key = (name.clone(), ty);
        let mut varies = false;
        let mut best: Option<(&[Record], u8)> = None;
        for view in &self.views {
            let Some(records) = view.records.get(&key) else {
                continue;
            };
            varies = true;
            let matched = asker.and_then(|a| {
                view.clients
                    .iter()
                    .filter(|n| n.contains(&a))
                    .map(IpNet::prefix_len)
                    .max()
            });
            if let Some(len) = matched.filter(|&l| best.is_none_or(|(_, b)| l > b)) {
                best = Some((records.as_slice(), len));
            }
        }
        if let Some((records, len)) = best {
            return Some((records, Scope::View(len)));
        }
        let scope = if varies {
            Scope::NoView
        } else {
            Scope::Everyone
        };
        self.rrset(name, ty).map(|r| (r, scope))
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

/// The records of zone-file `text` whose relative names are below `origin`.
fn parse_records(text: &str, origin: Name) -> Result<(Name, Vec<Record>), ZoneError> {
    let (origin, sets) = Parser::new(text, None, Some(origin))
        .parse()
        .map_err(|e| ZoneError::Parse(e.to_string()))?;
    let records = sets
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .collect();
    Ok((origin, records))
}
