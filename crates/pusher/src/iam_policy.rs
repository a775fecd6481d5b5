//! The least-privilege IAM policy of one project's release: exactly the actions wharf calls for
//! its targets and settings, on the project's own repositories.
//!
//! What wharf calls, and why each action is here:
//! - a private ECR login: `ecr:GetAuthorizationToken`, which only takes `*`;
//! - the repository check before a build: `ecr:DescribeRepositories`;
//! - the daemon's push: the layer upload actions and `ecr:PutImage`;
//! - manifest reads (skip, trust checks, moving tags, promote): `ecr:BatchGetImage`,
//!   `ecr:GetDownloadUrlForLayer` (an image's config blob);
//! - restoring moving tags after a failed phase 2: `ecr:BatchDeleteImage` (by tag);
//! - `--create-repositories`: `ecr:CreateRepository`, and `ecr:PutLifecyclePolicy` with a
//!   lifecycle policy;
//! - ECR Public: its token (`ecr-public:GetAuthorizationToken` with
//!   `sts:GetServiceBearerToken`), then the same push actions under `ecr-public:`;
//! - `verify --ecs-service`: the ECS reads of the post-deploy check.

use crate::registry::Registry;
use crate::target::ImageTarget;
use serde::Serialize;
use std::collections::BTreeSet;

/// An IAM policy document, as IAM takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub sid: &'static str,
    pub effect: &'static str,
    pub action: Vec<&'static str>,
    pub resource: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
}

/// An ECS service the post-deploy check reads: `cluster` is a name or an ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsService {
    pub cluster: String,
    pub service: String,
}

/// What decides the policy besides the targets.
#[derive(Debug, Clone, Default)]
pub struct PolicyInputs {
    /// `--create-repositories` or `x-wharf.create_repositories`.
    pub create_repositories: bool,
    /// `x-wharf.lifecycle_policy` (put on created repositories).
    pub lifecycle_policy: bool,
    pub ecs_services: Vec<EcsService>,
    /// The configured region, for `--registry ecr` (its account is the caller's, unknown
    /// without asking AWS).
    pub default_region: Option<String>,
}

const ECR_PUSH: &[&str] = &[
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchDeleteImage",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
];

const ECR_PUBLIC_PUSH: &[&str] = &[
    "ecr-public:BatchCheckLayerAvailability",
    "ecr-public:BatchDeleteImage",
    "ecr-public:CompleteLayerUpload",
    "ecr-public:DescribeRepositories",
    "ecr-public:InitiateLayerUpload",
    "ecr-public:PutImage",
    "ecr-public:UploadLayerPart",
];

/// Where a private registry lives, as its ARNs name it (`*` where it is not known offline).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PrivateRegistry {
    partition: &'static str,
    region: String,
    account: String,
}

fn private_registry(target: &ImageTarget, inputs: &PolicyInputs) -> Option<PrivateRegistry> {
    match &target.registry {
        Registry::Ecr {
            account,
            region,
            host,
        } => Some(PrivateRegistry {
            partition: if host.ends_with(".amazonaws.com.cn") {
                "aws-cn"
            } else {
                "aws"
            },
            region: region.clone(),
            account: account.clone(),
        }),
        Registry::EcrOfCaller => Some(PrivateRegistry {
            partition: "aws",
            region: inputs.default_region.clone().unwrap_or_else(|| "*".into()),
            account: "*".into(),
        }),
        _ => None,
    }
}

/// The policy for `targets`, or `None` when none of them is on ECR or ECR Public (then the
/// release makes no AWS call that needs a permission).
pub fn policy(targets: &[ImageTarget], inputs: &PolicyInputs) -> Option<PolicyDocument> {
    let mut private: BTreeSet<String> = BTreeSet::new();
    let mut registries: BTreeSet<PrivateRegistry> = BTreeSet::new();
    let mut public: BTreeSet<String> = BTreeSet::new();
    for t in targets {
        if let Some(r) = private_registry(t, inputs) {
            private.insert(format!(
                "arn:{}:ecr:{}:{}:repository/{}",
                r.partition, r.region, r.account, t.repository
            ));
            registries.insert(r);
        } else if let Registry::EcrPublic { .. } = t.registry {
            // The alias does not name the account; the repository name does the narrowing.
            public.insert(format!("arn:aws:ecr-public::*:repository/{}", t.repository));
        }
    }
    if private.is_empty() && public.is_empty() && inputs.ecs_services.is_empty() {
        return None;
    }
    let mut statement = Vec::new();
    if !private.is_empty() {
        statement.push(Statement {
            sid: "EcrLogin",
            effect: "Allow",
            action: vec!["ecr:GetAuthorizationToken"],
            resource: vec!["*".into()],
            condition: None,
        });
        statement.push(Statement {
            sid: "EcrPushAndRead",
            effect: "Allow",
            action: ECR_PUSH.to_vec(),
            resource: private.iter().cloned().collect(),
            condition: None,
        });
        if inputs.create_repositories {
            let mut action = vec!["ecr:CreateRepository"];
            if inputs.lifecycle_policy {
                action.push("ecr:PutLifecyclePolicy");
            }
            statement.push(Statement {
                sid: "EcrCreateRepositories",
                effect: "Allow",
                action,
                resource: private.iter().cloned().collect(),
                condition: None,
            });
        }
    }
    if !public.is_empty() {
        statement.push(Statement {
            sid: "EcrPublicLogin",
            effect: "Allow",
            action: vec![
                "ecr-public:GetAuthorizationToken",
                "sts:GetServiceBearerToken",
            ],
            resource: vec!["*".into()],
            condition: None,
        });
        let mut action = ECR_PUBLIC_PUSH.to_vec();
        if inputs.create_repositories {
            action.insert(2, "ecr-public:CreateRepository");
        }
        statement.push(Statement {
            sid: "EcrPublicPush",
            effect: "Allow",
            action,
            resource: public.iter().cloned().collect(),
            condition: None,
        });
    }
    if !inputs.ecs_services.is_empty() {
        let home = registries
            .iter()
            .next()
            .cloned()
            .unwrap_or(PrivateRegistry {
                partition: "aws",
                region: inputs.default_region.clone().unwrap_or_else(|| "*".into()),
                account: "*".into(),
            });
        let mut services = BTreeSet::new();
        let mut tasks = BTreeSet::new();
        let mut clusters = BTreeSet::new();
        let mut instances = BTreeSet::new();
        for s in &inputs.ecs_services {
            let (prefix, name) = cluster_arn_parts(&s.cluster, &home);
            services.insert(format!("{prefix}:service/{name}/{}", s.service));
            tasks.insert(format!("{prefix}:task/{name}/*"));
            clusters.insert(format!("{prefix}:cluster/{name}"));
            instances.insert(format!("{prefix}:container-instance/{name}/*"));
        }
        statement.push(Statement {
            sid: "EcsReadServices",
            effect: "Allow",
            action: vec!["ecs:DescribeServices"],
            resource: services.into_iter().collect(),
            condition: None,
        });
        statement.push(Statement {
            sid: "EcsReadTasks",
            effect: "Allow",
            action: vec!["ecs:DescribeTasks"],
            resource: tasks.into_iter().collect(),
            condition: None,
        });
        // ListTasks is granted on container instances; the cluster condition keeps it to the
        // project's clusters (Fargate tasks have no instance to name).
        statement.push(Statement {
            sid: "EcsListTasks",
            effect: "Allow",
            action: vec!["ecs:ListTasks"],
            resource: instances.into_iter().collect(),
            condition: Some(serde_json::json!({
                "ArnEquals": { "ecs:cluster": clusters.into_iter().collect::<Vec<_>>() }
            })),
        });
        // DescribeTaskDefinition has no resource-level permissions.
        statement.push(Statement {
            sid: "EcsReadTaskDefinitions",
            effect: "Allow",
            action: vec!["ecs:DescribeTaskDefinition"],
            resource: vec!["*".into()],
            condition: None,
        });
    }
    Some(PolicyDocument {
        version: "2012-10-17",
        statement,
    })
}

/// `arn:PARTITION:ecs:REGION:ACCOUNT` and the cluster's name, from a cluster ARN or a name in
/// the project's registry's account and region.
fn cluster_arn_parts(cluster: &str, home: &PrivateRegistry) -> (String, String) {
    if let Some(rest) = cluster.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if let [partition, "ecs", region, account, resource] = parts.as_slice() {
            if let Some(name) = resource.strip_prefix("cluster/") {
                return (
                    format!("arn:{partition}:ecs:{region}:{account}"),
                    name.to_string(),
                );
            }
        }
    }
    (
        format!(
            "arn:{}:ecs:{}:{}",
            home.partition, home.region, home.account
        ),
        cluster.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(registry: &str, repository: &str) -> ImageTarget {
        let registry = Registry::parse(registry).unwrap();
        ImageTarget {
            service: repository.into(),
            local_image: repository.into(),
            host: None,
            registry,
            repository: repository.into(),
            identity_tags: vec![],
            moving_tags: vec![],
            required: true,
            identity: Default::default(),
            platforms: Vec::new(),
            partial: false,
        }
    }

    #[test]
    fn private_repositories_are_named_by_arn_and_creation_only_when_configured() {
        let targets = [target(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "shop/api",
        )];
        let p = policy(&targets, &PolicyInputs::default()).unwrap();
        assert_eq!(p.statement.len(), 2);
        assert_eq!(
            p.statement[1].resource,
            vec!["arn:aws:ecr:eu-west-1:123456789012:repository/shop/api"]
        );
        let p = policy(
            &targets,
            &PolicyInputs {
                create_repositories: true,
                lifecycle_policy: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            p.statement[2].action,
            vec!["ecr:CreateRepository", "ecr:PutLifecyclePolicy"]
        );
    }

    #[test]
    fn a_public_target_needs_the_bearer_token_and_other_registries_nothing() {
        let p = policy(
            &[target("public.ecr.aws/shop", "api")],
            &PolicyInputs::default(),
        )
        .unwrap();
        assert!(p.statement[0].action.contains(&"sts:GetServiceBearerToken"));
        assert!(policy(
            &[target("registry.example.com", "api")],
            &PolicyInputs::default()
        )
        .is_none());
    }

    #[test]
    fn ecs_clusters_by_arn_keep_their_account() {
        let home = PrivateRegistry {
            partition: "aws",
            region: "us-east-1".into(),
            account: "1".into(),
        };
        assert_eq!(
            cluster_arn_parts("arn:aws:ecs:eu-west-1:2:cluster/prod", &home),
            ("arn:aws:ecs:eu-west-1:2".to_string(), "prod".to_string())
        );
        assert_eq!(
            cluster_arn_parts("prod", &home),
            ("arn:aws:ecs:us-east-1:1".to_string(), "prod".to_string())
        );
    }
}
