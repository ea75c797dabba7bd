//! How the web UI shows values: status badges (a colour class, a symbol and a word), durations,
//! relative and absolute times, short commit ids, ref names, and query strings. Pure functions,
//! so the pages and the live-log state agree on every word.

use crate::store::{JobStatus, RunStatus, StepStatus};
use gantry_protocol::{Conclusion, FailureReason};

/// A coloured status: `class` picks the colour (`status-success`...), `symbol` says the same
/// for people who do not see the colour, `label` is the word.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Badge {
    pub class: &'static str,
    pub symbol: &'static str,
    pub label: String,
}

impl Badge {
    fn new(class: &'static str, symbol: &'static str, label: impl Into<String>) -> Badge {
        Badge {
            class,
            symbol,
            label: label.into(),
        }
    }

    /// The badge of a finished thing.
    pub fn concluded(conclusion: Conclusion) -> Badge {
        match conclusion {
            Conclusion::Success => Badge::new("status-success", "✓", "success"),
            Conclusion::Failure => Badge::new("status-failure", "✗", "failure"),
            Conclusion::Cancelled => Badge::new("status-cancelled", "⊘", "cancelled"),
            Conclusion::Skipped => Badge::new("status-skipped", "↷", "skipped"),
        }
    }

    pub fn run(status: RunStatus, conclusion: Option<Conclusion>) -> Badge {
        match (status, conclusion) {
            (RunStatus::Completed, Some(conclusion)) => Badge::concluded(conclusion),
            (RunStatus::Completed, None) => Badge::new("status-skipped", "•", "completed"),
            (RunStatus::InProgress, _) => Badge::new("status-running", "●", "in progress"),
            (RunStatus::Queued, _) => Badge::new("status-queued", "○", "queued"),
        }
    }

    pub fn job(status: JobStatus, conclusion: Option<Conclusion>) -> Badge {
        match (status, conclusion) {
            (JobStatus::Completed, Some(conclusion)) => Badge::concluded(conclusion),
            (JobStatus::Completed, None) => Badge::new("status-skipped", "•", "completed"),
            (JobStatus::Running, _) => Badge::new("status-running", "●", "running"),
            (JobStatus::Queued, _) => Badge::new("status-queued", "○", "queued"),
            (JobStatus::Waiting, _) => Badge::new("status-waiting", "◌", "waiting"),
        }
    }

    pub fn step(status: StepStatus, conclusion: Option<Conclusion>) -> Badge {
        match (status, conclusion) {
            (StepStatus::Completed, Some(conclusion)) => Badge::concluded(conclusion),
            (StepStatus::Completed, None) => Badge::new("status-skipped", "•", "completed"),
            (StepStatus::Running, _) => Badge::new("status-running", "●", "running"),
            (StepStatus::Pending, _) => Badge::new("status-waiting", "◌", "pending"),
        }
    }

    /// A job that has no row: waiting for the jobs it needs.
    pub fn pending() -> Badge {
        Badge::new("status-waiting", "◌", "pending")
    }
}

/// Why a job ended as it did, in words.
pub fn reason_text(reason: &FailureReason) -> String {
    match reason {
        FailureReason::StepFailed => "a step failed".to_owned(),
        FailureReason::TimedOut => "the job ran past its timeout".to_owned(),
        FailureReason::Cancelled => "cancelled".to_owned(),
        FailureReason::SetupFailed(detail) => format!("could not start: {detail}"),
        FailureReason::AgentLost => "the agent running it stopped answering".to_owned(),
    }
}

/// A duration in milliseconds as people read it: `850ms`, `12s`, `3m 04s`, `1h 02m`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let seconds = ms / 1000;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// The time between `start` and `end`, or between `start` and `now` while it runs; empty when it
/// has not started.
pub fn elapsed(start: Option<i64>, end: Option<i64>, now: i64) -> String {
    match (start, end) {
        (Some(start), Some(end)) => duration(end - start),
        (Some(start), None) => duration(now - start),
        _ => String::new(),
    }
}

/// How long ago `ms` was: `just now`, `5 minutes ago`, `3 days ago`.
pub fn relative(ms: i64, now: i64) -> String {
    let seconds = (now - ms) / 1000;
    if seconds < 0 {
        return "in the future".to_owned();
    }
    let (n, unit) = match seconds {
        0..10 => return "just now".to_owned(),
        10..60 => (seconds, "second"),
        60..3600 => (seconds / 60, "minute"),
        3600..86_400 => (seconds / 3600, "hour"),
        86_400..2_592_000 => (seconds / 86_400, "day"),
        2_592_000..31_536_000 => (seconds / 2_592_000, "month"),
        _ => (seconds / 31_536_000, "year"),
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural} ago")
}

/// `2026-01-01 12:00:05 UTC`.
pub fn absolute(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(time) => time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => String::new(),
    }
}

/// `2026-01-01T12:00:05Z`, for `<time datetime>`.
pub fn iso(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(time) => time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => String::new(),
    }
}

/// A moment shown relative to now, with the exact time at hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct When {
    pub relative: String,
    pub absolute: String,
    pub iso: String,
}

impl When {
    pub fn new(ms: i64, now: i64) -> When {
        When {
            relative: relative(ms, now),
            absolute: absolute(ms),
            iso: iso(ms),
        }
    }

    pub fn maybe(ms: Option<i64>, now: i64) -> Option<When> {
        ms.map(|ms| When::new(ms, now))
    }
}

/// The first 7 characters of a commit id.
pub fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// A ref as people say it: `main` for `refs/heads/main`, `v1.0` for `refs/tags/v1.0`,
/// `#12` for `refs/pull/12/merge`.
pub fn ref_name(git_ref: &str) -> String {
    if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        return branch.to_owned();
    }
    if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        return tag.to_owned();
    }
    if let Some(pull) = git_ref.strip_prefix("refs/pull/")
        && let Some((number, _)) = pull.split_once('/')
    {
        return format!("#{number}");
    }
    git_ref.to_owned()
}

/// Percent-encodes a query string value (everything but unreserved characters).
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A query string (`?a=1&b=x`) from the pairs whose value is not empty; empty when none is.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{key}={}", encode_query_value(value)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The path of a repository's page: `/repos/owner/name`, each segment encoded.
pub fn repository_path(name: &str) -> String {
    let segments: Vec<String> = name.split('/').map(encode_query_value).collect();
    format!("/repos/{}", segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        let check = |ms, expected: &str| assert_eq!(duration(ms), expected, "{ms}");
        check(-5, "0ms");
        check(850, "850ms");
        check(12_400, "12s");
        check(184_000, "3m 04s");
        check(3_720_000, "1h 02m");
    }

    #[test]
    fn relative_times_round_down() {
        let now = 1_000_000_000;
        let check = |ago_s: i64, expected: &str| {
            assert_eq!(relative(now - ago_s * 1000, now), expected, "{ago_s}");
        };
        check(3, "just now");
        check(45, "45 seconds ago");
        check(60, "1 minute ago");
        check(7200, "2 hours ago");
        check(86_400 * 3, "3 days ago");
        assert_eq!(relative(now + 60_000, now), "in the future");
    }

    #[test]
    fn refs_are_shortened() {
        assert_eq!(ref_name("refs/heads/feature/x"), "feature/x");
        assert_eq!(ref_name("refs/tags/v1.0"), "v1.0");
        assert_eq!(ref_name("refs/pull/12/merge"), "#12");
        assert_eq!(ref_name("HEAD"), "HEAD");
        assert_eq!(short_sha("0123456789abcdef"), "0123456");
        assert_eq!(short_sha("abc"), "abc");
    }

    #[test]
    fn query_strings_encode_values_and_drop_empty_ones() {
        assert_eq!(
            query_string(&[("repo", "owner/a b"), ("branch", ""), ("status", "queued")]),
            "?repo=owner%2Fa%20b&status=queued"
        );
        assert_eq!(query_string(&[("repo", "")]), "");
        assert_eq!(repository_path("owner/my repo"), "/repos/owner/my%20repo");
    }

    #[test]
    fn badges_carry_a_symbol_besides_the_colour() {
        let badge = Badge::run(RunStatus::Completed, Some(Conclusion::Failure));
        assert_eq!((badge.class, badge.symbol), ("status-failure", "✗"));
        assert_eq!(Badge::job(JobStatus::Running, None).label, "running");
    }
}
