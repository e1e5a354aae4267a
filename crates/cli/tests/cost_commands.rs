//! End-to-end tests of the commands built on the cost model: `evaluate`, `explain` and `validate`.

mod common;

use common::{path, root, text, trainplan};

use std::process::Command;

#[test]
fn evaluate_json_breaks_memory_and_time_down() {
    let out = trainplan(&[
        "evaluate",
        &path("scenarios/gpt3-175b-megatron.toml"),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("missing {k}: {v}"));
    let parts = [
        "mem_weights_gib",
        "mem_gradients_gib",
        "mem_optimizer_gib",
        "mem_activations_gib",
        "mem_comm_buffers_gib",
        "mem_reserve_gib",
    ];
    let sum: f64 = parts.iter().map(|k| f(k)).sum();
    assert!(
        (sum - f("mem_total_gib")).abs() < 1e-6,
        "{sum} vs {}",
        f("mem_total_gib")
    );
    let times = [
        "compute_s",
        "tp_comm_s",
        "cp_comm_s",
        "ep_comm_s",
        "pp_comm_s",
        "dp_comm_s",
        "bubble_s",
        "optimizer_s",
    ];
    let step: f64 = times.iter().map(|k| f(k)).sum();
    assert!(
        (step - f("step_time_s")).abs() < 1e-9 * step,
        "{step} vs {}",
        f("step_time_s")
    );
    assert_eq!(v["fits"], true);
    assert_eq!(v["tp"], 8);
    assert_eq!(v["pp"], 16);
    assert_eq!(v["dp"], 12);
    // GPT-3 175B at tp 8 / pp 16 on A100: Narayanan et al. 2021 report 40-50% of peak.
    let mfu = f("mfu");
    assert!((0.3..0.6).contains(&mfu), "mfu {mfu}");
    let tokens = f("tokens_per_s_per_gpu");
    assert!((f("tokens_per_s") / 1536.0 - tokens).abs() < 1e-6 * tokens);
}

#[test]
fn evaluate_csv_is_one_header_and_one_row() {
    let out = trainplan(&[
        "evaluate",
        &path("scenarios/llama3-70b-fsdp-h100.toml"),
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 2, "{s}");
    for col in [
        "mem_total_gib",
        "step_time_s",
        "tokens_per_s_per_gpu",
        "mfu",
        "bottleneck",
        "train_days",
        "cost_usd",
    ] {
        assert!(
            lines[0].split(',').any(|c| c == col),
            "missing {col} in {}",
            lines[0]
        );
    }
}

#[test]
fn explain_names_formulas_and_the_binding_constraint() {
    let out = trainplan(&["explain", &path("scenarios/llama3-70b-fsdp-h100.toml")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for needle in [
        "## Memory per GPU",
        "Korthikanti",
        "Rajbhandari",
        "## Time per step",
        "## Binding constraint",
        "MFU",
        "## One change away",
    ] {
        assert!(s.contains(needle), "missing {needle}:\n{s}");
    }
    // Each priced alternative is faster than the plan, fastest first (the Megatron GPT-3
    // scenario has some; the FSDP one above has none).
    let out = trainplan(&["explain", &path("scenarios/gpt3-175b-megatron.toml")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let step = number_after(&s, "## Time per step:");
    let alternatives: Vec<f64> = s
        .split("## One change away")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("- "))
        .map(|l| number_after(l, ":"))
        .collect();
    assert!(!alternatives.is_empty(), "{s}");
    assert!(
        alternatives.windows(2).all(|w| w[0] <= w[1]),
        "{alternatives:?}"
    );
    assert!(
        alternatives.iter().all(|&t| t < step),
        "{alternatives:?} vs {step}"
    );
}

#[test]
fn explain_of_a_sweep_scenario_says_why_the_runner_up_lost() {
    let out = trainplan(&["explain", &path("scenarios/deadline-13b-a100.toml")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("## Runner-up"), "{s}");
    assert!(
        s.contains("ranked by cost among plans that finish within 7 days"),
        "{s}"
    );
}

#[test]
fn evaluate_without_a_strategy_points_at_sweep() {
    let out = trainplan(&["evaluate", &path("scenarios/deadline-13b-a100.toml")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("[strategy]") && err.contains("trainplan sweep"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn validate_csv_has_one_row_per_run_and_a_summary() {
    let out = trainplan(&[
        "validate",
        &path("tests/data/runs-public.csv"),
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    for col in [
        "name",
        "measured_tokens_per_s_per_gpu",
        "predicted_tokens_per_s_per_gpu",
        "tokens_rel_error",
        "measured_mem_gib",
        "predicted_mem_gib",
        "measured_oom",
        "predicted_fits",
        "choices",
        "skipped",
    ] {
        assert!(header.iter().any(|h| h == col), "missing {col}");
    }
    // The step breakdown is appended: compute, exposed communication and bubble add up to the
    // step but for the optimizer update.
    let last: Vec<&str> = header.iter().rev().take(4).map(String::as_str).collect();
    assert_eq!(
        last,
        [
            "bubble_s",
            "exposed_comm_s",
            "compute_s",
            "predicted_step_time_s"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 178);
    let n = header.len();
    for r in &records {
        let f = |i: usize| r[i].parse::<f64>().unwrap();
        let (step, parts) = (f(n - 4), f(n - 3) + f(n - 2) + f(n - 1));
        assert!(
            step > 0.0 && parts <= step * (1.0 + 1e-3) && parts > 0.9 * step,
            "{r:?}"
        );
    }
    let err = text(&out.stderr);
    for needle in [
        "median abs rel error",
        "worst",
        "source S1",
        "gpu h100-sxm",
        "predicted not to fit",
    ] {
        assert!(err.contains(needle), "summary lacks {needle}:\n{err}");
    }
}

#[test]
fn validate_json_summary_has_the_figures() {
    let out = trainplan(&[
        "validate",
        &path("tests/data/runs-public.csv"),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["summary"];
    let median = s["tokens_median_abs_rel_error"].as_f64().unwrap();
    assert!(median > 0.0 && median < 0.10, "{median}");
    assert_eq!(s["skipped"], 0);
    assert_eq!(v["runs"].as_array().unwrap().len(), 178);
}

/// A runs file of the public file's header and its first row (S1-r1) on an unknown accelerator.
fn runs_on_unknown_gpu(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let src = std::fs::read_to_string(root().join("tests/data/runs-public.csv")).unwrap();
    let mut lines = src.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap().replacen("h100-sxm", "tpu-v9", 1);
    let file = dir.path().join("runs.csv");
    std::fs::write(&file, format!("{header}\n{row}\n")).unwrap();
    file
}

#[test]
fn validate_reports_unmodellable_rows_as_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let file = runs_on_unknown_gpu(&dir);
    let out = trainplan(&["validate", file.to_str().unwrap(), "--format", "csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("unknown accelerator `tpu-v9`"), "{s}");
    assert!(
        text(&out.stderr).contains("skipped 1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_stated_head_width_lifts_the_heads_divide_hidden_rule() {
    // 48 heads do not divide hidden 2000 (tests/bad-inputs refuses that file); with 64-wide heads
    // stated, Q, K, V and O are 48 · 64 = 3072 wide. Per layer: 4 · 2000 · 3072 attention
    // weights, 3072 + 2 · 3072 + 2000 biases, a 2 · 2000 · 8000 GELU FFN with 8000 + 2000 biases
    // and two LayerNorms of 2 · 2000; 24 layers, untied 50257-token embedding and output, and a
    // final LayerNorm.
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(
        root().join("tests/bad-inputs/scenario/inline-heads-not-dividing-hidden.toml"),
    )
    .unwrap();
    let file = dir.path().join("wide.toml");
    std::fs::write(
        &file,
        src.replace("n_heads = 48\n", "n_heads = 48\nhead_dim = 64\n"),
    )
    .unwrap();
    let v = evaluate_json(file.to_str().unwrap());
    let per_layer = 4.0 * 2000.0 * 3072.0
        + (3072.0 + 2.0 * 3072.0 + 2000.0)
        + 2.0 * 2000.0 * 8000.0
        + 10000.0
        + 2.0 * 4000.0;
    let expected = 24.0 * per_layer + 2.0 * 50257.0 * 2000.0 + 4000.0;
    assert_eq!(v["params"].as_f64().unwrap(), expected);
}

#[test]
fn validate_explains_one_run_beside_its_measurements() {
    // The torchtitan row predicted furthest from its measurement: the explanation shows the
    // measured and predicted figures, what validate chose, and the plan's reasoning.
    let runs = path("tests/data/runs-public.csv");
    let out = trainplan(&["validate", &runs, "--explain", "S6-r284"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let csv = trainplan(&["validate", &runs, "--format", "csv"]);
    let row = text(&csv.stdout)
        .lines()
        .find(|l| l.starts_with("S6-r284,"))
        .expect("the row is in the csv")
        .to_string();
    let predicted = row.split(',').nth(5).unwrap();
    for needle in [
        "# Run S6-r284",
        "measured 3708.5",
        &format!("predicted {predicted} ("),
        // An FSDP layout that names no framework is priced as PyTorch's, which validate
        // reports, and so its collectives are not assumed to overlap (async TP is opt-in).
        "chosen where the row is silent: sequence_parallel=true, framework=pytorch",
        "## Memory per GPU",
        "## Time per step",
        "## Binding constraint",
        "priced with PyTorch's conventions (FSDP is PyTorch's unless [job] framework says otherwise)",
    ] {
        assert!(s.contains(needle), "missing {needle:?} in\n{s}");
    }
    // An unknown name and a skipped row are bad input (exit 1) with the file and the reason.
    let out = trainplan(&["validate", &runs, "--explain", "S6-r999"]);
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("no run named `S6-r999`") && e.contains("S1-r1"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = runs_on_unknown_gpu(&dir);
    let out = trainplan(&["validate", file.to_str().unwrap(), "--explain", "S1-r1"]);
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(e.contains("runs.csv:2") && e.contains("tpu-v9"), "{e}");
}

/// Fails when `stored` (under the repository root) is not what `validate runs --format csv` prints.
fn assert_residuals_fresh(runs: &str, stored: &str) {
    // Run from the repository root so the file label inside the output is the same relative path.
    let out = Command::new(env!("CARGO_BIN_EXE_trainplan"))
        .current_dir(root())
        .args(["validate", runs, "--format", "csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let kept = std::fs::read_to_string(root().join(stored)).unwrap();
    assert!(
        text(&out.stdout) == kept,
        "{stored} is stale: regenerate it with\n  trainplan validate {runs} --format csv -o {stored}"
    );
}

#[test]
fn calibration_residuals_are_up_to_date() {
    assert_residuals_fresh(
        "tests/data/runs-public.csv",
        "hardware-db/calibration/residuals.csv",
    );
}

#[test]
fn external_check_residuals_are_up_to_date() {
    // Published runs outside the fit (tests/data/runs-external.csv): the calibration README quotes
    // these errors, so they must move with the model.
    assert_residuals_fresh(
        "tests/data/runs-external.csv",
        "hardware-db/calibration/external.csv",
    );
}

/// The first number after `key` in `s`.
fn number_after(s: &str, key: &str) -> f64 {
    let rest = &s[s.find(key).unwrap_or_else(|| panic!("no `{key}` in {s}")) + key.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after `{key}` in {s}"))
}

#[test]
fn bundled_calibration_is_the_fit_of_the_public_runs() {
    // Refitting from the bundled factors must not find a better fit: the hardware-db holds the
    // optimum, so a cost-model change that moves it fails here until the factors are refitted.
    let out = trainplan(&["validate", &path("tests/data/runs-public.csv"), "--fit"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let before = number_after(&s, "rms ln(pred/meas)");
    let after = number_after(&s, "->");
    assert!(
        before - after < 0.002,
        "refit improves {before} -> {after}: update hardware-db\n{s}"
    );
    for field in [
        "matmul_fraction",
        "attention_fraction",
        "fp8_matmul_fraction",
        "overlap_penalty",
    ] {
        assert!(s.contains(field), "{field} missing from the fit:\n{s}");
    }
}

/// Whether two accelerator files are the same up to the last printed decimal of their numbers
/// (a libm that rounds `ln` differently may move a fit in its fifth decimal).
fn same_file_up_to_rounding(a: &str, b: &str) -> bool {
    let number = |line: &str| -> Option<(String, f64)> {
        let (key, value) = line.split_once(" = ")?;
        Some((key.to_string(), value.parse().ok()?))
    };
    a.lines().count() == b.lines().count()
        && a.lines().zip(b.lines()).all(|(x, y)| {
            x == y
                || matches!((number(x), number(y)), (Some((kx, vx)), Some((ky, vy))) if kx == ky && (vx - vy).abs() <= 1.5e-4)
        })
}

#[test]
fn the_bundled_accelerator_files_are_what_the_fit_writes() {
    // `validate --fit --write-db DIR` on the public runs rewrites every accelerator file the
    // factors apply to; the bundled ones must come out unchanged (notes included), so the
    // hardware-db is exactly the fit and can be regenerated with one command.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trainplan"))
        .current_dir(root())
        .args([
            "validate",
            "tests/data/runs-public.csv",
            "--fit",
            "--write-db",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written: Vec<_> = std::fs::read_dir(dir.path().join("accelerators"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let bundled = std::fs::read_dir(root().join("hardware-db/accelerators"))
        .unwrap()
        .count();
    assert_eq!(written.len(), bundled, "{written:?}");
    for file in written {
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        let fitted = std::fs::read_to_string(&file).unwrap();
        let stored =
            std::fs::read_to_string(root().join("hardware-db/accelerators").join(&name)).unwrap();
        assert!(
            same_file_up_to_rounding(&fitted, &stored),
            "hardware-db/accelerators/{name} is not the fit; regenerate with `trainplan validate tests/data/runs-public.csv --fit --write-db hardware-db`\n{fitted}"
        );
    }
    // The written database loads, and prices a scenario.
    let out = trainplan(&[
        "--hardware-db",
        dir.path().to_str().unwrap(),
        "evaluate",
        &path("scenarios/gpt3-175b-megatron.toml"),
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Without --fit there is nothing to write: a usage error.
    let out = trainplan(&[
        "validate",
        &path("tests/data/runs-public.csv"),
        "--write-db",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn cross_validation_reports_every_source_held_out() {
    let out = trainplan(&[
        "validate",
        &path("tests/data/runs-public.csv"),
        "--cross-validate",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for source in ["S1", "S2", "S5", "S6", "S9"] {
        assert!(s.contains(&format!("source {source}:")), "{s}");
    }
    // Held-out accuracy today: 7.4% median over 174 runs; fail if it slips.
    let median = number_after(&s, "all held-out runs: 174 runs, median abs rel error");
    assert!(median <= 7.6, "held-out median {median}%\n{s}");
    // Each fold's fitted factors are listed.
    for source in ["S1", "S2", "S5", "S6", "S9"] {
        assert!(
            s.contains(&format!("#   without {source}: matmul_fraction ")),
            "{s}"
        );
    }
}

#[test]
fn a_strategy_that_does_not_fit_prints_its_numbers_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(root().join("scenarios/mixtral-8x7b-h100.toml")).unwrap();
    let file = dir.path().join("oom.toml");
    std::fs::write(
        &file,
        src.replace("recompute = \"full\"", "recompute = \"none\"")
            .replace("zero = 1", "zero = 0"),
    )
    .unwrap();
    let out = trainplan(&["evaluate", file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["fits"], false);
    assert!(
        text(&out.stderr).contains("does not fit"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn output_files_are_csv_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.csv");
    let out = trainplan(&[
        "evaluate",
        &path("scenarios/gpt3-175b-megatron.toml"),
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.starts_with("scenario,model,params,"), "{written}");
}

/// Held-out median (percent) with the four calibrated accelerators' `matmul_half_dim` set to `d0`.
fn held_out_median_with_half_dim(d0: f64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let acc = dir.path().join("accelerators");
    std::fs::create_dir(&acc).unwrap();
    for id in ["a100-40gb", "a100-80gb", "h100-sxm", "h200"] {
        let src =
            std::fs::read_to_string(root().join(format!("hardware-db/accelerators/{id}.toml")))
                .unwrap();
        let line = src
            .lines()
            .find(|l| l.starts_with("matmul_half_dim = "))
            .unwrap();
        let patched = src.replace(line, &format!("matmul_half_dim = {d0:.1}"));
        std::fs::write(acc.join(format!("{id}.toml")), patched).unwrap();
    }
    let out = trainplan(&[
        "--hardware-db",
        dir.path().to_str().unwrap(),
        "validate",
        &path("tests/data/runs-public.csv"),
        "--cross-validate",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    number_after(
        &text(&out.stdout),
        "all held-out runs: 174 runs, median abs rel error",
    )
}

#[test]
fn the_bundled_shape_constant_is_the_cross_validated_choice() {
    // hardware-db/calibration/README.md: fitted in-sample the shape constant climbs to ~450 and
    // predicts unseen sources worse; the bundled 200 must keep beating it held out (by 0.4 points
    // since torchtitan's pipelines run their default schedule; the README's scans), and neither a
    // smaller nor a larger constant in the flat band may do clearly better.
    // Every bundled accelerator carries the cross-validated value.
    let files: Vec<_> = std::fs::read_dir(root().join("hardware-db/accelerators"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 10, "{files:?}");
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        assert!(
            src.lines().any(|l| l == "matmul_half_dim = 200.0"),
            "{} does not carry the cross-validated matmul_half_dim = 200.0",
            path.display()
        );
    }
    let bundled = held_out_median_with_half_dim(200.0);
    let in_sample_optimum = held_out_median_with_half_dim(453.5);
    let smaller = held_out_median_with_half_dim(100.0);
    let larger = held_out_median_with_half_dim(300.0);
    assert!(
        bundled + 0.3 <= in_sample_optimum,
        "held out: {bundled}% at 200 against {in_sample_optimum}% at 453.5"
    );
    for (d0, other) in [(100, smaller), (300, larger)] {
        assert!(
            bundled <= other + 0.3,
            "held out: {bundled}% at 200 against {other}% at {d0}"
        );
    }
}

#[test]
fn explain_says_when_layers_do_not_divide_into_model_chunks() {
    // GPT-3 175B's 96 layers on pp 16 × vpp 4 = 64 chunks: 32 of 2 layers and 32 of 1, the
    // busiest rank holds 6 and the fill and drain pass chunks of 2.
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(root().join("scenarios/gpt3-175b-megatron.toml")).unwrap();
    let file = dir.path().join("uneven.toml");
    std::fs::write(&file, src.replace("vpp = 2", "vpp = 4")).unwrap();
    let out = trainplan(&["explain", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("The busiest pipeline rank holds 6 layers"),
        "{s}"
    );
    assert!(s.contains("(pp - 1) chunks of 2 layer(s)"), "{s}");
    assert!(
        s.contains("the 96 layers do not divide into pp × vpp = 64 chunks"),
        "{s}"
    );
}

/// `trainplan evaluate FILE --format json`, which must succeed.
fn evaluate_json(file: &str) -> serde_json::Value {
    let out = trainplan(&["evaluate", file, "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_optimizer_field_changes_the_gradients_and_the_explanation() {
    // The bundled Megatron scenario, and the same file with DeepSpeed's gradient layout.
    let dir = tempfile::tempdir().unwrap();
    let megatron = path("scenarios/gpt3-175b-megatron.toml");
    let src = std::fs::read_to_string(&megatron).unwrap();
    assert!(src.contains("optimizer = \"megatron\""), "{src}");
    let deepspeed = dir.path().join("deepspeed.toml");
    std::fs::write(
        &deepspeed,
        src.replace("optimizer = \"megatron\"", "optimizer = \"deepspeed\""),
    )
    .unwrap();
    assert_eq!(evaluate_json(&megatron)["optimizer"], "megatron");
    let gradients_gib = |file: &str| evaluate_json(file)["mem_gradients_gib"].as_f64().unwrap();
    let (m, d) = (
        gradients_gib(&megatron),
        gradients_gib(deepspeed.to_str().unwrap()),
    );
    // 4 bytes per parameter against 2 + 4 at ZeRO-1 in bf16.
    assert!(
        (d / m - 1.5).abs() < 1e-9,
        "megatron {m} GiB, deepspeed {d} GiB"
    );
    let out = trainplan(&["explain", &megatron]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let explained = text(&out.stdout);
    assert!(
        explained.contains("main-gradient buffer") && explained.contains("dist_optimizer.md"),
        "{explained}"
    );
}

#[test]
fn the_framework_field_prices_its_conventions_and_rejects_what_it_cannot_run() {
    // The bundled Megatron GPT-3 scenario (tp 8 × pp 16, interleaved) under each framework.
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(path("scenarios/gpt3-175b-megatron.toml")).unwrap();
    let with = |framework: &str| {
        let file = dir.path().join(format!("{framework}.toml"));
        std::fs::write(
            &file,
            src.replace("[job]\n", &format!("[job]\nframework = \"{framework}\"\n")),
        )
        .unwrap();
        file.to_str().unwrap().to_string()
    };
    let megatron = evaluate_json(&with("megatron"));
    assert_eq!(megatron["framework"], "megatron");
    assert_eq!(
        evaluate_json(&path("scenarios/gpt3-175b-megatron.toml"))["framework"],
        serde_json::Value::Null
    );
    // DeepSpeed's pipeline engine cannot interleave: the error names the field and the fix.
    let out = trainplan(&["evaluate", &with("deepspeed")]);
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("vpp") && e.contains("DeepSpeed") && e.contains("1F1B"),
        "{e}"
    );
    // Under PyTorch "selective" is op-level checkpointing: it keeps every other product's
    // output where Megatron's (attention scores only, never stored by the fused kernel) keeps
    // everything, and reruns the rest in backward.
    let pytorch = evaluate_json(&with("pytorch"));
    let get = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    assert!(
        get(&pytorch, "mem_activations_gib") < get(&megatron, "mem_activations_gib"),
        "{pytorch} vs {megatron}"
    );
    assert!(get(&pytorch, "compute_s") > get(&megatron, "compute_s"));
    // HFU counts the rerun products; Megatron's fused-kernel selective reruns nothing.
    assert!(get(&pytorch, "hfu") > get(&pytorch, "mfu"));
    assert_eq!(get(&megatron, "hfu"), get(&megatron, "mfu"));
    let out = trainplan(&["explain", &with("pytorch")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let explained = text(&out.stdout);
    assert!(
        explained.contains("priced with PyTorch's conventions")
            && explained.contains("op-level selective checkpointing"),
        "{explained}"
    );
    // An unknown framework is refused with the allowed names.
    let out = trainplan(&["evaluate", &with("jax")]);
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(e.contains("job.framework") && e.contains("pytorch"), "{e}");
}

#[test]
fn the_cross_entropy_field_sizes_the_logits_and_defaults_by_framework() {
    // Llama 3 70B under FSDP + tp 8 (the bundled torchtitan layout): 8192 · 16 · 128256 / 8
    // = 2.1e9 logits per GPU, 12 bytes each under PyTorch's eager fp32 loss, 4 under a fused
    // one (PyTorch's default), 6 under Megatron's vocab-parallel loss.
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(path("scenarios/llama3-70b-fsdp-h100.toml")).unwrap();
    let with = |line: &str| {
        let file = dir.path().join(format!("{}.toml", line.len()));
        std::fs::write(&file, src.replace("[job]\n", &format!("[job]\n{line}\n"))).unwrap();
        file.to_str().unwrap().to_string()
    };
    let act = |v: &serde_json::Value| v["mem_activations_gib"].as_f64().unwrap();
    let unstated = evaluate_json(&with(""));
    assert_eq!(unstated["cross_entropy"], "fused");
    let eager = evaluate_json(&with("cross_entropy = \"fp32_eager\""));
    assert_eq!(eager["cross_entropy"], "fp32_eager");
    let megatron = evaluate_json(&with("framework = \"megatron\""));
    assert_eq!(megatron["cross_entropy"], "vocab_parallel");
    let logits_gib = 8192.0 * 16.0 * 128256.0 / 8.0 / (1u64 << 30) as f64;
    assert!(
        (act(&eager) - act(&unstated) - 8.0 * logits_gib).abs() < 1e-6,
        "{} vs {}",
        act(&eager),
        act(&unstated)
    );
    let out = trainplan(&["explain", &with("cross_entropy = \"fp32_eager\"")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let explained = text(&out.stdout);
    assert!(
        explained.contains("at 12 bytes each")
            && explained.contains("cross_entropy = \"fp32_eager\""),
        "{explained}"
    );
    let out = trainplan(&["evaluate", &with("cross_entropy = \"chunked\"")]);
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("cross_entropy") && e.contains("fp32_eager") && e.contains(".toml"),
        "{e}"
    );
}

#[test]
fn a_scenario_states_multi_head_latent_attention_in_deepseek_s_names() {
    // DeepSeek-V3's shapes, every layer MoE, on 2048 H800s with full recomputation; then with
    // its dense leading layers.
    let dir = tempfile::tempdir().unwrap();
    let src = r#"[model]
name = "DeepSeek-V3 shapes"
n_layers = 61
hidden = 7168
n_heads = 128
ffn = 2048
ffn_act = "swiglu"
vocab = 129280
seq_len = 4096
moe_experts = 256
moe_top_k = 8
moe_shared_ffn = 2048

[model.mla]
q_lora_rank = 1536
kv_lora_rank = 512
qk_nope_head_dim = 128
qk_rope_head_dim = 64
v_head_dim = 128

[cluster]
gpu = "h800"
n_gpus = 2048

[job]
global_batch = 15360
tokens = "14.8T"
precision = "fp8"

[strategy]
tp = 1
pp = 16
ep = 64
micro_batch = 1
zero = 1
recompute = "full"
"#;
    let write = |name: &str, text: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        file.to_str().unwrap().to_string()
    };
    let v3 = evaluate_json(&write("v3.toml", src));
    // 61 layers of 187.1M attention + 257 × 44.0M FFN + router, plus two 0.93B embeddings.
    let params = v3["params"].as_f64().unwrap();
    assert!((params / 1e9 - 703.8).abs() < 0.1, "{params}");
    let out = trainplan(&["explain", &write("v3.toml", src)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let explained = text(&out.stdout);
    assert!(
        explained.contains("128 heads of 192 (multi-head latent attention: a 512-rank key/value latent and a 1536-rank query latent"),
        "{explained}"
    );
    // A head_dim that contradicts nope + rope, and grouped KV heads, are refused by name.
    let bad = |from: &str, to: &str| {
        let out = trainplan(&["evaluate", &write("bad.toml", &src.replace(from, to))]);
        assert!(!out.status.success());
        text(&out.stderr)
    };
    let e = bad("n_heads = 128\n", "n_heads = 128\nhead_dim = 128\n");
    assert!(
        e.contains("model.mla.qk_nope_head_dim") && e.contains("192"),
        "{e}"
    );
    let e = bad("n_heads = 128\n", "n_heads = 128\nn_kv_heads = 8\n");
    assert!(
        e.contains("model.n_kv_heads") && e.contains("latent"),
        "{e}"
    );
    let e = bad("v_head_dim = 128", "v_head_dim = 128\nrope = 1");
    assert!(e.contains("rope"), "{e}");
    // Its first 3 layers dense, as released: 671.03B (671B published), the same as the preset.
    let released = src.replace(
        "moe_shared_ffn = 2048\n",
        "moe_shared_ffn = 2048\nmoe_dense_layers = 3\nmoe_dense_ffn = 18432\n",
    );
    let v3 = evaluate_json(&write("released.toml", &released));
    let params = v3["params"].as_f64().unwrap();
    assert!((params / 1e9 - 671.03).abs() < 0.01, "{params}");
    let preset = released
        .split("[cluster]")
        .nth(1)
        .map(|rest| format!("[model]\npreset = \"deepseek-v3\"\n\n[cluster]{rest}"))
        .unwrap();
    assert_eq!(
        evaluate_json(&write("preset.toml", &preset))["params"],
        v3["params"]
    );
    // Dense layers need their width, and an MoE model to precede.
    let e = bad(
        "moe_shared_ffn = 2048\n",
        "moe_shared_ffn = 2048\nmoe_dense_layers = 3\n",
    );
    assert!(e.contains("model.moe_dense_ffn"), "{e}");
}

#[test]
fn an_exposed_gradient_reduction_is_a_strategy_field() {
    // The bundled Megatron GPT-3 layout (ZeRO-1 over 12 data-parallel ranks), and the same with
    // the reduction after the last backward, as Megatron-LM before --overlap-grad-reduce.
    let dir = tempfile::tempdir().unwrap();
    let plain = path("scenarios/gpt3-175b-megatron.toml");
    let src = std::fs::read_to_string(&plain).unwrap();
    assert!(!src.contains("dp_comm_overlap"), "{src}");
    let exposed = dir.path().join("exposed.toml");
    std::fs::write(&exposed, format!("{src}dp_comm_overlap = false\n")).unwrap();
    let exposed = exposed.to_str().unwrap();
    let (a, b) = (evaluate_json(&plain), evaluate_json(exposed));
    assert_eq!(a["dp_comm_overlap"], true);
    assert_eq!(b["dp_comm_overlap"], false);
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    assert!(f(&b, "dp_comm_s") > f(&a, "dp_comm_s"));
    assert!(f(&b, "tokens_per_s") < f(&a, "tokens_per_s"));
    assert_eq!(f(&a, "compute_s"), f(&b, "compute_s"));
    assert_eq!(f(&a, "mem_total_gib"), f(&b, "mem_total_gib"));
    let out = trainplan(&["explain", exposed]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("dp_comm_overlap = false reduces after the last backward"),
        "{}",
        text(&out.stdout)
    );
    // DeepSpeed below ZeRO-3 exposes it whatever the field says, and says why.
    let out = trainplan(&["explain", &path("scenarios/bloom-176b-deepspeed.toml")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("DeepSpeed below ZeRO-3 reduces on the compute stream"),
        "{}",
        text(&out.stdout)
    );
    // Not a boolean: the file, the field and what is allowed.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, format!("{src}dp_comm_overlap = \"later\"\n")).unwrap();
    let out = trainplan(&["evaluate", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("bad.toml") && e.contains("dp_comm_overlap"),
        "{e}"
    );
}

#[test]
fn overlapping_the_expert_all_to_all_is_a_strategy_field() {
    // NVIDIA's Qwen3-235B layout, and the same with the all-to-all behind another micro-batch
    // (the Megatron-MoE-ModelZoo run that measured 12% faster with its "1F1B A2A overlap").
    let dir = tempfile::tempdir().unwrap();
    let plain = path("scenarios/qwen3-235b-folding-h100.toml");
    let src = std::fs::read_to_string(&plain).unwrap();
    assert!(!src.contains("ep_comm_overlap"), "{src}");
    let overlapped = dir.path().join("overlapped.toml");
    std::fs::write(&overlapped, format!("{src}ep_comm_overlap = true\n")).unwrap();
    let overlapped = overlapped.to_str().unwrap();
    let (a, b) = (evaluate_json(&plain), evaluate_json(overlapped));
    assert_eq!(a["ep_comm_overlap"], false);
    assert_eq!(b["ep_comm_overlap"], true);
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    assert!(f(&b, "tokens_per_s") > f(&a, "tokens_per_s"));
    assert_eq!(f(&a, "compute_s"), f(&b, "compute_s"));
    assert_eq!(f(&a, "mem_total_gib"), f(&b, "mem_total_gib"));
    let out = trainplan(&["explain", overlapped]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("behind another micro-batch's compute"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn the_expert_dispatcher_is_a_strategy_field() {
    // NVIDIA's Qwen3-235B layout with DeepEP (as the model zoo ran it) and with a plain
    // all-to-all: ep 32 spans four nodes, so sending each token once per node is faster.
    let dir = tempfile::tempdir().unwrap();
    let deepep = path("scenarios/qwen3-235b-folding-h100.toml");
    let src = std::fs::read_to_string(&deepep).unwrap();
    assert!(src.contains("ep_dispatcher = \"deepep\""), "{src}");
    let plain = dir.path().join("alltoall.toml");
    std::fs::write(
        &plain,
        src.replace("ep_dispatcher = \"deepep\"", "ep_dispatcher = \"alltoall\""),
    )
    .unwrap();
    let plain = plain.to_str().unwrap();
    let (a, b) = (evaluate_json(plain), evaluate_json(&deepep));
    assert_eq!(a["ep_dispatcher"], "alltoall");
    assert_eq!(b["ep_dispatcher"], "deepep");
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    assert!(f(&b, "tokens_per_s") > 1.2 * f(&a, "tokens_per_s"));
    assert_eq!(f(&a, "compute_s"), f(&b, "compute_s"));
    let out = trainplan(&["explain", &deepep]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("once per destination node"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn explaining_an_moe_sweep_names_the_expert_layout_of_the_runner_up() {
    // The bundled Mixtral scenario without its [strategy], swept with the all-to-all overlapped.
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(path("scenarios/mixtral-8x7b-h100.toml")).unwrap();
    let head = &src[..src
        .find("[strategy]")
        .expect("the scenario has a [strategy]")];
    let file = dir.path().join("mixtral-sweep.toml");
    std::fs::write(
        &file,
        format!("{head}\n[sweep]\nn_gpus = [64]\nep_comm_overlap = true\n"),
    )
    .unwrap();
    let out = trainplan(&["explain", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let runner_up = s
        .lines()
        .find(|l| l.starts_with("## Runner-up"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(runner_up.contains(" × ep 8"), "{runner_up}");
    assert!(
        runner_up.contains("overlapping the expert all-to-all"),
        "{runner_up}"
    );
}
