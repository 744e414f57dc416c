//! Loading the documented manifests into typed k8s-openapi objects, and the overrides a
//! user needs on a real cluster (image, storage class and size, replicas, namespace).
//!
//! The files under `manifests/mysql/` are the objects under test, byte for byte from the
//! source document; overrides are applied after loading, so the documented manifest stays
//! the default.

use std::fmt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::support::settings::{ManifestSettings, Settings, SettingsError};

/// The environment variable of the documented StatefulSet that carries the root password.
pub const ROOT_PASSWORD_ENV: &str = "MYSQL_ROOT_PASSWORD";
/// What the root password is replaced with when manifests are printed.
pub const REDACTED: &str = "<redacted>";

/// The kinds the loader understands, as `(apiVersion, kind)`.
pub const SUPPORTED_KINDS: &[(&str, &str)] = &[
    ("v1", "Service"),
    ("apps/v1", "StatefulSet"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
];

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("failed to read manifest file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse {} document {document}: YAML syntax error{}", path.display(), line_suffix(*line))]
    Syntax {
        path: PathBuf,
        document: usize,
        line: Option<usize>,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("failed to load {} document {document}: the document is not a mapping", path.display())]
    NotAMapping { path: PathBuf, document: usize },
    #[error("failed to load {} document {document}: missing required field `{field}`", path.display())]
    MissingField {
        path: PathBuf,
        document: usize,
        field: &'static str,
    },
    #[error(
        "failed to load {} document {document}: unsupported kind `{kind}` (apiVersion `{api_version}`); supported: {}",
        path.display(),
        supported_kinds()
    )]
    UnsupportedKind {
        path: PathBuf,
        document: usize,
        api_version: String,
        kind: String,
    },
    #[error("failed to load {} document {document}: field `{field}`: {message}", path.display())]
    FieldType {
        path: PathBuf,
        document: usize,
        field: String,
        message: String,
    },
    #[error("failed to load {}: expected exactly one {expected}, found {found}", path.display())]
    UnexpectedContents {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },
    #[error("failed to render {kind} {name} as YAML")]
    Render {
        kind: &'static str,
        name: String,
        #[source]
        source: serde_yaml::Error,
    },
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

fn supported_kinds() -> String {
    SUPPORTED_KINDS
        .iter()
        .map(|(v, k)| format!("{k} ({v})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One typed object from a manifest file.
// A handful of objects loaded once: unboxed variants keep matching on them simple.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq)]
pub enum Object {
    Service(Service),
    StatefulSet(StatefulSet),
    ConfigMap(ConfigMap),
    Secret(Secret),
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Service(_) => "Service",
            Object::StatefulSet(_) => "StatefulSet",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }

    /// `Kind/name`, for logs and history entries.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }

    fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Service(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
        }
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Service(o) => &mut o.metadata,
            Object::StatefulSet(o) => &mut o.metadata,
            Object::ConfigMap(o) => &mut o.metadata,
            Object::Secret(o) => &mut o.metadata,
        }
    }

    /// Sets `metadata.namespace`.
    pub fn set_namespace(&mut self, namespace: &str) {
        self.metadata_mut().namespace = Some(namespace.to_owned());
    }

    /// The object as YAML. Secret data and the root password env value are *not*
    /// redacted here; use [`Object::to_yaml_redacted`] for anything printed.
    pub fn to_yaml(&self) -> Result<String, ManifestError> {
        let rendered = match self {
            Object::Service(o) => serde_yaml::to_string(o),
            Object::StatefulSet(o) => serde_yaml::to_string(o),
            Object::ConfigMap(o) => serde_yaml::to_string(o),
            Object::Secret(o) => serde_yaml::to_string(o),
        };
        rendered.map_err(|source| ManifestError::Render {
            kind: self.kind(),
            name: self.name().to_owned(),
            source,
        })
    }

    /// The object as YAML with secrets replaced by [`REDACTED`]: Secret data and every
    /// container env value named [`ROOT_PASSWORD_ENV`].
    pub fn to_yaml_redacted(&self) -> Result<String, ManifestError> {
        redacted(self).to_yaml()
    }
}

// Debug prints identity only: the full objects carry the root password.
impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.describe())?;
        if let Some(ns) = self.namespace() {
            write!(f, " (namespace {ns})")?;
        }
        Ok(())
    }
}

fn redacted(object: &Object) -> Object {
    let mut copy = object.clone();
    match &mut copy {
        Object::StatefulSet(sts) => redact_statefulset(sts),
        Object::Secret(secret) => {
            for value in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
                *value = k8s_openapi::ByteString(REDACTED.as_bytes().to_vec());
            }
            for value in secret.string_data.iter_mut().flat_map(|d| d.values_mut()) {
                *value = REDACTED.to_owned();
            }
        }
        Object::Service(_) | Object::ConfigMap(_) => {}
    }
    copy
}

fn redact_statefulset(sts: &mut StatefulSet) {
    let containers = sts
        .spec
        .template
        .spec
        .iter_mut()
        .flat_map(|p| p.containers.iter_mut());
    for env in containers.flat_map(|c| c.env.iter_mut().flatten()) {
        if env.name == ROOT_PASSWORD_ENV && env.value.is_some() {
            env.value = Some(REDACTED.to_owned());
        }
    }
}

/// Loads every object of a single- or multi-document YAML file. Empty documents
/// (e.g. after a trailing `---`) are skipped; documents are numbered from 1 in errors.
pub fn load_file(path: &Path) -> Result<Vec<Object>, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    load_str(path, &text)
}

/// Like [`load_file`] on text already read; `path` is only used in errors.
pub fn load_str(path: &Path, text: &str) -> Result<Vec<Object>, ManifestError> {
    let mut objects = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let doc = Doc {
            path,
            number: index + 1,
        };
        let value = Value::deserialize(document).map_err(|source| doc.syntax(source))?;
        if value.is_null() {
            continue;
        }
        objects.push(doc.object(value)?);
    }
    Ok(objects)
}

/// One document of one file, for error context.
struct Doc<'a> {
    path: &'a Path,
    number: usize,
}

impl Doc<'_> {
    fn syntax(&self, source: serde_yaml::Error) -> ManifestError {
        ManifestError::Syntax {
            path: self.path.to_owned(),
            document: self.number,
            line: source.location().map(|l| l.line()),
            source,
        }
    }

    fn missing(&self, field: &'static str) -> ManifestError {
        ManifestError::MissingField {
            path: self.path.to_owned(),
            document: self.number,
            field,
        }
    }

    fn object(&self, value: Value) -> Result<Object, ManifestError> {
        if !value.is_mapping() {
            return Err(ManifestError::NotAMapping {
                path: self.path.to_owned(),
                document: self.number,
            });
        }
        let api_version = self.required_str(&value, &["apiVersion"], "apiVersion")?;
        let kind = self.required_str(&value, &["kind"], "kind")?;
        if value.get("metadata").is_none_or(Value::is_null) {
            return Err(self.missing("metadata"));
        }
        self.required_str(&value, &["metadata", "name"], "metadata.name")?;
        match (api_version.as_str(), kind.as_str()) {
            ("v1", "Service") => self.typed(value).map(Object::Service),
            ("apps/v1", "StatefulSet") => self.typed(value).map(Object::StatefulSet),
            ("v1", "ConfigMap") => self.typed(value).map(Object::ConfigMap),
            ("v1", "Secret") => self.typed(value).map(Object::Secret),
            _ => Err(ManifestError::UnsupportedKind {
                path: self.path.to_owned(),
                document: self.number,
                api_version,
                kind,
            }),
        }
    }

    /// A non-empty string at `keys`; absent, null or empty counts as missing, and a
    /// non-string value is a type error naming the field.
    fn required_str(
        &self,
        value: &Value,
        keys: &[&str],
        field: &'static str,
    ) -> Result<String, ManifestError> {
        let found = keys.iter().try_fold(value, |v, k| v.get(k));
        match found {
            None | Some(Value::Null) => Err(self.missing(field)),
            Some(Value::String(s)) if s.is_empty() => Err(self.missing(field)),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(ManifestError::FieldType {
                path: self.path.to_owned(),
                document: self.number,
                field: field.to_owned(),
                message: format!("expected a string, found {}", value_type(other)),
            }),
        }
    }

    fn typed<T: DeserializeOwned>(&self, value: Value) -> Result<T, ManifestError> {
        serde_path_to_error::deserialize(value).map_err(|err| ManifestError::FieldType {
            path: self.path.to_owned(),
            document: self.number,
            field: err.path().to_string(),
            message: err.into_inner().to_string(),
        })
    }
}

fn value_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a sequence",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Changes a user needs on a real cluster; `None` keeps the documented value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Image of every container of the StatefulSet's pod template.
    pub image: Option<String>,
    /// `storageClassName` of every volumeClaimTemplate.
    pub storage_class: Option<String>,
    /// `resources.requests.storage` of every volumeClaimTemplate (e.g. `2Gi`).
    pub storage_size: Option<String>,
    pub replicas: Option<i32>,
    /// `metadata.namespace` of every object.
    pub namespace: Option<String>,
}

impl Overrides {
    /// The manifest overrides of the process's settings (`E2E_IMAGE`, `E2E_STORAGE_CLASS`,
    /// `E2E_STORAGE_SIZE`, `E2E_REPLICAS`). The namespace is per test, never a setting.
    pub fn from_env() -> Result<Overrides, SettingsError> {
        Ok(Self::from_settings(&Settings::global()?.manifest))
    }

    pub fn from_settings(settings: &ManifestSettings) -> Overrides {
        Overrides {
            image: settings.image.clone(),
            storage_class: settings.storage_class.clone(),
            storage_size: settings.storage_size.clone(),
            replicas: settings.replicas,
            namespace: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    pub fn apply(&self, objects: &mut [Object]) {
        for object in objects.iter_mut() {
            self.apply_to_metadata(object.metadata_mut());
            if let Object::StatefulSet(sts) = object {
                self.apply_to_statefulset(sts);
            }
        }
    }

    fn apply_to_metadata(&self, metadata: &mut ObjectMeta) {
        if let Some(ns) = &self.namespace {
            metadata.namespace = Some(ns.clone());
        }
    }

    fn apply_to_statefulset(&self, sts: &mut StatefulSet) {
        let spec = &mut sts.spec;
        if let Some(replicas) = self.replicas {
            spec.replicas = Some(replicas);
        }
        if let Some(image) = &self.image {
            for container in spec
                .template
                .spec
                .iter_mut()
                .flat_map(|p| p.containers.iter_mut())
            {
                container.image = Some(image.clone());
            }
        }
        for claim in spec.volume_claim_templates.iter_mut().flatten() {
            let claim_spec = claim.spec.get_or_insert_with(Default::default);
            if let Some(class) = &self.storage_class {
                claim_spec.storage_class_name = Some(class.clone());
            }
            if let Some(size) = &self.storage_size {
                claim_spec
                    .resources
                    .get_or_insert_with(Default::default)
                    .requests
                    .get_or_insert_with(Default::default)
                    .insert("storage".to_owned(), Quantity(size.clone()));
            }
        }
    }
}

/// The documented headless Service and StatefulSet, after overrides.
#[derive(Clone, PartialEq)]
pub struct MysqlManifests {
    pub service: Service,
    pub statefulset: StatefulSet,
}

/// Where the documented manifests live, relative to the repository root.
pub const SERVICE_MANIFEST: &str = "manifests/mysql/service.yaml";
pub const STATEFULSET_MANIFEST: &str = "manifests/mysql/statefulset.yaml";
pub const KIND_CLUSTER_CONFIG: &str = "manifests/kind/cluster.yaml";

impl MysqlManifests {
    /// Loads `manifests/mysql/{service,statefulset}.yaml` (each must hold exactly one
    /// object of its kind) and applies `overrides`.
    pub fn load_documented(
        repo_root: &Path,
        overrides: &Overrides,
    ) -> Result<MysqlManifests, ManifestError> {
        let service_path = repo_root.join(SERVICE_MANIFEST);
        let sts_path = repo_root.join(STATEFULSET_MANIFEST);
        let mut service = load_single(&service_path, "Service", |o| match o {
            Object::Service(s) => Some(s),
            _ => None,
        })?;
        let mut statefulset = load_single(&sts_path, "StatefulSet", |o| match o {
            Object::StatefulSet(s) => Some(s),
            _ => None,
        })?;
        overrides.apply_to_metadata(&mut service.metadata);
        overrides.apply_to_metadata(&mut statefulset.metadata);
        overrides.apply_to_statefulset(&mut statefulset);
        Ok(MysqlManifests {
            service,
            statefulset,
        })
    }

    /// Both objects, Service first (apply order).
    pub fn objects(&self) -> Vec<Object> {
        vec![
            Object::Service(self.service.clone()),
            Object::StatefulSet(self.statefulset.clone()),
        ]
    }

    pub fn statefulset_name(&self) -> &str {
        self.statefulset
            .metadata
            .name
            .as_deref()
            .unwrap_or_default()
    }

    pub fn service_name(&self) -> &str {
        self.service.metadata.name.as_deref().unwrap_or_default()
    }

    /// `spec.replicas` of the StatefulSet (Kubernetes defaults it to 1).
    pub fn replicas(&self) -> i32 {
        self.statefulset.spec.replicas.unwrap_or(1)
    }

    /// The value of `MYSQL_ROOT_PASSWORD` in the StatefulSet's containers. Never log it.
    pub fn root_password(&self) -> Option<String> {
        self.statefulset
            .spec
            .template
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.env.iter().flatten())
            .find(|e| e.name == ROOT_PASSWORD_ENV)
            .and_then(|e| e.value.clone())
    }

    /// Both objects as a multi-document YAML stream with the root password redacted.
    pub fn to_yaml_redacted(&self) -> Result<String, ManifestError> {
        let docs = self
            .objects()
            .iter()
            .map(Object::to_yaml_redacted)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(docs.join("---\n"))
    }
}

impl fmt::Debug for MysqlManifests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlManifests")
            .field("service", &self.service_name())
            .field("statefulset", &self.statefulset_name())
            .field("replicas", &self.replicas())
            .finish_non_exhaustive()
    }
}

fn load_single<T>(
    path: &Path,
    expected: &'static str,
    pick: impl Fn(Object) -> Option<T>,
) -> Result<T, ManifestError> {
    let objects = load_file(path)?;
    let found = objects
        .iter()
        .map(Object::describe)
        .collect::<Vec<_>>()
        .join(", ");
    let unexpected = || ManifestError::UnexpectedContents {
        path: path.to_owned(),
        expected,
        found: if found.is_empty() {
            "no objects".to_owned()
        } else {
            found.clone()
        },
    };
    let [only] = <[Object; 1]>::try_from(objects).map_err(|_| unexpected())?;
    pick(only).ok_or_else(unexpected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::settings::repo_root;

    fn load(text: &str) -> Result<Vec<Object>, ManifestError> {
        load_str(Path::new("test.yaml"), text)
    }

    fn documented() -> MysqlManifests {
        MysqlManifests::load_documented(&repo_root(), &Overrides::default()).expect("load")
    }

    #[test]
    fn loads_the_documented_manifests() {
        let m = documented();
        assert_eq!(m.service_name(), "mysql");
        assert_eq!(m.statefulset_name(), "mysql");
        assert_eq!(m.replicas(), 3);
        let spec = m.service.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        let sts = &m.statefulset.spec;
        assert_eq!(sts.service_name.as_deref(), Some("mysql"));
        let container = &sts.template.spec.as_ref().unwrap().containers[0];
        assert_eq!(container.image.as_deref(), Some("mysql:5.7"));
        let claim = &sts.volume_claim_templates.as_ref().unwrap()[0];
        assert_eq!(
            claim.metadata.name.as_deref(),
            Some("mysql-persistent-storage")
        );
        let size = &claim
            .spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests;
        assert_eq!(size.as_ref().unwrap()["storage"].0, "1Gi");
        assert_eq!(m.root_password().as_deref(), Some("my-secret-pw"));
    }

    #[test]
    fn loads_multi_document_files_skipping_empty_documents() {
        let objects = load(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n---\n",
        )
        .unwrap();
        let names: Vec<_> = objects.iter().map(Object::describe).collect();
        assert_eq!(names, ["ConfigMap/a", "Service/b"]);
    }

    #[test]
    fn syntax_error_names_file_document_and_line() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n";
        let err = load(text).unwrap_err();
        let ManifestError::Syntax { document, line, .. } = &err else {
            panic!("expected a syntax error, got {err}");
        };
        assert_eq!(*document, 2);
        assert_eq!(*line, Some(10), "{err}");
        let message = err.to_string();
        assert!(message.contains("test.yaml"), "{message}");
        assert!(message.contains("document 2"), "{message}");
        assert!(message.contains("line 10"), "{message}");
    }

    #[test]
    fn bad_indentation_is_a_syntax_error_with_line() {
        let err = load("apiVersion: v1\nkind: Service\n metadata: x\n").unwrap_err();
        assert!(
            matches!(err, ManifestError::Syntax { line: Some(3), .. }),
            "{err}"
        );
    }

    #[test]
    fn unknown_kind_is_rejected_with_the_supported_list() {
        let err = load("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n").unwrap_err();
        assert!(
            matches!(&err, ManifestError::UnsupportedKind { kind, document: 1, .. } if kind == "Pod")
        );
        let message = err.to_string();
        assert!(message.contains("unsupported kind `Pod`"), "{message}");
        assert!(message.contains("StatefulSet (apps/v1)"), "{message}");
    }

    #[test]
    fn known_kind_with_wrong_api_version_is_rejected() {
        let err = load("apiVersion: apps/v1beta1\nkind: StatefulSet\nmetadata:\n  name: s\n")
            .unwrap_err();
        assert!(
            matches!(&err, ManifestError::UnsupportedKind { api_version, .. } if api_version == "apps/v1beta1"),
            "{err}"
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let cases = [
            ("kind: Service\nmetadata:\n  name: x\n", "apiVersion"),
            ("apiVersion: v1\nmetadata:\n  name: x\n", "kind"),
            ("apiVersion: v1\nkind: Service\n", "metadata"),
            (
                "apiVersion: v1\nkind: Service\nmetadata:\n  labels: {}\n",
                "metadata.name",
            ),
            (
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: \"\"\n",
                "metadata.name",
            ),
        ];
        for (text, expected) in cases {
            let err = load(text).unwrap_err();
            assert!(
                matches!(&err, ManifestError::MissingField { field, .. } if *field == expected),
                "{text:?}: {err}"
            );
            assert!(err.to_string().contains(&format!("`{expected}`")), "{err}");
        }
    }

    #[test]
    fn wrong_field_type_names_the_field_path() {
        let text = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\nspec:\n  replicas: three\n  selector: {}\n  serviceName: s\n  template: {}\n";
        let err = load(text).unwrap_err();
        let ManifestError::FieldType { field, .. } = &err else {
            panic!("expected a field type error, got {err}");
        };
        assert_eq!(field, "spec.replicas");
        assert!(err.to_string().contains("`spec.replicas`"), "{err}");
    }

    #[test]
    fn non_string_name_is_a_type_error() {
        let err = load("apiVersion: v1\nkind: Service\nmetadata:\n  name: [a]\n").unwrap_err();
        assert!(
            matches!(&err, ManifestError::FieldType { field, .. } if field == "metadata.name"),
            "{err}"
        );
    }

    #[test]
    fn scalar_document_is_not_a_mapping() {
        let err = load("just a string\n").unwrap_err();
        assert!(
            matches!(err, ManifestError::NotAMapping { document: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = load_file(Path::new("/nonexistent/x.yaml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.yaml"), "{err}");
    }

    #[test]
    fn overrides_change_only_what_they_name() {
        let overrides = Overrides {
            image: Some("mariadb:11".into()),
            storage_class: Some("fast".into()),
            storage_size: Some("2Gi".into()),
            replicas: Some(5),
            namespace: Some("ns1".into()),
        };
        let m = MysqlManifests::load_documented(&repo_root(), &overrides).unwrap();
        assert_eq!(m.replicas(), 5);
        assert_eq!(m.service.metadata.namespace.as_deref(), Some("ns1"));
        assert_eq!(m.statefulset.metadata.namespace.as_deref(), Some("ns1"));
        let spec = &m.statefulset.spec;
        let container = &spec.template.spec.as_ref().unwrap().containers[0];
        assert_eq!(container.image.as_deref(), Some("mariadb:11"));
        let claim = spec.volume_claim_templates.as_ref().unwrap()[0]
            .spec
            .as_ref()
            .unwrap();
        assert_eq!(claim.storage_class_name.as_deref(), Some("fast"));
        let requests = claim.resources.as_ref().unwrap().requests.as_ref().unwrap();
        assert_eq!(requests["storage"].0, "2Gi");
        // Untouched: the access mode and the password.
        assert_eq!(
            claim.access_modes.as_deref(),
            Some(&["ReadWriteOnce".to_owned()][..])
        );
        assert_eq!(m.root_password().as_deref(), Some("my-secret-pw"));
    }

    #[test]
    fn empty_overrides_keep_the_documented_manifest() {
        let mut objects = documented().objects();
        let before = objects.clone();
        Overrides::default().apply(&mut objects);
        assert_eq!(objects, before);
    }

    #[test]
    fn overrides_from_settings() {
        let settings = ManifestSettings {
            image: Some("mysql:8.0".into()),
            storage_class: None,
            storage_size: Some("500Mi".into()),
            replicas: Some(4),
        };
        let o = Overrides::from_settings(&settings);
        assert_eq!(o.image.as_deref(), Some("mysql:8.0"));
        assert_eq!(o.storage_class, None);
        assert_eq!(o.storage_size.as_deref(), Some("500Mi"));
        assert_eq!(o.replicas, Some(4));
        assert_eq!(o.namespace, None, "the namespace is per test");
    }

    #[test]
    fn rendering_redacts_the_root_password() {
        let m = documented();
        let yaml = m.to_yaml_redacted().unwrap();
        assert!(!yaml.contains("my-secret-pw"), "{yaml}");
        assert!(yaml.contains(REDACTED), "{yaml}");
        assert!(yaml.contains("kind: Service") && yaml.contains("kind: StatefulSet"));
        // The rendered stream loads back into the same kinds.
        let back = load(&yaml).unwrap();
        assert_eq!(back.len(), 2);
        assert!(!format!("{m:?}").contains("my-secret-pw"));
        assert!(!format!("{:?}", m.objects()).contains("my-secret-pw"));
    }

    #[test]
    fn documented_file_with_the_wrong_object_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("manifests/mysql")).unwrap();
        let svc = std::fs::read_to_string(repo_root().join(SERVICE_MANIFEST)).unwrap();
        std::fs::write(dir.path().join(SERVICE_MANIFEST), &svc).unwrap();
        std::fs::write(dir.path().join(STATEFULSET_MANIFEST), &svc).unwrap();
        let err = MysqlManifests::load_documented(dir.path(), &Overrides::default()).unwrap_err();
        assert!(
            matches!(&err, ManifestError::UnexpectedContents { expected: "StatefulSet", found, .. } if found == "Service/mysql"),
            "{err}"
        );
    }
}
