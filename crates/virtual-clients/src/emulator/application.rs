//! Application messages of the virtual client in higher-level groups (draft §5.6, DESIGN §5
//! row 11): sent with the FF1 reuse guard of this emulator client; the generation's key is
//! kept (H3) until the delivery service accepted the message, or for at most
//! [`SENT_KEY_MAX_AGE`] seconds (hole 7, docs/decisions.md E-vc23).

use mls_engine::codec::MlsMessage;
use mls_engine::crypto::Secret;
use mls_engine::framing::private::ReuseGuard;
use mls_engine::group::Services;

use super::{EmulatorClient, EmulatorError, SentKeyRecord};
use crate::reuse_guard::ReuseGuardSender;

/// How long (seconds) the key of a generation we sent stays retained at most when the
/// delivery service never confirms the message: long enough for a sibling's message sent in
/// the same race to arrive, short where RFC 9420 §9.2 says to delete at once.
pub const SENT_KEY_MAX_AGE: u64 = 300;

impl EmulatorClient {
    /// An application message in `group_id` as the virtual client, with the FF1 reuse guard
    /// of this emulator client (§5.6, row 11). Call [`EmulatorClient::confirm_sent`] once the
    /// delivery service accepted it.
    ///
    /// The generation's key is retained until [`EmulatorClient::confirm_sent`] or, without
    /// a time here, [`SENT_KEY_MAX_AGE`] after the next [`EmulatorClient::expire_sent_keys`]
    /// (prefer [`EmulatorClient::send_application_at`]).
    pub fn send_application(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
        data: &[u8],
    ) -> Result<MlsMessage, EmulatorError> {
        self.send_application_with_time(services, group_id, data, None)
    }

    /// [`EmulatorClient::send_application`] at time `now`: the generation's key is deleted
    /// at the latest [`SENT_KEY_MAX_AGE`] seconds after `now` (by
    /// [`EmulatorClient::expire_sent_keys`], which this calls first).
    pub fn send_application_at(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
        data: &[u8],
        now: u64,
    ) -> Result<MlsMessage, EmulatorError> {
        self.expire_sent_keys(now);
        self.send_application_with_time(services, group_id, data, Some(now))
    }

    fn send_application_with_time(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
        data: &[u8],
        now: Option<u64>,
    ) -> Result<MlsMessage, EmulatorError> {
        self.check_member()?;
        let emu = self.emulation_suite(services)?;
        let leaf_index = self.emulation.own_leaf_index().0;
        let leaves = self.emulation.ratchet_tree().n_leaves();
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        let sender = ReuseGuardSender::with_random(
            emu,
            &entry.leaf.encryption_key_secret,
            leaf_index,
            leaves,
        )?;
        let guard = |nonce: &Secret| sender.guard_for(nonce);
        // If the guard cannot be computed the engine encrypts nothing; like a send the
        // delivery service refused, the generation is then skipped (its key stays until a
        // sibling's message consumes it, H3).
        let message = entry.group.encrypt_application_with(
            services,
            data,
            &[],
            ReuseGuard::FromNonce(&guard),
        )?;
        if let Some(key) = entry.group.sent_key(services, &message)? {
            self.sent_keys.push(SentKeyRecord {
                group_id: group_id.to_vec(),
                key,
                sent_at: now,
            });
        }
        Ok(message)
    }

    /// The delivery service accepted `message`, an application message we sent in
    /// `group_id`: its generation's key is deleted (H3).
    pub fn confirm_sent(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
        message: &MlsMessage,
    ) -> Result<bool, EmulatorError> {
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        let key = entry.group.sent_key(services, message)?;
        let deleted = entry.group.confirm_sent(services, message)?;
        self.sent_keys
            .retain(|r| !(r.group_id == group_id && Some(r.key) == key));
        Ok(deleted)
    }

    /// Deletes the retained keys of our messages sent [`SENT_KEY_MAX_AGE`] or more seconds
    /// before `now` (hole 7), and forgets those of past epochs or gone groups (their keys went
    /// with the epoch). A record sent without a time is stamped `now`. Called by
    /// [`EmulatorClient::process`] and [`EmulatorClient::send_application_at`]. Returns how
    /// many keys were deleted.
    pub fn expire_sent_keys(&mut self, now: u64) -> usize {
        let mut deleted = 0;
        let groups = &mut self.groups;
        self.sent_keys.retain_mut(|r| {
            let Some(entry) = groups.get_mut(&r.group_id) else {
                return false;
            };
            if r.key.epoch != entry.group.epoch() {
                return false;
            }
            let sent_at = *r.sent_at.get_or_insert(now);
            if now.saturating_sub(sent_at) < SENT_KEY_MAX_AGE {
                return true;
            }
            if entry.group.delete_sent_key(&r.key) {
                deleted += 1;
            }
            false
        });
        deleted
    }
}
