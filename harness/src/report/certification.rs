//! The certification header of the run report: what was certified (cluster version and
//! platform, node count, storage class and provisioner, harness version, digest of the
//! manifests applied) and each promise's status, judged from the tests' reports as each
//! `history.json` records them (read here, shared with the run report). Rendered only from
//! `run.json` and those reports, with no time in it, so the same inputs give the same header.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::DateTime;
use serde::{Deserialize, Serialize};

use crate::report::judged_passed;
use checks::Verdict;

/// The file the run's facts are written to, in the report directory.
pub const FACTS_FILE: &str = "run.json";

#[derive(Debug, thiserror::Error)]
pub enum CertificationError {
    #[error("failed to write the run's facts to {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the run's facts from {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse the run's facts in {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What a run certifies, gathered once before its cases run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFacts {
    pub target: String,
    /// `v1.37.2`, or why it could not be read.
    pub server_version: String,
    pub platform: String,
    /// Nodes registered when the run began, or why they could not be listed.
    pub nodes: Result<usize, String>,
    pub storage: StorageFacts,
    pub harness_version: String,
    /// `sha256:` of the documented manifests after overrides, as applied (one namespace
    /// per test is the only difference).
    pub manifest_digest: String,
    /// Every case of the run's catalogue, with the promise it proves.
    pub cases: Vec<CaseFacts>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageFacts {
    /// The StorageClass the claims ask for (the manifest's, else the cluster's default).
    pub class: Option<String>,
    pub provisioner: Option<String>,
    pub reclaim_policy: Option<String>,
    pub binding_mode: Option<String>,
    /// Why the class is not fully known, if it is not.
    pub unknown_because: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFacts {
    pub name: String,
    pub promise: String,
}

impl RunFacts {
    pub fn write(&self, dir: &Path) -> Result<PathBuf, CertificationError> {
        let path = dir.join(FACTS_FILE);
        let write = |source| CertificationError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(write)?;
        let text =
            serde_json::to_string_pretty(self).map_err(|e| write(std::io::Error::other(e)))?;
        std::fs::write(&path, text).map_err(write)?;
        Ok(path)
    }

    /// The facts in `dir`, or None when no run wrote them there.
    pub fn read(dir: &Path) -> Result<Option<RunFacts>, CertificationError> {
        let path = dir.join(FACTS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CertificationError::Read { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| CertificationError::Parse { path, source })
    }
}

/// A promise's status over the tests that prove it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromiseStatus {
    Passed,
    /// Every test that ran passed, but some case (or some check of a case) was skipped
    /// here: the promise is not proven whole on this target.
    PartlyCovered,
    Failed,
    /// Failed only because a check judged nothing: neither proved nor disproved.
    Unknown,
    Skipped,
    NotRun,
}

impl PromiseStatus {
    fn label(self) -> &'static str {
        match self {
            PromiseStatus::Passed => "passed",
            PromiseStatus::PartlyCovered => "partly covered",
            PromiseStatus::Failed => "FAILED",
            PromiseStatus::Unknown => "UNKNOWN",
            PromiseStatus::Skipped => "skipped",
            PromiseStatus::NotRun => "not run",
        }
    }
}

/// One test's contribution: a failed test whose checks failed only as Unknown is Unknown.
fn test_status(test: &TestReport) -> PromiseStatus {
    match test.outcome() {
        TestOutcome::Passed if test.results.iter().any(|r| r.verdict.is_skipped()) => {
            PromiseStatus::PartlyCovered
        }
        TestOutcome::Passed => PromiseStatus::Passed,
        TestOutcome::Skipped => PromiseStatus::Skipped,
        TestOutcome::Failed => {
            let judged_fail = test.results.iter().any(|r| r.verdict.is_fail());
            let unknown = test.results.iter().any(|r| r.verdict.is_unknown());
            if unknown && !judged_fail {
                PromiseStatus::Unknown
            } else {
                PromiseStatus::Failed
            }
        }
    }
}

/// Failed beats Unknown beats Partly covered (some passed, some skipped, or a test with
/// a skipped check) beats Passed beats Skipped; no test at all is Not run. A promise with
/// skipped cases is never "passed".
fn promise_status(statuses: &[PromiseStatus]) -> PromiseStatus {
    let has = |s| statuses.contains(&s);
    if has(PromiseStatus::Failed) {
        PromiseStatus::Failed
    } else if has(PromiseStatus::Unknown) {
        PromiseStatus::Unknown
    } else if has(PromiseStatus::PartlyCovered)
        || (has(PromiseStatus::Passed) && has(PromiseStatus::Skipped))
    {
        PromiseStatus::PartlyCovered
    } else if has(PromiseStatus::Passed) {
        PromiseStatus::Passed
    } else if has(PromiseStatus::Skipped) {
        PromiseStatus::Skipped
    } else {
        PromiseStatus::NotRun
    }
}

/// The promises in catalogue order, each with its status and its tests as run.
pub fn promises(
    facts: &RunFacts,
    tests: &[TestReport],
) -> Vec<(String, PromiseStatus, Vec<String>)> {
    let mut order: Vec<&str> = Vec::new();
    for case in &facts.cases {
        if !order.contains(&case.promise.as_str()) {
            order.push(&case.promise);
        }
    }
    order
        .into_iter()
        .map(|promise| {
            let names: Vec<&str> = facts
                .cases
                .iter()
                .filter(|c| c.promise == promise)
                .map(|c| c.name.as_str())
                .collect();
            let ran: Vec<&TestReport> = tests
                .iter()
                .filter(|t| names.contains(&t.test.as_str()))
                .collect();
            let statuses: Vec<PromiseStatus> = ran.iter().map(|t| test_status(t)).collect();
            let labels = ran
                .iter()
                .map(|t| format!("{} {}", t.test, t.outcome().label()))
                .collect();
            (promise.to_owned(), promise_status(&statuses), labels)
        })
        .collect()
}

/// The header: what was certified, then one row per promise.
pub fn header(facts: &RunFacts, tests: &[TestReport]) -> String {
    let mut md = String::from("## What was certified\n\n| | |\n|---|---|\n");
    let row = |md: &mut String, k: &str, v: &str| {
        let _ = writeln!(md, "| {k} | {} |", v.replace('|', "\\|"));
    };
    row(
        &mut md,
        "cluster",
        &format!("Kubernetes {} ({})", facts.server_version, facts.platform),
    );
    row(&mut md, "target", &facts.target);
    let nodes = match &facts.nodes {
        Ok(n) => n.to_string(),
        Err(why) => format!("unknown: {why}"),
    };
    row(&mut md, "nodes", &nodes);
    row(&mut md, "storage", &storage_line(&facts.storage));
    row(
        &mut md,
        "harness",
        &format!("sts-conformance {}", facts.harness_version),
    );
    row(&mut md, "manifests", &facts.manifest_digest);
    md.push_str("\n| promise | status | tests |\n|---|---|---|\n");
    for (promise, status, ran) in promises(facts, tests) {
        let _ = writeln!(
            md,
            "| {promise} | {} | {} |",
            status.label(),
            ran.join(", ")
        );
    }
    md.push('\n');
    md
}

fn storage_line(s: &StorageFacts) -> String {
    let mut line = match &s.class {
        Some(class) => format!("StorageClass {class}"),
        None => "no StorageClass named and no default class".to_owned(),
    };
    let fields = [
        ("provisioner", &s.provisioner),
        ("reclaimPolicy", &s.reclaim_policy),
        ("volumeBindingMode", &s.binding_mode),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            let _ = write!(line, ", {name} {value}");
        }
    }
    if let Some(why) = &s.unknown_because {
        let _ = write!(line, " ({why})");
    }
    line
}

/// One check as a test's `history.json` records it.
#[derive(Clone, Debug, Deserialize)]
pub struct ReportedCheck {
    pub check: String,
    pub verdict: Verdict,
}

/// One test as its `history.json` records it (the entries are not needed here).
#[derive(Clone, Debug, Deserialize)]
pub struct TestReport {
    pub test: String,
    pub target: String,
    pub started: String,
    pub finished: String,
    pub results: Vec<ReportedCheck>,
    #[serde(default)]
    pub skipped: Option<String>,
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default)]
    pub steps: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestOutcome {
    Passed,
    Failed,
    Skipped,
}

impl TestOutcome {
    pub fn label(self) -> &'static str {
        match self {
            TestOutcome::Passed => "PASS",
            TestOutcome::Failed => "FAIL",
            TestOutcome::Skipped => "SKIPPED",
        }
    }
}

impl TestReport {
    /// As the test itself judged it: skipped with a reason, or passed only when it ran
    /// checks and every one passed.
    pub fn outcome(&self) -> TestOutcome {
        let verdicts: Vec<&Verdict> = self.results.iter().map(|r| &r.verdict).collect();
        match (
            judged_passed(&verdicts, self.skipped.is_some()),
            &self.skipped,
        ) {
            (false, _) => TestOutcome::Failed,
            (true, Some(_)) => TestOutcome::Skipped,
            (true, None) => TestOutcome::Passed,
        }
    }

    pub(crate) fn seconds(&self) -> Option<f64> {
        let started = DateTime::parse_from_rfc3339(&self.started).ok()?;
        let finished = DateTime::parse_from_rfc3339(&self.finished).ok()?;
        Some((finished - started).num_milliseconds() as f64 / 1000.0)
    }

    pub(crate) fn count(&self, f: impl Fn(&Verdict) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.verdict)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> RunFacts {
        RunFacts {
            target: "existing cluster at https://10.0.0.1:6443/".into(),
            server_version: "v1.37.2".into(),
            platform: "linux/amd64".into(),
            nodes: Ok(3),
            storage: StorageFacts {
                class: Some("standard".into()),
                provisioner: Some("rancher.io/local-path".into()),
                reclaim_policy: Some("Delete".into()),
                binding_mode: Some("WaitForFirstConsumer".into()),
                unknown_because: None,
            },
            harness_version: "0.1.0".into(),
            manifest_digest: "sha256:abc".into(),
            cases: vec![
                CaseFacts {
                    name: "identity".into(),
                    promise: "identity".into(),
                },
                CaseFacts {
                    name: "scale-a".into(),
                    promise: "order".into(),
                },
                CaseFacts {
                    name: "scale-b".into(),
                    promise: "order".into(),
                },
                CaseFacts {
                    name: "crash".into(),
                    promise: "survival".into(),
                },
                CaseFacts {
                    name: "moves".into(),
                    promise: "moves".into(),
                },
            ],
        }
    }

    fn test(name: &str, verdicts: Vec<Verdict>, skipped: Option<&str>) -> TestReport {
        TestReport {
            test: name.into(),
            target: "t".into(),
            started: "2026-12-02T00:00:00Z".into(),
            finished: "2026-12-02T00:00:09Z".into(),
            results: verdicts
                .into_iter()
                .map(|verdict| ReportedCheck {
                    check: "c".into(),
                    verdict,
                })
                .collect(),
            skipped: skipped.map(Into::into),
            notes: vec![],
            steps: vec![],
        }
    }

    fn pass() -> Verdict {
        Verdict::Pass {
            summary: "ok".into(),
        }
    }

    #[test]
    fn each_promise_gets_the_worst_status_of_its_tests() {
        let tests = vec![
            test("identity", vec![pass()], None),
            test("scale-a", vec![pass()], None),
            test(
                "scale-b",
                vec![Verdict::Fail {
                    evidence: vec!["x".into()],
                }],
                None,
            ),
            test(
                "crash",
                vec![
                    pass(),
                    Verdict::Unknown {
                        reason: "nothing".into(),
                    },
                ],
                None,
            ),
        ];
        let got: Vec<(String, PromiseStatus)> = promises(&facts(), &tests)
            .into_iter()
            .map(|(p, s, _)| (p, s))
            .collect();
        assert_eq!(
            got,
            vec![
                ("identity".into(), PromiseStatus::Passed),
                ("order".into(), PromiseStatus::Failed),
                ("survival".into(), PromiseStatus::Unknown),
                ("moves".into(), PromiseStatus::NotRun),
            ]
        );
    }

    #[test]
    fn a_promise_with_a_skipped_case_is_partly_covered_never_passed() {
        let tests = vec![
            test("scale-a", vec![pass()], None),
            test("scale-b", vec![], Some("no node chaos here")),
        ];
        let order = promises(&facts(), &tests)
            .into_iter()
            .find(|(p, ..)| p == "order")
            .map(|(_, s, _)| s);
        assert_eq!(order, Some(PromiseStatus::PartlyCovered));
        assert_eq!(PromiseStatus::PartlyCovered.label(), "partly covered");
    }

    #[test]
    fn a_test_with_a_skipped_check_passes_but_covers_its_promise_partly() {
        let skipped = Verdict::Skipped {
            reason: "no exec into pods on this target".into(),
        };
        let tests = vec![test("identity", vec![pass(), skipped.clone()], None)];
        assert_eq!(tests[0].outcome(), TestOutcome::Passed);
        let identity = promises(&facts(), &tests)
            .into_iter()
            .find(|(p, ..)| p == "identity")
            .map(|(_, s, _)| s);
        assert_eq!(identity, Some(PromiseStatus::PartlyCovered));
        let only_skipped = test("identity", vec![skipped], None);
        assert_eq!(
            only_skipped.outcome(),
            TestOutcome::Failed,
            "a test that judged nothing did not pass"
        );
    }

    #[test]
    fn skipped_promise_is_skipped_not_passed() {
        let tests = vec![test("moves", vec![], Some("node-bound storage"))];
        let moves = promises(&facts(), &tests).pop().map(|(_, s, _)| s);
        assert_eq!(moves, Some(PromiseStatus::Skipped));
    }

    #[test]
    fn header_names_what_was_certified_and_is_the_same_for_the_same_inputs() {
        let tests = vec![test("identity", vec![pass()], None)];
        let one = header(&facts(), &tests);
        assert_eq!(one, header(&facts(), &tests));
        for expected in [
            "| cluster | Kubernetes v1.37.2 (linux/amd64) |",
            "| nodes | 3 |",
            "| storage | StorageClass standard, provisioner rancher.io/local-path, reclaimPolicy Delete, volumeBindingMode WaitForFirstConsumer |",
            "| harness | sts-conformance 0.1.0 |",
            "| manifests | sha256:abc |",
            "| identity | passed | identity PASS |",
            "| moves | not run |  |",
        ] {
            assert!(one.contains(expected), "{expected} missing in\n{one}");
        }
        assert!(!one.contains("2026"), "no time in the header: {one}");
    }

    #[test]
    fn facts_round_trip_through_the_report_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(RunFacts::read(dir.path()).expect("read"), None);
        let mut f = facts();
        f.nodes = Err("nodes is forbidden".into());
        f.write(dir.path()).expect("write");
        assert_eq!(RunFacts::read(dir.path()).expect("read"), Some(f));
    }
}
