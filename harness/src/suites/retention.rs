//! PVC retention across scale-down and scale-up, and the PVs' reclaim policy: what
//! deleting the claims does to the data, and a restore from retained volumes.

use futures::FutureExt;

use crate::cluster::storage::ClassFacts;
use crate::scenario::{RETAIN_CLASS, ScaleVia, ScenarioError, TestEnv, reclaim_policy_note};
use crate::suites::{Case, Checks, Exclusive, Promise, skip};

const ROWS_PER_ORDINAL: u64 = 20;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "retention-5-3-5",
            Promise::PvcRetention,
            Exclusive::No,
            |env| kept_and_rebound(env).boxed(),
        ),
        Case::new(
            "retention-policy-when-scaled-delete",
            Promise::PvcRetention,
            Exclusive::No,
            |env| when_scaled_delete(env).boxed(),
        ),
        Case::new(
            "retention-policy-scaled-retain-deleted-retain",
            Promise::PvcRetention,
            Exclusive::No,
            |env| retention_policy(env, Policy::Retain, Policy::Retain).boxed(),
        ),
        Case::new(
            "retention-policy-scaled-retain-deleted-delete",
            Promise::PvcRetention,
            Exclusive::No,
            |env| retention_policy(env, Policy::Retain, Policy::Delete).boxed(),
        ),
        Case::new(
            "retention-policy-scaled-delete-deleted-retain",
            Promise::PvcRetention,
            Exclusive::No,
            |env| retention_policy(env, Policy::Delete, Policy::Retain).boxed(),
        ),
        Case::new(
            "retention-policy-scaled-delete-deleted-delete",
            Promise::PvcRetention,
            Exclusive::No,
            |env| retention_policy(env, Policy::Delete, Policy::Delete).boxed(),
        ),
        Case::new(
            "reclaim-retain-and-restore",
            Promise::ReclaimPolicy,
            Exclusive::No,
            |env| retain_and_restore(env).boxed(),
        ),
        Case::new(
            "reclaim-policy-of-the-run-class",
            Promise::ReclaimPolicy,
            Exclusive::No,
            |env| run_class_reclaim(env).boxed(),
        ),
    ]
}

/// MUST: scaling 5 -> 3 keeps the PVCs of ordinals 3 and 4 (same uid, same PV); scaling
/// back to 5 re-binds each ordinal to its old PVC, and every acknowledged row written to
/// any ordinal before the scale-down is read back intact.
async fn kept_and_rebound(env: &TestEnv) -> Checks {
    env.deploy(5).await?;
    env.write_everywhere(5, ROWS_PER_ORDINAL).await?;
    env.settle().await?;
    let before = env.history.mark("rows written; scale 5 -> 3");
    env.scale(5, 3, ScaleVia::ScaleSubresource).await?;
    env.settle().await?;
    let scaled_down = env.history.mark("scaled down; scale 3 -> 5");
    env.scale(3, 5, ScaleVia::ScaleSubresource).await?;
    env.read_everywhere(5).await?;
    env.settle().await?;
    let after = env.history.mark("scaled up and read back");
    let entries = env.entries();
    Ok(vec![
        checks::pvc_kept(&entries, before, scaled_down, &[3, 4]),
        checks::pvc_retention(&entries, before, after, &[0, 1, 2, 3, 4]),
        checks::no_lost_writes(&entries),
        checks::ordinal_identity(&entries, &env.identity_expect(5)),
    ])
}

/// MUST (where the server supports `persistentVolumeClaimRetentionPolicy`, GA in 1.32):
/// with `whenScaled: Delete`, scaling 5 -> 3 deletes the PVCs of ordinals 3 and 4 and
/// keeps the others.
async fn when_scaled_delete(env: &TestEnv) -> Checks {
    if let Err(reason) = env.supports_retention_policy().await {
        return Ok(skip(env, &reason));
    }
    env.deploy_with_retention(5, "Delete", "Retain").await?;
    env.settle().await?;
    let before = env.history.mark("scale 5 -> 3 with whenScaled: Delete");
    env.scale(5, 3, ScaleVia::ScaleSubresource).await?;
    env.wait_pvcs_absent(&[3, 4]).await?;
    env.settle().await?;
    let after = env.history.mark("scaled down");
    let entries = env.entries();
    Ok(vec![
        checks::pvc_deleted(&entries, before, after, &[3, 4]),
        checks::pvc_retention(&entries, before, after, &[0, 1, 2]),
    ])
}

/// A `persistentVolumeClaimRetentionPolicy` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    Retain,
    Delete,
}

/// Replicas of the retention-policy matrix.
const POLICY_REPLICAS: u32 = 3;
/// How long a claim its policy deletes may take to go (the garbage collector follows the
/// pod, then the PVC protection finalizer): on the timeout the check judges what was
/// observed.
const CLAIMS_GONE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// MUST (where the server supports `persistentVolumeClaimRetentionPolicy`, GA in 1.32), for
/// each of whenScaled and whenDeleted in {Retain, Delete}: scaling 3 -> 1 keeps the claims
/// of ordinals 1 and 2 (Retain) or deletes each only after its pod is gone (Delete); scaling
/// back to 3 re-binds the kept claims with every acknowledged row (Retain) or gives the
/// ordinals fresh, empty claims (Delete); deleting the StatefulSet keeps every claim
/// (whenDeleted Retain) or deletes each after its pod (whenDeleted Delete).
async fn retention_policy(env: &TestEnv, when_scaled: Policy, when_deleted: Policy) -> Checks {
    if let Err(reason) = env.supports_retention_policy().await {
        return Ok(skip(env, &reason));
    }
    let name = |p: Policy| format!("{p:?}");
    env.deploy_with_retention(
        POLICY_REPLICAS as i32,
        &name(when_scaled),
        &name(when_deleted),
    )
    .await?;
    env.write_everywhere(POLICY_REPLICAS, ROWS_PER_ORDINAL)
        .await?;
    env.settle().await?;
    let before = env.history.mark(format!(
        "rows written; scale 3 -> 1 (whenScaled {when_scaled:?}, whenDeleted {when_deleted:?})"
    ));
    env.scale(POLICY_REPLICAS as i32, 1, ScaleVia::ScaleSubresource)
        .await?;
    if when_scaled == Policy::Delete {
        claims_gone_or_judged(env, &[1, 2]).await?;
    }
    env.settle().await?;
    let scaled_down = env.history.mark("scaled down; scale 1 -> 3");
    env.scale(1, POLICY_REPLICAS as i32, ScaleVia::ScaleSubresource)
        .await?;
    env.read_everywhere(POLICY_REPLICAS).await?;
    env.settle().await?;
    let scaled_up = env
        .history
        .mark("scaled back up and read; delete the StatefulSet");
    env.delete_statefulset(POLICY_REPLICAS).await?;
    if when_deleted == Policy::Delete {
        claims_gone_or_judged(env, &[0, 1, 2]).await?;
    }
    env.settle().await?;
    let end = env.history.mark("StatefulSet deleted");
    let entries = env.entries();
    let all: Vec<u32> = (0..POLICY_REPLICAS).collect();
    let mut results = match when_scaled {
        Policy::Retain => vec![
            checks::pvc_kept(&entries, before, scaled_down, &[1, 2]),
            checks::pvc_retention(&entries, before, scaled_up, &all),
            checks::no_lost_writes(&entries),
        ],
        Policy::Delete => vec![
            checks::pvc_deleted(&entries, before, scaled_down, &[1, 2]),
            checks::pvc_kept(&entries, before, scaled_down, &[0]),
            checks::pvc_fresh(&entries, before, scaled_up, &[1, 2]),
        ],
    };
    results.push(match when_deleted {
        Policy::Retain => checks::pvc_kept(&entries, scaled_up, end, &all),
        Policy::Delete => checks::pvc_deleted_with_set(&entries, scaled_up, end, &all),
    });
    Ok(results)
}

/// Waits (bounded by [`CLAIMS_GONE_TIMEOUT`]) for the claims of `ordinals` to go; when
/// they do not, says so in the report and lets the checks judge what was observed.
async fn claims_gone_or_judged(env: &TestEnv, ordinals: &[u32]) -> Result<(), ScenarioError> {
    match tokio::time::timeout(CLAIMS_GONE_TIMEOUT, env.wait_pvcs_absent(ordinals)).await {
        Ok(gone) => gone,
        Err(_) => {
            env.note(format!(
                "the claims of ordinals {ordinals:?} were not gone within {} s",
                CLAIMS_GONE_TIMEOUT.as_secs()
            ));
            Ok(())
        }
    }
}

/// Replicas of the reclaim cases: two ordinals show each PV kept (or not) by its own claim.
const RECLAIM_REPLICAS: u32 = 2;

/// MUST: on a StorageClass with reclaimPolicy Retain (the run's class copied as
/// `sts-retain`, same provisioner), deleting the StatefulSet and its claims leaves each PV
/// Released and kept; new claims `<template>-<sts>-<ordinal>` bound to those PVs (claimRef
/// cleared, `spec.volumeName`) and the StatefulSet deployed again bring every acknowledged
/// row back in its ordinal. The class and the PVs, which outlive the namespace, are removed
/// at the end.
async fn retain_and_restore(env: &TestEnv) -> Checks {
    let class = env.run_storage_class().await?;
    env.note(reclaim_policy_note(&class));
    env.create_retain_class(&class).await?;
    let judged = retained_then_restored(env).await;
    let cleaned = env
        .remove_retained(&env.observed_volumes(), Some(RETAIN_CLASS))
        .await;
    let results = judged?;
    cleaned?;
    Ok(results)
}

async fn retained_then_restored(env: &TestEnv) -> Checks {
    let ordinals: Vec<u32> = (0..RECLAIM_REPLICAS).collect();
    let (before, released) = env
        .write_then_delete_claims(RECLAIM_REPLICAS, Some(RETAIN_CLASS), ROWS_PER_ORDINAL)
        .await?;
    let retained = checks::volumes_retained(&env.entries(), before, released, &ordinals);
    if !retained.is_pass() {
        env.note("the PVs were not retained, so no restore was attempted");
        return Ok(vec![retained]);
    }
    let volumes = env
        .claimed_volumes_at(before, RECLAIM_REPLICAS)
        .map_err(ScenarioError::Precondition)?;
    env.restore_from_volumes(&volumes, RETAIN_CLASS, RECLAIM_REPLICAS as i32)
        .await?;
    env.read_everywhere(RECLAIM_REPLICAS).await?;
    env.settle().await?;
    let after = env
        .history
        .mark("restored from the retained PVs and read back");
    let entries = env.entries();
    Ok(vec![
        retained,
        checks::volumes_restored(&entries, before, after, &ordinals),
        checks::rows_restored(&entries, before, released, &ordinals),
        checks::no_lost_writes(&entries),
    ])
}

/// MUST: on the run's own StorageClass, each PV follows its reclaimPolicy once its claim
/// is deleted (Delete: the PV is deleted; Retain: kept, Released). With Delete the report
/// states, as a finding about the cluster's configuration and not a failure, that the data
/// is gone and that the document's Retain advice would have kept it.
async fn run_class_reclaim(env: &TestEnv) -> Checks {
    let class = env.run_storage_class().await?;
    env.note(reclaim_policy_note(&class));
    let ordinals: Vec<u32> = (0..RECLAIM_REPLICAS).collect();
    let deleted = env
        .write_then_delete_claims(RECLAIM_REPLICAS, None, ROWS_PER_ORDINAL)
        .await;
    let kept = env.observed_volumes();
    let cleaned = env.remove_retained(&kept, None).await;
    let (before, after) = deleted?;
    cleaned?;
    let entries = env.entries();
    if ClassFacts::of(&class).reclaim_policy != "Retain" {
        env.note(checks::reclaim_finding(&entries, before, after, &ordinals));
    }
    Ok(vec![checks::reclaim_policy_followed(
        &entries, before, after, &ordinals,
    )])
}
