//! Deletes: the DeleteOptions of a request (body or query), the answer a real API server
//! gives (the object for pods and claims, else a Success Status), and deletecollection.

use axum::response::Response;
use serde_json::{Value, json};

use super::{Request, ok};
use crate::api::error::ApiError;
use crate::store::{DeleteOptions, DeleteOutcome, ResourceKind, StoreError};

pub(super) fn delete_options(req: &Request<'_>) -> Result<DeleteOptions, ApiError> {
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(req.body)
            .map_err(|e| ApiError::BadRequest(format!("invalid DeleteOptions: {e}")))?
    };
    if !body.is_object() {
        return Err(ApiError::BadRequest(
            "invalid DeleteOptions: expected an object".into(),
        ));
    }
    let text = |p: &str| body.pointer(p).and_then(Value::as_str).map(String::from);
    let grace = match body.get("gracePeriodSeconds") {
        None | Some(Value::Null) => req.params.int("gracePeriodSeconds")?,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            ApiError::BadRequest(format!("invalid DeleteOptions: gracePeriodSeconds {v}"))
        })?),
    };
    let orphan = body
        .get("orphanDependents")
        .and_then(Value::as_bool)
        .or_else(|| req.params.get("orphanDependents").map(|v| v == "true"));
    let policy = text("/propagationPolicy")
        .or_else(|| req.params.get("propagationPolicy").map(String::from))
        .or_else(|| orphan.filter(|o| *o).map(|_| "Orphan".to_string()));
    if let Some(p) = &policy
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::BadRequest(format!(
            "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        )));
    }
    Ok(DeleteOptions {
        grace_period_seconds: grace,
        propagation_policy: policy,
        precondition_uid: text("/preconditions/uid"),
        precondition_resource_version: text("/preconditions/resourceVersion"),
    })
}

/// Pods and PVCs answer a delete with the object; other kinds with a Success Status
/// once the object is gone.
pub(super) fn delete_response(kind: ResourceKind, outcome: DeleteOutcome) -> Response {
    match outcome {
        DeleteOutcome::Pending(obj) => ok(&obj),
        DeleteOutcome::Deleted(obj)
            if matches!(
                kind,
                ResourceKind::Pod | ResourceKind::PersistentVolumeClaim
            ) =>
        {
            ok(&obj)
        }
        DeleteOutcome::Deleted(obj) => ok(&json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": obj.pointer("/metadata/name"),
                "group": kind.group(),
                "kind": kind.plural(),
                "uid": obj.pointer("/metadata/uid"),
            },
        })),
    }
}

pub(super) fn delete(req: &Request<'_>) -> Result<Response, ApiError> {
    let opts = delete_options(req)?;
    if req.params.dry_run() {
        return Ok(ok(&req.get_current()?));
    }
    let outcome = req
        .store()
        .delete(req.path.kind, req.ns(), req.name(), &opts)?;
    Ok(delete_response(req.path.kind, outcome))
}

pub(super) fn delete_collection(req: &Request<'_>) -> Result<Response, ApiError> {
    let opts = delete_options(req)?;
    let selectors = req.params.selectors(req.path.kind)?;
    let kind = req.path.kind;
    let mut deleted = Vec::new();
    for obj in req
        .store()
        .list(kind, req.ns())
        .into_iter()
        .filter(|o| selectors.matches(o))
    {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        if req.params.dry_run() {
            deleted.push(obj.clone());
            continue;
        }
        match req.store().delete(kind, ns, name, &opts) {
            Ok(outcome) => deleted.push(outcome.object().clone()),
            // Deleted by someone else meanwhile: nothing left to do for it.
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ok(&json!({
        "kind": format!("{}List", kind.kind()),
        "apiVersion": kind.api_version(),
        "metadata": {"resourceVersion": req.store().current_resource_version().to_string()},
        "items": deleted,
    })))
}
