//! The test bed's coordinates, as `scripts/testbed env` exports them.
//!
//! Tests that need the bed never skip: without it they fail and say how to bring it up.

use std::path::PathBuf;

/// The components `scripts/testbed up` brings up.
pub struct Bed {
    pub ecr_registry: String,
    pub ecr_password: String,
    pub public_registry: String,
    pub public_password: String,
    pub plain_registry: String,
    pub base_image: String,
    pub compose: PathBuf,
}

/// The bed's value of `name`; fails, saying how to bring the bed up, when it is missing.
pub fn bed_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs the test bed.\n\
             Run `scripts/testbed up && eval \"$(scripts/testbed env)\"` first \
             (scripts/test does both)."
        ),
    }
}

/// The reference docker compose v2 binary, checked to exist.
pub fn compose_binary() -> PathBuf {
    let path = PathBuf::from(bed_var("WHARF_TEST_COMPOSE"));
    assert!(
        path.is_file(),
        "WHARF_TEST_COMPOSE={} is not a file: run scripts/testbed up",
        path.display()
    );
    path
}

/// The bed's coordinates; fails with instructions when they are missing.
pub fn bed() -> Bed {
    let bed = Bed {
        ecr_registry: bed_var("WHARF_TEST_ECR_REGISTRY"),
        ecr_password: bed_var("WHARF_TEST_ECR_PASSWORD"),
        public_registry: bed_var("WHARF_TEST_PUBLIC_REGISTRY"),
        public_password: bed_var("WHARF_TEST_PUBLIC_PASSWORD"),
        plain_registry: bed_var("WHARF_TEST_PLAIN_REGISTRY"),
        base_image: bed_var("WHARF_TEST_BASE_IMAGE"),
        compose: compose_binary(),
    };
    bed_var("AWS_ENDPOINT_URL");
    bed
}
