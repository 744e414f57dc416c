//! Decoding a written object the way the API server does: into its Go type, which rejects
//! wrong field types (400 BadRequest, "cannot be handled as a ...") and drops fields the
//! type does not have. `fieldValidation` says what happens to those unknown fields:
//! `Strict` rejects the request ("strict decoding error: unknown field ..."), `Warn` (the
//! server's default) keeps going and answers with a `Warning` header per field, `Ignore`
//! drops them silently. Here the Go types are k8s-openapi's: an object is decoded into
//! the typed struct and encoded back; a non-null field of the request that does not come
//! back is unknown.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use crate::store::ResourceKind;

/// The `fieldValidation` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    /// Absent means `Warn`, as on a real server; anything else but the three names is a
    /// bad request.
    pub fn parse(raw: Option<&str>) -> Result<FieldValidation, ApiError> {
        match raw {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::BadRequest(format!(
                "fieldValidation parameter unsupported: {other:?} (must be Ignore, Warn or Strict)"
            ))),
        }
    }
}

/// Type-checks `obj` as `kind`, removes the fields its type does not have, and returns
/// the warnings to send (one per unknown field, under `Warn`).
pub fn decode(
    kind: ResourceKind,
    obj: &mut Value,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let known = roundtrip(kind, obj)?;
    let mut unknown = Vec::new();
    unknown_fields(obj, &known, "", &mut unknown);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let messages: Vec<String> = unknown
        .iter()
        .map(|path| format!("unknown field \"{path}\""))
        .collect();
    if mode == FieldValidation::Strict {
        return Err(ApiError::BadRequest(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            kind.kind(),
            kind.version(),
            kind.kind(),
            messages.join(", ")
        )));
    }
    for path in &unknown {
        remove_path(obj, path);
    }
    Ok(match mode {
        FieldValidation::Warn => messages,
        _ => Vec::new(),
    })
}

/// The object as its type encodes it, or the decoding error as a 400.
fn roundtrip(kind: ResourceKind, obj: &Value) -> Result<Value, ApiError> {
    use k8s_openapi::api::{apps, core, discovery, storage};
    match kind {
        ResourceKind::Namespace => typed::<core::v1::Namespace>(kind, obj),
        ResourceKind::Service => typed::<core::v1::Service>(kind, obj),
        ResourceKind::StatefulSet => typed::<apps::v1::StatefulSet>(kind, obj),
        ResourceKind::Pod => typed::<core::v1::Pod>(kind, obj),
        ResourceKind::PersistentVolumeClaim => typed::<core::v1::PersistentVolumeClaim>(kind, obj),
        ResourceKind::PersistentVolume => typed::<core::v1::PersistentVolume>(kind, obj),
        ResourceKind::Node => typed::<core::v1::Node>(kind, obj),
        ResourceKind::EndpointSlice => typed::<discovery::v1::EndpointSlice>(kind, obj),
        ResourceKind::Event => typed::<core::v1::Event>(kind, obj),
        ResourceKind::StorageClass => typed::<storage::v1::StorageClass>(kind, obj),
        ResourceKind::ControllerRevision => typed::<apps::v1::ControllerRevision>(kind, obj),
    }
}

fn typed<T: DeserializeOwned + Serialize>(
    kind: ResourceKind,
    obj: &Value,
) -> Result<Value, ApiError> {
    let cannot = |e: &dyn std::fmt::Display| {
        ApiError::BadRequest(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            kind.kind(),
            kind.version(),
            kind.kind()
        ))
    };
    let decoded: T = serde_path_to_error::deserialize(obj).map_err(|e| cannot(&e))?;
    serde_json::to_value(decoded).map_err(|e| cannot(&e))
}

/// Dotted paths (array elements as `[i]`) of non-null fields of `sent` missing from
/// `known`.
fn unknown_fields(sent: &Value, known: &Value, at: &str, out: &mut Vec<String>) {
    match (sent, known) {
        (Value::Object(s), Value::Object(k)) => {
            for (key, value) in s {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match k.get(key) {
                    Some(kv) => unknown_fields(value, kv, &path, out),
                    None if !value.is_null() && !is_empty_container(value) => out.push(path),
                    None => {}
                }
            }
        }
        (Value::Array(s), Value::Array(k)) => {
            for (i, (sv, kv)) in s.iter().zip(k).enumerate() {
                unknown_fields(sv, kv, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `{}` and `[]` for an optional field come back absent: not unknown.
fn is_empty_container(value: &Value) -> bool {
    matches!(value, Value::Object(m) if m.is_empty())
        || matches!(value, Value::Array(a) if a.is_empty())
}

/// Removes the field at a dotted path made by [`unknown_fields`].
fn remove_path(obj: &mut Value, path: &str) {
    let mut steps: Vec<String> = Vec::new();
    for part in path.split('.') {
        let (key, indexes) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        steps.push(key.to_string());
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            steps.push(index.trim_end_matches(']').to_string());
        }
    }
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut node = obj;
    for step in parents {
        let next = match node {
            Value::Object(m) => m.get_mut(step.as_str()),
            Value::Array(a) => step.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Value::Object(m) = node {
        m.remove(last.as_str());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sts(spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "mysql"}, "spec": spec})
    }

    fn spec() -> Value {
        json!({"serviceName": "mysql", "replicas": 3, "selector": {"matchLabels": {"app": "mysql"}},
            "template": {"metadata": {"labels": {"app": "mysql"}},
                "spec": {"containers": [{"name": "mysql", "image": "mysql:5.7"}]}}})
    }

    #[test]
    fn a_known_object_passes_unchanged() {
        let mut obj = sts(spec());
        let before = obj.clone();
        let warnings = decode(ResourceKind::StatefulSet, &mut obj, FieldValidation::Strict);
        assert_eq!(warnings.ok(), Some(Vec::new()));
        assert_eq!(obj, before);
    }

    /// The error a StatefulSet with `spec` gets, or "" when it is accepted.
    fn refusal(spec: Value, mode: FieldValidation) -> String {
        decode(ResourceKind::StatefulSet, &mut sts(spec), mode)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn a_wrong_type_is_a_bad_request_naming_the_field() {
        let mut s = spec();
        s["replicas"] = json!("three");
        let err = refusal(s, FieldValidation::Ignore);
        assert!(
            err.contains("StatefulSet in version \"v1\" cannot be handled as a StatefulSet")
                && err.contains("spec.replicas"),
            "{err}"
        );
    }

    #[test]
    fn strict_rejects_unknown_fields_by_path() {
        let mut s = spec();
        s["replica"] = json!(3);
        s["template"]["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always");
        let err = refusal(s, FieldValidation::Strict);
        assert!(
            err.contains("strict decoding error: unknown field \"spec.replica\""),
            "{err}"
        );
        assert!(
            err.contains("unknown field \"spec.template.spec.containers[0].imagePullPolicyy\""),
            "{err}"
        );
    }

    #[test]
    fn warn_drops_unknown_fields_and_says_so() {
        let mut s = spec();
        s["replica"] = json!(3);
        let mut obj = sts(s);
        let warnings = decode(ResourceKind::StatefulSet, &mut obj, FieldValidation::Warn);
        assert_eq!(
            warnings.ok(),
            Some(vec!["unknown field \"spec.replica\"".to_string()])
        );
        assert_eq!(
            obj,
            sts(spec()),
            "the unknown field is dropped, the rest kept"
        );
    }

    #[test]
    fn ignore_drops_unknown_fields_silently() {
        let mut s = spec();
        s["template"]["spec"]["containers"][0]["x"] = json!(1);
        let mut obj = sts(s);
        let warnings = decode(ResourceKind::StatefulSet, &mut obj, FieldValidation::Ignore);
        assert_eq!(warnings.ok(), Some(Vec::new()));
        assert_eq!(obj, sts(spec()));
    }

    #[test]
    fn nulls_and_empty_optionals_are_not_unknown() {
        let mut obj = sts(spec());
        obj["metadata"]["creationTimestamp"] = Value::Null;
        obj["status"] = json!({});
        let warnings = decode(ResourceKind::StatefulSet, &mut obj, FieldValidation::Strict);
        assert_eq!(warnings.ok(), Some(Vec::new()));
    }

    #[test]
    fn field_validation_values() {
        assert_eq!(
            FieldValidation::parse(None).ok(),
            Some(FieldValidation::Warn)
        );
        assert_eq!(
            FieldValidation::parse(Some("Strict")).ok(),
            Some(FieldValidation::Strict)
        );
        assert!(FieldValidation::parse(Some("strict")).is_err());
    }
}
