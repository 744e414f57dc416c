//! Loading the documented manifests into typed k8s-openapi objects, and the overrides a
//! user needs on a real cluster (image, storage class and size, replicas, namespace).
//!
//! The files under `manifests/mysql/` are the objects under test, byte for byte from the
//! source document; overrides are applied after loading, so the documented manifest stays
//! the default.

use std::fmt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, Service};
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

/// The kinds the loader understands, as `(apiVersion, kind)`: what the documented
/// manifests hold.
pub const SUPPORTED_KINDS: &[(&str, &str)] = &[("v1", "Service"), ("apps/v1", "StatefulSet")];

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
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Service(_) => "Service",
            Object::StatefulSet(_) => "StatefulSet",
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
        }
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Service(o) => &mut o.metadata,
            Object::StatefulSet(o) => &mut o.metadata,
        }
    }

    /// Sets `metadata.namespace`.
    pub fn set_namespace(&mut self, namespace: &str) {
        self.metadata_mut().namespace = Some(namespace.to_owned());
    }

    /// The object as YAML. The root password env value is *not* redacted here; use [`Object::to_yaml_redacted`] for anything printed.
    pub fn to_yaml(&self) -> Result<String, ManifestError> {
        let rendered = match self {
            Object::Service(o) => serde_yaml::to_string(o),
            Object::StatefulSet(o) => serde_yaml::to_string(o),
        };
        rendered.map_err(|source| ManifestError::Render {
            kind: self.kind(),
            name: self.name().to_owned(),
            source,
        })
    }

    /// The object as YAML with every container env value named [`ROOT_PASSWORD_ENV`]
    /// replaced by [`REDACTED`].
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
        Object::Service(_) => {}
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

    /// The spec of the StatefulSet's (first) volumeClaimTemplate (empty when it has none).
    pub fn claim_template_spec(&self) -> PersistentVolumeClaimSpec {
        self.statefulset
            .spec
            .volume_claim_templates
            .as_ref()
            .and_then(|t| t.first())
            .and_then(|t| t.spec.clone())
            .unwrap_or_default()
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
mod tests;
