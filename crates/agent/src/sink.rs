//! The runner's event sink of one job on the agent: log text goes to the job's [`LogSpool`],
//! every other event that matters to the server becomes a [`SequencedEvent`] queued for
//! upload, stamped with the log's size at that moment.

use crate::spool::LogSpool;
use gantry_protocol::agent::{JobEvent, JobEventKind, SequencedEvent};
use gantry_protocol::{Event, EventKind};
use gantry_runner::EventSink;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Events waiting for the server's acknowledgement, in `seq` order.
#[derive(Debug, Default)]
pub struct EventQueue {
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    /// The `seq` of the next event pushed.
    next_seq: u64,
    pending: VecDeque<SequencedEvent>,
}

impl EventQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues an event under the next `seq`.
    pub fn push(&self, event: JobEvent) -> u64 {
        let mut state = self.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        state.pending.push_back(SequencedEvent { seq, event });
        seq
    }

    /// The oldest `max` unacknowledged events.
    pub fn batch(&self, max: usize) -> Vec<SequencedEvent> {
        self.lock()
            .pending
            .iter()
            .take(max.max(1))
            .cloned()
            .collect()
    }

    /// Drops the events the server has: every `seq` below `next_seq`.
    pub fn acknowledge(&self, next_seq: u64) {
        let mut state = self.lock();
        while state.pending.front().is_some_and(|e| e.seq < next_seq) {
            state.pending.pop_front();
        }
    }

    /// Events waiting for acknowledgement.
    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().pending.is_empty()
    }

    /// Events pushed so far.
    pub fn pushed(&self) -> u64 {
        self.lock().next_seq
    }
}

/// Receives one job's runner events.
#[derive(Debug)]
pub struct JobSink {
    spool: Arc<LogSpool>,
    events: Arc<EventQueue>,
    /// Woken whenever there is something new to upload.
    wake: Arc<Notify>,
    /// Step names by index, for `step_finished`.
    step_names: Mutex<HashMap<usize, String>>,
}

impl JobSink {
    pub fn new(spool: Arc<LogSpool>, events: Arc<EventQueue>, wake: Arc<Notify>) -> Self {
        JobSink {
            spool,
            events,
            wake,
            step_names: Mutex::new(HashMap::new()),
        }
    }

    /// Appends text of the agent's own (already masked) to the log.
    pub fn log(&self, text: &str) {
        self.spool.append(text);
        self.wake.notify_one();
    }

    fn queue(&self, at_ms: i64, kind: JobEventKind) {
        self.events.push(JobEvent {
            at_ms,
            log_offset: self.spool.size(),
            kind,
        });
        self.wake.notify_one();
    }

    fn names(&self) -> std::sync::MutexGuard<'_, HashMap<usize, String>> {
        self.step_names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl EventSink for JobSink {
    fn emit(&self, event: Event) {
        let at_ms = event.at_ms;
        match event.kind {
            EventKind::Log { text, .. } => self.log(&text),
            EventKind::Debug { text, .. } => {
                let mut line = format!("##[debug]{text}");
                if !line.ends_with('\n') {
                    line.push('\n');
                }
                self.log(&line);
            }
            EventKind::StepStarted { step, name } => {
                self.names().insert(step, name.clone());
                self.queue(at_ms, JobEventKind::StepStarted { step, name });
            }
            EventKind::StepFinished {
                step,
                outcome,
                conclusion,
                duration_ms,
            } => {
                let name = self.names().get(&step).cloned().unwrap_or_default();
                self.queue(
                    at_ms,
                    JobEventKind::StepFinished {
                        step,
                        name,
                        outcome,
                        conclusion,
                        duration_ms,
                    },
                );
            }
            EventKind::Annotation { step, annotation } => {
                self.queue(at_ms, JobEventKind::Annotation { step, annotation });
            }
            EventKind::GroupStarted { step, title } => {
                self.queue(at_ms, JobEventKind::GroupStarted { step, title });
            }
            EventKind::GroupEnded { step } => {
                self.queue(at_ms, JobEventKind::GroupEnded { step });
            }
            EventKind::StepSummary { step, markdown } => {
                self.queue(at_ms, JobEventKind::StepSummary { step, markdown });
            }
            // The job's start and end travel as the assignment and the finish request.
            EventKind::JobStarted { .. }
            | EventKind::JobSkipped { .. }
            | EventKind::JobFinished { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_protocol::Conclusion;

    fn event(kind: EventKind) -> Event {
        Event {
            job: "build".into(),
            at_ms: 1,
            kind,
        }
    }

    #[test]
    fn steps_carry_the_log_offsets_around_their_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Arc::new(LogSpool::create(&dir.path().join("log")).expect("spool"));
        let events = Arc::new(EventQueue::default());
        let sink = JobSink::new(spool.clone(), events.clone(), Arc::new(Notify::new()));
        sink.emit(event(EventKind::Log {
            step: None,
            text: "setup\n".into(),
        }));
        sink.emit(event(EventKind::StepStarted {
            step: 0,
            name: "Build".into(),
        }));
        sink.emit(event(EventKind::Log {
            step: Some(0),
            text: "compiling\n".into(),
        }));
        sink.emit(event(EventKind::StepFinished {
            step: 0,
            outcome: Conclusion::Success,
            conclusion: Conclusion::Success,
            duration_ms: 3,
        }));
        let batch = events.batch(10);
        assert_eq!(batch.len(), 2);
        assert_eq!((batch[0].seq, batch[0].event.log_offset), (0, 6));
        assert_eq!((batch[1].seq, batch[1].event.log_offset), (1, 16));
        assert!(matches!(
            &batch[1].event.kind,
            JobEventKind::StepFinished { name, .. } if name == "Build"
        ));
        events.acknowledge(1);
        assert_eq!(events.batch(10)[0].seq, 1);
        events.acknowledge(2);
        assert!(events.is_empty());
        assert_eq!(spool.size(), 16);
    }
}
