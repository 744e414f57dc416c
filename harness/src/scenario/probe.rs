//! Storage probing: what storage the StatefulSet's claims got (StorageClass, node-bound
//! or not), read from the History and the API, so a test knows which node-loss case
//! applies.

use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::Api;

use crate::cluster::storage::StorageFacts;

use super::TestEnv;

impl TestEnv {
    /// The storage the StatefulSet's claims got, as observed so far, with their
    /// StorageClass read from the API (left out, and said so, if it cannot be read).
    pub async fn probe_storage(&self) -> StorageFacts {
        let prefix = format!("{}-", self.identity_expect(0).claim_template);
        let entries = self.entries();
        let named = StorageFacts::observed(&entries, &prefix, None);
        let class = match named.classes.first() {
            Some(name) => {
                let api: Api<StorageClass> = Api::all(self.client.clone());
                match api.get_opt(name).await {
                    Ok(class) => class,
                    Err(e) => {
                        tracing::warn!(class = %name, error = %e, "cannot read the StorageClass");
                        None
                    }
                }
            }
            None => None,
        };
        StorageFacts::observed(&entries, &prefix, class.as_ref())
    }
}
