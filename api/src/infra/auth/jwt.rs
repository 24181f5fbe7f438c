//! Access tokens: RS256-signed JWTs, 10 minutes, claims `iss aud sub role name iat nbf exp jti`
//! and a `kid` header; an API client's token (OAuth 2.0 client credentials) also carries
//! `client_id` and `scope`, and its `sub` is the publisher it acts for. The same keys sign the
//! ownership tickets of buyers ([`Keys::sign_ticket`]), whose `aud` is a publisher's id, never
//! this api's audience, so neither kind of token passes for the other.
//!
//! RS256 rather than ES256: the gateway verifies every request in njs, where an RSA verification
//! is several times cheaper than an ECDSA one (published OpenResty figures: ~91 µs vs ~260 µs), and
//! signing happens only at sign-in and refresh. Only the api, which issues tokens, holds the
//! private key; verifiers (the gateway, and the api's own bearer path) use the public keys, which
//! are served as a JWK set at `/.well-known/jwks.json`. A key's `kid` is its RFC 7638 thumbprint.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::config::JwtConfig;
use domain::identity::Role;

/// The only algorithm accepted.
pub const ALGORITHM: Algorithm = Algorithm::RS256;
/// Clock skew tolerated on `exp` and `nbf`, seconds.
pub const LEEWAY_SECS: u64 = 5;

/// The claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    pub role: Role,
    pub name: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// API clients only: the client the token was issued to (`sub` is its publisher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Uuid>,
    /// API clients only: the granted scopes, space-separated (RFC 6749 §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The `typ` header of ownership tickets (RFC 8725 §3.11 explicit typing).
pub const TICKET_TYPE: &str = "store-ownership+jwt";

struct VerifyingKey {
    kid: String,
    key: DecodingKey,
    jwk: serde_json::Value,
    /// SubjectPublicKeyInfo PEM, for verifiers that import PEM only (the gateway's njs).
    pem: String,
}

/// The key material of this process: one signing key (optional: a verifier-only process has
/// none) and every public key that verifies.
pub struct Keys {
    signing: Option<(String, EncodingKey)>,
    verifying: BTreeMap<String, VerifyingKey>,
    issuer: String,
    audience: String,
    access_ttl: Duration,
}

/// An issued access token.
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub token: String,
    pub claims: Claims,
}

fn jwk_of(public: &RsaPublicKey) -> (String, serde_json::Value) {
    let n = B64.encode(public.n().to_bytes_be());
    let e = B64.encode(public.e().to_bytes_be());
    // RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = B64.encode(Sha256::digest(canonical.as_bytes()));
    let jwk = serde_json::json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e,
    });
    (kid, jwk)
}

fn parse_private(pem: &str) -> anyhow::Result<RsaPrivateKey> {
    RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .context("the JWT private key is not an RSA key in PKCS#8 or PKCS#1 PEM")
}

/// Splits concatenated PEM blocks.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN") {
            cur.clear();
        }
        cur.push_str(line);
        cur.push('\n');
        if line.starts_with("-----END") {
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

impl Keys {
    pub fn from_config(cfg: &JwtConfig) -> anyhow::Result<Keys> {
        let mut keys = Keys {
            signing: None,
            verifying: BTreeMap::new(),
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            access_ttl: cfg.access_ttl,
        };
        if let Some(pem) = &cfg.private_key_pem {
            let private = parse_private(pem.expose_secret())?;
            let pem = private
                .to_pkcs8_pem(LineEnding::LF)
                .context("encoding the JWT private key")?;
            let encoding =
                EncodingKey::from_rsa_pem(pem.as_bytes()).context("loading the signing key")?;
            let kid = keys.add_public(&private.to_public_key())?;
            keys.signing = Some((kid, encoding));
        }
        if let Some(text) = &cfg.extra_public_keys_pem {
            for block in pem_blocks(text) {
                let public = RsaPublicKey::from_public_key_pem(&block)
                    .context("a JWT public key is not an RSA SubjectPublicKeyInfo PEM")?;
                keys.add_public(&public)?;
            }
        }
        if keys.verifying.is_empty() {
            bail!(
                "no JWT key configured: set JWT_PRIVATE_KEY_FILE (or run `api gen-keys`, which `cargo xtask dev` does)"
            );
        }
        Ok(keys)
    }

    fn add_public(&mut self, public: &RsaPublicKey) -> anyhow::Result<String> {
        if public.size() * 8 < 2048 {
            bail!("RSA keys shorter than 2048 bits are refused");
        }
        let (kid, jwk) = jwk_of(public);
        let n = jwk["n"].as_str().unwrap_or_default().to_owned();
        let e = jwk["e"].as_str().unwrap_or_default().to_owned();
        let key = DecodingKey::from_rsa_components(&n, &e).context("building a decoding key")?;
        let pem = public
            .to_public_key_pem(LineEnding::LF)
            .context("encoding a public key")?;
        self.verifying.insert(
            kid.clone(),
            VerifyingKey {
                kid: kid.clone(),
                key,
                jwk,
                pem,
            },
        );
        Ok(kid)
    }

    /// The kid of the signing key.
    pub fn signing_kid(&self) -> Option<&str> {
        self.signing.as_ref().map(|(kid, _)| kid.as_str())
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// The JWK set of every verifying key.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": self.verifying.values().map(|k| k.jwk.clone()).collect::<Vec<_>>()
        })
    }

    /// Every verifying key as (kid, SubjectPublicKeyInfo PEM): what `api gateway-keys` writes
    /// for the gateway, whose njs can import only PEM/SPKI keys.
    pub fn public_pems(&self) -> Vec<(String, String)> {
        self.verifying
            .values()
            .map(|k| (k.kid.clone(), k.pem.clone()))
            .collect()
    }

    /// The `iss` and `aud` this process issues and accepts.
    pub fn issuer_audience(&self) -> (&str, &str) {
        (&self.issuer, &self.audience)
    }

    /// Signs an access token for `principal`, valid from now for the configured lifetime.
    pub fn issue(&self, principal: &Principal) -> anyhow::Result<AccessToken> {
        self.issue_with(principal, None)
    }

    /// Signs the access token of an API client acting for `publisher` within `scopes`.
    pub fn issue_for_client(
        &self,
        publisher: &Principal,
        client: Uuid,
        scopes: &[domain::identity::Scope],
    ) -> anyhow::Result<AccessToken> {
        self.issue_with(
            publisher,
            Some((client, domain::identity::Scope::join(scopes))),
        )
    }

    fn issue_with(
        &self,
        principal: &Principal,
        client: Option<(Uuid, String)>,
    ) -> anyhow::Result<AccessToken> {
        let (kid, key) = self
            .signing
            .as_ref()
            .context("this process holds no signing key")?;
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(self.access_ttl.as_secs()).unwrap_or(600);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: principal.id,
            role: principal.role,
            name: principal.name.clone(),
            iat: now,
            nbf: now,
            exp: now + ttl,
            jti: domain::id::new_id(),
            client_id: client.as_ref().map(|c| c.0),
            scope: client.map(|c| c.1),
        };
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, key).context("signing a token")?;
        Ok(AccessToken { token, claims })
    }

    /// Signs `claims` as a JWT of type [`TICKET_TYPE`] with the signing key (ownership
    /// tickets).
    pub fn sign_ticket<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        let (kid, key) = self
            .signing
            .as_ref()
            .context("this process holds no signing key")?;
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(kid.clone());
        header.typ = Some(TICKET_TYPE.to_owned());
        jsonwebtoken::encode(&header, claims, key).context("signing a ticket")
    }

    /// This process's issuer (`iss` of tokens and tickets).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies signature, `alg` (RS256 only), `kid` (known), `iss`, `aud`, `exp` and `nbf`.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != ALGORITHM {
            return Err(TokenError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(ALGORITHM);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        debug_assert_eq!(key.kid, kid);
        Ok(data.claims)
    }
}

/// Why a token was refused (logged at debug; the client sees only `invalid_token`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not accepted")]
    WrongAlgorithm,
    #[error("unknown key id")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// A new RSA-2048 key pair as (private PKCS#8 PEM, public SPKI PEM).
pub fn generate_key_pair() -> anyhow::Result<(String, String)> {
    let private =
        RsaPrivateKey::new(&mut rand::thread_rng(), 2048).context("generating RSA key")?;
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the private key")?
        .to_string();
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .context("encoding the public key")?;
    Ok((private_pem, public_pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        // RFC 7638 §3.1 example key and its thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let public = RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&B64.decode(n).expect("n")),
            rsa::BigUint::from(65537u32),
        )
        .expect("key");
        let (kid, jwk) = jwk_of(&public);
        assert_eq!(kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert_eq!(jwk["e"], "AQAB");
    }

    #[test]
    fn pem_blocks_split() {
        let text =
            "-----BEGIN A-----\nx\n-----END A-----\njunk\n-----BEGIN B-----\ny\n-----END B-----\n";
        assert_eq!(pem_blocks(text).len(), 2);
    }
}
