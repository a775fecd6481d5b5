//! The post-deploy gate's judgement: does each container of a released service run this
//! release's image? A container passes when its task definition names the release's
//! repository and either the release's digest, or a tag the registry resolves (now) to that
//! digest; and every running task that reports the container's image digest reports the
//! release's (a tag may have moved after the tasks pulled it).
//!
//! The judgement is a pure function of ECS's answer and the registry's tag resolutions, so
//! each case is tested on ECS's own types.

use crate::containers::Matcher;
use crate::ecs::Snapshot;
use crate::{ImageRef, Pin};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// Why a container does not run the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Problem {
    /// The task definition names no image for it.
    NoImage,
    /// Another repository than the release's.
    OtherRepository { repository: String },
    /// The release's repository, another digest.
    OtherDigest { digest: String },
    /// A tag that now names another image.
    TagNamesOther { tag: String, digest: String },
    /// A tag the registry does not have.
    TagMissing { tag: String },
    /// A running task reports another image digest.
    TaskRuns { task: String, digest: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoImage => write!(f, "the task definition names no image"),
            Problem::OtherRepository { repository } => {
                write!(f, "names another repository ({repository})")
            }
            Problem::OtherDigest { digest } => write!(f, "names another image ({digest})"),
            Problem::TagNamesOther { tag, digest } => {
                write!(f, "its tag :{tag} names another image ({digest})")
            }
            Problem::TagMissing { tag } => write!(f, "its tag :{tag} is not in the registry"),
            Problem::TaskRuns { task, digest } => write!(f, "task {task} runs {digest}"),
        }
    }
}

/// How a passing container names the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Named {
    /// By its digest.
    Digest,
    /// By a tag the registry resolves to its digest.
    Tag,
}

/// One container of a task definition, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerCheck {
    pub container: String,
    /// The released service it runs; `None`: no released service runs it, so it is not checked.
    pub service: Option<String>,
    /// The release's pinned image.
    pub expected: Option<String>,
    /// The image the task definition names.
    pub image: String,
    /// The image digests running tasks report for it (each once).
    pub running: Vec<String>,
    /// How it names the release, when it does.
    pub named: Option<Named>,
    pub problems: Vec<Problem>,
}

impl ContainerCheck {
    /// A released service's container running the release (unchecked containers are not).
    pub fn passed(&self) -> bool {
        self.service.is_some() && self.problems.is_empty() && self.named.is_some()
    }

    pub fn failed(&self) -> bool {
        self.service.is_some() && !self.passed()
    }
}

fn image_of(c: &aws_sdk_ecs::types::ContainerDefinition) -> Option<&str> {
    c.image().filter(|i| !i.trim().is_empty())
}

/// The container's pin, if a released service runs it.
fn pin_of<'p>(matcher: &Matcher, pins: &'p [Pin], container: &str) -> Option<&'p Pin> {
    let service = matcher.service_of(container)?;
    pins.iter().find(|p| p.service == service)
}

/// `HOST/PATH:TAG` for a reference without a digest (Docker's implicit `latest` included).
fn tag_reference(image: &ImageRef) -> (String, String) {
    let tag = image.tag.clone().unwrap_or_else(|| "latest".into());
    (format!("{}:{tag}", image.repository()), tag)
}

/// The tags (`HOST/REPOSITORY:TAG`) whose digest the registry must be asked for: those of
/// released services' containers that name the release's repository by tag only.
pub fn tags_to_resolve(snapshot: &Snapshot, matcher: &Matcher, pins: &[Pin]) -> Vec<String> {
    let mut out = Vec::new();
    for c in snapshot.task_definition.container_definitions() {
        let (Some(name), Some(image)) = (c.name(), image_of(c)) else {
            continue;
        };
        let Some(pin) = pin_of(matcher, pins, name) else {
            continue;
        };
        let image = ImageRef::parse(image);
        if image.digest.is_none() && pin.same_repository(&image) {
            let (reference, _) = tag_reference(&image);
            if !out.contains(&reference) {
                out.push(reference);
            }
        }
    }
    out
}

/// Judges every container of the snapshot's task definition. `resolved`: the digest the
/// registry serves for each reference [`tags_to_resolve`] gave (`None`: no such tag).
pub fn check(
    snapshot: &Snapshot,
    matcher: &Matcher,
    pins: &[Pin],
    resolved: &HashMap<String, Option<String>>,
) -> Vec<ContainerCheck> {
    let mut out = Vec::new();
    for c in snapshot.task_definition.container_definitions() {
        let name = c.name().unwrap_or_default().to_string();
        let image_text = image_of(c).unwrap_or_default().to_string();
        let mut check = ContainerCheck {
            container: name.clone(),
            service: None,
            expected: None,
            image: image_text.clone(),
            running: running_digests(&snapshot.tasks, &name)
                .into_iter()
                .map(|(_, d)| d)
                .fold(Vec::new(), |mut v, d| {
                    if !v.contains(&d) {
                        v.push(d);
                    }
                    v
                }),
            named: None,
            problems: Vec::new(),
        };
        let Some(pin) = pin_of(matcher, pins, &name) else {
            out.push(check);
            continue;
        };
        check.service = Some(pin.service.clone());
        check.expected = Some(pin.reference());
        if image_text.is_empty() {
            check.problems.push(Problem::NoImage);
        } else {
            let image = ImageRef::parse(&image_text);
            if !pin.same_repository(&image) {
                check.problems.push(Problem::OtherRepository {
                    repository: image.repository(),
                });
            } else if let Some(digest) = &image.digest {
                if *digest == pin.digest {
                    check.named = Some(Named::Digest);
                } else {
                    check.problems.push(Problem::OtherDigest {
                        digest: digest.clone(),
                    });
                }
            } else {
                let (reference, tag) = tag_reference(&image);
                match resolved.get(&reference) {
                    Some(Some(d)) if *d == pin.digest => check.named = Some(Named::Tag),
                    Some(Some(d)) => check.problems.push(Problem::TagNamesOther {
                        tag,
                        digest: d.clone(),
                    }),
                    // Not resolved counts as missing: the caller asked for every tag.
                    Some(None) | None => check.problems.push(Problem::TagMissing { tag }),
                }
            }
        }
        for (task, digest) in running_digests(&snapshot.tasks, &name) {
            if !pin.is_release_digest(&digest) {
                check.problems.push(Problem::TaskRuns { task, digest });
            }
        }
        out.push(check);
    }
    out
}

/// (task id, image digest) for each running task that reports the container's digest.
fn running_digests(tasks: &[aws_sdk_ecs::types::Task], container: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in tasks {
        let id = t
            .task_arn()
            .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
            .unwrap_or_default();
        for c in t.containers() {
            if c.name() == Some(container) {
                if let Some(d) = c.image_digest().filter(|d| !d.is_empty()) {
                    out.push((id.clone(), d.to_string()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::ServiceId;
    use aws_sdk_ecs::types::{Container, ContainerDefinition, Deployment, Task, TaskDefinition};

    const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/api";
    const TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:7";

    fn pin() -> Pin {
        Pin {
            service: "api".into(),
            repository: REPO.into(),
            tag: "abc".into(),
            digest: "sha256:new".into(),
            platforms: vec!["sha256:new-amd64".into()],
        }
    }

    fn snapshot(containers: &[(&str, &str)], tasks: Vec<Task>) -> Snapshot {
        let td = TaskDefinition::builder()
            .task_definition_arn(TD)
            .set_container_definitions(Some(
                containers
                    .iter()
                    .map(|(n, i)| ContainerDefinition::builder().name(*n).image(*i).build())
                    .collect(),
            ))
            .build();
        Snapshot {
            id: ServiceId {
                cluster: "prod".into(),
                service: "web".into(),
            },
            deployment: Deployment::builder()
                .status("PRIMARY")
                .task_definition(TD)
                .build(),
            task_definition: td,
            tasks,
        }
    }

    fn task(id: &str, container: &str, digest: Option<&str>) -> Task {
        Task::builder()
            .task_arn(format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{id}"))
            .task_definition_arn(TD)
            .containers(
                Container::builder()
                    .name(container)
                    .set_image_digest(digest.map(str::to_string))
                    .build(),
            )
            .build()
    }

    fn matcher() -> Matcher {
        Matcher::new([("api", &[][..]), ("cache", &[][..])]).unwrap()
    }

    #[test]
    fn a_container_naming_the_release_by_digest_passes() {
        let s = snapshot(
            &[
                ("api", &format!("{REPO}:abc@sha256:new")),
                ("envoy", "envoyproxy/envoy:v1"),
            ],
            vec![
                task("t1", "api", Some("sha256:new")),
                task("t2", "api", None),
            ],
        );
        assert!(tags_to_resolve(&s, &matcher(), &[pin()]).is_empty());
        let r = check(&s, &matcher(), &[pin()], &HashMap::new());
        assert!(r[0].passed(), "{:?}", r[0]);
        assert_eq!(r[0].named, Some(Named::Digest));
        assert_eq!(r[0].running, vec!["sha256:new".to_string()]);
        assert_eq!(r[1].service, None, "no released service runs envoy");
        assert!(!r[1].passed() && !r[1].failed());
    }

    #[test]
    fn a_tag_passes_when_the_registry_resolves_it_to_the_release() {
        let s = snapshot(&[("api", &format!("{REPO}:prod"))], vec![]);
        let tags = tags_to_resolve(&s, &matcher(), &[pin()]);
        assert_eq!(tags, vec![format!("{REPO}:prod")]);
        let now = HashMap::from([(tags[0].clone(), Some("sha256:new".to_string()))]);
        let r = check(&s, &matcher(), &[pin()], &now);
        assert_eq!(r[0].named, Some(Named::Tag));
        assert!(r[0].passed());
        let moved = HashMap::from([(tags[0].clone(), Some("sha256:old".to_string()))]);
        let r = check(&s, &matcher(), &[pin()], &moved);
        assert_eq!(
            r[0].problems,
            vec![Problem::TagNamesOther {
                tag: "prod".into(),
                digest: "sha256:old".into()
            }]
        );
        let gone = HashMap::from([(tags[0].clone(), None)]);
        let r = check(&s, &matcher(), &[pin()], &gone);
        assert_eq!(
            r[0].problems,
            vec![Problem::TagMissing { tag: "prod".into() }]
        );
        assert!(r[0].failed());
    }

    #[test]
    fn the_last_release_or_another_repository_fails() {
        let s = snapshot(&[("api", &format!("{REPO}@sha256:old"))], vec![]);
        let r = check(&s, &matcher(), &[pin()], &HashMap::new());
        assert_eq!(
            r[0].problems,
            vec![Problem::OtherDigest {
                digest: "sha256:old".into()
            }]
        );
        assert_eq!(
            r[0].expected.as_deref(),
            Some(&*format!("{REPO}:abc@sha256:new"))
        );
        let s = snapshot(&[("api", "docker.io/shop/api@sha256:new")], vec![]);
        let r = check(&s, &matcher(), &[pin()], &HashMap::new());
        assert_eq!(
            r[0].problems,
            vec![Problem::OtherRepository {
                repository: "docker.io/shop/api".into()
            }]
        );
    }

    #[test]
    fn running_tasks_must_report_the_release_digest_or_one_of_its_platforms() {
        // The task definition names the release by tag; one task pulled that tag before it
        // moved to this release and still runs the old image.
        let s = snapshot(
            &[("api", &format!("{REPO}:prod"))],
            vec![
                task("t1", "api", Some("sha256:new-amd64")),
                task("t2", "api", Some("sha256:old")),
                task("t3", "envoy", Some("sha256:whatever")),
            ],
        );
        let now = HashMap::from([(format!("{REPO}:prod"), Some("sha256:new".to_string()))]);
        let r = check(&s, &matcher(), &[pin()], &now);
        assert_eq!(r[0].named, Some(Named::Tag));
        assert_eq!(
            r[0].problems,
            vec![Problem::TaskRuns {
                task: "t2".into(),
                digest: "sha256:old".into()
            }]
        );
        assert_eq!(
            r[0].running,
            vec!["sha256:new-amd64".to_string(), "sha256:old".to_string()]
        );
        assert!(r[0].failed());
    }

    #[test]
    fn a_container_without_image_fails() {
        let td = TaskDefinition::builder()
            .container_definitions(ContainerDefinition::builder().name("api").build())
            .build();
        let mut s = snapshot(&[], vec![]);
        s.task_definition = td;
        let r = check(&s, &matcher(), &[pin()], &HashMap::new());
        assert_eq!(r[0].problems, vec![Problem::NoImage]);
    }
}
