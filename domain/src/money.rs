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

    proptest! {
        #[test]
        fn formatting_keeps_every_minor_unit(minor in 0i64..=MAX_PRICE_MINOR) {
            let text = Money::price(minor, Currency::EUR).expect("in range").format();
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            prop_assert_eq!(digits.parse::<i64>().expect("digits"), minor);
        }
    }
}
