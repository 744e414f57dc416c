//! The History: every change the harness observed, every action it took and every
//! write/read the workload made, in the order the harness saw them.
//!
//! It is the single source of truth for the checkers (`crate::checkers`), which never talk
//! to the cluster. Snapshots are small, already-extracted states (not raw objects), so
//! checker tests can build histories by hand.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A shared, append-only, ordered log. Cloning shares the same log.
#[derive(Clone, Debug)]
pub struct History {
    inner: Arc<Mutex<Vec<Entry>>>,
    start: Instant,
    on_action: Arc<OnceLock<StepHook>>,
}

/// Called with each action's step line as it is recorded (see [`History::on_action`]).
struct StepHook(Box<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for StepHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepHook")
    }
}

/// One recorded event: its position, when it was observed (monotonic, since the
/// history started) and what it was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at: Duration,
    pub event: Event,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A watch observed an object being added/modified (`Applied`) or removed (`Deleted`).
    Object { change: Change, object: Snapshot },
    /// Something the harness did to the cluster, recorded just before doing it.
    Action(Action),
    /// A workload write, Jepsen style: `invoked` first, then exactly one of ok/fail/info.
    Write(WriteEvent),
    /// A full read of the rows table of one ordinal.
    Read(ReadResult),
    /// The workload completed a MySQL handshake with one pod's mysqld (see [`Connection`]).
    Connected(Connection),
    /// A DNS name looked up from inside a pod of the set (see [`Resolution`]).
    Resolved(Resolution),
    /// A consistent logical backup of one ordinal's rows table (see [`Backup`]).
    Backup(Backup),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Applied,
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Snapshot {
    Pod(PodState),
    PersistentVolumeClaim(PvcState),
    PersistentVolume(PvState),
    StatefulSet(StsState),
    Node(NodeState),
    Service(ServiceState),
    EndpointSlice(EndpointSliceState),
    ControllerRevision(ControllerRevisionState),
}

impl Snapshot {
    pub fn name(&self) -> &str {
        match self {
            Snapshot::Pod(s) => &s.name,
            Snapshot::PersistentVolumeClaim(s) => &s.name,
            Snapshot::PersistentVolume(s) => &s.name,
            Snapshot::StatefulSet(s) => &s.name,
            Snapshot::Node(s) => &s.name,
            Snapshot::Service(s) => &s.name,
            Snapshot::EndpointSlice(s) => &s.name,
            Snapshot::ControllerRevision(s) => &s.name,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodState {
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub hostname: Option<String>,
    pub subdomain: Option<String>,
    pub node_name: Option<String>,
    /// `status.phase` (Pending, Running, ...).
    pub phase: Option<String>,
    /// The `Ready` condition is True.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// Sum of `containerStatuses[].restartCount`.
    pub restart_count: i32,
    /// volume name -> PVC claim name, for every PVC-backed volume.
    pub claims: BTreeMap<String, String>,
    /// The controller ownerReference's uid, if any.
    pub owner_uid: Option<String>,
    /// `status.podIP`: the address its EndpointSlice endpoint must carry. Absent from
    /// histories recorded before it was observed.
    #[serde(default)]
    pub pod_ip: Option<String>,
    /// `metadata.annotations`: a pod made from a changed template carries the template's
    /// annotations (see [`TemplateAnnotation`]). Empty in histories recorded before.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The label the StatefulSet controller puts on each pod: the revision (ControllerRevision
/// name) of the template the pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

impl PodState {
    /// The pod's `controller-revision-hash` label.
    pub fn revision(&self) -> Option<&str> {
        self.labels.get(REVISION_LABEL).map(String::as_str)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PvcState {
    pub name: String,
    pub uid: String,
    /// `status.phase` (Pending, Bound, Lost).
    pub phase: Option<String>,
    /// `spec.volumeName`: the bound PV.
    pub volume_name: Option<String>,
    /// `spec.resources.requests.storage`, as written (e.g. `1Gi`).
    pub storage_request: Option<String>,
    pub access_modes: Vec<String>,
    pub storage_class: Option<String>,
    pub terminating: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PvState {
    pub name: String,
    pub uid: String,
    pub phase: Option<String>,
    /// `spec.claimRef` as `namespace/name`.
    pub claim: Option<String>,
    pub claim_uid: Option<String>,
    pub reclaim_policy: Option<String>,
    /// Node the PV is pinned to through `spec.nodeAffinity` (hostname term), if any.
    pub node: Option<String>,
    /// `metadata.deletionTimestamp` is set (absent in older histories).
    #[serde(default)]
    pub terminating: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StsState {
    pub name: String,
    pub uid: String,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    pub replicas: i32,
    pub ready_replicas: i32,
    pub current_replicas: i32,
    pub pod_management_policy: Option<String>,
    pub service_name: Option<String>,
    /// `status.currentRevision`: the revision of the pods below the partition (equal to
    /// `update_revision` once a rollout completed).
    #[serde(default)]
    pub current_revision: Option<String>,
    /// `status.updateRevision`: the revision of the current pod template.
    #[serde(default)]
    pub update_revision: Option<String>,
    /// `status.updatedReplicas`.
    #[serde(default)]
    pub updated_replicas: i32,
    /// `spec.updateStrategy.type` (RollingUpdate, OnDelete).
    #[serde(default)]
    pub update_strategy: Option<String>,
    /// `spec.updateStrategy.rollingUpdate.partition`.
    #[serde(default)]
    pub partition: Option<i32>,
    /// `spec.ordinals.start`.
    #[serde(default)]
    pub ordinals_start: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub ready: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceState {
    pub name: String,
    /// `spec.clusterIP`; `None` (the string) for a headless Service.
    pub cluster_ip: Option<String>,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointSliceState {
    pub name: String,
    /// The `kubernetes.io/service-name` label.
    pub service: Option<String>,
    pub endpoints: Vec<EndpointState>,
}

/// A ControllerRevision (apps/v1): one pod template of a StatefulSet, by the name its
/// status and its pods' `controller-revision-hash` label use.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ControllerRevisionState {
    pub name: String,
    pub uid: String,
    /// `revision`: the controller numbers each new template one higher than the last.
    pub revision: i64,
    /// The name of the StatefulSet its controller ownerReference names, if any.
    pub owner: Option<String>,
    /// That ownerReference's uid: which StatefulSet of that name owns it (a set deleted
    /// and created again under the same name is another owner). None in older histories.
    #[serde(default)]
    pub owner_uid: Option<String>,
}

/// One endpoint of an EndpointSlice. Fields added after the first recorded histories
/// default when absent, so old histories still load (and then fail the DNS check rather
/// than pass it: an endpoint without a target uid proves no pod's identity).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointState {
    pub hostname: Option<String>,
    /// `conditions.ready` is true (absent counts as false here).
    #[serde(default)]
    pub ready: bool,
    /// `targetRef.name` (the pod).
    pub target: Option<String>,
    /// `targetRef.uid`: which incarnation of the pod the endpoint stands for.
    #[serde(default)]
    pub target_ref_uid: Option<String>,
    /// `addresses`: the pod IPs the DNS name resolves to.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// What the harness did. Checkers use these as window markers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Free-form phase marker ("scale 3->5 via scale subresource").
    Mark {
        label: String,
    },
    Apply {
        objects: Vec<String>,
    },
    Scale {
        statefulset: String,
        from: i32,
        to: i32,
        via: String,
    },
    DeletePod {
        pod: String,
        uid: String,
        grace_seconds: Option<i64>,
    },
    CrashContainer {
        pod: String,
        uid: String,
    },
    /// An abrupt stop of a node (kind: `docker kill` of its container, a process-level
    /// crash, not a power cut; the test's report notes what the target's kill really is).
    StopNode {
        node: String,
    },
    StartNode {
        node: String,
    },
    /// The pod template of a StatefulSet changed (a new revision), e.g. an annotation.
    ChangeTemplate {
        statefulset: String,
        change: String,
        /// The annotation the change set on the template, which every pod made from the
        /// new template carries (so a rollout is judged by what the pods are made of, not
        /// only by their `controller-revision-hash` label). None in older histories.
        #[serde(default)]
        annotation: Option<TemplateAnnotation>,
    },
    /// `spec.updateStrategy` set: its type and, for RollingUpdate, the partition.
    SetUpdateStrategy {
        statefulset: String,
        strategy: String,
        partition: Option<i32>,
    },
    /// A taint added to (`added`) or removed from a Node, as `key=value:effect`.
    TaintNode {
        node: String,
        taint: String,
        added: bool,
    },
}

/// An annotation a template change set on a StatefulSet's pod template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateAnnotation {
    pub key: String,
    pub value: String,
}

impl TemplateAnnotation {
    /// Whether `pod` carries this annotation with this value.
    pub fn carried_by(&self, pod: &PodState) -> bool {
        pod.annotations.get(&self.key) == Some(&self.value)
    }
}

impl std::fmt::Display for TemplateAnnotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "annotation {}={}", self.key, self.value)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Mark { label } => f.write_str(label),
            Action::Apply { objects } => write!(f, "apply {}", objects.join(", ")),
            Action::Scale {
                statefulset,
                from,
                to,
                via,
            } => write!(f, "scale {statefulset} {from}->{to} via {via}"),
            Action::DeletePod {
                pod,
                uid,
                grace_seconds,
            } => match grace_seconds {
                Some(grace) => write!(f, "delete pod {pod} (uid {uid}) with grace {grace} s"),
                None => write!(f, "delete pod {pod} (uid {uid})"),
            },
            Action::CrashContainer { pod, uid } => {
                write!(f, "crash the container of pod {pod} (uid {uid})")
            }
            Action::ChangeTemplate {
                statefulset,
                change,
                ..
            } => write!(f, "change the pod template of {statefulset}: {change}"),
            Action::SetUpdateStrategy {
                statefulset,
                strategy,
                partition,
            } => match partition {
                Some(p) => write!(
                    f,
                    "set {statefulset} updateStrategy {strategy}, partition {p}"
                ),
                None => write!(f, "set {statefulset} updateStrategy {strategy}"),
            },
            Action::StopNode { node } => write!(f, "kill node {node} (abrupt stop)"),
            Action::StartNode { node } => write!(f, "start node {node}"),
            Action::TaintNode { node, taint, added } => {
                let verb = if *added { "taint" } else { "untaint" };
                write!(f, "{verb} node {node} {taint}")
            }
        }
    }
}

/// What the harness did, one line per action: `seq N at S s: action`.
pub fn steps(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Action(action) => Some(step_line(e.seq, e.at, action)),
            _ => None,
        })
        .collect()
}

fn step_line(seq: u64, at: Duration, action: &dyn std::fmt::Display) -> String {
    format!("seq {seq} at {:.2} s: {action}", at.as_secs_f64())
}

/// A row as written and as read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub id: u64,
    pub ordinal: u32,
    /// The uid of the pod that served the write.
    pub pod_uid: String,
    pub payload: String,
    pub checksum: u32,
}

/// The checksum the workload stores with every row: FNV-1a (32 bit) over
/// `"<id>|<ordinal>|<payload>"`, so a row moved to another id or ordinal no longer matches.
pub fn row_checksum(id: u64, ordinal: u32, payload: &str) -> u32 {
    fnv1a32(format!("{id}|{ordinal}|{payload}").as_bytes())
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    bytes.iter().fold(OFFSET_BASIS, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(PRIME)
    })
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum WriteEvent {
    Invoked {
        row: Row,
    },
    /// Acknowledged by MySQL (COMMIT returned OK).
    Ok {
        id: u64,
    },
    /// Definitely not applied.
    Fail {
        id: u64,
        error: String,
    },
    /// Outcome unknown (timeout, dropped connection).
    Info {
        id: u64,
        error: String,
    },
}

/// A MySQL handshake the workload completed with one pod's mysqld: the server's greeting
/// and authentication succeeded, so the session can run statements.
///
/// Recorded by the workload right after that success, and only when the session's pod uid
/// is known for certain: the uid the port-forward resolved before the handshake equals the
/// one read after it (issue 9, point 2). With a different or unknown uid nothing is
/// recorded. Recorded once per session, not per statement.
///
/// Meaning: at this point in the history the container of pod `pod_uid` ran a mysqld that
/// accepted connections, which it does only once its storage engine opened (and locked)
/// its data files. So it is proof that the pod served, which `Ready` alone is not: the
/// documented StatefulSet has no readiness probe, so a pod is Ready before mysqld can
/// lock its data files (`crate::checkers::at_most_one` counts Ready only together with
/// this).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub ordinal: u32,
    /// The pod name the connection was made to (`<sts>-<ordinal>`).
    pub pod: String,
    /// The uid of that pod, the same before and after the handshake.
    pub pod_uid: String,
}

/// One DNS lookup made from inside a pod of the StatefulSet (`getent hosts <name>` run in
/// its container), recorded when the lookup ran to an answer: the name's addresses, or
/// `error` when it did not resolve. A lookup the harness could not run at all (exec
/// refused, timed out) is a failed step, not a resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The pod the lookup ran in.
    pub from_pod: String,
    /// The name looked up (`<pod>.<service>.<namespace>.svc.<cluster domain>`).
    pub name: String,
    /// The addresses it resolved to, in the resolver's order.
    pub addresses: Vec<String>,
    /// Why it did not resolve (e.g. `not found`); None when it did.
    pub error: Option<String>,
}

/// A consistent logical backup of one ordinal's rows table, taken through the workload's
/// MySQL connection in one transaction (`START TRANSACTION WITH CONSISTENT SNAPSHOT`).
///
/// `position` is the seq recorded on that connection just before the snapshot began: a
/// write whose `ok` has a lower seq committed before the snapshot, so the backup must hold
/// it. Writes acknowledged later may be in it or not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    pub ordinal: u32,
    /// The pod the backup was read from (`<sts>-<ordinal>`).
    pub pod: String,
    pub pod_uid: String,
    /// The backup's position: the seq of the mark made just before its snapshot began.
    pub position: u64,
    /// The rows the snapshot held, in id order.
    pub rows: Vec<Row>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadResult {
    pub ordinal: u32,
    pub pod: String,
    pub pod_uid: String,
    pub rows: Vec<Row>,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Vec::new())),
            start: Instant::now(),
            on_action: Arc::new(OnceLock::new()),
        }
    }

    /// Appends an event and returns its sequence number.
    pub fn record(&self, event: Event) -> u64 {
        self.push(event).0
    }

    fn push(&self, event: Event) -> (u64, Duration) {
        let at = self.start.elapsed();
        let mut log = self.lock();
        let seq = log.len() as u64;
        log.push(Entry { seq, at, event });
        (seq, at)
    }

    /// Records what the harness did and passes its step line to the hook, if one is set.
    pub fn action(&self, action: Action) -> u64 {
        let Some(hook) = self.on_action.get() else {
            return self.record(Event::Action(action));
        };
        let described = action.to_string();
        let (seq, at) = self.push(Event::Action(action));
        (hook.0)(&step_line(seq, at, &described));
        seq
    }

    /// Sets the one hook that sees each action's step line as it is recorded, so a test
    /// can log its steps from its own crate (where its log capture listens). Returns
    /// false, leaving the first hook, if one was already set.
    pub fn on_action(&self, hook: impl Fn(&str) + Send + Sync + 'static) -> bool {
        self.on_action.set(StepHook(Box::new(hook))).is_ok()
    }

    pub fn mark(&self, label: impl Into<String>) -> u64 {
        self.action(Action::Mark {
            label: label.into(),
        })
    }

    /// A copy of every entry recorded so far.
    pub fn snapshot(&self) -> Vec<Entry> {
        self.lock().clone()
    }

    /// A copy of the entries with `seq >= from`.
    pub fn since(&self, from: u64) -> Vec<Entry> {
        self.lock()
            .iter()
            .filter(|e| e.seq >= from)
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds a history from hand-made events (for checker tests), one per millisecond.
    pub fn from_events(events: impl IntoIterator<Item = Event>) -> Vec<Entry> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Entry {
                seq: i as u64,
                at: Duration::from_millis(i as u64),
                event,
            })
            .collect()
    }

    // A poisoned lock only means a recorder panicked mid-push of a complete entry;
    // the log itself is still consistent, so keep using it.
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn checksum_binds_id_ordinal_and_payload() {
        let c = row_checksum(1, 0, "abc");
        assert_eq!(c, fnv1a32(b"1|0|abc"));
        assert_ne!(c, row_checksum(2, 0, "abc"));
        assert_ne!(c, row_checksum(1, 1, "abc"));
        assert_ne!(c, row_checksum(1, 0, "abd"));
    }

    #[test]
    fn records_in_order_with_sequence_numbers() {
        let h = History::new();
        let a = h.mark("first");
        let b = h.mark("second");
        assert_eq!((a, b), (0, 1));
        let entries = h.snapshot();
        assert_eq!(entries.len(), 2);
        assert!(entries[0].at <= entries[1].at);
        assert_eq!(h.since(1).len(), 1);
    }

    #[test]
    fn steps_list_only_actions_with_their_seq_and_time() {
        let entries = History::from_events([
            Event::Write(WriteEvent::Ok { id: 1 }),
            Event::Action(Action::Scale {
                statefulset: "mysql".into(),
                from: 5,
                to: 3,
                via: "scale subresource".into(),
            }),
            Event::Action(Action::DeletePod {
                pod: "mysql-1".into(),
                uid: "u1".into(),
                grace_seconds: Some(0),
            }),
            Event::Action(Action::TaintNode {
                node: "w2".into(),
                taint: "k=v:NoExecute".into(),
                added: false,
            }),
        ]);
        assert_eq!(
            steps(&entries),
            [
                "seq 1 at 0.00 s: scale mysql 5->3 via scale subresource",
                "seq 2 at 0.00 s: delete pod mysql-1 (uid u1) with grace 0 s",
                "seq 3 at 0.00 s: untaint node w2 k=v:NoExecute",
            ]
        );
    }

    #[test]
    fn the_step_hook_sees_each_action_once_with_its_seq() {
        let h = History::new();
        h.record(Event::Write(WriteEvent::Ok { id: 1 }));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        assert!(h.on_action(move |line| sink.lock().expect("lock").push(line.to_string())));
        assert!(!h.on_action(|_| {}), "a second hook is refused");
        h.record(Event::Write(WriteEvent::Ok { id: 2 }));
        h.clone().action(Action::StopNode { node: "w2".into() });
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].starts_with("seq 2 at "), "{seen:?}");
        assert!(
            seen[0].ends_with(" s: kill node w2 (abrupt stop)"),
            "{seen:?}"
        );
        assert_eq!(steps(&h.snapshot()), seen);
    }

    #[test]
    fn serializes_to_tagged_json() {
        let h = History::new();
        h.record(Event::Write(WriteEvent::Ok { id: 7 }));
        let json = serde_json::to_string(&h.snapshot()).expect("serialize");
        assert!(json.contains(r#""type":"write""#), "{json}");
        assert!(json.contains(r#""outcome":"ok""#), "{json}");
    }

    #[test]
    fn handshakes_serialize_as_their_own_event() {
        let event = Event::Connected(Connection {
            ordinal: 1,
            pod: "mysql-1".into(),
            pod_uid: "u1".into(),
        });
        let json = serde_json::to_string(&event).expect("serialize");
        assert_eq!(
            json,
            r#"{"type":"connected","ordinal":1,"pod":"mysql-1","pod_uid":"u1"}"#
        );
        let back: Event = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, event);
    }

    #[test]
    fn lookups_serialize_as_their_own_event() {
        let event = Event::Resolved(Resolution {
            from_pod: "mysql-0".into(),
            name: "mysql-1.mysql.ns.svc.cluster.local".into(),
            addresses: vec!["10.0.0.11".into()],
            error: None,
        });
        let json = serde_json::to_string(&event).expect("serialize");
        assert_eq!(
            json,
            r#"{"type":"resolved","from_pod":"mysql-0","name":"mysql-1.mysql.ns.svc.cluster.local","addresses":["10.0.0.11"],"error":null}"#
        );
        let back: Event = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, event);
    }

    #[test]
    fn histories_recorded_before_the_identity_fields_still_load() {
        let pod: PodState = serde_json::from_str(
            r#"{"name":"mysql-0","uid":"u0","labels":{},"hostname":null,"subdomain":null,
                "node_name":null,"phase":"Running","ready":true,"terminating":false,
                "restart_count":0,"claims":{},"owner_uid":null}"#,
        )
        .expect("old pod state");
        assert_eq!(pod.pod_ip, None);
        let endpoint: EndpointState =
            serde_json::from_str(r#"{"hostname":"mysql-0","target":"mysql-0"}"#)
                .expect("old endpoint state");
        assert_eq!(
            endpoint,
            EndpointState {
                hostname: Some("mysql-0".into()),
                target: Some("mysql-0".into()),
                ..EndpointState::default()
            }
        );
    }
}
