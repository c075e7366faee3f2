//! Diagnostics: what is wrong in a topology file, where, and how to fix it.

use std::fmt;
use std::ops::Range;

/// One problem in a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based line and column of the offending value or key.
    pub line: usize,
    pub column: usize,
    /// The key path, like `host "bob".switch`.
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.key, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// All the problems found in one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TopologyError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics against one source text.
pub(crate) struct Reporter<'a> {
    file: &'a str,
    source: &'a str,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(file: &'a str, source: &'a str) -> Reporter<'a> {
        Reporter {
            file,
            source,
            diagnostics: Vec::new(),
        }
    }

    /// 1-based line and column of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    pub(crate) fn error(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let (line, column) = self.position(span.start);
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            key: key.into(),
            message: message.into(),
            hint,
        });
    }

    /// Turns a TOML syntax or shape error into a diagnostic with a hint.
    pub(crate) fn toml_error(&mut self, e: &toml::de::Error) {
        let span = e.span().unwrap_or(0..0);
        let text = self.source.get(span.clone()).unwrap_or("").trim();
        let message = e.message().trim().to_owned();
        let (key, hint) = match unknown_field(&message) {
            Some((field, expected)) => {
                let hint = match closest(&field, &expected) {
                    Some(near) => format!(
                        "did you mean `{near}`? (known keys: {})",
                        expected.join(", ")
                    ),
                    None => format!("known keys here: {}", expected.join(", ")),
                };
                (field, Some(hint))
            }
            None if message.contains("missing field") => (
                text.lines().next().unwrap_or("").to_owned(),
                Some("add the missing key to this table".to_owned()),
            ),
            None => (text.lines().next().unwrap_or("").to_owned(), None),
        };
        let key = if key.is_empty() {
            "(file)".to_owned()
        } else {
            key
        };
        self.error(span, key, message, hint);
    }
}

/// Reads serde's "unknown field `x`, expected one of `a`, `b`" message.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((field.to_owned(), expected))
}

/// The candidate within edit distance 2 of `word`, if any.
pub(crate) fn closest<'c>(word: &str, candidates: &'c [String]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_serde_messages_and_suggests() {
        let (f, exp) = unknown_field("unknown field `adress`, expected one of `name`, `address`")
            .expect("parsed");
        assert_eq!(f, "adress");
        assert_eq!(exp, ["name", "address"]);
        assert_eq!(closest("adress", &exp), Some("address"));
        assert_eq!(closest("zzzzzz", &exp), None);
    }

    #[test]
    fn positions_are_one_based() {
        let r = Reporter::new("f", "ab\ncd\n");
        assert_eq!(r.position(0), (1, 1));
        assert_eq!(r.position(4), (2, 2));
    }
}
