//! `trainplan estimate`: back-of-envelope sizing of a training run, with the method shown.
//!
//! The arithmetic lives in `trainplan_parallel::envelope`; this file turns flags into its input
//! (looking up the accelerator, its node layout and model presets) and renders the result three
//! ways: a table that writes every formula with its numbers substituted, so a reader learns the
//! method, and JSON or CSV with stable snake_case keys that carry their units in their names.

use crate::output::{self, Format};
use anyhow::Context;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;
use trainplan_io::numbers::{parse_count, parse_positive_count};
use trainplan_io::{Database, Location};
use trainplan_parallel::{
    envelope, Envelope, EnvelopeInput, MfuSource, Sizing, TokensSource,
    CHINCHILLA_TOKENS_PER_PARAM, MODEL_STATE_BYTES_PER_PARAM,
};
use trainplan_units::Flops;

/// The assumptions behind every number, printed after the options in `--help`.
const ASSUMPTIONS: &str = "\
Assumptions:
  - Training FLOPs are C = 6·N·D (Kaplan et al. 2020): per parameter and token, 2 forward and
    4 backward. With --model the count adds attention (12·l·h·s per token, PaLM appendix B)
    and the output logits.
  - Tokens default to Chinchilla-optimal, D = 20·N (Hoffmann et al. 2022).
  - Time is C / (dense bf16 peak × MFU). MFU counts model FLOPs only (no recomputation), per
    second, over the dense peak; the work is assumed to divide perfectly over the GPUs.
  - Memory counts mixed-precision Adam at 16 bytes per parameter (bf16 weights and gradients,
    fp32 master weights, momentum and variance; ZeRO, Rajbhandari et al. 2020), fully sharded,
    and leaves activations out: real runs need more GPUs than the minimum shown.
  - Numbers accept the suffixes K, M, B, T (13B = 1.3e10).";

/// Back-of-envelope sizing: training compute, GPU-hours, GPUs for a deadline, cost and the
/// memory floor, each shown with its formula ([`ASSUMPTIONS`] lists what it takes for granted).
#[derive(Debug, clap::Args)]
#[command(
    group(
        clap::ArgGroup::new("size")
            .required(true)
            .args(["params", "model", "compute"])
    ),
    after_help = ASSUMPTIONS
)]
pub struct Args {
    /// Parameters N, e.g. 13B or 1.3e10. Training FLOPs are then 6·N·D, which leaves out the
    /// attention term; use --model to include it.
    #[arg(long, value_name = "N", value_parser = parse_positive_count, allow_negative_numbers = true)]
    pub params: Option<f64>,

    /// A model preset (see `trainplan models`): N comes from its architecture, and the training
    /// FLOPs add attention (12·l·h·s per token) and the output logits to 6·N·D.
    #[arg(long, value_name = "PRESET")]
    pub model: Option<String>,

    /// Training tokens D, e.g. 260B or 15T. Default: Chinchilla-optimal, 20 tokens per parameter
    /// (Hoffmann et al. 2022).
    #[arg(long, value_name = "D", value_parser = parse_positive_count, allow_negative_numbers = true, conflicts_with = "compute")]
    pub tokens: Option<f64>,

    /// A compute budget C in FLOPs, e.g. 5.76e23. Gives the compute-optimal split: with C = 6·N·D
    /// and D = 20·N, N = sqrt(C / 120).
    #[arg(long, value_name = "C", value_parser = parse_positive_count, allow_negative_numbers = true)]
    pub compute: Option<f64>,

    /// Sequence length of the attention term, with --model. Default: the preset's.
    #[arg(long, value_name = "S", conflicts_with_all = ["params", "compute"], value_parser = clap::value_parser!(u32).range(1..))]
    pub seq_len: Option<u32>,

    /// Accelerator id (see `trainplan hardware`). Its dense bf16 peak is the denominator of MFU,
    /// its HBM the memory limit, and its default node layout sets the GPUs per node.
    #[arg(long, value_name = "ID", default_value = "h100-sxm")]
    pub gpu: String,

    /// Model FLOPs utilisation, in (0, 1]: model FLOPs per second over the dense bf16 peak.
    /// Default: a typical measured value for the accelerator's class (0.50 for A100-class, 0.40
    /// for H100-class and newer NVIDIA parts, from public runs), stated in the output.
    #[arg(long, value_name = "F", value_parser = parse_mfu, allow_negative_numbers = true)]
    pub mfu: Option<f64>,

    /// Deadline in days: report the GPUs needed to finish in time, rounded up to whole nodes,
    /// assuming the work divides perfectly over the GPUs at the given MFU.
    #[arg(long, value_name = "T", value_parser = parse_positive_count, allow_negative_numbers = true)]
    pub deadline_days: Option<f64>,

    /// GPU count: report the wall-clock days on this many GPUs, assuming perfect scaling.
    #[arg(long, value_name = "G", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub gpus: Option<u32>,

    /// Price of one GPU-hour in USD. Default: the hardware database's price point, if it has
    /// one (low confidence; refresh before costing a real run). Cost = GPU-hours × price.
    #[arg(long, value_name = "USD_PER_GPU_HOUR", value_parser = parse_count, allow_negative_numbers = true)]
    pub price: Option<f64>,

    /// Output format (default: table on a terminal, csv in a pipe or with -o).
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write the output to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Refuses a flag value outside `[min, max]`. Beyond the bounds the arithmetic still runs but
/// the answer (1e52 FLOPs, a deadline of a nanosecond) is a typo, not a plan. It is a bad value
/// (exit 1) rather than bad syntax, which clap reports (exit 2).
fn check_range(
    flag: &str,
    value: Option<f64>,
    min: f64,
    max: f64,
    what: &str,
) -> anyhow::Result<()> {
    // Plain digits read best for everyday bounds, scientific notation for the huge ones.
    let show = |x: f64| {
        if x == 0.0 || (1e-3..1e7).contains(&x) {
            format!("{x}")
        } else {
            format!("{x:e}")
        }
    };
    match value {
        Some(v) if !(min..=max).contains(&v) => anyhow::bail!(
            "{flag}: {} is too {}; {what} must be between {} and {}",
            show(v),
            if v < min { "small" } else { "large" },
            show(min),
            show(max)
        ),
        _ => Ok(()),
    }
}

/// The bounds of every numeric flag: a thousand times today's largest models (1e15 parameters)
/// and runs (1e16 tokens, the scenario files' bound), their product for FLOPs, a deadline from a
/// minute and a half to a century, and a price up to 1e6 USD per GPU-hour.
fn check_ranges(args: &Args) -> anyhow::Result<()> {
    check_range("--params", args.params, 1.0, 1e15, "a parameter count")?;
    check_range("--tokens", args.tokens, 1.0, 1e16, "a token count")?;
    check_range("--compute", args.compute, 1.0, 1e32, "a FLOP budget")?;
    check_range(
        "--deadline-days",
        args.deadline_days,
        1e-3,
        36_500.0,
        "a deadline in days",
    )?;
    check_range(
        "--price",
        args.price,
        0.0,
        1e6,
        "a price in USD per GPU-hour",
    )?;
    Ok(())
}

/// Parses an MFU: a plain fraction in (0, 1].
fn parse_mfu(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number; expected a fraction such as 0.4"))?;
    if value.is_finite() && value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(format!(
            "MFU must be greater than 0 and at most 1 (a fraction of the peak, e.g. 0.4), got `{text}`"
        ))
    }
}

/// What the run is, for the headline and the `model` column.
struct Labels<'a> {
    gpu_id: &'a str,
    gpu_name: &'a str,
    model_id: Option<&'a str>,
    price_source: Option<&'static str>,
}

pub fn run(args: &Args, db: &Database) -> anyhow::Result<()> {
    check_ranges(args)?;
    let accel = db.accelerator(&args.gpu, &Location::file("--gpu"))?;
    let node = db
        .node(
            &accel.default_node,
            &Location::file(format!("accelerator `{}` default_node", accel.id)),
        )
        .context("failed to find the node layout that sets the GPUs per node")?;
    let preset = match &args.model {
        Some(id) => Some(db.model(id, &Location::file("--model"))?),
        None => None,
    };
    let tokens = args.tokens;
    let sizing = match (args.params, preset, args.compute) {
        (Some(params), _, _) => Sizing::Params { params, tokens },
        (None, Some(preset), _) => Sizing::Model {
            model: &preset.model,
            seq_len: args.seq_len.unwrap_or(preset.seq_len),
            tokens,
        },
        (None, None, Some(c)) => Sizing::Compute { flops: Flops(c) },
        // Clap's required group makes this unreachable; an error is still better than a panic.
        (None, None, None) => anyhow::bail!("give one of --params, --model or --compute"),
    };
    let (price, price_source) = match (args.price, accel.price_usd_per_gpu_hour) {
        (Some(p), _) => (Some(p), Some("given")),
        (None, Some(p)) => (Some(p), Some("hardware_db")),
        (None, None) => (None, None),
    };
    let input = EnvelopeInput {
        sizing,
        accelerator: accel,
        gpus_per_node: node.gpus_per_node,
        mfu: args.mfu,
        gpus: args.gpus,
        deadline_days: args.deadline_days,
        price_usd_per_gpu_hour: price,
    };
    let e = envelope(&input).context("failed to compute the estimate")?;
    let ctx = Labels {
        gpu_id: &accel.id,
        gpu_name: &accel.name,
        model_id: preset.map(|p| p.model.id.as_str()),
        price_source,
    };
    let text = match Format::or_default(args.format, args.output.as_ref()) {
        Format::Table => table(&e, &ctx),
        Format::Json => json(&fields(&e, &ctx)),
        Format::Csv => csv(&fields(&e, &ctx))?,
    };
    output::emit(args.output.as_ref(), text.as_bytes())
}

/// Every output value in a fixed order: the JSON keys and the CSV columns. Adding a key at the
/// end is compatible; renaming or reordering is not.
fn fields(e: &Envelope, ctx: &Labels<'_>) -> Vec<(&'static str, Value)> {
    let opt_f = |x: Option<f64>| x.map_or(Value::Null, Value::from);
    let opt_u = |x: Option<u64>| x.map_or(Value::Null, Value::from);
    let wall_clock = e
        .wall_clock
        .map(|w| (w.gpus, w.days))
        .or_else(|| e.deadline.as_ref().map(|d| (d.gpus, d.wall_clock_days)));
    vec![
        ("gpu", Value::from(ctx.gpu_id)),
        ("gpu_name", Value::from(ctx.gpu_name)),
        ("model", ctx.model_id.map_or(Value::Null, Value::from)),
        (
            "seq_len",
            e.with_attention
                .map_or(Value::Null, |w| Value::from(w.seq_len)),
        ),
        ("params", Value::from(e.params)),
        ("active_params", Value::from(e.active_params)),
        ("tokens", Value::from(e.tokens)),
        ("tokens_source", Value::from(e.tokens_source.as_str())),
        ("tokens_per_param", Value::from(e.tokens / e.params)),
        (
            "compute_budget_flops",
            opt_f(e.compute_optimal.map(|c| c.compute.get())),
        ),
        ("flops_6nd", Value::from(e.flops_6nd.get())),
        (
            "model_flops_per_token",
            opt_f(e.with_attention.map(|w| w.flops_per_token.get())),
        ),
        (
            "flops_with_attention",
            opt_f(e.with_attention.map(|w| w.training_flops.get())),
        ),
        ("training_flops", Value::from(e.training_flops.get())),
        ("peak_bf16_flops_per_s", Value::from(e.peak.get())),
        ("mfu", Value::from(e.mfu)),
        ("mfu_source", Value::from(e.mfu_source.as_str())),
        ("typical_mfu", Value::from(e.typical_mfu.mfu)),
        ("typical_mfu_basis", Value::from(e.typical_mfu.basis)),
        ("gpu_hours", Value::from(e.gpu_hours)),
        ("wall_clock_gpus", opt_u(wall_clock.map(|w| w.0))),
        ("wall_clock_days", opt_f(wall_clock.map(|w| w.1))),
        ("deadline_days", opt_f(e.deadline.map(|d| d.days))),
        (
            "gpus_for_deadline_exact",
            opt_f(e.deadline.map(|d| d.gpus_exact)),
        ),
        (
            "gpus_per_node",
            e.deadline
                .map_or(Value::Null, |d| Value::from(d.gpus_per_node)),
        ),
        ("nodes_for_deadline", opt_u(e.deadline.map(|d| d.nodes))),
        ("gpus_for_deadline", opt_u(e.deadline.map(|d| d.gpus))),
        ("price_usd_per_gpu_hour", opt_f(e.price_usd_per_gpu_hour)),
        (
            "price_source",
            ctx.price_source.map_or(Value::Null, Value::from),
        ),
        ("cost_usd", opt_f(e.cost_usd)),
        (
            "weights_bf16_bytes",
            Value::from(e.memory.weights_bf16.get()),
        ),
        (
            "model_states_bytes",
            Value::from(e.memory.model_states.get()),
        ),
        (
            "hbm_capacity_bytes",
            Value::from(e.memory.hbm_capacity.get()),
        ),
        (
            "min_gpus_for_model_states",
            Value::from(e.memory.min_gpus_for_model_states),
        ),
        (
            "weights_fit_one_gpu",
            Value::from(e.memory.weights_fit_one_gpu),
        ),
    ]
}

/// One JSON object, keys in the order of [`fields`], two-space indented, newline-terminated.
fn json(fields: &[(&'static str, Value)]) -> String {
    let mut out = String::from("{\n");
    for (i, (key, value)) in fields.iter().enumerate() {
        let sep = if i + 1 < fields.len() { "," } else { "" };
        // Keys are fixed ASCII identifiers and `Value`'s Display writes valid JSON.
        let _ = writeln!(out, "  \"{key}\": {value}{sep}");
    }
    out.push_str("}\n");
    out
}

/// A header row and one value row; a missing value is an empty cell.
fn csv(fields: &[(&'static str, Value)]) -> anyhow::Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(fields.iter().map(|(key, _)| *key))?;
    writer.write_record(fields.iter().map(|(_, value)| match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        // Numbers and booleans as JSON writes them: shortest round-trip form, `true`/`false`.
        other => other.to_string(),
    }))?;
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("failed to write CSV: {e}"))?;
    Ok(String::from_utf8(bytes)?)
}

/// A number in scientific notation with three significant digits: `2.03e22`.
fn sci(x: f64) -> String {
    format!("{x:.2e}")
}

/// A count with a scale suffix, as people say it: `13.0B`, `1.39T`.
fn human(x: f64) -> String {
    let (scale, suffix) = if x >= 1e12 {
        (1e12, "T")
    } else if x >= 1e9 {
        (1e9, "B")
    } else if x >= 1e6 {
        (1e6, "M")
    } else if x >= 1e3 {
        (1e3, "K")
    } else {
        (1.0, "")
    };
    let v = x / scale;
    if v >= 100.0 {
        format!("{v:.0}{suffix}")
    } else if v >= 10.0 {
        format!("{v:.1}{suffix}")
    } else {
        format!("{v:.2}{suffix}")
    }
}

/// A non-negative number rounded to an integer with thousands separators: `36,111`.
fn grouped(x: f64) -> String {
    if !x.is_finite() || x >= 1e18 {
        return sci(x);
    }
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as decimal gigabytes, the unit of spec sheets (80 GB) and of `2 × 70B = 140 GB`.
fn gb(bytes: trainplan_units::Bytes) -> String {
    let v = bytes.gb();
    if v >= 100.0 {
        format!("{} GB", grouped(v))
    } else {
        format!("{v:.1} GB")
    }
}

/// The table: one line per quantity, each formula written out with the numbers substituted.
fn table(e: &Envelope, ctx: &Labels<'_>) -> String {
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut push = |label: &str, text: String| lines.push((label.to_string(), text));
    let n = e.params;
    let d = e.tokens;

    let what = match ctx.model_id {
        Some(id) => format!("{id} ({} parameters)", human(n)),
        None => format!("{} parameters", human(n)),
    };
    let headline = format!(
        "Back-of-envelope estimate: {what}, {} tokens, on {} ({})",
        human(d),
        ctx.gpu_name,
        ctx.gpu_id
    );

    push("# compute", String::new());
    if let Some(c) = e.compute_optimal {
        push(
            "parameters",
            format!(
                "N = sqrt(C / (6 × 20)) = sqrt({} / 120) = {} ({})",
                sci(c.compute.get()),
                sci(c.params),
                human(c.params)
            ),
        );
    } else if e.active_params == n {
        push("parameters", format!("N = {} ({})", sci(n), human(n)));
    } else {
        push(
            "parameters",
            format!(
                "N = {} total, {} active per token (mixture of experts)",
                sci(n),
                sci(e.active_params)
            ),
        );
    }
    let tokens_text = match e.tokens_source {
        TokensSource::Given => format!(
            "D = {} ({}, given; {:.1} tokens per parameter, Chinchilla-optimal is 20)",
            sci(d),
            human(d),
            d / n
        ),
        TokensSource::Chinchilla | TokensSource::ComputeOptimal => format!(
            "D = 20 × N = 20 × {} = {} ({}; Chinchilla-optimal, Hoffmann et al. 2022)",
            sci(n),
            sci(d),
            human(d)
        ),
    };
    push("tokens", tokens_text);
    let active = e.active_params;
    push(
        "training FLOPs (6ND)",
        format!(
            "C = 6 × {} × D = 6 × {} × {} = {} FLOPs (Kaplan et al. 2020)",
            if active < e.params { "N_active" } else { "N" },
            sci(active),
            sci(d),
            sci(e.flops_6nd.get())
        ),
    );
    if let Some(w) = e.with_attention {
        push(
            "with attention",
            format!(
                "C = (model FLOPs per token at s = {}) × D = {} × {} = {} FLOPs \
                 (attention 12·l·h·s and logits included, {:+.1}% over 6ND)",
                w.seq_len,
                sci(w.flops_per_token.get()),
                sci(d),
                sci(w.training_flops.get()),
                (w.training_flops / e.flops_6nd - 1.0) * 100.0
            ),
        );
    }

    push("# time", String::new());
    push(
        "peak",
        format!("{} TFLOP/s dense bf16 per GPU", grouped(e.peak.tflops())),
    );
    let mfu_text = match e.mfu_source {
        MfuSource::Given => format!(
            "{} (given; typical for this GPU: {:.2})",
            e.mfu, e.typical_mfu.mfu
        ),
        MfuSource::Typical => format!(
            "{:.2} (default: {}; pass --mfu to change)",
            e.mfu, e.typical_mfu.basis
        ),
    };
    push("MFU", mfu_text);
    push(
        "GPU-hours",
        format!(
            "C / (peak × MFU) / 3600 = {} / ({} × {}) / 3600 = {}",
            sci(e.training_flops.get()),
            sci(e.peak.get()),
            e.mfu,
            grouped(e.gpu_hours)
        ),
    );
    if let Some(dl) = e.deadline {
        push(
            &format!("GPUs for {} days", trim_float(dl.days)),
            format!(
                "GPU-hours / (24 × T) = {} / (24 × {}) = {:.1}; in {}-GPU nodes: ceil({:.1} / {}) = {} nodes = {} GPUs",
                grouped(e.gpu_hours),
                trim_float(dl.days),
                dl.gpus_exact,
                dl.gpus_per_node,
                dl.gpus_exact,
                dl.gpus_per_node,
                dl.nodes,
                dl.gpus
            ),
        );
        if e.wall_clock.is_none() {
            push(
                "wall clock",
                format!(
                    "GPU-hours / G / 24 = {} / {} / 24 = {:.2} days",
                    grouped(e.gpu_hours),
                    dl.gpus,
                    dl.wall_clock_days
                ),
            );
        }
    }
    if let Some(w) = e.wall_clock {
        push(
            "wall clock",
            format!(
                "GPU-hours / G / 24 = {} / {} / 24 = {:.2} days",
                grouped(e.gpu_hours),
                w.gpus,
                w.days
            ),
        );
    }
    match (e.price_usd_per_gpu_hour, e.cost_usd) {
        (Some(price), Some(cost)) => {
            let source = match ctx.price_source {
                Some("hardware_db") => " (hardware-db price point, low confidence)",
                _ => "",
            };
            push(
                "cost",
                format!(
                    "GPU-hours × price = {} × ${price:.2} = ${}{source}",
                    grouped(e.gpu_hours),
                    grouped(cost)
                ),
            );
        }
        _ => push(
            "cost",
            "no price in the hardware database for this GPU; pass --price".to_string(),
        ),
    }

    push("# memory", String::new());
    let m = &e.memory;
    push(
        "bf16 weights",
        format!("2 × N = 2 × {} = {}", sci(n), gb(m.weights_bf16)),
    );
    push(
        "model states",
        format!(
            "{} × N = {} × {} = {} (bf16 weights 2 + bf16 gradients 2 + fp32 master weights, \
             momentum and variance 12 bytes per parameter; ZeRO, Rajbhandari et al. 2020)",
            MODEL_STATE_BYTES_PER_PARAM,
            MODEL_STATE_BYTES_PER_PARAM,
            sci(n),
            gb(m.model_states)
        ),
    );
    push(
        "min GPUs for states",
        format!(
            "ceil(16 × N / HBM) = ceil({} / {}) = {} (fully sharded, before activations)",
            gb(m.model_states),
            gb(m.hbm_capacity),
            m.min_gpus_for_model_states
        ),
    );
    push(
        "weights fit one GPU",
        format!(
            "2 × N <= HBM: {} {} {}: {}",
            gb(m.weights_bf16),
            if m.weights_fit_one_gpu { "<=" } else { ">" },
            gb(m.hbm_capacity),
            if m.weights_fit_one_gpu {
                "yes, a bf16 forward pass fits one GPU"
            } else {
                "no, even a forward pass needs the weights split over GPUs"
            }
        ),
    );
    if let Some(dl) = e.deadline {
        if dl.gpus < m.min_gpus_for_model_states {
            push(
                "note",
                format!(
                    "the deadline needs only {} GPUs for compute, but the model states need at least {}",
                    dl.gpus, m.min_gpus_for_model_states
                ),
            );
        }
    }

    let width = lines
        .iter()
        .filter(|(label, _)| !label.starts_with('#'))
        .map(|(label, _)| label.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = headline;
    out.push('\n');
    for (label, text) in &lines {
        if let Some(section) = label.strip_prefix("# ") {
            let _ = write!(out, "\n{section}\n");
        } else {
            let _ = writeln!(out, "  {label:<width$}  {text}");
        }
    }
    let per_param = CHINCHILLA_TOKENS_PER_PARAM;
    let _ = write!(
        out,
        "\nAssumes the work divides perfectly over the GPUs at the given MFU, and {per_param} tokens \
         per parameter when none are given; see `trainplan estimate --help`.\n"
    );
    out
}

/// A float without trailing zeros: `7`, `3.5`.
fn trim_float(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use trainplan_hardware::Accelerator;

    /// The shared A100 80GB fixture, with the hardware-db price point.
    fn a100() -> Accelerator {
        trainplan_hardware::testing::a100_80gb(Some(2.4984))
    }

    /// The one place the renderers are called: the 13B example on an A100.
    fn render(sizing: Sizing<'_>, mfu: Option<f64>, gpus: Option<u32>) -> (String, String, String) {
        let accel = a100();
        let input = EnvelopeInput {
            sizing,
            accelerator: &accel,
            gpus_per_node: 8,
            mfu,
            gpus,
            deadline_days: Some(7.0),
            price_usd_per_gpu_hour: accel.price_usd_per_gpu_hour,
        };
        let e = envelope(&input).unwrap();
        let labels = Labels {
            gpu_id: &accel.id,
            gpu_name: &accel.name,
            model_id: None,
            price_source: Some("hardware_db"),
        };
        let f = fields(&e, &labels);
        (table(&e, &labels), json(&f), csv(&f).unwrap())
    }

    #[test]
    fn table_shows_formulas_with_numbers() {
        let (table, _, _) = render(
            Sizing::Params {
                params: 13e9,
                tokens: Some(260e9),
            },
            Some(0.5),
            None,
        );
        println!("{table}");
        assert!(
            table.contains("C = 6 × N × D = 6 × 1.30e10 × 2.60e11 = 2.03e22 FLOPs"),
            "{table}"
        );
        assert!(table.contains("= 36,111"), "{table}");
        assert!(table.contains("= 27 nodes = 216 GPUs"), "{table}");
        assert!(table.contains("2 × N = 2 × 1.30e10 = 26.0 GB"), "{table}");
    }

    #[test]
    fn json_and_csv_carry_the_same_keys() {
        let (_, json, csv) = render(
            Sizing::Compute {
                flops: Flops(5.76e23),
            },
            None,
            Some(1024),
        );
        println!("{json}\n{csv}");
        let value: Value = serde_json::from_str(&json).unwrap();
        let object = value.as_object().unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header.len(), object.len());
        for key in &header {
            assert!(object.contains_key(*key), "{key}");
        }
        assert_eq!(lines.count(), 1);
        assert_eq!(object["tokens_source"], "compute_optimal");
        assert_eq!(object["mfu_source"], "typical");
        assert_eq!(object["wall_clock_gpus"], 1024);
    }
}
