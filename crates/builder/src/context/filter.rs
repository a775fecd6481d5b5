//! What the daemon asks for when it reads a folder through a BuildKit session: include and
//! exclude patterns and "follow paths", applied by the client (fsutil's `FilterOpt` and
//! `NewFilterFS`).
//!
//! The daemon sends the patterns of the ignore file it read (through the same session) as
//! exclude patterns, and names single files it wants (the Dockerfile, `.dockerignore`) as
//! follow paths: those are taken as include patterns, together with the targets of any
//! symlinks along them, so that a link and what it points to travel together.

use super::ignore::{PatternError, PatternMatcher};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use wharf_docker::filepath::{clean, join, matches};

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
        let mut rest = join(&[".", p]);
        let mut current = ".".to_string();
        loop {
            let (first, tail) = match rest.split_once('/') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (rest.clone(), String::new()),
            };
            current = join(&[&current, &first]);
            let targets = self.read_symlink(&current, true);
            rest = tail;
            if (rest.is_empty() || targets.is_some()) && self.resolved.contains(&current) {
                return;
            }
            if let Some(targets) = targets {
                self.resolved.insert(current.clone());
                for target in targets {
                    self.append(&join(&[&target, &rest]));
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
                // fsutil ignores `filepath.Match`'s error: a malformed pattern matches nothing.
                if matches(base, &name).unwrap_or(false) {
                    out.extend(
                        self.read_symlink(&join(&[dir, &name]), false)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

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
