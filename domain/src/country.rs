//! ISO 3166-1 alpha-2 country codes with their English short names (from Debian's
//! `iso-codes` 4.15, `iso_3166-1.json`, the common name where it has one). Shared with the web app,
//! which lists the names; the api accepts only these codes in a shipping address.

/// One officially assigned ISO 3166-1 alpha-2 code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Country {
    /// Upper case, e.g. `DE`.
    pub code: &'static str,
    /// English short name, e.g. `Germany`.
    pub name: &'static str,
}

/// Every officially assigned code, sorted by code (binary search in [`find`]).
pub const COUNTRIES: [Country; 249] = [
    Country {
        code: "AD",
        name: "Andorra",
    },
    Country {
        code: "AE",
        name: "United Arab Emirates",
    },
    Country {
        code: "AF",
        name: "Afghanistan",
    },
    Country {
        code: "AG",
        name: "Antigua and Barbuda",
    },
    Country {
        code: "AI",
        name: "Anguilla",
    },
    Country {
        code: "AL",
        name: "Albania",
    },
    Country {
        code: "AM",
        name: "Armenia",
    },
    Country {
        code: "AO",
        name: "Angola",
    },
    Country {
        code: "AQ",
        name: "Antarctica",
    },
    Country {
        code: "AR",
        name: "Argentina",
    },
    Country {
        code: "AS",
        name: "American Samoa",
    },
    Country {
        code: "AT",
        name: "Austria",
    },
    Country {
        code: "AU",
        name: "Australia",
    },
    Country {
        code: "AW",
        name: "Aruba",
    },
    Country {
        code: "AX",
        name: "Åland Islands",
    },
    Country {
        code: "AZ",
        name: "Azerbaijan",
    },
    Country {
        code: "BA",
        name: "Bosnia and Herzegovina",
    },
    Country {
        code: "BB",
        name: "Barbados",
    },
    Country {
        code: "BD",
        name: "Bangladesh",
    },
    Country {
        code: "BE",
        name: "Belgium",
    },
    Country {
        code: "BF",
        name: "Burkina Faso",
    },
    Country {
        code: "BG",
        name: "Bulgaria",
    },
    Country {
        code: "BH",
        name: "Bahrain",
    },
    Country {
        code: "BI",
        name: "Burundi",
    },
    Country {
        code: "BJ",
        name: "Benin",
    },
    Country {
        code: "BL",
        name: "Saint Barthélemy",
    },
    Country {
        code: "BM",
        name: "Bermuda",
    },
    Country {
        code: "BN",
        name: "Brunei Darussalam",
    },
    Country {
        code: "BO",
        name: "Bolivia",
    },
    Country {
        code: "BQ",
        name: "Bonaire, Sint Eustatius and Saba",
    },
    Country {
        code: "BR",
        name: "Brazil",
    },
    Country {
        code: "BS",
        name: "Bahamas",
    },
    Country {
        code: "BT",
        name: "Bhutan",
    },
    Country {
        code: "BV",
        name: "Bouvet Island",
    },
    Country {
        code: "BW",
        name: "Botswana",
    },
    Country {
        code: "BY",
        name: "Belarus",
    },
    Country {
        code: "BZ",
        name: "Belize",
    },
    Country {
        code: "CA",
        name: "Canada",
    },
    Country {
        code: "CC",
        name: "Cocos (Keeling) Islands",
    },
    Country {
        code: "CD",
        name: "Congo, The Democratic Republic of the",
    },
    Country {
        code: "CF",
        name: "Central African Republic",
    },
    Country {
        code: "CG",
        name: "Congo",
    },
    Country {
        code: "CH",
        name: "Switzerland",
    },
    Country {
        code: "CI",
        name: "Côte d'Ivoire",
    },
    Country {
        code: "CK",
        name: "Cook Islands",
    },
    Country {
        code: "CL",
        name: "Chile",
    },
    Country {
        code: "CM",
        name: "Cameroon",
    },
    Country {
        code: "CN",
        name: "China",
    },
    Country {
        code: "CO",
        name: "Colombia",
    },
    Country {
        code: "CR",
        name: "Costa Rica",
    },
    Country {
        code: "CU",
        name: "Cuba",
    },
    Country {
        code: "CV",
        name: "Cabo Verde",
    },
    Country {
        code: "CW",
        name: "Curaçao",
    },
    Country {
        code: "CX",
        name: "Christmas Island",
    },
    Country {
        code: "CY",
        name: "Cyprus",
    },
    Country {
        code: "CZ",
        name: "Czechia",
    },
    Country {
        code: "DE",
        name: "Germany",
    },
    Country {
        code: "DJ",
        name: "Djibouti",
    },
    Country {
        code: "DK",
        name: "Denmark",
    },
    Country {
        code: "DM",
        name: "Dominica",
    },
    Country {
        code: "DO",
        name: "Dominican Republic",
    },
    Country {
        code: "DZ",
        name: "Algeria",
    },
    Country {
        code: "EC",
        name: "Ecuador",
    },
    Country {
        code: "EE",
        name: "Estonia",
    },
    Country {
        code: "EG",
        name: "Egypt",
    },
    Country {
        code: "EH",
        name: "Western Sahara",
    },
    Country {
        code: "ER",
        name: "Eritrea",
    },
    Country {
        code: "ES",
        name: "Spain",
    },
    Country {
        code: "ET",
        name: "Ethiopia",
    },
    Country {
        code: "FI",
        name: "Finland",
    },
    Country {
        code: "FJ",
        name: "Fiji",
    },
    Country {
        code: "FK",
        name: "Falkland Islands (Malvinas)",
    },
    Country {
        code: "FM",
        name: "Micronesia, Federated States of",
    },
    Country {
        code: "FO",
        name: "Faroe Islands",
    },
    Country {
        code: "FR",
        name: "France",
    },
    Country {
        code: "GA",
        name: "Gabon",
    },
    Country {
        code: "GB",
        name: "United Kingdom",
    },
    Country {
        code: "GD",
        name: "Grenada",
    },
    Country {
        code: "GE",
        name: "Georgia",
    },
    Country {
        code: "GF",
        name: "French Guiana",
    },
    Country {
        code: "GG",
        name: "Guernsey",
    },
    Country {
        code: "GH",
        name: "Ghana",
    },
    Country {
        code: "GI",
        name: "Gibraltar",
    },
    Country {
        code: "GL",
        name: "Greenland",
    },
    Country {
        code: "GM",
        name: "Gambia",
    },
    Country {
        code: "GN",
        name: "Guinea",
    },
    Country {
        code: "GP",
        name: "Guadeloupe",
    },
    Country {
        code: "GQ",
        name: "Equatorial Guinea",
    },
    Country {
        code: "GR",
        name: "Greece",
    },
    Country {
        code: "GS",
        name: "South Georgia and the South Sandwich Islands",
    },
    Country {
        code: "GT",
        name: "Guatemala",
    },
    Country {
        code: "GU",
        name: "Guam",
    },
    Country {
        code: "GW",
        name: "Guinea-Bissau",
    },
    Country {
        code: "GY",
        name: "Guyana",
    },
    Country {
        code: "HK",
        name: "Hong Kong",
    },
    Country {
        code: "HM",
        name: "Heard Island and McDonald Islands",
    },
    Country {
        code: "HN",
        name: "Honduras",
    },
    Country {
        code: "HR",
        name: "Croatia",
    },
    Country {
        code: "HT",
        name: "Haiti",
    },
    Country {
        code: "HU",
        name: "Hungary",
    },
    Country {
        code: "ID",
        name: "Indonesia",
    },
    Country {
        code: "IE",
        name: "Ireland",
    },
    Country {
        code: "IL",
        name: "Israel",
    },
    Country {
        code: "IM",
        name: "Isle of Man",
    },
    Country {
        code: "IN",
        name: "India",
    },
    Country {
        code: "IO",
        name: "British Indian Ocean Territory",
    },
    Country {
        code: "IQ",
        name: "Iraq",
    },
    Country {
        code: "IR",
        name: "Iran",
    },
    Country {
        code: "IS",
        name: "Iceland",
    },
    Country {
        code: "IT",
        name: "Italy",
    },
    Country {
        code: "JE",
        name: "Jersey",
    },
    Country {
        code: "JM",
        name: "Jamaica",
    },
    Country {
        code: "JO",
        name: "Jordan",
    },
    Country {
        code: "JP",
        name: "Japan",
    },
    Country {
        code: "KE",
        name: "Kenya",
    },
    Country {
        code: "KG",
        name: "Kyrgyzstan",
    },
    Country {
        code: "KH",
        name: "Cambodia",
    },
    Country {
        code: "KI",
        name: "Kiribati",
    },
    Country {
        code: "KM",
        name: "Comoros",
    },
    Country {
        code: "KN",
        name: "Saint Kitts and Nevis",
    },
    Country {
        code: "KP",
        name: "North Korea",
    },
    Country {
        code: "KR",
        name: "South Korea",
    },
    Country {
        code: "KW",
        name: "Kuwait",
    },
    Country {
        code: "KY",
        name: "Cayman Islands",
    },
    Country {
        code: "KZ",
        name: "Kazakhstan",
    },
    Country {
        code: "LA",
        name: "Laos",
    },
    Country {
        code: "LB",
        name: "Lebanon",
    },
    Country {
        code: "LC",
        name: "Saint Lucia",
    },
    Country {
        code: "LI",
        name: "Liechtenstein",
    },
    Country {
        code: "LK",
        name: "Sri Lanka",
    },
    Country {
        code: "LR",
        name: "Liberia",
    },
    Country {
        code: "LS",
        name: "Lesotho",
    },
    Country {
        code: "LT",
        name: "Lithuania",
    },
    Country {
        code: "LU",
        name: "Luxembourg",
    },
    Country {
        code: "LV",
        name: "Latvia",
    },
    Country {
        code: "LY",
        name: "Libya",
    },
    Country {
        code: "MA",
        name: "Morocco",
    },
    Country {
        code: "MC",
        name: "Monaco",
    },
    Country {
        code: "MD",
        name: "Moldova",
    },
    Country {
        code: "ME",
        name: "Montenegro",
    },
    Country {
        code: "MF",
        name: "Saint Martin (French part)",
    },
    Country {
        code: "MG",
        name: "Madagascar",
    },
    Country {
        code: "MH",
        name: "Marshall Islands",
    },
    Country {
        code: "MK",
        name: "North Macedonia",
    },
    Country {
        code: "ML",
        name: "Mali",
    },
    Country {
        code: "MM",
        name: "Myanmar",
    },
    Country {
        code: "MN",
        name: "Mongolia",
    },
    Country {
        code: "MO",
        name: "Macao",
    },
    Country {
        code: "MP",
        name: "Northern Mariana Islands",
    },
    Country {
        code: "MQ",
        name: "Martinique",
    },
    Country {
        code: "MR",
        name: "Mauritania",
    },
    Country {
        code: "MS",
        name: "Montserrat",
    },
    Country {
        code: "MT",
        name: "Malta",
    },
    Country {
        code: "MU",
        name: "Mauritius",
    },
    Country {
        code: "MV",
        name: "Maldives",
    },
    Country {
        code: "MW",
        name: "Malawi",
    },
    Country {
        code: "MX",
        name: "Mexico",
    },
    Country {
        code: "MY",
        name: "Malaysia",
    },
    Country {
        code: "MZ",
        name: "Mozambique",
    },
    Country {
        code: "NA",
        name: "Namibia",
    },
    Country {
        code: "NC",
        name: "New Caledonia",
    },
    Country {
        code: "NE",
        name: "Niger",
    },
    Country {
        code: "NF",
        name: "Norfolk Island",
    },
    Country {
        code: "NG",
        name: "Nigeria",
    },
    Country {
        code: "NI",
        name: "Nicaragua",
    },
    Country {
        code: "NL",
        name: "Netherlands",
    },
    Country {
        code: "NO",
        name: "Norway",
    },
    Country {
        code: "NP",
        name: "Nepal",
    },
    Country {
        code: "NR",
        name: "Nauru",
    },
    Country {
        code: "NU",
        name: "Niue",
    },
    Country {
        code: "NZ",
        name: "New Zealand",
    },
    Country {
        code: "OM",
        name: "Oman",
    },
    Country {
        code: "PA",
        name: "Panama",
    },
    Country {
        code: "PE",
        name: "Peru",
    },
    Country {
        code: "PF",
        name: "French Polynesia",
    },
    Country {
        code: "PG",
        name: "Papua New Guinea",
    },
    Country {
        code: "PH",
        name: "Philippines",
    },
    Country {
        code: "PK",
        name: "Pakistan",
    },
    Country {
        code: "PL",
        name: "Poland",
    },
    Country {
        code: "PM",
        name: "Saint Pierre and Miquelon",
    },
    Country {
        code: "PN",
        name: "Pitcairn",
    },
    Country {
        code: "PR",
        name: "Puerto Rico",
    },
    Country {
        code: "PS",
        name: "Palestine, State of",
    },
    Country {
        code: "PT",
        name: "Portugal",
    },
    Country {
        code: "PW",
        name: "Palau",
    },
    Country {
        code: "PY",
        name: "Paraguay",
    },
    Country {
        code: "QA",
        name: "Qatar",
    },
    Country {
        code: "RE",
        name: "Réunion",
    },
    Country {
        code: "RO",
        name: "Romania",
    },
    Country {
        code: "RS",
        name: "Serbia",
    },
    Country {
        code: "RU",
        name: "Russian Federation",
    },
    Country {
        code: "RW",
        name: "Rwanda",
    },
    Country {
        code: "SA",
        name: "Saudi Arabia",
    },
    Country {
        code: "SB",
        name: "Solomon Islands",
    },
    Country {
        code: "SC",
        name: "Seychelles",
    },
    Country {
        code: "SD",
        name: "Sudan",
    },
    Country {
        code: "SE",
        name: "Sweden",
    },
    Country {
        code: "SG",
        name: "Singapore",
    },
    Country {
        code: "SH",
        name: "Saint Helena, Ascension and Tristan da Cunha",
    },
    Country {
        code: "SI",
        name: "Slovenia",
    },
    Country {
        code: "SJ",
        name: "Svalbard and Jan Mayen",
    },
    Country {
        code: "SK",
        name: "Slovakia",
    },
    Country {
        code: "SL",
        name: "Sierra Leone",
    },
    Country {
        code: "SM",
        name: "San Marino",
    },
    Country {
        code: "SN",
        name: "Senegal",
    },
    Country {
        code: "SO",
        name: "Somalia",
    },
    Country {
        code: "SR",
        name: "Suriname",
    },
    Country {
        code: "SS",
        name: "South Sudan",
    },
    Country {
        code: "ST",
        name: "Sao Tome and Principe",
    },
    Country {
        code: "SV",
        name: "El Salvador",
    },
    Country {
        code: "SX",
        name: "Sint Maarten (Dutch part)",
    },
    Country {
        code: "SY",
        name: "Syria",
    },
    Country {
        code: "SZ",
        name: "Eswatini",
    },
    Country {
        code: "TC",
        name: "Turks and Caicos Islands",
    },
    Country {
        code: "TD",
        name: "Chad",
    },
    Country {
        code: "TF",
        name: "French Southern Territories",
    },
    Country {
        code: "TG",
        name: "Togo",
    },
    Country {
        code: "TH",
        name: "Thailand",
    },
    Country {
        code: "TJ",
        name: "Tajikistan",
    },
    Country {
        code: "TK",
        name: "Tokelau",
    },
    Country {
        code: "TL",
        name: "Timor-Leste",
    },
    Country {
        code: "TM",
        name: "Turkmenistan",
    },
    Country {
        code: "TN",
        name: "Tunisia",
    },
    Country {
        code: "TO",
        name: "Tonga",
    },
    Country {
        code: "TR",
        name: "Türkiye",
    },
    Country {
        code: "TT",
        name: "Trinidad and Tobago",
    },
    Country {
        code: "TV",
        name: "Tuvalu",
    },
    Country {
        code: "TW",
        name: "Taiwan",
    },
    Country {
        code: "TZ",
        name: "Tanzania",
    },
    Country {
        code: "UA",
        name: "Ukraine",
    },
    Country {
        code: "UG",
        name: "Uganda",
    },
    Country {
        code: "UM",
        name: "United States Minor Outlying Islands",
    },
    Country {
        code: "US",
        name: "United States",
    },
    Country {
        code: "UY",
        name: "Uruguay",
    },
    Country {
        code: "UZ",
        name: "Uzbekistan",
    },
    Country {
        code: "VA",
        name: "Holy See (Vatican City State)",
    },
    Country {
        code: "VC",
        name: "Saint Vincent and the Grenadines",
    },
    Country {
        code: "VE",
        name: "Venezuela",
    },
    Country {
        code: "VG",
        name: "Virgin Islands, British",
    },
    Country {
        code: "VI",
        name: "Virgin Islands, U.S.",
    },
    Country {
        code: "VN",
        name: "Vietnam",
    },
    Country {
        code: "VU",
        name: "Vanuatu",
    },
    Country {
        code: "WF",
        name: "Wallis and Futuna",
    },
    Country {
        code: "WS",
        name: "Samoa",
    },
    Country {
        code: "YE",
        name: "Yemen",
    },
    Country {
        code: "YT",
        name: "Mayotte",
    },
    Country {
        code: "ZA",
        name: "South Africa",
    },
    Country {
        code: "ZM",
        name: "Zambia",
    },
    Country {
        code: "ZW",
        name: "Zimbabwe",
    },
];

/// The country of an alpha-2 code (any case); `None` for anything else (`XX`, `UK`, `EU`, …).
pub fn find(code: &str) -> Option<Country> {
    let code = code.to_ascii_uppercase();
    COUNTRIES
        .binary_search_by(|c| c.code.cmp(code.as_str()))
        .ok()
        .and_then(|i| COUNTRIES.get(i).copied())
}

/// The country a person typed: its English name (any case, as listed in [`COUNTRIES`]) or, for
/// two letters, its code; `None` for anything else. Names first, so that a name is never read as
/// a code.
pub fn lookup(text: &str) -> Option<Country> {
    let text = text.trim();
    let lower = text.to_lowercase();
    COUNTRIES
        .iter()
        .find(|c| c.name.to_lowercase() == lower)
        .copied()
        .or_else(|| (text.chars().count() == 2).then(|| find(text)).flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_unique_and_two_capital_letters() {
        assert!(COUNTRIES.windows(2).all(|w| w[0].code < w[1].code));
        assert!(
            COUNTRIES
                .iter()
                .all(|c| c.code.len() == 2 && c.code.bytes().all(|b| b.is_ascii_uppercase()))
        );
    }

    #[test]
    fn codes_are_found_and_unassigned_ones_are_not() {
        assert_eq!(find("de").map(|c| c.name), Some("Germany"));
        assert_eq!(find("GB").map(|c| c.name), Some("United Kingdom"));
        for bad in ["XX", "UK", "EU", "ZZ", "D", "DEU", ""] {
            assert_eq!(find(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_typed_name_or_code_is_looked_up() {
        assert_eq!(lookup(" germany ").map(|c| c.code), Some("DE"));
        assert_eq!(lookup("Åland Islands").map(|c| c.code), Some("AX"));
        assert_eq!(lookup("ge").map(|c| c.name), Some("Georgia"));
        for bad in ["Ger", "Germ any", "", "XX"] {
            assert_eq!(lookup(bad), None, "{bad}");
        }
    }
}
