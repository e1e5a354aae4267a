//! End-to-end tests of `trainplan estimate`: the worked examples, every output format,
//! and the rejection of bad input with a usage message instead of a panic.

mod common;

use common::trainplan;

use serde_json::Value;

/// Runs `trainplan estimate ARGS --format json`, checks it succeeded, and parses the object.
fn estimate_json(args: &[&str]) -> Value {
    let mut all = vec!["estimate"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = trainplan(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{all:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

/// Runs `trainplan ARGS`, expects exit code `code`, and returns stderr.
fn fails_with(args: &[&str], code: i32) -> String {
    let out = trainplan(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} wrote to stdout");
    stderr
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number: {v}"))
}

fn close(actual: f64, expected: f64, rel: f64) -> bool {
    ((actual - expected) / expected).abs() <= rel
}

#[test]
fn done_when_13b_on_a100_in_7_days() {
    let v = estimate_json(&[
        "--params",
        "13B",
        "--tokens",
        "260B",
        "--gpu",
        "a100-80gb",
        "--mfu",
        "0.5",
        "--deadline-days",
        "7",
    ]);
    // 6 × 13e9 × 260e9 = 2.028e22 FLOPs.
    assert!(close(num(&v, "training_flops"), 2.028e22, 1e-12), "{v}");
    assert_eq!(num(&v, "training_flops"), num(&v, "flops_6nd"));
    // 2.028e22 / (312e12 × 0.5) / 3600 = 36,111.1 GPU-hours.
    assert!(close(num(&v, "gpu_hours"), 36_111.111, 1e-6), "{v}");
    // 36,111.1 / (24 × 7) = 214.95 GPUs -> 27 DGX A100 nodes of 8 = 216 GPUs, done in 6.97 days.
    assert!(close(num(&v, "gpus_for_deadline_exact"), 214.947, 1e-5));
    assert_eq!(v["gpus_per_node"], 8);
    assert_eq!(v["nodes_for_deadline"], 27);
    assert_eq!(v["gpus_for_deadline"], 216);
    assert_eq!(v["wall_clock_gpus"], 216);
    assert!(num(&v, "wall_clock_days") <= 7.0);
    assert_eq!(num(&v, "mfu"), 0.5);
    assert_eq!(v["mfu_source"], "given");
    assert_eq!(v["tokens_source"], "given");
    assert_eq!(num(&v, "peak_bf16_flops_per_s"), 312e12);
    // 13B in bf16 is 26 GB: it fits one 80 GB GPU; its 208 GB of Adam states need 3.
    assert_eq!(num(&v, "weights_bf16_bytes"), 26e9);
    assert_eq!(num(&v, "model_states_bytes"), 208e9);
    assert_eq!(v["weights_fit_one_gpu"], true);
    assert_eq!(v["min_gpus_for_model_states"], 3);
}

#[test]
fn compute_budget_gives_the_chinchilla_split() {
    let v = estimate_json(&["--compute", "5.76e23"]);
    // Chinchilla: 5.76e23 FLOPs is ~70B parameters on ~1.4T tokens; the 20:1 rule gives 69.3B / 1.39T.
    assert!(close(num(&v, "params"), 69.28e9, 1e-3), "{v}");
    assert!(close(num(&v, "tokens"), 1.3856e12, 1e-3), "{v}");
    assert_eq!(num(&v, "training_flops"), 5.76e23);
    assert_eq!(num(&v, "compute_budget_flops"), 5.76e23);
    assert_eq!(v["tokens_source"], "compute_optimal");
    // Default GPU and MFU are stated.
    assert_eq!(v["gpu"], "h100-sxm");
    assert_eq!(v["mfu_source"], "typical");
    assert_eq!(num(&v, "mfu"), 0.40);
}

#[test]
fn seventy_billion_needs_more_than_one_80gb_gpu() {
    let v = estimate_json(&["--params", "70B", "--gpu", "h100-sxm"]);
    assert_eq!(num(&v, "weights_bf16_bytes"), 140e9);
    assert_eq!(num(&v, "model_states_bytes"), 1120e9);
    assert_eq!(v["weights_fit_one_gpu"], false);
    assert!(v["min_gpus_for_model_states"].as_u64().unwrap() >= 14);
    // Chinchilla default: 20 tokens per parameter.
    assert_eq!(num(&v, "tokens"), 1.4e12);
    assert_eq!(v["tokens_source"], "chinchilla");

    let out = trainplan(&[
        "estimate", "--params", "70B", "--gpu", "h100-sxm", "--format", "table",
    ]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("2 × N = 2 × 7.00e10 = 140 GB"), "{table}");
    assert!(table.contains("140 GB >"), "{table}");
    assert!(table.contains("no, even a forward pass"), "{table}");
}

#[test]
fn preset_adds_the_attention_term() {
    let v = estimate_json(&[
        "--model",
        "llama3-70b",
        "--tokens",
        "15T",
        "--gpus",
        "16384",
    ]);
    assert_eq!(v["model"], "llama3-70b");
    assert!(close(num(&v, "params"), 70.6e9, 0.01), "{v}");
    assert!(num(&v, "flops_with_attention") > num(&v, "flops_6nd"));
    assert_eq!(
        num(&v, "training_flops"),
        num(&v, "flops_with_attention"),
        "time uses the count MFU is defined on"
    );
    let seq = v["seq_len"].as_u64().unwrap();
    let longer = estimate_json(&[
        "--model",
        "llama3-70b",
        "--tokens",
        "15T",
        "--seq-len",
        &(2 * seq).to_string(),
    ]);
    assert!(num(&longer, "flops_with_attention") > num(&v, "flops_with_attention"));
}

#[test]
fn table_teaches_the_method() {
    let out = trainplan(&[
        "estimate",
        "--params",
        "13B",
        "--tokens",
        "260B",
        "--gpu",
        "a100-80gb",
        "--mfu",
        "0.5",
        "--deadline-days",
        "7",
        "--format",
        "table",
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "C = 6 × N × D = 6 × 1.30e10 × 2.60e11 = 2.03e22 FLOPs",
        "C / (peak × MFU) / 3600 = 2.03e22 / (3.12e14 × 0.5) / 3600 = 36,111",
        "27 nodes = 216 GPUs",
        "16 × N = 16 × 1.30e10 = 208 GB",
    ] {
        assert!(table.contains(needle), "missing {needle:?} in\n{table}");
    }
}

#[test]
fn csv_is_one_header_and_one_row_and_o_writes_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("estimate.csv");
    let out = trainplan(&[
        "estimate",
        "--params",
        "7B",
        "--gpu",
        "a100-80gb",
        "--format",
        "csv",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let header: Vec<&str> = lines[0].split(',').collect();
    for key in [
        "training_flops",
        "gpu_hours",
        "wall_clock_days",
        "gpus_for_deadline",
        "cost_usd",
        "weights_bf16_bytes",
        "model_states_bytes",
        "min_gpus_for_model_states",
        "weights_fit_one_gpu",
        "mfu",
        "mfu_source",
    ] {
        assert!(header.contains(&key), "missing column {key}: {}", lines[0]);
    }
}

#[test]
fn help_explains_the_assumptions() {
    let out = trainplan(&["estimate", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Chinchilla",
        "6·N·D",
        "MFU",
        "16 bytes per parameter",
        "whole nodes",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
    }
}

#[test]
fn bad_numbers_are_usage_errors() {
    let stderr = fails_with(&["estimate", "--params", "-5"], 2);
    assert!(stderr.contains("negative"), "{stderr}");
    let stderr = fails_with(&["estimate", "--params", "13B", "--mfu", "1.5"], 2);
    assert!(stderr.contains("at most 1"), "{stderr}");
    let stderr = fails_with(&["estimate", "--params", "13B", "--mfu", "0"], 2);
    assert!(stderr.contains("greater than 0"), "{stderr}");
    for bad in ["NaN", "inf", "", "13G", "lots", "0"] {
        let stderr = fails_with(&["estimate", "--params", bad], 2);
        assert!(stderr.contains("--params"), "{bad}: {stderr}");
    }
    fails_with(&["estimate", "--params", "13B", "--gpus", "0"], 2);
    fails_with(&["estimate", "--params", "13B", "--deadline-days", "-1"], 2);
    fails_with(&["estimate", "--params", "13B", "--price", "-2"], 2);
}

#[test]
fn conflicting_or_missing_sizes_are_usage_errors() {
    fails_with(&["estimate"], 2);
    fails_with(&["estimate", "--params", "13B", "--compute", "1e23"], 2);
    fails_with(&["estimate", "--params", "13B", "--model", "llama3-70b"], 2);
    fails_with(&["estimate", "--compute", "1e23", "--tokens", "1T"], 2);
    fails_with(&["estimate", "--params", "13B", "--seq-len", "4096"], 2);
}

#[test]
fn unknown_gpu_lists_the_known_ids() {
    let stderr = fails_with(&["estimate", "--params", "13B", "--gpu", "nope"], 1);
    assert!(stderr.contains("unknown accelerator `nope`"), "{stderr}");
    assert!(stderr.contains("a100-80gb"), "{stderr}");
    assert!(stderr.contains("h100-sxm"), "{stderr}");
    let stderr = fails_with(&["estimate", "--model", "nope"], 1);
    assert!(stderr.contains("unknown model `nope`"), "{stderr}");
}

#[test]
fn overflowing_inputs_are_errors() {
    let stderr = fails_with(
        &[
            "estimate",
            "--params",
            "1e300",
            "--tokens",
            "1e300",
            "--gpu",
            "a100-80gb",
        ],
        1,
    );
    assert!(stderr.contains("too large"), "{stderr}");
}
