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
        pub price_from_minor: Option<i64>,
        pub currency: String,
        pub rating_count: i32,
        pub rating_sum: i32,
        pub published_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
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
