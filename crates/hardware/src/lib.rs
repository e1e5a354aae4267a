//! Accelerators, nodes and the clusters built from them, and the time a collective takes there.
//!
//! Roles:
//! - [`Accelerator`]: one GPU or chip: dense peak FLOP/s per precision, HBM capacity and bandwidth,
//!   scale-up link bandwidth, and the calibrated [`Efficiency`] factors that turn peaks into what
//!   real kernels and collectives achieve.
//! - [`Node`]: how accelerators are packaged: GPUs per node, scale-up (NVLink/NVSwitch) domain,
//!   scale-out NICs.
//! - [`Cluster`]: an accelerator, a node layout and a GPU count, built once and then queried many
//!   times by the cost model. [`Cluster::collective_time`] prices a collective over a [`Group`] of
//!   ranks placed on it with an alpha-beta model per link tier.
//!
//! This crate knows nothing about models, strategies or files: `trainplan-io` reads the database
//! and hands the values in.

mod collective;
mod errors;

pub use collective::{Collective, Group, LinkTier};
pub use errors::HardwareError;

use trainplan_units::{ByteRate, Bytes, FlopRate, Seconds};

/// Numeric precision of the matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dtype {
    /// bfloat16 tensor-core products.
    Bf16,
    /// IEEE half-precision tensor-core products.
    Fp16,
    /// 8-bit floating point (E4M3/E5M2) tensor-core products.
    Fp8,
}

impl Dtype {
    /// The lower-case name used in files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::Bf16 => "bf16",
            Dtype::Fp16 => "fp16",
            Dtype::Fp8 => "fp8",
        }
    }
}

/// Calibrated efficiency factors of one accelerator and its links.
///
/// Each factor is a physical fraction or time, fitted on the public runs (see
/// `hardware-db/README.md`) and never tuned per model or per run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Efficiency {
    /// Fraction of the dense peak reached by large, well-shaped matrix products in training
    /// (below the best-shape GEMM figure, "MAMF", since real layers mix shapes).
    pub matmul_fraction: f64,
    /// Matrix dimension (the smallest of m, n, k) at which a product reaches half of
    /// `matmul_fraction`; smaller products waste tensor-core tiles and launch time.
    pub matmul_half_dim: f64,
    /// Fraction of the dense peak that fp8 products reach, relative to the fp8 peak.
    pub fp8_matmul_fraction: f64,
    /// Fraction of the 16-bit dense peak reached by fused attention kernels of the
    /// FlashAttention-2 class (PyTorch SDPA, the flash-attn package).
    pub attention_fraction: f64,
    /// How many times faster Transformer Engine's fused attention (cuDNN, FlashAttention-3
    /// class) runs than `attention_fraction` says, under Megatron-Core and NeMo; 1 where the
    /// silicon has no faster kernel (Shah et al. 2024, FlashAttention-3, abstract: 1.5-2.0x
    /// FlashAttention-2 on H100).
    pub te_attention_speedup: f64,
    /// Achievable fraction of HBM bandwidth for memory-bound kernels (norms, optimizer).
    pub hbm_fraction: f64,
    /// Fraction of the communication time hidden behind compute that still delays it: NCCL
    /// kernels occupy SMs and HBM bandwidth that concurrent matrix products lose.
    pub overlap_penalty: f64,
    /// Achievable all-reduce bus bandwidth over the scale-up fabric, as a fraction of the
    /// one-way link bandwidth per GPU.
    pub scaleup_fraction: f64,
    /// Achievable bus bandwidth over the scale-out NICs, as a fraction of the line rate.
    pub scaleout_fraction: f64,
    /// Fixed latency of one collective call (NCCL base latency plus launch).
    pub collective_latency: Seconds,
    /// Additional latency per ring step inside the scale-up domain.
    pub scaleup_hop_latency: Seconds,
    /// Additional latency per ring step over the network.
    pub scaleout_hop_latency: Seconds,
}

impl Default for Efficiency {
    /// Generic starting values before calibration: NCCL's tuning model latencies
    /// (NVIDIA/nccl `src/graph/tuning.cc`), ~80% of links, MAMF-like GEMM fraction.
    fn default() -> Self {
        Self {
            matmul_fraction: 0.75,
            matmul_half_dim: 200.0,
            fp8_matmul_fraction: 0.6,
            attention_fraction: 0.5,
            te_attention_speedup: 1.0,
            hbm_fraction: 0.85,
            overlap_penalty: 0.1,
            scaleup_fraction: 0.8,
            scaleout_fraction: 0.9,
            collective_latency: Seconds::from_us(8.4),
            scaleup_hop_latency: Seconds::from_us(1.9),
            scaleout_hop_latency: Seconds::from_us(4.0),
        }
    }
}

/// One accelerator model (per GPU).
#[derive(Debug, Clone, PartialEq)]
pub struct Accelerator {
    /// Id a user types, e.g. `h100-sxm`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Vendor, e.g. `NVIDIA`.
    pub vendor: String,
    /// HBM capacity usable by one process.
    pub hbm_capacity: Bytes,
    /// HBM bandwidth.
    pub hbm_bandwidth: ByteRate,
    /// Dense bf16 peak.
    pub bf16_peak: FlopRate,
    /// Dense fp16 peak.
    pub fp16_peak: FlopRate,
    /// Dense fp8 peak, where the hardware has fp8 tensor cores.
    pub fp8_peak: Option<FlopRate>,
    /// Scale-up (NVLink, Infinity Fabric) bandwidth per GPU, one direction.
    pub scaleup_unidir: ByteRate,
    /// Thermal design power in watts.
    pub tdp_w: f64,
    /// Price of one GPU-hour in USD, if the database has one.
    pub price_usd_per_gpu_hour: Option<f64>,
    /// Id of the node layout used when a scenario names none.
    pub default_node: String,
    /// Calibrated efficiency factors.
    pub efficiency: Efficiency,
}

impl Accelerator {
    /// Dense peak for products of `dtype`; `None` when the hardware has no such tensor cores.
    #[inline]
    pub fn peak(&self, dtype: Dtype) -> Option<FlopRate> {
        match dtype {
            Dtype::Bf16 => Some(self.bf16_peak),
            Dtype::Fp16 => Some(self.fp16_peak),
            Dtype::Fp8 => self.fp8_peak,
        }
    }
}

/// A node (or rack) layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Id a user types, e.g. `dgx-h100`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Accelerator id this node holds.
    pub accelerator: String,
    /// Accelerators per node (per host).
    pub gpus_per_node: u32,
    /// Accelerators reachable over the scale-up fabric without a NIC (8 for HGX, 72 for NVL72).
    pub scaleup_domain: u32,
    /// Compute-fabric NICs per node.
    pub nics_per_node: u32,
    /// Line rate of one NIC in Gbit/s.
    pub nic_gbit_s: f64,
}

impl Node {
    /// The same layout with `gpus_per_node` accelerators per host: a scale-up domain that was the
    /// host follows it, and the NIC rate scales so that each GPU keeps its share of the network.
    #[must_use]
    pub fn with_gpus_per_node(&self, gpus_per_node: u32) -> Node {
        let g = gpus_per_node.max(1);
        let old = self.gpus_per_node.max(1);
        Node {
            gpus_per_node: g,
            scaleup_domain: if self.scaleup_domain == old {
                g
            } else {
                self.scaleup_domain.max(g)
            },
            nic_gbit_s: self.nic_gbit_s * f64::from(g) / f64::from(old),
            ..self.clone()
        }
    }
}

/// A cluster: an accelerator, a node layout and a number of GPUs, with derived link figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The accelerator every GPU is.
    pub accelerator: Accelerator,
    /// The node layout.
    pub node: Node,
    /// GPUs in the job.
    pub n_gpus: u32,
    /// Achievable scale-up bus bandwidth per GPU (calibrated fraction of one-way link rate).
    pub scaleup_busbw: ByteRate,
    /// Achievable scale-out bandwidth per GPU (NIC rate shared among the node's GPUs).
    pub scaleout_busbw_per_gpu: ByteRate,
}

impl Cluster {
    /// Builds a cluster, checking that the counts make sense.
    pub fn new(accelerator: Accelerator, node: Node, n_gpus: u32) -> Result<Self, HardwareError> {
        if n_gpus == 0 {
            return Err(HardwareError::NoGpus);
        }
        if node.gpus_per_node == 0 {
            return Err(HardwareError::InvalidNode {
                node: node.id.clone(),
                reason: "gpus_per_node must be at least 1".into(),
            });
        }
        if node.scaleup_domain == 0 {
            return Err(HardwareError::InvalidNode {
                node: node.id.clone(),
                reason: "scaleup_domain must be at least 1".into(),
            });
        }
        let eff = accelerator.efficiency;
        let scaleup_busbw = accelerator.scaleup_unidir * eff.scaleup_fraction;
        let node_egress =
            ByteRate::from_gbit_per_s(node.nic_gbit_s * f64::from(node.nics_per_node));
        let scaleout_busbw_per_gpu =
            node_egress * (eff.scaleout_fraction / f64::from(node.gpus_per_node));
        Ok(Self {
            accelerator,
            node,
            n_gpus,
            scaleup_busbw,
            scaleout_busbw_per_gpu,
        })
    }

    /// Number of nodes the job occupies (a partial node counts as one).
    pub fn n_nodes(&self) -> u32 {
        self.n_gpus.div_ceil(self.node.gpus_per_node)
    }

    /// The peak for `dtype`, falling back to bf16 when the accelerator lacks it.
    #[inline]
    pub fn peak_or_bf16(&self, dtype: Dtype) -> FlopRate {
        self.accelerator
            .peak(dtype)
            .unwrap_or(self.accelerator.bf16_peak)
    }
}

pub mod testing {
    //! Fixtures for tests and benches: an A100 80GB SXM in a DGX A100 with the spec-sheet figures
    //! of `hardware-db/`, built in code so that tests do not depend on the database files.

    use super::{Accelerator, Cluster, Efficiency, Node};
    use trainplan_units::{ByteRate, Bytes, FlopRate};

    /// An A100 80GB SXM (dense bf16 312 TFLOP/s, 2.039 TB/s HBM, NVLink 3 at 300 GB/s one way),
    /// priced at `price` USD per GPU-hour, with the generic starting efficiencies.
    pub fn a100_80gb(price: Option<f64>) -> Accelerator {
        Accelerator {
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
        }
    }

    /// A DGX A100: 8 GPUs on NVSwitch, 8 HDR 200 Gbit/s NICs.
    pub fn dgx_a100() -> Node {
        Node {
            id: "dgx-a100".into(),
            name: "DGX A100".into(),
            accelerator: "a100-80gb".into(),
            gpus_per_node: 8,
            scaleup_domain: 8,
            nics_per_node: 8,
            nic_gbit_s: 200.0,
        }
    }

    /// `n_gpus` A100 80GB in DGX A100 nodes.
    ///
    /// # Panics
    /// When `n_gpus` is 0.
    pub fn a100_cluster(n_gpus: u32) -> Cluster {
        Cluster::new(a100_80gb(None), dgx_a100(), n_gpus).expect("a fixture cluster has GPUs")
    }
}
