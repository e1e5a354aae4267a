//! Model preset files (`scenarios/models/<id>.toml`): their TOML schema and conversion into a
//! checked [`ModelPreset`].

use crate::hardware_file::Checker;
use crate::{tomlfile, IoError, ModelPreset};
use serde::Deserialize;
use trainplan_model::{FfnActivation, Model, ModelError, Moe, Positions};

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
    let head_dim = match f.head_dim {
        Some(d) => d,
        None => Model::default_head_dim(f.hidden, f.n_heads)
            .map_err(|e| c.error("", "n_heads", e.to_string()))?,
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
        }),
    };
    if let Err(e) = model.validate() {
        // Report at the key the rule is about, so the user edits the right line.
        let (section, key) = match &e {
            ModelError::Zero { field } => ("", *field),
            ModelError::HeadsDoNotDivideHidden { .. } => ("", "n_heads"),
            ModelError::KvHeads { .. } => ("", "n_kv_heads"),
            ModelError::Moe { .. } => ("moe", "top_k"),
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
