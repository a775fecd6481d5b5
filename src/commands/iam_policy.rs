//! `wharf iam-policy`: the IAM policy a CI role needs for exactly this project's release, from
//! the compose file and the settings alone (no AWS call, no git).

use crate::cli::{IamPolicyArgs, PolicyFormat, ProjectArgs};
use crate::error::{Failure, Result};
use crate::release;
use anyhow::anyhow;
use wharf_pusher::iam_policy::{self, EcsService, PolicyInputs};
use wharf_pusher::target::{self, TagValues};

pub fn run(project_args: &ProjectArgs, args: &IamPolicyArgs) -> Result<()> {
    let project = release::load_project(project_args, &args.services)?;
    let services = release::select(&project, &args.services)?;
    let settings = release::settings(&project, &args.target)?;
    // Tags do not change the policy; a stand-in commit keeps git out of it.
    let stand_in = "0".repeat(40);
    let env = |name: &str| std::env::var(name).ok();
    let values = TagValues {
        git_sha: Some(&stand_in),
        git_branch: Some("main"),
        timestamp: "19700101000000",
        env: &env,
    };
    let mut targets = Vec::new();
    for s in &services {
        targets.push(target::target(&project, s, &settings, &values).map_err(Failure::config)?);
    }
    let x = project.x_wharf.clone().unwrap_or_default();
    let ecs_services = crate::deploy::ecs_services(&project, &args.ecs_services)?
        .into_iter()
        .map(|id| EcsService {
            cluster: id.cluster,
            service: id.service,
        })
        .collect();
    let inputs = PolicyInputs {
        create_repositories: args.target.create_repositories || x.create_repositories == Some(true),
        lifecycle_policy: x.lifecycle_policy.is_some(),
        ecs_services,
        default_region: env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")),
    };
    let Some(policy) = iam_policy::policy(&targets, &inputs) else {
        return Err(Failure::config(anyhow!(
            "no service of this project goes to ECR or ECR Public and no ECS service is listed: \
             its release needs no IAM permission (choose a registry with --registry or \
             x-wharf.registry)"
        )));
    };
    let text = match args.format {
        PolicyFormat::Json => serde_json::to_string_pretty(&policy)
            .map_err(|e| Failure::config(anyhow!("cannot render the policy: {e}")))?,
    };
    println!("{text}");
    Ok(())
}
