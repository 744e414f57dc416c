//! What storage the StatefulSet's claims got, probed rather than assumed: the
//! StorageClass (provisioner, binding mode, reclaim policy) and whether each claim's PV is
//! pinned to one node. On node-bound storage (kind's local-path, kube-sim) a pod whose
//! node died cannot move, so node failure is survived by restarting the node; the report
//! says which case a run was.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams};

use checks::history::Entry;
use checks::world::{Pinning, World};

/// The annotation that marks the cluster's default StorageClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

pub fn is_default_class(class: &StorageClass) -> bool {
    class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// The cluster's default StorageClass, if it has one.
pub async fn default_class(api: &Api<StorageClass>) -> Result<Option<StorageClass>, kube::Error> {
    let classes = api.list(&ListParams::default()).await?;
    Ok(classes.items.into_iter().find(is_default_class))
}

/// The storage behind one test's claims, as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageFacts {
    /// The claims' StorageClass names (one, normally).
    pub classes: Vec<String>,
    /// `provisioner`, `volumeBindingMode`, `reclaimPolicy` of the first class, when it
    /// could be read.
    pub class: Option<ClassFacts>,
    /// Each bound claim: its PV, and where that PV is pinned, if the PV was observed.
    pub claims: BTreeMap<String, BoundVolume>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassFacts {
    pub provisioner: String,
    pub binding_mode: String,
    pub reclaim_policy: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundVolume {
    pub pv: String,
    pub pinning: PvPinning,
}

/// Where a bound claim's PV lives. A PV that was never observed is not evidence of anything:
/// it must not send the pod-moves case onto node-bound storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PvPinning {
    Node(String),
    Unpinned,
    Unobserved,
}

impl ClassFacts {
    /// The API's defaults apply to fields the class leaves out.
    pub fn of(class: &StorageClass) -> ClassFacts {
        ClassFacts {
            provisioner: class.provisioner.clone(),
            binding_mode: class
                .volume_binding_mode
                .clone()
                .unwrap_or_else(|| "Immediate".into()),
            reclaim_policy: class
                .reclaim_policy
                .clone()
                .unwrap_or_else(|| "Delete".into()),
        }
    }
}

impl StorageFacts {
    /// The live claims of the history whose names start with `claim_prefix`, with their
    /// PVs; `class` is the claims' StorageClass as read from the API, if it was.
    pub fn observed(entries: &[Entry], claim_prefix: &str, class: Option<&StorageClass>) -> Self {
        let world = World::last(entries);
        let mut classes = Vec::new();
        let mut claims = BTreeMap::new();
        for (name, seen) in world
            .pvcs
            .iter()
            .filter(|(n, _)| n.starts_with(claim_prefix))
        {
            let Some(pvc) = seen.live() else { continue };
            if let Some(c) = pvc.storage_class.as_ref().filter(|c| !classes.contains(*c)) {
                classes.push(c.clone());
            }
            let Some(pv) = pvc.volume_name.as_ref() else {
                continue;
            };
            let pinning = match world.claim_pinning(name) {
                Some(Pinning::Node(node)) => PvPinning::Node(node.to_owned()),
                Some(Pinning::Unpinned) => PvPinning::Unpinned,
                None => PvPinning::Unobserved,
            };
            claims.insert(
                name.clone(),
                BoundVolume {
                    pv: pv.clone(),
                    pinning,
                },
            );
        }
        StorageFacts {
            classes,
            class: class.map(ClassFacts::of),
            claims,
        }
    }

    /// Whether the claim's PV is pinned to one node; None when the claim or its PV was
    /// not observed.
    pub fn node_bound(&self, claim: &str) -> Option<bool> {
        match self.claims.get(claim)?.pinning {
            PvPinning::Node(_) => Some(true),
            PvPinning::Unpinned => Some(false),
            PvPinning::Unobserved => None,
        }
    }
}

impl fmt::Display for StorageFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let classes = if self.classes.is_empty() {
            "no StorageClass named".to_string()
        } else {
            format!("StorageClass {}", self.classes.join(", "))
        };
        write!(f, "storage: {classes}")?;
        if let Some(c) = &self.class {
            write!(
                f,
                " (provisioner {}, volumeBindingMode {}, reclaimPolicy {})",
                c.provisioner, c.binding_mode, c.reclaim_policy
            )?;
        }
        let count =
            |p: fn(&PvPinning) -> bool| self.claims.values().filter(|v| p(&v.pinning)).count();
        let unobserved = count(|p| *p == PvPinning::Unobserved);
        let pinned = count(|p| matches!(p, PvPinning::Node(_)));
        if unobserved > 0 {
            return write!(
                f,
                "; {unobserved} of {} bound PVs were never observed, so whether the storage is node-bound is unknown",
                self.claims.len()
            );
        }
        match (self.claims.len(), pinned) {
            (0, _) => write!(f, "; no bound claim observed"),
            (n, p) if p == n => write!(
                f,
                "; all {n} bound PVs are pinned to one node each (node-bound: a pod cannot leave its node)"
            ),
            (n, 0) => write!(f, "; none of the {n} bound PVs is pinned to a node"),
            (n, p) => write!(f, "; {p} of {n} bound PVs are pinned to a node"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checks::history::History;
    use checks::testkit::*;

    fn class(yaml: &str) -> StorageClass {
        match serde_yaml::from_str(yaml) {
            Ok(c) => c,
            Err(e) => panic!("bad test StorageClass: {e}"),
        }
    }

    fn local_path() -> StorageClass {
        class(
            "metadata: {name: standard}\nprovisioner: rancher.io/local-path\n\
             volumeBindingMode: WaitForFirstConsumer\nreclaimPolicy: Delete\n",
        )
    }

    #[test]
    fn node_bound_claims_are_reported_as_such() {
        let entries = History::from_events(vec![
            applied(pvc(&claim(0), "c0", "pv0")),
            applied(pv("pv0", "c0")),
            applied(pvc(&claim(1), "c1", "pv1")),
            applied(pv("pv1", "c1")),
        ]);
        let facts = StorageFacts::observed(&entries, TEMPLATE, Some(&local_path()));
        assert_eq!(facts.node_bound(&claim(1)), Some(true));
        assert_eq!(
            facts.to_string(),
            "storage: StorageClass standard (provisioner rancher.io/local-path, volumeBindingMode \
             WaitForFirstConsumer, reclaimPolicy Delete); all 2 bound PVs are pinned to one node \
             each (node-bound: a pod cannot leave its node)"
        );
    }

    #[test]
    fn network_storage_is_not_node_bound() {
        let mut remote = pv("pv0", "c0");
        remote.node = None;
        let entries =
            History::from_events(vec![applied(pvc(&claim(0), "c0", "pv0")), applied(remote)]);
        let facts = StorageFacts::observed(
            &entries,
            TEMPLATE,
            Some(&class(
                "metadata: {name: standard}\nprovisioner: ebs.csi.aws.com\n",
            )),
        );
        assert_eq!(facts.node_bound(&claim(0)), Some(false));
        let text = facts.to_string();
        assert!(
            text.contains("volumeBindingMode Immediate, reclaimPolicy Delete"),
            "{text}"
        );
        assert!(
            text.ends_with("none of the 1 bound PVs is pinned to a node"),
            "{text}"
        );
    }

    #[test]
    fn a_pv_never_observed_is_not_taken_for_network_storage() {
        let entries = History::from_events(vec![applied(pvc(&claim(0), "c0", "pv0"))]);
        let facts = StorageFacts::observed(&entries, TEMPLATE, Some(&local_path()));
        assert_eq!(facts.node_bound(&claim(0)), None);
        let text = facts.to_string();
        assert!(
            text.ends_with("whether the storage is node-bound is unknown"),
            "{text}"
        );
    }

    #[test]
    fn deleted_and_foreign_claims_do_not_count() {
        let entries = History::from_events(vec![
            applied(pvc(&claim(0), "c0", "pv0")),
            deleted(pvc(&claim(0), "c0", "pv0")),
            applied(pvc("other-claim", "o", "pvo")),
        ]);
        let facts = StorageFacts::observed(&entries, TEMPLATE, None);
        assert_eq!(facts.node_bound(&claim(0)), None);
        assert_eq!(
            facts.to_string(),
            "storage: no StorageClass named; no bound claim observed"
        );
    }

    #[test]
    fn default_class_is_found_by_its_annotation() {
        let mut class = StorageClass::default();
        assert!(!is_default_class(&class));
        class.metadata.annotations = Some(
            [(DEFAULT_CLASS_ANNOTATION.to_owned(), "true".to_owned())]
                .into_iter()
                .collect(),
        );
        assert!(is_default_class(&class));
    }
}
