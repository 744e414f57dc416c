//! Running external commands (kind, docker, chaos templates) with a bound on how long
//! they may take, and errors that show the command line.

use std::fmt;
use std::io::ErrorKind;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("failed to run `{command}`: `{program}` was not found on PATH")]
    NotFound { command: String, program: String },
    #[error("failed to run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to run `{command}`: no exit after {}s; killed it", timeout.as_secs_f64())]
    Timeout { command: String, timeout: Duration },
    #[error("failed to run `{command}`: {status}{}", stderr_suffix(stderr))]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    let tail = tail_lines(stderr, 5);
    if tail.is_empty() {
        String::new()
    } else {
        format!("; stderr: {tail}")
    }
}

/// The last `n` non-empty lines of `text`, joined with " | ".
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// A command line for messages: program and arguments separated by spaces.
pub struct CommandLine<'a>(pub &'a Command);

impl fmt::Display for CommandLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.get_program().to_string_lossy())?;
        for arg in self.0.get_args() {
            write!(f, " {}", arg.to_string_lossy())?;
        }
        Ok(())
    }
}

/// Runs `command` to completion with captured output; kills it after `timeout`.
/// A non-zero exit is an error carrying the tail of stderr.
pub fn run(command: &mut Command, timeout: Duration) -> Result<Output, ProcessError> {
    let output = run_unchecked(command, timeout)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ProcessError::Failed {
            command: CommandLine(command).to_string(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// Like [`run`] but returns the output whatever the exit status.
///
/// The child stays owned (unreaped) here until it has exited or been killed, so the kill
/// on timeout can only ever reach this child, never a process that reused its pid. Two
/// threads drain stdout and stderr so a chatty child cannot block on a full pipe.
pub fn run_unchecked(command: &mut Command, timeout: Duration) -> Result<Output, ProcessError> {
    let line = CommandLine(command).to_string();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| spawn_error(line.clone(), command, source))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let waited = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                // Not reaped yet: the pid is still this child's.
                let _ = child.kill();
                let _ = child.wait();
                return Err(ProcessError::Timeout {
                    command: line,
                    timeout,
                });
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(source) => break Err(source),
        }
    };
    let status = waited.map_err(|source| ProcessError::Spawn {
        command: line,
        source,
    })?;
    // A grandchild may keep a pipe open after the child exited: wait for the output only
    // until the deadline, then keep what arrived.
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

/// How often [`run_unchecked`] looks whether its child exited.
const POLL: Duration = Duration::from_millis(10);

/// Reads a pipe to its end on a thread of its own; the bytes arrive on the receiver.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error leaves what was read so far, which is all a message needs.
            let _ = pipe.read_to_end(&mut buf);
        }
        // The receiver is gone when the output came too late; nothing to report then.
        let _ = tx.send(buf);
    });
    rx
}

fn spawn_error(command: String, cmd: &Command, source: std::io::Error) -> ProcessError {
    if source.kind() == ErrorKind::NotFound {
        ProcessError::NotFound {
            command,
            program: cmd.get_program().to_string_lossy().into_owned(),
        }
    } else {
        ProcessError::Spawn { command, source }
    }
}

/// SIGKILLs every process of the process group `pgid` (a group this process created for
/// a child it started, so the child's own children go too).
pub fn kill_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        // SAFETY: kill(2) on the negated id of a group we created; failure is harmless.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn captures_output_of_a_successful_command() {
        let out = run(
            Command::new("sh").args(["-c", "echo hello"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    }

    #[test]
    fn failure_carries_status_and_stderr() {
        let err = run(
            Command::new("sh").args(["-c", "echo boom >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("sh -c echo boom >&2; exit 3"), "{message}");
        assert!(message.contains("exit status: 3"), "{message}");
        assert!(message.contains("stderr: boom"), "{message}");
    }

    #[test]
    fn missing_program_is_not_found() {
        let err = run(
            &mut Command::new("definitely-not-a-program-xyz"),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(matches!(err, ProcessError::NotFound { .. }), "{err}");
    }

    #[test]
    fn slow_command_is_killed_at_the_timeout() {
        let started = Instant::now();
        let err = run(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail_lines("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(tail_lines("", 2), "");
    }
}
