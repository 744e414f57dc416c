//! The Kubernetes API surface of kube-sim: discovery, OpenAPI, resources with their verbs,
//! watch, port-forward and the sim's control endpoints, over plain HTTP.

mod control;
mod decode;
pub mod discovery;
pub mod dns;
mod error;
mod exec;
mod openapi;
mod patch;
mod portforward;
mod protobuf;
mod resources;
mod runtime_control;
mod selector;
mod strategy;
mod table;
mod watch;

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use control::{ControlError, ControlFuture, NodeControl};
pub use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<crate::store::Store>,
    /// The runtime behind the control endpoints; None in API-only mode.
    pub control: Option<Arc<dyn NodeControl>>,
    /// Harmless facts for `GET /sim/v1/info` (faults, state dir, ...).
    pub info: Arc<Value>,
    /// The faults the API itself injects (its cluster DNS answers, for exec).
    pub faults: crate::config::Faults,
}

impl ApiState {
    /// API-only state: no runtime, empty info.
    pub fn new(store: Arc<crate::store::Store>) -> Self {
        ApiState {
            store,
            control: None,
            info: Arc::new(json!({})),
            faults: crate::config::Faults::none(),
        }
    }

    pub fn with_faults(mut self, faults: crate::config::Faults) -> Self {
        self.faults = faults;
        self
    }

    pub fn with_control(mut self, control: Arc<dyn NodeControl>) -> Self {
        self.control = Some(control);
        self
    }

    pub fn with_info(mut self, info: Value) -> Self {
        self.info = Arc::new(info);
        self
    }
}

/// Failure to serve HTTP on the listener.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("failed to serve the Kubernetes API on {addr}")]
    Serve {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// The router with every route the sim serves.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/version", get(|| async { ok_json(&discovery::version()) }))
        .route(
            "/version/",
            get(|| async { ok_json(&discovery::version()) }),
        )
        .route("/api", get(api_versions))
        .route("/api/", get(api_versions))
        .route(
            "/apis",
            get(|| async { ok_json(&discovery::api_group_list()) }),
        )
        .route(
            "/apis/",
            get(|| async { ok_json(&discovery::api_group_list()) }),
        )
        .route(
            "/openapi/v3",
            get(|| async { ok_json(&openapi::v3_index()) }),
        )
        .route("/openapi/v3/{*path}", get(openapi_document))
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/portforward",
            get(portforward::portforward).post(portforward::spdy_refused),
        )
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            get(exec::exec).post(portforward::spdy_refused),
        )
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/attach",
            any(portforward::attach_refused),
        )
        .route("/api/{*rest}", any(resources::handle))
        .route("/apis/{*rest}", any(resources::handle))
        .route("/sim/v1/info", get(control::info))
        .route("/sim/v1/nodes/{name}/stop", post(control::stop_node))
        .route("/sim/v1/nodes/{name}/start", post(control::start_node))
        .route(
            "/sim/v1/namespaces/{namespace}/pods/{name}/crash",
            post(control::crash_pod),
        )
        .fallback(|| async { ApiError::UnknownPath })
        .with_state(state)
}

/// Serves the API on `listener` until the future is dropped or the listener fails.
pub async fn serve(listener: TcpListener, state: ApiState) -> Result<(), ServeError> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "<unknown>".into());
    tracing::info!(%addr, "serving the Kubernetes API");
    axum::serve(listener, router(state))
        .await
        .map_err(|source| ServeError::Serve { addr, source })
}

async fn api_versions(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    ok_json(&discovery::api_versions(host))
}

async fn openapi_document(Path(path): Path<String>) -> Result<Response, ApiError> {
    openapi::v3_document(&path)
        .map(|doc| ok_json(&doc))
        .ok_or(ApiError::UnknownPath)
}

/// A JSON response with `code`.
pub(crate) fn json_response(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn ok_json(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// Decodes `a=b&c=d` (percent-encoding and `+` for space) into pairs, keeping repeats.
pub(crate) fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decodes_percent_plus_and_repeats() {
        let pairs = parse_query("labelSelector=app%3Dmysql%2Ctier+in+(db)&ports=1&ports=2&watch");
        assert_eq!(
            pairs[0],
            ("labelSelector".into(), "app=mysql,tier in (db)".into())
        );
        assert_eq!(pairs[1].1, "1");
        assert_eq!(pairs[2].1, "2");
        assert_eq!(pairs[3], ("watch".into(), String::new()));
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
