//! Extensions (RFC 9420 §7.2, §13). An extension of any type decodes and re-encodes unchanged;
//! typed payloads of the RFC's extensions live in `extension_payloads`.

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes};

use super::ExtensionType;

/// `Extension { ExtensionType extension_type; opaque extension_data<V>; }`.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Extension {
    /// The extension's type.
    pub extension_type: ExtensionType,
    /// The encoded extension body.
    pub extension_data: VLBytes,
}

impl Extension {
    /// An extension of `extension_type` carrying `data`.
    pub fn new(extension_type: ExtensionType, data: Vec<u8>) -> Self {
        Self {
            extension_type,
            extension_data: VLBytes::new(data),
        }
    }
}

/// Lookups over an `Extension extensions<V>` list.
pub trait ExtensionList {
    /// The first extension of `extension_type`.
    fn find(&self, extension_type: ExtensionType) -> Option<&Extension>;

    /// Whether some extension type appears more than once (forbidden by §13.4 rules for
    /// LeafNodes, KeyPackages, GroupContext and GroupInfo).
    fn has_duplicate_types(&self) -> bool;
}

impl ExtensionList for [Extension] {
    fn find(&self, extension_type: ExtensionType) -> Option<&Extension> {
        self.iter().find(|e| e.extension_type == extension_type)
    }

    fn has_duplicate_types(&self) -> bool {
        let mut types: Vec<u16> = self.iter().map(|e| e.extension_type.0).collect();
        types.sort_unstable();
        types.windows(2).any(|w| w[0] == w[1])
    }
}
