//! wharf's own settings in a compose file: the top-level `x-wharf:` and each service's
//! `x-wharf:`, as typed structs. Compose itself ignores `x-` keys, so nothing else would catch
//! a typo there: an unknown key or a value of the wrong type is a schema error naming the
//! file, the key and the closest known key, as compose's errors for its own keys do.

use serde::{Deserialize, Deserializer};

/// The top-level `x-wharf:` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSettings {
    /// As `--registry`.
    pub registry: Option<String>,
    /// Tag templates, as `--tag`.
    pub tags: Option<Vec<String>>,
    /// The repository template, as `--repository`.
    pub repository: Option<String>,
    /// Create missing ECR / ECR Public repositories.
    #[serde(default, deserialize_with = "go_bool")]
    pub create_repositories: Option<bool>,
    /// A lifecycle policy JSON file (relative to the project) for repositories wharf creates.
    pub lifecycle_policy: Option<String>,
    #[serde(default, deserialize_with = "go_bool")]
    pub scan_on_push: Option<bool>,
    /// Tag mutability of repositories wharf creates.
    pub tag_mutability: Option<TagMutabilitySetting>,
    #[serde(default, deserialize_with = "go_bool")]
    pub immutable_tags: Option<bool>,
    pub encryption: Option<Encryption>,
    pub kms_key: Option<String>,
    /// `CLUSTER/SERVICE` names of the ECS services `verify` checks after a deploy.
    pub ecs_services: Option<Vec<String>>,
    /// Platform (`linux/arm64`) → the Docker engine that builds it, written as `DOCKER_HOST`
    /// is (`unix://…`, `tcp://…`, `ssh://…`).
    pub engines: Option<std::collections::BTreeMap<String, String>>,
    /// What an image's `org.opencontainers.image.created` label says (default: the commit's
    /// time, so that a rebuild of the same inputs gives the same image).
    pub created: Option<Created>,
}

/// The time an image's `created` label names (`SOURCE_DATE_EPOCH` wins over both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Created {
    /// The time of the commit being built: the same for every build of that commit.
    Commit,
    /// The time of the build: every build makes another image.
    Build,
}

/// A service's `x-wharf:` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// This service's repository template.
    pub repository: Option<String>,
    /// This service's tag templates.
    pub tags: Option<Vec<String>>,
    /// Never built or pushed unless named on the command line.
    #[serde(default, deserialize_with = "go_bool")]
    pub skip: Option<bool>,
    /// Whether `verify` requires it.
    #[serde(default, deserialize_with = "go_bool")]
    pub required: Option<bool>,
    /// The ECS containers that run this service's image, when not named after it.
    pub ecs_container: Option<OneOrMany>,
    /// An AWS Lambda container image: pushed as a plain image manifest, never an index (Lambda
    /// refuses indexes and attestations), so it has one platform.
    #[serde(default, deserialize_with = "go_bool")]
    pub lambda: Option<bool>,
    /// Whether its builds write inline cache metadata and take the service's last release as
    /// a cache source (default true; `cache_from` of its own is used either way).
    #[serde(default, deserialize_with = "go_bool")]
    pub cache: Option<bool>,
}

/// A name, or a list of names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TagMutabilitySetting {
    #[serde(rename = "MUTABLE", alias = "mutable")]
    Mutable,
    #[serde(rename = "IMMUTABLE", alias = "immutable")]
    Immutable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Encryption {
    #[serde(rename = "AES256", alias = "aes256")]
    Aes256,
    #[serde(rename = "KMS", alias = "kms")]
    Kms,
}

/// The keys each block knows, for the "did you mean" of an unknown one.
const PROJECT_KEYS: &[&str] = &[
    "registry",
    "tags",
    "repository",
    "create_repositories",
    "lifecycle_policy",
    "scan_on_push",
    "tag_mutability",
    "immutable_tags",
    "encryption",
    "kms_key",
    "ecs_services",
    "engines",
    "created",
];
const SERVICE_KEYS: &[&str] = &[
    "repository",
    "tags",
    "skip",
    "required",
    "ecs_container",
    "lambda",
    "cache",
];

/// A booleans as compose reads its own after interpolation: YAML booleans, and the strings
/// Go's `strconv.ParseBool` takes (`${CREATE:-false}` interpolates to a string).
fn go_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Text(String),
    }
    match Option::<B>::deserialize(d)? {
        None => Ok(None),
        Some(B::Bool(b)) => Ok(Some(b)),
        Some(B::Text(t)) => match t.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Some(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Some(false)),
            other => Err(serde::de::Error::custom(format!(
                "must be a boolean (true or false), not `{other}`"
            ))),
        },
    }
}

/// What is wrong with an `x-wharf` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The offending key, below the block (`registry`, `tags.1`).
    pub key: Vec<String>,
    pub message: String,
    /// A known key close to an unknown one.
    pub closest: Option<&'static str>,
}

fn closest(given: &str, known: &'static [&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(given, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

fn parse<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
    known: &'static [&'static str],
) -> Result<T, SettingsError> {
    let Some(map) = value.as_object() else {
        return Err(SettingsError {
            key: Vec::new(),
            message: "must be a mapping".into(),
            closest: None,
        });
    };
    if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(SettingsError {
            key: vec![unknown.clone()],
            message: format!("unknown key `{unknown}`"),
            closest: closest(unknown, known),
        });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        use serde_path_to_error::Segment;
        let key: Vec<String> = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                Segment::Seq { index } => Some(index.to_string()),
                Segment::Map { key } => Some(key.clone()),
                Segment::Enum { variant } => Some(variant.clone()),
                Segment::Unknown => None,
            })
            .collect();
        SettingsError {
            message: e.into_inner().to_string(),
            key,
            closest: None,
        }
    })
}

/// The top-level block.
pub fn project_settings(value: &serde_json::Value) -> Result<ProjectSettings, SettingsError> {
    parse(value, PROJECT_KEYS)
}

/// A service's block.
pub fn service_settings(value: &serde_json::Value) -> Result<ServiceSettings, SettingsError> {
    parse(value, SERVICE_KEYS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_typo_names_the_key_and_the_closest_known_one() {
        let e = project_settings(&json!({"regsitry": "ecr"})).unwrap_err();
        assert_eq!(e.key, vec!["regsitry"]);
        assert_eq!(e.closest, Some("registry"));
        let e = service_settings(&json!({"requird": true})).unwrap_err();
        assert_eq!(e.closest, Some("required"));
        let e = service_settings(&json!({"zzz": true})).unwrap_err();
        assert_eq!(e.closest, None);
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let e = service_settings(&json!({"skip": "yes"})).unwrap_err();
        assert_eq!(e.key, vec!["skip"]);
        assert!(e.message.contains("boolean"), "{}", e.message);
        let e = project_settings(&json!({"tags": ["a", 3]})).unwrap_err();
        assert_eq!(e.key, vec!["tags", "1"]);
        let e = project_settings(&json!({"encryption": "DES"})).unwrap_err();
        assert_eq!(e.key, vec!["encryption"]);
    }

    #[test]
    fn interpolated_booleans_read_as_compose_reads_them() {
        let s = service_settings(&json!({"skip": "true", "required": "0"})).unwrap();
        assert_eq!((s.skip, s.required), (Some(true), Some(false)));
        let p =
            project_settings(&json!({"create_repositories": false, "tag_mutability": "IMMUTABLE"}))
                .unwrap();
        assert_eq!(p.create_repositories, Some(false));
        assert_eq!(p.tag_mutability, Some(TagMutabilitySetting::Immutable));
    }
}
