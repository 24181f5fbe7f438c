use serde::{Deserialize, Serialize};

/// A value refused in a catalog input; `field()` names the input field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("the title must have 1 to 200 characters")]
    Title,
    #[error("the slug must be 1 to 80 lower-case letters, digits and single hyphens")]
    Slug,
    #[error("the description must have at most 20000 characters")]
    Description,
    #[error("the system requirements must have at most 5000 characters")]
    SystemRequirements,
    #[error("unknown genre `{0}`")]
    Genre(String),
    #[error("unknown platform `{0}`")]
    Platform(String),
    #[error(
        "a tag must have 1 to 30 lower-case letters, digits, spaces or hyphens; at most 20 tags"
    )]
    Tag,
    #[error("the age rating must be one of 3, 7, 12, 16, 18 (PEGI)")]
    AgeRating,
    #[error("the edition name must have 1 to 100 characters")]
    EditionName,
    #[error("the SKU must be 2 to 40 upper-case letters, digits or hyphens")]
    Sku,
    #[error("{0}")]
    Price(#[from] crate::money::MoneyError),
    #[error("a physical edition needs a weight between 1 and 100000 grams; a digital one has none")]
    Weight,
    #[error("the rating must be between 1 and 5")]
    Rating,
    #[error("the review must have at most 5000 characters")]
    ReviewBody,
    #[error("at most 12 screenshots")]
    TooManyScreenshots,
}

impl CatalogError {
    pub fn field(&self) -> &'static str {
        match self {
            CatalogError::Title => "title",
            CatalogError::Slug => "slug",
            CatalogError::Description => "description",
            CatalogError::SystemRequirements => "systemRequirements",
            CatalogError::Genre(_) => "genres",
            CatalogError::Platform(_) => "platforms",
            CatalogError::Tag => "tags",
            CatalogError::AgeRating => "ageRating",
            CatalogError::EditionName => "name",
            CatalogError::Sku => "sku",
            CatalogError::Price(_) => "price",
            CatalogError::Weight => "weightGrams",
            CatalogError::Rating => "rating",
            CatalogError::ReviewBody => "body",
            CatalogError::TooManyScreenshots => "file",
        }
    }
}

/// Genres the store files products under: (slug, label).
pub const GENRES: [(&str, &str); 16] = [
    ("action", "Action"),
    ("adventure", "Adventure"),
    ("rpg", "Role-playing"),
    ("strategy", "Strategy"),
    ("simulation", "Simulation"),
    ("sports", "Sports"),
    ("racing", "Racing"),
    ("puzzle", "Puzzle"),
    ("platformer", "Platformer"),
    ("shooter", "Shooter"),
    ("horror", "Horror"),
    ("indie", "Indie"),
    ("productivity", "Productivity"),
    ("developer-tools", "Developer tools"),
    ("creative", "Creative"),
    ("education", "Education"),
];

/// Platforms a product runs on: (slug, label).
pub const PLATFORMS: [(&str, &str); 8] = [
    ("windows", "Windows"),
    ("macos", "macOS"),
    ("linux", "Linux"),
    ("playstation-5", "PlayStation 5"),
    ("xbox-series", "Xbox Series X|S"),
    ("switch", "Nintendo Switch"),
    ("android", "Android"),
    ("ios", "iOS"),
];

/// PEGI age ratings.
pub const AGE_RATINGS: [i16; 5] = [3, 7, 12, 16, 18];
pub const MAX_TAGS: usize = 20;
pub const MAX_SCREENSHOTS: usize = 12;

pub fn parse_title(s: &str) -> Result<String, CatalogError> {
    let t = s.trim();
    let n = t.chars().count();
    if n == 0 || n > 200 || t.chars().any(char::is_control) {
        return Err(CatalogError::Title);
    }
    Ok(t.to_owned())
}

pub fn parse_slug(s: &str) -> Result<String, CatalogError> {
    let ok = !s.is_empty()
        && s.len() <= 80
        && s.split('-').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(CatalogError::Slug)
    }
}

/// A slug made from a title: "The Witcher 3: Wild Hunt" → "the-witcher-3-wild-hunt".
pub fn slugify(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'á' | 'â' | 'ä' | 'å' | 'ã' => 'a',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut s: String = out.trim_end_matches('-').chars().take(80).collect();
    while s.ends_with('-') {
        s.pop();
    }
    if s.is_empty() {
        "product".to_owned()
    } else {
        s
    }
}

fn bounded(s: &str, max: usize, err: CatalogError) -> Result<String, CatalogError> {
    if s.chars().count() > max {
        Err(err)
    } else {
        Ok(s.to_owned())
    }
}

pub fn parse_description(s: &str) -> Result<String, CatalogError> {
    bounded(s, 20_000, CatalogError::Description)
}

pub fn parse_system_requirements(s: &str) -> Result<String, CatalogError> {
    bounded(s, 5_000, CatalogError::SystemRequirements)
}

fn vocabulary(
    items: &[String],
    known: &[(&str, &str)],
    err: fn(String) -> CatalogError,
) -> Result<Vec<String>, CatalogError> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        let slug = i.trim().to_lowercase();
        if !known.iter().any(|(k, _)| *k == slug) {
            return Err(err(i.clone()));
        }
        if !out.contains(&slug) {
            out.push(slug);
        }
    }
    Ok(out)
}

pub fn parse_genres(items: &[String]) -> Result<Vec<String>, CatalogError> {
    vocabulary(items, &GENRES, CatalogError::Genre)
}

pub fn parse_platforms(items: &[String]) -> Result<Vec<String>, CatalogError> {
    vocabulary(items, &PLATFORMS, CatalogError::Platform)
}

pub fn parse_tags(items: &[String]) -> Result<Vec<String>, CatalogError> {
    let mut out: Vec<String> = Vec::new();
    for t in items {
        let tag = t.trim().to_lowercase();
        let n = tag.chars().count();
        if n == 0
            || n > 30
            || !tag
                .chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || c == '-')
        {
            return Err(CatalogError::Tag);
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if out.len() > MAX_TAGS {
        return Err(CatalogError::Tag);
    }
    Ok(out)
}

pub fn parse_age_rating(r: i32) -> Result<i16, CatalogError> {
    i16::try_from(r)
        .ok()
        .filter(|r| AGE_RATINGS.contains(r))
        .ok_or(CatalogError::AgeRating)
}

pub fn parse_edition_name(s: &str) -> Result<String, CatalogError> {
    let t = s.trim();
    let n = t.chars().count();
    if n == 0 || n > 100 || t.chars().any(char::is_control) {
        return Err(CatalogError::EditionName);
    }
    Ok(t.to_owned())
}

pub fn parse_sku(s: &str) -> Result<String, CatalogError> {
    let t = s.trim();
    let ok = (2..=40).contains(&t.len())
        && t.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(t.to_owned())
    } else {
        Err(CatalogError::Sku)
    }
}

/// A product's life: `DRAFT → PUBLISHED ⇄ UNLISTED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProductStatus {
    Draft,
    Published,
    Unlisted,
}

impl ProductStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::Published => "published",
            ProductStatus::Unlisted => "unlisted",
        }
    }

    pub fn parse(s: &str) -> Option<ProductStatus> {
        match s {
            "draft" => Some(ProductStatus::Draft),
            "published" => Some(ProductStatus::Published),
            "unlisted" => Some(ProductStatus::Unlisted),
            _ => None,
        }
    }
}

/// Who asks for a status change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The product's own publisher.
    Owner,
    /// An admin moderating.
    Admin,
}

/// Why a status change is refused (the message is for the person).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a product needs at least one edition before it is published")]
    NoEdition,
    #[error("the product was unlisted by moderation; only an admin can restore it")]
    Moderated,
    #[error("the product is already {0}")]
    Already(&'static str),
    #[error("a product cannot go back to draft")]
    BackToDraft,
}

/// Decides a status change. `moderated`: the product is unlisted by an admin.
pub fn transition(
    from: ProductStatus,
    to: ProductStatus,
    actor: Actor,
    moderated: bool,
    editions: usize,
) -> Result<(), TransitionError> {
    use ProductStatus::*;
    match (from, to) {
        (a, b) if a == b => Err(TransitionError::Already(a.as_str())),
        (_, Draft) => Err(TransitionError::BackToDraft),
        (_, Published) if editions == 0 => Err(TransitionError::NoEdition),
        (Unlisted, Published) if moderated && actor == Actor::Owner => {
            Err(TransitionError::Moderated)
        }
        _ => Ok(()),
    }
}

/// Whether a product is shown to the public.
pub fn is_public(status: ProductStatus) -> bool {
    status == ProductStatus::Published
}

/// Digital copy (library, keys, downloads) or physical copy (stock, shipping).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EditionKind {
    Digital,
    Physical,
}

impl EditionKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            EditionKind::Digital => "digital",
            EditionKind::Physical => "physical",
        }
    }

    pub fn parse(s: &str) -> Option<EditionKind> {
        match s {
            "digital" => Some(EditionKind::Digital),
            "physical" => Some(EditionKind::Physical),
            _ => None,
        }
    }
}

/// A physical edition has a shipping weight; a digital one has none.
pub fn check_weight(
    kind: EditionKind,
    weight_grams: Option<i32>,
) -> Result<Option<i32>, CatalogError> {
    match (kind, weight_grams) {
        (EditionKind::Physical, Some(w)) if (1..=100_000).contains(&w) => Ok(Some(w)),
        (EditionKind::Digital, None) => Ok(None),
        _ => Err(CatalogError::Weight),
    }
}

pub fn parse_rating(r: i32) -> Result<i16, CatalogError> {
    i16::try_from(r)
        .ok()
        .filter(|r| (1..=5).contains(r))
        .ok_or(CatalogError::Rating)
}

pub fn parse_review_body(s: &str) -> Result<String, CatalogError> {
    bounded(s.trim(), 5_000, CatalogError::ReviewBody)
}

/// What is known about whether an account owns a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// An entitlement of the account covers the product.
    Owned,
    /// The account has no entitlement for it.
    NotOwned,
    /// Ownership is not tracked yet (no library context): the check cannot be made.
    NotTracked,
}

/// Only owners may review a product. While the library context does not exist, ownership is
/// [`Ownership::NotTracked`] and reviews are allowed; the library issue supplies real ownership.
pub fn may_review(ownership: Ownership) -> bool {
    matches!(ownership, Ownership::Owned | Ownership::NotTracked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProductStatus::*;

    #[test]
    fn status_transitions() {
        assert_eq!(
            transition(Draft, Published, Actor::Owner, false, 0),
            Err(TransitionError::NoEdition)
        );
        assert_eq!(transition(Draft, Published, Actor::Owner, false, 1), Ok(()));
        assert_eq!(
            transition(Published, Unlisted, Actor::Owner, false, 1),
            Ok(())
        );
        assert_eq!(
            transition(Unlisted, Published, Actor::Owner, false, 1),
            Ok(())
        );
        assert_eq!(
            transition(Unlisted, Published, Actor::Owner, true, 1),
            Err(TransitionError::Moderated)
        );
        assert_eq!(
            transition(Unlisted, Published, Actor::Admin, true, 1),
            Ok(())
        );
        assert_eq!(
            transition(Published, Draft, Actor::Admin, false, 1),
            Err(TransitionError::BackToDraft)
        );
        assert!(matches!(
            transition(Published, Published, Actor::Owner, false, 1),
            Err(TransitionError::Already(_))
        ));
    }

    #[test]
    fn slugs() {
        assert_eq!(
            slugify("The Witcher 3: Wild Hunt"),
            "the-witcher-3-wild-hunt"
        );
        assert_eq!(slugify("  Pokémon — Édition ★ "), "pokemon-edition");
        assert_eq!(slugify("!!!"), "product");
        assert!(parse_slug("the-witcher-3").is_ok());
        for bad in ["", "The-Witcher", "a--b", "-a", "a-", "a b"] {
            assert!(parse_slug(bad).is_err(), "{bad}");
        }
        assert!(parse_slug(&slugify(&"long title ".repeat(20))).is_ok());
    }

    #[test]
    fn vocabularies_and_values() {
        assert_eq!(
            parse_genres(&["RPG".into(), "rpg".into()]),
            Ok(vec!["rpg".to_owned()])
        );
        assert!(parse_genres(&["cooking".into()]).is_err());
        assert!(parse_platforms(&["linux".into()]).is_ok());
        assert_eq!(
            parse_tags(&["Open World".into()]),
            Ok(vec!["open world".to_owned()])
        );
        assert!(parse_tags(&["<script>".into()]).is_err());
        assert!(parse_tags(&(0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()).is_err());
        assert!(parse_age_rating(16).is_ok() && parse_age_rating(15).is_err());
        assert!(
            parse_sku("WIT3-CE").is_ok() && parse_sku("wit3").is_err() && parse_sku("-A").is_err()
        );
        assert!(check_weight(EditionKind::Physical, Some(500)).is_ok());
        assert!(check_weight(EditionKind::Physical, None).is_err());
        assert!(check_weight(EditionKind::Digital, Some(5)).is_err());
        assert!(parse_rating(0).is_err() && parse_rating(5).is_ok());
        assert!(parse_title("   ").is_err());
    }

    #[test]
    fn reviews_need_ownership_once_it_is_tracked() {
        assert!(may_review(Ownership::Owned));
        assert!(may_review(Ownership::NotTracked));
        assert!(!may_review(Ownership::NotOwned));
    }
}
