//! Template updates (RollingUpdate, partitions, OnDelete), Parallel pod management and the
//! start ordinal.

use checks::history::Entry;
use checks::{RolloutExpect, Strategy};
use futures::FutureExt;

use crate::scenario::{ScaleVia, TestEnv, UpdateStrategy, parallel, start_ordinal};
use crate::suites::{Case, Checks, Exclusive, Promise, skip};

const REPLICAS: u32 = 3;
const ROWS_PER_ORDINAL: u64 = 10;
/// Acknowledged writes the writer must make before the rollout and after it.
const WRITER_ACKS: u64 = 5;
/// The ordinal the writer writes to: the last one a rolling update replaces.
const WRITER: u32 = 0;
/// The ordinal the OnDelete case deletes (under a writer).
const ON_DELETE_VICTIM: u32 = 1;
/// The first ordinal of the start-ordinal case.
const START: u32 = 3;

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "update-rolling",
            Promise::OrderedUpdate,
            Exclusive::No,
            |env| rolling_update(env).boxed(),
        ),
        Case::new(
            "update-partitioned",
            Promise::OrderedUpdate,
            Exclusive::No,
            |env| partitioned_update(env).boxed(),
        ),
        Case::new(
            "update-on-delete",
            Promise::OrderedUpdate,
            Exclusive::No,
            |env| on_delete(env).boxed(),
        ),
        Case::new(
            "parallel-scale",
            Promise::ParallelManagement,
            Exclusive::No,
            |env| parallel_management(env).boxed(),
        ),
        Case::new(
            "start-ordinal",
            Promise::StartOrdinal,
            Exclusive::No,
            |env| numbered_from_start(env).boxed(),
        ),
    ]
}

fn expect(env: &TestEnv, strategy: Strategy) -> RolloutExpect {
    RolloutExpect::new(&env.statefulset_name(), REPLICAS, strategy)
}

/// The entries up to and including `seq`.
fn upto(entries: &[Entry], seq: u64) -> Vec<Entry> {
    entries
        .iter()
        .take_while(|e| e.seq <= seq)
        .cloned()
        .collect()
}

/// MUST: with updateStrategy RollingUpdate, a pod template change replaces the pods one at
/// a time from the highest ordinal to the lowest, each replacement Running and Ready before
/// the next pod is deleted; at the end `currentRevision == updateRevision`, both name
/// ControllerRevisions of the set (the update revision the highest), every pod runs the
/// update revision, never two pods of one name serve at once and a replaced pod's
/// container stops serving, and every row MySQL acknowledged (including those of a writer
/// running through the rollout) is read back intact.
async fn rolling_update(env: &TestEnv) -> Checks {
    env.deploy(REPLICAS as i32).await?;
    env.write_everywhere(REPLICAS, ROWS_PER_ORDINAL).await?;
    env.settle().await?;
    let mut writer = env.workload.spawn_writer(WRITER);
    writer.wait_for_more_acks(WRITER_ACKS).await?;
    let start = env.history.mark("rolling update of the pod template");
    env.change_template("1").await?;
    env.wait_rolled_out(REPLICAS as i32, 0).await?;
    let after = writer.wait_for_more_acks(WRITER_ACKS).await.map(drop);
    let summary = writer.stop().await;
    env.note(format!(
        "the writer running through the rollout had {summary}"
    ));
    after?;
    env.read_everywhere(REPLICAS).await?;
    env.settle().await?;
    let end = env.history.mark("rolled out and read back");
    let entries = env.entries();
    let rolling = expect(env, Strategy::RollingUpdate);
    Ok(vec![
        checks::rollout(&entries, (start, end), &rolling),
        checks::revisions_consistent(&entries, end, &rolling),
        checks::at_most_one(&entries, (start, end)),
        checks::deleted_pods_stop_serving(&entries, (start, end)),
        checks::no_lost_writes(&entries),
        checks::ordinal_identity(&entries, &env.identity_expect(REPLICAS)),
    ])
}

/// MUST: with a RollingUpdate partition of 2 (of 3 replicas) only ordinal 2 is updated and
/// ordinals 0 and 1 keep their revision (mysql-0, deleted meanwhile, is recreated on the
/// current revision); lowering the partition to 0 continues the rollout
/// (1, then 0), in order, to `currentRevision == updateRevision`; a writer on mysql-0
/// runs through it all, never two pods of one name serve at once, and every acknowledged
/// row is intact.
async fn partitioned_update(env: &TestEnv) -> Checks {
    env.deploy(REPLICAS as i32).await?;
    env.write_everywhere(REPLICAS, ROWS_PER_ORDINAL).await?;
    env.set_update_strategy(UpdateStrategy::RollingUpdate { partition: 2 })
        .await?;
    env.settle().await?;
    // A writer runs through the deletion of mysql-0 and its replacements.
    let mut writer = env.workload.spawn_writer(WRITER);
    writer.wait_for_more_acks(WRITER_ACKS).await?;
    let start = env.history.mark("rolling update with partition 2");
    env.change_template("1").await?;
    env.wait_rolled_out(REPLICAS as i32, 2).await?;
    // A pod deleted below the partition comes back on the current (old) revision.
    env.delete_pod(0, None).await?;
    env.wait_rolled_out(REPLICAS as i32, 2).await?;
    env.settle().await?;
    let partial = env
        .history
        .mark("rolled out down to the partition, mysql-0 recreated below it");
    env.set_update_strategy(UpdateStrategy::RollingUpdate { partition: 0 })
        .await?;
    env.wait_rolled_out(REPLICAS as i32, 0).await?;
    let after = writer.wait_for_more_acks(WRITER_ACKS).await.map(drop);
    let summary = writer.stop().await;
    env.note(format!(
        "the writer running through the partitioned rollout had {summary}"
    ));
    after?;
    env.read_everywhere(REPLICAS).await?;
    env.settle().await?;
    let end = env
        .history
        .mark("partition lowered to 0, rolled out, read back");
    let entries = env.entries();
    let rolling = expect(env, Strategy::RollingUpdate);
    Ok(vec![
        checks::rollout(&upto(&entries, partial), (start, partial), &rolling),
        checks::revisions_consistent(&entries, partial, &rolling),
        checks::rollout(&entries, (start, end), &rolling),
        checks::revisions_consistent(&entries, end, &rolling),
        checks::at_most_one(&entries, (start, end)),
        checks::deleted_pods_stop_serving(&entries, (start, end)),
        checks::no_lost_writes(&entries),
        checks::ordinal_identity(&entries, &env.identity_expect(REPLICAS)),
    ])
}

/// MUST: with updateStrategy OnDelete, a pod template change replaces no pod by itself,
/// not even [`checks::ON_DELETE_DWELL`] later: the pods nobody deleted keep their uid and
/// template; a pod deleted afterwards (under a writer) is recreated from the new template
/// (a new uid carrying the change), never two pods of one name serving at once.
async fn on_delete(env: &TestEnv) -> Checks {
    env.deploy(REPLICAS as i32).await?;
    env.write_everywhere(REPLICAS, ROWS_PER_ORDINAL).await?;
    env.set_update_strategy(UpdateStrategy::OnDelete).await?;
    env.settle().await?;
    let mut writer = env.workload.spawn_writer(ON_DELETE_VICTIM);
    writer.wait_for_more_acks(WRITER_ACKS).await?;
    let start = env.history.mark("OnDelete update of the pod template");
    env.change_template("1").await?;
    env.wait_update_pending().await?;
    env.delete_pod(ON_DELETE_VICTIM, None).await?;
    env.wait_ready(REPLICAS as i32).await?;
    let after = writer.wait_for_more_acks(WRITER_ACKS).await.map(drop);
    let summary = writer.stop().await;
    env.note(format!(
        "the writer running through the deletion of {} had {summary}",
        env.pod_name(ON_DELETE_VICTIM)
    ));
    after?;
    let untouched: Vec<u32> = (0..REPLICAS).filter(|o| *o != ON_DELETE_VICTIM).collect();
    let changed = env
        .watch_untouched(&untouched, checks::ON_DELETE_DWELL)
        .await?;
    env.note(match changed {
        Some(change) => format!("an untouched pod changed: {change}"),
        None => format!(
            "the pods nobody deleted stayed untouched for {} s",
            checks::ON_DELETE_DWELL.as_secs()
        ),
    });
    env.read_everywhere(REPLICAS).await?;
    env.settle().await?;
    let end = env
        .history
        .mark("mysql-1 deleted and recreated, the others watched untouched");
    let entries = env.entries();
    let on_delete = expect(env, Strategy::OnDelete);
    Ok(vec![
        checks::rollout(&entries, (start, end), &on_delete),
        checks::revisions_consistent(&entries, end, &on_delete),
        checks::at_most_one(&entries, (start, end)),
        checks::deleted_pods_stop_serving(&entries, (start, end)),
        checks::no_lost_writes(&entries),
        checks::ordinal_identity(&entries, &env.identity_expect(REPLICAS)),
    ])
}

/// MUST: with podManagementPolicy Parallel, scaling 0 -> 3 -> 0 may create and delete the
/// pods all at once (not an ordering failure), yet the pods keep their ordinal names and
/// claims, the claims outlive the scale-down, and the rows written before it are read back
/// once the ordinals return.
async fn parallel_management(env: &TestEnv) -> Checks {
    env.deploy_with(0, parallel).await?;
    env.settle().await?;
    let start = env.history.mark("Parallel: scale 0 -> 3 -> 0");
    env.scale(0, REPLICAS as i32, ScaleVia::ScaleSubresource)
        .await?;
    env.write_everywhere(REPLICAS, ROWS_PER_ORDINAL).await?;
    env.settle().await?;
    let up = env.history.mark("scaled up, rows written");
    env.scale(REPLICAS as i32, 0, ScaleVia::ScaleSubresource)
        .await?;
    env.settle().await?;
    let end = env.history.mark("scaled down");
    env.scale(0, REPLICAS as i32, ScaleVia::ScaleSubresource)
        .await?;
    env.read_everywhere(REPLICAS).await?;
    env.settle().await?;
    let entries = env.entries();
    let name = env.statefulset_name();
    let ordinals: Vec<u32> = (0..REPLICAS).collect();
    Ok(vec![
        checks::parallel_scale(&entries, (start, end), &name, 0),
        checks::ordinal_identity(&upto(&entries, up), &env.identity_expect(REPLICAS)),
        checks::pvc_kept(&entries, up, end, &ordinals),
        checks::no_lost_writes(&entries),
    ])
}

/// MUST: with `spec.ordinals.start` 3 (GA in 1.31), the pods are `mysql-3..` with the
/// claims of their ordinals, scale-up creates ordinal i only after i-1 is Ready starting
/// from 3, and scale-down removes the highest ordinal first. Skipped on older servers.
async fn numbered_from_start(env: &TestEnv) -> Checks {
    if let Err(reason) = env.supports_start_ordinal().await {
        return Ok(skip(env, &reason));
    }
    env.deploy_with(2, start_ordinal(START as i32)).await?;
    env.settle().await?;
    let start = env.history.mark("start ordinal 3: scale 2 -> 3");
    env.scale(2, 3, ScaleVia::ScaleSubresource).await?;
    env.settle().await?;
    let up = env.history.mark("scaled up: scale 3 -> 1");
    env.scale(3, 1, ScaleVia::ScaleSubresource).await?;
    env.settle().await?;
    let end = env.history.mark("scaled down");
    let entries = env.entries();
    let name = env.statefulset_name();
    let mut three = env.identity_expect(3);
    three.start = START;
    let mut one = env.identity_expect(1);
    one.start = START;
    Ok(vec![
        checks::ordinal_identity(&upto(&entries, up), &three),
        checks::ordered_scale_up_from(&entries, (start, up), &name, START),
        checks::reverse_scale_down_from(&entries, (up, end), &name, START),
        checks::pvc_kept(&entries, up, end, &[START + 1, START + 2]),
        checks::ordinal_identity(&entries, &one),
    ])
}
