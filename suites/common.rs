//! What every suite shares: the one cluster of this run, the per-test environment with a
//! bound on its duration, the node lock, the target's cap on tests at once (kind), and how
//! a finished test reports.

use std::time::Duration;

use anyhow::bail;
use checks::CheckResult;
use harness::cluster::target::{self, Cluster};
use harness::scenario::TestEnv;
use harness::support::errors;
use tokio::sync::RwLock;

/// Tests that stop nodes take this exclusively; every other test shares it, so a node
/// kill never disturbs another test's pods.
static NODE_LOCK: RwLock<()> = RwLock::const_new(());

/// Whether a test disturbs nodes (and so must run alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exclusive {
    No,
    Nodes,
}

/// The cluster shared by every test of this binary.
pub async fn cluster() -> anyhow::Result<&'static Cluster> {
    target::shared_cluster()
        .await
        .map_err(|e| readable("failed to get the cluster for this run", &e))
}

/// One line per failure: harness errors embed their causes in their messages, so anyhow's
/// "Caused by" list would repeat each cause once per layer.
fn readable(context: &str, err: &(dyn std::error::Error + 'static)) -> anyhow::Error {
    anyhow::anyhow!("{context}: {}", errors::chain(err))
}

/// Upper bound for one whole test, scaled like every other timeout.
fn test_timeout(cluster: &Cluster) -> Duration {
    cluster.timeouts().statefulset_ready * 4
}

/// Runs one test: a fresh environment, the body (which returns the check results), then
/// reports. Fails with the evidence and a dump of the namespace when a check fails, and
/// with the error and the dump when a step fails or the test runs out of time.
pub async fn run<F>(test: &str, exclusive: Exclusive, body: F) -> anyhow::Result<()>
where
    F: AsyncFnOnce(&TestEnv) -> anyhow::Result<Vec<CheckResult>>,
{
    let cluster = cluster().await?;
    let _shared = match exclusive {
        Exclusive::No => Some(NODE_LOCK.read().await),
        Exclusive::Nodes => None,
    };
    let _alone = match exclusive {
        Exclusive::Nodes => Some(NODE_LOCK.write().await),
        Exclusive::No => None,
    };
    // Taken after the node lock, so a test waiting for a slot never holds up a node test.
    let _slot = match cluster.test_slots() {
        Some(slots) => Some(slots.acquire().await?),
        None => None,
    };
    let limit = test_timeout(cluster);
    let env = TestEnv::start(cluster, test)
        .await
        .map_err(|e| readable(&format!("{test}: failed to prepare the test"), &e))?;
    tracing::info!(test, namespace = env.namespace.name(), "started");
    // Logged from this crate, so `#[traced_test]` (which listens to it alone) captures it.
    env.history.on_action(|step| tracing::info!("step {step}"));
    let ran = match tokio::time::timeout(limit, body(&env)).await {
        Ok(ran) => ran,
        Err(_) => Err(anyhow::anyhow!(
            "test {test} did not finish within {limit:?}"
        )),
    };
    let results = match ran {
        Ok(results) => results,
        Err(err) => {
            let outcome = env.abandon(&errors::chain(err.as_ref())).await?;
            bail!(
                "{test}: a step failed before the checks ran\n{}\n--- namespace dump ---\n{}",
                outcome.summary,
                outcome.dump
            );
        }
    };
    let outcome = env.finish(results).await?;
    if outcome.passed {
        println!("{}", outcome.summary);
    } else {
        bail!(
            "{test}: a conformance check failed\n{}\n--- namespace dump ---\n{}",
            outcome.summary,
            outcome.dump
        );
    }
    Ok(())
}

/// Says why a test cannot run here, on stdout and in its report (JUnit `<skipped>`); the
/// Rust test then passes, so the reason is what tells a skip from a pass. Returns the
/// (empty) check results for the body to return.
pub fn skip(env: &TestEnv, reason: &str) -> Vec<CheckResult> {
    println!("SKIPPED {}: {reason}", env.test);
    env.skip(reason);
    Vec::new()
}
