//! Regression test: the cost model's predictions against the measured public runs.
//!
//! The thresholds pin what the calibrated model achieves today (see the closing notes of the
//! cost-model work); a change that makes any figure worse fails here. The targets are
//! stated beside each threshold where the model does not reach them yet.

use std::path::{Path, PathBuf};
use trainplan_io::runs::read_runs;
use trainplan_io::Database;
use trainplan_search::validate::{predict, ErrorSummary};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Figures {
    rows: usize,
    modelled: usize,
    tokens: ErrorSummary,
    memory: ErrorSummary,
    oom_rows: usize,
    oom_predicted: usize,
    ran_rows: usize,
    ran_fit: usize,
}

fn figures() -> Figures {
    let path = repo().join("tests/data/runs-public.csv");
    let rows = read_runs(&path).expect("the bundled runs CSV parses");
    let db = Database::bundled().expect("the bundled database loads");
    let label = path.display().to_string();
    let mut tokens = Vec::new();
    let mut memory = Vec::new();
    let (mut modelled, mut oom_rows, mut oom_predicted, mut ran_rows, mut ran_fit) =
        (0, 0, 0, 0, 0);
    for row in &rows {
        let spec = row
            .to_spec(&db, &label)
            .unwrap_or_else(|skip| panic!("{} skipped: {}", row.name, skip.0));
        let p = predict(&spec).unwrap_or_else(|e| panic!("{} has no valid layout: {e}", row.name));
        modelled += 1;
        let e = &p.estimate;
        match row.measured_oom {
            Some(true) => {
                oom_rows += 1;
                oom_predicted += usize::from(!e.fits());
            }
            Some(false) => {
                ran_rows += 1;
                ran_fit += usize::from(e.fits());
                if let Some(m) = row.measured_tokens_per_s_per_gpu {
                    tokens.push((e.tokens_per_s_per_gpu - m) / m);
                }
            }
            None => {}
        }
        if let Some(m) = row.measured_mem_gib {
            memory.push((e.memory.total.gib() - m) / m);
        }
    }
    Figures {
        rows: rows.len(),
        modelled,
        tokens: ErrorSummary::of(&tokens),
        memory: ErrorSummary::of(&memory),
        oom_rows,
        oom_predicted,
        ran_rows,
        ran_fit,
    }
}

#[test]
fn public_runs_stay_within_the_calibrated_error() {
    let f = figures();
    eprintln!(
        "tokens/s per GPU: median {:.3}, worst {:.3} over {}; memory: median {:.3}, worst {:.3} over {}; OOM {}/{}; ran-fit {}/{}",
        f.tokens.median, f.tokens.worst, f.tokens.n, f.memory.median, f.memory.worst, f.memory.n, f.oom_predicted, f.oom_rows, f.ran_fit, f.ran_rows
    );
    assert_eq!(f.modelled, f.rows, "every row is modelled");
    assert!(
        f.tokens.n >= 170,
        "throughput compared on {} rows",
        f.tokens.n
    );
    // Target: median at most 10% (4.3% today: the shape constant is chosen for held-out accuracy,
    // not in-sample; see hardware-db/calibration/README.md).
    assert!(
        f.tokens.median <= 0.05,
        "median throughput error {:.3}",
        f.tokens.median
    );
    // Target: worst at most 35%; today's worst row is S6-r284 (64.6%), torchtitan's fp8 rowwise
    // twin of S6-r282 under vanilla TP, a slowdown torchtitan files as a bug
    // (pytorch/torchtitan#1207); no runs column says rowwise, so the two rows are one input.
    // Next come BLOOM's pre-launch snapshots (S9-r325, 53.8%). S6-r268 (was 68.0%) runs
    // torchtitan's default 1F1B over pp micro-batches (-5.9%).
    assert!(
        f.tokens.worst <= 0.66,
        "worst throughput error {:.3}",
        f.tokens.worst
    );
    // Target: median memory error at most 10% (7.7% today).
    assert!(
        f.memory.median <= 0.10,
        "median memory error {:.3}",
        f.memory.median
    );
    // Target: every OOM row predicted not to fit.
    assert!(
        f.oom_predicted >= 1,
        "OOM rows predicted not to fit: {}/{}",
        f.oom_predicted,
        f.oom_rows
    );
    // Target met: at least 90% of the rows that ran are predicted to fit.
    assert!(
        f.ran_fit * 10 >= f.ran_rows * 9,
        "ran rows predicted to fit: {}/{}",
        f.ran_fit,
        f.ran_rows
    );
}

#[test]
fn bundled_copy_matches_the_shared_runs() {
    let shared = repo().join("../shared/data/runs-public.csv");
    let Ok(original) = std::fs::read(&shared) else {
        eprintln!("{} is absent: nothing to compare", shared.display());
        return;
    };
    let copy = std::fs::read(repo().join("tests/data/runs-public.csv")).expect("copy exists");
    assert!(
        original == copy,
        "tests/data/runs-public.csv differs from {}: refresh the copy",
        shared.display()
    );
}
