//! Reading TOML into typed structs with errors that point at the line and suggest fixes.

use crate::{IoError, Location};
use serde::de::DeserializeOwned;

/// Parses `text` (from `path`) into `T`, turning the parser's error into an [`IoError::Parse`]
/// with line and column, and a "did you mean" hint for a misspelt field.
pub fn parse<T: DeserializeOwned>(path: &str, text: &str) -> Result<T, IoError> {
    toml::from_str(text).map_err(|e| {
        let location = match e.span() {
            Some(span) => Location::at_offset(path, text, span.start),
            None => Location::file(path),
        };
        let mut message = enrich(e.message());
        if let Some(key) = location.line.and_then(|l| key_on_line(text, l)) {
            if !message.contains(&format!("`{key}`")) {
                message = format!("field `{key}`: {message}");
            }
        }
        IoError::Parse { location, message }
    })
}

/// The key assigned on 1-based `line`, if the line is a `key = value` pair.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let (key, _) = l.split_once('=')?;
    let key = key.trim();
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    plain.then(|| key.to_string())
}

/// Adds a suggestion to serde's "unknown field `x`, expected one of `a`, `b`" message.
fn enrich(message: &str) -> String {
    let message = message.trim_end().to_string();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some(end) = rest.find('`') else {
        return message;
    };
    let unknown = &rest[..end];
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
