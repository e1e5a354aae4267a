//! The sweep: a builder that checks the space once and produces an immutable [`Search`], which
//! evaluates every strategy of its layouts in parallel and returns a deterministic ranking.

use crate::counts::Counts;
use crate::plan::{compare, Objective, Plan};
use crate::rank::{ParetoFront, TopK};
use crate::space::{self, Layout, SpaceSpec, MAX_LAYOUTS};
use crate::{SearchError, Shortfall};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use trainplan_hardware::Cluster;
use trainplan_model::{Model, Recompute};
use trainplan_parallel::{estimate, EpDispatcher, Framework, Job, Strategy};

/// How many of the fastest and of the cheapest plans are kept to answer a deadline or budget
/// that nothing meets.
const CLOSEST: usize = 5;

/// Reason key for an estimate whose numbers are not finite (a cost-model bug, never expected).
const NON_FINITE: &str = "non_finite";

/// Reason key for selective recomputation under a fused attention kernel: the same plan as no
/// recomputation (`Strategy::effective_recompute`), counted once rather than ranked twice.
const SELECTIVE_IS_NONE: &str = "selective_is_none";

/// One slice of a space split for a CI matrix or a job array: shard `index` of `count`, both
/// 1-based as written on the command line (`2/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, 1 to `count`.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl Shard {
    /// The whole space.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// True when layout number `i` (in enumeration order) belongs to this shard. Layouts are
    /// dealt round-robin, so shards get similar mixes of small and large GPU counts.
    #[inline]
    fn holds(self, i: usize) -> bool {
        (i as u64) % u64::from(self.count) == u64::from(self.index - 1)
    }
}

impl FromStr for Shard {
    type Err = SearchError;

    fn from_str(s: &str) -> Result<Self, SearchError> {
        let bad = || SearchError::Shard {
            given: s.to_string(),
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Deadline and budget a plan must meet to be ranked.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Constraints {
    /// Training must finish within this many days.
    pub deadline_days: Option<f64>,
    /// Training must cost at most this many USD.
    pub budget_usd: Option<f64>,
}

impl Constraints {
    /// True when `plan` meets both.
    #[inline]
    pub fn admit(&self, plan: &Plan) -> bool {
        self.deadline_days.map_or(true, |d| plan.train_days <= d)
            && self.budget_usd.map_or(true, |b| plan.cost() <= b)
    }

    /// The objective a constrained question asks for: the cheapest plan that meets a deadline,
    /// the fastest within a budget, the fastest otherwise.
    pub fn default_objective(&self) -> Objective {
        if self.deadline_days.is_some() {
            Objective::Cost
        } else {
            Objective::Time
        }
    }
}

/// Configures a [`Search`].
#[derive(Debug, Clone)]
pub struct SearchBuilder {
    model: Model,
    job: Job,
    spec: SpaceSpec,
    objective: Objective,
    top_k: usize,
    pareto: bool,
    constraints: Constraints,
    shard: Shard,
}

impl SearchBuilder {
    /// A search of `spec` for `model` trained as `job` (the job's global batch is replaced by
    /// each of the space's), ranking the 10 fastest plans.
    pub fn new(model: Model, job: Job, spec: SpaceSpec) -> Self {
        Self {
            model,
            job,
            spec,
            objective: Objective::Time,
            top_k: 10,
            pareto: false,
            constraints: Constraints::default(),
            shard: Shard::ALL,
        }
    }

    /// What to rank by.
    #[must_use]
    pub fn objective(mut self, objective: Objective) -> Self {
        self.objective = objective;
        self
    }

    /// How many plans to keep.
    #[must_use]
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k;
        self
    }

    /// Also compute the time/cost Pareto front of the qualifying plans.
    #[must_use]
    pub fn pareto(mut self, on: bool) -> Self {
        self.pareto = on;
        self
    }

    /// Deadline and budget.
    #[must_use]
    pub fn constraints(mut self, constraints: Constraints) -> Self {
        self.constraints = constraints;
        self
    }

    /// Evaluate only one shard of the space.
    #[must_use]
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Checks the space, builds every cluster and enumerates the layouts.
    pub fn build(self) -> Result<Search, SearchError> {
        let SearchBuilder {
            model,
            job,
            mut spec,
            objective,
            top_k,
            pareto,
            constraints,
            shard,
        } = self;
        spec.normalise()?;
        if top_k == 0 {
            return Err(SearchError::Invalid {
                field: "top",
                value: "0".into(),
                allowed: "at least one plan",
            });
        }
        if shard.index == 0 || shard.index > shard.count {
            return Err(SearchError::Shard {
                given: shard.to_string(),
            });
        }
        for (what, v) in [
            ("deadline_days", constraints.deadline_days),
            ("budget_usd", constraints.budget_usd),
        ] {
            if let Some(x) = v {
                if !(x.is_finite() && x > 0.0) {
                    return Err(SearchError::Invalid {
                        field: what,
                        value: x.to_string(),
                        allowed: "a positive finite number",
                    });
                }
            }
        }
        let unpriced = spec
            .targets
            .iter()
            .find(|t| t.price_usd_per_gpu_hour.is_none());
        if let Some(t) = unpriced {
            if constraints.budget_usd.is_some() {
                return Err(SearchError::NoPrice {
                    what: "a budget",
                    gpu: t.accelerator.id.clone(),
                });
            }
            // GPU-hours stand in for cost on one accelerator type, never across types.
            let ranks_cost =
                objective == Objective::Cost || pareto || constraints.deadline_days.is_some();
            if ranks_cost && spec.targets.len() > 1 {
                return Err(SearchError::NoPrice {
                    what: "ranking by cost across accelerators",
                    gpu: t.accelerator.id.clone(),
                });
            }
            // Cost is USD only when every accelerator has a price; otherwise every plan is
            // costed in GPU-hours, so no column mixes the two.
            for t in &mut spec.targets {
                t.price_usd_per_gpu_hour = None;
            }
        }

        let mut clusters = Vec::new();
        let mut cluster_info = Vec::new();
        for (ti, t) in spec.targets.iter().enumerate() {
            for &n in &spec.n_gpus {
                let c =
                    Cluster::new(t.accelerator.clone(), t.node.clone(), n).map_err(|source| {
                        SearchError::Cluster {
                            gpu: t.accelerator.id.clone(),
                            n_gpus: n,
                            source,
                        }
                    })?;
                cluster_info.push(ClusterInfo {
                    gpu: ti as u16,
                    nodes: c.n_nodes(),
                    price: t.price_usd_per_gpu_hour,
                });
                clusters.push(c);
            }
        }
        let jobs: Vec<Job> = spec
            .global_batch
            .iter()
            .map(|&g| Job {
                global_batch: g,
                ..job
            })
            .collect();

        let mut layouts = Vec::new();
        let mut mb_lists: Vec<Vec<u32>> = Vec::new();
        let mut mb_index: BTreeMap<(u32, u32), u32> = BTreeMap::new();
        let mut layout_mb = Vec::new();
        let max_pp = spec.max_pp.unwrap_or(u32::MAX).min(model.n_layers.max(1));
        let mut total: u64 = 0;
        for (ti, t) in spec.targets.iter().enumerate() {
            // tp stays inside the scale-up domain unless the scenario asks for more.
            let max_tp = spec.max_tp.unwrap_or(t.node.scaleup_domain.max(1));
            for (ni, &n) in spec.n_gpus.iter().enumerate() {
                let cluster = (ti * spec.n_gpus.len() + ni) as u32;
                for (ji, &g) in spec.global_batch.iter().enumerate() {
                    for tp in 1..=max_tp.min(n) {
                        if n % tp != 0
                            || model.n_heads % tp != 0
                            || !kv_layout_allowed(&spec, model.n_kv_heads, tp)
                        {
                            continue;
                        }
                        for &cp in &spec.cp {
                            if (n / tp) % cp != 0 {
                                continue;
                            }
                            let rest = n / tp / cp;
                            for pp in space::divisors(rest) {
                                if pp > max_pp {
                                    break;
                                }
                                let dp = rest / pp;
                                for (ep, etp) in space::eps(&spec, &model, tp, dp * cp) {
                                    let key = (g, dp);
                                    let mbi = *mb_index.entry(key).or_insert_with(|| {
                                        mb_lists.push(space::micro_batches(
                                            &spec.micro_batch,
                                            g,
                                            dp,
                                        ));
                                        (mb_lists.len() - 1) as u32
                                    });
                                    let n_mb = mb_lists[mbi as usize].len();
                                    let strategies = space::count_strategies(&spec, n_mb, pp, tp);
                                    total += strategies;
                                    layouts.push(Layout {
                                        cluster,
                                        job: ji as u32,
                                        dp,
                                        tp,
                                        pp,
                                        cp,
                                        ep,
                                        etp,
                                        strategies,
                                    });
                                    layout_mb.push(mbi);
                                    if layouts.len() as u64 > MAX_LAYOUTS {
                                        return Err(SearchError::TooLarge {
                                            layouts: layouts.len() as u64,
                                            limit: MAX_LAYOUTS,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let work: Vec<Work> = layouts
            .into_iter()
            .zip(layout_mb)
            .enumerate()
            .filter(|(i, _)| shard.holds(*i))
            .map(|(_, (layout, mb))| Work { layout, mb })
            .collect();
        let shard_strategies = work.iter().map(|w| w.layout.strategies).sum();
        Ok(Search {
            model,
            gpus: spec
                .targets
                .iter()
                .map(|t| t.accelerator.id.clone())
                .collect(),
            max_n_gpus: spec.n_gpus.last().copied().unwrap_or(0),
            spec,
            clusters,
            cluster_info,
            jobs,
            mb_lists,
            work,
            objective,
            top_k,
            pareto,
            constraints,
            shard,
            total_strategies: total,
            shard_strategies,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct ClusterInfo {
    gpu: u16,
    nodes: u32,
    price: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Work {
    layout: Layout,
    mb: u32,
}

/// A built search: immutable, reusable, and safe to run from several threads.
#[derive(Debug, Clone)]
pub struct Search {
    model: Model,
    gpus: Vec<String>,
    max_n_gpus: u32,
    spec: SpaceSpec,
    clusters: Vec<Cluster>,
    cluster_info: Vec<ClusterInfo>,
    jobs: Vec<Job>,
    mb_lists: Vec<Vec<u32>>,
    work: Vec<Work>,
    objective: Objective,
    top_k: usize,
    pareto: bool,
    constraints: Constraints,
    shard: Shard,
    total_strategies: u64,
    shard_strategies: u64,
}

/// Counts of a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Strategies of the (sharded) space, whether estimated or ruled out by a rule.
    pub strategies: u64,
    /// Strategies passed to `estimate`.
    pub estimated: u64,
    /// Strategies that fit in memory.
    pub feasible: u64,
    /// Feasible strategies meeting the deadline and budget.
    pub qualifying: u64,
    /// Rejected strategies by reason, largest count first.
    pub rejections: Vec<(&'static str, u64)>,
}

/// What a sweep found.
#[derive(Debug, Clone)]
pub struct SweepResult {
    /// Accelerator ids; `Plan::gpu` indexes this list.
    pub gpus: Vec<String>,
    /// The ranking's objective.
    pub objective: Objective,
    /// The best qualifying plans, best first.
    pub plans: Vec<Plan>,
    /// The time/cost Pareto front of the qualifying plans, in objective order (when asked for).
    pub front: Option<Vec<Plan>>,
    /// The fastest feasible plans, whether they qualify or not (fastest first).
    pub fastest: Vec<Plan>,
    /// The cheapest feasible plans, whether they qualify or not (cheapest first).
    pub cheapest: Vec<Plan>,
    /// Deadline and budget applied.
    pub constraints: Constraints,
    /// Largest GPU count of the space.
    pub max_n_gpus: u32,
    /// Counts.
    pub stats: Stats,
}

impl SweepResult {
    /// Why nothing qualified and what it would take, when nothing did.
    pub fn shortfall(&self) -> Option<Shortfall> {
        if !self.plans.is_empty() {
            return None;
        }
        Some(Shortfall::new(self))
    }
}

/// One worker's partial result.
struct Acc {
    top: TopK,
    front: Option<ParetoFront>,
    fastest: TopK,
    cheapest: TopK,
    counts: Counts,
    strategies: u64,
    estimated: u64,
    feasible: u64,
    qualifying: u64,
}

impl Acc {
    fn new(s: &Search) -> Self {
        Self {
            top: TopK::new(s.objective, s.top_k),
            front: s.pareto.then(ParetoFront::new),
            fastest: TopK::new(Objective::Time, CLOSEST),
            cheapest: TopK::new(Objective::Cost, CLOSEST),
            counts: Counts::new(),
            strategies: 0,
            estimated: 0,
            feasible: 0,
            qualifying: 0,
        }
    }

    fn merge(mut self, other: &Acc) -> Self {
        self.top.merge(&other.top);
        if let (Some(a), Some(b)) = (&mut self.front, &other.front) {
            a.merge(b);
        }
        self.fastest.merge(&other.fastest);
        self.cheapest.merge(&other.cheapest);
        self.counts.merge(&other.counts);
        self.strategies += other.strategies;
        self.estimated += other.estimated;
        self.feasible += other.feasible;
        self.qualifying += other.qualifying;
        self
    }
}

impl Search {
    /// Strategies in the whole space (every shard).
    pub fn total_strategies(&self) -> u64 {
        self.total_strategies
    }

    /// Strategies in this search's shard.
    pub fn strategies(&self) -> u64 {
        self.shard_strategies
    }

    /// The shard this search evaluates.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Accelerator ids, in the order `Plan::gpu` indexes.
    pub fn gpus(&self) -> &[String] {
        &self.gpus
    }

    /// Runs the sweep on `threads` worker threads (`None`: one per core).
    pub fn run(&self, threads: Option<usize>) -> Result<SweepResult, SearchError> {
        self.run_with_progress(threads, &|_| {})
    }

    /// Runs the sweep, calling `progress` with the number of strategies each finished layout
    /// held (from worker threads, so it must be cheap and thread-safe).
    pub fn run_with_progress(
        &self,
        threads: Option<usize>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<SweepResult, SearchError> {
        let mut pool = rayon::ThreadPoolBuilder::new();
        if let Some(n) = threads {
            pool = pool.num_threads(n.max(1));
        }
        let pool = pool.build().map_err(|source| SearchError::ThreadPool {
            threads: threads.unwrap_or(0),
            source,
        })?;
        let acc = pool.install(|| {
            self.work
                .par_iter()
                .fold(
                    || Acc::new(self),
                    |mut acc, w| {
                        self.sweep_layout(w, &mut acc);
                        progress(w.layout.strategies);
                        acc
                    },
                )
                .reduce(|| Acc::new(self), |a, b| a.merge(&b))
        });
        Ok(self.finish(acc))
    }

    fn finish(&self, acc: Acc) -> SweepResult {
        let front = acc.front.map(|f| {
            let mut v = f.into_plans();
            v.sort_by(|a, b| compare(self.objective, a, b));
            v
        });
        SweepResult {
            gpus: self.gpus.clone(),
            objective: self.objective,
            plans: acc.top.into_plans(),
            front,
            fastest: acc.fastest.into_plans(),
            cheapest: acc.cheapest.into_plans(),
            constraints: self.constraints,
            max_n_gpus: self.max_n_gpus,
            stats: Stats {
                strategies: acc.strategies,
                estimated: acc.estimated,
                feasible: acc.feasible,
                qualifying: acc.qualifying,
                rejections: acc.counts.sorted(),
            },
        }
    }

    /// Evaluates every strategy of one layout. Rules that hold for a whole group of strategies
    /// (a micro-batch that does not divide the batch, too many model chunks) reject the group
    /// at once with the reason `Strategy::check` would give, in the same order it checks them;
    /// everything else goes through `estimate`.
    fn sweep_layout(&self, w: &Work, acc: &mut Acc) {
        let l = &w.layout;
        acc.strategies += l.strategies;
        let cluster = &self.clusters[l.cluster as usize];
        let info = self.cluster_info[l.cluster as usize];
        let job = &self.jobs[l.job as usize];
        let spec = &self.spec;
        let model = &self.model;
        let mbs = &self.mb_lists[w.mb as usize];
        let sps = space::sps(&spec.sequence_parallel, l.tp);
        let inner = (spec.zero.len() * spec.recompute.len() * sps.len()) as u64;
        if model.ffn % l.tp != 0 {
            acc.counts.add("tp_ffn", l.strategies);
            return;
        }
        for vpp in space::vpps(&spec.vpp, l.pp) {
            for &mb in mbs {
                let per_step = u64::from(l.dp) * u64::from(mb);
                let g = u64::from(job.global_batch);
                if g % per_step != 0 || g < per_step {
                    acc.counts.add("batch", inner);
                    continue;
                }
                let m = g / per_step;
                if vpp > 1 && m % u64::from(l.pp) != 0 {
                    acc.counts.add("interleaving", inner);
                    continue;
                }
                if job.seq_len % l.cp != 0 {
                    acc.counts.add("cp_seq", inner);
                    continue;
                }
                for &zero in &spec.zero {
                    for &recompute in &spec.recompute {
                        if recompute == Recompute::Selective
                            && spec.flash_attention
                            && spec.recompute.contains(&Recompute::None)
                            && job.framework_for(zero, l.pp) != Some(Framework::Pytorch)
                        {
                            // A fused attention kernel stores no scores, so selective
                            // recomputation recomputes nothing: the plan is the `none` plan
                            // (PyTorch's op-level selective checkpointing is a plan of its own).
                            acc.counts.add(SELECTIVE_IS_NONE, sps.len() as u64);
                            continue;
                        }
                        for &sequence_parallel in sps {
                            if l.etp.is_some_and(|e| e < l.tp) && !sequence_parallel {
                                // Whole experts take their tokens from the sequence shard.
                                acc.counts.add("etp", 1);
                                continue;
                            }
                            let s = Strategy {
                                dp: l.dp,
                                tp: l.tp,
                                pp: l.pp,
                                cp: l.cp,
                                ep: l.ep,
                                etp: l.etp,
                                vpp,
                                micro_batch: mb,
                                zero,
                                recompute,
                                sequence_parallel,
                                flash_attention: spec.flash_attention,
                                tp_overlap: spec.tp_comm_overlap && l.tp > 1 && sequence_parallel,
                                ep_overlap: spec.ep_comm_overlap && l.ep > 1,
                                // DeepSpeed below ZeRO-3 exposes it whatever this says.
                                dp_overlap: spec.dp_comm_overlap,
                                ep_dispatcher: if l.ep > 1 {
                                    spec.ep_dispatcher
                                } else {
                                    EpDispatcher::AllToAll
                                },
                            };
                            self.offer(cluster, info, job, s, acc);
                        }
                    }
                }
            }
        }
    }

    #[inline]
    fn offer(&self, cluster: &Cluster, info: ClusterInfo, job: &Job, s: Strategy, acc: &mut Acc) {
        acc.estimated += 1;
        match estimate(&self.model, cluster, job, &s) {
            Err(why) => acc.counts.add(why.reason(), 1),
            Ok(e) => {
                let plan = Plan::new(info.gpu, cluster.n_gpus, info.nodes, job, s, &e, info.price);
                if !plan.is_finite() {
                    acc.counts.add(NON_FINITE, 1);
                    return;
                }
                acc.feasible += 1;
                acc.fastest.offer(&plan);
                acc.cheapest.offer(&plan);
                if self.constraints.admit(&plan) {
                    acc.qualifying += 1;
                    acc.top.offer(&plan);
                    if let Some(f) = &mut acc.front {
                        f.offer(&plan);
                    }
                }
            }
        }
    }
}
/// Whether the sweep tries `tp` for a model with `kv_heads` key/value heads: tp dividing them,
/// or, when the scenario allows replicated heads, a multiple of them.
fn kv_layout_allowed(spec: &SpaceSpec, kv_heads: u32, tp: u32) -> bool {
    if spec.replicate_kv_heads {
        trainplan_parallel::kv_heads_split_or_replicate(kv_heads, tp)
    } else {
        kv_heads % tp == 0
    }
}
