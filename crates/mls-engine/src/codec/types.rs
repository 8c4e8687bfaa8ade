//! IANA registry values as `uint16` newtypes (RFC 9420 §17). Unknown values decode (they may
//! appear in capability lists, §13.5 GREASE); callers decide what an unknown value means.

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

macro_rules! u16_registry {
    ($(#[$doc:meta])* $name:ident { $($(#[$cdoc:meta])* $konst:ident = $value:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize)]
        pub struct $name(pub u16);

        impl $name {
            $($(#[$cdoc])* pub const $konst: Self = Self($value);)*
        }
    };
}

u16_registry!(
    /// `ProtocolVersion` (§6, §17.1).
    ProtocolVersion {
        /// `mls10`.
        MLS10 = 1,
    }
);

u16_registry!(
    /// `ExtensionType` (§17.3).
    ExtensionType {
        /// `application_id` (LeafNode).
        APPLICATION_ID = 1,
        /// `ratchet_tree` (GroupInfo).
        RATCHET_TREE = 2,
        /// `required_capabilities` (GroupContext).
        REQUIRED_CAPABILITIES = 3,
        /// `external_pub` (GroupInfo).
        EXTERNAL_PUB = 4,
        /// `external_senders` (GroupContext).
        EXTERNAL_SENDERS = 5,
    }
);

impl ExtensionType {
    /// Whether this is one of the RFC 9420 default extension types (1-5), which need not be
    /// listed in a leaf's capabilities (§7.2).
    pub fn is_default(self) -> bool {
        (1..=5).contains(&self.0)
    }
}

u16_registry!(
    /// `ProposalType` (§17.4).
    ProposalType {
        /// `add`.
        ADD = 1,
        /// `update`.
        UPDATE = 2,
        /// `remove`.
        REMOVE = 3,
        /// `psk`.
        PSK = 4,
        /// `reinit`.
        REINIT = 5,
        /// `external_init`.
        EXTERNAL_INIT = 6,
        /// `group_context_extensions`.
        GROUP_CONTEXT_EXTENSIONS = 7,
    }
);

impl ProposalType {
    /// Whether this is one of the RFC 9420 default proposal types (1-7), which need not be
    /// listed in a leaf's capabilities (§7.2).
    pub fn is_default(self) -> bool {
        (1..=7).contains(&self.0)
    }
}

u16_registry!(
    /// `CredentialType` (§17.5).
    CredentialType {
        /// `basic`.
        BASIC = 1,
        /// `x509`.
        X509 = 2,
    }
);
