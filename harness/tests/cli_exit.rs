//! No command panics on a normal exit: `up --target sim --once` provisions kube-sim, tears
//! it down at exit (logging as it goes) and exits 0 without a panic message.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sts-conformance");

#[test]
fn up_once_exits_zero_without_a_panic() {
    let reports = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["up", "--target", "sim", "--once"])
        .env("E2E_REPORT_DIR", reports.path())
        .env_remove("E2E_KEEP")
        .env("RUST_LOG", "info")
        .output()
        .expect("run sts-conformance up");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("ready:"), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The teardown still ran, and logged that it did.
    assert!(stderr.contains("cleanup: stop kube-sim"), "{stderr}");
}
