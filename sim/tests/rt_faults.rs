//! Each fault makes the sim break exactly the promise it names, observably.

mod rt_support;

use std::time::Duration;

use anyhow::Context;
use kube_sim::config::Fault;
use kube_sim::controllers::obj;
use kube_sim::store::{DeleteOptions, ResourceKind};
use mysql_async::prelude::Queryable;
use rt_support::*;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

fn replicas(n: i64) -> impl FnOnce(&mut serde_json::Value) {
    move |sts| obj::set_at(sts, "/spec/replicas", json!(n))
}

/// names:random: pods get random suffixes instead of ordinals (one per ordinal index).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_random_breaks_ordinal_names() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::NamesRandom]).await?;
    sim.apply_documented(replicas(2))?;
    let names = sim
        .wait_until("2 ready pods", TIMEOUT, |s| {
            let pods = s.pods();
            let ready = pods.iter().filter(|p| obj::running_and_ready(p)).count();
            if pods.len() == 2 && ready == 2 {
                Ok(pods
                    .iter()
                    .map(|p| obj::name(p).to_string())
                    .collect::<Vec<_>>())
            } else {
                Err(summary(&pods))
            }
        })
        .await?;
    for name in &names {
        let suffix = name.strip_prefix("mysql-").expect("set prefix");
        assert!(
            suffix.parse::<u32>().is_err(),
            "{name} should not end in an ordinal"
        );
    }
    sim.runtime.shutdown().await;
    Ok(())
}

/// scale-up:parallel: a higher ordinal is created before its predecessor is Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_parallel_breaks_ordered_ready() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::ScaleUpParallel]).await?;
    let rv = sim.apply_documented(replicas(3))?;
    sim.wait_ready(3, TIMEOUT).await?;
    let history = sim.pod_history(rv);
    let ready0 = first_index(&history, |e| became_ready(e, "mysql-0")).expect("mysql-0 ready");
    let added2 = first_index(&history, |e| is_added(e, "mysql-2")).expect("mysql-2 created");
    assert!(
        added2 < ready0,
        "with the fault mysql-2 is created before mysql-0 is Ready"
    );
    sim.runtime.shutdown().await;
    Ok(())
}

/// scale-down:forward: the lowest condemned ordinal is deleted first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_forward_breaks_reverse_order() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::ScaleDownForward]).await?;
    sim.apply_documented(replicas(3))?;
    sim.wait_ready(3, TIMEOUT).await?;
    let rv = sim.store.current_resource_version();
    sim.scale(1)?;
    sim.wait_ready(1, TIMEOUT).await?;
    let history = sim.pod_history(rv);
    let term1 =
        first_index(&history, |e| began_terminating(e, "mysql-1")).expect("mysql-1 terminated");
    let term2 =
        first_index(&history, |e| began_terminating(e, "mysql-2")).expect("mysql-2 terminated");
    assert!(term1 < term2, "with the fault mysql-1 goes before mysql-2");
    sim.runtime.shutdown().await;
    Ok(())
}

/// pvc:delete-on-scale-down: the claim of a removed ordinal is deleted despite Retain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pvc_delete_on_scale_down_breaks_retention() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::PvcDeleteOnScaleDown]).await?;
    sim.apply_documented(replicas(2))?;
    sim.wait_ready(2, TIMEOUT).await?;
    sim.scale(1)?;
    sim.wait_until("claim of mysql-1 deleted", TIMEOUT, |s| {
        match s.pvc("mysql-persistent-storage-mysql-1") {
            None => Ok(()),
            Some(c) => Err(format!(
                "claim still there, terminating={}",
                obj::is_terminating(&c)
            )),
        }
    })
    .await?;
    assert!(sim.pvc("mysql-persistent-storage-mysql-0").is_some());
    sim.runtime.shutdown().await;
    Ok(())
}

/// pvc:retain-despite-policy: with `whenScaled: Delete` the removed ordinal's claim is
/// never handed to its pod (upstream does that before deleting the pod), so it outlives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pvc_retain_despite_policy_breaks_when_scaled_delete() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::PvcRetainDespitePolicy]).await?;
    sim.apply_documented(|sts| {
        replicas(2)(sts);
        obj::set_at(
            sts,
            "/spec/persistentVolumeClaimRetentionPolicy",
            json!({"whenScaled": "Delete", "whenDeleted": "Retain"}),
        );
    })?;
    sim.wait_ready(2, TIMEOUT).await?;
    sim.scale(1)?;
    sim.wait_until("mysql-1 gone", TIMEOUT, |s| match s.pod("mysql-1") {
        None => Ok(()),
        Some(p) => Err(summary(&[p])),
    })
    .await?;
    let claim = sim
        .pvc("mysql-persistent-storage-mysql-1")
        .context("the claim of the removed ordinal should be kept under the fault")?;
    assert!(
        obj::owner_refs(&claim).is_empty(),
        "the claim should not be owned by anything: {claim}"
    );
    sim.runtime.shutdown().await;
    Ok(())
}

/// Waits for `n` ready endpoints in the namespace's EndpointSlices and returns them.
async fn ready_endpoints(sim: &Sim, n: usize) -> anyhow::Result<Vec<Value>> {
    sim.wait_until(
        &format!("{n} ready endpoints for Service mysql"),
        TIMEOUT,
        |s| {
            let eps: Vec<Value> = s
                .store
                .list(ResourceKind::EndpointSlice, Some(NS))
                .iter()
                .flat_map(|slice| obj::array(slice, "/endpoints").to_vec())
                .filter(|ep| ep["conditions"]["ready"] == true)
                .collect();
            if eps.len() == n {
                Ok(eps)
            } else {
                Err(format!("{} ready endpoints", eps.len()))
            }
        },
    )
    .await
}

/// dns:no-hostname: the headless Service's EndpointSlice lists every ready pod, but none
/// with its hostname, so no ordinal has a stable DNS name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_no_hostname_breaks_per_ordinal_dns_names() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::DnsNoHostname]).await?;
    sim.apply_documented(replicas(2))?;
    sim.wait_ready(2, TIMEOUT).await?;
    for ep in ready_endpoints(&sim, 2).await? {
        assert!(ep.get("hostname").is_none(), "hostname published: {ep}");
    }
    assert_eq!(
        obj::str_at(&sim.pod("mysql-0").context("pod")?, "/spec/hostname"),
        Some("mysql-0"),
        "the pod itself keeps its hostname: only DNS is broken"
    );
    sim.runtime.shutdown().await;
    Ok(())
}

/// pods:no-hostname: pods run and are Ready without hostname or subdomain, and so get no
/// DNS name either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_no_hostname_breaks_hostname_identity() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::PodsNoHostname]).await?;
    sim.apply_documented(replicas(2))?;
    sim.wait_ready(2, TIMEOUT).await?;
    let pod = sim.pod("mysql-1").context("pod")?;
    assert_eq!(obj::str_at(&pod, "/spec/hostname"), None, "{pod}");
    assert_eq!(obj::str_at(&pod, "/spec/subdomain"), None, "{pod}");
    for ep in ready_endpoints(&sim, 2).await? {
        assert!(ep.get("hostname").is_none(), "hostname published: {ep}");
    }
    sim.runtime.shutdown().await;
    Ok(())
}

/// pods:no-ordinal-labels: pods run, are Ready and keep their hostnames, but carry
/// neither the pod-name nor the pod-index label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_no_ordinal_labels_breaks_per_ordinal_selection() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::PodsNoOrdinalLabels]).await?;
    sim.apply_documented(replicas(2))?;
    sim.wait_ready(2, TIMEOUT).await?;
    for name in ["mysql-0", "mysql-1"] {
        let pod = sim.pod(name).context("pod")?;
        let labels = obj::labels(&pod);
        assert!(
            !labels.contains_key("statefulset.kubernetes.io/pod-name")
                && !labels.contains_key("apps.kubernetes.io/pod-index"),
            "ordinal labels present: {pod}"
        );
        assert_eq!(obj::str_at(&pod, "/spec/hostname"), Some(name), "{pod}");
    }
    assert_eq!(
        ready_endpoints(&sim, 2).await?.len(),
        2,
        "DNS is unaffected"
    );
    sim.runtime.shutdown().await;
    Ok(())
}

/// pvc:new-on-recreate: a recreated pod gets a new, empty claim: the row is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pvc_new_on_recreate_loses_data() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::PvcNewOnRecreate]).await?;
    sim.apply_documented(replicas(1))?;
    sim.wait_ready(1, TIMEOUT).await?;
    write_row(&sim.pod_ip("mysql-0")?, 1, "lost").await?;
    let old_pod = obj::uid(&sim.pod("mysql-0").expect("pod")).to_string();
    let old_claim =
        obj::uid(&sim.pvc("mysql-persistent-storage-mysql-0").expect("claim")).to_string();
    sim.store.delete(
        ResourceKind::Pod,
        Some(NS),
        "mysql-0",
        &DeleteOptions::default(),
    )?;
    sim.wait_until("mysql-0 recreated and Ready", TIMEOUT, |s| {
        match s.pod("mysql-0") {
            Some(p) if obj::uid(&p) != old_pod && obj::running_and_ready(&p) => Ok(()),
            other => Err(summary(&other.into_iter().collect::<Vec<_>>())),
        }
    })
    .await?;
    let claim = sim.pvc("mysql-persistent-storage-mysql-0").expect("claim");
    assert_ne!(obj::uid(&claim), old_claim, "a fresh claim");
    assert!(
        read_rows(&sim.pod_ip("mysql-0")?).await?.is_empty(),
        "the data is gone"
    );
    sim.runtime.shutdown().await;
    Ok(())
}

/// volume:wipe-on-restart: after a container crash the data dir is re-initialised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_wipe_on_restart_loses_data() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::VolumeWipeOnRestart]).await?;
    sim.apply_documented(replicas(1))?;
    sim.wait_ready(1, TIMEOUT).await?;
    let ip = sim.pod_ip("mysql-0")?;
    write_row(&ip, 1, "lost").await?;
    sim.runtime.crash_pod(NS, "mysql-0").await?;
    wait_restarted_once(&sim, "mysql-0").await?;
    assert!(read_rows(&ip).await?.is_empty(), "the data is gone");
    sim.runtime.shutdown().await;
    Ok(())
}

/// pod:zombie-on-force-delete: after a force deletion the old container keeps running, so a
/// connection opened to the old pod still commits rows after the pod object is gone and
/// its replacement runs: two processes serve one identity. It still dies at shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zombie_on_force_delete_keeps_serving_the_old_identity() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::PodZombieOnForceDelete]).await?;
    sim.apply_documented(replicas(1))?;
    sim.wait_ready(1, TIMEOUT).await?;
    let old_ip = sim.pod_ip("mysql-0")?;
    let old_uid = obj::uid(&sim.pod("mysql-0").expect("pod")).to_string();
    let mut conn = connect(&old_ip).await?;
    conn.query_drop("CREATE DATABASE IF NOT EXISTS conformance")
        .await?;
    conn.query_drop(
        "CREATE TABLE conformance.rows (id BIGINT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB",
    )
    .await?;
    conn.exec_drop("INSERT INTO conformance.rows VALUES (?, ?)", (1, "before"))
        .await?;

    sim.store.delete(
        ResourceKind::Pod,
        Some(NS),
        "mysql-0",
        &DeleteOptions {
            grace_period_seconds: Some(0),
            ..DeleteOptions::default()
        },
    )?;
    let replacement = sim
        .wait_until(
            "mysql-0 replaced by a new uid with its container running",
            TIMEOUT,
            |s| match s.pod("mysql-0") {
                Some(p) if obj::uid(&p) != old_uid && obj::pod_phase(&p) == "Running" => Ok(p),
                other => Err(summary(&other.into_iter().collect::<Vec<_>>())),
            },
        )
        .await?;
    assert_ne!(
        obj::str_at(&replacement, "/status/podIP"),
        Some(old_ip.as_str()),
        "the zombie keeps its address"
    );
    assert_eq!(
        sim.runtime.pids().len(),
        2,
        "the zombie and the replacement's container both run"
    );

    conn.exec_drop("INSERT INTO conformance.rows VALUES (?, ?)", (2, "zombie"))
        .await
        .context("the zombie should still acknowledge writes on its open connection")?;
    let committed: Vec<(i64, String)> = conn
        .query("SELECT id, v FROM conformance.rows ORDER BY id")
        .await?;
    assert_eq!(
        committed,
        vec![(1, "before".to_string()), (2, "zombie".to_string())]
    );
    drop(conn);

    let pids = sim.runtime.pids();
    sim.runtime.shutdown().await;
    let leftover: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        leftover.is_empty(),
        "the zombie must die at shutdown: {leftover:?}"
    );
    assert!(processes_under(sim.dir.path()).is_empty());
    Ok(())
}

/// restart:new-identity: a crashed container is not restarted in place; the ordinal comes
/// back as a new pod (a new uid) on the same claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_new_identity_replaces_the_pod_on_a_crash() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::RestartNewIdentity]).await?;
    sim.apply_documented(replicas(1))?;
    sim.wait_ready(1, TIMEOUT).await?;
    let old_uid = obj::uid(&sim.pod("mysql-0").expect("pod")).to_string();
    sim.runtime.crash_pod(NS, "mysql-0").await?;
    let back = sim
        .wait_until("mysql-0 back and Ready", TIMEOUT, |s| {
            match s.pod("mysql-0") {
                Some(p) if obj::uid(&p) != old_uid && obj::running_and_ready(&p) => Ok(p),
                other => Err(summary(&other.into_iter().collect::<Vec<_>>())),
            }
        })
        .await?;
    assert_eq!(
        back.pointer("/status/containerStatuses/0/restartCount"),
        Some(&json!(0)),
        "a new pod, not a restarted container"
    );
    sim.runtime.shutdown().await;
    Ok(())
}

/// mysql:interrupted-init: the pod runs and is Ready, mysqld serves, but root over TCP is
/// refused, and stays refused after a restart (the data dir counts as initialised).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_interrupted_init_never_accepts_root_over_tcp() -> anyhow::Result<()> {
    let sim = Sim::start(&[Fault::MysqlInterruptedInit]).await?;
    sim.apply_documented(replicas(1))?;
    sim.wait_ready(1, TIMEOUT).await?;
    let ip = sim.pod_ip("mysql-0")?;
    let first = root_refusal(&ip).await?;
    assert!(first.contains("not allowed to connect"), "{first}");
    sim.runtime.crash_pod(NS, "mysql-0").await?;
    wait_restarted_once(&sim, "mysql-0").await?;
    let again = root_refusal(&ip).await?;
    assert!(again.contains("not allowed to connect"), "{again}");
    sim.runtime.shutdown().await;
    Ok(())
}

/// The server's answer to a root login over TCP, once mysqld answers at all (connection
/// refused while it starts is retried, bounded); an error if root gets in.
async fn root_refusal(ip: &str) -> anyhow::Result<String> {
    use backon::{ExponentialBuilder, Retryable};
    let opts = root_over_tcp(ip);
    let attempt = || async {
        match mysql_async::Conn::new(opts.clone()).await {
            Ok(_) => Ok(None),
            Err(mysql_async::Error::Server(e)) => Ok(Some(e.message)),
            Err(e) => Err(e),
        }
    };
    let last = std::sync::Mutex::new(String::from("no attempt"));
    let answer = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_millis(500))
                .without_max_times(),
        )
        .notify(|e: &mysql_async::Error, _| {
            *last.lock().unwrap_or_else(|p| p.into_inner()) = e.to_string();
        });
    let bound = Duration::from_secs(30);
    let answered = tokio::time::timeout(bound, answer).await;
    let last = last.into_inner().unwrap_or_else(|p| p.into_inner());
    match answered {
        Ok(Ok(Some(refusal))) => Ok(refusal),
        Ok(Ok(None)) => anyhow::bail!("root logged in over TCP at {ip}"),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => anyhow::bail!(
            "mysqld at {ip}:3306 never answered a root login within {bound:?}; last: {last}"
        ),
    }
}

/// Waits until `pod` runs again, Ready, after its first container restart.
async fn wait_restarted_once(sim: &Sim, pod: &str) -> anyhow::Result<()> {
    sim.wait_until(&format!("{pod} restarted"), TIMEOUT, |s| match s.pod(pod) {
        Some(p)
            if p.pointer("/status/containerStatuses/0/restartCount") == Some(&json!(1))
                && obj::running_and_ready(&p) =>
        {
            Ok(())
        }
        other => Err(summary(&other.into_iter().collect::<Vec<_>>())),
    })
    .await
}
