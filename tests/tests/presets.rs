//! Every bundled model preset's parameter count, computed from its architecture, matches the
//! figure its authors publish.

use trainplan_io::Database;

/// Presets whose published figure is a rounded name rather than a count, with the tolerance
/// their rounding needs and why. Everything else must land within 1%.
const ROUNDED_NAMES: &[(&str, f64, &str)] = &[
    (
        "gpt3-350m",
        0.02,
        "Brown et al. Table 2.1 names 355.9M parameters \"350M\"",
    ),
    (
        "gpt3-1.3b",
        0.015,
        "Brown et al. Table 2.1 names 1.316B parameters \"1.3B\"",
    ),
    (
        "gpt3-2.7b",
        0.02,
        "Brown et al. Table 2.1 names 2.652B parameters \"2.7B\"",
    ),
    (
        "gpt3-13b",
        0.015,
        "Table 2.1's d_model 5140 contradicts its 40 heads of 128; 5120 gives 12.85B",
    ),
    (
        "megatron-1.7b",
        0.03,
        "Narayanan et al. Table 1 rounds its own 1.652B to 1.7B",
    ),
    (
        "megatron-3.6b",
        0.015,
        "Narayanan et al. Table 1 rounds its own 3.562B to 3.6B",
    ),
    (
        "llama2-70b",
        0.02,
        "Meta names the 68.98B-parameter model \"70B\"",
    ),
];

const DEFAULT_TOLERANCE: f64 = 0.01;

#[test]
fn every_preset_matches_its_published_parameter_count() {
    let db = Database::bundled().expect("bundled database loads");
    let mut failures = Vec::new();
    let mut checked = 0;
    for preset in db.models() {
        let id = preset.model.id.as_str();
        let Some(published) = preset.published_params else {
            failures.push(format!("{id}: no published_params"));
            continue;
        };
        let computed = preset.model.params().total;
        let rel = (computed - published) / published;
        let tolerance = ROUNDED_NAMES
            .iter()
            .find(|(name, _, _)| *name == id)
            .map_or(DEFAULT_TOLERANCE, |(_, t, _)| *t);
        if rel.abs() > tolerance {
            failures.push(format!(
                "{id}: computed {computed:.4e} vs published {published:.4e} ({:+.2}%, allowed {:.1}%)",
                rel * 100.0,
                tolerance * 100.0
            ));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 31, "only {checked} presets");
}

#[test]
fn rounding_exceptions_are_still_needed() {
    // An exception that a preset no longer needs would hide a future regression.
    let db = Database::bundled().expect("bundled database loads");
    for (id, _, why) in ROUNDED_NAMES {
        let preset = db
            .model(id, &trainplan_io::Location::file("presets.rs"))
            .expect("exception names a bundled preset");
        let published = preset.published_params.expect("has published_params");
        let rel = (preset.model.params().total - published) / published;
        assert!(
            rel.abs() > DEFAULT_TOLERANCE,
            "{id} is within 1% now ({why}); drop the exception"
        );
    }
}

#[test]
fn the_promised_presets_are_bundled() {
    let db = Database::bundled().expect("bundled database loads");
    let here = trainplan_io::Location::file("presets.rs");
    let ids = [
        "gpt3-125m",
        "gpt3-350m",
        "gpt3-760m",
        "gpt3-1.3b",
        "gpt3-2.7b",
        "gpt3-6.7b",
        "gpt3-13b",
        "gpt3-175b",
        "megatron-1.7b",
        "megatron-3.6b",
        "megatron-7.5b",
        "megatron-18b",
        "megatron-39b",
        "megatron-76b",
        "megatron-145b",
        "megatron-310b",
        "megatron-530b",
        "megatron-1t",
        "bloom-176b",
        "opt-175b",
        "mt-nlg-530b",
        "llama2-7b",
        "llama2-13b",
        "llama2-70b",
        "llama3-8b",
        "llama3-70b",
        "llama3.1-8b",
        "llama3.1-70b",
        "llama3.1-405b",
        "mpt-7b",
        "mpt-30b",
        "mixtral-8x7b",
        "qwen3-30b-a3b",
        "qwen3-235b-a22b",
        "qwen1.5-moe-a2.7b",
    ];
    for id in ids {
        let p = db.model(id, &here).expect("preset is bundled");
        assert!(p.model.validate().is_ok(), "{id}");
        assert!(!p.source.is_empty(), "{id}");
    }
}
