//! Hollow nodes: node agents that speak only the public API, like a kubelet, and run each
//! pod bound to them as a real `mariadbd` inside the node's network namespace.
//!
//! A [`HollowNode`] registers its Node, renews its Lease and posts its status
//! ([`heartbeat`]); watches the pods with `spec.nodeName=<node>` and runs one
//! [`worker`] per pod, which owns the pod's process and posts the pod's status
//! ([`podstatus`]), its data dir on the pod's PersistentVolume ([`volume`]).
//!
//! Stopping a node (`docker kill` of a kind node) SIGKILLs every process at once and
//! silences the node: no heartbeat, no status, no deletion confirmed, so the real
//! node-lifecycle controller marks it Unknown and taints it. Starting it again resumes the
//! heartbeats; pods still bound start again (restartCount + 1) and pods deleted meanwhile
//! are finalised.

pub mod heartbeat;
pub mod net;
pub mod podstatus;
pub mod volume;
mod worker;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube_sim::kubelet::DirLocks;
use kube_sim::kubelet::process::{Spawner, signal_group};
use kube_sim::mariadb::MariaDb;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::control::{ControlError, ControlFuture, NodeControl};
use heartbeat::{HeartbeatError, NodeFacts};
pub use net::PodNet;
use podstatus::Exited;
use worker::Worker;

/// How long stopping a node waits for its tasks (workers reap their killed processes).
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("failed to create the pods directory {path}")]
    PodsDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start hollow node {node}")]
    Register {
        node: String,
        #[source]
        source: HeartbeatError,
    },
    #[error("hollow node {node} is given twice")]
    Duplicate { node: String },
}

/// How the nodes behave; the defaults are the kubelet's where it has one.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Lease renewal (the kubelet renews every 10 s of a 40 s lease; faster here so a
    /// stopped node is noticed as soon as the shortened grace period allows).
    pub lease_interval: Duration,
    /// Node status posts (the kubelet's `nodeStatusUpdateFrequency`, 10 s).
    pub status_interval: Duration,
    /// Crash back-off: first delay and cap (the kubelet: 10 s and 300 s).
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub ephemeral_storage: String,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            lease_interval: Duration::from_secs(2),
            status_interval: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            cpu: "4".into(),
            memory: "8Gi".into(),
            pods: "110".into(),
            ephemeral_storage: "100Gi".into(),
        }
    }
}

/// What every node shares.
pub struct NodeDeps {
    pub mariadb: Arc<MariaDb>,
    pub spawner: Arc<Spawner>,
    /// Per-pod run dirs (socket, pid file, log, init file) live under here.
    pub pods_dir: PathBuf,
    /// Data dirs in use by running containers, across all nodes: two mariadbd never open
    /// the same data dir (a `network` volume may move between nodes).
    pub dir_locks: DirLocks,
    pub options: NodeOptions,
}

/// What a worker of a stopped node leaves for the next worker of the same pod.
#[derive(Clone, Debug, Default)]
pub(crate) struct Memory {
    restart_count: i32,
    started_once: bool,
    last: Option<Exited>,
}

#[derive(Clone, Debug)]
struct PodEntry {
    namespace: String,
    name: String,
    pid: Option<u32>,
}

#[derive(Default)]
struct Registry {
    down: bool,
    /// Pods with a worker, by uid, and their container's pid while it runs.
    pods: BTreeMap<String, PodEntry>,
    memory: BTreeMap<String, Memory>,
}

/// The part of a node its workers see.
pub(crate) struct NodeShared {
    name: String,
    client: kube::Client,
    net: Arc<dyn PodNet>,
    deps: Arc<NodeDeps>,
    registry: Mutex<Registry>,
}

impl NodeShared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // Every critical section leaves the registry consistent; a poisoned lock is usable.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a freshly spawned process. False (and the process killed) when the node
    /// went down meanwhile, so no process survives a node stop.
    fn register_pid(&self, uid: &str, namespace: &str, name: &str, pid: u32) -> bool {
        let mut r = self.registry();
        if r.down {
            signal_group(pid, libc::SIGKILL);
            return false;
        }
        r.pods.insert(
            uid.to_string(),
            PodEntry {
                namespace: namespace.to_string(),
                name: name.to_string(),
                pid: Some(pid),
            },
        );
        true
    }

    fn unregister_pid(&self, uid: &str) {
        if let Some(e) = self.registry().pods.get_mut(uid) {
            e.pid = None;
        }
    }

    fn track(&self, uid: &str, namespace: &str, name: &str) -> Option<Memory> {
        let mut r = self.registry();
        r.pods.entry(uid.to_string()).or_insert_with(|| PodEntry {
            namespace: namespace.to_string(),
            name: name.to_string(),
            pid: None,
        });
        r.memory.remove(uid)
    }

    fn forget(&self, uid: &str) {
        let mut r = self.registry();
        r.pods.remove(uid);
        r.memory.remove(uid);
    }

    fn remember(&self, uid: &str, memory: Memory) {
        let mut r = self.registry();
        r.pods.remove(uid);
        r.memory.insert(uid.to_string(), memory);
    }

    fn pids(&self) -> Vec<u32> {
        self.registry()
            .pods
            .values()
            .filter_map(|e| e.pid)
            .collect()
    }
}

/// A running node's tasks.
struct Session {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// One hollow node.
pub struct HollowNode {
    shared: Arc<NodeShared>,
    node_uid: String,
    facts: Mutex<NodeFacts>,
    session: tokio::sync::Mutex<Option<Session>>,
}

impl HollowNode {
    /// Registers the node and starts it.
    pub async fn start(
        client: kube::Client,
        name: &str,
        net: Arc<dyn PodNet>,
        deps: Arc<NodeDeps>,
        server_version: &str,
    ) -> Result<Arc<HollowNode>, NodeError> {
        let o = &deps.options;
        let facts = NodeFacts {
            name: name.to_string(),
            ip: net.node_ip(),
            kubelet_version: server_version.to_string(),
            boot_id: new_uuid(),
            machine_id: new_id(),
            kernel_version: heartbeat::kernel_version(),
            cpu: o.cpu.clone(),
            memory: o.memory.clone(),
            pods: o.pods.clone(),
            ephemeral_storage: o.ephemeral_storage.clone(),
        };
        let node_uid = heartbeat::register(&client, &facts)
            .await
            .map_err(|source| NodeError::Register {
                node: name.to_string(),
                source,
            })?;
        tracing::info!(node = name, ip = %facts.ip, "hollow node registered");
        let node = Arc::new(HollowNode {
            shared: Arc::new(NodeShared {
                name: name.to_string(),
                client,
                net,
                deps,
                registry: Mutex::new(Registry::default()),
            }),
            node_uid,
            facts: Mutex::new(facts),
            session: tokio::sync::Mutex::new(None),
        });
        node.start_session().await;
        Ok(node)
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    fn facts(&self) -> NodeFacts {
        self.facts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the node is stopped.
    pub fn is_down(&self) -> bool {
        self.shared.registry().down
    }

    /// Pids of the container processes that run now.
    pub fn pids(&self) -> Vec<u32> {
        self.shared.pids()
    }

    /// Starts the node (idempotent): heartbeats resume, pods are picked up again.
    pub async fn start_node(&self) {
        self.start_session().await;
    }

    async fn start_session(&self) {
        let mut session = self.session.lock().await;
        if session.is_some() {
            return;
        }
        self.shared.registry().down = false;
        {
            // A new boot, as a restarted machine reports it.
            let mut facts = self.facts.lock().unwrap_or_else(|e| e.into_inner());
            facts.boot_id = new_uuid();
        }
        let (stop, stop_rx) = watch::channel(false);
        let facts = self.facts();
        let tasks = vec![
            tokio::spawn(lease_loop(
                self.shared.clone(),
                self.node_uid.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(status_loop(self.shared.clone(), facts, stop_rx.clone())),
            tokio::spawn(pod_loop(self.shared.clone(), stop_rx)),
        ];
        *session = Some(Session { stop, tasks });
        tracing::info!(node = %self.shared.name, "hollow node running");
    }

    /// Stops the node (idempotent): every process SIGKILLed at once, heartbeats and pod
    /// handling stop; returns once the workers have reaped their processes.
    pub async fn stop_node(&self) {
        let mut session = self.session.lock().await;
        let Some(s) = session.take() else {
            return;
        };
        {
            let mut r = self.shared.registry();
            r.down = true;
            for e in r.pods.values() {
                if let Some(pid) = e.pid {
                    tracing::info!(node = %self.shared.name, pod = %format!("{}/{}", e.namespace, e.name), pid, "node stop: SIGKILL");
                    signal_group(pid, libc::SIGKILL);
                }
            }
        }
        let _ = s.stop.send(true);
        for task in s.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(STOP_TIMEOUT, task).await.is_err() {
                tracing::warn!(node = %self.shared.name, "node task did not stop within {}s; aborting it", STOP_TIMEOUT.as_secs());
                abort.abort();
            }
        }
        // Anything a worker could not reap in time is still killed.
        for pid in self.shared.pids() {
            signal_group(pid, libc::SIGKILL);
        }
        tracing::info!(node = %self.shared.name, "hollow node stopped");
    }

    /// SIGKILLs the container of the pod; Ok(false) when the node runs no such pod.
    pub fn crash(&self, namespace: &str, name: &str) -> Result<bool, String> {
        let r = self.shared.registry();
        let Some(entry) = r
            .pods
            .values()
            .find(|e| e.namespace == namespace && e.name == name)
        else {
            return Ok(false);
        };
        match entry.pid {
            Some(pid) => {
                tracing::info!(node = %self.shared.name, pod = %format!("{namespace}/{name}"), pid, "crash: SIGKILL");
                signal_group(pid, libc::SIGKILL);
                Ok(true)
            }
            None => Err(format!(
                "the container of pod {namespace}/{name} on node {} is not running",
                self.shared.name
            )),
        }
    }
}

async fn lease_loop(shared: Arc<NodeShared>, node_uid: String, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.deps.options.lease_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        if let Err(e) = heartbeat::renew_lease(&shared.client, &shared.name, &node_uid).await {
            tracing::warn!(node = %shared.name, error = %crate::report(&e), "lease not renewed");
        }
    }
}

async fn status_loop(shared: Arc<NodeShared>, facts: NodeFacts, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.deps.options.status_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        if let Err(e) = heartbeat::post_status(&shared.client, &facts).await {
            tracing::warn!(node = %shared.name, error = %crate::report(&e), "node status not posted");
        }
    }
}

struct WorkerSlot {
    pod: watch::Sender<Option<Arc<Pod>>>,
    task: JoinHandle<()>,
}

/// Watches the pods bound to the node and keeps one worker per pod.
async fn pod_loop(shared: Arc<NodeShared>, mut stop: watch::Receiver<bool>) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", shared.name));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut workers: BTreeMap<String, WorkerSlot> = BTreeMap::new();
    // Pods whose worker finished (deletion confirmed): not picked up again while listed.
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut listing: Option<BTreeSet<String>> = None;
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = stop.changed() => break,
        };
        if *stop.borrow() {
            break;
        }
        let Some(event) = event else { break };
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(node = %shared.name, error = %e, "pod watch failed; retrying");
                continue;
            }
        };
        workers.retain(|uid, slot| {
            if slot.task.is_finished() {
                finished.insert(uid.clone());
                false
            } else {
                true
            }
        });
        match event {
            Event::Init => listing = Some(BTreeSet::new()),
            Event::InitApply(pod) => {
                if let (Some(seen), Some(uid)) = (listing.as_mut(), pod.metadata.uid.clone()) {
                    seen.insert(uid);
                }
                apply(&shared, &stop, &mut workers, &finished, pod);
            }
            Event::InitDone => {
                if let Some(seen) = listing.take() {
                    for (uid, slot) in &workers {
                        if !seen.contains(uid) {
                            let _ = slot.pod.send(None);
                        }
                    }
                    finished.retain(|uid| seen.contains(uid));
                }
            }
            Event::Apply(pod) => apply(&shared, &stop, &mut workers, &finished, pod),
            Event::Delete(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                finished.remove(&uid);
                if let Some(slot) = workers.get(&uid) {
                    let _ = slot.pod.send(None);
                }
            }
        }
    }
    // The node stops: workers kill their processes and exit (they watch `stop` too).
    for (_, slot) in workers {
        let abort = slot.task.abort_handle();
        if tokio::time::timeout(STOP_TIMEOUT, slot.task).await.is_err() {
            tracing::warn!(node = %shared.name, "pod worker did not stop within {}s; aborting it", STOP_TIMEOUT.as_secs());
            abort.abort();
        }
    }
}

fn apply(
    shared: &Arc<NodeShared>,
    stop: &watch::Receiver<bool>,
    workers: &mut BTreeMap<String, WorkerSlot>,
    finished: &BTreeSet<String>,
    pod: Pod,
) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    if finished.contains(&uid) {
        return;
    }
    let pod = Arc::new(pod);
    if let Some(slot) = workers.get(&uid) {
        let _ = slot.pod.send(Some(pod));
        return;
    }
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let memory = shared.track(&uid, &namespace, &name);
    let (tx, rx) = watch::channel(Some(pod.clone()));
    let worker = Worker::new(shared.clone(), &pod, rx, stop.clone(), memory);
    tracing::debug!(node = %shared.name, pod = %format!("{namespace}/{name}"), %uid, "pod worker started");
    workers.insert(
        uid,
        WorkerSlot {
            pod: tx,
            task: tokio::spawn(worker.run()),
        },
    );
}

/// All hollow nodes of a cluster.
pub struct Nodes {
    nodes: Vec<Arc<HollowNode>>,
}

impl Nodes {
    pub fn get(&self, name: &str) -> Option<&Arc<HollowNode>> {
        self.nodes.iter().find(|n| n.name() == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name().to_string()).collect()
    }

    /// Pids of every container process the nodes run now.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().flat_map(|n| n.pids()).collect()
    }

    /// Stops every node: every mariadbd is killed and reaped; nothing is left running.
    pub async fn shutdown(&self) {
        for node in &self.nodes {
            node.stop_node().await;
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        // A dropped handle without shutdown still leaves no server running.
        for pid in self.pids() {
            signal_group(pid, libc::SIGKILL);
        }
    }
}

impl NodeControl for Nodes {
    fn stop_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a> {
        Box::pin(async move {
            let node = self
                .get(name)
                .ok_or_else(|| ControlError::NotFound(format!("node {name} not found")))?;
            node.stop_node().await;
            Ok(())
        })
    }

    fn start_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a> {
        Box::pin(async move {
            let node = self
                .get(name)
                .ok_or_else(|| ControlError::NotFound(format!("node {name} not found")))?;
            node.start_node().await;
            Ok(())
        })
    }

    fn crash_pod<'a>(&'a self, namespace: &'a str, name: &'a str) -> ControlFuture<'a> {
        Box::pin(async move {
            for node in &self.nodes {
                match node.crash(namespace, name) {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(message) => return Err(ControlError::Failed(message)),
                }
            }
            Err(ControlError::NotFound(format!(
                "pod {namespace}/{name} runs on no hollow node"
            )))
        })
    }
}

/// Registers and starts one hollow node per `(name, network)`; per-pod run dirs go under
/// `state_dir/pods`.
pub async fn start_nodes(
    client: kube::Client,
    nodes: Vec<(String, Arc<dyn PodNet>)>,
    state_dir: &Path,
    mariadb: Arc<MariaDb>,
    spawner: Arc<Spawner>,
    server_version: &str,
    options: NodeOptions,
) -> Result<Nodes, NodeError> {
    let pods_dir = state_dir.join("pods");
    std::fs::create_dir_all(&pods_dir).map_err(|source| NodeError::PodsDir {
        path: pods_dir.clone(),
        source,
    })?;
    let deps = Arc::new(NodeDeps {
        mariadb,
        spawner,
        pods_dir,
        dir_locks: DirLocks::default(),
        options,
    });
    let mut started = Nodes { nodes: Vec::new() };
    for (name, net) in nodes {
        if started.get(&name).is_some() {
            started.shutdown().await;
            return Err(NodeError::Duplicate { node: name });
        }
        match HollowNode::start(client.clone(), &name, net, deps.clone(), server_version).await {
            Ok(node) => started.nodes.push(node),
            Err(e) => {
                started.shutdown().await;
                return Err(e);
            }
        }
    }
    Ok(started)
}

/// A process-unique hex id (container ids, machine ids).
pub(crate) fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ n.rotate_left(17);
    format!("{mixed:016x}{n:016x}")
}

/// A UUID-shaped id (boot ids).
fn new_uuid() -> String {
    let id = new_id();
    format!(
        "{}-{}-{}-{}-{}",
        &id[0..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_shaped() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
    }
}
