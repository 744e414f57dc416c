//! Hollow nodes against the official control plane: the documented MySQL StatefulSet runs
//! on three hollow nodes (real mariadbd per pod, in the nodes' network namespaces), a row
//! written to mysql-0 survives the pod's deletion, a crashed container is restarted, and a
//! stopped node is marked Unknown by the real node-lifecycle controller.
//!
//! Needs root (network namespaces), the binaries from scripts/build-upstream.sh and
//! Debian's mariadbd; skipped with the reason printed otherwise.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, Service,
};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::wait::await_condition;
use kube_sim::kubelet::process::process_exists;
use kube_sim::mariadb::MariaDb;
use kube_upstream::control::NodeControl;
use kube_upstream::controlplane::{Binaries, ControlPlane, ControlPlaneConfig, default_bin_dir};
use kube_upstream::netns::{PodNetwork, list_netns, new_run_id};
use kube_upstream::node::{NodeOptions, Nodes, PodNet, start_nodes};
use kube_upstream::provisioner::{self, Provisioner};

const NODES: [&str; 3] = ["upstream-worker", "upstream-worker2", "upstream-worker3"];
const MARIADBD: &str = "/usr/sbin/mariadbd";
const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";
const MARIADB_CLIENT: &str = "/usr/bin/mariadb";
/// Three ordered pods, each copying the template and running its first-start init.
const PODS_READY_TIMEOUT: Duration = Duration::from_secs(240);
const POD_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// mysqld accepts connections a little after the pod is Ready (no readiness probe).
const SQL_TIMEOUT: Duration = Duration::from_secs(90);
/// The control plane runs with a 10 s node-monitor grace period.
const NODE_UNKNOWN_TIMEOUT: Duration = Duration::from_secs(60);
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);
const PROCESS_GONE_TIMEOUT: Duration = Duration::from_secs(15);
/// Provisioning, binding, and reclaiming a released volume.
const VOLUME_TIMEOUT: Duration = Duration::from_secs(60);
const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: hollow nodes need network namespaces".into());
    }
    if let Err(e) = Binaries::find(&default_bin_dir()) {
        return Some(format!(
            "{}: run scripts/build-upstream.sh",
            kube_upstream::report(&e)
        ));
    }
    for binary in [MARIADBD, INSTALL_DB, MARIADB_CLIENT] {
        if !Path::new(binary).is_file() {
            return Some(format!("{binary} is missing: run scripts/setup.sh"));
        }
    }
    None
}

struct Cluster {
    network: Option<PodNetwork>,
    control_plane: Option<ControlPlane>,
    provisioner: Option<Provisioner>,
    nodes: Option<Nodes>,
    state: tempfile::TempDir,
    netns_names: Vec<String>,
}

impl Cluster {
    async fn start() -> anyhow::Result<Cluster> {
        let state = tempfile::Builder::new()
            .prefix("kube-upstream-nodes-")
            .tempdir()
            .context("state dir")?;
        let names: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
        let network = PodNetwork::create(&new_run_id(), &names).context("pod network")?;
        let netns_names = network
            .nodes()
            .map(|n| n.netns_name().to_string())
            .collect();
        let mut cluster = Cluster {
            network: Some(network),
            control_plane: None,
            provisioner: None,
            nodes: None,
            state,
            netns_names,
        };
        if let Err(e) = cluster.start_rest(&names).await {
            cluster.teardown().await;
            return Err(e);
        }
        Ok(cluster)
    }

    async fn start_rest(&mut self, names: &[String]) -> anyhow::Result<()> {
        let network = self.network.as_ref().context("network")?;
        let config =
            ControlPlaneConfig::new(self.state.path().join("control-plane"), network.host_ip());
        let cp = ControlPlane::start(config)
            .await
            .map_err(|e| anyhow::anyhow!(kube_upstream::report(&e)))?;
        let client = cp.client();
        let version = cp.version().git_version.clone();
        let spawner = cp.spawner();
        self.control_plane = Some(cp);
        let provisioner = provisioner::start(client.clone(), &self.state.path().join("volumes"))
            .await
            .map_err(|e| anyhow::anyhow!(kube_upstream::report(&e)))?;
        self.provisioner = Some(provisioner);
        let mariadb = MariaDb::new(
            MARIADBD.into(),
            INSTALL_DB.into(),
            self.state.path().join("mariadb"),
            true,
        )
        .map_err(|e| anyhow::anyhow!(kube_upstream::report(&e)))?;
        std::fs::create_dir_all(self.state.path().join("mariadb")).context("mariadb dir")?;
        let nets: Vec<(String, Arc<dyn PodNet>)> = names
            .iter()
            .map(|n| {
                let net = network.node(n).context("node network")?;
                Ok((n.clone(), net as Arc<dyn PodNet>))
            })
            .collect::<anyhow::Result<_>>()?;
        let options = NodeOptions {
            // Shortened for tests: the kubelet's first back-off is 10 s.
            backoff_initial: Duration::from_secs(1),
            ..NodeOptions::default()
        };
        let nodes = start_nodes(
            client,
            nets,
            self.state.path(),
            Arc::new(mariadb),
            spawner,
            &version,
            options,
        )
        .await
        .map_err(|e| anyhow::anyhow!(kube_upstream::report(&e)))?;
        self.nodes = Some(nodes);
        Ok(())
    }

    fn client(&self) -> anyhow::Result<kube::Client> {
        Ok(self
            .control_plane
            .as_ref()
            .context("control plane")?
            .client())
    }

    fn nodes(&self) -> anyhow::Result<&Nodes> {
        self.nodes.as_ref().context("nodes")
    }

    /// Stops everything; returns the pids the nodes ran last, to check they are gone.
    async fn teardown(&mut self) -> Vec<u32> {
        let mut pids = Vec::new();
        if let Some(nodes) = self.nodes.take() {
            pids = nodes.pids();
            nodes.shutdown().await;
            assert!(
                nodes.pids().is_empty(),
                "no container process after shutdown"
            );
        }
        if let Some(p) = self.provisioner.take() {
            p.shutdown().await;
        }
        if let Some(cp) = self.control_plane.take()
            && let Err(e) = cp.stop().await
        {
            eprintln!("control plane stop: {}", kube_upstream::report(&e));
        }
        if let Some(mut network) = self.network.take()
            && let Err(e) = network.remove()
        {
            eprintln!("pod network removal: {}", kube_upstream::report(&e));
        }
        pids
    }
}

fn pod_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn node_ready_status(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

async fn wait_pod<F>(
    api: &Api<Pod>,
    name: &str,
    timeout: Duration,
    what: &str,
    cond: F,
) -> anyhow::Result<Pod>
where
    F: Fn(&Pod) -> bool + Send + 'static,
{
    let waited = tokio::time::timeout(
        timeout,
        await_condition(api.clone(), name, move |p: Option<&Pod>| {
            p.is_some_and(&cond)
        }),
    )
    .await;
    match waited {
        Ok(Ok(Some(pod))) => Ok(pod),
        Ok(Ok(None)) => bail!("pod {name} vanished while waiting for it to be {what}"),
        Ok(Err(e)) => bail!("watching pod {name} failed: {e}"),
        Err(_) => {
            let last = api.get_opt(name).await.ok().flatten();
            bail!(
                "pod {name} was not {what} within {}s; last seen: {}",
                timeout.as_secs(),
                last.and_then(|p| p.status)
                    .map(|s| serde_json::to_string(&s).unwrap_or_default())
                    .unwrap_or_else(|| "absent".into())
            )
        }
    }
}

async fn wait_node(
    api: &Api<Node>,
    name: &str,
    status: &'static str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let waited = tokio::time::timeout(
        timeout,
        await_condition(api.clone(), name, move |n: Option<&Node>| {
            n.and_then(node_ready_status).as_deref() == Some(status)
        }),
    )
    .await;
    match waited {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => bail!("watching node {name} failed: {e}"),
        Err(_) => {
            let last = api.get_opt(name).await.ok().flatten();
            bail!(
                "node {name} was not Ready={status} within {}s; last Ready: {:?}",
                timeout.as_secs(),
                last.as_ref().and_then(node_ready_status)
            )
        }
    }
}

fn pod_ip(pod: &Pod) -> anyhow::Result<Ipv4Addr> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .context("pod has no IP")?
        .parse()
        .context("pod IP")
}

/// Runs SQL as root against `ip:3306`, retrying (with backoff) until mysqld answers.
async fn sql(ip: Ipv4Addr, password: &str, statement: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + SQL_TIMEOUT;
    let mut delay = Duration::from_millis(200);
    loop {
        let output = tokio::process::Command::new(MARIADB_CLIENT)
            .args([
                "--protocol=TCP",
                "-h",
                &ip.to_string(),
                "-P",
                "3306",
                "-uroot",
            ])
            .args([
                "--connect-timeout=5",
                "--batch",
                "--skip-column-names",
                "-e",
                statement,
            ])
            // The password goes through the environment, never the command line or output.
            .env("MYSQL_PWD", password)
            .kill_on_drop(true)
            .output()
            .await
            .context("running the mariadb client")?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
        }
        let stderr = String::from_utf8_lossy(&output.stderr).replace(password, "<redacted>");
        if tokio::time::Instant::now() + delay > deadline {
            bail!(
                "SQL on {ip}:3306 failed for {}s: {stderr}",
                SQL_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(3));
    }
}

fn manifest<T: serde::de::DeserializeOwned>(name: &str) -> anyhow::Result<T> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/mysql")
        .join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn root_password(sts: &StatefulSet) -> anyhow::Result<String> {
    sts.spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.env.as_ref())
        .and_then(|env| env.iter().find(|e| e.name == "MYSQL_ROOT_PASSWORD"))
        .and_then(|e| e.value.clone())
        .context("the manifest sets MYSQL_ROOT_PASSWORD")
}

/// The scenario; the caller tears down whatever happens.
async fn scenario(cluster: &Cluster) -> anyhow::Result<()> {
    let client = cluster.client()?;
    let ns = format!("nodes-{}", new_run_id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?;
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;

    let service: Service = manifest("service.yaml")?;
    let sts: StatefulSet = manifest("statefulset.yaml")?;
    let password = root_password(&sts)?;
    Api::<Service>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &service)
        .await?;
    Api::<StatefulSet>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &sts)
        .await?;

    // MUST: three pods Running and Ready, in order, each with its own volume.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    for i in 0..3 {
        let pod = wait_pod(
            &pods,
            &format!("mysql-{i}"),
            PODS_READY_TIMEOUT,
            "Running and Ready",
            pod_ready,
        )
        .await?;
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        eprintln!("mysql-{i} Ready on {node} at {:?}", pod_ip(&pod)?);
    }

    // A row written to mysql-0 survives the pod's deletion.
    let first = pods.get("mysql-0").await?;
    let ip = pod_ip(&first)?;
    sql(
        ip,
        &password,
        "CREATE DATABASE IF NOT EXISTS t; CREATE TABLE IF NOT EXISTS t.rows (id INT PRIMARY KEY, v VARCHAR(32)); INSERT INTO t.rows VALUES (1, 'survives');",
    )
    .await?;
    let old_uid = first.metadata.uid.clone().unwrap_or_default();
    pods.delete("mysql-0", &DeleteParams::default()).await?;
    let recreated = wait_pod(
        &pods,
        "mysql-0",
        POD_READY_TIMEOUT,
        "recreated and Ready",
        move |p| p.metadata.uid.as_deref() != Some(old_uid.as_str()) && pod_ready(p),
    )
    .await?;
    let read = sql(
        pod_ip(&recreated)?,
        &password,
        "SELECT v FROM t.rows WHERE id = 1",
    )
    .await?;
    assert_eq!(read, "survives", "the row written before the deletion");

    // A crashed container restarts: restartCount 1, lastState terminated, Ready again.
    let nodes = cluster.nodes()?;
    nodes
        .crash_pod(&ns, "mysql-1")
        .await
        .map_err(|e| anyhow::anyhow!("crash mysql-1: {e}"))?;
    let restarted = wait_pod(
        &pods,
        "mysql-1",
        POD_READY_TIMEOUT,
        "restarted and Ready",
        |p| {
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.first())
                .map_or(0, |c| c.restart_count);
            restarts >= 1 && pod_ready(p)
        },
    )
    .await?;
    let last = restarted
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|cs| cs.into_iter().next())
        .and_then(|c| c.last_state)
        .and_then(|l| l.terminated)
        .context("lastState.terminated after a crash")?;
    assert_eq!(last.exit_code, 137, "SIGKILL");

    // A stopped node goes Unknown through the real node-lifecycle controller; started
    // again it is Ready and its pod runs again.
    let victim = pods.get("mysql-2").await?;
    let node = victim
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .context("mysql-2 is bound")?;
    let node_api: Api<Node> = Api::all(client.clone());
    nodes
        .stop_node(&node)
        .await
        .map_err(|e| anyhow::anyhow!("stop {node}: {e}"))?;
    wait_node(&node_api, &node, "Unknown", NODE_UNKNOWN_TIMEOUT).await?;
    wait_taint(&node_api, &node, UNREACHABLE_TAINT, NODE_UNKNOWN_TIMEOUT).await?;
    eprintln!("{node} Ready=Unknown and tainted {UNREACHABLE_TAINT}");
    nodes
        .start_node(&node)
        .await
        .map_err(|e| anyhow::anyhow!("start {node}: {e}"))?;
    wait_node(&node_api, &node, "True", NODE_READY_TIMEOUT).await?;
    let before = victim
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|cs| cs.into_iter().next())
        .map_or(0, |c| c.restart_count);
    wait_pod(
        &pods,
        "mysql-2",
        POD_READY_TIMEOUT,
        "running again after the node start",
        move |p| {
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.first())
                .map_or(0, |c| c.restart_count);
            restarts > before && pod_ready(p)
        },
    )
    .await?;

    // A pod deleted while its node is stopped stays Terminating (no kubelet confirms it,
    // and the StatefulSet starts no second mysql-1); once the node starts again it is
    // finalised and the StatefulSet recreates it.
    let held = pods.get("mysql-1").await?;
    let held_uid = held.metadata.uid.clone().unwrap_or_default();
    let held_node = held
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .context("mysql-1 is bound")?;
    nodes
        .stop_node(&held_node)
        .await
        .map_err(|e| anyhow::anyhow!("stop {held_node}: {e}"))?;
    pods.delete("mysql-1", &DeleteParams::default()).await?;
    let terminating = pods.get("mysql-1").await?;
    assert_eq!(
        terminating.metadata.uid.as_deref(),
        Some(held_uid.as_str()),
        "the old mysql-1 is still there while its node is stopped"
    );
    assert!(terminating.metadata.deletion_timestamp.is_some());
    nodes
        .start_node(&held_node)
        .await
        .map_err(|e| anyhow::anyhow!("start {held_node}: {e}"))?;
    wait_pod(
        &pods,
        "mysql-1",
        POD_READY_TIMEOUT,
        "recreated after its node started again",
        move |p| p.metadata.uid.as_deref() != Some(held_uid.as_str()) && pod_ready(p),
    )
    .await?;

    // Force deletion: the process is killed at once, the replacement starts on the same
    // volume (never two servers on one data dir) and the row is still there.
    let doomed = pods.get("mysql-0").await?;
    let doomed_uid = doomed.metadata.uid.clone().unwrap_or_default();
    pods.delete("mysql-0", &DeleteParams::default().grace_period(0))
        .await?;
    let replaced = wait_pod(
        &pods,
        "mysql-0",
        POD_READY_TIMEOUT,
        "replaced after a force deletion",
        move |p| p.metadata.uid.as_deref() != Some(doomed_uid.as_str()) && pod_ready(p),
    )
    .await?;
    let read = sql(
        pod_ip(&replaced)?,
        &password,
        "SELECT v FROM t.rows WHERE id = 1",
    )
    .await?;
    assert_eq!(read, "survives", "the row after a force deletion");

    // The `network` class: provisioned at once, bound by the PV controller, and once the
    // claim is deleted its Released volume's directory and object are removed.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "scratch"},
        "spec": {
            "storageClassName": provisioner::NETWORK_CLASS,
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }))?;
    claims.create(&PostParams::default(), &claim).await?;
    let bound = tokio::time::timeout(
        VOLUME_TIMEOUT,
        await_condition(
            claims.clone(),
            "scratch",
            |c: Option<&PersistentVolumeClaim>| {
                c.and_then(|c| c.status.as_ref()?.phase.as_deref()) == Some("Bound")
            },
        ),
    )
    .await
    .context("claim scratch not Bound in time")??
    .context("claim scratch vanished")?;
    let volume = bound
        .spec
        .and_then(|s| s.volume_name)
        .context("bound volume")?;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let pv = volumes.get(&volume).await?;
    let spec = pv.spec.context("pv spec")?;
    assert_eq!(
        spec.node_affinity, None,
        "network volumes belong to no node"
    );
    let dir = PathBuf::from(spec.host_path.context("hostPath")?.path);
    assert!(dir.is_dir(), "{} created", dir.display());
    claims.delete("scratch", &DeleteParams::default()).await?;
    let gone = tokio::time::timeout(
        VOLUME_TIMEOUT,
        await_condition(volumes.clone(), &volume, |v: Option<&PersistentVolume>| {
            v.is_none()
        }),
    )
    .await;
    if gone.is_err() {
        let last = volumes.get_opt(&volume).await?.and_then(|v| v.status);
        bail!(
            "volume {volume} not deleted within {}s; status {last:?}",
            VOLUME_TIMEOUT.as_secs()
        );
    }
    assert!(!dir.exists(), "{} removed with its volume", dir.display());
    Ok(())
}

async fn wait_taint(
    api: &Api<Node>,
    name: &str,
    key: &'static str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let has = move |n: Option<&Node>| {
        n.and_then(|n| n.spec.as_ref()?.taints.as_ref())
            .is_some_and(|ts| ts.iter().any(|t| t.key == key))
    };
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, has)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => bail!("watching node {name} failed: {e}"),
        Err(_) => bail!(
            "node {name} was not tainted {key} within {}s",
            timeout.as_secs()
        ),
    }
}

async fn wait_gone(pids: &[u32]) -> Vec<u32> {
    let deadline = tokio::time::Instant::now() + PROCESS_GONE_TIMEOUT;
    loop {
        let alive: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| process_exists(*p))
            .collect();
        if alive.is_empty() || tokio::time::Instant::now() > deadline {
            return alive;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every mariadbd whose command line names `dir`.
fn mariadbd_under(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                        let c = String::from_utf8_lossy(&c);
                        c.contains("mariadbd") && c.contains(&needle)
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hollow_nodes_run_the_documented_statefulset() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED hollow_nodes_run_the_documented_statefulset: {reason}");
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kube_upstream=info".into()),
        )
        .with_test_writer()
        .try_init();
    let mut cluster = match Cluster::start().await {
        Ok(c) => c,
        Err(e) => panic!("cluster start: {e:#}"),
    };
    let outcome = scenario(&cluster).await;
    let state_dir = cluster.state.path().to_path_buf();
    let netns_names = cluster.netns_names.clone();
    let pids = cluster.teardown().await;
    let alive = wait_gone(&pids).await;
    let stray = mariadbd_under(&state_dir);
    let netns_left: Vec<String> = list_netns()
        .into_iter()
        .filter(|n| netns_names.contains(n))
        .collect();
    if let Err(e) = outcome {
        panic!("{e:#}");
    }
    assert!(alive.is_empty(), "container processes left: {alive:?}");
    assert!(stray.is_empty(), "mariadbd left: {stray:?}");
    assert!(
        netns_left.is_empty(),
        "network namespaces left: {netns_left:?}"
    );
}
