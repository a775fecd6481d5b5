//! Points a Dockerfile's uses of named contexts at image references the daemon knows, as
//! BuildKit's Dockerfile frontend resolves the names:
//!
//! - a stage named like a context (`FROM … AS name`) is replaced by the context whole: its
//!   instructions never run;
//! - `FROM name` names a context unless an earlier stage is called `name` (`scratch` is
//!   always the empty image); the word is evaluated with the global `ARG`s first;
//! - `COPY --from=name` and `RUN --mount=…,from=name` name a context unless a stage (anywhere
//!   in the file) is called `name` or, for `COPY`, `name` is a stage index; these take the
//!   word literally (BuildKit substitutes no variables there);
//! - names are compared as the frontend compares them: `name`, `name:latest` and
//!   `docker.io/library/name` are the same.
//!
//! `ADD` has no `--from`. The rest of the text, comments, directives, heredocs and line
//! continuations included, is kept byte for byte, and the lines of a replaced stage become
//! empty lines, so the daemon's line numbers still match the user's file.

use super::words::{self, ExpandError, Vars};
use indexmap::IndexMap;
use parse_dockerfile::Instruction;
use std::collections::BTreeSet;
use std::ops::Range;

/// Why a Dockerfile could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("the Dockerfile cannot be parsed: {0}")]
    Parse(String),
    #[error("Dockerfile line {line}: {message}")]
    At { line: usize, message: String },
}

/// The rewritten Dockerfile, and which context names it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub text: String,
    pub used: BTreeSet<String>,
}

/// Rewrites `text`, where `contexts` maps each context name to the image reference its uses
/// become, and `vars` holds what the global `ARG`s of a `FROM` line can see besides their own
/// defaults (build args by name; the platform arguments).
pub fn rewrite(
    text: &str,
    contexts: &IndexMap<String, String>,
    build_args: &std::collections::HashMap<String, String>,
    platform_args: &Vars,
) -> Result<Rewritten, RewriteError> {
    let df = parse_dockerfile::parse(text).map_err(|e| RewriteError::Parse(e.to_string()))?;
    let escape = df
        .parser_directives
        .escape
        .as_ref()
        .map_or('\\', |d| d.value.value);
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;

    let froms: Vec<&parse_dockerfile::FromInstruction<'_>> = df
        .instructions
        .iter()
        .filter_map(|i| match i {
            Instruction::From(f) => Some(f),
            _ => None,
        })
        .collect();
    let stage_names: Vec<Option<String>> = froms
        .iter()
        .map(|f| f.as_.as_ref().map(|(_, n)| n.value.to_lowercase()))
        .collect();
    let is_stage = |word: &str| {
        let lower = word.to_lowercase();
        stage_names.iter().flatten().any(|n| *n == lower)
    };
    let lookup = |word: &str| -> Option<&String> {
        let key = words::context_key(word)?;
        contexts.get_key_value(&key).map(|(k, _)| k)
    };
    // The reference a use becomes, written so that it cannot be read as a stage.
    let render = |key: &str| -> String {
        let reference = &contexts[key];
        let clashes =
            reference == "scratch" || is_stage(reference) || reference.parse::<i64>().is_ok();
        if clashes && reference != "scratch" {
            words::fully_qualified(reference).unwrap_or_else(|| reference.clone())
        } else {
            reference.clone()
        }
    };

    let vars = global_vars(&df, text, build_args, platform_args, escape)?;

    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut used = BTreeSet::new();
    let mut replaced_stages: Vec<Range<usize>> = Vec::new();
    let from_starts: Vec<usize> = froms.iter().map(|f| f.from.span.start).collect();
    for (i, from) in froms.iter().enumerate() {
        if let Some(key) = stage_names[i].as_deref().and_then(lookup) {
            // The stage is the context: its base becomes the context's image and its
            // instructions are dropped, line breaks kept.
            edits.push((from.image.span.clone(), render(key)));
            let body_start = from
                .as_
                .as_ref()
                .map_or(from.image.span.end, |(_, n)| n.span.end);
            let body_end = from_starts.get(i + 1).copied().unwrap_or(text.len());
            let kept: String = text[body_start..body_end]
                .chars()
                .filter(|c| *c == '\n' || *c == '\r')
                .collect();
            edits.push((body_start..body_end, kept));
            replaced_stages.push(body_start..body_end);
            used.insert(key.clone());
            continue;
        }
        let base =
            words::expand(&from.image.value, &vars, escape).map_err(|e| RewriteError::At {
                line: line_of(from.image.span.start),
                message: format!("FROM {}: {e}", from.image.value),
            })?;
        let earlier_stage = stage_names[..i].iter().flatten().any(|n| *n == base);
        if earlier_stage || base == "scratch" {
            continue;
        }
        if let Some(key) = lookup(&base) {
            edits.push((from.image.span.clone(), render(key)));
            used.insert(key.clone());
        }
    }

    let in_replaced = |at: usize| replaced_stages.iter().any(|r| r.contains(&at));
    for ins in &df.instructions {
        match ins {
            Instruction::Copy(copy) if !in_replaced(copy.copy.span.start) => {
                for flag in copy.options.iter().filter(|f| f.name.value == "from") {
                    let Some(value) = &flag.value else { continue };
                    let (span, raw) =
                        flag_extent(text, value).map_err(|message| RewriteError::At {
                            line: line_of(value.span.start),
                            message,
                        })?;
                    let word = words::flag_word(&raw);
                    if word.parse::<i64>().is_ok() || is_stage(&word) || word == "scratch" {
                        continue;
                    }
                    if let Some(key) = lookup(&word) {
                        edits.push((span, words::quote_flag(&render(key))));
                        used.insert(key.clone());
                    }
                }
            }
            Instruction::Run(run) if !in_replaced(run.run.span.start) => {
                for flag in run.options.iter().filter(|f| f.name.value == "mount") {
                    let Some(value) = &flag.value else { continue };
                    let (span, raw) =
                        flag_extent(text, value).map_err(|message| RewriteError::At {
                            line: line_of(value.span.start),
                            message,
                        })?;
                    let mount = words::flag_word(&raw);
                    let fields = words::csv_fields(&mount).map_err(|e| RewriteError::At {
                        line: line_of(value.span.start),
                        message: format!("--mount: {e}"),
                    })?;
                    let mut new_mount = mount.clone();
                    for (range, field) in fields.iter().rev() {
                        let Some((k, from)) = field.split_once('=') else {
                            continue;
                        };
                        if !k.eq_ignore_ascii_case("from") || is_stage(from) || from == "scratch" {
                            continue;
                        }
                        if let Some(key) = lookup(from) {
                            new_mount
                                .replace_range(range.clone(), &format!("from={}", render(key)));
                            used.insert(key.clone());
                        }
                    }
                    if new_mount != mount {
                        edits.push((span, words::quote_flag(&new_mount)));
                    }
                }
            }
            _ => {}
        }
    }

    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (range, replacement) in edits {
        out.push_str(&text[at..range.start]);
        out.push_str(&replacement);
        at = range.end;
    }
    out.push_str(&text[at..]);
    Ok(Rewritten { text: out, used })
}

/// What `FROM` lines see: the platform arguments, and the global `ARG`s with the build's
/// values for those they declare (else their defaults, evaluated in order).
fn global_vars(
    df: &parse_dockerfile::Dockerfile<'_>,
    text: &str,
    build_args: &std::collections::HashMap<String, String>,
    platform_args: &Vars,
    escape: char,
) -> Result<Vars, RewriteError> {
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let mut vars = platform_args.clone();
    for ins in &df.instructions {
        match ins {
            Instruction::From(_) => break,
            Instruction::Arg(arg) => {
                let at = arg.arguments.span.start;
                for decl in arg_declarations(&arg.arguments.value, escape) {
                    let (name, default) = match decl.split_once('=') {
                        Some((n, d)) => (n.to_string(), Some(d.to_string())),
                        None => (decl, None),
                    };
                    let value = match (build_args.get(&name), default) {
                        (Some(v), _) => Some(Some(v.clone())),
                        (None, Some(d)) => match words::expand(&d, &vars, escape) {
                            Ok(v) => Some(Some(v)),
                            Err(ExpandError::Unknown(_)) => Some(None),
                            Err(e) => {
                                return Err(RewriteError::At {
                                    line: line_of(at),
                                    message: format!("ARG {name}: {e}"),
                                })
                            }
                        },
                        // Unset, or still the platform argument's own value.
                        (None, None) => None,
                    };
                    if let Some(v) = value {
                        vars.values.insert(name, v);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(vars)
}

/// The images a Dockerfile uses, as BuildKit reads the words that name them: each `FROM`
/// base that is not an earlier stage (evaluated with the global `ARG`s), each `COPY --from`
/// and `RUN --mount=…,from=` that is not a stage (nor, for `COPY`, a stage index). `scratch`
/// is none; a `FROM` word only the daemon can evaluate (`$BUILDPLATFORM`…) is left out.
pub fn image_uses(
    text: &str,
    build_args: &std::collections::HashMap<String, String>,
    platform_args: &Vars,
) -> Result<Vec<String>, RewriteError> {
    let df = parse_dockerfile::parse(text).map_err(|e| RewriteError::Parse(e.to_string()))?;
    let escape = df
        .parser_directives
        .escape
        .as_ref()
        .map_or('\\', |d| d.value.value);
    let vars = global_vars(&df, text, build_args, platform_args, escape)?;
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let stage_names: Vec<String> = df
        .instructions
        .iter()
        .filter_map(|i| match i {
            Instruction::From(f) => f.as_.as_ref().map(|(_, n)| n.value.to_lowercase()),
            _ => None,
        })
        .collect();
    let is_stage = |word: &str| stage_names.contains(&word.to_lowercase());
    let mut out = Vec::new();
    let mut earlier: Vec<String> = Vec::new();
    for ins in &df.instructions {
        match ins {
            Instruction::From(from) => {
                if let Ok(base) = words::expand(&from.image.value, &vars, escape) {
                    if base != "scratch" && !earlier.contains(&base.to_lowercase()) {
                        out.push(base);
                    }
                }
                if let Some((_, n)) = &from.as_ {
                    earlier.push(n.value.to_lowercase());
                }
            }
            Instruction::Copy(copy) => {
                for flag in copy.options.iter().filter(|f| f.name.value == "from") {
                    let Some(value) = &flag.value else { continue };
                    let (_, raw) =
                        flag_extent(text, value).map_err(|message| RewriteError::At {
                            line: line_of(value.span.start),
                            message,
                        })?;
                    let word = words::flag_word(&raw);
                    if word.parse::<i64>().is_err() && !is_stage(&word) && word != "scratch" {
                        out.push(word);
                    }
                }
            }
            Instruction::Run(run) => {
                for flag in run.options.iter().filter(|f| f.name.value == "mount") {
                    let Some(value) = &flag.value else { continue };
                    let (_, raw) =
                        flag_extent(text, value).map_err(|message| RewriteError::At {
                            line: line_of(value.span.start),
                            message,
                        })?;
                    let fields = words::csv_fields(&words::flag_word(&raw)).map_err(|e| {
                        RewriteError::At {
                            line: line_of(value.span.start),
                            message: format!("--mount: {e}"),
                        }
                    })?;
                    for (_, field) in fields {
                        if let Some((k, from)) = field.split_once('=') {
                            if k.eq_ignore_ascii_case("from")
                                && !is_stage(from)
                                && from != "scratch"
                            {
                                out.push(from.to_string());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A flag value's full extent and text. The parser ends a flag value at the first blank, but
/// BuildKit reads flags with quotes (`--mount="type=bind,target=/a b"`): a value whose quote
/// is still open goes on to the closing quote and the next blank after it.
fn flag_extent(
    text: &str,
    value: &parse_dockerfile::UnescapedString<'_>,
) -> Result<(Range<usize>, String), String> {
    let mut raw = value.value.to_string();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in raw.chars() {
        match (quote, c) {
            _ if escaped => escaped = false,
            (_, '\\') => escaped = true,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    let mut end = value.span.end;
    if quote.is_none() {
        return Ok((value.span.clone(), raw));
    }
    for c in text[end..].chars() {
        if c == '\n' || c == '\r' {
            return Err("a quoted flag value runs across lines, which wharf cannot rewrite; keep it on one line".into());
        }
        match (quote, c) {
            (None, c) if c.is_whitespace() => break,
            _ if escaped => escaped = false,
            (_, '\\') => escaped = true,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        raw.push(c);
        end += c.len_utf8();
    }
    Ok((value.span.start..end, raw))
}

/// The `NAME[=default]` declarations of an `ARG` instruction, quotes and escapes removed (the
/// default is kept as written, to be expanded like the frontend does).
fn arg_declarations(arguments: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = arguments.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (_, c) if c == escape => {
                current.push(c);
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            (_, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ctx(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rw(text: &str, contexts: &[(&str, &str)]) -> Rewritten {
        rewrite(text, &ctx(contexts), &HashMap::new(), &Vars::default()).unwrap()
    }

    #[test]
    fn from_copy_and_mount_uses_are_replaced() {
        let df = "# syntax=docker/dockerfile:1\nFROM files AS base\nFROM wharf-test/busybox:1\nCOPY --from=files /a /b\nCOPY --from=base /c /d\nRUN --mount=type=bind,from=files,target=/m cat /m/a\nRUN --mount=type=cache,target=/c,FROM=files true\n";
        let out = rw(df, &[("files", "wharf-context/x:1")]);
        // `base` is a stage, not a context: it stays.
        assert_eq!(
            out.text,
            "# syntax=docker/dockerfile:1\nFROM wharf-context/x:1 AS base\nFROM wharf-test/busybox:1\nCOPY --from=wharf-context/x:1 /a /b\nCOPY --from=base /c /d\nRUN --mount=type=bind,from=wharf-context/x:1,target=/m cat /m/a\nRUN --mount=type=cache,target=/c,from=wharf-context/x:1 true\n"
        );
        assert_eq!(out.used, BTreeSet::from(["files".to_string()]));
    }

    #[test]
    fn a_stage_named_like_a_context_is_replaced_whole() {
        let df = "FROM alpine AS deps\nRUN <<EOF\napk add x\nFROM not-an-instruction\nEOF\nRUN echo \\\n  more\n\nFROM deps\nCOPY --from=deps /x /y\n";
        let out = rw(df, &[("deps", "base-image:2")]);
        assert_eq!(
            out.text,
            "FROM base-image:2 AS deps\n\n\n\n\n\n\n\nFROM deps\nCOPY --from=deps /x /y\n"
        );
        assert_eq!(out.text.lines().count(), df.lines().count());
    }

    #[test]
    fn stages_shadow_names_only_where_buildkit_lets_them() {
        // A later stage does not shadow `FROM name`, but does shadow `COPY --from=name`.
        // (The stage itself is the context then.)
        let df = "FROM tools\nCOPY --from=tools /a /a\nCOPY --from=0 /b /b\nFROM scratch AS tools\nRUN x\n";
        let out = rw(df, &[("tools", "t:1"), ("0", "zero")]);
        assert_eq!(
            out.text,
            "FROM t:1\nCOPY --from=tools /a /a\nCOPY --from=0 /b /b\nFROM t:1 AS tools\n\n"
        );
    }

    #[test]
    fn names_are_compared_as_references() {
        let df = "FROM docker.io/library/files:latest\nCOPY --from=files:latest /a /a\nCOPY --from=Files /a /a\nFROM files:2\n";
        let out = rw(df, &[("files", "x")]);
        assert_eq!(
            out.text,
            "FROM x\nCOPY --from=x /a /a\nCOPY --from=Files /a /a\nFROM files:2\n"
        );
    }

    #[test]
    fn from_words_see_global_args_and_build_args() {
        let df = "ARG FLAVOR=files\nARG OTHER\nFROM ${FLAVOR}\nFROM \"$OTHER\"\nARG FLAVOR=no\nFROM $FLAVOR\n";
        let args = HashMap::from([("OTHER".to_string(), "files".to_string())]);
        let out = rewrite(df, &ctx(&[("files", "x")]), &args, &Vars::default()).unwrap();
        assert_eq!(
            out.text,
            "ARG FLAVOR=files\nARG OTHER\nFROM x\nFROM x\nARG FLAVOR=no\nFROM x\n"
        );
        let args = HashMap::from([("FLAVOR".to_string(), "busybox".to_string())]);
        let out = rewrite(df, &ctx(&[("files", "x")]), &args, &Vars::default()).unwrap();
        assert!(out.text.contains("FROM ${FLAVOR}\n"), "{}", out.text);

        // A word only the daemon can evaluate is refused, with its line.
        let platform = Vars {
            values: HashMap::from([("BUILDARCH".to_string(), None)]),
        };
        let err = rewrite(
            "FROM files-${BUILDARCH}\n",
            &ctx(&[("files", "x")]),
            &HashMap::new(),
            &platform,
        )
        .unwrap_err();
        assert!(
            matches!(&err, RewriteError::At { line: 1, message } if message.contains("BUILDARCH")),
            "{err}"
        );
    }

    #[test]
    fn escapes_continuations_and_quotes_are_kept() {
        let df = "# escape=`\nFROM wharf-test/busybox:1\nCOPY `\n  --from=files `\n  /a /b\nRUN --mount=\"type=bind,from=files,target=/with space\" ls\nCOPY --from=\"files\" /c /d\n";
        let out = rw(df, &[("files", "ctx/ref:1")]);
        assert_eq!(
            out.text,
            "# escape=`\nFROM wharf-test/busybox:1\nCOPY `\n  --from=ctx/ref:1 `\n  /a /b\nRUN --mount=\"type=bind,from=ctx/ref:1,target=/with space\" ls\nCOPY --from=ctx/ref:1 /c /d\n"
        );
    }

    #[test]
    fn keywords_in_any_case_and_crlf_lines() {
        let df = "from files as Base\r\n  run echo\r\nFrom base\r\ncopy --from=files /a /a\r\nonbuild COPY --from=files /x /x\r\n";
        let out = rw(df, &[("files", "x:1")]);
        // The stage `Base` is `base`, not the context; ONBUILD runs in later builds, where the
        // name means what those builds make of it.
        assert_eq!(
            out.text,
            "from x:1 as Base\r\n  run echo\r\nFrom base\r\ncopy --from=x:1 /a /a\r\nonbuild COPY --from=files /x /x\r\n"
        );
    }

    #[test]
    fn a_reference_that_reads_as_a_stage_is_written_in_full() {
        let df = "FROM busybox AS build\nFROM files\nCOPY --from=files /a /a\n";
        let out = rw(df, &[("files", "build")]);
        assert_eq!(
            out.text,
            "FROM busybox AS build\nFROM docker.io/library/build:latest\nCOPY --from=docker.io/library/build:latest /a /a\n"
        );
    }

    #[test]
    fn unused_names_and_unparsable_files() {
        let out = rw("FROM scratch\nADD a /a\n", &[("files", "x")]);
        assert!(out.used.is_empty());
        assert_eq!(out.text, "FROM scratch\nADD a /a\n");
        let err = rewrite(
            "RUN x\n",
            &ctx(&[("files", "x")]),
            &HashMap::new(),
            &Vars::default(),
        )
        .unwrap_err();
        assert!(matches!(err, RewriteError::Parse(_)), "{err}");
    }
}
