//! Bundles: a publisher's editions sold together at a price of their own. The rules here are
//! checked before anything is stored, and the price a buyer pays for a bundle is decided here
//! ([`price_parts`]): the bundle's ratio (its price over the sum of its parts' list prices)
//! times the list price of each part the buyer does not own yet ("complete the bundle").

use uuid::Uuid;

/// Fewest editions in a bundle.
pub const MIN_ITEMS: usize = 2;
/// Most editions in a bundle.
pub const MAX_ITEMS: usize = 20;

/// Why a bundle is refused. Each is `BAD_USER_INPUT` with [`BundleError::field`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("a bundle has {MIN_ITEMS} to {MAX_ITEMS} editions")]
    ItemCount,
    #[error("each edition may appear only once in a bundle")]
    Duplicate,
    #[error("the title must have 1 to 200 characters")]
    Title,
    #[error("the description must have at most 5000 characters")]
    Description,
    #[error("a bundle's price must be more than zero")]
    Price,
    #[error(
        "a bundle must cost less than its parts bought one by one ({parts_minor} minor units); \
         its price is {price_minor}"
    )]
    NotCheaper { price_minor: i64, parts_minor: i64 },
}

impl BundleError {
    /// The input field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            BundleError::ItemCount | BundleError::Duplicate => "editionIds",
            BundleError::Title => "title",
            BundleError::Description => "description",
            BundleError::Price | BundleError::NotCheaper { .. } => "price",
        }
    }
}

/// Checks the editions of a bundle: 2 to 20, none twice.
pub fn check_items(editions: &[Uuid]) -> Result<(), BundleError> {
    if !(MIN_ITEMS..=MAX_ITEMS).contains(&editions.len()) {
        return Err(BundleError::ItemCount);
    }
    let mut seen = std::collections::HashSet::new();
    if editions.iter().any(|e| !seen.insert(*e)) {
        return Err(BundleError::Duplicate);
    }
    Ok(())
}

/// The trimmed title, 1 to 200 characters.
pub fn parse_title(s: &str) -> Result<String, BundleError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 200 {
        return Err(BundleError::Title);
    }
    Ok(t.to_owned())
}

/// The trimmed description, at most 5000 characters.
pub fn parse_description(s: &str) -> Result<String, BundleError> {
    let t = s.trim();
    if t.chars().count() > 5000 {
        return Err(BundleError::Description);
    }
    Ok(t.to_owned())
}

/// Checks the bundle's price against its parts' list prices: more than zero, and less than
/// their sum (the ratio is below 1).
pub fn check_price(price_minor: i64, list_prices: &[i64]) -> Result<(), BundleError> {
    if price_minor <= 0 {
        return Err(BundleError::Price);
    }
    let parts_minor = list_prices.iter().fold(0i64, |a, p| a.saturating_add(*p));
    if price_minor >= parts_minor {
        return Err(BundleError::NotCheaper {
            price_minor,
            parts_minor,
        });
    }
    Ok(())
}

/// What a buyer pays for each part of a bundle, before tax: `None` for a part they own, else
/// the part's share. With r = `bundle_price` ÷ Σ `list_prices` (at most 1: a bundle whose parts
/// got cheaper than it is sold at the sum of its parts), the unowned parts together cost
/// round(r × Σ their list prices) (half up), split over them by the largest remainder of
/// r × each one's list price, so the lines add up exactly and no part costs more than its list
/// price. Owning every part gives all `None`.
pub fn price_parts(bundle_price: i64, list_prices: &[i64], owned: &[bool]) -> Vec<Option<i64>> {
    let sum: i128 = list_prices.iter().map(|p| i128::from((*p).max(0))).sum();
    if sum == 0 {
        return list_prices
            .iter()
            .zip(owned)
            .map(|(_, o)| (!o).then_some(0))
            .collect();
    }
    let price = i128::from(bundle_price.max(0)).min(sum);
    let unowned: Vec<usize> = (0..list_prices.len())
        .filter(|i| !owned.get(*i).copied().unwrap_or(false))
        .collect();
    let unowned_sum: i128 = unowned
        .iter()
        .map(|i| i128::from(list_prices[*i].max(0)))
        .sum();
    // round(price × unowned_sum / sum), half up.
    let target = (2 * price * unowned_sum + sum) / (2 * sum);
    let mut shares: Vec<(usize, i128, i128)> = unowned
        .iter()
        .map(|i| {
            let exact = price * i128::from(list_prices[*i].max(0));
            (*i, exact / sum, exact % sum)
        })
        .collect();
    let floors: i128 = shares.iter().map(|s| s.1).sum();
    let mut left = target - floors;
    // Largest remainder first; ties to the earlier part.
    let mut by_remainder: Vec<usize> = (0..shares.len()).collect();
    by_remainder.sort_by(|a, b| shares[*b].2.cmp(&shares[*a].2).then(a.cmp(b)));
    for k in by_remainder {
        if left <= 0 {
            break;
        }
        shares[k].1 += 1;
        left -= 1;
    }
    let mut out = vec![None; list_prices.len()];
    for (i, share, _) in shares {
        out[i] = Some(i64::try_from(share).unwrap_or(i64::MAX));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_checked() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(check_items(&[a]), Err(BundleError::ItemCount));
        assert_eq!(check_items(&[a, a]), Err(BundleError::Duplicate));
        assert_eq!(check_items(&[a, b]), Ok(()));
        let many: Vec<Uuid> = (0..21).map(Uuid::from_u128).collect();
        assert_eq!(check_items(&many), Err(BundleError::ItemCount));
    }

    #[test]
    fn a_bundle_costs_less_than_its_parts() {
        assert!(check_price(2999, &[1999, 1999]).is_ok());
        assert!(matches!(
            check_price(3998, &[1999, 1999]),
            Err(BundleError::NotCheaper { .. })
        ));
        assert_eq!(check_price(0, &[1999, 1999]), Err(BundleError::Price));
    }

    #[test]
    fn nothing_owned_pays_the_bundle_price() {
        let p = price_parts(4999, &[1999, 2999, 3999], &[false; 3]);
        let sum: i64 = p.iter().flatten().sum();
        assert_eq!(sum, 4999);
    }

    #[test]
    fn the_rest_of_a_bundle_pays_its_share() {
        // r = 4999 / 8997; owning the 1999 part leaves 6998 × r = 3887.88… → 3888.
        let p = price_parts(4999, &[1999, 2999, 3999], &[true, false, false]);
        assert_eq!(p[0], None);
        assert_eq!(p.iter().flatten().sum::<i64>(), 3888);
        // 2999 × r = 1666.2… and 3999 × r = 2221.9…: the larger remainder takes the cent.
        assert_eq!(p, vec![None, Some(1666), Some(2222)]);
        assert_eq!(price_parts(10, &[5, 5], &[true, true]), vec![None, None]);
    }

    #[test]
    fn a_bundle_never_costs_more_than_its_parts() {
        let p = price_parts(5000, &[1000, 2000], &[false, false]);
        assert_eq!(p, vec![Some(1000), Some(2000)]);
    }

    #[test]
    fn lines_always_add_up() {
        for price in [1i64, 7, 99, 1234, 9999] {
            let lists = [333i64, 1000, 2501, 17, 4999];
            for mask in 0u32..32 {
                let owned: Vec<bool> = (0..5).map(|i| mask & (1 << i) != 0).collect();
                let p = price_parts(price, &lists, &owned);
                let unowned: i64 = (0..5).filter(|i| !owned[*i]).map(|i| lists[i]).sum();
                let total: i128 = lists.iter().map(|x| i128::from(*x)).sum();
                let capped = i128::from(price).min(total);
                let want = (2 * capped * i128::from(unowned) + total) / (2 * total);
                assert_eq!(i128::from(p.iter().flatten().sum::<i64>()), want);
                for (i, x) in p.iter().enumerate() {
                    assert_eq!(x.is_none(), owned[i]);
                    assert!(x.unwrap_or(0) <= lists[i]);
                }
            }
        }
    }
}
