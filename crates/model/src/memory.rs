//! Activation bytes kept for the backward pass.
//!
//! Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
//! section 4 and Table 2: one layer keeps `s·b·h·(34 + 5·a·s/h)` bytes in 16-bit training, of
//! which the layer-norm inputs, dropout masks and block inputs (`10·s·b·h`) are replicated across
//! tensor-parallel ranks unless sequence parallelism shards them; the `5·a·s²·b` attention-score
//! term disappears with selective recomputation or a fused (flash) attention kernel; full
//! recomputation keeps only the `2·s·b·h` layer input. The 34 is split below by tensor so that
//! GQA (narrower K and V), SwiGLU (three FFN matrices), dropout-free models and fp8 linear layers
//! (which keep their inputs as 1-byte casts) follow from the shapes.

use crate::{FfnActivation, Model};
use trainplan_units::Bytes;

/// Activation recomputation (checkpointing) mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recompute {
    /// Keep every activation.
    None,
    /// Recompute the attention scores only (Korthikanti et al. 2022, section 4.1).
    Selective,
    /// Keep only each layer's input and rerun its forward in backward.
    Full,
}

impl Recompute {
    /// Every mode, in a fixed order.
    pub const ALL: [Recompute; 3] = [Recompute::None, Recompute::Selective, Recompute::Full];

    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Recompute::None => "none",
            Recompute::Selective => "selective",
            Recompute::Full => "full",
        }
    }
}

/// How the loss over the vocabulary is computed, which sets how many bytes per logit the output
/// layer and loss hold at their peak on the last pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CrossEntropy {
    /// Megatron's vocab-parallel cross entropy on fp32-cast logits (`tensor_parallel/
    /// cross_entropy.py`): the 16-bit logits and the fp32 softmax, made in place and kept for
    /// backward, which overwrites it with the gradient. 2 + 4 bytes per logit.
    VocabParallel,
    /// PyTorch's eager `F.cross_entropy(logits.float(), labels)` (torchtitan before its compiled
    /// loss, plain FSDP scripts): in backward the saved fp32 log-softmax, the fp32 gradient
    /// arriving from the NLL loss and the fp32 gradient log-softmax's backward makes are alive at
    /// once, 4 + 4 + 4 bytes per logit, the 16-bit logits freed before backward.
    Fp32Eager,
    /// A fused kernel (flash-attn's `CrossEntropyLoss`, the default of llm-foundry's MPT; a
    /// `torch.compile`d loss, torchtitan's since April 2025): the 16-bit logits kept for backward
    /// and their 16-bit gradient, 2 + 2 bytes per logit.
    Fused,
}

impl CrossEntropy {
    /// Every implementation, in a fixed order.
    pub const ALL: [CrossEntropy; 3] = [
        CrossEntropy::VocabParallel,
        CrossEntropy::Fp32Eager,
        CrossEntropy::Fused,
    ];

    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            CrossEntropy::VocabParallel => "vocab_parallel",
            CrossEntropy::Fp32Eager => "fp32_eager",
            CrossEntropy::Fused => "fused",
        }
    }

    /// The implementation named `name` in a file, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Bytes per logit alive at the loss's peak (see each variant).
    #[inline]
    pub fn bytes_per_logit(self) -> f64 {
        match self {
            CrossEntropy::VocabParallel => 2.0 + 4.0,
            CrossEntropy::Fp32Eager => 4.0 + 4.0 + 4.0,
            CrossEntropy::Fused => 2.0 + 2.0,
        }
    }
}

/// How one layer's activations are laid out on a GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationConfig {
    /// Sequence length s (per context-parallel rank).
    pub seq_len: u32,
    /// Micro-batch b in sequences.
    pub micro_batch: u32,
    /// Tensor-parallel degree t.
    pub tp: u32,
    /// Sequence parallelism shards the replicated parts over t.
    pub sequence_parallel: bool,
    /// Recomputation mode.
    pub recompute: Recompute,
    /// A fused attention kernel (FlashAttention) that never stores the s×s scores.
    pub flash_attention: bool,
    /// fp8 linear layers keep each layer input for the weight-gradient product as its 1-byte fp8
    /// cast, not in 16 bits (Transformer Engine, `pytorch/module/linear.py`, `_Linear.forward`
    /// saves the cast `inputmat`).
    pub fp8_linear_inputs: bool,
}

impl Model {
    /// Bytes of activations one layer keeps for backward, per GPU, for one micro-batch.
    #[inline]
    pub fn activation_bytes_per_layer(&self, cfg: &ActivationConfig) -> Bytes {
        let s = f64::from(cfg.seq_len);
        let b = f64::from(cfg.micro_batch);
        let h = f64::from(self.hidden);
        let t = f64::from(cfg.tp.max(1));
        let sbh = s * b * h;
        let replicated_div = if cfg.sequence_parallel { t } else { 1.0 };
        if cfg.recompute == Recompute::Full {
            // Only the layer input (2·s·b·h), sharded over t under sequence parallelism.
            return Bytes(2.0 * sbh / replicated_div);
        }
        let mask = if self.dropout { 1.0 } else { 0.0 };
        // Bytes of a linear layer's saved input: 2, or its 1-byte cast under fp8.
        let lin = if cfg.fp8_linear_inputs { 1.0 } else { 2.0 };
        // Replicated without SP: two layer-norm inputs (4sbh), the attention and MLP block inputs
        // (4sbh, inputs of the QKV and first FFN products) and two residual dropout masks (2sbh):
        // Korthikanti's 10·s·b·h.
        let replicated = sbh * (4.0 + 2.0 * lin + 2.0 * mask);
        // Sharded over t: Q, K, V (GQA narrows K and V), the projection input, and the FFN internals.
        // K and V shard only up to the KV heads; past them each rank keeps its replicated head.
        let kv = s * b * self.kv_pair_dim_over_ranks(cfg.tp);
        // The projection's input is the attention output. A fused kernel keeps that output in 16
        // bits for its own backward, so an fp8 projection adds its cast beside it; an unfused
        // backward never reads it, so only the projection's copy is kept.
        // Q and the attention output are n_heads·head_dim wide (the hidden size unless the heads
        // are widened).
        let sbq = s * b * self.q_dim();
        // Under MLA the attention output is the value width (n_heads·v_head_dim).
        let projection = match (cfg.fp8_linear_inputs, cfg.flash_attention) {
            (false, _) => 2.0,
            (true, true) => 2.0 + 1.0,
            (true, false) => 1.0,
        } * s
            * b
            * self.out_dim();
        let attention = 2.0 * sbq + 2.0 * kv + projection;
        // Every token runs top_k routed experts of width ffn, and the shared experts beside them.
        let f = self.token_ffn_width();
        let ffn = match self.ffn_act {
            // GELU input and output, the latter the down projection's input (Korthikanti: 8sbh +
            // 8sbh at ffn = 4h).
            FfnActivation::Gelu => (2.0 + lin) * s * b * f,
            // The fused gate/up output (SiLU and the product are recomputed from it in backward,
            // as Megatron-Core's fused SwiGLU does) and the product feeding the down projection.
            FfnActivation::Swiglu => (4.0 + lin) * s * b * f,
        };
        let mut sharded = attention + ffn;
        if !cfg.flash_attention && cfg.recompute == Recompute::None {
            // Softmax output, its dropout mask and dropout output: 5·a·s²·b.
            let a = f64::from(self.n_heads);
            let per = if self.dropout { 5.0 } else { 2.0 };
            sharded += per * a * s * s * b;
        }
        Bytes(replicated / replicated_div + sharded / t + self.mla_latent_bytes(s * b))
    }

    /// Bytes MLA keeps per layer for its latents on every tensor-parallel rank: each rank
    /// compresses the whole gathered sequence, and keeps each latent's norm input and the normed
    /// latent its up projection reads, 16-bit (DeepSeek-V2, section 2.1); 0 without MLA.
    #[inline]
    fn mla_latent_bytes(&self, tokens: f64) -> f64 {
        self.mla.map_or(0.0, |m| {
            let width = f64::from(m.q_lora_rank) + f64::from(m.kv_lora_rank);
            2.0 * 2.0 * tokens * width
        })
    }

    /// Bytes one layer keeps for backward under PyTorch's op-level selective checkpointing
    /// (torchtitan `selective_ac_option = "op"`, `torchtitan/models/llama3/infra/parallelize.py`,
    /// `_op_sac_save_list`): the checkpoint keeps the layer input; inside it the outputs of the
    /// fused attention and of every other matrix product in execution order (the 1st, 3rd, ...:
    /// Q, V, the first FFN input product and, for SwiGLU, the down product) are saved, the rest
    /// recomputed. Row-parallel products save their unreduced `s·b·h` output on every rank.
    #[inline]
    pub fn op_selective_activation_bytes_per_layer(&self, cfg: &ActivationConfig) -> Bytes {
        let sb = f64::from(cfg.seq_len) * f64::from(cfg.micro_batch);
        let h = f64::from(self.hidden);
        let t = f64::from(cfg.tp.max(1));
        let replicated_div = if cfg.sequence_parallel { t } else { 1.0 };
        let input = 2.0 * sb * h / replicated_div;
        let q = self.q_dim() / t;
        // V's width (under MLA the values are n_heads·v_head_dim wide) and the attention output.
        let kv = (self.kv_pair_dim_over_ranks(cfg.tp) - self.kv_dim_over_ranks(cfg.tp)) / t;
        let out = self.out_dim() / t;
        let f = self.token_ffn_width() / t;
        // Expert runs per token whose down products each leave an h-wide output.
        let runs = self.moe.map_or(1.0, |m| {
            f64::from(m.top_k) + if m.shared_ffn > 0 { 1.0 } else { 0.0 }
        });
        // Widths saved, per token: Q and V, the fused attention's output, then the FFN.
        let ffn_saved = match self.ffn_act {
            // up (saved), down (recomputed).
            FfnActivation::Gelu => f,
            // gate (saved), up (recomputed), down (saved, one h-wide output per expert run).
            FfnActivation::Swiglu => f + h * runs,
        };
        Bytes(input + 2.0 * sb * (q + kv + out + ffn_saved) + self.mla_latent_bytes(sb))
    }

    /// Bytes of the output layer and loss at their peak on the last pipeline stage, sharded over
    /// t (vocab-parallel logits): s·b·V/t logits at the bytes per logit `loss` keeps.
    #[inline]
    pub fn logits_bytes(
        &self,
        seq_len: u32,
        micro_batch: u32,
        tp: u32,
        loss: CrossEntropy,
    ) -> Bytes {
        let sbv = f64::from(seq_len) * f64::from(micro_batch) * f64::from(self.vocab);
        Bytes(sbv * loss.bytes_per_logit() / f64::from(tp.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::gpt3_175b;

    fn cfg(tp: u32, sp: bool, recompute: Recompute) -> ActivationConfig {
        ActivationConfig {
            seq_len: 2048,
            micro_batch: 1,
            tp,
            sequence_parallel: sp,
            recompute,
            flash_attention: false,
            fp8_linear_inputs: false,
        }
    }

    #[test]
    fn latent_attention_keeps_its_latents_on_every_rank_and_narrower_values() {
        // DeepSeek-V3 against the same layer with plain 192-wide heads: values and the attention
        // output are 128·128 instead of 128·192 (2 bytes each, kept twice: V and the projection
        // input), and every rank keeps the two latents (1536 + 512) twice, norm input and output.
        let mla = crate::testing::deepseek_v3_moe_layers();
        let plain = Model {
            mla: None,
            ..mla.clone()
        };
        for tp in [1u32, 8] {
            let c = ActivationConfig {
                flash_attention: true,
                ..cfg(tp, tp > 1, Recompute::Selective)
            };
            let s = 2048.0;
            let diff = mla.activation_bytes_per_layer(&c).get()
                - plain.activation_bytes_per_layer(&c).get();
            let expected =
                4.0 * s * (16384.0 - 24576.0) / f64::from(tp) + 4.0 * s * (1536.0 + 512.0);
            assert!(
                (diff - expected).abs() < 1e-6,
                "tp {tp}: {diff} vs {expected}"
            );
        }
    }

    #[test]
    fn op_level_selective_checkpointing_keeps_every_other_product() {
        // Llama 3 70B (h 8192, 64 query heads and 8 KV heads of 128, SwiGLU FFN 28672) at tp 1,
        // 2048 tokens: the 16-bit layer input, Q (8192), V (1024), the attention output (8192),
        // the gate product (28672) and the down product (8192) per token.
        let m = crate::testing::llama3_70b();
        let c = ActivationConfig {
            flash_attention: true,
            ..cfg(1, false, Recompute::Selective)
        };
        let per_token = 2.0 * (8192.0 + 8192.0 + 1024.0 + 8192.0 + 28672.0 + 8192.0);
        let got = m.op_selective_activation_bytes_per_layer(&c).get();
        assert!((got - 2048.0 * per_token).abs() < 1e-6, "{got}");
        // Between full recomputation (the input only) and keeping everything.
        let full = m
            .activation_bytes_per_layer(&cfg(1, false, Recompute::Full))
            .get();
        let none = m
            .activation_bytes_per_layer(&ActivationConfig {
                recompute: Recompute::None,
                ..c
            })
            .get();
        assert!(full < got && got < none, "{full} < {got} < {none}");
        // At tp 8 with sequence parallelism the input shards 8 ways, the column-parallel outputs
        // split, and the down product keeps its unreduced 8192-wide output.
        let c8 = ActivationConfig {
            flash_attention: true,
            ..cfg(8, true, Recompute::Selective)
        };
        let per_token = 2.0 * (8192.0 / 8.0 + (8192.0 + 1024.0 + 8192.0 + 28672.0) / 8.0 + 8192.0);
        let got = m.op_selective_activation_bytes_per_layer(&c8).get();
        assert!((got - 2048.0 * per_token).abs() < 1e-6, "{got}");
    }

    #[test]
    fn fp8_linear_layers_keep_their_inputs_in_one_byte() {
        // GPT-3 175B, t = 8 without SP: the QKV and first-FFN inputs (replicated, 2sbh each) and
        // the GELU output feeding the down projection (2·s·f/t, f = 4h) halve; with a fused
        // attention kernel the projection keeps its 1-byte cast beside the 16-bit attention output
        // (+sbh/t), without one the cast replaces it (-sbh/t).
        let m = gpt3_175b();
        let (s, h, t) = (2048.0, 12288.0, 8.0);
        let sbh = s * h;
        for (flash, projection) in [(true, 1.0), (false, -1.0)] {
            let bf16 = ActivationConfig {
                flash_attention: flash,
                ..cfg(8, false, Recompute::Selective)
            };
            let fp8 = ActivationConfig {
                fp8_linear_inputs: true,
                ..bf16
            };
            let diff = m.activation_bytes_per_layer(&fp8).get()
                - m.activation_bytes_per_layer(&bf16).get();
            let expected = -2.0 * sbh + (projection - 4.0) * sbh / t;
            assert!((diff - expected).abs() < 1e-6 * sbh, "{diff} vs {expected}");
        }
        // Full recomputation keeps only the 16-bit layer input either way.
        let full = cfg(8, false, Recompute::Full);
        assert_eq!(
            m.activation_bytes_per_layer(&full),
            m.activation_bytes_per_layer(&ActivationConfig {
                fp8_linear_inputs: true,
                ..full
            })
        );
    }

    #[test]
    fn korthikanti_no_parallelism() {
        // s·b·h·(34 + 5·a·s/h) for GPT-3 175B, s = 2048, b = 1.
        let m = gpt3_175b();
        let (s, h, a) = (2048.0, 12288.0, 96.0);
        let expected = s * h * (34.0 + 5.0 * a * s / h);
        let got = m
            .activation_bytes_per_layer(&cfg(1, false, Recompute::None))
            .get();
        assert!(
            (got - expected).abs() / expected < 1e-12,
            "{got} vs {expected}"
        );
    }

    #[test]
    fn korthikanti_tensor_parallel_without_sp() {
        // s·b·h·(10 + 24/t + 5·a·s/(h·t)), Table 2.
        let m = gpt3_175b();
        let (s, h, a, t) = (2048.0, 12288.0, 96.0, 8.0);
        let expected = s * h * (10.0 + 24.0 / t + 5.0 * a * s / (h * t));
        let got = m
            .activation_bytes_per_layer(&cfg(8, false, Recompute::None))
            .get();
        assert!((got - expected).abs() / expected < 1e-12);
    }

    #[test]
    fn korthikanti_gpt3_tp8_selective_with_sp() {
        // Table 2, sequence parallelism + selective recomputation: s·b·h·34/t. For GPT-3 175B at
        // t = 8, s = 2048, b = 1: 2048·12288·34/8 = 106.95 MB per layer, ~10.3 GB over 96 layers.
        let m = gpt3_175b();
        let got = m
            .activation_bytes_per_layer(&cfg(8, true, Recompute::Selective))
            .get();
        let expected = 2048.0 * 12288.0 * 34.0 / 8.0;
        assert!((got - expected).abs() < 1.0, "{got}");
        assert!((got * 96.0 / 1e9 - 10.27).abs() < 0.01);
    }

    #[test]
    fn widened_heads_keep_wider_queries_and_attention_outputs() {
        // Heads twice hidden / n_heads wide double Q, K, V (multi-head: the 96 KV heads widen
        // too) and the attention output (the projection's input), each kept in 16 bits:
        // 2·s·b·Δ for Q, 4·s·b·Δ for K and V and 2·s·b·Δ for the output, while the layer's input
        // and FFN keep their hidden-size shapes.
        let narrow = gpt3_175b();
        let wide = Model {
            head_dim: 256,
            ..narrow.clone()
        };
        let c = ActivationConfig {
            flash_attention: true,
            ..cfg(1, false, Recompute::None)
        };
        let extra =
            wide.activation_bytes_per_layer(&c).get() - narrow.activation_bytes_per_layer(&c).get();
        let dq = 96.0 * 256.0 - 12288.0;
        assert_eq!(extra, 8.0 * 2048.0 * dq);
        // Full recomputation keeps only the hidden-wide layer input either way.
        let full = cfg(1, false, Recompute::Full);
        assert_eq!(
            wide.activation_bytes_per_layer(&full),
            narrow.activation_bytes_per_layer(&full)
        );
    }

    #[test]
    fn full_recompute_keeps_layer_input() {
        let m = gpt3_175b();
        let got = m
            .activation_bytes_per_layer(&cfg(8, true, Recompute::Full))
            .get();
        assert_eq!(got, 2.0 * 2048.0 * 12288.0 / 8.0);
        let got = m
            .activation_bytes_per_layer(&cfg(8, false, Recompute::Full))
            .get();
        assert_eq!(got, 2.0 * 2048.0 * 12288.0);
    }

    #[test]
    fn flash_attention_drops_the_score_term() {
        let m = gpt3_175b();
        let mut c = cfg(1, false, Recompute::None);
        let plain = m.activation_bytes_per_layer(&c);
        c.flash_attention = true;
        let flash = m.activation_bytes_per_layer(&c);
        c.flash_attention = false;
        c.recompute = Recompute::Selective;
        let selective = m.activation_bytes_per_layer(&c);
        assert_eq!(flash, selective);
        assert!(plain.get() > flash.get());
    }
}
