//! Scenario files (placeholder).
