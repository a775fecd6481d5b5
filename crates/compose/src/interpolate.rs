//! Variable substitution in compose values: `$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:?e}`,
//! `${V?e}`, `${V:+r}`, `${V+r}`, nesting and `$$`.
//!
//! A port of compose-go's `template` package, quirks included (it is what docker compose runs):
//! the same regular expression (Go's RE2 and the `regex` crate share leftmost-first semantics),
//! defaults and error messages are expanded before the variable is looked up (so an invalid or
//! required variable inside a default fails even when the default is not used), and the first
//! error in a string wins while the rest of the string is still substituted.

use regex::{Captures, Regex};
use std::sync::OnceLock;

/// Why a template could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// Malformed `${…}`; carries the whole template, as compose reports it.
    #[error("invalid template: {template:?}")]
    Invalid { template: String },
    /// `${V:?msg}` / `${V?msg}` with the variable missing (or empty, for `:?`).
    #[error("required variable {variable} is missing a value{}", reason_suffix(.reason))]
    Required { variable: String, reason: String },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

fn pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        Regex::new(
            r"\$(?i:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)|\{(?:(?P<braced>[_a-z][_a-z0-9]*(?::?[-+?](.*))?)\}|(?P<invalid>)))",
        )
        .unwrap_or_else(|e| panic!("interpolation pattern does not compile: {e}"))
    })
}

/// Substitutes the variables of `template`, looking each one up with `lookup`.
pub fn interpolate(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    substitute(template, lookup, &mut |_| {})
}

/// As [`interpolate`], also reporting every variable that was looked up and not set (compose
/// warns about them and substitutes an empty string).
pub(crate) fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<String, InterpolateError> {
    if !template.contains('$') {
        return Ok(template.to_string());
    }
    let re = pattern();
    let mut out = String::with_capacity(template.len());
    let mut first_error: Option<InterpolateError> = None;
    let mut last = 0;
    for caps in re.captures_iter(template) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&template[last..m.start()]);
        last = m.end();
        match replacement(m.as_str(), &caps, lookup, unset) {
            Ok(s) => out.push_str(&s),
            Err(mut e) => {
                if let InterpolateError::Invalid { template: t } = &mut e {
                    if t.is_empty() {
                        *t = template.to_string();
                    }
                }
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    out.push_str(&template[last..]);
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    RequiredNonEmpty,
    Required,
    DefaultIfEmpty,
    DefaultIfUnset,
    AltIfNonEmpty,
    AltIfSet,
}

impl Op {
    fn sep(self) -> &'static str {
        match self {
            Op::RequiredNonEmpty => ":?",
            Op::Required => "?",
            Op::DefaultIfEmpty => ":-",
            Op::DefaultIfUnset => "-",
            Op::AltIfNonEmpty => ":+",
            Op::AltIfSet => "+",
        }
    }
}

/// compose picks the operator that occurs first in the whole matched text.
fn operator_for(substring: &str) -> Op {
    let ops = [
        Op::RequiredNonEmpty,
        Op::Required,
        Op::DefaultIfEmpty,
        Op::DefaultIfUnset,
        Op::AltIfNonEmpty,
        Op::AltIfSet,
    ];
    let mut best = Op::RequiredNonEmpty;
    let mut best_idx: Option<usize> = None;
    for op in ops {
        if let Some(idx) = substring.find(op.sep()) {
            if best_idx.is_none_or(|b| idx < b) {
                best = op;
                best_idx = Some(idx);
            }
        }
    }
    best
}

/// compose's brace matching: counts braces, skipping the character after each `{`.
fn first_brace_closing_index(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut open = 0i64;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'}' {
            open -= 1;
            if open == 0 {
                return Some(i);
            }
        }
        if b[i] == b'{' {
            open += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

fn group<'a>(caps: &'a Captures, name: &str) -> &'a str {
    caps.name(name).map(|m| m.as_str()).unwrap_or("")
}

fn replacement(
    matched: &str,
    whole: &Captures,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<String, InterpolateError> {
    let op = operator_for(matched);
    let (substring, rest) = match first_brace_closing_index(matched) {
        Some(i) => (&matched[..=i], &matched[i + 1..]),
        None => (matched, ""),
    };
    // compose matches the pattern again on the text up to the first closing brace.
    let recaptured;
    let caps = if substring.len() == matched.len() {
        whole
    } else {
        recaptured = match pattern().captures(substring) {
            Some(c) => c,
            None => {
                return Err(InterpolateError::Invalid {
                    template: String::new(),
                })
            }
        };
        &recaptured
    };
    if !group(caps, "escaped").is_empty() {
        return Ok("$".to_string());
    }
    let mut substitution = group(caps, "named");
    let mut braced = false;
    if substitution.is_empty() {
        substitution = group(caps, "braced");
        braced = true;
    }
    if substitution.is_empty() {
        return Err(InterpolateError::Invalid {
            template: String::new(),
        });
    }
    if braced {
        if let Some(value) = apply(op, substitution, lookup, unset)? {
            let nested = substitute(rest, lookup, unset)?;
            return Ok(value + &nested);
        }
    }
    match lookup(substitution) {
        Some(v) => Ok(v),
        None => {
            unset(substitution);
            Ok(String::new())
        }
    }
}

/// Applies an operator; `None` when the substitution does not use it.
fn apply(
    op: Op,
    substitution: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<Option<String>, InterpolateError> {
    let sep = op.sep();
    let (name, arg) = match substitution.split_once(sep) {
        Some(parts) => parts,
        None => return Ok(None),
    };
    let arg = substitute(arg, lookup, unset)?;
    let value = lookup(name);
    let out = match op {
        Op::DefaultIfEmpty => match value {
            Some(v) if !v.is_empty() => v,
            _ => arg,
        },
        Op::DefaultIfUnset => match value {
            Some(v) => v,
            None => arg,
        },
        Op::AltIfNonEmpty => match value {
            Some(v) if !v.is_empty() => arg,
            Some(v) => v,
            None => String::new(),
        },
        Op::AltIfSet => match value {
            Some(_) => arg,
            None => String::new(),
        },
        Op::RequiredNonEmpty | Op::Required => {
            let ok = match &value {
                Some(v) => op == Op::Required || !v.is_empty(),
                None => false,
            };
            if !ok {
                return Err(InterpolateError::Required {
                    variable: name.to_string(),
                    reason: arg,
                });
            }
            value.unwrap_or_default()
        }
    };
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "A" => Some("a".into()),
            "E" => Some(String::new()),
            "N" => Some("1.2".into()),
            _ => None,
        }
    }

    fn s(t: &str) -> Result<String, InterpolateError> {
        interpolate(t, &env)
    }

    #[test]
    fn all_forms() {
        assert_eq!(s("$A ${A} $$A $").unwrap(), "a a $A $");
        assert_eq!(s("${U:-d} ${E:-d} ${E-d} ${U-d}").unwrap(), "d d  d");
        assert_eq!(s("${A:+r} ${E:+r} ${E+r} ${U+r}").unwrap(), "r  r ");
        assert_eq!(s("${U:-${A}}x").unwrap(), "ax");
        assert_eq!(s("${U:-${V:-deep}}").unwrap(), "deep");
        assert_eq!(s("pre-${A}-${U:-x}-post").unwrap(), "pre-a-x-post");
        assert_eq!(s("${a}").unwrap(), "");
        assert_eq!(s("$1 $- x$").unwrap(), "$1 $- x$");
    }

    #[test]
    fn errors() {
        assert_eq!(
            s("${U:?must be set}").unwrap_err().to_string(),
            "required variable U is missing a value: must be set"
        );
        assert!(s("${E?x}").is_ok());
        assert!(s("${E:?x}").is_err());
        assert_eq!(
            s("x ${} y").unwrap_err(),
            InterpolateError::Invalid {
                template: "x ${} y".into()
            }
        );
        assert!(s("${A:x}").is_err());
        assert!(s("${A").is_err());
        // defaults are expanded even when unused
        assert!(s("${A:-${U:?boom}}").is_err());
    }
}
