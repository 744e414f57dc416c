//! The kind, docker and kube-sim command lines, provisioning and cleanup, tested with fake
//! executables (`tests/fakes/`) that record their arguments. Each test copies the fakes
//! into its own directory, so tests run in parallel without sharing logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use harness::cluster::kind::{DOCKER_INSTALL_URL, KIND_INSTALL_URL, KindCli};
use harness::cluster::namespace::dump_namespace;
use harness::cluster::sim::{self, SimSettings};
use harness::cluster::target::{Cluster, TargetChoice, TargetError, TargetKind, TargetSettings};
use harness::drive::chaos::{KindChaos, NodeChaos};
use harness::drive::node_restart;
use harness::scenario::{OUT_OF_SERVICE_TAINT, downtime_note, patch_out_of_service};
use harness::support::{cleanup, errors};

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

/// What the fake API server answers differently per test.
#[derive(Clone)]
struct ApiBehaviour {
    /// Whether the listed nodes report Ready=True.
    nodes_ready: bool,
    /// What the open-files preflight pod prints (`ulimit -n`).
    open_files: &'static str,
    /// How many pod creations to refuse as the ServiceAccount admission plugin does while
    /// the namespace's `default` ServiceAccount does not exist yet.
    refuse_pods: Arc<std::sync::atomic::AtomicU32>,
}

impl Default for ApiBehaviour {
    fn default() -> Self {
        ApiBehaviour {
            nodes_ready: true,
            open_files: "1048576",
            refuse_pods: Arc::default(),
        }
    }
}

/// A small fake Kubernetes API server: `/version`, Nodes (4, Ready unless told otherwise),
/// the local-path provisioner pod, namespaces, the preflight pod and its log, a test pod
/// with current and previous logs, and node patches. Records `METHOD path?query
/// content-type` and each request body.
struct FakeApi {
    url: String,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeApi {
    fn start(behaviour: ApiBehaviour) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = seen.clone();
                let behaviour = behaviour.clone();
                std::thread::spawn(move || serve(stream, &behaviour, &seen));
            }
        });
        FakeApi { url, requests }
    }

    /// Request lines seen so far.
    fn lines(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(l, _)| l.clone())
            .collect()
    }

    /// (request line, body) pairs seen so far.
    fn requests(&self) -> Vec<(String, String)> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(
    mut stream: std::net::TcpStream,
    behaviour: &ApiBehaviour,
    seen: &Mutex<Vec<(String, String)>>,
) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let (mut length, mut content_type) = (0usize, "-".to_owned());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if let Some(v) = lower.strip_prefix("content-type:") {
            content_type = v.trim().to_owned();
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    seen.lock().unwrap().push((
        format!("{method} {path}?{query} {content_type}"),
        body.clone(),
    ));
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let (status, content, kind) = answer(&method, path, query, watch, &body, behaviour);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{content}",
        content.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

const VERSION: &str = r#"{"major":"1","minor":"31","gitVersion":"v1.31.0-fake","gitCommit":"x","gitTreeState":"clean","buildDate":"2024-01-01T00:00:00Z","goVersion":"go1.22","compiler":"gc","platform":"linux/amd64"}"#;

fn list(kind: &str, items: Vec<serde_json::Value>) -> String {
    serde_json::json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "10"}, "items": items}).to_string()
}

fn node_json(name: &str, ready: bool) -> serde_json::Value {
    serde_json::json!({"metadata": {"name": name, "resourceVersion": "7"},
        "spec": {"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "reason": "KubeletNotReady"}]}})
}

fn pod_json(name: &str, phase: &str) -> serde_json::Value {
    serde_json::json!({"metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "9"},
        "spec": {"containers": [{"name": "mysql", "image": "mysql:5.7"}], "nodeName": "x-worker"},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn answer(
    method: &str,
    path: &str,
    query: &str,
    watch: bool,
    body: &str,
    behaviour: &ApiBehaviour,
) -> (&'static str, String, &'static str) {
    const JSON: &str = "application/json";
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ok = |text: String| ("200 OK", text, JSON);
    if watch {
        // An empty stream: the watcher lists again later.
        return ok(String::new());
    }
    match (method, segments.as_slice()) {
        ("GET", ["version"]) => ok(VERSION.to_owned()),
        ("GET", ["api", "v1", "nodes"]) => ok(list(
            "NodeList",
            ["x-control-plane", "x-worker", "x-worker2", "x-worker3"]
                .iter()
                .map(|n| node_json(n, behaviour.nodes_ready))
                .collect(),
        )),
        ("GET", ["api", "v1", "nodes", name]) => ok(node_json(name, true).to_string()),
        ("PATCH", ["api", "v1", "nodes", name]) => ok(node_json(name, true).to_string()),
        ("GET", ["api", "v1", "namespaces", "local-path-storage", "pods"]) => ok(list(
            "PodList",
            vec![pod_json("local-path-provisioner-abc", "Running")],
        )),
        ("POST", ["api", "v1", "namespaces"]) => ("201 Created", body.to_owned(), JSON),
        ("GET" | "DELETE", ["api", "v1", "namespaces", name]) => ok(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "sts-conformance"}}})
        .to_string()),
        ("POST", ["api", "v1", "namespaces", _, "pods"]) => {
            let refuse = behaviour
                .refuse_pods
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok();
            if refuse {
                return (
                    "403 Forbidden",
                    r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"x\" is forbidden: error looking up service account default/default: serviceaccount \"default\" not found","reason":"Forbidden","code":403}"#.to_owned(),
                    JSON,
                );
            }
            ("201 Created", body.to_owned(), JSON)
        }
        ("GET", ["api", "v1", "namespaces", "default", "pods"]) => {
            let name = query
                .split('&')
                .find_map(|p| p.strip_prefix("fieldSelector=metadata.name%3D"))
                .unwrap_or("none");
            ok(list("PodList", vec![pod_json(name, "Succeeded")]))
        }
        ("DELETE", ["api", "v1", "namespaces", "default", "pods", name]) => {
            ok(pod_json(name, "Succeeded").to_string())
        }
        ("GET", ["api", "v1", "namespaces", _, "pods"]) => {
            ok(list("PodList", vec![pod_json("mysql-0", "Running")]))
        }
        ("GET", ["api", "v1", "namespaces", "default", "pods", _, "log"]) => {
            ("200 OK", format!("{}\n", behaviour.open_files), "text/plain")
        }
        ("GET", ["api", "v1", "namespaces", _, "pods", pod, "log"]) => {
            if query.contains("previous=true") {
                ("200 OK", format!("{pod} previous: mysqld got signal 9\n"), "text/plain")
            } else {
                ("200 OK", format!("{pod} current: ready for connections\n"), "text/plain")
            }
        }
        ("GET", ["api", "v1", "namespaces", _, kind]) => ok(list(
            if *kind == "events" { "EventList" } else { "PersistentVolumeClaimList" },
            Vec::new(),
        )),
        _ => (
            "404 Not Found",
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"NotFound","code":404}"#.to_owned(),
            JSON,
        ),
    }
}

/// A fake API server with the default behaviour: a healthy new kind cluster.
fn fake_api_server() -> String {
    FakeApi::start(ApiBehaviour::default()).url
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

/// Provisioning failed before the image was loaded, and deleted the cluster it created.
fn assert_deleted_without_loading(fakes: &Fakes) {
    let calls = fakes.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("kind load")),
        "{calls:?}"
    );
    assert!(
        calls
            .last()
            .is_some_and(|c| c.starts_with("kind delete cluster --name ")),
        "{calls:?}"
    );
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
    // The generated config (the documented one plus the containerd drop-in mounts), in the
    // run's temporary directory; then the workload image pulled once and loaded into the nodes.
    let config = kubeconfig.parent().unwrap().join("kind-config.yaml");
    let archive = kubeconfig.parent().unwrap().join("workload-image.tar");
    let platform = harness::cluster::kind::docker_platform();
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
            format!("docker pull --platform {platform} mysql:5.7"),
            format!(
                "docker image save --platform {platform} -o {} mysql:5.7",
                archive.display()
            ),
            format!(
                "kind load image-archive {} --name {name}",
                archive.display()
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

/// Point 10: the cluster the harness creates gives containerd LimitNOFILE=1048576 on every
/// node, through a systemd drop-in the generated config mounts (not kind's default infinity).
#[tokio::test]
async fn every_created_node_mounts_the_containerd_open_files_dropin() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    let cluster = Cluster::provision(settings(&fakes, &[("E2E_TARGET", "kind")]))
        .await
        .unwrap();
    cluster.teardown();
    let config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(fakes.path("created-config.yaml")).unwrap())
            .unwrap();
    let nodes = config["nodes"].as_sequence().unwrap();
    let roles: Vec<&str> = nodes.iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["control-plane", "worker", "worker", "worker"]);
    for node in nodes {
        let mounts = node["extraMounts"].as_sequence().unwrap();
        assert_eq!(mounts.len(), 1, "{node:?}");
        assert_eq!(
            mounts[0]["containerPath"].as_str(),
            Some("/etc/systemd/system/containerd.service.d/99-sts-conformance-nofile.conf")
        );
        assert!(Path::new(mounts[0]["hostPath"].as_str().unwrap()).is_absolute());
        assert_eq!(mounts[0]["readOnly"].as_bool(), Some(true));
    }
    let dropin = std::fs::read_to_string(fakes.path("mounted/containerd-nofile.conf")).unwrap();
    assert!(
        dropin.contains("[Service]\nLimitNOFILE=1048576\n"),
        "{dropin}"
    );
}

/// Point 12: E2E_IMAGE is the image pulled once and loaded into the nodes (through a
/// single-platform archive), after create.
#[tokio::test]
async fn the_workload_image_is_pulled_once_and_loaded_into_the_nodes() {
    let fakes = Fakes::new();
    let api = FakeApi::start(ApiBehaviour::default());
    fakes.set_server(&api.url);
    let s = settings(
        &fakes,
        &[("E2E_TARGET", "kind"), ("E2E_IMAGE", "mysql:5.7.44")],
    );
    let cluster = Cluster::provision(s).await.unwrap();
    let calls = fakes.calls();
    let name = created_name(&calls);
    let position = |call: &str| calls.iter().position(|c| c == call);
    let create = calls
        .iter()
        .position(|c| c.starts_with("kind create"))
        .unwrap();
    let platform = harness::cluster::kind::docker_platform();
    let pull = position(&format!("docker pull --platform {platform} mysql:5.7.44"))
        .expect("one docker pull");
    let save = calls
        .iter()
        .position(|c| c.starts_with(&format!("docker image save --platform {platform} -o ")))
        .unwrap();
    let load = calls
        .iter()
        .position(|c| {
            c.starts_with("kind load image-archive ") && c.ends_with(&format!(" --name {name}"))
        })
        .unwrap();
    assert!(create < pull && pull < save && save < load, "{calls:?}");
    assert!(calls[save].ends_with(" mysql:5.7.44"), "{calls:?}");
    assert_eq!(calls.iter().filter(|c| c.contains("pull")).count(), 1);
    // The preflight pod runs the loaded image.
    let created_pod = api
        .requests()
        .into_iter()
        .find(|(line, _)| line.starts_with("POST /api/v1/namespaces/default/pods?"))
        .expect("the preflight pod");
    assert!(
        created_pod.1.contains(r#""image":"mysql:5.7.44""#),
        "{}",
        created_pod.1
    );
    cluster.teardown();
}

/// Point 12: a Docker without `save --platform` (before 28) saves the image plainly.
#[tokio::test]
async fn an_older_docker_saves_the_image_without_a_platform() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    fakes.touch("no-save-platform");
    let cluster = Cluster::provision(settings(&fakes, &[("E2E_TARGET", "kind")]))
        .await
        .unwrap();
    let archive = cluster
        .kubeconfig_path()
        .unwrap()
        .with_file_name("workload-image.tar");
    cluster.teardown();
    let calls = fakes.calls();
    let saves: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("docker image save"))
        .collect();
    assert_eq!(saves.len(), 2, "{calls:?}");
    assert_eq!(
        saves[1],
        &format!("docker image save -o {} mysql:5.7", archive.display())
    );
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("kind load image-archive")),
        "{calls:?}"
    );
}

/// Point 12: a failed image pull fails provisioning naming the image, and deletes the cluster.
#[tokio::test]
async fn a_failed_pull_names_the_image_and_deletes_the_cluster() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    fakes.touch("fail-pull");
    let err = Cluster::provision(settings(&fakes, &[("E2E_TARGET", "kind")]))
        .await
        .unwrap_err();
    let err = errors::chain(&err);
    assert!(
        err.contains("pull image mysql:5.7") && err.contains("rate limit"),
        "{err}"
    );
    assert_deleted_without_loading(&fakes);
}

/// Point 12: after `kind create`, provisioning waits for every node Ready (and the
/// local-path provisioner) and its timeout names what it last saw.
#[tokio::test]
async fn nodes_that_never_get_ready_time_out_naming_them() {
    let fakes = Fakes::new();
    let api = FakeApi::start(ApiBehaviour {
        nodes_ready: false,
        ..ApiBehaviour::default()
    });
    fakes.set_server(&api.url);
    let s = settings(
        &fakes,
        &[("E2E_TARGET", "kind"), ("E2E_TIMEOUT_SCALE", "0.02")],
    );
    let err = Cluster::provision(s).await.unwrap_err();
    let err = errors::chain(&err);
    assert!(
        err.contains("waiting for 4 nodes, every one Ready"),
        "{err}"
    );
    assert!(
        err.contains("4 of 4 nodes, 0 Ready") && err.contains("x-worker2: Ready False"),
        "{err}"
    );
    assert_deleted_without_loading(&fakes);
    // Healthy nodes: the local-path provisioner's pods are watched too.
    let fakes = Fakes::new();
    let api = FakeApi::start(ApiBehaviour::default());
    fakes.set_server(&api.url);
    let cluster = Cluster::provision(settings(&fakes, &[("E2E_TARGET", "kind")]))
        .await
        .unwrap();
    cluster.teardown();
    assert!(
        api.lines().iter().any(|l| l.starts_with(
            "GET /api/v1/namespaces/local-path-storage/pods?&labelSelector=app%3Dlocal-path-provisioner"
        ) || l.starts_with("GET /api/v1/namespaces/local-path-storage/pods?labelSelector=app%3Dlocal-path-provisioner")),
        "{:?}",
        api.lines()
    );
}

/// Point 10: the preflight reads `ulimit -n` in a pod and fails fast naming an enormous
/// limit; the cluster is deleted.
#[tokio::test]
async fn an_enormous_open_files_limit_fails_the_preflight_naming_it() {
    let fakes = Fakes::new();
    let api = FakeApi::start(ApiBehaviour {
        open_files: "1073741816",
        ..ApiBehaviour::default()
    });
    fakes.set_server(&api.url);
    let started = Instant::now();
    let err = Cluster::provision(settings(&fakes, &[("E2E_TARGET", "kind")]))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30));
    let err = errors::chain(&err);
    assert!(
        err.contains("open-files limit of 1073741816") && err.contains("mysql:5.7"),
        "{err}"
    );
    assert!(err.contains("LimitNOFILE=1048576"), "{err}");
    let requests = api.requests();
    let pod = requests
        .iter()
        .find(|(line, _)| line.starts_with("POST ") && line.contains("/pods?"))
        .expect("a preflight pod");
    assert!(
        pod.1.contains(r#""command":["sh","-c","ulimit -n"]"#),
        "{}",
        pod.1
    );
    assert!(
        requests.iter().any(|(line, _)| line
            .starts_with("GET /api/v1/namespaces/default/pods/sts-conformance-open-files-")
            && line.contains("/log?")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|(line, _)| line
            .starts_with("DELETE /api/v1/namespaces/default/pods/sts-conformance-open-files-")),
        "the preflight pod is deleted"
    );
    let calls = fakes.calls();
    assert!(
        calls
            .last()
            .is_some_and(|c| c.starts_with("kind delete cluster --name ")),
        "{calls:?}"
    );
}

/// Point 10: on a cluster made seconds ago the preflight pod is retried while the
/// `default` ServiceAccount does not exist yet.
#[tokio::test]
async fn the_preflight_pod_waits_for_the_default_service_account() {
    let fakes = Fakes::new();
    let behaviour = ApiBehaviour::default();
    behaviour
        .refuse_pods
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let api = FakeApi::start(behaviour);
    fakes.set_server(&api.url);
    let cluster = Cluster::provision(settings(&fakes, &[("E2E_TARGET", "kind")]))
        .await
        .unwrap();
    cluster.teardown();
    let creates = api
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("POST /api/v1/namespaces/default/pods?"))
        .count();
    assert_eq!(creates, 3);
}

/// Point 11 (part): the kind target bounds how many tests run at once.
#[tokio::test]
async fn kind_caps_tests_at_once_by_default_and_by_setting() {
    let fakes = Fakes::new();
    fakes.set_server(&fake_api_server());
    let cluster = Cluster::provision(settings(&fakes, &[("E2E_TARGET", "kind")]))
        .await
        .unwrap();
    assert_eq!(cluster.test_slots().map(|s| s.available_permits()), Some(2));
    cluster.teardown();
    let s = settings(
        &fakes,
        &[("E2E_TARGET", "kind"), ("E2E_KIND_PARALLEL_TESTS", "1")],
    );
    let cluster = Cluster::provision(s).await.unwrap();
    assert_eq!(cluster.test_slots().map(|s| s.available_permits()), Some(1));
    cluster.teardown();
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
    let archive = cluster
        .kubeconfig_path()
        .unwrap()
        .with_file_name("workload-image.tar");
    let platform = harness::cluster::kind::docker_platform();
    cluster.teardown();
    assert_eq!(
        fakes.calls(),
        [
            "docker info".to_owned(),
            "kind version".to_owned(),
            "kind get clusters".to_owned(),
            "kind get kubeconfig --name dev".to_owned(),
            format!("docker pull --platform {platform} mysql:5.7"),
            format!(
                "docker image save --platform {platform} -o {} mysql:5.7",
                archive.display()
            ),
            format!("kind load image-archive {} --name dev", archive.display()),
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
    let no_upstream = || Err("not built".to_owned());
    let selection = harness::cluster::target::select_with(TargetChoice::Auto, &cli, &no_upstream);
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

/// Point 12: the restart of a killed node is registered the moment the kill succeeds; a
/// test that fails before its planned restart (dropping the guard) starts the node at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_started_again_when_its_test_fails_before_the_restart() {
    let fakes = Fakes::new();
    let chaos: Arc<dyn NodeChaos> = Arc::new(KindChaos::new(fakes.path("docker")));
    let node = "sts-e2e-fail1-worker2";
    let restart = node_restart::kill_node(chaos.clone(), node).await.unwrap();
    assert!(restart.is_pending());
    assert!(cleanup::pending().contains(&node_restart::restart_description(node)));
    assert_eq!(fakes.calls(), [format!("docker kill {node}")]);
    // A step between the kill and the restart fails: the test drops what it held.
    let failed_step = async move {
        let _held = restart;
        Err::<(), _>("timed out waiting for node NotReady")
    };
    assert!(failed_step.await.is_err());
    assert_eq!(
        fakes.calls(),
        [
            format!("docker kill {node}"),
            format!("docker start {node}")
        ]
    );
    assert!(!cleanup::pending().contains(&node_restart::restart_description(node)));
}

/// Point 12: the planned restart starts the node once and withdraws the registered one.
#[tokio::test]
async fn the_planned_restart_withdraws_the_registered_one() {
    let fakes = Fakes::new();
    let chaos: Arc<dyn NodeChaos> = Arc::new(KindChaos::new(fakes.path("docker")));
    let node = "sts-e2e-plan1-worker2";
    let mut restart = node_restart::kill_node(chaos, node).await.unwrap();
    restart.start().await.unwrap();
    restart.start().await.unwrap();
    assert!(!restart.is_pending());
    assert!(!cleanup::pending().contains(&node_restart::restart_description(node)));
    drop(restart);
    assert_eq!(
        fakes.calls(),
        [
            format!("docker kill {node}"),
            format!("docker start {node}")
        ]
    );
    assert!(downtime_note(node, Duration::from_secs(64)).contains("down 64 s"));
}

/// Point 15: a kind node kill is reported as what it is.
#[test]
fn a_kind_node_kill_is_called_a_process_level_crash() {
    let chaos = KindChaos::new("docker");
    let fidelity = chaos.kill_fidelity();
    assert!(
        fidelity.contains("process-level crash") && fidelity.contains("page cache survive"),
        "{fidelity}"
    );
    assert!(!fidelity.contains("plug") && !chaos.describe().contains("plug"));
    assert!(chaos.describe().contains("process-level crash"));
}

/// Point 13: the out-of-service taint is a merge patch carrying the resourceVersion it was
/// computed from (RBAC: get and patch on nodes), keeping the node's other taints; never a
/// full replace (update).
#[tokio::test]
async fn the_out_of_service_taint_is_a_merge_patch_with_a_resource_version() {
    let api = FakeApi::start(ApiBehaviour::default());
    let client = kube::Client::try_from(kube::Config::new(api.url.parse().unwrap())).unwrap();
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
    patch_out_of_service(&nodes, "x-worker2", true)
        .await
        .unwrap();
    let requests = api.requests();
    let methods: Vec<&str> = requests
        .iter()
        .map(|(line, _)| line.split(' ').next().unwrap())
        .collect();
    assert_eq!(methods, ["GET", "PATCH"], "{requests:?}");
    let (line, body) = &requests[1];
    assert!(
        line.starts_with("PATCH /api/v1/nodes/x-worker2?")
            && line.ends_with("application/merge-patch+json"),
        "{line}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["metadata"]["resourceVersion"], "7");
    let keys: Vec<&str> = body["spec"]["taints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["node.kubernetes.io/unreachable", OUT_OF_SERVICE_TAINT]
    );
}

/// Point 12: the failure dump shows each container's current and previous log.
#[tokio::test]
async fn the_namespace_dump_has_current_and_previous_pod_logs() {
    let api = FakeApi::start(ApiBehaviour::default());
    let client = kube::Client::try_from(kube::Config::new(api.url.parse().unwrap())).unwrap();
    let dump = dump_namespace(&client, "sts-e2e-x").await;
    assert!(dump.contains("log mysql/current"), "{dump}");
    assert!(
        dump.contains("| mysql-0 current: ready for connections"),
        "{dump}"
    );
    assert!(dump.contains("log mysql/previous"), "{dump}");
    assert!(
        dump.contains("| mysql-0 previous: mysqld got signal 9"),
        "{dump}"
    );
    let logs: Vec<String> = api
        .lines()
        .into_iter()
        .filter(|l| l.contains("/pods/mysql-0/log"))
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(logs.iter().any(|l| l.contains("previous=true")), "{logs:?}");
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
    assert!(
        cluster.test_slots().is_none(),
        "only kind caps tests at once"
    );
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
        // Keeps draining after the caller stopped listening: a closed pipe would make the
        // child's next println! panic (EPIPE) instead of letting it exit as tested.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
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
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(143), "{stderr}");
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
        .env("UPSTREAM_BIN_DIR", empty.path())
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
        "target upstream",
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
