//! The sim's control endpoints (`/sim/v1/...`): node stop/start, container crash, info.
//!
//! They reach the runtime through [`NodeControl`], so the API server can run without a
//! runtime (API-only tests) and the endpoints can be tested with a fake.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::error::ApiError;
use super::{ApiState, json_response};
use crate::store::ResourceKind;

pub type ControlFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ControlError>> + Send + 'a>>;

/// A failed control action, as the runtime reports it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    pub message: String,
    /// The node or pod does not exist (404) rather than the action failing (409).
    pub not_found: bool,
}

/// What the control endpoints need from the runtime.
pub trait NodeControl: Send + Sync + 'static {
    fn stop_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a>;
    fn start_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a>;
    fn crash_pod<'a>(&'a self, namespace: &'a str, name: &'a str) -> ControlFuture<'a>;
}

fn runtime(state: &ApiState) -> Result<&Arc<dyn NodeControl>, ApiError> {
    state.control.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "kube-sim runs without a runtime (API only): no nodes to control".into(),
        )
    })
}

fn done(result: Result<(), ControlError>, what: String) -> Result<Response, ApiError> {
    match result {
        Ok(()) => {
            tracing::info!(action = %what, "control action done");
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "message": what}),
            ))
        }
        Err(e) if e.not_found => Err(ApiError::NotFound { message: e.message }),
        Err(e) => Err(ApiError::Conflict(format!(
            "failed to {what}: {}",
            e.message
        ))),
    }
}

pub async fn stop_node(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let result = runtime(&state)?.stop_node(&name).await;
    done(result, format!("stop node {name}"))
}

pub async fn start_node(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let result = runtime(&state)?.start_node(&name).await;
    done(result, format!("start node {name}"))
}

pub async fn crash_pod(
    State(state): State<ApiState>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let result = runtime(&state)?.crash_pod(&namespace, &name).await;
    done(result, format!("crash pod {namespace}/{name}"))
}

/// `GET /sim/v1/info`: the static info `main` supplied plus each node's readiness.
pub async fn info(State(state): State<ApiState>) -> Response {
    let nodes: Vec<Value> = state
        .store
        .list(ResourceKind::Node, None)
        .iter()
        .map(|n| {
            let ready = n
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .map(|c| c["status"] == "True")
                .unwrap_or(false);
            json!({"name": n.pointer("/metadata/name"), "ready": ready})
        })
        .collect();
    let mut info = state.info.as_ref().clone();
    if !info.is_object() {
        info = json!({});
    }
    info["nodes"] = json!(nodes);
    info["runtime"] = json!(state.control.is_some());
    info["note"] = json!("kube-sim is a test double, never a certification target");
    json_response(StatusCode::OK, &info)
}
