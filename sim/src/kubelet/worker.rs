//! The pod worker: one task per pod, owning the pod's container process.
//!
//! Each round it re-reads the pod and decides: start the container (once the pod's claims
//! are bound), restart it after an unexpected exit (with the kubelet's crash back-off: the
//! first restart is immediate, then 10 s doubling to 5 min), or terminate it gracefully
//! (SIGTERM, SIGKILL after the grace period, then remove the pod object). When the pod
//! object vanishes (a force deletion) it kills the container, unless the
//! `pod:zombie-on-force-delete` fault keeps it running until the sim shuts down. It sleeps
//! until woken by the kubelet, its process exiting, a timer, or shutdown.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::status::{self, ContainerState, ContainerView, DataVolume, PodView, Terminated};
use super::{Kubelet, WorkerHandle, process};
use crate::config::Fault;
use crate::controllers::{EventRecord, obj};
use crate::mariadb::{self, InitEnv, MariaDbError, ServerOptions};
use crate::store::ResourceKind;

const INIT_POLL: Duration = Duration::from_millis(100);
const KILL_REAP_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const DEFAULT_GRACE_SECONDS: u64 = 30;

/// Starts a worker for `pod`. `boot` is the kubelet's current boot (the caller holds the
/// kubelet's state lock).
pub(super) fn spawn(kubelet: Arc<Kubelet>, pod: &Value, boot: u64) -> WorkerHandle {
    let wake = Arc::new(Notify::new());
    let worker = Worker::new(kubelet, pod, wake.clone(), boot);
    WorkerHandle {
        wake,
        task: tokio::spawn(worker.run()),
    }
}

/// What the worker does after a round.
enum Step {
    Exit,
    Wait(Option<Instant>),
}

enum Wake {
    Notified,
    Exited(io::Result<ExitStatus>),
    Timer,
    Shutdown,
}

struct Running {
    child: tokio::process::Child,
    pid: u32,
    container_id: String,
    started_at: DateTime<Utc>,
    /// The claim's volume the server runs on, if any.
    volume: Option<PathBuf>,
}

struct Termination {
    started: Instant,
    grace: Duration,
    killed: bool,
}

struct PendingInit {
    data_dir: PathBuf,
    init_file: PathBuf,
    log: PathBuf,
    offset: u64,
}

/// The kubelet's crash back-off for one container.
#[derive(Debug, Default)]
struct Backoff {
    next_delay: Option<Duration>,
    not_before: Option<Instant>,
}

impl Backoff {
    fn record_exit(&mut self, now: Instant, ran_for: Duration) {
        if ran_for > 2 * BACKOFF_MAX {
            self.next_delay = None;
        }
        match self.next_delay {
            None => {
                self.not_before = None;
                self.next_delay = Some(BACKOFF_INITIAL);
            }
            Some(delay) => {
                self.not_before = Some(now + delay);
                self.next_delay = Some((delay * 2).min(BACKOFF_MAX));
            }
        }
    }

    fn blocked_until(&self, now: Instant) -> Option<Instant> {
        self.not_before.filter(|t| *t > now)
    }
}

/// Why a container could not be started.
enum StartFailure {
    /// The container's entrypoint would have exited with this message (exit code 1).
    Exited(String),
    /// The sim could not create the container.
    Error(String),
    /// Another pod's container still uses the data dir (its process is being killed).
    Busy(String),
}

impl From<MariaDbError> for StartFailure {
    fn from(e: MariaDbError) -> Self {
        StartFailure::Error(crate::errors::chain(&e))
    }
}

/// Where the container's data dir is, and whether it starts empty every time.
struct DataDir {
    path: PathBuf,
    fresh_each_start: bool,
    /// On a claim's volume (which must outlive the pod).
    from_claim: bool,
}

struct Worker {
    kubelet: Arc<Kubelet>,
    ns: String,
    name: String,
    uid: String,
    wake: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
    run_dir: PathBuf,
    start_time: String,
    boot: u64,
    ip: Option<Ipv4Addr>,
    restart_count: i32,
    started_once: bool,
    running: Option<Running>,
    last_terminated: Option<Terminated>,
    waiting: Option<(String, Option<String>)>,
    backoff: Backoff,
    termination: Option<Termination>,
    init: Option<PendingInit>,
    /// The pod object is gone but the container runs on (`pod:zombie-on-force-delete`).
    zombie: bool,
}

impl Worker {
    fn new(kubelet: Arc<Kubelet>, pod: &Value, wake: Arc<Notify>, boot: u64) -> Worker {
        let uid = obj::uid(pod).to_string();
        Worker {
            run_dir: kubelet.deps.pods_dir.join(&uid),
            shutdown: kubelet.deps.shutdown.clone(),
            boot,
            kubelet,
            ns: obj::namespace(pod).to_string(),
            name: obj::name(pod).to_string(),
            uid,
            wake,
            start_time: obj::rfc3339(Utc::now()),
            ip: None,
            restart_count: 0,
            started_once: false,
            running: None,
            last_terminated: None,
            waiting: None,
            backoff: Backoff::default(),
            termination: None,
            init: None,
            zombie: false,
        }
    }

    async fn run(mut self) {
        loop {
            let deadline = match self.step().await {
                Step::Exit => return,
                Step::Wait(deadline) => deadline,
            };
            let wake = self.wake.clone();
            let sleep = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                _ = wake.notified() => Wake::Notified,
                status = wait_child(&mut self.running) => Wake::Exited(status),
                _ = sleep => Wake::Timer,
                _ = self.shutdown.changed() => Wake::Shutdown,
            };
            match event {
                Wake::Exited(status) => self.on_exit(status),
                Wake::Notified | Wake::Timer | Wake::Shutdown => {}
            }
        }
    }

    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow() || self.shutdown.has_changed().is_err()
    }

    async fn step(&mut self) -> Step {
        if self.shutting_down() {
            self.kill_and_reap().await;
            self.release();
            return Step::Exit;
        }
        if self.kubelet.is_down() {
            return Step::Wait(None);
        }
        let boot = self.kubelet.boot();
        if boot != self.boot {
            self.boot = boot;
            self.backoff = Backoff::default();
        }
        let Some(pod) = self.load() else {
            if self.stays_as_zombie() {
                return self.linger_as_zombie();
            }
            // Force-deleted (or replaced by a new incarnation): kill what is left.
            self.kill_and_reap().await;
            self.release();
            return Step::Exit;
        };
        if obj::is_terminating(&pod) {
            return self.terminate(&pod);
        }
        self.run_pod(&pod).await
    }

    fn load(&self) -> Option<Value> {
        self.kubelet
            .deps
            .store
            .get(ResourceKind::Pod, Some(&self.ns), &self.name)
            .filter(|p| obj::uid(p) == self.uid)
    }

    fn pod_ref(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }

    // ---- termination -------------------------------------------------------------

    fn terminate(&mut self, pod: &Value) -> Step {
        let Some(pid) = self.running.as_ref().map(|r| r.pid) else {
            self.remove_pod();
            self.release();
            return Step::Exit;
        };
        let now = Instant::now();
        let grace = Duration::from_secs(grace_seconds(pod));
        if self.termination.is_none() {
            tracing::info!(pod = %self.pod_ref(), grace_seconds = grace.as_secs(), "stopping container with SIGTERM");
            process::signal_group(pid, libc::SIGTERM);
            let name = container_name(pod);
            self.event(pod, "Killing", format!("Stopping container {name}"));
        }
        let t = self.termination.get_or_insert(Termination {
            started: now,
            grace,
            killed: false,
        });
        // A second delete may shorten the grace period.
        t.grace = t.grace.min(grace);
        let deadline = t.started + t.grace;
        let kill = now >= deadline && !t.killed;
        if kill {
            t.killed = true;
        }
        let killed = t.killed;
        if kill {
            tracing::info!(pod = %self.pod_ref(), "grace period over: SIGKILL");
            process::signal_group(pid, libc::SIGKILL);
        }
        Step::Wait(Some(if killed {
            now + Duration::from_secs(1)
        } else {
            deadline
        }))
    }

    /// Under `pod:zombie-on-force-delete`, a container whose pod object vanished without a
    /// graceful termination (a force deletion) is not killed. A termination already under
    /// way (SIGTERM sent) runs to its end as usual.
    fn stays_as_zombie(&self) -> bool {
        self.kubelet.deps.faults.has(Fault::PodZombieOnForceDelete)
            && self.running.is_some()
            && self.termination.is_none()
    }

    /// Keeps the orphaned container running, bound to its address (so established
    /// connections keep being served), until it exits or the sim shuts down. Its volume
    /// is split (a storage that does not fence the old writer, split-brain): the zombie's
    /// server keeps its files, moved aside to `<volume>.zombie-<uid>`, and the volume gets
    /// a crash-consistent copy taken with the zombie stopped, so the replacement's
    /// container starts on it and serves while the zombie serves too. Both incarnations
    /// of the name acknowledge writes at once, which at-most-one must catch.
    fn linger_as_zombie(&mut self) -> Step {
        if !self.zombie {
            self.zombie = true;
            let (pid, volume) = self
                .running
                .as_ref()
                .map(|r| (r.pid, r.volume.clone()))
                .unwrap_or_default();
            tracing::warn!(
                pod = %self.pod_ref(), uid = %self.uid, pid, ip = ?self.ip,
                "fault pod:zombie-on-force-delete: pod object force-deleted, its container keeps running"
            );
            if let Some(volume) = volume {
                self.split_volume(pid, &volume);
            }
            self.kubelet.deps.release_dirs(&self.uid);
        }
        Step::Wait(None)
    }

    /// Moves the zombie's data aside and leaves a copy at `volume` (see
    /// [`Worker::linger_as_zombie`]). The zombie is stopped while it is copied.
    fn split_volume(&self, pid: u32, volume: &std::path::Path) {
        let mut aside = volume.as_os_str().to_owned();
        aside.push(format!(".zombie-{}", self.uid));
        let aside = PathBuf::from(aside);
        process::signal_group(pid, libc::SIGSTOP);
        let split = mariadb::split_data_dir(volume, &aside);
        process::signal_group(pid, libc::SIGCONT);
        match split {
            Ok(()) => tracing::warn!(
                pod = %self.pod_ref(), uid = %self.uid, volume = %volume.display(), aside = %aside.display(),
                "fault pod:zombie-on-force-delete: the zombie keeps the volume's data aside; its replacement gets a copy"
            ),
            Err(e) => tracing::warn!(
                pod = %self.pod_ref(), uid = %self.uid, error = %crate::errors::chain(&e),
                "fault pod:zombie-on-force-delete: the volume could not be split; the replacement meets the zombie's file locks"
            ),
        }
    }

    /// The kubelet confirms the deletion once the container is gone.
    fn remove_pod(&self) {
        let store = &self.kubelet.deps.store;
        if store
            .remove(ResourceKind::Pod, Some(&self.ns), &self.name, &self.uid)
            .is_some()
        {
            tracing::info!(pod = %self.pod_ref(), "pod terminated and removed");
        }
    }

    async fn kill_and_reap(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        process::signal_group(running.pid, libc::SIGKILL);
        if tokio::time::timeout(KILL_REAP_TIMEOUT, running.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(pod = %self.pod_ref(), pid = running.pid, "killed process not reaped in time");
        }
        self.kubelet.unregister(&self.uid);
    }

    /// Frees the pod's address and run dir (its emptyDir volumes and log included).
    fn release(&mut self) {
        if let Some(ip) = self.ip.take() {
            self.kubelet.release_ip(ip);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.run_dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(pod = %self.pod_ref(), dir = %self.run_dir.display(), error = %e, "failed to remove pod run dir");
        }
    }

    // ---- running -------------------------------------------------------------------

    async fn run_pod(&mut self, pod: &Value) -> Step {
        if self.running.is_some() {
            let poll = self.progress_init();
            self.post_status();
            return Step::Wait(poll);
        }
        let Some(container) = status::runnable_container(pod)
            .and_then(|i| obj::array(pod, "/spec/containers").get(i).cloned())
        else {
            tracing::debug!(pod = %self.pod_ref(), "no container the sim can run");
            self.post_status();
            return Step::Wait(None);
        };
        let data = match self.data_dir(pod, &container) {
            Ok(data) => data,
            Err(reason) => {
                tracing::debug!(pod = %self.pod_ref(), %reason, "waiting for volumes");
                self.waiting = Some(("ContainerCreating".into(), None));
                self.post_status();
                return Step::Wait(None);
            }
        };
        if let Some(until) = self.backoff.blocked_until(Instant::now()) {
            let delay = self.backoff.next_delay.map_or(0, |d| d.as_secs() / 2);
            self.waiting = Some((
                "CrashLoopBackOff".into(),
                Some(format!(
                    "back-off {delay}s restarting failed container=mysql pod={}_{}({})",
                    self.name, self.ns, self.uid
                )),
            ));
            self.post_status();
            return Step::Wait(Some(until));
        }
        match self.start_container(pod, &container, data).await {
            Ok(()) => {
                self.waiting = None;
                self.post_status();
                Step::Wait(self.init.as_ref().map(|_| Instant::now() + INIT_POLL))
            }
            Err(StartFailure::Exited(message)) => {
                self.container_failed_at_start(&message);
                Step::Wait(Some(Instant::now()))
            }
            Err(StartFailure::Busy(dir)) => {
                tracing::debug!(pod = %self.pod_ref(), %dir, "data dir still in use by another pod's container");
                self.waiting = Some(("ContainerCreating".into(), None));
                self.post_status();
                Step::Wait(Some(Instant::now() + INIT_POLL))
            }
            Err(StartFailure::Error(message)) => {
                tracing::warn!(pod = %self.pod_ref(), error = %message, "failed to create container");
                self.backoff.record_exit(Instant::now(), Duration::ZERO);
                self.waiting = Some(("CreateContainerError".into(), Some(message)));
                self.post_status();
                Step::Wait(Some(
                    self.backoff
                        .blocked_until(Instant::now())
                        .unwrap_or_else(|| Instant::now() + BACKOFF_INITIAL),
                ))
            }
        }
    }

    /// The container's data dir: its claim's PV directory, an emptyDir, or a fresh
    /// directory per start. Err while any of the pod's claims is not bound yet.
    fn data_dir(&self, pod: &Value, container: &Value) -> Result<DataDir, String> {
        let store = &self.kubelet.deps.store;
        let mut claim_paths = std::collections::BTreeMap::new();
        for (_, claim_name) in obj::pod_claims(pod) {
            let claim = store
                .get(
                    ResourceKind::PersistentVolumeClaim,
                    Some(&self.ns),
                    &claim_name,
                )
                .ok_or_else(|| format!("persistentvolumeclaim \"{claim_name}\" not found"))?;
            let volume = obj::str_at(&claim, "/spec/volumeName")
                .filter(|v| !v.is_empty() && obj::pod_phase(&claim) == "Bound")
                .ok_or_else(|| format!("persistentvolumeclaim \"{claim_name}\" is not bound"))?;
            let pv = store
                .get(ResourceKind::PersistentVolume, None, volume)
                .ok_or_else(|| format!("persistentvolume \"{volume}\" not found"))?;
            let path = obj::str_at(&pv, "/spec/hostPath/path")
                .or_else(|| obj::str_at(&pv, "/spec/local/path"))
                .ok_or_else(|| {
                    format!("persistentvolume \"{volume}\" has no hostPath or local path")
                })?;
            claim_paths.insert(claim_name, PathBuf::from(path));
        }
        Ok(match status::data_volume(pod, container) {
            DataVolume::Claim(claim) => DataDir {
                path: claim_paths
                    .remove(&claim)
                    .ok_or_else(|| format!("volume for claim {claim} is not mounted"))?,
                fresh_each_start: false,
                from_claim: true,
            },
            DataVolume::EmptyDir(name) => DataDir {
                path: self.run_dir.join("volumes").join(name),
                fresh_each_start: false,
                from_claim: false,
            },
            DataVolume::ContainerLayer => DataDir {
                path: self.run_dir.join("container-data"),
                fresh_each_start: true,
                from_claim: false,
            },
        })
    }

    async fn start_container(
        &mut self,
        pod: &Value,
        container: &Value,
        data: DataDir,
    ) -> Result<(), StartFailure> {
        let deps = self.kubelet.deps.clone();
        std::fs::create_dir_all(&self.run_dir).map_err(|e| {
            StartFailure::Error(format!(
                "failed to create run dir {}: {e}",
                self.run_dir.display()
            ))
        })?;
        let template = deps.mariadb.template(&deps.spawner).await?;
        if !deps.claim_dir(&data.path, &self.uid) {
            return Err(StartFailure::Busy(data.path.display().to_string()));
        }
        let started = self
            .prepare_and_spawn(pod, container, data, &template)
            .await;
        if started.is_err() {
            deps.release_dirs(&self.uid);
        }
        started
    }

    /// Prepares the (claimed) data dir and spawns the server.
    async fn prepare_and_spawn(
        &mut self,
        pod: &Value,
        container: &Value,
        data: DataDir,
        template: &std::path::Path,
    ) -> Result<(), StartFailure> {
        let deps = self.kubelet.deps.clone();
        let wipe = self.started_once && deps.faults.has(Fault::VolumeWipeOnRestart);
        if wipe {
            tracing::warn!(pod = %self.pod_ref(), dir = %data.path.display(), "fault volume:wipe-on-restart: emptying the data dir");
        }
        let wipe_for_new_pod = !self.started_once
            && data.from_claim
            && deps.faults.has(Fault::VolumeWipeOnNewPod)
            && mariadb::init_done(&data.path);
        if wipe_for_new_pod {
            tracing::warn!(pod = %self.pod_ref(), dir = %data.path.display(), "fault volume:wipe-on-new-pod: a new pod starts on an emptied data dir");
        }
        if wipe || wipe_for_new_pod || data.fresh_each_start {
            mariadb::wipe_data_dir(&data.path)?;
        }
        mariadb::prepare_data_dir(template, &data.path)?;
        let init_file = if mariadb::init_done(&data.path) {
            None
        } else {
            let mut env = InitEnv::from_container(container);
            if deps.faults.has(Fault::MysqlInterruptedInit) {
                tracing::warn!(pod = %self.pod_ref(), "fault mysql:interrupted-init: the first start stops before creating root@'%'");
                env.root_host = "localhost".into();
            }
            let sql = env
                .init_sql()
                .map_err(|missing| StartFailure::Exited(missing.to_string()))?;
            Some(mariadb::write_init_file(&self.run_dir, &sql)?)
        };
        let ip = match self.ip {
            Some(ip) => ip,
            None => {
                let ip = self.kubelet.allocate_ip().ok_or_else(|| {
                    StartFailure::Error(format!(
                        "failed to set up sandbox: no free pod address on node {}",
                        self.kubelet.node
                    ))
                })?;
                self.ip = Some(ip);
                ip
            }
        };
        let opts = ServerOptions {
            data_dir: data.path.clone(),
            run_dir: self.run_dir.clone(),
            ip,
            port: status::container_port(container),
            init_file: init_file.clone(),
            as_root: deps.mariadb.as_root(),
        };
        let offset = mariadb::log_offset(&opts.log_path());
        let child = deps.mariadb.start_server(&deps.spawner, &opts).await?;
        let pid = child.id().unwrap_or_default();
        if self.started_once {
            self.restart_count += 1;
        }
        self.started_once = true;
        self.running = Some(Running {
            child,
            pid,
            container_id: format!("kube-sim://{}", uuid::Uuid::new_v4().simple()),
            started_at: Utc::now(),
            volume: data.from_claim.then(|| data.path.clone()),
        });
        if !self.kubelet.register(&self.uid, pid) {
            tracing::info!(pod = %self.pod_ref(), "node went down while starting the container; killed it");
        }
        self.init = init_file.map(|init_file| PendingInit {
            data_dir: data.path,
            init_file,
            log: opts.log_path(),
            offset,
        });
        tracing::info!(pod = %self.pod_ref(), node = %self.kubelet.node, %ip, pid, restarts = self.restart_count, "container started");
        let image = obj::str_at(container, "/image").unwrap_or_default();
        self.event(
            pod,
            "Pulled",
            format!("Container image \"{image}\" already present on machine"),
        );
        let name = obj::str_at(container, "/name").unwrap_or("mysql");
        self.event(pod, "Created", format!("Created container {name}"));
        self.event(pod, "Started", format!("Started container {name}"));
        Ok(())
    }

    /// The entrypoint refused to run (e.g. no root password): exit code 1, message in the log.
    fn container_failed_at_start(&mut self, message: &str) {
        let log = self.run_dir.join("error.log");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| io::Write::write_all(&mut f, format!("{message}\n").as_bytes()));
        if let Err(e) = written {
            tracing::warn!(pod = %self.pod_ref(), error = %e, "failed to write container log");
        }
        if self.started_once {
            self.restart_count += 1;
        }
        self.started_once = true;
        let now = obj::rfc3339(Utc::now());
        self.last_terminated = Some(Terminated {
            exit_code: 1,
            reason: "Error".into(),
            started_at: now.clone(),
            finished_at: now,
            container_id: format!("kube-sim://{}", uuid::Uuid::new_v4().simple()),
        });
        self.waiting = None;
        self.backoff.record_exit(Instant::now(), Duration::ZERO);
        self.post_status();
    }

    /// Records an exited process; restarts happen in the next round (unless the pod is
    /// terminating or the node is down).
    fn on_exit(&mut self, status: io::Result<ExitStatus>) {
        let Some(running) = self.running.take() else {
            return;
        };
        self.kubelet.unregister(&self.uid);
        self.init = None;
        let exit_code = crate::process::exit_code(&status);
        let finished = Utc::now();
        self.last_terminated = Some(Terminated {
            exit_code,
            reason: if exit_code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            },
            started_at: obj::rfc3339(running.started_at),
            finished_at: obj::rfc3339(finished),
            container_id: running.container_id,
        });
        if self.zombie {
            tracing::info!(pod = %self.pod_ref(), uid = %self.uid, exit_code, "zombie container of a force-deleted pod exited");
            return;
        }
        if self.termination.is_some() || self.kubelet.is_down() || self.shutting_down() {
            return;
        }
        if self.kubelet.deps.faults.has(Fault::RestartNewIdentity) {
            tracing::warn!(pod = %self.pod_ref(), uid = %self.uid, exit_code, "fault restart:new-identity: container exited; removing the pod instead of restarting it");
            self.remove_pod();
            return;
        }
        tracing::info!(pod = %self.pod_ref(), exit_code, "container exited unexpectedly; the kubelet restarts it");
        let ran_for = (finished - running.started_at).to_std().unwrap_or_default();
        self.backoff.record_exit(Instant::now(), ran_for);
        self.waiting = None;
        self.post_status();
    }

    /// Writes the init marker once the server logged that it is ready (the init file ran).
    fn progress_init(&mut self) -> Option<Instant> {
        let init = self.init.as_ref()?;
        if !mariadb::log_shows_ready(&init.log, init.offset) {
            return Some(Instant::now() + INIT_POLL);
        }
        if let Err(e) = mariadb::finish_init(&init.data_dir, &init.init_file) {
            tracing::warn!(pod = %self.pod_ref(), error = %e, "failed to record first-start initialisation");
        }
        self.init = None;
        None
    }

    // ---- status ----------------------------------------------------------------------

    fn container_state(&self) -> ContainerState {
        if let Some(r) = &self.running {
            return ContainerState::Running {
                started_at: obj::rfc3339(r.started_at),
            };
        }
        if let Some((reason, message)) = &self.waiting {
            return ContainerState::Waiting {
                reason: reason.clone(),
                message: message.clone(),
            };
        }
        match &self.last_terminated {
            Some(t) => ContainerState::Terminated(t.clone()),
            None => ContainerState::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
        }
    }

    fn view(&self, pod: &Value) -> PodView {
        let runnable = status::runnable_container(pod);
        let containers = obj::array(pod, "/spec/containers")
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let name = obj::str_at(c, "/name").unwrap_or_default().to_string();
                let image = obj::str_at(c, "/image").unwrap_or_default().to_string();
                if Some(i) == runnable {
                    let state = self.container_state();
                    let last_terminated = match state {
                        ContainerState::Terminated(_) => None,
                        _ => self.last_terminated.clone(),
                    };
                    ContainerView {
                        name,
                        image,
                        state,
                        restart_count: self.restart_count,
                        last_terminated,
                        container_id: self.running.as_ref().map(|r| r.container_id.clone()),
                    }
                } else {
                    let message = if runnable.is_some() && status::runnable_image(&image) {
                        "kube-sim runs one mysql/mariadb container per pod".to_string()
                    } else {
                        status::unsupported_image_message(&image)
                    };
                    ContainerView {
                        name,
                        image,
                        state: ContainerState::Waiting {
                            reason: "ErrImagePull".into(),
                            message: Some(message),
                        },
                        restart_count: 0,
                        last_terminated: None,
                        container_id: None,
                    }
                }
            })
            .collect();
        PodView {
            host_ip: self.kubelet.host_ip,
            pod_ip: self.ip,
            start_time: self.start_time.clone(),
            containers,
            log_path: Some(
                self.run_dir
                    .join("error.log")
                    .to_string_lossy()
                    .into_owned(),
            ),
        }
    }

    /// Posts the pod's status (a no-op in the store when nothing changed). A stopped
    /// node's kubelet posts nothing.
    fn post_status(&self) {
        if self.kubelet.is_down() {
            return;
        }
        let Some(pod) = self.load() else {
            return;
        };
        let view = self.view(&pod);
        let now = obj::rfc3339(Utc::now());
        let uid = self.uid.clone();
        let result =
            self.kubelet
                .deps
                .store
                .mutate(ResourceKind::Pod, Some(&self.ns), &self.name, |p| {
                    if obj::uid(p) == uid && !obj::is_terminating(p) {
                        *p = status::apply_status(p, &view, &now);
                    }
                });
        match result {
            Ok(p) => {
                tracing::debug!(pod = %self.pod_ref(), phase = obj::pod_phase(&p), "pod status posted")
            }
            Err(e) => tracing::debug!(pod = %self.pod_ref(), error = %e, "pod status not posted"),
        }
    }

    /// A kubelet event about the pod's container (`involvedObject.fieldPath`
    /// `spec.containers{name}`, as the kubelet sets it).
    fn event(&self, pod: &Value, reason: &str, message: String) {
        let record = EventRecord::normal(pod, "kubelet", reason, message)
            .on_host(&self.kubelet.node)
            .at_field(&format!("spec.containers{{{}}}", container_name(pod)));
        crate::controllers::record_event(&self.kubelet.deps.store, &record);
    }
}

/// The name of the container the sim runs for `pod`.
fn container_name(pod: &Value) -> &str {
    status::runnable_container(pod)
        .and_then(|i| obj::array(pod, "/spec/containers").get(i))
        .and_then(|c| obj::str_at(c, "/name"))
        .unwrap_or("mysql")
}

async fn wait_child(running: &mut Option<Running>) -> io::Result<ExitStatus> {
    match running {
        Some(r) => r.child.wait().await,
        None => std::future::pending().await,
    }
}

fn grace_seconds(pod: &Value) -> u64 {
    pod.pointer("/metadata/deletionGracePeriodSeconds")
        .or_else(|| pod.pointer("/spec/terminationGracePeriodSeconds"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_GRACE_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_restart_is_immediate_then_back_off_doubles() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        b.record_exit(t0, Duration::from_secs(1));
        assert_eq!(b.blocked_until(t0), None, "first restart immediate");
        b.record_exit(t0, Duration::from_secs(1));
        assert_eq!(b.blocked_until(t0), Some(t0 + Duration::from_secs(10)));
        b.record_exit(t0, Duration::from_secs(1));
        assert_eq!(b.blocked_until(t0), Some(t0 + Duration::from_secs(20)));
    }

    #[test]
    fn back_off_caps_at_five_minutes_and_resets_after_a_long_run() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        for _ in 0..10 {
            b.record_exit(t0, Duration::from_secs(1));
        }
        assert_eq!(b.blocked_until(t0), Some(t0 + BACKOFF_MAX));
        b.record_exit(t0, Duration::from_secs(3600));
        assert_eq!(b.blocked_until(t0), None);
    }

    #[test]
    fn grace_period_prefers_the_deletion_grace() {
        let pod = serde_json::json!({"metadata": {"deletionGracePeriodSeconds": 5}, "spec": {"terminationGracePeriodSeconds": 30}});
        assert_eq!(grace_seconds(&pod), 5);
        assert_eq!(grace_seconds(&serde_json::json!({})), 30);
    }
}
