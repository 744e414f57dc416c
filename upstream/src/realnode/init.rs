//! `kube-upstream node-init <plan.json>`: pid 1 of one real node.
//!
//! The launcher starts it with `unshare --pid --fork --mount --mount-proc --kill-child`
//! inside the node's network namespace, so the node is one process tree in its own pid and
//! mount namespaces, as a kind node is one container: when this process dies, the kernel
//! kills every process of the node (containerd, its shims, the containers, the kubelet,
//! kube-proxy) and the node's mounts go with its mount namespace. That is the node kill.
//!
//! It binds the run-dir paths over the host paths the components write anyway, starts
//! containerd, loads the images once, then starts the kubelet and kube-proxy, and reaps
//! every orphan (it is the namespace's init). It exits when one of its components exits:
//! a node whose kubelet or runtime died is a dead node.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long containerd has to open its socket.
const CONTAINERD_SOCKET_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InitPlan {
    pub node: String,
    /// (run-dir source, host path) pairs, bound in the node's mount namespace.
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// Paths that get a fresh tmpfs in the node's mount namespace.
    pub tmpfs: Vec<PathBuf>,
    pub containerd: Component,
    pub socket: PathBuf,
    pub ctr: PathBuf,
    /// Image archives imported into containerd's `k8s.io` namespace before the kubelet starts.
    pub images: Vec<PathBuf>,
    /// Written once the images are in: a restarted node does not import them again.
    pub images_marker: PathBuf,
    /// Started after the images, in order.
    pub rest: Vec<Component>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub log: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("failed to read the node plan {}", path.display())]
    Plan {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the node plan {} is not valid", path.display())]
    PlanFormat {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to mount {what} on {}", target.display())]
    Mount {
        what: String,
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start {name} ({})", program.display())]
    Spawn {
        name: String,
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("containerd did not open {} within {timeout:?} (log: {})", socket.display(), log.display())]
    Socket {
        socket: PathBuf,
        timeout: Duration,
        log: PathBuf,
    },
    #[error("failed to import image {} into containerd: {stderr}", archive.display())]
    Import { archive: PathBuf, stderr: String },
    #[error("{name} exited ({status}); the node stops (log: {})", log.display())]
    Exited {
        name: String,
        status: String,
        log: PathBuf,
    },
}

/// Reads the plan and runs the node; returns only when the node must stop.
pub fn run(plan_path: &Path) -> Result<(), InitError> {
    let text = fs::read(plan_path).map_err(|source| InitError::Plan {
        path: plan_path.to_owned(),
        source,
    })?;
    let plan: InitPlan = serde_json::from_slice(&text).map_err(|source| InitError::PlanFormat {
        path: plan_path.to_owned(),
        source,
    })?;
    for target in &plan.tmpfs {
        mount(None, target)?;
    }
    for (source, target) in &plan.binds {
        mount(Some(source), target)?;
    }
    let _ = fs::remove_file(&plan.socket);
    let mut running = vec![spawn(&plan.containerd)?];
    wait_for_socket(&plan, &mut running)?;
    if !plan.images_marker.exists() {
        import_images(&plan)?;
        let _ = fs::write(&plan.images_marker, "");
    }
    for component in &plan.rest {
        running.push(spawn(component)?);
    }
    eprintln!("node-init {}: started {}", plan.node, names(&running));
    reap_until_one_exits(&running)
}

struct Running {
    pid: libc::pid_t,
    component: Component,
}

fn names(running: &[Running]) -> String {
    running
        .iter()
        .map(|r| r.component.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A bind mount of `source` (or a tmpfs when None) on `target`.
fn mount(source: Option<&Path>, target: &Path) -> Result<(), InitError> {
    let what = source.map_or_else(|| "a tmpfs".to_owned(), |s| s.display().to_string());
    let err = |source| InitError::Mount {
        what: what.clone(),
        target: target.to_owned(),
        source,
    };
    if let Some(source) = source {
        fs::create_dir_all(source).map_err(err)?;
    }
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|e| err(std::io::Error::other(e)))
    };
    let target_c = c(target)?;
    let (src_c, fstype, flags) = match source {
        Some(s) => (c(s)?, None, libc::MS_BIND | libc::MS_REC),
        None => (c(Path::new("tmpfs"))?, Some(c(Path::new("tmpfs"))?), 0),
    };
    // SAFETY: valid NUL-terminated strings that outlive the call; no data argument.
    let rc = unsafe {
        libc::mount(
            src_c.as_ptr(),
            target_c.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(())
}

fn spawn(component: &Component) -> Result<Running, InitError> {
    let err = |source| InitError::Spawn {
        name: component.name.clone(),
        program: component.program.clone(),
        source,
    };
    if let Some(dir) = component.log.parent() {
        fs::create_dir_all(dir).map_err(err)?;
    }
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&component.log)
        .map_err(err)?;
    let log2 = log.try_clone().map_err(err)?;
    let child = Command::new(&component.program)
        .args(&component.args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(err)?;
    let pid = libc::pid_t::try_from(child.id()).unwrap_or(-1);
    // The child is reaped by the init's own loop, not through this handle.
    std::mem::forget(child);
    Ok(Running {
        pid,
        component: component.clone(),
    })
}

fn wait_for_socket(plan: &InitPlan, running: &mut [Running]) -> Result<(), InitError> {
    let began = Instant::now();
    let mut delay = Duration::from_millis(20);
    while !plan.socket.exists() {
        if let Some(exit) = reap_nonblocking(running) {
            return Err(exit);
        }
        if began.elapsed() > CONTAINERD_SOCKET_TIMEOUT {
            return Err(InitError::Socket {
                socket: plan.socket.clone(),
                timeout: CONTAINERD_SOCKET_TIMEOUT,
                log: plan.containerd.log.clone(),
            });
        }
        // Polling a file the daemon creates: there is no event to wait on.
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(250));
    }
    Ok(())
}

fn import_images(plan: &InitPlan) -> Result<(), InitError> {
    for archive in &plan.images {
        let began = Instant::now();
        let out = Command::new(&plan.ctr)
            .arg("--address")
            .arg(&plan.socket)
            .args(["--namespace", "k8s.io", "images", "import", "--local"])
            .arg(archive)
            .output()
            .map_err(|source| InitError::Spawn {
                name: "ctr images import".into(),
                program: plan.ctr.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(InitError::Import {
                archive: archive.clone(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        eprintln!(
            "node-init {}: imported {} in {:?}",
            plan.node,
            archive.display(),
            began.elapsed()
        );
    }
    Ok(())
}

/// Reaps exited children without blocking; a component's exit is returned as the error.
fn reap_nonblocking(running: &[Running]) -> Option<InitError> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return None;
        }
        if let Some(exit) = component_exit(running, pid, status) {
            return Some(exit);
        }
    }
}

fn component_exit(running: &[Running], pid: libc::pid_t, status: i32) -> Option<InitError> {
    let r = running.iter().find(|r| r.pid == pid)?;
    let status = if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else {
        format!("signal {}", libc::WTERMSIG(status))
    };
    Some(InitError::Exited {
        name: r.component.name.clone(),
        status,
        log: r.component.log.clone(),
    })
}

/// As the namespace's init: reaps every child and orphan until a component exits.
fn reap_until_one_exits(running: &[Running]) -> Result<(), InitError> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // ECHILD: nothing left to run.
            return Ok(());
        }
        if let Some(exit) = component_exit(running, pid, status) {
            return Err(exit);
        }
    }
}
