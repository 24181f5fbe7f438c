//! Notification's messages: a notification was stored; an account read its notifications.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::NotificationKind;
use crate::messaging::Message;

/// `evt.notification.created.<account>`: a notification was stored (feeds the live push).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationCreated {
    pub notification_id: Uuid,
    pub account_id: Uuid,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub order_id: Option<Uuid>,
}

impl Message for NotificationCreated {
    const TYPE: &'static str = "notification.created";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.notification.created.{}", self.account_id)
    }
}

/// `cmd.notification.mark_read`: the account has read everything created up to `up_to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRead {
    pub account_id: Uuid,
    pub up_to: chrono::DateTime<chrono::Utc>,
}

impl Message for MarkRead {
    const TYPE: &'static str = "notification.mark_read";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.notification.mark_read".to_owned()
    }
}
