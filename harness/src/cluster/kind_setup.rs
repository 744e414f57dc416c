//! What the harness adds to a kind cluster it creates, and what it waits for before a
//! test may use one.
//!
//! The open-files limit: kind node images built on Debian trixie start containerd with
//! `LimitNOFILE=infinity` (kind #4244, #4245), so every container gets an enormous
//! `ulimit -n`, and mysqld 5.7 sizes its memory from it (kind #760, docker-library/mysql
//! #982). The fix is a systemd drop-in for `containerd.service` setting
//! `LimitNOFILE=1048576`, written by the harness into its temporary directory and mounted
//! read-only into every node through the generated kind config's `extraMounts`. Chosen over
//! `docker exec` + `systemctl daemon-reload` + `systemctl restart containerd` after create:
//! the mount is in place before systemd starts containerd for the first time, so no
//! container (kube-apiserver, etcd, CoreDNS, the local-path provisioner) ever runs with the
//! unbounded limit and nothing is restarted under a running control plane; and it is part
//! of the node container, so it still holds after a node restart (`docker start`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_yaml::{Mapping, Value};

use crate::drive::conditions::{describe_node, describe_pod, is_node_ready, is_pod_ready};
use crate::drive::wait::{self, Progress, WaitError};

/// The open-files limit containerd (and so every container) gets on the harness's nodes.
pub const CONTAINERD_NOFILE: u64 = 1_048_576;
/// Where the drop-in is mounted in each node: systemd reads it when it starts containerd.
pub const CONTAINERD_DROPIN_PATH: &str =
    "/etc/systemd/system/containerd.service.d/99-sts-conformance-nofile.conf";
/// The file names the harness writes into its temporary directory.
pub const DROPIN_FILE: &str = "containerd-nofile.conf";
pub const CONFIG_FILE: &str = "kind-config.yaml";
/// Namespace and label of kind's local-path provisioner (the `standard` StorageClass).
pub const LOCAL_PATH_NAMESPACE: &str = "local-path-storage";
pub const LOCAL_PATH_SELECTOR: &str = "app=local-path-provisioner";

#[derive(Debug, thiserror::Error)]
pub enum KindSetupError {
    #[error("failed to read the kind cluster config {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse the kind cluster config {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("the kind cluster config {} has no `nodes` list", path.display())]
    NoNodes { path: PathBuf },
    #[error("failed to write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to encode the generated kind cluster config")]
    Encode(#[source] serde_yaml::Error),
    #[error("the new kind cluster is not ready")]
    NotReady(#[source] WaitError),
}

/// The systemd drop-in: `[Service] LimitNOFILE=1048576`.
pub fn containerd_dropin() -> String {
    format!(
        "# Written by sts-conformance: mysql:5.7 sizes its memory from the open-files limit\n\
         # (kind #4244, docker-library/mysql #982); containerd's default is infinity.\n\
         [Service]\nLimitNOFILE={CONTAINERD_NOFILE}\n"
    )
}

/// The cluster config kind gets: `base` (`manifests/kind/cluster.yaml`) with, on every
/// node, an `extraMounts` entry mounting the drop-in read-only. Writes the drop-in and the
/// config into `dir` (absolute paths: docker resolves `hostPath` on the host) and returns
/// the config's path and its node count.
pub fn write_cluster_config(base: &Path, dir: &Path) -> Result<(PathBuf, usize), KindSetupError> {
    let text = std::fs::read_to_string(base).map_err(|source| KindSetupError::Read {
        path: base.to_owned(),
        source,
    })?;
    let mut config: Value =
        serde_yaml::from_str(&text).map_err(|source| KindSetupError::Parse {
            path: base.to_owned(),
            source,
        })?;
    let dir = std::path::absolute(dir).map_err(|source| KindSetupError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let dropin = dir.join(DROPIN_FILE);
    write(&dropin, &containerd_dropin())?;
    let Some(nodes) = config.get_mut("nodes").and_then(Value::as_sequence_mut) else {
        return Err(KindSetupError::NoNodes {
            path: base.to_owned(),
        });
    };
    let mount = Value::Mapping(Mapping::from_iter([
        ("hostPath".into(), dropin.to_string_lossy().as_ref().into()),
        ("containerPath".into(), CONTAINERD_DROPIN_PATH.into()),
        ("readOnly".into(), true.into()),
    ]));
    for node in nodes.iter_mut() {
        let Some(node) = node.as_mapping_mut() else {
            continue;
        };
        let mounts = node
            .entry("extraMounts".into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        if let Some(list) = mounts.as_sequence_mut() {
            list.push(mount.clone());
        }
    }
    let count = nodes.len();
    let path = dir.join(CONFIG_FILE);
    let encoded = serde_yaml::to_string(&config).map_err(KindSetupError::Encode)?;
    write(
        &path,
        &format!(
            "# Generated by sts-conformance from {}: every node mounts the containerd drop-in.\n{encoded}",
            base.display()
        ),
    )?;
    Ok((path, count))
}

fn write(path: &Path, text: &str) -> Result<(), KindSetupError> {
    std::fs::write(path, text).map_err(|source| KindSetupError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Waits (watch-driven, bounded) until `expected` nodes exist and every node is Ready, then
/// until a pod of the local-path provisioner is Running and Ready: `kind create --wait`
/// only waits for the control plane, and a PVC made before the provisioner runs stays
/// Pending for longer than the first test expects.
pub async fn wait_until_ready(
    client: &Client,
    expected: usize,
    timeout: Duration,
) -> Result<(), KindSetupError> {
    let nodes: Api<Node> = Api::all(client.clone());
    wait::wait_until(
        &nodes,
        watcher::Config::default(),
        &format!("{expected} nodes, every one Ready"),
        "Node objects",
        timeout,
        |seen| nodes_progress(expected, seen),
    )
    .await
    .map_err(KindSetupError::NotReady)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), LOCAL_PATH_NAMESPACE);
    wait::wait_until(
        &pods,
        watcher::Config::default().labels(LOCAL_PATH_SELECTOR),
        "the local-path provisioner running and Ready",
        &format!("pods {LOCAL_PATH_SELECTOR} in namespace {LOCAL_PATH_NAMESPACE}"),
        timeout,
        provisioner_progress,
    )
    .await
    .map_err(KindSetupError::NotReady)
}

fn nodes_progress(expected: usize, seen: &[Arc<Node>]) -> Progress {
    let ready = seen.iter().filter(|n| is_node_ready(n)).count();
    if seen.len() >= expected && ready == seen.len() {
        return Progress::Done;
    }
    let states: Vec<String> = seen
        .iter()
        .map(|n| format!("{}: {}", n.name_any(), describe_node(n)))
        .collect();
    Progress::Pending(format!(
        "{} of {expected} nodes, {ready} Ready [{}]",
        seen.len(),
        states.join("; ")
    ))
}

fn provisioner_progress(seen: &[Arc<Pod>]) -> Progress {
    let running = |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && is_pod_ready(p)
    };
    if seen.iter().any(|p| running(p)) {
        return Progress::Done;
    }
    if seen.is_empty() {
        return Progress::Pending("no provisioner pod yet".to_owned());
    }
    let states: Vec<String> = seen
        .iter()
        .map(|p| format!("{}: {}", p.name_any(), describe_pod(p)))
        .collect();
    Progress::Pending(states.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_mounts_the_dropin_from_an_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        let base = crate::support::settings::repo_root().join("manifests/kind/cluster.yaml");
        let (path, count) = write_cluster_config(&base, dir.path()).unwrap();
        assert_eq!(count, 4);
        let config: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let nodes = config["nodes"].as_sequence().unwrap();
        for node in nodes {
            let mount = &node["extraMounts"][0];
            let host = Path::new(mount["hostPath"].as_str().unwrap());
            assert!(host.is_absolute(), "{host:?}");
            assert_eq!(
                mount["containerPath"].as_str(),
                Some(CONTAINERD_DROPIN_PATH)
            );
            assert_eq!(mount["readOnly"].as_bool(), Some(true));
            let dropin = std::fs::read_to_string(host).unwrap();
            assert!(
                dropin.contains("[Service]\nLimitNOFILE=1048576\n"),
                "{dropin}"
            );
        }
        assert_eq!(config["kind"].as_str(), Some("Cluster"));
    }

    fn node(name: &str, ready: &str) -> Arc<Node> {
        Arc::new(
            serde_yaml::from_str(&format!(
                "metadata: {{name: {name}}}\nstatus: {{conditions: [{{type: Ready, status: \"{ready}\", reason: KubeletNotReady}}]}}"
            ))
            .unwrap(),
        )
    }

    #[test]
    fn nodes_are_ready_when_all_expected_are_ready() {
        assert_eq!(
            nodes_progress(2, &[node("a", "True"), node("b", "True")]),
            Progress::Done
        );
        let Progress::Pending(state) = nodes_progress(3, &[node("a", "True"), node("b", "False")])
        else {
            panic!("pending expected");
        };
        assert!(
            state.starts_with("2 of 3 nodes, 1 Ready") && state.contains("b: Ready False"),
            "{state}"
        );
    }

    #[test]
    fn the_provisioner_must_run_and_be_ready() {
        let pod = |phase: &str, ready: &str| -> Arc<Pod> {
            Arc::new(
                serde_yaml::from_str(&format!(
                    "metadata: {{name: local-path-provisioner-x}}\nstatus: {{phase: {phase}, conditions: [{{type: Ready, status: \"{ready}\"}}]}}"
                ))
                .unwrap(),
            )
        };
        assert_eq!(
            provisioner_progress(&[pod("Running", "True")]),
            Progress::Done
        );
        assert!(matches!(
            provisioner_progress(&[pod("Pending", "False")]),
            Progress::Pending(s) if s.contains("phase Pending")
        ));
        assert!(matches!(provisioner_progress(&[]), Progress::Pending(_)));
    }
}
