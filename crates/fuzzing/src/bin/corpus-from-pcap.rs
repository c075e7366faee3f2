//! Seeds the fuzz corpus from captures of a running lab:
//!
//! ```text
//! sudo scratchnet capture alice -w alice.pcap      # while using the lab
//! cargo run -p fuzzing --bin corpus-from-pcap -- alice.pcap ...
//! ```
//!
//! Each Ethernet frame becomes an entry of every target it fits (a DHCP
//! frame feeds `dhcp`, a traceroute's Time Exceeded feeds `icmp_quote`,
//! and so on), named by a hash of its bytes, so running it twice adds
//! nothing. Only the first frame of each shape (protocol, TCP flags, ICMP
//! type, service port, size class) is kept: a corpus of distinct cases,
//! not a recording. The reference lab's topology seeds `topology`.

use fuzzing::fixup::ip_offset;
use pcap_file::pcap::PcapReader;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut entries: BTreeMap<&'static str, Vec<Vec<u8>>> = BTreeMap::new();
    entries
        .entry("topology")
        .or_default()
        .push(topology::REFERENCE_LAB.as_bytes().to_vec());
    let mut seen = BTreeSet::new();
    for path in std::env::args().skip(1) {
        let mut reader = PcapReader::new(std::fs::File::open(&path)?)?;
        while let Some(packet) = reader.next_packet() {
            let frame = packet?.data;
            if seen.insert(shape(&frame)) {
                add_frame(&frame, &mut entries);
            }
        }
    }
    let mut added = 0;
    for (target, inputs) in &entries {
        let dir = fuzzing::corpus::dir(target);
        std::fs::create_dir_all(&dir)?;
        for input in inputs {
            let file = dir.join(format!("{:016x}", fnv(input)));
            if !Path::new(&file).exists() {
                std::fs::write(&file, input)?;
                added += 1;
            }
        }
    }
    eprintln!("added {added} corpus entries");
    Ok(())
}

fn add_frame(frame: &[u8], out: &mut BTreeMap<&'static str, Vec<Vec<u8>>>) {
    let mut push = |target: &'static str, v: Vec<u8>| out.entry(target).or_default().push(v);
    push("ethernet", frame.to_vec());
    if frame.get(12..14) == Some(&[0x08, 0x06]) {
        push("arp", frame[14..].to_vec());
        return;
    }
    let Some(ip_at) = ip_offset(frame) else {
        return;
    };
    let ip = &frame[ip_at..];
    let Some(&first) = ip.first() else { return };
    let ihl = usize::from(first & 0x0f) * 4;
    if ip.len() < ihl.max(20) {
        return;
    }
    let proto = ip[9];
    let l4 = &ip[ihl..];
    let record = |control: u8| {
        let mut r = (ip.len() as u16).to_be_bytes().to_vec();
        r.push(control);
        r.extend_from_slice(ip);
        r
    };
    push("router", record(0));
    push("nat", [&[0u8][..], ip].concat());
    push("host_stack", record(0));
    let mut hdr = [0u8; 10];
    if proto == 6 && l4.len() >= 20 {
        // The same frame as a TCP super-frame with a partial checksum.
        hdr[0] = 1;
        hdr[1] = 1;
        hdr[4..6].copy_from_slice(&1448u16.to_ne_bytes());
        hdr[6..8].copy_from_slice(&((ip_at + ihl) as u16).to_ne_bytes());
        hdr[8..10].copy_from_slice(&16u16.to_ne_bytes());
    }
    push("segmenter", [&hdr[..], frame].concat());
    let ports = l4.get(..4).map(|p| {
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    });
    if proto == 17 && matches!(ports, Some((67 | 68, _)) | Some((_, 67 | 68))) && l4.len() > 8 {
        push("dhcp", l4[8..].to_vec());
    }
    if proto == 1 && l4.len() > 8 && matches!(l4[0], 3 | 11 | 12) {
        let kind = match l4[0] {
            3 => 0,
            11 => 3,
            _ => 4,
        };
        push(
            "icmp_quote",
            [&[kind | (l4[1] << 4)][..], &l4[8..]].concat(),
        );
    }
}

/// What makes two frames the same case for a fuzzer.
fn shape(frame: &[u8]) -> (u16, u8, u8, u8, u16, usize) {
    let ethertype = frame
        .get(12..14)
        .map_or(0, |t| u16::from_be_bytes([t[0], t[1]]));
    let Some(ip) = ip_offset(frame).and_then(|at| frame.get(at..)) else {
        let arp_op = frame.get(21).copied().unwrap_or(0);
        return (ethertype, arp_op, 0, 0, 0, frame.len() / 512);
    };
    let ihl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
    let l4 = ip.get(ihl..).unwrap_or_default();
    let port = |i: usize| {
        l4.get(i..i + 2)
            .map_or(0, |p| u16::from_be_bytes([p[0], p[1]]))
    };
    let proto = ip.get(9).copied().unwrap_or(0);
    let (a, b) = match proto {
        6 => (l4.get(13).copied().unwrap_or(0), 0),
        1 => (
            l4.first().copied().unwrap_or(0),
            l4.get(1).copied().unwrap_or(0),
        ),
        // DHCP: the message type (option 53).
        17 if matches!(port(0), 67 | 68) => {
            let options = l4.get(8 + 240..).unwrap_or_default();
            let kind = options
                .windows(3)
                .find(|w| w[..2] == [53, 1])
                .map_or(0, |w| w[2]);
            (kind, 0)
        }
        _ => (0, 0),
    };
    let service = if proto == 1 { 0 } else { port(0).min(port(2)) };
    (ethertype, proto, a, b, service, frame.len() / 512)
}

/// FNV-1a, 64 bits: a stable name for an entry.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
