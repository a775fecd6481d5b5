//! Where an ECS service's rollout stands, judged from ECS's own answer (DescribeServices):
//! the primary deployment's `rolloutState`, and the deployment a wait started on, which ECS
//! marks FAILED (with a reason) when its circuit breaker rolls it back.

use crate::DeployError;
use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service};

/// The state of a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Completed,
    Failed { reason: String },
    InProgress { reason: Option<String> },
}

/// The rollout a service is in, and the deployment that judgement is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// The primary deployment's id.
    pub deployment: String,
    pub rollout: Rollout,
}

/// The deployment ECS is moving the service to.
pub fn primary(service: &Service) -> Option<&Deployment> {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
}

fn name(service: &Service) -> String {
    service.service_name().unwrap_or("the service").to_string()
}

fn reason_of(d: &Deployment) -> Option<String> {
    d.rollout_state_reason()
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

/// Judges `service`'s rollout. `watched`: the deployment a wait started on — when ECS marked
/// that one FAILED, the rollout failed even though the primary deployment is now the rollback.
pub fn judge(service: &Service, watched: Option<&str>) -> Result<Judgement, DeployError> {
    if let Some(watched) = watched {
        let failed = service.deployments().iter().find(|d| {
            d.id() == Some(watched) && d.rollout_state() == Some(&DeploymentRolloutState::Failed)
        });
        if let Some(d) = failed {
            return Ok(Judgement {
                deployment: watched.to_string(),
                rollout: Rollout::Failed {
                    reason: reason_of(d).unwrap_or_else(|| "ECS gave no reason".into()),
                },
            });
        }
    }
    let Some(d) = primary(service) else {
        let hint = match service.deployment_controller().map(|c| c.r#type().as_str()) {
            Some(controller) if controller != "ECS" => format!(
                " (its deployments are run by {controller}, which ECS does not report as rollouts)"
            ),
            _ => String::new(),
        };
        return Err(DeployError::NoPrimaryDeployment {
            service: name(service),
            hint,
        });
    };
    let rollout = match d.rollout_state() {
        Some(DeploymentRolloutState::Completed) => Rollout::Completed,
        Some(DeploymentRolloutState::Failed) => Rollout::Failed {
            reason: reason_of(d).unwrap_or_else(|| "ECS gave no reason".into()),
        },
        Some(DeploymentRolloutState::InProgress) => Rollout::InProgress {
            reason: reason_of(d),
        },
        // Deployments without a rollout state: done when they alone run, at full count.
        _ if service.deployments().len() == 1 && d.running_count() >= d.desired_count() => {
            Rollout::Completed
        }
        _ => Rollout::InProgress {
            reason: reason_of(d),
        },
    };
    Ok(Judgement {
        deployment: d.id().unwrap_or_default().to_string(),
        rollout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{DeploymentController, DeploymentControllerType};

    fn deployment(id: &str, status: &str, state: Option<DeploymentRolloutState>) -> Deployment {
        let mut d = Deployment::builder()
            .id(id)
            .status(status)
            .desired_count(2)
            .running_count(1)
            .task_definition(format!(
                "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:{id}"
            ));
        if let Some(s) = state {
            d = d
                .rollout_state(s)
                .rollout_state_reason(format!("reason of {id}"));
        }
        d.build()
    }

    fn service(deployments: Vec<Deployment>) -> Service {
        Service::builder()
            .service_name("web")
            .set_deployments(Some(deployments))
            .build()
    }

    #[test]
    fn the_primary_deployment_decides() {
        let s = service(vec![
            deployment("2", "PRIMARY", Some(DeploymentRolloutState::InProgress)),
            deployment("1", "ACTIVE", Some(DeploymentRolloutState::Completed)),
        ]);
        assert_eq!(
            judge(&s, None).unwrap(),
            Judgement {
                deployment: "2".into(),
                rollout: Rollout::InProgress {
                    reason: Some("reason of 2".into())
                }
            }
        );
        let s = service(vec![deployment(
            "2",
            "PRIMARY",
            Some(DeploymentRolloutState::Completed),
        )]);
        assert_eq!(judge(&s, Some("2")).unwrap().rollout, Rollout::Completed);
        let s = service(vec![deployment(
            "2",
            "PRIMARY",
            Some(DeploymentRolloutState::Failed),
        )]);
        assert_eq!(
            judge(&s, None).unwrap().rollout,
            Rollout::Failed {
                reason: "reason of 2".into()
            }
        );
    }

    #[test]
    fn a_rolled_back_deployment_is_a_failure_though_the_rollback_completes() {
        // The circuit breaker marked deployment 2 FAILED and made a rollback to the old task
        // definition the primary one.
        let s = service(vec![
            deployment("3", "PRIMARY", Some(DeploymentRolloutState::Completed)),
            deployment("2", "ACTIVE", Some(DeploymentRolloutState::Failed)),
        ]);
        assert_eq!(
            judge(&s, Some("2")).unwrap().rollout,
            Rollout::Failed {
                reason: "reason of 2".into()
            }
        );
        // Not watching it (a check without --wait): the primary's state.
        assert_eq!(judge(&s, None).unwrap().rollout, Rollout::Completed);
    }

    #[test]
    fn deployments_without_rollout_state_are_judged_by_their_counts() {
        let mut alone = deployment("1", "PRIMARY", None);
        assert!(matches!(
            judge(&service(vec![alone.clone()]), None).unwrap().rollout,
            Rollout::InProgress { .. }
        ));
        alone.running_count = 2;
        assert_eq!(
            judge(&service(vec![alone.clone()]), None).unwrap().rollout,
            Rollout::Completed
        );
        let old = deployment("0", "ACTIVE", None);
        assert!(matches!(
            judge(&service(vec![alone, old]), None).unwrap().rollout,
            Rollout::InProgress { .. }
        ));
    }

    #[test]
    fn a_service_deployed_by_code_deploy_has_no_rollout_to_follow() {
        let s = Service::builder()
            .service_name("web")
            .deployment_controller(
                DeploymentController::builder()
                    .r#type(DeploymentControllerType::CodeDeploy)
                    .build()
                    .unwrap(),
            )
            .build();
        let e = judge(&s, None).unwrap_err().to_string();
        assert!(e.contains("CODE_DEPLOY"), "{e}");
    }
}
