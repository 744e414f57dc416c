//! The runtime end to end through the store: the documented StatefulSet on real mariadbd
//! pods, ordering, identity, storage, crash and node failure, and process hygiene.

mod rt_support;

use std::time::{Duration, Instant};

use kube_sim::controllers::obj;
use kube_sim::store::{DeleteOptions, ResourceKind};
use rt_support::*;
use serde_json::Value;

const READY_TIMEOUT: Duration = Duration::from_secs(90);

fn restart_count(pod: &Value) -> i64 {
    pod.pointer("/status/containerStatuses/0/restartCount")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The documented walkthrough: 3 ordered Ready pods with stable identity and storage; a
/// row written through a real MySQL connection survives pod deletion, a container crash
/// and a node stop/start; scale 3 → 5 → 3 respects ordering and keeps claims; shutdown
/// leaves no mariadbd behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_statefulset_lifecycle() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    println!("measure: sim start-up {:?}", sim.started_in);
    let nodes = sim.store.list(ResourceKind::Node, None);
    let node_names: Vec<&str> = nodes.iter().map(obj::name).collect();
    assert_eq!(
        node_names,
        [
            "sim-control-plane",
            "sim-worker",
            "sim-worker2",
            "sim-worker3"
        ]
    );
    assert!(
        sim.store
            .get(ResourceKind::StorageClass, None, "standard")
            .is_some()
    );

    // --- 3 replicas, OrderedReady ---------------------------------------------------
    let t0 = Instant::now();
    let rv0 = sim.apply_documented(|_| {})?;
    sim.wait_ready(3, READY_TIMEOUT).await?;
    println!("measure: 3-replica StatefulSet Ready in {:?}", t0.elapsed());
    let history = sim.pod_history(rv0);
    for i in 1..3 {
        let prev_ready = first_index(&history, |e| became_ready(e, &format!("mysql-{}", i - 1)))
            .expect("predecessor ready");
        let created =
            first_index(&history, |e| is_added(e, &format!("mysql-{i}"))).expect("pod created");
        assert!(
            prev_ready < created,
            "mysql-{i} created before mysql-{} was Ready",
            i - 1
        );
    }
    sim.wait_until(
        "endpoint slice with 3 ready endpoints",
        Duration::from_secs(10),
        |s| {
            let slices = s.store.list(ResourceKind::EndpointSlice, Some(NS));
            let ready = slices
                .iter()
                .flat_map(|sl| obj::array(sl, "/endpoints"))
                .filter(|e| e.pointer("/conditions/ready") == Some(&serde_json::json!(true)))
                .count();
            if ready == 3 {
                Ok(())
            } else {
                Err(format!("{} slices, {ready} ready endpoints", slices.len()))
            }
        },
    )
    .await?;
    check_identity(&sim, 3)?;
    let sts = sim
        .store
        .get(ResourceKind::StatefulSet, Some(NS), "mysql")
        .expect("sts");
    assert_eq!(
        sts.pointer("/status/readyReplicas"),
        Some(&serde_json::json!(3))
    );
    assert_eq!(
        sts.pointer("/status/observedGeneration"),
        sts.pointer("/metadata/generation")
    );

    let ip0 = sim.pod_ip("mysql-0")?;
    assert!(
        ip0.starts_with("127.") && ip0 != "127.0.0.1",
        "pod IP {ip0}"
    );
    write_row(&ip0, 1, "before-anything").await?;
    let ip1 = sim.pod_ip("mysql-1")?;
    write_row(&ip1, 10, "on-mysql-1").await?;

    // --- scale 3 -> 5 -> 3 -----------------------------------------------------------
    let rv_up = sim.store.current_resource_version();
    sim.scale(5)?;
    sim.wait_ready(5, READY_TIMEOUT).await?;
    let history = sim.pod_history(rv_up);
    let ready3 = first_index(&history, |e| became_ready(e, "mysql-3")).expect("mysql-3 ready");
    let added4 = first_index(&history, |e| is_added(e, "mysql-4")).expect("mysql-4 created");
    assert!(ready3 < added4, "mysql-4 created before mysql-3 was Ready");

    let rv_down = sim.store.current_resource_version();
    sim.scale(3)?;
    sim.wait_ready(3, READY_TIMEOUT).await?;
    let history = sim.pod_history(rv_down);
    let gone4 = first_index(&history, |e| is_deleted(e, "mysql-4")).expect("mysql-4 deleted");
    let term3 =
        first_index(&history, |e| began_terminating(e, "mysql-3")).expect("mysql-3 terminated");
    let term4 =
        first_index(&history, |e| began_terminating(e, "mysql-4")).expect("mysql-4 terminated");
    assert!(
        term4 < term3,
        "scale-down must start with the highest ordinal"
    );
    assert!(
        gone4 < term3,
        "mysql-3 must not terminate before mysql-4 is gone"
    );
    for i in 3..5 {
        assert!(
            sim.pvc(&format!("mysql-persistent-storage-mysql-{i}"))
                .is_some(),
            "claim {i} retained"
        );
    }

    // --- delete a pod: same name, same claim, data kept ------------------------------
    let old = sim.pod("mysql-1").expect("mysql-1");
    let old_claim_uid =
        obj::uid(&sim.pvc("mysql-persistent-storage-mysql-1").expect("claim")).to_string();
    sim.store.delete(
        ResourceKind::Pod,
        Some(NS),
        "mysql-1",
        &DeleteOptions::default(),
    )?;
    let recreated = sim
        .wait_until("mysql-1 recreated and Ready", READY_TIMEOUT, |s| {
            match s.pod("mysql-1") {
                Some(p) if obj::uid(&p) != obj::uid(&old) && obj::running_and_ready(&p) => Ok(p),
                other => Err(summary(&other.into_iter().collect::<Vec<_>>())),
            }
        })
        .await?;
    assert_eq!(
        obj::str_at(
            &recreated,
            "/spec/volumes/0/persistentVolumeClaim/claimName"
        ),
        Some("mysql-persistent-storage-mysql-1")
    );
    assert_eq!(
        obj::uid(&sim.pvc("mysql-persistent-storage-mysql-1").expect("claim")),
        old_claim_uid,
        "same claim"
    );
    let rows = read_rows(&sim.pod_ip("mysql-1")?).await?;
    assert_eq!(rows, vec![(10, "on-mysql-1".to_string())]);

    // --- crash a container: restarted in place, data kept ----------------------------
    let before = sim.pod("mysql-0").expect("mysql-0");
    sim.runtime.crash_pod(NS, "mysql-0").await?;
    sim.wait_until(
        "mysql-0 restarted once and Ready",
        READY_TIMEOUT,
        |s| match s.pod("mysql-0") {
            Some(p) if restart_count(&p) == 1 && obj::running_and_ready(&p) => Ok(()),
            other => Err(summary(&other.into_iter().collect::<Vec<_>>())),
        },
    )
    .await?;
    assert_eq!(
        obj::uid(&sim.pod("mysql-0").expect("pod")),
        obj::uid(&before),
        "restarted in place"
    );
    assert_eq!(
        read_rows(&ip0).await?,
        vec![(1, "before-anything".to_string())]
    );
    let err = sim
        .runtime
        .crash_pod(NS, "nope")
        .await
        .expect_err("unknown pod");
    assert!(err.is_not_found(), "{err}");

    // --- node stop / start -------------------------------------------------------------
    let victim = sim.pod("mysql-2").expect("mysql-2");
    let node = obj::node_name(&victim).expect("scheduled").to_string();
    let ip2 = sim.pod_ip("mysql-2")?;
    write_row(&ip2, 20, "on-mysql-2").await?;
    sim.runtime.stop_node(&node).await?;
    sim.wait_until(
        "node NotReady and mysql-2 Ready=False",
        Duration::from_secs(30),
        |s| {
            let n = s.store.get(ResourceKind::Node, None, &node).expect("node");
            let p = s.pod("mysql-2");
            match (obj::condition_status(&n, "Ready"), &p) {
                (Some("Unknown"), Some(p)) if !obj::pod_ready(p) => Ok(()),
                (status, _) => Err(format!(
                    "node Ready={status:?}, pods {}",
                    summary(&s.pods())
                )),
            }
        },
    )
    .await?;
    let still = sim
        .pod("mysql-2")
        .expect("pod object stays while its node is down");
    assert_eq!(
        obj::uid(&still),
        obj::uid(&victim),
        "at-most-one: no replacement pod"
    );
    assert!(
        read_rows_quick(&ip2).await.is_err(),
        "mysqld on a stopped node is dead"
    );
    sim.runtime.start_node(&node).await?;
    sim.wait_until(
        "mysql-2 Ready again after node start",
        READY_TIMEOUT,
        |s| match s.pod("mysql-2") {
            Some(p)
                if obj::running_and_ready(&p)
                    && restart_count(&p) == restart_count(&victim) + 1 =>
            {
                Ok(())
            }
            other => Err(summary(&other.into_iter().collect::<Vec<_>>())),
        },
    )
    .await?;
    let n = sim
        .store
        .get(ResourceKind::Node, None, &node)
        .expect("node");
    assert_eq!(obj::condition_status(&n, "Ready"), Some("True"));
    assert_eq!(
        obj::uid(&sim.pod("mysql-2").expect("pod")),
        obj::uid(&victim)
    );
    assert_eq!(read_rows(&ip2).await?, vec![(20, "on-mysql-2".to_string())]);

    // --- shutdown leaves nothing running ------------------------------------------------
    let pids = sim.runtime.pids();
    for pid in &pids {
        println!(
            "measure: mariadbd pid {pid} RSS {} KiB (after use)",
            rss_kib(*pid).unwrap_or(0)
        );
    }
    assert_eq!(pids.len(), 3);
    sim.runtime.shutdown().await;
    sim.runtime.shutdown().await;
    let leftover: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        leftover.is_empty(),
        "mariadbd still running after shutdown: {leftover:?}"
    );
    assert!(
        processes_under(sim.dir.path()).is_empty(),
        "no process of this sim survives"
    );
    Ok(())
}

/// A single connection attempt (no retry), to show a server is down.
async fn read_rows_quick(ip: &str) -> anyhow::Result<()> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(ip)
        .tcp_port(3306)
        .user(Some("root"))
        .pass(Some(PASSWORD))
        .prefer_socket(false);
    let conn = tokio::time::timeout(Duration::from_secs(2), mysql_async::Conn::new(opts)).await??;
    drop(conn);
    Ok(())
}

/// Pod names, hostnames, subdomain, labels, claims, PV pinning and endpoints.
fn check_identity(sim: &Sim, n: usize) -> anyhow::Result<()> {
    let slices = sim.store.list(ResourceKind::EndpointSlice, Some(NS));
    assert_eq!(slices.len(), 1, "one slice for the headless service");
    let endpoints = obj::array(&slices[0], "/endpoints");
    let mut ips = std::collections::BTreeSet::new();
    for i in 0..n {
        let name = format!("mysql-{i}");
        let pod = sim.pod(&name).expect("pod");
        assert_eq!(obj::str_at(&pod, "/spec/hostname"), Some(name.as_str()));
        assert_eq!(obj::str_at(&pod, "/spec/subdomain"), Some("mysql"));
        assert_eq!(
            obj::labels(&pod).get("statefulset.kubernetes.io/pod-name"),
            Some(&name)
        );
        assert_eq!(
            obj::labels(&pod).get("apps.kubernetes.io/pod-index"),
            Some(&i.to_string())
        );
        assert!(ips.insert(sim.pod_ip(&name)?), "distinct pod IPs");
        let claim = sim
            .pvc(&format!("mysql-persistent-storage-mysql-{i}"))
            .expect("claim");
        assert_eq!(obj::str_at(&claim, "/status/phase"), Some("Bound"));
        let pv_name = obj::str_at(&claim, "/spec/volumeName").expect("bound volume");
        let pv = sim
            .store
            .get(ResourceKind::PersistentVolume, None, pv_name)
            .expect("pv");
        let pinned = obj::str_at(
            &pv,
            "/spec/nodeAffinity/required/nodeSelectorTerms/0/matchExpressions/0/values/0",
        );
        assert_eq!(pinned, obj::node_name(&pod), "PV pinned to the pod's node");
        assert_eq!(
            obj::str_at(&pv, "/spec/persistentVolumeReclaimPolicy"),
            Some("Delete")
        );
        let ep = endpoints
            .iter()
            .find(|e| obj::str_at(e, "/targetRef/name") == Some(name.as_str()))
            .expect("endpoint");
        assert_eq!(obj::str_at(ep, "/hostname"), Some(name.as_str()));
    }
    Ok(())
}

/// A pod whose image the sim cannot run says so in its status and stays Pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_image_is_reported_in_pod_status() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    sim.apply_documented(|sts| {
        obj::set_at(sts, "/spec/replicas", serde_json::json!(1));
        obj::set_at(
            sts,
            "/spec/template/spec/containers/0/image",
            serde_json::json!("nginx:1.25"),
        );
    })?;
    let message = sim
        .wait_until(
            "mysql-0 waiting with ErrImagePull",
            Duration::from_secs(30),
            |s| {
                let pod = s.pod("mysql-0");
                let reason = pod.as_ref().and_then(|p| {
                    obj::str_at(p, "/status/containerStatuses/0/state/waiting/reason")
                });
                match (reason, &pod) {
                    (Some("ErrImagePull"), Some(p)) => Ok(obj::str_at(
                        p,
                        "/status/containerStatuses/0/state/waiting/message",
                    )
                    .unwrap_or_default()
                    .to_string()),
                    _ => Err(summary(&pod.into_iter().collect::<Vec<_>>())),
                }
            },
        )
        .await?;
    assert!(
        message.contains("nginx:1.25") && message.contains("mysql"),
        "{message}"
    );
    let pod = sim.pod("mysql-0").expect("pod");
    assert_eq!(obj::pod_phase(&pod), "Pending");
    assert!(!obj::pod_ready(&pod));
    assert!(sim.runtime.pids().is_empty());
    sim.runtime.shutdown().await;
    Ok(())
}

/// Namespace deletion removes everything in it, stops the processes and reclaims the PVs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_cleans_up_pods_claims_and_volumes() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    sim.apply_documented(|sts| obj::set_at(sts, "/spec/replicas", serde_json::json!(1)))?;
    sim.wait_ready(1, READY_TIMEOUT).await?;
    let pv_dir = sim.dir.path().join("state").join("pvs");
    assert_eq!(std::fs::read_dir(&pv_dir)?.count(), 1);
    sim.store
        .delete(ResourceKind::Namespace, None, NS, &DeleteOptions::default())?;
    sim.wait_until(
        "namespace, pods and PVs gone",
        Duration::from_secs(60),
        |s| {
            let ns = s.store.get(ResourceKind::Namespace, None, NS);
            let pvs = s.store.list(ResourceKind::PersistentVolume, None);
            if ns.is_none() && pvs.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "ns present={} pvs={} pods={}",
                    ns.is_some(),
                    pvs.len(),
                    summary(&s.pods())
                ))
            }
        },
    )
    .await?;
    assert_eq!(
        std::fs::read_dir(&pv_dir)?.count(),
        0,
        "PV directory removed (reclaimPolicy Delete)"
    );
    assert!(sim.runtime.pids().is_empty());
    sim.runtime.shutdown().await;
    Ok(())
}

/// Processes never outlive the sim: dropping the tokio runtime without `shutdown()` (a
/// crashed or killed sim) still takes every mariadbd down.
#[test]
fn dropped_runtime_leaves_no_mariadbd_behind() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (pids, dir) = rt.block_on(async {
        let sim = Sim::start(&[]).await?;
        sim.apply_documented(|sts| obj::set_at(sts, "/spec/replicas", serde_json::json!(2)))?;
        sim.wait_ready(2, READY_TIMEOUT).await?;
        let pids = sim.runtime.pids();
        anyhow::Ok((pids, sim.dir))
    })?;
    assert_eq!(pids.len(), 2);
    drop(rt);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive_now: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if alive_now.is_empty() && processes_under(dir.path()).is_empty() {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "mariadbd still alive 10s after the runtime was dropped: {alive_now:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A settled sim does not churn the store (no controller fights another).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_sim_is_quiet() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    sim.apply_documented(|sts| obj::set_at(sts, "/spec/replicas", serde_json::json!(2)))?;
    sim.wait_ready(2, READY_TIMEOUT).await?;
    sim.wait_until(
        "endpoint slice with 2 ready endpoints",
        Duration::from_secs(10),
        |s| {
            let slices = s.store.list(ResourceKind::EndpointSlice, Some(NS));
            let ready = slices
                .iter()
                .flat_map(|sl| obj::array(sl, "/endpoints"))
                .filter(|e| e.pointer("/conditions/ready") == Some(&serde_json::json!(true)))
                .count();
            if ready == 2 {
                Ok(())
            } else {
                Err(format!("{ready} ready endpoints"))
            }
        },
    )
    .await?;
    let sts_settled = |s: &Sim| {
        let sts = s
            .store
            .get(ResourceKind::StatefulSet, Some(NS), "mysql")
            .expect("sts");
        if sts.pointer("/status/readyReplicas") == Some(&serde_json::json!(2)) {
            Ok(())
        } else {
            Err(format!("{:?}", sts.get("status")))
        }
    };
    sim.wait_until(
        "StatefulSet status settled",
        Duration::from_secs(10),
        sts_settled,
    )
    .await?;
    let before = sim.store.current_resource_version();
    // An observation window, not a wait for a state: nothing may change during it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let changes = sim
        .store
        .events_since(ResourceKind::Pod, None, before)?
        .len()
        + sim
            .store
            .events_since(ResourceKind::StatefulSet, None, before)?
            .len()
        + sim
            .store
            .events_since(ResourceKind::PersistentVolumeClaim, None, before)?
            .len()
        + sim
            .store
            .events_since(ResourceKind::EndpointSlice, None, before)?
            .len()
        + sim
            .store
            .events_since(ResourceKind::Node, None, before)?
            .len();
    assert_eq!(changes, 0, "store churned while idle");
    sim.runtime.shutdown().await;
    Ok(())
}

/// persistentVolumeClaimRetentionPolicy Delete/Delete: scale-down deletes the removed
/// ordinal's claim once its pod is gone; deleting the set deletes the remaining claims and
/// their PVs. The default (Retain) keeps claims when the set is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_policy_delete_and_retain() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    sim.apply_documented(|sts| {
        obj::set_at(sts, "/spec/replicas", serde_json::json!(2));
        obj::set_at(
            sts,
            "/spec/persistentVolumeClaimRetentionPolicy",
            serde_json::json!({"whenScaled": "Delete", "whenDeleted": "Delete"}),
        );
    })?;
    sim.wait_ready(2, READY_TIMEOUT).await?;
    sim.scale(1)?;
    sim.wait_until(
        "claim of mysql-1 deleted after scale-down",
        READY_TIMEOUT,
        |s| match s.pvc("mysql-persistent-storage-mysql-1") {
            None => Ok(()),
            Some(c) => Err(format!("claim present, owners {:?}", obj::owner_refs(&c))),
        },
    )
    .await?;
    assert!(
        sim.pvc("mysql-persistent-storage-mysql-0").is_some(),
        "in-range claim kept"
    );
    sim.store.delete(
        ResourceKind::StatefulSet,
        Some(NS),
        "mysql",
        &DeleteOptions::default(),
    )?;
    sim.wait_until(
        "pods, claims and PVs gone after the set is deleted",
        READY_TIMEOUT,
        |s| {
            let pvcs = s
                .store
                .list(ResourceKind::PersistentVolumeClaim, Some(NS))
                .len();
            let pvs = s.store.list(ResourceKind::PersistentVolume, None).len();
            let pods = s.pods();
            if pvcs == 0 && pvs == 0 && pods.is_empty() {
                Ok(())
            } else {
                Err(format!("{pvcs} claims, {pvs} PVs, pods {}", summary(&pods)))
            }
        },
    )
    .await?;
    sim.runtime.shutdown().await;

    let retain = Sim::start(&[]).await?;
    retain.apply_documented(|sts| obj::set_at(sts, "/spec/replicas", serde_json::json!(1)))?;
    retain.wait_ready(1, READY_TIMEOUT).await?;
    retain.store.delete(
        ResourceKind::StatefulSet,
        Some(NS),
        "mysql",
        &DeleteOptions::default(),
    )?;
    retain
        .wait_until("pod gone after the set is deleted", READY_TIMEOUT, |s| {
            let pods = s.pods();
            if pods.is_empty() {
                Ok(())
            } else {
                Err(summary(&pods))
            }
        })
        .await?;
    let claim = retain
        .pvc("mysql-persistent-storage-mysql-0")
        .expect("Retain keeps the claim");
    assert!(!obj::is_terminating(&claim));
    retain.runtime.shutdown().await;
    Ok(())
}

/// Force deletion (grace 0) removes the pod object at once; the kubelet kills the orphaned
/// process and the controller recreates the pod with the same claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_deleted_pod_process_is_killed_and_pod_recreated() -> anyhow::Result<()> {
    let sim = Sim::start(&[]).await?;
    sim.apply_documented(|sts| obj::set_at(sts, "/spec/replicas", serde_json::json!(1)))?;
    sim.wait_ready(1, READY_TIMEOUT).await?;
    let old = sim.pod("mysql-0").expect("pod");
    let old_pids = sim.runtime.pids();
    let force = DeleteOptions {
        grace_period_seconds: Some(0),
        ..DeleteOptions::default()
    };
    sim.store
        .delete(ResourceKind::Pod, Some(NS), "mysql-0", &force)?;
    sim.wait_until(
        "old process dead and mysql-0 recreated Ready",
        READY_TIMEOUT,
        |s| {
            let dead = old_pids.iter().all(|p| !alive(*p));
            match s.pod("mysql-0") {
                Some(p) if dead && obj::uid(&p) != obj::uid(&old) && obj::running_and_ready(&p) => {
                    Ok(())
                }
                other => Err(format!(
                    "old process dead={dead}, pod {}",
                    summary(&other.into_iter().collect::<Vec<_>>())
                )),
            }
        },
    )
    .await?;
    let claim = obj::str_at(
        &sim.pod("mysql-0").expect("pod"),
        "/spec/volumes/0/persistentVolumeClaim/claimName",
    )
    .map(str::to_string);
    assert_eq!(claim.as_deref(), Some("mysql-persistent-storage-mysql-0"));
    sim.runtime.shutdown().await;
    Ok(())
}
