//! The launcher's control endpoints, on the same paths kube-sim serves, so the harness's
//! existing chaos client (`SimChaos`) works unchanged against the upstream target:
//!
//! - `POST /sim/v1/nodes/{name}/stop`, `POST /sim/v1/nodes/{name}/start`
//! - `POST /sim/v1/namespaces/{namespace}/pods/{name}/crash`
//! - `GET /sim/v1/info`
//!
//! The actions go to the real nodes through [`NodeControl`]; success answers a `Status`
//! with `status: Success` (200), an unknown node or pod 404, a failed action 409, exactly as
//! kube-sim does.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What one control action returns.
pub type ControlFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ControlError>> + Send + 'a>>;

/// A failed control action.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The node or pod does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The action failed (HTTP 409).
    #[error("{0}")]
    Failed(String),
}

/// What the control endpoints need from the nodes (implemented by `realnode`).
pub trait NodeControl: Send + Sync + 'static {
    /// Kills the node (its kubelet, containerd and containers at once), so its status and
    /// Lease stop and the node-lifecycle controller marks it Unknown.
    fn stop_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a>;
    /// Starts a killed node again on the same directories; its kubelet restarts its pods.
    fn start_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a>;
    /// Kills the pod's container process (SIGKILL); the kubelet restarts it
    /// (restartCount + 1, lastState terminated).
    fn crash_pod<'a>(&'a self, namespace: &'a str, name: &'a str) -> ControlFuture<'a>;
}

/// Static facts for `GET /sim/v1/info`.
#[derive(Clone, Debug)]
pub struct Info {
    /// The API server's `/version` gitVersion, e.g. `v1.37.2`.
    pub server_version: String,
    /// The nodes' names.
    pub nodes: Vec<String>,
    /// The StorageClasses the provisioner serves.
    pub storage_classes: Vec<String>,
    /// The admin kubeconfig.
    pub kubeconfig: String,
    /// The nodes' `kubelet --version` and `containerd --version`.
    pub kubelet_version: String,
    pub container_runtime: String,
    /// The MySQL-compatible image the nodes carry (no registry: mysql:5.7 is not available).
    pub workload_image: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlServerError {
    #[error("failed to bind the control server on 127.0.0.1:0")]
    Bind(#[source] std::io::Error),
    #[error("failed to read the control server's address")]
    Address(#[source] std::io::Error),
}

#[derive(Clone)]
struct ControlState {
    control: Arc<dyn NodeControl>,
    info: Arc<Info>,
    client: Option<kube::Client>,
}

/// The running control server; dropping it stops serving.
pub struct ControlServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Serves the control endpoints on `127.0.0.1:0`. With `client`, `/sim/v1/info` also
    /// reports each node's Ready condition as the API server has it.
    pub async fn start(
        control: Arc<dyn NodeControl>,
        info: Info,
        client: Option<kube::Client>,
    ) -> Result<ControlServer, ControlServerError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(ControlServerError::Bind)?;
        let addr = listener.local_addr().map_err(ControlServerError::Address)?;
        let app = router(ControlState {
            control,
            info: Arc::new(info),
            client,
        });
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "control server stopped");
            }
        });
        tracing::info!(%addr, "control server listening");
        Ok(ControlServer {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn router(state: ControlState) -> Router {
    Router::new()
        .route("/sim/v1/info", get(info))
        .route("/sim/v1/nodes/{name}/stop", post(stop_node))
        .route("/sim/v1/nodes/{name}/start", post(start_node))
        .route(
            "/sim/v1/namespaces/{namespace}/pods/{name}/crash",
            post(crash_pod),
        )
        .fallback(|| async { status(StatusCode::NOT_FOUND, "NotFound", "unknown path".into()) })
        .with_state(state)
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

fn done(result: Result<(), ControlError>, what: String) -> Response {
    match result {
        Ok(()) => {
            tracing::info!(action = %what, "control action done");
            let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "message": what});
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(ControlError::NotFound(message)) => status(StatusCode::NOT_FOUND, "NotFound", message),
        Err(ControlError::Failed(message)) => {
            tracing::warn!(action = %what, %message, "control action failed");
            status(
                StatusCode::CONFLICT,
                "Conflict",
                format!("failed to {what}: {message}"),
            )
        }
    }
}

async fn stop_node(State(state): State<ControlState>, Path(name): Path<String>) -> Response {
    let result = state.control.stop_node(&name).await;
    done(result, format!("stop node {name}"))
}

async fn start_node(State(state): State<ControlState>, Path(name): Path<String>) -> Response {
    let result = state.control.start_node(&name).await;
    done(result, format!("start node {name}"))
}

async fn crash_pod(
    State(state): State<ControlState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let result = state.control.crash_pod(&namespace, &name).await;
    done(result, format!("crash pod {namespace}/{name}"))
}

/// Whether a Node object's Ready condition is True.
fn node_ready(node: &k8s_openapi::api::core::v1::Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

async fn info(State(state): State<ControlState>) -> Response {
    let mut ready = std::collections::BTreeMap::new();
    if let Some(client) = &state.client {
        let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
        match api.list(&Default::default()).await {
            Ok(list) => {
                for n in list.items {
                    let r = node_ready(&n);
                    ready.insert(n.metadata.name.unwrap_or_default(), r);
                }
            }
            Err(e) => tracing::warn!(error = %e, "info: failed to list nodes"),
        }
    }
    let nodes: Vec<Value> = state
        .info
        .nodes
        .iter()
        .map(|n| json!({"name": n, "ready": ready.get(n).copied().unwrap_or(false)}))
        .collect();
    let body = json!({
        "target": "upstream",
        "serverVersion": state.info.server_version,
        "nodes": nodes,
        "storageClasses": state.info.storage_classes,
        "kubeconfig": state.info.kubeconfig,
        "nodeKind": "real",
        "kubeletVersion": state.info.kubelet_version,
        "containerRuntime": state.info.container_runtime,
        "workloadImage": state.info.workload_image,
        "runtime": true,
        "note": "the official Kubernetes control plane with real nodes: the official kubelet, containerd, runc, CNI and kube-proxy",
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<String>>,
    }

    impl NodeControl for Fake {
        fn stop_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a> {
            Box::pin(async move {
                self.calls.lock().unwrap().push(format!("stop {name}"));
                if name == "missing" {
                    return Err(ControlError::NotFound(format!("node {name} not found")));
                }
                Ok(())
            })
        }
        fn start_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a> {
            Box::pin(async move {
                self.calls.lock().unwrap().push(format!("start {name}"));
                Err(ControlError::Failed(format!("node {name} is not stopped")))
            })
        }
        fn crash_pod<'a>(&'a self, namespace: &'a str, name: &'a str) -> ControlFuture<'a> {
            Box::pin(async move {
                self.calls
                    .lock()
                    .unwrap()
                    .push(format!("crash {namespace}/{name}"));
                Ok(())
            })
        }
    }

    async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8(buf).unwrap();
        let code: u16 = text[9..12].parse().unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        (code, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn endpoints_match_kube_sim_status_codes() {
        let fake = Arc::new(Fake::default());
        let info = Info {
            server_version: "v1.37.2".into(),
            nodes: vec!["w1".into()],
            storage_classes: vec!["standard".into()],
            kubeconfig: "/tmp/k".into(),
            kubelet_version: "Kubernetes v1.37.2".into(),
            container_runtime: "containerd github.com/containerd/containerd/v2 v2.4.2".into(),
            workload_image: "localhost/sts-conformance/mariadb:10.11".into(),
        };
        let server = ControlServer::start(fake.clone(), info, None)
            .await
            .unwrap();
        let addr = server.addr();

        let (code, body) = request(addr, "POST", "/sim/v1/nodes/w1/stop").await;
        assert_eq!(code, 200);
        assert_eq!(body["status"], "Success");
        let (code, body) = request(addr, "POST", "/sim/v1/nodes/missing/stop").await;
        assert_eq!(code, 404);
        assert_eq!(body["reason"], "NotFound");
        let (code, body) = request(addr, "POST", "/sim/v1/nodes/w1/start").await;
        assert_eq!(code, 409);
        assert_eq!(
            body["message"],
            "failed to start node w1: node w1 is not stopped"
        );
        let (code, _) = request(addr, "POST", "/sim/v1/namespaces/ns/pods/mysql-0/crash").await;
        assert_eq!(code, 200);
        let (code, body) = request(addr, "GET", "/sim/v1/info").await;
        assert_eq!(code, 200);
        assert_eq!(body["target"], "upstream");
        assert_eq!(body["serverVersion"], "v1.37.2");
        assert_eq!(body["nodes"][0]["name"], "w1");
        assert_eq!(body["nodeKind"], "real");
        assert_eq!(body["kubeletVersion"], "Kubernetes v1.37.2");
        assert!(body.get("hollowNodes").is_none());
        let (code, _) = request(addr, "GET", "/nope").await;
        assert_eq!(code, 404);
        assert_eq!(
            *fake.calls.lock().unwrap(),
            vec!["stop w1", "stop missing", "start w1", "crash ns/mysql-0"]
        );
        server.stop().await;
    }
}
