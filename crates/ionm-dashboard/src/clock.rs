//! The injected clock: the dashboard never reads the system time itself, so tests get reproducible frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A monotonic clock in seconds from an arbitrary origin.
///
/// The dashboard uses it for what depends on wall time: blinking an unacknowledged alarm, noticing a stalled
/// source, and timing its own frames. Closures `Fn() -> f64` are clocks too.
pub trait Clock: Send + Sync {
    /// Seconds since the clock's origin; never decreases.
    fn now_s(&self) -> f64;
}

impl<F: Fn() -> f64 + Send + Sync> Clock for F {
    fn now_s(&self) -> f64 {
        self()
    }
}

/// The real monotonic clock, origin at its creation.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock reading 0 now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_s(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }
}

/// A clock that only moves when told to (tests, screenshots, benchmarks). Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `seconds`.
    pub fn new(seconds: f64) -> Self {
        let c = Self::default();
        c.set_s(seconds);
        c
    }

    /// Sets the time, s (clamped to ≥ 0; it may go backwards only if you ask).
    pub fn set_s(&self, seconds: f64) {
        let ns = if seconds.is_finite() {
            (seconds.max(0.0) * 1e9) as u64
        } else {
            0
        };
        self.nanos.store(ns, Ordering::Relaxed);
    }

    /// Moves the time forward by `seconds` (negative or NaN steps are ignored).
    pub fn advance_s(&self, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            self.nanos.fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
        }
    }

    /// The shared clock as a trait object.
    pub fn shared(&self) -> Arc<dyn Clock> {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now_s(&self) -> f64 {
        self.nanos.load(Ordering::Relaxed) as f64 * 1e-9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared_and_monotonic_on_advance() {
        let a = ManualClock::new(1.5);
        let b = a.clone();
        b.advance_s(0.25);
        b.advance_s(-3.0);
        b.advance_s(f64::NAN);
        assert!((a.now_s() - 1.75).abs() < 1e-9);
        let f = || 42.0;
        assert_eq!(Clock::now_s(&f), 42.0);
    }
}
