pub mod bundle;

use async_graphql::{ComplexObject, Context, Enum, InputObject, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use domain::catalog::entity::{edition, product, review};
use domain::catalog::{EditionKind, ProductStatus};
use domain::money::{Currency, Money as DomainMoney};
use uuid::Uuid;

use crate::graphql::guard::catalog_viewer;
use crate::graphql::loaders::{loader_error, loaders};
use crate::infra::state::AppState;

/// An amount of money: integer minor units (cents) and the ISO 4217 currency.
#[derive(SimpleObject, Clone, Debug)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: String,
    /// Display text, e.g. `19.99 EUR`.
    pub formatted: String,
}

impl Money {
    pub fn new(minor: i64, currency: &str) -> Money {
        let formatted = Currency::parse(currency)
            .map(|c| DomainMoney { minor, currency: c }.format())
            .unwrap_or_else(|_| format!("{minor} {currency}"));
        Money {
            amount_minor: minor,
            currency: currency.to_owned(),
            formatted,
        }
    }
}

/// What an edition is: a digital copy or a boxed one.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "EditionKind", remote = "EditionKind")]
pub enum EditionKindGql {
    /// A digital copy: added to the buyer's library, downloaded or played from there.
    Digital,
    /// A boxed copy: taken from the stock and shipped by the publisher.
    Physical,
}

impl EditionKindGql {
    fn from_stored(s: &str) -> EditionKindGql {
        if s == EditionKind::Physical.as_str() {
            EditionKindGql::Physical
        } else {
            EditionKindGql::Digital
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "ProductStatus")]
pub enum ProductStatusGql {
    Draft,
    Published,
    Unlisted,
}

impl From<ProductStatusGql> for ProductStatus {
    fn from(s: ProductStatusGql) -> Self {
        match s {
            ProductStatusGql::Draft => ProductStatus::Draft,
            ProductStatusGql::Published => ProductStatus::Published,
            ProductStatusGql::Unlisted => ProductStatus::Unlisted,
        }
    }
}

impl ProductStatusGql {
    fn from_stored(s: &str) -> ProductStatusGql {
        match ProductStatus::parse(s) {
            Some(ProductStatus::Published) => ProductStatusGql::Published,
            Some(ProductStatus::Unlisted) => ProductStatusGql::Unlisted,
            _ => ProductStatusGql::Draft,
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProductSort {
    /// Best match of the search text first (newest first without one).
    Relevance,
    Newest,
    PriceAsc,
    PriceDesc,
    /// Highest average rating first.
    Rating,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ImageKind {
    Cover,
    Screenshot,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "StockMode")]
pub enum StockModeGql {
    /// The stock on hand becomes the quantity.
    Set,
    /// The quantity (may be negative) is added to the stock on hand.
    Add,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ModerationAction {
    /// Hide the product from the store; the publisher sees the reason.
    Unlist,
    /// Put a moderated product back on sale.
    Restore,
}

/// The publisher of a product, as the public sees it.
#[derive(SimpleObject, Clone, Debug)]
pub struct Publisher {
    pub id: Uuid,
    pub name: String,
}

impl Publisher {
    /// The publisher `id` with its public name (through the operation's name loader).
    pub async fn load(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Publisher> {
        let name = loaders(ctx)?
            .names
            .load_one(id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        Ok(Publisher { id, name })
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct RatingSummary {
    /// Average of the ratings, 1–5; `null` without reviews.
    pub average: Option<f64>,
    pub count: i32,
}

/// A media file (image) of a product.
#[derive(SimpleObject, Clone, Debug)]
pub struct Image {
    /// Key in the object store; pass it to `removeProductImage`.
    pub key: String,
    pub url: String,
    /// Size in pixels; `null` for an image stored without smaller copies (one that could not
    /// be decoded, or stored before copies were made).
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// The image and its smaller copies as an HTML `srcset` (`url 320w, …, url 1280w`), the
    /// original last; `null` when there are no copies.
    pub srcset: Option<String>,
}

impl Image {
    fn new(ctx: &Context<'_>, key: &str) -> Image {
        let size = crate::infra::objects::image_size(key);
        let variants = crate::infra::objects::image_variants(key);
        let srcset = (variants.len() > 1).then(|| {
            variants
                .iter()
                .map(|(w, k)| format!("{} {w}w", media_url(ctx, k)))
                .collect::<Vec<_>>()
                .join(", ")
        });
        Image {
            key: key.to_owned(),
            url: media_url(ctx, key),
            width: size.and_then(|(w, _)| i32::try_from(w).ok()),
            height: size.and_then(|(_, h)| i32::try_from(h).ok()),
            srcset,
        }
    }
}

/// A product of the catalog.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Product {
    pub id: Uuid,
    pub slug: String,
    pub title: String,
    /// Markdown.
    pub description: String,
    pub genres: Vec<String>,
    pub platforms: Vec<String>,
    pub tags: Vec<String>,
    pub release_date: Option<NaiveDate>,
    /// PEGI age rating (3, 7, 12, 16, 18).
    pub age_rating: Option<i32>,
    /// Markdown.
    pub system_requirements: String,
    pub status: ProductStatusGql,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub model: product::Model,
}

impl From<product::Model> for Product {
    fn from(m: product::Model) -> Self {
        Product {
            id: m.id,
            slug: m.slug.clone(),
            title: m.title.clone(),
            description: m.description.clone(),
            genres: m.genres.clone(),
            platforms: m.platforms.clone(),
            tags: m.tags.clone(),
            release_date: m.release_date,
            age_rating: m.age_rating.map(i32::from),
            system_requirements: m.system_requirements.clone(),
            status: ProductStatusGql::from_stored(&m.status),
            published_at: m.published_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
            model: m,
        }
    }
}

fn media_url(ctx: &Context<'_>, key: &str) -> String {
    let base = ctx
        .data::<AppState>()
        .map(|s| s.config.media.base_url.clone())
        .unwrap_or_else(|_| "/media".to_owned());
    format!("{base}/{key}")
}

impl Product {
    /// The lowest price of the product's editions in the asked or the viewer's currency: the
    /// listing's projection in the base currency, else each edition's regional price (less a
    /// running discount when `now`).
    async fn lowest(
        &self,
        ctx: &Context<'_>,
        currency: Option<String>,
        now: bool,
    ) -> async_graphql::Result<Option<Money>> {
        let to = price_currency(ctx, currency).await?;
        let projected = if now {
            self.model.price_from_minor
        } else {
            self.model.list_price_from_minor
        };
        if projected.is_none() || self.model.currency == to.as_str() {
            return Ok(projected.map(|m| Money::new(m, &self.model.currency)));
        }
        let l = loaders(ctx)?;
        let editions = l
            .editions
            .load_one(self.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let mut lowest: Option<i64> = None;
        for e in &editions {
            let price = Edition::from(e.clone()).price_in(ctx, to, now).await?;
            lowest = Some(lowest.map_or(price, |l| l.min(price)));
        }
        Ok(lowest.map(|m| Money::new(m, to.as_str())))
    }
}

/// The currency prices are shown in: the one asked for (one the store sells in, else
/// `BAD_USER_INPUT`), else the viewer's region's.
pub async fn price_currency(
    ctx: &Context<'_>,
    asked: Option<String>,
) -> async_graphql::Result<Currency> {
    if let Some(code) = asked {
        return Ok(crate::catalog::prices::requested(&code, "currency")?);
    }
    Ok(viewer_region(ctx).await?.currency)
}

/// The viewer's region (the signed-in account's, else the visitor's country's), once per
/// operation.
pub async fn viewer_region<'a>(
    ctx: &Context<'a>,
) -> async_graphql::Result<&'a crate::identity::Region> {
    let l = loaders(ctx)?;
    let state = ctx.data::<AppState>()?;
    let account = crate::graphql::guard::caller(ctx).principal().map(|p| p.id);
    let country = ctx
        .data_opt::<crate::infra::auth::caller::ClientCountry>()
        .cloned()
        .unwrap_or_default();
    Ok(l.region
        .get_or_try_init(|| crate::identity::region(state, account, &country))
        .await?)
}

#[ComplexObject]
impl Product {
    async fn publisher(&self, ctx: &Context<'_>) -> async_graphql::Result<Publisher> {
        Publisher::load(ctx, self.model.publisher_id).await
    }

    /// Editions on sale, cheapest first.
    async fn editions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Edition>> {
        Ok(loaders(ctx)?
            .editions
            .load_one(self.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(Edition::from)
            .collect())
    }

    /// The lowest price a buyer pays now among its editions (after a running discount; the
    /// listing follows a discount's start and end within a second, an edition's
    /// `currentPrice` at once), in `currency`, else the viewer's (their region's).
    async fn price_from(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "An ISO 4217 code the store sells in; the viewer's region's when left out."
        )]
        currency: Option<String>,
    ) -> async_graphql::Result<Option<Money>> {
        self.lowest(ctx, currency, true).await
    }

    /// The lowest price of its editions before discounts, in `currency`, else the viewer's.
    async fn list_price_from(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "An ISO 4217 code the store sells in; the viewer's region's when left out."
        )]
        currency: Option<String>,
    ) -> async_graphql::Result<Option<Money>> {
        self.lowest(ctx, currency, false).await
    }

    /// The product's running discount, as the storefront lists it: the deepest percentage
    /// off one of its editions and when the first running discount ends; `null` when nothing
    /// of it is on sale.
    async fn sale(&self) -> Option<ProductSale> {
        Some(ProductSale {
            percent: i32::from(self.model.sale_percent?),
            ends_at: self.model.sale_ends_at?,
        })
    }

    async fn rating(&self) -> RatingSummary {
        let count = self.model.rating_count;
        RatingSummary {
            average: (count > 0).then(|| f64::from(self.model.rating_sum) / f64::from(count)),
            count,
        }
    }

    async fn cover(&self, ctx: &Context<'_>) -> Option<Image> {
        self.model.cover_image.as_ref().map(|k| Image::new(ctx, k))
    }

    async fn screenshots(&self, ctx: &Context<'_>) -> Vec<Image> {
        self.model
            .screenshots
            .iter()
            .map(|k| Image::new(ctx, k))
            .collect()
    }

    /// Downloadable builds, newest first: every one for its publisher and admins, the `READY`
    /// ones for everyone else (owners get links with `downloadLink`).
    async fn builds(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Only the builds of this platform (optional; all platforms when left out)."
        )]
        platform: Option<String>,
    ) -> async_graphql::Result<Vec<crate::graphql::catalog::builds::Build>> {
        crate::graphql::catalog::builds::product_builds(ctx, &self.model, platform).await
    }

    /// The published bundles holding one of its editions ("Part of bundle: …").
    async fn bundles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<bundle::Bundle>> {
        bundle::of_product(ctx, self.id).await
    }

    /// Why an admin unlisted the product; only its publisher and admins see it.
    async fn moderation_reason(&self, ctx: &Context<'_>) -> Option<String> {
        let me = catalog_viewer(ctx)?;
        (me.id == self.model.publisher_id || me.role == domain::identity::Role::Admin)
            .then(|| self.model.moderation_reason.clone())
            .flatten()
    }
}

/// A product on sale, as listed.
#[derive(SimpleObject, Clone, Debug)]
pub struct ProductSale {
    /// The deepest percentage off one of its editions.
    pub percent: i32,
    /// When the first of its running discounts ends.
    pub ends_at: DateTime<Utc>,
}

/// A purchasable version of a product.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Edition {
    pub id: Uuid,
    pub product_id: Uuid,
    pub kind: EditionKindGql,
    pub name: String,
    pub sku: String,
    /// The price of one copy before discounts in the store's currency, as its publisher set
    /// it (`updateEdition`); `price` is what a buyer of a region is asked.
    pub base_price: Money,
    /// Shipping weight of a physical edition.
    pub weight_grams: Option<i32>,
    #[graphql(skip)]
    pub model: edition::Model,
}

impl From<edition::Model> for Edition {
    fn from(e: edition::Model) -> Self {
        Edition {
            base_price: Money::new(e.price_minor, &e.currency),
            kind: EditionKindGql::from_stored(&e.kind),
            id: e.id,
            product_id: e.product_id,
            name: e.name.clone(),
            sku: e.sku.clone(),
            weight_grams: e.weight_grams,
            model: e,
        }
    }
}

impl Edition {
    /// One copy in `to`, before discounts (`now` false) or as an order placed now pays it.
    pub async fn price_in(
        &self,
        ctx: &Context<'_>,
        to: Currency,
        now: bool,
    ) -> async_graphql::Result<i64> {
        let l = loaders(ctx)?;
        let list = if self.model.currency == to.as_str() {
            self.model.price_minor
        } else {
            let set = l
                .edition_prices
                .load_one(self.id)
                .await
                .map_err(loader_error)?
                .unwrap_or_default();
            crate::catalog::prices::list_price(&self.model, Some(&set), to)?
        };
        if !now {
            return Ok(list);
        }
        let running = l
            .running_discounts
            .load_one(self.id)
            .await
            .map_err(loader_error)?;
        Ok(running.map_or(list, |d| {
            domain::catalog::discount::discounted(list, d.percent)
        }))
    }
}

/// An edition's price in one currency, as its publisher manages it.
#[derive(SimpleObject, Clone, Debug)]
pub struct RegionalPrice {
    /// The ISO 4217 code.
    pub currency: String,
    /// What a buyer paying in this currency is asked (before discounts).
    pub price: Money,
    /// The conversion of the base price at the store's rate, rounded as prices there look.
    pub suggested: Money,
    /// Whether the publisher set `price` (else it is `suggested`); always false for the base
    /// price's currency.
    pub set_by_publisher: bool,
}

#[ComplexObject]
impl Edition {
    /// The price of one copy before discounts in `currency`, else in the viewer's (their
    /// region's): the publisher's price there, else the suggested conversion of `basePrice`.
    async fn price(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "An ISO 4217 code the store sells in; the viewer's region's when left out."
        )]
        currency: Option<String>,
    ) -> async_graphql::Result<Money> {
        let to = price_currency(ctx, currency).await?;
        Ok(Money::new(
            self.price_in(ctx, to, false).await?,
            to.as_str(),
        ))
    }

    /// The edition's price in every currency the store sells in, the base price's first.
    async fn prices(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RegionalPrice>> {
        let set = loaders(ctx)?
            .edition_prices
            .load_one(self.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let (minor, base) = crate::catalog::prices::base(&self.model)?;
        let mut out = Vec::new();
        for rate in domain::money::exchange_rates() {
            let c = rate.currency;
            let suggested = domain::money::suggested_price(minor, base, c).unwrap_or(minor);
            let own = set.get(&c).copied().filter(|_| c != base);
            out.push(RegionalPrice {
                currency: c.as_str().to_owned(),
                price: Money::new(own.unwrap_or(suggested), c.as_str()),
                suggested: Money::new(suggested, c.as_str()),
                set_by_publisher: own.is_some(),
            });
        }
        out.sort_by_key(|p| p.currency != base.as_str());
        Ok(out)
    }

    /// The discount running now, if any.
    async fn discount(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::graphql::catalog::discounts::Discount>> {
        let l = loaders(ctx)?;
        Ok(l.running_discounts
            .load_one(self.id)
            .await
            .map_err(loader_error)?
            .map(|d| {
                crate::graphql::catalog::discounts::Discount::at(d, l.running_discounts.loader().1)
            }))
    }

    /// The price of one copy an order placed now pays (before a tax added at checkout):
    /// `price` less the running discount, in `currency`, else the viewer's.
    async fn current_price(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "An ISO 4217 code the store sells in; the viewer's region's when left out."
        )]
        currency: Option<String>,
    ) -> async_graphql::Result<Money> {
        let to = price_currency(ctx, currency).await?;
        Ok(Money::new(self.price_in(ctx, to, true).await?, to.as_str()))
    }

    /// Every discount of the edition, scheduled, running and past, newest first: for its
    /// publisher and admins (`FORBIDDEN` for anyone else).
    async fn discounts(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::catalog::discounts::Discount>> {
        let l = loaders(ctx)?;
        let me = catalog_viewer(ctx).ok_or_else(|| {
            crate::infra::error::ApiError::Forbidden(
                "only the publisher and admins see an edition's discounts",
            )
        })?;
        if me.role != domain::identity::Role::Admin {
            let product = l
                .product
                .load_one(self.product_id)
                .await
                .map_err(loader_error)?
                .flatten();
            if product.is_none_or(|p| p.publisher_id != me.id) {
                return Err(crate::infra::error::ApiError::Forbidden(
                    "only the publisher and admins see an edition's discounts",
                )
                .into());
            }
        }
        let now = Utc::now();
        Ok(l.discounts
            .load_one(self.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(|d| crate::graphql::catalog::discounts::Discount::at(d, now))
            .collect())
    }

    /// Copies available to order (physical editions); `null` for digital ones.
    async fn stock(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i32>> {
        if self.kind != EditionKindGql::Physical {
            return Ok(None);
        }
        Ok(Some(
            loaders(ctx)?
                .stock
                .load_one(self.id)
                .await
                .map_err(loader_error)?
                .unwrap_or(0),
        ))
    }
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Review {
    pub id: Uuid,
    pub product_id: Uuid,
    pub rating: i32,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub author_id: Uuid,
}

impl From<review::Model> for Review {
    fn from(r: review::Model) -> Self {
        Review {
            id: r.id,
            product_id: r.product_id,
            rating: i32::from(r.rating),
            body: r.body,
            created_at: r.created_at,
            updated_at: r.updated_at,
            author_id: r.author_id,
        }
    }
}

#[ComplexObject]
impl Review {
    /// Display name of the author.
    async fn author_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(loaders(ctx)?
            .names
            .load_one(self.author_id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default())
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct FacetValue {
    pub value: String,
    pub count: i64,
}

/// Counts of published products per genre, platform, tag and edition kind.
#[derive(SimpleObject, Clone, Debug)]
pub struct Facets {
    pub genres: Vec<FacetValue>,
    pub platforms: Vec<FacetValue>,
    /// The 40 most used tags.
    pub tags: Vec<FacetValue>,
    pub edition_kinds: Vec<FacetValue>,
}

/// A genre or platform the catalog knows.
#[derive(SimpleObject, Clone, Debug)]
pub struct Vocabulary {
    pub slug: String,
    pub label: String,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct ProductFilter {
    /// Full-text search, tolerant of typos.
    pub text: Option<String>,
    /// Only products filed under this genre (a value of `Query.genres`).
    pub genre: Option<String>,
    /// Only products that run on this platform (a value of `Query.platforms`).
    pub platform: Option<String>,
    /// Only products with an edition of this kind.
    pub edition_kind: Option<EditionKindGql>,
    /// Lowest "price from", minor units.
    pub min_price: Option<i64>,
    /// Highest "price from", minor units.
    pub max_price: Option<i64>,
    /// Only the products of this publisher.
    pub publisher_id: Option<Uuid>,
    /// Only products with an edition on sale now (`true`); `false` or left out: all.
    #[graphql(default)]
    pub on_sale: bool,
}

impl From<ProductFilter> for crate::catalog::search::Filter {
    fn from(f: ProductFilter) -> Self {
        crate::catalog::search::Filter {
            text: f.text,
            genre: f.genre,
            platform: f.platform,
            edition_kind: f.edition_kind.map(Into::into),
            min_price: f.min_price,
            max_price: f.max_price,
            publisher: f.publisher_id,
            on_sale: f.on_sale,
            title_contains: None,
        }
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct CreateProductInput {
    /// The product's name on the storefront, 1 to 200 characters.
    pub title: String,
    /// Made from the title when absent.
    pub slug: Option<String>,
    /// What the product is, shown on its page as plain text; at most 20000 characters.
    #[graphql(default)]
    pub description: String,
    /// Genres to file the product under, from `Query.genres`.
    #[graphql(default)]
    pub genres: Vec<String>,
    /// Platforms the product runs on, from `Query.platforms`.
    #[graphql(default)]
    pub platforms: Vec<String>,
    /// Tags that search and facets use: at most 20, each 1 to 30 lower-case letters, digits, spaces or hyphens.
    #[graphql(default)]
    pub tags: Vec<String>,
    /// The day the product was or will be released.
    pub release_date: Option<NaiveDate>,
    /// The PEGI age rating: 3, 7, 12, 16 or 18 (optional).
    pub age_rating: Option<i32>,
    /// The system requirements shown on the product page, at most 5000 characters.
    #[graphql(default)]
    pub system_requirements: String,
}

/// Fields left out stay as they are.
#[derive(InputObject, Clone, Debug)]
pub struct UpdateProductInput {
    /// The product's new name on the storefront, 1 to 200 characters.
    pub title: Option<String>,
    /// The new slug of its storefront address: 1 to 80 lower-case letters, digits and single hyphens.
    pub slug: Option<String>,
    /// The new description shown on the product page, at most 20000 characters.
    pub description: Option<String>,
    /// The genres, replacing the old ones (values of `Query.genres`).
    pub genres: Option<Vec<String>>,
    /// The platforms, replacing the old ones (values of `Query.platforms`).
    pub platforms: Option<Vec<String>>,
    /// The tags, replacing the old ones (at most 20, as in `CreateProductInput.tags`).
    pub tags: Option<Vec<String>>,
    /// The new release date; `null` removes it.
    pub release_date: async_graphql::MaybeUndefined<NaiveDate>,
    /// The new PEGI age rating (3, 7, 12, 16 or 18); `null` removes it.
    pub age_rating: async_graphql::MaybeUndefined<i32>,
    /// The new system requirements, at most 5000 characters.
    pub system_requirements: Option<String>,
}

#[derive(InputObject, Clone, Debug)]
pub struct MoneyInput {
    /// The amount in minor units of the currency (cents), at least 0.
    pub amount_minor: i64,
    /// The three-letter ISO 4217 code of the currency, e.g. `EUR`.
    pub currency: String,
}

#[derive(InputObject, Clone, Debug)]
pub struct EditionInput {
    /// `DIGITAL` (delivered to the library) or `PHYSICAL` (shipped by the publisher, with stock).
    pub kind: EditionKindGql,
    /// The edition's name, e.g. `Standard` or `Collector's box`; 1 to 100 characters.
    pub name: String,
    /// The publisher's stock-keeping unit: 2 to 40 upper-case letters, digits or hyphens.
    pub sku: String,
    /// The price of one copy.
    pub price: MoneyInput,
    /// Required for physical editions, absent for digital ones.
    pub weight_grams: Option<i32>,
}

#[derive(InputObject, Clone, Debug)]
pub struct UpdateEditionInput {
    /// The edition's new name, 1 to 100 characters.
    pub name: Option<String>,
    /// The edition's new stock-keeping unit: 2 to 40 upper-case letters, digits or hyphens.
    pub sku: Option<String>,
    /// The new price of one copy (orders placed before keep theirs).
    pub price: Option<MoneyInput>,
    /// The new shipping weight of a physical edition, 1 to 100000 grams.
    pub weight_grams: Option<i32>,
}

/// A stock change handed to fulfillment.
#[derive(SimpleObject, Clone, Debug)]
pub struct StockCommand {
    /// Id of the `cmd.fulfillment.adjust_stock` message.
    pub command_id: Uuid,
    pub edition_id: Uuid,
    pub mode: StockModeGql,
    pub quantity: i64,
}

/// Where a stock command (`setStock`) is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum StockCommandStatus {
    /// Sent; fulfillment has not handled it yet.
    Pending,
    /// Fulfillment applied it: the stock shows it.
    Applied,
    /// Fulfillment could not apply it (an admin sees it among the dead letters and may replay
    /// it: it is pending again then).
    Failed,
}

impl From<crate::catalog::StockCommandState> for StockCommandStatus {
    fn from(s: crate::catalog::StockCommandState) -> Self {
        match s {
            crate::catalog::StockCommandState::Pending => StockCommandStatus::Pending,
            crate::catalog::StockCommandState::Applied => StockCommandStatus::Applied,
            crate::catalog::StockCommandState::Failed => StockCommandStatus::Failed,
        }
    }
}
