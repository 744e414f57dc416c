//! Watch streams: one JSON `{"type": .., "object": ..}` per line, resumable from any
//! remembered resourceVersion, with periodic BOOKMARKs and the `sendInitialEvents` protocol.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::error::ApiError;
use super::selector::Selectors;
use super::table::{IncludeObject, table};
use crate::store::{EventType, ResourceKind, Store, StoreEvent};

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(2);
/// Server-side cap on a watch when the client gives no `timeoutSeconds`.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// A watch request's parameters.
#[derive(Clone, Debug)]
pub struct WatchRequest {
    pub kind: ResourceKind,
    pub namespace: Option<String>,
    pub resource_version: Option<String>,
    pub allow_bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
    pub selectors: Selectors,
    /// Some when the client asked for Table rows (kubectl get -w).
    pub table: Option<IncludeObject>,
}

enum Start {
    /// Send the current state as ADDED, then follow.
    Snapshot,
    /// Replay remembered events after this resource version, then follow.
    After(u64),
}

impl WatchRequest {
    fn start(&self) -> Result<Start, ApiError> {
        match self.resource_version.as_deref() {
            _ if self.send_initial_events => Ok(Start::Snapshot),
            None | Some("") | Some("0") => Ok(Start::Snapshot),
            Some(rv) => rv
                .parse()
                .map(Start::After)
                .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}"))),
        }
    }
}

/// Starts streaming; errors in the parameters are answered before the stream starts.
pub fn respond(store: Arc<Store>, request: WatchRequest) -> Result<Response, ApiError> {
    let start = request.start()?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    tokio::spawn(async move {
        let mut watch = Watch {
            store,
            request,
            tx,
            known: HashSet::new(),
            last_rv: 0,
        };
        if let Err(WatchEnded) = watch.run(start).await {
            tracing::trace!("watch ended");
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .map_err(|e| ApiError::Internal(format!("failed to build watch response: {e}")))
}

/// The client went away or the watch timed out.
struct WatchEnded;

struct Watch {
    store: Arc<Store>,
    request: WatchRequest,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    /// Objects (namespace, name) the client currently sees as matching the selectors.
    known: HashSet<(String, String)>,
    /// Every event up to here was considered: safe to announce in a bookmark.
    last_rv: u64,
}

impl Watch {
    async fn run(&mut self, start: Start) -> Result<(), WatchEnded> {
        let timeout = self.request.timeout.unwrap_or(DEFAULT_WATCH_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;
        let Some(mut rx) = self.begin(start).await? else {
            return Ok(());
        };
        let mut bookmarks = tokio::time::interval(BOOKMARK_INTERVAL);
        bookmarks.tick().await;
        loop {
            tokio::select! {
                received = rx.recv() => match received {
                    Ok(event) => self.consider(event).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        rx = self.catch_up().await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = bookmarks.tick(), if self.request.allow_bookmarks => {
                    self.bookmark(false).await?;
                }
                _ = tokio::time::sleep_until(deadline) => return Ok(()),
                _ = self.tx.closed() => return Err(WatchEnded),
            }
        }
    }

    /// Sends the initial events; None when the watch ended with an ERROR event (410).
    async fn begin(
        &mut self,
        start: Start,
    ) -> Result<Option<broadcast::Receiver<StoreEvent>>, WatchEnded> {
        let ns = self.request.namespace.clone();
        match start {
            Start::Snapshot => {
                let (items, rv, rx) = self
                    .store
                    .snapshot_and_subscribe(self.request.kind, ns.as_deref());
                self.last_rv = rv;
                let selectors = self.request.selectors.clone();
                for obj in items.into_iter().filter(|o| selectors.matches(o)) {
                    self.known.insert(identity(&obj));
                    self.send("ADDED", &obj).await?;
                }
                if self.request.send_initial_events {
                    self.bookmark(true).await?;
                }
                Ok(Some(rx))
            }
            Start::After(rv) => {
                let subscribed = self
                    .store
                    .subscribe_since(self.request.kind, ns.as_deref(), rv);
                match subscribed {
                    Ok((past, current, rx)) => {
                        self.seed_known(&past);
                        self.last_rv = rv;
                        for event in past {
                            self.consider(event).await?;
                        }
                        self.last_rv = self.last_rv.max(current);
                        Ok(Some(rx))
                    }
                    // A resourceVersion older than the history ring: 410 Expired in-stream.
                    Err(e) => {
                        let status = ApiError::from(e).status();
                        self.send_line(&json!({"type": "ERROR", "object": status}))
                            .await?;
                        Ok(None)
                    }
                }
            }
        }
    }

    /// For a resumed watch with selectors: what the client may already see.
    fn seed_known(&mut self, past: &[StoreEvent]) {
        if self.request.selectors.is_empty() {
            return;
        }
        let ns = self.request.namespace.as_deref();
        let current = self.store.list(self.request.kind, ns);
        let matching = current
            .iter()
            .chain(past.iter().map(|e| &e.object))
            .filter(|o| self.request.selectors.matches(o));
        self.known.extend(matching.map(identity));
    }

    /// After the live channel overflowed: replay what was missed from the history ring.
    async fn catch_up(&mut self) -> Result<broadcast::Receiver<StoreEvent>, WatchEnded> {
        let ns = self.request.namespace.clone();
        match self
            .store
            .subscribe_since(self.request.kind, ns.as_deref(), self.last_rv)
        {
            Ok((past, current, rx)) => {
                for event in past {
                    self.consider(event).await?;
                }
                self.last_rv = self.last_rv.max(current);
                Ok(rx)
            }
            Err(e) => {
                let status = ApiError::from(e).status();
                self.send_line(&json!({"type": "ERROR", "object": status}))
                    .await?;
                Err(WatchEnded)
            }
        }
    }

    /// Translates one store event into what this watch's client must see, if anything.
    async fn consider(&mut self, event: StoreEvent) -> Result<(), WatchEnded> {
        if event.resource_version <= self.last_rv && self.last_rv != 0 {
            return Ok(());
        }
        self.last_rv = self.last_rv.max(event.resource_version);
        if event.kind != self.request.kind {
            return Ok(());
        }
        if let Some(ns) = &self.request.namespace
            && event.namespace() != Some(ns.as_str())
        {
            return Ok(());
        }
        let id = identity(&event.object);
        let matches = self.request.selectors.matches(&event.object);
        let was_known = self.known.contains(&id);
        let event_type = match (event.event_type, matches, was_known) {
            (EventType::Deleted, _, true) | (EventType::Deleted, true, false) => {
                self.known.remove(&id);
                "DELETED"
            }
            (EventType::Deleted, false, false) => return Ok(()),
            (_, true, true) => "MODIFIED",
            (_, true, false) => {
                self.known.insert(id);
                if event.event_type == EventType::Added || !self.request.selectors.is_empty() {
                    "ADDED"
                } else {
                    "MODIFIED"
                }
            }
            (_, false, true) => {
                self.known.remove(&id);
                "DELETED"
            }
            (_, false, false) => return Ok(()),
        };
        self.send(event_type, &event.object).await
    }

    async fn bookmark(&mut self, initial_events_end: bool) -> Result<(), WatchEnded> {
        let mut object = json!({
            "kind": self.request.kind.kind(),
            "apiVersion": self.request.kind.api_version(),
            "metadata": {"resourceVersion": self.last_rv.to_string()},
        });
        if initial_events_end {
            object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        self.send_line(&json!({"type": "BOOKMARK", "object": object}))
            .await
    }

    async fn send(&mut self, event_type: &str, obj: &Value) -> Result<(), WatchEnded> {
        let object = match self.request.table {
            Some(include) => {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .and_then(|rv| rv.parse().ok())
                    .unwrap_or(self.last_rv);
                table(self.request.kind, std::slice::from_ref(obj), rv, include)
            }
            None => obj.clone(),
        };
        self.send_line(&json!({"type": event_type, "object": object}))
            .await
    }

    async fn send_line(&mut self, line: &Value) -> Result<(), WatchEnded> {
        let mut bytes = serde_json::to_vec(line).unwrap_or_default();
        bytes.push(b'\n');
        self.tx
            .send(Ok(Bytes::from(bytes)))
            .await
            .map_err(|_| WatchEnded)
    }
}

fn identity(obj: &Value) -> (String, String) {
    let field = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (field("/metadata/namespace"), field("/metadata/name"))
}
