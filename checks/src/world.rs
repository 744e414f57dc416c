//! The observed state of every object as of one point of a history: the last observation
//! of each object (by kind and name), and whether that observation was its deletion.

use std::collections::BTreeMap;

use crate::history::{
    Change, ControllerRevisionState, EndpointSliceState, Entry, Event, NodeState, PodState,
    PvState, PvcState, ServiceState, Snapshot, StsState,
};

/// The last observation of one object.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen<T> {
    /// Sequence number of the observation.
    pub seq: u64,
    /// The observation was a `Deleted` event: the object is gone.
    pub gone: bool,
    pub state: T,
}

impl<T> Seen<T> {
    pub fn live(&self) -> Option<&T> {
        (!self.gone).then_some(&self.state)
    }
}

/// Every object's last observation, by name, per kind.
#[derive(Clone, Debug, Default)]
pub struct World {
    pub pods: BTreeMap<String, Seen<PodState>>,
    pub pvcs: BTreeMap<String, Seen<PvcState>>,
    pub pvs: BTreeMap<String, Seen<PvState>>,
    pub statefulsets: BTreeMap<String, Seen<StsState>>,
    pub nodes: BTreeMap<String, Seen<NodeState>>,
    pub services: BTreeMap<String, Seen<ServiceState>>,
    pub slices: BTreeMap<String, Seen<EndpointSliceState>>,
    pub revisions: BTreeMap<String, Seen<ControllerRevisionState>>,
    /// How many object observations went into this world.
    pub observations: usize,
}

impl World {
    /// The state after every entry with `seq <= upto`.
    pub fn at(entries: &[Entry], upto: u64) -> World {
        let mut world = World::default();
        for entry in entries.iter().filter(|e| e.seq <= upto) {
            world.observe(entry);
        }
        world
    }

    /// The state after every entry.
    pub fn last(entries: &[Entry]) -> World {
        World::at(entries, u64::MAX)
    }

    /// Folds one entry in; entries that are not object observations are ignored.
    pub fn observe(&mut self, entry: &Entry) {
        let Event::Object { change, object } = &entry.event else {
            return;
        };
        self.observations += 1;
        let gone = *change == Change::Deleted;
        let seq = entry.seq;
        match object {
            Snapshot::Pod(s) => put(&mut self.pods, seq, gone, s),
            Snapshot::PersistentVolumeClaim(s) => put(&mut self.pvcs, seq, gone, s),
            Snapshot::PersistentVolume(s) => put(&mut self.pvs, seq, gone, s),
            Snapshot::StatefulSet(s) => put(&mut self.statefulsets, seq, gone, s),
            Snapshot::Node(s) => put(&mut self.nodes, seq, gone, s),
            Snapshot::Service(s) => put(&mut self.services, seq, gone, s),
            Snapshot::EndpointSlice(s) => put(&mut self.slices, seq, gone, s),
            Snapshot::ControllerRevision(s) => put(&mut self.revisions, seq, gone, s),
        }
    }

    pub fn live_pod(&self, name: &str) -> Option<&PodState> {
        self.pods.get(name).and_then(Seen::live)
    }

    pub fn live_pvc(&self, name: &str) -> Option<&PvcState> {
        self.pvcs.get(name).and_then(Seen::live)
    }

    /// Where the live PV `pv` is pinned by its node affinity. None when that PV was never
    /// observed or was observed deleted: unknown, never "not node-bound" (a probe that
    /// took a missing PV for unpinned storage would run the pod-moves case on node-bound
    /// storage).
    pub fn pv_pinning(&self, pv: &str) -> Option<Pinning<'_>> {
        let state = self.pvs.get(pv).and_then(Seen::live)?;
        Some(match state.node.as_deref() {
            Some(node) => Pinning::Node(node),
            None => Pinning::Unpinned,
        })
    }

    /// Where the PV bound to the live claim `claim` is pinned; None when the claim is not
    /// live, not bound, or its PV is unknown (see [`World::pv_pinning`]).
    pub fn claim_pinning(&self, claim: &str) -> Option<Pinning<'_>> {
        let pv = self.live_pvc(claim)?.volume_name.as_deref()?;
        self.pv_pinning(pv)
    }
}

/// Whether an observed PV is pinned to one node (node-bound storage: a pod using it
/// cannot leave that node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinning<'a> {
    Node(&'a str),
    Unpinned,
}

impl Pinning<'_> {
    pub fn node_bound(&self) -> bool {
        matches!(self, Pinning::Node(_))
    }
}

fn put<T: Clone + HasName>(map: &mut BTreeMap<String, Seen<T>>, seq: u64, gone: bool, state: &T) {
    map.insert(
        state.name().to_string(),
        Seen {
            seq,
            gone,
            state: state.clone(),
        },
    );
}

trait HasName {
    fn name(&self) -> &str;
}

macro_rules! has_name {
    ($($t:ty),*) => {
        $(impl HasName for $t {
            fn name(&self) -> &str {
                &self.name
            }
        })*
    };
}

has_name!(
    PodState,
    PvcState,
    PvState,
    StsState,
    NodeState,
    ServiceState,
    EndpointSliceState,
    ControllerRevisionState
);

/// The pod observations of a history, in order: (seq, deleted, state).
pub fn pod_observations(entries: &[Entry]) -> impl Iterator<Item = (u64, bool, &PodState)> {
    entries.iter().filter_map(|e| match &e.event {
        Event::Object {
            change,
            object: Snapshot::Pod(p),
        } => Some((e.seq, *change == Change::Deleted, p)),
        _ => None,
    })
}

/// The ordinal of a StatefulSet pod name (`<sts>-<ordinal>`), if it is one.
pub fn ordinal_of(pod_name: &str, statefulset: &str) -> Option<u32> {
    let digits = pod_name.strip_prefix(statefulset)?.strip_prefix('-')?;
    // Reject "+1" and "01": they parse, but are not names the controller gives.
    digits
        .parse::<u32>()
        .ok()
        .filter(|n| n.to_string() == digits)
}

/// "pod mysql-1 (uid abc)".
pub fn pod_ref(pod: &PodState) -> String {
    format!("pod {} (uid {})", pod.name, pod.uid)
}

/// A pod's state in a few words, for evidence.
pub fn describe_pod(pod: &PodState) -> String {
    format!(
        "phase {}, {}{}, restarts {}, node {}",
        pod.phase.as_deref().unwrap_or("unknown"),
        if pod.ready { "ready" } else { "not ready" },
        if pod.terminating { ", terminating" } else { "" },
        pod.restart_count,
        pod.node_name.as_deref().unwrap_or("none"),
    )
}

/// "PVC data-mysql-0 (uid abc, PV pv-1)".
pub fn pvc_ref(pvc: &PvcState) -> String {
    format!(
        "PVC {} (uid {}, PV {})",
        pvc.name,
        pvc.uid,
        pvc.volume_name.as_deref().unwrap_or("none")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::testkit::*;

    #[test]
    fn ordinal_of_accepts_only_controller_names() {
        assert_eq!(ordinal_of("mysql-0", "mysql"), Some(0));
        assert_eq!(ordinal_of("mysql-12", "mysql"), Some(12));
        assert_eq!(ordinal_of("mysql-01", "mysql"), None);
        assert_eq!(ordinal_of("mysql-+1", "mysql"), None);
        assert_eq!(ordinal_of("mysqlx-1", "mysql"), None);
        assert_eq!(ordinal_of("mysql-client", "mysql"), None);
    }

    #[test]
    fn a_pv_never_observed_is_not_taken_for_unpinned_storage() {
        let mut remote = pv("pv-r", "c1");
        remote.node = None;
        let entries = History::from_events([
            applied(pvc(&claim(0), "c0", "pv-0")),
            applied(pv("pv-0", "c0")),
            applied(pvc(&claim(1), "c1", "pv-r")),
            applied(remote),
            applied(pvc(&claim(2), "c2", "pv-never-seen")),
            applied(pvc(&claim(3), "c3", "pv-3")),
            applied(pv("pv-3", "c3")),
            deleted(pv("pv-3", "c3")),
        ]);
        let world = World::last(&entries);
        assert_eq!(
            world.claim_pinning(&claim(0)),
            Some(Pinning::Node("worker"))
        );
        assert!(
            world
                .claim_pinning(&claim(0))
                .is_some_and(|p| p.node_bound())
        );
        assert_eq!(world.claim_pinning(&claim(1)), Some(Pinning::Unpinned));
        assert_eq!(world.claim_pinning(&claim(2)), None, "PV never observed");
        assert_eq!(world.claim_pinning(&claim(3)), None, "PV observed deleted");
        assert_eq!(world.claim_pinning(&claim(4)), None, "claim never observed");
        assert_eq!(world.pv_pinning("pv-never-seen"), None);
    }

    #[test]
    fn world_keeps_the_last_observation_up_to_a_seq() {
        let entries = History::from_events([
            applied(pod("mysql-0", "u0").not_ready()),
            applied(pod("mysql-0", "u0")),
            deleted(pod("mysql-0", "u0")),
        ]);
        assert!(
            !World::at(&entries, 0)
                .live_pod("mysql-0")
                .expect("live")
                .ready
        );
        assert!(
            World::at(&entries, 1)
                .live_pod("mysql-0")
                .expect("live")
                .ready
        );
        let last = World::last(&entries);
        assert!(last.live_pod("mysql-0").is_none());
        assert_eq!(last.pods["mysql-0"].seq, 2);
        assert_eq!(last.observations, 3);
    }
}
