//! The live display of `--progress tty`: how a service's state becomes its line (indicatif
//! styles, icons, the step or push detail), the overall line, and keeping the terminal's echo
//! out of the display while it is up.

use super::{fmt_duration, Inner, Status, Svc};
use indicatif::{ProgressState, ProgressStyle};
use std::time::Duration;

pub(super) fn short_digest(d: &str) -> &str {
    // `sha256:` and 12 hex digits, as docker shows image IDs.
    d.get(..19).unwrap_or(d)
}

/// A line of daemon output as one clean display line: no escape sequences, no control
/// characters.
pub(super) fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequences end at a letter; others are a single character.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' {
            out.push(' ');
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// The build step a line of daemon output announces: the classic builder's
/// `Step 2/5 : RUN make`, or a BuildKit vertex name `[2/5] RUN make` / `[build 2/4] COPY . .`.
pub(super) fn step_of(line: &str) -> Option<String> {
    let fraction = |s: &str| {
        let (k, n) = s.split_once('/')?;
        (k.parse::<u32>().is_ok() && n.parse::<u32>().is_ok()).then(|| format!("{k}/{n}"))
    };
    if let Some(rest) = line.strip_prefix("Step ") {
        let (frac, instruction) = rest.split_once(" : ")?;
        return Some(format!("step {} {instruction}", fraction(frac)?));
    }
    // BuildKit names a step again, prefixed, when its result comes from the cache.
    let line = line.strip_prefix("CACHED ").unwrap_or(line);
    let rest = line.strip_prefix('[')?;
    let (inside, instruction) = rest.split_once("] ")?;
    let (stage, frac) = match inside.rsplit_once(' ') {
        Some((stage, frac)) => (Some(stage), frac),
        None => (None, inside),
    };
    let frac = fraction(frac)?;
    Some(match stage {
        Some(stage) => format!("step {frac} ({stage}) {instruction}"),
        None => format!("step {frac} {instruction}"),
    })
}

/// `x/y MiB` of an upload.
pub(super) fn mib(done: u64, total: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    format!("{:.1}/{:.1} MiB", done as f64 / MIB, total as f64 / MIB)
}

/// Whether a push status line is the end of one layer.
pub(super) fn layer_done(status: &str) -> bool {
    status == "Pushed" || status == "Layer already exists" || status.starts_with("Mounted from")
}

pub(super) fn styled(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
        .with_key("secs", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}", fmt_duration(s.elapsed()));
        })
}

pub(super) fn active_style() -> ProgressStyle {
    styled("{spinner:.cyan} {prefix:.bold} {wide_msg} {secs:>7.dim}")
}

/// A line that no longer moves: an icon, and the time it took.
pub(super) fn still_style(icon: &str, took: Option<Duration>) -> ProgressStyle {
    still_template("{icon} {prefix:.bold} {wide_msg} {took:>7.dim}", icon, took)
}

pub(super) fn still_template(template: &str, icon: &str, took: Option<Duration>) -> ProgressStyle {
    let icon = icon.to_string();
    let took = took.map(fmt_duration).unwrap_or_default();
    styled(template)
        .with_key(
            "icon",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{icon}");
            },
        )
        .with_key(
            "took",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{took}");
            },
        )
}

pub(super) const TICK: Duration = Duration::from_millis(100);

pub(super) fn ok_icon() -> String {
    console::style("✔").green().to_string()
}

pub(super) fn fail_icon() -> String {
    console::style("✘").red().to_string()
}

pub(super) fn idle_icon() -> String {
    console::style("·").dim().to_string()
}

/// Keeps typed keys and the `^C` the terminal echoes on Ctrl-C out of the live display while it
/// is up: indicatif fills each line to the terminal's width, so any echo would land on a new
/// line and throw its line count off (the display would then redraw one line too low).
#[cfg(unix)]
pub(super) mod echo {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, Termios};
    use std::sync::Mutex;

    static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

    pub fn off() {
        let Ok(saved) = tcgetattr(std::io::stderr()) else {
            return;
        };
        let mut quiet = saved.clone();
        quiet
            .local_flags
            .remove(LocalFlags::ECHO | LocalFlags::ECHOCTL);
        if tcsetattr(std::io::stderr(), SetArg::TCSANOW, &quiet).is_ok() {
            *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        }
    }

    /// Puts the terminal back as it was (idempotent).
    pub fn restore() {
        if let Some(saved) = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tcsetattr(std::io::stderr(), SetArg::TCSANOW, &saved);
        }
    }
}

#[cfg(not(unix))]
pub(super) mod echo {
    pub fn off() {}
    pub fn restore() {}
}

/// Restores the terminal if wharf panics while the live display is up (a bug, but the user's
/// shell must not pay for it).
pub(super) fn restore_terminal_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        echo::restore();
        let _ = console::Term::stderr().show_cursor();
        previous(info);
    }));
}

/// The overall line: what phase wharf is in and how far it got.
pub(super) fn overall(inner: &Inner) {
    let Some(bar) = &inner.overall else { return };
    let total = inner.services.len();
    let count = |f: &dyn Fn(&Svc) -> bool| inner.services.values().filter(|s| f(s)).count();
    let failed = count(&|s| matches!(s.status, Status::Failed | Status::NotBuilt));
    // Builds and pushes overlap: while anything still builds, the line counts builds (and
    // the pushes already landed); the phase shows once only pushes remain.
    let building = count(&|s| matches!(s.status, Status::Waiting | Status::Building)) > 0;
    let msg = match &inner.phase {
        Some(phase) if !building => {
            let landed = count(&|s| s.status == Status::Pushed);
            format!("{phase} · {landed}/{total} service(s)")
        }
        _ => {
            let built = count(&|s| {
                matches!(
                    s.status,
                    Status::Built | Status::Pushed | Status::Present | Status::Missing
                )
            });
            let waiting = count(&|s| s.status == Status::Waiting);
            let mut m = format!("{built}/{total} done");
            if waiting < total && failed == 0 && built < total {
                m = format!("building · {m}");
            }
            let pushed = count(&|s| s.status == Status::Pushed);
            if pushed > 0 {
                m.push_str(&format!(", {pushed} pushed"));
            }
            if failed > 0 {
                m.push_str(&format!(", {failed} failed"));
            }
            m
        }
    };
    let msg = match &inner.summary {
        Some(s) => format!("{s} · {msg}"),
        None => msg,
    };
    bar.set_message(msg);
}

/// Redraws a service's line from its state (`pushes`: a push follows the build).
pub(super) fn redraw(svc: &Svc, pushes: bool) {
    let Some(bar) = &svc.bar else { return };
    let took = svc.elapsed();
    let (style, active, msg) = match svc.status {
        Status::Waiting => (
            still_style(&idle_icon(), None),
            false,
            console::style("waiting").dim().to_string(),
        ),
        Status::Building => {
            let detail = match (&svc.step, &svc.last_line) {
                (Some(step), Some(line)) if !step.ends_with(line.as_str()) => {
                    format!(" · {step} · {line}")
                }
                (Some(step), _) => format!(" · {step}"),
                (None, Some(line)) => format!(" · {line}"),
                (None, None) => String::new(),
            };
            (active_style(), true, format!("building{detail}"))
        }
        Status::Pushing => {
            let tag = svc.in_flight.clone().unwrap_or_default();
            let mut m = format!("pushing :{tag}");
            if svc.layers.1 > 0 {
                m.push_str(&format!(" · {}/{} layers", svc.layers.0, svc.layers.1));
            }
            if !svc.uploads.is_empty() {
                let (done, total) = svc
                    .uploads
                    .iter()
                    .fold((0u64, 0u64), |(d, t), (size, cur)| (d + cur, t + size));
                m.push_str(&format!(" · {}", mib(done, total)));
            }
            if let Some(s) = &svc.push_status {
                m.push_str(&format!(" · {s}"));
            }
            (active_style(), true, m)
        }
        Status::Built => (
            still_style(&ok_icon(), took),
            false,
            match (&svc.image, pushes) {
                (Some(image), false) => format!("built {image}"),
                (Some(image), true) => format!("built {image} · waiting to push"),
                (None, _) => "built".to_string(),
            },
        ),
        Status::Failed => (
            still_style(&fail_icon(), took),
            false,
            console::style(format!("failed: {}", svc.problem.as_deref().unwrap_or("")))
                .red()
                .to_string(),
        ),
        Status::NotBuilt => (
            still_style(&console::style("–").dim().to_string(), None),
            false,
            format!("not built: {}", svc.problem.as_deref().unwrap_or("")),
        ),
        Status::Pushed | Status::Present => {
            let verb = if svc.status == Status::Pushed {
                "pushed"
            } else {
                "present"
            };
            let tags: Vec<String> = svc.landed.iter().map(|t| format!(":{t}")).collect();
            let digest = svc.digest.as_deref().map(short_digest).unwrap_or("");
            (
                still_style(&ok_icon(), took),
                false,
                format!("{verb} {} {digest}", tags.join(", ")),
            )
        }
        Status::Missing => (
            still_style(&fail_icon(), took),
            false,
            console::style(format!("missing: {}", svc.problem.as_deref().unwrap_or("")))
                .red()
                .to_string(),
        ),
    };
    bar.set_style(style);
    bar.set_message(msg);
    if active {
        bar.enable_steady_tick(TICK);
    } else {
        bar.disable_steady_tick();
        bar.tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_in_mib() {
        assert_eq!(mib(3 * 1024 * 1024 / 2, 8 * 1024 * 1024), "1.5/8.0 MiB");
    }

    #[test]
    fn cached_steps_count_too() {
        assert_eq!(
            step_of("CACHED [2/3] COPY . /app").as_deref(),
            Some("step 2/3 COPY . /app")
        );
    }

    #[test]
    fn steps_of_both_builders() {
        assert_eq!(
            step_of("Step 2/5 : RUN make").as_deref(),
            Some("step 2/5 RUN make")
        );
        assert_eq!(
            step_of("[2/3] RUN echo hi").as_deref(),
            Some("step 2/3 RUN echo hi")
        );
        assert_eq!(
            step_of("[build 2/4] COPY . .").as_deref(),
            Some("step 2/4 (build) COPY . .")
        );
        assert_eq!(step_of("[internal] load build definition"), None);
        assert_eq!(step_of("Step right up"), None);
        assert_eq!(step_of("hello"), None);
    }

    #[test]
    fn output_is_cleaned_for_one_line() {
        assert_eq!(clean("\u{1b}[31mred\u{1b}[0m\ttext\r"), "red text");
    }

    #[test]
    fn push_status_lines_count_layers() {
        assert!(layer_done("Pushed"));
        assert!(layer_done("Layer already exists"));
        assert!(layer_done("Mounted from shop/api"));
        assert!(!layer_done("Pushing"));
        assert!(!layer_done("Preparing"));
    }
}
