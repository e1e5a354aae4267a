//! Fixtures for the parallel crate's unit tests.

use crate::{Job, Precision, Strategy};
use trainplan_hardware::Cluster;
use trainplan_model::{Model, Recompute};

/// GPT-3 175B with Megatron's padded vocabulary (51200), as Narayanan et al. 2021 trained it.
pub fn gpt3() -> Model {
    Model {
        vocab: 51200,
        ..trainplan_model::testing::gpt3_175b()
    }
}

/// `n_gpus` A100 80GB in DGX A100 nodes, priced at 2 USD per GPU-hour.
pub fn a100(n_gpus: u32) -> Cluster {
    let accel = trainplan_hardware::testing::a100_80gb(Some(2.0));
    Cluster::new(accel, trainplan_hardware::testing::dgx_a100(), n_gpus).unwrap()
}

pub fn job(global_batch: u32) -> Job {
    Job {
        seq_len: 2048,
        global_batch,
        tokens: 300e9,
        precision: Precision::Bf16,
        grad_bytes: 4.0,
        optimizer: crate::Optimizer::Deepspeed,
        framework: None,
        cross_entropy: None,
    }
}

pub fn strategy(dp: u32, tp: u32, pp: u32) -> Strategy {
    Strategy {
        dp,
        tp,
        pp,
        zero: 1,
        recompute: Recompute::Selective,
        sequence_parallel: true,
        ..Strategy::default()
    }
}
