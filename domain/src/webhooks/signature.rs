//! Standard Webhooks signatures: `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")),
//! the secret being the bytes behind `whsec_` (base64). Signing for the webhooks participant,
//! verifying for receivers (the tests' receiver, and the example in the README).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes of a new secret (Standard Webhooks asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;
/// How far a `webhook-timestamp` may be from now, seconds, for a receiver to accept it.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// A signing secret that cannot be used (not `whsec_` + base64 of 24 to 64 bytes).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a signing secret is `whsec_` followed by base64 of 24 to 64 bytes")]
pub struct BadSecret;

/// A new secret: `whsec_` + base64 of [`SECRET_BYTES`] bytes from `fill` (the OS's randomness).
pub fn new_secret(fill: impl FnOnce(&mut [u8])) -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    fill(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of `secret`.
pub fn secret_bytes(secret: &str) -> Result<Vec<u8>, BadSecret> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?;
    let bytes = STANDARD.decode(b64).map_err(|_| BadSecret)?;
    if (24..=64).contains(&bytes.len()) {
        Ok(bytes)
    } else {
        Err(BadSecret)
    }
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cold]
fn unreachable_hmac() -> ! {
    panic!("HMAC accepts keys of every length")
}

/// One signature, `v1,<base64>`, of the message `id`, `timestamp` (unix seconds), `body`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(key, id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The `webhook-signature` header: one `v1,` entry per secret, space-separated (during a
/// rotation's overlap, the new secret's first and the previous one's second).
pub fn header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| sign(k, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a receiver refuses a delivery.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the webhook-timestamp is not a number")]
    BadTimestamp,
    #[error("the webhook-timestamp is more than five minutes away from now")]
    OutsideTolerance,
    #[error("no signature of webhook-signature matches")]
    NoMatch,
}

/// What a receiver does (Standard Webhooks' verification): the timestamp within
/// [`TOLERANCE_SECS`] of `now` (unix seconds), and one `v1` signature of the header matching
/// the HMAC of `{id}.{timestamp}.{body}`, compared in constant time. Refusing a `webhook-id`
/// seen before (a replay) is the receiver's own bookkeeping.
pub fn verify(
    key: &[u8],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(VerifyError::OutsideTolerance);
    }
    for entry in signatures.split(' ') {
        let Some(sig) = entry.strip_prefix("v1,") else {
            continue;
        };
        let Ok(sig) = STANDARD.decode(sig) else {
            continue;
        };
        if mac(key, id, ts, body).verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_example_signs_as_the_spec_says() {
        // The test vector of the Standard Webhooks specification's reference libraries.
        let key = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let body = br#"{"test": 2432232314}"#;
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let sig = sign(&key, id, 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(
            verify(&key, id, "1614265330", &sig, body, 1614265330),
            Ok(())
        );
        assert_eq!(
            verify(&key, id, "1614265330", &sig, body, 1614265330 + 301),
            Err(VerifyError::OutsideTolerance)
        );
        assert_eq!(
            verify(&key, id, "1614265330", &sig, b"{}", 1614265330),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn secrets_are_whsec_and_base64_of_enough_bytes() {
        let s = new_secret(|b| b.fill(7));
        assert!(s.starts_with("whsec_"));
        assert_eq!(secret_bytes(&s).expect("bytes").len(), SECRET_BYTES);
        assert_eq!(secret_bytes("whsec_AAAA"), Err(BadSecret));
        assert_eq!(secret_bytes("sk_whatever"), Err(BadSecret));
    }
}
