//! Files in and out of trainplan: the hardware database, model presets, scenarios, runs CSV and
//! plans CSV, converted into the domain types of the other crates.
//!
//! Roles:
//! - [`Database`]: accelerators, node layouts and model presets, bundled into the binary from
//!   `hardware-db/` and `scenarios/models/`, optionally extended from a directory.
//! - [`scenario`]: the scenario TOML (model, cluster, job, strategy or search space).
//! - [`runs`]: the measured-runs CSV that `trainplan validate` reads.
//! - [`atomic`]: output files written to a temporary sibling and renamed into place.
//!
//! Every error names the file, the line and column where the format gives one, the field, what
//! was found and what is allowed ([`IoError`]).

pub mod atomic;
mod csvfile;
mod database;
mod errors;
pub mod fitted;
mod hardware_file;
pub mod numbers;
pub mod plans;
mod preset_file;
pub mod runs;
pub mod scenario;
pub mod sweep;
pub mod tomlfile;

pub use database::{Database, ModelPreset};
pub use errors::{IoError, Location};
