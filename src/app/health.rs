//! Readiness: whether this process can do its work now (the store reachable, writable and at
//! the schema this build expects, the delivery loop running), for a load balancer or an orchestrator that
//! routes traffic only to ready replicas. Liveness needs nothing from here: a process that
//! answers at all is alive.

use std::sync::atomic::Ordering;

use super::App;
use crate::store::{SCHEMA_VERSION, StoreError};

/// The delivery loop's state, as it last reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DeliveryState {
    /// This process runs no loop (`LEADPING_DELIVERY_CONCURRENCY=0`: another replica sends).
    NotHere = 0,
    Running = 1,
    /// The loop's last round failed on the store; it is backing off.
    StoreFailing = 2,
    /// Stopped by a shutdown.
    Stopped = 3,
}

impl DeliveryState {
    fn from_u8(v: u8) -> DeliveryState {
        match v {
            1 => DeliveryState::Running,
            2 => DeliveryState::StoreFailing,
            3 => DeliveryState::Stopped,
            _ => DeliveryState::NotHere,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            DeliveryState::NotHere => "not run by this process",
            DeliveryState::Running => "running",
            DeliveryState::StoreFailing => "backing off: the store is failing",
            DeliveryState::Stopped => "stopped",
        }
    }
}

/// What `GET /health/ready` reports: each check's finding, and whether all passed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// "ok", or why the store cannot serve (unreachable, schema behind or ahead).
    pub store: String,
    pub delivery: &'static str,
}

impl App {
    /// Records the delivery loop's state (the loop calls this).
    pub(super) fn set_delivery_state(&self, state: DeliveryState) {
        self.signals.delivery.store(state as u8, Ordering::Relaxed);
    }

    pub fn delivery_state(&self) -> DeliveryState {
        DeliveryState::from_u8(self.signals.delivery.load(Ordering::Relaxed))
    }

    /// Checks the store (one short transaction reading the schema version) and the delivery
    /// loop. The store check fails within the database timeout when the database is down.
    pub async fn readiness(&self) -> Readiness {
        let store = match self.store.transaction(|tx| tx.schema_version()).await {
            Ok(Some(v)) if v == SCHEMA_VERSION => match self.store.read_only().await {
                Ok(false) => "ok".to_string(),
                Ok(true) => "read-only: every write is refused (503)".to_string(),
                Err(e) if e.is_outage() => "unavailable".to_string(),
                Err(e) => {
                    slog::error!(self.log, "readiness: store failure"; "error" => %e);
                    "failing".to_string()
                }
            },
            Ok(v) => format!(
                "the schema is at version {} but this build needs {SCHEMA_VERSION}",
                v.unwrap_or(0)
            ),
            Err(e) if e.is_outage() => "unavailable".to_string(),
            Err(e) => {
                let e: StoreError = e;
                slog::error!(self.log, "readiness: store failure"; "error" => %e);
                "failing".to_string()
            }
        };
        let delivery = self.delivery_state();
        Readiness {
            ready: store == "ok"
                && matches!(delivery, DeliveryState::Running | DeliveryState::NotHere),
            store,
            delivery: delivery.as_str(),
        }
    }
}
