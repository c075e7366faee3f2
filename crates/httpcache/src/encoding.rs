//! Compression at the edge: a text answer the origin sent uncompressed
//! is stored also as gzip and brotli, and each client gets the coding its
//! `Accept-Encoding` prefers (RFC 9110 12.5.3), with `Vary:
//! Accept-Encoding` and an entity tag of its own per coding (8.8.3: a
//! strong validator names one representation).

use bytes::Bytes;
use http::header::{HeaderMap, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};
use std::io::Write;

/// A content coding the edge can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Br,
}

impl Coding {
    pub fn name(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Br => "br",
        }
    }
}

/// Answers smaller than this gain less from compression than its header
/// costs.
const MIN_SIZE: usize = 1024;
/// gzip's level and brotli's quality: quick to make (the edge compresses
/// once, on a miss) and most of the gain.
const GZIP_LEVEL: u32 = 6;
const BROTLI_QUALITY: i32 = 5;

/// Whether an answer with `headers` and a body of `len` bytes is worth
/// compressing: text of some kind, not compressed already, not marked
/// `no-transform` (RFC 9111 5.2.2.6), and not tiny.
pub(crate) fn compressible(headers: &HeaderMap, len: usize) -> bool {
    let kind = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let text = kind.starts_with("text/")
        || ["javascript", "json", "xml", "svg", "wasm"]
            .iter()
            .any(|k| kind.contains(k));
    let encoded = headers
        .get(CONTENT_ENCODING)
        .is_some_and(|e| e.as_bytes() != b"identity");
    let no_transform = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("no-transform"));
    text && !encoded && !no_transform && len >= MIN_SIZE
}

/// `body` as gzip and as brotli, each kept only if it is smaller.
pub(crate) fn compress(body: &[u8]) -> Vec<(Coding, Bytes)> {
    let mut out = Vec::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
    if gz.write_all(body).is_ok() {
        if let Ok(z) = gz.finish() {
            out.push((Coding::Gzip, Bytes::from(z)));
        }
    }
    let params = brotli::enc::BrotliEncoderParams {
        quality: BROTLI_QUALITY,
        ..Default::default()
    };
    let mut br = Vec::new();
    if brotli::BrotliCompress(&mut &body[..], &mut br, &params).is_ok() {
        out.push((Coding::Br, Bytes::from(br)));
    }
    out.retain(|(_, z)| z.len() < body.len());
    out
}

/// The coding to send a client whose `Accept-Encoding` is `accept`,
/// among `available` (identity always is): the highest q-value; on a tie
/// brotli, then gzip, then identity. Identity unless refused by
/// `identity;q=0` or `*;q=0` (RFC 9110 12.5.3).
pub fn choose(accept: Option<&str>, available: &[Coding]) -> Coding {
    let Some(accept) = accept else {
        return Coding::Identity;
    };
    let q_of = |coding: &str| -> Option<f32> {
        let mut star = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if name == coding || (coding == "gzip" && name == "x-gzip") {
                return Some(q);
            }
            if name == "*" {
                star = Some(q);
            }
        }
        star
    };
    // In rising preference: a tie goes to the later.
    let mut best = (Coding::Identity, q_of("identity").unwrap_or(1.0));
    for coding in [Coding::Gzip, Coding::Br] {
        if !available.contains(&coding) {
            continue;
        }
        if let Some(q) = q_of(coding.name()).filter(|q| *q > 0.0) {
            if q >= best.1 {
                best = (coding, q);
            }
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: &[Coding] = &[Coding::Gzip, Coding::Br];

    #[test]
    fn the_client_s_preference_wins_and_brotli_breaks_a_tie() {
        assert_eq!(choose(None, BOTH), Coding::Identity);
        assert_eq!(choose(Some("gzip"), BOTH), Coding::Gzip);
        assert_eq!(choose(Some("gzip, deflate, br"), BOTH), Coding::Br);
        assert_eq!(choose(Some("br;q=0.5, gzip"), BOTH), Coding::Gzip);
        assert_eq!(choose(Some("gzip;q=0, br;q=0"), BOTH), Coding::Identity);
        assert_eq!(choose(Some("*"), BOTH), Coding::Br);
        assert_eq!(choose(Some("deflate"), BOTH), Coding::Identity);
        assert_eq!(choose(Some("br"), &[Coding::Gzip]), Coding::Identity);
        assert_eq!(choose(Some("x-gzip"), BOTH), Coding::Gzip);
    }

    #[test]
    fn text_is_compressed_and_what_is_already_compressed_is_not() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, "text/css".parse().expect("value"));
        assert!(compressible(&h, 5000));
        assert!(!compressible(&h, 100));
        h.insert(
            CACHE_CONTROL,
            "public, no-transform".parse().expect("value"),
        );
        assert!(!compressible(&h, 5000));
        let mut img = HeaderMap::new();
        img.insert(CONTENT_TYPE, "image/png".parse().expect("value"));
        assert!(!compressible(&img, 5000));
        let mut gz = HeaderMap::new();
        gz.insert(
            CONTENT_TYPE,
            "application/javascript".parse().expect("value"),
        );
        gz.insert(CONTENT_ENCODING, "gzip".parse().expect("value"));
        assert!(!compressible(&gz, 5000));
        let text = "the edge compresses prose ".repeat(200);
        let codings: Vec<Coding> = compress(text.as_bytes()).iter().map(|(c, _)| *c).collect();
        assert_eq!(codings, [Coding::Gzip, Coding::Br]);
    }
}
