//! Running a helper process under a deadline of silence: it may take as long as it likes while
//! it makes progress (prints something that counts as progress) at least every `idle`, and at
//! most `total` in all; after either it is killed. Used for credential helpers (which print
//! once, at the end: there the deadline bounds the whole run) and for the `docker` CLI (whose
//! `push` prints progress — and a retry countdown, which is not progress).

use std::io::{Read, Write as _};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a finished process left.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug)]
pub enum RunError {
    Spawn(std::io::Error),
    /// Killed after this long without progress.
    Silent(Duration),
    /// Killed after running this long in all.
    Overdue(Duration),
}

/// How a process is watched: the longest it may go without progress, the longest it may run,
/// and what output counts as progress.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    pub idle: Duration,
    pub total: Option<Duration>,
    pub progress: fn(&[u8]) -> bool,
}

impl Watch {
    /// Any output is progress; no bound on the whole run but the silence.
    pub fn silence(idle: Duration) -> Watch {
        Watch {
            idle,
            total: None,
            progress: |_| true,
        }
    }
}

enum Event {
    Out(Vec<u8>),
    Err(Vec<u8>),
    Closed,
}

/// Runs `cmd` (stdin, stdout and stderr are set here), writing `input` to its stdin, under
/// `watch`.
pub fn run_watched(cmd: &mut Command, input: &[u8], watch: Watch) -> Result<Ran, RunError> {
    let started = Instant::now();
    let mut moved = started;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(RunError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A process that exits without reading is judged by its exit status.
        let _ = stdin.write_all(input);
    }
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().map(|s| pump(s, tx.clone(), Event::Out));
    let err = child.stderr.take().map(|s| pump(s, tx, Event::Err));
    let mut open = usize::from(out.is_some()) + usize::from(err.is_some());
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while open > 0 {
        let silent_at = moved + watch.idle;
        let overdue_at = watch.total.map(|t| started + t);
        let until = overdue_at.map_or(silent_at, |o| o.min(silent_at));
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Event::Out(b)) => {
                if (watch.progress)(&b) {
                    moved = Instant::now();
                }
                stdout.extend_from_slice(&b);
            }
            Ok(Event::Err(b)) => {
                if (watch.progress)(&b) {
                    moved = Instant::now();
                }
                stderr.extend_from_slice(&b);
            }
            Ok(Event::Closed) | Err(mpsc::RecvTimeoutError::Disconnected) => open -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                let late = overdue_at.is_some_and(|o| now >= o);
                if !late && now < silent_at {
                    continue;
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(match (late, watch.total) {
                    (true, Some(total)) => RunError::Overdue(total),
                    _ => RunError::Silent(watch.idle),
                });
            }
        }
    }
    let status = child.wait().map_err(RunError::Spawn)?;
    Ok(Ran {
        status,
        stdout,
        stderr,
    })
}

fn pump(
    mut from: impl Read + Send + 'static,
    tx: mpsc::Sender<Event>,
    wrap: fn(Vec<u8>) -> Event,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(wrap(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Event::Closed);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_process_is_killed_and_a_talking_one_is_not() {
        let start = std::time::Instant::now();
        let e = run_watched(
            Command::new("sh").args(["-c", "exec sleep 30"]),
            b"",
            Watch::silence(Duration::from_millis(300)),
        );
        assert!(matches!(e, Err(RunError::Silent(_))), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        let ran = run_watched(
            Command::new("sh").args(["-c", "for i in 1 2 3 4; do echo $i; sleep 0.2; done; cat"]),
            b"in",
            Watch::silence(Duration::from_millis(600)),
        )
        .unwrap();
        assert!(ran.status.success());
        assert_eq!(ran.stdout, b"1\n2\n3\n4\nin");
    }

    #[test]
    fn output_that_is_no_progress_does_not_keep_a_process_alive_nor_does_talking_for_ever() {
        let chatter = || {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "while true; do echo waiting; sleep 0.1; done"]);
            cmd
        };
        let start = std::time::Instant::now();
        let e = run_watched(
            &mut chatter(),
            b"",
            Watch {
                idle: Duration::from_millis(500),
                total: None,
                progress: |b| !b.starts_with(b"waiting"),
            },
        );
        assert!(matches!(e, Err(RunError::Silent(_))), "{e:?}");
        let e = run_watched(
            &mut chatter(),
            b"",
            Watch {
                idle: Duration::from_secs(5),
                total: Some(Duration::from_millis(700)),
                progress: |_| true,
            },
        );
        assert!(matches!(e, Err(RunError::Overdue(_))), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(4));
    }
}
