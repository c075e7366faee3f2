//! The lab's authoritative DNS servers answering the system's `dig` from a
//! namespace: the root, the TLDs and example.com. These need root;
//! scripts/test.sh runs them as root.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// dig's output with each run of spaces and tabs made one space.
fn dig(args: &str) -> String {
    let out = exec_ok("alice", &format!("dig +time=2 +tries=1 {args}"));
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
#[ignore = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root"]
fn the_lab_root_tlds_and_example_com_answer_dig() {
    let file = topology_file("reference", topology::REFERENCE_LAB);
    let _lab = Lab::up_file("reference", &file);
    // example.com's own server: answers with AA, over UDP and TCP.
    let www = dig("@203.0.113.55 www.example.com");
    assert!(www.contains("status: NOERROR"), "{www}");
    assert!(www.contains("flags: qr aa"), "{www}");
    assert!(
        www.contains("www.example.com. 3600 IN A 203.0.113.10"),
        "{www}"
    );
    assert_eq!(
        dig("+short @203.0.113.55 api.example.com")
            .lines()
            .collect::<Vec<_>>(),
        ["www.example.com.", "203.0.113.10"]
    );
    assert_eq!(
        dig("+short +tcp @203.0.113.55 example.com MX").trim(),
        "10 mail.example.com."
    );
    assert!(dig("+short @203.0.113.55 example.com TXT").contains("v=spf1 mx -all"));
    let nx = dig("@203.0.113.55 nope.example.com");
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(
        nx.contains("IN SOA ns1.example.com. hostmaster.example.com."),
        "{nx}"
    );
    // The root refers to com. with glue; com. to example.com with glue.
    let root = dig("+norec @203.0.113.53 www.example.com");
    assert!(
        root.contains("com. 86400 IN NS a.gtld-servers.net."),
        "{root}"
    );
    assert!(
        root.contains("a.gtld-servers.net. 86400 IN A 203.0.113.54"),
        "{root}"
    );
    let tld = dig("+norec @203.0.113.54 www.example.com");
    assert!(
        tld.contains("example.com. 86400 IN NS ns1.example.com."),
        "{tld}"
    );
    assert!(
        tld.contains("ns1.example.com. 86400 IN A 203.0.113.55"),
        "{tld}"
    );
    // Not its zone: REFUSED.
    assert!(dig("@203.0.113.54 example.org").contains("status: REFUSED"));
}
