//! The observer: watch streams on a test namespace's Pods, PVCs, StatefulSets, Services,
//! EndpointSlices, ControllerRevisions, and on the cluster's PVs (those claimed from the namespace) and Nodes.
//! Every change is appended to the [`History`] in the order observed, as the state `states`
//! reads from each object.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use checks::history::{Change, Event, History, Snapshot};

mod states;
pub use states::{
    controller_revision_state, endpoint_slice_state, node_state, pod_state, pv_state, pvc_state,
    service_state, sts_state,
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
                Api::<ControllerRevision>::namespaced(client.clone(), namespace),
                "ControllerRevision",
                |o| Snapshot::ControllerRevision(controller_revision_state(o)),
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
            "ControllerRevision",
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
    /// PVCs, StatefulSets, EndpointSlices and ControllerRevisions (same uid and resourceVersion as a fresh list), so checkers
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
        let revisions = list::<ControllerRevision>(client, ns, "ControllerRevision").await?;
        let seen = lock(&self.seen).clone();
        Ok(compare("Pod", &pods, &seen)
            .or_else(|| compare("PersistentVolumeClaim", &pvcs, &seen))
            .or_else(|| compare("StatefulSet", &stss, &seen))
            .or_else(|| compare("EndpointSlice", &slices, &seen))
            .or_else(|| compare("ControllerRevision", &revisions, &seen)))
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

#[cfg(test)]
mod tests;
