//! A step's output on its way to the event stream: split into lines, workflow commands applied
//! (`::add-mask::`, `::group::`, `::error::`...), secrets masked, and batched into `Log` events.
//!
//! Memory stays bounded whatever the step prints: complete lines are flushed after every read,
//! and a line longer than [`MAX_LINE`] is streamed in pieces through a [`StreamMasker`] (a secret
//! split between two pieces is still masked).

use crate::command::{CommandProcessor, CommandSettings, Effect, Show, may_hold_command};
use crate::job::{EventSink, now_ms};
use crate::mask::{Masker, StreamMasker};
use gantry_protocol::{Event, EventKind};
use std::sync::Arc;

/// Longest line handled as a line; beyond it the line is streamed in pieces and is not
/// checked for workflow commands.
pub const MAX_LINE: usize = 64 * 1024;

/// Largest `Log` event built from complete lines.
const MAX_BATCH: usize = 256 * 1024;

/// What the output asked of the job, returned when the step ends.
#[derive(Debug, Default)]
pub(crate) struct PumpResult {
    /// `::error` with a failing effect, invalid `::echo::`...: the step fails.
    pub failure: Option<String>,
    /// `set-env` and `add-path`, when `ACTIONS_ALLOW_UNSECURE_COMMANDS` allows them.
    pub env: Vec<(String, String)>,
    /// `::set-output` values.
    pub outputs: Vec<(String, String)>,
    pub paths: Vec<String>,
}

pub(crate) struct OutputPump<'a> {
    job: String,
    step: Option<usize>,
    sink: Arc<dyn EventSink>,
    masker: &'a mut Masker,
    commands: CommandProcessor,
    step_debug: bool,
    /// The current incomplete line.
    line: Vec<u8>,
    /// Complete lines not yet sent, unmasked.
    batch: String,
    /// Set while a line longer than `MAX_LINE` is being streamed.
    long_line: Option<LongLine>,
    result: PumpResult,
}

struct LongLine {
    masker: StreamMasker,
    /// Bytes of an incomplete UTF-8 character at the end of the last piece.
    utf8_tail: Vec<u8>,
}

impl<'a> OutputPump<'a> {
    pub(crate) fn new(
        job: String,
        step: Option<usize>,
        sink: Arc<dyn EventSink>,
        masker: &'a mut Masker,
        settings: CommandSettings,
        step_debug: bool,
    ) -> OutputPump<'a> {
        OutputPump {
            job,
            step,
            sink,
            masker,
            commands: CommandProcessor::new(settings),
            step_debug,
            line: Vec::new(),
            batch: String::new(),
            long_line: None,
            result: PumpResult::default(),
        }
    }

    /// Takes the next bytes of output.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        // A line begun in an earlier read ends first.
        if (self.long_line.is_some() || !self.line.is_empty())
            && let Some(newline) = bytes.iter().position(|b| *b == b'\n')
        {
            let (head, rest) = bytes.split_at(newline + 1);
            self.complete_line(head);
            bytes = rest;
        }
        // Fast path: complete lines of valid UTF-8 that cannot hold a workflow command and have
        // no carriage return are shown as they are, so they go to the batch at once instead of
        // line by line. Anything else takes the line-by-line path below.
        if self.long_line.is_none()
            && self.line.is_empty()
            && let Some(last) = bytes.iter().rposition(|b| *b == b'\n')
        {
            let (head, rest) = bytes.split_at(last + 1);
            if let Ok(text) = std::str::from_utf8(head)
                && !may_hold_command(text)
                && !text.contains('\r')
            {
                self.batch.push_str(text);
                if self.batch.len() >= MAX_BATCH {
                    self.flush();
                }
                bytes = rest;
            }
        }
        while let Some(newline) = bytes.iter().position(|b| *b == b'\n') {
            let (head, rest) = bytes.split_at(newline + 1);
            bytes = rest;
            self.complete_line(head);
        }
        if !bytes.is_empty() {
            if self.long_line.is_some() {
                self.stream_long_line(bytes, false);
            } else {
                self.line.extend_from_slice(bytes);
                if self.line.len() > MAX_LINE {
                    self.flush();
                    self.long_line = Some(LongLine {
                        masker: StreamMasker::new(),
                        utf8_tail: Vec::new(),
                    });
                    let start = std::mem::take(&mut self.line);
                    self.stream_long_line(&start, false);
                }
            }
        }
        self.flush();
    }

    /// Takes `head`, the rest of the current line up to and including its newline.
    fn complete_line(&mut self, head: &[u8]) {
        if self.long_line.is_some() {
            self.stream_long_line(head, true);
        } else {
            self.line.extend_from_slice(&head[..head.len() - 1]);
            let line = std::mem::take(&mut self.line);
            self.process_line(&line);
            self.line = line;
            self.line.clear();
            if self.batch.len() >= MAX_BATCH {
                self.flush();
            }
        }
    }

    /// Ends the output: a last line without a newline is still a line.
    pub(crate) fn finish(mut self) -> PumpResult {
        if self.long_line.is_some() {
            self.stream_long_line(b"", true);
        } else if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line);
        }
        self.flush();
        self.result
    }

    fn process_line(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let outcome = self.commands.process_line(text);
        for effect in outcome.effects {
            self.apply(effect);
        }
        match outcome.show {
            Show::Line => {
                self.batch.push_str(text);
                self.batch.push('\n');
            }
            Show::Text(shown) => {
                self.batch.push_str(&shown);
                self.batch.push('\n');
            }
            Show::Nothing => {}
        }
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::AddMask(value) => {
                self.masker.add_mask(&value);
            }
            Effect::Annotation(mut annotation) => {
                self.flush();
                annotation.message = self.masker.mask(&annotation.message);
                annotation.title = annotation.title.map(|t| self.masker.mask(&t));
                self.send(EventKind::Annotation {
                    step: self.step,
                    annotation,
                });
            }
            Effect::GroupStart(title) => {
                self.flush();
                let title = self.masker.mask(&title);
                self.send(EventKind::GroupStarted {
                    step: self.step,
                    title,
                });
            }
            Effect::GroupEnd => {
                self.flush();
                self.send(EventKind::GroupEnded { step: self.step });
            }
            Effect::Debug(text) => {
                if self.step_debug {
                    self.flush();
                    let text = self.masker.mask(&text);
                    self.send(EventKind::Debug {
                        step: self.step,
                        text,
                    });
                }
            }
            Effect::StepFailed(reason) => {
                if self.result.failure.is_none() {
                    self.result.failure = Some(reason);
                }
            }
            Effect::SetEnv { name, value } => self.result.env.push((name, value)),
            Effect::SetOutput { name, value } => self.result.outputs.push((name, value)),
            // State is for post steps, which Gantry's built-in actions do not have.
            Effect::SaveState { .. } => {}
            Effect::AddPath(path) => self.result.paths.push(path),
            Effect::EchoChanged(_) | Effect::AddMatcher(_) | Effect::RemoveMatcher { .. } => {}
        }
    }

    fn stream_long_line(&mut self, bytes: &[u8], end_of_line: bool) {
        let Some(long) = self.long_line.as_mut() else {
            return;
        };
        let mut out = std::mem::take(&mut long.utf8_tail);
        long.masker.write(self.masker, bytes, &mut out);
        if end_of_line {
            long.masker.finish(self.masker, &mut out);
            if out.last() != Some(&b'\n') {
                out.push(b'\n');
            }
            self.long_line = None;
        } else {
            // Keep an incomplete UTF-8 character for the next piece.
            let keep = incomplete_utf8_suffix(&out);
            long.utf8_tail = out.split_off(out.len() - keep);
        }
        if !out.is_empty() {
            let text = String::from_utf8_lossy(&out).into_owned();
            self.send(EventKind::Log {
                step: self.step,
                text,
            });
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let text = self.masker.mask(&self.batch);
        self.batch.clear();
        self.send(EventKind::Log {
            step: self.step,
            text,
        });
    }

    fn send(&self, kind: EventKind) {
        self.sink.emit(Event {
            job: self.job.clone(),
            at_ms: now_ms(),
            kind,
        });
    }
}

/// Length of an incomplete UTF-8 sequence at the end of `bytes` (0 to 3).
fn incomplete_utf8_suffix(bytes: &[u8]) -> usize {
    for back in 1..=3.min(bytes.len()) {
        let b = bytes[bytes.len() - back];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // continuation byte: look further back
        }
        let needed = if b & 0b1110_0000 == 0b1100_0000 {
            2
        } else if b & 0b1111_0000 == 0b1110_0000 {
            3
        } else if b & 0b1111_1000 == 0b1111_0000 {
            4
        } else {
            1
        };
        return if needed > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<EventKind>>);
    impl EventSink for Collect {
        fn emit(&self, event: Event) {
            self.0.lock().expect("lock").push(event.kind);
        }
    }

    fn pump_all(chunks: &[&[u8]], secrets: &[&str]) -> (Vec<EventKind>, PumpResult) {
        let sink = Arc::new(Collect::default());
        let mut masker = Masker::new();
        for s in secrets {
            masker.add_secret(s);
        }
        let mut pump = OutputPump::new(
            "job".into(),
            Some(0),
            sink.clone(),
            &mut masker,
            CommandSettings::default(),
            false,
        );
        for chunk in chunks {
            pump.feed(chunk);
        }
        let result = pump.finish();
        let events = sink.0.lock().expect("lock").clone();
        (events, result)
    }

    fn log_text(events: &[EventKind]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                EventKind::Log { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn lines_split_across_reads_are_joined_and_masked() {
        let (events, _) = pump_all(&[b"hello sec", b"ret world\nbye"], &["secret"]);
        assert_eq!(log_text(&events), "hello *** world\nbye\n");
    }

    #[test]
    fn commands_are_applied_and_not_shown() {
        let (events, _) = pump_all(
            &[b"::group::Build\nline\n::add-mask::hunter2\nmy pass is hunter2\n::endgroup::\n::warning file=a.rs,line=3::careful\n"],
            &[],
        );
        assert_eq!(log_text(&events), "line\nmy pass is ***\n");
        assert!(matches!(&events[0], EventKind::GroupStarted { title, .. } if title == "Build"));
        assert!(
            events
                .iter()
                .any(|e| matches!(e, EventKind::GroupEnded { .. }))
        );
        assert!(events.iter().any(|e| matches!(
            e,
            EventKind::Annotation { annotation, .. }
                if annotation.message == "careful" && annotation.line == Some(3)
        )));
    }

    #[test]
    fn a_huge_line_without_newline_is_streamed_and_still_masked() {
        let mut big = vec![b'x'; 3 * MAX_LINE];
        // A secret straddling the point where the pump switches to streaming.
        let at = MAX_LINE - 3;
        big[at..at + 6].copy_from_slice(b"secret");
        let chunks: Vec<&[u8]> = big.chunks(4096).collect();
        let (events, _) = pump_all(&chunks, &["secret"]);
        let text = log_text(&events);
        assert!(!text.contains("secret"));
        assert!(text.contains("***"));
        assert_eq!(text.len(), 3 * MAX_LINE - 6 + 3 + 1);
        // No single event holds the whole line.
        assert!(events.len() > 2);
    }

    #[test]
    fn invalid_utf8_is_shown_lossily() {
        let (events, _) = pump_all(&[b"caf\xc3", b"\xa9 \xff\n"], &[]);
        assert_eq!(log_text(&events), "café \u{fffd}\n");
    }

    #[test]
    fn utf8_suffix_detection() {
        assert_eq!(incomplete_utf8_suffix(b"abc"), 0);
        assert_eq!(incomplete_utf8_suffix(b"ab\xc3"), 1);
        assert_eq!(incomplete_utf8_suffix(b"ab\xe2\x82"), 2);
        assert_eq!(incomplete_utf8_suffix("é".as_bytes()), 0);
        assert_eq!(incomplete_utf8_suffix(b"\xf0\x9f\x98"), 3);
    }
}
