//! The API server through kube-rs (and raw HTTP for malformed input), without the runtime.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use kube_sim::api::{self, ApiState, ControlError, ControlFuture, NodeControl};
use kube_sim::store::{ResourceKind, Store};

/// Bounds every wait in these tests.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

struct Sim {
    client: Client,
    store: Arc<Store>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start_with(state: impl FnOnce(Arc<Store>) -> ApiState) -> Sim {
    start_on(Store::new(), state).await
}

async fn start_on(store: Arc<Store>, state: impl FnOnce(Arc<Store>) -> ApiState) -> Sim {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_state = state(store.clone());
    let server = tokio::spawn(async move {
        api::serve(listener, server_state).await.expect("serve");
    });
    let config = Config::new(format!("http://{addr}").parse().expect("url"));
    let client = Client::try_from(config).expect("client");
    Sim {
        client,
        store,
        addr,
        server,
    }
}

async fn start() -> Sim {
    start_with(ApiState::new).await
}

fn api_error(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn documented_statefulset() -> StatefulSet {
    serde_yaml::from_str(include_str!("../../manifests/mysql/statefulset.yaml")).expect("manifest")
}

fn documented_service() -> Service {
    serde_yaml::from_str(include_str!("../../manifests/mysql/service.yaml")).expect("manifest")
}

fn pod(name: &str, labels: Value, node: Option<&str>) -> Pod {
    let mut spec = json!({"containers": [{"name": "mysql", "image": "mysql:5.7"}]});
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": spec}))
        .expect("pod")
}

/// One raw HTTP/1.1 request; returns the status code and the JSON body (Null if not JSON).
async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut response = Vec::new();
    tokio::time::timeout(TEST_TIMEOUT, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn create_get_list_fill_server_metadata() {
    let sim = start().await;
    let services: Api<Service> = Api::default_namespaced(sim.client.clone());
    let created = services
        .create(&PostParams::default(), &documented_service())
        .await
        .expect("create");
    let uid = created.metadata.uid.clone().expect("uid");
    assert!(created.metadata.resource_version.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    let fetched = services.get("mysql").await.expect("get");
    assert_eq!(fetched.metadata.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(
        fetched.spec.and_then(|s| s.cluster_ip).as_deref(),
        Some("None")
    );
    let list = services.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
    let all: Api<Service> = Api::all(sim.client.clone());
    assert_eq!(
        all.list(&ListParams::default())
            .await
            .expect("all")
            .items
            .len(),
        1
    );
    let dup = services
        .create(&PostParams::default(), &documented_service())
        .await
        .expect_err("duplicate");
    assert_eq!(api_error(dup), (409, "AlreadyExists".into()));
}

#[tokio::test]
async fn missing_objects_and_namespaces_are_404() {
    let sim = start().await;
    let services: Api<Service> = Api::default_namespaced(sim.client.clone());
    assert_eq!(
        api_error(services.get("nope").await.expect_err("missing")),
        (404, "NotFound".into())
    );
    let elsewhere: Api<Service> = Api::namespaced(sim.client.clone(), "no-such-ns");
    let err = elsewhere
        .create(&PostParams::default(), &documented_service())
        .await
        .expect_err("no ns");
    assert_eq!(api_error(err).0, 404);
    let namespaces: Api<Namespace> = Api::all(sim.client.clone());
    assert!(
        namespaces.get("default").await.is_ok(),
        "default namespace exists at start"
    );
}

#[tokio::test]
async fn stale_replace_conflicts_and_generation_tracks_spec() {
    let sim = start().await;
    let sets: Api<StatefulSet> = Api::default_namespaced(sim.client.clone());
    let created = sets
        .create(&PostParams::default(), &documented_statefulset())
        .await
        .expect("create");
    let mut scaled = created.clone();
    scaled.spec.replicas = Some(4);
    let updated = sets
        .replace("mysql", &PostParams::default(), &scaled)
        .await
        .expect("replace");
    assert_eq!(updated.metadata.generation, Some(2));
    let err = sets
        .replace("mysql", &PostParams::default(), &scaled)
        .await
        .expect_err("stale rv");
    assert_eq!(api_error(err), (409, "Conflict".into()));
    let labelled = sets
        .patch(
            "mysql",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("label");
    assert_eq!(
        labelled.metadata.generation,
        Some(2),
        "labels do not bump generation"
    );
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version() {
    let sim = start().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    let created = pods
        .create(&PostParams::default(), &pod("p", json!({"app": "a"}), None))
        .await
        .expect("create");
    let rv = created.metadata.resource_version.clone().expect("rv");
    pods.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"b": "c"}}})),
    )
    .await
    .expect("patch");
    pods.delete("p", &DeleteParams::default())
        .await
        .expect("delete");
    let stream = pods
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .expect("watch");
    let events: Vec<_> = tokio::time::timeout(TEST_TIMEOUT, stream.take(2).try_collect::<Vec<_>>())
        .await
        .expect("events in time")
        .expect("events");
    assert!(
        matches!(&events[0], WatchEvent::Modified(p) if p.metadata.labels.as_ref().is_some_and(|l| l.contains_key("b"))),
        "{events:?}"
    );
    assert!(matches!(&events[1], WatchEvent::Deleted(_)), "{events:?}");
}

#[tokio::test]
async fn watcher_sees_initial_state_then_changes_and_bookmarks() {
    let sim = start().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    pods.create(
        &PostParams::default(),
        &pod("before", json!({"app": "a"}), None),
    )
    .await
    .expect("create");
    let mut stream = watcher(pods.clone(), watcher::Config::default().labels("app=a")).boxed();
    let mut seen = Vec::new();
    let creator = async {
        pods.create(
            &PostParams::default(),
            &pod("other", json!({"app": "b"}), None),
        )
        .await
        .expect("other");
        pods.create(
            &PostParams::default(),
            &pod("after", json!({"app": "a"}), None),
        )
        .await
        .expect("after");
    };
    let collect = async {
        while let Some(event) = stream.try_next().await.expect("watch event") {
            match event {
                watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                    seen.push(p.metadata.name.unwrap_or_default());
                }
                _ => {}
            }
            if seen.contains(&"after".to_string()) {
                break;
            }
        }
    };
    tokio::time::timeout(TEST_TIMEOUT, futures::future::join(creator, collect))
        .await
        .expect("watcher saw the new pod in time");
    assert_eq!(seen, ["before", "after"], "only pods matching app=a");
}

#[tokio::test]
async fn raw_watch_from_zero_lists_state_and_sends_bookmarks() {
    let sim = start().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    pods.create(&PostParams::default(), &pod("p", json!({}), None))
        .await
        .expect("create");
    let mut params = WatchParams::default().timeout(3);
    params.bookmarks = true;
    let stream = pods.watch(&params, "0").await.expect("watch");
    let events: Vec<_> = tokio::time::timeout(TEST_TIMEOUT, stream.take(2).try_collect::<Vec<_>>())
        .await
        .expect("in time")
        .expect("events");
    assert!(matches!(&events[0], WatchEvent::Added(p) if p.metadata.name.as_deref() == Some("p")));
    assert!(
        matches!(&events[1], WatchEvent::Bookmark(b) if !b.metadata.resource_version.is_empty()),
        "{events:?}"
    );
}

#[tokio::test]
async fn delete_returns_pods_and_status_for_other_kinds() {
    let sim = start().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    pods.create(
        &PostParams::default(),
        &pod("bound", json!({}), Some("sim-worker")),
    )
    .await
    .expect("create");
    let pending = pods
        .delete("bound", &DeleteParams::default())
        .await
        .expect("delete");
    let pod = pending.left().expect("a pod comes back");
    assert!(pod.metadata.deletion_timestamp.is_some());
    assert!(
        pods.get("bound").await.is_ok(),
        "kept until the kubelet confirms"
    );
    let forced = pods
        .delete(
            "bound",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .expect("force");
    assert!(forced.is_left());
    assert_eq!(api_error(pods.get("bound").await.expect_err("gone")).0, 404);

    let services: Api<Service> = Api::default_namespaced(sim.client.clone());
    let svc = services
        .create(&PostParams::default(), &documented_service())
        .await
        .expect("svc");
    let wrong_uid = DeleteParams::default().preconditions(kube::api::Preconditions {
        uid: Some("other".into()),
        resource_version: None,
    });
    assert_eq!(
        api_error(
            services
                .delete("mysql", &wrong_uid)
                .await
                .expect_err("precondition")
        )
        .0,
        409
    );
    let right_uid = DeleteParams::default().preconditions(kube::api::Preconditions {
        uid: svc.metadata.uid,
        resource_version: None,
    });
    let status = services
        .delete("mysql", &right_uid)
        .await
        .expect("delete svc")
        .right()
        .expect("Status");
    assert!(status.is_success());
}

#[tokio::test]
async fn server_side_apply_creates_then_merges() {
    let sim = start().await;
    let sets: Api<StatefulSet> = Api::default_namespaced(sim.client.clone());
    let params = PatchParams::apply("conformance").force();
    let created = sets
        .patch("mysql", &params, &Patch::Apply(documented_statefulset()))
        .await
        .expect("apply create");
    assert_eq!(created.spec.replicas, Some(3));
    let managers: Vec<_> = created
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["conformance"]);
    let update = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "mysql", "labels": {"tier": "db"}}, "spec": {"replicas": 5}});
    let updated = sets
        .patch("mysql", &params, &Patch::Apply(update))
        .await
        .expect("apply update");
    assert_eq!(updated.spec.replicas, Some(5));
    assert_eq!(
        updated
            .metadata
            .labels
            .unwrap_or_default()
            .get("tier")
            .map(String::as_str),
        Some("db")
    );
    assert_eq!(
        updated.spec.service_name.as_deref(),
        Some("mysql"),
        "unapplied fields kept"
    );
    let no_manager = sets
        .patch(
            "mysql",
            &PatchParams::default(),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "StatefulSet"})),
        )
        .await;
    assert_eq!(
        api_error(no_manager.expect_err("fieldManager required")).0,
        400
    );
}

#[tokio::test]
async fn merge_strategic_and_json_patches_apply() {
    let sim = start().await;
    let sets: Api<StatefulSet> = Api::default_namespaced(sim.client.clone());
    sets.create(&PostParams::default(), &documented_statefulset())
        .await
        .expect("create");
    let strategic = json!({"spec": {"template": {"spec": {"containers": [{"name": "mysql", "image": "mysql:8.0"}]}}}});
    let patched = sets
        .patch(
            "mysql",
            &PatchParams::default(),
            &Patch::Strategic(strategic),
        )
        .await
        .expect("strategic");
    let containers = patched.spec.template.spec.expect("pod spec").containers;
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].image.as_deref(), Some("mysql:8.0"));
    assert!(containers[0].env.is_some(), "strategic merge kept env");
    let ops =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 2}]))
            .expect("patch");
    let patched = sets
        .patch("mysql", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .expect("json patch");
    assert_eq!(patched.spec.replicas, Some(2));
    let immutable = json!({"spec": {"serviceName": "other"}});
    let err = sets
        .patch("mysql", &PatchParams::default(), &Patch::Merge(immutable))
        .await
        .expect_err("forbidden");
    assert_eq!(api_error(err), (422, "Invalid".into()));
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let sim = start().await;
    let sets: Api<StatefulSet> = Api::default_namespaced(sim.client.clone());
    sets.create(&PostParams::default(), &documented_statefulset())
        .await
        .expect("create");
    let scale = sets.get_scale("mysql").await.expect("get scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(3));
    assert_eq!(
        scale.status.and_then(|s| s.selector).as_deref(),
        Some("app=mysql")
    );
    sets.patch_scale(
        "mysql",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .expect("patch scale");
    assert_eq!(sets.get("mysql").await.expect("get").spec.replicas, Some(5));
    let negative = sets
        .patch_scale(
            "mysql",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await;
    assert_eq!(api_error(negative.expect_err("negative")).0, 422);
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let sim = start().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    for (name, app, node) in [
        ("a", "mysql", "sim-worker"),
        ("b", "mysql", "sim-worker2"),
        ("c", "web", "sim-worker"),
    ] {
        pods.create(
            &PostParams::default(),
            &pod(name, json!({"app": app}), Some(node)),
        )
        .await
        .expect("create");
    }
    let names = |list: kube::core::ObjectList<Pod>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect()
    };
    let mysql = pods
        .list(&ListParams::default().labels("app=mysql"))
        .await
        .expect("labels");
    assert_eq!(names(mysql), ["a", "b"]);
    let on_worker = pods
        .list(
            &ListParams::default()
                .labels("app in (mysql,web)")
                .fields("spec.nodeName=sim-worker"),
        )
        .await
        .expect("fields");
    assert_eq!(names(on_worker), ["a", "c"]);
    let by_name = pods
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .expect("name");
    assert_eq!(names(by_name), ["b"]);
    let bad = pods
        .list(&ListParams::default().labels("app in (mysql"))
        .await
        .expect_err("bad selector");
    assert_eq!(api_error(bad).0, 400);
    let unsupported = pods
        .list(&ListParams::default().fields("spec.hostname=a"))
        .await
        .expect_err("pods cannot be selected by spec.hostname");
    match unsupported {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
            assert_eq!(status.message, "field label not supported: spec.hostname");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_requests_get_status_errors_and_leave_state_alone() {
    let sim = start().await;
    let path = "/api/v1/namespaces/default/services";
    let cases: [(&str, &str, &str, &[u8], u16); 7] = [
        ("POST", path, "application/json", b"{not json", 400),
        ("POST", path, "application/json", b"[1, 2]", 400),
        (
            "POST",
            path,
            "application/json",
            br#"{"apiVersion":"apps/v1","kind":"Service","metadata":{"name":"x"}}"#,
            400,
        ),
        (
            "POST",
            path,
            "application/json",
            br#"{"metadata":{"name":"x","namespace":"other"}}"#,
            400,
        ),
        ("POST", path, "application/json", br#"{"metadata":{}}"#, 422),
        (
            "POST",
            path,
            "application/json",
            br#"{"metadata":{"name":"x","labels":{"a":1}}}"#,
            400,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/widgets",
            "application/json",
            b"",
            404,
        ),
    ];
    for (method, path, content_type, body, code) in cases {
        let (got, status) = raw(sim.addr, method, path, content_type, body).await;
        assert_eq!(
            got,
            code,
            "{method} {path} {}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(status["kind"], "Status", "{status}");
        assert_eq!(status["code"], code);
    }
    let sets = "/apis/apps/v1/namespaces/default/statefulsets";
    let body = serde_json::to_vec(&documented_statefulset()).expect("json");
    assert_eq!(
        raw(sim.addr, "POST", sets, "application/json", &body)
            .await
            .0,
        201
    );
    let item = format!("{sets}/mysql");
    let patch_cases: [(&str, &[u8], u16); 4] = [
        ("application/merge-patch+json", b"{oops", 400),
        (
            "application/json-patch+json",
            br#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
            400,
        ),
        ("application/apply-patch+yaml", b"a: [", 400),
        ("text/plain", b"{}", 415),
    ];
    for (content_type, body, code) in patch_cases {
        let (got, status) = raw(sim.addr, "PATCH", &item, content_type, body).await;
        assert_eq!(
            (got, status["kind"].as_str()),
            (code, Some("Status")),
            "{content_type}"
        );
    }
    let stored = sim
        .store
        .get(ResourceKind::StatefulSet, Some("default"), "mysql")
        .expect("still there");
    assert_eq!(stored["spec"]["replicas"], 3);
    assert!(sim.store.list(ResourceKind::Service, None).is_empty());
    let services: Api<Service> = Api::default_namespaced(sim.client.clone());
    assert!(
        services.list(&ListParams::default()).await.is_ok(),
        "server still answers"
    );
}

#[tokio::test]
async fn discovery_lists_kinds_with_scope_and_subresources() {
    let sim = start().await;
    let discovery = kube::Discovery::new(sim.client.clone())
        .run()
        .await
        .expect("discovery");
    let (sts, caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(r, _)| r.kind == "StatefulSet")
        .expect("statefulsets discovered");
    assert_eq!(sts.plural, "statefulsets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(caps.subresources.iter().any(|(r, _)| r.plural == "scale"));
    let version = sim.client.apiserver_version().await.expect("version");
    assert_eq!(version.major, "1");
}

#[tokio::test]
async fn pod_log_reads_the_annotated_file() {
    let sim = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("mysql.log");
    std::fs::write(&log, "one\ntwo\nthree\n").expect("log");
    let mut with_log = pod("p", json!({}), None);
    with_log.metadata.annotations =
        Some([("kube-sim/log-path".to_string(), log.display().to_string())].into());
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    pods.create(&PostParams::default(), &with_log)
        .await
        .expect("create");
    let text = pods
        .logs(
            "p",
            &LogParams {
                tail_lines: Some(2),
                ..Default::default()
            },
        )
        .await
        .expect("logs");
    assert_eq!(text, "two\nthree\n");
    pods.create(&PostParams::default(), &pod("quiet", json!({}), None))
        .await
        .expect("create");
    assert_eq!(
        pods.logs("quiet", &LogParams::default())
            .await
            .expect("logs"),
        ""
    );
}

/// A running pod whose IP is the loopback address an echo server listens on.
async fn running_pod_with_echo(sim: &Sim) -> u16 {
    let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let port = echo.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    pods.create(
        &PostParams::default(),
        &pod("db", json!({}), Some("sim-worker")),
    )
    .await
    .expect("create");
    sim.store
        .mutate(ResourceKind::Pod, Some("default"), "db", |p| {
            p["status"] = json!({"phase": "Running", "podIP": "127.0.0.1"});
        })
        .expect("status");
    port
}

#[tokio::test]
async fn portforward_bridges_bytes_to_the_pod() {
    let sim = start().await;
    let port = running_pod_with_echo(&sim).await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    let mut forwarder = pods.portforward("db", &[port]).await.expect("portforward");
    let mut stream = forwarder.take_stream(port).expect("stream");
    stream
        .write_all(b"ping through the sim")
        .await
        .expect("write");
    let mut buf = vec![0u8; 20];
    tokio::time::timeout(TEST_TIMEOUT, stream.read_exact(&mut buf))
        .await
        .expect("echo in time")
        .expect("read");
    assert_eq!(&buf, b"ping through the sim");
    drop(stream);
    tokio::time::timeout(TEST_TIMEOUT, forwarder.join())
        .await
        .expect("closed in time")
        .expect("clean close");
}

#[tokio::test]
async fn portforward_reports_connect_errors_and_refuses_missing_pods() {
    let sim = start().await;
    running_pod_with_echo(&sim).await;
    let closed_port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    let mut forwarder = pods
        .portforward("db", &[closed_port])
        .await
        .expect("upgrade");
    let error = forwarder.take_error(closed_port).expect("error channel");
    let text = tokio::time::timeout(TEST_TIMEOUT, error)
        .await
        .expect("error in time")
        .expect("error text");
    assert!(text.contains("failed to connect"), "{text}");
    assert!(pods.portforward("missing", &[3306]).await.is_err());
}

struct FakeNodes;

impl NodeControl for FakeNodes {
    fn stop_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a> {
        Box::pin(async move {
            match name {
                "sim-worker" => Ok(()),
                other => Err(ControlError {
                    message: format!("node {other} not found"),
                    not_found: true,
                }),
            }
        })
    }
    fn start_node<'a>(&'a self, _name: &'a str) -> ControlFuture<'a> {
        Box::pin(async {
            Err(ControlError {
                message: "node is already running".into(),
                not_found: false,
            })
        })
    }
    fn crash_pod<'a>(&'a self, _namespace: &'a str, _name: &'a str) -> ControlFuture<'a> {
        let done: Pin<Box<dyn Future<Output = Result<(), ControlError>> + Send>> =
            Box::pin(async { Ok(()) });
        done
    }
}

#[tokio::test]
async fn control_endpoints_map_runtime_outcomes_to_status() {
    let sim = start_with(|store| {
        ApiState::new(store)
            .with_control(Arc::new(FakeNodes))
            .with_info(json!({"faults": ["names:random"]}))
    })
    .await;
    let post = |path: &'static str| raw(sim.addr, "POST", path, "application/json", b"");
    assert_eq!(post("/sim/v1/nodes/sim-worker/stop").await.0, 200);
    let (code, status) = post("/sim/v1/nodes/sim-worker9/stop").await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    assert_eq!(post("/sim/v1/nodes/sim-worker/start").await.0, 409);
    assert_eq!(
        post("/sim/v1/namespaces/default/pods/db/crash").await.0,
        200
    );
    let (code, info) = raw(sim.addr, "GET", "/sim/v1/info", "application/json", b"").await;
    assert_eq!(code, 200);
    assert_eq!(info["faults"], json!(["names:random"]));

    let api_only = start().await;
    let (code, status) = raw(
        api_only.addr,
        "POST",
        "/sim/v1/nodes/sim-worker/stop",
        "application/json",
        b"",
    )
    .await;
    assert_eq!((code, status["kind"].as_str()), (503, Some("Status")));
}

#[tokio::test]
async fn watch_from_a_compacted_version_gets_410_in_the_stream() {
    let sim = start_on(Store::with_history_len(5), ApiState::new).await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    let first = pods
        .create(&PostParams::default(), &pod("p", json!({}), None))
        .await
        .expect("create");
    let old_rv = first.metadata.resource_version.expect("rv");
    for i in 0..10 {
        let labels = json!({"metadata": {"labels": {"i": i.to_string()}}});
        pods.patch("p", &PatchParams::default(), &Patch::Merge(labels))
            .await
            .expect("patch");
    }
    let stream = pods
        .watch(&WatchParams::default().timeout(2), &old_rv)
        .await
        .expect("watch starts");
    let events: Vec<_> = tokio::time::timeout(TEST_TIMEOUT, stream.take(1).try_collect::<Vec<_>>())
        .await
        .expect("in time")
        .expect("events");
    assert!(
        matches!(&events[0], WatchEvent::Error(e) if e.code == 410),
        "{events:?}"
    );
}

#[tokio::test]
async fn watch_with_selector_reports_objects_leaving_it_as_deleted() {
    let sim = start().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    pods.create(&PostParams::default(), &pod("p", json!({"app": "a"}), None))
        .await
        .expect("create");
    let params = WatchParams::default().labels("app=a").timeout(3);
    let stream = pods.watch(&params, "0").await.expect("watch");
    let relabel = Patch::Merge(json!({"metadata": {"labels": {"app": "b"}}}));
    pods.patch("p", &PatchParams::default(), &relabel)
        .await
        .expect("relabel");
    let events: Vec<_> = tokio::time::timeout(TEST_TIMEOUT, stream.take(2).try_collect::<Vec<_>>())
        .await
        .expect("in time")
        .expect("events");
    assert!(matches!(&events[0], WatchEvent::Added(_)), "{events:?}");
    assert!(matches!(&events[1], WatchEvent::Deleted(_)), "{events:?}");
}

#[tokio::test]
async fn delete_collection_removes_only_selected_objects() {
    let sim = start().await;
    let pods: Api<Pod> = Api::default_namespaced(sim.client.clone());
    for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        pods.create(
            &PostParams::default(),
            &pod(name, json!({"app": app}), None),
        )
        .await
        .expect("create");
    }
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=x"),
    )
    .await
    .expect("delete collection");
    let left: Vec<_> = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(left, ["c"]);
}
