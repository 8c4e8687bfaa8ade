//! The parts of draft-ietf-mls-extensions-08 ("the draft") the engine implements, one file per
//! section of the draft's Safe Application Interface (§4):
//!
//! | file | draft section |
//! |---|---|
//! | [`component`] | §4.1 `ComponentID`, `ComponentOperationLabel`, the component registry (§9.8) |
//! | [`safe_crypto`] | §4.2 `SafeEncryptWithLabel` / `SafeDecryptWithLabel`, §4.3 `SafeSignWithLabel` / `SafeVerifyWithLabel` |
//! | [`exporter`] | §4.4 `application_export_secret`, the Exporter Tree and `SafeExportSecret` (design hook H5) |
//! | [`app_data`] | §4.6 `AppDataDictionary` (the `app_data_dictionary` extension), §5 `ComponentsList` (`app_components`, `safe_aad`) |
//! | [`safe_aad`] | §4.9 `SafeAAD` in `authenticated_data` (design hook H6) |
//!
//! The group state machine uses them: [`crate::group::Group::safe_export_secret`], the
//! `safe_aad` of [`crate::group::CommitOptions`] and [`crate::group::Group::process_message`].

pub mod app_data;
pub mod component;
pub mod exporter;
pub mod safe_aad;
pub mod safe_crypto;

pub use app_data::{
    AppComponents, AppDataDictionary, AppDataError, ComponentData, ComponentsList,
    APP_DATA_DICTIONARY,
};
pub use component::{
    ComponentId, ComponentOperationLabel, APP_ACK, APP_COMPONENTS, BASE_LABEL, CONTENT_MEDIA_TYPES,
    LAST_RESORT_KEY_PACKAGE, SAFE_AAD,
};
pub use exporter::{ExporterError, ExporterTree, EXPORTER_TREE_LEAVES};
pub use safe_aad::{SafeAad, SafeAadError, SafeAadItem};
pub use safe_crypto::{
    safe_decrypt_with_label, safe_encrypt_with_label, safe_sign_with_label, safe_verify_with_label,
    SafeCryptoError,
};
