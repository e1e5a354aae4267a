//! Repository hygiene: the crate DAG of DESIGN.md, data files that parse, and `//!` headers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

/// Every file under `dir` (recursively) whose name ends with `ext`, skipping build output.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && !name.to_string_lossy().starts_with('.') {
                    stack.push(path);
                }
            } else if name.to_string_lossy().ends_with(ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The trainplan crates each crate may depend on (DESIGN.md, "Crates").
fn allowed(krate: &str) -> Option<&'static [&'static str]> {
    Some(match krate {
        "units" => &[],
        "hardware" | "model" => &["units"],
        "parallel" => &["units", "hardware", "model"],
        "search" => &["units", "hardware", "model", "parallel"],
        "io" => &["units", "hardware", "model", "parallel", "search"],
        "cli" => &["units", "hardware", "model", "parallel", "search", "io"],
        _ => return None,
    })
}

#[test]
fn crates_depend_only_on_what_the_dag_allows() {
    let mut seen = BTreeSet::new();
    for manifest in files(&root().join("crates"), "Cargo.toml") {
        let krate = manifest
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .expect("crate folder name")
            .to_string();
        let allowed = allowed(&krate)
            .unwrap_or_else(|| panic!("crate `{krate}` is not in DESIGN.md's DAG; add it there"));
        let text = std::fs::read_to_string(&manifest).expect("manifest readable");
        let doc: toml::Table = toml::from_str(&text).expect("manifest parses");
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = doc.get(section).and_then(toml::Value::as_table) else {
                continue;
            };
            for dep in deps.keys() {
                if let Some(name) = dep.strip_prefix("trainplan-") {
                    assert!(
                        allowed.contains(&name),
                        "crates/{krate} [{section}] depends on {dep}, which DESIGN.md's DAG forbids"
                    );
                }
            }
        }
        seen.insert(krate);
    }
    for krate in [
        "units", "hardware", "model", "parallel", "search", "io", "cli",
    ] {
        assert!(seen.contains(krate), "crates/{krate}/Cargo.toml missing");
    }
}

#[test]
fn every_hardware_db_and_model_file_loads() {
    let root = root();
    // Loading through the real reader checks the schema, ranges and cross-references too.
    let mut db = trainplan_io::Database::default();
    db.extend_from_dir(&root.join("hardware-db"))
        .unwrap_or_else(|e| panic!("{e}"));
    db.extend_from_dir(&root.join("scenarios"))
        .unwrap_or_else(|e| panic!("{e}"));
    let loaded = db.accelerators().count() + db.nodes().count() + db.models().count();
    let known_folders = [
        root.join("hardware-db/accelerators"),
        root.join("hardware-db/nodes"),
        root.join("scenarios/models"),
    ];
    let in_known = known_folders
        .iter()
        .map(|d| files(d, ".toml").len())
        .sum::<usize>();
    assert_eq!(
        loaded, in_known,
        "every file in a database folder is one entry"
    );
    for file in files(&root.join("hardware-db"), ".toml") {
        assert!(
            known_folders[..2].iter().any(|d| file.parent() == Some(d)),
            "{} is outside accelerators/ and nodes/, so nothing reads it",
            file.display()
        );
    }
}

#[test]
fn every_scenario_is_valid_toml() {
    // The scenario schema has its own tests; here only the syntax of every file is checked.
    for file in files(&root().join("scenarios"), ".toml") {
        let text = std::fs::read_to_string(&file).expect("readable");
        if let Err(e) = toml::from_str::<toml::Table>(&text) {
            panic!("{}: {e}", file.display());
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc_line() {
    let root = root();
    let mut missing = Vec::new();
    for dir in ["crates", "tests", "benches"] {
        for file in files(&root.join(dir), ".rs") {
            let text = std::fs::read_to_string(&file).expect("readable");
            if !text.starts_with("//!") {
                missing.push(
                    file.strip_prefix(&root)
                        .unwrap_or(&file)
                        .display()
                        .to_string(),
                );
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files without a leading `//!` line:\n{}",
        missing.join("\n")
    );
}
