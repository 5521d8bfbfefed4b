//! The server's clock. It is the system clock, plus an offset that can be changed only on a
//! server started with `SIGNET_TESTING_CLOCK=1` (tests move time forward through an admin
//! endpoint instead of sleeping through grace periods and expiries). Every time-based rule at the
//! endpoints reads this clock, so tests exercise exactly the code that runs in production.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::UnixTime;

#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
    adjustable: bool,
}

impl Clock {
    /// The system clock; its offset cannot change.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock whose offset tests may set.
    pub fn adjustable() -> Self {
        Self {
            offset: AtomicI64::new(0),
            adjustable: true,
        }
    }

    pub fn now(&self) -> UnixTime {
        crate::now() + self.offset.load(Ordering::Relaxed)
    }

    /// Milliseconds since the Unix epoch by this clock (audit timestamps).
    pub fn now_ms(&self) -> i64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        system + self.offset.load(Ordering::Relaxed) * 1000
    }

    pub fn is_adjustable(&self) -> bool {
        self.adjustable
    }

    /// Sets the offset from system time; `false` (and no change) on a system clock.
    pub fn set_offset(&self, seconds: i64) -> bool {
        if self.adjustable {
            self.offset.store(seconds, Ordering::Relaxed);
        }
        self.adjustable
    }

    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_adjustable_clock_moves() {
        let system = Clock::system();
        assert!(!system.set_offset(3600));
        assert!((system.now() - crate::now()).abs() <= 1);
        let test = Clock::adjustable();
        assert!(test.set_offset(3600));
        assert!((test.now() - crate::now() - 3600).abs() <= 1);
    }
}
