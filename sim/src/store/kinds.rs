//! The kinds catalogue: every kind the sim serves, with its names, group/version, scope
//! and the identity rules of each.

/// Every kind the sim serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Namespace,
    Service,
    StatefulSet,
    Pod,
    PersistentVolumeClaim,
    PersistentVolume,
    Node,
    EndpointSlice,
    Event,
    StorageClass,
    ControllerRevision,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 11] = [
        ResourceKind::Namespace,
        ResourceKind::Service,
        ResourceKind::StatefulSet,
        ResourceKind::Pod,
        ResourceKind::PersistentVolumeClaim,
        ResourceKind::PersistentVolume,
        ResourceKind::Node,
        ResourceKind::EndpointSlice,
        ResourceKind::Event,
        ResourceKind::StorageClass,
        ResourceKind::ControllerRevision,
    ];

    pub fn namespaced(self) -> bool {
        !matches!(
            self,
            ResourceKind::Namespace
                | ResourceKind::PersistentVolume
                | ResourceKind::Node
                | ResourceKind::StorageClass
        )
    }

    /// API group ("" for core).
    pub fn group(self) -> &'static str {
        match self {
            ResourceKind::StatefulSet | ResourceKind::ControllerRevision => "apps",
            ResourceKind::EndpointSlice => "discovery.k8s.io",
            ResourceKind::StorageClass => "storage.k8s.io",
            _ => "",
        }
    }

    pub fn version(self) -> &'static str {
        "v1"
    }

    pub fn api_version(self) -> &'static str {
        match self {
            ResourceKind::StatefulSet | ResourceKind::ControllerRevision => "apps/v1",
            ResourceKind::EndpointSlice => "discovery.k8s.io/v1",
            ResourceKind::StorageClass => "storage.k8s.io/v1",
            _ => "v1",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            ResourceKind::Namespace => "Namespace",
            ResourceKind::Service => "Service",
            ResourceKind::StatefulSet => "StatefulSet",
            ResourceKind::Pod => "Pod",
            ResourceKind::PersistentVolumeClaim => "PersistentVolumeClaim",
            ResourceKind::PersistentVolume => "PersistentVolume",
            ResourceKind::Node => "Node",
            ResourceKind::EndpointSlice => "EndpointSlice",
            ResourceKind::Event => "Event",
            ResourceKind::StorageClass => "StorageClass",
            ResourceKind::ControllerRevision => "ControllerRevision",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            ResourceKind::Namespace => "namespaces",
            ResourceKind::Service => "services",
            ResourceKind::StatefulSet => "statefulsets",
            ResourceKind::Pod => "pods",
            ResourceKind::PersistentVolumeClaim => "persistentvolumeclaims",
            ResourceKind::PersistentVolume => "persistentvolumes",
            ResourceKind::Node => "nodes",
            ResourceKind::EndpointSlice => "endpointslices",
            ResourceKind::Event => "events",
            ResourceKind::StorageClass => "storageclasses",
            ResourceKind::ControllerRevision => "controllerrevisions",
        }
    }

    pub fn singular(self) -> String {
        self.kind().to_ascii_lowercase()
    }

    pub fn short_names(self) -> &'static [&'static str] {
        match self {
            ResourceKind::Namespace => &["ns"],
            ResourceKind::Service => &["svc"],
            ResourceKind::StatefulSet => &["sts"],
            ResourceKind::Pod => &["po"],
            ResourceKind::PersistentVolumeClaim => &["pvc"],
            ResourceKind::PersistentVolume => &["pv"],
            ResourceKind::Node => &["no"],
            ResourceKind::EndpointSlice | ResourceKind::ControllerRevision => &[],
            ResourceKind::Event => &["ev"],
            ResourceKind::StorageClass => &["sc"],
        }
    }

    /// `statefulsets.apps`, `pods`: the resource name used in API error messages.
    pub fn qualified_plural(self) -> String {
        match self.group() {
            "" => self.plural().to_string(),
            g => format!("{}.{g}", self.plural()),
        }
    }

    /// Finds the kind served at `/api/v1/{plural}` (group "") or `/apis/{group}/v1/{plural}`.
    pub fn from_group_plural(group: &str, plural: &str) -> Option<ResourceKind> {
        ResourceKind::ALL
            .into_iter()
            .find(|k| k.group() == group && k.plural() == plural)
    }
}
