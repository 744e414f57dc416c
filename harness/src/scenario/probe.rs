//! Storage probing: what storage the StatefulSet's claims got (StorageClass, node-bound
//! or not), read from the API at the moment of the probe (never from what the test has
//! recorded), so a test knows which node-loss case applies.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams};

use checks::history::{Change, Event, History, Snapshot};

use crate::cluster::storage::StorageFacts;
use crate::drive::observe::{pv_state, pvc_state};

use super::{ScenarioError, TestEnv};

impl TestEnv {
    /// The storage the StatefulSet's claims got, as the API describes them now: each claim,
    /// its PV (where it is pinned) and their StorageClass. A PV or class that cannot be read
    /// is left out and the facts say so ("unknown", never "not node-bound"); a read the API
    /// server forbids is an error: the report must name the storage it certifies on, and a
    /// missing permission is the user's to fix.
    pub async fn probe_storage(&self) -> Result<StorageFacts, ScenarioError> {
        let prefix = format!("{}-", self.identity_expect(0).claim_template);
        let claims = self
            .pvcs()
            .list(&ListParams::default())
            .await
            .map_err(ScenarioError::api("list", "PersistentVolumeClaims"))?;
        let mut events = Vec::new();
        for claim in claims.items.iter().filter(|c| {
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(&prefix))
        }) {
            events.push(applied(Snapshot::PersistentVolumeClaim(pvc_state(claim))));
            if let Some(pv) = self.bound_volume(claim).await? {
                events.push(applied(Snapshot::PersistentVolume(pv_state(&pv))));
            }
        }
        let now = History::from_events(events);
        let named = StorageFacts::observed(&now, &prefix, None);
        let class = match named.classes.first() {
            Some(name) => self.storage_class(name).await?,
            None => None,
        };
        Ok(StorageFacts::observed(&now, &prefix, class.as_ref()))
    }

    /// The PV bound to `claim`, if it is bound and the PV can be read.
    async fn bound_volume(
        &self,
        claim: &PersistentVolumeClaim,
    ) -> Result<Option<PersistentVolume>, ScenarioError> {
        let Some(name) = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) else {
            return Ok(None);
        };
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        read_unless_forbidden(api.get_opt(name).await, "PersistentVolume", name).map_err(
            ScenarioError::api("read", format!("PersistentVolume {name}")),
        )
    }

    async fn storage_class(&self, name: &str) -> Result<Option<StorageClass>, ScenarioError> {
        let api: Api<StorageClass> = Api::all(self.client.clone());
        read_unless_forbidden(api.get_opt(name).await, "StorageClass", name)
            .map_err(ScenarioError::api("read", format!("StorageClass {name}")))
    }
}

fn applied(object: Snapshot) -> Event {
    Event::Object {
        change: Change::Applied,
        object,
    }
}

/// The object, or None when it is gone or unreadable for a reason other than a refusal
/// (logged: the facts then say what is unknown); a 403 stays an error.
fn read_unless_forbidden<K>(
    read: Result<Option<K>, kube::Error>,
    kind: &str,
    name: &str,
) -> Result<Option<K>, kube::Error> {
    match read {
        Ok(found) => Ok(found),
        Err(kube::Error::Api(status)) if status.code == 403 => Err(kube::Error::Api(status)),
        Err(e) => {
            tracing::warn!(kind, name, error = %e, "cannot read it for the storage probe");
            Ok(None)
        }
    }
}
