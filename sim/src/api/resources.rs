//! Resource paths and verbs: get, list, watch, create, replace, patch (four kinds), delete,
//! deletecollection, and the `status`, `scale` and `log` subresources. Server-side apply:
//! `apply`; deletes: `delete`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::decode::{self, FieldValidation};
use super::error::ApiError;
use super::patch::{self, PatchKind};
use super::selector::{FieldSelector, LabelSelector, Selectors};
use super::strategy;
use super::table::{self, IncludeObject};
use super::watch::{self, WatchRequest};
use super::{ApiState, json_response, parse_query};
use crate::store::{ResourceKind, Store, StoreError};

mod apply;
mod delete;

use apply::{record_manager, server_side_apply};
use delete::{delete, delete_collection};

/// How many times a PATCH is retried when the object changed under it.
const PATCH_ATTEMPTS: usize = 5;

/// A parsed `/api/v1/...` or `/apis/{group}/{version}/...` resource path.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourcePath {
    pub kind: ResourceKind,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// The path of `kind` after its plural: nothing, a name, or a name and a subresource.
fn resource_path(kind: ResourceKind, ns: Option<&str>, tail: &[&str]) -> Option<ResourcePath> {
    let (name, subresource) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] => (Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(ResourcePath {
        kind,
        namespace: ns.map(str::to_string),
        name,
        subresource,
    })
}

/// What a path under `/api` or `/apis` points at.
#[derive(Debug, PartialEq)]
enum Target {
    /// A discovery document (`/api/v1`, `/apis/apps`, `/apis/apps/v1`).
    Discovery(Value),
    Resource(ResourcePath),
}

fn parse_path(path: &str) -> Result<Target, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group] => {
            return super::discovery::api_group(group)
                .map(Target::Discovery)
                .ok_or(ApiError::UnknownPath);
        }
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::UnknownPath),
    };
    let list = super::discovery::api_resource_list(group, version).ok_or(ApiError::UnknownPath)?;
    if rest.is_empty() {
        return Ok(Target::Discovery(list));
    }
    let kind_of = |plural: &str| ResourceKind::from_group_plural(group, plural);
    let resource = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if kind_of(plural).is_some_and(ResourceKind::namespaced) =>
        {
            kind_of(plural).and_then(|kind| resource_path(kind, Some(ns), tail))
        }
        [plural, tail @ ..] => kind_of(plural)
            .filter(|kind| tail.is_empty() || !kind.namespaced())
            .and_then(|kind| resource_path(kind, None, tail)),
        [] => None,
    }
    .ok_or(ApiError::UnknownPath)?;
    let known_sub = matches!(
        (resource.kind, resource.subresource.as_deref()),
        (_, None | Some("status"))
            | (ResourceKind::StatefulSet, Some("scale"))
            | (ResourceKind::Pod, Some("log"))
    );
    if !known_sub {
        return Err(ApiError::UnknownPath);
    }
    Ok(Target::Resource(resource))
}

/// Query parameters of a resource request.
#[derive(Debug, Default)]
struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | ""))
    }

    fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::BadRequest(format!("invalid value for {key}: {v:?}")))
            })
            .transpose()
    }

    fn dry_run(&self) -> bool {
        self.get("dryRun").is_some_and(|v| !v.is_empty())
    }

    fn selectors(&self, kind: ResourceKind) -> Result<Selectors, ApiError> {
        Ok(Selectors {
            labels: LabelSelector::parse(self.get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(self.get("fieldSelector").unwrap_or(""))?
                .supported_by(kind)?,
        })
    }
}

/// One request, parsed.
struct Request<'a> {
    state: &'a ApiState,
    path: ResourcePath,
    params: Params,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    /// `Warning` headers for the response (unknown fields under `fieldValidation=Warn`).
    warnings: std::cell::RefCell<Vec<String>>,
}

impl Request<'_> {
    fn store(&self) -> &Store {
        &self.state.store
    }

    fn ns(&self) -> Option<&str> {
        self.path.namespace.as_deref()
    }

    fn name(&self) -> &str {
        self.path.name.as_deref().unwrap_or("")
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn table(&self) -> Option<IncludeObject> {
        table::wants_table(self.header(header::ACCEPT))
            .then(|| IncludeObject::parse(self.params.get("includeObject")))
    }

    fn get_current(&self) -> Result<Value, ApiError> {
        self.store()
            .get(self.path.kind, self.ns(), self.name())
            .ok_or_else(|| not_found(self.path.kind, self.name()))
    }

    /// The body as an object: JSON, or YAML when the content type says so.
    fn body_object(&self) -> Result<Value, ApiError> {
        let content_type = self.header(header::CONTENT_TYPE);
        let parsed = if content_type.contains("yaml") {
            serde_yaml::from_slice::<Value>(self.body)
                .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?
        } else if content_type.contains("protobuf") {
            super::protobuf::decode(self.path.kind, self.body)?
        } else {
            serde_json::from_slice::<Value>(self.body).map_err(|e| {
                ApiError::BadRequest(format!(
                    "the object provided is unrecognized or malformed: {e}"
                ))
            })?
        };
        if parsed.is_object() {
            Ok(parsed)
        } else {
            Err(ApiError::BadRequest(
                "the object provided is unrecognized or malformed: expected a JSON object".into(),
            ))
        }
    }
}

fn not_found(kind: ResourceKind, name: &str) -> ApiError {
    ApiError::Store(StoreError::NotFound {
        kind,
        resource: kind.qualified_plural(),
        name: name.to_string(),
    })
}

/// Entry point for every path under `/api` and `/apis`.
pub async fn handle(
    State(state): State<ApiState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = match parse_path(uri.path()) {
        Ok(Target::Discovery(doc)) if method == Method::GET => {
            Ok(json_response(StatusCode::OK, &doc))
        }
        Ok(Target::Discovery(_)) => Err(ApiError::MethodNotAllowed),
        Ok(Target::Resource(path)) => {
            let request = Request {
                state: &state,
                path,
                params: Params {
                    pairs: parse_query(uri.query().unwrap_or("")),
                },
                headers: &headers,
                body: &body,
                warnings: std::cell::RefCell::default(),
            };
            dispatch(&request, &method).map(|r| with_warnings(r, &request.warnings.borrow()))
        }
        Err(e) => Err(e),
    };
    tracing::debug!(%method, path = %uri.path(), ok = result.is_ok(), "api request");
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Adds one `Warning: 299 - "text"` header per warning, as the API server does.
fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for text in warnings {
        let quoted = text.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = header::HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

fn dispatch(req: &Request<'_>, method: &Method) -> Result<Response, ApiError> {
    let has_name = req.path.name.is_some();
    let sub = req.path.subresource.as_deref();
    match (method.as_str(), has_name, sub) {
        ("GET", false, None) if req.params.flag("watch") => watch(req),
        ("GET", false, None) => list(req),
        ("POST", false, None) => create(req),
        ("DELETE", false, None) => delete_collection(req),
        ("GET", true, None | Some("status")) => get(req),
        ("GET", true, Some("scale")) => Ok(ok(&scale_view(&req.get_current()?))),
        ("GET", true, Some("log")) => pod_log(req),
        ("PUT", true, None | Some("status") | Some("scale")) => replace(req),
        ("PATCH", true, None | Some("status") | Some("scale")) => patch_object(req),
        ("DELETE", true, None) => delete(req),
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

fn list(req: &Request<'_>) -> Result<Response, ApiError> {
    let selectors = req.params.selectors(req.path.kind)?;
    let (items, rv) = req.store().list_with_version(req.path.kind, req.ns());
    let items: Vec<Value> = items.into_iter().filter(|o| selectors.matches(o)).collect();
    if let Some(include) = req.table() {
        return Ok(ok(&table::table(req.path.kind, &items, rv, include)));
    }
    Ok(ok(&json!({
        "kind": format!("{}List", req.path.kind.kind()),
        "apiVersion": req.path.kind.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })))
}

fn watch(req: &Request<'_>) -> Result<Response, ApiError> {
    let timeout = req
        .params
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| std::time::Duration::from_secs(t.unsigned_abs()));
    let request = WatchRequest {
        kind: req.path.kind,
        namespace: req.path.namespace.clone(),
        resource_version: req.params.get("resourceVersion").map(String::from),
        allow_bookmarks: req.params.flag("allowWatchBookmarks"),
        send_initial_events: req.params.get("sendInitialEvents") == Some("true"),
        timeout,
        selectors: req.params.selectors(req.path.kind)?,
        table: req.table(),
    };
    watch::respond(req.state.store.clone(), request)
}

fn get(req: &Request<'_>) -> Result<Response, ApiError> {
    let obj = req.get_current()?;
    if let Some(include) = req.table() {
        let rv = resource_version(&obj);
        return Ok(ok(&table::table(req.path.kind, &[obj], rv, include)));
    }
    Ok(ok(&obj))
}

fn resource_version(obj: &Value) -> u64 {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

/// Type, namespace, defaults and validation for an object about to be written.
fn prepare_write(req: &Request<'_>, obj: &mut Value) -> Result<(), ApiError> {
    let kind = req.path.kind;
    strategy::check_type(kind, obj)?;
    strategy::check_namespace(kind, req.ns(), obj)?;
    let mode = FieldValidation::parse(req.params.get("fieldValidation"))?;
    for warning in decode::decode(kind, obj, mode)? {
        let mut warnings = req.warnings.borrow_mut();
        if !warnings.contains(&warning) {
            warnings.push(warning);
        }
    }
    strategy::apply_defaults(kind, obj);
    strategy::validate(kind, obj)
}

fn create(req: &Request<'_>) -> Result<Response, ApiError> {
    let mut obj = req.body_object()?;
    prepare_write(req, &mut obj)?;
    strategy::prepare_create(req.path.kind, &mut obj, req.store());
    if let Some(manager) = req.params.get("fieldManager") {
        record_manager(&mut obj, manager, "Update");
    }
    if req.params.dry_run() {
        return Ok(json_response(StatusCode::CREATED, &obj));
    }
    let created = req.store().create(req.path.kind, req.ns(), obj)?;
    Ok(json_response(StatusCode::CREATED, &created))
}

fn check_name_matches(req: &Request<'_>, obj: &Value) -> Result<(), ApiError> {
    let body_name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if body_name != req.name() {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            req.name()
        )));
    }
    Ok(())
}

fn replace(req: &Request<'_>) -> Result<Response, ApiError> {
    let body = req.body_object()?;
    if req.path.subresource.as_deref() == Some("scale") {
        let current = req.get_current()?;
        let updated = write_scale(req, &current, &body)?;
        return Ok(ok(&scale_view(&updated)));
    }
    let mut obj = body;
    prepare_write(req, &mut obj)?;
    check_name_matches(req, &obj)?;
    let current = req.get_current()?;
    let written = write(req, &current, obj)?;
    Ok(ok(&written))
}

/// Stores `new` over `current` (main resource or `/status`), honouring dryRun.
fn write(req: &Request<'_>, current: &Value, mut new: Value) -> Result<Value, ApiError> {
    let kind = req.path.kind;
    let status_only = req.path.subresource.as_deref() == Some("status");
    if !status_only {
        strategy::validate_update(kind, current, &new)?;
    }
    if let Some(manager) = req.params.get("fieldManager") {
        record_manager(&mut new, manager, "Update");
    }
    if req.params.dry_run() {
        return Ok(new);
    }
    let written = if status_only {
        req.store().update_status(kind, req.ns(), new)?
    } else {
        req.store().update(kind, req.ns(), new)?
    };
    Ok(written)
}

fn patch_object(req: &Request<'_>) -> Result<Response, ApiError> {
    let content_type = req.header(header::CONTENT_TYPE);
    let kind = PatchKind::from_content_type(content_type)
        .ok_or(ApiError::UnsupportedMediaType(PatchKind::ACCEPTED))?;
    let patch = patch::parse_body(kind, req.body)?;
    if kind == PatchKind::Apply {
        return server_side_apply(req, patch);
    }
    let pinned = patch.pointer("/metadata/resourceVersion").is_some();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match patch_once(req, kind, &patch) {
            // Retry when another writer got in between our read and write, unless the
            // client pinned the resourceVersion itself.
            Err(ApiError::Store(StoreError::Conflict { .. }))
                if !pinned && attempt < PATCH_ATTEMPTS => {}
            other => return other.map(|v| ok(&v)),
        }
    }
}

fn patch_once(req: &Request<'_>, kind: PatchKind, patch: &Value) -> Result<Value, ApiError> {
    let current = req.get_current()?;
    if req.path.subresource.as_deref() == Some("scale") {
        let patched = patch::apply(kind, &scale_view(&current), patch)?;
        return write_scale(req, &current, &patched).map(|sts| scale_view(&sts));
    }
    let mut new = patch::apply(kind, &current, patch)?;
    prepare_write(req, &mut new)?;
    check_name_matches(req, &new)?;
    pin_resource_version(&mut new, &current);
    write(req, &current, new)
}

/// Makes the store reject the write if the object changed since `current` was read.
fn pin_resource_version(new: &mut Value, current: &Value) {
    if let Some(rv) = current.pointer("/metadata/resourceVersion").cloned() {
        strategy::set_path(new, &["metadata", "resourceVersion"], rv);
    }
}

/// The autoscaling/v1 Scale view of a StatefulSet.
fn scale_view(sts: &Value) -> Value {
    let selector = super::selector::render_match_labels(sts.pointer("/spec/selector/matchLabels"));
    let meta = |f: &str| {
        sts.pointer(&format!("/metadata/{f}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta("name"),
            "namespace": meta("namespace"),
            "uid": meta("uid"),
            "resourceVersion": meta("resourceVersion"),
            "creationTimestamp": meta("creationTimestamp"),
        },
        "spec": {"replicas": sts.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": sts.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// Applies a Scale object's `spec.replicas` to the StatefulSet.
fn write_scale(req: &Request<'_>, current: &Value, scale: &Value) -> Result<Value, ApiError> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| (0..=i64::from(i32::MAX)).contains(r))
        .ok_or_else(|| {
            ApiError::invalid(
                req.path.kind,
                req.name(),
                format!(
                    "spec.replicas: Invalid value: {}: must be greater than or equal to 0",
                    scale
                        .pointer("/spec/replicas")
                        .cloned()
                        .unwrap_or(Value::Null)
                ),
            )
        })?;
    let mut new = current.clone();
    strategy::set_path(&mut new, &["spec", "replicas"], json!(replicas));
    let rv = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty())
        .map(|rv| json!(rv))
        .or_else(|| current.pointer("/metadata/resourceVersion").cloned());
    if let Some(rv) = rv {
        strategy::set_path(&mut new, &["metadata", "resourceVersion"], rv);
    }
    if req.params.dry_run() {
        return Ok(new);
    }
    Ok(req.store().update(req.path.kind, req.ns(), new)?)
}

/// `pods/{name}/log`: the file named by the pod's `kube-sim/log-path` annotation.
fn pod_log(req: &Request<'_>) -> Result<Response, ApiError> {
    let pod = req.get_current()?;
    let path = pod
        .pointer("/metadata/annotations/kube-sim~1log-path")
        .and_then(Value::as_str);
    let content = match path {
        Some(p) => std::fs::read(p).unwrap_or_default(),
        None => Vec::new(),
    };
    let content = tail(
        content,
        req.params.int("tailLines")?,
        req.params.int("limitBytes")?,
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        content,
    )
        .into_response())
}

fn tail(mut content: Vec<u8>, lines: Option<i64>, limit: Option<i64>) -> Vec<u8> {
    if let Some(n) = lines.and_then(|n| usize::try_from(n).ok()) {
        let body = content.strip_suffix(b"\n").unwrap_or(&content);
        let start = body
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, b)| **b == b'\n')
            .nth(n.saturating_sub(1))
            .map_or(0, |(i, _)| i + 1);
        content = if n == 0 {
            Vec::new()
        } else {
            content[start..].to_vec()
        };
    }
    if let Some(max) = limit.and_then(|n| usize::try_from(n).ok()) {
        content.truncate(max);
    }
    content
}

#[cfg(test)]
mod tests;
