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

fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "<unknown>".into()
    } else {
        s.into()
    }
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.into()
    }
}

/// How one column's cell is read from an object, at a point in time (for ages).
type Cell = fn(&Value, DateTime<Utc>) -> Value;

/// One column of a kind's table: its header, whether it shows only with `-o wide`
/// (priority 1), and how its cell is read.
struct Column {
    name: &'static str,
    priority: u8,
    cell: Cell,
}

const fn col(name: &'static str, priority: u8, cell: Cell) -> Column {
    Column {
        name,
        priority,
        cell,
    }
}

/// A column whose cell is the string at a JSON pointer (empty when absent).
macro_rules! at {
    ($name:expr, $priority:expr, $pointer:expr) => {
        col($name, $priority, |o, _| json!(text(o, $pointer)))
    };
}

/// A column that always shows the same text.
macro_rules! fixed {
    ($name:expr, $priority:expr, $value:expr) => {
        col($name, $priority, |_, _| json!($value))
    };
}

const NAME: Column = at!("Name", 0, "/metadata/name");
const AGE: Column = col("Age", 0, |o, now| {
    json!(age(text(o, "/metadata/creationTimestamp"), now))
});

/// The table of each kind: its columns, in order, each with its header and its cell
/// (upstream's printers; kinds without one get Name and Age).
fn columns(kind: ResourceKind) -> Vec<Column> {
    match kind {
        ResourceKind::Pod => vec![
            NAME,
            col("Ready", 0, |o, _| json!(pod_ready(o))),
            col("Status", 0, |o, _| json!(pod_status(o))),
            col("Restarts", 0, |o, now| json!(pod_restarts(o, now))),
            AGE,
            col("IP", 1, |o, _| json!(or_none(text(o, "/status/podIP")))),
            col("Node", 1, |o, _| json!(or_none(text(o, "/spec/nodeName")))),
            fixed!("Nominated Node", 1, "<none>"),
            fixed!("Readiness Gates", 1, "<none>"),
        ],
        ResourceKind::StatefulSet => vec![
            NAME,
            col("Ready", 0, |o, _| {
                json!(format!(
                    "{}/{}",
                    int(o, "/status/readyReplicas"),
                    int(o, "/spec/replicas")
                ))
            }),
            AGE,
            col("Containers", 1, |o, _| json!(container_field(o, "name"))),
            col("Images", 1, |o, _| json!(container_field(o, "image"))),
        ],
        ResourceKind::PersistentVolumeClaim => vec![
            NAME,
            at!("Status", 0, "/status/phase"),
            at!("Volume", 0, "/spec/volumeName"),
            at!("Capacity", 0, "/status/capacity/storage"),
            col("Access Modes", 0, |o, _| {
                json!(access_modes(o.pointer("/status/accessModes")))
            }),
            at!("StorageClass", 0, "/spec/storageClassName"),
            fixed!("VolumeAttributesClass", 0, "<unset>"),
            AGE,
            at!("VolumeMode", 1, "/spec/volumeMode"),
        ],
        ResourceKind::PersistentVolume => vec![
            NAME,
            at!("Capacity", 0, "/spec/capacity/storage"),
            col("Access Modes", 0, |o, _| {
                json!(access_modes(o.pointer("/spec/accessModes")))
            }),
            at!("Reclaim Policy", 0, "/spec/persistentVolumeReclaimPolicy"),
            at!("Status", 0, "/status/phase"),
            col("Claim", 0, |o, _| {
                json!(match text(o, "/spec/claimRef/name") {
                    "" => String::new(),
                    n => format!("{}/{n}", text(o, "/spec/claimRef/namespace")),
                })
            }),
            at!("StorageClass", 0, "/spec/storageClassName"),
            fixed!("VolumeAttributesClass", 0, "<unset>"),
            at!("Reason", 0, "/status/reason"),
            AGE,
            at!("VolumeMode", 1, "/spec/volumeMode"),
        ],
        ResourceKind::Service => vec![
            NAME,
            at!("Type", 0, "/spec/type"),
            at!("Cluster-IP", 0, "/spec/clusterIP"),
            fixed!("External-IP", 0, "<none>"),
            col("Port(s)", 0, |o, _| json!(service_ports(o))),
            AGE,
            col("Selector", 1, |o, _| json!(selector(o))),
        ],
        ResourceKind::Node => vec![
            NAME,
            col("Status", 0, |o, _| json!(node_status(o))),
            col("Roles", 0, |o, _| json!(or_none(&node_roles(o).join(",")))),
            AGE,
            at!("Version", 0, "/status/nodeInfo/kubeletVersion"),
            col("Internal-IP", 1, |o, _| {
                json!(or_none(&node_address(o, "InternalIP")))
            }),
            col("External-IP", 1, |o, _| {
                json!(or_none(&node_address(o, "ExternalIP")))
            }),
            col("OS-Image", 1, |o, _| {
                json!(or_unknown(text(o, "/status/nodeInfo/osImage")))
            }),
            col("Kernel-Version", 1, |o, _| {
                json!(or_unknown(text(o, "/status/nodeInfo/kernelVersion")))
            }),
            col("Container-Runtime", 1, |o, _| {
                json!(or_unknown(text(
                    o,
                    "/status/nodeInfo/containerRuntimeVersion"
                )))
            }),
        ],
        ResourceKind::Namespace => vec![NAME, at!("Status", 0, "/status/phase"), AGE],
        // Name is last and wide-only, like upstream's event printer.
        ResourceKind::Event => vec![
            col("Last Seen", 0, |o, now| {
                json!(event_times(o, now).last_seen)
            }),
            at!("Type", 0, "/type"),
            at!("Reason", 0, "/reason"),
            col("Object", 0, |o, _| json!(event_object(o))),
            at!("Subobject", 1, "/involvedObject/fieldPath"),
            col("Source", 1, |o, _| json!(event_source(o))),
            col("Message", 0, |o, _| json!(text(o, "/message").trim())),
            col("First Seen", 1, |o, now| {
                json!(event_times(o, now).first_seen)
            }),
            col("Count", 1, |o, now| json!(event_times(o, now).count)),
            Column {
                priority: 1,
                ..NAME
            },
        ],
        ResourceKind::StorageClass => vec![
            col("Name", 0, |o, _| {
                let name = text(o, "/metadata/name");
                let default = text(
                    o,
                    "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
                ) == "true";
                json!(if default {
                    format!("{name} (default)")
                } else {
                    name.to_string()
                })
            }),
            at!("Provisioner", 0, "/provisioner"),
            at!("ReclaimPolicy", 0, "/reclaimPolicy"),
            at!("VolumeBindingMode", 0, "/volumeBindingMode"),
            col("AllowVolumeExpansion", 0, |o, _| {
                json!(
                    o.get("allowVolumeExpansion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string()
                )
            }),
            AGE,
        ],
        // Upstream's printer: the controller as `<kind>.<group>/<name>`.
        ResourceKind::ControllerRevision => vec![
            NAME,
            col("Controller", 0, |o, _| json!(revision_controller(o))),
            col("Revision", 0, |o, _| json!(int(o, "/revision"))),
            AGE,
        ],
        _ => vec![NAME, AGE],
    }
}

/// `statefulset.apps/mysql` for a ControllerRevision its StatefulSet controls, else
/// `<none>`.
fn revision_controller(revision: &Value) -> String {
    let Some(owner) = revision
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
    else {
        return "<none>".into();
    };
    let group = text(owner, "/apiVersion")
        .rsplit_once('/')
        .map_or("", |(g, _)| g);
    let kind = text(owner, "/kind").to_ascii_lowercase();
    let kind = if group.is_empty() {
        kind
    } else {
        format!("{kind}.{group}")
    };
    format!("{kind}/{}", text(owner, "/name"))
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

/// The STATUS column: Terminating (Unknown for a pod lost with its node), a container's
/// waiting/terminated reason, the pod's reason, or the phase.
fn pod_status(pod: &Value) -> String {
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        let lost = text(pod, "/status/reason") == "NodeLost";
        return if lost { "Unknown" } else { "Terminating" }.into();
    }
    let reason = container_statuses(pod).iter().find_map(|c| {
        ["/state/waiting/reason", "/state/terminated/reason"]
            .iter()
            .find_map(|p| c.pointer(p).and_then(Value::as_str))
            .filter(|r| !r.is_empty())
    });
    match (reason, text(pod, "/status/reason")) {
        (Some(r), _) => r.to_string(),
        (None, "") => text(pod, "/status/phase").to_string(),
        (None, pod_reason) => pod_reason.to_string(),
    }
}

/// The RESTARTS column: the count, with the age of the latest restart (`2 (5s ago)`).
fn pod_restarts(pod: &Value, now: DateTime<Utc>) -> String {
    let statuses = container_statuses(pod);
    let restarts: i64 = statuses
        .iter()
        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
        .sum();
    let last_restart = statuses
        .iter()
        .filter_map(|c| c.pointer("/lastState/terminated/finishedAt")?.as_str())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .max();
    match last_restart {
        Some(at) if restarts != 0 => format!("{restarts} ({} ago)", age_since(at, now)),
        _ => restarts.to_string(),
    }
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
    or_none(&super::selector::render_match_labels(
        svc.pointer("/spec/selector"),
    ))
}

/// The STATUS column: Ready, NotReady (False or Unknown), or Unknown without a Ready
/// condition; `,SchedulingDisabled` when cordoned.
fn node_status(node: &Value) -> String {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"] == "True");
    let mut status = match ready {
        Some(true) => "Ready",
        Some(false) => "NotReady",
        None => "Unknown",
    }
    .to_string();
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

/// Roles from `node-role.kubernetes.io/<role>` labels (and the legacy
/// `kubernetes.io/role: <role>`), sorted and deduplicated like kubectl shows them.
fn node_roles(node: &Value) -> Vec<String> {
    const ROLE_PREFIX: &str = "node-role.kubernetes.io/";
    let Some(labels) = node.pointer("/metadata/labels").and_then(Value::as_object) else {
        return Vec::new();
    };
    let roles: std::collections::BTreeSet<String> = labels
        .iter()
        .filter_map(|(key, value)| match key.strip_prefix(ROLE_PREFIX) {
            Some(role) => Some(role.to_string()),
            None if key == "kubernetes.io/role" => value.as_str().map(str::to_string),
            None => None,
        })
        .filter(|role| !role.is_empty())
        .collect();
    roles.into_iter().collect()
}

fn node_address(node: &Value, type_: &str) -> String {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|a| a["type"] == type_))
        .and_then(|a| a["address"].as_str())
        .unwrap_or("")
        .to_string()
}

/// An Event's times, like upstream's printer: LAST SEEN falls back to the first time seen
/// (firstTimestamp, else eventTime), and a series overrides it and the count.
struct EventTimes {
    first_seen: String,
    last_seen: String,
    count: i64,
}

fn event_times(event: &Value, now: DateTime<Utc>) -> EventTimes {
    let first_seen = match text(event, "/firstTimestamp") {
        "" => age(text(event, "/eventTime"), now),
        first => age(first, now),
    };
    let mut last_seen = match text(event, "/lastTimestamp") {
        "" => first_seen.clone(),
        last => age(last, now),
    };
    let mut count = event.get("count").and_then(Value::as_i64).unwrap_or(0);
    if let Some(series) = event.get("series").filter(|s| s.is_object()) {
        last_seen = age(text(series, "/lastObservedTime"), now);
        count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
    } else if count == 0 {
        count = 1;
    }
    EventTimes {
        first_seen,
        last_seen,
        count,
    }
}

/// OBJECT is `<lowercase kind>/<name>`.
fn event_object(event: &Value) -> String {
    let kind = text(event, "/involvedObject/kind").to_lowercase();
    match text(event, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    }
}

/// `component, host`, from `source` or else the reporting controller and instance.
fn event_source(event: &Value) -> String {
    let first_set = |a: &str, b: &str| {
        let a = text(event, a);
        if a.is_empty() { text(event, b) } else { a }.to_string()
    };
    let component = first_set("/source/component", "/reportingComponent");
    match first_set("/source/host", "/reportingInstance") {
        host if host.is_empty() => component,
        host => format!("{component}, {host}"),
    }
}

/// Kubernetes' HumanDuration: `45s`, `2m5s`, `12m`, `3h4m`, `20h`, `3d4h`, `40d`.
fn age(created: &str, now: DateTime<Utc>) -> String {
    match DateTime::parse_from_rfc3339(created) {
        Ok(created) => age_since(created.with_timezone(&Utc), now),
        Err(_) => "<unknown>".into(),
    }
}

fn age_since(created: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - created).num_seconds().max(0);
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
    let columns = columns(kind);
    let definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": "string",
                "format": if c.name == "Name" { "name" } else { "" },
                "description": "",
                "priority": c.priority,
            })
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(obj, now)).collect();
            let mut row = json!({"cells": cells});
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
mod tests;
