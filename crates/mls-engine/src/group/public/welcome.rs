//! The public data of a Welcome (§12.4.3.1): whom it is for. A delivery service matches these
//! against the Adds of the Commit the Welcome belongs to.

use std::collections::BTreeSet;

use super::{PublicGroupError, StagedPublicCommit};
use crate::codec::{KeyPackageRef, Welcome};

/// The `new_member` of each of the Welcome's `EncryptedGroupSecrets`, in order: the
/// KeyPackageRefs of the KeyPackages it is encrypted to.
pub fn welcome_new_members(welcome: &Welcome) -> Vec<KeyPackageRef> {
    welcome
        .secrets
        .iter()
        .map(|s| s.new_member.clone())
        .collect()
}

impl StagedPublicCommit {
    /// Checks that `welcome` is for exactly the members this Commit adds: the group's cipher
    /// suite, one `EncryptedGroupSecrets` per Add's KeyPackageRef and no other (each once).
    pub fn check_welcome(&self, welcome: &Welcome) -> Result<(), PublicGroupError> {
        if welcome.cipher_suite != self.context.cipher_suite {
            return Err(PublicGroupError::WelcomeMismatch);
        }
        let theirs = welcome_new_members(welcome);
        let ours = self.welcome_recipients();
        let unique: BTreeSet<&[u8]> = theirs.iter().map(|r| r.as_slice()).collect();
        let expected: BTreeSet<&[u8]> = ours.iter().map(|r| r.as_slice()).collect();
        if unique.len() != theirs.len() || unique != expected {
            return Err(PublicGroupError::WelcomeMismatch);
        }
        Ok(())
    }
}

/// [`welcome_new_members`] of an encoded `MLSMessage` carrying a Welcome (strictly decoded:
/// no trailing bytes).
pub fn welcome_new_members_from_bytes(
    bytes: &[u8],
) -> Result<Vec<KeyPackageRef>, PublicGroupError> {
    let message = crate::codec::MlsMessage::decode(bytes)?;
    match &message.body {
        crate::codec::MlsMessageBody::Welcome(welcome) => Ok(welcome_new_members(welcome)),
        _ => Err(PublicGroupError::UnexpectedWireFormat(
            message.wire_format(),
        )),
    }
}
