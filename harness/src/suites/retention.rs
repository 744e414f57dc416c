//! PVC retention across scale-down and scale-up.

use futures::FutureExt;

use crate::scenario::{ScaleVia, TestEnv};
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
