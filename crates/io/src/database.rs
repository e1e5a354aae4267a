//! The hardware database and model presets.
//!
//! PLACEHOLDER: the loader is being written (issue 2). The public API below is the contract.

use crate::{IoError, Location};
use std::collections::BTreeMap;
use std::path::Path;
use trainplan_hardware::{Accelerator, Node};
use trainplan_model::Model;

/// A model preset from `scenarios/models/`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPreset {
    /// The architecture (its `id` is the preset id).
    pub model: Model,
    /// Human-readable name.
    pub name: String,
    /// Parameter count the authors publish, for the 1% check.
    pub published_params: Option<f64>,
    /// Sequence length the model was trained with (default of scenarios).
    pub seq_len: u32,
    /// Where the architecture comes from.
    pub source: String,
}

/// Accelerators, node layouts and model presets by id.
#[derive(Debug, Clone, Default)]
pub struct Database {
    accelerators: BTreeMap<String, Accelerator>,
    nodes: BTreeMap<String, Node>,
    models: BTreeMap<String, ModelPreset>,
}

impl Database {
    /// The database compiled into the binary.
    pub fn bundled() -> Result<Self, IoError> {
        Ok(Self::default())
    }

    /// Adds (or replaces, by id) every file found in `dir` (`accelerators/`, `nodes/`, `models/`).
    pub fn extend_from_dir(&mut self, dir: &Path) -> Result<(), IoError> {
        Err(IoError::Parse {
            location: Location::file(dir.display().to_string()),
            message: "loading a hardware database folder is not implemented yet".into(),
        })
    }

    /// The accelerator `id`, or an error listing the known ids.
    pub fn accelerator(&self, id: &str, at: &Location) -> Result<&Accelerator, IoError> {
        self.accelerators
            .get(id)
            .ok_or_else(|| unknown(at, "accelerator", id, self.accelerators.keys()))
    }

    /// The node layout `id`.
    pub fn node(&self, id: &str, at: &Location) -> Result<&Node, IoError> {
        self.nodes
            .get(id)
            .ok_or_else(|| unknown(at, "node", id, self.nodes.keys()))
    }

    /// The model preset `id`.
    pub fn model(&self, id: &str, at: &Location) -> Result<&ModelPreset, IoError> {
        self.models
            .get(id)
            .ok_or_else(|| unknown(at, "model", id, self.models.keys()))
    }

    /// Every accelerator, by id.
    pub fn accelerators(&self) -> impl Iterator<Item = &Accelerator> {
        self.accelerators.values()
    }

    /// Every node layout, by id.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Every model preset, by id.
    pub fn models(&self) -> impl Iterator<Item = &ModelPreset> {
        self.models.values()
    }
}

fn unknown<'a>(
    at: &Location,
    kind: &'static str,
    id: &str,
    known: impl Iterator<Item = &'a String>,
) -> IoError {
    IoError::UnknownId {
        location: at.clone(),
        kind,
        id: id.to_string(),
        known: known.map(String::as_str).collect::<Vec<_>>().join(", "),
    }
}
