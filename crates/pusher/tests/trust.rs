//! The trust check for reused images, against the bed's plain registry: images (configs with
//! labels, a layer, manifests and indexes) are written there through the registry API, then
//! `trust::check` decides from the registry alone whether each may be released.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};
use wharf_pusher::api::{RawManifest, RegistryApi};
use wharf_pusher::target::IdentityTemplates;
use wharf_pusher::template::{Template, TAG_PLACEHOLDERS};
use wharf_pusher::trust::{self, Distrust, Expected, Platform, Verdict};

const INPUTS_LABEL: &str = "dev.wharf.inputs";
const DOCKER_IMAGE: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn plain_registry() -> String {
    match std::env::var("WHARF_TEST_PLAIN_REGISTRY") {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "WHARF_TEST_PLAIN_REGISTRY is not set: this test needs the test bed.\n\
             Run `scripts/testbed up && eval \"$(scripts/testbed env)\"` first."
        ),
    }
}

fn fresh(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{}{nanos}", std::process::id())
}

fn commit() -> String {
    format!("{:x}", Sha256::digest(fresh("commit").as_bytes()))[..40].to_string()
}

/// A new repository of the plain registry, written to through the registry API.
struct Repo {
    client: Client,
    api: RegistryApi,
    /// `host/path`.
    name: String,
}

impl Repo {
    fn new() -> Repo {
        wharf_pusher::tls::install_crypto_provider();
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            ..Default::default()
        });
        Repo {
            client,
            api: RegistryApi::default(),
            name: format!("{}/{}", plain_registry(), fresh("wharf-test-trust")),
        }
    }

    async fn blob(&self, bytes: Vec<u8>) -> (String, usize) {
        let digest = sha256(&bytes);
        let size = bytes.len();
        let reference: Reference = format!("{}:x", self.name).parse().unwrap();
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &RegistryAuth::Anonymous)
            .await;
        self.client
            .push_blob(&reference, bytes, &digest)
            .await
            .expect("the registry takes the blob");
        (digest, size)
    }

    /// An amd64 image (one layer) whose config carries `labels`, stored under `tag`.
    async fn image(&self, labels: &[(&str, &str)], tag: &str) -> RawManifest {
        self.image_for("linux/amd64", labels, tag).await
    }

    /// An image for `platform` (one layer) whose config carries `labels`, stored under `tag`.
    async fn image_for(&self, platform: &str, labels: &[(&str, &str)], tag: &str) -> RawManifest {
        let platform = Platform::parse(platform).unwrap();
        let (layer, layer_size) = self.blob(fresh("layer").into_bytes()).await;
        let labels: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        let config = serde_json::json!({
            "architecture": platform.architecture, "os": platform.os,
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [layer]},
        });
        let (config, config_size) = self.blob(serde_json::to_vec(&config).unwrap()).await;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_IMAGE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config_size, "digest": config},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer_size, "digest": layer}],
        });
        self.store(serde_json::to_vec(&manifest).unwrap(), DOCKER_IMAGE, tag)
            .await
    }

    /// An index of `images` (with their platforms), stored under `tag`.
    async fn index(&self, images: &[(&RawManifest, &str)], tag: &str) -> RawManifest {
        let manifests: Vec<serde_json::Value> = images
            .iter()
            .map(|(m, platform)| {
                let p = Platform::parse(platform).unwrap();
                serde_json::json!({
                    "mediaType": m.media_type, "size": m.bytes.len(), "digest": m.digest,
                    "platform": {"os": p.os, "architecture": p.architecture},
                })
            })
            .collect();
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": manifests});
        self.store(serde_json::to_vec(&index).unwrap(), DOCKER_LIST, tag)
            .await
    }

    async fn store(&self, bytes: Vec<u8>, media_type: &str, tag: &str) -> RawManifest {
        let manifest = RawManifest {
            digest: sha256(&bytes),
            bytes: bytes.into(),
            media_type: media_type.to_string(),
        };
        self.tag(&manifest, tag).await;
        manifest
    }

    async fn tag(&self, manifest: &RawManifest, tag: &str) {
        self.api
            .put_manifest(&self.name, tag, manifest, None)
            .await
            .expect("the registry takes the manifest");
    }

    async fn check(&self, candidate: &RawManifest, expected: &Expected<'_>) -> Verdict {
        trust::check(&self.api, &self.name, None, candidate, expected)
            .await
            .expect("the registry answers")
    }
}

fn identity(templates: &[&str]) -> IdentityTemplates {
    let parsed: Vec<Template> = templates
        .iter()
        .map(|t| Template::parse(t, TAG_PLACEHOLDERS).unwrap())
        .collect();
    IdentityTemplates::capture(&parsed, &|name: &str| {
        (name == "env:STAGE").then(|| "prod".to_string())
    })
}

fn expected<'a>(inputs: &'a str, identity: &'a IdentityTemplates) -> Expected<'a> {
    Expected {
        inputs_label: INPUTS_LABEL,
        inputs,
        identity,
        platform: None,
        platform_inputs: None,
    }
}

#[tokio::test]
async fn an_image_a_release_tagged_is_trusted() {
    let repo = Repo::new();
    let sha = commit();
    let inputs = fresh("inputs");
    let id = identity(&["{git_sha}", "latest"]);
    let image = repo
        .image(
            &[(INPUTS_LABEL, &inputs), (trust::REVISION_LABEL, &sha)],
            &format!("wharf-inputs-{inputs}"),
        )
        .await;
    repo.tag(&image, &sha).await;
    assert_eq!(
        repo.check(&image, &expected(&inputs, &id)).await,
        Verdict::Trusted {
            revision: sha.clone(),
            tag: sha.clone()
        }
    );
    // Identity templates are rendered for the image's commit, other values as this release
    // has them; any one of them naming the image is enough.
    let short = identity(&["{env:STAGE}-{git_short_sha}", "{git_sha}-{timestamp}"]);
    repo.tag(&image, &format!("prod-{}", &sha[..7])).await;
    assert_eq!(
        repo.check(&image, &expected(&inputs, &short)).await,
        Verdict::Trusted {
            revision: sha.clone(),
            tag: format!("prod-{}", &sha[..7])
        }
    );
}

#[tokio::test]
async fn a_planted_inputs_tag_is_not_enough() {
    let repo = Repo::new();
    let sha = commit();
    let inputs = fresh("inputs");
    let id = identity(&["{git_sha}"]);
    // Planted: the right labels, a commit that exists nowhere in the repository.
    let planted = repo
        .image(
            &[(INPUTS_LABEL, &inputs), (trust::REVISION_LABEL, &sha)],
            &format!("wharf-inputs-{inputs}"),
        )
        .await;
    assert_eq!(
        repo.check(&planted, &expected(&inputs, &id)).await,
        Verdict::Untrusted(Distrust::IdentityMissing { tag: sha.clone() })
    );
    // The commit's identity tag names another image (the one its release really made).
    let real = repo
        .image(
            &[(INPUTS_LABEL, &inputs), (trust::REVISION_LABEL, &sha)],
            &sha,
        )
        .await;
    assert_eq!(
        repo.check(&planted, &expected(&inputs, &id)).await,
        Verdict::Untrusted(Distrust::IdentityElsewhere {
            tag: sha.clone(),
            digest: real.digest.clone()
        })
    );
}

#[tokio::test]
async fn labels_must_match_the_inputs_and_name_a_commit() {
    let repo = Repo::new();
    let sha = commit();
    let inputs = fresh("inputs");
    let id = identity(&["{git_sha}"]);
    let cases: Vec<(Vec<(&str, &str)>, Distrust)> = vec![
        (
            vec![(trust::REVISION_LABEL, &sha)],
            Distrust::NoInputsLabel {
                label: INPUTS_LABEL.into(),
            },
        ),
        (
            vec![(INPUTS_LABEL, "other"), (trust::REVISION_LABEL, &sha)],
            Distrust::OtherInputs {
                label: INPUTS_LABEL.into(),
                found: "other".into(),
            },
        ),
        (vec![(INPUTS_LABEL, &inputs)], Distrust::NoRevision),
        (
            vec![(INPUTS_LABEL, &inputs), (trust::REVISION_LABEL, "main")],
            Distrust::BadRevision {
                value: "main".into(),
            },
        ),
    ];
    for (labels, why) in cases {
        let image = repo.image(&labels, &fresh("t")).await;
        // Even under the commit's identity tag: the labels are checked first.
        repo.tag(&image, &sha).await;
        assert_eq!(
            repo.check(&image, &expected(&inputs, &id)).await,
            Verdict::Untrusted(why)
        );
    }
    // A release with no identity tag at all cannot vouch for anything.
    let image = repo
        .image(
            &[(INPUTS_LABEL, &inputs), (trust::REVISION_LABEL, &sha)],
            &sha,
        )
        .await;
    let moving_only = identity(&["latest", "{git_sha}-{timestamp}"]);
    assert_eq!(
        repo.check(&image, &expected(&inputs, &moving_only)).await,
        Verdict::Untrusted(Distrust::NoIdentityTag {
            revision: sha.clone()
        })
    );
}

#[tokio::test]
async fn an_index_is_checked_platform_by_platform() {
    let repo = Repo::new();
    let sha = commit();
    let inputs = fresh("inputs");
    let id = identity(&["{git_sha}"]);
    let labels = [
        (INPUTS_LABEL, inputs.as_str()),
        (trust::REVISION_LABEL, &sha),
    ];
    let amd = repo.image(&labels, &fresh("amd")).await;
    let arm = repo.image_for("linux/arm64", &labels, &fresh("arm")).await;
    let index = repo
        .index(&[(&amd, "linux/amd64"), (&arm, "linux/arm64")], &sha)
        .await;
    assert_eq!(
        repo.check(&index, &expected(&inputs, &id)).await,
        Verdict::Trusted {
            revision: sha.clone(),
            tag: sha.clone()
        }
    );
    // One platform built from other inputs: the index is not these inputs' image.
    let other = repo
        .image_for(
            "linux/arm64",
            &[(INPUTS_LABEL, "other"), (trust::REVISION_LABEL, &sha)],
            &fresh("other"),
        )
        .await;
    let mixed = repo
        .index(
            &[(&amd, "linux/amd64"), (&other, "linux/arm64")],
            &fresh("m"),
        )
        .await;
    assert!(matches!(
        repo.check(&mixed, &expected(&inputs, &id)).await,
        Verdict::Untrusted(Distrust::OtherInputs { .. })
    ));
    // An entry whose image is another platform's: arm64 hosts would get an amd64 image.
    let mislabelled = repo
        .index(&[(&amd, "linux/amd64"), (&amd, "linux/arm64")], &fresh("l"))
        .await;
    assert_eq!(
        repo.check(&mislabelled, &expected(&inputs, &id)).await,
        Verdict::Untrusted(Distrust::OtherPlatform {
            expected: Platform::parse("linux/arm64").unwrap(),
            found: "linux/amd64".into()
        })
    );
    // One platform's image on its own answers to that platform's identity tag.
    let arm64 = Platform::parse("linux/arm64").unwrap();
    let for_arm = Expected {
        platform: Some(&arm64),
        platform_inputs: None,
        ..expected(&inputs, &id)
    };
    assert_eq!(
        repo.check(&arm, &for_arm).await,
        Verdict::Untrusted(Distrust::IdentityMissing {
            tag: format!("{sha}-linux-arm64")
        })
    );
    // The amd64 image is not arm64's, whatever tag names it.
    assert_eq!(
        repo.check(&amd, &for_arm).await,
        Verdict::Untrusted(Distrust::OtherPlatform {
            expected: arm64.clone(),
            found: "linux/amd64".into()
        })
    );
    repo.tag(&arm, &format!("{sha}-linux-arm64")).await;
    assert_eq!(
        repo.check(&arm, &for_arm).await,
        Verdict::Trusted {
            revision: sha.clone(),
            tag: format!("{sha}-linux-arm64")
        }
    );
}
