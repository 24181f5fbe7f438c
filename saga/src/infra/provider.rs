//! The payment provider port (top-ups) and the sandbox that ships with the store.
//!
//! A real provider plugs in behind [`PaymentProvider`]. Calls carry the top-up id as the
//! idempotency key, so a retried call never charges twice on the provider's side either.

use std::collections::HashMap;
use std::sync::Mutex;

use domain::billing::sandbox;
use futures::future::BoxFuture;
use uuid::Uuid;

/// A charge to make.
#[derive(Clone, Debug)]
pub struct Charge {
    /// Idempotency key at the provider.
    pub top_up_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub payment_method: String,
    /// Which try this is, 1 for the first (the delivery of the command that asks): a
    /// provider may use it to tell a retry from a new charge.
    pub attempt: u32,
}

/// The provider's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    Approved,
    /// Refused for good; the reason is shown to the buyer.
    Declined(String),
}

/// The provider could not answer now; try again later.
#[derive(Debug, thiserror::Error)]
#[error("payment provider unavailable: {0}")]
pub struct ProviderUnavailable(pub String);

pub trait PaymentProvider: Send + Sync {
    fn charge<'a>(
        &'a self,
        charge: &'a Charge,
    ) -> BoxFuture<'a, Result<ChargeOutcome, ProviderUnavailable>>;
}

/// The sandbox: test card numbers decide ([`domain::billing::sandbox`]). It counts attempts per
/// top-up in memory and takes the larger of that and the charge's own `attempt`, so
/// `4000000000000119` fails twice and then approves, also when the tries land on different
/// replicas or a restarted process (which count from zero).
#[derive(Default)]
pub struct Sandbox {
    attempts: Mutex<HashMap<Uuid, u32>>,
}

impl Sandbox {
    /// How many times the top-up was sent to the card (tests: "the card was not charged").
    pub fn attempts(&self, top_up: Uuid) -> u32 {
        self.attempts
            .lock()
            .map_or(0, |map| map.get(&top_up).copied().unwrap_or(0))
    }
}

impl PaymentProvider for Sandbox {
    fn charge<'a>(
        &'a self,
        charge: &'a Charge,
    ) -> BoxFuture<'a, Result<ChargeOutcome, ProviderUnavailable>> {
        Box::pin(async move {
            let attempt = match self.attempts.lock() {
                Ok(mut map) => {
                    let n = map.entry(charge.top_up_id).or_insert(0);
                    *n += 1;
                    (*n).max(charge.attempt)
                }
                Err(_) => charge.attempt.max(1),
            };
            match sandbox::outcome(&charge.payment_method, attempt) {
                sandbox::Outcome::Approved => Ok(ChargeOutcome::Approved),
                sandbox::Outcome::Declined(r) => Ok(ChargeOutcome::Declined(r.to_owned())),
                sandbox::Outcome::Transient => Err(ProviderUnavailable(format!(
                    "processing error (sandbox, attempt {attempt})"
                ))),
            }
        })
    }
}
