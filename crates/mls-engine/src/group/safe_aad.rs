//! SafeAAD in the group's messages (draft-ietf-mls-extensions-08 §4.9, design hook H6).
//!
//! Whether `authenticated_data` starts with a `SafeAAD` is decided by the GroupContext of the
//! message's epoch: it does exactly when that GroupContext has an `app_data_dictionary`
//! extension whose `component_data` has an entry for the `safe_aad` component (ID 2), whatever
//! that entry's list says. Then:
//!
//! * every message the group creates (application, proposal, commit, also external proposals
//!   and external commits built from that GroupContext) gets `SafeAAD || authenticated_data`,
//!   with the caller's items or an empty `aad_items`;
//! * every message it processes must start with a well-formed `SafeAAD` with sorted,
//!   distinct component IDs, else `GroupError::SafeAad` and the state is unchanged (the check
//!   runs on the wire message before anything is decrypted or stored);
//! * [`Group::process_message`] returns the parsed `SafeAAD` and the non-safe rest.
//!
//! Without the `safe_aad` component, `authenticated_data` is the caller's bytes as they are,
//! received `SafeAAD` is `None`, and asking to send SafeAAD items is
//! `GroupError::SafeAadNotInUse` (receivers would not read them as SafeAAD).

use super::config::{ProcessedMessage, Services};
use super::error::GroupError;
use super::state::Group;
use crate::codec::{GroupContext, MlsMessage, MlsMessageBody, Proposal, ProposalRef};
use crate::extensions::{AppDataDictionary, SafeAad, SAFE_AAD};
use crate::framing::ReuseGuard;

/// A processed message with its `authenticated_data` read (design hook H6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// What processing did (as [`Group::process`] returns it).
    pub processed: ProcessedMessage,
    /// The message's whole `authenticated_data`.
    pub authenticated_data: Vec<u8>,
    /// The `SafeAAD` at its start, when the group uses SafeAAD (`None` otherwise).
    pub safe_aad: Option<SafeAad>,
    /// The non-safe data after the `SafeAAD` (the whole `authenticated_data` when the group
    /// does not use SafeAAD).
    pub application_aad: Vec<u8>,
}

/// Whether messages of the epoch of `context` carry a `SafeAAD` (§4.9: the `safe_aad`
/// component is in the GroupContext's `app_data_dictionary`).
pub fn safe_aad_in_use(context: &GroupContext) -> Result<bool, GroupError> {
    Ok(AppDataDictionary::find_in(&context.extensions)?.is_some_and(|d| d.get(SAFE_AAD).is_some()))
}

/// The `authenticated_data` of a message we create in the epoch of `context`: `safe_aad` (or
/// an empty one) followed by `rest` when the group uses SafeAAD; `rest` otherwise.
pub(crate) fn outgoing_authenticated_data(
    context: &GroupContext,
    safe_aad: Option<&SafeAad>,
    rest: &[u8],
) -> Result<Vec<u8>, GroupError> {
    if safe_aad_in_use(context)? {
        let empty = SafeAad::default();
        Ok(safe_aad.unwrap_or(&empty).prepend_to(rest)?)
    } else if safe_aad.is_some() {
        Err(GroupError::SafeAadNotInUse)
    } else {
        Ok(rest.to_vec())
    }
}

/// Reads the `SafeAAD` of received `authenticated_data` in the epoch of `context`.
pub(crate) fn incoming_safe_aad(
    context: &GroupContext,
    authenticated_data: &[u8],
) -> Result<(Option<SafeAad>, Vec<u8>), GroupError> {
    if safe_aad_in_use(context)? {
        let (aad, rest) = SafeAad::split(authenticated_data)?;
        Ok((Some(aad), rest.to_vec()))
    } else {
        Ok((None, authenticated_data.to_vec()))
    }
}

impl Group {
    /// Whether this epoch's messages carry a `SafeAAD` (draft-ietf-mls-extensions-08 §4.9).
    pub fn uses_safe_aad(&self) -> bool {
        safe_aad_in_use(&self.state.context).unwrap_or(false)
    }

    /// [`Group::process`], also returning the message's `authenticated_data`, its `SafeAAD`
    /// and the non-safe rest (design hook H6). When the group uses SafeAAD, a message whose
    /// `authenticated_data` does not start with a well-formed, sorted `SafeAAD` is refused
    /// with `GroupError::SafeAad` and the state is unchanged ([`Group::process`] refuses it
    /// the same way).
    pub fn process_message(
        &mut self,
        services: &Services<'_>,
        message: &MlsMessage,
        now: u64,
    ) -> Result<ReceivedMessage, GroupError> {
        let (epoch, authenticated_data) = match &message.body {
            MlsMessageBody::PublicMessage(m) => {
                (m.content.epoch, m.content.authenticated_data.as_slice())
            }
            MlsMessageBody::PrivateMessage(m) => (m.epoch, m.authenticated_data.as_slice()),
            _ => return Err(GroupError::UnexpectedWireFormat(message.wire_format())),
        };
        let context = self
            .state
            .past_epochs
            .iter()
            .find(|p| p.context.epoch == epoch && epoch != self.state.context.epoch)
            .map_or(&self.state.context, |p| &p.context);
        let (safe_aad, application_aad) = incoming_safe_aad(context, authenticated_data)?;
        let authenticated_data = authenticated_data.to_vec();
        let processed = self.process_unchecked_aad(services, message, now)?;
        Ok(ReceivedMessage {
            processed,
            authenticated_data,
            safe_aad,
            application_aad,
        })
    }

    /// [`Group::encrypt_application_with`] with SafeAAD items (design hook H6):
    /// `authenticated_data` of the message = `safe_aad || authenticated_data`. Refused with
    /// `GroupError::SafeAadNotInUse` when the group does not use SafeAAD.
    pub fn encrypt_application_with_safe_aad(
        &mut self,
        services: &Services<'_>,
        data: &[u8],
        safe_aad: &SafeAad,
        authenticated_data: &[u8],
        reuse_guard: ReuseGuard<'_>,
    ) -> Result<MlsMessage, GroupError> {
        self.encrypt_application_inner(
            services,
            data,
            Some(safe_aad),
            authenticated_data,
            reuse_guard,
        )
    }

    /// [`Group::propose`] with SafeAAD items (design hook H6).
    pub fn propose_with_safe_aad(
        &mut self,
        services: &Services<'_>,
        proposal: Proposal,
        safe_aad: &SafeAad,
        authenticated_data: &[u8],
    ) -> Result<(MlsMessage, ProposalRef), GroupError> {
        self.propose_inner(services, proposal, Some(safe_aad), authenticated_data)
    }
}
