//! Notification: one notification per meaningful event, for the buyer and (for a sale) each
//! publisher. The unread counter `notif:unread:{account}` in Redis is dropped after each
//! change and rebuilt from the table by the api on its next read (while Redis is down the api
//! counts in the table, and drops the counters changed meanwhile when Redis is back).

use domain::billing::{PaymentRefunded, TopUpDeclined, WalletCredited};
use domain::catalog::discount::WishedItemOnSale;
use domain::fulfillment::{ReadyToShip, ShipmentDispatched, ShippingReminder};
use domain::library::{GiftKeysGenerated, KeyRedeemed};
use domain::messaging::Message;
use domain::notification::entity::notification;
use domain::notification::{MarkRead, NotificationCreated, Notifies};
use domain::ordering::{OrderCancelled, OrderCompleted};
use domain::reconcile::DriftFound;
use domain::refund::{OrderRefunded, RefundDenied, RefundRequested};
use domain::webhooks::EndpointDisabled;
use fred::interfaces::KeysInterface;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::infra::consumer::{Failure, Incoming, Registration};
use crate::infra::outbox::{AfterCommit, Tx};
use crate::infra::runtime::{Participant, Runtime};

const ME: Participant = Participant::Notification;

/// What notification reacts to, registered with the consume loop: its commands and these events.
pub const REGISTRATION: Registration = Registration {
    participant: ME,
    events: &[
        "ordering.order_completed",
        "ordering.order_cancelled",
        "ordering.refund_requested",
        "ordering.refund_denied",
        "ordering.order_refunded",
        "library.gift_keys_generated",
        "library.key_redeemed",
        "billing.wallet_credited",
        "billing.top_up_declined",
        "billing.payment_refunded",
        "fulfillment.ready_to_ship",
        "fulfillment.shipment_dispatched",
        "fulfillment.shipping_reminder",
        "webhooks.endpoint_disabled",
        "reconcile.drift_found",
        "catalog.wished_item_on_sale",
    ],
    handle: |rt, msg| Box::pin(handle(rt, msg)),
};

pub async fn handle(rt: &Runtime, msg: &Incoming) -> Result<(), Failure> {
    // The words are the domain's (`Notifies`); this stores them and tells the live push.
    let notes = match msg.kind() {
        OrderCompleted::TYPE => msg.data::<OrderCompleted>()?.notes(),
        OrderCancelled::TYPE => msg.data::<OrderCancelled>()?.notes(),
        WalletCredited::TYPE => msg.data::<WalletCredited>()?.notes(),
        TopUpDeclined::TYPE => msg.data::<TopUpDeclined>()?.notes(),
        PaymentRefunded::TYPE => msg.data::<PaymentRefunded>()?.notes(),
        ReadyToShip::TYPE => msg.data::<ReadyToShip>()?.notes(),
        ShippingReminder::TYPE => msg.data::<ShippingReminder>()?.notes(),
        ShipmentDispatched::TYPE => msg.data::<ShipmentDispatched>()?.notes(),
        RefundRequested::TYPE => msg.data::<RefundRequested>()?.notes(),
        RefundDenied::TYPE => msg.data::<RefundDenied>()?.notes(),
        OrderRefunded::TYPE => msg.data::<OrderRefunded>()?.notes(),
        GiftKeysGenerated::TYPE => msg.data::<GiftKeysGenerated>()?.notes(),
        KeyRedeemed::TYPE => msg.data::<KeyRedeemed>()?.notes(),
        EndpointDisabled::TYPE => msg.data::<EndpointDisabled>()?.notes(),
        DriftFound::TYPE => msg.data::<DriftFound>()?.notes(),
        WishedItemOnSale::TYPE => msg.data::<WishedItemOnSale>()?.notes(),
        MarkRead::TYPE => return mark_read(rt, msg, msg.data()?).await,
        other => {
            return Err(Failure::Poison(format!(
                "notification does not handle `{other}`"
            )));
        }
    };
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let accounts: Vec<Uuid> = notes.iter().map(|n| n.account).collect();
    for n in notes {
        let id = domain::id::new_id();
        notification::Entity::insert(notification::ActiveModel {
            id: Set(id),
            account_id: Set(n.account),
            kind: Set(n.kind.as_str().to_owned()),
            title: Set(n.title.clone()),
            body: Set(n.body.clone()),
            order_id: Set(n.order),
            ..Default::default()
        })
        .exec_without_returning(tx.db())
        .await?;
        tx.emit(
            NotificationCreated {
                notification_id: id,
                account_id: n.account,
                kind: n.kind,
                title: n.title,
                body: n.body,
                order_id: n.order,
            },
            msg,
        )?;
    }
    tx.after_commit(forget_unread(accounts));
    tx.commit(rt).await
}

async fn mark_read(rt: &Runtime, msg: &Incoming, cmd: MarkRead) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::current_timestamp())
        .filter(notification::Column::AccountId.eq(cmd.account_id))
        .filter(notification::Column::ReadAt.is_null())
        .filter(notification::Column::CreatedAt.lte(cmd.up_to))
        .exec(tx.db())
        .await?;
    tx.after_commit(forget_unread(vec![cmd.account_id]));
    tx.commit(rt).await
}

/// Drops the derived unread counters once the change is committed; the api rebuilds them
/// from the table.
fn forget_unread(accounts: Vec<Uuid>) -> AfterCommit {
    Box::new(move |rt| Box::pin(async move { drop_unread(&rt, &accounts).await }))
}

async fn drop_unread(rt: &Runtime, accounts: &[Uuid]) {
    if !rt.redis_health.is_up() {
        return;
    }
    let keys: Vec<String> = accounts
        .iter()
        .map(|a| domain::keys::unread(&rt.redis_ns, *a))
        .collect();
    let res: Result<i64, _> = rt.redis.del(keys).await;
    if let Err(e) = res {
        tracing::warn!(error = %e, "could not drop the unread counters");
    }
}
