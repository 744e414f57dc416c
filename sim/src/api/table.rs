//! Server-side printing: `meta.k8s.io/v1` Tables for `kubectl get`, with the columns a real
//! API server prints for each kind.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::store::ResourceKind;

/// Whether the client asked for a Table (`Accept: application/json;as=Table;...`).
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// What each row carries besides its cells (`?includeObject=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
}

const fn col(name: &'static str, kind: &'static str, priority: u8) -> Column {
    Column {
        name,
        kind,
        priority,
    }
}

fn columns(kind: ResourceKind) -> Vec<Column> {
    let name = col("Name", "string", 0);
    let age = col("Age", "string", 0);
    match kind {
        ResourceKind::Pod => vec![
            name,
            col("Ready", "string", 0),
            col("Status", "string", 0),
            col("Restarts", "string", 0),
            age,
            col("IP", "string", 1),
            col("Node", "string", 1),
            col("Nominated Node", "string", 1),
            col("Readiness Gates", "string", 1),
        ],
        ResourceKind::StatefulSet => vec![
            name,
            col("Ready", "string", 0),
            age,
            col("Containers", "string", 1),
            col("Images", "string", 1),
        ],
        ResourceKind::PersistentVolumeClaim => vec![
            name,
            col("Status", "string", 0),
            col("Volume", "string", 0),
            col("Capacity", "string", 0),
            col("Access Modes", "string", 0),
            col("StorageClass", "string", 0),
            col("VolumeAttributesClass", "string", 0),
            age,
            col("VolumeMode", "string", 1),
        ],
        ResourceKind::PersistentVolume => vec![
            name,
            col("Capacity", "string", 0),
            col("Access Modes", "string", 0),
            col("Reclaim Policy", "string", 0),
            col("Status", "string", 0),
            col("Claim", "string", 0),
            col("StorageClass", "string", 0),
            col("VolumeAttributesClass", "string", 0),
            col("Reason", "string", 0),
            age,
            col("VolumeMode", "string", 1),
        ],
        ResourceKind::Service => vec![
            name,
            col("Type", "string", 0),
            col("Cluster-IP", "string", 0),
            col("External-IP", "string", 0),
            col("Port(s)", "string", 0),
            age,
            col("Selector", "string", 1),
        ],
        ResourceKind::Node => vec![
            name,
            col("Status", "string", 0),
            col("Roles", "string", 0),
            age,
            col("Version", "string", 0),
            col("Internal-IP", "string", 1),
        ],
        ResourceKind::Namespace => vec![name, col("Status", "string", 0), age],
        ResourceKind::StorageClass => vec![
            name,
            col("Provisioner", "string", 0),
            col("ReclaimPolicy", "string", 0),
            col("VolumeBindingMode", "string", 0),
            col("AllowVolumeExpansion", "string", 0),
            age,
        ],
        _ => vec![name, age],
    }
}

fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.into()
    }
}

fn cells(kind: ResourceKind, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let name = json!(text(obj, "/metadata/name"));
    let age = json!(age(text(obj, "/metadata/creationTimestamp"), now));
    let s = |p: &str| json!(text(obj, p));
    match kind {
        ResourceKind::Pod => vec![
            name,
            json!(pod_ready(obj)),
            json!(pod_status(obj)),
            json!(pod_restarts(obj)),
            age,
            json!(or_none(text(obj, "/status/podIP"))),
            json!(or_none(text(obj, "/spec/nodeName"))),
            json!("<none>"),
            json!("<none>"),
        ],
        ResourceKind::StatefulSet => vec![
            name,
            json!(format!(
                "{}/{}",
                int(obj, "/status/readyReplicas"),
                int(obj, "/spec/replicas")
            )),
            age,
            json!(container_field(obj, "name")),
            json!(container_field(obj, "image")),
        ],
        ResourceKind::PersistentVolumeClaim => vec![
            name,
            s("/status/phase"),
            s("/spec/volumeName"),
            s("/status/capacity/storage"),
            json!(access_modes(obj.pointer("/status/accessModes"))),
            s("/spec/storageClassName"),
            json!("<unset>"),
            age,
            s("/spec/volumeMode"),
        ],
        ResourceKind::PersistentVolume => {
            let claim = match text(obj, "/spec/claimRef/name") {
                "" => String::new(),
                n => format!("{}/{n}", text(obj, "/spec/claimRef/namespace")),
            };
            vec![
                name,
                s("/spec/capacity/storage"),
                json!(access_modes(obj.pointer("/spec/accessModes"))),
                s("/spec/persistentVolumeReclaimPolicy"),
                s("/status/phase"),
                json!(claim),
                s("/spec/storageClassName"),
                json!("<unset>"),
                s("/status/reason"),
                age,
                s("/spec/volumeMode"),
            ]
        }
        ResourceKind::Service => vec![
            name,
            s("/spec/type"),
            s("/spec/clusterIP"),
            json!("<none>"),
            json!(service_ports(obj)),
            age,
            json!(selector(obj)),
        ],
        ResourceKind::Node => vec![
            name,
            json!(node_status(obj)),
            json!("<none>"),
            age,
            s("/status/nodeInfo/kubeletVersion"),
            json!(or_none(&node_internal_ip(obj))),
        ],
        ResourceKind::Namespace => vec![name, s("/status/phase"), age],
        ResourceKind::StorageClass => {
            let default = text(
                obj,
                "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
            ) == "true";
            let shown = if default {
                format!("{} (default)", text(obj, "/metadata/name"))
            } else {
                text(obj, "/metadata/name").to_string()
            };
            vec![
                json!(shown),
                s("/provisioner"),
                s("/reclaimPolicy"),
                s("/volumeBindingMode"),
                json!(
                    obj.get("allowVolumeExpansion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string()
                ),
                age,
            ]
        }
        _ => vec![name, age],
    }
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn container_statuses(pod: &Value) -> &[Value] {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn pod_ready(pod: &Value) -> String {
    let total = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = container_statuses(pod)
        .iter()
        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    format!("{ready}/{total}")
}

/// The STATUS column: Terminating, a container's waiting/terminated reason, or the phase.
fn pod_status(pod: &Value) -> String {
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let reason = container_statuses(pod).iter().find_map(|c| {
        ["/state/waiting/reason", "/state/terminated/reason"]
            .iter()
            .find_map(|p| c.pointer(p).and_then(Value::as_str))
            .filter(|r| !r.is_empty())
    });
    match reason {
        Some(r) => r.to_string(),
        None => text(pod, "/status/phase").to_string(),
    }
}

fn pod_restarts(pod: &Value) -> String {
    container_statuses(pod)
        .iter()
        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
        .sum::<i64>()
        .to_string()
}

fn container_field(sts: &Value, field: &str) -> String {
    sts.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get(field).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn access_modes(modes: Option<&Value>) -> String {
    modes
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(Value::as_str)
                .map(|m| match m {
                    "ReadWriteOnce" => "RWO",
                    "ReadOnlyMany" => "ROX",
                    "ReadWriteMany" => "RWX",
                    "ReadWriteOncePod" => "RWOP",
                    other => other,
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn service_ports(svc: &Value) -> String {
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p.get("port").and_then(Value::as_i64).unwrap_or(0),
                        p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    or_none(&ports)
}

fn selector(svc: &Value) -> String {
    let sel = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    or_none(&sel)
}

fn node_status(node: &Value) -> String {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str())
        == Some("True");
    let mut status = if ready { "Ready" } else { "NotReady" }.to_string();
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_internal_ip(node: &Value) -> String {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
        .and_then(|a| a["address"].as_str())
        .unwrap_or("")
        .to_string()
}

/// Kubernetes' HumanDuration: `45s`, `2m5s`, `12m`, `3h4m`, `20h`, `3d4h`, `40d`.
fn age(created: &str, now: DateTime<Utc>) -> String {
    let Ok(created) = DateTime::parse_from_rfc3339(created) else {
        return "<unknown>".into();
    };
    let secs = (now - created.with_timezone(&Utc)).num_seconds().max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match () {
        _ if secs < 120 => format!("{secs}s"),
        _ if m < 10 && secs % 60 != 0 => format!("{m}m{}s", secs % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 != 0 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 && h % 24 != 0 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

fn row_object(obj: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(obj.clone()),
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })),
    }
}

/// A Table of `items`.
pub fn table(
    kind: ResourceKind,
    items: &[Value],
    resource_version: u64,
    include: IncludeObject,
) -> Value {
    let now = Utc::now();
    let definitions: Vec<Value> = columns(kind)
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": if c.name == "Name" { "name" } else { "" },
                "description": "",
                "priority": c.priority,
            })
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let mut row = json!({"cells": cells(kind, obj, now)});
            if let Some(o) = row_object(obj, include) {
                row["object"] = o;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
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
}
