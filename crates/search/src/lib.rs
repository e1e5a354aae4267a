//! The search over parallel layouts: enumerate every valid strategy of a job, price each with
//! `trainplan_parallel::estimate`, and rank the plans.
//!
//! Design. A sweep prices millions of strategies, so the work splits in two phases, in the
//! manner of ripgrep's `SearcherBuilder` → `Searcher`:
//! - [`SearchBuilder`] takes the model, the job and a [`SpaceSpec`] (what to vary), checks and
//!   normalises them once, builds one `Cluster` per accelerator and GPU count, and enumerates
//!   the *layouts* (accelerator, GPU count, global batch, dp × tp × cp × pp, ep).
//! - [`Search`] is immutable. [`Search::run`] hands the layouts to rayon; each worker walks the
//!   strategies of its layouts (micro-batch, virtual stages, ZeRO, recomputation, sequence
//!   parallelism), rejects whole groups by the validity rules before calling `estimate`, and
//!   keeps its own best-K list ([`TopK`]), Pareto front ([`ParetoFront`]) and rejection counts.
//!   The partial results merge in any order into the same answer, because plans are totally
//!   ordered ([`compare`]: objective, then the other of time and cost, then a canonical key).
//!   The ranking is therefore bit-identical on one thread or many, and sharding the layouts
//!   ([`Shard`]) then merging the shards' best-K gives the single-run ranking.
//!
//! Roles:
//! - [`SpaceSpec`], [`Target`], [`MicroBatches`]: what a sweep varies.
//! - [`Plan`]: one strategy with the numbers the plans CSV reports; [`Objective`] and
//!   [`compare`] define the ranking.
//! - [`Constraints`]: a deadline (keep plans that finish in time, rank by cost) and a budget
//!   (keep plans within it, rank by time); [`Shortfall`] says what it would take when nothing
//!   qualifies.
//!
//! **Architecture Invariant:** this crate reads no files and knows no command line; it is the
//! only crate that depends on rayon. The per-strategy path allocates nothing.

// `calibrate` and `validate` belong to the cost-model work (trainplan validate); keep them.
pub mod calibrate;
mod counts;
mod errors;
#[doc(hidden)]
pub mod fixtures;
mod neighbours;
mod plan;
mod rank;
mod shortfall;
mod space;
mod sweep;
pub mod validate;

pub use errors::SearchError;
pub use neighbours::{neighbours, Change, Neighbour};
pub use plan::{compare, Objective, Plan};
pub use rank::{pareto_front, ParetoFront, TopK};
pub use shortfall::{describe, Shortfall};
pub use space::{MicroBatches, SpaceSpec, Target, MAX_LAYOUTS};
pub use sweep::{Constraints, Search, SearchBuilder, Shard, Stats, SweepResult};

#[cfg(test)]
mod tests;
