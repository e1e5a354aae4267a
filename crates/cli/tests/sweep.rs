//! End-to-end tests of `trainplan sweep` and `trainplan merge`: the plans CSV contract, deadlines
//! and budgets (exit code 3 with what it would take), shards merged into the single-run ranking,
//! and located errors for a bad `[sweep]` section.

mod common;

use common::{root, text, trainplan};

use std::path::Path;

fn scenario(name: &str) -> String {
    root().join("scenarios").join(name).display().to_string()
}

/// A copy of the 13B deadline scenario with `replace` applied, in a temporary folder.
fn variant(dir: &tempfile::TempDir, from: &str, to: &str) -> String {
    let base = std::fs::read_to_string(scenario("deadline-13b-a100.toml")).unwrap();
    assert!(base.contains(from), "{from}");
    let path = dir.path().join("s.toml");
    std::fs::write(&path, base.replace(from, to)).unwrap();
    path.display().to_string()
}

/// Rows of a plans CSV as column maps.
fn rows(csv: &str) -> Vec<Vec<(String, String)>> {
    let mut lines = csv.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

fn get<'a>(row: &'a [(String, String)], key: &str) -> &'a str {
    &row.iter().find(|(k, _)| k == key).unwrap().1
}

#[test]
fn csv_header_matches_the_golden_file() {
    let out = trainplan(&[
        "sweep",
        &scenario("gpt3-175b-a100-deadline.toml"),
        "--format",
        "csv",
        "--top",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let golden = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/plans_header.csv"),
    )
    .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().next(), golden.lines().next());
    assert_eq!(stdout.lines().count(), 4);
}

#[test]
fn summary_line_counts_strategies_and_reasons() {
    let out = trainplan(&[
        "sweep",
        &scenario("gpt3-175b-a100-deadline.toml"),
        "--top",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let first = err.lines().next().unwrap();
    assert!(first.starts_with("evaluated "), "{err}");
    assert!(
        first.contains(" strategies (") && first.contains(" feasible) in "),
        "{err}"
    );
    assert!(err.contains("out_of_memory"), "{err}");
}

#[test]
fn deadline_plans_all_finish_in_time_cheapest_first() {
    let out = trainplan(&[
        "sweep",
        &scenario("deadline-13b-a100.toml"),
        "--format",
        "csv",
        "--top",
        "50",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plans = rows(&text(&out.stdout));
    assert_eq!(plans.len(), 50);
    let mut last_cost = 0.0;
    for p in &plans {
        let days: f64 = get(p, "train_days").parse().unwrap();
        let cost: f64 = get(p, "cost_usd").parse().unwrap();
        assert!(days <= 7.0, "{days}");
        assert!(cost >= last_cost);
        assert_eq!(get(p, "fits"), "true");
        assert_eq!(get(p, "objective"), "cost");
        last_cost = cost;
    }
}

#[test]
fn impossible_deadline_exits_3_saying_what_it_would_take() {
    let dir = tempfile::tempdir().unwrap();
    let path = variant(&dir, "deadline_days = 7.0", "deadline_days = 0.5");
    let out = trainplan(&["sweep", &path]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // The plans CSV keeps its header, with no plan under it.
    let golden =
        std::fs::read_to_string(root().join("crates/cli/tests/golden/plans_header.csv")).unwrap();
    assert_eq!(text(&out.stdout).trim_end(), golden.trim_end());
    let err = text(&out.stderr);
    assert!(
        err.contains("no plan finishes within the deadline of 0.5 days"),
        "{err}"
    );
    assert!(
        err.contains("It would take a deadline of at least"),
        "{err}"
    );
    assert!(err.contains("GPUs"), "{err}");
    assert!(err.contains("closest plans"), "{err}");
}

#[test]
fn impossible_budget_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = variant(&dir, "deadline_days = 7.0", "budget_usd = 100.0");
    let out = trainplan(&["sweep", &path]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("no plan fits the budget of $100"), "{err}");
    assert!(
        err.contains("It would take a budget of at least $"),
        "{err}"
    );
}

#[test]
fn shards_merge_into_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario("deadline-13b-a100.toml");
    let single = dir.path().join("single.csv");
    let out = trainplan(&["sweep", &s, "--top", "15", "-o", single.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut files = Vec::new();
    for k in 1..=3 {
        let f = dir.path().join(format!("shard{k}.csv"));
        let shard = format!("{k}/3");
        let out = trainplan(&[
            "sweep",
            &s,
            "--top",
            "15",
            "--shard",
            &shard,
            "--threads",
            "1",
            "-o",
            f.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        files.push(f.display().to_string());
    }
    let merged = dir.path().join("merged.csv");
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--top", "15", "-o", merged.to_str().unwrap()]);
    let out = trainplan(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(merged).unwrap(),
        std::fs::read_to_string(single).unwrap()
    );
}

#[test]
fn one_thread_and_many_give_the_same_bytes() {
    let s = scenario("gpt3-175b-a100-deadline.toml");
    let one = trainplan(&[
        "sweep",
        &s,
        "--format",
        "csv",
        "--threads",
        "1",
        "--top",
        "40",
    ]);
    let many = trainplan(&[
        "sweep",
        &s,
        "--format",
        "csv",
        "--threads",
        "4",
        "--top",
        "40",
    ]);
    assert!(one.status.success() && many.status.success());
    assert_eq!(one.stdout, many.stdout);
}

#[test]
fn pareto_front_trades_time_for_cost() {
    // Five cluster sizes for GPT-3 175B: the bigger ones finish sooner at a higher cost. (The
    // 13B scenario's data parallelism scales linearly, so one plan dominates its front.)
    let out = trainplan(&[
        "sweep",
        &scenario("gpt3-175b-a100-deadline.toml"),
        "--pareto",
        "--objective",
        "time",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plans = v.as_array().unwrap();
    assert!(plans.len() > 1);
    for w in plans.windows(2) {
        let (t0, t1) = (
            w[0]["train_days"].as_f64().unwrap(),
            w[1]["train_days"].as_f64().unwrap(),
        );
        let (c0, c1) = (
            w[0]["cost_usd"].as_f64().unwrap(),
            w[1]["cost_usd"].as_f64().unwrap(),
        );
        assert!(t0 <= t1 && c0 >= c1, "{t0} {t1} {c0} {c1}");
    }
}

#[test]
fn bad_sweep_field_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = variant(
        &dir,
        "micro_batch = [1, 2, 4, 8]",
        "micro_batch = [1, 2, 4, 8]\nzero = [7]",
    );
    let out = trainplan(&["sweep", &path]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("s.toml:"), "{err}");
    assert!(err.contains("sweep.zero"), "{err}");
    assert!(err.contains("allowed: 0, 1, 2, 3"), "{err}");
}

#[test]
fn bad_shard_is_a_usage_error() {
    let out = trainplan(&[
        "sweep",
        &scenario("deadline-13b-a100.toml"),
        "--shard",
        "4/3",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("K/N"));
    let out = trainplan(&["sweep", &scenario("deadline-13b-a100.toml"), "--top", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn merge_refuses_a_file_that_is_not_a_plans_csv() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.csv");
    std::fs::write(&f, "a,b\n1,2\n").unwrap();
    let out = trainplan(&["merge", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("x.csv:1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_plans_have_typed_values() {
    let out = trainplan(&[
        "sweep",
        &scenario("deadline-13b-a100.toml"),
        "--format",
        "json",
        "--top",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v[0];
    assert!(first["fits"].is_boolean(), "{first}");
    assert!(first["sequence_parallel"].is_boolean(), "{first}");
    assert!(first["mfu"].is_f64(), "{first}");
    assert!(first["n_gpus"].is_u64(), "{first}");
    assert_eq!(first["gpu"], "a100-80gb");
    assert_eq!(first["model"], "gpt3-13b");
}

#[test]
fn moe_sweeps_show_how_experts_split_and_dense_ones_do_not() {
    // The Mixtral scenario's [strategy] becomes a [sweep] over its own cluster.
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(scenario("mixtral-8x7b-h100.toml")).unwrap();
    let cut = base.find("[strategy]").unwrap();
    let path = dir.path().join("moe.toml");
    std::fs::write(&path, format!("{}[sweep]\n", &base[..cut])).unwrap();
    let moe = trainplan(&[
        "sweep",
        &path.display().to_string(),
        "--format",
        "table",
        "--top",
        "400",
    ]);
    assert!(moe.status.success(), "{}", text(&moe.stderr));
    let table = text(&moe.stdout);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    let at = header
        .iter()
        .position(|c| *c == "etp")
        .expect("an etp column");
    assert_eq!(header[at - 1], "ep");
    // Both splits appear among the plans with tp > 1: whole experts (1) and split like tp.
    let tp_at = header.iter().position(|c| *c == "tp").unwrap();
    let (mut whole, mut split) = (false, false);
    for line in table.lines().skip(1) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() != header.len() || cells[tp_at] == "1" {
            continue;
        }
        whole |= cells[at] == "1";
        split |= cells[at] == cells[tp_at];
    }
    assert!(whole && split, "{table}");

    let dense = trainplan(&[
        "sweep",
        &scenario("deadline-13b-a100.toml"),
        "--format",
        "table",
        "--top",
        "3",
    ]);
    assert!(dense.status.success(), "{}", text(&dense.stderr));
    assert!(!text(&dense.stdout).lines().next().unwrap().contains("etp"));
}
