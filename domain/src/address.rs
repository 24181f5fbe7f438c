//! A shipping address: where the physical lines of an order go. A value shared by ordering (an
//! order carries it) and fulfillment (a shipment goes to it).

use serde::{Deserialize, Serialize};

/// Where the physical lines of an order go. Built only through [`ShippingAddress::parse`],
/// which trims every field and checks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingAddress {
    pub name: String,
    /// ISO 3166-1 alpha-2, upper case (`DE`, `FR`).
    pub country: String,
    /// State, province or county; may be empty where a country has none.
    pub region: String,
    pub city: String,
    pub postal_code: String,
    pub street: String,
    /// International format: `+` and 7 to 15 digits (spaces, dashes, dots and parentheses
    /// allowed between them).
    pub phone: String,
}

/// A shipping address field that breaks its rule; `field` is the GraphQL input field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AddressError {
    pub field: &'static str,
    pub message: String,
}

fn text(field: &'static str, value: &str, min: usize, max: usize) -> Result<String, AddressError> {
    let v = value.trim();
    let n = v.chars().count();
    if n < min || n > max || v.chars().any(char::is_control) {
        let what = words(field);
        return Err(AddressError {
            field,
            message: if min > 0 {
                format!("Enter the {what}: 1 to {max} characters, on one line.")
            } else {
                format!("The {what} can have at most {max} characters, on one line.")
            },
        });
    }
    Ok(v.to_owned())
}

/// A field's name as a person reads it in a message (the field itself stays in `field`).
fn words(field: &str) -> &str {
    match field {
        "name" => "recipient's name",
        "postalCode" => "postal code",
        other => other,
    }
}

impl ShippingAddress {
    /// Checks and normalises each field (the country to upper case, the phone without
    /// separators).
    pub fn parse(
        name: &str,
        country: &str,
        region: &str,
        city: &str,
        postal_code: &str,
        street: &str,
        phone: &str,
    ) -> Result<ShippingAddress, AddressError> {
        let country_code = country.trim().to_ascii_uppercase();
        if crate::country::find(&country_code).is_none() {
            return Err(AddressError {
                field: "country",
                message: "Choose a country from the list (its two-letter ISO code, such as DE)."
                    .into(),
            });
        }
        let postal = postal_code.trim();
        if postal.is_empty()
            || postal.len() > 12
            || !postal
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
        {
            return Err(AddressError {
                field: "postalCode",
                message: "Enter the postal code: 1 to 12 letters, digits, spaces or dashes.".into(),
            });
        }
        let raw_phone = phone.trim();
        let digits: String = raw_phone.chars().filter(char::is_ascii_digit).collect();
        let separators_only = raw_phone
            .chars()
            .skip(1)
            .all(|c| c.is_ascii_digit() || " -.()".contains(c));
        if !raw_phone.starts_with('+') || !separators_only || !(7..=15).contains(&digits.len()) {
            return Err(AddressError {
                field: "phone",
                message: "Enter the phone number in international form: + and 7 to 15 digits, such as +49 30 1234567.".into(),
            });
        }
        Ok(ShippingAddress {
            name: text("name", name, 1, 100)?,
            country: country_code,
            region: text("region", region, 0, 100)?,
            city: text("city", city, 1, 100)?,
            postal_code: postal.to_ascii_uppercase(),
            street: text("street", street, 1, 200)?,
            phone: format!("+{digits}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> [&'static str; 7] {
        [
            " Ada Lovelace ",
            "de",
            "Berlin",
            "Berlin",
            "10115",
            "Invalidenstr. 1",
            "+49 30 1234-5678",
        ]
    }

    fn parse(f: [&str; 7]) -> Result<ShippingAddress, AddressError> {
        ShippingAddress::parse(f[0], f[1], f[2], f[3], f[4], f[5], f[6])
    }

    #[test]
    fn a_good_address_is_normalised() {
        let a = parse(ok()).expect("valid");
        assert_eq!(a.name, "Ada Lovelace");
        assert_eq!(a.country, "DE");
        assert_eq!(a.phone, "+493012345678");
        let mut no_region = ok();
        no_region[2] = "";
        assert!(parse(no_region).is_ok());
    }

    #[test]
    fn each_field_is_checked() {
        let long = "x".repeat(201);
        for (i, bad, field) in [
            (0, "  ", "name"),
            (1, "DEU", "country"),
            (1, "1A", "country"),
            (1, "XX", "country"),
            (1, "UK", "country"),
            (3, "", "city"),
            (4, "", "postalCode"),
            (4, "10115/2", "postalCode"),
            (5, long.as_str(), "street"),
            (5, "line\u{0}break", "street"),
            (6, "030 123456", "phone"),
            (6, "+49 12", "phone"),
            (6, "+49 30 abc 12345", "phone"),
        ] {
            let mut f = ok();
            f[i] = bad;
            assert_eq!(parse(f).map_err(|e| e.field), Err(field), "{bad:?}");
        }
    }
}
