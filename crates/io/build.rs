//! Generates the list of bundled database files so `Database::bundled` compiles them in.
//!
//! Every `*.toml` under `hardware-db/accelerators`, `hardware-db/nodes` and `scenarios/models`
//! becomes one `include_str!` entry, sorted by path so the binary is reproducible. Adding a file
//! needs no code change; cargo reruns this script when a folder changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Folders compiled in: (kind, path relative to the workspace root).
const FOLDERS: [(&str, &str); 3] = [
    ("accelerators", "hardware-db/accelerators"),
    ("nodes", "hardware-db/nodes"),
    ("models", "scenarios/models"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("../..");
    let mut out = String::from(
        "/// Bundled files: (kind, display path, contents), sorted by path.\n\
         pub(crate) static BUNDLED: &[(&str, &str, &str)] = &[\n",
    );
    for (kind, rel) in FOLDERS {
        let dir = root.join(rel);
        println!("cargo:rerun-if-changed={}", dir.display());
        for file in toml_files(&dir) {
            println!("cargo:rerun-if-changed={}", file.display());
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let display = format!("<bundled>/{rel}/{name}");
            let abs = file.canonicalize().expect("listed files exist");
            writeln!(
                out,
                "    ({kind:?}, {display:?}, include_str!({:?})),",
                abs.display()
            )
            .expect("writing to a String cannot fail");
        }
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("bundled.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

/// The `*.toml` files directly in `dir`, sorted; none when the folder is missing.
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}
