//! Tax: a buyer's billing country (checked), the tax of each order taken at `placeOrder` from
//! the rate table (inclusive in Germany and Norway, added in Washington state), the receipt of
//! each, and the publisher's revenue of the net amount.

use super::*;

const SET: &str = "mutation($c: String!, $s: String) { setBillingCountry(country: $c, state: $s) { billingCountry billingState } }";
const RECEIPT: &str = "query($id: UUID!) { order(id: $id) { total { amountMinor } receipt { number buyerCountry buyerCountryName buyerState pricesIncludeTax taxSource seller lines { productTitle publisher quantity net { amountMinor } tax { amountMinor } total { amountMinor } taxRate } taxes { rate net { amountMinor } tax { amountMinor } } net { amountMinor } tax { amountMinor } total { amountMinor formatted } } } }";
const REVENUE: &str = "query($c: String) { publisherRevenue(days: 7, currency: $c) { gross { amountMinor } fee { amountMinor } net { amountMinor } sales } }";

/// (total, net, tax, rate text, prices include tax, country, state) of an order's receipt.
fn summary(v: &Value) -> (i64, i64, i64, String, bool, String, Option<String>) {
    assert_no_errors(v);
    let r = &v["data"]["order"]["receipt"];
    (
        r["total"]["amountMinor"].as_i64().expect("total"),
        r["net"]["amountMinor"].as_i64().expect("net"),
        r["tax"]["amountMinor"].as_i64().expect("tax"),
        r["taxes"][0]["rate"].as_str().expect("rate").to_owned(),
        r["pricesIncludeTax"].as_bool().expect("inclusive"),
        r["buyerCountry"].as_str().expect("country").to_owned(),
        r["buyerState"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn orders_are_taxed_where_the_buyer_is_and_the_receipt_says_so() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (_, de_game) = shop.product("Tax Quest", 1999, false).await;
    let (_, us_game) = shop.product("Sales Tax Saga", 1999, false).await;
    let (_, no_game) = shop.product("Fjord Drift", 1999, false).await;
    shop.fund(10_000, "top-1").await;

    // Bad places are typed errors and change nothing.
    for (country, state, field) in [
        ("XX", None, "country"),
        ("Germany", None, "country"),
        ("US", None, "state"),
        ("US", Some("Washington"), "state"),
        ("DE", Some("BY"), "state"),
    ] {
        let v = app
            .gql(Some(&shop.buyer), SET, json!({ "c": country, "s": state }))
            .await;
        assert_eq!(
            error_code(&v),
            "BAD_USER_INPUT",
            "{country} {state:?}: {v:#}"
        );
        assert_eq!(
            v["errors"][0]["extensions"]["field"], field,
            "{country} {state:?}"
        );
    }
    let me = app
        .gql(
            Some(&shop.buyer),
            "{ me { billingCountry billingState } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["billingCountry"], Value::Null);

    // Germany: 19 % in the price.
    let set = app.gql(Some(&shop.buyer), SET, json!({ "c": "de" })).await;
    assert_eq!(set["data"]["setBillingCountry"]["billingCountry"], "DE");
    let de = shop.completed(&[&de_game], "de").await;
    let de = app
        .gql(Some(&shop.buyer), RECEIPT, json!({ "id": de }))
        .await;
    assert_eq!(
        summary(&de),
        (
            1999,
            1680,
            319,
            "19 %".to_owned(),
            true,
            "DE".to_owned(),
            None
        )
    );
    let receipt = &de["data"]["order"]["receipt"];
    assert_eq!(receipt["buyerCountryName"], "Germany");
    assert_eq!(receipt["lines"][0]["publisher"], "Nebula Games");
    assert!(
        receipt["taxSource"]
            .as_str()
            .is_some_and(|s| s.contains("EU Commission") && s.contains("2025")),
        "{receipt:#}"
    );

    // A wallet holds one currency: with euros in it, the region stays in euros.
    let refused = app
        .gql(Some(&shop.buyer), SET, json!({ "c": "US", "s": "wa" }))
        .await;
    assert_eq!(error_code(&refused), "CONFLICT", "{refused:#}");

    // Washington state (a buyer of its own, paying in dollars the publisher priced at 19.99):
    // 6.5 % added at checkout, so the order costs more than the list price.
    let price = |edition: &str, currency: &str| {
        app.gql(
            Some(&shop.publisher),
            "mutation($e: UUID!, $p: [MoneyInput!]!) { setEditionPrices(editionId: $e, prices: $p) { id } }",
            json!({ "e": edition, "p": [{ "currency": currency, "amountMinor": 1999 }] }),
        )
    };
    assert_no_errors(&price(&us_game, "USD").await);
    assert_no_errors(&price(&no_game, "NOK").await);
    let buy = |token: String, edition: String, key: &'static str, funds: i64| {
        let shop = &shop;
        async move {
            fund_account(&shop.app, &token, funds, &format!("{key}-top")).await;
            let id = order_id(&shop.place(&token, &[&edition], key).await);
            let done = shop.settled(&token, &id).await;
            assert_eq!(done["status"], "COMPLETED", "{done:#}");
            shop.app
                .gql(Some(&token), RECEIPT, json!({ "id": id }))
                .await
        }
    };
    let wa = app
        .sign_up(
            &format!("wa-{}@user.test", uuid::Uuid::new_v4().simple()),
            "WA",
        )
        .await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let set = app
        .gql(Some(&wa), SET, json!({ "c": "US", "s": "wa" }))
        .await;
    assert_eq!(set["data"]["setBillingCountry"]["billingState"], "WA");
    let us = buy(wa.clone(), us_game.clone(), "us", 5000).await;
    assert_eq!(
        summary(&us),
        (
            2129,
            1999,
            130,
            "6.5 %".to_owned(),
            false,
            "US".to_owned(),
            Some("WA".to_owned())
        )
    );
    assert_eq!(
        us["data"]["order"]["total"]["amountMinor"], 2129,
        "the wallet paid the gross"
    );

    assert_eq!(wallet_of(app, &wa).await, ("USD".to_owned(), 5000 - 2129));

    // Norway (in kroner, 19.99 NOK as the publisher set): 25 % in the price.
    let nor = app
        .sign_up(
            &format!("no-{}@user.test", uuid::Uuid::new_v4().simple()),
            "NO",
        )
        .await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let set = app.gql(Some(&nor), SET, json!({ "c": "NO" })).await;
    assert_eq!(set["data"]["setBillingCountry"]["billingCountry"], "NO");
    assert_eq!(
        set["data"]["setBillingCountry"]["billingState"],
        Value::Null
    );
    let no = buy(nor.clone(), no_game.clone(), "no", 10_000).await;
    assert_eq!(
        summary(&no),
        (
            1999,
            1599,
            400,
            "25 %".to_owned(),
            true,
            "NO".to_owned(),
            None
        )
    );

    // Each wallet paid the gross; the publisher earns from the net of each, per currency.
    assert_eq!(shop.balance().await, 10_000 - 1999);
    assert_eq!(
        wallet_of(app, &nor).await,
        ("NOK".to_owned(), 10_000 - 1999)
    );
    for (currency, gross) in [("EUR", 1680), ("USD", 1999), ("NOK", 1599)] {
        let revenue = wait_until(&format!("the {currency} sale in the revenue"), || async {
            let v = app
                .gql(Some(&shop.publisher), REVENUE, json!({ "c": currency }))
                .await;
            (v["data"]["publisherRevenue"]["sales"] == 1).then_some(v)
        })
        .await;
        assert_eq!(
            revenue["data"]["publisherRevenue"]["gross"]["amountMinor"], gross,
            "{currency}: {revenue:#}"
        );
    }
    check_invariants(app).await;
}
