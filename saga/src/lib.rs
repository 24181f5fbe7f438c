//! The saga participants of the store (DESIGN §3–§4): ordering, billing, fulfillment, library,
//! notification and webhooks. Each is a set of durable JetStream pull consumers writing only its own
//! context's schema, plus a relay publishing its outbox.
//!
//! Module map: [`infra`] holds what every participant stands on and none owns — `runtime` (what
//! participants share, the settings), `consumer` (the consume loop: inbox, retries with backoff,
//! dead letters), `outbox` (the transaction a handler works in and the relay), `provider` (the
//! payment provider port and its sandbox), `health`; then one module per participant with only the handlers of what that context reacts to. Each
//! participant declares its `REGISTRATION` (subjects and handler) for the consume loop, which
//! names none of them; [`registration`], here at the root, maps a [`Participant`] to it.

pub mod billing;
pub mod fulfillment;
pub mod infra;
pub mod library;
pub mod notification;
pub mod ordering;
pub mod reconcile;
pub mod webhooks;

pub use infra::consumer::{Failure, Registration};
pub use infra::runtime::{Clock, ConsumerHealth, Participant, Runtime, Settings, WebhookSettings};

/// What `p` registered with the consume loop.
pub fn registration(p: Participant) -> &'static Registration {
    match p {
        Participant::Ordering => &ordering::REGISTRATION,
        Participant::Billing => &billing::REGISTRATION,
        Participant::Fulfillment => &fulfillment::REGISTRATION,
        Participant::Library => &library::REGISTRATION,
        Participant::Notification => &notification::REGISTRATION,
        Participant::Webhooks => &webhooks::REGISTRATION,
    }
}

/// Lets [`infra::consumer::start`] take a participant by name.
impl From<Participant> for &'static Registration {
    fn from(p: Participant) -> &'static Registration {
        registration(p)
    }
}

/// Runs `participants` until `shutdown` resolves: their consumers and outbox relays.
pub async fn run(
    rt: Runtime,
    participants: &[Participant],
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for &p in participants {
        let consumers = infra::consumer::start(&rt, p).await?;
        for c in consumers {
            tasks.spawn(c);
        }
        tasks.spawn(infra::outbox::relay(rt.clone(), p));
        // Its inbox and outbox keep what is still needed, not every event since the start.
        let tables = vec![
            domain::retention::Prunable::outbox(p.name()),
            domain::retention::Prunable::inbox(p.name()),
        ];
        let (db, retention) = (rt.db.clone(), rt.settings.messaging_retention);
        tasks.spawn(async move {
            domain::retention::pruner(db, tables, retention).await;
            Ok(())
        });
        if p == Participant::Fulfillment {
            tasks.spawn(fulfillment::deadlines(rt.clone()));
        }
        if p == Participant::Webhooks {
            tasks.spawn(webhooks::send::worker(rt.clone()));
        }
        tracing::info!(participant = p.name(), "participant started");
    }
    tokio::select! {
        () = shutdown => {
            tasks.abort_all();
            Ok(())
        }
        Some(res) = tasks.join_next() => {
            tasks.abort_all();
            match res {
                Ok(Ok(())) => anyhow::bail!("a participant task ended"),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(anyhow::anyhow!("a participant task failed: {e}")),
            }
        }
    }
}

/// Spawns `participants` on the current runtime (tests, benchmarks); dropping or aborting the
/// handle stops them.
pub fn spawn(rt: Runtime, participants: Vec<Participant>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = run(rt, &participants, std::future::pending()).await {
            tracing::error!(error = %format!("{e:#}"), "participants stopped");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_participant_registers_itself_with_its_commands_first() {
        for p in Participant::ALL {
            let reg = registration(p);
            assert_eq!(reg.participant, p);
            let subs = reg.subscriptions();
            assert_eq!(subs[0], ("CMD", format!("cmd.{}.>", p.name())));
            assert!(subs[1..].iter().all(|(stream, _)| *stream == "EVT"));
        }
        assert_eq!(
            registration(Participant::Fulfillment).subscriptions(),
            [
                ("CMD", "cmd.fulfillment.>".to_owned()),
                ("EVT", "evt.ordering.order_placed.>".to_owned()),
                ("EVT", "evt.billing.payment_captured.>".to_owned()),
                ("EVT", "evt.billing.payment_declined.>".to_owned()),
            ]
        );
    }
}
