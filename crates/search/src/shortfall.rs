//! The answer when no plan qualifies: why, the closest plans, and what it would take.

use crate::{Plan, SweepResult};
use std::fmt;

/// Why a sweep returned no plan, with what would change that.
#[derive(Debug, Clone, PartialEq)]
pub struct Shortfall {
    /// The deadline that was asked for.
    pub deadline_days: Option<f64>,
    /// The budget that was asked for.
    pub budget_usd: Option<f64>,
    /// Strategies in the space.
    pub strategies: u64,
    /// The most common rejection, when nothing fits at all.
    pub top_rejection: Option<(&'static str, u64)>,
    /// The fastest feasible plan and its accelerator id.
    pub fastest: Option<(Plan, String)>,
    /// The cheapest feasible plan and its accelerator id.
    pub cheapest: Option<(Plan, String)>,
    /// GPUs the deadline needs at the fastest plan's per-GPU throughput (a lower bound: per-GPU
    /// throughput only falls as a job grows).
    pub gpus_needed: Option<u64>,
    /// Largest GPU count of the space.
    pub max_n_gpus: u32,
}

impl Shortfall {
    pub(crate) fn new(r: &SweepResult) -> Self {
        let name = |p: &Plan| r.gpus.get(usize::from(p.gpu)).cloned().unwrap_or_default();
        let fastest = r.fastest.first().map(|p| (*p, name(p)));
        let cheapest = r.cheapest.first().map(|p| (*p, name(p)));
        let gpus_needed = match (r.constraints.deadline_days, &fastest) {
            (Some(d), Some((p, _))) if p.train_days > d => {
                // Whole nodes of the fastest plan's layout.
                let per_node = u64::from(p.n_gpus.div_ceil(p.nodes.max(1)).max(1));
                let gpus = (f64::from(p.n_gpus) * p.train_days / d).ceil() as u64;
                Some(gpus.div_ceil(per_node) * per_node)
            }
            _ => None,
        };
        Self {
            deadline_days: r.constraints.deadline_days,
            budget_usd: r.constraints.budget_usd,
            strategies: r.stats.strategies,
            top_rejection: r.stats.rejections.first().copied(),
            fastest,
            cheapest,
            gpus_needed,
            max_n_gpus: r.max_n_gpus,
        }
    }
}

/// A one-line description of a plan for messages.
pub fn describe(p: &Plan, gpu: &str) -> String {
    let s = &p.strategy;
    let cost = p.cost_usd.map_or_else(
        || format!("{:.0} GPU-hours", p.gpu_hours),
        |c| format!("${c:.0}"),
    );
    format!(
        "{n} × {gpu} (dp {dp} tp {tp} pp {pp}{extra} vpp {vpp}, micro-batch {mb}, ZeRO {z}, {rc} recompute{sp}): {days:.1} days, {cost}",
        n = p.n_gpus,
        extra = match (s.cp, s.ep) {
            (1, 1) => String::new(),
            (cp, 1) => format!(" cp {cp}"),
            (1, ep) => format!(" ep {ep}"),
            (cp, ep) => format!(" cp {cp} ep {ep}"),
        },
        sp = if s.sp_active() { ", sequence parallel" } else { "" },
        dp = s.dp,
        tp = s.tp,
        pp = s.pp,
        vpp = s.vpp,
        mb = s.micro_batch,
        z = s.zero,
        rc = s.recompute.as_str(),
        days = p.train_days,
    )
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some((fast, fast_gpu)), Some((cheap, cheap_gpu))) = (&self.fastest, &self.cheapest)
        else {
            write!(
                f,
                "no strategy of the {} in the space can run",
                self.strategies
            )?;
            let Some((reason, n)) = self.top_rejection else {
                return Ok(());
            };
            write!(f, " (most common rejection: {reason}, {n} strategies)")?;
            let advice = match reason {
                "out_of_memory" => "more GPUs, an accelerator with more memory, or allowing ZeRO-3 and full recomputation",
                "batch" => "micro-batches that divide global_batch / dp for the GPU counts swept, or a global batch that the GPU counts divide",
                "too_few_layers" | "interleaving" => "fewer pipeline stages or virtual stages (max_pp, vpp)",
                "tp_heads" | "tp_ffn" => "tensor-parallel degrees that divide the heads and the FFN width (max_tp)",
                _ => "a wider space: more GPU counts, micro-batches or strategy options",
            };
            return write!(f, "; it would take {advice}");
        };
        let mut wrote = false;
        if let Some(d) = self.deadline_days {
            if fast.train_days > d {
                write!(
                    f,
                    "no plan finishes within the deadline of {d} days; the fastest is {}. It would take a deadline of at least {:.1} days",
                    describe(fast, fast_gpu),
                    fast.train_days
                )?;
                if let Some(g) = self.gpus_needed {
                    write!(
                        f,
                        ", or at least {g} GPUs at that plan's per-GPU throughput (the sweep went up to {})",
                        self.max_n_gpus
                    )?;
                }
                wrote = true;
            }
        }
        if let Some(b) = self.budget_usd {
            if cheap.cost() > b {
                if wrote {
                    f.write_str("; also, ")?;
                }
                write!(
                    f,
                    "no plan fits the budget of ${b:.0}; the cheapest is {}. It would take a budget of at least ${:.0}",
                    describe(cheap, cheap_gpu),
                    cheap.cost().ceil()
                )?;
                wrote = true;
            }
        }
        if !wrote {
            // Each constraint alone can be met, but no single plan meets both.
            write!(
                f,
                "no plan meets both the deadline and the budget; the fastest is {}, the cheapest is {}. It would take a longer deadline or a larger budget",
                describe(fast, fast_gpu),
                describe(cheap, cheap_gpu)
            )?;
        }
        Ok(())
    }
}
