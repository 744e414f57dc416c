//! The `kube-upstream` binary end to end: one ready line, the control endpoints, and nothing
//! left after SIGTERM, stdin EOF or a failed start. Needs root, the official binaries, the
//! image archives and the host's runc and CNI plugins; otherwise each test is skipped with
//! the reason printed.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube_upstream::controlplane::{Binaries, default_bin_dir};
use kube_upstream::netns;
use kube_upstream::realnode::{IMAGE_ARCHIVES, NODE_BINARIES, NodeInputs, default_image_dir};

const LAUNCHER: &str = env!("CARGO_BIN_EXE_kube-upstream");

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (pod network)".into());
    }
    if let Err(e) = Binaries::find(&default_bin_dir()) {
        return Some(e.to_string());
    }
    if let Err(e) = NodeInputs::find(&default_bin_dir(), &default_image_dir(), &[]) {
        return Some(kube_upstream::report(&e));
    }
    None
}

/// Reads stdout until the ready line (bounded); returns its fields.
fn wait_ready(child: &mut Child) -> (String, String, String) {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("a ready line within 120 s");
    assert!(rx.try_recv().is_err(), "exactly one line on stdout");
    let rest = line
        .strip_prefix("kube-upstream ready: ")
        .unwrap_or_else(|| panic!("not a ready line: {line}"));
    let field = |k: &str| {
        rest.split(' ')
            .find_map(|f| f.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing in {line}"))
            .to_owned()
    };
    (field("kubeconfig"), field("control"), field("version"))
}

fn http(url: &str, method: &str, path: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect control");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn wait_exit(child: &mut Child, bound: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "launcher still running after {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_nothing_left(run_dir: &Path) {
    let needle = run_dir.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(!cmdline.contains(&needle), "process left: {cmdline}");
    }
    assert!(!run_dir.exists(), "run dir left");
}

/// SIGTERM after ready: exit 0, every process, namespace, link and the run dir gone.
#[test]
fn ready_line_control_endpoints_and_clean_sigterm() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let kubeconfig = tmp.path().join("kubeconfig");
    let netns_before = netns::list_netns();
    let mut child = Command::new(LAUNCHER)
        .args(["--nodes", "1", "--run-dir"])
        .arg(&run_dir)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn launcher");
    let (kc, control, version) = wait_ready(&mut child);
    assert_eq!(kc, kubeconfig.display().to_string());
    assert_eq!(version, "v1.37.2");
    assert!(kubeconfig.exists());
    let info = http(&control, "GET", "/sim/v1/info");
    assert!(info.starts_with("HTTP/1.1 200"), "{info}");
    assert!(info.contains("\"target\":\"upstream\""), "{info}");
    assert!(info.contains("upstream-worker"), "{info}");
    let missing = http(&control, "POST", "/sim/v1/nodes/nope/stop");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let ours: Vec<String> = netns::list_netns()
        .into_iter()
        .filter(|n| !netns_before.contains(n))
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");

    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert!(status.success(), "{status}");
    assert_nothing_left(&run_dir);
    assert!(!kubeconfig.exists(), "kubeconfig left");
    for ns in ours {
        assert!(!netns::list_netns().contains(&ns), "{ns} left");
    }
}

/// Real nodes (the default) check their binaries before anything is made: a missing one
/// exits 2, is named with the script that builds it, and nothing is created.
#[test]
fn missing_node_binaries_exit_2_before_anything_is_made() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root (pod network)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let out = Command::new(LAUNCHER)
        .arg("--run-dir")
        .arg(&run_dir)
        .env("UPSTREAM_BIN_DIR", tmp.path().join("no-binaries"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run launcher");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing a node binary"), "{stderr}");
    assert!(stderr.contains("scripts/build-upstream.sh"), "{stderr}");
    assert!(!stderr.contains("pod network created"), "{stderr}");
    assert!(out.stdout.is_empty(), "no ready line");
    assert_nothing_left(&run_dir);
}

/// The node binaries and image archives as empty files (enough for the launcher's check
/// before the pod network) and no control-plane binary: the start fails after the network
/// exists, at etcd.
fn node_inputs_without_control_plane(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let bin = dir.join("bin");
    let images = dir.join("images");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&images).unwrap();
    for binary in NODE_BINARIES {
        std::fs::write(bin.join(binary), "").unwrap();
    }
    for archive in IMAGE_ARCHIVES {
        std::fs::write(images.join(archive), "").unwrap();
    }
    (bin, images)
}

/// A start that fails after the pod network exists (node binaries present, no control-plane
/// binary) exits 2, names the missing binary, and removes the network and the run dir.
#[test]
fn failed_start_exits_2_and_cleans_up() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root (pod network)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (bin, images) = node_inputs_without_control_plane(tmp.path());
    if let Err(e) = NodeInputs::find(&bin, &images, &[]) {
        // runc, unshare or a CNI plugin missing on the host: the start would stop before
        // the network.
        eprintln!("SKIPPED: {}", kube_upstream::report(&e));
        return;
    }
    let run_dir = tmp.path().join("run");
    let out = Command::new(LAUNCHER)
        .args(["--nodes", "2", "--run-dir"])
        .arg(&run_dir)
        .arg("--images-dir")
        .arg(&images)
        .env("UPSTREAM_BIN_DIR", &bin)
        // The run id is read from an info line: scripts/test.sh exports RUST_LOG=warn.
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run launcher");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("etcd not found"), "{stderr}");
    assert!(stderr.contains("scripts/build-upstream.sh"), "{stderr}");
    assert!(out.stdout.is_empty(), "no ready line");
    assert_nothing_left(&run_dir);
    // The run id from the launcher's log (tests run in parallel: compare by run).
    let run = stderr
        .split("pod network created run=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(|r| r.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no pod network in the log: {stderr}"));
    assert!(
        !netns::list_netns()
            .iter()
            .any(|n| n.starts_with(&format!("sts-{run}-"))),
        "namespaces of run {run} left"
    );
    assert!(!Path::new(netns::STATE_DIR).join(&run).exists());
}
