//! The pod worker: one task per pod bound to the node, owning the pod's container process
//! (a real mariadbd in the node's network namespace), as the kubelet's pod workers do.
//!
//! Each round it looks at the latest pod from the node's watch and decides: start the
//! container (once the data volume resolves), restart it after an exit (crash back-off:
//! first restart at once, then `backoff_initial` doubling to `backoff_max`), or terminate it
//! (SIGTERM, SIGKILL after the grace period, terminal phase, pod IP released, then the final
//! delete with grace 0 and a uid precondition). When the pod vanishes from the watch (a
//! force deletion) the process is SIGKILLed at once. When the node stops, the process is
//! SIGKILLed and the worker exits without posting anything, leaving what it knows (restart
//! count, last run) to the next worker of the same pod.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube_sim::kubelet::process::{exit_code, signal_group};
use kube_sim::kubelet::status::{container_port, runnable_image};
use kube_sim::mariadb::{self, InitEnv, ServerOptions};
use tokio::sync::watch;
use tokio::time::Instant;

use super::podstatus::{self, ContainerView, Exited, PodView, Run};
use super::volume::{self, DataSource};
use super::{Memory, NodeShared};

/// How often a first start checks the server log for the end of initialisation.
const INIT_POLL: Duration = Duration::from_millis(100);
/// How long a SIGKILLed process may take to be reaped.
const KILL_REAP_TIMEOUT: Duration = Duration::from_secs(10);
/// The kubelet's volume manager retries a mount that is not possible yet.
const VOLUME_RETRY: Duration = Duration::from_secs(1);
/// A data dir still held by another pod's dying container is checked again after this.
const BUSY_RETRY: Duration = Duration::from_millis(200);
/// A failed API call (status, delete) is retried after this.
const API_RETRY: Duration = Duration::from_secs(1);
/// `terminationGracePeriodSeconds`' default.
const DEFAULT_GRACE_SECONDS: i64 = 30;
/// A container that ran longer than this resets the back-off (the kubelet: 2 × max).
const BACKOFF_RESET_FACTOR: u32 = 2;

/// The kubelet's crash back-off for one container.
#[derive(Debug)]
pub(super) struct Backoff {
    initial: Duration,
    max: Duration,
    next_delay: Option<Duration>,
    not_before: Option<Instant>,
}

impl Backoff {
    pub(super) fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            next_delay: None,
            not_before: None,
        }
    }

    fn record_exit(&mut self, now: Instant, ran_for: Duration) {
        if ran_for > self.max * BACKOFF_RESET_FACTOR {
            self.next_delay = None;
        }
        match self.next_delay {
            None => {
                self.not_before = None;
                self.next_delay = Some(self.initial);
            }
            Some(delay) => {
                self.not_before = Some(now + delay);
                self.next_delay = Some((delay * 2).min(self.max));
            }
        }
    }

    fn blocked_until(&self, now: Instant) -> Option<Instant> {
        self.not_before.filter(|t| *t > now)
    }

    fn current_delay(&self) -> Duration {
        self.next_delay
            .map_or(Duration::ZERO, |d| (d / 2).max(self.initial))
    }
}

struct Running {
    child: tokio::process::Child,
    pid: u32,
    container_id: String,
    started_at: Time,
    started: Instant,
}

struct Termination {
    deadline: Instant,
    killed: bool,
}

struct PendingInit {
    data_dir: PathBuf,
    init_file: PathBuf,
    log: PathBuf,
    offset: u64,
}

enum Step {
    Exit,
    Wait(Option<Instant>),
}

/// Why a container could not be started.
enum StartFailure {
    /// The image's entrypoint would have exited 1 with this message.
    Exited(String),
    /// The runtime could not create the container.
    Error(String),
    /// Another pod's container still uses the data dir.
    Busy(PathBuf),
    /// The data volume is not mountable yet.
    Volume(String),
}

pub(super) struct Worker {
    node: Arc<NodeShared>,
    uid: String,
    ns: String,
    name: String,
    pod_rx: watch::Receiver<Option<Arc<Pod>>>,
    stop_rx: watch::Receiver<bool>,
    run_dir: PathBuf,
    start_time: Time,
    ip: Option<Ipv4Addr>,
    restart_count: i32,
    started_once: bool,
    last: Option<Exited>,
    running: Option<Running>,
    waiting: Option<(String, Option<String>)>,
    backoff: Backoff,
    termination: Option<Termination>,
    init: Option<PendingInit>,
    /// What was posted last, and the resourceVersion of the pod it was computed from.
    last_post: Option<(PodStatus, Option<String>)>,
    terminal_posted: bool,
}

impl Worker {
    pub(super) fn new(
        node: Arc<NodeShared>,
        pod: &Pod,
        pod_rx: watch::Receiver<Option<Arc<Pod>>>,
        stop_rx: watch::Receiver<bool>,
        memory: Option<Memory>,
    ) -> Worker {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let now = podstatus::now_time();
        let memory = memory.unwrap_or_else(|| remembered(pod, &now));
        let options = &node.deps.options;
        Worker {
            run_dir: node.deps.pods_dir.join(&uid),
            backoff: Backoff::new(options.backoff_initial, options.backoff_max),
            ns: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid,
            node,
            pod_rx,
            stop_rx,
            start_time: now,
            ip: None,
            restart_count: memory.restart_count,
            started_once: memory.started_once,
            last: memory.last,
            running: None,
            waiting: None,
            termination: None,
            init: None,
            last_post: None,
            terminal_posted: false,
        }
    }

    fn pod_ref(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }

    pub(super) async fn run(mut self) {
        loop {
            if *self.stop_rx.borrow() {
                return self.node_stopped().await;
            }
            let pod = self.pod_rx.borrow_and_update().clone();
            let step = match pod {
                Some(pod) => self.round(&pod).await,
                None => {
                    // Force-deleted (or replaced): kill what is left, at once.
                    if self.running.is_some() {
                        tracing::info!(pod = %self.pod_ref(), "pod object gone: SIGKILL");
                    }
                    self.kill_and_reap().await;
                    self.release();
                    Step::Exit
                }
            };
            let deadline = match step {
                Step::Exit => return,
                Step::Wait(deadline) => deadline,
            };
            let sleep = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.pod_rx.changed() => {
                    if changed.is_err() {
                        // The node's pod watch ended: the node is stopping.
                        return self.node_stopped().await;
                    }
                }
                _ = self.stop_rx.changed() => {}
                status = wait_child(&mut self.running) => self.on_exit(status).await,
                _ = sleep => {}
            }
        }
    }

    /// The node went down: SIGKILL, free everything, remember the container's history.
    async fn node_stopped(mut self) {
        self.kill_and_reap().await;
        self.release();
        let memory = Memory {
            restart_count: self.restart_count,
            started_once: self.started_once,
            last: self.last.clone(),
        };
        self.node.remember(&self.uid, memory);
    }

    async fn round(&mut self, pod: &Pod) -> Step {
        if pod.metadata.uid.as_deref() != Some(self.uid.as_str()) {
            self.kill_and_reap().await;
            self.release();
            return Step::Exit;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            return self.terminate(pod).await;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            // A terminal pod never runs again.
            return Step::Wait(None);
        }
        self.run_pod(pod).await
    }

    // ---- termination -------------------------------------------------------------

    async fn terminate(&mut self, pod: &Pod) -> Step {
        let now = Instant::now();
        if let Some(pid) = self.running.as_ref().map(|r| r.pid) {
            let grace = Duration::from_secs(grace_seconds(pod).max(0).unsigned_abs());
            let pod_ref = self.pod_ref();
            let t = match &mut self.termination {
                Some(t) => {
                    // A second delete may shorten the grace period.
                    t.deadline = t.deadline.min(now + grace);
                    t
                }
                None => {
                    tracing::info!(pod = %pod_ref, grace_seconds = grace.as_secs(), "stopping container with SIGTERM");
                    signal_group(pid, libc::SIGTERM);
                    self.termination.insert(Termination {
                        deadline: now + grace,
                        killed: false,
                    })
                }
            };
            if now >= t.deadline && !t.killed {
                t.killed = true;
                tracing::info!(pod = %pod_ref, "grace period over: SIGKILL");
                signal_group(pid, libc::SIGKILL);
            }
            let next = if t.killed {
                now + KILL_REAP_TIMEOUT
            } else {
                t.deadline
            };
            return Step::Wait(Some(next));
        }
        // No container runs: the pod's sandbox goes, its status turns terminal, and the
        // kubelet confirms the deletion.
        self.init = None;
        if let Some(ip) = self.ip.take() {
            self.node.net.release_pod_ip(ip);
        }
        self.node.deps.dir_locks.release(&self.uid);
        if !self.terminal_posted {
            if let Err(e) = self.post_status(pod, true).await {
                tracing::warn!(pod = %self.pod_ref(), error = %e, "failed to post the terminal status");
                return Step::Wait(Some(now + API_RETRY));
            }
            self.terminal_posted = true;
        }
        let pods: Api<Pod> = Api::namespaced(self.node.client.clone(), &self.ns);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match pods.delete(&self.name, &params).await {
            Ok(_) => {
                tracing::info!(pod = %self.pod_ref(), "pod terminated; deletion confirmed");
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {
                tracing::debug!(pod = %self.pod_ref(), "pod already gone or replaced");
            }
            Err(e) => {
                tracing::warn!(pod = %self.pod_ref(), error = %e, "failed to confirm the deletion; retrying");
                return Step::Wait(Some(now + API_RETRY));
            }
        }
        self.release();
        Step::Exit
    }

    async fn kill_and_reap(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        signal_group(running.pid, libc::SIGKILL);
        let status = tokio::time::timeout(KILL_REAP_TIMEOUT, running.child.wait()).await;
        let exit_code = match &status {
            Ok(s) => exit_code(s),
            Err(_) => {
                tracing::warn!(pod = %self.pod_ref(), pid = running.pid, "killed process not reaped within {}s", KILL_REAP_TIMEOUT.as_secs());
                137
            }
        };
        self.last = Some(Exited {
            exit_code,
            reason: Exited::reason_for(exit_code).into(),
            started_at: running.started_at,
            finished_at: podstatus::now_time(),
            container_id: running.container_id,
        });
        self.init = None;
        self.node.unregister_pid(&self.uid);
        self.node.deps.dir_locks.release(&self.uid);
    }

    /// Frees the pod's address, data dir claim and run dir.
    fn release(&mut self) {
        if let Some(ip) = self.ip.take() {
            self.node.net.release_pod_ip(ip);
        }
        self.node.deps.dir_locks.release(&self.uid);
        self.node.forget(&self.uid);
        if let Err(e) = std::fs::remove_dir_all(&self.run_dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(pod = %self.pod_ref(), dir = %self.run_dir.display(), error = %e, "failed to remove the pod's run dir");
        }
    }

    // ---- running -------------------------------------------------------------------

    async fn run_pod(&mut self, pod: &Pod) -> Step {
        let now = Instant::now();
        if self.running.is_some() {
            let poll = self.progress_init();
            return self.posted(pod, poll).await;
        }
        let Some(container) = runnable_container(pod) else {
            return self.posted(pod, None).await;
        };
        if let Some(until) = self.backoff.blocked_until(now) {
            let delay = self.backoff.current_delay().as_secs();
            self.waiting = Some((
                "CrashLoopBackOff".into(),
                Some(format!(
                    "back-off {delay}s restarting failed container={} pod={}_{}({})",
                    container.name, self.name, self.ns, self.uid
                )),
            ));
            return self.posted(pod, Some(until)).await;
        }
        if !self.started_once && self.last_post.is_none() {
            // The kubelet reports the container as being created before it runs (the
            // first start may wait for the template data dir to be built).
            self.waiting = Some(("ContainerCreating".into(), None));
            if let Err(e) = self.post_status(pod, false).await {
                tracing::debug!(pod = %self.pod_ref(), error = %crate::report(&e), "pod status not posted");
            }
        }
        match self.start_container(pod, &container).await {
            Ok(()) => {
                self.waiting = None;
                let poll = self.init.as_ref().map(|_| Instant::now() + INIT_POLL);
                self.posted(pod, poll).await
            }
            Err(StartFailure::Volume(reason)) => {
                tracing::debug!(pod = %self.pod_ref(), %reason, "waiting for the data volume");
                self.waiting = Some(("ContainerCreating".into(), None));
                self.posted(pod, Some(now + VOLUME_RETRY)).await
            }
            Err(StartFailure::Busy(dir)) => {
                tracing::debug!(pod = %self.pod_ref(), dir = %dir.display(), "data dir still in use by another pod's container");
                self.waiting = Some(("ContainerCreating".into(), None));
                self.posted(pod, Some(now + BUSY_RETRY)).await
            }
            Err(StartFailure::Exited(message)) => {
                self.container_failed_at_start(&message);
                self.posted(pod, Some(Instant::now())).await
            }
            Err(StartFailure::Error(message)) => {
                tracing::warn!(pod = %self.pod_ref(), error = %message, "failed to create the container");
                self.backoff.record_exit(now, Duration::ZERO);
                self.waiting = Some(("CreateContainerError".into(), Some(message)));
                let retry = self
                    .backoff
                    .blocked_until(now)
                    .unwrap_or(now + self.backoff.initial);
                self.posted(pod, Some(retry)).await
            }
        }
    }

    /// Posts the status and waits until `deadline` (sooner when the post failed).
    async fn posted(&mut self, pod: &Pod, deadline: Option<Instant>) -> Step {
        match self.post_status(pod, false).await {
            Ok(()) => Step::Wait(deadline),
            Err(e) => {
                tracing::debug!(pod = %self.pod_ref(), error = %e, "pod status not posted; retrying");
                let retry = Instant::now() + API_RETRY;
                Step::Wait(Some(deadline.map_or(retry, |d| d.min(retry))))
            }
        }
    }

    async fn data_dir(
        &self,
        pod: &Pod,
        container: &Container,
    ) -> Result<(PathBuf, bool), StartFailure> {
        Ok(match volume::data_source(pod, container) {
            DataSource::Claim(claim) => {
                let path = volume::resolve(&self.node.client, &self.ns, &claim)
                    .await
                    .map_err(|e| StartFailure::Volume(e.to_string()))?;
                (path, false)
            }
            DataSource::EmptyDir(name) => (self.run_dir.join("volumes").join(name), false),
            DataSource::ContainerLayer => (self.run_dir.join("container-data"), true),
        })
    }

    async fn start_container(
        &mut self,
        pod: &Pod,
        container: &Container,
    ) -> Result<(), StartFailure> {
        let (data_dir, fresh_each_start) = self.data_dir(pod, container).await?;
        let deps = self.node.deps.clone();
        std::fs::create_dir_all(&self.run_dir).map_err(|e| {
            StartFailure::Error(format!(
                "failed to create run dir {}: {e}",
                self.run_dir.display()
            ))
        })?;
        let template = deps
            .mariadb
            .template(&deps.spawner)
            .await
            .map_err(|e| StartFailure::Error(crate::report(&e)))?;
        if !deps.dir_locks.claim(&data_dir, &self.uid) {
            return Err(StartFailure::Busy(data_dir));
        }
        let started = self
            .prepare_and_spawn(container, &data_dir, fresh_each_start, &template)
            .await;
        if started.is_err() {
            deps.dir_locks.release(&self.uid);
        }
        started
    }

    async fn prepare_and_spawn(
        &mut self,
        container: &Container,
        data_dir: &std::path::Path,
        fresh_each_start: bool,
        template: &std::path::Path,
    ) -> Result<(), StartFailure> {
        let deps = self.node.deps.clone();
        let chain = |e: mariadb::MariaDbError| StartFailure::Error(crate::report(&e));
        if fresh_each_start {
            mariadb::wipe_data_dir(data_dir).map_err(chain)?;
        }
        mariadb::prepare_data_dir(template, data_dir).map_err(chain)?;
        let container_json = serde_json::to_value(container).unwrap_or_default();
        let init_file = if mariadb::init_done(data_dir) {
            None
        } else {
            let sql = InitEnv::from_container(&container_json)
                .init_sql()
                .map_err(|missing| StartFailure::Exited(missing.to_string()))?;
            Some(mariadb::write_init_file(&self.run_dir, &sql).map_err(chain)?)
        };
        let ip = match self.ip {
            Some(ip) => ip,
            None => {
                let ip = self.node.net.allocate_pod_ip().map_err(|reason| {
                    StartFailure::Error(format!(
                        "failed to set up the pod sandbox on node {}: {reason}",
                        self.node.name
                    ))
                })?;
                self.ip = Some(ip);
                ip
            }
        };
        let opts = ServerOptions {
            data_dir: data_dir.to_path_buf(),
            run_dir: self.run_dir.clone(),
            ip,
            port: container_port(&container_json),
            init_file: init_file.clone(),
            as_root: deps.mariadb.as_root(),
        };
        let tmp = opts.tmp_dir();
        std::fs::create_dir_all(&tmp)
            .map_err(|e| StartFailure::Error(format!("failed to create {}: {e}", tmp.display())))?;
        let offset = mariadb::log_offset(&opts.log_path());
        let mut command = deps.mariadb.server_command(&opts).map_err(chain)?;
        self.node.net.enter(&mut command).map_err(|reason| {
            StartFailure::Error(format!(
                "failed to enter the network namespace of node {}: {reason}",
                self.node.name
            ))
        })?;
        let child = deps
            .spawner
            .spawn(command)
            .await
            .map_err(|e| StartFailure::Error(crate::report(&e)))?;
        let pid = child.id().unwrap_or_default();
        if self.started_once {
            self.restart_count += 1;
        }
        self.started_once = true;
        self.running = Some(Running {
            child,
            pid,
            container_id: format!("hollow://{}", super::new_id()),
            started_at: podstatus::now_time(),
            started: Instant::now(),
        });
        self.termination = None;
        if !self.node.register_pid(&self.uid, &self.ns, &self.name, pid) {
            tracing::info!(pod = %self.pod_ref(), "node went down while the container started; killed it");
        }
        self.init = init_file.map(|init_file| PendingInit {
            data_dir: data_dir.to_path_buf(),
            init_file,
            log: opts.log_path(),
            offset,
        });
        tracing::info!(pod = %self.pod_ref(), node = %self.node.name, %ip, pid, restarts = self.restart_count, "container started");
        Ok(())
    }

    /// The entrypoint refused to run (no root password): exit code 1, message in the log.
    fn container_failed_at_start(&mut self, message: &str) {
        let log = self.run_dir.join("error.log");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| io::Write::write_all(&mut f, format!("{message}\n").as_bytes()));
        if let Err(e) = written {
            tracing::warn!(pod = %self.pod_ref(), error = %e, "failed to write the container log");
        }
        if self.started_once {
            self.restart_count += 1;
        }
        self.started_once = true;
        let now = podstatus::now_time();
        self.last = Some(Exited {
            exit_code: 1,
            reason: "Error".into(),
            started_at: now.clone(),
            finished_at: now,
            container_id: format!("hollow://{}", super::new_id()),
        });
        self.waiting = None;
        self.backoff.record_exit(Instant::now(), Duration::ZERO);
    }

    /// Records an exited process; the next round restarts it (unless the pod terminates).
    async fn on_exit(&mut self, status: io::Result<ExitStatus>) {
        let Some(running) = self.running.take() else {
            return;
        };
        self.node.unregister_pid(&self.uid);
        self.node.deps.dir_locks.release(&self.uid);
        self.init = None;
        let code = exit_code(&status);
        self.last = Some(Exited {
            exit_code: code,
            reason: Exited::reason_for(code).into(),
            started_at: running.started_at,
            finished_at: podstatus::now_time(),
            container_id: running.container_id,
        });
        if self.termination.is_some() {
            tracing::info!(pod = %self.pod_ref(), exit_code = code, "container stopped");
            return;
        }
        tracing::info!(pod = %self.pod_ref(), exit_code = code, "container exited; the node restarts it");
        self.backoff
            .record_exit(Instant::now(), running.started.elapsed());
        self.waiting = None;
    }

    /// Writes the init marker once the server logged that it is ready (the init file ran).
    fn progress_init(&mut self) -> Option<Instant> {
        let init = self.init.as_ref()?;
        if !mariadb::log_shows_ready(&init.log, init.offset) {
            return Some(Instant::now() + INIT_POLL);
        }
        if let Err(e) = mariadb::finish_init(&init.data_dir, &init.init_file) {
            tracing::warn!(pod = %self.pod_ref(), error = %crate::report(&e), "failed to record the first-start initialisation");
        }
        self.init = None;
        None
    }

    // ---- status ----------------------------------------------------------------------

    fn run_state(&self) -> Run {
        if let Some(r) = &self.running {
            return Run::Running {
                container_id: r.container_id.clone(),
                started_at: r.started_at.clone(),
            };
        }
        if let Some((reason, message)) = &self.waiting {
            return Run::Waiting {
                reason: reason.clone(),
                message: message.clone(),
            };
        }
        match (&self.last, self.termination.is_some()) {
            (Some(last), true) => Run::Terminated(last.clone()),
            _ => Run::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
        }
    }

    fn view(&self, pod: &Pod, terminal: bool) -> PodView {
        let runnable = runnable_container(pod).map(|c| c.name);
        let containers = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| {
                let image = c.image.clone().unwrap_or_default();
                if Some(&c.name) == runnable.as_ref() {
                    let mut run = self.run_state();
                    if terminal && !matches!(run, Run::Terminated(_)) {
                        run = match &self.last {
                            Some(last) => Run::Terminated(last.clone()),
                            None => run,
                        };
                    }
                    let last = match run {
                        Run::Terminated(_) => None,
                        _ => self.last.clone(),
                    };
                    ContainerView {
                        name: c.name.clone(),
                        image,
                        run,
                        restart_count: self.restart_count,
                        last,
                    }
                } else {
                    let message = if runnable_image(&image) {
                        "a hollow node runs one mysql/mariadb container per pod".to_string()
                    } else {
                        format!("a hollow node cannot run image \"{image}\": it runs only mysql:* and mariadb:* images (as a real mariadbd)")
                    };
                    ContainerView {
                        name: c.name.clone(),
                        image,
                        run: Run::Waiting {
                            reason: "ErrImagePull".into(),
                            message: Some(message),
                        },
                        restart_count: 0,
                        last: None,
                    }
                }
            })
            .collect();
        PodView {
            host_ip: self.node.net.node_ip(),
            pod_ip: if terminal { None } else { self.ip },
            start_time: self.start_time.clone(),
            containers,
            terminal,
        }
    }

    /// Posts the pod's status when it differs from what the pod shows (a stopped node
    /// posts nothing: its worker has exited).
    async fn post_status(&mut self, pod: &Pod, terminal: bool) -> Result<(), kube::Error> {
        let view = self.view(pod, terminal);
        // Like the kubelet's status manager, the node builds on what it posted last (the
        // watch may still deliver older versions of the pod), and posts when its own view
        // changed or when the API's copy diverged from it (e.g. the node-lifecycle
        // controller marked the pod not ready) in a version not seen before.
        let current = pod.status.as_ref();
        let basis = self.last_post.as_ref().map(|(s, _)| s).or(current);
        let desired = podstatus::desired_status(basis, &view, &podstatus::now_time());
        let rv = pod.metadata.resource_version.clone();
        let changed = self
            .last_post
            .as_ref()
            .is_none_or(|(posted, _)| podstatus::differs(Some(posted), &desired));
        let diverged = podstatus::differs(current, &desired)
            && self
                .last_post
                .as_ref()
                .is_none_or(|(_, posted_rv)| *posted_rv != rv);
        if !changed && !diverged {
            return Ok(());
        }
        let pods: Api<Pod> = Api::namespaced(self.node.client.clone(), &self.ns);
        match pods
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Strategic(podstatus::status_patch(&desired)),
            )
            .await
        {
            Ok(_) => {
                tracing::debug!(pod = %self.pod_ref(), phase = ?desired.phase, "pod status posted");
                self.last_post = Some((desired, rv));
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// What a worker starts from when the node kept nothing: the pod's reported status.
fn remembered(pod: &Pod, now: &Time) -> Memory {
    let Some(container) = runnable_container(pod) else {
        return Memory::default();
    };
    match podstatus::reported_container(pod, &container.name) {
        Some(status) => {
            let (restart_count, last) = podstatus::remembered_from_status(status, now);
            Memory {
                started_once: status.container_id.is_some() || restart_count > 0 || last.is_some(),
                restart_count,
                last,
            }
        }
        None => Memory::default(),
    }
}

/// The container a hollow node runs as mariadbd: the first with a mysql/mariadb image.
pub(super) fn runnable_container(pod: &Pod) -> Option<Container> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| runnable_image(c.image.as_deref().unwrap_or_default()))
        .cloned()
}

async fn wait_child(running: &mut Option<Running>) -> io::Result<ExitStatus> {
    match running {
        Some(r) => r.child.wait().await,
        None => std::future::pending().await,
    }
}

fn grace_seconds(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(DEFAULT_GRACE_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_restart_is_immediate_then_back_off_doubles_to_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(300));
        let t0 = Instant::now();
        b.record_exit(t0, Duration::from_secs(1));
        assert_eq!(b.blocked_until(t0), None, "first restart immediate");
        b.record_exit(t0, Duration::from_secs(1));
        assert_eq!(b.blocked_until(t0), Some(t0 + Duration::from_secs(10)));
        b.record_exit(t0, Duration::from_secs(1));
        assert_eq!(b.blocked_until(t0), Some(t0 + Duration::from_secs(20)));
        for _ in 0..10 {
            b.record_exit(t0, Duration::from_secs(1));
        }
        assert_eq!(b.blocked_until(t0), Some(t0 + Duration::from_secs(300)));
        b.record_exit(t0, Duration::from_secs(3600));
        assert_eq!(b.blocked_until(t0), None, "a long run resets the back-off");
    }

    #[test]
    fn grace_period_prefers_the_deletion_grace() {
        let pod: Pod = serde_yaml::from_str(
            "metadata: {deletionGracePeriodSeconds: 5}\nspec: {terminationGracePeriodSeconds: 30, containers: []}",
        )
        .expect("pod");
        assert_eq!(grace_seconds(&pod), 5);
        assert_eq!(grace_seconds(&Pod::default()), DEFAULT_GRACE_SECONDS);
    }

    #[test]
    fn a_fresh_worker_learns_the_history_from_the_status() {
        let pod: Pod = serde_yaml::from_str(
            r#"
metadata: {name: mysql-0, uid: u1}
spec: {containers: [{name: mysql, image: "mysql:5.7"}]}
status:
  containerStatuses:
  - name: mysql
    image: docker.io/library/mysql:5.7
    imageID: ""
    ready: true
    restartCount: 3
    containerID: hollow://c
    state: {running: {startedAt: "2024-01-01T00:00:00Z"}}
"#,
        )
        .expect("pod");
        let m = remembered(&pod, &podstatus::now_time());
        assert_eq!(m.restart_count, 3);
        assert!(m.started_once);
        assert_eq!(m.last.map(|l| l.reason), Some("Unknown".into()));

        let unknown_image: Pod =
            serde_yaml::from_str("spec: {containers: [{name: web, image: nginx}]}").expect("pod");
        assert_eq!(runnable_container(&unknown_image), None);
        assert!(!remembered(&unknown_image, &podstatus::now_time()).started_once);
    }
}
