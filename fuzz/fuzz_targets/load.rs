//! The loader on arbitrary bytes: the input, split at 0xFF bytes (never valid UTF-8, so the
//! pieces stay text), becomes compose.yaml, compose.override.yaml, .env and common.yml of a
//! project in a scratch folder, read through file discovery as `wharf config` reads it. Any
//! input gives a project or an error, never a panic, a hang or an abort.
#![no_main]

use indexmap::IndexMap;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;
use wharf_compose::ProjectOptions;

const FILES: [&str; 4] = [
    "compose.yaml",
    "compose.override.yaml",
    ".env",
    "common.yml",
];

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wharf-fuzz-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let mut pieces = data.split(|b| *b == 0xFF);
    for name in FILES {
        let path = dir.join(name);
        match pieces.next() {
            Some(piece) => std::fs::write(&path, piece).expect("write"),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let mut environment = IndexMap::new();
    environment.insert("TAG".to_string(), "1.0".to_string());
    environment.insert("EMPTY".to_string(), String::new());
    let options = ProjectOptions {
        files: Vec::new(),
        project_name: None,
        profiles: vec!["*".to_string()],
        env_files: Vec::new(),
        project_directory: None,
        working_dir: dir.clone(),
        environment,
    };
    let _ = wharf_compose::load(&options);
});
