//! A task definition file rendered with a release's images: each container of a released
//! service gets its pinned image; every other byte of meaning — other fields, key order,
//! indentation — stays, so the rendered file's diff is the image lines.
//!
//! Both shapes the AWS CLI uses are read and written back in their shape: the answer of
//! `aws ecs describe-task-definition` (the definition under `taskDefinition`) and the input
//! of `aws ecs register-task-definition --cli-input-json` (the definition itself).

use crate::containers::Matcher;
use crate::{DeployError, Pin};
use serde::Serialize;
use serde_json::{Map, Value};

/// How the file was laid out, so that it is written back the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// One line (`--output json` piped through `jq -c`, a hand-written one-liner).
    Compact,
    /// Pretty-printed with this indentation (the AWS CLI: 4 spaces; jq: 2).
    Indented(String),
}

/// A task definition file as read.
#[derive(Debug, Clone)]
pub struct TaskDefinitionFile {
    doc: Value,
    wrapped: bool,
    layout: Layout,
    trailing_newline: bool,
}

/// What rendering changed and what it left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rendered {
    /// Containers whose image is now the release's, in file order.
    pub pinned: Vec<PinnedContainer>,
    /// Containers left as they were: no service of the release runs them.
    pub unmatched: Vec<Unmatched>,
    /// Released services no container runs.
    pub unused: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedContainer {
    pub container: String,
    pub service: String,
    /// The image the file named before (absent when it named none).
    pub before: Option<String>,
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmatched {
    pub container: String,
    /// The compose service it matched, when that service is not part of the release (no
    /// build section, or `x-wharf.skip`).
    pub service: Option<String>,
}

fn layout_of(text: &str) -> Layout {
    let body = text.trim();
    if !body.contains('\n') {
        return Layout::Compact;
    }
    let indent = body
        .lines()
        .skip(1)
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .find(|i| !i.is_empty())
        .unwrap_or("  ");
    Layout::Indented(indent.to_string())
}

impl TaskDefinitionFile {
    /// Reads a task definition from `text`; `source_name` names it in errors (a path, or
    /// "standard input").
    pub fn parse(text: &str, source_name: &str) -> Result<TaskDefinitionFile, DeployError> {
        let bad = |message: String| DeployError::NotATaskDefinition {
            source_name: source_name.to_string(),
            message,
        };
        let doc: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Value::Object(top) = &doc else {
            return Err(bad("not a JSON object".into()));
        };
        let wrapped = matches!(top.get("taskDefinition"), Some(Value::Object(_)));
        let file = TaskDefinitionFile {
            layout: layout_of(text),
            trailing_newline: text.ends_with('\n'),
            wrapped,
            doc,
        };
        let definition = file.definition();
        let containers = match definition.get("containerDefinitions") {
            Some(Value::Array(c)) if !c.is_empty() => c,
            Some(Value::Array(_)) => return Err(bad("its containerDefinitions is empty".into())),
            Some(_) => return Err(bad("its containerDefinitions is not a list".into())),
            None => {
                return Err(bad(
                    "it has no containerDefinitions (expected the output of `aws ecs describe-task-definition` or the input of `aws ecs register-task-definition --cli-input-json`)"
                        .into(),
                ))
            }
        };
        for (i, c) in containers.iter().enumerate() {
            match c.get("name") {
                Some(Value::String(_)) => {}
                _ => {
                    return Err(bad(format!(
                        "containerDefinitions[{i}] has no name (a string)"
                    )))
                }
            }
        }
        Ok(file)
    }

    fn definition(&self) -> &Map<String, Value> {
        let top = self.doc.as_object().expect("checked when parsed");
        match (self.wrapped, top.get("taskDefinition")) {
            (true, Some(Value::Object(d))) => d,
            _ => top,
        }
    }

    fn containers_mut(&mut self) -> impl Iterator<Item = &mut Map<String, Value>> {
        let top = self.doc.as_object_mut().expect("checked when parsed");
        let definition = if self.wrapped {
            top.get_mut("taskDefinition")
                .and_then(Value::as_object_mut)
                .expect("checked when parsed")
        } else {
            top
        };
        definition
            .get_mut("containerDefinitions")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
    }

    /// The task definition's family, when it names one.
    pub fn family(&self) -> Option<&str> {
        self.definition().get("family").and_then(Value::as_str)
    }

    /// Sets each container of a released service to its pinned image. `matcher` knows every
    /// compose service; `pins` are the released ones.
    pub fn render(&mut self, matcher: &Matcher, pins: &[Pin]) -> Rendered {
        let mut out = Rendered::default();
        for container in self.containers_mut() {
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let service = matcher.service_of(&name).map(str::to_string);
            match service
                .as_deref()
                .and_then(|s| pins.iter().find(|p| p.service == s))
            {
                Some(pin) => {
                    let image = pin.reference();
                    let before = container
                        .insert("image".into(), Value::String(image.clone()))
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
                    out.pinned.push(PinnedContainer {
                        container: name,
                        service: pin.service.clone(),
                        before,
                        image,
                    });
                }
                None => out.unmatched.push(Unmatched {
                    container: name,
                    service,
                }),
            }
        }
        out.unused = pins
            .iter()
            .filter(|p| !out.pinned.iter().any(|c| c.service == p.service))
            .map(|p| p.service.clone())
            .collect();
        out
    }

    /// The file's text, laid out as it was read.
    pub fn to_text(&self) -> String {
        let mut text = match &self.layout {
            Layout::Compact => serde_json::to_string(&self.doc),
            Layout::Indented(indent) => {
                let mut buf = Vec::new();
                let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
                let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
                self.doc
                    .serialize(&mut ser)
                    .map(|_| String::from_utf8(buf).expect("serde_json writes UTF-8"))
            }
        }
        .expect("a JSON value always serializes");
        if self.trailing_newline {
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(service: &str) -> Pin {
        Pin {
            service: service.into(),
            repository: format!("r.example.com/shop/{service}"),
            tag: "abc".into(),
            digest: "sha256:1111".into(),
            platforms: vec![],
        }
    }

    const REGISTER_INPUT: &str = r#"{"family":"shop","containerDefinitions":[{"name":"api","image":"old","essential":true},{"name":"envoy","image":"envoyproxy/envoy:v1"},{"name":"jobs","cpu":0}]}"#;

    #[test]
    fn containers_of_released_services_get_their_pins_and_nothing_else_changes() {
        let mut file = TaskDefinitionFile::parse(REGISTER_INPUT, "t.json").unwrap();
        let jobs = vec!["jobs".to_string()];
        let matcher = Matcher::new([
            ("api", &[][..]),
            ("worker", jobs.as_slice()),
            ("admin", &[][..]),
        ])
        .unwrap();
        let r = file.render(&matcher, &[pin("api"), pin("worker"), pin("admin")]);
        assert_eq!(
            file.to_text(),
            r#"{"family":"shop","containerDefinitions":[{"name":"api","image":"r.example.com/shop/api:abc@sha256:1111","essential":true},{"name":"envoy","image":"envoyproxy/envoy:v1"},{"name":"jobs","cpu":0,"image":"r.example.com/shop/worker:abc@sha256:1111"}]}"#
        );
        assert_eq!(r.pinned.len(), 2);
        assert_eq!(r.pinned[0].before.as_deref(), Some("old"));
        assert_eq!(r.pinned[1].before, None);
        assert_eq!(
            r.unmatched,
            vec![Unmatched {
                container: "envoy".into(),
                service: None
            }]
        );
        assert_eq!(r.unused, vec!["admin".to_string()]);
        assert_eq!(file.family(), Some("shop"));
    }

    #[test]
    fn layout_is_kept() {
        let four = "{\n    \"taskDefinition\": {\n        \"containerDefinitions\": [\n            {\n                \"name\": \"api\",\n                \"image\": \"old\",\n                \"portMappings\": []\n            }\n        ],\n        \"z\": {},\n        \"a\": 1.5\n    }\n}\n";
        let mut file = TaskDefinitionFile::parse(four, "t.json").unwrap();
        assert_eq!(file.to_text(), four, "read and written back unchanged");
        let matcher = Matcher::new([("api", &[][..])]).unwrap();
        file.render(&matcher, &[pin("api")]);
        assert_eq!(
            file.to_text(),
            four.replace("\"old\"", "\"r.example.com/shop/api:abc@sha256:1111\"")
        );
        let two = "{\n  \"containerDefinitions\": [\n    {\n      \"name\": \"api\"\n    }\n  ]\n}";
        let file = TaskDefinitionFile::parse(two, "t.json").unwrap();
        assert_eq!(file.to_text(), two, "no newline added");
    }

    #[test]
    fn what_is_not_a_task_definition_is_refused_by_name() {
        for (text, says) in [
            ("[]", "not a JSON object"),
            ("{\"family\": \"x\"}", "no containerDefinitions"),
            ("{\"containerDefinitions\": []}", "empty"),
            (
                "{\"containerDefinitions\": [{\"image\": \"x\"}]}",
                "[0] has no name",
            ),
            ("{", "not JSON"),
        ] {
            let e = TaskDefinitionFile::parse(text, "td.json").unwrap_err();
            assert!(e.is_usage());
            let e = e.to_string();
            assert!(e.contains(says) && e.starts_with("td.json"), "{text}: {e}");
        }
    }
}
