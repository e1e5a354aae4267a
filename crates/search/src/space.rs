//! The space of strategies: what a sweep varies, and its enumeration into layouts.
//!
//! A layout fixes the accelerator, the GPU count, the global batch and the degrees
//! dp × tp × cp × pp (and ep); inside a layout the sweep varies the micro-batch, the virtual
//! stages, the ZeRO stage, recomputation and sequence parallelism. Layouts are the unit of
//! parallel work and of sharding: there are thousands of them, each with tens to hundreds of
//! strategies.

use crate::SearchError;
use trainplan_hardware::{Accelerator, Node};
use trainplan_model::{Model, Recompute};
use trainplan_parallel::EpDispatcher;

/// Largest number of layouts one search enumerates (a guard against a typo such as a step of 1
/// over a million GPUs).
pub const MAX_LAYOUTS: u64 = 5_000_000;

/// One accelerator type to consider, with its node layout and price.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The accelerator.
    pub accelerator: Accelerator,
    /// The node layout it comes in.
    pub node: Node,
    /// USD per GPU-hour, when known.
    pub price_usd_per_gpu_hour: Option<f64>,
}

/// Which micro-batches to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MicroBatches {
    /// Exactly these values; those that do not divide a layout's per-replica batch are counted
    /// as `batch` rejections.
    List(Vec<u32>),
    /// Every divisor of the per-replica batch up to `max`.
    Divisors {
        /// Largest micro-batch.
        max: u32,
    },
}

/// What a sweep varies. Built by `trainplan-io` from a scenario's `[sweep]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceSpec {
    /// Accelerator types.
    pub targets: Vec<Target>,
    /// GPU counts.
    pub n_gpus: Vec<u32>,
    /// Global batches (sequences per step).
    pub global_batch: Vec<u32>,
    /// Micro-batches.
    pub micro_batch: MicroBatches,
    /// Virtual pipeline stages (values above 1 apply only when pp > 1).
    pub vpp: Vec<u32>,
    /// ZeRO stages.
    pub zero: Vec<u8>,
    /// Recomputation modes.
    pub recompute: Vec<Recompute>,
    /// Sequence-parallel settings (apply only when tp > 1; tp = 1 always runs without).
    pub sequence_parallel: Vec<bool>,
    /// Context-parallel degrees.
    pub cp: Vec<u32>,
    /// Expert-parallel degrees for MoE models; `None` tries every divisor of the experts.
    pub ep: Option<Vec<u32>>,
    /// Largest tensor-parallel degree; the node's scale-up domain bounds it in any case.
    pub max_tp: Option<u32>,
    /// Largest pipeline degree; the model's layers bound it in any case.
    pub max_pp: Option<u32>,
    /// Fused (flash) attention.
    pub flash_attention: bool,
    /// Overlap tensor-parallel collectives with matrix products, for layouts with tp > 1 (only
    /// where the training framework supports it, hence off unless the scenario says so).
    pub tp_comm_overlap: bool,
    /// Overlap the expert all-to-all with another micro-batch's computation, for MoE layouts
    /// with ep > 1 (DualPipe, Megatron-Core's `--overlap-moe-expert-parallel-comm`; off unless
    /// the scenario says so).
    pub ep_comm_overlap: bool,
    /// Overlap the data-parallel gradient reduction below ZeRO-3 with backward (PyTorch DDP,
    /// Megatron-Core's `--overlap-grad-reduce`; on unless the scenario prices a stack that
    /// reduces after the last backward, as Megatron-LM before Megatron-Core).
    pub dp_comm_overlap: bool,
    /// How MoE layouts with ep > 1 move tokens: the framework's dispatcher (a plain all-to-all
    /// unless the scenario names a node-deduplicating one such as DeepEP).
    pub ep_dispatcher: EpDispatcher,
    /// Also try MoE layouts that keep experts whole (etp 1) when tp > 1; off for frameworks
    /// without Megatron-Core's MoE parallel folding.
    pub whole_experts: bool,
    /// Also try tp past the key/value heads, each KV head replicated over the tp/kv ranks that
    /// share it (BigCode's Megatron-LM multi-query attention); off because Megatron-Core and
    /// torchtitan need tp to divide the KV heads.
    pub replicate_kv_heads: bool,
}

impl SpaceSpec {
    /// The default space over `targets`, `n_gpus` and `global_batch`: micro-batches dividing
    /// the per-replica batch up to 16, vpp 1, 2, 4, every ZeRO stage and recomputation mode,
    /// sequence parallelism on and off, cp 1, every ep.
    pub fn new(targets: Vec<Target>, n_gpus: Vec<u32>, global_batch: Vec<u32>) -> Self {
        Self {
            targets,
            n_gpus,
            global_batch,
            micro_batch: MicroBatches::Divisors { max: 16 },
            vpp: vec![1, 2, 4],
            zero: vec![0, 1, 2, 3],
            recompute: Recompute::ALL.to_vec(),
            sequence_parallel: vec![false, true],
            cp: vec![1],
            ep: None,
            max_tp: None,
            max_pp: None,
            flash_attention: true,
            tp_comm_overlap: false,
            ep_comm_overlap: false,
            dp_comm_overlap: true,
            ep_dispatcher: EpDispatcher::AllToAll,
            whole_experts: true,
            replicate_kv_heads: false,
        }
    }

    /// Checks every list, sorts it and removes duplicates so that the enumeration order is
    /// canonical whatever order the file gave.
    pub(crate) fn normalise(&mut self) -> Result<(), SearchError> {
        fn clean<T: Ord + Copy>(v: &mut Vec<T>, field: &'static str) -> Result<(), SearchError> {
            v.sort_unstable();
            v.dedup();
            if v.is_empty() {
                return Err(SearchError::EmptyList { field });
            }
            Ok(())
        }
        fn positive(v: &[u32], field: &'static str) -> Result<(), SearchError> {
            match v.iter().find(|&&x| x == 0) {
                Some(x) => Err(SearchError::Invalid {
                    field,
                    value: x.to_string(),
                    allowed: "positive integers",
                }),
                None => Ok(()),
            }
        }
        if self.targets.is_empty() {
            return Err(SearchError::EmptyList { field: "gpus" });
        }
        if self.targets.len() > usize::from(u16::MAX) {
            return Err(SearchError::Invalid {
                field: "gpus",
                value: self.targets.len().to_string(),
                allowed: "at most 65535 accelerators",
            });
        }
        self.targets
            .sort_by(|a, b| a.accelerator.id.cmp(&b.accelerator.id));
        self.targets
            .dedup_by(|a, b| a.accelerator.id == b.accelerator.id);
        clean(&mut self.n_gpus, "n_gpus")?;
        positive(&self.n_gpus, "n_gpus")?;
        clean(&mut self.global_batch, "global_batch")?;
        positive(&self.global_batch, "global_batch")?;
        match &mut self.micro_batch {
            MicroBatches::List(v) => {
                clean(v, "micro_batch")?;
                positive(v, "micro_batch")?;
            }
            MicroBatches::Divisors { max } => {
                if *max == 0 {
                    return Err(SearchError::Invalid {
                        field: "max_micro_batch",
                        value: "0".into(),
                        allowed: "a positive integer",
                    });
                }
            }
        }
        clean(&mut self.vpp, "vpp")?;
        positive(&self.vpp, "vpp")?;
        clean(&mut self.zero, "zero")?;
        if let Some(z) = self.zero.iter().find(|&&z| z > 3) {
            return Err(SearchError::Invalid {
                field: "zero",
                value: z.to_string(),
                allowed: "ZeRO stages 0, 1, 2, 3",
            });
        }
        clean(&mut self.recompute, "recompute")?;
        clean(&mut self.sequence_parallel, "sequence_parallel")?;
        clean(&mut self.cp, "cp")?;
        positive(&self.cp, "cp")?;
        if let Some(ep) = &mut self.ep {
            clean(ep, "ep")?;
            positive(ep, "ep")?;
        }
        for (field, v) in [("max_tp", self.max_tp), ("max_pp", self.max_pp)] {
            if v == Some(0) {
                return Err(SearchError::Invalid {
                    field,
                    value: "0".into(),
                    allowed: "a positive integer",
                });
            }
        }
        Ok(())
    }
}

/// One layout: the unit of parallel work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Index into the search's clusters (one per accelerator and GPU count).
    pub cluster: u32,
    /// Index into the search's jobs (one per global batch).
    pub job: u32,
    pub dp: u32,
    pub tp: u32,
    pub pp: u32,
    pub cp: u32,
    pub ep: u32,
    /// Expert tensor parallelism (`None`: as tp).
    pub etp: Option<u32>,
    /// Strategies inside this layout.
    pub strategies: u64,
}

/// Divisors of `n` in increasing order.
pub(crate) fn divisors(n: u32) -> Vec<u32> {
    let mut small = Vec::new();
    let mut large = Vec::new();
    let mut d = 1u32;
    while u64::from(d) * u64::from(d) <= u64::from(n) {
        if n % d == 0 {
            small.push(d);
            if d != n / d {
                large.push(n / d);
            }
        }
        d += 1;
    }
    small.extend(large.into_iter().rev());
    small
}

/// The micro-batches a layout tries, given its data-parallel degree.
pub(crate) fn micro_batches(spec: &MicroBatches, global_batch: u32, dp: u32) -> Vec<u32> {
    match spec {
        MicroBatches::List(v) => v.clone(),
        MicroBatches::Divisors { max } => {
            if global_batch % dp != 0 {
                // No micro-batch divides a fractional per-replica batch; 1 stands for the
                // layout so that its rejection is counted.
                return vec![1];
            }
            divisors(global_batch / dp)
                .into_iter()
                .filter(|m| m <= max)
                .collect()
        }
    }
}

/// Virtual-stage values that apply to a pipeline of `pp` stages.
pub(crate) fn vpps(spec: &[u32], pp: u32) -> impl Iterator<Item = u32> + '_ {
    // Without a pipeline there is nothing to interleave: such layouts run with vpp 1 whatever
    // the list says, as sequence parallelism falls back to off at tp 1.
    std::iter::once(1)
        .filter(move |_| pp == 1)
        .chain(spec.iter().copied().filter(move |_| pp > 1))
}

/// Sequence-parallel settings that apply at tensor-parallel degree `tp`.
pub(crate) fn sps(spec: &[bool], tp: u32) -> &[bool] {
    if tp > 1 {
        spec
    } else {
        &[false]
    }
}

/// Strategies of one layout: micro-batches × vpp × ZeRO × recompute × sequence parallelism.
pub(crate) fn count_strategies(spec: &SpaceSpec, n_mb: usize, pp: u32, tp: u32) -> u64 {
    let n_vpp = vpps(&spec.vpp, pp).count() as u64;
    n_mb as u64
        * n_vpp
        * spec.zero.len() as u64
        * spec.recompute.len() as u64
        * sps(&spec.sequence_parallel, tp).len() as u64
}

/// Expert layouts to try for a layout of tensor parallel `tp` and data × context parallel
/// `dp_cp`: (ep, etp). Experts split like the dense layers (etp unset) take ep from dp × cp;
/// with tp > 1, whole experts (etp 1, Megatron-Core's MoE parallel folding, Liu et al. 2025,
/// arXiv:2504.14960) take ep from tp × dp × cp as well, unless the spec rules them out.
pub(crate) fn eps(spec: &SpaceSpec, model: &Model, tp: u32, dp_cp: u32) -> Vec<(u32, Option<u32>)> {
    match model.moe {
        None => vec![(1, None)],
        Some(moe) => {
            let candidates = spec
                .ep
                .clone()
                .unwrap_or_else(|| divisors(moe.experts.max(1)));
            let mut layouts = expert_layouts(moe.experts, &candidates, tp, u64::from(dp_cp));
            if !spec.whole_experts {
                layouts.retain(|&(_, etp)| etp.is_none());
            }
            layouts
        }
    }
}

/// The (ep, etp) pairs among `candidates` that divide `experts` and their ranks: dp × cp for
/// experts split like the dense layers, tp × dp × cp for whole experts (tp > 1 only).
pub(crate) fn expert_layouts(
    experts: u32,
    candidates: &[u32],
    tp: u32,
    dp_cp: u64,
) -> Vec<(u32, Option<u32>)> {
    let divides =
        |e: u32, ranks: u64| e == 1 || (e > 0 && experts % e == 0 && ranks % u64::from(e) == 0);
    let split = candidates
        .iter()
        .filter(|&&e| divides(e, dp_cp))
        .map(|&e| (e, None));
    let whole = candidates
        .iter()
        .filter(|&&e| tp > 1 && e > 1 && divides(e, u64::from(tp) * dp_cp))
        .map(|&e| (e, Some(1)));
    split.chain(whole).collect()
}
