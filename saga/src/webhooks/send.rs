//! The delivery worker of the webhooks participant.
//!
//! Deliveries that are due (`status = 'PENDING' AND next_attempt_at <= now()`, their endpoint
//! enabled) are claimed with `FOR UPDATE SKIP LOCKED` in a transaction that stays open while
//! they are sent (at once, each with a short timeout) and that records each attempt, the next
//! one's time (the schedule lives in the database) and the endpoint's failure record before it
//! commits. So two replicas never send the same attempt at the same time, and a crash of the
//! participant rolls the claim back: the delivery is still due and is sent again (with the same
//! `webhook-id`, which receivers de-duplicate on) — none is lost, none recorded twice.
//!
//! Every request goes through [`CheckedResolver`]: the participant resolves the host itself,
//! refuses it when any address is forbidden by the [`TargetPolicy`], and connects only to the
//! addresses it checked, so a name that changes its answer after registration (DNS rebinding)
//! reaches nothing private. A URL with a literal address is checked before the request. No
//! redirect is followed and no proxy is used.
//!
//! An endpoint is disabled (and its owner told, through notification) when
//! `disable_after_failed_deliveries` deliveries in a row failed every attempt, or when it has
//! failed every attempt for `disable_after_failing` (any success resets both).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::webhooks::EndpointDisabled;
use domain::webhooks::target::TargetPolicy;
use rand::Rng;
use sea_orm::{ConnectionTrait, TransactionTrait};
use uuid::Uuid;

use crate::infra::outbox::stmt;
use crate::infra::runtime::{Participant, Runtime};

/// Resolves host names for the webhook client and keeps only allowed addresses: a name with
/// any forbidden address fails (see [`TargetPolicy::resolve`]).
pub struct CheckedResolver {
    pub policy: TargetPolicy,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = policy.resolve(&host, 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client of deliveries.
pub fn client(settings: &crate::WebhookSettings) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(CheckedResolver {
            policy: settings.targets.clone(),
        }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(settings.request_timeout)
        .connect_timeout(settings.request_timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("store-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the webhook client")
}

/// Runs the delivery loops of this process (`workers` of them) and the pruning of the
/// delivery log ([`super::prune`]) forever.
pub async fn worker(rt: Runtime) -> anyhow::Result<()> {
    let client = client(&rt.settings.webhooks)?;
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..rt.settings.webhooks.workers.max(1) {
        loops.spawn(deliver_loop(rt.clone(), client.clone()));
    }
    loops.spawn(super::prune::pruner(rt.clone()));
    match loops.join_next().await {
        Some(Ok(res)) => res,
        Some(Err(e)) => Err(anyhow::anyhow!("a webhook delivery loop failed: {e}")),
        None => Ok(()),
    }
}

/// Longest sleep between two looks for due deliveries.
const IDLE: Duration = Duration::from_secs(1);

async fn deliver_loop(rt: Runtime, client: reqwest::Client) -> anyhow::Result<()> {
    loop {
        match deliver_due(&rt, &client).await {
            Ok(n) if n >= rt.settings.webhooks.batch.max(1) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "webhook deliveries failed; retrying");
            }
        }
        let wait = match next_due_in(&rt).await {
            Ok(Some(d)) => d.min(IDLE),
            Ok(None) | Err(_) => IDLE,
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            () = rt.webhook_waker().notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// How long until the next pending delivery of an enabled endpoint is due; `None` when there
/// is none (`greatest` ignores a NULL: without the `CASE`, no delivery at all read as "due
/// now", and the loop looked again at once, for ever).
pub async fn next_due_in(rt: &Runtime) -> anyhow::Result<Option<Duration>> {
    let row = rt
        .db
        .query_one_raw(stmt(
            "SELECT CASE WHEN min(d.next_attempt_at) IS NULL THEN NULL \
                    ELSE greatest(0, extract(epoch FROM min(d.next_attempt_at) - clock_timestamp()) * 1000)::bigint END AS ms \
             FROM webhooks.delivery d JOIN webhooks.endpoint e ON e.id = d.endpoint_id \
             WHERE d.status = 'PENDING' AND e.enabled",
            [],
        ))
        .await?;
    let ms: Option<i64> = match row {
        Some(r) => r.try_get("", "ms")?,
        None => None,
    };
    Ok(ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
}

/// A claimed delivery, with what signing it takes.
struct Due {
    id: Uuid,
    endpoint_id: Uuid,
    body: String,
    attempts: i32,
    url: String,
    secrets: Vec<String>,
}

/// What one attempt gave.
struct Outcome {
    status: Option<u16>,
    latency: Duration,
    error: Option<String>,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Claims, sends and records one batch of due deliveries; returns how many.
pub async fn deliver_due(rt: &Runtime, client: &reqwest::Client) -> anyhow::Result<usize> {
    let settings = &rt.settings.webhooks;
    let txn = rt.db.begin().await?;
    let limit = i64::try_from(settings.batch.max(1)).unwrap_or(32);
    // Raw: FOR UPDATE OF d SKIP LOCKED (replicas share the due deliveries).
    let rows = txn
        .query_all_raw(stmt(
            "SELECT d.id, d.endpoint_id, d.body, d.attempts, e.url, e.secret, \
                    CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret \
             FROM webhooks.delivery d JOIN webhooks.endpoint e ON e.id = d.endpoint_id \
             WHERE d.status = 'PENDING' AND d.next_attempt_at <= now() \
               AND e.enabled AND e.deleted_at IS NULL \
             ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED",
            [limit.into()],
        ))
        .await?;
    if rows.is_empty() {
        txn.commit().await?;
        return Ok(0);
    }
    let mut due = Vec::with_capacity(rows.len());
    for r in rows {
        let mut secrets = vec![r.try_get::<String>("", "secret")?];
        if let Some(previous) = r.try_get::<Option<String>>("", "previous_secret")? {
            secrets.push(previous);
        }
        due.push(Due {
            id: r.try_get("", "id")?,
            endpoint_id: r.try_get("", "endpoint_id")?,
            body: r.try_get("", "body")?,
            attempts: r.try_get("", "attempts")?,
            url: r.try_get("", "url")?,
            secrets,
        });
    }
    let outcomes =
        futures::future::join_all(due.iter().map(|d| attempt(client, &settings.targets, d))).await;

    // Record every attempt, then the endpoints' records in id order (no deadlock between two
    // batches touching the same endpoints).
    let mut endpoints: std::collections::BTreeMap<Uuid, EndpointTally> = Default::default();
    for (d, o) in due.iter().zip(&outcomes) {
        let attempts = d.attempts.saturating_add(1);
        let tally = endpoints.entry(d.endpoint_id).or_default();
        let latency_ms = i32::try_from(o.latency.as_millis()).unwrap_or(i32::MAX);
        let status_code = o.status.map(i32::from);
        txn.execute_raw(stmt(
            "INSERT INTO webhooks.attempt (id, delivery_id, succeeded, status_code, latency_ms, error) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            [
                domain::id::new_id().into(),
                d.id.into(),
                o.succeeded().into(),
                status_code.into(),
                latency_ms.into(),
                o.error.clone().into(),
            ],
        ))
        .await?;
        let next = if o.succeeded() {
            tally.succeeded = true;
            None
        } else {
            tally.failed_attempts = true;
            let jitter: f64 = rand::thread_rng().r#gen();
            let attempts_u32 = u32::try_from(attempts).unwrap_or(u32::MAX);
            let next = domain::webhooks::next_delay(&settings.schedule, attempts_u32, jitter);
            if next.is_none() {
                tally.exhausted += 1;
            }
            next
        };
        let status = match (o.succeeded(), next) {
            (true, _) => "SUCCEEDED",
            (false, Some(_)) => "PENDING",
            (false, None) => "FAILED",
        };
        let next_ms: Option<i64> = next.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        txn.execute_raw(stmt(
            "UPDATE webhooks.delivery SET status = $2, attempts = $3, \
                 next_attempt_at = clock_timestamp() + $4 * interval '1 millisecond', \
                 last_attempt_at = clock_timestamp(), last_status_code = $5, last_latency_ms = $6, \
                 last_error = $7 \
             WHERE id = $1",
            [
                d.id.into(),
                status.into(),
                attempts.into(),
                next_ms.into(),
                status_code.into(),
                latency_ms.into(),
                o.error.clone().into(),
            ],
        ))
        .await?;
        let outcome = match (o.succeeded(), next) {
            (true, _) => "succeeded",
            (false, Some(_)) => "failed",
            (false, None) => "failed_finally",
        };
        metrics::counter!("store_webhook_attempts_total", "outcome" => outcome).increment(1);
        metrics::histogram!("store_webhook_attempt_seconds").record(o.latency);
        if o.succeeded() {
            tracing::info!(delivery.id = %d.id, endpoint.id = %d.endpoint_id, status = ?o.status, latency_ms, "webhook delivered");
        } else {
            tracing::info!(delivery.id = %d.id, endpoint.id = %d.endpoint_id, status = ?o.status, error = ?o.error, attempts, final_attempt = next.is_none(), "webhook attempt failed");
        }
    }
    let mut disabled = false;
    for (id, tally) in &endpoints {
        disabled |= record_endpoint(rt, &txn, *id, tally).await?;
    }
    txn.commit().await?;
    if disabled {
        rt.wake_relay(Participant::Webhooks);
    }
    Ok(due.len())
}

/// What a batch did to one endpoint.
#[derive(Default)]
struct EndpointTally {
    succeeded: bool,
    failed_attempts: bool,
    /// Deliveries whose last attempt failed.
    exhausted: i32,
}

/// Updates the endpoint's failure record and disables it when it kept failing; returns whether
/// it was disabled (an `EndpointDisabled` event is in the outbox).
async fn record_endpoint(
    rt: &Runtime,
    txn: &sea_orm::DatabaseTransaction,
    id: Uuid,
    tally: &EndpointTally,
) -> anyhow::Result<bool> {
    let settings = &rt.settings.webhooks;
    if tally.succeeded {
        txn.execute_raw(stmt(
            "UPDATE webhooks.endpoint SET consecutive_failures = 0, failing_since = NULL \
             WHERE id = $1 AND (consecutive_failures <> 0 OR failing_since IS NOT NULL)",
            [id.into()],
        ))
        .await?;
        return Ok(false);
    }
    if !tally.failed_attempts {
        return Ok(false);
    }
    let after_ms = i64::try_from(settings.disable_after_failing.as_millis()).unwrap_or(i64::MAX);
    let max_failed =
        i32::try_from(settings.disable_after_failed_deliveries.max(1)).unwrap_or(i32::MAX);
    let row = txn
        .query_one_raw(stmt(
            "UPDATE webhooks.endpoint SET \
                 consecutive_failures = consecutive_failures + $2, \
                 failing_since = coalesce(failing_since, now()) \
             WHERE id = $1 \
             RETURNING enabled, publisher_id, url, consecutive_failures, \
                 (failing_since < clock_timestamp() - $3 * interval '1 millisecond') AS failing_long",
            [id.into(), tally.exhausted.into(), after_ms.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let enabled: bool = row.try_get("", "enabled")?;
    let failures: i32 = row.try_get("", "consecutive_failures")?;
    let failing_long: bool = row
        .try_get::<Option<bool>>("", "failing_long")?
        .unwrap_or(false);
    let reason = if failures >= max_failed {
        format!("every attempt of {failures} deliveries in a row failed")
    } else if failing_long {
        format!(
            "every attempt failed for more than {} hours",
            settings.disable_after_failing.as_secs() / 3600
        )
    } else {
        return Ok(false);
    };
    if !enabled {
        return Ok(false);
    }
    txn.execute_raw(stmt(
        "UPDATE webhooks.endpoint SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1",
        [id.into(), reason.clone().into()],
    ))
    .await?;
    let publisher_id: Uuid = row.try_get("", "publisher_id")?;
    let url: String = row.try_get("", "url")?;
    tracing::warn!(endpoint.id = %id, %reason, "webhook endpoint disabled");
    crate::infra::outbox::enqueue(
        txn,
        Participant::Webhooks,
        EndpointDisabled {
            endpoint_id: id,
            publisher_id,
            url,
            reason,
        },
        id,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(true)
}

/// Sends one attempt of `d`: a fresh timestamp, one signature per live secret.
async fn attempt(client: &reqwest::Client, policy: &TargetPolicy, d: &Due) -> Outcome {
    let started = Instant::now();
    let fail = |error: String| Outcome {
        status: None,
        latency: started.elapsed(),
        error: Some(error),
    };
    // A literal address never reaches the resolver: checked here.
    if let Err(e) = policy.check_url(&d.url) {
        return fail(e.to_string());
    }
    let keys: Vec<Vec<u8>> = d
        .secrets
        .iter()
        .filter_map(|s| domain::webhooks::signature::secret_bytes(s).ok())
        .collect();
    let id = domain::webhooks::webhook_id(d.id);
    let timestamp = chrono::Utc::now().timestamp();
    let signature = domain::webhooks::signature::header(&keys, &id, timestamp, d.body.as_bytes());
    let sent = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.body.clone())
        .send()
        .await;
    match sent {
        Ok(res) => {
            let status = res.status().as_u16();
            Outcome {
                status: Some(status),
                latency: started.elapsed(),
                error: (!(200..300).contains(&status)).then(|| format!("answered {status}")),
            }
        }
        Err(e) => fail(describe(&e)),
    }
}

/// A short description of a failed request (no URL: it is in the endpoint).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    }
}
