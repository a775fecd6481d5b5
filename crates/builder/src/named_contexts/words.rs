//! The small pieces of Dockerfile syntax the rewrite must read as BuildKit's Dockerfile
//! frontend does: image references as it looks named contexts up, `FROM` words with build
//! arguments substituted, flag words with their quotes, and `--mount` fields.
//!
//! Written by hand: the Dockerfile parser crate gives instructions and spans, not these
//! evaluations, and no crate does BuildKit's shell-word expansion on its own. References are
//! read as docker reads them ([`wharf_docker::reference`]).

use std::collections::HashMap;
use std::ops::Range;
use wharf_docker::ImageReference;

/// The name BuildKit looks a named context up by when a Dockerfile names `reference`: its
/// familiar form (`docker.io/library/` dropped) without `:latest`. `None` for a word that is
/// not a valid reference (BuildKit refuses it before looking).
pub fn context_key(reference: &str) -> Option<String> {
    let familiar = ImageReference::parse(reference).ok()?.familiar();
    Some(match familiar.strip_suffix(":latest") {
        Some(s) => s.to_string(),
        None => familiar,
    })
}

/// `reference` written out in full (`docker.io/library/x:latest`): a form no stage name and
/// no stage index can take.
pub fn fully_qualified(reference: &str) -> Option<String> {
    Some(ImageReference::parse(reference).ok()?.normalized())
}

/// Why a `FROM` word could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// It uses a variable whose value only the daemon knows (`BUILDPLATFORM`, …).
    Unknown(String),
    /// A form of substitution wharf does not evaluate.
    Unsupported(String),
    /// `${VAR:?message}` with `VAR` unset: the daemon fails the build.
    Required(String),
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Unknown(v) => write!(
                f,
                "it uses `${v}`, whose value only the daemon knows, so wharf cannot tell whether it names an additional context"
            ),
            ExpandError::Unsupported(form) => write!(
                f,
                "wharf does not evaluate the substitution `{form}`, so it cannot tell whether it names an additional context"
            ),
            ExpandError::Required(v) => write!(f, "`{v}` is required but not set"),
        }
    }
}

/// The variables a `FROM` line sees: the global `ARG`s (with the build's values) and the
/// platform arguments BuildKit provides. `None`: set by the daemon, unknown here.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub values: HashMap<String, Option<String>>,
}

impl Vars {
    fn get(&self, name: &str) -> Result<Option<&str>, ExpandError> {
        match self.values.get(name) {
            Some(Some(v)) => Ok(Some(v)),
            Some(None) => Err(ExpandError::Unknown(name.to_string())),
            None => Ok(None),
        }
    }
}

/// Evaluates `word` as BuildKit's shell lexer does for a `FROM` image: quotes removed, the
/// escape character honoured, `$VAR` / `${VAR}` and the `-`, `+`, `?` forms (with or without
/// `:`) substituted.
pub fn expand(word: &str, vars: &Vars, escape: char) -> Result<String, ExpandError> {
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    expand_until(&chars, &mut i, vars, escape, None)
}

fn expand_until(
    chars: &[char],
    i: &mut usize,
    vars: &Vars,
    escape: char,
    stop: Option<char>,
) -> Result<String, ExpandError> {
    let mut out = String::new();
    while *i < chars.len() {
        let c = chars[*i];
        if Some(c) == stop {
            return Ok(out);
        }
        *i += 1;
        if c == escape {
            if let Some(&n) = chars.get(*i) {
                out.push(n);
                *i += 1;
            }
        } else if c == '\'' {
            while *i < chars.len() && chars[*i] != '\'' {
                out.push(chars[*i]);
                *i += 1;
            }
            *i += 1;
        } else if c == '"' {
            while *i < chars.len() && chars[*i] != '"' {
                let d = chars[*i];
                *i += 1;
                if d == escape
                    && matches!(chars.get(*i), Some(&n) if n == '"' || n == '$' || n == escape)
                {
                    out.push(chars[*i]);
                    *i += 1;
                } else if d == '$' {
                    out.push_str(&dollar(chars, i, vars, escape)?);
                } else {
                    out.push(d);
                }
            }
            *i += 1;
        } else if c == '$' {
            out.push_str(&dollar(chars, i, vars, escape)?);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// After a `$`: the substitution it starts (or a literal `$`).
fn dollar(chars: &[char], i: &mut usize, vars: &Vars, escape: char) -> Result<String, ExpandError> {
    match chars.get(*i) {
        Some('{') => {
            *i += 1;
            let start = *i;
            while *i < chars.len() && is_name_char(chars[*i]) {
                *i += 1;
            }
            let name: String = chars[start..*i].iter().collect();
            match chars.get(*i) {
                Some('}') => {
                    *i += 1;
                    Ok(vars.get(&name)?.unwrap_or("").to_string())
                }
                Some(':') | Some('-') | Some('+') | Some('?') => {
                    let colon = chars[*i] == ':';
                    if colon {
                        *i += 1;
                    }
                    let Some(&op) = chars.get(*i).filter(|c| matches!(c, '-' | '+' | '?')) else {
                        return Err(ExpandError::Unsupported(rest_of_braces(chars, start)));
                    };
                    *i += 1;
                    let word = expand_until(chars, i, vars, escape, Some('}'))?;
                    if chars.get(*i) != Some(&'}') {
                        return Err(ExpandError::Unsupported(rest_of_braces(chars, start)));
                    }
                    *i += 1;
                    let value = vars.get(&name)?;
                    let set = match value {
                        Some(v) => !(colon && v.is_empty()),
                        None => false,
                    };
                    Ok(match op {
                        '-' if set => value.unwrap_or("").to_string(),
                        '-' => word,
                        '+' if set => word,
                        '+' => String::new(),
                        _ if set => value.unwrap_or("").to_string(),
                        _ => return Err(ExpandError::Required(name)),
                    })
                }
                _ => Err(ExpandError::Unsupported(rest_of_braces(chars, start))),
            }
        }
        Some(&c) if is_name_char(c) => {
            let start = *i;
            while *i < chars.len() && is_name_char(chars[*i]) {
                *i += 1;
            }
            let name: String = chars[start..*i].iter().collect();
            Ok(vars.get(&name)?.unwrap_or("").to_string())
        }
        _ => Ok("$".to_string()),
    }
}

fn rest_of_braces(chars: &[char], start: usize) -> String {
    let end = chars[start..]
        .iter()
        .position(|&c| c == '}')
        .map_or(chars.len(), |p| start + p + 1);
    format!("${{{}", chars[start..end].iter().collect::<String>())
}

/// A flag's value as BuildKit reads it (`extractBuilderFlags`): quotes removed, a backslash
/// taking the next character literally.
pub fn flag_word(raw: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (_, c) => out.push(c),
        }
    }
    out
}

/// `value` written as a flag value that [`flag_word`] reads back unchanged.
pub fn quote_flag(value: &str) -> String {
    if value
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    } else {
        value.to_string()
    }
}

/// The fields of a `--mount` value, read as CSV (as BuildKit does): each field's range in
/// `value` and its text with CSV quoting removed.
pub fn csv_fields(value: &str) -> Result<Vec<(Range<usize>, String)>, String> {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        let mut text = String::new();
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match value[i..].find('"') {
                    None => return Err(format!("unterminated quote in `{value}`")),
                    Some(p) => {
                        text.push_str(&value[i..i + p]);
                        i += p + 1;
                        if bytes.get(i) == Some(&b'"') {
                            text.push('"');
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            if i < bytes.len() && bytes[i] != b',' {
                return Err(format!("extraneous text after a quoted field in `{value}`"));
            }
        } else {
            let end = value[i..].find(',').map_or(value.len(), |p| i + p);
            text.push_str(&value[i..end]);
            i = end;
        }
        out.push((start..i, text));
        if i >= bytes.len() {
            return Ok(out);
        }
        i += 1; // the comma
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keys_follow_reference_normalization() {
        assert_eq!(context_key("base").as_deref(), Some("base"));
        assert_eq!(context_key("base:latest").as_deref(), Some("base"));
        assert_eq!(
            context_key("docker.io/library/base").as_deref(),
            Some("base")
        );
        assert_eq!(
            context_key("index.docker.io/library/base:latest").as_deref(),
            Some("base")
        );
        assert_eq!(
            context_key("docker.io/me/base:1").as_deref(),
            Some("me/base:1")
        );
        assert_eq!(
            context_key("localhost:5000/x").as_deref(),
            Some("localhost:5000/x")
        );
        assert_eq!(context_key("my.stage").as_deref(), Some("my.stage"));
        assert_eq!(context_key("Base"), None);
        assert_eq!(context_key("a b"), None);
        assert_eq!(
            fully_qualified("base").as_deref(),
            Some("docker.io/library/base:latest")
        );
        assert_eq!(
            fully_qualified("wharf-context/x:abc").as_deref(),
            Some("docker.io/wharf-context/x:abc")
        );
    }

    fn vars(pairs: &[(&str, Option<&str>)]) -> Vars {
        Vars {
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn from_words_are_expanded_like_the_shell_lexer() {
        let v = vars(&[("A", Some("ctx")), ("E", Some("")), ("P", None)]);
        let x = |w: &str| expand(w, &v, '\\');
        assert_eq!(x("$A").unwrap(), "ctx");
        assert_eq!(x("${A}:1").unwrap(), "ctx:1");
        assert_eq!(x("\"${A}\"").unwrap(), "ctx");
        assert_eq!(x("'${A}'").unwrap(), "${A}");
        assert_eq!(x("${E:-dflt}").unwrap(), "dflt");
        assert_eq!(x("${E-dflt}").unwrap(), "");
        assert_eq!(x("${NOPE-x${A}}").unwrap(), "xctx");
        assert_eq!(x("${A:+alt}").unwrap(), "alt");
        assert_eq!(x("${NOPE:+alt}x").unwrap(), "x");
        assert_eq!(x("\\$A").unwrap(), "$A");
        assert_eq!(expand("`$A", &v, '`').unwrap(), "$A");
        assert_eq!(x("${P}"), Err(ExpandError::Unknown("P".into())));
        assert!(matches!(x("${A#c}"), Err(ExpandError::Unsupported(_))));
        assert_eq!(
            x("${NOPE:?must}"),
            Err(ExpandError::Required("NOPE".into()))
        );
    }

    #[test]
    fn flag_words_and_mount_fields() {
        assert_eq!(flag_word("\"ctx\""), "ctx");
        assert_eq!(flag_word("type=bind,'from=a'"), "type=bind,from=a");
        assert_eq!(quote_flag("a b"), "\"a b\"");
        assert_eq!(flag_word(&quote_flag("x\"y\\z w")), "x\"y\\z w");
        let f = csv_fields("type=bind,\"from=a,b\",target=/x").unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].1, "from=a,b");
        assert_eq!(
            &"type=bind,\"from=a,b\",target=/x"[f[1].0.clone()],
            "\"from=a,b\""
        );
        assert_eq!(csv_fields("").unwrap().len(), 1);
        assert!(csv_fields("\"open").is_err());
    }
}
