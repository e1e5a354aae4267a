//! Scenario files: the model, the cluster, the job, and either one strategy (`evaluate`,
//! `explain`) or a search space (`sweep`).
//!
//! ```toml
//! [model]
//! preset = "gpt3-175b"        # or the architecture inline: n_layers, hidden, n_heads, ...
//!
//! [cluster]
//! gpu = "a100-80gb"           # accelerator id (trainplan hardware)
//! node = "dgx-a100"           # optional: the accelerator's default node layout
//! n_gpus = 1024
//!
//! [job]
//! global_batch = 1536         # sequences per optimizer step
//! tokens = 300e9              # optional: 20 tokens per parameter (Hoffmann et al. 2022)
//! precision = "bf16"          # bf16 | fp16 | fp8
//!
//! [strategy]
//! tp = 8
//! pp = 16
//! micro_batch = 1
//! ```
//!
//! The format is documented field by field in `scenarios/README.md`.

use crate::{tomlfile, Database, IoError, Location};
use serde::Deserialize;
use trainplan_hardware::{Accelerator, Cluster, Node};
use trainplan_model::{FfnActivation, Model, Moe, Positions, Recompute};
use trainplan_parallel::{
    CrossEntropy, EpDispatcher, Framework, Job, Optimizer, Precision, Strategy,
};

/// What every scenario holds, for messages about a missing or empty file.
const SECTIONS: &str = "a scenario needs the sections [model], [cluster] and [job] \
                        (and [strategy] or [sweep]); see scenarios/README.md";

/// Largest token count accepted (1e16: a thousand times today's largest runs).
const MAX_TOKENS: f64 = 1e16;

/// The raw file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The model.
    pub model: ModelSection,
    /// The cluster.
    pub cluster: ClusterSection,
    /// The job.
    pub job: JobSection,
    /// One strategy, for `evaluate` and `explain`.
    pub strategy: Option<StrategySection>,
    /// The search space, for `sweep`.
    pub sweep: Option<toml::Table>,
}

/// `[model]`: a preset or an inline architecture.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Preset id (`trainplan models`).
    pub preset: Option<String>,
    /// Name for output when inline.
    pub name: Option<String>,
    /// Transformer layers.
    pub n_layers: Option<u32>,
    /// Hidden size.
    pub hidden: Option<u32>,
    /// Attention heads.
    pub n_heads: Option<u32>,
    /// Key/value heads (default: n_heads).
    pub n_kv_heads: Option<u32>,
    /// Width of one attention head (default: hidden / n_heads).
    pub head_dim: Option<u32>,
    /// FFN inner size (default: 4 × hidden).
    pub ffn: Option<u32>,
    /// `gelu` or `swiglu` (default gelu).
    pub ffn_act: Option<ActName>,
    /// Vocabulary.
    pub vocab: Option<u32>,
    /// Training sequence length of the model.
    pub seq_len: Option<u32>,
    /// Shared input/output embedding (default false).
    pub tied_embeddings: Option<bool>,
    /// `learned` or `rotary` (default rotary).
    pub positions: Option<PositionsName>,
    /// Biases in linear layers (default: true for gelu, false for swiglu).
    pub linear_bias: Option<bool>,
    /// Dropout in training (default false).
    pub dropout: Option<bool>,
    /// MoE routed experts.
    pub moe_experts: Option<u32>,
    /// MoE experts per token.
    pub moe_top_k: Option<u32>,
    /// Width of the MoE shared experts' FFN, summed over them (default: none).
    pub moe_shared_ffn: Option<u32>,
    /// Leading dense layers of an MoE model (default: none).
    pub moe_dense_layers: Option<u32>,
    /// FFN width of the dense layers (required with `moe_dense_layers` or `moe_layer_freq`).
    pub moe_dense_ffn: Option<u32>,
    /// Past the dense leading layers, every how many layers one is MoE (default 1: all).
    pub moe_layer_freq: Option<u32>,
    /// `[model.mla]`: multi-head latent attention (DeepSeek-V2/V3), in DeepSeek's config names.
    pub mla: Option<crate::preset_file::MlaFile>,
}

/// FFN activation names.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActName {
    /// GELU.
    Gelu,
    /// SwiGLU.
    Swiglu,
}

/// Position encodings.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionsName {
    /// Learned table.
    Learned,
    /// Rotary or ALiBi.
    Rotary,
}

/// `[cluster]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Accelerator id.
    pub gpu: Option<String>,
    /// Node layout id.
    pub node: Option<String>,
    /// GPUs per node, overriding the node layout.
    pub gpus_per_node: Option<u32>,
    /// GPUs in the job.
    pub n_gpus: Option<u32>,
}

/// `[job]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JobSection {
    /// Sequence length (default: the model's).
    pub seq_len: Option<u32>,
    /// Sequences per optimizer step.
    pub global_batch: Option<u32>,
    /// Tokens to train on: a number (`260e9`) or a count with a suffix (`"260B"`).
    #[serde(default, deserialize_with = "count")]
    pub tokens: Option<f64>,
    /// Precision.
    pub precision: Option<PrecisionName>,
    /// Gradient accumulation/reduction type: `fp32` (default) or `bf16`.
    pub grad_dtype: Option<GradDtype>,
    /// The optimizer implementation holding the model states: `deepspeed` (default) or
    /// `megatron`.
    pub optimizer: Option<OptimizerName>,
    /// The framework running the job: `megatron`, `deepspeed` or `pytorch` (default: unstated,
    /// `pytorch` for FSDP layouts and framework-neutral rules otherwise).
    pub framework: Option<FrameworkName>,
    /// How the loss is computed: `vocab_parallel`, `fp32_eager` or `fused` (default: `fused` under
    /// PyTorch, stated or implied, `vocab_parallel` otherwise).
    pub cross_entropy: Option<CrossEntropyName>,
    /// Price of a GPU-hour in USD (default: the hardware database's).
    pub price_usd_per_gpu_hour: Option<f64>,
    /// Deadline in days.
    pub deadline_days: Option<f64>,
    /// Budget in USD.
    pub budget_usd: Option<f64>,
}

/// Precision names.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionName {
    /// bf16.
    Bf16,
    /// fp16.
    Fp16,
    /// fp8.
    Fp8,
}

/// Gradient dtypes.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GradDtype {
    /// 4 bytes.
    Fp32,
    /// 2 bytes.
    Bf16,
}

/// Optimizer implementation names.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    /// DeepSpeed's ZeRO-1/2 and BF16 optimizers.
    Deepspeed,
    /// Megatron-Core's distributed optimizer.
    Megatron,
}

/// Expert dispatcher names.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpDispatcherName {
    /// A plain all-to-all, one copy per routed expert.
    Alltoall,
    /// One copy per destination node, forwarded inside it (DeepEP).
    Deepep,
}

/// Framework names.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameworkName {
    /// Megatron-LM, Megatron-Core, NeMo.
    Megatron,
    /// DeepSpeed, Megatron-DeepSpeed.
    Deepspeed,
    /// PyTorch-native: torchtitan, FSDP, llm-foundry.
    Pytorch,
}

/// Cross-entropy implementation names.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossEntropyName {
    /// Megatron's vocab-parallel cross entropy.
    VocabParallel,
    /// PyTorch's eager cross entropy on fp32-cast logits.
    Fp32Eager,
    /// A fused kernel (flash-attn, a compiled loss).
    Fused,
}

impl From<CrossEntropyName> for CrossEntropy {
    fn from(c: CrossEntropyName) -> Self {
        match c {
            CrossEntropyName::VocabParallel => CrossEntropy::VocabParallel,
            CrossEntropyName::Fp32Eager => CrossEntropy::Fp32Eager,
            CrossEntropyName::Fused => CrossEntropy::Fused,
        }
    }
}

impl From<FrameworkName> for Framework {
    fn from(f: FrameworkName) -> Self {
        match f {
            FrameworkName::Megatron => Framework::Megatron,
            FrameworkName::Deepspeed => Framework::Deepspeed,
            FrameworkName::Pytorch => Framework::Pytorch,
        }
    }
}

impl From<OptimizerName> for Optimizer {
    fn from(o: OptimizerName) -> Self {
        match o {
            OptimizerName::Deepspeed => Optimizer::Deepspeed,
            OptimizerName::Megatron => Optimizer::Megatron,
        }
    }
}

impl From<EpDispatcherName> for EpDispatcher {
    fn from(d: EpDispatcherName) -> Self {
        match d {
            EpDispatcherName::Alltoall => EpDispatcher::AllToAll,
            EpDispatcherName::Deepep => EpDispatcher::DeepEp,
        }
    }
}

/// Recomputation names.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecomputeName {
    /// None.
    None,
    /// Selective.
    Selective,
    /// Full.
    Full,
}

impl From<RecomputeName> for Recompute {
    fn from(r: RecomputeName) -> Self {
        match r {
            RecomputeName::None => Recompute::None,
            RecomputeName::Selective => Recompute::Selective,
            RecomputeName::Full => Recompute::Full,
        }
    }
}

/// A count given as a number or as a string with a K/M/B/T suffix, as on the command line.
fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct Count;
    impl serde::de::Visitor<'_> for Count {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number such as 260e9, or a count such as \"260B\"")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            crate::numbers::parse_count(v).map(Some).map_err(|e| {
                E::custom(format!(
                    "`{v}` is not a count ({e}); write e.g. 260e9 or \"260B\""
                ))
            })
        }
    }
    d.deserialize_any(Count)
}

/// `[strategy]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StrategySection {
    /// Data parallel (default: n_gpus / (tp·pp·cp)).
    pub dp: Option<u32>,
    /// Tensor parallel (default 1).
    pub tp: Option<u32>,
    /// Pipeline parallel (default 1).
    pub pp: Option<u32>,
    /// Context parallel (default 1).
    pub cp: Option<u32>,
    /// Expert parallel (default 1).
    pub ep: Option<u32>,
    /// Expert tensor parallelism (MoE): 1 keeps experts whole; unset follows tp.
    pub etp: Option<u32>,
    /// Virtual stages (default 1).
    pub vpp: Option<u32>,
    /// Micro-batch (default 1).
    pub micro_batch: Option<u32>,
    /// ZeRO stage (default 1).
    pub zero: Option<u8>,
    /// Recomputation (default selective).
    pub recompute: Option<RecomputeName>,
    /// Sequence parallelism (default: true when tp > 1).
    pub sequence_parallel: Option<bool>,
    /// Fused attention (default true).
    pub flash_attention: Option<bool>,
    /// Overlap tensor-parallel collectives with matrix products (default false).
    pub tp_comm_overlap: Option<bool>,
    /// Overlap the expert all-to-all with another micro-batch's computation (default false).
    pub ep_comm_overlap: Option<bool>,
    /// Overlap the data-parallel gradient reduction with backward below ZeRO-3 (default true;
    /// DeepSpeed below ZeRO-3 never does).
    pub dp_comm_overlap: Option<bool>,
    /// How the expert all-to-all moves tokens: `alltoall` (default) or `deepep`.
    pub ep_dispatcher: Option<EpDispatcherName>,
}

/// The cluster a scenario names, before a GPU count is fixed (a sweep varies it).
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// The accelerator.
    pub accelerator: Accelerator,
    /// The node layout.
    pub node: Node,
    /// GPUs, when given.
    pub n_gpus: Option<u32>,
}

impl ClusterSpec {
    /// Builds the cluster with `n_gpus`.
    pub fn build(&self, n_gpus: u32) -> Result<Cluster, trainplan_hardware::HardwareError> {
        Cluster::new(self.accelerator.clone(), self.node.clone(), n_gpus)
    }
}

/// A loaded, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file, as given.
    pub path: String,
    /// The model.
    pub model: Model,
    /// The model's display name.
    pub model_name: String,
    /// The cluster.
    pub cluster: ClusterSpec,
    /// The job.
    pub job: Job,
    /// USD per GPU-hour, if known.
    pub price_usd_per_gpu_hour: Option<f64>,
    /// Deadline in days.
    pub deadline_days: Option<f64>,
    /// Budget in USD.
    pub budget_usd: Option<f64>,
    /// The strategy, when the file has `[strategy]`.
    pub strategy: Option<Strategy>,
    /// The raw `[sweep]` table, read by the search-space loader.
    pub sweep: Option<toml::Table>,
    /// The file's text (for locating fields in later errors).
    pub text: String,
}

impl Scenario {
    /// Reads and validates the scenario at `path`.
    pub fn load(path: &std::path::Path, db: &Database) -> Result<Self, IoError> {
        let text = std::fs::read(path).map_err(|source| IoError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let label = path.display().to_string();
        let text = crate::errors::utf8_text(&label, text, "a scenario is a TOML file")?;
        Self::parse(&label, &text, db)
    }

    /// Parses and validates scenario `text` read from `path`.
    pub fn parse(path: &str, text: &str, db: &Database) -> Result<Self, IoError> {
        if !tomlfile::has_content(text) {
            return Err(IoError::Parse {
                location: Location::file(path),
                message: format!("the file is empty (only blanks and comments); {SECTIONS}"),
            });
        }
        let file: ScenarioFile = tomlfile::parse(path, text).map_err(name_missing_section)?;
        let field_err = |section: &str, key: &str, message: String| IoError::Field {
            location: tomlfile::locate(path, text, section, key),
            field: format!("{section}.{key}"),
            message,
        };

        let (model, model_name, preset_seq) = build_model(path, text, &file.model, db)?;

        let gpu_id = file.cluster.gpu.as_deref().ok_or_else(|| {
            field_err(
                "cluster",
                "gpu",
                "is required: an accelerator id such as `h100-sxm` (see `trainplan hardware`)"
                    .into(),
            )
        })?;
        let accelerator = db
            .accelerator(gpu_id, &tomlfile::locate(path, text, "cluster", "gpu"))?
            .clone();
        let node_id = file
            .cluster
            .node
            .clone()
            .unwrap_or_else(|| accelerator.default_node.clone());
        let mut node = db
            .node(&node_id, &tomlfile::locate(path, text, "cluster", "node"))?
            .clone();
        if let Some(g) = file.cluster.gpus_per_node {
            if g == 0 || g > 1024 {
                return Err(field_err(
                    "cluster",
                    "gpus_per_node",
                    format!("must be between 1 and 1024, found {g}"),
                ));
            }
            node = node.with_gpus_per_node(g);
        }
        if let Some(n) = file.cluster.n_gpus {
            if n == 0 || n > 1_000_000 {
                return Err(field_err(
                    "cluster",
                    "n_gpus",
                    format!("must be between 1 and 1000000, found {n}"),
                ));
            }
        }

        let seq_len = file.job.seq_len.unwrap_or(preset_seq);
        if seq_len == 0 || seq_len > 10_000_000 {
            return Err(field_err(
                "job",
                "seq_len",
                format!("must be between 1 and 10000000 tokens, found {seq_len}"),
            ));
        }
        let global_batch = file.job.global_batch.ok_or_else(|| {
            field_err(
                "job",
                "global_batch",
                "is required: sequences per optimizer step, e.g. 1024".into(),
            )
        })?;
        if global_batch == 0 || global_batch > 100_000_000 {
            return Err(field_err(
                "job",
                "global_batch",
                format!("must be between 1 and 100000000 sequences, found {global_batch}"),
            ));
        }
        let tokens = file.job.tokens.unwrap_or(20.0 * model.params().total);
        if !(tokens.is_finite() && tokens > 0.0 && tokens <= MAX_TOKENS) {
            return Err(field_err(
                "job",
                "tokens",
                format!("must be a positive number of tokens up to {MAX_TOKENS:e}, found {tokens}"),
            ));
        }
        let precision = match file.job.precision.unwrap_or(PrecisionName::Bf16) {
            PrecisionName::Bf16 => Precision::Bf16,
            PrecisionName::Fp16 => Precision::Fp16,
            PrecisionName::Fp8 => Precision::Fp8,
        };
        if precision == Precision::Fp8 && accelerator.fp8_peak.is_none() {
            return Err(field_err(
                "job",
                "precision",
                format!(
                    "fp8 needs fp8 tensor cores, which `{}` lacks; use bf16 or fp16",
                    accelerator.id
                ),
            ));
        }
        let grad_bytes = match file.job.grad_dtype.unwrap_or(GradDtype::Fp32) {
            GradDtype::Fp32 => 4.0,
            GradDtype::Bf16 => 2.0,
        };
        let positive = |key: &str, v: Option<f64>| -> Result<Option<f64>, IoError> {
            match v {
                Some(x) if !(x.is_finite() && x > 0.0 && x < 1e15) => Err(field_err(
                    "job",
                    key,
                    format!("must be a positive finite number, found {x}"),
                )),
                other => Ok(other),
            }
        };
        let price = positive("price_usd_per_gpu_hour", file.job.price_usd_per_gpu_hour)?
            .or(accelerator.price_usd_per_gpu_hour);
        let deadline_days = positive("deadline_days", file.job.deadline_days)?;
        let budget_usd = positive("budget_usd", file.job.budget_usd)?;
        let framework = file.job.framework.map(Framework::from);
        let job = Job {
            seq_len,
            global_batch,
            tokens,
            precision,
            grad_bytes,
            optimizer: file.job.optimizer.map_or_else(
                || Optimizer::default_for_framework(framework, precision),
                Optimizer::from,
            ),
            framework,
            cross_entropy: file.job.cross_entropy.map(CrossEntropy::from),
        };

        let strategy = match &file.strategy {
            None => None,
            Some(s) => Some(build_strategy(path, text, s, file.cluster.n_gpus)?),
        };
        Ok(Self {
            path: path.to_string(),
            model,
            model_name,
            cluster: ClusterSpec {
                accelerator,
                node,
                n_gpus: file.cluster.n_gpus,
            },
            job,
            price_usd_per_gpu_hour: price,
            deadline_days,
            budget_usd,
            strategy,
            sweep: file.sweep,
            text: text.to_string(),
        })
    }

    /// The cluster with the scenario's GPU count (required for `evaluate`).
    pub fn fixed_cluster(&self) -> Result<Cluster, IoError> {
        let n = self.cluster.n_gpus.ok_or_else(|| IoError::Field {
            location: tomlfile::locate(&self.path, &self.text, "cluster", "n_gpus"),
            field: "cluster.n_gpus".into(),
            message: "is required to evaluate one strategy: the number of GPUs in the job".into(),
        })?;
        self.cluster.build(n).map_err(|e| IoError::Field {
            location: tomlfile::locate(&self.path, &self.text, "cluster", "n_gpus"),
            field: "cluster".into(),
            message: e.to_string(),
        })
    }
}

fn build_model(
    path: &str,
    text: &str,
    m: &ModelSection,
    db: &Database,
) -> Result<(Model, String, u32), IoError> {
    let field_err = |key: &str, message: String| IoError::Field {
        location: tomlfile::locate(path, text, "model", key),
        field: format!("model.{key}"),
        message,
    };
    if let Some(preset) = &m.preset {
        // Every architecture field belongs to an inline model: next to a preset it would be
        // silently ignored, so name the first one given.
        let given = [
            ("name", m.name.is_some()),
            ("n_layers", m.n_layers.is_some()),
            ("hidden", m.hidden.is_some()),
            ("n_heads", m.n_heads.is_some()),
            ("n_kv_heads", m.n_kv_heads.is_some()),
            ("head_dim", m.head_dim.is_some()),
            ("ffn", m.ffn.is_some()),
            ("ffn_act", m.ffn_act.is_some()),
            ("vocab", m.vocab.is_some()),
            ("seq_len", m.seq_len.is_some()),
            ("tied_embeddings", m.tied_embeddings.is_some()),
            ("positions", m.positions.is_some()),
            ("linear_bias", m.linear_bias.is_some()),
            ("dropout", m.dropout.is_some()),
            ("moe_experts", m.moe_experts.is_some()),
            ("moe_top_k", m.moe_top_k.is_some()),
            ("moe_shared_ffn", m.moe_shared_ffn.is_some()),
            ("moe_dense_layers", m.moe_dense_layers.is_some()),
            ("moe_dense_ffn", m.moe_dense_ffn.is_some()),
            ("moe_layer_freq", m.moe_layer_freq.is_some()),
            ("mla", m.mla.is_some()),
        ];
        if let Some((key, _)) = given.iter().find(|(_, set)| *set) {
            let hint = if *key == "seq_len" {
                "; set the training sequence length in [job].seq_len"
            } else {
                "; copy the preset into an inline [model] to change its architecture"
            };
            return Err(field_err(
                key,
                format!("`{key}` cannot be combined with `preset` (it would be ignored){hint}"),
            ));
        }
        let p = db.model(preset, &tomlfile::locate(path, text, "model", "preset"))?;
        return Ok((p.model.clone(), p.name.clone(), p.seq_len));
    }
    let need = |key: &str, v: Option<u32>| {
        v.ok_or_else(|| {
            field_err(
                key,
                "is required for an inline model (or give `preset`, see `trainplan models`)".into(),
            )
        })
    };
    let hidden = need("hidden", m.hidden)?;
    let n_heads = need("n_heads", m.n_heads)?;
    let ffn_act = match m.ffn_act.unwrap_or(ActName::Gelu) {
        ActName::Gelu => FfnActivation::Gelu,
        ActName::Swiglu => FfnActivation::Swiglu,
    };
    let moe = match (m.moe_experts, m.moe_top_k) {
        (None, None) => None,
        (Some(experts), Some(top_k)) => Some(Moe {
            experts,
            top_k,
            shared_ffn: m.moe_shared_ffn.unwrap_or(0),
            dense_layers: m.moe_dense_layers.unwrap_or(0),
            dense_ffn: m.moe_dense_ffn.unwrap_or(0),
            layer_freq: m.moe_layer_freq.unwrap_or(1),
        }),
        (Some(_), None) => {
            return Err(field_err(
                "moe_top_k",
                "is required when moe_experts is given".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(field_err(
                "moe_experts",
                "is required when moe_top_k is given".into(),
            ))
        }
    };
    if moe.is_none() {
        for (key, set) in [
            ("moe_dense_layers", m.moe_dense_layers.is_some()),
            ("moe_dense_ffn", m.moe_dense_ffn.is_some()),
            ("moe_layer_freq", m.moe_layer_freq.is_some()),
        ] {
            if set {
                return Err(field_err(
                    key,
                    "needs moe_experts and moe_top_k (dense layers stand among MoE ones)".into(),
                ));
            }
        }
    }
    if m.moe_layer_freq.unwrap_or(1) > 1 && m.moe_dense_ffn.is_none() {
        return Err(field_err(
            "moe_dense_ffn",
            "is required with moe_layer_freq above 1: the FFN width of the dense layers between the MoE ones (Llama 4's intermediate_size_mlp)".into(),
        ));
    }
    if m.moe_dense_layers.unwrap_or(0) > 0 && m.moe_dense_ffn.is_none() {
        return Err(field_err(
            "moe_dense_ffn",
            "is required with moe_dense_layers: the FFN width of the dense leading layers (DeepSeek's intermediate_size)".into(),
        ));
    }
    if moe.is_none() && m.moe_shared_ffn.is_some() {
        return Err(field_err(
            "moe_shared_ffn",
            "needs moe_experts and moe_top_k (shared experts run beside routed ones)".into(),
        ));
    }
    let mut model = Model {
        id: "inline".into(),
        n_layers: need("n_layers", m.n_layers)?,
        hidden,
        n_heads,
        n_kv_heads: m.n_kv_heads.unwrap_or(n_heads),
        // Filled in below, once the sizes are known to be in range.
        head_dim: m.head_dim.unwrap_or(0),
        ffn: m.ffn.unwrap_or(hidden.saturating_mul(4)),
        vocab: need("vocab", m.vocab)?,
        max_seq_len: need("seq_len", m.seq_len)?,
        ffn_act,
        tied_embeddings: m.tied_embeddings.unwrap_or(false),
        positions: match m.positions.unwrap_or(PositionsName::Rotary) {
            PositionsName::Learned => Positions::Learned,
            PositionsName::Rotary => Positions::Rotary,
        },
        linear_bias: m.linear_bias.unwrap_or(ffn_act == FfnActivation::Gelu),
        dropout: m.dropout.unwrap_or(false),
        moe,
        mla: None,
    };
    if let Some(mla) = m.mla {
        let (mla, qk) = mla.resolve(m.head_dim).map_err(|e| IoError::Field {
            location: tomlfile::locate(path, text, "model.mla", "qk_nope_head_dim"),
            field: "model.mla.qk_nope_head_dim".into(),
            message: e,
        })?;
        model.mla = Some(mla);
        model.head_dim = qk;
    }
    for (key, v, max) in [
        ("n_layers", model.n_layers, 10_000),
        ("hidden", model.hidden, 1_000_000),
        ("n_heads", model.n_heads, 100_000),
        ("head_dim", model.head_dim, 100_000),
        ("ffn", model.ffn, 10_000_000),
        ("vocab", model.vocab, 100_000_000),
        ("seq_len", model.max_seq_len, 10_000_000),
    ] {
        if v > max {
            return Err(field_err(
                key,
                format!("{v} is beyond any real model (at most {max})"),
            ));
        }
    }
    if m.head_dim.is_none() && model.mla.is_none() {
        model.head_dim = Model::default_head_dim(hidden, n_heads)
            .map_err(|e| field_err("n_heads", e.to_string()))?;
    }
    model.validate().map_err(|e| {
        let key = match e {
            trainplan_model::ModelError::Zero { field } => field,
            trainplan_model::ModelError::KvHeads { .. }
            | trainplan_model::ModelError::MlaKvHeads { .. } => "n_kv_heads",
            trainplan_model::ModelError::Moe { .. } => "moe_top_k",
            trainplan_model::ModelError::DenseLayers { .. } => "moe_dense_layers",
            trainplan_model::ModelError::LayerFreq { .. } => "moe_layer_freq",
            _ => "n_heads",
        };
        field_err(key, e.to_string())
    })?;
    let name = m.name.clone().unwrap_or_else(|| "inline model".into());
    let seq = model.max_seq_len;
    Ok((model, name, seq))
}

fn build_strategy(
    path: &str,
    text: &str,
    s: &StrategySection,
    n_gpus: Option<u32>,
) -> Result<Strategy, IoError> {
    let field_err = |key: &str, message: String| IoError::Field {
        location: tomlfile::locate(path, text, "strategy", key),
        field: format!("strategy.{key}"),
        message,
    };
    let tp = s.tp.unwrap_or(1);
    let pp = s.pp.unwrap_or(1);
    let cp = s.cp.unwrap_or(1);
    for (key, v) in [
        ("tp", tp),
        ("pp", pp),
        ("cp", cp),
        ("ep", s.ep.unwrap_or(1)),
        ("vpp", s.vpp.unwrap_or(1)),
        ("micro_batch", s.micro_batch.unwrap_or(1)),
    ] {
        if v == 0 {
            return Err(field_err(key, "must be at least 1, found 0".into()));
        }
    }
    let model_parallel = u64::from(tp) * u64::from(pp) * u64::from(cp);
    // The field to blame when the degrees do not fit the GPUs: the first one that does not
    // divide them on its own, else the largest one the file sets.
    let culprit = |n: u32| -> &'static str {
        for (key, v, given) in [("pp", pp, s.pp), ("cp", cp, s.cp), ("tp", tp, s.tp)] {
            if given.is_some() && n % v != 0 {
                return key;
            }
        }
        [("tp", tp, s.tp), ("pp", pp, s.pp), ("cp", cp, s.cp)]
            .into_iter()
            .filter(|(_, _, given)| given.is_some())
            .max_by_key(|(_, v, _)| *v)
            .map_or("tp", |(key, _, _)| key)
    };
    let dp = match (s.dp, n_gpus) {
        (Some(dp), _) => dp,
        (None, Some(n)) => {
            if model_parallel > u64::from(n) {
                return Err(field_err(
                    culprit(n),
                    format!("tp {tp} × pp {pp} × cp {cp} = {model_parallel} GPUs is more than cluster.n_gpus = {n}; lower tp, pp or cp"),
                ));
            }
            if u64::from(n) % model_parallel != 0 {
                return Err(field_err(
                    culprit(n),
                    format!("tp {tp} × pp {pp} × cp {cp} = {model_parallel} does not divide n_gpus = {n}; dp would not be whole"),
                ));
            }
            (u64::from(n) / model_parallel) as u32
        }
        (None, None) => {
            return Err(field_err(
                "dp",
                "is required when cluster.n_gpus is not given".into(),
            ))
        }
    };
    if dp == 0 {
        return Err(field_err("dp", "must be at least 1, found 0".into()));
    }
    if let Some(n) = n_gpus {
        let product = u64::from(dp) * model_parallel;
        if product != u64::from(n) {
            return Err(field_err(
                "dp",
                format!(
                    "dp {dp} × tp {tp} × pp {pp} × cp {cp} = {product}, but cluster.n_gpus = {n}"
                ),
            ));
        }
    }
    let zero = s.zero.unwrap_or(1);
    if zero > 3 {
        return Err(field_err(
            "zero",
            format!("ZeRO stage {zero} does not exist; allowed: 0, 1, 2, 3"),
        ));
    }
    let sequence_parallel = s.sequence_parallel.unwrap_or(tp > 1);
    if s.tp_comm_overlap == Some(true) && tp > 1 && !sequence_parallel {
        return Err(field_err(
            "tp_comm_overlap",
            "overlapping the tensor-parallel collectives needs sequence_parallel = true (Megatron-Core's --tp-comm-overlap requires --sequence-parallel); set one of them differently".into(),
        ));
    }
    // Equal to tp is the default; store it one way so that equal layouts compare equal. The
    // rules on etp are `Strategy::check`'s (reported at this field by `evaluate`).
    let etp = s.etp.filter(|&e| e != tp);
    Ok(Strategy {
        dp,
        tp,
        pp,
        cp,
        ep: s.ep.unwrap_or(1),
        etp,
        vpp: s.vpp.unwrap_or(1),
        micro_batch: s.micro_batch.unwrap_or(1),
        zero,
        recompute: s.recompute.map_or(Recompute::Selective, Recompute::from),
        sequence_parallel,
        flash_attention: s.flash_attention.unwrap_or(true),
        tp_overlap: s.tp_comm_overlap.unwrap_or(false),
        ep_overlap: s.ep_comm_overlap.unwrap_or(false),
        dp_overlap: s.dp_comm_overlap.unwrap_or(true),
        ep_dispatcher: s
            .ep_dispatcher
            .map_or(EpDispatcher::AllToAll, EpDispatcher::from),
    })
}

/// Rewrites serde's "missing field `job`" for a top-level table into words about sections.
fn name_missing_section(e: IoError) -> IoError {
    match e {
        IoError::Parse { location, message } => {
            let section = ["model", "cluster", "job"]
                .into_iter()
                .find(|s| message.contains(&format!("missing field `{s}`")));
            let message = match section {
                Some(s) => format!("missing section [{s}]; {SECTIONS}"),
                None => message,
            };
            IoError::Parse { location, message }
        }
        other => other,
    }
}
