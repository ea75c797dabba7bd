//! The terminal view of a local run: live output with a coloured job prefix, step markers,
//! groups and annotations; `--quiet` shows only what failed; `--json` prints the raw event stream.
//! At the end, the summary table, the failing steps' last lines and the step summaries.

use super::store::RunSummary;
use gantry_protocol::{AnnotationLevel, Conclusion, Event, EventKind};
use owo_colors::{AnsiColors, OwoColorize};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    Live,
    Quiet,
    Json,
}

/// Lines of a step kept in `--quiet` mode, shown if the step fails.
const QUIET_BUFFER_LINES: usize = 500;

/// Longest part of a line shown on the terminal (bytes); the rest is counted, and kept in the
/// job's log. The runner sends longer lines in pieces: they are shown once, not piece by piece.
pub const MAX_SHOWN_LINE: usize = 64 * 1024;

const PALETTE: [AnsiColors; 6] = [
    AnsiColors::Cyan,
    AnsiColors::Magenta,
    AnsiColors::Blue,
    AnsiColors::Yellow,
    AnsiColors::Green,
    AnsiColors::BrightCyan,
];

pub struct Printer {
    mode: OutputMode,
    show_debug: bool,
    out: Box<dyn Write + Send>,
    jobs: HashMap<String, JobView>,
}

struct JobView {
    label: String,
    color: AnsiColors,
    steps: HashMap<usize, String>,
    /// `--quiet`: buffered lines of the running step.
    buffered: VecDeque<String>,
    /// `--quiet`: the lines of the last step stopped by a cancel, shown if the job fails
    /// (it timed out there).
    stopped: Vec<String>,
    /// The shown start of a line that arrives in pieces.
    partial: String,
    /// Bytes of that line beyond `MAX_SHOWN_LINE`, not shown.
    elided: usize,
}

impl JobView {
    /// Takes a piece of a line; returns the whole line (as shown) when the piece ends it.
    fn take_piece<'p>(&mut self, piece: &'p str) -> Option<Cow<'p, str>> {
        let (text, ends) = match piece.strip_suffix('\n') {
            Some(text) => (text.strip_suffix('\r').unwrap_or(text), true),
            None => (piece, false),
        };
        // The common case, a whole line of readable length: shown as it is, no copy.
        if ends && self.partial.is_empty() && self.elided == 0 && text.len() <= MAX_SHOWN_LINE {
            return Some(Cow::Borrowed(text));
        }
        let room = MAX_SHOWN_LINE.saturating_sub(self.partial.len());
        let mut cut = room.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.partial.push_str(&text[..cut]);
        self.elided += text.len() - cut;
        if !ends {
            return None;
        }
        let mut line = std::mem::take(&mut self.partial);
        if self.elided > 0 {
            line.push_str(&format!(
                " … [{} more bytes of this line in the job's log]",
                self.elided
            ));
            self.elided = 0;
        }
        Some(Cow::Owned(line))
    }
}

impl Printer {
    /// A printer writing to `out` (an anstream stream strips colour when it is not a terminal).
    pub fn new(mode: OutputMode, show_debug: bool, out: Box<dyn Write + Send>) -> Printer {
        Printer {
            mode,
            show_debug,
            out,
            jobs: HashMap::new(),
        }
    }

    pub fn stdout(mode: OutputMode, show_debug: bool) -> Printer {
        Printer::new(mode, show_debug, Box::new(anstream::stdout()))
    }

    /// Names a job before its events arrive (the label shown in front of its lines).
    pub fn register_job(&mut self, key: &str, label: &str) {
        let color = PALETTE[stable_hash(key) % PALETTE.len()];
        self.jobs.insert(
            key.to_owned(),
            JobView {
                label: label.to_owned(),
                color,
                steps: HashMap::new(),
                buffered: VecDeque::new(),
                stopped: Vec::new(),
                partial: String::new(),
                elided: 0,
            },
        );
    }

    pub fn on_event(&mut self, event: &Event) {
        if self.mode == OutputMode::Json {
            if let Ok(line) = serde_json::to_string(event) {
                let _ = writeln!(self.out, "{line}");
            }
            return;
        }
        if !self.jobs.contains_key(&event.job) {
            let label = match &event.kind {
                EventKind::JobStarted { name } | EventKind::JobSkipped { name, .. } => name.clone(),
                _ => event.job.clone(),
            };
            self.register_job(&event.job, &label);
        }
        let quiet = self.mode == OutputMode::Quiet;
        let show_debug = self.show_debug;
        let Some(job) = self.jobs.get_mut(&event.job) else {
            return;
        };
        let prefix = format!("[{}]", job.label)
            .color(job.color)
            .bold()
            .to_string();
        let mut lines: Vec<String> = Vec::new();
        match &event.kind {
            EventKind::JobStarted { .. } => {
                if !quiet {
                    lines.push(format!("{prefix} {}", "Job started".dimmed()));
                }
            }
            EventKind::JobSkipped { reason, .. } => {
                if !quiet {
                    lines.push(format!("{prefix} {} {reason}", "skipped:".dimmed()));
                }
            }
            EventKind::StepStarted { step, name } => {
                job.steps.insert(*step, name.clone());
                job.buffered.clear();
                let line = format!("{prefix} {} {}", "▶".bold(), name.bold());
                if quiet {
                    job.buffered.push_back(line);
                } else {
                    lines.push(line);
                }
            }
            EventKind::Log { text, .. } => {
                if quiet {
                    // Only the last lines are kept: lines followed by more than a buffer's
                    // worth scroll out unseen and are skipped (a line left open before them
                    // ends among them).
                    let start = super::summary::last_pieces_start(text, QUIET_BUFFER_LINES + 1);
                    if start > 0 {
                        job.partial.clear();
                        job.elided = 0;
                    }
                    for piece in text[start..].split_inclusive('\n') {
                        if let Some(line) = job.take_piece(piece) {
                            job.buffered.push_back(format!("{prefix} {line}"));
                        }
                    }
                    let over = job.buffered.len().saturating_sub(QUIET_BUFFER_LINES);
                    job.buffered.drain(..over);
                } else {
                    // One write for the whole chunk.
                    let mut out = String::with_capacity(text.len() + text.len() / 8);
                    for piece in text.split_inclusive('\n') {
                        if let Some(line) = job.take_piece(piece) {
                            out.push_str(&prefix);
                            out.push(' ');
                            out.push_str(&line);
                            out.push('\n');
                        }
                    }
                    let _ = self.out.write_all(out.as_bytes());
                }
            }
            EventKind::GroupStarted { title, .. } => {
                let line = format!("{prefix} {} {}", "▼".dimmed(), title.bold());
                if quiet {
                    job.buffered.push_back(line);
                } else {
                    lines.push(line);
                }
            }
            EventKind::GroupEnded { .. } => {}
            EventKind::Annotation { annotation, .. } => {
                let location = match (&annotation.file, annotation.line, annotation.column) {
                    (Some(f), Some(l), Some(c)) => format!(" ({f}:{l}:{c})"),
                    (Some(f), Some(l), None) => format!(" ({f}:{l})"),
                    (Some(f), None, _) => format!(" ({f})"),
                    _ => String::new(),
                };
                let title = annotation
                    .title
                    .as_deref()
                    .map(|t| format!("{t}: "))
                    .unwrap_or_default();
                let line = match annotation.level {
                    AnnotationLevel::Error => format!(
                        "{prefix} {} {title}{}{location}",
                        "error:".red().bold(),
                        annotation.message.red()
                    ),
                    AnnotationLevel::Warning => format!(
                        "{prefix} {} {title}{}{location}",
                        "warning:".yellow().bold(),
                        annotation.message.yellow()
                    ),
                    AnnotationLevel::Notice => format!(
                        "{prefix} {} {title}{}{location}",
                        "notice:".blue().bold(),
                        annotation.message
                    ),
                };
                // Errors and warnings are shown even in quiet mode.
                if quiet && annotation.level == AnnotationLevel::Notice {
                    job.buffered.push_back(line);
                } else {
                    lines.push(line);
                }
            }
            EventKind::Debug { text, .. } => {
                if show_debug && !quiet {
                    lines.push(format!("{prefix} {} {text}", "debug:".dimmed()));
                }
            }
            EventKind::StepFinished {
                step,
                outcome,
                conclusion,
                duration_ms,
            } => {
                let name = job.steps.get(step).cloned().unwrap_or_default();
                let took = format_duration(*duration_ms);
                let line = match (outcome, conclusion) {
                    (Conclusion::Success, _) => {
                        format!("{prefix} {} {name} {}", "✓".green(), took.dimmed())
                    }
                    (Conclusion::Failure, Conclusion::Success) => format!(
                        "{prefix} {} {name} {} {}",
                        "✗".yellow(),
                        "failed (continue-on-error)".yellow(),
                        took.dimmed()
                    ),
                    (Conclusion::Failure, _) => format!(
                        "{prefix} {} {name} {} {}",
                        "✗".red().bold(),
                        "failed".red().bold(),
                        took.dimmed()
                    ),
                    (Conclusion::Cancelled, _) => {
                        format!("{prefix} {} {name} {}", "⊘".yellow(), "cancelled".yellow())
                    }
                    (Conclusion::Skipped, _) => {
                        format!("{prefix} {} {name} {}", "-".dimmed(), "skipped".dimmed())
                    }
                };
                if quiet {
                    if *outcome == Conclusion::Failure {
                        lines.extend(job.buffered.drain(..));
                        lines.push(line);
                    } else if *outcome == Conclusion::Cancelled {
                        job.stopped = job.buffered.drain(..).collect();
                        job.stopped.push(line);
                    }
                    job.buffered.clear();
                } else {
                    lines.push(line);
                }
            }
            EventKind::StepSummary { .. } => {}
            EventKind::JobFinished {
                conclusion,
                duration_ms,
                ..
            } => {
                if quiet && *conclusion == Conclusion::Failure {
                    lines.append(&mut job.stopped);
                }
                if !quiet || *conclusion == Conclusion::Failure {
                    lines.push(format!(
                        "{prefix} {} {}",
                        conclusion_text(*conclusion),
                        format_duration(*duration_ms).dimmed()
                    ));
                }
            }
        }
        for line in lines {
            let _ = writeln!(self.out, "{line}");
        }
    }

    /// Prints context about the run itself (not of a job); `--quiet` leaves it out.
    pub fn note(&mut self, text: &str) {
        if self.mode == OutputMode::Live {
            let _ = writeln!(self.out, "{}", text.dimmed());
        }
    }

    /// Prints something the user asked to know (where kept files are), even with `--quiet`.
    pub fn report(&mut self, text: &str) {
        if self.mode != OutputMode::Json {
            let _ = writeln!(self.out, "{text}");
        }
    }

    pub fn warn(&mut self, text: &str) {
        if self.mode != OutputMode::Json {
            let _ = writeln!(self.out, "{} {text}", "warning:".yellow().bold());
        }
    }

    /// The end-of-run report.
    pub fn print_summary(&mut self, summary: &RunSummary) {
        if self.mode == OutputMode::Json {
            if let Ok(line) = serde_json::to_string(&serde_json::json!({ "summary": summary })) {
                let _ = writeln!(self.out, "{line}");
            }
            return;
        }
        let _ = write!(self.out, "{}", render_summary(summary));
        let _ = self.out.flush();
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

/// The summary as text: failing steps' tails, step summaries, then the table.
pub fn render_summary(summary: &RunSummary) -> String {
    let mut text = String::new();
    for job in &summary.jobs {
        if let Some(failed) = &job.failed_step {
            text.push_str(&format!(
                "\n{} {} {}\n",
                "──".red(),
                job.name.bold(),
                format!("failed at \"{}\"; last lines:", failed.name).red()
            ));
            for line in &failed.tail {
                text.push_str(&format!("  {line}\n"));
            }
        }
    }
    for step_summary in &summary.step_summaries {
        text.push_str(&format!(
            "\n{} {}\n{}\n",
            "── Summary of".bold(),
            step_summary.job.bold(),
            step_summary.markdown.trim_end()
        ));
    }
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(["job", "matrix", "result", "duration"]);
    for job in &summary.jobs {
        // Plain text: colour codes inside cells would break the column widths.
        let mut result = job.conclusion.as_str().to_owned();
        if job.conclusion == Conclusion::Failure && job.continue_on_error {
            result = format!("{result} (continue-on-error)");
        } else if let Some(reason) = &job.skipped_reason {
            result = format!("{result} ({reason})");
        } else if let Some(gantry_protocol::FailureReason::TimedOut) = &job.reason {
            result = format!("{result} (timed out)");
        } else if let Some(gantry_protocol::FailureReason::SetupFailed(why)) = &job.reason {
            result = format!("{result} ({why})");
        }
        table.add_row([
            job.name.clone(),
            job.matrix.clone(),
            result,
            // A job that never started has no duration.
            if job.conclusion == Conclusion::Skipped || job.skipped_reason.is_some() {
                String::new()
            } else {
                format_duration(job.duration_ms)
            },
        ]);
    }
    text.push('\n');
    text.push_str(&table.to_string());
    text.push('\n');
    let failed = summary.failed_jobs();
    let verdict = if summary.interrupted {
        "Run interrupted".yellow().bold().to_string()
    } else if failed > 0 {
        format!("{failed} job(s) failed").red().bold().to_string()
    } else if !summary.succeeded() {
        "Run cancelled".yellow().bold().to_string()
    } else {
        "All jobs succeeded".green().bold().to_string()
    };
    text.push_str(&format!(
        "{verdict} {}\n",
        format!(
            "in {} — run #{} (.gantry/runs/{})",
            format_duration(summary.duration_ms),
            summary.number,
            summary.number
        )
        .dimmed()
    ));
    text
}

fn conclusion_text(conclusion: Conclusion) -> String {
    match conclusion {
        Conclusion::Success => "success".green().to_string(),
        Conclusion::Failure => "failure".red().bold().to_string(),
        Conclusion::Cancelled => "cancelled".yellow().to_string(),
        Conclusion::Skipped => "skipped".dimmed().to_string(),
    }
}

pub fn format_duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// FNV-1a, so a job keeps its colour from run to run.
fn stable_hash(s: &str) -> usize {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % 1_000_003) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn ev(kind: EventKind) -> Event {
        Event {
            job: "build".into(),
            at_ms: 0,
            kind,
        }
    }

    fn plain(buf: &Buf) -> String {
        let bytes = buf.0.lock().expect("lock").clone();
        let text = String::from_utf8(bytes).expect("utf8");
        // Strip ANSI escapes for assertions.
        regex_lite_strip(&text)
    }

    fn regex_lite_strip(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn quiet_mode_shows_only_the_failing_step() {
        let buf = Buf::default();
        let mut p = Printer::new(OutputMode::Quiet, false, Box::new(buf.clone()));
        p.register_job("build", "build");
        for (step, fail) in [(0, false), (1, true)] {
            p.on_event(&ev(EventKind::StepStarted {
                step,
                name: format!("step {step}"),
            }));
            p.on_event(&ev(EventKind::Log {
                step: Some(step),
                text: format!("output of {step}\n"),
            }));
            let outcome = if fail {
                Conclusion::Failure
            } else {
                Conclusion::Success
            };
            p.on_event(&ev(EventKind::StepFinished {
                step,
                outcome,
                conclusion: outcome,
                duration_ms: 1,
            }));
        }
        let text = plain(&buf);
        assert!(!text.contains("output of 0"), "{text}");
        assert!(text.contains("[build] output of 1"), "{text}");
        assert!(text.contains("step 1 failed"), "{text}");
    }

    #[test]
    fn live_mode_prefixes_every_line_with_the_job() {
        let buf = Buf::default();
        let mut p = Printer::new(OutputMode::Live, false, Box::new(buf.clone()));
        p.register_job("build", "build (linux)");
        p.on_event(&ev(EventKind::Log {
            step: Some(0),
            text: "a\nb\n".into(),
        }));
        assert_eq!(plain(&buf), "[build (linux)] a\n[build (linux)] b\n");
    }

    #[test]
    fn a_line_in_pieces_is_shown_once_and_cut_to_a_readable_length() {
        let buf = Buf::default();
        let mut p = Printer::new(OutputMode::Live, false, Box::new(buf.clone()));
        p.register_job("build", "build");
        let piece = "é".repeat(MAX_SHOWN_LINE / 2 - 1) + "xy";
        for text in [piece.clone(), piece, "end\nnext\n".to_owned()] {
            p.on_event(&ev(EventKind::Log {
                step: Some(0),
                text,
            }));
        }
        let text = plain(&buf);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{}", &text[text.len() - 200..]);
        let shown = lines[0].strip_prefix("[build] ").expect("prefix");
        let (start, marker) = shown.split_once(" … ").expect("marker");
        assert_eq!(start.len(), MAX_SHOWN_LINE);
        assert!(start.ends_with("éxy"), "cut on a character boundary");
        assert_eq!(
            marker,
            format!(
                "[{} more bytes of this line in the job's log]",
                MAX_SHOWN_LINE + 3
            )
        );
        assert_eq!(lines[1], "[build] next");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(12), "12ms");
        assert_eq!(format_duration(1500), "1.5s");
        assert_eq!(format_duration(125_000), "2m05s");
    }
}
