//! Component IDs and the `ComponentOperationLabel` (draft-ietf-mls-extensions-08 §4.1), and the
//! initial contents of the "MLS Component Types" registry (§9.8).
//!
//! ```text
//! uint32 ComponentID;
//!
//! struct {
//!   opaque base_label<V>; /* = "Application" */
//!   ComponentID component_id;
//!   opaque label<V>;
//! } ComponentOperationLabel;
//! ```

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes};

use crate::codec::{encode, CodecError};

/// `uint32 ComponentID`: identifies an application component (§4.1).
pub type ComponentId = u32;

/// The fixed `base_label` of every [`ComponentOperationLabel`].
pub const BASE_LABEL: &[u8] = b"Application";

/// `app_components` (0x0000_0001): supported (LeafNode) / required (GroupContext) components.
pub const APP_COMPONENTS: ComponentId = 0x0000_0001;
/// `safe_aad` (0x0000_0002): supported / required Safe AAD components (§4.9, §5).
pub const SAFE_AAD: ComponentId = 0x0000_0002;
/// `content_media_types` (0x0000_0003).
pub const CONTENT_MEDIA_TYPES: ComponentId = 0x0000_0003;
/// `last_resort_key_package` (0x0000_0004).
pub const LAST_RESORT_KEY_PACKAGE: ComponentId = 0x0000_0004;
/// `app_ack` (0x0000_0005).
pub const APP_ACK: ComponentId = 0x0000_0005;

/// The label of a component's operation (§4.1): the `Label` argument the Safe operations
/// (§4.2, §4.3) hand to the RFC 9420 labelled operations.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ComponentOperationLabel {
    /// `opaque base_label<V>`, always [`BASE_LABEL`] ("Application").
    pub base_label: VLBytes,
    /// The component performing the operation.
    pub component_id: ComponentId,
    /// `opaque label<V>`: the operation.
    pub label: VLBytes,
}

impl ComponentOperationLabel {
    /// The label of operation `label` of component `component_id`.
    pub fn new(component_id: ComponentId, label: &[u8]) -> Self {
        Self {
            base_label: VLBytes::new(BASE_LABEL.to_vec()),
            component_id,
            label: VLBytes::new(label.to_vec()),
        }
    }

    /// The TLS encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        encode(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_exact;

    #[test]
    fn layout_is_byte_exact() {
        let label = ComponentOperationLabel::new(0x0102_0304, b"op");
        let mut expected = vec![11];
        expected.extend_from_slice(b"Application");
        expected.extend_from_slice(&[1, 2, 3, 4, 2, b'o', b'p']);
        assert_eq!(label.to_bytes().unwrap(), expected);
        assert_eq!(
            decode_exact::<ComponentOperationLabel>(&expected).unwrap(),
            label
        );
    }
}
