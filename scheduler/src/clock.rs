//! Wall-clock time as the scheduler sees it: behind a trait so simulations
//! can drive it (tokio's clock is paused or simulated there, but timestamps
//! recorded in the log come from here).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use canon_model::UnixMillis;

/// A source of the current time in Unix milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> UnixMillis;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> UnixMillis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as UnixMillis)
            .unwrap_or(0)
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;
