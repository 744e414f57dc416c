//! The EndpointSlice controller: one IPv4 slice per Service with a selector, one endpoint
//! per selected pod that has an IP, with `hostname` for a StatefulSet pod whose subdomain is
//! the Service (what gives each ordinal its stable DNS name).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Action, Snapshot, obj};
use crate::config::{Fault, Faults};
use crate::store::ResourceKind;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

pub fn reconcile(snap: &Snapshot, faults: &Faults) -> Vec<Action> {
    let hostnames = !faults.has(Fault::DnsNoHostname);
    let mut actions = Vec::new();
    for svc in &snap.services {
        let selector = obj::string_map(svc, "/spec/selector");
        let mut slices = owned_slices(snap, svc);
        if selector.is_empty() || obj::is_terminating(svc) {
            continue;
        }
        let desired_endpoints = endpoints(snap, svc, &selector, hostnames);
        let desired_ports = ports(snap, svc, &selector);
        let existing = if slices.is_empty() {
            None
        } else {
            Some(slices.remove(0))
        };
        match existing {
            None => actions.push(Action::create(
                ResourceKind::EndpointSlice,
                new_slice(svc, desired_endpoints, desired_ports),
            )),
            Some(slice) => {
                let desired_endpoints = if faults.has(Fault::EndpointsStale) {
                    with_stale_endpoints(slice, desired_endpoints)
                } else {
                    desired_endpoints
                };
                if let Some(updated) = updated_slice(slice, svc, desired_endpoints, desired_ports) {
                    actions.push(Action::replace(ResourceKind::EndpointSlice, updated));
                }
            }
        }
        actions.extend(
            slices
                .into_iter()
                .map(|s| Action::delete(ResourceKind::EndpointSlice, s)),
        );
    }
    actions
}

/// `endpoints:stale`: every endpoint the slice holds for a pod uid no longer selected stays,
/// ready, with its old uid and address (as while its pod served): a recreated pod's name
/// gets a stale second endpoint, a removed ordinal a phantom one.
fn with_stale_endpoints(slice: &Value, mut desired: Vec<Value>) -> Vec<Value> {
    let uid = |e: &Value| {
        obj::str_at(e, "/targetRef/uid")
            .unwrap_or_default()
            .to_string()
    };
    let current: Vec<String> = desired.iter().map(uid).collect();
    let stale: Vec<Value> = obj::array(slice, "/endpoints")
        .iter()
        .filter(|e| !current.contains(&uid(e)))
        .map(|e| {
            // As it was while its pod served: a cache never sees the pod go.
            let mut kept = e.clone();
            obj::set_at(
                &mut kept,
                "/conditions",
                json!({"ready": true, "serving": true, "terminating": false}),
            );
            kept
        })
        .collect();
    if !stale.is_empty() {
        tracing::debug!(
            count = stale.len(),
            "fault endpoints:stale: keeping endpoints of pods that are gone"
        );
    }
    desired.extend(stale);
    desired
}

/// Slices this controller manages for `svc`, oldest name first.
fn owned_slices<'a>(snap: &'a Snapshot, svc: &Value) -> Vec<&'a Value> {
    let mut slices: Vec<&Value> = snap
        .endpointslices
        .iter()
        .filter(|s| obj::namespace(s) == obj::namespace(svc))
        .filter(|s| {
            let labels = obj::labels(s);
            labels.get(SERVICE_NAME_LABEL).map(String::as_str) == Some(obj::name(svc))
                && labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
        })
        .filter(|s| !obj::is_terminating(s))
        .collect();
    slices.sort_by_key(|s| obj::name(s));
    slices
}

fn selected_pods<'a>(
    snap: &'a Snapshot,
    svc: &'a Value,
    selector: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = &'a Value> + 'a {
    snap.pods_in(obj::namespace(svc))
        .filter(move |p| obj::map_selector_matches(selector, &obj::labels(p)))
}

/// `hostnames` is false only under the `dns:no-hostname` fault.
fn endpoints(
    snap: &Snapshot,
    svc: &Value,
    selector: &BTreeMap<String, String>,
    hostnames: bool,
) -> Vec<Value> {
    let publish_not_ready = svc
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        == Some(true);
    let mut pods: Vec<&Value> = selected_pods(snap, svc, selector)
        .filter(|p| obj::str_at(p, "/status/podIP").is_some_and(|ip| !ip.is_empty()))
        .filter(|p| !matches!(obj::pod_phase(p), "Succeeded" | "Failed"))
        .collect();
    pods.sort_by_key(|p| obj::name(p));
    pods.into_iter()
        .map(|p| endpoint(p, svc, publish_not_ready, hostnames))
        .collect()
}

fn endpoint(pod: &Value, svc: &Value, publish_not_ready: bool, hostnames: bool) -> Value {
    let terminating = obj::is_terminating(pod);
    let serving = obj::pod_ready(pod) || publish_not_ready;
    let mut ep = json!({
        "addresses": [obj::str_at(pod, "/status/podIP").unwrap_or_default()],
        "conditions": {"ready": serving && !terminating, "serving": serving, "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": obj::namespace(pod), "name": obj::name(pod), "uid": obj::uid(pod)},
    });
    if let Some(node) = obj::node_name(pod) {
        obj::set_at(&mut ep, "/nodeName", json!(node));
    }
    let hostname = obj::str_at(pod, "/spec/hostname").filter(|h| !h.is_empty());
    if let Some(hostname) = hostname
        && hostnames
        && obj::str_at(pod, "/spec/subdomain") == Some(obj::name(svc))
    {
        obj::set_at(&mut ep, "/hostname", json!(hostname));
    }
    ep
}

/// Service ports with targetPort resolved against the pods' named container ports.
fn ports(snap: &Snapshot, svc: &Value, selector: &BTreeMap<String, String>) -> Vec<Value> {
    let sample = selected_pods(snap, svc, selector).next();
    obj::array(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let target = match p.get("targetPort") {
                Some(Value::Number(n)) => n.as_i64().unwrap_or(port),
                Some(Value::String(name)) => {
                    sample.and_then(|pod| named_port(pod, name)).unwrap_or(port)
                }
                _ => port,
            };
            json!({
                "name": obj::str_at(p, "/name").unwrap_or_default(),
                "port": target,
                "protocol": obj::str_at(p, "/protocol").unwrap_or("TCP"),
            })
        })
        .collect()
}

fn named_port(pod: &Value, name: &str) -> Option<i64> {
    obj::array(pod, "/spec/containers")
        .iter()
        .flat_map(|c| obj::array(c, "/ports"))
        .find(|p| obj::str_at(p, "/name") == Some(name))
        .and_then(|p| p.get("containerPort"))
        .and_then(Value::as_i64)
}

fn slice_labels(svc: &Value) -> Value {
    let mut labels = obj::labels(svc);
    labels.insert(SERVICE_NAME_LABEL.into(), obj::name(svc).into());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    if obj::str_at(svc, "/spec/clusterIP") == Some("None") {
        labels.insert("service.kubernetes.io/headless".into(), String::new());
    }
    json!(labels)
}

fn new_slice(svc: &Value, endpoints: Vec<Value>, ports: Vec<Value>) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": format!("{}-", obj::name(svc)),
            "namespace": obj::namespace(svc),
            "labels": slice_labels(svc),
            "ownerReferences": [obj::owner_reference(svc, true)],
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    })
}

fn updated_slice(
    slice: &Value,
    svc: &Value,
    endpoints: Vec<Value>,
    ports: Vec<Value>,
) -> Option<Value> {
    let mut updated = slice.clone();
    obj::set_at(&mut updated, "/endpoints", Value::Array(endpoints));
    obj::set_at(&mut updated, "/ports", Value::Array(ports));
    obj::set_at(&mut updated, "/metadata/labels", slice_labels(svc));
    (updated != *slice).then_some(updated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::testkit::{created, replaced};

    fn svc() -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "mysql", "namespace": "ns", "uid": "svc-uid"},
            "spec": {"clusterIP": "None", "selector": {"app": "mysql"}, "ports": [{"name": "mysql", "port": 3306}]}})
    }

    fn pod(name: &str, ip: Option<&str>, ready: bool) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "mysql"}},
            "spec": {"hostname": name, "subdomain": "mysql", "nodeName": "sim-worker"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
        if let Some(ip) = ip {
            obj::set_at(&mut p, "/status/podIP", json!(ip));
        }
        p
    }

    #[test]
    fn one_slice_with_an_endpoint_per_pod_with_an_ip() {
        let snap = Snapshot {
            services: vec![svc()],
            pods: vec![
                pod("mysql-1", Some("127.77.1.3"), false),
                pod("mysql-0", Some("127.77.1.2"), true),
                pod("mysql-2", None, false),
            ],
            ..Default::default()
        };
        let actions = reconcile(&snap, &Faults::none());
        assert_eq!(created(&actions, ResourceKind::EndpointSlice).len(), 1);
        let Some(Action::Create { object, .. }) = actions.first() else {
            panic!("create expected")
        };
        assert_eq!(
            obj::str_at(object, "/metadata/generateName"),
            Some("mysql-")
        );
        assert_eq!(
            obj::str_at(object, "/metadata/labels/kubernetes.io~1service-name"),
            Some("mysql")
        );
        let eps = obj::array(object, "/endpoints");
        assert_eq!(eps.len(), 2);
        assert_eq!(obj::str_at(&eps[0], "/hostname"), Some("mysql-0"));
        assert_eq!(eps[0]["conditions"]["ready"], true);
        assert_eq!(eps[1]["conditions"]["ready"], false);
        assert_eq!(obj::str_at(&eps[1], "/targetRef/name"), Some("mysql-1"));
        assert_eq!(object["ports"][0]["port"], 3306);
    }

    #[test]
    fn fault_endpoints_stale_keeps_a_gone_pods_endpoint_ready() {
        let first = Snapshot {
            services: vec![svc()],
            pods: vec![pod("mysql-1", Some("127.77.1.3"), true)],
            ..Default::default()
        };
        let Some(Action::Create { object, .. }) = reconcile(&first, &Faults::none()).pop() else {
            panic!("create expected")
        };
        let mut slice = object;
        obj::set_at(&mut slice, "/metadata/name", json!("mysql-abcde"));
        obj::set_at(&mut slice, "/metadata/namespace", json!("ns"));
        obj::set_at(&mut slice, "/metadata/uid", json!("slice-uid"));
        let mut recreated = pod("mysql-1", Some("127.77.1.9"), true);
        obj::set_at(&mut recreated, "/metadata/uid", json!("uid-mysql-1b"));
        let snap = Snapshot {
            services: vec![svc()],
            pods: vec![recreated],
            endpointslices: vec![slice],
            ..Default::default()
        };
        let mut faults = Faults::none();
        faults.insert(Fault::EndpointsStale);
        let updated = replaced(&reconcile(&snap, &faults), ResourceKind::EndpointSlice);
        let eps = obj::array(&updated[0], "/endpoints");
        let uids: Vec<&str> = eps
            .iter()
            .filter_map(|e| obj::str_at(e, "/targetRef/uid"))
            .collect();
        assert_eq!(uids, ["uid-mysql-1b", "uid-mysql-1"]);
        assert!(eps.iter().all(|e| e["conditions"]["ready"] == true));
        let clean = replaced(
            &reconcile(&snap, &Faults::none()),
            ResourceKind::EndpointSlice,
        );
        assert_eq!(obj::array(&clean[0], "/endpoints").len(), 1);
    }

    #[test]
    fn hostname_only_when_subdomain_is_the_service() {
        let mut p = pod("web-0", Some("127.77.1.2"), true);
        obj::set_at(&mut p, "/spec/subdomain", json!("other"));
        let ep = endpoint(&p, &svc(), false, true);
        assert!(ep.get("hostname").is_none());
    }

    #[test]
    fn fault_dns_no_hostname_publishes_endpoints_without_hostnames() {
        let snap = Snapshot {
            services: vec![svc()],
            pods: vec![pod("mysql-0", Some("127.77.1.2"), true)],
            ..Default::default()
        };
        let mut faults = Faults::none();
        faults.insert(Fault::DnsNoHostname);
        let Some(Action::Create { object, .. }) = reconcile(&snap, &faults).into_iter().next()
        else {
            panic!("create expected")
        };
        let eps = obj::array(&object, "/endpoints");
        assert_eq!(eps.len(), 1, "the endpoint is still published");
        assert_eq!(eps[0]["conditions"]["ready"], true);
        assert!(eps[0].get("hostname").is_none(), "{object}");
    }

    #[test]
    fn existing_slice_updated_only_on_change() {
        let snap = Snapshot {
            services: vec![svc()],
            pods: vec![pod("mysql-0", Some("127.77.1.2"), true)],
            ..Default::default()
        };
        let Some(Action::Create { mut object, .. }) =
            reconcile(&snap, &Faults::none()).into_iter().next()
        else {
            panic!("create expected")
        };
        obj::set_at(&mut object, "/metadata/name", json!("mysql-abcde"));
        let snap = Snapshot {
            endpointslices: vec![object],
            ..snap
        };
        assert!(reconcile(&snap, &Faults::none()).is_empty());
        let snap = Snapshot {
            pods: vec![pod("mysql-0", Some("127.77.1.2"), false)],
            ..snap
        };
        let updated = replaced(
            &reconcile(&snap, &Faults::none()),
            ResourceKind::EndpointSlice,
        );
        assert_eq!(updated[0]["endpoints"][0]["conditions"]["ready"], false);
    }
}
