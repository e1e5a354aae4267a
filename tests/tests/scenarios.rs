//! Every bundled scenario loads with the bundled database, and what it asks for works: a
//! `[strategy]` prices without error, a `[sweep]` builds a search space.

use std::path::{Path, PathBuf};
use trainplan_io::scenario::Scenario;
use trainplan_io::Database;

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bundled_scenario_loads_and_runs() {
    let db = Database::bundled().expect("bundled database");
    let files = scenarios();
    assert!(files.len() >= 5, "{files:?}");
    for path in files {
        let sc = Scenario::load(&path, &db).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            sc.strategy.is_some() || sc.sweep.is_some(),
            "{} has neither [strategy] nor [sweep]",
            path.display()
        );
        if let Some(strategy) = sc.strategy {
            let cluster = sc.fixed_cluster().unwrap();
            let e = trainplan_parallel::estimate(&sc.model, &cluster, &sc.job, &strategy)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(e.time.step.get() > 0.0);
        }
        if sc.sweep.is_some() {
            trainplan_io::sweep::space(&sc, &db)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}
