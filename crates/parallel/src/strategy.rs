//! The layout of one training run and the job it trains.

use crate::Infeasible;
use trainplan_hardware::{Cluster, Dtype, Group};
use trainplan_model::{CrossEntropy, Model, Recompute};

/// Training precision: 16-bit weights and activations with fp32 master weights and Adam moments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    /// bf16 mixed precision.
    Bf16,
    /// fp16 mixed precision (with loss scaling).
    Fp16,
    /// fp8 matrix products in the linear layers, bf16 elsewhere (Transformer Engine, torchao).
    Fp8,
}

impl Precision {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
            Precision::Fp8 => "fp8",
        }
    }

    /// Tensor-core type of the linear layers.
    #[inline]
    pub fn matmul_dtype(self) -> Dtype {
        match self {
            Precision::Bf16 => Dtype::Bf16,
            Precision::Fp16 => Dtype::Fp16,
            Precision::Fp8 => Dtype::Fp8,
        }
    }

    /// Tensor-core type of everything that is not a linear layer (attention, norms).
    #[inline]
    pub fn other_dtype(self) -> Dtype {
        match self {
            Precision::Fp16 => Dtype::Fp16,
            Precision::Bf16 | Precision::Fp8 => Dtype::Bf16,
        }
    }
}

/// The implementation of mixed-precision Adam that holds the model states below ZeRO-3. They
/// differ only in how gradients are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Optimizer {
    /// DeepSpeed's ZeRO-1/2 and BF16 optimizers: autograd's 16-bit gradients beside an fp32
    /// accumulator, and a gradient-reduction bucket (BLOOM's measured memory follows it).
    #[default]
    Deepspeed,
    /// Megatron-Core's distributed optimizer: gradients accumulate straight into one main-grad
    /// buffer, reduce-scattered in place (6 + 12/d bytes per parameter for bf16 with fp32
    /// gradients, Megatron-LM `docs/api-guide/dist_optimizer.md`).
    Megatron,
}

impl Optimizer {
    /// Every implementation, in a fixed order.
    pub const ALL: [Optimizer; 2] = [Optimizer::Deepspeed, Optimizer::Megatron];

    /// The layout to assume when a file does not say: Megatron's for fp8, which is trained mostly
    /// with Transformer Engine under Megatron-Core (NeMo, Megatron-LM) or with FSDP (ZeRO-2/3,
    /// where both layouts count alike), DeepSpeed's otherwise.
    pub fn default_for(precision: Precision) -> Self {
        match precision {
            Precision::Fp8 => Optimizer::Megatron,
            Precision::Bf16 | Precision::Fp16 => Optimizer::Deepspeed,
        }
    }

    /// The layout to assume when a file states its framework but not the optimizer: Megatron's
    /// own distributed optimizer, DeepSpeed's ZeRO optimizers, and for PyTorch (or no
    /// framework) [`Optimizer::default_for`] the precision.
    pub fn default_for_framework(framework: Option<Framework>, precision: Precision) -> Self {
        match framework {
            Some(Framework::Megatron) => Optimizer::Megatron,
            Some(Framework::Deepspeed) => Optimizer::Deepspeed,
            Some(Framework::Pytorch) | None => Self::default_for(precision),
        }
    }

    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Optimizer::Deepspeed => "deepspeed",
            Optimizer::Megatron => "megatron",
        }
    }

    /// The implementation named `name` in a file, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// How expert-parallel ranks exchange tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum EpDispatcher {
    /// A plain all-to-all: each token travels once per expert it is routed to (NCCL all-to-all,
    /// Megatron-Core's `alltoall` dispatcher).
    #[default]
    AllToAll,
    /// Each token crosses the network once per destination node and is forwarded to its experts
    /// there over the scale-up links (DeepSeek-AI 2024, "DeepSeek-V3 Technical Report", section
    /// 3.2.2; the DeepEP library, Megatron-Core's `flex` dispatcher with `--moe-enable-deepep`).
    DeepEp,
}

impl EpDispatcher {
    /// Every dispatcher, in a fixed order.
    pub const ALL: [EpDispatcher; 2] = [EpDispatcher::AllToAll, EpDispatcher::DeepEp];

    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            EpDispatcher::AllToAll => "alltoall",
            EpDispatcher::DeepEp => "deepep",
        }
    }

    /// The dispatcher named `name` in a file, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

/// The training framework running the job: the conventions it fixes that a layout does not
/// state. Unstated (`None` in [`Job::framework`]), trainplan keeps its framework-neutral rules:
/// the stage-output rule follows `optimizer`, interleaving and every ZeRO stage are allowed, and
/// full recomputation reruns the whole layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Framework {
    /// Megatron-LM / Megatron-Core and NeMo: stage outputs freed once sent, interleaving, its own
    /// `CheckpointFunction` rerunning each recomputed layer whole.
    Megatron,
    /// DeepSpeed, alone or under Megatron-DeepSpeed: its `PipelineEngine` runs plain 1F1B and
    /// keeps stage outputs, takes ZeRO-0/1 only under a pipeline, and its activation
    /// checkpointing reruns each layer whole.
    Deepspeed,
    /// PyTorch-native (torchtitan, FSDP, llm-foundry): pipelining keeps stage outputs, and
    /// non-reentrant `torch.utils.checkpoint` stops recomputing once the last saved tensor is back.
    Pytorch,
}

impl Framework {
    /// Every framework, in a fixed order.
    pub const ALL: [Framework; 3] = [
        Framework::Megatron,
        Framework::Deepspeed,
        Framework::Pytorch,
    ];

    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::Megatron => "megatron",
            Framework::Deepspeed => "deepspeed",
            Framework::Pytorch => "pytorch",
        }
    }

    /// The framework named `name` in a file, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The framework a layout implies when a job names none: PyTorch for FSDP (ZeRO-3, or
    /// ZeRO-2 under a pipeline); see [`Strategy::framework`].
    #[inline]
    pub fn implied_by(zero: u8, pp: u32) -> Option<Self> {
        (zero >= 3 || (zero == 2 && pp > 1)).then_some(Framework::Pytorch)
    }
}

/// What is trained: sequence length, batch, tokens and precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    /// Tokens per sequence.
    pub seq_len: u32,
    /// Sequences per optimizer step.
    pub global_batch: u32,
    /// Tokens to train on in total.
    pub tokens: f64,
    /// Mixed-precision mode.
    pub precision: Precision,
    /// Bytes per gradient element kept and reduced (4 = fp32 accumulation, Megatron's default for
    /// bf16 and FSDP's fp32 reduce; 2 = 16-bit gradients).
    pub grad_bytes: f64,
    /// The implementation holding the model states (how gradients are kept below ZeRO-3).
    pub optimizer: Optimizer,
    /// The framework running the job, when stated (see [`Framework`]).
    pub framework: Option<Framework>,
    /// How the loss is computed (the logits' memory on the last stage), when stated; see
    /// [`Strategy::cross_entropy`].
    pub cross_entropy: Option<CrossEntropy>,
}

impl Job {
    /// The framework whose conventions price a layout of ZeRO stage `zero` on `pp` pipeline
    /// stages: the job's, or the one the layout implies ([`Framework::implied_by`]).
    #[inline]
    pub fn framework_for(&self, zero: u8, pp: u32) -> Option<Framework> {
        self.framework.or_else(|| Framework::implied_by(zero, pp))
    }
}

/// One parallel layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Strategy {
    /// Data-parallel degree (the ZeRO/FSDP sharding group).
    pub dp: u32,
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Pipeline-parallel degree.
    pub pp: u32,
    /// Context-parallel degree (the sequence split across ranks).
    pub cp: u32,
    /// Expert-parallel degree (MoE only): the ranks a layer's experts are spread over, carved
    /// out of the tp × cp × dp ranks together with the expert tensor parallelism.
    pub ep: u32,
    /// Expert tensor parallelism (MoE only): how many ways each expert's matrices are split.
    /// `None` splits them like the dense layers (tp ways, Megatron's default); `Some(1)` keeps
    /// experts whole and lets ep span the tensor-parallel ranks too (Megatron-Core's MoE
    /// parallel folding, Liu et al. 2025, "MoE Parallel Folding", arXiv:2504.14960). Must divide tp.
    pub etp: Option<u32>,
    /// Virtual pipeline stages (model chunks) per pipeline rank; 1 = plain 1F1B.
    pub vpp: u32,
    /// Micro-batch in sequences.
    pub micro_batch: u32,
    /// ZeRO stage: 0 none, 1 optimizer states, 2 + gradients, 3 + parameters (FSDP full shard).
    pub zero: u8,
    /// Activation recomputation.
    pub recompute: Recompute,
    /// Megatron sequence parallelism (only meaningful with tp > 1).
    pub sequence_parallel: bool,
    /// Fused attention that never stores the s×s scores.
    pub flash_attention: bool,
    /// Overlap tensor-parallel collectives with the matrix products next to them (Megatron /
    /// Transformer Engine `--tp-comm-overlap`, PyTorch async TP); only matters with tp > 1.
    pub tp_overlap: bool,
    /// Overlap the expert all-to-all of one micro-batch with the computation of another
    /// (DeepSeek-V3's DualPipe, DeepSeek-AI 2024, arXiv:2412.19437, section 3.2.1; Megatron-Core's
    /// `--overlap-moe-expert-parallel-comm`); only matters for MoE with ep > 1.
    pub ep_overlap: bool,
    /// Overlap the data-parallel gradient reduction below ZeRO-3 with the backward pass, bucket
    /// by bucket (PyTorch DDP's gradient buckets, Li et al. 2020, "PyTorch Distributed", section
    /// 3.2.3; Megatron-Core's `--overlap-grad-reduce`). Off, the reduction runs once the last
    /// micro-batch's backward is done, as Megatron-LM's local DDP did before Megatron-Core. ZeRO-3
    /// always overlaps its gathers and reduce-scatters (FSDP's prefetching).
    pub dp_overlap: bool,
    /// How the expert all-to-all moves tokens; only matters for MoE with ep > 1 across nodes.
    pub ep_dispatcher: EpDispatcher,
}

impl Default for Strategy {
    /// One GPU, one sequence per micro-batch, no sharding or recomputation, fused attention:
    /// the base that layouts override field by field.
    fn default() -> Self {
        Self {
            dp: 1,
            tp: 1,
            pp: 1,
            cp: 1,
            ep: 1,
            etp: None,
            vpp: 1,
            micro_batch: 1,
            zero: 0,
            recompute: Recompute::None,
            sequence_parallel: false,
            flash_attention: true,
            tp_overlap: false,
            ep_overlap: false,
            dp_overlap: true,
            ep_dispatcher: EpDispatcher::AllToAll,
        }
    }
}

impl Strategy {
    /// Micro-batches per optimizer step on each pipeline: `global_batch / (dp · micro_batch)`.
    #[inline]
    pub fn micro_batches(&self, job: &Job) -> u32 {
        job.global_batch / (self.dp.max(1) * self.micro_batch.max(1))
    }

    /// Checks every rule that does not need the cost model.
    pub fn check(&self, model: &Model, cluster: &Cluster, job: &Job) -> Result<(), Infeasible> {
        for (field, v) in [
            ("dp", self.dp),
            ("tp", self.tp),
            ("pp", self.pp),
            ("cp", self.cp),
            ("ep", self.ep),
            ("vpp", self.vpp),
            ("micro_batch", self.micro_batch),
        ] {
            if v == 0 {
                return Err(Infeasible::ZeroDegree { field });
            }
        }
        if self.zero > 3 {
            return Err(Infeasible::ZeroStage { zero: self.zero });
        }
        let product =
            u64::from(self.dp) * u64::from(self.tp) * u64::from(self.pp) * u64::from(self.cp);
        if product != u64::from(cluster.n_gpus) {
            return Err(Infeasible::GpuCount {
                dp: self.dp,
                tp: self.tp,
                pp: self.pp,
                cp: self.cp,
                product,
                n_gpus: cluster.n_gpus,
            });
        }
        if model.n_heads % self.tp != 0 {
            return Err(Infeasible::TpHeads {
                tp: self.tp,
                n_heads: model.n_heads,
            });
        }
        // Megatron splits the key/value heads over tp as well (it divides num_query_groups by
        // tp); past them, each KV head is replicated over the tp/kv ranks whose query heads share
        // it (BigCode's Megatron-LM multi-query attention), which needs tp to be a multiple.
        if !kv_heads_split_or_replicate(model.n_kv_heads, self.tp) {
            return Err(Infeasible::TpKvHeads {
                tp: self.tp,
                n_kv_heads: model.n_kv_heads,
            });
        }
        if model.ffn % self.tp != 0 {
            return Err(Infeasible::TpFfn {
                tp: self.tp,
                ffn: model.ffn,
            });
        }
        // Shared experts and dense layers split over tp like a dense FFN.
        if let Some(width) = model.moe.and_then(|m| {
            [
                m.shared_ffn,
                if m.has_dense_layers() { m.dense_ffn } else { 0 },
            ]
            .into_iter()
            .find(|&f| f % self.tp != 0)
        }) {
            return Err(Infeasible::TpFfn {
                tp: self.tp,
                ffn: width,
            });
        }
        // Every rank needs a layer; model chunks may outnumber the layers, the spare ones empty
        // (Megatron-Core's `--pipeline-model-parallel-layout`, e.g. Qwen3-235B's 94 layers on
        // pp 32 × vpp 3 in NVIDIA's Megatron-MoE-ModelZoo).
        if self.pp > model.n_layers {
            return Err(Infeasible::TooFewLayers {
                pp: self.pp,
                n_layers: model.n_layers,
            });
        }
        let per_step = u64::from(self.dp) * u64::from(self.micro_batch);
        if u64::from(job.global_batch) % per_step != 0 || u64::from(job.global_batch) < per_step {
            return Err(Infeasible::Batch {
                global_batch: job.global_batch,
                dp: self.dp,
                micro_batch: self.micro_batch,
            });
        }
        // DeepSpeed's pipeline engine schedules plain 1F1B (`runtime/pipe/schedule.py`,
        // `TrainSchedule`) and asserts ZeRO stage < 2 (`runtime/pipe/engine.py`).
        if job.framework == Some(Framework::Deepspeed) && self.pp > 1 {
            if self.vpp > 1 {
                return Err(Infeasible::FrameworkInterleaving {
                    framework: "deepspeed",
                    vpp: self.vpp,
                });
            }
            if self.zero >= 2 {
                return Err(Infeasible::FrameworkZero {
                    framework: "deepspeed",
                    zero: self.zero,
                });
            }
        }
        let m = self.micro_batches(job);
        if self.vpp > 1 && (self.pp == 1 || m % self.pp != 0) {
            return Err(Infeasible::Interleaving {
                vpp: self.vpp,
                pp: self.pp,
                micro_batches: m,
            });
        }
        if job.seq_len % self.cp != 0 {
            return Err(Infeasible::CpSeq {
                cp: self.cp,
                seq_len: job.seq_len,
            });
        }
        let experts = model.moe.map_or(0, |m| m.experts);
        if self.ep > 1 && experts == 0 {
            return Err(Infeasible::EpDense { ep: self.ep });
        }
        if let Some(etp) = self.etp {
            if experts == 0 && etp != self.tp {
                return Err(Infeasible::EtpDense { etp, tp: self.tp });
            }
            if etp == 0 || self.tp % etp != 0 {
                return Err(Infeasible::Etp { etp, tp: self.tp });
            }
            // Experts split fewer ways than the dense layers take their tokens from the
            // sequence shard, which only sequence parallelism provides (Megatron-Core requires
            // --sequence-parallel for MoE with tp > 1).
            if etp < self.tp && !self.sp_active() {
                return Err(Infeasible::EtpNeedsSp { etp, tp: self.tp });
            }
        }
        // Expert ranks: etp innermost, then ep, then the expert data-parallel replicas; together
        // they tile the tp × cp × dp ranks of a pipeline stage (Liu et al. 2025, "MoE Parallel Folding").
        let etp = u64::from(self.expert_tp());
        let ranks = u64::from(self.tp) * u64::from(self.cp) * u64::from(self.dp);
        if self.ep > 1 && (experts % self.ep != 0 || ranks % (u64::from(self.ep) * etp) != 0) {
            return Err(Infeasible::Ep {
                ep: self.ep,
                experts,
                groups: (ranks / etp.max(1)) as u32,
            });
        }
        if job.precision == Precision::Fp8 && cluster.accelerator.fp8_peak.is_none() {
            return Err(Infeasible::NoFp8);
        }
        if model.positions == trainplan_model::Positions::Learned && job.seq_len > model.max_seq_len
        {
            return Err(Infeasible::SeqLen {
                seq_len: job.seq_len,
                max_seq_len: model.max_seq_len,
            });
        }
        Ok(())
    }

    /// Layers held by the most loaded pipeline rank (all its virtual chunks), ceil(L/pp).
    ///
    /// Layers that do not divide into pp × vpp model chunks leave some chunks one layer short
    /// (Llama 3's 126 layers on 16 stages, Dubey et al. 2024, section 3.3.2; Megatron-Core's
    /// uneven first and last stages). Spreading the L mod (pp·vpp) long chunks over the ranks
    /// gives the busiest vpp·floor(L/(pp·vpp)) + ceil((L mod (pp·vpp))/pp) layers, which is
    /// ceil(L/pp) whatever vpp is: 16 for 126 layers on pp 8, 9 for 65.
    #[inline]
    pub fn max_layers_per_rank(&self, model: &Model) -> u32 {
        model.n_layers.div_ceil(self.pp.max(1))
    }

    /// Layers in the longest model chunk, ceil(L/(pp·vpp)): the unit of the pipeline's fill and
    /// drain.
    #[inline]
    pub fn max_layers_per_chunk(&self, model: &Model) -> u32 {
        let chunks = u64::from(self.pp.max(1)) * u64::from(self.vpp.max(1));
        // At most n_layers, so the narrowing never truncates.
        u64::from(model.n_layers).div_ceil(chunks) as u32
    }

    /// Pipeline fill and drain in micro-batch times of the busiest rank: p-1 passes of the longest
    /// model chunk, (p-1)/v when the layers divide evenly (Narayanan et al. 2021, section 2.2.2).
    #[inline]
    pub fn bubble_micro_batches(&self, model: &Model) -> f64 {
        (f64::from(self.pp) - 1.0) * f64::from(self.max_layers_per_chunk(model))
            / f64::from(self.max_layers_per_rank(model).max(1))
    }

    /// Whether gradients are reduced through DeepSpeed ZeRO-1/2's flat bucket: stage 1 or 2 with
    /// a data-parallel peer (Megatron's distributed optimizer, ZeRO-1, reduce-scatters its buffer
    /// in place; gradient-sharding stages are counted the DeepSpeed way).
    #[inline]
    pub fn has_gradient_bucket(&self, job: &Job) -> bool {
        let megatron_in_place = job.optimizer == Optimizer::Megatron && self.zero == 1;
        matches!(self.zero, 1 | 2)
            && u64::from(self.dp) * u64::from(self.cp) > 1
            && !megatron_in_place
            && !self.fsdp_with_pipeline()
    }

    /// Whether gradients live in Megatron's single main-grad buffer: its distributed optimizer
    /// (ZeRO-0/1) outside fp16, whose 16-bit main grads are copied to fp32 for the update as
    /// DeepSpeed's are (4 + 16/d bytes); gradient-sharding stages count the DeepSpeed way.
    #[inline]
    pub fn megatron_main_grads(&self, job: &Job) -> bool {
        job.optimizer == Optimizer::Megatron && job.precision != Precision::Fp16 && self.zero <= 1
    }

    /// Whether each pipeline stage keeps its forward outputs until their backward: DeepSpeed's
    /// `PipelineEngine` (`pipe_buffers['outputs']`) and PyTorch's pipelining (`fwd_cache`) do;
    /// Megatron-LM frees the data once sent (`deallocate_pipeline_outputs`, set by its
    /// training loop). Without a stated or implied framework ([`Strategy::framework`]),
    /// `optimizer = "megatron"` stands for Megatron-LM's loop here too.
    #[inline]
    pub fn keeps_stage_outputs(&self, job: &Job) -> bool {
        self.pp > 1
            && match self.framework(job) {
                Some(f) => f != Framework::Megatron,
                None => job.optimizer != Optimizer::Megatron,
            }
    }

    /// The framework whose conventions price this layout: the job's, or, when the job does not
    /// say, PyTorch's for an FSDP layout (ZeRO-3, or ZeRO-2 under a pipeline, which only
    /// PyTorch's pipelining pairs with sharded gradients): every FSDP run in the public runs is
    /// PyTorch's (llm-foundry, torchtitan), Megatron-LM had no ZeRO-3, and DeepSpeed's pipeline
    /// refuses ZeRO-2/3. A DeepSpeed ZeRO-3 run states `framework = "deepspeed"`.
    #[inline]
    pub fn framework(&self, job: &Job) -> Option<Framework> {
        job.framework_for(self.zero, self.pp)
    }

    /// The loss implementation priced: the job's, or its framework's. PyTorch-native stacks run
    /// a fused or compiled loss (llm-foundry's flash-attn cross entropy; torchtitan's compiled
    /// loss since April 2025, pytorch/torchtitan#1033); Megatron, DeepSpeed's Megatron fork and
    /// framework-neutral jobs Megatron's vocab-parallel cross entropy.
    #[inline]
    pub fn cross_entropy(&self, job: &Job) -> CrossEntropy {
        job.cross_entropy.unwrap_or(match self.framework(job) {
            Some(Framework::Pytorch) => CrossEntropy::Fused,
            _ => CrossEntropy::VocabParallel,
        })
    }

    /// Whether attention runs Transformer Engine's fused kernel (cuDNN on Hopper and later, at
    /// the accelerator's `te_attention_speedup` over FlashAttention-2): Megatron-Core and NeMo
    /// route attention through TE's `DotProductAttention`; PyTorch (SDPA) and DeepSpeed's
    /// Megatron fork (the flash-attn package) run FlashAttention-2. An unstated framework
    /// outside FSDP is read as Megatron's, as for the tensor-parallel overlap.
    #[inline]
    pub fn te_attention(&self, job: &Job) -> bool {
        self.flash_attention
            && !matches!(
                self.framework(job),
                Some(Framework::Pytorch | Framework::Deepspeed)
            )
    }

    /// Whether selective recomputation is PyTorch's op-level selective checkpointing (torchtitan's
    /// default `selective_ac_option = "op"`): it saves the fused attention and every other
    /// product's output and reruns the rest, where Megatron's selective recomputation
    /// (Korthikanti et al. 2022, section 4.1) reruns only the attention scores.
    #[inline]
    pub fn op_level_selective(&self, job: &Job) -> bool {
        self.framework(job) == Some(Framework::Pytorch) && self.recompute == Recompute::Selective
    }

    /// Whether full recomputation stops early, before the layer's last product: PyTorch's
    /// non-reentrant `torch.utils.checkpoint` (the default early stop,
    /// `torch/utils/checkpoint.py`, `set_checkpoint_early_stop`) stops once every tensor the
    /// backward saved is back; the FFN down product saves only its input, so it is not rerun.
    /// Megatron's and DeepSpeed's checkpoint functions rerun the layer's forward whole.
    #[inline]
    pub fn recompute_stops_early(&self, job: &Job) -> bool {
        self.framework(job) == Some(Framework::Pytorch)
            && self.effective_recompute() == Recompute::Full
    }

    /// Whether data-parallel reductions hide behind backward compute: always from ZeRO-3 on,
    /// below it when the layout overlaps them (`dp_overlap`) and the framework can. DeepSpeed below ZeRO-3
    /// reduces on the compute stream: `overlap_comm` is off by default (DeepSpeed
    /// `docs/_pages/config-json.md`, zero_optimization; on by default for stage 3), and its
    /// pipeline engine reduces once every micro-batch's backward is done (`runtime/pipe/
    /// schedule.py`, TrainSchedule: ReduceGrads, then OptimizerStep).
    #[inline]
    pub fn dp_comm_overlaps(&self, job: &Job) -> bool {
        self.zero >= 3 || (self.dp_overlap && self.framework(job) != Some(Framework::Deepspeed))
    }

    /// ZeRO-2 under a pipeline is FSDP with parameters kept gathered between forward and
    /// backward (torchtitan's FSDP2 + PP): DeepSpeed refuses ZeRO-2 with its pipeline and
    /// Megatron has no ZeRO-2. PyTorch's pipeline schedules then reduce gradients once per step.
    #[inline]
    pub fn fsdp_with_pipeline(&self) -> bool {
        self.zero == 2 && self.pp > 1
    }

    /// The recomputation that actually happens: selective recomputation recomputes the attention
    /// scores, which a fused attention kernel never stores, so with one it is no recomputation.
    #[inline]
    pub fn effective_recompute(&self) -> Recompute {
        if self.flash_attention && self.recompute == Recompute::Selective {
            Recompute::None
        } else {
            self.recompute
        }
    }

    /// Parameters held by one GPU of the most loaded pipeline stage (after tp, pp and ep; before
    /// any ZeRO sharding).
    pub fn params_per_gpu(&self, model: &Model) -> f64 {
        let p = crate::memory::stage_params(model, self);
        p.first.max(p.last)
    }

    /// Ways each expert's matrices are split: `etp`, or tp when unset.
    #[inline]
    pub fn expert_tp(&self) -> u32 {
        self.etp.unwrap_or(self.tp)
    }

    /// The ranks one layer's experts are spread over: ep of them, etp apart, since expert ranks
    /// are placed etp innermost, then ep (Liu et al. 2025, "MoE Parallel Folding").
    #[inline]
    pub fn expert_parallel_group(&self) -> Group {
        Group {
            size: self.ep,
            stride: self.expert_tp(),
        }
    }

    /// Expert data-parallel degree: the replicas of one expert, over which ZeRO shards its
    /// states, tp·cp·dp / (etp·ep) (Liu et al. 2025, "MoE Parallel Folding").
    #[inline]
    pub fn expert_dp(&self) -> f64 {
        (f64::from(self.tp) * f64::from(self.cp) * f64::from(self.dp)
            / (f64::from(self.expert_tp()) * f64::from(self.ep)))
        .max(1.0)
    }

    /// Sequence parallelism in effect (it needs tp > 1).
    #[inline]
    pub fn sp_active(&self) -> bool {
        self.sequence_parallel && self.tp > 1
    }

    /// Tensor-parallel collectives overlapped with the products in effect: it needs tp > 1 and
    /// sequence parallelism (Megatron-Core's --tp-comm-overlap requires --sequence-parallel, and
    /// PyTorch's async TP decomposes the same all-gather and reduce-scatter).
    #[inline]
    pub fn tp_overlap_active(&self) -> bool {
        self.tp_overlap && self.sp_active()
    }

    /// Expert all-to-alls overlapped with another micro-batch's computation in effect: it needs
    /// expert parallelism (ep > 1, which only an MoE model passes `check` with) and a second
    /// micro-batch to pair with.
    #[inline]
    pub fn ep_overlap_active(&self, job: &Job) -> bool {
        self.ep_overlap && self.ep > 1 && self.micro_batches(job) >= 2
    }
}

/// Whether `tp` ranks can hold `kv_heads` key/value heads: split evenly (tp divides them) or
/// replicated evenly (tp a multiple of them, every head on tp/kv ranks).
#[inline]
pub fn kv_heads_split_or_replicate(kv_heads: u32, tp: u32) -> bool {
    tp != 0 && kv_heads != 0 && (kv_heads % tp == 0 || tp % kv_heads == 0)
}
