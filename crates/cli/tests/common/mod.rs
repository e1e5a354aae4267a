//! Helpers shared by the binary's end-to-end tests: run `trainplan`, find the repository.

#![allow(dead_code)] // Each test file uses its own subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `trainplan` binary built for these tests with `args`, colour off.
pub fn trainplan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainplan"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the trainplan binary runs")
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `rel` (relative to the repository root) as an argument string.
pub fn path(rel: &str) -> String {
    root().join(rel).display().to_string()
}

/// Bytes as (lossy) UTF-8 text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
