//! `trainplan validate` (placeholder, issue 3).

use std::path::PathBuf;
use trainplan_io::Database;

/// Arguments of `trainplan validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs CSV (see ../shared/data/README.md for the columns).
    pub runs: PathBuf,
}

pub fn run(_args: &Args, _db: &Database) -> anyhow::Result<()> {
    anyhow::bail!("`trainplan validate` is not implemented yet")
}
