//! The labels docker compose writes on every image it builds, which `docker compose images`,
//! `down --rmi local` and other tools find a project's images by.
//!
//! As compose does (`getImageBuildLabels`), they are applied after the user's `build.labels`
//! and win over them. The classic builder's images also carry
//! `com.docker.compose.image.builder=classic`, as compose's classic path writes it; compose's
//! classic path writes no project, service or version label, wharf writes them for both
//! builders, so that every image of a project is found the same way.

use crate::build::BuilderKind;

/// The project the image belongs to.
pub const PROJECT: &str = "com.docker.compose.project";
/// The service the image is built for.
pub const SERVICE: &str = "com.docker.compose.service";
/// The tool (and its version) that built the image.
pub const VERSION: &str = "com.docker.compose.version";
/// Set to `classic` by images of the classic builder.
pub const IMAGE_BUILDER: &str = "com.docker.compose.image.builder";

/// The version of what wharf writes into an image besides what the project asks for: these
/// labels, the OCI labels the binary adds (`revision`, `source`, and `created`, the commit's
/// time by default) and the build metadata (BuildKit's inline cache, since version 2). The
/// input digest covers it, so that a change of it rebuilds each service once rather than
/// leaving images made the old way under new tags.
pub const FORMAT: &str = "wharf-image/2";

/// What [`VERSION`] says: wharf built the image, not docker compose, so it never claims a
/// compose version.
pub fn tool_version() -> String {
    format!("wharf {}", env!("CARGO_PKG_VERSION"))
}

/// Compose's labels for `service` of `project` built by `builder`, in the order they apply.
pub fn compose_labels(project: &str, service: &str, builder: BuilderKind) -> Vec<(String, String)> {
    let mut out = vec![
        (VERSION.to_string(), tool_version()),
        (PROJECT.to_string(), project.to_string()),
        (SERVICE.to_string(), service.to_string()),
    ];
    if builder == BuilderKind::Classic {
        out.push((IMAGE_BUILDER.to_string(), "classic".to_string()));
    }
    out
}

/// Whether the input digest covers `label`: compose's labels that follow from the project
/// (its name, the service's name; the builder is covered as such), not the tool's version,
/// which like the commit describes the run that built the image.
pub fn digested(label: &str) -> bool {
    matches!(label, PROJECT | SERVICE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_wharf() {
        let labels = compose_labels("shop", "api", BuilderKind::BuildKit);
        assert_eq!(
            labels,
            [
                (
                    VERSION.to_string(),
                    format!("wharf {}", env!("CARGO_PKG_VERSION"))
                ),
                (PROJECT.to_string(), "shop".to_string()),
                (SERVICE.to_string(), "api".to_string()),
            ]
        );
        assert_eq!(
            compose_labels("shop", "api", BuilderKind::Classic).last(),
            Some(&(IMAGE_BUILDER.to_string(), "classic".to_string()))
        );
        assert!(digested(PROJECT) && digested(SERVICE) && !digested(VERSION));
    }
}
