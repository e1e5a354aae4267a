//! The `trainplan` command: plans distributed training runs of large language models.

mod cmd_estimate;
mod cmd_evaluate;
mod cmd_hardware;
mod cmd_models;
mod cmd_sweep;
mod cmd_validate;
mod explain_sweep;
mod output;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Plan distributed training runs of transformer language models: which parallel layouts fit,
/// how fast each runs, and what the whole run costs.
///
/// MFU throughout means model FLOPs (no recomputation; attention counted as 12·l·h·s FLOPs per
/// token, PaLM appendix B) per second, over the dense peak FLOP/s of the precision in use.
///
/// Exit codes: 0 success; 1 bad input or I/O error; 2 usage error; 3 the request was valid but no
/// plan satisfies it.
#[derive(Debug, Parser)]
#[command(
    name = "trainplan",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Folder of extra hardware and model files (accelerators/, nodes/, models/) that extend or
    /// replace the bundled database by id.
    #[arg(long, global = true, value_name = "DIR")]
    hardware_db: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the bundled accelerators and node layouts.
    Hardware(cmd_hardware::Args),
    /// List the bundled model presets with their parameter counts.
    Models(cmd_models::Args),
    /// Back-of-envelope sizing: compute, GPU-hours, GPUs for a deadline, memory.
    Estimate(cmd_estimate::Args),
    /// Price the one strategy a scenario gives: memory and step time, broken down.
    Evaluate(cmd_evaluate::Args),
    /// Like evaluate, written for a person: each number's formula, the bottleneck, what to change.
    Explain(cmd_evaluate::ExplainArgs),
    /// Predict measured runs (a runs CSV) and report the errors.
    Validate(cmd_validate::Args),
    /// Sweep every valid layout of a scenario and rank the plans.
    Sweep(cmd_sweep::Args),
    /// Merge the plans CSVs of sharded sweeps into the ranking one run gives.
    Merge(cmd_sweep::MergeArgs),
}

/// The request was valid but no plan satisfies it (exit code 3).
#[derive(Debug)]
pub struct NoPlan(pub String);

impl std::fmt::Display for NoPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoPlan {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = run(cli);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let db = || output::load_database(cli.hardware_db.as_deref());
    match cli.command {
        Command::Hardware(args) => cmd_hardware::run(&args, &db()?),
        Command::Models(args) => cmd_models::run(&args, &db()?),
        Command::Estimate(args) => cmd_estimate::run(&args, &db()?),
        Command::Evaluate(args) => cmd_evaluate::run(&args, &db()?),
        Command::Explain(args) => cmd_evaluate::explain(&args, &db()?),
        Command::Validate(args) => cmd_validate::run(&args, &db()?),
        Command::Sweep(args) => cmd_sweep::run(&args, &db()?),
        Command::Merge(args) => cmd_sweep::merge(&args),
    }
}

/// Prints the error chain and picks the exit code; a closed pipe is success.
fn report(e: &anyhow::Error) -> ExitCode {
    for cause in e.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
        }
    }
    eprintln!("error: {}", chain_message(e));
    if e.downcast_ref::<NoPlan>().is_some() {
        ExitCode::from(3)
    } else {
        ExitCode::from(1)
    }
}

/// The error and its causes joined by ": ", skipping a cause whose text the message already
/// holds: `IoError::Read` says "cannot read x: No such file" and also carries the OS error as
/// its source, which `{:#}` would print twice.
fn chain_message(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}
