//! Node objects and the node lifecycle controller.
//!
//! A node whose kubelet stopped posting status for longer than the grace period turns
//! NotReady (Ready=Unknown, reason NodeStatusUnknown), gets the `unreachable` taints, and
//! its pods' Ready condition turns False; the pod objects stay. Pods whose NoExecute
//! toleration runs out are deleted (they stay Terminating while the kubelet is down), and
//! terminating pods on a node tainted `out-of-service` are force-deleted (pod GC).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{
    Action, EventRecord, HOSTNAME_LABEL, LOCAL_PATH_PROVISIONER, NETWORK_PROVISIONER, Snapshot, obj,
};
use crate::store::ResourceKind;

pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
pub const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";
/// The kubelet version the sim's nodes report: the same release the API server claims.
pub const KUBELET_VERSION: &str = crate::config::GIT_VERSION;

const COMPONENT: &str = "node-controller";

/// One simulated node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub host_ip: Ipv4Addr,
    pub pod_cidr: String,
    pub control_plane: bool,
}

/// kind's naming: `<cluster>-control-plane`, `<cluster>-worker`, `<cluster>-worker2`, ...
pub fn node_names(cluster: &str, workers: usize) -> Vec<(String, bool)> {
    std::iter::once((format!("{cluster}-control-plane"), true))
        .chain((1..=workers).map(|i| {
            let suffix = if i == 1 { String::new() } else { i.to_string() };
            (format!("{cluster}-worker{suffix}"), false)
        }))
        .collect()
}

fn conditions(ready: bool, now: &str) -> Value {
    let pressure = |type_: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": "False", "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!([
        pressure("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        pressure("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        pressure("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        {"type": "Ready", "status": if ready {"True"} else {"False"}, "reason": "KubeletReady",
            "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now},
    ])
}

/// The Node object a freshly started kind node shows.
pub fn node_object(spec: &NodeSpec, now: DateTime<Utc>) -> Value {
    let now = obj::rfc3339(now);
    let mut labels = json!({
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        HOSTNAME_LABEL: spec.name,
        "kubernetes.io/os": "linux",
    });
    let mut node_spec = json!({"podCIDR": spec.pod_cidr, "podCIDRs": [spec.pod_cidr],
        "providerID": format!("kind://kube-sim/{}", spec.name)});
    if spec.control_plane {
        obj::set_at(
            &mut labels,
            &format!("/{}", CONTROL_PLANE_TAINT.replace('/', "~1")),
            json!(""),
        );
        obj::set_at(
            &mut node_spec,
            "/taints",
            json!([{"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"}]),
        );
    }
    let resources =
        json!({"cpu": "2", "ephemeral-storage": "100Gi", "memory": "8Gi", "pods": "110"});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kube-sim/simulated": "true"}},
        "spec": node_spec,
        "status": {
            "addresses": [{"type": "InternalIP", "address": spec.host_ip.to_string()},
                {"type": "Hostname", "address": spec.name}],
            "allocatable": resources,
            "capacity": resources,
            "conditions": conditions(true, &now),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"architecture": "amd64", "bootID": uuid::Uuid::new_v4().to_string(),
                "containerRuntimeVersion": "kube-sim://mariadbd", "kernelVersion": "", "kubeProxyVersion": "",
                "kubeletVersion": KUBELET_VERSION, "machineID": "", "operatingSystem": "linux",
                "osImage": "kube-sim simulated node", "systemUUID": ""},
        },
    })
}

/// kind's default StorageClass.
pub fn standard_storage_class() -> Value {
    json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "standard",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    })
}

/// The sim's non-default StorageClass for storage that is not node-bound: with it a pod
/// whose node died can move (the out-of-service taint case).
pub fn network_storage_class() -> Value {
    json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "network"},
        "provisioner": NETWORK_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    })
}

/// Where each kubelet stands: up, or down since a given time.
pub type KubeletDown = BTreeMap<String, DateTime<Utc>>;

pub fn reconcile(
    snap: &Snapshot,
    down: &KubeletDown,
    grace: Duration,
    now: DateTime<Utc>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for node in &snap.nodes {
        let name = obj::name(node);
        let ready = obj::condition_status(node, "Ready") == Some("True");
        match down.get(name) {
            None if !ready => actions.extend(node_ready(node, now)),
            Some(since)
                if ready
                    && now
                        .signed_duration_since(*since)
                        .to_std()
                        .is_ok_and(|d| d >= grace) =>
            {
                actions.extend(node_unreachable(node, now));
            }
            _ => {}
        }
    }
    actions.extend(mark_pods_not_ready(snap, now));
    actions.extend(taint_eviction(snap, now));
    actions.extend(out_of_service_gc(snap));
    actions
}

/// What a (re)started kubelet posts: Ready, and the node controller drops the
/// unreachable taints.
pub fn node_ready(node: &Value, now: DateTime<Utc>) -> Vec<Action> {
    let mut updated = node.clone();
    obj::set_at(
        &mut updated,
        "/status/conditions",
        conditions(true, &obj::rfc3339(now)),
    );
    let taints: Vec<Value> = obj::array(node, "/spec/taints")
        .iter()
        .filter(|t| obj::str_at(t, "/key") != Some(UNREACHABLE_TAINT))
        .cloned()
        .collect();
    set_taints(&mut updated, taints);
    vec![
        Action::replace(ResourceKind::Node, updated),
        Action::Event(EventRecord::normal(
            node,
            "kubelet",
            "NodeReady",
            format!("Node {} status is now: NodeReady", obj::name(node)),
        )),
    ]
}

fn node_unreachable(node: &Value, now: DateTime<Utc>) -> Vec<Action> {
    let ts = obj::rfc3339(now);
    let mut updated = node.clone();
    let conditions: Vec<Value> = obj::array(node, "/status/conditions")
        .iter()
        .map(|c| {
            let mut c = c.clone();
            obj::set_at(&mut c, "/status", json!("Unknown"));
            obj::set_at(&mut c, "/reason", json!("NodeStatusUnknown"));
            obj::set_at(
                &mut c,
                "/message",
                json!("Kubelet stopped posting node status."),
            );
            obj::set_at(&mut c, "/lastTransitionTime", json!(ts));
            c
        })
        .collect();
    obj::set_at(&mut updated, "/status/conditions", Value::Array(conditions));
    let mut taints: Vec<Value> = obj::array(node, "/spec/taints").to_vec();
    for effect in ["NoSchedule", "NoExecute"] {
        let present = taints.iter().any(|t| {
            obj::str_at(t, "/key") == Some(UNREACHABLE_TAINT)
                && obj::str_at(t, "/effect") == Some(effect)
        });
        if !present {
            taints.push(json!({"key": UNREACHABLE_TAINT, "effect": effect, "timeAdded": ts}));
        }
    }
    set_taints(&mut updated, taints);
    vec![
        Action::replace(ResourceKind::Node, updated),
        Action::Event(EventRecord::normal(
            node,
            COMPONENT,
            "NodeNotReady",
            format!("Node {} status is now: NodeNotReady", obj::name(node)),
        )),
    ]
}

fn set_taints(node: &mut Value, taints: Vec<Value>) {
    if taints.is_empty() {
        obj::remove_at(node, "/spec/taints");
    } else {
        obj::set_at(node, "/spec/taints", Value::Array(taints));
    }
}

fn node_not_ready(snap: &Snapshot, node: &str) -> bool {
    snap.node(node)
        .is_some_and(|n| obj::condition_status(n, "Ready") != Some("True"))
}

/// Upstream MarkPodsNotReady: Ready=False on every pod of a NotReady node.
fn mark_pods_not_ready(snap: &Snapshot, now: DateTime<Utc>) -> Vec<Action> {
    let mut actions = Vec::new();
    for pod in &snap.pods {
        let Some(node) = obj::node_name(pod) else {
            continue;
        };
        if node_not_ready(snap, node) && obj::pod_ready(pod) {
            let updated =
                obj::with_condition(pod, "Ready", "False", None, None, &obj::rfc3339(now));
            actions.push(Action::replace(ResourceKind::Pod, updated));
            actions.push(Action::Event(EventRecord::warning(
                pod,
                COMPONENT,
                "NodeNotReady",
                "Node is not ready".into(),
            )));
        }
    }
    actions
}

/// Taint-based eviction: a pod on a node with a NoExecute taint it does not tolerate (or
/// whose tolerationSeconds ran out since the taint was added) is deleted.
fn taint_eviction(snap: &Snapshot, now: DateTime<Utc>) -> Vec<Action> {
    let mut actions = Vec::new();
    for pod in snap.pods.iter().filter(|p| !obj::is_terminating(p)) {
        let Some(node) = obj::node_name(pod).and_then(|n| snap.node(n)) else {
            continue;
        };
        let tolerations = obj::array(pod, "/spec/tolerations");
        let evict = obj::array(node, "/spec/taints")
            .iter()
            .filter(|t| obj::str_at(t, "/effect") == Some("NoExecute"))
            .any(|taint| eviction_due(tolerations, taint, now));
        if evict {
            actions.push(Action::delete(ResourceKind::Pod, pod));
            actions.push(Action::Event(EventRecord::normal(
                pod,
                "taint-eviction-controller",
                "TaintManagerEviction",
                format!(
                    "Marking for deletion Pod {}/{}",
                    obj::namespace(pod),
                    obj::name(pod)
                ),
            )));
        }
    }
    actions
}

fn eviction_due(tolerations: &[Value], taint: &Value, now: DateTime<Utc>) -> bool {
    let matching: Vec<&Value> = tolerations
        .iter()
        .filter(|t| obj::tolerates(std::slice::from_ref(*t), taint))
        .collect();
    if matching.is_empty() {
        return true;
    }
    // Tolerated forever unless every matching toleration has a limit; the shortest wins.
    let limit = matching
        .iter()
        .map(|t| t.get("tolerationSeconds").and_then(Value::as_i64))
        .collect::<Option<Vec<i64>>>()
        .and_then(|secs| secs.into_iter().min());
    let added = obj::timestamp(taint, "/timeAdded").unwrap_or(now);
    limit.is_some_and(|secs| (now - added).num_seconds() >= secs)
}

/// Pod GC: terminating pods on a NotReady node tainted out-of-service are force-deleted.
fn out_of_service_gc(snap: &Snapshot) -> Vec<Action> {
    snap.pods
        .iter()
        .filter(|p| obj::is_terminating(p))
        .filter(|p| {
            obj::node_name(p)
                .and_then(|n| snap.node(n))
                .is_some_and(|node| {
                    obj::condition_status(node, "Ready") != Some("True")
                        && obj::array(node, "/spec/taints")
                            .iter()
                            .any(|t| obj::str_at(t, "/key") == Some(OUT_OF_SERVICE_TAINT))
                })
        })
        .map(|p| Action::Remove {
            kind: ResourceKind::Pod,
            namespace: Some(obj::namespace(p).to_string()),
            name: obj::name(p).to_string(),
            uid: obj::uid(p).to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::testkit::{deleted, node, replaced};

    fn pod_on(node: &str, ready: bool) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "mysql-0", "namespace": "ns", "uid": "pod-uid"},
            "spec": {"nodeName": node, "tolerations": [
                {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn kind_like_node_names() {
        let names: Vec<String> = node_names("sim", 3).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "sim-control-plane",
                "sim-worker",
                "sim-worker2",
                "sim-worker3"
            ]
        );
    }

    #[test]
    fn node_turns_unknown_only_after_grace() {
        let snap = Snapshot {
            nodes: vec![node("sim-worker2", true)],
            ..Default::default()
        };
        let now = Utc::now();
        let down: KubeletDown = [(
            "sim-worker2".to_string(),
            now - chrono::Duration::seconds(1),
        )]
        .into();
        assert!(reconcile(&snap, &down, Duration::from_secs(2), now).is_empty());
        let down: KubeletDown = [(
            "sim-worker2".to_string(),
            now - chrono::Duration::seconds(3),
        )]
        .into();
        let updated = replaced(
            &reconcile(&snap, &down, Duration::from_secs(2), now),
            ResourceKind::Node,
        );
        assert_eq!(obj::condition_status(&updated[0], "Ready"), Some("Unknown"));
        let reason = obj::condition(&updated[0], "Ready").and_then(|c| obj::str_at(c, "/reason"));
        assert_eq!(reason, Some("NodeStatusUnknown"));
        let taints = obj::array(&updated[0], "/spec/taints");
        assert_eq!(taints.len(), 2);
    }

    #[test]
    fn pods_of_a_not_ready_node_lose_ready_but_stay() {
        let snap = Snapshot {
            nodes: vec![node("sim-worker2", false)],
            pods: vec![pod_on("sim-worker2", true)],
            ..Default::default()
        };
        let down: KubeletDown = [("sim-worker2".to_string(), Utc::now())].into();
        let actions = reconcile(&snap, &down, Duration::from_secs(2), Utc::now());
        let pods = replaced(&actions, ResourceKind::Pod);
        assert_eq!(obj::condition_status(&pods[0], "Ready"), Some("False"));
        assert!(
            deleted(&actions, ResourceKind::Pod).is_empty(),
            "at-most-one: the pod object stays"
        );
    }

    #[test]
    fn restarted_kubelet_makes_node_ready_and_drops_unreachable_taints() {
        let mut n = node("sim-worker2", false);
        obj::set_at(
            &mut n,
            "/spec/taints",
            json!([{"key": UNREACHABLE_TAINT, "effect": "NoExecute"}]),
        );
        let snap = Snapshot {
            nodes: vec![n],
            ..Default::default()
        };
        let updated = replaced(
            &reconcile(
                &snap,
                &KubeletDown::new(),
                Duration::from_secs(2),
                Utc::now(),
            ),
            ResourceKind::Node,
        );
        assert_eq!(obj::condition_status(&updated[0], "Ready"), Some("True"));
        assert!(obj::array(&updated[0], "/spec/taints").is_empty());
    }

    #[test]
    fn toleration_seconds_delay_eviction() {
        let now = Utc::now();
        let taint = |added: DateTime<Utc>| json!({"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": obj::rfc3339(added)});
        let tolerations = obj::array(&pod_on("n", true), "/spec/tolerations").to_vec();
        assert!(!eviction_due(
            &tolerations,
            &taint(now - chrono::Duration::seconds(10)),
            now
        ));
        assert!(eviction_due(
            &tolerations,
            &taint(now - chrono::Duration::seconds(301)),
            now
        ));
        assert!(eviction_due(&[], &taint(now), now));
    }

    #[test]
    fn out_of_service_node_force_deletes_terminating_pods() {
        let mut n = node("sim-worker2", false);
        obj::set_at(
            &mut n,
            "/spec/taints",
            json!([{"key": OUT_OF_SERVICE_TAINT, "value": "nodeshutdown", "effect": "NoExecute"}]),
        );
        let mut p = pod_on("sim-worker2", false);
        obj::set_at(
            &mut p,
            "/metadata/deletionTimestamp",
            json!("2024-01-01T00:00:00Z"),
        );
        let snap = Snapshot {
            nodes: vec![n],
            pods: vec![p],
            ..Default::default()
        };
        let actions = out_of_service_gc(&snap);
        assert!(matches!(
            actions.as_slice(),
            [Action::Remove {
                kind: ResourceKind::Pod,
                ..
            }]
        ));
    }
}
