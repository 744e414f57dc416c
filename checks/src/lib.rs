//! History, its models and the pure checkers: no kube, no tokio, no network.
//!
//! The harness's observer, workload and chaos record into a [`history::History`]; the
//! [`world`] view rebuilds what the cluster looked like at any point of it; the checkers
//! ([`checkers`], re-exported here) judge it and return a [`Verdict`]. Nothing here talks to
//! a cluster, so the compiler keeps the checkers pure (the split kube-core / kube-runtime
//! makes in kube-rs).
//!
//! Module dependencies run one way: `history` ← `world` ← `checkers` → `verdict`.

pub mod checkers;
pub mod history;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod verdict;
pub mod world;

pub use checkers::*;
pub use verdict::{CheckResult, Verdict, Window};
