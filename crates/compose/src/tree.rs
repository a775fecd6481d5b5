//! Key paths in the untyped model (`services.api.build.args`), matched against compose-go's
//! patterns where `*` stands for any key.

/// Whether `path` matches `pattern` segment by segment (`*` matches any one segment).
pub fn matches(path: &[String], pattern: &[&str]) -> bool {
    path.len() == pattern.len()
        && path
            .iter()
            .zip(pattern)
            .all(|(p, pat)| *pat == "*" || p == pat)
}
