//! Output plumbing shared by the subcommands: formats, destinations, the database.

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use trainplan_io::Database;

/// How tabular output is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a person.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// JSON.
    Json,
}

impl Format {
    /// The format to use when none was given: CSV into a file (`-o`) or a pipe, a table on a
    /// terminal, so that a command writes the same file whether a person or a script runs it.
    pub fn or_default(given: Option<Format>, out: Option<&PathBuf>) -> Format {
        use std::io::IsTerminal;
        given.unwrap_or(if out.is_none() && std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Csv
        })
    }
}

/// Loads the bundled database, extended by `--hardware-db DIR` when given.
pub fn load_database(extra: Option<&Path>) -> anyhow::Result<Database> {
    let mut db = Database::bundled().context("failed to load the bundled hardware database")?;
    if let Some(dir) = extra {
        db.extend_from_dir(dir)
            .with_context(|| format!("failed to load --hardware-db {}", dir.display()))?;
    }
    Ok(db)
}

/// Fails early when `-o FILE` cannot be written because its folder does not exist, so that a
/// long run does not end in an I/O error.
pub fn check_destination(out: Option<&PathBuf>) -> anyhow::Result<()> {
    let Some(path) = out else { return Ok(()) };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    anyhow::ensure!(
        dir.is_dir(),
        "cannot write {}: the folder {} does not exist",
        path.display(),
        dir.display()
    );
    Ok(())
}

/// Writes `bytes` to `-o FILE` atomically, or to stdout.
pub fn emit(out: Option<&PathBuf>, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(path) = out {
        trainplan_io::atomic::write_atomic(path, bytes)?;
    } else {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(bytes)?;
        stdout.flush()?;
    }
    Ok(())
}

/// Renders rows as aligned columns (first row = header), right-aligning numbers.
pub fn table(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; n];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            let numeric = cell.parse::<f64>().is_ok();
            if numeric {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
