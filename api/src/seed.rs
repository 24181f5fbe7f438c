//! Demo data for `api seed-demo`: a realistic catalog of 160 products from the two demo
//! publishers, with digital and physical editions, reviews, and stock commands for fulfillment.
//! Deterministic and idempotent: products are keyed by slug, and a second run adds nothing.
//! [`pictures`] gives each demo product without a cover its drawn cover and screenshots
//! (`demo-art`).

use anyhow::Context;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use demo_art::Rng;
use domain::catalog::entity::{discount, edition, product, review};
use domain::catalog::{GENRES, PLATFORMS, ProductStatus, slugify};
use domain::fulfillment::{AdjustStock, StockMode};
use domain::identity::entity::account;
use domain::identity::{AccountStatus, Role};
use domain::messaging::Envelope;
use domain::money::Currency;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, Func, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, JoinType, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait, Value,
};
use uuid::Uuid;

use crate::infra::bus::Bus;

const FIRST: [&str; 20] = [
    "Crimson", "Silent", "Iron", "Hollow", "Neon", "Last", "Frozen", "Wild", "Hidden", "Broken",
    "Solar", "Emerald", "Shadow", "Electric", "Ancient", "Lucky", "Velvet", "Quantum", "Paper",
    "Midnight",
];
const SECOND: [&str; 20] = [
    "Frontier", "Harbor", "Kingdom", "Circuit", "Orchard", "Odyssey", "Citadel", "Garden",
    "Protocol", "Voyage", "Foundry", "Legends", "Outpost", "Atlas", "Canvas", "Tides", "Engine",
    "Archive", "Summit", "Carnival",
];
const TAGS: [&str; 24] = [
    "open world",
    "co-op",
    "singleplayer",
    "multiplayer",
    "pixel art",
    "story rich",
    "roguelike",
    "sandbox",
    "crafting",
    "turn-based",
    "fantasy",
    "sci-fi",
    "cozy",
    "difficult",
    "relaxing",
    "local co-op",
    "controller support",
    "offline",
    "cross-platform",
    "moddable",
    "atmospheric",
    "hand-drawn",
    "procedural",
    "early access",
];
const SOFTWARE: [&str; 4] = ["productivity", "developer-tools", "creative", "education"];

/// `min` to `max` different items of `items`.
fn pick_some<'a>(rng: &mut Rng, items: &[&'a str], min: usize, max: usize) -> Vec<&'a str> {
    let n = min + rng.below(max - min + 1);
    let mut out: Vec<&str> = Vec::new();
    while out.len() < n {
        let item = items[rng.below(items.len())];
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

async fn account_id(db: &DatabaseConnection, email: &str) -> anyhow::Result<Option<Uuid>> {
    Ok(account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .filter(account::Column::EmailNormalized.eq(email))
        .into_tuple()
        .one(db)
        .await?)
}

/// `cardinality(screenshots) = 0`.
fn without_screenshots() -> Expr {
    // Here only: `ExprTrait` in scope makes `Iterator::min` ambiguous.
    use sea_orm::sea_query::ExprTrait as _;
    Expr::expr(
        Func::cust("cardinality").arg(Expr::col((product::Entity, product::Column::Screenshots))),
    )
    .eq(0)
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Products of the demo catalog.
pub const DEMO_PRODUCTS: usize = 160;

/// The title of demo product `i`.
fn demo_title(i: usize) -> String {
    let title = format!("{} {}", FIRST[i % 20], SECOND[(i / 20 + i * 7) % 20]);
    if i >= 20 * 20 {
        format!("{title} {i}")
    } else {
        title
    }
}

/// The cover and the screenshots of `title`, as PNG (smaller than lossless WebP for these).
fn draw_pictures(title: &str) -> Vec<(crate::catalog::ImageSlot, Vec<u8>)> {
    use crate::catalog::ImageSlot;
    use crate::infra::objects::{ImageFormat, encode};
    std::iter::once((ImageSlot::Cover, demo_art::cover(title)))
        .chain(
            (0..demo_art::SCREENSHOTS)
                .map(|n| (ImageSlot::Screenshot, demo_art::screenshot(title, n))),
        )
        .filter_map(|(slot, img)| {
            encode(&image::DynamicImage::ImageRgb8(img), ImageFormat::Png).map(|b| (slot, b))
        })
        .collect()
}

/// Gives every demo product that has no cover yet its drawn cover and screenshots, stored
/// through [`crate::catalog::store_image`] as its publisher's upload would be (so with the
/// smaller copies of every upload), at most `limit` of them, newest first. Draws on the
/// blocking pool, `parallel` products at once. Returns how many products got pictures.
pub async fn pictures(
    db: &DatabaseConnection,
    objects: std::sync::Arc<dyn object_store::ObjectStore>,
    max_image_bytes: usize,
    limit: usize,
    parallel: usize,
) -> anyhow::Result<usize> {
    use futures::{StreamExt, TryStreamExt};
    let slugs: Vec<String> = (0..DEMO_PRODUCTS)
        .map(|i| slugify(&demo_title(i)))
        .collect();
    // Demo products with neither a cover nor a screenshot, with their publisher's name.
    let rows: Vec<(Uuid, String, Uuid, String)> = product::Entity::find()
        .select_only()
        .columns([
            product::Column::Id,
            product::Column::Title,
            product::Column::PublisherId,
        ])
        .column(account::Column::DisplayName)
        .join(
            JoinType::InnerJoin,
            product::Entity::belongs_to(account::Entity)
                .from(product::Column::PublisherId)
                .to(account::Column::Id)
                .into(),
        )
        .filter(product::Column::Slug.is_in(slugs))
        .filter(product::Column::CoverImage.is_null())
        .filter(without_screenshots())
        .order_by_desc(product::Column::PublishedAt)
        .order_by_asc(product::Column::Slug)
        .limit(u64::try_from(limit).unwrap_or(u64::MAX))
        .into_tuple()
        .all(db)
        .await?;
    let todo: Vec<_> = rows
        .into_iter()
        .map(|(id, title, publisher_id, name)| {
            (
                id,
                title,
                crate::infra::auth::Principal {
                    id: publisher_id,
                    role: Role::Publisher,
                    name,
                },
            )
        })
        .collect();
    let done = futures::stream::iter(todo)
        .map(|(id, title, publisher)| {
            let objects = objects.clone();
            async move {
                let drawn = tokio::task::spawn_blocking(move || draw_pictures(&title))
                    .await
                    .context("drawing pictures")?;
                for (slot, bytes) in drawn {
                    crate::catalog::store_image(
                        db,
                        objects.as_ref(),
                        max_image_bytes,
                        &publisher,
                        id,
                        slot,
                        bytes,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("storing a picture of product {id}: {e}"))?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(parallel.max(1))
        .try_fold(0usize, |n, ()| async move { Ok(n + 1) })
        .await?;
    Ok(done)
}

/// Seeds the demo catalog; returns how many products were created by this run.
pub async fn catalog(
    db: &DatabaseConnection,
    bus: &Bus,
    currency: Currency,
) -> anyhow::Result<usize> {
    let publishers = [
        ("NEB", account_id(db, "nebula@store.test").await?),
        ("ATL", account_id(db, "atlas@store.test").await?),
    ];
    let reviewers = [
        account_id(db, "alice@store.test").await?,
        account_id(db, "bob@store.test").await?,
    ];
    let game_genres: Vec<&str> = GENRES
        .iter()
        .map(|(g, _)| *g)
        .filter(|g| !SOFTWARE.contains(g))
        .collect();
    let platforms: Vec<&str> = PLATFORMS.iter().map(|(p, _)| *p).collect();
    let mut created = 0;
    let mut stock = Vec::new();
    let txn = db.begin().await?;
    for i in 0..DEMO_PRODUCTS {
        let mut rng = Rng(0x5EED_0000 + i as u64);
        let (code, publisher) = publishers[i % 2];
        let Some(publisher) = publisher else { continue };
        let title = demo_title(i);
        let software = i % 9 == 0;
        let genres = if software {
            pick_some(&mut rng, &SOFTWARE, 1, 2)
        } else {
            pick_some(&mut rng, &game_genres, 1, 3)
        };
        let plats = pick_some(&mut rng, &platforms, 1, 4);
        let tags = pick_some(&mut rng, &TAGS, 2, 6);
        let slug = slugify(&title);
        let description = format!(
            "**{title}** is a {} {} for {}.\n\n\
             - {}\n- {}\n\nMade by a small team that cares about every detail.",
            tags[0],
            if software { "tool" } else { "game" },
            plats.join(", "),
            tags.iter().skip(1).copied().collect::<Vec<_>>().join(", "),
            if software {
                "Works offline"
            } else {
                "Hours of play"
            },
        );
        let release = NaiveDate::from_ymd_opt(
            2015 + (i % 12) as i32,
            1 + (i % 12) as u32,
            1 + (i % 28) as u32,
        );
        let published_at = Utc
            .with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
            .single()
            .unwrap_or_else(Utc::now)
            - Duration::hours(i as i64 * 7);
        let age = [3i16, 7, 12, 16, 18][rng.below(5)];
        let id = domain::id::new_id();
        // A product whose slug exists is from an earlier run: it is left as it is. The columns
        // not set here are the table's defaults.
        let inserted = product::Entity::insert(product::ActiveModel {
            id: Set(id),
            publisher_id: Set(publisher),
            slug: Set(slug.clone()),
            title: Set(title.clone()),
            description: Set(description),
            genres: Set(owned(&genres)),
            platforms: Set(owned(&plats)),
            tags: Set(owned(&tags)),
            release_date: Set(release),
            age_rating: Set(Some(age)),
            system_requirements: Set("- 64-bit processor\n- 8 GB RAM\n- 10 GB free space".into()),
            status: Set(ProductStatus::Published.as_str().to_owned()),
            currency: Set(currency.as_str().to_owned()),
            published_at: Set(Some(published_at)),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::column(product::Column::Slug)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            continue;
        }
        created += 1;
        let base = 499 + 100 * rng.below(65) as i64;
        let mut editions = vec![("digital", "Standard", base, None)];
        if rng.chance(40) {
            editions.push(("digital", "Deluxe", base + 1000, None));
        }
        if !software && rng.chance(35) {
            let weight = 800 + 100 * rng.below(18) as i32;
            editions.push((
                "physical",
                "Collector's Box",
                base + 4000 + 500 * rng.below(9) as i64,
                Some(weight),
            ));
        }
        // What the product shows: the sum and count of its ratings (its prices below).
        let mut rating_count = 0i32;
        let mut rating_sum = 0i32;
        for (n, (kind, name, price, weight)) in editions.into_iter().enumerate() {
            let edition_id = domain::id::new_id();
            let on_sale = n == 0 && i % 6 == 1;
            let sale_soon = n == 0 && i % 12 == 5;
            edition::Entity::insert(edition::ActiveModel {
                id: Set(edition_id),
                product_id: Set(id),
                kind: Set(kind.to_owned()),
                name: Set(name.to_owned()),
                sku: Set(format!("{code}-{i:04}-{n}")),
                price_minor: Set(price),
                currency: Set(currency.as_str().to_owned()),
                weight_grams: Set(weight),
                ..Default::default()
            })
            .exec_without_returning(&txn)
            .await?;
            // Every sixth product is on sale (for two to four weeks from the seed), and a few
            // more go on sale in two days: the storefront shows both.
            if on_sale || sale_soon {
                let now = Utc::now();
                let starts = if on_sale {
                    now
                } else {
                    now + Duration::days(2)
                };
                let percent = [10i16, 20, 25, 33, 40, 50, 60, 75][rng.below(8)];
                discount::Entity::insert(discount::ActiveModel {
                    id: Set(domain::id::new_id()),
                    edition_id: Set(edition_id),
                    product_id: Set(id),
                    percent: Set(percent),
                    starts_at: Set(starts),
                    ends_at: Set(starts + Duration::days(14 + rng.below(15) as i64)),
                    applied: Set(if on_sale { "started" } else { "pending" }.to_owned()),
                    created_by: Set(publisher),
                    created_at: Set(now),
                    ..Default::default()
                })
                .exec_without_returning(&txn)
                .await?;
            }
            if kind == "physical" {
                stock.push((edition_id, id, publisher, 5 + rng.below(60) as i64));
            }
        }
        for (r, reviewer) in reviewers.iter().enumerate() {
            if let Some(author) = reviewer
                && rng.chance(55)
            {
                let rating = 2 + rng.below(4) as i16;
                review::Entity::insert(review::ActiveModel {
                    id: Set(domain::id::new_id()),
                    product_id: Set(id),
                    author_id: Set(*author),
                    rating: Set(rating),
                    body: Set([
                        "Great fun with friends.",
                        "Beautiful, but a little short.",
                        "Exactly what I hoped for.",
                    ][(i + r) % 3]
                        .to_owned()),
                    ..Default::default()
                })
                .exec_without_returning(&txn)
                .await?;
                rating_count += 1;
                rating_sum += i32::from(rating);
            }
        }
        // The product is new in this transaction, so its editions and reviews are exactly the
        // ones written above.
        crate::catalog::refresh_price_from(&txn, id).await?;
        product::Entity::update_many()
            .col_expr(product::Column::RatingCount, Expr::value(rating_count))
            .col_expr(product::Column::RatingSum, Expr::value(rating_sum))
            .filter(product::Column::Id.eq(id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    // Stock belongs to fulfillment: ask for it with commands, applied by the participant.
    for (edition_id, product_id, publisher_id, quantity) in stock {
        let mut envelope = Envelope::new(
            AdjustStock {
                edition_id,
                product_id,
                publisher_id,
                mode: StockMode::Set,
                quantity,
            },
            edition_id,
            Some(publisher_id),
        );
        // Stable id per edition: a re-published seed command is dropped as a duplicate.
        envelope.id = Uuid::from_u128(edition_id.as_u128() ^ 0x5EED_5EED_5EED_5EED);
        bus.publish(&envelope).await?;
    }
    bundles(db, currency).await?;
    Ok(created)
}

/// A demo bundle: the Standard editions of `numbers` (demo product numbers of publisher `code`)
/// for `percent` of what they cost one by one; `boxed` adds the publisher's first Collector's
/// Box of a product in no demo bundle, so that buying it ships a parcel.
struct DemoBundle {
    slug: &'static str,
    title: &'static str,
    code: &'static str,
    numbers: &'static [usize],
    percent: i64,
    boxed: bool,
}

const DEMO_BUNDLES: [DemoBundle; 4] = [
    DemoBundle {
        slug: "nebula-starter-pack",
        title: "Nebula Starter Pack",
        code: "NEB",
        numbers: &[0, 2, 4],
        percent: 60,
        boxed: false,
    },
    DemoBundle {
        slug: "atlas-collection",
        title: "Atlas Collection",
        code: "ATL",
        numbers: &[1, 3, 5, 7],
        percent: 55,
        boxed: false,
    },
    DemoBundle {
        slug: "nebula-duo",
        title: "Nebula Duo",
        code: "NEB",
        numbers: &[6, 8],
        percent: 70,
        boxed: false,
    },
    DemoBundle {
        slug: "atlas-collectors-set",
        title: "Atlas Collector's Set",
        code: "ATL",
        numbers: &[9, 11],
        percent: 65,
        boxed: true,
    },
];

/// Published bundles of the demo publishers' products ([`DEMO_BUNDLES`]); one whose slug
/// exists is from an earlier run and is left as it is.
async fn bundles(db: &DatabaseConnection, currency: Currency) -> anyhow::Result<()> {
    use domain::catalog::entity::{bundle, bundle_item};
    let txn = db.begin().await?;
    for DemoBundle {
        slug,
        title,
        code,
        numbers,
        percent,
        boxed,
    } in DEMO_BUNDLES
    {
        let mut skus: Vec<String> = numbers.iter().map(|i| format!("{code}-{i:04}-0")).collect();
        if boxed {
            // Of a product in no demo bundle: a buyer of another bundle does not own it yet.
            let standard: Vec<String> = DEMO_BUNDLES
                .iter()
                .filter(|b| b.code == code)
                .flat_map(|b| b.numbers)
                .map(|i| format!("{code}-{i:04}-"))
                .collect();
            let first_box = edition::Entity::find()
                .filter(edition::Column::Sku.starts_with(format!("{code}-")))
                .filter(edition::Column::Kind.eq("physical"))
                .order_by_asc(edition::Column::Sku)
                .all(&txn)
                .await?
                .into_iter()
                .find(|e| !standard.iter().any(|s| e.sku.starts_with(s.as_str())));
            let Some(first_box) = first_box else { continue };
            skus.push(first_box.sku);
        }
        let parts = edition::Entity::find()
            .filter(edition::Column::Sku.is_in(skus.clone()))
            .all(&txn)
            .await?;
        let Some(publisher) =
            product::Entity::find_by_id(parts.first().map(|e| e.product_id).unwrap_or_default())
                .one(&txn)
                .await?
                .map(|p| p.publisher_id)
        else {
            continue;
        };
        if parts.len() != skus.len() {
            continue;
        }
        let total: i64 = parts
            .iter()
            .map(crate::catalog::bundles::part_list_price)
            .sum();
        let id = domain::id::new_id();
        let now = Utc::now();
        let inserted = bundle::Entity::insert(bundle::ActiveModel {
            id: Set(id),
            publisher_id: Set(publisher),
            slug: Set(slug.to_owned()),
            title: Set(title.to_owned()),
            description: Set(format!(
                "{} games of one publisher together, for {percent} % of what they cost one by \
                 one. Own some already? You pay only for the rest.",
                parts.len()
            )),
            price_minor: Set(total * percent / 100),
            currency: Set(currency.as_str().to_owned()),
            status: Set("published".to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            published_at: Set(Some(now)),
        })
        .on_conflict(
            OnConflict::column(bundle::Column::Slug)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            continue;
        }
        // In the order of `numbers`.
        let items = skus.iter().enumerate().filter_map(|(n, sku)| {
            parts
                .iter()
                .find(|e| &e.sku == sku)
                .map(|e| bundle_item::ActiveModel {
                    bundle_id: Set(id),
                    edition_id: Set(e.id),
                    position: Set(i16::try_from(n).unwrap_or(0)),
                })
        });
        bundle_item::Entity::insert_many(items)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Third words of generated titles (the demo's two words alone make only 400 titles).
const THIRD: [&str; 16] = [
    "Legacy",
    "Chronicles",
    "Reborn",
    "Tactics",
    "Online",
    "Origins",
    "Saga",
    "Rising",
    "Unbound",
    "Deluxe",
    "Remastered",
    "Arena",
    "Quest",
    "Tales",
    "Zero",
    "Horizons",
];
/// What generated descriptions say a game is about.
const THEMES: [&str; 16] = [
    "legacy",
    "heists",
    "dungeons",
    "kingdoms",
    "rebellion",
    "memory",
    "voyages",
    "machines",
    "harvests",
    "empires",
    "friendship",
    "revenge",
    "survival",
    "discovery",
    "trade",
    "magic",
];
/// Products generated per statement.
const BULK_CHUNK: i64 = 10_000;

/// One statement generating products `$1 .. $2` (their number is in the title, slug and SKU, so
/// each is distinct and a second run skips them) with one digital edition each. Titles, genres,
/// platforms, tags, prices and dates vary by hashes of the number, so the generated catalog is
/// the same on every machine. `price_from_minor` and `edition_kinds` are written with the
/// product, so the edition trigger finds nothing to change.
const BULK_INSERT: &str = r#"
WITH src AS (
    SELECT i,
           hashint8(i)::bigint + 2147483648 AS h1,
           hashint8(i + 7919)::bigint + 2147483648 AS h2,
           hashint8(i + 104729)::bigint + 2147483648 AS h3
    FROM generate_series($1::bigint, $2::bigint - 1) i
), titled AS (
    SELECT src.*, $8::text[] AS dw, $9::text[] AS genres, $10::text[] AS platforms,
           $11::text[] AS tags,
           ($5::text[])[1 + h1 % cardinality($5::text[])] || ' '
             || ($6::text[])[1 + h2 % cardinality($6::text[])] || ' '
             || ($7::text[])[1 + h3 % cardinality($7::text[])] || ' ' || i AS title
    FROM src
), product AS (
    INSERT INTO catalog.product AS p (id, publisher_id, slug, title, description, genres,
        platforms, tags, release_date, age_rating, system_requirements, status, currency,
        published_at, price_from_minor, list_price_from_minor, edition_kinds)
    SELECT gen_random_uuid(),
           ($3::uuid[])[1 + i % cardinality($3::uuid[])],
           trim(BOTH '-' FROM regexp_replace(lower(title), '[^a-z0-9]+', '-', 'g')),
           title,
           '**' || title || '** is a ' || tags[1 + h2 % cardinality(tags)] || ' game about '
             || dw[1 + h1 % cardinality(dw)] || ' and ' || dw[1 + h3 % cardinality(dw)]
             || E'.\n\nMade by a small team that cares about every detail.',
           ARRAY(SELECT DISTINCT g FROM unnest((ARRAY[genres[1 + h1 % cardinality(genres)],
                 genres[1 + h2 % cardinality(genres)],
                 genres[1 + h3 % cardinality(genres)]])[1:1 + h1 % 3]) g),
           ARRAY(SELECT DISTINCT g FROM unnest((ARRAY[platforms[1 + h2 % cardinality(platforms)],
                 platforms[1 + h3 % cardinality(platforms)],
                 platforms[1 + h1 % cardinality(platforms)],
                 platforms[1 + (h1 / 7) % cardinality(platforms)]])[1:1 + h2 % 4]) g),
           ARRAY(SELECT DISTINCT g FROM unnest((ARRAY[tags[1 + h3 % cardinality(tags)],
                 tags[1 + h1 % cardinality(tags)], tags[1 + h2 % cardinality(tags)],
                 tags[1 + (h2 / 7) % cardinality(tags)]])[1:2 + h3 % 3]) g),
           date '2015-01-01' + (h1 % 4000)::int,
           (ARRAY[3, 7, 12, 16, 18])[1 + h2 % 5],
           E'- 64-bit processor\n- 8 GB RAM\n- 10 GB free space',
           'published',
           $4,
           timestamptz '2024-01-01 00:00:00+00' + (h3 % 60000000) * interval '1 second',
           499 + 100 * (h2 % 65),
           499 + 100 * (h2 % 65),
           '{digital}'
    FROM titled
    ON CONFLICT (slug) DO NOTHING
    RETURNING p.id, p.price_from_minor, p.currency, p.title
)
INSERT INTO catalog.edition (id, product_id, kind, name, sku, price_minor, currency)
SELECT gen_random_uuid(), id, 'digital', 'Standard',
       'SEED-' || substring(title FROM '([0-9]+)$'), price_from_minor, currency
FROM product
ON CONFLICT (sku) DO NOTHING
"#;

fn str_array(items: impl IntoIterator<Item = String>) -> Value {
    Value::Array(
        sea_orm::sea_query::ArrayType::String,
        Some(Box::new(
            items.into_iter().map(|s| Value::String(Some(s))).collect(),
        )),
    )
}

/// `api seed-demo --products N`: grows the catalog to `total` products with generated,
/// published products of the store's publishers (bulk `INSERT … SELECT generate_series`,
/// 10,000 a statement), then refreshes the planner's statistics. Returns how many were made.
/// Idempotent: a catalog of `total` products or more gets nothing.
pub async fn bulk_catalog(
    db: &DatabaseConnection,
    total: u64,
    currency: Currency,
) -> anyhow::Result<u64> {
    let have = i64::try_from(product::Entity::find().count(db).await?).unwrap_or(i64::MAX);
    let total = i64::try_from(total).unwrap_or(i64::MAX);
    if have >= total {
        return Ok(0);
    }
    let publishers: Vec<Uuid> = account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .filter(account::Column::Role.eq(Role::Publisher.as_str()))
        .filter(account::Column::Status.eq(AccountStatus::Active.as_str()))
        .order_by_asc(account::Column::CreatedAt)
        .order_by_asc(account::Column::Id)
        .limit(20)
        .into_tuple()
        .all(db)
        .await?;
    anyhow::ensure!(
        !publishers.is_empty(),
        "no publisher account to own the generated products (run `api seed-demo` first)"
    );
    let publishers = Value::Array(
        sea_orm::sea_query::ArrayType::Uuid,
        Some(Box::new(
            publishers
                .into_iter()
                .map(|id| Value::Uuid(Some(id)))
                .collect(),
        )),
    );
    let words = |w: &[&str]| str_array(w.iter().map(|s| (*s).to_owned()));
    let game_genres = GENRES
        .iter()
        .map(|(g, _)| *g)
        .filter(|g| !SOFTWARE.contains(g))
        .map(str::to_owned);
    let platforms = PLATFORMS.iter().map(|(p, _)| (*p).to_owned());
    let mut made = 0u64;
    let mut from = have;
    while from < total {
        let to = (from + BULK_CHUNK).min(total);
        // Raw: one INSERT … SELECT over generate_series (with a data-modifying CTE feeding the
        // editions) makes 10,000 products a statement; row-by-row inserts would take hours.
        let res = db
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                BULK_INSERT,
                [
                    from.into(),
                    to.into(),
                    publishers.clone(),
                    currency.as_str().into(),
                    words(&FIRST),
                    words(&SECOND),
                    words(&THIRD),
                    words(&THEMES),
                    str_array(game_genres.clone()),
                    str_array(platforms.clone()),
                    words(&TAGS),
                ],
            ))
            .await?;
        made += res.rows_affected();
        from = to;
        tracing::info!(products = from, "generated products");
    }
    // Fresh statistics for the planner (which sort walks pay off depends on them), and a
    // visibility map for index-only scans (the listing's budget probe is one).
    db.execute_unprepared("VACUUM ANALYZE catalog.product, catalog.edition, catalog.facet_listing")
        .await?;
    Ok(made)
}
