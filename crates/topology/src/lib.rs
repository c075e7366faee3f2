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
mod validate;

pub use diag::{Diagnostic, TopologyError};
pub use model::*;
pub use validate::is_valid_name;

/// The reference lab (../shared/REFERENCE-LAB.md), as a topology file.
pub const REFERENCE_LAB: &str = include_str!("reference.toml");

/// The file name diagnostics use for the embedded reference lab.
pub const REFERENCE_LAB_FILE: &str = "<reference lab>";

/// Parses and validates a topology. `file` names the source in diagnostics.
pub fn parse(source: &str, file: &str) -> Result<Topology, TopologyError> {
    let mut reporter = diag::Reporter::new(file, source);
    let topology = match toml::from_str::<raw::File>(source) {
        Ok(raw) => Some(validate::validate(raw, file, &mut reporter)),
        Err(e) => {
            reporter.toml_error(&e);
            None
        }
    };
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
