//! Errors of the io crate: every one names where in which file.

use std::fmt;
use std::path::PathBuf;
use thiserror::Error;

/// A place in an input file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// File path as the user gave it (or `<bundled>/...` for compiled-in files).
    pub path: String,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// 1-based column, where known.
    pub column: Option<usize>,
}

impl Location {
    /// A location in `path` with no line.
    pub fn file(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line: None,
            column: None,
        }
    }

    /// A location from a byte offset into `text`.
    pub fn at_offset(path: impl Into<String>, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        Self {
            path: path.into(),
            line: Some(line),
            column: Some(column),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// An input or output problem.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IoError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Syntax or type error reported by the format's parser.
    #[error("{location}: {message}")]
    Parse {
        /// Where.
        location: Location,
        /// The parser's message, completed with what is allowed.
        message: String,
    },
    /// A field's value is out of range or contradicts another.
    #[error("{location}: field `{field}`: {message}")]
    Field {
        /// Where.
        location: Location,
        /// The field's dotted name.
        field: String,
        /// What was found and what is allowed.
        message: String,
    },
    /// An id that is not in the database.
    #[error("{location}: unknown {kind} `{id}`; known: {known}")]
    UnknownId {
        /// Where the id was given.
        location: Location,
        /// What kind of id (accelerator, node, model).
        kind: &'static str,
        /// The id given.
        id: String,
        /// The known ids, comma-separated.
        known: String,
    },
}

/// Decodes a file's bytes as UTF-8, or says where the first bad byte is and what the file looks
/// like instead (UTF-16 from a Windows editor, a binary file), so the user knows what to fix.
pub(crate) fn utf8_text(label: &str, bytes: Vec<u8>, what: &str) -> Result<String, IoError> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        // The valid prefix is text, so the line and column of the bad byte can be counted in it.
        let prefix = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let location = Location::at_offset(label, prefix, at);
        let utf16 = bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]);
        let binary = bytes.iter().take(512).filter(|&&b| b == 0).count() > 0;
        let looks = if utf16 {
            "it looks like UTF-16 text; save it as UTF-8"
        } else if binary {
            "it looks like a binary file"
        } else {
            "perhaps Latin-1 or another legacy encoding; save it as UTF-8"
        };
        IoError::Parse {
            location,
            message: format!(
                "the file is not UTF-8 text (byte 0x{:02X} at offset {at} is invalid; {looks}); {what}",
                bytes[at]
            ),
        }
    })
}
