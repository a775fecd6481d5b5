//! No crate of the workspace has a cycle between its top-level modules: when `a` uses `b`,
//! `b` (and whatever `b` uses) never uses `a`. A cycle means two modules are one module split
//! in two files, and neither can be read, tested or moved on its own.
//!
//! Every `.rs` file under each crate's `src/` is parsed (syn), and every path that names a
//! module of the same crate — `use crate::…`, `super::…` (resolved against inline modules
//! such as `mod tests`), paths in code and inside macro calls, names the crate root
//! re-exports — counts as a dependency of the module the file belongs to. The crate root
//! (`lib.rs`, `main.rs`) is no module of its own: it declares them all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// Cycles known today, to be removed; each pair is listed as (crate folder, module, module).
const KNOWN_CYCLES: &[(&str, &str, &str)] = &[];

/// A crate of the workspace: its folder and the file its modules hang from.
struct Crate {
    dir: PathBuf,
    root: PathBuf,
}

fn workspace_crates() -> Vec<Crate> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![workspace.to_path_buf()];
    let mut members: Vec<PathBuf> = std::fs::read_dir(workspace.join("crates"))
        .expect("the workspace has a crates folder")
        .map(|e| e.expect("a readable crates folder").path())
        .collect();
    members.sort();
    dirs.extend(members);
    dirs.into_iter()
        .filter_map(|dir| {
            let root = ["src/lib.rs", "src/main.rs"]
                .iter()
                .map(|f| dir.join(f))
                .find(|f| f.is_file())?;
            Some(Crate { dir, root })
        })
        .collect()
}

/// The module path of a file below `src/`: `a/b.rs` and `a/b/mod.rs` are `["a", "b"]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("a file below src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    if last != "mod.rs" {
        parts.push(last.trim_end_matches(".rs").to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a readable folder").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

fn parse(file: &Path) -> syn::File {
    let text =
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", file.display()))
}

/// The names a crate root makes available besides its modules: `pub use error::Error` maps
/// `Error` to `error`; `pub use model::*` maps every name `model` declares `pub`.
fn root_exports(
    root: &syn::File,
    modules: &BTreeSet<String>,
    files: &[(Vec<String>, syn::File)],
) -> HashMap<String, String> {
    fn leaves(tree: &syn::UseTree, first: Option<&str>, out: &mut Vec<(String, Option<String>)>) {
        match tree {
            syn::UseTree::Path(p) => {
                let first = first.map_or_else(|| p.ident.to_string(), str::to_string);
                leaves(&p.tree, Some(&first), out);
            }
            syn::UseTree::Name(n) => {
                if let Some(f) = first {
                    out.push((f.to_string(), Some(n.ident.to_string())));
                }
            }
            syn::UseTree::Rename(r) => {
                if let Some(f) = first {
                    out.push((f.to_string(), Some(r.rename.to_string())));
                }
            }
            syn::UseTree::Glob(_) => {
                if let Some(f) = first {
                    out.push((f.to_string(), None));
                }
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    leaves(t, first, out);
                }
            }
        }
    }
    let mut exports = HashMap::new();
    for item in &root.items {
        let syn::Item::Use(u) = item else { continue };
        if matches!(u.vis, syn::Visibility::Inherited) {
            continue;
        }
        let mut found = Vec::new();
        leaves(&u.tree, None, &mut found);
        for (module, name) in found {
            let module = module.trim_start_matches("crate").to_string();
            if !modules.contains(&module) {
                continue;
            }
            match name {
                Some(n) => {
                    exports.insert(n, module);
                }
                None => {
                    for (path, file) in files {
                        if path.first() == Some(&module) {
                            for n in public_names(file) {
                                exports.entry(n).or_insert_with(|| module.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    exports
}

/// The names a file declares `pub` at its top level.
fn public_names(file: &syn::File) -> Vec<String> {
    file.items
        .iter()
        .filter_map(|item| {
            let (vis, ident) = match item {
                syn::Item::Struct(i) => (&i.vis, &i.ident),
                syn::Item::Enum(i) => (&i.vis, &i.ident),
                syn::Item::Fn(i) => (&i.vis, &i.sig.ident),
                syn::Item::Type(i) => (&i.vis, &i.ident),
                syn::Item::Trait(i) => (&i.vis, &i.ident),
                syn::Item::Const(i) => (&i.vis, &i.ident),
                syn::Item::Static(i) => (&i.vis, &i.ident),
                syn::Item::Mod(i) => (&i.vis, &i.ident),
                _ => return None,
            };
            matches!(vis, syn::Visibility::Public(_)).then(|| ident.to_string())
        })
        .collect()
}

/// One dependency: the top-level module named, and where.
struct Use {
    module: String,
    line: usize,
}

/// Collects the top-level modules a file's paths name.
struct Collector<'a> {
    /// The module the code being visited is in (file module plus inline modules).
    here: Vec<String>,
    modules: &'a BTreeSet<String>,
    exports: &'a HashMap<String, String>,
    found: Vec<Use>,
}

impl Collector<'_> {
    /// The top-level module a path starting with `first` then `rest` names, if any.
    fn resolve(&self, segments: &[String]) -> Option<String> {
        let mut base: Vec<String> = match segments.first()?.as_str() {
            "crate" => Vec::new(),
            "super" | "self" => self.here.clone(),
            _ => return None,
        };
        let mut rest = segments;
        if segments[0] == "crate" {
            rest = &segments[1..];
        }
        while let Some(s) = rest.first() {
            match s.as_str() {
                "super" => {
                    base.pop();
                }
                "self" => {}
                _ => break,
            }
            rest = &rest[1..];
        }
        match base.first() {
            Some(top) => Some(top.clone()),
            None => {
                let name = rest.first()?;
                if self.modules.contains(name) {
                    Some(name.clone())
                } else {
                    self.exports.get(name).cloned()
                }
            }
        }
    }

    fn record(&mut self, segments: &[String], line: usize) {
        if let Some(module) = self.resolve(segments) {
            self.found.push(Use { module, line });
        }
    }

    /// Every path a use tree names, each as its full list of segments up to the first name
    /// that is not `crate`, `super` or `self`.
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                let line = p.ident.span().start().line;
                prefix.push(p.ident.to_string());
                if matches!(p.ident.to_string().as_str(), "crate" | "super" | "self") {
                    self.use_tree(prefix, &p.tree);
                } else {
                    self.record(prefix, line);
                }
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                self.record(prefix, n.ident.span().start().line);
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                self.record(prefix, r.ident.span().start().line);
                prefix.pop();
            }
            syn::UseTree::Glob(g) => {
                // `use super::*` brings the parent's names; only the parent is named.
                let line = g.star_token.span.start().line;
                prefix.push("*".into());
                self.record(prefix, line);
                prefix.pop();
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    /// Paths inside macro calls (`format!`, `assert!`, …), which syn leaves as tokens:
    /// `crate :: name` and `super :: name` sequences, not `$crate`.
    fn tokens(&mut self, stream: proc_macro2::TokenStream) {
        use proc_macro2::TokenTree;
        let tokens: Vec<TokenTree> = stream.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id) if id == "crate" || id == "super" => {
                    let after_dollar = i > 0
                        && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '$');
                    if !after_dollar {
                        let mut segments = vec![id.to_string()];
                        let mut j = i + 1;
                        let colon = |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':');
                        while colon(tokens.get(j)) && colon(tokens.get(j + 1)) {
                            let Some(TokenTree::Ident(next)) = tokens.get(j + 2) else {
                                break;
                            };
                            segments.push(next.to_string());
                            j += 3;
                            if next != "super" && next != "self" {
                                break;
                            }
                        }
                        if segments.len() > 1 {
                            self.record(&segments, id.span().start().line);
                        }
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        // An inline module (`mod tests { … }`): `super` inside it is the file's module.
        if m.content.is_some() {
            self.here.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.here.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(first) = path.segments.first() {
            self.record(&segments, first.ident.span().start().line);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

/// For each top-level module of a crate, the modules it uses, with one place for each.
fn dependencies(krate: &Crate) -> BTreeMap<String, BTreeMap<String, String>> {
    let src = krate.dir.join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let files: Vec<(Vec<String>, syn::File)> = paths
        .iter()
        .filter(|p| **p != krate.root)
        .map(|p| (module_path(&src, p), parse(p)))
        .collect();
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|(m, _)| m.first().cloned())
        .collect();
    let exports = root_exports(&parse(&krate.root), &modules, &files);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for ((module, file), path) in files.iter().zip(paths.iter().filter(|p| **p != krate.root)) {
        let mut collector = Collector {
            here: module.clone(),
            modules: &modules,
            exports: &exports,
            found: Vec::new(),
        };
        collector.visit_file(file);
        let top = module[0].clone();
        let edges = graph.entry(top.clone()).or_default();
        for u in collector.found {
            if u.module != top {
                let place = format!(
                    "{}:{}",
                    path.strip_prefix(&krate.dir).unwrap_or(path).display(),
                    u.line
                );
                edges.entry(u.module).or_insert(place);
            }
        }
    }
    graph
}

/// Every cycle, as the strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeMap<String, String>>,
        index: HashMap<&'g str, usize>,
        low: HashMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn connect<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(edges) = s.graph.get(v) {
            for w in edges.keys() {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    connect(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            connect(&mut s, v);
        }
    }
    s.out
}

/// The graph without the known cycles' edges between their two modules.
fn without_known(
    crate_dir: &str,
    mut graph: BTreeMap<String, BTreeMap<String, String>>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    for (dir, a, b) in KNOWN_CYCLES {
        if *dir == crate_dir {
            if let Some(e) = graph.get_mut(*a) {
                e.remove(*b);
            }
            if let Some(e) = graph.get_mut(*b) {
                e.remove(*a);
            }
        }
    }
    graph
}

#[test]
fn no_crate_has_a_cycle_between_its_modules() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut report = String::new();
    let mut stale = Vec::new();
    let crates = workspace_crates();
    assert!(
        crates.len() >= 4,
        "the binary and the library crates are found"
    );
    for krate in &crates {
        let name = krate
            .dir
            .strip_prefix(workspace)
            .expect("a workspace folder");
        let name = if name.as_os_str().is_empty() {
            ".".to_string()
        } else {
            name.display().to_string()
        };
        let graph = dependencies(krate);
        assert!(!graph.is_empty(), "{name}: no modules found");
        for (dir, a, b) in KNOWN_CYCLES {
            if *dir == name
                && !cycles(&graph)
                    .iter()
                    .any(|c| c.contains(&a.to_string()) && c.contains(&b.to_string()))
            {
                stale.push(format!("{dir}: {a} ⇄ {b}"));
            }
        }
        let graph = without_known(&name, graph);
        for cycle in cycles(&graph) {
            report.push_str(&format!(
                "{name}: modules {} depend on each other:\n",
                cycle.join(", ")
            ));
            for a in &cycle {
                for (b, place) in &graph[a] {
                    if cycle.contains(b) {
                        report.push_str(&format!("  {a} uses {b} ({place})\n"));
                    }
                }
            }
        }
    }
    assert!(report.is_empty(), "module cycles:\n{report}move the shared piece into a module of its own, or turn the dependency around");
    assert!(
        stale.is_empty(),
        "cycles listed as known are gone, remove them from KNOWN_CYCLES: {stale:?}"
    );
}

#[test]
fn the_check_sees_uses_through_super_inline_modules_macros_and_reexports() {
    let modules: BTreeSet<String> = ["a", "b", "error"].iter().map(|s| s.to_string()).collect();
    let exports = HashMap::from([("Error".to_string(), "error".to_string())]);
    let file: syn::File = syn::parse_str(
        "use super::b::X;\n\
         mod tests { use super::*; fn t() { super::helper(); } }\n\
         fn f() -> crate::Error { format!(\"{}\", crate::b::y()); todo!() }\n\
         macro_rules! m { () => { $crate::a::z() } }\n",
    )
    .expect("valid Rust");
    let mut c = Collector {
        here: vec!["a".into()],
        modules: &modules,
        exports: &exports,
        found: Vec::new(),
    };
    c.visit_file(&file);
    let named: Vec<(String, usize)> = c.found.into_iter().map(|u| (u.module, u.line)).collect();
    assert!(named.contains(&("b".to_string(), 1)), "{named:?}");
    assert!(named.contains(&("error".to_string(), 3)), "{named:?}");
    assert!(named.contains(&("b".to_string(), 3)), "{named:?}");
    // `super` in `mod tests` of `a` is `a` itself, and `$crate` is not a path of this file.
    assert!(
        named.iter().all(|(m, line)| m != "a" || *line == 2),
        "{named:?}"
    );
    assert!(!named.iter().any(|(_, line)| *line == 4), "{named:?}");

    let graph: BTreeMap<String, BTreeMap<String, String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| {
        (
            k.to_string(),
            v.into_iter()
                .map(|t| (t.to_string(), String::new()))
                .collect(),
        )
    })
    .collect();
    assert_eq!(
        cycles(&graph),
        vec![vec!["a".to_string(), "b".into(), "c".into()]]
    );
}
