//! Stable, unique ordinal identity.

use rstest::rstest;
use tracing_test::traced_test;

use crate::common::{self, Exclusive};

/// MUST: a StatefulSet with N replicas runs pods `<sts>-0 .. <sts>-N-1`, each with
/// hostname = pod name and subdomain = the governing headless Service, the
/// `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index` labels, its own
/// bound PVC `<template>-<sts>-<ordinal>` (1Gi, ReadWriteOnce), and a DNS endpoint
/// (EndpointSlice `hostname`) per ready ordinal.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn documented_statefulset_has_stable_ordinal_identity() -> anyhow::Result<()> {
    common::run("identity", Exclusive::No, async |env| {
        env.deploy(3).await?;
        env.settle().await?;
        env.note(env.probe_storage().await?.to_string());
        let results = vec![checks::ordinal_identity(
            &env.entries(),
            &env.identity_expect(3),
        )];
        Ok(results)
    })
    .await?;
    assert!(
        logs_contain("step seq ") && logs_contain(": apply Service/mysql, StatefulSet/mysql"),
        "each step is logged as it happens"
    );
    Ok(())
}
