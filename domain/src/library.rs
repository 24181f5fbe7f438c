//! Library: entitlements (what an account owns) and their license keys.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::messaging::Message;

/// `evt.library.items_granted.<order>`: every digital line of the order is in the buyer's
/// library (after the payment), or, with `physical`, every physical line (after dispatch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemsGranted {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub entitlement_ids: Vec<Uuid>,
    /// The physical lines (granted on `ShipmentDispatched`).
    #[serde(default)]
    pub physical: bool,
}

impl Message for ItemsGranted {
    const TYPE: &'static str = "library.items_granted";
    /// 2: `physical`.
    const VERSION: u32 = 2;
    fn subject(&self) -> String {
        format!("evt.library.items_granted.{}", self.order_id)
    }
}

/// Largest batch of gift keys generated at once.
pub const MAX_GIFT_KEYS: i32 = 1000;

/// `cmd.library.generate_gift_keys`: a publisher asks for a batch of keys for one edition of
/// their product (the api checked the ownership). The batch id comes from the api, so a
/// repeated command makes one batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerateGiftKeys {
    pub batch_id: Uuid,
    pub publisher_id: Uuid,
    pub product_id: Uuid,
    pub edition_id: Uuid,
    pub quantity: i32,
    pub label: String,
}

impl Message for GenerateGiftKeys {
    const TYPE: &'static str = "library.generate_gift_keys";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.library.generate_gift_keys".to_owned()
    }
}

/// `evt.library.gift_keys_generated.<batch>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftKeysGenerated {
    pub batch_id: Uuid,
    pub publisher_id: Uuid,
    pub product_id: Uuid,
    pub quantity: i32,
}

impl Message for GiftKeysGenerated {
    const TYPE: &'static str = "library.gift_keys_generated";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.library.gift_keys_generated.{}", self.batch_id)
    }
}

/// `cmd.library.redeem_key`: someone holding a gift key adds its product to their library.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemKey {
    /// Chosen by the api; the outcome event carries it.
    pub redemption_id: Uuid,
    pub account_id: Uuid,
    pub key: String,
}

impl Message for RedeemKey {
    const TYPE: &'static str = "library.redeem_key";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.library.redeem_key".to_owned()
    }
}

/// Why a key was not redeemed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RedeemRefusal {
    /// No such gift key.
    UnknownKey,
    /// Someone (perhaps the same account) redeemed it already.
    AlreadyRedeemed,
    /// The account owns the product already; the key stays unused.
    AlreadyOwned,
}

impl RedeemRefusal {
    pub const fn as_str(self) -> &'static str {
        match self {
            RedeemRefusal::UnknownKey => "UNKNOWN_KEY",
            RedeemRefusal::AlreadyRedeemed => "ALREADY_REDEEMED",
            RedeemRefusal::AlreadyOwned => "ALREADY_OWNED",
        }
    }
}

/// `evt.library.key_redeemed.<redemption>`: the outcome of a [`RedeemKey`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRedeemed {
    pub redemption_id: Uuid,
    pub account_id: Uuid,
    /// `Ok`: the new entitlement and its product; `Err`: why not.
    pub outcome: Result<(Uuid, Uuid), RedeemRefusal>,
}

impl Message for KeyRedeemed {
    const TYPE: &'static str = "library.key_redeemed";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.library.key_redeemed.{}", self.redemption_id)
    }
}

/// Letters and digits that cannot be mistaken for each other (no 0/O, 1/I/L, 5/S, 8/B, 2/Z).
pub const KEY_ALPHABET: &[u8] = b"ACDEFGHJKMNPQRTUVWXY34679";

/// A license key `XXXXX-XXXXX-XXXXX-XXXXX` made from 20 random bytes (each byte picks a
/// symbol; the slight modulo bias is irrelevant for keys that are also checked for uniqueness).
pub fn license_key(random: [u8; 20]) -> String {
    let mut out = String::with_capacity(23);
    for (i, b) in random.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(char::from(
            KEY_ALPHABET[usize::from(*b) % KEY_ALPHABET.len()],
        ));
    }
    out
}

/// Whether `key` has the shape of a license key.
pub fn is_license_key(key: &str) -> bool {
    let groups: Vec<&str> = key.split('-').collect();
    groups.len() == 4
        && groups
            .iter()
            .all(|g| g.len() == 5 && g.bytes().all(|b| KEY_ALPHABET.contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keys_are_readable(bytes in proptest::array::uniform20(any::<u8>())) {
            let key = license_key(bytes);
            prop_assert!(is_license_key(&key), "{}", key);
        }
    }
}
