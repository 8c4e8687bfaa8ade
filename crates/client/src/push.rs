//! The push WebSocket, kept open in a background task.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use vmls_protocol::{decode, encode, Push, ServiceError};

use crate::client::{Client, ClientError};

/// What the background task last saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not (yet, or no longer) subscribed.
    Connecting,
    /// Subscribed; the counter grows with every wake-up (and every new subscription).
    Live(u64),
    /// The service refused the subscription (bad key, unknown device).
    Refused(ServiceError),
}

/// A live subscription to the device's mailbox wake-ups. Dropping it closes the socket.
#[derive(Debug)]
pub struct PushSubscription {
    state: watch::Receiver<(u64, State)>,
    task: JoinHandle<()>,
}

impl Drop for PushSubscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PushSubscription {
    pub(crate) fn start(client: Client) -> Self {
        let (tx, state) = watch::channel((0, State::Connecting));
        let task = tokio::spawn(run(client, tx));
        Self { state, task }
    }

    /// Waits until the mailbox may have new items: after each (re)subscription (items may
    /// have come while the socket was down) and after each wake-up. Returns the service's
    /// refusal if it refused the subscription.
    pub async fn next(&mut self) -> Result<(), ServiceError> {
        loop {
            let changed = self.state.changed().await;
            let (_, state) = self.state.borrow_and_update().clone();
            match state {
                State::Live(_) => return Ok(()),
                State::Refused(e) => return Err(e),
                State::Connecting if changed.is_err() => {
                    return Err(ServiceError::Unavailable {
                        reason: vmls_protocol::Text::new("push task ended"),
                    })
                }
                State::Connecting => {}
            }
        }
    }

    /// Whether the socket is subscribed right now.
    pub fn is_live(&self) -> bool {
        matches!(self.state.borrow().1, State::Live(_))
    }
}

async fn run(client: Client, tx: watch::Sender<(u64, State)>) {
    let mut failures = 0u32;
    loop {
        let result = session(&client, &tx).await;
        tx.send_modify(|(n, s)| {
            *n += 1;
            if !matches!(s, State::Refused(_)) {
                *s = State::Connecting;
            }
        });
        match result {
            Ok(()) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::debug!(error = %e, failures, "push socket down");
            }
        }
        let backoff = Duration::from_millis(100u64 << failures.min(5));
        tokio::time::sleep(backoff).await;
    }
}

/// One socket: connect, subscribe, forward wake-ups until it closes.
async fn session(client: &Client, tx: &watch::Sender<(u64, State)>) -> Result<(), ClientError> {
    let inner = &client.inner;
    let io = inner.endpoint.connect().await?;
    let scheme = if inner.endpoint.tls.is_some() {
        "wss"
    } else {
        "ws"
    };
    let url = format!("{scheme}://{}/v1/push", inner.endpoint.authority());
    let (mut socket, _) = tokio_tungstenite::client_async(url, io)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let subscribe = inner.signer.sign_subscribe()?;
    let bytes = encode(&subscribe).map_err(|e| ClientError::Http(e.to_string()))?;
    socket
        .send(Message::Binary(bytes.into()))
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    while let Some(frame) = socket.next().await {
        let frame = frame.map_err(|e| ClientError::Http(e.to_string()))?;
        let Message::Binary(bytes) = frame else {
            continue;
        };
        match decode::<Push>(&bytes) {
            Ok(Push::Subscribed {}) | Ok(Push::Mailbox {}) => tx.send_modify(|(n, s)| {
                *n += 1;
                *s = State::Live(*n);
            }),
            Ok(Push::Refused(e)) => {
                tx.send_modify(|(n, s)| {
                    *n += 1;
                    *s = State::Refused(e.clone());
                });
                return Err(ClientError::BadAnswer {
                    status: 101,
                    reason: e.to_string(),
                });
            }
            Err(e) => {
                return Err(ClientError::BadAnswer {
                    status: 101,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(())
}
