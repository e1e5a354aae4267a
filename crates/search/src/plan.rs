//! One ranked plan (a strategy with its predicted cost) and the orders plans are ranked in.

use std::cmp::Ordering;
use trainplan_parallel::{Bottleneck, Estimate, Framework, Job, Strategy};

/// Seconds in a day.
const DAY_S: f64 = 86_400.0;

/// What the ranking optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Objective {
    /// Shortest training time first.
    Time,
    /// Lowest cost first (USD when priced, GPU-hours otherwise).
    Cost,
    /// Highest model FLOPs utilisation first.
    Mfu,
}

impl Objective {
    /// Every objective, in a fixed order.
    pub const ALL: [Objective; 3] = [Objective::Time, Objective::Cost, Objective::Mfu];

    /// The name used on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Time => "time",
            Objective::Cost => "cost",
            Objective::Mfu => "mfu",
        }
    }

    /// The objective called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// A strategy on one accelerator type and GPU count, with the numbers the plans CSV reports.
///
/// Every field is plain data (no heap), so building a plan on the sweep's hot path allocates
/// nothing. Numbers are rounded to fixed decimals when the plan is built (days and seconds to
/// 1e-6, USD to cents), and the ranking compares the rounded values: a plan written to a CSV
/// and read back is then identical to the one that was ranked, so merging shard files gives
/// exactly the single-run ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Index of the accelerator in the sweep's accelerator list, which is sorted by id so that
    /// the index order is the id order.
    pub gpu: u16,
    /// GPUs in the job.
    pub n_gpus: u32,
    /// Nodes the job occupies.
    pub nodes: u32,
    /// Sequences per optimizer step.
    pub global_batch: u32,
    /// The layout.
    pub strategy: Strategy,
    /// Micro-batches per step on each pipeline.
    pub grad_accum: u32,
    /// Peak memory per GPU, GiB.
    pub mem_gib: f64,
    /// HBM per GPU, GiB.
    pub mem_capacity_gib: f64,
    /// True when the peak fits.
    pub fits: bool,
    /// Seconds per optimizer step.
    pub step_time_s: f64,
    /// Tokens per second, whole job.
    pub tokens_per_s: f64,
    /// Tokens per second per GPU.
    pub tokens_per_s_per_gpu: f64,
    /// Model FLOPs utilisation.
    pub mfu: f64,
    /// Hardware FLOPs utilisation (recomputation counted).
    pub hfu: f64,
    /// Compute seconds per step on the busiest rank.
    pub compute_s: f64,
    /// Communication seconds per step on the critical path.
    pub exposed_comm_s: f64,
    /// Pipeline bubble seconds per step.
    pub bubble_s: f64,
    /// Days to train the job's tokens.
    pub train_days: f64,
    /// GPU-hours of the whole run.
    pub gpu_hours: f64,
    /// Cost of the run in USD, when a price is known.
    pub cost_usd: Option<f64>,
    /// What limits the plan most.
    pub bottleneck: Bottleneck,
    /// The framework whose conventions priced it: the job's, or the one its layout implies
    /// (PyTorch for FSDP); `None` for trainplan's framework-neutral rules.
    pub framework: Option<Framework>,
}

impl Plan {
    /// Builds the plan of `strategy` from its estimate.
    #[inline]
    pub fn new(
        gpu: u16,
        n_gpus: u32,
        nodes: u32,
        job: &Job,
        strategy: Strategy,
        e: &Estimate,
        price_usd_per_gpu_hour: Option<f64>,
    ) -> Self {
        let train_s = job.tokens / e.tokens_per_s;
        let gpu_hours = f64::from(n_gpus) * train_s / 3600.0;
        Self {
            gpu,
            n_gpus,
            nodes,
            global_batch: job.global_batch,
            strategy,
            grad_accum: e.grad_accum,
            mem_gib: round(e.memory.total.gib(), 1e3),
            mem_capacity_gib: round(e.memory.capacity.gib(), 1e3),
            fits: e.fits(),
            step_time_s: round(e.time.step.get(), 1e6),
            tokens_per_s: round(e.tokens_per_s, 1e1),
            tokens_per_s_per_gpu: round(e.tokens_per_s_per_gpu, 1e3),
            mfu: round(e.mfu, 1e6),
            hfu: round(e.hfu, 1e6),
            compute_s: round(e.time.compute.get(), 1e6),
            exposed_comm_s: round(e.time.exposed_comm().get(), 1e6),
            bubble_s: round(e.time.bubble.get(), 1e6),
            train_days: round(train_s / DAY_S, 1e6),
            gpu_hours: round(gpu_hours, 1e3),
            cost_usd: price_usd_per_gpu_hour.map(|p| round(p * gpu_hours, 1e2)),
            bottleneck: e.bottleneck,
            framework: strategy.framework(job),
        }
    }

    /// The cost the ranking uses: USD when priced, GPU-hours otherwise (the builder refuses to
    /// mix the two in one ranking).
    #[inline]
    pub fn cost(&self) -> f64 {
        self.cost_usd.unwrap_or(self.gpu_hours)
    }

    /// True when every number is finite and positive where it must be.
    #[inline]
    pub fn is_finite(&self) -> bool {
        self.train_days.is_finite()
            && self.train_days >= 0.0
            && self.cost().is_finite()
            && self.mfu.is_finite()
    }

    /// The canonical identity of a plan: no two plans of one space share it, so it breaks every
    /// tie and makes the ranking a total order.
    #[inline]
    pub fn key(&self) -> (u16, u32, u32, Strategy) {
        (self.gpu, self.n_gpus, self.global_batch, self.strategy)
    }

    /// True when `self` is at least as good as `other` in time and cost and better in one.
    #[inline]
    pub fn dominates(&self, other: &Plan) -> bool {
        let (t, c) = (self.train_days, self.cost());
        let (ot, oc) = (other.train_days, other.cost());
        t <= ot && c <= oc && (t < ot || c < oc)
    }
}

/// `x` rounded to `1/scale` (`scale` a power of ten): the division of an integer by an exact
/// power of ten is correctly rounded, so the result is the double nearest that decimal, which
/// Rust prints as exactly that decimal.
#[inline]
fn round(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

/// Orders `a` before `b` when it ranks higher under `objective`: the objective first, then the
/// other of time and cost, then the lower peak memory (the same speed with more headroom is the
/// better plan), then the canonical key, so that the order is total and the same on any number
/// of threads.
#[inline]
pub fn compare(objective: Objective, a: &Plan, b: &Plan) -> Ordering {
    let primary = match objective {
        Objective::Time => a
            .train_days
            .total_cmp(&b.train_days)
            .then_with(|| a.cost().total_cmp(&b.cost())),
        Objective::Cost => a
            .cost()
            .total_cmp(&b.cost())
            .then_with(|| a.train_days.total_cmp(&b.train_days)),
        Objective::Mfu => b
            .mfu
            .total_cmp(&a.mfu)
            .then_with(|| a.train_days.total_cmp(&b.train_days)),
    };
    primary
        .then_with(|| a.mem_gib.total_cmp(&b.mem_gib))
        .then_with(|| a.key().cmp(&b.key()))
}
