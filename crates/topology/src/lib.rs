//! The topology file: what a lab is made of.
//!
//! A lab is a TOML file of `[[switch]]`, `[[host]]`, `[[router]]` and
//! `[[service]]` tables (docs/topology.md documents each key). [`parse`]
//! checks it completely and returns either a [`Topology`] or every problem
//! found, each naming the file, line and column, the key and a fix.
//! [`REFERENCE_LAB`] is the built-in lab that `scratchnet up` runs with no
//! file.
//!
//! Never touches the system: no namespaces, devices or sockets.

mod diag;
mod model;
mod raw;
mod recover;
mod validate;

pub use diag::{Diagnostic, TopologyError};
pub use model::*;
pub use validate::is_valid_name;

/// The reference lab (docs/reference-lab.md), as a topology file.
pub const REFERENCE_LAB: &str = include_str!("reference.toml");

/// Small labs for learning, one idea each, easiest first: `scratchnet
/// example NAME` prints one. Each starts with what to try in it.
pub const EXAMPLES: &[(&str, &str)] = &[
    ("one-switch", include_str!("examples/one-switch.toml")),
    ("two-lans", include_str!("examples/two-lans.toml")),
    ("nat", include_str!("examples/nat.toml")),
    ("dhcp", include_str!("examples/dhcp.toml")),
    ("mtu", include_str!("examples/mtu.toml")),
    ("satellite", include_str!("examples/satellite.toml")),
    ("dual-stack", include_str!("examples/dual-stack.toml")),
    ("v6only", include_str!("examples/v6only.toml")),
    ("cdn", include_str!("examples/cdn.toml")),
];

/// The file name diagnostics use for the embedded reference lab.
pub const REFERENCE_LAB_FILE: &str = "<reference lab>";

/// Type errors read past before giving up on a file.
const MAX_SHAPE_ERRORS: usize = 500;

/// Parses and validates a topology. `file` names the source in
/// diagnostics. Every problem is reported: a syntax error (the parser
/// cannot go past one), else every key of the wrong type or name
/// (recover.rs), then, once every table reads, every check between them.
pub fn parse(source: &str, file: &str) -> Result<Topology, TopologyError> {
    let mut reporter = diag::Reporter::new(file, source);
    let mut topology = None;
    if let Err(e) = toml_edit::ImDocument::parse(source) {
        reporter.syntax_error(&e);
    } else {
        let mut recovery = recover::Recovery::new(source);
        for _ in 0..MAX_SHAPE_ERRORS {
            let e = match toml::from_str::<raw::File>(&recovery.text) {
                Ok(raw) => {
                    if !recovery.lost_a_table {
                        topology = Some(validate::validate(raw, file, &mut reporter));
                    }
                    break;
                }
                Err(e) => e,
            };
            let found = e.span().and_then(|s| recovery.find(s.start));
            reporter.shape_error(&e, found.as_ref().map(|f| f.path.as_str()));
            let Some(found) = found else { break };
            let before = recovery.text.clone();
            if found.whole_table || e.message().starts_with("missing field") {
                recovery.lost_a_table = true;
            }
            recovery.blank(found.kv, found.in_list);
            if recovery.text == before {
                break;
            }
        }
    }
    match topology {
        Some(t) if reporter.diagnostics.is_empty() => Ok(t),
        _ => Err(TopologyError {
            diagnostics: reporter.diagnostics,
        }),
    }
}

/// Reads and validates a topology file.
pub fn load(path: &std::path::Path) -> Result<Topology, TopologyError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(source) => parse(&source, &file),
        Err(e) => Err(TopologyError {
            diagnostics: vec![Diagnostic {
                file,
                line: 0,
                column: 0,
                width: 0,
                snippet: String::new(),
                key: "(file)".to_owned(),
                message: format!("cannot read the file: {e}"),
                hint: Some("check the path and its permissions".to_owned()),
            }],
        }),
    }
}

/// The embedded reference lab, parsed.
pub fn reference_lab() -> Topology {
    match parse(REFERENCE_LAB, REFERENCE_LAB_FILE) {
        Ok(t) => t,
        // The embedded file is checked by this crate's tests.
        Err(e) => unreachable!("the embedded reference lab is invalid: {e}"),
    }
}

#[cfg(test)]
mod tests;
