//! Parallel training strategies and the cost model that prices them.
//!
//! One pure function sits at the centre of trainplan: [`estimate`] takes a [`Model`], a
//! [`Cluster`], a [`Job`] and one [`Strategy`] and returns an [`Estimate`] (memory per GPU and
//! time per step, both broken down, with throughput and MFU) or an [`Infeasible`] value saying
//! why the strategy cannot run. [`evaluate`] is the same without the memory verdict, for callers
//! that want the numbers of a plan that does not fit (validation, explanations).
//!
//! Roles:
//! - [`Strategy`]: the layout (dp × tp × pp × cp × ep, virtual stages, micro-batch, ZeRO stage,
//!   recomputation, sequence parallelism), validated by [`Strategy::check`].
//! - [`Job`]: what is trained (sequence length, global batch, tokens, precision).
//! - `memory` and `time`: the two halves of the cost model, each formula citing its source.
//!
//! The crate does no I/O, spawns no threads and allocates nothing on the `estimate` path: the
//! sweep calls it millions of times.

mod envelope;
mod errors;
mod memory;
mod strategy;
mod time;

pub use envelope::{
    compute_optimal, envelope, gpu_hours, training_flops_6nd, typical_mfu, ComputeOptimal,
    Deadline, Envelope, EnvelopeError, EnvelopeInput, EnvelopeMemory, MfuSource, Sizing,
    TokensSource, TypicalMfu, WallClock, WithAttention, BF16_BYTES_PER_PARAM,
    CHINCHILLA_TOKENS_PER_PARAM, MODEL_STATE_BYTES_PER_PARAM, TRAINING_FLOPS_PER_PARAM_TOKEN,
};
pub use errors::Infeasible;
pub use memory::MemoryBreakdown;
pub use strategy::{
    kv_heads_split_or_replicate, EpDispatcher, Framework, Job, Optimizer, Precision, Strategy,
};
pub use time::{Bottleneck, TimeBreakdown};
pub use trainplan_model::{CrossEntropy, Recompute};

use trainplan_hardware::Cluster;
use trainplan_model::Model;
use trainplan_units::{Flops, Seconds};

/// The predicted cost of one strategy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Memory per GPU on the most loaded pipeline stage.
    pub memory: MemoryBreakdown,
    /// Time of one optimizer step.
    pub time: TimeBreakdown,
    /// Micro-batches per optimizer step on each pipeline (gradient accumulation steps).
    pub grad_accum: u32,
    /// Tokens trained per second by the whole job.
    pub tokens_per_s: f64,
    /// Tokens per second per GPU.
    pub tokens_per_s_per_gpu: f64,
    /// Model FLOPs utilisation: model FLOPs (no recomputation, attention as 12·l·h·s per token,
    /// PaLM appendix B) per second over the dense peak of the precision in use.
    pub mfu: f64,
    /// Hardware FLOPs utilisation: as MFU, counting recomputed FLOPs.
    pub hfu: f64,
    /// Model FLOPs per token.
    pub model_flops_per_token: Flops,
    /// What limits this plan most.
    pub bottleneck: Bottleneck,
}

impl Estimate {
    /// True when the plan's peak memory fits the accelerator.
    #[inline]
    pub fn fits(&self) -> bool {
        self.memory.fits()
    }

    /// Wall-clock seconds to train `tokens` at this rate.
    #[inline]
    pub fn train_time(&self, tokens: f64) -> Seconds {
        Seconds(tokens / self.tokens_per_s)
    }
}

/// Prices `strategy` without the memory verdict: the numbers are returned even when the plan
/// does not fit. Errors only for layouts that cannot be built at all.
pub fn evaluate(
    model: &Model,
    cluster: &Cluster,
    job: &Job,
    strategy: &Strategy,
) -> Result<Estimate, Infeasible> {
    strategy.check(model, cluster, job)?;
    let memory = memory::memory(model, cluster, job, strategy);
    Ok(priced(model, cluster, job, strategy, memory))
}

/// The time half of the cost model and the figures derived from it, for a checked strategy.
fn priced(
    model: &Model,
    cluster: &Cluster,
    job: &Job,
    strategy: &Strategy,
    memory: MemoryBreakdown,
) -> Estimate {
    let (time, grad_accum) = time::step_time(model, cluster, job, strategy);
    let flops = model.flops_per_token(job.seq_len);
    let tokens_per_step = f64::from(job.global_batch) * f64::from(job.seq_len);
    let tokens_per_s = tokens_per_step / time.step.get();
    let n_gpus = f64::from(cluster.n_gpus);
    let tokens_per_s_per_gpu = tokens_per_s / n_gpus;
    let peak = cluster.peak_or_bf16(job.precision.matmul_dtype());
    let mfu = flops.model().get() * tokens_per_s_per_gpu / peak.get();
    let hardware = match pytorch_rerun_share(model, job, strategy) {
        // Op-level selective checkpointing keeps the attention; early stop reruns it.
        Some(share) if strategy.op_level_selective(job) => {
            flops.model() + flops.layers_matmul_fwd * share
        }
        Some(share) => flops.model() + flops.layers_matmul_fwd * share + flops.attention_fwd,
        None => flops.hardware(strategy.effective_recompute()),
    };
    let hfu = hardware.get() * tokens_per_s_per_gpu / peak.get();
    let bottleneck = time::bottleneck(&time, &memory);
    Estimate {
        memory,
        time,
        grad_accum,
        tokens_per_s,
        tokens_per_s_per_gpu,
        mfu,
        hfu,
        model_flops_per_token: flops.model(),
        bottleneck,
    }
}

/// The share of a layer's forward product FLOPs that PyTorch's checkpointing reruns, by weights:
/// all but the FFN down products under early stop, K, the attention projection and SwiGLU's up
/// (GELU's down) product under op-level selective checkpointing; `None` for the other
/// frameworks' whole-layer or attention-only recomputation. The same products, timed by shape,
/// are the rerun in `time::micro_batch`.
fn pytorch_rerun_share(model: &Model, job: &Job, s: &Strategy) -> Option<f64> {
    if !s.op_level_selective(job) && !s.recompute_stops_early(job) {
        return None;
    }
    let h = f64::from(model.hidden);
    let ffn_one_matrix = h * model.token_ffn_width();
    let total = model.attention_params() + ffn_one_matrix * model.ffn_act.n_matrices() as f64;
    if s.op_level_selective(job) {
        // The key products: K, or under MLA the key/value latent and its up projection.
        let keys = match model.mla {
            Some(m) => {
                let (kvl, rope) = (f64::from(m.kv_lora_rank), f64::from(m.qk_rope_head_dim));
                h * (kvl + rope)
                    + kvl * (model.kv_pair_dim_over_ranks(1) - rope * f64::from(model.n_heads))
            }
            None => h * model.kv_dim(),
        };
        Some((keys + h * model.out_dim() + ffn_one_matrix) / total)
    } else if s.recompute_stops_early(job) {
        Some((total - ffn_one_matrix) / total)
    } else {
        None
    }
}

/// Prices `strategy` and rejects it when it does not fit in memory.
#[inline]
pub fn estimate(
    model: &Model,
    cluster: &Cluster,
    job: &Job,
    strategy: &Strategy,
) -> Result<Estimate, Infeasible> {
    strategy.check(model, cluster, job)?;
    // Memory first: a plan that does not fit is rejected before its step is timed.
    let memory = memory::memory(model, cluster, job, strategy);
    if !memory.fits() {
        return Err(Infeasible::OutOfMemory {
            needed: memory.total,
            capacity: memory.capacity,
        });
    }
    Ok(priced(model, cluster, job, strategy, memory))
}

#[cfg(test)]
pub(crate) mod testing;
