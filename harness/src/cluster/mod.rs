//! Getting a cluster and putting the documented objects into it: targets (kind, an existing
//! cluster through a kubeconfig, the kube-sim process), namespaces, manifests, apply and the
//! storage probe. Depends on `support`, on `drive::chaos` (each target brings its node
//! chaos) and `drive::conditions` (namespace dumps describe pods).

pub mod apply;
pub mod kind;
pub mod kind_setup;
pub mod manifests;
pub mod namespace;
pub mod preflight;
pub mod sim;
pub mod storage;
pub mod target;
