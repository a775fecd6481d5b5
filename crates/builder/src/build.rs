//! One image build through the daemon: the request, the context, and the daemon's answer
//! turned into progress lines and a typed outcome.
//!
//! The classic builder gets a local context as a tar archive in the request body. BuildKit
//! reads it through a session ([`crate::session`]), as it does for the docker clients: the
//! build is started with `remote=client-session` and no body, and the daemon asks the session
//! for the context, the Dockerfile, registry credentials and secrets as it needs them. A
//! BuildKit build always has a session, so that credentials and secrets reach it whatever the
//! context is.

use crate::context::{Context, TarStream};
use crate::session::{Attachments, RegistryCredentials, Session, SshAgent};
use bollard::query_parameters::{BuildImageOptions, BuilderVersion};
use bollard::{body_full, body_try_stream, BollardRequest, Docker};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::pin::Pin;
use wharf_compose::BuildSecret;

pub use crate::builder_kind::BuilderKind;

/// What the daemon is asked to build. The context itself travels separately ([`Input`]).
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The image reference the result is tagged with.
    pub tag: String,
    /// The Dockerfile's path inside a remote context or an uploaded archive. For a local
    /// [`Context`], the context names its Dockerfile itself and this is not used.
    pub dockerfile: String,
    pub args: HashMap<String, String>,
    pub target: Option<String>,
    pub labels: HashMap<String, String>,
    pub builder: BuilderKind,
    pub no_cache: bool,
    /// Always try to pull newer base images.
    pub pull: bool,
    pub network: Option<String>,
    /// `host:ip` entries for the build's `/etc/hosts`.
    pub extra_hosts: Vec<String>,
    /// Bytes.
    pub shm_size: Option<i32>,
    pub cache_from: Vec<String>,
    pub platform: Option<String>,
    /// A remote context (git URL, tarball URL) the daemon fetches itself; no body is sent.
    pub remote: Option<String>,
    /// Secrets `RUN --mount=type=secret` can read (BuildKit only; served by the session).
    pub secrets: Vec<BuildSecret>,
    /// SSH agents `RUN --mount=type=ssh` can use (BuildKit only; served by the session).
    pub ssh: Vec<SshAgent>,
    /// Registry credentials for the build's pulls, used before the Docker config's (BuildKit
    /// asks the session for them; the classic builder gets these in the request).
    pub credentials: RegistryCredentials,
    /// The longest the daemon's answer may stay silent before the build is given up (a dead
    /// connection, a hung daemon). `None`: no limit.
    pub idle_timeout: Option<std::time::Duration>,
    /// The engine the build runs on when it is not the default one (a platform routed to
    /// another engine, [`crate::engines`]): its BuildKit session is opened there.
    pub engine: Option<String>,
}

/// A failed build, with what the daemon said.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{message}")]
    Daemon {
        message: String,
        log_tail: Vec<String>,
    },
}

impl BuildError {
    fn early(message: String) -> Self {
        BuildError::Daemon {
            message,
            log_tail: Vec::new(),
        }
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Where a build's context comes from.
pub enum Input {
    /// A local context folder: read by BuildKit through the session, sent to the classic
    /// builder as an archive. It must have been prepared for the request's builder.
    Local(Context),
    /// A tar archive, sent as the request body as it is. (BuildKit applies no ignore file to
    /// an uploaded archive and reads the Dockerfile from it: prefer [`Input::Local`].)
    Tar(ByteStream),
    /// No context of wharf's: [`BuildRequest::remote`] names one the daemon fetches.
    Remote,
}

impl From<Context> for Input {
    fn from(ctx: Context) -> Self {
        Input::Local(ctx)
    }
}

impl From<&Context> for Input {
    fn from(ctx: &Context) -> Self {
        Input::Local(ctx.clone())
    }
}

impl From<TarStream> for Input {
    fn from(tar: TarStream) -> Self {
        Input::Tar(Box::pin(tar))
    }
}

/// Builds the image from `input`. `on_line` receives the daemon's output line by line.
///
/// A BuildKit build's session is opened on the daemon [`crate::daemon::endpoint`] names, so
/// `docker` must be connected to that daemon (as [`crate::daemon::connect`] does).
///
/// A build counts as done only when the daemon has reported the image it made: an answer that
/// breaks off or ends before that (a dropped connection, a daemon under load closing the
/// stream) would otherwise leave an older image under the tag, looking like this build's. Such
/// a build is started once more, where its input can be sent again (the second attempt finds
/// the first one's steps in the build cache); a second break is a failed build.
pub async fn build(
    docker: &Docker,
    request: &BuildRequest,
    input: impl Into<Input>,
    mut on_line: impl FnMut(&str),
) -> Result<(), BuildError> {
    let input = input.into();
    let again = match &input {
        Input::Local(ctx) => Some(Input::Local(ctx.clone())),
        Input::Remote => Some(Input::Remote),
        // An archive stream is read once.
        Input::Tar(_) => None,
    };
    let broke_off = |message: String, log_tail: Vec<String>| BuildError::Daemon {
        message: format!(
            "the daemon's answer to the build of {} broke off: {message}",
            request.tag
        ),
        log_tail,
    };
    match attempt(docker, request, input, &mut on_line).await {
        Err(Attempt::Interrupted { message, log_tail }) => {
            let Some(input) = again else {
                return Err(broke_off(message, log_tail));
            };
            tracing::warn!(
                "building {} again: the daemon's answer broke off ({message})",
                request.tag
            );
            on_line(&format!(
                "the daemon's answer broke off ({message}); building again"
            ));
            match attempt(docker, request, input, &mut on_line).await {
                Err(Attempt::Interrupted { message, log_tail }) => Err(broke_off(
                    format!(
                        "{message} (twice; a daemon under load may do this: a lower --parallel \
                         gives it fewer builds at once)"
                    ),
                    log_tail,
                )),
                Err(Attempt::Failed(e)) => Err(e),
                Ok(()) => Ok(()),
            }
        }
        Err(Attempt::Failed(e)) => Err(e),
        Ok(()) => Ok(()),
    }
}

/// How one build request went wrong.
enum Attempt {
    /// The build failed, or could not be started: the daemon said so.
    Failed(BuildError),
    /// The daemon's answer ended before the build's result was known.
    Interrupted {
        message: String,
        log_tail: Vec<String>,
    },
}

impl From<BuildError> for Attempt {
    fn from(e: BuildError) -> Self {
        Attempt::Failed(e)
    }
}

async fn attempt(
    docker: &Docker,
    request: &BuildRequest,
    input: Input,
    on_line: &mut impl FnMut(&str),
) -> Result<(), Attempt> {
    let buildkit = request.builder == BuilderKind::BuildKit;
    if let Input::Local(ctx) = &input {
        if ctx.builder() != request.builder {
            return Err(BuildError::early(format!(
                "internal error: the context of {} was prepared for the {:?} builder, not {:?}",
                request.tag,
                ctx.builder(),
                request.builder
            ))
            .into());
        }
    }
    if !buildkit && !request.secrets.is_empty() {
        return Err(BuildError::early(
            "build secrets need BuildKit; the classic builder cannot mount them".into(),
        )
        .into());
    }
    if !buildkit && !request.ssh.is_empty() {
        return Err(BuildError::early(
            "SSH forwarding needs BuildKit; the classic builder cannot mount an agent".into(),
        )
        .into());
    }
    let mut options = BuildImageOptions {
        dockerfile: request.dockerfile.clone(),
        t: Some(request.tag.clone()),
        buildargs: Some(request.args.clone()),
        labels: Some(request.labels.clone()),
        target: request.target.clone().unwrap_or_default(),
        rm: true,
        forcerm: true,
        nocache: request.no_cache,
        pull: request.pull.then(|| "1".to_string()),
        networkmode: request.network.clone(),
        // Sent by `with_build_query` below: the endpoint takes one parameter per host.
        extrahosts: None,
        shmsize: request.shm_size,
        cachefrom: (!request.cache_from.is_empty()).then(|| request.cache_from.clone()),
        platform: request.platform.clone().unwrap_or_default(),
        remote: request.remote.clone(),
        // BuildKit builds are asked for below (see `with_build_query`); bollard must not see it.
        version: BuilderVersion::BuilderV1,
        ..Default::default()
    };

    let empty = || Some(body_full(Bytes::new()));
    let (client, body, session) = if buildkit {
        let (context, body) = match input {
            Input::Local(ctx) => {
                options.dockerfile = ctx.session_dockerfile().to_string();
                options.remote = Some("client-session".into());
                (Some(ctx), empty())
            }
            Input::Tar(tar) => (None, Some(body_try_stream(tar))),
            Input::Remote => (None, empty()),
        };
        let host = match &request.engine {
            Some(e) => e.clone(),
            None => {
                crate::daemon::endpoint()
                    .map_err(|e| BuildError::early(e.to_string()))?
                    .host
            }
        };
        let v = docker.client_version();
        let attachments = Attachments {
            context,
            secrets: request.secrets.clone(),
            ssh: request.ssh.clone(),
            credentials: request.credentials.clone(),
        };
        let session = Session::open(
            &host,
            &format!("{}.{}", v.major_version, v.minor_version),
            attachments,
        )
        .await
        .map_err(|e| BuildError::early(e.to_string()))?;
        options.session = Some(session.id().to_string());
        (
            with_build_query(docker, true, &request.extra_hosts),
            body,
            Some(session),
        )
    } else {
        let body = match input {
            Input::Local(ctx) => {
                options.dockerfile = ctx.dockerfile().to_string();
                Some(body_try_stream(ctx.stream()))
            }
            Input::Tar(tar) => Some(body_try_stream(tar)),
            Input::Remote => empty(),
        };
        (
            with_build_query(docker, false, &request.extra_hosts),
            body,
            None,
        )
    };

    // The classic builder reads pull credentials from the request (`X-Registry-Config`); a
    // BuildKit build asks its session, so nothing is sent along.
    let registry_config = (!buildkit && !request.credentials.is_empty())
        .then(|| request.credentials.docker_credentials());
    let result = follow(
        client.build_image(options, registry_config, body),
        request.idle_timeout,
        on_line,
    )
    .await;
    if let Some(session) = session {
        session.close().await;
    }
    result
}

/// A client whose `/build` requests carry what bollard's options cannot express.
///
/// - BuildKit (`version=2`): bollard's `build_image` starts a session of its own for every
///   BuildKit build, serving only registry credentials: the daemon would read the context from
///   the request body and apply no ignore file. So the request is made as a classic one, which
///   bollard sends as it is, and this hook — bollard's public way to adjust a request before it
///   goes out — switches the builder. The session parameter is already in the query: bollard
///   passes it through.
/// - Extra hosts: the daemon reads every `extrahosts` parameter of the query (one `host:ip`
///   each, as the docker CLI sends them), while bollard's options hold a single string.
fn with_build_query(docker: &Docker, buildkit: bool, extra_hosts: &[String]) -> Docker {
    if !buildkit && extra_hosts.is_empty() {
        return docker.clone();
    }
    let extra_hosts = extra_hosts.to_vec();
    docker
        .clone()
        .with_request_modifier(move |mut req: BollardRequest| {
            if req.uri().path().ends_with("/build") {
                let mut uri = Some(req.uri().clone());
                if buildkit {
                    uri = uri.and_then(|u| with_query_value(&u, "version", "2"));
                }
                for host in &extra_hosts {
                    uri = uri.and_then(|u| with_query_added(&u, "extrahosts", host));
                }
                if let Some(uri) = uri {
                    *req.uri_mut() = uri;
                }
            }
            req
        })
}

/// `uri` with `key=value` added to its query (after any values the key already has).
fn with_query_added(uri: &hyper::Uri, key: &str, value: &str) -> Option<hyper::Uri> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        out.append_pair(&k, &v);
    }
    out.append_pair(key, value);
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(format!("{}?{}", uri.path(), out.finish()).parse().ok()?);
    hyper::Uri::from_parts(parts).ok()
}

/// `uri` with the query parameter `key` set to `value`.
fn with_query_value(uri: &hyper::Uri, key: &str, value: &str) -> Option<hyper::Uri> {
    let query = uri.query().unwrap_or("");
    let mut out = form_urlencoded::Serializer::new(String::new());
    let mut seen = false;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == key {
            seen = true;
            out.append_pair(key, value);
        } else {
            out.append_pair(&k, &v);
        }
    }
    if !seen {
        out.append_pair(key, value);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(format!("{}?{}", uri.path(), out.finish()).parse().ok()?);
    hyper::Uri::from_parts(parts).ok()
}

/// Sends the build request and turns the daemon's answer into lines and an outcome.
async fn follow(
    stream: impl Stream<Item = Result<bollard::models::BuildInfo, bollard::errors::Error>>,
    idle: Option<std::time::Duration>,
    on_line: &mut impl FnMut(&str),
) -> Result<(), Attempt> {
    let mut tail: Vec<String> = Vec::new();
    let mut remember = |line: &str, tail: &mut Vec<String>| {
        if tail.len() == 40 {
            tail.remove(0);
        }
        tail.push(line.to_string());
        on_line(line);
    };
    // BuildKit reports each step (vertex) many times as it progresses; its name ("[2/5] RUN
    // make") is shown once, when it starts, as docker's plain progress does.
    let mut announced: std::collections::HashSet<String> = std::collections::HashSet::new();
    // Both builders end a build with the image's ID (BuildKit as `moby.image.id`, the classic
    // builder as a bare `aux`); it is the proof the build finished and was tagged.
    let mut image_id = None;
    let mut stream = std::pin::pin!(stream);
    loop {
        let next = match idle {
            None => stream.next().await,
            Some(limit) => match tokio::time::timeout(limit, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    return Err(Attempt::Failed(BuildError::Daemon {
                        message: format!(
                            "the daemon reported nothing for {}s; the build was given up (--timeout sets the limit: sixty times its value)",
                            limit.as_secs()
                        ),
                        log_tail: tail,
                    }))
                }
            },
        };
        let Some(item) = next else { break };
        match item {
            Ok(info) => {
                if let Some(bollard::models::BuildInfoAux::Default(id)) = &info.aux {
                    if id.id.is_some() {
                        image_id.clone_from(&id.id);
                    }
                }
                if let Some(text) = info.stream.as_deref() {
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        remember(line, &mut tail);
                    }
                }
                if let Some(bollard::models::BuildInfoAux::BuildKit(status)) = &info.aux {
                    for v in &status.vertexes {
                        if (v.started.is_some() || v.cached)
                            && !v.name.is_empty()
                            && announced.insert(v.digest.clone())
                        {
                            let line = if v.cached {
                                format!("CACHED {}", v.name)
                            } else {
                                v.name.clone()
                            };
                            remember(&line, &mut tail);
                        }
                    }
                    for log in &status.logs {
                        for line in String::from_utf8_lossy(&log.msg)
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                        {
                            remember(line, &mut tail);
                        }
                    }
                    for v in &status.vertexes {
                        if !v.error.is_empty() {
                            remember(&format!("{}: {}", v.name, v.error), &mut tail);
                        }
                    }
                }
            }
            Err(e) => {
                use bollard::errors::Error;
                let message = match e {
                    Error::DockerStreamError { error } => error,
                    Error::DockerResponseServerError { message, .. } => message,
                    Error::JsonDataError { .. } => e.to_string(),
                    // The connection, not the build: the answer was cut short.
                    other => {
                        return Err(Attempt::Interrupted {
                            message: other.to_string(),
                            log_tail: tail,
                        })
                    }
                };
                return Err(Attempt::Failed(BuildError::Daemon {
                    message,
                    log_tail: tail,
                }));
            }
        }
    }
    match image_id {
        Some(_) => Ok(()),
        None => Err(Attempt::Interrupted {
            message: "it ended before the daemon reported the image".into(),
            log_tail: tail,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(lines: &[&str]) -> Vec<Result<bollard::models::BuildInfo, bollard::errors::Error>> {
        lines
            .iter()
            .map(|l| Ok(serde_json::from_str(l).unwrap()))
            .collect()
    }

    #[tokio::test]
    async fn a_silent_answer_ends_the_build_at_its_idle_limit() {
        let silent = futures_util::stream::pending::<
            Result<bollard::models::BuildInfo, bollard::errors::Error>,
        >();
        let mut on_line = |_: &str| {};
        let limit = std::time::Duration::from_millis(50);
        match follow(silent, Some(limit), &mut on_line).await {
            Err(Attempt::Failed(BuildError::Daemon { message, .. })) => {
                assert!(message.contains("reported nothing"), "{message}")
            }
            _ => panic!("a silent build must fail at its idle limit"),
        }
    }

    #[tokio::test]
    async fn a_build_is_done_only_when_the_daemon_reports_its_image() {
        let mut lines = Vec::new();
        let done = answer(&[
            r#"{"stream":"Step 1/1 : FROM scratch"}"#,
            r#"{"aux":{"ID":"sha256:0123"}}"#,
            r#"{"stream":"Successfully built 0123"}"#,
        ]);
        let mut on_line = |l: &str| lines.push(l.to_string());
        assert!(follow(futures_util::stream::iter(done), None, &mut on_line)
            .await
            .is_ok());
        let cut = answer(&[r#"{"stream":"Step 1/1 : FROM scratch"}"#]);
        match follow(futures_util::stream::iter(cut), None, &mut on_line).await {
            Err(Attempt::Interrupted { message, log_tail }) => {
                assert!(message.contains("before the daemon reported the image"));
                assert_eq!(log_tail, ["Step 1/1 : FROM scratch"]);
            }
            _ => panic!("an answer without the image is an interrupted build"),
        }
        let broken = vec![Err(bollard::errors::Error::IOError {
            err: std::io::Error::other("bytes remaining on stream"),
        })];
        assert!(matches!(
            follow(futures_util::stream::iter(broken), None, &mut on_line).await,
            Err(Attempt::Interrupted { .. })
        ));
        let refused = vec![Err(bollard::errors::Error::DockerStreamError {
            error: "failed to solve: boom".into(),
        })];
        match follow(futures_util::stream::iter(refused), None, &mut on_line).await {
            Err(Attempt::Failed(BuildError::Daemon { message, .. })) => {
                assert_eq!(message, "failed to solve: boom")
            }
            _ => panic!("the daemon's own error is a failed build"),
        }
    }

    #[test]
    fn the_builder_version_is_switched_in_the_query() {
        let uri: hyper::Uri = "http://localhost/v1.41/build?dockerfile=Dockerfile&version=1&session=abc&buildargs=%7B%7D"
            .parse()
            .unwrap();
        let out = with_query_value(&uri, "version", "2").unwrap();
        assert_eq!(
            out.to_string(),
            "http://localhost/v1.41/build?dockerfile=Dockerfile&version=2&session=abc&buildargs=%7B%7D"
        );
        let hosts = with_query_added(&out, "extrahosts", "db:10.0.0.2").unwrap();
        let hosts = with_query_added(&hosts, "extrahosts", "cache:10.0.0.3").unwrap();
        let values: Vec<String> = form_urlencoded::parse(hosts.query().unwrap().as_bytes())
            .filter(|(k, _)| k == "extrahosts")
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(values, ["db:10.0.0.2", "cache:10.0.0.3"]);
        let bare: hyper::Uri = "/v1.41/build".parse().unwrap();
        assert_eq!(
            with_query_value(&bare, "version", "2").unwrap().to_string(),
            "/v1.41/build?version=2"
        );
    }
}
