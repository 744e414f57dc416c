//! Per-kind rules the API server applies to every write: type and namespace checks,
//! defaulting, status reset on create, validation and immutable fields.

use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::store::{ResourceKind, Store};

/// Fills apiVersion/kind when absent; a mismatch with the request path is a 400.
pub fn check_type(kind: ResourceKind, obj: &mut Value) -> Result<(), ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::BadRequest(format!(
            "the body of the request must be a JSON object of kind {}",
            kind.kind()
        )));
    };
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let obj_kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    if !api_version.is_empty() && api_version != kind.api_version() {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            kind.api_version()
        )));
    }
    if !obj_kind.is_empty() && obj_kind != kind.kind() {
        return Err(ApiError::BadRequest(format!(
            "the kind in the data ({obj_kind}) does not match the expected kind ({})",
            kind.kind()
        )));
    }
    map.insert("apiVersion".into(), json!(kind.api_version()));
    map.insert("kind".into(), json!(kind.kind()));
    check_metadata_shape(map)
}

/// Decoding errors a typed server would hit: metadata fields of the wrong JSON type.
fn check_metadata_shape(map: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(meta) = map.get("metadata") else {
        return Ok(());
    };
    let Some(meta) = meta.as_object() else {
        return Err(decode_error("metadata", "object"));
    };
    for field in [
        "name",
        "namespace",
        "generateName",
        "resourceVersion",
        "uid",
    ] {
        if meta
            .get(field)
            .is_some_and(|v| !v.is_string() && !v.is_null())
        {
            return Err(decode_error(&format!("metadata.{field}"), "string"));
        }
    }
    for field in ["labels", "annotations"] {
        match meta.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.values().all(Value::is_string) => {}
            Some(_) => return Err(decode_error(&format!("metadata.{field}"), "map of strings")),
        }
    }
    for field in ["finalizers", "ownerReferences"] {
        if meta
            .get(field)
            .is_some_and(|v| !v.is_array() && !v.is_null())
        {
            return Err(decode_error(&format!("metadata.{field}"), "list"));
        }
    }
    for field in ["spec", "status"] {
        if map
            .get(field)
            .is_some_and(|v| !v.is_object() && !v.is_null())
        {
            return Err(decode_error(field, "object"));
        }
    }
    Ok(())
}

fn decode_error(field: &str, expected: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "error decoding request body: {field} must be a JSON {expected}"
    ))
}

/// The object's namespace must be empty or match the request path.
pub fn check_namespace(
    kind: ResourceKind,
    path_ns: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let obj_ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    match (kind.namespaced(), path_ns, obj_ns) {
        (true, Some(path), Some(body)) if path != body => Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .to_string(),
        )),
        (true, Some(path), _) => {
            set_path(obj, &["metadata", "namespace"], json!(path));
            Ok(())
        }
        (true, None, _) => Err(ApiError::BadRequest(format!(
            "{} must be created in a namespace",
            kind.plural()
        ))),
        (false, _, _) => {
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("namespace");
            }
            Ok(())
        }
    }
}

/// Status a real server resets on create, plus the create-only admission defaults.
pub fn prepare_create(kind: ResourceKind, obj: &mut Value, store: &Store) {
    let status = match kind {
        ResourceKind::Pod => Some(json!({"phase": "Pending", "qosClass": "BestEffort"})),
        ResourceKind::PersistentVolumeClaim => Some(json!({"phase": "Pending"})),
        ResourceKind::PersistentVolume => Some(json!({"phase": "Pending"})),
        ResourceKind::StatefulSet => Some(json!({"replicas": 0, "availableReplicas": 0})),
        ResourceKind::Service => Some(json!({"loadBalancer": {}})),
        _ => None,
    };
    if let (Some(status), Some(map)) = (status, obj.as_object_mut()) {
        map.insert("status".into(), status);
    }
    match kind {
        ResourceKind::PersistentVolumeClaim => default_storage_class(obj, store),
        ResourceKind::Service => allocate_cluster_ip(obj),
        _ => {}
    }
}

/// Defaulting run on every write (create, replace, patch), like decoding on a real server.
pub fn apply_defaults(kind: ResourceKind, obj: &mut Value) {
    match kind {
        ResourceKind::StatefulSet => default_statefulset(obj),
        ResourceKind::Pod => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        ResourceKind::Service => default_service(obj),
        ResourceKind::PersistentVolumeClaim => {
            if let Some(spec) = obj.get_mut("spec") {
                default_if_missing(spec, "volumeMode", json!("Filesystem"));
            }
        }
        _ => {}
    }
}

fn default_statefulset(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    default_if_missing(spec, "replicas", json!(1));
    default_if_missing(spec, "podManagementPolicy", json!("OrderedReady"));
    default_if_missing(
        spec,
        "updateStrategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    );
    default_if_missing(spec, "revisionHistoryLimit", json!(10));
    default_if_missing(
        spec,
        "persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    if let Some(pod_spec) = spec.pointer_mut("/template/spec") {
        default_pod_spec(pod_spec);
    }
    if let Some(Value::Array(templates)) = spec.get_mut("volumeClaimTemplates") {
        for template in templates {
            default_if_missing(template, "apiVersion", json!("v1"));
            default_if_missing(template, "kind", json!("PersistentVolumeClaim"));
            if let Some(pvc_spec) = template.get_mut("spec") {
                default_if_missing(pvc_spec, "volumeMode", json!("Filesystem"));
            }
            default_if_missing(template, "status", json!({"phase": "Pending"}));
        }
    }
}

fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default_if_missing(spec, "restartPolicy", json!("Always"));
    default_if_missing(spec, "terminationGracePeriodSeconds", json!(30));
    default_if_missing(spec, "dnsPolicy", json!("ClusterFirst"));
    default_if_missing(spec, "schedulerName", json!("default-scheduler"));
    default_if_missing(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            containers.iter_mut().for_each(default_container);
        }
    }
}

fn default_container(container: &mut Value) {
    if !container.is_object() {
        return;
    }
    let image = container.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = if image_is_latest(image) {
        "Always"
    } else {
        "IfNotPresent"
    };
    default_if_missing(container, "imagePullPolicy", json!(policy));
    default_if_missing(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    default_if_missing(container, "terminationMessagePolicy", json!("File"));
    default_if_missing(container, "resources", json!({}));
    if let Some(Value::Array(ports)) = container.get_mut("ports") {
        for port in ports {
            default_if_missing(port, "protocol", json!("TCP"));
        }
    }
}

fn image_is_latest(image: &str) -> bool {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains('@') {
        return false;
    }
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn default_service(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    default_if_missing(spec, "type", json!("ClusterIP"));
    default_if_missing(spec, "sessionAffinity", json!("None"));
    default_if_missing(spec, "internalTrafficPolicy", json!("Cluster"));
    default_if_missing(spec, "ipFamilies", json!(["IPv4"]));
    default_if_missing(spec, "ipFamilyPolicy", json!("SingleStack"));
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for port in ports {
            default_if_missing(port, "protocol", json!("TCP"));
            if let Some(number) = port.get("port").cloned() {
                default_if_missing(port, "targetPort", number);
            }
        }
    }
    if let Some(ip) = spec.get("clusterIP").cloned() {
        default_if_missing(spec, "clusterIPs", json!([ip]));
    }
}

fn allocate_cluster_ip(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    if spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        let (a, b) = (rand::random::<u8>(), rand::random::<u8>().max(1));
        let ip = format!("10.96.{a}.{b}");
        set_path(spec, &["clusterIP"], json!(ip));
        set_path(spec, &["clusterIPs"], json!([ip]));
    }
}

/// The DefaultStorageClass admission plugin: a PVC without a class gets the default one.
fn default_storage_class(obj: &mut Value, store: &Store) {
    let has_class = obj.pointer("/spec/storageClassName").is_some();
    if has_class || !obj.get("spec").is_some_and(Value::is_object) {
        return;
    }
    let default_class = store
        .list(ResourceKind::StorageClass, None)
        .into_iter()
        .find(|sc| {
            sc.pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class")
                .and_then(Value::as_str)
                == Some("true")
        })
        .and_then(|sc| {
            sc.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(String::from)
        });
    if let Some(name) = default_class {
        set_path(obj, &["spec", "storageClassName"], json!(name));
    }
}

/// Field validation a real server does with 422 Invalid, for the kinds the walkthrough uses.
pub fn validate(kind: ResourceKind, obj: &Value) -> Result<(), ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let invalid = |message: String| Err(ApiError::invalid(kind, name, message));
    match kind {
        ResourceKind::StatefulSet => validate_statefulset(obj).or_else(invalid),
        ResourceKind::Pod => match obj.get("spec") {
            Some(spec) => validate_pod_spec(spec, "spec").or_else(invalid),
            None => invalid("spec.containers: Required value".into()),
        },
        ResourceKind::Service => validate_service(obj).or_else(invalid),
        ResourceKind::Namespace if name.contains('.') => invalid(format!(
            "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"
        )),
        _ => Ok(()),
    }
}

fn validate_statefulset(obj: &Value) -> Result<(), String> {
    let spec = obj.get("spec").ok_or("spec: Required value")?;
    if let Some(replicas) = spec.get("replicas")
        && replicas.as_i64().is_none_or(|r| r < 0)
    {
        return Err(format!(
            "spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
        ));
    }
    let selector = spec
        .pointer("/selector/matchLabels")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
        .ok_or("spec.selector: Required value")?;
    let labels = spec
        .pointer("/template/metadata/labels")
        .and_then(Value::as_object);
    let selected = selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
    if !selected {
        return Err(
            "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`"
                .into(),
        );
    }
    if let Some(policy) = spec.get("podManagementPolicy").and_then(Value::as_str)
        && !matches!(policy, "OrderedReady" | "Parallel")
    {
        return Err(format!(
            "spec.podManagementPolicy: Unsupported value: \"{policy}\": supported values: \"OrderedReady\", \"Parallel\""
        ));
    }
    let template = spec
        .pointer("/template/spec")
        .ok_or("spec.template.spec.containers: Required value")?;
    validate_pod_spec(template, "spec.template.spec")
}

fn validate_pod_spec(spec: &Value, path: &str) -> Result<(), String> {
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or(format!("{path}.containers: Required value"))?;
    for (i, container) in containers.iter().enumerate() {
        for field in ["name", "image"] {
            if container
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(format!("{path}.containers[{i}].{field}: Required value"));
            }
        }
    }
    Ok(())
}

fn validate_service(obj: &Value) -> Result<(), String> {
    let Some(ports) = obj.pointer("/spec/ports").and_then(Value::as_array) else {
        return Ok(());
    };
    for (i, port) in ports.iter().enumerate() {
        let number = port.get("port").and_then(Value::as_i64);
        if number.is_none_or(|p| !(1..=65535).contains(&p)) {
            return Err(format!(
                "spec.ports[{i}].port: Invalid value: {}: must be between 1 and 65535, inclusive",
                port.get("port").cloned().unwrap_or(Value::Null)
            ));
        }
    }
    Ok(())
}

/// Updates that a real server forbids: StatefulSet spec fields other than the mutable ones,
/// pod spec fields other than images and a few others, Service clusterIP.
pub fn validate_update(kind: ResourceKind, old: &Value, new: &Value) -> Result<(), ApiError> {
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let message = match kind {
        ResourceKind::StatefulSet => {
            let mutable = [
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
                "revisionHistoryLimit",
            ];
            (!same_except(old.get("spec"), new.get("spec"), &mutable)).then_some(
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            )
        }
        ResourceKind::Pod => {
            let strip_images = |spec: Option<&Value>| {
                let mut spec = spec.cloned().unwrap_or(Value::Null);
                for list in ["containers", "initContainers"] {
                    if let Some(Value::Array(cs)) = spec.get_mut(list) {
                        for c in cs {
                            if let Some(m) = c.as_object_mut() {
                                m.remove("image");
                            }
                        }
                    }
                }
                spec
            };
            let (old_spec, new_spec) =
                (strip_images(old.get("spec")), strip_images(new.get("spec")));
            let mutable = [
                "activeDeadlineSeconds",
                "tolerations",
                "terminationGracePeriodSeconds",
            ];
            (!same_except(Some(&old_spec), Some(&new_spec), &mutable))
                .then_some("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) or `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
        }
        ResourceKind::Service => {
            let ip = |v: &Value| v.pointer("/spec/clusterIP").cloned();
            (ip(old) != ip(new) && ip(new).is_some())
                .then_some("spec.clusterIP: Invalid value: field is immutable")
        }
        _ => None,
    };
    match message {
        Some(m) => Err(ApiError::invalid(kind, name, m)),
        None => Ok(()),
    }
}

fn same_except(old: Option<&Value>, new: Option<&Value>, ignored: &[&str]) -> bool {
    let strip = |v: Option<&Value>| {
        let mut m = v.and_then(Value::as_object).cloned().unwrap_or_default();
        m.retain(|k, _| !ignored.contains(&k.as_str()));
        m
    };
    strip(old) == strip(new)
}

fn default_if_missing(obj: &mut Value, field: &str, value: Value) {
    if let Some(map) = obj.as_object_mut()
        && map.get(field).is_none_or(Value::is_null)
    {
        map.insert(field.to_string(), value);
    }
}

/// Sets `path` in `obj`, creating intermediate objects.
pub fn set_path(obj: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *obj = value;
        return;
    };
    let mut cursor = obj;
    for part in parents {
        if !cursor.is_object() {
            *cursor = json!({});
        }
        let Some(map) = cursor.as_object_mut() else {
            return;
        };
        cursor = map.entry(part.to_string()).or_insert_with(|| json!({}));
    }
    if !cursor.is_object() {
        *cursor = json!({});
    }
    if let Some(map) = cursor.as_object_mut() {
        map.insert(last.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documented_sts() -> Value {
        serde_yaml::from_str(include_str!("../../../manifests/mysql/statefulset.yaml"))
            .expect("manifest parses")
    }

    #[test]
    fn type_mismatch_is_a_bad_request() {
        let mut obj = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}});
        let err = check_type(ResourceKind::StatefulSet, &mut obj).expect_err("wrong type");
        assert_eq!(err.code(), 400);
        let mut wrong_kind = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        assert_eq!(
            check_type(ResourceKind::StatefulSet, &mut wrong_kind)
                .expect_err("kind")
                .code(),
            400
        );
        let mut labels = json!({"metadata": {"name": "x", "labels": {"a": 1}}});
        assert_eq!(
            check_type(ResourceKind::Pod, &mut labels)
                .expect_err("labels")
                .code(),
            400
        );
    }

    #[test]
    fn namespace_mismatch_is_a_bad_request_and_match_fills_it() {
        let mut obj = json!({"metadata": {"name": "x", "namespace": "a"}});
        assert_eq!(
            check_namespace(ResourceKind::Pod, Some("b"), &mut obj)
                .expect_err("mismatch")
                .code(),
            400
        );
        let mut obj = json!({"metadata": {"name": "x"}});
        check_namespace(ResourceKind::Pod, Some("b"), &mut obj).expect("fills");
        assert_eq!(obj["metadata"]["namespace"], "b");
    }

    #[test]
    fn documented_statefulset_validates_and_gets_upstream_defaults() {
        let mut sts = documented_sts();
        validate(ResourceKind::StatefulSet, &sts).expect("documented manifest is valid");
        apply_defaults(ResourceKind::StatefulSet, &mut sts);
        assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
            "Retain"
        );
        assert_eq!(
            sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            30
        );
        assert_eq!(
            sts["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
    }

    #[test]
    fn statefulset_selector_must_match_template() {
        let mut sts = documented_sts();
        sts["spec"]["selector"]["matchLabels"] = json!({"app": "other"});
        let err = validate(ResourceKind::StatefulSet, &sts).expect_err("mismatch");
        assert_eq!(err.code(), 422);
        assert!(err.to_string().contains("selector"), "{err}");
    }

    #[test]
    fn statefulset_update_of_immutable_field_is_forbidden() {
        let old = documented_sts();
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(5);
        validate_update(ResourceKind::StatefulSet, &old, &scaled).expect("replicas are mutable");
        let mut renamed = old.clone();
        renamed["spec"]["serviceName"] = json!("other");
        let err =
            validate_update(ResourceKind::StatefulSet, &old, &renamed).expect_err("immutable");
        assert_eq!(err.code(), 422);
    }

    #[test]
    fn pvc_gets_the_default_storage_class_on_create() {
        let store = Store::new();
        store
            .create(
                ResourceKind::StorageClass,
                None,
                json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}),
            )
            .expect("sc");
        let mut pvc =
            json!({"metadata": {"name": "d"}, "spec": {"accessModes": ["ReadWriteOnce"]}});
        prepare_create(ResourceKind::PersistentVolumeClaim, &mut pvc, &store);
        assert_eq!(pvc["spec"]["storageClassName"], "standard");
        assert_eq!(pvc["status"]["phase"], "Pending");
    }

    #[test]
    fn image_tags_decide_pull_policy() {
        assert!(image_is_latest("mysql"));
        assert!(image_is_latest("docker.io/library/mysql:latest"));
        assert!(!image_is_latest("mysql:5.6"));
        assert!(image_is_latest("registry:5000/mysql"));
        assert!(!image_is_latest("registry:5000/mysql:8"));
    }
}
