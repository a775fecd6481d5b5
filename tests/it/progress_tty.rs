//! The live display on a real terminal: wharf runs in a tmux pane (a real pty, 120×30), typed
//! in with `send-keys` and read back with `capture-pane`. It shows one line per service with
//! its state and an overall line while building, settles into a final summary, and on Ctrl-C
//! stops cleanly (exit 130, cursor visible, terminal echo restored, what was pushed said).
//! Needs the bed (daemon, base image, plain registry) and Debian's `tmux` package.

use crate::support::wharf::without_owned_env;
use crate::support::{bed_var, two_service_project, unique, wharf_bin, SHA};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket), killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(dir: &Path) -> Tmux {
        let version = Command::new("tmux").arg("-V").output();
        if !version.is_ok_and(|o| o.status.success()) {
            panic!(
                "tmux is not installed: this test drives wharf's terminal display through a real \
                 pty with tmux. Install Debian's `tmux` package (apt-get install tmux)."
            );
        }
        let t = Tmux {
            socket: unique("wharf-tty"),
        };
        // The server, and so the pane's shell, starts from the environment wharf sees when a
        // user types the command: none of the test machine's CI variables.
        let mut start = t.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "wharf",
            "-x",
            "120",
            "-y",
            "30",
        ]);
        start.arg("-c").arg(dir).arg("sh");
        without_owned_env(&mut start).status().expect("tmux starts");
        t
    }

    fn tmux(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]).args(args);
        c
    }

    fn type_line(&self, line: &str) {
        let ok = self
            .tmux(&["send-keys", "-t", "wharf", "-l", line])
            .status()
            .expect("send-keys");
        assert!(ok.success());
        self.keys("Enter");
    }

    fn keys(&self, key: &str) {
        let ok = self
            .tmux(&["send-keys", "-t", "wharf", key])
            .status()
            .expect("send-keys");
        assert!(ok.success());
    }

    fn screen(&self) -> String {
        let out = self
            .tmux(&["capture-pane", "-p", "-t", "wharf"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Captures the pane until `done` holds, failing with the last screen after `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn cursor_visible(&self) -> bool {
        let out = self
            .tmux(&["display-message", "-p", "-t", "wharf", "#{cursor_flag}"])
            .output()
            .expect("display-message");
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).status();
    }
}

/// Writes the script the pane runs: wharf with `args` as a user on a terminal would run it
/// (the pane has no CI variables: see [`Tmux::start`]), its exit code, then the terminal
/// settings it left behind. bash runs it: after Ctrl-C it goes on when its child exited
/// normally (wharf exits 130), where dash would stop the script.
fn script(dir: &Path, args: &str) {
    let wharf = wharf_bin().display();
    let text = format!(
        "export GITHUB_SHA={SHA}\n\
         clear\n\
         {wharf} {args}\n\
         echo \"wharf-exit=$?\"\n\
         stty -a > stty.txt\n"
    );
    std::fs::write(dir.join("run.sh"), text).expect("write the script");
}

/// The display lines of `service`: its name right after the state symbol.
fn lines_of<'a>(screen: &'a str, service: &str) -> Vec<&'a str> {
    screen
        .lines()
        .filter(|l| {
            let mut words = l.split_whitespace();
            words.next().is_some_and(|w| w.chars().count() == 1) && words.next() == Some(service)
        })
        .collect()
}

/// The screen once both services show as building (or wharf has already exited).
fn both_building(tmux: &Tmux) -> String {
    tmux.wait_for("both services building", Duration::from_secs(120), |s| {
        s.contains("wharf-exit=")
            || (lines_of(s, "api").iter().any(|l| l.contains("building"))
                && lines_of(s, "worker").iter().any(|l| l.contains("building")))
    })
}

fn echo_restored(dir: &Path) {
    // The shell runs `stty -a > stty.txt` after printing wharf's exit status, so the file may
    // still be empty when the screen shows that status: wait for stty to write it.
    let path = dir.join("stty.txt");
    let mut stty = String::new();
    for _ in 0..100 {
        stty = std::fs::read_to_string(&path).unwrap_or_default();
        if !stty.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let flags: Vec<&str> = stty.split_whitespace().collect();
    assert!(
        flags.contains(&"echo") && flags.contains(&"echoctl"),
        "the terminal echoes again: {stty}"
    );
}

#[test]
fn the_display_shows_each_service_then_a_summary() {
    let registry = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("tty");
    two_service_project(dir.path(), &prefix, 3, &bed_var("WHARF_TEST_BASE_IMAGE"));
    script(
        dir.path(),
        &format!("build --push --registry {registry} --tag '{{git_sha}}' --tag latest"),
    );
    let tmux = Tmux::start(dir.path());
    tmux.type_line("bash run.sh");

    // While building: a spinner line per service, and the overall line below them.
    let live = both_building(&tmux);
    assert!(
        !live.contains("wharf-exit="),
        "the display was never seen building:\n{live}"
    );
    assert!(
        live.lines()
            .any(|l| l.contains("building · ") && l.contains("/2 done")),
        "an overall line:\n{live}"
    );
    for line in lines_of(&live, "api") {
        assert!(
            line.trim_end().ends_with('s'),
            "elapsed time on the right: {line}"
        );
    }
    // BuildKit's steps, as the daemon names them: the RUN (step 2 of 3) takes seconds.
    let stepping = tmux.wait_for("the api's build step", Duration::from_secs(60), |s| {
        s.contains("wharf-exit=")
            || lines_of(s, "api")
                .iter()
                .any(|l| l.contains("step 2/3 RUN echo api"))
    });
    assert!(
        lines_of(&stepping, "api")
            .iter()
            .any(|l| l.contains("building · step 2/3 RUN echo api")),
        "the step under way on the service's line:\n{stepping}"
    );

    let done = tmux.wait_for("wharf to finish", Duration::from_secs(240), |s| {
        s.contains("wharf-exit=")
    });
    assert!(done.contains("wharf-exit=0"), "{done}");
    for service in ["api", "worker"] {
        let lines = lines_of(&done, service);
        assert_eq!(
            lines.len(),
            1,
            "one line for {service}, redrawn in place:\n{done}"
        );
        let line = lines[0];
        assert!(line.starts_with('✔'), "{line}");
        assert!(
            line.contains("pushed :0123456789abcdef0123456789abcdef01234567, :latest sha256:"),
            "{line}"
        );
    }
    let summary: Vec<&str> = done
        .lines()
        .filter(|l| l.starts_with("✔ released 2 image(s)"))
        .collect();
    assert_eq!(summary.len(), 1, "the final summary line:\n{done}");
    assert!(
        !done.contains('⠋') && !done.contains("building"),
        "no spinner left:\n{done}"
    );
    assert!(tmux.cursor_visible(), "the cursor is visible after wharf");
    echo_restored(dir.path());
}

#[test]
fn ctrl_c_stops_cleanly_and_says_nothing_was_pushed() {
    let registry = bed_var("WHARF_TEST_PLAIN_REGISTRY");
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("ttyint");
    two_service_project(dir.path(), &prefix, 120, &bed_var("WHARF_TEST_BASE_IMAGE"));
    script(dir.path(), &format!("build --push --registry {registry}"));
    let tmux = Tmux::start(dir.path());
    tmux.type_line("bash run.sh");
    let live = both_building(&tmux);
    assert!(!live.contains("wharf-exit="), "{live}");
    tmux.keys("C-c");
    let done = tmux.wait_for("wharf to stop", Duration::from_secs(30), |s| {
        s.contains("wharf-exit=")
    });
    assert!(
        done.contains("wharf-exit=130"),
        "exit 130 after Ctrl-C:\n{done}"
    );
    assert!(
        done.contains("interrupted before anything was pushed: nothing was pushed"),
        "{done}"
    );
    for service in ["api", "worker"] {
        let lines = lines_of(&done, service);
        assert_eq!(lines.len(), 1, "one line for {service}:\n{done}");
        assert!(
            lines[0].starts_with('✘') && lines[0].contains("stopped"),
            "{}",
            lines[0]
        );
    }
    assert!(
        done.lines().any(|l| l.starts_with("✘ interrupted")),
        "{done}"
    );
    assert!(
        !done.contains("^C"),
        "the terminal did not echo into the display:\n{done}"
    );
    assert!(tmux.cursor_visible(), "the cursor is visible after Ctrl-C");
    echo_restored(dir.path());
}
