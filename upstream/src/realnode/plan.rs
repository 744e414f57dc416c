//! Where one real node keeps everything, and the configuration files its containerd,
//! kubelet, CNI plugins and kube-proxy read: pure functions of a [`NodePlan`], so every
//! setting that differs from upstream's default is visible here and unit-tested.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::json;

/// The cluster DNS Service's address (kubeadm's and kind's: the tenth of the Service range).
pub const CLUSTER_DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// Where Debian's containernetworking-plugins puts the CNI plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The pod sandbox image (built by scripts/build-images.sh; pinned, never pulled).
pub const PAUSE_IMAGE: &str = "localhost/sts-conformance/pause:catatonit";
/// The kubelet's API port, on the node's own address.
pub const KUBELET_PORT: u16 = 10250;

/// One node: its name and addresses, its directory under the run dir, and what it runs.
#[derive(Clone, Debug)]
pub struct NodePlan {
    pub name: String,
    pub node_ip: Ipv4Addr,
    /// The node's pod block (its Node `podCIDR`) and the pods' gateway on its CNI bridge.
    pub pod_cidr: String,
    pub pod_gateway: Ipv4Addr,
    /// Every node's pod blocks together (kube-proxy's `clusterCIDR`).
    pub cluster_cidr: String,
    /// Everything of this node lives under here.
    pub dir: PathBuf,
    /// The node's cgroup parent (`cgroupRoot`), relative to each hierarchy's root.
    pub cgroup_root: String,
    /// The official binaries' directory (containerd, shim, ctr, kubelet, kube-proxy).
    pub bin_dir: PathBuf,
    pub runc: PathBuf,
}

impl NodePlan {
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }
    pub fn containerd_config(&self) -> PathBuf {
        self.dir.join("config/containerd.toml")
    }
    pub fn kubelet_config(&self) -> PathBuf {
        self.dir.join("config/kubelet.yaml")
    }
    pub fn kubelet_kubeconfig(&self) -> PathBuf {
        self.dir.join("config/kubelet.kubeconfig")
    }
    pub fn proxy_config(&self) -> PathBuf {
        self.dir.join("config/kube-proxy.yaml")
    }
    pub fn proxy_kubeconfig(&self) -> PathBuf {
        self.dir.join("config/kube-proxy.kubeconfig")
    }
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.dir.join("config/cni")
    }
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("config/resolv.conf")
    }
    pub fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }
    /// The init's plan (JSON), read by `kube-upstream node-init`.
    pub fn init_plan(&self) -> PathBuf {
        self.dir.join("config/init.json")
    }

    /// Run-dir directories bound, inside the node's own mount namespace, over the host paths
    /// the kubelet, containerd and libcni write whatever their configuration says; `/run`
    /// gets a fresh tmpfs (containerd's shim sockets, runc's state, the pods' network
    /// namespaces). All of it vanishes with the node's mount namespace.
    pub fn binds(&self) -> Vec<(PathBuf, &'static str)> {
        vec![
            (self.dir.join("kubelet"), "/var/lib/kubelet"),
            (self.dir.join("cni-state"), "/var/lib/cni"),
            (self.dir.join("pod-logs"), "/var/log/pods"),
            (self.dir.join("container-logs"), "/var/log/containers"),
        ]
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// containerd v2's configuration (format `version = 3`).
pub fn containerd_config(plan: &NodePlan) -> String {
    let dir = &plan.dir;
    format!(
        r#"# containerd for node {name}: its own root and socket under the run dir; its state on
# the node's own /run tmpfs, gone when the node dies, as a rebooted or killed node's is.
version = 3
root = "{root}"
state = "/run/containerd"

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{pause}"

[plugins."io.containerd.cri.v1.runtime"]
  # root here lacks CAP_SYS_RESOURCE: without this every sandbox fails to start
  # ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{cni_conf}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"#,
        name = plan.name,
        root = path(&dir.join("containerd/root")),
        socket = path(&plan.containerd_socket()),
        pause = PAUSE_IMAGE,
        runc = path(&plan.runc),
        cni_bin = CNI_BIN_DIR,
        cni_conf = path(&plan.cni_conf_dir()),
    )
}

/// The CNI network: a bridge in the node's namespace with the pods' gateway on it
/// (`isGateway` sets `ip_forward` in the node's namespace only), addresses by host-local
/// from the node's block, no masquerade (nothing leaves the machine).
pub fn cni_conflist(plan: &NodePlan) -> String {
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "sts-pods",
        "plugins": [{
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": plan.pod_cidr, "gateway": plan.pod_gateway.to_string()}]],
                // Pods send everything to their node (Services, other nodes' pods, the
                // host); the node has no default route, so nothing goes further.
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": path(&plan.dir.join("cni-ipam")),
            },
        }],
    });
    serde_json::to_string_pretty(&conf).unwrap_or_default()
}

/// The KubeletConfiguration. Differences from the defaults, and why:
/// cgroup v1 hybrid here (`failCgroupV1: false`, `cgroupfs`), one cgroup parent per node,
/// the node's address only, webhook authentication and authorization as kubeadm sets them,
/// no iptables chains and no swap check, eviction and image GC thresholds that a shared
/// disk does not trip.
pub fn kubelet_config(plan: &NodePlan, ca_file: &Path) -> String {
    let pki = plan.pki_dir();
    let conf = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": false,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": plan.cgroup_root,
        "containerRuntimeEndpoint": format!("unix://{}", path(&plan.containerd_socket())),
        "imageServiceEndpoint": format!("unix://{}", path(&plan.containerd_socket())),
        "address": plan.node_ip.to_string(),
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": path(&pki.join("kubelet-serving.crt")),
        "tlsPrivateKeyFile": path(&pki.join("kubelet-serving.key")),
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": true, "cacheTTL": "0s"},
            "x509": {"clientCAFile": path(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [CLUSTER_DNS_IP.to_string()],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": path(&plan.resolv_conf()),
        "makeIPTablesUtilChains": false,
        "failSwapOn": false,
        "volumePluginDir": path(&plan.dir.join("volume-plugins")),
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": false,
        // The lease is renewed every quarter of its duration: every 2.5 s instead of 10 s,
        // well inside the launcher's 10 s node-monitor grace period (a stopped node is
        // noticed in seconds, a live one never flaps).
        "nodeLeaseDurationSeconds": 10,
    });
    serde_yaml::to_string(&conf).unwrap_or_default()
}

/// The kubelet's command line beside its configuration file.
pub fn kubelet_args(plan: &NodePlan) -> Vec<String> {
    vec![
        format!("--config={}", path(&plan.kubelet_config())),
        format!("--kubeconfig={}", path(&plan.kubelet_kubeconfig())),
        format!("--hostname-override={}", plan.name),
        format!("--node-ip={}", plan.node_ip),
        "--root-dir=/var/lib/kubelet".into(),
        format!("--cert-dir={}", path(&plan.pki_dir())),
        "--v=1".into(),
    ]
}

/// kube-proxy's configuration: iptables mode inside the node's namespace, and conntrack
/// settings zeroed so it never writes the machine's global conntrack sysctls.
pub fn proxy_config(plan: &NodePlan) -> String {
    let conf = json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": path(&plan.proxy_kubeconfig())},
        "hostnameOverride": plan.name,
        "bindAddress": plan.node_ip.to_string(),
        "clusterCIDR": plan.cluster_cidr,
        "mode": "iptables",
        "iptables": {"localhostNodePorts": false},
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
    });
    serde_yaml::to_string(&conf).unwrap_or_default()
}

pub fn proxy_args(plan: &NodePlan) -> Vec<String> {
    vec![
        format!("--config={}", path(&plan.proxy_config())),
        "--v=1".into(),
    ]
}

/// Pods' upstream resolver file: none (no route leaves the machine); cluster names go to
/// the cluster DNS the kubelet writes into each pod's resolv.conf.
pub fn resolv_conf() -> &'static str {
    "# kube-upstream: no upstream resolver; pods use the cluster DNS (10.96.0.10)\noptions ndots:5\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> NodePlan {
        NodePlan {
            name: "upstream-worker2".into(),
            node_ip: Ipv4Addr::new(10, 240, 0, 3),
            pod_cidr: "10.240.2.0/24".into(),
            pod_gateway: Ipv4Addr::new(10, 240, 2, 1),
            cluster_cidr: "10.240.0.0/16".into(),
            dir: PathBuf::from("/tmp/run/nodes/upstream-worker2"),
            cgroup_root: "/sts-abc/upstream-worker2".into(),
            bin_dir: PathBuf::from("/bin"),
            runc: PathBuf::from("/usr/sbin/runc"),
        }
    }

    #[test]
    fn containerd_config_parses_as_toml_with_the_settings_this_machine_needs() {
        let text = containerd_config(&plan());
        let conf: toml::Value = toml::from_str(&text).expect("toml");
        assert_eq!(conf["version"].as_integer(), Some(3));
        assert_eq!(
            conf["grpc"]["address"].as_str(),
            Some("/tmp/run/nodes/upstream-worker2/containerd.sock")
        );
        let runtime = &conf["plugins"]["io.containerd.cri.v1.runtime"];
        assert_eq!(runtime["restrict_oom_score_adj"].as_bool(), Some(true));
        let runc = &runtime["containerd"]["runtimes"]["runc"]["options"];
        assert_eq!(runc["SystemdCgroup"].as_bool(), Some(false));
        assert_eq!(runtime["cni"]["bin_dirs"][0].as_str(), Some(CNI_BIN_DIR));
        let images = &conf["plugins"]["io.containerd.cri.v1.images"];
        assert_eq!(
            images["pinned_images"]["sandbox"].as_str(),
            Some(PAUSE_IMAGE)
        );
    }

    #[test]
    fn cni_network_serves_the_node_block_without_masquerade() {
        let conf: serde_json::Value = serde_json::from_str(&cni_conflist(&plan())).expect("json");
        let bridge = &conf["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.240.2.0/24");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["gateway"], "10.240.2.1");
        assert_eq!(bridge["ipam"]["routes"][0]["dst"], "0.0.0.0/0");
    }

    #[test]
    fn kubelet_authenticates_by_certificate_and_webhook_never_always_allow() {
        let conf: serde_json::Value =
            serde_yaml::from_str(&kubelet_config(&plan(), Path::new("/ca.crt"))).expect("yaml");
        assert_eq!(conf["authentication"]["anonymous"]["enabled"], false);
        assert_eq!(conf["authentication"]["webhook"]["enabled"], true);
        assert_eq!(conf["authentication"]["x509"]["clientCAFile"], "/ca.crt");
        assert_eq!(conf["authorization"]["mode"], "Webhook");
        assert_eq!(conf["address"], "10.240.0.3");
        assert_eq!(conf["readOnlyPort"], 0);
        assert_eq!(conf["clusterDNS"][0], "10.96.0.10");
        assert_eq!(conf["failCgroupV1"], false);
        assert_eq!(conf["cgroupRoot"], "/sts-abc/upstream-worker2");
        assert_eq!(conf["nodeLeaseDurationSeconds"], 10);
    }

    #[test]
    fn kube_proxy_never_touches_global_conntrack_settings() {
        let conf: serde_json::Value = serde_yaml::from_str(&proxy_config(&plan())).expect("yaml");
        assert_eq!(conf["conntrack"]["maxPerCore"], 0);
        assert_eq!(conf["conntrack"]["min"], 0);
        assert_eq!(conf["clusterCIDR"], "10.240.0.0/16");
        assert_eq!(conf["hostnameOverride"], "upstream-worker2");
    }
}
