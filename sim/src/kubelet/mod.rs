//! One kubelet per simulated node: runs the node's pods as real `mariadbd` processes.
//!
//! Like the real kubelet it has one worker per pod (see [`worker`]) that starts, restarts
//! and terminates the pod's container and posts its status. Stopping a node kills every
//! process on it at once and silences its kubelet (no restarts, no status, no deletions
//! confirmed) until it is started again.

pub mod net;
/// The process helpers, kept at their old path (`kubelet::process`) for the crates that use it.
pub use crate::process;
pub mod status;
mod worker;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::Faults;
use crate::controllers::obj;
use crate::mariadb::MariaDb;
use crate::store::Store;
use net::IpPool;
use process::Spawner;

/// How long shutdown waits for a pod worker to kill and reap its process.
const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// What every kubelet of a sim shares.
pub struct KubeletDeps {
    pub store: Arc<Store>,
    pub mariadb: Arc<MariaDb>,
    pub spawner: Arc<Spawner>,
    pub faults: Faults,
    /// Per-pod run dirs (socket, pid file, log, init file) live under here.
    pub pods_dir: PathBuf,
    pub shutdown: watch::Receiver<bool>,
    /// Data dirs in use by running containers.
    pub dirs_in_use: DirLocks,
}

impl KubeletDeps {
    fn claim_dir(&self, dir: &Path, uid: &str) -> bool {
        self.dirs_in_use.claim(dir, uid)
    }

    fn release_dirs(&self, uid: &str) {
        self.dirs_in_use.release(uid);
    }
}

/// Which pod's container uses each data dir: two servers must never open the same data
/// dir (e.g. a force-deleted pod's dying process and its replacement). The one exception
/// is `pod:zombie-on-force-delete`, whose surviving container gives up its claim so the
/// replacement starts on the same volume, as on a real node.
#[derive(Debug, Default)]
pub struct DirLocks(Mutex<BTreeMap<PathBuf, String>>);

impl DirLocks {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<PathBuf, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `dir` for the pod `uid`; false while another pod holds it.
    pub fn claim(&self, dir: &Path, uid: &str) -> bool {
        let mut dirs = self.lock();
        match dirs.get(dir) {
            Some(owner) if owner != uid => false,
            _ => {
                dirs.insert(dir.to_path_buf(), uid.to_string());
                true
            }
        }
    }

    /// Releases every dir the pod `uid` holds.
    pub fn release(&self, uid: &str) {
        self.lock().retain(|_, owner| owner != uid);
    }
}

struct WorkerHandle {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct NodeState {
    /// When the node was stopped; None while it runs.
    down_since: Option<DateTime<Utc>>,
    /// Incremented at every start: a restarted kubelet forgets crash back-off.
    boot: u64,
    /// Live container processes by pod uid.
    pids: BTreeMap<String, u32>,
    workers: BTreeMap<String, WorkerHandle>,
}

pub struct Kubelet {
    node: String,
    host_ip: Ipv4Addr,
    deps: Arc<KubeletDeps>,
    state: Mutex<NodeState>,
    ips: Mutex<IpPool>,
}

impl Kubelet {
    pub fn new(
        node: String,
        host_ip: Ipv4Addr,
        pod_ips: IpPool,
        deps: Arc<KubeletDeps>,
    ) -> Arc<Kubelet> {
        Arc::new(Kubelet {
            node,
            host_ip,
            deps,
            state: Mutex::new(NodeState::default()),
            ips: Mutex::new(pod_ips),
        })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    fn state(&self) -> MutexGuard<'_, NodeState> {
        // Every critical section leaves the state consistent; a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn down_since(&self) -> Option<DateTime<Utc>> {
        self.state().down_since
    }

    pub fn is_down(&self) -> bool {
        self.state().down_since.is_some()
    }

    fn boot(&self) -> u64 {
        self.state().boot
    }

    /// Makes sure every pod bound to this node has a worker and wakes them all; workers
    /// of pods no longer listed wake up, notice, and clean up.
    pub fn sync(self: &Arc<Self>, pods: &[&Value]) {
        let mut state = self.state();
        if state.down_since.is_some() || *self.deps.shutdown.borrow() {
            return;
        }
        state.workers.retain(|_, w| !w.task.is_finished());
        for pod in pods {
            let uid = obj::uid(pod);
            if !state.workers.contains_key(uid) {
                let handle = worker::spawn(self.clone(), pod, state.boot);
                state.workers.insert(uid.to_string(), handle);
            }
        }
        for w in state.workers.values() {
            w.wake.notify_one();
        }
    }

    /// `docker kill` of the node: SIGKILL every pod process at once; the kubelet goes
    /// silent. Idempotent.
    pub fn stop(&self) {
        let mut state = self.state();
        if state.down_since.is_some() {
            return;
        }
        state.down_since = Some(Utc::now());
        for (uid, pid) in &state.pids {
            tracing::info!(node = %self.node, pod_uid = %uid, pid, "node stop: killing pod process");
            process::signal_group(*pid, libc::SIGKILL);
        }
    }

    /// `docker start` of the node: the kubelet runs again and restarts its pods.
    pub fn start(&self) {
        let mut state = self.state();
        if state.down_since.take().is_none() {
            return;
        }
        state.boot += 1;
        for w in state.workers.values() {
            w.wake.notify_one();
        }
    }

    /// SIGKILLs the container process of the pod with `uid`; false if none runs.
    pub fn crash(&self, uid: &str) -> bool {
        let state = self.state();
        match state.pids.get(uid) {
            Some(pid) => {
                process::signal_group(*pid, libc::SIGKILL);
                true
            }
            None => false,
        }
    }

    /// Pids of the container processes this kubelet started and that still run.
    pub fn pids(&self) -> Vec<u32> {
        self.state().pids.values().copied().collect()
    }

    /// Kills every process and waits for the workers to reap them.
    pub async fn shutdown(&self) {
        let workers: Vec<WorkerHandle> = {
            let mut state = self.state();
            for pid in state.pids.values() {
                process::signal_group(*pid, libc::SIGKILL);
            }
            std::mem::take(&mut state.workers).into_values().collect()
        };
        for w in workers {
            w.wake.notify_one();
            let abort = w.task.abort_handle();
            if tokio::time::timeout(WORKER_STOP_TIMEOUT, w.task)
                .await
                .is_err()
            {
                tracing::warn!(node = %self.node, "pod worker did not stop in time; aborting it");
                abort.abort();
            }
        }
    }

    /// Registers a freshly spawned process. Returns false (and kills it) when the node
    /// went down meanwhile, so no process survives a node stop.
    fn register(&self, uid: &str, pid: u32) -> bool {
        let mut state = self.state();
        if state.down_since.is_some() || *self.deps.shutdown.borrow() {
            process::signal_group(pid, libc::SIGKILL);
            return false;
        }
        state.pids.insert(uid.to_string(), pid);
        true
    }

    fn unregister(&self, uid: &str) {
        self.state().pids.remove(uid);
        self.deps.release_dirs(uid);
    }

    fn allocate_ip(&self) -> Option<Ipv4Addr> {
        self.ips
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allocate()
    }

    fn release_ip(&self, ip: Ipv4Addr) {
        self.ips
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_is_held_by_one_pod_at_a_time() {
        let locks = DirLocks::default();
        let dir = Path::new("/state/pvs/pvc-1");
        assert!(locks.claim(dir, "old"));
        assert!(
            locks.claim(dir, "old"),
            "the holder may claim again (restart)"
        );
        assert!(!locks.claim(dir, "new"), "the replacement waits");
        locks.release("old");
        assert!(locks.claim(dir, "new"));
    }
}
