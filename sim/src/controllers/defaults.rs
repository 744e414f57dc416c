//! Defaults the API server and its admission plugins apply to objects on create.
//!
//! The StatefulSet controller builds pods and claims from templates; a real API server
//! would then default them (restartPolicy, grace period, tolerations, storage class...).
//! These functions do the same so objects look like a cluster's.

use serde_json::{Value, json};

use super::obj;

/// Pod spec defaults from the API server's defaulting and the DefaultTolerationSeconds
/// admission plugin. Only missing fields are filled in.
pub fn default_pod_spec(spec: &mut Value) {
    let defaults = [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
        ("serviceAccountName", json!("default")),
        ("serviceAccount", json!("default")),
        ("enableServiceLinks", json!(true)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
        ("priority", json!(0)),
    ];
    for (field, value) in defaults {
        if spec.get(field).is_none() {
            obj::set_at(spec, &format!("/{field}"), value);
        }
    }
    add_default_tolerations(spec);
    if let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) {
        containers.iter_mut().for_each(default_container);
    }
}

/// `node.kubernetes.io/not-ready` and `unreachable` NoExecute for 300 s, as admission adds.
fn add_default_tolerations(spec: &mut Value) {
    let mut tolerations = obj::array(spec, "/tolerations").to_vec();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let present = tolerations.iter().any(|t| {
            obj::str_at(t, "/key") == Some(key)
                && obj::str_at(t, "/effect").is_none_or(|e| e == "NoExecute")
        });
        if !present {
            tolerations.push(json!({
                "key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300
            }));
        }
    }
    obj::set_at(spec, "/tolerations", Value::Array(tolerations));
}

fn default_container(container: &mut Value) {
    let image = obj::str_at(container, "/image").unwrap_or_default();
    let pull_policy = if image_tag(image).is_none_or(|t| t == "latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    let defaults = [
        ("imagePullPolicy", json!(pull_policy)),
        ("terminationMessagePath", json!("/dev/termination-log")),
        ("terminationMessagePolicy", json!("File")),
        ("resources", json!({})),
    ];
    for (field, value) in defaults {
        if container.get(field).is_none() {
            obj::set_at(container, &format!("/{field}"), value);
        }
    }
    if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            if port.get("protocol").is_none() {
                obj::set_at(port, "/protocol", json!("TCP"));
            }
        }
    }
}

/// The tag of an image reference (`mysql:5.7` → `5.7`), None for digests or no tag.
pub fn image_tag(image: &str) -> Option<&str> {
    if image.contains('@') {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, tag)| tag)
}

/// The pod's QoS class as the API server computes it (Guaranteed is not distinguished).
pub fn qos_class(spec: &Value) -> &'static str {
    let any_resources = obj::array(spec, "/containers").iter().any(|c| {
        ["/resources/requests", "/resources/limits"]
            .iter()
            .any(|p| {
                c.pointer(p)
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty())
            })
    });
    if any_resources {
        "Burstable"
    } else {
        "BestEffort"
    }
}

/// PVC spec defaults: volumeMode and (DefaultStorageClass admission) the default class.
pub fn default_pvc_spec(spec: &mut Value, default_class: Option<&str>) {
    if spec.get("volumeMode").is_none() {
        obj::set_at(spec, "/volumeMode", json!("Filesystem"));
    }
    if spec.get("storageClassName").is_none()
        && let Some(class) = default_class
    {
        obj::set_at(spec, "/storageClassName", json!(class));
    }
}

/// The name of the StorageClass annotated as the cluster default.
pub fn default_storage_class(classes: &[Value]) -> Option<&str> {
    classes
        .iter()
        .find(|c| {
            obj::str_at(
                c,
                "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
            ) == Some("true")
        })
        .map(obj::name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults_fill_only_missing_fields() {
        let mut spec = json!({"terminationGracePeriodSeconds": 5,
            "containers": [{"name": "mysql", "image": "mysql:5.7", "ports": [{"containerPort": 3306}]}]});
        default_pod_spec(&mut spec);
        assert_eq!(spec["terminationGracePeriodSeconds"], 5);
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(obj::array(&spec, "/tolerations").len(), 2);
        default_pod_spec(&mut spec);
        assert_eq!(obj::array(&spec, "/tolerations").len(), 2, "idempotent");
    }

    #[test]
    fn latest_or_untagged_images_are_always_pulled() {
        assert_eq!(image_tag("mysql"), None);
        assert_eq!(image_tag("registry:5000/mysql"), None);
        assert_eq!(image_tag("registry:5000/mysql:8"), Some("8"));
        let mut c = json!({"image": "mysql"});
        default_container(&mut c);
        assert_eq!(c["imagePullPolicy"], "Always");
    }

    #[test]
    fn default_class_found_by_annotation() {
        let classes = vec![
            json!({"metadata": {"name": "slow"}}),
            json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}),
        ];
        assert_eq!(default_storage_class(&classes), Some("standard"));
    }
}
