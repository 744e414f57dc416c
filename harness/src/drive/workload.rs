//! The MySQL workload: writes identifiable rows to each ordinal (through a port-forward, or
//! straight to the pod IP where the harness shares the pods' network) and reads them back,
//! recording every write (invoked, then ok / fail / info), every read and every handshake
//! in the [`History`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client, ResourceExt};
use mysql_async::prelude::{Query, Queryable, WithParams};
use mysql_async::{Conn, OptsBuilder};
use rand::Rng;
use rand::distr::Alphanumeric;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::drive::portforward::PortForward;
use checks::history::{
    Backup, Connection, Event, History, ReadResult, Row, WriteEvent, row_checksum,
};

const DATABASE: &str = "conformance";
/// Rows per INSERT statement when restoring a backup.
const RESTORE_CHUNK: usize = 200;

/// The rows table's DDL (idempotent), as `prepare` and a restore create it.
pub fn rows_table_ddl() -> String {
    format!(
        "CREATE DATABASE IF NOT EXISTS {DATABASE}; \
         CREATE TABLE IF NOT EXISTS {DATABASE}.rows (\
           id BIGINT UNSIGNED PRIMARY KEY, ordinal INT UNSIGNED NOT NULL, \
           pod_uid VARCHAR(64) NOT NULL, payload VARCHAR(255) NOT NULL, \
           checksum INT UNSIGNED NOT NULL) ENGINE=InnoDB"
    )
}

/// How the workload reaches a pod's mysqld.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodReach {
    /// Through the API server's port-forward (kind, kubeconfig, sim).
    PortForward,
    /// Straight to `status.podIP` (upstream: the pods live in network namespaces this
    /// machine routes to; in-cluster: the harness runs in a pod).
    PodIp,
}
const MYSQL_PORT: u16 = 3306;

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("failed to connect to MySQL on pod {pod} within {timeout:?}: {last}")]
    Connect {
        pod: String,
        timeout: Duration,
        last: String,
    },
    #[error("failed to start a port-forward to pod {pod}")]
    PortForward {
        pod: String,
        #[source]
        source: crate::drive::portforward::PortForwardError,
    },
    #[error("failed to get pod {pod}")]
    Pod {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to {what} on pod {pod}")]
    Sql {
        what: &'static str,
        pod: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error(
        "writer to ordinal {pod_ordinal} did not reach {wanted} acknowledged writes within {timeout:?}; last counts: {last:?}"
    )]
    WriterStalled {
        pod_ordinal: u32,
        wanted: u64,
        timeout: Duration,
        last: WriteSummary,
    },
    #[error("timed out after {timeout:?} trying to {what} on pod {pod}")]
    Timeout {
        what: &'static str,
        pod: String,
        timeout: Duration,
    },
}

/// A password that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Bounds for the workload's waits.
#[derive(Clone, Copy, Debug)]
pub struct WorkloadTimeouts {
    /// How long to keep retrying a connection (mysqld may start after the pod is Ready).
    pub connect: Duration,
    /// How long one statement may take before its outcome is recorded as unknown.
    pub statement: Duration,
}

impl Default for WorkloadTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(120),
            statement: Duration::from_secs(10),
        }
    }
}

/// Counts of write outcomes, for logs; the History holds the truth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl fmt::Display for WriteSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} acknowledged, {} failed, {} indeterminate",
            self.ok, self.fail, self.info
        )
    }
}

impl WriteSummary {
    fn add(&mut self, outcome: &WriteEvent) {
        match outcome {
            WriteEvent::Ok { .. } => self.ok += 1,
            WriteEvent::Fail { .. } => self.fail += 1,
            WriteEvent::Info { .. } => self.info += 1,
            WriteEvent::Invoked { .. } => {}
        }
    }
}

/// Which pod held a name at one moment.
struct PodIdentity {
    uid: String,
    ip: Option<String>,
}

/// A connection to one ordinal's mysqld, and the uid of the pod that served it.
struct Session {
    conn: Conn,
    pod_uid: String,
}

struct Inner {
    history: History,
    pods: Api<Pod>,
    statefulset: String,
    password: Secret,
    timeouts: WorkloadTimeouts,
    next_id: AtomicU64,
    reach: PodReach,
    forwards: Mutex<HashMap<u32, Arc<PortForward>>>,
}

/// The workload for one StatefulSet; cheap to clone.
#[derive(Clone)]
pub struct Workload {
    inner: Arc<Inner>,
}

impl Workload {
    pub fn new(
        history: &History,
        client: &Client,
        namespace: &str,
        statefulset: &str,
        password: Secret,
        timeouts: WorkloadTimeouts,
        reach: PodReach,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                history: history.clone(),
                pods: Api::namespaced(client.clone(), namespace),
                statefulset: statefulset.to_string(),
                password,
                timeouts,
                next_id: AtomicU64::new(1),
                reach,
                forwards: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn pod_name(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.inner.statefulset)
    }

    /// Creates the database and the rows table on one ordinal (idempotent).
    pub async fn prepare(&self, ordinal: u32) -> Result<(), WorkloadError> {
        let mut s = self.connect(ordinal).await?;
        self.create_table(ordinal, &mut s).await
    }

    async fn create_table(&self, ordinal: u32, s: &mut Session) -> Result<(), WorkloadError> {
        self.run(ordinal, s, "create the rows table", rows_table_ddl())
            .await
    }

    /// Runs one statement (or several, `;`-separated) on a session, bounded by the
    /// statement timeout.
    async fn run(
        &self,
        ordinal: u32,
        s: &mut Session,
        what: &'static str,
        sql: String,
    ) -> Result<(), WorkloadError> {
        let pod = self.pod_name(ordinal);
        self.bounded(what, &pod, s.conn.query_drop(sql))
            .await?
            .map_err(|source| WorkloadError::Sql { what, pod, source })
    }

    /// Takes a consistent logical backup of one ordinal's rows table over one session:
    /// REPEATABLE READ, a mark recorded (the backup's position), then one transaction
    /// `START TRANSACTION WITH CONSISTENT SNAPSHOT` reading every row. Every write whose
    /// `ok` precedes the mark committed before the snapshot began, so the backup holds it.
    /// Records and returns the [`Backup`].
    pub async fn backup_rows(&self, ordinal: u32) -> Result<Backup, WorkloadError> {
        let mut s = self.connect(ordinal).await?;
        let pod = self.pod_name(ordinal);
        self.run(
            ordinal,
            &mut s,
            "set REPEATABLE READ for the backup",
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ".into(),
        )
        .await?;
        let position = self.inner.history.mark(format!(
            "backup of ordinal {ordinal} (pod {pod}, uid {}): consistent snapshot begins",
            s.pod_uid
        ));
        self.run(
            ordinal,
            &mut s,
            "start the backup's consistent snapshot",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT".into(),
        )
        .await?;
        let rows = self.select_rows(ordinal, &mut s).await?;
        self.run(
            ordinal,
            &mut s,
            "end the backup's transaction",
            "COMMIT".into(),
        )
        .await?;
        let backup = Backup {
            ordinal,
            pod,
            pod_uid: s.pod_uid.clone(),
            position,
            rows,
        };
        self.inner.history.record(Event::Backup(backup.clone()));
        Ok(backup)
    }

    /// Restores `rows` into one ordinal over one session: creates the rows table, then
    /// inserts them in one transaction (a failure rolls it back with the session).
    pub async fn restore_rows(&self, ordinal: u32, rows: &[Row]) -> Result<(), WorkloadError> {
        let mut s = self.connect(ordinal).await?;
        self.create_table(ordinal, &mut s).await?;
        self.run(
            ordinal,
            &mut s,
            "begin the restore",
            "START TRANSACTION".into(),
        )
        .await?;
        let pod = self.pod_name(ordinal);
        for chunk in rows.chunks(RESTORE_CHUNK) {
            let values = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let params: Vec<mysql_async::Value> = chunk
                .iter()
                .flat_map(|r| {
                    [
                        r.id.into(),
                        r.ordinal.into(),
                        r.pod_uid.as_str().into(),
                        r.payload.as_str().into(),
                        r.checksum.into(),
                    ]
                })
                .collect();
            let insert = format!(
                "INSERT INTO {DATABASE}.rows (id, ordinal, pod_uid, payload, checksum) VALUES {values}"
            )
            .with(params)
            .ignore(&mut s.conn);
            self.bounded("insert the restored rows", &pod, insert)
                .await?
                .map_err(|source| WorkloadError::Sql {
                    what: "insert the restored rows",
                    pod: pod.clone(),
                    source,
                })?;
        }
        self.run(ordinal, &mut s, "commit the restore", "COMMIT".into())
            .await
    }

    /// Writes `count` rows to one ordinal over one connection, reconnecting after a
    /// failure. Every attempt is recorded; the summary is only for logs.
    pub async fn write_rows(
        &self,
        ordinal: u32,
        count: u64,
    ) -> Result<WriteSummary, WorkloadError> {
        let mut summary = WriteSummary::default();
        let mut session = None;
        for _ in 0..count {
            if session.is_none() {
                session = Some(self.connect(ordinal).await?);
            }
            if let Some(s) = session.as_mut() {
                let outcome = self.write_one(ordinal, s).await;
                if !matches!(outcome, WriteEvent::Ok { .. }) {
                    session = None;
                }
                summary.add(&outcome);
            }
        }
        Ok(summary)
    }

    /// Starts a writer that keeps writing to one ordinal until stopped, riding through
    /// faults: a broken connection is dropped and re-established with backoff.
    pub fn spawn_writer(&self, ordinal: u32) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let workload = self.clone();
        let flag = stop.clone();
        let (progress_tx, progress) = watch::channel(WriteSummary::default());
        let task =
            tokio::spawn(async move { workload.write_until(ordinal, &flag, &progress_tx).await });
        Writer {
            ordinal,
            stop,
            task,
            progress,
            timeout: self.inner.timeouts.connect,
            statement_timeout: self.inner.timeouts.statement,
        }
    }

    async fn write_until(
        &self,
        ordinal: u32,
        stop: &AtomicBool,
        progress: &watch::Sender<WriteSummary>,
    ) -> WriteSummary {
        let mut summary = WriteSummary::default();
        let mut session: Option<Session> = None;
        while !stop.load(Ordering::Relaxed) {
            let Some(s) = session.as_mut() else {
                match self.connect(ordinal).await {
                    Ok(s) => session = Some(s),
                    Err(e) => {
                        tracing::info!(ordinal, error = %e, "writer could not connect; retrying")
                    }
                }
                continue;
            };
            let outcome = self.write_one(ordinal, s).await;
            if !matches!(outcome, WriteEvent::Ok { .. }) {
                session = None;
            }
            summary.add(&outcome);
            progress.send_replace(summary);
        }
        summary
    }

    /// One INSERT (autocommit): recorded as invoked, then ok, fail (the server refused it,
    /// so it was not applied) or info (timeout or lost connection: outcome unknown).
    async fn write_one(&self, ordinal: u32, s: &mut Session) -> WriteEvent {
        let row = self.new_row(ordinal, &s.pod_uid);
        let id = row.id;
        self.inner
            .history
            .record(Event::Write(WriteEvent::Invoked { row: row.clone() }));
        let insert = format!(
            "INSERT INTO {DATABASE}.rows (id, ordinal, pod_uid, payload, checksum) VALUES (?, ?, ?, ?, ?)"
        )
        .with((row.id, row.ordinal, row.pod_uid, row.payload, row.checksum))
        .ignore(&mut s.conn);
        let outcome = match tokio::time::timeout(self.inner.timeouts.statement, insert).await {
            Ok(Ok(())) => WriteEvent::Ok { id },
            Ok(Err(mysql_async::Error::Server(e))) => WriteEvent::Fail {
                id,
                error: e.to_string(),
            },
            Ok(Err(e)) => WriteEvent::Info {
                id,
                error: e.to_string(),
            },
            Err(_) => WriteEvent::Info {
                id,
                error: format!("no answer within {:?}", self.inner.timeouts.statement),
            },
        };
        self.inner.history.record(Event::Write(outcome.clone()));
        outcome
    }

    fn new_row(&self, ordinal: u32, pod_uid: &str) -> Row {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let payload: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        Row {
            id,
            ordinal,
            pod_uid: pod_uid.to_string(),
            checksum: row_checksum(id, ordinal, &payload),
            payload,
        }
    }

    /// Reads every row of one ordinal and records what it saw.
    pub async fn read_rows(&self, ordinal: u32) -> Result<ReadResult, WorkloadError> {
        let mut s = self.connect(ordinal).await?;
        let rows = self.select_rows(ordinal, &mut s).await?;
        let result = ReadResult {
            ordinal,
            pod: self.pod_name(ordinal),
            pod_uid: s.pod_uid.clone(),
            rows,
        };
        self.inner.history.record(Event::Read(result.clone()));
        Ok(result)
    }

    /// Every row of one ordinal's rows table, in id order, on the session's transaction.
    async fn select_rows(&self, ordinal: u32, s: &mut Session) -> Result<Vec<Row>, WorkloadError> {
        let pod = self.pod_name(ordinal);
        let select = format!(
            "SELECT id, ordinal, pod_uid, payload, checksum FROM {DATABASE}.rows ORDER BY id"
        );
        let rows: Vec<(u64, u32, String, String, u32)> = match self
            .bounded("read the rows table", &pod, s.conn.query(select))
            .await?
        {
            Ok(rows) => rows,
            // A missing table or database is data that is gone: an empty read, so the
            // set check reports every acknowledged row of this ordinal as lost.
            Err(mysql_async::Error::Server(e)) if is_missing_table(e.code) => {
                tracing::info!(%pod, error = %e, "rows table is missing: reading it as empty");
                Vec::new()
            }
            Err(source) => {
                return Err(WorkloadError::Sql {
                    what: "read the rows table",
                    pod: pod.clone(),
                    source,
                });
            }
        };
        Ok(rows
            .into_iter()
            .map(|(id, ordinal, pod_uid, payload, checksum)| Row {
                id,
                ordinal,
                pod_uid,
                payload,
                checksum,
            })
            .collect())
    }

    async fn bounded<T>(
        &self,
        what: &'static str,
        pod: &str,
        fut: impl Future<Output = T>,
    ) -> Result<T, WorkloadError> {
        let timeout = self.inner.timeouts.statement;
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| WorkloadError::Timeout {
                what,
                pod: pod.to_string(),
                timeout,
            })
    }

    /// Waits, up to `timeout`, until one ordinal's mysqld accepts a root login over TCP
    /// (the session is recorded as Connected, then closed). The error names the pod and
    /// the last refusal.
    pub async fn wait_root_login(
        &self,
        ordinal: u32,
        timeout: Duration,
    ) -> Result<(), WorkloadError> {
        self.connect_within(ordinal, timeout).await.map(drop)
    }

    /// Connects to one ordinal, retrying with exponential backoff and jitter: the
    /// documented StatefulSet has no readiness probe, so Ready precedes mysqld.
    async fn connect(&self, ordinal: u32) -> Result<Session, WorkloadError> {
        self.connect_within(ordinal, self.inner.timeouts.connect)
            .await
    }

    async fn connect_within(
        &self,
        ordinal: u32,
        timeout: Duration,
    ) -> Result<Session, WorkloadError> {
        let pod = self.pod_name(ordinal);
        let forward = match self.inner.reach {
            PodReach::PortForward => Some(self.forward(ordinal).await?),
            PodReach::PodIp => None,
        };
        let last_refusal = std::sync::Mutex::new(None::<String>);
        let attempt = || async { self.try_connect(ordinal, &pod, forward.as_deref()).await };
        let retrying = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_secs(2))
                    .with_jitter()
                    .without_max_times(),
            )
            .notify(|e: &String, after| {
                tracing::debug!(%pod, error = %e, ?after, "MySQL not reachable yet");
                *last_refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
            });
        let outcome = tokio::time::timeout(timeout, retrying).await;
        let last_refusal = last_refusal.into_inner().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(last)) => Err(WorkloadError::Connect { pod, timeout, last }),
            Err(_) => Err(WorkloadError::Connect {
                pod,
                timeout,
                last: match last_refusal {
                    Some(last) => format!("still refused when the timeout expired: {last}"),
                    None => "no answer before the timeout expired".into(),
                },
            }),
        }
    }

    /// One handshake, credited to a pod uid only when the pod held by that name is the same
    /// before and after it: a port-forward or pod IP resolved to an older (or newer) pod than
    /// the one read afterwards would credit the session's writes to the wrong container.
    async fn try_connect(
        &self,
        ordinal: u32,
        pod: &str,
        forward: Option<&PortForward>,
    ) -> Result<Session, String> {
        let before = self.current_pod(pod).await?;
        let (host, port) = match forward {
            Some(forward) => {
                let addr = forward.local_addr();
                (addr.ip().to_string(), addr.port())
            }
            None => (
                before
                    .ip
                    .clone()
                    .ok_or_else(|| format!("pod {pod} (uid {}) has no pod IP yet", before.uid))?,
                MYSQL_PORT,
            ),
        };
        let opts = OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some("root"))
            .pass(Some(self.inner.password.expose().to_string()))
            // The server's unix socket is not ours to use, from outside its pod.
            .prefer_socket(false);
        let conn = tokio::time::timeout(self.inner.timeouts.statement, Conn::new(opts))
            .await
            .map_err(|_| format!("no handshake within {:?}", self.inner.timeouts.statement))?
            .map_err(|e| e.to_string())?;
        let after = self.current_pod(pod).await?;
        if after.uid != before.uid {
            drop(conn);
            return Err(format!(
                "pod {pod} was replaced during the handshake (uid {} before, {} after): session dropped",
                before.uid, after.uid
            ));
        }
        self.inner.history.record(Event::Connected(Connection {
            ordinal,
            pod: pod.to_owned(),
            pod_uid: after.uid.clone(),
        }));
        Ok(Session {
            conn,
            pod_uid: after.uid,
        })
    }

    /// The uid and IP of the pod that holds `pod`'s name now.
    async fn current_pod(&self, pod: &str) -> Result<PodIdentity, String> {
        let found = self
            .inner
            .pods
            .get(pod)
            .await
            .map_err(|e| format!("failed to get pod {pod}: {e}"))?;
        let uid = found.uid().ok_or_else(|| format!("pod {pod} has no uid"))?;
        let ip = found
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty());
        Ok(PodIdentity { uid, ip })
    }

    async fn forward(&self, ordinal: u32) -> Result<Arc<PortForward>, WorkloadError> {
        let mut forwards = self.inner.forwards.lock().await;
        if let Some(f) = forwards.get(&ordinal) {
            return Ok(f.clone());
        }
        let pod = self.pod_name(ordinal);
        let forward = PortForward::start(self.inner.pods.clone(), &pod, MYSQL_PORT)
            .await
            .map_err(|source| WorkloadError::PortForward { pod, source })?;
        let forward = Arc::new(forward);
        forwards.insert(ordinal, forward.clone());
        Ok(forward)
    }
}

/// ER_NO_SUCH_TABLE (1146) and ER_BAD_DB_ERROR (1049).
fn is_missing_table(code: u16) -> bool {
    matches!(code, 1146 | 1049)
}

/// A background writer started by [`Workload::spawn_writer`].
pub struct Writer {
    ordinal: u32,
    stop: Arc<AtomicBool>,
    task: JoinHandle<WriteSummary>,
    progress: watch::Receiver<WriteSummary>,
    timeout: Duration,
    statement_timeout: Duration,
}

impl Writer {
    /// Waits until the writer has had `count` more writes acknowledged than it had when
    /// called (bounded by the workload's connect timeout), so a fault lands while the
    /// writer is really writing and recovery is shown by new acknowledged writes.
    pub async fn wait_for_more_acks(&mut self, count: u64) -> Result<WriteSummary, WorkloadError> {
        let target = self.progress.borrow().ok + count;
        let timeout = self.timeout;
        let reached = tokio::time::timeout(timeout, self.progress.wait_for(|s| s.ok >= target))
            .await
            .map(|r| r.map(|s| *s));
        match reached {
            Ok(Ok(summary)) => Ok(summary),
            _ => Err(WorkloadError::WriterStalled {
                pod_ordinal: self.ordinal,
                wanted: target,
                timeout,
                last: *self.progress.borrow(),
            }),
        }
    }

    /// Waits for the writer's next recorded outcome (pending forever once it has ended).
    pub async fn next_outcome(&mut self) {
        if self.progress.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Stops after the write in flight (bounded by the statement timeout) and returns the
    /// outcome counts. A writer still retrying its connection is abandoned at once: it has
    /// no write in flight, so nothing goes unrecorded.
    pub async fn stop(mut self) -> WriteSummary {
        self.stop.store(true, Ordering::Relaxed);
        let bound = self.statement_timeout + STOP_SLACK;
        match tokio::time::timeout(bound, &mut self.task).await {
            Ok(joined) => joined.unwrap_or_default(),
            Err(_) => {
                self.task.abort();
                *self.progress.borrow()
            }
        }
    }
}

/// What a writer's stop allows beyond the statement timeout.
const STOP_SLACK: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_table_or_database_reads_as_empty() {
        assert!(is_missing_table(1146));
        assert!(is_missing_table(1049));
        assert!(!is_missing_table(1045), "access denied must stay an error");
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("my-secret-pw");
        assert!(!format!("{s:?}").contains("my-secret-pw"));
    }

    #[test]
    fn summary_counts_each_outcome() {
        let mut s = WriteSummary::default();
        s.add(&WriteEvent::Ok { id: 1 });
        s.add(&WriteEvent::Fail {
            id: 2,
            error: "x".into(),
        });
        s.add(&WriteEvent::Info {
            id: 3,
            error: "y".into(),
        });
        s.add(&WriteEvent::Info {
            id: 4,
            error: "y".into(),
        });
        assert_eq!(
            s,
            WriteSummary {
                ok: 1,
                fail: 1,
                info: 2
            }
        );
    }
}
