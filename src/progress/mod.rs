//! What the user sees while wharf works, always on stderr (stdout is kept for results).
//!
//! Three renderings of the same events, chosen by `--progress` (`WHARF_PROGRESS`):
//! - `tty`: a live display (indicatif) with one line per service — waiting, building (with the
//!   step when the daemon reports one, else its last output line), pushing (layers done of the
//!   image's layers, the daemon's status), done with its digest, or failed — each with its
//!   elapsed time, and an overall line at the bottom. Logs and warnings scroll above it.
//! - `plain`: one line per event, each naming its service, so CI logs read top to bottom.
//! - `json`: one JSON object per line (`event`, `service`, `message`, and per-event fields),
//!   for other tools.
//!
//! `auto` (the default) is `tty` when stderr is a terminal outside CI, else `plain`.
//!
//! Inside GitHub Actions the reporter also folds each service's log into a `::group::`, writes
//! the job summary and the step outputs, and turns the final error into an `::error::`
//! annotation (see [`crate::github`]). On Ctrl-C it stops the display, restores the terminal and
//! says what was and was not pushed.
//!
//! This module keeps each service's state and routes events to the chosen rendering;
//! `terminal` draws the live display, `summary` words the job summary and the account of an
//! interrupted release.

mod summary;
mod terminal;

use crate::cli::ProgressChoice;
use crate::error::Failure;
use crate::github::{Actions, Location};
use indexmap::IndexMap;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use wharf_pusher::events::{Event, EventSink, Phase, ServiceEvent};
use wharf_pusher::release::{Interrupt, Manifest, ManifestImage};

/// Project-level lines that are neither a phase nor the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Note {
    /// `verify --wait`: an ECS service's rollout changed state.
    Rollout,
    /// `verify --ecs-service`: a container no released service runs.
    EcsUnchecked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tty,
    Plain,
    Json,
}

/// Whether this process runs under a CI system (which sets `CI`), where nobody watches a
/// terminal even when the runner allocates one.
fn in_ci() -> bool {
    let set = |n: &str| {
        std::env::var(n)
            .map(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
            .unwrap_or(false)
    };
    set("CI") || set("GITHUB_ACTIONS")
}

fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true)
}

/// The mode `--progress` asks for, and a warning when it cannot be had.
pub fn choose(choice: ProgressChoice) -> (Mode, Option<&'static str>) {
    match choice {
        ProgressChoice::Auto if stderr_is_terminal() && !in_ci() => (Mode::Tty, None),
        ProgressChoice::Auto | ProgressChoice::Plain => (Mode::Plain, None),
        ProgressChoice::Json => (Mode::Json, None),
        ProgressChoice::Tty if stderr_is_terminal() => (Mode::Tty, None),
        ProgressChoice::Tty => (
            Mode::Plain,
            Some("--progress tty needs a terminal on stderr: showing plain progress"),
        ),
    }
}

/// Where lines go: above the live display in `tty` mode (while it is up), else straight to
/// stderr. Shared with the tracing subscriber so its messages do not tear the display.
struct Sink {
    mode: Mode,
    multi: Mutex<Option<MultiProgress>>,
    /// Lines kept in memory instead of written (the unit tests read them).
    memory: Option<Mutex<Vec<String>>>,
    /// Inside GitHub Actions, whose runner reads workflow commands from the output.
    github: bool,
}

impl Sink {
    fn multi(&self) -> MutexGuard<'_, Option<MultiProgress>> {
        self.multi.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Text, which may come from outside wharf: URL credentials are cut out, and in GitHub
    /// Actions nothing in it can run as a workflow command.
    fn line(&self, text: &str) {
        let text = wharf_compose::redact::userinfo(text);
        let text = match (self.github, self.mode) {
            (false, _) => text,
            (true, Mode::Json) => crate::github::inert_json(&text).into_owned().into(),
            (true, _) => crate::github::inert(&text, false).into_owned().into(),
        };
        self.write(&text);
    }

    /// A workflow command wharf means to issue (its data escaped by [`crate::github`]).
    fn command(&self, command: &str) {
        self.write(&wharf_compose::redact::userinfo(command));
    }

    /// A log group: its lines are always made inert (a build's output is not wharf's to run).
    fn group(&self, title: &str, lines: &[String], tail: &[String]) {
        let body = wharf_compose::redact::userinfo(&lines.join("\n")).into_owned();
        let mut text = format!(
            "{}\n{}\n{}",
            Actions::group(title),
            crate::github::inert(&body, true),
            Actions::end_group()
        );
        if !tail.is_empty() {
            let tail = wharf_compose::redact::userinfo(&tail.join("\n")).into_owned();
            text.push('\n');
            text.push_str(&crate::github::inert(&tail, false));
        }
        self.write(&text);
    }

    fn write(&self, text: &str) {
        if let Some(memory) = &self.memory {
            memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(text.lines().map(str::to_string));
            return;
        }
        let multi = self.multi();
        match multi.as_ref() {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{text}");
            }
        }
    }

    fn lines<'a>(&self, lines: impl IntoIterator<Item = &'a str>) {
        let text: Vec<&str> = lines.into_iter().collect();
        if !text.is_empty() {
            self.line(&text.join("\n"));
        }
    }
}

/// The `MakeWriter` of the tracing subscriber: each message becomes one line of the progress
/// output (a `log` event in `json` mode).
#[derive(Clone)]
pub struct LogWriter(Arc<Sink>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            sink: self.0.clone(),
            buf: Vec::new(),
        }
    }
}

/// One tracing message, written out when the subscriber drops it.
pub struct LogLine {
    sink: Arc<Sink>,
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        if self.sink.mode == Mode::Json {
            let event = serde_json::json!({"event": "log", "message": text.trim_start()});
            self.sink.line(&event.to_string());
        } else {
            self.sink.line(text);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Waiting,
    Building,
    Built,
    Failed,
    NotBuilt,
    Pushing,
    Pushed,
    Present,
    Missing,
}

impl Status {
    fn active(self) -> bool {
        matches!(self, Status::Building | Status::Pushing)
    }
}

/// One service, as far as the user is told.
struct Svc {
    status: Status,
    image: Option<String>,
    first: Option<Instant>,
    last: Option<Instant>,
    /// `step k/n …` of the build, when the daemon says.
    step: Option<String>,
    last_line: Option<String>,
    /// Layers of the tag being pushed: (done, seen).
    layers: (usize, usize),
    /// Bytes uploaded per layer of the tag being pushed, by layer size (the daemon's push
    /// progress names no layer through the API client).
    uploads: std::collections::BTreeMap<u64, u64>,
    push_status: Option<String>,
    /// The failure or reason it was not built.
    problem: Option<String>,
    /// Build output kept for a GitHub Actions log group.
    build_log: Vec<String>,
    push_log: Vec<String>,
    /// Tags the release will push, those that landed, and the one under way.
    expected: Vec<String>,
    landed: Vec<String>,
    in_flight: Option<String>,
    digest: Option<String>,
    /// `registry/repository` once released or verified.
    repository: Option<String>,
    bar: Option<ProgressBar>,
}

impl Svc {
    fn new() -> Svc {
        Svc {
            status: Status::Waiting,
            image: None,
            first: None,
            last: None,
            step: None,
            last_line: None,
            layers: (0, 0),
            uploads: std::collections::BTreeMap::new(),
            push_status: None,
            problem: None,
            build_log: Vec::new(),
            push_log: Vec::new(),
            expected: Vec::new(),
            landed: Vec::new(),
            in_flight: None,
            digest: None,
            repository: None,
            bar: None,
        }
    }

    fn elapsed(&self) -> Option<Duration> {
        Some(self.last?.duration_since(self.first?))
    }

    fn start(&mut self, now: Instant) {
        if self.first.is_none() {
            self.first = Some(now);
            if let Some(bar) = &self.bar {
                bar.reset_elapsed();
            }
        }
        self.last = Some(now);
    }
}

struct Inner {
    project: Option<String>,
    services: IndexMap<String, Svc>,
    /// The command pushes (build --push, push): an interruption must say what landed.
    pushes: bool,
    phase: Option<String>,
    summary: Option<String>,
    width: usize,
    overall: Option<ProgressBar>,
    closed: bool,
}

/// Reports progress events on stderr in the chosen mode.
pub struct Reporter {
    mode: Mode,
    /// Show every line of build output (`-v`), not only on failure.
    verbose: bool,
    github: Option<Actions>,
    started: Instant,
    sink: Arc<Sink>,
    inner: Mutex<Inner>,
}

pub fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

impl Reporter {
    pub fn new(mode: Mode, verbose: bool, github: Option<Actions>) -> Reporter {
        let multi = (mode == Mode::Tty).then(|| {
            terminal::echo::off();
            terminal::restore_terminal_on_panic();
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(15))
        });
        let in_github = github.is_some();
        Reporter {
            mode,
            verbose,
            github,
            started: Instant::now(),
            sink: Arc::new(Sink {
                mode,
                multi: Mutex::new(multi),
                memory: None,
                github: in_github,
            }),
            inner: Mutex::new(Inner {
                project: None,
                services: IndexMap::new(),
                pushes: false,
                phase: None,
                summary: None,
                width: 0,
                overall: None,
                closed: false,
            }),
        }
    }

    /// The writer for the tracing subscriber.
    pub fn log_writer(&self) -> LogWriter {
        LogWriter(self.sink.clone())
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn grouped(&self) -> bool {
        self.mode == Mode::Plain && self.github.is_some()
    }

    /// A project-level JSON line (`warning`, `summary`, `phase`…).
    fn json(&self, event: &str, text: &str) {
        let line = serde_json::json!({"event": event, "message": text});
        self.sink.line(&line.to_string());
    }

    /// A service event as its JSON line: the event's own fields, and its text as `message`.
    fn json_event(&self, event: &ServiceEvent) {
        let mut value = serde_json::to_value(event).unwrap_or_default();
        if let Some(m) = value.as_object_mut() {
            m.insert("message".into(), event.text().into());
        }
        self.sink.line(&value.to_string());
    }

    /// The sink the release engine reports to.
    pub fn sink_for_release(self: &Arc<Self>) -> EventSink {
        let r = self.clone();
        EventSink::new(move |e| match e {
            Event::Service(e) => r.event(&e),
            Event::Phase(p) => r.phase(p),
        })
    }

    /// The services the command works on, with their local image names, before anything
    /// happens: the live display shows them waiting. `pushes`: the command releases them.
    pub fn begin<'a>(
        &self,
        project: &str,
        services: impl IntoIterator<Item = (&'a str, &'a str)>,
        pushes: bool,
    ) {
        let mut inner = self.lock();
        inner.project = Some(project.to_string());
        inner.pushes = pushes;
        let services: Vec<(&str, &str)> = services.into_iter().collect();
        inner.width = services
            .iter()
            .map(|(s, _)| s.chars().count())
            .max()
            .unwrap_or(0);
        for (name, image) in services {
            self.svc(&mut inner, name).image = Some(image.to_string());
            if self.mode == Mode::Json {
                self.json_event(&ServiceEvent::Queued {
                    service: name.to_string(),
                    image: image.to_string(),
                });
            }
        }
        terminal::overall(&inner);
    }

    /// The tags each service's release will push (for the account of an interruption).
    pub fn expect_pushes<'a>(&self, pushes: impl IntoIterator<Item = (&'a str, Vec<String>)>) {
        let mut inner = self.lock();
        inner.pushes = true;
        for (service, tags) in pushes {
            self.svc(&mut inner, service).expected = tags;
        }
    }

    /// The service's entry, created (with its display line) on first mention.
    fn svc<'i>(&self, inner: &'i mut Inner, name: &str) -> &'i mut Svc {
        if !inner.services.contains_key(name) {
            let mut svc = Svc::new();
            if let Some(multi) = self.sink.multi().as_ref() {
                let width = inner.width.max(name.chars().count());
                let bar = ProgressBar::new_spinner()
                    .with_style(terminal::still_style(&terminal::idle_icon(), None))
                    .with_prefix(format!("{name:<width$}"))
                    .with_message(console::style("waiting").dim().to_string());
                let bar = match &inner.overall {
                    Some(overall) => multi.insert_before(overall, bar),
                    None => multi.add(bar),
                };
                svc.bar = Some(bar);
            }
            inner.services.insert(name.to_string(), svc);
            if inner.overall.is_none() {
                if let Some(multi) = self.sink.multi().as_ref() {
                    let bar = multi.add(ProgressBar::new_spinner().with_style(terminal::styled(
                        "{spinner:.green} {wide_msg} {secs:>7.dim}",
                    )));
                    bar.enable_steady_tick(terminal::TICK);
                    inner.overall = Some(bar);
                }
            }
        }
        inner.services.get_mut(name).expect("just inserted")
    }

    /// What happened to a service: its line in the live display, a plain line, or a JSON line.
    pub fn event(&self, event: &ServiceEvent) {
        use ServiceEvent as E;
        match event {
            E::Output { service, line } => return self.output(service, line),
            E::Upload {
                service,
                current,
                total,
            } => return self.upload(service, *current, *total),
            E::Warning { service, message } => {
                return self.warn(&format!("`{service}`: {message}"))
            }
            E::BuildFailed {
                service, log_tail, ..
            } => self.build_log_tail(service, log_tail),
            _ => {}
        }
        let service = event.service();
        let text = event.text();
        let mut inner = self.lock();
        let now = Instant::now();
        let svc = self.svc(&mut inner, service);
        let mut group: Option<(String, Vec<String>)> = None;
        // Whether the live display shows the event in the service's line (else it is printed
        // above the display).
        let mut in_line = true;
        match event {
            E::Queued { image, .. } => {
                svc.image = Some(image.clone());
            }
            E::Building { .. } => {
                svc.start(now);
                svc.status = Status::Building;
            }
            E::Built { .. } => {
                svc.start(now);
                svc.status = Status::Built;
                group = Some((
                    format!("{service}: build log"),
                    std::mem::take(&mut svc.build_log),
                ));
            }
            E::BuildFailed { message, .. } => {
                svc.start(now);
                svc.status = Status::Failed;
                svc.problem = Some(message.clone());
            }
            E::NotBuilt { reason, .. } => {
                svc.start(now);
                svc.status = Status::NotBuilt;
                svc.problem = Some(reason.clone());
            }
            E::Pushing { tag, .. } => {
                svc.start(now);
                svc.status = Status::Pushing;
                svc.in_flight = Some(tag.clone());
                svc.layers = (0, 0);
                svc.uploads.clear();
                svc.push_status = None;
            }
            E::Pushed { tag, digest, .. } => {
                svc.start(now);
                if !svc.landed.iter().any(|t| t == tag) {
                    svc.landed.push(tag.clone());
                }
                group = Some((
                    format!("{service}: push :{tag}"),
                    std::mem::take(&mut svc.push_log),
                ));
                svc.in_flight = None;
                svc.digest = Some(digest.clone());
                svc.status = Status::Pushed;
            }
            E::PushFailed { message, .. } => {
                svc.start(now);
                svc.in_flight = None;
                svc.status = Status::Failed;
                svc.problem = Some(message.clone());
            }
            E::Restored { tag, .. } => {
                // The tag names the release it named before: it is no longer this run's.
                svc.landed.retain(|t| t != tag);
                in_line = false;
            }
            E::Present {
                reference, digest, ..
            } => {
                svc.start(now);
                if let Some((_, tag)) = reference.rsplit_once(':') {
                    svc.landed.push(tag.to_string());
                }
                svc.digest = Some(digest.clone());
                if svc.status != Status::Missing {
                    svc.status = Status::Present;
                }
            }
            E::Missing { reference, .. } => {
                svc.start(now);
                svc.status = Status::Missing;
                svc.problem = Some(match svc.problem.take() {
                    Some(p) => format!("{p}, {reference}"),
                    None => reference.clone(),
                });
            }
            E::Unchanged { .. }
            | E::Retrying { .. }
            | E::CreatingRepository { .. }
            | E::NotRestored { .. }
            | E::EcsMatch { .. }
            | E::EcsMismatch { .. } => in_line = false,
            E::Output { .. } | E::Upload { .. } | E::Warning { .. } => {}
        }
        match self.mode {
            Mode::Json => self.json_event(event),
            Mode::Plain => {
                if let Some((title, lines)) = group.filter(|(_, l)| self.grouped() && !l.is_empty())
                {
                    self.sink.group(&title, &lines, &[]);
                }
                self.sink.line(&format!("[{service}] {text}"));
            }
            Mode::Tty => {
                if !in_line {
                    self.sink.line(&format!("[{service}] {text}"));
                }
                let svc = &inner.services[service];
                terminal::redraw(svc, inner.pushes);
            }
        }
        terminal::overall(&inner);
    }

    /// A service's build failed: the tail of its output (all of it with `-v`, which already
    /// showed it), before the failure itself.
    fn build_log_tail(&self, service: &str, log_tail: &[String]) {
        {
            let mut inner = self.lock();
            let svc = self.svc(&mut inner, service);
            let full = std::mem::take(&mut svc.build_log);
            match self.mode {
                Mode::Plain if self.grouped() => {
                    // The whole log folds into a group; its tail stays in view.
                    let tail: Vec<String> = if self.verbose {
                        Vec::new()
                    } else {
                        log_tail
                            .iter()
                            .map(|l| format!("[{service}] {l}"))
                            .collect()
                    };
                    self.sink
                        .group(&format!("{service}: build log"), &full, &tail);
                }
                _ if self.verbose => {}
                Mode::Json => {
                    for line in log_tail {
                        self.json_event(&ServiceEvent::Output {
                            service: service.to_string(),
                            line: line.clone(),
                        });
                    }
                }
                Mode::Plain | Mode::Tty => {
                    let out: Vec<String> = log_tail
                        .iter()
                        .map(|l| format!("[{service}] {l}"))
                        .collect();
                    self.sink.lines(out.iter().map(String::as_str));
                }
            }
        }
    }

    /// A line of a service's build or push output: shown with `-v` (the tail is shown anyway
    /// when the build fails); in GitHub Actions kept for the service's log group.
    pub fn output(&self, service: &str, line: &str) {
        let mut inner = self.lock();
        let grouped = self.grouped();
        let svc = self.svc(&mut inner, service);
        let pushing = svc.status == Status::Pushing;
        if grouped {
            let log = if pushing {
                &mut svc.push_log
            } else {
                &mut svc.build_log
            };
            if !pushing || self.verbose {
                log.push(line.to_string());
            }
        }
        if self.mode == Mode::Tty {
            let shown = terminal::clean(line);
            if pushing {
                if shown == "Preparing" {
                    svc.layers.1 += 1;
                } else if terminal::layer_done(&shown) {
                    svc.layers.0 += 1;
                }
                if !shown.is_empty() {
                    svc.push_status = Some(shown);
                }
            } else if let Some(step) = terminal::step_of(&shown) {
                svc.step = Some(step);
                svc.last_line = None;
            } else if !shown.is_empty() {
                svc.last_line = Some(shown);
            }
            let svc = &inner.services[service];
            terminal::redraw(svc, inner.pushes);
        }
        if self.verbose && !grouped {
            match self.mode {
                Mode::Json => self.json_event(&ServiceEvent::Output {
                    service: service.to_string(),
                    line: line.to_string(),
                }),
                Mode::Plain | Mode::Tty => self.sink.line(&format!("[{service}] {line}")),
            }
        }
    }

    /// Bytes of a layer uploaded so far (`total`: the layer's size): the live display shows
    /// the service's upload in MiB; the line modes stay quiet (the push's status lines and
    /// its outcome say what matters there).
    pub fn upload(&self, service: &str, current: u64, total: u64) {
        if self.mode != Mode::Tty {
            return;
        }
        let mut inner = self.lock();
        let svc = self.svc(&mut inner, service);
        if svc.status != Status::Pushing {
            return;
        }
        svc.uploads.insert(total, current.min(total));
        let svc = &inner.services[service];
        terminal::redraw(svc, inner.pushes);
    }

    /// The release's phase: a line of its own, and the overall line of the live display.
    pub fn phase(&self, phase: Phase) {
        let mut inner = self.lock();
        inner.phase = Some(phase.text().to_string());
        match self.mode {
            Mode::Json => {
                let line =
                    serde_json::json!({"event": "phase", "phase": phase, "message": phase.text()});
                self.sink.line(&line.to_string());
            }
            Mode::Plain => self.sink.line(phase.text()),
            Mode::Tty => {}
        }
        terminal::overall(&inner);
    }

    /// A project-level line of its own kind (the `event` of its JSON line).
    pub fn note(&self, note: Note, text: &str) {
        match self.mode {
            Mode::Json => {
                let line = serde_json::json!({"event": note, "message": text});
                self.sink.line(&line.to_string());
            }
            Mode::Plain | Mode::Tty => self.sink.line(text),
        }
    }

    /// How the command went, in a line (`built 3 service(s)`).
    pub fn summary(&self, text: &str) {
        let mut inner = self.lock();
        inner.summary = Some(text.to_string());
        match self.mode {
            Mode::Json => self.json("summary", text),
            Mode::Plain => self.sink.line(text),
            // The overall line shows the summary.
            Mode::Tty => {}
        }
        terminal::overall(&inner);
    }

    pub fn warn(&self, text: &str) {
        match self.mode {
            Mode::Json => self.json("warning", &format!("warning: {text}")),
            Mode::Plain if self.github.is_some() => self.sink.command(&Actions::warning(text)),
            _ => self.sink.line(&format!(
                "{} {text}",
                console::style("warning:").yellow().bold()
            )),
        }
    }

    /// The images of a release (or of a verification): their digests for the summary, and
    /// in GitHub Actions the step outputs `manifest` and `image-<service>`.
    pub fn released(&self, project: &str, images: &[ManifestImage]) -> Result<(), Failure> {
        {
            let mut inner = self.lock();
            for image in images {
                let svc = self.svc(&mut inner, &image.service);
                svc.digest = Some(image.digest.clone());
                svc.repository = Some(format!("{}/{}", image.registry, image.repository));
                svc.landed = image.tags.clone();
            }
        }
        let Some(actions) = &self.github else {
            return Ok(());
        };
        let mut outputs = vec![(
            "manifest".to_string(),
            Manifest { project, images }.to_json(),
        )];
        for image in images {
            outputs.push((format!("image-{}", image.service), image.uri.clone()));
        }
        actions.set_outputs(&outputs).map_err(|e| {
            Failure::failed(anyhow::anyhow!(
                "cannot write the step outputs to $GITHUB_OUTPUT: {e}"
            ))
        })
    }

    /// Ends the display once the command is done (`failure`: why it stopped): every line
    /// settles, the terminal is left as it was, and in GitHub Actions the job summary is
    /// written.
    pub fn finish(&self, failure: Option<&Failure>) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        inner.closed = true;
        let outcome = match failure {
            None => inner.summary.clone().unwrap_or_else(|| "done".into()),
            Some(f) => first_line(&f.to_string())
                .trim_start_matches("error: ")
                .trim_end_matches(':')
                .to_string(),
        };
        self.settle(&mut inner, failure.is_none(), &outcome, "not started");
        if self.grouped() {
            // Output not yet shown (a push that failed mid-way) still belongs in the log.
            for (name, svc) in inner.services.iter_mut() {
                for (what, log) in [
                    ("build log", &mut svc.build_log),
                    ("push", &mut svc.push_log),
                ] {
                    if !log.is_empty() {
                        self.sink
                            .group(&format!("{name}: {what}"), &std::mem::take(log), &[]);
                    }
                }
            }
        }
        let heading = match failure {
            None => outcome,
            Some(_) => format!("failed: {outcome}"),
        };
        self.write_summary(&inner, &heading);
    }

    /// Settles the live display: every line still; the overall line says how it ended.
    fn settle(&self, inner: &mut Inner, ok: bool, outcome: &str, idle: &str) {
        let took = self.started.elapsed();
        for svc in inner.services.values_mut() {
            if svc.status.active() {
                svc.last = Some(Instant::now());
                if let Some(bar) = &svc.bar {
                    bar.set_style(terminal::still_style(&terminal::fail_icon(), svc.elapsed()));
                    bar.set_message(console::style("stopped").red().to_string());
                    bar.disable_steady_tick();
                }
            } else if svc.status == Status::Waiting {
                if let Some(bar) = &svc.bar {
                    bar.set_message(console::style(idle).dim().to_string());
                }
            }
            if let Some(bar) = &svc.bar {
                bar.finish();
            }
        }
        if let Some(bar) = &inner.overall {
            let icon = if ok {
                terminal::ok_icon()
            } else {
                terminal::fail_icon()
            };
            bar.set_style(terminal::still_template(
                "{icon} {wide_msg} {took:>7.dim}",
                &icon,
                Some(took),
            ));
            bar.finish_with_message(outcome.to_string());
        }
        // Later lines (the error) go below the settled display.
        drop(self.sink.multi().take());
        if self.mode == Mode::Tty {
            terminal::echo::restore();
            let _ = console::Term::stderr().show_cursor();
        }
    }

    /// Reports the error that stopped wharf: text on stderr (a JSON `error` event in `json`
    /// mode), and in GitHub Actions an `::error::` annotation pointing at the compose file
    /// when the error names one.
    pub fn failure(&self, failure: &Failure) {
        let text = failure.to_string();
        if self.mode == Mode::Json {
            let event = serde_json::json!({
                "event": "error",
                "message": text.trim_start_matches("error: "),
                "exit_code": failure.exit_code(),
            });
            self.sink.line(&event.to_string());
        } else {
            self.sink.line(&text);
        }
        if let Some(actions) = &self.github {
            if self.mode != Mode::Json {
                let title = match failure.exit_code() {
                    2 => "wharf: configuration error",
                    _ => "wharf: failed",
                };
                let message = text.trim_start_matches("error: ");
                self.sink
                    .command(&actions.error(title, message, location(failure).as_ref()));
            }
        }
    }

    /// Appends the job summary in GitHub Actions.
    fn write_summary(&self, inner: &Inner, heading: &str) {
        let Some(actions) = &self.github else { return };
        let Some(md) = summary::markdown(inner, heading) else {
            return;
        };
        if let Err(e) = actions.append_summary(&wharf_compose::redact::userinfo(&md)) {
            self.sink.line(&format!(
                "warning: cannot write the job summary to $GITHUB_STEP_SUMMARY: {e}"
            ));
        }
    }

    /// Ctrl-C: stop the display, restore the terminal, and say what the release did so far
    /// (`left`: moving tags moved and not put back). The caller exits right after.
    pub fn interrupt(&self, left: &[String]) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        inner.closed = true;
        self.settle(&mut inner, false, "interrupted", "not started");
        let lines = summary::account(&inner, left);
        match self.mode {
            Mode::Json => {
                let list = |f: &dyn Fn(&Svc) -> Vec<String>| -> serde_json::Value {
                    inner
                        .services
                        .iter()
                        .flat_map(|(n, s)| f(s).into_iter().map(move |t| format!("{n}:{t}")))
                        .collect::<Vec<_>>()
                        .into()
                };
                let event = serde_json::json!({
                    "event": "interrupted",
                    "message": lines.join("\n"),
                    "landed": list(&|s| s.landed.clone()),
                    "in_flight": list(&|s| s.in_flight.iter().cloned().collect()),
                    "not_pushed": list(&summary::not_pushed),
                    "exit_code": 130,
                });
                self.sink.line(&event.to_string());
            }
            _ => self.sink.lines(lines.iter().map(String::as_str)),
        }
        if let Some(actions) = &self.github {
            if self.mode != Mode::Json {
                self.sink
                    .command(&actions.error("wharf: interrupted", &lines.join("\n"), None));
            }
        }
        self.write_summary(&inner, &lines[0]);
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The compose file (and line) an error is about, for the annotation.
fn location(failure: &Failure) -> Option<Location> {
    let (Failure::Config(e) | Failure::Failed(e) | Failure::Interrupted(e)) = failure;
    let compose = e
        .chain()
        .find_map(|c| c.downcast_ref::<wharf_compose::Error>())?;
    Some(Location {
        file: compose.file.as_ref()?.display().to_string(),
        line: compose.line,
        column: compose.column,
    })
}

/// Installs the Ctrl-C handler. While a release moves its moving tags, the first Ctrl-C asks
/// it to stop and put back what it moved (it then ends with exit 130 itself); otherwise, and
/// on a second Ctrl-C, the reporter settles the display and accounts for the release, then
/// wharf exits with 130 (128 + SIGINT), as shells expect.
pub fn exit_on_interrupt(reporter: Arc<Reporter>, interrupt: Interrupt) {
    let result = ctrlc::set_handler(move || {
        if interrupt.request() {
            reporter.warn(
                "interrupted: no more moving tags are moved, and the ones moved are put back (Ctrl-C again stops at once)",
            );
            return;
        }
        reporter.interrupt(&interrupt.left());
        std::process::exit(130);
    });
    if let Err(e) = result {
        tracing::debug!("no Ctrl-C handler: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_cargo() {
        assert_eq!(fmt_duration(Duration::from_millis(3240)), "3.2s");
        assert_eq!(fmt_duration(Duration::from_secs(64)), "1m04s");
    }

    /// A reporter that keeps its lines for the test to read.
    fn in_memory(mode: Mode, verbose: bool, github: Option<Actions>) -> Reporter {
        let mut r = Reporter::new(mode, verbose, github);
        r.sink = Arc::new(Sink {
            mode,
            multi: Mutex::new(None),
            memory: Some(Mutex::new(Vec::new())),
            github: r.github.is_some(),
        });
        r
    }

    fn lines(r: &Reporter) -> Vec<String> {
        r.sink.memory.as_ref().unwrap().lock().unwrap().clone()
    }

    fn reporter_with_release() -> Reporter {
        let r = in_memory(Mode::Json, false, None);
        r.begin(
            "shop",
            [("api", "shop/api"), ("worker", "shop/worker")],
            true,
        );
        r.expect_pushes([
            ("api", vec!["abc".to_string(), "latest".to_string()]),
            ("worker", vec!["abc".to_string(), "latest".to_string()]),
        ]);
        r
    }

    #[test]
    fn an_interruption_accounts_for_every_tag() {
        let r = reporter_with_release();
        r.event(&pushing("api", "abc"));
        r.event(&ServiceEvent::Pushed {
            service: "api".into(),
            tag: "abc".into(),
            digest: "sha256:1".into(),
        });
        r.event(&pushing("worker", "abc"));
        let inner = r.lock();
        assert_eq!(
            summary::account(&inner, &[]),
            vec![
                "interrupted: the release is incomplete",
                "  pushed: api (:abc)",
                "  under way (may or may not have landed): worker (:abc)",
                "  not pushed: api (:latest), worker (:latest)",
                "  run the same command again to finish the release",
            ]
        );
    }

    fn pushing(service: &str, tag: &str) -> ServiceEvent {
        ServiceEvent::Pushing {
            service: service.into(),
            tag: tag.into(),
        }
    }

    fn building(service: &str) -> ServiceEvent {
        ServiceEvent::Building {
            service: service.into(),
        }
    }

    #[test]
    fn a_restored_moving_tag_is_no_longer_counted_as_pushed() {
        let r = reporter_with_release();
        for service in ["api", "worker"] {
            for tag in ["abc", "latest"] {
                r.event(&ServiceEvent::Pushed {
                    service: service.into(),
                    tag: tag.into(),
                    digest: "sha256:1".into(),
                });
            }
        }
        r.event(&ServiceEvent::Restored {
            service: "api".into(),
            tag: "latest".into(),
            digest: Some("sha256:0".into()),
        });
        let account = summary::account(&r.lock(), &["h/worker:latest".to_string()]);
        assert_eq!(account[1], "  pushed: api (:abc), worker (:abc, :latest)");
        assert!(
            account
                .iter()
                .any(|l| l.contains("stopped while putting them back): h/worker:latest")),
            "{account:?}"
        );
        let json = lines(&r);
        let restored: serde_json::Value = serde_json::from_str(json.last().unwrap()).unwrap();
        assert_eq!(restored["event"], "restored");
        assert_eq!(restored["digest"], "sha256:0");
        assert_eq!(restored["message"], "restored :latest to sha256:0");
    }

    #[test]
    fn an_interruption_before_pushing_says_nothing_was_pushed() {
        let r = reporter_with_release();
        r.event(&building("api"));
        assert_eq!(
            summary::account(&r.lock(), &[]),
            vec!["interrupted before anything was pushed: nothing was pushed"]
        );
        let build_only = in_memory(Mode::Json, false, None);
        build_only.begin("shop", [("api", "shop/api")], false);
        assert_eq!(
            summary::account(&build_only.lock(), &[]),
            vec!["interrupted: nothing was pushed"]
        );
    }

    fn two_builds(r: &Reporter) {
        r.begin(
            "shop",
            [("api", "shop/api"), ("worker", "shop/worker")],
            false,
        );
        r.event(&building("api"));
        r.event(&building("worker"));
        r.output("api", "api line 1");
        r.output("worker", "worker line 1");
        r.output("api", "api line 2");
        r.event(&ServiceEvent::Built {
            service: "worker".into(),
            seconds: 1.0,
        });
        r.event(&ServiceEvent::BuildFailed {
            service: "api".into(),
            message: "exit code: 3".into(),
            log_tail: vec!["api line 2".to_string()],
        });
    }

    #[test]
    fn plain_lines_name_their_service_and_show_output_with_verbose() {
        let quiet = in_memory(Mode::Plain, false, None);
        two_builds(&quiet);
        assert_eq!(
            lines(&quiet),
            vec![
                "[api] building",
                "[worker] building",
                "[worker] built in 1.0s",
                "[api] api line 2",
                "[api] build failed: exit code: 3",
            ]
        );
        let verbose = in_memory(Mode::Plain, true, None);
        two_builds(&verbose);
        let shown = lines(&verbose);
        assert!(
            shown.contains(&"[worker] worker line 1".to_string()),
            "{shown:?}"
        );
        assert_eq!(
            shown.iter().filter(|l| *l == "[api] api line 2").count(),
            1,
            "with -v the tail is not repeated: {shown:?}"
        );
    }

    #[test]
    fn github_groups_hold_one_service_each_and_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let actions = Actions::for_files(dir.path().join("summary.md"), dir.path().join("out"));
        let r = in_memory(Mode::Plain, false, Some(actions));
        two_builds(&r);
        // Each group's lines sit between a stop-commands line and its resume line, with a
        // token of their own: the build's output can issue no workflow command.
        let mut shown = Vec::new();
        let mut stopped: Option<String> = None;
        for line in lines(&r) {
            if let Some(token) = line.strip_prefix("::stop-commands::") {
                assert!(stopped.is_none(), "{line}");
                stopped = Some(token.to_string());
            } else if stopped.as_ref().is_some_and(|t| line == format!("::{t}::")) {
                stopped = None;
            } else {
                let from_the_build = line.ends_with(" line 1") || line.ends_with(" line 2");
                let in_group = from_the_build && !line.starts_with('[');
                assert_eq!(stopped.is_some(), in_group, "{line}");
                shown.push(line);
            }
        }
        assert_eq!(
            shown,
            vec![
                "[api] building",
                "[worker] building",
                "::group::worker: build log",
                "worker line 1",
                "::endgroup::",
                "[worker] built in 1.0s",
                "::group::api: build log",
                "api line 1",
                "api line 2",
                "::endgroup::",
                "[api] api line 2",
                "[api] build failed: exit code: 3",
            ]
        );
        r.finish(None);
        let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        assert!(
            summary.contains("| service | image | tags | digest | duration |"),
            "{summary}"
        );
        assert!(
            summary.contains("| worker | `shop/worker` | — | built (not pushed) |"),
            "{summary}"
        );
        assert!(
            summary.contains("| api | `shop/api` | — | ❌ build failed: exit code: 3 |"),
            "{summary}"
        );
    }

    #[test]
    fn json_lines_are_objects_with_event_and_service() {
        let r = in_memory(Mode::Json, false, None);
        two_builds(&r);
        for line in lines(&r) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert!(v["event"].is_string() && v["service"].is_string(), "{line}");
        }
    }
}
