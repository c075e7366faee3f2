//! Bytes on the wire, shared by every scratchnet crate.
//!
//! Owns the small vocabulary that the switch, the fabric and the devices all
//! speak: [`Instant`] (the lab clock, real or virtual), [`Mac`], the Ethernet
//! and 802.1Q header views in [`ether`], the virtio-net offload header
//! ([`VnetHdr`]) that TAP devices put in front of each frame, the Internet
//! checksum and software segmentation of GSO super-frames ([`offload`]),
//! IPv4 fragmentation ([`fragment`]),
//! link impairment settings ([`impair`]), the VXLAN header ([`vxlan`]) and
//! the one parsed view of an IPv4 or IPv6 packet ([`ip::IpView`]).
//!
//! Never does I/O and never reads a clock: time is always passed in.

pub mod checksum;
pub mod ether;
pub mod fragment;
pub mod frame;
pub mod impair;
pub mod ip;
mod mac;
pub mod offload;
pub mod ratelimit;
mod time;
mod vnet;
pub mod vxlan;

pub use frame::{Frame, FramePool};
pub use impair::{Impairment, LinkDir, LinkFamily};
pub use mac::{Mac, MacParseError};
pub use time::Instant;
pub use vnet::{GsoType, VnetHdr, VNET_HDR_LEN};
