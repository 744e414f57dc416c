//! The GitHub workflows cannot run here (no docker, no kind), so their shape is checked:
//! the nightly runs the e2e suites against kind for at least three Kubernetes versions with
//! node images pinned by digest, always uploads reports and always deletes its cluster; the
//! push workflow runs `.ci/run`, which runs the README's test command.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde_yaml::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn read(rel: &str) -> Result<String> {
    let path = repo_root().join(rel);
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

fn load(rel: &str) -> Result<Value> {
    serde_yaml::from_str(&read(rel)?).with_context(|| format!("{rel} is not YAML"))
}

fn steps(job: &Value) -> Vec<&Value> {
    job["steps"]
        .as_sequence()
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

fn run_of(step: &Value) -> &str {
    step["run"].as_str().unwrap_or_default()
}

fn always(step: &Value) -> bool {
    step["if"].as_str() == Some("always()")
}

/// A kind node image pinned the way kind's release notes ask: `kindest/node:vX.Y.Z@sha256:<64 hex>`.
fn pinned_minor(image: &str) -> Option<&str> {
    let rest = image.strip_prefix("kindest/node:v")?;
    let (version, digest) = rest.split_once("@sha256:")?;
    let hex = digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit());
    let mut parts = version.split('.');
    let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
    let numeric = [major, minor, patch]
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    (hex && numeric && parts.next().is_none()).then_some(&version[..major.len() + 1 + minor.len()])
}

fn check_nightly(doc: &Value) -> Result<()> {
    ensure!(
        doc["on"]["schedule"]
            .as_sequence()
            .is_some_and(|s| !s.is_empty()),
        "nightly has no schedule"
    );
    let job = &doc["jobs"]["kind"];
    ensure!(job.is_mapping(), "nightly has no `kind` job");
    ensure!(
        job["env"]["E2E_TARGET"].as_str() == Some("kind"),
        "the nightly job must set E2E_TARGET=kind"
    );
    let include = job["strategy"]["matrix"]["include"]
        .as_sequence()
        .context("nightly has no matrix.include")?;
    ensure!(
        include.len() >= 3,
        "nightly covers {} Kubernetes versions, at least 3 are required",
        include.len()
    );
    for entry in include {
        let image = entry["image"].as_str().unwrap_or_default();
        let k8s = entry["k8s"].as_str().unwrap_or_default();
        match pinned_minor(image) {
            Some(minor) if minor == k8s => {}
            Some(minor) => {
                bail!("matrix entry k8s {k8s:?} runs image {image} (Kubernetes {minor})")
            }
            None => bail!("node image {image:?} is not kindest/node:vX.Y.Z@sha256:<digest>"),
        }
    }
    let steps = steps(job);
    ensure!(
        steps
            .iter()
            .any(|s| run_of(s).contains("cargo test") && run_of(s).contains("--test e2e")),
        "no step runs `cargo test --test e2e`"
    );
    check_nightly_hygiene(&steps)?;
    ensure!(
        steps.iter().any(|s| always(s)
            && s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))),
        "reports are not uploaded with `if: always()`"
    );
    ensure!(
        steps.iter().any(|s| always(s)
            && run_of(s).contains("kind delete cluster --name \"${E2E_KIND_CLUSTER_NAME}\"")),
        "the kind cluster is not deleted with `if: always()`"
    );
    Ok(())
}

/// The oldest major of each action that is still current (Node 24 runtimes).
const CURRENT_MAJORS: &[(&str, u32)] = &[
    ("actions/checkout", 7),
    ("actions/upload-artifact", 7),
    ("Swatinem/rust-cache", 2),
];

fn outdated_action(uses: &str) -> Option<String> {
    let (name, version) = uses.split_once('@')?;
    let (_, minimum) = CURRENT_MAJORS.iter().find(|(n, _)| *n == name)?;
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()?;
    (major < *minimum).then(|| format!("{uses} is older than the current major v{minimum}"))
}

/// What a kind job needs to pass on its first run: current actions, a cache saved even when
/// the job fails, a verified kind binary, inotify limits for the nodes' systemd and kubelet,
/// a disk-space check, and an explicit test parallelism bounded inside the job's time.
fn check_nightly_hygiene(steps: &[&Value]) -> Result<()> {
    for step in steps {
        if let Some(problem) = step["uses"].as_str().and_then(outdated_action) {
            bail!("{problem}");
        }
    }
    let uses = |name: &str| {
        steps
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(name)))
    };
    ensure!(
        uses("Swatinem/rust-cache")
            .is_some_and(|s| s["with"]["cache-on-failure"].as_bool() == Some(true)),
        "the rust cache is not saved on failure (cache-on-failure: true)"
    );
    let runs = |needle: &str| steps.iter().any(|s| run_of(s).contains(needle));
    ensure!(
        runs("sha256sum -c"),
        "the kind binary's checksum is not verified"
    );
    ensure!(
        runs("fs.inotify.max_user_watches"),
        "the inotify limits are not raised"
    );
    ensure!(runs("df "), "the disk space is not checked");
    let e2e = steps
        .iter()
        .find(|s| run_of(s).contains("--test e2e"))
        .context("no e2e step")?;
    ensure!(
        run_of(e2e).contains("--test-threads"),
        "the e2e step does not set --test-threads"
    );
    ensure!(
        e2e["timeout-minutes"].as_u64().is_some(),
        "the e2e step has no timeout-minutes of its own, so a hang eats the report and upload steps"
    );
    Ok(())
}

fn check_ci(doc: &Value) -> Result<()> {
    ensure!(doc["on"].get("push").is_some(), "ci does not run on push");
    let runs_ci = doc["jobs"]
        .as_mapping()
        .context("ci has no jobs")?
        .values()
        .flat_map(steps)
        .any(|s| run_of(s).trim() == "bash .ci/run");
    ensure!(runs_ci, "no ci step runs `bash .ci/run`");
    Ok(())
}

#[test]
fn nightly_runs_e2e_against_pinned_kind_images_and_cleans_up() -> Result<()> {
    check_nightly(&load(".github/workflows/nightly.yml")?)
}

#[test]
fn ci_runs_the_readme_test_command_through_ci_run() -> Result<()> {
    check_ci(&load(".github/workflows/ci.yml")?)?;
    let ci_run = read(".ci/run")?;
    let commands: Vec<&str> = ci_run
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('#') && !l.starts_with("set ") && !l.starts_with("cd ")
        })
        .collect();
    assert_eq!(
        commands,
        ["bash scripts/test.sh"],
        ".ci/run must run exactly the README's test command"
    );
    let readme = read("README.md")?;
    assert!(
        readme.lines().any(|l| l.trim() == "bash scripts/test.sh"),
        "the README must give `bash scripts/test.sh` as the test command"
    );
    Ok(())
}

fn mutated(f: impl FnOnce(&mut Value)) -> Result<Value> {
    let mut doc = load(".github/workflows/nightly.yml")?;
    f(&mut doc);
    Ok(doc)
}

fn matrix(doc: &mut Value) -> &mut Vec<Value> {
    match doc["jobs"]["kind"]["strategy"]["matrix"]["include"].as_sequence_mut() {
        Some(include) => include,
        None => panic!("nightly has no matrix.include"),
    }
}

#[test]
fn a_nightly_that_breaks_a_rule_is_rejected() -> Result<()> {
    let unpinned = mutated(|d| matrix(d)[0]["image"] = "kindest/node:v1.37.0".into())?;
    let wrong_minor = mutated(|d| matrix(d)[0]["k8s"] = "1.30".into())?;
    let two_versions = mutated(|d| matrix(d).truncate(2))?;
    let keeps_cluster = mutated(|d| {
        if let Some(steps) = d["jobs"]["kind"]["steps"].as_sequence_mut() {
            steps.retain(|s| !run_of(s).contains("kind delete cluster"));
        }
    })?;
    let old_checkout = mutated(|d| {
        if let Some(steps) = d["jobs"]["kind"]["steps"].as_sequence_mut() {
            steps[0]["uses"] = "actions/checkout@v4".into();
        }
    })?;
    let unverified_kind = mutated(|d| {
        if let Some(steps) = d["jobs"]["kind"]["steps"].as_sequence_mut() {
            for step in steps.iter_mut() {
                if let Some(run) = step["run"]
                    .as_str()
                    .map(|r| r.replace("sha256sum -c", "true"))
                {
                    step["run"] = run.into();
                }
            }
        }
    })?;
    let unbounded_threads = mutated(|d| {
        if let Some(steps) = d["jobs"]["kind"]["steps"].as_sequence_mut() {
            for step in steps.iter_mut() {
                if run_of(step).contains("--test e2e") {
                    step["run"] = "cargo test --locked --test e2e -- --nocapture".into();
                }
            }
        }
    })?;
    for (what, doc, says) in [
        ("checkout v4", old_checkout, "older than the current major"),
        ("unverified kind", unverified_kind, "checksum"),
        ("default test threads", unbounded_threads, "--test-threads"),
        ("unpinned image", unpinned, "is not kindest/node"),
        ("mismatched version", wrong_minor, "runs image"),
        ("two versions", two_versions, "at least 3"),
        ("no cleanup", keeps_cluster, "not deleted"),
    ] {
        let err = check_nightly(&doc)
            .err()
            .with_context(|| format!("{what} was accepted"))?;
        assert!(err.to_string().contains(says), "{what}: {err}");
    }
    Ok(())
}
