//! Sim configuration and the fault switches that make it break one promise on purpose.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The Kubernetes version the sim reports (`/version`, nodes' kubelet version).
pub const GIT_VERSION: &str = "v1.32.0+kube-sim";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown fault {0:?}; known faults: {known}", known = Fault::ALL_NAMES.join(", "))]
    UnknownFault(String),
}

/// One promise the sim can break on request (`--fault NAME` / `KUBE_SIM_FAULTS=a,b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// `names:random`: pods get random suffixes instead of ordinals.
    NamesRandom,
    /// `scale-up:parallel`: ignore OrderedReady on scale-up.
    ScaleUpParallel,
    /// `scale-down:forward`: delete condemned pods lowest ordinal first.
    ScaleDownForward,
    /// `pvc:delete-on-scale-down`: delete the PVCs of removed ordinals.
    PvcDeleteOnScaleDown,
    /// `pvc:new-on-recreate`: a recreated pod gets a fresh, empty PVC.
    PvcNewOnRecreate,
    /// `volume:wipe-on-restart`: empty the data dir whenever a pod's process restarts.
    VolumeWipeOnRestart,
    /// `pod:zombie-on-force-delete`: a force-deleted pod's container keeps running (and
    /// serving its open connections) until the sim shuts down, while the StatefulSet
    /// starts the replacement on the same volume.
    PodZombieOnForceDelete,
    /// `pvc:retain-despite-policy`: the StatefulSet controller ignores
    /// `persistentVolumeClaimRetentionPolicy` and retains every claim (a controller
    /// older than the feature, behind a server that accepts the field).
    PvcRetainDespitePolicy,
    /// `dns:no-hostname`: the EndpointSlice controller leaves out every endpoint's
    /// `hostname`, so no ordinal gets its stable DNS name under the headless Service.
    DnsNoHostname,
    /// `dns:stale-address`: the cluster DNS (what `getent hosts` in a pod answers) gives
    /// each pod's name an address the pod does not have, as a cache still holding an
    /// earlier incarnation's.
    DnsStaleAddress,
    /// `pods:no-hostname`: the StatefulSet controller creates pods without
    /// `spec.hostname` and `spec.subdomain`, so a pod's hostname is not its name and it
    /// has no DNS name under the governing Service.
    PodsNoHostname,
    /// `pods:no-ordinal-labels`: the StatefulSet controller creates pods without the
    /// `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index` labels,
    /// so no Service or selector can pick out one ordinal.
    PodsNoOrdinalLabels,
    /// `update:forward`: a RollingUpdate replaces pods lowest ordinal first.
    UpdateForward,
    /// `update:ignore-partition`: a RollingUpdate replaces ordinals below
    /// `rollingUpdate.partition` too.
    UpdateIgnorePartition,
    /// `update:parallel`: a RollingUpdate deletes every outdated pod at once, without
    /// waiting for a replacement to be Running and Ready.
    UpdateParallel,
    /// `update:no-revision-object`: the StatefulSet controller creates the ControllerRevision
    /// of a set's first template only: a changed template becomes `status.updateRevision`
    /// and its pods' `controller-revision-hash` with no ControllerRevision of that name.
    UpdateNoRevisionObject,
    /// `restart:new-identity`: a container that exits unexpectedly is not restarted in
    /// place: the kubelet removes its pod, so the ordinal comes back as a new pod (new uid).
    RestartNewIdentity,
    /// `mysql:interrupted-init`: the first start of every data dir is cut short before the
    /// entrypoint creates `root@'%'` (as mysql:5.7's is when killed mid-init) and is never
    /// retried: mysqld runs, but never accepts root over TCP.
    MysqlInterruptedInit,
    /// `pv:delete-on-retain`: the PV reclaimer deletes a Released PV (and its data) whose
    /// reclaimPolicy is Retain, as it would one whose policy is Delete.
    PvDeleteOnRetain,
    /// `volume:wipe-on-new-pod`: a new pod started on a claim's volume that already holds
    /// a database (another pod's) starts on an empty data dir, as if the volume's data did
    /// not outlive the pod that wrote it (a node-local cache never written through).
    VolumeWipeOnNewPod,
    /// `update:relabel-in-place`: a RollingUpdate does not replace an outdated pod: it
    /// rewrites the pod's `controller-revision-hash` label to the update revision, so the
    /// pod looks updated (and `status.updatedReplicas` counts it) while it still runs the
    /// old template.
    UpdateRelabelInPlace,
    /// `update:on-delete-rolls-later`: with updateStrategy OnDelete the controller leaves
    /// the pods alone for [`ON_DELETE_ROLL_DELAY`] after a template change, then rolls them
    /// as a RollingUpdate would (a controller that treats OnDelete as "not yet").
    UpdateOnDeleteRollsLater,
    /// `scale-up:ready-remembered`: the StatefulSet controller counts a pod as Running and
    /// Ready once it ever was, so an OrderedReady scale-up proceeds while a lower pod is
    /// NotReady (e.g. its node died) instead of halting.
    ScaleUpReadyRemembered,
    /// `endpoints:stale`: the EndpointSlice controller never drops an endpoint it published:
    /// a gone pod's endpoint stays, ready, with its old uid and address (a recreated pod's
    /// name gets a stale second endpoint, a removed ordinal a phantom one).
    EndpointsStale,
    /// `dns:cached-answers`: the cluster DNS answers each name with the first addresses it
    /// ever gave it: a recreated pod's name keeps resolving to its old address, a NotReady
    /// or deleted pod's name keeps resolving.
    DnsCachedAnswers,
    /// `pvc:when-deleted-ignored`: the StatefulSet controller ignores
    /// `persistentVolumeClaimRetentionPolicy.whenDeleted: Delete` (whenScaled still works):
    /// deleting the set leaves its claims behind.
    PvcWhenDeletedIgnored,
    /// `pv:replaced-under-claim`: a Bound PV whose claim no pod uses (between a pod's
    /// deletion and its replacement) is removed and created again under the same name,
    /// bound to the same claim and directory: the claim looks kept, its volume is a new
    /// PV object (uid).
    PvReplacedUnderClaim,
    /// `pv:delete-on-retain-later`: the PV reclaimer keeps a Released PV whose
    /// reclaimPolicy is Retain for [`RETAIN_DELETE_DELAY`], then deletes it (and its data):
    /// a check that judges the moment the PV turns Released misses it.
    PvDeleteOnRetainLater,
}

/// How long `pv:delete-on-retain-later` keeps a Released Retain PV before deleting it.
pub const RETAIN_DELETE_DELAY: Duration = Duration::from_secs(2);

/// How long `update:on-delete-rolls-later` waits after a template change before it rolls
/// an OnDelete set by itself.
pub const ON_DELETE_ROLL_DELAY: Duration = Duration::from_secs(4);

impl Fault {
    pub const ALL: [Fault; 28] = [
        Fault::NamesRandom,
        Fault::ScaleUpParallel,
        Fault::ScaleDownForward,
        Fault::PvcDeleteOnScaleDown,
        Fault::PvcNewOnRecreate,
        Fault::VolumeWipeOnRestart,
        Fault::PodZombieOnForceDelete,
        Fault::PvcRetainDespitePolicy,
        Fault::DnsNoHostname,
        Fault::DnsStaleAddress,
        Fault::PodsNoHostname,
        Fault::PodsNoOrdinalLabels,
        Fault::UpdateForward,
        Fault::UpdateIgnorePartition,
        Fault::UpdateParallel,
        Fault::RestartNewIdentity,
        Fault::MysqlInterruptedInit,
        Fault::PvDeleteOnRetain,
        Fault::VolumeWipeOnNewPod,
        Fault::UpdateNoRevisionObject,
        Fault::UpdateRelabelInPlace,
        Fault::UpdateOnDeleteRollsLater,
        Fault::ScaleUpReadyRemembered,
        Fault::EndpointsStale,
        Fault::DnsCachedAnswers,
        Fault::PvcWhenDeletedIgnored,
        Fault::PvReplacedUnderClaim,
        Fault::PvDeleteOnRetainLater,
    ];
    pub const ALL_NAMES: [&'static str; 28] = [
        "names:random",
        "scale-up:parallel",
        "scale-down:forward",
        "pvc:delete-on-scale-down",
        "pvc:new-on-recreate",
        "volume:wipe-on-restart",
        "pod:zombie-on-force-delete",
        "pvc:retain-despite-policy",
        "dns:no-hostname",
        "dns:stale-address",
        "pods:no-hostname",
        "pods:no-ordinal-labels",
        "update:forward",
        "update:ignore-partition",
        "update:parallel",
        "restart:new-identity",
        "mysql:interrupted-init",
        "pv:delete-on-retain",
        "volume:wipe-on-new-pod",
        "update:no-revision-object",
        "update:relabel-in-place",
        "update:on-delete-rolls-later",
        "scale-up:ready-remembered",
        "endpoints:stale",
        "dns:cached-answers",
        "pvc:when-deleted-ignored",
        "pv:replaced-under-claim",
        "pv:delete-on-retain-later",
    ];

    pub fn name(self) -> &'static str {
        let i = Fault::ALL
            .iter()
            .position(|f| *f == self)
            .unwrap_or_default();
        Fault::ALL_NAMES[i]
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Fault::ALL_NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Fault::ALL[i])
            .ok_or_else(|| ConfigError::UnknownFault(s.to_string()))
    }
}

/// The set of active faults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults(BTreeSet<Fault>);

impl Faults {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    pub fn insert(&mut self, fault: Fault) {
        self.0.insert(fault);
    }

    /// Parses a comma-separated list (`KUBE_SIM_FAULTS`); empty items are ignored.
    pub fn parse_list(list: &str) -> Result<Self, ConfigError> {
        let mut faults = Faults::none();
        for item in list.split(',').filter(|s| !s.trim().is_empty()) {
            faults.insert(item.parse()?);
        }
        Ok(faults)
    }

    pub fn iter(&self) -> impl Iterator<Item = Fault> + '_ {
        self.0.iter().copied()
    }
}

/// Everything the sim needs to run; built by `main` from flags and environment.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Number of worker nodes (`sim-worker`, `sim-worker2`, ...).
    pub nodes: usize,
    /// Root of all state: PV directories, pod run dirs, the MariaDB template.
    pub state_dir: PathBuf,
    /// Where to write a kubeconfig for clients (kubectl, kube-rs).
    pub kubeconfig: Option<PathBuf>,
    pub faults: Faults,
    pub mariadbd: PathBuf,
    pub install_db: PathBuf,
    /// How long after `stop` a node turns NotReady.
    pub node_grace: Duration,
    /// Keep the state dir on exit (for debugging).
    pub keep_state: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fault_name_round_trip() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>().expect("known"), f);
        }
    }

    #[test]
    fn rejects_unknown_fault_naming_it() {
        let err = Faults::parse_list("names:random, bogus").expect_err("bogus is unknown");
        assert!(err.to_string().contains("\"bogus\""), "{err}");
    }

    #[test]
    fn parses_comma_list() {
        let f = Faults::parse_list("scale-down:forward,,pvc:new-on-recreate").expect("valid");
        assert!(f.has(Fault::ScaleDownForward));
        assert!(f.has(Fault::PvcNewOnRecreate));
        assert!(!f.has(Fault::NamesRandom));
    }

    #[test]
    fn zombie_fault_is_known_by_name() {
        let f = Faults::parse_list("pod:zombie-on-force-delete").expect("valid");
        assert!(f.has(Fault::PodZombieOnForceDelete));
        assert_eq!(
            Fault::PodZombieOnForceDelete.to_string(),
            "pod:zombie-on-force-delete"
        );
    }
}
