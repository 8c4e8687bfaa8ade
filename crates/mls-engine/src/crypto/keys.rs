//! Secret-holding types. All of them zeroize their bytes on drop and never print them.

use zeroize::{Zeroize, ZeroizeOnDrop};

macro_rules! secret_bytes {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Wraps bytes; they are zeroized when the value is dropped.
            pub fn new(bytes: Vec<u8>) -> Self {
                Self(bytes)
            }

            /// The secret bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// Length in bytes.
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether the secret is empty.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl From<Vec<u8>> for $name {
            fn from(bytes: Vec<u8>) -> Self {
                Self(bytes)
            }
        }

        impl From<&[u8]> for $name {
            fn from(bytes: &[u8]) -> Self {
                Self(bytes.to_vec())
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($name), "({} bytes, redacted)"), self.0.len())
            }
        }
    };
}

secret_bytes!(
    /// A secret of the key schedule, secret tree or TreeKEM (a `path_secret`, an epoch
    /// secret, an AEAD key...).
    Secret
);
secret_bytes!(
    /// An HPKE private key in the KEM's `SerializePrivateKey` form.
    HpkePrivateKey
);
secret_bytes!(
    /// A signature private key: the 32-byte seed for Ed25519, the 32-byte scalar for ECDSA P-256.
    SignaturePrivateKey
);

impl Secret {
    /// A secret of `len` zero bytes (the RFC's `0` default for missing key schedule inputs).
    pub fn zero(len: usize) -> Self {
        Self(vec![0; len])
    }
}

/// An HPKE key pair. The public key is in the KEM's `SerializePublicKey` form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HpkeKeyPair {
    /// The private key.
    pub private_key: HpkePrivateKey,
    /// The public key.
    pub public_key: Vec<u8>,
}

/// A signature key pair. The public key is the raw 32-byte key for Ed25519 and the
/// uncompressed SEC1 point for ECDSA P-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureKeyPair {
    /// The private key.
    pub private_key: SignaturePrivateKey,
    /// The public key.
    pub public_key: Vec<u8>,
}
