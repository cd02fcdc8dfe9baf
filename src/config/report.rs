//! Reporting configuration problems: a [`Problem`] names the file, line and key, and
//! [`locate`] finds a key's line in the text.
//!
//! Deserialization and validation know a key's path (`domain[2].url`) but not its line, so the
//! line is found afterwards by scanning the text; probe module files are located the same way.

use std::fmt;

/// One thing wrong with a configuration file, located as precisely as possible.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The 1-based line of a byte offset (from a TOML parser's error span).
pub(super) fn line_of_offset(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// The 1-based line of a dotted key path (`limits.request_timeout`, `domain[2].url`,
/// `form[1].kind`) in a TOML text, or of its table when the key itself is absent.
/// A line scanner rather than a full parser: it understands `[table]`, `[[array]]` and `key =`
/// lines, which is how configuration files are written; anything else falls back to `None`.
pub fn locate(text: &str, path: &str) -> Option<usize> {
    let mut parts: Vec<(String, Option<usize>)> = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        match part.split_once('[') {
            Some((name, index)) => {
                let index = index.trim_end_matches(']').parse().ok();
                parts.push((name.to_string(), index));
            }
            None => parts.push((part.to_string(), None)),
        }
    }
    let (table, key) = match parts.len() {
        0 => return None,
        1 => (None, parts.remove(0)),
        _ => {
            let key = parts.pop().expect("two or more parts");
            (Some(parts.remove(0)), key)
        }
    };
    let mut in_table = table.is_none();
    let mut seen = 0usize;
    let mut table_line = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        // A top-level array of tables key (`domain[2]`) locates its header.
        if table.is_none() && key.1.is_some() && trimmed.starts_with("[[") {
            let header = trimmed.trim_matches(|c| c == '[' || c == ']').trim();
            if header == key.0 {
                if key.1 == Some(seen) {
                    return Some(number + 1);
                }
                seen += 1;
            }
        }
        if trimmed.starts_with('[') {
            let header = trimmed.trim_start_matches('[');
            let header = header.split(']').next().unwrap_or("").trim();
            in_table = match &table {
                None => false,
                Some((name, index)) if header == name => {
                    let hit = index.is_none_or(|wanted| wanted == seen);
                    seen += 1;
                    hit
                }
                Some(_) => false,
            };
            if in_table {
                table_line = Some(number + 1);
            }
            continue;
        }
        if in_table {
            let name = trimmed.split('=').next().unwrap_or("").trim().trim_matches('"');
            if trimmed.contains('=') && name == key.0 {
                return Some(number + 1);
            }
        }
    }
    table_line
}
