//! §5.6 application messages: the reuse guard of subgroups-00 §4 (DESIGN §5 row 11).
//!
//! Every emulator client of a virtual client encrypts application messages with the same
//! leaf of a higher-level group, so two of them may use the same generation, hence the same
//! key and nonce. The draft (§5.6) defers to draft-mcmillion-mls-subgroups-00 §4: the
//! four-octet `reuse_guard` that MLS XORs into the nonce (RFC 9420 §6.3.1) is chosen so that
//! two emulators never pick the same one:
//!
//! ```text
//! x           = random uint32 with x mod N = leaf_index
//! prp_key     = ExpandWithLabel(key_schedule_nonce, "reuse guard", leaf_secret, 16)
//! reuse_guard = SmallSpacePRP.Encrypt(prp_key, x)
//! ```
//!
//! * `N` is the number of leaves of the emulation group and `leaf_index` the sending
//!   emulator's leaf index there. Distinct emulators have distinct `x mod N`, so distinct `x`,
//!   so (the PRP being a permutation under one key) distinct `reuse_guard`s, so distinct
//!   AEAD nonces for the one key of a generation.
//! * `key_schedule_nonce` is the nonce of the generation (before the guard is applied), and
//!   `leaf_secret` the `encryption_key_secret` of the virtual client's current leaf in that
//!   higher-level group: only the emulators can compute `prp_key`, and it is fresh for every
//!   (key, nonce) pair.
//! * `SmallSpacePRP` is FF1 (NIST SP 800-38G) with AES-128, radix 2, 32 numerals (the bits of
//!   `x`, most significant first) and an empty tweak; the output numerals, most significant
//!   first, are `reuse_guard` as a big-endian `uint32`.
//! * `ExpandWithLabel` uses the emulation group's cipher suite (subgroups-00: "the subgroup
//!   ciphersuite's algorithms").
//!
//! A receiving sibling decrypts the guard with the same `prp_key`; `x mod N` names the
//! emulator that sent the message ([`emulator_leaf_index`]).
//!
//! Sending through `mls-engine`: the engine's `ReuseGuard::FromNonce` calls an infallible
//! closure with the generation's nonce. [`ReuseGuardSender`] checks every parameter and draws
//! `x` up front, computes the guard inside the closure and keeps the outcome; the caller then
//! calls [`ReuseGuardSender::finish`] and discards the message if it returns an error.

use core::cell::Cell;

use aes::Aes128;
use fpe::ff1::{FlexibleNumeralString, InvalidRadix, NumeralStringError, FF1};
use mls_engine::crypto::{CryptoError, Secret, SuiteProvider};
use mls_engine::framing::private::REUSE_GUARD_LEN;
use mls_engine::hook::HookError;
use tls_codec::{Serialize as _, TlsSerialize, TlsSize, VLBytes};
use zeroize::Zeroize;

/// The `ExpandWithLabel` label of `prp_key` (subgroups-00 §4).
pub const REUSE_GUARD_LABEL: &str = "reuse guard";

/// The length of `prp_key` in octets: an AES-128 key.
pub const PRP_KEY_LEN: usize = 16;

/// The radix of the FF1 numeral strings: binary.
pub const FF1_RADIX: u32 = 2;

/// The number of FF1 numerals: the 32 bits of `x`.
pub const FF1_NUMERALS: usize = 32;

/// The FF1 tweak: empty.
pub const FF1_TWEAK: &[u8] = &[];

/// The octets of randomness [`choose_x`] consumes.
pub const X_RANDOMNESS_LEN: usize = 8;

/// `"MLS 1.0 "`, the prefix of every MLS label (RFC 9420 §8).
const MLS_LABEL_PREFIX: &[u8] = b"MLS 1.0 ";

/// Why a reuse guard could not be computed or inverted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReuseGuardError {
    /// The emulation group has no leaves (`N = 0`).
    #[error("the emulation group has no leaves (N = 0)")]
    NoLeaves,
    /// The emulator's leaf index is not below the emulation group's number of leaves.
    #[error("leaf index {leaf_index} is not below the emulation group's {leaves} leaves")]
    LeafIndexOutOfRange {
        /// The emulator's leaf index.
        leaf_index: u32,
        /// `N`, the emulation group's number of leaves.
        leaves: u32,
    },
    /// `prp_key` could not be derived (`ExpandWithLabel` failed) or randomness was unavailable.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// The `KDFLabel` of `prp_key` could not be encoded.
    #[error("KDFLabel encoding failed")]
    KdfLabelEncoding,
    /// `prp_key` does not have [`PRP_KEY_LEN`] octets.
    #[error("prp_key has {0} octets, AES-128 needs 16")]
    PrpKeyLength(usize),
    /// FF1 rejected the radix.
    #[error("FF1: {0}")]
    Ff1Radix(InvalidRadix),
    /// FF1 rejected the numeral string.
    #[error("FF1: {0}")]
    Ff1(NumeralStringError),
    /// FF1 returned something other than 32 binary numerals.
    #[error("FF1 returned a numeral string that is not 32 bits")]
    Ff1Output,
    /// [`ReuseGuardSender::finish`] was called but no guard was computed (the engine never
    /// called the closure).
    #[error("no reuse guard was computed")]
    NotComputed,
}

impl ReuseGuardError {
    /// The reuse-guard error inside an engine error `HookError` of `ReuseGuard::FromNonce`,
    /// if it is one.
    pub fn from_hook(hook: &HookError) -> Option<Self> {
        hook.downcast_ref::<Self>().cloned()
    }
}

/// `KDFLabel` of RFC 9420 §8, the `info` of `ExpandWithLabel`.
#[derive(TlsSerialize, TlsSize)]
struct KdfLabel {
    length: u16,
    label: VLBytes,
    context: VLBytes,
}

/// Checks `leaf_index < leaves` (and so `leaves > 0`).
fn check_leaf_index(leaf_index: u32, leaves: u32) -> Result<(), ReuseGuardError> {
    if leaves == 0 {
        return Err(ReuseGuardError::NoLeaves);
    }
    if leaf_index >= leaves {
        return Err(ReuseGuardError::LeafIndexOutOfRange { leaf_index, leaves });
    }
    Ok(())
}

/// A uniformly random `x` with `x mod leaves = leaf_index` among the 32-bit integers,
/// drawn from `randomness` (subgroups-00 §4).
///
/// The candidates are `leaf_index + k * leaves` for `k` in `0..count`, with
/// `count = (2^32 - 1 - leaf_index) / leaves + 1 <= 2^32`; `k` is the big-endian value of
/// `randomness` modulo `count` (bias below `2^-32`).
pub fn choose_x(
    leaf_index: u32,
    leaves: u32,
    randomness: [u8; X_RANDOMNESS_LEN],
) -> Result<u32, ReuseGuardError> {
    check_leaf_index(leaf_index, leaves)?;
    let (index, n) = (u64::from(leaf_index), u64::from(leaves));
    let count = (u64::from(u32::MAX) - index) / n + 1;
    let k = u64::from_be_bytes(randomness) % count;
    // k <= (2^32 - 1 - index) / n, so index + k * n <= 2^32 - 1: the cast is lossless.
    Ok((index + k * n) as u32)
}

/// `KDF.Expand(secret, info, length)` as HKDF-Expand (RFC 5869 §2.3) over the suite's HMAC:
/// `T(i) = HMAC(secret, T(i-1) || info || i)`. Unlike the engine's `kdf_expand` it accepts a
/// `secret` shorter than `KDF.Nh`, which `key_schedule_nonce` (`AEAD.Nn` octets) is.
fn hkdf_expand(
    suite: &dyn SuiteProvider,
    secret: &[u8],
    info: &[u8],
    length: usize,
) -> Result<Secret, ReuseGuardError> {
    let hash_len = suite.params().hash_len();
    if hash_len == 0 || length > 255 * hash_len {
        return Err(CryptoError::KdfOutputTooLong.into());
    }
    let mut okm = Vec::with_capacity(length + hash_len);
    let mut block: Vec<u8> = Vec::new();
    let mut counter = 1u8;
    while okm.len() < length {
        let mut input = Vec::with_capacity(block.len() + info.len() + 1);
        input.extend_from_slice(&block);
        input.extend_from_slice(info);
        input.push(counter);
        block.zeroize();
        block = suite.mac(secret, &input);
        input.zeroize();
        okm.extend_from_slice(&block);
        counter = counter.wrapping_add(1);
    }
    block.zeroize();
    okm.truncate(length);
    Ok(Secret::new(okm))
}

/// `prp_key = ExpandWithLabel(key_schedule_nonce, "reuse guard", leaf_secret, 16)` with the
/// suite's KDF (subgroups-00 §4).
pub fn prp_key(
    suite: &dyn SuiteProvider,
    key_schedule_nonce: &Secret,
    leaf_secret: &Secret,
) -> Result<Secret, ReuseGuardError> {
    let mut label = MLS_LABEL_PREFIX.to_vec();
    label.extend_from_slice(REUSE_GUARD_LABEL.as_bytes());
    let mut kdf_label = KdfLabel {
        length: PRP_KEY_LEN as u16,
        label: label.into(),
        context: leaf_secret.as_bytes().to_vec().into(),
    };
    let info = kdf_label.tls_serialize_detached();
    kdf_label.context.zeroize();
    let mut info = info.map_err(|_| ReuseGuardError::KdfLabelEncoding)?;
    let key = hkdf_expand(suite, key_schedule_nonce.as_bytes(), &info, PRP_KEY_LEN);
    info.zeroize();
    key
}

/// FF1 with AES-128 under `prp_key`, radix 2.
fn ff1(prp_key: &Secret) -> Result<FF1<Aes128>, ReuseGuardError> {
    if prp_key.len() != PRP_KEY_LEN {
        return Err(ReuseGuardError::PrpKeyLength(prp_key.len()));
    }
    FF1::<Aes128>::new(prp_key.as_bytes(), FF1_RADIX).map_err(ReuseGuardError::Ff1Radix)
}

/// The 32 bits of `value`, most significant first, as FF1 numerals.
fn to_numerals(value: u32) -> FlexibleNumeralString {
    (0..FF1_NUMERALS)
        .rev()
        .map(|i| ((value >> i) & 1) as u16)
        .collect::<Vec<u16>>()
        .into()
}

/// The 32-bit value of FF1 numerals, most significant first.
fn from_numerals(numerals: FlexibleNumeralString) -> Result<u32, ReuseGuardError> {
    let mut bits: Vec<u16> = numerals.into();
    let value = if bits.len() == FF1_NUMERALS && bits.iter().all(|b| *b < 2) {
        Ok(bits.iter().fold(0u32, |acc, b| (acc << 1) | u32::from(*b)))
    } else {
        Err(ReuseGuardError::Ff1Output)
    };
    bits.zeroize();
    value
}

/// `SmallSpacePRP.Encrypt(prp_key, input)` of subgroups-00 §4: FF1 (AES-128, radix 2, the 32
/// bits of `input` most significant first, empty tweak).
pub fn small_space_prp_encrypt(prp_key: &Secret, input: u32) -> Result<u32, ReuseGuardError> {
    let cipher = ff1(prp_key)?;
    let output = cipher
        .encrypt(FF1_TWEAK, &to_numerals(input))
        .map_err(ReuseGuardError::Ff1)?;
    from_numerals(output)
}

/// `SmallSpacePRP.Decrypt(prp_key, output)`, the inverse of [`small_space_prp_encrypt`].
pub fn small_space_prp_decrypt(prp_key: &Secret, output: u32) -> Result<u32, ReuseGuardError> {
    let cipher = ff1(prp_key)?;
    let input = cipher
        .decrypt(FF1_TWEAK, &to_numerals(output))
        .map_err(ReuseGuardError::Ff1)?;
    from_numerals(input)
}

/// `SmallSpacePRP.Encrypt(prp_key, x)` as the four `reuse_guard` octets (big-endian).
fn guard_of_x(
    suite: &dyn SuiteProvider,
    key_schedule_nonce: &Secret,
    leaf_secret: &Secret,
    x: u32,
) -> Result<[u8; REUSE_GUARD_LEN], ReuseGuardError> {
    let key = prp_key(suite, key_schedule_nonce, leaf_secret)?;
    Ok(small_space_prp_encrypt(&key, x)?.to_be_bytes())
}

/// The `reuse_guard` of the emulator at `leaf_index` among the emulation group's `leaves`
/// leaves, for the generation whose nonce is `key_schedule_nonce`, with `leaf_secret` the
/// `encryption_key_secret` of the virtual client's current leaf in the higher-level group:
/// `x = choose_x(leaf_index, leaves, randomness)`, then `SmallSpacePRP.Encrypt(prp_key, x)`.
pub fn reuse_guard(
    suite: &dyn SuiteProvider,
    key_schedule_nonce: &Secret,
    leaf_secret: &Secret,
    leaf_index: u32,
    leaves: u32,
    randomness: [u8; X_RANDOMNESS_LEN],
) -> Result<[u8; REUSE_GUARD_LEN], ReuseGuardError> {
    let x = choose_x(leaf_index, leaves, randomness)?;
    guard_of_x(suite, key_schedule_nonce, leaf_secret, x)
}

/// The leaf index, in the emulation group of `leaves` leaves, of the emulator that sent a
/// message with `reuse_guard` at the generation whose nonce is `key_schedule_nonce`:
/// `SmallSpacePRP.Decrypt(prp_key, reuse_guard) mod N`.
///
/// Every four octets decrypt to some `x`: a guard not made by a sibling yields an arbitrary
/// index below `leaves`, not an error.
pub fn emulator_leaf_index(
    suite: &dyn SuiteProvider,
    reuse_guard: [u8; REUSE_GUARD_LEN],
    key_schedule_nonce: &Secret,
    leaf_secret: &Secret,
    leaves: u32,
) -> Result<u32, ReuseGuardError> {
    if leaves == 0 {
        return Err(ReuseGuardError::NoLeaves);
    }
    let key = prp_key(suite, key_schedule_nonce, leaf_secret)?;
    let x = small_space_prp_decrypt(&key, u32::from_be_bytes(reuse_guard))?;
    Ok(x % leaves)
}

/// The reuse guard of one outgoing PrivateMessage, for `mls-engine`'s
/// `ReuseGuard::FromNonce` closure.
///
/// [`ReuseGuardSender::new`] checks `leaf_index < leaves` and draws `x`; the closure
/// [`ReuseGuardSender::guard_for`] derives `prp_key` from the nonce the engine passes and
/// encrypts `x`. If that fails the engine refuses to encrypt with the [`ReuseGuardError`]
/// inside its `HookError` (see [`ReuseGuardError::from_hook`]).
/// [`ReuseGuardSender::finish`] returns the guard used.
///
/// ```text
/// let sender = ReuseGuardSender::with_random(suite, &leaf_secret, my_index, leaves)?;
/// let f = |nonce: &Secret| sender.guard_for(nonce);
/// let message = group.encrypt_application_with(services, data, aad, ReuseGuard::FromNonce(&f))?;
/// ```
pub struct ReuseGuardSender<'a> {
    suite: &'a dyn SuiteProvider,
    leaf_secret: &'a Secret,
    x: u32,
    used: Cell<Option<[u8; REUSE_GUARD_LEN]>>,
}

impl core::fmt::Debug for ReuseGuardSender<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReuseGuardSender").finish_non_exhaustive()
    }
}

impl<'a> ReuseGuardSender<'a> {
    /// A sender for the emulator at `leaf_index` of `leaves`, with `x` drawn from
    /// `randomness` ([`choose_x`]).
    pub fn new(
        suite: &'a dyn SuiteProvider,
        leaf_secret: &'a Secret,
        leaf_index: u32,
        leaves: u32,
        randomness: [u8; X_RANDOMNESS_LEN],
    ) -> Result<Self, ReuseGuardError> {
        let x = choose_x(leaf_index, leaves, randomness)?;
        Ok(Self {
            suite,
            leaf_secret,
            x,
            used: Cell::new(None),
        })
    }

    /// [`ReuseGuardSender::new`] with randomness from the suite's random source.
    pub fn with_random(
        suite: &'a dyn SuiteProvider,
        leaf_secret: &'a Secret,
        leaf_index: u32,
        leaves: u32,
    ) -> Result<Self, ReuseGuardError> {
        let mut randomness = [0u8; X_RANDOMNESS_LEN];
        suite.fill_random(&mut randomness)?;
        let sender = Self::new(suite, leaf_secret, leaf_index, leaves, randomness);
        randomness.zeroize();
        sender
    }

    /// The guard for the generation whose nonce is `key_schedule_nonce` (the body of the
    /// `ReuseGuard::FromNonce` closure), or the [`ReuseGuardError`] as a `HookError`.
    pub fn guard_for(
        &self,
        key_schedule_nonce: &Secret,
    ) -> Result<[u8; REUSE_GUARD_LEN], HookError> {
        let guard = guard_of_x(self.suite, key_schedule_nonce, self.leaf_secret, self.x)
            .map_err(HookError::failed)?;
        self.used.set(Some(guard));
        Ok(guard)
    }

    /// The guard the closure returned last ([`ReuseGuardError::NotComputed`] if it was never
    /// called or failed).
    pub fn finish(self) -> Result<[u8; REUSE_GUARD_LEN], ReuseGuardError> {
        self.used.get().ok_or(ReuseGuardError::NotComputed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mls_engine::crypto::{CipherSuite, CryptoProvider as _, MlsCrypto as _, RustCrypto};

    fn suite() -> &'static dyn SuiteProvider {
        static CRYPTO: RustCrypto = RustCrypto;
        CRYPTO.suite(CipherSuite(1)).unwrap()
    }

    #[test]
    fn choose_x_respects_the_residue_and_the_range() {
        for leaves in [1u32, 2, 3, 7, 1000, u32::MAX] {
            for leaf_index in [0, leaves / 2, leaves - 1] {
                for r in [[0u8; 8], [0xFF; 8], [0x5A; 8], [1, 2, 3, 4, 5, 6, 7, 8]] {
                    let x = choose_x(leaf_index, leaves, r).unwrap();
                    assert_eq!(x % leaves, leaf_index);
                }
            }
        }
        // The largest candidate is reachable.
        let x = choose_x(0, 1, u64::from(u32::MAX).to_be_bytes()).unwrap();
        assert_eq!(x, u32::MAX);
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        assert_eq!(choose_x(0, 0, [0; 8]), Err(ReuseGuardError::NoLeaves));
        assert_eq!(
            choose_x(3, 3, [0; 8]),
            Err(ReuseGuardError::LeafIndexOutOfRange {
                leaf_index: 3,
                leaves: 3
            })
        );
        let s = Secret::new(vec![1; 32]);
        let n = Secret::new(vec![2; 12]);
        assert_eq!(
            emulator_leaf_index(suite(), [0; 4], &n, &s, 0),
            Err(ReuseGuardError::NoLeaves)
        );
        assert_eq!(
            small_space_prp_encrypt(&Secret::new(vec![0; 15]), 0),
            Err(ReuseGuardError::PrpKeyLength(15))
        );
    }

    #[test]
    fn numerals_are_most_significant_first() {
        let v: Vec<u16> = to_numerals(0x8000_0001).into();
        assert_eq!(v.len(), 32);
        assert_eq!(v[0], 1);
        assert_eq!(v[31], 1);
        assert!(v[1..31].iter().all(|b| *b == 0));
        assert_eq!(
            from_numerals(to_numerals(0xDEAD_BEEF)).unwrap(),
            0xDEAD_BEEF
        );
        assert_eq!(
            from_numerals(vec![0u16; 31].into()),
            Err(ReuseGuardError::Ff1Output)
        );
        assert_eq!(
            from_numerals(vec![2u16; 32].into()),
            Err(ReuseGuardError::Ff1Output)
        );
    }

    #[test]
    fn expand_matches_the_engine_for_full_length_secrets() {
        let cs = suite();
        let secret = Secret::new((0..32).collect());
        let leaf_secret = Secret::new(vec![7; 32]);
        let ours = prp_key(cs, &secret, &leaf_secret).unwrap();
        let engine = cs
            .expand_with_label(
                secret.as_bytes(),
                REUSE_GUARD_LABEL,
                leaf_secret.as_bytes(),
                16,
            )
            .unwrap();
        assert_eq!(ours, engine);
        // Longer outputs (several HMAC blocks) agree too.
        let info = b"info";
        assert_eq!(
            hkdf_expand(cs, secret.as_bytes(), info, 100).unwrap(),
            cs.kdf_expand(secret.as_bytes(), info, 100).unwrap()
        );
    }

    #[test]
    fn sender_round_trip_and_finish() {
        let cs = suite();
        let leaf_secret = Secret::new(vec![3; 32]);
        let nonce = Secret::new(vec![9; 12]);
        let sender = ReuseGuardSender::with_random(cs, &leaf_secret, 2, 5).unwrap();
        let guard = sender.guard_for(&nonce).unwrap();
        assert_eq!(sender.finish(), Ok(guard));
        assert_eq!(
            emulator_leaf_index(cs, guard, &nonce, &leaf_secret, 5),
            Ok(2)
        );
        let unused = ReuseGuardSender::new(cs, &leaf_secret, 0, 1, [0; 8]).unwrap();
        assert_eq!(unused.finish(), Err(ReuseGuardError::NotComputed));
    }
}
