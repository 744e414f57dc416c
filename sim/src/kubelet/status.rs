//! Pure pieces of the kubelet: which images the sim can run, where a pod's data lives, and
//! the pod status a kubelet would post for a given container state.

use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use crate::controllers::obj;

/// Where mysql and mariadb images keep their data.
pub const DATA_MOUNT_PATH: &str = "/var/lib/mysql";
/// Annotation naming the pod's log file on the sim's host (served by `/log`).
pub const LOG_PATH_ANNOTATION: &str = "kube-sim/log-path";

/// Images the sim runs as a real mariadbd: `mysql` or `mariadb` (any registry and tag).
pub fn runnable_image(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or_default();
    let last = without_digest.rsplit('/').next().unwrap_or_default();
    let repo = last.split(':').next().unwrap_or_default();
    matches!(repo, "mysql" | "mariadb" | "mysql-server")
}

/// The reference as a container runtime reports it: `mysql:5.7` → `docker.io/library/mysql:5.7`.
pub fn normalized_image(image: &str) -> String {
    let first = image.split('/').next().unwrap_or_default();
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = match (has_registry, image.contains('/')) {
        (true, _) => image.to_string(),
        (false, true) => format!("docker.io/{image}"),
        (false, false) => format!("docker.io/library/{image}"),
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if !last.contains(':') && !full.contains('@') {
        full.push_str(":latest");
    }
    full
}

/// The message of an image the sim cannot run.
pub fn unsupported_image_message(image: &str) -> String {
    format!(
        "kube-sim cannot run image \"{image}\": it runs only mysql:* and mariadb:* images (as a real mariadbd); this is a test double, not a container runtime"
    )
}

/// Index of the container the sim runs as mariadbd (the first with a runnable image).
pub fn runnable_container(pod: &Value) -> Option<usize> {
    obj::array(pod, "/spec/containers")
        .iter()
        .position(|c| runnable_image(obj::str_at(c, "/image").unwrap_or_default()))
}

/// The container port mariadbd listens on (first TCP port, default 3306).
pub fn container_port(container: &Value) -> u16 {
    obj::array(container, "/ports")
        .iter()
        .filter(|p| obj::str_at(p, "/protocol").is_none_or(|proto| proto == "TCP"))
        .find_map(|p| p.get("containerPort").and_then(Value::as_u64))
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(3306)
}

/// What backs the container's `/var/lib/mysql`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataVolume {
    /// A PersistentVolumeClaim (by name).
    Claim(String),
    /// An emptyDir volume (by volume name): lives as long as the pod.
    EmptyDir(String),
    /// Nothing mounted: the container's own layer, fresh at every container start.
    ContainerLayer,
}

pub fn data_volume(pod: &Value, container: &Value) -> DataVolume {
    let Some(volume_name) = obj::array(container, "/volumeMounts")
        .iter()
        .find(|m| {
            obj::str_at(m, "/mountPath").map(|p| p.trim_end_matches('/')) == Some(DATA_MOUNT_PATH)
        })
        .and_then(|m| obj::str_at(m, "/name"))
    else {
        return DataVolume::ContainerLayer;
    };
    let volume = obj::array(pod, "/spec/volumes")
        .iter()
        .find(|v| obj::str_at(v, "/name") == Some(volume_name));
    match volume {
        Some(v) => match obj::str_at(v, "/persistentVolumeClaim/claimName") {
            Some(claim) => DataVolume::Claim(claim.to_string()),
            None if v.get("emptyDir").is_some() => DataVolume::EmptyDir(volume_name.to_string()),
            None => DataVolume::ContainerLayer,
        },
        None => DataVolume::ContainerLayer,
    }
}

/// A container's state as `containerStatuses[].state` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated(Terminated),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub reason: String,
    pub started_at: String,
    pub finished_at: String,
    pub container_id: String,
}

impl Terminated {
    fn to_json(&self) -> Value {
        json!({"terminated": {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "containerID": self.container_id,
        }})
    }
}

impl ContainerState {
    fn to_json(&self) -> Value {
        match self {
            ContainerState::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    obj::set_at(&mut w, "/message", json!(m));
                }
                json!({"waiting": w})
            }
            ContainerState::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            ContainerState::Terminated(t) => t.to_json(),
        }
    }

    fn running(&self) -> bool {
        matches!(self, ContainerState::Running { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub state: ContainerState,
    pub restart_count: i32,
    pub last_terminated: Option<Terminated>,
    pub container_id: Option<String>,
}

impl ContainerView {
    /// Without a readiness probe a running container is ready (as the documented
    /// StatefulSet has none, its pods are Ready before mysqld accepts connections).
    fn ready(&self) -> bool {
        self.state.running()
    }

    fn to_json(&self) -> Value {
        let mut c = json!({
            "name": self.name,
            "image": normalized_image(&self.image),
            "imageID": "",
            "ready": self.ready(),
            "started": self.state.running(),
            "restartCount": self.restart_count,
            "state": self.state.to_json(),
            "lastState": self.last_terminated.as_ref().map_or_else(|| json!({}), Terminated::to_json),
        });
        if let Some(id) = &self.container_id {
            obj::set_at(&mut c, "/containerID", json!(id));
            obj::set_at(
                &mut c,
                "/imageID",
                json!(format!(
                    "kube-sim://mariadbd/{}",
                    normalized_image(&self.image)
                )),
            );
        }
        c
    }

    /// Whether this container has run at least once (then the pod is Running).
    fn has_run(&self) -> bool {
        self.state.running() || self.restart_count > 0 || self.last_terminated.is_some()
    }
}

/// Everything the kubelet knows about a pod's sandbox and containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub host_ip: Ipv4Addr,
    pub pod_ip: Option<Ipv4Addr>,
    pub start_time: String,
    pub containers: Vec<ContainerView>,
    pub log_path: Option<String>,
}

/// `pod` with the status the kubelet posts for `view`; conditions it does not own
/// (PodScheduled) are kept and transition times move only when a status flips.
pub fn apply_status(pod: &Value, view: &PodView, now: &str) -> Value {
    let mut updated = pod.clone();
    let all_ready = !view.containers.is_empty() && view.containers.iter().all(ContainerView::ready);
    let any_run = view.containers.iter().any(ContainerView::has_run);
    let unready: Vec<&str> = view
        .containers
        .iter()
        .filter(|c| !c.ready())
        .map(|c| c.name.as_str())
        .collect();
    let not_ready_message = format!("containers with unready status: [{}]", unready.join(" "));
    let (ready, reason, message) = if all_ready {
        ("True", None, None)
    } else {
        (
            "False",
            Some("ContainersNotReady"),
            Some(not_ready_message.as_str()),
        )
    };
    let sandbox = if view.pod_ip.is_some() {
        "True"
    } else {
        "False"
    };
    updated = obj::with_condition(
        &updated,
        "PodReadyToStartContainers",
        sandbox,
        None,
        None,
        now,
    );
    updated = obj::with_condition(&updated, "Initialized", "True", None, None, now);
    updated = obj::with_condition(&updated, "Ready", ready, reason, message, now);
    updated = obj::with_condition(&updated, "ContainersReady", ready, reason, message, now);
    let mut status = updated
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    status.insert(
        "phase".into(),
        json!(if any_run { "Running" } else { "Pending" }),
    );
    status.insert("hostIP".into(), json!(view.host_ip.to_string()));
    status.insert("hostIPs".into(), json!([{"ip": view.host_ip.to_string()}]));
    status.insert("startTime".into(), json!(view.start_time));
    if let Some(ip) = view.pod_ip {
        status.insert("podIP".into(), json!(ip.to_string()));
        status.insert("podIPs".into(), json!([{"ip": ip.to_string()}]));
    }
    status.insert(
        "containerStatuses".into(),
        Value::Array(view.containers.iter().map(ContainerView::to_json).collect()),
    );
    obj::set_at(&mut updated, "/status", Value::Object(status));
    if let Some(log) = &view.log_path {
        obj::set_at(
            &mut updated,
            &format!(
                "/metadata/annotations/{}",
                LOG_PATH_ANNOTATION.replace('/', "~1")
            ),
            json!(log),
        );
    }
    updated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: ContainerState, restarts: i32) -> PodView {
        PodView {
            host_ip: Ipv4Addr::new(127, 77, 0, 3),
            pod_ip: Some(Ipv4Addr::new(127, 77, 11, 2)),
            start_time: "2024-01-01T00:00:00Z".into(),
            containers: vec![ContainerView {
                name: "mysql".into(),
                image: "mysql:5.7".into(),
                state,
                restart_count: restarts,
                last_terminated: None,
                container_id: Some("kube-sim://abc".into()),
            }],
            log_path: Some("/state/pods/u/error.log".into()),
        }
    }

    fn scheduled_pod() -> Value {
        json!({"metadata": {"name": "mysql-0"}, "status": {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"}]}})
    }

    #[rstest::rstest]
    #[case::plain("mysql:5.7", true)]
    #[case::registry("registry.example.com:5000/team/mysql:8.0", true)]
    #[case::mariadb_digest("docker.io/library/mariadb@sha256:abc", true)]
    #[case::nginx("nginx:1.25", false)]
    #[case::lookalike("mysqlx:1", false)]
    fn runnable_images(#[case] image: &str, #[case] runnable: bool) {
        assert_eq!(runnable_image(image), runnable, "{image}");
    }

    #[test]
    fn image_normalisation_matches_container_runtimes() {
        assert_eq!(normalized_image("mysql:5.7"), "docker.io/library/mysql:5.7");
        assert_eq!(
            normalized_image("bitnami/mysql"),
            "docker.io/bitnami/mysql:latest"
        );
        assert_eq!(normalized_image("quay.io/x/mysql:8"), "quay.io/x/mysql:8");
    }

    #[test]
    fn running_container_is_ready_without_probe() {
        let pod = apply_status(
            &scheduled_pod(),
            &view(
                ContainerState::Running {
                    started_at: "t1".into(),
                },
                0,
            ),
            "t1",
        );
        assert_eq!(obj::pod_phase(&pod), "Running");
        assert!(obj::pod_ready(&pod));
        assert_eq!(obj::condition_status(&pod, "PodScheduled"), Some("True"));
        assert_eq!(obj::str_at(&pod, "/status/podIP"), Some("127.77.11.2"));
        assert_eq!(
            obj::str_at(&pod, "/status/containerStatuses/0/containerID"),
            Some("kube-sim://abc")
        );
        assert_eq!(
            obj::str_at(&pod, "/metadata/annotations/kube-sim~1log-path"),
            Some("/state/pods/u/error.log")
        );
    }

    #[test]
    fn unsupported_image_keeps_pod_pending_with_reason() {
        let waiting = ContainerState::Waiting {
            reason: "ErrImagePull".into(),
            message: Some(unsupported_image_message("nginx")),
        };
        let mut v = view(waiting, 0);
        v.containers[0].container_id = None;
        let pod = apply_status(&scheduled_pod(), &v, "t1");
        assert_eq!(obj::pod_phase(&pod), "Pending");
        assert!(!obj::pod_ready(&pod));
        assert_eq!(
            obj::str_at(&pod, "/status/containerStatuses/0/state/waiting/reason"),
            Some("ErrImagePull")
        );
        let message = obj::str_at(&pod, "/status/containerStatuses/0/state/waiting/message")
            .unwrap_or_default();
        assert!(
            message.contains("nginx") && message.contains("mysql"),
            "{message}"
        );
    }

    #[test]
    fn crashed_container_shows_last_state_and_stays_running_phase() {
        let last = Terminated {
            exit_code: 137,
            reason: "Error".into(),
            started_at: "t0".into(),
            finished_at: "t1".into(),
            container_id: "kube-sim://old".into(),
        };
        let mut v = view(
            ContainerState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: None,
            },
            1,
        );
        v.containers[0].last_terminated = Some(last);
        let pod = apply_status(&scheduled_pod(), &v, "t2");
        assert_eq!(obj::pod_phase(&pod), "Running");
        assert!(!obj::pod_ready(&pod));
        assert_eq!(
            pod.pointer("/status/containerStatuses/0/lastState/terminated/exitCode"),
            Some(&json!(137))
        );
        assert_eq!(
            pod.pointer("/status/containerStatuses/0/restartCount"),
            Some(&json!(1))
        );
    }

    #[test]
    fn data_volume_is_the_claim_mounted_at_var_lib_mysql() {
        let pod = json!({"spec": {"volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "data-mysql-0"}},
            {"name": "scratch", "emptyDir": {}}]}});
        let mounted =
            |name: &str, path: &str| json!({"volumeMounts": [{"name": name, "mountPath": path}]});
        assert_eq!(
            data_volume(&pod, &mounted("data", "/var/lib/mysql")),
            DataVolume::Claim("data-mysql-0".into())
        );
        assert_eq!(
            data_volume(&pod, &mounted("scratch", "/var/lib/mysql/")),
            DataVolume::EmptyDir("scratch".into())
        );
        assert_eq!(
            data_volume(&pod, &mounted("data", "/other")),
            DataVolume::ContainerLayer
        );
    }

    #[test]
    fn container_port_defaults_to_3306() {
        assert_eq!(
            container_port(&json!({"ports": [{"containerPort": 3307, "name": "mysql"}]})),
            3307
        );
        assert_eq!(container_port(&json!({})), 3306);
    }
}
