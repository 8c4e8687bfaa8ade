//! `GET /v1/push`: a WebSocket on which the service tells a device that its mailbox may have
//! new items. The device's first frame is a binary [`SignedSubscribe`]; the service answers
//! [`Push::Subscribed`] and then one [`Push::Mailbox`] per wake-up (coalesced). Frames carry no
//! mailbox contents: the device reads them with `read_mailbox`.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response as HttpResponse;
use vmls_protocol::{decode, encode, ClientId, Push, ServiceError, SignedSubscribe, Text};

use super::backend::Backend;
use super::AppState;
use crate::auth::verify_subscribe;

/// Accepts the upgrade; the subscription is checked on the socket.
pub(crate) async fn upgrade<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    ws: WebSocketUpgrade,
) -> HttpResponse {
    ws.max_message_size(4096)
        .on_upgrade(move |socket| serve(state, socket))
}

async fn send(socket: &mut WebSocket, push: &Push) -> bool {
    match encode(push) {
        Ok(bytes) => socket.send(Message::Binary(bytes.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn serve<B: Backend>(state: Arc<AppState<B>>, mut socket: WebSocket) {
    let device = match subscribe(&state, &mut socket).await {
        Ok(device) => device,
        Err(error) => {
            state.metrics.refusal(&error);
            tracing::info!(reason = %crate::metrics::refusal_name(&error), "push subscription refused");
            let _ = send(&mut socket, &Push::Refused(error)).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    // Subscribe before telling the device to read, so no wake-up falls between the two.
    let mut subscription = state.backend.subscribe(&device);
    if !send(&mut socket, &Push::Subscribed {}).await {
        return;
    }
    state.metrics.push_connection(1);
    tracing::debug!(device = %device, "push subscribed");
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            alive = B::changed(&mut subscription) => {
                if !alive || !send(&mut socket, &Push::Mailbox {}).await {
                    break;
                }
                state.metrics.push_wakeup();
            }
            frame = socket.recv() => match frame {
                // Pings are answered by the WebSocket layer; anything else from the device
                // after its subscription is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            () = super::stopped(&mut shutdown) => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
        }
    }
    state.metrics.push_connection(-1);
}

/// Reads and checks the device's [`SignedSubscribe`].
async fn subscribe<B: Backend>(
    state: &AppState<B>,
    socket: &mut WebSocket,
) -> Result<ClientId, ServiceError> {
    let unauthorized = |reason: &str| ServiceError::Unauthorized {
        reason: Text::new(reason),
    };
    let frame = tokio::time::timeout(state.limits.subscribe_timeout, socket.recv())
        .await
        .map_err(|_| ServiceError::QuotaExceeded {
            quota: Text::new("subscribe_timeout_ms"),
            limit: u64::try_from(state.limits.subscribe_timeout.as_millis()).unwrap_or(u64::MAX),
        })?;
    let bytes = match frame {
        Some(Ok(Message::Binary(bytes))) => bytes,
        _ => {
            return Err(unauthorized(
                "the first frame must be a binary SignedSubscribe",
            ))
        }
    };
    let signed: SignedSubscribe = decode(&bytes).map_err(|e| ServiceError::BadRequest {
        reason: Text::new(format!("not a SignedSubscribe: {e}")),
    })?;
    let key = state
        .backend
        .device_key(&signed.content.device)
        .await
        .map_err(|reason| ServiceError::Unavailable {
            reason: Text::new(reason),
        })?;
    verify_subscribe(&signed, key.as_ref()).map_err(|e| e.to_service_error())?;
    state
        .replay
        .check(&signed.content, state.clock.now())
        .map_err(|e| e.to_service_error())?;
    Ok(signed.content.device)
}
