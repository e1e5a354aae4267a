//! Time of one optimizer step: compute, exposed communication, pipeline bubble, optimizer.
//!
//! Per micro-batch, each pipeline rank runs forward and backward over its layers: matrix products
//! at a shape-dependent fraction of the dense peak, attention at its own kernel efficiency, and
//! memory-bound element-wise work at HBM speed. Tensor-parallel collectives sit on the critical
//! path (Narayanan et al. 2021, section 2.3: two all-reduces per layer in forward, two in
//! backward); the 1F1B schedule adds a bubble of (p-1)/v micro-batch times (Narayanan et al. 2021,
//! section 2.2); data-parallel gradient reduction overlaps the last micro-batch's backward (Li et
//! al. 2020, "PyTorch Distributed", section 3.2.3), and ZeRO-3 gathers overlap each micro-batch's
//! compute (Zhao et al. 2023, "PyTorch FSDP", section 3.3).

use crate::{Job, MemoryBreakdown, Strategy};
use trainplan_hardware::{Cluster, Collective, Group};
use trainplan_model::{Model, Recompute};
use trainplan_units::{Bytes, Flops, Seconds};

/// Bytes of a 16-bit activation element on the wire.
const ACT_BYTES: f64 = 2.0;
/// Bytes of a 16-bit weight on the wire.
const WEIGHT_BYTES: f64 = 2.0;
/// Bytes each Adam update reads and writes per parameter: gradient (4), master weight, two
/// moments (3 × 4 read + 3 × 4 written) and the new 16-bit weight (2).
const OPTIMIZER_TRAFFIC_BYTES: f64 = 30.0;
/// Element-wise HBM traffic per token per layer, in units of (hidden + ffn) 16-bit elements, for
/// forward plus backward: norms, residual adds, activation functions, rotary, bias and dropout
/// each read and write full activations (Ivanov et al. 2021, "Data Movement Is All You Need",
/// Table 1: element-wise and normalisation operators move most of a transformer layer's bytes).
const ELEMENTWISE_ELEMENTS_FACTOR: f64 = 12.0;
/// Share of a bucketed gradient reduction's hidden time that it takes from the compute it runs
/// beside (DDP and ZeRO-1 buckets, Megatron's distributed optimizer): a few NCCL channels
/// stream buckets while backward kernels run, and only what outlasts the window shows.
/// Chosen by leave-one-source-out cross-validation on the public runs, like `matmul_half_dim`
/// (0, 0.1, 0.2, 0.3 give held-out medians of 7.6, 7.8, 7.8 and 8.2%; see
/// hardware-db/calibration/README.md). FSDP's per-layer gathers, tensor-parallel, expert and
/// context-parallel overlaps keep the fitted `overlap_penalty`.
const BUCKETED_OVERLAP_PENALTY: f64 = 0.0;
/// MoE token permutation traffic per token per layer in units of top_k·hidden 16-bit elements,
/// forward plus backward: dispatch and combine each read and write top_k copies (4), twice.
const MOE_PERMUTE_ELEMENTS: f64 = 8.0;

/// Time of one optimizer step, broken down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeBreakdown {
    /// Forward, backward and recomputation on the busiest pipeline rank, all micro-batches.
    pub compute: Seconds,
    /// Tensor-parallel collectives on the critical path.
    pub tp_comm: Seconds,
    /// Context-parallel exchange not hidden behind attention.
    pub cp_comm: Seconds,
    /// Pipeline point-to-point sends.
    pub pp_comm: Seconds,
    /// Expert-parallel all-to-all (token dispatch and combine of MoE layers).
    pub ep_comm: Seconds,
    /// Data-parallel (and ZeRO) communication not hidden behind compute.
    pub dp_comm: Seconds,
    /// Data-parallel (and ZeRO) communication in all, hidden or not.
    pub dp_traffic: Seconds,
    /// Pipeline bubble (idle time of a rank during fill and drain).
    pub bubble: Seconds,
    /// Optimizer update.
    pub optimizer: Seconds,
    /// Whole step.
    pub step: Seconds,
}

impl TimeBreakdown {
    /// Communication on the critical path.
    #[inline]
    pub fn exposed_comm(&self) -> Seconds {
        self.tp_comm + self.cp_comm + self.pp_comm + self.ep_comm + self.dp_comm
    }
}

/// The largest cost of a plan besides useful compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bottleneck {
    /// Compute dominates: the plan is as good as its kernels.
    Compute,
    /// Tensor-parallel collectives.
    TensorComm,
    /// Context-parallel exchange.
    ContextComm,
    /// Expert-parallel all-to-all.
    ExpertComm,
    /// Pipeline sends.
    PipelineComm,
    /// Data-parallel gradient and parameter traffic.
    DataComm,
    /// Pipeline bubble.
    Bubble,
    /// Optimizer step.
    Optimizer,
    /// Memory is nearly full (over 95%): the plan cannot grow its micro-batch.
    Memory,
}

impl Bottleneck {
    /// Every bottleneck, in a fixed order.
    pub const ALL: [Bottleneck; 9] = [
        Bottleneck::Compute,
        Bottleneck::TensorComm,
        Bottleneck::ContextComm,
        Bottleneck::ExpertComm,
        Bottleneck::PipelineComm,
        Bottleneck::DataComm,
        Bottleneck::Bubble,
        Bottleneck::Optimizer,
        Bottleneck::Memory,
    ];

    /// Short name for output.
    pub fn as_str(self) -> &'static str {
        match self {
            Bottleneck::Compute => "compute",
            Bottleneck::TensorComm => "tp_comm",
            Bottleneck::ContextComm => "cp_comm",
            Bottleneck::ExpertComm => "ep_comm",
            Bottleneck::PipelineComm => "pp_comm",
            Bottleneck::DataComm => "dp_comm",
            Bottleneck::Bubble => "bubble",
            Bottleneck::Optimizer => "optimizer",
            Bottleneck::Memory => "memory",
        }
    }
}

pub(crate) fn bottleneck(t: &TimeBreakdown, m: &MemoryBreakdown) -> Bottleneck {
    let overheads = [
        (t.tp_comm, Bottleneck::TensorComm),
        (t.cp_comm, Bottleneck::ContextComm),
        (t.ep_comm, Bottleneck::ExpertComm),
        (t.pp_comm, Bottleneck::PipelineComm),
        (t.dp_comm, Bottleneck::DataComm),
        (t.bubble, Bottleneck::Bubble),
        (t.optimizer, Bottleneck::Optimizer),
    ];
    let mut worst = (Seconds::ZERO, Bottleneck::Compute);
    for (v, b) in overheads {
        if v.get() > worst.0.get() {
            worst = (v, b);
        }
    }
    // An overhead above 15% of the step binds before compute does.
    if worst.0.get() > 0.15 * t.step.get() {
        worst.1
    } else if m.total.get() > 0.95 * m.capacity.get() {
        Bottleneck::Memory
    } else {
        Bottleneck::Compute
    }
}

/// Time of one micro-batch's forward and backward on one pipeline rank, by part.
struct MicroBatch {
    compute: Seconds,
    backward: Seconds,
    tp: Seconds,
    cp: Seconds,
    ep: Seconds,
    pp: Seconds,
}

impl MicroBatch {
    /// A rank whose layers are a `share` of `other`'s kind and the rest of `self`'s: every
    /// per-layer time mixes linearly, and the rest (logits, sends) is the same in both.
    fn mixed(&self, other: &MicroBatch, share: f64) -> MicroBatch {
        let mix = |a: Seconds, b: Seconds| a * (1.0 - share) + b * share;
        MicroBatch {
            compute: mix(self.compute, other.compute),
            backward: mix(self.backward, other.backward),
            tp: mix(self.tp, other.tp),
            cp: mix(self.cp, other.cp),
            ep: mix(self.ep, other.ep),
            pp: mix(self.pp, other.pp),
        }
    }

    fn total(&self) -> Seconds {
        self.compute + self.tp + self.cp + self.ep + self.pp
    }
}

fn micro_batch(model: &Model, cluster: &Cluster, job: &Job, s: &Strategy) -> MicroBatch {
    let eff = &cluster.accelerator.efficiency;
    let tp = f64::from(s.tp);
    let seq = f64::from(job.seq_len);
    let tokens = f64::from(s.micro_batch) * seq / f64::from(s.cp);
    let h = f64::from(model.hidden);
    let layers = f64::from(s.max_layers_per_rank(model));

    // Attention scores and values, forward: 4·s·(n_heads·head_dim) per token over the full
    // square, halved by a causal fused kernel that skips masked blocks (Dao 2023,
    // FlashAttention-2, section 3.1).
    let causal = if s.flash_attention { 0.5 } else { 1.0 };
    let attn_fwd = Flops(2.0 * tokens * seq * (model.q_dim() + model.out_dim()) * causal / tp);

    let mm_peak = cluster.peak_or_bf16(job.precision.matmul_dtype());
    let mm_fraction = if job.precision == crate::Precision::Fp8 {
        eff.fp8_matmul_fraction
    } else {
        eff.matmul_fraction
    };
    let mm_rate = mm_peak * mm_fraction;
    let other_peak = cluster.peak_or_bf16(job.precision.other_dtype());
    // Transformer Engine's fused attention beats FlashAttention-2 by the silicon's measured
    // ratio (Shah et al. 2024, FlashAttention-3, abstract: 1.5-2.0x on H100).
    let te_speedup = if s.te_attention(job) {
        eff.te_attention_speedup
    } else {
        1.0
    };
    let attn_rate = other_peak * eff.attention_fraction * te_speedup;
    let d0 = eff.matmul_half_dim;

    // The layer's weight products on one GPU, forward, each timed at its own shape efficiency
    // (backward runs the same products transposed, so the same dimensions).
    // K and V split over tp up to the KV heads, replicated past them.
    let kv = model.kv_dim_over_ranks(s.tp);
    let f = f64::from(model.ffn);
    let n_in = model.ffn_act.n_matrices() as f64 - 1.0;
    // Tokens one rank sends into its MoE layer: the etp ranks of an expert-tensor group gather
    // their sequence shards, tokens·etp/tp (all of them when etp = tp; Liu et al. 2025,
    // "MoE Parallel Folding").
    let etp = f64::from(s.expert_tp());
    let moe_tokens = tokens * etp / tp;
    let (ffn_tokens, ffn_count, ffn_split) = match model.moe {
        // The ep ranks of a group pool their tokens; each of a rank's experts/ep experts sees
        // ep·moe_tokens·top_k/experts of them, split etp ways.
        Some(moe) => {
            let e = f64::from(moe.experts) / f64::from(s.ep);
            let per_expert =
                moe_tokens * f64::from(moe.top_k) * f64::from(s.ep) / f64::from(moe.experts);
            (per_expert, e, etp)
        }
        None => (tokens, 1.0, tp),
    };
    let q = model.q_dim();
    let out = model.out_dim();
    // The attention's input products, and under MLA among them the ones that make the keys
    // (which op-level checkpointing reruns).
    let (qkv_t, mla_k_t) = match model.mla {
        // MLA: every rank compresses its whole gathered sequence (the down projections are not
        // split), then decompresses its heads' queries, keys and values (DeepSeek-V2, section
        // 2.1; `linear_kv_down_proj` is `duplicated` in Megatron-Core).
        Some(mla) => {
            let (ql, kvl) = (f64::from(mla.q_lora_rank), f64::from(mla.kv_lora_rank));
            let rope = f64::from(mla.qk_rope_head_dim);
            let q_t = if mla.q_lora_rank > 0 {
                gemm(tokens, ql, h, mm_rate, d0) + gemm(tokens, q / tp, ql, mm_rate, d0)
            } else {
                gemm(tokens, q / tp, h, mm_rate, d0)
            };
            let kv_up = model.kv_pair_dim_over_ranks(s.tp) - rope * f64::from(model.n_heads);
            let kv_t = gemm(tokens, kvl + rope, h, mm_rate, d0)
                + gemm(tokens, kv_up / tp, kvl, mm_rate, d0);
            (q_t + kv_t, Some(kv_t))
        }
        // Q, K and V in one fused product (Megatron's `linear_qkv`).
        None => (gemm(tokens, (q + 2.0 * kv) / tp, h, mm_rate, d0), None),
    };
    let o_t = gemm(tokens, h, out / tp, mm_rate, d0);
    // The FFN down products (routed and shared) are the layer's last products.
    let mut down_t = gemm(ffn_tokens, h, f / ffn_split, mm_rate, d0) * ffn_count;
    let mut mm_t =
        qkv_t + o_t + gemm(ffn_tokens, n_in * f / ffn_split, h, mm_rate, d0) * ffn_count + down_t;
    // Shared experts run every token of the rank, split over tp like a dense FFN (DeepSeekMoE,
    // Dai et al. 2024, section 3.2; Megatron-Core's SharedExpertMLP).
    if let Some(moe) = model.moe.filter(|m| m.shared_ffn > 0) {
        let fs = f64::from(moe.shared_ffn);
        let shared_down = gemm(tokens, h, fs / tp, mm_rate, d0);
        down_t += shared_down;
        mm_t += gemm(tokens, n_in * fs / tp, h, mm_rate, d0) + shared_down;
    }
    let logits_t = gemm(
        tokens,
        f64::from(model.vocab) / tp,
        h,
        other_peak * eff.matmul_fraction,
        d0,
    );

    // Backward is twice the forward for products (Narayanan et al. 2021, section 5.1); a fused
    // attention backward recomputes the scores, 2.5× its forward (Dao 2023, section 3.1.2).
    let attn_bwd_factor = if s.flash_attention { 2.5 } else { 2.0 };
    let (mm_recompute, attn_recompute) = match s.effective_recompute() {
        Recompute::None => (0.0, 0.0),
        Recompute::Selective => (0.0, 1.0),
        Recompute::Full => (1.0, 1.0),
    };
    let attn_t = attn_fwd / attn_rate;
    let layer_fwd = mm_t + attn_t;
    // The products a recomputation reruns, and how much of the layer's element-wise forward.
    let (recomputed_mm_t, elem_recompute) = if s.op_level_selective(job) {
        // PyTorch's op-level selective checkpointing reruns every other product (K, the
        // attention projection, and SwiGLU's up or GELU's down product) and all the
        // element-wise work, and keeps the attention (the same products, by weights, give HFU
        // in `pytorch_rerun_share`, lib.rs).
        let third = match model.ffn_act {
            trainplan_model::FfnActivation::Swiglu => {
                let mut up = gemm(ffn_tokens, f / ffn_split, h, mm_rate, d0) * ffn_count;
                if let Some(moe) = model.moe.filter(|m| m.shared_ffn > 0) {
                    up += gemm(tokens, f64::from(moe.shared_ffn) / tp, h, mm_rate, d0);
                }
                up
            }
            trainplan_model::FfnActivation::Gelu => down_t,
        };
        let k_t = mla_k_t.unwrap_or_else(|| gemm(tokens, kv / tp, h, mm_rate, d0));
        (k_t + o_t + third, 1.0)
    } else if s.recompute_stops_early(job) {
        // PyTorch's early-stopping checkpoint reruns the layer's products but the last.
        ((mm_t - down_t) * mm_recompute, mm_recompute)
    } else {
        (mm_t * mm_recompute, mm_recompute)
    };
    let layer_bwd = mm_t * 2.0 + recomputed_mm_t + attn_t * (attn_bwd_factor + attn_recompute);

    // Memory-bound element-wise work at HBM speed.
    let hbm = cluster.accelerator.hbm_bandwidth * eff.hbm_fraction;
    let (dense_bytes, permute_bytes) = elementwise_bytes(model, tokens, s);
    let (dense_t, permute_t) = (dense_bytes / hbm, permute_bytes / hbm);
    // Element-wise work splits like the products, 1:2 forward to backward; the permutation is
    // mirrored 1:1. Full recomputation reruns the forward share.
    let mut elem_fwd = dense_t * (1.0 / 3.0) + permute_t * 0.5;
    let mut elem_bwd =
        dense_t * ((2.0 + elem_recompute) / 3.0) + permute_t * (0.5 * (1.0 + mm_recompute));
    if job.precision == crate::Precision::Fp8 {
        // The rerun products cast their inputs again.
        let (cast_fwd, cast_bwd) = fp8_cast_bytes(model, tokens, s);
        elem_fwd += cast_fwd / hbm;
        elem_bwd += (cast_bwd + cast_fwd * (recomputed_mm_t / mm_t)) / hbm;
    }

    let fwd = (layer_fwd + elem_fwd) * layers + logits_t;
    let bwd = (layer_bwd + elem_bwd) * layers + logits_t * 2.0;

    // Tensor parallelism: per layer two all-reduces forward and two backward of the b·s·h
    // activation (Narayanan et al. 2021, section 2.3), plus two more when full recomputation reruns
    // the forward; with sequence parallelism each becomes an all-gather plus a reduce-scatter of
    // the same bus volume (Korthikanti et al. 2022, section 4.2.2).
    let tp_group = Group {
        size: s.tp,
        stride: 1,
    };
    let act = Bytes(tokens * h * ACT_BYTES);
    let tp_one = if s.sp_active() {
        cluster.collective_time(Collective::AllGather, act, tp_group)
            + cluster.collective_time(Collective::ReduceScatter, act, tp_group)
    } else {
        cluster.collective_time(Collective::AllReduce, act, tp_group)
    };
    // An MoE block gathers and scatters its tokens over the etp ranks only (nothing when
    // etp = 1, Liu et al. 2025, "MoE Parallel Folding"); the attention block keeps the full tp group.
    let ffn_one = if model.moe.is_some() && s.expert_tp() != s.tp {
        let etp_group = Group {
            size: s.expert_tp(),
            stride: 1,
        };
        let moe_act = Bytes(moe_tokens * h * ACT_BYTES);
        cluster.collective_time(Collective::AllGather, moe_act, etp_group)
            + cluster.collective_time(Collective::ReduceScatter, moe_act, etp_group)
    } else {
        tp_one
    };
    let tp_per_layer = (tp_one + ffn_one) * (2.0 + mm_recompute);
    // With overlap on, each collective is pipelined with the product that consumes or produces
    // it (Wang et al. 2022, "Overlap Communication with Dependent Computation via Decomposition",
    // section 4): only what outlasts the layer's products stays on the critical path.
    let tp_t = if s.tp_overlap_active() {
        overlapped(
            tp_per_layer,
            mm_t * (3.0 + mm_recompute),
            eff.overlap_penalty,
        ) * layers
    } else {
        tp_per_layer * layers
    };

    // Context parallelism: ring attention passes K and V around the cp ranks in forward and
    // their gradients in backward, overlapped with the attention blocks (Liu et al. 2023,
    // "Ring Attention", section 3).
    let cp_t = if s.cp > 1 {
        let kv_bytes = Bytes(tokens * model.kv_pair_dim_over_ranks(s.tp) * ACT_BYTES / tp);
        let cp_group = Group {
            size: s.cp,
            stride: s.tp,
        };
        let ring =
            cluster.collective_time(Collective::AllGather, kv_bytes * f64::from(s.cp), cp_group);
        let comm = ring * (1.0 + 2.0 + attn_recompute);
        let hidden_by = attn_t * (1.0 + attn_bwd_factor + attn_recompute);
        overlapped(comm, hidden_by, eff.overlap_penalty) * layers
    } else {
        Seconds::ZERO
    };

    // Expert parallelism: each MoE layer dispatches every token's hidden state to its top_k
    // experts and combines the results, an all-to-all each way in forward and again in backward
    // (Lepikhin et al. 2020, "GShard", section 2.2), rerun under full recomputation.
    let ep_t = match model.moe {
        Some(moe) if s.ep > 1 => {
            let ep_group = s.expert_parallel_group();
            let one = dispatch_time(
                cluster,
                s.ep_dispatcher,
                moe,
                moe_tokens * h * ACT_BYTES,
                ep_group,
            );
            let a2a = one * ((4.0 + 2.0 * mm_recompute) * layers);
            // Overlapped, a micro-batch's dispatches and combines run while another micro-batch
            // computes, forward beside backward (DeepSeek-AI 2024, "DeepSeek-V3 Technical
            // Report", section 3.2.1): hidden up to one micro-batch's compute, at the penalty of
            // the SMs and HBM bandwidth the transfers take.
            if s.ep_overlap_active(job) {
                overlapped(a2a, fwd + bwd, eff.overlap_penalty)
            } else {
                a2a
            }
        }
        _ => Seconds::ZERO,
    };

    // Pipeline: each model chunk receives activations forward and gradients backward; Megatron's
    // scatter/gather optimisation sends 1/t of the tensor from each tensor-parallel rank and
    // all-gathers it over the fast links on arrival (Narayanan et al. 2021, section 4.1).
    let pp_t = if s.pp > 1 {
        let msg = act * (1.0 / tp);
        let group = Group {
            size: 2,
            stride: s.tp * s.cp * s.dp,
        };
        let sends =
            cluster.collective_time(Collective::SendRecv, msg, group) * (2.0 * f64::from(s.vpp));
        if s.vpp > 1 {
            // The interleaved schedule posts each chunk's sends and receives before computing the
            // next chunk and waits after it (Megatron-LM `overlap_p2p_comm`, on by default for
            // interleaving; PyTorch's interleaved schedules alike).
            overlapped(sends, fwd + bwd, eff.overlap_penalty)
        } else {
            sends
        }
    } else {
        Seconds::ZERO
    };

    MicroBatch {
        compute: fwd + bwd,
        backward: bwd,
        tp: tp_t,
        cp: cp_t,
        ep: ep_t,
        pp: pp_t,
    }
}

/// One dispatch (or combine) of a rank's tokens, `token_bytes` per copy, to its experts over
/// `group`: one copy per routed expert through a plain all-to-all (GShard, Lepikhin et al. 2020,
/// section 2.2), or one per destination node through a deduplicating dispatcher. Kept out of
/// line: dense layouts never call it.
#[inline(never)]
fn dispatch_time(
    cluster: &Cluster,
    dispatcher: crate::EpDispatcher,
    moe: trainplan_model::Moe,
    token_bytes: f64,
    group: Group,
) -> Seconds {
    match dispatcher {
        crate::EpDispatcher::AllToAll => cluster.collective_time(
            Collective::AllToAll,
            Bytes(token_bytes * f64::from(moe.top_k)),
            group,
        ),
        crate::EpDispatcher::DeepEp => {
            cluster.deduplicated_dispatch_time(Bytes(token_bytes), moe.top_k, moe.experts, group)
        }
    }
}

/// Replicated K/V heads (tp past the KV heads) receive a gradient from each rank's own query
/// heads; the tp/kv ranks sharing a head all-reduce it once per step, after backward, as BigCode's
/// Megatron-LM does for its replicated multi-query `key_value` layer. Out of line: only
/// multi-query layouts call it.
#[cold]
#[inline(never)]
fn kv_replica_sync_time(model: &Model, cluster: &Cluster, job: &Job, s: &Strategy) -> Seconds {
    let replicas = Group {
        size: s.tp / model.n_kv_heads.max(1),
        stride: 1,
    };
    let kv_params = model.kv_dim_per_rank(s.tp)
        * (2.0 * f64::from(model.hidden))
        * f64::from(s.max_layers_per_rank(model));
    cluster.collective_time(
        Collective::AllReduce,
        Bytes(kv_params * job.grad_bytes),
        replicas,
    )
}

/// The busiest rank's micro-batch when dense layers stand in for MoE ones: the first and the
/// last rank each at their own mix of both kinds, the slower of the two (the first alone when
/// pp = 1). Out of line: only MoE models with dense layers call it.
#[cold]
#[inline(never)]
fn dense_layers_rank(
    model: &Model,
    cluster: &Cluster,
    job: &Job,
    s: &Strategy,
    stage: &crate::memory::StageParams,
    moe: MicroBatch,
) -> MicroBatch {
    let Some(dense) = model.dense_twin() else {
        return moe;
    };
    let layers = f64::from(s.max_layers_per_rank(model));
    let dense_mb = micro_batch(&dense, cluster, job, s);
    let first = moe.mixed(&dense_mb, stage.dense_first / layers);
    if s.pp == 1 {
        return first;
    }
    let last = moe.mixed(&dense_mb, stage.dense_last / layers);
    if first.total() > last.total() {
        first
    } else {
        last
    }
}

/// MLA's down projections are whole on every tensor-parallel rank, each fed its own heads'
/// gradients: the tp ranks all-reduce those weights' gradients once per step, after backward
/// (Megatron-Core's `duplicated` parameters join the tensor-parallel gradient all-reduce, as
/// sequence-parallel norms do). Out of line: only MLA models call it.
#[cold]
#[inline(never)]
fn mla_down_sync_time(model: &Model, cluster: &Cluster, job: &Job, s: &Strategy) -> Seconds {
    let group = Group {
        size: s.tp,
        stride: 1,
    };
    let params = model.mla_replicated_params() * f64::from(s.max_layers_per_rank(model));
    cluster.collective_time(Collective::AllReduce, Bytes(params * job.grad_bytes), group)
}

/// Memory-bound element-wise HBM traffic of one layer for `tokens` tokens of a micro-batch on one
/// GPU, forward plus backward: the dense part (norms, residuals, activation functions) and the
/// MoE token permutation. Without sequence parallelism every tensor-parallel rank runs the
/// hidden-width operations on the whole sequence; with it, on its 1/tp shard (Korthikanti et al.
/// 2022, section 4.2.2), and permutes the etp/tp share its expert-tensor group gathers.
fn elementwise_bytes(model: &Model, tokens: f64, s: &Strategy) -> (Bytes, Bytes) {
    let tp = f64::from(s.tp.max(1));
    let h = f64::from(model.hidden);
    let h_share = if s.sp_active() { h / tp } else { h };
    let dense = ELEMENTWISE_ELEMENTS_FACTOR * (h_share + model.token_ffn_width() / tp);
    // MoE layers also permute every token's hidden state into expert order and back: dispatch
    // copies it to its top_k experts and combine reads the top_k results back, each a read and a
    // write of top_k·h elements, mirrored in backward (GShard's dispatch and combine, Lepikhin et
    // al. 2020, section 2.2; Megatron-Core's permute/unpermute).
    // A rank permutes the tokens it dispatches: its etp ranks' gathered sequence shards under
    // sequence parallelism, the whole sequence without it.
    let moe_share = if s.sp_active() {
        h * f64::from(s.expert_tp()) / tp
    } else {
        h
    };
    let permute = model.moe.map_or(0.0, |m| {
        MOE_PERMUTE_ELEMENTS * f64::from(m.top_k) * moe_share
    });
    (
        Bytes(ACT_BYTES * tokens * dense),
        Bytes(ACT_BYTES * tokens * permute),
    )
}

/// HBM bytes per element of a 16-bit tensor cast to fp8 with a current (per-tensor, dynamic)
/// scale: a read for its amax, then a read and a 1-byte write (Micikevicius et al. 2022, "FP8
/// Formats for Deep Learning", section 4.3: per-tensor scaling factors from the tensor's amax).
const FP8_CAST_BYTES_PER_ELEMENT: f64 = 5.0;

/// HBM traffic of one layer's fp8 casts for `tokens` tokens of a micro-batch on one GPU, forward
/// and backward: every fp8 product casts its 16-bit activation operand, the input in forward and
/// the output gradient in backward, each distinct tensor once. The inputs of column-parallel
/// products are the whole gathered sequence on every tensor-parallel rank while the products
/// split tp ways, so the casts weigh more as tp grows. Weights are cast once per step and left
/// out.
fn fp8_cast_bytes(model: &Model, tokens: f64, s: &Strategy) -> (Bytes, Bytes) {
    let tp = f64::from(s.tp.max(1));
    let h = f64::from(model.hidden);
    let q = model.q_dim();
    let kv = model.kv_pair_dim_over_ranks(s.tp);
    let n_in = model.ffn_act.n_matrices() as f64 - 1.0;
    // Tokens that enter a rank's FFN products per token of the micro-batch, and the FFN width
    // they run at: top_k routed copies of the etp/tp share an expert-tensor group gathers, plus
    // the shared experts.
    let ffn_copies = model
        .moe
        .map_or(1.0, |m| f64::from(m.top_k) * f64::from(s.expert_tp()) / tp);
    let ffn_width = model.token_ffn_width();
    // MLA also casts its latents, the inputs of its up projections, and their gradients.
    let latents = model.mla.map_or(0.0, |m| {
        f64::from(m.q_lora_rank) + f64::from(m.kv_lora_rank) + f64::from(m.qk_rope_head_dim)
    });
    // Forward: QKV input, attention output, FFN input, FFN hidden.
    let fwd = h + latents + model.out_dim() / tp + ffn_copies * h + ffn_width / tp;
    // Backward: the gradients of QKV, of the attention projection, of the FFN up (and gate)
    // products and of the FFN down product.
    let bwd = (q + kv) / tp + latents + h + n_in * ffn_width / tp + ffn_copies * h;
    let per = FP8_CAST_BYTES_PER_ELEMENT * tokens;
    (Bytes(per * fwd), Bytes(per * bwd))
}

/// Exposed time of `comm` run concurrently with `window` of compute: what does not fit in the
/// window, plus the slowdown the hidden part inflicts on the compute it shares the GPU with.
#[inline]
fn overlapped(comm: Seconds, window: Seconds, penalty: f64) -> Seconds {
    let window = window.max(Seconds::ZERO);
    (comm - window).max(Seconds::ZERO) + comm.min(window) * penalty
}

/// Time of one `m×k · k×n` product at `rate`, slowed by its shape: a product whose dimensions
/// are small against a tile wastes tensor-core work and launch time, modelled as an efficiency
/// of `1 / (1 + d0·(1/m + 1/n + 1/k))` with `d0` the calibrated half-efficiency dimension.
#[inline]
fn gemm(m: f64, n: f64, k: f64, rate: trainplan_units::FlopRate, d0: f64) -> Seconds {
    let shape = 1.0 / (1.0 + d0 * (1.0 / m + 1.0 / n + 1.0 / k));
    Flops(2.0 * m * n * k) / (rate * shape)
}

pub(crate) fn step_time(
    model: &Model,
    cluster: &Cluster,
    job: &Job,
    s: &Strategy,
) -> (TimeBreakdown, u32) {
    let m = s.micro_batches(job);
    let mf = f64::from(m);
    let stage = crate::memory::stage_params(model, s);
    let mb = micro_batch(model, cluster, job, s);
    // Dense layers in place of MoE layers, leading (on the first rank) or interleaved (on
    // every rank): the busiest of the first and the last rank sets the pace.
    let mb = if stage.dense_first > 0.0 || stage.dense_last > 0.0 {
        dense_layers_rank(model, cluster, job, s, &stage, mb)
    } else {
        mb
    };
    let per_mb = mb.total();
    // 1F1B: (m + (p-1)/v) micro-batch times per step (Narayanan et al. 2021, section 2.2.2);
    // the fill and drain pass p-1 model chunks, so with uneven chunks the longest one sets it.
    let bubble = per_mb * s.bubble_micro_batches(model);

    // Data parallelism over every rank holding the same weights: dp × cp, stride tp.
    // Dense weights are replicated over the dp × cp ranks (stride tp); MoE expert weights only
    // over the tp·cp·dp/(etp·ep) ranks that hold the same experts (Megatron's expert data
    // parallelism, expert ranks ordered etp, ep, then replicas; Liu et al. 2025, "MoE Parallel Folding").
    let (params, experts) = if stage.first > stage.last {
        (stage.first, stage.experts_first)
    } else {
        (stage.last, stage.experts)
    };
    let dp_group = Group {
        size: s.dp * s.cp,
        stride: s.tp,
    };
    let expert_dp = s.expert_dp();
    let expert_group = Group {
        size: expert_dp as u32,
        stride: s.expert_tp() * s.ep,
    };
    let collective = |op: Collective, bytes_per_param: f64| -> Seconds {
        cluster.collective_time(op, Bytes((params - experts) * bytes_per_param), dp_group)
            + cluster.collective_time(op, Bytes(experts * bytes_per_param), expert_group)
    };
    // ZeRO-0/1 reduce through buckets; ZeRO-2/3 (FSDP, DeepSpeed's partitioned gradients)
    // layer by layer, at the fitted penalty.
    let penalty = if s.zero <= 1 {
        BUCKETED_OVERLAP_PENALTY
    } else {
        cluster.accelerator.efficiency.overlap_penalty
    };
    let (dp_t, dp_traffic) = match s.zero {
        0 => {
            let ar = collective(Collective::AllReduce, job.grad_bytes);
            (overlapped(ar, mb.backward, penalty), ar)
        }
        1 | 2 if s.zero == 1 || s.fsdp_with_pipeline() => {
            // Reduce-scatter of gradients during the last backward, all-gather of the updated
            // weights overlapped with the next forward (Megatron distributed optimizer; FSDP
            // under a pipeline schedule, which syncs gradients on the last micro-batch only).
            let rs = collective(Collective::ReduceScatter, job.grad_bytes);
            let ag = collective(Collective::AllGather, WEIGHT_BYTES);
            (
                overlapped(rs, mb.backward, penalty)
                    + overlapped(ag, mb.compute - mb.backward, penalty),
                rs + ag,
            )
        }
        2 => {
            // ZeRO-2 keeps only its gradient shard, so gradients are reduce-scattered every
            // micro-batch, each behind that micro-batch's backward (Rajbhandari et al. 2020,
            // section 5.2); the updated weights are all-gathered once per step.
            let rs = collective(Collective::ReduceScatter, job.grad_bytes);
            let ag = collective(Collective::AllGather, WEIGHT_BYTES);
            (
                overlapped(rs, mb.backward, penalty) * mf
                    + overlapped(ag, mb.compute - mb.backward, penalty),
                rs * mf + ag,
            )
        }
        _ => {
            // FSDP: gather weights for forward and again for backward, reduce-scatter gradients,
            // every micro-batch; each hides behind that micro-batch's compute except the first
            // layer's gather.
            let ag = collective(Collective::AllGather, WEIGHT_BYTES);
            let rs = collective(Collective::ReduceScatter, job.grad_bytes);
            let comm = ag * 2.0 + rs;
            let layers = f64::from(s.max_layers_per_rank(model));
            let exposed = overlapped(comm, mb.compute, penalty) + comm * (1.0 / layers);
            (exposed * mf, comm * mf)
        }
    };

    // Unless the framework overlaps them (DeepSpeed below ZeRO-3 does not), none hides.
    let dp_t = if s.dp_comm_overlaps(job) {
        dp_t
    } else {
        dp_traffic
    };

    // Each rank updates its ZeRO shard: dense weights over dp × cp, experts over the expert
    // data-parallel group.
    let (dense_shard, expert_shard) = if s.zero >= 1 {
        let d = f64::from(s.dp) * f64::from(s.cp);
        (d, expert_dp)
    } else {
        (1.0, 1.0)
    };
    let eff = &cluster.accelerator.efficiency;
    let updated = (params - experts) / dense_shard + experts / expert_shard;
    let optimizer = Bytes(OPTIMIZER_TRAFFIC_BYTES * updated)
        / (cluster.accelerator.hbm_bandwidth * eff.hbm_fraction);

    let kv_sync = if s.tp > model.n_kv_heads {
        kv_replica_sync_time(model, cluster, job, s)
    } else if model.mla.is_some() && s.tp > 1 {
        mla_down_sync_time(model, cluster, job, s)
    } else {
        Seconds::ZERO
    };

    let compute = mb.compute * mf;
    let tp_comm = mb.tp * mf + kv_sync;
    let cp_comm = mb.cp * mf;
    let pp_comm = mb.pp * mf;
    let ep_comm = mb.ep * mf;
    let step = per_mb * mf + bubble + dp_t + optimizer + kv_sync;
    (
        TimeBreakdown {
            compute,
            tp_comm,
            cp_comm,
            pp_comm,
            ep_comm,
            dp_comm: dp_t,
            dp_traffic,
            bubble,
            optimizer,
            step,
        },
        m,
    )
}

#[cfg(test)]
mod tests {
    use crate::evaluate;
    use crate::testing::{a100, gpt3, job, strategy};

    #[test]
    fn layers_that_do_not_divide_into_chunks_run_at_the_busiest_rank_pace() {
        // Llama 3 405B's 126 layers on pp 8 × vpp 8 = 64 chunks: 62 chunks of 2 layers and 2 of
        // 1 (Megatron-Core accounts the embedding and loss as the missing layers). The busiest
        // rank runs 8 chunks of 2 = 16 layers, as a 128-layer model would; the long chunks of
        // 120 or 65 layers are spread over the ranks (15 and 9 layers on the busiest).
        let (cluster, job) = (a100(1024), job(1536));
        let model = |n_layers| trainplan_model::Model { n_layers, ..gpt3() };
        let s = crate::Strategy {
            vpp: 8,
            ..strategy(16, 8, 8)
        };
        let layers = |n| s.max_layers_per_rank(&model(n));
        assert_eq!(
            (
                layers(126),
                layers(128),
                layers(120),
                layers(72),
                layers(65),
                layers(64)
            ),
            (16, 16, 15, 9, 9, 8)
        );
        let chunk = |n| s.max_layers_per_chunk(&model(n));
        assert_eq!((chunk(126), chunk(65), chunk(64)), (2, 2, 1));
        // Same busiest rank and longest chunk: same step, same bubble.
        for (a, b) in [(126, 128), (65, 72)] {
            let ea = evaluate(&model(a), &cluster, &job, &s).unwrap();
            let eb = evaluate(&model(b), &cluster, &job, &s).unwrap();
            assert!(
                (ea.time.step.get() - eb.time.step.get()).abs() < 1e-9,
                "{a} vs {b}"
            );
            assert!(
                (ea.time.bubble.get() - eb.time.bubble.get()).abs() < 1e-9,
                "{a} vs {b}"
            );
        }
        // 65 layers: 9 per rank, but the fill and drain pass chunks of 2, not 9/8.
        let e = evaluate(&model(65), &cluster, &job, &s).unwrap();
        let even = evaluate(&model(64), &cluster, &job, &s).unwrap();
        assert!(e.time.bubble.get() > 1.8 * even.time.bubble.get());
    }

    #[test]
    fn model_chunks_may_outnumber_the_layers_but_ranks_may_not() {
        // Qwen3-235B's 94 layers on pp 32 × vpp 3 (NVIDIA's Megatron-MoE-ModelZoo): 96 chunks,
        // two of them empty. The busiest rank holds 3 layers and the fill and drain pass chunks
        // of one layer, a third of plain 1F1B's bubble on the same ranks.
        let (cluster, job) = (a100(1024), job(1536));
        let model = trainplan_model::Model {
            n_layers: 94,
            ..gpt3()
        };
        let s = crate::Strategy {
            vpp: 3,
            ..strategy(4, 8, 32)
        };
        assert_eq!(s.max_layers_per_rank(&model), 3);
        assert_eq!(s.max_layers_per_chunk(&model), 1);
        let interleaved = evaluate(&model, &cluster, &job, &s).unwrap();
        let plain = crate::Strategy { vpp: 1, ..s };
        let plain = evaluate(&model, &cluster, &job, &plain).unwrap();
        assert!(interleaved.time.bubble.get() < 0.4 * plain.time.bubble.get());
        // More stages than layers leaves a rank without work.
        let too_deep = trainplan_model::Model {
            n_layers: 31,
            ..model
        };
        assert_eq!(
            evaluate(&too_deep, &cluster, &job, &s).unwrap_err(),
            crate::Infeasible::TooFewLayers {
                pp: 32,
                n_layers: 31
            }
        );
    }

    #[test]
    fn fsdp_under_a_pipeline_reduces_once_per_step() {
        // ZeRO-2 without a pipeline reduce-scatters every micro-batch; under a pipeline (FSDP
        // with PyTorch's schedules) once per step, as ZeRO-1 does.
        let (model, cluster, job) = (gpt3(), a100(1024), job(1536));
        let traffic = |zero: u8, pp: u32| {
            let mut s = strategy(1024 / (8 * pp), 8, pp);
            s.zero = zero;
            let e = evaluate(&model, &cluster, &job, &s).unwrap();
            (e.time.dp_traffic.get(), e.grad_accum)
        };
        let ((z1, _), (z2, m)) = (traffic(1, 16), traffic(2, 16));
        assert!(m > 1);
        assert!((z2 - z1).abs() < 1e-12 * z1, "{z2} vs {z1}");
        let ((flat1, _), (flat2, m1)) = (traffic(1, 1), traffic(2, 1));
        assert!(m1 > 1);
        assert!(flat2 > 1.5 * flat1, "{flat2} vs {flat1}");
    }

    #[test]
    fn bucketed_reductions_overlap_for_free_and_fsdp_pays_the_penalty() {
        // GPT-3 175B at tp 8 pp 16 dp 8, micro-batch 8: ZeRO-1's reduce-scatter fits behind the
        // last backward and its all-gather behind the next forward, so nothing shows; the same
        // traffic hidden by FSDP under a pipeline (ZeRO-2 past pp 1) still costs the fitted
        // penalty of it.
        let (model, cluster, job) = (gpt3(), a100(1024), job(1536));
        let dp = |zero: u8| {
            let mut s = strategy(8, 8, 16);
            s.micro_batch = 8;
            s.zero = zero;
            let e = evaluate(&model, &cluster, &job, &s).unwrap();
            (e.time.dp_comm.get(), e.time.dp_traffic.get())
        };
        let (bucketed, traffic) = dp(1);
        assert!(traffic > 0.0);
        assert_eq!(bucketed, 0.0);
        let (fsdp, fsdp_traffic) = dp(2);
        let penalty = cluster.accelerator.efficiency.overlap_penalty;
        assert!(
            (fsdp - penalty * fsdp_traffic).abs() < 1e-9 * fsdp_traffic,
            "{fsdp}"
        );
    }

    #[test]
    fn tensor_parallel_overlap_hides_collectives_behind_products() {
        let (model, cluster, job) = (gpt3(), a100(1024), job(1536));
        let plain = strategy(8, 8, 16);
        let overlapped = crate::Strategy {
            tp_overlap: true,
            ..plain
        };
        let a = evaluate(&model, &cluster, &job, &plain).unwrap().time;
        let b = evaluate(&model, &cluster, &job, &overlapped).unwrap().time;
        assert!(a.tp_comm.get() > 0.0);
        // The layer's products outlast its collectives, so only the overlap penalty remains.
        assert!(
            b.tp_comm.get() < 0.5 * a.tp_comm.get(),
            "{} vs {}",
            b.tp_comm,
            a.tp_comm
        );
        assert!(b.step.get() < a.step.get());
        assert_eq!(a.compute, b.compute);
    }

    #[test]
    fn deepspeed_reductions_hide_behind_nothing() {
        use crate::Framework::{Deepspeed, Megatron};
        // GPT-3 175B at tp 8 pp 8, dp 16 over the NICs, ZeRO-1.
        let (model, cluster, job0) = (gpt3(), a100(1024), job(1536));
        let s = crate::Strategy {
            zero: 1,
            ..strategy(16, 8, 8)
        };
        let time = |framework| {
            let job = crate::Job { framework, ..job0 };
            evaluate(&model, &cluster, &job, &s).unwrap().time
        };
        let (ds, mg) = (time(Some(Deepspeed)), time(Some(Megatron)));
        // The same traffic; DeepSpeed shows all of it, Megatron hides what the last
        // micro-batch's backward covers.
        assert_eq!(ds.dp_traffic, mg.dp_traffic);
        assert!(ds.dp_traffic.get() > 0.0);
        assert_eq!(ds.dp_comm, ds.dp_traffic);
        assert!(mg.dp_comm.get() < 0.9 * mg.dp_traffic.get(), "{mg:?}");
        assert_eq!(ds.compute, mg.compute);
        assert!(ds.step > mg.step);
        // DeepSpeed's ZeRO-3 overlaps by default (`overlap_comm` on for stage 3).
        let z3 = crate::Strategy {
            zero: 3,
            pp: 1,
            dp: 128,
            ..s
        };
        let z3_time = |framework| {
            let job = crate::Job { framework, ..job0 };
            evaluate(&model, &cluster, &job, &z3).unwrap().time
        };
        let ds3 = z3_time(Some(Deepspeed));
        assert!(ds3.dp_comm.get() < ds3.dp_traffic.get(), "{ds3:?}");
    }

    #[test]
    fn transformer_engine_attention_runs_at_the_silicon_s_speedup() {
        use crate::Framework::{Deepspeed, Megatron, Pytorch};
        // Llama 3 70B at tp 8 on 8 GPUs, no recomputation: attention time is A / speedup under
        // Megatron (or no stated framework), A under PyTorch's SDPA and DeepSpeed's flash-attn.
        let model = trainplan_model::testing::llama3_70b();
        let compute = |speedup: f64, framework, flash_attention| {
            let mut cluster = crate::testing::a100(8);
            cluster.accelerator.efficiency.te_attention_speedup = speedup;
            let job = crate::Job {
                framework,
                cross_entropy: None,
                ..job(64)
            };
            let s = crate::Strategy {
                recompute: trainplan_model::Recompute::None,
                flash_attention,
                ..strategy(1, 8, 1)
            };
            evaluate(&model, &cluster, &job, &s)
                .unwrap()
                .time
                .compute
                .get()
        };
        // Without a faster kernel every stack runs the same attention.
        let base = compute(1.0, Some(Pytorch), true);
        assert_eq!(compute(1.0, Some(Megatron), true), base);
        assert_eq!(compute(1.0, None, true), base);
        // With one, only the stacks on Transformer Engine gain, and by A·(1 - 1/k).
        assert_eq!(compute(1.75, Some(Pytorch), true), base);
        assert_eq!(compute(1.75, Some(Deepspeed), true), base);
        assert_eq!(
            compute(1.75, None, true),
            compute(1.75, Some(Megatron), true)
        );
        let gain = |k| base - compute(k, Some(Megatron), true);
        assert!(gain(1.75) > 0.0);
        let ratio = gain(1.75) / gain(3.5);
        let want = (1.0 - 1.0 / 1.75) / (1.0 - 1.0 / 3.5);
        assert!((ratio - want).abs() < 1e-9, "{ratio} vs {want}");
        // Unfused attention is not Transformer Engine's fused kernel.
        assert_eq!(
            compute(1.75, Some(Megatron), false),
            compute(1.0, Some(Megatron), false)
        );
    }

    #[test]
    fn frameworks_recompute_differently() {
        use crate::Framework::{Deepspeed, Megatron, Pytorch};
        use trainplan_model::Recompute::{Full, None, Selective};
        // Llama 3 70B at tp 8 on 8 GPUs, 64 micro-batches of 2048 tokens.
        let model = trainplan_model::testing::llama3_70b();
        let cluster = crate::testing::a100(8);
        let compute = |framework, recompute| {
            let job = crate::Job {
                framework,
                cross_entropy: Option::None,
                ..job(64)
            };
            let s = crate::Strategy {
                recompute,
                ..strategy(1, 8, 1)
            };
            evaluate(&model, &cluster, &job, &s)
                .unwrap()
                .time
                .compute
                .get()
        };
        // Megatron and DeepSpeed rerun the whole forward, as the framework-neutral rule does.
        assert_eq!(compute(Some(Megatron), Full), compute(Option::None, Full));
        assert_eq!(compute(Some(Deepspeed), Full), compute(Option::None, Full));
        // PyTorch's early stop skips the FFN down product: 1 · h · ffn of the layer's
        // 2·h·(q + kv) + 3 · h · ffn weights, per token and layer, at its own shape.
        let saved = compute(Option::None, Full) - compute(Some(Pytorch), Full);
        let rate = cluster.peak_or_bf16(crate::Precision::Bf16.matmul_dtype())
            * cluster.accelerator.efficiency.matmul_fraction;
        let d0 = cluster.accelerator.efficiency.matmul_half_dim;
        let down = super::gemm(2048.0, 8192.0, 28672.0 / 8.0, rate, d0).get() * 80.0 * 64.0;
        assert!((saved - down).abs() < 1e-9 * down, "{saved} vs {down}");
        // Megatron's selective recomputation under a fused kernel reruns nothing; PyTorch's
        // op-level one reruns K, the projection and the up product: between none and full.
        assert_eq!(
            compute(Some(Megatron), Selective),
            compute(Some(Megatron), None)
        );
        let op = compute(Some(Pytorch), Selective);
        assert!(compute(Some(Pytorch), None) < op && op < compute(Some(Pytorch), Full));
    }

    #[test]
    fn fp8_casts_read_the_gathered_inputs_on_every_tensor_parallel_rank() {
        // Llama 3 8B's layer: h 4096, 32 query heads and 8 KV heads of 128, SwiGLU FFN 14336.
        // Per token, forward casts the QKV input (h), the attention output (q/tp), the FFN input
        // (h) and its hidden (ffn/tp); backward the gradients of QKV ((q + 2kv)/tp), of the
        // projection (h), of the gate and up products (2·ffn/tp) and of the down product (h);
        // 5 bytes each.
        let llama = trainplan_model::Model {
            hidden: 4096,
            n_heads: 32,
            n_kv_heads: 8,
            head_dim: 128,
            ffn: 14336,
            ffn_act: trainplan_model::FfnActivation::Swiglu,
            ..gpt3()
        };
        let tokens = 8192.0;
        let bytes = |tp: u32| {
            let (f, b) = super::fp8_cast_bytes(&llama, tokens, &strategy(1, tp, 1));
            (f.get() / (5.0 * tokens), b.get() / (5.0 * tokens))
        };
        assert_eq!(
            bytes(1),
            (
                4096.0 + 4096.0 + 4096.0 + 14336.0,
                6144.0 + 4096.0 + 28672.0 + 4096.0
            )
        );
        assert_eq!(
            bytes(8),
            (
                4096.0 + 512.0 + 4096.0 + 1792.0,
                768.0 + 4096.0 + 3584.0 + 4096.0
            )
        );
        // The products split 8 ways, the hidden-width casts do not: the casts' share grows.
        assert!(bytes(8).0 * 8.0 > bytes(1).0 * 3.0);
        // Only fp8 runs pay them, at HBM speed: doubling the bandwidth saves an fp8 step half
        // the casts more than it saves a bf16 step.
        let cluster = |hbm_tbps: f64| {
            let mut c = crate::testing::a100(8);
            c.accelerator.fp8_peak = Some(trainplan_units::FlopRate::from_tflops(624.0));
            c.accelerator.hbm_bandwidth = trainplan_units::ByteRate::from_tbps(hbm_tbps);
            c
        };
        let bf16 = job(64);
        let fp8 = crate::Job {
            precision: crate::Precision::Fp8,
            ..bf16
        };
        let s = strategy(1, 8, 1);
        let compute = |job: &crate::Job, hbm_tbps: f64| {
            evaluate(&llama, &cluster(hbm_tbps), job, &s)
                .unwrap()
                .time
                .compute
                .get()
        };
        let saved = |job: &crate::Job| compute(job, 2.0) - compute(job, 4.0);
        let (f, b) = super::fp8_cast_bytes(&llama, 2048.0, &s);
        let hbm = 2.0e12 * cluster(2.0).accelerator.efficiency.hbm_fraction;
        let casts_s = (f + b).get() / hbm * f64::from(llama.n_layers) * 64.0;
        let extra = saved(&fp8) - saved(&bf16);
        assert!(
            (extra - casts_s / 2.0).abs() < 1e-9 * casts_s,
            "{extra} vs {}",
            casts_s / 2.0
        );
    }

    #[test]
    fn element_wise_traffic_follows_the_sequence_shard_and_the_experts() {
        // Mixtral-like: h 4096, FFN 14336 per expert, top-2, tp 2. Dense traffic is
        // 12 × (h + 2·FFN/tp) elements per token, h/tp under sequence parallelism; dispatch and
        // combine add 8 × 2 × h for the tokens a rank dispatches: all of them when experts split
        // like the dense layers (its tp group gathers the sequence first), its own shard when
        // experts are whole (etp 1).
        let moe = trainplan_model::Model {
            hidden: 4096,
            ffn: 14336,
            moe: Some(trainplan_model::Moe {
                experts: 8,
                top_k: 2,
                shared_ffn: 0,
                dense_layers: 0,
                dense_ffn: 0,
                layer_freq: 1,
            }),
            mla: None,
            ..gpt3()
        };
        let tokens = 4096.0;
        let check = |model: &trainplan_model::Model,
                     sp: bool,
                     etp: Option<u32>,
                     dense: f64,
                     permute: f64| {
            let s = crate::Strategy {
                sequence_parallel: sp,
                etp,
                ..strategy(1, 2, 1)
            };
            let (d, p) = super::elementwise_bytes(model, tokens, &s);
            assert!(
                (d.get() - 2.0 * tokens * dense).abs() < 1e-3,
                "sp {sp}: {}",
                d.get()
            );
            assert!(
                (p.get() - 2.0 * tokens * permute).abs() < 1e-3,
                "sp {sp} etp {etp:?}: {}",
                p.get()
            );
        };
        let dense_sp = 12.0 * (2048.0 + 2.0 * 14336.0 / 2.0);
        check(
            &moe,
            false,
            None,
            12.0 * (4096.0 + 2.0 * 14336.0 / 2.0),
            8.0 * 2.0 * 4096.0,
        );
        check(&moe, true, None, dense_sp, 8.0 * 2.0 * 4096.0);
        check(&moe, true, Some(1), dense_sp, 8.0 * 2.0 * 2048.0);
        let dense = trainplan_model::Model { moe: None, ..moe };
        check(&dense, false, None, 12.0 * (4096.0 + 14336.0 / 2.0), 0.0);
    }

    #[test]
    fn expert_gradients_reduce_over_the_expert_data_parallel_group() {
        use trainplan_hardware::{Collective, Group};
        use trainplan_units::Bytes;
        let mut model = gpt3();
        model.moe = Some(trainplan_model::Moe {
            experts: 8,
            top_k: 2,
            shared_ffn: 0,
            dense_layers: 0,
            dense_ffn: 0,
            layer_freq: 1,
        });
        let (cluster, job) = (a100(64), job(1536));
        let mut s = strategy(64, 1, 1);
        s.ep = 8;
        s.zero = 0;
        s.recompute = trainplan_model::Recompute::Full;
        let t = evaluate(&model, &cluster, &job, &s).unwrap().time;
        let all = s.params_per_gpu(&model);
        let experts = crate::memory::stage_params(&model, &s).experts;
        let dense_group = Group {
            size: 64,
            stride: 1,
        };
        // Ranks holding the same experts sit ep = 8 apart: one per node, one NIC each.
        let expert_group = Group { size: 8, stride: 8 };
        let expected =
            cluster.collective_time(
                Collective::AllReduce,
                Bytes((all - experts) * 4.0),
                dense_group,
            ) + cluster.collective_time(Collective::AllReduce, Bytes(experts * 4.0), expert_group);
        assert!((t.dp_traffic.get() - expected.get()).abs() < 1e-9);
        let as_if_dense =
            cluster.collective_time(Collective::AllReduce, Bytes(all * 4.0), dense_group);
        assert!(t.dp_traffic.get() > 2.0 * as_if_dense.get());
    }

    #[test]
    fn overlapped_all_to_all_hides_behind_another_micro_batch() {
        // 8 experts over ep 8 across 8 nodes (dp 64, tp 1): the all-to-all crosses the NICs.
        let mut model = gpt3();
        model.moe = Some(trainplan_model::Moe {
            experts: 8,
            top_k: 2,
            shared_ffn: 0,
            dense_layers: 0,
            dense_ffn: 0,
            layer_freq: 1,
        });
        let (cluster, job) = (a100(64), job(1536));
        let mut plain = strategy(64, 1, 1);
        plain.ep = 8;
        plain.recompute = trainplan_model::Recompute::Full;
        let overlapped = crate::Strategy {
            ep_overlap: true,
            ..plain
        };
        assert!(overlapped.ep_overlap_active(&job));
        let a = evaluate(&model, &cluster, &job, &plain).unwrap();
        let b = evaluate(&model, &cluster, &job, &overlapped).unwrap();
        let m = f64::from(a.grad_accum);
        let a2a = a.time.ep_comm.get() / m;
        let window = a.time.compute.get() / m;
        // Exposed: what outlasts one micro-batch's compute, plus the penalty on what it hides.
        let penalty = cluster.accelerator.efficiency.overlap_penalty;
        let expected = (a2a - window).max(0.0) + a2a.min(window) * penalty;
        assert!(a2a > 0.0);
        assert!(
            (b.time.ep_comm.get() / m - expected).abs() < 1e-9 * a2a,
            "{} vs {expected}",
            b.time.ep_comm.get() / m
        );
        assert!(b.time.ep_comm < a.time.ep_comm);
        assert_eq!(a.time.compute, b.time.compute);
        assert_eq!(a.memory, b.memory);
        // With one micro-batch per step there is nothing to pair it with.
        let one = crate::testing::job(64);
        assert!(!overlapped.ep_overlap_active(&one));
        assert_eq!(
            evaluate(&model, &cluster, &one, &plain).unwrap().time,
            evaluate(&model, &cluster, &one, &overlapped).unwrap().time
        );
        // A dense layout has no all-to-all to hide.
        let dense = crate::Strategy {
            ep: 1,
            ..overlapped
        };
        let dense_plain = crate::Strategy {
            ep_overlap: false,
            ..dense
        };
        assert_eq!(
            evaluate(&gpt3(), &cluster, &job, &dense).unwrap(),
            evaluate(&gpt3(), &cluster, &job, &dense_plain).unwrap()
        );
    }

    #[test]
    fn whole_experts_keep_the_all_to_all_inside_the_node() {
        use trainplan_hardware::{Collective, Group};
        use trainplan_units::Bytes;
        // Mixtral-like on 64 A100s, tp 4 with sequence parallelism, ep 8.
        let model = trainplan_model::Model {
            hidden: 4096,
            n_heads: 32,
            n_kv_heads: 8,
            ffn: 14336,
            n_layers: 32,
            moe: Some(trainplan_model::Moe {
                experts: 8,
                top_k: 2,
                shared_ffn: 0,
                dense_layers: 0,
                dense_ffn: 0,
                layer_freq: 1,
            }),
            mla: None,
            ..gpt3()
        };
        let (cluster, job) = (a100(64), job(256));
        let split = strategy(16, 4, 1);
        let split = crate::Strategy { ep: 8, ..split };
        let whole = crate::Strategy {
            etp: Some(1),
            ..split
        };
        // Stating etp = tp is the default.
        let same = crate::Strategy {
            etp: Some(4),
            ..split
        };
        let a = evaluate(&model, &cluster, &job, &split).unwrap();
        assert_eq!(a, evaluate(&model, &cluster, &job, &same).unwrap());
        let b = evaluate(&model, &cluster, &job, &whole).unwrap();
        // Split experts: the 8 ranks sharing a tensor-parallel slot sit tp = 4 apart and span
        // four nodes, each dispatching the whole gathered micro-batch. Whole experts: 8
        // neighbours in one node, each dispatching its quarter of the sequence.
        let tokens = 2048.0;
        let routed = |t: f64| Bytes(t * 2.0 * 4096.0 * 2.0);
        let a2a = |t: f64, stride: u32| {
            cluster.collective_time(Collective::AllToAll, routed(t), Group { size: 8, stride })
                * (4.0 * 32.0 * 16.0)
        };
        assert!((a.time.ep_comm.get() - a2a(tokens, 4).get()).abs() < 1e-9 * a.time.ep_comm.get());
        assert!(
            (b.time.ep_comm.get() - a2a(tokens / 4.0, 1).get()).abs() < 1e-9 * b.time.ep_comm.get()
        );
        assert!(b.time.ep_comm.get() < 0.1 * a.time.ep_comm.get());
        // A rank holds its one expert whole instead of a quarter of it: four times the expert
        // weights, but replicated on 8 ranks instead of 2, so ZeRO's optimizer shard is the same.
        let (sa, sb) = (
            crate::memory::stage_params(&model, &split),
            crate::memory::stage_params(&model, &whole),
        );
        assert!((sb.experts - 4.0 * sa.experts).abs() < 1.0);
        assert_eq!((split.expert_dp(), whole.expert_dp()), (2.0, 8.0));
        let rel = (b.memory.optimizer.get() - a.memory.optimizer.get()).abs();
        assert!(rel < 1e-9 * a.memory.optimizer.get());
        assert!(b.memory.weights.get() > a.memory.weights.get());
        // The same FLOPs, so MFU moves only with the step time.
        assert!(b.time.step.get() < a.time.step.get());
    }

    #[test]
    fn expert_tensor_parallelism_is_checked() {
        let mut moe = gpt3();
        moe.moe = Some(trainplan_model::Moe {
            experts: 8,
            top_k: 2,
            shared_ffn: 0,
            dense_layers: 0,
            dense_ffn: 0,
            layer_freq: 1,
        });
        let (cluster, job) = (a100(64), job(256));
        let base = crate::Strategy {
            ep: 8,
            ..strategy(16, 4, 1)
        };
        let reason = |model: &trainplan_model::Model, s: crate::Strategy| {
            evaluate(model, &cluster, &job, &s)
                .err()
                .map(|e| e.reason())
        };
        assert_eq!(
            reason(
                &moe,
                crate::Strategy {
                    etp: Some(3),
                    ..base
                }
            ),
            Some("etp")
        );
        assert_eq!(
            reason(
                &moe,
                crate::Strategy {
                    etp: Some(0),
                    ..base
                }
            ),
            Some("etp")
        );
        let no_sp = crate::Strategy {
            etp: Some(1),
            sequence_parallel: false,
            ..base
        };
        assert_eq!(reason(&moe, no_sp), Some("etp"));
        assert_eq!(
            reason(
                &gpt3(),
                crate::Strategy {
                    etp: Some(1),
                    ep: 1,
                    ..base
                }
            ),
            Some("etp")
        );
        // ep 32 does not divide dp × cp = 16, but whole experts draw on tp × dp × cp = 64 ranks.
        let mut many = moe;
        many.moe = Some(trainplan_model::Moe {
            experts: 64,
            top_k: 2,
            shared_ffn: 0,
            dense_layers: 0,
            dense_ffn: 0,
            layer_freq: 1,
        });
        let wide = crate::Strategy { ep: 32, ..base };
        assert_eq!(reason(&many, wide), Some("ep"));
        assert_eq!(
            reason(
                &many,
                crate::Strategy {
                    etp: Some(1),
                    ..wide
                }
            ),
            None
        );
    }

    #[test]
    fn overlap_without_tensor_parallelism_changes_nothing() {
        let (model, cluster, job) = (gpt3(), a100(1024), job(1536));
        let plain = strategy(64, 1, 16);
        let flagged = crate::Strategy {
            tp_overlap: true,
            ..plain
        };
        let a = evaluate(&model, &cluster, &job, &plain).unwrap();
        let b = evaluate(&model, &cluster, &job, &flagged).unwrap();
        assert_eq!(a.time, b.time);
    }

    #[test]
    fn overlap_without_sequence_parallelism_changes_nothing() {
        // Megatron-Core's --tp-comm-overlap needs --sequence-parallel; without it the flag does
        // nothing, and with it the collectives hide.
        let (model, cluster, job) = (gpt3(), a100(1024), job(1536));
        let plain = crate::Strategy {
            sequence_parallel: false,
            ..strategy(8, 8, 16)
        };
        let flagged = crate::Strategy {
            tp_overlap: true,
            ..plain
        };
        assert!(!flagged.tp_overlap_active());
        let a = evaluate(&model, &cluster, &job, &plain).unwrap();
        let b = evaluate(&model, &cluster, &job, &flagged).unwrap();
        assert_eq!(a.time, b.time);
        let with_sp = crate::Strategy {
            sequence_parallel: true,
            ..flagged
        };
        let c = evaluate(&model, &cluster, &job, &with_sp).unwrap();
        assert!(c.time.tp_comm.get() < a.time.tp_comm.get());
    }

    #[test]
    fn tensor_parallelism_past_the_kv_heads_replicates_them() {
        // StarCoder 15.5B (one KV head) on tp 4 × pp 4 × dp 32, as BigCode trained it: each rank
        // computes Q for 12 heads and K, V for the whole shared head.
        let model = trainplan_model::testing::starcoder_15b();
        let (cluster, job) = (a100(512), crate::testing::job(512));
        let job = crate::Job {
            seq_len: 8192,
            ..job
        };
        let s = crate::Strategy {
            micro_batch: 1,
            ..strategy(32, 4, 4)
        };
        let mqa = evaluate(&model, &cluster, &job, &s).unwrap();
        // The same layout on a model with four KV heads splits them one per rank: the per-rank
        // products, activations and memory are those of the replicated head, and only the MQA
        // model all-reduces the copies' gradients over its four replicas.
        let gqa4 = trainplan_model::Model {
            n_kv_heads: 4,
            ..model.clone()
        };
        let split = evaluate(&gqa4, &cluster, &job, &s).unwrap();
        assert_eq!(mqa.time.compute, split.time.compute);
        assert_eq!(mqa.memory.activations, split.memory.activations);
        // Same per-rank weights too: beyond its quarter of the one head, each MQA rank holds the
        // other 96 columns of K and of V on each of its 10 layers, which is exactly a
        // 4-KV-head model's one-head share.
        let extra = model.kv_replica_params_per_rank(4) * 10.0;
        assert_eq!(extra, 10.0 * 96.0 * (2.0 * 6144.0 + 2.0));
        let gap = (mqa.memory.weights - split.memory.weights).get().abs();
        assert!(gap < 1.0, "{gap}");
        let sync = mqa.time.tp_comm - split.time.tp_comm;
        assert!(
            sync.get() > 0.0 && sync.get() < 0.01 * mqa.time.step.get(),
            "{sync:?}"
        );
        assert!((mqa.time.step - split.time.step - sync).get().abs() < 1e-9);
        // tp 6 neither divides four KV heads nor is a multiple of them.
        let six = crate::Strategy { dp: 21, tp: 6, ..s };
        assert_eq!(
            evaluate(&gqa4, &a100(504), &job, &six).unwrap_err(),
            crate::Infeasible::TpKvHeads {
                tp: 6,
                n_kv_heads: 4
            }
        );
    }

    /// Compute seconds per step of `s`, which must be feasible.
    fn compute_s(
        model: &trainplan_model::Model,
        cluster: &trainplan_hardware::Cluster,
        job: &crate::Job,
        s: &crate::Strategy,
    ) -> f64 {
        evaluate(model, cluster, job, s).unwrap().time.compute.get()
    }

    /// DeepSeek-V3's sequences (4096 tokens, micro-batch 1) at tp 8 × pp 16 × `dp`, experts
    /// spread over `ep` ranks.
    fn deepseek_layout(global_batch: u32, dp: u32, ep: u32) -> (crate::Job, crate::Strategy) {
        let job = crate::Job {
            seq_len: 4096,
            ..crate::testing::job(global_batch)
        };
        let s = crate::Strategy {
            micro_batch: 1,
            ep,
            ..strategy(dp, 8, 16)
        };
        (job, s)
    }

    #[test]
    fn dense_leading_layers_sit_on_the_first_rank() {
        // DeepSeek-V3 (3 dense layers, then 58 MoE) against its all-MoE shapes.
        let v3 = trainplan_model::testing::deepseek_v3();
        let all_moe = trainplan_model::testing::deepseek_v3_moe_layers();
        let dense = v3.dense_twin().unwrap();
        // pp 16: 4 layers a rank; the first holds the 3 dense ones and 1 MoE layer.
        let (job, s) = deepseek_layout(512, 8, 8);
        let sp = crate::memory::stage_params(&v3, &s);
        let moe_sp = crate::memory::stage_params(&all_moe, &s);
        assert_eq!(sp.dense_first, 3.0);
        let dense_layer =
            v3.params().dense_layer / 8.0 + v3.mla_replicated_params() * (1.0 - 1.0 / 8.0);
        assert!((sp.first - (moe_sp.first - 3.0 * (moe_sp.per_layer - dense_layer))).abs() < 1.0);
        assert_eq!(sp.last, moe_sp.last);
        assert_eq!(sp.experts_first, moe_sp.experts / 4.0);
        // The MoE ranks stay the busiest, so the step is the all-MoE model's but for the
        // gradient reductions of fewer weights.
        let cluster = a100(1024);
        let e = evaluate(&v3, &cluster, &job, &s).unwrap();
        let m = evaluate(&all_moe, &cluster, &job, &s).unwrap();
        assert_eq!(e.time.compute, m.time.compute);
        // pp 1: one rank runs all 61 layers, 3 of them dense: each per-micro-batch time is the
        // 58/61 : 3/61 mix of the MoE and the dense layers' (the logits are the same in both).
        let flat = crate::Strategy {
            micro_batch: 1,
            ep: 8,
            zero: 3,
            ..strategy(1024, 1, 1)
        };
        let job = crate::Job {
            global_batch: 1024,
            ..job
        };
        let t = |model: &trainplan_model::Model, s: &crate::Strategy| {
            compute_s(model, &cluster, &job, s)
        };
        // (The dense twin alone has no experts to spread, so it is priced at ep 1.)
        let dense_t = t(&dense, &crate::Strategy { ep: 1, ..flat });
        let mixed = t(&all_moe, &flat) * 58.0 / 61.0 + dense_t * 3.0 / 61.0;
        let t = |model: &trainplan_model::Model| t(model, &flat);
        assert!(
            (t(&v3) - mixed).abs() < 1e-9 * mixed,
            "{} vs {mixed}",
            t(&v3)
        );
    }

    #[test]
    fn interleaved_dense_layers_sit_on_every_rank() {
        // Llama 4 Maverick (every second layer MoE) against its all-MoE twin, tp 8 × pp 4 ×
        // dp 8, ep 8: 12 layers a rank, 6 of them dense on every rank.
        let mav = trainplan_model::testing::llama4_maverick();
        let moe = mav.moe.unwrap();
        let all_moe = trainplan_model::Model {
            moe: Some(trainplan_model::Moe {
                layer_freq: 1,
                ..moe
            }),
            ..mav.clone()
        };
        let dense = mav.dense_twin().unwrap();
        let s = crate::Strategy {
            micro_batch: 1,
            ep: 8,
            ..strategy(8, 8, 4)
        };
        let job = crate::Job {
            seq_len: 8192,
            ..crate::testing::job(256)
        };
        let sp = crate::memory::stage_params(&mav, &s);
        let moe_sp = crate::memory::stage_params(&all_moe, &s);
        assert_eq!((sp.dense_first, sp.dense_last), (6.0, 6.0));
        assert_eq!(sp.experts, moe_sp.experts / 2.0);
        assert_eq!(sp.experts_first, moe_sp.experts_first / 2.0);
        let dense_layer = mav.params().dense_layer / 8.0;
        let swap = 6.0 * (moe_sp.per_layer - dense_layer);
        assert!((sp.first - (moe_sp.first - swap)).abs() < 1.0);
        assert!((sp.last - (moe_sp.last - swap)).abs() < 1.0);
        // Over pp 1 the four ranks' weights add up to the model's, an eighth of it per tp rank
        // (ep 1, experts split over etp = tp).
        let flat = crate::Strategy { ep: 1, pp: 1, ..s };
        let whole = crate::memory::stage_params(&mav, &flat).first * 8.0;
        let total = mav.params().total;
        assert!((whole - total).abs() < 1e-9 * total, "{whole} vs {total}");
        // Each rank's micro-batch is the even mix of the two kinds of layer (the logits and
        // sends apart, the same in all three models).
        let cluster = a100(256);
        let t = |model: &trainplan_model::Model, s: &crate::Strategy| {
            compute_s(model, &cluster, &job, s)
        };
        let half = (t(&all_moe, &s) + t(&dense, &crate::Strategy { ep: 1, ..s })) / 2.0;
        assert!(
            (t(&mav, &s) - half).abs() < 1e-9 * half,
            "{} vs {half}",
            t(&mav, &s)
        );
        // Memory: fewer expert weights; the dense layers keep their own FFN's activations on
        // the busiest rank, so a wider dense FFN keeps more.
        let e = evaluate(&mav, &cluster, &job, &s).unwrap();
        let m = evaluate(&all_moe, &cluster, &job, &s).unwrap();
        assert!(e.memory.weights < m.memory.weights);
        let wider = trainplan_model::Model {
            moe: Some(trainplan_model::Moe {
                dense_ffn: 32768,
                ..moe
            }),
            ..mav.clone()
        };
        let w = evaluate(&wider, &cluster, &job, &s).unwrap();
        assert!(w.memory.activations > e.memory.activations);
    }

    #[test]
    fn latent_attention_keeps_its_down_projections_whole_on_every_rank() {
        // DeepSeek-V3's layers (all MoE) on tp 8 × pp 16 × dp 16 with ep 16: each rank holds
        // the down projections whole and the tp ranks all-reduce their gradients once per step.
        let model = trainplan_model::testing::deepseek_v3_moe_layers();
        let cluster = a100(2048);
        let (job, s) = deepseek_layout(2048, 16, 16);
        let e = evaluate(&model, &cluster, &job, &s).unwrap();
        let layers = f64::from(s.max_layers_per_rank(&model));
        // Per rank: the replicated down projections beyond their 1/8 share.
        let split = crate::Strategy {
            tp: 1,
            dp: 128,
            ..s
        };
        let extra = crate::memory::stage_params(&model, &s).first
            - crate::memory::stage_params(&model, &split).first / 8.0;
        let expected = model.mla_replicated_params() * (1.0 - 1.0 / 8.0) * layers;
        // Everything else, experts (over etp = tp) and the embedding included, is an eighth.
        assert!(
            (extra - expected).abs() < 1e-6 * expected,
            "{extra} vs {expected}"
        );
        // The gradient sync of those weights is the difference from the plain-attention twin,
        // whose collectives are the same h-wide tensors.
        let plain = trainplan_model::Model {
            mla: None,
            ..model.clone()
        };
        let twin = evaluate(&plain, &cluster, &job, &s).unwrap();
        let sync = cluster.collective_time(
            trainplan_hardware::Collective::AllReduce,
            trainplan_units::Bytes(model.mla_replicated_params() * layers * job.grad_bytes),
            trainplan_hardware::Group { size: 8, stride: 1 },
        );
        assert!(
            (e.time.tp_comm - twin.time.tp_comm - sync).get().abs() < 1e-12,
            "{:?} {:?} {sync:?}",
            e.time.tp_comm,
            twin.time.tp_comm
        );
    }

    #[test]
    fn interleaved_pipeline_sends_hide_behind_the_next_chunk() {
        // GPT-3 175B on tp 8 × pp 8: plain 1F1B waits for each stage's two sends per
        // micro-batch; interleaved over 2 chunks a rank sends twice as often, but posts each
        // transfer before computing the next chunk (Megatron-LM's overlap_p2p_comm), so only the
        // overlap penalty of them shows while they are shorter than the compute.
        let (model, cluster, job) = (gpt3(), a100(512), job(1536));
        let plain = strategy(8, 8, 8);
        let interleaved = crate::Strategy { vpp: 2, ..plain };
        let a = evaluate(&model, &cluster, &job, &plain).unwrap().time;
        let b = evaluate(&model, &cluster, &job, &interleaved).unwrap().time;
        assert!(a.pp_comm.get() > 0.0 && a.pp_comm.get() < a.compute.get());
        let penalty = cluster.accelerator.efficiency.overlap_penalty;
        let expected = 2.0 * a.pp_comm.get() * penalty;
        assert!(
            (b.pp_comm.get() - expected).abs() < 1e-9 * expected,
            "{} vs {expected}",
            b.pp_comm.get()
        );
    }

    #[test]
    fn shared_experts_run_every_token_as_a_dense_ffn_split_over_tp() {
        // Qwen1.5-MoE-like: 60 experts of 1408, top 4, and a 5632-wide shared expert, on tp 2.
        // Beside the routed experts, each micro-batch runs the shared expert's two SwiGLU
        // products on all its tokens (forward, and twice that in backward), split over tp, and
        // the element-wise traffic of its width.
        let routed = trainplan_model::Model {
            hidden: 2048,
            n_heads: 16,
            n_kv_heads: 16,
            head_dim: 128,
            ffn: 1408,
            ffn_act: trainplan_model::FfnActivation::Swiglu,
            linear_bias: false,
            dropout: false,
            n_layers: 24,
            moe: Some(trainplan_model::Moe {
                experts: 60,
                top_k: 4,
                shared_ffn: 0,
                dense_layers: 0,
                dense_ffn: 0,
                layer_freq: 1,
            }),
            mla: None,
            ..gpt3()
        };
        let shared = trainplan_model::Model {
            moe: Some(trainplan_model::Moe {
                experts: 60,
                top_k: 4,
                shared_ffn: 5632,
                dense_layers: 0,
                dense_ffn: 0,
                layer_freq: 1,
            }),
            mla: None,
            ..routed.clone()
        };
        let (cluster, job) = (a100(64), job(512));
        let s = crate::Strategy {
            micro_batch: 2,
            recompute: trainplan_model::Recompute::None,
            ..strategy(32, 2, 1)
        };
        let a = evaluate(&routed, &cluster, &job, &s).unwrap();
        let b = evaluate(&shared, &cluster, &job, &s).unwrap();
        let eff = &cluster.accelerator.efficiency;
        let rate = cluster.peak_or_bf16(job.precision.matmul_dtype()) * eff.matmul_fraction;
        let (tokens, h, fs, tp) = (2.0 * 2048.0, 2048.0, 5632.0, 2.0);
        let products = super::gemm(tokens, 2.0 * fs / tp, h, rate, eff.matmul_half_dim)
            + super::gemm(tokens, h, fs / tp, rate, eff.matmul_half_dim);
        // 12 element-wise elements per FFN unit per token, forward and backward, at HBM speed.
        let hbm = cluster.accelerator.hbm_bandwidth * eff.hbm_fraction;
        let elementwise = trainplan_units::Bytes(2.0 * tokens * 12.0 * fs / tp) / hbm;
        let per_mb = (products * 3.0 + elementwise) * 24.0;
        let m = f64::from(a.grad_accum);
        let delta = b.time.compute - a.time.compute;
        assert!(
            (delta.get() - per_mb.get() * m).abs() < 1e-9 * delta.get(),
            "{delta:?} vs {:?}",
            per_mb * m
        );
        // Its weights are dense: 3 × 2048 × 5632 per layer, halved by tp, on every rank.
        let extra = b.memory.weights.get() - a.memory.weights.get();
        assert!(
            (extra - 2.0 * 24.0 * 3.0 * h * fs / tp).abs() < 1.0,
            "{extra}"
        );
        // tp must divide it like a dense FFN.
        let odd = trainplan_model::Model {
            moe: Some(trainplan_model::Moe {
                experts: 60,
                top_k: 4,
                shared_ffn: 5633,
                dense_layers: 0,
                dense_ffn: 0,
                layer_freq: 1,
            }),
            mla: None,
            ..routed
        };
        assert_eq!(
            evaluate(&odd, &cluster, &job, &s).unwrap_err(),
            crate::Infeasible::TpFfn { tp: 2, ffn: 5633 }
        );
    }
}
