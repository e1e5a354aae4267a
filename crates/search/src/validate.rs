//! Predicting measured training runs: the heart of `trainplan validate` and of calibration.
//!
//! A [`RunSpec`] is one measured run: its model, cluster and job, and the parts of its layout the
//! source states ([`Template`]). Where the source is silent, [`predict`] picks the value a team
//! tuning that job would have picked: the fastest layout that fits in memory (or, when nothing
//! fits, the one that needs least memory), and reports what it chose.

use trainplan_hardware::Cluster;
use trainplan_model::{Model, Recompute};
use trainplan_parallel::{evaluate, EpDispatcher, Estimate, Framework, Infeasible, Job, Strategy};

/// The layout fields a source states; `None` = not stated.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Template {
    /// Tensor parallel.
    pub tp: Option<u32>,
    /// Pipeline parallel.
    pub pp: Option<u32>,
    /// Data parallel.
    pub dp: Option<u32>,
    /// Context parallel.
    pub cp: Option<u32>,
    /// Expert parallel.
    pub ep: Option<u32>,
    /// Virtual stages.
    pub vpp: Option<u32>,
    /// Sequence parallelism.
    pub sequence_parallel: Option<bool>,
    /// Micro-batch.
    pub micro_batch: Option<u32>,
    /// Recomputation.
    pub recompute: Option<Recompute>,
    /// ZeRO stage.
    pub zero: Option<u8>,
    /// Tensor-parallel collectives overlapped with the products (`None`: assumed by generation).
    pub tp_overlap: Option<bool>,
    /// Expert all-to-all overlapped with another micro-batch (`None`: both tried).
    pub ep_overlap: Option<bool>,
    /// Data-parallel gradient reduction overlapped with backward below ZeRO-3 (`None`: assumed
    /// by generation and framework, see [`assumes_dp_overlap`]).
    pub dp_overlap: Option<bool>,
    /// How the expert all-to-all moves tokens (`None`: both tried).
    pub ep_dispatcher: Option<EpDispatcher>,
    /// Fused (flash) attention (`None`: assumed, as every current stack runs it).
    pub flash_attention: Option<bool>,
}

/// One measured run, ready to predict.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Row id.
    pub name: String,
    /// Source id.
    pub source: String,
    /// The model.
    pub model: Model,
    /// The cluster.
    pub cluster: Cluster,
    /// The job.
    pub job: Job,
    /// What the source states of the layout.
    pub template: Template,
    /// Fields the row leaves empty that its other cells determine or a convention fills in
    /// (`field=value (how)`), reported with the choices.
    pub notes: Vec<String>,
}

impl RunSpec {
    /// The row's filled-in fields and `prediction`'s choices, `;`-separated.
    pub fn choices(&self, prediction: &Prediction) -> String {
        let chosen = prediction.choices();
        self.notes
            .iter()
            .map(String::as_str)
            .chain((!chosen.is_empty()).then_some(chosen.as_str()))
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// The prediction for one run.
#[derive(Debug, Clone, Copy)]
pub struct Prediction {
    /// The layout used (stated fields plus chosen ones).
    pub strategy: Strategy,
    /// The cost model's numbers for it.
    pub estimate: Estimate,
    /// Which fields were chosen rather than stated.
    pub chosen: Chosen,
}

/// Flags of the fields `predict` chose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Chosen {
    /// tp was chosen.
    pub tp: bool,
    /// pp was chosen.
    pub pp: bool,
    /// dp was chosen.
    pub dp: bool,
    /// vpp was chosen.
    pub vpp: bool,
    /// Sequence parallelism was chosen.
    pub sequence_parallel: bool,
    /// Micro-batch was chosen.
    pub micro_batch: bool,
    /// Recomputation was chosen.
    pub recompute: bool,
    /// ZeRO stage was chosen.
    pub zero: bool,
    /// Expert parallelism was chosen.
    pub ep: bool,
    /// Expert tensor parallelism was chosen (MoE with tp > 1; no runs CSV column states it).
    pub etp: bool,
    /// Tensor-parallel communication overlap was assumed (no runs CSV column states it).
    pub tp_overlap: bool,
    /// Expert all-to-all overlap was chosen (MoE with ep > 1; no runs CSV column states it).
    pub ep_overlap: bool,
    /// An exposed data-parallel reduction was assumed (below ZeRO-3 with a data-parallel peer,
    /// on a framework that could overlap it; the public runs columns do not state it).
    pub dp_exposed: bool,
    /// The expert dispatcher was chosen (MoE with ep > 1).
    pub ep_dispatcher: bool,
    /// The framework the layout implies, when the row names none (FSDP: PyTorch's).
    pub framework: Option<Framework>,
}

impl Prediction {
    /// The chosen fields as `field=value` pairs separated by `;` (empty when nothing was chosen).
    pub fn choices(&self) -> String {
        let s = &self.strategy;
        let c = &self.chosen;
        let mut parts: Vec<String> = Vec::new();
        if c.tp {
            parts.push(format!("tp={}", s.tp));
        }
        if c.pp {
            parts.push(format!("pp={}", s.pp));
        }
        if c.dp {
            parts.push(format!("dp={}", s.dp));
        }
        if c.vpp {
            parts.push(format!("vpp={}", s.vpp));
        }
        if c.sequence_parallel {
            parts.push(format!("sequence_parallel={}", s.sp_active()));
        }
        if c.micro_batch {
            parts.push(format!("micro_batch={}", s.micro_batch));
        }
        if c.recompute {
            parts.push(format!("recompute={}", s.recompute.as_str()));
        }
        if c.zero {
            parts.push(format!("zero={}", s.zero));
        }
        if c.ep {
            parts.push(format!("ep={}", s.ep));
        }
        if c.etp {
            parts.push(format!("etp={}", s.expert_tp()));
        }
        if c.tp_overlap {
            parts.push(format!("tp_comm_overlap={}", s.tp_overlap));
        }
        if c.ep_overlap {
            parts.push(format!("ep_comm_overlap={}", s.ep_overlap));
        }
        if c.dp_exposed {
            parts.push("dp_comm_overlap=false".to_string());
        }
        if c.ep_dispatcher {
            parts.push(format!("ep_dispatcher={}", s.ep_dispatcher.as_str()));
        }
        if let Some(f) = c.framework {
            parts.push(format!("framework={}", f.as_str()));
        }
        parts.join(";")
    }
}

/// Share of throughput a team needs to gain before it turns on an optional feature it would
/// otherwise leave at the framework default (sequence parallelism, interleaving, whole experts,
/// expert all-to-all overlap, a node-deduplicating dispatcher).
const FEATURE_HURDLE: f64 = 0.02;

/// Throughput discounted by the non-default features a layout needs: between two layouts of
/// nearly equal speed, a team keeps the defaults.
fn appeal(s: &Strategy, e: &Estimate) -> f64 {
    let features = u8::from(s.sp_active())
        + u8::from(s.vpp > 1)
        + u8::from(s.expert_tp() != s.tp)
        + u8::from(s.ep_overlap)
        + u8::from(s.ep_dispatcher != EpDispatcher::AllToAll);
    e.tokens_per_s * (1.0 - FEATURE_HURDLE * f64::from(features))
}

/// Whether a run on `accelerator` with tensor parallelism is assumed to overlap its tensor-parallel
/// collectives with the neighbouring products. No runs CSV column states it, so validate assumes
/// what the frameworks of the accelerator's generation do: Megatron-Core/NeMo's comm-GEMM overlap
/// (Transformer Engine userbuffers, `--tp-comm-overlap`) and PyTorch's async TP arrived with and
/// target Hopper, the generation that also brought fp8 tensor cores, and NVIDIA's published
/// H100 benchmarks turn it on (Megatron-LM README, "Performance Benchmarking"). Earlier parts
/// (A100) are assumed to expose the collectives, as Megatron-LM did in 2021-22. The overlap runs
/// on sequence-parallel layers only (Megatron-Core refuses --tp-comm-overlap without
/// --sequence-parallel), so a run stating sequence_parallel = false keeps its collectives
/// exposed. The fp8 peak is a proxy for the generation: it also switches the assumption on for
/// H100 PCIe and MI300X, whose frameworks' overlap is less established. Leave-one-source-out
/// error falls from 12.6% to 9.1% with this assumption (`hardware-db/calibration/README.md`).
/// A run that states its framework is taken at its word: Megatron follows the generation,
/// DeepSpeed has no comm-GEMM overlap, and PyTorch's async TP is opt-in (it needs
/// `torch.compile`), so both of those expose the collectives unless the row says otherwise.
fn assumes_tp_overlap(
    accelerator: &trainplan_hardware::Accelerator,
    framework: Option<Framework>,
) -> bool {
    match framework {
        Some(Framework::Deepspeed | Framework::Pytorch) => false,
        Some(Framework::Megatron) | None => accelerator.fp8_peak.is_some(),
    }
}

/// Whether a run below ZeRO-3 is assumed to overlap its data-parallel gradient reduction with
/// backward, when its row does not say. PyTorch's DDP and FSDP reduce bucket by bucket as
/// gradients are ready (Li et al. 2020, "PyTorch Distributed", section 3.2.3). DeepSpeed below
/// ZeRO-3 does not ([`Strategy::dp_comm_overlaps`] holds that whatever this says). Megatron-LM
/// reduced once after the last backward until Megatron-Core's `--overlap-grad-reduce` (2023),
/// which NVIDIA's H100 recipes turn on; as for the tensor-parallel overlap, the fp8 generation is
/// the proxy for the stack, so earlier parts (A100) expose the reduction. Leave-one-source-out
/// error falls from 7.4% to 7.1% with this assumption (`hardware-db/calibration/README.md`).
fn assumes_dp_overlap(
    accelerator: &trainplan_hardware::Accelerator,
    framework: Option<Framework>,
) -> bool {
    match framework {
        Some(Framework::Pytorch) => true,
        Some(Framework::Deepspeed) => false,
        Some(Framework::Megatron) | None => accelerator.fp8_peak.is_some(),
    }
}

/// The ZeRO stages validate tries: the stated one, or every stage but ZeRO-3 under a pipeline.
/// Nobody pairs ZeRO-3 with pipeline parallelism: DeepSpeed's pipeline engine refuses it,
/// Megatron has no ZeRO-3, and torchtitan keeps a stage's parameters gathered across its
/// micro-batches (ZeRO-2-like).
fn zero_candidates(stated: Option<u8>, pp: u32) -> Vec<u8> {
    match (stated, pp) {
        (Some(z), _) => vec![z],
        (None, 0..=1) => vec![0, 1, 2, 3],
        (None, _) => vec![0, 1, 2],
    }
}

/// Divisors of `n` in increasing order (O(√n), shared with the sweep's space).
fn divisors(n: u32) -> impl Iterator<Item = u32> {
    crate::space::divisors(n).into_iter()
}

/// Predicts `run`, choosing unstated layout fields. Errors with the first reason the stated
/// layout cannot be built when no candidate is valid.
pub fn predict(run: &RunSpec) -> Result<Prediction, Infeasible> {
    let t = &run.template;
    let n = run.cluster.n_gpus;
    let cp = t.cp.unwrap_or(1);
    // tp stays inside the scale-up domain, as the sweep keeps it by default.
    let gpn = run.cluster.node.scaleup_domain.max(1);
    // Whether the tensor-parallel collectives overlap under `framework` (stated or implied).
    let overlap_under = |framework: Option<Framework>| {
        t.tp_overlap
            .unwrap_or_else(|| assumes_tp_overlap(&run.cluster.accelerator, framework))
    };
    // A stated tp past the KV heads is priced with the heads replicated (the run did it); a
    // chosen one splits them, as Megatron-Core and torchtitan require and the sweep's default.
    let tps: Vec<u32> = match t.tp {
        Some(tp) => vec![tp],
        None => divisors(gpn.min(n))
            .filter(|tp| run.model.n_kv_heads % tp == 0)
            .collect(),
    };
    let mut best: Option<(Prediction, bool)> = None;
    let mut first_err: Option<Infeasible> = None;
    for &tp in &tps {
        let pps: Vec<u32> = match (t.pp, t.dp) {
            (Some(pp), _) => vec![pp],
            (None, Some(dp)) => {
                let denom = u64::from(tp) * u64::from(dp) * u64::from(cp);
                if denom == 0 || u64::from(n) % denom != 0 {
                    continue;
                }
                vec![(u64::from(n) / denom) as u32]
            }
            (None, None) => divisors(n / tp.max(1))
                .filter(|pp| *pp <= run.model.n_layers)
                .collect(),
        };
        for pp in pps {
            // The framework the stated layout implies when the row names none: PyTorch's for
            // FSDP ([`Strategy::framework`]); it decides the interleaving and overlap tried.
            let layout_framework = run
                .job
                .framework
                .or_else(|| t.zero.and_then(|z| Framework::implied_by(z, pp)));
            let overlap = overlap_under(layout_framework);
            let mp = u64::from(tp) * u64::from(pp) * u64::from(cp);
            if mp == 0 || u64::from(n) % mp != 0 {
                continue;
            }
            let dp = t.dp.unwrap_or((u64::from(n) / mp) as u32);
            let per_replica = run.job.global_batch / dp.max(1);
            // A PyTorch pipeline left at torchtitan's defaults: the `1F1B` schedule
            // (`pipeline_parallel_schedule`; interleaving is opt-in) over as many micro-batches
            // as pipeline stages (`pipeline_parallel_microbatches`, default the pp degree, the
            // version of torchtitan's published benchmarks, 2024-12).
            let torchtitan_pipeline = pp > 1 && layout_framework == Some(Framework::Pytorch);
            let mbs: Vec<u32> = match t.micro_batch {
                Some(mb) => vec![mb],
                None if torchtitan_pipeline && per_replica >= pp && per_replica % pp == 0 => {
                    vec![per_replica / pp]
                }
                None => (1..=per_replica.clamp(1, 64))
                    .filter(|mb| per_replica % mb == 0)
                    .collect(),
            };
            let vpps: Vec<u32> = match t.vpp {
                Some(v) => vec![v],
                // DeepSpeed's pipeline engine has no interleaved schedule.
                None if layout_framework == Some(Framework::Deepspeed) => vec![1],
                None if torchtitan_pipeline => vec![1],
                // Megatron-Core lays out uneven model chunks (`--pipeline-model-parallel-layout`). A
                // run that names neither is read by its generation, as for the overlaps: from
                // the fp8 parts (H100) on, its stack is taken to have them; before (A100), it
                // keeps to chunks that divide the layers, as Megatron-LM's interleaved
                // schedule required (`num_layers % (pp·vpp) == 0`) and DeepSpeed has none.
                None if pp > 1 => (1..=8)
                    .filter(|&v| {
                        v == 1
                            || run.model.n_layers % (pp * v) == 0
                            || ((layout_framework.is_some()
                                || run.cluster.accelerator.fp8_peak.is_some())
                                && pp * v <= run.model.n_layers)
                    })
                    .collect(),
                None => vec![1],
            };
            let sps: &[bool] = match t.sequence_parallel {
                Some(true) => &[true],
                // The assumed overlap runs on sequence-parallel layers (Megatron-Core's
                // --tp-comm-overlap requires --sequence-parallel).
                None if tp > 1 && overlap => &[true],
                // Off first: Megatron-LM and DeepSpeed ship with it off, so it wins ties.
                None if tp > 1 => &[false, true],
                Some(false) | None => &[false],
            };
            let recs: &[Recompute] = match t.recompute {
                Some(Recompute::None) => &[Recompute::None],
                Some(Recompute::Selective) => &[Recompute::Selective],
                Some(Recompute::Full) => &[Recompute::Full],
                None => &Recompute::ALL,
            };
            let zeros = zero_candidates(t.zero, pp);
            // Expert layouts: experts split like the dense layers with ep inside dp × cp, and
            // with tp > 1 whole experts (etp 1, Megatron-Core's MoE parallel folding) with ep
            // inside tp × dp × cp. An MoE run that does not state ep tries every ep that divides
            // the experts and those ranks.
            let dp_cp = u64::from(dp) * u64::from(cp);
            let eps: Vec<(u32, Option<u32>)> = match run.model.moe {
                None => vec![(t.ep.unwrap_or(1), None)],
                Some(moe) => {
                    let cands: Vec<u32> = match t.ep {
                        Some(ep) => vec![ep],
                        None => divisors(moe.experts).collect(),
                    };
                    let mut v = crate::space::expert_layouts(moe.experts, &cands, tp, dp_cp);
                    if v.is_empty() {
                        // Keep one so that the reason it fails is reported.
                        v.push((cands[0], None));
                    }
                    v
                }
            };
            // The shared columns do not state whether the expert all-to-all overlaps another
            // micro-batch's compute or which dispatcher moves the tokens, so layouts with ep > 1
            // try each way a run does not state (the defaults win ties, see `appeal`).
            let eps: Vec<(u32, Option<u32>, bool, EpDispatcher)> = eps
                .into_iter()
                .flat_map(|(ep, etp)| {
                    let overlaps: &[bool] = match t.ep_overlap {
                        _ if ep == 1 => &[false],
                        Some(true) => &[true],
                        Some(false) => &[false],
                        None => &[false, true],
                    };
                    let dispatchers: &[EpDispatcher] = match t.ep_dispatcher {
                        _ if ep == 1 => &[EpDispatcher::AllToAll],
                        Some(EpDispatcher::AllToAll) => &[EpDispatcher::AllToAll],
                        Some(EpDispatcher::DeepEp) => &[EpDispatcher::DeepEp],
                        None => &EpDispatcher::ALL,
                    };
                    overlaps
                        .iter()
                        .flat_map(move |&o| dispatchers.iter().map(move |&d| (ep, etp, o, d)))
                })
                .collect();
            let (vpps, zeros, eps) = (vpps.as_slice(), zeros.as_slice(), eps.as_slice());
            let candidates = mbs.iter().flat_map(|&mb| {
                vpps.iter().flat_map(move |&vpp| {
                    sps.iter().flat_map(move |&sp| {
                        recs.iter().flat_map(move |&recompute| {
                            zeros.iter().flat_map(move |&zero| {
                                eps.iter()
                                    .map(move |&(ep, etp, ep_overlap, ep_dispatcher)| Strategy {
                                        dp,
                                        tp,
                                        pp,
                                        cp,
                                        ep,
                                        etp,
                                        vpp,
                                        micro_batch: mb,
                                        zero,
                                        recompute,
                                        sequence_parallel: sp,
                                        flash_attention: run
                                            .template
                                            .flash_attention
                                            .unwrap_or(true),
                                        tp_overlap: tp > 1
                                            && sp
                                            && overlap_under(run.job.framework_for(zero, pp)),
                                        ep_overlap,
                                        dp_overlap: t.dp_overlap.unwrap_or_else(|| {
                                            assumes_dp_overlap(
                                                &run.cluster.accelerator,
                                                run.job.framework_for(zero, pp),
                                            )
                                        }),
                                        ep_dispatcher,
                                    })
                            })
                        })
                    })
                })
            });
            for strategy in candidates {
                match evaluate(&run.model, &run.cluster, &run.job, &strategy) {
                    Ok(estimate) => {
                        let fits = estimate.fits();
                        let better = match &best {
                            None => true,
                            Some((b, bfits)) => match (fits, *bfits) {
                                (true, false) => true,
                                (false, true) => false,
                                (true, true) => {
                                    appeal(&strategy, &estimate) > appeal(&b.strategy, &b.estimate)
                                }
                                (false, false) => {
                                    estimate.memory.total.get() < b.estimate.memory.total.get()
                                }
                            },
                        };
                        if better {
                            let chosen = Chosen {
                                tp: t.tp.is_none(),
                                pp: t.pp.is_none(),
                                dp: t.dp.is_none(),
                                vpp: t.vpp.is_none() && pp > 1,
                                sequence_parallel: t.sequence_parallel.is_none() && tp > 1,
                                micro_batch: t.micro_batch.is_none(),
                                recompute: t.recompute.is_none(),
                                zero: t.zero.is_none(),
                                ep: t.ep.is_none() && run.model.moe.is_some(),
                                etp: run.model.moe.is_some() && tp > 1,
                                tp_overlap: strategy.tp_overlap && t.tp_overlap.is_none(),
                                ep_overlap: strategy.ep > 1 && t.ep_overlap.is_none(),
                                dp_exposed: t.dp_overlap.is_none()
                                    && !strategy.dp_overlap
                                    && strategy.zero <= 2
                                    && strategy.dp * strategy.cp > 1
                                    && strategy.framework(&run.job) != Some(Framework::Deepspeed),
                                ep_dispatcher: strategy.ep > 1 && t.ep_dispatcher.is_none(),
                                framework: run.job.framework.xor(strategy.framework(&run.job)),
                            };
                            best = Some((
                                Prediction {
                                    strategy,
                                    estimate,
                                    chosen,
                                },
                                fits,
                            ));
                        }
                    }
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
    }
    match best {
        Some((p, _)) => Ok(p),
        None => Err(first_err.unwrap_or(Infeasible::GpuCount {
            dp: t.dp.unwrap_or(0),
            tp: t.tp.unwrap_or(0),
            pp: t.pp.unwrap_or(0),
            cp,
            product: 0,
            n_gpus: n,
        })),
    }
}

/// Absolute relative errors summarised.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ErrorSummary {
    /// Rows counted.
    pub n: usize,
    /// Median absolute relative error.
    pub median: f64,
    /// Worst absolute relative error.
    pub worst: f64,
}

impl ErrorSummary {
    /// Summarises absolute relative errors (order does not matter).
    pub fn of(errors: &[f64]) -> Self {
        let mut v: Vec<f64> = errors
            .iter()
            .map(|e| e.abs())
            .filter(|e| e.is_finite())
            .collect();
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 0 {
            (v[mid - 1] + v[mid]) / 2.0
        } else {
            v[mid]
        };
        Self {
            n: v.len(),
            median,
            worst: v[v.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trainplan_hardware::testing::a100_cluster;
    use trainplan_model::Moe;
    use trainplan_parallel::Precision;
    use trainplan_units::FlopRate;

    fn run(model: Model, template: Template) -> RunSpec {
        RunSpec {
            name: "t".into(),
            source: "T".into(),
            model,
            cluster: a100_cluster(64),
            job: Job {
                seq_len: 2048,
                global_batch: 512,
                tokens: 1e12,
                precision: Precision::Bf16,
                grad_bytes: 4.0,
                optimizer: trainplan_parallel::Optimizer::Deepspeed,
                framework: None,
                cross_entropy: None,
            },
            template,
            notes: Vec::new(),
        }
    }

    #[test]
    fn stated_fields_are_kept_and_unstated_ones_reported() {
        let t = Template {
            tp: Some(2),
            pp: Some(1),
            dp: Some(32),
            recompute: Some(Recompute::Full),
            zero: Some(1),
            ..Template::default()
        };
        let p = predict(&run(
            trainplan_model::testing::gpt3("gpt3-1.3b", 24, 2048, 16),
            t,
        ))
        .unwrap();
        assert_eq!((p.strategy.tp, p.strategy.pp, p.strategy.dp), (2, 1, 32));
        assert_eq!(p.strategy.recompute, Recompute::Full);
        assert!(p.chosen.micro_batch && !p.chosen.tp && !p.chosen.zero);
        assert!(p.choices().contains("micro_batch="), "{}", p.choices());
        assert!(p.estimate.fits());
    }

    #[test]
    fn a_run_without_fused_attention_is_priced_without_it() {
        // Megatron-LM 2021's GPT-3 1.3B shapes at tp 2, dp 32: unfused attention runs the whole
        // score square and, with recomputation open, validate may pick selective to drop it.
        let model = trainplan_model::testing::gpt3("gpt3-1.3b", 24, 2048, 16);
        let t = Template {
            tp: Some(2),
            pp: Some(1),
            dp: Some(32),
            micro_batch: Some(4),
            recompute: Some(Recompute::None),
            ..Template::default()
        };
        let fused = predict(&run(model.clone(), t)).unwrap();
        let unfused = predict(&run(
            model,
            Template {
                flash_attention: Some(false),
                ..t
            },
        ))
        .unwrap();
        assert!(fused.strategy.flash_attention && !unfused.strategy.flash_attention);
        assert!(unfused.estimate.time.compute > fused.estimate.time.compute);
        assert!(unfused.estimate.memory.activations > fused.estimate.memory.activations);
    }

    #[test]
    fn a_stated_tp_past_the_kv_heads_replicates_them_and_a_chosen_one_splits_them() {
        // Multi-query attention (one KV head): a run that states tp 4 is priced with the head
        // replicated, as BigCode's Megatron-LM trained StarCoder; a run that leaves tp open is
        // given tp 1, the only degree that splits a single head.
        let mqa = || trainplan_model::Model {
            n_kv_heads: 1,
            ..trainplan_model::testing::gpt3("gpt3-13b", 40, 5120, 40)
        };
        let stated = Template {
            tp: Some(4),
            pp: Some(2),
            ..Template::default()
        };
        let p = predict(&run(mqa(), stated)).unwrap();
        assert_eq!((p.strategy.tp, p.strategy.pp, p.strategy.dp), (4, 2, 8));
        let open = Template {
            pp: Some(2),
            ..Template::default()
        };
        let p = predict(&run(mqa(), open)).unwrap();
        assert!(p.chosen.tp);
        assert_eq!(p.strategy.tp, 1);
    }

    #[test]
    fn an_moe_run_without_ep_tries_expert_parallelism() {
        let mut model = trainplan_model::testing::gpt3("moe", 24, 2048, 16);
        model.moe = Some(Moe {
            experts: 8,
            top_k: 2,
            shared_ffn: 0,
            dense_layers: 0,
            dense_ffn: 0,
            layer_freq: 1,
        });
        let t = Template {
            tp: Some(1),
            pp: Some(1),
            dp: Some(64),
            micro_batch: Some(1),
            recompute: Some(Recompute::Full),
            zero: Some(1),
            ..Template::default()
        };
        let p = predict(&run(model, t)).unwrap();
        assert!(p.chosen.ep);
        assert!(p.choices().contains("ep="), "{}", p.choices());
        assert_eq!(8 % p.strategy.ep, 0);
    }

    #[test]
    fn a_pipelined_run_is_never_given_zero_3() {
        assert_eq!(zero_candidates(None, 1), &[0, 1, 2, 3]);
        assert_eq!(zero_candidates(None, 2), &[0, 1, 2]);
        // A stated stage is kept, even ZeRO-3 with a pipeline.
        assert_eq!(zero_candidates(Some(3), 4), &[3]);
        assert_eq!(zero_candidates(Some(1), 1), &[1]);
        // A stage that does not exist is passed on, for the cost model to refuse by name.
        let mut run4 = run(
            trainplan_model::testing::gpt3("gpt3-1.3b", 24, 2048, 16),
            Template {
                tp: Some(1),
                pp: Some(1),
                zero: Some(4),
                ..Template::default()
            },
        );
        run4.template.micro_batch = Some(1);
        assert!(matches!(predict(&run4), Err(Infeasible::ZeroStage { .. })));
    }

    /// A small GPT with 64 experts of top-2 routing.
    fn moe_64_experts() -> Model {
        let mut model = trainplan_model::testing::gpt3("moe", 8, 2048, 16);
        model.moe = Some(trainplan_model::Moe {
            experts: 64,
            top_k: 2,
            shared_ffn: 0,
            dense_layers: 0,
            dense_ffn: 0,
            layer_freq: 1,
        });
        model
    }

    /// A tp 1, dp 64 run of `moe_64_experts` with the layout stated up to `ep` (and the
    /// all-to-all overlap and dispatcher, which the caller sets or leaves to choose).
    fn moe_tp1_template(ep: u32) -> Template {
        Template {
            tp: Some(1),
            pp: Some(1),
            dp: Some(64),
            ep: Some(ep),
            micro_batch: Some(1),
            recompute: Some(Recompute::Full),
            zero: Some(1),
            ..Template::default()
        }
    }

    #[test]
    fn moe_runs_with_tensor_parallelism_choose_how_experts_split() {
        // 64 experts on 64 A100s at tp 4, dp 16: ep 32 fits only when experts stay whole and ep
        // draws on the tensor-parallel ranks too (MoE parallel folding).
        let model = moe_64_experts();
        let t = Template {
            tp: Some(4),
            pp: Some(1),
            dp: Some(16),
            ep: Some(32),
            micro_batch: Some(1),
            recompute: Some(Recompute::Full),
            zero: Some(1),
            ..Template::default()
        };
        let p = predict(&run(model.clone(), t)).unwrap();
        assert_eq!(p.strategy.etp, Some(1));
        assert!(p.strategy.sp_active());
        assert!(p.choices().contains("etp=1"), "{}", p.choices());
        // With ep inside dp × cp both splits are valid; the choice is reported either way.
        let t8 = Template { ep: Some(8), ..t };
        let p8 = predict(&run(model.clone(), t8)).unwrap();
        assert!(p8.choices().contains("etp="), "{}", p8.choices());
        // Dense runs and tp 1 have nothing to choose.
        let t1 = Template {
            tp: Some(1),
            dp: Some(64),
            ep: Some(8),
            ..t
        };
        let p1 = predict(&run(model, t1)).unwrap();
        assert!(!p1.choices().contains("etp"), "{}", p1.choices());
    }

    #[test]
    fn moe_runs_choose_whether_the_all_to_all_overlaps() {
        // 64 experts over ep 8 on 64 A100s (tp 1, one node per expert group): an overlapped
        // all-to-all beats the plain one by far more than the hurdle for a non-default feature.
        let model = moe_64_experts();
        let t = moe_tp1_template(8);
        let r = run(model.clone(), t);
        let p = predict(&r).unwrap();
        let speed = |ep_overlap: bool| {
            let s = Strategy {
                ep_overlap,
                ..p.strategy
            };
            evaluate(&r.model, &r.cluster, &r.job, &s)
                .unwrap()
                .tokens_per_s
        };
        assert!(speed(true) > speed(false) * (1.0 + FEATURE_HURDLE));
        assert!(p.strategy.ep_overlap);
        assert!(
            p.choices().contains("ep_comm_overlap=true"),
            "{}",
            p.choices()
        );
        // Without expert parallelism there is nothing to overlap, and nothing is reported.
        let dense = predict(&run(model, Template { ep: Some(1), ..t })).unwrap();
        assert!(!dense.strategy.ep_overlap);
        assert!(
            !dense.choices().contains("ep_comm_overlap"),
            "{}",
            dense.choices()
        );
    }

    #[test]
    fn moe_runs_choose_a_deduplicating_dispatcher_only_across_nodes() {
        // 64 experts, top 2, tp 1 on 64 GPUs of 8 per node: ep 32 spreads each layer's experts
        // over four nodes, where sending a token once per node beats once per expert; ep 8 stays
        // inside a node, where the two are the same and the default wins the tie.
        let model = moe_64_experts();
        let t = Template {
            ep_overlap: Some(false),
            ..moe_tp1_template(8)
        };
        let across = predict(&run(model.clone(), Template { ep: Some(32), ..t })).unwrap();
        assert_eq!(across.strategy.ep_dispatcher, EpDispatcher::DeepEp);
        assert!(
            across.choices().contains("ep_dispatcher=deepep"),
            "{}",
            across.choices()
        );
        let inside = predict(&run(model.clone(), Template { ep: Some(8), ..t })).unwrap();
        assert_eq!(inside.strategy.ep_dispatcher, EpDispatcher::AllToAll);
        // A run that states its dispatcher keeps it and does not report it as a choice.
        let stated = predict(&run(
            model,
            Template {
                ep: Some(32),
                ep_dispatcher: Some(EpDispatcher::AllToAll),
                ..t
            },
        ))
        .unwrap();
        assert_eq!(stated.strategy.ep_dispatcher, EpDispatcher::AllToAll);
        assert!(
            !stated.choices().contains("ep_dispatcher"),
            "{}",
            stated.choices()
        );
        assert!(stated.estimate.tokens_per_s < across.estimate.tokens_per_s);
    }

    /// GPT-3 13B-like runs at tp 8, dp 8, with the rest of the layout stated.
    fn tp8_template() -> Template {
        Template {
            tp: Some(8),
            pp: Some(1),
            dp: Some(8),
            micro_batch: Some(1),
            recompute: Some(Recompute::Full),
            zero: Some(1),
            ..Template::default()
        }
    }

    /// `run` on an A100 given an fp8 peak: the generation `validate` assumes overlaps its
    /// tensor-parallel collectives.
    fn hopper_like(model: Model, template: Template) -> RunSpec {
        let mut r = run(model, template);
        r.cluster.accelerator.fp8_peak = Some(FlopRate::from_tflops(624.0));
        r
    }

    #[test]
    fn stated_overlaps_are_used_and_not_reported_as_choices() {
        let model = || trainplan_model::testing::gpt3("gpt3-13b", 40, 5120, 40);
        let t = tp8_template();
        // An H100-like part where the run says its collectives were not overlapped.
        let vanilla = hopper_like(
            model(),
            Template {
                tp_overlap: Some(false),
                ..t
            },
        );
        let vanilla = predict(&vanilla).unwrap();
        assert!(!vanilla.strategy.tp_overlap);
        assert!(
            !vanilla.choices().contains("tp_comm_overlap"),
            "{}",
            vanilla.choices()
        );
        // An A100 run that says they were.
        let overlapped = predict(&run(
            model(),
            Template {
                tp_overlap: Some(true),
                ..t
            },
        ))
        .unwrap();
        assert!(overlapped.strategy.tp_overlap_active());
        assert!(
            !overlapped.choices().contains("tp_comm_overlap"),
            "{}",
            overlapped.choices()
        );
        // An MoE run that says its all-to-all was not overlapped, where overlap would win.
        let moe = moe_64_experts();
        let tm = Template {
            tp: Some(1),
            dp: Some(64),
            ep: Some(8),
            ep_overlap: Some(false),
            ..t
        };
        let p = predict(&run(moe, tm)).unwrap();
        assert!(!p.strategy.ep_overlap);
        assert!(!p.choices().contains("ep_comm_overlap"), "{}", p.choices());
    }

    #[test]
    fn tensor_parallel_overlap_is_assumed_from_the_fp8_generation_on() {
        let t = tp8_template();
        let model = || trainplan_model::testing::gpt3("gpt3-13b", 40, 5120, 40);
        let ampere = predict(&run(model(), t)).unwrap();
        assert!(!ampere.strategy.tp_overlap);
        assert!(!ampere.choices().contains("tp_comm_overlap"));

        let hopper = predict(&hopper_like(model(), t)).unwrap();
        assert!(hopper.strategy.tp_overlap);
        // Megatron-Core's overlap runs on sequence-parallel layers.
        assert!(hopper.strategy.sp_active());
        assert!(
            hopper.choices().contains("tp_comm_overlap=true"),
            "{}",
            hopper.choices()
        );
        assert!(hopper.estimate.tokens_per_s > ampere.estimate.tokens_per_s);

        // A run that states sequence_parallel = false keeps its collectives exposed.
        let no_sp = hopper_like(
            model(),
            Template {
                sequence_parallel: Some(false),
                ..t
            },
        );
        let no_sp = predict(&no_sp).unwrap();
        assert!(!no_sp.strategy.tp_overlap && !no_sp.strategy.sp_active());

        // Nothing to overlap without tensor parallelism.
        let no_tp = hopper_like(
            model(),
            Template {
                tp: Some(1),
                dp: Some(64),
                ..t
            },
        );
        let no_tp = predict(&no_tp).unwrap();
        assert!(!no_tp.strategy.tp_overlap && !no_tp.chosen.tp_overlap);

        // A stated framework is taken at its word: Megatron overlaps on Hopper, DeepSpeed and
        // PyTorch (whose async TP is opt-in) do not.
        for (framework, overlaps) in [
            (trainplan_parallel::Framework::Megatron, true),
            (trainplan_parallel::Framework::Deepspeed, false),
            (trainplan_parallel::Framework::Pytorch, false),
        ] {
            let mut r = hopper_like(model(), t);
            r.job.framework = Some(framework);
            let p = predict(&r).unwrap();
            assert_eq!(p.strategy.tp_overlap, overlaps, "{framework:?}");
        }
    }

    #[test]
    fn the_gradient_reduction_is_assumed_exposed_before_the_fp8_generation() {
        // GPT-3 13B at tp 8 × dp 8, ZeRO-1, no framework stated: on A100 it reduces after the
        // last backward (Megatron-LM before --overlap-grad-reduce), on Hopper bucket by bucket.
        let t = tp8_template();
        let model = || trainplan_model::testing::gpt3("gpt3-13b", 40, 5120, 40);
        let ampere = predict(&run(model(), t)).unwrap();
        assert!(!ampere.strategy.dp_overlap && ampere.chosen.dp_exposed);
        assert!(!ampere.strategy.dp_comm_overlaps(&run(model(), t).job));
        assert!(
            ampere.choices().contains("dp_comm_overlap=false"),
            "{}",
            ampere.choices()
        );
        let hopper = predict(&hopper_like(model(), t)).unwrap();
        assert!(hopper.strategy.dp_overlap && !hopper.chosen.dp_exposed);
        assert!(!hopper.choices().contains("dp_comm_overlap"));

        // A stated column replaces the assumption and is not reported as a choice; the
        // overlapped reduction exposes less of itself.
        let stated = predict(&run(
            model(),
            Template {
                dp_overlap: Some(true),
                ..t
            },
        ))
        .unwrap();
        assert!(stated.strategy.dp_overlap && !stated.chosen.dp_exposed);
        assert!(!stated.choices().contains("dp_comm_overlap"));
        assert!(stated.estimate.time.dp_comm < ampere.estimate.time.dp_comm);
        assert!(stated.estimate.tokens_per_s > ampere.estimate.tokens_per_s);
        let stated_off = predict(&hopper_like(
            model(),
            Template {
                dp_overlap: Some(false),
                ..t
            },
        ))
        .unwrap();
        assert!(!stated_off.strategy.dp_overlap && !stated_off.chosen.dp_exposed);

        // A stated framework: PyTorch always overlaps; DeepSpeed never does below ZeRO-3, which
        // is its own rule, not an assumption to report.
        let mut r = run(model(), t);
        r.job.framework = Some(trainplan_parallel::Framework::Pytorch);
        assert!(predict(&r).unwrap().strategy.dp_overlap);
        let mut r = hopper_like(model(), t);
        r.job.framework = Some(trainplan_parallel::Framework::Deepspeed);
        let ds = predict(&r).unwrap();
        assert!(!ds.strategy.dp_comm_overlaps(&r.job) && !ds.chosen.dp_exposed);

        // ZeRO-3 gathers and reduces as it goes whatever the stack, and one data-parallel rank
        // has nothing to reduce: neither is reported.
        let z3 = predict(&run(model(), Template { zero: Some(3), ..t })).unwrap();
        assert!(!z3.chosen.dp_exposed, "{}", z3.choices());
        let mut solo = run(model(), Template { dp: Some(1), ..t });
        solo.cluster = a100_cluster(8);
        let solo = predict(&solo).unwrap();
        assert!(!solo.chosen.dp_exposed, "{}", solo.choices());
    }

    /// A GPT of `n_layers` on 64 A100s at tp 8 × pp 4, vpp unstated, with eight micro-batches
    /// per step (a bubble interleaving would shrink).
    fn pipelined_run(n_layers: u32) -> RunSpec {
        let model = trainplan_model::testing::gpt3("gpt", n_layers, 5120, 40);
        let t = Template {
            tp: Some(8),
            pp: Some(4),
            micro_batch: Some(1),
            recompute: Some(Recompute::Full),
            ..Template::default()
        };
        let mut r = run(model, t);
        r.job.global_batch = 16;
        r
    }

    #[test]
    fn an_fsdp_row_that_names_no_framework_is_priced_and_reported_as_pytorch() {
        // GPT-3 13B, ZeRO-3 at tp 8 on Hopper, full recomputation: PyTorch's early stop makes
        // its compute shorter than the same row stated as Megatron's, and its collectives are not
        // assumed to overlap.
        let model = || trainplan_model::testing::gpt3("gpt3-13b", 40, 5120, 40);
        let t = Template {
            zero: Some(3),
            ..tp8_template()
        };
        let implied = predict(&hopper_like(model(), t)).unwrap();
        assert!(
            implied.choices().contains("framework=pytorch"),
            "{}",
            implied.choices()
        );
        assert!(!implied.strategy.tp_overlap);
        let mut r = hopper_like(model(), t);
        r.job.framework = Some(trainplan_parallel::Framework::Megatron);
        let stated = predict(&r).unwrap();
        assert!(
            !stated.choices().contains("framework="),
            "{}",
            stated.choices()
        );
        assert!(stated.strategy.tp_overlap);
        assert!(implied.estimate.time.compute < stated.estimate.time.compute);
        let mut r = hopper_like(model(), t);
        r.job.framework = Some(trainplan_parallel::Framework::Pytorch);
        let pytorch = predict(&r).unwrap();
        assert_eq!(pytorch.estimate.time, implied.estimate.time);
    }

    #[test]
    fn a_pytorch_pipeline_runs_torchtitan_s_default_schedule() {
        // 40 layers at tp 8 × pp 4 over 16 sequences per replica, neither vpp nor the
        // micro-batch stated. Megatron interleaves over the micro-batches validate chooses;
        // PyTorch keeps torchtitan's 1F1B over pp micro-batches: 16 / 4 = 4 sequences each.
        let mut r = pipelined_run(40);
        r.template.micro_batch = None;
        r.template.tp = Some(1);
        r.cluster = a100_cluster(4);
        r.job.global_batch = 16;
        r.job.framework = Some(trainplan_parallel::Framework::Megatron);
        let megatron = predict(&r).unwrap();
        assert!(megatron.strategy.vpp > 1, "{}", megatron.choices());
        r.job.framework = Some(trainplan_parallel::Framework::Pytorch);
        let p = predict(&r).unwrap();
        assert_eq!(
            (p.strategy.vpp, p.strategy.micro_batch),
            (1, 4),
            "{}",
            p.choices()
        );
        assert!(p.choices().contains("vpp=1;"), "{}", p.choices());
        assert!(p.choices().contains("micro_batch=4"), "{}", p.choices());
        // A local batch the stages do not divide: the micro-batch is chosen freely.
        r.job.global_batch = 6;
        let odd = predict(&r).unwrap();
        assert_eq!(odd.strategy.vpp, 1);
        assert_eq!(6 % odd.strategy.micro_batch, 0);
        // A stated schedule is taken at its word.
        r.job.global_batch = 16;
        r.template.vpp = Some(2);
        r.template.micro_batch = Some(1);
        let stated = predict(&r).unwrap();
        assert_eq!((stated.strategy.vpp, stated.strategy.micro_batch), (2, 1));
        assert!(p.estimate.time.bubble > stated.estimate.time.bubble);
    }

    #[test]
    fn deepspeed_runs_are_never_given_interleaving() {
        // 40 layers: validate tries interleaving and it wins, but DeepSpeed's engine has no
        // interleaved schedule, so none is chosen.
        let mut r = pipelined_run(40);
        assert!(predict(&r).unwrap().strategy.vpp > 1);
        r.job.framework = Some(trainplan_parallel::Framework::Deepspeed);
        let p = predict(&r).unwrap();
        assert_eq!(p.strategy.vpp, 1);
        assert!(p.strategy.zero <= 1);
    }

    #[test]
    fn uneven_chunks_are_interleaved_where_the_stack_can() {
        // 42 layers on pp 4: no vpp above 1 divides them evenly. Unstated on A100, validate
        // keeps to even chunks (vpp 1), as Megatron-LM's interleaving required; Megatron-Core
        // lays out uneven ones.
        let mut r = pipelined_run(42);
        assert_eq!(predict(&r).unwrap().strategy.vpp, 1);
        r.job.framework = Some(trainplan_parallel::Framework::Megatron);
        assert!(predict(&r).unwrap().strategy.vpp > 1);
        // Unstated from the fp8 generation on, the stack is read as one that can.
        let mut hopper = pipelined_run(42);
        hopper.cluster.accelerator.fp8_peak = Some(trainplan_units::FlopRate::from_tflops(624.0));
        let p = predict(&hopper).unwrap();
        assert!(p.strategy.vpp > 1, "{}", p.choices());
        assert!(p.choices().contains("vpp="), "{}", p.choices());
        // DeepSpeed has no interleaved schedule on any generation.
        hopper.job.framework = Some(trainplan_parallel::Framework::Deepspeed);
        assert_eq!(predict(&hopper).unwrap().strategy.vpp, 1);
    }
}
