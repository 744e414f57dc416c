//! A local TCP listener that forwards each accepted connection to a pod port through
//! the API server (`Api::<Pod>::portforward`), so MySQL clients reach any pod on any
//! target (kind, a remote cluster, kube-sim).
//!
//! The pod is resolved by name per connection, so the forward keeps working after the
//! pod is deleted and recreated by its StatefulSet.

use std::net::{Ipv4Addr, SocketAddr};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

#[derive(Debug, thiserror::Error)]
pub enum PortForwardError {
    #[error("failed to bind a local listener for port-forward to pod {pod} port {port}")]
    Bind {
        pod: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to open port-forward to pod {pod} port {port}")]
    Open {
        pod: String,
        port: u16,
        #[source]
        source: kube::Error,
    },
    #[error(
        "failed to open port-forward to pod {pod} port {port}: the API server returned no stream"
    )]
    NoStream { pod: String, port: u16 },
    #[error("failed to forward a connection to pod {pod} port {port}")]
    Copy {
        pod: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// A running forward from `127.0.0.1:<ephemeral>` to `pod:port`. Stops on drop.
pub struct PortForward {
    local_addr: SocketAddr,
    pod: String,
    port: u16,
    accept_task: JoinHandle<()>,
}

impl PortForward {
    /// Binds `127.0.0.1:0` and starts accepting. Each connection opens its own
    /// API-server port-forward stream, so connections are independent.
    pub async fn start(
        api: Api<Pod>,
        pod: &str,
        port: u16,
    ) -> Result<PortForward, PortForwardError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|source| PortForwardError::Bind {
                pod: pod.to_owned(),
                port,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| PortForwardError::Bind {
                pod: pod.to_owned(),
                port,
                source,
            })?;
        debug!(%local_addr, pod, port, "port-forward listening");
        let target = Target {
            api,
            pod: pod.to_owned(),
            port,
        };
        let accept_task = tokio::spawn(accept_loop(listener, target));
        Ok(PortForward {
            local_addr,
            pod: pod.to_owned(),
            port,
            accept_task,
        })
    }

    /// The local address to connect to (always on 127.0.0.1).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn pod(&self) -> &str {
        &self.pod
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortForward {
    // Aborting the accept loop drops its JoinSet, which aborts every open connection.
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl std::fmt::Debug for PortForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PortForward({} -> pod {}:{})",
            self.local_addr, self.pod, self.port
        )
    }
}

#[derive(Clone)]
struct Target {
    api: Api<Pod>,
    pod: String,
    port: u16,
}

async fn accept_loop(listener: TcpListener, target: Target) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    debug!(%peer, pod = %target.pod, "port-forward connection accepted");
                    connections.spawn(serve_connection(socket, target.clone()));
                }
                Err(err) => warn!(pod = %target.pod, "port-forward accept failed: {err}"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(socket: TcpStream, target: Target) {
    if let Err(err) = forward(socket, &target).await {
        // The client sees its connection closed; the workload's retry decides what next and
        // reports the last failure itself, so one refused attempt is no warning.
        debug!("{}", crate::support::errors::chain(&err));
    }
}

async fn forward(mut socket: TcpStream, target: &Target) -> Result<(), PortForwardError> {
    let mut forwarder = target
        .api
        .portforward(&target.pod, &[target.port])
        .await
        .map_err(|source| PortForwardError::Open {
            pod: target.pod.clone(),
            port: target.port,
            source,
        })?;
    let mut upstream =
        forwarder
            .take_stream(target.port)
            .ok_or_else(|| PortForwardError::NoStream {
                pod: target.pod.clone(),
                port: target.port,
            })?;
    let result = bridge(&mut socket, &mut upstream).await;
    drop(upstream);
    // The forwarder's own error (e.g. the pod went away) matters less than the copy's.
    if let Err(err) = forwarder.join().await {
        debug!(pod = %target.pod, "port-forward stream ended: {err}");
    }
    result
        .map(|(to_pod, from_pod)| debug!(pod = %target.pod, to_pod, from_pod, "port-forward connection closed"))
        .map_err(|source| PortForwardError::Copy {
            pod: target.pod.clone(),
            port: target.port,
            source,
        })
}

/// Copies both ways until either side closes; a reset after one side finished is normal.
async fn bridge<A, B>(a: &mut A, b: &mut B) -> std::io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::io::copy_bidirectional(a, b).await {
        Err(err) if is_benign_close(&err) => Ok((0, 0)),
        other => other,
    }
}

fn is_benign_close(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(err.kind(), ConnectionReset | BrokenPipe | UnexpectedEof)
}
