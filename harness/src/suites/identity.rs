//! Stable, unique ordinal identity.

use futures::FutureExt;

use crate::scenario::TestEnv;
use crate::suites::{Case, Checks, Exclusive, Promise};

pub(super) fn cases() -> Vec<Case> {
    vec![Case::new(
        "identity",
        Promise::OrdinalIdentity,
        Exclusive::No,
        |env| stable_ordinal_identity(env).boxed(),
    )]
}

/// MUST: a StatefulSet with N replicas runs pods `<sts>-0 .. <sts>-N-1`, each with
/// hostname = pod name and subdomain = the governing headless Service, the
/// `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index` labels, its own
/// bound PVC `<template>-<sts>-<ordinal>` (1Gi, ReadWriteOnce), and a DNS endpoint
/// (EndpointSlice `hostname`) per ready ordinal; each ready ordinal's name
/// `<pod>.<service>.<namespace>.svc.cluster.local` resolves, from inside a pod of the set,
/// to exactly that pod's IP.
async fn stable_ordinal_identity(env: &TestEnv) -> Checks {
    env.deploy(3).await?;
    env.settle().await?;
    env.note(env.probe_storage().await?.to_string());
    env.resolve_names_in_cluster(3).await?;
    env.settle().await?;
    let entries = env.entries();
    let expect = env.identity_expect(3);
    Ok(vec![
        checks::ordinal_identity(&entries, &expect),
        checks::dns_resolution(&entries, &expect),
    ])
}
