//! The shipping address form, shared by the checkout and a bundle's page: its fields with the
//! domain's rules checked as the person types, and the country picked by its name.

use domain::fulfillment::ShippingAddress;
use leptos::prelude::*;

use crate::components::{Field, FieldErrors};

/// A shipping address as typed (the country as its ISO 3166-1 code when one was recognised):
/// each page turns it into its own operation's input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Address {
    pub name: String,
    pub country: String,
    pub region: String,
    pub city: String,
    pub postal_code: String,
    pub street: String,
    pub phone: String,
}

/// The shipping address fields: (HTML id, the API's field name, label, autocomplete, hint).
pub const ADDRESS_FIELDS: [(&str, &str, &str, &str, &str); 7] = [
    ("ship-name", "name", "Full name", "shipping name", ""),
    (
        "ship-street",
        "street",
        "Street and number",
        "shipping street-address",
        "",
    ),
    (
        "ship-postal",
        "postalCode",
        "Postal code",
        "shipping postal-code",
        "",
    ),
    ("ship-city", "city", "City", "shipping address-level2", ""),
    (
        "ship-region",
        "region",
        "State, province or county (optional)",
        "shipping address-level1",
        "",
    ),
    (
        "ship-country",
        "country",
        "Country",
        "shipping country-name",
        "",
    ),
    (
        "ship-phone",
        "phone",
        "Phone",
        "shipping tel",
        "International format, e.g. +49 30 1234567: the carrier may call.",
    ),
];

/// The address as typed, one signal per field (in the order of [`ADDRESS_FIELDS`]).
#[derive(Clone, Copy)]
pub struct AddressForm([RwSignal<String>; 7]);

impl AddressForm {
    pub fn new() -> AddressForm {
        AddressForm(std::array::from_fn(|_| RwSignal::new(String::new())))
    }

    fn value(&self, field: &str) -> String {
        ADDRESS_FIELDS
            .iter()
            .position(|(_, f, ..)| *f == field)
            .map(|i| self.0[i].get_untracked())
            .unwrap_or_default()
    }

    /// What was typed, the country as its code.
    pub fn typed(&self) -> Address {
        Address {
            name: self.value("name"),
            country: country_code(&self.value("country")),
            region: self.value("region"),
            city: self.value("city"),
            postal_code: self.value("postalCode"),
            street: self.value("street"),
            phone: self.value("phone"),
        }
    }

    /// Every field that breaks the domain's rule, each with the domain's message: each field
    /// is checked on its own against an otherwise valid address.
    pub fn errors(&self) -> FieldErrors {
        let typed = self.typed();
        let valid = Address {
            name: "A".into(),
            country: "DE".into(),
            region: String::new(),
            city: "B".into(),
            postal_code: "1".into(),
            street: "C".into(),
            phone: "+4930123456".into(),
        };
        let parse = |a: &Address| {
            ShippingAddress::parse(
                &a.name,
                &a.country,
                &a.region,
                &a.city,
                &a.postal_code,
                &a.street,
                &a.phone,
            )
        };
        let mut errors = FieldErrors::new();
        for (_, field, ..) in ADDRESS_FIELDS {
            let mut one = valid.clone();
            match field {
                "name" => one.name = typed.name.clone(),
                "country" => one.country = typed.country.clone(),
                "region" => one.region = typed.region.clone(),
                "city" => one.city = typed.city.clone(),
                "postalCode" => one.postal_code = typed.postal_code.clone(),
                "street" => one.street = typed.street.clone(),
                _ => one.phone = typed.phone.clone(),
            }
            if let Err(e) = parse(&one) {
                // The box takes a name: the domain's message speaks of codes.
                let message = if field == "country" {
                    "Pick a country from the list.".to_owned()
                } else {
                    e.message
                };
                errors.push((field, message));
            }
        }
        errors
    }
}

/// The "Shipping address" fieldset: every field of `address` with its hint and the error
/// `errors` holds for it.
#[component]
pub fn AddressFields(address: AddressForm, errors: RwSignal<FieldErrors>) -> impl IntoView {
    view! {
        <fieldset class="form form--card address">
            <legend>"Shipping address"</legend>
            <p class="muted">"Physical editions are shipped by their publisher to this address."</p>
            {ADDRESS_FIELDS
                .iter()
                .enumerate()
                .map(|(i, (id, field, label, autocomplete, hint))| {
                    let hint = (!hint.is_empty()).then(|| (*hint).to_owned());
                    if *field == "country" {
                        return view! {
                            <CountrySelect id=*id label=*label value=address.0[i] errors=errors />
                        }.into_any();
                    }
                    view! {
                        <Field
                            id=*id
                            field=*field
                            label=*label
                            kind=if *field == "phone" { "tel" } else { "text" }
                            autocomplete=*autocomplete
                            value=address.0[i]
                            errors=errors
                            hint=hint
                            required=*field != "region"
                            maxlength=200
                        />
                    }.into_any()
                })
                .collect_view()}
        </fieldset>
    }
}

/// `From<Address>` for an operation's `ShippingAddressInput` (graphql_client makes one such
/// type per operation): `address::address_input!(place_order::ShippingAddressInput);`.
macro_rules! address_input {
    ($input:ty) => {
        impl From<$crate::address::Address> for $input {
            fn from(a: $crate::address::Address) -> Self {
                Self {
                    name: a.name,
                    country: a.country,
                    region: a.region,
                    city: a.city,
                    postal_code: a.postal_code,
                    street: a.street,
                    phone: a.phone,
                }
            }
        }
    };
}
pub(crate) use address_input;

/// The API's names of the address fields, for `place_error`.
pub fn field_names() -> Vec<&'static str> {
    ADDRESS_FIELDS.iter().map(|f| f.1).collect()
}

/// The ISO 3166-1 code the API takes for what was typed in the country box (a name, or a code);
/// the text as it is when it names no country, for the domain's check to refuse.
pub fn country_code(typed: &str) -> String {
    domain::country::lookup(typed).map_or_else(|| typed.trim().to_owned(), |c| c.code.to_owned())
}

/// The country of a shipping address, typed by its name with the names offered as the person
/// types (a `<datalist>`); the country understood, with its ISO 3166-1 code, shows underneath,
/// so that "Ge" is seen to mean Georgia before the order is placed.
#[component]
fn CountrySelect(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    errors: RwSignal<FieldErrors>,
) -> impl IntoView {
    let mut countries = domain::country::COUNTRIES.to_vec();
    countries.sort_by_key(|c| c.name);
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let list_id = format!("{id}-names");
    let error = move || {
        errors.with(|errors| {
            errors
                .iter()
                .find(|(f, _)| *f == "country")
                .map(|(_, m)| m.clone())
        })
    };
    let understood = move || {
        value.with(|typed| match domain::country::lookup(typed) {
            Some(c) => format!("{} — {}", c.name, c.code),
            None if typed.trim().is_empty() => "Type the country's name.".to_owned(),
            None => "No country has this name; pick one from the list.".to_owned(),
        })
    };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                name="country"
                type="text"
                list=list_id.clone()
                autocomplete="shipping country-name"
                spellcheck="false"
                required=true
                maxlength=100
                aria-invalid=move || error().is_some().to_string()
                aria-describedby=format!("{hint_id} {error_id}")
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
            <datalist id=list_id>
                {countries.into_iter().map(|c| view! { <option value=c.name>{c.code}</option> }).collect_view()}
            </datalist>
            <p class="field__hint" id=hint_id aria-live="polite" data-country=move || value.with(|t| domain::country::lookup(t).map(|c| c.code).unwrap_or_default())>
                {understood}
            </p>
            {move || error().map(|message| view! { <p class="field__error" id=error_id.clone()>{message}</p> })}
        </div>
    }
}
