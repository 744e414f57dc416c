//! `sts-conformance run`: the catalogue's cases on a target, one line per finished case,
//! the run report, and exit 0 (all passed), 1 (a case failed) or 2 (no run could be made).

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sts-conformance");

fn run(args: &[&str], faults: Option<&str>, reports: &std::path::Path) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .args(args)
        .arg("--report-dir")
        .arg(reports)
        .env_remove("E2E_KEEP")
        .env_remove("E2E_TARGET")
        .env_remove("RUST_LOG");
    match faults {
        Some(f) => cmd.env("E2E_SIM_FAULTS", f),
        None => cmd.env_remove("E2E_SIM_FAULTS"),
    };
    cmd.output().expect("run sts-conformance run")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn passing_run_prints_progress_and_the_run_report_and_exits_zero() {
    let reports = tempfile::tempdir().expect("tempdir");
    // A report an earlier run left is not this run's.
    let stale = reports.path().join("scale-down-5-to-3-ScaleSubresource");
    std::fs::create_dir_all(&stale).expect("stale dir");
    std::fs::write(stale.join("history.json"), "{}").expect("stale report");
    let out = run(
        &[
            "--target",
            "sim",
            "--focus",
            "identity",
            "--focus",
            "scale-up-0",
        ],
        None,
        reports.path(),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("running 2 cases on kube-sim"), "{stdout}");
    assert!(stdout.contains("] PASS identity ("), "{stdout}");
    assert!(
        stdout.contains("] PASS scale-up-0-to-3-ScaleSubresource ("),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 passed, 0 failed, 0 skipped, 0 could not run"),
        "{stdout}"
    );
    assert!(
        stdout.contains("# StatefulSet conformance report"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("scale-down-5-to-3"),
        "stale report in the run report: {stdout}"
    );
    assert!(reports.path().join("index.md").is_file());
    assert!(reports.path().join("identity/junit.xml").is_file());
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn failing_case_exits_one_naming_it_and_keeps_its_namespace_dump() {
    let reports = tempfile::tempdir().expect("tempdir");
    let out = run(
        &["--target", "sim", "--focus", "scale-up-0-to-3"],
        Some("scale-up:parallel"),
        reports.path(),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("] FAIL scale-up-0-to-3-ScaleSubresource ("),
        "{stdout}"
    );
    assert!(stdout.contains("namespace dump in"), "{stdout}");
    let dump = reports
        .path()
        .join("scale-up-0-to-3-ScaleSubresource")
        .join("namespace-dump.txt");
    assert!(dump.is_file(), "{stdout}");
}

#[test]
fn no_matching_case_exits_two_and_says_so() {
    let reports = tempfile::tempdir().expect("tempdir");
    let out = run(
        &["--target", "sim", "--focus", "no-such-case"],
        None,
        reports.path(),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("no case matches --focus [\"no-such-case\"]"),
        "{stderr}"
    );
}

#[test]
fn list_names_every_case_and_its_promise() {
    let out = Command::new(BIN)
        .args(["run", "--list"])
        .output()
        .expect("run --list");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("survival-NodeKill"), "{stdout}");
    assert!(
        stdout.contains("pods created and deleted in a strict order"),
        "{stdout}"
    );
}
