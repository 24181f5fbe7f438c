//! sea-orm entities of the `catalog` schema (written by the api only).

pub mod product {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "product")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub publisher_id: Uuid,
        #[sea_orm(unique)]
        pub slug: String,
        pub title: String,
        pub description: String,
        pub genres: Vec<String>,
        pub platforms: Vec<String>,
        pub tags: Vec<String>,
        pub release_date: Option<Date>,
        pub age_rating: Option<i16>,
        pub cover_image: Option<String>,
        pub screenshots: Vec<String>,
        pub system_requirements: String,
        pub status: String,
        pub moderation_reason: Option<String>,
        pub moderated_by: Option<Uuid>,
        /// The cheapest price a buyer pays now (after a running discount).
        pub price_from_minor: Option<i64>,
        pub currency: String,
        pub rating_count: i32,
        pub rating_sum: i32,
        pub published_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// The cheapest edition's price before discounts.
        pub list_price_from_minor: Option<i64>,
        /// The deepest discount running on an edition; `None` when nothing is on sale.
        pub sale_percent: Option<i16>,
        /// When the first running discount ends.
        pub sale_ends_at: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod discount {
    //! A timed discount on an edition (migration `catalog_discounts`).

    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "discount")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub edition_id: Uuid,
        pub product_id: Uuid,
        pub percent: i16,
        pub starts_at: DateTimeUtc,
        pub ends_at: DateTimeUtc,
        /// How far the product's listing followed the window: `pending`, `started`, `ended`.
        pub applied: String,
        pub created_by: Uuid,
        pub created_at: DateTimeUtc,
        pub cancelled_at: Option<DateTimeUtc>,
        pub ended_early_by: Option<Uuid>,
        pub ended_early_reason: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod bundle {
    //! A publisher's editions sold together at a price of their own (migration `bundles`).

    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "bundle")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub publisher_id: Uuid,
        #[sea_orm(unique)]
        pub slug: String,
        pub title: String,
        pub description: String,
        /// What the whole bundle costs, in the store's base currency, before tax.
        pub price_minor: i64,
        pub currency: String,
        /// `draft`, `published` or `archived`.
        pub status: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub published_at: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod bundle_item {
    //! One edition of a bundle.

    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "bundle_item")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub bundle_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub edition_id: Uuid,
        /// The item's place in the bundle, from 0.
        pub position: i16,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod facet_listing {
    //! The storefront sort keys of a published product under each of its genres, platforms
    //! and edition kinds (migration `catalog_facet_listing`): a projection of `product` kept
    //! by a trigger in the transaction of every product write, so nothing writes it and the
    //! catalog's searches read it with their own SQL (`api::catalog::search`).

    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "facet_listing")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub product_id: Uuid,
        /// `genre`, `platform` or `kind`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub facet: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub value: String,
        pub listed_at: DateTimeUtc,
        pub price_sort: i64,
        pub rating_avg: f64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod edition {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "edition")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub product_id: Uuid,
        pub kind: String,
        pub name: String,
        #[sea_orm(unique)]
        pub sku: String,
        pub price_minor: i64,
        pub currency: String,
        pub weight_grams: Option<i32>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod edition_price {
    //! A publisher's price of an edition in one currency (migration `regional_prices`).
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "edition_price")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub edition_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub currency: String,
        pub amount_minor: i64,
        pub updated_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod review {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "review")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub product_id: Uuid,
        pub author_id: Uuid,
        pub rating: i16,
        pub body: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod wishlist {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "wishlist")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub product_id: Uuid,
        pub added_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod build {
    //! A build of a product: its file is uploaded to the object store (`UPLOADING` until its
    //! bytes arrived, then `READY` with their SHA-256); one `READY` build per (product,
    //! platform) is current. An upload reserves its build with a lease (`upload_lease`,
    //! `upload_lease_until`) instead of holding a row lock for the whole transfer.

    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "build")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub product_id: Uuid,
        pub platform: String,
        pub version_label: String,
        pub release_notes: String,
        pub file_name: String,
        pub size_bytes: i64,
        /// `UPLOADING` or `READY`.
        pub status: String,
        pub sha256: Option<String>,
        pub is_current: bool,
        pub created_by: Uuid,
        pub created_at: DateTimeUtc,
        pub uploaded_at: Option<DateTimeUtc>,
        pub upload_lease: Option<Uuid>,
        pub upload_lease_until: Option<DateTimeUtc>,
        /// `FILE` (one uploaded file) or `CHUNKED` (a manifest of chunks, see `build_file`).
        pub kind: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod chunk {
    //! A chunk of a product's chunked builds: stored once per product, zstd-compressed, at
    //! `chunks/{product}/{id}` in the object store; `id` is the SHA-256 of its uncompressed
    //! bytes. `touched_at`: last uploaded or claimed by a push (the collection's grace period
    //! counts from it).

    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "chunk")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub product_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub size_bytes: i32,
        pub stored_bytes: i32,
        pub created_at: DateTimeUtc,
        pub touched_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod build_file {
    //! A file of a chunked build, at `position` in its manifest.

    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "build_file")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub build_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i32,
        pub path: String,
        pub size_bytes: i64,
        pub mode: i32,
        pub sha256: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod build_chunk {
    //! The `seq`-th chunk of the file at `position` of a chunked build.

    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "build_chunk")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub build_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i32,
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i32,
        pub product_id: Uuid,
        pub chunk_id: String,
        pub offset_bytes: i64,
        pub size_bytes: i32,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod download {
    //! The downloads of an entitlement: the first build and time a link was handed out for it,
    //! then how many links and the last time (a link counts as the download).

    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "download")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub entitlement_id: Uuid,
        pub account_id: Uuid,
        pub order_id: Option<Uuid>,
        pub build_id: Uuid,
        pub first_at: DateTimeUtc,
        pub links: i32,
        pub last_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod refund_gate {
    //! The refund gate of an order (the api is its only writer): its first download and a
    //! refund or cancellation that takes its digital lines back exclude each other. Each side
    //! changes the row with one conditional upsert, so of the two sent at the same instant
    //! exactly one wins.

    use sea_orm::entity::prelude::*;
    use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};

    /// One row per order that was downloaded or claimed: `claim` (`REFUND` or `CANCEL`) and
    /// `claimed_at` are set together.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "refund_gate")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: Uuid,
        pub downloaded_at: Option<DateTimeUtc>,
        pub claim: Option<String>,
        pub claimed_at: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}

    /// Claims `order` for `claim` (`REFUND` or `CANCEL`), in one statement: from now on no
    /// download link is handed out for it. With `unless_downloaded`, only an order never
    /// downloaded is claimed. `false` when nothing was claimed (it was downloaded).
    pub async fn claim(
        db: &impl ConnectionTrait,
        order: Uuid,
        claim: &str,
        unless_downloaded: bool,
    ) -> Result<bool, DbErr> {
        let mut on_conflict = OnConflict::column(Column::OrderId);
        on_conflict.update_columns([Column::Claim, Column::ClaimedAt]);
        if unless_downloaded {
            on_conflict.action_and_where(Expr::col((Entity, Column::DownloadedAt)).is_null());
        }
        // `claimed_at` is the database's clock (`now()`), as `downloaded_at` below.
        let upsert = Query::insert()
            .into_table(Entity.table_ref())
            .columns([Column::OrderId, Column::Claim, Column::ClaimedAt])
            .values_panic([order.into(), claim.into(), Expr::current_timestamp()])
            .on_conflict(on_conflict)
            .to_owned();
        // A row inserted or updated is a claim; a conflict the WHERE refused changes none.
        Ok(db.execute(&upsert).await?.rows_affected() > 0)
    }

    /// Records the first download of `order` unless a refund or a cancellation claimed it, in
    /// one statement; `false` when one did (then no link may be handed out). A claim whose
    /// refund was denied, or whose cancellation lost to the parcel or to the shipping deadline,
    /// is void and cleared here.
    pub async fn first_download(db: &impl ConnectionTrait, order: Uuid) -> Result<bool, DbErr> {
        // Raw: the upsert's WHERE reads the refund request and the shipment (EXISTS on two other
        // contexts' tables); the race with `claim` is decided by exactly this one statement.
        let recorded = db
            .query_one_raw(crate::sql::stmt(
                "INSERT INTO catalog.refund_gate (order_id, downloaded_at) VALUES ($1, now()) \
                 ON CONFLICT (order_id) DO UPDATE \
                 SET downloaded_at = coalesce(refund_gate.downloaded_at, EXCLUDED.downloaded_at), \
                     claim = NULL, claimed_at = NULL \
                 WHERE refund_gate.claim IS NULL \
                    OR (refund_gate.claim = 'REFUND' AND EXISTS (SELECT 1 FROM ordering.refund_request r \
                        WHERE r.order_id = $1 AND r.status = 'DENIED')) \
                    OR (refund_gate.claim = 'CANCEL' AND EXISTS (SELECT 1 FROM fulfillment.shipment s \
                        WHERE s.order_id = $1 AND (s.status = 'SHIPPED' \
                           OR (s.status = 'RELEASED' AND s.release_reason IS DISTINCT FROM $2)))) \
                 RETURNING order_id",
                [
                    order.into(),
                    crate::fulfillment::CANCELLED_BY_BUYER.to_owned().into(),
                ],
            ))
            .await?
            .is_some();
        Ok(recorded)
    }
}

pub mod stock_command {
    //! The stock commands publishers sent (the api is the only writer), by message id: whose
    //! command it is, for the publisher asking whether fulfillment applied it.

    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "catalog", table_name = "stock_command")]
    pub struct Model {
        /// The id of the `cmd.fulfillment.adjust_stock` message.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub publisher_id: Uuid,
        pub edition_id: Uuid,
        /// `SET` or `ADD`.
        pub mode: String,
        pub quantity: i64,
        pub sent_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

// The catalog's outbox (the api's): events of the catalog (a build made current), written in
// the transaction of the change and published by the api's relay.
crate::messaging::outbox_entity!("catalog");
