//! The messaging tables keep what is still needed and no more (`domain::retention`): outbox
//! rows published and inbox rows handled longer ago than the retention go, a bounded batch at a
//! time; an event not published yet stays whatever its age, and the operator still sees it.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::json;

use domain::retention::{Prunable, prune, prune_batch};

use crate::helpers::*;

const DAY: Duration = Duration::from_secs(86_400);

/// An outbox row of `schema` written `created` days ago and published `published` days ago
/// (`None`: not yet); returns its id.
async fn outbox_row(app: &TestApp, schema: &str, created: i32, published: Option<i32>) -> String {
    let id = uuid::Uuid::now_v7();
    let published = published.map_or("NULL".to_owned(), |d| {
        format!("now() - interval '{d} days'")
    });
    app.state
        .db
        .execute_unprepared(&format!(
            "INSERT INTO {schema}.outbox (id, subject, kind, correlation_id, payload, created_at, published_at) \
             VALUES ('{id}', 'evt.test.retention', 'test.retention', '{id}', '{{}}', \
                     now() - interval '{created} days', {published})"
        ))
        .await
        .expect("an outbox row");
    id.to_string()
}

/// An inbox row of `schema` handled `handled` days ago; returns its message id.
async fn inbox_row(app: &TestApp, schema: &str, handled: i32) -> String {
    let id = uuid::Uuid::now_v7();
    app.state
        .db
        .execute_unprepared(&format!(
            "INSERT INTO {schema}.inbox (message_id, kind, handled_at) \
             VALUES ('{id}', 'test.retention', now() - interval '{handled} days')"
        ))
        .await
        .expect("an inbox row");
    id.to_string()
}

/// The ids left in `table` (its key column `key`), sorted.
async fn left(app: &TestApp, table: &str, key: &str) -> Vec<String> {
    let ids: Option<String> = app
        .one(
            &format!("SELECT string_agg({key}::text, ',' ORDER BY {key}) AS ids FROM {table}"),
            "ids",
        )
        .await;
    ids.map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn old_published_and_handled_rows_go_and_an_unpublished_event_stays_whatever_its_age() {
    // Setup: billing's outbox and inbox, and the catalog's outbox, with 30 days kept. To go:
    // three events published 31 to 59 days ago, three messages handled 31 to 60 days ago, one
    // catalog event. To keep: an event of 40 days still owed, one written 40 days ago but
    // published 10 days ago, a recent one; a message handled 29 days ago and one today.
    let app = TestApp::spawn().await;
    let retention = 30 * DAY;
    for (created, published) in [(40, Some(40)), (35, Some(31)), (60, Some(59))] {
        outbox_row(&app, "billing", created, published).await;
    }
    let owed = outbox_row(&app, "billing", 40, None).await;
    let kept_outbox = sorted(vec![
        owed.clone(),
        outbox_row(&app, "billing", 40, Some(10)).await,
        outbox_row(&app, "billing", 1, Some(1)).await,
    ]);
    for handled in [31, 45, 60] {
        inbox_row(&app, "billing", handled).await;
    }
    let kept_inbox = sorted(vec![
        inbox_row(&app, "billing", 29).await,
        inbox_row(&app, "billing", 0).await,
    ]);
    outbox_row(&app, "catalog", 40, Some(40)).await;
    let kept_catalog = vec![outbox_row(&app, "catalog", 2, Some(2)).await];
    let db = &app.state.db;

    // Exercise: one batch of two, the rest batch after batch, then once more; a zero
    // retention, which keeps everything.
    let outbox = Prunable::outbox("billing");
    let first = prune_batch(db, &outbox, retention, 2)
        .await
        .expect("a batch");
    let rest = prune(db, &outbox, retention, 2).await.expect("prune");
    let again = prune(db, &outbox, retention, 2).await.expect("prune");
    let inbox = prune(db, &Prunable::inbox("billing"), retention, 2)
        .await
        .expect("prune the inbox");
    let forever = prune(db, &Prunable::inbox("billing"), Duration::ZERO, 2)
        .await
        .expect("keep everything");
    let forever_batch = prune_batch(db, &Prunable::outbox("billing"), Duration::ZERO, 2)
        .await
        .expect("one batch keeping everything");
    let catalog = prune(db, &Prunable::outbox("catalog"), retention, 100)
        .await
        .expect("prune the catalog's outbox");

    // Check: what went, what is left, and what the operator sees of the owed event.
    assert_eq!((first, rest, again), (2, 1, 0), "a batch is bounded");
    assert_eq!((inbox, forever, forever_batch, catalog), (3, 0, 0, 1));
    assert_eq!(left(&app, "billing.outbox", "id").await, kept_outbox);
    assert_eq!(left(&app, "billing.inbox", "message_id").await, kept_inbox);
    assert_eq!(left(&app, "catalog.outbox", "id").await, kept_catalog);
    let admin = app.admin_token().await;
    let seen = app
        .gql(
            Some(&admin),
            "{ operations { participants { name outboxBacklog oldestUnpublishedAt } } }",
            json!({}),
        )
        .await;
    let billing = seen["data"]["operations"]["participants"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "billing"))
        .unwrap_or_else(|| panic!("billing in {seen}"));
    assert_eq!(billing["outboxBacklog"], 1, "{seen}");
    assert!(
        billing["oldestUnpublishedAt"].is_string(),
        "the owed event's age is shown: {seen}"
    );
}
