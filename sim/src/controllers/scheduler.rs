//! The scheduler: binds each pending pod to a node.
//!
//! Filters (a subset of kube-scheduler's): the node is Ready, not cordoned, its NoSchedule /
//! NoExecute taints are tolerated, `nodeSelector` matches, every claim exists, a bound
//! claim's PV nodeAffinity admits the node. Among the feasible nodes it picks the one with
//! the fewest pods. Claims of a WaitForFirstConsumer class get the selected-node annotation
//! so the provisioner can create their PV on that node.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Action, EventRecord, SELECTED_NODE, Snapshot, obj};
use crate::store::ResourceKind;

const COMPONENT: &str = "default-scheduler";

pub fn reconcile(snap: &Snapshot, now: DateTime<Utc>) -> Vec<Action> {
    let mut load = pods_per_node(snap);
    let mut actions = Vec::new();
    for pod in snap.pods.iter().filter(|p| needs_scheduling(p)) {
        match place(snap, pod, &load) {
            Ok(node) => {
                *load.entry(node.clone()).or_default() += 1;
                actions.extend(bind(snap, pod, &node, now));
            }
            Err(message) => actions.extend(unschedulable(pod, &message, now)),
        }
    }
    actions
}

fn needs_scheduling(pod: &Value) -> bool {
    obj::node_name(pod).is_none()
        && !obj::is_terminating(pod)
        && obj::str_at(pod, "/spec/schedulerName").is_none_or(|s| s == COMPONENT)
        && !matches!(obj::pod_phase(pod), "Succeeded" | "Failed")
}

fn pods_per_node(snap: &Snapshot) -> BTreeMap<String, usize> {
    let mut load = BTreeMap::new();
    for pod in &snap.pods {
        if let Some(node) = obj::node_name(pod)
            && !matches!(obj::pod_phase(pod), "Succeeded" | "Failed")
        {
            *load.entry(node.to_string()).or_default() += 1;
        }
    }
    load
}

/// The chosen node, or the FailedScheduling message listing why each node was rejected.
fn place(snap: &Snapshot, pod: &Value, load: &BTreeMap<String, usize>) -> Result<String, String> {
    let mut rejections: BTreeMap<String, usize> = BTreeMap::new();
    let mut feasible = Vec::new();
    for node in &snap.nodes {
        match reject_reason(snap, pod, node) {
            Some(reason) => *rejections.entry(reason).or_default() += 1,
            None => feasible.push(obj::name(node).to_string()),
        }
    }
    if let Some(claim_error) = missing_claim(snap, pod) {
        return Err(claim_error);
    }
    feasible
        .into_iter()
        .min_by_key(|n| (load.get(n).copied().unwrap_or(0), n.clone()))
        .ok_or_else(|| {
            let reasons: Vec<String> = rejections.iter().map(|(r, n)| format!("{n} {r}")).collect();
            let total = snap.nodes.len();
            format!(
                "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling.",
                reasons.join(", ")
            )
        })
}

fn missing_claim(snap: &Snapshot, pod: &Value) -> Option<String> {
    obj::pod_claims(pod)
        .into_iter()
        .find(|(_, claim)| snap.pvc(obj::namespace(pod), claim).is_none())
        .map(|(_, claim)| format!("persistentvolumeclaim \"{claim}\" not found"))
}

/// Why `node` cannot run `pod` (None when it can), phrased like kube-scheduler.
fn reject_reason(snap: &Snapshot, pod: &Value, node: &Value) -> Option<String> {
    if obj::condition_status(node, "Ready") != Some("True") {
        return Some("node(s) were not ready".into());
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        return Some("node(s) were unschedulable".into());
    }
    let tolerations = obj::array(pod, "/spec/tolerations");
    for taint in obj::array(node, "/spec/taints") {
        let effect = obj::str_at(taint, "/effect").unwrap_or_default();
        if matches!(effect, "NoSchedule" | "NoExecute") && !obj::tolerates(tolerations, taint) {
            return Some(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                obj::str_at(taint, "/key").unwrap_or_default(),
                obj::str_at(taint, "/value").unwrap_or_default()
            ));
        }
    }
    let node_labels = obj::labels(node);
    let selector = obj::string_map(pod, "/spec/nodeSelector");
    if selector.iter().any(|(k, v)| node_labels.get(k) != Some(v)) {
        return Some("node(s) didn't match Pod's node affinity/selector".into());
    }
    let volume_conflict = obj::pod_claims(pod).iter().any(|(_, claim)| {
        bound_pv(snap, obj::namespace(pod), claim).is_some_and(|pv| !pv_admits(pv, &node_labels))
    });
    if volume_conflict {
        return Some("node(s) had volume node affinity conflict".into());
    }
    None
}

fn bound_pv<'a>(snap: &'a Snapshot, ns: &str, claim: &str) -> Option<&'a Value> {
    let volume = obj::str_at(snap.pvc(ns, claim)?, "/spec/volumeName").filter(|v| !v.is_empty())?;
    snap.pv(volume)
}

/// Whether a PV's required nodeAffinity admits a node with `labels` (any term matches).
fn pv_admits(pv: &Value, labels: &BTreeMap<String, String>) -> bool {
    let terms = obj::array(pv, "/spec/nodeAffinity/required/nodeSelectorTerms");
    terms.is_empty()
        || terms.iter().any(|term| {
            obj::array(term, "/matchExpressions").iter().all(|e| {
                let actual = labels.get(obj::str_at(e, "/key").unwrap_or_default());
                let values: Vec<&str> = obj::array(e, "/values")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                match obj::str_at(e, "/operator").unwrap_or_default() {
                    "In" => actual.is_some_and(|a| values.contains(&a.as_str())),
                    "NotIn" => actual.is_none_or(|a| !values.contains(&a.as_str())),
                    "Exists" => actual.is_some(),
                    "DoesNotExist" => actual.is_none(),
                    _ => false,
                }
            })
        })
}

fn bind(snap: &Snapshot, pod: &Value, node: &str, now: DateTime<Utc>) -> Vec<Action> {
    let mut actions = Vec::new();
    for (_, claim_name) in obj::pod_claims(pod) {
        let Some(claim) = snap.pvc(obj::namespace(pod), &claim_name) else {
            continue;
        };
        let unbound = obj::str_at(claim, "/spec/volumeName").is_none_or(str::is_empty);
        if unbound && !obj::string_map(claim, "/metadata/annotations").contains_key(SELECTED_NODE) {
            let mut selected = claim.clone();
            obj::set_at(
                &mut selected,
                &format!("/metadata/annotations/{}", SELECTED_NODE.replace('/', "~1")),
                json!(node),
            );
            actions.push(Action::replace(
                ResourceKind::PersistentVolumeClaim,
                selected,
            ));
        }
    }
    let mut bound =
        obj::with_condition(pod, "PodScheduled", "True", None, None, &obj::rfc3339(now));
    obj::set_at(&mut bound, "/spec/nodeName", json!(node));
    actions.push(Action::replace(ResourceKind::Pod, bound));
    actions.push(Action::Event(EventRecord::normal(
        pod,
        COMPONENT,
        "Scheduled",
        format!(
            "Successfully assigned {}/{} to {node}",
            obj::namespace(pod),
            obj::name(pod)
        ),
    )));
    actions
}

/// PodScheduled=False/Unschedulable, written (and an event recorded) only when the message
/// changes, so an unschedulable pod does not churn the store every tick.
fn unschedulable(pod: &Value, message: &str, now: DateTime<Utc>) -> Vec<Action> {
    let current = obj::condition(pod, "PodScheduled");
    let unchanged = current.is_some_and(|c| {
        obj::str_at(c, "/status") == Some("False") && obj::str_at(c, "/message") == Some(message)
    });
    if unchanged {
        return Vec::new();
    }
    let updated = obj::with_condition(
        pod,
        "PodScheduled",
        "False",
        Some("Unschedulable"),
        Some(message),
        &obj::rfc3339(now),
    );
    vec![
        Action::replace(ResourceKind::Pod, updated),
        Action::Event(EventRecord::warning(
            pod,
            COMPONENT,
            "FailedScheduling",
            message.to_string(),
        )),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::testkit::{node, replaced};

    fn pod(name: &str, claim: Option<&str>) -> Value {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "resourceVersion": "1"},
            "spec": {"containers": [{"name": "c", "image": "mysql:5.7"}]},
            "status": {"phase": "Pending"}});
        if let Some(c) = claim {
            obj::set_at(
                &mut p,
                "/spec/volumes",
                json!([{"name": "data", "persistentVolumeClaim": {"claimName": c}}]),
            );
        }
        p
    }

    fn control_plane() -> Value {
        let mut n = node("sim-control-plane", true);
        obj::set_at(
            &mut n,
            "/spec/taints",
            json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
        );
        n
    }

    fn bound_node(actions: &[Action]) -> Option<String> {
        replaced(actions, ResourceKind::Pod)
            .first()
            .and_then(|p| obj::node_name(p).map(str::to_string))
    }

    #[test]
    fn picks_the_least_loaded_ready_worker_never_the_control_plane() {
        let mut busy = pod("busy", None);
        obj::set_at(&mut busy, "/spec/nodeName", json!("sim-worker"));
        let snap = Snapshot {
            nodes: vec![
                control_plane(),
                node("sim-worker", true),
                node("sim-worker2", true),
            ],
            pods: vec![busy, pod("new", None)],
            ..Default::default()
        };
        assert_eq!(
            bound_node(&reconcile(&snap, Utc::now())).as_deref(),
            Some("sim-worker2")
        );
    }

    #[test]
    fn bound_volume_pins_the_pod_to_the_pv_node() {
        let claim = json!({"metadata": {"name": "data-0", "namespace": "ns"}, "spec": {"volumeName": "pv-0"}});
        let pv = json!({"metadata": {"name": "pv-0"}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["sim-worker2"]}]}]}}}});
        let snap = Snapshot {
            nodes: vec![
                node("sim-worker", true),
                node("sim-worker2", true),
                node("sim-worker3", true),
            ],
            pods: vec![pod("mysql-0", Some("data-0"))],
            pvcs: vec![claim],
            pvs: vec![pv],
            ..Default::default()
        };
        assert_eq!(
            bound_node(&reconcile(&snap, Utc::now())).as_deref(),
            Some("sim-worker2")
        );
    }

    #[test]
    fn pinned_node_not_ready_leaves_pod_unschedulable() {
        let claim = json!({"metadata": {"name": "data-0", "namespace": "ns"}, "spec": {"volumeName": "pv-0"}});
        let pv = json!({"metadata": {"name": "pv-0"}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["sim-worker2"]}]}]}}}});
        let snap = Snapshot {
            nodes: vec![node("sim-worker", true), node("sim-worker2", false)],
            pods: vec![pod("mysql-0", Some("data-0"))],
            pvcs: vec![claim],
            pvs: vec![pv],
            ..Default::default()
        };
        let actions = reconcile(&snap, Utc::now());
        let updated = replaced(&actions, ResourceKind::Pod);
        assert_eq!(obj::node_name(&updated[0]), None);
        let cond = obj::condition(&updated[0], "PodScheduled").expect("condition");
        assert_eq!(obj::str_at(cond, "/status"), Some("False"));
        assert_eq!(obj::str_at(cond, "/reason"), Some("Unschedulable"));
        let message = obj::str_at(cond, "/message").unwrap_or_default();
        assert!(message.contains("1 node(s) were not ready"), "{message}");
        assert!(
            message.contains("1 node(s) had volume node affinity conflict"),
            "{message}"
        );
        // Same message next round: no churn.
        let again = Snapshot {
            pods: updated,
            ..snap
        };
        assert!(reconcile(&again, Utc::now()).is_empty());
    }

    #[test]
    fn unbound_wait_for_first_consumer_claim_gets_selected_node() {
        let claim = json!({"metadata": {"name": "data-0", "namespace": "ns", "resourceVersion": "1"}, "spec": {}});
        let snap = Snapshot {
            nodes: vec![node("sim-worker", true)],
            pods: vec![pod("mysql-0", Some("data-0"))],
            pvcs: vec![claim],
            ..Default::default()
        };
        let actions = reconcile(&snap, Utc::now());
        let claims = replaced(&actions, ResourceKind::PersistentVolumeClaim);
        assert_eq!(
            obj::str_at(
                &claims[0],
                "/metadata/annotations/volume.kubernetes.io~1selected-node"
            ),
            Some("sim-worker")
        );
        assert_eq!(bound_node(&actions).as_deref(), Some("sim-worker"));
    }

    #[test]
    fn missing_claim_blocks_scheduling() {
        let snap = Snapshot {
            nodes: vec![node("sim-worker", true)],
            pods: vec![pod("mysql-0", Some("gone"))],
            ..Default::default()
        };
        let updated = replaced(&reconcile(&snap, Utc::now()), ResourceKind::Pod);
        let cond = obj::condition(&updated[0], "PodScheduled").expect("condition");
        assert_eq!(
            obj::str_at(cond, "/message"),
            Some("persistentvolumeclaim \"gone\" not found")
        );
    }
}
