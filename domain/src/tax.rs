//! Tax on what the store sells: the rate of the buyer's place (country, and US state) from the
//! table in `domain/data/tax_rates.csv` (data with its source and date, not code), and the tax
//! in a price. In the EU, the UK, Norway and Switzerland prices are shown with the tax in them
//! (`inclusive`); in the US the tax is added at checkout (`exclusive`). Integer arithmetic
//! only, rounded half up to the currency's minor unit.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

const TABLE: &str = include_str!("../data/tax_rates.csv");

/// Where an order is taxed: the buyer's country (ISO 3166-1 alpha-2) and, in the US, state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub country: String,
    #[serde(default)]
    pub state: Option<String>,
}

impl Place {
    /// The rate of this place, if the table has one.
    pub fn rate(&self) -> Option<&'static Rate> {
        rate(&self.country, self.state.as_deref())
    }
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// A subdivision (US state) code, when the rate is one subdivision's.
    pub region: Option<String>,
    /// Parts per million: 190 000 is 19 %.
    pub ppm: i64,
    /// Prices there include the tax.
    pub inclusive: bool,
    pub source: String,
    pub as_of: String,
}

impl Rate {
    /// `19 %`, `6.625 %`.
    pub fn percent_text(&self) -> String {
        percent_text(self.ppm)
    }
}

/// `190000` → `19 %`, `66250` → `6.625 %`.
pub fn percent_text(ppm: i64) -> String {
    let whole = ppm / 10_000;
    let rest = ppm % 10_000;
    if rest == 0 {
        format!("{whole} %")
    } else {
        let digits = format!("{rest:04}");
        format!("{whole}.{} %", digits.trim_end_matches('0'))
    }
}

fn parse(text: &str) -> Vec<Rate> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("country,"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            let [country, region, ppm, prices, source, as_of] = f.as_slice() else {
                return None;
            };
            Some(Rate {
                country: (*country).to_owned(),
                region: (!region.is_empty()).then(|| (*region).to_owned()),
                ppm: ppm.parse().ok()?,
                inclusive: *prices == "inclusive",
                source: (*source).to_owned(),
                as_of: (*as_of).to_owned(),
            })
        })
        .collect()
}

/// Every rate of the table.
pub fn rates() -> &'static [Rate] {
    static RATES: OnceLock<Vec<Rate>> = OnceLock::new();
    RATES.get_or_init(|| parse(TABLE))
}

/// The rate of a place: its subdivision's row, else the country's; `None` where the table
/// has none (no tax is charged).
pub fn rate(country: &str, region: Option<&str>) -> Option<&'static Rate> {
    let country = country.trim().to_ascii_uppercase();
    let region = region
        .map(|r| r.trim().to_ascii_uppercase())
        .filter(|r| !r.is_empty());
    let all = rates();
    region
        .as_deref()
        .and_then(|r| {
            all.iter()
                .find(|x| x.country == country && x.region.as_deref() == Some(r))
        })
        .or_else(|| {
            all.iter()
                .find(|x| x.country == country && x.region.is_none())
        })
}

/// Whether prices shown to buyers of `country` include the tax: as its rows say (the US
/// states add theirs at checkout, so a US buyer who has not chosen a state sees prices without
/// tax too); a country without a row is charged none, so its prices are all there is to pay.
pub fn prices_include_tax(country: &str) -> bool {
    let country = country.trim().to_ascii_uppercase();
    rates()
        .iter()
        .find(|r| r.country == country)
        .is_none_or(|r| r.inclusive)
}

/// The tax in one copy of an edition listed at `price_minor`, at `rate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitTax {
    /// What the buyer pays for one copy (the list price where it includes the tax, the list
    /// price plus the tax where the tax is added).
    pub gross_minor: i64,
    /// The tax in it.
    pub tax_minor: i64,
    /// The rate applied, parts per million (0 without one).
    pub rate_ppm: i64,
}

impl UnitTax {
    pub fn net_minor(&self) -> i64 {
        self.gross_minor - self.tax_minor
    }
}

/// `a × b / d` rounded half up, for non-negative values.
const fn mul_div_round(a: i64, b: i64, d: i64) -> i64 {
    let p = a as i128 * b as i128;
    ((p * 2 + d as i128) / (2 * d as i128)) as i64
}

pub fn unit_tax(price_minor: i64, rate: Option<&Rate>) -> UnitTax {
    match rate {
        None => UnitTax {
            gross_minor: price_minor,
            tax_minor: 0,
            rate_ppm: 0,
        },
        Some(r) if r.inclusive => {
            let net = mul_div_round(price_minor, 1_000_000, 1_000_000 + r.ppm);
            UnitTax {
                gross_minor: price_minor,
                tax_minor: price_minor - net,
                rate_ppm: r.ppm,
            }
        }
        Some(r) => {
            let tax = mul_div_round(price_minor, r.ppm, 1_000_000);
            UnitTax {
                gross_minor: price_minor + tax,
                tax_minor: tax,
                rate_ppm: r.ppm,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_with_the_places_the_store_sells_to() {
        let all = rates();
        assert!(all.len() >= 35, "{}", all.len());
        for c in [
            "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
            "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "GB",
            "NO", "CH",
        ] {
            let r = rate(c, None).unwrap_or_else(|| panic!("no rate for {c}"));
            assert!(r.inclusive, "{c}");
            assert!(!r.source.is_empty() && r.as_of.len() == 10, "{c}");
        }
        assert_eq!(rate("DE", None).map(|r| r.ppm), Some(190_000));
        assert_eq!(
            rate("us", Some("wa")).map(|r| (r.ppm, r.inclusive)),
            Some((65_000, false))
        );
        assert_eq!(rate("US", None), None, "no country-wide US rate");
        assert_eq!(
            rate("JP", None).map(|r| (r.ppm, r.inclusive)),
            Some((100_000, true)),
            "Japan's consumption tax, in the price"
        );
        assert_eq!(rate("BR", None), None, "a place without a row");
        // A subdivision without its own row takes the country's.
        assert_eq!(rate("DE", Some("BY")).map(|r| r.ppm), Some(190_000));
    }

    #[test]
    fn tax_in_inclusive_and_added_prices() {
        let de = rate("DE", None);
        // 19.99 with 19 % VAT in it: net 16.80, tax 3.19.
        assert_eq!(
            unit_tax(1999, de),
            UnitTax {
                gross_minor: 1999,
                tax_minor: 319,
                rate_ppm: 190_000
            }
        );
        let wa = rate("US", Some("WA"));
        // 19.99 plus 6.5 %: 1.30 of tax (1.29935 rounds up).
        assert_eq!(
            unit_tax(1999, wa),
            UnitTax {
                gross_minor: 2129,
                tax_minor: 130,
                rate_ppm: 65_000
            }
        );
        let nj = rate("US", Some("NJ"));
        assert_eq!(unit_tax(1000, nj).tax_minor, 66);
        // Yen: no minor units, the same arithmetic on whole yen.
        assert_eq!(unit_tax(1500, de).tax_minor, 239);
        assert_eq!(unit_tax(1500, None).gross_minor, 1500);
        assert_eq!(unit_tax(0, de).tax_minor, 0);
    }

    #[test]
    fn rates_read_as_percentages() {
        assert_eq!(percent_text(190_000), "19 %");
        assert_eq!(percent_text(66_250), "6.625 %");
        assert_eq!(percent_text(81_000), "8.1 %");
        assert_eq!(percent_text(255_000), "25.5 %");
    }
}
