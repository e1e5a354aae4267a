//! Activation bytes kept for the backward pass.
//!
//! Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
//! section 4 and Table 2: one layer keeps `s·b·h·(34 + 5·a·s/h)` bytes in 16-bit training, of
//! which the layer-norm inputs, dropout masks and block inputs (`10·s·b·h`) are replicated across
//! tensor-parallel ranks unless sequence parallelism shards them; the `5·a·s²·b` attention-score
//! term disappears with selective recomputation or a fused (flash) attention kernel; full
//! recomputation keeps only the `2·s·b·h` layer input. The 34 is split below by tensor so that
//! GQA (narrower K and V), SwiGLU (three FFN matrices) and dropout-free models follow from the
//! shapes.

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
        // Replicated without SP: two layer-norm inputs (4sbh), the attention and MLP block inputs
        // (4sbh) and two residual dropout masks (2sbh): Korthikanti's 10·s·b·h.
        let replicated = sbh * (4.0 + 4.0 + 2.0 * mask);
        // Sharded over t: Q, K, V (GQA narrows K and V), the projection input, and the FFN internals.
        let kv = 2.0 * s * b * self.kv_dim();
        let attention = 2.0 * sbh + 2.0 * kv + 2.0 * sbh;
        let f = f64::from(self.ffn);
        let k = self.moe.map_or(1.0, |m| f64::from(m.top_k));
        let ffn = match self.ffn_act {
            // GELU input and output (Korthikanti: 8sbh + 8sbh at ffn = 4h).
            FfnActivation::Gelu => 4.0 * s * b * f,
            // The fused gate/up output (SiLU and the product are recomputed from it in backward,
            // as Megatron-Core's fused SwiGLU does) and the product feeding the down projection.
            FfnActivation::Swiglu => 6.0 * s * b * f,
        } * k;
        let mut sharded = attention + ffn;
        if !cfg.flash_attention && cfg.recompute == Recompute::None {
            // Softmax output, its dropout mask and dropout output: 5·a·s²·b.
            let a = f64::from(self.n_heads);
            let per = if self.dropout { 5.0 } else { 2.0 };
            sharded += per * a * s * s * b;
        }
        Bytes(replicated / replicated_div + sharded / t)
    }

    /// Bytes of the output layer and loss on the last pipeline stage, sharded over t: the 16-bit
    /// logits and the fp32 log-softmax kept for backward (2 + 4 bytes per logit, as Megatron's
    /// vocab-parallel cross entropy keeps them).
    #[inline]
    pub fn logits_bytes(&self, seq_len: u32, micro_batch: u32, tp: u32) -> Bytes {
        let sbv = f64::from(seq_len) * f64::from(micro_batch) * f64::from(self.vocab);
        Bytes(sbv * (2.0 + 4.0) / f64::from(tp.max(1)))
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
        }
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
