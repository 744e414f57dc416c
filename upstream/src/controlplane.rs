//! The official control plane, started in order and stopped in reverse:
//! etcd → kube-apiserver → kube-controller-manager → kube-scheduler.
//!
//! Each binary (built by `scripts/build-upstream.sh`) runs in its own process group, forked
//! from kube-sim's [`Spawner`] thread with `PR_SET_PDEATHSIG(SIGKILL)`, so none outlives
//! this process; each writes its own log under `<run dir>/logs/`. Every wait is bounded by a
//! named timeout whose error says what was awaited and what was last seen. The flags that
//! differ from the defaults, and why, are listed in the README (*The upstream target*).
//! One component and the start-up waits: `component`; readiness probes: `probe`; the admin
//! kubeconfig: `kubeconfig`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::version::Info as VersionInfo;
use kube_sim::kubelet::process::{ProcessError, Spawner, signal_group};

use crate::pki::{Pki, PkiError, PkiFiles};

mod component;
mod kubeconfig;
pub(crate) mod probe;

pub use component::log_tail;
use component::{Component, Starting};
pub use kubeconfig::{admin_client, write_kubeconfig};
use probe::{get_ok, http_get, insecure_client};

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
    ca: Arc<Pki>,
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
            Ok(((ca, pki), kubeconfig, server, client, version)) => {
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
                    ca: Arc::new(ca),
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
    ) -> Result<((Pki, PkiFiles), PathBuf, String, kube::Client, VersionInfo)> {
        let run = &config.run_dir;
        let t = &config.timeouts;
        create_dir(&s.logs, 0o755)?;
        let pki_dir = run.join("pki");
        let pki_err = |source| ControlPlaneError::Pki {
            dir: pki_dir.clone(),
            source,
        };
        let ca = Pki::generate(config.host_ip).map_err(pki_err)?;
        let pki = ca.write(&pki_dir).map_err(pki_err)?;
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
                    // Node names (kind's) do not resolve here: dial kubelets by address, and
                    // verify their serving certificates as a hardened cluster does.
                    "--kubelet-preferred-address-types=InternalIP,Hostname".into(),
                    format!("--kubelet-certificate-authority={}", path(&pki.ca_cert)),
                    "--enable-admission-plugins=NodeRestriction".into(),
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
        Ok(((ca, pki), kubeconfig, server, client, version))
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

    /// The cluster CA, to issue the nodes' client and serving certificates.
    pub fn ca(&self) -> Arc<Pki> {
        self.ca.clone()
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

#[cfg(test)]
mod tests;
