//! `trainplan sweep` (rank every valid layout of a scenario) and `trainplan merge` (combine the
//! plans CSVs of sharded sweeps into the ranking one sweep gives).

use crate::output::{self, Format};
use crate::NoPlan;
use anyhow::Context;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use trainplan_io::plans::{self, Plans};
use trainplan_io::scenario::Scenario;
use trainplan_io::Database;
use trainplan_search::{describe, Constraints, Objective, Plan, SearchBuilder, Shard, SweepResult};

/// Plans listed when `--top` is not given (a Pareto front is listed whole).
const DEFAULT_TOP: usize = 20;
/// Sweeps with more strategies than this get a progress bar (on a terminal). Most strategies of
/// a space are ruled out in bulk by layout rules, so the bench space (18 million) takes a tenth
/// of a second; a bar is worth drawing from about a second.
const PROGRESS_MIN_STRATEGIES: u64 = 200_000_000;

/// What to rank by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectiveArg {
    /// Shortest training time.
    Time,
    /// Lowest cost (USD when priced, GPU-hours otherwise).
    Cost,
    /// Highest MFU.
    Mfu,
}

impl From<ObjectiveArg> for Objective {
    fn from(o: ObjectiveArg) -> Self {
        match o {
            ObjectiveArg::Time => Objective::Time,
            ObjectiveArg::Cost => Objective::Cost,
            ObjectiveArg::Mfu => Objective::Mfu,
        }
    }
}

/// Arguments of `trainplan sweep`.
///
/// A deadline (`[job].deadline_days`) keeps the plans that finish in time and ranks them by cost;
/// a budget (`[job].budget_usd`) keeps the plans within it and ranks them by time. When no plan
/// qualifies, the command exits with code 3 and says what it would take.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file with a `[sweep]` section (see scenarios/README.md).
    pub scenario: PathBuf,
    /// Write the plans to FILE instead of stdout (CSV unless --format says otherwise).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How many plans to list [default: 20; a Pareto front is listed whole].
    #[arg(long, value_name = "K", value_parser = parse_top)]
    pub top: Option<usize>,
    /// Output format (default: table on a terminal, csv otherwise or with -o).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Rank by: time, cost or mfu [default: cost with a deadline, time otherwise]. MFU is model
    /// FLOPs (no recomputation, attention as 12·l·h·s per token, PaLM appendix B) per second over
    /// the dense peak of the precision in use.
    #[arg(long, value_enum)]
    pub objective: Option<ObjectiveArg>,
    /// List only the plans on the time/cost Pareto front.
    #[arg(long)]
    pub pareto: bool,
    /// Evaluate only shard K of N (1-based), for CI matrices and job arrays; combine the
    /// outputs with `trainplan merge`.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Worker threads [default: one per core].
    #[arg(long, value_name = "N")]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<u32>,
}

/// Arguments of `trainplan merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Plans CSV files from sharded sweeps (`trainplan sweep --shard K/N -o FILE`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How many plans to keep [default: 20; a Pareto front is kept whole].
    #[arg(long, value_name = "K", value_parser = parse_top)]
    pub top: Option<usize>,
    /// Rank by this instead of the objective recorded in the files.
    #[arg(long, value_enum)]
    pub objective: Option<ObjectiveArg>,
    /// Output format (default: table on a terminal, csv otherwise or with -o).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_top(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(k) if k >= 1 => Ok(k),
        _ => Err(format!("`{s}` is not a positive number of plans")),
    }
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    s.parse::<Shard>().map_err(|e| e.to_string())
}

pub fn run(args: &Args, db: &Database) -> anyhow::Result<()> {
    output::check_destination(args.output.as_ref())?;
    let scenario = Scenario::load(&args.scenario, db)?;
    let spec = trainplan_io::sweep::space(&scenario, db)?;
    let constraints = Constraints {
        deadline_days: scenario.deadline_days,
        budget_usd: scenario.budget_usd,
    };
    let objective = args
        .objective
        .map_or_else(|| constraints.default_objective(), Objective::from);
    let top = args.top.unwrap_or(DEFAULT_TOP);
    let search = SearchBuilder::new(scenario.model.clone(), scenario.job, spec)
        .objective(objective)
        .top_k(top)
        .pareto(args.pareto)
        .constraints(constraints)
        .shard(args.shard.unwrap_or(Shard::ALL))
        .build()
        .with_context(|| format!("failed to build the search space of {}", scenario.path))?;

    let threads = args.threads.map(|t| t as usize);
    let bar = progress_bar(search.strategies());
    let started = Instant::now();
    let result = match &bar {
        Some(bar) => search.run_with_progress(threads, &|n| bar.inc(n)),
        None => search.run(threads),
    }?;
    let elapsed = started.elapsed();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    summary(&result, elapsed, search.shard());

    let plans = match (&result.front, args.top) {
        (Some(front), Some(k)) => front.iter().take(k).copied().collect(),
        (Some(front), None) => front.clone(),
        (None, _) => result.plans.clone(),
    };
    let plans = Plans {
        gpus: result.gpus.clone(),
        plans,
        objective,
        pareto: args.pareto,
        model: if scenario.model.id == "inline" {
            scenario.model_name.clone()
        } else {
            scenario.model.id.clone()
        },
    };
    if plans.plans.is_empty() {
        if let Some(shard) = args.shard.filter(|s| s.count > 1) {
            // An empty shard is an ordinary outcome of a split space; `merge` decides.
            eprintln!("note: no plan of shard {shard} qualifies; `trainplan merge` decides for the whole space");
        } else {
            closest(&result);
            // The plans file keeps its contract even when empty: the header, no rows.
            write(&plans, args.format, args.output.as_ref())?;
            let why = result
                .shortfall()
                .map_or_else(|| "no plan qualifies".to_string(), |s| s.to_string());
            return Err(NoPlan(why).into());
        }
    }
    write(&plans, args.format, args.output.as_ref())
}

pub fn merge(args: &MergeArgs) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for path in &args.files {
        let p = plans::read(path)?;
        files.push((path.display().to_string(), p));
    }
    let pareto = files.iter().any(|(_, p)| p.pareto);
    let top = args.top.or((!pareto).then_some(DEFAULT_TOP));
    let merged = plans::merge(&files, top, args.objective.map(Objective::from))?;
    eprintln!(
        "merged {} plans from {} files",
        files.iter().map(|(_, p)| p.plans.len()).sum::<usize>(),
        files.len()
    );
    if merged.plans.is_empty() {
        return Err(NoPlan(
            "no plan in the merged files: no shard found a plan that qualifies".into(),
        )
        .into());
    }
    write(&merged, args.format, args.output.as_ref())
}

fn write(p: &Plans, format: Option<Format>, out: Option<&PathBuf>) -> anyhow::Result<()> {
    let format = Format::or_default(format, out);
    let bytes = match format {
        Format::Csv => plans::to_csv(p),
        Format::Json => {
            let rows = plans::rows(p);
            let header = plans::header();
            crate::cmd_hardware::render(Format::Json, &header, &rows[1..])?
        }
        Format::Table => output::table(&table_rows(p)).into_bytes(),
    };
    output::emit(out, &bytes)
}

/// The columns a person reads first; the CSV and JSON carry every column. MoE plans add `etp`
/// after `ep` (how many ways each expert is split).
fn table_rows(p: &Plans) -> Vec<Vec<String>> {
    let moe = p
        .plans
        .iter()
        .any(|x| x.strategy.ep > 1 || x.strategy.etp.is_some());
    let mut rows = vec![[
        "rank",
        "gpu",
        "n_gpus",
        "dp",
        "tp",
        "pp",
        "cp",
        "ep",
        "vpp",
        "mb",
        "zero",
        "recompute",
        "sp",
        "mem_gib",
        "step_s",
        "tok/s/gpu",
        "mfu",
        "days",
        "cost",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect::<Vec<_>>()];
    // `etp` goes right after `ep`.
    let etp_at = rows[0].iter().position(|c| c == "ep").map_or(0, |i| i + 1);
    if moe {
        rows[0].insert(etp_at, "etp".to_string());
    }
    for (i, plan) in p.plans.iter().enumerate() {
        let s = &plan.strategy;
        let mut row = vec![
            (i + 1).to_string(),
            p.gpus
                .get(usize::from(plan.gpu))
                .cloned()
                .unwrap_or_default(),
            plan.n_gpus.to_string(),
            s.dp.to_string(),
            s.tp.to_string(),
            s.pp.to_string(),
            s.cp.to_string(),
            s.ep.to_string(),
            s.vpp.to_string(),
            s.micro_batch.to_string(),
            s.zero.to_string(),
            s.recompute.as_str().to_string(),
            if s.sequence_parallel { "on" } else { "off" }.to_string(),
            format!("{:.1}", plan.mem_gib),
            format!("{:.3}", plan.step_time_s),
            format!("{:.0}", plan.tokens_per_s_per_gpu),
            format!("{:.3}", plan.mfu),
            format!("{:.2}", plan.train_days),
            cost(plan),
        ];
        if moe {
            row.insert(etp_at, s.expert_tp().to_string());
        }
        rows.push(row);
    }
    rows
}

fn cost(plan: &Plan) -> String {
    plan.cost_usd.map_or_else(
        || format!("{:.0} GPU-h", plan.gpu_hours),
        |c| format!("${c:.0}"),
    )
}

fn progress_bar(strategies: u64) -> Option<indicatif::ProgressBar> {
    if strategies < PROGRESS_MIN_STRATEGIES || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(strategies);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} sweeping {human_pos}/{human_len} strategies [{bar:30}] {percent}% eta {eta}",
    )
    .map(|s| s.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// The one-line summary and the rejection counts, on stderr.
fn summary(r: &SweepResult, elapsed: Duration, shard: Shard) {
    let s = &r.stats;
    let secs = elapsed.as_secs_f64();
    let shard_note = if shard.count > 1 {
        format!(" (shard {shard})")
    } else {
        String::new()
    };
    eprintln!(
        "evaluated {} strategies ({} feasible) in {secs:.2} s{shard_note}",
        s.strategies, s.feasible
    );
    let rate = if secs > 0.0 {
        s.estimated as f64 / secs
    } else {
        0.0
    };
    eprintln!(
        "  {} priced by the cost model ({:.2} M/s), {} ruled out by layout rules first",
        s.estimated,
        rate / 1e6,
        s.strategies - s.estimated.min(s.strategies)
    );
    if !s.rejections.is_empty() {
        let parts: Vec<String> = s
            .rejections
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        eprintln!("  rejected: {}", parts.join(", "));
    }
    if r.constraints.deadline_days.is_some() || r.constraints.budget_usd.is_some() {
        eprintln!(
            "  {} feasible plans meet the deadline and budget",
            s.qualifying
        );
    }
}

/// The closest plans when none qualifies, on stderr.
fn closest(r: &SweepResult) {
    let gpu = |p: &Plan| r.gpus.get(usize::from(p.gpu)).cloned().unwrap_or_default();
    let list: &[Plan] = if r.constraints.deadline_days.is_some() {
        &r.fastest
    } else {
        &r.cheapest
    };
    if list.is_empty() {
        return;
    }
    let which = if r.constraints.deadline_days.is_some() {
        "fastest"
    } else {
        "cheapest"
    };
    eprintln!("closest plans ({which} feasible):");
    for p in list {
        eprintln!("  {}", describe(p, &gpu(p)));
    }
}
