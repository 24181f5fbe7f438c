//! Catalog's messages (the api writes the catalog and tells others what happened).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::messaging::Message;

/// `evt.catalog.build_made_current.<product>`: a build became the current one of its
/// (product, platform) (`setCurrentBuild`, or a chunked build pushed with `makeCurrent`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildMadeCurrent {
    pub build_id: Uuid,
    pub product_id: Uuid,
    pub publisher_id: Uuid,
    pub platform: String,
    pub version_label: String,
}

impl Message for BuildMadeCurrent {
    const TYPE: &'static str = "catalog.build_made_current";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.catalog.build_made_current.{}", self.product_id)
    }
}
