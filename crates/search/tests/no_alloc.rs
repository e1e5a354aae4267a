//! The estimate path and the sweep's per-strategy work allocate nothing: a counting global
//! allocator (this test binary only) sees zero allocations across many `estimate` calls and
//! across offering their plans to a warmed-up best-K list. It runs without libtest's harness
//! (`harness = false`), whose threads would share the counting allocator.

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use trainplan_hardware::Cluster;
use trainplan_model::Recompute;
use trainplan_parallel::{estimate, Strategy};
use trainplan_search::fixtures::{a100_80gb, gpt3_175b, job};
use trainplan_search::{Objective, Plan, TopK};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    estimate_and_ranking_allocate_nothing(&gpt3_175b());
    // MoE with dense leading layers and latent attention, under every ZeRO stage (so PyTorch's
    // implied conventions too): DeepSeek-V3's shapes at a size these layouts hold.
    let mut moe = trainplan_model::testing::deepseek_v3_moe_layers();
    moe.n_layers = 16;
    moe.moe = moe.moe.map(|m| trainplan_model::Moe {
        experts: 16,
        top_k: 2,
        dense_layers: 2,
        dense_ffn: 8192,
        layer_freq: 1,
        ..m
    });
    estimate_and_ranking_allocate_nothing(&moe);
    // Dense layers interleaved with MoE ones on every rank (Llama 4's pattern), with a leading one.
    let mut llama4 = trainplan_model::testing::llama4_maverick();
    llama4.n_layers = 16;
    llama4.moe = llama4.moe.map(|m| trainplan_model::Moe {
        experts: 16,
        dense_layers: 1,
        ..m
    });
    estimate_and_ranking_allocate_nothing(&llama4);
    println!("no_alloc: estimate and ranking allocate nothing");
}

fn estimate_and_ranking_allocate_nothing(model: &trainplan_model::Model) {
    let target = a100_80gb(Some(2.0));
    let cluster = Cluster::new(target.accelerator, target.node, 1024).unwrap();
    let job = job(1536, 300e9);
    let mut strategies = Vec::new();
    for (dp, tp, pp) in [
        (8, 8, 16),
        (16, 8, 8),
        (32, 4, 8),
        (128, 8, 1),
        (1024, 1, 1),
    ] {
        for zero in 0..=3 {
            for recompute in Recompute::ALL {
                for micro_batch in [1, 2, 3] {
                    for vpp in [1, 2] {
                        strategies.push(Strategy {
                            dp,
                            tp,
                            pp,
                            vpp,
                            micro_batch,
                            zero,
                            recompute,
                            sequence_parallel: tp > 1,
                            ..Strategy::default()
                        });
                    }
                }
            }
        }
    }
    let mut top = TopK::new(Objective::Time, 8);
    // Fill the list first: growing it to its capacity is the only allocation it ever makes.
    for s in &strategies {
        if let Ok(e) = trainplan_parallel::evaluate(model, &cluster, &job, s) {
            top.offer(&Plan::new(0, 1024, 128, &job, *s, &e, Some(2.0)));
        }
    }
    let region = Region::new(GLOBAL);
    let mut ok = 0u32;
    let mut rejected = 0u32;
    for _ in 0..100 {
        for s in &strategies {
            match estimate(model, &cluster, &job, s) {
                Ok(e) => {
                    ok += 1;
                    top.offer(&Plan::new(0, 1024, 128, &job, *s, &e, Some(2.0)));
                }
                Err(why) => {
                    rejected += 1;
                    std::hint::black_box(why.reason());
                }
            }
        }
    }
    let change = region.change();
    assert!(
        ok > 0 && rejected > 0,
        "both outcomes exercised: {ok} {rejected}"
    );
    assert_eq!(change.allocations, 0, "{change:?}");
    assert_eq!(change.reallocations, 0, "{change:?}");
}
