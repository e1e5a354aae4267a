//! `trainplan models`: the model presets, with parameter counts computed from the architecture.

use crate::cmd_hardware::render;
use crate::output::{self, Format};
use std::path::PathBuf;
use trainplan_io::{Database, ModelPreset};

/// Arguments of `trainplan models`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format (default: table on a terminal, csv in a pipe or with -o).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Columns of the listing; stable, new ones go at the end.
const COLUMNS: [&str; 21] = [
    "id",
    "name",
    "params",
    "n_layers",
    "hidden",
    "n_heads",
    "n_kv_heads",
    "ffn",
    "vocab",
    "seq_len",
    "ffn_act",
    "published_params",
    "head_dim",
    "active_params",
    "moe_experts",
    "moe_top_k",
    "moe_shared_ffn",
    "moe_dense_layers",
    "moe_dense_ffn",
    "moe_layer_freq",
    "mla_kv_lora_rank",
];

pub fn run(args: &Args, db: &Database) -> anyhow::Result<()> {
    let format = Format::or_default(args.format, args.output.as_ref());
    let rows: Vec<Vec<String>> = db.models().map(row).collect();
    let bytes = render(format, &COLUMNS, &rows)?;
    output::emit(args.output.as_ref(), &bytes)
}

fn row(p: &ModelPreset) -> Vec<String> {
    let m = &p.model;
    // Counts are sums of integer products far below 2^53, so the f64 is exact and prints as an
    // integer.
    let params = m.params().total.round() as u64;
    vec![
        m.id.clone(),
        p.name.clone(),
        params.to_string(),
        m.n_layers.to_string(),
        m.hidden.to_string(),
        m.n_heads.to_string(),
        m.n_kv_heads.to_string(),
        m.ffn.to_string(),
        m.vocab.to_string(),
        p.seq_len.to_string(),
        m.ffn_act.as_str().to_string(),
        p.published_params
            .map(|x| format!("{}", x.round() as u64))
            .unwrap_or_default(),
        m.head_dim.to_string(),
        (m.params().active.round() as u64).to_string(),
        m.moe.map(|x| x.experts.to_string()).unwrap_or_default(),
        m.moe.map(|x| x.top_k.to_string()).unwrap_or_default(),
        m.moe.map(|x| x.shared_ffn.to_string()).unwrap_or_default(),
        m.moe
            .map(|x| x.dense_layers.to_string())
            .unwrap_or_default(),
        // The dense layers' width only where some layer is dense.
        m.moe
            .and_then(|x| x.has_dense_layers().then(|| x.dense_ffn.to_string()))
            .unwrap_or_default(),
        m.moe.map(|x| x.layer_freq.to_string()).unwrap_or_default(),
        m.mla
            .map(|x| x.kv_lora_rank.to_string())
            .unwrap_or_default(),
    ]
}
