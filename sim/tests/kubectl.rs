//! A real `kubectl` against the in-process API server (no runtime): the source document's
//! walkthrough as far as it goes without pods, with the kubectl built from the official
//! module (scripts/build-upstream.sh); skipped with the reason only outside CI.

mod support {
    pub mod kubectl;
}

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;

use kube_sim::api::{self, ApiState};
use kube_sim::kubeconfig;
use kube_sim::store::{ResourceKind, Store};

/// Bounds every kubectl invocation.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(30);

const SERVICE: &str = include_str!("../../manifests/mysql/service.yaml");
const STATEFULSET: &str = include_str!("../../manifests/mysql/statefulset.yaml");

struct Kubectl {
    kubeconfig: PathBuf,
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> Output {
        let child = tokio::process::Command::new(support::kubectl::kubectl_bin())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(KUBECTL_TIMEOUT, child)
            .await
            .unwrap_or_else(|_| {
                panic!("kubectl {args:?} did not finish within {KUBECTL_TIMEOUT:?}")
            })
            .expect("kubectl runs");
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs kubectl and requires success; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.ok,
            "kubectl {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }
}

/// True (and says so) when the project's kubectl is not built, so the test is skipped
/// (outside CI only: see `support::kubectl::kubectl_missing`).
fn skip_without_kubectl() -> bool {
    let missing = support::kubectl::kubectl_missing();
    if let Some(reason) = &missing {
        eprintln!("SKIPPED: {reason}");
    }
    missing.is_some()
}

async fn start(dir: &Path) -> (Kubectl, Arc<Store>, tokio::task::JoinHandle<()>) {
    let store = Store::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let state = ApiState::new(store.clone());
    let server = tokio::spawn(async move {
        api::serve(listener, state).await.expect("serve");
    });
    let path = dir.join("kubeconfig");
    kubeconfig::write(&path, &url).expect("kubeconfig");
    (Kubectl { kubeconfig: path }, store, server)
}

fn write_manifests(dir: &Path) -> (String, String) {
    let service = dir.join("service.yaml");
    let statefulset = dir.join("statefulset.yaml");
    std::fs::write(&service, SERVICE).expect("service manifest");
    std::fs::write(&statefulset, STATEFULSET).expect("statefulset manifest");
    (
        service.display().to_string(),
        statefulset.display().to_string(),
    )
}

fn replicas(store: &Store) -> serde_json::Value {
    store
        .get(ResourceKind::StatefulSet, Some("default"), "mysql")
        .map(|s| s["spec"]["replicas"].clone())
        .unwrap_or_default()
}

/// A pod as the runtime would show it once running and ready.
fn add_running_pod(store: &Store, name: &str, app: &str) {
    let pod = json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "mysql", "image": "mysql:5.7"}], "nodeName": "sim-worker"},
    });
    store
        .create(ResourceKind::Pod, Some("default"), pod)
        .expect("pod");
    store
        .mutate(ResourceKind::Pod, Some("default"), name, |p| {
            p["status"] = json!({"phase": "Running", "podIP": "127.77.0.2",
                "containerStatuses": [{"name": "mysql", "ready": true, "restartCount": 0, "state": {"running": {}}}]});
        })
        .expect("status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_walkthrough_apply_get_scale_reapply() {
    if skip_without_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (kubectl, store, server) = start(dir.path()).await;
    let (service, statefulset) = write_manifests(dir.path());

    let out = kubectl.ok(&["apply", "-f", &service]).await;
    assert!(out.contains("service/mysql created"), "{out}");
    let out = kubectl.ok(&["apply", "-f", &statefulset]).await;
    assert!(out.contains("statefulset.apps/mysql created"), "{out}");

    let out = kubectl.ok(&["get", "statefulsets"]).await;
    let row = out
        .lines()
        .find(|l| l.starts_with("mysql"))
        .unwrap_or_else(|| panic!("no mysql row:\n{out}"));
    assert!(row.contains("0/3"), "READY column: {out}");

    add_running_pod(&store, "mysql-0", "mysql");
    add_running_pod(&store, "web-0", "web");
    let out = kubectl.ok(&["get", "pods", "-l", "app=mysql"]).await;
    assert!(
        out.contains("mysql-0") && out.contains("1/1") && out.contains("Running"),
        "{out}"
    );
    assert!(!out.contains("web-0"), "label selector ignored: {out}");

    let out = kubectl
        .ok(&["scale", "statefulset", "mysql", "--replicas=5"])
        .await;
    assert!(out.contains("scaled"), "{out}");
    assert_eq!(replicas(&store), 5);

    let out = kubectl.run(&["apply", "-f", &statefulset]).await;
    assert!(
        out.ok && out.stdout.contains("configured"),
        "re-apply patches: {}{}",
        out.stdout,
        out.stderr
    );
    assert!(
        !out.stderr.contains("warning"),
        "kubectl warned: {}",
        out.stderr
    );
    assert_eq!(
        replicas(&store),
        3,
        "the manifest's replicas win on re-apply"
    );
    let out = kubectl.ok(&["apply", "-f", &service]).await;
    assert!(out.contains("unchanged"), "{out}");
    let out = kubectl
        .ok(&["get", "sts", "mysql", "-o", "jsonpath={.spec.replicas}"])
        .await;
    assert_eq!(out.trim(), "3");

    // kubectl posts this one as protobuf.
    let out = kubectl.ok(&["create", "namespace", "extra"]).await;
    assert!(out.contains("namespace/extra created"), "{out}");
    assert!(store.get(ResourceKind::Namespace, None, "extra").is_some());

    let missing = kubectl.run(&["get", "statefulset", "nope"]).await;
    assert!(
        !missing.ok && missing.stderr.contains("NotFound"),
        "{}",
        missing.stderr
    );
    server.abort();
}

/// kubectl sends `fieldValidation=Strict` (1.27+): a typo in a manifest is refused naming
/// the field, and nothing is created; `--validate=warn` creates it and prints the warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_refuses_an_unknown_field_under_strict_validation() {
    if skip_without_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (kubectl, store, server) = start(dir.path()).await;
    let typo = dir.path().join("statefulset.yaml");
    let manifest = STATEFULSET.replacen("  serviceName:", "  replica: 2\n  serviceName:", 1);
    assert_ne!(manifest, STATEFULSET, "the manifest has a serviceName line");
    std::fs::write(&typo, manifest).expect("manifest");
    let typo = typo.display().to_string();

    let out = kubectl.run(&["apply", "--server-side", "-f", &typo]).await;
    assert!(
        !out.ok && out.stderr.contains("unknown field \"spec.replica\""),
        "strict: {}{}",
        out.stdout,
        out.stderr
    );
    assert!(
        store
            .get(ResourceKind::StatefulSet, Some("default"), "mysql")
            .is_none(),
        "a refused apply created the StatefulSet"
    );

    let out = kubectl
        .run(&["apply", "--validate=warn", "-f", &typo])
        .await;
    assert!(
        out.ok && out.stderr.contains("unknown field \"spec.replica\""),
        "warn: {}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(replicas(&store), 3, "the unknown field is dropped");
    server.abort();
}

/// kubectl port-forward speaks SPDY (tunnelled in a WebSocket first, then plain), which the
/// sim does not implement, and exec has no container to run in (the sim answers only
/// `getent hosts` itself): both must fail at once saying so, not hang, garble bytes or
/// answer a bare 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_and_exec_are_refused_with_the_reason() {
    if skip_without_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (kubectl, store, server) = start(dir.path()).await;
    add_running_pod(&store, "mysql-0", "mysql");

    let out = kubectl
        .run(&["port-forward", "pod/mysql-0", "0:3306"])
        .await;
    assert!(
        !out.ok
            && out
                .stderr
                .contains("not over SPDY, which kubectl port-forward uses"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let out = kubectl.run(&["exec", "mysql-0", "--", "true"]).await;
    assert!(
        !out.ok && out.stderr.contains("answers only `getent hosts <name>`"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    server.abort();
}
