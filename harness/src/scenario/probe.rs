//! Storage probing: what storage the StatefulSet's claims got (StorageClass, node-bound
//! or not), read from the History and the API, so a test knows which node-loss case
//! applies.

use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::Api;

use crate::cluster::storage::StorageFacts;

use super::{ScenarioError, TestEnv};

impl TestEnv {
    /// The storage the StatefulSet's claims got, as observed so far, with their
    /// StorageClass read from the API (left out, and said so, if it cannot be read). A read
    /// the API server forbids is an error: the report must name the class it certifies
    /// on, and a missing permission is the user's to fix.
    pub async fn probe_storage(&self) -> Result<StorageFacts, ScenarioError> {
        let prefix = format!("{}-", self.identity_expect(0).claim_template);
        let entries = self.entries();
        let named = StorageFacts::observed(&entries, &prefix, None);
        let class = match named.classes.first() {
            Some(name) => {
                let api: Api<StorageClass> = Api::all(self.client.clone());
                match api.get_opt(name).await {
                    Ok(class) => class,
                    Err(kube::Error::Api(status)) if status.code == 403 => {
                        return Err(ScenarioError::Api {
                            action: "read",
                            object: format!("StorageClass {name}"),
                            source: kube::Error::Api(status),
                        });
                    }
                    Err(e) => {
                        tracing::warn!(class = %name, error = %e, "cannot read the StorageClass");
                        None
                    }
                }
            }
            None => None,
        };
        Ok(StorageFacts::observed(&entries, &prefix, class.as_ref()))
    }
}
