//! How long `load` takes on a large project: 200 services over 5 files, with anchors, merge
//! keys, extends, overrides and interpolation (bench/compose/generate.py writes it). The target
//! is under 50 ms in a release build; `bench/compose/run` prints this number next to the time of
//! `wharf config` and of docker compose on the same project.

use criterion::{criterion_group, criterion_main, Criterion};
use indexmap::IndexMap;
use std::hint::black_box;
use std::path::Path;
use wharf_compose::ProjectOptions;

fn options() -> ProjectOptions {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench/compose/corpus/platform-200")
        .canonicalize()
        .expect("bench/compose/corpus/platform-200 is missing: run bench/compose/generate.py");
    let files = [
        "compose.yaml",
        "compose.b.yaml",
        "compose.c.yaml",
        "compose.d.yaml",
        "compose.e.yaml",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    let mut environment = IndexMap::new();
    environment.insert("TAG".to_string(), "1.4.2".to_string());
    environment.insert(
        "GIT_SHA".to_string(),
        "0123456789abcdef0123456789abcdef01234567".to_string(),
    );
    ProjectOptions {
        files,
        project_name: None,
        profiles: vec!["batch".to_string()],
        env_files: Vec::new(),
        project_directory: None,
        working_dir: dir,
        environment,
    }
}

fn load_200_services(c: &mut Criterion) {
    let options = options();
    let project = wharf_compose::load(&options).expect("the benchmark project loads");
    assert_eq!(
        project.services.len(),
        200,
        "the benchmark project has 200 services"
    );
    c.benchmark_group("compose")
        .bench_function("load_200_services", |b| {
            b.iter(|| wharf_compose::load(black_box(&options)).expect("loads"))
        });
}

criterion_group!(benches, load_200_services);
criterion_main!(benches);
