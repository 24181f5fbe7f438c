//! The readiness answer of the api and of the saga participants (`server` feature only), so
//! that the cluster's probes and an operator read one shape everywhere.
//!
//! PostgreSQL and NATS are needed: without either the process is not ready (503). Redis holds
//! only derived state: without it the process still serves, `"degraded"` (200).

/// What a readiness probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub postgres: bool,
    pub redis: bool,
    pub nats: bool,
}

impl Readiness {
    /// Whether the process should get traffic.
    pub fn ready(&self) -> bool {
        self.postgres && self.nats
    }

    /// `ok`, `degraded` (ready without Redis) or `unavailable`.
    pub fn status(&self) -> &'static str {
        match (self.ready(), self.redis) {
            (true, true) => "ok",
            (true, false) => "degraded",
            (false, _) => "unavailable",
        }
    }

    /// `{"status":…,"postgres":…,"redis":…,"nats":…}`, each dependency `ok` or `unavailable`.
    pub fn body(&self) -> serde_json::Value {
        let word = |ok: bool| if ok { "ok" } else { "unavailable" };
        serde_json::json!({
            "status": self.status(),
            "postgres": word(self.postgres),
            "redis": word(self.redis),
            "nats": word(self.nats),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_alone_down_is_degraded_but_ready() {
        let r = Readiness {
            postgres: true,
            redis: false,
            nats: true,
        };
        assert!(r.ready());
        assert_eq!(
            r.body().to_string(),
            r#"{"nats":"ok","postgres":"ok","redis":"unavailable","status":"degraded"}"#
        );
    }

    #[test]
    fn postgres_or_nats_down_is_not_ready() {
        for (postgres, nats) in [(false, true), (true, false)] {
            let r = Readiness {
                postgres,
                redis: true,
                nats,
            };
            assert!(!r.ready());
            assert_eq!(r.status(), "unavailable");
        }
    }
}
