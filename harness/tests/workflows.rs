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
    for (what, doc, says) in [
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
