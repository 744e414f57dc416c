//! Gathers what a run certifies (`run.json`): the server's version and platform, the node
//! count, the StorageClass the claims ask for and its provisioner, the harness version,
//! the digest of the manifests applied, and the catalogue's promises. A fact the API does
//! not give is recorded with the reason, never guessed.

use std::path::Path;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams};
use sha2::{Digest, Sha256};

use crate::cluster::manifests::MysqlManifests;
use crate::cluster::storage::{ClassFacts, default_class};
use crate::cluster::target::Cluster;
use crate::report::certification::{CaseFacts, CertificationError, RunFacts, StorageFacts};
use crate::suites::Case;
use crate::support::errors;
use crate::support::settings::repo_root;

/// Gathers the facts of a run of `cases` on `cluster` and writes them to `dir`.
pub async fn record(
    cluster: &Cluster,
    cases: &[Case],
    dir: &Path,
) -> Result<RunFacts, CertificationError> {
    let facts = gather(cluster, cases).await;
    facts.write(dir)?;
    Ok(facts)
}

async fn gather(cluster: &Cluster, cases: &[Case]) -> RunFacts {
    let manifests = cluster
        .manifest_overrides()
        .map_err(|e| errors::chain(&e))
        .and_then(|o| {
            MysqlManifests::load_documented(&repo_root(), &o).map_err(|e| errors::chain(&e))
        });
    let client = cluster.client().await.map_err(|e| errors::chain(&e));
    let (server_version, platform) = match &client {
        Ok(client) => match client.apiserver_version().await {
            Ok(v) => (v.git_version, v.platform),
            Err(e) => (format!("unreadable ({e})"), "unknown".into()),
        },
        Err(why) => (format!("unreadable ({why})"), "unknown".into()),
    };
    let nodes = match &client {
        Ok(client) => count_nodes(client).await,
        Err(why) => Err(why.clone()),
    };
    let storage = match (&client, &manifests) {
        (Ok(client), Ok(m)) => storage(client, m.claim_template_spec().storage_class_name).await,
        (Err(why), _) | (_, Err(why)) => StorageFacts {
            unknown_because: Some(why.clone()),
            ..StorageFacts::default()
        },
    };
    RunFacts {
        target: cluster.description(),
        server_version,
        platform,
        nodes,
        storage,
        harness_version: env!("CARGO_PKG_VERSION").to_owned(),
        manifest_digest: match &manifests {
            Ok(m) => digest(m),
            Err(why) => format!("unknown ({why})"),
        },
        cases: cases
            .iter()
            .map(|c| CaseFacts {
                name: c.name.clone(),
                promise: c.promise.title().to_owned(),
            })
            .collect(),
    }
}

async fn count_nodes(client: &kube::Client) -> Result<usize, String> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .list_metadata(&ListParams::default())
        .await
        .map(|list| list.items.len())
        .map_err(|e| format!("cannot list nodes: {e}"))
}

/// The named class, else the cluster's default class, as the API describes it.
async fn storage(client: &kube::Client, named: Option<String>) -> StorageFacts {
    let api: Api<StorageClass> = Api::all(client.clone());
    let class = match &named {
        Some(name) => api.get_opt(name).await.map_err(|e| e.to_string()),
        None => default_class(&api).await.map_err(|e| e.to_string()),
    };
    match class {
        Ok(Some(class)) => {
            let facts = ClassFacts::of(&class);
            StorageFacts {
                class: class.metadata.name.clone(),
                provisioner: Some(facts.provisioner),
                reclaim_policy: Some(facts.reclaim_policy),
                binding_mode: Some(facts.binding_mode),
                unknown_because: None,
            }
        }
        Ok(None) => StorageFacts {
            unknown_because: Some(match &named {
                Some(name) => format!("StorageClass {name} does not exist"),
                None => "the cluster has no default StorageClass".to_owned(),
            }),
            class: named,
            ..StorageFacts::default()
        },
        Err(why) => StorageFacts {
            unknown_because: Some(format!("cannot read StorageClasses: {why}")),
            class: named,
            ..StorageFacts::default()
        },
    }
}

/// `sha256:<hex>` of the objects as applied, in apply order, one YAML document each.
fn digest(manifests: &MysqlManifests) -> String {
    let mut hasher = Sha256::new();
    for object in manifests.objects() {
        match object.to_yaml() {
            Ok(yaml) => hasher.update(yaml.as_bytes()),
            Err(e) => return format!("unknown ({})", errors::chain(&e)),
        }
        hasher.update(b"---\n");
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::manifests::Overrides;

    fn documented(overrides: &Overrides) -> MysqlManifests {
        MysqlManifests::load_documented(&repo_root(), overrides).expect("documented manifests")
    }

    #[test]
    fn digest_is_stable_and_changes_with_the_manifests() {
        let plain = documented(&Overrides::default());
        assert_eq!(digest(&plain), digest(&plain));
        assert!(digest(&plain).starts_with("sha256:"));
        assert_eq!(digest(&plain).len(), "sha256:".len() + 64);
        let bigger = documented(&Overrides {
            storage_size: Some("2Gi".into()),
            ..Overrides::default()
        });
        assert_ne!(digest(&plain), digest(&bigger));
    }
}
