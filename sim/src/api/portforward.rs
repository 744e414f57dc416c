//! `pods/{name}/portforward` over WebSocket, as kube-rs speaks it (`v4.channel.k8s.io`).
//!
//! Port index i uses data channel 2i and error channel 2i+1. The server's first frame on
//! each channel is `[channel, port_lo, port_hi]`; every later frame is `[channel, bytes..]`.
//! Each WebSocket is bridged to one TCP connection per port to the pod's IP.

use std::net::IpAddr;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::ApiState;
use super::error::ApiError;
use crate::store::{ResourceKind, StoreError};

const PROTOCOL: &str = "v4.channel.k8s.io";

/// Why kubectl's port-forward cannot work here: it speaks SPDY (plain, or tunnelled in a
/// WebSocket as `SPDY/3.1+portforward.k8s.io`), which the sim does not implement.
const SPDY_REFUSED: &str = "kube-sim serves port-forward only over WebSocket subprotocol \
    v4.channel.k8s.io (as kube-rs speaks it), not over SPDY, which kubectl port-forward uses; \
    reach pods through the harness's connector or kube-rs' Api::<Pod>::portforward";

pub async fn portforward(
    State(state): State<ApiState>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    check_subprotocol(&headers, &[PROTOCOL])?;
    let ports = parse_ports(query.as_deref().unwrap_or(""))?;
    let pod = stored_pod(&state, &namespace, &name)?;
    let pod_ip = running_pod_ip(&pod)?;
    let target = format!("{namespace}/{name}");
    Ok(upgrade
        .protocols([PROTOCOL])
        .on_upgrade(move |socket| bridge(socket, pod_ip, ports, target)))
}

/// The stored pod `namespace/name`, or the API's NotFound.
pub(super) fn stored_pod(state: &ApiState, namespace: &str, name: &str) -> Result<Value, ApiError> {
    state
        .store
        .get(ResourceKind::Pod, Some(namespace), name)
        .ok_or_else(|| {
            ApiError::Store(StoreError::NotFound {
                kind: ResourceKind::Pod,
                resource: "pods".into(),
                name: name.to_owned(),
            })
        })
}

/// The SPDY upgrade (`POST` with `Upgrade: SPDY/3.1`), refused with the reason.
pub async fn spdy_refused() -> ApiError {
    ApiError::BadRequest(SPDY_REFUSED.into())
}

/// A client that offers subprotocols must offer one of ours (`accepted`): accepting the
/// upgrade without one it asked for would leave it speaking a protocol the sim does not.
pub(super) fn check_subprotocol(headers: &HeaderMap, accepted: &[&str]) -> Result<(), ApiError> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() || offered.iter().any(|p| accepted.contains(p)) {
        return Ok(());
    }
    Err(ApiError::BadRequest(format!(
        "{SPDY_REFUSED} (offered: {})",
        offered.join(", ")
    )))
}

/// `pods/{name}/attach`: a pod here is a bare mariadbd process, with no container to
/// attach to.
pub async fn attach_refused() -> ApiError {
    ApiError::BadRequest(
        "kube-sim runs each pod as a bare mariadbd process: attach is not implemented; \
         reach MySQL through port-forward (kube-rs) instead"
            .into(),
    )
}

/// `ports=3306`, `ports=3306,3307` or repeated `ports=` parameters.
fn parse_ports(query: &str) -> Result<Vec<u16>, ApiError> {
    let ports = super::parse_query(query)
        .iter()
        .filter(|(k, _)| k == "ports")
        .flat_map(|(_, v)| v.split(','))
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ApiError::BadRequest(format!("invalid port {p:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ports.is_empty() || ports.len() > 64 {
        return Err(ApiError::BadRequest(
            "portforward needs between 1 and 64 ports (query parameter `ports`)".into(),
        ));
    }
    Ok(ports)
}

fn running_pod_ip(pod: &Value) -> Result<IpAddr, ApiError> {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Unknown");
    if phase != "Running" {
        return Err(ApiError::BadRequest(format!(
            "unable to forward port because pod is not running. Current status={phase}"
        )));
    }
    pod.pointer("/status/podIP")
        .and_then(Value::as_str)
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| {
            ApiError::BadRequest("unable to forward port because the pod has no IP".into())
        })
}

/// One channel frame of the `v4`/`v5.channel.k8s.io` protocols: `[channel, payload..]`.
pub(super) fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(payload.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(payload);
    Message::Binary(bytes.into())
}

async fn bridge(socket: WebSocket, pod_ip: IpAddr, ports: Vec<u16>, target: String) {
    let (mut ws_tx, mut ws_rx) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            let closing = matches!(message, Message::Close(_));
            if ws_tx.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = ws_tx.close().await;
    });
    let Some((mut to_pod, mut from_pod)) = connect_all(pod_ip, &ports, &target, &out_tx).await
    else {
        let _ = out_tx.send(Message::Close(None)).await;
        drop(out_tx);
        let _ = writer.await;
        return;
    };
    loop {
        tokio::select! {
            message = ws_rx.next() => match message {
                Some(Ok(Message::Binary(bytes))) if bytes.len() > 1 => {
                    let channel = usize::from(bytes[0]);
                    let writer = to_pod.get_mut(channel / 2).filter(|_| channel % 2 == 0);
                    if let Some(w) = writer
                        && w.write_all(&bytes[1..]).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            finished = from_pod.join_next() => {
                // One port's pod side closed; when all have, the WebSocket closes.
                if finished.is_none() || from_pod.is_empty() {
                    break;
                }
            }
        }
    }
    for w in &mut to_pod {
        let _ = w.shutdown().await;
    }
    from_pod.abort_all();
    let _ = out_tx.send(Message::Close(None)).await;
    drop(out_tx);
    let _ = writer.await;
    tracing::debug!(pod = %target, "port-forward closed");
}

/// Sends the init frames and connects every port; None after reporting a connect error.
async fn connect_all(
    pod_ip: IpAddr,
    ports: &[u16],
    target: &str,
    out: &mpsc::Sender<Message>,
) -> Option<(Vec<OwnedWriteHalf>, JoinSet<()>)> {
    let mut writers = Vec::new();
    let mut readers = JoinSet::new();
    for (i, port) in ports.iter().enumerate() {
        let data = u8::try_from(2 * i).ok()?;
        let error = data + 1;
        out.send(frame(data, &port.to_le_bytes())).await.ok()?;
        out.send(frame(error, &port.to_le_bytes())).await.ok()?;
        match TcpStream::connect((pod_ip, *port)).await {
            Ok(stream) => {
                let (r, w) = stream.into_split();
                writers.push(w);
                readers.spawn(pump_from_pod(r, data, out.clone()));
            }
            Err(e) => {
                let text = format!(
                    "error forwarding port {port} to pod {target} ({pod_ip}): failed to connect: {e}"
                );
                tracing::warn!("{text}");
                let _ = out.send(frame(error, text.as_bytes())).await;
                return None;
            }
        }
    }
    Some((writers, readers))
}

async fn pump_from_pod(mut reader: OwnedReadHalf, channel: u8, out: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if out.send(frame(channel, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_parse_from_single_list_and_repeated_params() {
        assert_eq!(parse_ports("ports=3306").expect("one"), [3306]);
        assert_eq!(parse_ports("ports=3306,3307").expect("list"), [3306, 3307]);
        assert_eq!(parse_ports("ports=1&ports=2").expect("repeated"), [1, 2]);
        assert_eq!(parse_ports("").expect_err("none").code(), 400);
        assert_eq!(parse_ports("ports=http").expect_err("name").code(), 400);
    }

    fn offering(protocols: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            protocols.parse().expect("header value"),
        );
        headers
    }

    #[test]
    fn only_our_subprotocol_or_none_is_accepted() {
        assert!(check_subprotocol(&HeaderMap::new(), &[PROTOCOL]).is_ok());
        assert!(check_subprotocol(&offering("v4.channel.k8s.io"), &[PROTOCOL]).is_ok());
        assert!(
            check_subprotocol(
                &offering("portforward.k8s.io, v4.channel.k8s.io"),
                &[PROTOCOL]
            )
            .is_ok()
        );
        let err = check_subprotocol(&offering("SPDY/3.1+portforward.k8s.io"), &[PROTOCOL])
            .expect_err("kubectl's tunnelled SPDY");
        assert_eq!(err.code(), 400);
        assert!(
            err.to_string()
                .contains("not over SPDY, which kubectl port-forward uses"),
            "{err}"
        );
    }

    #[test]
    fn only_running_pods_with_an_ip_forward() {
        let running = json!({"status": {"phase": "Running", "podIP": "127.77.0.2"}});
        assert_eq!(
            running_pod_ip(&running).expect("ip").to_string(),
            "127.77.0.2"
        );
        let pending = json!({"status": {"phase": "Pending"}});
        assert_eq!(running_pod_ip(&pending).expect_err("pending").code(), 400);
    }
}
