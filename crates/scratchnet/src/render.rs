//! `scratchnet status` as tables a person reads.

use serde_json::Value;
use std::fmt::Write;

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// "reason=count, ..." for a map of counters, or "-".
fn counts(v: Option<&Value>) -> String {
    let parts: Vec<String> = v
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, c)| format!("{k}={c}")).collect())
        .unwrap_or_default();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(",")
    }
}

pub fn status(s: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "lab {} (pid {})", text(s, "lab"), num(s, "pid"));
    let switches = s
        .pointer("/fabric/switches")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for sw in &switches {
        let c = &sw["counters"];
        let _ = writeln!(
            out,
            "\nswitch {}: learned {}, moves {}, table-full {}, aged-out {}, floods unknown-unicast {} multicast {}",
            text(sw, "name"),
            num(c, "learned"),
            num(c, "moves"),
            num(c, "table_full"),
            num(c, "aged_out"),
            num(c, "unknown_unicast_floods"),
            num(c, "multicast_floods")
        );
        let _ = writeln!(
            out,
            "  {:<12} {:>10} {:>14} {:>10} {:>14}  {:<24} io-errors",
            "port", "rx-frames", "rx-bytes", "tx-frames", "tx-bytes", "drops"
        );
        for p in sw["ports"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  {:<12} {:>10} {:>14} {:>10} {:>14}  {:<24} {}{}",
                text(p, "name"),
                num(p, "rx_frames"),
                num(p, "rx_bytes"),
                num(p, "tx_frames"),
                num(p, "tx_bytes"),
                counts(p.get("drops")),
                counts(p.get("io_errors")),
                if p["capturing"].as_bool() == Some(true) {
                    "  (capturing)"
                } else {
                    ""
                }
            );
        }
        let macs = sw["mac_table"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(out, "  MAC table ({} entries):", macs.len());
        for m in &macs {
            let _ = writeln!(
                out,
                "    vlan {:<4} {}  {:<12} age {} s",
                num(m, "vlan"),
                text(m, "mac"),
                text(m, "port"),
                num(m, "age_secs")
            );
        }
    }
    out
}
