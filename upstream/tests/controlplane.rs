//! The official control plane on this machine: needs root (the API server binds the pod
//! bridge's address) and the binaries from `scripts/build-upstream.sh`; otherwise each test
//! is skipped with the reason printed.

use std::time::Instant;

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, PostParams};
use kube_upstream::controlplane::{Binaries, ControlPlane, ControlPlaneConfig, default_bin_dir};
use kube_upstream::netns::{self, PodNetwork};

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (pod network bridge)".into());
    }
    if let Err(e) = Binaries::find(&default_bin_dir()) {
        return Some(e.to_string());
    }
    None
}

fn processes_of(run_dir: &std::path::Path) -> Vec<String> {
    let needle = run_dir.display().to_string();
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// The control plane starts, reports v1.37.2, accepts a Namespace and a Node, and `stop`
/// leaves no process, namespace, link or run dir behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_starts_serves_and_stops_clean() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
    let run = netns::new_run_id();
    let mut net = PodNetwork::create_routed(&run, &["w0".to_string()]).expect("pod network");
    let bridge = net.bridge().to_owned();
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = tmp.path().join("run");
    let kubeconfig = tmp.path().join("kubeconfig");
    let mut config = ControlPlaneConfig::new(&run_dir, net.host_ip());
    config.kubeconfig = Some(kubeconfig.clone());
    let began = Instant::now();
    let cp = ControlPlane::start(config)
        .await
        .unwrap_or_else(|e| panic!("start: {}", kube_upstream::report(&e)));
    eprintln!(
        "control plane ready after {:?} ({:?} measured from start)",
        cp.ready_after(),
        began.elapsed()
    );
    assert_eq!(cp.version().git_version, "v1.37.2");
    assert!(
        cp.server_url()
            .starts_with(&format!("https://{}:", net.host_ip()))
    );
    assert!(kubeconfig.exists());
    assert_eq!(cp.pids().len(), 4);

    let client = cp.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "cp-test"}
    }))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "w0", "labels": {"kubernetes.io/hostname": "w0"}}
    }))
    .unwrap();
    let created = nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    assert_eq!(created.metadata.name.as_deref(), Some("w0"));
    // The real apiserver's admission (TaintNodesByCondition) adds the not-ready taint.
    let taints = created.spec.and_then(|s| s.taints).unwrap_or_default();
    assert!(
        taints
            .iter()
            .any(|t| t.key == "node.kubernetes.io/not-ready"),
        "{taints:?}"
    );

    // kubectl built here talks to it with the written kubeconfig.
    let out = std::process::Command::new(&cp.binaries().kubectl)
        .args([
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "get",
            "nodes",
            "-o",
            "name",
        ])
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "node/w0");

    let pids: Vec<u32> = cp.pids().iter().map(|(_, p)| *p).collect();
    cp.stop().await.expect("stop");
    net.remove().expect("remove network");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} left"
        );
    }
    assert_eq!(processes_of(&run_dir), Vec::<String>::new());
    assert!(!run_dir.exists(), "run dir left");
    assert!(!kubeconfig.exists(), "kubeconfig left");
    assert!(!netns::list_netns().iter().any(|n| n.contains(&run)));
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(&bridge)
            .exists()
    );
}

/// A start that fails (a binary directory without kube-apiserver) names the missing binary
/// and the build script, and leaves nothing behind.
#[tokio::test]
async fn missing_binaries_are_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = ControlPlaneConfig::new(tmp.path().join("run"), std::net::Ipv4Addr::LOCALHOST);
    config.bin_dir = Some(tmp.path().join("nothing"));
    let err = ControlPlane::start(config).await.expect_err("no binaries");
    let msg = err.to_string();
    assert!(msg.contains("etcd not found"), "{msg}");
    assert!(msg.contains("scripts/build-upstream.sh"), "{msg}");
    assert!(!tmp.path().join("run").exists());
}
