//! One running component (its process group, its log) and the start-up state: spawn a
//! component, poll its readiness probe until it answers, it exits or a named timeout passes,
//! and stop in reverse what already runs when a later step fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use kube_sim::kubelet::process::{Spawner, signal_group};

use super::{ControlPlaneError, PROBE_TIMEOUT, Result};

/// A running component.
pub(super) struct Component {
    pub(super) name: &'static str,
    pub(super) child: tokio::process::Child,
    pub(super) pid: u32,
    pub(super) log: PathBuf,
}

impl Component {
    /// Errors when the process has exited (with its log's tail).
    pub(super) fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(ControlPlaneError::Exited {
                component: self.name,
                status: status.to_string(),
                log: self.log.clone(),
                tail: log_tail(&self.log, 15),
            }),
            _ => Ok(()),
        }
    }

    /// SIGTERM to the group, bounded wait, then SIGKILL and reap.
    pub(super) async fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        signal_group(self.pid, libc::SIGTERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(_) => tracing::debug!(component = self.name, "stopped"),
            Err(_) => {
                tracing::warn!(
                    component = self.name,
                    ?grace,
                    "no exit after SIGTERM: SIGKILL"
                );
                signal_group(self.pid, libc::SIGKILL);
                let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
            }
        }
    }
}

/// The last `n` lines of a log file (for errors).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Startup state shared by the steps (so a failure half-way stops what already runs).
pub(super) struct Starting {
    pub(super) spawner: Arc<Spawner>,
    pub(super) components: Vec<Component>,
    pub(super) logs: PathBuf,
}

impl Starting {
    pub(super) async fn spawn(
        &mut self,
        name: &'static str,
        program: &Path,
        args: Vec<String>,
    ) -> Result<usize> {
        let log = self.logs.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).map_err(|source| ControlPlaneError::Log {
            component: name,
            log: log.clone(),
            source,
        })?;
        let err_file = file.try_clone().map_err(|source| ControlPlaneError::Log {
            component: name,
            log: log.clone(),
            source,
        })?;
        let mut command = std::process::Command::new(program);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err_file));
        tracing::info!(component = name, args = %args.join(" "), log = %log.display(), "starting");
        let child =
            self.spawner
                .spawn(command)
                .await
                .map_err(|source| ControlPlaneError::Spawn {
                    component: name,
                    log: log.clone(),
                    source,
                })?;
        let pid = child.id().unwrap_or(0);
        self.components.push(Component {
            name,
            child,
            pid,
            log,
        });
        Ok(self.components.len() - 1)
    }

    /// Polls `probe` (exponential backoff with jitter, 100 ms to 1 s) until it answers `Ok`,
    /// the component exits, or `timeout`.
    pub(super) async fn wait<F, Fut>(
        &mut self,
        index: usize,
        name: &'static str,
        timeout: Duration,
        what: &str,
        mut probe: F,
    ) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let began = Instant::now();
        let deadline = began + timeout;
        let mut last;
        let mut delays = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(1))
            .with_factor(1.5)
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            self.components[index].check_running()?;
            let probe_deadline = deadline.min(Instant::now() + PROBE_TIMEOUT);
            match tokio::time::timeout_at(probe_deadline.into(), probe()).await {
                Ok(Ok(())) => {
                    tracing::info!(waited = ?began.elapsed(), "{what}: ok");
                    return Ok(());
                }
                Ok(Err(seen)) => last = seen,
                Err(_) => last = format!("no answer within {PROBE_TIMEOUT:?}"),
            }
            if Instant::now() >= deadline {
                return Err(ControlPlaneError::Timeout {
                    name,
                    timeout,
                    what: what.to_owned(),
                    last,
                    log: self.components[index].log.clone(),
                });
            }
            let delay = delays.next().unwrap_or(Duration::from_secs(1));
            tokio::time::sleep_until(deadline.min(Instant::now() + delay).into()).await;
        }
    }

    pub(super) async fn abort(&mut self, grace: Duration) {
        while let Some(mut c) = self.components.pop() {
            c.stop(grace).await;
        }
    }
}
