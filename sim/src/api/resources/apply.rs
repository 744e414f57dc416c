//! Server-side apply (create when missing, else merge the applied fields, retried on a
//! conflict) and the `metadata.managedFields` entry each write by a field manager records.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{PATCH_ATTEMPTS, Request, check_name_matches, pin_resource_version, prepare_write};
use crate::api::error::ApiError;
use crate::api::json_response;
use crate::api::patch::{self, PatchKind};
use crate::api::strategy;
use crate::store::StoreError;

pub(super) fn server_side_apply(req: &Request<'_>, applied: Value) -> Result<Response, ApiError> {
    let manager = req
        .params
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest("PATCH is missing the fieldManager query parameter: it is required for apply requests".into())
        })?
        .to_string();
    if !applied.is_object() {
        return Err(ApiError::BadRequest(
            "the applied configuration must be an object".into(),
        ));
    }
    for field in ["apiVersion", "kind"] {
        if applied
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::BadRequest(format!(
                "invalid object: {field} must be set in an apply request"
            )));
        }
    }
    if req.path.subresource.is_some() {
        return Err(ApiError::MethodNotAllowed);
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply_once(req, &applied, &manager) {
            Err(ApiError::Store(
                StoreError::Conflict { .. } | StoreError::AlreadyExists { .. },
            )) if attempt < PATCH_ATTEMPTS => {}
            Ok((created, obj)) => {
                let code = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                return Ok(json_response(code, &obj));
            }
            Err(e) => return Err(e),
        }
    }
}

/// One apply attempt: create when missing, else merge the applied fields. Returns
/// whether the object was created.
pub(super) fn apply_once(
    req: &Request<'_>,
    applied: &Value,
    manager: &str,
) -> Result<(bool, Value), ApiError> {
    let fields = patch::fields_v1(applied);
    let Some(current) = req.store().get(req.path.kind, req.ns(), req.name()) else {
        let mut obj = applied.clone();
        prepare_write(req, &mut obj)?;
        check_name_matches(req, &obj)?;
        strategy::prepare_create(req.path.kind, &mut obj, req.store());
        set_managed_entry(&mut obj, manager, "Apply", fields);
        if req.params.dry_run() {
            return Ok((true, obj));
        }
        return Ok((true, req.store().create(req.path.kind, req.ns(), obj)?));
    };
    let mut new = patch::apply(PatchKind::Apply, &current, applied)?;
    prepare_write(req, &mut new)?;
    check_name_matches(req, &new)?;
    let pinned = applied.pointer("/metadata/resourceVersion").is_some();
    if !pinned {
        pin_resource_version(&mut new, &current);
    }
    set_managed_entry(&mut new, manager, "Apply", fields);
    strategy::validate_update(req.path.kind, &current, &new)?;
    if req.params.dry_run() {
        return Ok((false, new));
    }
    Ok((false, req.store().update(req.path.kind, req.ns(), new)?))
}

/// Records a write by `manager` in `metadata.managedFields` (one entry per manager and
/// operation), with the fields of the object's spec-like content.
pub(super) fn record_manager(obj: &mut Value, manager: &str, operation: &str) {
    let mut content = obj.clone();
    if let Some(map) = content.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "labels" | "annotations" | "finalizers" | "ownerReferences"
                )
            });
        }
    }
    let fields = patch::fields_v1(&content);
    set_managed_entry(obj, manager, operation, fields);
}

pub(super) fn set_managed_entry(obj: &mut Value, manager: &str, operation: &str, fields: Value) {
    let api_version = obj.get("apiVersion").cloned().unwrap_or(Value::Null);
    let entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    let mut entries: Vec<Value> = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    entries.retain(|e| !(e["manager"] == manager && e["operation"] == operation));
    entries.push(entry);
    strategy::set_path(obj, &["metadata", "managedFields"], Value::Array(entries));
}
