//! Unit tests of the search crate: determinism, sharding, rule pruning against an exhaustive
//! sweep, deadlines and budgets, and the ranking structures.

use crate::fixtures::{a100_80gb, gpt3_13b, job};
use crate::*;
use proptest::prelude::{prop_assert_eq, proptest};
use proptest::strategy::Strategy as _;
use std::collections::BTreeMap;
use trainplan_hardware::Cluster;
use trainplan_model::Recompute;
use trainplan_parallel::{estimate, Strategy};

/// A small space: GPT-3 13B on 16 to 64 A100s, two global batches.
fn small_spec() -> SpaceSpec {
    let mut spec = SpaceSpec::new(
        vec![a100_80gb(Some(2.0))],
        vec![16, 24, 32, 64],
        vec![256, 384],
    );
    spec.micro_batch = MicroBatches::List(vec![1, 2, 3, 4]);
    spec
}

fn small(objective: Objective, k: usize) -> SearchBuilder {
    SearchBuilder::new(gpt3_13b(), job(256, 260e9), small_spec())
        .objective(objective)
        .top_k(k)
}

fn keys(plans: &[Plan]) -> Vec<(u16, u32, u32, Strategy)> {
    plans.iter().map(Plan::key).collect()
}

#[test]
fn same_ranking_on_one_thread_and_many() {
    for objective in Objective::ALL {
        let search = small(objective, 25).pareto(true).build().unwrap();
        let one = search.run(Some(1)).unwrap();
        let many = search.run(Some(4)).unwrap();
        assert!(!one.plans.is_empty());
        assert_eq!(one.plans, many.plans, "{objective:?}");
        assert_eq!(one.front, many.front);
        assert_eq!(one.stats, many.stats);
        assert_eq!(one.fastest, many.fastest);
    }
}

#[test]
fn shards_merge_into_the_single_run_ranking() {
    let k = 15;
    let whole = small(Objective::Cost, k).pareto(true).build().unwrap();
    let single = whole.run(Some(2)).unwrap();
    let mut top = TopK::new(Objective::Cost, k);
    let mut front = ParetoFront::new();
    let mut strategies = 0;
    let n = 3;
    for index in 1..=n {
        let shard = small(Objective::Cost, k)
            .pareto(true)
            .shard(Shard { index, count: n })
            .build()
            .unwrap();
        let r = shard.run(Some(2)).unwrap();
        strategies += r.stats.strategies;
        for p in &r.plans {
            top.offer(p);
        }
        for p in r.front.as_deref().unwrap_or_default() {
            front.offer(p);
        }
    }
    assert_eq!(strategies, single.stats.strategies);
    assert_eq!(strategies, whole.total_strategies());
    assert_eq!(top.plans(), single.plans.as_slice());
    let mut merged_front = front.into_plans();
    merged_front.sort_by(|a, b| compare(Objective::Cost, a, b));
    assert_eq!(Some(merged_front), single.front);
}

/// Every strategy of `small_spec`, enumerated independently of the search and priced by
/// `estimate` one by one, with no rule applied beforehand.
fn exhaustive(objective: Objective, k: usize) -> (TopK, BTreeMap<&'static str, u64>, u64) {
    let spec = small_spec();
    let model = gpt3_13b();
    let target = &spec.targets[0];
    let mut top = TopK::new(objective, k);
    let mut reasons = BTreeMap::new();
    let mut total = 0;
    let MicroBatches::List(mbs) = &spec.micro_batch else {
        unreachable!()
    };
    for &n in &spec.n_gpus {
        let cluster = Cluster::new(target.accelerator.clone(), target.node.clone(), n).unwrap();
        for &g in &spec.global_batch {
            let job = job(g, 260e9);
            for tp in 1..=8u32 {
                if n % tp != 0 || model.n_heads % tp != 0 || model.n_kv_heads % tp != 0 {
                    continue;
                }
                for pp in 1..=(n / tp) {
                    if (n / tp) % pp != 0 || pp > model.n_layers {
                        continue;
                    }
                    let dp = n / tp / pp;
                    let vpps: Vec<u32> = if pp == 1 { vec![1] } else { spec.vpp.clone() };
                    for &vpp in &vpps {
                        for &micro_batch in mbs {
                            for &zero in &spec.zero {
                                for &recompute in &spec.recompute {
                                    for sp in [false, true] {
                                        if sp && tp == 1 {
                                            continue;
                                        }
                                        total += 1;
                                        let s = Strategy {
                                            dp,
                                            tp,
                                            pp,
                                            vpp,
                                            micro_batch,
                                            zero,
                                            recompute,
                                            sequence_parallel: sp,
                                            ..Strategy::default()
                                        };
                                        let op_level = s.op_level_selective(&job);
                                        if recompute == Recompute::Selective && !op_level {
                                            // The sweep ranks this once, as `none`: check the
                                            // two really are the same plan, then count it.
                                            let none = Strategy {
                                                recompute: Recompute::None,
                                                ..s
                                            };
                                            let a = estimate(&model, &cluster, &job, &s);
                                            let b = estimate(&model, &cluster, &job, &none);
                                            match (a, b) {
                                                (Ok(a), Ok(b)) => {
                                                    assert_eq!(a.time, b.time);
                                                    assert_eq!(a.memory, b.memory);
                                                }
                                                (Err(a), Err(b)) => assert_eq!(a, b),
                                                _ => panic!("selective and none disagree on {s:?}"),
                                            }
                                            // Layout rules reject before the sweep looks at
                                            // recomputation; memory is judged after.
                                            let reason = match estimate(&model, &cluster, &job, &s)
                                            {
                                                Err(why) if why.reason() != "out_of_memory" => {
                                                    why.reason()
                                                }
                                                _ => "selective_is_none",
                                            };
                                            *reasons.entry(reason).or_insert(0) += 1;
                                            continue;
                                        }
                                        match estimate(&model, &cluster, &job, &s) {
                                            Ok(e) => top.offer(&Plan::new(
                                                0,
                                                n,
                                                cluster.n_nodes(),
                                                &job,
                                                s,
                                                &e,
                                                Some(2.0),
                                            )),
                                            Err(why) => {
                                                *reasons.entry(why.reason()).or_insert(0) += 1;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (top, reasons, total)
}

#[test]
fn rule_pruning_matches_the_exhaustive_sweep() {
    let k = 30;
    let (top, reasons, total) = exhaustive(Objective::Time, k);
    let r = small(Objective::Time, k)
        .build()
        .unwrap()
        .run(Some(2))
        .unwrap();
    assert_eq!(r.stats.strategies, total);
    assert!(
        r.stats.estimated < total,
        "rules should save estimate calls"
    );
    assert_eq!(keys(&r.plans), keys(top.plans()));
    assert_eq!(r.plans, top.plans());
    let got: BTreeMap<&str, u64> = r.stats.rejections.iter().copied().collect();
    assert_eq!(got, reasons);
    assert_eq!(
        r.stats.feasible + reasons.values().sum::<u64>(),
        r.stats.strategies
    );
}

#[test]
fn deadline_keeps_plans_in_time_ranked_by_cost() {
    let unconstrained = small(Objective::Time, 200)
        .build()
        .unwrap()
        .run(None)
        .unwrap();
    let fastest = unconstrained.plans[0].train_days;
    let slowest = unconstrained.plans.last().unwrap().train_days;
    let deadline = fastest + (slowest - fastest) / 2.0;
    let constraints = Constraints {
        deadline_days: Some(deadline),
        budget_usd: None,
    };
    let r = small(constraints.default_objective(), 20)
        .constraints(constraints)
        .build()
        .unwrap()
        .run(None)
        .unwrap();
    assert!(!r.plans.is_empty());
    assert!(r.shortfall().is_none());
    assert!(r.plans.iter().all(|p| p.train_days <= deadline));
    assert!(r
        .plans
        .windows(2)
        .all(|w| w[0].cost_usd.unwrap() <= w[1].cost_usd.unwrap()));
    // Nothing cheaper that meets the deadline was left out.
    let cheapest_in_time = unconstrained
        .plans
        .iter()
        .filter(|p| p.train_days <= deadline)
        .map(Plan::cost)
        .fold(f64::INFINITY, f64::min);
    assert!(r.plans[0].cost() <= cheapest_in_time);
}

#[test]
fn impossible_deadline_says_what_it_would_take() {
    let constraints = Constraints {
        deadline_days: Some(0.01),
        budget_usd: None,
    };
    let r = small(Objective::Cost, 10)
        .constraints(constraints)
        .build()
        .unwrap()
        .run(None)
        .unwrap();
    assert!(r.plans.is_empty());
    let s = r.shortfall().unwrap();
    let msg = s.to_string();
    assert!(msg.contains("deadline of 0.01 days"), "{msg}");
    assert!(msg.contains("at least"), "{msg}");
    assert!(s.gpus_needed.unwrap() > 64, "{s:?}");
}

#[test]
fn budget_keeps_plans_within_it_ranked_by_time() {
    let cheapest = small(Objective::Cost, 1)
        .build()
        .unwrap()
        .run(None)
        .unwrap()
        .plans[0];
    let budget = cheapest.cost() * 1.2;
    let constraints = Constraints {
        deadline_days: None,
        budget_usd: Some(budget),
    };
    let r = small(constraints.default_objective(), 10)
        .constraints(constraints)
        .build()
        .unwrap()
        .run(None)
        .unwrap();
    assert_eq!(r.objective, Objective::Time);
    assert!(r.plans.iter().all(|p| p.cost() <= budget));
    assert!(r
        .plans
        .windows(2)
        .all(|w| w[0].train_days <= w[1].train_days));
    let tiny = small(Objective::Time, 10)
        .constraints(Constraints {
            deadline_days: None,
            budget_usd: Some(1.0),
        })
        .build()
        .unwrap()
        .run(None)
        .unwrap();
    let msg = tiny.shortfall().unwrap().to_string();
    assert!(msg.contains("budget of $1"), "{msg}");
}

#[test]
fn nothing_fits_is_a_shortfall() {
    let mut spec = small_spec();
    spec.n_gpus = vec![1];
    spec.zero = vec![0];
    let r = SearchBuilder::new(crate::fixtures::gpt3_175b(), job(256, 1e9), spec)
        .build()
        .unwrap()
        .run(None)
        .unwrap();
    assert_eq!(r.stats.feasible, 0);
    let msg = r.shortfall().unwrap().to_string();
    assert!(msg.contains("can run"), "{msg}");
    assert!(msg.contains("more memory"), "{msg}");
    assert!(msg.contains("out_of_memory"), "{msg}");
}

#[test]
fn builder_rejects_bad_spaces() {
    let mut spec = small_spec();
    spec.zero = vec![4];
    let e = SearchBuilder::new(gpt3_13b(), job(256, 1e9), spec)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("zero"), "{e}");
    let mut spec = small_spec();
    spec.n_gpus.clear();
    assert!(matches!(
        SearchBuilder::new(gpt3_13b(), job(256, 1e9), spec).build(),
        Err(SearchError::EmptyList { field: "n_gpus" })
    ));
    let mut spec = small_spec();
    spec.targets = vec![a100_80gb(None)];
    let e = SearchBuilder::new(gpt3_13b(), job(256, 1e9), spec)
        .constraints(Constraints {
            deadline_days: None,
            budget_usd: Some(1e6),
        })
        .build()
        .unwrap_err();
    assert!(matches!(e, SearchError::NoPrice { .. }), "{e}");
}

#[test]
fn moe_layouts_try_expert_parallel_degrees_that_divide() {
    let mut model = crate::fixtures::gpt3_1_3b();
    model.moe = Some(trainplan_model::Moe {
        experts: 8,
        top_k: 2,
        shared_ffn: 0,
        dense_layers: 0,
        dense_ffn: 0,
        layer_freq: 1,
    });
    let mut spec = small_spec();
    spec.n_gpus = vec![16];
    let r = SearchBuilder::new(model, job(256, 1e9), spec)
        .top_k(5000)
        .build()
        .unwrap()
        .run(None)
        .unwrap();
    let eps: std::collections::BTreeSet<u32> = r.plans.iter().map(|p| p.strategy.ep).collect();
    assert!(eps.len() > 1, "{eps:?}");
    // Experts split like the dense layers take ep from dp × cp; whole experts (etp 1, only
    // under sequence parallelism) from tp × dp × cp.
    assert!(r.plans.iter().all(|p| {
        let s = p.strategy;
        let ranks = match s.etp {
            None => s.dp * s.cp,
            Some(e) => {
                assert!(e == 1 && s.tp > 1 && s.sp_active(), "{s:?}");
                s.tp * s.dp * s.cp
            }
        };
        8 % s.ep == 0 && ranks % s.ep == 0
    }));
    // Folding is tried and can reach an ep that dp × cp alone cannot.
    assert!(
        r.plans
            .iter()
            .any(|p| p.strategy.etp == Some(1)
                && (p.strategy.dp * p.strategy.cp) % p.strategy.ep != 0),
        "no folded layout among {} plans",
        r.plans.len()
    );
}

/// The small space on 16 GPUs only, with `set` applied, swept for `model` (global batch 256).
fn sweep_16_gpus(
    model: &trainplan_model::Model,
    tokens: f64,
    set: impl FnOnce(&mut SpaceSpec),
) -> SweepResult {
    let mut spec = small_spec();
    spec.n_gpus = vec![16];
    set(&mut spec);
    SearchBuilder::new(model.clone(), job(256, tokens), spec)
        .top_k(5000)
        .build()
        .unwrap()
        .run(None)
        .unwrap()
}

#[test]
fn whole_experts_can_be_ruled_out_for_frameworks_without_folding() {
    let mut model = crate::fixtures::gpt3_1_3b();
    model.moe = Some(trainplan_model::Moe {
        experts: 8,
        top_k: 2,
        shared_ffn: 0,
        dense_layers: 0,
        dense_ffn: 0,
        layer_freq: 1,
    });
    let run =
        |whole_experts: bool| sweep_16_gpus(&model, 1e9, |spec| spec.whole_experts = whole_experts);
    let (with, without) = (run(true), run(false));
    assert!(with.plans.iter().any(|p| p.strategy.etp == Some(1)));
    assert!(without.plans.iter().all(|p| p.strategy.etp.is_none()));
    assert!(without
        .plans
        .iter()
        .any(|p| p.strategy.tp > 1 && p.strategy.ep > 1));
    assert!(without.stats.strategies < with.stats.strategies);
}

#[test]
fn replicated_kv_heads_are_swept_only_when_asked() {
    // A 13B GPT with two KV heads: tp 4 and 8 replicate each head over 2 and 4 ranks, which
    // Megatron-Core and torchtitan cannot run, so the default space stops at tp 2.
    let model = trainplan_model::Model {
        n_kv_heads: 2,
        ..gpt3_13b()
    };
    let run =
        |replicate: bool| sweep_16_gpus(&model, 260e9, |spec| spec.replicate_kv_heads = replicate);
    let (split, replicated) = (run(false), run(true));
    assert!(split.plans.iter().all(|p| p.strategy.tp <= 2));
    for tp in [4, 8] {
        assert!(replicated.plans.iter().any(|p| p.strategy.tp == tp), "{tp}");
    }
    assert!(split.stats.strategies < replicated.stats.strategies);
}

#[test]
fn shard_parses_k_of_n() {
    assert_eq!(
        "2/8".parse::<Shard>().unwrap(),
        Shard { index: 2, count: 8 }
    );
    for bad in ["0/3", "4/3", "1", "a/b", "1/0", ""] {
        assert!(bad.parse::<Shard>().is_err(), "{bad}");
    }
}

#[test]
fn tp_one_never_tries_sequence_parallelism() {
    let r = small(Objective::Time, 2000)
        .build()
        .unwrap()
        .run(None)
        .unwrap();
    assert!(r
        .plans
        .iter()
        .all(|p| p.strategy.tp > 1 || !p.strategy.sequence_parallel));
}

fn arb_plan() -> impl proptest::strategy::Strategy<Value = Plan> {
    (0u32..4, 0u32..40, 0u32..40, 0u32..3).prop_map(|(dp, t, c, mb)| {
        let mut p = base_plan();
        p.strategy.dp = dp + 1;
        p.strategy.micro_batch = mb + 1;
        p.train_days = f64::from(t) / 4.0 + 1.0;
        p.gpu_hours = f64::from(c) * 10.0 + 5.0;
        p.cost_usd = Some(p.gpu_hours * 2.0);
        p.mfu = f64::from(t % 7) / 10.0;
        p
    })
}

fn base_plan() -> Plan {
    let model = gpt3_13b();
    let target = a100_80gb(Some(2.0));
    let cluster = Cluster::new(target.accelerator, target.node, 64).unwrap();
    let job = job(256, 1e9);
    let s = Strategy {
        dp: 8,
        tp: 8,
        zero: 1,
        recompute: Recompute::Selective,
        sequence_parallel: true,
        ..Strategy::default()
    };
    let e = trainplan_parallel::evaluate(&model, &cluster, &job, &s).unwrap();
    Plan::new(0, 64, 8, &job, s, &e, Some(2.0))
}

proptest! {
    #[test]
    fn top_k_is_sort_and_truncate(plans in proptest::collection::vec(arb_plan(), 0..60), k in 0usize..12) {
        let mut dedup: Vec<Plan> = Vec::new();
        for p in plans {
            if !dedup.iter().any(|q| q.key() == p.key()) {
                dedup.push(p);
            }
        }
        for objective in Objective::ALL {
            let mut top = TopK::new(objective, k);
            for p in &dedup {
                top.offer(p);
            }
            let mut sorted = dedup.clone();
            sorted.sort_by(|a, b| compare(objective, a, b));
            sorted.truncate(k);
            prop_assert_eq!(top.plans(), sorted.as_slice());
        }
    }

    #[test]
    fn incremental_front_is_the_brute_force_front(plans in proptest::collection::vec(arb_plan(), 0..60)) {
        let mut dedup: Vec<Plan> = Vec::new();
        for p in plans {
            if !dedup.iter().any(|q| q.key() == p.key()) {
                dedup.push(p);
            }
        }
        let mut front = ParetoFront::new();
        for p in &dedup {
            front.offer(p);
        }
        let brute = pareto_front(&dedup);
        prop_assert_eq!(front.plans(), brute.as_slice());
        // Any order of insertion gives the same front.
        let mut rev = ParetoFront::new();
        for p in dedup.iter().rev() {
            rev.offer(p);
        }
        prop_assert_eq!(rev.plans(), front.plans());
    }
}

#[test]
fn swept_overlap_applies_to_sequence_parallel_layouts_only() {
    let mut spec = small_spec();
    spec.tp_comm_overlap = true;
    let r = SearchBuilder::new(gpt3_13b(), job(256, 260e9), spec)
        .objective(Objective::Time)
        .top_k(500)
        .build()
        .unwrap()
        .run(Some(2))
        .unwrap();
    let tp_plans: Vec<&Plan> = r.plans.iter().filter(|p| p.strategy.tp > 1).collect();
    assert!(tp_plans.iter().any(|p| p.strategy.sequence_parallel));
    assert!(tp_plans.iter().any(|p| !p.strategy.sequence_parallel));
    for p in tp_plans {
        assert_eq!(p.strategy.tp_overlap, p.strategy.sequence_parallel, "{p:?}");
    }
}
