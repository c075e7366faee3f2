//! Diagnostics: what is wrong in a topology file, where, and how to fix it,
//! shown as compilers show them: the line, a caret under the mistake, a
//! hint in plain words.

use std::fmt;
use std::ops::Range;

/// One problem in a topology file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based line and column of the offending value or key.
    pub line: usize,
    pub column: usize,
    /// How many characters of the line the mistake covers (at least 1).
    pub width: usize,
    /// The source line, for showing it.
    #[serde(skip)]
    pub snippet: String,
    /// The key path, like `host "bob".switch`.
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: key: message`, then the line with a caret under
    /// the mistake, then the hint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.key, self.message
        )?;
        if self.line > 0 && !self.snippet.is_empty() {
            let n = self.line.to_string();
            let pad = " ".repeat(n.len());
            let caret = format!(
                "{}{}",
                " ".repeat(self.column.saturating_sub(1)),
                "^".repeat(self.width.max(1))
            );
            write!(f, "\n{pad} |\n{n} | {}\n{pad} | {caret}", self.snippet)?;
        }
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
        let offset = floor_char(self.source, offset);
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// The line holding `span`'s start, and how many of its characters
    /// the span covers from there.
    fn snippet(&self, span: &Range<usize>) -> (String, usize) {
        let start = floor_char(self.source, span.start);
        let line_start = self.source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.source[start..]
            .find('\n')
            .map_or(self.source.len(), |i| start + i);
        let end = floor_char(self.source, span.end.clamp(start, line_end));
        let line = self.source[line_start..line_end].trim_end_matches('\r');
        (line.to_owned(), self.source[start..end].chars().count())
    }

    pub(crate) fn error(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let (line, column) = self.position(span.start);
        let (snippet, width) = self.snippet(&span);
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            width,
            snippet,
            key: key.into(),
            message: message.into(),
            hint,
        });
    }

    /// A TOML syntax error: where the parser stopped, in its words (they
    /// are plain already: "invalid table header", "expected `=`").
    pub(crate) fn syntax_error(&mut self, e: &toml_edit::TomlError) {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().replace('\n', "; ");
        let hint =
            Some("fix the syntax first: the other checks run on a file that parses".to_owned());
        self.error(span, "(syntax)", message, hint);
    }

    /// A value or table of the wrong shape, at `path` (or where serde's
    /// span points, if the tree has nothing there), in plain words.
    pub(crate) fn shape_error(&mut self, e: &toml::de::Error, path: Option<&str>) {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_owned();
        let key = path.unwrap_or("(file)").to_owned();
        let (message, hint) = match unknown_field(&message) {
            Some((field, expected)) => {
                let hint = match closest(&field, &expected) {
                    Some(near) => format!(
                        "did you mean `{near}`? (known keys: {})",
                        expected.join(", ")
                    ),
                    None => format!("known keys here: {}", expected.join(", ")),
                };
                (format!("unknown key `{field}`"), Some(hint))
            }
            None => plain(&message, &key),
        };
        self.error(span, key, message, hint);
    }
}

/// serde's words for a type, as a person would say it.
fn kind(serde: &str) -> String {
    let s = serde.trim().trim_matches('`');
    match s {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64" | "integer" => {
            "a whole number".into()
        }
        "a string" | "string" => "text in quotes".into(),
        "a boolean" | "boolean" => "true or false".into(),
        "a sequence" | "sequence" => "a list `[...]`".into(),
        "map" | "a map" => "a table".into(),
        "a borrowed string" => "text in quotes".into(),
        _ if s.starts_with("struct ") => "a table".into(),
        _ => s.into(),
    }
}

/// serde's "invalid type: X, expected Y" and "missing field `x`" in plain
/// words, with what to write instead.
fn plain(message: &str, key: &str) -> (String, Option<String>) {
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return (
            format!("`{field}` is required here"),
            Some(format!(
                "add `{field} = ...` (docs/topology.md lists every key)"
            )),
        );
    }
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return (message.to_owned(), None);
    };
    let Some((found, expected)) = rest.split_once(", expected ") else {
        return (message.to_owned(), None);
    };
    let last = key.rsplit(['.', ' ']).next().unwrap_or(key);
    if found == "map" && expected.contains("sequence") {
        let table = key.split(['.', ' ']).next().unwrap_or(key);
        return (
            format!("`[{table}]` is one table, but a lab has a list of them"),
            Some(format!(
                "write `[[{table}]]`, with two brackets, before each one"
            )),
        );
    }
    let (what, hint) = match found.split_once(' ') {
        Some(("string", text)) => {
            let text = text.trim_matches('"');
            let hint = if text.parse::<f64>().is_ok() {
                Some(format!(
                    "write the number without quotes: `{last} = {text}`"
                ))
            } else {
                None
            };
            (format!("the text \"{text}\""), hint)
        }
        Some(("integer", n)) => {
            let n = n.trim_matches('`');
            (
                format!("the number {n}"),
                Some(format!("write it in quotes: `{last} = \"{n}\"`")),
            )
        }
        Some(("boolean", b)) => (format!("`{}`", b.trim_matches('`')), None),
        _ => (kind(found), None),
    };
    (format!("expected {}, found {what}", kind(expected)), hint)
}

/// `at`, moved back to the start of the character it falls in.
fn floor_char(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
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
