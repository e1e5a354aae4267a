//! trainplan-search (placeholder being written).
