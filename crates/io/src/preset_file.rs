//! Model preset files (`scenarios/models/<id>.toml`): their TOML schema and conversion into a
//! checked [`ModelPreset`].

use crate::hardware_file::Checker;
use crate::{tomlfile, IoError, ModelPreset};
use serde::Deserialize;
use trainplan_model::{FfnActivation, Mla, Model, ModelError, Moe, Positions};

/// `scenarios/models/<id>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    id: String,
    name: String,
    n_layers: u32,
    hidden: u32,
    n_heads: u32,
    n_kv_heads: Option<u32>,
    head_dim: Option<u32>,
    ffn: u32,
    ffn_act: ActivationFile,
    vocab: u32,
    seq_len: u32,
    tied_embeddings: bool,
    positions: PositionsFile,
    linear_bias: bool,
    dropout: bool,
    moe: Option<MoeFile>,
    mla: Option<MlaFile>,
    published_params: Option<f64>,
    source: String,
    #[allow(dead_code)]
    notes: Option<String>,
}

/// `ffn_act`: the names of [`FfnActivation`].
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ActivationFile {
    Gelu,
    Swiglu,
}

/// `positions`: `rotary` also stands for ALiBi, since neither has parameters.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PositionsFile {
    Learned,
    Rotary,
}

/// The optional `[moe]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoeFile {
    experts: u32,
    top_k: u32,
    /// Width of the shared experts' FFN, summed over them (default: none).
    shared_ffn: Option<u32>,
    /// Leading dense layers (default: none).
    dense_layers: Option<u32>,
    /// FFN width of the dense layers, leading or interleaved.
    dense_ffn: Option<u32>,
    /// Past the dense leading layers, every how many layers one is MoE (default 1: all).
    layer_freq: Option<u32>,
}

/// The optional `[mla]` table of a preset (`[model.mla]` in a scenario): multi-head latent
/// attention, in DeepSeek's config names.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlaFile {
    /// Query latent rank (default 0: queries projected straight from the hidden state).
    pub q_lora_rank: Option<u32>,
    /// Key/value latent rank.
    pub kv_lora_rank: u32,
    /// Non-rotary part of each query/key head.
    pub qk_nope_head_dim: u32,
    /// Rotary part of each query/key head.
    pub qk_rope_head_dim: u32,
    /// Width of each value head.
    pub v_head_dim: u32,
}

impl MlaFile {
    /// The latent attention and the query/key head width it implies (`qk_nope_head_dim +
    /// qk_rope_head_dim`), or the name of the key that contradicts a stated `head_dim`.
    pub(crate) fn resolve(self, head_dim: Option<u32>) -> Result<(Mla, u32), String> {
        let qk = self.qk_nope_head_dim.saturating_add(self.qk_rope_head_dim);
        if let Some(d) = head_dim.filter(|&d| d != qk) {
            return Err(format!(
                "head_dim = {d} contradicts the latent attention's query/key head, qk_nope_head_dim + qk_rope_head_dim = {qk}; leave head_dim out"
            ));
        }
        if self.qk_nope_head_dim == 0 {
            return Err("mla.qk_nope_head_dim must be at least 1, found 0".into());
        }
        Ok((
            Mla {
                q_lora_rank: self.q_lora_rank.unwrap_or(0),
                kv_lora_rank: self.kv_lora_rank,
                qk_rope_head_dim: self.qk_rope_head_dim,
                v_head_dim: self.v_head_dim,
            },
            qk,
        ))
    }
}

/// Parses and checks one preset file; the architecture must pass [`Model::validate`].
pub(crate) fn parse_model(path: &str, text: &str) -> Result<ModelPreset, IoError> {
    let f: ModelFile = tomlfile::parse(path, text)?;
    let c = Checker { path, text };
    c.id(&f.id)?;
    c.non_empty("name", &f.name)?;
    c.non_empty("source", &f.source)?;
    if let Some(p) = f.published_params {
        c.positive("", "published_params", p)?;
    }
    let (mla, head_dim) = match f.mla {
        Some(m) => {
            let (mla, qk) = m
                .resolve(f.head_dim)
                .map_err(|e| c.error("mla", "qk_nope_head_dim", e))?;
            (Some(mla), qk)
        }
        None => match f.head_dim {
            Some(d) => (None, d),
            None => (
                None,
                Model::default_head_dim(f.hidden, f.n_heads)
                    .map_err(|e| c.error("", "n_heads", e.to_string()))?,
            ),
        },
    };
    let model = Model {
        id: f.id,
        n_layers: f.n_layers,
        hidden: f.hidden,
        n_heads: f.n_heads,
        n_kv_heads: f.n_kv_heads.unwrap_or(f.n_heads),
        head_dim,
        ffn: f.ffn,
        vocab: f.vocab,
        max_seq_len: f.seq_len,
        ffn_act: match f.ffn_act {
            ActivationFile::Gelu => FfnActivation::Gelu,
            ActivationFile::Swiglu => FfnActivation::Swiglu,
        },
        tied_embeddings: f.tied_embeddings,
        positions: match f.positions {
            PositionsFile::Learned => Positions::Learned,
            PositionsFile::Rotary => Positions::Rotary,
        },
        linear_bias: f.linear_bias,
        dropout: f.dropout,
        moe: f.moe.map(|m| Moe {
            experts: m.experts,
            top_k: m.top_k,
            shared_ffn: m.shared_ffn.unwrap_or(0),
            dense_layers: m.dense_layers.unwrap_or(0),
            dense_ffn: m.dense_ffn.unwrap_or(0),
            layer_freq: m.layer_freq.unwrap_or(1),
        }),
        mla,
    };
    if let Err(e) = model.validate() {
        // Report at the key the rule is about, so the user edits the right line.
        let (section, key) = match &e {
            ModelError::Zero {
                field: "moe_dense_ffn",
            } => ("moe", "dense_ffn"),
            ModelError::Zero { field } => ("", *field),
            ModelError::HeadsDoNotDivideHidden { .. } => ("", "n_heads"),
            ModelError::KvHeads { .. } | ModelError::MlaKvHeads { .. } => ("", "n_kv_heads"),
            ModelError::Moe { .. } => ("moe", "top_k"),
            ModelError::DenseLayers { .. } => ("moe", "dense_layers"),
            ModelError::LayerFreq { .. } => ("moe", "layer_freq"),
            _ => ("", "id"),
        };
        return Err(c.error(section, key, e.to_string()));
    }
    Ok(ModelPreset {
        seq_len: f.seq_len,
        name: f.name,
        published_params: f.published_params,
        source: f.source,
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LLAMA: &str = r#"
id = "llama3-70b"
name = "Llama 3 70B"
n_layers = 80
hidden = 8192
n_heads = 64
n_kv_heads = 8
ffn = 28672
ffn_act = "swiglu"
vocab = 128256
seq_len = 8192
tied_embeddings = false
positions = "rotary"
linear_bias = false
dropout = false
published_params = 70.6e9
source = "Meta model card"
"#;

    /// Parses `text` as `models/llama3-70b.toml`; the error text, if any.
    fn check(text: &str) -> Option<String> {
        parse_model("m/models/llama3-70b.toml", text)
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn a_good_preset_converts() {
        let p = parse_model("m/models/llama3-70b.toml", LLAMA).unwrap();
        assert_eq!(p.model.n_kv_heads, 8);
        assert_eq!(p.model.max_seq_len, 8192);
        assert_eq!(p.seq_len, 8192);
        assert_eq!(p.model.ffn_act, FfnActivation::Swiglu);
        assert_eq!(p.published_params, Some(70.6e9));
        let without_kv = LLAMA.replace("n_kv_heads = 8\n", "");
        let p = parse_model("m/models/llama3-70b.toml", &without_kv).unwrap();
        assert_eq!(p.model.n_kv_heads, 64);
    }

    #[test]
    fn a_preset_states_latent_attention_in_an_mla_table() {
        // Llama 3 70B's other shapes with MLA heads: 64 heads of 128 + 64 rotary, values 128.
        let mla = LLAMA.replace("n_kv_heads = 8\n", "")
            + "[mla]\nkv_lora_rank = 512\nqk_nope_head_dim = 128\nqk_rope_head_dim = 64\nv_head_dim = 128\n";
        let p = parse_model("m/models/llama3-70b.toml", &mla).unwrap();
        assert_eq!(p.model.head_dim, 192);
        let m = p.model.mla.unwrap();
        assert_eq!((m.q_lora_rank, m.kv_lora_rank, m.v_head_dim), (0, 512, 128));
        // A contradicting head_dim, or grouped KV heads, name the rule's key.
        let e = check(&mla.replace("n_heads = 64\n", "n_heads = 64\nhead_dim = 128\n")).unwrap();
        assert!(
            e.contains("mla.qk_nope_head_dim") && e.contains("192"),
            "{e}"
        );
        let e = check(&mla.replace("n_heads = 64\n", "n_heads = 64\nn_kv_heads = 8\n")).unwrap();
        assert!(e.contains("n_kv_heads") && e.contains("latent"), "{e}");
    }

    #[test]
    fn preset_errors_name_line_and_field() {
        let cases = [
            (
                "n_kv_heads = 8",
                "n_kv_heads = 3",
                ":7:1: field `n_kv_heads`",
            ),
            ("n_heads = 64", "n_heads = 63", ":6:1: field `n_heads`"),
            ("hidden = 8192", "hidden = 0", ":5:1: field `hidden`"),
            ("ffn_act = \"swiglu\"", "ffn_act = \"relu\"", "gelu"),
            ("n_layers = 80", "n_layer = 80", "did you mean `n_layers`?"),
            (
                "source = \"Meta model card\"",
                "source = \"Meta model card\"\n[moe]\nexperts = 2\ntop_k = 3",
                "field `moe.top_k`",
            ),
            (
                "published_params = 70.6e9",
                "published_params = -1.0",
                "positive",
            ),
        ];
        for (from, to, expect) in cases {
            let e = check(&LLAMA.replace(from, to)).unwrap_or_default();
            assert!(e.contains(expect), "{from} -> {to}: {e}");
        }
    }
}
