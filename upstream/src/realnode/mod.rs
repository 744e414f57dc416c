//! Real nodes: the official kubelet, containerd (with runc and Debian's CNI plugins) and
//! kube-proxy, one set per node, each node one process tree in its own network, pid and
//! mount namespaces ([`init`]) and its own cgroup parent ([`cgroups`]), configured by
//! [`plan`]. Images come from archives built by scripts/build-images.sh and are imported into
//! each node's containerd (as `kind load image-archive` does).
//!
//! A node kill SIGKILLs the node's init: the kernel then kills every process of its pid
//! namespace at once (kubelet, containerd, shims, containers), as `docker kill` does to a
//! kind node. A node start runs it again on the same directories: containerd's state, the
//! kubelet's pods and the volumes are where they were.

pub mod cgroups;
pub mod init;
pub mod plan;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::runtime::watcher;
use kube_sim::process::{Spawner, signal_group};
use tokio::sync::Mutex;

use crate::control::{ControlError, ControlFuture, NodeControl};
use crate::netns::NodeNetwork;
use crate::pki::{Pki, Usage};
use init::{Component, InitPlan};
pub use plan::NodePlan;

/// How long a started node has to register and turn Ready.
pub const NODE_READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a killed node's namespace has to empty.
const NODE_STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RealNodeError {
    #[error("failed to prepare {what} of node {node}")]
    Prepare {
        node: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to issue the certificates of node {node}")]
    Certificates {
        node: String,
        #[source]
        source: crate::pki::PkiError,
    },
    #[error("failed to enter the network namespace of node {node}")]
    Netns {
        node: String,
        #[source]
        source: crate::netns::NetnsError,
    },
    #[error("failed to start node {node}")]
    Spawn {
        node: String,
        #[source]
        source: kube_sim::process::ProcessError,
    },
    #[error("node {node} exited while starting ({status}); init log: {init_tail}")]
    Exited {
        node: String,
        status: String,
        init_tail: String,
    },
    #[error(
        "node {node} was not Ready within {timeout:?}; last seen: {last}; kubelet log: {kubelet_tail}"
    )]
    NotReady {
        node: String,
        timeout: Duration,
        last: String,
        kubelet_tail: String,
    },
    #[error("missing {what} at {}: {hint}", path.display())]
    Missing {
        what: &'static str,
        path: PathBuf,
        hint: &'static str,
    },
}

/// `$UPSTREAM_IMAGE_DIR`, else `<repo>/.upstream/images` (scripts/build-images.sh).
pub fn default_image_dir() -> PathBuf {
    match std::env::var_os("UPSTREAM_IMAGE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.upstream/images"),
    }
}

/// The official binaries each node runs, from the bin dir (scripts/build-upstream.sh).
pub const NODE_BINARIES: [&str; 5] = [
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "kubelet",
    "kube-proxy",
];

/// The image archives every node loads, from the images dir (scripts/build-images.sh).
pub const IMAGE_ARCHIVES: [&str; 2] = ["pause.tar", "mariadb.tar"];

/// The binaries and images the nodes need.
#[derive(Clone, Debug)]
pub struct NodeInputs {
    pub bin_dir: PathBuf,
    pub runc: PathBuf,
    pub unshare: PathBuf,
    pub images: Vec<PathBuf>,
}

impl NodeInputs {
    /// Finds the official binaries in `bin_dir`, runc and unshare on the PATH, the image
    /// archives in `image_dir` and the `extra_images` asked for; the error names the first one
    /// missing and how to get it.
    pub fn find(
        bin_dir: &Path,
        image_dir: &Path,
        extra_images: &[PathBuf],
    ) -> Result<NodeInputs, RealNodeError> {
        for binary in NODE_BINARIES {
            let path = bin_dir.join(binary);
            if !path.is_file() {
                return Err(RealNodeError::Missing {
                    what: "a node binary",
                    path,
                    hint: "run scripts/build-upstream.sh",
                });
            }
        }
        let found = |name: &'static str, hint: &'static str| {
            kube_sim::process::find_on_path(name, &["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
                .ok_or(RealNodeError::Missing {
                    what: name,
                    path: PathBuf::from(name),
                    hint,
                })
        };
        let runc = found("runc", "apt-get install runc (scripts/setup.sh)")?;
        let unshare = found("unshare", "apt-get install util-linux")?;
        for plugin in ["bridge", "host-local", "loopback"] {
            let path = Path::new(plan::CNI_BIN_DIR).join(plugin);
            if !path.is_file() {
                return Err(RealNodeError::Missing {
                    what: "a CNI plugin",
                    path,
                    hint: "apt-get install containernetworking-plugins (scripts/setup.sh)",
                });
            }
        }
        let mut images = vec![];
        for image in IMAGE_ARCHIVES {
            let path = image_dir.join(image);
            if !path.is_file() {
                return Err(RealNodeError::Missing {
                    what: "an image archive",
                    path,
                    hint: "run scripts/build-images.sh (as root)",
                });
            }
            images.push(path);
        }
        for path in extra_images {
            if !path.is_file() {
                return Err(RealNodeError::Missing {
                    what: "an image archive to load (--load-image)",
                    path: path.clone(),
                    hint: "give the path of an existing docker-archive or OCI tar",
                });
            }
            // The node's init reads it from another working directory.
            images.push(std::path::absolute(path).unwrap_or_else(|_| path.clone()));
        }
        Ok(NodeInputs {
            bin_dir: bin_dir.to_owned(),
            runc,
            unshare,
            images,
        })
    }
}

/// What every node shares.
pub struct Cluster {
    pub client: kube::Client,
    pub server: String,
    pub ca: Arc<Pki>,
    pub ca_file: PathBuf,
    pub spawner: Arc<Spawner>,
    pub inputs: NodeInputs,
    pub run_id: String,
    pub nodes_dir: PathBuf,
    pub cluster_cidr: String,
}

/// One real node and its running init (none while stopped).
struct RealNode {
    plan: NodePlan,
    net: Arc<NodeNetwork>,
    running: Mutex<Option<tokio::process::Child>>,
}

/// Every real node of the run.
pub struct RealNodes {
    cluster: Arc<Cluster>,
    nodes: BTreeMap<String, RealNode>,
    /// Host mount points this run had to create (removed at shutdown when still empty).
    created_mount_points: Vec<PathBuf>,
}

impl RealNodes {
    /// Prepares and starts one node per network, then waits until all are Ready.
    pub async fn start(
        cluster: Cluster,
        networks: Vec<Arc<NodeNetwork>>,
    ) -> Result<RealNodes, RealNodeError> {
        let cluster = Arc::new(cluster);
        let mut nodes = BTreeMap::new();
        let mut created_mount_points = vec![];
        for net in networks {
            let plan = NodePlan {
                name: net.node_name().to_owned(),
                node_ip: net.node_ip(),
                pod_cidr: net.pod_cidr(),
                pod_gateway: net.pod_gateway(),
                cluster_cidr: cluster.cluster_cidr.clone(),
                dir: cluster.nodes_dir.join(net.node_name()),
                cgroup_root: format!("/sts-{}/{}", cluster.run_id, net.node_name()),
                bin_dir: cluster.inputs.bin_dir.clone(),
                runc: cluster.inputs.runc.clone(),
            };
            prepare(&cluster, &plan, &mut created_mount_points)?;
            nodes.insert(
                plan.name.clone(),
                RealNode {
                    plan,
                    net,
                    running: Mutex::new(None),
                },
            );
        }
        let nodes = RealNodes {
            cluster,
            nodes,
            created_mount_points,
        };
        for node in nodes.nodes.values() {
            nodes.spawn(node).await?;
        }
        for node in nodes.nodes.values() {
            nodes.wait_ready(node).await?;
        }
        Ok(nodes)
    }

    /// The kubelet's `--version` line, e.g. `Kubernetes v1.37.2`, and containerd's.
    pub async fn versions(&self) -> (String, String) {
        let bin = &self.cluster.inputs.bin_dir;
        let version = |program: PathBuf| async move {
            tokio::process::Command::new(program)
                .arg("--version")
                .output()
                .await
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_else(|e| format!("unknown ({e})"))
        };
        (
            version(bin.join("kubelet")).await,
            version(bin.join("containerd")).await,
        )
    }

    async fn spawn(&self, node: &RealNode) -> Result<(), RealNodeError> {
        let plan = &node.plan;
        let err = |what: &str| {
            let node = plan.name.clone();
            let what = what.to_owned();
            move |source| RealNodeError::Prepare { node, what, source }
        };
        cgroups::create(&plan.cgroup_root).map_err(err("its cgroup parent"))?;
        let exe = std::env::current_exe().map_err(err("the node init's path"))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(plan.logs_dir().join("init.log"))
            .map_err(err("its init log"))?;
        let log2 = log.try_clone().map_err(err("its init log"))?;
        let mut command = std::process::Command::new(&self.cluster.inputs.unshare);
        command
            .args([
                "--pid",
                "--fork",
                "--mount",
                "--mount-proc",
                "--kill-child",
                "--propagation",
                "private",
                "--",
            ])
            .arg(exe)
            .arg("node-init")
            .arg(plan.init_plan())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        node.net
            .enter(&mut command)
            .map_err(|source| RealNodeError::Netns {
                node: plan.name.clone(),
                source,
            })?;
        let child = self
            .cluster
            .spawner
            .spawn(command)
            .await
            .map_err(|source| RealNodeError::Spawn {
                node: plan.name.clone(),
                source,
            })?;
        tracing::info!(node = %plan.name, ip = %plan.node_ip, pods = %plan.pod_cidr, "real node started");
        *node.running.lock().await = Some(child);
        Ok(())
    }

    /// Watches the Node until its Ready condition is True, the init exits, or the timeout.
    async fn wait_ready(&self, node: &RealNode) -> Result<(), RealNodeError> {
        let name = node.plan.name.clone();
        let api: Api<Node> = Api::all(self.cluster.client.clone());
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut stream = std::pin::pin!(kube::runtime::WatchStreamExt::applied_objects(
            watcher::watcher(api, config)
        ));
        let began = Instant::now();
        let mut last = "not registered".to_owned();
        let deadline = tokio::time::sleep(NODE_READY_TIMEOUT);
        tokio::pin!(deadline);
        let mut exit_check = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                event = stream.next() => match event {
                    Some(Ok(n)) => {
                        last = ready_summary(&n);
                        if is_ready(&n) {
                            tracing::info!(node = %name, after = ?began.elapsed(), "real node Ready");
                            return Ok(());
                        }
                    }
                    Some(Err(e)) => last = format!("watch error: {e}"),
                    None => last = "watch ended".into(),
                },
                _ = exit_check.tick() => {
                    if let Some(status) = self.exited(node).await {
                        return Err(RealNodeError::Exited {
                            node: name,
                            status,
                            init_tail: log_tail(&node.plan.logs_dir().join("init.log")),
                        });
                    }
                }
                _ = &mut deadline => {
                    return Err(RealNodeError::NotReady {
                        node: name,
                        timeout: NODE_READY_TIMEOUT,
                        last,
                        kubelet_tail: log_tail(&node.plan.logs_dir().join("kubelet.log")),
                    });
                }
            }
        }
    }

    async fn exited(&self, node: &RealNode) -> Option<String> {
        let mut running = node.running.lock().await;
        let child = running.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                *running = None;
                Some(status.to_string())
            }
            _ => None,
        }
    }

    /// Kills the node's init (so the kernel kills everything in its pid namespace) and waits
    /// until the namespace is empty.
    async fn kill(&self, node: &RealNode) {
        let Some(mut child) = node.running.lock().await.take() else {
            return;
        };
        let Some(unshare) = child.id() else {
            return;
        };
        // The init is unshare's only child: killing it (not unshare) lets unshare reap it,
        // which happens only once every process of the namespace has exited.
        match init_pid(unshare) {
            Some(init) => signal_pid(init, libc::SIGKILL),
            None => signal_group(unshare, libc::SIGKILL),
        }
        if tokio::time::timeout(NODE_STOP_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            tracing::warn!(node = %node.plan.name, timeout = ?NODE_STOP_TIMEOUT, "node init not reaped: SIGKILL to its group");
            signal_group(unshare, libc::SIGKILL);
            let _ = child.wait().await;
        }
        tracing::info!(node = %node.plan.name, "real node killed");
    }

    fn get(&self, name: &str) -> Result<&RealNode, ControlError> {
        self.nodes
            .get(name)
            .ok_or_else(|| ControlError::NotFound(format!("node {name} not found")))
    }

    /// Kills every node and removes their cgroups.
    pub async fn shutdown(&self) {
        for node in self.nodes.values() {
            self.kill(node).await;
        }
        remove_cgroups(&self.cluster.run_id);
        for dir in &self.created_mount_points {
            // Only an empty directory goes: anything else was put there by someone else.
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Kills a container through its node's containerd (`ctr tasks kill -s SIGKILL`): the
    /// kubelet sees the exit and restarts it, as after an OOM kill or a crash.
    async fn crash_container(&self, namespace: &str, name: &str) -> Result<(), ControlError> {
        let api: Api<Pod> = Api::namespaced(self.cluster.client.clone(), namespace);
        let pod = api
            .get_opt(name)
            .await
            .map_err(|e| ControlError::Failed(format!("pod {namespace}/{name}: {e}")))?
            .ok_or_else(|| ControlError::NotFound(format!("pod {namespace}/{name} not found")))?;
        let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let node = node_name
            .as_deref()
            .and_then(|n| self.nodes.get(n))
            .ok_or_else(|| {
                ControlError::NotFound(format!(
                    "pod {namespace}/{name} runs on no node of this run"
                ))
            })?;
        let container_id = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.container_id.clone())
            .and_then(|id| id.strip_prefix("containerd://").map(str::to_owned))
            .ok_or_else(|| {
                ControlError::Failed(format!("pod {namespace}/{name} has no running container"))
            })?;
        let out = tokio::process::Command::new(self.cluster.inputs.bin_dir.join("ctr"))
            .arg("--address")
            .arg(node.plan.containerd_socket())
            .args([
                "--namespace",
                "k8s.io",
                "tasks",
                "kill",
                "--signal",
                "SIGKILL",
            ])
            .arg(&container_id)
            .output()
            .await
            .map_err(|e| ControlError::Failed(format!("ctr tasks kill {container_id}: {e}")))?;
        if !out.status.success() {
            return Err(ControlError::Failed(format!(
                "ctr tasks kill {container_id} on {}: {}",
                node.plan.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        tracing::info!(pod = %format!("{namespace}/{name}"), node = %node.plan.name, container = %container_id, "container killed through containerd");
        Ok(())
    }
}

impl NodeControl for RealNodes {
    fn stop_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a> {
        Box::pin(async move {
            let node = self.get(name)?;
            self.kill(node).await;
            Ok(())
        })
    }

    fn start_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a> {
        Box::pin(async move {
            let node = self.get(name)?;
            if node.running.lock().await.is_some() {
                return Ok(());
            }
            self.spawn(node)
                .await
                .map_err(|e| ControlError::Failed(crate::report(&e)))?;
            Ok(())
        })
    }

    fn crash_pod<'a>(&'a self, namespace: &'a str, name: &'a str) -> ControlFuture<'a> {
        Box::pin(self.crash_container(namespace, name))
    }
}

/// The release in a `--version` line (`Kubernetes v1.37.2` → `v1.37.2`; containerd's
/// `containerd <module> v2.4.2 <revision>` → `v2.4.2`), or `unknown`.
pub fn release(version_line: &str) -> String {
    version_line
        .split_whitespace()
        .find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("unknown")
        .to_owned()
}

/// Removes `/sts-<run>` from every cgroup hierarchy (the nodes are dead).
pub fn remove_cgroups(run_id: &str) {
    let left = cgroups::remove(&format!("/sts-{run_id}"));
    if !left.is_empty() {
        tracing::warn!(?left, "cgroups still in use were left");
    }
}

fn signal_pid(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on a pid we started; ESRCH (already gone) is fine.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The one child of `unshare --fork`: the node's init.
fn init_pid(unshare: u32) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn ready_summary(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map_or_else(
            || "registered, no Ready condition".to_owned(),
            |c| {
                format!(
                    "Ready={} ({})",
                    c.status,
                    c.message.clone().unwrap_or_default()
                )
            },
        )
}

fn log_tail(path: &Path) -> String {
    crate::controlplane::log_tail(path, 8)
}

/// Writes the node's directories, configuration files, certificates and init plan.
fn prepare(
    cluster: &Cluster,
    plan: &NodePlan,
    created_mount_points: &mut Vec<PathBuf>,
) -> Result<(), RealNodeError> {
    let node = plan.name.clone();
    let io = |what: &str| {
        let node = node.clone();
        let what = what.to_owned();
        move |source| RealNodeError::Prepare { node, what, source }
    };
    for dir in [
        plan.dir.join("config"),
        plan.cni_conf_dir(),
        plan.pki_dir(),
        plan.logs_dir(),
        plan.dir.join("cni-ipam"),
        plan.dir.join("volume-plugins"),
    ] {
        std::fs::create_dir_all(&dir).map_err(io("its directories"))?;
    }
    for (source, target) in plan.binds() {
        std::fs::create_dir_all(source).map_err(io("its bind sources"))?;
        // The mount point must exist on the host: an empty directory, named in the README,
        // removed at shutdown when this run made it.
        let target = Path::new(target);
        if !target.exists() {
            std::fs::create_dir_all(target).map_err(io(&target.display().to_string()))?;
            created_mount_points.push(target.to_owned());
        }
    }
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(io(&path.display().to_string()))
    };
    write(plan.containerd_config(), &plan::containerd_config(plan))?;
    write(
        plan.cni_conf_dir().join("10-sts-pods.conflist"),
        &plan::cni_conflist(plan),
    )?;
    write(
        plan.kubelet_config(),
        &plan::kubelet_config(plan, &cluster.ca_file),
    )?;
    write(plan.proxy_config(), &plan::proxy_config(plan))?;
    write(plan.resolv_conf(), plan::resolv_conf())?;
    issue_certificates(cluster, plan)?;
    let init = InitPlan {
        node: plan.name.clone(),
        binds: plan
            .binds()
            .into_iter()
            .map(|(s, t)| (s, PathBuf::from(t)))
            .collect(),
        tmpfs: vec![PathBuf::from("/run")],
        containerd: Component {
            name: "containerd".into(),
            program: plan.bin_dir.join("containerd"),
            args: vec![
                "--config".into(),
                plan.containerd_config().display().to_string(),
            ],
            log: plan.logs_dir().join("containerd.log"),
        },
        socket: plan.containerd_socket(),
        ctr: plan.bin_dir.join("ctr"),
        images: cluster.inputs.images.clone(),
        images_marker: plan.dir.join("images-imported"),
        rest: vec![
            Component {
                name: "kubelet".into(),
                program: plan.bin_dir.join("kubelet"),
                args: plan::kubelet_args(plan),
                log: plan.logs_dir().join("kubelet.log"),
            },
            Component {
                name: "kube-proxy".into(),
                program: plan.bin_dir.join("kube-proxy"),
                args: plan::proxy_args(plan),
                log: plan.logs_dir().join("kube-proxy.log"),
            },
        ],
    };
    let text = serde_json::to_string_pretty(&init).unwrap_or_default();
    write(plan.init_plan(), &text)
}

/// The kubelet's client certificate (`system:node:<name>` in `system:nodes`, what the Node
/// authorizer and NodeRestriction expect), its serving certificate for the node's address,
/// kube-proxy's client certificate (`system:kube-proxy`, bound to `system:node-proxier`),
/// and the two kubeconfigs.
fn issue_certificates(cluster: &Cluster, plan: &NodePlan) -> Result<(), RealNodeError> {
    let node = plan.name.clone();
    let certs = |source| RealNodeError::Certificates {
        node: node.clone(),
        source,
    };
    let user = format!("system:node:{}", plan.name);
    let kubelet = cluster
        .ca
        .issue(&Usage::Client {
            user: &user,
            group: Some("system:nodes"),
        })
        .map_err(certs)?;
    let serving = cluster
        .ca
        .issue(&Usage::Server {
            name: &plan.name,
            ips: &[plan.node_ip, Ipv4Addr::LOCALHOST],
        })
        .map_err(certs)?;
    let proxy = cluster
        .ca
        .issue(&Usage::Client {
            user: "system:kube-proxy",
            group: None,
        })
        .map_err(certs)?;
    let pki = plan.pki_dir();
    for (name, issued) in [
        ("kubelet-client", &kubelet),
        ("kubelet-serving", &serving),
        ("kube-proxy", &proxy),
    ] {
        crate::pki::write_file(&pki.join(format!("{name}.crt")), &issued.cert, 0o644)
            .map_err(certs)?;
        crate::pki::write_file(&pki.join(format!("{name}.key")), &issued.key, 0o600)
            .map_err(certs)?;
    }
    for (path, user, name) in [
        (plan.kubelet_kubeconfig(), user.as_str(), "kubelet-client"),
        (plan.proxy_kubeconfig(), "system:kube-proxy", "kube-proxy"),
    ] {
        let text = client_kubeconfig(
            &cluster.server,
            &cluster.ca_file,
            user,
            &pki.join(format!("{name}.crt")),
            &pki.join(format!("{name}.key")),
        );
        crate::pki::write_file(&path, &text, 0o600).map_err(certs)?;
    }
    Ok(())
}

/// A kubeconfig naming certificate files (kube's own Kubeconfig type, serialised).
fn client_kubeconfig(server: &str, ca: &Path, user: &str, cert: &Path, key: &Path) -> String {
    use kube::config::{
        AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
    };
    let config = Kubeconfig {
        clusters: vec![NamedCluster {
            name: "upstream".into(),
            cluster: Some(Cluster {
                server: Some(server.to_owned()),
                certificate_authority: Some(ca.display().to_string()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: user.to_owned(),
            auth_info: Some(AuthInfo {
                client_certificate: Some(cert.display().to_string()),
                client_key: Some(key.display().to_string()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: "upstream".into(),
            context: Some(Context {
                cluster: "upstream".into(),
                user: Some(user.to_owned()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some("upstream".into()),
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        ..Default::default()
    };
    serde_yaml::to_string(&config).unwrap_or_default()
}
