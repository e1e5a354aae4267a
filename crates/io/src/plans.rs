//! The plans CSV: one row per ranked plan, written by `trainplan sweep` and read back by
//! `trainplan merge`.
//!
//! The first columns are the contract of DESIGN.md, in its order; columns added later go at the
//! end. Numbers are the plan's values, which the search rounds to fixed decimals when it builds
//! them (`trainplan_search::Plan`); Rust prints such a value as its shortest decimal, so the text
//! reads back to the identical number and a merge of shard files ranks exactly as one run does.

use crate::{IoError, Location};
use std::collections::BTreeSet;
use std::path::Path;
use trainplan_model::Recompute;
use trainplan_parallel::{Bottleneck, EpDispatcher, Framework, Strategy};
use trainplan_search::{compare, pareto_front, Objective, Plan, TopK};

/// The columns of DESIGN.md, in order.
pub const COLUMNS: [&str; 28] = [
    "rank",
    "gpu",
    "n_gpus",
    "nodes",
    "dp",
    "tp",
    "pp",
    "cp",
    "ep",
    "vpp",
    "micro_batch",
    "grad_accum",
    "global_batch",
    "zero",
    "recompute",
    "mem_gib",
    "mem_capacity_gib",
    "fits",
    "step_time_s",
    "tokens_per_s",
    "tokens_per_s_per_gpu",
    "mfu",
    "compute_s",
    "exposed_comm_s",
    "bubble_s",
    "train_days",
    "gpu_hours",
    "cost_usd",
];

/// Columns after the contract's: strategy flags, diagnostics, and how the file was ranked (so
/// that `merge` ranks the same way).
pub const EXTRA_COLUMNS: [&str; 13] = [
    "sequence_parallel",
    "flash_attention",
    "hfu",
    "bottleneck",
    "objective",
    "pareto",
    "tp_comm_overlap",
    "model",
    "etp",
    "ep_comm_overlap",
    "ep_dispatcher",
    "framework",
    "dp_comm_overlap",
];

/// Every column, in file order.
pub fn header() -> Vec<&'static str> {
    COLUMNS
        .iter()
        .chain(EXTRA_COLUMNS.iter())
        .copied()
        .collect()
}

/// A ranked list of plans with how it was ranked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plans {
    /// Accelerator ids; `Plan::gpu` indexes this list, which is sorted.
    pub gpus: Vec<String>,
    /// Plans, best first.
    pub plans: Vec<Plan>,
    /// The ranking's objective.
    pub objective: Objective,
    /// True when the list is a Pareto front.
    pub pareto: bool,
    /// The model swept (preset id or name), so that shards of different sweeps are not merged.
    pub model: String,
}

/// The cells of one row, in [`header`] order.
pub fn row(
    rank: usize,
    plan: &Plan,
    gpu: &str,
    objective: Objective,
    pareto: bool,
    model: &str,
) -> Vec<String> {
    let s = &plan.strategy;
    vec![
        rank.to_string(),
        gpu.to_string(),
        plan.n_gpus.to_string(),
        plan.nodes.to_string(),
        s.dp.to_string(),
        s.tp.to_string(),
        s.pp.to_string(),
        s.cp.to_string(),
        s.ep.to_string(),
        s.vpp.to_string(),
        s.micro_batch.to_string(),
        plan.grad_accum.to_string(),
        plan.global_batch.to_string(),
        s.zero.to_string(),
        s.recompute.as_str().to_string(),
        num(plan.mem_gib),
        num(plan.mem_capacity_gib),
        plan.fits.to_string(),
        num(plan.step_time_s),
        num(plan.tokens_per_s),
        num(plan.tokens_per_s_per_gpu),
        num(plan.mfu),
        num(plan.compute_s),
        num(plan.exposed_comm_s),
        num(plan.bubble_s),
        num(plan.train_days),
        num(plan.gpu_hours),
        plan.cost_usd.map(num).unwrap_or_default(),
        s.sequence_parallel.to_string(),
        s.flash_attention.to_string(),
        num(plan.hfu),
        plan.bottleneck.as_str().to_string(),
        objective.as_str().to_string(),
        pareto.to_string(),
        s.tp_overlap.to_string(),
        model.to_string(),
        s.expert_tp().to_string(),
        s.ep_overlap.to_string(),
        s.ep_dispatcher.as_str().to_string(),
        plan.framework.map_or("", Framework::as_str).to_string(),
        s.dp_overlap.to_string(),
    ]
}

/// A float as its shortest round-tripping decimal (never exponent notation).
fn num(x: f64) -> String {
    format!("{x}")
}

/// The rows of `plans` (header first), ranked from 1.
pub fn rows(p: &Plans) -> Vec<Vec<String>> {
    let mut out = vec![header().into_iter().map(String::from).collect()];
    for (i, plan) in p.plans.iter().enumerate() {
        let gpu = p.gpus.get(usize::from(plan.gpu)).map_or("", String::as_str);
        out.push(row(i + 1, plan, gpu, p.objective, p.pareto, &p.model));
    }
    out
}

/// The CSV text of `plans`, header always present.
pub fn to_csv(p: &Plans) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows(p) {
        // Writing to a Vec cannot fail; a failure would only drop the row.
        let _ = w.write_record(&r);
    }
    w.into_inner().unwrap_or_default()
}

/// One row read back: the plan with its accelerator id (indices are assigned after all files
/// are read, so that they follow the id order).
#[derive(Debug, Clone, PartialEq)]
struct Row {
    gpu: String,
    plan: Plan,
    objective: Objective,
    pareto: bool,
    model: String,
}

/// Reads a plans CSV written by `trainplan sweep`.
pub fn read(path: &Path) -> Result<Plans, IoError> {
    let bytes = std::fs::read(path).map_err(|source| IoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&path.display().to_string(), &bytes)
}

/// Parses plans CSV `bytes` read from `label`.
pub fn parse(label: &str, bytes: &[u8]) -> Result<Plans, IoError> {
    let rows = parse_rows(label, bytes)?;
    assemble(label, rows)
}

fn at_line(label: &str, line: Option<u64>) -> Location {
    Location {
        path: label.to_string(),
        line: line.map(|l| l as usize),
        column: None,
    }
}

fn parse_rows(label: &str, bytes: &[u8]) -> Result<Vec<Row>, IoError> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let head = r
        .headers()
        .map_err(|e| IoError::Parse {
            location: at_line(label, Some(1)),
            message: format!("cannot read the header: {e}"),
        })?
        .clone();
    let names: Vec<&str> = head.iter().collect();
    for (i, want) in COLUMNS.iter().chain(EXTRA_COLUMNS.iter()).enumerate() {
        if names.get(i) != Some(want) {
            return Err(IoError::Parse {
                location: at_line(label, Some(1)),
                message: format!(
                    "column {} should be `{want}`, found `{}`; this is not a plans CSV written by `trainplan sweep`",
                    i + 1,
                    names.get(i).unwrap_or(&"(none)")
                ),
            });
        }
    }
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| IoError::Parse {
            location: at_line(
                label,
                e.position()
                    .map(|p| crate::csvfile::record_start(bytes, p).1 as u64),
            ),
            message: e.to_string(),
        })?;
        let line = rec
            .position()
            .map(|p| crate::csvfile::record_start(bytes, p).1 as u64);
        let cell = |i: usize| rec.get(i).unwrap_or("");
        let field = |i: usize, message: String| IoError::Field {
            location: at_line(label, line),
            field: header()[i].to_string(),
            message,
        };
        let int = |i: usize| -> Result<u32, IoError> {
            cell(i).parse::<u32>().map_err(|_| {
                field(
                    i,
                    format!("expected a non-negative integer, found `{}`", cell(i)),
                )
            })
        };
        let float = |i: usize| -> Result<f64, IoError> {
            cell(i)
                .parse::<f64>()
                .map_err(|_| field(i, format!("expected a number, found `{}`", cell(i))))
        };
        let boolean = |i: usize| -> Result<bool, IoError> {
            cell(i)
                .parse::<bool>()
                .map_err(|_| field(i, format!("expected true or false, found `{}`", cell(i))))
        };
        let recompute = match cell(14) {
            "none" => Recompute::None,
            "selective" => Recompute::Selective,
            "full" => Recompute::Full,
            other => {
                return Err(field(
                    14,
                    format!("expected none, selective or full, found `{other}`"),
                ))
            }
        };
        let zero = u8::try_from(int(13)?).map_err(|_| field(13, "expected 0 to 3".into()))?;
        let bottleneck = bottleneck(cell(31)).ok_or_else(|| {
            field(
                31,
                format!("`{}` is not a bottleneck trainplan reports", cell(31)),
            )
        })?;
        let objective = Objective::from_name(cell(32)).ok_or_else(|| {
            field(
                32,
                format!("expected time, cost or mfu, found `{}`", cell(32)),
            )
        })?;
        let cost_usd = if cell(27).is_empty() {
            None
        } else {
            Some(float(27)?)
        };
        let (tp, sequence_parallel, tp_overlap) = (int(5)?, boolean(28)?, boolean(34)?);
        if tp_overlap && tp > 1 && !sequence_parallel {
            return Err(field(
                34,
                "tensor-parallel overlap without sequence parallelism: this row was written by an older trainplan, which priced a layout the current cost model no longer overlaps; re-run that sweep or shard".into(),
            ));
        }
        let plan = Plan {
            gpu: 0,
            n_gpus: int(2)?,
            nodes: int(3)?,
            global_batch: int(12)?,
            strategy: Strategy {
                dp: int(4)?,
                tp,
                pp: int(6)?,
                cp: int(7)?,
                ep: int(8)?,
                // The column holds the effective value; equal to tp it is the default.
                etp: Some(int(36)?).filter(|&e| e != tp),
                vpp: int(9)?,
                micro_batch: int(10)?,
                zero,
                recompute,
                sequence_parallel,
                flash_attention: boolean(29)?,
                tp_overlap,
                ep_overlap: boolean(37)?,
                dp_overlap: boolean(40)?,
                ep_dispatcher: EpDispatcher::from_name(cell(38)).ok_or_else(|| {
                    field(
                        38,
                        format!(
                            "expected {}, found `{}`",
                            EpDispatcher::ALL.map(EpDispatcher::as_str).join(" or "),
                            cell(38)
                        ),
                    )
                })?,
            },
            grad_accum: int(11)?,
            mem_gib: float(15)?,
            mem_capacity_gib: float(16)?,
            fits: boolean(17)?,
            step_time_s: float(18)?,
            tokens_per_s: float(19)?,
            tokens_per_s_per_gpu: float(20)?,
            mfu: float(21)?,
            hfu: float(30)?,
            compute_s: float(22)?,
            exposed_comm_s: float(23)?,
            bubble_s: float(24)?,
            train_days: float(25)?,
            gpu_hours: float(26)?,
            cost_usd,
            bottleneck,
            framework: match cell(39) {
                "" => None,
                name => Some(Framework::from_name(name).ok_or_else(|| {
                    field(
                        39,
                        format!(
                            "expected {} or empty (trainplan's framework-neutral rules), found `{name}`",
                            Framework::ALL.map(Framework::as_str).join(", ")
                        ),
                    )
                })?),
            },
        };
        if cell(1).is_empty() {
            return Err(field(1, "is empty; expected an accelerator id".into()));
        }
        out.push(Row {
            gpu: cell(1).to_string(),
            plan,
            objective,
            pareto: boolean(33)?,
            model: cell(35).to_string(),
        });
    }
    Ok(out)
}

fn bottleneck(name: &str) -> Option<Bottleneck> {
    Bottleneck::ALL.into_iter().find(|b| b.as_str() == name)
}

/// Assigns accelerator indices in id order and checks that every row was ranked the same way.
fn assemble(label: &str, rows: Vec<Row>) -> Result<Plans, IoError> {
    let gpus: Vec<String> = rows
        .iter()
        .map(|r| r.gpu.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut objective = None;
    let mut pareto = None;
    let mut model: Option<String> = None;
    let mut plans = Vec::with_capacity(rows.len());
    for r in rows {
        if model.as_ref().is_some_and(|m| *m != r.model) {
            return Err(IoError::Parse {
                location: Location::file(label),
                message:
                    "rows plan different models (model column differs); merge files from one sweep"
                        .into(),
            });
        }
        model.get_or_insert_with(|| r.model.clone());
        if objective.is_some_and(|o| o != r.objective) || pareto.is_some_and(|p| p != r.pareto) {
            return Err(IoError::Parse {
                location: Location::file(label),
                message: "rows were ranked in different ways (objective or pareto columns differ); merge files from one sweep".into(),
            });
        }
        objective = Some(r.objective);
        pareto = Some(r.pareto);
        let mut plan = r.plan;
        plan.gpu = gpus.binary_search(&r.gpu).unwrap_or(0) as u16;
        plans.push(plan);
    }
    Ok(Plans {
        gpus,
        plans,
        objective: objective.unwrap_or(Objective::Time),
        pareto: pareto.unwrap_or(false),
        model: model.unwrap_or_default(),
    })
}

/// Merges the plans of sharded sweeps into the ranking one sweep of the whole space gives:
/// the best `top` under the files' objective (or `objective` when given), or the Pareto front of
/// their union when the files hold fronts.
pub fn merge(
    files: &[(String, Plans)],
    top: Option<usize>,
    objective: Option<Objective>,
) -> Result<Plans, IoError> {
    let gpus: Vec<String> = files
        .iter()
        .flat_map(|(_, p)| p.gpus.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut ranked: Option<(Objective, bool, &str)> = None;
    let mut model: Option<(&str, &str)> = None;
    let mut all = Vec::new();
    for (label, p) in files {
        if p.plans.is_empty() {
            continue;
        }
        match model {
            Some((m, first)) if m != p.model => {
                return Err(IoError::Parse {
                    location: Location::file(label.clone()),
                    message: format!(
                        "plans model `{}` but {first} plans `{m}`; merge shards of one sweep",
                        p.model
                    ),
                });
            }
            Some(_) => {}
            None => model = Some((p.model.as_str(), label.as_str())),
        }
        if let Some((o, par, first)) = ranked {
            if o != p.objective || par != p.pareto {
                return Err(IoError::Parse {
                    location: Location::file(label.clone()),
                    message: format!(
                        "ranked by {}{} but {first} by {}{}; merge shards of one sweep",
                        p.objective.as_str(),
                        if p.pareto { " (Pareto front)" } else { "" },
                        o.as_str(),
                        if par { " (Pareto front)" } else { "" },
                    ),
                });
            }
        } else {
            ranked = Some((p.objective, p.pareto, label.as_str()));
        }
        for plan in &p.plans {
            let mut plan = *plan;
            let id = p.gpus.get(usize::from(plan.gpu)).map_or("", String::as_str);
            plan.gpu = gpus.binary_search_by(|g| g.as_str().cmp(id)).unwrap_or(0) as u16;
            all.push(plan);
        }
    }
    let (file_objective, pareto) = ranked.map_or((Objective::Time, false), |(o, p, _)| (o, p));
    let objective = objective.unwrap_or(file_objective);
    // A plan appears once per sweep; the same key in two files means the same plan twice.
    all.sort_by_key(Plan::key);
    all.dedup_by(|a, b| a.key() == b.key());
    let plans = if pareto {
        let mut front = pareto_front(&all);
        front.sort_by(|a, b| compare(objective, a, b));
        if let Some(k) = top {
            front.truncate(k);
        }
        front
    } else {
        let mut best = TopK::new(objective, top.unwrap_or(all.len()));
        for p in &all {
            best.offer(p);
        }
        best.into_plans()
    };
    Ok(Plans {
        gpus,
        plans,
        objective,
        pareto,
        model: model.map_or_else(String::new, |(m, _)| m.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use trainplan_search::fixtures::{a100_80gb, gpt3_13b, job};
    use trainplan_search::{SearchBuilder, Shard, SpaceSpec};

    fn sweep(objective: Objective, shard: Shard, pareto: bool) -> Plans {
        let spec = SpaceSpec::new(vec![a100_80gb(Some(2.0))], vec![32, 64], vec![256]);
        let r = SearchBuilder::new(gpt3_13b(), job(256, 260e9), spec)
            .objective(objective)
            .top_k(12)
            .pareto(pareto)
            .shard(shard)
            .build()
            .unwrap()
            .run(Some(2))
            .unwrap();
        Plans {
            gpus: r.gpus,
            plans: if pareto { r.front.unwrap() } else { r.plans },
            objective,
            pareto,
            model: "gpt3-13b".into(),
        }
    }

    #[test]
    fn csv_reads_back_identical_plans() {
        for pareto in [false, true] {
            let p = sweep(Objective::Mfu, Shard::ALL, pareto);
            assert!(!p.plans.is_empty());
            let back = parse("t.csv", &to_csv(&p)).unwrap();
            assert_eq!(back, p);
        }
    }

    #[test]
    fn moe_plans_read_back_with_their_expert_split_and_overlap() {
        let mut model = gpt3_13b();
        model.moe = Some(trainplan_model::Moe {
            experts: 8,
            top_k: 2,
            shared_ffn: 0,
            dense_layers: 0,
            dense_ffn: 0,
            layer_freq: 1,
        });
        let mut spec = SpaceSpec::new(vec![a100_80gb(Some(2.0))], vec![64], vec![256]);
        spec.ep_comm_overlap = true;
        spec.ep_dispatcher = EpDispatcher::DeepEp;
        let r = SearchBuilder::new(model, job(256, 260e9), spec)
            .top_k(4000)
            .build()
            .unwrap()
            .run(Some(2))
            .unwrap();
        let p = Plans {
            gpus: r.gpus,
            plans: r.plans,
            objective: Objective::Time,
            pareto: false,
            model: "moe".into(),
        };
        assert!(p.plans.iter().any(|x| x.strategy.etp == Some(1)));
        assert!(p
            .plans
            .iter()
            .any(|x| x.strategy.etp.is_none() && x.strategy.tp > 1));
        // `[sweep] ep_comm_overlap` overlaps exactly the layouts with an all-to-all.
        assert!(p.plans.iter().any(|x| x.strategy.ep > 1));
        assert!(p
            .plans
            .iter()
            .all(|x| x.strategy.ep_overlap == (x.strategy.ep > 1)));
        // `[sweep] ep_dispatcher` applies to the same layouts; the column reads back.
        assert!(p
            .plans
            .iter()
            .all(|x| (x.strategy.ep_dispatcher == EpDispatcher::DeepEp) == (x.strategy.ep > 1)));
        let csv = to_csv(&p);
        assert_eq!(parse("t.csv", &csv).unwrap(), p);
        // A spreadsheet saved with CRLF line ends reads the same, and errors name the right line.
        let crlf = String::from_utf8(csv).unwrap().replace('\n', "\r\n");
        assert_eq!(parse("t.csv", crlf.as_bytes()).unwrap(), p);
        let broken = crlf.replacen(",deepep,", ",nccl,", 1);
        let line = 1 + broken[..broken.find(",nccl").unwrap()]
            .matches('\n')
            .count();
        let e = parse("t.csv", broken.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains(&format!("t.csv:{line}")) && e.contains("ep_dispatcher"),
            "{e}"
        );
    }

    #[test]
    fn framework_column_names_the_conventions_that_priced_each_plan() {
        let p = sweep(Objective::Time, Shard::ALL, false);
        // An unstated job: FSDP layouts are PyTorch's, the rest framework-neutral.
        for x in &p.plans {
            let fsdp = x.strategy.zero >= 3 || (x.strategy.zero == 2 && x.strategy.pp > 1);
            assert_eq!(x.framework, fsdp.then_some(Framework::Pytorch), "{x:?}");
        }
        assert!(p.plans.iter().any(|x| x.framework.is_some()));
        assert!(p.plans.iter().any(|x| x.framework.is_none()));
        let text = String::from_utf8(to_csv(&p)).unwrap();
        assert!(text
            .lines()
            .next()
            .unwrap()
            .ends_with(",framework,dp_comm_overlap"));
        assert!(text.lines().skip(1).any(|l| l.ends_with(",pytorch,true")));
        assert!(text.lines().skip(1).any(|l| l.ends_with(",,true")));
        // A name trainplan does not know is refused, naming the column and what is allowed.
        let (n, neutral) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.ends_with(",,true"))
            .unwrap();
        let spoiled = text.replacen(neutral, &neutral.replace(",,true", ",jax,true"), 1);
        let e = parse("f.csv", spoiled.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains(&format!("f.csv:{}", n + 1)) && e.contains("framework"),
            "{e}"
        );
        assert!(e.contains("megatron, deepspeed, pytorch"), "{e}");
    }

    #[test]
    fn a_sweep_may_price_a_stack_that_reduces_after_the_last_backward() {
        let run = |dp_comm_overlap| {
            let mut spec = SpaceSpec::new(vec![a100_80gb(Some(2.0))], vec![64], vec![256]);
            spec.dp_comm_overlap = dp_comm_overlap;
            let r = SearchBuilder::new(gpt3_13b(), job(256, 260e9), spec)
                .top_k(50)
                .build()
                .unwrap()
                .run(Some(2))
                .unwrap();
            Plans {
                gpus: r.gpus,
                plans: r.plans,
                objective: Objective::Time,
                pareto: false,
                model: "gpt3-13b".into(),
            }
        };
        let (overlapped, exposed) = (run(true), run(false));
        assert!(overlapped.plans.iter().all(|x| x.strategy.dp_overlap));
        assert!(exposed.plans.iter().all(|x| !x.strategy.dp_overlap));
        // The best plan can only get slower when the reduction shows; a layout below ZeRO-3
        // with data-parallel peers shows more of its communication.
        assert!(exposed.plans[0].step_time_s >= overlapped.plans[0].step_time_s);
        let same = |x: &Plan| Strategy {
            dp_overlap: true,
            ..x.strategy
        };
        let pair = exposed
            .plans
            .iter()
            .filter(|x| x.strategy.zero <= 2 && x.strategy.dp > 1)
            .find_map(|x| {
                overlapped
                    .plans
                    .iter()
                    .find(|y| y.strategy == same(x) && y.n_gpus == x.n_gpus)
                    .map(|y| (x, y))
            });
        let (x, y) = pair.expect("a ZeRO-0..2 layout with dp > 1 in both top lists");
        assert!(x.exposed_comm_s > y.exposed_comm_s, "{x:?} vs {y:?}");
        assert_eq!(x.compute_s, y.compute_s);
        let csv = to_csv(&exposed);
        assert_eq!(parse("t.csv", &csv).unwrap(), exposed);
        let text = String::from_utf8(csv).unwrap();
        assert!(text.lines().skip(1).all(|l| l.ends_with(",false")));
        let first = text.lines().nth(1).unwrap();
        let spoiled = text.replacen(first, &format!("{}later", &first[..first.len() - 5]), 1);
        let e = parse("t.csv", spoiled.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("t.csv:2") && e.contains("dp_comm_overlap"),
            "{e}"
        );
    }

    #[test]
    fn header_is_the_contract_then_extras() {
        let text = String::from_utf8(to_csv(&sweep(Objective::Time, Shard::ALL, false))).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("rank,gpu,n_gpus,nodes,dp,tp,pp,cp,ep,vpp,micro_batch,grad_accum,global_batch,zero,recompute,mem_gib,mem_capacity_gib,fits,step_time_s,tokens_per_s,tokens_per_s_per_gpu,mfu,compute_s,exposed_comm_s,bubble_s,train_days,gpu_hours,cost_usd,"), "{first}");
        // No exponent notation, ever.
        for line in text.lines().skip(1) {
            for cell in line.split(',') {
                assert!(
                    cell.parse::<f64>().is_err() || !cell.contains('e'),
                    "{cell}"
                );
            }
        }
    }

    #[test]
    fn merging_shards_gives_the_single_run() {
        for (objective, pareto) in [(Objective::Cost, false), (Objective::Time, true)] {
            let single = sweep(objective, Shard::ALL, pareto);
            let files: Vec<(String, Plans)> = (1..=3)
                .map(|index| {
                    let p = sweep(objective, Shard { index, count: 3 }, pareto);
                    let label = format!("shard{index}.csv");
                    let back = parse(&label, &to_csv(&p)).unwrap();
                    (label, back)
                })
                .collect();
            let top = (!pareto).then_some(12);
            let merged = merge(&files, top, None).unwrap();
            assert_eq!(merged, single, "{objective:?} pareto {pareto}");
        }
    }

    #[test]
    fn wrong_header_and_bad_cells_name_the_place() {
        let e = parse("x.csv", b"rank,gpu\n1,a\n").unwrap_err().to_string();
        assert!(e.starts_with("x.csv:1"), "{e}");
        let p = sweep(Objective::Time, Shard::ALL, false);
        let text = String::from_utf8(to_csv(&p)).unwrap();
        // Spoil the recompute cell of the first plan.
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let col = lines[0].split(',').position(|c| c == "recompute").unwrap();
        let mut cells: Vec<&str> = lines[1].split(',').collect();
        cells[col] = "sometimes";
        lines[1] = cells.join(",");
        let broken = lines.join("\n") + "\n";
        let e = parse("y.csv", broken.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("y.csv:"), "{e}");
        assert!(e.contains("recompute"), "{e}");
    }

    #[test]
    fn a_row_overlapping_without_sequence_parallelism_is_stale_and_refused() {
        let p = sweep(Objective::Time, Shard::ALL, false);
        let text = String::from_utf8(to_csv(&p)).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let head: Vec<&str> = lines[0].split(',').collect();
        let col = |name: &str| head.iter().position(|c| *c == name).unwrap();
        let (tp, sp, ov) = (col("tp"), col("sequence_parallel"), col("tp_comm_overlap"));
        let row = (1..lines.len())
            .find(|&i| lines[i].split(',').nth(tp) != Some("1"))
            .expect("a plan with tp > 1");
        let mut cells: Vec<String> = lines[row].split(',').map(str::to_string).collect();
        cells[sp] = "false".into();
        cells[ov] = "true".into();
        lines[row] = cells.join(",");
        let stale = lines.join("\n") + "\n";
        let e = parse("old.csv", stale.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("old.csv:"), "{e}");
        assert!(e.contains("tp_comm_overlap"), "{e}");
        assert!(e.contains("re-run"), "{e}");
    }

    #[test]
    fn merging_different_models_is_refused() {
        let a = sweep(Objective::Time, Shard::ALL, false);
        let mut b = sweep(Objective::Time, Shard::ALL, false);
        b.model = "llama3-70b".into();
        let back = parse("b.csv", &to_csv(&b)).unwrap();
        assert_eq!(back.model, "llama3-70b");
        let e = merge(&[("a.csv".into(), a), ("b.csv".into(), back)], None, None).unwrap_err();
        assert!(e.to_string().contains("b.csv"), "{e}");
        assert!(e.to_string().contains("llama3-70b"), "{e}");
    }

    #[test]
    fn merging_different_rankings_is_refused() {
        let a = sweep(Objective::Time, Shard::ALL, false);
        let b = sweep(Objective::Cost, Shard::ALL, false);
        let e = merge(&[("a.csv".into(), a), ("b.csv".into(), b)], None, None).unwrap_err();
        assert!(e.to_string().contains("merge shards of one sweep"), "{e}");
    }
}
