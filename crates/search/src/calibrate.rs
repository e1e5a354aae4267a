//! Fitting the efficiency factors on measured runs (nalgebra least squares on a Huber loss).
//!
//! The factors are few and physical: per accelerator silicon, the fraction of the dense peak that
//! training matrix products reach (bf16/fp16 and fp8) and that fused attention reaches; and one
//! shared constant, the overlap penalty. The shape constant `matmul_half_dim` is deliberately not
//! fitted here: fitted in-sample it climbs to ~450 and absorbs small-model framework overheads,
//! which makes runs from unseen sources worse (leave-one-source-out median 15.3% against 12.6% at
//! 200, the value chosen by that cross-validation; `hardware-db/calibration/README.md`). Accelerators
//! with the same dense peaks share silicon (A100 40GB and 80GB; H100, H200 and H800) and share
//! factors. Residuals are `ln(predicted / measured)` tokens/s per GPU, weighed by Huber's loss
//! (Huber 1964) so that the few runs whose configuration the columns cannot state do not drag a
//! shared factor; a Levenberg-Marquardt loop (Marquardt 1963) with forward-difference Jacobians
//! solves each step's normal equations.

use crate::validate::{predict, RunSpec};
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use trainplan_hardware::Efficiency;

/// Where Huber's loss turns from squared to linear, in `ln(predicted / measured)`: his 1.345 (95%
/// efficiency under normal errors; Huber 1981, "Robust Statistics", section 7.7) times the
/// errors' robust scale at the least-squares fit, 1.4826 × median |ln(pred/meas)| = 1.4826 ×
/// 0.058 on runs-public.csv, so 0.116, rounded. 0.08 to 0.15 move the fitted factors by under
/// 0.02 (see hardware-db/calibration/README.md).
pub const HUBER_DELTA: f64 = 0.12;

/// Which efficiency field a parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `matmul_fraction`.
    Matmul,
    /// `fp8_matmul_fraction`.
    Fp8Matmul,
    /// `attention_fraction`.
    Attention,
    /// `overlap_penalty` (shared by every group).
    OverlapPenalty,
}

impl Field {
    /// The efficiency field's name in `hardware-db/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Matmul => "matmul_fraction",
            Field::Fp8Matmul => "fp8_matmul_fraction",
            Field::Attention => "attention_fraction",
            Field::OverlapPenalty => "overlap_penalty",
        }
    }

    fn bounds(self) -> (f64, f64) {
        match self {
            Field::OverlapPenalty => (0.0, 0.95),
            _ => (0.05, 1.0),
        }
    }

    fn get(self, e: &Efficiency) -> f64 {
        match self {
            Field::Matmul => e.matmul_fraction,
            Field::Fp8Matmul => e.fp8_matmul_fraction,
            Field::Attention => e.attention_fraction,
            Field::OverlapPenalty => e.overlap_penalty,
        }
    }

    fn set(self, e: &mut Efficiency, v: f64) {
        match self {
            Field::Matmul => e.matmul_fraction = v,
            Field::Fp8Matmul => e.fp8_matmul_fraction = v,
            Field::Attention => e.attention_fraction = v,
            Field::OverlapPenalty => e.overlap_penalty = v,
        }
    }
}

/// One fitted parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The field.
    pub field: Field,
    /// Accelerator ids of the runs that inform it (every id for a shared constant).
    pub accelerators: Vec<String>,
    /// The silicon it applies to (`None` for a constant shared by every accelerator): any run
    /// on an accelerator with the same dense peaks takes the value, including ids the fit never
    /// saw, so a held-out run never keeps a factor fitted on itself.
    silicon: Option<(u64, u64)>,
    /// Value.
    pub value: f64,
    /// Runs that inform it.
    pub n_runs: usize,
}

/// The result of a fit.
#[derive(Debug, Clone)]
pub struct Fit {
    /// Fitted parameters.
    pub params: Vec<Param>,
    /// Root-mean-square of `ln(pred/meas)` before (plain, not Huber-weighed).
    pub rms_before: f64,
    /// Root-mean-square after (plain, not Huber-weighed).
    pub rms_after: f64,
    /// Iterations run.
    pub iterations: usize,
}

/// A run with its measured throughput.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The run.
    pub run: RunSpec,
    /// Measured tokens/s per GPU.
    pub tokens_per_s_per_gpu: f64,
}

/// Silicon key: accelerators with equal dense peaks share kernels' efficiency.
fn silicon(run: &RunSpec) -> (u64, u64) {
    silicon_of(&run.cluster.accelerator)
}

fn silicon_of(a: &trainplan_hardware::Accelerator) -> (u64, u64) {
    (
        a.bf16_peak.get().to_bits(),
        a.fp8_peak.map_or(0, |p| p.get().to_bits()),
    )
}

impl Param {
    /// Whether one value holds for every accelerator (the overlap penalty).
    pub fn is_shared(&self) -> bool {
        self.silicon.is_none()
    }

    /// Whether this parameter's value holds for `accelerator`: the same silicon as the runs it
    /// was fitted on, or every accelerator for a shared constant.
    pub fn applies_to(&self, accelerator: &trainplan_hardware::Accelerator) -> bool {
        self.silicon.map_or(true, |s| s == silicon_of(accelerator))
    }
}

/// Chooses the parameters the observations can inform (at least `min_runs` runs each).
pub fn parameters(obs: &[Observation], min_runs: usize) -> Vec<Param> {
    // (silicon, accelerator ids, runs, fp8 runs)
    #[allow(clippy::type_complexity)]
    let mut groups: Vec<((u64, u64), Vec<String>, usize, usize)> = Vec::new();
    for o in obs {
        let key = silicon(&o.run);
        let fp8 = usize::from(o.run.job.precision == trainplan_parallel::Precision::Fp8);
        let id = o.run.cluster.accelerator.id.clone();
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => {
                if !g.1.contains(&id) {
                    g.1.push(id);
                }
                g.2 += 1;
                g.3 += fp8;
            }
            None => groups.push((key, vec![id], 1, fp8)),
        }
    }
    groups.sort_by(|a, b| a.1.cmp(&b.1));
    let mut params = Vec::new();
    let mut all_ids = Vec::new();
    for (key, mut ids, n, n_fp8) in groups {
        ids.sort();
        all_ids.extend(ids.iter().cloned());
        if n - n_fp8 >= min_runs {
            for field in [Field::Matmul, Field::Attention] {
                params.push(Param {
                    field,
                    accelerators: ids.clone(),
                    silicon: Some(key),
                    value: 0.0,
                    n_runs: n - n_fp8,
                });
            }
        }
        if n_fp8 >= min_runs {
            params.push(Param {
                field: Field::Fp8Matmul,
                accelerators: ids.clone(),
                silicon: Some(key),
                value: 0.0,
                n_runs: n_fp8,
            });
        }
    }
    all_ids.sort();
    params.push(Param {
        field: Field::OverlapPenalty,
        accelerators: all_ids,
        silicon: None,
        value: 0.0,
        n_runs: obs.len(),
    });
    // Start from the values the runs' accelerators carry.
    for p in &mut params {
        if let Some(o) = obs
            .iter()
            .find(|o| p.accelerators.contains(&o.run.cluster.accelerator.id))
        {
            p.value = p.field.get(&o.run.cluster.accelerator.efficiency);
        }
    }
    params
}

fn apply(obs: &mut [Observation], params: &[Param], values: &[f64]) {
    for o in obs.iter_mut() {
        let key = silicon(&o.run);
        for (p, &v) in params.iter().zip(values) {
            if p.silicon.map_or(true, |s| s == key) {
                p.field.set(&mut o.run.cluster.accelerator.efficiency, v);
            }
        }
    }
}

/// `ln(predicted / measured)` for every observation (0 where the run cannot be predicted).
pub fn residuals(obs: &[Observation]) -> Vec<f64> {
    obs.par_iter().map(|o| residual(o).unwrap_or(0.0)).collect()
}

/// `ln(predicted / measured)` of one observation, `None` when it cannot be predicted.
fn residual(o: &Observation) -> Option<f64> {
    match predict(&o.run) {
        Ok(p) if p.estimate.tokens_per_s_per_gpu > 0.0 => {
            Some((p.estimate.tokens_per_s_per_gpu / o.tokens_per_s_per_gpu).ln())
        }
        _ => None,
    }
}

/// Residuals rescaled so that their sum of squares is twice Huber's loss: unchanged within
/// [`HUBER_DELTA`], growing as the square root of their size past it (the loss grows linearly).
fn huber(r: &[f64]) -> Vec<f64> {
    let d = HUBER_DELTA;
    r.iter()
        .map(|&x| {
            if x.abs() <= d {
                x
            } else {
                x.signum() * (2.0 * d * x.abs() - d * d).sqrt()
            }
        })
        .collect()
}

fn rms(r: &[f64]) -> f64 {
    if r.is_empty() {
        return 0.0;
    }
    (r.iter().map(|x| x * x).sum::<f64>() / r.len() as f64).sqrt()
}

/// Fits `params` (starting values taken from the observations) by Levenberg-Marquardt on the
/// Huber-weighed residuals.
pub fn fit(mut obs: Vec<Observation>, mut params: Vec<Param>, max_iterations: usize) -> Fit {
    // Runs the cost model cannot price inform nothing, and would dilute the rms with zeros.
    obs.retain(|o| residual(o).is_some());
    let n = params.len();
    let mut x: Vec<f64> = params.iter().map(|p| p.value).collect();
    apply(&mut obs, &params, &x);
    let mut plain = residuals(&obs);
    let rms_before = rms(&plain);
    let mut r = huber(&plain);
    let mut cost = rms(&r);
    let mut lambda: f64 = 1e-2;
    let mut iterations = 0;
    for _ in 0..max_iterations {
        iterations += 1;
        let mut jac = DMatrix::<f64>::zeros(r.len(), n);
        for j in 0..n {
            let step = (x[j].abs() * 1e-2).max(1e-4);
            let mut xp = x.clone();
            xp[j] += step;
            apply(&mut obs, &params, &xp);
            let rp = huber(&residuals(&obs));
            for i in 0..r.len() {
                jac[(i, j)] = (rp[i] - r[i]) / step;
            }
        }
        let rv = DVector::from_vec(r.clone());
        let jtj = jac.transpose() * &jac;
        let jtr = jac.transpose() * rv;
        let mut improved = false;
        for _ in 0..8 {
            let mut a = jtj.clone();
            for k in 0..n {
                a[(k, k)] += lambda * (jtj[(k, k)].max(1e-12));
            }
            let Some(delta) = a.lu().solve(&(-&jtr)) else {
                lambda *= 10.0;
                continue;
            };
            let xn: Vec<f64> = (0..n)
                .map(|k| {
                    let (lo, hi) = params[k].field.bounds();
                    (x[k] + delta[k]).clamp(lo, hi)
                })
                .collect();
            apply(&mut obs, &params, &xn);
            let pn = residuals(&obs);
            let rn = huber(&pn);
            let cn = rms(&rn);
            if cn < cost {
                x = xn;
                r = rn;
                plain = pn;
                cost = cn;
                lambda = (lambda / 3.0).max(1e-6);
                improved = true;
                break;
            }
            lambda *= 4.0;
        }
        apply(&mut obs, &params, &x);
        if !improved {
            break;
        }
    }
    for (p, v) in params.iter_mut().zip(&x) {
        p.value = *v;
    }
    Fit {
        params,
        rms_before,
        rms_after: rms(&plain),
        iterations,
    }
}

/// One fold of [`cross_validate`]: a source held out of the fit and predicted with the factors
/// fitted on the others.
#[derive(Debug, Clone)]
pub struct Fold {
    /// The held-out source.
    pub source: String,
    /// Relative throughput errors `predicted / measured - 1` of its runs.
    pub errors: Vec<f64>,
    /// The factors fitted without it (how far they move from fold to fold shows how firmly the
    /// runs pin each one down).
    pub params: Vec<Param>,
}

/// Relative throughput errors `predicted / measured - 1` of runs predicted with factors fitted
/// without them: for each source in turn, the factors are refitted on the other sources' runs
/// and the held-out source is predicted. The spread of these errors is what to expect on runs
/// from a framework or team the calibration has never seen.
pub fn cross_validate(obs: &[Observation], max_iterations: usize) -> Vec<Fold> {
    let mut sources: Vec<&str> = obs.iter().map(|o| o.run.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    sources
        .into_iter()
        .map(|source| {
            let train: Vec<Observation> = obs
                .iter()
                .filter(|o| o.run.source != source)
                .cloned()
                .collect();
            let mut held: Vec<Observation> = obs
                .iter()
                .filter(|o| o.run.source == source)
                .cloned()
                .collect();
            let params = parameters(&train, 3);
            let fitted = fit(train, params, max_iterations);
            let values: Vec<f64> = fitted.params.iter().map(|p| p.value).collect();
            apply(&mut held, &fitted.params, &values);
            let errors = held.iter().filter_map(residual).map(f64::exp_m1).collect();
            Fold {
                source: source.to_string(),
                errors,
                params: fitted.params,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{huber, HUBER_DELTA};

    #[test]
    fn huber_residuals_square_to_twice_the_loss() {
        let d = HUBER_DELTA;
        for x in [-1.0, -0.3, -d, -0.05, 0.0, 0.05, d, 0.3, 1.0] {
            let r = huber(&[x])[0];
            // Huber 1964: x²/2 within δ, δ(|x| - δ/2) past it.
            let loss = if x.abs() <= d {
                x * x / 2.0
            } else {
                d * (x.abs() - d / 2.0)
            };
            assert!((r * r - 2.0 * loss).abs() < 1e-12, "{x}: {r}");
            assert!(r * x >= 0.0, "{x}: {r} changed sign");
        }
        // Continuous at δ, and an outlier counts for less than its square.
        assert!((huber(&[d + 1e-9])[0] - d).abs() < 1e-8);
        assert!(huber(&[1.0])[0] < 0.5);
    }
}
