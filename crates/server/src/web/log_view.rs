//! A job's log as the job page shows it: split into sections by the steps' log offsets (with
//! sections for output before, between and after steps), numbered lines, collapsible groups and
//! highlighted annotations placed at the log offsets their events carry, and each step's
//! summary. Every piece of text is escaped here ([`ansi::render_line`], [`ansi::escape_html`]);
//! the template inserts the finished markup as it is.
//!
//! Only the last [`WINDOW`] bytes of a large log are rendered; the page links the raw log.
//! The trailing partial line of a running job is left out: the live stream sends it from
//! [`LogView::end`], where the page's script starts.

use super::ansi::{escape_html, render_line};
use super::display::{Badge, duration};
use crate::store::{Step, StepStatus};
use gantry_protocol::agent::{JobEvent, JobEventKind};
use gantry_protocol::{AnnotationLevel, Conclusion};
use std::fmt::Write as _;

/// Bytes of log rendered in the page at most (the end of the log).
pub const WINDOW: u64 = 2 * 1024 * 1024;

/// The rendered log of a job.
#[derive(Clone, Debug, Default)]
pub struct LogView {
    pub sections: Vec<Section>,
    pub annotations: Vec<AnnotationView>,
    /// The number the next line gets (for the live script).
    pub next_line: usize,
    /// The offset after the last rendered byte: where the live stream starts.
    pub end: u64,
    /// Output before this offset is not in the page (the log is larger than [`WINDOW`]).
    pub first_offset: u64,
}

/// A step's part of the log, or output outside any step.
#[derive(Clone, Debug)]
pub struct Section {
    /// The element id: `step-3`, `log-setup`, `log-after-2`.
    pub anchor: String,
    pub title: String,
    /// The step number, for step sections.
    pub step: Option<u32>,
    pub badge: Option<Badge>,
    pub duration: String,
    /// Shown expanded: a running or failed step, the live end of the log.
    pub open: bool,
    /// The section's first byte.
    pub start: u64,
    /// The lines, groups and annotations, as escaped HTML.
    pub html: String,
    /// No output at all.
    pub empty: bool,
}

/// An annotation for the list at the top of the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationView {
    /// `error`, `warning`, `notice`.
    pub level: &'static str,
    /// `Error`, `Warning`, `Notice`.
    pub level_title: &'static str,
    pub title: String,
    pub message: String,
    /// `src/main.rs:3:5`, when the annotation names a file.
    pub location: String,
    /// The element id of the annotation in the log (`annotation-2`).
    pub anchor: String,
}

/// What the page knows about the job besides its log.
pub struct LogInput<'a> {
    /// The rendered bytes of the log: `[base, base + bytes.len())`.
    pub bytes: &'a [u8],
    pub base: u64,
    pub steps: &'a [Step],
    pub events: &'a [JobEvent],
    /// The job has completed: its log is whole.
    pub complete: bool,
}

struct Bounds {
    anchor: String,
    title: String,
    step_number: Option<u32>,
    badge: Option<Badge>,
    duration: String,
    failed: bool,
    running: bool,
    start: u64,
    end: u64,
}

/// An event placed in a section, in log order.
enum Placed<'a> {
    GroupStarted(&'a str),
    GroupEnded,
    Annotation(usize),
    Summary(&'a str),
}

fn level_names(level: AnnotationLevel) -> (&'static str, &'static str) {
    match level {
        AnnotationLevel::Error => ("error", "Error"),
        AnnotationLevel::Warning => ("warning", "Warning"),
        AnnotationLevel::Notice => ("notice", "Notice"),
    }
}

/// The class of a line the runner marked (`##[error]...`).
fn line_class(line: &str) -> &'static str {
    let plain = line.trim_start_matches(|c: char| c == '\u{1b}' || c.is_whitespace());
    if plain.starts_with("##[error]") {
        "line line-error"
    } else if plain.starts_with("##[warning]") {
        "line line-warning"
    } else if plain.starts_with("##[notice]") {
        "line line-notice"
    } else if plain.starts_with("##[debug]") {
        "line line-debug"
    } else {
        "line"
    }
}

/// Splits a job's log into sections and renders them.
pub fn build(input: &LogInput<'_>) -> LogView {
    let log_end = input.base + input.bytes.len() as u64;
    // A running job's trailing partial line is left to the live stream.
    let end = if input.complete {
        log_end
    } else {
        match input.bytes.iter().rposition(|b| *b == b'\n') {
            Some(at) => input.base + at as u64 + 1,
            None => input.base,
        }
    };
    let bounds = section_bounds(input.steps, end, input.complete);
    let mut view = LogView {
        end,
        first_offset: input.base,
        next_line: 1,
        ..LogView::default()
    };

    // Events go to the section of their step, else the one their offset falls in.
    let mut placed: Vec<Vec<(u64, Placed<'_>)>> = bounds.iter().map(|_| Vec::new()).collect();
    let section_of = |step: Option<usize>, offset: u64| -> Option<usize> {
        if let Some(step) = step {
            let number = u32::try_from(step + 1).ok()?;
            if let Some(i) = bounds.iter().position(|b| b.step_number == Some(number)) {
                return Some(i);
            }
        }
        bounds
            .iter()
            .rposition(|b| b.start <= offset)
            .or_else(|| (!bounds.is_empty()).then_some(0))
    };
    for event in input.events {
        let offset = event.log_offset;
        match &event.kind {
            JobEventKind::GroupStarted { step, title } => {
                if let Some(i) = section_of(*step, offset) {
                    placed[i].push((offset, Placed::GroupStarted(title)));
                }
            }
            JobEventKind::GroupEnded { step } => {
                if let Some(i) = section_of(*step, offset) {
                    placed[i].push((offset, Placed::GroupEnded));
                }
            }
            JobEventKind::Annotation { step, annotation } => {
                let index = view.annotations.len();
                let (level, level_title) = level_names(annotation.level);
                let mut location = annotation.file.clone().unwrap_or_default();
                if !location.is_empty()
                    && let Some(line) = annotation.line
                {
                    let _ = write!(location, ":{line}");
                    if let Some(column) = annotation.column {
                        let _ = write!(location, ":{column}");
                    }
                }
                view.annotations.push(AnnotationView {
                    level,
                    level_title,
                    title: annotation.title.clone().unwrap_or_default(),
                    message: annotation.message.clone(),
                    location,
                    anchor: format!("annotation-{}", index + 1),
                });
                if let Some(i) = section_of(*step, offset) {
                    placed[i].push((offset, Placed::Annotation(index)));
                }
            }
            JobEventKind::StepSummary { step, markdown } => {
                if let Some(i) = section_of(Some(*step), u64::MAX) {
                    placed[i].push((u64::MAX, Placed::Summary(markdown)));
                }
            }
            JobEventKind::StepStarted { .. } | JobEventKind::StepFinished { .. } => {}
        }
    }

    let last = bounds.len().saturating_sub(1);
    for (i, (bound, mut events)) in bounds.into_iter().zip(placed).enumerate() {
        events.sort_by_key(|(offset, _)| *offset);
        let mut html = String::new();
        let mut empty = true;
        let mut open_groups = 0usize;
        let mut events = events.into_iter().peekable();
        let emit_events_before = |limit: u64,
                                  html: &mut String,
                                  open_groups: &mut usize,
                                  events: &mut std::iter::Peekable<
            std::vec::IntoIter<(u64, Placed<'_>)>,
        >| {
            while let Some((offset, _)) = events.peek() {
                if *offset > limit {
                    break;
                }
                let Some((_, event)) = events.next() else {
                    break;
                };
                match event {
                    Placed::GroupStarted(title) => {
                        html.push_str("<details class=\"group\"><summary>");
                        escape_html(&super::ansi::strip(title), html);
                        html.push_str("</summary>");
                        *open_groups += 1;
                    }
                    Placed::GroupEnded => {
                        if *open_groups > 0 {
                            html.push_str("</details>");
                            *open_groups -= 1;
                        }
                    }
                    Placed::Annotation(index) => {
                        let a = &view.annotations[index];
                        let _ = write!(
                            html,
                            "<div class=\"annotation annotation-{}\" id=\"{}\"><strong>{}</strong> ",
                            a.level, a.anchor, a.level_title
                        );
                        if !a.title.is_empty() {
                            escape_html(&a.title, html);
                            html.push_str(": ");
                        }
                        escape_html(&a.message, html);
                        if !a.location.is_empty() {
                            html.push_str(" <span class=\"location\">");
                            escape_html(&a.location, html);
                            html.push_str("</span>");
                        }
                        html.push_str("</div>");
                    }
                    Placed::Summary(markdown) => {
                        html.push_str(
                            "<details class=\"step-summary\"><summary>Step summary</summary><pre>",
                        );
                        escape_html(markdown, html);
                        html.push_str("</pre></details>");
                    }
                }
            }
        };

        let from = bound.start.max(input.base);
        let to = bound.end.min(end);
        if bound.end <= input.base && bound.end > bound.start {
            html.push_str(
                "<p class=\"note\">This output is not shown: the log is long; the raw log has \
                 it.</p>",
            );
            empty = false;
        }
        if from < to {
            let lo = usize::try_from(from - input.base).unwrap_or(usize::MAX);
            let hi = usize::try_from(to - input.base).unwrap_or(usize::MAX);
            if let Some(slice) = input.bytes.get(lo..hi) {
                let mut offset = from;
                for raw in slice.split_inclusive(|b| *b == b'\n') {
                    emit_events_before(offset, &mut html, &mut open_groups, &mut events);
                    let text = String::from_utf8_lossy(raw);
                    let line = text.strip_suffix('\n').unwrap_or(&text);
                    let n = view.next_line;
                    let _ = write!(
                        html,
                        "<div class=\"{}\" id=\"L{n}\" data-o=\"{offset}\" data-n=\"{n}\">{}</div>",
                        line_class(line),
                        render_line(line)
                    );
                    view.next_line += 1;
                    offset += raw.len() as u64;
                    empty = false;
                }
            }
        }
        emit_events_before(u64::MAX, &mut html, &mut open_groups, &mut events);
        if !html.is_empty() {
            empty = false;
        }
        for _ in 0..open_groups {
            html.push_str("</details>");
        }
        let open = bound.running
            || bound.failed
            || (!input.complete && i == last)
            || input.steps.is_empty();
        view.sections.push(Section {
            anchor: bound.anchor,
            title: bound.title,
            step: bound.step_number,
            badge: bound.badge,
            duration: bound.duration,
            open,
            start: bound.start,
            html,
            empty,
        });
    }
    view
}

/// The sections' byte ranges, in log order: steps with a `log_start`, and what lies between.
fn section_bounds(steps: &[Step], log_end: u64, complete: bool) -> Vec<Bounds> {
    let mut started: Vec<&Step> = steps.iter().filter(|s| s.log_start.is_some()).collect();
    started.sort_by_key(|s| s.number);
    let mut out: Vec<Bounds> = Vec::new();
    let mut cursor = 0u64;
    let gap = |out: &mut Vec<Bounds>, start: u64, end: u64| {
        let (anchor, title) = match out.last() {
            None => ("log-setup".to_owned(), "Set up job".to_owned()),
            Some(previous) => (
                format!("log-after-{}", out.len()),
                if previous.step_number.is_some() {
                    "Job output".to_owned()
                } else {
                    "Output".to_owned()
                },
            ),
        };
        out.push(Bounds {
            anchor,
            title,
            step_number: None,
            badge: None,
            duration: String::new(),
            failed: false,
            running: false,
            start,
            end,
        });
    };
    for (i, step) in started.iter().enumerate() {
        let start = step.log_start.unwrap_or(cursor).max(cursor);
        if start > cursor {
            gap(&mut out, cursor, start);
        }
        let next_start = started
            .get(i + 1)
            .and_then(|next| next.log_start)
            .map(|s| s.max(start));
        let end = step.log_end.or(next_start).unwrap_or(log_end).max(start);
        let failed = step.conclusion == Some(Conclusion::Failure)
            || step.outcome == Some(Conclusion::Failure);
        let duration = match (step.started_ms, step.finished_ms) {
            (Some(s), Some(f)) => duration(f - s),
            _ => String::new(),
        };
        out.push(Bounds {
            anchor: format!("step-{}", step.number),
            title: step.name.clone(),
            step_number: Some(step.number),
            badge: Some(Badge::step(step.status, step.conclusion)),
            duration,
            failed,
            running: step.status == StepStatus::Running && !complete,
            start,
            end,
        });
        cursor = end;
    }
    if cursor < log_end || out.is_empty() {
        gap(&mut out, cursor, log_end.max(cursor));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_protocol::Annotation;

    fn step(number: u32, start: u64, end: Option<u64>, conclusion: Option<Conclusion>) -> Step {
        Step {
            number,
            name: format!("Step {number}"),
            status: if end.is_some() {
                StepStatus::Completed
            } else {
                StepStatus::Running
            },
            outcome: conclusion,
            conclusion,
            log_start: Some(start),
            log_end: end,
            started_ms: Some(1_000),
            finished_ms: end.map(|_| 4_000),
        }
    }

    fn event(offset: u64, kind: JobEventKind) -> JobEvent {
        JobEvent {
            at_ms: 0,
            log_offset: offset,
            kind,
        }
    }

    fn texts(view: &LogView) -> Vec<(String, String)> {
        view.sections
            .iter()
            .map(|s| (s.title.clone(), s.html.clone()))
            .collect()
    }

    #[test]
    fn steps_split_the_log_at_their_offsets() {
        let log = b"setup\none\ntwo\nafter\n";
        let steps = [
            step(1, 6, Some(10), Some(Conclusion::Success)),
            step(2, 10, Some(14), Some(Conclusion::Failure)),
        ];
        let view = build(&LogInput {
            bytes: log,
            base: 0,
            steps: &steps,
            events: &[],
            complete: true,
        });
        let titles: Vec<&str> = view.sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["Set up job", "Step 1", "Step 2", "Job output"]);
        assert!(view.sections[1].html.contains(">one</div>"));
        assert!(view.sections[2].html.contains("id=\"L3\" data-o=\"10\""));
        assert!(view.sections[2].open, "a failed step is expanded");
        assert!(!view.sections[1].open, "a successful step is collapsed");
        assert_eq!(view.next_line, 5);
        assert_eq!(view.end, log.len() as u64);
    }

    #[test]
    fn a_running_job_leaves_its_partial_line_to_the_stream() {
        let log = b"line\npart";
        let steps = [step(1, 0, None, None)];
        let view = build(&LogInput {
            bytes: log,
            base: 0,
            steps: &steps,
            events: &[],
            complete: false,
        });
        assert_eq!(view.end, 5);
        assert!(!view.sections[0].html.contains("part"));
        assert!(view.sections[0].open);
        assert_eq!(view.sections.len(), 1);
    }

    #[test]
    fn groups_and_annotations_sit_at_their_offsets() {
        let log = b"a\nb\nc\n";
        let steps = [step(1, 0, Some(6), Some(Conclusion::Failure))];
        let events = [
            event(
                2,
                JobEventKind::GroupStarted {
                    step: Some(0),
                    title: "Deps <x>".into(),
                },
            ),
            event(4, JobEventKind::GroupEnded { step: Some(0) }),
            event(
                6,
                JobEventKind::Annotation {
                    step: Some(0),
                    annotation: Annotation {
                        level: AnnotationLevel::Error,
                        message: "bad <thing>".into(),
                        title: None,
                        file: Some("src/main.rs".into()),
                        line: Some(3),
                        end_line: None,
                        column: Some(5),
                        end_column: None,
                    },
                },
            ),
        ];
        let view = build(&LogInput {
            bytes: log,
            base: 0,
            steps: &steps,
            events: &events,
            complete: true,
        });
        let html = &view.sections[0].html;
        let group = html.find("<details class=\"group\"><summary>Deps &lt;x&gt;</summary>");
        let b = html.find(">b</div>");
        let close = html.find("</details>");
        let c = html.find(">c</div>");
        let annotation = html.find("annotation-error");
        assert!(
            group < b && b < close && close < c && c < annotation,
            "{html}"
        );
        assert!(html.contains("bad &lt;thing&gt;"));
        assert_eq!(view.annotations[0].location, "src/main.rs:3:5");
        assert_eq!(view.annotations[0].anchor, "annotation-1");
    }

    #[test]
    fn unbalanced_groups_stay_balanced_in_markup() {
        let log = b"x\n";
        let events = [
            event(0, JobEventKind::GroupEnded { step: None }),
            event(
                0,
                JobEventKind::GroupStarted {
                    step: None,
                    title: "never closed".into(),
                },
            ),
        ];
        let view = build(&LogInput {
            bytes: log,
            base: 0,
            steps: &[],
            events: &events,
            complete: true,
        });
        let (_, html) = &texts(&view)[0];
        assert_eq!(
            html.matches("<details").count(),
            html.matches("</details>").count()
        );
    }

    #[test]
    fn output_before_the_window_is_noted() {
        let steps = [
            step(1, 0, Some(100), Some(Conclusion::Success)),
            step(2, 100, Some(110), Some(Conclusion::Success)),
        ];
        let view = build(&LogInput {
            bytes: b"ten bytes\n",
            base: 100,
            steps: &steps,
            events: &[],
            complete: true,
        });
        assert!(view.sections[0].html.contains("not shown"));
        assert!(view.sections[1].html.contains("ten bytes"));
        assert_eq!(view.first_offset, 100);
    }

    #[test]
    fn an_empty_log_still_has_a_section_for_the_live_stream() {
        let view = build(&LogInput {
            bytes: b"",
            base: 0,
            steps: &[],
            events: &[],
            complete: false,
        });
        assert_eq!(view.sections.len(), 1);
        assert!(view.sections[0].empty);
        assert!(view.sections[0].open);
    }
}
