//! The key schedule (RFC 9420 §8) and the secret tree (§9).
//!
//! * [`key_schedule`]: from `init_secret`, `commit_secret`, `psk_secret` and the GroupContext
//!   to `joiner_secret`, `welcome_secret`, `epoch_secret` and the epoch-derived secrets (§8),
//!   the external init secret (§8.3), `MLS-Exporter` (§8.5) and the confirmation tag (§6.1).
//! * [`psk`]: `psk_secret` from a list of pre-shared keys (§8.4).
//! * [`transcript`]: the confirmed and interim transcript hashes (§8.2).
//! * [`secret_tree`]: the secret tree rooted at `encryption_secret`, derived lazily, with
//!   per-sender handshake and application ratchets (§9) and the sender data key (§6.3.2).

pub mod key_schedule;
pub mod psk;
pub mod secret_tree;
pub mod transcript;

pub use key_schedule::{
    confirmation_tag, external_init_secret_receiver, external_init_secret_sender,
    external_init_secret_sender_derived, mls_exporter, verify_confirmation_tag, welcome_key_nonce,
    EpochSecrets, KeySchedule, KeyScheduleError, WelcomeKeyNonce,
};
pub use psk::{psk_secret, PskError, ResumptionPskStore};
pub use secret_tree::{
    sender_data_key_nonce, RatchetConfig, RatchetKey, RatchetType, SecretTree, SecretTreeError,
    SecretTreeSnapshot, SenderRatchetSnapshot,
};
pub use transcript::{
    confirmed_transcript_hash, confirmed_transcript_hash_input, interim_transcript_hash,
    TranscriptError, TranscriptHashes,
};
