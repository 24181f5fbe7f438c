//! Discounts: the rules of scheduling (typed errors that change nothing, windows that may
//! touch but not overlap, one winner of concurrent schedules), the price an order pays taken at
//! `placeOrder` whatever the saga's timing, the listing following a window's start and end,
//! the wishers told once, and an admin ending a discount with a reason in the audit log.

use chrono::{Duration as Span, SecondsFormat, Utc};

use super::*;

const SCHEDULE: &str = "mutation($i: ScheduleDiscountInput!) { scheduleDiscount(input: $i) { id percent startsAt endsAt status } }";
const END: &str = "mutation($id: UUID!, $r: String) { endDiscount(id: $id, reason: $r) { id status endsAt endedEarlyReason } }";
const EDITION: &str = "query($p: UUID!) { product(id: $p) { priceFrom { amountMinor } listPriceFrom { amountMinor } sale { percent endsAt } editions { id price { amountMinor } currentPrice { amountMinor formatted } discount { percent status } } } }";
const ON_SALE: &str = "query($f: ProductFilter, $s: ProductSort!) { products(filter: $f, sort: $s, first: 50) { nodes { id title priceFrom { amountMinor } sale { percent } } } }";

fn at(offset: Span) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn discount(edition: &str, percent: i64, starts: Option<String>, ends: String) -> Value {
    json!({ "i": { "editionId": edition, "percent": percent, "startsAt": starts, "endsAt": ends } })
}

impl Shop {
    async fn schedule(&self, token: &str, vars: Value) -> Value {
        self.app.gql(Some(token), SCHEDULE, vars).await
    }

    /// The product as the storefront shows it: (priceFrom, listPriceFrom, sale percent,
    /// the first edition's current price).
    async fn listing(&self, product: &str) -> (i64, i64, Option<i64>, i64) {
        let v = self.app.gql(None, EDITION, json!({ "p": product })).await;
        assert_no_errors(&v);
        let p = &v["data"]["product"];
        (
            p["priceFrom"]["amountMinor"].as_i64().expect("priceFrom"),
            p["listPriceFrom"]["amountMinor"].as_i64().expect("list"),
            p["sale"]["percent"].as_i64(),
            p["editions"][0]["currentPrice"]["amountMinor"]
                .as_i64()
                .expect("current"),
        )
    }

    async fn on_sale(&self, sort: &str) -> Vec<String> {
        let v = self
            .app
            .gql(None, ON_SALE, json!({ "f": { "onSale": true }, "s": sort }))
            .await;
        assert_no_errors(&v);
        v["data"]["products"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["id"].as_str().expect("id").to_owned())
            .collect()
    }

    async fn discount_rows(&self) -> i64 {
        self.app
            .scalar("SELECT count(*)::bigint AS n FROM catalog.discount")
            .await
    }
}

#[tokio::test]
async fn bad_discounts_are_typed_errors_and_change_nothing() {
    let shop = shop(saga_settings()).await;
    let (product, ed) = shop.product("Sale Rules", 2000, false).await;
    let app = &shop.app;
    let (other, _) = app
        .staff("other-pub@publisher.test", "Atlas Works", Role::Publisher)
        .await;

    let cases = [
        (
            "96 percent",
            shop.schedule(&shop.publisher, discount(&ed, 96, None, at(Span::hours(1))))
                .await,
            "BAD_USER_INPUT",
            Some("percent"),
        ),
        (
            "0 percent",
            shop.schedule(&shop.publisher, discount(&ed, 0, None, at(Span::hours(1))))
                .await,
            "BAD_USER_INPUT",
            Some("percent"),
        ),
        (
            "ends before it starts",
            shop.schedule(
                &shop.publisher,
                discount(&ed, 20, Some(at(Span::hours(2))), at(Span::hours(1))),
            )
            .await,
            "BAD_USER_INPUT",
            Some("endsAt"),
        ),
        (
            "ended already",
            shop.schedule(
                &shop.publisher,
                discount(&ed, 20, Some(at(Span::hours(-2))), at(Span::hours(-1))),
            )
            .await,
            "BAD_USER_INPUT",
            Some("endsAt"),
        ),
        (
            "too long",
            shop.schedule(&shop.publisher, discount(&ed, 20, None, at(Span::days(93))))
                .await,
            "BAD_USER_INPUT",
            Some("endsAt"),
        ),
        (
            "another publisher's edition",
            shop.schedule(&other, discount(&ed, 20, None, at(Span::hours(1))))
                .await,
            "FORBIDDEN",
            None,
        ),
        (
            "a buyer",
            shop.schedule(&shop.buyer, discount(&ed, 20, None, at(Span::hours(1))))
                .await,
            "FORBIDDEN",
            None,
        ),
        (
            "an unknown edition",
            shop.schedule(
                &shop.publisher,
                discount(
                    &uuid::Uuid::now_v7().to_string(),
                    20,
                    None,
                    at(Span::hours(1)),
                ),
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
        shop.discount_rows().await,
        0,
        "a refused discount is not stored"
    );
    assert_eq!(shop.listing(&product).await.2, None);

    let running = shop
        .schedule(&shop.publisher, discount(&ed, 25, None, at(Span::hours(1))))
        .await;
    assert_no_errors(&running);
    let id = running["data"]["scheduleDiscount"]["id"]
        .as_str()
        .expect("id");
    let by_other = app.gql(Some(&other), END, json!({ "id": id })).await;
    assert_eq!(error_code(&by_other), "NOT_FOUND", "{by_other:#}");
    let by_buyer = app.gql(Some(&shop.buyer), END, json!({ "id": id })).await;
    assert_eq!(error_code(&by_buyer), "FORBIDDEN", "{by_buyer:#}");
    let long_reason = "x".repeat(501);
    let too_long = app
        .gql(
            Some(&shop.publisher),
            END,
            json!({ "id": id, "r": long_reason }),
        )
        .await;
    assert_eq!(error_code(&too_long), "BAD_USER_INPUT", "{too_long:#}");
    assert_eq!(
        running["data"]["scheduleDiscount"]["status"], "RUNNING",
        "the discount still runs after refused ends"
    );
    let ended = app
        .gql(Some(&shop.publisher), END, json!({ "id": id }))
        .await;
    assert_no_errors(&ended);
    assert_eq!(ended["data"]["endDiscount"]["status"], "ENDED");
    let twice = app
        .gql(Some(&shop.publisher), END, json!({ "id": id }))
        .await;
    assert_eq!(error_code(&twice), "CONFLICT", "{twice:#}");
}

#[tokio::test]
async fn windows_may_touch_but_never_overlap_and_one_of_concurrent_schedules_wins() {
    let shop = shop(saga_settings()).await;
    let (_, ed) = shop.product("Windows", 2000, false).await;
    let h = |n: i64| at(Span::hours(n));

    let first = shop
        .schedule(&shop.publisher, discount(&ed, 10, Some(h(10)), h(20)))
        .await;
    assert_no_errors(&first);
    assert_eq!(first["data"]["scheduleDiscount"]["status"], "SCHEDULED");
    let first_id = first["data"]["scheduleDiscount"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let first_end = first["data"]["scheduleDiscount"]["endsAt"]
        .as_str()
        .expect("end")
        .to_owned();
    // Starting exactly where the first ends: allowed (windows are [start, end)).
    let touching = shop
        .schedule(&shop.publisher, discount(&ed, 20, Some(first_end), h(30)))
        .await;
    assert_no_errors(&touching);
    for (what, starts, ends) in [
        ("inside", h(12), h(14)),
        ("across the start", h(5), h(11)),
        ("across the end", h(19), h(21)),
        ("around", h(5), h(40)),
    ] {
        let v = shop
            .schedule(&shop.publisher, discount(&ed, 30, Some(starts), ends))
            .await;
        assert_eq!(error_code(&v), "CONFLICT", "{what}: {v:#}");
    }
    // A cancelled discount frees its window.
    let cancelled = shop
        .app
        .gql(
            Some(&shop.publisher),
            END,
            json!({ "id": first_id, "r": "moved" }),
        )
        .await;
    assert_no_errors(&cancelled);
    assert_eq!(cancelled["data"]["endDiscount"]["status"], "CANCELLED");

    // Ten overlapping schedules at the same instant: exactly one is stored.
    let (_, ed2) = shop.product("Race", 2000, false).await;
    let answers = futures::future::join_all((0..10).map(|i| {
        shop.schedule(
            &shop.publisher,
            discount(&ed2, 10 + i, Some(h(1 + i)), h(50)),
        )
    }))
    .await;
    let won = answers.iter().filter(|a| a.get("errors").is_none()).count();
    let conflicts = answers
        .iter()
        .filter(|a| a.get("errors").is_some() && error_code(a) == "CONFLICT")
        .count();
    assert_eq!((won, conflicts), (1, 9), "{answers:#?}");
    let in_window = |ed: &str| {
        format!(
            "SELECT count(*)::bigint AS n FROM catalog.discount WHERE edition_id = '{ed}' AND cancelled_at IS NULL"
        )
    };
    assert_eq!(shop.app.scalar(&in_window(&ed2)).await, 1);
    assert_eq!(
        shop.app.scalar(&in_window(&ed)).await,
        1,
        "the touching one"
    );
}

#[tokio::test]
async fn an_order_pays_the_price_of_the_instant_it_was_placed_whatever_the_sagas_timing() {
    let mut shop = shop(saga_settings()).await;
    let _clock = shop.app.start_discount_clock();
    let (product, ed) = shop.product("Last Minute", 1999, false).await;
    let (cheap, _) = shop.product("Always Cheap", 1500, false).await;
    shop.fund(10_000, "top-1").await;

    let sale = shop
        .schedule(
            &shop.publisher,
            discount(&ed, 40, None, at(Span::seconds(3))),
        )
        .await;
    assert_no_errors(&sale);
    // Starting now, the listing shows it at once: 1999 less 40 % is 1199.40, so 1199.
    assert_eq!(shop.listing(&product).await, (1199, 1999, Some(40), 1199));
    assert_eq!(
        shop.on_sale("PRICE_ASC").await,
        std::slice::from_ref(&product)
    );
    let by_price = shop
        .app
        .gql(None, ON_SALE, json!({ "f": {}, "s": "PRICE_ASC" }))
        .await;
    let order: Vec<&str> = by_price["data"]["products"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    assert_eq!(
        order,
        [product.as_str(), cheap.as_str()],
        "sorted by the price paid now"
    );

    // Placed inside the window while the saga is stopped: the order is handled after the
    // discount ended, and still pays the discounted price.
    shop.stop_saga();
    let inside = shop.placed(&[&ed], "inside").await;
    wait_until("the discount to end", || async {
        (shop.listing(&product).await.3 == 1999).then_some(())
    })
    .await;
    // Another buyer (with an empty wallet) orders the same edition after the end: the order
    // is priced in full (and cancelled for want of money, which changes nothing of its price).
    let late = shop.app.sign_up("late@user.test", "Late Buyer").await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let after = order_id(&shop.place(&late, &[&ed], "after").await);
    shop.start_saga(saga_settings()).await;
    let inside = shop.settled(&shop.buyer, &inside).await;
    assert_eq!(inside["status"], "COMPLETED", "{inside:#}");
    assert_eq!(inside["lines"][0]["unitPrice"]["amountMinor"], 1199);
    assert_eq!(inside["total"]["amountMinor"], 1199);
    let after = shop.settled(&late, &after).await;
    assert_eq!(
        after["lines"][0]["unitPrice"]["amountMinor"], 1999,
        "{after:#}"
    );
    assert_eq!(after["total"]["amountMinor"], 1999);
    assert_eq!(after["cancelReason"], "INSUFFICIENT_FUNDS", "{after:#}");
    assert_eq!(shop.balance().await, 10_000 - 1199);

    // The listing followed the end (the clock), and "on sale" is empty again.
    wait_until("the listing to follow the end", || async {
        (shop.listing(&product).await == (1999, 1999, None, 1999)).then_some(())
    })
    .await;
    assert!(shop.on_sale("PRICE_ASC").await.is_empty());
    check_invariants(&shop.app).await;
}

#[tokio::test]
async fn a_scheduled_discount_starts_on_time_tells_wishers_once_and_an_admin_ends_it() {
    let shop = shop(saga_settings()).await;
    let _clock = shop.app.start_discount_clock();
    let app = &shop.app;
    let (product, ed) = shop.product("Wished For", 3000, false).await;
    let wished = app
        .gql(
            Some(&shop.buyer),
            "mutation($p: UUID!) { addToWishlist(productId: $p) }",
            json!({ "p": product }),
        )
        .await;
    assert_no_errors(&wished);

    let soon = shop
        .schedule(
            &shop.publisher,
            discount(&ed, 50, Some(at(Span::seconds(2))), at(Span::hours(1))),
        )
        .await;
    assert_no_errors(&soon);
    assert_eq!(soon["data"]["scheduleDiscount"]["status"], "SCHEDULED");
    let id = soon["data"]["scheduleDiscount"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(shop.listing(&product).await.2, None, "not before its start");

    wait_until("the storefront to list it on sale", || async {
        shop.on_sale("NEWEST")
            .await
            .contains(&product)
            .then_some(())
    })
    .await;
    assert_eq!(shop.listing(&product).await, (1500, 3000, Some(50), 1500));
    let told = wait_until("the wisher to be told", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        kinds(&v)
            .contains(&"WISHLIST_ON_SALE".to_owned())
            .then_some(v)
    })
    .await;
    let note = told["data"]["notifications"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["node"]["kind"] == "WISHLIST_ON_SALE")
        .expect("the note");
    assert_eq!(note["node"]["title"], "Wished For is on sale");
    // Further passes of the clock tell no one again.
    let passes = api::catalog::discounts::follow_edges(&app.state, Utc::now())
        .await
        .expect("a pass");
    assert_eq!(passes, 0);
    let wishes_told = app
        .scalar("SELECT count(*)::bigint AS n FROM notification.notification WHERE kind = 'WISHLIST_ON_SALE'")
        .await;
    assert_eq!(wishes_told, 1);

    // The publisher sees it running among the edition's discounts; an admin ends it.
    let mine = app
        .gql(
            Some(&shop.publisher),
            "query($p: UUID!) { product(id: $p) { editions { discounts { id status } } } }",
            json!({ "p": product }),
        )
        .await;
    assert_eq!(
        mine["data"]["product"]["editions"][0]["discounts"][0]["status"],
        "RUNNING"
    );
    let hidden = app
        .gql(
            Some(&shop.buyer),
            "query($p: UUID!) { product(id: $p) { editions { discounts { id } } } }",
            json!({ "p": product }),
        )
        .await;
    assert_eq!(error_code(&hidden), "FORBIDDEN", "{hidden:#}");
    let admin = app.admin_token().await;
    let ended = app
        .gql(
            Some(&admin),
            END,
            json!({ "id": id, "r": "priced by mistake" }),
        )
        .await;
    assert_no_errors(&ended);
    assert_eq!(ended["data"]["endDiscount"]["status"], "ENDED");
    assert_eq!(
        ended["data"]["endDiscount"]["endedEarlyReason"],
        "priced by mistake"
    );
    // Ending moves the listing in the same transaction.
    assert_eq!(shop.listing(&product).await, (3000, 3000, None, 3000));
    let audit = app
        .gql(
            Some(&admin),
            "{ auditLog(first: 5) { nodes { action reason target { label } } } }",
            json!({}),
        )
        .await;
    assert_no_errors(&audit);
    let entry = &audit["data"]["auditLog"]["nodes"][0];
    assert_eq!(entry["action"], "DISCOUNT_ENDED", "{audit:#}");
    assert_eq!(entry["reason"], "priced by mistake");
    assert_eq!(entry["target"]["label"], "Wished For");
}
