//! Library's pure types and rules: gift key limits, why a redemption is refused, and the
//! shape of license keys.

use serde::{Deserialize, Serialize};

/// Largest batch of gift keys generated at once.
pub const MAX_GIFT_KEYS: i32 = 1000;

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
