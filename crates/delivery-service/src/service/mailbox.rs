//! A device's mailbox: read after a cursor, acknowledge up to one (at-least-once delivery:
//! items stay until acknowledged). Only the authenticated device itself reads its mailbox.

use vmls_protocol::{Ack, ClientId, MailboxItem, ReadMailbox};

use super::mls::bad_request;
use super::registry;
use super::Failure;
use crate::store::Tx;

/// `read_mailbox`.
pub(crate) async fn read<T: Tx>(
    tx: &mut T,
    device: &ClientId,
    r: ReadMailbox,
    max: u32,
) -> Result<Vec<MailboxItem>, Failure> {
    registry::require_device(tx, device).await?;
    let limit = match r.max_items {
        0 => max,
        n => n.min(max),
    };
    Ok(tx
        .read_mailbox(device, r.after, limit)
        .await?
        .into_iter()
        .map(|e| e.into_item())
        .collect())
}

/// `ack`: deletes the items up to `up_to`, which the mailbox must have handed out.
pub(crate) async fn ack<T: Tx>(tx: &mut T, device: &ClientId, r: Ack) -> Result<(), Failure> {
    registry::require_device(tx, device).await?;
    let next = tx.next_cursor(device).await?;
    if r.up_to >= next {
        return Err(bad_request(format!(
            "acknowledged {}, but the mailbox has handed out only up to {next}",
            r.up_to
        ))
        .into());
    }
    tx.ack(device, r.up_to).await?;
    Ok(())
}
