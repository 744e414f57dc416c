//! Reclaim steps: the StorageClass the run's claims use, a Retain copy of it made with the
//! cluster's own provisioner ([`RETAIN_CLASS`], cluster-scoped, so removed at the end with
//! the PVs it kept), deleting the StatefulSet and its claims, the waits until their PVs are
//! Released or gone, and a restore: each retained PV's claimRef cleared, a new claim
//! naming it in `spec.volumeName`, the StatefulSet deployed again.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use checks::world::World;

use crate::cluster::namespace::{LABEL_KEY, LABEL_VALUE};
use crate::cluster::storage::{ClassFacts, default_class};
use crate::drive::wait::{self, Progress};

use super::{ScenarioError, TestEnv};

/// The StorageClass the harness creates: the run's class with reclaimPolicy Retain.
pub const RETAIN_CLASS: &str = "sts-retain";
/// The annotation that makes a StorageClass the cluster's default.
/// The document's words on the reclaim policy.
pub const DOCUMENT_RECLAIM_CLAIM: &str = "the reclaim policy of persistent volumes is \"typically Retain, which ensures that data is not deleted\"";

/// A copy of `class` named [`RETAIN_CLASS`] with reclaimPolicy Retain: same provisioner,
/// parameters, volumeBindingMode and mount options, labelled as the harness's.
pub fn retain_copy(class: &StorageClass) -> StorageClass {
    StorageClass {
        metadata: ObjectMeta {
            name: Some(RETAIN_CLASS.into()),
            labels: Some(BTreeMap::from([(
                LABEL_KEY.to_string(),
                LABEL_VALUE.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        provisioner: class.provisioner.clone(),
        parameters: class.parameters.clone(),
        volume_binding_mode: class.volume_binding_mode.clone(),
        mount_options: class.mount_options.clone(),
        allow_volume_expansion: class.allow_volume_expansion,
        allowed_topologies: class.allowed_topologies.clone(),
        reclaim_policy: Some("Retain".into()),
    }
}

/// The report line that puts the run's reclaimPolicy next to the document's claim.
pub fn reclaim_policy_note(class: &StorageClass) -> String {
    let facts = ClassFacts::of(class);
    let verdict = if facts.reclaim_policy == "Retain" {
        "as the document advises"
    } else {
        "not what the document advises: deleting a claim deletes its PV and the data on it"
    };
    format!(
        "reclaim policy: StorageClass {} (provisioner {}) has reclaimPolicy {}; the source document says {DOCUMENT_RECLAIM_CLAIM}: {verdict}",
        class.name_any(),
        facts.provisioner,
        facts.reclaim_policy
    )
}

impl TestEnv {
    fn storage_classes(&self) -> Api<StorageClass> {
        Api::all(self.client.clone())
    }

    fn volumes(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }

    fn claim_name(&self, ordinal: u32) -> String {
        let expect = self.identity_expect(0);
        format!("{}-{}-{ordinal}", expect.claim_template, expect.statefulset)
    }

    /// The StorageClass the documented claims get: the one the manifest names
    /// (`E2E_STORAGE_CLASS`), else the cluster's default class.
    pub async fn run_storage_class(&self) -> Result<StorageClass, ScenarioError> {
        let named = self.manifests.claim_template_spec().storage_class_name;
        if let Some(name) = named {
            return self
                .storage_classes()
                .get(&name)
                .await
                .map_err(ScenarioError::api("read", format!("StorageClass {name}")));
        }
        default_class(&self.storage_classes())
            .await
            .map_err(ScenarioError::api("list", "StorageClasses"))?
            .ok_or_else(|| {
                ScenarioError::Precondition(
                    "the claims name no StorageClass and the cluster has no default class".into(),
                )
            })
    }

    /// Creates [`RETAIN_CLASS`] as a Retain copy of `class` (a copy left by an earlier run
    /// of the harness is replaced). Cluster-scoped: remove it with
    /// [`TestEnv::remove_retained`].
    pub async fn create_retain_class(&self, class: &StorageClass) -> Result<(), ScenarioError> {
        let copy = retain_copy(class);
        self.history.mark(format!(
            "create StorageClass {RETAIN_CLASS}: provisioner {}, reclaimPolicy Retain (a copy of {})",
            copy.provisioner,
            class.name_any()
        ));
        let api = self.storage_classes();
        let object = format!("StorageClass {RETAIN_CLASS}");
        if let Some(old) = api
            .get_opt(RETAIN_CLASS)
            .await
            .map_err(|source| ScenarioError::Api {
                action: "read",
                object: object.clone(),
                source,
            })?
        {
            if old.labels().get(LABEL_KEY).map(String::as_str) != Some(LABEL_VALUE) {
                return Err(ScenarioError::Precondition(format!(
                    "{object} exists and was not made by the harness: it is left alone"
                )));
            }
            // StorageClasses are immutable: replace the earlier run's copy.
            api.delete(RETAIN_CLASS, &DeleteParams::default())
                .await
                .map_err(|source| ScenarioError::Api {
                    action: "delete",
                    object: object.clone(),
                    source,
                })?;
            wait::wait_for_absent(&api, &[RETAIN_CLASS], self.timeouts.pvc_bound).await?;
        }
        api.create(&PostParams::default(), &copy)
            .await
            .map_err(|source| ScenarioError::Api {
                action: "create",
                object,
                source,
            })?;
        Ok(())
    }

    /// Deploys `replicas` with the claims on StorageClass `class`.
    pub async fn deploy_on_class(&self, replicas: i32, class: &str) -> Result<(), ScenarioError> {
        self.deploy_with(replicas, |sts| {
            for template in sts.spec.volume_claim_templates.iter_mut().flatten() {
                if let Some(spec) = template.spec.as_mut() {
                    spec.storage_class_name = Some(class.to_string());
                }
            }
        })
        .await
    }

    /// The PV each ordinal's claim is bound to, as observed so far; Err names a claim not
    /// observed bound.
    pub fn claimed_volumes(&self, replicas: u32) -> Result<BTreeMap<u32, String>, String> {
        self.claimed_volumes_at(u64::MAX, replicas)
    }

    /// The PV each ordinal's claim was bound to at `seq` of the History; Err names a claim
    /// not observed bound by then.
    pub fn claimed_volumes_at(
        &self,
        seq: u64,
        replicas: u32,
    ) -> Result<BTreeMap<u32, String>, String> {
        let world = World::at(&self.entries(), seq);
        (0..replicas)
            .map(|ordinal| {
                let claim = self.claim_name(ordinal);
                world
                    .live_pvc(&claim)
                    .and_then(|c| c.volume_name.clone())
                    .map(|pv| (ordinal, pv))
                    .ok_or_else(|| {
                        format!("claim {claim} was not observed bound to a PV by seq {seq}")
                    })
            })
            .collect()
    }

    /// Every PV the observer saw claimed from this test's namespace that still exists.
    pub fn observed_volumes(&self) -> Vec<String> {
        World::last(&self.entries())
            .pvs
            .iter()
            .filter(|(_, seen)| !seen.gone)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Deploys `replicas` on `class` (the run's own when None), writes `rows` rows to each
    /// ordinal, deletes the StatefulSet and its claims and waits until their PVs are
    /// Released or gone; returns the seq of the mark before the deletion and of the one
    /// after.
    pub async fn write_then_delete_claims(
        &self,
        replicas: u32,
        class: Option<&str>,
        rows: u64,
    ) -> Result<(u64, u64), ScenarioError> {
        // Boxed: in a debug build these steps' poll frames, nested, overflow a test
        // thread's 2 MiB stack.
        match class {
            Some(class) => Box::pin(self.deploy_on_class(replicas as i32, class)).await?,
            None => Box::pin(self.deploy(replicas as i32)).await?,
        }
        Box::pin(self.write_everywhere(replicas, rows)).await?;
        self.settle().await?;
        let volumes = self
            .claimed_volumes(replicas)
            .map_err(ScenarioError::Precondition)?;
        let before = self
            .history
            .mark("rows written; delete the StatefulSet and its claims");
        Box::pin(self.delete_statefulset_and_claims(replicas)).await?;
        let names: Vec<String> = volumes.into_values().collect();
        self.wait_volumes_reclaimed(&names).await?;
        // Judged after a dwell, not the moment a PV turns Released: a reclaimer that
        // deletes a retained PV a moment later must be seen doing it.
        self.watch_volumes_kept(&names, checks::RECLAIM_DWELL)
            .await?;
        self.settle().await?;
        let released = self.history.mark("claims deleted, their PVs reclaimed");
        Ok((before, released))
    }

    /// Watches the PVs `volumes` that still exist for `dwell`; ends early once one of them
    /// is gone (the History holds it, for the checks to judge).
    pub async fn watch_volumes_kept(
        &self,
        volumes: &[String],
        dwell: std::time::Duration,
    ) -> Result<(), ScenarioError> {
        let kept: Vec<&String> = match self.volumes().list(&Default::default()).await {
            Ok(list) => volumes
                .iter()
                .filter(|name| list.items.iter().any(|pv| pv.name_any() == **name))
                .collect(),
            Err(source) => {
                return Err(ScenarioError::Api {
                    action: "list",
                    object: "PersistentVolume objects".into(),
                    source,
                });
            }
        };
        if kept.is_empty() {
            return Ok(());
        }
        let what = format!(
            "one of the kept PVs {} to go",
            kept.iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let watched = wait::wait_until(
            &self.volumes(),
            watcher::Config::default(),
            &what,
            "PersistentVolume objects",
            dwell,
            |pvs| {
                if kept
                    .iter()
                    .all(|name| pvs.iter().any(|pv| pv.name_any() == **name))
                {
                    Progress::Pending("all kept".into())
                } else {
                    Progress::Done
                }
            },
        )
        .await;
        match watched {
            Err(e) if !e.is_timeout() => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Deletes the StatefulSet (its claims are left to its retention policy) and waits
    /// until the pods of ordinals `0..replicas` are gone.
    pub async fn delete_statefulset(&self, replicas: u32) -> Result<(), ScenarioError> {
        let name = self.statefulset_name();
        self.history.mark(format!(
            "delete StatefulSet {name} (its claims left to its policy)"
        ));
        self.remove_statefulset(replicas).await
    }

    /// Deletes the StatefulSet and waits until the pods of `0..replicas` are gone.
    async fn remove_statefulset(&self, replicas: u32) -> Result<(), ScenarioError> {
        let name = self.statefulset_name();
        self.statefulsets()
            .delete(&name, &DeleteParams::default())
            .await
            .map_err(|source| ScenarioError::Api {
                action: "delete",
                object: format!("StatefulSet {}/{name}", self.namespace.name()),
                source,
            })?;
        let pods: Vec<String> = (0..replicas).map(|i| self.pod_name(i)).collect();
        let pods: Vec<&str> = pods.iter().map(String::as_str).collect();
        wait::wait_for_absent(&self.pods(), &pods, self.timeouts.statefulset_ready).await?;
        Ok(())
    }

    /// Deletes the StatefulSet, waits until its pods are gone, deletes the claims of
    /// ordinals `0..replicas` and waits until they are gone.
    pub async fn delete_statefulset_and_claims(&self, replicas: u32) -> Result<(), ScenarioError> {
        let name = self.statefulset_name();
        let claims: Vec<String> = (0..replicas).map(|i| self.claim_name(i)).collect();
        self.history.mark(format!(
            "delete StatefulSet {name}, then its claims {}",
            claims.join(", ")
        ));
        self.remove_statefulset(replicas).await?;
        for claim in &claims {
            match self.pvcs().delete(claim, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(source) => {
                    return Err(ScenarioError::Api {
                        action: "delete",
                        object: format!("PVC {}/{claim}", self.namespace.name()),
                        source,
                    });
                }
            }
        }
        let claims: Vec<&str> = claims.iter().map(String::as_str).collect();
        wait::wait_for_absent(&self.pvcs(), &claims, self.timeouts.pvc_bound).await?;
        Ok(())
    }

    /// Waits until each PV in `volumes` is deleted, or Released with a reclaimPolicy
    /// other than Delete: what its reclaim policy makes of it once its claim is gone.
    pub async fn wait_volumes_reclaimed(&self, volumes: &[String]) -> Result<(), ScenarioError> {
        let what = format!("PVs {} deleted, or Released when kept", volumes.join(", "));
        wait::wait_until(
            &self.volumes(),
            watcher::Config::default(),
            &what,
            "PersistentVolume objects",
            self.timeouts.pvc_bound,
            |pvs| {
                let pending: Vec<String> = volumes
                    .iter()
                    .filter_map(|name| {
                        let pv = pvs.iter().find(|pv| pv.name_any() == *name)?;
                        let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
                        let policy = pv
                            .spec
                            .as_ref()
                            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
                        let settled = phase == Some("Released") && policy != Some("Delete");
                        (!settled).then(|| {
                            format!(
                                "{name} {} ({})",
                                phase.unwrap_or("-"),
                                policy.unwrap_or("-")
                            )
                        })
                    })
                    .collect();
                if pending.is_empty() {
                    Progress::Done
                } else {
                    Progress::Pending(pending.join(", "))
                }
            },
        )
        .await?;
        Ok(())
    }

    /// Restores each ordinal onto its retained PV: clears the PV's claimRef (a patch),
    /// creates the claim `<template>-<sts>-<ordinal>` on `class` naming the PV in
    /// `spec.volumeName`, then deploys `replicas` again.
    pub async fn restore_from_volumes(
        &self,
        volumes: &BTreeMap<u32, String>,
        class: &str,
        replicas: i32,
    ) -> Result<(), ScenarioError> {
        let template = self.manifests.claim_template_spec();
        for (&ordinal, pv) in volumes {
            let claim = self.claim_name(ordinal);
            self.history
                .mark(format!("restore ordinal {ordinal}: clear the claimRef of PV {pv}, then create claim {claim} naming it"));
            self.volumes()
                .patch(
                    pv,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"claimRef": null}})),
                )
                .await
                .map_err(|source| ScenarioError::Api {
                    action: "clear the claimRef of",
                    object: format!("PV {pv}"),
                    source,
                })?;
            let mut spec = template.clone();
            spec.storage_class_name = Some(class.to_string());
            spec.volume_name = Some(pv.clone());
            let pvc = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
                status: None,
            };
            self.pvcs()
                .create(&PostParams::default(), &pvc)
                .await
                .map_err(|source| ScenarioError::Api {
                    action: "create",
                    object: format!("PVC {}/{claim}", self.namespace.name()),
                    source,
                })?;
        }
        self.deploy_on_class(replicas, class).await
    }

    /// Removes what outlives the namespace: each of `volumes` gets reclaimPolicy Delete (so
    /// its provisioner deletes it, and its data, once its claim goes with the namespace;
    /// one bound to no claim is deleted now), and the StorageClass `class` (the harness's
    /// [`RETAIN_CLASS`]), if given, is deleted. Every failure is logged; the first is
    /// returned.
    pub async fn remove_retained(
        &self,
        volumes: &[String],
        class: Option<&str>,
    ) -> Result<(), ScenarioError> {
        let mut first = None;
        let mut failed = |e: ScenarioError| {
            tracing::warn!(error = %crate::support::errors::chain(&e), "cleanup of retained volumes");
            first.get_or_insert(e);
        };
        for pv in volumes {
            let patched = self
                .volumes()
                .patch(
                    pv,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"persistentVolumeReclaimPolicy": "Delete"}})),
                )
                .await;
            let unbound = match patched {
                Ok(pv) => pv
                    .spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref())
                    .is_none(),
                Err(kube::Error::Api(s)) if s.code == 404 => continue,
                Err(source) => {
                    failed(ScenarioError::Api {
                        action: "set reclaimPolicy Delete on",
                        object: format!("PV {pv}"),
                        source,
                    });
                    continue;
                }
            };
            if unbound {
                match self.volumes().delete(pv, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(source) => failed(ScenarioError::Api {
                        action: "delete",
                        object: format!("PV {pv}"),
                        source,
                    }),
                }
            }
        }
        if let Some(class) = class {
            match self
                .storage_classes()
                .delete(class, &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(source) => failed(ScenarioError::Api {
                    action: "delete",
                    object: format!("StorageClass {class}"),
                    source,
                }),
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(yaml: &str) -> StorageClass {
        match serde_yaml::from_str(yaml) {
            Ok(c) => c,
            Err(e) => panic!("bad test StorageClass: {e}"),
        }
    }

    #[test]
    fn the_retain_copy_keeps_the_provisioner_parameters_and_binding_mode() {
        let standard = class(
            "metadata: {name: standard, annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}}\n\
             provisioner: rancher.io/local-path\nparameters: {nodePath: /data}\n\
             volumeBindingMode: WaitForFirstConsumer\nreclaimPolicy: Delete\n",
        );
        let copy = retain_copy(&standard);
        assert_eq!(copy.name_any(), RETAIN_CLASS);
        assert_eq!(copy.provisioner, "rancher.io/local-path");
        assert_eq!(copy.parameters, standard.parameters);
        assert_eq!(
            copy.volume_binding_mode.as_deref(),
            Some("WaitForFirstConsumer")
        );
        assert_eq!(copy.reclaim_policy.as_deref(), Some("Retain"));
        assert!(
            copy.annotations().is_empty(),
            "never a second default class"
        );
        assert_eq!(
            copy.labels().get(LABEL_KEY).map(String::as_str),
            Some(LABEL_VALUE)
        );
    }

    #[test]
    fn the_note_puts_the_policy_next_to_the_documents_claim() {
        let note = reclaim_policy_note(&class(
            "metadata: {name: standard}\nprovisioner: rancher.io/local-path\n",
        ));
        assert!(
            note.starts_with("reclaim policy: StorageClass standard (provisioner rancher.io/local-path) has reclaimPolicy Delete; the source document says"),
            "{note}"
        );
        assert!(note.contains("typically Retain"), "{note}");
        assert!(
            note.ends_with("deletes its PV and the data on it"),
            "{note}"
        );
        let retain = reclaim_policy_note(&retain_copy(&class(
            "metadata: {name: standard}\nprovisioner: p\n",
        )));
        assert!(retain.ends_with("as the document advises"), "{retain}");
    }
}
