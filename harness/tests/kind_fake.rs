//! The kind, docker and kube-sim command lines, provisioning and cleanup, tested with fake
//! executables (`tests/fakes/`) that record their arguments. Each test copies the fakes
//! into its own directory, so tests run in parallel without sharing logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harness::cluster::kind::{DOCKER_INSTALL_URL, KIND_INSTALL_URL, KindCli};
use harness::cluster::sim::{self, SimSettings};
use harness::cluster::target::{Cluster, TargetChoice, TargetError, TargetKind, TargetSettings};
use harness::drive::chaos::{KindChaos, NodeChaos};
use harness::support::errors;

/// A private copy of the fake executables, with their shared `calls.log`.
struct Fakes {
    dir: tempfile::TempDir,
}

impl Fakes {
    fn new() -> Fakes {
        let dir = tempfile::tempdir().unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes");
        for name in ["kind", "docker", "kube-sim"] {
            std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
        }
        Fakes { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn kind_cli(&self) -> KindCli {
        KindCli::new(self.path("kind"), self.path("docker"))
    }

    fn set_server(&self, url: &str) {
        std::fs::write(self.path("server-url"), url).unwrap();
    }

    fn touch(&self, name: &str) {
        std::fs::write(self.path(name), "").unwrap();
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// An HTTP server answering every request with a Kubernetes `/version` document.
fn fake_api_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            // Read the request head; requests here have no body.
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let body = r#"{"major":"1","minor":"31","gitVersion":"v1.31.0-fake","gitCommit":"x","gitTreeState":"clean","buildDate":"2024-01-01T00:00:00Z","goVersion":"go1.22","compiler":"gc","platform":"linux/amd64"}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

fn settings(fakes: &Fakes, vars: &[(&str, &str)]) -> TargetSettings {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut settings = TargetSettings::from_lookup(|name| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    settings.kind_cli = fakes.kind_cli();
    settings
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn created_name(calls: &[String]) -> String {
    let create = calls
        .iter()
        .find(|c| c.starts_with("kind create cluster"))
        .expect("a create call");
    create.split_whitespace().nth(4).unwrap().to_owned()
}

#[tokio::test]
async fn kind_target_creates_with_config_and_image_and_deletes_on_teardown() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    let s = settings(
        &fakes,
        &[
            ("E2E_TARGET", "kind"),
            ("E2E_KIND_IMAGE", "kindest/node:v1.31.0"),
        ],
    );
    let cluster = Cluster::provision(s).await.unwrap();

    let calls = fakes.calls();
    let name = created_name(&calls);
    assert!(name.starts_with("sts-e2e-") && name.len() == 13, "{name}");
    let kubeconfig = cluster.kubeconfig_path().unwrap().to_owned();
    let config = repo_root().join("manifests/kind/cluster.yaml");
    assert_eq!(
        calls,
        vec![
            "docker info".to_owned(),
            "kind version".to_owned(),
            format!(
                "kind create cluster --name {name} --config {} --image kindest/node:v1.31.0 --kubeconfig {} --wait 5m",
                config.display(),
                kubeconfig.display()
            ),
        ]
    );
    assert_eq!(cluster.kind(), TargetKind::Kind);
    assert_eq!(cluster.kind_cluster_name(), Some(name.as_str()));
    assert_eq!(cluster.context(), Some(format!("kind-{name}").as_str()));
    assert!(cluster.description().contains("kindest/node:v1.31.0"));
    assert!(
        cluster
            .access_instructions()
            .contains(&format!("kind delete cluster --name {name}"))
    );
    assert!(cluster.chaos().unwrap().describe().contains("docker"));
    // A fresh client per call reaches the (fake) API server.
    let client = cluster.client().await.unwrap();
    assert_eq!(
        client.apiserver_version().await.unwrap().git_version,
        "v1.31.0-fake"
    );

    cluster.teardown();
    let calls = fakes.calls();
    assert_eq!(
        calls.last().unwrap(),
        &format!("kind delete cluster --name {name}")
    );
    assert!(!kubeconfig.exists(), "the kubeconfig directory is removed");
    cluster.teardown();
    assert_eq!(fakes.calls().len(), calls.len(), "teardown runs once");
}

#[tokio::test]
async fn kind_target_without_an_image_lets_kind_choose() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    let cluster = Cluster::provision(settings(&fakes, &[("E2E_TARGET", "kind")]))
        .await
        .unwrap();
    let calls = fakes.calls();
    let create = calls.iter().find(|c| c.starts_with("kind create")).unwrap();
    assert!(!create.contains("--image"), "{create}");
    assert!(cluster.description().contains("kind's default"));
    cluster.teardown();
}

#[tokio::test]
async fn kind_cluster_name_names_the_created_cluster_and_its_deletion() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    let s = settings(
        &fakes,
        &[
            ("E2E_TARGET", "kind"),
            ("E2E_KIND_CLUSTER_NAME", "nightly-42"),
        ],
    );
    let cluster = Cluster::provision(s).await.unwrap();
    assert_eq!(created_name(&fakes.calls()), "nightly-42");
    cluster.teardown();
    assert_eq!(
        fakes.calls().last().unwrap(),
        "kind delete cluster --name nightly-42"
    );
}

#[tokio::test]
async fn reused_kind_cluster_is_never_deleted() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    std::fs::write(fakes.path("clusters"), "other\ndev\n").unwrap();
    let s = settings(
        &fakes,
        &[("E2E_TARGET", "kind"), ("E2E_KIND_CLUSTER", "dev")],
    );
    let cluster = Cluster::provision(s).await.unwrap();
    assert!(cluster.description().contains("never deleted"));
    assert_eq!(cluster.context(), Some("kind-dev"));
    cluster.teardown();
    assert_eq!(
        fakes.calls(),
        [
            "docker info",
            "kind version",
            "kind get clusters",
            "kind get kubeconfig --name dev"
        ]
    );
}

#[tokio::test]
async fn reusing_a_missing_kind_cluster_names_it_and_the_existing_ones() {
    let fakes = Fakes::new();
    std::fs::write(fakes.path("clusters"), "other\n").unwrap();
    let s = settings(
        &fakes,
        &[("E2E_TARGET", "kind"), ("E2E_KIND_CLUSTER", "dev")],
    );
    let err = Cluster::provision(s).await.unwrap_err();
    let err = errors::chain(&err);
    assert!(err.contains("`dev`") && err.contains("other"), "{err}");
    assert!(
        !fakes
            .calls()
            .iter()
            .any(|c| c.contains("create") || c.contains("delete"))
    );
}

#[tokio::test]
async fn a_failed_create_still_deletes_the_partial_cluster() {
    let fakes = Fakes::new();
    fakes.touch("fail-create");
    let err = Cluster::provision(settings(&fakes, &[("E2E_TARGET", "kind")]))
        .await
        .unwrap_err();
    let err = errors::chain(&err);
    assert!(err.contains("already exist"), "{err}");
    let calls = fakes.calls();
    let name = created_name(&calls);
    assert_eq!(
        calls.last().unwrap(),
        &format!("kind delete cluster --name {name}")
    );
}

#[tokio::test]
async fn keep_leaves_the_created_cluster() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    let s = settings(&fakes, &[("E2E_TARGET", "kind"), ("E2E_KEEP", "1")]);
    let cluster = Cluster::provision(s).await.unwrap();
    let kubeconfig = cluster.kubeconfig_path().unwrap().to_owned();
    cluster.teardown();
    assert!(!fakes.calls().iter().any(|c| c.contains("delete")));
    assert!(kubeconfig.exists(), "the kept cluster's kubeconfig stays");
    std::fs::remove_dir_all(kubeconfig.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn unreachable_api_server_deletes_the_created_cluster_and_names_the_endpoint() {
    let fakes = Fakes::new();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    fakes.set_server(&url);
    let s = settings(
        &fakes,
        &[("E2E_TARGET", "kind"), ("E2E_TIMEOUT_SCALE", "0.01")],
    );
    let err = Cluster::provision(s).await.unwrap_err();
    assert!(matches!(err, TargetError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().contains(url.trim_start_matches("http://")),
        "{err}"
    );
    assert!(
        fakes
            .calls()
            .last()
            .unwrap()
            .starts_with("kind delete cluster --name sts-e2e-")
    );
}

#[tokio::test]
async fn stopped_docker_daemon_fails_fast_saying_what_to_do() {
    let fakes = Fakes::new();
    fakes.touch("daemon-down");
    let started = Instant::now();
    let err = Cluster::provision(settings(&fakes, &[("E2E_TARGET", "kind")]))
        .await
        .unwrap_err();
    let err = errors::chain(&err);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.contains("Docker daemon is not reachable"), "{err}");
    assert!(err.contains(DOCKER_INSTALL_URL), "{err}");
    assert!(!fakes.calls().iter().any(|c| c.starts_with("kind create")));
}

#[tokio::test]
async fn auto_picks_kind_when_docker_and_kind_work_and_sim_otherwise() {
    let fakes = Fakes::new();
    let cli = fakes.kind_cli();
    assert_eq!(
        harness::cluster::target::select(TargetChoice::Auto, &cli).kind,
        TargetKind::Kind
    );
    fakes.touch("daemon-down");
    let selection = harness::cluster::target::select(TargetChoice::Auto, &cli);
    assert_eq!(selection.kind, TargetKind::Sim);
    assert!(
        selection.reason.contains("Docker daemon"),
        "{}",
        selection.reason
    );
}

#[tokio::test]
async fn kind_chaos_command_lines() {
    let fakes = Fakes::new();
    let chaos = KindChaos::new(fakes.path("docker"));
    chaos.stop_node("sts-e2e-ab12c-worker2").await.unwrap();
    chaos.kill_node("sts-e2e-ab12c-worker2").await.unwrap();
    chaos.start_node("sts-e2e-ab12c-worker2").await.unwrap();
    chaos
        .crash_container(
            "ns",
            "mysql-1",
            "containerd://0123abcd",
            "sts-e2e-ab12c-worker",
        )
        .await
        .unwrap();
    assert_eq!(
        fakes.calls(),
        [
            "docker stop sts-e2e-ab12c-worker2",
            "docker kill sts-e2e-ab12c-worker2",
            "docker start sts-e2e-ab12c-worker2",
            "docker exec sts-e2e-ab12c-worker crictl stop --timeout 0 0123abcd",
        ]
    );
}

#[tokio::test]
async fn kind_chaos_failure_names_the_action() {
    let chaos = KindChaos::new("/nonexistent/docker");
    let err = chaos.stop_node("w2").await.unwrap_err();
    let err = errors::chain(&err);
    assert!(
        err.contains("stop node w2") && err.contains("/nonexistent/docker"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// kube-sim launcher (with the fake kube-sim)

#[tokio::test]
async fn sim_target_launches_kube_sim_and_stops_it_on_teardown() {
    let fakes = Fakes::new();
    let api = fake_api_server();
    fakes.set_server(&api);
    let sim_bin = fakes.path("kube-sim");
    let s = settings(
        &fakes,
        &[
            ("E2E_TARGET", "sim"),
            ("E2E_SIM_BIN", sim_bin.to_str().unwrap()),
            ("E2E_SIM_FAULTS", "lose-acked-writes,reuse-ordinal"),
        ],
    );
    let cluster = Cluster::provision(s).await.unwrap();
    assert_eq!(cluster.kind(), TargetKind::Sim);
    assert_eq!(cluster.sim_url(), Some(api.as_str()));
    assert!(
        cluster
            .description()
            .starts_with("kube-sim (test double, not a certification)"),
        "{}",
        cluster.description()
    );
    assert!(cluster.chaos().unwrap().describe().contains(&api));
    let kubeconfig = cluster.kubeconfig_path().unwrap().to_owned();
    let dir = kubeconfig.parent().unwrap().to_owned();
    let calls = fakes.calls();
    assert_eq!(
        calls,
        [format!(
            "kube-sim --listen 127.0.0.1:0 --nodes 3 --state-dir {} --kubeconfig {} --fault lose-acked-writes --fault reuse-ordinal --exit-on-stdin-close",
            dir.join("state").display(),
            kubeconfig.display()
        )]
    );
    let client = cluster.client().await.unwrap();
    client.apiserver_version().await.unwrap();

    cluster.teardown();
    assert_eq!(fakes.calls().last().unwrap(), "kube-sim stdin closed");
    assert!(!dir.exists(), "the sim's directory is removed");
}

/// Running and not a zombie (an orphan may wait a while for a reaper in a container).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn a_hung_sim_is_killed_with_its_children() {
    let fakes = Fakes::new();
    fakes.touch("hang");
    let mut settings = SimSettings::new(fakes.path("kube-sim"));
    settings.stop_timeout = Duration::from_millis(500);
    let sim = sim::launch(&settings).unwrap();
    let grandchild_pid = fakes.path("grandchild.pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !grandchild_pid.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let grandchild: u32 = std::fs::read_to_string(&grandchild_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(sim.pid) && alive(grandchild));
    let started = Instant::now();
    sim.stop();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!alive(sim.pid), "the sim is killed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(grandchild) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(grandchild), "the sim's child is killed with it");
    assert!(!sim.dir.exists());
}

#[tokio::test]
async fn sim_that_exits_early_reports_its_log() {
    let fakes = Fakes::new();
    fakes.touch("fail-start");
    let sim_bin = fakes.path("kube-sim");
    let s = settings(
        &fakes,
        &[
            ("E2E_TARGET", "sim"),
            ("E2E_SIM_BIN", sim_bin.to_str().unwrap()),
        ],
    );
    let err = Cluster::provision(s).await.unwrap_err();
    let err = errors::chain(&err);
    assert!(
        err.contains("exited") && err.contains("mariadbd not found"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_sim_binary_says_how_to_build_it() {
    let fakes = Fakes::new();
    let s = settings(
        &fakes,
        &[
            ("E2E_TARGET", "sim"),
            ("E2E_SIM_BIN", "/nonexistent/kube-sim"),
        ],
    );
    let err = Cluster::provision(s).await.unwrap_err();
    let err = errors::chain(&err);
    assert!(err.contains("cargo build -p kube-sim"), "{err}");
}

// ---------------------------------------------------------------------------------------
// the CLI binary (PATH and signals are per process, so these run it as a child)

const BIN: &str = env!("CARGO_BIN_EXE_sts-conformance");

fn cli(path: &Path) -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("E2E_") {
            command.env_remove(key);
        }
    }
    command.env("PATH", path).env("RUST_LOG", "warn");
    command
}

/// Reads the child's stdout on a thread; returns the lines seen until one starts with
/// `prefix`, or fails after `timeout`.
fn wait_for_line(child: &mut std::process::Child, prefix: &str, timeout: Duration) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.starts_with(prefix);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("no line starting with {prefix:?} within {timeout:?}; saw {seen:?}");
            }
        }
    }
}

fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the CLI did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn terminate(child: &std::process::Child) {
    // SAFETY: SIGTERM to a child this test started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

#[test]
fn kind_target_without_docker_or_kind_fails_fast_with_install_pages() {
    let empty = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = cli(empty.path())
        .args(["up", "--target", "kind"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(KIND_INSTALL_URL), "{stderr}");
    assert!(stderr.contains(DOCKER_INSTALL_URL), "{stderr}");
}

#[test]
fn e2e_target_kind_from_the_environment_fails_fast_too() {
    let empty = tempfile::tempdir().unwrap();
    let output = cli(empty.path())
        .arg("up")
        .env("E2E_TARGET", "kind")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("target kind: E2E_TARGET=kind"), "{stderr}");
    assert!(stderr.contains(KIND_INSTALL_URL), "{stderr}");
}

#[test]
fn up_deletes_the_kind_cluster_it_created_on_sigterm() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    let path = format!("{}:/usr/bin:/bin", fakes.dir.path().display());
    let mut child = cli(Path::new(&path))
        .args(["up", "--target", "kind"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = wait_for_line(
        &mut child,
        "sts-conformance: ready",
        Duration::from_secs(60),
    );
    let name = created_name(&fakes.calls());
    assert!(lines[0].contains(&name), "{lines:?}");
    terminate(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(143));
    assert_eq!(
        fakes.calls().last().unwrap(),
        &format!("kind delete cluster --name {name}")
    );
}

#[test]
fn up_with_the_sim_stops_kube_sim_on_sigterm() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    let mut child = cli(Path::new("/usr/bin:/bin"))
        .args(["up", "--target", "sim"])
        .env("E2E_SIM_BIN", fakes.path("kube-sim"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = wait_for_line(
        &mut child,
        "sts-conformance: ready",
        Duration::from_secs(60),
    );
    assert!(
        lines[0].contains("kube-sim (test double, not a certification)"),
        "{lines:?}"
    );
    terminate(&child);
    wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(fakes.calls().last().unwrap(), "kube-sim stdin closed");
}

#[test]
fn render_redacts_the_root_password() {
    let output = cli(Path::new("/usr/bin:/bin"))
        .args(["render", "--replicas", "5", "--namespace", "demo"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("my-secret-pw"), "{stdout}");
    assert!(stdout.contains("<redacted>"), "{stdout}");
    assert!(stdout.contains("replicas: 5"), "{stdout}");
    assert!(stdout.contains("namespace: demo"), "{stdout}");
}

#[test]
fn doctor_reports_each_target() {
    let empty = tempfile::tempdir().unwrap();
    let mut child = cli(empty.path())
        .arg("doctor")
        .env("KUBECONFIG", empty.path().join("none"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(child.wait().unwrap().success());
    for what in [
        "docker",
        "kind",
        "kube-sim binary",
        "target sim",
        "target kubeconfig",
    ] {
        assert!(stdout.contains(&format!("] {what}")), "{what}: {stdout}");
    }
    assert!(
        stdout.contains("E2E_TARGET=auto would use: sim"),
        "{stdout}"
    );
}

#[test]
fn a_normal_exit_stops_kube_sim_through_the_exit_hook() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    let output = cli(Path::new("/usr/bin:/bin"))
        .args(["up", "--target", "sim", "--once"])
        .env("E2E_SIM_BIN", fakes.path("kube-sim"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("sts-conformance: ready: kube-sim"),
        "{stdout}"
    );
    assert_eq!(fakes.calls().last().unwrap(), "kube-sim stdin closed");
}

#[test]
fn a_normal_exit_deletes_the_kind_cluster_through_the_exit_hook() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    let path = format!("{}:/usr/bin:/bin", fakes.dir.path().display());
    let output = cli(Path::new(&path))
        .args(["up", "--target", "kind", "--once"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let name = created_name(&fakes.calls());
    assert_eq!(
        fakes.calls().last().unwrap(),
        &format!("kind delete cluster --name {name}")
    );
}
