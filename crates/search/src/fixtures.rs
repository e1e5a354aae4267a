//! Fixtures for tests and benches: GPT-3 models and an A100 80GB target with the spec-sheet
//! figures of `hardware-db/`, built in code so that they do not depend on the database files.

use crate::{SpaceSpec, Target};
use trainplan_model::testing::gpt3;
use trainplan_model::Model;
use trainplan_parallel::{Job, Precision};

pub use trainplan_model::testing::gpt3_175b;

/// GPT-3 13B (Brown et al. 2020, Table 2.1; d_model 5120 = 40 heads of 128).
pub fn gpt3_13b() -> Model {
    gpt3("gpt3-13b", 40, 5120, 40)
}

/// GPT-3 1.3B (Brown et al. 2020, Table 2.1).
pub fn gpt3_1_3b() -> Model {
    gpt3("gpt3-1.3b", 24, 2048, 16)
}

/// An A100 80GB SXM in a DGX A100, priced at `price` USD per GPU-hour.
pub fn a100_80gb(price: Option<f64>) -> Target {
    Target {
        accelerator: trainplan_hardware::testing::a100_80gb(price),
        node: trainplan_hardware::testing::dgx_a100(),
        price_usd_per_gpu_hour: price,
    }
}

/// A bf16 job of `tokens` tokens at sequence length 2048 and global batch `global_batch`.
pub fn job(global_batch: u32, tokens: f64) -> Job {
    Job {
        seq_len: 2048,
        global_batch,
        tokens,
        precision: Precision::Bf16,
        grad_bytes: 4.0,
        optimizer: trainplan_parallel::Optimizer::Deepspeed,
        framework: None,
        cross_entropy: None,
    }
}

/// The performance space of issue 4: every multiple of 8 GPUs from 64 to 8192, global batch
/// 1536, micro-batches 1 to 8, every ZeRO stage and recomputation mode.
pub fn bench_space(target: Target) -> SpaceSpec {
    let mut spec = SpaceSpec::new(
        vec![target],
        (8..=1024).map(|k| k * 8).collect(),
        vec![1536],
    );
    spec.micro_batch = crate::MicroBatches::List((1..=8).collect());
    spec
}
