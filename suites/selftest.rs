//! Self-test: every check can fail. `cargo test --test selftest`.
//!
//! Each case starts its own kube-sim with one fault (`--fault NAME`), drives the same steps
//! the e2e suite drives, and asserts that the matching checker returns Fail with evidence
//! naming the violation. The e2e suite runs the same steps against a sim without faults and
//! asserts they pass, so each checker is shown to pass and to fail.

use anyhow::Context;
use checks::{self, CheckResult, Recreation, Verdict};
use harness::cluster::target::{Cluster, TargetChoice, TargetKind, TargetSettings};
use harness::scenario::{Outcome, RETAIN_CLASS, STEPS_CHECK, ScaleVia, TestEnv, UpdateStrategy};
use k8s_openapi::api::core::v1::Namespace;
use rstest::rstest;
use tracing_test::traced_test;

const ROWS: u64 = 10;
/// Self-test reports (which fail on purpose) go under `<report dir>/selftest/`, apart from
/// the conformance run's.
const REPORT_GROUP: &str = "selftest";
/// Acknowledged writes the writer must make before the force deletion and after it.
const WRITER_ACKS: u64 = 5;
/// How long a step waits for a state its fault prevents (the claims of removed ordinals
/// gone, the DNS names published): without the fault the sim gets there within a
/// controller round; with it, never, and the checker then judges what was observed.
const PREVENTED_STATE_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
enum Step {
    Deploy3,
    Deploy3WithoutWaitingForDns,
    /// Deploy 3 replicas and resolve their DNS names from inside mysql-0 (exec).
    Deploy3AndResolveInCluster,
    ScaleUp3To5,
    /// Kill mysql-2's node, wait for mysql-2 NotReady, ask for 5 replicas, then (once
    /// mysql-3 appeared or a bound passed) start the node again and wait for all 5.
    ScaleUp3To5WhileOrdinal2IsNotReady,
    ScaleDown5To3,
    ScaleDown5To3WhenScaledDelete,
    DeletePodOfOrdinal1,
    CrashOrdinal1,
    /// Crash mysql-1's container and judge whether it came back as the same pod.
    CrashOrdinal1ForIdentity,
    /// Delete mysql-1 with a short root-login gate; the gate's error becomes the evidence
    /// of the steps check.
    DeleteOrdinal1BehindTheRootGate,
    /// Force-delete mysql-1 under a writer; a fresh writer then writes to its replacement.
    ForceDeleteOrdinal1WithWriter,
    /// The same, then the old writer writes on until its container is proven alive past
    /// the stop bound (or the bound and a margin passed).
    ForceDeleteOrdinal1WithWriterPastTheStopBound,
    /// Change the pod template of 3 replicas and wait for the rollout.
    RollingUpdate3,
    /// The same with partition 2: only mysql-2 may be replaced.
    RollingUpdate3WithPartition2,
    /// Deploy 2 on the harness's Retain class, write rows, delete the StatefulSet and its
    /// claims, and judge what became of their PVs.
    DeleteClaimsOnRetainClass,
    /// The backup and restore drill on 2 replicas: back up under writers, delete the
    /// StatefulSet and its claims, restore a fresh one from the backups, restart it, read.
    BackupRestoreDrill2,
}

/// Starts a sim that breaks one promise, runs `step` on it and returns the checks.
async fn run_with_fault(fault: &str, step: Step, check: &str) -> anyhow::Result<Vec<CheckResult>> {
    run_on_sim(Some(fault), step, check).await
}

/// Starts a sim (breaking `fault`, if any), runs `step` on it and returns the checks.
async fn run_on_sim(
    fault: Option<&str>,
    step: Step,
    check: &str,
) -> anyhow::Result<Vec<CheckResult>> {
    let settings = TargetSettings::from_env()?.with_choice(TargetChoice::Fixed(TargetKind::Sim));
    let settings = TargetSettings {
        sim_faults: fault.map(str::to_string).into_iter().collect(),
        ..settings
    };
    let label = fault.unwrap_or("no-fault");
    let cluster = Cluster::provision(settings)
        .await
        .with_context(|| format!("failed to start kube-sim ({label})"))?;
    let test = format!("selftest-{label}-{}", check.replace(' ', "-"));
    // Boxed: drive's future, with every step's, overflows a test thread's 2 MiB stack.
    let result = Box::pin(drive(&cluster, &test, step)).await;
    cluster.teardown();
    result
}

async fn drive(cluster: &Cluster, test: &str, step: Step) -> anyhow::Result<Vec<CheckResult>> {
    let mut env = TestEnv::start(cluster, test).await?;
    env.report_under(REPORT_GROUP);
    env.history.on_action(|step| tracing::info!("step {step}"));
    let sts = env.statefulset_name();
    let results = match step {
        Step::Deploy3 => {
            env.deploy(3).await?;
            env.settle().await?;
            vec![checks::ordinal_identity(
                &env.entries(),
                &env.identity_expect(3),
            )]
        }
        Step::Deploy3WithoutWaitingForDns => {
            let deployed = tokio::time::timeout(PREVENTED_STATE_BOUND, env.deploy(3)).await;
            tracing::info!(
                ?deployed,
                "3 replicas and their DNS names within {PREVENTED_STATE_BOUND:?}"
            );
            env.settle().await?;
            vec![checks::ordinal_identity(
                &env.entries(),
                &env.identity_expect(3),
            )]
        }
        Step::Deploy3AndResolveInCluster => {
            env.deploy(3).await?;
            env.settle().await?;
            env.resolve_names_in_cluster(3).await?;
            vec![checks::dns_resolution(
                &env.entries(),
                &env.identity_expect(3),
            )]
        }
        Step::RollingUpdate3 => rolling_update(&env, &sts, 0).await?,
        Step::RollingUpdate3WithPartition2 => rolling_update(&env, &sts, 2).await?,
        Step::DeleteClaimsOnRetainClass => Box::pin(delete_claims_on_retain_class(&env)).await?,
        Step::BackupRestoreDrill2 => {
            let drill = Box::pin(env.backup_drill(2, WRITER_ACKS)).await?;
            let entries = env.entries();
            vec![
                checks::backup_consistent(&entries, &[0, 1]),
                checks::rows_restored_from_backup(&entries, drill.read_from, &[0, 1]),
            ]
        }
        Step::ScaleUp3To5 => {
            env.deploy(3).await?;
            env.settle().await?;
            let start = env.history.mark("scale 3 -> 5");
            env.scale(3, 5, ScaleVia::ScaleSubresource).await?;
            env.settle().await?;
            let end = env.history.mark("scaled");
            vec![checks::ordered_scale_up(&env.entries(), (start, end), &sts)]
        }
        Step::ScaleUp3To5WhileOrdinal2IsNotReady => {
            Box::pin(scale_up_while_ordinal2_is_not_ready(&env, &sts)).await?
        }
        Step::ScaleDown5To3 => {
            env.deploy(5).await?;
            env.settle().await?;
            let start = env.history.mark("scale 5 -> 3");
            env.scale(5, 3, ScaleVia::ScaleSubresource).await?;
            env.settle().await?;
            let end = env.history.mark("scaled");
            let entries = env.entries();
            vec![
                checks::reverse_scale_down(&entries, (start, end), &sts),
                checks::pvc_kept(&entries, start, end, &[3, 4]),
            ]
        }
        Step::ScaleDown5To3WhenScaledDelete => {
            env.deploy_with_retention(5, "Delete", "Retain").await?;
            env.settle().await?;
            let start = env.history.mark("scale 5 -> 3 with whenScaled: Delete");
            env.scale(5, 3, ScaleVia::ScaleSubresource).await?;
            let gone =
                tokio::time::timeout(PREVENTED_STATE_BOUND, env.wait_pvcs_absent(&[3, 4])).await;
            tracing::info!(
                ?gone,
                "claims of ordinals 3 and 4 within {PREVENTED_STATE_BOUND:?}"
            );
            env.settle().await?;
            let end = env.history.mark("scaled");
            vec![checks::pvc_deleted(&env.entries(), start, end, &[3, 4])]
        }
        Step::DeletePodOfOrdinal1 => {
            env.deploy(3).await?;
            env.write_everywhere(3, ROWS).await?;
            let uid = env.delete_pod(1, None).await?;
            env.read_everywhere(3).await?;
            env.settle().await?;
            let entries = env.entries();
            vec![
                checks::identity_after_recreation(
                    &entries,
                    &env.pod_name(1),
                    &uid,
                    Recreation::NewPod,
                ),
                checks::no_lost_writes(&entries),
                checks::ordinal_identity(&entries, &env.identity_expect(3)),
            ]
        }
        Step::CrashOrdinal1 => {
            env.deploy(3).await?;
            env.write_everywhere(3, ROWS).await?;
            env.crash_container(1).await?;
            env.read_everywhere(3).await?;
            env.settle().await?;
            vec![checks::no_lost_writes(&env.entries())]
        }
        // Each in its own boxed future: one poll frame for every arm overflows the stack of
        // a test thread in debug builds.
        Step::CrashOrdinal1ForIdentity => Box::pin(crash_ordinal1_for_identity(&env)).await?,
        Step::DeleteOrdinal1BehindTheRootGate => {
            Box::pin(delete_ordinal1_behind_the_root_gate(&mut env)).await?
        }
        Step::ForceDeleteOrdinal1WithWriter => {
            Box::pin(force_delete_ordinal1_with_writer(&env, false)).await?
        }
        Step::ForceDeleteOrdinal1WithWriterPastTheStopBound => {
            Box::pin(force_delete_ordinal1_with_writer(&env, true)).await?
        }
    };
    let outcome = env.finish(results.clone()).await?;
    println!("{}", outcome.summary);
    Ok(results)
}

/// Force-deletes mysql-1 under a writer, then writes through a fresh session (which
/// reaches the replacement) while the old writer writes on; with `past_stop_bound` the old
/// writer then writes on until its container is proven alive past the stop bound (or the
/// bound and a margin passed), so "deleted pods stop serving" can judge a zombie.
async fn force_delete_ordinal1_with_writer(
    env: &TestEnv,
    past_stop_bound: bool,
) -> anyhow::Result<Vec<CheckResult>> {
    env.deploy(2).await?;
    env.workload.prepare(1).await?;
    env.settle().await?;
    let start = env.history.mark("force delete mysql-1 under a writer");
    let mut writer = env.workload.spawn_writer(1);
    writer.wait_for_more_acks(WRITER_ACKS).await?;
    env.delete_pod(1, Some(0)).await?;
    // The history must hold the deletion and the replacement before the writes that are
    // to prove which container served them.
    env.settle().await?;
    // A fresh session reaches the replacement; a zombie keeps the old writer's. Whichever
    // comes first ends the wait: the replacement serving, or the old container proven
    // alive past the stop bound.
    let mut fresh = env.workload.spawn_writer(1);
    tokio::select! {
        acked = fresh.wait_for_more_acks(WRITER_ACKS) => { acked?; }
        _zombie = env.zombie_evidence(start, &mut writer) => {}
    }
    // Both writers on: the old one's acknowledgements now come after the replacement served.
    writer.wait_for_more_acks(WRITER_ACKS).await?;
    if past_stop_bound {
        let bound = checks::STOP_BOUND + PREVENTED_STATE_BOUND;
        let zombie = tokio::time::timeout(bound, env.zombie_evidence(start, &mut writer)).await;
        tracing::info!(
            ?zombie,
            "the old container past the stop bound, within {bound:?}"
        );
    }
    let written = (writer.stop().await, fresh.stop().await);
    tracing::info!(?written, "writers during the force deletion");
    env.settle().await?;
    let end = env.history.mark("writers stopped");
    let entries = env.entries();
    Ok(vec![
        checks::at_most_one(&entries, (start, end)),
        checks::deleted_pods_stop_serving(&entries, (start, end)),
    ])
}

/// Crashes mysql-1's container and judges whether the ordinal came back as the same pod.
async fn crash_ordinal1_for_identity(env: &TestEnv) -> anyhow::Result<Vec<CheckResult>> {
    env.deploy(3).await?;
    env.settle().await?;
    let uid = env.get_pod(1).await?.metadata.uid.unwrap_or_default();
    // The crash step waits for a restart in place, which the fault prevents.
    let crashed = tokio::time::timeout(PREVENTED_STATE_BOUND, env.crash_container(1)).await;
    tracing::info!(
        ?crashed,
        "mysql-1 restarted in place within {PREVENTED_STATE_BOUND:?}"
    );
    env.wait_ready(3).await?;
    env.settle().await?;
    Ok(vec![checks::identity_after_recreation(
        &env.entries(),
        &env.pod_name(1),
        &uid,
        Recreation::Restarted,
    )])
}

/// Deletes mysql-1 behind a root-login gate bounded by [`PREVENTED_STATE_BOUND`]; the
/// gate's error, if any, is the evidence of the steps check.
async fn delete_ordinal1_behind_the_root_gate(
    env: &mut TestEnv,
) -> anyhow::Result<Vec<CheckResult>> {
    env.deploy(3).await?;
    env.timeouts.mysql_ready = PREVENTED_STATE_BOUND;
    let verdict = match env.delete_pod(1, None).await {
        Ok(uid) => Verdict::Pass {
            summary: format!("mysql-1 (uid {uid}) deleted and recreated"),
        },
        Err(err) => Verdict::Fail {
            evidence: vec![harness::support::errors::chain(&err)],
        },
    };
    Ok(vec![CheckResult::new(STEPS_CHECK, verdict)])
}

/// The named check's evidence, failing the test unless that check failed.
fn failed_evidence(results: &[CheckResult], check: &str) -> String {
    let result = results
        .iter()
        .find(|r| r.check == check)
        .unwrap_or_else(|| panic!("check {check:?} did not run; ran: {results:?}"));
    match &result.verdict {
        Verdict::Fail { evidence } => evidence.join("\n"),
        other => panic!("check {check:?} should fail under this fault but was: {other}"),
    }
}

/// Deploys 2 on the harness's Retain class, writes rows, deletes the StatefulSet and its
/// claims, removes the class and what it kept, and judges what became of the PVs.
async fn delete_claims_on_retain_class(env: &TestEnv) -> anyhow::Result<Vec<CheckResult>> {
    let class = env.run_storage_class().await?;
    env.create_retain_class(&class).await?;
    let deleted = env
        .write_then_delete_claims(2, Some(RETAIN_CLASS), ROWS)
        .await;
    env.remove_retained(&env.observed_volumes(), Some(RETAIN_CLASS))
        .await?;
    let (before, released) = deleted?;
    Ok(vec![checks::volumes_retained(
        &env.entries(),
        before,
        released,
        &[0, 1],
    )])
}

/// MUST: each fault kube-sim can inject is caught by the checker for the promise it
/// breaks, with evidence of the violation that was injected: one evidence line has the
/// violation's shape (`*` stands for any text; the rest, its category's wording and the
/// objects it names, must match), not merely a word any failure contains.
#[rstest]
#[case::random_names_break_ordinal_identity(
    "names:random",
    Step::Deploy3,
    "ordinal identity",
    "pod mysql-* (uid *) exists but only mysql-0..mysql-2 should (*)"
)]
#[case::endpoints_without_hostnames_break_ordinal_dns_names(
    "dns:no-hostname",
    Step::Deploy3WithoutWaitingForDns,
    "ordinal identity",
    "pod mysql-0 (uid *) is Ready but no EndpointSlice of Service mysql has an endpoint with hostname mysql-0 (slices: *)"
)]
#[case::stale_dns_answers_break_in_cluster_resolution(
    "dns:stale-address",
    Step::Deploy3AndResolveInCluster,
    "DNS resolution in the cluster",
    "mysql-1.mysql.*.svc.cluster.local resolved from inside pod mysql-0 at seq * to [*], but pod mysql-1 (uid *) was Ready with IP *; * was never an observed pod IP"
)]
#[case::pods_without_hostnames_break_ordinal_identity(
    "pods:no-hostname",
    Step::Deploy3WithoutWaitingForDns,
    "ordinal identity",
    "pod mysql-0 (uid *) has hostname None, expected \"mysql-0\""
)]
#[case::pods_without_ordinal_labels_break_ordinal_identity(
    "pods:no-ordinal-labels",
    Step::Deploy3,
    "ordinal identity",
    "pod mysql-0 (uid *) has label statefulset.kubernetes.io/pod-name=None, expected \"mysql-0\""
)]
#[case::parallel_scale_up_breaks_ordering(
    "scale-up:parallel",
    Step::ScaleUp3To5,
    "ordered scale-up",
    "pod mysql-4 (uid *) was first observed at seq * while pod mysql-3 (uid *) was not Running and Ready (*)"
)]
#[case::scale_up_past_a_not_ready_pod_breaks_ordering(
    "scale-up:ready-remembered",
    Step::ScaleUp3To5WhileOrdinal2IsNotReady,
    "ordered scale-up",
    "pod mysql-3 (uid *) was first observed at seq * while pod mysql-2 (uid *) was not Running and Ready (*)"
)]
#[case::forward_update_breaks_the_rollout_order(
    "update:forward",
    Step::RollingUpdate3,
    "ordered rolling update",
    "deletion of pod mysql-0 (uid *) (revision *) began at seq * while the higher pod mysql-1 (uid *) still ran revision *, not * (last observed at seq *)"
)]
#[case::ignored_partition_breaks_the_rollout(
    "update:ignore-partition",
    Step::RollingUpdate3WithPartition2,
    "ordered rolling update",
    "deletion of pod mysql-1 (uid *) (revision *) began at seq * though the partition was 2 (set at seq *): ordinals below 2 keep their revision"
)]
#[case::parallel_update_breaks_one_at_a_time(
    "update:parallel",
    Step::RollingUpdate3,
    "ordered rolling update",
    "deletion of pod mysql-1 (uid *) (revision *) began at seq * while the higher pod mysql-2 (uid *) (revision *) was still terminating, not yet replaced (last observed at seq *)"
)]
#[case::a_template_without_its_controller_revision_breaks_revision_consistency(
    "update:no-revision-object",
    Step::RollingUpdate3,
    "ControllerRevisions consistent",
    "StatefulSet mysql at seq *: status.updateRevision mysql-* names no ControllerRevision (never observed)"
)]
#[case::forward_scale_down_breaks_reverse_order(
    "scale-down:forward",
    Step::ScaleDown5To3,
    "reverse-order scale-down",
    "deletion of pod mysql-3 (uid *) began at seq * while pod mysql-4 (uid *) still existed (*)"
)]
#[case::pvc_deleted_on_scale_down_breaks_retention(
    "pvc:delete-on-scale-down",
    Step::ScaleDown5To3,
    "PVC retention on scale-down",
    "PVC mysql-persistent-storage-mysql-3 (uid *) was observed deleted at seq *"
)]
#[case::ignored_retention_policy_breaks_when_scaled_delete(
    "pvc:retain-despite-policy",
    Step::ScaleDown5To3WhenScaledDelete,
    "PVC deletion (whenScaled: Delete)",
    "PVC mysql-persistent-storage-mysql-3 (uid *) still exists at seq * although whenScaled is Delete (*)"
)]
#[case::fresh_pvc_on_recreate_loses_rows(
    "pvc:new-on-recreate",
    Step::DeletePodOfOrdinal1,
    "no lost writes",
    "lost (acknowledged, not read back): row * (ordinal 1, * is missing from the read of ordinal 1 (pod mysql-1, uid *) at seq *"
)]
#[case::fresh_pvc_on_recreate_breaks_identity_after_recreation(
    "pvc:new-on-recreate",
    Step::DeletePodOfOrdinal1,
    "identity after pod recreation",
    "PVC mysql-persistent-storage-mysql-1 changed: uid * at seq *, now uid * at seq *"
)]
#[case::wiped_volume_on_restart_loses_rows(
    "volume:wipe-on-restart",
    Step::CrashOrdinal1,
    "no lost writes",
    "lost (acknowledged, not read back): row * (ordinal 1, * is missing from the read of ordinal 1 (pod mysql-1, uid *) at seq *"
)]
#[case::zombie_after_force_delete_serves_beside_its_replacement(
    "pod:zombie-on-force-delete",
    Step::ForceDeleteOrdinal1WithWriter,
    "at-most-one",
    "two pods named mysql-1 served at once: uid * was observed deleted at seq * and its replacement uid * was serving (*), yet uid * acknowledged *"
)]
#[case::zombie_after_force_delete_keeps_serving(
    "pod:zombie-on-force-delete",
    Step::ForceDeleteOrdinal1WithWriterPastTheStopBound,
    "deleted pods stop serving",
    "pod mysql-1 uid * was deleted at seq * but its container kept serving: it acknowledged * write(s) invoked more than 15 s later, rows * (a zombie container)"
)]
#[case::new_pod_after_a_crash_breaks_identity_after_restart(
    "restart:new-identity",
    Step::CrashOrdinal1ForIdentity,
    "identity after restart",
    "pod mysql-1 was recreated (uid * -> *) instead of restarted in place"
)]
#[case::interrupted_first_start_is_named_by_the_root_login_gate(
    "mysql:interrupted-init",
    Step::DeleteOrdinal1BehindTheRootGate,
    "test steps completed",
    "failed to delete pod mysql-1: every ordinal must first accept a root login (root is refused over TCP: *): failed to connect to MySQL on pod mysql-0 within 10s: still refused when the timeout expired: Server error: `ERROR 1130 (HY000): Host '*' is not allowed to connect to this MariaDB server'"
)]
#[case::retain_volume_deleted_with_its_claim_breaks_retention(
    "pv:delete-on-retain",
    Step::DeleteClaimsOnRetainClass,
    "PVs retained (reclaimPolicy Retain)",
    "PV * (uid *, reclaimPolicy Retain) of claim mysql-persistent-storage-mysql-0 was deleted at seq * although its reclaimPolicy is Retain"
)]
#[case::retain_volume_deleted_after_a_delay_breaks_retention(
    "pv:delete-on-retain-later",
    Step::DeleteClaimsOnRetainClass,
    "PVs retained (reclaimPolicy Retain)",
    "PV * (uid *, reclaimPolicy Retain) of claim mysql-persistent-storage-mysql-0 was deleted at seq * although its reclaimPolicy is Retain"
)]
#[case::restored_volumes_wiped_for_a_new_pod_lose_the_restore(
    "volume:wipe-on-new-pod",
    Step::BackupRestoreDrill2,
    "rows restored from the backup",
    "lost in the restore: row * (ordinal 1, acknowledged at seq *, by position seq *) is missing from the read of ordinal 1 (pod mysql-1, uid *) at seq *"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn every_check_fails_when_the_sim_breaks_its_promise(
    #[case] fault: &str,
    #[case] step: Step,
    #[case] check: &str,
    #[case] shape: &str,
) -> anyhow::Result<()> {
    let results = run_with_fault(fault, step, check).await?;
    let evidence = failed_evidence(&results, check);
    assert!(
        evidence.lines().any(|line| has_shape(line, shape)),
        "no evidence line of {check:?} under {fault} has the injected violation's shape {shape:?}:\n{evidence}"
    );
    Ok(())
}

/// Starts a sim with `fault`, runs the catalogue's own case `case` (the body `cargo test
/// --test e2e` and `sts-conformance run` run) and returns its checks.
async fn run_case_with_fault(fault: &str, case: &str) -> anyhow::Result<Vec<CheckResult>> {
    let case = harness::suites::case(case)?;
    let settings = TargetSettings::from_env()?.with_choice(TargetChoice::Fixed(TargetKind::Sim));
    let settings = TargetSettings {
        sim_faults: vec![fault.to_string()],
        ..settings
    };
    let cluster = Cluster::provision(settings)
        .await
        .with_context(|| format!("failed to start kube-sim ({fault})"))?;
    let test = format!("selftest-{fault}-{}", case.name).replace(':', "-");
    let run = async {
        let mut env = TestEnv::start(&cluster, &test).await?;
        env.report_under(REPORT_GROUP);
        env.history.on_action(|step| tracing::info!("step {step}"));
        let results = Box::pin(case.body(&env)).await?;
        let outcome = env.finish(results.clone()).await?;
        println!("{}", outcome.summary);
        anyhow::Ok(results)
    };
    let result = Box::pin(run).await;
    cluster.teardown();
    result
}

/// MUST: the shipped cases catch each fault. Each row runs a case of the catalogue, as it
/// ships, on a kube-sim that injects the fault, and asserts that the named check fails
/// with an evidence line of the injected violation's shape.
#[rstest]
#[case::a_zombie_serving_beside_its_replacement_fails_the_force_delete_case(
    "pod:zombie-on-force-delete",
    "survival-PodDeleteForce",
    "at-most-one",
    "two pods named mysql-1 served at once: uid * was observed deleted at seq * and its replacement uid * was serving (*), yet uid * acknowledged *"
)]
#[case::a_relabelled_pod_fails_the_rolling_update_case(
    "update:relabel-in-place",
    "update-rolling",
    "ordered rolling update",
    "pod mysql-* (uid *) was never replaced: the same uid held the name when the window began (*): relabelled in place, not made from the new template"
)]
#[case::an_on_delete_set_rolled_later_fails_the_on_delete_case(
    "update:on-delete-rolls-later",
    "update-on-delete",
    "OnDelete update",
    "deletion of pod mysql-* (uid *) (revision *) began at seq * though the harness did not delete it: with updateStrategy OnDelete a pod is replaced only once it is deleted"
)]
#[case::a_stale_endpoint_fails_the_pod_delete_case(
    "endpoints:stale",
    "survival-PodDeleteGraceful",
    "ordinal identity",
    "in slice * the ready endpoint mysql-1 (target mysql-1 uid *, addresses [*]) is stale: the pod named mysql-1 is uid *"
)]
#[case::a_cached_dns_answer_fails_the_pod_delete_case(
    "dns:cached-answers",
    "survival-PodDeleteGraceful",
    "DNS resolution in the cluster",
    "mysql-1.mysql.*.svc.cluster.local resolved from inside pod mysql-* at seq * to [*], but pod mysql-1 (uid *) was Ready with IP *; * was the IP of pod mysql-1 (uid *), observed deleted at seq *"
)]
#[case::a_pv_replaced_under_its_claim_fails_the_pod_delete_case(
    "pv:replaced-under-claim",
    "survival-PodDeleteGraceful",
    "identity after pod recreation",
    "the volume under PVC mysql-persistent-storage-mysql-1 (same claim uid *) was replaced: PV * (uid *) at seq *, now PV * (uid *) at seq *"
)]
#[case::ignored_when_deleted_fails_the_retention_matrix(
    "pvc:when-deleted-ignored",
    "retention-policy-scaled-retain-deleted-delete",
    "PVC deletion (whenDeleted: Delete)",
    "PVC mysql-persistent-storage-mysql-* (uid *, PV *) still exists at seq * although whenDeleted is Delete (*)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn the_shipped_cases_fail_under_each_fault(
    #[case] fault: &str,
    #[case] case: &str,
    #[case] check: &str,
    #[case] shape: &str,
) -> anyhow::Result<()> {
    let results = run_case_with_fault(fault, case).await?;
    let evidence = failed_evidence(&results, check);
    assert!(
        evidence.lines().any(|line| has_shape(line, shape)),
        "no evidence line of {check:?} in case {case} under {fault} has the injected violation's shape {shape:?}:\n{evidence}"
    );
    Ok(())
}

/// Changes the pod template of 3 replicas (RollingUpdate with `partition`), waits for the
/// rollout and judges it.
async fn rolling_update(
    env: &TestEnv,
    sts: &str,
    partition: i32,
) -> anyhow::Result<Vec<CheckResult>> {
    env.deploy(3).await?;
    env.set_update_strategy(UpdateStrategy::RollingUpdate { partition })
        .await?;
    env.settle().await?;
    let start = env.history.mark("rolling update of the pod template");
    env.change_template("1").await?;
    env.wait_rolled_out(3, partition).await?;
    env.settle().await?;
    let end = env.history.mark("rolled out");
    let expect = checks::RolloutExpect::new(sts, 3, checks::Strategy::RollingUpdate);
    let entries = env.entries();
    Ok(vec![
        checks::rollout(&entries, (start, end), &expect),
        checks::revisions_consistent(&entries, end, &expect),
    ])
}

/// Kills mysql-2's node and, once mysql-2 is NotReady, asks for 5 replicas: an OrderedReady
/// controller halts until the node is back. Waits (bounded) for mysql-3 to appear anyway,
/// starts the node again, waits for all 5 and judges the order.
async fn scale_up_while_ordinal2_is_not_ready(
    env: &TestEnv,
    sts: &str,
) -> anyhow::Result<Vec<CheckResult>> {
    env.deploy(3).await?;
    env.settle().await?;
    let killed = env.kill_node_of(2).await?;
    let steps = async {
        env.wait_not_ready(2).await?;
        let start = env.history.mark("scale 3 -> 5 while mysql-2 is NotReady");
        env.request_scale(3, 5, ScaleVia::ScaleSubresource).await?;
        // Any uid: mysql-3 never existed before.
        let early = tokio::time::timeout(PREVENTED_STATE_BOUND, env.wait_recreated(3, "")).await;
        let early = early.map(|ready| ready.is_ok());
        tracing::info!(
            ?early,
            "mysql-3 Ready while mysql-2's node was down, within {PREVENTED_STATE_BOUND:?}"
        );
        anyhow::Ok(start)
    }
    .await;
    env.restart_node(&killed).await?;
    let start = steps?;
    env.wait_ready(5).await?;
    env.settle().await?;
    let end = env.history.mark("scaled");
    Ok(vec![checks::ordered_scale_up(
        &env.entries(),
        (start, end),
        sts,
    )])
}

/// Whether `line` is `shape` with each `*` standing for any text (possibly empty).
fn has_shape(line: &str, shape: &str) -> bool {
    let mut parts = shape.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[test]
fn a_shape_matches_whole_lines_only() {
    let lost = "lost: row * (ordinal 1, *)";
    assert!(has_shape("lost: row 7 (ordinal 1, ok at seq 9)", lost));
    assert!(!has_shape("unexpected: row 7 (ordinal 1, x)", lost));
    assert!(!has_shape("lost: row 7 (ordinal 2, x)", lost));
    assert!(has_shape("pod mysql-1 was lost", "pod mysql-1 was lost"));
    assert!(!has_shape(
        "pod mysql-1 was lost twice",
        "pod mysql-1 was lost"
    ));
    assert!(!has_shape("a", "a*a"));
}

/// Every fault kube-sim knows has a case above, so a new fault cannot go unproven.
#[test]
fn every_sim_fault_has_a_selftest_case() {
    let source = include_str!("selftest.rs");
    let untested: Vec<&str> = kube_sim::config::Fault::ALL_NAMES
        .into_iter()
        .filter(|name| !source.contains(&format!("(\n    \"{name}\",\n    ")))
        .collect();
    assert!(untested.is_empty(), "faults without a case: {untested:?}");
}

/// MUST: without the fault, a writer riding through a force deletion may still reach the
/// old container for a moment after its object is gone, but never once the replacement
/// serves (the old container dies before the new one starts on the volume), so at-most-one
/// passes: the zombie case above fails because of the fault, not because of the step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn force_delete_with_a_writer_keeps_at_most_one_without_the_fault() -> anyhow::Result<()> {
    let results = run_on_sim(None, Step::ForceDeleteOrdinal1WithWriter, "at-most-one").await?;
    let stopped = results
        .iter()
        .find(|r| r.check == "deleted pods stop serving")
        .context("deleted pods stop serving did not run")?;
    assert!(stopped.is_pass(), "{stopped}");
    let result = results
        .iter()
        .find(|r| r.check == "at-most-one")
        .context("at-most-one did not run")?;
    assert!(result.is_pass(), "{result}");
    assert!(
        !result.to_string().contains(", 0 acknowledged writes"),
        "the writer's acknowledged writes must have been judged: {result}"
    );
    Ok(())
}

/// MUST: a test whose steps fail before its checks run (here: waiting for more replicas
/// than the StatefulSet asks for, with a short bound) fails with the step's error as
/// evidence and a dump of its namespace, which is kept for diagnosis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn a_failed_step_fails_the_report_and_keeps_the_namespace() -> anyhow::Result<()> {
    let settings = TargetSettings::from_env()?.with_choice(TargetChoice::Fixed(TargetKind::Sim));
    let cluster = Cluster::provision(settings)
        .await
        .context("failed to start kube-sim")?;
    let result = abandon_after_a_timeout(&cluster).await;
    cluster.teardown();
    let outcome = result?;
    assert!(!outcome.passed, "{}", outcome.summary);
    assert!(
        outcome.summary.contains(&format!("FAIL     {STEPS_CHECK}")),
        "{}",
        outcome.summary
    );
    assert_eq!(
        outcome.summary.matches("timed out").count(),
        1,
        "the evidence is the step's error, said once: {}",
        outcome.summary
    );
    assert!(
        outcome.dump.contains("mysql-0"),
        "the dump lists the namespace's pods: {}",
        outcome.dump
    );
    Ok(())
}

async fn abandon_after_a_timeout(cluster: &Cluster) -> anyhow::Result<Outcome> {
    let mut env = TestEnv::start(cluster, "selftest-abandoned-step").await?;
    env.report_under(REPORT_GROUP);
    env.deploy(1).await?;
    env.timeouts.statefulset_ready = std::time::Duration::from_millis(500);
    let err = match env.wait_ready(2).await {
        Ok(()) => anyhow::bail!("2 replicas cannot be Ready when 1 is asked for"),
        Err(err) => anyhow::Error::new(err),
    };
    let namespace = env.namespace.name().to_string();
    let namespaces = kube::Api::<Namespace>::all(env.client.clone());
    let outcome = env
        .abandon(&harness::support::errors::chain(err.as_ref()))
        .await?;
    let kept = namespaces.get_opt(&namespace).await?;
    anyhow::ensure!(kept.is_some(), "namespace {namespace} must be kept");
    Ok(outcome)
}
