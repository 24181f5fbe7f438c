//! Password hashing with argon2id at OWASP's recommended parameters (m = 19 MiB, t = 2, p = 1).
//!
//! Hashing is CPU- and memory-bound, so it runs on the blocking pool, never on the async runtime,
//! and a semaphore caps how many run at once: a burst of sign-ins queues instead of exhausting
//! memory or starving request handling.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

/// OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const LANES: u32 = 1;

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` on the calling thread (blocking: ~20 ms of one core). Use [`Hasher`] from
/// async code.
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Hashes and verifies passwords off the async runtime, at most `concurrency` at a time.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the e-mail is unknown so that a wrong
    /// e-mail costs the same time as a wrong password.
    decoy: Arc<OnceCell<String>>,
}

impl Hasher {
    pub fn new(concurrency: usize) -> Hasher {
        Hasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            decoy: Arc::new(OnceCell::new()),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_owned();
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .context("password hashing task")?
    }

    /// `true` when `password` matches `phc`. A malformed stored hash is an error, not a mismatch.
    pub async fn verify(&self, password: &str, phc: &str) -> anyhow::Result<bool> {
        let password = password.to_owned();
        let phc = phc.to_owned();
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        tokio::task::spawn_blocking(move || {
            let parsed =
                PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            // Verify with the parameters stored in the hash, so old hashes keep working
            // after a parameter change.
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
        .context("password verification task")?
    }

    /// Spends the time of one verification and answers `false`.
    pub async fn verify_decoy(&self, password: &str) -> anyhow::Result<bool> {
        let decoy = self
            .decoy
            .get_or_try_init(|| async {
                let random: [u8; 16] = rand::random();
                self.hash(&format!("{random:x?}")).await
            })
            .await?
            .clone();
        self.verify(password, &decoy).await?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_owasp_and_salted() {
        let h = Hasher::new(2);
        let a = h.hash("correct horse battery").await.expect("hash");
        let b = h.hash("correct horse battery").await.expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "every hash has its own salt");
        assert!(h.verify("correct horse battery", &a).await.expect("verify"));
        assert!(
            !h.verify("correct horse battery!", &a)
                .await
                .expect("verify")
        );
        assert!(h.verify("x", "not a hash").await.is_err());
        assert!(!h.verify_decoy("anything").await.expect("decoy"));
    }
}
