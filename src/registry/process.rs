//! Running a helper process under a deadline of silence: it may take as long as it likes while
//! it prints something at least every `idle`; after `idle` without output it is killed. Used for
//! credential helpers (which print once, at the end: there the deadline bounds the whole run)
//! and for the `docker` CLI (whose `push` prints progress).

use std::io::{Read, Write as _};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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
    /// Killed after this long without output.
    Silent(Duration),
}

enum Event {
    Out(Vec<u8>),
    Err(Vec<u8>),
    Closed,
}

/// Runs `cmd` (stdin, stdout and stderr are set here), writing `input` to its stdin.
pub fn run_watched(cmd: &mut Command, input: &[u8], idle: Duration) -> Result<Ran, RunError> {
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
        match rx.recv_timeout(idle) {
            Ok(Event::Out(b)) => stdout.extend_from_slice(&b),
            Ok(Event::Err(b)) => stderr.extend_from_slice(&b),
            Ok(Event::Closed) | Err(mpsc::RecvTimeoutError::Disconnected) => open -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::Silent(idle));
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
            Duration::from_millis(300),
        );
        assert!(matches!(e, Err(RunError::Silent(_))), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        let ran = run_watched(
            Command::new("sh").args(["-c", "for i in 1 2 3 4; do echo $i; sleep 0.2; done; cat"]),
            b"in",
            Duration::from_millis(600),
        )
        .unwrap();
        assert!(ran.status.success());
        assert_eq!(ran.stdout, b"1\n2\n3\n4\nin");
    }
}
