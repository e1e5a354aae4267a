//! The sweep of `scenarios/bench-gpt3-175b.toml`: GPT-3 175B on A100 80GB, every multiple of 8
//! GPUs from 64 to 8192, global batch 1536, micro-batches 1 to 8, every ZeRO stage and
//! recomputation mode. Target: under 2 s wall on 2 cores. Criterion's throughput is in strategies
//! of the space per second; the line printed first gives how many went through `estimate`.
//! Run: cargo bench -p trainplan-benches --bench sweep

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::Path;
use trainplan_io::scenario::Scenario;
use trainplan_io::Database;
use trainplan_search::{Objective, Search, SearchBuilder};

fn search() -> Search {
    let db = Database::bundled().expect("the bundled database loads");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/bench-gpt3-175b.toml");
    let scenario = Scenario::load(&path, &db).expect("the bench scenario loads");
    let spec = trainplan_io::sweep::space(&scenario, &db).expect("its [sweep] is valid");
    SearchBuilder::new(scenario.model.clone(), scenario.job, spec)
        .objective(Objective::Time)
        .top_k(20)
        .build()
        .expect("the space builds")
}

fn bench(c: &mut Criterion) {
    let threads = std::env::var("SWEEP_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .or(Some(2));
    let s = search();
    let started = std::time::Instant::now();
    let r = s.run(threads).expect("the sweep runs");
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "bench-gpt3-175b: {} strategies, {} estimated, {} feasible; one run {secs:.3} s on {threads:?} threads ({:.1} M strategies/s, {:.1} M estimates/s)",
        r.stats.strategies,
        r.stats.estimated,
        r.stats.feasible,
        r.stats.strategies as f64 / secs / 1e6,
        r.stats.estimated as f64 / secs / 1e6,
    );
    let mut group = c.benchmark_group("sweep");
    group.sample_size(10);
    group.throughput(Throughput::Elements(r.stats.strategies));
    group.bench_function("bench_gpt3_175b_build_and_run", |b| {
        b.iter(|| search().run(threads).expect("the sweep runs"));
    });
    group.throughput(Throughput::Elements(r.stats.estimated));
    group.bench_function("bench_gpt3_175b_run_estimates", |b| {
        b.iter(|| s.run(threads).expect("the sweep runs"));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
