//! A single byte range of a stored whole object (RFC 9110 14): what a
//! cache answers a `Range` request with, from the object it holds.

use http::header::{HeaderMap, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};

/// What a `Range` header asks of an object of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The whole object: no range asked, several ranges (answered whole,
    /// as RFC 9110 14.2 allows), one that is not bytes, or an If-Range
    /// that no longer holds.
    Whole,
    /// Bytes `start..=end`: a 206 with Content-Range.
    Part { start: u64, end: u64 },
    /// A range that starts past the end: a 416.
    Unsatisfiable,
}

/// The range `request` asks of an object of `len` bytes whose headers are
/// `stored` (for If-Range).
pub fn range(request: &HeaderMap, stored: &HeaderMap, len: u64) -> Range {
    let Some(spec) = request.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return Range::Whole;
    };
    if let Some(cond) = request.get(IF_RANGE).and_then(|v| v.to_str().ok()) {
        // A strong entity tag, or the exact Last-Modified date (14.3).
        let holds = if cond.starts_with('"') {
            stored.get(ETAG).and_then(|e| e.to_str().ok()) == Some(cond)
        } else {
            stored.get(LAST_MODIFIED).and_then(|d| d.to_str().ok()) == Some(cond)
        };
        if !holds {
            return Range::Whole;
        }
    }
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if set.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Range::Whole;
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(n)) if n > 0 && len > 0 => Range::Part {
            start: len.saturating_sub(n),
            end: len - 1,
        },
        (true, _, _) => Range::Unsatisfiable,
        (false, Some(start), _) if start >= len => Range::Unsatisfiable,
        (false, Some(start), None) if last.trim().is_empty() => Range::Part {
            start,
            end: len - 1,
        },
        (false, Some(start), Some(end)) if end >= start => Range::Part {
            start,
            end: end.min(len - 1),
        },
        _ => Range::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ask(spec: &str, if_range: Option<&str>, len: u64) -> Range {
        let mut req = HeaderMap::new();
        req.insert(RANGE, HeaderValue::from_str(spec).expect("value"));
        if let Some(c) = if_range {
            req.insert(IF_RANGE, HeaderValue::from_str(c).expect("value"));
        }
        let mut stored = HeaderMap::new();
        stored.insert(ETAG, HeaderValue::from_static("\"v1\""));
        range(&req, &stored, len)
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let part = |start, end| Range::Part { start, end };
        assert_eq!(ask("bytes=0-99", None, 1000), part(0, 99));
        assert_eq!(ask("bytes=900-", None, 1000), part(900, 999));
        assert_eq!(ask("bytes=-100", None, 1000), part(900, 999));
        assert_eq!(ask("bytes=-5000", None, 1000), part(0, 999));
        assert_eq!(ask("bytes=990-5000", None, 1000), part(990, 999));
        assert_eq!(ask("bytes=1000-", None, 1000), Range::Unsatisfiable);
        assert_eq!(ask("bytes=-0", None, 1000), Range::Unsatisfiable);
        assert_eq!(ask("bytes=0-1,5-9", None, 1000), Range::Whole);
        assert_eq!(ask("items=0-1", None, 1000), Range::Whole);
        assert_eq!(ask("bytes=9-1", None, 1000), Range::Whole);
        assert_eq!(ask("bytes=0-9", Some("\"v1\""), 1000), part(0, 9));
        assert_eq!(ask("bytes=0-9", Some("\"v0\""), 1000), Range::Whole);
    }
}
