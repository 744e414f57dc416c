//! Data survival under pod deletion, container crashes and node failure.

use checks::{self, Recreation};
use futures::FutureExt;

use crate::drive::workload::Writer;
use crate::scenario::{KilledNode, TestEnv};
use crate::suites::{Case, Checks, Exclusive, Promise, SuiteError, skip};

const REPLICAS: u32 = 3;
const ROWS_PER_ORDINAL: u64 = 20;
/// Acknowledged writes the concurrent writer must make before the fault and after recovery.
const WRITER_ACKS: u64 = 5;
/// The ordinal every fault hits.
const VICTIM: u32 = 1;

#[derive(Clone, Copy, Debug)]
enum Fault {
    PodDeleteGraceful,
    PodDeleteForce,
    ContainerCrash,
    NodeKill,
}

pub(super) fn cases() -> Vec<Case> {
    let faults = [
        Fault::PodDeleteGraceful,
        Fault::PodDeleteForce,
        Fault::ContainerCrash,
        Fault::NodeKill,
    ];
    let mut cases: Vec<Case> = faults
        .into_iter()
        .map(|fault| {
            let exclusive = match fault {
                Fault::NodeKill => Exclusive::Nodes,
                _ => Exclusive::No,
            };
            Case::new(
                format!("survival-{fault:?}"),
                Promise::DataSurvival,
                exclusive,
                move |env| acknowledged_rows_survive(env, fault).boxed(),
            )
        })
        .collect();
    cases.push(Case::new(
        "survival-NodeLostPodMoves",
        Promise::DataSurvival,
        Exclusive::Nodes,
        |env| pod_moving_off_a_dead_node(env).boxed(),
    ));
    cases
}

/// MUST: after the pod of an ordinal is deleted (gracefully or with grace 0), its
/// container crashes, or its node is killed and restarted, the ordinal comes back with the
/// same name and PVC (a new uid after deletion, the same uid with a higher restartCount
/// after a crash or node restart), never two pods with one name run at once, and every
/// row MySQL acknowledged on any ordinal is read back intact.
async fn acknowledged_rows_survive(env: &TestEnv, fault: Fault) -> Checks {
    let capability = match fault {
        Fault::ContainerCrash => env.container_crash_chaos().map(|_| ()),
        Fault::NodeKill => env.chaos().map(|_| ()),
        Fault::PodDeleteGraceful | Fault::PodDeleteForce => Ok(()),
    };
    if let Err(reason) = capability {
        return Ok(skip(env, &reason));
    }
    env.deploy(REPLICAS as i32).await?;
    env.write_everywhere(REPLICAS, ROWS_PER_ORDINAL).await?;
    env.settle().await?;
    // Resolved before the fault and again after recovery: a recreated pod's name must
    // follow it (a DNS still answering the old address fails).
    env.resolve_names_in_cluster(REPLICAS).await?;
    let pod = env.pod_name(VICTIM);
    let start = env.history.mark(format!("{fault:?} on {pod}"));
    // A writer runs through every fault, so at-most-one judges acknowledged writes and
    // no_lost_writes covers rows written while the fault happened, not only data at rest.
    let mut through = env.workload.spawn_writer(VICTIM);
    through.wait_for_more_acks(WRITER_ACKS).await?;
    let (old_uid, expect) = match fault {
        Fault::PodDeleteGraceful => (env.delete_pod(VICTIM, None).await?, Recreation::NewPod),
        Fault::PodDeleteForce => (env.delete_pod(VICTIM, Some(0)).await?, Recreation::NewPod),
        Fault::ContainerCrash => (env.crash_container(VICTIM).await?.0, Recreation::Restarted),
        Fault::NodeKill => {
            note_how_node_loss_is_survived(env, &pod).await?;
            let killed = env.kill_node_of(VICTIM).await?;
            env.settle().await?;
            env.restart_node(&killed).await?;
            (killed.uid, Recreation::Restarted)
        }
    };
    env.wait_ready(REPLICAS as i32).await?;
    write_after_recovery(env, &pod, start, through).await?;
    env.read_everywhere(REPLICAS).await?;
    env.settle().await?;
    env.resolve_names_in_cluster(REPLICAS).await?;
    env.settle().await?;
    let end = env.history.mark("recovered and read back");
    let entries = env.entries();
    let identity = env.identity_expect(REPLICAS);
    let mut results = vec![
        checks::identity_after_recreation(&entries, &pod, &old_uid, expect),
        checks::at_most_one(&entries, (start, end)),
        checks::no_lost_writes(&entries),
        checks::ordinal_identity(&entries, &identity),
        checks::dns_resolution(&entries, &identity),
    ];
    if expect == Recreation::NewPod {
        results.push(checks::deleted_pods_stop_serving(&entries, (start, end)));
    }
    Ok(results)
}

/// MUST: on storage that is not node-bound, once a dead node is marked out-of-service
/// (the `node.kubernetes.io/out-of-service` taint, GA in 1.28), the StatefulSet's pod on it
/// is force-deleted and recreated on another node with the same name and PVC, never two
/// pods with one name at once, and every acknowledged row is read back. The node is then
/// started and the taint lifted, as upstream advises. On node-bound storage (kind's
/// local-path) the pod cannot move: the case is skipped and says so.
async fn pod_moving_off_a_dead_node(env: &TestEnv) -> Checks {
    if let Err(reason) = env.chaos() {
        return Ok(skip(env, &reason));
    }
    if let Err(reason) = env.supports_out_of_service_taint().await {
        return Ok(skip(env, &reason));
    }
    env.deploy(REPLICAS as i32).await?;
    env.write_everywhere(REPLICAS, ROWS_PER_ORDINAL).await?;
    env.settle().await?;
    let pod = env.pod_name(VICTIM);
    let claim = format!("{}-{pod}", env.identity_expect(0).claim_template);
    let storage = env.probe_storage().await?;
    if storage.node_bound(&claim) != Some(false) {
        let reason = format!(
            "{claim} cannot leave its node ({storage}); set E2E_STORAGE_CLASS to a class \
             that is not node-bound to run this case"
        );
        return Ok(skip(env, &reason));
    }
    env.note(storage.to_string());
    let start = env
        .history
        .mark(format!("node of {pod} lost, marked out-of-service"));
    let mut through = env.workload.spawn_writer(VICTIM);
    through.wait_for_more_acks(WRITER_ACKS).await?;
    let killed = env.kill_node_of(VICTIM).await?;
    let moved = move_off_dead_node(env, &killed).await;
    let written = match &moved {
        Ok(()) => write_after_recovery(env, &pod, start, through).await,
        Err(_) => {
            through.stop().await;
            Ok(())
        }
    };
    let restored = restore_node(env, &killed).await;
    moved?;
    written?;
    restored?;
    // The writers ran on after the move's read: read every row they wrote.
    env.read_everywhere(REPLICAS).await?;
    env.settle().await?;
    let end = env.history.mark("node back, taint lifted");
    let entries = env.entries();
    Ok(vec![
        checks::identity_after_recreation(&entries, &pod, &killed.uid, Recreation::NewPod),
        checks::at_most_one(&entries, (start, end)),
        checks::deleted_pods_stop_serving(&entries, (start, end)),
        checks::no_lost_writes(&entries),
        checks::ordinal_identity(&entries, &env.identity_expect(REPLICAS)),
    ])
}

/// Once the ordinal is back: a fresh session (which reaches whichever pod holds the name now)
/// and the writer that ran through the fault (whose session may still reach the container it
/// had, as a zombie would answer it) must both have writes acknowledged. The report says
/// how many writes each made.
async fn write_after_recovery(
    env: &TestEnv,
    pod: &str,
    start: u64,
    mut through: Writer,
) -> Result<(), SuiteError> {
    // The history must hold the fault's deletions and the replacement before the writes that
    // are to prove which container served them.
    env.settle().await?;
    let mut fresh = env.workload.spawn_writer(VICTIM);
    // A replacement waiting for a zombie's lock on the data files never serves: stop waiting
    // for it as soon as the writer's own acknowledgements prove the old container is alive.
    let fresh_acked = tokio::select! {
        acked = fresh.wait_for_more_acks(WRITER_ACKS) => acked.map(|_| None),
        zombie = env.zombie_evidence(start, &mut through) => Ok(Some(zombie)),
    };
    let through_acked = match fresh_acked {
        Ok(None) => through.wait_for_more_acks(WRITER_ACKS).await.map(|_| ()),
        _ => Ok(()),
    };
    let (during, after) = (through.stop().await, fresh.stop().await);
    env.note(format!(
        "writes to {pod}: the writer running through the fault had {during}; a fresh session after recovery had {after}"
    ));
    if let Some(zombie) = fresh_acked? {
        return Err(SuiteError::ReplacementNeverServed {
            pod: pod.to_owned(),
            evidence: zombie,
        });
    }
    through_acked?;
    Ok(())
}

/// Taints the dead node out-of-service, waits for the pod to run elsewhere and reads
/// every row back.
async fn move_off_dead_node(env: &TestEnv, killed: &KilledNode) -> Result<(), SuiteError> {
    env.set_out_of_service(&killed.node, true).await?;
    let moved = env.wait_recreated(VICTIM, &killed.uid).await?;
    let node = moved.spec.as_ref().and_then(|s| s.node_name.clone());
    if node.as_deref() == Some(killed.node.as_str()) {
        return Err(SuiteError::RecreatedOnDeadNode {
            pod: killed.pod.clone(),
            node: killed.node.clone(),
        });
    }
    tracing::info!(pod = %killed.pod, from = %killed.node, to = ?node, "pod moved off the dead node");
    env.wait_ready(REPLICAS as i32).await?;
    env.read_everywhere(REPLICAS).await?;
    Ok(())
}

/// Starts the node again and lifts the taint, whatever happened before, so the tests that
/// follow get every node back.
async fn restore_node(env: &TestEnv, killed: &KilledNode) -> Result<(), SuiteError> {
    let started = env.restart_node(killed).await;
    env.set_out_of_service(&killed.node, false).await?;
    Ok(started?)
}

/// On node-bound storage the pod cannot leave its dead node, so this case restarts the
/// node; on storage that is not node-bound a cluster can also move it (the out-of-service
/// taint, `pod_moving_off_a_dead_node`). The report says which
/// it was.
async fn note_how_node_loss_is_survived(env: &TestEnv, pod: &str) -> Result<(), SuiteError> {
    let storage = env.probe_storage().await?;
    let claim = format!("{}-{pod}", env.identity_expect(0).claim_template);
    let how = match storage.node_bound(&claim) {
        Some(true) => {
            "node-bound: the pod cannot move, so survival is shown by restarting its node"
        }
        Some(false) => {
            "not node-bound: the pod could move to another node (out-of-service taint), \
             shown by the NodeLostPodMoves case; here survival is shown by restarting its node"
        }
        None => "its PV was not observed; survival is shown by restarting its node",
    };
    env.note(format!("{claim} is {how}; {storage}"));
    Ok(())
}
