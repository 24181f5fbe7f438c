//! Webhooks' messages: the api's commands about endpoints and deliveries (the webhooks
//! participant applies them: it alone writes the `webhooks` schema), and what it tells others.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::EventType;
use crate::messaging::Message;

/// `cmd.webhooks.register_endpoint`: a publisher registers an endpoint (the api checked the URL
/// and chose the id). The participant draws its signing secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterEndpoint {
    pub endpoint_id: Uuid,
    pub publisher_id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<EventType>,
}

impl Message for RegisterEndpoint {
    const TYPE: &'static str = "webhooks.register_endpoint";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.webhooks.register_endpoint".to_owned()
    }
}

/// `cmd.webhooks.update_endpoint`: changes what is given; enabling a disabled endpoint clears
/// its failure record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateEndpoint {
    pub endpoint_id: Uuid,
    pub publisher_id: Uuid,
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
}

impl Message for UpdateEndpoint {
    const TYPE: &'static str = "webhooks.update_endpoint";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.webhooks.update_endpoint".to_owned()
    }
}

/// `cmd.webhooks.rotate_secret`: a new signing secret; the previous one keeps signing (a
/// second signature) for the overlap. `rotation_id` lets the api find the secret it caused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateSecret {
    pub endpoint_id: Uuid,
    pub publisher_id: Uuid,
    pub rotation_id: Uuid,
}

impl Message for RotateSecret {
    const TYPE: &'static str = "webhooks.rotate_secret";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.webhooks.rotate_secret".to_owned()
    }
}

/// `cmd.webhooks.delete_endpoint`: no more deliveries; the log goes with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteEndpoint {
    pub endpoint_id: Uuid,
    pub publisher_id: Uuid,
}

impl Message for DeleteEndpoint {
    const TYPE: &'static str = "webhooks.delete_endpoint";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.webhooks.delete_endpoint".to_owned()
    }
}

/// `cmd.webhooks.redeliver`: sends a delivery again now, with a fresh schedule (same
/// `webhook-id`, a fresh timestamp and signature).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redeliver {
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    pub publisher_id: Uuid,
}

impl Message for Redeliver {
    const TYPE: &'static str = "webhooks.redeliver";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.webhooks.redeliver".to_owned()
    }
}

/// `evt.webhooks.endpoint_disabled.<endpoint>`: an endpoint kept failing and was disabled
/// (notification tells its owner).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointDisabled {
    pub endpoint_id: Uuid,
    pub publisher_id: Uuid,
    pub url: String,
    /// Why, in words.
    pub reason: String,
}

impl Message for EndpointDisabled {
    const TYPE: &'static str = "webhooks.endpoint_disabled";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.webhooks.endpoint_disabled.{}", self.endpoint_id)
    }
}
