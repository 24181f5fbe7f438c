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
