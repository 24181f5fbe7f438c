//! Reconciliation (issue 17, see [`domain::reconcile`]): `saga reconcile` runs one pass (a
//! cluster runs it on a schedule), `saga run all` runs one every `RECONCILE_EVERY_SECS`.
//!
//! A pass reads the other contexts (it writes only its own `reconcile` schema, and repairs
//! only Redis, a derived copy) and checks, each in one statement, so each sees one consistent
//! snapshot:
//!
//! - every wallet against its ledger (balance = the sum of its entries, version = their
//!   count), in pages by account; and each wallet's cached balance in Redis against the wallet:
//!   an older version is a refresh still to come (refreshed, not a finding); the same version
//!   with another balance, or a newer one, is drift, repaired by a compare-and-set (a writer
//!   that got there first wins);
//! - every digital line of an order that completed or awaits shipment, and every line of a
//!   completed one, against its entitlement; every active entitlement from an order against
//!   its debit. Orders and entitlements younger than the grace (`RECONCILE_GRACE_SECS`) are
//!   still in their saga, older than the window (`RECONCILE_WINDOW_SECS`) were checked by the
//!   passes of their time;
//! - every edition's reserved count against its open reservations, and against its stock.
//!
//! A finding the admins were told of in the last day is recorded again but not told again.
//! Telling is at least once: findings are stored first, then published (the envelope's id is
//! the finding's, so a replay is the same message), then marked told.

use std::collections::HashMap;
use std::time::Duration;

use domain::messaging::Envelope;
use domain::reconcile::{DriftFound, DriftKind};
use fred::interfaces::{KeysInterface as _, LuaInterface as _};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

use crate::infra::runtime::Runtime;

/// What a pass looks at.
#[derive(Clone, Copy, Debug)]
pub struct ReconcileSettings {
    /// How long an order or an entitlement may still be in its saga.
    pub grace: Duration,
    /// How far back orders and entitlements are checked.
    pub window: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> ReconcileSettings {
        ReconcileSettings {
            grace: Duration::from_secs(300),
            window: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub run_id: Uuid,
    pub wallets: i64,
    pub orders: i64,
    pub editions: i64,
    /// Findings by kind.
    pub found: HashMap<DriftKind, i64>,
    /// Cached balances that were only behind (refreshed).
    pub refreshed: i64,
    /// Findings the admins were told of in this pass.
    pub told: i64,
}

impl Report {
    pub fn count(&self, kind: DriftKind) -> i64 {
        self.found.get(&kind).copied().unwrap_or(0)
    }
}

struct Finding {
    kind: DriftKind,
    subject: String,
    detail: String,
}

/// Wallets per page.
const PAGE: i64 = 1000;

/// Compare-and-set of a cached balance: `KEYS[1]` becomes `ARGV[2]` (for `ARGV[3]` seconds)
/// only while it still holds `ARGV[1]`, the wrong value the pass saw.
const REPAIR_BALANCE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
";

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Forever, every `every`: one pass (errors are logged; the next pass tries again).
pub async fn periodically(rt: Runtime, settings: ReconcileSettings, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = run_once(&rt, settings).await {
            tracing::warn!(error = %format!("{e:#}"), "reconciliation failed; trying again later");
        }
    }
}

/// One pass (see the module's doc).
#[tracing::instrument(skip_all)]
pub async fn run_once(rt: &Runtime, settings: ReconcileSettings) -> anyhow::Result<Report> {
    let mut report = Report {
        run_id: domain::id::new_id(),
        ..Report::default()
    };
    rt.db
        .execute_raw(stmt(
            "INSERT INTO reconcile.run (id) VALUES ($1)",
            vec![report.run_id.into()],
        ))
        .await?;
    let mut findings = wallets(rt, &mut report).await?;
    findings.extend(entitlements(rt, settings, &mut report).await?);
    findings.extend(stock(rt, &mut report).await?);
    for f in &findings {
        *report.found.entry(f.kind).or_default() += 1;
        let action = if f.kind.repaired() {
            "REPAIRED"
        } else {
            "REPORTED"
        };
        metrics::counter!(
            "store_reconcile_findings_total",
            "kind" => f.kind.as_str(),
            "action" => action,
        )
        .increment(1);
        // Told already (in the last day) about the same thing: recorded, not told again.
        rt.db
            .execute_raw(stmt(
                "INSERT INTO reconcile.finding (id, run_id, kind, subject, detail, action, reported_at) \
                 SELECT $1, $2, $3, $4, $5, $6, \
                        CASE WHEN $6 = 'REPAIRED' OR EXISTS (SELECT 1 FROM reconcile.finding p \
                             WHERE p.kind = $3 AND p.subject = $4 \
                               AND p.reported_at > now() - interval '1 day') \
                        THEN now() END",
                vec![
                    domain::id::new_id().into(),
                    report.run_id.into(),
                    f.kind.as_str().into(),
                    f.subject.clone().into(),
                    f.detail.clone().into(),
                    action.into(),
                ],
            ))
            .await?;
    }
    for kind in DriftKind::ALL {
        metrics::gauge!("store_reconcile_drift", "kind" => kind.as_str())
            .set(report.count(kind) as f64);
    }
    report.told = tell(rt).await?;
    let repaired: i64 = findings.iter().filter(|f| f.kind.repaired()).count() as i64;
    let reported = findings.len() as i64 - repaired;
    rt.db
        .execute_raw(stmt(
            "UPDATE reconcile.run SET finished_at = now(), wallets = $2, orders = $3, \
                 editions = $4, repaired = $5, reported = $6 WHERE id = $1",
            vec![
                report.run_id.into(),
                i32::try_from(report.wallets).unwrap_or(i32::MAX).into(),
                i32::try_from(report.orders).unwrap_or(i32::MAX).into(),
                i32::try_from(report.editions).unwrap_or(i32::MAX).into(),
                i32::try_from(repaired).unwrap_or(i32::MAX).into(),
                i32::try_from(reported).unwrap_or(i32::MAX).into(),
            ],
        ))
        .await?;
    metrics::gauge!("store_reconcile_last_run_timestamp_seconds")
        .set(chrono::Utc::now().timestamp() as f64);
    tracing::info!(
        run.id = %report.run_id,
        wallets = report.wallets,
        orders = report.orders,
        editions = report.editions,
        repaired,
        reported,
        refreshed = report.refreshed,
        told = report.told,
        "reconciliation done"
    );
    Ok(report)
}

/// Wallets against their ledgers, and their cached balances against them.
async fn wallets(rt: &Runtime, report: &mut Report) -> anyhow::Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let mut after = Uuid::nil();
    loop {
        let rows = rt
            .db
            .query_all_raw(stmt(
                "SELECT w.account_id, w.balance_minor, w.version, \
                        coalesce(l.total, 0)::bigint AS ledger_total, coalesce(l.n, 0)::bigint AS ledger_n \
                 FROM billing.wallet w \
                 LEFT JOIN LATERAL (SELECT sum(e.amount_minor) AS total, count(*) AS n \
                                    FROM billing.ledger_entry e WHERE e.account_id = w.account_id) l ON true \
                 WHERE w.account_id > $1 ORDER BY w.account_id LIMIT $2",
                vec![after.into(), PAGE.into()],
            ))
            .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.try_get("", "account_id")?;
        let mut accounts = Vec::with_capacity(rows.len());
        for row in &rows {
            let account: Uuid = row.try_get("", "account_id")?;
            let balance: i64 = row.try_get("", "balance_minor")?;
            let version: i64 = row.try_get("", "version")?;
            let total: i64 = row.try_get("", "ledger_total")?;
            let entries: i64 = row.try_get("", "ledger_n")?;
            report.wallets += 1;
            if balance != total || version != entries {
                // The wallet itself is in question: its cached copy is not judged by it.
                findings.push(Finding {
                    kind: DriftKind::WalletLedger,
                    subject: account.to_string(),
                    detail: format!(
                        "the wallet says {balance} (version {version}), its {entries} ledger entries add up to {total}"
                    ),
                });
            } else {
                accounts.push(account);
            }
        }
        if rt.redis_health.is_up() {
            findings.extend(cached_balances(rt, &accounts, report).await?);
        }
        if i64::try_from(rows.len()).unwrap_or(PAGE) < PAGE {
            break;
        }
    }
    Ok(findings)
}

/// The cached balances of `accounts` against their wallets, read after them (see the module's
/// doc for what counts as drift).
async fn cached_balances(
    rt: &Runtime,
    accounts: &[Uuid],
    report: &mut Report,
) -> anyhow::Result<Vec<Finding>> {
    let keys: Vec<String> = accounts
        .iter()
        .map(|a| domain::keys::balance(&rt.redis_ns, *a))
        .collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let cached: Vec<Option<String>> = rt.redis.mget(keys.clone()).await?;
    let present: Vec<(usize, String)> = cached
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    if present.is_empty() {
        return Ok(Vec::new());
    }
    // The wallets as they are now, after Redis was read: a cached version above them cannot
    // come from a refresh.
    let ids: Vec<Uuid> = present.iter().map(|(i, _)| accounts[*i]).collect();
    let rows = rt
        .db
        .query_all_raw(stmt(
            "SELECT account_id, balance_minor, version FROM billing.wallet WHERE account_id = ANY($1)",
            vec![ids.into()],
        ))
        .await?;
    let mut now: HashMap<Uuid, (i64, i64)> = HashMap::with_capacity(rows.len());
    for row in rows {
        now.insert(
            row.try_get("", "account_id")?,
            (
                row.try_get("", "balance_minor")?,
                row.try_get("", "version")?,
            ),
        );
    }
    let mut findings = Vec::new();
    for (i, value) in present {
        let account = accounts[i];
        let key = &keys[i];
        let Some(&(balance, version)) = now.get(&account) else {
            continue;
        };
        let right = format!("{balance}:{version}");
        match domain::keys::parse_balance(&value) {
            Some((_, v)) if v < version => {
                // Behind: a refresh still to come, or lost in a crash. Not drift.
                let _: i64 = rt
                    .redis
                    .eval(
                        domain::keys::SET_BALANCE_LUA,
                        vec![key.clone()],
                        vec![
                            balance.to_string(),
                            version.to_string(),
                            domain::keys::BALANCE_TTL_SECS.to_string(),
                        ],
                    )
                    .await?;
                report.refreshed += 1;
            }
            Some((b, v)) if b == balance && v == version => {}
            _ => {
                let repaired: i64 = rt
                    .redis
                    .eval(
                        REPAIR_BALANCE_LUA,
                        vec![key.clone()],
                        vec![
                            value.clone(),
                            right.clone(),
                            domain::keys::BALANCE_TTL_SECS.to_string(),
                        ],
                    )
                    .await?;
                if repaired == 1 {
                    tracing::warn!(account.id = %account, cached = %value, wallet = %right, "a cached balance was wrong; repaired");
                    findings.push(Finding {
                        kind: DriftKind::CachedBalance,
                        subject: account.to_string(),
                        detail: format!(
                            "Redis held {value}, the wallet is {right}; set to the wallet's"
                        ),
                    });
                }
            }
        }
    }
    Ok(findings)
}

/// Paid lines against entitlements, and entitlements against debits.
async fn entitlements(
    rt: &Runtime,
    settings: ReconcileSettings,
    report: &mut Report,
) -> anyhow::Result<Vec<Finding>> {
    let (grace, window) = (secs(settings.grace), secs(settings.window));
    let orders = rt
        .db
        .query_one_raw(stmt(
            "SELECT count(*)::bigint AS n FROM ordering.\"order\" \
             WHERE status IN ('COMPLETED', 'AWAITING_SHIPMENT') \
               AND updated_at < now() - $1 * interval '1 second' \
               AND updated_at > now() - $2 * interval '1 second'",
            vec![grace.into(), window.into()],
        ))
        .await?;
    report.orders = match orders {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    let mut findings = Vec::new();
    let missing = rt
        .db
        .query_all_raw(stmt(
            "SELECT l.order_id, l.edition_id, o.status, l.kind FROM ordering.\"order\" o \
             JOIN ordering.order_line l ON l.order_id = o.id \
             WHERE o.updated_at < now() - $1 * interval '1 second' \
               AND o.updated_at > now() - $2 * interval '1 second' \
               AND (o.status = 'COMPLETED' OR (o.status = 'AWAITING_SHIPMENT' AND l.kind = 'digital')) \
               AND NOT EXISTS (SELECT 1 FROM library.entitlement e \
                               WHERE e.order_id = l.order_id AND e.edition_id = l.edition_id) \
             ORDER BY l.order_id, l.edition_id LIMIT 1000",
            vec![grace.into(), window.into()],
        ))
        .await?;
    for row in missing {
        let order: Uuid = row.try_get("", "order_id")?;
        let edition: Uuid = row.try_get("", "edition_id")?;
        let status: String = row.try_get("", "status")?;
        let kind: String = row.try_get("", "kind")?;
        findings.push(Finding {
            kind: DriftKind::MissingEntitlement,
            subject: format!("order {order}"),
            detail: format!(
                "the {kind} line of edition {edition} of a {} order has no entitlement",
                status.to_lowercase().replace('_', " ")
            ),
        });
    }
    let unpaid = rt
        .db
        .query_all_raw(stmt(
            "SELECT e.id, e.order_id FROM library.entitlement e \
             WHERE e.revoked_at IS NULL AND e.order_id IS NOT NULL \
               AND e.granted_at < now() - $1 * interval '1 second' \
               AND e.granted_at > now() - $2 * interval '1 second' \
               AND NOT EXISTS (SELECT 1 FROM billing.ledger_entry d \
                               WHERE d.kind = 'debit' AND d.reference = e.order_id) \
             ORDER BY e.order_id LIMIT 1000",
            vec![grace.into(), window.into()],
        ))
        .await?;
    for row in unpaid {
        let entitlement: Uuid = row.try_get("", "id")?;
        let order: Uuid = row.try_get("", "order_id")?;
        findings.push(Finding {
            kind: DriftKind::UnpaidEntitlement,
            subject: format!("order {order}"),
            detail: format!("entitlement {entitlement} is active, and the order was never debited"),
        });
    }
    Ok(findings)
}

/// Each edition's reserved count against its open reservations and its stock.
async fn stock(rt: &Runtime, report: &mut Report) -> anyhow::Result<Vec<Finding>> {
    let rows = rt
        .db
        .query_all_raw(stmt(
            "SELECT i.edition_id, i.on_hand, i.reserved, coalesce(r.live, 0)::bigint AS live, \
                    count(*) OVER ()::bigint AS editions \
             FROM fulfillment.inventory i \
             LEFT JOIN (SELECT r.edition_id, sum(r.quantity) AS live \
                        FROM fulfillment.reservation r \
                        JOIN fulfillment.shipment s ON s.order_id = r.order_id \
                        WHERE s.status IN ('RESERVED', 'AWAITING_SHIPMENT') \
                        GROUP BY r.edition_id) r ON r.edition_id = i.edition_id",
            vec![],
        ))
        .await?;
    let mut findings = Vec::new();
    for row in rows {
        report.editions = row.try_get("", "editions")?;
        let edition: Uuid = row.try_get("", "edition_id")?;
        let on_hand: i32 = row.try_get("", "on_hand")?;
        let reserved: i32 = row.try_get("", "reserved")?;
        let live: i64 = row.try_get("", "live")?;
        if i64::from(reserved) != live || reserved > on_hand {
            findings.push(Finding {
                kind: DriftKind::Stock,
                subject: format!("edition {edition}"),
                detail: format!(
                    "{reserved} reserved of {on_hand} on hand, the open reservations hold {live}"
                ),
            });
        }
    }
    Ok(findings)
}

/// Tells the admins of every reported finding not told yet → `DriftFound`, then marks it.
async fn tell(rt: &Runtime) -> anyhow::Result<i64> {
    let rows = rt
        .db
        .query_all_raw(stmt(
            "SELECT id, run_id, kind, subject, detail FROM reconcile.finding \
             WHERE action = 'REPORTED' AND reported_at IS NULL ORDER BY created_at LIMIT 100",
            vec![],
        ))
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let admins: Vec<Uuid> = rt
        .db
        .query_all_raw(stmt(
            "SELECT id FROM identity.account WHERE role = 'admin' AND status = 'active' ORDER BY id",
            vec![],
        ))
        .await?
        .iter()
        .map(|r| r.try_get("", "id"))
        .collect::<Result<_, _>>()?;
    let mut told = 0;
    for row in rows {
        let finding: Uuid = row.try_get("", "id")?;
        let kind: String = row.try_get("", "kind")?;
        let Some(kind) = DriftKind::parse(&kind) else {
            continue;
        };
        let event = DriftFound {
            finding_id: finding,
            run_id: row.try_get("", "run_id")?,
            kind,
            subject: row.try_get("", "subject")?,
            detail: row.try_get("", "detail")?,
            admins: admins.clone(),
        };
        let mut env = Envelope::new(event, finding, None);
        // The finding's id: told twice (a crash before the mark) is the same message.
        env.id = finding;
        rt.bus
            .publish_with_id(&env, &format!("drift-{finding}"))
            .await?;
        rt.db
            .execute_raw(stmt(
                "UPDATE reconcile.finding SET reported_at = now() WHERE id = $1",
                vec![finding.into()],
            ))
            .await?;
        told += 1;
    }
    Ok(told)
}
