//! FLOPs per trained token.
//!
//! Narayanan et al. 2021 (SC21), section 5.1: one iteration costs
//! `72·B·s·l·h²·(1 + s/6h + V/12lh)` FLOPs without recomputation, i.e. per token
//! `3 × (2·(matmul weights) + 4·l·h·s + 2·h·V)` for a GPT layer with ffn = 4h. Here the matmul
//! weights come from the actual shapes (GQA's narrower K/V, SwiGLU's third matrix, MoE's top-k
//! experts), so the same count covers Llama-style and MoE models.

use crate::{Model, Recompute};
use trainplan_units::Flops;

/// Forward FLOPs of one token, by part, and the training totals derived from them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlopsPerToken {
    /// Forward matrix products with weights in the transformer layers (2 FLOPs per weight).
    pub layers_matmul_fwd: Flops,
    /// Forward attention scores and weighted values: `4·l·h·s` (PaLM appendix B counts the full,
    /// unmasked square).
    pub attention_fwd: Flops,
    /// Forward output projection to the vocabulary: `2·h·V`.
    pub logits_fwd: Flops,
}

impl FlopsPerToken {
    /// Forward FLOPs per token.
    #[inline]
    pub fn forward(&self) -> Flops {
        self.layers_matmul_fwd + self.attention_fwd + self.logits_fwd
    }

    /// Model FLOPs per token for training: forward plus a backward of twice the forward
    /// (Narayanan et al. 2021, section 5.1). This is the numerator of MFU.
    #[inline]
    pub fn model(&self) -> Flops {
        self.forward() * 3.0
    }

    /// Hardware FLOPs per token: model FLOPs plus what recomputation repeats. Full recomputation
    /// reruns each layer's forward (`96·B·s·l·h²·…`, Narayanan et al. 2021 eq. 3); selective
    /// recomputation reruns only the attention scores (Korthikanti et al. 2022, section 4.1).
    #[inline]
    pub fn hardware(&self, recompute: Recompute) -> Flops {
        match recompute {
            Recompute::None => self.model(),
            Recompute::Selective => self.model() + self.attention_fwd,
            Recompute::Full => self.model() + self.layers_matmul_fwd + self.attention_fwd,
        }
    }
}

impl Model {
    /// FLOPs per token at sequence length `seq_len`.
    pub fn flops_per_token(&self, seq_len: u32) -> FlopsPerToken {
        let l = f64::from(self.n_layers);
        let h = f64::from(self.hidden);
        let s = f64::from(seq_len);
        // Weights a token multiplies in the layers: attention projections plus active FFN experts.
        let ffn_active = match self.moe {
            Some(moe) => {
                self.ffn_params_one() * f64::from(moe.top_k)
                    + h * f64::from(moe.experts)
                    + self.shared_ffn_params()
            }
            None => self.ffn_params_one(),
        };
        // Dense layers, leading or interleaved, run their own FFN (DeepSeek's
        // first_k_dense_replace, Llama 4's interleave_moe_layer_step).
        let k = f64::from(self.dense_layers_total());
        let dense_ffn = self.moe.map_or(0.0, |m| {
            self.ffn_act.n_matrices() as f64 * h * f64::from(m.dense_ffn)
        });
        let matmul_weights = (l - k) * (self.attention_params() + ffn_active)
            + k * (self.attention_params() + dense_ffn);
        FlopsPerToken {
            layers_matmul_fwd: Flops(2.0 * matmul_weights),
            // Scores (Q·Kᵀ over the query/key width) and values (over the value width) on every
            // head: 2·s·(q_dim + out_dim) per token and layer, 4·s·n_heads·head_dim outside MLA.
            attention_fwd: Flops(2.0 * l * (self.q_dim() + self.out_dim()) * s),
            logits_fwd: Flops(2.0 * h * f64::from(self.vocab)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::gpt3_175b;
    use crate::Recompute;

    #[test]
    fn matches_narayanan_formula_for_gpt3() {
        let m = gpt3_175b();
        let (l, h, s, v) = (96.0_f64, 12288.0_f64, 2048.0_f64, 50257.0_f64);
        let per_token = 72.0 * l * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l * h));
        let f = m.flops_per_token(2048);
        let rel = (f.model().get() - per_token) / per_token;
        assert!(rel.abs() < 1e-9, "{rel}");
        let with_recompute = 96.0 * l * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l * h));
        let rel = (f.hardware(Recompute::Full).get() - with_recompute) / with_recompute;
        assert!(rel.abs() < 1e-9, "{rel}");
    }

    #[test]
    fn selective_adds_only_attention() {
        let f = gpt3_175b().flops_per_token(2048);
        let extra = f.hardware(Recompute::Selective) - f.model();
        assert_eq!(extra, f.attention_fwd);
    }
}
