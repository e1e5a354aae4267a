//! Shared helpers for trainplan's cross-crate tests.
