//! Fuzzing scratchnet's wire parsers, two ways, from one set of targets.
//!
//! * [`targets`]: one function of raw bytes per parser that reads the
//!   wire (Ethernet and 802.1Q, the virtio header and segmenter, IPv4 with
//!   options, ARP, ICMP quotes, DHCP, NAT both ways, the service host's
//!   flow classifier, the topology loader). The input is made into what
//!   the wire would carry, checksums valid ([`fixup`]), so the fuzzer
//!   reaches the parsers behind the checksum checks. cargo-fuzz runs them
//!   from `fuzz/` (nightly); this crate's tests run them on stable over the
//!   committed corpus (`fuzz/corpus/TARGET/`) and seeded mutations of it.
//! * [`services`]: the service layer (the host stack's sockets, every
//!   service kind) driven by a script of client moves: connections with
//!   any bytes, resets, half-closes, datagrams from any port.
//! * [`sim`]: a structure-aware fuzzer that sends seeded frames with valid
//!   checksums and valid or invalid virtio headers through a whole
//!   simulated lab ([`lab`]) and checks its invariants after every burst.
//!
//! docs/security.md says how to run each for longer.

pub mod corpus;
pub mod fixup;
pub mod lab;
pub mod services;
pub mod sim;
pub mod targets;
