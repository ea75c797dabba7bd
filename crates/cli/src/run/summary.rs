//! Builds a run's summary from its event stream: each job's result and duration, the first
//! failing step with its last lines, and the step summaries.

use super::store::{FailedStep, JobSummary, StepSummary};
use gantry_protocol::{Conclusion, Event, EventKind};
use indexmap::IndexMap;
use std::collections::{HashMap, VecDeque};

/// Lines of a failing step shown in the summary.
pub const TAIL_LINES: usize = 20;

#[derive(Default)]
pub struct SummaryBuilder {
    jobs: IndexMap<String, JobTrack>,
    step_summaries: Vec<StepSummary>,
}

struct JobTrack {
    summary: JobSummary,
    step_names: HashMap<usize, String>,
    tails: HashMap<usize, VecDeque<String>>,
    /// Whether the last text piece of a step ended in the middle of a line.
    open_line: HashMap<usize, bool>,
    /// The last step stopped by a cancel (a job timeout stops its step this way): where a job
    /// that timed out was when it was stopped.
    stopped_step: Option<FailedStep>,
}

impl SummaryBuilder {
    /// Declares a job before it starts, so jobs appear in planning order.
    pub fn register_job(
        &mut self,
        key: &str,
        name: &str,
        workflow: &str,
        matrix: &str,
        continue_on_error: bool,
    ) {
        self.jobs.entry(key.to_owned()).or_insert_with(|| JobTrack {
            summary: JobSummary {
                key: key.to_owned(),
                name: name.to_owned(),
                workflow: workflow.to_owned(),
                matrix: matrix.to_owned(),
                conclusion: Conclusion::Skipped,
                continue_on_error,
                reason: None,
                skipped_reason: None,
                duration_ms: 0,
                failed_step: None,
            },
            step_names: HashMap::new(),
            tails: HashMap::new(),
            open_line: HashMap::new(),
            stopped_step: None,
        });
    }

    pub fn on_event(&mut self, event: &Event) {
        if !self.jobs.contains_key(&event.job) {
            let name = match &event.kind {
                EventKind::JobStarted { name } | EventKind::JobSkipped { name, .. } => name.clone(),
                _ => event.job.clone(),
            };
            self.register_job(&event.job, &name, "", "", false);
        }
        let Some(job) = self.jobs.get_mut(&event.job) else {
            return;
        };
        match &event.kind {
            EventKind::JobStarted { name } => job.summary.name = name.clone(),
            EventKind::JobSkipped { reason, .. } => {
                job.summary.conclusion = Conclusion::Skipped;
                job.summary.skipped_reason = Some(reason.clone());
            }
            EventKind::StepStarted { step, name } => {
                job.step_names.insert(*step, name.clone());
            }
            EventKind::Log {
                step: Some(step),
                text,
            } => {
                let tail = job.tails.entry(*step).or_default();
                let open = job.open_line.entry(*step).or_default();
                push_text(tail, open, text);
            }
            EventKind::Annotation {
                step: Some(step),
                annotation,
            } if annotation.level == gantry_protocol::AnnotationLevel::Error => {
                let tail = job.tails.entry(*step).or_default();
                let open = job.open_line.entry(*step).or_default();
                push_text(tail, open, &format!("Error: {}\n", annotation.message));
            }
            EventKind::StepFinished { step, outcome, .. } => {
                let finished = || FailedStep {
                    name: job.step_names.get(step).cloned().unwrap_or_default(),
                    tail: job
                        .tails
                        .get(step)
                        .map(|t| t.iter().cloned().collect())
                        .unwrap_or_default(),
                };
                if *outcome == Conclusion::Failure && job.summary.failed_step.is_none() {
                    job.summary.failed_step = Some(finished());
                } else if *outcome == Conclusion::Cancelled {
                    job.stopped_step = Some(finished());
                }
                job.tails.remove(step);
            }
            EventKind::StepSummary { markdown, .. } => {
                self.step_summaries.push(StepSummary {
                    job: job.summary.name.clone(),
                    markdown: markdown.clone(),
                });
            }
            EventKind::JobFinished {
                conclusion,
                reason,
                duration_ms,
                ..
            } => {
                job.summary.conclusion = *conclusion;
                job.summary.reason = reason.clone();
                // A job that failed without a failing step (it timed out): show the step it
                // was stopped in.
                if *conclusion == Conclusion::Failure && job.summary.failed_step.is_none() {
                    job.summary.failed_step = job.stopped_step.take();
                }
                job.summary.duration_ms = *duration_ms;
            }
            _ => {}
        }
    }

    /// Sets a job's result when its events alone do not tell it (a job skipped because the
    /// run was cancelled is `cancelled`).
    pub fn set_conclusion(&mut self, key: &str, conclusion: Conclusion) {
        if let Some(job) = self.jobs.get_mut(key) {
            job.summary.conclusion = conclusion;
        }
    }

    pub fn jobs(&self) -> Vec<JobSummary> {
        self.jobs.values().map(|j| j.summary.clone()).collect()
    }

    pub fn step_summaries(&self) -> Vec<StepSummary> {
        self.step_summaries.clone()
    }
}

/// Longest line kept in a summary (bytes), to keep it readable.
const MAX_TAIL_LINE: usize = 1000;

fn push_text(tail: &mut VecDeque<String>, open: &mut bool, mut text: &str) {
    // Complete lines followed by more than a tail's worth of lines scroll out at once: skip
    // them (a step printing 100 MB must not cost a string per line here). A line left open by
    // the previous text ends among them; it scrolls out with them.
    let start = last_pieces_start(text, TAIL_LINES + 1);
    if start > 0 {
        text = &text[start..];
        *open = false;
    }
    for piece in text.split_inclusive('\n') {
        let ends = piece.ends_with('\n');
        let piece = piece.trim_end_matches('\n').trim_end_matches('\r');
        match tail.back_mut() {
            Some(last) if *open => {
                let room = MAX_TAIL_LINE.saturating_sub(last.len());
                last.push_str(prefix_within(piece, room));
            }
            _ => {
                tail.push_back(prefix_within(piece, MAX_TAIL_LINE).to_owned());
                if tail.len() > TAIL_LINES {
                    tail.pop_front();
                }
            }
        }
        *open = !ends;
    }
}

/// The byte offset where the last `n` pieces of `text.split_inclusive('\n')` begin (0 when
/// there are no more than `n`), found from the end without looking at the rest.
pub(crate) fn last_pieces_start(text: &str, n: usize) -> usize {
    let bytes = text.as_bytes();
    let mut seen = 0;
    // A newline ends a piece and the next one starts after it; the text's final byte, a
    // newline or not, belongs to the last piece.
    for i in (0..bytes.len().saturating_sub(1)).rev() {
        if bytes[i] == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

/// The longest start of `text` of at most `max` bytes that ends on a character boundary.
fn prefix_within(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_pieces_start_finds_the_last_lines_from_the_end() {
        assert_eq!(last_pieces_start("a\nb\nc\n", 1), 4);
        assert_eq!(last_pieces_start("a\nb\nc\n", 2), 2);
        assert_eq!(last_pieces_start("a\nb\nc\n", 3), 0);
        assert_eq!(last_pieces_start("a\nb\nc\n", 9), 0);
        assert_eq!(last_pieces_start("a\nb", 1), 2);
        assert_eq!(last_pieces_start("", 1), 0);
    }

    #[test]
    fn a_tail_skips_scrolled_out_lines_and_ends_an_open_line_first() {
        let mut tail = VecDeque::new();
        let mut open = false;
        push_text(&mut tail, &mut open, "start of a line");
        assert!(open);
        let many: String = (0..TAIL_LINES * 3).map(|i| format!("line {i}\n")).collect();
        push_text(&mut tail, &mut open, &format!(" ends here\n{many}"));
        assert!(!open);
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(
            tail.back().map(String::as_str),
            Some(format!("line {}", TAIL_LINES * 3 - 1).as_str())
        );
        assert_eq!(
            tail.front().map(String::as_str),
            Some(format!("line {}", TAIL_LINES * 2).as_str())
        );
        push_text(&mut tail, &mut open, "x\ny");
        assert_eq!(tail.back().map(String::as_str), Some("y"));
        assert!(open);
    }

    fn ev(kind: EventKind) -> Event {
        Event {
            job: "j".into(),
            at_ms: 0,
            kind,
        }
    }

    #[test]
    fn the_failing_step_keeps_its_last_twenty_lines() {
        let mut b = SummaryBuilder::default();
        b.register_job("j", "build", "ci.yml", "os=linux", false);
        b.on_event(&ev(EventKind::StepStarted {
            step: 0,
            name: "Run make".into(),
        }));
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        b.on_event(&ev(EventKind::Log {
            step: Some(0),
            text,
        }));
        b.on_event(&ev(EventKind::Log {
            step: Some(0),
            text: "partial ".into(),
        }));
        b.on_event(&ev(EventKind::Log {
            step: Some(0),
            text: "end\n".into(),
        }));
        b.on_event(&ev(EventKind::StepFinished {
            step: 0,
            outcome: Conclusion::Failure,
            conclusion: Conclusion::Failure,
            duration_ms: 5,
        }));
        let jobs = b.jobs();
        let failed = jobs[0].failed_step.as_ref().expect("failed step");
        assert_eq!(failed.name, "Run make");
        assert_eq!(failed.tail.len(), TAIL_LINES);
        assert_eq!(failed.tail[0], "line 12");
        assert_eq!(failed.tail[TAIL_LINES - 1], "partial end");
        assert_eq!(jobs[0].matrix, "os=linux");
    }

    #[test]
    fn the_tail_is_the_same_whatever_the_pieces() {
        let text: String =
            (1..=50).map(|i| format!("line {i}\n")).collect::<String>() + &"é".repeat(800) + "\n";
        let expected: Vec<String> = (32..=50)
            .map(|i| format!("line {i}"))
            .chain(std::iter::once("é".repeat(500)))
            .collect();
        for size in [1, 7, 64, 300, text.len()] {
            let mut tail = VecDeque::new();
            let mut open = false;
            let bytes = text.as_bytes();
            let mut start = 0;
            while start < bytes.len() {
                let mut end = (start + size).min(bytes.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                push_text(&mut tail, &mut open, &text[start..end]);
                start = end;
            }
            let tail: Vec<String> = tail.into_iter().collect();
            assert_eq!(tail, expected, "pieces of {size} bytes");
            assert!(!open);
        }
    }
}
