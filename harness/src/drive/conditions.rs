//! Pure conditions on Kubernetes objects: whether a StatefulSet, pod, PVC or node is in an
//! awaited state, and a one-line description of what was seen (for timeout errors and
//! namespace dumps). Tested inline on YAML literals; the engine that waits on them is
//! [`super::wait`].

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};

/// What one observation of the watched object (or its absence) means for a wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Done,
    Pending,
    /// The awaited state can no longer happen (e.g. the pod was replaced, not restarted).
    Impossible(String),
}

type Judge<K> = Box<dyn Fn(Option<&K>) -> Step + Send + Sync>;
type Describe<K> = Box<dyn Fn(&K) -> String + Send + Sync>;

/// An awaited state of one object: what it is called, how an observation is judged and
/// how it is described.
pub struct Condition<K> {
    /// "pod Ready", "3 ready replicas": what the wait is for, as errors name it.
    pub what: String,
    judge: Judge<K>,
    describe: Describe<K>,
}

impl<K> Condition<K> {
    pub fn new(
        what: impl Into<String>,
        judge: impl Fn(Option<&K>) -> Step + Send + Sync + 'static,
        describe: impl Fn(&K) -> String + Send + Sync + 'static,
    ) -> Condition<K> {
        Condition {
            what: what.into(),
            judge: Box::new(judge),
            describe: Box::new(describe),
        }
    }

    /// Done when `present` holds for the object; pending while it is absent or does not.
    fn when(
        what: impl Into<String>,
        present: impl Fn(&K) -> bool + Send + Sync + 'static,
        describe: impl Fn(&K) -> String + Send + Sync + 'static,
    ) -> Condition<K> {
        Condition::new(
            what,
            move |seen| match seen {
                Some(k) if present(k) => Step::Done,
                _ => Step::Pending,
            },
            describe,
        )
    }

    pub fn judge(&self, seen: Option<&K>) -> Step {
        (self.judge)(seen)
    }

    /// The observed state, or `not found`.
    pub fn describe(&self, seen: Option<&K>) -> String {
        seen.map_or_else(|| "not found".to_owned(), |k| (self.describe)(k))
    }
}

/// The StatefulSet reports `replicas` Ready replicas for its latest spec.
pub fn statefulset_ready(replicas: i32) -> Condition<StatefulSet> {
    Condition::when(
        format!("{replicas} ready replicas"),
        move |sts| is_statefulset_ready(sts, replicas),
        move |sts| describe_statefulset(sts, replicas),
    )
}

/// A template update reached its end for `partition`: the controller observed the latest
/// spec, every replica is Ready, `replicas - partition` pods are on the update revision and,
/// with no partition left, `currentRevision == updateRevision`.
pub fn statefulset_rolled_out(replicas: i32, partition: i32) -> Condition<StatefulSet> {
    Condition::when(
        format!(
            "{replicas} ready replicas, {} updated (partition {partition})",
            (replicas - partition).max(0)
        ),
        move |sts| is_statefulset_rolled_out(sts, replicas, partition),
        describe_rollout,
    )
}

/// The controller observed the latest spec and reports an update revision different from
/// its current revision (a new template it has not rolled out everywhere).
pub fn statefulset_update_pending() -> Condition<StatefulSet> {
    Condition::when(
        "a new update revision observed",
        |sts: &StatefulSet| {
            let status = sts.status.as_ref();
            observed_latest(sts)
                && status.and_then(|s| s.update_revision.as_deref()).is_some()
                && status.and_then(|s| s.update_revision.as_deref())
                    != status.and_then(|s| s.current_revision.as_deref())
        },
        describe_rollout,
    )
}

fn observed_latest(sts: &StatefulSet) -> bool {
    let observed = sts.status.as_ref().and_then(|s| s.observed_generation);
    observed.is_some() && observed == sts.metadata.generation
}

pub fn is_statefulset_rolled_out(sts: &StatefulSet, replicas: i32, partition: i32) -> bool {
    let Some(status) = &sts.status else {
        return false;
    };
    let revisions_agree = partition > 0 || status.current_revision == status.update_revision;
    observed_latest(sts)
        && sts.spec.replicas.unwrap_or(1) == replicas
        && status.ready_replicas.unwrap_or(0) == replicas
        && status.updated_replicas.unwrap_or(0) == (replicas - partition).max(0)
        && revisions_agree
}

/// "readyReplicas 3, updatedReplicas 1, currentRevision a, updateRevision b,
/// observedGeneration 2/2".
pub fn describe_rollout(sts: &StatefulSet) -> String {
    let status = sts.status.as_ref();
    format!(
        "readyReplicas {}, updatedReplicas {}, currentRevision {}, updateRevision {}, observedGeneration {}/{}",
        status.and_then(|s| s.ready_replicas).unwrap_or(0),
        status.and_then(|s| s.updated_replicas).unwrap_or(0),
        opt(status.and_then(|s| s.current_revision.as_deref())),
        opt(status.and_then(|s| s.update_revision.as_deref())),
        opt(status.and_then(|s| s.observed_generation)),
        opt(sts.metadata.generation),
    )
}

/// The pod exists and is Ready (whatever its uid).
pub fn pod_ready() -> Condition<Pod> {
    Condition::when("pod Ready", is_pod_ready, describe_pod)
}

/// The pod is not Ready (its Ready condition is not True).
pub fn pod_not_ready() -> Condition<Pod> {
    Condition::when("pod not Ready", |pod| !is_pod_ready(pod), describe_pod)
}

/// The pod with `uid` is gone: not found, or replaced by one with another uid.
pub fn pod_gone(uid: &str) -> Condition<Pod> {
    let uid = uid.to_owned();
    Condition::new(
        format!("pod uid {uid} gone"),
        move |seen| match seen {
            Some(pod) if pod.metadata.uid.as_deref() == Some(uid.as_str()) => Step::Pending,
            _ => Step::Done,
        },
        describe_pod,
    )
}

/// A pod of that name with a uid other than `old_uid` is Ready.
pub fn pod_recreated(old_uid: &str) -> Condition<Pod> {
    let old = old_uid.to_owned();
    Condition::when(
        format!("pod recreated (uid other than {old_uid}) and Ready"),
        move |pod| pod.metadata.uid.as_deref() != Some(old.as_str()) && is_pod_ready(pod),
        describe_pod,
    )
}

/// The same pod (`uid`) restarted its containers at least `min_restart_count` times in
/// total and is Ready again. Impossible once the pod was replaced or deleted.
pub fn pod_restarted(uid: &str, min_restart_count: i32) -> Condition<Pod> {
    let uid = uid.to_owned();
    Condition::new(
        format!("pod uid {uid} restarted in place (restarts >= {min_restart_count}) and Ready"),
        move |seen| match seen {
            None => Step::Impossible(format!("the pod (uid {uid}) was deleted")),
            Some(pod) if pod.metadata.uid.as_deref() != Some(uid.as_str()) => {
                Step::Impossible(format!(
                    "the pod was replaced (now uid {}) instead of restarted in place",
                    pod.metadata.uid.as_deref().unwrap_or("?")
                ))
            }
            Some(pod) if pod_restart_count(pod) >= min_restart_count && is_pod_ready(pod) => {
                Step::Done
            }
            Some(_) => Step::Pending,
        },
        describe_pod,
    )
}

pub fn pvc_bound() -> Condition<PersistentVolumeClaim> {
    Condition::when("PVC Bound", is_pvc_bound, describe_pvc)
}

pub fn node_ready() -> Condition<Node> {
    Condition::when("node Ready", is_node_ready, describe_node)
}

/// The node's Ready condition is not True (False or Unknown).
pub fn node_not_ready() -> Condition<Node> {
    Condition::when("node NotReady", |n| !is_node_ready(n), describe_node)
}

/// Ready for `replicas`: the controller has observed the latest spec
/// (`status.observedGeneration == metadata.generation`), `spec.replicas == replicas` and
/// `status.readyReplicas == replicas`.
pub fn is_statefulset_ready(sts: &StatefulSet, replicas: i32) -> bool {
    let Some(status) = &sts.status else {
        return false;
    };
    let observed = status.observed_generation.is_some()
        && status.observed_generation == sts.metadata.generation;
    let desired = sts.spec.replicas.unwrap_or(1);
    observed && desired == replicas && status.ready_replicas.unwrap_or(0) == replicas
}

/// "readyReplicas 2/3, spec.replicas 3, observedGeneration 1/2".
pub fn describe_statefulset(sts: &StatefulSet, replicas: i32) -> String {
    let status = sts.status.as_ref();
    format!(
        "readyReplicas {}/{replicas}, spec.replicas {}, observedGeneration {}/{}",
        status.and_then(|s| s.ready_replicas).unwrap_or(0),
        sts.spec.replicas.unwrap_or(1),
        opt(status.and_then(|s| s.observed_generation)),
        opt(sts.metadata.generation),
    )
}

/// The pod's `Ready` condition is True and it is not being deleted (a terminating pod
/// may still report Ready, but it is on its way out).
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && pod_condition(pod, "Ready") == Some("True")
}

/// Sum of `restartCount` over the pod's containers.
pub fn pod_restart_count(pod: &Pod) -> i32 {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| c.restart_count)
        .sum()
}

/// "uid 1234, phase Running, Ready True, restarts 0, node sim-worker".
pub fn describe_pod(pod: &Pod) -> String {
    let status = pod.status.as_ref();
    let mut text = format!(
        "uid {}, phase {}, Ready {}, restarts {}, node {}",
        pod.metadata.uid.as_deref().unwrap_or("?"),
        status.and_then(|s| s.phase.as_deref()).unwrap_or("?"),
        pod_condition(pod, "Ready").unwrap_or("?"),
        pod_restart_count(pod),
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("(unscheduled)"),
    );
    if pod.metadata.deletion_timestamp.is_some() {
        text.push_str(", terminating");
    }
    text
}

fn pod_condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

pub fn is_pvc_bound(pvc: &PersistentVolumeClaim) -> bool {
    pvc_phase(pvc) == Some("Bound")
}

/// "phase Pending, volume (none)".
pub fn describe_pvc(pvc: &PersistentVolumeClaim) -> String {
    format!(
        "phase {}, volume {}",
        pvc_phase(pvc).unwrap_or("?"),
        pvc.spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .unwrap_or("(none)")
    )
}

fn pvc_phase(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.status.as_ref()?.phase.as_deref()
}

/// The node's `Ready` condition is True.
pub fn is_node_ready(node: &Node) -> bool {
    node_condition(node, "Ready") == Some("True")
}

/// "Ready Unknown (NodeStatusUnknown)".
pub fn describe_node(node: &Node) -> String {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) => format!(
            "Ready {} ({})",
            c.status,
            c.reason.as_deref().unwrap_or("no reason")
        ),
        None => "no Ready condition".to_owned(),
    }
}

fn node_condition<'a>(node: &'a Node, type_: &str) -> Option<&'a str> {
    node.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "?".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(yaml: &str) -> StatefulSet {
        serde_yaml::from_str(yaml).expect("statefulset yaml")
    }

    fn pod(yaml: &str) -> Pod {
        serde_yaml::from_str(yaml).expect("pod yaml")
    }

    const STS_READY: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: mysql, generation: 2}
spec:
  replicas: 3
  selector: {matchLabels: {app: mysql}}
  template: {}
status: {replicas: 3, readyReplicas: 3, observedGeneration: 2}
"#;

    const STS_ROLLING: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: mysql, generation: 3}
spec:
  replicas: 3
  selector: {matchLabels: {app: mysql}}
  template: {}
status: {replicas: 3, readyReplicas: 3, updatedReplicas: 1, observedGeneration: 3,
  currentRevision: mysql-a, updateRevision: mysql-b}
"#;

    #[test]
    fn rollout_ends_per_partition_and_needs_equal_revisions_at_zero() {
        let rolling = sts(STS_ROLLING);
        assert!(is_statefulset_rolled_out(&rolling, 3, 2));
        assert!(!is_statefulset_rolled_out(&rolling, 3, 0));
        let c = statefulset_update_pending();
        assert_eq!(c.judge(Some(&rolling)), Step::Done);
        let mut done = rolling.clone();
        let status = done.status.as_mut().expect("status");
        status.updated_replicas = Some(3);
        status.current_revision = Some("mysql-b".into());
        assert!(is_statefulset_rolled_out(&done, 3, 0));
        assert_eq!(c.judge(Some(&done)), Step::Pending);
        done.metadata.generation = Some(4);
        assert!(!is_statefulset_rolled_out(&done, 3, 0), "status is stale");
        assert_eq!(
            statefulset_rolled_out(3, 0).describe(Some(&done)),
            "readyReplicas 3, updatedReplicas 3, currentRevision mysql-b, updateRevision mysql-b, observedGeneration 3/4"
        );
    }

    #[test]
    fn statefulset_ready_when_caught_up() {
        let s = sts(STS_READY);
        assert!(is_statefulset_ready(&s, 3));
        assert!(!is_statefulset_ready(&s, 5), "wrong target replica count");
    }

    #[test]
    fn statefulset_not_ready_while_observed_generation_lags() {
        // Status says 3/3 ready, but for generation 1: the scale to 3 is not yet observed.
        let s = sts(&STS_READY.replace("observedGeneration: 2", "observedGeneration: 1"));
        assert!(!is_statefulset_ready(&s, 3));
        let d = describe_statefulset(&s, 3);
        assert_eq!(
            d,
            "readyReplicas 3/3, spec.replicas 3, observedGeneration 1/2"
        );
    }

    #[test]
    fn statefulset_not_ready_cases() {
        let cases = [
            ("readyReplicas: 3", "readyReplicas: 2"),
            ("replicas: 3\n  selector", "replicas: 5\n  selector"),
            (", observedGeneration: 2", ""),
        ];
        for (from, to) in cases {
            let s = sts(&STS_READY.replace(from, to));
            assert!(!is_statefulset_ready(&s, 3), "{from} -> {to}");
        }
        let no_status = sts(&STS_READY.replace(
            "status: {replicas: 3, readyReplicas: 3, observedGeneration: 2}",
            "",
        ));
        assert!(!is_statefulset_ready(&no_status, 3));
        assert_eq!(
            describe_statefulset(&no_status, 3),
            "readyReplicas 0/3, spec.replicas 3, observedGeneration ?/2"
        );
    }

    const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: mysql-0, uid: u1}
spec: {nodeName: sim-worker, containers: [{name: mysql}]}
status:
  phase: Running
  conditions: [{type: Ready, status: "True"}, {type: ContainersReady, status: "True"}]
  containerStatuses: [{name: mysql, image: x, imageID: y, ready: true, restartCount: 2}]
"#;

    #[test]
    fn pod_ready_conditions() {
        let p = pod(POD);
        assert!(is_pod_ready(&p));
        assert_eq!(pod_restart_count(&p), 2);
        assert_eq!(
            describe_pod(&p),
            "uid u1, phase Running, Ready True, restarts 2, node sim-worker"
        );
        let not_ready = pod(&POD.replace(
            r#"{type: Ready, status: "True"}"#,
            r#"{type: Ready, status: "False"}"#,
        ));
        assert!(!is_pod_ready(&not_ready));
        let terminating = pod(&POD.replace(
            "uid: u1}",
            "uid: u1, deletionTimestamp: \"2024-01-01T00:00:00Z\"}",
        ));
        assert!(!is_pod_ready(&terminating));
        assert!(describe_pod(&terminating).ends_with(", terminating"));
        let no_status = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n");
        assert!(!is_pod_ready(&no_status));
    }

    #[test]
    fn restart_step_distinguishes_restart_from_replacement() {
        let p = pod(POD);
        assert_eq!(pod_restarted("u1", 2).judge(Some(&p)), Step::Done);
        assert_eq!(pod_restarted("u1", 3).judge(Some(&p)), Step::Pending);
        assert!(matches!(
            pod_restarted("other", 1).judge(Some(&p)),
            Step::Impossible(r) if r.contains("replaced")
        ));
        assert!(matches!(
            pod_restarted("u1", 1).judge(None),
            Step::Impossible(_)
        ));
    }

    #[test]
    fn pvc_bound_condition() {
        let bound: PersistentVolumeClaim = serde_yaml::from_str(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nspec: {volumeName: pv-1}\nstatus: {phase: Bound}\n",
        )
        .unwrap();
        assert!(is_pvc_bound(&bound));
        assert_eq!(describe_pvc(&bound), "phase Bound, volume pv-1");
        let pending: PersistentVolumeClaim = serde_yaml::from_str(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nstatus: {phase: Pending}\n",
        )
        .unwrap();
        assert!(!is_pvc_bound(&pending));
        assert_eq!(describe_pvc(&pending), "phase Pending, volume (none)");
    }

    #[test]
    fn node_ready_condition() {
        let node = |status: &str| -> Node {
            serde_yaml::from_str(&format!(
                "apiVersion: v1\nkind: Node\nmetadata: {{name: n}}\nstatus:\n  conditions: [{{type: Ready, status: \"{status}\", reason: R}}]\n"
            ))
            .unwrap()
        };
        assert!(is_node_ready(&node("True")));
        assert!(!is_node_ready(&node("False")));
        assert!(!is_node_ready(&node("Unknown")));
        assert_eq!(describe_node(&node("Unknown")), "Ready Unknown (R)");
        let bare: Node =
            serde_yaml::from_str("apiVersion: v1\nkind: Node\nmetadata: {name: n}\n").unwrap();
        assert!(!is_node_ready(&bare));
    }

    #[test]
    fn conditions_name_what_they_await_and_describe_what_they_saw() {
        let p = pod(POD);
        assert_eq!(pod_ready().judge(Some(&p)), Step::Done);
        assert_eq!(pod_ready().judge(None), Step::Pending);
        assert_eq!(pod_ready().describe(None), "not found");
        assert_eq!(pod_gone("u1").judge(Some(&p)), Step::Pending);
        assert_eq!(pod_gone("u0").judge(Some(&p)), Step::Done);
        assert_eq!(pod_gone("u1").judge(None), Step::Done);
        assert_eq!(pod_recreated("u1").judge(Some(&p)), Step::Pending);
        assert_eq!(pod_recreated("u0").judge(Some(&p)), Step::Done);
        assert_eq!(
            pod_recreated("u0").what,
            "pod recreated (uid other than u0) and Ready"
        );
        let s = sts(STS_READY);
        assert_eq!(statefulset_ready(3).judge(Some(&s)), Step::Done);
        assert_eq!(statefulset_ready(3).what, "3 ready replicas");
        assert_eq!(
            statefulset_ready(3).describe(Some(&s)),
            "readyReplicas 3/3, spec.replicas 3, observedGeneration 2/2"
        );
    }
}
