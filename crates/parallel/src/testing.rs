//! Fixtures for the parallel crate's unit tests.

use crate::{Job, Precision, Strategy};
use trainplan_hardware::{Accelerator, Cluster, Efficiency, Node};
use trainplan_model::{FfnActivation, Model, Positions, Recompute};
use trainplan_units::{ByteRate, Bytes, FlopRate};

pub fn gpt3() -> Model {
    Model {
        id: "gpt3-175b".into(),
        n_layers: 96,
        hidden: 12288,
        n_heads: 96,
        n_kv_heads: 96,
        ffn: 49152,
        vocab: 51200,
        max_seq_len: 2048,
        ffn_act: FfnActivation::Gelu,
        tied_embeddings: true,
        positions: Positions::Learned,
        linear_bias: true,
        dropout: true,
        moe: None,
    }
}

pub fn a100(n_gpus: u32) -> Cluster {
    let accel = Accelerator {
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
        price_usd_per_gpu_hour: Some(2.0),
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
    Cluster::new(accel, node, n_gpus).unwrap()
}

pub fn job(global_batch: u32) -> Job {
    Job {
        seq_len: 2048,
        global_batch,
        tokens: 300e9,
        precision: Precision::Bf16,
        grad_bytes: 4.0,
    }
}

pub fn strategy(dp: u32, tp: u32, pp: u32) -> Strategy {
    Strategy {
        dp,
        tp,
        pp,
        cp: 1,
        ep: 1,
        vpp: 1,
        micro_batch: 1,
        zero: 1,
        recompute: Recompute::Selective,
        sequence_parallel: true,
        flash_attention: true,
    }
}
