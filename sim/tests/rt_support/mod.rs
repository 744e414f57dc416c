//! Shared helpers for the runtime integration tests: a sim (store + runtime, no HTTP)
//! with the documented manifests, event-driven bounded waits, and a MySQL client.
#![allow(dead_code)]

use backon::{ExponentialBuilder, Retryable};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kube_sim::config::{Fault, Faults, SimConfig};
use kube_sim::controllers::obj;
use kube_sim::runtime::{self, RuntimeHandle};
use kube_sim::store::{EventType, ResourceKind, Store, StoreEvent};
use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

pub const NS: &str = "rt";
pub const PASSWORD: &str = "my-secret-pw";

pub struct Sim {
    pub store: Arc<Store>,
    pub runtime: RuntimeHandle,
    pub dir: tempfile::TempDir,
    pub started_in: Duration,
}

impl Sim {
    pub async fn start(faults: &[Fault]) -> anyhow::Result<Sim> {
        init_logging();
        let dir = tempfile::tempdir().context("tempdir")?;
        let mut f = Faults::none();
        faults.iter().for_each(|x| f.insert(*x));
        let listen: SocketAddr = "127.0.0.1:0".parse()?;
        let config = SimConfig {
            listen,
            nodes: 3,
            state_dir: dir.path().join("state"),
            kubeconfig: None,
            faults: f,
            mariadbd: "/usr/sbin/mariadbd".into(),
            install_db: "/usr/bin/mariadb-install-db".into(),
            node_grace: Duration::from_secs(2),
            keep_state: false,
        };
        let store = Store::new();
        let t0 = Instant::now();
        let runtime = runtime::start(store.clone(), Arc::new(config))
            .await
            .context("start runtime")?;
        Ok(Sim {
            store,
            runtime,
            dir,
            started_in: t0.elapsed(),
        })
    }

    /// Creates the namespace, the documented Service and StatefulSet (with `edit` applied
    /// to the StatefulSet first). Returns the store's resource version before creation.
    pub fn apply_documented(&self, edit: impl FnOnce(&mut Value)) -> anyhow::Result<u64> {
        let rv = self.store.current_resource_version();
        self.store.create(
            ResourceKind::Namespace,
            None,
            json!({"metadata": {"name": NS}}),
        )?;
        let svc = manifest("service.yaml")?;
        self.store.create(ResourceKind::Service, Some(NS), svc)?;
        let mut sts = manifest("statefulset.yaml")?;
        edit(&mut sts);
        self.store
            .create(ResourceKind::StatefulSet, Some(NS), sts)?;
        Ok(rv)
    }

    pub fn pod(&self, name: &str) -> Option<Value> {
        self.store.get(ResourceKind::Pod, Some(NS), name)
    }

    pub fn pvc(&self, name: &str) -> Option<Value> {
        self.store
            .get(ResourceKind::PersistentVolumeClaim, Some(NS), name)
    }

    pub fn pods(&self) -> Vec<Value> {
        self.store.list(ResourceKind::Pod, Some(NS))
    }

    pub fn scale(&self, replicas: i64) -> anyhow::Result<()> {
        self.store
            .mutate(ResourceKind::StatefulSet, Some(NS), "mysql", |s| {
                obj::set_at(s, "/spec/replicas", json!(replicas));
            })?;
        Ok(())
    }

    /// Waits, event-driven and bounded, until `check` returns Ok; the error names what was
    /// awaited and the last state `check` described.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Sim) -> Result<T, String>,
    ) -> anyhow::Result<T> {
        let mut events = self.store.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            let last = match check(self) {
                Ok(v) => return Ok(v),
                Err(state) => state,
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                bail!("timed out after {timeout:?} waiting for {what}; last state: {last}");
            }
            // Wake on the next store event; the cap only re-checks time-based conditions.
            let _ = tokio::time::timeout(remaining.min(Duration::from_millis(250)), events.recv())
                .await;
        }
    }

    /// Waits until exactly the pods `mysql-0..n` exist and are Running and Ready.
    pub async fn wait_ready(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        self.wait_until(
            &format!("{n} ready pods mysql-0..{}", n.saturating_sub(1)),
            timeout,
            |sim| {
                let pods = sim.pods();
                let ready = pods
                    .iter()
                    .filter(|p| obj::running_and_ready(p) && !obj::is_terminating(p))
                    .count();
                let names_ok =
                    (0..n).all(|i| pods.iter().any(|p| obj::name(p) == format!("mysql-{i}")));
                if pods.len() == n && ready == n && names_ok {
                    Ok(())
                } else {
                    Err(summary(&pods))
                }
            },
        )
        .await
    }

    /// Pod events in the namespace since `rv`, in the order the store emitted them.
    pub fn pod_history(&self, rv: u64) -> Vec<StoreEvent> {
        self.store
            .events_since(ResourceKind::Pod, Some(NS), rv)
            .unwrap_or_default()
    }

    pub fn pod_ip(&self, name: &str) -> anyhow::Result<String> {
        let pod = self
            .pod(name)
            .with_context(|| format!("pod {name} missing"))?;
        obj::str_at(&pod, "/status/podIP")
            .map(str::to_string)
            .with_context(|| format!("pod {name} has no IP"))
    }
}

/// Logs to the test output, filtered by RUST_LOG (default: warnings only).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

fn manifest(file: &str) -> anyhow::Result<Value> {
    let path = format!("{}/../manifests/mysql/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    serde_yaml::from_str(&text).with_context(|| format!("parse {path}"))
}

/// `name phase ready restarts` of each pod, for timeout messages.
pub fn summary(pods: &[Value]) -> String {
    let items: Vec<String> = pods
        .iter()
        .map(|p| {
            let restarts = p
                .pointer("/status/containerStatuses/0/restartCount")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let waiting =
                obj::str_at(p, "/status/containerStatuses/0/state/waiting/reason").unwrap_or("");
            format!(
                "{}[{} ready={} restarts={restarts}{}{}]",
                obj::name(p),
                obj::pod_phase(p),
                obj::pod_ready(p),
                if obj::is_terminating(p) {
                    " terminating"
                } else {
                    ""
                },
                if waiting.is_empty() {
                    String::new()
                } else {
                    format!(" {waiting}")
                }
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// Index of the first event matching `f`.
pub fn first_index(history: &[StoreEvent], f: impl Fn(&StoreEvent) -> bool) -> Option<usize> {
    history.iter().position(f)
}

pub fn is_added(e: &StoreEvent, name: &str) -> bool {
    e.event_type == EventType::Added && obj::name(&e.object) == name
}

pub fn became_ready(e: &StoreEvent, name: &str) -> bool {
    obj::name(&e.object) == name && obj::running_and_ready(&e.object)
}

pub fn began_terminating(e: &StoreEvent, name: &str) -> bool {
    obj::name(&e.object) == name && obj::is_terminating(&e.object)
}

pub fn is_deleted(e: &StoreEvent, name: &str) -> bool {
    e.event_type == EventType::Deleted && obj::name(&e.object) == name
}

/// Root over TCP to a pod's MariaDB (never its unix socket).
pub fn root_over_tcp(ip: &str) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(ip)
        .tcp_port(3306)
        .user(Some("root"))
        .pass(Some(PASSWORD))
        .prefer_socket(false)
}

/// Connects as root to a pod's MariaDB, retrying while it starts (Ready comes before
/// mysqld accepts connections, as on a real cluster without a readiness probe).
pub async fn connect(ip: &str) -> anyhow::Result<mysql_async::Conn> {
    let opts = root_over_tcp(ip);
    let attempt = || mysql_async::Conn::new(opts.clone());
    let retrying = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_millis(500))
                .without_max_times(),
        )
        .notify(
            |e: &mysql_async::Error, _| tracing::debug!(%ip, error = %e, "mysql not accepting yet"),
        );
    match tokio::time::timeout(Duration::from_secs(30), retrying).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(anyhow::anyhow!(
            "connect to mysql at {ip}:3306 within 30s: still refused"
        )),
    }
}

pub async fn write_row(ip: &str, id: i64, value: &str) -> anyhow::Result<()> {
    let mut conn = connect(ip).await?;
    conn.query_drop("CREATE DATABASE IF NOT EXISTS conformance")
        .await?;
    conn.query_drop("CREATE TABLE IF NOT EXISTS conformance.rows (id BIGINT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB").await?;
    conn.exec_drop(
        "INSERT INTO conformance.rows (id, v) VALUES (?, ?)",
        (id, value),
    )
    .await?;
    conn.disconnect().await?;
    Ok(())
}

/// Rows of `conformance.rows`; empty when the database does not exist.
pub async fn read_rows(ip: &str) -> anyhow::Result<Vec<(i64, String)>> {
    let mut conn = connect(ip).await?;
    let exists: Option<String> = conn
        .query_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'conformance'",
        )
        .await?;
    let rows = if exists.is_some() {
        conn.query("SELECT id, v FROM conformance.rows ORDER BY id")
            .await?
    } else {
        Vec::new()
    };
    conn.disconnect().await?;
    Ok(rows)
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Whether a pid is alive (not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Every pid whose command line mentions `dir` (the sim's state dir): its mariadbds.
pub fn processes_under(dir: &std::path::Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .filter(|pid| alive(*pid))
        .collect()
}
