//! Unit tests of the Tables: the Accept header, and each kind's columns and cells as a real API
//! server prints them.

use super::*;

#[test]
fn accept_header_selects_tables() {
    assert!(wants_table(
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    ));
    assert!(!wants_table("application/json"));
}

#[test]
fn pod_row_shows_ready_status_restarts_and_terminating() {
    let mut pod = json!({
        "metadata": {"name": "mysql-0", "creationTimestamp": "2020-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "mysql"}], "nodeName": "sim-worker"},
        "status": {"phase": "Running", "podIP": "127.77.0.2",
                   "containerStatuses": [{"ready": true, "restartCount": 2, "state": {"running": {}}}]}
    });
    let t = table(
        ResourceKind::Pod,
        std::slice::from_ref(&pod),
        7,
        IncludeObject::Metadata,
    );
    let cells = &t["rows"][0]["cells"];
    assert_eq!(cells[1], "1/1");
    assert_eq!(cells[2], "Running");
    assert_eq!(cells[3], "2");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    pod["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
    let t = table(ResourceKind::Pod, &[pod], 7, IncludeObject::None);
    assert_eq!(t["rows"][0]["cells"][2], "Terminating");
    assert!(t["rows"][0].get("object").is_none());
}

#[test]
fn statefulset_row_shows_ready_over_desired() {
    let sts = json!({"metadata": {"name": "mysql"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 2}});
    let t = table(
        ResourceKind::StatefulSet,
        &[sts],
        1,
        IncludeObject::Metadata,
    );
    assert_eq!(t["rows"][0]["cells"][1], "2/3");
}

fn cells_of(kind: ResourceKind, obj: Value) -> Vec<Value> {
    let t = table(kind, &[obj], 1, IncludeObject::None);
    t["rows"][0]["cells"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn headers(kind: ResourceKind) -> Vec<(String, u64)> {
    let t = table(kind, &[], 1, IncludeObject::None);
    t["columnDefinitions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or("").to_string(),
                        c["priority"].as_u64().unwrap_or(9),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn node_roles_come_from_role_labels() {
    let node = |labels: Value| {
        json!({"metadata": {"name": "n", "labels": labels},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    };
    let roles = |labels: Value| cells_of(ResourceKind::Node, node(labels))[2].clone();
    assert_eq!(
        roles(json!({"node-role.kubernetes.io/control-plane": "", "kubernetes.io/os": "linux"})),
        "control-plane"
    );
    assert_eq!(
        roles(
            json!({"node-role.kubernetes.io/worker": "", "kubernetes.io/role": "infra",
                "node-role.kubernetes.io/control-plane": ""})
        ),
        "control-plane,infra,worker"
    );
    assert_eq!(roles(json!({"node-role.kubernetes.io/": ""})), "<none>");
    assert_eq!(roles(json!({"kubernetes.io/hostname": "n"})), "<none>");
}

#[test]
fn node_status_and_wide_columns_read_like_kubectl() {
    let node = json!({"metadata": {"name": "n"},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}],
                "addresses": [{"type": "InternalIP", "address": "127.77.0.3"}],
                "nodeInfo": {"osImage": "img", "kernelVersion": "", "containerRuntimeVersion": "rt://1"}}});
    let cells = cells_of(ResourceKind::Node, node);
    assert_eq!(cells[1], "NotReady,SchedulingDisabled");
    assert_eq!(
        &cells[5..],
        [
            json!("127.77.0.3"),
            json!("<none>"),
            json!("img"),
            json!("<unknown>"),
            json!("rt://1")
        ]
    );
    let no_conditions = cells_of(ResourceKind::Node, json!({"metadata": {"name": "n"}}));
    assert_eq!(no_conditions[1], "Unknown");
    let names: Vec<String> = headers(ResourceKind::Node)
        .into_iter()
        .filter(|(_, p)| *p == 0)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["Name", "Status", "Roles", "Age", "Version"]);
}

#[test]
fn event_columns_match_a_real_api_server() {
    let shown: Vec<String> = headers(ResourceKind::Event)
        .into_iter()
        .filter(|(_, p)| *p == 0)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(shown, ["Last Seen", "Type", "Reason", "Object", "Message"]);
    let all: Vec<String> = headers(ResourceKind::Event)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        all,
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
}

#[test]
fn event_row_shows_ages_object_source_and_count() {
    let now = Utc::now();
    let ago = |secs: i64| (now - chrono::Duration::seconds(secs)).to_rfc3339();
    let event = json!({
        "metadata": {"name": "mysql-0.abc"},
        "involvedObject": {"kind": "Pod", "name": "mysql-0", "fieldPath": "spec.containers{mysql}"},
        "type": "Normal", "reason": "Started", "message": " Started container mysql\n",
        "source": {"component": "kubelet", "host": "sim-worker"},
        "firstTimestamp": ago(50), "lastTimestamp": ago(5), "count": 3,
    });
    let cells = cells_of(ResourceKind::Event, event.clone());
    assert_eq!(cells[0], "5s");
    assert_eq!(
        &cells[1..4],
        [json!("Normal"), json!("Started"), json!("pod/mysql-0")]
    );
    assert_eq!(cells[4], "spec.containers{mysql}");
    assert_eq!(cells[5], "kubelet, sim-worker");
    assert_eq!(cells[6], "Started container mysql");
    assert_eq!(&cells[7..], [json!("50s"), json!(3), json!("mysql-0.abc")]);

    let mut bare = event;
    bare["lastTimestamp"] = Value::Null;
    bare["count"] = Value::Null;
    bare["source"] = json!({});
    bare["reportingComponent"] = json!("statefulset-controller");
    bare["involvedObject"] = json!({"kind": "StatefulSet"});
    let cells = cells_of(ResourceKind::Event, bare.clone());
    assert_eq!(cells[0], "50s", "last seen falls back to first seen");
    assert_eq!(cells[3], "statefulset");
    assert_eq!(cells[5], "statefulset-controller");
    assert_eq!(cells[8], 1, "a singleton event counts 1");

    bare["series"] = json!({"count": 7, "lastObservedTime": ago(2)});
    let cells = cells_of(ResourceKind::Event, bare);
    assert_eq!(
        (cells[0].clone(), cells[8].clone()),
        (json!("2s"), json!(7))
    );
}

#[test]
fn restarts_show_how_long_ago_the_last_one_was() {
    let now = Utc::now();
    let finished = (now - chrono::Duration::seconds(30)).to_rfc3339();
    let pod = |restarts: i64, last_state: Value| {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "mysql"}]},
                "status": {"phase": "Running", "containerStatuses": [
                    {"ready": true, "restartCount": restarts, "state": {"running": {}}, "lastState": last_state}]}})
    };
    let terminated = json!({"terminated": {"exitCode": 137, "finishedAt": finished}});
    assert_eq!(
        cells_of(ResourceKind::Pod, pod(2, terminated))[3],
        "2 (30s ago)"
    );
    assert_eq!(cells_of(ResourceKind::Pod, pod(0, json!({})))[3], "0");
    assert_eq!(cells_of(ResourceKind::Pod, pod(1, json!({})))[3], "1");
}

#[test]
fn pod_status_uses_the_pods_reason() {
    let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "mysql"}]},
            "status": {"phase": "Failed", "reason": "Evicted"}});
    assert_eq!(cells_of(ResourceKind::Pod, pod.clone())[2], "Evicted");
    pod["status"]["reason"] = json!("NodeLost");
    pod["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
    assert_eq!(cells_of(ResourceKind::Pod, pod)[2], "Unknown");
}

#[test]
fn ages_read_like_kubectl() {
    let now = DateTime::parse_from_rfc3339("2020-01-02T00:00:00Z")
        .expect("ts")
        .with_timezone(&Utc);
    assert_eq!(age("2020-01-01T23:59:15Z", now), "45s");
    assert_eq!(age("2020-01-01T23:57:55Z", now), "2m5s");
    assert_eq!(age("2020-01-01T23:48:00Z", now), "12m");
    assert_eq!(age("2020-01-01T00:00:00Z", now), "24h");
    assert_eq!(age("garbage", now), "<unknown>");
}
