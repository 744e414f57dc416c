//! The pod status a kubelet posts, built as a pure function of what the node knows about
//! the pod's sandbox and container (tested inline, including inputs that must not pass).
//!
//! The kubelet owns the conditions `PodReadyToStartContainers`, `Initialized`,
//! `ContainersReady` and `Ready`; others (`PodScheduled` from the scheduler,
//! `DisruptionTarget` from the taint-eviction controller) are left alone: the patch is a
//! strategic merge patch, whose `conditions` merge by `type`. A condition's
//! `lastTransitionTime` moves only when its status flips.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube_sim::kubelet::status::normalized_image;

/// The conditions the kubelet owns.
pub const KUBELET_CONDITIONS: [&str; 4] = [
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "Ready",
];

/// A container's run that ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exited {
    pub exit_code: i32,
    /// `Completed` (exit 0), `Error`, or `Unknown` when the node lost track of it.
    pub reason: String,
    pub started_at: Time,
    pub finished_at: Time,
    pub container_id: String,
}

impl Exited {
    /// The reason the kubelet gives an exit code.
    pub fn reason_for(exit_code: i32) -> &'static str {
        if exit_code == 0 { "Completed" } else { "Error" }
    }

    fn state(&self) -> ContainerState {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                container_id: Some(self.container_id.clone()),
                exit_code: self.exit_code,
                finished_at: Some(self.finished_at.clone()),
                reason: Some(self.reason.clone()),
                started_at: Some(self.started_at.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// The state of the container the node runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Run {
    /// Not started (yet): `ContainerCreating`, `CrashLoopBackOff`, `CreateContainerError`, ...
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        container_id: String,
        started_at: Time,
    },
    /// Exited and not restarted (the pod is terminating).
    Terminated(Exited),
}

/// One container of the pod as the node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub run: Run,
    pub restart_count: i32,
    /// The previous run (`lastState.terminated`).
    pub last: Option<Exited>,
}

impl ContainerView {
    fn running(&self) -> bool {
        matches!(self.run, Run::Running { .. })
    }

    /// Whether the container ran at least once (the pod is then past Pending).
    fn has_run(&self) -> bool {
        !matches!(self.run, Run::Waiting { .. }) || self.restart_count > 0 || self.last.is_some()
    }

    fn status(&self) -> ContainerStatus {
        let image = normalized_image(&self.image);
        let (state, container_id) = match &self.run {
            Run::Waiting { reason, message } => (
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason.clone()),
                        message: message.clone(),
                    }),
                    ..Default::default()
                },
                None,
            ),
            Run::Running {
                container_id,
                started_at,
            } => (
                ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(started_at.clone()),
                    }),
                    ..Default::default()
                },
                Some(container_id.clone()),
            ),
            Run::Terminated(exited) => (exited.state(), Some(exited.container_id.clone())),
        };
        // The kubelet reports the image digest once an image is present; the node has no
        // images, so it names the binary that stands in for it.
        let image_id = if container_id.is_some() {
            format!("hollow://mariadbd/{image}")
        } else {
            String::new()
        };
        ContainerStatus {
            name: self.name.clone(),
            image,
            image_id,
            container_id,
            // No readiness probe: a running container is ready (before mysqld accepts
            // connections, as on a real kubelet).
            ready: self.running(),
            started: Some(self.running()),
            restart_count: self.restart_count,
            state: Some(state),
            last_state: Some(self.last.as_ref().map(Exited::state).unwrap_or_default()),
            ..Default::default()
        }
    }
}

/// Everything the node knows about one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub host_ip: Ipv4Addr,
    /// The sandbox's address; None before it exists or after it was torn down.
    pub pod_ip: Option<Ipv4Addr>,
    pub start_time: Time,
    pub containers: Vec<ContainerView>,
    /// The pod is being deleted and its containers have stopped: the phase becomes
    /// terminal (Succeeded when every container exited 0, else Failed).
    pub terminal: bool,
}

impl PodView {
    fn phase(&self) -> &'static str {
        if self.terminal {
            let all_zero = self.containers.iter().all(|c| match &c.run {
                Run::Terminated(e) => e.exit_code == 0,
                _ => false,
            });
            return if all_zero && !self.containers.is_empty() {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if self.containers.iter().any(ContainerView::has_run) {
            "Running"
        } else {
            "Pending"
        }
    }
}

/// The status the kubelet would post for `view`, given the pod's current status (for
/// transition times and the start time, which the kubelet keeps).
pub fn desired_status(current: Option<&PodStatus>, view: &PodView, now: &Time) -> PodStatus {
    let all_ready = !view.containers.is_empty()
        && view.containers.iter().all(ContainerView::running)
        && !view.terminal;
    let unready: Vec<&str> = view
        .containers
        .iter()
        .filter(|c| !c.running() || view.terminal)
        .map(|c| c.name.as_str())
        .collect();
    // The kubelet says PodCompleted only for a pod that succeeded.
    let succeeded = view.phase() == "Succeeded";
    let reason_message = |ok: bool| {
        if ok {
            (None, None)
        } else if succeeded {
            (Some("PodCompleted".to_string()), None)
        } else {
            (
                Some("ContainersNotReady".to_string()),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            )
        }
    };
    let sandbox = view.pod_ip.is_some() && !view.terminal;
    let existing = current.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    let condition = |type_: &str, ok: bool, (reason, message): (Option<String>, Option<String>)| {
        let status = if ok { "True" } else { "False" }.to_string();
        let last_transition_time = existing
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        PodCondition {
            type_: type_.to_string(),
            status,
            reason,
            message,
            last_transition_time: Some(last_transition_time),
            ..Default::default()
        }
    };
    let initialized_reason = if succeeded {
        (Some("PodCompleted".to_string()), None)
    } else {
        (None, None)
    };
    let conditions = vec![
        condition("PodReadyToStartContainers", sandbox, (None, None)),
        condition("Initialized", true, initialized_reason),
        condition("ContainersReady", all_ready, reason_message(all_ready)),
        condition("Ready", all_ready, reason_message(all_ready)),
    ];
    let start_time = current
        .and_then(|s| s.start_time.clone())
        .unwrap_or_else(|| view.start_time.clone());
    let host = view.host_ip.to_string();
    PodStatus {
        phase: Some(view.phase().to_string()),
        conditions: Some(conditions),
        host_ip: Some(host.clone()),
        host_ips: Some(vec![HostIP { ip: host }]),
        pod_ip: view.pod_ip.map(|ip| ip.to_string()),
        pod_ips: view.pod_ip.map(|ip| vec![PodIP { ip: ip.to_string() }]),
        start_time: Some(start_time),
        container_statuses: Some(view.containers.iter().map(ContainerView::status).collect()),
        ..Default::default()
    }
}

/// Whether posting `desired` would change what the pod shows (the fields the kubelet
/// owns; other conditions are ignored).
pub fn differs(current: Option<&PodStatus>, desired: &PodStatus) -> bool {
    let Some(current) = current else {
        return true;
    };
    let owned = |s: &PodStatus| -> Vec<PodCondition> {
        let mut cs: Vec<PodCondition> = s
            .conditions
            .iter()
            .flatten()
            .filter(|c| KUBELET_CONDITIONS.contains(&c.type_.as_str()))
            .cloned()
            .map(|c| PodCondition {
                // The API server may set fields the kubelet does not (probe times).
                last_probe_time: None,
                observed_generation: None,
                ..c
            })
            .collect();
        cs.sort_by(|a, b| a.type_.cmp(&b.type_));
        cs
    };
    current.phase != desired.phase
        || owned(current) != owned(desired)
        || current.host_ip != desired.host_ip
        || current.pod_ip != desired.pod_ip
        || current.pod_ips != desired.pod_ips
        || current.start_time != desired.start_time
        || current.container_statuses != desired.container_statuses
}

/// The strategic merge patch that posts `desired` on the status subresource. `podIP` and
/// `podIPs` are removed explicitly when the sandbox is gone.
pub fn status_patch(desired: &PodStatus) -> serde_json::Value {
    let mut status = serde_json::to_value(desired).unwrap_or_default();
    if let Some(map) = status.as_object_mut() {
        if desired.pod_ip.is_none() {
            map.insert("podIP".into(), serde_json::Value::Null);
            map.insert("podIPs".into(), serde_json::Value::Null);
        }
        // podIPs and hostIPs merge by `ip`: a new address must replace the old one, not
        // join it (a pod restarted on a rebooted node gets a new sandbox address).
        for key in ["podIPs", "hostIPs"] {
            if let Some(serde_json::Value::Array(items)) = map.get_mut(key) {
                items.insert(0, serde_json::json!({"$patch": "replace"}));
            }
        }
    }
    serde_json::json!({ "status": status })
}

/// The container state the pod's status shows for `name`, if any.
pub fn reported_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

/// What a node that lost its memory of a pod (a restarted agent) learns from the pod's
/// status: the restart count, and the last run if the status shows one. A container the
/// status shows running is one the node no longer runs: it ended, how is unknown.
pub fn remembered_from_status(status: &ContainerStatus, now: &Time) -> (i32, Option<Exited>) {
    let state = status.state.as_ref();
    if let Some(running) = state.and_then(|s| s.running.as_ref()) {
        let exited = Exited {
            exit_code: 255,
            reason: "Unknown".into(),
            started_at: running.started_at.clone().unwrap_or_else(|| now.clone()),
            finished_at: now.clone(),
            container_id: status.container_id.clone().unwrap_or_default(),
        };
        return (status.restart_count, Some(exited));
    }
    let from_terminated = |t: &ContainerStateTerminated| Exited {
        exit_code: t.exit_code,
        reason: t
            .reason
            .clone()
            .unwrap_or_else(|| Exited::reason_for(t.exit_code).into()),
        started_at: t.started_at.clone().unwrap_or_else(|| now.clone()),
        finished_at: t.finished_at.clone().unwrap_or_else(|| now.clone()),
        container_id: t.container_id.clone().unwrap_or_default(),
    };
    let last = state
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| {
            status
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
        })
        .map(from_terminated);
    (status.restart_count, last)
}

/// `now`, truncated to the second as the API server stores `Time`s (so a status read back
/// compares equal to the one posted).
pub fn now_time() -> Time {
    let secs = chrono::Utc::now().timestamp();
    Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + secs).expect("in range"))
    }

    fn view(run: Run, restarts: i32) -> PodView {
        PodView {
            host_ip: Ipv4Addr::new(10, 77, 0, 2),
            pod_ip: Some(Ipv4Addr::new(10, 77, 1, 2)),
            start_time: t(0),
            containers: vec![ContainerView {
                name: "mysql".into(),
                image: "mysql:5.7".into(),
                run,
                restart_count: restarts,
                last: None,
            }],
            terminal: false,
        }
    }

    fn running(at: i64) -> Run {
        Run::Running {
            container_id: "hollow://abc".into(),
            started_at: t(at),
        }
    }

    fn condition<'a>(s: &'a PodStatus, type_: &str) -> &'a PodCondition {
        s.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("condition {type_} missing"))
    }

    #[test]
    fn running_container_is_ready_without_a_probe() {
        let s = desired_status(None, &view(running(1), 0), &t(1));
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(condition(&s, "Ready").status, "True");
        assert_eq!(condition(&s, "ContainersReady").status, "True");
        assert_eq!(condition(&s, "PodReadyToStartContainers").status, "True");
        assert_eq!(s.pod_ip.as_deref(), Some("10.77.1.2"));
        assert_eq!(
            s.host_ips.as_ref().map(|h| h[0].ip.as_str()),
            Some("10.77.0.2")
        );
        let c = &s.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(c.container_id.as_deref(), Some("hollow://abc"));
        assert_eq!(c.image, "docker.io/library/mysql:5.7");
        assert!(c.ready);
        assert_eq!(c.started, Some(true));
    }

    #[test]
    fn creating_container_keeps_the_pod_pending_and_not_ready() {
        let v = view(
            Run::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            0,
        );
        let s = desired_status(None, &v, &t(1));
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let ready = condition(&s, "Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [mysql]")
        );
        let c = &s.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(c.container_id, None);
        assert_eq!(c.image_id, "");
    }

    #[test]
    fn crash_loop_shows_last_state_and_stays_running_phase() {
        let mut v = view(
            Run::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some("back-off 10s".into()),
            },
            1,
        );
        v.containers[0].last = Some(Exited {
            exit_code: 137,
            reason: "Error".into(),
            started_at: t(0),
            finished_at: t(5),
            container_id: "hollow://old".into(),
        });
        let s = desired_status(None, &v, &t(6));
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(condition(&s, "Ready").status, "False");
        let c = &s.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(c.restart_count, 1);
        let last = c
            .last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .expect("lastState.terminated");
        assert_eq!(last.exit_code, 137);
        assert_eq!(last.reason.as_deref(), Some("Error"));
    }

    #[rstest::rstest]
    #[case::sigterm_honoured(0, "Succeeded")]
    #[case::sigkilled(137, "Failed")]
    fn terminated_pod_gets_a_terminal_phase(#[case] exit_code: i32, #[case] phase: &str) {
        let mut v = view(
            Run::Terminated(Exited {
                exit_code,
                reason: Exited::reason_for(exit_code).into(),
                started_at: t(0),
                finished_at: t(9),
                container_id: "hollow://abc".into(),
            }),
            0,
        );
        v.terminal = true;
        v.pod_ip = None;
        let s = desired_status(None, &v, &t(9));
        assert_eq!(s.phase.as_deref(), Some(phase));
        assert_eq!(condition(&s, "Ready").status, "False");
        let reason = if phase == "Succeeded" {
            "PodCompleted"
        } else {
            "ContainersNotReady"
        };
        assert_eq!(condition(&s, "Ready").reason.as_deref(), Some(reason));
        assert_eq!(condition(&s, "PodReadyToStartContainers").status, "False");
        let patch = status_patch(&s);
        assert_eq!(patch["status"]["podIP"], serde_json::Value::Null);
        assert!(
            patch["status"].get("podIP").is_some(),
            "podIP removed explicitly"
        );
    }

    #[test]
    fn a_not_running_container_never_makes_a_terminal_pod_succeed() {
        let mut v = view(
            Run::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            0,
        );
        v.terminal = true;
        let s = desired_status(None, &v, &t(1));
        assert_eq!(s.phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let first = desired_status(None, &view(running(1), 0), &t(1));
        let again = desired_status(Some(&first), &view(running(1), 0), &t(50));
        assert_eq!(
            condition(&again, "Ready").last_transition_time,
            Some(t(1)),
            "unchanged status keeps its time"
        );
        assert!(!differs(Some(&first), &again), "nothing to post");
        let crashed = view(
            Run::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: None,
            },
            1,
        );
        let flipped = desired_status(Some(&again), &crashed, &t(60));
        assert_eq!(
            condition(&flipped, "Ready").last_transition_time,
            Some(t(60))
        );
        assert!(differs(Some(&again), &flipped));
    }

    #[test]
    fn start_time_is_kept_from_the_current_status() {
        let first = desired_status(None, &view(running(1), 0), &t(1));
        let mut later = view(running(30), 1);
        later.start_time = t(30);
        let s = desired_status(Some(&first), &later, &t(30));
        assert_eq!(s.start_time, Some(t(0)));
    }

    #[test]
    fn conditions_owned_by_others_do_not_count_as_a_difference() {
        let desired = desired_status(None, &view(running(1), 0), &t(1));
        let mut current = desired.clone();
        current
            .conditions
            .get_or_insert_with(Vec::new)
            .push(PodCondition {
                type_: "PodScheduled".into(),
                status: "True".into(),
                ..Default::default()
            });
        assert!(!differs(Some(&current), &desired));
        // The node-lifecycle controller marking the pod not ready is a difference to undo.
        for c in current.conditions.iter_mut().flatten() {
            if c.type_ == "Ready" {
                c.status = "False".into();
            }
        }
        assert!(differs(Some(&current), &desired));
        assert!(differs(None, &desired));
    }

    #[test]
    fn a_restarted_node_learns_restarts_and_last_run_from_the_status() {
        let s = desired_status(None, &view(running(1), 2), &t(1));
        let c = &s.container_statuses.as_ref().expect("statuses")[0];
        let (restarts, last) = remembered_from_status(c, &t(20));
        assert_eq!(restarts, 2);
        let last = last.expect("the running container is remembered as ended");
        assert_eq!(last.reason, "Unknown");
        assert_eq!(last.container_id, "hollow://abc");
        assert_eq!(last.finished_at, t(20));

        let creating = desired_status(
            None,
            &view(
                Run::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                },
                0,
            ),
            &t(1),
        );
        let c = &creating.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(remembered_from_status(c, &t(2)), (0, None));
    }
}
