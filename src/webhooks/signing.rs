//! Signing as the Standard Webhooks specification has it, so receivers can
//! verify with its published libraries: the secret is `whsec_` and the
//! base64 of its bytes; the signature is the base64 of
//! HMAC-SHA256(secret, `{webhook-id}.{webhook-timestamp}.{body}`), sent as
//! `webhook-signature: v1,<signature>`, several separated by spaces (while
//! a rotated secret's predecessor is still honoured).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// The bytes of a secret scimd makes: the specification asks for 24 to 64.
const GENERATED_BYTES: usize = 32;

/// An endpoint's signing secret. Never printed: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

/// Why a secret's text is not one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a signing secret starts with whsec_")]
    Prefix,
    #[error("a signing secret is whsec_ and base64")]
    Base64,
    #[error("a signing secret holds 24 to 64 bytes")]
    Length,
}

impl SigningSecret {
    /// A new random secret.
    pub fn generate() -> SigningSecret {
        let mut bytes = vec![0u8; GENERATED_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SigningSecret(bytes)
    }

    /// Reads `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<SigningSecret, SecretError> {
        let encoded = text.strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SecretError::Length);
        }
        Ok(SigningSecret(bytes))
    }

    /// `whsec_<base64>`: shown once to the admin, stored as is.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, message_id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(format!("{message_id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac
    }

    /// The signature of a message: `v1,<base64>`.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mac = self.mac(message_id, timestamp, body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// Whether `header` (a `webhook-signature` value) holds this secret's
    /// signature of the message, compared in constant time.
    pub fn verifies(&self, message_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let mac = self.mac(message_id, timestamp, body);
        header
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            .any(|sig| mac.clone().verify_slice(&sig).is_ok())
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(…)")
    }
}

/// The `webhook-signature` value for a message signed with each of
/// `secrets` (the current one first).
pub fn signature_header(
    secrets: &[&SigningSecret],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The specification's own test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specifications_vector() {
        let secret = SigningSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY), SIGNATURE);
        assert!(secret.verifies(ID, TIMESTAMP, BODY, SIGNATURE));
        assert_eq!(secret.expose(), SECRET);
    }

    #[test]
    fn any_change_fails_verification() {
        let secret = SigningSecret::parse(SECRET).unwrap();
        assert!(!secret.verifies(ID, TIMESTAMP + 1, BODY, SIGNATURE));
        assert!(!secret.verifies("msg_other", TIMESTAMP, BODY, SIGNATURE));
        assert!(!secret.verifies(ID, TIMESTAMP, br#"{"test": 2432232315}"#, SIGNATURE));
        let other = SigningSecret::generate();
        assert!(!other.verifies(ID, TIMESTAMP, BODY, SIGNATURE));
        assert!(!secret.verifies(ID, TIMESTAMP, BODY, "v2,abc v1,!!!"));
    }

    #[test]
    fn a_header_with_two_signatures_verifies_with_either_secret() {
        let old = SigningSecret::parse(SECRET).unwrap();
        let new = SigningSecret::generate();
        let header = signature_header(&[&new, &old], ID, TIMESTAMP, BODY);
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.ends_with(SIGNATURE));
        assert!(new.verifies(ID, TIMESTAMP, BODY, &header));
        assert!(old.verifies(ID, TIMESTAMP, BODY, &header));
    }

    #[test]
    fn generated_secrets_round_trip_and_never_print() {
        let secret = SigningSecret::generate();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&text).unwrap(), secret);
        assert_eq!(format!("{secret:?}"), "SigningSecret(…)");
        assert_ne!(SigningSecret::generate(), secret);
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert_eq!(SigningSecret::parse("MfKQ9r8G"), Err(SecretError::Prefix));
        assert_eq!(SigningSecret::parse("whsec_!!"), Err(SecretError::Base64));
        assert_eq!(SigningSecret::parse("whsec_YWJj"), Err(SecretError::Length));
    }
}
