//! Concise builders for hand-made histories in checker tests.

use std::collections::BTreeMap;

use crate::history::{
    Backup, Change, Connection, ControllerRevisionState, EndpointSliceState, EndpointState, Event,
    PodState, PvState, PvcState, ReadResult, Resolution, Row, ServiceState, Snapshot, StsState,
    WriteEvent,
};

use crate::history::row_checksum;

pub const TEMPLATE: &str = "mysql-persistent-storage";

/// The ordinal of a testkit pod name (`mysql-<i>`), 0 when it has none.
fn ordinal_in(name: &str) -> u32 {
    name.rsplit('-')
        .next()
        .and_then(|i| i.parse().ok())
        .unwrap_or_default()
}

/// The pod IP testkit gives the pod named `name`: `10.0.0.<10 + ordinal>`.
pub fn pod_ip(name: &str) -> String {
    format!("10.0.0.{}", 10 + ordinal_in(name))
}

/// A healthy, Ready StatefulSet pod `mysql-<i>` with its documented identity, claim and
/// pod IP ([`pod_ip`]).
pub fn pod(name: &str, uid: &str) -> PodState {
    let ordinal = name.rsplit('-').next().unwrap_or_default().to_string();
    PodState {
        name: name.into(),
        uid: uid.into(),
        labels: BTreeMap::from([
            ("app".into(), "mysql".into()),
            ("statefulset.kubernetes.io/pod-name".into(), name.into()),
            ("apps.kubernetes.io/pod-index".into(), ordinal),
        ]),
        hostname: Some(name.into()),
        subdomain: Some("mysql".into()),
        node_name: Some("worker".into()),
        phase: Some("Running".into()),
        ready: true,
        terminating: false,
        restart_count: 0,
        claims: BTreeMap::from([(TEMPLATE.into(), format!("{TEMPLATE}-{name}"))]),
        owner_uid: Some("sts-uid".into()),
        pod_ip: Some(pod_ip(name)),
        annotations: BTreeMap::new(),
    }
}

/// Tweaks for a [`PodState`], so a test states only what differs.
pub trait PodExt: Sized {
    fn not_ready(self) -> Self;
    fn pending(self) -> Self;
    fn terminating(self) -> Self;
    fn restarts(self, n: i32) -> Self;
    fn with(self, f: impl FnOnce(&mut PodState)) -> Self;
}

impl PodExt for PodState {
    fn not_ready(mut self) -> Self {
        self.ready = false;
        self
    }
    fn pending(mut self) -> Self {
        self.ready = false;
        self.phase = Some("Pending".into());
        self
    }
    fn terminating(mut self) -> Self {
        self.terminating = true;
        self
    }
    fn restarts(mut self, n: i32) -> Self {
        self.restart_count = n;
        self
    }
    fn with(mut self, f: impl FnOnce(&mut PodState)) -> Self {
        f(&mut self);
        self
    }
}

/// A Bound, 1Gi, ReadWriteOnce PVC.
pub fn pvc(name: &str, uid: &str, pv: &str) -> PvcState {
    PvcState {
        name: name.into(),
        uid: uid.into(),
        phase: Some("Bound".into()),
        volume_name: Some(pv.into()),
        storage_request: Some("1Gi".into()),
        access_modes: vec!["ReadWriteOnce".into()],
        storage_class: Some("standard".into()),
        terminating: false,
    }
}

/// The claim of ordinal `i`: `mysql-persistent-storage-mysql-<i>`.
pub fn claim(i: u32) -> String {
    format!("{TEMPLATE}-mysql-{i}")
}

pub fn pv(name: &str, claim_uid: &str) -> PvState {
    PvState {
        name: name.into(),
        uid: format!("{name}-uid"),
        phase: Some("Bound".into()),
        claim: None,
        claim_uid: Some(claim_uid.into()),
        reclaim_policy: Some("Delete".into()),
        node: Some("worker".into()),
        terminating: false,
    }
}

pub fn headless_service() -> ServiceState {
    ServiceState {
        name: "mysql".into(),
        cluster_ip: Some("None".into()),
        selector: BTreeMap::from([("app".into(), "mysql".into())]),
        ports: vec![3306],
    }
}

/// The ready endpoint that gives `pod` its DNS identity: hostname and targetRef of the
/// pod (name and uid), its pod IP as the address.
pub fn endpoint(pod: &PodState) -> EndpointState {
    EndpointState {
        hostname: Some(pod.name.clone()),
        ready: true,
        target: Some(pod.name.clone()),
        target_ref_uid: Some(pod.uid.clone()),
        addresses: pod.pod_ip.iter().cloned().collect(),
    }
}

/// An EndpointSlice of Service `mysql` with one ready endpoint per hostname, each the
/// [`endpoint`] of `pod(hostname, "u<ordinal>")` (testkit's uid convention).
pub fn slice(hostnames: &[&str]) -> EndpointSliceState {
    slice_of(
        hostnames
            .iter()
            .map(|h| endpoint(&pod(h, &format!("u{}", ordinal_in(h)))))
            .collect(),
    )
}

/// An EndpointSlice of Service `mysql` with these endpoints.
pub fn slice_of(endpoints: Vec<EndpointState>) -> EndpointSliceState {
    EndpointSliceState {
        name: "mysql-abcde".into(),
        service: Some("mysql".into()),
        endpoints,
    }
}

/// Turns any state into an observed `Applied` event.
pub fn applied(state: impl Into<Snapshot>) -> Event {
    Event::Object {
        change: Change::Applied,
        object: state.into(),
    }
}

pub fn deleted(state: impl Into<Snapshot>) -> Event {
    Event::Object {
        change: Change::Deleted,
        object: state.into(),
    }
}

pub fn mark(label: &str) -> Event {
    Event::Action(crate::history::Action::Mark {
        label: label.into(),
    })
}

/// The harness scaled StatefulSet `mysql` from `from` to `to` replicas.
pub fn scale(from: i32, to: i32) -> Event {
    Event::Action(crate::history::Action::Scale {
        statefulset: "mysql".into(),
        from,
        to,
        via: "scale subresource".into(),
    })
}

/// The harness changed the pod template of StatefulSet `mysql`.
pub fn change_template() -> Event {
    Event::Action(crate::history::Action::ChangeTemplate {
        statefulset: "mysql".into(),
        change: "annotation conformance/rollout=1".into(),
        annotation: Some(rollout_annotation()),
    })
}

/// The annotation [`change_template`] sets on the pod template.
pub fn rollout_annotation() -> crate::history::TemplateAnnotation {
    crate::history::TemplateAnnotation {
        key: "conformance/rollout".into(),
        value: "1".into(),
    }
}

/// The harness set RollingUpdate with `partition` on StatefulSet `mysql`.
pub fn set_partition(partition: Option<i32>) -> Event {
    Event::Action(crate::history::Action::SetUpdateStrategy {
        statefulset: "mysql".into(),
        strategy: "RollingUpdate".into(),
        partition,
    })
}

macro_rules! into_snapshot {
    ($($t:ty => $v:ident),*) => {
        $(impl From<$t> for Snapshot {
            fn from(s: $t) -> Snapshot {
                Snapshot::$v(s)
            }
        })*
    };
}

into_snapshot!(
    PodState => Pod,
    PvcState => PersistentVolumeClaim,
    PvState => PersistentVolume,
    ServiceState => Service,
    EndpointSliceState => EndpointSlice,
    StsState => StatefulSet,
    ControllerRevisionState => ControllerRevision
);

/// ControllerRevision `name` of StatefulSet `mysql`, numbered `revision`.
pub fn controller_revision(name: &str, revision: i64) -> ControllerRevisionState {
    ControllerRevisionState {
        name: name.into(),
        uid: format!("{name}-uid"),
        revision,
        owner: Some("mysql".into()),
        owner_uid: Some("sts-uid".into()),
    }
}

/// A row with a correct checksum.
pub fn row(id: u64, ordinal: u32) -> Row {
    let payload = format!("payload-{id}");
    Row {
        id,
        ordinal,
        pod_uid: format!("u{ordinal}"),
        checksum: row_checksum(id, ordinal, &payload),
        payload,
    }
}

pub fn invoked(row: &Row) -> Event {
    Event::Write(WriteEvent::Invoked { row: row.clone() })
}

pub fn ok(id: u64) -> Event {
    Event::Write(WriteEvent::Ok { id })
}

pub fn fail(id: u64) -> Event {
    Event::Write(WriteEvent::Fail {
        id,
        error: "ERROR 1062: duplicate".into(),
    })
}

pub fn info(id: u64) -> Event {
    Event::Write(WriteEvent::Info {
        id,
        error: "connection reset".into(),
    })
}

/// A handshake the workload completed with pod `pod` (`mysql-<i>`) of uid `pod_uid`.
pub fn connected(pod: &str, pod_uid: &str) -> Event {
    Event::Connected(Connection {
        ordinal: ordinal_in(pod),
        pod: pod.into(),
        pod_uid: pod_uid.into(),
    })
}

/// A read of ordinal `ordinal` that saw `rows`.
pub fn read(ordinal: u32, rows: &[Row]) -> Event {
    Event::Read(ReadResult {
        ordinal,
        pod: format!("mysql-{ordinal}"),
        pod_uid: format!("u{ordinal}"),
        rows: rows.to_vec(),
    })
}

/// A backup of ordinal `ordinal` whose snapshot began at seq `position` and held `rows`.
pub fn backup(ordinal: u32, position: u64, rows: &[Row]) -> Event {
    Event::Backup(Backup {
        ordinal,
        pod: format!("mysql-{ordinal}"),
        pod_uid: format!("u{ordinal}"),
        position,
        rows: rows.to_vec(),
    })
}

/// The DNS name of pod `pod` under Service `mysql` in namespace `ns`.
pub fn fqdn(pod: &str) -> String {
    format!("{pod}.mysql.ns.svc.cluster.local")
}

/// A lookup of `pod`'s [`fqdn`] from inside `from_pod` that gave `addresses`.
pub fn resolved(from_pod: &str, pod: &str, addresses: &[&str]) -> Event {
    Event::Resolved(Resolution {
        from_pod: from_pod.into(),
        name: fqdn(pod),
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
        error: None,
    })
}

/// A lookup of `pod`'s [`fqdn`] from inside `from_pod` that did not resolve.
pub fn unresolved(from_pod: &str, pod: &str, error: &str) -> Event {
    Event::Resolved(Resolution {
        from_pod: from_pod.into(),
        name: fqdn(pod),
        addresses: Vec::new(),
        error: Some(error.into()),
    })
}
