//! Regional prices and currencies: a publisher's prices per currency (set, or the suggested
//! conversion), the region of a visitor (the gateway's country) and of an account, orders and
//! wallets in the region's currency (yen without minor units), a wallet that holds one
//! currency, and a refund into a wallet that changed its currency since.

use super::*;

const PRICES: &str = "mutation($e: UUID!, $p: [MoneyInput!]!) { setEditionPrices(editionId: $e, prices: $p) { id } }";
const EDITION_PRICES: &str = "query($id: UUID!) { product(id: $id) { editions { basePrice { amountMinor currency } prices { currency price { amountMinor } suggested { amountMinor } setByPublisher } } } }";
const SHOWN: &str = "query($id: UUID!) { region { country currency pricesIncludeTax taxRate } product(id: $id) { priceFrom { amountMinor currency formatted } editions { price { amountMinor currency } currentPrice { amountMinor currency } } } }";
const SET_REGION: &str = "mutation($c: String!, $s: String) { setBillingCountry(country: $c, state: $s) { billingCountry } }";
const RECEIPT: &str = "query($id: UUID!) { order(id: $id) { status total { amountMinor currency formatted } receipt { buyerCountry pricesIncludeTax net { amountMinor } tax { amountMinor } total { amountMinor currency } taxes { rate } } } }";

#[tokio::test]
async fn each_region_sees_and_pays_its_own_currency() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (product, edition) = shop.product("Yen Quest", 1999, false).await;

    // Bad prices are typed errors and change nothing.
    for (prices, code) in [
        (
            json!([{ "currency": "XYZ", "amountMinor": 100 }]),
            "BAD_USER_INPUT",
        ),
        (
            json!([{ "currency": "usd", "amountMinor": 100 }]),
            "BAD_USER_INPUT",
        ),
        (
            json!([{ "currency": "EUR", "amountMinor": 100 }]),
            "BAD_USER_INPUT",
        ),
        (
            json!([{ "currency": "USD", "amountMinor": -1 }]),
            "BAD_USER_INPUT",
        ),
        (
            json!([{ "currency": "USD", "amountMinor": 100 }, { "currency": "USD", "amountMinor": 200 }]),
            "BAD_USER_INPUT",
        ),
    ] {
        let v = app
            .gql(
                Some(&shop.publisher),
                PRICES,
                json!({ "e": edition, "p": prices }),
            )
            .await;
        assert_eq!(error_code(&v), code, "{prices}: {v:#}");
        assert_eq!(v["errors"][0]["extensions"]["field"], "prices", "{prices}");
    }
    let other = app
        .staff(
            &format!("other-{}@publisher.test", uuid::Uuid::new_v4().simple()),
            "Other Games",
            Role::Publisher,
        )
        .await
        .0;
    // Another publisher, and a buyer.
    for token in [&other, &shop.buyer] {
        let v = app
            .gql(
                Some(token),
                PRICES,
                json!({ "e": edition, "p": [{ "currency": "USD", "amountMinor": 1 }] }),
            )
            .await;
        assert_eq!(error_code(&v), "FORBIDDEN", "{v:#}");
    }
    let listed = app
        .gql(
            Some(&shop.publisher),
            EDITION_PRICES,
            json!({ "id": product }),
        )
        .await;
    assert_no_errors(&listed);
    let prices = listed["data"]["product"]["editions"][0]["prices"]
        .as_array()
        .expect("prices")
        .clone();
    assert!(
        prices.iter().all(|p| p["setByPublisher"] == false),
        "{listed:#}"
    );
    assert_eq!(prices[0]["currency"], "EUR", "the base price first");

    // The publisher sets 19.99 USD; yen stay at the suggestion (19.99 EUR at 161.4: 3226,
    // shown as 3200).
    let v = app
        .gql(
            Some(&shop.publisher),
            PRICES,
            json!({ "e": edition, "p": [{ "currency": "USD", "amountMinor": 1999 }] }),
        )
        .await;
    assert_no_errors(&v);
    let listed = app
        .gql(
            Some(&shop.publisher),
            EDITION_PRICES,
            json!({ "id": product }),
        )
        .await;
    let prices = listed["data"]["product"]["editions"][0]["prices"]
        .as_array()
        .expect("prices")
        .clone();
    let of = |c: &str| {
        prices
            .iter()
            .find(|p| p["currency"] == c)
            .cloned()
            .unwrap_or_else(|| panic!("{c} missing from {prices:#?}"))
    };
    assert_eq!(of("USD")["price"]["amountMinor"], 1999);
    assert_eq!(of("USD")["suggested"]["amountMinor"], 2099);
    assert_eq!(of("USD")["setByPublisher"], true);
    assert_eq!(of("JPY")["price"]["amountMinor"], 3200);
    assert_eq!(of("JPY")["setByPublisher"], false);

    // A visitor sees the currency of the country the gateway placed them in; the header is
    // believed from the gateway only.
    let shown = |headers: Vec<(&'static str, &'static str)>| {
        let product = product.clone();
        async move {
            let (_, _, v) = app
                .gql_http(&headers, SHOWN, json!({ "id": product }))
                .await;
            assert_no_errors(&v);
            v["data"].clone()
        }
    };
    let jp = shown(vec![
        ("x-gateway-secret", GATEWAY_SECRET),
        ("x-country", "JP"),
    ])
    .await;
    assert_eq!(jp["region"]["currency"], "JPY");
    assert_eq!(jp["region"]["taxRate"], "10 %");
    assert_eq!(jp["product"]["priceFrom"]["formatted"], "3200 JPY");
    assert_eq!(
        jp["product"]["editions"][0]["currentPrice"]["amountMinor"],
        3200
    );
    let us = shown(vec![
        ("x-gateway-secret", GATEWAY_SECRET),
        ("x-country", "US"),
    ])
    .await;
    assert_eq!(us["product"]["priceFrom"]["formatted"], "19.99 USD");
    assert_eq!(us["region"]["pricesIncludeTax"], false);
    let forged = shown(vec![("x-country", "JP")]).await;
    assert_eq!(forged["region"]["currency"], "EUR", "not from the gateway");
    assert_eq!(forged["product"]["priceFrom"]["formatted"], "19.99 EUR");
    let v = app
        .gql(
            None,
            "query($id: UUID!) { product(id: $id) { priceFrom(currency: \"ABC\") { amountMinor } } }",
            json!({ "id": product }),
        )
        .await;
    assert_eq!(error_code(&v), "BAD_USER_INPUT", "{v:#}");

    // Three buyers in three currencies, each paying what their region showed.
    let yen_buyer = buyer_from(app, "JP", "yen").await;
    let dollar_buyer = buyer_from(app, "US", "dollar").await;
    let v = app
        .gql(
            Some(&dollar_buyer),
            SET_REGION,
            json!({ "c": "US", "s": "WA" }),
        )
        .await;
    assert_no_errors(&v);
    fund_account(app, &yen_buyer, 5000, "yen-top").await;
    fund_account(app, &dollar_buyer, 5000, "usd-top").await;
    shop.fund(5000, "eur-top").await;
    assert_eq!(wallet_of(app, &yen_buyer).await, ("JPY".to_owned(), 5000));
    assert_eq!(
        wallet_of(app, &dollar_buyer).await,
        ("USD".to_owned(), 5000)
    );

    let buy = |token: String, key: &'static str| {
        let edition = edition.clone();
        let shop = &shop;
        async move {
            let id = order_id(&shop.place(&token, &[&edition], key).await);
            let done = shop.settled(&token, &id).await;
            assert_eq!(done["status"], "COMPLETED", "{done:#}");
            let v = shop
                .app
                .gql(Some(&token), RECEIPT, json!({ "id": id }))
                .await;
            assert_no_errors(&v);
            v["data"]["order"].clone()
        }
    };
    // Japan: 3200 yen with 10 % consumption tax in it (2909 + 291), no minor units.
    let yen = buy(yen_buyer.clone(), "yen-order").await;
    assert_eq!(yen["total"]["formatted"], "3200 JPY");
    assert_eq!(yen["receipt"]["buyerCountry"], "JP");
    assert_eq!(yen["receipt"]["net"]["amountMinor"], 2909);
    assert_eq!(yen["receipt"]["tax"]["amountMinor"], 291);
    assert_eq!(yen["receipt"]["taxes"][0]["rate"], "10 %");
    assert_eq!(wallet_of(app, &yen_buyer).await, ("JPY".to_owned(), 1800));
    // Washington: the publisher's 19.99 USD, 6.5 % added at checkout.
    let usd = buy(dollar_buyer.clone(), "usd-order").await;
    assert_eq!(usd["total"]["formatted"], "21.29 USD");
    assert_eq!(usd["receipt"]["pricesIncludeTax"], false);
    assert_eq!(usd["receipt"]["net"]["amountMinor"], 1999);
    assert_eq!(
        wallet_of(app, &dollar_buyer).await,
        ("USD".to_owned(), 5000 - 2129)
    );
    // Germany (the store's country): the base price.
    let eur = buy(shop.buyer.clone(), "eur-order").await;
    assert_eq!(eur["total"]["formatted"], "19.99 EUR");

    // The publisher's revenue is kept per currency: the yen sale's net is 2909 yen.
    let revenue = |c: &'static str| {
        let shop = &shop;
        async move {
            wait_until(&format!("the {c} sale"), || async {
                let v = shop
                    .app
                    .gql(
                        Some(&shop.publisher),
                        "query($c: String) { publisherRevenue(days: 7, currency: $c) { currency currencies gross { amountMinor currency } sales } }",
                        json!({ "c": c }),
                    )
                    .await;
                assert_no_errors(&v);
                let r = v["data"]["publisherRevenue"].clone();
                (r["sales"] == 1).then_some(r)
            })
            .await
        }
    };
    let r = revenue("JPY").await;
    assert_eq!(r["gross"]["amountMinor"], 2909);
    assert_eq!(r["gross"]["currency"], "JPY");
    assert_eq!(revenue("USD").await["gross"]["amountMinor"], 1999);
    let r = revenue("EUR").await;
    assert_eq!(r["gross"]["amountMinor"], 1680);
    let mut currencies: Vec<String> =
        serde_json::from_value(r["currencies"].clone()).expect("list");
    currencies.sort();
    assert_eq!(currencies, ["EUR", "JPY", "USD"]);
    check_invariants(app).await;
}

#[tokio::test]
async fn a_wallet_holds_one_currency() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (_, game) = shop.product("Euro Drift", 1000, false).await;
    let (_, other) = shop.product("Euro Drift II", 600, false).await;
    shop.fund(1000, "eur-top").await;

    // Money in euros keeps the region in euros: a typed error that changes nothing.
    let v = app
        .gql(
            Some(&shop.buyer),
            SET_REGION,
            json!({ "c": "US", "s": "WA" }),
        )
        .await;
    assert_eq!(error_code(&v), "CONFLICT", "{v:#}");
    let v = app
        .gql(
            Some(&shop.buyer),
            SHOWN,
            json!({ "id": shop.product("Probe", 1, false).await.0 }),
        )
        .await;
    assert_eq!(v["data"]["region"]["currency"], "EUR");
    // Another euro country is fine.
    let v = app
        .gql(Some(&shop.buyer), SET_REGION, json!({ "c": "IE" }))
        .await;
    assert_no_errors(&v);

    // Spent, the wallet may change: the buyer moves to the US, tops up in dollars.
    let paid = shop.completed(&[&game], "spend").await;
    assert_eq!(wallet_of(app, &shop.buyer).await, ("EUR".to_owned(), 0));
    let v = app
        .gql(
            Some(&shop.buyer),
            SET_REGION,
            json!({ "c": "US", "s": "NY" }),
        )
        .await;
    assert_no_errors(&v);
    assert_eq!(wallet_of(app, &shop.buyer).await, ("USD".to_owned(), 0));
    fund_account(app, &shop.buyer, 700, "usd-top").await;
    assert_eq!(wallet_of(app, &shop.buyer).await, ("USD".to_owned(), 700));

    // The euro order refunded now: 10.00 EUR come back as 10.50 USD (the table's rate), and
    // each ledger entry keeps its own currency.
    let v = app
        .gql(
            Some(&shop.buyer),
            "mutation($o: UUID!, $r: String!) { requestRefund(orderId: $o, reason: $r) { status } }",
            json!({ "o": paid, "r": "Moved abroad" }),
        )
        .await;
    assert_no_errors(&v);
    shop.reaches(&shop.buyer, &paid, &["REFUNDED"]).await;
    wait_until("the converted refund", || async {
        (wallet_of(app, &shop.buyer).await == ("USD".to_owned(), 700 + 1050)).then_some(())
    })
    .await;
    let v = app.gql(Some(&shop.buyer), WALLET_CURRENCY, json!({})).await;
    let entries: Vec<(String, i64, String)> = v["data"]["wallet"]["entries"]["edges"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["kind"].as_str().expect("kind").to_owned(),
                n["amount"]["amountMinor"].as_i64().expect("amount"),
                n["amount"]["currency"]
                    .as_str()
                    .expect("currency")
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("REFUND".to_owned(), 1050, "USD".to_owned()),
            ("CREDIT".to_owned(), 700, "USD".to_owned()),
            ("DEBIT".to_owned(), -1000, "EUR".to_owned()),
            ("CREDIT".to_owned(), 1000, "EUR".to_owned()),
        ]
    );
    // A New York order in dollars: 600 EUR → suggested 6.30 USD → 5.99 USD, plus 4 % state tax.
    let id = shop.completed(&[&other], "usd-order").await;
    let v = app
        .gql(Some(&shop.buyer), RECEIPT, json!({ "id": id }))
        .await;
    assert_eq!(
        v["data"]["order"]["total"]["formatted"], "6.23 USD",
        "{v:#}"
    );
    assert_eq!(wallet_of(app, &shop.buyer).await.1, 1750 - 623);
    check_invariants(app).await;
}
