//! Application messages of the virtual client in higher-level groups (draft §5.6, DESIGN §5
//! row 11): sent with the FF1 reuse guard of this emulator client; the generation's key is
//! kept (H3) until the delivery service accepted the message.

use mls_engine::codec::MlsMessage;
use mls_engine::crypto::Secret;
use mls_engine::framing::private::ReuseGuard;
use mls_engine::group::Services;

use super::{EmulatorClient, EmulatorError};
use crate::reuse_guard::ReuseGuardSender;

impl EmulatorClient {
    /// An application message in `group_id` as the virtual client, with the FF1 reuse guard
    /// of this emulator client (§5.6, row 11). Call [`EmulatorClient::confirm_sent`] once the
    /// delivery service accepted it.
    pub fn send_application(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
        data: &[u8],
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
        Ok(entry.group.encrypt_application_with(
            services,
            data,
            &[],
            ReuseGuard::FromNonce(&guard),
        )?)
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
        Ok(entry.group.confirm_sent(services, message)?)
    }
}
