//! The invariants, checked after the run: read-only SQL over the store's PostgreSQL, Redis reads,
//! and the harness's [`Journal`] of what the api answered. Each gives one row of the table.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::client::{Answer, Sql, redis};
use super::workload::{Journal, Outcome, World};

/// One row of the table.
pub struct Row {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn row(name: &'static str, bad: &[String], good: String) -> Row {
    let ok = bad.is_empty();
    let detail = if ok {
        good
    } else {
        let shown: Vec<&str> = bad.iter().take(3).map(String::as_str).collect();
        format!("{} violation(s), e.g. {}", bad.len(), shown.join("; "))
    };
    Row { name, ok, detail }
}

fn int(cell: Option<&String>) -> i64 {
    cell.and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn cell(r: &[String], i: usize) -> &str {
    r.get(i).map_or("", String::as_str)
}

/// Orders that are neither terminal nor legitimately waiting, accepted top-ups billing has
/// not recorded, and shipments not yet in step with their order, with why.
pub fn unsettled(sql: &Sql, journal: &Journal) -> Result<Vec<String>> {
    let rows = sql.rows(
        "SELECT o.id, o.status, coalesce(r.status, '') FROM ordering.\"order\" o \
         LEFT JOIN ordering.refund_request r ON r.order_id = o.id",
    )?;
    let accepted =
        |map: &HashMap<String, Outcome>, id: &str| map.get(id) == Some(&Outcome::Accepted);
    let mut bad = Vec::new();
    let mut seen = HashSet::new();
    for r in &rows {
        let (id, status, refund) = (cell(r, 0), cell(r, 1), cell(r, 2));
        seen.insert(id.to_owned());
        let shipped = accepted(&journal.ships, id);
        let cancelled = accepted(&journal.cancels, id);
        let why = match status {
            "PLACED" | "PAID" => Some("still in its saga"),
            "AWAITING_SHIPMENT" if shipped => Some("shipped, yet awaiting shipment"),
            "AWAITING_SHIPMENT" if cancelled => Some("cancelled, yet awaiting shipment"),
            "COMPLETED" if refund == "APPROVED" => Some("refund approved, yet completed"),
            "COMPLETED" if cancelled && !shipped => Some("cancel accepted, yet completed"),
            "CANCELLED" if shipped && !cancelled => Some("ship accepted, yet cancelled"),
            _ => None,
        };
        if let Some(why) = why {
            bad.push(format!("{id} {status}: {why}"));
        }
    }
    for placed in &journal.placed {
        if !seen.contains(&placed.id) {
            bad.push(format!(
                "{}: answered by placeOrder, never stored",
                placed.id
            ));
        }
    }
    // An accepted top-up is settled once billing recorded it (a retried card may take a few
    // backoff delays after the faults).
    let recorded: HashSet<String> = sql
        .rows("SELECT id FROM billing.top_up")?
        .iter()
        .map(|r| cell(r, 0).to_owned())
        .collect();
    for id in &journal.top_ups {
        if !recorded.contains(id) {
            bad.push(format!("top-up {id}: accepted, not recorded yet"));
        }
    }
    bad.extend(stale_shipments(sql)?);
    Ok(bad)
}

/// Shipments out of step with their order: copies still held for an order that ended, or a
/// parcel sent for an order that did not complete. Ordering may end an order before
/// fulfillment has handled the same event (a `PaymentDeclined` waiting for a restarted
/// fulfillment), so while the run settles this is "not yet"; after it, a leak.
fn stale_shipments(sql: &Sql) -> Result<Vec<String>> {
    let stale = sql.rows(
        "SELECT s.order_id, s.status, o.status FROM fulfillment.shipment s \
         JOIN ordering.\"order\" o ON o.id = s.order_id \
         WHERE (s.status IN ('RESERVED', 'AWAITING_SHIPMENT') AND o.status IN ('CANCELLED', 'COMPLETED', 'REFUNDED')) \
            OR (s.status = 'SHIPPED' AND o.status <> 'COMPLETED')",
    )?;
    Ok(stale
        .iter()
        .map(|r| {
            format!(
                "shipment {} {} of a {} order",
                cell(r, 0),
                cell(r, 1),
                cell(r, 2)
            )
        })
        .collect())
}

pub struct Context<'a> {
    pub sql: &'a Sql,
    pub redis: SocketAddr,
    pub namespace: &'a str,
    pub world: &'a World,
    pub journal: &'a Journal,
}

/// Every invariant, in the table's order.
pub fn all(cx: &Context<'_>, settled_in_time: bool, unsettled: &[String]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let statuses = cx
        .sql
        .rows("SELECT status, count(*) FROM ordering.\"order\" GROUP BY status ORDER BY status")?;
    let statuses: Vec<String> = statuses
        .iter()
        .map(|r| format!("{} {}", cell(r, 1), cell(r, 0).to_lowercase()))
        .collect();
    let mut bad = unsettled.to_vec();
    if !settled_in_time && bad.is_empty() {
        bad.push("did not settle in time".into());
    }
    rows.push(row(
        "every order terminal or waiting (60 s after the last fault)",
        &bad,
        statuses.join(", "),
    ));
    rows.push(ledger(cx)?);
    rows.push(never_negative(cx)?);
    rows.push(redis_matches(cx)?);
    let (once, matches) = order_money(cx)?;
    rows.push(once);
    rows.push(matches);
    rows.push(unaffordable(cx)?);
    rows.push(top_ups(cx)?);
    rows.push(entitlements(cx)?);
    rows.push(downloaded_kept(cx)?);
    rows.push(stock(cx)?);
    rows.push(ship_or_cancel(cx));
    rows.push(one_order_per_key(cx)?);
    rows.push(notified_once(cx)?);
    rows.push(dead_letters(cx)?);
    rows.push(outboxes(cx)?);
    Ok(rows)
}

/// Per account: balance = credits − debits + refunds, the version the number of entries, the
/// last entry's balance the wallet's.
fn ledger(cx: &Context<'_>) -> Result<Row> {
    let rows = cx.sql.rows(
        "SELECT w.account_id, w.balance_minor, w.version, \
           coalesce(sum(l.amount_minor) FILTER (WHERE l.kind = 'credit'), 0), \
           coalesce(-sum(l.amount_minor) FILTER (WHERE l.kind = 'debit'), 0), \
           coalesce(sum(l.amount_minor) FILTER (WHERE l.kind = 'refund'), 0), \
           count(l.id), \
           coalesce((SELECT balance_after FROM billing.ledger_entry x WHERE x.account_id = w.account_id \
                     ORDER BY version DESC LIMIT 1), 0) \
         FROM billing.wallet w LEFT JOIN billing.ledger_entry l ON l.account_id = w.account_id \
         GROUP BY w.account_id, w.balance_minor, w.version",
    )?;
    let mut bad = Vec::new();
    let (mut credits, mut debits, mut refunds) = (0, 0, 0);
    for r in &rows {
        let [balance, version, c, d, f, n, last] = [1, 2, 3, 4, 5, 6, 7].map(|i| int(r.get(i)));
        credits += c;
        debits += d;
        refunds += f;
        if balance != c - d + f || version != n || balance != last {
            bad.push(format!(
                "{}: balance {balance} v{version}, credits {c} − debits {d} + refunds {f} over {n} entries, last {last}",
                cell(r, 0)
            ));
        }
    }
    Ok(row(
        "balance = credits − debits + refunds (per account)",
        &bad,
        format!(
            "{} wallets: credits {credits} − debits {debits} + refunds {refunds} = {}",
            rows.len(),
            credits - debits + refunds
        ),
    ))
}

/// No wallet and no point of any account's history below zero: every entry's balance is the
/// running sum of the entries before it.
fn never_negative(cx: &Context<'_>) -> Result<Row> {
    let rows = cx.sql.rows(
        "SELECT account_id, version, balance_after, running FROM ( \
           SELECT account_id, version, balance_after, \
                  sum(amount_minor) OVER (PARTITION BY account_id ORDER BY version) AS running \
           FROM billing.ledger_entry) x \
         WHERE running < 0 OR balance_after < 0 OR running <> balance_after \
         UNION ALL SELECT account_id, version, balance_minor, balance_minor FROM billing.wallet \
         WHERE balance_minor < 0",
    )?;
    let entries = cx.sql.number("SELECT count(*) FROM billing.ledger_entry")?;
    let bad: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} v{}: balance {} running sum {}",
                cell(r, 0),
                cell(r, 1),
                cell(r, 2),
                cell(r, 3)
            )
        })
        .collect();
    Ok(row(
        "balances never negative (every step of every ledger)",
        &bad,
        format!("{entries} ledger entries replayed"),
    ))
}

/// `balance:{account}` in Redis, when there, is PostgreSQL's balance and version; the api's
/// `wallet` answers PostgreSQL's balance.
fn redis_matches(cx: &Context<'_>) -> Result<Row> {
    let wallets: HashMap<String, (i64, i64)> = cx
        .sql
        .rows("SELECT account_id, balance_minor, version FROM billing.wallet")?
        .into_iter()
        .map(|r| (cell(&r, 0).to_owned(), (int(r.get(1)), int(r.get(2)))))
        .collect();
    let mut bad = Vec::new();
    let mut cached = 0;
    for buyer in &cx.world.buyers {
        let (balance, version) = wallets.get(&buyer.id).copied().unwrap_or((0, 0));
        let key = format!("{}:balance:{}", cx.namespace, buyer.id);
        if let Some(value) = redis(cx.redis, &["GET", &key])? {
            cached += 1;
            if value != format!("{balance}:{version}") {
                bad.push(format!("{key} = {value}, PostgreSQL {balance}:{version}"));
            }
        }
        let answer = cx.world.api.retry(
            Some(&buyer.token),
            "{ wallet { balance { amountMinor } version } }",
            &json!({}),
            Duration::from_secs(30),
        );
        match answer.0 {
            Answer::Data(data) => {
                let api = data
                    .pointer("/wallet/balance/amountMinor")
                    .and_then(serde_json::Value::as_i64);
                if api != Some(balance) {
                    bad.push(format!(
                        "api wallet of {} = {api:?}, PostgreSQL {balance}",
                        buyer.id
                    ));
                }
            }
            other => bad.push(format!("api wallet of {}: {other:?}", buyer.id)),
        }
    }
    Ok(row(
        "Redis balance = PostgreSQL (and the api's wallet)",
        &bad,
        format!("{} buyers, {cached} cached balances", cx.world.buyers.len()),
    ))
}

/// At most one debit and one refund per order; and each order's money matches its end.
fn order_money(cx: &Context<'_>) -> Result<(Row, Row)> {
    let rows = cx.sql.rows(
        "SELECT o.id, o.status, o.total_minor, coalesce(d.n, 0), coalesce(-d.amount, 0), \
                coalesce(r.n, 0), coalesce(r.amount, 0) \
         FROM ordering.\"order\" o \
         LEFT JOIN (SELECT reference, count(*) n, sum(amount_minor) amount FROM billing.ledger_entry \
                    WHERE kind = 'debit' GROUP BY reference) d ON d.reference = o.id \
         LEFT JOIN (SELECT reference, count(*) n, sum(amount_minor) amount FROM billing.ledger_entry \
                    WHERE kind = 'refund' GROUP BY reference) r ON r.reference = o.id",
    )?;
    let orphans = cx.sql.rows(
        "SELECT kind, reference FROM billing.ledger_entry l WHERE kind IN ('debit', 'refund') \
         AND NOT EXISTS (SELECT 1 FROM ordering.\"order\" o WHERE o.id = l.reference)",
    )?;
    let mut twice = Vec::new();
    let mut mismatch: Vec<String> = orphans
        .iter()
        .map(|r| format!("{} of {} for no order", cell(r, 0), cell(r, 1)))
        .collect();
    let (mut debited, mut refunded) = (0, 0);
    for r in &rows {
        let (id, status) = (cell(r, 0), cell(r, 1));
        let [total, debits, debit, refunds, refund] = [2, 3, 4, 5, 6].map(|i| int(r.get(i)));
        debited += debits;
        refunded += refunds;
        if debits > 1 || refunds > 1 {
            twice.push(format!("{id}: {debits} debits, {refunds} refunds"));
        }
        let shape_ok = match status {
            "COMPLETED" | "AWAITING_SHIPMENT" | "PAID" => debits == 1 && refunds == 0,
            "REFUNDED" => debits == 1 && refunds == 1,
            "CANCELLED" => (debits == 0 && refunds == 0) || (debits == 1 && refunds == 1),
            _ => refunds == 0,
        };
        if !shape_ok || (debits == 1 && debit != total) || refund > debit {
            mismatch.push(format!(
                "{id} {status}: total {total}, debited {debit} ({debits}×), refunded {refund} ({refunds}×)"
            ));
        }
    }
    Ok((
        row(
            "at most one debit and one refund per order",
            &twice,
            format!(
                "{debited} debits, {refunded} refunds over {} orders",
                rows.len()
            ),
        ),
        row(
            "money matches each order's end (debit = total, refund ≤ debit)",
            &mismatch,
            "completed/awaiting: debited; refunded: debited+refunded; cancelled: neither or both"
                .into(),
        ),
    ))
}

/// A poor buyer's orders (more than the wallet holds) end cancelled, nothing debited.
fn unaffordable(cx: &Context<'_>) -> Result<Row> {
    let ids: Vec<String> = cx
        .world
        .poor
        .iter()
        .map(|&b| format!("'{}'", cx.world.buyers[b].id))
        .collect();
    if ids.is_empty() {
        return Ok(row(
            "unaffordable orders cancelled, nothing debited",
            &[],
            "none placed".into(),
        ));
    }
    let rows = cx.sql.rows(&format!(
        "SELECT o.id, o.status, coalesce(o.cancel_reason, ''), \
           (SELECT count(*) FROM billing.ledger_entry l WHERE l.kind = 'debit' AND l.reference = o.id) \
         FROM ordering.\"order\" o WHERE o.account_id IN ({})",
        ids.join(", ")
    ))?;
    let mut reasons: HashMap<String, usize> = HashMap::new();
    let mut bad = Vec::new();
    for r in &rows {
        *reasons.entry(cell(r, 2).to_owned()).or_default() += 1;
        if cell(r, 1) != "CANCELLED" || int(r.get(3)) != 0 {
            bad.push(format!(
                "{} {} with {} debit(s)",
                cell(r, 0),
                cell(r, 1),
                cell(r, 3)
            ));
        }
    }
    let mut shown: Vec<String> = reasons.iter().map(|(k, v)| format!("{v} {k}")).collect();
    shown.sort();
    Ok(row(
        "unaffordable orders cancelled, nothing debited",
        &bad,
        format!("{} orders: {}", rows.len(), shown.join(", ")),
    ))
}

/// Each top-up the api accepted is credited exactly once, for its amount; no credit without one.
fn top_ups(cx: &Context<'_>) -> Result<Row> {
    let rows = cx.sql.rows(
        "SELECT t.id, t.status, t.amount_minor, count(l.id), coalesce(sum(l.amount_minor), 0) \
         FROM billing.top_up t LEFT JOIN billing.ledger_entry l ON l.kind = 'credit' AND l.reference = t.id \
         GROUP BY t.id, t.status, t.amount_minor",
    )?;
    let orphans = cx.sql.number(
        "SELECT count(*) FROM billing.ledger_entry l WHERE kind = 'credit' \
         AND NOT EXISTS (SELECT 1 FROM billing.top_up t WHERE t.id = l.reference)",
    )?;
    let by_id: HashMap<&str, &Vec<String>> = rows.iter().map(|r| (cell(r, 0), r)).collect();
    let mut bad = Vec::new();
    if orphans > 0 {
        bad.push(format!("{orphans} credits without a top-up"));
    }
    for r in &rows {
        let credited = cell(r, 1) == "CREDITED";
        let (amount, n, sum) = (int(r.get(2)), int(r.get(3)), int(r.get(4)));
        if (credited && (n != 1 || sum != amount)) || (!credited && n != 0) {
            bad.push(format!(
                "top-up {} {}: {n} credits, {sum} of {amount}",
                cell(r, 0),
                cell(r, 1)
            ));
        }
    }
    for id in &cx.journal.top_ups {
        match by_id.get(id.as_str()) {
            None => bad.push(format!("top-up {id}: accepted, never recorded")),
            Some(r) if cell(r, 1) != "CREDITED" => {
                bad.push(format!(
                    "top-up {id}: {} with an approving card",
                    cell(r, 1)
                ));
            }
            Some(_) => {}
        }
    }
    Ok(row(
        "one credit per accepted top-up",
        &bad,
        format!(
            "{} top-ups, {} by the harness",
            rows.len(),
            cx.journal.top_ups.len()
        ),
    ))
}

/// One entitlement per paid line as the order's end wants it, none without a payment.
fn entitlements(cx: &Context<'_>) -> Result<Row> {
    let rows = cx.sql.rows(
        "SELECT o.id, o.status, l.kind, e.id IS NOT NULL, e.revoked_at IS NOT NULL, \
                d.entitlement_id IS NOT NULL, \
                EXISTS (SELECT 1 FROM billing.ledger_entry x WHERE x.kind = 'debit' AND x.reference = o.id) \
         FROM ordering.order_line l JOIN ordering.\"order\" o ON o.id = l.order_id \
         LEFT JOIN library.entitlement e ON e.order_id = l.order_id AND e.edition_id = l.edition_id \
         LEFT JOIN catalog.download d ON d.entitlement_id = e.id",
    )?;
    let orphans = cx.sql.number(
        "SELECT count(*) FROM library.entitlement e WHERE e.order_id IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM ordering.order_line l WHERE l.order_id = e.order_id AND l.edition_id = e.edition_id)",
    )?;
    let mut bad = Vec::new();
    if orphans > 0 {
        bad.push(format!("{orphans} entitlements of no order line"));
    }
    let (mut active, mut revoked) = (0, 0);
    for r in &rows {
        let (id, status, kind) = (cell(r, 0), cell(r, 1), cell(r, 2));
        let t = |i: usize| cell(r, i) == "t";
        let (exists, is_revoked, downloaded, paid) = (t(3), t(4), t(5), t(6));
        let is_active = exists && !is_revoked;
        active += i64::from(is_active);
        revoked += i64::from(exists && is_revoked);
        let physical = kind == "physical";
        let why = if exists && !paid {
            Some("entitlement without payment")
        } else {
            match status {
                "COMPLETED" if !is_active => Some("completed, line not in the library"),
                "AWAITING_SHIPMENT" if !physical && !is_active => {
                    Some("paid digital line not granted")
                }
                "AWAITING_SHIPMENT" if physical && exists => {
                    Some("box in the library before shipping")
                }
                // A downloaded digital line of a cancelled order is kept (not refunded).
                "CANCELLED" if is_active && (physical || !downloaded) => {
                    Some("cancelled, still in the library")
                }
                "REFUNDED" if is_active => Some("refunded, still in the library"),
                _ => None,
            }
        };
        if let Some(why) = why {
            bad.push(format!("{id} {status} {kind} line: {why}"));
        }
    }
    Ok(row(
        "one entitlement per paid line, none without payment",
        &bad,
        format!(
            "{} lines: {active} entitlements active, {revoked} revoked",
            rows.len()
        ),
    ))
}

/// A line whose build was downloaded is never taken back and refunded (unless an admin
/// decided so; the harness's admin never does).
fn downloaded_kept(cx: &Context<'_>) -> Result<Row> {
    let rows = cx.sql.rows(
        "SELECT e.order_id, o.status, coalesce(r.status, '-') FROM catalog.download d \
         JOIN library.entitlement e ON e.id = d.entitlement_id \
         LEFT JOIN ordering.\"order\" o ON o.id = e.order_id \
         LEFT JOIN ordering.refund_request r ON r.order_id = e.order_id \
         WHERE e.revoked_at IS NOT NULL \
           AND NOT (r.status = 'APPROVED' AND r.decided_by IS NOT NULL AND NOT r.within_policy)",
    )?;
    let downloads = cx.sql.number("SELECT count(*) FROM catalog.download")?;
    let mut how: HashMap<&str, usize> = HashMap::new();
    for r in &rows {
        let way = match cell(r, 1) {
            "CANCELLED" => "through a cancel",
            "REFUNDED" => "through a refund",
            _ => "otherwise",
        };
        *how.entry(way).or_default() += 1;
    }
    let mut how: Vec<String> = how.iter().map(|(k, v)| format!("{v} {k}")).collect();
    how.sort();
    let bad: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "order {} {} (refund request {})",
                cell(r, 0),
                cell(r, 1),
                cell(r, 2)
            )
        })
        .collect();
    let mut result = row(
        "no refund of a downloaded line",
        &bad,
        format!(
            "{downloads} downloaded entitlements; {} download/refund races",
            cx.journal.download_refund_races
        ),
    );
    if !result.ok {
        result.detail = format!("({}) {}", how.join(", "), result.detail);
    }
    Ok(result)
}

/// Per physical edition: set + added = on hand + shipped (a lost answer to an addition leaves
/// a range), reserved ≤ on hand, reserved = the live reservations, and no reservation held by
/// an order that ended.
fn stock(cx: &Context<'_>) -> Result<Row> {
    let rows = cx.sql.rows(
        "SELECT i.edition_id, i.on_hand, i.reserved, \
           coalesce((SELECT sum(r.quantity) FROM fulfillment.reservation r JOIN fulfillment.shipment s \
                     ON s.order_id = r.order_id WHERE r.edition_id = i.edition_id AND s.status = 'SHIPPED'), 0), \
           coalesce((SELECT sum(r.quantity) FROM fulfillment.reservation r JOIN fulfillment.shipment s \
                     ON s.order_id = r.order_id WHERE r.edition_id = i.edition_id \
                     AND s.status IN ('RESERVED', 'AWAITING_SHIPMENT')), 0) \
         FROM fulfillment.inventory i",
    )?;
    let mut bad = stale_shipments(cx.sql)?;
    let (mut shipped_total, mut on_hand_total) = (0, 0);
    let by_edition: HashMap<&str, &Vec<String>> = rows.iter().map(|r| (cell(r, 0), r)).collect();
    for edition in cx.world.physical.iter() {
        let Some(r) = by_edition.get(edition.id.as_str()) else {
            bad.push(format!("{}: no inventory", edition.id));
            continue;
        };
        let [on_hand, reserved, shipped, live] = [1, 2, 3, 4].map(|i| int(r.get(i)));
        shipped_total += shipped;
        on_hand_total += on_hand;
        let set = cx.journal.stock_set.get(&edition.id).copied().unwrap_or(0);
        let added = cx
            .journal
            .stock_added
            .get(&edition.id)
            .copied()
            .unwrap_or(0);
        let unknown = cx
            .journal
            .stock_unknown
            .get(&edition.id)
            .copied()
            .unwrap_or(0);
        let total = on_hand + shipped;
        if total < set + added || total > set + added + unknown {
            bad.push(format!(
                "{}: set {set} + added {added} (+{unknown} unanswered) ≠ on hand {on_hand} + shipped {shipped}",
                edition.id
            ));
        }
        if reserved > on_hand || reserved != live {
            bad.push(format!(
                "{}: reserved {reserved}, on hand {on_hand}, live reservations {live}",
                edition.id
            ));
        }
    }
    Ok(row(
        "stock: set + added = on hand + shipped, reserved ≤ on hand",
        &bad,
        format!(
            "{} editions: {on_hand_total} on hand, {shipped_total} shipped",
            cx.world.physical.len()
        ),
    ))
}

/// Of a ship and a cancel of one order, at most one is accepted.
fn ship_or_cancel(cx: &Context<'_>) -> Row {
    let j = cx.journal;
    let bad: Vec<String> = j
        .ships
        .iter()
        .filter(|(id, o)| {
            **o == Outcome::Accepted && j.cancels.get(*id) == Some(&Outcome::Accepted)
        })
        .map(|(id, _)| format!("{id}: both ship and cancel accepted"))
        .collect();
    let count =
        |m: &HashMap<String, Outcome>| m.values().filter(|o| **o == Outcome::Accepted).count();
    row(
        "a ship racing a cancel: at most one accepted",
        &bad,
        format!(
            "{} ships, {} cancels accepted; {} races",
            count(&j.ships),
            count(&j.cancels),
            j.races
        ),
    )
}

/// One order per (account, key) in PostgreSQL, and every answer to one key and input names
/// that one order.
fn one_order_per_key(cx: &Context<'_>) -> Result<Row> {
    let doubled = cx.sql.rows(
        "SELECT account_id, idempotency_key, count(*) FROM ordering.\"order\" \
         GROUP BY 1, 2 HAVING count(*) > 1",
    )?;
    let mut bad: Vec<String> = doubled
        .iter()
        .map(|r| format!("{} orders for key {}", cell(r, 2), cell(r, 1)))
        .collect();
    for ((_, key), answers) in &cx.journal.key_answers {
        let orders: HashSet<&String> = answers.iter().filter(|a| a.starts_with("order ")).collect();
        let refused = answers
            .iter()
            .filter(|a| !a.starts_with("order ") && !a.starts_with("no answer"))
            .count();
        if orders.len() > 1 || (!orders.is_empty() && refused > 0) {
            bad.push(format!("key {key}: {}", answers.join(" | ")));
        }
    }
    Ok(row(
        "one order per key, one answer per key",
        &bad,
        format!(
            "{} keys, {} replayed by 4 clients at once",
            cx.journal.key_answers.len(),
            cx.journal.replay_groups
        ),
    ))
}

/// Each saga event reaches each person once: at most one notification per (account, order,
/// kind). Nothing in the schema enforces it; only the inbox does.
fn notified_once(cx: &Context<'_>) -> Result<Row> {
    let rows = cx.sql.rows(
        "SELECT account_id, order_id, kind, count(*) FROM notification.notification \
         WHERE order_id IS NOT NULL GROUP BY 1, 2, 3 HAVING count(*) > 1",
    )?;
    let total = cx
        .sql
        .number("SELECT count(*) FROM notification.notification")?;
    let bad: Vec<String> = rows
        .iter()
        .map(|r| format!("{}× {} of order {}", cell(r, 3), cell(r, 2), cell(r, 1)))
        .collect();
    Ok(row(
        "one notification per account, order and kind",
        &bad,
        format!("{total} notifications"),
    ))
}

const CONTEXTS: [&str; 5] = [
    "ordering",
    "billing",
    "fulfillment",
    "library",
    "notification",
];

/// No message dead-lettered (the harness injects no poison message).
fn dead_letters(cx: &Context<'_>) -> Result<Row> {
    let union: Vec<String> = CONTEXTS
        .iter()
        .map(|c| format!("SELECT '{c}', kind, left(error, 120) FROM {c}.dead_letter"))
        .collect();
    let rows = cx.sql.rows(&union.join(" UNION ALL "))?;
    let bad: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}: {}", cell(r, 0), cell(r, 1), cell(r, 2)))
        .collect();
    Ok(row("no dead letters (none injected)", &bad, "0".into()))
}

/// Every event written to an outbox was published.
fn outboxes(cx: &Context<'_>) -> Result<Row> {
    let union: Vec<String> = CONTEXTS
        .iter()
        .map(|c| format!("SELECT '{c}', count(*) FILTER (WHERE published_at IS NULL), count(*) FROM {c}.outbox"))
        .collect();
    let rows = cx.sql.rows(&union.join(" UNION ALL "))?;
    let total: i64 = rows.iter().map(|r| int(r.get(2))).sum();
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| int(r.get(1)) > 0)
        .map(|r| format!("{}: {} unpublished", cell(r, 0), cell(r, 1)))
        .collect();
    Ok(row(
        "outboxes drained",
        &bad,
        format!("{total} events published"),
    ))
}
