//! StatefulSet conformance harness.
//!
//! observe → record → check: targets give a cluster, `apply` puts the documented
//! manifests into a fresh namespace, `observe` and `workload` record into a
//! [`checks::history::History`], `chaos` breaks things, and the pure checkers of the
//! `checks` crate judge the history.

pub mod apply;
pub mod chaos;
pub mod cleanup;
pub mod errors;
pub mod kind;
pub mod manifests;
pub mod namespace;
pub mod observe;
pub mod portforward;
pub mod process;
pub mod report;
pub mod runreport;
pub mod scenario;
pub mod simtarget;
pub mod storage;
pub mod target;
pub mod wait;
pub mod workload;
