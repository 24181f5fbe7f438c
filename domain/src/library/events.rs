//! Library's messages: grants, gift key batches and redemptions.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::RedeemRefusal;
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
