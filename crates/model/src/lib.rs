//! The transformer being trained: its shape, and what that shape costs in parameters, FLOPs and
//! activation bytes.
//!
//! Roles:
//! - [`Model`]: the architecture (dense or MoE; multi-head or grouped-query attention; GELU or
//!   SwiGLU feed-forward; tied or untied embeddings; learned or rotary positions), checked once by
//!   [`Model::validate`].
//! - Parameter counts ([`Model::params`]) derived from the architecture, never typed in.
//! - FLOPs per token ([`Model::flops_per_token`]): the Narayanan et al. 2021 count, generalised to
//!   GQA, SwiGLU and MoE from the matrix shapes.
//! - Activation bytes ([`Model::activation_bytes_per_layer`]): Korthikanti et al. 2022, split into
//!   the parts tensor and sequence parallelism shard and the parts they do not.
//!
//! The crate knows nothing about hardware or parallel layouts beyond the tensor-parallel degree
//! that divides activations; it does no I/O.

mod errors;
mod flops;
mod memory;

pub use errors::ModelError;
pub use flops::FlopsPerToken;
pub use memory::{ActivationConfig, CrossEntropy, Recompute};

/// Activation function of the feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FfnActivation {
    /// Two matrices, h→ffn→h, with GELU between (GPT, BLOOM, OPT, MPT).
    Gelu,
    /// Three matrices (gate, up, down) with SiLU gating (Llama, Mistral, Qwen).
    Swiglu,
}

impl FfnActivation {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            FfnActivation::Gelu => "gelu",
            FfnActivation::Swiglu => "swiglu",
        }
    }

    /// Number of h×ffn weight matrices in one feed-forward block.
    #[inline]
    pub fn n_matrices(self) -> u64 {
        match self {
            FfnActivation::Gelu => 2,
            FfnActivation::Swiglu => 3,
        }
    }
}

/// Position encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Positions {
    /// A learned table of `max_seq_len × hidden` parameters (GPT-2/3, OPT, MPT learned).
    Learned,
    /// Rotary or ALiBi: no parameters.
    Rotary,
}

/// Mixture-of-experts feed-forward layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Moe {
    /// Routed experts per MoE layer.
    pub experts: u32,
    /// Experts each token is routed to.
    pub top_k: u32,
    /// Width of the shared experts' feed-forward block, summed over them (0 for none): an FFN of
    /// the routed experts' activation that every token runs beside its top_k (DeepSeekMoE, Dai
    /// et al. 2024, section 3.2; Qwen1.5-MoE's `shared_expert_intermediate_size`). It is dense:
    /// split over tp like a dense FFN and replicated over the data-parallel ranks.
    pub shared_ffn: u32,
    /// Leading layers that are dense, not MoE (DeepSeek's `first_k_dense_replace`: 3 in
    /// DeepSeek-V3, 1 in DeepSeek-V2-Lite and Kimi K2); 0 when every layer is MoE.
    pub dense_layers: u32,
    /// FFN width of the dense layers, leading or interleaved (DeepSeek's `intermediate_size`,
    /// Llama 4's `intermediate_size_mlp`); unused without them.
    pub dense_ffn: u32,
    /// Past the dense leading layers, every `layer_freq`-th layer is MoE and the others dense:
    /// layer j of them is MoE when (j + 1) is a multiple of it (Llama 4's
    /// `interleave_moe_layer_step`, 2 in Maverick: layers 1, 3, 5, ...; Megatron-Core's
    /// `--moe-layer-freq`). 1 when every such layer is MoE.
    pub layer_freq: u32,
}

impl Moe {
    /// Whether some layers are dense (leading or interleaved).
    #[inline]
    pub fn has_dense_layers(&self) -> bool {
        self.dense_layers > 0 || self.layer_freq > 1
    }

    /// Dense layers among the `count` layers from layer `start` on (0-based) of an `n_layers`
    /// model: the leading ones there, then all but every `layer_freq`-th of the rest.
    #[inline]
    pub fn dense_in(&self, start: u32, count: u32) -> u32 {
        let (k, f) = (self.dense_layers, self.layer_freq.max(1));
        let end = start.saturating_add(count);
        // Past the leading ones, the MoE layers j (counted from there) with (j + 1) % f == 0.
        let (a, b) = (start.max(k) - k, end.max(k) - k);
        count - (b / f - a / f)
    }
}

/// Multi-head latent attention (DeepSeek-AI 2024, "DeepSeek-V2", section 2.1): each layer
/// compresses the hidden state into a key/value latent (and a query latent), from which every
/// head's key and value (and query) are decompressed; each query/key head also carries a rotary
/// part, the keys' computed once from the hidden state and shared by the heads. The query/key head
/// width is the model's `head_dim` (DeepSeek's `qk_nope_head_dim + qk_rope_head_dim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mla {
    /// Rank of the query latent; 0 projects queries straight from the hidden state
    /// (DeepSeek-V2-Lite).
    pub q_lora_rank: u32,
    /// Rank of the key/value latent.
    pub kv_lora_rank: u32,
    /// The rotary part of each query/key head.
    pub qk_rope_head_dim: u32,
    /// Width of each value head.
    pub v_head_dim: u32,
}

/// A decoder-only transformer.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Id (preset name or `inline`).
    pub id: String,
    /// Transformer layers.
    pub n_layers: u32,
    /// Hidden size h.
    pub hidden: u32,
    /// Attention (query) heads a.
    pub n_heads: u32,
    /// Key/value heads (equal to `n_heads` for multi-head attention).
    pub n_kv_heads: u32,
    /// Width of one attention head: `hidden / n_heads` for most models; wider in those that
    /// project queries, keys and values to more than the hidden size (Qwen3 and Gemma use 128
    /// or 256 whatever their hidden size).
    pub head_dim: u32,
    /// Feed-forward inner size (per expert for MoE).
    pub ffn: u32,
    /// Vocabulary size V.
    pub vocab: u32,
    /// Longest sequence the model is trained on (sizes learned position tables).
    pub max_seq_len: u32,
    /// Feed-forward activation.
    pub ffn_act: FfnActivation,
    /// True when the output projection shares the input embedding's weights.
    pub tied_embeddings: bool,
    /// Position encoding.
    pub positions: Positions,
    /// True when linear layers carry biases (GPT-style); false for Llama-style.
    pub linear_bias: bool,
    /// True when the model trains with dropout (masks are stored for backward).
    pub dropout: bool,
    /// Mixture-of-experts layers, if any (every layer is MoE when set).
    pub moe: Option<Moe>,
    /// Multi-head latent attention, if the model uses it instead of (grouped) multi-head.
    pub mla: Option<Mla>,
}

/// Parameter counts by part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamCounts {
    /// Input embedding plus learned positions.
    pub embedding: f64,
    /// Output projection when untied (0 when tied).
    pub output: f64,
    /// All transformer layers.
    pub layers: f64,
    /// One transformer layer (an MoE layer, for MoE models).
    pub per_layer: f64,
    /// One dense leading layer of an MoE model (0 without them).
    pub dense_layer: f64,
    /// Final norm.
    pub final_norm: f64,
    /// Everything.
    pub total: f64,
    /// Parameters one token touches (MoE: only `top_k` experts).
    pub active: f64,
}

impl Model {
    /// The usual head width, `hidden / n_heads`, for a file that does not state `head_dim`: an
    /// error when the heads do not divide the hidden size.
    pub fn default_head_dim(hidden: u32, n_heads: u32) -> Result<u32, ModelError> {
        if n_heads == 0 {
            return Err(ModelError::Zero { field: "n_heads" });
        }
        if hidden % n_heads != 0 {
            return Err(ModelError::HeadsDoNotDivideHidden { hidden, n_heads });
        }
        Ok(hidden / n_heads)
    }

    /// Checks the architecture: every count positive (head_dim too), KV heads divide the heads,
    /// MoE top-k within the experts.
    pub fn validate(&self) -> Result<(), ModelError> {
        let positive = [
            ("n_layers", self.n_layers),
            ("hidden", self.hidden),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("ffn", self.ffn),
            ("vocab", self.vocab),
            ("seq_len", self.max_seq_len),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ModelError::Zero { field });
            }
        }
        if self.head_dim == 0 {
            return Err(ModelError::Zero { field: "head_dim" });
        }
        if self.n_kv_heads > self.n_heads || self.n_heads % self.n_kv_heads != 0 {
            return Err(ModelError::KvHeads {
                n_heads: self.n_heads,
                n_kv_heads: self.n_kv_heads,
            });
        }
        if let Some(mla) = self.mla {
            for (field, value) in [
                ("mla.kv_lora_rank", mla.kv_lora_rank),
                ("mla.qk_rope_head_dim", mla.qk_rope_head_dim),
                ("mla.v_head_dim", mla.v_head_dim),
            ] {
                if value == 0 {
                    return Err(ModelError::Zero { field });
                }
            }
            if self.n_kv_heads != self.n_heads {
                return Err(ModelError::MlaKvHeads {
                    n_heads: self.n_heads,
                    n_kv_heads: self.n_kv_heads,
                });
            }
            if self.head_dim <= mla.qk_rope_head_dim {
                return Err(ModelError::Zero {
                    field: "head_dim - mla.qk_rope_head_dim (the query/key head's non-rotary part)",
                });
            }
        }
        if let Some(moe) = self.moe {
            if moe.dense_layers >= self.n_layers {
                return Err(ModelError::DenseLayers {
                    dense_layers: moe.dense_layers,
                    n_layers: self.n_layers,
                });
            }
            if moe.layer_freq == 0 {
                return Err(ModelError::Zero {
                    field: "moe_layer_freq",
                });
            }
            if (self.n_layers - moe.dense_layers) / moe.layer_freq == 0 {
                return Err(ModelError::LayerFreq {
                    layer_freq: moe.layer_freq,
                    moe_candidates: self.n_layers - moe.dense_layers,
                });
            }
            if moe.has_dense_layers() && moe.dense_ffn == 0 {
                return Err(ModelError::Zero {
                    field: "moe_dense_ffn",
                });
            }
            if moe.experts == 0 || moe.top_k == 0 || moe.top_k > moe.experts {
                return Err(ModelError::Moe {
                    experts: moe.experts,
                    top_k: moe.top_k,
                });
            }
        }
        Ok(())
    }

    /// Size of one attention head.
    #[inline]
    pub fn head_dim(&self) -> u32 {
        self.head_dim
    }

    /// Width of the query projection and of the attention output, `n_heads · head_dim`: the
    /// hidden size unless the model widens its heads.
    #[inline]
    pub fn q_dim(&self) -> f64 {
        f64::from(self.n_heads) * f64::from(self.head_dim)
    }

    /// Width of the key (and, outside MLA, of the value) projection: `n_kv_heads · head_dim`.
    #[inline]
    pub fn kv_dim(&self) -> f64 {
        f64::from(self.n_kv_heads) * f64::from(self.head_dim())
    }

    /// Width of the values and of the attention output (the output projection's input):
    /// `n_heads · v_head_dim` under MLA, the query width otherwise.
    #[inline]
    pub fn out_dim(&self) -> f64 {
        match self.mla {
            Some(mla) => f64::from(self.n_heads) * f64::from(mla.v_head_dim),
            None => self.q_dim(),
        }
    }

    /// Width of the keys plus the values one of `tp` ranks' worth sums to over the ranks: twice
    /// [`Model::kv_dim_over_ranks`], or under MLA the decompressed keys and values of every head.
    #[inline]
    pub fn kv_pair_dim_over_ranks(&self, tp: u32) -> f64 {
        if self.mla.is_some() {
            self.kv_dim() + self.out_dim()
        } else {
            2.0 * self.kv_dim_over_ranks(tp)
        }
    }

    /// MLA's down projections (hidden to the query latent, and to the key/value latent plus the
    /// shared rotary key) and their latent norms: weights every tensor-parallel rank holds whole,
    /// as DeepSeek's and Megatron-Core's implementations keep them (`linear_kv_down_proj` is
    /// `duplicated`, `megatron/core/transformer/multi_latent_attention.py`); 0 without MLA.
    #[inline]
    pub fn mla_replicated_params(&self) -> f64 {
        self.mla.map_or(0.0, |mla| {
            let h = f64::from(self.hidden);
            let (q, kv) = (f64::from(mla.q_lora_rank), f64::from(mla.kv_lora_rank));
            h * q + q + h * (kv + f64::from(mla.qk_rope_head_dim)) + kv
        })
    }

    /// Width of the key (and of the value) projections of `tp` tensor-parallel ranks, summed over
    /// the ranks. Up to the KV heads, tp splits them and the sum is `kv_dim` (Megatron-Core
    /// divides `num_query_groups` by tp); past them, each rank holds a whole copy of the one KV
    /// head its query heads share, as BigCode's Megatron-LM does for multi-query attention
    /// (`megatron/model/transformer.py`, `ParallelAttention`: `key_value` is a plain, replicated
    /// linear layer), and the sum is `tp · head_dim`. One rank computes this over tp.
    #[inline]
    pub fn kv_dim_over_ranks(&self, tp: u32) -> f64 {
        let kv_heads = self.n_kv_heads.max(1);
        if tp <= kv_heads {
            self.kv_dim()
        } else {
            self.kv_dim() * f64::from(tp) / f64::from(kv_heads)
        }
    }

    /// Key/value parameters one of `tp` ranks holds beyond its 1/tp share of the layer, per layer:
    /// nothing while tp divides the KV heads, the replicated copy's excess past them.
    #[inline]
    pub fn kv_replica_params_per_rank(&self, tp: u32) -> f64 {
        let excess = self.kv_dim_per_rank(tp) - self.kv_dim() / f64::from(tp.max(1));
        // K and V weights (h × width each), plus their biases in GPT-style models.
        let per_width = 2.0 * f64::from(self.hidden) + if self.linear_bias { 2.0 } else { 0.0 };
        excess * per_width
    }

    /// Parameters of the attention projections of one layer: Q and O are h×q_dim (h×h unless the
    /// heads are widened), K and V are h×kv_dim. Under MLA (DeepSeek-V2, section 2.1): the down
    /// projections and latent norms, the query up projection (or h×q_dim without a query
    /// latent), the key/value up projection to every head's non-rotary key and value, and O.
    #[inline]
    pub fn attention_params(&self) -> f64 {
        let h = f64::from(self.hidden);
        match self.mla {
            Some(mla) => {
                let q_up = if mla.q_lora_rank > 0 {
                    f64::from(mla.q_lora_rank) * self.q_dim()
                } else {
                    h * self.q_dim()
                };
                let nope = f64::from(self.head_dim - mla.qk_rope_head_dim);
                let kv_up = f64::from(mla.kv_lora_rank)
                    * f64::from(self.n_heads)
                    * (nope + f64::from(mla.v_head_dim));
                self.mla_replicated_params() + q_up + kv_up + self.out_dim() * h
            }
            None => 2.0 * h * self.q_dim() + 2.0 * h * self.kv_dim(),
        }
    }

    /// Leading dense layers of an MoE model (0 for dense models and all-MoE ones).
    #[inline]
    pub fn dense_layers(&self) -> u32 {
        self.moe.map_or(0, |m| m.dense_layers)
    }

    /// Dense layers of an MoE model among the `count` layers from layer `start` on, leading and
    /// interleaved (0 for dense models and all-MoE ones).
    #[inline]
    pub fn dense_layers_in(&self, start: u32, count: u32) -> u32 {
        self.moe.map_or(0, |m| m.dense_in(start, count))
    }

    /// Every dense layer of an MoE model, leading and interleaved.
    #[inline]
    pub fn dense_layers_total(&self) -> u32 {
        self.dense_layers_in(0, self.n_layers)
    }

    /// The model of an MoE model's dense layers (leading or interleaved), for pricing them: the
    /// same attention with a dense FFN of `dense_ffn`; `None` without such layers. It has no id, so building it
    /// allocates nothing (the cost model calls it per estimate).
    pub fn dense_twin(&self) -> Option<Model> {
        let moe = self.moe.filter(Moe::has_dense_layers)?;
        Some(Model {
            id: String::new(),
            n_layers: self.n_layers,
            hidden: self.hidden,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
            ffn: moe.dense_ffn,
            vocab: self.vocab,
            max_seq_len: self.max_seq_len,
            ffn_act: self.ffn_act,
            tied_embeddings: self.tied_embeddings,
            positions: self.positions,
            linear_bias: self.linear_bias,
            dropout: self.dropout,
            moe: None,
            mla: self.mla,
        })
    }

    /// The FFN width one token runs through in a layer: its `top_k` routed experts of `ffn`
    /// each plus the shared experts beside them, or the dense `ffn`.
    #[inline]
    pub fn token_ffn_width(&self) -> f64 {
        self.moe.map_or(f64::from(self.ffn), |m| {
            f64::from(self.ffn) * f64::from(m.top_k) + f64::from(m.shared_ffn)
        })
    }

    /// Parameters of one expert's (or the dense) feed-forward block.
    #[inline]
    pub fn ffn_params_one(&self) -> f64 {
        self.ffn_act.n_matrices() as f64 * f64::from(self.hidden) * f64::from(self.ffn)
    }

    /// Biases of a GPT-style feed-forward block of inner width `width`: one per inner unit and
    /// input matrix, and the output projection's `hidden`.
    #[inline]
    fn ffn_bias_params(&self, width: u32) -> f64 {
        f64::from(width) * (self.ffn_act.n_matrices() as f64 - 1.0) + f64::from(self.hidden)
    }

    /// Width of the key (and of the value) projection one of `tp` ranks computes: its 1/tp share
    /// of the KV heads, or a whole replicated head past them.
    #[inline]
    pub fn kv_dim_per_rank(&self, tp: u32) -> f64 {
        self.kv_dim_over_ranks(tp) / f64::from(tp.max(1))
    }

    /// Weights of the shared experts' feed-forward block of one layer (0 without).
    #[inline]
    pub fn shared_ffn_params(&self) -> f64 {
        self.moe.map_or(0.0, |m| {
            self.ffn_act.n_matrices() as f64 * f64::from(self.hidden) * f64::from(m.shared_ffn)
        })
    }

    /// Parameter counts by part, from the architecture.
    pub fn params(&self) -> ParamCounts {
        let h = f64::from(self.hidden);
        let v = f64::from(self.vocab);
        let mut embedding = v * h;
        if self.positions == Positions::Learned {
            embedding += f64::from(self.max_seq_len) * h;
        }
        let output = if self.tied_embeddings { 0.0 } else { v * h };
        // Norms: LayerNorm has a weight and a bias, RMSNorm (bias-free models) only a weight.
        let norm = if self.linear_bias { 2.0 * h } else { h };
        let mut attention = self.attention_params();
        let mut ffn_one = self.ffn_params_one();
        if self.linear_bias {
            attention += self.q_dim() + 2.0 * self.kv_dim() + h;
            ffn_one += self.ffn_bias_params(self.ffn);
        }
        let (ffn_all, ffn_active) = match self.moe {
            Some(moe) => {
                let router = h * f64::from(moe.experts);
                let mut shared = self.shared_ffn_params();
                if self.linear_bias && moe.shared_ffn > 0 {
                    shared += self.ffn_bias_params(moe.shared_ffn);
                }
                (
                    ffn_one * f64::from(moe.experts) + router + shared,
                    ffn_one * f64::from(moe.top_k) + router + shared,
                )
            }
            None => (ffn_one, ffn_one),
        };
        let per_layer = attention + ffn_all + 2.0 * norm;
        let per_layer_active = attention + ffn_active + 2.0 * norm;
        // The dense layers of an MoE model, leading (DeepSeek's first_k_dense_replace) or
        // interleaved (Llama 4's interleave_moe_layer_step).
        let (k, dense_layer) = match self.moe.filter(Moe::has_dense_layers) {
            Some(m) => {
                let mut ffn = self.ffn_act.n_matrices() as f64 * h * f64::from(m.dense_ffn);
                if self.linear_bias {
                    ffn += self.ffn_bias_params(m.dense_ffn);
                }
                (
                    f64::from(self.dense_layers_total()),
                    attention + ffn + 2.0 * norm,
                )
            }
            None => (0.0, 0.0),
        };
        let l = f64::from(self.n_layers) - k;
        let layers = per_layer * l + dense_layer * k;
        let total = embedding + output + layers + norm;
        let active = embedding + output + per_layer_active * l + dense_layer * k + norm;
        ParamCounts {
            embedding,
            output,
            layers,
            per_layer,
            dense_layer,
            final_norm: norm,
            total,
            active,
        }
    }
}

pub mod testing {
    //! Fixtures for tests and benches: published architectures built in code.

    use super::{FfnActivation, Model, Positions};

    /// A GPT-3-family model (Brown et al. 2020, Table 2.1): GELU, FFN 4h, learned positions,
    /// tied embeddings, vocabulary 50257, context 2048.
    pub fn gpt3(id: &str, n_layers: u32, hidden: u32, n_heads: u32) -> Model {
        Model {
            id: id.into(),
            n_layers,
            hidden,
            n_heads,
            n_kv_heads: n_heads,
            head_dim: hidden / n_heads,
            ffn: 4 * hidden,
            vocab: 50257,
            max_seq_len: 2048,
            ffn_act: FfnActivation::Gelu,
            tied_embeddings: true,
            positions: Positions::Learned,
            linear_bias: true,
            dropout: true,
            moe: None,
            mla: None,
        }
    }

    /// GPT-3 175B (Brown et al. 2020, Table 2.1).
    pub fn gpt3_175b() -> Model {
        gpt3("gpt3-175b", 96, 12288, 96)
    }

    /// StarCoder 15.5B (Li et al. 2023, "StarCoder: may the source be with you!", section 5):
    /// multi-query attention (one KV head), 40 layers, hidden 6144, 48 heads, GELU FFN 4h,
    /// learned positions over its 8K context, vocabulary 49152, tied embeddings (GPTBigCode).
    pub fn starcoder_15b() -> Model {
        Model {
            id: "starcoder-15b".into(),
            n_kv_heads: 1,
            vocab: 49152,
            max_seq_len: 8192,
            dropout: false,
            ..gpt3("starcoder-15b", 40, 6144, 48)
        }
    }

    /// DeepSeek-V3's layer shapes (DeepSeek-AI 2024, arXiv:2412.19437, section 4.2; its
    /// `config.json`): hidden 7168, 128 heads under MLA (query latent 1536, key/value latent 512,
    /// query/key heads of 128 + 64 rotary, values 128), 256 routed experts of 2048 with 8 per
    /// token beside one 2048-wide shared expert, vocabulary 129280; all 61 layers MoE (the
    /// release makes the first 3 dense: [`deepseek_v3`]).
    pub fn deepseek_v3_moe_layers() -> Model {
        Model {
            id: "deepseek-v3-moe-layers".into(),
            n_layers: 61,
            hidden: 7168,
            n_heads: 128,
            n_kv_heads: 128,
            head_dim: 192,
            ffn: 2048,
            vocab: 129280,
            max_seq_len: 4096,
            ffn_act: FfnActivation::Swiglu,
            tied_embeddings: false,
            positions: Positions::Rotary,
            linear_bias: false,
            dropout: false,
            moe: Some(super::Moe {
                experts: 256,
                top_k: 8,
                shared_ffn: 2048,
                dense_layers: 0,
                dense_ffn: 0,
                layer_freq: 1,
            }),
            mla: Some(super::Mla {
                q_lora_rank: 1536,
                kv_lora_rank: 512,
                qk_rope_head_dim: 64,
                v_head_dim: 128,
            }),
        }
    }

    /// DeepSeek-V3 as released: [`deepseek_v3_moe_layers`] with its first 3 layers dense, of FFN
    /// 18432 (`first_k_dense_replace`, `intermediate_size` in its config.json).
    pub fn deepseek_v3() -> Model {
        let mut m = deepseek_v3_moe_layers();
        m.id = "deepseek-v3".into();
        m.moe = m.moe.map(|moe| super::Moe {
            dense_layers: 3,
            dense_ffn: 18432,
            layer_freq: 1,
            ..moe
        });
        m
    }

    /// Llama 4 Maverick (Meta 2025, its released config.json): 48 layers, every second one MoE
    /// (`interleave_moe_layer_step` 2) with 128 routed experts of 8192, 1 per token, and a
    /// shared one; the others dense with an FFN of 16384. 400.7B parameters (400B published).
    pub fn llama4_maverick() -> Model {
        Model {
            id: "llama4-maverick".into(),
            n_layers: 48,
            hidden: 5120,
            n_heads: 40,
            n_kv_heads: 8,
            head_dim: 128,
            ffn: 8192,
            vocab: 202048,
            max_seq_len: 8192,
            moe: Some(super::Moe {
                experts: 128,
                top_k: 1,
                shared_ffn: 8192,
                dense_layers: 0,
                dense_ffn: 16384,
                layer_freq: 2,
            }),
            ..llama3_70b()
        }
    }

    /// Qwen3-30B-A3B (Qwen Team 2025, Qwen3 Technical Report, Table 2): 48 MoE layers of 128
    /// experts with 8 routed, and 128-wide heads on a 2048 hidden size (32 query, 4 KV heads).
    pub fn qwen3_30b_a3b() -> Model {
        Model {
            id: "qwen3-30b-a3b".into(),
            n_layers: 48,
            hidden: 2048,
            n_heads: 32,
            n_kv_heads: 4,
            head_dim: 128,
            ffn: 768,
            vocab: 151936,
            max_seq_len: 4096,
            moe: Some(super::Moe {
                experts: 128,
                top_k: 8,
                shared_ffn: 0,
                dense_layers: 0,
                dense_ffn: 0,
                layer_freq: 1,
            }),
            mla: None,
            ..llama3_70b()
        }
    }

    /// Llama 3 70B (Meta, Llama 3 model card / params.json).
    pub fn llama3_70b() -> Model {
        Model {
            id: "llama3-70b".into(),
            n_layers: 80,
            hidden: 8192,
            n_heads: 64,
            n_kv_heads: 8,
            head_dim: 128,
            ffn: 28672,
            vocab: 128256,
            max_seq_len: 8192,
            ffn_act: FfnActivation::Swiglu,
            tied_embeddings: false,
            positions: Positions::Rotary,
            linear_bias: false,
            dropout: false,
            moe: None,
            mla: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn within(actual: f64, expected: f64, rel: f64) -> bool {
        ((actual - expected) / expected).abs() <= rel
    }

    #[test]
    fn interleaved_dense_layers_are_counted_where_they_stand() {
        let m = testing::llama4_maverick();
        assert_eq!(m.validate(), Ok(()));
        let moe = m.moe.unwrap();
        // Layers 1, 3, 5, ... are MoE (Hugging Face's Llama 4: range(step - 1, n, step)).
        assert_eq!(m.dense_layers_total(), 24);
        assert_eq!((moe.dense_in(0, 1), moe.dense_in(1, 1)), (1, 0));
        assert_eq!((moe.dense_in(0, 12), moe.dense_in(36, 12)), (6, 6));
        assert_eq!(moe.dense_in(3, 4), 2);
        // Leading dense layers first, then the pattern counted from the first layer after them.
        let both = Moe {
            dense_layers: 3,
            layer_freq: 3,
            ..moe
        };
        // Layers 0-2 dense; then 3, 4 dense, 5 MoE, 6, 7 dense, 8 MoE, ...
        assert_eq!(both.dense_in(0, 6), 5);
        assert_eq!(both.dense_in(5, 1), 0);
        assert_eq!(both.dense_in(0, 9), 7);
        let every = Moe {
            layer_freq: 1,
            ..both
        };
        assert_eq!((every.dense_in(0, 9), every.dense_in(2, 9)), (3, 1));
        // 24 MoE layers of 128 + 1 experts and 24 dense ones: 400.7B (400B published), 17.2B
        // active (17B published).
        let p = m.params();
        let attention = m.attention_params() + 2.0 * 5120.0;
        assert_eq!(p.dense_layer, attention + 3.0 * 5120.0 * 16384.0);
        assert_eq!(p.layers, 24.0 * p.per_layer + 24.0 * p.dense_layer);
        assert!((p.total / 1e9 - 400.71).abs() < 0.01, "{}", p.total);
        assert!((p.active / 1e9 - 17.18).abs() < 0.01, "{}", p.active);
        // FLOPs: half the layers multiply a dense FFN, half one expert and the shared one.
        let ffn_one = 3.0 * 5120.0 * 8192.0;
        let fwd = m.flops_per_token(8192).layers_matmul_fwd.get();
        let want = 2.0
            * (48.0 * m.attention_params()
                + 24.0 * (2.0 * ffn_one + 5120.0 * 128.0)
                + 24.0 * 3.0 * 5120.0 * 16384.0);
        assert!((fwd - want).abs() < 1e-6 * want, "{fwd} vs {want}");
    }

    #[test]
    fn a_layer_frequency_must_leave_an_moe_layer_and_dense_layers_their_width() {
        let mut m = testing::llama4_maverick();
        let moe = m.moe.unwrap();
        m.moe = Some(Moe {
            layer_freq: 0,
            ..moe
        });
        assert_eq!(
            m.validate(),
            Err(ModelError::Zero {
                field: "moe_layer_freq"
            })
        );
        m.moe = Some(Moe {
            layer_freq: 49,
            ..moe
        });
        assert_eq!(
            m.validate(),
            Err(ModelError::LayerFreq {
                layer_freq: 49,
                moe_candidates: 48
            })
        );
        m.moe = Some(Moe {
            layer_freq: 48,
            ..moe
        });
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.dense_layers_total(), 47);
        m.moe = Some(Moe {
            dense_ffn: 0,
            ..moe
        });
        assert_eq!(
            m.validate(),
            Err(ModelError::Zero {
                field: "moe_dense_ffn"
            })
        );
    }

    #[test]
    fn dense_leading_layers_replace_moe_layers_in_the_counts() {
        // DeepSeek-V3: 58 MoE layers and 3 dense ones of 3 × 7168 × 18432 FFN weights, 671.03B
        // in all (671B published), against 703.8B were every layer MoE.
        let all_moe = testing::deepseek_v3_moe_layers().params();
        let v3 = testing::deepseek_v3();
        assert_eq!(v3.validate(), Ok(()));
        let p = v3.params();
        let dense = v3.attention_params() + 3.0 * 7168.0 * 18432.0 + 2.0 * 7168.0;
        assert_eq!(p.dense_layer, dense);
        assert_eq!(p.layers, 58.0 * all_moe.per_layer + 3.0 * dense);
        assert!((p.total / 1e9 - 671.03).abs() < 0.01, "{}", p.total);
        assert!(
            (all_moe.total / 1e9 - 703.8).abs() < 0.1,
            "{}",
            all_moe.total
        );
        // FLOPs follow the same split: a dense layer multiplies its 3 × 7168 × 18432 FFN weights,
        // an MoE layer its 9 experts' (8 routed and the shared one) and the router.
        let f = |m: &Model| m.flops_per_token(4096).layers_matmul_fwd.get();
        let moe_ffn = 9.0 * 3.0 * 7168.0 * 2048.0 + 7168.0 * 256.0;
        let dense_ffn = 3.0 * 7168.0 * 18432.0;
        assert_eq!(
            f(&v3),
            f(&testing::deepseek_v3_moe_layers()) + 2.0 * 3.0 * (dense_ffn - moe_ffn)
        );
        // The dense layers' twin prices them; no MoE layer left is refused.
        assert_eq!(v3.dense_twin().map(|t| (t.ffn, t.moe)), Some((18432, None)));
        let all_dense = Model {
            moe: v3.moe.map(|m| Moe {
                dense_layers: 61,
                ..m
            }),
            ..v3.clone()
        };
        assert!(matches!(
            all_dense.validate(),
            Err(ModelError::DenseLayers { .. })
        ));
    }

    #[test]
    fn multi_head_latent_attention_counts_its_latents_and_narrower_values() {
        // DeepSeek-V3's attention per layer: the down projections 7168×1536 and 7168×(512 + 64)
        // with their latent norms (1536 + 512), the query up projection 1536×128·192, the
        // key/value up projection 512×128·(128 + 128) and the output 128·128×7168.
        let m = testing::deepseek_v3_moe_layers();
        assert_eq!(m.validate(), Ok(()));
        let down = 7168.0 * 1536.0 + 1536.0 + 7168.0 * 576.0 + 512.0;
        assert_eq!(m.mla_replicated_params(), down);
        let expected = down + 1536.0 * 128.0 * 192.0 + 512.0 * 128.0 * 256.0 + 16384.0 * 7168.0;
        assert_eq!(m.attention_params(), expected);
        assert_eq!(expected, 187_107_328.0);
        // Queries and keys are 128·192 wide, values and the attention output 128·128.
        assert_eq!((m.q_dim(), m.out_dim()), (24576.0, 16384.0));
        assert_eq!(m.kv_pair_dim_over_ranks(8), 24576.0 + 16384.0);
        // Scores over the query/key width and values over the value width: 2·s·(24576 + 16384)
        // per token and layer.
        let f = m.flops_per_token(4096);
        assert_eq!(f.attention_fwd.get(), 2.0 * 61.0 * 40960.0 * 4096.0);
        // Outside MLA nothing changes: values as wide as queries, no latents.
        let plain = testing::llama3_70b();
        assert_eq!(plain.out_dim(), plain.q_dim());
        assert_eq!(plain.kv_pair_dim_over_ranks(8), 2.0 * plain.kv_dim());
        assert_eq!(plain.mla_replicated_params(), 0.0);
        // Latent attention has a key and a value per head: grouped heads are refused.
        let grouped = Model {
            n_kv_heads: 8,
            ..testing::deepseek_v3_moe_layers()
        };
        assert!(matches!(
            grouped.validate(),
            Err(ModelError::MlaKvHeads { .. })
        ));
    }

    #[test]
    fn gpt3_has_175b_parameters() {
        let p = gpt3_175b().params();
        assert!(within(p.total, 175e9, 0.01), "{}", p.total);
    }

    #[test]
    fn starcoder_has_15_5b_parameters() {
        let p = starcoder_15b().params();
        assert!(within(p.total, 15.5e9, 0.01), "{}", p.total);
    }

    #[test]
    fn kv_heads_split_up_to_their_count_and_replicate_past_it() {
        // StarCoder's one KV head (head_dim 128) on tp 4: every rank computes the whole head, so
        // the ranks' K widths sum to 4 × 128, and each rank holds 3/4 of a head beyond its 1/4
        // share: 96 columns of K and of V (6144 wide, plus a bias each) per layer.
        let sc = starcoder_15b();
        assert_eq!(sc.kv_dim_over_ranks(1), 128.0);
        assert_eq!(sc.kv_dim_over_ranks(4), 512.0);
        assert_eq!(sc.kv_replica_params_per_rank(1), 0.0);
        assert_eq!(
            sc.kv_replica_params_per_rank(4),
            96.0 * (2.0 * 6144.0 + 2.0)
        );
        // Llama 3 70B's 8 KV heads split over tp up to 8 (nothing replicated); at tp 16 each head
        // sits on two ranks: 64 columns each of K and V (8192 wide, no bias) beyond the share.
        let llama = llama3_70b();
        for tp in [1, 2, 4, 8] {
            assert_eq!(llama.kv_dim_over_ranks(tp), 1024.0);
            assert_eq!(llama.kv_replica_params_per_rank(tp), 0.0);
        }
        assert_eq!(llama.kv_dim_over_ranks(16), 2048.0);
        assert_eq!(llama.kv_replica_params_per_rank(16), 64.0 * 2.0 * 8192.0);
    }

    #[test]
    fn qwen3_heads_are_wider_than_hidden_over_heads() {
        // Qwen3-30B-A3B (Qwen3 Technical Report, Table 2): 32 query heads of 128 on hidden 2048,
        // so Q and O are 2048 × 4096 and K, V 2048 × 512; read as hidden / heads (64-wide heads)
        // every layer would lose 2 × 2048 × 2048 + 2 × 2048 × 256 = 9.4M attention weights.
        let qwen = qwen3_30b_a3b();
        assert_eq!(qwen.q_dim(), 4096.0);
        assert_eq!(qwen.kv_dim(), 512.0);
        assert_eq!(
            qwen.attention_params(),
            2.0 * 2048.0 * 4096.0 + 2.0 * 2048.0 * 512.0
        );
        let narrow = Model {
            head_dim: 64,
            ..qwen.clone()
        };
        let lost = qwen.params().per_layer - narrow.params().per_layer;
        assert_eq!(lost, 2.0 * 2048.0 * 2048.0 + 2.0 * 2048.0 * 256.0);
        // 30.5B in all as published, 3.3B active.
        assert!(within(qwen.params().total, 30.5e9, 0.005));
        assert!(within(qwen.params().active, 3.3e9, 0.02));
        // Attention scores and values scale with the query width: 4·l·(32·128)·s per token.
        let f = qwen.flops_per_token(4096).attention_fwd.get();
        assert_eq!(f, 4.0 * 48.0 * 4096.0 * 4096.0);
    }

    #[test]
    fn llama3_70b_has_70_6b_parameters() {
        let p = llama3_70b().params();
        assert!(within(p.total, 70.6e9, 0.01), "{}", p.total);
    }

    #[test]
    fn moe_activates_top_k_experts() {
        let mut m = llama3_70b();
        m.moe = Some(Moe {
            experts: 8,
            top_k: 2,
            shared_ffn: 0,
            dense_layers: 0,
            dense_ffn: 0,
            layer_freq: 1,
        });
        let p = m.params();
        assert!(p.total > 3.0 * p.active);
        assert!(m.validate().is_ok());
        m.moe = Some(Moe {
            experts: 2,
            top_k: 3,
            shared_ffn: 0,
            dense_layers: 0,
            dense_ffn: 0,
            layer_freq: 1,
        });
        assert!(m.validate().is_err());
    }

    #[test]
    fn validation_rejects_bad_heads() {
        assert!(matches!(
            Model::default_head_dim(12288, 7),
            Err(ModelError::HeadsDoNotDivideHidden { .. })
        ));
        assert_eq!(Model::default_head_dim(12288, 96), Ok(128));
        let mut m = gpt3_175b();
        m.head_dim = 0;
        assert!(matches!(
            m.validate(),
            Err(ModelError::Zero { field: "head_dim" })
        ));
        let mut m = llama3_70b();
        m.n_kv_heads = 3;
        assert!(matches!(m.validate(), Err(ModelError::KvHeads { .. })));
        m.n_kv_heads = 0;
        assert!(matches!(
            m.validate(),
            Err(ModelError::Zero {
                field: "n_kv_heads"
            })
        ));
    }
}
