//! Safe Additional Authenticated Data (draft-ietf-mls-extensions-08 §4.9, design hook H6).
//!
//! ```text
//! struct { ComponentID component_id; opaque aad_item_data<V>; } SafeAADItem;
//! struct { SafeAADItem aad_items<V>; } SafeAAD;
//! ```
//!
//! When the GroupContext's `app_data_dictionary` has the `safe_aad` component, every
//! message's `authenticated_data` starts with an encoded `SafeAAD` (with an empty `aad_items`
//! if no component has data), followed by any non-safe data. Items are sorted by
//! `component_id`; we read "sorted in increasing numerical order" as strictly increasing (one
//! item per component), like the `AppDataDictionary` rule.

use tls_codec::{
    DeserializeBytes as _, TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use super::app_data::check_sorted_unique;
use super::component::ComponentId;
use crate::codec::{encode, CodecError};

/// Why a `SafeAAD` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafeAadError {
    /// The `authenticated_data` does not start with a well-formed `SafeAAD`.
    #[error("authenticated_data does not start with a SafeAAD: {0}")]
    Codec(#[from] CodecError),
    /// `aad_items` not sorted by `component_id`.
    #[error("aad_items not sorted: {previous:#x} before {next:#x}")]
    NotSorted {
        /// The earlier item's ID.
        previous: ComponentId,
        /// The later item's (smaller) ID.
        next: ComponentId,
    },
    /// Two items for one `component_id`.
    #[error("aad_items has two items for component {0:#x}")]
    DuplicateComponent(ComponentId),
}

/// `SafeAADItem`: one component's additional authenticated data.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct SafeAadItem {
    /// The component.
    pub component_id: ComponentId,
    /// `opaque aad_item_data<V>`.
    pub aad_item_data: VLBytes,
}

impl SafeAadItem {
    /// An item of `component_id` carrying `data`.
    pub fn new(component_id: ComponentId, data: Vec<u8>) -> Self {
        Self {
            component_id,
            aad_item_data: VLBytes::new(data),
        }
    }
}

/// `SafeAAD`: the items, sorted by `component_id`, one per component. Build it with
/// [`SafeAad::new`] (or [`SafeAad::from_pairs`]) and read it with [`SafeAad::split`], which
/// enforce the ordering.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct SafeAad {
    /// `SafeAADItem aad_items<V>`.
    pub aad_items: Vec<SafeAadItem>,
}

impl SafeAad {
    /// A `SafeAAD` of `aad_items`, which must be sorted by `component_id` without repeats.
    pub fn new(aad_items: Vec<SafeAadItem>) -> Result<Self, SafeAadError> {
        let aad = Self { aad_items };
        aad.check()?;
        Ok(aad)
    }

    /// A `SafeAAD` from `(component_id, data)` pairs given in any order (sorted here);
    /// refuses two pairs for one component.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (ComponentId, Vec<u8>)>,
    ) -> Result<Self, SafeAadError> {
        let mut aad_items: Vec<SafeAadItem> = pairs
            .into_iter()
            .map(|(id, data)| SafeAadItem::new(id, data))
            .collect();
        aad_items.sort_by_key(|i| i.component_id);
        Self::new(aad_items)
    }

    /// Checks the ordering rule: `component_id`s strictly increasing.
    pub fn check(&self) -> Result<(), SafeAadError> {
        check_sorted_unique(self.aad_items.iter().map(|i| i.component_id)).map_err(
            |(previous, next)| {
                if previous == next {
                    SafeAadError::DuplicateComponent(next)
                } else {
                    SafeAadError::NotSorted { previous, next }
                }
            },
        )
    }

    /// The data of `component_id`'s item.
    pub fn get(&self, component_id: ComponentId) -> Option<&[u8]> {
        self.aad_items
            .iter()
            .find(|i| i.component_id == component_id)
            .map(|i| i.aad_item_data.as_slice())
    }

    /// The TLS encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SafeAadError> {
        Ok(encode(self)?)
    }

    /// `authenticated_data` = this `SafeAAD` followed by the non-safe `rest` (checked first).
    pub fn prepend_to(&self, rest: &[u8]) -> Result<Vec<u8>, SafeAadError> {
        self.check()?;
        let mut out = self.to_bytes()?;
        out.extend_from_slice(rest);
        Ok(out)
    }

    /// Reads the `SafeAAD` at the start of `authenticated_data`; returns it and the non-safe
    /// data that follows. A malformed or misordered `SafeAAD` is an error.
    pub fn split(authenticated_data: &[u8]) -> Result<(Self, &[u8]), SafeAadError> {
        let (aad, rest) =
            Self::tls_deserialize_bytes(authenticated_data).map_err(CodecError::from)?;
        aad.check()?;
        Ok((aad, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_byte_exact_and_splits() {
        let aad = SafeAad::from_pairs([(0x10, vec![1, 2]), (6, vec![])]).unwrap();
        let expected = [12, 0, 0, 0, 6, 0, 0, 0, 0, 0x10, 2, 1, 2];
        assert_eq!(aad.to_bytes().unwrap(), expected);
        let with_rest = aad.prepend_to(b"xyz").unwrap();
        let (back, rest) = SafeAad::split(&with_rest).unwrap();
        assert_eq!(back, aad);
        assert_eq!(rest, b"xyz");
        assert_eq!(back.get(0x10), Some(&[1, 2][..]));
        assert_eq!(back.get(7), None);
        // The empty SafeAAD is one zero octet.
        assert_eq!(SafeAad::default().to_bytes().unwrap(), [0]);
    }

    #[test]
    fn malformed_and_misordered_are_refused() {
        assert!(matches!(SafeAad::split(&[]), Err(SafeAadError::Codec(_))));
        assert!(matches!(
            SafeAad::split(&[5, 0, 0]),
            Err(SafeAadError::Codec(_))
        ));
        let unsorted = [10, 0, 0, 0, 7, 0, 0, 0, 0, 6, 0];
        assert_eq!(
            SafeAad::split(&unsorted).unwrap_err(),
            SafeAadError::NotSorted {
                previous: 7,
                next: 6
            }
        );
        let dup = [10, 0, 0, 0, 7, 0, 0, 0, 0, 7, 0];
        assert_eq!(
            SafeAad::split(&dup).unwrap_err(),
            SafeAadError::DuplicateComponent(7)
        );
        assert_eq!(
            SafeAad::from_pairs([(1, vec![]), (1, vec![2])]).unwrap_err(),
            SafeAadError::DuplicateComponent(1)
        );
    }
}
