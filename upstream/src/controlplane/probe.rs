//! Readiness probes: a client for a component's self-signed `/healthz`, a GET that returns
//! the answer as "last seen" text, and a bare HTTP GET for etcd's plain `/health`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ControlPlaneError, Result};

/// A client for a component's self-signed `/healthz` on 127.0.0.1 (anonymous: the path is
/// in the components' `--authorization-always-allow-paths`).
pub(super) fn insecure_client(port: u16) -> Result<kube::Client> {
    let url = format!("https://127.0.0.1:{port}");
    let uri: http::Uri =
        url.parse()
            .map_err(|e: http::uri::InvalidUri| ControlPlaneError::Client {
                what: url.clone(),
                source: kube::Error::Service(Box::new(e)),
            })?;
    let mut config = kube::Config::new(uri);
    config.accept_invalid_certs = true;
    config.connect_timeout = Some(Duration::from_secs(2));
    config.read_timeout = Some(Duration::from_secs(5));
    kube::Client::try_from(config).map_err(|source| ControlPlaneError::Client { what: url, source })
}

/// GET `path`; Ok on 2xx, else the answer (or error) as text for "last seen".
pub(super) async fn get_ok(client: &kube::Client, path: &str) -> Result<(), String> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    match client.request_text(request).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(format!(
            "HTTP {}: {}",
            status.code,
            status
                .message
                .lines()
                .filter(|l| l.contains("failed"))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Err(e) => Err(crate::report(&e)),
    }
}

/// A bare HTTP/1.1 GET (etcd's plain-HTTP `/health` on loopback); returns (status, body).
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let code = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:.80}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((code, body.to_owned()))
}
