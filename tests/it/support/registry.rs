//! What the bed's registries serve, read through their HTTP API.

use super::bed::Bed;
use wharf_pusher::api::RegistryApi;
use wharf_pusher::login::Login;

/// The login the bed's private ECR registry accepts (what its ECR API hands out).
pub fn ecr_login(bed: &Bed) -> Login {
    Login {
        host: bed.ecr_registry.clone(),
        username: "AWS".into(),
        password: bed.ecr_password.clone().into(),
        expires_at: None,
    }
}

/// The digest `reference` (`host/repository:tag`) serves, or `None` when the tag does not
/// exist; fails when the registry does not answer.
pub async fn served(reference: &str, login: Option<&Login>) -> Option<String> {
    RegistryApi::default()
        .manifest_digest(reference, login)
        .await
        .expect("the registry answers")
}
