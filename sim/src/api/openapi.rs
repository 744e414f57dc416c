//! OpenAPI documents generated from the kinds the sim serves.
//!
//! `kubectl apply` with validation on needs an OpenAPI v3 document per group-version whose
//! PATCH operations carry `x-kubernetes-group-version-kind` and a `fieldValidation` query
//! parameter: then it leaves field validation to the server. The schemas carry the GVK and
//! the strategic-merge keys of the lists kubectl patches.

use serde_json::{Map, Value, json};

use super::discovery::{GIT_VERSION, GROUP_VERSIONS};
use crate::store::ResourceKind;

/// Changes whenever the generated documents change (clients cache by it).
const DOC_HASH: &str = "kube-sim-v1";

/// Whether PATCH operations advertise strategic merge patch. When they do, kubectl apply
/// derives patch metadata from these (partial) schemas and warns "unable to find api field"
/// for every field they leave out; when they don't, it uses its compiled-in types, which
/// are exact for every kind the sim serves. So the sim leaves this off (measured with
/// kubectl 1.32).
const ADVERTISE_STRATEGIC_MERGE: bool = false;

/// `/openapi/v3`: the index of per group-version documents.
pub fn v3_index() -> Value {
    let paths: Map<String, Value> = GROUP_VERSIONS
        .iter()
        .map(|(g, v)| {
            let path = gv_path(g, v);
            let url = format!("/openapi/v3/{path}?hash={DOC_HASH}");
            (path, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// `api/v1` or `apis/{group}/{version}`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3/{api/v1 | apis/group/version}`, if served.
pub fn v3_document(path: &str) -> Option<Value> {
    let (group, version) = GROUP_VERSIONS
        .iter()
        .find(|(g, v)| gv_path(g, v) == path.trim_matches('/'))?;
    let kinds: Vec<ResourceKind> = ResourceKind::ALL
        .into_iter()
        .filter(|k| k.group() == *group && k.version() == *version)
        .collect();
    let mut paths = Map::new();
    for kind in &kinds {
        paths.insert(collection_path(*kind), collection_item(*kind));
        paths.insert(item_path(*kind), item(*kind));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (kube-sim)", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas(&kinds)},
    }))
}

fn schema_name(kind: ResourceKind) -> String {
    let package = match kind.group() {
        "" => "core",
        "discovery.k8s.io" => "discovery",
        "storage.k8s.io" => "storage",
        other => other,
    };
    format!("io.k8s.api.{package}.v1.{}", kind.kind())
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn gvk(kind: ResourceKind) -> Value {
    json!({"group": kind.group(), "version": kind.version(), "kind": kind.kind()})
}

fn prefix(kind: ResourceKind) -> String {
    format!("/{}", gv_path(kind.group(), kind.version()))
}

fn collection_path(kind: ResourceKind) -> String {
    if kind.namespaced() {
        format!(
            "{}/namespaces/{{namespace}}/{}",
            prefix(kind),
            kind.plural()
        )
    } else {
        format!("{}/{}", prefix(kind), kind.plural())
    }
}

fn item_path(kind: ResourceKind) -> String {
    format!("{}/{{name}}", collection_path(kind))
}

fn query(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn path_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

fn path_params(kind: ResourceKind, with_name: bool) -> Vec<Value> {
    let mut params = Vec::new();
    if with_name {
        params.push(path_param("name"));
    }
    if kind.namespaced() {
        params.push(path_param("namespace"));
    }
    params
}

fn ok_response(kind: ResourceKind) -> Value {
    json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref(&schema_name(kind))}}}})
}

fn operation(kind: ResourceKind, action: &str, params: &[&str]) -> Value {
    json!({
        "operationId": format!("{action}{}", kind.kind()),
        "parameters": params.iter().map(|p| query(p)).collect::<Vec<_>>(),
        "responses": ok_response(kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(kind),
    })
}

fn body(kind: ResourceKind, media_types: &[&str]) -> Value {
    let content: Map<String, Value> = media_types
        .iter()
        .map(|m| {
            (
                m.to_string(),
                json!({"schema": schema_ref(&schema_name(kind))}),
            )
        })
        .collect();
    json!({"content": content, "required": true})
}

fn collection_item(kind: ResourceKind) -> Value {
    let mut post = operation(kind, "post", &["dryRun", "fieldManager", "fieldValidation"]);
    post["requestBody"] = body(kind, &["*/*"]);
    json!({
        "parameters": path_params(kind, false),
        "get": operation(kind, "list", &["labelSelector", "fieldSelector", "watch", "resourceVersion"]),
        "post": post,
    })
}

fn item(kind: ResourceKind) -> Value {
    let mut put = operation(kind, "put", &["dryRun", "fieldManager", "fieldValidation"]);
    put["requestBody"] = body(kind, &["*/*"]);
    let mut patch = operation(
        kind,
        "patch",
        &["dryRun", "fieldManager", "fieldValidation", "force"],
    );
    let mut patch_types = vec![
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    if ADVERTISE_STRATEGIC_MERGE {
        patch_types.push("application/strategic-merge-patch+json");
    }
    patch["requestBody"] = body(kind, &patch_types);
    json!({
        "parameters": path_params(kind, true),
        "get": operation(kind, "get", &[]),
        "put": put,
        "patch": patch,
        "delete": operation(kind, "delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
    })
}

fn object(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

fn merge_list(key: &str, items: Value) -> Value {
    json!({
        "type": "array",
        "items": items,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": [key],
        "x-kubernetes-patch-merge-key": key,
        "x-kubernetes-patch-strategy": "merge",
    })
}

/// The helper schemas: metadata, pod spec and containers with their merge keys.
fn shared_schemas() -> Map<String, Value> {
    let free = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let mut s = Map::new();
    s.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".into(),
        object(json!({
            "name": {"type": "string"},
            "namespace": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge"},
            "ownerReferences": merge_list("uid", free.clone()),
        })),
    );
    s.insert(
        "io.k8s.api.core.v1.Container".into(),
        object(json!({
            "name": {"type": "string"},
            "image": {"type": "string"},
            "env": merge_list("name", free.clone()),
            "ports": merge_list("containerPort", free.clone()),
            "volumeMounts": merge_list("mountPath", free.clone()),
        })),
    );
    let container = schema_ref("io.k8s.api.core.v1.Container");
    s.insert(
        "io.k8s.api.core.v1.PodSpec".into(),
        object(json!({
            "containers": merge_list("name", container.clone()),
            "initContainers": merge_list("name", container),
            "volumes": merge_list("name", free.clone()),
        })),
    );
    s.insert(
        "io.k8s.api.core.v1.PodTemplateSpec".into(),
        object(json!({
            "metadata": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            "spec": schema_ref("io.k8s.api.core.v1.PodSpec"),
        })),
    );
    s
}

fn spec_schema(kind: ResourceKind) -> Value {
    let free = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    match kind {
        ResourceKind::Pod => schema_ref("io.k8s.api.core.v1.PodSpec"),
        ResourceKind::StatefulSet => object(json!({
            "replicas": {"type": "integer", "format": "int32"},
            "serviceName": {"type": "string"},
            "template": schema_ref("io.k8s.api.core.v1.PodTemplateSpec"),
            "volumeClaimTemplates": {"type": "array", "items": free},
        })),
        ResourceKind::Service => object(json!({"ports": merge_list("port", free)})),
        _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    }
}

fn schemas(kinds: &[ResourceKind]) -> Map<String, Value> {
    let mut s = shared_schemas();
    for kind in kinds {
        let mut schema = object(json!({
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            "spec": spec_schema(*kind),
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        }));
        schema["x-kubernetes-group-version-kind"] = json!([gvk(*kind)]);
        s.insert(schema_name(*kind), schema);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_points_at_every_group_version() {
        let index = v3_index();
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("apps");
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
        assert!(index["paths"]["api/v1"].is_object());
    }

    #[test]
    fn patch_operations_declare_gvk_and_field_validation() {
        let doc = v3_document("apis/apps/v1").expect("apps doc");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "StatefulSet"
        );
        let params = patch["parameters"].as_array().expect("params");
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        let schema = &doc["components"]["schemas"]["io.k8s.api.apps.v1.StatefulSet"];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"][0]["group"],
            "apps"
        );
    }

    #[test]
    fn container_lists_carry_merge_keys() {
        let doc = v3_document("api/v1").expect("core doc");
        let container = &doc["components"]["schemas"]["io.k8s.api.core.v1.Container"]["properties"];
        assert_eq!(
            container["ports"]["x-kubernetes-patch-merge-key"],
            "containerPort"
        );
        assert_eq!(
            container["volumeMounts"]["x-kubernetes-patch-merge-key"],
            "mountPath"
        );
        assert!(
            doc["paths"]["/api/v1/nodes/{name}"].is_object(),
            "cluster-scoped path"
        );
        assert!(v3_document("apis/batch/v1").is_none());
    }
}
