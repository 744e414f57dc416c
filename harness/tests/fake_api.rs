//! apply, namespaces, waits and the port-forward connector against a small in-test fake
//! of the Kubernetes API (lists, watches, patches and the port-forward websocket), so
//! their requests and their handling of answers are pinned down without a cluster.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use checks::history::History;
use harness::cluster::apply::{FIELD_MANAGER, apply_objects};
use harness::cluster::manifests::{MysqlManifests, Overrides};
use harness::cluster::namespace::{LABEL_KEY, LABEL_VALUE, NamespaceError, TestNamespace};
use harness::drive::conditions;
use harness::drive::observe::{ObserveError, Observer};
use harness::drive::portforward::PortForward;
use harness::drive::wait::{self, WaitError};
use harness::support::settings::repo_root;

// ---------------------------------------------------------------------------------------
// the fake

#[derive(Default)]
struct Collection {
    items: Vec<Value>,
    /// Sent, in order, on every watch of the collection; then the watch stays open.
    events: Vec<Value>,
}

#[derive(Default)]
struct FakeState {
    log: Vec<String>,
    bodies: Vec<Value>,
    collections: HashMap<String, Collection>,
    namespaces: HashMap<String, Value>,
    missing_pods: HashSet<String>,
    /// Paths answered with 403 Forbidden, as RBAC would.
    forbidden: HashSet<String>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<FakeState>>);

impl Fake {
    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().unwrap()
    }

    fn collection(&self, path: &str, items: Vec<Value>, events: Vec<Value>) {
        self.state()
            .collections
            .insert(path.to_owned(), Collection { items, events });
    }

    fn log(&self) -> Vec<String> {
        self.state().log.clone()
    }

    async fn start(&self) -> (Client, kube::Config) {
        let router = Router::new()
            .route(
                "/api/v1/namespaces/{ns}/pods/{pod}/portforward",
                get(port_forward),
            )
            .fallback(handle)
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let config = kube::Config::new(url.parse().unwrap());
        (Client::try_from(config.clone()).unwrap(), config)
    }
}

fn not_found() -> Response {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "not found", "reason": "NotFound", "code": 404});
    (StatusCode::NOT_FOUND, axum::Json(status)).into_response()
}

fn forbidden(path: &str) -> Response {
    let message = format!(
        "{path} is forbidden: User \"vendor\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
    );
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "Forbidden", "code": 403});
    (StatusCode::FORBIDDEN, axum::Json(status)).into_response()
}

fn query_param(uri: &Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.replace("%3D", "=").replace("%2C", ","))
    })
}

async fn handle(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let watch = query_param(&uri, "watch").is_some_and(|w| w == "true" || w == "1");
    let verb = if watch {
        "WATCH".to_owned()
    } else {
        method.to_string()
    };
    let mut state = fake.state();
    state.log.push(format!(
        "{verb} {path}?{} {content_type}",
        uri.query().unwrap_or("")
    ));
    if !body.is_empty() {
        state
            .bodies
            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    }
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if state.forbidden.contains(&path) {
        return forbidden(&path);
    }
    match method {
        Method::GET => {
            if let Some(collection) = state.collections.get_mut(&path) {
                let wanted = query_param(&uri, "fieldSelector")
                    .and_then(|s| s.strip_prefix("metadata.name=").map(str::to_owned));
                let matches = |o: &Value| {
                    wanted
                        .as_deref()
                        .is_none_or(|n| o["metadata"]["name"] == json!(n))
                };
                if watch {
                    // A watch delivers the pending events it selects once; they then
                    // become the collection's state, as on a real API server.
                    let (sent, kept): (Vec<Value>, Vec<Value>) =
                        std::mem::take(&mut collection.events)
                            .into_iter()
                            .partition(|e| matches(&e["object"]));
                    collection.events = kept;
                    for e in &sent {
                        apply_event(&mut collection.items, e);
                    }
                    let lines: Vec<Result<Bytes, Infallible>> = sent
                        .iter()
                        .map(|e| Ok(Bytes::from(format!("{e}\n"))))
                        .collect();
                    let stream = futures::stream::iter(lines).chain(futures::stream::pending());
                    return Body::from_stream(stream).into_response();
                }
                let items: Vec<Value> = collection
                    .items
                    .iter()
                    .filter(|o| matches(o))
                    .cloned()
                    .collect();
                return axum::Json(json!({"kind": "List", "apiVersion": "v1",
                    "metadata": {"resourceVersion": "10"}, "items": items}))
                .into_response();
            }
            let name = path.trim_start_matches("/api/v1/namespaces/");
            match state.namespaces.get(name) {
                Some(ns) => axum::Json(ns.clone()).into_response(),
                None => not_found(),
            }
        }
        Method::POST if path == "/api/v1/namespaces" => {
            let name = body_json["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            state.namespaces.insert(name, body_json.clone());
            (StatusCode::CREATED, axum::Json(body_json)).into_response()
        }
        Method::PATCH => axum::Json(body_json).into_response(),
        Method::DELETE => {
            let name = path.trim_start_matches("/api/v1/namespaces/");
            match state.namespaces.remove(name) {
                Some(ns) => axum::Json(ns).into_response(),
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn apply_event(items: &mut Vec<Value>, event: &Value) {
    let object = &event["object"];
    items.retain(|o| o["metadata"]["name"] != object["metadata"]["name"]);
    if event["type"] != "DELETED" {
        items.push(object.clone());
    }
}

/// Port-forward websocket (protocol v4): announces the port on the data and error
/// channels, then echoes data-channel frames back.
async fn port_forward(
    State(fake): State<Fake>,
    Path((ns, pod)): Path<(String, String)>,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    fake.state().log.push(format!(
        "PORTFORWARD {ns}/{pod}?{}",
        uri.query().unwrap_or("")
    ));
    if fake.state().missing_pods.contains(&pod) {
        return not_found();
    }
    let port: u16 = query_param(&uri, "ports")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    ws.protocols(["v4.channel.k8s.io"])
        .on_upgrade(move |socket| echo(socket, port))
}

async fn echo(mut socket: WebSocket, port: u16) {
    let [lo, hi] = port.to_le_bytes();
    for channel in [0u8, 1u8] {
        if socket
            .send(Message::Binary(Bytes::from(vec![channel, lo, hi])))
            .await
            .is_err()
        {
            return;
        }
    }
    while let Some(Ok(message)) = socket.recv().await {
        let echoed = match message {
            Message::Binary(data) if data.first() == Some(&0) => {
                socket.send(Message::Binary(data)).await
            }
            Message::Close(_) => return,
            _ => Ok(()),
        };
        if echoed.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// objects

const NS: &str = "ns1";
const STS_PATH: &str = "/apis/apps/v1/namespaces/ns1/statefulsets";
const PODS_PATH: &str = "/api/v1/namespaces/ns1/pods";

fn statefulset(rv: &str, generation: i64, observed: i64, ready: i32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "mysql", "namespace": NS, "resourceVersion": rv, "generation": generation},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "mysql"}}, "template": {}},
        "status": {"replicas": 3, "readyReplicas": ready, "observedGeneration": observed}})
}

fn pod(name: &str, uid: &str, rv: &str, ready: bool, restarts: i32) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "uid": uid, "resourceVersion": rv},
        "spec": {"nodeName": "sim-worker", "containers": [{"name": "mysql"}]},
        "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "containerStatuses": [{"name": "mysql", "image": "mysql:5.7", "imageID": "x",
                "ready": ready, "restartCount": restarts}]}})
}

fn event(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}

fn sts_api(client: &Client) -> Api<StatefulSet> {
    Api::namespaced(client.clone(), NS)
}

fn pod_api(client: &Client) -> Api<Pod> {
    Api::namespaced(client.clone(), NS)
}

// ---------------------------------------------------------------------------------------
// apply and namespaces

#[tokio::test]
async fn apply_is_server_side_forced_with_our_field_manager_in_the_given_namespace() {
    let fake = Fake::default();
    let (client, _) = fake.start().await;
    let manifests = MysqlManifests::load_documented(&repo_root(), &Overrides::default()).unwrap();
    apply_objects(&client, NS, &manifests.objects())
        .await
        .unwrap();
    let log = fake.log();
    let query = format!("force=true&fieldManager={FIELD_MANAGER}");
    assert_eq!(
        log,
        [
            format!(
                "PATCH /api/v1/namespaces/ns1/services/mysql?&{query} application/apply-patch+yaml"
            ),
            format!(
                "PATCH /apis/apps/v1/namespaces/ns1/statefulsets/mysql?&{query} application/apply-patch+yaml"
            ),
        ]
    );
    let bodies = fake.state().bodies.clone();
    assert_eq!(bodies[1]["kind"], "StatefulSet");
    assert_eq!(bodies[1]["metadata"]["namespace"], NS);
    assert_eq!(bodies[1]["spec"]["replicas"], 3);
}

#[tokio::test]
async fn apply_error_names_the_object() {
    let (client, _) = {
        // No server at all: the request fails.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let config = kube::Config::new(url.parse().unwrap());
        (Client::try_from(config.clone()).unwrap(), config)
    };
    let manifests = MysqlManifests::load_documented(&repo_root(), &Overrides::default()).unwrap();
    let err = apply_objects(&client, NS, &manifests.objects())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to apply Service ns1/mysql"),
        "{err}"
    );
}

#[tokio::test]
async fn namespaces_are_created_labelled_and_deleted() {
    let fake = Fake::default();
    let (client, _) = fake.start().await;
    let ns = TestNamespace::create(&client, "suites::identity::stable_names")
        .await
        .unwrap();
    let name = ns.name().to_owned();
    assert!(
        name.starts_with("sts-e2e-suites-identity-stable-names-"),
        "{name}"
    );
    let created = fake.state().namespaces[&name].clone();
    assert_eq!(created["metadata"]["labels"][LABEL_KEY], LABEL_VALUE);
    ns.delete().await.unwrap();
    assert!(
        fake.log()
            .last()
            .unwrap()
            .starts_with(&format!("DELETE /api/v1/namespaces/{name}"))
    );
    assert!(!fake.state().namespaces.contains_key(&name));
}

#[tokio::test]
async fn a_namespace_without_the_label_is_never_deleted() {
    let fake = Fake::default();
    let (client, _) = fake.start().await;
    let ns = TestNamespace::create(&client, "t").await.unwrap();
    let name = ns.name().to_owned();
    // Someone else's namespace with the same name: no label.
    fake.state().namespaces.insert(
        name.clone(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    );
    let err = ns.delete().await.unwrap_err();
    assert!(
        matches!(&err, NamespaceError::NotManaged { name: n } if *n == name),
        "{err}"
    );
    assert!(!fake.log().iter().any(|l| l.starts_with("DELETE")));
}

// The guard blocks the dropping thread, so the fake server must run on other threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_namespace_is_deleted_by_the_guard() {
    let fake = Fake::default();
    let (client, config) = fake.start().await;
    let mut ns = TestNamespace::create(&client, "panicking test")
        .await
        .unwrap();
    ns.set_cleanup_config(config);
    let name = ns.name().to_owned();
    drop(ns);
    assert!(
        !fake.state().namespaces.contains_key(&name),
        "{:?}",
        fake.log()
    );
}

#[tokio::test]
async fn dump_lists_pods_pvcs_and_events() {
    let fake = Fake::default();
    fake.collection(PODS_PATH, vec![pod("mysql-0", "u1", "1", true, 1)], vec![]);
    fake.collection(
        "/api/v1/namespaces/ns1/persistentvolumeclaims",
        vec![json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "mysql-persistent-storage-mysql-0"},
            "spec": {"volumeName": "pv-1"}, "status": {"phase": "Bound"}})],
        vec![],
    );
    fake.collection(
        "/api/v1/namespaces/ns1/events",
        vec![
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
            "involvedObject": {"kind": "Pod", "name": "mysql-0"}, "type": "Normal",
            "reason": "Started", "message": "Started container mysql",
            "lastTimestamp": "2024-01-01T00:00:00Z"}),
        ],
        vec![],
    );
    let (client, _) = fake.start().await;
    let dump = harness::cluster::namespace::dump_namespace(&client, NS).await;
    assert!(
        dump.contains("mysql-0: uid u1, phase Running, Ready True, restarts 1, node sim-worker"),
        "{dump}"
    );
    assert!(
        dump.contains("mysql-persistent-storage-mysql-0: phase Bound, volume pv-1"),
        "{dump}"
    );
    assert!(
        dump.contains("Pod/mysql-0: Started Started container mysql"),
        "{dump}"
    );
}

// ---------------------------------------------------------------------------------------
// waits

#[tokio::test]
async fn statefulset_wait_times_out_naming_the_last_state() {
    let fake = Fake::default();
    fake.collection(STS_PATH, vec![statefulset("5", 2, 1, 3)], vec![]);
    let (client, _) = fake.start().await;
    let err = wait::wait_for(
        &sts_api(&client),
        "mysql",
        conditions::statefulset_ready(3),
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(
        err.to_string(),
        "timed out after 0.5s waiting for 3 ready replicas on StatefulSet ns1/mysql; last state seen: readyReplicas 3/3, spec.replicas 3, observedGeneration 1/2"
    );
    assert!(
        fake.log()[0].contains("fieldSelector=metadata.name%3Dmysql"),
        "{:?}",
        fake.log()
    );
}

#[tokio::test]
async fn statefulset_wait_returns_once_the_controller_caught_up() {
    let fake = Fake::default();
    fake.collection(
        STS_PATH,
        vec![statefulset("5", 2, 1, 2)],
        vec![
            event("MODIFIED", statefulset("6", 2, 2, 2)),
            event("MODIFIED", statefulset("7", 2, 2, 3)),
        ],
    );
    let (client, _) = fake.start().await;
    let sts = wait::wait_for(
        &sts_api(&client),
        "mysql",
        conditions::statefulset_ready(3),
        Duration::from_secs(10),
    )
    .await
    .unwrap()
    .expect("the StatefulSet");
    assert_eq!(sts.metadata.resource_version.as_deref(), Some("7"));
}

#[tokio::test]
async fn a_missing_object_is_reported_as_not_found() {
    let fake = Fake::default();
    fake.collection(STS_PATH, vec![], vec![]);
    let (client, _) = fake.start().await;
    let err = wait::wait_for(
        &sts_api(&client),
        "mysql",
        conditions::statefulset_ready(3),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().ends_with("last state seen: not found"),
        "{err}"
    );
}

#[tokio::test]
async fn pod_gone_on_delete_or_replacement() {
    let fake = Fake::default();
    fake.collection(
        PODS_PATH,
        vec![
            pod("mysql-0", "u1", "1", true, 0),
            pod("mysql-1", "u2", "1", true, 0),
        ],
        vec![
            event("DELETED", pod("mysql-0", "u1", "2", true, 0)),
            event("ADDED", pod("mysql-1", "u3", "3", false, 0)),
        ],
    );
    let (client, _) = fake.start().await;
    let pods = pod_api(&client);
    wait::wait_for(
        &pods,
        "mysql-0",
        conditions::pod_gone("u1"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    wait::wait_for(
        &pods,
        "mysql-1",
        conditions::pod_gone("u2"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let err = wait::wait_for(
        &pods,
        "mysql-1",
        conditions::pod_gone("u3"),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("uid u3, phase Running, Ready False"),
        "{err}"
    );
}

#[tokio::test]
async fn pod_recreated_needs_a_new_uid_and_ready() {
    let fake = Fake::default();
    fake.collection(
        PODS_PATH,
        vec![pod("mysql-0", "u1", "1", true, 0)],
        vec![
            event("DELETED", pod("mysql-0", "u1", "2", true, 0)),
            event("ADDED", pod("mysql-0", "u9", "3", false, 0)),
            event("MODIFIED", pod("mysql-0", "u9", "4", true, 0)),
        ],
    );
    let (client, _) = fake.start().await;
    let p = wait::wait_for(
        &pod_api(&client),
        "mysql-0",
        conditions::pod_recreated("u1"),
        Duration::from_secs(10),
    )
    .await
    .unwrap()
    .expect("the recreated pod");
    assert_eq!(p.metadata.resource_version.as_deref(), Some("4"));
}

#[tokio::test]
async fn pod_restarted_in_place_and_fails_fast_when_replaced() {
    let fake = Fake::default();
    fake.collection(
        PODS_PATH,
        vec![
            pod("mysql-0", "u1", "1", true, 0),
            pod("mysql-1", "u5", "1", true, 0),
        ],
        vec![
            event("MODIFIED", pod("mysql-0", "u1", "2", false, 1)),
            event("MODIFIED", pod("mysql-0", "u1", "3", true, 1)),
        ],
    );
    let (client, _) = fake.start().await;
    let pods = pod_api(&client);
    let p = wait::wait_for(
        &pods,
        "mysql-0",
        conditions::pod_restarted("u1", 1),
        Duration::from_secs(10),
    )
    .await
    .unwrap()
    .expect("the restarted pod");
    assert_eq!(p.metadata.resource_version.as_deref(), Some("3"));
    // mysql-1 now has uid u5, not the u4 we crashed: replaced, not restarted.
    let err = wait::wait_for(
        &pods,
        "mysql-1",
        conditions::pod_restarted("u4", 1),
        Duration::from_secs(60),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, WaitError::Impossible { reason, .. } if reason.contains("replaced")),
        "{err}"
    );
}

#[tokio::test]
async fn pods_absent_waits_for_every_name() {
    let fake = Fake::default();
    fake.collection(
        PODS_PATH,
        vec![
            pod("mysql-0", "u0", "1", true, 0),
            pod("mysql-3", "u3", "1", true, 0),
            pod("mysql-4", "u4", "1", true, 0),
        ],
        vec![event("DELETED", pod("mysql-4", "u4", "2", true, 0))],
    );
    let (client, _) = fake.start().await;
    let pods = pod_api(&client);
    wait::wait_for_absent(&pods, &["mysql-4"], Duration::from_secs(10))
        .await
        .unwrap();
    let err = wait::wait_for_absent(&pods, &["mysql-3", "mysql-4"], Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("last state seen: still present: mysql-3"),
        "{err}"
    );
}

#[tokio::test]
async fn node_waits_follow_the_ready_condition() {
    let node = |rv: &str, status: &str| {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "sim-worker2", "resourceVersion": rv},
            "status": {"conditions": [{"type": "Ready", "status": status, "reason": "KubeletReady"}]}})
    };
    let fake = Fake::default();
    fake.collection(
        "/api/v1/nodes",
        vec![node("1", "True")],
        vec![
            event("MODIFIED", node("2", "Unknown")),
            event("MODIFIED", node("3", "True")),
        ],
    );
    let (client, _) = fake.start().await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client);
    wait::wait_for(
        &nodes,
        "sim-worker2",
        conditions::node_not_ready(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    wait::wait_for(
        &nodes,
        "sim-worker2",
        conditions::node_ready(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let err = wait::wait_for(
        &nodes,
        "sim-worker2",
        conditions::node_not_ready(),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("on Node sim-worker2; last state seen: Ready True"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// port-forward

async fn round_trip(addr: std::net::SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(payload).await.unwrap();
    let mut buf = vec![0u8; payload.len()];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut buf))
        .await
        .expect("echo within 10s")
        .unwrap();
    buf
}

#[tokio::test]
async fn port_forward_bridges_each_connection_through_its_own_stream() {
    let fake = Fake::default();
    let (client, _) = fake.start().await;
    let forward = PortForward::start(pod_api(&client), "mysql-0", 3306)
        .await
        .unwrap();
    let addr = forward.local_addr();
    assert!(addr.ip().is_loopback());
    assert_eq!(round_trip(addr, b"hello pod").await, b"hello pod");
    assert_eq!(round_trip(addr, b"again").await, b"again");
    let forwards: Vec<_> = fake
        .log()
        .into_iter()
        .filter(|l| l.starts_with("PORTFORWARD"))
        .collect();
    assert_eq!(
        forwards.len(),
        2,
        "one API stream per connection: {forwards:?}"
    );
    assert!(
        forwards[0].starts_with("PORTFORWARD ns1/mysql-0?") && forwards[0].contains("ports=3306")
    );
}

#[tokio::test]
async fn port_forward_to_a_missing_pod_closes_the_connection() {
    let fake = Fake::default();
    fake.state().missing_pods.insert("mysql-9".into());
    let (client, _) = fake.start().await;
    let forward = PortForward::start(pod_api(&client), "mysql-9", 3306)
        .await
        .unwrap();
    let mut stream = TcpStream::connect(forward.local_addr()).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("closed within 10s")
        .unwrap_or(0);
    assert_eq!(n, 0, "the client sees the connection closed");
}

#[tokio::test]
async fn port_forward_stops_listening_when_dropped() {
    let fake = Fake::default();
    let (client, _) = fake.start().await;
    let forward = PortForward::start(pod_api(&client), "mysql-0", 3306)
        .await
        .unwrap();
    let addr = forward.local_addr();
    drop(forward);
    // The abort takes effect at the accept loop's next poll.
    let refused = async {
        loop {
            if TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), refused)
        .await
        .expect("the listener closes after drop");
}

#[tokio::test]
async fn a_failing_watch_is_named_in_the_timeout() {
    let fake = Fake::default();
    let (client, _) = fake.start().await;
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = Api::namespaced(client, NS);
    let err = wait::wait_for(
        &pvcs,
        "data-mysql-0",
        conditions::pvc_bound(),
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("PVC Bound on PersistentVolumeClaim ns1/data-mysql-0"),
        "{message}"
    );
    assert!(
        message.contains("last state seen: nothing observed yet (then watch error: failed to perform initial object list"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------
// observer

/// A fake serving every collection the observer watches except the nodes.
fn fake_without_nodes() -> Fake {
    let fake = Fake::default();
    for path in [
        "/api/v1/namespaces/t/pods",
        "/api/v1/namespaces/t/persistentvolumeclaims",
        "/apis/apps/v1/namespaces/t/statefulsets",
        "/api/v1/namespaces/t/services",
        "/apis/discovery.k8s.io/v1/namespaces/t/endpointslices",
        "/api/v1/persistentvolumes",
    ] {
        fake.collection(path, vec![], vec![]);
    }
    fake
}

#[tokio::test]
async fn a_watch_the_user_may_not_make_fails_the_start_at_once_naming_it() {
    let fake = fake_without_nodes();
    fake.state().forbidden.insert("/api/v1/nodes".to_owned());
    let (client, _) = fake.start().await;
    let started = std::time::Instant::now();
    let err = Observer::start(&client, "t", &History::new(), Duration::from_secs(60))
        .await
        .err()
        .expect("nodes cannot be watched");
    assert!(
        matches!(err, ObserveError::Forbidden { kind: "Node", .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("cannot list resource \"nodes\""),
        "{message}"
    );
    assert!(
        message.contains("needs get, list and watch on Node"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a 403 is final, not waited out: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_watch_that_keeps_failing_times_out_with_its_last_error() {
    // Nodes are not served at all: every list is a 404, retried until the bound.
    let (client, _) = fake_without_nodes().start().await;
    let err = Observer::start(&client, "t", &History::new(), Duration::from_secs(2))
        .await
        .err()
        .expect("nodes are never listed");
    assert!(matches!(err, ObserveError::StartTimeout { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("Node (last error: "), "{message}");
    assert!(message.contains("not found"), "{message}");
    assert!(!message.contains("Pod"), "pods were listed: {message}");
}
