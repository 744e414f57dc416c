//! Server-side apply of loaded manifests into a namespace.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::info;

use crate::cluster::manifests::Object;

/// The field manager of every apply the harness makes.
pub const FIELD_MANAGER: &str = "sts-conformance";

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("failed to apply {kind} {namespace}/{name}")]
    Apply {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Server-side applies (force, field manager [`FIELD_MANAGER`]) each object into
/// `namespace`, in order. The objects' own `metadata.namespace` is replaced.
pub async fn apply_objects(
    client: &Client,
    namespace: &str,
    objects: &[Object],
) -> Result<(), ApplyError> {
    for object in objects {
        let mut object = object.clone();
        object.set_namespace(namespace);
        match &object {
            Object::Service(o) => apply_one(client, namespace, o).await,
            Object::StatefulSet(o) => apply_one(client, namespace, o).await,
        }
        .map_err(|source| ApplyError::Apply {
            kind: object.kind(),
            namespace: namespace.to_owned(),
            name: object.name().to_owned(),
            source,
        })?;
        info!(namespace, object = %object.describe(), "applied");
    }
    Ok(())
}

/// The parameters of every apply: our field manager, taking over conflicting fields.
pub fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

async fn apply_one<K>(client: &Client, namespace: &str, object: &K) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.patch(&name, &apply_params(), &Patch::Apply(object))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_is_forced_with_our_field_manager() {
        let params = apply_params();
        assert_eq!(params.field_manager.as_deref(), Some(FIELD_MANAGER));
        assert!(params.force);
    }
}
