//! `trainplan sweep` and `trainplan merge` (placeholder, issue 4).

use std::path::PathBuf;
use trainplan_io::Database;

/// Arguments of `trainplan sweep`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file.
    pub scenario: PathBuf,
}

/// Arguments of `trainplan merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Plans CSV files from sharded sweeps.
    pub files: Vec<PathBuf>,
}

pub fn run(_args: &Args, _db: &Database) -> anyhow::Result<()> {
    anyhow::bail!("`trainplan sweep` is not implemented yet")
}

pub fn merge(_args: &MergeArgs) -> anyhow::Result<()> {
    anyhow::bail!("`trainplan merge` is not implemented yet")
}
