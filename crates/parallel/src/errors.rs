//! Why a strategy cannot run.

use thiserror::Error;
use trainplan_units::Bytes;

/// A strategy that cannot run on this model, cluster and job, and why.
///
/// The sweep counts these by [`Infeasible::reason`]; `explain` prints the message.
#[derive(Debug, Error, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Infeasible {
    /// dp × tp × pp × cp does not use exactly the cluster's GPUs.
    #[error(
        "dp {dp} × tp {tp} × pp {pp} × cp {cp} = {product} GPUs, but the cluster has {n_gpus}"
    )]
    GpuCount {
        /// Data-parallel degree.
        dp: u32,
        /// Tensor-parallel degree.
        tp: u32,
        /// Pipeline-parallel degree.
        pp: u32,
        /// Context-parallel degree.
        cp: u32,
        /// Their product.
        product: u64,
        /// GPUs in the cluster.
        n_gpus: u32,
    },
    /// A degree is zero.
    #[error("parallel degree `{field}` must be at least 1")]
    ZeroDegree {
        /// The degree.
        field: &'static str,
    },
    /// Tensor parallelism must divide the attention heads.
    #[error("tp {tp} does not divide the {n_heads} attention heads")]
    TpHeads {
        /// Tensor-parallel degree.
        tp: u32,
        /// Heads.
        n_heads: u32,
    },
    /// Tensor parallelism must divide the key/value heads or be a multiple of them.
    #[error("tp {tp} neither divides the {n_kv_heads} key/value heads (GQA) nor is a multiple of them (each head replicated over tp/{n_kv_heads} ranks); pick a tp that divides {n_kv_heads} or is a multiple of it")]
    TpKvHeads {
        /// Tensor-parallel degree.
        tp: u32,
        /// Key/value heads.
        n_kv_heads: u32,
    },
    /// Tensor parallelism must divide the FFN width.
    #[error("tp {tp} does not divide the FFN width {ffn}")]
    TpFfn {
        /// Tensor-parallel degree.
        tp: u32,
        /// FFN width.
        ffn: u32,
    },
    /// More pipeline stages than layers.
    #[error("pp {pp} stages need at least as many layers, the model has {n_layers}")]
    TooFewLayers {
        /// Pipeline stages.
        pp: u32,
        /// Layers.
        n_layers: u32,
    },
    /// Interleaving needs a pipeline and micro-batches in multiples of the stages.
    #[error("interleaved schedule (vpp {vpp}) needs pp > 1 and micro-batches ({micro_batches}) a multiple of pp {pp}")]
    Interleaving {
        /// Virtual stages.
        vpp: u32,
        /// Pipeline stages.
        pp: u32,
        /// Micro-batches per step.
        micro_batches: u32,
    },
    /// The global batch does not split into dp × micro-batch.
    #[error(
        "global batch {global_batch} is not a multiple of dp {dp} × micro-batch {micro_batch}"
    )]
    Batch {
        /// Global batch in sequences.
        global_batch: u32,
        /// Data-parallel degree.
        dp: u32,
        /// Micro-batch.
        micro_batch: u32,
    },
    /// Context parallelism must divide the sequence.
    #[error("cp {cp} does not divide sequence length {seq_len} into chunks")]
    CpSeq {
        /// Context-parallel degree.
        cp: u32,
        /// Sequence length.
        seq_len: u32,
    },
    /// Expert parallelism on a dense model.
    #[error("ep {ep} needs a mixture-of-experts model (moe_experts); this model is dense, so use ep = 1")]
    EpDense {
        /// Expert-parallel degree.
        ep: u32,
    },
    /// Expert parallelism needs an MoE model whose experts it divides, and must divide the
    /// stage's ranks left after expert tensor parallelism.
    #[error("ep {ep} must divide the experts ({experts}) and tp × cp × dp / etp ({groups}; etp defaults to tp, so this is dp × cp unless etp is set)")]
    Ep {
        /// Expert-parallel degree.
        ep: u32,
        /// Experts (0 for a dense model).
        experts: u32,
        /// tp × cp × dp / etp.
        groups: u32,
    },
    /// Expert tensor parallelism that does not divide tp.
    #[error("etp {etp} must be at least 1 and divide tp = {tp} (1 keeps each expert whole; leave it unset to split experts like the dense layers)")]
    Etp {
        /// Expert tensor-parallel degree.
        etp: u32,
        /// Tensor-parallel degree.
        tp: u32,
    },
    /// Expert tensor parallelism on a dense model.
    #[error("etp {etp} needs a mixture-of-experts model (moe_experts); this model is dense, so leave etp unset (it follows tp = {tp})")]
    EtpDense {
        /// Expert tensor-parallel degree.
        etp: u32,
        /// Tensor-parallel degree.
        tp: u32,
    },
    /// Experts split fewer ways than tp without sequence parallelism.
    #[error("etp {etp} below tp {tp} needs sequence_parallel = true: the experts take their tokens from each rank's sequence shard")]
    EtpNeedsSp {
        /// Expert tensor-parallel degree.
        etp: u32,
        /// Tensor-parallel degree.
        tp: u32,
    },
    /// ZeRO stage out of range.
    #[error("framework {framework} has no interleaved pipeline schedule (vpp {vpp}): DeepSpeed's pipeline engine runs plain 1F1B; use vpp = 1 or another framework")]
    FrameworkInterleaving {
        /// The framework.
        framework: &'static str,
        /// The virtual stages asked for.
        vpp: u32,
    },
    #[error("framework {framework} takes ZeRO-0 or 1 under a pipeline, not ZeRO-{zero}: DeepSpeed's pipeline engine refuses gradient and parameter sharding; use zero = 1 or pp = 1")]
    FrameworkZero {
        /// The framework.
        framework: &'static str,
        /// The ZeRO stage asked for.
        zero: u8,
    },
    #[error("ZeRO stage {zero} does not exist (allowed: 0, 1, 2, 3)")]
    ZeroStage {
        /// The stage given.
        zero: u8,
    },
    /// fp8 requested on hardware without fp8 tensor cores.
    #[error("fp8 needs fp8 tensor cores, which this accelerator lacks")]
    NoFp8,
    /// Sequence length beyond what the model was sized for.
    #[error(
        "sequence length {seq_len} exceeds the model's learned position table ({max_seq_len})"
    )]
    SeqLen {
        /// Job sequence length.
        seq_len: u32,
        /// Model maximum.
        max_seq_len: u32,
    },
    /// The plan does not fit in HBM.
    #[error("out of memory: needs {needed_gib:.1} GiB per GPU, the accelerator has {capacity_gib:.1} GiB (short by {short_gib:.1} GiB)", needed_gib = needed.gib(), capacity_gib = capacity.gib(), short_gib = needed.gib() - capacity.gib())]
    OutOfMemory {
        /// Peak bytes needed.
        needed: Bytes,
        /// Bytes available.
        capacity: Bytes,
    },
}

impl Infeasible {
    /// A short, stable key for counting rejections.
    pub fn reason(&self) -> &'static str {
        match self {
            Infeasible::GpuCount { .. } => "gpu_count",
            Infeasible::ZeroDegree { .. } => "zero_degree",
            Infeasible::TpHeads { .. } | Infeasible::TpKvHeads { .. } => "tp_heads",
            Infeasible::TpFfn { .. } => "tp_ffn",
            Infeasible::TooFewLayers { .. } => "too_few_layers",
            Infeasible::Interleaving { .. } => "interleaving",
            Infeasible::Batch { .. } => "batch",
            Infeasible::CpSeq { .. } => "cp_seq",
            Infeasible::Ep { .. } | Infeasible::EpDense { .. } => "ep",
            Infeasible::Etp { .. }
            | Infeasible::EtpDense { .. }
            | Infeasible::EtpNeedsSp { .. } => "etp",
            Infeasible::ZeroStage { .. } => "zero_stage",
            Infeasible::FrameworkInterleaving { .. } | Infeasible::FrameworkZero { .. } => {
                "framework"
            }
            Infeasible::NoFp8 => "no_fp8",
            Infeasible::SeqLen { .. } => "seq_len",
            Infeasible::OutOfMemory { .. } => "out_of_memory",
        }
    }
}
