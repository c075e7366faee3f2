//! DNS for the lab, sans-IO: messages in, messages out, no sockets, no
//! clock. Messages, names, records and the RFC 1035 zone-file parser are
//! hickory-proto's; what a server answers is this crate's.
//!
//! * [`Zone`]: one zone's records, from a zone file's text.
//! * [`Authority`]: the zones a server serves, and its answer to a query
//!   (RFC 1034 4.3.2): authoritative answers, referrals with glue, CNAMEs
//!   followed inside the zone, wildcards (RFC 4592), NXDOMAIN and NODATA
//!   with the SOA, REFUSED, FORMERR, NOTIMP, EDNS(0) sizes and truncation.
//! * [`Resolver`]: a caching recursive resolver from root hints, whose
//!   steps a trace can follow ([`Step`]).

mod authority;
mod cache;
pub mod resolver;
mod step;
mod zone;

/// The DNS port, where the resolver sends its queries and expects the
/// answers from.
pub const PORT: u16 = 53;

pub use authority::{truncated, Authority, Transport};
pub use resolver::{
    locally_served, Action, Resolver, ResolverConfig, MAX_SENT, MAX_WAITERS, STALE_MAX,
};
pub use step::Step;
pub use zone::{Scope, Zone, ZoneError};

pub use hickory_proto;
