//! `trainplan evaluate` and `trainplan explain`: the one strategy a scenario gives, priced.

use crate::output::{emit, table, Format};
use anyhow::Context;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use trainplan_hardware::{Cluster, Group};
use trainplan_io::scenario::Scenario;
use trainplan_io::Database;
use trainplan_parallel::{evaluate, Bottleneck, Estimate, Infeasible, Job, Strategy};
use trainplan_units::{Bytes, GIB};

/// Arguments of `trainplan evaluate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file with [model], [cluster] (including n_gpus), [job] and [strategy]; see
    /// scenarios/README.md.
    pub scenario: PathBuf,
    /// Output format (default: table on a terminal, csv in a pipe or with -o).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE (atomically) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Arguments of `trainplan explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Scenario file with [model], [cluster] (including n_gpus), [job] and [strategy].
    pub scenario: PathBuf,
}

/// Everything `evaluate` reports, flat, with units in the names.
#[derive(Debug, Serialize)]
struct Report {
    scenario: String,
    model: String,
    params: f64,
    gpu: String,
    node: String,
    n_gpus: u32,
    nodes: u32,
    dp: u32,
    tp: u32,
    pp: u32,
    cp: u32,
    ep: u32,
    vpp: u32,
    micro_batch: u32,
    grad_accum: u32,
    global_batch: u32,
    seq_len: u32,
    zero: u8,
    recompute: &'static str,
    sequence_parallel: bool,
    flash_attention: bool,
    tp_comm_overlap: bool,
    precision: &'static str,
    mem_weights_gib: f64,
    mem_gradients_gib: f64,
    mem_optimizer_gib: f64,
    mem_activations_gib: f64,
    mem_comm_buffers_gib: f64,
    mem_reserve_gib: f64,
    mem_total_gib: f64,
    mem_capacity_gib: f64,
    fits: bool,
    compute_s: f64,
    tp_comm_s: f64,
    cp_comm_s: f64,
    ep_comm_s: f64,
    pp_comm_s: f64,
    dp_comm_s: f64,
    bubble_s: f64,
    optimizer_s: f64,
    step_time_s: f64,
    tokens_per_s: f64,
    tokens_per_s_per_gpu: f64,
    mfu: f64,
    hfu: f64,
    bottleneck: &'static str,
    tokens: f64,
    train_days: f64,
    gpu_hours: f64,
    cost_usd: Option<f64>,
    /// Ways each expert is split (MoE; tp unless the scenario sets etp).
    etp: u32,
    /// The expert all-to-all overlaps another micro-batch's computation (in effect).
    ep_comm_overlap: bool,
    /// How the expert all-to-all moves tokens (`alltoall` or `deepep`).
    ep_dispatcher: &'static str,
    /// How the model states are held below ZeRO-3 (`[job] optimizer`).
    optimizer: &'static str,
    /// The framework whose conventions were priced (`[job] framework`, or `pytorch` implied by
    /// an FSDP layout); null when neither.
    framework: Option<&'static str>,
    /// The data-parallel reduction hides behind backward (in effect: ZeRO-3, or
    /// `dp_comm_overlap` on a framework that can).
    dp_comm_overlap: bool,
    /// How the loss is computed (`[job] cross_entropy`), which sizes the logits' memory.
    cross_entropy: &'static str,
}

fn report(sc: &Scenario, cluster: &Cluster, s: &Strategy, e: &Estimate) -> Report {
    let m = &e.memory;
    let t = &e.time;
    let train_s = e.train_time(sc.job.tokens).get();
    let gpu_hours = train_s / 3600.0 * f64::from(cluster.n_gpus);
    Report {
        scenario: sc.path.clone(),
        model: sc.model_name.clone(),
        params: sc.model.params().total,
        gpu: cluster.accelerator.id.clone(),
        node: cluster.node.id.clone(),
        n_gpus: cluster.n_gpus,
        nodes: cluster.n_nodes(),
        dp: s.dp,
        tp: s.tp,
        pp: s.pp,
        cp: s.cp,
        ep: s.ep,
        vpp: s.vpp,
        micro_batch: s.micro_batch,
        grad_accum: e.grad_accum,
        global_batch: sc.job.global_batch,
        seq_len: sc.job.seq_len,
        zero: s.zero,
        recompute: s.recompute.as_str(),
        sequence_parallel: s.sp_active(),
        flash_attention: s.flash_attention,
        tp_comm_overlap: s.tp_overlap_active(),
        precision: sc.job.precision.as_str(),
        mem_weights_gib: m.weights.gib(),
        mem_gradients_gib: m.gradients.gib(),
        mem_optimizer_gib: m.optimizer.gib(),
        mem_activations_gib: m.activations.gib(),
        mem_comm_buffers_gib: m.comm_buffers.gib(),
        mem_reserve_gib: m.reserve.gib(),
        mem_total_gib: m.total.gib(),
        mem_capacity_gib: m.capacity.gib(),
        fits: e.fits(),
        compute_s: t.compute.get(),
        tp_comm_s: t.tp_comm.get(),
        cp_comm_s: t.cp_comm.get(),
        ep_comm_s: t.ep_comm.get(),
        pp_comm_s: t.pp_comm.get(),
        dp_comm_s: t.dp_comm.get(),
        bubble_s: t.bubble.get(),
        optimizer_s: t.optimizer.get(),
        step_time_s: t.step.get(),
        tokens_per_s: e.tokens_per_s,
        tokens_per_s_per_gpu: e.tokens_per_s_per_gpu,
        mfu: e.mfu,
        hfu: e.hfu,
        bottleneck: e.bottleneck.as_str(),
        tokens: sc.job.tokens,
        train_days: train_s / 86_400.0,
        gpu_hours,
        cost_usd: sc.price_usd_per_gpu_hour.map(|p| p * gpu_hours),
        etp: s.expert_tp(),
        ep_comm_overlap: s.ep_overlap_active(&sc.job),
        ep_dispatcher: s.ep_dispatcher.as_str(),
        optimizer: sc.job.optimizer.as_str(),
        framework: s
            .framework(&sc.job)
            .map(trainplan_parallel::Framework::as_str),
        dp_comm_overlap: s.dp_comm_overlaps(&sc.job),
        cross_entropy: s.cross_entropy(&sc.job).as_str(),
    }
}

/// Loads the scenario and prices its strategy.
fn load(
    path: &std::path::Path,
    db: &Database,
) -> anyhow::Result<(Scenario, Cluster, Strategy, Estimate)> {
    let sc = Scenario::load(path, db)?;
    let strategy = sc.strategy.with_context(|| {
        format!(
            "{}: the scenario has no [strategy] section; evaluate prices one strategy (use `trainplan sweep` to search the [sweep] space, or `trainplan explain` for its best plan)",
            sc.path
        )
    })?;
    let cluster = sc.fixed_cluster()?;
    let estimate = evaluate(&sc.model, &cluster, &sc.job, &strategy).map_err(|e| {
        let (section, key) = infeasible_field(&e);
        let at = trainplan_io::tomlfile::locate(&sc.path, &sc.text, section, key);
        anyhow::anyhow!("{at}: field `{section}.{key}`: [strategy] cannot run: {e}")
    })?;
    Ok((sc, cluster, strategy, estimate))
}

/// The scenario field to point at when a strategy cannot run: the one a user would change first
/// (the line of `[strategy]` itself when the field was left to its default).
fn infeasible_field(e: &Infeasible) -> (&'static str, &'static str) {
    match e {
        Infeasible::GpuCount { .. } => ("strategy", "dp"),
        Infeasible::ZeroDegree { field } => ("strategy", field),
        Infeasible::TpHeads { .. } | Infeasible::TpKvHeads { .. } | Infeasible::TpFfn { .. } => {
            ("strategy", "tp")
        }
        Infeasible::TooFewLayers { .. } => ("strategy", "pp"),
        Infeasible::Interleaving { .. } => ("strategy", "vpp"),
        Infeasible::Batch { .. } => ("strategy", "micro_batch"),
        Infeasible::CpSeq { .. } => ("strategy", "cp"),
        Infeasible::Ep { .. } | Infeasible::EpDense { .. } => ("strategy", "ep"),
        Infeasible::Etp { .. } | Infeasible::EtpDense { .. } | Infeasible::EtpNeedsSp { .. } => {
            ("strategy", "etp")
        }
        Infeasible::ZeroStage { .. } => ("strategy", "zero"),
        Infeasible::NoFp8 => ("job", "precision"),
        Infeasible::SeqLen { .. } => ("job", "seq_len"),
        // Out of memory and anything newer: recomputation is the first memory lever.
        _ => ("strategy", "recompute"),
    }
}

/// The experts' placement, for the layout line of `explain` (empty for a dense layout).
fn expert_layout(s: &Strategy) -> String {
    if s.ep == 1 && s.expert_tp() == s.tp {
        return String::new();
    }
    if s.expert_tp() == s.tp {
        format!(
            ", experts spread over {} ranks (ep, within dp × cp){}",
            s.ep,
            if s.tp > 1 {
                " and split tp ways like the dense layers"
            } else {
                ""
            }
        )
    } else {
        let split = match s.expert_tp() {
            1 => "kept whole (etp 1)".to_string(),
            e => format!("split {e} ways (etp)"),
        };
        format!(
            ", experts spread over {} ranks (ep) and {split}, drawn from tp × cp × dp (MoE parallel folding), each held by {} rank(s)",
            s.ep,
            s.expert_dp()
        )
    }
}

fn g(x: f64) -> String {
    format!("{x:.2}")
}

pub fn run(args: &Args, db: &Database) -> anyhow::Result<()> {
    let (sc, cluster, s, e) = load(&args.scenario, db)?;
    let r = report(&sc, &cluster, &s, &e);
    let bytes = match Format::or_default(args.format, args.output.as_ref()) {
        Format::Json => {
            let mut t = serde_json::to_string_pretty(&r)?;
            t.push('\n');
            t.into_bytes()
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.serialize(&r)?;
            w.into_inner()
                .map_err(|e| anyhow::anyhow!("csv buffer: {e}"))?
        }
        Format::Table => {
            let mut out = format!(
                "{} on {} × {} ({} nodes of {}): dp {} tp {} pp {} cp {} ep {} vpp {}, micro-batch {} × {} accumulation, ZeRO-{}, recompute {}{}\n\n",
                r.model, r.n_gpus, r.gpu, r.nodes, r.node, r.dp, r.tp, r.pp, r.cp, r.ep, r.vpp, r.micro_batch, r.grad_accum, r.zero, r.recompute,
                if r.sequence_parallel { ", sequence parallel" } else { "" }
            );
            let mem = vec![
                vec!["memory per GPU".into(), "GiB".into()],
                vec!["weights".into(), g(r.mem_weights_gib)],
                vec!["gradients".into(), g(r.mem_gradients_gib)],
                vec!["optimizer states".into(), g(r.mem_optimizer_gib)],
                vec!["activations".into(), g(r.mem_activations_gib)],
                vec!["communication buffers".into(), g(r.mem_comm_buffers_gib)],
                vec!["reserve".into(), g(r.mem_reserve_gib)],
                vec!["total".into(), g(r.mem_total_gib)],
                vec![
                    format!(
                        "capacity ({})",
                        if r.fits { "fits" } else { "DOES NOT FIT" }
                    ),
                    g(r.mem_capacity_gib),
                ],
            ];
            out.push_str(&table(&mem));
            out.push('\n');
            let pct = |x: f64| format!("{:.1}", 100.0 * x / r.step_time_s);
            let time = vec![
                vec!["time per step".into(), "s".into(), "%".into()],
                vec![
                    "compute".into(),
                    format!("{:.3}", r.compute_s),
                    pct(r.compute_s),
                ],
                vec![
                    "tensor-parallel comm (exposed)".into(),
                    format!("{:.3}", r.tp_comm_s),
                    pct(r.tp_comm_s),
                ],
                vec![
                    "context-parallel comm (exposed)".into(),
                    format!("{:.3}", r.cp_comm_s),
                    pct(r.cp_comm_s),
                ],
                vec![
                    "expert-parallel all-to-all".into(),
                    format!("{:.3}", r.ep_comm_s),
                    pct(r.ep_comm_s),
                ],
                vec![
                    "pipeline comm".into(),
                    format!("{:.3}", r.pp_comm_s),
                    pct(r.pp_comm_s),
                ],
                vec![
                    "data-parallel comm (exposed)".into(),
                    format!("{:.3}", r.dp_comm_s),
                    pct(r.dp_comm_s),
                ],
                vec![
                    "pipeline bubble".into(),
                    format!("{:.3}", r.bubble_s),
                    pct(r.bubble_s),
                ],
                vec![
                    "optimizer step".into(),
                    format!("{:.3}", r.optimizer_s),
                    pct(r.optimizer_s),
                ],
                vec![
                    "step".into(),
                    format!("{:.3}", r.step_time_s),
                    "100.0".into(),
                ],
            ];
            out.push_str(&table(&time));
            let _ = write!(
                out,
                "\ntokens/s {:.0} ({:.1} per GPU), MFU {:.1}%, HFU {:.1}%, bottleneck: {}\n{:.3e} tokens: {:.1} days, {:.0} GPU-hours{}\n",
                r.tokens_per_s,
                r.tokens_per_s_per_gpu,
                100.0 * r.mfu,
                100.0 * r.hfu,
                r.bottleneck,
                r.tokens,
                r.train_days,
                r.gpu_hours,
                r.cost_usd.map_or_else(String::new, |c| format!(", ${c:.0}"))
            );
            if let Some(d) = sc.deadline_days {
                let verdict = if r.train_days <= d { "met" } else { "missed" };
                let _ = writeln!(out, "deadline of {d} days: {verdict}");
            }
            if let (Some(b), Some(c)) = (sc.budget_usd, r.cost_usd) {
                let verdict = if c <= b { "within" } else { "over" };
                let _ = writeln!(out, "budget of ${b:.0}: {verdict}");
            }
            out.into_bytes()
        }
    };
    emit(args.output.as_ref(), &bytes)?;
    does_not_fit(&sc, &e)
}

/// Exit code 3 for a strategy that does not fit, after its numbers were printed: the request
/// was valid, but no plan satisfies it.
fn does_not_fit(sc: &Scenario, e: &Estimate) -> anyhow::Result<()> {
    if e.fits() {
        return Ok(());
    }
    Err(crate::NoPlan(format!(
        "{}: the [strategy] does not fit: it needs {:.1} GiB per GPU and the accelerator has {:.1} GiB; raise the ZeRO stage, recompute more, or split the model further (see `trainplan explain`)",
        sc.path,
        e.memory.total.gib(),
        e.memory.capacity.gib()
    ))
    .into())
}

fn gib(b: Bytes) -> String {
    format!("{:.2} GiB", b.get() / GIB)
}

/// How gradients are held, in words, matching `trainplan_parallel`'s memory model.
/// Where an MoE model's dense layers stand, for the model line: `total` of its `n_layers` are
/// dense, the first `leading` and then all but one in `freq`; empty when none is.
fn dense_layers_phrase(n_layers: u32, total: u32, leading: u32, freq: u32, ffn: u32) -> String {
    if total == 0 {
        return String::new();
    }
    let place = match (leading, freq) {
        (k, 1) => format!("the first {k}"),
        (0, f) => format!("all but one in {f}"),
        (k, f) => format!("the first {k}, then all but one in {f}"),
    };
    format!("; {total} of the {n_layers} layers are dense ({place}, FFN {ffn})")
}

fn gradient_layout(job: &Job, s: &Strategy) -> String {
    let shard = s.dp * s.cp;
    match s.zero {
        3 => format!("{} bytes per parameter, sharded over dp × cp = {shard} (ZeRO-3, Rajbhandari et al. 2020)", job.grad_bytes),
        2 if s.fsdp_with_pipeline() => format!(
            "{} bytes per parameter kept unsharded until the step's last micro-batch, plus the reduced 1/{shard} shard (FSDP under a pipeline schedule: PyTorch pipelining turns gradient sync off until then)",
            job.grad_bytes
        ),
        _ if s.megatron_main_grads(job) => format!(
            "one {}-byte main-gradient buffer per parameter, no 16-bit copy (Megatron's distributed optimizer, Megatron-LM dist_optimizer.md)",
            job.grad_bytes
        ),
        2 => format!(
            "16-bit gradients plus a {}-byte accumulation buffer per parameter, sharded over dp × cp = {shard} (ZeRO-2, Rajbhandari et al. 2020)",
            job.grad_bytes
        ),
        1 if job.precision == trainplan_parallel::Precision::Fp16 => format!(
            "16-bit gradients, plus the {}-byte copy of this rank's 1/{shard} shard for the update (Rajbhandari et al. 2020)",
            job.grad_bytes
        ),
        _ => format!(
            "16-bit gradients plus a {}-byte accumulation buffer per parameter (DeepSpeed's BF16 optimizer; Rajbhandari et al. 2020)",
            job.grad_bytes
        ),
    }
}

/// Writes the explanation of one plan.
pub(crate) fn explanation(sc: &Scenario, c: &Cluster, s: &Strategy, e: &Estimate) -> String {
    let mut o = String::new();
    let m = &sc.model;
    let p = m.params();
    let job: &Job = &sc.job;
    let a = &c.accelerator;
    let _ = writeln!(
        o,
        "# {} on {} × {} ({})\n",
        sc.model_name, c.n_gpus, a.name, c.node.name
    );
    let _ = writeln!(
        o,
        "Model: {} layers, hidden {}, {} heads of {} ({}), FFN {} ({}){}, vocab {}: {:.2}B parameters (embedding {:.2}B{}).",
        m.n_layers,
        m.hidden,
        m.n_heads,
        m.head_dim,
        match m.mla {
            Some(mla) => format!(
                "multi-head latent attention: a {}-rank key/value latent{}, {} of each query/key head rotary, values {} wide",
                mla.kv_lora_rank,
                if mla.q_lora_rank > 0 {
                    format!(" and a {}-rank query latent", mla.q_lora_rank)
                } else {
                    String::new()
                },
                mla.qk_rope_head_dim,
                mla.v_head_dim
            ),
            None => format!("{} KV", m.n_kv_heads),
        },
        m.ffn,
        m.ffn_act.as_str(),
        match m.moe {
            Some(moe) => format!(
                " per expert, {} experts with {} routed per token{}{}",
                moe.experts,
                moe.top_k,
                if moe.shared_ffn > 0 {
                    format!(" beside a {}-wide shared expert", moe.shared_ffn)
                } else {
                    String::new()
                },
                dense_layers_phrase(
                    m.n_layers,
                    m.dense_layers_total(),
                    moe.dense_layers,
                    moe.layer_freq,
                    moe.dense_ffn
                )
            ),
            None => String::new(),
        },
        m.vocab,
        p.total / 1e9,
        p.embedding / 1e9,
        if m.moe.is_some() {
            format!("; {:.2}B active per token", p.active / 1e9)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "Layout: dp {} × tp {} × pp {} × cp {} = {} GPUs{}; {} micro-batch(es) of {} sequences per step (global batch {} = dp × micro-batch × accumulation){}.\n",
        s.dp,
        s.tp,
        s.pp,
        s.cp,
        c.n_gpus,
        expert_layout(s),
        e.grad_accum,
        s.micro_batch,
        job.global_batch,
        s.framework(job).map_or_else(String::new, |f| format!(
            "; priced with {}'s conventions ({})",
            match f {
                trainplan_parallel::Framework::Megatron => "Megatron",
                trainplan_parallel::Framework::Deepspeed => "DeepSpeed",
                trainplan_parallel::Framework::Pytorch => "PyTorch",
            },
            if job.framework.is_some() {
                format!("framework = \"{}\"", f.as_str())
            } else {
                "FSDP is PyTorch's unless [job] framework says otherwise".to_string()
            }
        ))
    );

    let mem = &e.memory;
    let layers = s.max_layers_per_rank(m);
    let _ = writeln!(
        o,
        "## Memory per GPU: {} of {} ({:.0}%)",
        gib(mem.total),
        gib(mem.capacity),
        100.0 * mem.total.get() / mem.capacity.get()
    );
    let _ = writeln!(
        o,
        "- The busiest pipeline rank holds {layers} layers: {:.2}B parameters per GPU{}.",
        s.params_per_gpu(m) / 1e9,
        if s.tp > 1 {
            format!(", each weight matrix split {} ways by tp", s.tp)
        } else {
            String::new()
        }
    );
    if s.tp > m.n_kv_heads {
        let _ = writeln!(
            o,
            "- tp {} exceeds the {} key/value head(s): each rank keeps a whole copy of the head its queries share ({:.1}M parameters per layer beyond its 1/tp share, as BigCode's Megatron-LM runs multi-query attention), and the {} copies of each head all-reduce their gradients once per step.",
            s.tp,
            m.n_kv_heads,
            m.kv_replica_params_per_rank(s.tp) / 1e6,
            s.tp / m.n_kv_heads.max(1)
        );
    }
    let _ = writeln!(
        o,
        "- weights {}: 2 bytes per parameter in 16-bit{}.",
        gib(mem.weights),
        if s.zero >= 3 {
            ", sharded away by ZeRO-3 (gathered a layer at a time)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "- gradients {}: {}.",
        gib(mem.gradients),
        gradient_layout(job, s),
    );
    let _ = writeln!(
        o,
        "- optimizer states {}: 12 bytes per parameter (fp32 master + Adam m and v){}.",
        gib(mem.optimizer),
        if s.zero >= 1 {
            let experts = if m.moe.is_some() && (s.ep > 1 || s.expert_tp() != s.tp) {
                format!(
                    " (expert weights over their replicas, tp·cp·dp / (etp·ep) = {})",
                    s.expert_dp()
                )
            } else {
                String::new()
            };
            format!(", divided over dp × cp = {}{experts}", s.dp * s.cp)
        } else {
            " — not sharded (ZeRO-0)".into()
        }
    );
    let _ = writeln!(
        o,
        "- activations {}: {} bytes per layer (Korthikanti et al. 2022, split by tensor for this model's attention and FFN{}) with recompute = {}{}, × {} layers × {} micro-batch(es) in flight (1F1B keeps pp in flight){}.",
        gib(mem.activations),
        match s.effective_recompute() {
            _ if s.op_level_selective(job) => "2·s·b·(h + 2·q + kv + saved FFN outputs) (the layer input, Q, V, the attention output and the FFN's first product, plus SwiGLU's down product: every other product, as PyTorch's op-level selective checkpointing saves them)",
            trainplan_parallel::Recompute::Full => "2·s·b·h (each layer's input only)",
            _ if s.flash_attention => "s·b·h·34 (the 5·a·s²·b attention scores never stored by the fused kernel)",
            trainplan_parallel::Recompute::Selective => "s·b·h·34 (the 5·a·s²·b attention scores recomputed)",
            trainplan_parallel::Recompute::None => "s·b·h·(34 + 5·a·s/h)",
        },
        if job.precision == trainplan_parallel::Precision::Fp8
            && s.effective_recompute() != trainplan_parallel::Recompute::Full
        {
            "; fp8 linear layers keep their inputs as 1-byte casts, Transformer Engine's _Linear"
        } else {
            ""
        },
        s.recompute.as_str(),
        if s.sp_active() { ", divided by tp under sequence parallelism" } else { "" },
        layers,
        s.pp.min(e.grad_accum),
        if s.vpp > 1 { format!(", × (1 + (p-1)/(p·v)) for {} virtual stages", s.vpp) } else { String::new() }
    );
    let loss = s.cross_entropy(job);
    let loss_bytes = m.logits_bytes(job.seq_len / s.cp, s.micro_batch, s.tp, loss);
    let logits = loss_bytes.get() / loss.bytes_per_logit();
    let _ = writeln!(
        o,
        "  {} {}: s·b·V/tp = {:.0}M logits at {} bytes each ({}; [job] cross_entropy = \"{}\"{}).",
        if s.pp > 1 { "The last pipeline stage holds the loss's logits beside its layers," } else { "Of these, the loss's logits take" },
        gib(loss_bytes),
        logits / 1e6,
        loss.bytes_per_logit(),
        match loss {
            trainplan_parallel::CrossEntropy::VocabParallel => "16-bit logits and the fp32 softmax, Megatron's vocab-parallel cross entropy",
            trainplan_parallel::CrossEntropy::Fp32Eager => "the fp32 log-softmax and two fp32 gradients alive at once in backward, PyTorch's eager cross entropy on fp32-cast logits",
            trainplan_parallel::CrossEntropy::Fused => "16-bit logits and their 16-bit gradient, a fused or compiled loss",
        },
        loss.as_str(),
        if job.cross_entropy.is_some() { "" } else { ", the framework's" }
    );
    if s.keeps_stage_outputs(job) {
        let _ = writeln!(
            o,
            "  Each stage also keeps its output (2·s·b·h/tp bytes) for every chunk forward in flight until its backward, as {}.",
            match s.framework(job) {
                Some(trainplan_parallel::Framework::Deepspeed) => "DeepSpeed's pipeline engine does",
                Some(trainplan_parallel::Framework::Pytorch) => "PyTorch's pipeline schedules do",
                _ => "DeepSpeed's and PyTorch's pipeline engines do; Megatron-LM frees it once sent (optimizer = \"megatron\" or framework = \"megatron\")",
            }
        );
    }
    if s.fsdp_with_pipeline() && e.grad_accum > 1 {
        let _ = writeln!(
            o,
            "  The last stage keeps the 16-bit logits (2·s·b·V/tp bytes) of all {} micro-batches until the step ends, where PyTorch's pipeline schedules merge them.",
            e.grad_accum
        );
    }
    let _ = writeln!(
        o,
        "- communication buffers {}{}, reserve {} (runtime context and allocator fragmentation).\n",
        gib(mem.comm_buffers),
        if s.has_gradient_bucket(job) {
            " (including a ZeRO gradient-reduction bucket of up to 5e8 16-bit elements, DeepSpeed's default)"
        } else if s.zero == 3 {
            " (gathered layer weights and unsharded layer gradients)"
        } else {
            ""
        },
        gib(mem.reserve)
    );

    let t = &e.time;
    let step = t.step.get();
    let share = |x: f64| 100.0 * x / step;
    let _ = writeln!(o, "## Time per step: {step:.3} s");
    let peak = c.peak_or_bf16(job.precision.matmul_dtype());
    let _ = writeln!(
        o,
        "- compute {:.3} s ({:.0}%): {:.3e} FLOPs per token × {} tokens per step / {} GPUs, at {:.0}% of the {:.0} TFLOP/s {} peak for large products (fitted), less for small shapes; attention at {:.0}% of the 16-bit peak (fitted, FlashAttention-2 class){}{}.",
        t.compute.get(),
        share(t.compute.get()),
        e.model_flops_per_token.get(),
        u64::from(job.global_batch) * u64::from(job.seq_len),
        c.n_gpus,
        100.0
            * if job.precision == trainplan_parallel::Precision::Fp8 {
                a.efficiency.fp8_matmul_fraction
            } else {
                a.efficiency.matmul_fraction
            },
        peak.tflops(),
        job.precision.as_str(),
        100.0 * a.efficiency.attention_fraction,
        if s.te_attention(job) && a.efficiency.te_attention_speedup > 1.0 {
            format!(
                " × {:.2} for Transformer Engine's fused attention (cuDNN, FlashAttention-3 class; Megatron-Core and NeMo)",
                a.efficiency.te_attention_speedup
            )
        } else {
            String::new()
        },
        if s.recompute_stops_early(job) {
            "; the recomputation stops before each layer's FFN down product, whose backward needs only its input (PyTorch's early-stopping checkpoint)"
        } else if s.op_level_selective(job) {
            "; the recomputation reruns K, the attention projection, the FFN up product and the element-wise work, not the attention (PyTorch's op-level selective checkpointing)"
        } else {
            ""
        }
    );
    let tp_group = Group {
        size: s.tp,
        stride: 1,
    };
    let (tp_bw, tp_tier) = c.bus_bandwidth(tp_group);
    if s.tp > 1 {
        let _ = writeln!(
            o,
            "- tensor-parallel communication {:.3} s ({:.0}%): 4 collectives of b·s·h·2 bytes per layer per micro-batch (6 with full recompute) over {} ranks on the {} tier at {:.0} GB/s{}.",
            t.tp_comm.get(),
            share(t.tp_comm.get()),
            s.tp,
            tp_tier.as_str(),
            tp_bw.gbps(),
            if s.tp_overlap_active() {
                format!(
                    ", each pipelined with the matrix product beside it (tp_comm_overlap): what shows is the part that outlasts the layer's products plus {:.0}% of the hidden part, the overlap penalty",
                    100.0 * a.efficiency.overlap_penalty
                )
            } else {
                String::new()
            }
        );
    } else {
        let _ = writeln!(
            o,
            "- tensor-parallel communication {:.3} s: no tensor parallelism (tp = 1).",
            t.tp_comm.get()
        );
    }
    let dp_group = Group {
        size: s.dp * s.cp,
        stride: s.tp,
    };
    let (dp_bw, dp_tier) = c.bus_bandwidth(dp_group);
    let what = match s.zero {
        0 => "all-reducing the gradients once per step",
        2 if !s.fsdp_with_pipeline() => "reduce-scattering the gradients every micro-batch and all-gathering the updated weights once per step",
        1 | 2 => "reduce-scattering the gradients and all-gathering the updated weights once per step",
        _ => "gathering the weights for forward and backward and reduce-scattering the gradients, every micro-batch,",
    };
    let _ = writeln!(
        o,
        "- data-parallel communication {:.3} s exposed ({:.0}%): {what} over {} ranks ({} tier, {:.0} GB/s) takes {:.3} s per step, {}.",
        t.dp_comm.get(),
        share(t.dp_comm.get()),
        s.dp * s.cp,
        dp_tier.as_str(),
        dp_bw.gbps(),
        t.dp_traffic.get(),
        if s.dp_comm_overlaps(job) {
            "the rest hidden behind compute"
        } else if s.framework(job) == Some(trainplan_parallel::Framework::Deepspeed) {
            "none of it hidden: DeepSpeed below ZeRO-3 reduces on the compute stream (overlap_comm off by default) and, under a pipeline, after the last backward"
        } else {
            "none of it hidden: dp_comm_overlap = false reduces after the last backward, as Megatron-LM did before Megatron-Core's --overlap-grad-reduce"
        },
    );
    let chunk = s.max_layers_per_chunk(m);
    let bubble_line = if s.pp == 1 {
        "- pipeline bubble 0.000 s (0%): no pipeline (pp = 1).".to_string()
    } else {
        let uneven = if u64::from(m.n_layers) % (u64::from(s.pp) * u64::from(s.vpp)) == 0 {
            String::new()
        } else {
            format!(
                "; the {} layers do not divide into pp × vpp = {} chunks, so the longest chunk sets the fill and drain",
                m.n_layers,
                s.pp * s.vpp
            )
        };
        format!(
            "- pipeline bubble {:.3} s ({:.0}%): (pp - 1) chunks of {chunk} layer(s) = {:.2} micro-batch times out of {} (Narayanan et al. 2021){uneven}.",
            t.bubble.get(),
            share(t.bubble.get()),
            s.bubble_micro_batches(m),
            e.grad_accum,
        )
    };
    let _ = writeln!(o, "{bubble_line}");
    let _ = writeln!(
        o,
        "- pipeline sends {:.3} s, context-parallel exchange {:.3} s, expert all-to-all {:.3} s{}{}{}, optimizer step {:.3} s.\n",
        t.pp_comm.get(),
        t.cp_comm.get(),
        t.ep_comm.get(),
        if s.ep > 1 {
            let tier = c.tier(s.expert_parallel_group()).as_str();
            format!(" (over {} ranks on the {tier} tier)", s.ep)
        } else {
            String::new()
        },
        if s.ep_overlap_active(job) {
            " exposed (each micro-batch's dispatch and combine run behind another micro-batch's compute, DeepSeek-V3 report section 3.2.1; what still shows is the share that outlasts it plus the overlap penalty)"
        } else {
            ""
        },
        if s.ep > 1 && s.ep_dispatcher == trainplan_parallel::EpDispatcher::DeepEp {
            "; with the DeepEP-style dispatcher a token crosses the network once per destination node, not once per expert, and is forwarded over NVLink inside it (DeepSeek-V3 report section 3.2.2; the same as a plain all-to-all inside one node)"
        } else {
            ""
        },
        t.optimizer.get()
    );
    let _ = writeln!(
        o,
        "Throughput: {:.0} tokens/s ({:.1} per GPU); MFU {:.1}% (model FLOPs over the {} peak), HFU {:.1}%.\n",
        e.tokens_per_s,
        e.tokens_per_s_per_gpu,
        100.0 * e.mfu,
        job.precision.as_str(),
        100.0 * e.hfu
    );

    let _ = writeln!(o, "## Binding constraint: {}", e.bottleneck.as_str());
    let advice = if e.fits() {
        match e.bottleneck {
            Bottleneck::Compute => "Compute dominates: the layout is efficient. Larger micro-batches or less recomputation (memory allowing) are what is left.".into(),
            Bottleneck::TensorComm => format!(
                "Tensor-parallel collectives cost {:.0}% of the step. {}{}{}.",
                share(t.tp_comm.get()),
                if s.tp > c.node.gpus_per_node { "Keep tp inside one node" } else { "Lower tp (more pp or dp instead)" },
                if s.sp_active() { "" } else { ", turn on sequence parallelism to shard the replicated activations" },
                if s.tp_overlap_active() { "" } else { ", or overlap the collectives with the products (tp_comm_overlap) where the framework supports it" }
            ),
            Bottleneck::ContextComm => "Ring attention traffic is not hidden: lower cp or use longer sequences per rank.".into(),
            Bottleneck::ExpertComm => format!(
                "Token dispatch between experts is exposed: keep the expert-parallel group inside one node (lower ep{}) or route fewer experts per token{}{}.",
                if s.tp > 1 && s.expert_tp() == s.tp {
                    ", or keep experts whole with etp = 1 so that ep draws on the tensor-parallel ranks next to each other"
                } else {
                    ""
                },
                if s.ep_overlap_active(job) {
                    ""
                } else {
                    "; or overlap the all-to-all with another micro-batch's computation (ep_comm_overlap, DualPipe-style) where the framework supports it"
                },
                if s.ep_dispatcher == trainplan_parallel::EpDispatcher::AllToAll && c.tier(s.expert_parallel_group()) == trainplan_hardware::LinkTier::ScaleOut {
                    "; or send each token once per node rather than once per expert (ep_dispatcher = \"deepep\") where the framework has DeepEP"
                } else {
                    ""
                }
            ),
            Bottleneck::PipelineComm => "Pipeline sends are exposed: fewer stages or fewer virtual stages.".into(),
            Bottleneck::DataComm => format!(
                "Gradient and weight traffic across data-parallel ranks is exposed: larger micro-batches or more accumulation hide it, a lower ZeRO stage sends less, tp/pp shrinks what each rank sends{}.",
                if !s.dp_comm_overlaps(job)
                    && s.framework(job) != Some(trainplan_parallel::Framework::Deepspeed)
                {
                    "; or reduce bucket by bucket during backward (dp_comm_overlap = true: Megatron-Core's --overlap-grad-reduce, PyTorch DDP)"
                } else {
                    ""
                }
            ),
            Bottleneck::Bubble => format!(
                "The pipeline idles {:.0}% of the step. More micro-batches per step (smaller micro-batch or larger global batch), virtual stages (vpp), or fewer stages.",
                share(t.bubble.get())
            ),
            Bottleneck::Optimizer => "The optimizer step is a large share: shard it with ZeRO-1 or more.".into(),
            Bottleneck::Memory => "Memory is over 95% full: the plan has no room for a larger micro-batch; fragmentation may push it over.".into(),
        }
    } else {
        format!(
            "The plan needs {} more than the GPU has. Shard more state (a higher ZeRO stage), recompute more activations, raise tp or pp, or use a smaller micro-batch.",
            gib(mem.total - mem.capacity)
        )
    };
    let _ = writeln!(o, "{advice}");
    one_change_away(&mut o, sc, c, s, e);
    o
}

/// The faster layouts one change away that fit (or, when the plan does not fit, the fastest
/// that do), with their numbers: the advice above, priced.
fn one_change_away(o: &mut String, sc: &Scenario, c: &Cluster, s: &Strategy, e: &Estimate) {
    let step = e.time.step.get();
    let mut near: Vec<trainplan_search::Neighbour> =
        trainplan_search::neighbours(&sc.model, c, &sc.job, s)
            .into_iter()
            .filter(|n| n.estimate.fits() && (!e.fits() || n.estimate.time.step.get() < step))
            .collect();
    near.sort_by(|a, b| {
        a.estimate
            .time
            .step
            .get()
            .total_cmp(&b.estimate.time.step.get())
    });
    let _ = writeln!(o, "\n## One change away");
    if near.is_empty() {
        let _ = writeln!(
            o,
            "No single change of micro-batch, recomputation, ZeRO stage, virtual stages, sequence parallelism, or a factor of two between dp and tp or pp, is {} on these {} GPUs.",
            if e.fits() { "faster and fits" } else { "enough to fit" },
            c.n_gpus
        );
        return;
    }
    for n in near.iter().take(3) {
        let t = n.estimate.time.step.get();
        // A change into or out of FSDP changes the framework an unstated job implies.
        let framework = n.strategy.framework(&sc.job);
        let _ = writeln!(
            o,
            "- {}: {:.3} s per step ({:+.1}%), {:.1} tokens/s per GPU, {} per GPU{}.",
            n.change,
            t,
            100.0 * (t - step) / step,
            n.estimate.tokens_per_s_per_gpu,
            gib(n.estimate.memory.total),
            if framework == s.framework(&sc.job) {
                String::new()
            } else {
                match framework {
                    Some(f) => format!(
                        " (priced with framework = \"{}\" conventions, which an FSDP layout implies)",
                        f.as_str()
                    ),
                    None => " (priced framework-neutral, no longer FSDP)".to_string(),
                }
            }
        );
    }
}

pub fn explain(args: &ExplainArgs, db: &Database) -> anyhow::Result<()> {
    let sc = Scenario::load(&args.scenario, db)?;
    if sc.strategy.is_none() {
        // No fixed strategy: explain the best plan of the sweep (the `[sweep]` section, or the
        // cluster's own accelerator and GPU count) and why the runner-up lost.
        let text = crate::explain_sweep::explain(&sc, db, explanation)?;
        return emit(None, text.as_bytes());
    }
    let (sc, cluster, s, e) = load(&args.scenario, db)?;
    emit(None, explanation(&sc, &cluster, &s, &e).as_bytes())?;
    does_not_fit(&sc, &e)
}
