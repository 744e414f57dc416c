//! Small accessors over API objects kept as `serde_json::Value`.
//!
//! Controllers read raw objects (what the store holds) instead of converting every object
//! to a typed struct each tick: a round trip through typed structs could drop fields the
//! sim does not know about, and a write-back must not lose what a client stored.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

pub fn str_at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

pub fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name").unwrap_or_default()
}

pub fn namespace(obj: &Value) -> &str {
    str_at(obj, "/metadata/namespace").unwrap_or_default()
}

pub fn uid(obj: &Value) -> &str {
    str_at(obj, "/metadata/uid").unwrap_or_default()
}

pub fn is_terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// `metadata.labels` (or another string map at `pointer`) as a sorted map.
pub fn string_map(obj: &Value, pointer: &str) -> BTreeMap<String, String> {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj, "/metadata/labels")
}

pub fn array<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub fn finalizers(obj: &Value) -> Vec<&str> {
    array(obj, "/metadata/finalizers")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

pub fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
    finalizers(obj).contains(&finalizer)
}

/// A JSON-pointer token with `~1` and `~0` decoded.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Sets `value` at a JSON pointer (`~1` escapes `/`), creating intermediate objects.
/// A numeric token indexes into an existing array element.
pub fn set_at(obj: &mut Value, pointer: &str, value: Value) {
    let mut cur = obj;
    let mut keys = pointer.split('/').skip(1).map(unescape).peekable();
    while let Some(key) = keys.next() {
        let last = keys.peek().is_none();
        let index = cur
            .as_array()
            .and_then(|items| key.parse::<usize>().ok().filter(|i| *i < items.len()));
        if let Some(i) = index {
            if last {
                cur[i] = value;
                return;
            }
            cur = &mut cur[i];
            continue;
        }
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if last {
            map.insert(key, value);
            return;
        }
        cur = map.entry(key).or_insert_with(|| json!({}));
    }
}

/// Removes the last key of `pointer` if present.
pub fn remove_at(obj: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    let parent = if parent.is_empty() {
        Some(obj)
    } else {
        obj.pointer_mut(parent)
    };
    if let Some(map) = parent.and_then(Value::as_object_mut) {
        map.remove(&unescape(key));
    }
}

/// The owner references of `obj`.
pub fn owner_refs(obj: &Value) -> &[Value] {
    array(obj, "/metadata/ownerReferences")
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    owner_refs(obj)
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

pub fn controlled_by(obj: &Value, owner_uid: &str) -> bool {
    controller_ref(obj)
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
        == Some(owner_uid)
}

pub fn has_owner_uid(obj: &Value, owner_uid: &str) -> bool {
    owner_refs(obj)
        .iter()
        .any(|r| r.get("uid").and_then(Value::as_str) == Some(owner_uid))
}

/// An owner reference pointing at `owner` (which carries apiVersion and kind).
pub fn owner_reference(owner: &Value, controller: bool) -> Value {
    json!({
        "apiVersion": str_at(owner, "/apiVersion").unwrap_or("v1"),
        "kind": str_at(owner, "/kind").unwrap_or_default(),
        "name": name(owner),
        "uid": uid(owner),
        "controller": controller,
        "blockOwnerDeletion": true,
    })
}

/// Whether `labels` satisfy a `LabelSelector` (matchLabels and matchExpressions).
/// An empty or missing selector matches nothing, as for workload controllers.
pub fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = string_map(selector, "/matchLabels");
    let expressions = array(selector, "/matchExpressions");
    if match_labels.is_empty() && expressions.is_empty() {
        return false;
    }
    let labels_ok = match_labels.iter().all(|(k, v)| labels.get(k) == Some(v));
    labels_ok && expressions.iter().all(|e| expression_matches(e, labels))
}

fn expression_matches(expr: &Value, labels: &BTreeMap<String, String>) -> bool {
    let key = str_at(expr, "/key").unwrap_or_default();
    let values: Vec<&str> = array(expr, "/values")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let actual = labels.get(key).map(String::as_str);
    match str_at(expr, "/operator").unwrap_or_default() {
        "In" => actual.is_some_and(|a| values.contains(&a)),
        "NotIn" => actual.is_none_or(|a| !values.contains(&a)),
        "Exists" => actual.is_some(),
        "DoesNotExist" => actual.is_none(),
        _ => false,
    }
}

/// Whether a Service-style selector (plain map) matches; an empty map matches nothing.
pub fn map_selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub fn pod_phase(pod: &Value) -> &str {
    str_at(pod, "/status/phase").unwrap_or_default()
}

/// A condition of `status.conditions` by type.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    array(obj, "/status/conditions")
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

pub fn condition_status<'a>(obj: &'a Value, type_: &str) -> Option<&'a str> {
    condition(obj, type_)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
}

pub fn pod_ready(pod: &Value) -> bool {
    condition_status(pod, "Ready") == Some("True")
}

/// Upstream `isRunningAndReady`: phase Running and the Ready condition True.
pub fn running_and_ready(pod: &Value) -> bool {
    pod_phase(pod) == "Running" && pod_ready(pod)
}

/// Upstream `isHealthy`: running, ready and not terminating.
pub fn healthy(pod: &Value) -> bool {
    running_and_ready(pod) && !is_terminating(pod)
}

pub fn node_name(pod: &Value) -> Option<&str> {
    str_at(pod, "/spec/nodeName").filter(|n| !n.is_empty())
}

/// Names of the PVCs a pod's volumes refer to, with the volume names.
pub fn pod_claims(pod: &Value) -> Vec<(String, String)> {
    array(pod, "/spec/volumes")
        .iter()
        .filter_map(|v| {
            let claim = str_at(v, "/persistentVolumeClaim/claimName")?;
            Some((
                str_at(v, "/name").unwrap_or_default().to_string(),
                claim.to_string(),
            ))
        })
        .collect()
}

pub fn pod_uses_claim(pod: &Value, claim: &str) -> bool {
    pod_claims(pod).iter().any(|(_, c)| c == claim)
}

/// Upserts a condition in `status.conditions`, keeping lastTransitionTime when the status
/// does not change. Returns the updated object.
pub fn with_condition(
    obj: &Value,
    type_: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<&str>,
    now: &str,
) -> Value {
    let mut obj = obj.clone();
    let mut conditions: Vec<Value> = array(&obj, "/status/conditions").to_vec();
    let previous = conditions
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some(type_));
    let transition = previous
        .and_then(|i| conditions.get(i))
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    let mut cond = Map::new();
    cond.insert("type".into(), json!(type_));
    cond.insert("status".into(), json!(status));
    cond.insert("lastProbeTime".into(), Value::Null);
    cond.insert("lastTransitionTime".into(), transition);
    if let Some(r) = reason {
        cond.insert("reason".into(), json!(r));
    }
    if let Some(m) = message {
        cond.insert("message".into(), json!(m));
    }
    match previous {
        Some(i) => conditions[i] = Value::Object(cond),
        None => conditions.push(Value::Object(cond)),
    }
    set_at(&mut obj, "/status/conditions", Value::Array(conditions));
    obj
}

/// Whether a toleration list tolerates a taint (upstream `ToleratesTaint`).
pub fn tolerates(tolerations: &[Value], taint: &Value) -> bool {
    let key = str_at(taint, "/key").unwrap_or_default();
    let value = str_at(taint, "/value").unwrap_or_default();
    let effect = str_at(taint, "/effect").unwrap_or_default();
    tolerations.iter().any(|t| {
        let t_effect = str_at(t, "/effect").unwrap_or_default();
        let t_key = str_at(t, "/key").unwrap_or_default();
        let effect_ok = t_effect.is_empty() || t_effect == effect;
        let key_ok = t_key.is_empty() || t_key == key;
        let value_ok = match str_at(t, "/operator").unwrap_or("Equal") {
            "Exists" => true,
            _ => str_at(t, "/value").unwrap_or_default() == value,
        };
        effect_ok
            && key_ok
            && value_ok
            && !(t_key.is_empty() && str_at(t, "/operator") != Some("Exists"))
    })
}

/// Parses a Kubernetes timestamp.
pub fn timestamp(obj: &Value, pointer: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    str_at(obj, pointer)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_match_labels_and_expressions() {
        let sel = json!({"matchLabels": {"app": "mysql"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]});
        assert!(selector_matches(
            &sel,
            &labels_of(&[("app", "mysql"), ("tier", "db")])
        ));
        assert!(!selector_matches(&sel, &labels_of(&[("app", "mysql")])));
        assert!(!selector_matches(
            &sel,
            &labels_of(&[("app", "web"), ("tier", "db")])
        ));
    }

    #[test]
    fn empty_selector_matches_nothing() {
        assert!(!selector_matches(&json!({}), &labels_of(&[("app", "x")])));
    }

    #[test]
    fn set_at_decodes_escaped_slashes() {
        let mut v = json!({});
        set_at(
            &mut v,
            "/metadata/annotations/kube-sim~1log-path",
            json!("x"),
        );
        assert_eq!(
            str_at(&v, "/metadata/annotations/kube-sim~1log-path"),
            Some("x")
        );
        remove_at(&mut v, "/metadata/annotations/kube-sim~1log-path");
        assert_eq!(v, json!({"metadata": {"annotations": {}}}));
    }

    #[test]
    fn set_at_indexes_existing_arrays() {
        let mut v = json!({"containers": [{"image": "a"}]});
        set_at(&mut v, "/containers/0/image", json!("b"));
        assert_eq!(v, json!({"containers": [{"image": "b"}]}));
    }

    #[test]
    fn set_at_creates_intermediate_objects() {
        let mut v = json!({});
        set_at(&mut v, "/metadata/annotations/a", json!("b"));
        assert_eq!(v, json!({"metadata": {"annotations": {"a": "b"}}}));
    }

    #[test]
    fn condition_transition_time_kept_when_status_unchanged() {
        let pod = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "t0"}]}});
        let same = with_condition(&pod, "Ready", "True", None, None, "t1");
        assert_eq!(
            str_at(&same, "/status/conditions/0/lastTransitionTime"),
            Some("t0")
        );
        let flipped = with_condition(&pod, "Ready", "False", None, None, "t1");
        assert_eq!(
            str_at(&flipped, "/status/conditions/0/lastTransitionTime"),
            Some("t1")
        );
    }

    #[test]
    fn toleration_rules() {
        let taint = json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"});
        assert!(!tolerates(&[], &taint));
        let exists = json!({"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"});
        assert!(tolerates(&[exists], &taint));
        let everything = json!({"operator": "Exists"});
        assert!(tolerates(&[everything], &taint));
        let other = json!({"key": "x", "operator": "Exists", "effect": "NoSchedule"});
        assert!(!tolerates(&[other], &taint));
    }
}
