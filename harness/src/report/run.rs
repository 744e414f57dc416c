//! The report of a whole run: every test's verdicts, read back from the `history.json`
//! each test wrote, gathered into one Markdown document (`index.md`) that a vendor can hand
//! to a customer. Reads only what the tests wrote, which is already redacted.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::report::certification::{self, CertificationError, RunFacts};
pub use crate::report::certification::{ReportedCheck, TestOutcome, TestReport};
use checks::Verdict;

/// The file [`RunReport::write_index`] writes into the report directory.
pub const INDEX_FILE: &str = "index.md";

#[derive(Debug, thiserror::Error)]
pub enum RunReportError {
    #[error("failed to read report directory {}", path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read test report {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse test report {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no test reports (<test>/history.json) under {}: run `cargo test --test e2e` first, or pass the directory it wrote (E2E_REPORT_DIR)", path.display())]
    Empty { path: PathBuf },
    #[error("failed to read the run's facts")]
    Facts(#[from] CertificationError),
    #[error("failed to write the run report {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Every test report found directly under one directory, in test-name order.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub dir: PathBuf,
    pub tests: Vec<TestReport>,
    /// What the run certified (`run.json`), when the run wrote it.
    pub facts: Option<RunFacts>,
}

impl RunReport {
    /// Reads `<dir>/<test>/history.json` for every test directory; subdirectories
    /// without one (another run's reports, such as `kubeconfig/`) are not this run's.
    pub fn load(dir: &Path) -> Result<RunReport, RunReportError> {
        let entries = std::fs::read_dir(dir).map_err(|source| RunReportError::ReadDir {
            path: dir.to_owned(),
            source,
        })?;
        let mut tests = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| RunReportError::ReadDir {
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path().join("history.json");
            if path.is_file() {
                tests.push(read_test_report(&path)?);
            }
        }
        if tests.is_empty() {
            return Err(RunReportError::Empty {
                path: dir.to_owned(),
            });
        }
        tests.sort_by(|a, b| a.test.cmp(&b.test));
        Ok(RunReport {
            dir: dir.to_owned(),
            tests,
            facts: RunFacts::read(dir)?,
        })
    }

    pub fn any_failed(&self) -> bool {
        self.tests
            .iter()
            .any(|t| t.outcome() == TestOutcome::Failed)
    }

    fn tally(&self, outcome: TestOutcome) -> usize {
        self.tests.iter().filter(|t| t.outcome() == outcome).count()
    }

    /// The whole run as Markdown: where it ran, one table row per test, then the evidence
    /// of every failed check and the reason of every skip.
    pub fn markdown(&self) -> String {
        let mut md = String::from("# StatefulSet conformance report\n\n");
        if let Some(facts) = &self.facts {
            md.push_str(&certification::header(facts, &self.tests));
            md.push_str("## Tests\n\n");
        }
        for target in distinct(self.tests.iter().map(|t| t.target.as_str())) {
            let _ = writeln!(md, "- target: {target}");
        }
        let notes = self.tests.iter().flat_map(|t| t.notes.iter());
        for note in distinct(notes.map(String::as_str).filter(|n| is_run_wide(n))) {
            let _ = writeln!(md, "- {note}");
        }
        let _ = writeln!(
            md,
            "\n{} tests: {} passed, {} failed, {} skipped.\n",
            self.tests.len(),
            self.tally(TestOutcome::Passed),
            self.tally(TestOutcome::Failed),
            self.tally(TestOutcome::Skipped)
        );
        md.push_str("| test | outcome | checks | seconds |\n|---|---|---|---|\n");
        for t in &self.tests {
            let _ = writeln!(
                md,
                "| {} | {} | {} passed, {} failed, {} unknown | {} |",
                cell(&t.test),
                t.outcome().label(),
                t.count(Verdict::is_pass),
                t.count(Verdict::is_fail),
                t.count(Verdict::is_unknown),
                t.seconds()
                    .map_or_else(|| "?".to_owned(), |s| format!("{s:.1}"))
            );
        }
        self.failures(&mut md);
        self.skips(&mut md);
        md
    }

    fn failures(&self, md: &mut String) {
        let failed: Vec<&TestReport> = self
            .tests
            .iter()
            .filter(|t| t.outcome() == TestOutcome::Failed)
            .collect();
        if failed.is_empty() {
            return;
        }
        md.push_str("\n## Failures\n");
        for t in failed {
            let _ = writeln!(md, "\n### {}\n", t.test);
            if t.results.is_empty() {
                md.push_str("- no check ran, so nothing was proved\n");
            }
            for r in t.results.iter().filter(|r| !r.verdict.is_pass()) {
                let _ = writeln!(md, "- {} {}", r.verdict.label(), r.check);
                for line in verdict_lines(&r.verdict) {
                    let _ = writeln!(md, "  - {line}");
                }
            }
            if !t.steps.is_empty() {
                md.push_str("\nSteps:\n\n");
            }
            for step in &t.steps {
                let _ = writeln!(md, "1. {step}");
            }
        }
    }

    fn skips(&self, md: &mut String) {
        let skipped: Vec<(&str, &str)> = self
            .tests
            .iter()
            .filter_map(|t| t.skipped.as_deref().map(|why| (t.test.as_str(), why)))
            .collect();
        if skipped.is_empty() {
            return;
        }
        md.push_str("\n## Skipped\n\n");
        for (test, why) in skipped {
            let _ = writeln!(md, "- {test}: {why}");
        }
    }

    /// Writes [`RunReport::markdown`] to `<dir>/index.md` and returns its path.
    pub fn write_index(&self) -> Result<PathBuf, RunReportError> {
        let path = self.dir.join(INDEX_FILE);
        std::fs::write(&path, self.markdown()).map_err(|source| RunReportError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

fn read_test_report(path: &Path) -> Result<TestReport, RunReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunReportError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| RunReportError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Notes about the cluster rather than one test (the server version, the probed storage,
/// the test-double warning), shown once at the top.
fn is_run_wide(note: &str) -> bool {
    note.starts_with("server: ")
        || note.starts_with("storage: ")
        || note.contains("not a certification")
}

fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

fn verdict_lines(verdict: &Verdict) -> Vec<&str> {
    match verdict {
        Verdict::Pass { summary } => vec![summary.as_str()],
        Verdict::Fail { evidence } => evidence.iter().map(String::as_str).collect(),
        Verdict::Unknown { reason } | Verdict::Skipped { reason } => vec![reason.as_str()],
    }
}

/// A table cell: a `|` would end it.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;
    use checks::CheckResult;

    fn pass(check: &'static str) -> CheckResult {
        CheckResult::new(
            check,
            Verdict::Pass {
                summary: "ok".into(),
            },
        )
    }

    fn write(dir: &Path, report: Report) {
        report
            .write_all(&dir.join(&report.test), &[], &[""])
            .expect("write test report");
    }

    fn run_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = "kube-sim (test double, not a certification)";
        let note =
            "run against kube-sim, a test double: this is not a certification of any cluster";
        write(
            dir.path(),
            Report::new(target, "identity", vec![pass("ordinal identity")])
                .with_note(note)
                .with_note("storage: StorageClass standard (node-bound)"),
        );
        let lost = CheckResult::new(
            "no lost writes",
            Verdict::Fail {
                evidence: vec!["lost 1: row 7 (ordinal 1)".into()],
            },
        );
        write(
            dir.path(),
            Report::new(
                target,
                "survival-PodDeleteForce",
                vec![pass("at-most-one"), lost],
            )
            .with_note(note)
            .with_steps(vec![
                "seq 3 at 0.50 s: delete pod mysql-1 (uid u1) with grace 0 s".into(),
            ]),
        );
        write(
            dir.path(),
            Report::new(target, "survival-NodeLostPodMoves", vec![])
                .skipped_because("mysql-persistent-storage-mysql-1 cannot leave its node"),
        );
        // Another run's reports, one level down, are not part of this run.
        write(
            &dir.path().join("kubeconfig"),
            Report::new("kubeconfig", "identity", vec![]),
        );
        dir
    }

    #[test]
    fn gathers_every_test_of_the_run_with_its_outcome() {
        let dir = run_dir();
        let run = RunReport::load(dir.path()).expect("load");
        let outcomes: Vec<(&str, TestOutcome)> = run
            .tests
            .iter()
            .map(|t| (t.test.as_str(), t.outcome()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("identity", TestOutcome::Passed),
                ("survival-NodeLostPodMoves", TestOutcome::Skipped),
                ("survival-PodDeleteForce", TestOutcome::Failed),
            ]
        );
        assert!(run.any_failed());
    }

    #[test]
    fn markdown_lists_tests_failures_and_skips() {
        let dir = run_dir();
        let md = RunReport::load(dir.path()).expect("load").markdown();
        assert!(
            md.contains("- target: kube-sim (test double, not a certification)"),
            "{md}"
        );
        assert_eq!(
            md.matches("this is not a certification of any cluster")
                .count(),
            1,
            "{md}"
        );
        assert!(
            md.contains("\n- storage: StorageClass standard (node-bound)\n"),
            "{md}"
        );
        assert!(
            md.contains("3 tests: 1 passed, 1 failed, 1 skipped."),
            "{md}"
        );
        assert!(
            md.contains("| identity | PASS | 1 passed, 0 failed, 0 unknown |"),
            "{md}"
        );
        assert!(
            md.contains("| survival-PodDeleteForce | FAIL | 1 passed, 1 failed, 0 unknown |"),
            "{md}"
        );
        assert!(
            md.contains("### survival-PodDeleteForce\n\n- FAIL no lost writes\n  - lost 1: row 7 (ordinal 1)\n\nSteps:\n\n1. seq 3 at 0.50 s: delete pod mysql-1 (uid u1) with grace 0 s\n"),
            "{md}"
        );
        assert!(
            md.contains("## Skipped\n\n- survival-NodeLostPodMoves: mysql-persistent-storage-mysql-1 cannot leave its node\n"),
            "{md}"
        );
    }

    #[test]
    fn a_run_where_everything_passed_has_no_failures_section() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            Report::new("kind", "identity", vec![pass("ordinal identity")]),
        );
        let run = RunReport::load(dir.path()).expect("load");
        assert!(!run.any_failed());
        assert!(!run.markdown().contains("## Failures"));
        let index = run.write_index().expect("write index");
        assert_eq!(index, dir.path().join(INDEX_FILE));
        assert!(
            std::fs::read_to_string(index)
                .expect("read")
                .contains("| identity | PASS |")
        );
    }

    #[test]
    fn a_directory_without_reports_says_what_to_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = RunReport::load(dir.path()).expect_err("empty");
        assert!(matches!(err, RunReportError::Empty { .. }), "{err}");
        assert!(err.to_string().contains("cargo test --test e2e"), "{err}");
        let missing = RunReport::load(&dir.path().join("nope")).expect_err("missing");
        assert!(missing.to_string().contains("nope"), "{missing}");
    }

    #[test]
    fn a_malformed_report_names_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("identity")).expect("mkdir");
        std::fs::write(dir.path().join("identity/history.json"), "{\"test\": 1}").expect("write");
        let err = RunReport::load(dir.path()).expect_err("malformed");
        assert!(matches!(err, RunReportError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("identity/history.json"), "{err}");
    }
}
