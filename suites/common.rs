//! What every e2e test shares: the one cluster of this run, and one call that runs a case
//! of the library's catalogue (the same code `sts-conformance run` runs) and fails the
//! Rust test with the evidence and the namespace dump when the case fails.

use std::sync::Arc;

use harness::cluster::target::{self, Cluster};
use harness::suites::{self, CaseStatus, Progress};
use harness::support::errors;
use harness::support::settings::Settings;

/// Logs each step from this crate, so `#[traced_test]` (which listens to it alone)
/// captures it.
struct LogSteps;

impl Progress for LogSteps {
    fn step(&self, _test: &str, step: &str) {
        tracing::info!("step {step}");
    }
}

/// One line per failure: harness errors embed their causes in their messages, so anyhow's
/// "Caused by" list would repeat each cause once per layer.
fn readable(context: &str, err: &(dyn std::error::Error + 'static)) -> anyhow::Error {
    anyhow::anyhow!("{context}: {}", errors::chain(err))
}

/// Writes what this run certifies (`run.json`, the run report's header) once per process,
/// as `sts-conformance run` does.
async fn record_run_facts(cluster: &Cluster) -> anyhow::Result<()> {
    static RECORDED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    RECORDED
        .get_or_try_init(|| async {
            let dir = &Settings::global()?.report_dir;
            suites::facts::record(cluster, &suites::catalogue(), dir)
                .await
                .map(drop)
                .map_err(|e| readable("failed to record the run's facts", &e))
        })
        .await
        .map(drop)
}

/// Runs the catalogue's case `name` on the run's cluster. A skipped case passes as a Rust
/// test and says why on stdout and in its report (JUnit `<skipped>`).
pub async fn run_case(name: &str) -> anyhow::Result<()> {
    let cluster = target::shared_cluster()
        .await
        .map_err(|e| readable("failed to get the cluster for this run", &e))?;
    record_run_facts(cluster).await?;
    let case = suites::case(name).map_err(|e| readable("no such case", &e))?;
    let outcome = suites::run_case(cluster, &case, Arc::new(LogSteps))
        .await
        .map_err(|e| readable(name, &e))?;
    match outcome.status {
        CaseStatus::Passed => println!("{}", outcome.summary),
        CaseStatus::Skipped => println!("SKIPPED {}", outcome.summary),
        CaseStatus::ChecksFailed | CaseStatus::StepsFailed => {
            anyhow::bail!("{}", outcome.failure_text())
        }
    }
    Ok(())
}
