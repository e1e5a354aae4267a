//! The efficiency factors of accelerators without measured runs are derived from the calibrated
//! ones (`hardware-db/calibration/README.md`): their best-shape GEMM measurement (MAMF, from
//! `../shared/data/hardware/README.md`) times the calibrated silicon's fitted-to-MAMF ratio.
//! A refit that forgets to carry the new values over fails here.

use std::path::Path;

/// `[efficiency]` of `hardware-db/accelerators/<id>.toml`.
fn efficiency(id: &str) -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(format!("hardware-db/accelerators/{id}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let file: toml::Table = text.parse().unwrap();
    file["efficiency"].as_table().unwrap().clone()
}

fn get(t: &toml::Table, key: &str) -> f64 {
    t[key].as_float().unwrap()
}

/// Best-shape BF16 and FP8 GEMM over the dense peak (ml-engineering, via the hardware README).
const A100_MAMF: f64 = 271.2 / 312.0;
const H100_MAMF: f64 = 794.5 / 989.4;
const H100_FP8_MAMF: f64 = 1402.6 / 1978.9;
const B200_MAMF: f64 = 1745.0 / 2250.0;
const B200_FP8_MAMF: f64 = 3432.5 / 4500.0;
const GB200_MAMF: f64 = 1822.0 / 2500.0;
const GB200_FP8_MAMF: f64 = 3615.6 / 5000.0;
const MI300X_MAMF: f64 = 668.4 / 1307.4;

fn close(what: &str, got: f64, want: f64) {
    // The files round to three decimals.
    assert!(
        (got - want).abs() <= 1.5e-3,
        "{what}: the file says {got}, the derivation gives {want:.4}"
    );
}

#[test]
fn accelerators_sharing_silicon_share_the_fitted_factors() {
    for (fitted, sharing) in [
        ("a100-80gb", &["a100-40gb", "a100-80gb-pcie", "a800"][..]),
        ("h100-sxm", &["h200", "h800", "h100-pcie"][..]),
    ] {
        let f = efficiency(fitted);
        for id in sharing {
            let e = efficiency(id);
            for key in ["matmul_fraction", "attention_fraction"] {
                close(&format!("{id} {key}"), get(&e, key), get(&f, key));
            }
        }
    }
    let h = efficiency("h100-sxm");
    for id in ["h200", "h800", "h100-pcie"] {
        close(
            &format!("{id} fp8_matmul_fraction"),
            get(&efficiency(id), "fp8_matmul_fraction"),
            get(&h, "fp8_matmul_fraction"),
        );
    }
}

#[test]
fn accelerators_without_runs_carry_the_calibrated_ratios() {
    let (a, h) = (efficiency("a100-80gb"), efficiency("h100-sxm"));
    let h_ratio = get(&h, "matmul_fraction") / H100_MAMF;
    let h_fp8_ratio = get(&h, "fp8_matmul_fraction") / H100_FP8_MAMF;
    let a_ratio = get(&a, "matmul_fraction") / A100_MAMF;
    let h_attention = get(&h, "attention_fraction") / get(&h, "matmul_fraction");
    let a_attention = get(&a, "attention_fraction") / get(&a, "matmul_fraction");

    for (id, mamf, fp8_mamf) in [
        ("b200", B200_MAMF, B200_FP8_MAMF),
        ("gb200", GB200_MAMF, GB200_FP8_MAMF),
    ] {
        let e = efficiency(id);
        let matmul = mamf * h_ratio;
        close(&format!("{id} matmul"), get(&e, "matmul_fraction"), matmul);
        close(
            &format!("{id} fp8"),
            get(&e, "fp8_matmul_fraction"),
            fp8_mamf * h_fp8_ratio,
        );
        close(
            &format!("{id} attention"),
            get(&e, "attention_fraction"),
            h_attention * get(&e, "matmul_fraction"),
        );
    }

    let e = efficiency("mi300x");
    let matmul = MI300X_MAMF * (a_ratio + h_ratio) / 2.0;
    close("mi300x matmul", get(&e, "matmul_fraction"), matmul);
    close(
        "mi300x fp8",
        get(&e, "fp8_matmul_fraction"),
        get(&e, "matmul_fraction") * h_fp8_ratio / h_ratio,
    );
    close(
        "mi300x attention",
        get(&e, "attention_fraction"),
        (a_attention + h_attention) / 2.0 * get(&e, "matmul_fraction"),
    );
}
