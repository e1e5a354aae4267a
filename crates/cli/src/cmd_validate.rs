//! `trainplan validate`: predict measured runs and report how far off the predictions are.

use crate::output::{emit, table, Format};
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use trainplan_io::atomic::write_atomic;
use trainplan_io::fitted::{with_fitted, FittedValue};
use trainplan_io::runs::{read_runs, RunRow};
use trainplan_io::Database;
use trainplan_search::calibrate::{self, Observation};
use trainplan_search::validate::{predict, ErrorSummary};

/// Arguments of `trainplan validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Runs CSV (columns as in ../shared/data/README.md; ../shared/data/runs-public.csv is one).
    pub runs: PathBuf,
    /// Output format (default: table on a terminal, csv in a pipe or with -o).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the per-run output to FILE (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Refit the efficiency factors on these runs (Levenberg-Marquardt on a Huber loss) and print them.
    #[arg(long, conflicts_with = "cross_validate")]
    pub fit: bool,
    /// With --fit: also write every accelerator file the fitted factors apply to into
    /// DIR/accelerators/, the database's own file with only those factors and their notes
    /// changed; use them with `trainplan --hardware-db DIR ...`.
    #[arg(long, value_name = "DIR", requires = "fit")]
    pub write_db: Option<PathBuf>,
    /// Leave-one-source-out: refit without each source in turn and report the errors on it, the
    /// accuracy to expect on runs unlike any the calibration has seen.
    #[arg(long)]
    pub cross_validate: bool,
    /// Explain one run (by its `name`) as `trainplan explain` explains a scenario: the layout
    /// predicted for it, what validate chose, and each number with its formula, beside what was
    /// measured.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["fit", "cross_validate", "output", "format"])]
    pub explain: Option<String>,
}

/// One row of output.
#[derive(Debug, Serialize, Default, Clone)]
pub struct Row {
    name: String,
    source_id: String,
    gpu: String,
    model: String,
    measured_tokens_per_s_per_gpu: Option<f64>,
    predicted_tokens_per_s_per_gpu: Option<f64>,
    tokens_rel_error: Option<f64>,
    measured_mfu: Option<f64>,
    predicted_mfu: Option<f64>,
    measured_mem_gib: Option<f64>,
    predicted_mem_gib: Option<f64>,
    mem_rel_error: Option<f64>,
    measured_oom: Option<bool>,
    predicted_fits: Option<bool>,
    tp: Option<u32>,
    pp: Option<u32>,
    dp: Option<u32>,
    cp: Option<u32>,
    ep: Option<u32>,
    vpp: Option<u32>,
    micro_batch: Option<u32>,
    recompute: Option<String>,
    zero: Option<u8>,
    sequence_parallel: Option<bool>,
    choices: String,
    bottleneck: String,
    skipped: String,
    predicted_step_time_s: Option<f64>,
    compute_s: Option<f64>,
    exposed_comm_s: Option<f64>,
    bubble_s: Option<f64>,
}

/// The validation summary.
#[derive(Debug, Serialize, Default)]
pub struct Summary {
    rows: usize,
    modelled: usize,
    skipped: usize,
    tokens_median_abs_rel_error: f64,
    tokens_worst_abs_rel_error: f64,
    tokens_rows: usize,
    mem_median_abs_rel_error: f64,
    mem_worst_abs_rel_error: f64,
    mem_rows: usize,
    oom_rows: usize,
    oom_rows_predicted_not_to_fit: usize,
    ran_rows: usize,
    ran_rows_predicted_to_fit: usize,
    by_source: BTreeMap<String, (usize, f64, f64)>,
    by_gpu: BTreeMap<String, (usize, f64, f64)>,
    /// Memory errors by source and by gpu, where memory was measured.
    mem_by_source: BTreeMap<String, (usize, f64, f64)>,
    mem_by_gpu: BTreeMap<String, (usize, f64, f64)>,
}

impl Summary {
    /// Fraction of the rows that ran which are predicted to fit.
    pub fn ran_fit_fraction(&self) -> f64 {
        if self.ran_rows == 0 {
            1.0
        } else {
            self.ran_rows_predicted_to_fit as f64 / self.ran_rows as f64
        }
    }
}

/// Predicts every row.
pub fn predict_rows(rows: &[RunRow], db: &Database, path: &str) -> Vec<Row> {
    rows.iter()
        .map(|r| {
            let mut out = Row {
                name: r.name.clone(),
                source_id: r.source_id.clone(),
                gpu: r.gpu.clone(),
                model: r.model.clone(),
                measured_tokens_per_s_per_gpu: r.measured_tokens_per_s_per_gpu,
                measured_mfu: r.measured_mfu,
                measured_mem_gib: r.measured_mem_gib,
                measured_oom: r.measured_oom,
                ..Row::default()
            };
            let spec = match r.to_spec(db, path) {
                Ok(s) => s,
                Err(skip) => {
                    out.skipped = skip.0;
                    return out;
                }
            };
            match predict(&spec) {
                Ok(p) => {
                    let e = &p.estimate;
                    let s = &p.strategy;
                    out.predicted_tokens_per_s_per_gpu = Some(e.tokens_per_s_per_gpu);
                    out.tokens_rel_error = r
                        .measured_tokens_per_s_per_gpu
                        .filter(|_| r.measured_oom != Some(true))
                        .map(|m| (e.tokens_per_s_per_gpu - m) / m);
                    out.predicted_mfu = Some(e.mfu);
                    out.predicted_mem_gib = Some(e.memory.total.gib());
                    out.mem_rel_error = r.measured_mem_gib.map(|m| (e.memory.total.gib() - m) / m);
                    out.predicted_fits = Some(e.fits());
                    out.tp = Some(s.tp);
                    out.pp = Some(s.pp);
                    out.dp = Some(s.dp);
                    out.cp = Some(s.cp);
                    out.ep = Some(s.ep);
                    out.vpp = Some(s.vpp);
                    out.micro_batch = Some(s.micro_batch);
                    out.recompute = Some(s.recompute.as_str().to_string());
                    out.zero = Some(s.zero);
                    out.sequence_parallel = Some(s.sp_active());
                    out.choices = spec.choices(&p);
                    out.bottleneck = e.bottleneck.as_str().to_string();
                    out.predicted_step_time_s = Some(e.time.step.get());
                    out.compute_s = Some(e.time.compute.get());
                    out.exposed_comm_s = Some(e.time.exposed_comm().get());
                    out.bubble_s = Some(e.time.bubble.get());
                }
                Err(e) => out.skipped = format!("no valid layout: {e}"),
            }
            out
        })
        .collect()
}

/// Summarises predicted rows.
pub fn summarise(rows: &[Row]) -> Summary {
    let tokens: Vec<f64> = rows.iter().filter_map(|r| r.tokens_rel_error).collect();
    let mem: Vec<f64> = rows.iter().filter_map(|r| r.mem_rel_error).collect();
    let t = ErrorSummary::of(&tokens);
    let m = ErrorSummary::of(&mem);
    let group = |key: fn(&Row) -> &str, error: fn(&Row) -> Option<f64>| {
        let mut map: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for r in rows {
            if let Some(e) = error(r) {
                map.entry(key(r).to_string()).or_default().push(e);
            }
        }
        map.into_iter()
            .map(|(k, v)| {
                let s = ErrorSummary::of(&v);
                (k, (s.n, s.median, s.worst))
            })
            .collect()
    };
    let oom: Vec<&Row> = rows
        .iter()
        .filter(|r| r.measured_oom == Some(true) && r.skipped.is_empty())
        .collect();
    let ran: Vec<&Row> = rows
        .iter()
        .filter(|r| r.measured_oom == Some(false) && r.skipped.is_empty())
        .collect();
    Summary {
        rows: rows.len(),
        modelled: rows.iter().filter(|r| r.skipped.is_empty()).count(),
        skipped: rows.iter().filter(|r| !r.skipped.is_empty()).count(),
        tokens_median_abs_rel_error: t.median,
        tokens_worst_abs_rel_error: t.worst,
        tokens_rows: t.n,
        mem_median_abs_rel_error: m.median,
        mem_worst_abs_rel_error: m.worst,
        mem_rows: m.n,
        oom_rows: oom.len(),
        oom_rows_predicted_not_to_fit: oom
            .iter()
            .filter(|r| r.predicted_fits == Some(false))
            .count(),
        ran_rows: ran.len(),
        ran_rows_predicted_to_fit: ran
            .iter()
            .filter(|r| r.predicted_fits == Some(true))
            .count(),
        by_source: group(|r| &r.source_id, |r| r.tokens_rel_error),
        by_gpu: group(|r| &r.gpu, |r| r.tokens_rel_error),
        mem_by_source: group(|r| &r.source_id, |r| r.mem_rel_error),
        mem_by_gpu: group(|r| &r.gpu, |r| r.mem_rel_error),
    }
}

fn summary_text(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "rows {}: modelled {}, skipped {}",
        s.rows, s.modelled, s.skipped
    );
    let figures = |n: usize, median: f64, worst: f64| {
        if n == 0 {
            "n/a (no run to compare)".to_string()
        } else {
            format!(
                "median abs rel error {:.1}%, worst {:.1}%",
                100.0 * median,
                100.0 * worst
            )
        }
    };
    let _ = writeln!(
        out,
        "tokens/s per GPU: {} over {} runs",
        figures(
            s.tokens_rows,
            s.tokens_median_abs_rel_error,
            s.tokens_worst_abs_rel_error
        ),
        s.tokens_rows
    );
    let _ = writeln!(
        out,
        "memory per GPU: {} over {} runs with measured memory",
        figures(
            s.mem_rows,
            s.mem_median_abs_rel_error,
            s.mem_worst_abs_rel_error
        ),
        s.mem_rows
    );
    let _ = writeln!(
        out,
        "out of memory: {} of {} OOM runs predicted not to fit; {} of {} runs that ran predicted to fit ({:.0}%)",
        s.oom_rows_predicted_not_to_fit,
        s.oom_rows,
        s.ran_rows_predicted_to_fit,
        s.ran_rows,
        100.0 * s.ran_fit_fraction()
    );
    for (label, map, mem) in [
        ("source", &s.by_source, &s.mem_by_source),
        ("gpu", &s.by_gpu, &s.mem_by_gpu),
    ] {
        let runs = |(n, median, worst): &(usize, f64, f64)| {
            format!(
                "{n} runs, median {:.1}%, worst {:.1}%",
                100.0 * median,
                100.0 * worst
            )
        };
        let keys: std::collections::BTreeSet<&String> = map.keys().chain(mem.keys()).collect();
        for k in keys {
            let tokens = map
                .get(k)
                .map_or_else(|| "no throughput measured".to_string(), runs);
            let memory = mem
                .get(k)
                .map_or_else(String::new, |m| format!("; memory on {}", runs(m)));
            let _ = writeln!(out, "  {label} {k}: {tokens}{memory}");
        }
    }
    out
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(String::new, |x| x.to_string())
}

fn fmt_f(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(String::new, |x| format!("{x:.digits$}"))
}

fn to_csv(rows: &[Row]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "name",
        "source_id",
        "gpu",
        "model",
        "measured_tokens_per_s_per_gpu",
        "predicted_tokens_per_s_per_gpu",
        "tokens_rel_error",
        "measured_mfu",
        "predicted_mfu",
        "measured_mem_gib",
        "predicted_mem_gib",
        "mem_rel_error",
        "measured_oom",
        "predicted_fits",
        "tp",
        "pp",
        "dp",
        "vpp",
        "micro_batch",
        "recompute",
        "zero",
        "sequence_parallel",
        "choices",
        "bottleneck",
        "skipped",
        "cp",
        "ep",
        "predicted_step_time_s",
        "compute_s",
        "exposed_comm_s",
        "bubble_s",
    ])?;
    for r in rows {
        w.write_record([
            r.name.clone(),
            r.source_id.clone(),
            r.gpu.clone(),
            r.model.clone(),
            fmt_f(r.measured_tokens_per_s_per_gpu, 1),
            fmt_f(r.predicted_tokens_per_s_per_gpu, 1),
            fmt_f(r.tokens_rel_error, 4),
            fmt_f(r.measured_mfu, 4),
            fmt_f(r.predicted_mfu, 4),
            fmt_f(r.measured_mem_gib, 2),
            fmt_f(r.predicted_mem_gib, 2),
            fmt_f(r.mem_rel_error, 4),
            opt(r.measured_oom),
            opt(r.predicted_fits),
            opt(r.tp),
            opt(r.pp),
            opt(r.dp),
            opt(r.vpp),
            opt(r.micro_batch),
            opt(r.recompute.clone()),
            opt(r.zero),
            opt(r.sequence_parallel),
            r.choices.clone(),
            r.bottleneck.clone(),
            r.skipped.clone(),
            opt(r.cp),
            opt(r.ep),
            fmt_f(r.predicted_step_time_s, 4),
            fmt_f(r.compute_s, 4),
            fmt_f(r.exposed_comm_s, 4),
            fmt_f(r.bubble_s, 4),
        ])?;
    }
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("csv buffer: {e}"))
}

fn to_table(rows: &[Row], summary: &Summary) -> String {
    let mut cells = vec![[
        "run",
        "gpu",
        "meas tok/s",
        "pred tok/s",
        "err %",
        "meas GiB",
        "pred GiB",
        "oom",
        "fits",
        "layout",
        "chosen",
    ]
    .map(String::from)
    .to_vec()];
    for r in rows {
        if !r.skipped.is_empty() {
            cells.push(vec![
                r.name.clone(),
                r.gpu.clone(),
                fmt_f(r.measured_tokens_per_s_per_gpu, 0),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("skipped: {}", r.skipped),
                String::new(),
            ]);
            continue;
        }
        cells.push(vec![
            r.name.clone(),
            r.gpu.clone(),
            fmt_f(r.measured_tokens_per_s_per_gpu, 0),
            fmt_f(r.predicted_tokens_per_s_per_gpu, 0),
            fmt_f(r.tokens_rel_error.map(|e| 100.0 * e), 1),
            fmt_f(r.measured_mem_gib, 1),
            fmt_f(r.predicted_mem_gib, 1),
            opt(r.measured_oom),
            opt(r.predicted_fits),
            format!(
                "tp{} pp{} dp{}{} v{} mb{} z{} {}{}",
                opt(r.tp),
                opt(r.pp),
                opt(r.dp),
                match (r.cp.unwrap_or(1), r.ep.unwrap_or(1)) {
                    (1, 1) => String::new(),
                    (cp, 1) => format!(" cp{cp}"),
                    (1, ep) => format!(" ep{ep}"),
                    (cp, ep) => format!(" cp{cp} ep{ep}"),
                },
                opt(r.vpp),
                opt(r.micro_batch),
                opt(r.zero),
                r.recompute.clone().unwrap_or_default(),
                if r.sequence_parallel == Some(true) {
                    " sp"
                } else {
                    ""
                }
            ),
            r.choices.clone(),
        ]);
    }
    let mut out = table(&cells);
    out.push('\n');
    out.push_str(&summary_text(summary));
    out
}

pub fn run(args: &Args, db: &Database) -> anyhow::Result<()> {
    let rows = read_runs(&args.runs)?;
    let path = args.runs.display().to_string();
    if args.fit || args.cross_validate {
        let obs = observations(&rows, db, &path);
        anyhow::ensure!(
            !obs.is_empty(),
            "no run in {path} has a measured throughput to fit"
        );
        return if args.fit {
            fit(obs, &path, db, args.write_db.as_deref())
        } else {
            cross_validate(&obs, &path)
        };
    }
    if let Some(name) = &args.explain {
        return explain_run(&rows, name, db, &path);
    }
    let predicted = predict_rows(&rows, db, &path);
    let summary = summarise(&predicted);
    let format = Format::or_default(args.format, args.output.as_ref());
    let bytes = match format {
        Format::Csv => {
            eprint!("{}", summary_text(&summary));
            to_csv(&predicted)?
        }
        Format::Json => {
            let v = serde_json::json!({ "runs": predicted, "summary": summary });
            let mut s = serde_json::to_string_pretty(&v)?;
            s.push('\n');
            s.into_bytes()
        }
        Format::Table => to_table(&predicted, &summary).into_bytes(),
    };
    emit(args.output.as_ref(), &bytes)
}

/// `--explain NAME`: one run's prediction written for a person, after what was measured.
fn explain_run(rows: &[RunRow], name: &str, db: &Database, path: &str) -> anyhow::Result<()> {
    let Some(row) = rows.iter().find(|r| r.name == name) else {
        let examples: Vec<&str> = rows.iter().take(3).map(|r| r.name.as_str()).collect();
        anyhow::bail!(
            "{path}: no run named `{name}` (column `name`; this file's runs are named like {})",
            examples.join(", ")
        );
    };
    let at = format!("{path}:{}", row.line);
    let spec = row
        .to_spec(db, path)
        .map_err(|skip| anyhow::anyhow!("{at}: run `{name}` is skipped: {}", skip.0))?;
    let p =
        predict(&spec).map_err(|e| anyhow::anyhow!("{at}: run `{name}`: no valid layout: {e}"))?;
    let e = &p.estimate;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Run {name} ({at}, source {})
",
        row.source_id
    );
    let vs = |label: &str, measured: Option<f64>, predicted: f64, unit: &str, digits: usize| {
        match measured {
            Some(m) => format!(
                "- {label}: measured {m:.digits$}{unit}, predicted {predicted:.digits$}{unit} ({:+.1}%).",
                100.0 * (predicted - m) / m
            ),
            None => format!("- {label}: not measured, predicted {predicted:.digits$}{unit}."),
        }
    };
    let tokens = row
        .measured_tokens_per_s_per_gpu
        .filter(|_| row.measured_oom != Some(true));
    let _ = writeln!(
        out,
        "{}",
        vs("tokens/s per GPU", tokens, e.tokens_per_s_per_gpu, "", 1)
    );
    let _ = writeln!(
        out,
        "{}",
        vs(
            "memory per GPU",
            row.measured_mem_gib,
            e.memory.total.gib(),
            " GiB",
            2
        )
    );
    let oom = match row.measured_oom {
        Some(true) => "ran out of memory",
        Some(false) => "ran",
        None => "not stated",
    };
    let _ = writeln!(
        out,
        "- out of memory: the run {oom}; predicted to {}.",
        if e.fits() { "fit" } else { "not fit" }
    );
    let choices = spec.choices(&p);
    let _ = writeln!(
        out,
        "- chosen where the row is silent: {}.\n",
        if choices.is_empty() {
            "nothing (the row states the whole layout)".to_string()
        } else {
            choices.replace(';', ", ")
        }
    );
    let sc = trainplan_io::scenario::Scenario {
        path: at,
        model: spec.model.clone(),
        model_name: row.model.clone(),
        cluster: trainplan_io::scenario::ClusterSpec {
            accelerator: spec.cluster.accelerator.clone(),
            node: spec.cluster.node.clone(),
            n_gpus: Some(spec.cluster.n_gpus),
        },
        job: spec.job,
        price_usd_per_gpu_hour: spec.cluster.accelerator.price_usd_per_gpu_hour,
        deadline_days: None,
        budget_usd: None,
        strategy: Some(p.strategy),
        sweep: None,
        text: String::new(),
    };
    out.push_str(&crate::cmd_evaluate::explanation(
        &sc,
        &spec.cluster,
        &p.strategy,
        e,
    ));
    emit(None, out.as_bytes())
}

/// The runs that ran and have a measured throughput, ready to fit.
fn observations(rows: &[RunRow], db: &Database, path: &str) -> Vec<Observation> {
    rows.iter()
        .filter(|r| r.measured_oom != Some(true))
        .filter_map(|r| {
            let m = r.measured_tokens_per_s_per_gpu?;
            let run = r.to_spec(db, path).ok()?;
            Some(Observation {
                run,
                tokens_per_s_per_gpu: m,
            })
        })
        .collect()
}

fn fit(
    obs: Vec<Observation>,
    path: &str,
    db: &Database,
    write_db: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let params = calibrate::parameters(&obs, 3);
    let result = calibrate::fit(obs, params, 30);
    if let Some(dir) = write_db {
        write_fitted(&result.params, path, db, dir)?;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# fitted on {path}: rms ln(pred/meas) {:.4} -> {:.4} after {} iterations (Huber loss, linear past |ln| {})",
        result.rms_before, result.rms_after, result.iterations, calibrate::HUBER_DELTA
    );
    for p in &result.params {
        let _ = writeln!(
            out,
            "{} = {:.4}  # {} runs; accelerators: {}",
            p.field.as_str(),
            p.value,
            p.n_runs,
            p.accelerators.join(", ")
        );
    }
    emit(None, out.as_bytes()).context("failed to print the fit")
}

/// Writes, for every accelerator of `db` that a fitted parameter applies to, its file with those
/// factors and their notes replaced, into `dir/accelerators/` (each file atomically).
fn write_fitted(
    params: &[calibrate::Param],
    runs: &str,
    db: &Database,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let folder = dir.join("accelerators");
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    for accelerator in db.accelerators() {
        let values: Vec<FittedValue> = params
            .iter()
            .filter(|p| p.applies_to(accelerator))
            .map(|p| FittedValue {
                field: p.field.as_str(),
                value: p.value,
                note: format!(
                    "Fitted (trainplan validate --fit, Levenberg-Marquardt, Huber loss) on {} runs of {runs} on {}; {}.",
                    p.n_runs,
                    p.accelerators.join(", "),
                    if p.is_shared() {
                        "one constant shared by every accelerator"
                    } else {
                        "same silicon shares the value"
                    }
                ),
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        let (source, text) = db
            .accelerator_file(&accelerator.id)
            .with_context(|| format!("no file for accelerator `{}`", accelerator.id))?;
        let edited = with_fitted(source, text, &values)?;
        let target = folder.join(format!("{}.toml", accelerator.id));
        write_atomic(&target, edited.as_bytes())?;
        eprintln!(
            "wrote {} ({})",
            target.display(),
            values
                .iter()
                .map(|v| v.field)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn cross_validate(obs: &[Observation], path: &str) -> anyhow::Result<()> {
    let folds = calibrate::cross_validate(obs, 30);
    let mut out =
        format!("# leave-one-source-out on {path}: factors refitted without each source\n");
    let mut all = Vec::new();
    for fold in &folds {
        let (source, errors) = (&fold.source, &fold.errors);
        let s = ErrorSummary::of(errors);
        let mut signed = errors.clone();
        signed.sort_by(f64::total_cmp);
        let _ = writeln!(
            out,
            "source {source}: {} runs, median abs rel error {:.1}%, worst {:.1}%, median signed {:+.1}%",
            s.n,
            100.0 * s.median,
            100.0 * s.worst,
            100.0 * signed.get(signed.len() / 2).copied().unwrap_or(0.0)
        );
        all.extend_from_slice(errors);
    }
    let s = ErrorSummary::of(&all);
    // The factors each fold fitted, so a reader sees which ones the sources agree on.
    let mut factors = String::new();
    for fold in &folds {
        let values: Vec<String> = fold
            .params
            .iter()
            .map(|p| {
                format!(
                    "{} {:.3} ({})",
                    p.field.as_str(),
                    p.value,
                    p.accelerators.join(", ")
                )
            })
            .collect();
        let _ = writeln!(
            factors,
            "#   without {}: {}",
            fold.source,
            values.join("; ")
        );
    }
    let _ = writeln!(
        out,
        "all held-out runs: {} runs, median abs rel error {:.1}%, worst {:.1}%",
        s.n,
        100.0 * s.median,
        100.0 * s.worst
    );
    out.push_str("# factors fitted in each fold:\n");
    out.push_str(&factors);
    emit(None, out.as_bytes()).context("failed to print the cross-validation")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source: &str, tokens: Option<f64>, mem: Option<f64>) -> Row {
        Row {
            source_id: source.into(),
            gpu: "a100-80gb".into(),
            tokens_rel_error: tokens,
            mem_rel_error: mem,
            ..Row::default()
        }
    }

    #[test]
    fn summary_reports_memory_per_source_even_without_throughput() {
        let rows = [
            row("X", Some(0.1), Some(-0.2)),
            row("X", Some(-0.3), None),
            row("Y", None, Some(0.05)),
        ];
        let text = summary_text(&summarise(&rows));
        assert!(
            text.contains(
                "  source X: 2 runs, median 20.0%, worst 30.0%; memory on 1 runs, median 20.0%, worst 20.0%\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  source Y: no throughput measured; memory on 1 runs, median 5.0%, worst 5.0%\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  gpu a100-80gb: 2 runs, median 20.0%, worst 30.0%; memory on 2 runs, median 12.5%, worst 20.0%\n"
            ),
            "{text}"
        );
    }
}
