//! Changing the users of a run while it goes (the web UI's "Edit" of users and spawn rate,
//! Locust's equivalent).
//!
//! A closed-model run follows its plan's stages until the first change; from then on it moves
//! towards the requested users at the requested spawn rate (at once without one) and holds
//! there until the run ends. An open-model run takes the number as its new cap on concurrent
//! users. A capacity search decides its users itself and cannot be steered.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A requested user count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Steer {
    /// Users wanted (closed model) or the cap on concurrent users (open model).
    pub users: u32,
    /// Users started or stopped per second on the way there; `None` = at once.
    pub spawn_rate: Option<f64>,
}

impl Steer {
    /// The user level after `dt` seconds of moving from `level` towards [`Steer::users`].
    pub fn advance(&self, level: f64, dt: f64) -> f64 {
        let target = f64::from(self.users);
        let Some(rate) = self.spawn_rate.filter(|r| r.is_finite() && *r > 0.0) else {
            return target;
        };
        let step = rate * dt.max(0.0);
        if (target - level).abs() <= step {
            target
        } else if target > level {
            level + step
        } else {
            level - step
        }
    }
}

/// The latest [`Steer`] of a run, shared between whoever changes it (the UI) and the engine's
/// scheduler, which reads it ten times a second.
#[derive(Debug, Default)]
pub struct Steering {
    wanted: Mutex<Option<Steer>>,
}

impl Steering {
    /// Asks the run for `users` at `spawn_rate`; the scheduler applies it on its next tick.
    pub fn set(&self, steer: Steer) {
        *self.wanted.lock().unwrap_or_else(|p| p.into_inner()) = Some(steer);
    }

    /// The latest request, `None` while the run follows its plan.
    pub fn get(&self) -> Option<Steer> {
        *self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_at_the_spawn_rate_or_at_once() {
        let up = Steer {
            users: 10,
            spawn_rate: Some(4.0),
        };
        assert_eq!(up.advance(2.0, 1.0), 6.0);
        assert_eq!(up.advance(8.0, 1.0), 10.0);
        let down = Steer {
            users: 1,
            spawn_rate: Some(2.0),
        };
        assert_eq!(down.advance(10.0, 1.0), 8.0);
        let now = Steer {
            users: 7,
            spawn_rate: None,
        };
        assert_eq!(now.advance(0.0, 0.1), 7.0);
        let s = Steering::default();
        assert_eq!(s.get(), None);
        s.set(now);
        assert_eq!(s.get(), Some(now));
    }
}
