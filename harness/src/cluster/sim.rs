//! Launching a local target as a child process: kube-sim (the Kubernetes API test double) or
//! kube-upstream (the official control plane with real nodes). Both are launched alike.
//!
//! The child is spawned with `std::process` (not tied to any test's tokio runtime) and
//! `--exit-on-stdin-close` with its stdin held open by this process: when the test binary
//! exits, however it exits, the pipe closes and the sim shuts down with its MariaDB pods.
//! Its stderr goes to a file in its temporary directory; its stdout (only the ready line)
//! is read through a pipe and copied to a file beside it.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use tracing::{info, warn};

use crate::support::cleanup::{self, CleanupHandle};
use crate::support::process::tail_lines;

/// The line kube-sim prints on stdout once it serves requests.
pub const READY_PREFIX: &str = "kube-sim listening on ";
/// The line kube-upstream prints once its control plane and real nodes are ready:
/// `kube-upstream ready: kubeconfig=<path> control=<url> version=<gitVersion> nodes=real
/// kubelet=<release> containerd=<release> image=<workload image>`.
pub const UPSTREAM_READY_PREFIX: &str = "kube-upstream ready: ";
pub const UPSTREAM_BIN_NAME: &str = "kube-upstream";
pub const SUITE_UPSTREAM_BIN_NAME: &str = "e2e-kube-upstream";
/// Bound on kube-upstream's ready line: etcd, the API server, the controllers, the
/// scheduler, CoreDNS and three real nodes (32 s here; 63-82 s while builds shared the
/// cores, README).
pub const UPSTREAM_START_TIMEOUT: Duration = Duration::from_secs(180);

/// Which local target a launched process is: both print a ready line naming the URL of their
/// control endpoints (`/sim/v1/...`), write a kubeconfig, and exit when stdin closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// kube-sim: the API test double; the control endpoints are on its API URL.
    Sim,
    /// kube-upstream: the official control plane; its control server is separate.
    Upstream,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Sim => SIM_BIN_NAME,
            Flavor::Upstream => UPSTREAM_BIN_NAME,
        }
    }

    fn ready_prefix(self) -> &'static str {
        match self {
            Flavor::Sim => READY_PREFIX,
            Flavor::Upstream => UPSTREAM_READY_PREFIX,
        }
    }

    fn bin_names(self) -> [&'static str; 2] {
        match self {
            Flavor::Sim => [SIM_BIN_NAME, SUITE_SIM_BIN_NAME],
            Flavor::Upstream => [UPSTREAM_BIN_NAME, SUITE_UPSTREAM_BIN_NAME],
        }
    }
}
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

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(
        "failed to find the {name} binary (set {SIM_BIN_ENV} for kube-sim, or build it with `cargo build -p {name}`; looked in: {searched})"
    )]
    NotFound {
        name: &'static str,
        searched: String,
    },
    #[error("failed to prepare kube-sim's directory {}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start kube-sim {}", bin.display())]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start {name}: it exited ({status}) before becoming ready; log {}: {log_tail}", log.display())]
    Exited {
        name: &'static str,
        status: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error(
        "failed to start {name}: no ready line within {}s; log {}: {log_tail}",
        timeout.as_secs_f64(),
        log.display()
    )]
    StartTimeout {
        name: &'static str,
        timeout: Duration,
        log: PathBuf,
        log_tail: String,
    },
}

/// How to run kube-sim.
#[derive(Clone, Debug, PartialEq)]
pub struct SimSettings {
    pub flavor: Flavor,
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
            flavor: Flavor::Sim,
            bin,
            faults: Vec::new(),
            nodes: SIM_NODES,
            keep: false,
            start_timeout: START_TIMEOUT,
            stop_timeout: STOP_TIMEOUT,
        }
    }

    /// kube-upstream at `bin`, with its longer start bound.
    pub fn upstream(bin: PathBuf) -> SimSettings {
        SimSettings {
            flavor: Flavor::Upstream,
            start_timeout: UPSTREAM_START_TIMEOUT,
            ..SimSettings::new(bin)
        }
    }
}

/// A running kube-sim. Stopped by the cleanup registered at launch.
#[derive(Debug, Clone)]
pub struct SimProcess {
    pub flavor: Flavor,
    /// The base URL of the control endpoints (`/sim/v1/...`).
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
                name: SIM_BIN_NAME,
                searched: format!("{SIM_BIN_ENV}={}", path.display()),
            })
        };
    }
    locate_beside_exe(Flavor::Sim)
}

/// `kube-upstream` next to the running executable or one directory up.
pub fn locate_upstream_binary() -> Result<PathBuf, SimError> {
    locate_beside_exe(Flavor::Upstream)
}

fn locate_beside_exe(flavor: Flavor) -> Result<PathBuf, SimError> {
    let exe = std::env::current_exe().ok();
    let candidates = flavor_candidates(exe.as_deref(), flavor);
    newest(&candidates).ok_or_else(|| SimError::NotFound {
        name: flavor.name(),
        searched: candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The most recently built of the candidates that exist (the first on a tie): a
/// `kube-sim` left by an older `cargo build -p kube-sim` must not win over the
/// `e2e-kube-sim` this very test build made.
fn newest(candidates: &[PathBuf]) -> Option<PathBuf> {
    let built = |c: &PathBuf| std::fs::metadata(c).and_then(|m| m.modified()).ok();
    candidates
        .iter()
        .filter(|c| c.is_file())
        .fold(
            None,
            |best: Option<(&PathBuf, Option<std::time::SystemTime>)>, c| {
                let t = built(c);
                match best {
                    Some((_, bt)) if bt >= t => best,
                    _ => Some((c, t)),
                }
            },
        )
        .map(|(c, _)| c.clone())
}

/// Where a sibling `kube-sim` may be for an executable at `exe`.
pub fn sibling_candidates(exe: Option<&Path>) -> Vec<PathBuf> {
    flavor_candidates(exe, Flavor::Sim)
}

fn flavor_candidates(exe: Option<&Path>, flavor: Flavor) -> Vec<PathBuf> {
    let Some(dir) = exe.and_then(Path::parent) else {
        return Vec::new();
    };
    let mut dirs = vec![dir];
    dirs.extend(dir.parent());
    dirs.iter()
        .flat_map(|d| flavor.bin_names().map(|name| d.join(name)))
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
    let stdout_path = dir.join(format!("{}.stdout", settings.flavor.name()));
    let log_path = dir.join(format!("{}.log", settings.flavor.name()));
    std::fs::create_dir_all(&state_dir).map_err(|source| SimError::Dir {
        path: state_dir.clone(),
        source,
    })?;
    let stdout_copy = create_file(&stdout_path)?;
    let stderr = create_file(&log_path)?;
    let mut command = sim_command(settings, &state_dir, &kubeconfig);
    command.stdout(Stdio::piped()).stderr(stderr);
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
    info!(pid, dir = %dir.display(), target = settings.flavor.name(), "started");
    let ready = match child.stdout.take() {
        Some(stdout) => read_ready_line(stdout, stdout_copy, settings.flavor),
        // Unreachable with Stdio::piped(); a closed channel reads as "exited".
        None => mpsc::channel().1,
    };
    let (child, url) = wait_for_ready(child, &ready, settings, &log_path)?;
    let cleanup = register_cleanup(settings, child, dir.to_owned(), &url, &kubeconfig);
    Ok(SimProcess {
        flavor: settings.flavor,
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
    if settings.flavor == Flavor::Upstream {
        command
            .arg("--run-dir")
            .arg(state_dir)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--nodes")
            .arg(settings.nodes.to_string());
        command.arg(if settings.keep {
            "--keep"
        } else {
            "--exit-on-stdin-close"
        });
        return command;
    }
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

/// Waits for the ready line; when none comes (the sim exited, or the bound passed), stops
/// the sim and says why with the tail of its log.
fn wait_for_ready(
    child: Child,
    ready: &mpsc::Receiver<String>,
    settings: &SimSettings,
    log_path: &Path,
) -> Result<(Child, String), SimError> {
    match ready.recv_timeout(settings.start_timeout) {
        Ok(url) => Ok((child, url)),
        Err(RecvTimeoutError::Timeout) => {
            stop_child(child, settings.stop_timeout);
            Err(SimError::StartTimeout {
                name: settings.flavor.name(),
                timeout: settings.start_timeout,
                log: log_path.to_owned(),
                log_tail: log_tail(log_path),
            })
        }
        Err(RecvTimeoutError::Disconnected) => {
            let status = stop_child(child, settings.stop_timeout).map_or_else(
                || "closed its stdout but kept running".to_owned(),
                |s| s.to_string(),
            );
            Err(SimError::Exited {
                name: settings.flavor.name(),
                status,
                log: log_path.to_owned(),
                log_tail: log_tail(log_path),
            })
        }
    }
}

/// Copies the sim's stdout into `copy` on a thread and sends the URL of its ready line.
/// The channel closes when the sim closes its stdout, that is when it exits.
fn read_ready_line(stdout: ChildStdout, mut copy: File, flavor: Flavor) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(copy, "{line}");
            if let Some(url) = parse_flavor_ready_line(&format!("{line}\n"), flavor) {
                // The launcher may have stopped waiting; nothing to tell it then.
                let _ = tx.send(url);
            }
        }
    });
    rx
}

/// The `key=value` fields of the first complete ready line of `flavor` in `stdout`.
pub fn ready_fields(stdout: &str, flavor: Flavor) -> std::collections::BTreeMap<String, String> {
    stdout
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .find_map(|line| line.trim().strip_prefix(flavor.ready_prefix().trim_end()))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|f| f.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The URL from a complete `kube-sim listening on <url>` line.
pub fn parse_ready_line(stdout: &str) -> Option<String> {
    parse_flavor_ready_line(stdout, Flavor::Sim)
}

/// The control URL from a complete ready line of `flavor` (kube-upstream's is the value of
/// its `control=` field).
pub fn parse_flavor_ready_line(stdout: &str, flavor: Flavor) -> Option<String> {
    stdout
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .find_map(|line| line.trim().strip_prefix(flavor.ready_prefix().trim_end()))
        .and_then(|rest| match flavor {
            Flavor::Sim => Some(rest.trim()),
            Flavor::Upstream => rest
                .split_whitespace()
                .find_map(|field| field.strip_prefix("control=")),
        })
        .map(str::to_owned)
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
    let name = settings.flavor.name();
    if settings.keep {
        let message = format!(
            "E2E_KEEP=1: {name} (pid {pid}) keeps running, control endpoints at {url}\n  reach it:  KUBECONFIG={} kubectl get pods -A\n  stop it:   kill {pid}; rm -rf {}",
            kubeconfig.display(),
            dir.display()
        );
        return cleanup::register(format!("report kept {name} pid {pid}"), move || {
            eprintln!("{message}");
        });
    }
    cleanup::register(format!("stop {name} pid {pid}"), move || {
        stop_child(child, stop_timeout);
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            warn!(dir = %dir.display(), "could not remove kube-sim's directory: {err}");
        }
    })
}

/// Closes stdin (the sim's signal to shut down), waits up to `timeout`, then kills the
/// sim's process group. Returns the exit status when the sim exited by itself.
fn stop_child(mut child: Child, timeout: Duration) -> Option<ExitStatus> {
    drop(child.stdin.take());
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    // Child::wait blocks; the thread also reaps the sim if it has to be killed.
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    if let Ok(Ok(status)) = rx.recv_timeout(timeout) {
        return Some(status);
    }
    warn!(
        pid,
        "kube-sim did not exit within {timeout:?} after stdin closed; killing its process group"
    );
    crate::support::process::kill_group(pid);
    // SIGKILL is not instant: wait for the reaper so no sim outlives its cleanup.
    if rx.recv_timeout(KILL_REAP_TIMEOUT).is_err() {
        warn!(
            pid,
            "kube-sim was not reaped within {KILL_REAP_TIMEOUT:?} of SIGKILL"
        );
    }
    None
}

/// How long a SIGKILLed sim may take to be reaped.
const KILL_REAP_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the kube-sim binary: a shell script with `body`.
    fn fake_sim(dir: &Path, body: &str) -> SimSettings {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join("fake-kube-sim");
        std::fs::write(&bin, format!("#!/bin/sh\n{body}\n")).expect("write fake sim");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut settings = SimSettings::new(bin);
        settings.start_timeout = Duration::from_secs(20);
        settings.stop_timeout = Duration::from_secs(5);
        settings
    }

    #[test]
    fn launch_reads_the_ready_line_and_stop_ends_the_sim() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Prints its URL, then runs until its stdin closes, as kube-sim does.
        let settings = fake_sim(
            dir.path(),
            "echo booting; echo 'kube-sim listening on http://127.0.0.1:4321'; cat >/dev/null",
        );
        let sim = launch(&settings).expect("fake sim becomes ready");
        assert_eq!(sim.url, "http://127.0.0.1:4321");
        let copied = std::fs::read_to_string(sim.dir.join("kube-sim.stdout")).expect("stdout copy");
        assert!(copied.starts_with("booting\n"), "{copied}");
        sim.stop();
        assert!(!sim.dir.exists(), "stop removes the sim's directory");
        // SAFETY: signal 0 only asks whether the pid still exists.
        let alive = unsafe { libc::kill(sim.pid as libc::pid_t, 0) } == 0;
        assert!(!alive, "the fake sim (pid {}) should have exited", sim.pid);
    }

    #[test]
    fn a_sim_that_exits_early_reports_its_status_and_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = fake_sim(dir.path(), "echo 'mariadbd not found' >&2; exit 3");
        let err = launch(&settings).expect_err("the fake sim exits");
        let message = err.to_string();
        assert!(matches!(err, SimError::Exited { .. }), "{message}");
        assert!(message.contains("exit status: 3"), "{message}");
        assert!(message.contains("mariadbd not found"), "{message}");
    }

    #[test]
    fn a_sim_that_never_gets_ready_times_out_and_is_killed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = fake_sim(dir.path(), "echo 'still booting' >&2; exec sleep 30");
        settings.start_timeout = Duration::from_millis(300);
        settings.stop_timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = launch(&settings).expect_err("no ready line");
        let message = err.to_string();
        assert!(matches!(err, SimError::StartTimeout { .. }), "{message}");
        assert!(message.contains("within 0.3s"), "{message}");
        assert!(message.contains("still booting"), "{message}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
    }

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
    fn parses_the_upstream_control_url() {
        let line = "kube-upstream ready: kubeconfig=/r/admin.kubeconfig control=http://127.0.0.1:4100 version=v1.37.2\n";
        assert_eq!(
            parse_flavor_ready_line(line, Flavor::Upstream),
            Some("http://127.0.0.1:4100".to_owned())
        );
        assert_eq!(parse_flavor_ready_line(line, Flavor::Sim), None);
        let real = "kube-upstream ready: kubeconfig=/k control=http://127.0.0.1:1 version=v1.37.2 nodes=real kubelet=v1.37.2 containerd=v2.4.2 image=localhost/x:1\n";
        let fields = ready_fields(real, Flavor::Upstream);
        assert_eq!(fields["nodes"], "real");
        assert_eq!(fields["image"], "localhost/x:1");
        assert!(!ready_fields(line, Flavor::Upstream).contains_key("nodes"));
        assert_eq!(
            parse_flavor_ready_line("kube-upstream ready: kubeconfig=/k\n", Flavor::Upstream),
            None
        );
    }

    #[test]
    fn upstream_command_line_has_its_flags() {
        let s = SimSettings::upstream(PathBuf::from("/bin/kube-upstream"));
        let cmd = sim_command(&s, Path::new("/d/state"), Path::new("/d/kubeconfig"));
        assert_eq!(
            crate::support::process::CommandLine(&cmd).to_string(),
            "/bin/kube-upstream --run-dir /d/state --kubeconfig /d/kubeconfig --nodes 3 --exit-on-stdin-close"
        );
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
    fn the_newest_sibling_binary_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("kube-sim");
        let new = dir.path().join("e2e-kube-sim");
        std::fs::write(&old, b"old").expect("write");
        std::fs::write(&new, b"new").expect("write");
        let earlier = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .and_then(|f| f.set_modified(earlier))
            .expect("set mtime");
        let candidates = vec![old.clone(), new.clone(), dir.path().join("absent")];
        assert_eq!(newest(&candidates), Some(new));
        assert_eq!(newest(&candidates[..1]), Some(old));
        assert_eq!(newest(&candidates[2..]), None);
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
        let line = crate::support::process::CommandLine(&cmd).to_string();
        assert_eq!(
            line,
            "/bin/kube-sim --listen 127.0.0.1:0 --nodes 3 --state-dir /d/state --kubeconfig /d/kubeconfig --fault lose-writes --fault slow-start --exit-on-stdin-close"
        );
        s.keep = true;
        let cmd = sim_command(&s, Path::new("/d/state"), Path::new("/d/kubeconfig"));
        assert!(
            !crate::support::process::CommandLine(&cmd)
                .to_string()
                .contains("--exit-on-stdin-close")
        );
    }
}
