//! Memory per GPU: model states, activations, communication buffers and a reserve.
//!
//! Model states follow Rajbhandari et al. 2020 (ZeRO, section 3): mixed-precision Adam keeps
//! 16-bit weights, 16-bit gradients plus an fp32 accumulation buffer, and 12 bytes of fp32 master
//! weights and moments per parameter; stage 1 shards the 12 bytes over the data-parallel group,
//! stage 2 the gradients too, stage 3 the weights as well (FSDP full shard keeps the fp32 shard
//! as the master copy and gathers 16-bit layers on demand, Zhao et al. 2023, section 3).
//! Below stage 3, gradients are kept the way `Job::optimizer` says: DeepSpeed's ZeRO-1/2 and
//! BF16 optimizers hold autograd's 16-bit gradients beside an fp32 accumulation buffer and a
//! gradient-reduction bucket (the default, which BLOOM's measured memory follows); Megatron's
//! distributed optimizer (ZeRO-0/1) accumulates straight into one main-grad buffer and
//! reduce-scatters it in place, 2 bytes per parameter and the bucket less. ZeRO-2 under a
//! pipeline is FSDP with PyTorch's pipeline schedules, which keep gradients unsharded in the
//! reduce dtype until the last micro-batch.
//! Activations follow Korthikanti et al. 2022 (see `trainplan_model::memory`), times the
//! micro-batches in flight on the first pipeline stage.

use crate::{Job, Strategy};
use trainplan_hardware::Cluster;
use trainplan_model::{ActivationConfig, Model, Recompute};
use trainplan_units::{Bytes, GIB};

/// Bytes of fp32 master weights plus Adam's two fp32 moments per parameter.
const OPTIMIZER_BYTES_PER_PARAM: f64 = 12.0;
/// Bytes of a 16-bit weight.
const WEIGHT_BYTES: f64 = 2.0;
/// Memory that is not a tensor of the model: the CUDA context and cuBLAS workspaces (~0.5-1 GiB
/// per process on A100/H100) and NCCL's channel buffers for the tp, dp and pp communicators
/// (4 MiB per channel and peer by default, ~1 GiB in all).
const RUNTIME_OVERHEAD_BYTES: f64 = 2.0 * GIB;
/// Elements in ZeRO-1/2's gradient-reduction bucket (DeepSpeed's `reduce_bucket_size` default).
const ZERO_REDUCE_BUCKET_ELEMENTS: f64 = 5e8;
/// Fraction of the activation and buffer peak lost to caching-allocator fragmentation
/// (PyTorch's reserved minus allocated, typically 5-15% in long training runs).
const FRAGMENTATION_FRACTION: f64 = 0.08;

/// Memory per GPU on the most loaded pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryBreakdown {
    /// 16-bit weights kept resident.
    pub weights: Bytes,
    /// Gradients.
    pub gradients: Bytes,
    /// fp32 master weights and Adam moments.
    pub optimizer: Bytes,
    /// Activations kept for backward, over every micro-batch in flight.
    pub activations: Bytes,
    /// Gathered parameters and unsharded gradients in flight (ZeRO-3), the gradient-reduction
    /// bucket (ZeRO-1/2 with a data-parallel peer), pipeline send buffers.
    pub comm_buffers: Bytes,
    /// Runtime overhead and allocator fragmentation.
    pub reserve: Bytes,
    /// Sum of the above.
    pub total: Bytes,
    /// HBM of one accelerator.
    pub capacity: Bytes,
}

impl MemoryBreakdown {
    /// True when the total fits the capacity.
    #[inline]
    pub fn fits(&self) -> bool {
        self.total.get() <= self.capacity.get()
    }

    /// Model states only (weights, gradients, optimizer).
    #[inline]
    pub fn model_states(&self) -> Bytes {
        self.weights + self.gradients + self.optimizer
    }
}

/// Parameters one GPU holds (after tp and ep, before ZeRO).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StageParams {
    /// On the first pipeline stage (with the embedding).
    pub first: f64,
    /// On the last pipeline stage (with the output layer).
    pub last: f64,
    /// In one transformer layer.
    pub per_layer: f64,
    /// Of the above, MoE expert weights on the last stage (and every stage of MoE layers only):
    /// replicated only over tp·cp·dp/(etp·ep) ranks, so ZeRO shards them over that smaller group
    /// (Megatron's expert data parallelism).
    pub experts: f64,
    /// MoE expert weights on the first stage, which holds the dense leading layers, if any.
    pub experts_first: f64,
    /// Dense layers on the first pipeline rank, leading and interleaved (all of them when
    /// pp = 1).
    pub dense_first: f64,
    /// Dense layers on the last pipeline rank (interleaved ones; as `dense_first` when pp = 1).
    pub dense_last: f64,
}

/// Parameters one GPU holds on the first and on the last pipeline stage (after tp and ep).
#[inline]
pub(crate) fn stage_params(model: &Model, s: &Strategy) -> StageParams {
    let p = model.params();
    let tp = f64::from(s.tp);
    let l = s.max_layers_per_rank(model);
    let layers = f64::from(l);
    // A rank holds experts/ep experts, each split etp ways (Liu et al. 2025, "MoE Parallel Folding").
    let experts_per_layer = model.moe.map_or(0.0, |moe| {
        model.ffn_params_one() * f64::from(moe.experts)
            / (f64::from(s.expert_tp()) * f64::from(s.ep))
    });
    let mut per_layer = match model.moe {
        Some(moe) => {
            (p.per_layer - model.ffn_params_one() * f64::from(moe.experts)) / tp + experts_per_layer
        }
        None => p.per_layer / tp,
    };
    // Past the KV heads every rank also holds the rest of its replicated K/V head; under MLA
    // every rank holds the down projections whole.
    let mut replicas = model.mla_replicated_params() * (1.0 - 1.0 / tp);
    if s.tp > model.n_kv_heads {
        replicas += kv_replica_params(model, s.tp);
    }
    per_layer += replicas;
    // Dense layers stand in for MoE layers: the same attention (and replicas), a dense FFN split
    // over tp. The leading ones sit on the first rank (as many as it holds layers); interleaved
    // ones on every rank, counted over the first and the last `layers` layers.
    let dense_first = f64::from(model.dense_layers_in(0, l));
    let dense_last = f64::from(model.dense_layers_in(model.n_layers.saturating_sub(l), l));
    let dense_per_layer = p.dense_layer / tp + replicas;
    let body = layers * per_layer + dense_last * (dense_per_layer - per_layer);
    let body_first = layers * per_layer + dense_first * (dense_per_layer - per_layer);
    // Tied embeddings: the last stage keeps its own copy of the table for the output layer.
    let output = if model.tied_embeddings {
        p.embedding
    } else {
        p.output
    };
    let (first, last) = if s.pp == 1 {
        let both = body_first + (p.embedding + p.output + p.final_norm) / tp;
        (both, both)
    } else {
        (
            body_first + p.embedding / tp,
            body + (output + p.final_norm) / tp,
        )
    };
    let experts_first = (layers - dense_first) * experts_per_layer;
    StageParams {
        first,
        last,
        per_layer,
        experts: if s.pp == 1 {
            experts_first
        } else {
            (layers - dense_last) * experts_per_layer
        },
        experts_first,
        dense_first,
        // With pp = 1 the last rank's layers are the first's: the same count.
        dense_last,
    }
}

/// Bytes a dense layer keeps beyond an MoE layer's `moe_layer`. Out of line: only MoE models
/// with dense layers call it.
#[cold]
#[inline(never)]
fn dense_layers_extra(
    model: &Model,
    job: &Job,
    s: &Strategy,
    cfg: &ActivationConfig,
    moe_layer: Bytes,
) -> Bytes {
    let Some(dense) = model.dense_twin() else {
        return Bytes::ZERO;
    };
    let dense_layer = if s.op_level_selective(job) {
        dense.op_selective_activation_bytes_per_layer(cfg)
    } else {
        dense.activation_bytes_per_layer(cfg)
    };
    dense_layer - moe_layer
}

/// Out of line: only tp past the KV heads (multi-query attention) replicates them.
#[cold]
#[inline(never)]
fn kv_replica_params(model: &Model, tp: u32) -> f64 {
    model.kv_replica_params_per_rank(tp)
}

pub(crate) fn memory(model: &Model, cluster: &Cluster, job: &Job, s: &Strategy) -> MemoryBreakdown {
    let sp = stage_params(model, s);
    let dense_shard = f64::from(s.dp) * f64::from(s.cp);
    let expert_shard = s.expert_dp();
    let megatron_main_grads = s.megatron_main_grads(job);
    let states_of = |params: f64, shard: f64| -> (Bytes, Bytes, Bytes) {
        let weights = if s.zero >= 3 {
            0.0
        } else {
            WEIGHT_BYTES * params
        };
        let grads = if s.zero >= 3 {
            job.grad_bytes * params / shard
        } else if s.fsdp_with_pipeline() {
            // FSDP under a pipeline schedule skips the reduce-scatter until the last micro-batch
            // and accumulates unsharded gradients in the reduce dtype meanwhile (PyTorch
            // `torch/distributed/pipelining/stage.py`, `backward_maybe_with_nosync`), then keeps
            // the reduced shard.
            job.grad_bytes * params * (1.0 + 1.0 / shard)
        } else if megatron_main_grads {
            // One main-grad buffer (dist_optimizer.md: 6 + 12/d bytes per parameter for bf16
            // with fp32 gradients).
            job.grad_bytes * params
        } else {
            // The 16-bit gradient autograd writes, sharded from ZeRO-2 on.
            let g16 = WEIGHT_BYTES * params / if s.zero >= 2 { shard } else { 1.0 };
            // A wider accumulation buffer exists only when gradients accumulate in more than 16
            // bits; fp16's loss-scaled training keeps it for the rank's own shard from ZeRO-1 on.
            let wide = if job.grad_bytes > WEIGHT_BYTES {
                let sharded =
                    s.zero >= 2 || (job.precision == crate::Precision::Fp16 && s.zero >= 1);
                job.grad_bytes * params / if sharded { shard } else { 1.0 }
            } else {
                0.0
            };
            g16 + wide
        };
        let opt = OPTIMIZER_BYTES_PER_PARAM * params / if s.zero >= 1 { shard } else { 1.0 };
        (Bytes(weights), Bytes(grads), Bytes(opt))
    };
    let states = |params: f64, experts: f64| -> (Bytes, Bytes, Bytes) {
        let (dw, dg, dopt) = states_of(params - experts, dense_shard);
        let (ew, eg, eopt) = states_of(experts, expert_shard);
        (dw + ew, dg + eg, dopt + eopt)
    };

    let seq = job.seq_len / s.cp;
    let sbh = f64::from(seq) * f64::from(s.micro_batch) * f64::from(model.hidden);
    let cfg = ActivationConfig {
        seq_len: seq,
        micro_batch: s.micro_batch,
        tp: s.tp,
        sequence_parallel: s.sp_active(),
        recompute: s.recompute,
        flash_attention: s.flash_attention,
        fp8_linear_inputs: job.precision == crate::Precision::Fp8,
    };
    let per_layer = if s.op_level_selective(job) {
        model.op_selective_activation_bytes_per_layer(&cfg)
    } else {
        model.activation_bytes_per_layer(&cfg)
    };
    let layers = f64::from(s.max_layers_per_rank(model));
    let m = s.micro_batches(job);
    // 1F1B keeps p micro-batches in flight on the first stage; interleaving adds
    // (1 + (p-1)/(p·v)) (Korthikanti et al. 2022, section 4.2.3).
    let in_flight = f64::from(s.pp.min(m).max(1));
    let interleave = if s.vpp > 1 {
        let (p, v) = (f64::from(s.pp), f64::from(s.vpp));
        1.0 + (p - 1.0) / (p * v)
    } else {
        1.0
    };
    let stored = per_layer * (layers * in_flight * interleave);
    // Dense layers keep a dense FFN's activations instead.
    let dense_extra = if sp.dense_first > 0.0 || sp.dense_last > 0.0 {
        dense_layers_extra(model, job, s, &cfg, per_layer)
    } else {
        Bytes::ZERO
    };
    let stored_first = stored + dense_extra * (sp.dense_first * in_flight * interleave);
    // Each chunk's output held for its backward outside Megatron, one pipeline message of
    // 2·s·b·h/tp bytes per chunk forward in flight (DeepSpeed `runtime/pipe/engine.py` keeps
    // `pipe_buffers['outputs']`, split over tp by its default `pipe_partitioned`; PyTorch
    // `distributed/pipelining/stage.py` keeps `fwd_cache`): in_flight · interleave · v chunks.
    let kept_outputs = if s.keeps_stage_outputs(job) {
        Bytes(WEIGHT_BYTES * sbh / f64::from(s.tp) * in_flight * interleave * f64::from(s.vpp))
    } else {
        Bytes::ZERO
    };
    // The last rank warms up (v-1)·p model chunks before its first backward under interleaving
    // (Narayanan et al. 2021, section 2.2.2), one micro-batch otherwise: in units of its layers,
    // ((v-1)·p + 1)/v.
    let last_in_flight = if s.vpp > 1 {
        let (p, v) = (f64::from(s.pp), f64::from(s.vpp));
        (((v - 1.0) * p + 1.0) / v).min(f64::from(m))
    } else {
        1.0
    };
    // During backward one layer at a time is rematerialised in full (recomputation's working set).
    let kept_all = ActivationConfig {
        recompute: Recompute::None,
        ..cfg
    };
    let working = match s.recompute {
        Recompute::None => Bytes::ZERO,
        // The recomputed attention scores of one layer (nothing when a fused kernel never
        // stores them); under op-level checkpointing, the recomputed rest of the layer.
        Recompute::Selective => {
            (model.activation_bytes_per_layer(&kept_all) - per_layer).max(Bytes::ZERO)
        }
        Recompute::Full => model.activation_bytes_per_layer(&kept_all),
    };
    let logits = model.logits_bytes(seq, s.micro_batch, s.tp, s.cross_entropy(job));

    // ZeRO-3 gathers a layer's 16-bit weights ahead of use (current + prefetched) and holds one
    // layer's unsharded gradients before reduce-scatter.
    let zero3_buffers = if s.zero >= 3 {
        sp.per_layer * (2.0 * WEIGHT_BYTES + job.grad_bytes)
    } else {
        0.0
    };
    // ZeRO-1/2 reduce the gradients through one flat 16-bit bucket of reduce_bucket_size
    // elements, 5e8 by default (DeepSpeed `runtime/zero/stage_1_and_2.py`, the `ipg_buffer`
    // allocated before reduction; `zero/config.py` default), never larger than the rank's
    // gradients and absent when there is no data-parallel peer to reduce with.
    let zero12_bucket = |params: f64| -> f64 {
        if s.has_gradient_bucket(job) {
            WEIGHT_BYTES * params.min(ZERO_REDUCE_BUCKET_ELEMENTS)
        } else {
            0.0
        }
    };
    // Pipeline send/receive buffers: one activation tensor each way.
    let p2p = if s.pp > 1 {
        2.0 * 2.0 * sbh / f64::from(s.tp)
    } else {
        0.0
    };

    let stage = |params: f64, experts: f64, activations: Bytes| -> MemoryBreakdown {
        let (weights, gradients, optimizer) = states(params, experts);
        let comm_buffers = Bytes(zero3_buffers + p2p + zero12_bucket(params));
        let dynamic = activations + comm_buffers;
        let reserve = Bytes(RUNTIME_OVERHEAD_BYTES) + dynamic * FRAGMENTATION_FRACTION;
        let total = weights + gradients + optimizer + dynamic + reserve;
        MemoryBreakdown {
            weights,
            gradients,
            optimizer,
            activations,
            comm_buffers,
            reserve,
            total,
            capacity: cluster.accelerator.hbm_capacity,
        }
    };
    if s.pp == 1 {
        return stage(sp.first, sp.experts_first, stored_first + working + logits);
    }
    let first = stage(
        sp.first,
        sp.experts_first,
        stored_first + kept_outputs + working,
    );
    // The last stage holds one micro-batch of its layers in flight, plus the logits.
    // PyTorch's pipeline schedules keep every micro-batch's output on the last stage until the
    // step ends, to merge them (`distributed/pipelining/stage.py`, `output_chunks`): the 16-bit
    // logits of the other m - 1 micro-batches stay beside the current one's.
    let merged_outputs = if s.fsdp_with_pipeline() {
        let logits_per_micro_batch =
            f64::from(seq) * f64::from(s.micro_batch) * f64::from(model.vocab) / f64::from(s.tp);
        Bytes(WEIGHT_BYTES * logits_per_micro_batch * f64::from(m.saturating_sub(1)))
    } else {
        Bytes::ZERO
    };
    let last = stage(
        sp.last,
        sp.experts,
        (per_layer * layers + dense_extra * sp.dense_last) * last_in_flight
            + working
            + logits
            + merged_outputs,
    );
    if last.total.get() > first.total.get() {
        last
    } else {
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{a100, gpt3, job, strategy};
    use crate::{CrossEntropy, Optimizer, Precision};

    #[test]
    fn megatron_tp8_pp16_gpt3_fits_a100_80gb() {
        // Narayanan et al. 2021 trained GPT-3 175B at tp 8 pp 16 with full recomputation on 80 GB.
        let mut s = strategy(8, 8, 16);
        s.recompute = Recompute::Full;
        s.zero = 0;
        let m = memory(&gpt3(), &a100(1024), &job(1536), &s);
        assert!(m.fits(), "{:.1} GiB", m.total.gib());
        // 175B / 128 model-parallel ranks ≈ 1.37B params; 2 (weights) + 6 (16-bit and fp32
        // gradients) + 12 (optimizer) bytes each ≈ 27 GB of states.
        let states_gb = m.model_states().gb();
        assert!((20.0..30.0).contains(&states_gb), "{states_gb}");
    }

    #[test]
    fn stage_outputs_are_kept_outside_megatron() {
        // GPT-3 175B at tp 8 pp 16, micro-batch 1: DeepSpeed's and PyTorch's pipelines keep one
        // 2·s·b·h/tp-byte output per micro-batch in flight (16 on the first stage), Megatron-LM
        // frees it once sent; interleaving keeps one per chunk forward in flight.
        let (model, cluster) = (gpt3(), a100(1024));
        let activations = |optimizer: Optimizer, pp: u32, vpp: u32| {
            let mut job = job(1536);
            job.optimizer = optimizer;
            let mut s = strategy(1024 / (8 * pp), 8, pp);
            s.vpp = vpp;
            memory(&model, &cluster, &job, &s).activations.get()
        };
        let message = 2.0 * 2048.0 * 12288.0 / 8.0;
        let kept =
            activations(Optimizer::Deepspeed, 16, 1) - activations(Optimizer::Megatron, 16, 1);
        assert!((kept - 16.0 * message).abs() < 1.0, "{kept}");
        let chunks = 16.0 * (1.0 + 15.0 / 32.0) * 2.0;
        let kept =
            activations(Optimizer::Deepspeed, 16, 2) - activations(Optimizer::Megatron, 16, 2);
        assert!((kept - chunks * message).abs() < 1.0, "{kept}");
        // Without a pipeline nothing is sent, so nothing is kept.
        assert_eq!(
            activations(Optimizer::Deepspeed, 1, 1),
            activations(Optimizer::Megatron, 1, 1)
        );
    }

    #[test]
    fn a_stated_framework_decides_the_stage_outputs_and_its_pipeline_limits() {
        use crate::{Framework, Infeasible};
        let (model, cluster) = (gpt3(), a100(1024));
        let with = |framework: Option<Framework>, optimizer: Optimizer| crate::Job {
            optimizer,
            framework,
            cross_entropy: None,
            ..job(1536)
        };
        let s = strategy(8, 8, 16);
        // A stated framework overrides the optimizer's stand-in: Megatron frees the outputs
        // whatever holds the states, DeepSpeed and PyTorch keep them.
        for (framework, optimizer, keeps) in [
            (None, Optimizer::Megatron, false),
            (None, Optimizer::Deepspeed, true),
            (Some(Framework::Megatron), Optimizer::Deepspeed, false),
            (Some(Framework::Deepspeed), Optimizer::Megatron, true),
            (Some(Framework::Pytorch), Optimizer::Megatron, true),
        ] {
            assert_eq!(
                s.keeps_stage_outputs(&with(framework, optimizer)),
                keeps,
                "{framework:?} {optimizer:?}"
            );
        }
        // An FSDP layout in a job that names no framework is PyTorch's; a stated one wins.
        let flat = |zero: u8, pp: u32| crate::Strategy {
            zero,
            ..strategy(1024 / (8 * pp), 8, pp)
        };
        let unstated = with(None, Optimizer::Deepspeed);
        assert_eq!(flat(3, 1).framework(&unstated), Some(Framework::Pytorch));
        assert_eq!(flat(2, 16).framework(&unstated), Some(Framework::Pytorch));
        assert_eq!(flat(2, 1).framework(&unstated), None);
        assert_eq!(flat(1, 16).framework(&unstated), None);
        let stated = with(Some(Framework::Megatron), Optimizer::Megatron);
        assert_eq!(flat(3, 1).framework(&stated), Some(Framework::Megatron));
        // DeepSpeed's pipeline engine has no interleaving and no ZeRO-2/3.
        let ds = with(Some(Framework::Deepspeed), Optimizer::Deepspeed);
        let interleaved = crate::Strategy { vpp: 2, ..s };
        assert!(matches!(
            crate::evaluate(&model, &cluster, &ds, &interleaved),
            Err(Infeasible::FrameworkInterleaving { vpp: 2, .. })
        ));
        let zero2 = crate::Strategy { zero: 2, ..s };
        assert!(matches!(
            crate::evaluate(&model, &cluster, &ds, &zero2),
            Err(Infeasible::FrameworkZero { zero: 2, .. })
        ));
        // Both run under Megatron, and without a pipeline under DeepSpeed.
        let mega = with(Some(Framework::Megatron), Optimizer::Megatron);
        assert!(crate::evaluate(&model, &cluster, &mega, &interleaved).is_ok());
        let flat = crate::Strategy {
            zero: 3,
            ..strategy(128, 8, 1)
        };
        assert!(crate::evaluate(&model, &cluster, &ds, &flat).is_ok());
    }

    #[test]
    fn pytorch_pipelines_keep_every_micro_batch_output_on_the_last_stage() {
        // A 2M-token vocabulary makes the last stage the busiest. Under FSDP with PyTorch's
        // pipeline schedules (ZeRO-2, pp > 1) four more micro-batches keep four more 16-bit
        // logits tensors of s·b·V/tp; DeepSpeed's pipeline (ZeRO-1) frees each after backward.
        let mut model = gpt3();
        model.vocab = 2_000_000;
        let cluster = a100(128);
        let activations = |zero: u8, global_batch: u32| {
            let mut s = strategy(8, 8, 2);
            s.zero = zero;
            memory(&model, &cluster, &job(global_batch), &s)
                .activations
                .get()
        };
        let logits16 = 2.0 * 2048.0 * 2_000_000.0 / 8.0;
        let grown = activations(2, 64) - activations(2, 32);
        assert!((grown - 4.0 * logits16).abs() < 1.0, "{grown}");
        assert_eq!(activations(1, 64), activations(1, 32));
    }

    #[test]
    fn the_loss_implementation_sets_the_logits_bytes() {
        // Llama 3.1 8B at 32K tokens on one FSDP rank (torchtitan's context-parallel table,
        // S6-r262): 32768 · 128256 = 4.2e9 logits. PyTorch's eager loss on fp32-cast logits
        // holds 12 bytes each at its peak (50 GB), Megatron's vocab-parallel loss 6, a fused
        // or compiled loss 4; the difference shows in the activations one for one.
        let model = trainplan_model::Model {
            n_layers: 32,
            hidden: 4096,
            n_heads: 32,
            ffn: 14336,
            ..trainplan_model::testing::llama3_70b()
        };
        let cluster = a100(8);
        let s = crate::Strategy {
            zero: 3,
            recompute: Recompute::Full,
            ..strategy(8, 1, 1)
        };
        let activations = |loss: Option<CrossEntropy>| {
            let mut j = job(8);
            j.seq_len = 32768;
            j.cross_entropy = loss;
            memory(&model, &cluster, &j, &s).activations.get()
        };
        let logits = 32768.0 * 128256.0;
        let eager = activations(Some(CrossEntropy::Fp32Eager));
        let megatron = activations(Some(CrossEntropy::VocabParallel));
        let fused = activations(Some(CrossEntropy::Fused));
        assert!(
            (eager - megatron - 6.0 * logits).abs() < 1.0,
            "{}",
            eager - megatron
        );
        assert!(
            (megatron - fused - 2.0 * logits).abs() < 1.0,
            "{}",
            megatron - fused
        );
        // Unstated, an FSDP layout is PyTorch's, which runs a fused or compiled loss.
        assert_eq!(activations(None), fused);
        // Split over tp as the vocabulary is (vocab-parallel logits).
        let at = |tp: u32| {
            model
                .logits_bytes(32768, 1, tp, CrossEntropy::Fp32Eager)
                .get()
        };
        assert!((at(1) - 12.0 * logits).abs() < 1.0);
        assert!((at(8) - at(1) / 8.0).abs() < 1.0);
    }

    #[test]
    fn expert_states_shard_over_the_expert_data_parallel_group() {
        // 8 experts over ep 8: each rank holds one expert per layer, replicated over dp/ep ranks
        // only, so ZeRO-1 divides its optimizer states by dp/ep, not dp.
        let mut model = gpt3();
        model.moe = Some(trainplan_model::Moe {
            experts: 8,
            top_k: 2,
            shared_ffn: 0,
            dense_layers: 0,
            dense_ffn: 0,
            layer_freq: 1,
        });
        let cluster = a100(64);
        let mut s = strategy(64, 1, 1);
        s.recompute = Recompute::Full;
        let dense_only = memory(&model, &cluster, &job(1536), &s);
        s.ep = 8;
        let sharded_experts = memory(&model, &cluster, &job(1536), &s);
        let sp = stage_params(&model, &s);
        let expected = 12.0 * (sp.experts / 8.0 + (sp.first - sp.experts) / 64.0);
        assert!(
            (sharded_experts.optimizer.get() - expected).abs() < 1.0,
            "{}",
            sharded_experts.optimizer
        );
        // ep cuts the weights each rank holds by far more than it adds to optimizer shards.
        assert!(sharded_experts.total.get() < dense_only.total.get());
    }

    #[test]
    fn zero_1_and_2_hold_one_gradient_bucket_when_there_is_a_peer() {
        // GPT-3 175B at tp 8: ~1.4B parameters per rank at pp 16 (ZeRO-1) and ~22B at pp 1
        // (ZeRO-2, which DeepSpeed runs without a pipeline), more than the 5e8-element bucket,
        // so the bucket is DeepSpeed's full 1e9 bytes.
        let (model, cluster, job) = (gpt3(), a100(1024), job(1536));
        let buffers = |zero: u8, dp: u32, pp: u32| {
            let mut s = strategy(dp, 8, pp);
            s.zero = zero;
            memory(&model, &cluster, &job, &s).comm_buffers.get()
        };
        let bucket = 2.0 * 5e8;
        for (zero, pp) in [(1, 16), (2, 1)] {
            let extra = buffers(zero, 8, pp) - buffers(0, 8, pp);
            assert!((extra - bucket).abs() < 1.0, "zero {zero}: {extra}");
        }
        // One data-parallel rank reduces with nobody.
        assert_eq!(buffers(1, 1, 16), buffers(0, 1, 16));
        // ZeRO-2 under a pipeline is FSDP, which reduce-scatters without DeepSpeed's bucket.
        assert_eq!(buffers(2, 8, 16), buffers(0, 8, 16));
    }

    #[test]
    fn fsdp_under_a_pipeline_accumulates_unsharded_gradients() {
        // PyTorch's pipeline schedules turn FSDP's gradient sync off until the last micro-batch:
        // unsharded fp32 gradients (4 bytes) plus the reduced shard (4/d), beside the gathered
        // 16-bit weights and the 12/d optimizer bytes.
        let (model, cluster, job) = (gpt3(), a100(1024), job(1536));
        let mut s = strategy(8, 8, 16);
        s.zero = 2;
        assert!(s.fsdp_with_pipeline());
        let m = memory(&model, &cluster, &job, &s);
        // The reported stage's parameters, from its gathered 16-bit weights.
        let params = m.weights.get() / 2.0;
        let d = 8.0;
        let per_param = m.model_states().get() / params;
        assert!(
            (per_param - (2.0 + 4.0 + 4.0 / d + 12.0 / d)).abs() < 1e-9,
            "{per_param}"
        );
        // Without a pipeline ZeRO-2 keeps only shards of its gradients.
        let mut flat = s;
        flat.pp = 1;
        assert!(!flat.fsdp_with_pipeline());
        let f = memory(&model, &cluster, &job, &flat);
        let fp = stage_params(&model, &flat).first;
        assert!(
            (f.gradients.get() / fp - 6.0 / d).abs() < 1e-9,
            "{}",
            f.gradients.get() / fp
        );
    }

    #[test]
    fn megatron_distributed_optimizer_bytes_per_parameter() {
        use Optimizer::{Deepspeed, Megatron};
        use Precision::{Bf16, Fp16};
        // Megatron-LM docs/api-guide/dist_optimizer.md: bf16 parameters with fp32 gradients take
        // 18 bytes per parameter without the distributed optimizer and 6 + 12/d with it; fp16
        // parameters and gradients 20 and 4 + 16/d. DeepSpeed's BF16 optimizer holds 2 more.
        let (model, cluster) = (gpt3(), a100(1024));
        let per_param = |optimizer: Optimizer, precision: Precision, zero: u8| {
            let job = Job {
                precision,
                optimizer,
                ..job(1536)
            };
            // One stage, so the stage the breakdown reports holds every parameter counted.
            let mut s = strategy(8, 8, 1);
            s.zero = zero;
            let m = memory(&model, &cluster, &job, &s);
            m.model_states().get() / stage_params(&model, &s).first
        };
        let d = 8.0;
        let close = |got: f64, want: f64| (got - want).abs() < 1e-9 * want;
        assert!(
            close(per_param(Megatron, Bf16, 0), 18.0),
            "{}",
            per_param(Megatron, Bf16, 0)
        );
        assert!(close(per_param(Megatron, Bf16, 1), 6.0 + 12.0 / d));
        assert!(close(per_param(Megatron, Fp16, 0), 20.0));
        assert!(close(per_param(Megatron, Fp16, 1), 4.0 + 16.0 / d));
        assert!(close(per_param(Deepspeed, Bf16, 1), 8.0 + 12.0 / d));
        // The implementations agree wherever no 16-bit gradient sits beside the main one.
        for zero in [1, 3] {
            assert_eq!(
                per_param(Megatron, Fp16, zero),
                per_param(Deepspeed, Fp16, zero)
            );
        }
        // Megatron's distributed optimizer is ZeRO-1: stages that shard gradients are counted
        // the DeepSpeed way for both.
        for zero in [2, 3] {
            assert_eq!(
                per_param(Megatron, Bf16, zero),
                per_param(Deepspeed, Bf16, zero)
            );
        }
        // Without saying, fp8 is Megatron-Core's (Transformer Engine) and 16 bits DeepSpeed's.
        assert_eq!(Optimizer::default_for(Precision::Fp8), Megatron);
        assert_eq!(Optimizer::default_for(Bf16), Deepspeed);
        assert_eq!(Optimizer::default_for(Fp16), Deepspeed);
    }

    #[test]
    fn megatron_reduces_in_place_without_a_bucket() {
        let (model, cluster) = (gpt3(), a100(1024));
        let s = strategy(8, 8, 16);
        let buffers = |optimizer| {
            let job = Job {
                optimizer,
                ..job(1536)
            };
            memory(&model, &cluster, &job, &s).comm_buffers.get()
        };
        let bucket = 2.0 * 5e8;
        let extra = buffers(Optimizer::Deepspeed) - buffers(Optimizer::Megatron);
        assert!((extra - bucket).abs() < 1.0, "{extra}");
    }

    #[test]
    fn zero_stages_shard_states() {
        let model = gpt3();
        let cluster = a100(1024);
        let job = job(1536);
        let mut last = f64::INFINITY;
        for zero in 0..=3 {
            let mut s = strategy(8, 8, 16);
            s.zero = zero;
            let m = memory(&model, &cluster, &job, &s);
            assert!(m.model_states().get() < last, "stage {zero}");
            last = m.model_states().get();
        }
    }
}
