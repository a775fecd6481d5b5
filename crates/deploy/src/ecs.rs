//! An ECS service as ECS reports it: the service and its primary deployment (DescribeServices),
//! the deployment's task definition (DescribeTaskDefinition) and the tasks running it
//! (ListTasks, DescribeTasks) — and a wait for its rollout.
//!
//! The client is built from the caller's [`SdkConfig`], the same credential chain, region and
//! endpoint overrides (`AWS_ENDPOINT_URL`) as the ECR logins.

use crate::rollout::{self, Judgement, Rollout};
use crate::DeployError;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::{Deployment, DesiredStatus, Service, Task, TaskDefinition};
use aws_types::SdkConfig;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};
use wharf_pusher::aws_failure::{AwsCall, AwsError};

/// `CLUSTER/SERVICE` (the cluster may be given by ARN).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceId {
    pub cluster: String,
    pub service: String,
}

impl FromStr for ServiceId {
    type Err = DeployError;

    fn from_str(given: &str) -> Result<ServiceId, DeployError> {
        // Neither name may hold a `/`; a cluster ARN does (`…:cluster/prod`), so split at the last.
        match given.trim().rsplit_once('/') {
            Some((cluster, service)) if !cluster.is_empty() && !service.is_empty() => {
                Ok(ServiceId {
                    cluster: cluster.to_string(),
                    service: service.to_string(),
                })
            }
            _ => Err(DeployError::InvalidServiceId {
                given: given.to_string(),
            }),
        }
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster, self.service)
    }
}

/// What a service runs: its primary deployment, that deployment's task definition, and the
/// tasks running that task definition.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: ServiceId,
    pub deployment: Deployment,
    pub task_definition: TaskDefinition,
    pub tasks: Vec<Task>,
}

/// The ECS API.
pub struct Ecs {
    client: aws_sdk_ecs::Client,
    region: Option<String>,
}

/// DescribeTasks takes at most this many tasks per call.
const DESCRIBE_TASKS_MAX: usize = 100;

impl Ecs {
    pub fn new(sdk: &SdkConfig) -> Ecs {
        Ecs {
            client: aws_sdk_ecs::Client::new(sdk),
            region: sdk.region().map(|r| r.to_string()),
        }
    }

    /// A failed ECS call for `target`, told apart and explained as every AWS failure is.
    fn aws_error<E, R>(
        &self,
        action: &'static str,
        target: &dyn fmt::Display,
        e: &SdkError<E, R>,
    ) -> DeployError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug + 'static,
    {
        DeployError::AwsCall {
            target: target.to_string(),
            error: AwsError::from_sdk(AwsCall::new(action), self.region.as_deref(), e),
        }
    }

    /// The service as DescribeServices reports it; a cluster or service that does not exist
    /// (or was deleted) is [`DeployError::UnknownCluster`] / [`DeployError::UnknownService`].
    pub async fn service(&self, id: &ServiceId) -> Result<Service, DeployError> {
        let out = self
            .client
            .describe_services()
            .cluster(&id.cluster)
            .services(&id.service)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("ClusterNotFoundException") => DeployError::UnknownCluster {
                    cluster: id.cluster.clone(),
                },
                _ => self.aws_error("ecs:DescribeServices", id, &e),
            })?;
        let unknown = |status: &str| DeployError::UnknownService {
            cluster: id.cluster.clone(),
            service: id.service.clone(),
            status: status.to_string(),
        };
        match out.services().first() {
            Some(s) if s.status() == Some("INACTIVE") => {
                Err(unknown(" (it was deleted: INACTIVE)"))
            }
            Some(s) => Ok(s.clone()),
            None => Err(unknown("")),
        }
    }

    async fn task_definition(
        &self,
        id: &ServiceId,
        arn: &str,
    ) -> Result<TaskDefinition, DeployError> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| {
                self.aws_error("ecs:DescribeTaskDefinition", &format!("{id} ({arn})"), &e)
            })?;
        out.task_definition.ok_or_else(|| DeployError::Aws {
            operation: "DescribeTaskDefinition",
            target: format!("{id} ({arn})"),
            message: "the answer held no task definition".into(),
        })
    }

    /// The service's running tasks of `task_definition`.
    async fn tasks(&self, id: &ServiceId, task_definition: &str) -> Result<Vec<Task>, DeployError> {
        let mut arns = Vec::new();
        let mut next = None;
        loop {
            let out = self
                .client
                .list_tasks()
                .cluster(&id.cluster)
                .service_name(&id.service)
                .desired_status(DesiredStatus::Running)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| self.aws_error("ecs:ListTasks", id, &e))?;
            arns.extend(out.task_arns().iter().cloned());
            next = out.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
        let mut tasks = Vec::new();
        for chunk in arns.chunks(DESCRIBE_TASKS_MAX) {
            let out = self
                .client
                .describe_tasks()
                .cluster(&id.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| self.aws_error("ecs:DescribeTasks", id, &e))?;
            tasks.extend(
                out.tasks()
                    .iter()
                    .filter(|t| t.task_definition_arn() == Some(task_definition))
                    .cloned(),
            );
        }
        Ok(tasks)
    }

    /// What the service runs now.
    pub async fn snapshot(&self, id: &ServiceId) -> Result<Snapshot, DeployError> {
        let service = self.service(id).await?;
        self.snapshot_of(id, &service).await
    }

    async fn snapshot_of(
        &self,
        id: &ServiceId,
        service: &Service,
    ) -> Result<Snapshot, DeployError> {
        let deployment = rollout::primary(service).cloned().ok_or_else(|| {
            // The same story `judge` tells about a service without a primary deployment.
            match rollout::judge(service, None) {
                Err(e) => e,
                Ok(_) => DeployError::NoPrimaryDeployment {
                    service: id.to_string(),
                    hint: String::new(),
                },
            }
        })?;
        let arn = deployment
            .task_definition()
            .ok_or_else(|| DeployError::NoPrimaryDeployment {
                service: id.to_string(),
                hint: " with a task definition".into(),
            })?
            .to_string();
        let task_definition = self.task_definition(id, &arn).await?;
        let tasks = self.tasks(id, &arn).await?;
        Ok(Snapshot {
            id: id.clone(),
            deployment,
            task_definition,
            tasks,
        })
    }

    /// Waits until the rollout of the service's primary deployment completes (at most
    /// `timeout`, asking every `poll`), then says what the service runs. A failed rollout is
    /// [`DeployError::RolloutFailed`] with ECS's reason; `progress` hears each new state.
    pub async fn wait(
        &self,
        id: &ServiceId,
        timeout: Duration,
        poll: Duration,
        mut progress: impl FnMut(&Judgement),
    ) -> Result<Snapshot, DeployError> {
        let started = Instant::now();
        let mut watched: Option<String> = None;
        let mut last: Option<Judgement> = None;
        loop {
            let service = self.service(id).await?;
            let judgement = rollout::judge(&service, watched.as_deref())?;
            watched.get_or_insert_with(|| judgement.deployment.clone());
            if last.as_ref() != Some(&judgement) {
                progress(&judgement);
            }
            match &judgement.rollout {
                Rollout::Completed => return self.snapshot_of(id, &service).await,
                Rollout::Failed { reason } => {
                    return Err(DeployError::RolloutFailed {
                        service: id.to_string(),
                        reason: reason.clone(),
                    })
                }
                Rollout::InProgress { reason } => {
                    let waited = started.elapsed();
                    if waited >= timeout {
                        return Err(DeployError::RolloutTimedOut {
                            service: id.to_string(),
                            waited: format!("{}s", timeout.as_secs_f64()),
                            state: "IN_PROGRESS".into(),
                            reason: reason
                                .as_ref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default(),
                        });
                    }
                    tokio::time::sleep(poll.min(timeout - waited)).await;
                }
            }
            last = Some(judgement);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids_are_cluster_and_service() {
        let id: ServiceId = "prod/web".parse().unwrap();
        assert_eq!((id.cluster.as_str(), id.service.as_str()), ("prod", "web"));
        assert_eq!(id.to_string(), "prod/web");
        let arn: ServiceId = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod/web"
            .parse()
            .unwrap();
        assert_eq!(
            arn.cluster,
            "arn:aws:ecs:eu-west-1:123456789012:cluster/prod"
        );
        for bad in ["web", "/web", "prod/", ""] {
            let e = bad.parse::<ServiceId>().unwrap_err();
            assert!(
                e.is_usage() && e.to_string().contains("CLUSTER/SERVICE"),
                "{bad}: {e}"
            );
        }
    }
}
