//! Money: an integer count of minor units and an ISO 4217 currency code. Never a float.

use serde::{Deserialize, Serialize};

/// Largest price the store accepts for one item (1 000 000.00 in a two-decimal currency).
pub const MAX_PRICE_MINOR: i64 = 100_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("the currency must be a three-letter ISO 4217 code such as EUR")]
    InvalidCurrency,
    #[error("the amount must be between 0 and {MAX_PRICE_MINOR} minor units")]
    OutOfRange,
    #[error("the store does not sell in {0}; it sells in {list}", list = supported_list())]
    Unsupported(String),
}

/// An ISO 4217 currency code (three upper-case letters); `"EUR"` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Currency, MoneyError> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl Currency {
    pub const EUR: Currency = Currency(*b"EUR");

    pub fn parse(s: &str) -> Result<Currency, MoneyError> {
        let b = s.trim().as_bytes();
        match b {
            [a, b2, c] if [a, b2, c].iter().all(|x| x.is_ascii_uppercase()) => {
                Ok(Currency([*a, *b2, *c]))
            }
            _ => Err(MoneyError::InvalidCurrency),
        }
    }

    /// A code the store sells in (a row of `domain/data/exchange_rates.csv`).
    pub fn parse_supported(s: &str) -> Result<Currency, MoneyError> {
        let c = Currency::parse(s)?;
        if exchange_rate(c).is_none() {
            return Err(MoneyError::Unsupported(c.as_str().to_owned()));
        }
        Ok(c)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (ISO 4217 minor unit) for the codes the store displays;
    /// 2 otherwise.
    pub fn exponent(&self) -> u32 {
        match self.as_str() {
            "JPY" | "KRW" | "ISK" | "CLP" | "VND" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
            _ => 2,
        }
    }
}

/// An amount in minor units of a currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    /// A price: 0 ..= [`MAX_PRICE_MINOR`].
    pub fn price(minor: i64, currency: Currency) -> Result<Money, MoneyError> {
        if !(0..=MAX_PRICE_MINOR).contains(&minor) {
            return Err(MoneyError::OutOfRange);
        }
        Ok(Money { minor, currency })
    }

    /// `12.34 EUR`-style text, exact (integer arithmetic only).
    pub fn format(&self) -> String {
        let exp = self.currency.exponent();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exp == 0 {
            return format!("{sign}{abs} {}", self.currency.as_str());
        }
        let unit = 10u64.pow(exp);
        format!(
            "{sign}{}.{:0width$} {}",
            abs / unit,
            abs % unit,
            self.currency.as_str(),
            width = exp as usize
        )
    }
}

/// A price typed by a person (`12`, `12.5`, `12,50`, `0`) in minor units of `currency`: at
/// most as many decimals as the currency has (none for yen), not negative; `None` otherwise.
pub fn parse_price(text: &str, currency: Currency) -> Option<i64> {
    let text = text.trim().replace(',', ".");
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let exp = currency.exponent() as usize;
    if whole.is_empty() && frac.is_empty()
        || frac.len() > exp
        || !whole
            .chars()
            .chain(frac.chars())
            .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<exp$}").parse().ok()?
    };
    whole
        .checked_mul(10i64.pow(currency.exponent()))?
        .checked_add(frac)
}

/// An amount to pay typed by a person, as [`parse_price`] reads it, and more than zero.
pub fn parse_amount(text: &str, currency: Currency) -> Option<i64> {
    parse_price(text, currency).filter(|m| *m > 0)
}

const RATES: &str = include_str!("../data/exchange_rates.csv");

/// One row of `domain/data/exchange_rates.csv`: a currency the store sells in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeRate {
    pub currency: Currency,
    /// Units of the currency one euro buys, in millionths (1.05 USD is 1 050 000).
    pub per_eur_micros: i64,
    pub source: String,
    pub as_of: String,
}

/// `"11.72"` → 11 720 000 millionths.
fn micros(text: &str) -> Option<i64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 6 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<6}").parse().ok()?;
    whole.checked_mul(1_000_000)?.checked_add(frac)
}

fn parse_rates(text: &str) -> Vec<ExchangeRate> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("currency,"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            let [currency, per_eur, source, as_of] = f.as_slice() else {
                return None;
            };
            Some(ExchangeRate {
                currency: Currency::parse(currency).ok()?,
                per_eur_micros: micros(per_eur).filter(|m| *m > 0)?,
                source: (*source).to_owned(),
                as_of: (*as_of).to_owned(),
            })
        })
        .collect()
}

/// Every currency the store sells in, in the table's order.
pub fn exchange_rates() -> &'static [ExchangeRate] {
    static TABLE: std::sync::OnceLock<Vec<ExchangeRate>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| parse_rates(RATES))
}

/// The row of `currency`, `None` when the store does not sell in it.
pub fn exchange_rate(currency: Currency) -> Option<&'static ExchangeRate> {
    exchange_rates().iter().find(|r| r.currency == currency)
}

fn supported_list() -> String {
    exchange_rates()
        .iter()
        .map(|r| r.currency.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `minor` units of `from` in minor units of `to` at the table's rates (through the euro),
/// rounded half away from zero; `None` when either currency has no rate.
pub fn convert(minor: i64, from: Currency, to: Currency) -> Option<i64> {
    if from == to {
        return Some(minor);
    }
    let (f, t) = (exchange_rate(from)?, exchange_rate(to)?);
    let num = i128::from(minor) * i128::from(t.per_eur_micros) * 10i128.pow(to.exponent());
    let den = i128::from(f.per_eur_micros) * 10i128.pow(from.exponent());
    let rounded = (num.abs() * 2 + den) / (2 * den);
    i64::try_from(if num < 0 { -rounded } else { rounded }).ok()
}

/// The price a publisher is offered in `to` for a base price of `minor` units of `from`: the
/// conversion at the table's rate, rounded as prices there look. Two significant figures of
/// the whole units (21.37 → 21, 8 553 → 8 600), then just below the round number where the
/// currency has minor units (21 → 20.99); amounts under one whole unit stay as converted.
pub fn suggested_price(minor: i64, from: Currency, to: Currency) -> Option<i64> {
    if from == to || minor <= 0 {
        return Some(minor.max(0));
    }
    let exact = convert(minor, from, to)?;
    let unit = 10i64.pow(to.exponent());
    if exact < unit {
        return Some(exact);
    }
    let digits = (exact / unit).checked_ilog10().unwrap_or(0) + 1;
    let step = unit * 10i64.pow(digits.saturating_sub(2));
    let rounded = (exact * 2 + step) / (2 * step) * step;
    Some(if to.exponent() > 0 {
        rounded - 1
    } else {
        rounded
    })
}

/// The largest price the store accepts in `currency`: [`MAX_PRICE_MINOR`], or its euro value
/// converted where that is more (a yen has no cents).
pub fn max_price_minor(currency: Currency) -> i64 {
    convert(MAX_PRICE_MINOR, Currency::EUR, currency)
        .unwrap_or(MAX_PRICE_MINOR)
        .max(MAX_PRICE_MINOR)
}

/// The legal tender of a country (ISO 3166-1 alpha-2), where the store sells in it; `None`
/// elsewhere (the store's own currency applies there).
pub fn currency_of_country(country: &str) -> Option<Currency> {
    const EURO_AREA: [&str; 21] = [
        "AT", "BE", "BG", "HR", "CY", "EE", "FI", "FR", "DE", "GR", "IE", "IT", "LV", "LT", "LU",
        "MT", "NL", "PT", "SK", "SI", "ES",
    ];
    const OTHERS: [(&str, &str); 22] = [
        ("US", "USD"),
        ("PR", "USD"),
        ("GB", "GBP"),
        ("JP", "JPY"),
        ("CH", "CHF"),
        ("LI", "CHF"),
        ("NO", "NOK"),
        ("SE", "SEK"),
        ("DK", "DKK"),
        ("FO", "DKK"),
        ("GL", "DKK"),
        ("PL", "PLN"),
        ("CZ", "CZK"),
        ("HU", "HUF"),
        ("RO", "RON"),
        ("AD", "EUR"),
        ("MC", "EUR"),
        ("SM", "EUR"),
        ("VA", "EUR"),
        ("ME", "EUR"),
        ("XK", "EUR"),
        ("IM", "GBP"),
    ];
    let country = country.trim().to_ascii_uppercase();
    let code = if EURO_AREA.contains(&country.as_str()) {
        "EUR"
    } else {
        OTHERS.iter().find(|(c, _)| *c == country)?.1
    };
    Currency::parse_supported(code).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn currencies_and_prices_are_checked() {
        assert_eq!(Currency::parse("EUR"), Ok(Currency::EUR));
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("EURO").is_err());
        assert!(Money::price(-1, Currency::EUR).is_err());
        assert!(Money::price(MAX_PRICE_MINOR + 1, Currency::EUR).is_err());
        assert_eq!(
            Money::price(1999, Currency::EUR).map(|m| m.format()),
            Ok("19.99 EUR".into())
        );
        let yen = Currency::parse("JPY").expect("jpy");
        assert_eq!(
            Money::price(1500, yen).map(|m| m.format()),
            Ok("1500 JPY".into())
        );
        assert_eq!(
            Money {
                minor: -5,
                currency: Currency::EUR
            }
            .format(),
            "-0.05 EUR"
        );
    }

    #[test]
    fn currencies_are_text_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&Currency::EUR).expect("json"),
            "\"EUR\""
        );
        assert!(serde_json::from_str::<Currency>("\"eur\"").is_err());
    }

    #[test]
    fn the_rate_table_is_whole_and_converts_exactly() {
        let yen = Currency::parse("JPY").expect("jpy");
        let usd = Currency::parse("USD").expect("usd");
        assert!(exchange_rates().len() >= 12, "every row parses");
        assert!(
            exchange_rates()
                .iter()
                .all(|r| !r.source.is_empty() && r.as_of.len() == 10)
        );
        assert_eq!(Currency::parse_supported("JPY"), Ok(yen));
        assert!(matches!(
            Currency::parse_supported("XYZ"),
            Err(MoneyError::Unsupported(c)) if c == "XYZ"
        ));
        // 19.99 EUR: 20.99 USD exactly at 1.05, 3226 yen at 161.4 (no minor units).
        assert_eq!(convert(1999, Currency::EUR, usd), Some(2099));
        assert_eq!(convert(1999, Currency::EUR, yen), Some(3226));
        assert_eq!(convert(3226, yen, Currency::EUR), Some(1999));
        assert_eq!(convert(-1999, Currency::EUR, usd), Some(-2099));
        assert_eq!(suggested_price(1999, Currency::EUR, usd), Some(2099));
        assert_eq!(suggested_price(5299, Currency::EUR, usd), Some(5599));
        assert_eq!(suggested_price(1999, Currency::EUR, yen), Some(3200));
        assert_eq!(suggested_price(5299, Currency::EUR, yen), Some(8600));
        assert_eq!(suggested_price(0, Currency::EUR, yen), Some(0));
        assert_eq!(suggested_price(50, Currency::EUR, usd), Some(53));
        assert_eq!(parse_amount("12,5", Currency::EUR), Some(1250));
        assert_eq!(parse_amount("12.345", Currency::EUR), None);
        assert_eq!(parse_amount("1500", yen), Some(1500));
        assert_eq!(parse_amount("1500.5", yen), None);
        assert_eq!(parse_amount("0", Currency::EUR), None);
        assert_eq!(parse_price("0", Currency::EUR), Some(0));
        assert_eq!(parse_price("19,99", Currency::EUR), Some(1999));
        assert_eq!(parse_amount("-3", Currency::EUR), None);
        assert_eq!(parse_amount(".", Currency::EUR), None);
        assert_eq!(currency_of_country("de"), Some(Currency::EUR));
        assert_eq!(currency_of_country("JP"), Some(yen));
        assert_eq!(currency_of_country("BR"), None);
        assert!(max_price_minor(yen) > MAX_PRICE_MINOR);
        assert_eq!(max_price_minor(Currency::EUR), MAX_PRICE_MINOR);
    }

    proptest! {
        #[test]
        fn formatting_keeps_every_minor_unit(minor in 0i64..=MAX_PRICE_MINOR) {
            let text = Money::price(minor, Currency::EUR).expect("in range").format();
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            prop_assert_eq!(digits.parse::<i64>().expect("digits"), minor);
        }
    }
}
