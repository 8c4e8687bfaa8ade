//! Application data attached to MLS objects (draft-ietf-mls-extensions-08 §4.6): the
//! `app_data_dictionary` extension (§9.2.1, type 0x0006), and the `ComponentsList` carried by
//! the `app_components` and `safe_aad` components (§5).
//!
//! ```text
//! struct { ComponentID component_id; opaque data<V>; } ComponentData;
//! struct { ComponentData component_data<V>; } AppDataDictionary;
//! struct { ComponentID component_ids<V>; } ComponentsList;
//! ```
//!
//! "The entries in the `component_data` MUST be sorted by `component_id`, and there MUST be at
//! most one entry for each `component_id`": [`AppDataDictionary::new`] and
//! [`AppDataDictionary::decode`] refuse anything else (strictly increasing IDs). The draft
//! puts no ordering rule on a `ComponentsList`; none is imposed.

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes};

use super::component::{ComponentId, APP_COMPONENTS, SAFE_AAD};
use crate::codec::{decode_exact, encode, CodecError, Extension, ExtensionType};

/// The `app_data_dictionary` extension type (0x0006, the draft's suggested value).
pub const APP_DATA_DICTIONARY: ExtensionType = ExtensionType(0x0006);

/// Why application data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppDataError {
    /// The bytes did not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The extension is not an `app_data_dictionary`.
    #[error("extension type {0:?} is not app_data_dictionary")]
    WrongExtensionType(ExtensionType),
    /// `component_data` is not sorted by `component_id`.
    #[error("component_data not sorted: {previous:#x} before {next:#x}")]
    NotSorted {
        /// The earlier entry's ID.
        previous: ComponentId,
        /// The later entry's (smaller) ID.
        next: ComponentId,
    },
    /// Two entries for one `component_id`.
    #[error("component_data has two entries for component {0:#x}")]
    DuplicateComponent(ComponentId),
}

/// `ComponentData`: one component's data.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ComponentData {
    /// The component.
    pub component_id: ComponentId,
    /// `opaque data<V>`.
    pub data: VLBytes,
}

/// `AppDataDictionary`: at most one entry per component, sorted by `component_id`. Build it
/// with [`AppDataDictionary::new`] / [`AppDataDictionary::insert`] or read it with
/// [`AppDataDictionary::decode`], which enforce the draft's rules.
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
pub struct AppDataDictionary {
    /// `ComponentData component_data<V>`.
    pub component_data: Vec<ComponentData>,
}

/// Checks that `ids` is strictly increasing.
pub(crate) fn check_sorted_unique(
    ids: impl Iterator<Item = ComponentId>,
) -> Result<(), (ComponentId, ComponentId)> {
    let mut previous: Option<ComponentId> = None;
    for id in ids {
        if let Some(p) = previous {
            if id <= p {
                return Err((p, id));
            }
        }
        previous = Some(id);
    }
    Ok(())
}

impl AppDataDictionary {
    /// A dictionary of `entries`, which must be sorted by `component_id` without repeats.
    pub fn new(component_data: Vec<ComponentData>) -> Result<Self, AppDataError> {
        let dictionary = Self { component_data };
        dictionary.check()?;
        Ok(dictionary)
    }

    /// Checks the draft's rules: sorted by `component_id`, at most one entry per component.
    pub fn check(&self) -> Result<(), AppDataError> {
        check_sorted_unique(self.component_data.iter().map(|c| c.component_id)).map_err(
            |(previous, next)| {
                if previous == next {
                    AppDataError::DuplicateComponent(next)
                } else {
                    AppDataError::NotSorted { previous, next }
                }
            },
        )
    }

    /// Decodes exactly one dictionary and checks it.
    pub fn decode(bytes: &[u8]) -> Result<Self, AppDataError> {
        let dictionary: Self = decode_exact(bytes)?;
        dictionary.check()?;
        Ok(dictionary)
    }

    /// The TLS encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, AppDataError> {
        Ok(encode(self)?)
    }

    /// The data of `component_id`.
    pub fn get(&self, component_id: ComponentId) -> Option<&[u8]> {
        self.component_data
            .binary_search_by_key(&component_id, |c| c.component_id)
            .ok()
            .and_then(|i| self.component_data.get(i))
            .map(|c| c.data.as_slice())
    }

    /// Sets the data of `component_id`, keeping the entries sorted.
    pub fn insert(&mut self, component_id: ComponentId, data: Vec<u8>) {
        let entry = ComponentData {
            component_id,
            data: VLBytes::new(data),
        };
        match self
            .component_data
            .binary_search_by_key(&component_id, |c| c.component_id)
        {
            Ok(i) => {
                if let Some(slot) = self.component_data.get_mut(i) {
                    *slot = entry;
                }
            }
            Err(i) => self.component_data.insert(i, entry),
        }
    }

    /// Removes the entry of `component_id`; returns whether there was one.
    pub fn remove(&mut self, component_id: ComponentId) -> bool {
        match self
            .component_data
            .binary_search_by_key(&component_id, |c| c.component_id)
        {
            Ok(i) => {
                self.component_data.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// The dictionary as an `app_data_dictionary` extension.
    pub fn to_extension(&self) -> Result<Extension, AppDataError> {
        Ok(Extension::new(APP_DATA_DICTIONARY, self.to_bytes()?))
    }

    /// Reads an `app_data_dictionary` extension.
    pub fn from_extension(extension: &Extension) -> Result<Self, AppDataError> {
        if extension.extension_type != APP_DATA_DICTIONARY {
            return Err(AppDataError::WrongExtensionType(extension.extension_type));
        }
        Self::decode(extension.extension_data.as_slice())
    }

    /// The `app_data_dictionary` among `extensions`, if there is one.
    pub fn find_in(extensions: &[Extension]) -> Result<Option<Self>, AppDataError> {
        extensions
            .iter()
            .find(|e| e.extension_type == APP_DATA_DICTIONARY)
            .map(Self::from_extension)
            .transpose()
    }

    /// The `safe_aad` component's [`ComponentsList`], if present.
    pub fn safe_aad(&self) -> Option<Result<ComponentsList, AppDataError>> {
        self.get(SAFE_AAD).map(ComponentsList::decode)
    }

    /// The `app_components` component's [`ComponentsList`], if present.
    pub fn app_components(&self) -> Option<Result<AppComponents, AppDataError>> {
        self.get(APP_COMPONENTS).map(ComponentsList::decode)
    }
}

/// `ComponentsList`: the data of the `app_components` and `safe_aad` components. In a
/// LeafNode, the components the client supports; in the GroupContext, those the group
/// requires (§5).
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
pub struct ComponentsList {
    /// `ComponentID component_ids<V>`.
    pub component_ids: Vec<ComponentId>,
}

/// `ComponentsList app_components` (§5): the supported / required components.
pub type AppComponents = ComponentsList;

impl ComponentsList {
    /// A list of `component_ids`.
    pub fn new(component_ids: Vec<ComponentId>) -> Self {
        Self { component_ids }
    }

    /// Decodes exactly one list.
    pub fn decode(bytes: &[u8]) -> Result<Self, AppDataError> {
        Ok(decode_exact(bytes)?)
    }

    /// The TLS encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, AppDataError> {
        Ok(encode(self)?)
    }

    /// Whether `component_id` is listed.
    pub fn contains(&self, component_id: ComponentId) -> bool {
        self.component_ids.contains(&component_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_byte_exact() {
        let mut d = AppDataDictionary::default();
        d.insert(0x0000_0102, vec![0xaa]);
        d.insert(SAFE_AAD, ComponentsList::new(vec![6]).to_bytes().unwrap());
        // component_data<V> = 2 entries: (2, <00000006>) then (0x102, <aa>).
        let expected = [16, 0, 0, 0, 2, 5, 4, 0, 0, 0, 6, 0, 0, 1, 2, 1, 0xaa];
        assert_eq!(d.to_bytes().unwrap(), expected);
        assert_eq!(AppDataDictionary::decode(&expected).unwrap(), d);
        assert_eq!(d.safe_aad().unwrap().unwrap(), ComponentsList::new(vec![6]));
        let ext = d.to_extension().unwrap();
        assert_eq!(ext.extension_type, ExtensionType(6));
        assert_eq!(AppDataDictionary::find_in(&[ext]).unwrap(), Some(d));
    }

    #[test]
    fn order_and_uniqueness_are_enforced() {
        let entry = |id: u32| ComponentData {
            component_id: id,
            data: VLBytes::new(vec![]),
        };
        assert_eq!(
            AppDataDictionary::new(vec![entry(3), entry(2)]).unwrap_err(),
            AppDataError::NotSorted {
                previous: 3,
                next: 2
            }
        );
        assert_eq!(
            AppDataDictionary::new(vec![entry(3), entry(3)]).unwrap_err(),
            AppDataError::DuplicateComponent(3)
        );
        let unsorted = encode(&AppDataDictionary {
            component_data: vec![entry(5), entry(1)],
        })
        .unwrap();
        assert!(matches!(
            AppDataDictionary::decode(&unsorted),
            Err(AppDataError::NotSorted { .. })
        ));
        let mut d = AppDataDictionary::new(vec![entry(1), entry(9)]).unwrap();
        d.insert(5, vec![1]);
        assert_eq!(d.get(5), Some(&[1][..]));
        assert!(d.remove(1));
        assert!(!d.remove(1));
        d.check().unwrap();
    }
}
