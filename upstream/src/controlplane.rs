//! The official control plane, started in order and stopped in reverse:
//! etcd → kube-apiserver → kube-controller-manager → kube-scheduler.
//!
//! Each binary (built by `scripts/build-upstream.sh`) runs in its own process group, forked
//! from kube-sim's [`Spawner`] thread with `PR_SET_PDEATHSIG(SIGKILL)`, so none outlives
//! this process; each writes its own log under `<run dir>/logs/`. Every wait is bounded by a
//! named timeout whose error says what was awaited and what was last seen. The flags that
//! differ from the defaults, and why, are listed in the README (*The upstream target*).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use base64::Engine;
use k8s_openapi::apimachinery::pkg::version::Info as VersionInfo;
use kube_sim::kubelet::process::{ProcessError, Spawner, signal_group};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::pki::{Pki, PkiError, PkiFiles};

/// The binaries, in start order.
pub const BINARIES: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
];

/// `--service-cluster-ip-range`: kubeadm's default; the first address (10.96.0.1) is the
/// `kubernetes` Service and is in the serving certificate.
pub const SERVICE_CLUSTER_IP_RANGE: &str = "10.96.0.0/16";

#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error(
        "{binary} not found in {}: build the official binaries with `bash scripts/build-upstream.sh` (or point UPSTREAM_BIN_DIR at them)",
        dir.display()
    )]
    MissingBinary { binary: &'static str, dir: PathBuf },
    #[error("failed to create {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write {}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to generate the PKI under {}", dir.display())]
    Pki {
        dir: PathBuf,
        #[source]
        source: PkiError,
    },
    #[error("failed to find a free port on {addr}")]
    FreePort {
        addr: Ipv4Addr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start the process-spawner thread")]
    Spawner(#[source] ProcessError),
    #[error("failed to start {component} (log: {})", log.display())]
    Spawn {
        component: &'static str,
        log: PathBuf,
        #[source]
        source: ProcessError,
    },
    #[error("failed to open {component}'s log {}", log.display())]
    Log {
        component: &'static str,
        log: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{component} exited ({status}) before it was ready; last log lines ({}):\n{tail}", log.display())]
    Exited {
        component: &'static str,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "timed out after {timeout:?} ({name}) waiting for {what}; last seen: {last}; log: {}",
        log.display()
    )]
    Timeout {
        name: &'static str,
        timeout: Duration,
        what: String,
        last: String,
        log: PathBuf,
    },
    #[error("failed to build a client for {what}")]
    Client {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to read the admin kubeconfig {}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("failed to remove the run dir {}", path.display())]
    RemoveRunDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Bound on one readiness probe (a hung connection is retried, not waited out).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

type Result<T, E = ControlPlaneError> = std::result::Result<T, E>;

/// Bounds on each start-up wait (named after the flag-like fields in errors).
#[derive(Clone, Debug)]
pub struct Timeouts {
    pub etcd_healthy: Duration,
    pub apiserver_ready: Duration,
    pub controller_manager_healthy: Duration,
    pub scheduler_healthy: Duration,
    /// The serviceaccount controller has created `default/default` (pods can be admitted).
    pub default_service_account: Duration,
    /// SIGTERM → exit before SIGKILL, per component.
    pub stop_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            etcd_healthy: Duration::from_secs(30),
            apiserver_ready: Duration::from_secs(120),
            controller_manager_healthy: Duration::from_secs(60),
            scheduler_healthy: Duration::from_secs(60),
            default_service_account: Duration::from_secs(60),
            stop_grace: Duration::from_secs(10),
        }
    }
}

/// How to start the control plane.
#[derive(Clone, Debug)]
pub struct ControlPlaneConfig {
    /// Everything goes under it (data, PKI, logs, kubeconfigs); created if missing and
    /// removed by [`ControlPlane::stop`] unless `keep`.
    pub run_dir: PathBuf,
    /// Where the binaries are; `None`: `$UPSTREAM_BIN_DIR`, else `<repo>/.upstream/bin`.
    pub bin_dir: Option<PathBuf>,
    /// The bridge host address (`PodNetwork::host_ip`): the API server binds and advertises it.
    pub host_ip: Ipv4Addr,
    /// Also write the admin kubeconfig here (removed again on stop unless `keep`).
    pub kubeconfig: Option<PathBuf>,
    pub keep: bool,
    /// kube-controller-manager `--node-monitor-grace-period`.
    pub node_monitor_grace_period: Duration,
    /// kube-controller-manager `--node-monitor-period`.
    pub node_monitor_period: Duration,
    pub timeouts: Timeouts,
}

impl ControlPlaneConfig {
    pub fn new(run_dir: impl Into<PathBuf>, host_ip: Ipv4Addr) -> ControlPlaneConfig {
        ControlPlaneConfig {
            run_dir: run_dir.into(),
            bin_dir: None,
            host_ip,
            kubeconfig: None,
            keep: false,
            node_monitor_grace_period: Duration::from_secs(10),
            node_monitor_period: Duration::from_secs(2),
            timeouts: Timeouts::default(),
        }
    }
}

/// The default binary directory: `$UPSTREAM_BIN_DIR`, else `<repo>/.upstream/bin`.
pub fn default_bin_dir() -> PathBuf {
    match std::env::var_os("UPSTREAM_BIN_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(".upstream")
            .join("bin"),
    }
}

/// Paths of the official binaries, each checked to exist.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub dir: PathBuf,
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kube_scheduler: PathBuf,
    pub kubectl: PathBuf,
}

impl Binaries {
    /// Finds every binary in `dir`; the error names the first one missing.
    pub fn find(dir: &Path) -> Result<Binaries> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
        let get = |binary: &'static str| {
            let path = dir.join(binary);
            if path.is_file() {
                Ok(path)
            } else {
                Err(ControlPlaneError::MissingBinary {
                    binary,
                    dir: dir.clone(),
                })
            }
        };
        Ok(Binaries {
            etcd: get("etcd")?,
            kube_apiserver: get("kube-apiserver")?,
            kube_controller_manager: get("kube-controller-manager")?,
            kube_scheduler: get("kube-scheduler")?,
            kubectl: get("kubectl")?,
            dir,
        })
    }
}

/// A free TCP port on `addr` (bound and released; the component binds it right after).
fn free_port(addr: Ipv4Addr) -> Result<u16> {
    TcpListener::bind(SocketAddr::from((addr, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| ControlPlaneError::FreePort { addr, source })
}

fn create_dir(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|source| ControlPlaneError::CreateDir {
            path: path.to_owned(),
            source,
        })
}

/// A running component.
struct Component {
    name: &'static str,
    child: tokio::process::Child,
    pid: u32,
    log: PathBuf,
}

impl Component {
    /// Errors when the process has exited (with its log's tail).
    fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(ControlPlaneError::Exited {
                component: self.name,
                status: status.to_string(),
                log: self.log.clone(),
                tail: log_tail(&self.log, 15),
            }),
            _ => Ok(()),
        }
    }

    /// SIGTERM to the group, bounded wait, then SIGKILL and reap.
    async fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        signal_group(self.pid, libc::SIGTERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(_) => tracing::debug!(component = self.name, "stopped"),
            Err(_) => {
                tracing::warn!(
                    component = self.name,
                    ?grace,
                    "no exit after SIGTERM: SIGKILL"
                );
                signal_group(self.pid, libc::SIGKILL);
                let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
            }
        }
    }
}

/// The last `n` lines of a log file (for errors).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The running control plane. [`stop`](ControlPlane::stop) it; dropping it SIGKILLs every
/// component and removes the run dir (unless `keep`).
pub struct ControlPlane {
    run_dir: PathBuf,
    keep: bool,
    kubeconfig: PathBuf,
    extra_kubeconfig: Option<PathBuf>,
    server: String,
    version: VersionInfo,
    pki: PkiFiles,
    binaries: Binaries,
    client: kube::Client,
    components: Vec<Component>,
    spawner: Arc<Spawner>,
    ready_after: Duration,
    stop_grace: Duration,
    stopped: bool,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server", &self.server)
            .field("run_dir", &self.run_dir)
            .field("version", &self.version.git_version)
            .finish_non_exhaustive()
    }
}

/// Startup state shared by the steps (so a failure half-way stops what already runs).
struct Starting {
    spawner: Arc<Spawner>,
    components: Vec<Component>,
    logs: PathBuf,
}

impl Starting {
    async fn spawn(
        &mut self,
        name: &'static str,
        program: &Path,
        args: Vec<String>,
    ) -> Result<usize> {
        let log = self.logs.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(|source| ControlPlaneError::Log {
            component: name,
            log: log.clone(),
            source,
        })?;
        let err_file = file.try_clone().map_err(|source| ControlPlaneError::Log {
            component: name,
            log: log.clone(),
            source,
        })?;
        let mut command = std::process::Command::new(program);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err_file));
        tracing::info!(component = name, args = %args.join(" "), log = %log.display(), "starting");
        let child =
            self.spawner
                .spawn(command)
                .await
                .map_err(|source| ControlPlaneError::Spawn {
                    component: name,
                    log: log.clone(),
                    source,
                })?;
        let pid = child.id().unwrap_or(0);
        self.components.push(Component {
            name,
            child,
            pid,
            log,
        });
        Ok(self.components.len() - 1)
    }

    /// Polls `probe` (exponential backoff with jitter, 100 ms to 1 s) until it answers `Ok`,
    /// the component exits, or `timeout`.
    async fn wait<F, Fut>(
        &mut self,
        index: usize,
        name: &'static str,
        timeout: Duration,
        what: &str,
        mut probe: F,
    ) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let began = Instant::now();
        let deadline = began + timeout;
        let mut last;
        let mut delays = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(1))
            .with_factor(1.5)
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            self.components[index].check_running()?;
            let probe_deadline = deadline.min(Instant::now() + PROBE_TIMEOUT);
            match tokio::time::timeout_at(probe_deadline.into(), probe()).await {
                Ok(Ok(())) => {
                    tracing::info!(waited = ?began.elapsed(), "{what}: ok");
                    return Ok(());
                }
                Ok(Err(seen)) => last = seen,
                Err(_) => last = format!("no answer within {PROBE_TIMEOUT:?}"),
            }
            if Instant::now() >= deadline {
                return Err(ControlPlaneError::Timeout {
                    name,
                    timeout,
                    what: what.to_owned(),
                    last,
                    log: self.components[index].log.clone(),
                });
            }
            let delay = delays.next().unwrap_or(Duration::from_secs(1));
            tokio::time::sleep_until(deadline.min(Instant::now() + delay).into()).await;
        }
    }

    async fn abort(&mut self, grace: Duration) {
        while let Some(mut c) = self.components.pop() {
            c.stop(grace).await;
        }
    }
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler, each waited
    /// for; on failure stops whatever started and removes the run dir (unless `keep`).
    pub async fn start(config: ControlPlaneConfig) -> Result<ControlPlane> {
        let began = Instant::now();
        let bin_dir = config.bin_dir.clone().unwrap_or_else(default_bin_dir);
        let binaries = Binaries::find(&bin_dir)?;
        create_dir(&config.run_dir, 0o700)?;
        let spawner = Arc::new(
            Spawner::start(tokio::runtime::Handle::current())
                .map_err(ControlPlaneError::Spawner)?,
        );
        let mut starting = Starting {
            spawner: spawner.clone(),
            components: vec![],
            logs: config.run_dir.join("logs"),
        };
        let result = Self::start_components(&config, &binaries, &mut starting).await;
        match result {
            Ok((pki, kubeconfig, server, client, version)) => {
                let ready_after = began.elapsed();
                tracing::info!(
                    %server,
                    version = %version.git_version,
                    ready_after = ?ready_after,
                    "control plane ready"
                );
                Ok(ControlPlane {
                    run_dir: config.run_dir.clone(),
                    keep: config.keep,
                    kubeconfig,
                    extra_kubeconfig: config.kubeconfig.clone(),
                    server,
                    version,
                    pki,
                    binaries,
                    client,
                    components: std::mem::take(&mut starting.components),
                    spawner,
                    ready_after,
                    stop_grace: config.timeouts.stop_grace,
                    stopped: false,
                })
            }
            Err(e) => {
                starting.abort(config.timeouts.stop_grace).await;
                spawner.close().await;
                if config.keep {
                    tracing::info!(run_dir = %config.run_dir.display(), "kept the run dir (logs) after the failed start");
                } else {
                    let _ = std::fs::remove_dir_all(&config.run_dir);
                    if let Some(k) = &config.kubeconfig {
                        let _ = std::fs::remove_file(k);
                    }
                }
                Err(e)
            }
        }
    }

    async fn start_components(
        config: &ControlPlaneConfig,
        bin: &Binaries,
        s: &mut Starting,
    ) -> Result<(PkiFiles, PathBuf, String, kube::Client, VersionInfo)> {
        let run = &config.run_dir;
        let t = &config.timeouts;
        create_dir(&s.logs, 0o755)?;
        let pki_dir = run.join("pki");
        let pki = Pki::generate(config.host_ip)
            .and_then(|p| p.write(&pki_dir))
            .map_err(|source| ControlPlaneError::Pki {
                dir: pki_dir.clone(),
                source,
            })?;
        let path = |p: &Path| p.display().to_string();

        // etcd
        let loopback = Ipv4Addr::LOCALHOST;
        let client_port = free_port(loopback)?;
        let peer_port = free_port(loopback)?;
        let etcd_data = run.join("etcd");
        create_dir(&etcd_data, 0o700)?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd = s
            .spawn(
                "etcd",
                &bin.etcd,
                vec![
                    "--name=default".into(),
                    format!("--data-dir={}", path(&etcd_data)),
                    format!("--listen-client-urls={client_url}"),
                    format!("--advertise-client-urls={client_url}"),
                    format!("--listen-peer-urls={peer_url}"),
                    format!("--initial-advertise-peer-urls={peer_url}"),
                    format!("--initial-cluster=default={peer_url}"),
                    "--initial-cluster-state=new".into(),
                ],
            )
            .await?;
        let health = (client_port, "/health");
        s.wait(
            etcd,
            "etcd_healthy",
            t.etcd_healthy,
            &format!("etcd {client_url}/health"),
            move || async move {
                match http_get(SocketAddr::from((loopback, health.0)), health.1).await {
                    Ok((200, body)) if body.contains("\"health\":\"true\"") => Ok(()),
                    Ok((code, body)) => Err(format!("HTTP {code}: {}", body.trim())),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await?;

        // kube-apiserver
        let host = config.host_ip;
        let secure_port = free_port(host)?;
        let server = format!("https://{host}:{secure_port}");
        let apiserver = s
            .spawn(
                "kube-apiserver",
                &bin.kube_apiserver,
                vec![
                    format!("--etcd-servers={client_url}"),
                    format!("--bind-address={host}"),
                    format!("--advertise-address={host}"),
                    format!("--secure-port={secure_port}"),
                    format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
                    format!("--client-ca-file={}", path(&pki.ca_cert)),
                    format!("--tls-cert-file={}", path(&pki.apiserver_cert)),
                    format!("--tls-private-key-file={}", path(&pki.apiserver_key)),
                    format!("--kubelet-client-certificate={}", path(&pki.admin_cert)),
                    format!("--kubelet-client-key={}", path(&pki.admin_key)),
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                    format!("--service-account-key-file={}", path(&pki.sa_pub)),
                    format!("--service-account-signing-key-file={}", path(&pki.sa_key)),
                    "--authorization-mode=Node,RBAC".into(),
                    format!("--cert-dir={}", path(&pki.dir)),
                ],
            )
            .await?;
        let kubeconfig = run.join("admin.kubeconfig");
        write_kubeconfig(&kubeconfig, &server, &pki)?;
        if let Some(extra) = &config.kubeconfig {
            write_kubeconfig(extra, &server, &pki)?;
        }
        let client = admin_client(&kubeconfig).await?;
        {
            let client = client.clone();
            s.wait(
                apiserver,
                "apiserver_ready",
                t.apiserver_ready,
                &format!("kube-apiserver {server}/readyz"),
                move || {
                    let client = client.clone();
                    async move { get_ok(&client, "/readyz?verbose").await }
                },
            )
            .await?;
        }
        let version =
            client
                .apiserver_version()
                .await
                .map_err(|source| ControlPlaneError::Client {
                    what: format!("GET {server}/version"),
                    source,
                })?;

        // kube-controller-manager
        let kcm_kubeconfig = run.join("controller-manager.kubeconfig");
        write_kubeconfig(&kcm_kubeconfig, &server, &pki)?;
        let kcm_port = free_port(loopback)?;
        let kcm = s
            .spawn(
                "kube-controller-manager",
                &bin.kube_controller_manager,
                vec![
                    format!("--kubeconfig={}", path(&kcm_kubeconfig)),
                    format!("--authentication-kubeconfig={}", path(&kcm_kubeconfig)),
                    format!("--authorization-kubeconfig={}", path(&kcm_kubeconfig)),
                    "--bind-address=127.0.0.1".into(),
                    format!("--secure-port={kcm_port}"),
                    "--controllers=*".into(),
                    "--leader-elect=false".into(),
                    "--use-service-account-credentials=true".into(),
                    format!("--service-account-private-key-file={}", path(&pki.sa_key)),
                    format!("--root-ca-file={}", path(&pki.ca_cert)),
                    format!("--cluster-signing-cert-file={}", path(&pki.ca_cert)),
                    format!("--cluster-signing-key-file={}", path(&pki.ca_key)),
                    format!(
                        "--node-monitor-grace-period={}s",
                        config.node_monitor_grace_period.as_secs().max(1)
                    ),
                    format!(
                        "--node-monitor-period={}s",
                        config.node_monitor_period.as_secs().max(1)
                    ),
                ],
            )
            .await?;
        let kcm_client = insecure_client(kcm_port)?;
        s.wait(
            kcm,
            "controller_manager_healthy",
            t.controller_manager_healthy,
            &format!("kube-controller-manager https://127.0.0.1:{kcm_port}/healthz"),
            move || {
                let c = kcm_client.clone();
                async move { get_ok(&c, "/healthz").await }
            },
        )
        .await?;
        // kube-scheduler
        let sched_kubeconfig = run.join("scheduler.kubeconfig");
        write_kubeconfig(&sched_kubeconfig, &server, &pki)?;
        let sched_port = free_port(loopback)?;
        let sched = s
            .spawn(
                "kube-scheduler",
                &bin.kube_scheduler,
                vec![
                    format!("--kubeconfig={}", path(&sched_kubeconfig)),
                    format!("--authentication-kubeconfig={}", path(&sched_kubeconfig)),
                    format!("--authorization-kubeconfig={}", path(&sched_kubeconfig)),
                    "--bind-address=127.0.0.1".into(),
                    format!("--secure-port={sched_port}"),
                    "--leader-elect=false".into(),
                ],
            )
            .await?;
        let sched_client = insecure_client(sched_port)?;
        s.wait(
            sched,
            "scheduler_healthy",
            t.scheduler_healthy,
            &format!("kube-scheduler https://127.0.0.1:{sched_port}/healthz"),
            move || {
                let c = sched_client.clone();
                async move { get_ok(&c, "/healthz").await }
            },
        )
        .await?;

        // Last: the scheduler has started meanwhile.
        {
            let client = client.clone();
            s.wait(
                kcm,
                "default_service_account",
                t.default_service_account,
                "the serviceaccount controller to create default/default",
                move || {
                    let api: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
                        kube::Api::namespaced(client.clone(), "default");
                    async move {
                        match api.get_opt("default").await {
                            Ok(Some(_)) => Ok(()),
                            Ok(None) => Err("not created yet".into()),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                },
            )
            .await?;
        }
        Ok((pki, kubeconfig, server, client, version))
    }

    /// The admin kubeconfig under the run dir.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://<bridge ip>:<port>`
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// The server's `/version` (gitVersion e.g. `v1.37.2`).
    pub fn version(&self) -> &VersionInfo {
        &self.version
    }

    /// A client with the admin certificate.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The CA, serving, admin and service-account files (a node agent may sign its kubelet
    /// serving certificate with the CA).
    pub fn pki(&self) -> &PkiFiles {
        &self.pki
    }

    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// From `start` called to the scheduler healthy.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// `(component, pid)` of every running component, in start order.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.components.iter().map(|c| (c.name, c.pid)).collect()
    }

    /// The spawner the components came from (the node agents may reuse it).
    pub fn spawner(&self) -> Arc<Spawner> {
        self.spawner.clone()
    }

    /// Errors when a component has exited.
    pub fn check_running(&mut self) -> Result<()> {
        self.components
            .iter_mut()
            .try_for_each(|c| c.check_running())
    }

    /// Stops kube-scheduler → kube-controller-manager → kube-apiserver → etcd (SIGTERM,
    /// bounded wait, SIGKILL), then removes the run dir unless `keep`.
    pub async fn stop(mut self) -> Result<()> {
        self.stopped = true;
        while let Some(mut c) = self.components.pop() {
            c.stop(self.stop_grace).await;
        }
        self.spawner.close().await;
        tracing::info!("control plane stopped");
        self.remove_files()
    }

    fn remove_files(&self) -> Result<()> {
        if self.keep {
            tracing::info!(run_dir = %self.run_dir.display(), "kept the run dir");
            return Ok(());
        }
        if let Some(k) = &self.extra_kubeconfig {
            let _ = std::fs::remove_file(k);
        }
        match std::fs::remove_dir_all(&self.run_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(ControlPlaneError::RemoveRunDir {
                    path: self.run_dir.clone(),
                    source: e,
                })
            }
            _ => Ok(()),
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        for c in self.components.iter().rev() {
            signal_group(c.pid, libc::SIGKILL);
        }
        if let Err(e) = self.remove_files() {
            tracing::error!(error = %crate::report(&e), "control plane dropped without stop");
        }
    }
}

/// Writes an admin kubeconfig (CA, client certificate and key inline) with mode 0600.
pub fn write_kubeconfig(path: &Path, server: &str, pki: &PkiFiles) -> Result<()> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| ControlPlaneError::WriteFile {
            path: p.to_owned(),
            source,
        })
    };
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "upstream", "cluster": {
            "server": server,
            "certificate-authority-data": b64(read(&pki.ca_cert)?),
        }}],
        "users": [{"name": "kubernetes-admin", "user": {
            "client-certificate-data": b64(read(&pki.admin_cert)?),
            "client-key-data": b64(read(&pki.admin_key)?),
        }}],
        "contexts": [{"name": "upstream", "context": {"cluster": "upstream", "user": "kubernetes-admin"}}],
        "current-context": "upstream",
    });
    let text = serde_yaml::to_string(&config).unwrap_or_default();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(parent, 0o755)?;
    }
    crate::pki::write_file(path, &text, 0o600).map_err(|e| ControlPlaneError::WriteFile {
        path: path.to_owned(),
        source: std::io::Error::other(crate::report(&e)),
    })
}

/// A kube client from an admin kubeconfig file.
pub async fn admin_client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|source| {
        ControlPlaneError::Kubeconfig {
            path: kubeconfig.to_owned(),
            source,
        }
    })?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|source| ControlPlaneError::Kubeconfig {
            path: kubeconfig.to_owned(),
            source,
        })?;
    kube::Client::try_from(config).map_err(|source| ControlPlaneError::Client {
        what: format!("the admin kubeconfig {}", kubeconfig.display()),
        source,
    })
}

/// A client for a component's self-signed `/healthz` on 127.0.0.1 (anonymous: the path is
/// in the components' `--authorization-always-allow-paths`).
fn insecure_client(port: u16) -> Result<kube::Client> {
    let url = format!("https://127.0.0.1:{port}");
    let uri: http::Uri =
        url.parse()
            .map_err(|e: http::uri::InvalidUri| ControlPlaneError::Client {
                what: url.clone(),
                source: kube::Error::Service(Box::new(e)),
            })?;
    let mut config = kube::Config::new(uri);
    config.accept_invalid_certs = true;
    config.connect_timeout = Some(Duration::from_secs(2));
    config.read_timeout = Some(Duration::from_secs(5));
    kube::Client::try_from(config).map_err(|source| ControlPlaneError::Client { what: url, source })
}

/// GET `path`; Ok on 2xx, else the answer (or error) as text for "last seen".
async fn get_ok(client: &kube::Client, path: &str) -> Result<(), String> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    match client.request_text(request).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(format!(
            "HTTP {}: {}",
            status.code,
            status
                .message
                .lines()
                .filter(|l| l.contains("failed"))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Err(e) => Err(crate::report(&e)),
    }
}

/// A bare HTTP/1.1 GET (etcd's plain-HTTP `/health` on loopback); returns (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let code = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:.80}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((code, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_names_it_and_the_build_script() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("etcd"), "").unwrap();
        let err = Binaries::find(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("kube-apiserver not found in"), "{msg}");
        assert!(msg.contains("scripts/build-upstream.sh"), "{msg}");
    }

    async fn starting(dir: &Path) -> Starting {
        Starting {
            spawner: Arc::new(Spawner::start(tokio::runtime::Handle::current()).unwrap()),
            components: vec![],
            logs: dir.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_wait_that_times_out_names_the_timeout_what_and_the_last_answer() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = starting(dir.path()).await;
        let i = s
            .spawn("sleeper", Path::new("sleep"), vec!["30".into()])
            .await
            .unwrap();
        let err = s
            .wait(
                i,
                "sleeper_ready",
                Duration::from_millis(300),
                "the sleeper",
                || async { Err("HTTP 500: [-]etcd failed".to_owned()) },
            )
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("timed out after 300ms (sleeper_ready) waiting for the sleeper; last seen: HTTP 500: [-]etcd failed; log: "), "{msg}");
        s.abort(Duration::from_secs(1)).await;
        assert!(s.components.is_empty());
        s.spawner.close().await;
    }

    #[tokio::test]
    async fn a_component_that_exits_before_ready_is_reported_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = starting(dir.path()).await;
        let i = s
            .spawn(
                "crasher",
                Path::new("sh"),
                vec!["-c".into(), "echo bad flag --foo >&2; exit 3".into()],
            )
            .await
            .unwrap();
        let err = s
            .wait(
                i,
                "crasher_ready",
                Duration::from_secs(10),
                "the crasher",
                || async { Err("connection refused".to_owned()) },
            )
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("crasher exited (exit status: 3) before it was ready"),
            "{msg}"
        );
        assert!(msg.ends_with("bad flag --foo"), "{msg}");
        s.spawner.close().await;
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        std::fs::write(&p, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&p, 2), "c\nd");
        assert_eq!(log_tail(&dir.path().join("none"), 2), "");
    }

    #[test]
    fn kubeconfig_is_readable_by_kube_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(Ipv4Addr::new(10, 250, 0, 1))
            .unwrap()
            .write(&dir.path().join("pki"))
            .unwrap();
        let path = dir.path().join("kc");
        write_kubeconfig(&path, "https://10.250.0.1:6443", &pki).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("upstream"));
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://10.250.0.1:6443"));
    }
}
