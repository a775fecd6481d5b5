//! Whether an engine can run a platform's `RUN` steps: natively (its own architecture), through
//! an emulator the kernel runs foreign binaries with (QEMU user emulation registered in
//! binfmt_misc), or not at all. Asked before building, where it can be known: the engine tells
//! its architecture, and the host's binfmt_misc is readable when the engine runs on this host
//! (a local socket). Otherwise the build's first foreign step fails with `exec format error`,
//! which [`explain_failure`] recognises.

use crate::platform::Platform;
use std::path::Path;

/// How an engine runs a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runs {
    Natively,
    /// Through the named binfmt_misc handler.
    Emulated(String),
    /// It cannot: why.
    Cannot(String),
    /// Not known before building (a remote engine, an architecture wharf does not map).
    Unknown,
}

/// Whether binfmt_misc on this host lets an engine of `native` run `wanted`. `binfmt` is the
/// binfmt_misc folder (`/proc/sys/fs/binfmt_misc`).
pub fn runs(native: &Platform, wanted: &Platform, binfmt: Option<&Path>) -> Runs {
    if native.os != wanted.os {
        return Runs::Cannot(format!(
            "the engine runs {} containers, not {}",
            native.os, wanted.os
        ));
    }
    let same = native.architecture == wanted.architecture
        || (native.architecture == "amd64" && wanted.architecture == "386")
        || (native.architecture == "arm64" && wanted.architecture == "arm");
    if same {
        return Runs::Natively;
    }
    let Some(dir) = binfmt else {
        return Runs::Unknown;
    };
    let Some(machine) = wanted.machine() else {
        return Runs::Unknown;
    };
    let status = std::fs::read_to_string(dir.join("status"));
    match status.as_deref().map(str::trim) {
        Err(_) => {
            return Runs::Cannot(format!(
            "binfmt_misc is not mounted on this host ({}), so no emulator runs {machine} binaries",
            dir.display()
        ))
        }
        Ok("disabled") => return Runs::Cannot("binfmt_misc is disabled on this host".into()),
        Ok(_) => {}
    }
    let name = format!("qemu-{machine}");
    match std::fs::read_to_string(dir.join(&name)) {
        Ok(entry) if entry.lines().next() == Some("enabled") => Runs::Emulated(name),
        Ok(_) => Runs::Cannot(format!(
            "this host's emulator for {machine} ({name} in binfmt_misc) is disabled"
        )),
        Err(_) => Runs::Cannot(format!(
            "this host has no emulator registered for {machine} (no {name} in binfmt_misc)"
        )),
    }
}

/// The two ways out when an engine cannot run `platform`.
pub fn ways_out(platform: &Platform) -> String {
    let machine = platform.machine().unwrap_or(&platform.architecture);
    format!(
        "register QEMU user emulation on the engine's host (Debian: apt-get install qemu-user-static binfmt-support; or docker run --privileged --rm tonistiigi/binfmt --install {arch}), \
         or build {platform} on a native engine: x-wharf.engines: {{\"{platform}\": \"ssh://user@{machine}-builder\"}} in the compose file, or WHARF_ENGINES={platform}=tcp://{machine}-builder:2376",
        arch = platform.architecture,
    )
}

/// A failed build's message with the cause said, when a foreign step could not be run (the
/// kernel's `exec format error`).
pub fn explain_failure(platform: &Platform, message: &str, log_tail: &[String]) -> Option<String> {
    let foreign = |t: &str| t.contains("exec format error");
    if !foreign(message) && !log_tail.iter().any(|l| foreign(l)) {
        return None;
    }
    Some(format!(
        "{message}\n  the engine cannot run {platform} binaries (exec format error): {}",
        ways_out(platform)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn native_emulated_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let amd64 = p("linux/amd64");
        assert_eq!(runs(&amd64, &amd64, None), Runs::Natively);
        assert_eq!(runs(&amd64, &p("linux/386"), None), Runs::Natively);
        assert_eq!(runs(&amd64, &p("linux/arm64"), None), Runs::Unknown);
        assert!(matches!(
            runs(&amd64, &p("windows/amd64"), None),
            Runs::Cannot(_)
        ));
        // Not mounted.
        assert!(matches!(
            runs(&amd64, &p("linux/arm64"), Some(dir.path())),
            Runs::Cannot(why) if why.contains("not mounted")
        ));
        std::fs::write(dir.path().join("status"), "enabled\n").unwrap();
        std::fs::write(
            dir.path().join("qemu-aarch64"),
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("qemu-s390x"), "disabled\n").unwrap();
        assert_eq!(
            runs(&amd64, &p("linux/arm64"), Some(dir.path())),
            Runs::Emulated("qemu-aarch64".into())
        );
        assert!(matches!(
            runs(&amd64, &p("linux/s390x"), Some(dir.path())),
            Runs::Cannot(why) if why.contains("disabled")
        ));
        assert!(matches!(
            runs(&amd64, &p("linux/riscv64"), Some(dir.path())),
            Runs::Cannot(why) if why.contains("no qemu-riscv64")
        ));
    }

    #[test]
    fn exec_format_errors_name_the_ways_out() {
        let arm = p("linux/arm64");
        assert!(explain_failure(&arm, "failed to solve: exit code 1", &[]).is_none());
        let text = explain_failure(
            &arm,
            "process \"/bin/sh -c make\" did not complete successfully",
            &["exec /bin/sh: exec format error".into()],
        )
        .unwrap();
        assert!(
            text.contains("register QEMU") && text.contains("WHARF_ENGINES=linux/arm64="),
            "{text}"
        );
    }
}
