//! Errors of the deploy hand-off, each naming the file, service or container it concerns.

/// Something about a task definition file, an ECS service, or the ECS API.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{source_name} is not a task definition: {message}")]
    NotATaskDefinition {
        source_name: String,
        message: String,
    },

    #[error("`{given}` is not an ECS service: write CLUSTER/SERVICE (e.g. prod/web)")]
    InvalidServiceId { given: String },

    #[error("the ECS cluster `{cluster}` does not exist (in this account and region)")]
    UnknownCluster { cluster: String },

    #[error("the ECS service `{service}` does not exist in cluster `{cluster}`{status}")]
    UnknownService {
        cluster: String,
        service: String,
        /// `` (it is INACTIVE)`` when ECS still knows it as deleted.
        status: String,
    },

    #[error("the container `{container}` is named by x-wharf.ecs_container of both `{first}` and `{second}`")]
    ContainerClaimedTwice {
        container: String,
        first: String,
        second: String,
    },

    #[error("{target}: {error}")]
    AwsCall {
        target: String,
        error: Box<wharf_pusher::aws_failure::AwsError>,
    },

    #[error("ECS {operation} for {target}: {message}")]
    Aws {
        operation: &'static str,
        target: String,
        message: String,
    },

    #[error("{service}: ECS reports no primary deployment{hint}")]
    NoPrimaryDeployment { service: String, hint: String },

    #[error("{service}: the rollout failed: {reason}")]
    RolloutFailed { service: String, reason: String },

    #[error("{service}: the rollout did not complete within {waited}: {state}{reason}")]
    RolloutTimedOut {
        service: String,
        waited: String,
        state: String,
        reason: String,
    },
}

impl DeployError {
    /// Whether the error is the user's to fix before anything can be checked (exit 2): a
    /// service or cluster that does not exist, a file or a setting that cannot be used.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DeployError::NotATaskDefinition { .. }
                | DeployError::InvalidServiceId { .. }
                | DeployError::UnknownCluster { .. }
                | DeployError::UnknownService { .. }
                | DeployError::ContainerClaimedTwice { .. }
        )
    }
}
