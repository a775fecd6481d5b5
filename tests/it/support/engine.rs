//! The bed's two engines: Docker 20.10 (the default socket, one image per name) and Docker 26
//! with the containerd image store (`WHARF_TEST_DOCKER26_HOST`). Each holds its own images, so
//! a test on one engine makes every daemon call of its own (docker CLI, wharf) on that engine.

use super::bed::bed_var;
use super::wharf::wharf;
use std::path::Path;
use std::process::Command;

/// The engine a test drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Docker20,
    Docker26,
}

impl Engine {
    /// The engine's `DOCKER_HOST`; `None` for the default socket.
    pub fn host(self) -> Option<String> {
        match self {
            Engine::Docker20 => None,
            Engine::Docker26 => Some(bed_var("WHARF_TEST_DOCKER26_HOST")),
        }
    }

    /// Points `c` (wharf or the docker CLI) at this engine.
    pub fn apply(self, c: &mut Command) -> &mut Command {
        if let Some(h) = self.host() {
            c.env("DOCKER_HOST", h);
        }
        c
    }

    /// The docker CLI, talking to this engine.
    pub fn docker(self) -> Command {
        let mut c = Command::new("docker");
        self.apply(&mut c);
        c
    }

    /// Removes this engine's images whose name holds `part` (a test's unique prefix), as a
    /// fresh CI runner has none of them.
    pub fn forget_images(self, part: &str) {
        let out = self
            .docker()
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
            .expect("docker runs");
        let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(part))
            .map(str::to_string)
            .collect();
        if !names.is_empty() {
            let rmi = self
                .docker()
                .args(["rmi", "-f"])
                .args(&names)
                .output()
                .expect("docker rmi runs");
            assert!(rmi.status.success(), "{rmi:?}");
        }
    }

    /// Runs `cmd` in a fresh container of `image` on this engine and returns its output.
    pub fn run_in(self, image: &str, cmd: &str) -> String {
        let out = self
            .docker()
            .args(["run", "--rm", image, "sh", "-c", cmd])
            .output()
            .expect("docker runs");
        assert!(
            out.status.success(),
            "docker run {image} {cmd} on {self:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// The wharf binary in `dir` (see [`wharf`]), on `engine`, for commit `sha`.
pub fn wharf_on(engine: Engine, dir: &Path, sha: &str) -> Command {
    let mut c = wharf(dir);
    c.env("GITHUB_SHA", sha);
    engine.apply(&mut c);
    c
}
