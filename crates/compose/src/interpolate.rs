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
    /// `${V:-${W:-…}}` nested deeper than [`MAX_NESTING`].
    #[error("variables are nested more than {limit} levels deep (`${{V:-${{W:-…}}}}`)")]
    TooDeep { limit: usize },
}

/// How deep defaults, alternatives and error messages may nest. compose has no limit, but
/// every level costs a copy of the rest of the string and a native stack frame, so a few KB of
/// `${A:-${A:-…}}` would otherwise take seconds and hundreds of MB (or the stack); real files
/// nest two or three levels.
pub const MAX_NESTING: usize = 64;

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
    substitute_at(template, lookup, unset, 0)
}

/// Part of a template still to substitute, with its matches (collected up front, so that no
/// regex search state stays borrowed while nested templates are substituted).
struct Segment<'t> {
    text: &'t str,
    matches: std::vec::IntoIter<Captures<'t>>,
    last: usize,
}

impl<'t> Segment<'t> {
    fn new(text: &'t str) -> Segment<'t> {
        Segment {
            text,
            matches: pattern()
                .captures_iter(text)
                .collect::<Vec<_>>()
                .into_iter(),
            last: 0,
        }
    }
}

/// Substitutes `template`, `depth` levels inside defaults of enclosing templates.
fn substitute_at(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
    depth: usize,
) -> Result<String, InterpolateError> {
    if !template.contains('$') {
        return Ok(template.to_string());
    }
    if depth > MAX_NESTING {
        return Err(InterpolateError::TooDeep { limit: MAX_NESTING });
    }
    let mut out = String::with_capacity(template.len());
    let mut first_error: Option<InterpolateError> = None;
    // compose substitutes the text of a match after its first closing brace as a template of
    // its own, recursively; a stack keeps a long line of `${V:-d}` forms off the native stack.
    let mut stack = vec![Segment::new(template)];
    while let Some(segment) = stack.last_mut() {
        let Some(caps) = segment.matches.next() else {
            out.push_str(&segment.text[segment.last..]);
            stack.pop();
            continue;
        };
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&segment.text[segment.last..m.start()]);
        segment.last = m.end();
        let text = segment.text;
        match replacement(m.as_str(), &caps, lookup, unset, depth) {
            Ok((value, rest)) => {
                out.push_str(&value);
                if let Some(rest) = rest {
                    stack.push(Segment::new(rest));
                }
            }
            Err(mut e) => {
                if let InterpolateError::Invalid { template: t } = &mut e {
                    if t.is_empty() {
                        *t = text.to_string();
                    }
                }
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
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

/// The value of one match, and the text after its first closing brace when that is to be
/// substituted next (compose's recursion on it).
fn replacement<'m>(
    matched: &'m str,
    whole: &Captures,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
    depth: usize,
) -> Result<(String, Option<&'m str>), InterpolateError> {
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
        return Ok(("$".to_string(), None));
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
        if let Some(value) = apply(op, substitution, lookup, unset, depth)? {
            return Ok((value, Some(rest)));
        }
    }
    match lookup(substitution) {
        Some(v) => Ok((v, None)),
        None => {
            unset(substitution);
            Ok((String::new(), None))
        }
    }
}

/// Applies an operator; `None` when the substitution does not use it.
fn apply(
    op: Op,
    substitution: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
    depth: usize,
) -> Result<Option<String>, InterpolateError> {
    let sep = op.sep();
    let (name, arg) = match substitution.split_once(sep) {
        Some(parts) => parts,
        None => return Ok(None),
    };
    let arg = substitute_at(arg, lookup, unset, depth + 1)?;
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

    fn nested(levels: usize) -> String {
        "${U:-".repeat(levels) + "x" + &"}".repeat(levels)
    }

    #[test]
    fn nesting_is_bounded_with_a_clear_error() {
        assert_eq!(s(&nested(MAX_NESTING + 1)).unwrap(), "x");
        let e = s(&nested(MAX_NESTING + 2)).unwrap_err();
        assert_eq!(e, InterpolateError::TooDeep { limit: MAX_NESTING });
        assert!(e.to_string().contains("nested more than 64 levels"), "{e}");
        // Thousands of levels fail as fast, before any of them is substituted.
        let started = std::time::Instant::now();
        assert!(s(&nested(5000)).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_long_line_of_defaults_is_not_nesting() {
        // compose substitutes the text after each default's closing brace as a template of its
        // own: 1500 of them on one line must neither count as nesting nor use the stack.
        let line = "${U:-a}-".repeat(1_500);
        let out = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || s(&line))
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        assert_eq!(out, "a-".repeat(1_500));
    }
}
