//! The release engine on its own, against the test bed's registries and moto: each rule of
//! [`wharf_pusher::release`] that a registry decides (phase 1 then phase 2, the manifest, the
//! pre-flight refusal of a moving tag the repository keeps immutable, the deadline of a
//! registry that never answers). Tests that need the bed fail, never skip, without it.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wharf_pusher::api::RegistryApi;
use wharf_pusher::events::{Event, EventSink, ServiceEvent};
use wharf_pusher::registry::Registry;
use wharf_pusher::release::{Interrupt, Options, Ready, Release, ReleaseError, SkipInputs};
use wharf_pusher::target::ImageTarget;
use wharf_pusher::timeouts::Timeouts;
use wharf_pusher::Error;

fn bed_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs the test bed. Run `scripts/testbed up && eval \"$(scripts/testbed env)\"` first (scripts/test does both)."
        ),
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Builds a one-layer image under `name`, different for each call (a unique label).
fn build_image(name: &str) {
    let base = bed_var("WHARF_TEST_BASE_IMAGE");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {base}\nLABEL made-by-test={}\n", unique("l")),
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", name])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn target(
    service: &str,
    registry: &str,
    repository: &str,
    tags: (&[&str], &[&str]),
) -> ImageTarget {
    let registry = Registry::parse(registry).unwrap();
    ImageTarget {
        service: service.into(),
        local_image: format!("{repository}-local:{service}"),
        host: registry.host().map(str::to_string),
        registry,
        repository: repository.into(),
        identity_tags: tags.0.iter().map(|t| t.to_string()).collect(),
        moving_tags: tags.1.iter().map(|t| t.to_string()).collect(),
        required: true,
        identity: Default::default(),
        platforms: Vec::new(),
        partial: false,
    }
}

fn recorder() -> (EventSink, Arc<Mutex<Vec<ServiceEvent>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let seen = seen.clone();
        EventSink::new(move |e| {
            if let Event::Service(e) = e {
                seen.lock().unwrap().push(e)
            }
        })
    };
    (sink, seen)
}

fn options(request: Duration) -> Options {
    Options {
        parallel: 2,
        timeouts: Timeouts::from_request(request),
        create_repositories: None,
    }
}

async fn docker() -> bollard::Docker {
    let docker = bollard::Docker::connect_with_local_defaults().expect("the bed's daemon");
    docker.ping().await.expect("the bed's daemon answers");
    docker
}

async fn digest(reference: &str) -> Option<String> {
    RegistryApi::default()
        .manifest_digest(reference, None)
        .await
        .unwrap()
}

/// Both phases, in order, on the plain registry: identity tags of every service, then the
/// moving tags on the very manifest phase 1 landed; the manifest names what the registry
/// serves.
#[tokio::test]
async fn a_release_lands_identity_tags_then_moving_tags_and_returns_the_manifest() {
    let plain = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let repo = unique("engine/happy");
    let sha = unique("sha");
    let targets: Vec<ImageTarget> = ["api", "web"]
        .iter()
        .map(|s| target(s, &plain, &format!("{repo}-{s}"), (&[&sha], &["latest"])))
        .collect();
    for t in &targets {
        build_image(&t.local_image);
    }
    let (events, seen) = recorder();
    let mut release = Release::prepare(
        targets.clone(),
        docker().await,
        options(Duration::from_secs(15)),
        events,
        Interrupt::new(),
    )
    .await
    .expect("nothing to log into or create on the plain registry");
    let unchanged = release
        .unchanged(&SkipInputs::default())
        .await
        .expect("the registry answers");
    assert!(unchanged.is_empty());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for t in &targets {
        tx.send(Ready {
            service: t.service.clone(),
            inputs_tag: Some(unique("wharf-inputs")),
            platform: None,
            engine: None,
        })
        .unwrap();
    }
    drop(tx);
    let first = release
        .identity_phase(&unchanged, &HashMap::new(), rx, &HashMap::new())
        .await;
    let images = release.finish(first, Vec::new()).await.expect("released");
    assert_eq!(images.len(), 2);
    for image in &images {
        let base = format!("{plain}/{}", image.repository);
        assert_eq!(
            digest(&format!("{base}:{sha}")).await.as_ref(),
            Some(&image.digest)
        );
        assert_eq!(
            digest(&format!("{base}:latest")).await.as_ref(),
            Some(&image.digest)
        );
        assert_eq!(image.uri, format!("{base}@{}", image.digest));
    }
    // Every identity tag landed before the first moving tag did.
    let seen = seen.lock().unwrap();
    let pushed: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            ServiceEvent::Pushed { tag, .. } => Some(tag.as_str()),
            _ => None,
        })
        .collect();
    let first_latest = pushed.iter().position(|t| *t == "latest").unwrap();
    assert_eq!(
        pushed[..first_latest].iter().filter(|t| **t == sha).count(),
        2,
        "{pushed:?}"
    );
}

/// A service that failed its build fails the release: phase 2 never starts.
#[tokio::test]
async fn a_failed_build_moves_no_moving_tag() {
    let plain = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let repo = unique("engine/gate");
    let sha = unique("sha");
    let api = target(
        "api",
        &plain,
        &format!("{repo}-api"),
        (&[&sha], &["latest"]),
    );
    build_image(&api.local_image);
    let mut release = Release::prepare(
        vec![api.clone()],
        docker().await,
        options(Duration::from_secs(15)),
        EventSink::ignore(),
        Interrupt::new(),
    )
    .await
    .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tx.send(Ready {
        service: "api".into(),
        inputs_tag: None,
        platform: None,
        engine: None,
    })
    .unwrap();
    drop(tx);
    let first = release
        .identity_phase(&HashMap::new(), &HashMap::new(), rx, &HashMap::new())
        .await;
    let e = release
        .finish(first, vec!["`worker`: build failed".into()])
        .await
        .expect_err("a failed build fails the release");
    assert!(matches!(e, ReleaseError::IdentityFailed { .. }), "{e}");
    let base = format!("{plain}/{repo}-api");
    assert!(digest(&format!("{base}:{sha}")).await.is_some());
    assert_eq!(
        digest(&format!("{base}:latest")).await,
        None,
        "latest never moved"
    );
}

/// A registry that accepts connections and never answers ends in a timeout naming it and
/// the request, after the retries, within the deadlines — not a wait without end.
#[tokio::test]
async fn a_registry_that_never_answers_fails_within_its_deadlines() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Accept every connection and hold it open, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let t = target("api", &addr, "engine/silent", (&["abc"], &["latest"]));
    let release = Release::prepare(
        vec![t],
        docker().await,
        options(Duration::from_secs(1)),
        EventSink::ignore(),
        Interrupt::new(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let e = release
        .unchanged(&SkipInputs::default())
        .await
        .expect_err("the registry never answers");
    let took = started.elapsed();
    match &e {
        ReleaseError::Unusable(failed) => {
            assert!(
                matches!(&failed[0].1, Error::Timeout { registry, .. } if *registry == addr),
                "{e}"
            );
        }
        other => panic!("expected an unusable registry, got {other}"),
    }
    assert!(e.is_config(), "found before any build: exit 2");
    assert!(e.to_string().contains(&addr), "{e}");
    // Four tries of one second each, and the back-off between them (0.5 + 1 + 2 s).
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        took >= Duration::from_secs(4),
        "every try waited its deadline: {took:?}"
    );
}

/// ECR's exclusion modes are read before anything is pushed: a moving tag the repository's
/// rules keep immutable is refused in the pre-flight check, naming the repository and rule.
#[tokio::test]
async fn a_moving_tag_an_exclusion_rule_keeps_immutable_is_refused_before_any_push() {
    let ecr = bed_var("WHARF_TEST_ECR_REGISTRY");
    let sdk = wharf_pusher::login::aws_config(&Timeouts::default()).await;
    let client = aws_sdk_ecr::Client::new(&sdk);
    use aws_sdk_ecr::types::{
        ImageTagMutability, ImageTagMutabilityExclusionFilter,
        ImageTagMutabilityExclusionFilterType,
    };
    let filter = |f: &str| {
        ImageTagMutabilityExclusionFilter::builder()
            .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
            .filter(f)
            .build()
            .unwrap()
    };
    // Immutable but for `release-*`: `latest` cannot move, `release-latest` can.
    let strict = unique("engine/strict");
    client
        .create_repository()
        .repository_name(&strict)
        .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
        .image_tag_mutability_exclusion_filters(filter("release-*"))
        .send()
        .await
        .expect("moto creates the repository");
    // Mutable but for `prod-*`.
    let loose = unique("engine/loose");
    client
        .create_repository()
        .repository_name(&loose)
        .image_tag_mutability(ImageTagMutability::MutableWithExclusion)
        .image_tag_mutability_exclusion_filters(filter("prod-*"))
        .send()
        .await
        .expect("moto creates the repository");
    let targets = vec![
        target(
            "api",
            &ecr,
            &strict,
            (&["abc"], &["latest", "release-latest"]),
        ),
        target("web", &ecr, &loose, (&["abc"], &["latest", "prod-latest"])),
    ];
    let e = match Release::prepare(
        targets,
        docker().await,
        options(Duration::from_secs(15)),
        EventSink::ignore(),
        Interrupt::new(),
    )
    .await
    {
        Ok(_) => panic!("the pre-flight check must refuse the immutable moving tags"),
        Err(e) => e,
    };
    match &e {
        ReleaseError::Repositories { missing, immutable } => {
            assert!(missing.is_empty());
            let refused: Vec<(&str, &str)> = immutable
                .iter()
                .map(|i| (i.service.as_str(), i.tag.as_str()))
                .collect();
            assert_eq!(refused, vec![("api", "latest"), ("web", "prod-latest")]);
            assert!(immutable[0].rule.contains("IMMUTABLE_WITH_EXCLUSION"));
            assert!(immutable[1].rule.contains("prod-*"));
        }
        other => panic!("expected the repositories refused, got {other}"),
    }
    assert!(e.is_config());
    assert!(e.to_string().contains(&strict), "{e}");
}
