//! The hardware database and model presets: bundled files compiled into the binary, extended or
//! overridden by id from a user folder.
//!
//! Loading is two passes. Each file is parsed and range-checked on its own
//! ([`crate::hardware_file`], [`crate::preset_file`]); then, once every file is in, the
//! references between them are checked (a node's accelerator, an accelerator's default node), so
//! a user folder may add a node for a bundled accelerator or the other way round.

use crate::hardware_file::{parse_accelerator, parse_node};
use crate::preset_file::parse_model;
use crate::{IoError, Location};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use trainplan_hardware::{Accelerator, Node};
use trainplan_model::Model;

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

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
    /// Where each accelerator's `default_node` was written, for the reference check.
    default_node_at: BTreeMap<String, Location>,
    /// Where each node's `accelerator` was written, for the reference check.
    node_accelerator_at: BTreeMap<String, Location>,
    /// Each accelerator's file (path and text), for writing fitted factors back into it.
    accelerator_files: BTreeMap<String, (String, String)>,
}

/// The three kinds of database file, named after their folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Accelerators,
    Nodes,
    Models,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Accelerators, Kind::Nodes, Kind::Models];

    fn folder(self) -> &'static str {
        match self {
            Kind::Accelerators => "accelerators",
            Kind::Nodes => "nodes",
            Kind::Models => "models",
        }
    }
}

impl Database {
    /// The database compiled into the binary (`hardware-db/` and `scenarios/models/`).
    pub fn bundled() -> Result<Self, IoError> {
        let mut db = Self::default();
        for &(folder, path, text) in bundled::BUNDLED {
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.folder() == folder)
                .ok_or_else(|| IoError::Parse {
                    location: Location::file(path),
                    message: format!("bundled file in unknown folder `{folder}`"),
                })?;
            db.add(kind, path, text)?;
        }
        db.check_references()?;
        Ok(db)
    }

    /// Adds (or replaces, by id) every file found in `dir` (`accelerators/`, `nodes/`, `models/`).
    ///
    /// Only `*.toml` files are read, in name order; the database is left unchanged on error.
    pub fn extend_from_dir(&mut self, dir: &Path) -> Result<(), IoError> {
        let meta = std::fs::metadata(dir).map_err(|source| IoError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(IoError::Parse {
                location: Location::file(dir.display().to_string()),
                message: "is not a folder; expected one holding accelerators/, nodes/ or models/"
                    .into(),
            });
        }
        let mut next = self.clone();
        let mut found_any = false;
        for kind in Kind::ALL {
            let sub = dir.join(kind.folder());
            if !sub.is_dir() {
                continue;
            }
            found_any = true;
            for file in toml_files(&sub)? {
                let bytes = std::fs::read(&file).map_err(|source| IoError::Read {
                    path: file.clone(),
                    source,
                })?;
                let text = crate::errors::utf8_text(
                    &file.display().to_string(),
                    bytes,
                    "hardware and model files are TOML",
                )?;
                next.add(kind, &file.display().to_string(), &text)?;
            }
        }
        if !found_any {
            return Err(IoError::Parse {
                location: Location::file(dir.display().to_string()),
                message: "holds none of accelerators/, nodes/, models/".into(),
            });
        }
        next.check_references()?;
        *self = next;
        Ok(())
    }

    /// Parses one file of `kind` and inserts it, replacing an entry with the same id.
    fn add(&mut self, kind: Kind, path: &str, text: &str) -> Result<(), IoError> {
        match kind {
            Kind::Accelerators => {
                let loaded = parse_accelerator(path, text)?;
                let id = loaded.accelerator.id.clone();
                self.default_node_at
                    .insert(id.clone(), loaded.default_node_at);
                self.accelerator_files
                    .insert(id.clone(), (path.to_string(), text.to_string()));
                self.accelerators.insert(id, loaded.accelerator);
            }
            Kind::Nodes => {
                let loaded = parse_node(path, text)?;
                let id = loaded.node.id.clone();
                self.node_accelerator_at
                    .insert(id.clone(), loaded.accelerator_at);
                self.nodes.insert(id, loaded.node);
            }
            Kind::Models => {
                let preset = parse_model(path, text)?;
                self.models.insert(preset.model.id.clone(), preset);
            }
        }
        Ok(())
    }

    /// Every node names a known accelerator, and every accelerator's default node exists and
    /// holds that accelerator.
    fn check_references(&self) -> Result<(), IoError> {
        for node in self.nodes.values() {
            let at = located(&self.node_accelerator_at, &node.id);
            self.accelerator(&node.accelerator, &at)?;
        }
        for accel in self.accelerators.values() {
            let at = located(&self.default_node_at, &accel.id);
            let node = self.node(&accel.default_node, &at)?;
            if node.accelerator != accel.id {
                return Err(IoError::Field {
                    location: at,
                    field: "default_node".into(),
                    message: format!(
                        "node `{}` holds `{}`, not `{}`; pick a node of this accelerator",
                        node.id, node.accelerator, accel.id
                    ),
                });
            }
        }
        Ok(())
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

    /// The path and text of the file accelerator `id` was read from.
    pub fn accelerator_file(&self, id: &str) -> Option<(&str, &str)> {
        self.accelerator_files
            .get(id)
            .map(|(path, text)| (path.as_str(), text.as_str()))
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

/// Where the reference of entry `id` was written (unknown for entries built in code).
fn located(map: &BTreeMap<String, Location>, id: &str) -> Location {
    map.get(id).cloned().unwrap_or_default()
}

/// The `*.toml` files directly in `dir`, sorted by name so loading order is reproducible.
fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, IoError> {
    let read_err = |source| IoError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// An unknown id, with the closest known one first when it is a likely typo.
fn unknown<'a>(
    at: &Location,
    kind: &'static str,
    id: &str,
    known: impl Iterator<Item = &'a String>,
) -> IoError {
    let known: Vec<&str> = known.map(String::as_str).collect();
    let closest = known
        .iter()
        .map(|k| (strsim::jaro_winkler(id, k), *k))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score >= 0.8);
    let mut list = known.join(", ");
    if let Some((_, best)) = closest {
        list = format!("{list} (did you mean `{best}`?)");
    }
    IoError::UnknownId {
        location: at.clone(),
        kind,
        id: id.to_string(),
        known: list,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The accelerator ids a user can type: the ten the issue promises, and the A800.
    const ACCELERATORS: [&str; 11] = [
        "a100-40gb",
        "a100-80gb",
        "a100-80gb-pcie",
        "a800",
        "h100-sxm",
        "h100-pcie",
        "h800",
        "h200",
        "b200",
        "gb200",
        "mi300x",
    ];

    /// Writes `files` (relative path, contents) under a fresh folder and extends the bundled
    /// database from it; the error text, if any.
    fn extend(files: &[(&str, &str)]) -> (Database, Option<String>) {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let mut db = Database::bundled().unwrap();
        let err = db.extend_from_dir(dir.path()).err().map(|e| e.to_string());
        (db, err)
    }

    fn bundled_text(path_end: &str) -> &'static str {
        bundled::BUNDLED
            .iter()
            .find(|(_, p, _)| p.ends_with(path_end))
            .map(|(_, _, t)| *t)
            .unwrap()
    }

    #[test]
    fn bundled_database_has_the_promised_ids() {
        let db = Database::bundled().unwrap();
        let here = Location::file("test");
        for id in ACCELERATORS {
            let a = db.accelerator(id, &here).unwrap();
            db.node(&a.default_node, &here).unwrap();
        }
        for id in [
            "dgx-a100",
            "dgx-h100",
            "dgx-h200",
            "dgx-b200",
            "gb200-nvl72",
            "aws-p4d",
            "aws-p5",
        ] {
            db.node(id, &here).unwrap();
        }
        let nvl72 = db.node("gb200-nvl72", &here).unwrap();
        assert_eq!((nvl72.gpus_per_node, nvl72.scaleup_domain), (4, 72));
        assert!(db.models().count() >= 31);
        let h100 = db.accelerator("h100-sxm", &here).unwrap();
        assert_eq!(h100.bf16_peak.tflops(), 989.4);
        assert_eq!(h100.scaleup_unidir.gbps(), 450.0);
    }

    #[test]
    fn bundled_paths_name_their_folder() {
        assert!(bundled::BUNDLED
            .iter()
            .any(|(_, p, _)| *p == "<bundled>/hardware-db/accelerators/h100-sxm.toml"));
        assert!(bundled::BUNDLED
            .iter()
            .any(|(_, p, _)| *p == "<bundled>/scenarios/models/llama3-70b.toml"));
    }

    #[test]
    fn unknown_ids_suggest_the_closest() {
        let db = Database::bundled().unwrap();
        let e = db
            .accelerator("h100", &Location::file("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown accelerator `h100`"), "{e}");
        assert!(e.contains("did you mean `h100-"), "{e}");
    }

    #[test]
    fn a_folder_replaces_and_adds_by_id() {
        let h100 = bundled_text("accelerators/h100-sxm.toml").replace("989.4", "1000.0");
        let node = bundled_text("nodes/dgx-h100.toml")
            .replace("\"dgx-h100\"", "\"my-h100\"")
            .replace("nics_per_node = 8", "nics_per_node = 4");
        let (db, err) = extend(&[
            ("accelerators/h100-sxm.toml", &h100),
            ("nodes/my-h100.toml", &node),
            ("nodes/README.md", "not read"),
        ]);
        assert_eq!(err, None);
        let here = Location::default();
        let a = db.accelerator("h100-sxm", &here).unwrap();
        assert_eq!(a.bf16_peak.tflops(), 1000.0);
        assert_eq!(db.node("my-h100", &here).unwrap().nics_per_node, 4);
        assert_eq!(db.accelerators().count(), ACCELERATORS.len());
    }

    #[test]
    fn folder_errors_name_file_line_and_field() {
        let broken = bundled_text("accelerators/h100-sxm.toml")
            .replace("hbm_tbps = 3.35", "hbm_tbps = -3.35");
        let (db, err) = extend(&[("accelerators/h100-sxm.toml", &broken)]);
        let err = err.unwrap();
        assert!(err.contains("accelerators/h100-sxm.toml:"), "{err}");
        assert!(err.contains("field `hbm_tbps`"), "{err}");
        // The failed folder leaves the database as it was.
        let a = db.accelerator("h100-sxm", &Location::default()).unwrap();
        assert_eq!(a.hbm_bandwidth.get(), 3.35e12);

        let node = bundled_text("nodes/dgx-h100.toml").replace("\"h100-sxm\"", "\"h100-sx\"");
        let (_, err) = extend(&[("nodes/dgx-h100.toml", &node)]);
        let err = err.unwrap();
        assert!(err.contains("nodes/dgx-h100.toml:4:1"), "{err}");
        assert!(err.contains("unknown accelerator `h100-sx`"), "{err}");

        let (_, err) = extend(&[("models/x.toml", "id = [")]);
        assert!(err.unwrap().contains("models/x.toml:1:"));

        let (_, err) = extend(&[("other/x.toml", "")]);
        assert!(err.unwrap().contains("none of accelerators/"));
    }

    #[test]
    fn default_node_must_hold_the_accelerator() {
        let h200 = bundled_text("accelerators/h200.toml").replace("\"dgx-h200\"", "\"dgx-h100\"");
        let (_, err) = extend(&[("accelerators/h200.toml", &h200)]);
        let err = err.unwrap();
        assert!(err.contains("field `default_node`"), "{err}");
        assert!(err.contains("holds `h100-sxm`"), "{err}");
    }

    #[test]
    fn missing_folder_is_a_read_error() {
        let mut db = Database::default();
        let e = db
            .extend_from_dir(Path::new("/nonexistent/trainplan-db"))
            .unwrap_err();
        assert!(matches!(e, IoError::Read { .. }), "{e}");
    }
}
