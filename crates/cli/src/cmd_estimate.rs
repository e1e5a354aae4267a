//! `trainplan estimate` (placeholder, issue 5).

use trainplan_io::Database;

/// Arguments of `trainplan estimate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args, _db: &Database) -> anyhow::Result<()> {
    anyhow::bail!("`trainplan estimate` is not implemented yet")
}
