//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

/// One's-complement sum of `data` as big-endian 16-bit words, added to
/// `initial`, not folded. An odd trailing byte is padded with zero.
pub fn sum(initial: u64, data: &[u8]) -> u64 {
    let mut acc = initial;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc = acc.wrapping_add(w >> 32).wrapping_add(w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = rest.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a wide one's-complement sum into 16 bits (not complemented).
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum to store in a header: the complement of the folded sum.
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// The IPv4 or IPv6 pseudo-header sum for a transport checksum.
pub fn pseudo_header(src: &[u8], dst: &[u8], protocol: u8, length: u32) -> u64 {
    let acc = sum(sum(0, src), dst);
    acc + u64::from(protocol) + u64::from(length >> 16) + u64::from(length & 0xffff)
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit field changes from
/// `old` to `new`, without touching the rest of the data.
pub fn update(check: u16, old: u16, new: u16) -> u16 {
    finish(u64::from(!check) + u64::from(!old) + u64::from(new))
}

/// [`update`] for a field of whole 16-bit words (an IPv4 or IPv6
/// address) given as bytes of equal, even length.
pub fn update_bytes(check: u16, old: &[u8], new: &[u8]) -> u16 {
    old.chunks_exact(2)
        .zip(new.chunks_exact(2))
        .fold(check, |c, (o, n)| {
            update(
                c,
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([n[0], n[1]]),
            )
        })
}

/// [`update_bytes`] for an IPv4 address.
pub fn update_addr(check: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    update_bytes(check, &old, &new)
}

/// The same change applied to a *partial* transport checksum (a frame with
/// NEEDS_CSUM), which holds the folded pseudo-header sum, not its
/// complement: only pseudo-header fields (addresses) enter it.
pub fn update_partial_bytes(partial: u16, old: &[u8], new: &[u8]) -> u16 {
    let words = |b: &[u8]| -> u64 {
        b.chunks_exact(2)
            .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
            .sum()
    };
    let removed: u64 = old.chunks_exact(2).map(|_| 0xffff).sum::<u64>() - words(old);
    fold(u64::from(partial) + removed + words(new))
}

/// [`update_partial_bytes`] for an IPv4 address.
pub fn update_partial_addr(partial: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    update_partial_bytes(partial, &old, &new)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1071 section 3 example.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &data)), 0xddf2);
    }

    #[test]
    fn odd_lengths_and_wide_sums_agree_with_bytewise() {
        let data: Vec<u8> = (0..1001u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 2, 7, 8, 9, 63, 1001] {
            let d = &data[..len];
            let mut slow = 0u64;
            for c in d.chunks(2) {
                slow += u64::from(c[0]) << 8 | c.get(1).map_or(0, |&b| u64::from(b));
            }
            assert_eq!(fold(sum(0, d)), fold(slow), "len {len}");
        }
    }

    #[test]
    fn address_updates_match_recompute_for_full_and_partial_sums() {
        let (old, new) = ([192, 168, 1, 10], [198, 51, 100, 2]);
        let dst = [203, 0, 113, 11];
        let body = [0x13u8, 0x88, 0x00, 0x50, 1, 2, 3, 4, 5];
        let full =
            |src: [u8; 4]| finish(sum(pseudo_header(&src, &dst, 6, body.len() as u32), &body));
        assert_eq!(update_addr(full(old), old, new), full(new));
        let partial = |src: [u8; 4]| fold(pseudo_header(&src, &dst, 6, body.len() as u32));
        assert_eq!(update_partial_addr(partial(old), old, new), partial(new));
    }

    #[test]
    fn incremental_update_matches_recompute() {
        // An IPv4 header; decrement TTL and compare with a full recompute.
        let mut h = [
            0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 192, 168, 1,
            10, 203, 0, 113, 11,
        ];
        let c = finish(sum(0, &h));
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(fold(sum(0, &h)), 0xffff);
        let old = u16::from_be_bytes([h[8], h[9]]);
        h[8] -= 1;
        let new = u16::from_be_bytes([h[8], h[9]]);
        let inc = update(c, old, new);
        h[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc, finish(sum(0, &h)));
    }
}
