//! `trainplan evaluate` and `trainplan explain` (placeholder, issue 3).

use std::path::PathBuf;
use trainplan_io::Database;

/// Arguments of `trainplan evaluate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file.
    pub scenario: PathBuf,
}

/// Arguments of `trainplan explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Scenario file.
    pub scenario: PathBuf,
}

pub fn run(_args: &Args, _db: &Database) -> anyhow::Result<()> {
    anyhow::bail!("`trainplan evaluate` is not implemented yet")
}

pub fn explain(_args: &ExplainArgs, _db: &Database) -> anyhow::Result<()> {
    anyhow::bail!("`trainplan explain` is not implemented yet")
}
