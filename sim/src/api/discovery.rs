//! Discovery documents: `/version`, `/api`, `/apis` and the per group-version resource lists.

use serde_json::{Value, json};

use crate::store::ResourceKind;

/// The Kubernetes version the sim claims to be (PVC retention policy is GA from 1.32).
pub const KUBE_MINOR: &str = "32";
pub use crate::config::GIT_VERSION;

/// The group-versions the sim serves, core first.
pub const GROUP_VERSIONS: [(&str, &str); 4] = [
    ("", "v1"),
    ("apps", "v1"),
    ("discovery.k8s.io", "v1"),
    ("storage.k8s.io", "v1"),
];

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group(name: &str) -> Value {
    let gv = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [gv.clone()], "preferredVersion": gv})
}

pub fn api_group_list() -> Value {
    let groups: Vec<Value> = GROUP_VERSIONS
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, _)| group(g))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`: the APIGroup document, if the sim serves that group.
pub fn api_group(name: &str) -> Option<Value> {
    GROUP_VERSIONS
        .iter()
        .any(|(g, _)| !g.is_empty() && *g == name)
        .then(|| {
            let mut g = group(name);
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            g
        })
}

fn kinds_in(group: &str) -> impl Iterator<Item = ResourceKind> + '_ {
    ResourceKind::ALL
        .into_iter()
        .filter(move |k| k.group() == group)
}

fn resource(kind: ResourceKind) -> Value {
    let mut r = json!({
        "name": kind.plural(),
        "singularName": kind.singular(),
        "namespaced": kind.namespaced(),
        "kind": kind.kind(),
        "verbs": VERBS,
    });
    if !kind.short_names().is_empty() {
        r["shortNames"] = json!(kind.short_names());
    }
    if matches!(
        kind,
        ResourceKind::Pod | ResourceKind::Service | ResourceKind::StatefulSet
    ) {
        r["categories"] = json!(["all"]);
    }
    r
}

fn subresource(kind: ResourceKind, sub: &str, sub_kind: &str, verbs: &[&str]) -> Value {
    json!({
        "name": format!("{}/{sub}", kind.plural()),
        "singularName": "",
        "namespaced": kind.namespaced(),
        "kind": sub_kind,
        "verbs": verbs,
    })
}

fn subresources(kind: ResourceKind) -> Vec<Value> {
    let status = || subresource(kind, "status", kind.kind(), &["get", "patch", "update"]);
    match kind {
        ResourceKind::StatefulSet => {
            let mut scale = subresource(kind, "scale", "Scale", &["get", "patch", "update"]);
            scale["group"] = json!("autoscaling");
            scale["version"] = json!("v1");
            vec![scale, status()]
        }
        ResourceKind::Pod => vec![
            status(),
            subresource(kind, "log", "Pod", &["get"]),
            subresource(
                kind,
                "portforward",
                "PodPortForwardOptions",
                &["create", "get"],
            ),
        ],
        ResourceKind::Namespace
        | ResourceKind::Node
        | ResourceKind::PersistentVolume
        | ResourceKind::PersistentVolumeClaim
        | ResourceKind::Service => vec![status()],
        _ => Vec::new(),
    }
}

/// `/api/v1` or `/apis/{group}/v1`: the APIResourceList, if served.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let served = GROUP_VERSIONS
        .iter()
        .any(|(g, v)| *g == group && *v == version);
    if !served {
        return None;
    }
    let mut resources = Vec::new();
    for kind in kinds_in(group) {
        resources.push(resource(kind));
        resources.extend(subresources(kind));
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
        list["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == name))
            .unwrap_or_else(|| panic!("{name} missing from {list}"))
    }

    #[test]
    fn core_list_has_short_names_and_scope() {
        let core = api_resource_list("", "v1").expect("core served");
        assert_eq!(core["groupVersion"], "v1");
        assert_eq!(find(&core, "pods")["shortNames"], json!(["po"]));
        assert_eq!(find(&core, "pods")["namespaced"], true);
        assert_eq!(find(&core, "persistentvolumes")["namespaced"], false);
        assert_eq!(find(&core, "nodes")["shortNames"], json!(["no"]));
        assert_eq!(
            find(&core, "pods/portforward")["verbs"],
            json!(["create", "get"])
        );
    }

    #[test]
    fn apps_list_has_the_scale_subresource() {
        let apps = api_resource_list("apps", "v1").expect("apps served");
        assert_eq!(find(&apps, "statefulsets")["shortNames"], json!(["sts"]));
        let scale = find(&apps, "statefulsets/scale");
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
        assert!(api_resource_list("batch", "v1").is_none());
    }

    #[test]
    fn group_list_names_every_served_group() {
        let groups = api_group_list();
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert_eq!(names, ["apps", "discovery.k8s.io", "storage.k8s.io"]);
    }
}
