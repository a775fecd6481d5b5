//! A task definition file rendered with a release's images: each container of a released
//! service gets its pinned image, and every other byte stays as it was — other fields, key
//! order, indentation, escapes — so the rendered file's diff is the image lines. The edit goes
//! through a concrete syntax tree (jsonc-parser's), which keeps the text around what changes.
//!
//! Both shapes the AWS CLI uses are read: the answer of `aws ecs describe-task-definition`
//! (the definition under `taskDefinition`) and the input of `aws ecs register-task-definition
//! --cli-input-json` (the definition itself).

use crate::containers::Matcher;
use crate::{DeployError, Pin};
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use jsonc_parser::ParseOptions;
use serde::Serialize;
use serde_json::{Map, Value};

/// A task definition file as read.
#[derive(Debug, Clone)]
pub struct TaskDefinitionFile {
    text: String,
    wrapped: bool,
    family: Option<String>,
    /// Each container's name and the image it names (as text), in file order.
    containers: Vec<(String, Option<String>)>,
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

/// The definition's object: under `taskDefinition` in a describe answer.
fn definition(top: &Map<String, Value>, wrapped: bool) -> &Map<String, Value> {
    match (wrapped, top.get("taskDefinition")) {
        (true, Some(Value::Object(d))) => d,
        _ => top,
    }
}

impl TaskDefinitionFile {
    /// Reads a task definition from `text`; `source_name` names it in errors (a path, or
    /// "standard input").
    pub fn parse(text: &str, source_name: &str) -> Result<TaskDefinitionFile, DeployError> {
        let bad = |message: String| DeployError::NotATaskDefinition {
            source_name: source_name.to_string(),
            message,
        };
        // serde_json for the checks (strict JSON, errors naming line and column); the syntax
        // tree only for the edit.
        let doc: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Value::Object(top) = &doc else {
            return Err(bad("not a JSON object".into()));
        };
        let wrapped = matches!(top.get("taskDefinition"), Some(Value::Object(_)));
        let definition = definition(top, wrapped);
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
        let mut names = Vec::new();
        for (i, c) in containers.iter().enumerate() {
            match c.get("name") {
                Some(Value::String(n)) => names.push((
                    n.clone(),
                    c.get("image")
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)),
                )),
                _ => {
                    return Err(bad(format!(
                        "containerDefinitions[{i}] has no name (a string)"
                    )))
                }
            }
        }
        CstRootNode::parse(text, &ParseOptions::default()).map_err(|e| bad(e.to_string()))?;
        Ok(TaskDefinitionFile {
            text: text.to_string(),
            wrapped,
            family: definition
                .get("family")
                .and_then(Value::as_str)
                .map(str::to_string),
            containers: names,
        })
    }

    /// The task definition's family, when it names one.
    pub fn family(&self) -> Option<&str> {
        self.family.as_deref()
    }

    /// The container objects of the syntax tree, in file order.
    fn container_objects(&self, root: &CstRootNode) -> Vec<CstObject> {
        let top = root.object_value();
        let definition = if self.wrapped {
            top.and_then(|t| t.object_value("taskDefinition"))
        } else {
            top
        };
        definition
            .and_then(|d| d.array_value("containerDefinitions"))
            .map(|a| a.elements().iter().filter_map(|e| e.as_object()).collect())
            .unwrap_or_default()
    }

    /// Sets each container of a released service to its pinned image. `matcher` knows every
    /// compose service; `pins` are the released ones.
    pub fn render(&mut self, matcher: &Matcher, pins: &[Pin]) -> Rendered {
        let root =
            CstRootNode::parse(&self.text, &ParseOptions::default()).expect("parsed when read");
        let objects = self.container_objects(&root);
        let mut out = Rendered::default();
        for ((name, before), object) in self.containers.iter().zip(objects) {
            let service = matcher.service_of(name).map(str::to_string);
            let Some(pin) = service
                .as_deref()
                .and_then(|s| pins.iter().find(|p| p.service == s))
            else {
                out.unmatched.push(Unmatched {
                    container: name.clone(),
                    service,
                });
                continue;
            };
            let image = pin.reference();
            match object.get("image") {
                Some(prop) => prop.set_value(CstInputValue::String(image.clone())),
                None => {
                    object.append("image", CstInputValue::String(image.clone()));
                }
            }
            out.pinned.push(PinnedContainer {
                container: name.clone(),
                service: pin.service.clone(),
                before: before.clone(),
                image,
            });
        }
        self.text = root.to_string();
        out.unused = pins
            .iter()
            .filter(|p| !out.pinned.iter().any(|c| c.service == p.service))
            .map(|p| p.service.clone())
            .collect();
        out
    }

    /// The file's text, as read but for the images rendered into it.
    pub fn to_text(&self) -> String {
        self.text.clone()
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
        let text = file.to_text();
        let untouched = r#"{"family":"shop","containerDefinitions":[{"name":"api","image":"r.example.com/shop/api:abc@sha256:1111","essential":true},{"name":"envoy","image":"envoyproxy/envoy:v1"},{"#;
        assert!(text.starts_with(untouched), "{text}");
        // A container without an image gets one (laid out by the syntax tree's rules).
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["containerDefinitions"][2],
            serde_json::json!({"name": "jobs", "cpu": 0, "image": "r.example.com/shop/worker:abc@sha256:1111"})
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
    fn every_byte_but_the_images_is_kept() {
        let four = "{\n    \"taskDefinition\": {\n        \"containerDefinitions\": [\n            {\n                \"name\": \"api\",\n                \"image\": \"old\",\n                \"portMappings\": []\n            }\n        ],\n        \"z\": {},\n        \"a\": 1.50\n    }\n}\n";
        let matcher = Matcher::new([("api", &[][..]), ("web", &[][..])]).unwrap();
        let mut file = TaskDefinitionFile::parse(four, "t.json").unwrap();
        file.render(&matcher, &[pin("api")]);
        assert_eq!(
            file.to_text(),
            four.replace("\"old\"", "\"r.example.com/shop/api:abc@sha256:1111\"")
        );
        // A hand-written layout: one line per container, escapes, no final newline.
        let mixed = "{\"family\": \"shop\",\n  \"containerDefinitions\": [\n    {\"name\": \"api\", \"image\": \"old\", \"environment\": [{\"name\": \"G\", \"value\": \"h\\u00e9llo\"}]},\n    {\"name\":\"web\",\"image\":\"old\"}\n  ]}";
        let mut file = TaskDefinitionFile::parse(mixed, "t.json").unwrap();
        file.render(&matcher, &[pin("api"), pin("web")]);
        assert_eq!(
            file.to_text(),
            mixed
                .replace("\"old\"", "\"r.example.com/shop/api:abc@sha256:1111\"")
                .replacen(
                    "\"r.example.com/shop/api:abc@sha256:1111\"}",
                    "\"r.example.com/shop/web:abc@sha256:1111\"}",
                    1
                )
        );
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
