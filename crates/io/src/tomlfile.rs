//! Reading TOML into typed structs with errors that point at the line and suggest fixes.

use crate::{IoError, Location};
use serde::de::DeserializeOwned;

/// Parses `text` (from `path`) into `T`, turning the parser's error into an [`IoError::Parse`]
/// with line and column, the dotted field name, what is allowed in words a user knows (not
/// Rust type names), and a "did you mean" hint for a misspelt field.
pub fn parse<T: DeserializeOwned>(path: &str, text: &str) -> Result<T, IoError> {
    toml::from_str(text).map_err(|e| {
        let location = match e.span() {
            Some(span) => Location::at_offset(path, text, span.start),
            None => Location::file(path),
        };
        // The parser's syntax messages span two lines ("invalid table header\nexpected `.`");
        // one line reads better after the location and keeps grep-able logs whole.
        let flat = e
            .message()
            .trim_end()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let section = location
            .line
            .map(|l| section_of_line(text, l))
            .unwrap_or_default();
        let mut message = plain_types(&enrich(&flat, &section));
        if let Some(key) = location.line.and_then(|l| key_on_line(text, l)) {
            if !message.contains(&format!("`{key}`")) {
                let dotted = if section.is_empty() || key.contains('.') {
                    key
                } else {
                    format!("{section}.{key}")
                };
                message = format!("field `{dotted}`: {message}");
            }
        }
        // An unknown key on a header line is a misspelt section name, so say "section".
        let on_header = location
            .line
            .and_then(|l| text.lines().nth(l - 1))
            .is_some_and(|l| l.trim_start().starts_with('['));
        if on_header {
            if let Some(rest) = message.strip_prefix("unknown field `") {
                if let Some((name, tail)) = rest.split_once('`') {
                    message = format!("unknown section [{name}]{tail}");
                }
            }
        }
        if !has_content(text) {
            message = format!("the file is empty (only blanks and comments); {message}");
        }
        IoError::Parse { location, message }
    })
}

/// Whether `text` holds anything but blank lines and comments.
pub fn has_content(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    })
}

/// The `[section]` (or `[[section]]`) that 1-based `line` of `text` belongs to; `""` at the top.
/// On a header line itself the answer is the header's parent, since an error there (an unknown
/// section) is about a key of the parent table.
fn section_of_line(text: &str, line: usize) -> String {
    let header = |l: &str| -> Option<String> {
        let t = l.trim();
        t.starts_with('[').then(|| {
            t.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
    };
    if let Some(own) = text.lines().nth(line.saturating_sub(1)).and_then(header) {
        return own
            .rsplit_once('.')
            .map(|(parent, _)| parent.to_string())
            .unwrap_or_default();
    }
    text.lines()
        .take(line)
        .filter_map(header)
        .last()
        .unwrap_or_default()
}

/// Rewrites serde's Rust type names ("expected u32") into what a user may write.
fn plain_types(message: &str) -> String {
    const NAMES: [(&str, &str); 9] = [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        (
            "expected u64",
            "expected a whole number from 0 to 18446744073709551615",
        ),
        ("expected f64", "expected a number such as 2.5 or 3e11"),
        ("expected a boolean", "expected `true` or `false`"),
        ("expected a sequence", "expected a list such as [1, 2, 4]"),
        ("expected a string", "expected a quoted string"),
        (
            "number too large to fit in target type",
            "number too large: a TOML integer holds at most 9223372036854775807",
        ),
    ];
    let mut out = message.to_string();
    for (from, to) in NAMES {
        if out.ends_with(from) {
            out.truncate(out.len() - from.len());
            out.push_str(to);
        } else if out == from || out.contains(&format!("{from};")) {
            out = out.replace(from, to);
        }
    }
    // A count written like on the command line ("260B") is a string in TOML; say how to write it.
    if out.starts_with("invalid type: string") && out.contains("expected a number") {
        out.push_str(" (write counts unquoted, e.g. 260e9 rather than \"260B\")");
    }
    out
}

/// The key assigned on 1-based `line`, if the line is a `key = value` pair.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let (key, _) = l.split_once('=')?;
    let key = key.trim();
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    plain.then(|| key.to_string())
}

/// Adds the section and a suggestion to serde's "unknown field `x`, expected one of `a`, `b`"
/// message.
fn enrich(message: &str, section: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some(end) = rest.find('`') else {
        return message.to_string();
    };
    let unknown = &rest[..end];
    // Name the table the field sits in: `n_gpu` is unknown in [cluster], not everywhere.
    let message = if section.is_empty() {
        message.to_string()
    } else {
        format!(
            "unknown field `{unknown}` in [{section}]{}",
            &rest[end + 1..]
        )
    };
    let expected: Vec<&str> = rest[end..].split('`').skip(2).step_by(2).collect();
    let best = expected
        .iter()
        .map(|cand| (strsim::jaro_winkler(unknown, cand), *cand))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, cand)) if score >= 0.8 => format!("{message}; did you mean `{cand}`?"),
        _ => message,
    }
}

/// The location of `key = ...` inside `[section]` of `text`, or of the section header, or the file.
pub fn locate(path: &str, text: &str, section: &str, key: &str) -> Location {
    let mut in_section = section.is_empty();
    let mut section_line = None;
    for (idx, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            let name = trimmed
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim();
            in_section = name == section;
            if in_section {
                section_line = Some(idx + 1);
            }
            continue;
        }
        if in_section {
            if let Some((k, _)) = trimmed.split_once('=') {
                if k.trim() == key {
                    let column = line.find(key).map_or(1, |c| c + 1);
                    return Location {
                        path: path.to_string(),
                        line: Some(idx + 1),
                        column: Some(column),
                    };
                }
            }
        }
    }
    Location {
        path: path.to_string(),
        line: section_line,
        column: section_line.map(|_| 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        tp: u32,
        pp: u32,
        micro_batch: u32,
    }

    #[test]
    fn unknown_field_gets_a_suggestion_and_a_line() {
        let text = "tp = 1\npp = 2\nmicro_bach = 3\n";
        let e = parse::<Demo>("s.toml", text).unwrap_err().to_string();
        assert!(e.starts_with("s.toml:3:1"), "{e}");
        assert!(e.contains("did you mean `micro_batch`?"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = parse::<Demo>("s.toml", "tp = \"x\"\npp = 1\nmicro_batch = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.toml:1"), "{e}");
        assert!(e.contains("tp"), "{e}");
    }

    #[test]
    fn locate_finds_keys_in_sections() {
        let text = "[a]\nx = 1\n[b]\nx = 2\n";
        assert_eq!(locate("f", text, "b", "x").line, Some(4));
        assert_eq!(locate("f", text, "b", "y").line, Some(3));
        assert_eq!(locate("f", text, "c", "y").line, None);
    }
}
