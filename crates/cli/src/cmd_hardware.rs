//! `trainplan hardware` (placeholder, issue 2).

use trainplan_io::Database;

/// Arguments of `trainplan hardware`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format (default: table on a terminal, csv otherwise).
    #[arg(long, value_enum)]
    pub format: Option<crate::output::Format>,
}

pub fn run(_args: &Args, _db: &Database) -> anyhow::Result<()> {
    anyhow::bail!("`trainplan hardware` is not implemented yet")
}
