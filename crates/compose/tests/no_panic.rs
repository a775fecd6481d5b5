//! No input makes the interpolation parser or the loader panic: random templates, random
//! compose projects built from the compose vocabulary, and the conformance corpus with random
//! edits all give a value or an error. (The same properties run unbounded under cargo fuzz, in
//! `fuzz/`.)

use indexmap::IndexMap;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use wharf_compose::interpolate::interpolate;
use wharf_compose::ProjectOptions;

fn lookup(name: &str) -> Option<String> {
    match name {
        "SET" => Some("value".into()),
        "EMPTY" => Some(String::new()),
        "TEMPLATE" => Some("${SET}".into()),
        "DOLLARS" => Some("$$".into()),
        _ => None,
    }
}

const NAMES: &[&str] = &[
    "SET", "EMPTY", "UNSET", "TEMPLATE", "DOLLARS", "_x1", "1BAD", "",
];
const OPERATORS: &[&str] = &[":-", "-", ":?", "?", ":+", "+", ":=", ":", "/", ""];

/// Templates made of the pieces interpolation cares about, nested, well-formed or not.
fn template() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[a-z .:/@-]{0,6}",
        prop::sample::select(NAMES).prop_map(|n| format!("${n}")),
        prop::sample::select(NAMES).prop_map(|n| format!("${{{n}}}")),
        Just("$$".to_string()),
        Just("$".to_string()),
        Just("${".to_string()),
        Just("}".to_string()),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
            (
                prop::sample::select(NAMES),
                prop::sample::select(OPERATORS),
                inner,
                any::<bool>()
            )
                .prop_map(|(n, op, rest, close)| {
                    format!("${{{n}{op}{rest}{}", if close { "}" } else { "" })
                }),
        ]
    })
}

proptest! {
    #[test]
    fn interpolate_never_panics_on_structured_templates(t in template()) {
        let _ = interpolate(&t, &lookup);
    }

    #[test]
    fn interpolate_never_panics_on_any_text(t in "\\PC{0,64}") {
        let _ = interpolate(&t, &lookup);
    }

    #[test]
    fn text_without_dollar_is_unchanged(t in "[^$]{0,64}") {
        prop_assert_eq!(interpolate(&t, &lookup).ok(), Some(t));
    }

    #[test]
    fn escaped_dollar_is_a_literal_dollar(t in "[A-Za-z0-9_{}:?+-]{0,32}") {
        let template = format!("$${t}");
        prop_assert_eq!(interpolate(&template, &lookup).ok(), Some(format!("${t}")));
    }
}

/// A scratch project folder, one per test so that tests can run in parallel.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wharf-no-panic-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_project(dir: &Path, files: &[(&str, &[u8])]) {
    for name in [
        "compose.yaml",
        "compose.override.yaml",
        ".env",
        "common.yml",
    ] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

fn load_in(dir: &Path, profiles: Vec<String>) {
    let mut environment = IndexMap::new();
    environment.insert("TAG".to_string(), "1.0".to_string());
    environment.insert("EMPTY".to_string(), String::new());
    let options = ProjectOptions {
        files: Vec::new(),
        project_name: None,
        profiles,
        env_files: Vec::new(),
        project_directory: None,
        working_dir: dir.to_path_buf(),
        environment,
    };
    let _ = wharf_compose::load(&options);
}

/// YAML scalars as they appear in compose files, typed and untyped.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        template(),
        Just("0755".to_string()),
        Just("1e3".to_string()),
        Just("true".to_string()),
        Just("~".to_string()),
        Just("2024-01-02".to_string()),
        Just("\"quoted ${TAG}\"".to_string()),
        Just("'single'".to_string()),
        Just("[a, b]".to_string()),
        Just("{a: 1}".to_string()),
        Just("!reset null".to_string()),
        Just("!override [x]".to_string()),
        Just("*anchor".to_string()),
        Just("&anchor x".to_string()),
        "-?[0-9]{1,20}(\\.[0-9]{0,3})?",
    ]
}

const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "profiles",
    "extends",
    "depends_on",
    "environment",
    "ports",
    "x-wharf",
    "<<",
    "bogus",
    "container_name",
    "restart",
];
const BUILD_KEYS: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "args",
    "target",
    "labels",
    "cache_from",
    "cache_to",
    "no_cache",
    "pull",
    "network",
    "extra_hosts",
    "shm_size",
    "secrets",
    "ssh",
    "tags",
    "platforms",
    "additional_contexts",
    "entitlements",
    "privileged",
    "ulimits",
    "isolation",
    "provenance",
    "sbom",
    "x-build",
    "bogus",
];

/// One `key: value` or nested block at `indent`, from `keys`.
fn entry(keys: &'static [&'static str], indent: usize) -> impl Strategy<Value = String> {
    let pad = " ".repeat(indent);
    (
        prop::sample::select(keys),
        scalar(),
        prop::collection::vec(scalar(), 0..3),
        0..3u8,
    )
        .prop_map(move |(key, value, items, shape)| match shape {
            0 => format!("{pad}{key}: {value}\n"),
            1 => {
                let list: String = items.iter().map(|i| format!("{pad}  - {i}\n")).collect();
                format!("{pad}{key}:\n{list}")
            }
            _ => {
                let map: String = items
                    .iter()
                    .enumerate()
                    .map(|(n, i)| format!("{pad}  K{n}: {i}\n"))
                    .collect();
                format!("{pad}{key}:\n{map}")
            }
        })
}

fn service() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9_-]{0,8}",
        prop::collection::vec(entry(SERVICE_KEYS, 4), 0..5),
        prop::option::of(prop::collection::vec(entry(BUILD_KEYS, 6), 0..6)),
    )
        .prop_map(|(name, entries, build)| {
            let mut s = format!("  {name}:\n");
            s.extend(entries);
            if let Some(build) = build {
                s.push_str("    build:\n");
                s.extend(build);
            }
            s
        })
}

fn compose_file() -> impl Strategy<Value = String> {
    (
        prop::option::of(scalar()),
        prop::collection::vec(service(), 0..4),
        prop::option::of(prop::collection::vec(
            entry(&["path", "env_file", "project_directory"], 4),
            0..3,
        )),
        prop::option::of(prop::collection::vec(
            entry(&["file", "environment"], 4),
            0..2,
        )),
    )
        .prop_map(|(name, services, include, secrets)| {
            let mut s = String::new();
            if let Some(name) = name {
                s.push_str(&format!("name: {name}\n"));
            }
            s.push_str("x-anchor: &anchor\n  context: .\n");
            if let Some(include) = include {
                s.push_str("include:\n  -\n");
                s.extend(include);
            }
            s.push_str("services:\n");
            s.extend(services);
            if let Some(secrets) = secrets {
                s.push_str("secrets:\n  s1:\n");
                s.extend(secrets);
            }
            s
        })
}

fn dotenv() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            ("[A-Z_]{1,6}", template()).prop_map(|(k, v)| format!("{k}={v}")),
            ("[A-Z_]{1,6}", template()).prop_map(|(k, v)| format!("export {k}=\"{v}\"")),
            ("[A-Z_]{1,6}", "[^']{0,10}").prop_map(|(k, v)| format!("{k}='{v}'")),
            "\\PC{0,20}",
        ],
        0..6,
    )
    .prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn load_never_panics_on_generated_projects(
        main in compose_file(),
        over in prop::option::of(compose_file()),
        env in prop::option::of(dotenv()),
        common in prop::option::of(compose_file()),
        all_profiles in any::<bool>(),
    ) {
        let dir = scratch("generated");
        let mut files: Vec<(&str, &[u8])> = vec![("compose.yaml", main.as_bytes())];
        if let Some(o) = &over { files.push(("compose.override.yaml", o.as_bytes())); }
        if let Some(e) = &env { files.push((".env", e.as_bytes())); }
        if let Some(c) = &common { files.push(("common.yml", c.as_bytes())); }
        write_project(&dir, &files);
        load_in(&dir, if all_profiles { vec!["*".into()] } else { Vec::new() });
    }

    #[test]
    fn load_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = scratch("bytes");
        write_project(&dir, &[("compose.yaml", &bytes)]);
        load_in(&dir, Vec::new());
    }
}

/// Every compose file of the conformance corpus.
fn corpus_files() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance/corpus");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(std::fs::read(&path).unwrap());
            }
        }
    }
    out.sort();
    assert!(out.len() > 50, "the conformance corpus was not found");
    out
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let snippets = prop::sample::select(vec![
        &b"$"[..],
        b"${",
        b"}",
        b":",
        b"- ",
        b"\n",
        b"  ",
        b"\t",
        b"*anchor",
        b"&a ",
        b"<<: ",
        b"!reset ",
        b"!override ",
        b"\"",
        b"'",
        b"[",
        b"]",
        b"{",
        b"#",
        b"\xff",
        b"\x00",
    ]);
    prop_oneof![
        (any::<usize>(), 1..8usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), snippets).prop_map(|(at, s)| Edit::Insert(at, s.to_vec())),
        (any::<usize>(), 1..40usize).prop_map(|(at, n)| Edit::Duplicate(at, n)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match e {
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Edit::Insert(at, s) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, s.iter().copied());
            }
            Edit::Duplicate(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                let piece: Vec<u8> = bytes.get(at..end).unwrap_or_default().to_vec();
                bytes.splice(at..at, piece);
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn load_never_panics_on_edited_corpus_files(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        thread_local!(static FILES: Vec<Vec<u8>> = corpus_files());
        let bytes = FILES.with(|f| apply(pick.get(f).clone(), &edits));
        let dir = scratch("edited");
        write_project(&dir, &[("compose.yaml", &bytes)]);
        load_in(&dir, vec!["*".into()]);
    }
}
