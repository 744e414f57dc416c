//! The sim's runtime: nodes, controllers and kubelets around the object store.
//!
//! [`start`] creates the Node objects (kind-like names) and the default StorageClass, then
//! runs one control loop that reacts to every store event (and a short periodic tick, for
//! time-based rules such as the node grace period) by running the controllers' pure
//! decisions and applying their actions, and by waking each node's kubelet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::controllers::nodes::{self, KubeletDown, NodeSpec};
use crate::controllers::{
    Action, Snapshot, endpoints, gc, obj, record_event, scheduler, statefulset, volumes,
};
use crate::kubelet::net::{NetError, Network};
use crate::kubelet::{DirLocks, Kubelet, KubeletDeps};
use crate::mariadb::{MariaDb, MariaDbError};
use crate::process::{self, ProcessError, Spawner};
use crate::store::{DeleteOptions, DeleteOutcome, ResourceKind, Store, StoreError};

/// Name prefix of the simulated cluster's nodes (`sim-control-plane`, `sim-worker`, ...).
pub const CLUSTER_NAME: &str = "sim";
/// Period of the control loop's tick (time-based rules; events trigger rounds at once).
const TICK: Duration = Duration::from_millis(150);
/// How long shutdown waits for the control loop to finish its round.
const LOOP_STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("failed to start the runtime")]
    MariaDb(#[from] MariaDbError),
    #[error("failed to start the runtime")]
    Network(#[from] NetError),
    #[error("failed to start the runtime")]
    Process(#[from] ProcessError),
    #[error("failed to create state directory {path}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to create {kind} {name}")]
    Bootstrap {
        kind: &'static str,
        name: String,
        #[source]
        source: StoreError,
    },
    #[error("failed to find node {name}: nodes \"{name}\" not found")]
    NodeNotFound { name: String },
    #[error("failed to find pod {namespace}/{name}: pods \"{name}\" not found")]
    PodNotFound { namespace: String, name: String },
    #[error("failed to crash pod {namespace}/{name}: {reason}")]
    PodNotRunning {
        namespace: String,
        name: String,
        reason: String,
    },
}

impl RuntimeError {
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RuntimeError::NodeNotFound { .. } | RuntimeError::PodNotFound { .. }
        )
    }
}

struct Inner {
    store: Arc<Store>,
    config: Arc<SimConfig>,
    kubelets: BTreeMap<String, Arc<Kubelet>>,
    spawner: Arc<Spawner>,
    shutdown: watch::Sender<bool>,
    control_loop: Mutex<Option<JoinHandle<()>>>,
    _network: Network,
}

/// Handle to a running runtime; cheap to clone.
#[derive(Clone)]
pub struct RuntimeHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("nodes", &self.inner.kubelets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Creates nodes and the default StorageClass and starts the controllers and kubelets.
pub async fn start(
    store: Arc<Store>,
    config: Arc<SimConfig>,
) -> Result<RuntimeHandle, RuntimeError> {
    let as_root = process::running_as_root();
    let mariadb = Arc::new(MariaDb::new(
        config.mariadbd.clone(),
        config.install_db.clone(),
        config.state_dir.clone(),
        as_root,
    )?);
    let pv_root = pv_root(&config.state_dir);
    let pods_dir = config.state_dir.join("pods");
    for dir in [&config.state_dir, &pv_root, &pods_dir] {
        std::fs::create_dir_all(dir).map_err(|source| RuntimeError::StateDir {
            path: dir.clone(),
            source,
        })?;
    }
    let network = Network::claim()?;
    let spawner = Arc::new(Spawner::start(tokio::runtime::Handle::current())?);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let deps = Arc::new(KubeletDeps {
        store: store.clone(),
        mariadb: mariadb.clone(),
        spawner: spawner.clone(),
        faults: config.faults.clone(),
        pods_dir,
        shutdown: shutdown_rx.clone(),
        dirs_in_use: DirLocks::default(),
    });
    let mut kubelets = BTreeMap::new();
    for (index, (name, control_plane)) in nodes::node_names(CLUSTER_NAME, config.nodes)
        .into_iter()
        .enumerate()
    {
        let pool = network.pod_pool(index)?;
        let spec = NodeSpec {
            name: name.clone(),
            host_ip: network.host_ip(index)?,
            pod_cidr: pool.cidr(),
            control_plane,
        };
        create_if_missing(
            &store,
            ResourceKind::Node,
            nodes::node_object(&spec, Utc::now()),
        )?;
        kubelets.insert(
            name.clone(),
            Kubelet::new(name, spec.host_ip, pool, deps.clone()),
        );
    }
    for class in [
        nodes::standard_storage_class(),
        nodes::network_storage_class(),
    ] {
        create_if_missing(&store, ResourceKind::StorageClass, class)?;
    }
    // Build the template data dir now so the first pod does not wait for install-db.
    let (warm_db, warm_spawner, warm_stop) =
        (mariadb.clone(), spawner.clone(), shutdown_rx.clone());
    tokio::spawn(async move {
        if let Err(e) = warm_db.template(&warm_spawner).await
            && !*warm_stop.borrow()
        {
            tracing::warn!(error = %crate::errors::chain(&e), "building the MariaDB template failed; pods will retry");
        }
    });
    let inner = Arc::new(Inner {
        store,
        config,
        kubelets,
        spawner,
        shutdown,
        control_loop: Mutex::new(None),
        _network: network,
    });
    let control = ControlLoop {
        store: inner.store.clone(),
        config: inner.config.clone(),
        kubelets: inner.kubelets.clone(),
        shutdown: shutdown_rx,
    };
    let events = inner.store.subscribe();
    *inner.control_loop.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(tokio::spawn(control.run(events)));
    tracing::info!(
        nodes = inner.kubelets.len(),
        octet = inner._network.octet(),
        "kube-sim runtime started"
    );
    Ok(RuntimeHandle { inner })
}

fn create_if_missing(store: &Store, kind: ResourceKind, object: Value) -> Result<(), RuntimeError> {
    let name = obj::name(&object).to_string();
    match store.create(kind, None, object) {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(source) => Err(RuntimeError::Bootstrap {
            kind: kind.kind(),
            name,
            source,
        }),
    }
}

/// Where PV directories live.
pub fn pv_root(state_dir: &Path) -> PathBuf {
    state_dir.join("pvs")
}

impl RuntimeHandle {
    fn kubelet(&self, name: &str) -> Result<&Arc<Kubelet>, RuntimeError> {
        self.inner
            .kubelets
            .get(name)
            .ok_or_else(|| RuntimeError::NodeNotFound {
                name: name.to_string(),
            })
    }

    /// Like `docker kill` of a kind node: every pod process on it dies at once and its
    /// kubelet goes silent; after `node_grace` the Node turns NotReady.
    pub async fn stop_node(&self, name: &str) -> Result<(), RuntimeError> {
        self.kubelet(name)?.stop();
        tracing::info!(node = name, "node stopped");
        Ok(())
    }

    /// Like `docker start`: the kubelet runs again; its pods restart on the same volumes.
    pub async fn start_node(&self, name: &str) -> Result<(), RuntimeError> {
        let kubelet = self.kubelet(name)?;
        kubelet.start();
        // The kubelet posts its node Ready as it comes up, before its pods restart.
        if let Some(node) = self.inner.store.get(ResourceKind::Node, None, name)
            && obj::condition_status(&node, "Ready") != Some("True")
        {
            for action in nodes::node_ready(&node, Utc::now()) {
                apply(&self.inner.store, &self.inner.config.state_dir, action);
            }
        }
        let pods = self.inner.store.list(ResourceKind::Pod, None);
        let on_node: Vec<&Value> = pods
            .iter()
            .filter(|p| obj::node_name(p) == Some(name))
            .collect();
        kubelet.sync(&on_node);
        tracing::info!(node = name, "node started");
        Ok(())
    }

    /// SIGKILLs the pod's container process; its kubelet restarts it in place.
    pub async fn crash_pod(&self, namespace: &str, name: &str) -> Result<(), RuntimeError> {
        let pod = self
            .inner
            .store
            .get(ResourceKind::Pod, Some(namespace), name)
            .ok_or_else(|| RuntimeError::PodNotFound {
                namespace: namespace.into(),
                name: name.into(),
            })?;
        let not_running = |reason: String| RuntimeError::PodNotRunning {
            namespace: namespace.into(),
            name: name.into(),
            reason,
        };
        let node = obj::node_name(&pod)
            .ok_or_else(|| not_running("it is not scheduled to a node".into()))?;
        let kubelet = self.kubelet(node)?;
        if kubelet.crash(obj::uid(&pod)) {
            tracing::info!(pod = %format!("{namespace}/{name}"), node, "container crashed on request");
            Ok(())
        } else {
            Err(not_running(format!(
                "no container process runs for it on node {node}"
            )))
        }
    }

    /// Pids of every container process the runtime started that still runs.
    pub fn pids(&self) -> Vec<u32> {
        self.inner
            .kubelets
            .values()
            .flat_map(|k| k.pids())
            .collect()
    }

    /// Kills every mariadbd started and waits for them; idempotent.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let control = self
            .inner
            .control_loop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = control {
            let abort = task.abort_handle();
            if tokio::time::timeout(LOOP_STOP_TIMEOUT, task).await.is_err() {
                abort.abort();
            }
        }
        for kubelet in self.inner.kubelets.values() {
            kubelet.shutdown().await;
        }
        self.inner.spawner.close().await;
        tracing::info!("kube-sim runtime stopped");
    }
}

struct ControlLoop {
    store: Arc<Store>,
    config: Arc<SimConfig>,
    kubelets: BTreeMap<String, Arc<Kubelet>>,
    shutdown: watch::Receiver<bool>,
}

impl ControlLoop {
    async fn run(mut self, mut events: broadcast::Receiver<crate::store::StoreEvent>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            self.round();
            tokio::select! {
                received = events.recv() => {
                    if let Err(broadcast::error::RecvError::Closed) = received {
                        return;
                    }
                    // Coalesce a burst of events into one round.
                    while events.try_recv().is_ok() {}
                }
                _ = tick.tick() => {}
                _ = self.shutdown.changed() => return,
            }
        }
    }

    /// One reconciliation of every controller, then the kubelets.
    fn round(&self) {
        let now = Utc::now();
        let snap = Snapshot::read(&self.store);
        let down: KubeletDown = self
            .kubelets
            .iter()
            .filter_map(|(name, k)| k.down_since().map(|t| (name.clone(), t)))
            .collect();
        let mut actions = nodes::reconcile(&snap, &down, self.config.node_grace, now);
        actions.extend(gc::reconcile(&snap));
        for ns in snap.namespaces.iter().filter(|ns| obj::is_terminating(ns)) {
            let contents = namespace_contents(&self.store, obj::name(ns));
            actions.extend(gc::namespace_cleanup(ns, &contents));
        }
        for sts in &snap.statefulsets {
            actions.extend(statefulset::reconcile(sts, &snap, &self.config.faults, now));
        }
        actions.extend(scheduler::reconcile(&snap, now));
        actions.extend(volumes::reconcile(
            &snap,
            &pv_root(&self.config.state_dir),
            &self.config.faults,
        ));
        actions.extend(endpoints::reconcile(&snap, &self.config.faults));
        for action in actions {
            apply(&self.store, &self.config.state_dir, action);
        }
        let pods = self.store.list(ResourceKind::Pod, None);
        for (name, kubelet) in &self.kubelets {
            let on_node: Vec<&Value> = pods
                .iter()
                .filter(|p| obj::node_name(p) == Some(name.as_str()))
                .collect();
            kubelet.sync(&on_node);
        }
    }
}

/// Every namespaced object in `ns` (for finalizing a terminating namespace).
fn namespace_contents(store: &Store, ns: &str) -> Vec<(ResourceKind, Value)> {
    ResourceKind::ALL
        .into_iter()
        .filter(|k| k.namespaced())
        .flat_map(|k| store.list(k, Some(ns)).into_iter().map(move |o| (k, o)))
        .collect()
}

/// Applies one action. Conflicts and vanished objects are normal (the next round decides
/// again from fresh state) and logged at debug level only.
fn apply(store: &Store, state_dir: &Path, action: Action) {
    let what = action.describe();
    let result: Result<(), String> = match action {
        Action::Create {
            kind,
            namespace,
            object,
        } => store
            .create(kind, namespace.as_deref(), object)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Action::Replace {
            kind,
            namespace,
            object,
        } => replace(store, kind, namespace.as_deref(), object),
        Action::Delete {
            kind,
            namespace,
            name,
            uid,
        } => {
            let opts = DeleteOptions {
                precondition_uid: uid,
                ..DeleteOptions::default()
            };
            store
                .delete(kind, namespace.as_deref(), &name, &opts)
                .map(|outcome| match outcome {
                    DeleteOutcome::Deleted(_) | DeleteOutcome::Pending(_) => (),
                })
                .map_err(|e| e.to_string())
        }
        Action::Remove {
            kind,
            namespace,
            name,
            uid,
        } => {
            store.remove(kind, namespace.as_deref(), &name, &uid);
            Ok(())
        }
        Action::CreateDir(path) => std::fs::create_dir_all(&path).map_err(|e| e.to_string()),
        Action::RemoveDir(path) => remove_pv_dir(state_dir, &path),
        Action::Event(record) => {
            record_event(store, &record);
            Ok(())
        }
    };
    match result {
        Ok(()) => tracing::debug!(action = %what, "applied"),
        Err(e) => tracing::debug!(action = %what, error = %e, "not applied"),
    }
}

/// Compare-and-swap: replaces the stored object only if it is still the same version.
fn replace(
    store: &Store,
    kind: ResourceKind,
    ns: Option<&str>,
    object: Value,
) -> Result<(), String> {
    let name = obj::name(&object).to_string();
    let expected_uid = obj::uid(&object).to_string();
    let expected_rv = obj::str_at(&object, "/metadata/resourceVersion").map(str::to_string);
    let mut stale = false;
    store
        .mutate(kind, ns, &name, |current| {
            let same = obj::uid(current) == expected_uid
                && obj::str_at(current, "/metadata/resourceVersion").map(str::to_string)
                    == expected_rv;
            if same {
                *current = object;
            } else {
                stale = true;
            }
        })
        .map_err(|e| e.to_string())?;
    if stale {
        Err("stale: the object changed since it was read".into())
    } else {
        Ok(())
    }
}

fn remove_pv_dir(state_dir: &Path, path: &Path) -> Result<(), String> {
    if !path.starts_with(pv_root(state_dir)) {
        return Err(format!(
            "refusing to remove {} outside the PV root",
            path.display()
        ));
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::controllers::EventRecord;

    fn pod(store: &Store) -> Value {
        store
            .create(
                ResourceKind::Pod,
                Some("default"),
                json!({"metadata": {"name": "p"}, "spec": {}}),
            )
            .expect("create pod")
    }

    #[test]
    fn replace_applies_only_to_the_version_it_read() {
        let store = Store::new();
        let read = pod(&store);
        let mut changed = read.clone();
        obj::set_at(&mut changed, "/status/phase", json!("Running"));
        replace(&store, ResourceKind::Pod, Some("default"), changed.clone()).expect("fresh");
        let stale = replace(&store, ResourceKind::Pod, Some("default"), changed);
        assert!(stale.is_err(), "a second write from the same read is stale");
        let stored = store
            .get(ResourceKind::Pod, Some("default"), "p")
            .expect("pod");
        assert_eq!(obj::pod_phase(&stored), "Running");
    }

    #[test]
    fn remove_action_only_removes_the_named_incarnation() {
        let store = Store::new();
        let p = pod(&store);
        let dir = Path::new("/nonexistent");
        let wrong = Action::Remove {
            kind: ResourceKind::Pod,
            namespace: Some("default".into()),
            name: "p".into(),
            uid: "other".into(),
        };
        apply(&store, dir, wrong);
        assert!(store.get(ResourceKind::Pod, Some("default"), "p").is_some());
        let right = Action::Remove {
            kind: ResourceKind::Pod,
            namespace: Some("default".into()),
            name: "p".into(),
            uid: obj::uid(&p).into(),
        };
        apply(&store, dir, right);
        assert!(store.get(ResourceKind::Pod, Some("default"), "p").is_none());
    }

    #[test]
    fn pv_directories_are_removed_only_under_the_pv_root() {
        let state = tempfile::tempdir().expect("tempdir");
        let outside = state.path().join("elsewhere");
        std::fs::create_dir_all(&outside).expect("mkdir");
        assert!(remove_pv_dir(state.path(), &outside).is_err());
        assert!(outside.is_dir());
        let inside = pv_root(state.path()).join("pvc-1_ns_data");
        std::fs::create_dir_all(&inside).expect("mkdir");
        remove_pv_dir(state.path(), &inside).expect("inside the root");
        assert!(!inside.exists());
    }

    #[test]
    fn events_name_the_involved_object() {
        let store = Store::new();
        let p = pod(&store);
        let record =
            EventRecord::normal(&p, "kubelet", "Started", "Started container mysql".into())
                .at_field("spec.containers{mysql}");
        record_event(&store, &record);
        let events = store.list(ResourceKind::Event, Some("default"));
        assert_eq!(events.len(), 1);
        assert_eq!(obj::str_at(&events[0], "/involvedObject/name"), Some("p"));
        assert_eq!(
            obj::str_at(&events[0], "/involvedObject/fieldPath"),
            Some("spec.containers{mysql}")
        );
        assert_eq!(obj::str_at(&events[0], "/reason"), Some("Started"));
        assert!(obj::name(&events[0]).starts_with("p."));
    }
}
