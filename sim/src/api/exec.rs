//! `pods/{name}/exec` over WebSocket, as kube-rs speaks it (`v5.channel.k8s.io` or
//! `v4.channel.k8s.io`): stdout on channel 1, stderr on 2, then the exit status as a
//! `metav1.Status` on channel 3, each frame `[channel, bytes..]`, then close.
//!
//! A pod here is a bare mariadbd process with no container to run a command in, so the sim
//! answers one command itself: `getent hosts <name>`, from its cluster DNS (`super::dns`).
//! Any other command ends with a Failure status saying so.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use super::portforward::{check_subprotocol, frame, stored_pod};
use crate::controllers::obj;

const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;

/// `getent`'s exit code for a key that was not found.
const NOT_FOUND: i32 = 2;

/// What a command run in a pod produced.
#[derive(Debug, PartialEq)]
struct Ran {
    stdout: String,
    stderr: String,
    status: Value,
}

pub async fn exec(
    State(state): State<ApiState>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    check_subprotocol(&headers, &PROTOCOLS)?;
    let params = super::parse_query(query.as_deref().unwrap_or(""));
    let command: Vec<String> = values(&params, "command");
    if command.is_empty() {
        return Err(ApiError::BadRequest(
            "you must specify at least 1 command".into(),
        ));
    }
    let pod = stored_pod(&state, &namespace, &name)?;
    check_container(&pod, values(&params, "container").first())?;
    let ran = run(&state, &command);
    tracing::debug!(pod = %format!("{namespace}/{name}"), ?command, status = %ran.status, "exec");
    Ok(upgrade
        .protocols(PROTOCOLS)
        .on_upgrade(move |socket| answer(socket, ran)))
}

fn values(params: &[(String, String)], key: &str) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The pod must be running and have the container (the only one, when none is named).
fn check_container(pod: &Value, container: Option<&String>) -> Result<(), ApiError> {
    let name = obj::name(pod);
    let phase = obj::pod_phase(pod);
    if phase != "Running" {
        return Err(ApiError::BadRequest(format!(
            "unable to upgrade connection: pod {name} is not running (phase {phase})"
        )));
    }
    let containers: Vec<&str> = obj::array(pod, "/spec/containers")
        .iter()
        .filter_map(|c| obj::str_at(c, "/name"))
        .collect();
    match container {
        Some(c) if containers.contains(&c.as_str()) => Ok(()),
        None if containers.len() == 1 => Ok(()),
        Some(c) => Err(ApiError::BadRequest(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            containers.join(" ")
        ))),
    }
}

/// Runs `command` the only way the sim can: `getent hosts <name>` from its DNS.
fn run(state: &ApiState, command: &[String]) -> Ran {
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    let ["getent", "hosts", name] = words.as_slice() else {
        return Ran {
            stdout: String::new(),
            stderr: String::new(),
            status: failure(&format!(
                "kube-sim runs pods as bare mariadbd processes and answers only \
                 `getent hosts <name>` from its cluster DNS, not `{}`",
                words.join(" ")
            )),
        };
    };
    let addresses = super::dns::resolve(&state.store, &state.faults, name);
    if addresses.is_empty() {
        return Ran {
            stdout: String::new(),
            stderr: String::new(),
            status: exited(NOT_FOUND),
        };
    }
    Ran {
        stdout: addresses
            .iter()
            .map(|a| format!("{a:<15} {name}\n"))
            .collect(),
        stderr: String::new(),
        status: json!({"metadata": {}, "status": "Success"}),
    }
}

/// The status the kubelet reports for a command that exited with `code`.
fn exited(code: i32) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The status of a command that could not run at all.
fn failure(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    })
}

/// Sends the output and the status, then closes; the client's frames (stdin, its close of
/// stdin) are not needed for a command that reads nothing.
async fn answer(mut socket: WebSocket, ran: Ran) {
    let mut frames = Vec::new();
    for (channel, text) in [(STDOUT, &ran.stdout), (STDERR, &ran.stderr)] {
        if !text.is_empty() {
            frames.push(frame(channel, text.as_bytes()));
        }
    }
    frames.push(frame(STATUS, ran.status.to_string().as_bytes()));
    for message in frames {
        if socket.send(message).await.is_err() {
            return;
        }
    }
    // A normal closure: kubectl reads a close without a status code as a broken stream.
    let normal = CloseFrame {
        code: close_code::NORMAL,
        reason: "".into(),
    };
    let _ = socket.send(Message::Close(Some(normal))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str, containers: &[&str]) -> Value {
        let containers: Vec<Value> = containers.iter().map(|c| json!({"name": c})).collect();
        json!({"metadata": {"name": "mysql-0"}, "spec": {"containers": containers},
               "status": {"phase": phase}})
    }

    #[test]
    fn exec_needs_a_running_pod_and_one_of_its_containers() {
        let mysql = String::from("mysql");
        assert!(check_container(&pod("Running", &["mysql"]), Some(&mysql)).is_ok());
        assert!(check_container(&pod("Running", &["mysql"]), None).is_ok());
        let other = String::from("sidecar");
        let err = check_container(&pod("Running", &["mysql"]), Some(&other)).expect_err("name");
        assert_eq!(
            err.to_string(),
            "container sidecar is not valid for pod mysql-0"
        );
        assert_eq!(
            check_container(&pod("Pending", &["mysql"]), None)
                .expect_err("pending")
                .code(),
            400
        );
    }

    #[test]
    fn only_getent_hosts_runs() {
        let state = ApiState::new(crate::store::Store::new());
        let unknown = run(&state, &["getent".into(), "hosts".into(), "x.y".into()]);
        assert_eq!(unknown.status["reason"], "NonZeroExitCode");
        assert_eq!(unknown.status["details"]["causes"][0]["message"], "2");
        assert!(unknown.stdout.is_empty());
        let other = run(&state, &["sh".into(), "-c".into(), "id".into()]);
        assert_eq!(other.status["status"], "Failure");
        assert!(
            other.status["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("not `sh -c id`")),
            "{}",
            other.status
        );
    }
}
