//! Bundles: the rules of making one (typed errors that change nothing), "complete the bundle"
//! (a buyer who owns a part pays the bundle's ratio of the rest, the lines and the receipt add
//! up to it, discounts do not stack), a box in a bundle shipped in one shipment with the
//! order, and a bundle and one of its parts ordered at the same instant by one buyer: each
//! product charged once, at the price shown.

use super::*;

const CREATE: &str = "mutation($i: CreateBundleInput!) { createBundle(input: $i) { id slug status price { amountMinor } listTotal { amountMinor } } }";
const PUBLISH: &str = "mutation($id: UUID!) { publishBundle(id: $id) { id status } }";
const UPDATE: &str =
    "mutation($id: UUID!, $i: UpdateBundleInput!) { updateBundle(id: $id, input: $i) { id } }";
const BUNDLE: &str = "query($id: UUID!) { bundle(id: $id) { id title status price { amountMinor } listTotal { amountMinor } savingsPercent priceForYou { amountMinor } ownedCount ownedItems itemCount items { owned edition { id } product { id title } listPrice { amountMinor } priceForYou { amountMinor } } } }";
const PLACE_BUNDLE: &str = "mutation($b: UUID!, $a: ShippingAddressInput, $k: String!) { placeOrder(bundleId: $b, shippingAddress: $a, idempotencyKey: $k) { id status } }";
const BOTH: &str = "mutation($b: UUID!, $l: [OrderLineInput!]!, $k: String!) { placeOrder(bundleId: $b, lines: $l, idempotencyKey: $k) { id } }";
const LINES: &str = "query($id: UUID!) { order(id: $id) { status total { amountMinor } lines { productId bundleId unitPrice { amountMinor } } receipt { total { amountMinor } lines { total { amountMinor } } } } }";
const PRODUCT_BUNDLES: &str = "query($p: UUID!) { product(id: $p) { bundles { id title } } }";

fn bundle_input(title: &str, price: i64, editions: &[&str]) -> Value {
    json!({ "i": { "title": title, "priceMinor": price, "editionIds": editions } })
}

impl Shop {
    /// A published bundle of the shop's publisher: its id.
    async fn bundle(&self, title: &str, price: i64, editions: &[&str]) -> String {
        let v = self
            .app
            .gql(
                Some(&self.publisher),
                CREATE,
                bundle_input(title, price, editions),
            )
            .await;
        assert_no_errors(&v);
        let id = v["data"]["createBundle"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let p = self
            .app
            .gql(Some(&self.publisher), PUBLISH, json!({ "id": id }))
            .await;
        assert_no_errors(&p);
        assert_eq!(p["data"]["publishBundle"]["status"], "PUBLISHED");
        id
    }

    /// The bundle as the caller of `token` sees it.
    async fn bundle_for(&self, token: Option<&str>, id: &str) -> Value {
        let v = self.app.gql(token, BUNDLE, json!({ "id": id })).await;
        assert_no_errors(&v);
        v["data"]["bundle"].clone()
    }

    async fn place_bundle(
        &self,
        token: &str,
        bundle: &str,
        address: Option<Value>,
        key: &str,
    ) -> Value {
        self.app
            .gql(
                Some(token),
                PLACE_BUNDLE,
                json!({ "b": bundle, "a": address, "k": key }),
            )
            .await
    }

    async fn bundle_rows(&self) -> i64 {
        self.app
            .scalar(
                "SELECT ((SELECT count(*) FROM catalog.bundle) \
                 + (SELECT count(*) FROM catalog.bundle_item))::bigint AS n",
            )
            .await
    }
}

fn amount(v: &Value) -> i64 {
    v["amountMinor"].as_i64().expect("amountMinor")
}

#[tokio::test]
async fn bad_bundles_are_typed_errors_and_change_nothing() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (_, a) = shop.product("Bundle Rules A", 2000, false).await;
    let (_, b) = shop.product("Bundle Rules B", 3000, false).await;
    let draft = app
        .create_product(
            &shop.publisher,
            json!({ "title": "Not Yet Out", "genres": ["action"], "platforms": ["windows"] }),
            &[digital("Standard", 1000)],
            false,
        )
        .await;
    let (other, _) = app
        .staff("other-pub@publisher.test", "Atlas Works", Role::Publisher)
        .await;
    let theirs = app
        .create_product(
            &other,
            json!({ "title": "Their Game", "genres": ["action"], "platforms": ["windows"] }),
            &[digital("Standard", 1000)],
            true,
        )
        .await;
    let (unpublished, their_edition) = (&draft.editions[0], &theirs.editions[0]);

    let cases = [
        (
            "someone else's edition",
            app.gql(
                Some(&shop.publisher),
                CREATE,
                bundle_input("Mixed", 2500, &[&a, their_edition]),
            )
            .await,
            "FORBIDDEN",
            None,
        ),
        (
            "an unpublished edition",
            app.gql(
                Some(&shop.publisher),
                CREATE,
                bundle_input("Early", 2500, &[&a, unpublished]),
            )
            .await,
            "BAD_USER_INPUT",
            Some("editionIds"),
        ),
        (
            "a price equal to its parts (ratio 1)",
            app.gql(
                Some(&shop.publisher),
                CREATE,
                bundle_input("No Deal", 5000, &[&a, &b]),
            )
            .await,
            "BAD_USER_INPUT",
            Some("price"),
        ),
        (
            "a price above its parts",
            app.gql(
                Some(&shop.publisher),
                CREATE,
                bundle_input("Worse Deal", 6000, &[&a, &b]),
            )
            .await,
            "BAD_USER_INPUT",
            Some("price"),
        ),
        (
            "a duplicate edition",
            app.gql(
                Some(&shop.publisher),
                CREATE,
                bundle_input("Twice", 3000, &[&a, &b, &a]),
            )
            .await,
            "BAD_USER_INPUT",
            Some("editionIds"),
        ),
        (
            "one edition only",
            app.gql(
                Some(&shop.publisher),
                CREATE,
                bundle_input("Alone", 1000, &[&a]),
            )
            .await,
            "BAD_USER_INPUT",
            Some("editionIds"),
        ),
        (
            "a buyer",
            app.gql(
                Some(&shop.buyer),
                CREATE,
                bundle_input("Fan Pack", 2500, &[&a, &b]),
            )
            .await,
            "FORBIDDEN",
            None,
        ),
        (
            "an unknown edition",
            app.gql(
                Some(&shop.publisher),
                CREATE,
                bundle_input("Ghost", 2500, &[&a, &uuid::Uuid::now_v7().to_string()]),
            )
            .await,
            "NOT_FOUND",
            None,
        ),
    ];
    for (what, answer, code, field) in &cases {
        assert_eq!(error_code(answer), *code, "{what}: {answer:#}");
        if let Some(field) = field {
            assert_eq!(answer["errors"][0]["extensions"]["field"], *field, "{what}");
        }
    }
    assert_eq!(
        shop.bundle_rows().await,
        0,
        "a refused bundle is not stored"
    );

    // A draft is not for sale; another publisher cannot touch it; a change that breaks a rule
    // is refused and leaves it as it was.
    let draft_bundle = app
        .gql(
            Some(&shop.publisher),
            CREATE,
            bundle_input("Pair", 4000, &[&a, &b]),
        )
        .await;
    assert_no_errors(&draft_bundle);
    let id = draft_bundle["data"]["createBundle"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let rows = shop.bundle_rows().await;
    let unseen = app.gql(None, BUNDLE, json!({ "id": id })).await;
    assert_eq!(error_code(&unseen), "NOT_FOUND", "{unseen:#}");
    shop.fund(10_000, "top-1").await;
    let not_on_sale = shop.place_bundle(&shop.buyer, &id, None, "draft").await;
    assert_eq!(error_code(&not_on_sale), "NOT_FOUND", "{not_on_sale:#}");
    let by_other = app
        .gql(
            Some(&other),
            UPDATE,
            json!({ "id": id, "i": { "priceMinor": 100 } }),
        )
        .await;
    assert_eq!(error_code(&by_other), "FORBIDDEN", "{by_other:#}");
    let publish_other = app.gql(Some(&other), PUBLISH, json!({ "id": id })).await;
    assert_eq!(error_code(&publish_other), "FORBIDDEN", "{publish_other:#}");
    let too_dear = app
        .gql(
            Some(&shop.publisher),
            UPDATE,
            json!({ "id": id, "i": { "priceMinor": 5000 } }),
        )
        .await;
    assert_eq!(error_code(&too_dear), "BAD_USER_INPUT", "{too_dear:#}");
    let foreign = app
        .gql(
            Some(&shop.publisher),
            UPDATE,
            json!({ "id": id, "i": { "editionIds": [a, their_edition] } }),
        )
        .await;
    assert_eq!(error_code(&foreign), "FORBIDDEN", "{foreign:#}");
    assert_eq!(shop.bundle_rows().await, rows);
    let publisher_view = app
        .gql(Some(&shop.publisher), BUNDLE, json!({ "id": id }))
        .await;
    assert_eq!(
        amount(&publisher_view["data"]["bundle"]["price"]),
        4000,
        "{publisher_view:#}"
    );
    // Lines and a bundle in one order are refused.
    let both = app
        .gql(
            Some(&shop.buyer),
            BOTH,
            json!({ "b": id, "l": [{ "editionId": a, "quantity": 1 }], "k": "both" }),
        )
        .await;
    assert_eq!(error_code(&both), "BAD_USER_INPUT", "{both:#}");
    assert_eq!(both["errors"][0]["extensions"]["field"], "bundleId");
    assert_eq!(
        app.scalar(r#"SELECT count(*)::bigint AS n FROM ordering."order""#)
            .await,
        0
    );
    assert_eq!(shop.balance().await, 10_000);
}

#[tokio::test]
async fn a_buyer_who_owns_a_part_pays_the_bundles_share_of_the_rest() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (p1, e1) = shop.product("Trilogy One", 1999, false).await;
    let (p2, e2) = shop.product("Trilogy Two", 2999, false).await;
    let (p3, e3) = shop.product("Trilogy Three", 3999, false).await;
    let bundle = shop.bundle("The Trilogy", 4999, &[&e1, &e2, &e3]).await;
    // A running discount on a part does not stack with the bundle.
    let discount = app
        .gql(
            Some(&shop.publisher),
            "mutation($i: ScheduleDiscountInput!) { scheduleDiscount(input: $i) { id } }",
            json!({ "i": { "editionId": e3, "percent": 50,
                           "endsAt": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339() } }),
        )
        .await;
    assert_no_errors(&discount);
    shop.fund(20_000, "top-1").await;

    let anonymous = shop.bundle_for(None, &bundle).await;
    assert_eq!(amount(&anonymous["price"]), 4999);
    assert_eq!(amount(&anonymous["listTotal"]), 1999 + 2999 + 3999);
    assert_eq!(anonymous["savingsPercent"], 44);
    assert_eq!(amount(&anonymous["priceForYou"]), 4999);
    let on_product = app.gql(None, PRODUCT_BUNDLES, json!({ "p": p2 })).await;
    assert_eq!(
        on_product["data"]["product"]["bundles"][0]["id"],
        bundle.as_str(),
        "{on_product:#}"
    );

    // The buyer owns the first part: 4999 / 8997 of the other two's 6998 is 3888.13…, split
    // by the largest remainder into 1666 and 2222.
    shop.completed(&[&e1], "first").await;
    let mine = shop.bundle_for(Some(&shop.buyer), &bundle).await;
    assert_eq!(mine["ownedCount"], 1);
    assert_eq!(mine["ownedItems"], json!([e1]));
    assert_eq!(amount(&mine["priceForYou"]), 3888, "{mine:#}");
    assert_eq!(mine["items"][0]["owned"], true);
    assert_eq!(mine["items"][0]["priceForYou"], Value::Null);
    assert_eq!(amount(&mine["items"][1]["priceForYou"]), 1666);
    assert_eq!(amount(&mine["items"][2]["priceForYou"]), 2222);

    let placed = shop.place_bundle(&shop.buyer, &bundle, None, "rest").await;
    let id = order_id(&placed);
    let again = shop.place_bundle(&shop.buyer, &bundle, None, "rest").await;
    let other_input = shop.place(&shop.buyer, &[&e2], "rest").await;
    let done = shop.settled(&shop.buyer, &id).await;
    assert_eq!(done["status"], "COMPLETED", "{done:#}");
    assert_eq!(
        order_id(&again),
        id,
        "the same key and bundle answer the same order"
    );
    assert_eq!(error_code(&other_input), "CONFLICT", "{other_input:#}");
    let order = app.gql(Some(&shop.buyer), LINES, json!({ "id": id })).await;
    assert_no_errors(&order);
    let o = &order["data"]["order"];
    assert_eq!(amount(&o["total"]), 3888);
    let lines = o["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 2, "{o:#}");
    assert!(lines.iter().all(|l| l["bundleId"] == bundle.as_str()));
    let products: Vec<&str> = lines
        .iter()
        .map(|l| l["productId"].as_str().expect("product"))
        .collect();
    assert_eq!(products, [p2.as_str(), p3.as_str()]);
    assert_eq!(amount(&o["receipt"]["total"]), 3888);
    let receipt_lines: i64 = o["receipt"]["lines"]
        .as_array()
        .expect("receipt lines")
        .iter()
        .map(|l| amount(&l["total"]))
        .sum();
    assert_eq!(
        receipt_lines, 3888,
        "the receipt's lines add up to the total"
    );
    assert_eq!(shop.balance().await, 20_000 - 1999 - 3888);
    for p in [&p1, &p2, &p3] {
        assert!(shop.owns(p).await);
    }

    // Owning everything: nothing left to pay for.
    let all = shop.bundle_for(Some(&shop.buyer), &bundle).await;
    assert_eq!(all["ownedCount"], 3);
    assert_eq!(amount(&all["priceForYou"]), 0);
    let nothing_left = shop.place_bundle(&shop.buyer, &bundle, None, "all").await;
    assert_eq!(error_code(&nothing_left), "CONFLICT", "{nothing_left:#}");
    assert_eq!(shop.balance().await, 20_000 - 1999 - 3888);
    check_invariants(app).await;
}

#[tokio::test]
async fn a_box_in_a_bundle_ships_in_one_shipment_with_the_order() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (_, game) = shop.product("Collector Game", 2000, false).await;
    let (_, dlc) = shop.product("Collector Expansion", 1000, false).await;
    let (_, boxed) = shop.product("Collector Box", 3000, true).await;
    shop.stock(&boxed, 5).await;
    let bundle = shop
        .bundle("Collector's Set", 5000, &[&game, &dlc, &boxed])
        .await;
    shop.fund(10_000, "top-1").await;

    let no_address = shop.place_bundle(&shop.buyer, &bundle, None, "x").await;
    assert_eq!(error_code(&no_address), "BAD_USER_INPUT", "{no_address:#}");
    assert_eq!(
        no_address["errors"][0]["extensions"]["field"],
        "shippingAddress"
    );
    let placed = shop
        .place_bundle(&shop.buyer, &bundle, Some(address()), "set")
        .await;
    let id = order_id(&placed);
    let order = shop
        .reaches(&shop.buyer, &id, &["AWAITING_SHIPMENT", "CANCELLED"])
        .await;
    assert_eq!(order["status"], "AWAITING_SHIPMENT", "{order:#}");
    assert_eq!(order["total"]["amountMinor"], 5000);
    assert_eq!(
        shop.sql_i64(&format!(
            "SELECT count(*)::bigint AS n FROM fulfillment.shipment WHERE order_id = '{id}'"
        ))
        .await,
        1,
        "one shipment for the order"
    );
    assert_eq!(shop.inventory(&boxed).await, (5, 1));
    let library = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;
    assert_eq!(
        library["data"]["library"]["edges"].as_array().map(Vec::len),
        Some(2),
        "the digital parts are in the library, the box waits for its shipment"
    );
    assert_eq!(shop.balance().await, 5000);
    check_invariants(app).await;
    check_stock(app).await;
}

/// One round of the race: a fresh buyer with money sends an order of the bundle and one of
/// its parts at the same instant.
#[tokio::test]
async fn a_bundle_and_its_part_ordered_at_once_charge_each_product_once_at_the_shown_price() {
    const ROUNDS: usize = 12;
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (p1, e1) = shop.product("Race One", 1999, false).await;
    let (p2, e2) = shop.product("Race Two", 2999, false).await;
    let (p3, e3) = shop.product("Race Three", 3999, false).await;
    let bundle = shop.bundle("Race Pack", 4999, &[&e1, &e2, &e3]).await;
    let price_of = HashMap::from([(p1.clone(), 1999), (p2.clone(), 2999), (p3.clone(), 3999)]);
    let mut wins = (0, 0, 0);

    for round in 0..ROUNDS {
        let token = app
            .sign_up(&format!("racer-{round}@user.test"), "Racer")
            .await["accessToken"]
            .as_str()
            .expect("token")
            .to_owned();
        let top_up = app
            .gql(
                Some(&token),
                "mutation($k: String!) { topUpWallet(amount: 20000, paymentMethod: \"4242424242424242\", idempotencyKey: $k) { id } }",
                json!({ "k": format!("fund-{round}") }),
            )
            .await;
        assert_no_errors(&top_up);
        let balance = || async {
            let v = app.gql(Some(&token), WALLET, json!({})).await;
            v["data"]["wallet"]["balance"]["amountMinor"]
                .as_i64()
                .unwrap_or(0)
        };
        wait_until("the racer's top-up", || async {
            (balance().await == 20_000).then_some(())
        })
        .await;
        // The prices shown: the bundle page and the part's product page.
        let shown_bundle = amount(&shop.bundle_for(Some(&token), &bundle).await["priceForYou"]);
        assert_eq!(shown_bundle, 4999);
        let shown_part = price_of[&p2];

        let (bundle_key, part_key, part) = (
            format!("bundle-{round}"),
            format!("part-{round}"),
            [e2.as_str()],
        );
        let (a, b) = tokio::join!(
            shop.place_bundle(&token, &bundle, None, &bundle_key),
            shop.place(&token, &part, &part_key),
        );
        let mut completed: Vec<(Value, i64)> = Vec::new();
        for (answer, shown) in [(a, shown_bundle), (b, shown_part)] {
            if answer["errors"].is_array() {
                // Refused at once: the other order was in the library or claimed already.
                assert_eq!(error_code(&answer), "CONFLICT", "{answer:#}");
                continue;
            }
            let id = order_id(&answer);
            let done = shop.settled(&token, &id).await;
            if done["status"] == "COMPLETED" {
                let full = app.gql(Some(&token), LINES, json!({ "id": id })).await;
                completed.push((full["data"]["order"].clone(), shown));
            } else {
                assert_eq!(done["cancelReason"], "ALREADY_OWNED_OR_PENDING", "{done:#}");
            }
        }

        // Each product in at most one completed order, the wallet debited exactly their
        // totals, and the library holding each of them once.
        let mut charged: Vec<String> = completed
            .iter()
            .flat_map(|(o, _)| {
                o["lines"]
                    .as_array()
                    .expect("lines")
                    .iter()
                    .map(|l| l["productId"].as_str().expect("product").to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        let lines = charged.len();
        charged.sort();
        charged.dedup();
        assert_eq!(charged.len(), lines, "a product was charged twice");
        assert!(!completed.is_empty(), "one of the two orders goes through");
        let paid: i64 = completed.iter().map(|(o, _)| amount(&o["total"])).sum();
        assert_eq!(balance().await, 20_000 - paid);
        if completed.len() == 1 {
            // One won, the other was cancelled before any charge: the winner paid the price
            // it showed.
            let (o, shown) = &completed[0];
            assert_eq!(amount(&o["total"]), *shown, "{o:#}");
            if *shown == shown_bundle {
                wins.0 += 1;
            } else {
                wins.1 += 1;
            }
        } else {
            // The bundle was priced after the part was claimed: it left the part out.
            wins.2 += 1;
        }
        let library = app.gql(Some(&token), LIBRARY, json!({})).await;
        let owned = library["data"]["library"]["edges"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(owned, charged.len(), "{library:#}");
    }
    eprintln!(
        "race: bundle won {}, part won {}, bundle priced after the part {}",
        wins.0, wins.1, wins.2
    );
    check_invariants(app).await;
}
