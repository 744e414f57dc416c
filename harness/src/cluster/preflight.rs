//! Preflight checks that run once per cluster, before any test: facts about the nodes that
//! would make mysql:5.7 fail for reasons that have nothing to do with StatefulSets.
//!
//! The open-files limit: mysqld 5.7 sizes its memory from `ulimit -n`; under an enormous
//! limit (containerd's `LimitNOFILE=infinity` on kind images built on Debian trixie, kind
//! #4244/#4245) it needs ~16 GB or fails its startup (kind #760, docker-library/mysql
//! #982). A short-lived pod running the workload image prints `ulimit -n`; the harness
//! reads its log and fails fast naming the limit when it is above [`MAX_OPEN_FILES`]. The pod
//! runs in the `default` namespace under a fresh name and is deleted afterwards.

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, LogParams, PostParams};
use kube::{Api, Client};
use tracing::info;

use crate::drive::conditions::{Condition, Step, describe_pod};
use crate::drive::wait::{self, WaitError};
use crate::support::names::random_suffix;

/// The highest open-files limit mysql:5.7 starts with in a small memory budget; the kind
/// clusters the harness creates set exactly this (see `kind_setup`).
pub const MAX_OPEN_FILES: u64 = 1_048_576;
/// The preflight pod's name prefix (a random suffix follows).
pub const POD_PREFIX: &str = "sts-conformance-open-files-";
/// Where the preflight pod runs.
pub const NAMESPACE: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "pods on this cluster get an open-files limit of {limit} (`ulimit -n` in {image}), above {MAX_OPEN_FILES}: \
         mysqld 5.7 sizes its memory from it and fails to start (kind #760, docker-library/mysql #982). \
         containerd runs with LimitNOFILE=infinity (kind #4244, #4245): set LimitNOFILE={MAX_OPEN_FILES} in a \
         containerd.service drop-in on every node (the kind clusters this harness creates have one)"
    )]
    TooHigh { limit: String, image: String },
    #[error("failed to read the open-files limit: the preflight pod printed {output:?}")]
    Unreadable { output: String },
    #[error("failed to {action} the preflight pod {NAMESPACE}/{pod}")]
    Api {
        action: &'static str,
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("the preflight pod did not finish")]
    Wait(#[source] WaitError),
}

/// A pod `name` running `sh -c 'ulimit -n'` in `image` once.
pub fn limit_pod(name: &str, image: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "sts-conformance".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".to_owned()),
            termination_grace_period_seconds: Some(0),
            containers: vec![Container {
                name: "ulimit".to_owned(),
                image: Some(image.to_owned()),
                image_pull_policy: Some("IfNotPresent".to_owned()),
                command: Some(vec!["sh".into(), "-c".into(), "ulimit -n".into()]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// Judges what `ulimit -n` printed: the limit when it is at most [`MAX_OPEN_FILES`].
pub fn judge_limit(output: &str, image: &str) -> Result<u64, PreflightError> {
    let text = output.trim();
    match text.parse::<u64>() {
        Ok(limit) if limit <= MAX_OPEN_FILES => Ok(limit),
        Ok(_) => Err(PreflightError::TooHigh {
            limit: text.to_owned(),
            image: image.to_owned(),
        }),
        Err(_) if text == "unlimited" => Err(PreflightError::TooHigh {
            limit: text.to_owned(),
            image: image.to_owned(),
        }),
        Err(_) => Err(PreflightError::Unreadable {
            output: text.chars().take(200).collect(),
        }),
    }
}

/// Runs the preflight pod, waits for it to finish within `timeout`, reads its log, deletes
/// it and judges the limit.
pub async fn check_open_files(
    client: &Client,
    image: &str,
    timeout: Duration,
) -> Result<u64, PreflightError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let name = format!("{POD_PREFIX}{}", random_suffix(5));
    let output = run_limit_pod(&pods, &name, image, timeout).await;
    if let Err(err) = pods
        .delete(&name, &DeleteParams::default().grace_period(0))
        .await
    {
        tracing::warn!(pod = %name, "failed to delete the preflight pod: {err}");
    }
    let limit = judge_limit(&output?, image)?;
    info!(limit, image, "open-files limit in pods is sane");
    Ok(limit)
}

async fn run_limit_pod(
    pods: &Api<Pod>,
    name: &str,
    image: &str,
    timeout: Duration,
) -> Result<String, PreflightError> {
    let api_error = |action| {
        let pod = name.to_owned();
        move |source| PreflightError::Api {
            action,
            pod,
            source,
        }
    };
    // On a cluster made seconds ago the `default` ServiceAccount may not exist yet, and the
    // ServiceAccount admission plugin refuses pods until it does: retry that refusal only.
    let pod = limit_pod(name, image);
    let create = || async { pods.create(&PostParams::default(), &pod).await };
    create
        .retry(
            ExponentialBuilder::default()
                .with_jitter()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(5))
                .with_total_delay(Some(timeout))
                .without_max_times(),
        )
        .when(no_service_account_yet)
        .await
        .map_err(api_error("create"))?;
    wait::wait_for(pods, name, pod_finished(), timeout)
        .await
        .map_err(PreflightError::Wait)?;
    pods.logs(name, &LogParams::default())
        .await
        .map_err(api_error("read the log of"))
}

/// `pods "x" is forbidden: error looking up service account default/default: serviceaccount
/// "default" not found`.
fn no_service_account_yet(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 403 && s.message.contains("service account"))
}

/// The pod ran to completion (Succeeded); Failed is impossible to recover from.
fn pod_finished() -> Condition<Pod> {
    Condition::new(
        "pod finished (phase Succeeded)",
        |pod: Option<&Pod>| match pod
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.as_deref())
        {
            Some("Succeeded") => Step::Done,
            Some("Failed") => Step::Impossible("the pod failed".to_owned()),
            _ => Step::Pending,
        },
        describe_pod,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_above_the_bound_fail_naming_the_limit() {
        assert_eq!(judge_limit("1048576\n", "mysql:5.7").unwrap(), 1_048_576);
        assert_eq!(judge_limit("65536", "mysql:5.7").unwrap(), 65_536);
        for huge in ["1073741816", "unlimited"] {
            let err = judge_limit(huge, "mysql:5.7").unwrap_err().to_string();
            assert!(err.contains(huge) && err.contains("mysql:5.7"), "{err}");
            assert!(err.contains("LimitNOFILE"), "{err}");
        }
        assert!(matches!(
            judge_limit("sh: ulimit: not found", "x"),
            Err(PreflightError::Unreadable { .. })
        ));
    }

    #[test]
    fn the_pod_runs_ulimit_once() {
        let pod = limit_pod("p", "mysql:5.7");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            spec.containers[0].command.as_deref(),
            Some(&["sh".to_owned(), "-c".to_owned(), "ulimit -n".to_owned()][..])
        );
    }
}
