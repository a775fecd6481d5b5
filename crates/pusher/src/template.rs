//! Tag and repository templates: `{git_sha}`, `{git_short_sha}`, `{git_branch}`,
//! `{compose_tag}`, `{timestamp}`, `{env:NAME}` for tags; `{image_name}`, `{project}`,
//! `{service}` for repositories.
//!
//! Written by hand: the grammar is a dozen lines, and a general template engine would accept
//! syntax (loops, filters) the contract does not have.

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

/// A parsed template; placeholders are checked against the allowed names when parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    raw: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template `{template}`: {message}")]
    Syntax { template: String, message: String },
    #[error("template `{template}`: {message}")]
    Render { template: String, message: String },
}

/// The placeholders of tag templates.
pub const TAG_PLACEHOLDERS: &[&str] = &[
    "git_sha",
    "git_short_sha",
    "git_branch",
    "compose_tag",
    "timestamp",
];
/// The placeholders of repository templates.
pub const REPOSITORY_PLACEHOLDERS: &[&str] = &["image_name", "project", "service"];

impl Template {
    /// Parses `raw`, accepting `{NAME}` for NAME in `allowed` and `{env:VAR}`; `{{`/`}}` are
    /// literal braces.
    pub fn parse(raw: &str, allowed: &[&str]) -> Result<Template, TemplateError> {
        let err = |message: String| TemplateError::Syntax {
            template: raw.to_string(),
            message,
        };
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(err(format!("`{{{name}` is not closed with `}}`"))),
                        }
                    }
                    let ok = match name.strip_prefix("env:") {
                        Some(var) => {
                            !var.is_empty()
                                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        }
                        None => allowed.contains(&name.as_str()),
                    };
                    if !ok {
                        let mut known: Vec<String> =
                            allowed.iter().map(|a| format!("{{{a}}}")).collect();
                        known.push("{env:NAME}".into());
                        return Err(err(format!(
                            "unknown placeholder `{{{name}}}` (known: {})",
                            known.join(", ")
                        )));
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var(name));
                }
                '}' => return Err(err("a lone `}` (write `}}` for a literal brace)".into())),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if parts.is_empty() {
            return Err(err("it is empty".into()));
        }
        Ok(Template {
            raw: raw.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the template names the commit: such tags identify one build and are pushed in
    /// the first phase; all others are moving tags.
    pub fn is_identity(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Var(v) if v == "git_sha" || v == "git_short_sha"))
    }

    /// The placeholders the template uses (`env:NAME` included), in order.
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Whether the template uses the placeholder `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Var(v) if v == name))
    }

    /// Renders with `lookup` answering placeholders (`env:NAME` included); `None` is an error.
    pub fn render(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, TemplateError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => match lookup(v) {
                    Some(value) => out.push_str(&value),
                    None => {
                        let message = match v.strip_prefix("env:") {
                            Some(var) => format!("the environment variable {var} is not set"),
                            None => format!("`{{{v}}}` has no value here"),
                        };
                        return Err(TemplateError::Render {
                            template: self.raw.clone(),
                            message,
                        });
                    }
                },
            }
        }
        Ok(out)
    }
}

/// Makes `s` a valid tag fragment (`[A-Za-z0-9_.-]`), as branch names need: other characters
/// become `-`.
pub fn sanitize_tag(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Checks a rendered tag against the registry grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    if !first_ok || !rest_ok || tag.len() > 128 {
        // Escaped: a tag rendered from the environment may hold a line break.
        return Err(format!(
            "`{}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)",
            tag.escape_debug()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(v: &str) -> Option<String> {
        match v {
            "git_sha" => Some("0123456789abcdef0123456789abcdef01234567".into()),
            "git_short_sha" => Some("0123456".into()),
            "git_branch" => Some("main".into()),
            "env:STAGE" => Some("prod".into()),
            _ => None,
        }
    }

    #[test]
    fn renders_and_classifies() {
        let t = Template::parse("{env:STAGE}-{git_short_sha}", TAG_PLACEHOLDERS).unwrap();
        assert!(t.is_identity());
        assert_eq!(t.render(&lookup).unwrap(), "prod-0123456");
        let m = Template::parse("{env:STAGE}-latest", TAG_PLACEHOLDERS).unwrap();
        assert!(!m.is_identity());
        assert_eq!(m.render(&lookup).unwrap(), "prod-latest");
        assert_eq!(
            Template::parse("a{{b}}", TAG_PLACEHOLDERS)
                .unwrap()
                .render(&lookup)
                .unwrap(),
            "a{b}"
        );
    }

    #[test]
    fn refuses_unknown_and_broken_templates() {
        let e = Template::parse("{git_hash}", TAG_PLACEHOLDERS)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown placeholder `{git_hash}`") && e.contains("{git_sha}"),
            "{e}"
        );
        assert!(Template::parse("{git_sha", TAG_PLACEHOLDERS).is_err());
        assert!(Template::parse("a}b", TAG_PLACEHOLDERS).is_err());
        assert!(Template::parse("", TAG_PLACEHOLDERS).is_err());
        assert!(Template::parse("{service}", TAG_PLACEHOLDERS).is_err());
        let e = Template::parse("{env:NOPE}", TAG_PLACEHOLDERS)
            .unwrap()
            .render(&lookup)
            .unwrap_err();
        assert!(e.to_string().contains("NOPE is not set"));
    }

    #[test]
    fn tags_are_checked_and_branches_sanitized() {
        assert_eq!(sanitize_tag("feature/x+y"), "feature-x-y");
        assert!(check_tag("v1.0_rc-1").is_ok());
        assert!(check_tag(".hidden").is_err());
        assert!(check_tag(&"a".repeat(129)).is_err());
    }
}
