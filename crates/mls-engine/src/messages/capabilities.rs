//! Capabilities (RFC 9420 §7.2) and the group's requirements on them (§11.1 required
//! capabilities, §13.4 GroupContext extensions).
//!
//! * [`default_capabilities`] and [`complete_capabilities`] build the `capabilities` of a leaf
//!   this client creates: `mls10`, the group's suite, the credential's type, and every
//!   non-default extension type the leaf (or its KeyPackage) carries; default proposal and
//!   extension types are never listed (§7.2 "MUST NOT be listed").
//! * [`GroupRequirements`] is what a group asks of every member's capabilities: the
//!   `required_capabilities` GroupContext extension (§11.1), if any, and the extension types in
//!   use by the group (§13.4). Checking a leaf against it is part of LeafNode validation
//!   (`super::leaf_node`).

use crate::codec::{
    Capabilities, CipherSuite, CredentialType, Extension, ExtensionList, ExtensionPayload as _,
    ExtensionPayloadError, ExtensionType, ProposalType, ProtocolVersion,
    RequiredCapabilitiesExtension,
};

/// The capabilities of a new leaf before completion: version `mls10`, `cipher_suite`, the
/// `basic` credential type, no non-default extension or proposal types.
pub fn default_capabilities(cipher_suite: CipherSuite) -> Capabilities {
    Capabilities {
        versions: vec![ProtocolVersion::MLS10],
        cipher_suites: vec![cipher_suite],
        extensions: Vec::new(),
        proposals: Vec::new(),
        credentials: vec![CredentialType::BASIC],
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, value: T) {
    if !list.contains(&value) {
        list.push(value);
    }
}

fn dedup_in_order<T: PartialEq + Copy>(list: &mut Vec<T>) {
    let mut out: Vec<T> = Vec::with_capacity(list.len());
    for value in list.iter().copied() {
        push_unique(&mut out, value);
    }
    *list = out;
}

/// Completes `base` into the capabilities of a leaf this client creates (§7.2):
///
/// * adds `mls10` and `cipher_suite` if missing (a member must support the group's version
///   and suite);
/// * adds `credential_type` (the leaf's own credential type "MUST be included");
/// * adds every non-default type of `carried_extensions` (the leaf's extensions, and for a
///   KeyPackage also its extensions: "MUST be included", §7.2, §10);
/// * removes default extension and proposal types ("MUST NOT be listed", §7.2) and
///   duplicates, keeping the order of first appearance.
pub fn complete_capabilities(
    mut base: Capabilities,
    cipher_suite: CipherSuite,
    credential_type: CredentialType,
    carried_extensions: impl IntoIterator<Item = ExtensionType>,
) -> Capabilities {
    push_unique(&mut base.versions, ProtocolVersion::MLS10);
    push_unique(&mut base.cipher_suites, cipher_suite);
    push_unique(&mut base.credentials, credential_type);
    for extension_type in carried_extensions {
        push_unique(&mut base.extensions, extension_type);
    }
    base.extensions.retain(|t| !t.is_default());
    base.proposals.retain(|t| !t.is_default());
    dedup_in_order(&mut base.versions);
    dedup_in_order(&mut base.cipher_suites);
    dedup_in_order(&mut base.extensions);
    dedup_in_order(&mut base.proposals);
    dedup_in_order(&mut base.credentials);
    base
}

/// Whether `capabilities` supports `extension_type`: default types are supported by every
/// client (§7.2), others must be listed.
pub fn supports_extension(capabilities: &Capabilities, extension_type: ExtensionType) -> bool {
    extension_type.is_default() || capabilities.extensions.contains(&extension_type)
}

/// Whether `capabilities` supports `proposal_type`: default types are supported by every
/// client (§7.2), others must be listed.
pub fn supports_proposal(capabilities: &Capabilities, proposal_type: ProposalType) -> bool {
    proposal_type.is_default() || capabilities.proposals.contains(&proposal_type)
}

/// The first thing a member's capabilities lack of a group's [`GroupRequirements`], in the
/// order [`GroupRequirements::first_unsupported`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// An extension type of `required_capabilities` (§11.1).
    RequiredExtension(ExtensionType),
    /// A proposal type of `required_capabilities` (§11.1).
    RequiredProposal(ProposalType),
    /// A credential type of `required_capabilities` (§11.1).
    RequiredCredential(CredentialType),
    /// An extension type present in the GroupContext (§13.4).
    ExtensionInUse(ExtensionType),
}

/// Why a group's extensions could not be read as requirements on members.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupRequirementsError {
    /// The `required_capabilities` extension body does not decode (§11.1).
    #[error("malformed required_capabilities extension: {0}")]
    MalformedRequiredCapabilities(ExtensionPayloadError),
    /// An extension type appears twice in the GroupContext extensions (§13.4).
    #[error("duplicate GroupContext extension type 0x{:04x}", .0 .0)]
    DuplicateExtension(ExtensionType),
    /// draft-ietf-mls-extensions-08 §4.6: the `app_data_dictionary` GroupContext extension
    /// does not decode, or its entries are unsorted or repeat a component.
    #[error("malformed app_data_dictionary extension: {0}")]
    MalformedAppDataDictionary(crate::extensions::AppDataError),
}

/// What a group requires of every member's capabilities: its `required_capabilities`
/// (§11.1) and the extension types in use by the group (§13.4: "The `capabilities` field MUST
/// indicate support for each extension in the GroupContext").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRequirements {
    required_extension_types: Vec<ExtensionType>,
    required_proposal_types: Vec<ProposalType>,
    required_credential_types: Vec<CredentialType>,
    extension_types_in_use: Vec<ExtensionType>,
}

impl GroupRequirements {
    /// The first requirement `capabilities` does not meet: required extension, proposal and
    /// credential types, then the extension types in use; `None` if it meets them all. The
    /// one check behind both a new LeafNode's validation (§7.3) and a proposal list's
    /// (§12.2).
    pub fn first_unsupported(&self, capabilities: &Capabilities) -> Option<Unsupported> {
        let extension = |t: &&ExtensionType| !supports_extension(capabilities, **t);
        if let Some(t) = self.required_extension_types.iter().find(extension) {
            return Some(Unsupported::RequiredExtension(*t));
        }
        if let Some(t) = self
            .required_proposal_types
            .iter()
            .find(|t| !supports_proposal(capabilities, **t))
        {
            return Some(Unsupported::RequiredProposal(*t));
        }
        if let Some(t) = self
            .required_credential_types
            .iter()
            .find(|t| !capabilities.credentials.contains(t))
        {
            return Some(Unsupported::RequiredCredential(*t));
        }
        self.extension_types_in_use
            .iter()
            .find(extension)
            .map(|t| Unsupported::ExtensionInUse(*t))
    }

    /// No requirements (a group without GroupContext extensions).
    pub const fn none() -> Self {
        Self {
            required_extension_types: Vec::new(),
            required_proposal_types: Vec::new(),
            required_credential_types: Vec::new(),
            extension_types_in_use: Vec::new(),
        }
    }

    /// The requirements of a group whose GroupContext has `extensions` (or of the GroupContext
    /// a GroupContextExtensions proposal would install): every extension type present, and the
    /// decoded `required_capabilities` extension if there is one.
    pub fn from_group_context_extensions(
        extensions: &[Extension],
    ) -> Result<Self, GroupRequirementsError> {
        if let Some(duplicate) = first_duplicate(extensions) {
            return Err(GroupRequirementsError::DuplicateExtension(duplicate));
        }
        let required = RequiredCapabilitiesExtension::find_in(extensions)
            .map_err(GroupRequirementsError::MalformedRequiredCapabilities)?
            .unwrap_or_default();
        crate::extensions::AppDataDictionary::find_in(extensions)
            .map_err(GroupRequirementsError::MalformedAppDataDictionary)?;
        Ok(Self {
            required_extension_types: required.extension_types,
            required_proposal_types: required.proposal_types,
            required_credential_types: required.credential_types,
            extension_types_in_use: extensions.iter().map(|e| e.extension_type).collect(),
        })
    }

    /// Adds extension types the group will use beyond its GroupContext (for example those a
    /// pending GroupContextExtensions proposal introduces).
    pub fn with_extension_types_in_use(
        mut self,
        extension_types: impl IntoIterator<Item = ExtensionType>,
    ) -> Self {
        for extension_type in extension_types {
            push_unique(&mut self.extension_types_in_use, extension_type);
        }
        self
    }

    /// Extension types listed in `required_capabilities`.
    pub fn required_extension_types(&self) -> &[ExtensionType] {
        &self.required_extension_types
    }

    /// Proposal types listed in `required_capabilities`.
    pub fn required_proposal_types(&self) -> &[ProposalType] {
        &self.required_proposal_types
    }

    /// Credential types listed in `required_capabilities`.
    pub fn required_credential_types(&self) -> &[CredentialType] {
        &self.required_credential_types
    }

    /// Extension types in use by the group.
    pub fn extension_types_in_use(&self) -> &[ExtensionType] {
        &self.extension_types_in_use
    }
}

/// The first extension type that appears more than once in `extensions` (§13.4: "Any field
/// containing a list of extensions MUST NOT have more than one extension of any given type").
pub fn first_duplicate(extensions: &[Extension]) -> Option<ExtensionType> {
    if !extensions.has_duplicate_types() {
        return None;
    }
    extensions.iter().enumerate().find_map(|(i, e)| {
        extensions
            .get(..i)
            .filter(|earlier| earlier.iter().any(|x| x.extension_type == e.extension_type))
            .map(|_| e.extension_type)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode;

    #[test]
    fn completion_adds_what_the_leaf_needs_and_drops_defaults() {
        let base = Capabilities {
            versions: vec![],
            cipher_suites: vec![CipherSuite(2)],
            extensions: vec![ExtensionType(0xff00), ExtensionType::APPLICATION_ID],
            proposals: vec![
                ProposalType::ADD,
                ProposalType(0xff01),
                ProposalType(0xff01),
            ],
            credentials: vec![],
        };
        let caps = complete_capabilities(
            base,
            CipherSuite(1),
            CredentialType::X509,
            [
                ExtensionType(0xff02),
                ExtensionType::RATCHET_TREE,
                ExtensionType(0xff00),
            ],
        );
        assert_eq!(caps.versions, vec![ProtocolVersion::MLS10]);
        assert_eq!(caps.cipher_suites, vec![CipherSuite(2), CipherSuite(1)]);
        assert_eq!(
            caps.extensions,
            vec![ExtensionType(0xff00), ExtensionType(0xff02)]
        );
        assert_eq!(caps.proposals, vec![ProposalType(0xff01)]);
        assert_eq!(caps.credentials, vec![CredentialType::X509]);
    }

    #[test]
    fn defaults_are_supported_without_listing() {
        let caps = default_capabilities(CipherSuite(1));
        assert!(supports_extension(&caps, ExtensionType::EXTERNAL_SENDERS));
        assert!(!supports_extension(&caps, ExtensionType(6)));
        assert!(supports_proposal(
            &caps,
            ProposalType::GROUP_CONTEXT_EXTENSIONS
        ));
        assert!(!supports_proposal(&caps, ProposalType(8)));
    }

    #[test]
    fn requirements_decode_from_group_context_extensions() {
        let body = RequiredCapabilitiesExtension {
            extension_types: vec![ExtensionType(0xff00)],
            proposal_types: vec![ProposalType(0xff01)],
            credential_types: vec![CredentialType::BASIC],
        };
        let extensions = vec![
            Extension::new(ExtensionType::REQUIRED_CAPABILITIES, encode(&body).unwrap()),
            Extension::new(ExtensionType(0xff00), vec![]),
        ];
        let req = GroupRequirements::from_group_context_extensions(&extensions)
            .unwrap()
            .with_extension_types_in_use([ExtensionType(0xff03)]);
        assert_eq!(req.required_extension_types(), &[ExtensionType(0xff00)]);
        assert_eq!(req.required_proposal_types(), &[ProposalType(0xff01)]);
        assert_eq!(req.required_credential_types(), &[CredentialType::BASIC]);
        assert_eq!(
            req.extension_types_in_use(),
            &[
                ExtensionType::REQUIRED_CAPABILITIES,
                ExtensionType(0xff00),
                ExtensionType(0xff03)
            ]
        );
    }

    #[test]
    fn malformed_or_duplicated_group_extensions_are_refused() {
        let bad = vec![Extension::new(
            ExtensionType::REQUIRED_CAPABILITIES,
            vec![1],
        )];
        assert!(matches!(
            GroupRequirements::from_group_context_extensions(&bad),
            Err(GroupRequirementsError::MalformedRequiredCapabilities(_))
        ));
        let dup = vec![
            Extension::new(ExtensionType(9), vec![]),
            Extension::new(ExtensionType(10), vec![]),
            Extension::new(ExtensionType(9), vec![1]),
        ];
        assert_eq!(
            GroupRequirements::from_group_context_extensions(&dup),
            Err(GroupRequirementsError::DuplicateExtension(ExtensionType(9)))
        );
        assert_eq!(first_duplicate(&dup[..2]), None);
    }
}
