//! Deadlines for everything wharf waits on, so that nothing hangs.
//!
//! One setting (`--timeout`, env `WHARF_TIMEOUT`) gives the per-request deadline; the idle
//! limits of the daemon's streams follow from it. A stream that prints nothing is not the
//! same as a dead connection, so those limits are longer:
//! - a push prints progress several times a second while bytes move (a slow 2 GB upload
//!   included); a daemon waiting on a registry that stopped answering prints nothing. Its
//!   idle limit is ten request deadlines (5 minutes by default).
//! - a build may run a `RUN` step that prints nothing for a long time (a compiler, a test
//!   suite). Its idle limit is sixty request deadlines (30 minutes by default).

use std::time::Duration;

/// The deadlines of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One registry, AWS or daemon request, from connecting to its answer.
    pub request: Duration,
    /// The longest silence of the daemon's push stream.
    pub push_idle: Duration,
    /// The longest silence of the daemon's build stream.
    pub build_idle: Duration,
}

impl Timeouts {
    /// The per-request deadline when none is given.
    pub const DEFAULT_REQUEST: Duration = Duration::from_secs(15);

    /// The deadlines that follow from a per-request deadline.
    pub fn from_request(request: Duration) -> Timeouts {
        Timeouts {
            request,
            push_idle: request.saturating_mul(20),
            build_idle: request.saturating_mul(120),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::from_request(Timeouts::DEFAULT_REQUEST)
    }
}

/// Reads a duration as `--timeout` takes it: `90s`, `2m`, `1m30s`, `500ms`, or bare seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an empty duration".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}): write it as 30s, 2m or 1m30s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_limits_follow_the_request_deadline() {
        let t = Timeouts::default();
        assert_eq!(t.request, Duration::from_secs(15));
        assert_eq!(t.push_idle, Duration::from_secs(300));
        assert_eq!(t.build_idle, Duration::from_secs(1800));
    }

    #[test]
    fn durations_read_as_users_write_them() {
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").unwrap_err().contains("30s"));
        assert!(parse_duration("").is_err());
    }
}
