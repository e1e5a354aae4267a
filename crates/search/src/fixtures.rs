//! Fixtures for tests and benches: GPT-3 models and an A100 80GB target with the spec-sheet
//! figures of `hardware-db/`, built in code so that they do not depend on the database files.

use crate::{SpaceSpec, Target};
use trainplan_hardware::{Accelerator, Efficiency, Node};
use trainplan_model::{FfnActivation, Model, Positions};
use trainplan_parallel::{Job, Precision};
use trainplan_units::{ByteRate, Bytes, FlopRate};

/// GPT-3 175B (Brown et al. 2020, Table 2.1).
pub fn gpt3_175b() -> Model {
    gpt3("gpt3-175b", 96, 12288, 96)
}

/// GPT-3 13B (Brown et al. 2020, Table 2.1; d_model 5120 = 40 heads of 128).
pub fn gpt3_13b() -> Model {
    gpt3("gpt3-13b", 40, 5120, 40)
}

/// GPT-3 1.3B (Brown et al. 2020, Table 2.1).
pub fn gpt3_1_3b() -> Model {
    gpt3("gpt3-1.3b", 24, 2048, 16)
}

fn gpt3(id: &str, n_layers: u32, hidden: u32, n_heads: u32) -> Model {
    Model {
        id: id.into(),
        n_layers,
        hidden,
        n_heads,
        n_kv_heads: n_heads,
        ffn: 4 * hidden,
        vocab: 50257,
        max_seq_len: 2048,
        ffn_act: FfnActivation::Gelu,
        tied_embeddings: true,
        positions: Positions::Learned,
        linear_bias: true,
        dropout: true,
        moe: None,
    }
}

/// An A100 80GB SXM in a DGX A100, priced at `price` USD per GPU-hour.
pub fn a100_80gb(price: Option<f64>) -> Target {
    let accelerator = Accelerator {
        id: "a100-80gb".into(),
        name: "A100 80GB SXM".into(),
        vendor: "NVIDIA".into(),
        hbm_capacity: Bytes::from_gib(80.0),
        hbm_bandwidth: ByteRate::from_tbps(2.039),
        bf16_peak: FlopRate::from_tflops(312.0),
        fp16_peak: FlopRate::from_tflops(312.0),
        fp8_peak: None,
        scaleup_unidir: ByteRate::from_gbps(300.0),
        tdp_w: 400.0,
        price_usd_per_gpu_hour: price,
        default_node: "dgx-a100".into(),
        efficiency: Efficiency::default(),
    };
    let node = Node {
        id: "dgx-a100".into(),
        name: "DGX A100".into(),
        accelerator: "a100-80gb".into(),
        gpus_per_node: 8,
        scaleup_domain: 8,
        nics_per_node: 8,
        nic_gbit_s: 200.0,
    };
    Target {
        accelerator,
        node,
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
