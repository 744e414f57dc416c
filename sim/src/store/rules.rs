//! The API server's generic registry rules, as pure functions over JSON objects: object
//! names (generateName, validation), namespace admission, resourceVersion and uid
//! preconditions, identity kept across updates, finalizers and graceful deletion.

use chrono::{SecondsFormat, Utc};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::kinds::ResourceKind;
use super::{DeleteOptions, Inner, StoreError, key};

pub(super) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn rfc3339_in(seconds: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The metadata map of `obj`, created if missing. `obj` must be a JSON object (or becomes one).
pub(super) fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("made an object above");
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("made an object above")
}

pub(super) fn fill_type(kind: ResourceKind, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(kind.api_version()));
        map.insert("kind".into(), json!(kind.kind()));
    }
}

pub(super) fn set_or_remove(obj: &mut Value, field: &str, value: Option<Value>) {
    if let Some(map) = obj.as_object_mut() {
        match value {
            Some(v) => map.insert(field.to_string(), v),
            None => map.remove(field),
        };
    }
}

pub(super) fn object_name(kind: ResourceKind, obj: &Value) -> Result<String, StoreError> {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            StoreError::invalid(kind, "", "metadata.name: Required value: name is required")
        })
}

/// The object's name, generating one from `metadata.generateName` if needed.
pub(super) fn resolve_name(kind: ResourceKind, obj: &mut Value) -> Result<String, StoreError> {
    if !obj.is_object() {
        return Err(StoreError::invalid(
            kind,
            "",
            "object must be a JSON object",
        ));
    }
    if let Ok(name) = object_name(kind, obj) {
        validate_name(kind, &name)?;
        return Ok(name);
    }
    let prefix = obj
        .pointer("/metadata/generateName")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            StoreError::invalid(
                kind,
                "",
                "metadata.name: Required value: name or generateName is required",
            )
        })?;
    let name = format!("{prefix}{}", random_suffix(5));
    validate_name(kind, &name)?;
    Ok(name)
}

/// DNS-1123 subdomain rules, which every kind the sim serves accepts.
pub(super) fn validate_name(kind: ResourceKind, name: &str) -> Result<(), StoreError> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let valid_ends = name
        .chars()
        .next()
        .zip(name.chars().last())
        .is_some_and(|(a, b)| a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric());
    if name.len() <= 253 && valid_chars && valid_ends {
        Ok(())
    } else {
        Err(StoreError::invalid(
            kind,
            name,
            format!(
                "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ))
    }
}

pub(super) fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub(super) fn check_namespace_accepts(
    inner: &Inner,
    kind: ResourceKind,
    ns: &str,
    name: &str,
) -> Result<(), StoreError> {
    let namespace = inner
        .objects
        .get(&key(ResourceKind::Namespace, None, ns))
        .ok_or_else(|| StoreError::not_found(ResourceKind::Namespace, ns))?;
    if namespace.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(StoreError::Forbidden {
            kind,
            resource: kind.qualified_plural(),
            name: name.to_string(),
            message: format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        });
    }
    Ok(())
}

pub(super) fn prepare_namespace(obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
        map.insert("status".into(), json!({"phase": "Active"}));
    }
    let meta = metadata_mut(obj);
    let name = meta.get("name").cloned().unwrap_or(Value::Null);
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert("kubernetes.io/metadata.name".into(), name);
    }
}

pub(super) fn check_write_preconditions(
    kind: ResourceKind,
    name: &str,
    old: &Value,
    request: &Value,
) -> Result<(), StoreError> {
    let wanted_rv = request
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty());
    let current_rv = old
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    if let Some(wanted) = wanted_rv
        && Some(wanted) != current_rv
    {
        return Err(StoreError::conflict(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    let wanted_uid = request
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty());
    let current_uid = old.pointer("/metadata/uid").and_then(Value::as_str);
    if let Some(wanted) = wanted_uid
        && Some(wanted) != current_uid
    {
        return Err(StoreError::conflict(
            kind,
            name,
            format!(
                "Precondition failed: UID in precondition: {wanted}, UID in object meta: {}",
                current_uid.unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_delete_preconditions(
    kind: ResourceKind,
    name: &str,
    old: &Value,
    opts: &DeleteOptions,
) -> Result<(), StoreError> {
    let current_uid = old
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(uid) = &opts.precondition_uid
        && uid != current_uid
    {
        return Err(StoreError::conflict(
            kind,
            name,
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {current_uid}"
            ),
        ));
    }
    let current_rv = old
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(rv) = &opts.precondition_resource_version
        && rv != current_rv
    {
        return Err(StoreError::conflict(
            kind,
            name,
            format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {current_rv}"
            ),
        ));
    }
    Ok(())
}

/// Uid, name, namespace, creationTimestamp, deletion fields and type are the server's: a
/// write cannot change them. Deletion fields can only be set by delete.
pub(super) fn keep_identity(kind: ResourceKind, old: &Value, new: &mut Value) {
    fill_type(kind, new);
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let meta = metadata_mut(new);
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
    ] {
        match old_meta.get(field) {
            Some(v) => meta.insert(field.to_string(), v.clone()),
            None => meta.remove(field),
        };
    }
    // An empty finalizer list and a missing one are the same; keep comparisons stable.
    if meta
        .get("finalizers")
        .is_some_and(|f| f.as_array().is_some_and(Vec::is_empty) || f.is_null())
        && old_meta.get("finalizers").is_none()
    {
        meta.remove("finalizers");
    }
}

/// Whether anything outside metadata and status changed (what bumps generation).
pub(super) fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("metadata");
        m.remove("status");
        m
    };
    strip(old) != strip(new)
}

pub(super) fn finalizers(obj: &Value) -> usize {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

pub(super) fn finalizers_just_cleared(old: &Value, new: &Value) -> bool {
    new.pointer("/metadata/deletionTimestamp").is_some()
        && finalizers(old) > 0
        && finalizers(new) == 0
}

pub(super) fn owned_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
        })
}

/// The object marked for graceful deletion, or None when it must be removed right away.
/// Returning `old` unchanged means "already terminating, nothing to do".
pub(super) fn graceful_deletion(
    kind: ResourceKind,
    old: &Value,
    opts: &DeleteOptions,
) -> Option<Value> {
    let terminating = old.pointer("/metadata/deletionTimestamp").is_some();
    let has_finalizers = finalizers(old) > 0;
    let mut marked = old.clone();
    if kind == ResourceKind::Namespace {
        if !terminating {
            mark_deleting(&mut marked, 0, 0);
            if let Some(status) = marked.get_mut("status").and_then(Value::as_object_mut) {
                status.insert("phase".into(), json!("Terminating"));
            }
        }
        return Some(marked);
    }
    if kind == ResourceKind::Pod && pod_needs_kubelet(old) {
        let grace = pod_grace_seconds(old, opts);
        if grace == 0 && !has_finalizers {
            return None;
        }
        let current = old
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64);
        // Like the API server, a second delete may only shorten the grace period.
        if current.is_none_or(|c| grace < c) {
            mark_deleting(&mut marked, grace, grace);
        }
        return Some(marked);
    }
    if has_finalizers {
        if !terminating {
            mark_deleting(&mut marked, 0, 0);
        }
        return Some(marked);
    }
    None
}

/// A pod bound to a node whose containers may still run: the kubelet must confirm deletion.
pub(super) fn pod_needs_kubelet(pod: &Value) -> bool {
    let bound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    bound && !finished
}

pub(super) fn pod_grace_seconds(pod: &Value, opts: &DeleteOptions) -> i64 {
    let default = pod
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    // The API server turns a negative grace period into 1 for pods.
    match opts.grace_period_seconds.unwrap_or(default) {
        g if g < 0 => 1,
        g => g,
    }
}

pub(super) fn mark_deleting(obj: &mut Value, grace: i64, in_seconds: i64) {
    let meta = metadata_mut(obj);
    meta.insert("deletionTimestamp".into(), json!(rfc3339_in(in_seconds)));
    meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
}
