//! Load shapes as functions of time: how many users a closed-model run wants at `t`, when the
//! k-th open-model arrival is due, and how long each shape lasts.

use std::time::Duration;

use crate::plan::{Arrival, Capacity, Stage};

/// Closed-model controller state: the fractional user level it is moving.
#[derive(Debug, Clone)]
pub struct StageController {
    stages: Vec<Stage>,
    level: f64,
}

impl StageController {
    /// A controller starting at zero users.
    pub fn new(stages: &[Stage]) -> Self {
        Self {
            stages: stages.to_vec(),
            level: 0.0,
        }
    }

    /// Total length of all stages.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration.0).sum()
    }

    /// Advances to time `t` (seconds since start) after `dt` seconds and returns the users wanted.
    ///
    /// A stage with `spawn_rate` moves towards its target at that rate (Locust); without it the
    /// level ramps linearly from the previous target to this one over the stage (k6).
    pub fn advance(&mut self, t: f64, dt: f64) -> u32 {
        let mut start = 0.0;
        let mut prev_target = 0.0;
        for s in &self.stages {
            let d = s.duration.0.as_secs_f64();
            if t < start + d {
                let target = f64::from(s.users);
                self.level = match s.spawn_rate {
                    Some(rate) => step_towards(self.level, target, rate * dt),
                    None => prev_target + (target - prev_target) * ((t - start) / d),
                };
                return self.level.round() as u32;
            }
            start += d;
            prev_target = f64::from(s.users);
        }
        self.level = prev_target;
        self.level.round() as u32
    }
}

fn step_towards(from: f64, to: f64, max_step: f64) -> f64 {
    if (to - from).abs() <= max_step {
        to
    } else if to > from {
        from + max_step
    } else {
        from - max_step
    }
}

/// The open-model arrival schedule: the cumulative arrivals F(t) is piecewise quadratic
/// (constant or linearly ramping rates), so the k-th arrival time is solved exactly rather than
/// accumulated tick by tick (no drift).
#[derive(Debug, Clone)]
pub struct ArrivalSchedule {
    /// (start second, duration, rate at start, rate at end, arrivals before this phase)
    phases: Vec<(f64, f64, f64, f64, f64)>,
    total: f64,
}

impl ArrivalSchedule {
    /// Builds the schedule from the plan's phases.
    pub fn new(arrival: &Arrival) -> Self {
        let mut phases = Vec::new();
        let (mut start, mut before) = (0.0, 0.0);
        for s in &arrival.stages {
            let d = s.duration.0.as_secs_f64();
            let (r0, r1) = (s.rate, s.ramp_to.unwrap_or(s.rate));
            phases.push((start, d, r0, r1, before));
            start += d;
            before += (r0 + r1) / 2.0 * d;
        }
        Self {
            phases,
            total: start,
        }
    }

    /// Total length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.total)
    }

    /// Expected number of arrivals over the whole schedule.
    pub fn expected_total(&self) -> f64 {
        self.phases
            .last()
            .map_or(0.0, |&(_, d, r0, r1, before)| before + (r0 + r1) / 2.0 * d)
    }

    /// Rate (arrivals/s) at time `t`.
    pub fn rate_at(&self, t: f64) -> f64 {
        self.phases
            .iter()
            .find(|(s, d, ..)| t >= *s && t < s + d)
            .map_or(0.0, |&(s, d, r0, r1, _)| r0 + (r1 - r0) * (t - s) / d)
    }

    /// Seconds from the start at which arrival number `k` (0-based) is due, or `None` after the end.
    pub fn time_of(&self, k: u64) -> Option<f64> {
        // Arrival k is due when F(t) = k, so the first one starts at t = 0 like k6 and Artillery.
        let target = k as f64;
        for &(start, d, r0, r1, before) in &self.phases {
            let inside = (r0 + r1) / 2.0 * d;
            if target < before + inside - 1e-9 {
                let need = (target - before).max(0.0);
                // Solve r0*u + (r1-r0)/(2d) * u^2 = need for u in [0, d].
                let a = (r1 - r0) / (2.0 * d);
                let u = if a.abs() < 1e-12 {
                    need / r0
                } else {
                    let disc = (r0 * r0 + 4.0 * a * need).max(0.0);
                    (-r0 + disc.sqrt()) / (2.0 * a)
                };
                return Some(start + u.clamp(0.0, d));
            }
        }
        None
    }
}

/// Capacity search steps.
#[derive(Debug, Clone)]
pub struct CapacitySteps {
    /// The plan's settings.
    pub cap: Capacity,
}

impl CapacitySteps {
    /// Number of steps from `start_users` to `max_users`.
    pub fn step_count(&self) -> u32 {
        (self.cap.max_users - self.cap.start_users).div_ceil(self.cap.step_users) + 1
    }

    /// Users wanted in step `i` (0-based).
    pub fn users_in_step(&self, i: u32) -> u32 {
        (self.cap.start_users + i * self.cap.step_users).min(self.cap.max_users)
    }

    /// Length of the whole search if nothing breaks.
    pub fn duration(&self) -> Duration {
        self.cap.step_every.0 * self.step_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Dur;
    use crate::plan::ArrivalStage;

    fn stage(secs: u64, users: u32, spawn_rate: Option<f64>) -> Stage {
        Stage {
            duration: Dur(Duration::from_secs(secs)),
            users,
            spawn_rate,
        }
    }

    #[test]
    fn locust_style_spawn_rate_and_k6_style_ramp() {
        let mut c = StageController::new(&[stage(10, 10, Some(2.0))]);
        assert_eq!(c.advance(1.0, 1.0), 2);
        assert_eq!(c.advance(2.0, 1.0), 4);
        assert_eq!(c.advance(9.0, 10.0), 10);
        let mut k = StageController::new(&[stage(10, 100, None), stage(10, 0, None)]);
        assert_eq!(k.advance(5.0, 0.1), 50);
        assert_eq!(k.advance(15.0, 0.1), 50);
        assert_eq!(k.advance(25.0, 0.1), 0);
    }

    #[test]
    fn arrival_times_follow_constant_and_ramping_rates() {
        let s = ArrivalSchedule::new(&Arrival {
            max_users: 10,
            stages: vec![
                ArrivalStage {
                    duration: Dur(Duration::from_secs(10)),
                    rate: 10.0,
                    ramp_to: None,
                },
                ArrivalStage {
                    duration: Dur(Duration::from_secs(10)),
                    rate: 0.0,
                    ramp_to: Some(20.0),
                },
            ],
        });
        assert_eq!(s.time_of(0), Some(0.0));
        assert!((s.time_of(10).unwrap() - 1.0).abs() < 1e-9);
        assert!((s.expected_total() - 200.0).abs() < 1e-9);
        // 100 arrivals in phase 1, then F = u^2 in phase 2: arrival 125 at u = 5.
        assert!((s.time_of(125).unwrap() - 15.0).abs() < 1e-9);
        assert_eq!(s.time_of(200), None);
    }

    #[test]
    fn capacity_steps() {
        let c = CapacitySteps {
            cap: Capacity {
                start_users: 10,
                step_users: 10,
                step_every: Dur(Duration::from_secs(120)),
                max_users: 45,
                spawn_rate: None,
                stop_error_rate: Some(0.05),
                stop_p95_ms: None,
            },
        };
        assert_eq!(c.step_count(), 5);
        assert_eq!(c.users_in_step(4), 45);
        assert_eq!(c.duration(), Duration::from_secs(600));
    }
}
