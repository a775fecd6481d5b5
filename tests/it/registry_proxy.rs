//! The fault proxy itself, with real requests against the bed's plain registry: it forwards a
//! whole `docker push` (chunked uploads, keep-alive connections) unchanged, and each fault hits
//! the requests its rule names, as many times as asked, while the log says what reached the
//! registry.

use crate::support::registry_proxy::{Fault, Method, Outcome, RegistryProxy};
use crate::support::{bed_var, served, unique};
use std::process::Command;
use std::time::{Duration, Instant};

/// An image of one small unique layer, so pushing it uploads a blob the registry has never
/// seen: `docker import` of an archive holding one file.
fn unique_image(name: &str) {
    let mut archive = tar::Builder::new(Vec::new());
    let content = unique("layer");
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    archive
        .append_data(&mut header, "stamp", content.as_bytes())
        .unwrap();
    let archive = archive.into_inner().unwrap();
    let mut import = Command::new("docker")
        .args(["import", "-", name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("docker runs");
    use std::io::Write;
    import
        .stdin
        .take()
        .unwrap()
        .write_all(&archive)
        .expect("docker import reads the archive");
    assert!(import.wait().unwrap().success(), "docker import {name}");
}

/// `docker push reference`; its combined output and whether it succeeded.
fn docker_push(reference: &str) -> (bool, String) {
    let out = Command::new("docker")
        .args(["push", reference])
        .output()
        .expect("docker runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn forget(reference: &str) {
    let _ = Command::new("docker")
        .args(["image", "rm", reference])
        .output();
}

fn client() -> reqwest::Client {
    wharf_pusher::tls::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The registry error code of an answer (`errors[0].code`).
async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_push_goes_through_unchanged() {
    let plain = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let proxy = RegistryProxy::start(&plain);
    let repo = unique("proxy-push");
    let image = format!("{}/{repo}:one", proxy.addr);
    unique_image(&image);
    let (ok, text) = docker_push(&image);
    forget(&image);
    assert!(ok, "{text}");

    let log = proxy.requests();
    let position = |method: &Method, part: &str| {
        log.iter()
            .position(|e| e.method == *method && e.path.contains(part))
            .unwrap_or_else(|| panic!("a {method} …{part}… in {log:#?}"))
    };
    // A new layer is uploaded (started, sent, closed), then the manifest is written last.
    let started = position(&Method::POST, "/blobs/uploads/");
    let closed = log
        .iter()
        .rposition(|e| e.method == Method::PUT && e.path.contains("/blobs/uploads/"))
        .expect("an upload closed with PUT");
    let manifest = position(&Method::PUT, &format!("{repo}/manifests/one"));
    assert!(started < closed && closed < manifest, "{log:#?}");
    for e in &log {
        assert!(
            matches!(e.outcome, Outcome::Forwarded(Some(s)) if s.as_u16() < 500),
            "every request reached the registry and was answered: {e:?}"
        );
    }
    let through_proxy = served(&format!("{}/{repo}:one", proxy.addr), None).await;
    let direct = served(&format!("{plain}/{repo}:one"), None).await;
    assert!(direct.is_some(), "the registry holds the pushed tag");
    assert_eq!(through_proxy, direct);
}

#[tokio::test]
async fn a_chunked_upload_and_its_neighbours_share_one_connection() {
    let plain = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let proxy = RegistryProxy::start(&plain);
    let http = client();
    let base = format!("http://{}", proxy.addr);
    let repo = unique("proxy-chunked");
    let blob = unique("blob").repeat(1000).into_bytes();
    let digest = {
        use sha2::Digest as _;
        format!("sha256:{:x}", sha2::Sha256::digest(&blob))
    };

    let start = http
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 202);
    let location = start.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    assert!(
        location.starts_with(&base),
        "upload URLs point back at the proxy: {location}"
    );
    // A body of unknown length: sent chunked.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        blob.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let sent = http
        .patch(&location)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202, "{:?}", sent.text().await);
    let location = sent.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let closed = http
        .put(format!("{location}{separator}digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), 201, "{:?}", closed.text().await);
    let head = http
        .head(format!("{base}/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        blob.len().to_string()
    );
    let direct = client()
        .get(format!("http://{plain}/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        direct.as_ref(),
        blob.as_slice(),
        "the registry got every byte"
    );
    assert_eq!(proxy.requests().len(), 4);
    assert_eq!(proxy.connections(), 1, "one keep-alive connection");
}

#[tokio::test]
async fn transient_unavailability_then_the_registry() {
    let plain = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let proxy = RegistryProxy::start(&plain);
    let rule = proxy.fault(Method::GET, "^/v2/$", Fault::Unavailable { times: 2 });
    let uploads = proxy.fault(
        Method::POST,
        "^/v2/.+/blobs/uploads/$",
        Fault::Unavailable { times: 1 },
    );
    let http = client();
    let ping = format!("http://{}/v2/", proxy.addr);
    for _ in 0..2 {
        let answer = http.get(&ping).send().await.unwrap();
        assert_eq!(answer.status(), 503);
        assert_eq!(error_code(answer).await, "UNAVAILABLE");
    }
    assert_eq!(http.get(&ping).send().await.unwrap().status(), 200);
    assert_eq!(rule.hits(), 2);

    // A request with a body, answered before its body is read: the next one still works.
    let upload = format!(
        "http://{}/v2/{}/blobs/uploads/",
        proxy.addr,
        unique("proxy-503")
    );
    let refused = http.post(&upload).body(vec![7u8; 100_000]).send().await;
    assert_eq!(refused.unwrap().status(), 503);
    assert_eq!(http.post(&upload).send().await.unwrap().status(), 202);
    assert_eq!(uploads.hits(), 1);

    let outcomes: Vec<bool> = proxy
        .requests()
        .iter()
        .map(|e| matches!(e.outcome, Outcome::Faulted(_)))
        .collect();
    assert_eq!(outcomes, [true, true, false, true, false]);
    assert_eq!(proxy.connections(), 1, "faults keep the connection alive");
}

#[tokio::test]
async fn a_dropped_connection_then_the_registry() {
    let plain = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let proxy = RegistryProxy::start(&plain);
    let rule = proxy.fault(Method::GET, "^/v2/$", Fault::Drop { times: 1 });
    let http = client();
    let ping = format!("http://{}/v2/", proxy.addr);
    let dropped = http.get(&ping).send().await;
    assert!(
        dropped.as_ref().is_err_and(|e| !e.is_timeout()),
        "no answer, at once: {dropped:?}"
    );
    assert_eq!(http.get(&ping).send().await.unwrap().status(), 200);
    assert_eq!(rule.hits(), 1);
    assert_eq!(proxy.forwarded(&Method::GET, "/v2/").len(), 1);
}

#[tokio::test]
async fn a_moving_tag_refused_for_good_never_reaches_the_registry() {
    let plain = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let proxy = RegistryProxy::start(&plain);
    let rule = proxy.fault(
        Method::PUT,
        "^/v2/.+/manifests/latest$",
        Fault::refuse_tag(),
    );
    let repo = unique("proxy-refuse");
    let sha = format!("{}/{repo}:sha", proxy.addr);
    let latest = format!("{}/{repo}:latest", proxy.addr);
    unique_image(&sha);
    let tagged = Command::new("docker")
        .args(["tag", &sha, &latest])
        .status()
        .unwrap();
    assert!(tagged.success());
    let (sha_ok, sha_text) = docker_push(&sha);
    let (latest_ok, latest_text) = docker_push(&latest);
    forget(&sha);
    forget(&latest);
    assert!(sha_ok, "{sha_text}");
    assert!(!latest_ok, "the moving tag is refused: {latest_text}");
    // The daemon names the error by its code (and tries the deprecated schema 1 first).
    assert!(
        latest_text.contains("tag invalid"),
        "the registry's error reaches the client: {latest_text}"
    );
    assert!(rule.hits() >= 1);
    assert!(proxy
        .forwarded(&Method::PUT, &format!("{repo}/manifests/latest"))
        .is_empty());
    assert!(served(&format!("{plain}/{repo}:sha"), None).await.is_some());
    assert_eq!(served(&format!("{plain}/{repo}:latest"), None).await, None);

    // Every later attempt is refused too, with the status and code asked for.
    let denied = proxy.fault(Method::GET, "^/v2/_catalog$", Fault::deny());
    for _ in 0..2 {
        let answer = client()
            .get(format!("http://{}/v2/_catalog", proxy.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403);
        assert_eq!(error_code(answer).await, "DENIED");
    }
    assert_eq!(denied.hits(), 2);
}

#[tokio::test]
async fn a_hung_registry_never_answers_and_the_rest_still_flows() {
    let plain = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let proxy = RegistryProxy::start(&plain);
    let rule = proxy.fault(Method::GET, "^/v2/.+/tags/list$", Fault::Hang);
    wharf_pusher::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let hung = http
        .get(format!(
            "http://{}/v2/{}/tags/list",
            proxy.addr,
            unique("r")
        ))
        .send()
        .await;
    assert!(hung.as_ref().is_err_and(|e| e.is_timeout()), "{hung:?}");
    let ping = http
        .get(format!("http://{}/v2/", proxy.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200, "other requests are answered");
    assert_eq!(rule.hits(), 1);
    // Dropping the proxy ends the hung connection with it.
    let started = Instant::now();
    drop(proxy);
    assert!(started.elapsed() < Duration::from_secs(5));
}
