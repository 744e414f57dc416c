//! `sts-conformance run`: the catalogue's cases on a target, one line per finished case,
//! the run report, and exit 0 (all passed), 1 (a case failed) or 2 (no run could be made).

use std::ffi::OsStr;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sts-conformance");

/// `sts-conformance run <args> --report-dir <reports>` with none of the harness's settings
/// from this environment but `env`.
fn run(args: &[&str], env: &[(&str, &OsStr)], reports: &std::path::Path) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .args(args)
        .arg("--report-dir")
        .arg(reports)
        .env_remove("E2E_KEEP")
        .env_remove("E2E_TARGET")
        .env_remove("E2E_SIM_FAULTS")
        .env_remove("E2E_KUBE_CONTEXT")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("RUST_LOG")
        .env_remove("E2E_FOCUS")
        .env_remove("E2E_SKIP")
        .envs(env.iter().copied());
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
            "--focus",
            "NodeLostPodMoves",
        ],
        &[],
        reports.path(),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("running 3 cases on kube-sim"), "{stdout}");
    // A skip says why on its line (kube-sim's default class is node-bound).
    assert!(
        stdout.contains("] SKIPPED survival-NodeLostPodMoves (")
            && stdout.contains("cannot leave its node"),
        "{stdout}"
    );
    assert!(stdout.contains("] PASS identity ("), "{stdout}");
    assert!(
        stdout.contains("] PASS scale-up-0-to-3-ScaleSubresource ("),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 passed, 0 failed, 1 skipped, 0 could not run"),
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
        &[("E2E_SIM_FAULTS", OsStr::new("scale-up:parallel"))],
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
        &[],
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
        .env_remove("E2E_FOCUS")
        .env_remove("E2E_SKIP")
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

/// A Sonobuoy plugin's args are fixed: E2E_FOCUS and E2E_SKIP (comma-separated) select its
/// cases, and the flags, when given, win.
#[test]
fn focus_and_skip_come_from_the_environment_unless_flags_are_given() {
    let list = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(["run", "--list"])
            .args(args)
            .env("E2E_FOCUS", "identity,scale-up-0")
            .env("E2E_SKIP", "Subresource")
            .output()
            .expect("run --list");
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        stdout
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert_eq!(list(&[]), ["identity"]);
    assert_eq!(
        list(&["--focus", "retention-5", "--skip", "none"]),
        ["retention-5-3-5"]
    );
}

/// In a Sonobuoy plugin's pod (`SONOBUOY_RESULTS_DIR` set), the reports are handed over as a
/// tarball and the `done` file names it.
#[test]
fn sonobuoy_results_dir_gets_the_tarball_and_the_done_file() {
    let reports = tempfile::tempdir().expect("tempdir");
    let results = tempfile::tempdir().expect("tempdir");
    let out = run(
        &["--target", "sim", "--focus", "identity"],
        &[("SONOBUOY_RESULTS_DIR", results.path().as_os_str())],
        reports.path(),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let names = tarball_entries(results.path());
    for expected in [
        "identity/junit.xml",
        "identity/history.json",
        "index.md",
        "run.json",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
}

/// A run that cannot be made still writes the done file, with the error in the tarball, so
/// Sonobuoy does not wait out its timeout.
#[test]
fn sonobuoy_gets_a_done_file_when_the_run_cannot_be_made() {
    let reports = tempfile::tempdir().expect("tempdir");
    let results = tempfile::tempdir().expect("tempdir");
    let missing = reports.path().join("no-such-kubeconfig");
    let out = run(
        &["--target", "kubeconfig", "--focus", "identity"],
        &[
            ("SONOBUOY_RESULTS_DIR", results.path().as_os_str()),
            ("KUBECONFIG", missing.as_os_str()),
            ("HOME", reports.path().as_os_str()),
        ],
        reports.path(),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    let names = tarball_entries(results.path());
    assert!(names.iter().any(|n| n == "run-error.txt"), "{names:?}");
}

/// The `done` file's content is the tarball's path; the tarball's entry names.
fn tarball_entries(results: &std::path::Path) -> Vec<String> {
    let done = std::fs::read_to_string(results.join("done")).expect("done file");
    let file = std::fs::File::open(done.trim()).expect("tarball named by done");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect()
}

/// The plugin definition Sonobuoy reads: a Job whose junit results the worker collects from
/// the results volume, running the in-cluster suites.
#[test]
fn sonobuoy_plugin_definition_runs_the_suites_in_cluster_with_junit_results() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../manifests/certification/sonobuoy-plugin.yaml"
    );
    let text = std::fs::read_to_string(path).expect("plugin definition");
    let plugin: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let config = &plugin["sonobuoy-config"];
    assert_eq!(config["driver"].as_str(), Some("Job"));
    assert_eq!(config["plugin-name"].as_str(), Some("sts-conformance"));
    assert_eq!(config["result-format"].as_str(), Some("junit"));
    let spec = &plugin["spec"];
    let args: Vec<&str> = spec["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(&args[..3], ["run", "--target", "in-cluster"]);
    let report_dir = args
        .iter()
        .position(|a| *a == "--report-dir")
        .and_then(|i| args.get(i + 1))
        .expect("--report-dir");
    let mounts = spec["volumeMounts"].as_sequence().expect("volumeMounts");
    let results = mounts
        .iter()
        .find(|m| m["name"].as_str() == Some("results"))
        .and_then(|m| m["mountPath"].as_str())
        .expect("results volume");
    assert_eq!(results, "/tmp/sonobuoy/results");
    assert!(
        !results.starts_with(report_dir),
        "the reports ({report_dir}) must not hold the results volume"
    );
}
