//! The JUnit XML of one test's report, built with quick-junit: one testsuite for the test,
//! one testcase per check (Pass: success with the summary as output; Fail: a `CheckFailed`
//! failure carrying the evidence; Unknown: a `CheckUnknown` failure carrying the reason, never
//! skipped, which dashboards count as green; Skipped, a check that could not run on the
//! target: `<skipped>` with the reason), the target and notes
//! as properties, the steps as the suite's output. Every text is redacted first.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use quick_junit::{
    NonSuccessKind, Property, Report as JUnit, SerializeError, TestCase, TestCaseStatus, TestSuite,
};

use checks::{CheckResult, Verdict};

use super::Report;
use super::redact::redact;

/// The `type` of the failure an Unknown check becomes.
pub(super) const UNKNOWN_TYPE: &str = "CheckUnknown";

/// The report as JUnit XML.
pub(super) fn render(report: &Report) -> Result<String, SerializeError> {
    let e = |t: &str| redact(t, &report.secrets);
    let started = DateTime::<Utc>::from(report.started).fixed_offset();
    let time = Duration::from_secs_f64(report.seconds());
    let mut suite = TestSuite::new(e(&report.test));
    suite.set_timestamp(started).set_time(time);
    suite.add_property(Property::new("target", e(&report.target)));
    for note in &report.notes {
        suite.add_property(Property::new("note", e(note)));
    }
    if let Some(reason) = &report.skipped {
        let mut status = TestCaseStatus::skipped();
        status.set_message(e(reason));
        let mut case = TestCase::new(e(&report.test), status);
        case.set_classname(e(&report.test));
        suite.add_test_case(case);
    }
    for (r, name) in report.results.iter().zip(testcase_names(&report.results)) {
        suite.add_test_case(testcase(r, &name, &report.test, &e));
    }
    if !report.steps.is_empty() {
        let steps: Vec<String> = report.steps.iter().map(|s| e(s)).collect();
        suite.set_system_out(format!("steps:\n{}", steps.join("\n")));
    }
    let mut junit = JUnit::new("sts-conformance");
    junit.set_timestamp(started).set_time(time);
    junit.add_test_suite(suite);
    junit.to_string()
}

/// Check names, numbered from the second use on ("PVC retention (2)"), so a check run
/// twice in one test gives two distinct testcases.
fn testcase_names(results: &[CheckResult]) -> Vec<String> {
    let mut uses: HashMap<&str, usize> = HashMap::new();
    results
        .iter()
        .map(|r| {
            let n = uses.entry(r.check).or_default();
            *n += 1;
            if *n == 1 {
                r.check.to_string()
            } else {
                format!("{} ({n})", r.check)
            }
        })
        .collect()
}

fn testcase(r: &CheckResult, name: &str, test: &str, e: &impl Fn(&str) -> String) -> TestCase {
    let (status, output) = match &r.verdict {
        Verdict::Pass { summary } => (TestCaseStatus::success(), Some(e(summary))),
        Verdict::Unknown { reason } => {
            // A check that could not judge is not a pass: red on every dashboard.
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(e(&format!("could not judge: {reason}")))
                .set_type(UNKNOWN_TYPE)
                .set_description(e(reason));
            (status, None)
        }
        Verdict::Skipped { reason } => {
            // Could not run on this target: skipped, with why (the test's promise is then
            // only partly covered).
            let mut status = TestCaseStatus::skipped();
            status.set_message(e(reason));
            (status, None)
        }
        Verdict::Fail { evidence } => {
            let message = evidence
                .first()
                .map(String::as_str)
                .unwrap_or("failed without evidence");
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(e(message))
                .set_type("CheckFailed")
                .set_description(e(&evidence.join("\n")));
            (status, None)
        }
    };
    let mut case = TestCase::new(e(name), status);
    case.set_classname(e(test));
    if let Some(output) = output {
        case.set_system_out(output);
    }
    case
}
