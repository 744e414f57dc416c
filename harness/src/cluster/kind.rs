//! Provisioning with the kind CLI (<https://kind.sigs.k8s.io>): create, delete, list and
//! export kubeconfigs. Every command line is built here so the tests with fake `kind` and
//! `docker` executables pin them down.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tracing::info;

use crate::support::process::{self, ProcessError};

pub const KIND_INSTALL_URL: &str = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation";
pub const DOCKER_INSTALL_URL: &str = "https://docs.docker.com/engine/install/";

/// How long `docker info` / `kind version` may take before the target counts as absent.
pub const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(20);
/// `kind create cluster --wait 5m` plus node image pulls.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(60);
/// `docker pull` of the workload image (a few hundred MB from Docker Hub).
pub const PULL_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// `kind load docker-image`: one `docker save` streamed into every node's containerd.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, thiserror::Error)]
pub enum KindError {
    #[error(
        "failed to find `{tool}` (looked for `{program}` on PATH); the kind target needs docker and kind: install {tool} from {install_url}"
    )]
    ToolMissing {
        tool: &'static str,
        program: String,
        install_url: &'static str,
    },
    #[error("failed to use kind here (it needs docker and kind): {problems}")]
    Unavailable { problems: String },
    #[error("failed to run kind")]
    Command(#[source] ProcessError),
    #[error("failed to pull image {image}")]
    Pull {
        image: String,
        #[source]
        source: ProcessError,
    },
    #[error("failed to save image {image} to an archive for kind")]
    Save {
        image: String,
        #[source]
        source: ProcessError,
    },
    #[error("failed to load image {image} into the nodes of kind cluster `{cluster}`")]
    Load {
        image: String,
        cluster: String,
        #[source]
        source: Box<KindError>,
    },
    #[error(
        "failed to reuse kind cluster `{name}`: no such cluster (kind get clusters: {existing})"
    )]
    ClusterNotFound { name: String, existing: String },
    #[error("failed to write the kubeconfig of kind cluster `{name}` to {}", path.display())]
    WriteKubeconfig {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `kind create cluster` gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateCluster {
    pub name: String,
    /// The kind cluster config (`manifests/kind/cluster.yaml`).
    pub config: PathBuf,
    /// Node image (`E2E_KIND_IMAGE`), e.g. `kindest/node:v1.31.0`.
    pub image: Option<String>,
    /// Where kind writes the cluster's kubeconfig (never the user's default one).
    pub kubeconfig: PathBuf,
}

/// The kind and docker executables (names resolved through PATH, or absolute paths).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindCli {
    pub kind: PathBuf,
    pub docker: PathBuf,
}

impl Default for KindCli {
    fn default() -> Self {
        KindCli {
            kind: PathBuf::from("kind"),
            docker: PathBuf::from("docker"),
        }
    }
}

impl KindCli {
    pub fn new(kind: impl Into<PathBuf>, docker: impl Into<PathBuf>) -> KindCli {
        KindCli {
            kind: kind.into(),
            docker: docker.into(),
        }
    }

    /// `docker info` and `kind version` both succeed. Fails in seconds, naming everything
    /// that is missing and where to install it.
    pub fn preflight(&self) -> Result<(), KindError> {
        let mut problems = Vec::new();
        match process::run(Command::new(&self.docker).arg("info"), PREFLIGHT_TIMEOUT) {
            Ok(_) => {}
            Err(ProcessError::NotFound { program, .. }) => problems.push(format!(
                "`{program}` was not found on PATH: install Docker from {DOCKER_INSTALL_URL}"
            )),
            Err(err) => problems.push(format!(
                "the Docker daemon is not reachable ({err}): start it, or install Docker from {DOCKER_INSTALL_URL}"
            )),
        }
        match self.version() {
            Ok(_) => {}
            Err(KindError::ToolMissing { program, .. }) => problems.push(format!(
                "`{program}` was not found on PATH: install kind from {KIND_INSTALL_URL}"
            )),
            Err(err) => problems.push(format!(
                "`kind version` failed ({err}): reinstall kind from {KIND_INSTALL_URL}"
            )),
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(KindError::Unavailable {
                problems: problems.join("; "),
            })
        }
    }

    /// `kind version`, e.g. "kind v0.27.0 go1.23.6 linux/amd64".
    pub fn version(&self) -> Result<String, KindError> {
        let out = self.kind(&["version"], PREFLIGHT_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `kind create cluster --name N --config C [--image I] --kubeconfig K --wait 5m`.
    pub fn create_cluster(&self, spec: &CreateCluster) -> Result<(), KindError> {
        let mut args: Vec<&str> = vec!["create", "cluster", "--name", &spec.name];
        let config = spec.config.to_string_lossy();
        let kubeconfig = spec.kubeconfig.to_string_lossy();
        args.extend(["--config", &config]);
        if let Some(image) = &spec.image {
            args.extend(["--image", image]);
        }
        args.extend(["--kubeconfig", &kubeconfig, "--wait", "5m"]);
        info!(cluster = %spec.name, "creating kind cluster (this takes a few minutes)");
        self.kind(&args, CREATE_TIMEOUT).map(|_| ())
    }

    /// `kind delete cluster --name N`.
    pub fn delete_cluster(&self, name: &str) -> Result<(), KindError> {
        info!(cluster = %name, "deleting kind cluster");
        self.kind(&["delete", "cluster", "--name", name], DELETE_TIMEOUT)
            .map(|_| ())
    }

    /// Pulls `image` once for this machine's platform and loads it into every node of
    /// `cluster`, instead of one registry pull per node (Docker Hub's anonymous rate limit,
    /// minutes per node on CI): `docker pull --platform P IMAGE`, `docker image save
    /// --platform P -o DIR/workload-image.tar IMAGE`, `kind load image-archive ... --name N`.
    /// Through a single-platform archive rather than `kind load docker-image`, which fails
    /// with "content digest ... not found" on a multi-platform image when Docker uses the
    /// containerd image store (the default since Docker 29; kind #3795, the workaround kind
    /// documents in #4247). A Docker without `save --platform` (before 28) gets a plain
    /// `docker image save`, which its classic image store writes for one platform anyway.
    pub fn load_image(&self, cluster: &str, image: &str, dir: &Path) -> Result<(), KindError> {
        let platform = docker_platform();
        let archive = dir.join(IMAGE_ARCHIVE);
        let archive_arg = archive.to_string_lossy().into_owned();
        info!(cluster, image, %platform, "pulling the workload image once and loading it into every node");
        let pull_error = |source| KindError::Pull {
            image: image.to_owned(),
            source,
        };
        process::run(
            Command::new(&self.docker).args(["pull", "--platform", &platform, image]),
            PULL_TIMEOUT,
        )
        .map_err(pull_error)?;
        let save = |with_platform: bool| {
            let mut command = Command::new(&self.docker);
            command.args(["image", "save"]);
            if with_platform {
                command.args(["--platform", &platform]);
            }
            command.args(["-o", &archive_arg, image]);
            process::run(&mut command, LOAD_TIMEOUT)
        };
        save(true)
            .or_else(|_| save(false))
            .map_err(|source| KindError::Save {
                image: image.to_owned(),
                source,
            })?;
        let loaded = self.kind(
            &["load", "image-archive", &archive_arg, "--name", cluster],
            LOAD_TIMEOUT,
        );
        let _ = std::fs::remove_file(&archive);
        loaded.map(|_| ()).map_err(|source| KindError::Load {
            image: image.to_owned(),
            cluster: cluster.to_owned(),
            source: Box::new(source),
        })
    }

    /// `kind get clusters`: one name per line.
    pub fn get_clusters(&self) -> Result<Vec<String>, KindError> {
        let out = self.kind(&["get", "clusters"], QUERY_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("No kind clusters"))
            .map(str::to_owned)
            .collect())
    }

    /// Writes `kind get kubeconfig --name N` to `path` (leaving the user's kubeconfig alone),
    /// after checking that the cluster exists.
    pub fn write_kubeconfig(&self, name: &str, path: &Path) -> Result<(), KindError> {
        let clusters = self.get_clusters()?;
        if !clusters.iter().any(|c| c == name) {
            return Err(KindError::ClusterNotFound {
                name: name.to_owned(),
                existing: if clusters.is_empty() {
                    "none".to_owned()
                } else {
                    clusters.join(", ")
                },
            });
        }
        let out = self.kind(&["get", "kubeconfig", "--name", name], QUERY_TIMEOUT)?;
        std::fs::write(path, &out.stdout).map_err(|source| KindError::WriteKubeconfig {
            name: name.to_owned(),
            path: path.to_owned(),
            source,
        })
    }

    fn kind(&self, args: &[&str], timeout: Duration) -> Result<std::process::Output, KindError> {
        process::run(Command::new(&self.kind).args(args), timeout).map_err(|err| match err {
            ProcessError::NotFound { program, .. } => KindError::ToolMissing {
                tool: "kind",
                program,
                install_url: KIND_INSTALL_URL,
            },
            other => KindError::Command(other),
        })
    }
}

/// The file the workload image is saved to, in the run's temporary directory.
pub const IMAGE_ARCHIVE: &str = "workload-image.tar";

/// This machine's platform as Docker names it: `linux/amd64`, `linux/arm64`.
pub fn docker_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

/// The kubectl context kind gives a cluster.
pub fn context_name(cluster: &str) -> String {
    format!("kind-{cluster}")
}

/// A fresh cluster name for one run: `sts-e2e-<5 random>`.
pub fn random_cluster_name() -> String {
    format!("sts-e2e-{}", crate::support::names::random_suffix(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tools_name_the_install_page() {
        let cli = KindCli::new("/nonexistent/kind", "/nonexistent/docker");
        let err = cli.preflight().unwrap_err();
        let message = err.to_string();
        assert!(message.contains(DOCKER_INSTALL_URL), "{message}");
        assert!(message.contains(KIND_INSTALL_URL), "{message}");
        let err = cli.version().unwrap_err();
        assert!(err.to_string().contains(KIND_INSTALL_URL), "{err}");
    }

    #[test]
    fn cluster_names_are_valid_and_distinct() {
        let a = random_cluster_name();
        let b = random_cluster_name();
        assert_ne!(a, b);
        assert!(a.starts_with("sts-e2e-") && a.len() == 13, "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert_eq!(context_name("x"), "kind-x");
    }
}
