//! Host processes for steps: spawned in their own process group with stdout and stderr on one
//! pipe (so lines keep their order), stopped with GitHub's sequence (SIGINT, a grace period,
//! SIGTERM, another grace period, SIGKILL to the whole group), and swept at the end of a job by
//! the tracking id every step process inherits in its environment.

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

/// The environment variable that marks every process started for a job. Processes that a step
/// leaves running in the background (daemons, `&` jobs) are found by it and killed when the job
/// ends, even when they left the step's process group.
pub const TRACKING_VAR: &str = "GANTRY_TRACKING_ID";

/// What to start.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The complete environment of the process (nothing is inherited).
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

/// Grace periods of the stop sequence. GitHub's runner uses 7.5 s after SIGINT and 2.5 s after
/// SIGTERM.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StopPolicy {
    pub interrupt_grace: Duration,
    pub terminate_grace: Duration,
}

impl Default for StopPolicy {
    fn default() -> Self {
        StopPolicy {
            interrupt_grace: Duration::from_millis(7500),
            terminate_grace: Duration::from_millis(2500),
        }
    }
}

/// Why a process was stopped before it exited on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    Cancelled,
    TimedOut,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessExit {
    /// The exit code, or `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Set when the process was stopped by us.
    pub stopped: Option<StopCause>,
}

impl ProcessExit {
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.stopped.is_none()
    }

    fn from_status(status: ExitStatus, stopped: Option<StopCause>) -> Self {
        use std::os::unix::process::ExitStatusExt;
        ProcessExit {
            code: status.code(),
            signal: status.signal(),
            stopped,
        }
    }
}

/// How long output is still read after the process exited, for what it wrote just before
/// exiting. Background processes that keep the pipe open do not hold the step longer than this.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(250);

const READ_BUFFER: usize = 64 * 1024;

/// Runs a process to its end, passing its combined stdout and stderr to `output` as it arrives.
/// When `stop` completes first, the process group is stopped with `policy`; when `kill` completes
/// (a forced stop), the group is killed at once, wherever the stop sequence is.
pub async fn run_process<F, S, K>(
    spec: &ProcessSpec,
    output: &mut F,
    stop: S,
    kill: K,
    policy: StopPolicy,
) -> io::Result<ProcessExit>
where
    F: FnMut(&[u8]),
    S: Future<Output = StopCause>,
    K: Future<Output = ()>,
{
    let (reader, writer) = io::pipe()?;
    let mut command = tokio::process::Command::new(&spec.program);
    command
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer))
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    // The parent's copies of the pipe's write end live in `command`: close them, or the read
    // end never sees end-of-file.
    drop(command);
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let mut rx = pipe::Receiver::from_owned_fd(reader.into())?;
    let mut buf = vec![0u8; READ_BUFFER];

    tokio::pin!(stop);
    tokio::pin!(kill);
    let mut killed = false;
    let mut stopped: Option<StopCause> = None;
    let mut output_open = true;
    // Deadline of the next escalation step of the stop sequence.
    let mut escalation: Option<(tokio::time::Instant, Signal)> = None;

    let status = loop {
        let escalate_at = escalation.map(|(at, _)| at);
        tokio::select! {
            read = rx.read(&mut buf), if output_open => match read {
                Ok(0) => output_open = false,
                Ok(n) => output(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => output_open = false,
            },
            status = child.wait() => break status?,
            cause = &mut stop, if stopped.is_none() => {
                stopped = Some(cause);
                signal_group(pgid, Signal::SIGINT);
                escalation = Some((
                    tokio::time::Instant::now() + policy.interrupt_grace,
                    Signal::SIGTERM,
                ));
            },
            _ = &mut kill, if !killed => {
                killed = true;
                stopped.get_or_insert(StopCause::Cancelled);
                escalation = None;
                signal_group(pgid, Signal::SIGKILL);
            },
            _ = sleep_until(escalate_at), if escalate_at.is_some() => {
                if let Some((_, signal)) = escalation.take() {
                    signal_group(pgid, signal);
                    if signal == Signal::SIGTERM {
                        escalation = Some((
                            tokio::time::Instant::now() + policy.terminate_grace,
                            Signal::SIGKILL,
                        ));
                    }
                }
            },
        }
    };

    if stopped.is_some() {
        // The leader is gone; whatever else is in its group goes with it.
        signal_group(pgid, Signal::SIGKILL);
    }

    // Read what is left in the pipe, without waiting on background processes holding it open.
    let deadline = tokio::time::Instant::now() + DRAIN_AFTER_EXIT;
    if output_open {
        loop {
            match tokio::time::timeout_at(deadline, rx.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => output(&buf[..n]),
            }
        }
    }
    Ok(ProcessExit::from_status(status, stopped))
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn signal_group(pgid: Option<Pid>, signal: Signal) {
    if let Some(pgid) = pgid {
        // ESRCH (the group is already gone) is the expected way for this to fail.
        let _ = killpg(pgid, signal);
    }
}

/// Where the kernel's pid counter stood at a moment: the processes created since then have
/// the pids handed out after it. A job's processes are all created after it starts, so the
/// sweep at its end ([`kill_tracked_processes`]) reads the environment of those only, instead
/// of every process of the machine.
#[derive(Clone, Copy, Debug)]
pub struct PidMark {
    last: u32,
    at: std::time::Instant,
}

impl PidMark {
    /// After this long, the pid counter may have gone all the way round (on a machine with a
    /// small `pid_max` forking fast): the sweep looks at every process.
    const TRUSTED_FOR: Duration = Duration::from_secs(5);

    /// The counter now; `None` where it cannot be read, or where `/proc` belongs to another
    /// pid namespace than this process (its pids would not be comparable).
    pub fn now() -> Option<PidMark> {
        let own = std::fs::read_link("/proc/self").ok()?;
        if own.to_str()?.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
        Some(PidMark {
            last: last_pid()?,
            at: std::time::Instant::now(),
        })
    }
}

/// The pid most recently handed out (`/proc/loadavg`'s fifth field).
fn last_pid() -> Option<u32> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    loadavg.split_whitespace().nth(4)?.parse().ok()
}

/// Whether `pid` was handed out after `after` and up to `upto`, the counter wrapping at
/// `pid_max` in between or not.
fn handed_out_between(pid: u32, after: u32, upto: u32) -> bool {
    if upto >= after {
        pid > after && pid <= upto
    } else {
        pid > after || pid <= upto
    }
}

/// Kills every process whose environment carries `TRACKING_VAR=<tracking_id>`, returning how
/// many were signalled. Called when a job ends, so that nothing a job started outlives it.
/// With the mark taken when the job started (recently enough), only processes created since
/// are looked at; then again those created while the sweep ran, until a pass finds none.
pub fn kill_tracked_processes(tracking_id: &str, since: Option<PidMark>) -> usize {
    let needle = format!("{TRACKING_VAR}={tracking_id}");
    let window = since
        .filter(|mark| mark.at.elapsed() < PidMark::TRUSTED_FOR)
        .and_then(|mark| Some((mark.last, last_pid()?)));
    let Some((mut after, mut upto)) = window else {
        return sweep(&needle, |_| true);
    };
    let mut killed = 0;
    for _ in 0..16 {
        let found = sweep(&needle, |pid| handed_out_between(pid, after, upto));
        killed += found;
        if found == 0 {
            break;
        }
        // What was killed may have forked meanwhile: the pids handed out since.
        let Some(now) = last_pid() else { break };
        if now == upto {
            break;
        }
        (after, upto) = (upto, now);
    }
    killed
}

/// One pass over `/proc`: kills the processes `wanted` by pid whose environment has `needle`.
fn sweep(needle: &str, wanted: impl Fn(u32) -> bool) -> usize {
    let own_pid = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    // One buffer and one read per process. An environment larger than the buffer is read on
    // in further reads.
    let mut environ = Vec::with_capacity(64 * 1024);
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own_pid || !wanted(pid) {
            continue;
        }
        environ.clear();
        let read = std::fs::File::open(format!("/proc/{pid}/environ"))
            .and_then(|mut file| std::io::Read::read_to_end(&mut file, &mut environ));
        if read.is_err() {
            continue;
        }
        let tracked = environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes());
        if tracked
            && let Ok(raw) = i32::try_from(pid)
            && kill(Pid::from_raw(raw), Signal::SIGKILL).is_ok()
        {
            killed += 1;
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str) -> ProcessSpec {
        ProcessSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: std::env::temp_dir(),
        }
    }

    async fn collect(spec: &ProcessSpec) -> (ProcessExit, String) {
        let mut out = Vec::new();
        let exit = run_process(
            spec,
            &mut |b: &[u8]| out.extend_from_slice(b),
            std::future::pending(),
            std::future::pending(),
            StopPolicy::default(),
        )
        .await
        .expect("spawn");
        (exit, String::from_utf8_lossy(&out).into_owned())
    }

    #[tokio::test]
    async fn stdout_and_stderr_arrive_in_order_on_one_stream() {
        let (exit, out) = collect(&sh("echo one; echo two >&2; echo three; exit 3")).await;
        assert_eq!(out, "one\ntwo\nthree\n");
        assert_eq!(exit.code, Some(3));
        assert!(!exit.success());
    }

    #[tokio::test]
    async fn only_the_given_environment_is_visible() {
        let mut spec = sh("echo \"[$FOO][$HOME]\"");
        spec.env.push(("FOO".into(), "bar".into()));
        let (_, out) = collect(&spec).await;
        assert_eq!(out, "[bar][]\n");
    }

    #[tokio::test]
    async fn a_background_process_holding_the_pipe_does_not_hold_the_step() {
        let started = Instant::now();
        let (exit, out) = collect(&sh("sleep 5 & echo done")).await;
        assert!(exit.success());
        assert_eq!(out, "done\n");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn stop_escalates_to_sigkill_when_sigint_and_sigterm_are_ignored() {
        let spec = sh("trap '' INT TERM; echo ready; while true; do sleep 0.05; done");
        let policy = StopPolicy {
            interrupt_grace: Duration::from_millis(200),
            terminate_grace: Duration::from_millis(200),
        };
        let started = Instant::now();
        let mut out = Vec::new();
        let exit = run_process(
            &spec,
            &mut |b: &[u8]| out.extend_from_slice(b),
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                StopCause::Cancelled
            },
            std::future::pending(),
            policy,
        )
        .await
        .expect("spawn");
        assert_eq!(exit.stopped, Some(StopCause::Cancelled));
        assert_eq!(exit.signal, Some(Signal::SIGKILL as i32));
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(String::from_utf8_lossy(&out), "ready\n");
    }

    #[tokio::test]
    async fn a_forced_stop_kills_at_once_during_the_grace_periods() {
        let spec = sh("trap 'echo INT' INT; trap 'echo TERM' TERM; echo ready; \
             while true; do sleep 0.05; done");
        let mut out = Vec::new();
        let exit = run_process(
            &spec,
            &mut |b: &[u8]| out.extend_from_slice(b),
            async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                StopCause::Cancelled
            },
            tokio::time::sleep(Duration::from_millis(500)),
            StopPolicy::default(),
        )
        .await
        .expect("spawn");
        assert_eq!(exit.stopped, Some(StopCause::Cancelled));
        assert_eq!(exit.signal, Some(Signal::SIGKILL as i32));
        // SIGTERM was due 7.5 s after SIGINT; the forced stop came first.
        assert_eq!(String::from_utf8_lossy(&out), "ready\nINT\n");
    }

    #[tokio::test]
    async fn sigint_is_enough_for_a_well_behaved_process() {
        // The stop comes once the shell runs its command: a SIGINT that arrives while dash is
        // still starting is caught by dash and lost when it execs the command.
        let spec = sh("echo ready; exec sleep 30");
        let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ready.clone();
        let exit = run_process(
            &spec,
            &mut |_: &[u8]| seen.store(true, std::sync::atomic::Ordering::SeqCst),
            async {
                while !ready.load(std::sync::atomic::Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                StopCause::TimedOut
            },
            std::future::pending(),
            StopPolicy::default(),
        )
        .await
        .expect("spawn");
        assert_eq!(exit.stopped, Some(StopCause::TimedOut));
        assert_eq!(exit.signal, Some(Signal::SIGINT as i32));
    }

    async fn daemon_is_killed(id: &str, since: impl Fn() -> Option<PidMark>) {
        let mut spec = sh("(trap '' TERM; setsid sleep 60 </dev/null >/dev/null 2>&1 &); echo ok");
        spec.env.push((TRACKING_VAR.into(), id.to_owned()));
        let (exit, _) = collect(&spec).await;
        assert!(exit.success());
        // The daemon left the step's process group (setsid); only the tracking id finds it.
        let mut found = 0;
        for _ in 0..50 {
            found = kill_tracked_processes(id, since());
            if found > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(found, 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(kill_tracked_processes(id, None), 0, "the daemon is gone");
    }

    #[tokio::test]
    async fn tracked_daemons_are_killed_at_job_end() {
        daemon_is_killed(&format!("test-{}", std::process::id()), || None).await;
    }

    #[tokio::test]
    async fn the_sweep_from_a_mark_finds_what_was_started_after_it() {
        let mark = PidMark::now().expect("this machine's /proc has the pid counter");
        daemon_is_killed(&format!("mark-{}", std::process::id()), || Some(mark)).await;
    }

    #[test]
    fn pids_handed_out_after_a_mark_are_recognized_across_the_wrap() {
        assert!(handed_out_between(101, 100, 200));
        assert!(handed_out_between(200, 100, 200));
        assert!(!handed_out_between(100, 100, 200));
        assert!(!handed_out_between(201, 100, 200));
        assert!(!handed_out_between(50, 100, 200));
        // The counter wrapped: 32000 .. pid_max, then 300 .. 20.
        assert!(handed_out_between(32_700, 32_000, 20));
        assert!(handed_out_between(20, 32_000, 20));
        assert!(!handed_out_between(21, 32_000, 20));
        assert!(!handed_out_between(31_999, 32_000, 20));
        // Nothing handed out since.
        assert!(!handed_out_between(100, 100, 100));
    }
}
