//! Node and container chaos, one implementation per target: kind (docker on the node
//! containers), kube-sim (its control endpoints) and existing clusters (user-supplied
//! command templates).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use async_trait::async_trait;
use tracing::info;

use crate::support::process::{self, ProcessError};
use crate::support::settings::{
    CONTAINER_CRASH_CMD_ENV, ChaosCommands, NODE_KILL_CMD_ENV, NODE_START_CMD_ENV,
};

/// How long one chaos command (docker stop, a template, an HTTP call) may take.
/// `docker stop` waits up to 10 s for the node's init before killing it.
pub const CHAOS_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("failed to {action}")]
    Command {
        action: String,
        #[source]
        source: ProcessError,
    },
    #[error("failed to {action}: the chaos task failed: {reason}")]
    Task { action: String, reason: String },
    #[error("failed to {action}: {url}")]
    Http {
        action: String,
        url: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("failed to {action}: {url} answered {code}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    HttpStatus {
        action: String,
        url: String,
        code: u16,
        body: String,
    },
    #[error("failed to {action}: {url} is not a URL the harness can post to")]
    InvalidUrl {
        action: String,
        url: String,
        #[source]
        source: http::Error,
    },
    #[error("failed to {action}: {url} did not answer within {timeout:?}")]
    HttpTimeout {
        action: String,
        url: String,
        timeout: Duration,
    },
    #[error("failed to {action}: {reason}")]
    Unsupported { action: String, reason: String },
    #[error("failed to {action}: `{value}` is not a safe name to put in a shell command")]
    UnsafeName { action: String, value: String },
}

/// Node chaos is not available on this target; `reason` says why (print it when skipping).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("node chaos unavailable: {reason}")]
pub struct ChaosUnavailable {
    pub reason: String,
}

#[async_trait]
pub trait NodeChaos: Send + Sync {
    fn describe(&self) -> String;
    /// Graceful stop of the node (kind: `docker stop`).
    async fn stop_node(&self, node: &str) -> Result<(), ChaosError>;
    /// Abrupt stop of the node (kind: `docker kill`).
    async fn kill_node(&self, node: &str) -> Result<(), ChaosError>;
    /// What [`NodeChaos::kill_node`] really does, for the report: how close it comes to a
    /// power cut (what survives it).
    fn kill_fidelity(&self) -> String {
        "the target's own node stop".to_owned()
    }
    async fn start_node(&self, node: &str) -> Result<(), ChaosError>;
    /// Kills one container of a pod; its kubelet restarts it in place. `container_id` is
    /// the pod status value, with or without its `containerd://` scheme.
    async fn crash_container(
        &self,
        namespace: &str,
        pod: &str,
        container_id: &str,
        node: &str,
    ) -> Result<(), ChaosError>;
    /// Why [`NodeChaos::crash_container`] cannot work on this target, when it cannot (the
    /// crash case then skips with this reason instead of failing).
    fn container_crash_unavailable(&self) -> Option<String> {
        None
    }
}

/// `containerd://abc` → `abc`.
pub fn strip_runtime_scheme(container_id: &str) -> &str {
    container_id
        .split_once("://")
        .map_or(container_id, |(_, id)| id)
}

/// Runs a blocking command on the blocking pool, bounded by [`CHAOS_COMMAND_TIMEOUT`].
async fn run_blocking(action: String, mut command: Command) -> Result<(), ChaosError> {
    info!("chaos: {action}");
    let task_action = action.clone();
    tokio::task::spawn_blocking(move || {
        process::run(&mut command, CHAOS_COMMAND_TIMEOUT)
            .map(|_| ())
            .map_err(|source| ChaosError::Command {
                action: task_action,
                source,
            })
    })
    .await
    .map_err(|err| ChaosError::Task {
        action,
        reason: err.to_string(),
    })?
}

// ---------------------------------------------------------------------------------------
// kind

/// kind nodes are docker containers named like the Node.
#[derive(Clone, Debug)]
pub struct KindChaos {
    pub docker: PathBuf,
}

impl KindChaos {
    pub fn new(docker: impl Into<PathBuf>) -> KindChaos {
        KindChaos {
            docker: docker.into(),
        }
    }

    async fn docker(&self, action: String, args: &[&str]) -> Result<(), ChaosError> {
        let mut command = Command::new(&self.docker);
        command.args(args);
        run_blocking(action, command).await
    }
}

#[async_trait]
impl NodeChaos for KindChaos {
    fn describe(&self) -> String {
        "kind: docker stop/kill/start of the node container (a process-level crash, not a power cut), crictl stop for containers".to_owned()
    }

    fn kill_fidelity(&self) -> String {
        "`docker kill` of the node container: a process-level crash (SIGKILL to the node's \
         systemd, kubelet, containerd and mysqld), not a power cut: the host's kernel and page \
         cache survive, so writes mysqld handed to the kernel but never fsynced are not lost \
         as they would be on a machine losing power"
            .to_owned()
    }

    async fn stop_node(&self, node: &str) -> Result<(), ChaosError> {
        self.docker(format!("stop node {node}"), &["stop", node])
            .await
    }

    async fn kill_node(&self, node: &str) -> Result<(), ChaosError> {
        self.docker(format!("kill node {node}"), &["kill", node])
            .await
    }

    async fn start_node(&self, node: &str) -> Result<(), ChaosError> {
        self.docker(format!("start node {node}"), &["start", node])
            .await
    }

    async fn crash_container(
        &self,
        namespace: &str,
        pod: &str,
        container_id: &str,
        node: &str,
    ) -> Result<(), ChaosError> {
        let id = strip_runtime_scheme(container_id);
        self.docker(
            format!("crash container {id} of pod {namespace}/{pod} on node {node}"),
            &["exec", node, "crictl", "stop", "--timeout", "0", id],
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------
// kube-sim

/// kube-sim's control endpoints: `POST /sim/v1/nodes/{node}/stop|start` and
/// `POST /sim/v1/namespaces/{ns}/pods/{pod}/crash`.
#[derive(Clone, Debug)]
pub struct SimChaos {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    /// What serves the endpoints and so really stops a node: kube-sim or kube-upstream.
    pub server: ControlServer,
}

/// The process whose control endpoints [`SimChaos`] calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlServer {
    KubeSim,
    KubeUpstream,
}

impl ControlServer {
    fn name(self) -> &'static str {
        match self {
            ControlServer::KubeSim => "kube-sim",
            ControlServer::KubeUpstream => "kube-upstream",
        }
    }
}

impl SimChaos {
    /// kube-sim's control endpoints.
    pub fn new(base_url: impl Into<String>) -> SimChaos {
        SimChaos::of(ControlServer::KubeSim, base_url)
    }

    /// The control endpoints of `server` at `base_url`.
    pub fn of(server: ControlServer, base_url: impl Into<String>) -> SimChaos {
        SimChaos {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            server,
        }
    }

    /// `POST <base_url><path>` with an empty body through a kube client (hyper, with its
    /// HTTP handling); any 2xx is success.
    async fn post(&self, action: String, path: &str) -> Result<(), ChaosError> {
        let url = format!("{}{path}", self.base_url);
        info!("chaos: {action} (POST {url})");
        let http_error = |source| ChaosError::Http {
            action: action.clone(),
            url: url.clone(),
            source: Box::new(source),
        };
        let invalid = |source: http::Error| ChaosError::InvalidUrl {
            action: action.clone(),
            url: url.clone(),
            source,
        };
        let base = self
            .base_url
            .parse::<http::Uri>()
            .map_err(|e| invalid(e.into()))?;
        let client = kube::Client::try_from(kube::Config::new(base)).map_err(http_error)?;
        let request = http::Request::post(path)
            .body(Vec::new())
            .map_err(invalid)?;
        match tokio::time::timeout(CHAOS_COMMAND_TIMEOUT, client.request_text(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(kube::Error::Api(status))) => Err(ChaosError::HttpStatus {
                action,
                url,
                code: status.code,
                body: status.message.chars().take(500).collect(),
            }),
            Ok(Err(source)) => Err(http_error(source)),
            Err(_) => Err(ChaosError::HttpTimeout {
                action,
                url,
                timeout: CHAOS_COMMAND_TIMEOUT,
            }),
        }
    }
}

#[async_trait]
impl NodeChaos for SimChaos {
    fn describe(&self) -> String {
        format!(
            "{} control endpoints at {}",
            self.server.name(),
            self.base_url
        )
    }

    async fn stop_node(&self, node: &str) -> Result<(), ChaosError> {
        let node = safe_name("stop node", node)?;
        self.post(
            format!("stop node {node}"),
            &format!("/sim/v1/nodes/{node}/stop"),
        )
        .await
    }

    fn kill_fidelity(&self) -> String {
        match self.server {
            ControlServer::KubeSim => "kube-sim stops the node: its pods' mariadbd processes \
                 are killed; a process-level crash on this machine, whose page cache survives"
                .to_owned(),
            ControlServer::KubeUpstream => "kube-upstream kills the real node's init (SIGKILL): \
                 the kernel kills every process of its pid namespace at once (kubelet, \
                 containerd, shims, containers), as `docker kill` does to a kind node; a \
                 process-level crash on this machine, whose page cache survives"
                .to_owned(),
        }
    }

    /// The sim has one way to stop a node: everything on it dies at once.
    async fn kill_node(&self, node: &str) -> Result<(), ChaosError> {
        let node = safe_name("kill node", node)?;
        self.post(
            format!("kill node {node}"),
            &format!("/sim/v1/nodes/{node}/stop"),
        )
        .await
    }

    async fn start_node(&self, node: &str) -> Result<(), ChaosError> {
        let node = safe_name("start node", node)?;
        self.post(
            format!("start node {node}"),
            &format!("/sim/v1/nodes/{node}/start"),
        )
        .await
    }

    async fn crash_container(
        &self,
        namespace: &str,
        pod: &str,
        _container_id: &str,
        _node: &str,
    ) -> Result<(), ChaosError> {
        let action = format!("crash pod {namespace}/{pod}");
        let namespace = safe_name(&action, namespace)?;
        let pod = safe_name(&action, pod)?;
        self.post(
            action.clone(),
            &format!("/sim/v1/namespaces/{namespace}/pods/{pod}/crash"),
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------
// existing clusters

/// Command templates for an existing cluster, run with `sh -c`: `E2E_NODE_KILL_CMD` and
/// `E2E_NODE_START_CMD` with a `{node}` placeholder, and optionally
/// `E2E_CONTAINER_CRASH_CMD` with `{namespace}`, `{pod}`, `{container_id}`, `{node}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandChaos {
    pub kill_node: String,
    pub start_node: String,
    pub crash_container: Option<String>,
}

impl CommandChaos {
    /// Both node templates are required; otherwise node chaos is unavailable.
    pub fn from_settings(commands: &ChaosCommands) -> Result<CommandChaos, ChaosUnavailable> {
        match (&commands.kill_node, &commands.start_node) {
            (Some(kill_node), Some(start_node)) => Ok(CommandChaos {
                kill_node: kill_node.clone(),
                start_node: start_node.clone(),
                crash_container: commands.crash_container.clone(),
            }),
            _ => Err(ChaosUnavailable {
                reason: format!(
                    "this is an existing cluster; set {NODE_KILL_CMD_ENV} and {NODE_START_CMD_ENV} \
                     (shell commands with a {{node}} placeholder) to enable node chaos"
                ),
            }),
        }
    }

    async fn run_template(&self, action: String, command: String) -> Result<(), ChaosError> {
        let mut sh = Command::new("sh");
        sh.arg("-c").arg(command);
        run_blocking(action, sh).await
    }
}

/// Replaces `{key}` placeholders; values must be [`safe_name`]s.
pub fn fill_template(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (key, value)| {
            text.replace(&format!("{{{key}}}"), value)
        })
}

/// Kubernetes names and container ids only: `[A-Za-z0-9._-]`. Anything else would be
/// interpreted by the shell or break a URL path.
pub fn safe_name<'a>(action: &str, value: &'a str) -> Result<&'a str, ChaosError> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(value)
    } else {
        Err(ChaosError::UnsafeName {
            action: action.to_owned(),
            value: value.to_owned(),
        })
    }
}

fn no_crash_command() -> String {
    format!("set {CONTAINER_CRASH_CMD_ENV} to crash containers on an existing cluster")
}

#[async_trait]
impl NodeChaos for CommandChaos {
    fn describe(&self) -> String {
        format!(
            "user commands: {NODE_KILL_CMD_ENV}=`{}`, {NODE_START_CMD_ENV}=`{}`",
            self.kill_node, self.start_node
        )
    }

    fn kill_fidelity(&self) -> String {
        format!(
            "whatever {NODE_KILL_CMD_ENV} does (`{}`): a power cut only if it cuts the power",
            self.kill_node
        )
    }

    /// There is one kill template; a graceful stop uses it too.
    async fn stop_node(&self, node: &str) -> Result<(), ChaosError> {
        self.kill_node(node).await
    }

    async fn kill_node(&self, node: &str) -> Result<(), ChaosError> {
        let action = format!("kill node {node}");
        let node = safe_name(&action, node)?;
        let command = fill_template(&self.kill_node, &[("node", node)]);
        self.run_template(action, command).await
    }

    async fn start_node(&self, node: &str) -> Result<(), ChaosError> {
        let action = format!("start node {node}");
        let node = safe_name(&action, node)?;
        let command = fill_template(&self.start_node, &[("node", node)]);
        self.run_template(action, command).await
    }

    fn container_crash_unavailable(&self) -> Option<String> {
        self.crash_container.is_none().then(no_crash_command)
    }

    async fn crash_container(
        &self,
        namespace: &str,
        pod: &str,
        container_id: &str,
        node: &str,
    ) -> Result<(), ChaosError> {
        let action = format!("crash a container of pod {namespace}/{pod}");
        let Some(template) = &self.crash_container else {
            return Err(ChaosError::Unsupported {
                action,
                reason: no_crash_command(),
            });
        };
        let id = strip_runtime_scheme(container_id);
        let values = [
            ("namespace", safe_name(&action, namespace)?),
            ("pod", safe_name(&action, pod)?),
            ("container_id", safe_name(&action, id)?),
            ("node", safe_name(&action, node)?),
        ];
        let command = fill_template(template, &values);
        self.run_template(action, command).await
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn strips_the_runtime_scheme() {
        assert_eq!(strip_runtime_scheme("containerd://abc123"), "abc123");
        assert_eq!(strip_runtime_scheme("abc123"), "abc123");
    }

    #[test]
    fn templates_need_both_node_commands() {
        let mut commands = ChaosCommands {
            kill_node: Some("virsh destroy {node}".into()),
            ..ChaosCommands::default()
        };
        let err = CommandChaos::from_settings(&commands).unwrap_err();
        assert!(err.reason.contains(NODE_START_CMD_ENV), "{err}");
        commands.start_node = Some("virsh start {node}".into());
        let chaos = CommandChaos::from_settings(&commands).unwrap();
        assert_eq!(chaos.crash_container, None);
        assert_eq!(
            fill_template(&chaos.kill_node, &[("node", "worker-1")]),
            "virsh destroy worker-1"
        );
    }

    #[test]
    fn unsafe_names_are_refused() {
        assert!(safe_name("x", "sim-worker2").is_ok());
        assert!(safe_name("x", "ip-10-0-0-1.ec2.internal").is_ok());
        for bad in ["", "a;rm -rf /", "$(id)", "a b", "a/b"] {
            assert!(
                matches!(safe_name("x", bad), Err(ChaosError::UnsafeName { .. })),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn command_templates_run_with_the_node_filled_in() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let chaos = CommandChaos {
            kill_node: format!("echo kill {{node}} >> {}", log.display()),
            start_node: format!("echo start {{node}} >> {}", log.display()),
            crash_container: Some(format!(
                "echo crash {{namespace}} {{pod}} {{container_id}} {{node}} >> {}",
                log.display()
            )),
        };
        chaos.kill_node("w1").await.unwrap();
        chaos.start_node("w1").await.unwrap();
        chaos
            .crash_container("ns", "mysql-0", "containerd://abc", "w1")
            .await
            .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text, "kill w1\nstart w1\ncrash ns mysql-0 abc w1\n");
        let err = chaos.kill_node("w1; true").await.unwrap_err();
        assert!(matches!(err, ChaosError::UnsafeName { .. }));
    }

    #[tokio::test]
    async fn failing_template_reports_the_command() {
        let chaos = CommandChaos {
            kill_node: "echo nope >&2; exit 7".into(),
            start_node: "true".into(),
            crash_container: None,
        };
        let err = crate::support::errors::chain(&chaos.kill_node("w1").await.unwrap_err());
        assert!(
            err.contains("kill node w1") && err.contains("exit status: 7") && err.contains("nope"),
            "{err}"
        );
        let err = chaos
            .crash_container("ns", "p", "id", "w1")
            .await
            .unwrap_err();
        assert!(err.to_string().contains(CONTAINER_CRASH_CMD_ENV), "{err}");
    }

    #[test]
    fn the_node_kill_note_names_what_really_stops_the_node() {
        let sim = SimChaos::new("http://127.0.0.1:1");
        assert!(sim.kill_fidelity().starts_with("kube-sim stops the node"));
        assert!(sim.describe().starts_with("kube-sim control endpoints"));
        let upstream = SimChaos::of(ControlServer::KubeUpstream, "http://127.0.0.1:1");
        let note = upstream.kill_fidelity();
        assert!(
            note.starts_with("kube-upstream kills the real node's init"),
            "{note}"
        );
        assert!(!note.contains("kube-sim"), "{note}");
        assert!(
            upstream
                .describe()
                .starts_with("kube-upstream control endpoints")
        );
    }

    /// A one-shot HTTP server that records the request line and answers with `status`.
    async fn fake_control_endpoint(
        status: &'static str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let response = if status.starts_with("204") {
                format!("HTTP/1.1 {status}\r\nConnection: close\r\n\r\n")
            } else {
                format!("HTTP/1.1 {status}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope")
            };
            socket.write_all(response.as_bytes()).await.unwrap();
            request.lines().next().unwrap_or_default().to_owned()
        });
        (url, handle)
    }

    #[tokio::test]
    async fn sim_chaos_posts_to_the_control_endpoints() {
        let (url, seen) = fake_control_endpoint("200 OK").await;
        SimChaos::new(&url).stop_node("sim-worker2").await.unwrap();
        assert_eq!(
            seen.await.unwrap(),
            "POST /sim/v1/nodes/sim-worker2/stop HTTP/1.1"
        );

        let (url, seen) = fake_control_endpoint("204 No Content").await;
        SimChaos::new(format!("{url}/"))
            .start_node("sim-worker2")
            .await
            .unwrap();
        assert_eq!(
            seen.await.unwrap(),
            "POST /sim/v1/nodes/sim-worker2/start HTTP/1.1"
        );

        let (url, seen) = fake_control_endpoint("200 OK").await;
        SimChaos::new(&url).kill_node("sim-worker").await.unwrap();
        assert_eq!(
            seen.await.unwrap(),
            "POST /sim/v1/nodes/sim-worker/stop HTTP/1.1"
        );

        let (url, seen) = fake_control_endpoint("200 OK").await;
        SimChaos::new(&url)
            .crash_container("ns1", "mysql-1", "sim://x", "sim-worker")
            .await
            .unwrap();
        assert_eq!(
            seen.await.unwrap(),
            "POST /sim/v1/namespaces/ns1/pods/mysql-1/crash HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn sim_chaos_reports_error_statuses_and_unreachable_endpoints() {
        let (url, _seen) = fake_control_endpoint("404 Not Found").await;
        let err = SimChaos::new(&url).stop_node("nope").await.unwrap_err();
        assert!(
            matches!(&err, ChaosError::HttpStatus { code: 404, body, .. } if body == "nope"),
            "{err}"
        );

        // A port nobody listens on.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = SimChaos::new(&closed)
            .stop_node("sim-worker")
            .await
            .unwrap_err();
        assert!(matches!(err, ChaosError::Http { .. }), "{err}");
        assert!(err.to_string().contains(&closed), "{err}");
    }
}
