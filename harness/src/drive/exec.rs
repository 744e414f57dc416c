//! Runs a command in a pod's container through the API server (`Api::<Pod>::exec`, the
//! WebSocket channel protocol of kube's `ws` feature) and reads its output and exit code;
//! `getent hosts` lookups on top, for resolving names from inside the cluster.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::AttachParams;
use tokio::io::{AsyncRead, AsyncReadExt};

/// How long one command in a pod may take, from opening the stream to its exit status.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// `getent`'s exit code for "the key was not found" (a name that does not resolve).
const GETENT_NOT_FOUND: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("failed to start `{command}` in container {container} of pod {pod}")]
    Start {
        pod: String,
        container: String,
        command: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The API server refused the exec upgrade with 403: RBAC (or an admission plugin) denies
    /// `create` on `pods/exec`. Said plainly because kube's error carries only the status code.
    #[error(
        "forbidden: the API server refused `{command}` in pod {pod} (403 on the exec upgrade): the caller may not create resource \"pods/exec\""
    )]
    Forbidden { pod: String, command: String },
    #[error("failed to read the output of `{command}` in pod {pod}")]
    Read {
        pod: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` in pod {pod} did not finish within {} s", timeout.as_secs_f64())]
    Timeout {
        pod: String,
        command: String,
        timeout: Duration,
    },
    #[error("`{command}` in pod {pod} ended without an exit status")]
    NoStatus { pod: String, command: String },
    #[error("`{command}` could not run in pod {pod}: {message}")]
    NotRun {
        pod: String,
        command: String,
        message: String,
    },
    #[error("`{command}` in pod {pod} exited with code {code}: {stderr}")]
    Exited {
        pod: String,
        command: String,
        code: i32,
        stderr: String,
    },
}

/// What a finished command wrote and its exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Runs `command` in `container` of `pod` and waits, at most `timeout`, for its exit.
pub async fn run(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    command: &[&str],
    timeout: Duration,
) -> Result<ExecOutput, ExecError> {
    let shown = command.join(" ");
    tokio::time::timeout(timeout, run_to_exit(api, pod, container, command, &shown))
        .await
        .unwrap_or_else(|_| {
            Err(ExecError::Timeout {
                pod: pod.to_owned(),
                command: shown.clone(),
                timeout,
            })
        })
}

async fn run_to_exit(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    command: &[&str],
    shown: &str,
) -> Result<ExecOutput, ExecError> {
    let params = AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut process = api
        .exec(pod, command.to_vec(), &params)
        .await
        .map_err(|source| start_error(pod, container, shown, source))?;
    let status = process.take_status();
    let (stdout, stderr) = tokio::join!(read_all(process.stdout()), read_all(process.stderr()));
    let read_error = |source| ExecError::Read {
        pod: pod.to_owned(),
        command: shown.to_owned(),
        source,
    };
    let (stdout, stderr) = (stdout.map_err(read_error)?, stderr.map_err(read_error)?);
    let status = match status {
        Some(status) => status.await,
        None => None,
    };
    let status = status.ok_or_else(|| ExecError::NoStatus {
        pod: pod.to_owned(),
        command: shown.to_owned(),
    })?;
    let code = exit_code(&status).map_err(|message| ExecError::NotRun {
        pod: pod.to_owned(),
        command: shown.to_owned(),
        message,
    })?;
    // The stream is done once the status arrived; its task's own error adds nothing.
    let _ = process.join().await;
    Ok(ExecOutput {
        stdout,
        stderr,
        code,
    })
}

fn start_error(pod: &str, container: &str, command: &str, source: kube::Error) -> ExecError {
    use kube::client::UpgradeConnectionError::ProtocolSwitch;
    match source {
        kube::Error::UpgradeConnection(ProtocolSwitch(http::StatusCode::FORBIDDEN)) => {
            ExecError::Forbidden {
                pod: pod.to_owned(),
                command: command.to_owned(),
            }
        }
        source => ExecError::Start {
            pod: pod.to_owned(),
            container: container.to_owned(),
            command: command.to_owned(),
            source: Box::new(source),
        },
    }
}

async fn read_all(reader: Option<impl AsyncRead + Unpin>) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    if let Some(mut reader) = reader {
        reader.read_to_end(&mut bytes).await?;
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The exit code a remote-command status reports: 0 on `Success`, the `ExitCode` cause of a
/// `NonZeroExitCode` failure; any other failure (no such container, command not found)
/// means the command did not run, and its message is the error.
pub fn exit_code(status: &Status) -> Result<i32, String> {
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let code = (status.reason.as_deref() == Some("NonZeroExitCode"))
        .then(|| status.details.as_ref()?.causes.as_ref())
        .flatten()
        .and_then(|causes| {
            causes
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
        })
        .and_then(|c| c.message.as_deref()?.trim().parse().ok());
    code.ok_or_else(|| {
        status
            .message
            .clone()
            .unwrap_or_else(|| format!("status {:?} without a message", status.status))
    })
}

/// What `getent hosts <name>` answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostLookup {
    /// The name's addresses, in the resolver's order.
    Addresses(Vec<String>),
    /// The name does not resolve (exit code 2).
    NotFound,
}

/// Looks `name` up with `getent hosts` in `container` of `pod`.
pub async fn getent_hosts(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    name: &str,
    timeout: Duration,
) -> Result<HostLookup, ExecError> {
    let command = ["getent", "hosts", name];
    let output = run(api, pod, container, &command, timeout).await?;
    match output.code {
        0 => Ok(HostLookup::Addresses(parse_hosts(&output.stdout))),
        GETENT_NOT_FOUND => Ok(HostLookup::NotFound),
        code => Err(ExecError::Exited {
            pod: pod.to_owned(),
            command: command.join(" "),
            code,
            stderr: output.stderr.trim().to_owned(),
        }),
    }
}

/// The addresses of `getent hosts` output: one line per address, `<ip> <names...>`.
pub fn parse_hosts(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    use super::*;

    #[test]
    fn hosts_output_gives_the_first_field_of_each_line() {
        let out = "10.244.1.5      mysql-1.mysql.ns.svc.cluster.local\n\
                   fd00::5 mysql-1.mysql.ns.svc.cluster.local mysql-1\n\n";
        assert_eq!(parse_hosts(out), ["10.244.1.5", "fd00::5"]);
        assert!(parse_hosts("").is_empty());
    }

    fn failure(reason: &str, cause: Option<&str>, message: &str) -> Status {
        Status {
            status: Some("Failure".into()),
            reason: Some(reason.into()),
            message: Some(message.into()),
            details: cause.map(|code| StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some(code.into()),
                    ..StatusCause::default()
                }]),
                ..StatusDetails::default()
            }),
            ..Status::default()
        }
    }

    #[test]
    fn exit_codes_come_from_the_status() {
        let success = Status {
            status: Some("Success".into()),
            ..Status::default()
        };
        assert_eq!(exit_code(&success), Ok(0));
        let two = failure(
            "NonZeroExitCode",
            Some("2"),
            "command terminated, exit code 2",
        );
        assert_eq!(exit_code(&two), Ok(2));
        let not_run = failure("InternalError", None, "container mysql not found");
        assert_eq!(exit_code(&not_run), Err("container mysql not found".into()));
    }

    fn upgrade_refused(status: http::StatusCode) -> kube::Error {
        kube::Error::UpgradeConnection(kube::client::UpgradeConnectionError::ProtocolSwitch(status))
    }

    #[test]
    fn a_refused_exec_upgrade_names_the_missing_permission() {
        let forbidden = start_error(
            "mysql-0",
            "mysql",
            "getent hosts x",
            upgrade_refused(http::StatusCode::FORBIDDEN),
        );
        assert!(matches!(forbidden, ExecError::Forbidden { .. }));
        assert!(
            forbidden
                .to_string()
                .contains(r#"forbidden: the API server refused `getent hosts x` in pod mysql-0"#)
        );
        assert!(forbidden.to_string().contains(r#"resource "pods/exec""#));
        let other = start_error(
            "mysql-0",
            "mysql",
            "getent hosts x",
            upgrade_refused(http::StatusCode::BAD_GATEWAY),
        );
        assert!(matches!(other, ExecError::Start { .. }));
    }
}
