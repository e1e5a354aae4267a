//! The bad-inputs corpus (`tests/bad-inputs/cases.toml`) run through the `trainplan` binary, and
//! the promises about output files: `-o` never leaves a partial file or clobbers a good one, and a
//! reader that closes the pipe early is not an error.

use serde::Deserialize;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    case: Vec<Case>,
}

/// One malformed input and what trainplan must answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// The input, relative to the corpus folder; replaces `{file}` in `command`.
    file: Option<String>,
    /// Arguments after `trainplan`.
    command: Vec<String>,
    /// Expected exit code.
    exit_code: i32,
    /// Words stderr must contain.
    contains: Vec<String>,
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/bad-inputs")
}

fn trainplan(dir: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainplan"))
        .args(args)
        .current_dir(dir)
        // A terminal-free, colour-free run, as in CI.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("failed to start trainplan")
}

/// What is wrong with one case's run, if anything.
fn check(case: &Case, out: &Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    if out.status.code() != Some(case.exit_code) {
        problems.push(format!(
            "exit code {:?}, expected {}",
            out.status.code(),
            case.exit_code
        ));
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        problems.push("panicked".into());
    }
    // A bad input writes nothing; a valid request with no plan (exit 3) writes at most the
    // plans CSV header, so the file contract holds for scripts.
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    let allowed = usize::from(case.exit_code == 3);
    if lines > allowed {
        problems.push(format!(
            "wrote {} bytes ({lines} lines) to stdout on error",
            out.stdout.len()
        ));
    }
    for word in &case.contains {
        if !stderr.contains(word.as_str()) {
            problems.push(format!("stderr lacks `{word}`"));
        }
    }
    // Usage errors come from clap; every other refusal is ours and must start the same way and
    // name the input it refuses.
    if case.exit_code == 1 {
        if !stderr.starts_with("error: ") {
            problems.push("stderr does not start with `error: `".into());
        }
        if let Some(file) = &case.file {
            if !stderr.contains(file.as_str()) {
                problems.push(format!("stderr does not name the file `{file}`"));
            }
        }
    }
    (!problems.is_empty())
        .then(|| format!("{}\n  stderr: {}", problems.join("; "), stderr.trim_end()))
}

#[test]
fn every_bad_input_is_refused_clearly_without_a_panic() {
    let dir = corpus();
    let text = std::fs::read_to_string(dir.join("cases.toml")).expect("cases.toml");
    let manifest: Manifest = toml::from_str(&text).expect("cases.toml parses");
    assert!(
        manifest.case.len() >= 30,
        "the corpus must hold at least 30 cases"
    );
    let mut failures = Vec::new();
    for case in &manifest.case {
        let args: Vec<String> = case
            .command
            .iter()
            .map(|a| match &case.file {
                Some(f) => a.replace("{file}", f),
                None => a.clone(),
            })
            .collect();
        let out = trainplan(&dir, &args);
        if let Some(problem) = check(case, &out) {
            failures.push(format!("trainplan {}: {problem}", args.join(" ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        manifest.case.len(),
        failures.join("\n")
    );
}

#[test]
fn every_corpus_file_is_used_by_a_case() {
    // A file added to the corpus but not to the manifest would silently test nothing.
    let dir = corpus();
    let text = std::fs::read_to_string(dir.join("cases.toml")).expect("cases.toml");
    let manifest: Manifest = toml::from_str(&text).expect("cases.toml parses");
    let used: Vec<&str> = manifest
        .case
        .iter()
        .filter_map(|c| c.file.as_deref())
        .collect();
    for sub in ["scenario", "runs", "sweep", "hwdb"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("corpus folder") {
            let name = format!("{sub}/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(
                used.contains(&name.as_str()),
                "{name} is in no case of cases.toml"
            );
        }
    }
}

/// A scratch folder holding a copy of the public runs CSV and one bad runs CSV.
fn scratch() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = corpus();
    std::fs::copy(
        corpus.join("runs/bad-integer-cell.csv"),
        tmp.path().join("bad.csv"),
    )
    .unwrap();
    std::fs::copy(
        corpus.join("scenario/zero-gpus.toml"),
        tmp.path().join("bad.toml"),
    )
    .unwrap();
    tmp
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_error_leaves_no_output_file_and_no_temporary() {
    let tmp = scratch();
    let before = names_in(tmp.path());
    for args in [
        ["validate", "bad.csv", "-o", "out.csv"],
        ["evaluate", "bad.toml", "-o", "out.csv"],
    ] {
        let args: Vec<String> = args.iter().map(ToString::to_string).collect();
        let out = trainplan(tmp.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(names_in(tmp.path()), before, "{args:?} left a file behind");
    }
}

#[test]
fn an_error_never_clobbers_a_previous_good_file() {
    let tmp = scratch();
    let good = b"rank,gpu\n1,h100-sxm\n";
    for (command, input, out_name) in [
        ("validate", "bad.csv", "out.csv"),
        ("evaluate", "bad.toml", "plans.csv"),
    ] {
        std::fs::write(tmp.path().join(out_name), good).unwrap();
        let args: Vec<String> = [command, input, "-o", out_name, "--format", "csv"]
            .iter()
            .map(ToString::to_string)
            .collect();
        let out = trainplan(tmp.path(), &args);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(std::fs::read(tmp.path().join(out_name)).unwrap(), good);
    }
    let tmp_files: Vec<String> = names_in(tmp.path())
        .into_iter()
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(tmp_files.is_empty(), "temporary files left: {tmp_files:?}");
}

#[test]
fn an_unwritable_destination_is_refused_and_names_the_path() {
    let tmp = scratch();
    let args: Vec<String> = [
        "estimate",
        "--params",
        "13B",
        "-o",
        "no-such-folder/out.csv",
        "--format",
        "csv",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let out = trainplan(tmp.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no-such-folder/out.csv"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_successful_run_replaces_the_file_whole() {
    let tmp = scratch();
    std::fs::write(tmp.path().join("est.csv"), b"old").unwrap();
    let args: Vec<String> = [
        "estimate", "--params", "13B", "-o", "est.csv", "--format", "csv",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let out = trainplan(tmp.path(), &args);
    assert_eq!(out.status.code(), Some(0));
    let written = std::fs::read_to_string(tmp.path().join("est.csv")).unwrap();
    assert!(written.starts_with("gpu,"), "{written}");
    assert_eq!(names_in(tmp.path()).len(), 3, "{:?}", names_in(tmp.path()));
}

/// Runs trainplan with its stdout closed before it writes, as `trainplan ... | head -1` leaves it
/// once head has its line, and returns the exit status and stderr.
fn with_closed_stdout(args: &[&std::ffi::OsStr]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trainplan"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end at once, before trainplan has computed anything: its first write then
    // meets a closed pipe (EPIPE). Reading a line first would not do, as the whole output fits in
    // the pipe's buffer and no write would ever fail.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap(), stderr)
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    // A closed pipe is the reader's choice, not a failure: exit 0, no message.
    let runs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/runs-public.csv");
    let mut runs_args = vec![
        std::ffi::OsStr::new("validate"),
        std::ffi::OsStr::new("--format"),
        std::ffi::OsStr::new("csv"),
    ];
    runs_args.push(runs.as_os_str());
    let mut commands = vec![
        vec![
            std::ffi::OsStr::new("models"),
            std::ffi::OsStr::new("--format"),
            std::ffi::OsStr::new("csv"),
        ],
        vec![
            std::ffi::OsStr::new("estimate"),
            std::ffi::OsStr::new("--params"),
            std::ffi::OsStr::new("13B"),
            std::ffi::OsStr::new("--format"),
            std::ffi::OsStr::new("csv"),
        ],
    ];
    // The team's public runs live beside the repository; outside it, the other commands still
    // exercise the same path through `output::emit` and `main`.
    if runs.exists() {
        commands.push(runs_args);
    }
    for args in commands {
        let (status, stderr) = with_closed_stdout(&args);
        assert!(status.success(), "{args:?}: exit {status:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}
