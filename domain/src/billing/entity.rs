//! sea-orm entities of the `billing` schema (written by the billing participant; read by the
//! api), and the statements on them that sea-orm cannot say.

pub mod wallet {
    use sea_orm::entity::prelude::*;

    /// An account's wallet. `balance_minor` is never negative (a CHECK) and `version` counts
    /// its ledger entries.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "billing", table_name = "wallet")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: Uuid,
        pub currency: String,
        pub balance_minor: i64,
        pub version: i64,
        pub frozen: bool,
        pub updated_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ledger_entry {
    use sea_orm::entity::prelude::*;

    /// One movement of a wallet. Append-only (a trigger refuses updates and deletes); at most
    /// one per (kind, reference).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "billing", table_name = "ledger_entry")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub account_id: Uuid,
        pub kind: String,
        pub reference: Uuid,
        pub amount_minor: i64,
        pub balance_after: i64,
        pub version: i64,
        pub created_at: DateTimeUtc,
        /// The currency of the movement (the wallet's when it was made).
        pub currency: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod top_up {
    use sea_orm::entity::prelude::*;

    /// A settled top-up (`CREDITED` or `DECLINED`).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "billing", table_name = "top_up")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub account_id: Uuid,
        pub amount_minor: i64,
        pub currency: String,
        pub card_last4: String,
        pub status: String,
        pub reason: Option<String>,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod revenue_entry {
    use sea_orm::FromQueryResult;
    use sea_orm::entity::prelude::*;

    /// A publisher's share of a sale (`sale`) or its reversal (`reversal`). Append-only; at
    /// most one of each per (order, publisher).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "billing", table_name = "revenue_entry")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub publisher_id: Uuid,
        pub order_id: Uuid,
        pub kind: String,
        pub gross_minor: i64,
        pub fee_minor: i64,
        pub net_minor: i64,
        pub currency: String,
        pub fee_bps: i32,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}

    /// A publisher's revenue on one day (UTC): sales and refunds, net of the platform fee.
    #[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
    pub struct Day {
        pub day: Date,
        pub gross_minor: i64,
        pub fee_minor: i64,
        pub net_minor: i64,
        pub sales: i64,
        pub refunds: i64,
    }

    /// A publisher's revenue of all time.
    #[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
    pub struct Totals {
        pub gross_minor: i64,
        pub fee_minor: i64,
        pub net_minor: i64,
        /// What reversals took back (positive).
        pub refunded_minor: i64,
        pub sales: i64,
        pub refunds: i64,
    }

    /// The revenue of `publisher` in `currency` on each of the last `days` days (UTC), every
    /// day present (zero when nothing happened), oldest first.
    pub async fn by_day(
        db: &impl ConnectionTrait,
        publisher: Uuid,
        days: i32,
        currency: &str,
    ) -> Result<Vec<Day>, DbErr> {
        // Raw: the days come from generate_series and the counts are FILTER aggregates.
        Day::find_by_statement(crate::sql::stmt(
            "SELECT d::date AS day, \
                    COALESCE(sum(e.gross_minor), 0)::bigint AS gross_minor, \
                    COALESCE(sum(e.fee_minor), 0)::bigint AS fee_minor, \
                    COALESCE(sum(e.net_minor), 0)::bigint AS net_minor, \
                    count(*) FILTER (WHERE e.kind = 'sale') AS sales, \
                    count(*) FILTER (WHERE e.kind = 'reversal') AS refunds \
             FROM generate_series((now() AT TIME ZONE 'UTC')::date - ($2::int - 1), (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS d \
             LEFT JOIN billing.revenue_entry e ON e.publisher_id = $1 AND e.currency = $3 \
                  AND (e.created_at AT TIME ZONE 'UTC')::date = d::date \
             GROUP BY d ORDER BY d",
            [publisher.into(), days.into(), currency.into()],
        ))
        .all(db)
        .await
    }

    /// The revenue of `publisher` in `currency` of all time.
    pub async fn totals(
        db: &impl ConnectionTrait,
        publisher: Uuid,
        currency: &str,
    ) -> Result<Totals, DbErr> {
        // Raw: sales, refunds and what was refunded are FILTER aggregates.
        Totals::find_by_statement(crate::sql::stmt(
            "SELECT COALESCE(sum(gross_minor), 0)::bigint AS gross_minor, \
                    COALESCE(sum(fee_minor), 0)::bigint AS fee_minor, \
                    COALESCE(sum(net_minor), 0)::bigint AS net_minor, \
                    COALESCE(-sum(net_minor) FILTER (WHERE kind = 'reversal'), 0)::bigint AS refunded_minor, \
                    count(*) FILTER (WHERE kind = 'sale') AS sales, \
                    count(*) FILTER (WHERE kind = 'reversal') AS refunds \
             FROM billing.revenue_entry WHERE publisher_id = $1 AND currency = $2",
            [publisher.into(), currency.into()],
        ))
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("an aggregate returned no row".to_owned()))
    }

    /// The currencies `publisher` has revenue in, the most sales first.
    pub async fn currencies(
        db: &impl ConnectionTrait,
        publisher: Uuid,
    ) -> Result<Vec<String>, DbErr> {
        let rows = db
            .query_all_raw(crate::sql::stmt(
                "SELECT currency FROM billing.revenue_entry WHERE publisher_id = $1 \
                 GROUP BY currency ORDER BY count(*) DESC, currency",
                [publisher.into()],
            ))
            .await?;
        rows.iter().map(|r| r.try_get("", "currency")).collect()
    }
}

crate::messaging::messaging_entities!("billing");
