//! Runs one case: takes the node lock and the target's test slot, starts a fresh
//! environment, runs the body within the test's bound, and writes its report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::RwLock;

use crate::cluster::target::Cluster;
use crate::scenario::{ScenarioError, TestEnv};
use crate::suites::{Case, Exclusive};
use crate::support::errors;

/// Cases that stop nodes take this exclusively; every other case shares it, so a node
/// kill never disturbs another case's pods.
static NODE_LOCK: RwLock<()> = RwLock::const_new(());

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("no conformance case is named {0:?} (see `sts-conformance run --list`)")]
    UnknownCase(String),
    #[error("failed to prepare the test {test}")]
    Prepare {
        test: String,
        #[source]
        source: Box<ScenarioError>,
    },
    #[error("failed to finish the test {test} (its report or namespace)")]
    Finish {
        test: String,
        #[source]
        source: Box<ScenarioError>,
    },
    #[error("the target's test slots were closed while {test} waited for one")]
    Slots { test: String },
}

/// What a caller hears while cases run.
pub trait Progress: Send + Sync {
    /// A case recorded a step (before doing it).
    fn step(&self, test: &str, step: &str);
}

/// How one case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseStatus {
    Passed,
    Skipped,
    /// A check failed or judged nothing (Unknown).
    ChecksFailed,
    /// A step failed (or the case ran out of time) before the checks ran.
    StepsFailed,
}

impl CaseStatus {
    pub fn label(self) -> &'static str {
        match self {
            CaseStatus::Passed => "PASS",
            CaseStatus::Skipped => "SKIPPED",
            CaseStatus::ChecksFailed | CaseStatus::StepsFailed => "FAIL",
        }
    }

    pub fn failed(self) -> bool {
        matches!(self, CaseStatus::ChecksFailed | CaseStatus::StepsFailed)
    }
}

/// A finished case: its status, the report's summary and, when it failed, a dump of
/// its namespace.
#[derive(Debug)]
pub struct CaseOutcome {
    pub name: String,
    pub status: CaseStatus,
    pub summary: String,
    /// Why the case cannot run on this target, when it was skipped.
    pub skip_reason: Option<String>,
    pub dump: String,
    pub elapsed: Duration,
}

impl CaseOutcome {
    /// What a failed case prints: the cause, its evidence and the namespace dump.
    pub fn failure_text(&self) -> String {
        let what = match self.status {
            CaseStatus::StepsFailed => "a step failed before the checks ran",
            _ => "a conformance check failed",
        };
        format!(
            "{}: {what}\n{}\n--- namespace dump ---\n{}",
            self.name, self.summary, self.dump
        )
    }
}

/// Upper bound for one whole case, scaled like every other timeout.
fn case_timeout(cluster: &Cluster) -> Duration {
    cluster.timeouts().statefulset_ready * 4
}

/// Runs `case` on `cluster`. A failing check or step is an outcome (with its evidence and
/// the namespace dump); an error means the case could not be run or reported at all.
pub async fn run_case(
    cluster: &Cluster,
    case: &Case,
    progress: Arc<dyn Progress>,
) -> Result<CaseOutcome, RunnerError> {
    let test = case.name.as_str();
    let _shared = match case.exclusive {
        Exclusive::No => Some(NODE_LOCK.read().await),
        Exclusive::Nodes => None,
    };
    let _alone = match case.exclusive {
        Exclusive::Nodes => Some(NODE_LOCK.write().await),
        Exclusive::No => None,
    };
    // Taken after the node lock, so a case waiting for a slot never holds up a node case.
    let _slot = match cluster.test_slots() {
        Some(slots) => Some(slots.acquire().await.map_err(|_| RunnerError::Slots {
            test: test.to_owned(),
        })?),
        None => None,
    };
    let began = Instant::now();
    let limit = case_timeout(cluster);
    let env = TestEnv::start(cluster, test)
        .await
        .map_err(|source| RunnerError::Prepare {
            test: test.to_owned(),
            source: Box::new(source),
        })?;
    tracing::info!(test, namespace = env.namespace.name(), "started");
    let name = test.to_owned();
    env.history
        .on_action(move |step| progress.step(&name, step));
    let ran = match tokio::time::timeout(limit, case.body(&env)).await {
        Ok(ran) => ran.map_err(|err| errors::chain(&err)),
        Err(_) => Err(format!("test {test} did not finish within {limit:?}")),
    };
    let finish = |source| RunnerError::Finish {
        test: test.to_owned(),
        source: Box::new(source),
    };
    let (outcome, steps_failed) = match ran {
        Ok(results) => (env.finish(results).await.map_err(finish)?, false),
        Err(why) => (env.abandon(&why).await.map_err(finish)?, true),
    };
    let status = match (outcome.passed, outcome.skipped.is_some(), steps_failed) {
        (_, _, true) => CaseStatus::StepsFailed,
        (false, _, false) => CaseStatus::ChecksFailed,
        (true, true, false) => CaseStatus::Skipped,
        (true, false, false) => CaseStatus::Passed,
    };
    Ok(CaseOutcome {
        name: test.to_owned(),
        status,
        summary: outcome.summary,
        skip_reason: outcome.skipped,
        dump: outcome.dump,
        elapsed: began.elapsed(),
    })
}
