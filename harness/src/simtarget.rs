//! Launching kube-sim, the Kubernetes API test double, as a child process.
//!
//! The child is spawned with `std::process` (not tied to any test's tokio runtime) and
//! `--exit-on-stdin-close` with its stdin held open by this process: when the test binary
//! exits, however it exits, the pipe closes and the sim shuts down with its MariaDB pods.
//! Its stdout and stderr go to files in its temporary directory.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::cleanup::{self, CleanupHandle};
use crate::process::tail_lines;

/// The line kube-sim prints on stdout once it serves requests.
pub const READY_PREFIX: &str = "kube-sim listening on ";
pub const SIM_BIN_ENV: &str = "E2E_SIM_BIN";
pub const SIM_BIN_NAME: &str = "kube-sim";
/// The same sim built by the root package for `cargo test --test e2e`, which does not
/// build other packages' binaries.
pub const SUITE_SIM_BIN_NAME: &str = "e2e-kube-sim";
/// Worker nodes the sim runs (`sim-worker`, `sim-worker2`, `sim-worker3`).
pub const SIM_NODES: u32 = 3;
/// Bound on kube-sim printing its ready line.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on kube-sim exiting (stopping its MariaDB servers) after stdin closes.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often startup checks the stdout file and the child's liveness.
const STARTUP_POLL: Duration = Duration::from_millis(25);

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(
        "failed to find the kube-sim binary (set {SIM_BIN_ENV}, or build it with `cargo build -p kube-sim`; looked in: {searched})"
    )]
    NotFound { searched: String },
    #[error("failed to prepare kube-sim's directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start kube-sim {}: {source}", bin.display())]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start kube-sim: it exited ({status}) before becoming ready; log {}: {log_tail}", log.display())]
    Exited {
        status: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error(
        "failed to start kube-sim: no `{READY_PREFIX}<url>` line within {}s; log {}: {log_tail}",
        timeout.as_secs_f64(),
        log.display()
    )]
    StartTimeout {
        timeout: Duration,
        log: PathBuf,
        log_tail: String,
    },
}

/// How to run kube-sim.
#[derive(Clone, Debug, PartialEq)]
pub struct SimSettings {
    pub bin: PathBuf,
    /// `--fault NAME` flags (`E2E_SIM_FAULTS=a,b`).
    pub faults: Vec<String>,
    pub nodes: u32,
    /// `E2E_KEEP=1`: leave the sim running after this process exits.
    pub keep: bool,
    pub start_timeout: Duration,
    /// How long the sim may take to exit after stdin closes before its group is killed.
    pub stop_timeout: Duration,
}

impl SimSettings {
    pub fn new(bin: PathBuf) -> SimSettings {
        SimSettings {
            bin,
            faults: Vec::new(),
            nodes: SIM_NODES,
            keep: false,
            start_timeout: START_TIMEOUT,
            stop_timeout: STOP_TIMEOUT,
        }
    }
}

/// A running kube-sim. Stopped by the cleanup registered at launch.
#[derive(Debug, Clone)]
pub struct SimProcess {
    pub url: String,
    pub kubeconfig: PathBuf,
    pub dir: PathBuf,
    pub pid: u32,
    pub cleanup: CleanupHandle,
}

impl SimProcess {
    /// Stops the sim now (closes its stdin, waits, kills after [`STOP_TIMEOUT`]) and
    /// removes its directory; with keep, prints how to reach and stop it instead.
    pub fn stop(&self) {
        cleanup::run(self.cleanup);
    }
}

/// `E2E_SIM_BIN`, else `kube-sim` next to the running executable or one directory up
/// (a test binary lives in `target/<profile>/deps/`).
pub fn locate_sim_binary(explicit: Option<&Path>) -> Result<PathBuf, SimError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_owned())
        } else {
            Err(SimError::NotFound {
                searched: format!("{SIM_BIN_ENV}={}", path.display()),
            })
        };
    }
    let exe = std::env::current_exe().ok();
    let candidates = sibling_candidates(exe.as_deref());
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .ok_or_else(|| SimError::NotFound {
            searched: candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Where a sibling `kube-sim` may be for an executable at `exe`.
pub fn sibling_candidates(exe: Option<&Path>) -> Vec<PathBuf> {
    let Some(dir) = exe.and_then(Path::parent) else {
        return Vec::new();
    };
    let mut dirs = vec![dir];
    dirs.extend(dir.parent());
    dirs.iter()
        .flat_map(|d| [d.join(SIM_BIN_NAME), d.join(SUITE_SIM_BIN_NAME)])
        .collect()
}

/// Starts kube-sim in a fresh temporary directory and waits for its ready line.
pub fn launch(settings: &SimSettings) -> Result<SimProcess, SimError> {
    let dir = tempfile::Builder::new()
        .prefix("sts-e2e-sim-")
        .tempdir()
        .map_err(|source| SimError::Dir {
            path: std::env::temp_dir(),
            source,
        })?
        .keep();
    match launch_in(settings, &dir) {
        Ok(sim) => Ok(sim),
        Err(err) => {
            if !settings.keep {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(err)
        }
    }
}

fn launch_in(settings: &SimSettings, dir: &Path) -> Result<SimProcess, SimError> {
    let state_dir = dir.join("state");
    let kubeconfig = dir.join("kubeconfig");
    let stdout_path = dir.join("kube-sim.stdout");
    let log_path = dir.join("kube-sim.log");
    std::fs::create_dir_all(&state_dir).map_err(|source| SimError::Dir {
        path: state_dir.clone(),
        source,
    })?;
    let stdout = create_file(&stdout_path)?;
    let stderr = create_file(&log_path)?;
    let mut command = sim_command(settings, &state_dir, &kubeconfig);
    command.stdout(stdout).stderr(stderr);
    command.stdin(if settings.keep {
        Stdio::null()
    } else {
        Stdio::piped()
    });
    let mut child = command.spawn().map_err(|source| SimError::Spawn {
        bin: settings.bin.clone(),
        source,
    })?;
    let pid = child.id();
    info!(pid, dir = %dir.display(), "started kube-sim");
    let url = match wait_for_ready_line(&mut child, &stdout_path, &log_path, settings.start_timeout)
    {
        Ok(url) => url,
        Err(err) => {
            stop_child(child, settings.stop_timeout);
            return Err(err);
        }
    };
    let cleanup = register_cleanup(settings, child, dir.to_owned(), &url, &kubeconfig);
    Ok(SimProcess {
        url,
        kubeconfig,
        dir: dir.to_owned(),
        pid,
        cleanup,
    })
}

/// The exact kube-sim command line. The sim gets its own process group: a terminal's
/// Ctrl-C reaches only this process, whose cleanup stops the sim in order, and a sim that
/// hangs can be killed together with its MariaDB servers.
pub fn sim_command(settings: &SimSettings, state_dir: &Path, kubeconfig: &Path) -> Command {
    let mut command = Command::new(&settings.bin);
    command.process_group(0);
    command
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--nodes")
        .arg(settings.nodes.to_string())
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--kubeconfig")
        .arg(kubeconfig);
    for fault in &settings.faults {
        command.arg("--fault").arg(fault);
    }
    if !settings.keep {
        command.arg("--exit-on-stdin-close");
    }
    command
}

fn create_file(path: &Path) -> Result<File, SimError> {
    File::create(path).map_err(|source| SimError::Dir {
        path: path.to_owned(),
        source,
    })
}

/// Polls the stdout file for the ready line until `timeout`, failing early if the child exits.
fn wait_for_ready_line(
    child: &mut Child,
    stdout_path: &Path,
    log_path: &Path,
    timeout: Duration,
) -> Result<String, SimError> {
    let deadline = Instant::now() + timeout;
    loop {
        let stdout = std::fs::read_to_string(stdout_path).unwrap_or_default();
        if let Some(url) = parse_ready_line(&stdout) {
            return Ok(url);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(SimError::Exited {
                status: status.to_string(),
                log: log_path.to_owned(),
                log_tail: log_tail(log_path),
            });
        }
        if Instant::now() >= deadline {
            return Err(SimError::StartTimeout {
                timeout,
                log: log_path.to_owned(),
                log_tail: log_tail(log_path),
            });
        }
        std::thread::sleep(STARTUP_POLL);
    }
}

/// The URL from a complete `kube-sim listening on <url>` line.
pub fn parse_ready_line(stdout: &str) -> Option<String> {
    stdout
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .find_map(|line| line.trim().strip_prefix(READY_PREFIX.trim_end()))
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
}

fn log_tail(path: &Path) -> String {
    let tail = tail_lines(&std::fs::read_to_string(path).unwrap_or_default(), 10);
    if tail.is_empty() {
        "(empty)".to_owned()
    } else {
        tail
    }
}

fn register_cleanup(
    settings: &SimSettings,
    child: Child,
    dir: PathBuf,
    url: &str,
    kubeconfig: &Path,
) -> CleanupHandle {
    let pid = child.id();
    let stop_timeout = settings.stop_timeout;
    if settings.keep {
        let message = format!(
            "E2E_KEEP=1: kube-sim (pid {pid}) keeps running at {url}\n  reach it:  KUBECONFIG={} kubectl get pods -A\n  stop it:   kill {pid}; rm -rf {}",
            kubeconfig.display(),
            dir.display()
        );
        return cleanup::register(format!("report kept kube-sim pid {pid}"), move || {
            eprintln!("{message}");
        });
    }
    cleanup::register(format!("stop kube-sim pid {pid}"), move || {
        stop_child(child, stop_timeout);
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            warn!(dir = %dir.display(), "could not remove kube-sim's directory: {err}");
        }
    })
}

/// Closes stdin (the sim's signal to shut down), waits up to `timeout`, then kills the
/// sim's process group.
fn stop_child(mut child: Child, timeout: Duration) {
    drop(child.stdin.take());
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(STARTUP_POLL),
            _ => break,
        }
    }
    warn!(
        pid = child.id(),
        "kube-sim did not exit within {timeout:?} after stdin closed; killing its process group"
    );
    crate::process::kill_group(child.id());
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_complete_ready_lines() {
        assert_eq!(
            parse_ready_line("booting\nkube-sim listening on http://127.0.0.1:4321\n"),
            Some("http://127.0.0.1:4321".to_owned())
        );
        assert_eq!(
            parse_ready_line("kube-sim listening on http://127.0.0.1:43"),
            None
        );
        assert_eq!(parse_ready_line("something else\n"), None);
    }

    #[test]
    fn candidates_cover_deps_and_profile_dirs() {
        let c = sibling_candidates(Some(Path::new("/t/debug/deps/e2e-123")));
        assert_eq!(
            c,
            vec![
                PathBuf::from("/t/debug/deps/kube-sim"),
                PathBuf::from("/t/debug/deps/e2e-kube-sim"),
                PathBuf::from("/t/debug/kube-sim"),
                PathBuf::from("/t/debug/e2e-kube-sim"),
            ]
        );
        assert!(sibling_candidates(None).is_empty());
    }

    #[test]
    fn missing_explicit_binary_says_how_to_build_it() {
        let err = locate_sim_binary(Some(Path::new("/nonexistent/kube-sim"))).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("cargo build -p kube-sim"), "{message}");
        assert!(message.contains("/nonexistent/kube-sim"), "{message}");
    }

    #[test]
    fn command_line_has_the_documented_flags() {
        let mut s = SimSettings::new(PathBuf::from("/bin/kube-sim"));
        s.faults = vec!["lose-writes".into(), "slow-start".into()];
        let cmd = sim_command(&s, Path::new("/d/state"), Path::new("/d/kubeconfig"));
        let line = crate::process::CommandLine(&cmd).to_string();
        assert_eq!(
            line,
            "/bin/kube-sim --listen 127.0.0.1:0 --nodes 3 --state-dir /d/state --kubeconfig /d/kubeconfig --fault lose-writes --fault slow-start --exit-on-stdin-close"
        );
        s.keep = true;
        let cmd = sim_command(&s, Path::new("/d/state"), Path::new("/d/kubeconfig"));
        assert!(
            !crate::process::CommandLine(&cmd)
                .to_string()
                .contains("--exit-on-stdin-close")
        );
    }
}
