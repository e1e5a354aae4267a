//! Back-of-envelope sizing of a training run: compute, GPU-hours, GPUs for a deadline, cost and
//! the memory floor, from the scaling-law arithmetic rather than from a parallel layout.
//!
//! This is the quick answer `trainplan estimate` gives before a full sweep: training FLOPs
//! `C = 6·N·D`, the Chinchilla-optimal split of a compute budget, the GPU-hours at an assumed MFU,
//! and the bytes that mixed-precision Adam must hold somewhere. Every intermediate number is kept
//! in [`Envelope`] so the caller can print each formula with its numbers substituted. The module
//! does no I/O and is deterministic.

use thiserror::Error;
use trainplan_hardware::Accelerator;
use trainplan_model::Model;
use trainplan_units::{Bytes, FlopRate, Flops};

/// Tokens per parameter of a compute-optimal run (Hoffmann et al. 2022, "Chinchilla", table 3).
pub const CHINCHILLA_TOKENS_PER_PARAM: f64 = 20.0;

/// FLOPs per parameter per token of training: 2 forward + 4 backward (Kaplan et al. 2020, section 2.1).
pub const TRAINING_FLOPS_PER_PARAM_TOKEN: f64 = 6.0;

/// Bytes per parameter of bf16 weights.
pub const BF16_BYTES_PER_PARAM: f64 = 2.0;

/// Bytes per parameter of mixed-precision Adam model states: 2 (bf16 weights) + 2 (bf16
/// gradients) + 12 (fp32 master weights, momentum, variance) (Rajbhandari et al. 2020, ZeRO, section 3).
pub const MODEL_STATE_BYTES_PER_PARAM: f64 = 16.0;

/// Hours in a day.
const HOURS_PER_DAY: f64 = 24.0;

/// Largest GPU count reported exactly: an f64 holds every integer up to 2^53, and no cluster is
/// anywhere near that size, so a larger answer means the inputs are not a real run.
const MAX_GPUS: f64 = 9_007_199_254_740_992.0;

/// How big the run is: what the user gave.
#[derive(Debug, Clone, Copy)]
pub enum Sizing<'a> {
    /// A bare parameter count, priced with `C = 6·N·D`.
    Params {
        /// Parameters N.
        params: f64,
        /// Training tokens D; `None` means Chinchilla-optimal (20 per parameter).
        tokens: Option<f64>,
    },
    /// A known architecture: N comes from the shapes, and the training FLOPs add the attention
    /// term (the model FLOPs that MFU counts).
    Model {
        /// The architecture.
        model: &'a Model,
        /// Sequence length of the attention term.
        seq_len: u32,
        /// Training tokens D; `None` means Chinchilla-optimal (20 per parameter).
        tokens: Option<f64>,
    },
    /// A compute budget C in FLOPs, split compute-optimally into N and D.
    Compute {
        /// The budget.
        flops: Flops,
    },
}

/// Everything `envelope` needs besides the run size.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeInput<'a> {
    /// How big the run is.
    pub sizing: Sizing<'a>,
    /// The accelerator every GPU is.
    pub accelerator: &'a Accelerator,
    /// GPUs per node, to round the deadline answer up to whole nodes.
    pub gpus_per_node: u32,
    /// Model FLOPs utilisation to assume; `None` takes [`typical_mfu`] of the accelerator.
    pub mfu: Option<f64>,
    /// A GPU count to report the wall-clock time on.
    pub gpus: Option<u32>,
    /// A deadline in days to report the GPUs needed for.
    pub deadline_days: Option<f64>,
    /// Price of one GPU-hour in USD; `None` leaves the cost out.
    pub price_usd_per_gpu_hour: Option<f64>,
}

/// Where the tokens D came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokensSource {
    /// The user gave D.
    Given,
    /// D = 20·N (Hoffmann et al. 2022).
    Chinchilla,
    /// D = 20·N with N from a compute budget.
    ComputeOptimal,
}

impl TokensSource {
    /// The snake_case name used in machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            TokensSource::Given => "given",
            TokensSource::Chinchilla => "chinchilla",
            TokensSource::ComputeOptimal => "compute_optimal",
        }
    }
}

/// Where the MFU came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfuSource {
    /// The user gave it.
    Given,
    /// A typical measured value for this class of accelerator ([`typical_mfu`]).
    Typical,
}

impl MfuSource {
    /// The snake_case name used in machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            MfuSource::Given => "given",
            MfuSource::Typical => "typical",
        }
    }
}

/// A typical MFU for a class of accelerator and the evidence behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TypicalMfu {
    /// The fraction of the dense bf16 peak.
    pub mfu: f64,
    /// One sentence naming the class and the measurements the value comes from.
    pub basis: &'static str,
}

/// Dense bf16 peak above which an NVIDIA part is Hopper class or newer (A100: 312 TFLOP/s,
/// H100: 989 TFLOP/s); the line sits between the two generations.
const HOPPER_CLASS_PEAK_TFLOPS: f64 = 500.0;

/// The MFU a well-tuned large training run typically reaches on `accelerator`, by vendor and peak.
///
/// Faster chips reach a smaller fraction of their peak, because communication and memory-bound
/// work do not speed up with the tensor cores; that is why the figure falls as the peak rises,
/// and why it is a property of the hardware class rather than of any one model.
pub fn typical_mfu(accelerator: &Accelerator) -> TypicalMfu {
    let nvidia = accelerator.vendor.eq_ignore_ascii_case("nvidia");
    let amd = accelerator.vendor.eq_ignore_ascii_case("amd");
    let peak_tflops = accelerator.bf16_peak.tflops();
    if nvidia && peak_tflops < HOPPER_CLASS_PEAK_TFLOPS {
        // runs-public.csv: median measured MFU 0.51 over 39 A100-40GB and 0.54 over 35 A100-80GB bf16 runs.
        TypicalMfu {
            mfu: 0.50,
            basis:
                "NVIDIA A100 class (bf16 peak below 500 TFLOP/s): median measured MFU 0.51-0.54 \
                    over 74 public A100 bf16 runs",
        }
    } else if nvidia {
        // runs-public.csv: median 0.415 over 47 H100 bf16 runs; Llama 3 405B reached 38-43% on H100s.
        TypicalMfu {
            mfu: 0.40,
            basis:
                "NVIDIA H100 class or newer (bf16 peak of 500 TFLOP/s or more): median measured \
                    MFU 0.415 over 47 public H100 bf16 runs, and 38-43% for Llama 3 405B",
        }
    } else if amd {
        // hardware/README.md: best-shape GEMM reaches 51% of peak on MI300X vs 80% on H100, so scale 0.40.
        TypicalMfu {
            mfu: 0.25,
            basis: "AMD Instinct: no public runs measured; the H100 figure 0.40 scaled by the \
                    best-shape GEMM fraction (MI300X 51% vs H100 80% of dense peak)",
        }
    } else {
        // No measured runs for other vendors: a value between the AMD and NVIDIA figures, flagged as such.
        TypicalMfu {
            mfu: 0.35,
            basis: "uncalibrated: no public runs measured for this vendor; pass --mfu for a \
                    better figure",
        }
    }
}

/// The compute-optimal split of a compute budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComputeOptimal {
    /// The budget C.
    pub compute: Flops,
    /// Parameters N = sqrt(C / 120).
    pub params: f64,
    /// Tokens D = 20·N.
    pub tokens: f64,
}

/// The compute-optimal N and D for a budget C: with C = 6·N·D and D = 20·N, N = sqrt(C / 120).
pub fn compute_optimal(compute: Flops) -> ComputeOptimal {
    // Hoffmann et al. 2022 (D = 20·N) substituted into Kaplan et al. 2020 (C = 6·N·D).
    let params =
        (compute.get() / (TRAINING_FLOPS_PER_PARAM_TOKEN * CHINCHILLA_TOKENS_PER_PARAM)).sqrt();
    ComputeOptimal {
        compute,
        params,
        tokens: CHINCHILLA_TOKENS_PER_PARAM * params,
    }
}

/// Training FLOPs of N parameters over D tokens: C = 6·N·D.
pub fn training_flops_6nd(params: f64, tokens: f64) -> Flops {
    // Kaplan et al. 2020, section 2.1; Hoffmann et al. 2022, section 3.
    Flops(TRAINING_FLOPS_PER_PARAM_TOKEN * params * tokens)
}

/// GPU-hours to execute `flops` at `mfu` of the dense peak `peak`: C / (peak × MFU) / 3600.
pub fn gpu_hours(flops: Flops, peak: FlopRate, mfu: f64) -> f64 {
    // The definition of MFU (Chowdhery et al. 2022, PaLM, appendix B) solved for time.
    (flops / (peak * mfu)).hours()
}

/// The attention-aware training FLOPs of a known architecture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WithAttention {
    /// Sequence length of the attention term.
    pub seq_len: u32,
    /// Model FLOPs per token: 3 × forward, with attention as 12·l·h·s and the logits.
    pub flops_per_token: Flops,
    /// Training FLOPs: `flops_per_token × D`.
    pub training_flops: Flops,
}

/// Wall-clock time on a given number of GPUs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WallClock {
    /// GPUs.
    pub gpus: u64,
    /// Days: GPU-hours / G / 24.
    pub days: f64,
}

/// GPUs needed to finish by a deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadline {
    /// The deadline in days.
    pub days: f64,
    /// GPU-hours / (24 × days), before rounding.
    pub gpus_exact: f64,
    /// GPUs per node used for rounding.
    pub gpus_per_node: u32,
    /// Whole nodes: ceil(gpus_exact / gpus_per_node).
    pub nodes: u64,
    /// GPUs on those nodes.
    pub gpus: u64,
    /// Days the run takes on `gpus` (at most `days`).
    pub wall_clock_days: f64,
}

/// The memory floor of the run, independent of any parallel layout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnvelopeMemory {
    /// bf16 weights: 2·N bytes.
    pub weights_bf16: Bytes,
    /// Weights, gradients and Adam states in mixed precision: 16·N bytes.
    pub model_states: Bytes,
    /// HBM of one GPU.
    pub hbm_capacity: Bytes,
    /// ceil(16·N / HBM): GPUs needed just to hold the model states, fully sharded.
    pub min_gpus_for_model_states: u64,
    /// True when the bf16 weights alone fit one GPU (a forward pass is at least possible there).
    pub weights_fit_one_gpu: bool,
}

/// Every number of the back-of-envelope estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Parameters N (all of them; what memory holds).
    pub params: f64,
    /// Parameters one token uses (differs from `params` only for mixture-of-experts models).
    pub active_params: f64,
    /// Training tokens D.
    pub tokens: f64,
    /// Where D came from.
    pub tokens_source: TokensSource,
    /// The compute-optimal split, when a budget was given.
    pub compute_optimal: Option<ComputeOptimal>,
    /// C = 6·N·D (N active).
    pub flops_6nd: Flops,
    /// The attention-aware count, when the architecture is known.
    pub with_attention: Option<WithAttention>,
    /// The FLOPs the time and cost are based on: the attention-aware count when known (it is
    /// what MFU measures), else 6·N·D.
    pub training_flops: Flops,
    /// Dense bf16 peak of one GPU.
    pub peak: FlopRate,
    /// Assumed MFU.
    pub mfu: f64,
    /// Where the MFU came from.
    pub mfu_source: MfuSource,
    /// The evidence for a typical MFU (also given when the user set one, for comparison).
    pub typical_mfu: TypicalMfu,
    /// Sustained FLOP/s per GPU: peak × MFU.
    pub sustained: FlopRate,
    /// GPU-hours: C / (peak × MFU) / 3600.
    pub gpu_hours: f64,
    /// Wall clock on the GPUs the user gave.
    pub wall_clock: Option<WallClock>,
    /// GPUs for the deadline the user gave.
    pub deadline: Option<Deadline>,
    /// Price of one GPU-hour in USD.
    pub price_usd_per_gpu_hour: Option<f64>,
    /// GPU-hours × price.
    pub cost_usd: Option<f64>,
    /// The memory floor.
    pub memory: EnvelopeMemory,
}

/// Why an envelope cannot be computed.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// An input that must be a positive finite number is not.
    #[error("{field} must be a positive finite number, got {value}")]
    NotPositive {
        /// The input's name.
        field: &'static str,
        /// What was given.
        value: f64,
    },
    /// The MFU is outside (0, 1].
    #[error("MFU must be in (0, 1], got {0}")]
    Mfu(f64),
    /// The price is negative or not finite.
    #[error("price per GPU-hour must be zero or more, got {0}")]
    Price(f64),
    /// A count that must be at least one is zero.
    #[error("{0} must be at least 1")]
    ZeroCount(&'static str),
    /// The accelerator record cannot be used (no bf16 peak or no HBM).
    #[error("accelerator `{id}`: {reason}")]
    Accelerator {
        /// Its id.
        id: String,
        /// What is missing.
        reason: &'static str,
    },
    /// The inputs are so large that a result overflows.
    #[error("{0} is too large to compute; check the inputs")]
    Overflow(&'static str),
}

fn positive(field: &'static str, value: f64) -> Result<f64, EnvelopeError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(EnvelopeError::NotPositive { field, value })
    }
}

fn finite(what: &'static str, value: f64) -> Result<f64, EnvelopeError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(EnvelopeError::Overflow(what))
    }
}

/// The smallest whole number at least `x`, tolerating the last-bit error of the division that
/// produced `x`: 216.00000000000003 GPUs means 216, not 217.
fn ceil_count(what: &'static str, x: f64) -> Result<u64, EnvelopeError> {
    let rounded = x.round();
    let value = if (x - rounded).abs() <= 1e-9 * rounded.max(1.0) {
        rounded
    } else {
        x.ceil()
    };
    if !(value.is_finite() && value <= MAX_GPUS) {
        return Err(EnvelopeError::Overflow(what));
    }
    Ok(value.max(0.0) as u64)
}

/// Computes the back-of-envelope estimate, checking every input first.
pub fn envelope(input: &EnvelopeInput<'_>) -> Result<Envelope, EnvelopeError> {
    let accel = input.accelerator;
    if !(accel.bf16_peak.get().is_finite() && accel.bf16_peak.get() > 0.0) {
        return Err(EnvelopeError::Accelerator {
            id: accel.id.clone(),
            reason: "its dense bf16 peak is not a positive number",
        });
    }
    if !(accel.hbm_capacity.get().is_finite() && accel.hbm_capacity.get() > 0.0) {
        return Err(EnvelopeError::Accelerator {
            id: accel.id.clone(),
            reason: "its HBM capacity is not a positive number",
        });
    }
    if input.gpus_per_node == 0 {
        return Err(EnvelopeError::ZeroCount("GPUs per node"));
    }
    let typical = typical_mfu(accel);
    let (mfu, mfu_source) = match input.mfu {
        Some(m) if m.is_finite() && m > 0.0 && m <= 1.0 => (m, MfuSource::Given),
        Some(m) => return Err(EnvelopeError::Mfu(m)),
        None => (typical.mfu, MfuSource::Typical),
    };
    if let Some(price) = input.price_usd_per_gpu_hour {
        if !(price.is_finite() && price >= 0.0) {
            return Err(EnvelopeError::Price(price));
        }
    }

    // The size of the run: N, active N, D, and the attention-aware count when the model is known.
    let chinchilla = |n: f64| CHINCHILLA_TOKENS_PER_PARAM * n;
    let mut compute_opt = None;
    let mut with_attention = None;
    let (params, active_params, tokens, tokens_source) = match input.sizing {
        Sizing::Params { params, tokens } => {
            let n = positive("parameters", params)?;
            let (d, source) = match tokens {
                Some(d) => (positive("tokens", d)?, TokensSource::Given),
                None => (chinchilla(n), TokensSource::Chinchilla),
            };
            (n, n, d, source)
        }
        Sizing::Model {
            model,
            seq_len,
            tokens,
        } => {
            if seq_len == 0 {
                return Err(EnvelopeError::ZeroCount("sequence length"));
            }
            let counts = model.params();
            let n = positive("parameters", counts.total)?;
            let active = positive("active parameters", counts.active)?;
            // Chinchilla's rule was fitted on dense models, so it is applied to all parameters.
            let (d, source) = match tokens {
                Some(d) => (positive("tokens", d)?, TokensSource::Given),
                None => (chinchilla(n), TokensSource::Chinchilla),
            };
            // PaLM appendix B / Narayanan et al. 2021: model FLOPs per token with attention 12·l·h·s.
            let per_token = model.flops_per_token(seq_len).model();
            with_attention = Some((seq_len, per_token, per_token * d));
            (n, active, d, source)
        }
        Sizing::Compute { flops } => {
            positive("compute budget", flops.get())?;
            let split = compute_optimal(flops);
            compute_opt = Some(split);
            (
                split.params,
                split.params,
                split.tokens,
                TokensSource::ComputeOptimal,
            )
        }
    };
    // A given budget is C itself: recomputing 6·N·D from sqrt(C/120) would only add rounding.
    let flops_6nd = compute_opt.map_or_else(
        || training_flops_6nd(active_params, tokens),
        |split| split.compute,
    );
    finite("training FLOPs", flops_6nd.get())?;
    let with_attention =
        with_attention.map(|(seq_len, flops_per_token, training_flops)| WithAttention {
            seq_len,
            flops_per_token,
            training_flops,
        });
    let training_flops = with_attention.map_or(flops_6nd, |w| w.training_flops);
    finite("training FLOPs", training_flops.get())?;

    // Time: the definition of MFU solved for GPU-seconds (PaLM appendix B).
    let peak = accel.bf16_peak;
    let sustained = peak * mfu;
    let hours = finite("GPU-hours", gpu_hours(training_flops, peak, mfu))?;

    let wall_clock = match input.gpus {
        Some(0) => return Err(EnvelopeError::ZeroCount("GPUs")),
        Some(g) => Some(WallClock {
            gpus: u64::from(g),
            // Perfect scaling at the assumed MFU: the work divides evenly over the GPUs.
            days: hours / f64::from(g) / HOURS_PER_DAY,
        }),
        None => None,
    };

    let deadline = match input.deadline_days {
        Some(days) => {
            let days = positive("deadline days", days)?;
            // GPU-hours spread over the deadline's hours, then rounded up to whole nodes.
            let gpus_exact = finite("GPUs for the deadline", hours / (HOURS_PER_DAY * days))?;
            let gpn = f64::from(input.gpus_per_node);
            let nodes = ceil_count("GPUs for the deadline", gpus_exact / gpn)?.max(1);
            let gpus = nodes
                .checked_mul(u64::from(input.gpus_per_node))
                .filter(|&g| (g as f64) <= MAX_GPUS)
                .ok_or(EnvelopeError::Overflow("GPUs for the deadline"))?;
            Some(Deadline {
                days,
                gpus_exact,
                gpus_per_node: input.gpus_per_node,
                nodes,
                gpus,
                wall_clock_days: hours / gpus as f64 / HOURS_PER_DAY,
            })
        }
        None => None,
    };

    // Cost: GPU-hours times the hourly price; rounding up to nodes does not change the work done.
    let cost_usd = match input.price_usd_per_gpu_hour {
        Some(price) => Some(finite("cost", hours * price)?),
        None => None,
    };

    // Memory: Rajbhandari et al. 2020 (ZeRO), section 3: 2Ψ + 2Ψ + 12Ψ bytes for Ψ parameters.
    let weights_bf16 = Bytes(BF16_BYTES_PER_PARAM * params);
    let model_states = Bytes(MODEL_STATE_BYTES_PER_PARAM * params);
    finite("model-state bytes", model_states.get())?;
    let hbm = accel.hbm_capacity;
    let memory = EnvelopeMemory {
        weights_bf16,
        model_states,
        hbm_capacity: hbm,
        // ZeRO-3 shards all 16Ψ bytes evenly, so this many GPUs is the floor before activations.
        min_gpus_for_model_states: ceil_count("GPUs for model states", model_states / hbm)?,
        weights_fit_one_gpu: weights_bf16 <= hbm,
    };

    Ok(Envelope {
        params,
        active_params,
        tokens,
        tokens_source,
        compute_optimal: compute_opt,
        flops_6nd,
        with_attention,
        training_flops,
        peak,
        mfu,
        mfu_source,
        typical_mfu: typical,
        sustained,
        gpu_hours: hours,
        wall_clock,
        deadline,
        price_usd_per_gpu_hour: input.price_usd_per_gpu_hour,
        cost_usd,
        memory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{a100, gpt3};
    use trainplan_hardware::Accelerator;

    fn a100_80gb() -> Accelerator {
        a100(8).accelerator
    }

    fn h100_sxm() -> Accelerator {
        let mut h100 = a100_80gb();
        h100.id = "h100-sxm".into();
        h100.bf16_peak = FlopRate::from_tflops(989.4);
        h100
    }

    fn close(actual: f64, expected: f64, rel: f64) -> bool {
        ((actual - expected) / expected).abs() <= rel
    }

    /// The one place `envelope` is called: a bare parameter count on an A100 in 8-GPU nodes.
    fn params_on_a100(params: f64, tokens: Option<f64>, mfu: Option<f64>) -> Envelope {
        let accel = a100_80gb();
        let input = EnvelopeInput {
            sizing: Sizing::Params { params, tokens },
            accelerator: &accel,
            gpus_per_node: 8,
            mfu,
            gpus: None,
            deadline_days: Some(7.0),
            price_usd_per_gpu_hour: Some(2.0),
        };
        envelope(&input).unwrap()
    }

    #[test]
    fn six_n_d_for_13b_on_260b_tokens() {
        // 6 × 13e9 × 260e9 = 2.028e22 FLOPs.
        assert!(close(
            training_flops_6nd(13e9, 260e9).get(),
            2.028e22,
            1e-12
        ));
        let e = params_on_a100(13e9, Some(260e9), Some(0.5));
        assert!(close(e.training_flops.get(), 2.028e22, 1e-12));
        assert_eq!(e.training_flops, e.flops_6nd);
        assert_eq!(e.tokens_source, TokensSource::Given);
    }

    #[test]
    fn gpu_hours_and_deadline_on_a100_at_half_mfu() {
        let e = params_on_a100(13e9, Some(260e9), Some(0.5));
        // 2.028e22 / (312e12 × 0.5) / 3600 = 36,111.1 GPU-hours.
        assert!(close(e.gpu_hours, 36_111.111, 1e-6), "{}", e.gpu_hours);
        assert_eq!(e.mfu_source, MfuSource::Given);
        // 36,111.1 / (24 × 7) = 214.95 GPUs, i.e. 26.9 nodes, rounded up to 27 nodes = 216 GPUs.
        let d = e.deadline.unwrap();
        assert!(close(d.gpus_exact, 214.947, 1e-5), "{}", d.gpus_exact);
        assert_eq!(d.nodes, 27);
        assert_eq!(d.gpus, 216);
        assert!(d.wall_clock_days <= 7.0);
        assert!(
            close(d.wall_clock_days, 6.966, 1e-3),
            "{}",
            d.wall_clock_days
        );
        // 36,111.1 GPU-hours × $2 = $72,222.
        assert!(close(e.cost_usd.unwrap(), 72_222.22, 1e-6));
    }

    #[test]
    fn exact_node_multiple_is_not_rounded_up() {
        // 8 GPUs × 24 h × 7 days = 1,344 GPU-hours exactly needs one node, not two.
        let accel = a100_80gb();
        let hours = 1344.0;
        let flops = Flops(hours * 3600.0 * 312e12 * 0.5);
        let input = EnvelopeInput {
            sizing: Sizing::Compute { flops },
            accelerator: &accel,
            gpus_per_node: 8,
            mfu: Some(0.5),
            gpus: None,
            deadline_days: Some(7.0),
            price_usd_per_gpu_hour: None,
        };
        let d = envelope(&input).unwrap().deadline.unwrap();
        assert_eq!((d.nodes, d.gpus), (1, 8));
    }

    #[test]
    fn compute_optimal_split_matches_chinchilla() {
        // Chinchilla: 5.76e23 FLOPs -> 70B parameters, 1.4T tokens; the 20:1 rule gives 69.3B / 1.39T.
        let split = compute_optimal(Flops(5.76e23));
        assert!(close(split.params, 69.28e9, 1e-3), "{}", split.params);
        assert!(close(split.tokens, 1.3856e12, 1e-3), "{}", split.tokens);
        assert!(close(
            training_flops_6nd(split.params, split.tokens).get(),
            5.76e23,
            1e-12
        ));
        let accel = h100_sxm();
        let input = EnvelopeInput {
            sizing: Sizing::Compute {
                flops: Flops(5.76e23),
            },
            accelerator: &accel,
            gpus_per_node: 8,
            mfu: None,
            gpus: Some(1024),
            deadline_days: None,
            price_usd_per_gpu_hour: None,
        };
        let e = envelope(&input).unwrap();
        assert_eq!(e.tokens_source, TokensSource::ComputeOptimal);
        assert_eq!(e.training_flops, Flops(5.76e23));
        assert_eq!(e.cost_usd, None);
        // 5.76e23 / (989.4e12 × 0.40) / 3600 = 404,285 GPU-hours; on 1,024 GPUs 16.45 days.
        assert!(close(e.gpu_hours, 404_285.0, 1e-4), "{}", e.gpu_hours);
        let w = e.wall_clock.unwrap();
        assert_eq!(w.gpus, 1024);
        assert!(close(w.days, 16.45, 1e-3), "{}", w.days);
    }

    #[test]
    fn chinchilla_tokens_by_default() {
        let e = params_on_a100(13e9, None, Some(0.5));
        assert_eq!(e.tokens, 260e9);
        assert_eq!(e.tokens_source, TokensSource::Chinchilla);
    }

    #[test]
    fn seventy_billion_does_not_fit_one_80gb_gpu() {
        let e = params_on_a100(70e9, None, None);
        assert_eq!(e.memory.weights_bf16.gb(), 140.0);
        assert_eq!(e.memory.model_states.gb(), 1120.0);
        assert!(!e.memory.weights_fit_one_gpu);
        // 1,120 GB over 80 GiB (85.9 GB) GPUs: 13.04, so 14 GPUs just for the model states.
        assert_eq!(e.memory.min_gpus_for_model_states, 14);
        let small = params_on_a100(7e9, None, None);
        assert!(small.memory.weights_fit_one_gpu);
        assert_eq!(small.memory.min_gpus_for_model_states, 2);
    }

    #[test]
    fn typical_mfu_follows_the_hardware_class() {
        assert_eq!(typical_mfu(&a100_80gb()).mfu, 0.50);
        assert_eq!(typical_mfu(&h100_sxm()).mfu, 0.40);
        let mut mi300x = h100_sxm();
        mi300x.vendor = "AMD".into();
        assert_eq!(typical_mfu(&mi300x).mfu, 0.25);
        mi300x.vendor = "Intel".into();
        assert_eq!(typical_mfu(&mi300x).mfu, 0.35);
        let e = params_on_a100(13e9, Some(260e9), None);
        assert_eq!((e.mfu, e.mfu_source), (0.50, MfuSource::Typical));
    }

    #[test]
    fn known_model_adds_the_attention_term() {
        let model = gpt3();
        let accel = a100_80gb();
        let input = EnvelopeInput {
            sizing: Sizing::Model {
                model: &model,
                seq_len: 2048,
                tokens: Some(300e9),
            },
            accelerator: &accel,
            gpus_per_node: 8,
            mfu: Some(0.5),
            gpus: None,
            deadline_days: None,
            price_usd_per_gpu_hour: None,
        };
        let e = envelope(&input).unwrap();
        let w = e.with_attention.unwrap();
        // Narayanan et al. 2021: 72·l·h²·(1 + s/6h + V/12lh) per token.
        let (l, h, s, v) = (96.0_f64, 12288.0_f64, 2048.0_f64, 51200.0_f64);
        let per_token = 72.0 * l * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l * h));
        assert!(close(w.flops_per_token.get(), per_token, 1e-9));
        assert_eq!(e.training_flops, w.training_flops);
        assert!(e.training_flops > e.flops_6nd);
        // GPT-3's 3.14e23 (Brown et al. 2020) is 6ND; the attention and logits add a few percent.
        assert!(
            close(e.flops_6nd.get(), 3.15e23, 0.01),
            "{}",
            e.flops_6nd.get()
        );
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let accel = a100_80gb();
        let base = EnvelopeInput {
            sizing: Sizing::Params {
                params: 13e9,
                tokens: None,
            },
            accelerator: &accel,
            gpus_per_node: 8,
            mfu: None,
            gpus: None,
            deadline_days: None,
            price_usd_per_gpu_hour: None,
        };
        let with = |f: &dyn Fn(&mut EnvelopeInput<'_>)| {
            let mut input = base;
            f(&mut input);
            envelope(&input)
        };
        let cases: Vec<Result<Envelope, EnvelopeError>> = vec![
            with(&|i| {
                i.sizing = Sizing::Params {
                    params: -5.0,
                    tokens: None,
                }
            }),
            with(&|i| {
                i.sizing = Sizing::Params {
                    params: f64::NAN,
                    tokens: None,
                }
            }),
            with(&|i| {
                i.sizing = Sizing::Params {
                    params: 13e9,
                    tokens: Some(0.0),
                }
            }),
            with(&|i| {
                i.sizing = Sizing::Params {
                    params: 1e300,
                    tokens: Some(1e300),
                }
            }),
            with(&|i| {
                i.sizing = Sizing::Compute {
                    flops: Flops(f64::INFINITY),
                }
            }),
            with(&|i| i.mfu = Some(1.5)),
            with(&|i| i.mfu = Some(0.0)),
            with(&|i| i.mfu = Some(f64::NAN)),
            with(&|i| i.gpus = Some(0)),
            with(&|i| i.deadline_days = Some(0.0)),
            with(&|i| i.deadline_days = Some(1e-300)),
            with(&|i| i.price_usd_per_gpu_hour = Some(-1.0)),
            with(&|i| i.gpus_per_node = 0),
        ];
        for (idx, result) in cases.iter().enumerate() {
            assert!(result.is_err(), "case {idx} should fail: {result:?}");
        }
        assert!(with(&|_| ()).is_ok());
        let mut broken = a100_80gb();
        broken.bf16_peak = FlopRate(0.0);
        let input = EnvelopeInput {
            accelerator: &broken,
            ..base
        };
        assert!(matches!(
            envelope(&input),
            Err(EnvelopeError::Accelerator { .. })
        ));
    }
}
