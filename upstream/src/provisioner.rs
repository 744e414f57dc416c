//! A dynamic provisioner following the external-provisioner contract, for two classes:
//!
//! - `standard` (the default class, as on kind): provisioner `rancher.io/local-path`,
//!   `WaitForFirstConsumer`, reclaim `Delete`, each PV pinned to the node the scheduler
//!   selected by `kubernetes.io/hostname` nodeAffinity;
//! - `network`: provisioner `sts-conformance.dev/network`, `Immediate`, reclaim `Delete`,
//!   PVs no node owns (every node shares this machine's disk), so a pod may move.
//!
//! The PV controller names the provisioner on a claim (`volume.kubernetes.io/storage-provisioner`)
//! and, for `WaitForFirstConsumer`, the scheduler names the node
//! (`volume.kubernetes.io/selected-node`). Then a PV is created: a `hostPath` directory
//! `<volumes dir>/<pv name>`, the claim's request and access modes, the class's reclaim
//! policy, a `claimRef` with the claim's uid and `pv.kubernetes.io/provisioned-by`; the PV
//! controller binds it. A `Released` PV with reclaim `Delete` that this provisioner made has
//! its directory removed, then is deleted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The default class, with kind's provisioner name.
pub const STANDARD_CLASS: &str = "standard";
pub const STANDARD_PROVISIONER: &str = "rancher.io/local-path";
/// The class whose volumes no node owns.
pub const NETWORK_CLASS: &str = "network";
pub const NETWORK_PROVISIONER: &str = "sts-conformance.dev/network";

pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const ANN_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
const FIELD_MANAGER: &str = "kube-upstream-provisioner";
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("failed to create the volumes directory {path}")]
    VolumesDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to apply StorageClass {class}")]
    StorageClass {
        class: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to create the directory {path} of volume {volume}")]
    CreateDir {
        volume: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to remove the directory {path} of volume {volume}")]
    RemoveDir {
        volume: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "refusing to remove {path} of volume {volume}: it is not under the volumes directory {volumes_dir}"
    )]
    OutsideVolumesDir {
        volume: String,
        path: PathBuf,
        volumes_dir: PathBuf,
    },
    #[error("failed to read StorageClass {class} for claim {claim}")]
    ReadClass {
        class: String,
        claim: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to create volume {volume} for claim {claim}")]
    CreateVolume {
        volume: String,
        claim: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to delete volume {volume}")]
    DeleteVolume {
        volume: String,
        #[source]
        source: kube::Error,
    },
}

/// The StorageClasses this provisioner serves.
pub fn storage_classes() -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STANDARD_CLASS,
                "annotations": {ANN_DEFAULT_CLASS: "true"},
            },
            "provisioner": STANDARD_PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        }),
        json!({
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": NETWORK_CLASS},
            "provisioner": NETWORK_PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }),
    ]
}

fn ours(provisioner: &str) -> bool {
    provisioner == STANDARD_PROVISIONER || provisioner == NETWORK_PROVISIONER
}

/// What to do about a claim.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Not ours, or nothing to do; says why.
    Ignore(String),
    /// Ours, but not yet (e.g. no node selected).
    Wait(String),
    /// Create this PV.
    Provision(Box<PersistentVolume>),
}

/// The PV name for a claim, as external-provisioner names it: `pvc-<claim uid>`.
pub fn volume_name(claim_uid: &str) -> String {
    format!("pvc-{claim_uid}")
}

fn claim_class(claim: &PersistentVolumeClaim) -> Option<String> {
    claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class").cloned())
        .or_else(|| {
            claim
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.clone())
        })
}

/// Decides whether `claim` gets a volume now (pure: the class is looked up by the caller).
pub fn decide(
    claim: &PersistentVolumeClaim,
    class: Option<&StorageClass>,
    volumes_dir: &Path,
) -> Decision {
    let name = format!(
        "{}/{}",
        claim.metadata.namespace.as_deref().unwrap_or_default(),
        claim.metadata.name.as_deref().unwrap_or_default()
    );
    if claim.metadata.deletion_timestamp.is_some() {
        return Decision::Ignore(format!("claim {name} is being deleted"));
    }
    let spec = claim.spec.clone().unwrap_or_default();
    if spec.volume_name.as_deref().is_some_and(|v| !v.is_empty()) {
        return Decision::Ignore(format!("claim {name} already names a volume"));
    }
    let phase = claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    if phase != "Pending" {
        return Decision::Ignore(format!("claim {name} is {phase}"));
    }
    let annotations = claim.metadata.annotations.clone().unwrap_or_default();
    let named = annotations
        .get(ANN_STORAGE_PROVISIONER)
        .or_else(|| annotations.get(ANN_BETA_STORAGE_PROVISIONER));
    let Some(provisioner) = named.filter(|p| ours(p)) else {
        return Decision::Ignore(format!("claim {name} is not for this provisioner"));
    };
    let Some(class) = class else {
        return Decision::Wait(format!("claim {name}: its StorageClass does not exist"));
    };
    if class.provisioner != *provisioner {
        return Decision::Ignore(format!(
            "claim {name}: class {} belongs to {}",
            class.metadata.name.as_deref().unwrap_or_default(),
            class.provisioner
        ));
    }
    let wait_for_consumer = class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer");
    let selected_node = annotations.get(ANN_SELECTED_NODE).cloned();
    if wait_for_consumer && selected_node.is_none() {
        return Decision::Wait(format!(
            "claim {name} waits for its first consumer to be scheduled"
        ));
    }
    let Some(uid) = claim.metadata.uid.clone() else {
        return Decision::Wait(format!("claim {name} has no uid yet"));
    };
    let Some(storage) = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .cloned()
    else {
        return Decision::Ignore(format!("claim {name} requests no storage"));
    };
    let pv_name = volume_name(&uid);
    let path = volumes_dir.join(&pv_name);
    // Node-bound for the local-path class, like kind's: the pod cannot move.
    let node_affinity = match (provisioner.as_str(), &selected_node) {
        (STANDARD_PROVISIONER, Some(node)) => json!({"required": {"nodeSelectorTerms": [{
            "matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]
        }]}}),
        _ => Value::Null,
    };
    let mut pv = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": pv_name,
            "annotations": {ANN_PROVISIONED_BY: provisioner},
        },
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": spec.access_modes.clone().unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
            "persistentVolumeReclaimPolicy": class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
            "storageClassName": class.metadata.name,
            "volumeMode": spec.volume_mode.clone().unwrap_or_else(|| "Filesystem".into()),
            "hostPath": {"path": path.to_string_lossy(), "type": "DirectoryOrCreate"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": claim.metadata.namespace,
                "name": claim.metadata.name,
                "uid": uid,
            },
        },
    });
    if let Some(options) = &class.mount_options {
        pv["spec"]["mountOptions"] = json!(options);
    }
    if !node_affinity.is_null() {
        pv["spec"]["nodeAffinity"] = node_affinity;
    }
    match serde_json::from_value::<PersistentVolume>(pv) {
        Ok(pv) => Decision::Provision(Box::new(pv)),
        Err(e) => Decision::Ignore(format!("claim {name}: the volume cannot be built: {e}")),
    }
}

/// Whether `pv` is a released volume of ours whose reclaim policy is Delete; its
/// directory when so.
pub fn reclaimable(pv: &PersistentVolume) -> Option<PathBuf> {
    let provisioned_by = pv.metadata.annotations.as_ref()?.get(ANN_PROVISIONED_BY)?;
    if !ours(provisioned_by) || pv.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let spec = pv.spec.as_ref()?;
    if spec.persistent_volume_reclaim_policy.as_deref() != Some("Delete") {
        return None;
    }
    if pv.status.as_ref()?.phase.as_deref() != Some("Released") {
        return None;
    }
    spec.host_path.as_ref().map(|h| PathBuf::from(&h.path))
}

/// The running provisioner.
pub struct Provisioner {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    volumes_dir: PathBuf,
}

impl Provisioner {
    pub fn volumes_dir(&self) -> &Path {
        &self.volumes_dir
    }

    /// Stops watching (volumes and directories stay).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout(STOP_TIMEOUT, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Provisioner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Applies both StorageClasses and starts provisioning under `volumes_dir`.
pub async fn start(
    client: kube::Client,
    volumes_dir: &Path,
) -> Result<Provisioner, ProvisionError> {
    std::fs::create_dir_all(volumes_dir).map_err(|source| ProvisionError::VolumesDir {
        path: volumes_dir.to_path_buf(),
        source,
    })?;
    let classes: Api<StorageClass> = Api::all(client.clone());
    for class in storage_classes() {
        let name = class["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        classes
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&class),
            )
            .await
            .map_err(|source| ProvisionError::StorageClass {
                class: name.clone(),
                source,
            })?;
    }
    let (stop, stop_rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(claim_loop(
            client.clone(),
            volumes_dir.to_path_buf(),
            stop_rx.clone(),
        )),
        tokio::spawn(volume_loop(client, volumes_dir.to_path_buf(), stop_rx)),
    ];
    tracing::info!(volumes_dir = %volumes_dir.display(), "provisioner running");
    Ok(Provisioner {
        stop,
        tasks,
        volumes_dir: volumes_dir.to_path_buf(),
    })
}

async fn claim_loop(client: kube::Client, volumes_dir: PathBuf, stop: watch::Receiver<bool>) {
    let mut claims = applied(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        "claim",
        stop,
    );
    while let Some(claim) = claims.next().await {
        if let Err(e) = provision(&client, &volumes_dir, &claim).await {
            tracing::warn!(error = %crate::report(&e), "provisioning failed; retried at the claim's next change or resync");
        }
    }
}

/// Each object the watch of `api` applies (listed or changed), until `stop` changes. Watch
/// errors are logged and the watcher's backoff retries.
fn applied<K>(
    api: Api<K>,
    what: &'static str,
    mut stop: watch::Receiver<bool>,
) -> impl futures::Stream<Item = K> + Send + Unpin
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(move |event| async move {
            match event {
                Ok(Event::Apply(o) | Event::InitApply(o)) => Some(o),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "{what} watch failed; retrying");
                    None
                }
            }
        })
        .take_until(async move {
            let _ = stop.changed().await;
        })
        .boxed()
}

async fn provision(
    client: &kube::Client,
    volumes_dir: &Path,
    claim: &PersistentVolumeClaim,
) -> Result<(), ProvisionError> {
    let claim_ref = format!(
        "{}/{}",
        claim.metadata.namespace.as_deref().unwrap_or_default(),
        claim.metadata.name.as_deref().unwrap_or_default()
    );
    let Some(class_name) = claim_class(claim) else {
        return Ok(());
    };
    // Cheap pre-check before reading the class.
    if let Decision::Ignore(_) = decide(claim, None, volumes_dir) {
        return Ok(());
    }
    let classes: Api<StorageClass> = Api::all(client.clone());
    let class = classes
        .get_opt(&class_name)
        .await
        .map_err(|source| ProvisionError::ReadClass {
            class: class_name.clone(),
            claim: claim_ref.clone(),
            source,
        })?;
    let pv = match decide(claim, class.as_ref(), volumes_dir) {
        Decision::Provision(pv) => pv,
        Decision::Wait(why) | Decision::Ignore(why) => {
            tracing::debug!(%why, "claim not provisioned");
            return Ok(());
        }
    };
    let volume = pv.metadata.name.clone().unwrap_or_default();
    let path = volumes_dir.join(&volume);
    std::fs::create_dir_all(&path).map_err(|source| ProvisionError::CreateDir {
        volume: volume.clone(),
        path: path.clone(),
        source,
    })?;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    match volumes.create(&PostParams::default(), &pv).await {
        Ok(_) => {
            tracing::info!(claim = %claim_ref, %volume, path = %path.display(), "volume provisioned");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(source) => Err(ProvisionError::CreateVolume {
            volume,
            claim: claim_ref,
            source,
        }),
    }
}

async fn volume_loop(client: kube::Client, volumes_dir: PathBuf, stop: watch::Receiver<bool>) {
    let mut volumes = applied(Api::<PersistentVolume>::all(client.clone()), "volume", stop);
    while let Some(pv) = volumes.next().await {
        if let Err(e) = reclaim(&client, &volumes_dir, &pv).await {
            tracing::warn!(error = %crate::report(&e), "reclaiming failed");
        }
    }
}

async fn reclaim(
    client: &kube::Client,
    volumes_dir: &Path,
    pv: &PersistentVolume,
) -> Result<(), ProvisionError> {
    let Some(path) = reclaimable(pv) else {
        return Ok(());
    };
    let volume = pv.metadata.name.clone().unwrap_or_default();
    remove_volume_dir(volumes_dir, &volume, &path)?;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    match volumes.delete(&volume, &DeleteParams::default()).await {
        Ok(_) => {
            tracing::info!(%volume, path = %path.display(), "released volume deleted");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(ProvisionError::DeleteVolume { volume, source }),
    }
}

/// Removes a volume's directory, only when it lies under `volumes_dir`.
fn remove_volume_dir(volumes_dir: &Path, volume: &str, path: &Path) -> Result<(), ProvisionError> {
    let inside = path.starts_with(volumes_dir)
        && path != volumes_dir
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    if !inside {
        return Err(ProvisionError::OutsideVolumesDir {
            volume: volume.to_string(),
            path: path.to_path_buf(),
            volumes_dir: volumes_dir.to_path_buf(),
        });
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ProvisionError::RemoveDir {
            volume: volume.to_string(),
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn class(name: &str) -> StorageClass {
        let v = storage_classes()
            .into_iter()
            .find(|c| c["metadata"]["name"] == name)
            .expect("class");
        serde_json::from_value(v).expect("StorageClass")
    }

    fn claim(annotations: &str, extra_spec: &str) -> PersistentVolumeClaim {
        serde_yaml::from_str(&format!(
            r#"
metadata:
  name: data-mysql-0
  namespace: ns
  uid: "1234"
  annotations: {{{annotations}}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: standard
  resources: {{requests: {{storage: 1Gi}}}}
  {extra_spec}
status: {{phase: Pending}}
"#
        ))
        .expect("claim yaml")
    }

    const OURS: &str = "volume.kubernetes.io/storage-provisioner: rancher.io/local-path";

    #[test]
    fn a_scheduled_claim_gets_a_node_bound_volume() {
        let c = claim(
            &format!("{OURS}, volume.kubernetes.io/selected-node: upstream-worker2"),
            "",
        );
        let Decision::Provision(pv) = decide(&c, Some(&class("standard")), Path::new("/v")) else {
            panic!("expected a volume");
        };
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-1234"));
        assert_eq!(
            annotations_of(&pv)[ANN_PROVISIONED_BY],
            STANDARD_PROVISIONER
        );
        let spec = pv.spec.expect("spec");
        assert_eq!(spec.capacity.expect("capacity")["storage"].0, "1Gi");
        assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_string()]));
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("standard"));
        assert_eq!(spec.host_path.expect("hostPath").path, "/v/pvc-1234");
        let claim_ref = spec.claim_ref.expect("claimRef");
        assert_eq!(
            (
                claim_ref.namespace.as_deref(),
                claim_ref.name.as_deref(),
                claim_ref.uid.as_deref()
            ),
            (Some("ns"), Some("data-mysql-0"), Some("1234"))
        );
        let term = &spec
            .node_affinity
            .and_then(|a| a.required)
            .expect("required affinity")
            .node_selector_terms[0];
        let expr = &term.match_expressions.as_ref().expect("expressions")[0];
        assert_eq!(expr.key, HOSTNAME_LABEL);
        assert_eq!(expr.operator, "In");
        assert_eq!(expr.values, Some(vec!["upstream-worker2".to_string()]));
    }

    fn annotations_of(pv: &PersistentVolume) -> BTreeMap<String, String> {
        pv.metadata.annotations.clone().unwrap_or_default()
    }

    #[test]
    fn a_network_claim_is_provisioned_at_once_without_node_affinity() {
        let c = claim(
            "volume.kubernetes.io/storage-provisioner: sts-conformance.dev/network",
            "",
        );
        let mut c = c;
        if let Some(s) = c.spec.as_mut() {
            s.storage_class_name = Some(NETWORK_CLASS.into());
        }
        let Decision::Provision(pv) = decide(&c, Some(&class("network")), Path::new("/v")) else {
            panic!("expected a volume");
        };
        let spec = pv.spec.expect("spec");
        assert_eq!(spec.node_affinity, None);
        assert_eq!(spec.storage_class_name.as_deref(), Some("network"));
    }

    #[rstest::rstest]
    #[case::not_named_by_the_pv_controller("", "", true)]
    #[case::another_provisioner(
        "volume.kubernetes.io/storage-provisioner: ebs.csi.aws.com",
        "",
        true
    )]
    #[case::no_node_selected_yet(OURS, "", false)]
    #[case::already_bound(concat!("volume.kubernetes.io/storage-provisioner: rancher.io/local-path, ", "volume.kubernetes.io/selected-node: w"), "volumeName: pv-x", true)]
    fn claims_that_get_no_volume(
        #[case] annotations: &str,
        #[case] extra: &str,
        #[case] ignored: bool,
    ) {
        let decision = decide(
            &claim(annotations, extra),
            Some(&class("standard")),
            Path::new("/v"),
        );
        match (ignored, &decision) {
            (true, Decision::Ignore(_)) | (false, Decision::Wait(_)) => {}
            _ => panic!("unexpected {decision:?}"),
        }
    }

    #[test]
    fn a_claim_whose_class_names_another_provisioner_is_ignored() {
        let c = claim(
            &format!("{OURS}, volume.kubernetes.io/selected-node: w"),
            "",
        );
        let mut other = class("standard");
        other.provisioner = "example.com/other".into();
        assert!(matches!(
            decide(&c, Some(&other), Path::new("/v")),
            Decision::Ignore(_)
        ));
        assert!(matches!(
            decide(&c, None, Path::new("/v")),
            Decision::Wait(_)
        ));
    }

    fn pv(phase: &str, policy: &str, by: &str) -> PersistentVolume {
        serde_yaml::from_str(&format!(
            "metadata: {{name: pvc-1, annotations: {{pv.kubernetes.io/provisioned-by: {by}}}}}\nspec: {{persistentVolumeReclaimPolicy: {policy}, hostPath: {{path: /v/pvc-1}}}}\nstatus: {{phase: {phase}}}"
        ))
        .expect("pv yaml")
    }

    #[rstest::rstest]
    #[case::released_delete("Released", "Delete", STANDARD_PROVISIONER, true)]
    #[case::released_network("Released", "Delete", NETWORK_PROVISIONER, true)]
    #[case::still_bound("Bound", "Delete", STANDARD_PROVISIONER, false)]
    #[case::retained("Released", "Retain", STANDARD_PROVISIONER, false)]
    #[case::not_ours("Released", "Delete", "example.com/other", false)]
    fn only_released_delete_volumes_of_ours_are_reclaimed(
        #[case] phase: &str,
        #[case] policy: &str,
        #[case] by: &str,
        #[case] reclaimed: bool,
    ) {
        assert_eq!(reclaimable(&pv(phase, policy, by)).is_some(), reclaimed);
    }

    #[test]
    fn directories_outside_the_volumes_dir_are_never_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let volumes = dir.path().join("volumes");
        let inside = volumes.join("pvc-1");
        std::fs::create_dir_all(inside.join("mysql")).expect("mkdir");
        let outside = dir.path().join("precious");
        std::fs::create_dir_all(&outside).expect("mkdir");
        for bad in [
            outside.clone(),
            volumes.clone(),
            volumes.join("../precious"),
        ] {
            let err = remove_volume_dir(&volumes, "pvc-x", &bad).expect_err("refused");
            assert!(
                matches!(err, ProvisionError::OutsideVolumesDir { .. }),
                "{err}"
            );
        }
        assert!(outside.is_dir());
        remove_volume_dir(&volumes, "pvc-1", &inside).expect("removed");
        assert!(!inside.exists());
        remove_volume_dir(&volumes, "pvc-1", &inside).expect("already gone is fine");
    }
}
