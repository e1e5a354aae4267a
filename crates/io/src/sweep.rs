//! The `[sweep]` section of a scenario: which accelerators, GPU counts, batches and strategy
//! options a sweep considers, turned into a `trainplan_search::SpaceSpec`.
//!
//! ```toml
//! [sweep]
//! gpus = ["a100-80gb", "h100-sxm"]                 # default: [cluster].gpu
//! n_gpus_range = { min = 64, max = 8192, step = 8 } # or n_gpus = [64, 128]; default [cluster].n_gpus
//! global_batch = [1024, 1536]                      # default: [job].global_batch
//! micro_batch = [1, 2, 4, 8]                       # default: every divisor up to max_micro_batch
//! max_micro_batch = 16
//! zero = [0, 1, 2, 3]
//! recompute = ["none", "selective", "full"]
//! sequence_parallel = [false, true]                # tried only when tp > 1
//! vpp = [1, 2, 4]                                  # values above 1 only when pp > 1
//! cp = [1]
//! ep = [1, 2, 4, 8]                                # MoE only; default every divisor of the experts
//! max_tp = 8                                       # the node's scale-up domain bounds tp anyway
//! max_pp = 64                                      # the model's layers bound pp anyway
//! flash_attention = true
//! prices = { "h100-sxm" = 3.5 }                    # USD per GPU-hour, overriding the database
//! ```

use crate::scenario::{RecomputeName, Scenario};
use crate::{tomlfile, Database, IoError, Location};
use serde::Deserialize;
use std::collections::BTreeMap;
use trainplan_search::{MicroBatches, SpaceSpec, Target};

/// Most GPU counts one sweep lists (a range with a tiny step over a huge span is a typo).
const MAX_COUNTS: u64 = 100_000;
/// Largest GPU count.
const MAX_GPUS: u32 = 1_000_000;

/// The raw `[sweep]` table.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    /// Accelerator ids.
    pub gpus: Option<Vec<String>>,
    /// GPU counts.
    pub n_gpus: Option<Vec<u32>>,
    /// GPU counts as a range.
    pub n_gpus_range: Option<RangeSection>,
    /// Global batches.
    pub global_batch: Option<Vec<u32>>,
    /// Micro-batches.
    pub micro_batch: Option<Vec<u32>>,
    /// Largest micro-batch when `micro_batch` is not listed.
    pub max_micro_batch: Option<u32>,
    /// ZeRO stages.
    pub zero: Option<Vec<u8>>,
    /// Recomputation modes.
    pub recompute: Option<Vec<RecomputeName>>,
    /// Sequence-parallel settings.
    pub sequence_parallel: Option<Vec<bool>>,
    /// Virtual stages.
    pub vpp: Option<Vec<u32>>,
    /// Context-parallel degrees.
    pub cp: Option<Vec<u32>>,
    /// Expert-parallel degrees.
    pub ep: Option<Vec<u32>>,
    /// Largest tensor-parallel degree.
    pub max_tp: Option<u32>,
    /// Largest pipeline degree.
    pub max_pp: Option<u32>,
    /// Fused attention.
    pub flash_attention: Option<bool>,
    /// Overlap tensor-parallel collectives with matrix products (default false).
    pub tp_comm_overlap: Option<bool>,
    /// Overlap the expert all-to-all with another micro-batch's computation (default false).
    pub ep_comm_overlap: Option<bool>,
    /// Overlap the gradient reduction below ZeRO-3 with backward (default true).
    pub dp_comm_overlap: Option<bool>,
    /// The framework's expert dispatcher: `alltoall` (default) or `deepep`.
    pub ep_dispatcher: Option<crate::scenario::EpDispatcherName>,
    /// Also try keeping experts whole (etp 1) when tp > 1 (default true).
    pub whole_experts: Option<bool>,
    /// Also try tp past the key/value heads, each head replicated (default false).
    pub replicate_kv_heads: Option<bool>,
    /// USD per GPU-hour by accelerator id.
    pub prices: Option<BTreeMap<String, f64>>,
}

/// `n_gpus_range = { min, max, step }`.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RangeSection {
    /// Smallest count.
    pub min: u32,
    /// Largest count (included when on the step).
    pub max: u32,
    /// Step (default: the node's GPUs, so that counts are whole nodes).
    pub step: Option<u32>,
}

/// Only the `[sweep]` table of a scenario file, so that its errors carry line and column.
#[derive(Debug, Deserialize)]
struct SweepOnly {
    sweep: Option<SweepSection>,
}

/// Builds the search space of `scenario`: its `[sweep]` table, with every field defaulting to
/// the scenario's own `[cluster]` and `[job]` values.
pub fn space(scenario: &Scenario, db: &Database) -> Result<SpaceSpec, IoError> {
    let path = scenario.path.as_str();
    let text = scenario.text.as_str();
    let section = if scenario.sweep.is_some() {
        tomlfile::parse::<SweepOnly>(path, text)?
            .sweep
            .unwrap_or_default()
    } else {
        SweepSection::default()
    };
    build(scenario, db, &section)
}

fn build(scenario: &Scenario, db: &Database, s: &SweepSection) -> Result<SpaceSpec, IoError> {
    let path = scenario.path.as_str();
    let text = scenario.text.as_str();
    let at = |key: &str| tomlfile::locate(path, text, "sweep", key);
    let err = |key: &str, message: String| IoError::Field {
        location: at(key),
        field: format!("sweep.{key}"),
        message,
    };
    let own = &scenario.cluster;

    let prices = s.prices.clone().unwrap_or_default();
    for (id, &p) in &prices {
        if !(p.is_finite() && p > 0.0 && p < 1e6) {
            return Err(err(
                "prices",
                format!("price of `{id}` must be a positive number of USD per GPU-hour, found {p}"),
            ));
        }
    }
    let ids = match &s.gpus {
        Some(v) if v.is_empty() => {
            return Err(err(
                "gpus",
                "lists no accelerator; give at least one id (see `trainplan hardware`)".into(),
            ))
        }
        Some(v) => v.clone(),
        None => vec![own.accelerator.id.clone()],
    };
    let mut targets = Vec::new();
    for id in &ids {
        let target = if *id == own.accelerator.id {
            Target {
                accelerator: own.accelerator.clone(),
                node: own.node.clone(),
                price_usd_per_gpu_hour: scenario.price_usd_per_gpu_hour,
            }
        } else {
            let accelerator = db.accelerator(id, &at("gpus"))?.clone();
            let node = db.node(&accelerator.default_node, &at("gpus"))?.clone();
            let price = accelerator.price_usd_per_gpu_hour;
            Target {
                accelerator,
                node,
                price_usd_per_gpu_hour: price,
            }
        };
        let price = prices.get(id).copied().or(target.price_usd_per_gpu_hour);
        targets.push(Target {
            price_usd_per_gpu_hour: price,
            ..target
        });
    }
    if let Some(unknown) = prices.keys().find(|id| !ids.contains(id)) {
        return Err(err(
            "prices",
            format!(
                "`{unknown}` is not one of the swept accelerators ({})",
                ids.join(", ")
            ),
        ));
    }

    let n_gpus = match (&s.n_gpus, s.n_gpus_range) {
        (Some(_), Some(_)) => {
            return Err(err(
                "n_gpus_range",
                "give either `n_gpus` (a list) or `n_gpus_range`, not both".into(),
            ))
        }
        (Some(v), None) => {
            check_list(v, "n_gpus", 1, MAX_GPUS, &err)?;
            v.clone()
        }
        (None, Some(r)) => range(r, targets.first().map_or(8, |t| t.node.gpus_per_node), &err)?,
        (None, None) => match own.n_gpus {
            Some(n) => vec![n],
            None => {
                return Err(IoError::Field {
                    location: tomlfile::locate(path, text, "sweep", "n_gpus"),
                    field: "sweep.n_gpus".into(),
                    message: "is required when [cluster] has no n_gpus: a list such as [64, 128] or n_gpus_range = { min = 64, max = 1024, step = 8 }".into(),
                })
            }
        },
    };
    let global_batch = match &s.global_batch {
        Some(v) => {
            check_list(v, "global_batch", 1, 100_000_000, &err)?;
            v.clone()
        }
        None => vec![scenario.job.global_batch],
    };

    let mut spec = SpaceSpec::new(targets, n_gpus, global_batch);
    if let Some(v) = &s.micro_batch {
        if s.max_micro_batch.is_some() {
            return Err(err(
                "max_micro_batch",
                "applies only when `micro_batch` is not listed; remove one of the two".into(),
            ));
        }
        check_list(v, "micro_batch", 1, 65_536, &err)?;
        spec.micro_batch = MicroBatches::List(v.clone());
    } else if let Some(max) = s.max_micro_batch {
        if max == 0 || max > 65_536 {
            return Err(err(
                "max_micro_batch",
                format!("must be between 1 and 65536, found {max}"),
            ));
        }
        spec.micro_batch = MicroBatches::Divisors { max };
    }
    if let Some(v) = &s.zero {
        if v.is_empty() {
            return Err(err("zero", "lists no stage; allowed: 0, 1, 2, 3".into()));
        }
        if let Some(z) = v.iter().find(|&&z| z > 3) {
            return Err(err(
                "zero",
                format!("ZeRO stage {z} does not exist; allowed: 0, 1, 2, 3"),
            ));
        }
        spec.zero.clone_from(v);
    }
    if let Some(v) = &s.recompute {
        if v.is_empty() {
            return Err(err(
                "recompute",
                "lists no mode; allowed: \"none\", \"selective\", \"full\"".into(),
            ));
        }
        spec.recompute = v.iter().map(|&r| r.into()).collect();
    }
    if let Some(v) = &s.sequence_parallel {
        if v.is_empty() {
            return Err(err(
                "sequence_parallel",
                "lists no setting; allowed: true, false".into(),
            ));
        }
        spec.sequence_parallel.clone_from(v);
    }
    if let Some(v) = &s.vpp {
        check_list(v, "vpp", 1, 1024, &err)?;
        spec.vpp.clone_from(v);
    }
    if let Some(v) = &s.cp {
        check_list(v, "cp", 1, 65_536, &err)?;
        let seq = scenario.job.seq_len;
        if let Some(bad) = v.iter().find(|&&cp| seq % cp != 0) {
            return Err(err(
                "cp",
                format!("{bad} does not divide the sequence length {seq}; context parallelism splits the sequence into equal chunks"),
            ));
        }
        spec.cp.clone_from(v);
    }
    if let Some(v) = &s.ep {
        if scenario.model.moe.is_none() {
            return Err(err(
                "ep",
                "expert parallelism needs an MoE model (moe_experts in [model])".into(),
            ));
        }
        check_list(v, "ep", 1, 65_536, &err)?;
        let experts = scenario.model.moe.map_or(1, |m| m.experts);
        if let Some(bad) = v.iter().find(|&&ep| experts % ep != 0) {
            return Err(err(
                "ep",
                format!("{bad} does not divide the model's {experts} experts; use divisors of {experts}"),
            ));
        }
        spec.ep = Some(v.clone());
    }
    for (key, v) in [("max_tp", s.max_tp), ("max_pp", s.max_pp)] {
        if let Some(x) = v {
            if x == 0 || x > 65_536 {
                return Err(err(key, format!("must be between 1 and 65536, found {x}")));
            }
        }
    }
    spec.max_tp = s.max_tp;
    spec.max_pp = s.max_pp;
    if let Some(f) = s.flash_attention {
        spec.flash_attention = f;
    }
    if let Some(o) = s.tp_comm_overlap {
        if o && !spec.sequence_parallel.contains(&true) {
            return Err(err(
                "tp_comm_overlap",
                "overlapping the tensor-parallel collectives needs sequence parallelism, and sequence_parallel = [false] rules it out; add true to sequence_parallel or drop tp_comm_overlap".into(),
            ));
        }
        spec.tp_comm_overlap = o;
    }
    if let Some(o) = s.ep_comm_overlap {
        spec.ep_comm_overlap = o;
    }
    if let Some(o) = s.dp_comm_overlap {
        spec.dp_comm_overlap = o;
    }
    if let Some(d) = s.ep_dispatcher {
        spec.ep_dispatcher = d.into();
    }
    if let Some(w) = s.whole_experts {
        spec.whole_experts = w;
    }
    if let Some(r) = s.replicate_kv_heads {
        spec.replicate_kv_heads = r;
    }
    Ok(spec)
}

fn check_list(
    v: &[u32],
    key: &str,
    min: u32,
    max: u32,
    err: &impl Fn(&str, String) -> IoError,
) -> Result<(), IoError> {
    if v.is_empty() {
        return Err(err(
            key,
            format!("lists no value; give integers between {min} and {max}"),
        ));
    }
    if let Some(x) = v.iter().find(|&&x| x < min || x > max) {
        return Err(err(
            key,
            format!("{x} is out of range; allowed: integers between {min} and {max}"),
        ));
    }
    Ok(())
}

fn range(
    r: RangeSection,
    gpus_per_node: u32,
    err: &impl Fn(&str, String) -> IoError,
) -> Result<Vec<u32>, IoError> {
    let step = r.step.unwrap_or(gpus_per_node.max(1));
    if r.min == 0 || r.max > MAX_GPUS || r.min > r.max || step == 0 {
        return Err(err(
            "n_gpus_range",
            format!(
                "needs 1 ≤ min ≤ max ≤ {MAX_GPUS} and step ≥ 1, found min {} max {} step {step}",
                r.min, r.max
            ),
        ));
    }
    let count = u64::from(r.max - r.min) / u64::from(step) + 1;
    if count > MAX_COUNTS {
        return Err(err(
            "n_gpus_range",
            format!("lists {count} GPU counts, more than {MAX_COUNTS}; use a larger step"),
        ));
    }
    Ok((r.min..=r.max).step_by(step as usize).collect())
}

/// The location of `[sweep]` in a scenario, for errors raised after loading (the search's).
pub fn location(scenario: &Scenario) -> Location {
    tomlfile::locate(&scenario.path, &scenario.text, "sweep", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[model]\npreset = \"gpt3-13b\"\n\n[cluster]\ngpu = \"a100-80gb\"\nn_gpus = 64\n\n[job]\nglobal_batch = 512\ntokens = 260e9\n";

    fn check(sweep: &str) -> Result<SpaceSpec, IoError> {
        let db = Database::bundled().unwrap();
        let text = format!("{BASE}{sweep}");
        let s = Scenario::parse("s.toml", &text, &db)?;
        space(&s, &db)
    }

    #[test]
    fn defaults_come_from_cluster_and_job() {
        let spec = check("").unwrap();
        assert_eq!(spec.n_gpus, vec![64]);
        assert_eq!(spec.global_batch, vec![512]);
        assert_eq!(spec.targets.len(), 1);
        assert_eq!(spec.targets[0].accelerator.id, "a100-80gb");
        assert_eq!(spec.zero, vec![0, 1, 2, 3]);
    }

    #[test]
    fn lists_and_ranges_are_read() {
        let spec = check(
            "\n[sweep]\nn_gpus_range = { min = 64, max = 256, step = 64 }\nglobal_batch = [256, 512]\nmicro_batch = [1, 2]\nzero = [1]\nrecompute = [\"full\"]\nvpp = [1]\nmax_tp = 4\nep_comm_overlap = true\ndp_comm_overlap = false\nep_dispatcher = \"deepep\"\nwhole_experts = false\nreplicate_kv_heads = true\nprices = { \"a100-80gb\" = 1.5 }\n",
        )
        .unwrap();
        assert!(spec.ep_comm_overlap && !spec.tp_comm_overlap && !spec.whole_experts);
        assert!(!spec.dp_comm_overlap);
        assert!(spec.replicate_kv_heads);
        assert_eq!(spec.ep_dispatcher, trainplan_parallel::EpDispatcher::DeepEp);
        assert_eq!(spec.n_gpus, vec![64, 128, 192, 256]);
        assert_eq!(spec.global_batch, vec![256, 512]);
        assert_eq!(spec.micro_batch, MicroBatches::List(vec![1, 2]));
        assert_eq!(spec.max_tp, Some(4));
        assert_eq!(spec.targets[0].price_usd_per_gpu_hour, Some(1.5));
    }

    #[test]
    fn range_step_defaults_to_whole_nodes() {
        let spec = check("\n[sweep]\nn_gpus_range = { min = 8, max = 32 }\n").unwrap();
        assert_eq!(spec.n_gpus, vec![8, 16, 24, 32]);
    }

    #[test]
    fn errors_name_file_line_field_and_what_is_allowed() {
        let line = BASE.lines().count() + 3;
        for (sweep, field, allowed) in [
            ("zero = [0, 5]", "sweep.zero", "allowed: 0, 1, 2, 3"),
            ("n_gpus = [0]", "sweep.n_gpus", "between 1 and"),
            (
                "n_gpus_range = { min = 8, max = 16 }\nn_gpus = [8]",
                "sweep.n_gpus_range",
                "not both",
            ),
            (
                "n_gpus_range = { min = 64, max = 8 }",
                "sweep.n_gpus_range",
                "min ≤ max",
            ),
            ("micro_batch = []", "sweep.micro_batch", "lists no value"),
            ("ep = [2]", "sweep.ep", "MoE"),
            (
                "prices = { \"h100-sxm\" = 2.0 }",
                "sweep.prices",
                "not one of the swept",
            ),
        ] {
            let e = check(&format!("\n[sweep]\n{sweep}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&format!("s.toml:{line}")), "{e}");
            assert!(e.contains(field), "{e}");
            assert!(e.contains(allowed), "{e}");
        }
    }

    #[test]
    fn unknown_keys_and_ids_are_errors() {
        let e = check("\n[sweep]\nmicro_batches = [1]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `micro_batch`"), "{e}");
        let e = check("\n[sweep]\ngpus = [\"a100-80gb\", \"tpu-v9\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tpu-v9"), "{e}");
        let e = check("\n[sweep]\nrecompute = [\"sometimes\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.toml:"), "{e}");
    }

    #[test]
    fn other_accelerators_use_their_database_price_and_node() {
        let spec = check("\n[sweep]\ngpus = [\"h100-sxm\", \"a100-80gb\"]\n").unwrap();
        let h100 = spec
            .targets
            .iter()
            .find(|t| t.accelerator.id == "h100-sxm")
            .unwrap();
        assert_eq!(h100.node.id, h100.accelerator.default_node);
    }
}
