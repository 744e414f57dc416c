//! The real `kube-sim` binary, run the way users and the harness run it: a real `kubectl`
//! through the kubeconfig the sim writes, two sims side by side, and process hygiene
//! (SIGKILL, stdin EOF, a missing mariadbd). A test that needs `kubectl` or `mariadbd`
//! skips, printing why, when it is not installed.

mod support {
    pub mod kubectl;
}

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::await_condition;
use rstest::rstest;

/// How long the binary may take to print its URL (a debug build on a shared machine).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the binary may take to exit once asked to (stdin closed).
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a StatefulSet may take to reach its replica count.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Bounds every kubectl invocation (its own `--timeout`s are shorter).
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the binary may take to refuse a bad configuration.
const FAIL_FAST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a mariadbd may outlive its sim.
const ORPHAN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often process state is polled while waiting for an exit.
const PROCESS_POLL: Duration = Duration::from_millis(20);

const LISTENING_PREFIX: &str = "kube-sim listening on ";
const NS: &str = "default";
const SERVICE_MANIFEST: &str = "manifests/mysql/service.yaml";
const STATEFULSET_MANIFEST: &str = "manifests/mysql/statefulset.yaml";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the sim crate lives inside the workspace")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------
// Prerequisites
// ---------------------------------------------------------------------------------------

/// Where kube-sim looks: PATH, then /usr/sbin and /usr/local/sbin.
fn mariadbd_installed() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .any(|dir| dir.join("mariadbd").is_file())
}

/// The reason to skip, if a prerequisite is missing.
fn missing_prerequisite(need_kubectl: bool) -> Option<String> {
    if !mariadbd_installed() {
        return Some("mariadbd is not installed (apt-get install mariadb-server)".into());
    }
    if need_kubectl {
        return support::kubectl::kubectl_missing();
    }
    None
}

macro_rules! skip_without {
    (kubectl) => {
        if let Some(reason) = missing_prerequisite(true) {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
    (mariadbd) => {
        if let Some(reason) = missing_prerequisite(false) {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
}

// ---------------------------------------------------------------------------------------
// The binary as a child process
// ---------------------------------------------------------------------------------------

fn fresh_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kube-sim-binary-")
        .tempdir()
        .expect("temp dir")
}

/// Polls `child` until it exits or `timeout` passes.
fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(PROCESS_POLL),
            Ok(None) => return None,
            Err(e) => panic!("failed to poll kube-sim (pid {}): {e}", child.id()),
        }
    }
}

/// A running `kube-sim` binary in its own temp dir (kubeconfig, state dir, log). Dropping it
/// closes stdin and waits (bounded) for a clean exit, killing it if it does not come.
struct SimProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
    /// From spawn to the URL on stdout.
    started_in: Duration,
    dir: tempfile::TempDir,
}

impl SimProcess {
    /// Starts the binary with the standard flags plus `extra`, and waits for its URL.
    fn start(extra: &[&str]) -> SimProcess {
        SimProcess::start_in(fresh_dir(), extra)
    }

    /// Like `start`, in a prepared `dir` (its `state` subdir is the state dir).
    fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> SimProcess {
        let log = File::create(dir.path().join("kube-sim.log")).expect("log file");
        let spawned = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--kubeconfig")
            .arg(dir.path().join("kubeconfig"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--exit-on-stdin-close")
            .args(extra)
            // The assertions read the sim's info lines, whatever the caller's RUST_LOG.
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn kube-sim");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let mut sim = SimProcess {
            child,
            stdin,
            url: String::new(),
            started_in: Duration::ZERO,
            dir,
        };
        sim.url = sim.read_url(stdout);
        sim.started_in = spawned.elapsed();
        sim
    }

    /// The URL from the `kube-sim listening on URL` line, read by a thread that then keeps
    /// draining stdout so a late write never meets a closed pipe.
    fn read_url(&mut self, stdout: std::process::ChildStdout) -> String {
        let (found, url) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            if let Some(line) = lines.by_ref().find(|l| l.starts_with(LISTENING_PREFIX)) {
                let _ = found.send(line[LISTENING_PREFIX.len()..].trim().to_string());
            }
            lines.for_each(drop);
        });
        match url.recv_timeout(STARTUP_TIMEOUT) {
            Ok(url) => url,
            // Drop prints the log.
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "kube-sim printed no `{LISTENING_PREFIX}URL` line within {STARTUP_TIMEOUT:?}"
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = wait_for_exit(&mut self.child, EXIT_TIMEOUT);
                panic!("kube-sim closed stdout before printing its URL (exit: {status:?})")
            }
        }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kube-sim.log"))
            .unwrap_or_else(|e| format!("<log unreadable: {e}>"))
    }

    /// Closes stdin: with `--exit-on-stdin-close` that asks the sim to shut down.
    fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    async fn client(&self) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig()).expect("read kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("kubeconfig to client config");
        kube::Client::try_from(config).expect("client")
    }

    fn kubectl(&self) -> Kubectl {
        Kubectl {
            kubeconfig: self.kubeconfig(),
            cache_dir: self.dir.path().join("kubectl-cache"),
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- kube-sim {} log (last 40 lines) ---\n{}",
                self.url,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        self.close_stdin();
        if wait_for_exit(&mut self.child, EXIT_TIMEOUT).is_none() {
            eprintln!("kube-sim did not exit within {EXIT_TIMEOUT:?} of stdin closing: killing it");
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Processes seen through /proc
// ---------------------------------------------------------------------------------------

/// A process, identified by pid and start time so a reused pid is not mistaken for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Proc {
    pid: i32,
    start_time: u64,
}

struct Stat {
    comm: String,
    state: char,
    ppid: i32,
    start_time: u64,
}

/// `/proc/<pid>/stat`: `pid (comm) state ppid ... starttime(22nd) ...`.
fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, tail) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = tail.split_whitespace().collect();
    Some(Stat {
        comm,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

fn mariadbd_children(parent: i32) -> BTreeSet<Proc> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .filter(|(_, s)| s.comm == "mariadbd" && s.ppid == parent && !is_dead(s.state))
        .map(|(pid, s)| Proc {
            pid,
            start_time: s.start_time,
        })
        .collect()
}

/// Zombie or dead: the process no longer runs, only its entry waits to be reaped.
fn is_dead(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

fn is_running(p: &Proc) -> bool {
    stat(p.pid).is_some_and(|s| s.start_time == p.start_time && !is_dead(s.state))
}

/// Polls /proc until none of `procs` runs, or panics naming the survivors.
fn wait_until_gone(procs: &BTreeSet<Proc>, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<&Proc> = procs.iter().filter(|p| is_running(p)).collect();
        if alive.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: these mariadbd still run after {timeout:?}: {alive:?}"
        );
        std::thread::sleep(PROCESS_POLL);
    }
}

// ---------------------------------------------------------------------------------------
// kubectl, and reading its tables like a user
// ---------------------------------------------------------------------------------------

struct Kubectl {
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
}

impl Kubectl {
    /// Runs kubectl from the repository root (like the walkthrough) and requires success.
    async fn ok(&self, args: &[&str]) -> String {
        let child = tokio::process::Command::new(support::kubectl::kubectl_bin())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args)
            .current_dir(repo_root())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(KUBECTL_TIMEOUT, child)
            .await
            .unwrap_or_else(|_| {
                panic!("kubectl {args:?} did not finish within {KUBECTL_TIMEOUT:?}")
            })
            .expect("run kubectl");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        stdout
    }

    async fn table(&self, args: &[&str]) -> Table {
        let mut get = vec!["get"];
        get.extend_from_slice(args);
        Table::parse(&self.ok(&get).await)
    }
}

/// kubectl's column output: headers are separated by two or more spaces, and each cell
/// starts where its header starts.
#[derive(Debug)]
struct Table {
    headers: Vec<String>,
    rows: Vec<BTreeMap<String, String>>,
}

impl Table {
    fn parse(text: &str) -> Table {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines.next().unwrap_or_default();
        let starts = header_starts(header);
        let headers: Vec<String> = starts
            .iter()
            .enumerate()
            .map(|(i, &s)| cell(header, s, starts.get(i + 1).copied()))
            .collect();
        let rows = lines
            .map(|line| {
                headers
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (h.clone(), cell(line, starts[i], starts.get(i + 1).copied())))
                    .collect()
            })
            .collect();
        Table { headers, rows }
    }

    fn column(&self, header: &str) -> Vec<&str> {
        assert!(
            self.headers.iter().any(|h| h == header),
            "no {header} column in {:?}",
            self.headers
        );
        self.rows.iter().map(|r| r[header].as_str()).collect()
    }

    /// The row whose NAME is `name`.
    fn row(&self, name: &str) -> &BTreeMap<String, String> {
        self.rows
            .iter()
            .find(|r| r.get("NAME").is_some_and(|n| n == name))
            .unwrap_or_else(|| panic!("no row {name} in {self:#?}"))
    }
}

/// Byte offsets where header words start: the first, and any after a run of 2+ spaces.
fn header_starts(header: &str) -> Vec<usize> {
    let bytes = header.as_bytes();
    (0..bytes.len())
        .filter(|&i| {
            bytes[i] != b' ' && (i == 0 || (i >= 2 && bytes[i - 1] == b' ' && bytes[i - 2] == b' '))
        })
        .collect()
}

fn cell(line: &str, start: usize, end: Option<usize>) -> String {
    let end = end.unwrap_or(line.len()).min(line.len());
    line.get(start.min(end)..end)
        .unwrap_or("")
        .trim()
        .to_string()
}

fn names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

/// A kubectl age such as `0s`, `45s`, `2m5s`.
fn looks_like_age(text: &str) -> bool {
    !text.is_empty()
        && text
            .split(|c: char| c.is_ascii_alphabetic())
            .all(|n| n.chars().all(|c| c.is_ascii_digit()))
        && text.ends_with(['s', 'm', 'h', 'd'])
}

async fn assert_statefulset_ready(kubectl: &Kubectl, replicas: usize) {
    let sts = kubectl.table(&["statefulsets"]).await;
    assert_eq!(sts.headers, ["NAME", "READY", "AGE"], "{sts:#?}");
    assert_eq!(sts.column("NAME"), ["mysql"], "{sts:#?}");
    assert_eq!(
        sts.row("mysql")["READY"],
        format!("{replicas}/{replicas}"),
        "{sts:#?}"
    );
}

async fn assert_pods_running(kubectl: &Kubectl, replicas: usize) {
    let pods = kubectl.table(&["pods", "-l", "app=mysql"]).await;
    assert_eq!(
        pods.headers,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{pods:#?}"
    );
    assert_eq!(pods.column("NAME"), names("mysql-", replicas), "{pods:#?}");
    for row in &pods.rows {
        assert_eq!(
            (
                row["READY"].as_str(),
                row["STATUS"].as_str(),
                row["RESTARTS"].as_str()
            ),
            ("1/1", "Running", "0"),
            "{row:?}"
        );
        assert!(looks_like_age(&row["AGE"]), "{row:?}");
    }
}

/// `kubectl wait --for=jsonpath={.status.<field>}=<value> statefulset/mysql`.
async fn wait_for_status(kubectl: &Kubectl, field: &str, value: usize) {
    let condition = format!("--for=jsonpath={{.status.{field}}}={value}");
    kubectl
        .ok(&["wait", &condition, "statefulset/mysql", "--timeout=60s"])
        .await;
}

// ---------------------------------------------------------------------------------------
// kube-rs: deploy the documented objects and wait for them
// ---------------------------------------------------------------------------------------

fn manifest<T: serde::de::DeserializeOwned>(relative: &str) -> T {
    let path = repo_root().join(relative);
    let text = std::fs::read_to_string(&path).expect("read manifest");
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Server-side applies the documented Service and StatefulSet, and waits for 3/3 Ready.
async fn deploy_documented(client: &kube::Client) -> Api<StatefulSet> {
    let apply = PatchParams::apply("kube-sim-binary-test");
    let service: Service = manifest(SERVICE_MANIFEST);
    Api::<Service>::namespaced(client.clone(), NS)
        .patch("mysql", &apply, &Patch::Apply(&service))
        .await
        .expect("apply the documented Service");
    let statefulset: StatefulSet = manifest(STATEFULSET_MANIFEST);
    let api = Api::<StatefulSet>::namespaced(client.clone(), NS);
    api.patch("mysql", &apply, &Patch::Apply(&statefulset))
        .await
        .expect("apply the documented StatefulSet");
    wait_for_ready_replicas(&api, 3).await;
    api
}

fn is_ready_with(sts: &StatefulSet, replicas: i32) -> bool {
    let status = sts.status.as_ref();
    let caught_up = status.and_then(|s| s.observed_generation) >= sts.metadata.generation;
    caught_up
        && sts.spec.replicas == Some(replicas)
        && status.is_some_and(|s| s.replicas == replicas && s.ready_replicas == Some(replicas))
}

async fn wait_for_ready_replicas(api: &Api<StatefulSet>, replicas: i32) {
    let ready = await_condition(api.clone(), "mysql", move |sts: Option<&StatefulSet>| {
        sts.is_some_and(|s| is_ready_with(s, replicas))
    });
    let reached = tokio::time::timeout(READY_TIMEOUT, ready).await;
    if !matches!(reached, Ok(Ok(_))) {
        let last = api
            .get_opt("mysql")
            .await
            .ok()
            .flatten()
            .and_then(|s| s.status);
        panic!(
            "StatefulSet {NS}/mysql did not reach {replicas}/{replicas} Ready within \
             {READY_TIMEOUT:?} ({reached:?}); last status: {last:?}"
        );
    }
}

fn pod_ip(pod: &Pod) -> Ipv4Addr {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok())
        .unwrap_or_else(|| panic!("pod {:?} has no IPv4 podIP", pod.metadata.name))
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Name → (uid, podIP, restarts) of every pod: what "untouched" means for a pod.
async fn pod_identities(api: &Api<Pod>) -> BTreeMap<String, (String, Ipv4Addr, i32)> {
    api.list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .iter()
        .map(|p| {
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum());
            (
                p.metadata.name.clone().unwrap_or_default(),
                (
                    p.metadata.uid.clone().unwrap_or_default(),
                    pod_ip(p),
                    restarts,
                ),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

/// The source document's walkthrough (section 12.d) with the real kubectl: apply the
/// Service and StatefulSet, see 3 Running pods, scale to 5 and back to 3, and every claim
/// is kept; `get nodes` and `get events` read like a real cluster's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_runs_the_source_documents_walkthrough() {
    skip_without!(kubectl);
    let sim = SimProcess::start(&[]);
    println!("measure: binary start-up {:?}", sim.started_in);
    let kubectl = sim.kubectl();

    let out = kubectl.ok(&["apply", "-f", SERVICE_MANIFEST]).await;
    assert_eq!(out.trim(), "service/mysql created");
    let out = kubectl.ok(&["apply", "-f", STATEFULSET_MANIFEST]).await;
    assert_eq!(out.trim(), "statefulset.apps/mysql created");
    wait_for_status(&kubectl, "readyReplicas", 3).await;
    assert_statefulset_ready(&kubectl, 3).await;
    assert_pods_running(&kubectl, 3).await;

    let out = kubectl
        .ok(&["scale", "statefulset", "mysql", "--replicas=5"])
        .await;
    assert_eq!(out.trim(), "statefulset.apps/mysql scaled");
    wait_for_status(&kubectl, "readyReplicas", 5).await;
    assert_statefulset_ready(&kubectl, 5).await;
    assert_pods_running(&kubectl, 5).await;

    kubectl
        .ok(&["scale", "statefulset", "mysql", "--replicas=3"])
        .await;
    kubectl
        .ok(&[
            "wait",
            "--for=delete",
            "pod/mysql-4",
            "pod/mysql-3",
            "--timeout=60s",
        ])
        .await;
    wait_for_status(&kubectl, "replicas", 3).await;
    wait_for_status(&kubectl, "readyReplicas", 3).await;
    assert_statefulset_ready(&kubectl, 3).await;
    assert_pods_running(&kubectl, 3).await;

    let pvcs = kubectl.table(&["pvc"]).await;
    assert_eq!(
        pvcs.column("NAME"),
        names("mysql-persistent-storage-mysql-", 5),
        "claims are kept on scale-down: {pvcs:#?}"
    );
    for row in &pvcs.rows {
        assert_eq!(
            (
                row["STATUS"].as_str(),
                row["CAPACITY"].as_str(),
                row["ACCESS MODES"].as_str(),
                row["STORAGECLASS"].as_str()
            ),
            ("Bound", "1Gi", "RWO", "standard"),
            "{row:?}"
        );
    }

    assert_nodes_read_like_kind(&kubectl).await;
    assert_events_read_like_a_cluster(&kubectl).await;
}

async fn assert_nodes_read_like_kind(kubectl: &Kubectl) {
    let nodes = kubectl.table(&["nodes"]).await;
    assert_eq!(
        nodes.headers,
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        "{nodes:#?}"
    );
    let roles: Vec<(&str, &str, &str)> = nodes
        .rows
        .iter()
        .map(|r| {
            (
                r["NAME"].as_str(),
                r["STATUS"].as_str(),
                r["ROLES"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("sim-control-plane", "Ready", "control-plane"),
            ("sim-worker", "Ready", "<none>"),
            ("sim-worker2", "Ready", "<none>"),
            ("sim-worker3", "Ready", "<none>"),
        ]
    );
    let wide = kubectl.table(&["nodes", "-o", "wide"]).await;
    assert_eq!(
        wide.headers,
        [
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME"
        ],
        "{wide:#?}"
    );
    for row in &wide.rows {
        let ip: Ipv4Addr = row["INTERNAL-IP"].parse().expect("INTERNAL-IP is an IPv4");
        assert!(ip.is_loopback() && ip != Ipv4Addr::LOCALHOST, "{row:?}");
        assert_eq!(row["EXTERNAL-IP"], "<none>", "{row:?}");
    }
}

async fn assert_events_read_like_a_cluster(kubectl: &Kubectl) {
    let events = kubectl.table(&["events"]).await;
    assert_eq!(
        events.headers,
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{events:#?}"
    );
    for row in &events.rows {
        assert!(looks_like_age(&row["LAST SEEN"]), "{row:?}");
        assert!(
            ["Normal", "Warning"].contains(&row["TYPE"].as_str()),
            "{row:?}"
        );
    }
    let has = |reason: &str, object: &str, message: &dyn Fn(&str) -> bool| {
        events
            .rows
            .iter()
            .any(|r| r["REASON"] == reason && r["OBJECT"] == object && message(&r["MESSAGE"]))
    };
    for i in 0..5 {
        let pod = format!("mysql-{i}");
        assert!(
            has("SuccessfulCreate", "statefulset/mysql", &|m| m
                == format!(
                    "create Pod {pod} in StatefulSet mysql successful"
                )),
            "no SuccessfulCreate for {pod}: {events:#?}"
        );
        assert!(
            has("Scheduled", &format!("pod/{pod}"), &|m| m.starts_with(
                &format!("Successfully assigned default/{pod} to sim-worker")
            )),
            "no Scheduled for {pod}: {events:#?}"
        );
    }
    for pod in ["mysql-3", "mysql-4"] {
        assert!(
            has("SuccessfulDelete", "statefulset/mysql", &|m| m
                == format!(
                    "delete Pod {pod} in StatefulSet mysql successful"
                )),
            "no SuccessfulDelete for {pod}: {events:#?}"
        );
    }
    let wide = kubectl.table(&["events", "-o", "wide"]).await;
    assert_eq!(
        wide.headers,
        [
            "LAST SEEN",
            "TYPE",
            "REASON",
            "OBJECT",
            "SUBOBJECT",
            "SOURCE",
            "MESSAGE",
            "FIRST SEEN",
            "COUNT",
            "NAME"
        ],
        "{wide:#?}"
    );
    assert!(
        wide.rows.iter().any(|r| r["OBJECT"] == "pod/mysql-0"
            && r["REASON"] == "Started"
            && r["SOURCE"].starts_with("kubelet, sim-worker")
            && r["COUNT"] == "1"),
        "{wide:#?}"
    );
}

/// Two sims at once: distinct URLs, disjoint pod IPs (never 127.0.0.1), and a pod deleted
/// in one leaves the other's pods untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sims_run_side_by_side() {
    skip_without!(mariadbd);
    let (a, b) = (SimProcess::start(&[]), SimProcess::start(&[]));
    assert_ne!(a.url, b.url);
    let (client_a, client_b) = (a.client().await, b.client().await);
    tokio::join!(deploy_documented(&client_a), deploy_documented(&client_b));

    let pods_a = Api::<Pod>::namespaced(client_a.clone(), NS);
    let pods_b = Api::<Pod>::namespaced(client_b.clone(), NS);
    let (before_a, before_b) = (pod_identities(&pods_a).await, pod_identities(&pods_b).await);
    let ips_a: BTreeSet<Ipv4Addr> = before_a.values().map(|p| p.1).collect();
    let ips_b: BTreeSet<Ipv4Addr> = before_b.values().map(|p| p.1).collect();
    assert_eq!(
        (ips_a.len(), ips_b.len()),
        (3, 3),
        "{before_a:?} {before_b:?}"
    );
    assert!(ips_a.is_disjoint(&ips_b), "{ips_a:?} vs {ips_b:?}");
    assert!(
        ips_a
            .iter()
            .chain(&ips_b)
            .all(|ip| ip.is_loopback() && *ip != Ipv4Addr::LOCALHOST),
        "{ips_a:?} {ips_b:?}"
    );
    let processes_b = mariadbd_children(b.pid());
    assert_eq!(processes_b.len(), 3, "{processes_b:?}");

    let old_uid = before_a["mysql-1"].0.clone();
    pods_a
        .delete("mysql-1", &DeleteParams::default())
        .await
        .expect("delete mysql-1 in sim A");
    let recreated = await_condition(pods_a.clone(), "mysql-1", move |p: Option<&Pod>| {
        p.is_some_and(|p| p.metadata.uid.as_deref() != Some(old_uid.as_str()) && is_ready(p))
    });
    assert!(
        matches!(
            tokio::time::timeout(READY_TIMEOUT, recreated).await,
            Ok(Ok(_))
        ),
        "sim A did not recreate mysql-1 Ready within {READY_TIMEOUT:?}: {:?}",
        pod_identities(&pods_a).await
    );

    assert_eq!(
        pod_identities(&pods_b).await,
        before_b,
        "sim B's pods changed"
    );
    assert_eq!(
        mariadbd_children(b.pid()),
        processes_b,
        "sim B's mariadbd changed"
    );
    let after_a = pod_identities(&pods_a).await;
    assert_ne!(after_a["mysql-1"].0, before_a["mysql-1"].0);
}

/// PR_SET_PDEATHSIG: a SIGKILLed sim cannot clean up, yet its mariadbd die with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_sim_kills_its_mariadbd() {
    skip_without!(mariadbd);
    let mut sim = SimProcess::start(&[]);
    deploy_documented(&sim.client().await).await;
    let processes = mariadbd_children(sim.pid());
    assert_eq!(processes.len(), 3, "one mariadbd per pod: {processes:?}");

    sim.child.kill().expect("SIGKILL kube-sim");
    sim.child.wait().expect("reap kube-sim");
    wait_until_gone(&processes, ORPHAN_TIMEOUT, "after SIGKILL of kube-sim");
}

/// Closing stdin (`--exit-on-stdin-close`) shuts the sim down with exit code 0 while pods
/// run: every mariadbd is stopped before it exits, and the state dir is removed when the
/// sim created it, kept with `--keep-state` or when it already held files.
#[rstest]
#[case::state_dir_it_created_is_removed(&[], false, false)]
#[case::keep_state_keeps_it(&["--keep-state"], false, true)]
#[case::state_dir_with_files_is_kept(&[], true, true)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_stdin_shuts_down_cleanly_with_pods_running(
    #[case] extra: &[&str],
    #[case] pre_existing_file: bool,
    #[case] kept: bool,
) {
    skip_without!(mariadbd);
    let dir = fresh_dir();
    if pre_existing_file {
        std::fs::create_dir(dir.path().join("state")).expect("state dir");
        std::fs::write(dir.path().join("state/user-file"), "mine").expect("user file");
    }
    let mut sim = SimProcess::start_in(dir, extra);
    deploy_documented(&sim.client().await).await;
    let processes = mariadbd_children(sim.pid());
    assert_eq!(processes.len(), 3, "one mariadbd per pod: {processes:?}");

    let asked = Instant::now();
    sim.close_stdin();
    assert_clean_exit(&mut sim, &processes, "stdin closing");
    println!("measure: exit {:?} after stdin closed", asked.elapsed());

    let state = sim.state_dir();
    assert_eq!(state.exists(), kept, "state dir {}", state.display());
    if kept {
        let pvs = std::fs::read_dir(state.join("pvs"))
            .expect("kept PV dirs")
            .count();
        assert_eq!(pvs, 3, "one PV dir per claim kept");
    }
    if pre_existing_file {
        assert!(
            state.join("user-file").is_file(),
            "the user's file was removed"
        );
    }
    assert!(sim.log().contains("stdin closed"), "{}", sim.log());
}

/// The sim exits with status 0 within [`EXIT_TIMEOUT`] of `cause`, leaving none of
/// `processes` running.
fn assert_clean_exit(sim: &mut SimProcess, processes: &BTreeSet<Proc>, cause: &str) {
    let status = wait_for_exit(&mut sim.child, EXIT_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "kube-sim did not exit within {EXIT_TIMEOUT:?} of {cause}; log:\n{}",
            sim.log()
        )
    });
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        sim.log()
    );
    let survivors: Vec<&Proc> = processes.iter().filter(|p| is_running(p)).collect();
    assert!(
        survivors.is_empty(),
        "mariadbd outlived {cause}: {survivors:?}"
    );
}

/// SIGTERM shuts the sim down even while its parent still holds stdin open (a script
/// that started it with `--exit-on-stdin-close` and kills it from a trap): the stdin
/// watcher must not keep the process alive once shutdown is asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_while_stdin_stays_open() {
    skip_without!(mariadbd);
    let mut sim = SimProcess::start(&[]);
    deploy_documented(&sim.client().await).await;
    let processes = mariadbd_children(sim.pid());
    assert!(
        sim.stdin.is_some(),
        "stdin must still be open for this case"
    );

    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let sent = unsafe { libc::kill(sim.pid(), libc::SIGTERM) };
    assert_eq!(sent, 0, "failed to send SIGTERM to kube-sim");
    assert_clean_exit(&mut sim, &processes, "SIGTERM with stdin open");
    assert!(sim.log().contains("SIGTERM"), "{}", sim.log());
}

/// Without mariadbd the sim refuses to start, fast, naming what is missing and how to
/// install it, before it writes a kubeconfig or a state dir.
#[test]
fn missing_mariadbd_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--mariadbd",
            "/nonexistent/mariadbd",
        ])
        .arg("--kubeconfig")
        .arg(dir.path().join("kubeconfig"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--exit-on-stdin-close")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kube-sim");
    let Some(status) = wait_for_exit(&mut child, FAIL_FAST_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("kube-sim kept running for {FAIL_FAST_TIMEOUT:?} without mariadbd");
    };
    let output = child.wait_with_output().expect("collect output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!status.success(), "exit status {status}");
    assert!(stderr.contains("/nonexistent/mariadbd"), "{stderr}");
    assert!(
        stderr.contains("apt-get install mariadb-server"),
        "{stderr}"
    );
    assert!(!stdout.contains(LISTENING_PREFIX), "{stdout}");
    assert!(
        !dir.path().join("kubeconfig").exists(),
        "kubeconfig written"
    );
    assert!(!dir.path().join("state").exists(), "state dir created");
}
