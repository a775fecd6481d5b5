//! `.dockerignore` files and Docker's pattern matcher.
//!
//! This is a port of `github.com/moby/patternmatcher` (the matcher BuildKit, the docker CLI and
//! the daemon share) and of its `ignorefile.ReadAll` (how the file's lines become patterns).
//! No crate does this: gitignore implementations (`ignore`, `globset`) have other semantics
//! (no `**` fast paths with Docker's quirks, `!` rules that cannot re-include under an excluded
//! folder, different character classes), and the Rust crates named after `.dockerignore` only
//! classify lines. So the matcher is written by hand, following moby's code step by step: a
//! pattern is cleaned like Go's `filepath.Clean`, checked like Go's `filepath.Match`, classified
//! as exact, prefix, suffix or regex match, and in the last case turned into the same Go regular
//! expression moby builds, which `goregex` restates for the `regex` crate.

use regex::Regex;
use std::fmt;
use wharf_docker::filepath::clean;

/// Why an ignore file or a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A line that is only `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// A pattern Go's `filepath.Match` or `regexp` refuses.
    #[error("syntax error in pattern `{pattern}`{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Syntax {
        pattern: String,
        detail: Option<String>,
    },
    /// A line longer than Go's `bufio.Scanner` accepts.
    #[error("line {line} is too long (over 64 KiB)")]
    LineTooLong { line: usize },
}

/// The patterns of an ignore file, as `ignorefile.ReadAll` returns them.
///
/// A UTF-8 byte-order mark is dropped; a line starting with `#` is a comment (only in the very
/// first column: ` #x` is a pattern); lines are trimmed; blank lines are skipped; the part after
/// a leading `!` is trimmed and cleaned like a path, and a leading `/` is dropped.
pub fn read_patterns(content: &[u8]) -> Result<Vec<String>, PatternError> {
    // Go's bufio.Scanner refuses tokens past its 64 KiB buffer.
    const MAX_LINE: usize = 64 * 1024;
    let content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    let mut out = Vec::new();
    if content.is_empty() {
        return Ok(out);
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    for (n, raw) in body.split(|&b| b == b'\n').enumerate() {
        if raw.len() >= MAX_LINE {
            return Err(PatternError::LineTooLong { line: n + 1 });
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut p = String::new();
        if !pattern.is_empty() {
            p = clean(pattern);
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
        }
        if invert {
            p.insert(0, '!');
        }
        out.push(p);
    }
    Ok(out)
}

#[derive(Debug, Clone)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp(Regex),
    /// Go's `regexp.Compile` refused the translated pattern: matching fails, as in moby, only
    /// when the pattern is actually evaluated.
    Bad(String),
}

/// One cleaned pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    dirs: usize,
    kind: MatchType,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cleaned)
    }
}

impl Pattern {
    /// Whether this is a `!` exception.
    pub fn exclusion(&self) -> bool {
        self.exclusion
    }

    /// The cleaned pattern, without its `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    fn compile(cleaned: &str) -> MatchType {
        #[derive(PartialEq, Clone, Copy)]
        enum Detected {
            Exact,
            Prefix,
            Suffix,
            Regexp,
        }
        let chars: Vec<char> = cleaned.chars().collect();
        let mut re = String::from("^");
        let mut detected = Detected::Exact;
        let mut pos = 0;
        let mut i = 0;
        while pos < chars.len() {
            let ch = chars[pos];
            pos += 1;
            if ch == '*' {
                if chars.get(pos) == Some(&'*') {
                    pos += 1;
                    if chars.get(pos) == Some(&'/') {
                        pos += 1;
                    }
                    if pos >= chars.len() {
                        if detected == Detected::Exact {
                            detected = Detected::Prefix;
                        } else {
                            re.push_str(".*");
                            detected = Detected::Regexp;
                        }
                    } else {
                        re.push_str("(.*/)?");
                        detected = Detected::Regexp;
                    }
                    if i == 0 {
                        detected = Detected::Suffix;
                    }
                } else {
                    re.push_str("[^/]*");
                    detected = Detected::Regexp;
                }
            } else if ch == '?' {
                re.push_str("[^/]");
                detected = Detected::Regexp;
            } else if ".+()|{}$".contains(ch) {
                re.push('\\');
                re.push(ch);
            } else if ch == '\\' {
                if pos < chars.len() {
                    re.push('\\');
                    re.push(chars[pos]);
                    pos += 1;
                    detected = Detected::Regexp;
                } else {
                    re.push('\\');
                }
            } else if ch == '[' || ch == ']' {
                re.push(ch);
                detected = Detected::Regexp;
            } else {
                re.push(ch);
            }
            i += 1;
        }
        match detected {
            Detected::Exact => MatchType::Exact,
            Detected::Prefix => MatchType::Prefix,
            Detected::Suffix => MatchType::Suffix,
            Detected::Regexp => {
                re.push('$');
                match super::goregex::translate(&re)
                    .and_then(|r| Regex::new(&r).map_err(|e| e.to_string()))
                {
                    Ok(r) => MatchType::Regexp(r),
                    Err(e) => MatchType::Bad(e),
                }
            }
        }
    }

    fn matches(&self, path: &str) -> Result<bool, PatternError> {
        Ok(match &self.kind {
            MatchType::Exact => path == self.cleaned,
            MatchType::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            MatchType::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            MatchType::Regexp(re) => re.is_match(path),
            MatchType::Bad(detail) => {
                return Err(PatternError::Syntax {
                    pattern: self.cleaned.clone(),
                    detail: Some(detail.clone()),
                })
            }
        })
    }
}

/// Per-pattern results for a directory, handed down to its children while walking
/// (moby's `MatchInfo`).
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered list of patterns; later patterns override earlier ones.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Builds a matcher from patterns as [`read_patterns`] returns them (moby's `New`).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut pm = PatternMatcher::default();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(PatternError::IllegalExclusion);
                }
                exclusion = true;
                p = rest.to_string();
                pm.exclusions = true;
            }
            // moby's syntax check: `filepath.Match(pattern, ".")` reports a malformed one.
            if wharf_docker::filepath::matches(&p, ".").is_err() {
                return Err(PatternError::Syntax {
                    pattern: p,
                    detail: None,
                });
            }
            let kind = Pattern::compile(&p);
            pm.patterns.push(Pattern {
                dirs: p.split('/').count(),
                cleaned: p,
                exclusion,
                kind,
            });
        }
        Ok(pm)
    }

    /// Whether any pattern is a `!` exception.
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// moby's `MatchesOrParentMatches`: `file` (slash-separated, relative) or one of its parent
    /// folders matches, and no later exception re-includes it.
    pub fn matches_or_parent_matches(&self, file: &str) -> Result<bool, PatternError> {
        let mut matched = false;
        let parent = parent_dir(file);
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut m = pattern.matches(file)?;
            if !m && parent != "." {
                let dirs: Vec<&str> = parent.split('/').collect();
                for i in 0..dirs.len() {
                    m = pattern.matches(&dirs[..=i].join("/")).unwrap_or(false);
                    if m {
                        break;
                    }
                }
            }
            if m {
                matched = !pattern.exclusion;
            }
        }
        Ok(matched)
    }

    /// moby's deprecated `Matches` (it only compares the pattern with as many leading parent
    /// components as the pattern has). The daemon's classic builder still uses it to decide
    /// whether to drop the Dockerfile and `.dockerignore` from a context.
    pub fn matches_deprecated(&self, file: &str) -> Result<bool, PatternError> {
        let mut matched = false;
        let parent = parent_dir(file);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut m = pattern.matches(file)?;
            if !m && parent != "." && pattern.dirs <= parent_dirs.len() {
                m = pattern
                    .matches(&parent_dirs[..pattern.dirs].join("/"))
                    .unwrap_or(false);
            }
            if m {
                matched = !pattern.exclusion;
            }
        }
        Ok(matched)
    }

    /// moby's `MatchesUsingParentResults`: like [`Self::matches_or_parent_matches`], reusing the
    /// parent folder's per-pattern results. This is what BuildKit's context transfer (fsutil)
    /// and the docker CLI's tar writer call while walking.
    pub fn matches_using_parent_results(
        &self,
        file: &str,
        parent: &MatchInfo,
    ) -> Result<(bool, MatchInfo), PatternError> {
        let parent_matched = &parent.parent_matched;
        debug_assert!(parent_matched.is_empty() || parent_matched.len() == self.patterns.len());
        let mut matched = false;
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut m = parent_matched.get(i).copied().unwrap_or(false);
            if !m {
                if pattern.exclusion != matched {
                    continue;
                }
                m = pattern.matches(file)?;
                if !m && parent_matched.is_empty() {
                    let parent_path = parent_dir(file);
                    if parent_path != "." {
                        let dirs: Vec<&str> = parent_path.split('/').collect();
                        for j in 0..dirs.len() {
                            m = pattern.matches(&dirs[..=j].join("/")).unwrap_or(false);
                            if m {
                                break;
                            }
                        }
                    }
                }
            }
            info.parent_matched[i] = m;
            if m {
                matched = !pattern.exclusion;
            }
        }
        Ok((matched, info))
    }
}

/// Go's `filepath.Dir` for the relative, cleaned paths the matcher sees.
fn parent_dir(file: &str) -> &str {
    match file.rfind('/') {
        Some(0) => "/",
        Some(i) => &file[..i],
        None => ".",
    }
}

/// Escapes a literal path so that it is read back as a pattern matching exactly that path.
pub fn escape_pattern(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for (i, c) in path.chars().enumerate() {
        let at_edge = i == 0 || i + 1 == path.chars().count();
        if at_edge && c.is_whitespace() {
            // Lines are trimmed, and a trailing `\ ` would lose its space: use a class.
            out.push('[');
            out.push(c);
            out.push(']');
            continue;
        }
        if matches!(c, '*' | '?' | '[' | ']' | '\\') || (i == 0 && matches!(c, '!' | '#')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    //! Test vectors ported from github.com/moby/patternmatcher (patternmatcher_test.go and
    //! ignorefile/ignorefile_test.go), Copyright Docker, Inc., Apache License 2.0.

    use super::*;

    fn matches(file: &str, patterns: &[&str]) -> Result<bool, PatternError> {
        // moby's package-level `Matches`.
        let pm = PatternMatcher::new(patterns)?;
        let file = clean(file);
        if file == "." {
            return Ok(false);
        }
        pm.matches_deprecated(&file)
    }

    #[test]
    fn simple_cases() {
        assert!(matches("fileutils.go", &["*"]).unwrap());
        assert!(matches("fileutils.go", &["*.go"]).unwrap());
        assert!(matches("fileutils.go", &["!fileutils.go", "*.go"]).unwrap());
        assert!(!matches("docs/README.md", &["docs", "!docs/README.md"]).unwrap());
        assert!(!matches("docs/README.md", &["docs/", "!docs/README.md"]).unwrap());
        assert!(!matches("docs/README.md", &["docs/*", "!docs/README.md"]).unwrap());
        assert!(!matches("fileutils.go", &["*.go", "!fileutils.go"]).unwrap());
        assert!(!matches(".", &["*.go"]).unwrap());
        assert!(matches("fileutils.go", &["!"]).is_err());
        assert!(!matches("/any/path/there", &[]).unwrap());
        assert!(matches("/any/path/there", &["["]).is_err());
    }

    const TESTS: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "file/", true),
        ("**/", "file", true),
        ("**/", "file/", true),
        ("**", "/", true),
        ("**/", "/", true),
        ("**", "dir/file", true),
        ("**/", "dir/file", true),
        ("**", "dir/file/", true),
        ("**/", "dir/file/", true),
        ("**/**", "dir/file", true),
        ("**/**", "dir/file/", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/file/", true),
        ("dir/**", "dir/dir2/file", true),
        ("dir/**", "dir/dir2/file/", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/*", "dir/dir2/file/", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**/dir2/**", "dir/dir2/dir3/file/", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**/file", "dir/file", true),
        ("**file", "dir/dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/file*.txt", "dir/dir/file.txt", true),
        ("**/file*.txt*", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc.def", "abcZdef", false),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("a\\\\", "a\\", true),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def", true),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        ("a\\*b", "a*b", true),
    ];

    const MULTI: &[(&[&str], &str, bool)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (
            &[
                "**",
                "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            ],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
    ];

    fn check_with_parents(pm: &PatternMatcher, text: &str) -> bool {
        let parent = parent_dir(text);
        let mut info = MatchInfo::default();
        if parent != "." {
            let dirs: Vec<&str> = parent.split('/').collect();
            for i in 0..dirs.len() {
                info = pm
                    .matches_using_parent_results(&dirs[..=i].join("/"), &info)
                    .unwrap()
                    .1;
            }
        }
        pm.matches_using_parent_results(text, &info).unwrap().0
    }

    #[test]
    fn matches_table() {
        for &(pattern, text, pass) in TESTS {
            let pm = PatternMatcher::new(&[pattern]).unwrap();
            assert_eq!(
                pm.matches_or_parent_matches(text).unwrap(),
                pass,
                "MatchesOrParentMatches {pattern:?} {text:?}"
            );
            assert_eq!(
                check_with_parents(&pm, text),
                pass,
                "MatchesUsingParentResults {pattern:?} {text:?}"
            );
            assert_eq!(
                pm.matches_using_parent_results(text, &MatchInfo::default())
                    .unwrap()
                    .0,
                pass,
                "MatchesUsingParentResults (no context) {pattern:?} {text:?}"
            );
        }
        for &(patterns, text, pass) in MULTI {
            let pm = PatternMatcher::new(patterns).unwrap();
            assert_eq!(pm.matches_or_parent_matches(text).unwrap(), pass);
            assert_eq!(check_with_parents(&pm, text), pass);
            assert_eq!(
                pm.matches_using_parent_results(text, &MatchInfo::default())
                    .unwrap()
                    .0,
                pass
            );
        }
    }

    #[test]
    fn clean_patterns() {
        assert_eq!(
            PatternMatcher::new(&["docs", "config"])
                .unwrap()
                .patterns()
                .len(),
            2
        );
        assert_eq!(
            PatternMatcher::new(&["docs", "config", ""])
                .unwrap()
                .patterns()
                .len(),
            2
        );
        assert!(PatternMatcher::new(&["docs", "!docs/README.md"])
            .unwrap()
            .exclusions());
        assert!(PatternMatcher::new(&["docs", "  !docs/README.md"])
            .unwrap()
            .exclusions());
        assert!(PatternMatcher::new(&["docs", "!docs/README.md  "])
            .unwrap()
            .exclusions());
        assert_eq!(
            PatternMatcher::new(&["!"]).unwrap_err(),
            PatternError::IllegalExclusion
        );
    }

    // moby's `TestMatch`: Go's filepath.Match table run through the pattern matcher, not a
    // second test of `wharf_docker::filepath::matches`. It differs from Go's where a pattern
    // also matches what is under a folder it matches (`a*` matches `ab/c`).
    // (pattern, text, match, is syntax error)
    const MATCH_TESTS: &[(&str, &str, bool, bool)] = &[
        ("abc", "abc", true, false),
        ("*", "abc", true, false),
        ("*c", "abc", true, false),
        ("a*", "a", true, false),
        ("a*", "abc", true, false),
        ("a*", "ab/c", true, false),
        ("a*/b", "abc/b", true, false),
        ("a*/b", "a/c/b", false, false),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", true, false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true, false),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false, false),
        ("a*b?c*x", "abxbbxdbxebxczzx", true, false),
        ("a*b?c*x", "abxbbxdbxebxczzy", false, false),
        ("ab[c]", "abc", true, false),
        ("ab[b-d]", "abc", true, false),
        ("ab[e-g]", "abc", false, false),
        ("ab[^c]", "abc", false, false),
        ("ab[^b-d]", "abc", false, false),
        ("ab[^e-g]", "abc", true, false),
        ("a\\*b", "a*b", true, false),
        ("a\\*b", "ab", false, false),
        ("a?b", "a☺b", true, false),
        ("a[^a]b", "a☺b", true, false),
        ("a???b", "a☺b", false, false),
        ("a[^a][^a][^a]b", "a☺b", false, false),
        ("[a-ζ]*", "α", true, false),
        ("*[a-ζ]", "A", false, false),
        ("a?b", "a/b", false, false),
        ("a*b", "a/b", false, false),
        ("[\\]a]", "]", true, false),
        ("[\\-]", "-", true, false),
        ("[x\\-]", "x", true, false),
        ("[x\\-]", "-", true, false),
        ("[x\\-]", "z", false, false),
        ("[\\-x]", "x", true, false),
        ("[\\-x]", "-", true, false),
        ("[\\-x]", "a", false, false),
        ("[]a]", "]", false, true),
        ("[-]", "-", false, true),
        ("[x-]", "x", false, true),
        ("[x-]", "-", false, true),
        ("[x-]", "z", false, true),
        ("[-x]", "x", false, true),
        ("[-x]", "-", false, true),
        ("[-x]", "a", false, true),
        ("\\", "a", false, true),
        ("[a-b-c]", "a", false, true),
        ("[", "a", false, true),
        ("[^", "a", false, true),
        ("[^bc", "a", false, true),
        ("a[", "a", false, true),
        ("a[", "ab", false, true),
        ("*x", "xxx", true, false),
    ];

    #[test]
    fn match_table() {
        for &(pattern, text, want, bad) in MATCH_TESTS {
            match matches(text, &[pattern]) {
                Ok(got) => {
                    assert!(!bad, "{pattern:?} should be a syntax error");
                    assert_eq!(got, want, "Match({pattern:?}, {text:?})");
                }
                Err(e) => assert!(bad, "{pattern:?} {text:?}: unexpected {e}"),
            }
        }
    }

    #[test]
    fn compile_kinds() {
        let kind = |p: &str| match Pattern::compile(&clean(p)) {
            MatchType::Exact => "exact",
            MatchType::Prefix => "prefix",
            MatchType::Suffix => "suffix",
            MatchType::Regexp(_) => "regexp",
            MatchType::Bad(_) => "bad",
        };
        for (p, k) in [
            ("*", "regexp"),
            ("file*", "regexp"),
            ("*file", "regexp"),
            ("a*/b", "regexp"),
            ("**", "suffix"),
            ("**/**", "regexp"),
            ("dir/**", "prefix"),
            ("**/dir", "suffix"),
            ("**/dir2/*", "regexp"),
            ("**/dir2/**", "regexp"),
            ("**file", "suffix"),
            ("**/file*txt", "regexp"),
            ("**/**/*.txt", "regexp"),
            ("a[b-d]e", "regexp"),
            (".*", "regexp"),
            ("abc.def", "exact"),
            ("abc?def", "regexp"),
            ("**/foo/bar", "suffix"),
            ("a(b)c/def", "exact"),
            ("a.|)$(}+{bc", "exact"),
        ] {
            assert_eq!(kind(p), k, "{p}");
        }
    }

    #[test]
    fn malformed_regex_fails_when_evaluated() {
        // Passes filepath.Match's check, but `l-O` is a reversed range for Go's regexp.
        let pm = PatternMatcher::new(&["[Local-Only]/"]).unwrap();
        assert!(pm.matches_or_parent_matches("x").is_err());
        assert!(pm.matches_or_parent_matches("x").is_err());
        // An exception is only evaluated once something matched before it.
        let pm = PatternMatcher::new(&["a", "![z-a]"]).unwrap();
        assert!(!pm.matches_or_parent_matches("b").unwrap());
        assert!(pm.matches_or_parent_matches("a").is_err());
    }

    #[test]
    fn read_all() {
        assert!(read_patterns(b"").unwrap().is_empty());
        let content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        assert_eq!(
            read_patterns(content.as_bytes()).unwrap(),
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
    }

    #[test]
    fn read_all_details() {
        let got = read_patterns(
            b"\xEF\xBB\xBF# bom then comment\r\n #not-a-comment\r\n./a/../b/\n\tc//d/.\t\n/\n!/x/\n",
        )
        .unwrap();
        assert_eq!(got, ["#not-a-comment", "b", "c/d", "/", "!x"]);
    }

    #[test]
    fn escape_roundtrip() {
        for p in [
            "a*b",
            "[x]",
            "!bang",
            "#hash",
            " lead",
            "trail ",
            "back\\slash",
            "q?",
        ] {
            let pm =
                PatternMatcher::new(&read_patterns(escape_pattern(p).as_bytes()).unwrap()).unwrap();
            assert!(pm.matches_or_parent_matches(p).unwrap(), "{p}");
        }
    }
}
