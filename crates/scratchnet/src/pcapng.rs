//! Captures as Wireshark and tcpdump read them: pcapng with one interface
//! per port, named after it, and each packet's direction; or classic pcap
//! for one port, for tools that want it.
//!
//! Directions are the port's, seen from the lab's side of the cable:
//! inbound is what the host (or router interface) sent into the lab,
//! outbound what the lab delivered to it.

use anyhow::Result;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

const SNAPLEN: u32 = 262_144;

/// pcapng's epb_flags: bits 0-1 are the direction.
const INBOUND: u32 = 0b01;
const OUTBOUND: u32 = 0b10;

/// Writes captured frames in the format asked for.
pub enum CaptureWriter<W: Write> {
    Pcap(PcapWriter<W>),
    PcapNg(PcapNgWriter<W>),
}

impl<W: Write> std::fmt::Debug for CaptureWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CaptureWriter::Pcap(_) => "CaptureWriter::Pcap",
            CaptureWriter::PcapNg(_) => "CaptureWriter::PcapNg",
        })
    }
}

fn datalink(link: &str) -> DataLink {
    match link {
        "raw" => DataLink::RAW,
        _ => DataLink::ETHERNET,
    }
}

impl<W: Write> CaptureWriter<W> {
    /// Starts the file: for pcapng, an interface for each of `ports`,
    /// whose link types are `links` ("ethernet" or "raw").
    pub fn new(out: W, ports: &[String], links: &[String], pcap: bool) -> Result<Self> {
        if pcap {
            let header = PcapHeader {
                snaplen: SNAPLEN,
                datalink: datalink(links.first().map_or("ethernet", String::as_str)),
                ..Default::default()
            };
            return Ok(CaptureWriter::Pcap(PcapWriter::with_header(out, header)?));
        }
        let mut w = PcapNgWriter::new(out)?;
        for (port, link) in ports.iter().zip(links) {
            w.write_pcapng_block(InterfaceDescriptionBlock {
                linktype: datalink(link),
                snaplen: SNAPLEN,
                options: vec![
                    InterfaceDescriptionOption::IfName(Cow::Borrowed(port)),
                    InterfaceDescriptionOption::IfDescription(Cow::Owned(format!(
                        "scratchnet port {port}"
                    ))),
                    // pcap-file writes packet times in nanoseconds.
                    InterfaceDescriptionOption::IfTsResol(9),
                ],
            })?;
        }
        Ok(CaptureWriter::PcapNg(w))
    }

    /// One frame seen on port number `port` (its place in the list given
    /// to [`CaptureWriter::new`]) at `at` since the Unix epoch.
    pub fn write(&mut self, port: u32, at: Duration, inbound: bool, data: &[u8]) -> Result<()> {
        match self {
            CaptureWriter::Pcap(w) => {
                w.write_packet(&PcapPacket::new(at, data.len() as u32, data))?;
            }
            CaptureWriter::PcapNg(w) => {
                let flags = if inbound { INBOUND } else { OUTBOUND };
                w.write_pcapng_block(EnhancedPacketBlock {
                    interface_id: port,
                    timestamp: at,
                    original_len: data.len() as u32,
                    data: Cow::Borrowed(data),
                    options: vec![EnhancedPacketOption::Flags(flags)],
                })?;
            }
        }
        Ok(())
    }
}
