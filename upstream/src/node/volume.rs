//! Where a pod's container keeps its data: the volume mounted at `/var/lib/mysql`, followed
//! from the pod's `persistentVolumeClaim` to the claim's bound PersistentVolume and that
//! volume's `hostPath` (or `local`) directory, the way the kubelet's volume manager mounts
//! it. Pure checks here; the two lookups are in [`resolve`].

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Api;
use kube_sim::kubelet::status::{DataVolume, data_volume};

/// Why a pod's data directory is not available (yet). The kubelet retries.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    #[error("claim {claim} does not exist")]
    ClaimMissing { claim: String },
    #[error("claim {claim} is not bound to a volume yet (phase {phase})")]
    ClaimUnbound { claim: String, phase: String },
    #[error("volume {volume} of claim {claim} does not exist")]
    VolumeMissing { claim: String, volume: String },
    #[error("volume {volume} is bound to another claim ({bound_to}), not {claim}")]
    VolumeBoundElsewhere {
        volume: String,
        claim: String,
        bound_to: String,
    },
    #[error(
        "volume {volume} has neither hostPath nor local path: the hollow node mounts only directories"
    )]
    VolumeNotADirectory { volume: String },
    #[error("failed to read claim {claim} or its volume: {message}")]
    Api { claim: String, message: String },
}

/// What backs a container's `/var/lib/mysql`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// A claim, by name.
    Claim(String),
    /// An emptyDir volume (lives as long as the pod), by volume name.
    EmptyDir(String),
    /// Nothing mounted: the container's writable layer, fresh at every start.
    ContainerLayer,
}

/// The data volume of `container` in `pod` (kube-sim's rule, on the typed objects).
pub fn data_source(pod: &Pod, container: &Container) -> DataSource {
    let (Ok(pod), Ok(container)) = (serde_json::to_value(pod), serde_json::to_value(container))
    else {
        return DataSource::ContainerLayer;
    };
    match data_volume(&pod, &container) {
        DataVolume::Claim(c) => DataSource::Claim(c),
        DataVolume::EmptyDir(v) => DataSource::EmptyDir(v),
        DataVolume::ContainerLayer => DataSource::ContainerLayer,
    }
}

/// The volume a claim is bound to: needs `spec.volumeName` and phase Bound.
pub fn bound_volume(
    claim_name: &str,
    claim: &PersistentVolumeClaim,
) -> Result<String, VolumeError> {
    let phase = claim
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".into());
    let volume = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
    match volume {
        Some(v) if !v.is_empty() && phase == "Bound" => Ok(v),
        _ => Err(VolumeError::ClaimUnbound {
            claim: claim_name.to_string(),
            phase,
        }),
    }
}

/// The directory of `volume`, checked to be bound to `claim` (by namespace, name and, when
/// both are known, uid).
pub fn volume_path(
    claim_ns: &str,
    claim_name: &str,
    claim: &PersistentVolumeClaim,
    volume: &PersistentVolume,
) -> Result<PathBuf, VolumeError> {
    let volume_name = volume.metadata.name.clone().unwrap_or_default();
    let spec = volume.spec.as_ref();
    let claim_ref = spec.and_then(|s| s.claim_ref.as_ref());
    let ref_ns = claim_ref.and_then(|r| r.namespace.as_deref()).unwrap_or("");
    let ref_name = claim_ref.and_then(|r| r.name.as_deref()).unwrap_or("");
    let uid_matches = match (
        claim_ref.and_then(|r| r.uid.as_deref()),
        claim.metadata.uid.as_deref(),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    if ref_ns != claim_ns || ref_name != claim_name || !uid_matches {
        return Err(VolumeError::VolumeBoundElsewhere {
            volume: volume_name,
            claim: format!("{claim_ns}/{claim_name}"),
            bound_to: if claim_ref.is_some() {
                format!("{ref_ns}/{ref_name}")
            } else {
                "nothing".into()
            },
        });
    }
    spec.and_then(|s| {
        s.host_path
            .as_ref()
            .map(|h| h.path.clone())
            .or_else(|| s.local.as_ref().map(|l| l.path.clone()))
    })
    .filter(|p| !p.is_empty())
    .map(PathBuf::from)
    .ok_or(VolumeError::VolumeNotADirectory {
        volume: volume_name,
    })
}

/// Looks the claim and its volume up and returns the volume's directory.
pub async fn resolve(
    client: &kube::Client,
    namespace: &str,
    claim_name: &str,
) -> Result<PathBuf, VolumeError> {
    let api_error = |e: kube::Error| VolumeError::Api {
        claim: format!("{namespace}/{claim_name}"),
        message: e.to_string(),
    };
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let claim = claims
        .get_opt(claim_name)
        .await
        .map_err(api_error)?
        .ok_or_else(|| VolumeError::ClaimMissing {
            claim: claim_name.to_string(),
        })?;
    let volume_name = bound_volume(claim_name, &claim)?;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let volume = volumes
        .get_opt(&volume_name)
        .await
        .map_err(api_error)?
        .ok_or_else(|| VolumeError::VolumeMissing {
            claim: claim_name.to_string(),
            volume: volume_name.clone(),
        })?;
    volume_path(namespace, claim_name, &claim, &volume)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(yaml: &str) -> PersistentVolumeClaim {
        serde_yaml::from_str(yaml).expect("claim yaml")
    }

    fn volume(yaml: &str) -> PersistentVolume {
        serde_yaml::from_str(yaml).expect("volume yaml")
    }

    const BOUND: &str = r#"
metadata: {name: data-mysql-0, namespace: ns, uid: c1}
spec: {volumeName: pvc-c1, accessModes: [ReadWriteOnce]}
status: {phase: Bound}
"#;

    const PV: &str = r#"
metadata: {name: pvc-c1}
spec:
  hostPath: {path: /state/volumes/pvc-c1, type: DirectoryOrCreate}
  claimRef: {namespace: ns, name: data-mysql-0, uid: c1}
"#;

    #[test]
    fn a_bound_claim_resolves_to_its_volume_directory() {
        let c = claim(BOUND);
        assert_eq!(bound_volume("data-mysql-0", &c), Ok("pvc-c1".into()));
        assert_eq!(
            volume_path("ns", "data-mysql-0", &c, &volume(PV)),
            Ok(PathBuf::from("/state/volumes/pvc-c1"))
        );
    }

    #[test]
    fn a_local_volume_resolves_too() {
        let pv = volume(
            "metadata: {name: pv}\nspec: {local: {path: /mnt/disk}, claimRef: {namespace: ns, name: data-mysql-0}}",
        );
        assert_eq!(
            volume_path("ns", "data-mysql-0", &claim(BOUND), &pv),
            Ok(PathBuf::from("/mnt/disk"))
        );
    }

    #[rstest::rstest]
    #[case::pending("metadata: {name: c}\nspec: {}\nstatus: {phase: Pending}", "Pending")]
    #[case::no_status("metadata: {name: c}\nspec: {volumeName: pv}", "Pending")]
    #[case::named_but_lost(
        "metadata: {name: c}\nspec: {volumeName: pv}\nstatus: {phase: Lost}",
        "Lost"
    )]
    fn an_unbound_claim_is_refused(#[case] yaml: &str, #[case] phase: &str) {
        assert_eq!(
            bound_volume("c", &claim(yaml)),
            Err(VolumeError::ClaimUnbound {
                claim: "c".into(),
                phase: phase.into()
            })
        );
    }

    #[rstest::rstest]
    #[case::other_claim(
        "spec: {hostPath: {path: /x}, claimRef: {namespace: ns, name: data-mysql-1, uid: c1}}"
    )]
    #[case::other_namespace(
        "spec: {hostPath: {path: /x}, claimRef: {namespace: other, name: data-mysql-0, uid: c1}}"
    )]
    #[case::other_uid(
        "spec: {hostPath: {path: /x}, claimRef: {namespace: ns, name: data-mysql-0, uid: old}}"
    )]
    #[case::unclaimed("spec: {hostPath: {path: /x}}")]
    fn a_volume_bound_elsewhere_is_refused(#[case] spec: &str) {
        let pv = volume(&format!("metadata: {{name: pvc-c1}}\n{spec}"));
        let err = volume_path("ns", "data-mysql-0", &claim(BOUND), &pv).expect_err("refused");
        assert!(
            matches!(err, VolumeError::VolumeBoundElsewhere { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_volume_without_a_directory_is_refused() {
        let pv = volume(
            "metadata: {name: pvc-c1}\nspec: {nfs: {server: s, path: /e}, claimRef: {namespace: ns, name: data-mysql-0}}",
        );
        assert_eq!(
            volume_path("ns", "data-mysql-0", &claim(BOUND), &pv),
            Err(VolumeError::VolumeNotADirectory {
                volume: "pvc-c1".into()
            })
        );
    }

    #[test]
    fn the_data_source_is_the_volume_mounted_at_var_lib_mysql() {
        let pod: Pod = serde_yaml::from_str(
            r#"
metadata: {name: mysql-0}
spec:
  containers:
  - name: mysql
    image: mysql:5.7
    volumeMounts: [{name: mysql-persistent-storage, mountPath: /var/lib/mysql}]
  - name: side
    image: mysql:5.7
    volumeMounts: [{name: mysql-persistent-storage, mountPath: /data}]
  volumes:
  - name: mysql-persistent-storage
    persistentVolumeClaim: {claimName: mysql-persistent-storage-mysql-0}
"#,
        )
        .expect("pod yaml");
        let containers = &pod.spec.as_ref().expect("spec").containers;
        assert_eq!(
            data_source(&pod, &containers[0]),
            DataSource::Claim("mysql-persistent-storage-mysql-0".into())
        );
        assert_eq!(
            data_source(&pod, &containers[1]),
            DataSource::ContainerLayer
        );
    }
}
