//! The report of one test: its check results as JUnit XML (for CI), the full History as
//! JSON (for whoever has to believe the verdict) and a human summary. Everything written
//! is passed through [`redact`] first: reports are handed to customers.

pub mod certification;
mod junit;
mod redact;
pub mod run;
pub mod sonobuoy;

pub use redact::{REDACTED, redact};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use checks::history::Entry;
use checks::{CheckResult, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("failed to create report directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write report file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to render the JUnit XML")]
    Junit(#[source] quick_junit::SerializeError),
    #[error("failed to serialize the history for {path}")]
    Serialize {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// One test's results.
#[derive(Clone, Debug)]
pub struct Report {
    pub target: String,
    pub test: String,
    pub results: Vec<CheckResult>,
    pub started: SystemTime,
    pub finished: SystemTime,
    /// Free-form lines shown in the summary and as JUnit properties (e.g. "target is a
    /// test double, not a certification").
    pub notes: Vec<String>,
    /// Why the test could not run on this target (a missing capability), if it could not.
    pub skipped: Option<String>,
    /// What the harness did, in order (see [`checks::history::steps`]), so evidence that
    /// cites a seq can be read against the steps around it.
    pub steps: Vec<String>,
    pub(crate) secrets: Vec<String>,
}

/// The JSON history file: what was tested, where, and every entry.
#[derive(Serialize)]
struct HistoryFile<'a> {
    test: &'a str,
    target: &'a str,
    started: String,
    finished: String,
    results: &'a [CheckResult],
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<&'a str>,
    notes: &'a [String],
    steps: &'a [String],
    entries: &'a [Entry],
}

impl Report {
    /// A report finished now; see [`Report::started_at`].
    pub fn new(target: &str, test: &str, results: Vec<CheckResult>) -> Self {
        let now = SystemTime::now();
        Self {
            target: target.to_string(),
            test: test.to_string(),
            results,
            started: now,
            finished: now,
            notes: Vec::new(),
            skipped: None,
            steps: Vec::new(),
            secrets: Vec::new(),
        }
    }

    pub fn with_steps(mut self, steps: Vec<String>) -> Self {
        self.steps = steps;
        self
    }

    /// Marks the test as skipped on this target, with the reason the report shows.
    pub fn skipped_because(mut self, reason: impl Into<String>) -> Self {
        self.skipped = Some(reason.into());
        self
    }

    pub fn started_at(mut self, started: SystemTime) -> Self {
        self.started = started;
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Secrets to redact from everything this report writes or returns.
    pub fn with_secrets<S: AsRef<str>>(mut self, secrets: &[S]) -> Self {
        self.secrets
            .extend(secrets.iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// Why the test cannot run on this target, when it said so.
    pub fn skip_reason(&self) -> Option<&str> {
        self.skipped.as_deref()
    }

    /// True when every check passed (Unknown is not a pass), or the test was skipped with
    /// a reason. A test that ran and judged nothing did not pass: no check could fail.
    pub fn all_passed(&self) -> bool {
        let verdicts: Vec<&Verdict> = self.results.iter().map(|r| &r.verdict).collect();
        judged_passed(&verdicts, self.skipped.is_some())
    }

    fn count(&self, f: impl Fn(&Verdict) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.verdict)).count()
    }

    pub(crate) fn seconds(&self) -> f64 {
        self.finished
            .duration_since(self.started)
            .unwrap_or_default()
            .as_secs_f64()
    }

    /// One line per check (PASS / FAIL / UNKNOWN), the evidence indented under it.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "test {} on {} ({:.1} s)\n",
            self.test,
            self.target,
            self.seconds()
        );
        for note in &self.notes {
            let _ = writeln!(s, "note: {note}");
        }
        match &self.skipped {
            Some(reason) => {
                let _ = writeln!(s, "SKIPPED  {reason}");
            }
            None if self.results.is_empty() => {
                let _ = writeln!(s, "FAIL     no check ran, so nothing was proved");
            }
            None => {}
        }
        if !self.steps.is_empty() {
            s.push_str("steps:\n");
        }
        for step in &self.steps {
            let _ = writeln!(s, "  {step}");
        }
        for r in &self.results {
            let _ = writeln!(s, "{r}");
        }
        let _ = write!(
            s,
            "{} checks: {} passed, {} failed, {} unknown",
            self.results.len(),
            self.count(Verdict::is_pass),
            self.count(Verdict::is_fail),
            self.count(Verdict::is_unknown)
        );
        redact(&s, &self.secrets)
    }

    /// JUnit XML: one testsuite for the test, one testcase per check (see [`junit`]).
    pub fn junit_xml(&self) -> Result<String, ReportError> {
        junit::render(self).map_err(ReportError::Junit)
    }

    pub fn write_junit(&self, path: &Path) -> Result<(), ReportError> {
        write_file(path, &self.junit_xml()?)
    }

    pub fn write_summary(&self, path: &Path) -> Result<(), ReportError> {
        write_file(path, &(self.summary() + "\n"))
    }

    /// The whole history, with the test, target and results, as pretty JSON.
    pub fn write_history_json(&self, path: &Path, entries: &[Entry]) -> Result<(), ReportError> {
        let file = HistoryFile {
            test: &self.test,
            target: &self.target,
            started: rfc3339(self.started),
            finished: rfc3339(self.finished),
            results: &self.results,
            skipped: self.skipped.as_deref(),
            notes: &self.notes,
            steps: &self.steps,
            entries,
        };
        let json =
            serde_json::to_string_pretty(&file).map_err(|source| ReportError::Serialize {
                path: path.to_path_buf(),
                source,
            })?;
        write_file(path, &redact(&json, &self.secrets))
    }

    /// Writes `junit.xml`, `history.json` and `summary.txt` into `dir` (created if
    /// needed), redacting `secrets` in addition to the report's own.
    pub fn write_all<S: AsRef<str>>(
        &self,
        dir: &Path,
        entries: &[Entry],
        secrets: &[S],
    ) -> Result<(), ReportError> {
        let report = self.clone().with_secrets(secrets);
        std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        report.write_junit(&dir.join("junit.xml"))?;
        report.write_history_json(&dir.join("history.json"), entries)?;
        report.write_summary(&dir.join("summary.txt"))?;
        tracing::info!(dir = %dir.display(), test = %self.test, "report written");
        Ok(())
    }
}

/// Whether a test passed: every verdict is a pass or a check that could not run here
/// (skipped with its reason), and at least one check passed unless the whole test was
/// skipped with a reason.
pub(crate) fn judged_passed(verdicts: &[&Verdict], skipped: bool) -> bool {
    (skipped || verdicts.iter().any(|v| v.is_pass()))
        && verdicts.iter().all(|v| v.is_pass() || v.is_skipped())
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn write_file(path: &Path, contents: &str) -> Result<(), ReportError> {
    std::fs::write(path, contents).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use checks::history::{Event, History, WriteEvent};

    fn results() -> Vec<CheckResult> {
        vec![
            CheckResult::new("ordinal identity", Verdict::Pass { summary: "pods mysql-0..mysql-2".into() }),
            CheckResult::new(
                "reverse-order scale-down",
                Verdict::Fail {
                    evidence: vec![
                        "deletion of pod mysql-3 (uid u3) began at seq 6 while pod <mysql-4> & co existed".into(),
                        "second line".into(),
                    ],
                },
            ),
            CheckResult::new("no lost writes", Verdict::Unknown { reason: "ordinal \"2\" was never read".into() }),
        ]
    }

    #[test]
    fn junit_maps_verdicts_to_testcases() {
        let xml = Report::new("kube-sim", "scaling 5->3", results())
            .junit_xml()
            .expect("junit");
        assert!(
            xml.contains("tests=\"3\" skipped=\"0\" failures=\"2\" errors=\"0\""),
            "{xml}"
        );
        assert!(xml.contains("<testcase name=\"ordinal identity\" classname=\"scaling 5-&gt;3\">\n            <system-out>pods mysql-0..mysql-2</system-out>"), "{xml}");
        assert!(
            xml.contains("<failure message=\"deletion of pod mysql-3 (uid u3) began at seq 6 while pod &lt;mysql-4&gt; &amp; co existed\" type=\"CheckFailed\">"),
            "{xml}"
        );
        assert!(xml.contains("co existed\nsecond line</failure>"), "{xml}");
        assert!(
            xml.contains("<failure message=\"could not judge: ordinal &quot;2&quot; was never read\" type=\"CheckUnknown\">ordinal &quot;2&quot; was never read</failure>"),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"target\" value=\"kube-sim\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn junit_is_well_formed_xml_without_control_characters() {
        let report = Report::new(
            "kind",
            "t",
            vec![CheckResult::new(
                "c",
                Verdict::Unknown {
                    reason: "bell\u{7} <a href=\"x\">&'</a>".into(),
                },
            )],
        );
        let xml = report.junit_xml().expect("junit");
        assert!(!xml.contains('\u{7}'), "{xml}");
        let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("well-formed");
        let case = &parsed.test_suites[0].test_cases[0];
        match &case.status {
            quick_junit::TestCaseStatus::NonSuccess {
                kind: quick_junit::NonSuccessKind::Failure,
                message,
                ty,
                ..
            } => {
                assert_eq!(
                    message.as_ref().map(|m| m.as_str()),
                    Some("could not judge: bell <a href=\"x\">&'</a>")
                );
                assert_eq!(ty.as_ref().map(|t| t.as_str()), Some("CheckUnknown"));
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn junit_numbers_a_check_run_twice() {
        let pass = || Verdict::Pass {
            summary: "ok".into(),
        };
        let results = vec![
            CheckResult::new("PVC retention", pass()),
            CheckResult::new("PVC retention", pass()),
            CheckResult::new("no lost writes", pass()),
        ];
        let xml = Report::new("t", "t", results).junit_xml().expect("junit");
        assert!(xml.contains("name=\"PVC retention\" "), "{xml}");
        assert!(xml.contains("name=\"PVC retention (2)\" "), "{xml}");
        assert!(xml.contains("name=\"no lost writes\" "), "{xml}");
    }

    #[test]
    fn steps_come_before_the_checks_in_the_summary_and_in_junit_output() {
        let report = Report::new("kind", "t", results())
            .with_steps(vec![
                "seq 4 at 1.00 s: scale mysql 5->3 via <spec patch>".into(),
                "seq 9 at 2.00 s: stop node w2 (pw hunter2)".into(),
            ])
            .with_secrets(&["hunter2"]);
        let s = report.summary();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[1], "steps:", "{s}");
        assert_eq!(
            lines[2],
            "  seq 4 at 1.00 s: scale mysql 5->3 via <spec patch>"
        );
        assert_eq!(lines[3], "  seq 9 at 2.00 s: stop node w2 (pw <redacted>)");
        assert!(lines[4].starts_with("PASS"), "{s}");
        let xml = report.junit_xml().expect("junit");
        assert!(
            xml.contains("<system-out>steps:\nseq 4 at 1.00 s: scale mysql 5-&gt;3 via &lt;spec patch&gt;\nseq 9"),
            "{xml}"
        );
        assert!(!xml.contains("hunter2"), "{xml}");
    }

    #[test]
    fn summary_lists_every_check_with_indented_evidence() {
        let s = Report::new("kind", "t", results())
            .with_note("kind v1.33")
            .summary();
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines[0].starts_with("test t on kind"), "{s}");
        assert_eq!(lines[1], "note: kind v1.33");
        assert_eq!(lines[2], "PASS     ordinal identity: pods mysql-0..mysql-2");
        assert_eq!(lines[3], "FAIL     reverse-order scale-down");
        assert!(
            lines[4].starts_with("           - deletion of pod mysql-3"),
            "{s}"
        );
        assert_eq!(
            lines[6],
            "UNKNOWN  no lost writes: ordinal \"2\" was never read"
        );
        assert_eq!(lines[7], "3 checks: 1 passed, 1 failed, 1 unknown");
    }

    #[test]
    fn all_passed_needs_every_verdict_to_pass() {
        assert!(!Report::new("t", "t", results()).all_passed());
        let pass = vec![CheckResult::new(
            "x",
            Verdict::Pass {
                summary: "ok".into(),
            },
        )];
        assert!(Report::new("t", "t", pass).all_passed());
    }

    #[test]
    fn a_report_without_checks_has_not_passed() {
        let report = Report::new("t", "t", vec![]);
        assert!(!report.all_passed());
        assert!(
            report.summary().contains("FAIL     no check ran"),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn a_check_that_could_not_run_is_listed_as_skipped_with_its_reason() {
        let report = Report::new(
            "upstream",
            "identity",
            vec![
                CheckResult::new(
                    "ordinal identity",
                    Verdict::Pass {
                        summary: "ok".into(),
                    },
                ),
                CheckResult::skipped(
                    "DNS resolution in the cluster",
                    "no exec into pods on this target",
                ),
            ],
        );
        assert!(report.all_passed(), "a skipped check fails nothing");
        let summary = report.summary();
        assert!(
            summary.contains(
                "SKIPPED  DNS resolution in the cluster: no exec into pods on this target"
            ),
            "{summary}"
        );
        let xml = report.junit_xml().expect("junit");
        assert!(
            xml.contains("tests=\"2\" skipped=\"1\" failures=\"0\" errors=\"0\""),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"no exec into pods on this target\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn a_skipped_test_says_why_in_every_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = Report::new("kubeconfig", "survival-NodeKill", vec![])
            .skipped_because("no E2E_NODE_KILL_CMD <node> template");
        assert!(report.all_passed());
        let summary = report.summary();
        assert!(
            summary.contains("SKIPPED  no E2E_NODE_KILL_CMD <node> template"),
            "{summary}"
        );
        let xml = report.junit_xml().expect("junit");
        assert!(
            xml.contains("tests=\"1\" skipped=\"1\" failures=\"0\" errors=\"0\""),
            "{xml}"
        );
        assert!(
            xml.contains("name=\"survival-NodeKill\" classname=\"survival-NodeKill\">\n            <skipped message=\"no E2E_NODE_KILL_CMD &lt;node&gt; template\"/>"),
            "{xml}"
        );
        report.write_all(dir.path(), &[], &[""]).expect("write");
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("history.json")).expect("read"),
        )
        .expect("history.json is JSON");
        assert_eq!(json["skipped"], "no E2E_NODE_KILL_CMD <node> template");
    }

    #[test]
    fn write_all_writes_redacted_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entries = History::from_events([Event::Write(WriteEvent::Info {
            id: 1,
            error: "Access denied for password hunter2".into(),
        })]);
        let fail = vec![CheckResult::new(
            "no lost writes",
            Verdict::Fail {
                evidence: vec!["row 1 failed: hunter2".into()],
            },
        )];
        let report = Report::new("kind", "survival", fail);
        report
            .write_all(dir.path(), &entries, &["hunter2"])
            .expect("write reports");
        for file in ["junit.xml", "history.json", "summary.txt"] {
            let text = std::fs::read_to_string(dir.path().join(file)).expect("read report file");
            assert!(
                !text.contains("hunter2"),
                "{file} leaks the secret:\n{text}"
            );
            assert!(
                text.contains("redacted&gt;") || text.contains(REDACTED),
                "{file} lost the redacted text:\n{text}"
            );
        }
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("history.json")).expect("read"),
        )
        .expect("history.json is JSON");
        assert_eq!(json["entries"][0]["event"]["type"], "write");
        assert_eq!(json["results"][0]["verdict"]["verdict"], "fail");
    }

    #[test]
    fn write_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("junit.xml");
        let err = Report::new("t", "t", vec![])
            .write_junit(&path)
            .expect_err("no such dir");
        assert!(err.to_string().contains("missing/junit.xml"), "{err}");
    }
}
