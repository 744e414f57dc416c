//! Unit tests of resource paths, the Scale view and the log tail.

use super::*;

fn resource(path: &str) -> ResourcePath {
    match parse_path(path).expect("parses") {
        Target::Resource(r) => r,
        Target::Discovery(d) => panic!("{path} is discovery: {d}"),
    }
}

#[test]
fn paths_resolve_kind_namespace_name_and_subresource() {
    let r = resource("/apis/apps/v1/namespaces/default/statefulsets/mysql/scale");
    assert_eq!(r.kind, ResourceKind::StatefulSet);
    assert_eq!(r.namespace.as_deref(), Some("default"));
    assert_eq!(r.name.as_deref(), Some("mysql"));
    assert_eq!(r.subresource.as_deref(), Some("scale"));
    let all = resource("/api/v1/pods");
    assert_eq!(
        (all.kind, all.namespace, all.name),
        (ResourceKind::Pod, None, None)
    );
    let ns = resource("/api/v1/namespaces/default");
    assert_eq!(
        (ns.kind, ns.name.as_deref()),
        (ResourceKind::Namespace, Some("default"))
    );
    let ns_status = resource("/api/v1/namespaces/default/status");
    assert_eq!(ns_status.subresource.as_deref(), Some("status"));
    let pv = resource("/api/v1/persistentvolumes/pv-1");
    assert_eq!(pv.kind, ResourceKind::PersistentVolume);
}

#[test]
fn unknown_paths_are_not_found() {
    for path in [
        "/api/v2/pods",
        "/apis/batch/v1/jobs",
        "/api/v1/widgets",
        "/api/v1/pods/mysql-0",
        "/apis/apps/v1/namespaces/default/statefulsets/mysql/exec",
        "/api/v1/namespaces/default/pods/a/b/c",
    ] {
        assert!(
            matches!(parse_path(path), Err(ApiError::UnknownPath)),
            "{path}"
        );
    }
    assert!(matches!(
        parse_path("/apis/apps/v1"),
        Ok(Target::Discovery(_))
    ));
}

#[test]
fn scale_view_reports_replicas_and_selector() {
    let sts = json!({"metadata": {"name": "mysql", "resourceVersion": "5"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "mysql"}}}, "status": {"replicas": 2}});
    let scale = scale_view(&sts);
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=mysql");
    assert_eq!(scale["metadata"]["resourceVersion"], "5");
}

#[test]
fn tail_keeps_the_last_lines_and_limits_bytes() {
    let log = b"a\nb\nc\n".to_vec();
    assert_eq!(tail(log.clone(), Some(2), None), b"b\nc\n");
    assert_eq!(tail(log.clone(), Some(10), None), b"a\nb\nc\n");
    assert_eq!(tail(log.clone(), Some(0), None), b"");
    assert_eq!(tail(log, None, Some(3)), b"a\nb");
}
