//! `wharf iam-policy`: the policy of the example project (snapshot) and of its variants, each
//! checked by parliament (an offline IAM policy linter) to have no finding.

use crate::support::lint_tools::parliament_findings;
use crate::support::{run, stderr, stdout, wharf, write};
use std::path::{Path, PathBuf};

const ECR: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The policy wharf prints in `dir` with `args`, after checking exit 0 and no finding.
fn policy(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = run(wharf(dir)
        .arg("iam-policy")
        .args(args)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let findings = parliament_findings(&text);
    assert!(
        findings.is_empty(),
        "parliament on {args:?}: {findings}\n{text}"
    );
    serde_json::from_str(&text).expect("a JSON policy document")
}

fn actions(policy: &serde_json::Value) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_example_project_gets_an_exact_policy() {
    let root = repo_root();
    let p = policy(
        &root,
        &[
            "-f",
            "docker-compose.example.yml",
            "--registry",
            ECR,
            "--create-repositories",
        ],
    );
    insta::assert_json_snapshot!(p);
}

#[test]
fn repository_creation_and_ecs_reads_only_when_configured() {
    let root = repo_root();
    let plain = actions(&policy(
        &root,
        &["-f", "docker-compose.example.yml", "--registry", ECR],
    ));
    assert!(plain.contains(&"ecr:PutImage".to_string()));
    assert!(!plain
        .iter()
        .any(|a| a == "ecr:CreateRepository" || a.starts_with("ecs:")));
    let with_ecs = actions(&policy(
        &root,
        &[
            "-f",
            "docker-compose.example.yml",
            "--registry",
            ECR,
            "--ecs-service",
            "prod/api",
            "--ecs-service",
            "arn:aws:ecs:eu-west-1:123456789012:cluster/stage/api",
        ],
    ));
    for a in [
        "ecs:DescribeServices",
        "ecs:DescribeTasks",
        "ecs:ListTasks",
        "ecs:DescribeTaskDefinition",
    ] {
        assert!(with_ecs.contains(&a.to_string()), "{a}: {with_ecs:?}");
    }
}

#[test]
fn x_wharf_settings_shape_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        &format!(
            "x-wharf:\n  registry: {ECR}\n  create_repositories: true\n  ecs_services: [prod/web]\n\
             services:\n  web:\n    build: .\n    image: shop/web\n"
        ),
    );
    let p = policy(dir.path(), &[]);
    let all = actions(&p);
    assert!(all.contains(&"ecr:CreateRepository".to_string()));
    // No lifecycle policy configured: none is put.
    assert!(!all.contains(&"ecr:PutLifecyclePolicy".to_string()));
    assert!(all.contains(&"ecs:DescribeServices".to_string()));
    assert!(p
        .to_string()
        .contains("arn:aws:ecs:eu-west-1:123456789012:service/prod/web"));
}

#[test]
fn a_public_target_needs_the_bearer_token() {
    let root = repo_root();
    let p = policy(
        &root,
        &[
            "-f",
            "docker-compose.example.yml",
            "--registry",
            "public.ecr.aws/shop",
        ],
    );
    let all = actions(&p);
    assert!(all.contains(&"sts:GetServiceBearerToken".to_string()));
    assert!(all.contains(&"ecr-public:GetAuthorizationToken".to_string()));
    assert!(!all.iter().any(|a| a.starts_with("ecr:")));
    // `--registry ecr`: the caller's account is unknown offline.
    let p = policy(
        &root,
        &["-f", "docker-compose.example.yml", "--registry", "ecr"],
    );
    assert!(p
        .to_string()
        .contains("arn:aws:ecr:*:*:repository/shop/api"));
}

#[test]
fn a_project_without_an_aws_registry_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "compose.yaml",
        "services:\n  web:\n    build: .\n    image: registry.example.com/web\n",
    );
    let out = run(wharf(dir.path()).arg("iam-policy"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    insta::assert_snapshot!(stderr(&out));
}
