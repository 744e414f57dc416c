//! The conformance suites as library functions: one catalogue of cases, each proving one
//! promise of the source document, run by one runner for both `cargo test --test e2e` and
//! `sts-conformance run`.

mod backup;
pub mod facts;
mod identity;
mod retention;
pub mod run;
mod runner;
mod scaling;
mod survival;
mod update;

use std::sync::Arc;

use futures::future::BoxFuture;

use checks::CheckResult;

use crate::drive::workload::WorkloadError;
use crate::scenario::{ScenarioError, TestEnv};

pub use runner::{CaseOutcome, CaseStatus, Progress, RunnerError, run_case};

/// What a case's body returns: the check results, or the step that failed before the
/// checks could run.
pub type Checks = Result<Vec<CheckResult>, SuiteError>;

type Body = Arc<dyn for<'a> Fn(&'a TestEnv) -> BoxFuture<'a, Checks> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    Step(#[from] ScenarioError),
    #[error("the workload failed")]
    Workload(#[from] WorkloadError),
    #[error("{pod}'s replacement never served while the deleted pod's container did: {evidence}")]
    ReplacementNeverServed { pod: String, evidence: String },
    #[error("pod {pod} was recreated on its dead node {node}")]
    RecreatedOnDeadNode { pod: String, node: String },
}

/// The promises of the source document, as the certification report lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Promise {
    OrdinalIdentity,
    OrderedScaling,
    PvcRetention,
    ReclaimPolicy,
    DataSurvival,
    OrderedUpdate,
    ParallelManagement,
    StartOrdinal,
    BackupRestore,
}

impl Promise {
    pub const ALL: [Promise; 9] = [
        Promise::OrdinalIdentity,
        Promise::OrderedScaling,
        Promise::PvcRetention,
        Promise::ReclaimPolicy,
        Promise::DataSurvival,
        Promise::OrderedUpdate,
        Promise::ParallelManagement,
        Promise::StartOrdinal,
        Promise::BackupRestore,
    ];

    /// The promise in the source document's words.
    pub fn title(self) -> &'static str {
        match self {
            Promise::OrdinalIdentity => "stable, unique ordinal names, DNS identity and claims",
            Promise::OrderedScaling => "pods created and deleted in a strict order",
            Promise::PvcRetention => "persistent volumes kept when pods go",
            Promise::ReclaimPolicy => {
                "volumes of a Retain class outlive their claims, and restore from them"
            }
            Promise::DataSurvival => "acknowledged data survives pod and node failures",
            Promise::OrderedUpdate => "pods updated in a strict order",
            Promise::ParallelManagement => "Parallel pod management keeps names, claims, data",
            Promise::StartOrdinal => "ordinals numbered from spec.ordinals.start",
            Promise::BackupRestore => {
                "regular backups and robust restore procedures protect against data loss"
            }
        }
    }
}

/// Whether a case disturbs nodes (and so must run alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exclusive {
    No,
    Nodes,
}

/// One conformance test: a name (its report folder, and what `--focus` matches), the
/// promise it proves, and its body.
#[derive(Clone)]
pub struct Case {
    pub name: String,
    pub promise: Promise,
    pub exclusive: Exclusive,
    body: Body,
}

impl Case {
    pub fn new<F>(name: impl Into<String>, promise: Promise, exclusive: Exclusive, body: F) -> Case
    where
        F: for<'a> Fn(&'a TestEnv) -> BoxFuture<'a, Checks> + Send + Sync + 'static,
    {
        Case {
            name: name.into(),
            promise,
            exclusive,
            body: Arc::new(body),
        }
    }

    /// Runs the case's body in `env` (the runner adds the node lock, the test's bound and
    /// its report; the self-test calls this directly to judge a case under a fault).
    pub async fn body(&self, env: &TestEnv) -> Checks {
        (self.body)(env).await
    }
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("promise", &self.promise)
            .field("exclusive", &self.exclusive)
            .finish()
    }
}

/// Every conformance case, in the order a run starts them.
pub fn catalogue() -> Vec<Case> {
    let mut cases = identity::cases();
    cases.extend(scaling::cases());
    cases.extend(retention::cases());
    cases.extend(survival::cases());
    cases.extend(update::cases());
    cases.extend(backup::cases());
    cases
}

/// The case named `name`.
pub fn case(name: &str) -> Result<Case, RunnerError> {
    catalogue()
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| RunnerError::UnknownCase(name.to_owned()))
}

/// The cases whose name contains one of `focus` (all when empty) and none of `skip`.
pub fn select(cases: Vec<Case>, focus: &[String], skip: &[String]) -> Vec<Case> {
    cases
        .into_iter()
        .filter(|c| focus.is_empty() || focus.iter().any(|f| c.name.contains(f.as_str())))
        .filter(|c| !skip.iter().any(|s| c.name.contains(s.as_str())))
        .collect()
}

/// Says why a case cannot run here, in its report (JUnit `<skipped>`), and returns the
/// (empty) check results for the body to return.
pub fn skip(env: &TestEnv, reason: &str) -> Vec<CheckResult> {
    env.skip(reason);
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_are_unique_and_cover_every_promise() {
        let cases = catalogue();
        let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate case names: {names:?}");
        for promise in Promise::ALL {
            assert!(
                cases.iter().any(|c| c.promise == promise),
                "no case proves {promise:?}"
            );
        }
    }

    #[test]
    fn focus_and_skip_filter_by_name() {
        let picked = select(catalogue(), &["scale-up".into()], &["Spec".into()]);
        let names: Vec<&str> = picked.iter().map(|c| c.name.as_str()).collect();
        assert!(!names.is_empty());
        assert!(
            names
                .iter()
                .all(|n| n.contains("scale-up") && !n.contains("Spec"))
        );
        assert!(select(catalogue(), &["no-such".into()], &[]).is_empty());
    }

    #[test]
    fn unknown_case_is_named() {
        let err = case("no-such-case").unwrap_err();
        assert!(err.to_string().contains("no-such-case"), "{err}");
    }

    #[test]
    fn node_tests_are_exclusive() {
        for c in catalogue() {
            let disturbs_nodes = c.name.contains("NodeKill") || c.name.contains("NodeLost");
            assert_eq!(
                disturbs_nodes,
                c.exclusive == Exclusive::Nodes,
                "{}",
                c.name
            );
        }
    }
}
