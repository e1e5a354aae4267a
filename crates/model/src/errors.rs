//! Errors of the model crate.

use thiserror::Error;

/// An architecture that cannot exist.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// A count that must be positive is zero.
    #[error("`{field}` must be at least 1, found 0")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// Heads do not divide the hidden size.
    #[error(
        "n_heads = {n_heads} does not divide hidden = {hidden}; pick a head count that divides it, or give head_dim for a model whose heads are not hidden / n_heads wide"
    )]
    HeadsDoNotDivideHidden {
        /// Hidden size.
        hidden: u32,
        /// Heads.
        n_heads: u32,
    },
    /// KV heads do not divide the query heads.
    #[error("n_kv_heads = {n_kv_heads} must divide n_heads = {n_heads} (1 = MQA, n_heads = MHA)")]
    KvHeads {
        /// Query heads.
        n_heads: u32,
        /// KV heads.
        n_kv_heads: u32,
    },
    /// Multi-head latent attention with grouped key/value heads.
    #[error("multi-head latent attention decompresses a key and a value for every head: n_kv_heads must equal n_heads ({n_heads}), found {n_kv_heads}")]
    MlaKvHeads {
        /// Query heads.
        n_heads: u32,
        /// KV heads.
        n_kv_heads: u32,
    },
    /// More dense leading layers than the model has room for.
    #[error("moe_dense_layers = {dense_layers} leaves no MoE layer among the {n_layers}: it must be below n_layers (drop the MoE fields for a dense model)")]
    DenseLayers {
        /// Dense leading layers.
        dense_layers: u32,
        /// Layers.
        n_layers: u32,
    },
    /// An MoE layer frequency that leaves no MoE layer.
    #[error("moe_layer_freq = {layer_freq} leaves no MoE layer among the {moe_candidates} layers past the dense leading ones: every layer_freq-th of them is MoE, so it must be at most {moe_candidates}")]
    LayerFreq {
        /// Every how many layers one is MoE.
        layer_freq: u32,
        /// Layers past the dense leading ones.
        moe_candidates: u32,
    },
    /// Inconsistent MoE settings.
    #[error("moe top_k = {top_k} must be between 1 and the number of experts ({experts})")]
    Moe {
        /// Experts.
        experts: u32,
        /// Top-k.
        top_k: u32,
    },
}
