//! The four PATCH flavours: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic
//! merge patch (lists of objects merged by their Kubernetes merge key) and server-side
//! apply (approximated as a strategic merge of the applied configuration).

use serde_json::{Map, Value};

use super::error::ApiError;

/// A PATCH body's type, from its Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub const ACCEPTED: &'static str = "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml";

    pub fn from_content_type(content_type: &str) -> Option<PatchKind> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Parses a patch body; apply patches are YAML (JSON is YAML too).
pub fn parse_body(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Apply => serde_yaml::from_slice::<Value>(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}"))),
        _ => serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}"))),
    }
}

/// Applies `patch` to a copy of `current`.
pub fn apply(kind: PatchKind, current: &Value, patch: &Value) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match kind {
        PatchKind::Merge => {
            require_object(patch)?;
            json_patch::merge(&mut doc, patch);
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::BadRequest(format!("the JSON patch could not be applied: {e}"))
            })?;
        }
        PatchKind::Strategic | PatchKind::Apply => {
            require_object(patch)?;
            strategic_merge(&mut doc, patch);
        }
    }
    Ok(doc)
}

fn require_object(patch: &Value) -> Result<(), ApiError> {
    if patch.is_object() {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "the patch must be a JSON object".to_string(),
        ))
    }
}

/// How a list field merges, by field name (the sim has no per-type schema, and the names
/// it serves are unambiguous enough).
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "readinessGates" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "hostAliases" => Some("ip"),
        "ports" => {
            // Container ports merge by containerPort, Service ports by port.
            let container = items.iter().any(|i| i.get("containerPort").is_some());
            Some(if container { "containerPort" } else { "port" })
        }
        _ => None,
    }
}

/// Primitive lists with the `merge` strategy (union instead of replace).
fn merges_primitives(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge of `patch` into `doc`.
pub fn strategic_merge(doc: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replacement = patch_map.clone();
            strip_directives(&mut replacement);
            *doc = Value::Object(replacement);
            return;
        }
        Some("delete") => {
            *doc = Value::Null;
            return;
        }
        _ => {}
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let retain: Option<Vec<String>> =
        patch_map
            .get("$retainKeys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            });
    let Some(target) = doc.as_object_mut() else {
        return;
    };
    for (key, value) in patch_map {
        if let Some(list_field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            delete_from_primitive_list(target, list_field, value);
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        merge_field(target, key, value);
    }
    if let Some(retain) = retain {
        target.retain(|k, _| retain.contains(k));
    }
}

fn merge_field(target: &mut Map<String, Value>, key: &str, value: &Value) {
    match value {
        Value::Null => {
            target.remove(key);
        }
        Value::Object(_) => {
            let slot = target.entry(key.to_string()).or_insert(Value::Null);
            strategic_merge(slot, value);
            if slot.is_null() {
                target.remove(key);
            }
        }
        Value::Array(items) => {
            let merged = match target.get(key) {
                Some(Value::Array(existing)) => merge_list(key, existing, items),
                _ => merge_list(key, &[], items),
            };
            target.insert(key.to_string(), Value::Array(merged));
        }
        scalar => {
            target.insert(key.to_string(), scalar.clone());
        }
    }
}

fn merge_list(field: &str, existing: &[Value], patch: &[Value]) -> Vec<Value> {
    if merges_primitives(field) {
        let mut out = existing.to_vec();
        for item in patch {
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        return out;
    }
    // `{"$patch": "replace"}` as a list item: the rest of the patch list replaces the list.
    let replace = patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    if replace {
        return patch
            .iter()
            .filter(|i| !is_directive_item(i))
            .map(clean_item)
            .collect();
    }
    let all_objects = patch.iter().all(Value::is_object);
    let Some(key) = merge_key(field, patch).filter(|_| all_objects) else {
        // Atomic list: the patch replaces it (directive-only items dropped).
        return patch
            .iter()
            .filter(|i| !is_directive_item(i))
            .map(clean_item)
            .collect();
    };
    let mut out: Vec<Value> = existing.to_vec();
    for item in patch {
        let id = item.get(key);
        let position = id.and_then(|id| out.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut out[i], item),
            (None, false) => out.push(clean_item(item)),
        }
    }
    out
}

fn is_directive_item(item: &Value) -> bool {
    item.get("$patch").is_some()
}

fn clean_item(item: &Value) -> Value {
    let mut item = item.clone();
    if let Some(map) = item.as_object_mut() {
        strip_directives(map);
    }
    item
}

fn strip_directives(map: &mut Map<String, Value>) {
    map.retain(|k, _| !k.starts_with('$'));
    for value in map.values_mut() {
        match value {
            Value::Object(inner) => strip_directives(inner),
            Value::Array(items) => {
                for item in items.iter_mut() {
                    if let Value::Object(inner) = item {
                        strip_directives(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

fn delete_from_primitive_list(target: &mut Map<String, Value>, field: &str, values: &Value) {
    let Some(remove) = values.as_array() else {
        return;
    };
    if let Some(Value::Array(items)) = target.get_mut(field) {
        items.retain(|i| !remove.contains(i));
    }
}

/// `fieldsV1` for a managedFields entry: the set of fields present in `applied`.
pub fn fields_v1(applied: &Value) -> Value {
    fields_of(applied, "")
}

fn fields_of(value: &Value, field: &str) -> Value {
    let mut out = Map::new();
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k.starts_with('$')
                    || (field.is_empty() && matches!(k.as_str(), "apiVersion" | "kind"))
                {
                    continue;
                }
                out.insert(format!("f:{k}"), fields_of(v, k));
            }
        }
        Value::Array(items) => {
            if let Some(key) = merge_key(field, items) {
                for item in items {
                    let Some(id) = item.get(key) else { continue };
                    let mut entry = fields_of(item, field);
                    if let Some(m) = entry.as_object_mut() {
                        m.insert(".".into(), Value::Object(Map::new()));
                    }
                    let mut key_obj = Map::new();
                    key_obj.insert(key.to_string(), id.clone());
                    out.insert(format!("k:{}", Value::Object(key_obj)), entry);
                }
            }
        }
        _ => {}
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sts() -> Value {
        json!({
            "metadata": {"name": "mysql", "labels": {"app": "mysql"}, "finalizers": ["a"]},
            "spec": {
                "replicas": 3,
                "template": {"spec": {"containers": [
                    {"name": "mysql", "image": "mysql:5.6", "ports": [{"containerPort": 3306, "name": "mysql"}],
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                    {"name": "sidecar", "image": "busybox"}
                ]}}
            }
        })
    }

    #[test]
    fn merge_patch_replaces_lists_and_deletes_nulls() {
        let patch =
            json!({"metadata": {"labels": {"app": null, "x": "y"}}, "spec": {"replicas": 5}});
        let out = apply(PatchKind::Merge, &sts(), &patch).expect("merge");
        assert_eq!(out["metadata"]["labels"], json!({"x": "y"}));
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][1]["name"],
            "sidecar"
        );
    }

    #[test]
    fn strategic_patch_merges_containers_by_name() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "mysql", "image": "mysql:8", "env": [{"name": "B", "value": "3"}]}
        ]}}}});
        let out = apply(PatchKind::Strategic, &sts(), &patch).expect("strategic");
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().map(Vec::len), Some(2), "sidecar kept");
        assert_eq!(containers[0]["image"], "mysql:8");
        assert_eq!(
            containers[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
        );
        assert_eq!(containers[0]["ports"][0]["containerPort"], 3306);
    }

    #[test]
    fn strategic_patch_honours_delete_and_drops_directives() {
        let patch = json!({
            "$setElementOrder/finalizers": ["a"],
            "metadata": {"finalizers": ["b"]},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "mysql"}],
                "containers": [{"name": "sidecar", "$patch": "delete"}]
            }}}
        });
        let out = apply(PatchKind::Strategic, &sts(), &patch).expect("strategic");
        let containers = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("list");
        assert_eq!(containers.len(), 1);
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["a", "b"]),
            "finalizers union"
        );
        assert!(out.get("$setElementOrder/finalizers").is_none());
        assert!(
            out["spec"]["template"]["spec"]
                .get("$setElementOrder/containers")
                .is_none()
        );
    }

    #[test]
    fn strategic_list_replace_directive_replaces_the_list() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "replace"}, {"name": "only", "image": "x"}
        ]}}}});
        let out = apply(PatchKind::Strategic, &sts(), &patch).expect("strategic");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "x"}])
        );
    }

    #[test]
    fn strategic_patch_replace_directive_and_retain_keys() {
        let patch =
            json!({"spec": {"template": {"$patch": "replace", "spec": {"containers": []}}}});
        let out = apply(PatchKind::Strategic, &sts(), &patch).expect("replace");
        assert_eq!(out["spec"]["template"], json!({"spec": {"containers": []}}));
        let patch = json!({"spec": {"$retainKeys": ["template"], "replicas": 7}});
        let out = apply(PatchKind::Strategic, &sts(), &patch).expect("retain");
        assert!(out["spec"].get("replicas").is_none());
    }

    #[test]
    fn json_patch_applies_and_failed_test_is_a_bad_request() {
        let patch = json!([{"op": "replace", "path": "/spec/replicas", "value": 1}]);
        let out = apply(PatchKind::Json, &sts(), &patch).expect("json patch");
        assert_eq!(out["spec"]["replicas"], 1);
        let failing = json!([{"op": "test", "path": "/spec/replicas", "value": 9}]);
        assert_eq!(
            apply(PatchKind::Json, &sts(), &failing)
                .expect_err("test fails")
                .code(),
            400
        );
        let garbage = json!({"op": "replace"});
        assert_eq!(
            apply(PatchKind::Json, &sts(), &garbage)
                .expect_err("not a list")
                .code(),
            400
        );
    }

    #[test]
    fn non_object_merge_patch_is_rejected() {
        assert_eq!(
            apply(PatchKind::Merge, &sts(), &json!([1]))
                .expect_err("list")
                .code(),
            400
        );
    }

    #[test]
    fn apply_body_parses_yaml() {
        let body = b"apiVersion: v1\nkind: Service\nmetadata:\n  name: mysql\n";
        let value = parse_body(PatchKind::Apply, body).expect("yaml");
        assert_eq!(value["metadata"]["name"], "mysql");
        assert!(parse_body(PatchKind::Apply, b"a: [").is_err());
        assert!(parse_body(PatchKind::Merge, b"{").is_err());
    }

    #[test]
    fn fields_v1_uses_merge_keys() {
        let fields = fields_v1(&json!({"apiVersion": "v1", "spec": {"ports": [{"port": 3306}]}}));
        assert_eq!(
            fields,
            json!({"f:spec": {"f:ports": {"k:{\"port\":3306}": {".": {}, "f:port": {}}}}})
        );
    }
}
