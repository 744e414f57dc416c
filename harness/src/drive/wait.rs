//! Watch-driven waits, each bounded by a named timeout: one engine that keeps the watched
//! objects in a kube-runtime reflector store and judges them after every change.
//!
//! [`wait_for`] awaits a [`Condition`] on one object, [`wait_for_absent`] the disappearance
//! of named objects, and [`wait_until`] (the engine under both) any judgement over the
//! objects a watcher config selects. On timeout the error names what was awaited, on which
//! object, the timeout, and the last state seen. Status is trusted only once
//! `observedGeneration` has caught up with `generation` (see [`super::conditions`]).

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::debug;

use crate::support::settings::TargetKind;

use super::conditions::{Condition, Step};

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(
        "timed out after {}s waiting for {what} on {object}; last state seen: {last_state}",
        timeout.as_secs_f64()
    )]
    Timeout {
        what: String,
        object: String,
        timeout: Duration,
        last_state: String,
    },
    #[error("failed waiting for {what} on {object}: {reason}")]
    Impossible {
        what: String,
        object: String,
        reason: String,
    },
    #[error("failed waiting for {what} on {object}: the watch stream ended")]
    WatchEnded { what: String, object: String },
}

impl WaitError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, WaitError::Timeout { .. })
    }
}

/// Named bounds for every wait. Defaults suit kind (image pulls, a node marked NotReady
/// after ~40 s); [`Timeouts::for_target`] picks per target and applies `E2E_TIMEOUT_SCALE`.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeouts {
    /// All replicas Ready with observedGeneration caught up (includes image pulls).
    pub statefulset_ready: Duration,
    pub pod_ready: Duration,
    /// A deleted pod (graceful termination, 30 s by default) has disappeared.
    pub pod_gone: Duration,
    pub pvc_bound: Duration,
    /// A stopped node is marked NotReady (node-monitor-grace-period ~40 s, plus margin).
    pub node_not_ready: Duration,
    pub node_ready: Duration,
    /// mysqld accepts connections after its pod is Ready (there is no readiness probe).
    pub mysql_ready: Duration,
}

impl Timeouts {
    /// Defaults for a real cluster created by kind.
    pub fn kind_defaults() -> Timeouts {
        Timeouts {
            statefulset_ready: Duration::from_secs(600),
            pod_ready: Duration::from_secs(300),
            pod_gone: Duration::from_secs(180),
            pvc_bound: Duration::from_secs(180),
            node_not_ready: Duration::from_secs(120),
            node_ready: Duration::from_secs(180),
            mysql_ready: Duration::from_secs(300),
        }
    }

    /// Defaults for kube-sim: no image pulls, fast node monitor, but a shared 2-core
    /// machine starting MariaDB servers.
    pub fn sim_defaults() -> Timeouts {
        Timeouts {
            statefulset_ready: Duration::from_secs(180),
            pod_ready: Duration::from_secs(90),
            pod_gone: Duration::from_secs(60),
            pvc_bound: Duration::from_secs(60),
            node_not_ready: Duration::from_secs(60),
            node_ready: Duration::from_secs(60),
            mysql_ready: Duration::from_secs(120),
        }
    }

    /// Defaults for `kind` unscaled; an existing cluster gets kind's defaults too.
    pub fn defaults_for(target: TargetKind) -> Timeouts {
        match target {
            TargetKind::Sim => Timeouts::sim_defaults(),
            // Real controllers and real nodes (kubelet, containerd, images), as on kind.
            TargetKind::Kind
            | TargetKind::Kubeconfig
            | TargetKind::InCluster
            | TargetKind::Upstream => Timeouts::kind_defaults(),
        }
    }

    /// Every timeout multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> Timeouts {
        let s = |d: Duration| d.mul_f64(factor);
        Timeouts {
            statefulset_ready: s(self.statefulset_ready),
            pod_ready: s(self.pod_ready),
            pod_gone: s(self.pod_gone),
            pvc_bound: s(self.pvc_bound),
            node_not_ready: s(self.node_not_ready),
            node_ready: s(self.node_ready),
            mysql_ready: s(self.mysql_ready),
        }
    }
}

/// What a judgement over the watched objects concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    Done,
    /// Not yet; the state seen, for the timeout error.
    Pending(String),
    /// The awaited state can no longer happen; why.
    Impossible(String),
}

/// The last state a wait observed, and the watch error that followed it, if any.
struct LastSeen {
    state: String,
    error: Option<String>,
}

impl std::fmt::Display for LastSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            Some(err) => write!(f, "{} (then watch error: {err})", self.state),
            None => f.write_str(&self.state),
        }
    }
}

/// The engine: watches what `config` selects through a reflector store and, once the first
/// list is complete, judges the stored objects after every change until `judge` says done,
/// bounded by `timeout`. `what` and `object` name the wait in errors.
pub async fn wait_until<K>(
    api: &Api<K>,
    config: watcher::Config,
    what: &str,
    object: &str,
    timeout: Duration,
    mut judge: impl FnMut(&[Arc<K>]) -> Progress,
) -> Result<(), WaitError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut last = LastSeen {
        state: "nothing observed yet".to_owned(),
        error: None,
    };
    let watch = async {
        let (store, writer): (Store<K>, _) = reflector::store();
        let mut stream = pin!(reflector::reflector(
            writer,
            watcher(api.clone(), config).default_backoff()
        ));
        let mut listed = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(Event::InitDone) => listed = true,
                Ok(_) => {}
                Err(err) => {
                    last.error = Some(err.to_string());
                    continue;
                }
            }
            if !listed {
                continue;
            }
            match judge(&store.state()) {
                Progress::Done => return Ok(()),
                Progress::Pending(state) => {
                    last = LastSeen { state, error: None };
                    debug!(object, what, state = %last, "observed");
                }
                Progress::Impossible(reason) => {
                    return Err(WaitError::Impossible {
                        what: what.to_owned(),
                        object: object.to_owned(),
                        reason,
                    });
                }
            }
        }
        Err(WaitError::WatchEnded {
            what: what.to_owned(),
            object: object.to_owned(),
        })
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(result) => result,
        Err(_) => Err(WaitError::Timeout {
            what: what.to_owned(),
            object: object.to_owned(),
            timeout,
            last_state: last.to_string(),
        }),
    }
}

/// Waits until `condition` holds for the object `name`; returns it as last seen (`None`
/// when its absence satisfied the condition).
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    condition: Condition<K>,
    timeout: Duration,
) -> Result<Option<K>, WaitError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let object = match api.namespace() {
        Some(ns) => format!("{} {ns}/{name}", K::kind(&())),
        None => format!("{} {name}", K::kind(&())),
    };
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut seen: Option<K> = None;
    wait_until(api, config, &condition.what, &object, timeout, |objects| {
        seen = objects
            .iter()
            .find(|o| o.name_any() == name)
            .map(|o| (**o).clone());
        match condition.judge(seen.as_ref()) {
            Step::Done => Progress::Done,
            Step::Pending => Progress::Pending(condition.describe(seen.as_ref())),
            Step::Impossible(reason) => Progress::Impossible(reason),
        }
    })
    .await?;
    Ok(seen)
}

/// Waits until none of the named objects of kind `K` exists (in the api's scope).
pub async fn wait_for_absent<K>(
    api: &Api<K>,
    names: &[&str],
    timeout: Duration,
) -> Result<(), WaitError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let wanted: BTreeSet<&str> = names.iter().copied().collect();
    let kind = K::kind(&()).to_string();
    let what = format!("{kind} absent: {}", join(wanted.iter().copied()));
    let object = match api.namespace() {
        Some(ns) => format!("{kind} objects in namespace {ns}"),
        None => format!("{kind} objects"),
    };
    wait_until(
        api,
        watcher::Config::default(),
        &what,
        &object,
        timeout,
        |objects| absent_progress(&wanted, objects.iter().map(|o| o.name_any())),
    )
    .await
}

/// Done when none of `wanted` is among `present`; otherwise names those still present.
fn absent_progress(wanted: &BTreeSet<&str>, present: impl Iterator<Item = String>) -> Progress {
    let still: BTreeSet<String> = present.filter(|n| wanted.contains(n.as_str())).collect();
    if still.is_empty() {
        Progress::Done
    } else {
        Progress::Pending(format!(
            "still present: {}",
            join(still.iter().map(String::as_str))
        ))
    }
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_names_what_is_still_present() {
        let wanted: BTreeSet<&str> = ["mysql-3", "mysql-4"].into();
        let listed = |names: &[&str]| absent_progress(&wanted, names.iter().map(|n| n.to_string()));
        assert_eq!(
            listed(&["mysql-0", "mysql-4"]),
            Progress::Pending("still present: mysql-4".into())
        );
        assert_eq!(listed(&["mysql-0"]), Progress::Done);
    }

    #[test]
    fn timeout_error_names_everything() {
        let err = WaitError::Timeout {
            what: "3 ready replicas".into(),
            object: "StatefulSet ns/mysql".into(),
            timeout: Duration::from_secs(90),
            last_state: "readyReplicas 2/3, spec.replicas 3, observedGeneration 1/2".into(),
        };
        assert_eq!(
            err.to_string(),
            "timed out after 90s waiting for 3 ready replicas on StatefulSet ns/mysql; last state seen: readyReplicas 2/3, spec.replicas 3, observedGeneration 1/2"
        );
    }
    #[test]
    fn timeouts_scale_and_differ_by_target() {
        let kind = Timeouts::defaults_for(TargetKind::Kind);
        let sim = Timeouts::defaults_for(TargetKind::Sim);
        assert!(sim.statefulset_ready < kind.statefulset_ready);
        assert!(kind.node_not_ready > Duration::from_secs(40));
        let half = kind.scaled(0.5);
        assert_eq!(half.pod_ready, kind.pod_ready / 2);
    }
}
