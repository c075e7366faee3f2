//! Reading past the first mistake: every type error in a file, not only
//! the first one serde stops at.
//!
//! serde deserialises a file in one go and gives up at its first error.
//! To report them all, [`Recovery`] finds the key/value the error points
//! at in the syntax tree (toml_edit keeps every span), names its path the
//! way people write it (`host "bob".mtu`), and blanks it out of a working
//! copy of the text — spaces over every character, so that every offset
//! and line number stays true — then deserialisation runs again. A table
//! that lacks a required key is blanked whole; then the checks between
//! tables (references, addresses) are skipped, as they would report the
//! missing table's absence rather than a mistake of the user's.

use std::ops::Range;
use toml_edit::{ImDocument, InlineTable, Item, Table, Value};

/// Where an error points, found in the syntax tree.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The key path as people read it, like `host "bob".mtu`.
    pub(crate) path: String,
    /// The key and its value, to blank.
    pub(crate) kv: Range<usize>,
    /// Whether it sits between commas (in an inline table or an array).
    pub(crate) in_list: bool,
    /// Whether it is a whole table (then the file lost one by blanking).
    pub(crate) whole_table: bool,
}

/// A path segment.
enum Seg {
    Key(String),
    /// An element of an array; its `name`, if it has one.
    Index(usize, Option<String>),
}

fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        match seg {
            Seg::Key(k) if i == 0 => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(_, Some(name)) => out.push_str(&format!(" \"{name}\"")),
            Seg::Index(n, None) => out.push_str(&format!("[{}]", n + 1)),
        }
    }
    out
}

fn union(a: Option<Range<usize>>, b: Option<Range<usize>>) -> Option<Range<usize>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.start.min(b.start)..a.end.max(b.end)),
        (a, b) => a.or(b),
    }
}

/// The whole extent of an item, nested tables included.
fn extent(item: &Item) -> Option<Range<usize>> {
    match item {
        Item::Value(v) => v.span(),
        Item::Table(t) => table_extent(t),
        Item::ArrayOfTables(a) => a.iter().map(table_extent).fold(None, union),
        Item::None => None,
    }
}

fn table_extent(t: &Table) -> Option<Range<usize>> {
    let mut r = t.span();
    for (k, item) in t.iter() {
        let key = t.get_key_value(k).and_then(|(key, _)| key.span());
        r = union(r, union(key, extent(item)));
    }
    r
}

fn name_of(t: &Table) -> Option<String> {
    t.get("name")?.as_str().map(str::to_owned)
}

fn inline_name(t: &InlineTable) -> Option<String> {
    t.get("name")?.as_str().map(str::to_owned)
}

/// Finds the innermost key/value holding offset `at`.
struct Finder {
    at: usize,
    best: Option<Found>,
    path: Vec<Seg>,
}

impl Finder {
    fn consider(&mut self, kv: Range<usize>, in_list: bool, whole_table: bool) {
        if kv.contains(&self.at) || kv.start == self.at {
            let narrower = self.best.as_ref().is_none_or(|b| kv.len() <= b.kv.len());
            if narrower {
                self.best = Some(Found {
                    path: render(&self.path),
                    kv,
                    in_list,
                    whole_table,
                });
            }
        }
    }

    fn table(&mut self, t: &Table) {
        for (k, item) in t.iter() {
            let key = t.get_key_value(k).and_then(|(key, _)| key.span());
            self.path.push(Seg::Key(k.to_owned()));
            match item {
                Item::Value(v) => {
                    if let Some(kv) = union(key, v.span()) {
                        let table = matches!(v, Value::InlineTable(_));
                        self.consider(kv, false, table);
                    }
                    self.value(v);
                }
                Item::Table(t) => {
                    if let Some(r) = union(key, table_extent(t)) {
                        self.consider(r, false, true);
                    }
                    self.table(t);
                }
                Item::ArrayOfTables(a) => {
                    for (i, t) in a.iter().enumerate() {
                        self.path.push(Seg::Index(i, name_of(t)));
                        if let Some(r) = table_extent(t) {
                            self.consider(r, false, true);
                        }
                        self.table(t);
                        self.path.pop();
                    }
                }
                Item::None => {}
            }
            self.path.pop();
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::InlineTable(t) => {
                for (k, v) in t.iter() {
                    let key = t.get_key_value(k).and_then(|(key, _)| key.span());
                    self.path.push(Seg::Key(k.to_owned()));
                    if let Some(kv) = union(key, v.span()) {
                        self.consider(kv, true, matches!(v, Value::InlineTable(_)));
                    }
                    self.value(v);
                    self.path.pop();
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let name = match v {
                        Value::InlineTable(t) => inline_name(t),
                        _ => None,
                    };
                    self.path.push(Seg::Index(i, name));
                    if let Some(span) = v.span() {
                        self.consider(span, true, matches!(v, Value::InlineTable(_)));
                    }
                    self.value(v);
                    self.path.pop();
                }
            }
            _ => {}
        }
    }
}

/// A working copy of a file, blanked as errors are found.
pub(crate) struct Recovery {
    pub(crate) text: String,
    /// Whether a whole table had to go.
    pub(crate) lost_a_table: bool,
}

impl Recovery {
    pub(crate) fn new(source: &str) -> Recovery {
        Recovery {
            text: source.to_owned(),
            lost_a_table: false,
        }
    }

    /// What holds offset `at` in the working copy.
    pub(crate) fn find(&self, at: usize) -> Option<Found> {
        let doc = ImDocument::parse(self.text.as_str()).ok()?;
        let mut f = Finder {
            at,
            best: None,
            path: Vec::new(),
        };
        f.table(doc.as_table());
        f.best
    }

    /// Blanks `range`, and the comma that joins it to its neighbours when
    /// it sits in a list, so the text still parses.
    pub(crate) fn blank(&mut self, range: Range<usize>, in_list: bool) {
        let bytes = self.text.as_bytes();
        let mut range = range.start.min(bytes.len())..range.end.min(bytes.len());
        if in_list {
            let after = bytes[range.end..]
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .map(|i| range.end + i);
            let before = bytes[..range.start]
                .iter()
                .rposition(|b| !b.is_ascii_whitespace());
            match (after, before) {
                (Some(i), _) if bytes[i] == b',' => range.end = i + 1,
                (_, Some(i)) if bytes[i] == b',' => range.start = i,
                _ => {}
            }
        }
        let blanked: String = self.text[range.clone()]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        self.text.replace_range(range, &blanked);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finds_paths_and_blanks_keeping_offsets() {
        let src = "[[host]]\nname = \"bob\"\nmtu = \"1500\"\n[[router]]\nname = \"r\"\ninterfaces = [{ switch = \"a\", mtu = \"x\" }, { switch = \"b\" }]\n";
        let mut r = Recovery::new(src);
        let at = src.find("\"1500\"").unwrap();
        let f = r.find(at).unwrap();
        assert_eq!(f.path, "host \"bob\".mtu");
        assert_eq!(&src[f.kv.clone()], "mtu = \"1500\"");
        r.blank(f.kv, f.in_list);
        let at = src.find("\"x\"").unwrap();
        let f = r.find(at).unwrap();
        assert_eq!(f.path, "router \"r\".interfaces[1].mtu");
        r.blank(f.kv, f.in_list);
        assert_eq!(r.text.len(), src.len());
        assert!(
            r.text
                .contains("[{ switch = \"a\"            }, { switch = \"b\" }]"),
            "{}",
            r.text
        );
        assert!(ImDocument::parse(r.text.as_str()).is_ok());
    }
}
