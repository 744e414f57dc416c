//! The observer: watch streams on a test namespace's Pods, PVCs, StatefulSets, Services,
//! EndpointSlices, and on the cluster's PVs (those claimed from the namespace) and Nodes.
//! Every change is appended to the [`History`] in the order observed.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use checks::history::{
    Change, EndpointSliceState, EndpointState, Event, History, NodeState, PodState, PvState,
    PvcState, ServiceState, Snapshot, StsState,
};

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// `pending` names each kind not listed yet, with its watch's last error if it had one.
    #[error(
        "failed to start watches in namespace {namespace} within {timeout:?}: {pending} not yet listed"
    )]
    StartTimeout {
        namespace: String,
        timeout: Duration,
        pending: String,
    },
    #[error(
        "failed to watch {kind} for namespace {namespace}: the API server refused it ({error}); the kubeconfig's user needs get, list and watch on {kind}"
    )]
    Forbidden {
        kind: &'static str,
        namespace: String,
        error: String,
    },
    #[error("failed to list {kind} in namespace {namespace} while settling")]
    List {
        kind: &'static str,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "observer did not catch up with the cluster within {timeout:?}; last difference: {last}"
    )]
    SettleTimeout { timeout: Duration, last: String },
}

/// What the observer last saw of one object.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    uid: String,
    resource_version: Option<String>,
    deleted: bool,
}

type SeenMap = Arc<Mutex<HashMap<(&'static str, String), Seen>>>;

/// Running watches; dropping it (or [`Observer::stop`]) ends them.
pub struct Observer {
    tasks: Vec<JoinHandle<()>>,
    seen: SeenMap,
    changed: Arc<Notify>,
    namespace: String,
}

impl Drop for Observer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Shared plumbing every watch task records through.
#[derive(Clone)]
struct Recorder {
    history: History,
    seen: SeenMap,
    changed: Arc<Notify>,
}

impl Recorder {
    fn record(&self, kind: &'static str, change: Change, meta: Meta, snapshot: Snapshot) {
        let key = (kind, snapshot.name().to_string());
        self.history.record(Event::Object {
            change,
            object: snapshot,
        });
        let seen = Seen {
            uid: meta.uid,
            resource_version: meta.resource_version,
            deleted: change == Change::Deleted,
        };
        lock(&self.seen).insert(key, seen);
        self.changed.notify_waiters();
    }
}

struct Meta {
    uid: String,
    resource_version: Option<String>,
}

fn meta_of<K: Resource>(obj: &K) -> Meta {
    Meta {
        uid: obj.meta().uid.clone().unwrap_or_default(),
        resource_version: obj.meta().resource_version.clone(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Observer {
    /// Starts every watch and returns once each has listed its initial state (so nothing
    /// the test does afterwards can be missed).
    pub async fn start(
        client: &Client,
        namespace: &str,
        history: &History,
        timeout: Duration,
    ) -> Result<Observer, ObserveError> {
        let recorder = Recorder {
            history: history.clone(),
            seen: Arc::default(),
            changed: Arc::default(),
        };
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Progress>();
        let ns = namespace.to_string();
        let claimed_here = move |pv: &PersistentVolume| pv_claimed_from(pv, &ns);
        let tasks = vec![
            spawn_watch(
                Api::<Pod>::namespaced(client.clone(), namespace),
                "Pod",
                pod_state_snapshot,
                |_| true,
                &recorder,
                &ready_tx,
            ),
            spawn_watch(
                Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace),
                "PersistentVolumeClaim",
                |o| Snapshot::PersistentVolumeClaim(pvc_state(o)),
                |_| true,
                &recorder,
                &ready_tx,
            ),
            spawn_watch(
                Api::<StatefulSet>::namespaced(client.clone(), namespace),
                "StatefulSet",
                |o| Snapshot::StatefulSet(sts_state(o)),
                |_| true,
                &recorder,
                &ready_tx,
            ),
            spawn_watch(
                Api::<Service>::namespaced(client.clone(), namespace),
                "Service",
                |o| Snapshot::Service(service_state(o)),
                |_| true,
                &recorder,
                &ready_tx,
            ),
            spawn_watch(
                Api::<EndpointSlice>::namespaced(client.clone(), namespace),
                "EndpointSlice",
                |o| Snapshot::EndpointSlice(endpoint_slice_state(o)),
                |_| true,
                &recorder,
                &ready_tx,
            ),
            spawn_watch(
                Api::<PersistentVolume>::all(client.clone()),
                "PersistentVolume",
                |o| Snapshot::PersistentVolume(pv_state(o)),
                claimed_here,
                &recorder,
                &ready_tx,
            ),
            spawn_watch(
                Api::<Node>::all(client.clone()),
                "Node",
                |o| Snapshot::Node(node_state(o)),
                |_| true,
                &recorder,
                &ready_tx,
            ),
        ];
        let mut pending = vec![
            "Pod",
            "PersistentVolumeClaim",
            "StatefulSet",
            "Service",
            "EndpointSlice",
            "PersistentVolume",
            "Node",
        ];
        let mut last_errors: HashMap<&'static str, String> = HashMap::new();
        let all_listed = async {
            while let Some(progress) = ready_rx.recv().await {
                match progress {
                    Progress::Listed(kind) => pending.retain(|k| *k != kind),
                    Progress::Failed {
                        kind,
                        error,
                        forbidden,
                    } if forbidden => {
                        return Err(ObserveError::Forbidden {
                            kind,
                            namespace: namespace.to_string(),
                            error,
                        });
                    }
                    Progress::Failed { kind, error, .. } => {
                        last_errors.insert(kind, error);
                    }
                }
                if pending.is_empty() {
                    break;
                }
            }
            Ok(())
        };
        let listed = tokio::time::timeout(timeout, all_listed).await;
        let observer = Observer {
            tasks,
            seen: recorder.seen.clone(),
            changed: recorder.changed.clone(),
            namespace: namespace.to_string(),
        };
        match listed {
            Ok(Err(forbidden)) => return Err(forbidden),
            Ok(Ok(())) if pending.is_empty() => {}
            _ => {
                let pending: Vec<String> = pending
                    .iter()
                    .map(|kind| match last_errors.get(kind) {
                        Some(error) => format!("{kind} (last error: {error})"),
                        None => kind.to_string(),
                    })
                    .collect();
                return Err(ObserveError::StartTimeout {
                    namespace: namespace.to_string(),
                    timeout,
                    pending: pending.join(", "),
                });
            }
        }
        Ok(observer)
    }

    /// Waits until the history holds the cluster's current state of the namespace's Pods,
    /// PVCs, StatefulSets and EndpointSlices (same uid and resourceVersion as a fresh list), so checkers
    /// judge the latest state and not a lagging watch.
    pub async fn settle(&self, client: &Client, timeout: Duration) -> Result<(), ObserveError> {
        let mut last;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            match self.difference(client).await? {
                None => return Ok(()),
                Some(diff) => last = diff,
            }
            // Re-check on the next observed change, or at the latest after a short
            // interval: a change the watch already delivered needs no new event.
            let wake = tokio::time::Instant::now() + Duration::from_millis(200);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake.min(deadline)) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ObserveError::SettleTimeout { timeout, last });
            }
        }
    }

    async fn difference(&self, client: &Client) -> Result<Option<String>, ObserveError> {
        let ns = &self.namespace;
        let pods = list::<Pod>(client, ns, "Pod").await?;
        let pvcs = list::<PersistentVolumeClaim>(client, ns, "PersistentVolumeClaim").await?;
        let stss = list::<StatefulSet>(client, ns, "StatefulSet").await?;
        let slices = list::<EndpointSlice>(client, ns, "EndpointSlice").await?;
        let seen = lock(&self.seen).clone();
        Ok(compare("Pod", &pods, &seen)
            .or_else(|| compare("PersistentVolumeClaim", &pvcs, &seen))
            .or_else(|| compare("StatefulSet", &stss, &seen))
            .or_else(|| compare("EndpointSlice", &slices, &seen)))
    }

    /// Ends every watch.
    pub fn stop(self) {
        drop(self)
    }
}

async fn list<K>(client: &Client, ns: &str, kind: &'static str) -> Result<Vec<K>, ObserveError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    Api::<K>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .map_err(|source| ObserveError::List {
            kind,
            namespace: ns.to_string(),
            source,
        })
}

/// The first way in which the observed state differs from a fresh list, if any.
fn compare<K: Resource>(
    kind: &'static str,
    listed: &[K],
    seen: &HashMap<(&'static str, String), Seen>,
) -> Option<String> {
    for obj in listed {
        let name = obj.meta().name.clone().unwrap_or_default();
        let meta = meta_of(obj);
        match seen.get(&(kind, name.clone())) {
            Some(s)
                if !s.deleted
                    && s.uid == meta.uid
                    && s.resource_version == meta.resource_version => {}
            other => {
                return Some(format!(
                    "{kind} {name}: cluster has uid {} rv {:?}, observer last saw {:?}",
                    meta.uid, meta.resource_version, other
                ));
            }
        }
    }
    seen.iter()
        .filter(|((k, _), s)| *k == kind && !s.deleted)
        .find(|((_, name), _)| !listed.iter().any(|o| o.meta().name.as_deref() == Some(name)))
        .map(|((_, name), s)| format!("{kind} {name} (uid {}) is gone from the cluster but its deletion was not observed yet", s.uid))
}

/// What a watch tells `start` while it waits for every initial list.
enum Progress {
    Listed(&'static str),
    Failed {
        kind: &'static str,
        error: String,
        /// The API server answered 403: retrying cannot help.
        forbidden: bool,
    },
}

/// A 403 from the API server, at any stage of a watch.
fn is_forbidden(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 403,
        watcher::Error::WatchError(status) => status.code == 403,
        _ => false,
    }
}

fn spawn_watch<K>(
    api: Api<K>,
    kind: &'static str,
    snapshot: fn(&K) -> Snapshot,
    keep: impl Fn(&K) -> bool + Send + 'static,
    recorder: &Recorder,
    ready: &mpsc::UnboundedSender<Progress>,
) -> JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let recorder = recorder.clone();
    let ready = ready.clone();
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        follow(kind, stream, snapshot, keep, &recorder, &ready).await;
    })
}

/// Records every event of one watch stream until it ends.
async fn follow<K>(
    kind: &'static str,
    stream: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    snapshot: fn(&K) -> Snapshot,
    keep: impl Fn(&K) -> bool,
    recorder: &Recorder,
    ready: &mpsc::UnboundedSender<Progress>,
) where
    K: Resource,
{
    let mut stream = std::pin::pin!(stream);
    let mut known = Known::default();
    loop {
        match stream.try_next().await {
            Ok(Some(event)) => handle(kind, event, snapshot, &keep, recorder, ready, &mut known),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(kind, error = %e, "watch error (retrying with backoff)");
                // The receiver is gone once start() returned; then only the log tells.
                let _ = ready.send(Progress::Failed {
                    kind,
                    error: e.to_string(),
                    forbidden: is_forbidden(&e),
                });
            }
        }
    }
}

/// What one watch knows to exist (name → uid and last snapshot), and the names listed so
/// far by a list in progress. A watch that falls too far behind (410 Gone) lists again:
/// objects deleted meanwhile are simply absent from the new list, with no Delete event.
#[derive(Default)]
struct Known {
    live: HashMap<String, (String, Snapshot)>,
    relisted: Option<std::collections::HashSet<String>>,
}

fn handle<K: Resource>(
    kind: &'static str,
    event: watcher::Event<K>,
    snapshot: fn(&K) -> Snapshot,
    keep: &impl Fn(&K) -> bool,
    recorder: &Recorder,
    ready: &mpsc::UnboundedSender<Progress>,
    known: &mut Known,
) {
    let (change, obj) = match event {
        watcher::Event::Apply(o) => (Change::Applied, o),
        watcher::Event::InitApply(o) => {
            if keep(&o) || followed(known, &o) {
                let name = o.meta().name.clone().unwrap_or_default();
                if let Some(listed) = &mut known.relisted {
                    listed.insert(name.clone());
                }
                // Deleted and recreated under the same name while the watch was away.
                let uid = meta_of(&o).uid;
                if let Some((old_uid, _)) = known.live.get(&name).filter(|(u, _)| *u != uid) {
                    let old_uid = old_uid.clone();
                    record_vanished(kind, &name, &old_uid, recorder, known);
                }
            }
            (Change::Applied, o)
        }
        watcher::Event::Delete(o) => (Change::Deleted, o),
        watcher::Event::Init => {
            known.relisted = Some(Default::default());
            return;
        }
        watcher::Event::InitDone => {
            // Whatever the observer knew and the new list lacks was deleted meanwhile.
            let listed = known.relisted.take().unwrap_or_default();
            let mut vanished: Vec<(String, String)> = known
                .live
                .iter()
                .filter(|(name, _)| !listed.contains(*name))
                .map(|(name, (uid, _))| (name.clone(), uid.clone()))
                .collect();
            vanished.sort();
            for (name, uid) in vanished {
                record_vanished(kind, &name, &uid, recorder, known);
            }
            // The receiver is gone once start() returned; later relists need no signal.
            let _ = ready.send(Progress::Listed(kind));
            return;
        }
    };
    if keep(&obj) || followed(known, &obj) {
        let state = snapshot(&obj);
        let name = state.name().to_string();
        match change {
            Change::Deleted => known.live.remove(&name),
            _ => known.live.insert(name, (meta_of(&obj).uid, state.clone())),
        };
        recorder.record(kind, change, meta_of(&obj), state);
    }
}

/// Whether `obj` is an object this watch already records (same name and uid): it stays
/// followed when it stops matching the filter, e.g. a retained PV whose claimRef a restore
/// clears, so its next states (Available, bound again) are recorded, not taken for a
/// deletion at the next relist.
fn followed<K: Resource>(known: &Known, obj: &K) -> bool {
    let name = obj.meta().name.as_deref().unwrap_or_default();
    known
        .live
        .get(name)
        .is_some_and(|(uid, _)| *uid == meta_of(obj).uid)
}

/// Records the deletion of an object that a relist no longer shows (its last snapshot).
fn record_vanished(
    kind: &'static str,
    name: &str,
    uid: &str,
    recorder: &Recorder,
    known: &mut Known,
) {
    let Some((_, last)) = known.live.remove(name) else {
        return;
    };
    tracing::info!(
        kind,
        name,
        uid,
        "deleted while the watch relisted: recorded as deleted"
    );
    let meta = Meta {
        uid: uid.to_string(),
        resource_version: None,
    };
    recorder.record(kind, Change::Deleted, meta, last);
}

fn pod_state_snapshot(pod: &Pod) -> Snapshot {
    Snapshot::Pod(pod_state(pod))
}

fn pv_claimed_from(pv: &PersistentVolume, namespace: &str) -> bool {
    pv.spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .and_then(|c| c.namespace.as_deref())
        == Some(namespace)
}

pub fn pod_state(pod: &Pod) -> PodState {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let restart_count = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .sum();
    let claims = spec
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            v.persistent_volume_claim
                .as_ref()
                .map(|c| (v.name.clone(), c.claim_name.clone()))
        })
        .collect();
    let owner_uid = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone());
    PodState {
        name: pod.name_any(),
        uid: pod.uid().unwrap_or_default(),
        labels: pod.labels().clone(),
        hostname: spec.and_then(|s| s.hostname.clone()),
        subdomain: spec.and_then(|s| s.subdomain.clone()),
        node_name: spec.and_then(|s| s.node_name.clone()),
        phase: status.and_then(|s| s.phase.clone()),
        ready,
        terminating: pod.metadata.deletion_timestamp.is_some(),
        restart_count,
        claims,
        owner_uid,
        pod_ip: status.and_then(|s| s.pod_ip.clone()),
    }
}

pub fn pvc_state(pvc: &PersistentVolumeClaim) -> PvcState {
    let spec = pvc.spec.as_ref();
    PvcState {
        name: pvc.name_any(),
        uid: pvc.uid().unwrap_or_default(),
        phase: pvc.status.as_ref().and_then(|s| s.phase.clone()),
        volume_name: spec.and_then(|s| s.volume_name.clone()),
        storage_request: spec
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.clone()),
        access_modes: spec
            .and_then(|s| s.access_modes.clone())
            .unwrap_or_default(),
        storage_class: spec.and_then(|s| s.storage_class_name.clone()),
        terminating: pvc.metadata.deletion_timestamp.is_some(),
    }
}

pub fn pv_state(pv: &PersistentVolume) -> PvState {
    let spec = pv.spec.as_ref();
    let claim = spec.and_then(|s| s.claim_ref.as_ref());
    let node = spec
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .and_then(|r| r.node_selector_terms.first())
        .and_then(|t| t.match_expressions.as_ref())
        .and_then(|e| e.iter().find(|e| e.key == "kubernetes.io/hostname"))
        .and_then(|e| e.values.as_ref())
        .and_then(|v| v.first().cloned());
    PvState {
        name: pv.name_any(),
        uid: pv.uid().unwrap_or_default(),
        phase: pv.status.as_ref().and_then(|s| s.phase.clone()),
        claim: claim.map(|c| {
            format!(
                "{}/{}",
                c.namespace.clone().unwrap_or_default(),
                c.name.clone().unwrap_or_default()
            )
        }),
        claim_uid: claim.and_then(|c| c.uid.clone()),
        reclaim_policy: spec.and_then(|s| s.persistent_volume_reclaim_policy.clone()),
        node,
    }
}

pub fn sts_state(sts: &StatefulSet) -> StsState {
    let spec = &sts.spec;
    let status = sts.status.as_ref();
    StsState {
        name: sts.name_any(),
        uid: sts.uid().unwrap_or_default(),
        generation: sts.metadata.generation,
        observed_generation: status.and_then(|s| s.observed_generation),
        replicas: spec.replicas.unwrap_or(1),
        ready_replicas: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        current_replicas: status.and_then(|s| s.current_replicas).unwrap_or(0),
        pod_management_policy: spec.pod_management_policy.clone(),
        service_name: spec.service_name.clone(),
        current_revision: status.and_then(|s| s.current_revision.clone()),
        update_revision: status.and_then(|s| s.update_revision.clone()),
        updated_replicas: status.and_then(|s| s.updated_replicas).unwrap_or(0),
        update_strategy: spec.update_strategy.as_ref().and_then(|u| u.type_.clone()),
        partition: spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.partition),
        ordinals_start: spec.ordinals.as_ref().and_then(|o| o.start),
    }
}

pub fn node_state(node: &Node) -> NodeState {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    NodeState {
        name: node.name_any(),
        ready,
    }
}

pub fn service_state(svc: &Service) -> ServiceState {
    let spec = svc.spec.as_ref();
    ServiceState {
        name: svc.name_any(),
        cluster_ip: spec.and_then(|s| s.cluster_ip.clone()),
        selector: spec.and_then(|s| s.selector.clone()).unwrap_or_default(),
        ports: spec
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .map(|p| p.port)
            .collect(),
    }
}

pub fn endpoint_slice_state(slice: &EndpointSlice) -> EndpointSliceState {
    let endpoints = slice
        .endpoints
        .iter()
        .flatten()
        .map(|e| EndpointState {
            hostname: e.hostname.clone(),
            ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false),
            target: e.target_ref.as_ref().and_then(|t| t.name.clone()),
            target_ref_uid: e.target_ref.as_ref().and_then(|t| t.uid.clone()),
            addresses: e.addresses.clone(),
        })
        .collect();
    EndpointSliceState {
        name: slice.name_any(),
        service: slice.labels().get("kubernetes.io/service-name").cloned(),
        endpoints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_yaml<K: DeserializeOwned>(yaml: &str) -> K {
        serde_yaml::from_str(yaml).expect("test YAML is valid")
    }

    #[test]
    fn pod_state_extracts_identity_readiness_and_claims() {
        let pod: Pod = from_yaml(
            r#"
metadata:
  name: mysql-1
  uid: u-1
  labels: {statefulset.kubernetes.io/pod-name: mysql-1}
  ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: mysql, uid: sts-1, controller: true}]
spec:
  hostname: mysql-1
  subdomain: mysql
  nodeName: w2
  containers: [{name: mysql, image: mysql:5.7}]
  volumes:
  - name: mysql-persistent-storage
    persistentVolumeClaim: {claimName: mysql-persistent-storage-mysql-1}
status:
  phase: Running
  podIP: 10.244.1.7
  conditions: [{type: Ready, status: "True"}]
  containerStatuses: [{name: mysql, ready: true, restartCount: 2, image: mysql, imageID: x}]
"#,
        );
        let s = pod_state(&pod);
        assert_eq!(s.name, "mysql-1");
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.1.7"));
        assert!(s.ready);
        assert!(!s.terminating);
        assert_eq!(s.restart_count, 2);
        assert_eq!(s.owner_uid.as_deref(), Some("sts-1"));
        assert_eq!(
            s.claims.get("mysql-persistent-storage").map(String::as_str),
            Some("mysql-persistent-storage-mysql-1")
        );
    }

    #[test]
    fn pod_without_ready_condition_is_not_ready_and_terminating_is_seen() {
        let pod: Pod = from_yaml(
            r#"
metadata: {name: mysql-0, uid: u, deletionTimestamp: "2026-01-01T00:00:00Z"}
status:
  phase: Running
  conditions: [{type: Ready, status: "False"}]
"#,
        );
        let s = pod_state(&pod);
        assert!(!s.ready);
        assert!(s.terminating);
        assert_eq!(s.pod_ip, None);
    }

    #[test]
    fn endpoint_slice_state_keeps_what_dns_identity_is_judged_on() {
        let slice: EndpointSlice = from_yaml(
            r#"
metadata: {name: mysql-abcde, labels: {kubernetes.io/service-name: mysql}}
addressType: IPv4
endpoints:
- addresses: [10.244.1.7]
  hostname: mysql-1
  conditions: {ready: true}
  targetRef: {kind: Pod, name: mysql-1, uid: u-1}
- addresses: [10.244.2.9]
  hostname: mysql-2
  targetRef: {kind: Pod, name: mysql-2}
"#,
        );
        let s = endpoint_slice_state(&slice);
        assert_eq!(s.service.as_deref(), Some("mysql"));
        assert_eq!(
            s.endpoints,
            vec![
                EndpointState {
                    hostname: Some("mysql-1".into()),
                    ready: true,
                    target: Some("mysql-1".into()),
                    target_ref_uid: Some("u-1".into()),
                    addresses: vec!["10.244.1.7".into()],
                },
                EndpointState {
                    hostname: Some("mysql-2".into()),
                    ready: false,
                    target: Some("mysql-2".into()),
                    target_ref_uid: None,
                    addresses: vec!["10.244.2.9".into()],
                },
            ]
        );
    }

    #[test]
    fn pv_state_reads_node_affinity_and_claim() {
        let pv: PersistentVolume = from_yaml(
            r#"
metadata: {name: pvc-1, uid: pv-u}
spec:
  persistentVolumeReclaimPolicy: Delete
  claimRef: {namespace: ns1, name: data-mysql-0, uid: c-1}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [kind-worker2]}]
status: {phase: Bound}
"#,
        );
        let s = pv_state(&pv);
        assert_eq!(s.node.as_deref(), Some("kind-worker2"));
        assert_eq!(s.claim.as_deref(), Some("ns1/data-mysql-0"));
        assert!(pv_claimed_from(&pv, "ns1"));
        assert!(!pv_claimed_from(&pv, "other"));
    }

    #[test]
    fn compare_reports_lagging_and_missing_objects() {
        let pod: Pod = from_yaml("metadata: {name: mysql-0, uid: u1, resourceVersion: '7'}");
        let mut seen = HashMap::new();
        assert!(compare("Pod", std::slice::from_ref(&pod), &seen).is_some());
        seen.insert(
            ("Pod", "mysql-0".to_string()),
            Seen {
                uid: "u1".into(),
                resource_version: Some("6".into()),
                deleted: false,
            },
        );
        let diff = compare("Pod", std::slice::from_ref(&pod), &seen).expect("rv lags");
        assert!(diff.contains("mysql-0"), "{diff}");
        seen.insert(
            ("Pod", "mysql-0".to_string()),
            Seen {
                uid: "u1".into(),
                resource_version: Some("7".into()),
                deleted: false,
            },
        );
        assert_eq!(compare("Pod", std::slice::from_ref(&pod), &seen), None);
        let gone = compare::<Pod>("Pod", &[], &seen).expect("deletion not observed");
        assert!(gone.contains("not observed"), "{gone}");
    }

    #[test]
    fn node_and_service_states() {
        let node: Node = from_yaml(
            "metadata: {name: w1}\nstatus: {conditions: [{type: Ready, status: Unknown}]}",
        );
        assert!(!node_state(&node).ready);
        let svc: Service = from_yaml(
            "metadata: {name: mysql}\nspec: {clusterIP: None, ports: [{port: 3306}], selector: {app: mysql}}",
        );
        let s = service_state(&svc);
        assert_eq!(s.cluster_ip.as_deref(), Some("None"));
        assert_eq!(s.ports, vec![3306]);
    }

    /// A relist (the watch fell behind: 410 Gone, then a fresh list) omits the objects
    /// deleted meanwhile and delivers no Delete for them: the observer records them as
    /// deleted, so the history is right and settle() converges.
    #[tokio::test]
    async fn a_relist_records_the_objects_deleted_while_the_watch_was_away() {
        let pod = |name: &str, uid: &str, rv: &str| -> Pod {
            from_yaml(&format!(
                "metadata: {{name: {name}, uid: {uid}, resourceVersion: '{rv}'}}"
            ))
        };
        let events: Vec<Result<watcher::Event<Pod>, watcher::Error>> = vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(pod("mysql-0", "u0", "1"))),
            Ok(watcher::Event::InitApply(pod("mysql-1", "u1", "1"))),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(pod("mysql-2", "u2", "2"))),
            // 410 Gone: mysql-1 was deleted and mysql-2 replaced while the watch was away.
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(pod("mysql-0", "u0", "5"))),
            Ok(watcher::Event::InitApply(pod("mysql-2", "u2b", "6"))),
            Ok(watcher::Event::InitDone),
        ];
        let history = History::new();
        let recorder = Recorder {
            history: history.clone(),
            seen: Arc::default(),
            changed: Arc::default(),
        };
        let (ready, mut listed) = mpsc::unbounded_channel();
        follow(
            "Pod",
            futures::stream::iter(events),
            pod_state_snapshot,
            |_| true,
            &recorder,
            &ready,
        )
        .await;
        let changes: Vec<(Change, String, String)> = history
            .snapshot()
            .into_iter()
            .filter_map(|e| match e.event {
                Event::Object {
                    change,
                    object: Snapshot::Pod(p),
                } => Some((change, p.name, p.uid)),
                _ => None,
            })
            .collect();
        let applied = |n: &str, u: &str| (Change::Applied, n.to_string(), u.to_string());
        let deleted = |n: &str, u: &str| (Change::Deleted, n.to_string(), u.to_string());
        assert_eq!(
            changes,
            vec![
                applied("mysql-0", "u0"),
                applied("mysql-1", "u1"),
                applied("mysql-2", "u2"),
                applied("mysql-0", "u0"),
                deleted("mysql-2", "u2"),
                applied("mysql-2", "u2b"),
                deleted("mysql-1", "u1"),
            ]
        );
        // settle() compares a fresh list with what was seen: it now converges.
        let now = [pod("mysql-0", "u0", "5"), pod("mysql-2", "u2b", "6")];
        assert_eq!(compare("Pod", &now, &lock(&recorder.seen)), None);
        assert!(matches!(listed.try_recv(), Ok(Progress::Listed("Pod"))));
    }
}
