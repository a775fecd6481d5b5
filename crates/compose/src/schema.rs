//! Validation against the compose specification's JSON schema (the file docker compose v2.40
//! embeds), with compose-go's choice of the error to report: the most specific one, preferring
//! unexpected properties.

use crate::value::{map_to_json, Map, TIME_MARKER};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError, Validator};
use std::sync::OnceLock;

const SCHEMA: &str = include_str!("../schema/compose-spec.json");

/// A schema violation: the instance path (keys and sequence indexes) and compose's message.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaError {
    pub path: Vec<String>,
    pub message: String,
    /// For an unknown key: its name (to point at it).
    pub unexpected: Vec<String>,
}

fn validator() -> Result<&'static Validator, String> {
    static VALIDATOR: OnceLock<Result<Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: serde_json::Value =
                serde_json::from_str(SCHEMA).map_err(|e| format!("compose schema: {e}"))?;
            jsonschema::options()
                .with_draft(Draft::Draft7)
                .build(&schema)
                .map_err(|e| format!("compose schema: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Validates a model (the merged files so far). When `services` names them, only those
/// services are validated with the rest of the model (the others were already, and the schema
/// checks each service on its own).
pub fn validate(model: &Map, services: Option<&[String]>) -> Result<(), SchemaError> {
    let validator = validator().map_err(|message| SchemaError {
        path: Vec::new(),
        message,
        unexpected: Vec::new(),
    })?;
    let json = match services {
        None => map_to_json(model),
        Some(names) => {
            let mut root = serde_json::Map::new();
            for (k, v) in model {
                match (k.as_str(), v) {
                    ("services", crate::value::Value::Map(all)) => {
                        let mut svcs = serde_json::Map::new();
                        for name in names {
                            if let Some(s) = all.get(name) {
                                svcs.insert(name.clone(), s.to_json());
                            }
                        }
                        root.insert(k.clone(), serde_json::Value::Object(svcs));
                    }
                    _ => {
                        root.insert(k.clone(), v.to_json());
                    }
                }
            }
            serde_json::Value::Object(root)
        }
    };
    let mut best: Option<(usize, SchemaError)> = None;
    for error in validator.iter_errors(&json) {
        consider(&error, &mut best);
    }
    match best {
        None => Ok(()),
        Some((_, e)) => Err(e),
    }
}

fn specificity(error: &ValidationError) -> usize {
    let depth = error.instance_path().into_iter().count();
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { .. } => depth + 1,
        _ => depth,
    }
}

fn consider(error: &ValidationError, best: &mut Option<(usize, SchemaError)>) {
    let context = match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            Some(context)
        }
        _ => None,
    };
    if let Some(context) = context {
        if context.iter().any(|c| !c.is_empty()) {
            for branch in context {
                for e in branch {
                    consider(e, best);
                }
            }
            return;
        }
    }
    let score = specificity(error);
    if best.as_ref().is_none_or(|(s, _)| score > *s) {
        *best = Some((score, describe(error)));
    }
}

fn describe(error: &ValidationError) -> SchemaError {
    let path: Vec<String> = error
        .instance_path()
        .into_iter()
        .map(|seg| match seg {
            jsonschema::paths::LocationSegment::Property(p) => p.to_string(),
            jsonschema::paths::LocationSegment::Index(i) => i.to_string(),
        })
        .collect();
    let at = path.join(".");
    let is_time = error
        .instance()
        .as_object()
        .is_some_and(|o| o.contains_key(TIME_MARKER));
    let message = if is_time {
        format!("{at} invalid jsonType time.Time")
    } else {
        match error.kind() {
            ValidationErrorKind::Type { kind } => {
                let mut names: Vec<&str> = match kind {
                    TypeKind::Single(t) => vec![type_name(&t.to_string())],
                    TypeKind::Multiple(set) => {
                        set.iter().map(|t| type_name(&t.to_string())).collect()
                    }
                };
                names.sort();
                let wanted = match names.split_last() {
                    Some((last, [])) => last.to_string(),
                    Some((last, rest)) => format!("{} or {}", rest.join(", "), last),
                    None => "value".to_string(),
                };
                format!("{at} must be a {wanted}")
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let quoted: Vec<String> = unexpected.iter().map(|u| format!("'{u}'")).collect();
                format!(
                    "{at} additional properties {} not allowed",
                    quoted.join(", ")
                )
            }
            ValidationErrorKind::Required { property } => {
                format!("{at} missing property {property}")
            }
            ValidationErrorKind::UniqueItems => format!("{at} items are not unique"),
            ValidationErrorKind::Minimum { limit } => {
                format!("{at} must be greater than or equal to {limit}")
            }
            ValidationErrorKind::Maximum { limit } => {
                format!("{at} must be less than or equal to {limit}")
            }
            ValidationErrorKind::Enum { options } => {
                format!("{at} must be one of {options}")
            }
            ValidationErrorKind::Pattern { pattern } => {
                format!("{at} does not match pattern {pattern:?}")
            }
            ValidationErrorKind::FalseSchema => format!("{at} is not allowed"),
            _ => format!("{at} {error}"),
        }
    };
    let message = message.trim_start().to_string();
    let unexpected = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected.clone(),
        _ => Vec::new(),
    };
    SchemaError {
        path,
        message,
        unexpected,
    }
}

fn type_name(t: &str) -> &'static str {
    match t {
        "object" => "mapping",
        "array" => "array",
        "string" => "string",
        "integer" => "integer",
        "number" => "number",
        "boolean" => "boolean",
        "null" => "null",
        _ => "value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;
    use crate::yaml::parse_documents;

    fn check(text: &str) -> Result<(), SchemaError> {
        match parse_documents(text).unwrap().remove(0).value {
            Some(Value::Map(m)) => validate(&m, None),
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn unknown_keys_and_types() {
        let e = check("services:\n  a:\n    image: x\n    bogus: 1\n").unwrap_err();
        assert_eq!(e.path, vec!["services", "a"]);
        assert!(e.message.contains("'bogus'"), "{}", e.message);
        let e = check("services:\n  a:\n    image: 1\n").unwrap_err();
        assert_eq!(e.message, "services.a.image must be a string");
        let e = check("services:\n  a:\n    build:\n      args: [1]\n").unwrap_err();
        assert_eq!(e.path, vec!["services", "a", "build", "args", "0"]);
        let e = check("services:\n  a:\n    build:\n      args: {T: 2001-12-14}\n").unwrap_err();
        assert!(e.message.contains("time.Time"), "{}", e.message);
        assert!(check(
            "x-anything: {a: 1}\nservices:\n  a:\n    image: x\n    x-mine: 2001-12-14\n"
        )
        .is_ok());
    }
}
