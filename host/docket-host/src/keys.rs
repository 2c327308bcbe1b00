//! Ed25519 keys: the host's key that signs ledger checkpoints, and a
//! publisher's key that signs plugin packages. One key type for both, so
//! key files, printing and parsing work the same everywhere.

use ed25519_dalek::{Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// An Ed25519 public key, shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl std::str::FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<PublicKey, KeyError> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| KeyError::Malformed("a public key is 64 hexadecimal digits".to_owned()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| KeyError::Malformed("not an Ed25519 public key".to_owned()))?;
        Ok(PublicKey(bytes))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PublicKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a signing key could not be read or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("key `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The text is not a key.
    #[error("{0}")]
    Malformed(String),
    /// The system has no randomness to make a key from.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// A private Ed25519 key: the host's for checkpoints, a publisher's for packages.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public())
    }
}

impl SigningKey {
    /// A new random key.
    ///
    /// # Errors
    ///
    /// If the operating system gives no randomness.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let mut seed = [0; 32];
        getrandom::fill(&mut seed).map_err(|err| KeyError::Random(err.to_string()))?;
        Ok(SigningKey::from_seed(seed))
    }

    /// The key with this 32-byte seed (tests use fixed seeds).
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Reads the key file at `path` (the seed as 64 hex digits), creating it,
    /// readable by its owner only, if it does not exist.
    ///
    /// # Errors
    ///
    /// If the file cannot be read or written, or holds no key.
    pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut seed = [0; 32];
                hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| {
                    KeyError::Malformed(format!(
                        "key `{}` is not 64 hexadecimal digits",
                        path.display()
                    ))
                })?;
                Ok(SigningKey::from_seed(seed))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate()?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(io)?;
                std::io::Write::write_all(
                    &mut file,
                    format!("{}\n", hex::encode(key.0.to_bytes())).as_bytes(),
                )
                .map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(key)
            }
            Err(err) => Err(io(err)),
        }
    }

    /// The key to publish.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Ed25519 over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl PublicKey {
    /// Whether `signature` is this key's Ed25519 signature over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(verifying) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        verifying
            .verify(message, &ed25519_dalek::Signature::from_bytes(signature))
            .is_ok()
    }
}
