//! Reconciliation (issue 17): a periodic pass that recomputes what other state is derived from
//! and compares. Where the derived side is wrong (a cached balance in Redis) it is repaired;
//! where the source of truth itself is in question (a wallet row against its ledger, a paid
//! line without its entitlement, stock against its reservations) it is only reported: to the
//! admins ([`DriftFound`] → a notification each) and in the reconciler's own findings, never
//! rewritten.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::messaging::Message;

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DriftKind {
    /// A cached balance in Redis that is not the wallet's (repaired).
    CachedBalance,
    /// A wallet whose balance or version is not what its ledger adds up to (reported).
    WalletLedger,
    /// A paid digital line of a settled order with no entitlement (reported).
    MissingEntitlement,
    /// An active entitlement from an order that was never debited (reported).
    UnpaidEntitlement,
    /// An edition whose reserved count is not its live reservations, or exceeds its stock
    /// (reported).
    Stock,
}

impl DriftKind {
    pub const ALL: [DriftKind; 5] = [
        DriftKind::CachedBalance,
        DriftKind::WalletLedger,
        DriftKind::MissingEntitlement,
        DriftKind::UnpaidEntitlement,
        DriftKind::Stock,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DriftKind::CachedBalance => "CACHED_BALANCE",
            DriftKind::WalletLedger => "WALLET_LEDGER",
            DriftKind::MissingEntitlement => "MISSING_ENTITLEMENT",
            DriftKind::UnpaidEntitlement => "UNPAID_ENTITLEMENT",
            DriftKind::Stock => "STOCK",
        }
    }

    pub fn parse(s: &str) -> Option<DriftKind> {
        DriftKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the reconciler repairs it (the derived side is wrong) or only reports it.
    pub const fn repaired(self) -> bool {
        matches!(self, DriftKind::CachedBalance)
    }

    /// In words, for the admins.
    pub const fn words(self) -> &'static str {
        match self {
            DriftKind::CachedBalance => "a cached wallet balance differed from the wallet",
            DriftKind::WalletLedger => "a wallet does not add up to its ledger",
            DriftKind::MissingEntitlement => "a paid game is missing from a library",
            DriftKind::UnpaidEntitlement => "a library holds a game nobody paid for",
            DriftKind::Stock => "reserved stock does not match the open reservations",
        }
    }
}

/// `evt.reconcile.drift_found.<finding>`: a reconciliation found something that needs a
/// person (notification tells each admin of `admins`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftFound {
    pub finding_id: Uuid,
    pub run_id: Uuid,
    pub kind: DriftKind,
    /// What it is about: a wallet's account, an order, an edition (an id, for the admins).
    pub subject: String,
    /// What was expected and what was found, in words.
    pub detail: String,
    pub admins: Vec<Uuid>,
}

impl Message for DriftFound {
    const TYPE: &'static str = "reconcile.drift_found";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.reconcile.drift_found.{}", self.finding_id)
    }
}
