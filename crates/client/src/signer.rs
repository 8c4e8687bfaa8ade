//! A device's request signatures: `SignWithLabel` (RFC 9420 §5.1.2) with its MLS signature key.

use std::time::{SystemTime, UNIX_EPOCH};

use mls_engine::crypto::{
    CipherSuite, CryptoProvider, MlsCrypto, RustCrypto, SignaturePrivateKey, SuiteProvider,
};
use vmls_protocol::auth::{ECDSA_SECP256R1_SHA256, ED25519, REQUEST_LABEL, SUBSCRIBE_LABEL};
use vmls_protocol::{
    encode, AuthenticatedRequest, Authenticator, ClientId, RegisterDevice, Request, SignedRequest,
    SignedSubscribe,
};

/// Why a signer could not be made or could not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// Not ed25519 (0x0807) or ecdsa_secp256r1_sha256 (0x0403).
    #[error("unsupported signature scheme {0:#06x}")]
    UnsupportedScheme(u16),
    /// The crypto provider failed (a malformed private key, no randomness).
    #[error("signature failed: {0}")]
    Crypto(String),
    /// The content could not be encoded.
    #[error("encoding failed: {0}")]
    Encoding(String),
}

fn provider(scheme: u16) -> Result<&'static dyn SuiteProvider, SignerError> {
    static CRYPTO: RustCrypto = RustCrypto;
    let suite = match scheme {
        ED25519 => CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519,
        ECDSA_SECP256R1_SHA256 => CipherSuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
        other => return Err(SignerError::UnsupportedScheme(other)),
    };
    CRYPTO
        .suite(suite)
        .map_err(|_| SignerError::UnsupportedScheme(scheme))
}

/// A device's name and signature key pair (the private key is zeroized on drop).
pub struct Signer {
    device: ClientId,
    scheme: u16,
    private_key: SignaturePrivateKey,
    public_key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("device", &self.device)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `device` with the key of its MLS credential.
    pub fn new(
        device: ClientId,
        scheme: u16,
        private_key: SignaturePrivateKey,
    ) -> Result<Self, SignerError> {
        let public_key = provider(scheme)?
            .signature_public_key(&private_key)
            .map_err(|e| SignerError::Crypto(e.to_string()))?;
        Ok(Self {
            device,
            scheme,
            private_key,
            public_key,
        })
    }

    /// A signer with a fresh key pair.
    pub fn generate(device: ClientId, scheme: u16) -> Result<Self, SignerError> {
        let pair = provider(scheme)?
            .signature_generate_key_pair()
            .map_err(|e| SignerError::Crypto(e.to_string()))?;
        Ok(Self {
            device,
            scheme,
            private_key: pair.private_key,
            public_key: pair.public_key,
        })
    }

    /// The device's name.
    pub fn device(&self) -> &ClientId {
        &self.device
    }

    /// The MLS `SignatureScheme`.
    pub fn scheme(&self) -> u16 {
        self.scheme
    }

    /// The signature public key.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The `register_device` request registering this signer's key.
    pub fn register_request(&self) -> Request {
        Request::RegisterDevice(RegisterDevice {
            device: self.device.clone(),
            signature_scheme: self.scheme,
            signature_key: self.public_key.clone().into(),
        })
    }

    fn authenticator(&self, timestamp: u64) -> Result<Authenticator, SignerError> {
        let mut nonce = [0u8; 16];
        provider(self.scheme)?
            .fill_random(&mut nonce)
            .map_err(|e| SignerError::Crypto(e.to_string()))?;
        Ok(Authenticator {
            device: self.device.clone(),
            timestamp,
            nonce,
        })
    }

    fn sign(&self, label: &str, content: &[u8]) -> Result<Vec<u8>, SignerError> {
        provider(self.scheme)?
            .sign_with_label(&self.private_key, label, content)
            .map_err(|e| SignerError::Crypto(e.to_string()))
    }

    /// Signs `request` at `timestamp` (seconds since the Unix epoch) with a fresh nonce.
    pub fn sign_request_at(
        &self,
        request: Request,
        timestamp: u64,
    ) -> Result<SignedRequest, SignerError> {
        let content = AuthenticatedRequest {
            authenticator: self.authenticator(timestamp)?,
            request,
        };
        let bytes = encode(&content).map_err(|e| SignerError::Encoding(e.to_string()))?;
        let signature = self.sign(REQUEST_LABEL, &bytes)?;
        Ok(SignedRequest {
            content,
            signature: signature.into(),
        })
    }

    /// Signs `request` now.
    pub fn sign_request(&self, request: Request) -> Result<SignedRequest, SignerError> {
        self.sign_request_at(request, unix_now())
    }

    /// A push subscription signed now.
    pub fn sign_subscribe(&self) -> Result<SignedSubscribe, SignerError> {
        let content = self.authenticator(unix_now())?;
        let bytes = encode(&content).map_err(|e| SignerError::Encoding(e.to_string()))?;
        let signature = self.sign(SUBSCRIBE_LABEL, &bytes)?;
        Ok(SignedSubscribe {
            content,
            signature: signature.into(),
        })
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
