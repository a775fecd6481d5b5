//! The SSH service: `RUN --mount=type=ssh` reaches an SSH agent on wharf's side.
//!
//! compose's `build.ssh` names agents by id, as `docker buildx build --ssh` does: `default`
//! alone is the agent of `$SSH_AUTH_SOCK`; `ID=PATH` is the agent listening on the socket PATH,
//! or, when PATH is a private key file (or several, comma-separated), an agent holding those
//! keys in memory. Everything is resolved when the build is prepared, as BuildKit's client does
//! when a build starts, so a missing agent or an unreadable key is a configuration error.
//!
//! The daemon first checks that an id exists (`CheckAgent`), then opens one `ForwardAgent`
//! stream per connection a `RUN` step makes to its agent socket, naming the id in the call's
//! metadata. The stream carries the SSH agent protocol; wharf answers it message by message
//! (framing and messages from `ssh-agent-lib`), so that, as with BuildKit's client, a build
//! can list keys and have data signed but never add, remove or lock keys: other requests get
//! the protocol's failure answer.

use bollard::moby::sshforward::v1::ssh_server::Ssh;
use bollard::moby::sshforward::v1::{BytesMessage, CheckAgentRequest, CheckAgentResponse};
use futures_util::StreamExt;
use ssh_agent_lib::agent::Session as AgentSession;
use ssh_agent_lib::error::AgentError;
use ssh_agent_lib::proto::{signature as sigflags, Identity, Request, Response, SignRequest};
use ssh_agent_lib::ssh_encoding::{Decode, Encode};
use ssh_key::private::KeypairData;
use ssh_key::{Algorithm, PrivateKey, Signature};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status, Streaming};

/// The id a mount without `id=` asks for.
pub const DEFAULT_ID: &str = "default";

/// The gRPC metadata key naming the id of a `ForwardAgent` stream (BuildKit's `KeySSHID`).
const ID_METADATA: &str = "buildkit.ssh.id";

/// BuildKit's client reads at most this much of a key file.
const MAX_KEY_FILE: u64 = 100 * 1024;

/// The largest agent message accepted (as Go's agent server).
const MAX_MESSAGE: usize = 16 << 20;

/// Why an SSH id cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    #[error("`{id}` forwards the agent of SSH_AUTH_SOCK, but SSH_AUTH_SOCK is not set: start an agent and add your key (`eval \"$(ssh-agent)\"; ssh-add`), or name an agent's socket or a key file (`{id}=/path/to/agent.sock`)")]
    NoAgent { id: String },
    #[error("`{id}` is listed more than once")]
    Duplicate { id: String },
    #[error("`{id}`: {path}: {message}")]
    Path {
        id: String,
        path: String,
        message: String,
    },
    #[error("`{id}` names more than one agent socket; an id forwards one agent (or key files)")]
    Sockets { id: String },
    #[error(
        "`{id}` mixes an agent socket and key files; give an id either one socket or key files"
    )]
    KeysAndSocket { id: String },
}

/// One id a build's `RUN --mount=type=ssh,id=…` can use, resolved.
#[derive(Clone)]
pub struct SshAgent {
    id: String,
    source: Source,
}

#[derive(Clone)]
enum Source {
    /// An agent's socket, connected to for every forwarded connection.
    Socket(PathBuf),
    /// Keys read from files, served by an agent in memory.
    Keys(Arc<Vec<PrivateKey>>),
}

impl fmt::Debug for SshAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SshAgent");
        d.field("id", &self.id);
        match &self.source {
            Source::Socket(p) => d.field("socket", p),
            Source::Keys(k) => d.field("keys", &k.len()),
        };
        d.finish()
    }
}

impl SshAgent {
    /// Resolves one compose `build.ssh` entry as BuildKit's client does: no path (or one empty
    /// path) is the agent of `SSH_AUTH_SOCK` from the process environment; a socket is that
    /// agent; other files are private keys (OpenSSH, PKCS#1 or PKCS#8 PEM, unencrypted).
    pub fn resolve(id: &str, paths: &[PathBuf]) -> Result<SshAgent, SshError> {
        Self::resolve_with(id, paths, std::env::var_os("SSH_AUTH_SOCK").as_deref())
    }

    /// [`SshAgent::resolve`] with `SSH_AUTH_SOCK` given.
    pub fn resolve_with(
        id: &str,
        paths: &[PathBuf],
        auth_sock: Option<&OsStr>,
    ) -> Result<SshAgent, SshError> {
        let id = if id.is_empty() { DEFAULT_ID } else { id }.to_string();
        let paths: Vec<PathBuf> = match paths {
            [] => vec![PathBuf::new()],
            p => p.to_vec(),
        };
        let paths: Vec<PathBuf> = if paths.len() == 1 && paths[0].as_os_str().is_empty() {
            match auth_sock.filter(|s| !s.is_empty()) {
                Some(sock) => vec![PathBuf::from(sock)],
                None => return Err(SshError::NoAgent { id }),
            }
        } else {
            paths
        };
        let mut socket: Option<PathBuf> = None;
        let mut keys = Vec::new();
        for path in &paths {
            if socket.is_some() {
                return Err(SshError::Sockets { id });
            }
            let fail = |message: String| SshError::Path {
                id: id.clone(),
                path: path.display().to_string(),
                message,
            };
            let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
            if is_socket(&meta) {
                if !keys.is_empty() {
                    return Err(SshError::KeysAndSocket { id });
                }
                socket = Some(path.clone());
                continue;
            }
            keys.push(read_key(path).map_err(fail)?);
        }
        let source = match socket {
            Some(s) => Source::Socket(s),
            None => Source::Keys(Arc::new(keys)),
        };
        Ok(SshAgent { id, source })
    }

    /// The id mounts name.
    pub fn id(&self) -> &str {
        &self.id
    }
}

#[cfg(unix)]
fn is_socket(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_socket()
}

#[cfg(not(unix))]
fn is_socket(_meta: &std::fs::Metadata) -> bool {
    false
}

/// Reads a private key file for the in-memory agent.
fn read_key(path: &Path) -> Result<PrivateKey, String> {
    use wharf_compose::files::{self, Accept, FileError};
    let bytes = files::read(path, Accept::RegularFile, MAX_KEY_FILE).map_err(|e| match e {
        FileError::NotRegular { kind, .. } => {
            format!("is {kind}, not a regular file: name a private key file or an agent's socket")
        }
        FileError::TooLarge { .. } => {
            format!(
                "is larger than {} KiB: not a private key file",
                MAX_KEY_FILE / 1024
            )
        }
        FileError::Io { source, .. } => source.to_string(),
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| "cannot be read as a private key file: it is not text".to_string())?;
    parse_key(&text)
}

fn parse_key(text: &str) -> Result<PrivateKey, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let encrypted = || {
        "is a passphrase-protected key, which wharf cannot unlock: add it to an SSH agent (`ssh-add KEY`) and forward the agent instead (`default`, or `ID=/path/to/agent.sock`)".to_string()
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
        let key = PrivateKey::from_openssh(text).map_err(|e| format!("is not a valid key: {e}"))?;
        if key.is_encrypted() {
            return Err(encrypted());
        }
        return Ok(key);
    }
    if trimmed.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(encrypted());
    }
    let rsa = if trimmed.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        rsa::RsaPrivateKey::from_pkcs1_pem(text).map_err(|e| format!("is not a valid key: {e}"))?
    } else if trimmed.starts_with("-----BEGIN PRIVATE KEY-----") {
        rsa::RsaPrivateKey::from_pkcs8_pem(text).map_err(|_| {
            "is a PKCS#8 key that is not RSA; rewrite it in the OpenSSH format (`ssh-keygen -p -f KEY`) or add it to an agent".to_string()
        })?
    } else {
        return Err("is neither an agent socket nor a private key file (OpenSSH or PEM)".into());
    };
    let keypair = ssh_key::private::RsaKeypair::try_from(rsa)
        .map_err(|e| format!("is not a usable RSA key: {e}"))?;
    PrivateKey::new(KeypairData::Rsa(keypair), "").map_err(|e| format!("is not a valid key: {e}"))
}

/// The SSH service of one build's session.
#[derive(Debug, Default)]
pub(crate) struct SshService {
    agents: HashMap<String, Source>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Socket(p) => write!(f, "socket {}", p.display()),
            Source::Keys(k) => write!(f, "{} key(s)", k.len()),
        }
    }
}

impl SshService {
    pub(crate) fn new(agents: &[SshAgent]) -> Result<Self, SshError> {
        let mut map = HashMap::new();
        for a in agents {
            if map.insert(a.id.clone(), a.source.clone()).is_some() {
                return Err(SshError::Duplicate { id: a.id.clone() });
            }
        }
        Ok(SshService { agents: map })
    }

    fn source(&self, id: &str) -> Result<Source, Status> {
        let id = if id.is_empty() { DEFAULT_ID } else { id };
        // BuildKit's client's words, which the daemon reports as they are.
        self.agents
            .get(id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("unset ssh forward key {id}")))
    }
}

type Answers = Pin<Box<dyn futures_util::Stream<Item = Result<BytesMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Ssh for SshService {
    async fn check_agent(
        &self,
        request: GrpcRequest<CheckAgentRequest>,
    ) -> Result<GrpcResponse<CheckAgentResponse>, Status> {
        let id = request.into_inner().id;
        tracing::debug!(%id, "the daemon checks an SSH id");
        self.source(&id)?;
        Ok(GrpcResponse::new(CheckAgentResponse {}))
    }

    type ForwardAgentStream = Answers;

    async fn forward_agent(
        &self,
        request: GrpcRequest<Streaming<BytesMessage>>,
    ) -> Result<GrpcResponse<Answers>, Status> {
        let id = request
            .metadata()
            .get(ID_METADATA)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        tracing::debug!(%id, "the daemon forwards an SSH agent connection");
        let agent: Box<dyn AgentSession> = match self.source(&id)? {
            Source::Socket(path) => {
                let stream = connect(&path).await.map_err(|e| {
                    Status::unavailable(format!(
                        "ssh {id}: cannot connect to the agent at {}: {e}",
                        path.display()
                    ))
                })?;
                Box::new(ssh_agent_lib::client::Client::new(stream))
            }
            Source::Keys(keys) => Box::new(KeyAgent { keys }),
        };
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(serve(request.into_inner(), agent, tx));
        Ok(GrpcResponse::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

#[cfg(unix)]
async fn connect(path: &Path) -> std::io::Result<tokio::net::UnixStream> {
    tokio::net::UnixStream::connect(path).await
}

#[cfg(not(unix))]
async fn connect(_path: &Path) -> std::io::Result<tokio::net::TcpStream> {
    Err(std::io::Error::other("agent sockets need a Unix system"))
}

/// Answers the agent requests of one forwarded connection until the daemon closes it.
async fn serve(
    mut inbound: Streaming<BytesMessage>,
    mut agent: Box<dyn AgentSession>,
    tx: mpsc::Sender<Result<BytesMessage, Status>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = inbound.next().await {
        let Ok(chunk) = chunk else { return };
        buf.extend_from_slice(&chunk.data);
        loop {
            let frame = match next_frame(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(Status::invalid_argument(e))).await;
                    return;
                }
            };
            let answer = answer(agent.as_mut(), &frame).await;
            let mut data = Vec::new();
            let encoded = answer
                .encoded_len()
                .and_then(|len| (len as u32).encode(&mut data))
                .and_then(|()| answer.encode(&mut data));
            if encoded.is_err() {
                // An answer that cannot be written (never expected): the protocol's failure.
                data = vec![0, 0, 0, 1, 5];
            }
            if tx.send(Ok(BytesMessage { data })).await.is_err() {
                return;
            }
        }
    }
}

/// Takes one length-prefixed message off the front of `buf`, if it is all there.
fn next_frame(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, String> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_MESSAGE {
        return Err(format!("agent request of {len} bytes is too large"));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let frame = buf[4..4 + len].to_vec();
    buf.drain(..4 + len);
    Ok(Some(frame))
}

/// The answer to one request: listing keys and signing are passed to the agent; anything
/// else (adding, removing, locking, extensions) or anything unreadable is refused.
async fn answer(agent: &mut dyn AgentSession, frame: &[u8]) -> Response {
    let mut reader = frame;
    let outcome = match Request::decode(&mut reader) {
        Ok(Request::RequestIdentities) => agent
            .request_identities()
            .await
            .map(Response::IdentitiesAnswer),
        Ok(Request::SignRequest(req)) => agent.sign(req).await.map(Response::SignResponse),
        Ok(other) => {
            tracing::debug!(
                message = other.message_id(),
                "refused an SSH agent request that would change the agent"
            );
            return Response::Failure;
        }
        Err(_) => return Response::Failure,
    };
    outcome.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "the SSH agent refused a request");
        Response::Failure
    })
}

/// An agent holding keys read from files (buildx's in-memory keyring).
struct KeyAgent {
    keys: Arc<Vec<PrivateKey>>,
}

#[ssh_agent_lib::async_trait]
impl AgentSession for KeyAgent {
    async fn request_identities(&mut self) -> Result<Vec<Identity>, AgentError> {
        Ok(self
            .keys
            .iter()
            .map(|k| Identity {
                credential: k.public_key().key_data().clone().into(),
                comment: k.comment().to_string(),
            })
            .collect())
    }

    async fn sign(&mut self, request: SignRequest) -> Result<Signature, AgentError> {
        let wanted = request.credential.key_data();
        let key = self
            .keys
            .iter()
            .find(|k| k.public_key().key_data() == wanted)
            .ok_or_else(|| AgentError::other(std::io::Error::other("no such key")))?;
        sign(key, &request.data, request.flags).map_err(AgentError::other)
    }
}

/// Signs as an OpenSSH agent does: RSA with the hash the flags ask for (SHA-1 when none),
/// other keys with their one algorithm.
fn sign(key: &PrivateKey, data: &[u8], flags: u32) -> Result<Signature, SignError> {
    match key.key_data() {
        KeypairData::Rsa(k) => {
            use rsa::pkcs1v15::SigningKey;
            use rsa::signature::{RandomizedSigner, SignatureEncoding};
            // Built from the key's parts here: ssh-key 0.6's own conversion repeats a prime.
            let big = |m: &ssh_key::Mpint| rsa::BigUint::try_from(m).map_err(SignError::key);
            let private = rsa::RsaPrivateKey::from_components(
                big(&k.public.n)?,
                big(&k.public.e)?,
                big(&k.private.d)?,
                vec![big(&k.private.p)?, big(&k.private.q)?],
            )
            .map_err(SignError::key)?;
            let mut rng = rsa::rand_core::OsRng;
            let (name, bytes) = if flags & sigflags::RSA_SHA2_512 != 0 {
                let s = SigningKey::<sha2::Sha512>::new(private)
                    .try_sign_with_rng(&mut rng, data)
                    .map_err(SignError::key)?;
                ("rsa-sha2-512", s.to_vec())
            } else if flags & sigflags::RSA_SHA2_256 != 0 {
                let s = SigningKey::<sha2::Sha256>::new(private)
                    .try_sign_with_rng(&mut rng, data)
                    .map_err(SignError::key)?;
                ("rsa-sha2-256", s.to_vec())
            } else {
                let s = SigningKey::<sha1::Sha1>::new(private)
                    .try_sign_with_rng(&mut rng, data)
                    .map_err(SignError::key)?;
                ("ssh-rsa", s.to_vec())
            };
            let algorithm = Algorithm::new(name).map_err(SignError::key)?;
            Signature::new(algorithm, bytes).map_err(SignError::key)
        }
        other => rsa::signature::Signer::try_sign(other, data).map_err(SignError::key),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot sign with this key: {0}")]
struct SignError(String);

impl SignError {
    fn key(e: impl fmt::Display) -> Self {
        SignError(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_agent_comes_from_ssh_auth_sock() {
        let err = SshAgent::resolve_with("default", &[], None).unwrap_err();
        assert!(matches!(err, SshError::NoAgent { .. }), "{err}");
        assert!(
            err.to_string().contains("SSH_AUTH_SOCK is not set"),
            "{err}"
        );
        let err = SshAgent::resolve_with("", &[PathBuf::new()], Some(OsStr::new(""))).unwrap_err();
        assert!(matches!(err, SshError::NoAgent { ref id } if id == "default"));
        // A set variable naming nothing is named in the error.
        let err =
            SshAgent::resolve_with("default", &[], Some(OsStr::new("/nonexistent/agent.sock")))
                .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/agent.sock"), "{err}");
    }

    #[test]
    fn key_files_are_parsed_and_bad_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not a key").unwrap();
        let err = SshAgent::resolve_with("k", &[junk], None).unwrap_err();
        assert!(
            err.to_string()
                .contains("neither an agent socket nor a private key"),
            "{err}"
        );
        let enc = dir.path().join("enc");
        std::fs::write(
            &enc,
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = SshAgent::resolve_with("k", &[enc], None).unwrap_err();
        assert!(err.to_string().contains("passphrase-protected"), "{err}");
        assert!(err.to_string().contains("ssh-add"), "{err}");
    }

    #[test]
    fn frames_are_cut_at_their_length() {
        let mut buf = vec![0, 0, 0, 1, 11, 0, 0];
        assert_eq!(next_frame(&mut buf).unwrap(), Some(vec![11]));
        assert_eq!(buf, vec![0, 0]);
        assert_eq!(next_frame(&mut buf).unwrap(), None);
        let mut huge = vec![0x7f, 0, 0, 0];
        assert!(next_frame(&mut huge).is_err());
    }

    #[test]
    fn ids_are_unique_and_unknown_ones_refused_in_buildkit_words() {
        let a = SshAgent {
            id: "default".into(),
            source: Source::Socket(PathBuf::from("/x")),
        };
        assert!(matches!(
            SshService::new(&[a.clone(), a.clone()]),
            Err(SshError::Duplicate { .. })
        ));
        let service = SshService::new(&[a]).unwrap();
        assert!(service.source("").is_ok());
        let err = service.source("github").unwrap_err();
        assert_eq!(err.message(), "unset ssh forward key github");
    }
}
