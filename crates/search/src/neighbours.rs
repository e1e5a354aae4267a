//! The layouts one change away from a strategy, priced: what `explain` offers as "what to change".
//!
//! Each neighbour changes one knob a team turns while tuning a run on the same GPUs (the
//! micro-batch, recomputation, the ZeRO stage, virtual stages, sequence parallelism) or trades a
//! factor of two between data parallelism and tensor or pipeline parallelism. Framework features
//! (tensor-parallel or expert overlap, the dispatcher) are left as they are: whether they exist
//! is the framework's, not the layout's, to say.

use std::fmt;
use trainplan_hardware::Cluster;
use trainplan_model::{Model, Recompute};
use trainplan_parallel::{evaluate, Estimate, Job, Strategy};

/// One change to a strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Another micro-batch size (the accumulation follows).
    MicroBatch {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// Another recomputation mode.
    Recompute {
        /// Before.
        from: Recompute,
        /// After.
        to: Recompute,
    },
    /// Another ZeRO stage.
    Zero {
        /// Before.
        from: u8,
        /// After.
        to: u8,
    },
    /// Another number of virtual pipeline stages.
    Vpp {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// Sequence parallelism switched.
    SequenceParallel {
        /// After.
        on: bool,
    },
    /// tp and dp traded by a factor of two.
    TpForDp {
        /// tp after.
        tp: u32,
        /// dp after.
        dp: u32,
    },
    /// pp and dp traded by a factor of two.
    PpForDp {
        /// pp after.
        pp: u32,
        /// dp after.
        dp: u32,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Change::MicroBatch { from, to } => write!(f, "micro-batch {from} -> {to}"),
            Change::Recompute { from, to } => {
                write!(f, "recompute {} -> {}", from.as_str(), to.as_str())
            }
            Change::Zero { from, to } => write!(f, "ZeRO {from} -> {to}"),
            Change::Vpp { from, to } => write!(f, "vpp {from} -> {to}"),
            Change::SequenceParallel { on } => {
                write!(f, "sequence parallelism {}", if on { "on" } else { "off" })
            }
            Change::TpForDp { tp, dp } => write!(f, "tp {tp} × dp {dp}"),
            Change::PpForDp { pp, dp } => write!(f, "pp {pp} × dp {dp}"),
        }
    }
}

/// A neighbouring strategy with its price.
#[derive(Debug, Clone, Copy)]
pub struct Neighbour {
    /// What changed.
    pub change: Change,
    /// The changed strategy.
    pub strategy: Strategy,
    /// Its numbers.
    pub estimate: Estimate,
}

/// Every valid strategy one [`Change`] away from `s` on the same cluster and job, priced, in a
/// fixed order (those that do not fit included; the caller filters). A change that prices the
/// same as `s` (selective recomputation under a fused attention kernel, which stores nothing to
/// recompute) is left out.
pub fn neighbours(model: &Model, cluster: &Cluster, job: &Job, s: &Strategy) -> Vec<Neighbour> {
    let Ok(base) = evaluate(model, cluster, job, s) else {
        return Vec::new();
    };
    let mut candidates: Vec<(Change, Strategy)> = Vec::new();
    for to in [s.micro_batch / 2, s.micro_batch * 2] {
        if to >= 1 && to != s.micro_batch {
            let change = Change::MicroBatch {
                from: s.micro_batch,
                to,
            };
            candidates.push((
                change,
                Strategy {
                    micro_batch: to,
                    ..*s
                },
            ));
        }
    }
    for to in Recompute::ALL {
        if to != s.recompute {
            let change = Change::Recompute {
                from: s.recompute,
                to,
            };
            candidates.push((
                change,
                Strategy {
                    recompute: to,
                    ..*s
                },
            ));
        }
    }
    for to in 0..=3u8 {
        if to != s.zero {
            let change = Change::Zero { from: s.zero, to };
            candidates.push((change, Strategy { zero: to, ..*s }));
        }
    }
    if s.pp > 1 {
        for to in [s.vpp / 2, s.vpp * 2] {
            if to >= 1 && to != s.vpp {
                let change = Change::Vpp { from: s.vpp, to };
                candidates.push((change, Strategy { vpp: to, ..*s }));
            }
        }
    }
    if s.tp > 1 {
        let on = !s.sequence_parallel;
        candidates.push((
            Change::SequenceParallel { on },
            Strategy {
                sequence_parallel: on,
                // Overlap rides on sequence-parallel layers; the flag stays as the framework set it.
                ..*s
            },
        ));
    }
    if s.dp % 2 == 0 {
        let (tp, dp) = (s.tp * 2, s.dp / 2);
        candidates.push((Change::TpForDp { tp, dp }, Strategy { tp, dp, ..*s }));
        let (pp, dp) = (s.pp * 2, s.dp / 2);
        candidates.push((Change::PpForDp { pp, dp }, Strategy { pp, dp, ..*s }));
    }
    if s.tp % 2 == 0 {
        let (tp, dp) = (s.tp / 2, s.dp * 2);
        candidates.push((Change::TpForDp { tp, dp }, Strategy { tp, dp, ..*s }));
    }
    if s.pp % 2 == 0 {
        let (pp, dp) = (s.pp / 2, s.dp * 2);
        // Interleaving needs a pipeline; one stage runs plain.
        let vpp = if pp == 1 { 1 } else { s.vpp };
        candidates.push((Change::PpForDp { pp, dp }, Strategy { pp, dp, vpp, ..*s }));
    }
    candidates
        .into_iter()
        .filter_map(|(change, strategy)| {
            let estimate = evaluate(model, cluster, job, &strategy).ok()?;
            let same = estimate.time == base.time && estimate.memory == base.memory;
            (!same).then_some(Neighbour {
                change,
                strategy,
                estimate,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{a100_80gb, gpt3_13b, job};

    fn cluster(n: u32) -> Cluster {
        let t = a100_80gb(Some(2.0));
        Cluster::new(t.accelerator, t.node, n).unwrap()
    }

    #[test]
    fn neighbours_change_one_knob_and_keep_the_gpu_count() {
        let (model, job) = (gpt3_13b(), job(256, 260e9));
        let c = cluster(64);
        let s = Strategy {
            dp: 16,
            tp: 2,
            pp: 2,
            micro_batch: 2,
            zero: 1,
            recompute: Recompute::Full,
            sequence_parallel: true,
            ..Strategy::default()
        };
        let n = neighbours(&model, &c, &job, &s);
        assert!(!n.is_empty());
        for x in &n {
            let t = &x.strategy;
            assert_eq!(t.dp * t.tp * t.pp * t.cp, 64, "{}", x.change);
            assert_eq!(evaluate(&model, &c, &job, t).unwrap().time, x.estimate.time);
        }
        let labels: Vec<String> = n.iter().map(|x| x.change.to_string()).collect();
        for want in [
            "micro-batch 2 -> 1",
            "micro-batch 2 -> 4",
            "recompute full -> none",
            "ZeRO 1 -> 0",
            "vpp 1 -> 2",
            "sequence parallelism off",
            "tp 4 × dp 8",
            "tp 1 × dp 32",
            "pp 4 × dp 8",
            "pp 1 × dp 32",
        ] {
            assert!(labels.iter().any(|l| l == want), "{want} not in {labels:?}");
        }
        // Full recomputation costs a third more compute than none: dropping it is faster.
        let none = n
            .iter()
            .find(|x| x.change.to_string() == "recompute full -> none")
            .unwrap();
        let base = evaluate(&model, &c, &job, &s).unwrap();
        assert!(none.estimate.time.step.get() < base.time.step.get());
    }

    #[test]
    fn a_change_that_prices_the_same_is_left_out() {
        // Under a fused attention kernel selective recomputation stores nothing to recompute,
        // so from `none` the `selective` neighbour is the same plan.
        let (model, job) = (gpt3_13b(), job(256, 260e9));
        let s = Strategy {
            dp: 8,
            tp: 8,
            recompute: Recompute::None,
            sequence_parallel: true,
            ..Strategy::default()
        };
        let n = neighbours(&model, &cluster(64), &job, &s);
        assert!(n
            .iter()
            .all(|x| x.change.to_string() != "recompute none -> selective"));
        assert!(n
            .iter()
            .any(|x| x.change.to_string() == "recompute none -> full"));
    }
}
