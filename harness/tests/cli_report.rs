//! `sts-conformance report`: one document for a run, and an exit status CI can act on
//! (0 all passed or skipped, 1 a test failed, 2 no report could be made).

use std::path::Path;
use std::process::Command;

use checks::{CheckResult, Verdict};
use harness::report::Report;

const BIN: &str = env!("CARGO_BIN_EXE_sts-conformance");

fn write(dir: &Path, test: &str, verdict: Verdict) {
    Report::new(
        "kind",
        test,
        vec![CheckResult::new("ordinal identity", verdict)],
    )
    .write_all(&dir.join(test), &[], &[""])
    .expect("write test report");
}

fn report(dir: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["report", "--dir"])
        .arg(dir)
        .output()
        .expect("run sts-conformance report");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_passing_run_exits_zero_and_writes_its_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pass = Verdict::Pass {
        summary: "pods mysql-0..mysql-2".into(),
    };
    write(dir.path(), "identity", pass);
    let (code, stdout, stderr) = report(dir.path());
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("| identity | PASS |"), "{stdout}");
    let index = std::fs::read_to_string(dir.path().join("index.md")).expect("index.md");
    assert_eq!(index, stdout);
}

#[test]
fn a_failed_test_exits_one_with_its_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fail = Verdict::Fail {
        evidence: vec!["pod mysql-x4k2p is not named mysql-<ordinal>".into()],
    };
    write(dir.path(), "identity", fail);
    let (code, stdout, stderr) = report(dir.path());
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("  - pod mysql-x4k2p is not named mysql-<ordinal>"),
        "{stdout}"
    );
}

#[test]
fn no_reports_exits_two_and_says_what_to_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = report(dir.path());
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("cargo test --test e2e"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}
