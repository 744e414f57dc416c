//! Unit tests of the observer: the state read from each kind, the settle comparison, and a
//! relist recording deletions.

use super::*;
use checks::history::EndpointState;

fn from_yaml<K: DeserializeOwned>(yaml: &str) -> K {
    serde_yaml::from_str(yaml).expect("test YAML is valid")
}

#[test]
fn pod_state_extracts_identity_readiness_and_claims() {
    let pod: Pod = from_yaml(
        r#"
metadata:
  name: mysql-1
  uid: u-1
  labels: {statefulset.kubernetes.io/pod-name: mysql-1}
  ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: mysql, uid: sts-1, controller: true}]
spec:
  hostname: mysql-1
  subdomain: mysql
  nodeName: w2
  containers: [{name: mysql, image: mysql:5.7}]
  volumes:
  - name: mysql-persistent-storage
    persistentVolumeClaim: {claimName: mysql-persistent-storage-mysql-1}
status:
  phase: Running
  podIP: 10.244.1.7
  conditions: [{type: Ready, status: "True"}]
  containerStatuses: [{name: mysql, ready: true, restartCount: 2, image: mysql, imageID: x}]
"#,
    );
    let s = pod_state(&pod);
    assert_eq!(s.name, "mysql-1");
    assert_eq!(s.pod_ip.as_deref(), Some("10.244.1.7"));
    assert!(s.ready);
    assert!(!s.terminating);
    assert_eq!(s.restart_count, 2);
    assert_eq!(s.owner_uid.as_deref(), Some("sts-1"));
    assert_eq!(
        s.claims.get("mysql-persistent-storage").map(String::as_str),
        Some("mysql-persistent-storage-mysql-1")
    );
}

#[test]
fn controller_revision_state_names_its_number_and_owning_set() {
    let revision: ControllerRevision = from_yaml(
        r#"
metadata:
  name: mysql-7b9f6c
  uid: cr-1
  ownerReferences: [{apiVersion: apps/v1, kind: StatefulSet, name: mysql, uid: sts-1, controller: true}]
revision: 3
data: {spec: {template: {$patch: replace}}}
"#,
    );
    let s = controller_revision_state(&revision);
    assert_eq!(s.name, "mysql-7b9f6c");
    assert_eq!(s.uid, "cr-1");
    assert_eq!(s.revision, 3);
    assert_eq!(s.owner.as_deref(), Some("mysql"));
    let orphan: ControllerRevision = from_yaml("metadata: {name: x}\nrevision: 1\n");
    assert_eq!(controller_revision_state(&orphan).owner, None);
}

#[test]
fn pod_without_ready_condition_is_not_ready_and_terminating_is_seen() {
    let pod: Pod = from_yaml(
        r#"
metadata: {name: mysql-0, uid: u, deletionTimestamp: "2026-01-01T00:00:00Z"}
status:
  phase: Running
  conditions: [{type: Ready, status: "False"}]
"#,
    );
    let s = pod_state(&pod);
    assert!(!s.ready);
    assert!(s.terminating);
    assert_eq!(s.pod_ip, None);
}

#[test]
fn endpoint_slice_state_keeps_what_dns_identity_is_judged_on() {
    let slice: EndpointSlice = from_yaml(
        r#"
metadata: {name: mysql-abcde, labels: {kubernetes.io/service-name: mysql}}
addressType: IPv4
endpoints:
- addresses: [10.244.1.7]
  hostname: mysql-1
  conditions: {ready: true}
  targetRef: {kind: Pod, name: mysql-1, uid: u-1}
- addresses: [10.244.2.9]
  hostname: mysql-2
  targetRef: {kind: Pod, name: mysql-2}
"#,
    );
    let s = endpoint_slice_state(&slice);
    assert_eq!(s.service.as_deref(), Some("mysql"));
    assert_eq!(
        s.endpoints,
        vec![
            EndpointState {
                hostname: Some("mysql-1".into()),
                ready: true,
                target: Some("mysql-1".into()),
                target_ref_uid: Some("u-1".into()),
                addresses: vec!["10.244.1.7".into()],
            },
            EndpointState {
                hostname: Some("mysql-2".into()),
                ready: false,
                target: Some("mysql-2".into()),
                target_ref_uid: None,
                addresses: vec!["10.244.2.9".into()],
            },
        ]
    );
}

#[test]
fn pv_state_reads_node_affinity_and_claim() {
    let pv: PersistentVolume = from_yaml(
        r#"
metadata: {name: pvc-1, uid: pv-u}
spec:
  persistentVolumeReclaimPolicy: Delete
  claimRef: {namespace: ns1, name: data-mysql-0, uid: c-1}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [kind-worker2]}]
status: {phase: Bound}
"#,
    );
    let s = pv_state(&pv);
    assert_eq!(s.node.as_deref(), Some("kind-worker2"));
    assert_eq!(s.claim.as_deref(), Some("ns1/data-mysql-0"));
    assert!(pv_claimed_from(&pv, "ns1"));
    assert!(!pv_claimed_from(&pv, "other"));
}

#[test]
fn compare_reports_lagging_and_missing_objects() {
    let pod: Pod = from_yaml("metadata: {name: mysql-0, uid: u1, resourceVersion: '7'}");
    let mut seen = HashMap::new();
    assert!(compare("Pod", std::slice::from_ref(&pod), &seen).is_some());
    seen.insert(
        ("Pod", "mysql-0".to_string()),
        Seen {
            uid: "u1".into(),
            resource_version: Some("6".into()),
            deleted: false,
        },
    );
    let diff = compare("Pod", std::slice::from_ref(&pod), &seen).expect("rv lags");
    assert!(diff.contains("mysql-0"), "{diff}");
    seen.insert(
        ("Pod", "mysql-0".to_string()),
        Seen {
            uid: "u1".into(),
            resource_version: Some("7".into()),
            deleted: false,
        },
    );
    assert_eq!(compare("Pod", std::slice::from_ref(&pod), &seen), None);
    let gone = compare::<Pod>("Pod", &[], &seen).expect("deletion not observed");
    assert!(gone.contains("not observed"), "{gone}");
}

#[test]
fn node_and_service_states() {
    let node: Node =
        from_yaml("metadata: {name: w1}\nstatus: {conditions: [{type: Ready, status: Unknown}]}");
    assert!(!node_state(&node).ready);
    let svc: Service = from_yaml(
        "metadata: {name: mysql}\nspec: {clusterIP: None, ports: [{port: 3306}], selector: {app: mysql}}",
    );
    let s = service_state(&svc);
    assert_eq!(s.cluster_ip.as_deref(), Some("None"));
    assert_eq!(s.ports, vec![3306]);
}

/// A relist (the watch fell behind: 410 Gone, then a fresh list) omits the objects
/// deleted meanwhile and delivers no Delete for them: the observer records them as
/// deleted, so the history is right and settle() converges.
#[tokio::test]
async fn a_relist_records_the_objects_deleted_while_the_watch_was_away() {
    let pod = |name: &str, uid: &str, rv: &str| -> Pod {
        from_yaml(&format!(
            "metadata: {{name: {name}, uid: {uid}, resourceVersion: '{rv}'}}"
        ))
    };
    let events: Vec<Result<watcher::Event<Pod>, watcher::Error>> = vec![
        Ok(watcher::Event::Init),
        Ok(watcher::Event::InitApply(pod("mysql-0", "u0", "1"))),
        Ok(watcher::Event::InitApply(pod("mysql-1", "u1", "1"))),
        Ok(watcher::Event::InitDone),
        Ok(watcher::Event::Apply(pod("mysql-2", "u2", "2"))),
        // 410 Gone: mysql-1 was deleted and mysql-2 replaced while the watch was away.
        Ok(watcher::Event::Init),
        Ok(watcher::Event::InitApply(pod("mysql-0", "u0", "5"))),
        Ok(watcher::Event::InitApply(pod("mysql-2", "u2b", "6"))),
        Ok(watcher::Event::InitDone),
    ];
    let history = History::new();
    let recorder = Recorder {
        history: history.clone(),
        seen: Arc::default(),
        changed: Arc::default(),
    };
    let (ready, mut listed) = mpsc::unbounded_channel();
    follow(
        "Pod",
        futures::stream::iter(events),
        pod_state_snapshot,
        |_| true,
        &recorder,
        &ready,
    )
    .await;
    let changes: Vec<(Change, String, String)> = history
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Object {
                change,
                object: Snapshot::Pod(p),
            } => Some((change, p.name, p.uid)),
            _ => None,
        })
        .collect();
    let applied = |n: &str, u: &str| (Change::Applied, n.to_string(), u.to_string());
    let deleted = |n: &str, u: &str| (Change::Deleted, n.to_string(), u.to_string());
    assert_eq!(
        changes,
        vec![
            applied("mysql-0", "u0"),
            applied("mysql-1", "u1"),
            applied("mysql-2", "u2"),
            applied("mysql-0", "u0"),
            deleted("mysql-2", "u2"),
            applied("mysql-2", "u2b"),
            deleted("mysql-1", "u1"),
        ]
    );
    // settle() compares a fresh list with what was seen: it now converges.
    let now = [pod("mysql-0", "u0", "5"), pod("mysql-2", "u2b", "6")];
    assert_eq!(compare("Pod", &now, &lock(&recorder.seen)), None);
    assert!(matches!(listed.try_recv(), Ok(Progress::Listed("Pod"))));
}
