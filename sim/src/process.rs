//! Child processes that never outlive the sim.
//!
//! Every child is forked from one dedicated thread that lives exactly as long as the sim,
//! with `PR_SET_PDEATHSIG(SIGKILL)`: the kernel kills the child when the thread that forked
//! it exits (tokio's blocking-pool threads exit when idle, so they cannot be used). Each
//! child leads its own process group so a signal reaches anything it forks, and
//! `kill_on_drop` covers a dropped handle.

use std::io;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("failed to start the process-spawner thread")]
    Thread(#[source] io::Error),
    #[error("failed to spawn {program}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to spawn {program}: the sim is shutting down")]
    Closed { program: String },
}

struct Request {
    command: std::process::Command,
    reply: oneshot::Sender<io::Result<tokio::process::Child>>,
}

/// Forks children from a thread that lives as long as the sim.
pub struct Spawner {
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Spawner {
    /// Starts the spawner thread; children are registered with `runtime`'s reaper.
    pub fn start(runtime: tokio::runtime::Handle) -> Result<Spawner, ProcessError> {
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("kube-sim-spawner".into())
            .spawn(move || {
                let _guard = runtime.enter();
                while let Ok(request) = rx.recv() {
                    let result = spawn_guarded(request.command);
                    // The requester may have given up; then the child is dropped and killed.
                    let _ = request.reply.send(result);
                }
            })
            .map_err(ProcessError::Thread)?;
        Ok(Spawner {
            requests: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Spawns `command` as a guarded child (own process group, dies with the sim).
    pub async fn spawn(
        &self,
        command: std::process::Command,
    ) -> Result<tokio::process::Child, ProcessError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let (reply, response) = oneshot::channel();
        let sender = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let sent = sender.is_some_and(|s| s.send(Request { command, reply }).is_ok());
        if !sent {
            return Err(ProcessError::Closed { program });
        }
        match response.await {
            Ok(result) => result.map_err(|source| ProcessError::Spawn { program, source }),
            Err(_) => Err(ProcessError::Closed { program }),
        }
    }

    /// Stops accepting requests and lets the thread end. Children still running get
    /// SIGKILL from the kernel when it does, so kill and reap them first.
    pub async fn close(&self) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            // The thread ends as soon as the channel is closed; joining cannot block long.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn spawn_guarded(command: std::process::Command) -> io::Result<tokio::process::Child> {
    let parent = std::process::id();
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true).process_group(0);
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe
    // functions (prctl, getppid, _exit).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The sim died between fork and prctl: do not run orphaned.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Sends `signal` to the process group led by `pid`. A group that is already gone is fine.
pub fn signal_group(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    // SAFETY: killpg has no memory-safety preconditions.
    unsafe {
        libc::killpg(pid, signal);
    }
}

/// Whether a process with this pid exists (zombies included).
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// A container's exit code as the kubelet reports it: the process's code, or 128 + the
/// signal that killed it; -1 when waiting for it failed.
pub fn exit_code(status: &io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => s
            .code()
            .or_else(|| s.signal().map(|sig| 128 + sig))
            .unwrap_or(-1),
        Err(_) => -1,
    }
}

/// The first file named `name` on PATH, then in `extra_dirs` (Debian puts mariadbd in
/// /usr/sbin, which is not on every PATH).
pub fn find_on_path(name: &str, extra_dirs: &[&str]) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(extra_dirs.iter().map(std::path::PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether the sim runs as root (mariadbd then needs `--user=root`).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_of_a_signal_is_128_plus_the_signal() {
        use std::os::unix::process::ExitStatusExt;
        let status = |raw| Ok(std::process::ExitStatus::from_raw(raw));
        assert_eq!(exit_code(&status(9)), 137);
        assert_eq!(exit_code(&status(1 << 8)), 1);
        assert_eq!(exit_code(&Err(io::Error::other("x"))), -1);
    }

    #[tokio::test]
    async fn child_runs_in_its_own_process_group_and_is_killed_by_group_signal() {
        let spawner = Spawner::start(tokio::runtime::Handle::current()).expect("spawner");
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        let mut child = spawner.spawn(cmd).await.expect("spawn sleep");
        let pid = child.id().expect("pid");
        // SAFETY: getpgid has no preconditions.
        let pgid = unsafe { libc::getpgid(pid as libc::pid_t) };
        assert_eq!(pgid, pid as libc::pid_t, "child leads its own group");
        signal_group(pid, libc::SIGKILL);
        let status = child.wait().await.expect("wait");
        assert!(!status.success());
        spawner.close().await;
    }

    #[tokio::test]
    async fn children_die_when_the_spawner_thread_ends() {
        let spawner = Spawner::start(tokio::runtime::Handle::current()).expect("spawner");
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        let mut child = spawner.spawn(cmd).await.expect("spawn sleep");
        spawner.close().await;
        let status = tokio::time::timeout(std::time::Duration::from_secs(5), child.wait())
            .await
            .expect("child killed by PR_SET_PDEATHSIG within 5 s")
            .expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    #[tokio::test]
    async fn closed_spawner_refuses() {
        let spawner = Spawner::start(tokio::runtime::Handle::current()).expect("spawner");
        spawner.close().await;
        let err = spawner
            .spawn(std::process::Command::new("true"))
            .await
            .expect_err("closed");
        assert!(matches!(err, ProcessError::Closed { .. }), "{err}");
    }
}
