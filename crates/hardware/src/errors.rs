//! Errors of the hardware crate.

use thiserror::Error;

/// A cluster that cannot exist.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum HardwareError {
    /// The cluster has no GPUs.
    #[error("the cluster needs at least one GPU (n_gpus = 0)")]
    NoGpus,
    /// A node layout is inconsistent.
    #[error("node `{node}` is invalid: {reason}")]
    InvalidNode {
        /// The node's id.
        node: String,
        /// What is wrong.
        reason: String,
    },
}
