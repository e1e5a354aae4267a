//! Errors of the search crate: a space that cannot be built or a request that cannot be answered.

use thiserror::Error;
use trainplan_hardware::HardwareError;

/// Why a search could not be built or run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SearchError {
    /// A list of the space has no values, so the space is empty.
    #[error("the search space is empty: `{field}` lists no values")]
    EmptyList {
        /// The list.
        field: &'static str,
    },
    /// A value of the space is out of range.
    #[error("`{field}` = {value} is not allowed: {allowed}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What was given.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// The cluster of one GPU count could not be built.
    #[error("cannot build a cluster of {n_gpus} `{gpu}` GPUs")]
    Cluster {
        /// Accelerator id.
        gpu: String,
        /// GPUs.
        n_gpus: u32,
        /// Why.
        #[source]
        source: HardwareError,
    },
    /// `--shard` is not `K/N`.
    #[error("shard `{given}` is not K/N with 1 ≤ K ≤ N (for example 2/8)")]
    Shard {
        /// What was given.
        given: String,
    },
    /// A budget (or a cost ranking over several accelerators) needs prices.
    #[error("{what} needs a price per GPU-hour for `{gpu}`: add it to `prices` in [sweep], e.g. prices = {{ \"{gpu}\" = 2.5 }} ([job].price_usd_per_gpu_hour prices only the [cluster] accelerator)")]
    NoPrice {
        /// What needed the price.
        what: &'static str,
        /// Accelerator id without a price.
        gpu: String,
    },
    /// The space is too large to enumerate in one run.
    #[error("the search space has {layouts} layouts, more than the limit of {limit}; narrow `n_gpus` or split with --shard")]
    TooLarge {
        /// Layouts found.
        layouts: u64,
        /// The limit.
        limit: u64,
    },
    /// The thread pool could not start.
    #[error("cannot start {threads} worker threads")]
    ThreadPool {
        /// Threads requested.
        threads: usize,
        /// Why.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
}
