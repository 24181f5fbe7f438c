//! The order saga end to end, in-process: the api schema plus every participant on the test's
//! runtime, database, NATS prefix and Redis namespace. After each test the ledger invariants
//! are checked (sum of entries = balance, at most one debit per order, no grant without a
//! debit).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use domain::identity::Role;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::*;

mod bundles;
mod currencies;
mod delivery;
mod discounts;
mod fulfillment;
mod notification;
mod ordering;
mod tax;

pub(crate) const PLACE: &str = "mutation($l: [OrderLineInput!]!, $k: String!) { placeOrder(lines: $l, idempotencyKey: $k) { id status } }";
pub(crate) const ORDER: &str = "query($id: UUID!) { order(id: $id) { id status cancelReason total { amountMinor } lines { productTitle quantity unitPrice { amountMinor } } timeline { step participant detail } } }";
const TOP_UP: &str = "mutation($a: Int!, $m: String!, $k: String!) { topUpWallet(amount: $a, paymentMethod: $m, idempotencyKey: $k) { id status } }";
pub(crate) const WALLET: &str = "{ wallet { balance { amountMinor } currency version entries(first: 10) { edges { node { kind amount { amountMinor } balanceAfter { amountMinor } } } } } }";
pub(crate) const LIBRARY: &str = "{ library(first: 50) { edges { node { licenseKey grantedAt product { title } edition { name } } } } }";
pub(crate) const NOTIFICATIONS: &str =
    "{ notifications(first: 20) { edges { node { kind title read } } } unreadNotificationCount }";
const DEAD_LETTERS: &str = "{ deadLetters(first: 20) { edges { node { id participant kind error deliveries replayedAt } } } }";

pub(crate) const CARD_OK: &str = "4242424242424242";
const CARD_DECLINED: &str = "4000000000000002";
const CARD_FLAKY: &str = "4000000000000119";

pub(crate) struct Shop {
    pub(crate) app: TestApp,
    pub(crate) saga: Option<SagaHandle>,
    /// The api's relay of the catalog's outbox (the catalog's events reach the participants).
    outbox_relay: Option<OutboxRelay>,
    pub(crate) publisher: String,
    pub(crate) buyer: String,
}

/// An app with the saga (and the api's outbox relay) running, a publisher and a buyer (tokens).
pub(crate) async fn shop(settings: saga::Settings) -> Shop {
    shop_with(settings, |_| {}).await
}

/// Like [`shop`], with a tweak of the api's configuration.
pub(crate) async fn shop_with(
    settings: saga::Settings,
    tweak: impl FnOnce(&mut api::infra::config::Config),
) -> Shop {
    let app = TestApp::spawn_with(|c| {
        c.services.database_max_connections = 12;
        tweak(c);
    })
    .await;
    let saga = app.start_saga(settings).await;
    let outbox_relay = app.start_outbox_relay();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (publisher, _) = app
        .staff(
            &format!("pub-{tag}@publisher.test"),
            "Nebula Games",
            Role::Publisher,
        )
        .await;
    let buyer = app
        .sign_up(&format!("buyer-{tag}@user.test"), "Buyer")
        .await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    Shop {
        app,
        saga: Some(saga),
        outbox_relay: Some(outbox_relay),
        publisher,
        buyer,
    }
}

pub(crate) const WALLET_CURRENCY: &str = "{ wallet { currency balance { amountMinor currency } entries(first: 10) { edges { node { kind amount { amountMinor currency } } } } } }";

/// A buyer signed up through the gateway from `country` (its `X-Country`): their token.
pub(crate) async fn buyer_from(app: &TestApp, country: &str, tag: &str) -> String {
    let email = format!("{tag}-{}@user.test", uuid::Uuid::new_v4().simple());
    let (_, _, v) = app
        .gql_http(
            &[("x-gateway-secret", GATEWAY_SECRET), ("x-country", country)],
            "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
            json!({ "i": { "email": email, "password": PASSWORD, "displayName": tag } }),
        )
        .await;
    assert_no_errors(&v);
    v["data"]["signUp"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// The wallet of `token`: (currency, balance).
pub(crate) async fn wallet_of(app: &TestApp, token: &str) -> (String, i64) {
    let v = app.gql(Some(token), WALLET_CURRENCY, json!({})).await;
    assert_no_errors(&v);
    let w = &v["data"]["wallet"];
    assert_eq!(w["currency"], w["balance"]["currency"], "{w:#}");
    (
        w["currency"].as_str().expect("currency").to_owned(),
        w["balance"]["amountMinor"].as_i64().expect("balance"),
    )
}

/// Tops `token`'s wallet up by `amount` of its currency and waits for the credit.
pub(crate) async fn fund_account(app: &TestApp, token: &str, amount: i64, key: &str) {
    let (_, before) = wallet_of(app, token).await;
    let v = app
        .gql(
            Some(token),
            TOP_UP,
            json!({ "a": amount, "m": CARD_OK, "k": key }),
        )
        .await;
    assert_no_errors(&v);
    wait_until("the top-up", || async {
        (wallet_of(app, token).await.1 == before + amount).then_some(())
    })
    .await;
}

/// The id of a `placeOrder` answer that must have succeeded.
pub(crate) fn order_id(placed: &Value) -> String {
    assert_no_errors(placed);
    placed["data"]["placeOrder"]["id"]
        .as_str()
        .expect("order id")
        .to_owned()
}

/// `OrderLineInput`s of (edition, quantity).
fn order_lines(lines: &[(&str, i32)]) -> Vec<Value> {
    lines
        .iter()
        .map(|(e, q)| json!({ "editionId": e, "quantity": q }))
        .collect()
}

impl Shop {
    /// Stops the saga's participants and the catalog's outbox relay (they share the app's
    /// pool), for checks of what the api's requests alone do.
    pub(crate) fn stop_saga(&mut self) {
        self.saga.take();
        // It polls the catalog's outbox on the same pool.
        self.outbox_relay.take();
    }

    /// Deliveries the running participants handled in shared transactions (batches).
    pub(crate) fn batched_deliveries(&self) -> u64 {
        self.saga.as_ref().map_or(0, |s| s.rt.counters.batched())
    }

    /// Starts the participants again (after [`Shop::stop_saga`]) with `settings`.
    pub(crate) async fn start_saga(&mut self, settings: saga::Settings) {
        self.saga = Some(self.app.start_saga(settings).await);
    }

    /// A published product of the shop's publisher with one edition (a box when `physical`);
    /// returns (product id, edition id).
    pub(crate) async fn product(
        &self,
        title: &str,
        price: i64,
        physical: bool,
    ) -> (String, String) {
        let edition = if physical {
            crate::helpers::physical("Box", price, 500)
        } else {
            digital("Standard", price)
        };
        let p = self
            .app
            .create_product(
                &self.publisher,
                json!({ "title": title, "genres": ["action"], "platforms": ["windows"] }),
                &[edition],
                true,
            )
            .await;
        let edition = p.editions.into_iter().next().expect("an edition");
        (p.id, edition)
    }

    /// `placeOrder` of one copy of each of `editions`, by the caller of `token`.
    pub(crate) async fn place(&self, token: &str, editions: &[&str], key: &str) -> Value {
        let lines: Vec<(&str, i32)> = editions.iter().map(|e| (*e, 1)).collect();
        self.place_lines(Some(token), &lines, key).await
    }

    /// `placeOrder` of (edition, quantity) lines without an address, by the caller of `token`
    /// (anonymous without one).
    pub(crate) async fn place_lines(
        &self,
        token: Option<&str>,
        lines: &[(&str, i32)],
        key: &str,
    ) -> Value {
        self.app
            .gql(token, PLACE, json!({ "l": order_lines(lines), "k": key }))
            .await
    }

    /// The buyer's order of one copy of each of `editions`, placed: its id.
    pub(crate) async fn placed(&self, editions: &[&str], key: &str) -> String {
        order_id(&self.place(&self.buyer, editions, key).await)
    }

    /// The buyer's order of one copy of each of `editions`, placed and `COMPLETED` (the buyer
    /// has the money): its id.
    pub(crate) async fn completed(&self, editions: &[&str], key: &str) -> String {
        let id = self.placed(editions, key).await;
        let done = self.settled(&self.buyer, &id).await;
        assert_eq!(done["status"], "COMPLETED", "{done:#}");
        id
    }

    pub(crate) async fn top_up(&self, amount: i64, card: &str, key: &str) -> Value {
        self.app
            .gql(
                Some(&self.buyer),
                TOP_UP,
                json!({ "a": amount, "m": card, "k": key }),
            )
            .await
    }

    /// Tops the buyer's wallet up by `amount` (a card that pays) and waits for the credit.
    pub(crate) async fn fund(&self, amount: i64, key: &str) {
        fund_account(&self.app, &self.buyer, amount, key).await;
    }

    pub(crate) async fn balance(&self) -> i64 {
        let v = self.app.gql(Some(&self.buyer), WALLET, json!({})).await;
        assert_no_errors(&v);
        v["data"]["wallet"]["balance"]["amountMinor"]
            .as_i64()
            .expect("balance")
    }

    /// Whether the buyer owns `product`.
    pub(crate) async fn owns(&self, product: &str) -> bool {
        let v = self
            .app
            .gql(
                Some(&self.buyer),
                "query($p: UUID!) { ownsProduct(productId: $p) }",
                json!({ "p": product }),
            )
            .await;
        assert_no_errors(&v);
        v["data"]["ownsProduct"].as_bool().expect("bool")
    }

    /// The `order` query for `id` as the caller of `token` sees it (the whole answer).
    pub(crate) async fn order(&self, token: &str, id: &str) -> Value {
        self.app.gql(Some(token), ORDER, json!({ "id": id })).await
    }

    /// Waits until the order reaches a final status; returns the order.
    pub(crate) async fn settled(&self, token: &str, id: &str) -> Value {
        self.reaches(token, id, &["COMPLETED", "CANCELLED"]).await
    }

    /// Waits until the order has one of `statuses`; returns the order.
    pub(crate) async fn reaches(&self, token: &str, id: &str, statuses: &[&str]) -> Value {
        wait_until(&format!("order {id} to reach {statuses:?}"), || async {
            let v = self.order(token, id).await;
            let status = v["data"]["order"]["status"].as_str().unwrap_or("");
            statuses
                .contains(&status)
                .then(|| v["data"]["order"].clone())
        })
        .await
    }

    async fn sql_i64(&self, sql: &str) -> i64 {
        self.app.scalar(sql).await
    }

    /// Every event in the outboxes of `contexts` once more: each row published again as a new
    /// JetStream message (a new Msg-Id defeats the duplicate window: a redelivery as the
    /// consumers see it), and the whole outbox marked unpublished so that its relay publishes
    /// it again (as after a crash before the mark). Returns when the relays have.
    pub(crate) async fn republish_outboxes(&self, contexts: &[&str]) {
        for ctx in contexts {
            for row in outbox(&self.app, ctx, None).await {
                publish_again(&self.app, &row.subject, &row.kind, row.payload.into_bytes()).await;
            }
            self.app
                .state
                .db
                .execute_unprepared(&format!("UPDATE {ctx}.outbox SET published_at = NULL"))
                .await
                .expect("reset outbox");
        }
        let unpublished = contexts
            .iter()
            .map(|ctx| format!("(SELECT count(*) FROM {ctx}.outbox WHERE published_at IS NULL)"))
            .collect::<Vec<_>>()
            .join(" + ");
        wait_until("the relays to publish again", || async {
            (self
                .sql_i64(&format!("SELECT ({unpublished})::bigint AS n"))
                .await
                == 0)
                .then_some(())
        })
        .await;
    }

    /// The dead letters of `contexts`, all together.
    pub(crate) async fn dead_letters(&self, contexts: &[&str]) -> i64 {
        let all = contexts
            .iter()
            .map(|ctx| format!("SELECT 1 FROM {ctx}.dead_letter"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        self.sql_i64(&format!("SELECT count(*)::bigint AS n FROM ({all}) d"))
            .await
    }
}

/// A row of an outbox.
pub(crate) struct OutboxRow {
    pub(crate) subject: String,
    pub(crate) kind: String,
    pub(crate) payload: String,
}

/// The rows of `ctx`'s outbox (of `kind` only, if given).
pub(crate) async fn outbox(app: &TestApp, ctx: &str, kind: Option<&str>) -> Vec<OutboxRow> {
    let rows = app
        .state
        .db
        .query_all_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            format!(
                "SELECT subject, kind, payload::text AS payload FROM {ctx}.outbox \
                 WHERE $1::text IS NULL OR kind = $1"
            ),
            [kind.map(str::to_owned).into()],
        ))
        .await
        .expect("outbox");
    rows.iter()
        .map(|r| OutboxRow {
            subject: r.try_get("", "subject").expect("subject"),
            kind: r.try_get("", "kind").expect("kind"),
            payload: r.try_get("", "payload").expect("payload"),
        })
        .collect()
}

/// Publishes `payload` on `subject` under a new JetStream message id.
pub(crate) async fn publish_again(app: &TestApp, subject: &str, kind: &str, payload: Vec<u8>) {
    let msg_id = uuid::Uuid::new_v4().to_string();
    app.state
        .bus
        .publish_raw(domain::bus::RawMessage {
            subject,
            msg_id: &msg_id,
            kind,
            correlation_id: None,
            trace: None,
            replay_of: None,
            payload,
        })
        .await
        .expect("publish");
}

/// Lets in-flight messages settle (for checks that something did *not* happen).
pub(crate) async fn quiesce() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// The ledger invariants, over every wallet of the test's database.
pub(crate) async fn check_invariants(app: &TestApp) {
    let broken_sums = app.scalar("SELECT count(*)::bigint AS n FROM billing.wallet w WHERE w.balance_minor <> \
         (SELECT coalesce(sum(amount_minor), 0) FROM billing.ledger_entry e WHERE e.account_id = w.account_id) \
         OR w.version <> (SELECT count(*) FROM billing.ledger_entry e WHERE e.account_id = w.account_id)",
    )
    .await;
    assert_eq!(
        broken_sums, 0,
        "a wallet's balance is not the sum of its ledger"
    );
    let double_debits = app.scalar("SELECT count(*)::bigint AS n FROM (SELECT reference FROM billing.ledger_entry WHERE kind = 'debit' \
         GROUP BY reference HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(double_debits, 0, "an order was debited twice");
    let unpaid_grants = app.scalar("SELECT count(*)::bigint AS n FROM library.entitlement g WHERE g.order_id IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM billing.ledger_entry e WHERE e.kind = 'debit' AND e.reference = g.order_id)",
    )
    .await;
    assert_eq!(
        unpaid_grants, 0,
        "an entitlement was granted without a debit"
    );
    let negative = app
        .scalar("SELECT count(*)::bigint AS n FROM billing.wallet WHERE balance_minor < 0")
        .await;
    assert_eq!(negative, 0);
    let twice_alive = app.scalar(r#"SELECT count(*)::bigint AS n FROM (SELECT o.account_id, l.product_id FROM ordering."order" o
           JOIN ordering.order_line l ON l.order_id = o.id WHERE o.status NOT IN ('CANCELLED', 'REFUNDED') AND l.kind = 'digital'
           GROUP BY 1, 2 HAVING count(*) > 1) d"#,
    )
    .await;
    assert_eq!(
        twice_alive, 0,
        "a buyer has a digital product in two orders that are not cancelled"
    );
    let owned_twice = app
        .scalar(
            "SELECT count(*)::bigint AS n FROM (SELECT 1 FROM library.entitlement g \
         JOIN catalog.edition e ON e.id = g.edition_id WHERE e.kind = 'digital' AND g.revoked_at IS NULL \
         GROUP BY g.account_id, g.product_id HAVING count(*) > 1) d",
        )
        .await;
    assert_eq!(
        owned_twice, 0,
        "a buyer was granted a digital product twice"
    );
}

pub(crate) fn kinds(v: &Value) -> Vec<String> {
    v["data"]["notifications"]["edges"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["node"]["kind"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) const PLACE_SHIPPED: &str = "mutation($l: [OrderLineInput!]!, $a: ShippingAddressInput, $k: String!) { placeOrder(lines: $l, shippingAddress: $a, idempotencyKey: $k) { id status } }";

pub(crate) fn address() -> Value {
    json!({ "name": "Ada Lovelace", "country": "de", "region": "Berlin", "city": "Berlin",
            "postalCode": "10115", "street": "Invalidenstr. 1", "phone": "+49 30 1234567" })
}

impl Shop {
    /// Sets the stock of a physical edition and waits until fulfillment applied it.
    pub(crate) async fn stock(&self, edition: &str, quantity: i64) {
        let v = self
            .app
            .gql(
                Some(&self.publisher),
                "mutation($e: UUID!, $q: Int!) { setStock(editionId: $e, mode: SET, quantity: $q) { commandId } }",
                json!({ "e": edition, "q": quantity }),
            )
            .await;
        assert_no_errors(&v);
        wait_until("the stock", || async {
            (self.inventory(edition).await.0 == quantity).then_some(())
        })
        .await;
    }

    /// (on hand, reserved) of an edition.
    pub(crate) async fn inventory(&self, edition: &str) -> (i64, i64) {
        let on_hand = self
            .sql_i64(&format!(
                "SELECT coalesce((SELECT on_hand FROM fulfillment.inventory WHERE edition_id = '{edition}'), -1)::bigint AS n"
            ))
            .await;
        let reserved = self
            .sql_i64(&format!(
                "SELECT coalesce((SELECT reserved FROM fulfillment.inventory WHERE edition_id = '{edition}'), 0)::bigint AS n"
            ))
            .await;
        (on_hand, reserved)
    }

    /// `placeOrder` of (edition, quantity) lines shipped to `address`, by the caller of `token`.
    pub(crate) async fn place_shipped(
        &self,
        token: &str,
        lines: &[(&str, i32)],
        address: Option<Value>,
        key: &str,
    ) -> Value {
        self.app
            .gql(
                Some(token),
                PLACE_SHIPPED,
                json!({ "l": order_lines(lines), "a": address, "k": key }),
            )
            .await
    }
}

/// Stock invariants: nothing reserved beyond what is on hand, and `reserved` is the sum of the
/// reservations of shipments still holding stock.
async fn check_stock(app: &TestApp) {
    let broken = app.scalar("SELECT count(*)::bigint AS n FROM fulfillment.inventory i WHERE i.reserved < 0 OR i.reserved > i.on_hand \
         OR i.reserved <> (SELECT coalesce(sum(r.quantity), 0) FROM fulfillment.reservation r \
            JOIN fulfillment.shipment s ON s.order_id = r.order_id \
            WHERE r.edition_id = i.edition_id AND s.status IN ('RESERVED', 'AWAITING_SHIPMENT'))",
    )
    .await;
    assert_eq!(broken, 0, "the inventory disagrees with the reservations");
}

pub(crate) fn steps(order: &Value) -> Vec<String> {
    order["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|s| s["step"].as_str().expect("step").to_owned())
        .collect()
}
