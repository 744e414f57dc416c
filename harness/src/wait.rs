//! Watch-driven waits, each bounded by a named timeout, and the pure conditions they use.
//!
//! A wait watches one object (`kube::runtime::watcher::watch_object`) and re-evaluates its
//! condition on every change; on timeout the error names what was awaited, on which
//! object, the timeout, and the last state seen. Status is trusted only once
//! `observedGeneration` has caught up with `generation`.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Debug;
use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watch_object, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::debug;

use crate::target::TargetKind;

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(
        "timed out after {}s waiting for {what} on {object}; last state seen: {last_state}",
        timeout.as_secs_f64()
    )]
    Timeout {
        what: String,
        object: String,
        timeout: Duration,
        last_state: String,
    },
    #[error("failed waiting for {what} on {object}: {reason}")]
    Impossible {
        what: String,
        object: String,
        reason: String,
    },
    #[error("failed waiting for {what} on {object}: the watch stream ended")]
    WatchEnded { what: String, object: String },
}

impl WaitError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, WaitError::Timeout { .. })
    }
}

/// Named bounds for every wait. Defaults suit kind (image pulls, a node marked NotReady
/// after ~40 s); [`Timeouts::for_target`] picks per target and applies `E2E_TIMEOUT_SCALE`.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeouts {
    /// All replicas Ready with observedGeneration caught up (includes image pulls).
    pub statefulset_ready: Duration,
    pub pod_ready: Duration,
    /// A deleted pod (graceful termination, 30 s by default) has disappeared.
    pub pod_gone: Duration,
    pub pvc_bound: Duration,
    /// A stopped node is marked NotReady (node-monitor-grace-period ~40 s, plus margin).
    pub node_not_ready: Duration,
    pub node_ready: Duration,
    /// mysqld accepts connections after its pod is Ready (there is no readiness probe).
    pub mysql_ready: Duration,
}

impl Timeouts {
    /// Defaults for a real cluster created by kind.
    pub fn kind_defaults() -> Timeouts {
        Timeouts {
            statefulset_ready: Duration::from_secs(600),
            pod_ready: Duration::from_secs(300),
            pod_gone: Duration::from_secs(180),
            pvc_bound: Duration::from_secs(180),
            node_not_ready: Duration::from_secs(120),
            node_ready: Duration::from_secs(180),
            mysql_ready: Duration::from_secs(300),
        }
    }

    /// Defaults for kube-sim: no image pulls, fast node monitor, but a shared 2-core
    /// machine starting MariaDB servers.
    pub fn sim_defaults() -> Timeouts {
        Timeouts {
            statefulset_ready: Duration::from_secs(180),
            pod_ready: Duration::from_secs(90),
            pod_gone: Duration::from_secs(60),
            pvc_bound: Duration::from_secs(60),
            node_not_ready: Duration::from_secs(60),
            node_ready: Duration::from_secs(60),
            mysql_ready: Duration::from_secs(120),
        }
    }

    /// Defaults for `kind` unscaled; an existing cluster gets kind's defaults too.
    pub fn defaults_for(target: TargetKind) -> Timeouts {
        match target {
            TargetKind::Sim => Timeouts::sim_defaults(),
            TargetKind::Kind | TargetKind::Kubeconfig => Timeouts::kind_defaults(),
        }
    }

    /// The target's defaults scaled by `E2E_TIMEOUT_SCALE` (a positive float; an invalid
    /// value is reported and ignored).
    pub fn for_target(target: TargetKind) -> Timeouts {
        let scale = match std::env::var("E2E_TIMEOUT_SCALE") {
            Ok(raw) => parse_scale(&raw).unwrap_or_else(|reason| {
                tracing::warn!("ignoring E2E_TIMEOUT_SCALE={raw:?}: {reason}");
                1.0
            }),
            Err(_) => 1.0,
        };
        Timeouts::defaults_for(target).scaled(scale)
    }

    /// Every timeout multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> Timeouts {
        let s = |d: Duration| d.mul_f64(factor);
        Timeouts {
            statefulset_ready: s(self.statefulset_ready),
            pod_ready: s(self.pod_ready),
            pod_gone: s(self.pod_gone),
            pvc_bound: s(self.pvc_bound),
            node_not_ready: s(self.node_not_ready),
            node_ready: s(self.node_ready),
            mysql_ready: s(self.mysql_ready),
        }
    }
}

/// Parses a timeout scale: a finite float > 0.
pub fn parse_scale(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err("expected a positive number such as 0.5 or 2".to_owned()),
    }
}

// ---------------------------------------------------------------------------------------
// Pure conditions

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

// ---------------------------------------------------------------------------------------
// Waits

/// What one observation of the watched object means for a wait.
enum Step<T> {
    Done(T),
    Pending,
    /// The awaited state can no longer happen (e.g. the pod was replaced, not restarted).
    Impossible(String),
}

/// The last state a wait observed, and the watch error that followed it, if any.
struct LastSeen {
    state: String,
    error: Option<String>,
}

impl Default for LastSeen {
    fn default() -> Self {
        LastSeen {
            state: "nothing observed yet".to_owned(),
            error: None,
        }
    }
}

impl LastSeen {
    fn state(&mut self, state: String) {
        self.state = state;
        self.error = None;
    }

    fn error(&mut self, err: watcher::Error) {
        self.error = Some(err.to_string());
    }
}

impl std::fmt::Display for LastSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            Some(err) => write!(f, "{} (then watch error: {err})", self.state),
            None => f.write_str(&self.state),
        }
    }
}

/// `Kind namespace/name`, for errors.
fn object_label<K>(api: &Api<K>, name: &str) -> String
where
    K: Resource<DynamicType = ()>,
{
    match api.namespace() {
        Some(ns) => format!("{} {ns}/{name}", K::kind(&())),
        None => format!("{} {name}", K::kind(&())),
    }
}

/// Watches `name` until `step` says done, bounded by `timeout`. `describe` renders the
/// last state for the timeout error.
async fn wait_for_object<K, T>(
    api: &Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    mut step: impl FnMut(Option<&K>) -> Step<T>,
    describe: impl Fn(Option<&K>) -> String,
) -> Result<T, WaitError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let object = object_label(api, name);
    let mut last = LastSeen::default();
    let watch = async {
        let mut stream = pin!(watch_object(api.clone(), name).default_backoff());
        while let Some(item) = stream.next().await {
            match item {
                Ok(seen) => {
                    last.state(describe(seen.as_ref()));
                    debug!(%object, what, state = %last, "observed");
                    match step(seen.as_ref()) {
                        Step::Done(value) => return Ok(value),
                        Step::Pending => {}
                        Step::Impossible(reason) => {
                            return Err(WaitError::Impossible {
                                what: what.to_owned(),
                                object: object.clone(),
                                reason,
                            });
                        }
                    }
                }
                Err(err) => last.error(err),
            }
        }
        Err(WaitError::WatchEnded {
            what: what.to_owned(),
            object: object.clone(),
        })
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(result) => result,
        Err(_) => Err(WaitError::Timeout {
            what: what.to_owned(),
            object,
            timeout,
            last_state: last.to_string(),
        }),
    }
}

fn absent_or<K>(describe: impl Fn(&K) -> String) -> impl Fn(Option<&K>) -> String {
    move |seen| seen.map_or_else(|| "not found".to_owned(), &describe)
}

/// Waits until the StatefulSet reports `replicas` Ready replicas for its latest spec.
pub async fn wait_for_statefulset_ready(
    api: &Api<StatefulSet>,
    name: &str,
    replicas: i32,
    timeout: Duration,
) -> Result<StatefulSet, WaitError> {
    wait_for_object(
        api,
        name,
        &format!("{replicas} ready replicas"),
        timeout,
        |seen| match seen {
            Some(sts) if is_statefulset_ready(sts, replicas) => Step::Done(sts.clone()),
            _ => Step::Pending,
        },
        absent_or(|sts| describe_statefulset(sts, replicas)),
    )
    .await
}

/// Waits until the pod exists and is Ready (whatever its uid).
pub async fn wait_for_pod_ready(
    api: &Api<Pod>,
    name: &str,
    timeout: Duration,
) -> Result<Pod, WaitError> {
    wait_for_object(
        api,
        name,
        "pod Ready",
        timeout,
        |seen| match seen {
            Some(pod) if is_pod_ready(pod) => Step::Done(pod.clone()),
            _ => Step::Pending,
        },
        absent_or(describe_pod),
    )
    .await
}

/// Waits until the pod with `uid` is gone: not found, or replaced by one with another uid.
pub async fn wait_for_pod_gone(
    api: &Api<Pod>,
    name: &str,
    uid: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    wait_for_object(
        api,
        name,
        &format!("pod uid {uid} gone"),
        timeout,
        |seen| match seen {
            Some(pod) if pod.metadata.uid.as_deref() == Some(uid) => Step::Pending,
            _ => Step::Done(()),
        },
        absent_or(describe_pod),
    )
    .await
}

/// Waits until a pod of that name with a uid other than `old_uid` is Ready.
pub async fn wait_for_pod_recreated(
    api: &Api<Pod>,
    name: &str,
    old_uid: &str,
    timeout: Duration,
) -> Result<Pod, WaitError> {
    wait_for_object(
        api,
        name,
        &format!("pod recreated (uid other than {old_uid}) and Ready"),
        timeout,
        |seen| match seen {
            Some(pod) if pod.metadata.uid.as_deref() != Some(old_uid) && is_pod_ready(pod) => {
                Step::Done(pod.clone())
            }
            _ => Step::Pending,
        },
        absent_or(describe_pod),
    )
    .await
}

/// Waits until the same pod (`uid`) has restarted its containers at least
/// `min_restart_count` times in total and is Ready again. Fails at once if the pod was
/// replaced or deleted, since an in-place restart can then no longer happen.
pub async fn wait_for_pod_restarted(
    api: &Api<Pod>,
    name: &str,
    uid: &str,
    min_restart_count: i32,
    timeout: Duration,
) -> Result<Pod, WaitError> {
    wait_for_object(
        api,
        name,
        &format!("pod uid {uid} restarted in place (restarts >= {min_restart_count}) and Ready"),
        timeout,
        |seen| restarted_step(seen, uid, min_restart_count),
        absent_or(describe_pod),
    )
    .await
}

fn restarted_step(seen: Option<&Pod>, uid: &str, min_restart_count: i32) -> Step<Pod> {
    match seen {
        None => Step::Impossible(format!("the pod (uid {uid}) was deleted")),
        Some(pod) if pod.metadata.uid.as_deref() != Some(uid) => Step::Impossible(format!(
            "the pod was replaced (now uid {}) instead of restarted in place",
            pod.metadata.uid.as_deref().unwrap_or("?")
        )),
        Some(pod) if pod_restart_count(pod) >= min_restart_count && is_pod_ready(pod) => {
            Step::Done(pod.clone())
        }
        Some(_) => Step::Pending,
    }
}

pub async fn wait_for_pvc_bound(
    api: &Api<PersistentVolumeClaim>,
    name: &str,
    timeout: Duration,
) -> Result<PersistentVolumeClaim, WaitError> {
    wait_for_object(
        api,
        name,
        "PVC Bound",
        timeout,
        |seen| match seen {
            Some(pvc) if is_pvc_bound(pvc) => Step::Done(pvc.clone()),
            _ => Step::Pending,
        },
        absent_or(describe_pvc),
    )
    .await
}

pub async fn wait_for_node_ready(
    api: &Api<Node>,
    name: &str,
    timeout: Duration,
) -> Result<Node, WaitError> {
    wait_for_object(
        api,
        name,
        "node Ready",
        timeout,
        |seen| match seen {
            Some(node) if is_node_ready(node) => Step::Done(node.clone()),
            _ => Step::Pending,
        },
        absent_or(describe_node),
    )
    .await
}

/// Waits until the node's Ready condition is not True (False or Unknown).
pub async fn wait_for_node_not_ready(
    api: &Api<Node>,
    name: &str,
    timeout: Duration,
) -> Result<Node, WaitError> {
    wait_for_object(
        api,
        name,
        "node NotReady",
        timeout,
        |seen| match seen {
            Some(node) if !is_node_ready(node) => Step::Done(node.clone()),
            _ => Step::Pending,
        },
        absent_or(describe_node),
    )
    .await
}

/// Waits until none of the named pods exists (in the api's scope).
pub async fn wait_for_pods_absent(
    api: &Api<Pod>,
    names: &[&str],
    timeout: Duration,
) -> Result<(), WaitError> {
    wait_for_absent(api, names, timeout).await
}

/// Waits until none of the named objects of kind `K` exists (in the api's scope).
pub async fn wait_for_absent<K>(
    api: &Api<K>,
    names: &[&str],
    timeout: Duration,
) -> Result<(), WaitError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let wanted: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
    let kind = K::kind(&()).to_string();
    let what = format!("{kind} absent: {}", join(&wanted));
    let object = match api.namespace() {
        Some(ns) => format!("{kind} objects in namespace {ns}"),
        None => format!("{kind} objects"),
    };
    let mut tracker = PresenceTracker::default();
    let mut last = LastSeen::default();
    let watch = async {
        let mut stream = pin!(watcher(api.clone(), watcher::Config::default()).default_backoff());
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    tracker.observe(event.map_name());
                    if let Some(present) = tracker.present_of(&wanted) {
                        if present.is_empty() {
                            return Ok(());
                        }
                        last.state(format!("still present: {}", join(&present)));
                    }
                }
                Err(err) => last.error(err),
            }
        }
        Err(WaitError::WatchEnded {
            what: what.clone(),
            object: object.clone(),
        })
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(result) => result,
        Err(_) => Err(WaitError::Timeout {
            what,
            object,
            timeout,
            last_state: last.to_string(),
        }),
    }
}

fn join(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// A watcher event reduced to object names.
#[derive(Debug)]
enum NameEvent {
    Init,
    InitApply(String),
    InitDone,
    Apply(String),
    Delete(String),
}

trait MapName {
    fn map_name(self) -> NameEvent;
}

impl<K: ResourceExt> MapName for Event<K> {
    fn map_name(self) -> NameEvent {
        match self {
            Event::Init => NameEvent::Init,
            Event::InitApply(o) => NameEvent::InitApply(o.name_any()),
            Event::InitDone => NameEvent::InitDone,
            Event::Apply(o) => NameEvent::Apply(o.name_any()),
            Event::Delete(o) => NameEvent::Delete(o.name_any()),
        }
    }
}

/// The set of existing object names, rebuilt atomically on every (re)list.
#[derive(Default)]
struct PresenceTracker {
    present: HashSet<String>,
    relisting: Option<HashSet<String>>,
    listed: bool,
}

impl PresenceTracker {
    fn observe(&mut self, event: NameEvent) {
        match event {
            NameEvent::Init => self.relisting = Some(HashSet::new()),
            NameEvent::InitApply(name) => {
                self.relisting.get_or_insert_with(HashSet::new).insert(name);
            }
            NameEvent::InitDone => {
                self.present = self.relisting.take().unwrap_or_default();
                self.listed = true;
            }
            NameEvent::Apply(name) => {
                self.present.insert(name);
            }
            NameEvent::Delete(name) => {
                self.present.remove(&name);
            }
        }
    }

    /// The wanted names still present, once a full list has been seen.
    fn present_of(&self, wanted: &BTreeSet<String>) -> Option<BTreeSet<String>> {
        self.listed.then(|| {
            wanted
                .iter()
                .filter(|n| self.present.contains(*n))
                .cloned()
                .collect()
        })
    }
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
        assert!(matches!(restarted_step(Some(&p), "u1", 2), Step::Done(_)));
        assert!(matches!(restarted_step(Some(&p), "u1", 3), Step::Pending));
        assert!(matches!(
            restarted_step(Some(&p), "other", 1),
            Step::Impossible(r) if r.contains("replaced")
        ));
        assert!(matches!(restarted_step(None, "u1", 1), Step::Impossible(_)));
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
    fn timeouts_scale_and_differ_by_target() {
        let kind = Timeouts::defaults_for(TargetKind::Kind);
        let sim = Timeouts::defaults_for(TargetKind::Sim);
        assert!(sim.statefulset_ready < kind.statefulset_ready);
        assert!(kind.node_not_ready > Duration::from_secs(40));
        let half = kind.scaled(0.5);
        assert_eq!(half.pod_ready, kind.pod_ready / 2);
        assert_eq!(parse_scale("2.5"), Ok(2.5));
        assert!(parse_scale("0").is_err());
        assert!(parse_scale("-1").is_err());
        assert!(parse_scale("fast").is_err());
        assert!(parse_scale("NaN").is_err());
    }

    #[test]
    fn presence_tracker_waits_for_a_full_list() {
        let wanted: BTreeSet<String> = ["mysql-3".to_owned(), "mysql-4".to_owned()].into();
        let mut t = PresenceTracker::default();
        t.observe(NameEvent::Init);
        t.observe(NameEvent::InitApply("mysql-4".into()));
        assert_eq!(t.present_of(&wanted), None, "list not complete");
        t.observe(NameEvent::InitApply("mysql-0".into()));
        t.observe(NameEvent::InitDone);
        assert_eq!(t.present_of(&wanted), Some(["mysql-4".to_owned()].into()));
        t.observe(NameEvent::Delete("mysql-4".into()));
        assert_eq!(t.present_of(&wanted), Some(BTreeSet::new()));
        t.observe(NameEvent::Apply("mysql-3".into()));
        assert_eq!(t.present_of(&wanted), Some(["mysql-3".to_owned()].into()));
        // A relist replaces the set: mysql-3 no longer listed means deleted.
        t.observe(NameEvent::Init);
        t.observe(NameEvent::InitDone);
        assert_eq!(t.present_of(&wanted), Some(BTreeSet::new()));
    }

    #[test]
    fn timeout_error_names_everything() {
        let err = WaitError::Timeout {
            what: "3 ready replicas".into(),
            object: "StatefulSet ns/mysql".into(),
            timeout: Duration::from_secs(90),
            last_state: "readyReplicas 2/3, spec.replicas 3, observedGeneration 1/2".into(),
        };
        assert_eq!(
            err.to_string(),
            "timed out after 90s waiting for 3 ready replicas on StatefulSet ns/mysql; last state seen: readyReplicas 2/3, spec.replicas 3, observedGeneration 1/2"
        );
    }
}
