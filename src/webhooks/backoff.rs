//! When a failed delivery is tried again: after about 5 seconds, 5
//! minutes, 30 minutes, 2 hours, 5 hours and 10 hours, then every 10 hours,
//! each delay moved by up to a tenth either way so that endpoints failing
//! together are not retried together; after 3 days of failures (by
//! default) the endpoint is marked failing and its events wait for an
//! admin.

use std::time::Duration;

/// A retry schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delays after the first failures, in order.
    pub steps: Vec<Duration>,
    /// The delay after every later failure.
    pub then_every: Duration,
    /// How long an endpoint may keep failing before it is marked failing.
    pub give_up_after: Duration,
}

/// The share of a delay jitter moves it by, at most, either way.
const JITTER: f64 = 0.1;

impl Default for RetryPolicy {
    fn default() -> Self {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        RetryPolicy {
            steps: [5, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR]
                .map(Duration::from_secs)
                .to_vec(),
            then_every: Duration::from_secs(10 * HOUR),
            give_up_after: Duration::from_secs(72 * HOUR),
        }
    }
}

/// Why a schedule or duration given in configuration is not one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("'{0}' is not a duration like 500ms, 5s, 5m, 2h or 3d")]
    Duration(String),
    #[error("a retry schedule needs at least one delay")]
    Empty,
}

/// A duration as configuration writes it: a whole number and a unit,
/// `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, ScheduleError> {
    let text = text.trim();
    let bad = || ScheduleError::Duration(text.to_owned());
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

impl RetryPolicy {
    /// A policy from its configuration: the delays, comma-separated (the
    /// last one repeats), and how long an endpoint may fail.
    pub fn parse(schedule: &str, give_up_after: &str) -> Result<RetryPolicy, ScheduleError> {
        let steps = schedule
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(parse_duration)
            .collect::<Result<Vec<_>, _>>()?;
        let then_every = *steps.last().ok_or(ScheduleError::Empty)?;
        Ok(RetryPolicy {
            steps,
            then_every,
            give_up_after: parse_duration(give_up_after)?,
        })
    }

    /// The delay before the next try after `failures` failures in a row
    /// (1 for the first). `unit` in [0, 1) picks the jitter.
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let base = failures
            .checked_sub(1)
            .and_then(|i| self.steps.get(i as usize))
            .copied()
            .unwrap_or(self.then_every);
        let factor = 1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        base.mul_f64(factor)
    }

    /// Whether an endpoint failing since `failing_for` should stop being
    /// retried and be marked failing.
    pub fn gives_up(&self, failing_for: Duration) -> bool {
        failing_for >= self.give_up_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_grows_then_repeats_every_ten_hours() {
        let p = RetryPolicy::default();
        let secs = |n| p.delay(n, 0.5).as_secs();
        assert_eq!(
            (1..=8).map(secs).collect::<Vec<_>>(),
            [5, 300, 1800, 7200, 18000, 36000, 36000, 36000]
        );
        assert_eq!(p.delay(0, 0.5), p.then_every);
        assert_eq!(p.delay(u32::MAX, 0.5), p.then_every);
    }

    #[test]
    fn jitter_moves_a_delay_by_at_most_a_tenth() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(2, 0.0), Duration::from_secs(270));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs(330));
        for unit in [0.0, 0.13, 0.5, 0.77, 0.999] {
            let d = p.delay(3, unit).as_secs_f64();
            assert!((1620.0..=1980.0).contains(&d), "{d}");
        }
        // Out-of-range units are clamped, never negative.
        assert_eq!(p.delay(1, -3.0), Duration::from_millis(4500));
    }

    #[test]
    fn the_default_is_what_the_configuration_default_says() {
        assert_eq!(
            RetryPolicy::parse("5s,5m,30m,2h,5h,10h", "3d").unwrap(),
            RetryPolicy::default()
        );
        let p = RetryPolicy::parse(" 100ms , 1s", "2s").unwrap();
        assert_eq!(p.delay(1, 0.5), Duration::from_millis(100));
        assert_eq!(p.delay(5, 0.5), Duration::from_secs(1));
        assert_eq!(p.give_up_after, Duration::from_secs(2));
        assert_eq!(RetryPolicy::parse(" , ", "1d"), Err(ScheduleError::Empty));
        for bad in ["5", "s", "5x", "-5s", "1.5s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn it_gives_up_after_three_days_of_failures() {
        let p = RetryPolicy::default();
        assert!(!p.gives_up(Duration::from_secs(71 * 3600)));
        assert!(p.gives_up(Duration::from_secs(72 * 3600)));
        // Six growing delays (17.6 hours), then six of 10 hours pass three
        // days: twelve retries in all.
        let mut total = Duration::ZERO;
        let mut failures = 0;
        while !p.gives_up(total) {
            failures += 1;
            total += p.delay(failures, 0.5);
        }
        assert_eq!(failures, 12);
    }
}
