//! What happens to each service, as typed events: the release engine and the binary's build
//! wiring send them, every progress rendering (live display, plain lines, JSON lines, GitHub
//! Actions) reads them. The JSON lines are these events serialized (`event` names the
//! variant), with the plain line's text as `message`.

use serde::Serialize;
use std::sync::Arc;

/// One thing that happened to one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ServiceEvent {
    /// The command will work on it; nothing happened yet.
    Queued { service: String, image: String },
    /// Its build started.
    Building { service: String },
    /// A line of its build or push output.
    Output { service: String, line: String },
    /// Its build finished.
    Built { service: String, seconds: f64 },
    /// The registry holds an image of the same inputs: it is tagged there, not built.
    Unchanged { service: String, tag: String },
    /// Its build failed; `log_tail`: the last lines of its output.
    BuildFailed {
        service: String,
        message: String,
        log_tail: Vec<String>,
    },
    /// It was not built (a service it builds on failed, or the run stopped first).
    NotBuilt { service: String, reason: String },
    /// Its repository is being created.
    CreatingRepository { service: String, repository: String },
    /// A tag is being pushed (or added through the registry API).
    Pushing { service: String, tag: String },
    /// Bytes of one layer uploaded so far (`total`: the layer's size; the daemon's push
    /// progress names no layer, so a layer is known by its size).
    Upload {
        service: String,
        current: u64,
        total: u64,
    },
    /// A tag landed on `digest`.
    Pushed {
        service: String,
        tag: String,
        digest: String,
    },
    /// A request failed in a way another try may fix; it is tried again after `wait_ms`.
    Retrying {
        service: String,
        request: String,
        attempt: usize,
        wait_ms: u64,
        error: String,
    },
    /// Pushing it failed (phase 1 or phase 2).
    PushFailed { service: String, message: String },
    /// A moving tag this run had moved is back where it was before the run: on `digest`, or
    /// removed when it did not exist before (`digest` absent).
    Restored {
        service: String,
        tag: String,
        digest: Option<String>,
    },
    /// A moving tag this run had moved could not be put back.
    NotRestored {
        service: String,
        tag: String,
        reason: String,
    },
    /// `verify`: a reference the registry serves.
    Present {
        service: String,
        reference: String,
        digest: String,
    },
    /// `verify`: a reference the registry does not serve.
    Missing { service: String, reference: String },
    /// `verify --ecs-service`: a container of an ECS service runs this release's image.
    EcsMatch {
        service: String,
        ecs_service: String,
        container: String,
        expected: String,
        image: String,
        detail: String,
    },
    /// `verify --ecs-service`: a container of an ECS service does not run this release's image.
    EcsMismatch {
        service: String,
        ecs_service: String,
        container: String,
        expected: String,
        image: String,
        detail: String,
    },
    /// Something the user should know that does not fail the run.
    Warning { service: String, message: String },
}

impl ServiceEvent {
    pub fn service(&self) -> &str {
        use ServiceEvent as E;
        match self {
            E::Queued { service, .. }
            | E::Building { service }
            | E::Output { service, .. }
            | E::Built { service, .. }
            | E::Unchanged { service, .. }
            | E::BuildFailed { service, .. }
            | E::NotBuilt { service, .. }
            | E::CreatingRepository { service, .. }
            | E::Pushing { service, .. }
            | E::Upload { service, .. }
            | E::Pushed { service, .. }
            | E::Retrying { service, .. }
            | E::PushFailed { service, .. }
            | E::Restored { service, .. }
            | E::NotRestored { service, .. }
            | E::Present { service, .. }
            | E::Missing { service, .. }
            | E::EcsMatch { service, .. }
            | E::EcsMismatch { service, .. }
            | E::Warning { service, .. } => service,
        }
    }

    /// The event's line for people (without the service's name).
    pub fn text(&self) -> String {
        use ServiceEvent as E;
        match self {
            E::Queued { .. } => "queued".into(),
            E::Building { .. } => "building".into(),
            E::Output { line, .. } => line.clone(),
            E::Built { seconds, .. } => format!("built in {seconds:.1}s"),
            E::Unchanged { .. } => {
                "unchanged: the registry holds an image of the same inputs".into()
            }
            E::BuildFailed { message, .. } => format!("build failed: {message}"),
            E::NotBuilt { reason, .. } => format!("not built: {reason}"),
            E::CreatingRepository { repository, .. } => {
                format!("creating repository {repository}")
            }
            E::Pushing { tag, .. } => format!("pushing :{tag}"),
            E::Upload { current, total, .. } => format!("uploaded {current} of {total} bytes"),
            E::Pushed { tag, digest, .. } => format!("pushed :{tag} {digest}"),
            E::Retrying {
                request,
                attempt,
                wait_ms,
                error,
                ..
            } => format!(
                "retrying {request} in {:.1}s (attempt {}): {error}",
                *wait_ms as f64 / 1000.0,
                attempt + 1
            ),
            E::PushFailed { message, .. } => format!("push failed: {message}"),
            E::Restored {
                tag,
                digest: Some(d),
                ..
            } => format!("restored :{tag} to {d}"),
            E::Restored {
                tag, digest: None, ..
            } => format!("removed :{tag} (it did not exist before)"),
            E::NotRestored { tag, reason, .. } => format!("could not restore :{tag}: {reason}"),
            E::Present {
                reference, digest, ..
            } => format!("present {reference} {digest}"),
            E::Missing { reference, .. } => format!("missing {reference}"),
            E::EcsMatch { detail, .. } | E::EcsMismatch { detail, .. } => detail.clone(),
            E::Warning { message, .. } => message.clone(),
        }
    }
}

/// Everything a release tells: what happens to each service, and the phase it is in.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Service(ServiceEvent),
    Phase(Phase),
}

/// Where events go (the progress display).
#[derive(Clone)]
pub struct EventSink(Arc<dyn Fn(Event) + Send + Sync>);

impl EventSink {
    pub fn new(f: impl Fn(Event) + Send + Sync + 'static) -> EventSink {
        EventSink(Arc::new(f))
    }

    /// A sink that drops every event (callers that show nothing).
    pub fn ignore() -> EventSink {
        EventSink::new(|_| {})
    }

    pub fn service(&self, event: ServiceEvent) {
        (self.0)(Event::Service(event))
    }

    pub fn phase(&self, phase: Phase) {
        (self.0)(Event::Phase(phase))
    }
}

/// The release's phases, for the overall line and the JSON `phase` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Identity tags (and inputs tags), each service as its image is ready.
    Identity,
    /// The moving tags, once every identity tag landed.
    Moving,
    /// Putting moving tags back after phase 2 failed or was interrupted.
    Restoring,
}

impl Phase {
    pub fn text(self) -> &'static str {
        match self {
            Phase::Identity => "phase 1: identity tags, each as its image is ready",
            Phase::Moving => "phase 2: moving tags",
            Phase::Restoring => "phase 2 failed: putting the moving tags back",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_the_event_and_keeps_its_fields() {
        let e = ServiceEvent::Pushed {
            service: "api".into(),
            tag: "latest".into(),
            digest: "sha256:ab".into(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "pushed", "service": "api", "tag": "latest", "digest": "sha256:ab"})
        );
        assert_eq!(e.service(), "api");
        let r = ServiceEvent::Restored {
            service: "web".into(),
            tag: "latest".into(),
            digest: None,
        };
        assert_eq!(serde_json::to_value(&r).unwrap()["event"], "restored");
        assert!(r.text().contains("did not exist before"));
    }
}
