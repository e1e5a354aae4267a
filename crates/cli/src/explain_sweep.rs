//! `trainplan explain` on a scenario without a `[strategy]`: sweep its space, explain the best
//! plan, and say why the runner-up lost.

use crate::NoPlan;
use anyhow::Context;
use std::fmt::Write as _;
use trainplan_hardware::Cluster;
use trainplan_io::scenario::Scenario;
use trainplan_io::Database;
use trainplan_parallel::{evaluate, Estimate, Job, Strategy};
use trainplan_search::{Constraints, Objective, Plan, SearchBuilder, Shard};

/// Plans ranked to find a runner-up that differs from the best.
const RUNNER_UP_WINDOW: usize = 16;

/// A ranked plan re-priced in full.
struct Priced {
    plan: Plan,
    cluster: Cluster,
    /// The scenario's job at the plan's global batch.
    job: Job,
    estimate: Estimate,
}

fn price(
    sc: &Scenario,
    spec: &trainplan_search::SpaceSpec,
    gpus: &[String],
    plan: &Plan,
) -> anyhow::Result<Priced> {
    let id = gpus
        .get(usize::from(plan.gpu))
        .context("plan names an accelerator outside the sweep")?;
    let target = spec
        .targets
        .iter()
        .find(|t| &t.accelerator.id == id)
        .context("plan's accelerator is not a sweep target")?;
    let cluster = Cluster::new(target.accelerator.clone(), target.node.clone(), plan.n_gpus)?;
    let mut job = sc.job;
    job.global_batch = plan.global_batch;
    let estimate =
        evaluate(&sc.model, &cluster, &job, &plan.strategy).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Priced {
        plan: *plan,
        cluster,
        job,
        estimate,
    })
}

fn layout(s: &Strategy, job: &Job) -> String {
    let mut experts = String::new();
    if s.ep > 1 || s.expert_tp() != s.tp {
        experts = format!(" × ep {}", s.ep);
        if s.expert_tp() != s.tp {
            let _ = write!(experts, " (experts split {} ways, not tp)", s.expert_tp());
        }
        if s.ep > 1 && s.ep_dispatcher != trainplan_parallel::EpDispatcher::AllToAll {
            let _ = write!(experts, " with {} dispatch", s.ep_dispatcher.as_str());
        }
    }
    let mut overlaps = Vec::new();
    if s.tp_overlap_active() {
        overlaps.push("tensor-parallel collectives");
    }
    if s.ep_overlap_active(job) {
        overlaps.push("expert all-to-all");
    }
    format!(
        "dp {} × tp {} × pp {}{}{}{}, micro-batch {}, ZeRO-{}, recompute {}{}{}",
        s.dp,
        s.tp,
        s.pp,
        if s.cp > 1 {
            format!(" × cp {}", s.cp)
        } else {
            String::new()
        },
        experts,
        if s.vpp > 1 {
            format!(" (vpp {})", s.vpp)
        } else {
            String::new()
        },
        s.micro_batch,
        s.zero,
        s.recompute.as_str(),
        if s.sp_active() {
            ", sequence parallel"
        } else {
            ""
        },
        if overlaps.is_empty() {
            String::new()
        } else {
            format!(", overlapping the {}", overlaps.join(" and the "))
        }
    )
}

/// Shares of the step, in the order they are printed.
fn shares(e: &Estimate) -> [(&'static str, f64); 5] {
    let t = &e.time;
    let step = t.step.get();
    [
        ("compute", t.compute.get() / step),
        ("exposed communication", t.exposed_comm().get() / step),
        ("pipeline bubble", t.bubble.get() / step),
        ("optimizer", t.optimizer.get() / step),
        ("other", 0.0),
    ]
}

/// Runs the sweep of `sc` and explains its best plan and the runner-up.
pub fn explain(
    sc: &Scenario,
    db: &Database,
    explain_one: impl Fn(&Scenario, &Cluster, &Strategy, &Estimate) -> String,
) -> anyhow::Result<String> {
    let spec = trainplan_io::sweep::space(sc, db)?;
    let constraints = Constraints {
        deadline_days: sc.deadline_days,
        budget_usd: sc.budget_usd,
    };
    let objective = constraints.default_objective();
    let search = SearchBuilder::new(sc.model.clone(), sc.job, spec.clone())
        .objective(objective)
        .top_k(RUNNER_UP_WINDOW)
        .constraints(constraints)
        .shard(Shard::ALL)
        .build()
        .with_context(|| format!("failed to build the search space of {}", sc.path))?;
    let result = search.run(None)?;
    let Some(best) = result.plans.first() else {
        let why = result
            .shortfall()
            .map_or_else(|| "no plan qualifies".to_string(), |s| s.to_string());
        return Err(NoPlan(why).into());
    };
    let best = price(sc, &spec, &result.gpus, best)?;
    let mut job_sc = sc.clone();
    job_sc.job.global_batch = best.plan.global_batch;
    let mut out = format!(
        "Swept {} strategies ({} feasible); ranked by {}{}.\n\n",
        result.stats.strategies,
        result.stats.feasible,
        objective.as_str(),
        match (sc.deadline_days, sc.budget_usd) {
            (Some(d), _) => format!(" among plans that finish within {d} days"),
            (None, Some(b)) => format!(" among plans within ${b:.0}"),
            (None, None) => String::new(),
        }
    );
    out.push_str(&explain_one(
        &job_sc,
        &best.cluster,
        &best.plan.strategy,
        &best.estimate,
    ));
    // Plans that tie the best on time and cost (e.g. selective recomputation with a fused
    // attention kernel, which recomputes nothing) teach nothing: the runner-up is the first
    // plan that differs.
    let differs = |p: &&Plan| p.train_days != best.plan.train_days || p.cost() != best.plan.cost();
    if let Some(second) = result
        .plans
        .iter()
        .skip(1)
        .find(differs)
        .or(result.plans.get(1))
    {
        let second = price(sc, &spec, &result.gpus, second)?;
        let (a, b) = (&best.plan, &second.plan);
        let _ = writeln!(
            out,
            "\n## Runner-up: {} × {}, {}",
            b.n_gpus,
            result.gpus[usize::from(b.gpu)],
            layout(&b.strategy, &second.job)
        );
        let cost = |p: &Plan| {
            p.cost_usd.map_or_else(
                || format!("{:.0} GPU-hours", p.gpu_hours),
                |c| format!("${c:.0}"),
            )
        };
        let _ = writeln!(
            out,
            "It trains in {:.2} days for {} against {:.2} days for {} ({} is what the ranking compares).",
            b.train_days,
            cost(b),
            a.train_days,
            cost(a),
            objective.as_str()
        );
        let (sa, sb) = (shares(&best.estimate), shares(&second.estimate));
        let mut worst = ("", 0.0);
        for ((name, x), (_, y)) in sa.iter().zip(sb.iter()) {
            if y - x > worst.1 {
                worst = (name, y - x);
            }
        }
        if worst.1 > 0.001 {
            let _ = writeln!(
                out,
                "It lost mainly to its {}: {:.1}% of its step against {:.1}% for the best plan (MFU {:.1}% vs {:.1}%).",
                worst.0,
                100.0 * sb.iter().find(|s| s.0 == worst.0).map_or(0.0, |s| s.1),
                100.0 * sa.iter().find(|s| s.0 == worst.0).map_or(0.0, |s| s.1),
                100.0 * b.mfu,
                100.0 * a.mfu
            );
        } else {
            let _ = writeln!(
                out,
                "Its step has the same make-up (MFU {:.1}% vs {:.1}%); it differs in GPU count or batch split, which changes {}.",
                100.0 * b.mfu,
                100.0 * a.mfu,
                if objective == Objective::Time { "the time" } else { "the cost" }
            );
        }
    }
    Ok(out)
}
