//! StatefulSet conformance harness: observe → record → check, laid out by layer.
//!
//! - [`support`]: settings read once from the environment, processes, cleanup, errors;
//! - [`cluster`]: targets (kind, kubeconfig, kube-sim), namespaces, manifests, apply, the
//!   storage probe;
//! - [`drive`]: the observer and the workload record into a [`checks::history::History`],
//!   chaos breaks things, waits block on watched conditions;
//! - [`scenario`]: a test's lifecycle and steps, over all of the above;
//! - [`suites`]: the conformance cases (one catalogue) and the runner both `cargo test
//!   --test e2e` and `sts-conformance run` use;
//! - [`report`]: the per-test report (JUnit, JSON history, summary) and the run report.
//!
//! The pure checkers of the `checks` crate judge the history.

pub mod cluster;
pub mod drive;
pub mod report;
pub mod scenario;
pub mod suites;
pub mod support;
