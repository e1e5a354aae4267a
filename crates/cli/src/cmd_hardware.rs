//! `trainplan hardware`: the accelerators (or, with `--nodes`, the node layouts) the database holds.

use crate::output::{self, Format};
use std::path::PathBuf;
use trainplan_hardware::{Accelerator, Node};
use trainplan_io::Database;

/// Arguments of `trainplan hardware`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format (default: table on a terminal, csv in a pipe or with -o).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// List the node layouts instead of the accelerators (one CSV schema per listing).
    #[arg(long)]
    pub nodes: bool,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Columns of the accelerator listing; stable, new ones go at the end.
const ACCELERATOR_COLUMNS: [&str; 12] = [
    "id",
    "name",
    "vendor",
    "bf16_tflops",
    "fp16_tflops",
    "fp8_tflops",
    "hbm_gib",
    "hbm_tbps",
    "scaleup_unidir_gbps",
    "tdp_w",
    "price_usd_per_gpu_hour",
    "default_node",
];

/// Columns of the node listing; stable, new ones go at the end.
const NODE_COLUMNS: [&str; 7] = [
    "id",
    "name",
    "accelerator",
    "gpus_per_node",
    "scaleup_domain",
    "nics_per_node",
    "nic_gbit_s",
];

pub fn run(args: &Args, db: &Database) -> anyhow::Result<()> {
    let format = Format::or_default(args.format, args.output.as_ref());
    let bytes = if args.nodes {
        let rows: Vec<Vec<String>> = db.nodes().map(node_row).collect();
        render(format, &NODE_COLUMNS, &rows)?
    } else {
        let rows: Vec<Vec<String>> = db.accelerators().map(accelerator_row).collect();
        render(format, &ACCELERATOR_COLUMNS, &rows)?
    };
    output::emit(args.output.as_ref(), &bytes)
}

/// A number as written in files: shortest form that reads back to the same value.
pub(crate) fn num(x: f64) -> String {
    // Conversions to and from base units leave noise in the last bits (79.65 GiB round-trips
    // as 79.650000000001); six decimals is finer than any figure in the database.
    let rounded = (x * 1e6).round() / 1e6;
    format!("{rounded}")
}

fn accelerator_row(a: &Accelerator) -> Vec<String> {
    vec![
        a.id.clone(),
        a.name.clone(),
        a.vendor.clone(),
        num(a.bf16_peak.tflops()),
        num(a.fp16_peak.tflops()),
        a.fp8_peak.map(|p| num(p.tflops())).unwrap_or_default(),
        num(a.hbm_capacity.gib()),
        num(a.hbm_bandwidth.gbps() / 1000.0),
        num(a.scaleup_unidir.gbps()),
        num(a.tdp_w),
        a.price_usd_per_gpu_hour.map(num).unwrap_or_default(),
        a.default_node.clone(),
    ]
}

fn node_row(n: &Node) -> Vec<String> {
    vec![
        n.id.clone(),
        n.name.clone(),
        n.accelerator.clone(),
        n.gpus_per_node.to_string(),
        n.scaleup_domain.to_string(),
        n.nics_per_node.to_string(),
        num(n.nic_gbit_s),
    ]
}

/// Renders a listing with a fixed header. JSON gives an array of objects with numbers as numbers
/// and empty cells as null, so scripts need not parse strings.
pub(crate) fn render(
    format: Format,
    header: &[&str],
    rows: &[Vec<String>],
) -> anyhow::Result<Vec<u8>> {
    match format {
        Format::Table => {
            let mut all = vec![header.iter().map(|h| (*h).to_string()).collect::<Vec<_>>()];
            all.extend(rows.iter().cloned());
            Ok(output::table(&all).into_bytes())
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(header)?;
            for row in rows {
                w.write_record(row)?;
            }
            Ok(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)
        }
        Format::Json => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    let object = header
                        .iter()
                        .zip(row)
                        .map(|(h, cell)| ((*h).to_string(), json_cell(h, cell)))
                        .collect::<serde_json::Map<_, _>>();
                    serde_json::Value::Object(object)
                })
                .collect();
            let mut text = serde_json::to_string_pretty(&items)?;
            text.push('\n');
            Ok(text.into_bytes())
        }
    }
}

/// One cell as JSON: empty is null, `true`/`false` are booleans, a number column is a number,
/// the rest are strings.
fn json_cell(column: &str, cell: &str) -> serde_json::Value {
    // Ids and names may look numeric ("h800" does not, but a user's "8" might); only measure
    // columns become numbers.
    let textual = matches!(
        column,
        "id" | "name"
            | "vendor"
            | "default_node"
            | "accelerator"
            | "ffn_act"
            | "gpu"
            | "model"
            | "recompute"
            | "bottleneck"
            | "objective"
    );
    if cell.is_empty() {
        serde_json::Value::Null
    } else if textual {
        serde_json::Value::String(cell.to_string())
    } else if let Ok(b) = cell.parse::<bool>() {
        serde_json::Value::Bool(b)
    } else if let Ok(i) = cell.parse::<u64>() {
        serde_json::Value::from(i)
    } else if let Some(n) = cell
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        serde_json::Value::Number(n)
    } else {
        serde_json::Value::String(cell.to_string())
    }
}
