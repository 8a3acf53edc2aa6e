//! Signing keys in their text forms (`whsec_`, `whpk_`, `whsk_`), parsed once into what signs
//! and verifies.

use std::{fmt, str::FromStr};

use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hmac::digest::{Key as HmacKeyBlock, KeyInit};
use sha2::{Digest, Sha256};

use super::HmacSha256;

/// Standard base64 that accepts input with or without `=` padding and writes it padded.
///
/// Svix pads, but secrets pasted by hand often lose their padding; being lenient on input costs
/// nothing since the decoded bytes are what is checked.
pub(super) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Prefix of a symmetric HMAC key, the kind ChatBrick's admin hands out.
const HMAC_PREFIX: &str = "whsec_";
/// Prefix of an ed25519 public key, which can only verify.
const PUBLIC_PREFIX: &str = "whpk_";
/// Prefix of an ed25519 secret key, which can sign and verify.
pub(super) const SECRET_PREFIX: &str = "whsk_";

/// One configured key, parsed from its text form.
///
/// `whsec_<base64>` is an HMAC-SHA256 key (verifies and signs `v1`), `whpk_<base64>` an ed25519
/// public key (verifies `v1a`), `whsk_<base64>` an ed25519 secret key, 32-byte seed or 64-byte
/// seed-and-public-key (signs `v1a`, verifies `v1a`). Base64 without a prefix is taken as a
/// `whsec_` key, as Svix does. `Debug` prints only [`Key::masked`], so keys can sit in logged
/// config structs.
#[derive(Clone)]
pub struct Key {
    /// The decoded key, ready to use.
    pub(super) material: Material,
    /// What `Debug` and [`Key::masked`] show: computed once, from the prefix, the key length and
    /// a short fingerprint; never a character of the key.
    pub(super) masked: String,
}

/// What a key can do, decided at parse time so that verifying and signing never re-decode.
#[derive(Clone)]
pub(super) enum Material {
    /// A key that can sign (and therefore verify).
    Signing(SigningMaterial),
    /// A `whpk_` key: verifies `v1a` entries, cannot sign.
    VerifyOnly(VerifyingKey),
}

/// A key that can produce signatures; kept apart so that [`Signer`] cannot hold a public key.
#[derive(Clone)]
pub(super) enum SigningMaterial {
    /// A `whsec_` key, already keyed into an HMAC state that is cloned per message.
    Hmac(HmacSha256),
    /// A `whsk_` key.
    Ed25519(SigningKey),
}

/// Why a key's text could not be used. The message says what was expected and what is wrong,
/// and never quotes any part of the key: not a character, not where a bad one sits (the base64
/// decoder's own errors do both, so they are not passed on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing after the prefix, usually an unset environment variable.
    #[error("empty key after `{0}`")]
    Empty(&'static str),
    /// Text an example file asks to replace (`<…>`, or words separated by spaces), not a key.
    #[error(
        "this is a placeholder, not a key (it contains `<`, `>` or a space): paste the signing \
         secret itself (`whsec_` followed by base64, as ChatBrick shows it)"
    )]
    Placeholder,
    /// The part after the prefix, or the whole text when it has none, is not standard base64.
    #[error("{}", base64_problem(.prefix, *.prefixed))]
    Base64 {
        /// The key's prefix, to tell which kind of key was meant (`whsec_` when it has none).
        prefix: &'static str,
        /// Whether the text started with that prefix (else it was taken for bare base64).
        prefixed: bool,
    },
    /// An ed25519 key of the wrong size, often a key of another kind given the wrong prefix.
    #[error("`{prefix}` key must decode to {expected} bytes, got {actual}")]
    Length {
        /// The key's prefix.
        prefix: &'static str,
        /// The sizes that kind of key may have.
        expected: &'static str,
        /// The size that was decoded.
        actual: usize,
    },
    /// Right size but not an ed25519 key: a public key that is not a curve point, or a 64-byte
    /// secret key whose public half does not belong to its seed.
    #[error("`{0}` key is not a valid ed25519 key")]
    Ed25519(&'static str),
    /// A [`Signer`] was asked to use a `whpk_` public key.
    #[error("a `whpk_` key is a public key: it can verify but not sign")]
    VerifyOnly,
}

impl FromStr for Key {
    type Err = KeyError;

    /// Parses `whsec_…`, `whpk_…`, `whsk_…` or bare base64 (taken as `whsec_`); surrounding
    /// whitespace, such as a newline from a secret file, is ignored.
    fn from_str(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.contains(['<', '>']) || text.contains(char::is_whitespace) {
            return Err(KeyError::Placeholder);
        }
        let (prefix, encoded) = split_prefix(text);
        if encoded.is_empty() {
            return Err(KeyError::Empty(prefix));
        }
        let bytes = BASE64.decode(encoded).map_err(|_| KeyError::Base64 {
            prefix,
            prefixed: encoded.len() < text.len(),
        })?;
        let material = Material::from_bytes(prefix, &bytes)?;
        let masked = mask(prefix, &bytes);
        Ok(Key { material, masked })
    }
}

/// What is wrong with a key that is not base64, without quoting any of it.
fn base64_problem(prefix: &str, prefixed: bool) -> String {
    if prefixed {
        format!(
            "the part after `{prefix}` is not valid base64 (expected `{prefix}` followed by \
             standard base64: letters, digits, `+`, `/`, and `=` at the end)"
        )
    } else {
        "it has no `whsec_`, `whpk_` or `whsk_` prefix and is not valid base64 either (a \
         ChatBrick signing secret is `whsec_` followed by base64, as ChatBrick shows it)"
            .to_owned()
    }
}

/// Splits a key's text into its prefix and its base64, defaulting to `whsec_` like Svix.
fn split_prefix(text: &str) -> (&'static str, &str) {
    [HMAC_PREFIX, PUBLIC_PREFIX, SECRET_PREFIX]
        .into_iter()
        .find_map(|prefix| Some((prefix, text.strip_prefix(prefix)?)))
        .unwrap_or((HMAC_PREFIX, text))
}

/// The masked form of a key: its prefix, its length in bytes and a short fingerprint of the
/// decoded key, enough to tell the keys of a rotation apart and nothing of the key itself.
fn mask(prefix: &str, bytes: &[u8]) -> String {
    format!(
        "{prefix}…({} bytes, fingerprint {})",
        bytes.len(),
        crate::settings::fingerprint(bytes)
    )
}

impl Material {
    /// Builds the key of the kind `prefix` names from its decoded bytes.
    fn from_bytes(prefix: &'static str, bytes: &[u8]) -> Result<Self, KeyError> {
        match prefix {
            PUBLIC_PREFIX => public_key(bytes).map(Material::VerifyOnly),
            SECRET_PREFIX => {
                secret_key(bytes).map(|key| Material::Signing(SigningMaterial::Ed25519(key)))
            }
            _ => Ok(Material::Signing(SigningMaterial::Hmac(hmac_sha256(bytes)))),
        }
    }
}

/// Decodes a `whpk_` key: exactly 32 bytes that form a valid ed25519 point.
fn public_key(bytes: &[u8]) -> Result<VerifyingKey, KeyError> {
    let bytes: &[u8; 32] = bytes.try_into().map_err(|_| KeyError::Length {
        prefix: PUBLIC_PREFIX,
        expected: "32",
        actual: bytes.len(),
    })?;
    VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::Ed25519(PUBLIC_PREFIX))
}

/// Decodes a `whsk_` key: a 32-byte seed, or 64 bytes of seed then matching public key.
fn secret_key(bytes: &[u8]) -> Result<SigningKey, KeyError> {
    if let Ok(seed) = <&[u8; 32]>::try_from(bytes) {
        return Ok(SigningKey::from_bytes(seed));
    }
    if let Ok(pair) = <&[u8; 64]>::try_from(bytes) {
        return SigningKey::from_keypair_bytes(pair).map_err(|_| KeyError::Ed25519(SECRET_PREFIX));
    }
    Err(KeyError::Length {
        prefix: SECRET_PREFIX,
        expected: "32 or 64",
        actual: bytes.len(),
    })
}

/// An HMAC-SHA256 state keyed with `key`, whatever its length.
///
/// Prepares the key as RFC 2104 says (hash it if longer than a block, zero-pad it to a block) so
/// that the infallible `KeyInit::new` can be used: `new_from_slice` returns a `Result` whose error
/// HMAC never produces, and unwrapping it would put a panic path in intake.
pub(crate) fn hmac_sha256(key: &[u8]) -> HmacSha256 {
    let mut block = HmacKeyBlock::<HmacSha256>::default();
    let hashed;
    let key = if key.len() > block.len() {
        hashed = Sha256::digest(key);
        hashed.as_slice()
    } else {
        key
    };
    block
        .iter_mut()
        .zip(key)
        .for_each(|(slot, byte)| *slot = *byte);
    <HmacSha256 as KeyInit>::new(&block)
}

impl Key {
    /// The key as it may appear in logs and error messages: prefix, length and fingerprint, e.g.
    /// `whsec_…(24 bytes, fingerprint 3f2a)`.
    pub fn masked(&self) -> String {
        self.masked.clone()
    }

    /// The HMAC state, for `v1` entries.
    pub(super) fn hmac(&self) -> Option<&HmacSha256> {
        match &self.material {
            Material::Signing(SigningMaterial::Hmac(mac)) => Some(mac),
            _ => None,
        }
    }

    /// The ed25519 public key, for `v1a` entries.
    pub(super) fn ed25519(&self) -> Option<VerifyingKey> {
        match &self.material {
            Material::Signing(SigningMaterial::Ed25519(key)) => Some(key.verifying_key()),
            Material::VerifyOnly(key) => Some(*key),
            Material::Signing(SigningMaterial::Hmac(_)) => None,
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Key").field(&self.masked).finish()
    }
}
