//! trainplan-search (placeholder being written).

pub mod calibrate;
pub mod validate;
