//! The cache's decisions on a virtual clock: freshness, validation,
//! Vary, RFC 5861's stale windows, the store's bounds and purge.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use httpcache::{Cache, Config, Lookup, Miss, NotStored};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600 + secs)
}

fn get(path: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut r = Request::get(path).header("host", "www.example.com");
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(()).expect("request")
}

/// An answer made at `at` with `headers`.
fn answer(at: SystemTime, headers: &[(&str, &str)]) -> http::response::Parts {
    let mut r = Response::builder()
        .status(200)
        .header("date", httpdate::fmt_http_date(at));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(()).expect("answer").into_parts().0
}

fn key(path: &str) -> String {
    Cache::key("www.example.com", path)
}

fn stored(cache: &Cache, path: &str, headers: &[(&str, &str)]) {
    let req = get(path, &[]);
    cache
        .store(
            &key(path),
            &req,
            &answer(t(0), headers),
            Bytes::from_static(b"hello"),
            t(0),
        )
        .expect("stored");
}

#[test]
fn a_fresh_answer_is_served_with_its_age_and_a_stale_one_is_revalidated() {
    let cache = Cache::new(Config::default());
    stored(
        &cache,
        "/a",
        &[("cache-control", "max-age=60"), ("etag", "\"v1\"")],
    );
    let Lookup::Fresh(v) = cache.lookup(&key("/a"), &get("/a", &[]), t(30)) else {
        panic!("fresh at 30 s");
    };
    let served = v.serve(t(30), &http::HeaderMap::new());
    assert_eq!(served.head.headers["age"], "30");
    assert_eq!(served.body, "hello");
    let Lookup::Stale(stale) = cache.lookup(&key("/a"), &get("/a", &[]), t(61)) else {
        panic!("stale at 61 s");
    };
    assert_eq!(stale.revalidate.headers["if-none-match"], "\"v1\"");
    assert_eq!(stale.staleness, Duration::from_secs(1));
    // The origin says 304: fresh again, its age counted from now.
    let not_modified = Response::builder()
        .status(304)
        .header("date", httpdate::fmt_http_date(t(61)))
        .header("etag", "\"v1\"")
        .header("cache-control", "max-age=60")
        .body(())
        .expect("304")
        .into_parts()
        .0;
    let fresh = cache.revalidated(
        &key("/a"),
        &get("/a", &[]),
        &stale.variant,
        &not_modified,
        t(61),
    );
    assert_eq!(
        fresh.serve(t(70), &http::HeaderMap::new()).head.headers["age"],
        "9"
    );
    assert!(matches!(
        cache.lookup(&key("/a"), &get("/a", &[]), t(100)),
        Lookup::Fresh(_)
    ));
}

#[test]
fn the_request_can_ask_for_a_check_or_a_fresher_answer() {
    let cache = Cache::new(Config::default());
    stored(
        &cache,
        "/a",
        &[("cache-control", "max-age=60"), ("etag", "\"v1\"")],
    );
    for asked in ["no-cache", "max-age=10"] {
        let req = get("/a", &[("cache-control", asked)]);
        assert!(
            matches!(cache.lookup(&key("/a"), &req, t(30)), Lookup::Stale(_)),
            "{asked}"
        );
    }
    let req = get("/a", &[("cache-control", "max-stale=100")]);
    assert!(matches!(
        cache.lookup(&key("/a"), &req, t(90)),
        Lookup::Fresh(_)
    ));
}

#[test]
fn what_a_shared_cache_must_not_store_is_not_stored() {
    let cache = Cache::new(Config {
        max_object: 4,
        ..Config::default()
    });
    let req = get("/a", &[]);
    let store = |headers: &[(&str, &str)], body: &'static [u8]| {
        cache.store(
            &key("/a"),
            &req,
            &answer(t(0), headers),
            Bytes::from_static(body),
            t(0),
        )
    };
    for cc in ["no-store", "private, max-age=60"] {
        assert_eq!(
            store(&[("cache-control", cc)], b"x"),
            Err(NotStored::NotCacheable),
            "{cc}"
        );
    }
    assert_eq!(
        store(&[("cache-control", "max-age=60"), ("vary", "*")], b"x"),
        Err(NotStored::VaryStar)
    );
    assert_eq!(
        store(&[("cache-control", "max-age=60")], b"hello"),
        Err(NotStored::TooLarge)
    );
    assert_eq!(cache.usage().0, 0);
    // s-maxage is for shared caches: it wins over max-age.
    assert_eq!(
        store(&[("cache-control", "max-age=0, s-maxage=60")], b"x"),
        Ok(())
    );
    assert!(matches!(
        cache.lookup(&key("/a"), &req, t(30)),
        Lookup::Fresh(_)
    ));
}

#[test]
fn last_modified_alone_gives_a_tenth_of_its_age_and_expires_is_read() {
    let cache = Cache::new(Config::default());
    let ten_days_before = httpdate::fmt_http_date(t(0) - Duration::from_secs(10 * 86_400));
    stored(&cache, "/h", &[("last-modified", &ten_days_before)]);
    assert!(matches!(
        cache.lookup(&key("/h"), &get("/h", &[]), t(86_000)),
        Lookup::Fresh(_)
    ));
    assert!(matches!(
        cache.lookup(&key("/h"), &get("/h", &[]), t(87_000)),
        Lookup::Stale(_)
    ));
    let expires = httpdate::fmt_http_date(t(100));
    stored(&cache, "/e", &[("expires", &expires)]);
    assert!(matches!(
        cache.lookup(&key("/e"), &get("/e", &[]), t(99)),
        Lookup::Fresh(_)
    ));
    assert!(matches!(
        cache.lookup(&key("/e"), &get("/e", &[]), t(101)),
        Lookup::Stale(_)
    ));
}

#[test]
fn any_final_status_with_stated_freshness_is_stored_with_that_status() {
    let cache = Cache::new(Config::default());
    let req = get("/s", &[]);
    let day_before = httpdate::fmt_http_date(t(0) - Duration::from_secs(86_400));
    let store = |status: u16, headers: &[(&str, &str)]| {
        let mut head = answer(t(0), headers);
        head.status = http::StatusCode::from_u16(status).expect("status");
        cache.store(&key("/s"), &req, &head, Bytes::from_static(b"x"), t(0))
    };
    let fresh = |at| match cache.lookup(&key("/s"), &req, at) {
        Lookup::Fresh(v) => v.serve(at, &http::HeaderMap::new()).head.status.as_u16(),
        _ => 0,
    };
    for status in [400, 500, 503, 299, 599] {
        assert_eq!(store(status, &[("cache-control", "max-age=60")]), Ok(()));
        assert_eq!(fresh(t(30)), status);
    }
    // Public allows a heuristic from Last-Modified, for any final status.
    let public = [("cache-control", "public"), ("last-modified", &*day_before)];
    assert_eq!(store(599, &public), Ok(()));
    assert_eq!(fresh(t(60)), 599);
    // Nothing stated: only the statuses RFC 9110 makes heuristically
    // cacheable may be stored; and must-understand needs a known status.
    let lm = [("last-modified", &*day_before)];
    for (status, headers) in [
        (503, &lm[..]),
        (403, &lm[..]),
        (
            599,
            &[("cache-control", "max-age=60, must-understand, no-store")][..],
        ),
    ] {
        assert_eq!(
            store(status, headers),
            Err(NotStored::NotCacheable),
            "{status}"
        );
    }
}

#[test]
fn vary_keeps_a_variant_per_value_and_another_value_is_a_miss() {
    let cache = Cache::new(Config::default());
    let cc = ("cache-control", "max-age=60");
    for lang in ["en", "fr"] {
        let req = get("/v", &[("accept-language", lang)]);
        let head = answer(
            t(0),
            &[cc, ("vary", "Accept-Language"), ("content-language", lang)],
        );
        cache
            .store(&key("/v"), &req, &head, Bytes::from(lang), t(0))
            .expect("stored");
    }
    for lang in ["en", "fr"] {
        let req = get("/v", &[("accept-language", lang)]);
        let Lookup::Fresh(v) = cache.lookup(&key("/v"), &req, t(1)) else {
            panic!("{lang} stored");
        };
        assert_eq!(v.serve(t(1), &http::HeaderMap::new()).body, lang);
    }
    let de = get("/v", &[("accept-language", "de")]);
    assert!(matches!(
        cache.lookup(&key("/v"), &de, t(1)),
        Lookup::Miss(Miss::VaryMismatch)
    ));
    assert!(matches!(
        cache.lookup(&key("/w"), &de, t(1)),
        Lookup::Miss(Miss::NotStored)
    ));
}

#[test]
fn stale_windows_are_rfc_5861s_unless_revalidation_is_a_must() {
    let cache = Cache::new(Config::default());
    stored(
        &cache,
        "/s",
        &[(
            "cache-control",
            "max-age=10, stale-while-revalidate=30, stale-if-error=60",
        )],
    );
    stored(
        &cache,
        "/m",
        &[(
            "cache-control",
            "max-age=10, stale-if-error=60, must-revalidate",
        )],
    );
    let stale = |path: &str, at| match cache.lookup(&key(path), &get(path, &[]), t(at)) {
        Lookup::Stale(s) => s,
        other => panic!("{path} at {at}: {other:?}"),
    };
    let none = http::HeaderMap::new();
    assert!(stale("/s", 20).while_revalidating());
    assert!(!stale("/s", 50).while_revalidating());
    assert!(stale("/s", 50).if_error(&none));
    assert!(!stale("/s", 80).if_error(&none));
    // The request may widen stale-if-error.
    let mut wider = http::HeaderMap::new();
    wider.insert(
        HeaderName::from_static("cache-control"),
        HeaderValue::from_static("stale-if-error=600"),
    );
    assert!(stale("/s", 80).if_error(&wider));
    assert!(
        !stale("/m", 20).if_error(&wider),
        "must-revalidate forbids it"
    );
}

#[test]
fn the_store_stays_within_its_bound_and_counts_what_it_pushed_out() {
    let cache = Cache::new(Config {
        capacity: 256 << 10,
        max_object: 64 << 10,
        max_variants: 4,
        ..Config::default()
    });
    let body = Bytes::from(vec![b'x'; 10_000]);
    for i in 0..1_000 {
        let path = format!("/u{i}");
        let req = get(&path, &[]);
        let head = answer(t(0), &[("cache-control", "max-age=600")]);
        cache
            .store(&key(&path), &req, &head, body.clone(), t(0))
            .expect("stored");
        let (_, bytes, capacity, _) = cache.usage();
        assert!(bytes <= capacity, "{bytes} > {capacity} after {i}");
    }
    let (entries, _, _, evicted) = cache.usage();
    assert!(
        entries < 30 && evicted > 950,
        "{entries} stored, {evicted} evicted"
    );
}

#[test]
fn purge_forgets_a_url_or_every_url_under_a_prefix() {
    let cache = Cache::new(Config::default());
    for p in ["/img/a", "/img/b", "/css/c"] {
        stored(&cache, p, &[("cache-control", "max-age=60")]);
    }
    assert!(cache.purge(&key("/css/c")));
    assert!(!cache.purge(&key("/css/c")));
    assert_eq!(cache.purge_prefix(&key("/img/")), 2);
    assert_eq!(cache.usage().0, 0);
}

#[test]
fn text_is_served_in_the_coding_the_client_prefers_with_a_tag_of_its_own() {
    use std::io::Read;
    let cache = Cache::new(Config::default());
    let text = "an edge compresses what the origin did not ".repeat(200);
    let req = get("/app.js", &[]);
    let head = answer(
        t(0),
        &[
            ("cache-control", "max-age=60"),
            ("content-type", "application/javascript"),
            ("etag", "\"v1\""),
        ],
    );
    cache
        .store(
            &key("/app.js"),
            &req,
            &head,
            Bytes::from(text.clone()),
            t(0),
        )
        .expect("stored");
    let Lookup::Fresh(v) = cache.lookup(&key("/app.js"), &req, t(1)) else {
        panic!("fresh");
    };
    let ask = |accept: &str| {
        let mut h = http::HeaderMap::new();
        if !accept.is_empty() {
            h.insert(
                "accept-encoding",
                HeaderValue::from_str(accept).expect("value"),
            );
        }
        v.serve(t(1), &h)
    };
    let plain = ask("");
    assert_eq!(plain.body, text);
    assert_eq!(plain.head.headers["vary"], "Accept-Encoding");
    assert_eq!(plain.head.headers["etag"], "\"v1\"");
    assert!(!plain.head.headers.contains_key("content-encoding"));

    let gz = ask("gzip");
    assert_eq!(gz.head.headers["content-encoding"], "gzip");
    assert_eq!(gz.head.headers["etag"], "\"v1-gzip\"");
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_string(&mut unzipped)
        .expect("gzip");
    assert_eq!(unzipped, text);
    assert!(gz.body.len() < text.len() / 4, "{} bytes", gz.body.len());

    let br = ask("gzip, deflate, br");
    assert_eq!(br.head.headers["content-encoding"], "br");
    let mut unbrotlied = Vec::new();
    brotli::Decompressor::new(&br.body[..], 4096)
        .read_to_end(&mut unbrotlied)
        .expect("brotli");
    assert_eq!(unbrotlied, text.as_bytes());

    // An image is stored as it came.
    let png = answer(
        t(0),
        &[
            ("cache-control", "max-age=60"),
            ("content-type", "image/png"),
        ],
    );
    cache
        .store(
            &key("/i.png"),
            &get("/i.png", &[]),
            &png,
            Bytes::from(text.clone()),
            t(0),
        )
        .expect("stored");
    let Lookup::Fresh(img) = cache.lookup(&key("/i.png"), &get("/i.png", &[]), t(1)) else {
        panic!("fresh");
    };
    let mut h = http::HeaderMap::new();
    h.insert("accept-encoding", HeaderValue::from_static("br"));
    let served = img.serve(t(1), &h);
    assert!(!served.head.headers.contains_key("content-encoding"));
    assert!(!served.head.headers.contains_key("vary"));
}

#[test]
fn surrogate_control_speaks_to_this_cache_alone_and_wins_over_cache_control() {
    let cache = Cache::new(Config {
        name: "edge1".to_owned(),
        ..Config::default()
    });
    let store = |path: &str, headers: &[(&str, &str)]| {
        cache.store(
            &key(path),
            &get(path, &[]),
            &answer(t(0), headers),
            Bytes::from_static(b"x"),
            t(0),
        )
    };
    let fresh_at = |path: &str, at| {
        matches!(
            cache.lookup(&key(path), &get(path, &[]), t(at)),
            Lookup::Fresh(_)
        )
    };
    // A long surrogate max-age over a short Cache-Control one, and over
    // no-store; targeted at this cache by its name, in any case.
    store(
        "/a",
        &[
            ("cache-control", "max-age=1"),
            ("surrogate-control", "MaX-aGe=3600"),
        ],
    )
    .expect("stored");
    assert!(fresh_at("/a", 100));
    store(
        "/b",
        &[
            ("cache-control", "no-store"),
            ("surrogate-control", "max-age=600;edge1"),
        ],
    )
    .expect("stored");
    assert!(fresh_at("/b", 100));
    // Not for this cache: another device's, or malformed.
    store("/c", &[("surrogate-control", "max-age=3600;edge2")]).expect("stored");
    assert!(!fresh_at("/c", 1));
    store(
        "/d",
        &[
            ("cache-control", "max-age=1"),
            ("surrogate-control", "max-age= 100"),
        ],
    )
    .expect("stored");
    assert!(!fresh_at("/d", 100));
    // no-store wins over a fresh Cache-Control.
    assert_eq!(
        store(
            "/e",
            &[
                ("cache-control", "max-age=10000"),
                ("surrogate-control", "no-store")
            ]
        ),
        Err(NotStored::NotCacheable)
    );
    // It is for this cache only: clients never see it.
    let Lookup::Fresh(v) = cache.lookup(&key("/a"), &get("/a", &[]), t(1)) else {
        panic!("fresh");
    };
    assert!(!v
        .serve(t(1), &http::HeaderMap::new())
        .head
        .headers
        .contains_key("surrogate-control"));
}
