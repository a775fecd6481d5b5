//! What the daemon asks for when it reads a folder through a BuildKit session: include and
//! exclude patterns and "follow paths", applied by the client (fsutil's `FilterOpt` and
//! `NewFilterFS`).
//!
//! The daemon sends the patterns of the ignore file it read (through the same session) as
//! exclude patterns, and names single files it wants (the Dockerfile, `.dockerignore`) as
//! follow paths: those are taken as include patterns, together with the targets of any
//! symlinks along them, so that a link and what it points to travel together.

use super::ignore::{clean, PatternError, PatternMatcher};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// The filters of one transfer.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// When set, only paths matching these are sent.
    pub(crate) include: Option<PatternMatcher>,
    pub(crate) exclude: PatternMatcher,
}

impl Filter {
    /// The filters for `root` (`None`: a folder without symlinks, such as the virtual folder
    /// holding the Dockerfile), as fsutil's `NewFilterFS` builds them.
    pub fn new(
        root: Option<&Path>,
        include_patterns: &[String],
        exclude_patterns: &[String],
        follow_paths: &[String],
    ) -> Result<Filter, PatternError> {
        let mut includes: Vec<String> = include_patterns.to_vec();
        if !follow_paths.is_empty() {
            if let Some(targets) = follow_links(root, follow_paths) {
                includes.extend(targets);
                includes = dedupe_paths(&includes).unwrap_or_default();
            }
        }
        let include = if includes.is_empty() {
            None
        } else {
            Some(PatternMatcher::new(&includes)?)
        };
        Ok(Filter {
            include,
            exclude: PatternMatcher::new(exclude_patterns)?,
        })
    }

    /// Whether a single path (with no folder of its own in the listing) passes the filters:
    /// fsutil's check for a file it opens directly.
    pub(crate) fn admits(&self, path: &str) -> Result<bool, PatternError> {
        if let Some(include) = &self.include {
            if !include.matches_or_parent_matches(path)? {
                return Ok(false);
            }
        }
        Ok(self.exclude.is_empty() || !self.exclude.matches_or_parent_matches(path)?)
    }
}

/// fsutil's `FollowLinks`: every path, with each symlink along it resolved (relative to
/// `root`), as a sorted list of relative paths; `None` when one of them is the root itself
/// (no filter at all).
fn follow_links(root: Option<&Path>, paths: &[String]) -> Option<Vec<String>> {
    let mut resolver = Resolver {
        root,
        resolved: BTreeSet::new(),
    };
    for p in paths {
        resolver.append(p);
    }
    let all: Vec<String> = resolver.resolved.into_iter().collect();
    dedupe_paths(&all)
}

struct Resolver<'a> {
    root: Option<&'a Path>,
    resolved: BTreeSet<String>,
}

impl Resolver<'_> {
    fn append(&mut self, p: &str) {
        let mut rest = join(".", p);
        let mut current = ".".to_string();
        loop {
            let (first, tail) = match rest.split_once('/') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (rest.clone(), String::new()),
            };
            current = join(&current, &first);
            let targets = self.read_symlink(&current, true);
            rest = tail;
            if (rest.is_empty() || targets.is_some()) && self.resolved.contains(&current) {
                return;
            }
            if let Some(targets) = targets {
                self.resolved.insert(current.clone());
                for target in targets {
                    self.append(&join(&target, &rest));
                }
                return;
            }
            if rest.is_empty() {
                self.resolved.insert(current);
                return;
            }
        }
    }

    /// The targets of the symlink at `p` (absolute within the root), or `None` when it is no
    /// symlink. A last component with wildcards stands for every matching entry.
    fn read_symlink(&self, p: &str, allow_wildcard: bool) -> Option<Vec<String>> {
        let root = self.root?;
        let (dir, base) = match p.rsplit_once('/') {
            Some((d, b)) => (d, b),
            None => (".", p),
        };
        if allow_wildcard && contains_wildcards(base) {
            let mut out = Vec::new();
            let mut names: Vec<String> = fs::read_dir(root.join(dir))
                .ok()?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect();
            names.sort();
            for name in names {
                if go_match(base, &name) {
                    out.extend(
                        self.read_symlink(&join(dir, &name), false)
                            .unwrap_or_default(),
                    );
                }
            }
            return (!out.is_empty()).then_some(out);
        }
        if p == "." || p == "/" {
            return None;
        }
        let full = root.join(p.trim_start_matches('/'));
        let meta = fs::symlink_metadata(&full).ok()?;
        if !meta.file_type().is_symlink() {
            return None;
        }
        let link = fs::read_link(&full).ok()?;
        let link = clean(&link.to_string_lossy());
        if link.starts_with('/') {
            Some(vec![link])
        } else {
            Some(vec![clean(&format!("/{dir}/{link}"))])
        }
    }
}

/// Go's `filepath.Join(a, b)` for slash-separated paths: joined, then cleaned.
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean(b),
        (false, true) => clean(a),
        (false, false) => clean(&format!("{a}/{b}")),
    }
}

/// fsutil's `dedupePaths`: drops paths under the path before them; `None` when one is the root.
fn dedupe_paths(paths: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut last = String::new();
    for s in paths {
        if s == "." {
            return None;
        }
        if s.starts_with(&format!("{last}/")) {
            continue;
        }
        out.push(s.clone());
        last = s.clone();
    }
    Some(out)
}

fn contains_wildcards(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Go's `filepath.Match` (Unix), for one name against one pattern. Written by hand: the glob
/// crates differ from Go on classes and escapes, and this is only the few lines Go has.
/// A malformed pattern matches nothing, as Go reports it as an error that fsutil ignores.
fn go_match(pattern: &str, name: &str) -> bool {
    let mut pattern: Vec<char> = pattern.chars().collect();
    let mut name: Vec<char> = name.chars().collect();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(&pattern);
        if star && chunk.is_empty() {
            return !name.contains(&'/');
        }
        match match_chunk(&chunk, &name) {
            Some(t) if t.is_empty() || !rest.is_empty() => {
                name = t;
                pattern = rest;
                continue;
            }
            Some(_) | None => {}
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != '/' {
                if let Some(t) = match_chunk(&chunk, &name[i + 1..]) {
                    if rest.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    pattern = rest;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        return false;
    }
    name.is_empty()
}

fn scan_chunk(pattern: &[char]) -> (bool, Vec<char>, Vec<char>) {
    let mut p = pattern;
    let mut star = false;
    while let Some('*') = p.first() {
        p = &p[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' if i + 1 < p.len() => i += 1,
            '[' => in_range = true,
            ']' => in_range = false,
            '*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, p[..i].to_vec(), p[i..].to_vec())
}

/// Matches `chunk` at the start of `s`; the rest of `s`, or `None`.
fn match_chunk(chunk: &[char], s: &[char]) -> Option<Vec<char>> {
    let mut chunk = chunk;
    let mut s = s;
    while let Some(&c) = chunk.first() {
        match c {
            '[' => {
                let r = *s.first()?;
                s = &s[1..];
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut n = 0;
                loop {
                    if !chunk.is_empty() && chunk[0] == ']' && n > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, after) = class_char(chunk)?;
                    chunk = after;
                    let mut hi = lo;
                    if chunk.first() == Some(&'-') {
                        let (h, after) = class_char(&chunk[1..])?;
                        hi = h;
                        chunk = after;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    n += 1;
                }
                if matched == negated {
                    return None;
                }
            }
            '?' => {
                if *s.first()? == '/' {
                    return None;
                }
                s = &s[1..];
                chunk = &chunk[1..];
            }
            '\\' => {
                chunk = &chunk[1..];
                let want = *chunk.first()?;
                if *s.first()? != want {
                    return None;
                }
                s = &s[1..];
                chunk = &chunk[1..];
            }
            _ => {
                if *s.first()? != c {
                    return None;
                }
                s = &s[1..];
                chunk = &chunk[1..];
            }
        }
    }
    Some(s.to_vec())
}

fn class_char(chunk: &[char]) -> Option<(char, &[char])> {
    match chunk.first()? {
        '-' | ']' => None,
        '\\' => Some((*chunk.get(1)?, &chunk[2..])),
        &c => Some((c, &chunk[1..])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn go_filepath_match() {
        for (p, n, want) in [
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*/b", "abc/b", true),
            ("a*b*c", "abxbbxdbxc", true),
            ("a?c", "abc", true),
            ("a[b-d]c", "acc", true),
            ("a[^b-d]c", "acc", false),
            ("a[^b-d]c", "aec", true),
            ("a\\*c", "a*c", true),
            ("a\\*c", "abc", false),
            ("*.txt", "notes.txt", true),
            ("*.txt", "notes.md", false),
            ("[", "a", false),
            ("Dockerfile*", "Dockerfile.dockerignore", true),
        ] {
            assert_eq!(go_match(p, n), want, "{p} {n}");
        }
    }

    #[test]
    fn follow_paths_bring_link_targets() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("docker")).unwrap();
        fs::write(r.join("docker/Real.Dockerfile"), "FROM scratch\n").unwrap();
        symlink("docker/Real.Dockerfile", r.join("Dockerfile")).unwrap();
        symlink("/docker", r.join("abs")).unwrap();
        let got = follow_links(Some(r), &["Dockerfile".into(), ".dockerignore".into()]).unwrap();
        assert_eq!(
            got,
            [".dockerignore", "Dockerfile", "docker/Real.Dockerfile"]
        );
        let got = follow_links(Some(r), &["abs/Real.Dockerfile".into()]).unwrap();
        assert_eq!(got, ["abs", "docker/Real.Dockerfile"]);
        assert_eq!(follow_links(Some(r), &[".".into()]), None);
        // Without a folder behind it, a follow path is just an include pattern.
        assert_eq!(
            follow_links(None, &["./Dockerfile".into()]).unwrap(),
            ["Dockerfile"]
        );
    }

    #[test]
    fn filter_admits() {
        let f = Filter::new(None, &[], &["*.md".into(), "!keep.md".into()], &[]).unwrap();
        assert!(f.admits("a.txt").unwrap());
        assert!(!f.admits("a.md").unwrap());
        assert!(f.admits("keep.md").unwrap());
        let f = Filter::new(None, &[], &[], &["Dockerfile".into()]).unwrap();
        assert!(f.admits("Dockerfile").unwrap());
        assert!(!f.admits("Dockerfile.dockerignore").unwrap());
    }
}
