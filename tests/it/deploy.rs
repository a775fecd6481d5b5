//! The deploy hand-offs against the bed, through the binary: `config --lock-image-digests`
//! (docker compose takes the output as an override), `render ecs-task-definition` (the diff is
//! the image lines only) and `verify --ecs-service` against ECS services registered in moto.
//! Every release is made by wharf itself to the bed's private ECR, so digests are real.
//!
//! moto starts no tasks for a service (DescribeTasks has nothing to report) and leaves every
//! rollout IN_PROGRESS unless told otherwise: the running tasks' digests and the rollout
//! decisions are tested on ECS's answer types in wharf-deploy's unit tests.

use crate::support::{bed, digests, ecr_login, fake_sha, manifest_of, texts, unique, wharf, write};
use aws_sdk_ecs::types::ContainerDefinition;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use wharf_pusher::api::{RawManifest, RegistryApi};

fn run(dir: &Path, sha: &str, args: &[&str]) -> Output {
    wharf(dir)
        .args(args)
        .env("GITHUB_SHA", sha)
        .env("WHARF_PROGRESS", "plain")
        .output()
        .expect("wharf runs")
}

/// A project of two built services (`worker` runs in the ECS container `jobs`) and a
/// third-party one, images under a unique prefix; `top` goes into the top-level `x-wharf`.
fn project(dir: &Path, prefix: &str, top: &str) {
    let base = bed().base_image;
    write(
        dir,
        "compose.yaml",
        &format!(
            "name: shop\nx-wharf:\n  create_repositories: true\n{top}services:\n  api:\n    image: {prefix}/api\n    build: ./api\n  worker:\n    image: {prefix}/worker\n    build: ./worker\n    x-wharf:\n      ecs_container: jobs\n  cache:\n    image: redis:7\n"
        ),
    );
    for s in ["api", "worker"] {
        write(
            dir,
            &format!("{s}/Dockerfile"),
            &format!("FROM {base}\nCOPY stamp /stamp\n"),
        );
    }
}

/// Releases the project as commit `sha` with new contents: each service's digest.
fn release(dir: &Path, sha: &str) -> BTreeMap<String, String> {
    for s in ["api", "worker"] {
        write(dir, &format!("{s}/stamp"), &unique(s));
    }
    let out = run(
        dir,
        sha,
        &["build", "--push", "--registry", "ecr", "--manifest", "-"],
    );
    digests(&manifest_of(&out, "release"))
}

/// A project (see [`project`], nothing in the top-level `x-wharf`) under a new prefix made of
/// `name`, released as a new commit.
struct Released {
    dir: tempfile::TempDir,
    prefix: String,
    sha: String,
    /// `api`'s image as the release pins it: `registry/prefix/api:sha@digest`.
    api: String,
    /// `worker`'s, the same way.
    worker: String,
}

fn released(name: &str) -> Released {
    let reg = bed().ecr_registry;
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique(name).replace('-', "");
    project(dir.path(), &prefix, "");
    let sha = fake_sha();
    let digests = release(dir.path(), &sha);
    let api = format!("{reg}/{prefix}/api:{sha}@{}", digests["api"]);
    let worker = format!("{reg}/{prefix}/worker:{sha}@{}", digests["worker"]);
    Released {
        dir,
        prefix,
        sha,
        api,
        worker,
    }
}

fn compose_config(dir: &Path, files: &[&str]) -> serde_json::Value {
    let mut c = std::process::Command::new(bed().compose);
    for f in files {
        c.args(["-f", f]);
    }
    let out = c
        .args(["config", "--format", "json"])
        .current_dir(dir)
        .output()
        .expect("docker compose runs");
    assert!(
        out.status.success(),
        "docker compose refused the files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("compose prints JSON")
}

#[test]
fn lock_pins_the_commits_release_and_docker_compose_takes_it_as_an_override() {
    let bed = bed();
    let Released {
        dir,
        prefix,
        sha,
        api,
        worker,
    } = released("lock");
    let reg = &bed.ecr_registry;

    let out = run(
        dir.path(),
        &sha,
        &["config", "--lock-image-digests", "--registry", "ecr"],
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!("services:\n  api:\n    image: {api}\n  worker:\n    image: {worker}\n"),
        "only the released services' images, as docker compose prints a lock file"
    );
    write(dir.path(), "release.yml", &stdout);
    let merged = compose_config(dir.path(), &["compose.yaml", "release.yml"]);
    assert_eq!(merged["services"]["api"]["image"], api.as_str());
    assert_eq!(merged["services"]["worker"]["image"], worker.as_str());
    assert_eq!(merged["services"]["cache"]["image"], "redis:7");
    assert!(merged["services"]["api"]["build"].is_object(), "{merged}");

    let out = run(
        dir.path(),
        &sha,
        &[
            "config",
            "--lock-image-digests",
            "--registry",
            "ecr",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", texts(&out).1);
    write(dir.path(), "release.json", &texts(&out).0);
    let merged = compose_config(dir.path(), &["compose.yaml", "release.json"]);
    assert_eq!(merged["services"]["api"]["image"], api.as_str());

    // Another commit, not released: each service is named. Naming the released commit works
    // from any checkout.
    let other = fake_sha();
    let out = run(
        dir.path(),
        &other,
        &["config", "--lock-image-digests", "--registry", "ecr"],
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    for s in ["api", "worker"] {
        assert!(
            stderr.contains(&format!("`{s}`: {reg}/{prefix}/{s}:{other}")),
            "{stderr}"
        );
    }
    let out = run(
        dir.path(),
        &other,
        &[
            "config",
            "--lock-image-digests",
            "--registry",
            "ecr",
            "--commit",
            &sha,
        ],
    );
    assert_eq!(
        texts(&out).0,
        std::fs::read_to_string(dir.path().join("release.yml")).unwrap()
    );
}

#[tokio::test]
async fn a_multi_platform_release_is_pinned_by_its_index() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("index").replace('-', "");
    project(dir.path(), &prefix, "");
    let sha = fake_sha();
    release(dir.path(), &sha);
    // An index over the released image, under the identity tag of another commit (as a
    // multi-platform release tags its index).
    let login = ecr_login(&bed);
    let api = RegistryApi::default();
    let repo = format!("{}/{prefix}/api", bed.ecr_registry);
    let image = api
        .manifest(&format!("{repo}:{sha}"), Some(&login))
        .await
        .unwrap()
        .expect("the released manifest");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{
            "mediaType": image.media_type,
            "digest": image.digest,
            "size": image.bytes.len(),
            "platform": {"architecture": "amd64", "os": "linux"}
        }]
    })
    .to_string();
    let index_digest = {
        use sha2::{Digest, Sha256};
        format!("sha256:{:x}", Sha256::digest(index.as_bytes()))
    };
    let multi = fake_sha();
    api.put_manifest(
        &repo,
        &multi,
        &RawManifest {
            bytes: index.into_bytes().into(),
            media_type: "application/vnd.docker.distribution.manifest.list.v2+json".into(),
            digest: index_digest.clone(),
        },
        Some(&login),
    )
    .await
    .unwrap();
    let out = run(
        dir.path(),
        &multi,
        &["config", "--lock-image-digests", "--registry", "ecr", "api"],
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!("services:\n  api:\n    image: {repo}:{multi}@{index_digest}\n")
    );
}

/// A task definition as `aws ecs describe-task-definition` prints it (4-space indentation).
fn described(image_api: &str, image_jobs: &str) -> String {
    format!(
        r#"{{
    "taskDefinition": {{
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-web:3",
        "containerDefinitions": [
            {{
                "name": "api",
                "image": "{image_api}",
                "cpu": 0,
                "memory": 128,
                "portMappings": [
                    {{
                        "containerPort": 8080,
                        "hostPort": 0,
                        "protocol": "tcp"
                    }}
                ],
                "essential": true,
                "environment": [
                    {{
                        "name": "GREETING",
                        "value": "héllo \"shop\" 100%"
                    }}
                ],
                "mountPoints": [],
                "volumesFrom": []
            }},
            {{
                "name": "envoy",
                "image": "envoyproxy/envoy:v1.31",
                "cpu": 0,
                "memory": 64,
                "portMappings": [],
                "essential": false,
                "environment": [],
                "mountPoints": [],
                "volumesFrom": []
            }},
            {{
                "name": "jobs",
                "image": "{image_jobs}",
                "cpu": 0,
                "memory": 128,
                "portMappings": [],
                "essential": true,
                "environment": [],
                "mountPoints": [],
                "volumesFrom": [],
                "command": [
                    "job",
                    "--once"
                ]
            }}
        ],
        "family": "shop-web",
        "networkMode": "bridge",
        "revision": 3,
        "volumes": [],
        "status": "ACTIVE",
        "placementConstraints": [],
        "compatibilities": [
            "EC2"
        ],
        "registeredAt": "2026-11-27T10:00:00.000000+00:00"
    }}
}}
"#
    )
}

#[test]
fn render_changes_the_image_lines_and_nothing_else() {
    let bed = bed();
    let Released {
        dir,
        prefix,
        sha,
        api,
        worker,
    } = released("render");
    let reg = &bed.ecr_registry;

    let before = described(
        &format!("{reg}/{prefix}/api:0123"),
        &format!("{reg}/{prefix}/worker:latest"),
    );
    write(dir.path(), "web.json", &before);
    let summary = dir.path().join("summary.md");
    let outputs = dir.path().join("outputs");
    let out = wharf(dir.path())
        .args([
            "render",
            "ecs-task-definition",
            "web.json",
            "--registry",
            "ecr",
            "--output",
            "web.rendered.json",
        ])
        .env("GITHUB_SHA", &sha)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.is_empty(), "the file went to --output: {stdout}");
    let after = std::fs::read_to_string(dir.path().join("web.rendered.json")).unwrap();
    assert_eq!(after, described(&api, &worker));
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(b, a)| b != a)
        .collect();
    assert_eq!(before.lines().count(), after.lines().count());
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert!(changed
        .iter()
        .all(|(b, a)| b.trim_start().starts_with("\"image\": ")
            && a.trim_start().starts_with("\"image\": ")));
    assert!(
        stderr.contains("container `envoy` left as it is"),
        "{stderr}"
    );
    let outputs = std::fs::read_to_string(&outputs).unwrap();
    let mut lines = outputs.lines();
    let (name, delimiter) = lines.next().unwrap().split_once("<<").unwrap();
    assert_eq!(name, "task-definition");
    assert_eq!(lines.next(), Some("web.rendered.json"));
    assert_eq!(lines.next(), Some(delimiter));
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains(&format!("| jobs | worker | `{worker}` |")),
        "{summary}"
    );
    assert!(
        summary.contains("| envoy | — | left as it is |"),
        "{summary}"
    );

    // The input of register-task-definition, 2-space indented (jq), from standard input: a
    // released service no container runs is reported.
    let register = format!(
        "{{\n  \"family\": \"shop-api\",\n  \"containerDefinitions\": [\n    {{\n      \"name\": \"api\",\n      \"image\": \"{reg}/{prefix}/api:latest\",\n      \"essential\": true\n    }}\n  ],\n  \"requiresCompatibilities\": [\n    \"FARGATE\"\n  ],\n  \"cpu\": \"256\",\n  \"memory\": \"512\"\n}}\n"
    );
    let mut child = wharf(dir.path())
        .args(["render", "ecs-task-definition", "-", "--registry", "ecr"])
        .env("GITHUB_SHA", &sha)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(register.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout,
        register.replace(&format!("{reg}/{prefix}/api:latest"), &api)
    );
    assert!(
        stderr.contains("no container runs the released service `worker`"),
        "{stderr}"
    );

    // Not a task definition: a usage error, before any registry is asked.
    write(dir.path(), "bad.json", "{\"family\": \"x\"}");
    let out = run(
        dir.path(),
        &sha,
        &["render", "ecs-task-definition", "bad.json"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(texts(&out).1.contains("bad.json is not a task definition"));
}

async fn ecs() -> aws_sdk_ecs::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(wharf_pusher::tls::aws_http_client())
        .load()
        .await;
    aws_sdk_ecs::Client::new(&conf)
}

/// Registers a task definition of `containers` (name, image) and a service running it.
async fn ecs_service(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    containers: &[(&str, &str)],
) {
    let td = client
        .register_task_definition()
        .family(format!("{cluster}-{name}"))
        .set_container_definitions(Some(
            containers
                .iter()
                .map(|(n, i)| {
                    ContainerDefinition::builder()
                        .name(*n)
                        .image(*i)
                        .memory(128)
                        .build()
                })
                .collect(),
        ))
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let arn = td
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap()
        .to_string();
    client
        .create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(arn)
        .desired_count(1)
        .send()
        .await
        .expect("CreateService");
}

#[tokio::test]
async fn verify_checks_what_ecs_services_run() {
    let bed = bed();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("ecs").replace('-', "");
    let cluster = format!("c{prefix}");
    project(
        dir.path(),
        &prefix,
        &format!("  ecs_services: [{cluster}/match, {cluster}/tag]\n"),
    );
    let last_sha = fake_sha();
    let last = release(dir.path(), &last_sha);
    let sha = fake_sha();
    let this = release(dir.path(), &sha);
    assert_ne!(last["api"], this["api"]);
    let reg = &bed.ecr_registry;
    let repo = |s: &str| format!("{reg}/{prefix}/{s}");

    let client = ecs().await;
    client
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .expect("CreateCluster");
    // Both containers by digest (one with the tag too), and a sidecar of no service.
    ecs_service(
        &client,
        &cluster,
        "match",
        &[
            ("api", &format!("{}@{}", repo("api"), this["api"])),
            (
                "jobs",
                &format!("{}:{sha}@{}", repo("worker"), this["worker"]),
            ),
            ("envoy", "envoyproxy/envoy:v1.31"),
        ],
    )
    .await;
    // The last release's image for api.
    ecs_service(
        &client,
        &cluster,
        "last",
        &[
            ("api", &format!("{}:{last_sha}", repo("api"))),
            ("jobs", &format!("{}@{}", repo("worker"), this["worker"])),
        ],
    )
    .await;
    // Tags that resolve to this release's digests now.
    ecs_service(
        &client,
        &cluster,
        "tag",
        &[
            ("api", &format!("{}:latest", repo("api"))),
            ("jobs", &format!("{}:{sha}", repo("worker"))),
        ],
    )
    .await;

    // x-wharf.ecs_services: checked without flags.
    let out = run(dir.path(), &sha, &["verify", "--registry", "ecr"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{cluster}/match: container `api` runs the release (by digest)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{cluster}/tag: container `jobs` runs the release (by a tag naming its digest)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{cluster}/match: container `envoy` not checked")),
        "{stderr}"
    );
    assert!(stderr.contains("2 ECS service(s) run this release (4 container(s) checked)"));

    // The pre-deploy gate of the same project.
    let out = run(
        dir.path(),
        &sha,
        &["verify", "--registry", "ecr", "--registry-only"],
    );
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("ECS"), "{stderr}");

    // The service still on the last release: exit 1, naming the container with the expected
    // and the running image; the step outputs and summary carry the table.
    let summary = dir.path().join("summary.md");
    let outputs = dir.path().join("outputs");
    let out = wharf(dir.path())
        .args(["verify", "--registry", "ecr", "--ecs-service"])
        .arg(format!("{cluster}/last"))
        .env("GITHUB_SHA", &sha)
        .env("WHARF_PROGRESS", "plain")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .output()
        .unwrap();
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let expected = format!("{}:{sha}@{}", repo("api"), this["api"]);
    let running = format!("{}:{last_sha}", repo("api"));
    assert!(
        stderr.contains(&format!(
            "{cluster}/last: container `api` (service `api`): expected {expected}, runs {running} — its tag :{last_sha} names another image ({})",
            last["api"]
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("container `jobs` (service"), "{stderr}");
    let outputs = std::fs::read_to_string(&outputs).unwrap();
    let json_start = outputs.find("ecs-verification<<").expect("the JSON output");
    let mut lines = outputs[json_start..].lines();
    let delimiter = lines
        .next()
        .unwrap()
        .split_once("<<")
        .unwrap()
        .1
        .to_string();
    let json: String = lines
        .take_while(|l| *l != delimiter)
        .collect::<Vec<_>>()
        .join("\n");
    let verification: serde_json::Value = serde_json::from_str(&json).unwrap();
    let service = &verification["services"][0];
    assert_eq!(service["service"], format!("{cluster}/last"));
    assert_eq!(service["passed"], false);
    assert_eq!(service["containers"][0]["container"], "api");
    assert_eq!(
        service["containers"][0]["problems"][0]["problem"],
        "tag-names-other"
    );
    assert_eq!(service["containers"][1]["named"], "digest");
    assert!(outputs.contains("ecs-verification-table<<"));
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.contains(&format!(
            "| {cluster}/last | api | api | `{expected}` | `{running}` | ❌ its tag :{last_sha} names another image"
        )),
        "{summary}"
    );

    // Unknown cluster or service: usage errors.
    for missing in [format!("{cluster}/nosuch"), format!("{cluster}x/match")] {
        let out = run(
            dir.path(),
            &sha,
            &["verify", "--registry", "ecr", "--ecs-service", &missing],
        );
        let (_, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{missing}: {stderr}");
        assert!(stderr.contains("does not exist"), "{stderr}");
    }

    // --wait follows the primary deployment's rollout as ECS reports it.
    let state = client
        .describe_services()
        .cluster(&cluster)
        .services("match")
        .send()
        .await
        .unwrap()
        .services()[0]
        .deployments()[0]
        .rollout_state()
        .map(|s| s.as_str().to_string());
    let out = run(
        dir.path(),
        &sha,
        &[
            "verify",
            "--registry",
            "ecr",
            "--ecs-service",
            &format!("{cluster}/match"),
            "--wait",
            "1s",
        ],
    );
    let (_, stderr) = texts(&out);
    if state.as_deref() == Some("COMPLETED") {
        assert_eq!(out.status.code(), Some(0), "{stderr}");
    } else {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "{cluster}/match: the rollout did not complete within 1s: IN_PROGRESS"
            )),
            "{stderr}"
        );
    }
}
