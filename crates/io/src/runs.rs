//! The measured-runs CSV read by `trainplan validate` (columns defined in
//! `../shared/data/README.md`): one real training run per row, empty cells meaning "not stated".

use crate::{IoError, Location};
use std::collections::HashMap;
use trainplan_parallel::{CrossEntropy, EpDispatcher, Framework, Optimizer};

/// Columns a runs CSV must have.
pub const REQUIRED_COLUMNS: [&str; 28] = [
    "name",
    "source_id",
    "model",
    "n_layers",
    "hidden",
    "n_heads",
    "n_kv_heads",
    "ffn",
    "ffn_act",
    "vocab",
    "seq_len",
    "gpu",
    "gpus_per_node",
    "n_gpus",
    "tp",
    "pp",
    "dp",
    "cp",
    "vpp",
    "sequence_parallel",
    "micro_batch",
    "global_batch",
    "recompute",
    "zero",
    "precision",
    "measured_tokens_per_s_per_gpu",
    "measured_mem_gib",
    "measured_oom",
];

/// One row, typed; `None` for an empty cell.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunRow {
    /// 1-based line in the file.
    pub line: usize,
    /// Row id.
    pub name: String,
    /// Source id.
    pub source_id: String,
    /// Model name as written.
    pub model: String,
    /// Layers.
    pub n_layers: Option<u32>,
    /// Hidden size.
    pub hidden: Option<u32>,
    /// Heads.
    pub n_heads: Option<u32>,
    /// KV heads.
    pub n_kv_heads: Option<u32>,
    /// FFN width.
    pub ffn: Option<u32>,
    /// `gelu` or `swiglu`.
    pub ffn_act: Option<String>,
    /// Vocabulary.
    pub vocab: Option<u32>,
    /// Sequence length.
    pub seq_len: Option<u32>,
    /// MoE experts.
    pub moe_experts: Option<u32>,
    /// MoE top-k.
    pub moe_top_k: Option<u32>,
    /// Accelerator id.
    pub gpu: String,
    /// GPUs per node.
    pub gpus_per_node: Option<u32>,
    /// GPUs: the `n_gpus` cell, or tp · pp · dp · cp when it is empty and the layout is stated
    /// (`n_gpus_from_layout` says so).
    pub n_gpus: Option<u32>,
    /// `n_gpus` was empty and is the product of the stated layout.
    pub n_gpus_from_layout: bool,
    /// Tensor parallel.
    pub tp: Option<u32>,
    /// Pipeline parallel.
    pub pp: Option<u32>,
    /// Data parallel.
    pub dp: Option<u32>,
    /// Context parallel.
    pub cp: Option<u32>,
    /// Expert parallel.
    pub ep: Option<u32>,
    /// Virtual stages.
    pub vpp: Option<u32>,
    /// Sequence parallelism.
    pub sequence_parallel: Option<bool>,
    /// Micro-batch.
    pub micro_batch: Option<u32>,
    /// Global batch.
    pub global_batch: Option<u32>,
    /// `none`, `selective`, `full`.
    pub recompute: Option<String>,
    /// ZeRO stage.
    pub zero: Option<u8>,
    /// `bf16`, `fp16`, `fp8`.
    pub precision: Option<String>,
    /// Measured tokens/s per GPU; from `measured_step_time_s` when only the step time is given
    /// (`global_batch · seq_len / step_time / n_gpus`, `../shared/data/README.md`).
    pub measured_tokens_per_s_per_gpu: Option<f64>,
    /// Measured seconds per optimizer step.
    pub measured_step_time_s: Option<f64>,
    /// Measured MFU.
    pub measured_mfu: Option<f64>,
    /// Measured peak memory (GiB).
    pub measured_mem_gib: Option<f64>,
    /// Measured out-of-memory.
    pub measured_oom: Option<bool>,
    /// Collector's confidence.
    pub confidence: Option<String>,
    /// trainplan's optional column (not in the shared contract): tensor-parallel collectives
    /// overlapped with the products; empty lets `validate` assume it by GPU generation.
    pub tp_comm_overlap: Option<bool>,
    /// trainplan's optional column: fused (flash) attention; `false` for stacks before it
    /// (Megatron-LM 2021, BLOOM's Megatron-DeepSpeed), whose attention stores its scores and runs
    /// unfused; empty assumes it.
    pub flash_attention: Option<bool>,
    /// trainplan's optional column: the expert all-to-all overlapped with another micro-batch's
    /// compute; empty lets `validate` try both.
    pub ep_comm_overlap: Option<bool>,
    /// trainplan's optional column: the data-parallel gradient reduction overlapped with backward
    /// below ZeRO-3 (Megatron-Core's `--overlap-grad-reduce`, PyTorch DDP's buckets); `false` for
    /// stacks that reduce after the last backward (Megatron-LM before Megatron-Core); empty
    /// assumes what the framework and generation do.
    pub dp_comm_overlap: Option<bool>,
    /// trainplan's optional column: `deepspeed` or `megatron`, how the model states are held
    /// (see `[job] optimizer`); empty means Megatron's layout for fp8, DeepSpeed's otherwise.
    pub optimizer: Option<String>,
    /// trainplan's optional column: `megatron`, `deepspeed` or `pytorch`, the framework that ran
    /// the job (see `[job] framework`); empty keeps the framework-neutral rules.
    pub framework: Option<String>,
    /// trainplan's optional column: `vocab_parallel`, `fp32_eager` or `fused`, how the loss was
    /// computed (see `[job] cross_entropy`); empty means the framework's.
    pub cross_entropy: Option<String>,
    /// trainplan's optional column: `alltoall` or `deepep`, how the expert all-to-all moves
    /// tokens (see `[strategy] ep_dispatcher`); empty lets `validate` try both.
    pub ep_dispatcher: Option<String>,
    /// trainplan's optional column: the width of one attention head, for models whose heads
    /// are not hidden / n_heads wide (Qwen3, Gemma); empty means hidden / n_heads.
    pub head_dim: Option<u32>,
    /// trainplan's optional column: the width of an MoE model's shared experts' FFN, summed over
    /// them (DeepSeekMoE, Qwen1.5-MoE); empty means none.
    pub moe_shared_ffn: Option<u32>,
    /// trainplan's optional columns: an MoE model's dense leading layers and their FFN width
    /// (DeepSeek's `first_k_dense_replace`, `intermediate_size`); empty means none.
    pub moe_dense_layers: Option<u32>,
    /// See `moe_dense_layers`; also the width of interleaved dense layers.
    pub moe_dense_ffn: Option<u32>,
    /// trainplan's optional column: past the dense leading layers, every how many layers one is
    /// MoE (Llama 4's `interleave_moe_layer_step`); empty means 1, every layer.
    pub moe_layer_freq: Option<u32>,
    /// trainplan's optional columns: multi-head latent attention, in DeepSeek's config names
    /// prefixed `mla_` (`mla_q_lora_rank`, empty for none, `mla_kv_lora_rank`,
    /// `mla_qk_nope_head_dim`, `mla_qk_rope_head_dim`, `mla_v_head_dim`); all empty means plain
    /// attention. `head_dim`, if stated, must be the query/key head (nope + rope).
    pub mla_q_lora_rank: Option<u32>,
    /// See `mla_q_lora_rank`.
    pub mla_kv_lora_rank: Option<u32>,
    /// See `mla_q_lora_rank`.
    pub mla_qk_nope_head_dim: Option<u32>,
    /// See `mla_q_lora_rank`.
    pub mla_qk_rope_head_dim: Option<u32>,
    /// See `mla_q_lora_rank`.
    pub mla_v_head_dim: Option<u32>,
}

/// Reads a runs CSV.
pub fn read_runs(path: &std::path::Path) -> Result<Vec<RunRow>, IoError> {
    let bytes = std::fs::read(path).map_err(|source| IoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_runs(&path.display().to_string(), &bytes)
}

/// Parses runs CSV `bytes` read from `path`.
pub fn parse_runs(path: &str, bytes: &[u8]) -> Result<Vec<RunRow>, IoError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, bytes, &e))?
        .iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    if headers.iter().all(String::is_empty) {
        return Err(IoError::Parse {
            location: Location::file(path),
            message: "the file is empty; a runs CSV starts with a header row (see ../shared/data/README.md)".into(),
        });
    }
    let index: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    // A file with none of the columns is not a runs CSV at all (another CSV, a spreadsheet saved
    // with `;`, a binary file): say that, rather than "column `name` is missing".
    if REQUIRED_COLUMNS.iter().all(|c| !index.contains_key(c)) {
        let first: String = headers.join(",").chars().take(40).collect();
        let hint = if first.contains(';') || first.contains('\t') {
            "it looks separated by `;` or tabs; a runs CSV is comma-separated"
        } else {
            "is it a runs CSV?"
        };
        return Err(IoError::Parse {
            location: Location {
                path: path.to_string(),
                line: Some(1),
                column: Some(1),
            },
            message: format!(
                "the header row has none of the runs CSV columns (found `{}`); {hint} \
                 Required columns: {}",
                first.escape_default(),
                REQUIRED_COLUMNS.join(", ")
            ),
        });
    }
    for col in REQUIRED_COLUMNS {
        if !index.contains_key(col) {
            return Err(IoError::Field {
                location: Location {
                    path: path.to_string(),
                    line: Some(1),
                    column: None,
                },
                field: col.to_string(),
                message: format!(
                    "column is missing from the header; required columns: {}",
                    REQUIRED_COLUMNS.join(", ")
                ),
            });
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, bytes, &e))?;
        let line = record
            .position()
            .map_or(0, |p| crate::csvfile::record_start(bytes, p).1);
        let cell = |col: &str| -> &str {
            index
                .get(col)
                .and_then(|&i| record.get(i))
                .unwrap_or("")
                .trim()
        };
        let field_err = |col: &str, message: String| IoError::Field {
            location: Location {
                path: path.to_string(),
                line: Some(line),
                column: index
                    .get(col)
                    .and_then(|&i| cell_column(bytes, record.position(), i)),
            },
            field: col.to_string(),
            message,
        };
        let uint = |col: &str| -> Result<Option<u32>, IoError> {
            let v = cell(col);
            if v.is_empty() {
                return Ok(None);
            }
            match v.parse::<u32>() {
                Ok(0) => Err(field_err(
                    col,
                    "must be a positive integer or empty, found 0".into(),
                )),
                Ok(n) => Ok(Some(n)),
                Err(_) => Err(field_err(
                    col,
                    format!("must be a positive integer up to 4294967295 or empty, found `{v}`"),
                )),
            }
        };
        let float = |col: &str| -> Result<Option<f64>, IoError> {
            let v = cell(col);
            if v.is_empty() {
                return Ok(None);
            }
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                _ => Err(field_err(
                    col,
                    format!("must be a non-negative number or empty, found `{v}`"),
                )),
            }
        };
        let boolean = |col: &str| -> Result<Option<bool>, IoError> {
            match cell(col) {
                "" => Ok(None),
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                v => Err(field_err(
                    col,
                    format!("must be `true`, `false` or empty, found `{v}`"),
                )),
            }
        };
        let choice = |col: &str, allowed: &[&str]| -> Result<Option<String>, IoError> {
            let v = cell(col);
            if v.is_empty() {
                Ok(None)
            } else if allowed.contains(&v) {
                Ok(Some(v.to_string()))
            } else {
                Err(field_err(
                    col,
                    format!(
                        "`{v}` is not allowed; allowed: {} or empty",
                        allowed.join(", ")
                    ),
                ))
            }
        };
        let zero = match cell("zero") {
            "" => None,
            v => match v.parse::<u8>() {
                Ok(z) if z <= 3 => Some(z),
                _ => {
                    return Err(field_err(
                        "zero",
                        format!("must be 0, 1, 2, 3 or empty, found `{v}`"),
                    ))
                }
            },
        };
        let (tp, sequence_parallel) = (uint("tp")?, boolean("sequence_parallel")?);
        let tp_comm_overlap = boolean("tp_comm_overlap")?;
        if tp_comm_overlap == Some(true)
            && sequence_parallel == Some(false)
            && tp.is_some_and(|tp| tp > 1)
        {
            return Err(field_err(
                "tp_comm_overlap",
                "overlapping the tensor-parallel collectives needs sequence parallelism (Megatron-Core's --tp-comm-overlap requires --sequence-parallel), and this row states sequence_parallel = false".into(),
            ));
        }
        let (pp, dp, cp) = (uint("pp")?, uint("dp")?, uint("cp")?);
        // A row that leaves `n_gpus` empty but states tp, pp and dp ran on their product with cp
        // (experts live inside dp · cp, so ep adds none); an empty cp is 1, as validate reads it.
        let stated_gpus = uint("n_gpus")?;
        let layout_gpus = match (tp, pp, dp) {
            (Some(t), Some(p), Some(d)) => t
                .checked_mul(p)
                .and_then(|x| x.checked_mul(d))
                .and_then(|x| x.checked_mul(cp.unwrap_or(1))),
            _ => None,
        };
        let n_gpus = stated_gpus.or(layout_gpus);
        let step_time_s = float("measured_step_time_s")?;
        let name = cell("name").to_string();
        if name.is_empty() {
            return Err(field_err("name", "every row needs a name".into()));
        }
        rows.push(RunRow {
            line,
            name,
            source_id: cell("source_id").to_string(),
            model: cell("model").to_string(),
            n_layers: uint("n_layers")?,
            hidden: uint("hidden")?,
            n_heads: uint("n_heads")?,
            n_kv_heads: uint("n_kv_heads")?,
            ffn: uint("ffn")?,
            ffn_act: choice("ffn_act", &["gelu", "swiglu"])?,
            vocab: uint("vocab")?,
            seq_len: uint("seq_len")?,
            moe_experts: uint("moe_experts")?,
            moe_top_k: uint("moe_top_k")?,
            gpu: cell("gpu").to_string(),
            gpus_per_node: uint("gpus_per_node")?,
            n_gpus,
            n_gpus_from_layout: stated_gpus.is_none() && n_gpus.is_some(),
            tp,
            pp,
            dp,
            cp,
            ep: uint("ep")?,
            vpp: uint("vpp")?,
            sequence_parallel,
            micro_batch: uint("micro_batch")?,
            global_batch: uint("global_batch")?,
            recompute: choice("recompute", &["none", "selective", "full"])?,
            zero,
            precision: choice("precision", &["bf16", "fp16", "fp8"])?,
            measured_tokens_per_s_per_gpu: match float("measured_tokens_per_s_per_gpu")? {
                Some(t) => Some(t),
                // The data README's second rule: from the step time,
                // global_batch · seq_len / step_time / n_gpus.
                None => match (step_time_s, uint("global_batch")?, uint("seq_len")?, n_gpus) {
                    (Some(step), Some(gb), Some(seq), Some(n)) if step > 0.0 => {
                        Some(f64::from(gb) * f64::from(seq) / step / f64::from(n))
                    }
                    _ => None,
                },
            },
            measured_step_time_s: step_time_s,
            measured_mfu: float("measured_mfu")?,
            measured_mem_gib: float("measured_mem_gib")?,
            measured_oom: boolean("measured_oom")?,
            confidence: Some(cell("confidence").to_string()).filter(|c| !c.is_empty()),
            tp_comm_overlap,
            ep_comm_overlap: boolean("ep_comm_overlap")?,
            dp_comm_overlap: boolean("dp_comm_overlap")?,
            flash_attention: boolean("flash_attention")?,
            optimizer: choice("optimizer", &Optimizer::ALL.map(Optimizer::as_str))?,
            framework: choice("framework", &Framework::ALL.map(Framework::as_str))?,
            cross_entropy: choice(
                "cross_entropy",
                &CrossEntropy::ALL.map(CrossEntropy::as_str),
            )?,
            ep_dispatcher: choice(
                "ep_dispatcher",
                &EpDispatcher::ALL.map(EpDispatcher::as_str),
            )?,
            head_dim: uint("head_dim")?,
            moe_shared_ffn: uint("moe_shared_ffn")?,
            moe_dense_layers: uint("moe_dense_layers")?,
            moe_dense_ffn: uint("moe_dense_ffn")?,
            moe_layer_freq: uint("moe_layer_freq")?,
            mla_q_lora_rank: uint("mla_q_lora_rank")?,
            mla_kv_lora_rank: uint("mla_kv_lora_rank")?,
            mla_qk_nope_head_dim: uint("mla_qk_nope_head_dim")?,
            mla_qk_rope_head_dim: uint("mla_qk_rope_head_dim")?,
            mla_v_head_dim: uint("mla_v_head_dim")?,
        });
    }
    if rows.is_empty() {
        return Err(IoError::Parse {
            location: Location {
                path: path.to_string(),
                line: Some(2),
                column: None,
            },
            message: "the file has a header but no runs; add one row per measured run".into(),
        });
    }
    Ok(rows)
}

/// The 1-based character column where cell `idx` of the record at `pos` starts in `bytes`, found
/// by walking the raw line with the same quoting rules as the reader (a comma inside quotes does
/// not separate cells).
fn cell_column(bytes: &[u8], pos: Option<&csv::Position>, idx: usize) -> Option<usize> {
    let (start, _) = crate::csvfile::record_start(bytes, pos?);
    let raw = std::str::from_utf8(bytes.get(start..)?).ok()?;
    let mut cell = 0;
    let mut quoted = false;
    for (col, c) in raw.chars().enumerate() {
        if cell == idx {
            return Some(col + 1);
        }
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => cell += 1,
            '\n' | '\r' if !quoted => return None,
            _ => {}
        }
    }
    None
}

fn csv_error(path: &str, bytes: &[u8], e: &csv::Error) -> IoError {
    let line = e
        .position()
        .map(|p| crate::csvfile::record_start(bytes, p).1);
    IoError::Parse {
        location: Location {
            path: path.to_string(),
            line,
            column: None,
        },
        message: match e.kind() {
            csv::ErrorKind::Utf8 { .. } => {
                "the file is not UTF-8 text; a runs CSV is UTF-8, comma-separated".into()
            }
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => {
                format!("row has {len} cells but the header has {expected_len}")
            }
            _ => e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "name,source_id,model,n_layers,hidden,n_heads,n_kv_heads,ffn,ffn_act,vocab,seq_len,moe_experts,moe_top_k,gpu,gpus_per_node,n_gpus,tp,pp,dp,cp,ep,vpp,sequence_parallel,micro_batch,global_batch,recompute,zero,precision,measured_tokens_per_s_per_gpu,measured_step_time_s,measured_mfu,measured_mem_gib,measured_oom,confidence,derived";

    #[test]
    fn reads_a_row_with_empty_cells() {
        let text = format!("{HEADER}\nX-r1,X,GPT,24,2048,16,,,gelu,51200,2048,,,a100-80gb,8,8,1,1,8,1,,,,,64,,3,bf16,1000,,,,false,high,\n");
        let rows = parse_runs("runs.csv", text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.line, 2);
        assert_eq!(r.hidden, Some(2048));
        assert_eq!(r.ffn, None);
        assert_eq!(r.micro_batch, None);
        assert_eq!(r.zero, Some(3));
        assert_eq!(r.measured_oom, Some(false));
    }

    #[test]
    fn bad_cell_names_line_and_column() {
        let text = format!("{HEADER}\nX-r1,X,GPT,24,abc,16,,,gelu,51200,2048,,,a100-80gb,8,8,1,1,8,1,,,,,64,,3,bf16,1000,,,,false,high,\n");
        let e = parse_runs("runs.csv", text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("runs.csv:2"), "{e}");
        assert!(e.contains("hidden"), "{e}");
        assert!(e.contains("abc"), "{e}");
    }

    #[test]
    fn cells_the_other_cells_determine_are_filled_in_and_reported() {
        let db = crate::Database::bundled().unwrap();
        // The first row of a runs CSV `text`, turned into a run to predict.
        let spec_of = |text: &str| {
            parse_runs("runs.csv", text.as_bytes()).unwrap()[0].to_spec(&db, "runs.csv")
        };
        // No n_gpus, no global batch, no precision; tp 2 × pp 2 × dp 4 ran 2.0 s steps at 4096
        // tokens/s per GPU: 16 GPUs × 4096 × 2.0 s / 2048 = 64 sequences per step.
        let text = format!("{HEADER}\nX-r1,X,GPT,24,2048,16,,,gelu,51200,2048,,,a100-80gb,8,,2,2,4,,,,,,,,1,,4096,2.0,,,false,high,\n");
        let rows = parse_runs("runs.csv", text.as_bytes()).unwrap();
        assert_eq!(
            (rows[0].n_gpus, rows[0].n_gpus_from_layout),
            (Some(16), true)
        );
        let spec = rows[0].to_spec(&db, "runs.csv").unwrap();
        assert_eq!(spec.cluster.n_gpus, 16);
        assert_eq!(spec.job.global_batch, 64);
        assert_eq!(spec.job.precision, trainplan_parallel::Precision::Bf16);
        let p = trainplan_search::validate::predict(&spec).unwrap();
        let choices = spec.choices(&p);
        for note in [
            "n_gpus=16 (",
            "global_batch=64 (",
            "precision=bf16",
            "micro_batch=",
        ] {
            assert!(choices.contains(note), "{note} missing from {choices}");
        }
        // A stated n_gpus wins over the layout and is not reported; the step time then gives
        // the throughput, as the data README's second rule says.
        let text = format!("{HEADER}\nX-r1,X,GPT,24,2048,16,,,gelu,51200,2048,,,a100-80gb,8,16,2,2,4,,,,,,64,,1,fp16,,2.0,,,false,high,\n");
        let rows = parse_runs("runs.csv", text.as_bytes()).unwrap();
        assert!(!rows[0].n_gpus_from_layout);
        assert_eq!(rows[0].measured_tokens_per_s_per_gpu, Some(4096.0));
        let spec = rows[0].to_spec(&db, "runs.csv").unwrap();
        assert!(spec.notes.is_empty(), "{:?}", spec.notes);
        // Without a step time the batch cannot be derived, and the skip says what would do.
        let text = format!("{HEADER}\nX-r1,X,GPT,24,2048,16,,,gelu,51200,2048,,,a100-80gb,8,16,2,2,4,,,,,,,,1,bf16,4096,,,,false,high,\n");
        let skip = spec_of(&text).unwrap_err();
        assert!(
            skip.0.contains("global_batch") && skip.0.contains("step time"),
            "{}",
            skip.0
        );
        // An empty ffn_act follows the width: 4h is GELU, anything else a gated FFN; with
        // neither the row is skipped.
        for (ffn, act) in [("8192", "gelu"), ("5632", "swiglu")] {
            let text = format!("{HEADER}\nX-r1,X,M,24,2048,16,,{ffn},,51200,2048,,,a100-80gb,8,16,2,2,4,,,,,,64,,1,bf16,4096,,,,false,high,\n");
            let rows = parse_runs("runs.csv", text.as_bytes()).unwrap();
            let spec = rows[0].to_spec(&db, "runs.csv").unwrap();
            assert_eq!(spec.model.ffn_act.as_str(), act);
            assert_eq!(spec.notes, [format!("ffn_act={act} (from ffn / hidden)")]);
        }
        let text = format!("{HEADER}\nX-r1,X,M,24,2048,16,,,,51200,2048,,,a100-80gb,8,16,2,2,4,,,,,,64,,1,bf16,4096,,,,false,high,\n");
        let skip = spec_of(&text).unwrap_err();
        assert!(skip.0.starts_with("missing ffn_act"), "{}", skip.0);
        // Dense leading layers are optional columns.
        let header = format!("{HEADER},moe_dense_layers,moe_dense_ffn");
        let text = format!("{header}\nX-r1,X,M,24,2048,16,,8192,gelu,51200,2048,8,2,a100-80gb,8,16,2,2,4,,,,,,64,,1,bf16,4096,,,,false,high,,1,8192\n");
        let rows = parse_runs("runs.csv", text.as_bytes()).unwrap();
        let moe = rows[0].to_spec(&db, "runs.csv").unwrap().model.moe.unwrap();
        assert_eq!((moe.dense_layers, moe.dense_ffn), (1, 8192));
        assert_eq!(moe.layer_freq, 1);
        // So is an interleaved pattern; without a dense width the row is skipped.
        let header = format!("{HEADER},moe_dense_ffn,moe_layer_freq");
        let row = "X-r1,X,M,24,2048,16,,8192,gelu,51200,2048,8,2,a100-80gb,8,16,2,2,4,,,,,,64,,1,bf16,4096,,,,false,high,";
        let text = format!("{header}\n{row},8192,2\n");
        let model = spec_of(&text).unwrap().model;
        assert_eq!(
            (model.moe.unwrap().layer_freq, model.dense_layers_total()),
            (2, 12)
        );
        let text = format!("{header}\n{row},,2\n");
        let skip = spec_of(&text).unwrap_err();
        assert!(skip.0.contains("moe_dense_ffn"), "{}", skip.0);
        // Latent attention is five optional columns, in DeepSeek's config names.
        let header = format!("{HEADER},mla_q_lora_rank,mla_kv_lora_rank,mla_qk_nope_head_dim,mla_qk_rope_head_dim,mla_v_head_dim,head_dim");
        let row = "X-r1,X,M,24,2048,16,,8192,gelu,51200,2048,,,a100-80gb,8,16,2,2,4,,,,,,64,,1,bf16,4096,,,,false,high,";
        let text = format!("{header}\n{row},,512,128,64,128,\n");
        let model = spec_of(&text).unwrap().model;
        let mla = model.mla.unwrap();
        assert_eq!((mla.q_lora_rank, mla.kv_lora_rank), (0, 512));
        assert_eq!((mla.qk_rope_head_dim, mla.v_head_dim), (64, 128));
        assert_eq!(model.head_dim, 192);
        // A stated head_dim must be the query/key head; part of a description is skipped.
        let text = format!("{header}\n{row},1536,512,128,64,128,128\n");
        let skip = spec_of(&text).unwrap_err();
        assert!(skip.0.contains("head_dim = 128 contradicts"), "{}", skip.0);
        let text = format!("{header}\n{row},1536,512,,64,,\n");
        let skip = spec_of(&text).unwrap_err();
        assert_eq!(
            skip.0,
            "missing mla_qk_nope_head_dim, mla_v_head_dim (the row states part of a latent attention)"
        );
        // Half an MoE description is skipped, not priced as a dense model.
        let text = format!("{HEADER}\nX-r1,X,M,24,2048,16,,8192,gelu,51200,2048,8,,a100-80gb,8,16,2,2,4,,,,,,64,,1,bf16,4096,,,,false,high,\n");
        let skip = spec_of(&text).unwrap_err();
        assert!(skip.0.starts_with("missing moe_top_k"), "{}", skip.0);
        // Without n_gpus or a whole layout, the GPU count is missing.
        let text = format!("{HEADER}\nX-r1,X,GPT,24,2048,16,,,gelu,51200,2048,,,a100-80gb,8,,2,,4,,,,,,64,,1,bf16,4096,,,,false,high,\n");
        let skip = spec_of(&text).unwrap_err();
        assert!(skip.0.starts_with("missing n_gpus"), "{}", skip.0);
    }

    #[test]
    fn swiglu_without_ffn_takes_the_llama_width() {
        let text = format!("{HEADER}\nX-r1,X,Llama,32,4096,32,,,swiglu,32000,2048,,,a100-80gb,8,8,1,1,8,1,,,,,64,,3,bf16,1000,,,,false,high,\n");
        let rows = parse_runs("runs.csv", text.as_bytes()).unwrap();
        let db = crate::Database::bundled().unwrap();
        let spec = rows[0].to_spec(&db, "runs.csv").unwrap();
        // 2/3 · 4 · 4096 = 10922.7, rounded up to 11008 (LLaMA 7B's width).
        assert_eq!(spec.model.ffn, 11008);
    }

    #[test]
    fn trainplan_s_optional_columns_state_framework_facts() {
        let row = "X-r1,X,GPT,24,2048,16,,,gelu,51200,2048,,,h100-sxm,8,8,2,1,4,1,,,true,,64,,1,bf16,1000,,,,false,high,";
        // Absent columns: nothing stated, DeepSpeed's layout.
        let plain = parse_runs("runs.csv", format!("{HEADER}\n{row}\n").as_bytes()).unwrap();
        let db = crate::Database::bundled().unwrap();
        let spec = plain[0].to_spec(&db, "runs.csv").unwrap();
        assert_eq!(
            (spec.template.tp_overlap, spec.template.ep_overlap),
            (None, None)
        );
        assert_eq!(spec.job.optimizer, trainplan_parallel::Optimizer::Deepspeed);
        // Unstated for an fp8 run: Megatron-Core's layout, where Transformer Engine's fp8 runs.
        let fp8_row = row.replace(",bf16,", ",fp8,");
        let fp8 = parse_runs("runs.csv", format!("{HEADER}\n{fp8_row}\n").as_bytes()).unwrap();
        let spec = fp8[0].to_spec(&db, "runs.csv").unwrap();
        assert_eq!(spec.job.optimizer, trainplan_parallel::Optimizer::Megatron);
        assert_eq!(spec.template.flash_attention, None);
        // Present: read and carried into the prediction's inputs.
        assert_eq!(spec.template.dp_overlap, None);
        // Present: read and carried into the prediction's inputs.
        let header = format!(
            "{HEADER},tp_comm_overlap,ep_comm_overlap,optimizer,flash_attention,dp_comm_overlap"
        );
        let stated = parse_runs(
            "runs.csv",
            format!("{header}\n{row},false,true,megatron,false,false\n").as_bytes(),
        )
        .unwrap();
        let spec = stated[0].to_spec(&db, "runs.csv").unwrap();
        assert_eq!(spec.template.flash_attention, Some(false));
        assert_eq!(spec.template.dp_overlap, Some(false));
        assert_eq!(
            (spec.template.tp_overlap, spec.template.ep_overlap),
            (Some(false), Some(true))
        );
        assert_eq!(spec.job.optimizer, trainplan_parallel::Optimizer::Megatron);
        // Bad values name the row and the column.
        let bad = |cells: &str| {
            parse_runs("runs.csv", format!("{header}\n{row},{cells}\n").as_bytes())
                .unwrap_err()
                .to_string()
        };
        let e = bad(",,fsdp,,");
        assert!(
            e.contains("runs.csv:2")
                && e.contains("optimizer")
                && e.contains("deepspeed, megatron"),
            "{e}"
        );
        let e = bad("yes,,,,");
        assert!(e.contains("tp_comm_overlap") && e.contains("`yes`"), "{e}");
        let e = bad(",,,,later");
        assert!(
            e.contains("dp_comm_overlap") && e.contains("`later`"),
            "{e}"
        );
        // The framework column: read, and it sets the optimizer when that is empty.
        let header_fw = format!("{HEADER},framework");
        let fw = |cell: &str| {
            parse_runs(
                "runs.csv",
                format!("{header_fw}\n{row},{cell}\n").as_bytes(),
            )
        };
        let spec = fw("megatron").unwrap()[0].to_spec(&db, "runs.csv").unwrap();
        assert_eq!(
            spec.job.framework,
            Some(trainplan_parallel::Framework::Megatron)
        );
        assert_eq!(spec.job.optimizer, trainplan_parallel::Optimizer::Megatron);
        let spec = fw("").unwrap()[0].to_spec(&db, "runs.csv").unwrap();
        assert_eq!(spec.job.framework, None);
        let e = fw("jax").unwrap_err().to_string();
        assert!(
            e.contains("framework") && e.contains("megatron, deepspeed, pytorch"),
            "{e}"
        );
        // The cross_entropy column: read when stated, the framework's when empty.
        let header_ce = format!("{HEADER},cross_entropy");
        let ce = |cell: &str| {
            parse_runs(
                "runs.csv",
                format!("{header_ce}\n{row},{cell}\n").as_bytes(),
            )
        };
        let spec = ce("fp32_eager").unwrap()[0]
            .to_spec(&db, "runs.csv")
            .unwrap();
        assert_eq!(
            spec.job.cross_entropy,
            Some(trainplan_parallel::CrossEntropy::Fp32Eager)
        );
        let spec = ce("").unwrap()[0].to_spec(&db, "runs.csv").unwrap();
        assert_eq!(spec.job.cross_entropy, None);
        let e = ce("chunked").unwrap_err().to_string();
        assert!(
            e.contains("cross_entropy")
                && e.contains("vocab_parallel, fp32_eager, fused")
                && e.contains("`chunked`"),
            "{e}"
        );
        // Overlap without sequence parallelism is refused, as in a scenario.
        let no_sp = row.replace(",true,,64,", ",false,,64,");
        let e = parse_runs(
            "runs.csv",
            format!("{header}\n{no_sp},true,,,,\n").as_bytes(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("tp_comm_overlap") && e.contains("sequence_parallel = false"),
            "{e}"
        );
    }

    #[test]
    fn crlf_files_report_the_line_and_column_of_a_bad_cell() {
        let good = "X-r1,X,GPT,24,2048,16,,,gelu,51200,2048,,,h100-sxm,8,8,2,1,4,1,,,true,,64,,1,bf16,1000,,,,false,high,";
        let bad = good.replace(",bf16,", ",int4,");
        let text = format!("{HEADER}\r\n{good}\r\n{bad}\r\n");
        let e = parse_runs("runs.csv", text.as_bytes())
            .unwrap_err()
            .to_string();
        let column = 1 + bad.find("int4").unwrap();
        assert!(
            e.contains(&format!("runs.csv:3:{column}")) && e.contains("precision"),
            "{e}"
        );
        // The same with LF line ends.
        let e = parse_runs("runs.csv", text.replace("\r\n", "\n").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("runs.csv:3:{column}")), "{e}");
    }

    #[test]
    fn a_row_with_only_a_step_time_gets_its_throughput_from_it() {
        // 64 sequences of 2048 tokens in 2 s on 8 GPUs: 8192 tokens/s per GPU.
        let text = format!("{HEADER}\nX-r1,X,GPT,24,2048,16,,,gelu,51200,2048,,,a100-80gb,8,8,1,1,8,1,,,,,64,,3,bf16,,2.0,,,false,high,\n");
        let rows = parse_runs("runs.csv", text.as_bytes()).unwrap();
        assert_eq!(rows[0].measured_tokens_per_s_per_gpu, Some(8192.0));
        // A stated throughput wins over the step time.
        let text = text.replace(",bf16,,2.0,", ",bf16,5000,2.0,");
        let rows = parse_runs("runs.csv", text.as_bytes()).unwrap();
        assert_eq!(rows[0].measured_tokens_per_s_per_gpu, Some(5000.0));
    }

    #[test]
    fn missing_column_is_reported() {
        let e = parse_runs("runs.csv", b"name,model\nx,y\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("source_id"), "{e}");
    }

    #[test]
    fn reads_the_public_runs() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/runs-public.csv"
        );
        if let Ok(rows) = read_runs(std::path::Path::new(path)) {
            assert!(rows.len() >= 170, "{}", rows.len());
        }
    }
}

/// Why a row cannot be modelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip(pub String);

impl RunRow {
    /// The row's latent attention: none when every `mla_` cell is empty, a skip naming the
    /// missing ones when only some are stated (half a description would price plain attention).
    fn mla(&self) -> Result<Option<crate::preset_file::MlaFile>, Skip> {
        let needed = [
            ("mla_kv_lora_rank", self.mla_kv_lora_rank),
            ("mla_qk_nope_head_dim", self.mla_qk_nope_head_dim),
            ("mla_qk_rope_head_dim", self.mla_qk_rope_head_dim),
            ("mla_v_head_dim", self.mla_v_head_dim),
        ];
        if self.mla_q_lora_rank.is_none() && needed.iter().all(|(_, v)| v.is_none()) {
            return Ok(None);
        }
        let missing: Vec<&str> = needed
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(name, _)| *name)
            .collect();
        match needed.map(|(_, v)| v) {
            [Some(kv_lora_rank), Some(qk_nope_head_dim), Some(qk_rope_head_dim), Some(v_head_dim)] => {
                Ok(Some(crate::preset_file::MlaFile {
                    q_lora_rank: self.mla_q_lora_rank,
                    kv_lora_rank,
                    qk_nope_head_dim,
                    qk_rope_head_dim,
                    v_head_dim,
                }))
            }
            _ => Err(Skip(format!(
                "missing {} (the row states part of a latent attention)",
                missing.join(", ")
            ))),
        }
    }

    /// Turns the row into a run to predict, or says why it cannot be modelled. What the row
    /// leaves empty but its other cells determine, or a convention fills in, is listed in the
    /// spec's `notes`, reported beside validate's choices.
    pub fn to_spec(
        &self,
        db: &crate::Database,
        path: &str,
    ) -> Result<trainplan_search::validate::RunSpec, Skip> {
        use trainplan_model::{FfnActivation, Model, Moe, Positions, Recompute};
        use trainplan_parallel::{Job, Precision};
        let missing = |what: &str| Skip(format!("missing {what}"));
        let hidden = self.hidden.ok_or_else(|| missing("hidden"))?;
        let n_heads = self.n_heads.ok_or_else(|| missing("n_heads"))?;
        let mut notes = Vec::new();
        let ffn_act = match (self.ffn_act.as_deref(), self.ffn) {
            (Some("swiglu"), _) => FfnActivation::Swiglu,
            (Some("gelu"), _) => FfnActivation::Gelu,
            // Unstated but the width tells: the GELU families (GPT, OPT, BLOOM, MPT, Falcon) keep
            // the 4h of Vaswani et al. 2017; gated FFNs (SwiGLU, GeGLU: Llama, Mistral, Qwen,
            // Gemma) shrink or widen it to hold three matrices (Shazeer 2020, section 2).
            (_, Some(f)) => {
                let act = if u64::from(f) == 4 * u64::from(hidden) {
                    FfnActivation::Gelu
                } else {
                    FfnActivation::Swiglu
                };
                notes.push(format!("ffn_act={} (from ffn / hidden)", act.as_str()));
                act
            }
            _ => return Err(missing("ffn_act (and ffn to infer it from)")),
        };
        // A GELU model without a stated FFN width is the GPT convention 4h; SwiGLU widths vary.
        let ffn = match (self.ffn, ffn_act) {
            (Some(f), _) => f,
            (None, FfnActivation::Gelu) => hidden.saturating_mul(4),
            // Touvron et al. 2023 (LLaMA), section 2.2: SwiGLU with 2/3 · 4h, rounded up to a
            // multiple of 256.
            (None, FfnActivation::Swiglu) => (hidden.saturating_mul(8) / 3).div_ceil(256) * 256,
        };
        let seq_len = self.seq_len.ok_or_else(|| missing("seq_len"))?;
        let moe = match (self.moe_experts, self.moe_top_k) {
            (Some(experts), Some(top_k)) => Some(Moe {
                experts,
                top_k,
                shared_ffn: self.moe_shared_ffn.unwrap_or(0),
                dense_layers: self.moe_dense_layers.unwrap_or(0),
                dense_ffn: self.moe_dense_ffn.unwrap_or(0),
                layer_freq: self.moe_layer_freq.unwrap_or(1),
            }),
            // Half an MoE description would silently price a dense model.
            (Some(_), None) => return Err(missing("moe_top_k (moe_experts is stated)")),
            (None, Some(_)) => return Err(missing("moe_experts (moe_top_k is stated)")),
            (None, None) => None,
        };
        let (mla, head_dim) = match self.mla()? {
            Some(file) => {
                let (mla, qk) = file
                    .resolve(self.head_dim)
                    .map_err(|e| Skip(format!("invalid architecture: {e}")))?;
                (Some(mla), qk)
            }
            None => (
                None,
                match self.head_dim {
                    Some(d) => d,
                    None => Model::default_head_dim(hidden, n_heads)
                        .map_err(|e| Skip(format!("invalid architecture: {e}")))?,
                },
            ),
        };
        let model = Model {
            id: self.name.clone(),
            n_layers: self.n_layers.ok_or_else(|| missing("n_layers"))?,
            hidden,
            n_heads,
            n_kv_heads: self.n_kv_heads.unwrap_or(n_heads),
            head_dim,
            ffn,
            vocab: self.vocab.ok_or_else(|| missing("vocab"))?,
            max_seq_len: seq_len,
            ffn_act,
            // GPT-family models tie the output layer to the embedding; Llama-family models do not.
            tied_embeddings: ffn_act == FfnActivation::Gelu,
            positions: Positions::Rotary,
            linear_bias: ffn_act == FfnActivation::Gelu,
            dropout: false,
            moe,
            mla,
        };
        model
            .validate()
            .map_err(|e| Skip(format!("invalid architecture: {e}")))?;
        let at = Location {
            path: path.to_string(),
            line: Some(self.line),
            column: None,
        };
        let accelerator = db
            .accelerator(&self.gpu, &at)
            .map_err(|e| Skip(e.to_string()))?
            .clone();
        let mut node = db
            .node(&accelerator.default_node, &at)
            .map_err(|_| Skip(format!("no node layout for gpu `{}`", self.gpu)))?
            .clone();
        if let Some(g) = self.gpus_per_node {
            node = node.with_gpus_per_node(g);
        }
        let n_gpus = self
            .n_gpus
            .ok_or_else(|| missing("n_gpus (and tp, pp, dp to multiply)"))?;
        if self.n_gpus_from_layout {
            notes.push(format!("n_gpus={n_gpus} (tp·pp·dp·cp)"));
        }
        let cluster = trainplan_hardware::Cluster::new(accelerator, node, n_gpus)
            .map_err(|e| Skip(e.to_string()))?;
        let precision = match self.precision.as_deref() {
            Some("fp16") => Precision::Fp16,
            Some("fp8") => Precision::Fp8,
            Some("bf16") => Precision::Bf16,
            // Unstated: bf16 mixed precision, every framework's default on the accelerators the
            // runs CSV allows (A100 onwards); fp8 is opt-in, so it is never assumed.
            _ => {
                notes.push("precision=bf16".to_string());
                Precision::Bf16
            }
        };
        let global_batch = if let Some(gb) = self.global_batch {
            gb
        } else {
            let gb = self
                .global_batch_from_step(seq_len, n_gpus)
                .ok_or_else(|| {
                    missing("global_batch (and a measured step time and tokens/s to derive it)")
                })?;
            notes.push(format!(
                "global_batch={gb} (tokens/s · n_gpus · step time / seq_len)"
            ));
            gb
        };
        let framework = self.framework.as_deref().and_then(Framework::from_name);
        let job = Job {
            seq_len,
            global_batch,
            tokens: 1e12,
            precision,
            grad_bytes: 4.0,
            optimizer: self
                .optimizer
                .as_deref()
                .and_then(Optimizer::from_name)
                .unwrap_or(Optimizer::default_for_framework(framework, precision)),
            framework,
            cross_entropy: self
                .cross_entropy
                .as_deref()
                .and_then(CrossEntropy::from_name),
        };
        let template = trainplan_search::validate::Template {
            tp: self.tp,
            pp: self.pp,
            dp: self.dp,
            cp: self.cp,
            ep: self.ep,
            vpp: self.vpp,
            sequence_parallel: self.sequence_parallel,
            micro_batch: self.micro_batch,
            recompute: self.recompute.as_deref().map(|r| match r {
                "none" => Recompute::None,
                "selective" => Recompute::Selective,
                _ => Recompute::Full,
            }),
            zero: self.zero,
            tp_overlap: self.tp_comm_overlap,
            ep_overlap: self.ep_comm_overlap,
            dp_overlap: self.dp_comm_overlap,
            ep_dispatcher: self
                .ep_dispatcher
                .as_deref()
                .and_then(EpDispatcher::from_name),
            flash_attention: self.flash_attention,
        };
        Ok(trainplan_search::validate::RunSpec {
            name: self.name.clone(),
            source: self.source_id.clone(),
            model,
            cluster,
            job,
            template,
            notes,
        })
    }

    /// The global batch (sequences) a row with a measured step time and throughput but no
    /// `global_batch` ran: the data README's step-time rule solved for the batch,
    /// `tokens/s per GPU · n_gpus · step_time / seq_len`, rounded to whole sequences.
    fn global_batch_from_step(&self, seq_len: u32, n_gpus: u32) -> Option<u32> {
        let tokens = self.measured_tokens_per_s_per_gpu?;
        let step = self.measured_step_time_s?;
        let gb = (tokens * f64::from(n_gpus) * step / f64::from(seq_len)).round();
        (gb >= 1.0 && gb <= f64::from(u32::MAX)).then_some(gb as u32)
    }
}
