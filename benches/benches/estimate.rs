//! One `estimate` call: GPT-3 175B on 1,024 A100 80GB at tp 8 × pp 16 × dp 8 (the Megatron
//! layout). Target: at most 1 µs per call, so that one core prices a million strategies a second.
//! Run: cargo bench -p trainplan-benches --bench estimate

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use trainplan_hardware::Cluster;
use trainplan_model::Recompute;
use trainplan_parallel::{estimate, Strategy};
use trainplan_search::fixtures::{a100_80gb, gpt3_175b, job};

fn bench(c: &mut Criterion) {
    let model = gpt3_175b();
    let target = a100_80gb(Some(2.0));
    let cluster = Cluster::new(target.accelerator, target.node, 1024).expect("a valid cluster");
    let job = job(1536, 300e9);
    let strategy = Strategy {
        dp: 8,
        tp: 8,
        pp: 16,
        vpp: 2,
        zero: 1,
        recompute: Recompute::Selective,
        sequence_parallel: true,
        ..Strategy::default()
    };
    let mut group = c.benchmark_group("estimate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("gpt3_175b_tp8_pp16_dp8", |b| {
        b.iter(|| {
            estimate(
                black_box(&model),
                black_box(&cluster),
                black_box(&job),
                black_box(&strategy),
            )
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
