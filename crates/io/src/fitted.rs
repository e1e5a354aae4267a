//! Fitted efficiency factors written back into accelerator files (`validate --fit --write-db`),
//! editing only the `[efficiency]` keys that were fitted so that every other line, comment and
//! source note of the file survives.

use crate::{IoError, Location};
use toml_edit::{DocumentMut, Item, Table, Value};

/// One fitted factor for an accelerator file.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedValue {
    /// The `[efficiency]` key, e.g. `matmul_fraction`.
    pub field: &'static str,
    /// The fitted value, written with four decimals.
    pub value: f64,
    /// The one-line comment written above the key (without `#`): where the value came from.
    pub note: String,
}

/// The accelerator file `text` (read from `path`) with `values` set in its `[efficiency]` table,
/// each preceded by its note; keys that are absent are appended to the table.
pub fn with_fitted(path: &str, text: &str, values: &[FittedValue]) -> Result<String, IoError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| IoError::Parse {
            location: Location::file(path),
            message: e.message().to_string(),
        })?;
    let efficiency = doc
        .entry("efficiency")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| IoError::Field {
            location: Location::file(path),
            field: "efficiency".into(),
            message: "must be a table ([efficiency]) to hold the fitted factors".into(),
        })?;
    for v in values {
        let value: Value = format!("{:.4}", v.value)
            .parse()
            .map_err(|_| IoError::Parse {
                location: Location::file(path),
                message: format!("{} = {} is not a TOML number", v.field, v.value),
            })?;
        efficiency.insert(v.field, Item::Value(value));
        if let Some(mut key) = efficiency.key_mut(v.field) {
            key.leaf_decor_mut().set_prefix(format!("# {}\n", v.note));
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# The part.\nid = \"x\"\n\n[efficiency]\n# Old note.\nmatmul_fraction = 0.5\n# Kept.\nhbm_fraction = 0.85\n";

    #[test]
    fn only_the_fitted_keys_and_their_notes_change() {
        let out = with_fitted(
            "x.toml",
            FILE,
            &[
                FittedValue {
                    field: "matmul_fraction",
                    value: 0.62,
                    note: "Fitted on 3 runs.".into(),
                },
                FittedValue {
                    field: "overlap_penalty",
                    value: 0.48012,
                    note: "Shared.".into(),
                },
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            "# The part.\nid = \"x\"\n\n[efficiency]\n# Fitted on 3 runs.\nmatmul_fraction = 0.6200\n# Kept.\nhbm_fraction = 0.85\n# Shared.\noverlap_penalty = 0.4801\n"
        );
    }

    #[test]
    fn a_file_that_is_not_toml_is_an_error_naming_it() {
        let e = with_fitted("bad.toml", "id = ", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.toml"), "{e}");
    }
}
