//! `kube-upstream`: the official Kubernetes control plane on this machine with real nodes
//! (the official kubelet, containerd, runc, CNI and kube-proxy), until SIGINT/SIGTERM (or
//! stdin EOF with `--exit-on-stdin-close`).
//!
//! Order: stale runs cleaned → node binaries and images found → pod network (bridge + one
//! namespace per node) → PKI and control plane (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler) → cluster DNS → local-path provisioner → real
//! nodes, each Ready → control server → one ready line on stdout:
//!
//! `kube-upstream ready: kubeconfig=<path> control=http://127.0.0.1:<port> version=<gitVersion>
//! nodes=real kubelet=<release> containerd=<release> image=<workload image>`
//!
//! Shutdown reverses it; every process, namespace, link and the run dir are removed on normal
//! exit, error exit, SIGTERM and Ctrl-C (unless `--keep`). Exit code 2: this machine cannot
//! run the target (not root, or binaries not built); 1: any other failure.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use kube_upstream::control::{ControlServer, Info, NodeControl};
use kube_upstream::controlplane::{ControlPlane, ControlPlaneConfig, ControlPlaneError};
use kube_upstream::dns::{ClusterDns, DnsError};
use kube_upstream::netns::{self, NetnsError, PodNetwork};
use kube_upstream::realnode::{self, NodeInputs, RealNodeError, RealNodes};
use kube_upstream::{provisioner, report};

#[derive(Debug, Parser)]
#[command(
    name = "kube-upstream",
    about = "The official Kubernetes control plane with real nodes (kubelet, containerd, runc, CNI, kube-proxy) whose pods run a MariaDB image"
)]
struct Cli {
    /// Everything of this run goes here (PKI, etcd data, logs, volumes); default: a new
    /// temporary directory. Removed on exit unless --keep.
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Where to write the admin kubeconfig (default: <run dir>/admin.kubeconfig).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The image archives the real nodes load (scripts/build-images.sh).
    #[arg(long, default_value_os_t = realnode::default_image_dir())]
    images_dir: PathBuf,
    /// One more image archive (docker-archive or OCI tar) every real node loads, as
    /// `kind load image-archive` does; repeatable.
    #[arg(long = "load-image", value_name = "ARCHIVE")]
    load_images: Vec<PathBuf>,
    /// Number of worker nodes (`upstream-worker`, `upstream-worker2`, ...).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=253))]
    nodes: u16,
    /// Keep the run dir (logs, data) and the kubeconfig on exit.
    #[arg(long)]
    keep: bool,
    /// Shut down when stdin reaches EOF (so the launcher dies with its parent).
    #[arg(long)]
    exit_on_stdin_close: bool,
    /// kube-controller-manager --node-monitor-grace-period.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    node_monitor_grace_period: Duration,
}

/// The workload image the real nodes carry (built by scripts/build-images.sh).
pub const WORKLOAD_IMAGE: &str = "localhost/sts-conformance/mariadb:10.11";

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("not a duration: {s:?} (use 10s, 500ms, 1m)")),
    }
}

/// Node names as kind names workers: `<cluster>-worker`, `<cluster>-worker2`, ...
pub fn node_names(count: u16) -> Vec<String> {
    (1..=count)
        .map(|i| match i {
            1 => "upstream-worker".to_owned(),
            i => format!("upstream-worker{i}"),
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error("failed to create the run dir")]
    RunDir(#[source] std::io::Error),
    #[error("failed to remove stale pod networks")]
    Stale(#[source] NetnsError),
    #[error("failed to create the pod network")]
    Network(#[source] NetnsError),
    #[error("failed to start the control plane")]
    ControlPlane(#[source] ControlPlaneError),
    #[error("the real nodes cannot run here")]
    NodeInputs(#[source] RealNodeError),
    #[error("failed to start the real nodes")]
    RealNodes(#[source] RealNodeError),
    #[error("failed to start the cluster DNS")]
    Dns(#[source] DnsError),
    #[error("failed to start the provisioner")]
    Provisioner(#[source] provisioner::ProvisionError),
    #[error("failed to start the control server")]
    Control(#[source] kube_upstream::control::ControlServerError),
    #[error("interrupted by {0} while starting")]
    Interrupted(&'static str),
}

impl MainError {
    /// Whether this machine cannot run the target at all (the caller may fall back to sim).
    fn unsupported(&self) -> bool {
        match self {
            MainError::Network(e) => e.is_not_root(),
            MainError::ControlPlane(ControlPlaneError::MissingBinary { .. }) => true,
            MainError::NodeInputs(_) => true,
            _ => false,
        }
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // pid 1 of a real node (see realnode::init): no runtime, no threads.
    if args.get(1).is_some_and(|a| a == "node-init") {
        let Some(plan) = args.get(2) else {
            eprintln!("usage: kube-upstream node-init <plan.json>");
            return std::process::ExitCode::from(2);
        };
        return match realnode::init::run(Path::new(plan)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("node-init: {}", report(&e));
                std::process::ExitCode::FAILURE
            }
        };
    }
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(async_main()),
        Err(e) => {
            eprintln!("kube-upstream: failed to start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn async_main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                // kube's client logs every refused poll of a starting server as an error.
                "info,kube_client::client::builder=off".into()
            }),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let exit = ExitRequest::install(cli.exit_on_stdin_close);
    match run(cli, exit).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube-upstream: {}", report(&e));
            if e.unsupported() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// SIGTERM, SIGINT and (optionally) stdin EOF, installed before anything starts so that an
/// interrupted start still cleans up.
struct ExitRequest {
    rx: tokio::sync::mpsc::UnboundedReceiver<&'static str>,
}

impl ExitRequest {
    fn install(watch_stdin: bool) -> ExitRequest {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for (kind, name) in [
            (tokio::signal::unix::SignalKind::terminate(), "SIGTERM"),
            (tokio::signal::unix::SignalKind::interrupt(), "SIGINT"),
        ] {
            match tokio::signal::unix::signal(kind) {
                Ok(mut signal) => {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        while signal.recv().await.is_some() {
                            let _ = tx.send(name);
                        }
                    });
                }
                Err(e) => tracing::warn!(signal = name, error = %e, "cannot handle signal"),
            }
        }
        if watch_stdin {
            // A detached std thread: tokio's stdin would keep a blocking-pool thread busy
            // and delay the runtime's shutdown.
            let tx = tx.clone();
            let _ = std::thread::Builder::new()
                .name("stdin-watch".into())
                .spawn(move || {
                    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                    let _ = tx.send("stdin closed");
                });
        }
        ExitRequest { rx }
    }

    async fn wait(&mut self) -> &'static str {
        self.rx.recv().await.unwrap_or("exit channel closed")
    }
}

/// What runs, for an orderly shutdown in reverse.
#[derive(Default)]
struct Running {
    network: Option<PodNetwork>,
    control_plane: Option<ControlPlane>,
    nodes: Option<Arc<RealNodes>>,
    dns: Option<ClusterDns>,
    provisioner: Option<provisioner::Provisioner>,
    control: Option<ControlServer>,
}

impl Running {
    async fn shutdown(&mut self) {
        if let Some(control) = self.control.take() {
            control.stop().await;
        }
        if let Some(p) = self.provisioner.take() {
            p.shutdown().await;
        }
        if let Some(nodes) = self.nodes.take() {
            nodes.shutdown().await;
        }
        if let Some(dns) = self.dns.take() {
            dns.stop().await;
        }
        if let Some(cp) = self.control_plane.take()
            && let Err(e) = cp.stop().await
        {
            tracing::error!(error = %report(&e), "control plane stop");
        }
        if let Some(mut net) = self.network.take()
            && let Err(e) = net.remove()
        {
            tracing::error!(error = %report(&e), "pod network removal");
        }
    }
}

async fn run(cli: Cli, mut exit: ExitRequest) -> Result<(), MainError> {
    let began = Instant::now();
    let (run_dir, temp) = match &cli.run_dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("kube-upstream-")
                .tempdir()
                .map_err(MainError::RunDir)?;
            (dir.keep(), true)
        }
    };
    let run_dir = std::path::absolute(&run_dir).unwrap_or(run_dir);
    let mut running = Running::default();
    let result = tokio::select! {
        started = start(&cli, &run_dir, &mut running) => started,
        signal = exit.wait() => Err(MainError::Interrupted(signal)),
    };
    let result = match result {
        Ok(started) => {
            println!(
                "kube-upstream ready: kubeconfig={} control={} version={} nodes=real kubelet={} containerd={} image={WORKLOAD_IMAGE}",
                started.kubeconfig.display(),
                started.control,
                started.version,
                realnode::release(&started.kubelet),
                realnode::release(&started.containerd),
            );
            tracing::info!(after = ?began.elapsed(), "ready");
            let why = exit.wait().await;
            tracing::info!(reason = why, "shutting down");
            Ok(())
        }
        Err(e) => Err(e),
    };
    running.shutdown().await;
    if !cli.keep && (temp || run_dir.exists()) {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    if !cli.keep
        && let Some(k) = &cli.kubeconfig
    {
        let _ = std::fs::remove_file(k);
    }
    tracing::info!(after = ?began.elapsed(), "stopped");
    result
}

/// What the ready line says.
struct Started {
    kubeconfig: PathBuf,
    /// The control server's URL.
    control: String,
    /// The API server's gitVersion.
    version: String,
    /// `kubelet --version` and `containerd --version` of the nodes.
    kubelet: String,
    containerd: String,
}

/// Starts everything into `running`, in order: routed pod network, control plane, cluster
/// DNS, provisioner, real nodes (each Ready), control server.
async fn start(cli: &Cli, run_dir: &Path, running: &mut Running) -> Result<Started, MainError> {
    let cleaned = netns::cleanup_stale().map_err(MainError::Stale)?;
    for run in &cleaned.runs {
        realnode::remove_cgroups(run);
    }
    if !cleaned.runs.is_empty() {
        tracing::info!(runs = ?cleaned.runs, "removed stale pod networks and cgroups of dead runs");
    }
    let bin_dir = kube_upstream::controlplane::default_bin_dir();
    let inputs = NodeInputs::find(&bin_dir, &cli.images_dir, &cli.load_images)
        .map_err(MainError::NodeInputs)?;
    let names = node_names(cli.nodes);
    let run_id = netns::new_run_id();
    let network = PodNetwork::create_routed(&run_id, &names).map_err(MainError::Network)?;
    let host_ip = network.host_ip();
    let cluster_cidr = network.cidr();
    let node_nets: Vec<_> = names.iter().filter_map(|n| network.node(n)).collect();
    if !cli.keep
        && let Err(e) = network.note_owned_dir(run_dir)
    {
        tracing::warn!(error = %report(&e), "run dir not recorded for stale cleanup");
    }
    running.network = Some(network);

    let mut config = ControlPlaneConfig::new(run_dir, host_ip);
    config.kubeconfig = cli.kubeconfig.clone();
    config.keep = cli.keep;
    config.node_monitor_grace_period = cli.node_monitor_grace_period;
    let cp = ControlPlane::start(config)
        .await
        .map_err(MainError::ControlPlane)?;
    let client = cp.client();
    let version = cp.version().git_version.clone();
    let kubeconfig = cli
        .kubeconfig
        .clone()
        .unwrap_or_else(|| cp.kubeconfig().to_owned());
    let spawner = cp.spawner();
    let admin_kubeconfig = cp.kubeconfig().to_owned();
    let cluster = realnode::Cluster {
        client: client.clone(),
        server: cp.server_url().to_owned(),
        ca: cp.ca(),
        ca_file: cp.pki().ca_cert.clone(),
        spawner: spawner.clone(),
        inputs,
        run_id,
        nodes_dir: run_dir.join("nodes"),
        cluster_cidr,
    };
    tracing::info!(after = ?cp.ready_after(), %version, "control plane ready");
    running.control_plane = Some(cp);

    let dns = ClusterDns::start(
        &spawner,
        &bin_dir.join("coredns"),
        &run_dir.join("dns"),
        host_ip,
        &admin_kubeconfig,
        client.clone(),
    )
    .await
    .map_err(MainError::Dns)?;
    running.dns = Some(dns);

    let provisioner = provisioner::start(client.clone(), &run_dir.join("volumes"))
        .await
        .map_err(MainError::Provisioner)?;
    running.provisioner = Some(provisioner);

    let nodes = Arc::new(
        RealNodes::start(cluster, node_nets)
            .await
            .map_err(MainError::RealNodes)?,
    );
    running.nodes = Some(nodes.clone());
    let (kubelet, containerd) = nodes.versions().await;
    tracing::info!(%kubelet, %containerd, "real nodes ready");

    let info = Info {
        server_version: version.clone(),
        nodes: names,
        storage_classes: provisioner::storage_classes()
            .iter()
            .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_owned))
            .collect(),
        kubeconfig: kubeconfig.display().to_string(),
        kubelet_version: kubelet.clone(),
        container_runtime: containerd.clone(),
        workload_image: WORKLOAD_IMAGE.into(),
    };
    let control = ControlServer::start(nodes as Arc<dyn NodeControl>, info, Some(client))
        .await
        .map_err(MainError::Control)?;
    let control_url = control.url();
    running.control = Some(control);
    Ok(Started {
        kubeconfig,
        control: control_url,
        version,
        kubelet,
        containerd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_follow_kind() {
        assert_eq!(
            node_names(3),
            ["upstream-worker", "upstream-worker2", "upstream-worker3"]
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("x").is_err());
    }
}
