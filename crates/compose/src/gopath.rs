//! Go's lexical `path/filepath` functions (Unix), which compose's path handling is built on.
//!
//! compose joins and cleans paths as strings (`filepath.Join("sub", "../x")` is `"x"`), keeps
//! some of them relative on purpose (an included project's folder is relative to the including
//! one until the end), and never touches the file system to do it. Rust's `Path` does not
//! resolve `..` lexically, so this is the small part of Go's library compose depends on.

/// `filepath.Clean`.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if let Some(last) = parts.last() {
                    if *last != ".." {
                        parts.pop();
                        continue;
                    }
                }
                if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// `filepath.Join`: joins the non-empty elements and cleans the result.
pub fn join(parts: &[&str]) -> String {
    let non_empty: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if non_empty.is_empty() {
        return String::new();
    }
    clean(&non_empty.join("/"))
}

pub fn is_abs(path: &str) -> bool {
    path.starts_with('/')
}

/// `filepath.Abs` against `cwd` (the process's working directory).
pub fn abs(path: &str, cwd: &str) -> String {
    if is_abs(path) {
        clean(path)
    } else {
        join(&[cwd, path])
    }
}

/// `filepath.Dir`.
pub fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".to_string(),
    }
}

/// `filepath.Base`.
pub fn base(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_string();
    }
    match trimmed.rfind('/') {
        Some(i) => trimmed[i + 1..].to_string(),
        None => trimmed.to_string(),
    }
}

/// `filepath.Rel` (lexical); `None` where Go returns an error.
pub fn rel(basepath: &str, targpath: &str) -> Option<String> {
    let base = clean(basepath);
    let targ = clean(targpath);
    if targ == base {
        return Some(".".to_string());
    }
    let base = if base == "." { String::new() } else { base };
    let base_slashed = base.starts_with('/');
    let targ_slashed = targ.starts_with('/');
    if base_slashed != targ_slashed {
        return None;
    }
    let bl = base.len();
    let tl = targ.len();
    let bb = base.as_bytes();
    let tb = targ.as_bytes();
    let (mut b0, mut bi, mut t0, mut ti) = (0usize, 0usize, 0usize, 0usize);
    loop {
        while bi < bl && bb[bi] != b'/' {
            bi += 1;
        }
        while ti < tl && tb[ti] != b'/' {
            ti += 1;
        }
        if targ[t0..ti] != base[b0..bi] {
            break;
        }
        if bi < bl {
            bi += 1;
        }
        if ti < tl {
            ti += 1;
        }
        b0 = bi;
        t0 = ti;
        if b0 >= bl && t0 >= tl {
            break;
        }
    }
    if &base[b0..bi] == ".." {
        return None;
    }
    if b0 != bl {
        let seps = base[b0..].matches('/').count();
        let mut out = String::from("..");
        for _ in 0..seps {
            out.push_str("/..");
        }
        if t0 != tl {
            out.push('/');
            out.push_str(&targ[t0..]);
        }
        return Some(out);
    }
    Some(targ[t0..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_go() {
        assert_eq!(clean("a/../../b/./c/"), "../b/c");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(join(&["/p", "./app/"]), "/p/app");
        assert_eq!(join(&["sub", "../x"]), "x");
        assert_eq!(join(&["", "x"]), "x");
        assert_eq!(dir("/a/b/c.yml"), "/a/b");
        assert_eq!(dir("c.yml"), ".");
        assert_eq!(base("/a/My Dir/"), "My Dir");
        assert_eq!(rel("/p", "/p/sub").as_deref(), Some("sub"));
        assert_eq!(rel("/p/a", "/p/b/c").as_deref(), Some("../b/c"));
        assert_eq!(rel("/p", "/p").as_deref(), Some("."));
        assert_eq!(rel("/p", "x"), None);
    }
}
